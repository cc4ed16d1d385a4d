//! Failure artifacts: everything needed to rerun a failing seed exactly:
//! the resolved scenario, the seed, the fault list applied, and the version
//! of the code that failed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sim::ScheduledFault;

use crate::error::Error;
use crate::layout::layout;
use crate::scenario::Scenario;
use crate::world::RunResult;

/// Bumped when the artifact format changes.
pub(crate) const ARTIFACT_FORMAT: u32 = 1;

/// The crate version and, when known at build time, the git commit.
pub fn code_version() -> String {
    let commit = option_env!("CONTROLPLANE_GIT_COMMIT").unwrap_or("unknown");
    format!("{} ({commit})", env!("CARGO_PKG_VERSION"))
}

/// A failing run, reproducible by `replay` and reducible by `shrink`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// [`ARTIFACT_FORMAT`].
    pub format: u32,
    /// [`code_version`] of the code that produced it.
    pub code_version: String,
    /// The scenario, fully resolved (defaults filled in).
    pub scenario: Scenario,
    /// The seed.
    pub seed: u64,
    /// The faults the run applied; a replay applies exactly these.
    pub faults: Vec<ScheduledFault>,
    /// The property that failed first (or `crash`).
    pub property: String,
    /// What the checker said.
    pub message: String,
    /// The trace hash of the failing run.
    pub trace_hash: u64,
    /// `faults` was planned before the run, not applied by it (the run
    /// panicked), so it lacks the crashes and pauses BUGGIFY injected: a
    /// replay lets buggify inject them again. Absent (false) otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub buggify_redraws_faults: bool,
}

impl Artifact {
    /// An artifact for a failing run.
    pub fn from_run(scenario: &Scenario, result: &RunResult) -> Artifact {
        let (property, message) = match result.check.first_violation() {
            Some(violation) => (violation.property.to_string(), violation.message.clone()),
            None => ("none".to_string(), "the run passed".to_string()),
        };
        Artifact {
            format: ARTIFACT_FORMAT,
            code_version: code_version(),
            scenario: scenario.clone(),
            seed: result.seed,
            faults: result.faults.clone(),
            property,
            message,
            trace_hash: result.trace_hash,
            buggify_redraws_faults: false,
        }
    }

    /// The artifact of a run that panicked. It never reported the faults
    /// it applied, so the caller passes the ones it was to apply (see
    /// `world::planned_faults`): a replay of them is the same run.
    pub(crate) fn crashed(
        scenario: &Scenario,
        seed: u64,
        faults: Vec<ScheduledFault>,
        message: String,
    ) -> Artifact {
        Artifact {
            format: ARTIFACT_FORMAT,
            code_version: code_version(),
            scenario: scenario.clone(),
            seed,
            faults,
            property: "crash".to_string(),
            message,
            // No trace to hash: the run never finished.
            trace_hash: 0,
            buggify_redraws_faults: scenario.buggify.enabled,
        }
    }

    /// Writes the artifact as pretty JSON; a failure is an I/O error naming
    /// the file.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::io(path, e))?;
        std::fs::write(path, text + "\n").map_err(|e| Error::io(path, format!("cannot write: {e}")))
    }

    /// Reads and checks an artifact. Every error is bad input naming the
    /// file: the artifact is what the user handed us.
    pub fn read(path: &Path) -> Result<Artifact, Error> {
        let file = path.display().to_string();
        let bad = |message: String| Error::bad_input(file.clone(), message);
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let artifact: Artifact =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a failure artifact: {e}")))?;
        if artifact.format != ARTIFACT_FORMAT {
            return Err(bad(format!(
                "format = {} is not supported: allowed {ARTIFACT_FORMAT}",
                artifact.format
            )));
        }
        artifact
            .scenario
            .problems()
            .map_err(|message| bad(format!("scenario.{message}")))?;
        let (_, names) = layout(&artifact.scenario.topology);
        for (index, scheduled) in artifact.faults.iter().enumerate() {
            if let Some(node) = scheduled
                .fault
                .nodes()
                .into_iter()
                .find(|n| n.0 as usize >= names.len())
            {
                return Err(bad(format!(
                    "faults[{index}] names node {} but the scenario's topology has nodes 0..{}",
                    node.0,
                    names.len()
                )));
            }
        }
        Ok(artifact)
    }
}
