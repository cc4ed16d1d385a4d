//! Reconciliation: the passes the work queue hands out. One pass of a
//! resource reads its desired state and stored status, observes every
//! worker, diffs per ordinal, sends the actions (resending the outstanding
//! ones) and waits for every acknowledgement; a pass that finds nothing to
//! do writes the status ([`super::status`]).

use std::collections::{BTreeMap, BTreeSet};

use node::{Digested, MILLISECOND_NS, MeasureKind, NodeId};

use super::decode::{self, Desired};
use super::workqueue::Readiness;
use super::{ControllerNode, Ctx, Purpose};
use crate::protocol::{
    Action, ActionId, ActionKind, ActionOutcome, BeliefEnd, Event, Instance, Msg, RequestId,
    Settled, Status, Timer, Value, keys,
};
use crate::shard::{ShardId, shard_of};
use crate::store::{Op, StoreRequest, StoreResponse, Txn};

/// Actions one pass sends; the rest wait for the verifying pass.
const MAX_ACTIONS_PER_PASS: usize = 64;

/// A believed shard's working state; dropped when the belief ends.
#[derive(Debug)]
pub(super) struct ShardWork {
    pub(super) token: u64,
    /// Workers whose fence reply is awaited; no pass runs until empty.
    pub(super) fence_waiting: BTreeSet<NodeId>,
    /// Sent, unacknowledged actions by (resource, ordinal).
    pub(super) outstanding: BTreeMap<(String, u32), Outstanding>,
}

/// An action, the ordinal it is for and the worker it goes to.
#[derive(Clone, Debug)]
pub(super) struct Outstanding {
    pub(super) ordinal: u32,
    pub(super) target: NodeId,
    pub(super) action: Action,
}

/// One reconcile pass of one key.
#[derive(Debug)]
pub(super) struct Pass {
    pub(super) shard: ShardId,
    pub(super) token: u64,
    pub(super) step: Step,
    /// When it started, on this boot's monotonic clock (for operators).
    pub(super) started_ns: u64,
}

#[derive(Debug)]
pub(super) enum Step {
    ReadingDesired,
    Observing {
        desired: Option<Desired>,
        stored: Option<Status>,
        waiting: BTreeSet<NodeId>,
        instances: Vec<Digested<Instance>>,
    },
    Acting {
        waiting: BTreeSet<ActionId>,
    },
    WritingStatus,
}

/// How a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Observed equals desired (status written if needed).
    Converged,
    /// Acted, or saw a change: look again soon.
    Progressed,
    /// Timed out or got an error: back off.
    Failed,
}

impl ControllerNode {
    /// Queues a resource if its shard is believed.
    pub(super) fn enqueue(&mut self, resource: String) {
        let shard = shard_of(&resource, self.settings.shard_count);
        if self.shards.contains_key(&shard) {
            self.queue.add(resource, shard);
        }
    }

    /// Starts passes for ready keys while slots are free.
    pub(super) fn dispatch(&mut self, ctx: &mut Ctx<'_>) {
        if !self.valid(ctx) {
            return;
        }
        let limit = self.settings.max_concurrent_reconciles.max(1) as usize;
        // Bounded: every round moves one key from the queue into a pass.
        while self.passes.len() < limit {
            let shards = &self.shards;
            let next = self.queue.pop_ready(|_, shard| match shards.get(&shard) {
                None => Readiness::Drop,
                Some(work) if !work.fence_waiting.is_empty() => Readiness::Wait,
                Some(_) => Readiness::Ready,
            });
            let Some(resource) = next else {
                break;
            };
            self.start_pass(ctx, resource);
        }
        let depth = self.queue.queued.len() as u64;
        ctx.measure("controller_workqueue_depth", MeasureKind::Gauge, depth);
    }

    pub(super) fn pass_mut(&mut self, attempt: u64) -> Option<&mut Pass> {
        self.passes.get_mut(&attempt)
    }

    pub(super) fn start_pass(&mut self, ctx: &mut Ctx<'_>, resource: String) {
        let shard = shard_of(&resource, self.settings.shard_count);
        let token = self.shards[&shard].token;
        self.attempt_counter += 1;
        let attempt = self.attempt_counter;
        let pass = Pass {
            shard,
            token,
            step: Step::ReadingDesired,
            started_ns: ctx.mono_ns(),
        };
        let fresh = self.passes.insert(attempt, pass);
        assert!(fresh.is_none(), "attempts are unique");
        // One linearizable read of both, so the status compared belongs to
        // the desired state read.
        let ops = vec![
            Op::Get {
                key: keys::resource(&resource),
            },
            Op::Get {
                key: keys::status(&resource),
            },
        ];
        let request = StoreRequest::Txn(Txn::unconditional(ops));
        self.send_store(ctx, request, Purpose::ReadDesired { resource, attempt });
    }

    pub(super) fn handle_desired(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        response: StoreResponse<Value>,
    ) {
        let Some(pass) = self.pass_mut(attempt) else {
            return;
        };
        let (shard, token) = (pass.shard, pass.token);
        let (desired, stored) = match decode::desired(response) {
            Ok(read) => read,
            Err(error) => {
                error.log("desired state read");
                return self.fail_pass(ctx, &resource, attempt);
            }
        };
        if !self.may_act(ctx, shard, token) {
            return self.abandon_pass(&resource, attempt);
        }
        let workers = self.topology.workers.clone();
        let pass = self.pass_mut(attempt).expect("the pass is live");
        pass.step = Step::Observing {
            desired,
            stored,
            waiting: workers.iter().copied().collect(),
            instances: Vec::new(),
        };
        let all_settled = self.settled_with(ctx, &workers);
        for (&worker, settled) in workers.iter().zip(all_settled) {
            let purpose = Purpose::PassObserve {
                resource: resource.clone(),
                attempt,
                worker,
            };
            let observed = Some(resource.clone());
            self.send_request(ctx, worker, purpose, |request_id| Msg::Observe {
                request_id,
                shard,
                token,
                resource: observed,
                settled,
            });
        }
        if workers.is_empty() {
            self.plan_pass(ctx, resource, attempt);
        }
    }

    pub(super) fn handle_pass_observed(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        worker: NodeId,
        instances: Result<Vec<Digested<Instance>>, u64>,
    ) {
        let Some(pass) = self.pass_mut(attempt) else {
            return;
        };
        let (shard, token) = (pass.shard, pass.token);
        let found = match instances {
            Ok(found) => found,
            Err(_) => return self.end_shard_belief(ctx, shard, token, BeliefEnd::Fenced),
        };
        let Step::Observing {
            waiting, instances, ..
        } = &mut pass.step
        else {
            return;
        };
        if !waiting.remove(&worker) {
            return;
        }
        instances.extend(found.into_iter().filter(|i| i.resource == resource));
        if waiting.is_empty() {
            self.plan_pass(ctx, resource, attempt);
        }
    }

    /// All workers answered: resend what is outstanding, diff the rest.
    pub(super) fn plan_pass(&mut self, ctx: &mut Ctx<'_>, resource: String, attempt: u64) {
        let pass = self.pass_mut(attempt).expect("planning a live pass");
        let (shard, token) = (pass.shard, pass.token);
        let step = std::mem::replace(&mut pass.step, Step::WritingStatus);
        let Step::Observing {
            desired,
            stored,
            instances,
            ..
        } = step
        else {
            unreachable!("planned only after observing");
        };
        let range = (resource.clone(), 0)..=(resource.clone(), u32::MAX);
        let resend: Vec<Outstanding> = self.shards[&shard]
            .outstanding
            .range(range)
            .map(|(_, outstanding)| outstanding.clone())
            .collect();
        let busy: BTreeSet<u32> = resend.iter().map(|o| o.ordinal).collect();
        let wanted = desired.map(|d| (d.replicas, d.generation));
        let room = MAX_ACTIONS_PER_PASS.saturating_sub(resend.len());
        let plan = diff(&resource, wanted, &instances, &busy, room);
        if resend.is_empty() && plan.is_empty() {
            return self.converge(ctx, resource, attempt, desired, stored);
        }
        if !self.may_act(ctx, shard, token) {
            return self.abandon_pass(&resource, attempt);
        }
        let mut waiting = BTreeSet::new();
        for outstanding in resend {
            waiting.insert(outstanding.action.id);
            self.send_act(ctx, &resource, attempt, &outstanding);
        }
        for (ordinal, kind) in plan {
            let outstanding = self.new_action(ctx, shard, token, &resource, ordinal, kind);
            waiting.insert(outstanding.action.id);
            let work = self.shards.get_mut(&shard).expect("may_act held");
            let key = (resource.clone(), ordinal);
            if let Some(replaced) = work.outstanding.insert(key, outstanding.clone()) {
                index_outstanding(&mut self.unsettled, &replaced, false);
            }
            index_outstanding(&mut self.unsettled, &outstanding, true);
            self.send_act(ctx, &resource, attempt, &outstanding);
        }
        let pass = self.pass_mut(attempt).expect("the pass is live");
        pass.step = Step::Acting { waiting };
    }

    pub(super) fn handle_acted(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        id: RequestId,
        action_id: ActionId,
        outcome: ActionOutcome,
    ) {
        let Some(pending) = self.requests.answered(ctx, from, id) else {
            return;
        };
        let Purpose::PassAct {
            resource,
            attempt,
            shard,
            token,
            ordinal,
            action,
        } = pending.purpose
        else {
            return;
        };
        if action != action_id {
            return;
        }
        // The worker's ledger is full: back off and resend this very action
        // later (senders' settled statements make room meanwhile). It stays
        // outstanding, so a copy still in flight can never run beside a new
        // action for the ordinal.
        if outcome == ActionOutcome::Busy {
            return self.fail_pass(ctx, &resource, attempt);
        }
        // Acknowledged: whatever the worker did shows in the next observe,
        // so the ordinal may be diffed again. Only if the pass that sent it
        // still waits for it, though: once that pass has failed, the next
        // one may have observed already, before this action ran, and would
        // diff the ordinal from that stale view. So the action stays
        // outstanding; the next pass resends it and learns the outcome in
        // its own acting step.
        let acting = self
            .pass_mut(attempt)
            .is_some_and(|pass| matches!(pass.step, Step::Acting { .. }));
        if let Some(work) = self
            .shards
            .get_mut(&shard)
            .filter(|w| acting && w.token == token)
        {
            let key = (resource.clone(), ordinal);
            if work
                .outstanding
                .get(&key)
                .is_some_and(|o| o.action.id == action)
            {
                let settled = work.outstanding.remove(&key).expect("just found");
                index_outstanding(&mut self.unsettled, &settled, false);
            }
        }
        if let ActionOutcome::Rejected { .. } = outcome {
            return self.end_shard_belief(ctx, shard, token, BeliefEnd::Fenced);
        }
        let Some(pass) = self.pass_mut(attempt) else {
            return;
        };
        let Step::Acting { waiting } = &mut pass.step else {
            return;
        };
        waiting.remove(&action);
        if waiting.is_empty() {
            self.finish_pass(ctx, resource, attempt, Outcome::Progressed);
        }
    }

    pub(super) fn finish_pass(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        outcome: Outcome,
    ) {
        let pass = self.passes.remove(&attempt).expect("finishing a live pass");
        let took_ns = ctx.mono_ns().saturating_sub(pass.started_ns);
        ctx.measure("controller_reconcile_pass", MeasureKind::Sample, took_ns);
        let dirty = self.queue.done(&resource);
        match outcome {
            Outcome::Converged => self.queue.forget(&resource),
            Outcome::Progressed => {
                self.queue.forget(&resource);
                let delay_ms = self.settings.backoff_base_ms;
                self.schedule_requeue(ctx, resource.clone(), delay_ms);
            }
            Outcome::Failed if self.bugs.edge_triggered => {
                // Planted bug: a failed pass waits for the next notification.
                self.queue.forget(&resource);
            }
            Outcome::Failed => {
                let (base_ms, cap_ms) =
                    (self.settings.backoff_base_ms, self.settings.backoff_cap_ms);
                let delay_ms = self.queue.backoff_ms(&resource, base_ms, cap_ms);
                let engaged = Event::BackoffEngaged {
                    resource: resource.clone(),
                    delay_ms,
                };
                ctx.record(engaged);
                self.schedule_requeue(ctx, resource.clone(), delay_ms);
            }
        }
        if dirty {
            let shard = shard_of(&resource, self.settings.shard_count);
            self.queue.add(resource, shard);
        }
    }

    pub(super) fn fail_pass(&mut self, ctx: &mut Ctx<'_>, resource: &str, attempt: u64) {
        if self.pass_mut(attempt).is_some() {
            self.finish_pass(ctx, resource.to_string(), attempt, Outcome::Failed);
        }
    }

    /// The belief went away mid-pass: drop the pass, requeue nothing.
    pub(super) fn abandon_pass(&mut self, resource: &str, attempt: u64) {
        self.passes.remove(&attempt);
        self.queue.done(resource);
    }

    pub(super) fn schedule_requeue(&mut self, ctx: &mut Ctx<'_>, resource: String, delay_ms: u64) {
        if let Some(timer) = self.requeues.remove(&resource) {
            ctx.cancel_timer(timer);
        }
        let delay_ns = delay_ms.saturating_mul(MILLISECOND_NS);
        let timer = ctx.set_timer(delay_ns, Timer::Requeue(resource.clone()));
        self.requeues.insert(resource, timer);
    }

    pub(super) fn list_resources(&mut self, ctx: &mut Ctx<'_>) {
        if self.shards.is_empty() || self.awaiting(|p| matches!(p, Purpose::ListResources)) {
            return;
        }
        let ops = vec![Op::GetPrefix {
            prefix: keys::RESOURCES.to_string(),
        }];
        let request = StoreRequest::Txn(Txn::unconditional(ops));
        self.send_store(ctx, request, Purpose::ListResources);
    }

    pub(super) fn handle_listed(&mut self, response: StoreResponse<Value>) {
        let found = match decode::listing(response) {
            Ok(found) => found,
            // The next resync lists again.
            Err(error) => return error.log("resource listing"),
        };
        for kv in found {
            if let Some(id) = kv.key.strip_prefix(keys::RESOURCES) {
                self.enqueue(id.to_string());
            }
        }
    }

    pub(super) fn handle_changed(&mut self, key: &str) {
        if let Some(id) = key.strip_prefix(keys::RESOURCES) {
            self.enqueue(id.to_string());
        }
    }

    /// A new action with a fresh id, addressed to the instance's worker.
    pub(super) fn new_action(
        &mut self,
        ctx: &mut Ctx<'_>,
        shard: ShardId,
        token: u64,
        resource: &str,
        ordinal: u32,
        kind: ActionKind,
    ) -> Outstanding {
        self.action_counter += 1;
        let id = ActionId {
            controller: ctx.id(),
            boot: ctx.boot(),
            sequence: self.action_counter,
        };
        // A stop goes where the instance runs: normally `worker_for`, and
        // the only worker that could stop it otherwise.
        let target = match &kind {
            ActionKind::Stop { instance } => instance.worker,
            ActionKind::Start { .. } => self.topology.worker_for(resource, ordinal),
        };
        let action = Action {
            id,
            shard,
            token,
            kind,
        };
        Outstanding {
            ordinal,
            target,
            action,
        }
    }

    /// What this boot has settled with `worker`: see [`Settled`].
    pub(super) fn settled(&self, ctx: &Ctx<'_>, worker: NodeId) -> Settled {
        let [settled] = self
            .settled_with(ctx, &[worker])
            .try_into()
            .expect("one worker");
        settled
    }

    /// What this boot has settled with each of `workers`, in their order.
    pub(super) fn settled_with(&self, ctx: &Ctx<'_>, workers: &[NodeId]) -> Vec<Settled> {
        debug_assert_eq!(
            self.unsettled,
            self.unsettled_by_walk(),
            "the index mirrors"
        );
        workers
            .iter()
            .map(|worker| Settled {
                boot: ctx.boot(),
                below: self.action_counter + 1,
                outstanding: self
                    .unsettled
                    .get(worker)
                    .map(|sequences| sequences.iter().copied().collect())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// [`ControllerNode::unsettled`] worked out from the shards: what the
    /// index must always equal.
    pub(super) fn unsettled_by_walk(&self) -> BTreeMap<NodeId, BTreeSet<u64>> {
        let mut unsettled: BTreeMap<NodeId, BTreeSet<u64>> = BTreeMap::new();
        let all = self.shards.values().flat_map(|w| w.outstanding.values());
        for action in all {
            let sequences = unsettled.entry(action.target).or_default();
            sequences.insert(action.action.id.sequence);
        }
        unsettled
    }

    pub(super) fn send_act(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: &str,
        attempt: u64,
        outstanding: &Outstanding,
    ) {
        let action = outstanding.action.clone();
        let purpose = Purpose::PassAct {
            resource: resource.to_string(),
            attempt,
            shard: action.shard,
            token: action.token,
            ordinal: outstanding.ordinal,
            action: action.id,
        };
        let settled = self.settled(ctx, outstanding.target);
        self.send_request(ctx, outstanding.target, purpose, |request_id| Msg::Act {
            request_id,
            action: Box::new(action),
            settled,
        });
    }
}

/// Adds `outstanding` to the controller's index of unsettled actions
/// (`added`), or takes it out: every change to a shard's `outstanding`
/// goes through here.
pub(super) fn index_outstanding(
    unsettled: &mut BTreeMap<NodeId, BTreeSet<u64>>,
    outstanding: &Outstanding,
    added: bool,
) {
    let sequence = outstanding.action.id.sequence;
    if added {
        let fresh = unsettled
            .entry(outstanding.target)
            .or_default()
            .insert(sequence);
        assert!(fresh, "an action is outstanding once");
        return;
    }
    let sequences = unsettled
        .get_mut(&outstanding.target)
        .expect("an outstanding action is indexed");
    assert!(
        sequences.remove(&sequence),
        "an outstanding action is indexed"
    );
    if sequences.is_empty() {
        unsettled.remove(&outstanding.target);
    }
}

/// The actions that move `resource` toward `desired` (replicas and
/// generation; `None` when deleted), at most one per ordinal and at most
/// `limit` in all, skipping the `busy` ordinals (those with an outstanding
/// action). Empty means converged.
fn diff(
    resource: &str,
    desired: Option<(u32, u64)>,
    instances: &[Digested<Instance>],
    busy: &BTreeSet<u32>,
    limit: usize,
) -> Vec<(u32, ActionKind)> {
    let mut by_ordinal: BTreeMap<u32, Vec<&Instance>> = BTreeMap::new();
    for instance in instances.iter().filter(|i| i.resource == resource) {
        by_ordinal
            .entry(instance.ordinal)
            .or_default()
            .push(instance);
    }
    let (replicas, generation) = desired.unwrap_or((0, 0));
    let mut actions = Vec::new();
    // Bounded by the replica count and the instances reported.
    for ordinal in 0..replicas {
        if actions.len() >= limit {
            return actions;
        }
        if busy.contains(&ordinal) {
            continue;
        }
        let running = by_ordinal.get(&ordinal).map_or(&[][..], Vec::as_slice);
        let kind = match running {
            [] => Some(ActionKind::Start {
                resource: resource.to_string(),
                ordinal,
                generation,
            }),
            // Stop first; its replacement starts in a later pass, once the
            // stop is acknowledged, so two never run at once.
            [only] if only.generation != generation => Some(stop(only)),
            [_] => None,
            several => {
                let keep = several
                    .iter()
                    .position(|i| i.generation == generation)
                    .unwrap_or(0);
                let extra = if keep == 0 { 1 } else { 0 };
                Some(stop(several[extra]))
            }
        };
        actions.extend(kind.map(|kind| (ordinal, kind)));
    }
    for (&ordinal, running) in by_ordinal.range(replicas..) {
        if actions.len() >= limit {
            break;
        }
        if !busy.contains(&ordinal) {
            actions.push((ordinal, stop(running[0])));
        }
    }
    actions
}

fn stop(instance: &Instance) -> ActionKind {
    ActionKind::Stop {
        instance: instance.id,
    }
}

#[cfg(test)]
mod tests {
    use node::NodeId;

    use super::*;
    use crate::protocol::InstanceId;

    const WORKERS: [NodeId; 2] = [NodeId(4), NodeId(5)];

    fn instance(sequence: u64, ordinal: u32, generation: u64) -> Digested<Instance> {
        Digested::new(Instance {
            id: InstanceId {
                worker: WORKERS[0],
                sequence,
            },
            resource: "r".to_string(),
            ordinal,
            generation,
            shard: ShardId(0),
        })
    }

    fn stopped(sequence: u64) -> ActionKind {
        ActionKind::Stop {
            instance: InstanceId {
                worker: WORKERS[0],
                sequence,
            },
        }
    }

    #[test]
    fn diff_stops_one_extra_per_ordinal_keeping_the_current_generation() {
        let running = [instance(1, 0, 1), instance(2, 0, 2), instance(3, 0, 2)];
        let none = BTreeSet::new();
        let plan = diff("r", Some((1, 2)), &running, &none, 10);
        assert_eq!(plan, vec![(0, stopped(1))]);
        let plan = diff("r", Some((1, 2)), &running[1..], &none, 10);
        assert_eq!(plan, vec![(0, stopped(3))]);
    }

    #[test]
    fn diff_stops_instances_beyond_the_replicas_and_of_a_deleted_resource() {
        let running = [instance(1, 0, 1), instance(2, 1, 1), instance(3, 2, 1)];
        let none = BTreeSet::new();
        let plan = diff("r", Some((1, 1)), &running, &none, 10);
        assert_eq!(plan, vec![(1, stopped(2)), (2, stopped(3))]);
        let plan = diff("r", None, &running, &none, 10);
        assert_eq!(plan.len(), 3);
        assert_eq!(diff("r", Some((3, 1)), &running, &none, 10), vec![]);
    }

    #[test]
    fn diff_skips_busy_ordinals_and_respects_the_limit() {
        let busy = BTreeSet::from([0]);
        let plan = diff("r", Some((3, 1)), &[], &busy, 10);
        assert_eq!(plan.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(diff("r", Some((3, 1)), &[], &busy, 1).len(), 1);
    }
}
