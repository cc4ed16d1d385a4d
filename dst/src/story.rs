//! The story of a failure: the few events of a run that explain one
//! violation, in time order, with what each message carried.
//!
//! A trace of a failing run holds thousands of entries, and the twenty
//! around the violation are mostly other resources' business. A story
//! keeps what the violation is about ([`Violation::subjects`]: its
//! resource, idempotency key, shard, action and tokens) and who it names
//! ([`Violation::nodes`]):
//!
//! - every fault and heal (a shrunk reproducer has one or two, and they are
//!   the cause),
//! - lease acquisitions, beliefs and losses of the shard involved, by any
//!   controller,
//! - history records about the subjects, by any node,
//! - messages about the subjects to or from the nodes named, with their
//!   content (a drop, a duplicate or a hold weighs more than a delivery;
//!   a named node's lease keep-alives count when they are lost or held),
//! - and last the violating effect: the record the checker pointed at, or,
//!   for an `eventually` property judged when the run ended, the judgment.
//!
//! A story has at most [`MAX_LINES`] lines: when more events qualify it
//! keeps the most relevant, and among equally relevant ones those nearest
//! the violation, and says how many it left out. When fewer than
//! [`MIN_LINES`] do, it adds the nearest messages and records of the nodes
//! named, so the violating effect never stands without its surroundings.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plane::protocol::{Event, Msg, Subject};
use sim::{TraceEntry, TraceKind};

use crate::check::{PropertyKind, Violation};
use crate::report::{fault_line, name_nodes_in, seconds_ns, truncate, violation_for};
use crate::world::RunResult;

/// The most lines a story prints, heading included.
pub const MAX_LINES: usize = 40;
/// The fewest lines a story prints when the trace has enough to tell.
pub const MIN_LINES: usize = 10;
/// Heading lines: the violation, its message, its subjects and nodes, and
/// how many events were kept.
const HEADING_LINES: usize = 4;
/// The widest an event line gets before it is cut with `…`.
const LINE_CHARS_MAX: usize = 220;

// How relevant an event is: higher is kept first when the story is full.
// An idempotency key or an action id names one request or one effect, a
// resource names many, a shard or token many more: the first matter most.
const SCORE_EFFECT: u32 = 100;
const SCORE_FAULT: u32 = 50;
const SCORE_LEASE: u32 = 40;
/// A record naming what the violation names, by how specific the match
/// is (index: 1 shard or token, 2 resource, 3 key or action).
const SCORE_RECORD: [u32; 4] = [0, 10, 25, 30];
/// A message to or from a named node naming what the violation names,
/// just below a record of the same match.
const SCORE_MESSAGE: [u32; 4] = [0, 5, 20, 28];
/// The same message between nodes the violation does not name.
const SCORE_MESSAGE_ELSEWHERE: [u32; 4] = [0, 0, 8, 12];
/// A message lost, duplicated or held weighs more than a delivery.
const SCORE_ANOMALY_BONUS: u32 = 5;
/// A named node's lease traffic lost or held.
const SCORE_NAMED_ANOMALY: u32 = 12;
/// Messages and records of a named node about nothing the violation
/// names: only to bring a short story up to [`MIN_LINES`].
const SCORE_FILLER: u32 = 0;

/// One event that may go into the story.
struct Candidate {
    /// Its trace index: the order of the story.
    index: usize,
    time_ns: u64,
    score: u32,
    text: String,
}

/// The story of the first violation of `property` in `result` (or of the
/// run's first violation, if `property` has none, said in a first line),
/// in at most [`MAX_LINES`] lines, the last of which is the violating
/// effect. The run must have kept its trace (`RunOptions::keep_trace`);
/// otherwise, or without a violation, one line says so.
pub fn story(result: &RunResult, property: &str) -> String {
    let Some(violation) = violation_for(result, property) else {
        return "No violation in this run: there is no story to tell.\n".to_string();
    };
    if !property.is_empty() && violation.property != property {
        let told = story(result, violation.property);
        return format!(
            "`{property}` held in this run; the story of `{}` follows.\n{told}",
            violation.property
        );
    }
    let (Some(entries), Some(history)) = (result.trace.as_deref(), result.history.as_deref())
    else {
        return "The run kept no trace (run it with keep_trace): no story to tell.\n".to_string();
    };
    let kind = kind_of(result, violation.property);
    let records: BTreeMap<u64, &Event> = history
        .iter()
        .map(|entry| (entry.trace_index, &entry.event))
        .collect();
    let teller = Teller {
        result,
        violation,
        records: &records,
    };
    let effect_index = (violation.trace_index as usize).min(entries.len().saturating_sub(1));
    // A safety or cost violation is an effect at its entry: nothing later
    // is part of its story. A liveness one is judged when the run ends.
    let window_end = match kind {
        PropertyKind::Eventually => entries.len(),
        PropertyKind::Always | PropertyKind::Cost => effect_index + 1,
    };
    let mut candidates: Vec<Candidate> = entries[..window_end]
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| teller.candidate(index, entry, effect_index))
        .collect();
    let qualified = candidates.iter().filter(|c| c.score > SCORE_FILLER).count();
    let room = MAX_LINES - HEADING_LINES - usize::from(kind == PropertyKind::Eventually);
    select(&mut candidates, effect_index, room);
    let shown_relevant = candidates.iter().filter(|c| c.score > SCORE_FILLER).count();
    let mut out = teller.heading(qualified, shown_relevant, candidates.len());
    for candidate in &candidates {
        let marker = if candidate.index == effect_index && kind != PropertyKind::Eventually {
            ">>"
        } else if candidate.index == effect_index {
            " *"
        } else {
            "  "
        };
        let line = format!(
            "{marker} {:>13} {}",
            seconds_ns(candidate.time_ns),
            candidate.text
        );
        let _ = writeln!(out, "{}", truncate(&line, LINE_CHARS_MAX));
    }
    if kind == PropertyKind::Eventually {
        let line = format!(
            ">> {:>13} the run ends unresolved: {}",
            seconds_ns(violation.time_ns),
            name_nodes_in(&violation.message, &result.node_names)
        );
        let _ = writeln!(out, "{}", truncate(&line, LINE_CHARS_MAX));
    }
    debug_assert!(out.lines().count() <= MAX_LINES, "{out}");
    out
}

/// The first violation of `property`, else the run's first violation.
fn kind_of(result: &RunResult, property: &str) -> PropertyKind {
    result
        .check
        .verdicts
        .iter()
        .find(|verdict| verdict.property == property)
        .map_or(PropertyKind::Always, |verdict| verdict.kind)
}

/// Keeps the effect, then the most relevant candidates, nearest the
/// effect first among equals, up to `room`; brings a short story up to
/// [`MIN_LINES`] with the nearest filler; leaves the rest out. The kept
/// ones stay in trace order.
fn select(candidates: &mut Vec<Candidate>, effect_index: usize, room: usize) {
    let distance = |c: &Candidate| c.index.abs_diff(effect_index);
    let mut ranked: Vec<usize> = (0..candidates.len()).collect();
    ranked.sort_by_key(|&i| {
        let c = &candidates[i];
        (std::cmp::Reverse(c.score), distance(c), c.index)
    });
    let relevant = candidates.iter().filter(|c| c.score > SCORE_FILLER).count();
    let wanted = relevant
        .max(MIN_LINES - HEADING_LINES)
        .min(room)
        .min(candidates.len());
    let mut keep = vec![false; candidates.len()];
    for &i in ranked.iter().take(wanted) {
        keep[i] = true;
    }
    let mut kept = keep.into_iter();
    candidates.retain(|_| kept.next().unwrap_or(false));
}

/// What the story needs to read the run.
struct Teller<'a> {
    result: &'a RunResult,
    violation: &'a Violation,
    records: &'a BTreeMap<u64, &'a Event>,
}

impl Teller<'_> {
    fn name(&self, node: sim::NodeId) -> &str {
        self.result
            .node_names
            .get(node.index())
            .map_or("?", String::as_str)
    }

    fn names(&self, text: &str) -> String {
        name_nodes_in(text, &self.result.node_names)
    }

    fn named(&self, node: sim::NodeId) -> bool {
        self.violation.nodes.contains(&node)
    }

    /// The heading: what broke, where, about what, and what was kept.
    fn heading(&self, qualified: usize, shown_relevant: usize, shown: usize) -> String {
        let violation = self.violation;
        let mut out = format!(
            "Story of {} at {} ({} seed {})\n",
            violation.property,
            seconds_ns(violation.time_ns),
            self.result.scenario,
            self.result.seed
        );
        let _ = writeln!(
            out,
            "{}",
            truncate(
                &self.names(&violation.message),
                LINE_CHARS_MAX.saturating_sub(2)
            )
        );
        let about: Vec<String> = violation
            .subjects
            .iter()
            .map(|subject| self.names(&subject.to_string()))
            .collect();
        let nodes: Vec<&str> = violation.nodes.iter().map(|&n| self.name(n)).collect();
        let about = if about.is_empty() {
            "nothing the checker could name".to_string()
        } else {
            about.join(", ")
        };
        let line = format!("About: {about}; nodes: {}", nodes.join(", "));
        let _ = writeln!(out, "{}", truncate(&line, LINE_CHARS_MAX));
        let left_out = qualified.saturating_sub(shown_relevant);
        let filler = shown - shown_relevant;
        let mut count = format!("{shown_relevant} of {qualified} events about these");
        if left_out > 0 {
            let _ = write!(
                count,
                " ({left_out} left out: the least relevant and furthest from the violation)"
            );
        }
        if filler > 0 {
            let _ = write!(count, ", and {filler} nearby events of the nodes named");
        }
        let _ = writeln!(out, "{count}:");
        out
    }

    /// The story line `entry` would give, with its relevance, if any.
    fn candidate(
        &self,
        index: usize,
        entry: &TraceEntry,
        effect_index: usize,
    ) -> Option<Candidate> {
        let (score, text) = match entry.kind {
            TraceKind::Fault | TraceKind::Heal => (SCORE_FAULT, self.fault_text(entry)),
            TraceKind::Record => {
                let event = self.records.get(&(index as u64))?;
                let score = if index == effect_index {
                    SCORE_EFFECT
                } else {
                    self.record_score(entry, event)?
                };
                let text = format!(
                    "{:<14} {}",
                    self.name(entry.node),
                    self.names(&event.summary())
                );
                (score, text)
            }
            TraceKind::Deliver | TraceKind::Drop(_) | TraceKind::Duplicate | TraceKind::Hold => {
                let message = self.result.messages.get(&(index as u64))?;
                let score = self.message_score(entry, message)?;
                (score, self.message_text(entry, message))
            }
            TraceKind::Start | TraceKind::Timer | TraceKind::Restart | TraceKind::Buggify => {
                return None;
            }
        };
        Some(Candidate {
            index,
            time_ns: entry.time_ns,
            score,
            text,
        })
    }

    /// How specifically `subjects` match the violation's: 3 for a key or
    /// an action, 2 for a resource, 1 for a shard or token only, 0 for
    /// none.
    fn matching(&self, subjects: &[Subject]) -> usize {
        let ours = &self.violation.subjects;
        let mut best = 0;
        for subject in subjects.iter().filter(|s| ours.contains(s)) {
            best = best.max(match subject {
                Subject::Key(_) | Subject::Action(_) => 3,
                Subject::Resource(_) => 2,
                Subject::Shard(_) | Subject::Token(_) => 1,
            });
        }
        best
    }

    fn record_score(&self, entry: &TraceEntry, event: &Event) -> Option<u32> {
        let lease = matches!(
            event,
            Event::LeaseAcquired { .. }
                | Event::BeliefStarted { .. }
                | Event::BeliefEnded { .. }
                | Event::LeaseStored { .. }
                | Event::FenceRaised { .. }
        );
        let subjects = event.subjects();
        let shard_named = subjects
            .iter()
            .any(|s| matches!(s, Subject::Shard(_)) && self.violation.subjects.contains(s));
        match self.matching(&subjects) {
            _ if lease && shard_named => Some(SCORE_LEASE),
            0 if self.violation.subjects.is_empty() && self.named(entry.node) => {
                Some(SCORE_RECORD[1])
            }
            0 if self.named(entry.node) => Some(SCORE_FILLER),
            0 => None,
            level => Some(SCORE_RECORD[level]),
        }
    }

    fn message_score(&self, entry: &TraceEntry, message: &Msg) -> Option<u32> {
        let involved = self.named(entry.node) || self.named(entry.peer);
        let anomaly = if entry.kind == TraceKind::Deliver {
            0
        } else {
            SCORE_ANOMALY_BONUS
        };
        match (self.matching(&message.subjects()), involved) {
            (0, true) if self.violation.subjects.is_empty() => Some(SCORE_MESSAGE[1] + anomaly),
            // A named node's lease traffic lost or held (a keep-alive cut
            // off by a partition): what ends a session, often the cause.
            (0, true) if anomaly > 0 && message.is_lease_traffic() => Some(SCORE_NAMED_ANOMALY),
            (0, true) => Some(SCORE_FILLER),
            (0, false) => None,
            (level, true) => Some(SCORE_MESSAGE[level] + anomaly),
            (level, false) if SCORE_MESSAGE_ELSEWHERE[level] > 0 => {
                Some(SCORE_MESSAGE_ELSEWHERE[level] + anomaly)
            }
            (_, false) => None,
        }
    }

    /// `worker-1 <- controller-1: Act ...`, `store -> api-0 DROPPED (partition): ...`.
    fn message_text(&self, entry: &TraceEntry, message: &Msg) -> String {
        let (node, peer) = (self.name(entry.node), self.name(entry.peer));
        let how = match entry.kind {
            TraceKind::Deliver => format!("{node:<14} <- {peer}:"),
            TraceKind::Drop(reason) => format!("{node:<14} -> {peer} LOST ({reason:?}):"),
            TraceKind::Duplicate => format!("{node:<14} -> {peer} duplicated:"),
            TraceKind::Hold => format!("{node:<14} -> {peer} held by a clog:"),
            _ => format!("{node:<14}"),
        };
        format!("{how} {}", self.names(&message.summary()))
    }

    fn fault_text(&self, entry: &TraceEntry) -> String {
        let verb = if entry.kind == TraceKind::Fault {
            "FAULT"
        } else {
            "HEAL "
        };
        let fault = self
            .result
            .faults
            .iter()
            .find(|scheduled| sim::stable_hash(*scheduled) == entry.digest);
        match fault {
            Some(scheduled) => format!(
                "{verb} {}",
                fault_line(&scheduled.fault, &self.result.node_names)
            ),
            None => format!("{verb} at {}", self.name(entry.node)),
        }
    }
}
