//! Reports: one [`Report`] per run, built from the run's result, printed as
//! Markdown for people or JSON for tools, so the two never disagree.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::check::{NEVER_HEALED_NOTE, PropertyKind, Violation};
use crate::engine::Engine;
use crate::sweep::{Outcome, Summary};
use crate::world::RunResult;
use plane::config::Bug;

const MS: u64 = sim::MILLISECOND_NS;

/// A run's goodput (see [`Report::goodput`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Goodput {
    /// Logical requests sent with a fresh key, and reads.
    pub fresh: u64,
    /// Of those, the ones that got a successful answer.
    pub succeeded: u64,
    /// Of those, the ones sent while no fault was active within the
    /// liveness bound (judged by `eventually.available`).
    pub judged: u64,
    /// Of the judged ones, those that succeeded within the bound.
    pub judged_met: u64,
}

/// `part` of `whole` as a whole percentage, rounded down ("-" of nothing).
fn percent(part: u64, whole: u64) -> String {
    match whole {
        0 => "-".to_string(),
        _ => format!("{}%", part * 100 / whole),
    }
}

/// p50, p99 and max of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Percentiles of nanosecond samples, reported in milliseconds, through
    /// an HdrHistogram (3 significant figures).
    pub(crate) fn of_ns(samples: impl IntoIterator<Item = u64>) -> Percentiles {
        let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("valid histogram");
        for ns in samples {
            histogram.record(ns / 1_000).expect("in range");
        }
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us / 1_000;
        Percentiles {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.5)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
        }
    }
}

impl Outcome {
    /// How bad the outcome is, for picking the one a sweep (or any set of
    /// runs) exits with: higher is worse. Ranked explicitly rather than by
    /// the enum's order: results that cannot be trusted (nondeterminism)
    /// or a system that panicked first, then a safety violation (something
    /// happened that must never happen), then a liveness failure, then a
    /// cost over budget. A sweep with both a safety and a liveness failure
    /// must exit with the safety code.
    pub(crate) fn severity(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Cost => 1,
            Outcome::Liveness => 2,
            Outcome::Safety => 3,
            Outcome::Crash => 4,
            Outcome::Nondeterministic => 5,
        }
    }

    /// The most severe of `outcomes` (see [`Outcome::severity`]); `Pass`
    /// for none.
    pub fn worst(outcomes: impl IntoIterator<Item = Outcome>) -> Outcome {
        outcomes
            .into_iter()
            .max_by_key(|outcome| outcome.severity())
            .unwrap_or(Outcome::Pass)
    }
}

/// One property's line in the report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PropertyLine {
    /// e.g. `always.one_charge_per_key`.
    pub property: String,
    /// `holds`, `violated`, `over budget` (a `cost.*`), `not judged` (the
    /// run stopped at a limit first, which fails it) or `not judged:
    /// faults never healed` (a liveness failure: a fault never healed).
    pub verdict: String,
    /// Violations counted.
    pub violations: u64,
    /// The first violation.
    pub first: Option<Violation>,
}

/// Everything a report shows.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    /// The engine that ran it.
    pub engine: Engine,
    /// Scenario name.
    pub scenario: String,
    /// Hash of the resolved scenario.
    pub config_hash: String,
    /// The seed.
    pub seed: u64,
    /// How the run ended.
    pub outcome: Outcome,
    /// Why the simulation stopped.
    pub stop: sim::StopReason,
    /// The trace hash naming the run.
    pub trace_hash: String,
    /// Simulated time at the end, ms.
    pub end_ms: u64,
    /// When the last fault healed, ms.
    pub healed_ms: Option<u64>,
    /// Simulator counters.
    pub stats: sim::Stats,
    /// History events by kind (requests, replays, side effects, ...).
    pub history_counts: BTreeMap<String, u64>,
    /// Client responses by HTTP status.
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Client request latency: first send of a key to its final answer.
    pub request_latency_ms: Percentiles,
    /// Goodput: fresh requests and reads sent, and how many succeeded;
    /// of those `eventually.available` judged, how many met its bound.
    pub goodput: Goodput,
    /// Time from each failover's lease loss to the next holder, ms.
    pub failover_ms: Percentiles,
    /// Leadership terms (lease acquisitions).
    pub leadership_terms: u64,
    /// Shards that changed holder.
    pub shards_moved: u64,
    /// Membership changes the controllers observed.
    pub membership_changes: u64,
    /// Shard moves rendezvous hashing makes for those changes.
    pub shard_moves_baseline: u64,
    /// The textbook `shard_count / (n + 1)` per join, summed.
    pub shard_moves_ideal: u64,
    /// Planted bugs: a run with any is an exhibit, not a real failure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planted_bugs: Vec<String>,
    /// Total and largest time two controllers both believed they held one
    /// shard, ms.
    pub belief_overlap_ms: (u64, u64),
    /// Time after the last heal until everything converged, ms.
    pub convergence_ms: Option<u64>,
    /// Per resource, how long each change took to converge: from the moment
    /// running first differed from desired to the moment it matched again.
    pub convergence_time_ms: Percentiles,
    /// Unconverged resources at each simulated second.
    pub unconverged_per_second: Vec<u32>,
    /// Every property's verdict.
    pub properties: Vec<PropertyLine>,
    /// How often each interesting path was reached.
    pub sometimes: BTreeMap<String, u64>,
    /// Faults applied.
    pub faults: usize,
    /// The command that reruns this run.
    pub rerun: String,
}

impl Report {
    /// Builds the report of a run.
    pub(crate) fn new(result: &RunResult, rerun: &str) -> Report {
        let m = &result.check.measurements;
        let properties = result
            .check
            .verdicts
            .iter()
            .map(|verdict| PropertyLine {
                property: verdict.property.to_string(),
                verdict: if verdict.note.is_some() && verdict.violation_count > 0 {
                    NEVER_HEALED_NOTE.to_string()
                } else if verdict.note.is_some() {
                    "not judged".to_string()
                } else if verdict.violation_count == 0 {
                    "holds".to_string()
                } else if verdict.kind == PropertyKind::Cost {
                    "over budget".to_string()
                } else {
                    "violated".to_string()
                },
                violations: verdict.violation_count,
                first: verdict.violations.first().map(|violation| Violation {
                    message: name_nodes_in(&violation.message, &result.node_names),
                    ..violation.clone()
                }),
            })
            .collect();
        Report {
            engine: result.engine,
            scenario: result.scenario.clone(),
            config_hash: format!("{:#018x}", result.config_hash),
            seed: result.seed,
            outcome: Outcome::of(result),
            stop: result.stop,
            trace_hash: format!("{:#018x}", result.trace_hash),
            end_ms: result.end_ns / MS,
            healed_ms: result.healed_ns.map(|ns| ns / MS),
            stats: result.stats.clone(),
            history_counts: result.history_counts.clone(),
            responses_by_status: result.responses_by_status.clone(),
            request_latency_ms: Percentiles::of_ns(m.request_latencies_ns.iter().copied()),
            goodput: Goodput {
                fresh: m.fresh_requests,
                succeeded: m.fresh_succeeded,
                judged: m.availability_judged,
                judged_met: m.availability_met,
            },
            failover_ms: Percentiles::of_ns(
                m.failovers
                    .iter()
                    .map(|f| f.regained_ns.saturating_sub(f.lost_ns)),
            ),
            leadership_terms: m.leadership_terms,
            shards_moved: m.shards_moved,
            membership_changes: m.membership_changes,
            shard_moves_baseline: m.shard_moves_baseline,
            shard_moves_ideal: m.shard_moves_ideal,
            planted_bugs: result
                .bugs
                .iter()
                .map(|bug| bug.name().to_string())
                .collect(),
            belief_overlap_ms: (m.belief_overlap_ns_total / MS, m.belief_overlap_ns_max / MS),
            convergence_ms: m.convergence_ns.map(|ns| ns / MS),
            convergence_time_ms: Percentiles::of_ns(m.convergence_spells_ns.iter().copied()),
            unconverged_per_second: m.unconverged_per_second.clone(),
            properties,
            sometimes: result.check.sometimes.clone(),
            faults: result.faults.len(),
            rerun: rerun.to_string(),
        }
    }
}

/// The run's report as pretty JSON, with a rerun command naming the
/// scenario by name, its planted bugs and its engine. The CLI knows better
/// (a path, an artifact) and uses [`json_with_rerun`].
pub fn json(result: &RunResult) -> String {
    let rerun = simulate_command(&result.scenario, result.seed, &result.bugs, result.engine);
    json_with_rerun(result, &rerun)
}

/// The one-line command that reruns `scenario` (a name or a path) at
/// `seed` with `bugs` planted, on `engine`.
pub fn simulate_command(scenario: &str, seed: u64, bugs: &[Bug], engine: Engine) -> String {
    let bugs: String = bugs.iter().map(|bug| format!(" --bug {bug}")).collect();
    format!(
        "{} simulate --scenario {scenario} --seed {seed}{bugs}{}",
        engine.program(),
        engine.flag()
    )
}

/// The one-line command that replays the artifact at `path` on `engine`
/// (an artifact names its engine, but the flag keeps an engine given in
/// place of it).
pub fn replay_command(path: &Path, engine: Engine) -> String {
    format!(
        "{} replay {}{}",
        engine.program(),
        path.display(),
        engine.flag()
    )
}

/// The run's report as pretty JSON, with `rerun` as the command that
/// reruns it.
pub fn json_with_rerun(result: &RunResult, rerun: &str) -> String {
    serde_json::to_string_pretty(&Report::new(result, rerun)).expect("reports serialize")
}

/// Node ids as the run names them (`[controller-1, store]`); an id the
/// run does not know prints as `n7`.
pub(crate) fn node_list(nodes: &[sim::NodeId], names: &[String]) -> String {
    let named: Vec<String> = nodes.iter().map(|&node| node_name(node, names)).collect();
    format!("[{}]", named.join(", "))
}

fn node_name(node: sim::NodeId, names: &[String]) -> String {
    names
        .get(node.index())
        .cloned()
        .unwrap_or_else(|| format!("n{}", node.0))
}

/// A checker's message with every node id token (`n4`, as `NodeId`
/// prints) replaced by the node's name (`controller-1`). A token is `n` and
/// digits standing alone: not inside a word, a key or a hex id.
pub(crate) fn name_nodes_in(message: &str, names: &[String]) -> String {
    let bytes = message.as_bytes();
    let mut out = String::with_capacity(message.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_token = bytes[i] == b'n'
            && (i == 0 || !is_word_byte(bytes[i - 1]))
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !starts_token {
            i += 1;
            continue;
        }
        let end = (i + 1..bytes.len())
            .find(|&j| !bytes[j].is_ascii_digit())
            .unwrap_or(bytes.len());
        let name = message[i + 1..end]
            .parse::<u32>()
            .ok()
            .and_then(|index| names.get(index as usize));
        match name {
            Some(name) if !bytes.get(end).copied().is_some_and(is_word_byte) => {
                out.push_str(&message[copied..i]);
                out.push_str(name);
                copied = end;
            }
            _ => {}
        }
        i = end;
    }
    out.push_str(&message[copied..]);
    out
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// One fault, with node names: `crash store, restarted after 2.000 s`.
pub fn fault_line(fault: &sim::Fault, names: &[String]) -> String {
    let name = |node: sim::NodeId| node_name(node, names);
    let span = |ns: u64| seconds(ns / MS);
    match fault {
        sim::Fault::Partition {
            side_a,
            side_b,
            one_way,
            duration_ns,
        } => format!(
            "{} {} {} {} for {}",
            if *one_way {
                "one-way partition"
            } else {
                "partition"
            },
            node_list(side_a, names),
            if *one_way { "->" } else { "|" },
            node_list(side_b, names),
            span(*duration_ns)
        ),
        sim::Fault::Clog {
            from,
            to,
            duration_ns,
        } => format!(
            "clog {} -> {} for {}",
            name(*from),
            name(*to),
            span(*duration_ns)
        ),
        sim::Fault::Crash {
            node,
            restart_after_ns: Some(after_ns),
        } => format!("crash {}, restarted after {}", name(*node), span(*after_ns)),
        sim::Fault::Crash {
            node,
            restart_after_ns: None,
        } => format!("crash {}, never restarted", name(*node)),
        sim::Fault::Reboot {
            node,
            restart_after_ns,
        } => format!(
            "reboot {}, back after {} on a new boot",
            name(*node),
            span(*restart_after_ns)
        ),
        sim::Fault::Pause { node, duration_ns } => {
            format!("pause {} for {}", name(*node), span(*duration_ns))
        }
        sim::Fault::ClockJump { node, delta_ns } => format!(
            "clock jump {} by {}{}",
            name(*node),
            if *delta_ns < 0 { "-" } else { "+" },
            span(delta_ns.unsigned_abs())
        ),
        sim::Fault::Degrade {
            nodes,
            drop_ppm,
            duplicate_ppm,
            delay_ns,
            duration_ns,
        } => format!(
            "degrade {} (drop {drop_ppm} ppm, duplicate {duplicate_ppm} ppm, +{}) for {}",
            if nodes.is_empty() {
                "every link".to_string()
            } else {
                format!("links of {}", node_list(nodes, names))
            },
            span(*delay_ns),
            span(*duration_ns)
        ),
        sim::Fault::ClockDrift {
            node,
            drift_ppm,
            duration_ns,
        } => format!(
            "clock drift {} at {drift_ppm:+} ppm for {}",
            name(*node),
            span(*duration_ns)
        ),
    }
}

/// A compact chart: one block character per sample, scaled to the maximum.
pub(crate) fn sparkline(samples: &[u32]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = samples.iter().copied().max().unwrap_or(0);
    samples
        .iter()
        .map(|&value| {
            if value == 0 {
                '·'
            } else {
                BLOCKS[((u64::from(value) * 7).div_ceil(u64::from(max.max(1)))) as usize]
            }
        })
        .collect()
}

/// The run's report as Markdown.
pub fn markdown(result: &RunResult, rerun: &str) -> String {
    let r = Report::new(result, rerun);
    let mut out = String::new();
    let verdict = match r.outcome {
        Outcome::Pass => "PASS",
        Outcome::Cost => "COST OVER BUDGET",
        Outcome::Safety => "SAFETY VIOLATION",
        Outcome::Liveness => "LIVENESS FAILURE",
        Outcome::Crash => "CRASH",
        Outcome::Nondeterministic => "NONDETERMINISTIC",
    };
    let _ = writeln!(out, "# `{}` seed {}: {verdict}\n", r.scenario, r.seed);
    let count = |name: &str| r.history_counts.get(name).copied().unwrap_or(0);
    let s = &r.stats;
    let mut rows: Vec<(String, String)> = Vec::new();
    if !r.planted_bugs.is_empty() {
        rows.push((
            "planted bugs".into(),
            format!(
                "**{}** (deliberate mistakes: see `config::Bug`)",
                r.planted_bugs.join(", ")
            ),
        ));
    }
    rows.extend([
        ("config hash".into(), format!("`{}`", r.config_hash)),
        ("trace hash".into(), format!("`{}`", r.trace_hash)),
        ("engine".into(), r.engine.to_string()),
        (
            "stopped".into(),
            format!(
                "{:?} at {} (faults healed at {})",
                r.stop,
                seconds(r.end_ms),
                r.healed_ms.map_or("never".into(), seconds)
            ),
        ),
        ("events".into(), events_row(s)),
        (
            "messages".into(),
            if r.engine.is_sim() {
                format!(
                    "{} sent, {} delivered, {} dropped ({} random, {} partition, {} node down{}), {} duplicated, {} held by clogs",
                    s.messages_sent,
                    s.messages_delivered,
                    s.messages_dropped_random
                        + s.messages_dropped_partition
                        + s.messages_dropped_node_down
                        + s.messages_dropped_buggify,
                    s.messages_dropped_random,
                    s.messages_dropped_partition,
                    s.messages_dropped_node_down,
                    if s.messages_dropped_buggify > 0 {
                        format!(", {} buggify", s.messages_dropped_buggify)
                    } else {
                        String::new()
                    },
                    s.messages_duplicated,
                    s.messages_held
                )
            } else {
                // Another engine's network loses and holds messages without
                // saying which: only what was sent and handled is known.
                format!(
                    "{} sent, {} duplicated, {} delivered ({} lost or undelivered at the end: {} does not say why)",
                    s.messages_sent,
                    s.messages_duplicated,
                    s.messages_delivered,
                    (s.messages_sent + s.messages_duplicated).saturating_sub(s.messages_delivered),
                    r.engine
                )
            },
        ),
        (
            "faults".into(),
            if s.faults_by_kind.is_empty() {
                "none".into()
            } else {
                s.faults_by_kind
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ]);
    if !s.buggify.is_empty() {
        rows.push(("buggify".into(), buggify_line(&s.buggify)));
    }
    rows.extend([
        (
            "requests".into(),
            format!(
                "{} sent ({} retries), {} abandoned; responses: {}",
                count("RequestSent"),
                count("retries"),
                count("RequestAbandoned"),
                r.responses_by_status
                    .iter()
                    .map(|(status, n)| format!("{status}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        (
            "idempotency".into(),
            format!(
                "{} key starts and {} finishes acknowledged to the api ({} by the completer), {} replays, {} in flight (409), {} mismatched (422), {} taken over",
                count("KeyStarted"),
                count("KeyFinished"),
                count("completer_finished"),
                count("Replayed"),
                count("KeyInFlight"),
                count("KeyMismatch"),
                count("KeyTakenOver")
            ),
        ),
        (
            "side effects".into(),
            format!(
                "{} charges ({} deduplicated); {} instances started, {} stopped; {} actions rejected (stale token), {} deduplicated",
                count("ChargeExecuted"),
                count("ChargeDeduplicated"),
                count("InstanceStarted"),
                count("InstanceStopped"),
                count("ActionRejected"),
                count("ActionDeduplicated")
            ),
        ),
        (
            "leadership".into(),
            format!(
                "{} terms, {} shards moved, failover p50 {} ms / max {} ms ({} failovers)",
                r.leadership_terms,
                r.shards_moved,
                r.failover_ms.p50,
                r.failover_ms.max,
                r.failover_ms.count
            ),
        ),
        (
            "shard movement".into(),
            format!(
                "{} moves over {} membership changes; rendezvous hashing moves {} (ideal {}){}",
                r.shards_moved,
                r.membership_changes,
                r.shard_moves_baseline,
                r.shard_moves_ideal,
                match r.shard_moves_baseline {
                    0 => String::new(),
                    baseline => {
                        let pct = r.shards_moved * 100 / baseline;
                        format!(": {}.{:02}x the baseline", pct / 100, pct % 100)
                    }
                }
            ),
        ),
        (
            "belief overlap".into(),
            format!(
                "{} ms in total, {} ms at most on one shard",
                r.belief_overlap_ms.0, r.belief_overlap_ms.1
            ),
        ),
        (
            "request latency".into(),
            format!(
                "p50 {} ms, p99 {} ms, max {} ms ({} requests)",
                r.request_latency_ms.p50,
                r.request_latency_ms.p99,
                r.request_latency_ms.max,
                r.request_latency_ms.count
            ),
        ),
        (
            "goodput".into(),
            format!(
                "{} of {} fresh requests and reads succeeded ({}); {} of {} sent with no fault active succeeded within the liveness bound",
                r.goodput.succeeded,
                r.goodput.fresh,
                percent(r.goodput.succeeded, r.goodput.fresh),
                r.goodput.judged_met,
                r.goodput.judged,
            ),
        ),
        (
            "convergence".into(),
            format!(
                "{}; per change p50 {} ms, p99 {} ms, max {} ms ({} changes)",
                r.convergence_ms.map_or("not reached".into(), |ms| {
                    format!("{ms} ms after the last fault healed")
                }),
                r.convergence_time_ms.p50,
                r.convergence_time_ms.p99,
                r.convergence_time_ms.max,
                r.convergence_time_ms.count
            ),
        ),
    ]);
    rows.push(("faults applied".into(), r.faults.to_string()));
    let _ = writeln!(out, "| | |\n|---|---|");
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }
    let _ = writeln!(out, "\n## Properties\n\n| property | verdict |\n|---|---|");
    for line in &r.properties {
        let verdict = match line.verdict.as_str() {
            "violated" => format!("**violated** ({}×)", line.violations),
            "over budget" => "**over budget** (a cost, not a safety violation)".to_string(),
            NEVER_HEALED_NOTE => format!("**{NEVER_HEALED_NOTE}** (a liveness failure)"),
            other => other.to_string(),
        };
        let _ = writeln!(out, "| `{}` | {verdict} |", line.property);
    }
    let _ = writeln!(out, "\n## Sometimes (paths reached)\n");
    let reached: Vec<String> = r
        .sometimes
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let _ = writeln!(out, "{}", reached.join(" · "));
    let _ = writeln!(
        out,
        "\n## Unconverged resources per simulated second\n\n```\n{}\n```",
        sparkline(&r.unconverged_per_second)
    );
    let violations: Vec<&PropertyLine> =
        r.properties.iter().filter(|p| p.first.is_some()).collect();
    if !violations.is_empty() {
        let _ = writeln!(out, "\n## Violations\n");
        for line in violations {
            let v = line.first.as_ref().expect("filtered");
            let _ = writeln!(
                out,
                "- `{}` at {} on {}, trace index {}: {}",
                v.property,
                seconds_ns(v.time_ns),
                node_list(&v.nodes, &result.node_names),
                v.trace_index,
                v.message
            );
        }
    }
    let _ = writeln!(out, "\nRerun: `{}`", r.rerun);
    out
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1_000, ms % 1_000)
}

pub(crate) fn seconds_ns(ns: u64) -> String {
    format!(
        "{}.{:06} s",
        ns / sim::SECOND_NS,
        (ns % sim::SECOND_NS) / 1_000
    )
}

/// The trace entries around the first violation of `property`, with node
/// names, for `replay`.
pub fn trace_excerpt(result: &RunResult, property: &str, context: usize) -> String {
    let Some(entries) = result.trace.as_deref() else {
        return String::new();
    };
    let Some(violation) = violation_for(result, property) else {
        return "\nNo violation in this run.\n".to_string();
    };
    let at = violation.trace_index as usize;
    let name = |node: sim::NodeId| {
        result
            .node_names
            .get(node.index())
            .cloned()
            .unwrap_or_default()
    };
    let mut out = format!(
        "\n## Trace around `{}` (entry {at})\n\n```\n",
        violation.property
    );
    let first = at.saturating_sub(context);
    for (index, e) in entries.iter().enumerate().skip(first).take(2 * context + 1) {
        let marker = if index == at { ">>" } else { "  " };
        let peer = if e.peer == e.node {
            String::new()
        } else {
            format!(" <-> {}", name(e.peer))
        };
        let event = result
            .records
            .get(&(index as u64))
            .map(|text| format!(" {}", truncate(text, 160)))
            .or_else(|| {
                let message = result.messages.get(&(index as u64))?;
                let summary = name_nodes_in(&message.summary(), &result.node_names);
                Some(format!(": {}", truncate(&summary, 160)))
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{marker} {index:>8} {:>14} {:<14} {:?}{peer}{event}",
            seconds_ns(e.time_ns),
            name(e.node),
            e.kind
        );
    }
    out.push_str("```\n");
    out
}

/// The first violation of `property`, or the run's first if `property`
/// has none (an artifact's property may be `crash` or `determinism`).
pub(crate) fn violation_for<'r>(result: &'r RunResult, property: &str) -> Option<&'r Violation> {
    result
        .check
        .verdicts
        .iter()
        .find(|verdict| verdict.property == property)
        .and_then(|verdict| verdict.violations.first())
        .or_else(|| result.check.first_violation())
}

/// `text` cut to `limit` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The BUGGIFY row of a run: how many points were seen and active, and
/// each point that fired with how often.
fn buggify_line(points: &BTreeMap<String, sim::BuggifyPointStats>) -> String {
    let active = points.values().filter(|p| p.active).count();
    let fired: Vec<String> = points
        .iter()
        .filter(|(_, p)| p.fired > 0)
        .map(|(name, p)| format!("`{name}` {}", p.fired))
        .collect();
    format!(
        "{} points reached, {} active; fired: {}",
        points.len(),
        active,
        if fired.is_empty() {
            "none".to_string()
        } else {
            fired.join(", ")
        }
    )
}
/// The targets of a sweep summary, if any: each reached or missed; a
/// shard's are only shown, since `merge` judges them over the whole.
fn targets_table(summary: &Summary) -> String {
    if summary.targets.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n| target | seeds reached | verdict |\n|---|---|---|");
    for target in &summary.targets {
        let verdict = match (target.seeds, summary.shard) {
            (0, Some(_)) => "not reached in this shard",
            (0, None) => "**MISSED**",
            _ => "reached",
        };
        let _ = writeln!(
            out,
            "| {}: `{}` | {} | {verdict} |",
            target.scenario, target.path, target.seeds
        );
    }
    if let Some((index, count)) = summary.shard {
        let _ = writeln!(
            out,
            "\nShard {index}/{count}: targets are judged over all shards by `merge`, not here."
        );
    }
    out
}

/// The sweep's summary as Markdown.
pub fn sweep_summary(summary: &Summary, scenarios: &[String], out_dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Sweep of {}: {} seeds, {} passed\n",
        scenarios.join(", "),
        summary.seeds,
        summary.passed
    );
    match summary.merged_shards {
        Some(shards) => {
            let _ = writeln!(
                out,
                "Merged from {shards} shards run on {}\n",
                summary.engine
            );
        }
        None => {
            let _ = writeln!(
                out,
                "{} runs on {} at {:.1} seeds/s, {:.0} simulated s per wall s\n",
                summary.runs, summary.engine, summary.seeds_per_second, summary.simulated_per_wall
            );
        }
    }
    if summary.failures.is_empty() {
        let _ = writeln!(out, "No failures.\n");
    } else {
        let _ = writeln!(
            out,
            "| failed property | seeds | first seed |\n|---|---|---|"
        );
        for (property, (seeds, first)) in &summary.failures {
            let _ = writeln!(out, "| `{property}` | {seeds} | {first} |");
        }
        let _ = writeln!(
            out,
            "\nArtifacts: {}/failures/ (replay one with `{} replay FILE`, shrink with `... shrink FILE`)\n",
            out_dir.display(),
            summary.engine.program()
        );
    }
    if let Some((p50, p99, max)) = summary.convergence_ms {
        let _ = writeln!(
            out,
            "Convergence after heal: p50 {p50} ms, p99 {p99} ms, max {max} ms\n"
        );
    }
    let _ = writeln!(out, "| sometimes | seeds reached | total |\n|---|---|---|");
    for (name, (seeds, total)) in &summary.coverage {
        let _ = writeln!(out, "| {name} | {seeds} | {total} |");
    }
    out.push_str(&targets_table(summary));
    if !summary.buggify.is_empty() {
        let _ = writeln!(
            out,
            "\n| buggify point | seeds reached | seeds active | fired |\n|---|---|---|---|"
        );
        for (point, (seen, active, fired)) in &summary.buggify {
            let _ = writeln!(out, "| {point} | {seen} | {active} | {fired} |");
        }
    }
    out
}

/// The events row: the count, and how many timers were cancelled besides
/// (as many as half the events of a chaos seed: every request sets a
/// timeout and cancels it when answered).
fn events_row(stats: &sim::Stats) -> String {
    if stats.timers_cancelled == 0 {
        return stats.events.to_string();
    }
    format!(
        "{} (not counting {} timers cancelled before they were due)",
        stats.events, stats.timers_cancelled
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_in_a_message_become_names_and_nothing_else_does() {
        let names: Vec<String> = ["store", "api-0", "controller-0"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            name_nodes_in("shard-3 token 7 held by n2 and n1 (0@g3 on n2)", &names),
            "shard-3 token 7 held by controller-0 and api-0 (0@g3 on controller-0)"
        );
        // Not a standalone id, or an id the run does not have: unchanged.
        for text in ["rn2f0 an1 n2x k-n1 n9", "n", "generation n"] {
            assert_eq!(name_nodes_in(text, &names), text);
        }
        assert_eq!(name_nodes_in("n0", &names), "store");
    }
    use crate::scenario::Scenario;
    use crate::world::{RunOptions, run_scenario};

    #[test]
    fn a_safety_violation_outranks_a_liveness_failure_in_a_sweep() {
        assert_eq!(
            Outcome::worst([
                Outcome::Pass,
                Outcome::Safety,
                Outcome::Liveness,
                Outcome::Cost
            ]),
            Outcome::Safety
        );
        assert_eq!(
            Outcome::worst([Outcome::Liveness, Outcome::Cost]),
            Outcome::Liveness
        );
        assert_eq!(
            Outcome::worst([Outcome::Safety, Outcome::Crash]),
            Outcome::Crash
        );
        assert_eq!(
            Outcome::worst([Outcome::Crash, Outcome::Nondeterministic]),
            Outcome::Nondeterministic
        );
        assert_eq!(Outcome::worst([]), Outcome::Pass);
    }

    #[test]
    fn a_fault_line_names_its_nodes() {
        let names: Vec<String> = ["store", "billing", "controller-0"]
            .map(String::from)
            .to_vec();
        let partition = sim::Fault::Partition {
            side_a: vec![sim::NodeId(0)],
            side_b: vec![sim::NodeId(1), sim::NodeId(2)],
            one_way: false,
            duration_ns: 7_900 * MS,
        };
        assert_eq!(
            fault_line(&partition, &names),
            "partition [store] | [billing, controller-0] for 7.900 s"
        );
        let crash = sim::Fault::Crash {
            node: sim::NodeId(2),
            restart_after_ns: Some(2_000 * MS),
        };
        assert_eq!(
            fault_line(&crash, &names),
            "crash controller-0, restarted after 2.000 s"
        );
        let jump = sim::Fault::ClockJump {
            node: sim::NodeId(9),
            delta_ns: -1_500 * MS as i64,
        };
        assert_eq!(fault_line(&jump, &names), "clock jump n9 by -1.500 s");
    }

    #[test]
    fn the_default_json_rerun_command_carries_the_planted_bugs() {
        let mut scenario = Scenario::load("baseline").expect("loads");
        scenario.plant(plane::config::Bug::NoFencing);
        let result = run_scenario(
            &scenario,
            &RunOptions {
                seed: 3,
                ..RunOptions::default()
            },
        )
        .expect("runs");
        let json: serde_json::Value = serde_json::from_str(&json(&result)).expect("JSON");
        assert_eq!(
            json["rerun"],
            "cargo run --release -- simulate --scenario baseline --seed 3 --bug no-fencing"
        );
        let json: serde_json::Value =
            serde_json::from_str(&json_with_rerun(&result, "replay x.json")).expect("JSON");
        assert_eq!(json["rerun"], "replay x.json");
    }

    #[test]
    fn a_report_names_its_engine_and_its_rerun_commands_pass_it_on() {
        let scenario = Scenario::load("baseline").expect("loads");
        let mut result = run_scenario(
            &scenario,
            &RunOptions {
                seed: 3,
                ..RunOptions::default()
            },
        )
        .expect("runs");
        let trace_hash = format!("| trace hash | `{:#018x}` |\n", result.trace_hash);
        let sim = markdown(&result, "rerun");
        assert!(
            sim.contains(&format!("{trace_hash}| engine | sim |\n")),
            "{sim}"
        );
        result.engine = Engine::Madsim;
        let madsim = markdown(&result, "rerun");
        assert!(madsim.contains(&format!("{trace_hash}| engine | madsim |\n")));
        let json: serde_json::Value = serde_json::from_str(&json(&result)).expect("JSON");
        assert_eq!(json["engine"], "madsim");
        assert_eq!(
            json["rerun"],
            "./madsim/run simulate --scenario baseline --seed 3 --engine madsim"
        );
        let path = Path::new("out/failures/baseline-seed-3.json");
        assert_eq!(
            replay_command(path, Engine::Sim),
            "cargo run --release -- replay out/failures/baseline-seed-3.json"
        );
        assert_eq!(
            replay_command(path, Engine::Turmoil),
            "cargo run --release -- replay out/failures/baseline-seed-3.json --engine turmoil"
        );
    }
}
