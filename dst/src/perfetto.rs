//! The timeline in the Chrome trace event format (`{"traceEvents":[...]}`),
//! which ui.perfetto.dev and chrome://tracing open: a process per node
//! with a thread per kind of thing on it, a process for the leases with a
//! thread per lease, the desired-against-running curve as counters, and
//! each violation as a global instant. Drawn from the same
//! [`Timeline`] as the HTML page.
//!
//! Complete events (`ph: X`) on one thread must nest or follow each other
//! for the viewers to draw them, so overlapping spans (a client's
//! concurrent requests, a node's overlapping faults) are spread over as
//! many threads as they need, first fit. Times are microseconds (`ts`,
//! `dur`), to the nanosecond in their fraction.

use serde_json::{Value, json};

use crate::timeline::{MarkKind, RequestEnd, Timeline};

/// The pid of the leases' process; nodes use `1 + index`.
const LEASES_PID: u64 = 100_000;
/// The pid of the cluster-wide counters and violations.
const CLUSTER_PID: u64 = 100_001;
/// First tid of each kind of thread on a node's process.
const TID_EVENTS: u64 = 1;
const TID_FAULTS: u64 = 100;
const TID_REQUESTS: u64 = 200;
const TID_BELIEFS: u64 = 300;

fn us(ns: u64) -> Value {
    // Exact: a run's nanoseconds stay far below 2^53.
    json!(ns as f64 / 1_000.0)
}

/// Row of each span, first fit over rows that are free by its start: the
/// fewest rows in which no two spans of one row overlap.
fn pack(spans: &[(u64, u64)]) -> Vec<u64> {
    let mut free_at: Vec<u64> = Vec::new();
    spans
        .iter()
        .map(|&(start, end)| {
            let row = match free_at.iter().position(|&free| free <= start) {
                Some(row) => row,
                None => {
                    free_at.push(0);
                    free_at.len() - 1
                }
            };
            free_at[row] = end;
            row as u64
        })
        .collect()
}

fn metadata(out: &mut Vec<Value>, kind: &str, pid: u64, tid: u64, name: &str) {
    out.push(json!({"name": kind, "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}));
}

/// Names every thread of a packed kind: `faults`, `faults 2`, ...
fn name_rows(out: &mut Vec<Value>, pid: u64, base: u64, rows: &[u64], name: &str) {
    let count = rows.iter().max().map_or(0, |&max| max + 1);
    for row in 0..count {
        let label = if row == 0 {
            name.to_string()
        } else {
            format!("{name} {}", row + 1)
        };
        metadata(out, "thread_name", pid, base + row, &label);
    }
}

/// The run as Chrome trace event JSON. The same timeline gives the same
/// bytes.
pub fn chrome_trace(timeline: &Timeline) -> String {
    let mut events: Vec<Value> = Vec::new();
    let pid = |node: sim::NodeId| 1 + u64::from(node.0);
    for (index, name) in timeline.nodes.iter().enumerate() {
        let node_pid = 1 + index as u64;
        metadata(&mut events, "process_name", node_pid, 0, name);
        events.push(json!({"name": "process_sort_index", "ph": "M", "pid": node_pid, "tid": 0, "args": {"sort_index": index}}));
        metadata(&mut events, "thread_name", node_pid, TID_EVENTS, "events");
    }
    metadata(&mut events, "process_name", LEASES_PID, 0, "leases");
    metadata(&mut events, "process_name", CLUSTER_PID, 0, "cluster");
    metadata(&mut events, "thread_name", CLUSTER_PID, 1, "violations");
    faults(&mut events, timeline);
    requests(&mut events, timeline);
    leases(&mut events, timeline);
    for mark in &timeline.marks {
        events.push(json!({
            "name": mark_name(mark.kind), "cat": "effect", "ph": "i", "s": "t",
            "ts": us(mark.time_ns), "pid": pid(mark.node), "tid": TID_EVENTS,
            "args": {"what": mark.label, "resource": mark.resource, "shard": mark.shard},
        }));
    }
    for point in &timeline.curve {
        events.push(json!({
            "name": "replicas", "cat": "convergence", "ph": "C", "ts": us(point.time_ns),
            "pid": CLUSTER_PID, "tid": 0,
            "args": {"desired": point.desired_replicas, "running": point.running,
                     "running_current_generation": point.running_current},
        }));
    }
    for violation in &timeline.violations {
        let nodes: Vec<&str> = violation.nodes.iter().map(|&n| timeline.name(n)).collect();
        events.push(json!({
            "name": violation.property, "cat": "violation", "ph": "i", "s": "g",
            "ts": us(violation.time_ns), "pid": CLUSTER_PID, "tid": 1,
            "args": {"message": violation.message, "nodes": nodes, "trace_index": violation.trace_index},
        }));
    }
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    format!(
        "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"title\":{}}},\"traceEvents\":[\n{}\n]}}\n",
        json!(timeline.title),
        lines.join(",\n")
    )
}

fn mark_name(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Charge => "charge",
        MarkKind::ChargeDeduplicated => "charge deduplicated",
        MarkKind::InstanceStarted => "instance started",
        MarkKind::InstanceStopped => "instance stopped",
        MarkKind::ActionRejected => "stale token rejected",
        MarkKind::LeaseAcquired => "lease acquired",
        MarkKind::Replayed => "replayed",
        MarkKind::KeyConflict => "409/422",
        MarkKind::KeyTakenOver => "key taken over",
    }
}

fn faults(events: &mut Vec<Value>, timeline: &Timeline) {
    for (index, _) in timeline.nodes.iter().enumerate() {
        let node = sim::NodeId(index as u32);
        let pid = 1 + index as u64;
        let hits: Vec<_> = timeline
            .faults
            .iter()
            .filter(|fault| fault.nodes.contains(&node))
            .collect();
        let spans: Vec<(u64, u64)> = hits.iter().map(|f| (f.start_ns, f.end_ns)).collect();
        let rows = pack(&spans);
        name_rows(events, pid, TID_FAULTS, &rows, "faults");
        for (fault, row) in hits.iter().zip(rows) {
            let mut event = json!({
                "name": fault.kind, "cat": "fault", "ts": us(fault.start_ns),
                "pid": pid, "tid": TID_FAULTS + row, "args": {"fault": fault.label},
            });
            if fault.end_ns > fault.start_ns {
                event["ph"] = json!("X");
                event["dur"] = us(fault.end_ns - fault.start_ns);
            } else {
                event["ph"] = json!("i");
                event["s"] = json!("t");
            }
            events.push(event);
        }
    }
}

fn requests(events: &mut Vec<Value>, timeline: &Timeline) {
    for (index, _) in timeline.nodes.iter().enumerate() {
        let node = sim::NodeId(index as u32);
        let pid = 1 + index as u64;
        let mine: Vec<_> = timeline
            .requests
            .iter()
            .filter(|request| request.client == node)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let spans: Vec<(u64, u64)> = mine.iter().map(|r| (r.start_ns, r.end_ns)).collect();
        let rows = pack(&spans);
        name_rows(events, pid, TID_REQUESTS, &rows, "requests");
        for (request, row) in mine.iter().zip(rows) {
            let (outcome, status) = match request.end {
                RequestEnd::Answered { status, replayed } => {
                    (if replayed { "replayed" } else { "answered" }, Some(status))
                }
                RequestEnd::NoAnswer => ("no answer", None),
                RequestEnd::Abandoned => ("abandoned", None),
            };
            let name = match status {
                Some(status) => format!("{} {status}", request.op),
                None => format!("{} ({outcome})", request.op),
            };
            events.push(json!({
                "name": name, "cat": "request", "ph": "X", "ts": us(request.start_ns),
                "dur": us(request.end_ns - request.start_ns), "pid": pid, "tid": TID_REQUESTS + row,
                "args": {"api": timeline.name(request.api), "attempt": request.attempt,
                         "key": request.key, "resource": request.resource,
                         "outcome": outcome, "status": status},
            }));
        }
    }
}

fn leases(events: &mut Vec<Value>, timeline: &Timeline) {
    for (index, row) in timeline.leases.iter().enumerate() {
        let tid = 1 + index as u64;
        metadata(events, "thread_name", LEASES_PID, tid, &row.name);
        for term in &row.terms {
            let holder = timeline.name(term.holder);
            events.push(json!({
                "name": format!("{holder} token {}", term.token), "cat": "lease", "ph": "X",
                "ts": us(term.start_ns), "dur": us(term.end_ns - term.start_ns),
                "pid": LEASES_PID, "tid": tid,
                "args": {"lease": row.name, "holder": holder, "token": term.token},
            }));
        }
    }
    // Beliefs on each controller's own process, spread over threads.
    for (index, _) in timeline.nodes.iter().enumerate() {
        let node = sim::NodeId(index as u32);
        let pid = 1 + index as u64;
        let mut mine: Vec<(&str, &crate::timeline::Belief)> = timeline
            .leases
            .iter()
            .flat_map(|row| row.beliefs.iter().map(move |b| (row.name.as_str(), b)))
            .filter(|(_, belief)| belief.node == node)
            .collect();
        if mine.is_empty() {
            continue;
        }
        mine.sort_by_key(|(name, belief)| (belief.start_ns, belief.end_ns, *name));
        let spans: Vec<(u64, u64)> = mine.iter().map(|(_, b)| (b.start_ns, b.end_ns)).collect();
        let rows = pack(&spans);
        name_rows(events, pid, TID_BELIEFS, &rows, "beliefs");
        for ((name, belief), row) in mine.iter().zip(rows) {
            events.push(json!({
                "name": format!("holds {name} (token {})", belief.token), "cat": "belief",
                "ph": "X", "ts": us(belief.start_ns), "dur": us(belief.end_ns - belief.start_ns),
                "pid": pid, "tid": TID_BELIEFS + row,
                "args": {"lease": name, "token": belief.token, "ended": belief.reason},
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_overlapping_spans_on_different_rows_and_reuses_free_ones() {
        let rows = pack(&[(0, 10), (5, 15), (10, 20), (16, 17)]);
        assert_eq!(rows, vec![0, 1, 0, 1]);
    }
}
