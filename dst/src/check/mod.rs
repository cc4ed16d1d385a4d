//! The checkers: the oracle that reads a run's history and judges it.
//!
//! They see only what nodes recorded ([`Event`]), when and where (the
//! [`sim::HistoryEntry`]), and the faults the run applied; never a node's
//! insides. A checker that trusted a node's state would share its bugs.
//!
//! Properties are named as stateright names them:
//!
//! - `always.*` must hold at every point of every run. Each is a pass over
//!   the history in execution order that keeps what it needs per key,
//!   action, instance, worker or lease, and reports every entry that breaks
//!   it (`idempotency`, `fencing`).
//! - `eventually.*` are judged at the end of the run, once every fault has
//!   healed and the scenario's liveness bound has passed: resources
//!   converged, keys finished, shards and the leader held
//!   (`convergence`, `requests`, `beliefs`). A run that stopped before the
//!   faults healed (it hit a limit) is not judged: its verdicts carry a
//!   note instead, and the limit itself fails the run. A run with a fault
//!   that never heals (a crash with no restart, which scenarios refuse but
//!   a hand-edited artifact may carry) cannot be judged either, and nothing
//!   else would fail it: each `eventually.*` verdict then carries the note
//!   *and* one violation, "not judged: faults never healed", so such a run
//!   is a liveness failure rather than a vacuous pass.
//! - `cost.*` are budgets on a measurement of the whole run (shard moves
//!   against what rendezvous hashing would move, `cost`). Over budget is
//!   flagged in a sweep but reported as a cost: nothing unsafe happened.
//! - `sometimes` counts the interesting paths a run reached (a failover, a
//!   replay, a 409, ...). Counts are not failures; summed over a sweep they
//!   show what it covered (`sometimes`).
//!
//! Besides verdicts, the report carries measurements: how long two
//! controllers both believed they held one shard (measured including
//! paused believers, which fencing makes harmless; two *running* believers
//! break `always.one_active_holder`), failover gaps, shard moves, request
//! latencies, and convergence over time.
//!
//! Assumptions the checkers make, so a reviewer can weigh a verdict:
//! - Idempotency keys do not expire within a run (a key's TTL outlives the
//!   run): every property about a key spans the whole history.
//! - Events are recorded by the node that learns of them (the API records a
//!   commit when the store's reply arrives). A node that crashes between a
//!   store write and its reply leaves the write unrecorded; the properties
//!   that can tolerate this do (see each one), `eventually.*` cannot.
//! - Instances outlive a worker crash (the data plane keeps running, the
//!   worker's durable storage lists them); only `InstanceStopped` ends one.

mod answers;
mod beliefs;
mod convergence;
mod cost;
mod desired;
pub(crate) mod downtime;
mod fencing;
mod idempotency;
mod names;
mod reads;
mod requests;
mod sometimes;
#[cfg(test)]
mod testkit;

use std::collections::BTreeMap;

use serde::Serialize;
use sim::{HistoryEntry, NodeId, ScheduledFault};

use plane::config::Topology;
use plane::protocol::{Event, LeaseName, Subject};

/// Every sometimes-path a run counts, by name: what a scenario's
/// `expect.reaches` may name.
pub const SOMETIMES_PATHS: [&str; 14] = sometimes::PATHS;

/// How many violations a verdict keeps (the earliest); all are counted.
pub(crate) const VIOLATIONS_KEPT: usize = 10;

/// [`CheckInput::healed_ns`] of a run in which a fault never healed.
pub(crate) const NEVER_HEALED: u64 = u64::MAX;

/// Everything the checkers read about one run.
pub(crate) struct CheckInput<'a> {
    /// The recorded history, in execution order.
    pub history: &'a [HistoryEntry<Event>],
    /// The faults the run applied: a crash or a reboot ends the node's
    /// beliefs.
    pub faults: &'a [ScheduledFault],
    /// Who is who.
    pub topology: &'a Topology,
    /// Resources map to this many shards (the controllers' setting).
    pub shard_count: u32,
    /// When the last fault healed: the liveness phase starts.
    /// [`NEVER_HEALED`] if one never did.
    pub healed_ns: u64,
    /// When the run stopped.
    pub end_ns: u64,
    /// The scenario's liveness bound.
    pub liveness_bound_ns: u64,
    /// How long a client waits for an answer before it retries.
    pub request_timeout_ns: u64,
    /// The controllers' session (lease) TTL.
    pub lease_ttl_ns: u64,
    /// When, in order, a message was lost or slowed or a BUGGIFY point
    /// fired ([`sim::Simulation::disturbances_ns`]).
    pub disturbances_ns: &'a [u64],
}

/// Whether a property must hold throughout, by the end, or within a
/// budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PropertyKind {
    /// Safety: must hold at every point.
    Always,
    /// Liveness: must hold at the end of the run, after faults healed.
    Eventually,
    /// Cost: a measurement of the whole run that must stay within its
    /// budget. Over budget is flagged, but nothing wrong happened.
    Cost,
}

/// One breach of a property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The property broken, e.g. `always.one_charge_per_key`.
    pub property: &'static str,
    /// Simulated time of the offending entry (the end of the run for
    /// `eventually.*`).
    pub time_ns: u64,
    /// The nodes involved, the recording node first.
    pub nodes: Vec<NodeId>,
    /// The trace index of the offending history entry.
    pub trace_index: u64,
    /// One line with the specifics: key, resource, tokens.
    pub message: String,
    /// What the violation is about, as data: the resources, idempotency
    /// keys, shards, actions and tokens the checker knows it concerns (for
    /// a story to filter the trace on). Left out of the JSON report, whose
    /// `message` says the same for people.
    #[serde(skip)]
    pub subjects: Vec<Subject>,
}

/// The judgement of one property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Its name, e.g. `always.one_charge_per_key`.
    pub property: &'static str,
    /// Safety or liveness.
    pub kind: PropertyKind,
    /// The earliest violations, at most [`VIOLATIONS_KEPT`]; empty = holds.
    pub violations: Vec<Violation>,
    /// All violations found.
    pub violation_count: u64,
    /// Why the property was not judged, if it was not. A run that ended
    /// before its faults healed holds vacuously (the limit it hit fails
    /// it); a run whose faults never healed also gets one violation.
    pub note: Option<String>,
    /// Why this property could not be judged at all on a real run's
    /// history ([`crate::real`]): it needs what only the simulator knows
    /// (one true clock across nodes, the faults, the disturbances) or
    /// records the run does not have. Never set on a simulated run, and
    /// then left out of the JSON, so simulated reports read as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<String>,
}

/// What a verdict says, in one of three words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement<'v> {
    /// Judged, and nothing broke the property.
    Holds,
    /// Judged, and broken at least once.
    Violated,
    /// Not judged, for this reason: neither a pass nor a failure.
    NotJudged(&'v str),
}

impl Verdict {
    /// True when nothing broke the property.
    pub(crate) fn holds(&self) -> bool {
        self.violation_count == 0
    }

    /// Holds, violated, or not judged and why.
    pub fn judgement(&self) -> Judgement<'_> {
        match &self.not_judged {
            Some(reason) => Judgement::NotJudged(reason),
            None if self.holds() => Judgement::Holds,
            None => Judgement::Violated,
        }
    }

    /// The verdict of a property that could not be judged, for `reason`:
    /// no violations, so it neither passes nor fails a run by itself.
    pub(crate) fn not_judged(property: &'static str, kind: PropertyKind, reason: String) -> Self {
        Verdict {
            property,
            kind,
            violations: Vec::new(),
            violation_count: 0,
            note: None,
            not_judged: Some(reason),
        }
    }
}

/// One lease changing hands: the gap in which nobody believed it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailoverSample {
    /// The lease.
    pub lease: LeaseName,
    /// The previous holder.
    pub from: NodeId,
    /// The new holder.
    pub to: NodeId,
    /// When the previous holder's belief ended (at most `regained_ns`: a
    /// holder still believing when the next one starts counts as a zero
    /// gap; the overlap is measured apart).
    pub lost_ns: u64,
    /// When the new holder's belief started.
    pub regained_ns: u64,
}

/// What a run measured, beyond pass or fail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Measurements {
    /// Summed over shards: time during which two or more controllers
    /// believed they held the shard.
    pub belief_overlap_ns_total: u64,
    /// The longest unbroken such time on any one shard.
    pub belief_overlap_ns_max: u64,
    /// Time during which two or more controllers believed they led.
    pub leader_overlap_ns_total: u64,
    /// Leader lease acquisitions (distinct tokens).
    pub leadership_terms: u64,
    /// Every lease that changed believers, with its gap.
    pub failovers: Vec<FailoverSample>,
    /// Shard lease acquisitions by another controller than the previous.
    pub shards_moved: u64,
    /// Per (client, key): first send to the first final response.
    pub request_latencies_ns: Vec<u64>,
    /// From `healed_ns` to the last moment the system became converged;
    /// `None` if it was not converged at the end.
    pub convergence_ns: Option<u64>,
    /// Per resource, each spell during which its running instances differed
    /// from desired and then matched again, ns (a spell still open at the
    /// end is not counted: `eventually.converged` reports it).
    pub convergence_spells_ns: Vec<u64>,
    /// Unconverged resources at each whole simulated second, 0 to the end.
    pub unconverged_per_second: Vec<u32>,
    /// Charges billing executed.
    pub charges: u64,
    /// Instances workers started.
    pub instances_started: u64,
    /// Instances workers stopped.
    pub instances_stopped: u64,
    /// Changes between consecutive memberships the controllers read.
    pub membership_changes: u64,
    /// Logical requests the clients sent with a fresh key, and reads.
    pub fresh_requests: u64,
    /// Of those, the ones that got a successful answer (goodput).
    pub fresh_succeeded: u64,
    /// Of those, the ones `eventually.available` judged (sent while no
    /// fault was active within the liveness bound).
    pub availability_judged: u64,
    /// Of the judged ones, those that succeeded within the bound.
    pub availability_met: u64,
    /// Shard moves rendezvous hashing makes for those changes: the
    /// baseline `cost.shard_movement` compares `shards_moved` with.
    pub shard_moves_baseline: u64,
    /// The textbook figure for those changes: `shard_count` times the
    /// members that changed over the larger membership (`shard_count /
    /// (n + 1)` for a join to `n + 1`), rounded down per change.
    pub shard_moves_ideal: u64,
}

/// The checkers' judgement of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// One per property, `always.*` first, in a fixed order.
    pub verdicts: Vec<Verdict>,
    /// How often each interesting path was reached; every name is present.
    pub sometimes: BTreeMap<String, u64>,
    /// Measurements.
    pub measurements: Measurements,
}

impl CheckReport {
    /// The violation to replay first: the earliest safety violation, else
    /// the earliest liveness one, else a cost over budget.
    pub fn first_violation(&self) -> Option<&Violation> {
        [
            PropertyKind::Always,
            PropertyKind::Eventually,
            PropertyKind::Cost,
        ]
        .into_iter()
        .find_map(|kind| {
            self.verdicts
                .iter()
                .filter(|verdict| verdict.kind == kind)
                .flat_map(|verdict| verdict.violations.iter())
                .min_by_key(|violation| (violation.time_ns, violation.trace_index))
        })
    }

    /// True when every `always.*` property holds.
    pub(crate) fn safety_ok(&self) -> bool {
        self.kind_ok(PropertyKind::Always)
    }

    /// True when every `eventually.*` property holds (or was not judged
    /// because the run stopped early; a fault that never healed fails it).
    pub fn liveness_ok(&self) -> bool {
        self.kind_ok(PropertyKind::Eventually)
    }

    /// True when every `cost.*` measurement is within its budget.
    pub(crate) fn cost_ok(&self) -> bool {
        self.kind_ok(PropertyKind::Cost)
    }

    /// True when `property` has at least one violation.
    pub fn violates(&self, property: &str) -> bool {
        self.verdict(property)
            .is_some_and(|verdict| !verdict.holds())
    }

    /// The names of the violated properties, safety first, costs last.
    pub(crate) fn failed_properties(&self) -> Vec<String> {
        let mut failed: Vec<&Verdict> = self.verdicts.iter().filter(|v| !v.holds()).collect();
        failed.sort_by_key(|v| match v.kind {
            PropertyKind::Always => 0,
            PropertyKind::Eventually => 1,
            PropertyKind::Cost => 2,
        });
        failed.into_iter().map(|v| v.property.to_string()).collect()
    }

    /// The verdict of `property`, if there is one.
    pub(crate) fn verdict(&self, property: &str) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| v.property == property)
    }

    fn kind_ok(&self, kind: PropertyKind) -> bool {
        self.verdicts
            .iter()
            .filter(|verdict| verdict.kind == kind)
            .all(Verdict::holds)
    }
}

/// Judges one run's history.
pub(crate) fn check(input: &CheckInput) -> CheckReport {
    let keys = names::Names::keys(input.history);
    let resources = names::Names::resources(input.history);
    let beliefs = beliefs::Beliefs::build(input);
    let timeline = convergence::Timeline::build(input, &resources);

    let sends = answers::Sends::build(input.history, &keys);
    let availability = answers::available(input, &sends);
    let first_try = answers::quiet_first_try(input, &sends);

    let mut verdicts = idempotency::verdicts(input, &keys);
    verdicts.extend(answers::verdicts(input, &keys, &sends));
    verdicts.push(desired::generation_counts_changes(input));
    verdicts.extend(fencing::verdicts(input, &resources));
    verdicts.push(beliefs.one_active_holder(input));
    verdicts.extend(liveness_verdicts(
        input,
        &keys,
        &beliefs,
        &timeline,
        availability.verdict.clone(),
        first_try,
    ));

    let mut measurements = beliefs.measure(input);
    availability.measure(&mut measurements);
    measurements.request_latencies_ns = requests::latencies_ns(input, &keys);
    timeline.measure(input, &mut measurements);
    sometimes::count_side_effects(input, &mut measurements);
    cost::measure(input, &mut measurements);
    verdicts.push(cost::shard_movement(input, &measurements));
    let sometimes = sometimes::count(input, &measurements);
    CheckReport {
        verdicts,
        sometimes,
        measurements,
    }
}

/// Every property's name, in report order (artifacts may name only
/// these; the zoo's tests check that each exhibit names one).
pub fn property_names() -> Vec<&'static str> {
    let topology = Topology::default();
    let nothing = CheckInput {
        history: &[],
        faults: &[],
        topology: &topology,
        shard_count: 1,
        healed_ns: 0,
        end_ns: 0,
        liveness_bound_ns: 0,
        request_timeout_ns: 0,
        lease_ttl_ns: 0,
        disturbances_ns: &[],
    };
    check(&nothing)
        .verdicts
        .iter()
        .map(|v| v.property)
        .collect()
}

/// The `eventually.*` verdicts, or notes saying why they were not judged.
fn liveness_verdicts(
    input: &CheckInput,
    keys: &names::KeyIds,
    beliefs: &beliefs::Beliefs,
    timeline: &convergence::Timeline,
    available: Verdict,
    first_try: Verdict,
) -> Vec<Verdict> {
    if input.healed_ns == NEVER_HEALED {
        return never_healed_verdicts(input);
    }
    if input.end_ns < input.healed_ns {
        let note = format!(
            "not judged: the run ended at {} ns, before its faults healed at {} ns",
            input.end_ns, input.healed_ns
        );
        return EVENTUALLY
            .iter()
            .map(|&property| Verdict {
                property,
                kind: PropertyKind::Eventually,
                violations: Vec::new(),
                violation_count: 0,
                note: Some(note.clone()),
                not_judged: None,
            })
            .collect();
    }
    vec![
        timeline.converged(input),
        requests::keys_finished(input, keys),
        beliefs.shards_held(input),
        beliefs.shards_placed(input),
        beliefs::quiet_leases_kept(input),
        available,
        first_try,
    ]
}

/// The `eventually.*` verdicts of a run with a fault that never healed:
/// not judged, and failed for it, naming the faults. Liveness is only
/// promised once faults heal, so such a run proves nothing about it; a
/// vacuous pass would let a permanent outage read as PASS.
fn never_healed_verdicts(input: &CheckInput) -> Vec<Verdict> {
    let unhealed: Vec<&ScheduledFault> = input
        .faults
        .iter()
        .filter(|fault| fault.healed_at_ns().is_none())
        .collect();
    let nodes: Vec<NodeId> = unhealed.iter().flat_map(|f| f.fault.nodes()).collect();
    let described: Vec<String> = unhealed
        .iter()
        .map(|f| {
            format!(
                "{} at {} ms",
                f.fault.kind_name(),
                f.at_ns / sim::MILLISECOND_NS
            )
        })
        .collect();
    let note = NEVER_HEALED_NOTE.to_string();
    let message = format!(
        "{NEVER_HEALED_NOTE} ({} never ends), so nothing can be required to converge: \
         a liveness failure, not a pass",
        if described.is_empty() {
            "a fault".to_string()
        } else {
            described.join(", ")
        }
    );
    EVENTUALLY
        .iter()
        .map(|&property| {
            let mut violations = Violations::new(property, PropertyKind::Eventually);
            violations.at(
                input.end_ns,
                last_trace_index(input),
                &nodes,
                message.clone(),
            );
            let mut verdict = violations.into_verdict();
            verdict.note = Some(note.clone());
            verdict
        })
        .collect()
}

/// The note (and the start of the violation) of a run whose faults never
/// healed.
pub(crate) const NEVER_HEALED_NOTE: &str = "not judged: faults never healed";

/// How long before a moment the run must have been quiet for that moment
/// to count as quiet: long enough for a node back from a fault (or from
/// the boot) to have settled its sessions and leases.
pub(crate) const QUIET_BEFORE_NS: u64 = 2 * sim::MILLISECOND_NS * 1_000;

/// Whether nothing disturbed the run in `[from_ns, until_ns]`: no fault
/// active, no message lost or slowed past the network's range, no BUGGIFY
/// firing ([`CheckInput::disturbances_ns`]).
pub(crate) fn quiet_between(input: &CheckInput, from_ns: u64, until_ns: u64) -> bool {
    let faulted = input.faults.iter().any(|fault| {
        fault.at_ns <= until_ns && fault.healed_at_ns().is_none_or(|heal| heal >= from_ns)
    });
    // The disturbances are in time order: the first at or after the
    // window's start decides.
    let disturbed = input.disturbances_ns;
    let at = disturbed.partition_point(|&at_ns| at_ns < from_ns);
    !faulted && disturbed.get(at).is_none_or(|&at_ns| at_ns > until_ns)
}

/// A lease as messages name it: `shard-3` or `leader`.
pub(crate) fn lease_label(lease: LeaseName) -> String {
    match lease {
        LeaseName::Shard(shard) => shard.to_string(),
        LeaseName::Leader => "leader".to_string(),
    }
}

/// What a violation about `lease` is about: its shard, if it is one.
pub(crate) fn lease_subjects(lease: LeaseName) -> Vec<Subject> {
    match lease {
        LeaseName::Shard(shard) => vec![Subject::Shard(shard.0)],
        LeaseName::Leader => Vec::new(),
    }
}

/// Where an end-of-run violation with no entry of its own points: the
/// history's last entry.
pub(crate) fn last_trace_index(input: &CheckInput) -> u64 {
    input.history.last().map_or(0, |entry| entry.trace_index)
}

/// The liveness properties, in report order.
const EVENTUALLY: [&str; 7] = [
    convergence::CONVERGED,
    requests::KEYS_FINISHED,
    beliefs::SHARDS_HELD,
    beliefs::SHARDS_PLACED,
    beliefs::QUIET_LEASES_KEPT,
    answers::AVAILABLE,
    answers::QUIET_FIRST_TRY,
];

/// Collects one property's violations, then keeps the earliest.
pub(crate) struct Violations {
    property: &'static str,
    kind: PropertyKind,
    found: Vec<Violation>,
}

impl Violations {
    /// An empty collection for `property`.
    pub(crate) fn new(property: &'static str, kind: PropertyKind) -> Self {
        Self {
            property,
            kind,
            found: Vec::new(),
        }
    }

    /// A violation at `entry`: its node first, then `others`; about what
    /// the entry's event names.
    pub(crate) fn at_entry(
        &mut self,
        entry: &HistoryEntry<Event>,
        others: &[NodeId],
        message: String,
    ) {
        let mut nodes = vec![entry.node];
        nodes.extend_from_slice(others);
        let subjects = entry.event.subjects();
        self.about(entry.time_ns, entry.trace_index, &nodes, subjects, message);
    }

    /// A violation at a time and trace position, naming `nodes` (each once,
    /// in the order given), about nothing in particular the checker knows.
    pub(crate) fn at(&mut self, time_ns: u64, trace_index: u64, nodes: &[NodeId], message: String) {
        self.about(time_ns, trace_index, nodes, Vec::new(), message);
    }

    /// As [`Violations::at`], about `subjects`.
    pub(crate) fn about(
        &mut self,
        time_ns: u64,
        trace_index: u64,
        nodes: &[NodeId],
        subjects: Vec<Subject>,
        message: String,
    ) {
        let mut unique: Vec<NodeId> = Vec::with_capacity(nodes.len());
        for &node in nodes {
            if !unique.contains(&node) {
                unique.push(node);
            }
        }
        self.found.push(Violation {
            property: self.property,
            time_ns,
            nodes: unique,
            trace_index,
            message,
            subjects,
        });
    }

    /// The verdict: every violation counted, the earliest kept.
    pub(crate) fn into_verdict(mut self) -> Verdict {
        let violation_count = self.found.len() as u64;
        // Stable: violations at one entry keep the order they were found in.
        self.found.sort_by_key(|v| (v.time_ns, v.trace_index));
        self.found.truncate(VIOLATIONS_KEPT);
        Verdict {
            property: self.property,
            kind: self.kind,
            violations: self.found,
            violation_count,
            note: None,
            not_judged: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn a_clean_history_passes_every_property() {
        let mut history = History::new();
        history.clean_create("k1", "res-1", 1);
        let report = history.report();
        assert!(report.safety_ok(), "{:#?}", report.first_violation());
        assert!(report.liveness_ok(), "{:#?}", report.first_violation());
        assert_eq!(report.first_violation(), None);
        assert!(report.verdicts.iter().all(|v| v.note.is_none()));
    }

    #[test]
    fn every_property_has_one_verdict_with_its_kind() {
        let report = History::new().report();
        let names: Vec<&str> = report.verdicts.iter().map(|v| v.property).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for verdict in &report.verdicts {
            let expected = if verdict.property.starts_with("always.") {
                PropertyKind::Always
            } else if verdict.property.starts_with("cost.") {
                PropertyKind::Cost
            } else {
                assert!(verdict.property.starts_with("eventually."));
                PropertyKind::Eventually
            };
            assert_eq!(verdict.kind, expected, "{}", verdict.property);
        }
        // Safety first, then liveness, then costs.
        let kinds: Vec<PropertyKind> = report.verdicts.iter().map(|v| v.kind).collect();
        let first_cost = kinds.iter().position(|&k| k == PropertyKind::Cost);
        let last_always = kinds.iter().rposition(|&k| k == PropertyKind::Always);
        assert!(last_always < kinds.iter().position(|&k| k == PropertyKind::Eventually));
        assert!(first_cost > kinds.iter().rposition(|&k| k == PropertyKind::Eventually));
        assert!(names.contains(&"always.one_charge_per_key"));
        assert!(names.contains(&"always.one_active_holder"));
        assert!(names.contains(&"eventually.converged"));
        assert!(names.contains(&"cost.shard_movement"));
    }

    #[test]
    fn violations_are_all_counted_but_only_the_earliest_kept() {
        let mut history = History::new();
        for charge in 0..(VIOLATIONS_KEPT as u64 + 5) {
            history.at(100 - charge, BILLING, charged("k1", charge));
        }
        let verdict = history.verdict("always.one_charge_per_key");
        // The first charge (latest in time) is fine; every other one is not.
        assert_eq!(verdict.violation_count, VIOLATIONS_KEPT as u64 + 4);
        assert_eq!(verdict.violations.len(), VIOLATIONS_KEPT);
        let times: Vec<u64> = verdict.violations.iter().map(|v| v.time_ns).collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert_eq!(times, sorted);
        assert_eq!(times[0], ms(100 - (VIOLATIONS_KEPT as u64 + 4)));
    }

    #[test]
    fn first_violation_prefers_safety_over_an_earlier_liveness_failure() {
        let mut history = History::new();
        history.at(1, API_A, started("k-stuck", 7));
        history.at(50, BILLING, charged("k2", 1));
        history.at(60, BILLING, charged("k2", 2));
        let report = history.report();
        assert!(!report.safety_ok());
        assert!(!report.liveness_ok());
        let first = report.first_violation().expect("a violation");
        assert_eq!(first.property, "always.one_charge_per_key");
        assert_eq!(first.time_ns, ms(60));
        assert_eq!(first.nodes, vec![BILLING]);
    }

    #[test]
    fn a_run_that_ended_before_healing_is_not_judged_for_liveness() {
        let mut history = History::new();
        history.at(1, API_A, started("k-stuck", 7));
        history.ending(5_000, 4_000);
        let report = history.report();
        assert!(report.liveness_ok());
        let verdict = report.verdict("eventually.keys_finished").expect("verdict");
        assert!(verdict.note.as_deref().unwrap_or("").contains("not judged"));

        history.ending(3_000, 4_000);
        assert!(!history.report().liveness_ok());
    }

    #[test]
    fn a_run_whose_faults_never_healed_fails_liveness_as_not_judged() {
        let mut history = History::new();
        history.clean_create("k1", "res-1", 1);
        history.faults.push(ScheduledFault {
            at_ns: ms(5),
            fault: sim::Fault::Crash {
                node: STORE,
                restart_after_ns: None,
            },
        });
        history.healed_ns = NEVER_HEALED;
        history.end_ns = ms(60_000);
        let report = history.report();
        assert!(report.safety_ok());
        assert!(!report.liveness_ok(), "a permanent outage is not a pass");
        for property in EVENTUALLY {
            let verdict = report.verdict(property).expect("verdict");
            assert_eq!(verdict.note.as_deref(), Some(NEVER_HEALED_NOTE));
            assert_eq!(verdict.violation_count, 1);
            let violation = &verdict.violations[0];
            assert!(violation.message.starts_with(NEVER_HEALED_NOTE));
            assert!(
                violation.message.contains("crash at 5 ms"),
                "{}",
                violation.message
            );
            assert_eq!(violation.nodes, vec![STORE]);
        }
    }
}
