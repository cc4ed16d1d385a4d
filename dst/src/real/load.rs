//! Reading a real run's data directory: `cluster.json`, then each node's
//! `history.jsonl` line by line, every line checked, and the nodes' lines
//! merged into the one history the checkers read.
//!
//! A file is read as it was written: its lines must be this node's, with
//! `seq` counting up and `boot` never going back. The last line alone may
//! be cut short (the process was killed mid-write): it is dropped and
//! counted. Anything else wrong is bad input naming the file and the line,
//! because a checker that skipped a line it could not read might pass a run
//! on half its history.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use node::fault::{FAULT_LOG_FILE, FaultLogEvent, FaultLogLine};
use node::history::{HISTORY_FILE, HistoryLine};
use plane::cluster::{CLUSTER_FILE, ClusterFile, Role};
use plane::protocol::Event;
use serde::Serialize;
use sim::{Fault, HistoryEntry, NodeId, ScheduledFault};

use crate::error::Error;
use crate::input::{Format, json_tables_not_arrays, plain_words, read_text, shape};

use super::limits;

/// The longest history line read: 1 MiB. An event is a few hundred bytes;
/// a longer line is not a history line, and reading it whole could take
/// any amount of memory.
pub(crate) const LINE_BYTES_MAX: u64 = 1024 * 1024;

/// The most lines read from all the files together: the checkers hold the
/// whole history in memory (a few hundred bytes a line, so a few GiB at
/// most). An hour of a busy cluster is well under it.
pub(crate) const LINES_MAX: u64 = 10_000_000;

/// A last line that could not be read and was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TruncatedLine {
    /// The file, relative to the data directory: `api-0/history.jsonl`.
    pub file: String,
    /// Its line number, from 1.
    pub line: u64,
}

/// What was read, for the report's first lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryRead {
    /// The data directory.
    pub dir: String,
    /// Nodes in `cluster.json`.
    pub nodes: usize,
    /// Of those, the ones with no history file (they recorded nothing).
    pub nodes_without_history: Vec<String>,
    /// History lines read (truncated last lines not counted).
    pub lines: u64,
    /// Boots seen, summed over the nodes (a node seen in boots 0 and 1
    /// counts 2).
    pub boots: u64,
    /// Times a node's boot changed from one of its lines to the next: the
    /// restarts the history shows.
    pub restarts: u64,
    /// Last lines dropped because they could not be read.
    pub truncated: Vec<TruncatedLine>,
    /// The host clock of the first line, ns since the Unix epoch.
    pub first_host_ns: Option<u64>,
    /// The host clock of the last line.
    pub last_host_ns: Option<u64>,
    /// Faults the host's fault log (`faults.jsonl`, written by `chaos`
    /// through the admin endpoint) lists.
    pub faults_logged: Vec<ScheduledFault>,
}

/// A data directory, read and merged.
pub(crate) struct Loaded {
    /// Who is who, and the nodes' settings.
    pub(crate) cluster: ClusterFile,
    /// Every line, merged: see [`merge`].
    pub(crate) history: Vec<HistoryEntry<Event>>,
    /// Per trace index: the node and the line of its file.
    pub(crate) origin: Vec<(NodeId, u64)>,
    /// Each restart the history shows, as a crash: from the node's last
    /// line in the old boot to its first in the new one.
    pub(crate) restarts: Vec<ScheduledFault>,
    /// What was read.
    pub(crate) read: HistoryRead,
}

/// One node's lines, in file order, with their line numbers.
type NodeLines = Vec<(u64, HistoryLine<Event>)>;

/// Reads `dir`: its `cluster.json`, then every node's history.
pub(crate) fn load(dir: &Path) -> Result<Loaded, Error> {
    if !dir.is_dir() {
        return Err(Error::bad_input(
            dir.display().to_string(),
            "no such directory: give the data directory of a real run (it holds cluster.json \
             and a directory per node)",
        ));
    }
    let cluster = read_cluster(&dir.join(CLUSTER_FILE))?;
    let mut read = HistoryRead {
        dir: dir.display().to_string(),
        nodes: cluster.nodes.len(),
        nodes_without_history: Vec::new(),
        lines: 0,
        boots: 0,
        restarts: 0,
        truncated: Vec::new(),
        first_host_ns: None,
        last_host_ns: None,
        faults_logged: Vec::new(),
    };
    let mut per_node: Vec<NodeLines> = Vec::with_capacity(cluster.nodes.len());
    for (index, (name, _)) in cluster.nodes.iter().enumerate() {
        let path = dir.join(name).join(HISTORY_FILE);
        if !path.exists() {
            read.nodes_without_history.push(name.clone());
            per_node.push(Vec::new());
            continue;
        }
        let node = NodeId(index as u32);
        let (lines, truncated) = read_node(&path, node, &cluster, &mut read.lines)?;
        if let Some(line) = truncated {
            read.truncated.push(TruncatedLine {
                file: format!("{name}/{HISTORY_FILE}"),
                line,
            });
        }
        read.boots += count_boots(&lines);
        per_node.push(lines);
    }
    if read.lines == 0 {
        return Err(no_history(dir, &cluster, &read));
    }
    let (history, origin, restarts) = merge(per_node, &mut read);
    read.restarts = restarts.len() as u64;
    let log = dir.join(FAULT_LOG_FILE);
    if log.exists() {
        read.faults_logged =
            read_fault_log(&log, read.first_host_ns.unwrap_or(0), cluster.nodes.len())?;
    }
    Ok(Loaded {
        cluster,
        history,
        origin,
        restarts,
        read,
    })
}

/// Reads the fault log: each start paired with its heal (by id; a new
/// start of an id still open closes the old one, as a restarted process
/// numbers its faults afresh), as faults at ns since `first_host_ns`. A
/// fault never healed keeps its own duration. A last line cut short is
/// dropped; any other bad line is bad input naming the line.
fn read_fault_log(
    path: &Path,
    first_host_ns: u64,
    nodes: usize,
) -> Result<Vec<ScheduledFault>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::bad_input(path.display().to_string(), e.to_string()))?;
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let whole = text.ends_with('\n');
    // Open faults by id: (start host ns, fault).
    let mut open: BTreeMap<u64, (u64, Fault)> = BTreeMap::new();
    let mut done: Vec<(u64, Option<u64>, Fault)> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let parsed: FaultLogLine = match serde_json::from_str(line) {
            Ok(parsed) => parsed,
            Err(_) if index + 1 == lines.len() && !whole => break,
            Err(e) => {
                return Err(Error::bad_input(
                    format!("{} line {}", path.display(), index + 1),
                    format!(
                        "not a fault log line ({e}): allowed {{\"host_ns\", \"id\", \"event\": \"start\" | \"heal\", \"fault\"}}"
                    ),
                ));
            }
        };
        if let Some(node) = parsed
            .fault
            .nodes()
            .into_iter()
            .find(|n| n.index() >= nodes)
        {
            return Err(Error::bad_input(
                format!("{} line {}", path.display(), index + 1),
                format!(
                    "names node {}, but cluster.json has nodes 0..{nodes}",
                    node.0
                ),
            ));
        }
        match parsed.event {
            FaultLogEvent::Start => {
                if let Some((start, fault)) = open.remove(&parsed.id) {
                    done.push((start, Some(parsed.host_ns), fault));
                }
                if matches!(parsed.fault, Fault::ClockJump { .. }) {
                    done.push((parsed.host_ns, Some(parsed.host_ns), parsed.fault));
                } else {
                    open.insert(parsed.id, (parsed.host_ns, parsed.fault));
                }
            }
            FaultLogEvent::Heal => {
                if let Some((start, fault)) = open.remove(&parsed.id) {
                    done.push((start, Some(parsed.host_ns), fault));
                }
            }
        }
    }
    done.extend(
        open.into_values()
            .map(|(start, fault)| (start, None, fault)),
    );
    let mut faults: Vec<ScheduledFault> = done
        .into_iter()
        .map(|(start, healed, mut fault)| {
            let at_ns = start.saturating_sub(first_host_ns);
            if let Some(healed) = healed {
                let lasted = healed.saturating_sub(start);
                match &mut fault {
                    Fault::Partition { duration_ns, .. }
                    | Fault::Clog { duration_ns, .. }
                    | Fault::Pause { duration_ns, .. }
                    | Fault::Degrade { duration_ns, .. }
                    | Fault::ClockDrift { duration_ns, .. } => *duration_ns = lasted,
                    Fault::Crash {
                        restart_after_ns, ..
                    } => *restart_after_ns = Some(lasted),
                    Fault::Reboot {
                        restart_after_ns, ..
                    } => *restart_after_ns = lasted,
                    Fault::ClockJump { .. } => {}
                }
            }
            ScheduledFault { at_ns, fault }
        })
        .collect();
    faults.sort_by_key(|fault| fault.at_ns);
    Ok(faults)
}

/// Reads and checks `cluster.json`: node names usable as directory names,
/// a topology that names every node once, in its role, and sizes and
/// settings within a scenario's limits.
fn read_cluster(path: &Path) -> Result<ClusterFile, Error> {
    let file = path.display().to_string();
    if !path.exists() {
        return Err(Error::bad_input(
            file,
            "missing: a real run's data directory starts with the cluster.json its host wrote",
        ));
    }
    let text = read_text(path).map_err(|error| Error::bad_input(&file, error.to_string()))?;
    let cluster: ClusterFile = serde_json::from_str(&text).map_err(|error| {
        Error::bad_input(
            &file,
            format!(
                "not a cluster description: {}",
                plain_words(&error.to_string(), Format::Json, &[], &[])
            ),
        )
    })?;
    json_tables_not_arrays(&text, &cluster).map_err(|message| Error::bad_input(&file, message))?;
    check_cluster(&cluster).map_err(|message| Error::bad_input(file, message))?;
    Ok(cluster)
}

fn check_cluster(cluster: &ClusterFile) -> Result<(), String> {
    if cluster.nodes.is_empty() {
        return Err("`nodes` is empty: a cluster has at least a store".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &cluster.nodes {
        let plain =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(format!(
                "node name {name:?} cannot name a directory: allowed is a plain name like `api-0`"
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(format!("node name {name:?} is given twice"));
        }
    }
    let t = &cluster.topology;
    let roles = [
        (
            "topology.store",
            Role::Store,
            std::slice::from_ref(&t.store),
        ),
        (
            "topology.billing",
            Role::Billing,
            std::slice::from_ref(&t.billing),
        ),
        ("topology.apis", Role::Api, t.apis.as_slice()),
        (
            "topology.controllers",
            Role::Controller,
            t.controllers.as_slice(),
        ),
        ("topology.workers", Role::Worker, t.workers.as_slice()),
        ("topology.clients", Role::Client, t.clients.as_slice()),
    ];
    // Per node: the topology field that names it.
    let mut named: Vec<Option<&str>> = vec![None; cluster.nodes.len()];
    for (field, role, ids) in roles {
        for id in ids {
            match cluster.nodes.get(id.index()) {
                Some((_, actual)) if *actual == role => {}
                Some((name, actual)) => {
                    return Err(format!(
                        "{field} names node {} ({name}) as {role:?}, but `nodes` says {actual:?}",
                        id.0
                    ));
                }
                None => {
                    return Err(format!(
                        "{field} names node {}, but `nodes` lists only {}: allowed 0..={}",
                        id.0,
                        cluster.nodes.len(),
                        cluster.nodes.len() - 1
                    ));
                }
            }
            if let Some(first) = named[id.index()].replace(field) {
                return Err(format!(
                    "{field} names node {} ({}), and {first} names it already: allowed is each \
                     node once",
                    id.0,
                    cluster.nodes[id.index()].0
                ));
            }
        }
    }
    // The sizes of the topology and the settings, as a scenario's.
    limits::settings_problems(cluster)?;
    // Every node in the topology: a node it leaves out would be judged as
    // no member of the cluster.
    if let Some(index) = named.iter().position(Option::is_none) {
        let (name, role) = &cluster.nodes[index];
        let field = roles
            .iter()
            .find(|(_, r, _)| r == role)
            .map_or("topology", |(field, _, _)| field);
        return Err(format!(
            "`nodes` lists {name} (node {index}) as {role:?}, but {field} does not name it: \
             allowed is a topology that names every node of `nodes`"
        ));
    }
    Ok(())
}

/// The refusal of a directory where no node wrote a line: nothing to
/// judge, and most likely not the directory the user meant (or the run
/// never started), so it must not pass.
fn no_history(dir: &Path, cluster: &ClusterFile, read: &HistoryRead) -> Error {
    let first = cluster
        .nodes
        .first()
        .map_or("store", |(name, _)| name.as_str());
    let found = cluster.nodes.len() - read.nodes_without_history.len();
    let files = match (found, read.truncated.len()) {
        (0, _) => format!(
            "none of the {} nodes cluster.json lists has a history file",
            cluster.nodes.len()
        ),
        (found, 0) => format!("the {found} history file(s) there hold no line"),
        (found, cut) => format!(
            "the {found} history file(s) there hold no line but {cut} last line(s) cut short"
        ),
    };
    Error::bad_input(
        dir.display().to_string(),
        format!(
            "no node wrote any history: {files} (`<node>/{HISTORY_FILE}`, e.g. \
             `{first}/{HISTORY_FILE}`), so there is nothing to judge: give the data directory \
             of a run that did something"
        ),
    )
}

/// Reads one node's history file. Returns its lines and the number of a
/// last line dropped as truncated. `total` counts lines over all files.
/// Every line must be the node's own and name only nodes and shards that
/// `cluster` has.
fn read_node(
    path: &Path,
    node: NodeId,
    cluster: &ClusterFile,
    total: &mut u64,
) -> Result<(NodeLines, Option<u64>), Error> {
    let name = &cluster.nodes[node.index()].0;
    let file = path.display().to_string();
    let opened = std::fs::File::open(path)
        .map_err(|error| Error::bad_input(&file, format!("cannot read it ({error})")))?;
    let mut reader = BufReader::new(opened);
    let mut lines: NodeLines = Vec::new();
    let mut buffer = Vec::new();
    let mut number = 0u64;
    // Bounded: every round reads at least one byte of a finite file, and
    // the lines are capped in number.
    loop {
        buffer.clear();
        let read = reader
            .by_ref()
            .take(LINE_BYTES_MAX + 1)
            .read_until(b'\n', &mut buffer)
            .map_err(|error| Error::bad_input(&file, format!("cannot read it ({error})")))?;
        if read == 0 {
            return Ok((lines, None));
        }
        number += 1;
        let at_end = reader
            .fill_buf()
            .map_err(|error| Error::bad_input(&file, format!("cannot read it ({error})")))?
            .is_empty();
        if buffer.len() as u64 > LINE_BYTES_MAX {
            return Err(Error::bad_input(
                &file,
                format!("line {number} is longer than {LINE_BYTES_MAX} bytes: not a history line"),
            ));
        }
        let line = match parse_line(&buffer) {
            Ok(line) => line,
            Err(_) if at_end => return Ok((lines, Some(number))),
            Err(what) => return Err(Error::bad_input(&file, format!("line {number}: {what}"))),
        };
        follows(
            lines.last().map(|(_, previous)| previous),
            &line,
            node,
            name,
        )
        .map_err(|what| Error::bad_input(&file, format!("line {number}: {what}")))?;
        limits::id_problems(&line.event, cluster)
            .map_err(|what| Error::bad_input(&file, format!("line {number}: {what}")))?;
        *total += 1;
        if *total > LINES_MAX {
            return Err(Error::bad_input(
                &file,
                format!(
                    "line {number} is past {LINES_MAX} lines in all: the checkers hold the whole \
                     history in memory; check a shorter run"
                ),
            ));
        }
        lines.push((number, line));
    }
}

/// One line as a history line, or what is wrong with it.
fn parse_line(bytes: &[u8]) -> Result<HistoryLine<Event>, String> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        format!(
            "not UTF-8 text (invalid byte at column {})",
            error.valid_up_to() + 1
        )
    })?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        return Err("empty: every line is one JSON history line".to_string());
    }
    serde_json::from_str::<HistoryLine<Event>>(text).map_err(|error| {
        let column = error.column();
        let message = error.to_string();
        // serde_json ends its message with where; one line holds one
        // value, so only the column says anything.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(before, _)| before);
        let shapes: Vec<_> = [shape::<HistoryLine<Event>>(), shape::<Event>()]
            .into_iter()
            .flatten()
            .collect();
        format!(
            "not a history line: {} (column {column})",
            plain_words(message, Format::Json, &shapes, &[])
        )
    })
}

/// Whether `line` may follow `previous` in the file of `node`: the node's
/// own, `seq` counting up, `boot` never going back.
fn follows(
    previous: Option<&HistoryLine<Event>>,
    line: &HistoryLine<Event>,
    node: NodeId,
    name: &str,
) -> Result<(), String> {
    if line.node != node {
        return Err(format!(
            "recorded by node {}, but this is the history of {name} (node {})",
            line.node.0, node.0
        ));
    }
    let Some(previous) = previous else {
        return Ok(());
    };
    if line.seq <= previous.seq {
        return Err(format!(
            "seq {} after seq {}: a node's lines count up",
            line.seq, previous.seq
        ));
    }
    if line.boot < previous.boot {
        return Err(format!(
            "boot {} after boot {}: a node's boot never goes back",
            line.boot, previous.boot
        ));
    }
    Ok(())
}

/// Boots one node's lines show.
fn count_boots(lines: &NodeLines) -> u64 {
    let changes = lines
        .windows(2)
        .filter(|pair| pair[0].1.boot != pair[1].1.boot)
        .count() as u64;
    if lines.is_empty() { 0 } else { changes + 1 }
}

/// What [`merge`] returns: the history, each entry's origin and the
/// restarts.
type Merged = (
    Vec<HistoryEntry<Event>>,
    Vec<(NodeId, u64)>,
    Vec<ScheduledFault>,
);

/// Merges the nodes' lines into one history: always the line with the
/// least (host clock, node, seq) among each node's next line, so each
/// node's lines keep their file order even if its host clock stepped back.
/// `time_ns` is the host clock since the first line, never decreasing
/// along the history (a step back holds it level). A boot change between
/// two lines of a node becomes a crash at the earlier line, healed at the
/// later.
fn merge(per_node: Vec<NodeLines>, read: &mut HistoryRead) -> Merged {
    let total: usize = per_node.iter().map(Vec::len).sum();
    let mut queues: Vec<std::vec::IntoIter<(u64, HistoryLine<Event>)>> =
        per_node.into_iter().map(Vec::into_iter).collect();
    let mut heads: BTreeMap<(u64, u32, u64), (u64, HistoryLine<Event>)> = BTreeMap::new();
    for queue in &mut queues {
        if let Some((number, line)) = queue.next() {
            heads.insert((line.host_ns, line.node.0, line.seq), (number, line));
        }
    }
    let mut history = Vec::with_capacity(total);
    let mut origin = Vec::with_capacity(total);
    let mut restarts = Vec::new();
    // Per node: its last (boot, time_ns).
    let mut last: BTreeMap<NodeId, (u32, u64)> = BTreeMap::new();
    let mut time_ns = 0;
    while let Some((_, (number, line))) = heads.pop_first() {
        let first_host_ns = *read.first_host_ns.get_or_insert(line.host_ns);
        read.last_host_ns = Some(line.host_ns);
        time_ns = line.host_ns.saturating_sub(first_host_ns).max(time_ns);
        let node = line.node;
        if let Some(&(boot, at_ns)) = last.get(&node).filter(|(boot, _)| *boot != line.boot) {
            debug_assert!(boot < line.boot, "boots were checked to count up");
            restarts.push(ScheduledFault {
                at_ns,
                fault: Fault::Crash {
                    node,
                    restart_after_ns: Some(time_ns - at_ns),
                },
            });
        }
        last.insert(node, (line.boot, time_ns));
        if let Some((next_number, next)) = queues[node.index()].next() {
            heads.insert((next.host_ns, next.node.0, next.seq), (next_number, next));
        }
        origin.push((node, number));
        history.push(HistoryEntry {
            time_ns,
            node,
            trace_index: history.len() as u64,
            event: line.event,
        });
    }
    debug_assert_eq!(history.len(), total);
    restarts.sort_by_key(|fault| (fault.at_ns, fault.fault.nodes()));
    (history, origin, restarts)
}
