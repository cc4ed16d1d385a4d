//! Shrinking: reduce a failing run's fault list to a 1-minimal one that
//! still breaks the same property, by delta debugging (Zeller's ddmin).
//!
//! Faults are data, so a candidate is just a shorter list run with the same
//! seed. ddmin splits the list into n chunks and tries each chunk and each
//! complement; a failing candidate becomes the new list, otherwise n
//! doubles. It ends when n reaches the list's length with no failing
//! complement: then removing any single fault makes the run pass, which is
//! 1-minimality. We verify that at the end rather than trust it.
//!
//! Every candidate runs on one engine, the artifact's unless the caller
//! says otherwise: a list 1-minimal on one engine need not be on another.
//!
//! Every run goes through the sweep's panic guard: a candidate that panics
//! ends the shrink with [`Error::Crash`] (the panic is a finding in
//! itself, worse than the property being shrunk), never the process. A
//! crash artifact (property `crash`) is the exception: there the panic is
//! the failure being shrunk. A nondeterminism artifact cannot be shrunk:
//! one rerun proves nothing about it.

use sim::ScheduledFault;

use crate::artifact::Artifact;
use crate::engine::EngineRunner;
use crate::error::Error;
use crate::sweep::run_guarded;
use crate::world::{RunOptions, RunResult};

/// What shrinking did.
#[derive(Clone, Debug)]
pub struct ShrinkResult {
    /// The reduced artifact.
    pub artifact: Artifact,
    /// Faults before.
    pub faults_before: usize,
    /// Faults after.
    pub faults_after: usize,
    /// Runs it took.
    pub runs: u64,
    /// True if removing any single remaining fault makes the run pass
    /// (checked, not assumed).
    pub one_minimal: bool,
}

/// The property of an artifact whose run panicked.
const CRASH: &str = "crash";
/// The property of an artifact whose seed gave two traces.
const DETERMINISM: &str = "determinism";

/// Most runs one shrink may take: a bound, so shrinking always ends.
pub(crate) const MAX_SHRINK_RUNS: u64 = 5_000;

struct Oracle<'a> {
    artifact: &'a Artifact,
    runner: EngineRunner,
    runs: u64,
}

impl Oracle<'_> {
    /// Runs the artifact's scenario and seed with exactly `faults` on the
    /// oracle's engine, behind the panic guard.
    fn run(&mut self, faults: &[ScheduledFault]) -> Result<RunResult, Error> {
        self.runs += 1;
        let options = RunOptions {
            seed: self.artifact.seed,
            faults: Some(faults.to_vec()),
            keep_trace: false,
            buggify_redraws_faults: self.artifact.buggify_redraws_faults,
        };
        let run = run_guarded(self.runner.run, &self.artifact.scenario, &options);
        run.map_err(|error| match error {
            Error::Crash { message, .. } => Error::Crash {
                message,
                faults: Some(faults.len()),
            },
            other => other,
        })
    }

    /// Does the run with these faults still break the same property (for
    /// a crash artifact: does it still panic)?
    fn fails(&mut self, faults: &[ScheduledFault]) -> Result<bool, Error> {
        match self.run(faults) {
            Ok(result) => Ok(result.check.violates(&self.artifact.property)),
            Err(Error::Crash { .. }) if self.artifact.property == CRASH => Ok(true),
            Err(error) => Err(error),
        }
    }
}

/// Shrinks `artifact`'s fault list, running every candidate on `runner`
/// (normally the artifact's own engine; the reduced artifact names the
/// engine it was shrunk on). The artifact must fail as recorded there:
/// one that cannot be shrunk is [`Error::BadInput`] with no file named (the
/// caller knows which file it read).
pub fn shrink(artifact: &Artifact, runner: EngineRunner) -> Result<ShrinkResult, Error> {
    if artifact.property == DETERMINISM {
        return Err(Error::bad_input(
            "",
            "a nondeterminism artifact cannot be shrunk: whether a run parts from \
             itself is not decided by one rerun; replay it, which runs it twice and \
             names the first entry where the traces differ"
                .to_string(),
        ));
    }
    let mut oracle = Oracle {
        artifact,
        runner,
        runs: 0,
    };
    if !oracle.fails(&artifact.faults)? {
        return Err(Error::bad_input(
            "",
            format!(
                "the artifact does not break `{}` when rerun: nothing to shrink (has the code changed?)",
                artifact.property
            ),
        ));
    }
    let mut faults = artifact.faults.clone();
    let mut chunks = 2usize;
    while faults.len() >= 2 && oracle.runs < MAX_SHRINK_RUNS {
        let size = faults.len().div_ceil(chunks);
        let parts: Vec<Vec<ScheduledFault>> = faults.chunks(size).map(<[_]>::to_vec).collect();
        let mut reduced = false;
        for (index, part) in parts.iter().enumerate() {
            if oracle.fails(part)? {
                faults = part.clone();
                chunks = 2;
                reduced = true;
                break;
            }
            let complement: Vec<ScheduledFault> = parts
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .flat_map(|(_, p)| p.iter().cloned())
                .collect();
            if parts.len() > 2 && oracle.fails(&complement)? {
                faults = complement;
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunks >= faults.len() {
                break;
            }
            chunks = (chunks * 2).min(faults.len());
        }
    }
    if faults.len() == 1 && oracle.fails(&[])? {
        faults.clear();
    }
    let mut one_minimal = true;
    for skip in 0..faults.len() {
        let without: Vec<ScheduledFault> = faults
            .iter()
            .enumerate()
            .filter(|&(index, _)| index != skip)
            .map(|(_, fault)| fault.clone())
            .collect();
        if oracle.fails(&without)? {
            one_minimal = false;
            break;
        }
    }
    let final_run = oracle.run(&faults)?;
    let mut reduced = Artifact::from_run(&artifact.scenario, &final_run);
    reduced.property = artifact.property.clone();
    Ok(ShrinkResult {
        faults_before: artifact.faults.len(),
        faults_after: faults.len(),
        // The final run is a record, not a question the oracle asked.
        runs: oracle.runs - 1,
        one_minimal,
        artifact: reduced,
    })
}
