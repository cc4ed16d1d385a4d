//! Shrinking: reduce a failing run's fault list to a 1-minimal one that
//! still breaks the same property, by delta debugging (Zeller's ddmin).
//!
//! Faults are data, so a candidate is just a shorter list run with the same
//! seed. ddmin splits the list into n chunks and tries each chunk and each
//! complement; a failing candidate becomes the new list, otherwise n
//! doubles. It ends when n reaches the list's length with no failing
//! complement: then removing any single fault makes the run pass, which is
//! 1-minimality. We verify that at the end rather than trust it.

use sim::ScheduledFault;

use crate::artifact::Artifact;
use crate::world::{RunOptions, run_scenario};

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

/// Most runs one shrink may take: a bound, so shrinking always ends.
pub const MAX_SHRINK_RUNS: u64 = 5_000;

struct Oracle<'a> {
    artifact: &'a Artifact,
    runs: u64,
}

impl Oracle<'_> {
    /// Does the run with these faults still break the same property?
    fn fails(&mut self, faults: &[ScheduledFault]) -> bool {
        self.runs += 1;
        let options = RunOptions {
            seed: self.artifact.seed,
            faults: Some(faults.to_vec()),
            keep_trace: false,
        };
        let Ok(result) = run_scenario(&self.artifact.scenario, &options) else {
            return false;
        };
        result.check.violates(&self.artifact.property)
    }
}

/// Shrinks `artifact`'s fault list. The artifact must fail as recorded.
pub fn shrink(artifact: &Artifact) -> Result<ShrinkResult, String> {
    let mut oracle = Oracle { artifact, runs: 0 };
    if !oracle.fails(&artifact.faults) {
        return Err(format!(
            "the artifact does not break `{}` when rerun: nothing to shrink (has the code changed?)",
            artifact.property
        ));
    }
    let mut faults = artifact.faults.clone();
    let mut chunks = 2usize;
    while faults.len() >= 2 && oracle.runs < MAX_SHRINK_RUNS {
        let size = faults.len().div_ceil(chunks);
        let parts: Vec<Vec<ScheduledFault>> = faults.chunks(size).map(<[_]>::to_vec).collect();
        let mut reduced = false;
        for (index, part) in parts.iter().enumerate() {
            if oracle.fails(part) {
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
            if parts.len() > 2 && oracle.fails(&complement) {
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
    if faults.len() == 1 && oracle.fails(&[]) {
        faults.clear();
    }
    let one_minimal = (0..faults.len()).all(|skip| {
        let without: Vec<ScheduledFault> = faults
            .iter()
            .enumerate()
            .filter(|&(index, _)| index != skip)
            .map(|(_, fault)| fault.clone())
            .collect();
        !oracle.fails(&without)
    });
    let final_run = run_scenario(
        &artifact.scenario,
        &RunOptions {
            seed: artifact.seed,
            faults: Some(faults.clone()),
            keep_trace: false,
        },
    )?;
    let mut reduced = Artifact::from_run(&artifact.scenario, &final_run);
    reduced.property = artifact.property.clone();
    Ok(ShrinkResult {
        faults_before: artifact.faults.len(),
        faults_after: faults.len(),
        runs: oracle.runs,
        one_minimal,
        artifact: reduced,
    })
}
