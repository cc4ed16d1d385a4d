//! Lease beliefs over time: who believed it held which lease, when; the
//! overlap and failover measurements built on them; `always.one_active_holder`
//! (the lease's own promise); `eventually.shards_held` and
//! `eventually.shards_placed`.
//!
//! A belief runs from a controller's `BeliefStarted` to its `BeliefEnded`
//! (same lease and token), or to the controller's crash (from the applied
//! faults: a crashed process believes nothing), or to the end of the run.
//! A pause does not end a belief: a paused holder still believes, which is
//! exactly the danger the fencing tokens exist for.

use std::collections::{BTreeMap, BTreeSet};

use sim::{Fault, NodeId};

use super::downtime;
use super::{
    CheckInput, FailoverSample, Measurements, PropertyKind, QUIET_BEFORE_NS, Verdict, Violations,
    last_trace_index, lease_label, lease_subjects, quiet_between,
};
use plane::protocol::{BeliefEnd, Event, LeaseName, Subject};
use plane::shard::{ShardId, assign_shards};

/// At the end, each shard believed held by exactly one controller, with
/// the newest token acquired for it, and exactly one leader.
pub(crate) const SHARDS_HELD: &str = "eventually.shards_held";
/// At the end, each shard's one holder is its rendezvous owner among the
/// members the controllers last read: a holder that never hands a shard to
/// the member that wins it leaves the fleet unbalanced for good.
pub(crate) const SHARDS_PLACED: &str = "eventually.shards_placed";
/// While the run is quiet, no controller loses a lease: a belief that ends
/// when nothing has disturbed the run for a lease's lifetime (and the
/// settling margin) before ends by release, never by expiry, loss or a
/// worker's rejection.
pub(crate) const QUIET_LEASES_KEPT: &str = "eventually.quiet_leases_kept";
/// Per lease, never two controllers believing they hold it while both run.
pub(crate) const ONE_ACTIVE_HOLDER: &str = "always.one_active_holder";

/// One controller believing it held one lease with one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Belief {
    /// Who believed.
    pub controller: NodeId,
    /// Which lease.
    pub lease: LeaseName,
    /// With which fencing token.
    pub token: u64,
    /// When its `BeliefStarted` was recorded.
    pub start_ns: u64,
    /// `None`: still believed when the run ended.
    pub end_ns: Option<u64>,
    /// The trace index of its `BeliefStarted`.
    pub trace_index: u64,
}

impl Belief {
    /// The end of the belief, the run's end if it was still open.
    fn end_or(&self, run_end_ns: u64) -> u64 {
        self.end_ns.unwrap_or(run_end_ns).max(self.start_ns)
    }
}

/// Every belief of a run, in the order they started.
pub(crate) struct Beliefs {
    beliefs: Vec<Belief>,
}

impl Beliefs {
    /// Replays beliefs and crashes in time order. A crash at `t` takes
    /// effect after the records at `t` (a node records nothing while down,
    /// and restarts later than it crashed).
    pub(crate) fn build(input: &CheckInput) -> Self {
        let mut crashes: Vec<(u64, NodeId)> = input
            .faults
            .iter()
            .filter_map(|scheduled| {
                let (node, _) = scheduled.fault.takes_down()?;
                Some((scheduled.at_ns, node))
            })
            .filter(|&(at_ns, _)| at_ns <= input.end_ns)
            .collect();
        crashes.sort_unstable();
        let mut beliefs = Beliefs {
            beliefs: Vec::new(),
        };
        let mut open: BTreeMap<(NodeId, LeaseName, u64), usize> = BTreeMap::new();
        let mut next_crash = crashes.iter().peekable();
        for entry in input.history {
            while let Some(&&(at_ns, node)) = next_crash.peek() {
                if at_ns >= entry.time_ns {
                    break;
                }
                beliefs.end_all(&mut open, node, at_ns);
                next_crash.next();
            }
            beliefs.apply(&mut open, entry);
        }
        for &(at_ns, node) in next_crash {
            beliefs.end_all(&mut open, node, at_ns);
        }
        beliefs
    }

    fn apply(
        &mut self,
        open: &mut BTreeMap<(NodeId, LeaseName, u64), usize>,
        entry: &sim::HistoryEntry<Event>,
    ) {
        match &entry.event {
            Event::BeliefStarted { lease, token } => {
                let key = (entry.node, *lease, *token);
                // A repeated start of an open belief is the same belief.
                if open.contains_key(&key) {
                    return;
                }
                open.insert(key, self.beliefs.len());
                self.beliefs.push(Belief {
                    controller: entry.node,
                    lease: *lease,
                    token: *token,
                    start_ns: entry.time_ns,
                    end_ns: None,
                    trace_index: entry.trace_index,
                });
            }
            Event::BeliefEnded { lease, token, .. } => {
                if let Some(index) = open.remove(&(entry.node, *lease, *token)) {
                    self.beliefs[index].end_ns = Some(entry.time_ns);
                }
            }
            _ => {}
        }
    }

    /// Ends every open belief of `node` at `at_ns`.
    fn end_all(
        &mut self,
        open: &mut BTreeMap<(NodeId, LeaseName, u64), usize>,
        node: NodeId,
        at_ns: u64,
    ) {
        let keys: Vec<_> = open.keys().filter(|key| key.0 == node).copied().collect();
        for key in keys {
            let index = open.remove(&key).expect("an open belief");
            self.beliefs[index].end_ns = Some(at_ns);
        }
    }

    /// The beliefs of one lease, in start order.
    fn of_lease(&self, lease: LeaseName) -> impl Iterator<Item = &Belief> {
        self.beliefs
            .iter()
            .filter(move |belief| belief.lease == lease)
    }

    /// Every lease anyone believed in.
    fn leases(&self) -> BTreeSet<LeaseName> {
        self.beliefs.iter().map(|belief| belief.lease).collect()
    }

    /// The controllers still believing `lease` at the end, with tokens.
    fn held_at_end(&self, lease: LeaseName) -> BTreeMap<NodeId, (u64, u64)> {
        self.of_lease(lease)
            .filter(|belief| belief.end_ns.is_none())
            .map(|belief| (belief.controller, (belief.token, belief.trace_index)))
            .collect()
    }

    /// Belief overlap, failovers, leadership terms and shard moves.
    pub(crate) fn measure(&self, input: &CheckInput) -> Measurements {
        let mut measurements = Measurements::default();
        for lease in self.leases() {
            let (total_ns, longest_ns) = overlap_ns(self.of_lease(lease), input.end_ns);
            match lease {
                LeaseName::Shard(_) => {
                    measurements.belief_overlap_ns_total += total_ns;
                    measurements.belief_overlap_ns_max =
                        measurements.belief_overlap_ns_max.max(longest_ns);
                }
                LeaseName::Leader => measurements.leader_overlap_ns_total += total_ns,
            }
            measurements
                .failovers
                .extend(failovers(self.of_lease(lease), input.end_ns));
        }
        measurements
            .failovers
            .sort_by_key(|f| (f.regained_ns, f.lease));
        let (terms, moves) = acquisitions(input);
        measurements.leadership_terms = terms;
        measurements.shards_moved = moves;
        measurements
    }

    /// `always.one_active_holder`: the mutual exclusion a lease promises.
    /// Two controllers' beliefs in one lease may overlap in time only while
    /// one of them is paused (a paused process does nothing; it must stop
    /// believing as soon as it runs again and sees its deadline passed).
    /// Fencing makes such an overlap harmless for the effects it guards,
    /// but a holder that believes past the store's expiry has broken the
    /// lease itself: whatever it does unfenced, or before the new holder's
    /// fence lands, races the new holder. One violation per overlapping
    /// pair of beliefs, at the first moment both ran.
    pub(crate) fn one_active_holder(&self, input: &CheckInput) -> Verdict {
        let mut found = Violations::new(ONE_ACTIVE_HOLDER, PropertyKind::Always);
        let paused = paused_intervals(input);
        let no_pauses = Vec::new();
        for lease in self.leases() {
            let beliefs: Vec<&Belief> = self.of_lease(lease).collect();
            for (index, later) in beliefs.iter().enumerate() {
                for earlier in &beliefs[..index] {
                    if earlier.controller == later.controller {
                        continue;
                    }
                    let from_ns = earlier.start_ns.max(later.start_ns);
                    let until_ns = earlier.end_or(input.end_ns).min(later.end_or(input.end_ns));
                    if from_ns >= until_ns {
                        continue; // never believed at the same time
                    }
                    let mut idle: Vec<(u64, u64)> = [earlier.controller, later.controller]
                        .iter()
                        .flat_map(|node| paused.get(node).unwrap_or(&no_pauses))
                        .copied()
                        .collect();
                    idle.sort_unstable();
                    let Some((active_from_ns, active_ns)) = active_span(from_ns, until_ns, &idle)
                    else {
                        continue;
                    };
                    let message = format!(
                        "{} believed held by {} (token {}) and {} (token {}) at once, both running, for {} ms from {} ms",
                        lease_label(lease),
                        earlier.controller,
                        earlier.token,
                        later.controller,
                        later.token,
                        active_ns / sim::MILLISECOND_NS,
                        active_from_ns / sim::MILLISECOND_NS,
                    );
                    let mut about = lease_subjects(lease);
                    about.extend([Subject::Token(earlier.token), Subject::Token(later.token)]);
                    found.about(
                        active_from_ns,
                        later.trace_index,
                        &[later.controller, earlier.controller],
                        about,
                        message,
                    );
                }
            }
        }
        found.into_verdict()
    }

    /// `eventually.shards_held`, judged on the beliefs open at the end.
    pub(crate) fn shards_held(&self, input: &CheckInput) -> Verdict {
        let mut found = Violations::new(SHARDS_HELD, PropertyKind::Eventually);
        let newest = newest_acquired(input);
        let shards = (0..input.shard_count).map(|shard| LeaseName::Shard(ShardId(shard)));
        for lease in shards.chain([LeaseName::Leader]) {
            let holders = self.held_at_end(lease);
            let newest_token = newest.get(&lease).copied().unwrap_or(0);
            let label = lease_label(lease);
            let message = match holders.len() {
                0 => format!("{label} believed held by no controller at the end"),
                1 => match holders
                    .iter()
                    .find(|&(_, &(token, _))| token < newest_token)
                {
                    Some((holder, (token, _))) => format!(
                        "{label} believed by {holder} with token {token}, superseded by token {newest_token}"
                    ),
                    None => continue,
                },
                _ => format!(
                    "{label} believed held by {holders:?} (controller: (token, trace index)) at the end"
                ),
            };
            // Point at the last belief in the lease, else at the run's end.
            let last = self.of_lease(lease).last();
            let trace_index = last.map_or_else(|| last_trace_index(input), |b| b.trace_index);
            let nodes: Vec<NodeId> = match last {
                _ if !holders.is_empty() => holders.keys().copied().collect(),
                Some(belief) => vec![belief.controller],
                None => input.topology.controllers.clone(),
            };
            let mut about = lease_subjects(lease);
            about.extend(holders.values().map(|&(token, _)| Subject::Token(token)));
            found.about(input.end_ns, trace_index, &nodes, about, message);
        }
        found.into_verdict()
    }
}

impl Beliefs {
    /// `eventually.shards_placed`. A shard held by none or by several is
    /// left to `eventually.shards_held`.
    pub(crate) fn shards_placed(&self, input: &CheckInput) -> Verdict {
        let mut found = Violations::new(SHARDS_PLACED, PropertyKind::Eventually);
        let last_read = input
            .history
            .iter()
            .filter_map(|entry| match &entry.event {
                Event::MembershipObserved { members, revision } => {
                    Some(((*revision, entry.trace_index), members))
                }
                _ => None,
            })
            .max_by_key(|&(order, _)| order);
        let Some((_, members)) = last_read else {
            return found.into_verdict();
        };
        let owners = assign_shards(input.shard_count, members);
        for (shard, owner) in (0..input.shard_count).zip(owners) {
            let lease = LeaseName::Shard(ShardId(shard));
            let holders = self.held_at_end(lease);
            let (Some(owner), 1) = (owner, holders.len()) else {
                continue;
            };
            let Some((&holder, &(_, trace_index))) = holders.iter().next() else {
                continue;
            };
            if holder != owner {
                let message = format!(
                    "{} held by {holder} at the end, but its rendezvous owner among the members last read ({members:?}) is {owner}",
                    lease_label(lease)
                );
                let about = lease_subjects(lease);
                found.about(input.end_ns, trace_index, &[holder, owner], about, message);
            }
        }
        found.into_verdict()
    }
}

/// `eventually.quiet_leases_kept`: see [`QUIET_LEASES_KEPT`].
pub(crate) fn quiet_leases_kept(input: &CheckInput) -> Verdict {
    let mut found = Violations::new(QUIET_LEASES_KEPT, PropertyKind::Eventually);
    let lookback_ns = QUIET_BEFORE_NS.saturating_add(input.lease_ttl_ns);
    for entry in input.history {
        let Event::BeliefEnded {
            lease,
            token,
            reason,
        } = &entry.event
        else {
            continue;
        };
        if *reason == BeliefEnd::Released {
            continue;
        }
        let quiet = entry
            .time_ns
            .checked_sub(lookback_ns)
            .is_some_and(|from_ns| quiet_between(input, from_ns, entry.time_ns));
        if quiet {
            let message = format!(
                "{} (token {token}) ended {reason:?} with nothing disturbing the run for {} ms before",
                lease_label(*lease),
                lookback_ns / sim::MILLISECOND_NS
            );
            found.at_entry(entry, &[], message);
        }
    }
    found.into_verdict()
}

/// Per node, the times it was paused, as sorted `[from, until)` intervals,
/// replayed the way the simulator applies pauses: a pause of a node that is
/// down does nothing, a crash ends a pause, and overlapping pauses merge.
/// Whether a node is down comes from [`downtime`]: a crash of a node
/// already down does nothing, but its heal restarts the node if it is
/// still down.
fn paused_intervals(input: &CheckInput) -> BTreeMap<NodeId, Vec<(u64, u64)>> {
    let mut down = downtime::Down::default();
    let mut paused: BTreeMap<NodeId, Vec<(u64, u64)>> = BTreeMap::new();
    for (at_ns, step) in downtime::steps(input.faults) {
        let scheduled = match step {
            downtime::Step::Heal(node) => {
                down.heal(node);
                continue;
            }
            downtime::Step::Applied(scheduled) => scheduled,
        };
        if let Some((node, _)) = scheduled.fault.takes_down() {
            if !down.crash(node) {
                continue;
            }
            // A crash (or reboot) ends the pause it interrupts.
            for interval in paused.entry(node).or_default().iter_mut() {
                if interval.0 <= at_ns && at_ns < interval.1 {
                    interval.1 = at_ns;
                }
            }
        } else if let Fault::Pause { node, duration_ns } = scheduled.fault {
            if down.is_down(node) {
                continue;
            }
            let until_ns = at_ns.saturating_add(duration_ns);
            let intervals = paused.entry(node).or_default();
            match intervals.last_mut() {
                Some(last) if at_ns <= last.1 => last.1 = last.1.max(until_ns),
                _ => intervals.push((at_ns, until_ns)),
            }
        }
    }
    paused
}

/// The first moment in `[from_ns, until_ns)` outside every `idle`
/// interval (sorted by start), and how long in all the span is not idle;
/// `None` if it is idle throughout (or empty).
fn active_span(from_ns: u64, until_ns: u64, idle: &[(u64, u64)]) -> Option<(u64, u64)> {
    let mut first_active: Option<u64> = None;
    let mut active_ns = 0;
    let mut cursor = from_ns;
    for &(idle_from, idle_until) in idle {
        if idle_until <= cursor || idle_from >= until_ns {
            continue;
        }
        if idle_from > cursor {
            first_active.get_or_insert(cursor);
            active_ns += idle_from - cursor;
        }
        cursor = cursor.max(idle_until);
        if cursor >= until_ns {
            break;
        }
    }
    if cursor < until_ns {
        first_active.get_or_insert(cursor);
        active_ns += until_ns - cursor;
    }
    first_active.map(|at| (at, active_ns))
}

/// The highest token acquired per lease.
fn newest_acquired(input: &CheckInput) -> BTreeMap<LeaseName, u64> {
    let mut newest = BTreeMap::new();
    for entry in input.history {
        if let Event::LeaseAcquired { lease, token } = &entry.event {
            let highest = newest.entry(*lease).or_insert(*token);
            *highest = (*highest).max(*token);
        }
    }
    newest
}

/// (leader terms, shard moves) from `LeaseAcquired`: distinct leader
/// tokens, and shard acquisitions by another controller than the last.
fn acquisitions(input: &CheckInput) -> (u64, u64) {
    let mut leader_tokens = BTreeSet::new();
    let mut last_holder: BTreeMap<ShardId, NodeId> = BTreeMap::new();
    let mut moves = 0;
    for entry in input.history {
        match &entry.event {
            Event::LeaseAcquired {
                lease: LeaseName::Leader,
                token,
            } => {
                leader_tokens.insert(*token);
            }
            Event::LeaseAcquired {
                lease: LeaseName::Shard(shard),
                ..
            } => {
                if let Some(previous) = last_holder.insert(*shard, entry.node) {
                    moves += u64::from(previous != entry.node);
                }
            }
            _ => {}
        }
    }
    (leader_tokens.len() as u64, moves)
}

/// (total, longest unbroken) time during which two or more distinct
/// controllers believed one lease: a sweep over belief starts and ends.
fn overlap_ns<'b>(beliefs: impl Iterator<Item = &'b Belief>, run_end_ns: u64) -> (u64, u64) {
    // (time, +1 start / -1 end, controller); ends sort before starts at one
    // time, so touching beliefs do not overlap.
    let mut edges: Vec<(u64, i8, NodeId)> = Vec::new();
    for belief in beliefs {
        let end_ns = belief.end_or(run_end_ns);
        if end_ns > belief.start_ns {
            edges.push((belief.start_ns, 1, belief.controller));
            edges.push((end_ns, -1, belief.controller));
        }
    }
    edges.sort_unstable();
    let mut open: BTreeMap<NodeId, u32> = BTreeMap::new();
    let (mut total_ns, mut longest_ns) = (0, 0);
    let mut overlap_since: Option<u64> = None;
    for (index, &(time_ns, delta, controller)) in edges.iter().enumerate() {
        let count = open.entry(controller).or_default();
        if delta > 0 {
            *count += 1;
        } else {
            *count -= 1;
            if *count == 0 {
                open.remove(&controller);
            }
        }
        // Judge only after the last edge at this time.
        if edges.get(index + 1).is_some_and(|next| next.0 == time_ns) {
            continue;
        }
        match (overlap_since, open.len() >= 2) {
            (None, true) => overlap_since = Some(time_ns),
            (Some(since), false) => {
                total_ns += time_ns - since;
                longest_ns = longest_ns.max(time_ns - since);
                overlap_since = None;
            }
            _ => {}
        }
    }
    debug_assert!(overlap_since.is_none(), "every belief ends");
    (total_ns, longest_ns)
}

/// Every change of believer of one lease: the previous holder's last
/// belief end (capped at the new start) to the new holder's start.
fn failovers<'b>(
    beliefs: impl Iterator<Item = &'b Belief>,
    run_end_ns: u64,
) -> Vec<FailoverSample> {
    let mut samples = Vec::new();
    let mut holder: Option<NodeId> = None;
    // Per controller, the latest end of its beliefs started so far.
    let mut latest_end: BTreeMap<NodeId, u64> = BTreeMap::new();
    for belief in beliefs {
        if let Some(previous) = holder.filter(|&previous| previous != belief.controller) {
            let lost_ns = latest_end
                .get(&previous)
                .copied()
                .unwrap_or(belief.start_ns);
            samples.push(FailoverSample {
                lease: belief.lease,
                from: previous,
                to: belief.controller,
                lost_ns: lost_ns.min(belief.start_ns),
                regained_ns: belief.start_ns,
            });
        }
        holder = Some(belief.controller);
        let end_ns = latest_end.entry(belief.controller).or_insert(0);
        *end_ns = (*end_ns).max(belief.end_or(run_end_ns));
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn two_overlapping_beliefs_measure_exactly_their_overlap() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(400, CTRL_B, belief(shard_lease(0), 2));
        history.at(700, CTRL_A, belief_end(shard_lease(0), 1));
        history.at(900, CTRL_B, belief_end(shard_lease(0), 2));
        let measured = history.report().measurements;
        assert_eq!(measured.belief_overlap_ns_total, ms(300));
        assert_eq!(measured.belief_overlap_ns_max, ms(300));
        assert_eq!(measured.leader_overlap_ns_total, 0);
    }

    #[test]
    fn overlaps_sum_across_shards_and_the_max_is_the_longest() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(100, CTRL_A, belief(LeaseName::Leader, 1));
        history.at(100, CTRL_B, belief(LeaseName::Leader, 2));
        history.at(150, CTRL_B, belief_end(LeaseName::Leader, 2));
        history.at(200, CTRL_B, belief(shard_lease(0), 2));
        history.at(300, CTRL_A, belief_end(shard_lease(0), 1));
        history.at(300, CTRL_A, belief(shard_lease(1), 3));
        history.at(350, CTRL_C, belief(shard_lease(1), 4));
        history.at(800, CTRL_A, belief_end(shard_lease(1), 3));
        let measured = history.report().measurements;
        assert_eq!(measured.belief_overlap_ns_total, ms(100 + 450));
        assert_eq!(measured.belief_overlap_ns_max, ms(450));
        assert_eq!(measured.leader_overlap_ns_total, ms(50));
    }

    #[test]
    fn one_controller_renewing_its_token_is_no_overlap() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(200, CTRL_A, belief(shard_lease(0), 5));
        history.at(300, CTRL_A, belief_end(shard_lease(0), 1));
        history.at(300, CTRL_B, belief(shard_lease(0), 7));
        history.at(300, CTRL_A, belief_end(shard_lease(0), 5));
        let measured = history.report().measurements;
        assert_eq!(measured.belief_overlap_ns_total, 0);
        assert_eq!(measured.failovers.len(), 1);
    }

    #[test]
    fn two_running_believers_of_one_lease_violate_one_active_holder() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(400, CTRL_B, belief(shard_lease(0), 2));
        history.at(450, CTRL_A, belief_end(shard_lease(0), 1));
        let verdict = history.verdict(ONE_ACTIVE_HOLDER);
        assert_eq!(verdict.violation_count, 1);
        let violation = &verdict.violations[0];
        assert_eq!(violation.time_ns, ms(400));
        assert_eq!(violation.nodes, vec![CTRL_B, CTRL_A]);
        assert_eq!(violation.trace_index, 10);
        assert!(
            violation.message.contains("for 50 ms"),
            "{}",
            violation.message
        );
    }

    #[test]
    fn a_believer_paused_through_the_overlap_holds_one_active_holder() {
        // The gc-pause story: the old holder stops, the store expires its
        // lease, another takes over, and the old one ends its belief as
        // soon as it runs again.
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.pause(300, CTRL_A, 2_000);
        history.at(2_000, CTRL_B, belief(shard_lease(0), 2));
        history.at(2_300, CTRL_A, belief_end(shard_lease(0), 1));
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 0);
        // Overlapping pauses merge; a gap between them is running time.
        let mut merged = History::new();
        merged.at(100, CTRL_A, belief(shard_lease(0), 1));
        merged.pause(300, CTRL_A, 1_000);
        merged.pause(1_200, CTRL_A, 1_100);
        merged.at(2_000, CTRL_B, belief(shard_lease(0), 2));
        merged.at(2_300, CTRL_A, belief_end(shard_lease(0), 1));
        assert_eq!(merged.violations(ONE_ACTIVE_HOLDER), 0);
    }

    #[test]
    fn a_believer_running_on_after_its_pause_violates_one_active_holder() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.pause(300, CTRL_A, 2_000);
        history.at(2_000, CTRL_B, belief(shard_lease(0), 2));
        history.at(2_500, CTRL_A, belief_end(shard_lease(0), 1));
        let verdict = history.verdict(ONE_ACTIVE_HOLDER);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].time_ns, ms(2_300));
        assert!(verdict.violations[0].message.contains("for 200 ms"));
    }

    #[test]
    fn a_pause_while_down_or_cut_short_by_a_crash_excuses_nothing() {
        let mut history = History::new();
        history.at(100, CTRL_B, belief(shard_lease(0), 1));
        // CTRL_A is down when its pause is due, so the pause never happens.
        history.crash(200, CTRL_A, Some(300));
        history.pause(300, CTRL_A, 5_000);
        history.at(1_000, CTRL_A, belief(shard_lease(0), 2));
        history.at(1_100, CTRL_B, belief_end(shard_lease(0), 1));
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 1);
        // A crash ends a pause: after the restart the node runs.
        let mut cut = History::new();
        cut.at(100, CTRL_B, belief(shard_lease(0), 1));
        cut.pause(200, CTRL_A, 5_000);
        cut.crash(300, CTRL_A, Some(100));
        cut.at(1_000, CTRL_A, belief(shard_lease(0), 2));
        cut.at(1_100, CTRL_B, belief_end(shard_lease(0), 1));
        assert_eq!(cut.violations(ONE_ACTIVE_HOLDER), 1);
    }

    #[test]
    fn a_crash_while_down_changes_nothing_so_a_later_pause_still_excuses() {
        // The simulator ignores a crash of a node that is down: CTRL_A is
        // back at 300, from its first crash, and its pause at 600 happens.
        let mut history = History::new();
        history.crash(100, CTRL_A, Some(200));
        history.crash(200, CTRL_A, Some(10_000));
        history.at(500, CTRL_A, belief(shard_lease(0), 1));
        history.pause(600, CTRL_A, 2_000);
        history.at(2_000, CTRL_B, belief(shard_lease(0), 2));
        history.at(2_600, CTRL_A, belief_end(shard_lease(0), 1));
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 0);
    }

    #[test]
    fn a_crash_while_down_still_restarts_the_node_at_its_heal() {
        // The second crash finds CTRL_A down and does nothing, but its heal
        // at 300 restarts it, as in the simulator and the engines: the pause
        // at 600, long before the first crash's heal at 10,100, happens, and
        // excuses CTRL_A's belief while CTRL_B holds. (Found by
        // worker-restarts seed 595, where two BUGGIFY crashes of one node
        // fired at the same instant.)
        let mut history = History::new();
        history.crash(100, CTRL_A, Some(10_000));
        history.crash(200, CTRL_A, Some(100));
        history.at(500, CTRL_A, belief(shard_lease(0), 1));
        history.pause(600, CTRL_A, 2_000);
        history.at(2_000, CTRL_B, belief(shard_lease(0), 2));
        history.at(2_600, CTRL_A, belief_end(shard_lease(0), 1));
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 0);
    }

    #[test]
    fn handoffs_renewals_and_other_leases_hold_one_active_holder() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(200, CTRL_A, belief(shard_lease(0), 5));
        history.at(300, CTRL_A, belief_end(shard_lease(0), 1));
        history.at(300, CTRL_A, belief_end(shard_lease(0), 5));
        history.at(300, CTRL_B, belief(shard_lease(0), 7));
        history.at(300, CTRL_C, belief(shard_lease(1), 8));
        history.at(350, CTRL_A, belief(LeaseName::Leader, 9));
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 0);
        // A crashed holder believes nothing from the crash on.
        history.crash(400, CTRL_B, None);
        history.at(500, CTRL_C, belief(shard_lease(0), 10));
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 0);
    }

    #[test]
    fn a_crash_ends_a_belief() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(400, CTRL_B, belief(shard_lease(0), 2));
        history.crash(600, CTRL_A, Some(1_000));
        history.ending(2_000, 5_000);
        let report = history.report();
        assert_eq!(report.measurements.belief_overlap_ns_total, ms(200));
        // CTRL_A's belief died with it: only CTRL_B holds the shard.
        let held = report.verdict(SHARDS_HELD).expect("verdict");
        assert!(
            held.violations
                .iter()
                .all(|v| !v.message.contains("shard-0 ")),
            "{held:#?}"
        );
    }

    #[test]
    fn a_reboot_ends_a_belief_as_a_crash_does() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(400, CTRL_B, belief(shard_lease(0), 2));
        history.reboot(600, CTRL_A, 1_000);
        history.ending(2_000, 5_000);
        let report = history.report();
        assert_eq!(report.measurements.belief_overlap_ns_total, ms(200));
        // And a pause due while the machine is down never happens.
        let mut down = History::new();
        down.at(100, CTRL_B, belief(shard_lease(0), 1));
        down.reboot(200, CTRL_A, 300);
        down.pause(300, CTRL_A, 5_000);
        down.at(1_000, CTRL_A, belief(shard_lease(0), 2));
        down.at(1_100, CTRL_B, belief_end(shard_lease(0), 1));
        assert_eq!(down.violations(ONE_ACTIVE_HOLDER), 1);
    }

    #[test]
    fn a_reboot_cuts_a_pause_short_like_a_crash() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.pause(300, CTRL_A, 5_000);
        history.at(400, CTRL_B, belief(shard_lease(0), 2));
        history.reboot(600, CTRL_A, 1_000);
        history.ending(2_000, 5_000);
        // The pause excused the overlap 400..600 until the reboot ended it.
        assert_eq!(history.violations(ONE_ACTIVE_HOLDER), 0);
        assert_eq!(
            history.report().measurements.belief_overlap_ns_total,
            ms(200)
        );
    }

    #[test]
    fn a_belief_still_open_at_the_end_counts_until_the_end() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(400, CTRL_B, belief(shard_lease(0), 2));
        history.ending(0, 1_000);
        assert_eq!(
            history.report().measurements.belief_overlap_ns_total,
            ms(600)
        );
    }

    #[test]
    fn a_handoff_records_a_failover_sample_with_its_gap() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(shard_lease(0), 1));
        history.at(500, CTRL_A, belief_end(shard_lease(0), 1));
        history.at(800, CTRL_B, belief(shard_lease(0), 2));
        history.at(900, CTRL_B, belief_end(shard_lease(0), 2));
        history.at(950, CTRL_B, belief(shard_lease(0), 3));
        let measured = history.report().measurements;
        assert_eq!(
            measured.failovers,
            vec![FailoverSample {
                lease: shard_lease(0),
                from: CTRL_A,
                to: CTRL_B,
                lost_ns: ms(500),
                regained_ns: ms(800),
            }]
        );
        assert_eq!(history.report().sometimes["failover"], 1);
    }

    #[test]
    fn a_crashed_holder_loses_its_lease_at_the_crash() {
        let mut history = History::new();
        history.at(100, CTRL_A, belief(LeaseName::Leader, 1));
        history.crash(300, CTRL_A, None);
        history.at(2_300, CTRL_B, belief(LeaseName::Leader, 2));
        let failovers = history.report().measurements.failovers;
        assert_eq!(failovers.len(), 1);
        assert_eq!(
            (failovers[0].lost_ns, failovers[0].regained_ns),
            (ms(300), ms(2_300))
        );
    }

    #[test]
    fn leadership_terms_and_shard_moves_count_acquisitions() {
        let mut history = History::new();
        history.at(10, CTRL_A, acquired(LeaseName::Leader, 1));
        history.at(20, CTRL_B, acquired(LeaseName::Leader, 4));
        history.at(20, CTRL_B, acquired(LeaseName::Leader, 4));
        history.at(10, CTRL_A, acquired(shard_lease(0), 2));
        history.at(30, CTRL_A, acquired(shard_lease(0), 6));
        history.at(40, CTRL_B, acquired(shard_lease(0), 7));
        history.at(50, CTRL_A, acquired(shard_lease(1), 8));
        let report = history.report();
        assert_eq!(report.measurements.leadership_terms, 2);
        assert_eq!(report.measurements.shards_moved, 1);
        assert_eq!(report.sometimes["shard_moved"], 1);
    }

    #[test]
    fn an_unheld_shard_at_the_end_violates_shards_held() {
        let mut history = History::new();
        history.hold_everything(CTRL_A, 1);
        history.at(500, CTRL_A, belief_end(shard_lease(2), 1));
        let verdict = history.verdict(SHARDS_HELD);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("no controller"));
        assert_eq!(verdict.violations[0].time_ns, history.end_ns);
    }

    #[test]
    fn two_believers_or_no_leader_at_the_end_violate_shards_held() {
        let mut history = History::new();
        history.hold_everything(CTRL_A, 1);
        history.at(500, CTRL_B, belief(shard_lease(1), 2));
        history.at(600, CTRL_A, belief_end(LeaseName::Leader, 1));
        let verdict = history.verdict(SHARDS_HELD);
        assert_eq!(verdict.violation_count, 2);
        let doubly_held = verdict
            .violations
            .iter()
            .find(|v| v.message.starts_with("shard-1 "))
            .expect("shard-1 is held twice");
        assert_eq!(doubly_held.nodes, vec![CTRL_A, CTRL_B]);
        let leaderless = verdict
            .violations
            .iter()
            .find(|v| v.message.starts_with("leader "))
            .expect("no leader");
        assert!(leaderless.message.contains("no controller"));
    }

    #[test]
    fn a_believer_of_a_superseded_token_violates_shards_held() {
        let mut history = History::new();
        history.hold_everything(CTRL_A, 1);
        history.at(500, CTRL_B, acquired(shard_lease(3), 9));
        assert_eq!(history.violations(SHARDS_HELD), 1);
    }

    #[test]
    fn every_shard_and_the_leader_held_once_holds_shards_held() {
        let mut history = History::new();
        history.hold_everything(CTRL_A, 1);
        history.at(500, CTRL_A, belief_end(shard_lease(2), 1));
        history.at(600, CTRL_B, acquired(shard_lease(2), 9));
        history.at(600, CTRL_B, belief(shard_lease(2), 9));
        assert_eq!(history.violations(SHARDS_HELD), 0);
    }

    #[test]
    fn a_shard_kept_from_its_rendezvous_owner_violates_shards_placed() {
        let observed =
            |members: Vec<NodeId>, revision| Event::MembershipObserved { members, revision };
        let mut history = History::new();
        history.hold_everything(CTRL_A, 1);
        history.at(5, CTRL_A, observed(vec![CTRL_A], 3));
        assert_eq!(history.violations(SHARDS_PLACED), 0);
        // B joins: the shards it wins must move to it.
        history.at(50, CTRL_A, observed(vec![CTRL_A, CTRL_B], 8));
        let owners = assign_shards(SHARDS, &[CTRL_A, CTRL_B]);
        let won = owners.iter().filter(|&&o| o == Some(CTRL_B)).count() as u64;
        assert!(won > 0, "B wins some of {SHARDS} shards");
        let verdict = history.verdict(SHARDS_PLACED);
        assert_eq!(verdict.violation_count, won);
        assert!(verdict.violations[0].message.contains("rendezvous owner"));
        // The older read, met later in the history, does not count.
        history.at(60, CTRL_B, observed(vec![CTRL_A], 3));
        assert_eq!(history.violations(SHARDS_PLACED), won);
    }

    #[test]
    fn a_lease_lost_in_a_quiet_stretch_violates_quiet_leases_kept() {
        let mut history = History::new();
        history.hold_everything(CTRL_A, 1);
        let ended = |reason| Event::BeliefEnded {
            lease: shard_lease(1),
            token: 1,
            reason,
        };
        // Released is always fine; Lost 5 s into a quiet run is not.
        history.at(5_000, CTRL_A, ended(BeliefEnd::Released));
        assert_eq!(history.violations(QUIET_LEASES_KEPT), 0);
        history.at(6_000, CTRL_A, ended(BeliefEnd::Lost));
        let verdict = history.verdict(QUIET_LEASES_KEPT);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("Lost"));
        // Too soon after the boot, or after a disturbance: not judged.
        let mut early = History::new();
        early.at(3_000, CTRL_A, ended(BeliefEnd::Expired));
        assert_eq!(early.violations(QUIET_LEASES_KEPT), 0);
        history.disturb(3_000);
        assert_eq!(history.violations(QUIET_LEASES_KEPT), 0);
    }
}
