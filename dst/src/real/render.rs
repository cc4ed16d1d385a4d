//! The Markdown of a real run's report: what was read and how it was
//! ordered, then one row per property (holds, VIOLATED with its first
//! message, or not judged and why).

use std::fmt::Write;

use super::{RealCheckReport, RealVerdict};
use crate::sweep::Outcome;

const MS: u64 = sim::MILLISECOND_NS;

/// The report as Markdown.
pub(super) fn markdown(report: &RealCheckReport) -> String {
    let mut out = String::new();
    let headline = match report.outcome {
        Outcome::Pass => "PASS",
        Outcome::Cost => "COST OVER BUDGET",
        Outcome::Safety => "SAFETY VIOLATION",
        Outcome::Liveness => "LIVENESS FAILURE",
        Outcome::Crash => "CRASH",
        Outcome::Nondeterministic => "NONDETERMINISTIC",
    };
    let _ = writeln!(out, "# History of `{}`: {headline}\n", report.read.dir);
    out.push_str("| | |\n|---|---|\n");
    for (label, value) in summary_rows(report) {
        let _ = writeln!(out, "| {label} | {} |", cell(&value));
    }
    out.push_str("\n| property | verdict | judged from |\n|---|---|---|\n");
    for verdict in &report.verdicts {
        let basis = match (verdict.basis, verdict.message_order) {
            (Some(basis), true) => format!("{basis} (message order*)"),
            (Some(basis), false) => basis.to_string(),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            verdict.verdict.property,
            cell(&verdict_text(verdict)),
            cell(&basis)
        );
    }
    out.push_str(
        "\n\\* message order: the verdict compares lines of different nodes that messages order \
         in a correct run, and trusts the host clock to put each message's send before its \
         receipt (true on one machine whose clock did not step back; across machines, while \
         their clocks agree better than one message's latency).\n",
    );
    out
}

/// The rows above the verdicts.
fn summary_rows(report: &RealCheckReport) -> Vec<(&'static str, String)> {
    let read = &report.read;
    let with_history = read.nodes - read.nodes_without_history.len();
    let mut read_row = format!(
        "{} lines from {with_history} of {} nodes, {} boots ({} restarts)",
        read.lines, read.nodes, read.boots, read.restarts
    );
    if !read.nodes_without_history.is_empty() {
        let _ = write!(
            read_row,
            "; no history file (nothing recorded): {}",
            read.nodes_without_history.join(", ")
        );
    }
    let truncated = if read.truncated.is_empty() {
        "none".to_string()
    } else {
        let files: Vec<String> = read
            .truncated
            .iter()
            .map(|t| format!("`{}` line {}", t.file, t.line))
            .collect();
        format!(
            "{} last lines cut short and dropped: {}",
            read.truncated.len(),
            files.join(", ")
        )
    };
    let span_ms = match (read.first_host_ns, read.last_host_ns) {
        (Some(first), Some(last)) => last.saturating_sub(first) / MS,
        _ => 0,
    };
    let order = format!(
        "{span_ms} ms of host clock; lines merged by host clock, then node, then seq, each node's \
         own order kept; times in messages are ms since the first line"
    );
    let logged = &read.faults_logged;
    let log = if logged.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = report.names.clone();
        let lines: Vec<String> = logged
            .iter()
            .map(|fault| {
                format!(
                    "at {} ms {}",
                    fault.at_ns / MS,
                    crate::report::fault_line(&fault.fault, &names)
                )
            })
            .collect();
        format!(
            "the fault log lists {}: {}; ",
            logged.len(),
            lines.join("; ")
        )
    };
    let faults = if report.quiet {
        format!(
            "{log}none injected beyond {} (--quiet); restarts count as faults; liveness bound {} ms",
            if logged.is_empty() {
                "restarts"
            } else {
                "the fault log and restarts"
            },
            report.liveness_bound_ms
        )
    } else {
        format!(
            "{log}unknown beyond that: `eventually.*` is not judged (pass --quiet if every fault \
             went through chaos, or none was injected)"
        )
    };
    let clients = if report.client_history {
        "recorded".to_string()
    } else {
        "none recorded: the client properties are not judged".to_string()
    };
    let mut rows = vec![
        ("read", read_row),
        ("truncated", truncated),
        ("host time", order),
        ("faults", faults),
        ("clients", clients),
    ];
    if !report.planted_bugs.is_empty() {
        rows.push((
            "planted bugs",
            format!(
                "**{}** (deliberate mistakes: see `config::Bug`)",
                report.planted_bugs.join(", ")
            ),
        ));
    }
    rows
}

/// `holds`, `**VIOLATED** (n): first message (at t ms, file line)` or
/// `not judged: reason`.
fn verdict_text(verdict: &RealVerdict) -> String {
    if let Some(reason) = &verdict.verdict.not_judged {
        return format!("not judged: {reason}");
    }
    let Some(first) = verdict.verdict.violations.first() else {
        return "holds".to_string();
    };
    let word = if verdict.judgement == "over budget" {
        "OVER BUDGET"
    } else {
        "VIOLATED"
    };
    let at = verdict
        .locations
        .first()
        .map_or(String::new(), |location| format!(", {location}"));
    format!(
        "**{word}** ({}): {} (at {} ms{at})",
        verdict.verdict.violation_count,
        first.message,
        first.time_ns / MS
    )
}

/// Text made safe for a table cell: no pipes, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
