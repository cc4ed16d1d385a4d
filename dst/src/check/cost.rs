//! `cost.*`: what a run spent that a sound design would not have. A cost is
//! not a safety or liveness failure (nothing wrong happened), but a sweep
//! flags a run that spends over its budget, because the waste is a design
//! bug that shows only as load.
//!
//! `cost.shard_movement`: shards change holder only when membership
//! changes, and each handoff is a lease release, an acquisition, a fence of
//! every worker and a pause in that shard's reconciliation. Rendezvous
//! hashing moves only the shards a joining member wins or a leaving member
//! held (about `shard_count / (n + 1)` on a join to `n + 1` members). The
//! baseline replays the memberships the controllers read
//! (`MembershipObserved`, ordered by store revision) and counts what
//! rendezvous hashing would move between consecutive ones; the run's actual
//! moves are shard acquisitions by a controller other than the previous
//! holder. A placement that moves more than 1.5 times the baseline is over
//! budget (hash mod n moves about `n / (n + 1)` of all shards per change).
//!
//! The controllers act on exactly the memberships they read, so the moves
//! of a sound placement follow a path through the observed memberships,
//! and moving along a path never costs more than the sum of its steps: a
//! sound run stays at or under the baseline.

use sim::NodeId;

use super::{CheckInput, Measurements, PropertyKind, Verdict, Violations, last_trace_index};
use plane::protocol::{Event, LeaseName};
use plane::shard::{assign_shards, shards_moved};

/// Shard moves within 1.5 times what rendezvous hashing moves.
pub(crate) const SHARD_MOVEMENT: &str = "cost.shard_movement";

/// The budget is `BUDGET_NUMERATOR / BUDGET_DENOMINATOR` times the
/// baseline: integers, no floats in a verdict.
pub(crate) const BUDGET_NUMERATOR: u64 = 3;
/// See [`BUDGET_NUMERATOR`].
pub(crate) const BUDGET_DENOMINATOR: u64 = 2;

/// The membership changes the controllers observed, in store order: each
/// a (before, after) pair of sorted member lists.
fn membership_changes(input: &CheckInput) -> Vec<(Vec<NodeId>, Vec<NodeId>)> {
    let mut observed: Vec<(u64, u64, &Vec<NodeId>)> = input
        .history
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::MembershipObserved { members, revision } => {
                Some((*revision, entry.trace_index, members))
            }
            _ => None,
        })
        .collect();
    observed.sort_unstable();
    let mut changes = Vec::new();
    let mut current: Option<&Vec<NodeId>> = None;
    for (_, _, members) in observed {
        match current {
            Some(before) if before == members => {}
            Some(before) => {
                changes.push((before.clone(), members.clone()));
                current = Some(members);
            }
            None => current = Some(members),
        }
    }
    changes
}

/// Fills the shard movement measurements: membership changes, the
/// rendezvous baseline and the textbook ideal (`shard_count` times the
/// members that changed, over the larger membership). `shards_moved` must
/// be measured already.
pub(crate) fn measure(input: &CheckInput, measurements: &mut Measurements) {
    let shard_count = input.shard_count;
    let changes = membership_changes(input);
    measurements.membership_changes = changes.len() as u64;
    for (before, after) in &changes {
        let moved = shards_moved(
            &assign_shards(shard_count, before),
            &assign_shards(shard_count, after),
        );
        measurements.shard_moves_baseline += moved as u64;
        let changed = before.iter().filter(|m| !after.contains(m)).count()
            + after.iter().filter(|m| !before.contains(m)).count();
        let larger = before.len().max(after.len()).max(1);
        measurements.shard_moves_ideal += u64::from(shard_count) * changed as u64 / larger as u64;
    }
}

/// Moves in hundredths of the baseline, for reports (`None` without a
/// baseline).
pub(crate) fn movement_percent(measurements: &Measurements) -> Option<u64> {
    (measurements.shard_moves_baseline > 0)
        .then(|| measurements.shards_moved * 100 / measurements.shard_moves_baseline)
}

/// `cost.shard_movement`: the run's shard moves stay within the budget.
/// The violation points at the run's last shard move.
pub(crate) fn shard_movement(input: &CheckInput, measurements: &Measurements) -> Verdict {
    let mut found = Violations::new(SHARD_MOVEMENT, PropertyKind::Cost);
    let moved = measurements.shards_moved;
    let baseline = measurements.shard_moves_baseline;
    if moved * BUDGET_DENOMINATOR > baseline * BUDGET_NUMERATOR {
        let last_move = input.history.iter().rev().find(|entry| {
            matches!(
                entry.event,
                Event::LeaseAcquired {
                    lease: LeaseName::Shard(_),
                    ..
                }
            )
        });
        let ratio = movement_percent(measurements)
            .map_or("no membership change to justify any".to_string(), |pct| {
                format!("{}.{:02}x the baseline", pct / 100, pct % 100)
            });
        let message = format!(
            "{moved} shard moves over {} membership changes, where rendezvous hashing moves {baseline}: {ratio}, over the {BUDGET_NUMERATOR}/{BUDGET_DENOMINATOR} budget (a cost, not a safety violation)",
            measurements.membership_changes
        );
        let (time_ns, trace_index, nodes) = match last_move {
            Some(entry) => (entry.time_ns, entry.trace_index, vec![entry.node]),
            None => (
                input.end_ns,
                last_trace_index(input),
                input.topology.controllers.clone(),
            ),
        };
        let about = last_move
            .map(|entry| entry.event.subjects())
            .unwrap_or_default();
        found.about(time_ns, trace_index, &nodes, about, message);
    }
    found.into_verdict()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use plane::shard::{ShardId, modulo_owner, rendezvous_owner};

    fn observed(members: &[NodeId], revision: u64) -> Event {
        Event::MembershipObserved {
            members: members.to_vec(),
            revision,
        }
    }

    /// Plays a join of `CTRL_C` to `[CTRL_A, CTRL_B]`: every shard acquired
    /// by its owner under `owner` before, then moved to its owner after.
    fn join(history: &mut History, owner: fn(ShardId, &[NodeId]) -> Option<NodeId>) {
        let before = [CTRL_A, CTRL_B];
        let after = [CTRL_A, CTRL_B, CTRL_C];
        history.at(10, CTRL_A, observed(&before, 5));
        history.at(11, CTRL_B, observed(&before, 6));
        for (token, shard) in (10..).zip((0..SHARDS).map(ShardId)) {
            let holder = owner(shard, &before).expect("members");
            history.at(20, holder, acquired(LeaseName::Shard(shard), token));
        }
        history.at(100, CTRL_C, observed(&after, 50));
        // A late read of the old membership is no change back.
        history.at(101, CTRL_B, observed(&before, 40));
        history.at(102, CTRL_B, observed(&after, 52));
        let mut token = 60;
        for shard in (0..SHARDS).map(ShardId) {
            let (old, new) = (owner(shard, &before), owner(shard, &after));
            if old != new {
                history.at(
                    200,
                    new.expect("members"),
                    acquired(LeaseName::Shard(shard), token),
                );
                token += 1;
            }
        }
    }

    #[test]
    fn a_join_under_rendezvous_moves_exactly_the_baseline_and_holds() {
        let mut history = History::new();
        join(&mut history, rendezvous_owner::<NodeId>);
        let report = history.report();
        let m = &report.measurements;
        assert_eq!(m.membership_changes, 1);
        assert!(m.shard_moves_baseline > 0, "the joiner wins some shard");
        assert_eq!(m.shards_moved, m.shard_moves_baseline);
        assert_eq!(m.shard_moves_ideal, u64::from(SHARDS) / 3);
        assert_eq!(history.violations(SHARD_MOVEMENT), 0);
    }

    #[test]
    fn moves_beyond_one_and_a_half_times_the_baseline_violate_shard_movement() {
        let mut history = History::new();
        join(&mut history, rendezvous_owner::<NodeId>);
        let baseline = history.report().measurements.shard_moves_baseline;
        // Every shard handed over twice more than rendezvous needs.
        let mut token = 500;
        for round in 0..2 {
            for shard in (0..SHARDS).map(ShardId) {
                let holder = if round == 0 { CTRL_A } else { CTRL_B };
                history.at(
                    300 + round,
                    holder,
                    acquired(LeaseName::Shard(shard), token),
                );
                token += 1;
            }
        }
        let verdict = history.verdict(SHARD_MOVEMENT);
        assert_eq!(verdict.kind, PropertyKind::Cost);
        assert_eq!(verdict.violation_count, 1);
        let message = &verdict.violations[0].message;
        assert!(message.contains(&format!("moves {baseline}")), "{message}");
        assert!(message.contains("not a safety violation"), "{message}");
        assert!(history.report().safety_ok() && !history.report().cost_ok());
    }

    #[test]
    fn moves_without_any_membership_change_violate_shard_movement() {
        let mut history = History::new();
        history.at(10, CTRL_A, acquired(shard_lease(0), 1));
        history.at(20, CTRL_B, acquired(shard_lease(0), 2));
        assert_eq!(history.violations(SHARD_MOVEMENT), 1);
        let mut quiet = History::new();
        quiet.at(10, CTRL_A, acquired(shard_lease(0), 1));
        quiet.at(20, CTRL_A, acquired(shard_lease(0), 2));
        assert_eq!(quiet.violations(SHARD_MOVEMENT), 0);
    }

    #[test]
    fn the_budget_separates_modulo_placement_from_rendezvous() {
        // With 4 test shards the two placements may agree by chance; the
        // property is about the placement, so judge it on 64 shards.
        let before = [CTRL_A, CTRL_B];
        let after = [CTRL_A, CTRL_B, CTRL_C];
        let count = 64;
        let moved = |owner: fn(ShardId, &[NodeId]) -> Option<NodeId>| {
            (0..count)
                .map(ShardId)
                .filter(|&s| owner(s, &before) != owner(s, &after))
                .count() as u64
        };
        let (modulo, rendezvous) = (
            moved(modulo_owner::<NodeId>),
            moved(rendezvous_owner::<NodeId>),
        );
        assert!(
            modulo * BUDGET_DENOMINATOR > rendezvous * BUDGET_NUMERATOR,
            "modulo {modulo} vs rendezvous {rendezvous}"
        );
    }
}
