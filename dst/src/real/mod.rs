//! Judging a real run: the history a real host (`serve`) wrote, read from
//! its data directory and judged by the same checkers as a simulated run
//! (`controlplane check --history DIR`).
//!
//! The directory holds `cluster.json` ([`plane::cluster::ClusterFile`])
//! and, per node, `<name>/history.jsonl`: one
//! [`node::history::HistoryLine`] per recorded event. `load` reads and
//! merges them; `rules` says, property by property, what a real history
//! can judge and why the rest cannot be; [`check_history`] runs the
//! checkers and keeps each verdict only where its rule allows, replacing
//! the others with a "not judged" verdict that says why.
//!
//! What a real run lacks, against a simulated one:
//!
//! - **One clock.** Lines of different nodes are merged by the host
//!   clock; only each node's own order is certain. See `rules` for what
//!   that leaves judged.
//! - **A fault list.** Nothing lists what went wrong or when it healed. A
//!   restart shows in the history (a node's `boot` changes), and is given
//!   to the checkers as a crash from the node's last line in the old boot
//!   to its first in the new one, so a restart ends the node's beliefs.
//!   Everything else (partitions, pauses, a node killed for good) is
//!   invisible: `eventually.*` is judged only if the user says no faults
//!   were injected ([`RealOptions::quiet`]), and then only once the run
//!   stopped taking new requests a liveness bound before its end.
//! - **A list of disturbances** (messages lost or slowed, BUGGIFY): the
//!   properties about quiet moments are never judged.

mod export;
mod limits;
mod load;
mod render;
mod rules;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use sim::{HistoryEntry, ScheduledFault};

use crate::check::{CheckInput, Judgement, PropertyKind, Verdict, check};
use crate::error::Error;
use crate::report::name_nodes_in;
use crate::scenario::RunSpec;
use crate::sweep::Outcome;
use plane::protocol::{Event, Recovery};

pub use export::{SIMULATED_EPOCH_NS, write_simulated_history};
use load::Loaded;
pub use load::{HistoryRead, TruncatedLine};
use rules::{Needs, Rule, rule_of};

const MS: u64 = sim::MILLISECOND_NS;

/// How to judge a real run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealOptions {
    /// No faults were injected into the run (no partitions, kills, pauses
    /// or clock steps): its end may be judged as the end of a healed run.
    /// Restarts the history shows still count as faults. Without it, every
    /// `eventually.*` property is not judged: a real run keeps no fault
    /// list, so nothing says when its faults healed.
    pub quiet: bool,
    /// Within how long of its last fault (here: its last restart) and its
    /// last new request the run must have settled, ms. The default is a
    /// scenario's default.
    pub liveness_bound_ms: u64,
}

impl Default for RealOptions {
    fn default() -> Self {
        Self {
            quiet: false,
            liveness_bound_ms: RunSpec::default().liveness_bound_ms,
        }
    }
}

/// One property's verdict on a real run.
#[derive(Clone, Debug, Serialize)]
pub struct RealVerdict {
    /// `holds`, `violated` (a `cost.*`: `over budget`) or `not judged`.
    pub judgement: &'static str,
    /// The checkers' verdict: node ids in its messages are names, and a
    /// trace index is the position in the merged history. Its `not_judged`
    /// says why when it was not judged.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// What a judged verdict was judged from.
    pub basis: Option<&'static str>,
    /// The verdict trusts the host clock to order a message's send before
    /// its receipt across nodes (see the report's footnote).
    pub message_order: bool,
    /// Per kept violation: the line it points at, `api-0/history.jsonl
    /// line 12`.
    pub locations: Vec<String>,
}

/// The judgement of a real run's history.
#[derive(Clone, Debug, Serialize)]
pub struct RealCheckReport {
    /// Pass, or the worst failure: safety, then liveness, then cost.
    pub outcome: Outcome,
    /// What was read.
    pub read: HistoryRead,
    /// [`RealOptions::quiet`].
    pub quiet: bool,
    /// [`RealOptions::liveness_bound_ms`].
    pub liveness_bound_ms: u64,
    /// Whether any client recorded a request or an answer.
    pub client_history: bool,
    /// Bugs the run's nodes were planted with (`cluster.json`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planted_bugs: Vec<String>,
    /// One per property, in the checkers' order.
    pub verdicts: Vec<RealVerdict>,
    /// History lines by event kind.
    pub events: BTreeMap<String, u64>,
    /// The members' names, by node id.
    #[serde(skip)]
    pub names: Vec<String>,
}

impl RealCheckReport {
    /// The verdict of `property`, if there is one.
    pub fn verdict(&self, property: &str) -> Option<&RealVerdict> {
        self.verdicts
            .iter()
            .find(|verdict| verdict.verdict.property == property)
    }

    /// The report as Markdown: what was read, then a table of verdicts.
    pub fn markdown(&self) -> String {
        render::markdown(self)
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }
}

/// Judges the history in `dir` with the default options (faults possible,
/// so no `eventually.*` is judged). Bad input (no directory, no or a bad
/// `cluster.json`, settings a scenario could not have, a malformed line
/// before a file's last, a line naming a node or shard `cluster.json` does
/// not have, no history line at all) is an [`Error::BadInput`] naming the
/// file and the line.
pub fn check_history(dir: &Path) -> Result<RealCheckReport, Error> {
    check_history_with(dir, &RealOptions::default())
}

/// Judges the history in `dir`: see [`check_history`].
pub fn check_history_with(dir: &Path, options: &RealOptions) -> Result<RealCheckReport, Error> {
    let loaded = load::load(dir)?;
    Ok(judge(&loaded, options))
}

/// Runs the checkers over a loaded history and keeps what its rules allow.
fn judge(loaded: &Loaded, options: &RealOptions) -> RealCheckReport {
    let settings = &loaded.cluster.settings;
    let history = &loaded.history;
    let end_ns = history.last().map_or(0, |entry| entry.time_ns);
    // The restarts the history shows and the faults the host logged.
    let mut faults: Vec<ScheduledFault> = loaded
        .restarts
        .iter()
        .chain(&loaded.read.faults_logged)
        .cloned()
        .collect();
    faults.sort_by_key(|fault| fault.at_ns);
    let healed_ns = faults
        .iter()
        .filter_map(ScheduledFault::healed_at_ns)
        .max()
        .unwrap_or(0);
    let liveness_bound_ns = options.liveness_bound_ms.saturating_mul(MS);
    let input = CheckInput {
        history,
        faults: &faults,
        topology: &loaded.cluster.topology,
        shard_count: settings.controller.shard_count,
        healed_ns,
        end_ns,
        liveness_bound_ns,
        request_timeout_ns: settings.client.request_timeout_ms.saturating_mul(MS),
        lease_ttl_ns: settings.controller.session_ttl_ms.saturating_mul(MS),
        disturbances_ns: &[],
    };
    let checked = check(&input);
    let names: Vec<String> = loaded
        .cluster
        .nodes
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let facts = Facts::of(loaded, options, &names, end_ns);
    let verdicts: Vec<RealVerdict> = checked
        .verdicts
        .into_iter()
        .map(|verdict| {
            let rule = rule_of(verdict.property).expect("every property has a rule (tested)");
            match facts.why_not(rule) {
                Some(reason) => not_judged(verdict, reason),
                None => judged(verdict, rule, loaded, &names),
            }
        })
        .collect();
    RealCheckReport {
        outcome: outcome(&verdicts),
        read: loaded.read.clone(),
        quiet: options.quiet,
        liveness_bound_ms: options.liveness_bound_ms,
        client_history: facts.clients,
        planted_bugs: loaded
            .cluster
            .bugs
            .iter()
            .map(|bug| bug.name().to_string())
            .collect(),
        verdicts,
        events: count_events(history),
        names,
    }
}

/// What the whole history says about which rules can be met.
struct Facts {
    /// No line at all.
    empty: bool,
    /// A client recorded a request or an answer.
    clients: bool,
    /// [`RealOptions::quiet`].
    quiet: bool,
    /// Why the end of the run cannot be judged as settled, if it cannot.
    unsettled: Option<String>,
}

impl Facts {
    fn of(loaded: &Loaded, options: &RealOptions, names: &[String], end_ns: u64) -> Facts {
        let history = &loaded.history;
        let clients = history.iter().any(|entry| {
            matches!(
                entry.event,
                Event::RequestSent { .. } | Event::ResponseReceived { .. }
            )
        });
        Facts {
            empty: history.is_empty(),
            clients,
            quiet: options.quiet,
            unsettled: unsettled(loaded, options, names, end_ns),
        }
    }

    /// Why `rule` cannot be met on this history; `None` if it can.
    fn why_not(&self, rule: &Rule) -> Option<String> {
        if let Needs::Never(reason) = rule.needs {
            return Some(reason.to_string());
        }
        if self.empty {
            return Some("the history is empty: no node recorded anything".to_string());
        }
        let quiet_needed = matches!(rule.needs, Needs::QuietEnd | Needs::QuietClients);
        if quiet_needed && !self.quiet {
            return Some(
                "asks what held once faults healed, and a real run keeps no fault list: pass \
                 --quiet if none were injected"
                    .to_string(),
            );
        }
        let clients_needed = matches!(rule.needs, Needs::Clients | Needs::QuietClients);
        if clients_needed && !self.clients {
            return Some("no client history".to_string());
        }
        match rule.needs {
            Needs::QuietEnd => self.unsettled.clone(),
            _ => None,
        }
    }
}

/// Why the run's end is not the end of a settled run: it came less than a
/// liveness bound after the run's start, its last restart, or its last new
/// request (a client's first try of a write, or a key started). `None` if
/// it is settled.
fn unsettled(
    loaded: &Loaded,
    options: &RealOptions,
    names: &[String],
    end_ns: u64,
) -> Option<String> {
    let bound_ns = options.liveness_bound_ms.saturating_mul(MS);
    let bound = format!("the liveness bound ({} ms)", options.liveness_bound_ms);
    // A real run's end is its last line: whatever it did after that, it
    // recorded nothing, so nothing shows how long it went on.
    let end = format!("the history's last line (at {} ms)", end_ns / MS);
    let last_restart = loaded
        .restarts
        .iter()
        .filter_map(|fault| Some((fault.healed_at_ns()?, fault.fault.nodes())))
        .max();
    let last_fault = loaded
        .read
        .faults_logged
        .iter()
        .map(|fault| (fault.healed_at_ns(), fault))
        .max_by_key(|(healed, _)| healed.unwrap_or(u64::MAX));
    let last_request = loaded
        .history
        .iter()
        .rev()
        .find(|entry| starts_work(&entry.event))
        .map(|entry| entry.time_ns);
    if end_ns < bound_ns {
        return Some(format!(
            "the history spans {} ms, less than {bound}",
            end_ns / MS
        ));
    }
    if let Some((healed, fault)) = last_fault {
        let what = crate::report::fault_line(&fault.fault, names);
        match healed {
            None => {
                return Some(format!(
                    "a fault the fault log lists never healed ({what}, from {} ms)",
                    fault.at_ns / MS
                ));
            }
            Some(healed_ns) if healed_ns.saturating_add(bound_ns) > end_ns => {
                return Some(format!(
                    "the last fault the fault log lists ({what}) healed at {} ms, less than {bound} before {end}",
                    healed_ns / MS
                ));
            }
            Some(_) => {}
        }
    }
    if let Some((back_ns, nodes)) =
        last_restart.filter(|(back_ns, _)| back_ns.saturating_add(bound_ns) > end_ns)
    {
        let who: Vec<&str> = nodes
            .iter()
            .filter_map(|node| names.get(node.index()).map(String::as_str))
            .collect();
        return Some(format!(
            "the last restart ({}, back at {} ms) came less than {bound} before {end}",
            who.join(", "),
            back_ns / MS
        ));
    }
    last_request
        .filter(|&at_ns| at_ns.saturating_add(bound_ns) > end_ns)
        .map(|at_ns| {
            format!(
                "the last new request (at {} ms) came less than {bound} before {end}: nothing \
                 shows the run went on long enough to settle",
                at_ns / MS
            )
        })
}

/// Whether `event` starts new work: a client's first try of a write, an
/// API node starting a key, or the store recording a key's start.
fn starts_work(event: &Event) -> bool {
    match event {
        Event::RequestSent { attempt, op, .. } => *attempt == 0 && !op.is_read(),
        Event::KeyStarted { .. } => true,
        Event::LedgerWritten { recovery, .. } => matches!(recovery, Recovery::Started),
        _ => false,
    }
}

fn not_judged(verdict: Verdict, reason: String) -> RealVerdict {
    RealVerdict {
        judgement: "not judged",
        verdict: Verdict::not_judged(verdict.property, verdict.kind, reason),
        basis: None,
        message_order: false,
        locations: Vec::new(),
    }
}

/// A judged verdict, its messages naming nodes and lines instead of ids
/// and trace indices.
fn judged(mut verdict: Verdict, rule: &Rule, loaded: &Loaded, names: &[String]) -> RealVerdict {
    let locations = verdict
        .violations
        .iter()
        .map(|violation| location(loaded, names, violation.trace_index))
        .collect();
    for violation in &mut verdict.violations {
        let named = name_nodes_in(&violation.message, names);
        violation.message = name_trace_indices(&named, loaded, names);
    }
    let judgement = match verdict.judgement() {
        Judgement::Holds => "holds",
        Judgement::Violated if verdict.kind == PropertyKind::Cost => "over budget",
        Judgement::Violated => "violated",
        Judgement::NotJudged(_) => "not judged",
    };
    RealVerdict {
        judgement,
        verdict,
        basis: Some(rule.basis),
        message_order: rule.message_order,
        locations,
    }
}

/// The file and line of the history entry at `trace_index`.
fn location(loaded: &Loaded, names: &[String], trace_index: u64) -> String {
    match loaded.origin.get(trace_index as usize) {
        Some(&(node, line)) => {
            let name = names.get(node.index()).map_or("?", String::as_str);
            format!("{name}/{} line {line}", node::history::HISTORY_FILE)
        }
        None => "the end of the history".to_string(),
    }
}

/// `message` with every `trace index N` replaced by the file and line of
/// entry N: a real run's reader has files, not a trace.
fn name_trace_indices(message: &str, loaded: &Loaded, names: &[String]) -> String {
    const MARK: &str = "trace index ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    // Bounded: every round consumes the text up to and past one mark.
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<u64>() {
            Ok(index) => {
                out.push_str(&rest[..at]);
                out.push_str(&location(loaded, names, index));
            }
            Err(_) => out.push_str(&rest[..at + MARK.len()]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The worst outcome the judged verdicts show.
fn outcome(verdicts: &[RealVerdict]) -> Outcome {
    let failed = |kind: PropertyKind| {
        verdicts
            .iter()
            .any(|v| v.verdict.kind == kind && matches!(v.verdict.judgement(), Judgement::Violated))
    };
    if failed(PropertyKind::Always) {
        Outcome::Safety
    } else if failed(PropertyKind::Eventually) {
        Outcome::Liveness
    } else if failed(PropertyKind::Cost) {
        Outcome::Cost
    } else {
        Outcome::Pass
    }
}

/// History lines by event kind.
fn count_events(history: &[HistoryEntry<Event>]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for entry in history {
        *counts
            .entry(entry.event.kind_name().to_string())
            .or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
