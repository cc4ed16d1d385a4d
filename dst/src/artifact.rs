//! Failure artifacts: everything needed to rerun a failing seed exactly:
//! the resolved scenario, the seed, the fault list applied, the engine that
//! ran it, and the version of the code that failed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sim::ScheduledFault;

use crate::engine::Engine;
use crate::error::Error;
use crate::input::{
    Format, json_key_at, json_tables_not_arrays, offset_of, plain_words, read_text, shape,
};
use crate::scenario::{Scenario, serde_shapes};
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
    /// The engine that ran it, and that `replay` and `shrink` run it on
    /// unless told otherwise. Absent for `sim`, so artifacts written
    /// before engines existed still load, as sim's.
    #[serde(default, skip_serializing_if = "Engine::is_sim")]
    pub engine: Engine,
    /// The faults the run applied; a replay applies exactly these.
    pub faults: Vec<ScheduledFault>,
    /// The property that failed first (or `crash`).
    pub property: String,
    /// What the checker said.
    pub message: String,
    /// The trace hash of the failing run.
    pub trace_hash: u64,
    /// The [`sim::TRACE_ENCODING_VERSION`] `trace_hash` was computed under.
    /// Absent in artifacts written before it was recorded: those were all
    /// hashed under encoding 1. A replay under another encoding cannot
    /// compare hashes, and says so.
    #[serde(default = "encoding_one")]
    pub trace_encoding: u32,
    /// `faults` was planned before the run, not applied by it (the run
    /// panicked), so it lacks the crashes and pauses BUGGIFY injected: a
    /// replay lets buggify inject them again. Absent (false) otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub buggify_redraws_faults: bool,
}

fn encoding_one() -> u32 {
    1
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
            engine: result.engine,
            faults: result.faults.clone(),
            property,
            message,
            trace_hash: result.trace_hash,
            trace_encoding: sim::TRACE_ENCODING_VERSION,
            buggify_redraws_faults: false,
        }
    }

    /// The artifact of a run on `engine` that panicked. It never reported
    /// the faults it applied, so the caller passes the ones it was to apply
    /// (see `world::planned_faults`): a replay of them is the same run.
    pub(crate) fn crashed(
        engine: Engine,
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
            engine,
            faults,
            property: "crash".to_string(),
            message,
            // No trace to hash: the run never finished.
            trace_hash: 0,
            trace_encoding: sim::TRACE_ENCODING_VERSION,
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
    /// file: the artifact is what the user handed us, and it is checked as
    /// strictly as a scenario file (its scenario, its faults with the
    /// checks of `[[schedule]]` entries, its property).
    pub fn read(path: &Path) -> Result<Artifact, Error> {
        let file = path.display().to_string();
        let bad = |message: String| Error::bad_input(file.clone(), message);
        let text = read_text(path).map_err(|e| bad(e.to_string()))?;
        let artifact: Artifact =
            serde_json::from_str(&text).map_err(|e| bad(json_message(&text, &e)))?;
        json_tables_not_arrays(&text, &artifact).map_err(bad)?;
        artifact.problems().map_err(bad)?;
        Ok(artifact)
    }

    /// Checks every field against what is allowed; the error starts with
    /// the field (the caller puts the file before it).
    fn problems(&self) -> Result<(), String> {
        if self.format != ARTIFACT_FORMAT {
            return Err(format!(
                "format = {} is not supported: allowed {ARTIFACT_FORMAT}",
                self.format
            ));
        }
        self.scenario
            .problems()
            .map_err(|message| format!("scenario.{message}"))?;
        self.scenario.recorded_fault_problems(&self.faults)?;
        let allowed = known_properties();
        if !allowed.contains(&self.property.as_str()) {
            return Err(format!(
                "property = {:?} is not a property: allowed {}",
                self.property,
                allowed.join(", ")
            ));
        }
        Ok(())
    }
}

/// What an artifact's `property` may name: every checker property, or
/// `crash` (the run panicked) or `determinism` (the seed gave two traces).
fn known_properties() -> Vec<&'static str> {
    let mut names = crate::check::property_names();
    names.extend(["crash", "determinism"]);
    names
}

/// A JSON error in the words of the file: the key at fault and what it
/// allows (not the Rust type serde names), and where. A syntax error is
/// reported as serde_json words it, which are about the text.
fn json_message(text: &str, error: &serde_json::Error) -> String {
    if !error.is_data() {
        return format!("not a failure artifact: {error}");
    }
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let message = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full);
    let mut shapes = serde_shapes();
    shapes.extend(shape::<Artifact>());
    let message = plain_words(message, Format::Json, &shapes, FAULT_WORDS);
    let mut key = json_key_at(text, offset_of(text, line, column));
    // serde reads a recorded fault whole (it is flattened and internally
    // tagged) and reports at its end, so the last key seen there is not
    // the one at fault: name the fault, and the message names the field.
    if key.starts_with("faults[") {
        if let Some(dot) = key.find("].") {
            key.truncate(dot + 1);
        }
    }
    // A missing field is reported at the end of its object, after the
    // object's last key: the object is at fault, not that key.
    if message.starts_with("missing field") && !key.ends_with(']') {
        key.truncate(key.rfind('.').unwrap_or(0));
    }
    match key.as_str() {
        "" => format!("not a failure artifact: {message} (line {line}, column {column})"),
        key => format!("{key}: {message} (line {line}, column {column})"),
    }
}

/// What serde calls a recorded fault, which no probe can read (it is
/// flattened and internally tagged), in the words of the file.
const FAULT_WORDS: &[(&str, &str)] = &[
    (
        "internally tagged enum Fault",
        "an object with at_ns, kind (one of `partition`, `clog`, `crash`, `pause`, \
         `clock_jump`, `reboot`, `degrade`, `clock_drift`) and the fields of that kind",
    ),
    (
        "struct ScheduledFault",
        "an object with at_ns, kind (one of `partition`, `clog`, `crash`, `pause`, \
         `clock_jump`, `reboot`, `degrade`, `clock_drift`) and the fields of that kind",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid artifact of a short baseline run with one pause.
    fn artifact() -> Artifact {
        let mut scenario = Scenario::load("baseline").expect("loads");
        scenario.run.duration_ms = 2_000;
        scenario.run.liveness_bound_ms = 1_000;
        scenario.client.workload_end_ms = 1_500;
        Artifact {
            format: ARTIFACT_FORMAT,
            code_version: code_version(),
            scenario,
            seed: 1,
            engine: Engine::Sim,
            faults: vec![ScheduledFault {
                at_ns: 1_000,
                fault: sim::Fault::Pause {
                    node: sim::NodeId(0),
                    duration_ns: 5,
                },
            }],
            property: "eventually.converged".into(),
            message: "m".into(),
            trace_hash: 0,
            trace_encoding: sim::TRACE_ENCODING_VERSION,
            buggify_redraws_faults: false,
        }
    }

    #[test]
    fn an_artifact_without_a_trace_encoding_was_hashed_under_encoding_one() {
        let mut value = serde_json::to_value(artifact()).expect("serializes");
        assert_eq!(value["trace_encoding"], sim::TRACE_ENCODING_VERSION);
        value
            .as_object_mut()
            .expect("object")
            .remove("trace_encoding");
        let read: Artifact = serde_json::from_value(value).expect("reads");
        assert_eq!(read.trace_encoding, 1);
    }

    #[test]
    fn a_valid_artifact_has_no_problems() {
        assert_eq!(artifact().problems(), Ok(()));
    }

    #[test]
    fn an_artifact_names_an_engine_other_than_sim_and_one_without_is_sim_s() {
        let sim = serde_json::to_value(artifact()).expect("serializes");
        assert!(sim.get("engine").is_none(), "as before engines existed");
        let read: Artifact = serde_json::from_value(sim).expect("reads back");
        assert_eq!(read.engine, Engine::Sim);
        let madsim = Artifact {
            engine: Engine::Madsim,
            ..artifact()
        };
        let value = serde_json::to_value(&madsim).expect("serializes");
        assert_eq!(value["engine"], "madsim");
        let read: Artifact = serde_json::from_value(value.clone()).expect("reads back");
        assert_eq!(read, madsim);
        let mut bogus = value;
        bogus["engine"] = serde_json::json!("bogus");
        let text = serde_json::to_string_pretty(&bogus).expect("JSON");
        let error = serde_json::from_str::<Artifact>(&text).unwrap_err();
        let message = json_message(&text, &error);
        assert!(
            message.starts_with(
                "engine: unknown variant `bogus`, expected one of `sim`, `turmoil`, `madsim`"
            ),
            "{message}"
        );
    }

    #[test]
    fn recorded_faults_are_bounded_like_scheduled_ones() {
        let problem = |fault: sim::Fault, at_ns: u64| {
            let mut artifact = artifact();
            artifact.faults.push(ScheduledFault { at_ns, fault });
            artifact.problems().unwrap_err()
        };
        let pause = |duration_ns| sim::Fault::Pause {
            node: sim::NodeId(0),
            duration_ns,
        };
        assert_eq!(
            problem(pause(5), u64::MAX),
            "faults[1].at_ns = 18446744073709551615 is out of range: allowed 0..=2000000000 \
             (within run.duration_ms)"
        );
        assert_eq!(
            problem(pause(u64::MAX), 0),
            "faults[1].duration_ns = 18446744073709551615 is out of range: allowed \
             0..=3600000000000"
        );
        let crash = sim::Fault::Crash {
            node: sim::NodeId(0),
            restart_after_ns: None,
        };
        assert!(problem(crash, 0).starts_with(
            "faults[1].restart_after_ns is required for kind = \"crash\": a node that never \
                 comes back"
        ));
        let jump = sim::Fault::ClockJump {
            node: sim::NodeId(0),
            delta_ns: i64::MIN,
        };
        assert!(
            problem(jump, 0)
                .starts_with("faults[1].delta_ns = -9223372036854775808 is out of range"),
        );
        let clog = sim::Fault::Clog {
            from: sim::NodeId(0),
            to: sim::NodeId(99),
            duration_ns: 1,
        };
        assert_eq!(
            problem(clog, 0),
            "faults[1] names node 99 in to, but the scenario's topology has nodes 0..12: \
             allowed to in 0..=11"
        );
        let degrade = |nodes: Vec<u32>, drop_ppm, delay_ns| sim::Fault::Degrade {
            nodes: nodes.into_iter().map(sim::NodeId).collect(),
            drop_ppm,
            duplicate_ppm: 0,
            delay_ns,
            duration_ns: 1,
        };
        assert_eq!(
            problem(degrade(vec![], 2_000_000, 0), 0),
            "faults[1].drop_ppm = 2000000 is out of range: allowed 0..=1000000 (parts per \
             million)"
        );
        assert!(problem(degrade(vec![], 0, 60_000_000_001), 0).starts_with(
            "faults[1].delay_ns = 60000000001 is out of range: allowed 0..=60000000000"
        ),);
        assert_eq!(
            problem(degrade(vec![3, 12], 1, 0), 0),
            "faults[1] names node 12 in nodes[1], but the scenario's topology has nodes 0..12: \
             allowed nodes[1] in 0..=11"
        );
        let drift = |drift_ppm| sim::Fault::ClockDrift {
            node: sim::NodeId(0),
            drift_ppm,
            duration_ns: 1,
        };
        assert!(problem(drift(-100_001), 0).starts_with(
            "faults[1].drift_ppm = -100001 is out of range: allowed -100000..=100000"
        ),);
        let mut fine = artifact();
        fine.faults.push(ScheduledFault {
            at_ns: 0,
            fault: drift(100_000),
        });
        fine.faults.push(ScheduledFault {
            at_ns: 0,
            fault: degrade(vec![11], 1_000_000, 60_000_000_000),
        });
        assert_eq!(fine.problems(), Ok(()));
    }

    #[test]
    fn the_words_for_a_recorded_fault_list_every_kind() {
        let node = sim::NodeId(0);
        // One of each kind; the match below has no wildcard, so a new
        // kind does not compile until it is listed here too.
        let every = [
            sim::Fault::Partition {
                side_a: vec![node],
                side_b: vec![],
                one_way: false,
                duration_ns: 1,
            },
            sim::Fault::Clog {
                from: node,
                to: node,
                duration_ns: 1,
            },
            sim::Fault::Crash {
                node,
                restart_after_ns: None,
            },
            sim::Fault::Pause {
                node,
                duration_ns: 1,
            },
            sim::Fault::ClockJump { node, delta_ns: 1 },
            sim::Fault::Reboot {
                node,
                restart_after_ns: 1,
            },
            sim::Fault::Degrade {
                nodes: vec![],
                drop_ppm: 0,
                duplicate_ppm: 0,
                delay_ns: 0,
                duration_ns: 1,
            },
            sim::Fault::ClockDrift {
                node,
                drift_ppm: 0,
                duration_ns: 1,
            },
        ];
        for fault in every {
            match fault {
                sim::Fault::Partition { .. }
                | sim::Fault::Clog { .. }
                | sim::Fault::Crash { .. }
                | sim::Fault::Pause { .. }
                | sim::Fault::ClockJump { .. }
                | sim::Fault::Reboot { .. }
                | sim::Fault::Degrade { .. }
                | sim::Fault::ClockDrift { .. } => {}
            }
            let json = serde_json::to_value(&fault).expect("serializes");
            let kind = json["kind"].as_str().expect("tagged");
            for (_, words) in FAULT_WORDS {
                assert!(words.contains(&format!("`{kind}`")), "{kind}: {words}");
            }
        }
    }

    #[test]
    fn recorded_faults_must_heal_in_time_for_the_liveness_phase() {
        let mut late = artifact();
        late.faults[0].fault = sim::Fault::Pause {
            node: sim::NodeId(0),
            duration_ns: 3_600_000 * sim::MILLISECOND_NS,
        };
        let problem = late.problems().unwrap_err();
        assert!(
            problem.starts_with("faults: run.liveness_bound_ms = 1000 after faults[0] healing at"),
            "{problem}"
        );
        assert!(problem.contains("time limit of 3600000 ms"), "{problem}");
    }

    #[test]
    fn an_unknown_property_is_refused_listing_the_known_ones() {
        let mut unknown = artifact();
        unknown.property = "eventually.convergd".into();
        let problem = unknown.problems().unwrap_err();
        assert!(
            problem.starts_with(
                "property = \"eventually.convergd\" is not a property: allowed always."
            ),
            "{problem}"
        );
        for known in [
            "eventually.converged",
            "cost.shard_movement",
            "crash",
            "determinism",
        ] {
            assert!(problem.contains(known), "{problem}");
            let mut artifact = artifact();
            artifact.property = known.into();
            assert_eq!(artifact.problems(), Ok(()));
        }
    }

    #[test]
    fn an_object_written_as_an_array_is_refused_not_read_by_position() {
        let mut value = serde_json::to_value(artifact()).expect("serializes");
        value["scenario"]["run"] = serde_json::json!([2000, 2000]);
        let name = format!("controlplane-array-{}.json", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, value.to_string()).expect("writes");
        let error = Artifact::read(&path).map(|_| ()).unwrap_err().to_string();
        std::fs::remove_file(&path).expect("removes");
        assert!(
            error.contains("scenario.run: expected an object with duration_ms")
                && error.ends_with("found an array"),
            "{error}"
        );
    }

    #[test]
    fn json_type_errors_name_the_key_and_what_it_allows() {
        let text = serde_json::to_string_pretty(&artifact()).expect("serializes");
        let read = |text: &str| {
            let error = serde_json::from_str::<Artifact>(text).unwrap_err();
            json_message(text, &error)
        };
        let run = text.replace("\"duration_ms\": 2000,", "\"duration_ms\": \"x\",");
        let message = read(&run);
        assert!(
            message.starts_with(
                "scenario.run.duration_ms: invalid type: string \"x\", expected a non-negative \
                 integer"
            ),
            "{message}"
        );
        let faults = text.replace("\"kind\": \"pause\"", "\"kind\": \"stop\"");
        let message = read(&faults);
        assert!(
            message.starts_with("faults[0]: unknown variant `stop`, expected one of `partition`"),
            "{message}"
        );
        let mut value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        value["scenario"]["faults"]["crash"] = serde_json::json!(5);
        let message = read(&serde_json::to_string_pretty(&value).expect("JSON"));
        assert!(
            message.starts_with(
                "scenario.faults.crash: invalid type: integer `5`, expected an object with \
                 count_min, count_max, duration_min_ms, duration_max_ms (line "
            ),
            "{message}"
        );
        value["scenario"]["faults"]["crash"] = serde_json::json!({});
        value["faults"] = serde_json::json!([5]);
        let message = read(&serde_json::to_string_pretty(&value).expect("JSON"));
        assert!(
            message.starts_with(
                "faults[0]: invalid type: integer `5`, expected an object with at_ns, kind"
            ),
            "{message}"
        );
        value["faults"] = serde_json::json!([]);
        value["scenario"] = serde_json::json!(5);
        let message = read(&serde_json::to_string(&value).expect("JSON"));
        assert!(message.starts_with("scenario: invalid type: integer `5`, expected an object with name, description, topology"), "{message}");
        let message = read("{\"format\": 1}");
        assert!(
            message.starts_with("not a failure artifact: missing field `code_version`"),
            "{message}"
        );
        value["scenario"] = serde_json::json!({"name": "t"});
        let message = read(&serde_json::to_string_pretty(&value).expect("JSON"));
        assert!(
            message.starts_with("scenario: missing field `description`"),
            "{message}"
        );
        let message = read("5");
        assert!(message.starts_with("not a failure artifact: invalid type: integer `5`, expected an object with format, code_version, scenario"), "{message}");
    }
}
