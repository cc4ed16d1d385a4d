//! Writing a simulated run out as a real run's data directory, in exactly
//! the format a real host writes: so that `check --history` can be tested
//! against the simulation's own verdicts, and a simulated run can be read
//! by whatever reads real ones.

use std::path::Path;

use node::history::{HISTORY_FILE, HistoryLine};
use plane::cluster::{CLUSTER_FILE, ClusterFile};
use plane::protocol::Event;

use crate::check::downtime;
use crate::error::Error;
use crate::layout::layout;
use crate::scenario::Scenario;
use crate::world::RunResult;

/// The host clock at simulated time 0 when a simulated history is written
/// out (2023-11-14, where the simulator's wall clocks start too).
pub const SIMULATED_EPOCH_NS: u64 = 1_700_000_000 * sim::SECOND_NS;

/// Writes `result`'s history (a run of `scenario` with
/// [`crate::world::RunOptions::keep_trace`]) to `dir` as a real host would:
/// `cluster.json`, and `<node>/history.jsonl` for every node that recorded
/// anything (a directory for every node). Each line's host clock is
/// [`SIMULATED_EPOCH_NS`] plus the simulated time, its boot counts the
/// node's restarts so far, and its `seq` counts up per node.
pub fn write_simulated_history(
    dir: &Path,
    scenario: &Scenario,
    result: &RunResult,
) -> Result<(), Error> {
    let Some(history) = result.history.as_deref() else {
        return Err(Error::bad_input(
            format!("scenario {:?}", scenario.name),
            "the run kept no history: run it with keep_trace",
        ));
    };
    let (topology, nodes) = layout(&scenario.topology);
    let restarts = downtime::restart_times(&result.faults, nodes.len());
    let mut files: Vec<String> = vec![String::new(); nodes.len()];
    let mut seqs: Vec<u64> = vec![0; nodes.len()];
    for entry in history {
        let index = entry.node.index();
        let boot = restarts[index]
            .iter()
            .filter(|&&back_ns| back_ns <= entry.time_ns)
            .count() as u32;
        let line = HistoryLine::<&Event> {
            node: entry.node,
            boot,
            seq: seqs[index],
            mono_ns: entry.time_ns,
            wall_ns: SIMULATED_EPOCH_NS + entry.time_ns,
            host_ns: SIMULATED_EPOCH_NS + entry.time_ns,
            event: &entry.event,
        };
        seqs[index] += 1;
        let text = serde_json::to_string(&line).expect("a history line serializes");
        files[index].push_str(&text);
        files[index].push('\n');
    }
    let cluster = ClusterFile {
        nodes,
        topology,
        settings: scenario.settings(),
        bugs: scenario.bugs.clone(),
    };
    let cluster_text = serde_json::to_string_pretty(&cluster).expect("a cluster serializes");
    write(&dir.join(CLUSTER_FILE), &cluster_text, dir)?;
    for ((name, _), text) in cluster.nodes.iter().zip(&files) {
        let node_dir = dir.join(name);
        std::fs::create_dir_all(&node_dir)
            .map_err(|error| Error::io(&node_dir, format!("cannot create it: {error}")))?;
        if !text.is_empty() {
            write(&node_dir.join(HISTORY_FILE), text, &node_dir)?;
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str, dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|error| Error::io(dir, format!("cannot create it: {error}")))?;
    std::fs::write(path, text).map_err(|error| Error::io(path, format!("cannot write: {error}")))
}
