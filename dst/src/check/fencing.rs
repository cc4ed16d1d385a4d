//! `always.*` properties of side effects on workers and of leases: each
//! action runs once, one instance per (resource, ordinal), fencing tokens
//! only rise at a worker, one holder per lease token, and no status written
//! by a holder another controller has superseded.
//!
//! Every pass replays the history in execution order, which is the order
//! in which workers executed their side effects; a worker's own fence is
//! judged from its own records only (`FenceRaised` and the tokens of the
//! actions it ran), because a fence protects only what passes through it.
//!
//! Resources are numbered once per run ([`ResourceIds`]): what a pass keeps
//! per resource is a `Vec` indexed by that number, and each resource's
//! shard (a jump hash, which divides) is computed once rather than at every
//! side effect and status write.

use std::collections::BTreeMap;

use sim::{HistoryEntry, NodeId};

use super::names::{ResourceId, ResourceIds};
use super::{CheckInput, PropertyKind, Verdict, Violations};
use plane::protocol::{ActionId, Event, Instance, InstanceId, LeaseName};
use plane::shard::{ShardId, shard_of};

/// Per action id, at most one executed side effect.
pub(crate) const ACTION_RUNS_ONCE: &str = "always.action_runs_once";
/// Never two running instances with one (resource, ordinal).
pub(crate) const ONE_INSTANCE_PER_ORDINAL: &str = "always.one_instance_per_ordinal";
/// No action executes with a token below one its worker saw for the shard.
pub(crate) const FENCING_MONOTONIC: &str = "always.fencing_monotonic";
/// Every instance carries its resource's shard, so the right fence guards it.
pub(crate) const INSTANCE_IN_ITS_SHARD: &str = "always.instance_in_its_shard";
/// Per (lease, token), one controller acquires or believes it.
pub(crate) const ONE_HOLDER_PER_TOKEN: &str = "always.one_holder_per_token";
/// No status written with a token another controller has superseded.
pub(crate) const STALE_HOLDER_EFFECT: &str = "always.stale_holder_effect";

/// Every fencing verdict, in report order.
pub(crate) fn verdicts(input: &CheckInput, resources: &ResourceIds) -> Vec<Verdict> {
    let shards = Shards::build(input, resources);
    vec![
        action_runs_once(input),
        one_instance_per_ordinal(input, resources),
        fencing_monotonic(input),
        instance_in_its_shard(input, &shards),
        one_holder_per_token(input),
        stale_holder_effect(input, &shards),
    ]
}

/// Each resource's shard, computed once per resource.
struct Shards<'r, 'h> {
    resources: &'r ResourceIds<'h>,
    /// Per resource, by its number.
    by_resource: Vec<ShardId>,
}

impl<'r, 'h> Shards<'r, 'h> {
    fn build(input: &CheckInput, resources: &'r ResourceIds<'h>) -> Self {
        let by_resource = resources
            .by_number()
            .iter()
            .map(|id| shard_of(id, input.shard_count))
            .collect();
        Shards {
            resources,
            by_resource,
        }
    }

    /// Every entry of `history` with the shard of the resource it names,
    /// if it names one, in history order.
    fn entries(
        &self,
        history: &'h [HistoryEntry<Event>],
    ) -> impl Iterator<Item = (&'h HistoryEntry<Event>, Option<ShardId>)> + '_ {
        self.resources
            .entries(history)
            .map(|(entry, resource)| (entry, resource.map(|number| self.by_resource[number])))
    }
}

/// An executed side effect: (action, token, instance, verb).
fn side_effect(event: &Event) -> Option<(ActionId, u64, &Instance, &'static str)> {
    match event {
        Event::InstanceStarted {
            action,
            token,
            instance,
        } => Some((*action, *token, instance, "start")),
        Event::InstanceStopped {
            action,
            token,
            instance,
        } => Some((*action, *token, instance, "stop")),
        _ => None,
    }
}

/// Per `ActionId`, at most one `InstanceStarted`/`InstanceStopped`: a
/// retried or duplicated action must be answered from the worker's record.
///
/// Nearly every action runs once, so rather than a map insert per side
/// effect the runs are sorted once by (action, position): each action's
/// runs are then adjacent, its first run first.
fn action_runs_once(input: &CheckInput) -> Verdict {
    let mut found = Violations::new(ACTION_RUNS_ONCE, PropertyKind::Always);
    let history = input.history;
    let mut runs: Vec<(ActionId, usize)> = history
        .iter()
        .enumerate()
        .filter_map(|(position, entry)| {
            side_effect(&entry.event).map(|(action, ..)| (action, position))
        })
        .collect();
    runs.sort_unstable();
    // Every run after an action's first, as (its position, the first's),
    // reported in history order.
    let mut again: Vec<(usize, usize)> = runs
        .chunk_by(|one, other| one.0 == other.0)
        .flat_map(|runs| {
            let first = runs[0].1;
            runs[1..]
                .iter()
                .map(move |&(_, position)| (position, first))
        })
        .collect();
    again.sort_unstable();
    for (position, first) in again {
        let (entry, previous) = (&history[position], &history[first]);
        let (action, _, instance, verb) = side_effect(&entry.event).expect("a side effect");
        let message = format!(
            "action {action:?} ran again ({verb} {}/{}), first at trace index {}",
            instance.resource, instance.ordinal, previous.trace_index
        );
        found.at_entry(entry, &[previous.node], message);
    }
    found.into_verdict()
}

/// Replaying starts and stops in order, never two running instances with
/// the same (resource, ordinal), and never one instance id started twice.
fn one_instance_per_ordinal(input: &CheckInput, resources: &ResourceIds) -> Verdict {
    let mut found = Violations::new(ONE_INSTANCE_PER_ORDINAL, PropertyKind::Always);
    // Slots are (resource number, ordinal).
    let mut running: BTreeMap<InstanceId, (ResourceId, u32)> = BTreeMap::new();
    // Per resource, by number: the (ordinal, instance) pairs started and not
    // stopped since, each once; a resource has a handful.
    let mut by_ordinal: Vec<Vec<(u32, InstanceId)>> = vec![Vec::new(); resources.count()];
    for (entry, resource) in resources.entries(input.history) {
        match &entry.event {
            Event::InstanceStarted { instance, .. } => {
                let resource = resource.expect("an instance names its resource");
                let slot = (instance.ordinal, instance.id);
                if running.contains_key(&instance.id) {
                    let message = format!(
                        "instance {:?} started again while running ({}/{})",
                        instance.id, instance.resource, instance.ordinal
                    );
                    found.at_entry(entry, &[instance.id.worker], message);
                }
                let others = &mut by_ordinal[resource];
                // The other instance of this ordinal with the lowest id.
                let other = others
                    .iter()
                    .filter(|&&(ordinal, other)| {
                        ordinal == instance.ordinal && other != instance.id
                    })
                    .map(|&(_, other)| other)
                    .min();
                if let Some(other) = other {
                    let message = format!(
                        "{}/{} runs twice: {:?} started at generation {} while {other:?} runs",
                        instance.resource, instance.ordinal, instance.id, instance.generation
                    );
                    found.at_entry(entry, &[instance.id.worker, other.worker], message);
                }
                if !others.contains(&slot) {
                    others.push(slot);
                }
                running.insert(instance.id, (resource, instance.ordinal));
            }
            Event::InstanceStopped { instance, .. } => {
                if let Some((resource, ordinal)) = running.remove(&instance.id) {
                    by_ordinal[resource].retain(|&slot| slot != (ordinal, instance.id));
                }
            }
            _ => {}
        }
    }
    found.into_verdict()
}

/// Per (worker, shard), no side effect executes with a token lower than the
/// highest the worker had already seen: from `FenceRaised` or from earlier
/// executed actions. The fence must survive the worker's crashes, so it is
/// never reset here.
fn fencing_monotonic(input: &CheckInput) -> Verdict {
    let mut found = Violations::new(FENCING_MONOTONIC, PropertyKind::Always);
    let mut highest: BTreeMap<(NodeId, ShardId), (u64, NodeId)> = BTreeMap::new();
    for entry in input.history {
        let (shard, token, seen_from) = match &entry.event {
            Event::FenceRaised { shard, token } => (*shard, *token, entry.node),
            Event::InstanceStarted {
                action,
                token,
                instance,
            }
            | Event::InstanceStopped {
                action,
                token,
                instance,
            } => (instance.shard, *token, action.controller),
            _ => continue,
        };
        let seen = highest
            .entry((entry.node, shard))
            .or_insert((token, seen_from));
        if side_effect(&entry.event).is_some() && token < seen.0 {
            let (_, _, instance, verb) = side_effect(&entry.event).expect("a side effect");
            let message = format!(
                "{verb} {}/{} ran on {shard} with token {token} after the worker saw token {}",
                instance.resource, instance.ordinal, seen.0
            );
            found.at_entry(entry, &[seen_from, seen.1], message);
        }
        if token > seen.0 {
            *seen = (token, seen_from);
        }
    }
    found.into_verdict()
}

/// Every executed instance names its resource's shard (so the fence it was
/// checked against is that shard's) and runs on the worker that recorded it.
fn instance_in_its_shard(input: &CheckInput, shards: &Shards) -> Verdict {
    let mut found = Violations::new(INSTANCE_IN_ITS_SHARD, PropertyKind::Always);
    for (entry, shard) in shards.entries(input.history) {
        let Some((_, _, instance, verb)) = side_effect(&entry.event) else {
            continue;
        };
        let expected = shard.expect("an instance names its resource");
        if instance.shard != expected {
            let message = format!(
                "{verb} {}/{} fenced on {} but the resource is in {expected}",
                instance.resource, instance.ordinal, instance.shard
            );
            found.at_entry(entry, &[], message);
        } else if instance.id.worker != entry.node {
            let message = format!(
                "{verb} {}/{} recorded by {} for an instance of {}",
                instance.resource, instance.ordinal, entry.node, instance.id.worker
            );
            found.at_entry(entry, &[instance.id.worker], message);
        }
    }
    found.into_verdict()
}

/// Per (lease, token), `LeaseAcquired` and `BeliefStarted` name one
/// controller: a token is one term of one holder.
fn one_holder_per_token(input: &CheckInput) -> Verdict {
    let mut found = Violations::new(ONE_HOLDER_PER_TOKEN, PropertyKind::Always);
    let mut holder: BTreeMap<(LeaseName, u64), NodeId> = BTreeMap::new();
    for entry in input.history {
        let (lease, token) = match &entry.event {
            // The store's record: who it wrote as holder at that revision
            // (the token). A controller believing in a token the store gave
            // another is caught even if the other never heard its reply.
            Event::LeaseStored {
                lease,
                holder: Some(stored),
                revision,
            } => {
                holder.entry((*lease, *revision)).or_insert(*stored);
                continue;
            }
            Event::LeaseAcquired { lease, token } | Event::BeliefStarted { lease, token } => {
                (lease, token)
            }
            _ => continue,
        };
        let first = *holder.entry((*lease, *token)).or_insert(entry.node);
        if first != entry.node {
            let message = format!("{lease:?} token {token} held by {} and {first}", entry.node);
            found.at_entry(entry, &[first], message);
        }
    }
    found.into_verdict()
}

/// No status write committed with token T for shard s at a store revision
/// above another controller's acquisition of s with a higher token T': the
/// store compares the shard key's revision with T, so once T' was written
/// the write must have been refused. A status write committed with no
/// token at all must come from the shard's holder as the store knew it.
/// Both tokens and write revisions are store revisions, so the order is
/// the store's, whatever order the replies reached their nodes in.
///
/// Judged where the effects took place: the store's records of lease and
/// status writes (`LeaseStored`, `StatusStored` with its writer and the
/// token it was committed under), and, so that a missing record cannot
/// hide anything, the controllers' own (`LeaseAcquired`, `StatusWritten`).
fn stale_holder_effect(input: &CheckInput, shards: &Shards) -> Verdict {
    let mut found = Violations::new(STALE_HOLDER_EFFECT, PropertyKind::Always);
    let mut acquired: BTreeMap<ShardId, Vec<(u64, NodeId)>> = BTreeMap::new();
    for entry in input.history {
        match &entry.event {
            Event::LeaseAcquired {
                lease: LeaseName::Shard(shard),
                token,
            } => acquired
                .entry(*shard)
                .or_default()
                .push((*token, entry.node)),
            Event::LeaseStored {
                lease: LeaseName::Shard(shard),
                holder: Some(holder),
                revision,
            } => acquired
                .entry(*shard)
                .or_default()
                .push((*revision, *holder)),
            _ => {}
        }
    }
    let controllers = &input.topology.controllers;
    for (entry, shard) in shards.entries(input.history) {
        let (resource, writer, token, revision) = match &entry.event {
            Event::StatusWritten {
                resource,
                token,
                revision,
                ..
            } => (resource, entry.node, Some(*token), *revision),
            Event::StatusStored {
                id,
                writer,
                fence,
                revision,
                status: Some(_),
            } if controllers.contains(writer) => (id, *writer, *fence, *revision),
            _ => continue,
        };
        let shard = shard.expect("a status names its resource");
        let holders = acquired.get(&shard).map_or(&[][..], Vec::as_slice);
        let message = match token {
            Some(token) => holders
                .iter()
                .filter(|&&(newer, holder)| holder != writer && newer > token && newer < revision)
                .min_by_key(|&&(newer, _)| newer)
                .map(|&(newer, holder)| {
                    (holder, format!(
                        "status of {resource} written by {writer} with token {token} at revision {revision} on {shard}, after {holder} acquired it with token {newer}"
                    ))
                }),
            None => {
                let current = holders
                    .iter()
                    .filter(|&&(at, _)| at < revision)
                    .max_by_key(|&&(at, _)| at);
                match current {
                    Some(&(_, holder)) if holder == writer => None,
                    Some(&(at, holder)) => Some((holder, format!(
                        "status of {resource} written by {writer} with no fencing token at revision {revision} on {shard}, which {holder} held since revision {at}"
                    ))),
                    None => Some((writer, format!(
                        "status of {resource} written by {writer} with no fencing token at revision {revision} on {shard}, which nobody held"
                    ))),
                }
            }
        };
        if let Some((holder, message)) = message {
            found.at_entry(entry, &[holder], message);
        }
    }
    found.into_verdict()
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn one_action_executed_twice_violates_action_runs_once() {
        let mut history = History::new();
        let first = instance(WORKER_A, 1, "res-1", 0, 1);
        let second = instance(WORKER_A, 2, "res-1", 0, 1);
        history.at(10, WORKER_A, start(CTRL_A, 7, 1, &first));
        history.at(20, WORKER_A, stop(CTRL_A, 8, 1, &first));
        history.at(30, WORKER_A, start(CTRL_A, 7, 1, &second));
        let verdict = history.verdict(ACTION_RUNS_ONCE);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].time_ns, ms(30));
        assert_eq!(verdict.violations[0].trace_index, history.last_index());
    }

    #[test]
    fn distinct_actions_and_a_deduplicated_retry_hold_action_runs_once() {
        let mut history = History::new();
        let first = instance(WORKER_A, 1, "res-1", 0, 1);
        history.at(10, WORKER_A, start(CTRL_A, 7, 1, &first));
        history.at(
            15,
            WORKER_A,
            Event::ActionDeduplicated {
                action: action(CTRL_A, 7),
            },
        );
        history.at(20, WORKER_A, stop(CTRL_A, 8, 1, &first));
        // The same sequence from another controller is another action.
        history.at(
            30,
            WORKER_A,
            start(CTRL_B, 7, 2, &instance(WORKER_A, 2, "res-1", 0, 1)),
        );
        assert_eq!(history.violations(ACTION_RUNS_ONCE), 0);
    }

    #[test]
    fn two_running_instances_of_one_ordinal_violate_one_instance_per_ordinal() {
        let mut history = History::new();
        let first = instance(WORKER_A, 1, "res-1", 0, 1);
        let second = instance(WORKER_B, 1, "res-1", 0, 2);
        history.at(10, WORKER_A, start(CTRL_A, 1, 1, &first));
        history.at(20, WORKER_B, start(CTRL_B, 1, 2, &second));
        let verdict = history.verdict(ONE_INSTANCE_PER_ORDINAL);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![WORKER_B, WORKER_A]);
        assert!(verdict.violations[0].message.contains("res-1/0"));
    }

    #[test]
    fn an_instance_id_started_twice_violates_one_instance_per_ordinal() {
        let mut history = History::new();
        let first = instance(WORKER_A, 1, "res-1", 0, 1);
        let reused = instance(WORKER_A, 1, "res-2", 0, 1);
        history.at(10, WORKER_A, start(CTRL_A, 1, 1, &first));
        history.at(20, WORKER_A, start(CTRL_A, 2, 1, &reused));
        assert_eq!(history.violations(ONE_INSTANCE_PER_ORDINAL), 1);
    }

    #[test]
    fn replacing_an_instance_after_stopping_it_holds_one_instance_per_ordinal() {
        let mut history = History::new();
        let old = instance(WORKER_A, 1, "res-1", 0, 1);
        let new = instance(WORKER_A, 2, "res-1", 0, 2);
        history.at(10, WORKER_A, start(CTRL_A, 1, 1, &old));
        history.at(
            10,
            WORKER_A,
            start(CTRL_A, 2, 1, &instance(WORKER_A, 3, "res-1", 1, 1)),
        );
        history.at(20, WORKER_A, stop(CTRL_A, 3, 1, &old));
        history.at(30, WORKER_A, start(CTRL_A, 4, 1, &new));
        assert_eq!(history.violations(ONE_INSTANCE_PER_ORDINAL), 0);
    }

    #[test]
    fn an_action_below_a_raised_fence_violates_fencing_monotonic() {
        let mut history = History::new();
        let one = instance(WORKER_A, 1, "res-1", 0, 1);
        history.at(10, WORKER_A, fence(one.shard, 5));
        history.at(20, WORKER_A, start(CTRL_A, 1, 4, &one));
        let verdict = history.verdict(FENCING_MONOTONIC);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("token 4"));
        assert!(verdict.violations[0].message.contains("token 5"));
    }

    #[test]
    fn an_action_below_an_executed_token_violates_fencing_monotonic() {
        let mut history = History::new();
        let one = instance(WORKER_A, 1, "res-1", 0, 1);
        history.at(10, WORKER_A, start(CTRL_B, 1, 6, &one));
        history.at(20, WORKER_A, stop(CTRL_A, 1, 4, &one));
        let verdict = history.verdict(FENCING_MONOTONIC);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![WORKER_A, CTRL_A, CTRL_B]);
    }

    #[test]
    fn other_workers_and_other_shards_hold_fencing_monotonic() {
        let mut history = History::new();
        let one = instance(WORKER_A, 1, "res-1", 0, 1);
        let on_b = instance(WORKER_B, 1, "res-1", 1, 1);
        let other_shard = (0..100)
            .map(|n| format!("res-x{n}"))
            .find(|id| shard_of(id, SHARDS) != one.shard)
            .expect("some resource in another shard");
        let elsewhere = instance(WORKER_A, 2, &other_shard, 0, 1);
        history.at(10, WORKER_A, fence(one.shard, 5));
        history.at(20, WORKER_A, start(CTRL_A, 1, 5, &one));
        history.at(30, WORKER_B, start(CTRL_B, 1, 4, &on_b));
        history.at(40, WORKER_A, start(CTRL_B, 2, 4, &elsewhere));
        history.at(50, WORKER_A, stop(CTRL_C, 1, 9, &one));
        assert_eq!(history.violations(FENCING_MONOTONIC), 0);
    }

    #[test]
    fn an_instance_in_a_wrong_shard_violates_instance_in_its_shard() {
        let mut history = History::new();
        let mut wrong = instance(WORKER_A, 1, "res-1", 0, 1);
        wrong.shard = ShardId((wrong.shard.0 + 1) % SHARDS);
        history.at(10, WORKER_A, start(CTRL_A, 1, 1, &wrong));
        let elsewhere = instance(WORKER_B, 1, "res-2", 0, 1);
        history.at(20, WORKER_A, start(CTRL_A, 2, 1, &elsewhere));
        assert_eq!(history.violations(INSTANCE_IN_ITS_SHARD), 2);

        let mut valid = History::new();
        valid.at(
            10,
            WORKER_A,
            start(CTRL_A, 1, 1, &instance(WORKER_A, 1, "res-1", 0, 1)),
        );
        assert_eq!(valid.violations(INSTANCE_IN_ITS_SHARD), 0);
    }

    #[test]
    fn two_controllers_with_one_token_violate_one_holder_per_token() {
        let mut history = History::new();
        history.at(10, CTRL_A, acquired(shard_lease(1), 5));
        history.at(20, CTRL_B, acquired(shard_lease(1), 5));
        history.at(30, CTRL_C, belief(LeaseName::Leader, 9));
        history.at(31, CTRL_A, acquired(LeaseName::Leader, 9));
        let verdict = history.verdict(ONE_HOLDER_PER_TOKEN);
        assert_eq!(verdict.violation_count, 2);
        assert_eq!(verdict.violations[0].nodes, vec![CTRL_B, CTRL_A]);
    }

    #[test]
    fn one_controller_per_token_holds_one_holder_per_token() {
        let mut history = History::new();
        history.at(10, CTRL_A, acquired(shard_lease(1), 5));
        history.at(10, CTRL_A, belief(shard_lease(1), 5));
        history.at(20, CTRL_B, acquired(shard_lease(1), 8));
        history.at(20, CTRL_B, acquired(shard_lease(2), 5));
        history.at(20, CTRL_C, acquired(LeaseName::Leader, 5));
        assert_eq!(history.violations(ONE_HOLDER_PER_TOKEN), 0);
    }

    #[test]
    fn a_status_written_after_a_newer_holder_acquired_violates_stale_holder_effect() {
        let mut history = History::new();
        let lease = lease_of("res-1");
        history.at(10, CTRL_A, acquired(lease, 5));
        history.at(20, CTRL_B, acquired(lease, 8));
        history.at(30, CTRL_A, status_written_at("res-1", 1, 1, 5, 9));
        let verdict = history.verdict(STALE_HOLDER_EFFECT);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![CTRL_A, CTRL_B]);
        assert!(verdict.violations[0].message.contains("token 8"));
    }

    #[test]
    fn statuses_before_handoff_or_by_the_newest_holder_hold_stale_holder_effect() {
        let mut history = History::new();
        let lease = lease_of("res-1");
        history.at(10, CTRL_A, acquired(lease, 5));
        history.at(15, CTRL_A, status_written("res-1", 1, 1, 5));
        history.at(20, CTRL_B, acquired(lease, 8));
        history.at(30, CTRL_B, status_written("res-1", 1, 1, 8));
        // A newer token on another shard fences nothing here.
        let other = (0..SHARDS)
            .map(shard_lease)
            .find(|&l| l != lease)
            .expect("another shard");
        history.at(40, CTRL_C, acquired(other, 20));
        history.at(50, CTRL_B, status_written("res-1", 1, 1, 8));
        assert_eq!(history.violations(STALE_HOLDER_EFFECT), 0);
    }

    #[test]
    fn a_status_committed_before_the_handoff_but_recorded_after_it_holds_stale_holder_effect() {
        let mut history = History::new();
        let lease = lease_of("res-1");
        history.at(10, CTRL_A, acquired(lease, 5));
        history.at(20, CTRL_B, acquired(lease, 8));
        // Committed at revision 7, before token 8 existed; its reply was slow.
        history.at(30, CTRL_A, status_written_at("res-1", 1, 1, 5, 7));
        assert_eq!(history.violations(STALE_HOLDER_EFFECT), 0);
    }

    #[test]
    fn a_stale_status_write_only_the_store_recorded_violates_stale_holder_effect() {
        // The writer's reply was lost: only the store's record exists.
        let mut history = History::new();
        let lease = lease_of("res-1");
        history.at(1, CTRL_A, acquired(lease, 5));
        history.at(
            20,
            STORE,
            Event::LeaseStored {
                lease,
                holder: Some(CTRL_B),
                revision: 9,
            },
        );
        let status = plane::protocol::Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        history.at(
            30,
            STORE,
            status_stored_by("res-1", Some(status), 12, CTRL_A, Some(5)),
        );
        let verdict = history.verdict(STALE_HOLDER_EFFECT);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![STORE, CTRL_B]);
        // Committed under the current holder's token: fine.
        let mut fine = History::new();
        fine.at(
            20,
            STORE,
            Event::LeaseStored {
                lease,
                holder: Some(CTRL_B),
                revision: 9,
            },
        );
        fine.at(
            30,
            STORE,
            status_stored_by("res-1", Some(status), 12, CTRL_B, Some(9)),
        );
        assert_eq!(fine.violations(STALE_HOLDER_EFFECT), 0);
    }

    #[test]
    fn an_unfenced_status_write_by_a_non_holder_violates_stale_holder_effect() {
        let mut history = History::new();
        let lease = lease_of("res-1");
        let status = plane::protocol::Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        history.at(
            20,
            STORE,
            Event::LeaseStored {
                lease,
                holder: Some(CTRL_B),
                revision: 9,
            },
        );
        history.at(
            30,
            STORE,
            status_stored_by("res-1", Some(status), 12, CTRL_B, None),
        );
        assert_eq!(
            history.violations(STALE_HOLDER_EFFECT),
            0,
            "the holder itself"
        );
        history.at(
            40,
            STORE,
            status_stored_by("res-1", Some(status), 13, CTRL_A, None),
        );
        let verdict = history.verdict(STALE_HOLDER_EFFECT);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("no fencing token"));
    }

    #[test]
    fn believing_a_token_the_store_wrote_for_another_violates_one_holder_per_token() {
        let mut history = History::new();
        let lease = shard_lease(1);
        history.at(
            10,
            STORE,
            Event::LeaseStored {
                lease,
                holder: Some(CTRL_B),
                revision: 7,
            },
        );
        history.at(20, CTRL_B, belief(lease, 7));
        assert_eq!(history.violations(ONE_HOLDER_PER_TOKEN), 0);
        history.at(30, CTRL_A, belief(lease, 7));
        let verdict = history.verdict(ONE_HOLDER_PER_TOKEN);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![CTRL_A, CTRL_B]);
    }
}
