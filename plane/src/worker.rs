//! The worker: the data plane node that runs instances, fenced per shard
//! and deduplicated per action.
//!
//! # Fencing and deduplication
//!
//! Every action carries its shard and the shard lease's token. The worker
//! keeps, durably, the highest token it has seen per shard, and refuses any
//! action (or observe) with a lower one: once a new lease holder has talked
//! to this worker, an old holder, however delayed its messages, can no
//! longer change what runs here. An `Observe` raises the fence too, so the
//! new holder's view of the shard already includes every action of an older
//! holder that this worker accepted, and none can slip in after it.
//!
//! A fencing token only protects what is checked in one place. The
//! controllers send every action for one (resource, ordinal) to the single
//! worker `Topology::worker_for` names, so this fence is that one place.
//!
//! Every action id that ran is stored with its outcome, so a resent action
//! (a controller retry, a network duplicate) runs at most once and gets the
//! same answer again. A rejected action is not stored: it never ran, and a
//! retry with the same id is still judged by the fence.
//!
//! # Pruning, and the bound
//!
//! An action that ran is remembered only while a duplicate of it could pass
//! the fence. When a shard's fence rises to `T`, every executed action of
//! that shard with a token below `T` is forgotten: a duplicate of it finds
//! no entry, reaches the fence check, and is rejected (its token is below
//! `T`), so it still never runs twice; its sender, whose lease `T`
//! superseded, learns just that. Exactly those entries may go: one at the
//! fence would pass it and run again. So every remembered action runs under
//! its shard's current fence, and the ledger holds only what current lease
//! holders sent.
//!
//! A holder keeps its token for as long as it lives, so pruning at fence
//! rises alone would let one steady holder fill the ledger. Every `Observe`
//! and `Act` therefore carries what its controller boot has *settled* at
//! this worker ([`Settled`]): its next sequence, and the sequences below it
//! still outstanding here. The others it will never resend, so the worker
//! forgets those actions, and drops unrun a late copy of one that still
//! passes the fence (one that does not is rejected, as any stale action
//! is). One answered action is forgotten even while an older one waits for
//! its resend. The statements are durable, one per controller boot ever
//! seen, each as long as that boot's outstanding actions here: they grow
//! with restarts, not with the workload.
//!
//! The ledger is still bounded ([`MAX_EXECUTED_ACTIONS`], or a scenario's
//! `worker.max_executed_actions`) for what marks and fences have not freed
//! yet (a paused holder's actions, say). A worker at the bound that gets a
//! new action which passes the fence does not run it and answers `Busy`; the
//! holder backs off and resends the same action (it stays outstanding, so
//! no copy of it can run beside a replacement) once statements and fences
//! have made room. Refusing is safe (nothing runs); forgetting
//! instead would let a duplicate run twice, and a panic would be a crash any
//! long enough workload could reach.
//!
//! All of this state is durable: a crash must not forget an instance, an
//! executed action or a fence, or a stale holder could act after a restart.

use std::collections::BTreeMap;

use node::{Context, Digested, Node, NodeId, TimerId};
use serde::{Deserialize, Serialize};

use crate::config::{Bug, WorkerSettings};
use crate::protocol::{
    Action, ActionId, ActionKind, ActionOutcome, ControlPlane, Event, Instance, InstanceId, Msg,
    RequestId, Settled, Timer,
};
use crate::shard::ShardId;

/// Most executed actions a worker remembers at once, after pruning. At the
/// bound new actions are refused, not run (see the module doc), because
/// forgetting one that a duplicate could still pass the fence with would
/// let it run twice.
pub const MAX_EXECUTED_ACTIONS: usize = 1_000_000;

/// One action that ran: its outcome, replayed to duplicates, and the shard
/// and token it ran under, which decide when it may be forgotten.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutedAction {
    /// The shard whose fence it passed.
    pub shard: ShardId,
    /// The token it carried.
    pub token: u64,
    /// What came of it.
    pub outcome: ActionOutcome,
}

/// A worker's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerState {
    /// Running instances, by id.
    pub instances: BTreeMap<InstanceId, Digested<Instance>>,
    /// Every action that ran and a duplicate of which could still pass the
    /// fence, with its outcome (replayed to duplicates).
    pub executed: BTreeMap<ActionId, ExecutedAction>,
    /// The highest fencing token seen per shard.
    pub highest_tokens: BTreeMap<ShardId, u64>,
    /// Per controller boot, the latest statement of what it has settled
    /// here (see [`Settled`]).
    pub settled: BTreeMap<(NodeId, u32), Settled>,
    /// The sequence of the next instance started here.
    pub next_instance_sequence: u64,
}

/// One worker of the data plane.
#[derive(Debug)]
pub struct WorkerNode {
    /// Planted bug `no-fencing`: run every action and answer every observe
    /// whatever its token, and never raise a fence.
    ignore_fencing: bool,
    /// Executed actions remembered at most: [`MAX_EXECUTED_ACTIONS`], lower
    /// in tests that reach it.
    max_executed_actions: usize,
}

impl WorkerNode {
    /// A worker; everything it knows lives in its durable [`WorkerState`].
    /// `settings` carries the planted bugs, resolved here once.
    ///
    /// # Panics
    /// If `settings.max_executed_actions` is outside
    /// `1..=MAX_EXECUTED_ACTIONS` (the scenario validator refuses it first).
    pub fn new(settings: WorkerSettings) -> Self {
        assert!((1..=MAX_EXECUTED_ACTIONS).contains(&settings.max_executed_actions));
        Self {
            ignore_fencing: settings.bugs.contains(&Bug::NoFencing),
            max_executed_actions: settings.max_executed_actions,
        }
    }

    /// The same worker with a lower bound on executed actions, so a test
    /// can reach it.
    #[cfg(test)]
    fn with_max_executed_actions(self, max_executed_actions: usize) -> Self {
        Self::new(WorkerSettings {
            max_executed_actions,
            bugs: if self.ignore_fencing {
                [Bug::NoFencing].into()
            } else {
                Default::default()
            },
        })
    }

    // Inputs.

    fn handle_observe(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        from: NodeId,
        request_id: RequestId,
        shard: ShardId,
        token: u64,
        resource: Option<String>,
    ) {
        // A new holder's Observe, before the fence rises: a late reply
        // keeps the new holder from acting while the old one may still.
        ctx.buggify("worker.before_fence");
        let instances = match self.check_fence(ctx, shard, token) {
            Err(highest_token) => Err(highest_token),
            Ok(()) => Ok(ctx
                .durable_mut()
                .worker_mut()
                .instances
                .values()
                .filter(|instance| instance.shard == shard)
                .filter(|instance| resource.as_ref().is_none_or(|id| *id == instance.resource))
                .cloned()
                .collect()),
        };
        ctx.send(
            from,
            Msg::Observed {
                request_id,
                instances,
            },
        );
    }

    fn handle_act(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        from: NodeId,
        request_id: RequestId,
        action: Action,
    ) {
        let action_id = action.id;
        let known = ctx
            .durable_mut()
            .worker_mut()
            .executed
            .get(&action_id)
            .map(|done| done.outcome.clone());
        let outcome = if let Some(outcome) = known {
            ctx.record(Event::ActionDeduplicated { action: action_id });
            outcome
        } else {
            match self.check_fence(ctx, action.shard, action.token) {
                Err(highest_token) => {
                    ctx.record(Event::ActionRejected {
                        action: action_id,
                        shard: action.shard,
                        token: action.token,
                        highest_token,
                    });
                    ActionOutcome::Rejected { highest_token }
                }
                Ok(()) if is_settled(ctx.durable_mut().worker_mut(), action_id) => {
                    // Its sender has the answer or gave the action up: a
                    // late copy, maybe forgotten, which must not run again.
                    ctx.record(Event::ActionSettledDropped { action: action_id });
                    return;
                }
                Ok(()) if self.is_full(ctx) => {
                    // Not stored: judged afresh when the sender resends it
                    // (see the module doc).
                    ctx.record(Event::ActionRefusedBusy { action: action_id });
                    ActionOutcome::Busy
                }
                Ok(()) => execute(ctx, &action, self.max_executed_actions),
            }
        };
        ctx.send(
            from,
            Msg::Acted {
                request_id,
                action_id,
                outcome,
            },
        );
    }
}

impl WorkerNode {
    /// The fence, unless the planted bug `no-fencing` is on: then, as a
    /// worker that trusts its callers would, it lets everything through
    /// (the token is carried, never compared).
    fn check_fence(
        &self,
        ctx: &mut Context<'_, ControlPlane>,
        shard: ShardId,
        token: u64,
    ) -> Result<(), u64> {
        if self.ignore_fencing {
            return Ok(());
        }
        raise_fence(ctx, shard, token)
    }

    /// Whether the executed-action ledger is at its bound, even after the
    /// pruning every fence rise does.
    fn is_full(&self, ctx: &mut Context<'_, ControlPlane>) -> bool {
        let remembered = ctx.durable_mut().worker_mut().executed.len();
        assert!(remembered <= self.max_executed_actions);
        remembered == self.max_executed_actions
    }
}

impl Node<ControlPlane> for WorkerNode {
    fn on_start(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        // Creates the durable state on first start; nothing else to resume.
        let state = ctx.durable_mut().worker_mut();
        assert!(state.executed.len() <= self.max_executed_actions);
        // Just restarted: fences and the executed ledger come back from
        // disk, and the first actions to arrive may be stale ones.
        ctx.buggify("worker.after_start");
    }

    fn on_message(&mut self, ctx: &mut Context<'_, ControlPlane>, from: NodeId, message: Msg) {
        match message {
            Msg::Observe {
                request_id,
                shard,
                token,
                resource,
                settled,
            } => {
                settle(ctx.durable_mut().worker_mut(), from, settled);
                self.handle_observe(ctx, from, request_id, shard, token, resource);
            }
            Msg::Act {
                request_id,
                action,
                settled,
            } => {
                settle(ctx.durable_mut().worker_mut(), from, settled);
                self.handle_act(ctx, from, request_id, *action);
            }
            other => tracing::debug!(%from, "worker ignores {other:?}"),
        }
    }

    fn on_timer(&mut self, _ctx: &mut Context<'_, ControlPlane>, _timer: TimerId, tag: Timer) {
        tracing::debug!("worker ignores timer {tag:?}");
    }
}

// Helpers.

/// Records what `from`'s boot has settled with this worker and forgets
/// the actions it settled: it will never resend them, and a late copy is
/// dropped by [`is_settled`].
///
/// When the mark does not change there is nothing to forget: the last
/// change forgot every action it covers, and an action is executed only
/// when its mark does not cover it (see `handle_act`).
fn settle(state: &mut WorkerState, from: NodeId, settled: Settled) {
    let boot = settled.boot;
    let mark = match state.settled.entry((from, boot)) {
        std::collections::btree_map::Entry::Vacant(vacant) => vacant.insert(settled),
        std::collections::btree_map::Entry::Occupied(occupied) => {
            let mark = occupied.into_mut();
            if !mark.merge(&settled) {
                debug_assert!(
                    state
                        .executed
                        .keys()
                        .filter(|id| (id.controller, id.boot) == (from, boot))
                        .all(|id| !mark.covers(id.sequence)),
                    "an executed action was left covered by its mark"
                );
                return;
            }
            mark
        }
    };
    let id = |sequence| ActionId {
        controller: from,
        boot,
        sequence,
    };
    let forgotten: Vec<ActionId> = state
        .executed
        .range(id(0)..id(mark.below))
        .map(|(id, _)| *id)
        .filter(|id| mark.covers(id.sequence))
        .collect();
    for id in forgotten {
        state.executed.remove(&id);
    }
}

/// Whether the action's sender has settled it: answered or abandoned, so
/// this is a late copy, which must not run.
fn is_settled(state: &WorkerState, id: ActionId) -> bool {
    state
        .settled
        .get(&(id.controller, id.boot))
        .is_some_and(|mark| mark.covers(id.sequence))
}

/// Checks `token` against the shard's fence and raises the fence to it,
/// pruning what the raise makes unneeded: `Err(highest)` when the token is
/// stale.
fn raise_fence(ctx: &mut Context<'_, ControlPlane>, shard: ShardId, token: u64) -> Result<(), u64> {
    let state = ctx.durable_mut().worker_mut();
    let highest = state.highest_tokens.entry(shard).or_insert(0);
    if token < *highest {
        return Err(*highest);
    }
    if token > *highest {
        *highest = token;
        prune_executed(state, shard, token);
        ctx.record(Event::FenceRaised { shard, token });
    }
    Ok(())
}

/// Forgets the executed actions of `shard` whose token is below its new
/// `fence`, and only those: a duplicate of one is now rejected by the fence,
/// while one at the fence would pass it (see the module doc).
fn prune_executed(state: &mut WorkerState, shard: ShardId, fence: u64) {
    state
        .executed
        .retain(|_, done| done.shard != shard || done.token >= fence);
    debug_assert!(
        state
            .executed
            .values()
            .all(|done| done.shard != shard || done.token == fence),
        "an action ran under a token above its shard's fence"
    );
}

/// Runs an action that passed the fence, stores and returns its outcome.
/// The caller checked there is room below `max_executed_actions`.
fn execute(
    ctx: &mut Context<'_, ControlPlane>,
    action: &Action,
    max_executed_actions: usize,
) -> ActionOutcome {
    let me = ctx.id();
    let state = ctx.durable_mut().worker_mut();
    assert!(
        state.executed.len() < max_executed_actions,
        "busy is checked first"
    );
    assert!(!state.executed.contains_key(&action.id), "dedup runs first");
    let (outcome, event) = match &action.kind {
        ActionKind::Start {
            resource,
            ordinal,
            generation,
        } => {
            let id = InstanceId {
                worker: me,
                sequence: state.next_instance_sequence,
            };
            state.next_instance_sequence += 1;
            let instance = Instance {
                id,
                resource: resource.clone(),
                ordinal: *ordinal,
                generation: *generation,
                shard: action.shard,
            };
            state.instances.insert(id, Digested::new(instance.clone()));
            let event = Event::InstanceStarted {
                action: action.id,
                token: action.token,
                instance,
            };
            (ActionOutcome::Started { instance: id }, Some(event))
        }
        ActionKind::Stop { instance } => match take_instance(state, *instance, action.shard) {
            Some(instance) => {
                let event = Event::InstanceStopped {
                    action: action.id,
                    token: action.token,
                    instance,
                };
                (ActionOutcome::Stopped, Some(event))
            }
            None => (ActionOutcome::NotFound, None),
        },
    };
    let done = ExecutedAction {
        shard: action.shard,
        token: action.token,
        outcome: outcome.clone(),
    };
    state.executed.insert(action.id, done);
    if let Some(event) = event {
        ctx.record(event);
    }
    outcome
}

/// Removes `id` if it runs here in `shard`. An instance of another shard is
/// treated as absent: the action's token fences only its own shard, so it
/// must not authorize a stop elsewhere.
fn take_instance(state: &mut WorkerState, id: InstanceId, shard: ShardId) -> Option<Instance> {
    if state.instances.get(&id)?.shard != shard {
        return None;
    }
    state.instances.remove(&id).map(Digested::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::testing::Harness;

    const WORKER: NodeId = NodeId(0);
    const CONTROLLER: NodeId = NodeId(1);
    const SHARD: ShardId = ShardId(3);
    /// What a controller that settled nothing yet sends.
    const NOTHING_SETTLED: Settled = Settled {
        boot: 0,
        below: 0,
        outstanding: Vec::new(),
    };

    fn started() -> Harness<ControlPlane> {
        let mut harness = Harness::new(
            1,
            WORKER,
            Box::new(WorkerNode::new(WorkerSettings::default())),
        );
        let output = harness.start();
        assert!(output.sent.is_empty() && output.records.is_empty());
        harness
    }

    fn action_id(sequence: u64) -> ActionId {
        ActionId {
            controller: CONTROLLER,
            boot: 0,
            sequence,
        }
    }

    fn start_action(sequence: u64, token: u64, resource: &str, ordinal: u32) -> Action {
        Action {
            id: action_id(sequence),
            shard: SHARD,
            token,
            kind: ActionKind::Start {
                resource: resource.into(),
                ordinal,
                generation: 1,
            },
        }
    }

    fn stop_action(sequence: u64, token: u64, instance: InstanceId) -> Action {
        Action {
            id: action_id(sequence),
            shard: SHARD,
            token,
            kind: ActionKind::Stop { instance },
        }
    }

    /// Delivers an action; returns its outcome and the events recorded.
    fn act(harness: &mut Harness<ControlPlane>, action: Action) -> (ActionOutcome, Vec<Event>) {
        let expected_id = action.id;
        let output = harness.deliver(
            CONTROLLER,
            Msg::Act {
                request_id: 77,
                action: Box::new(action),
                settled: NOTHING_SETTLED,
            },
        );
        match &output.sent[..] {
            [
                (
                    CONTROLLER,
                    Msg::Acted {
                        request_id: 77,
                        action_id,
                        outcome,
                    },
                ),
            ] if *action_id == expected_id => (outcome.clone(), output.records),
            other => panic!("expected one Acted reply, got {other:?}"),
        }
    }

    fn observe(
        harness: &mut Harness<ControlPlane>,
        shard: ShardId,
        token: u64,
        resource: Option<&str>,
    ) -> Result<Vec<Digested<Instance>>, u64> {
        let output = harness.deliver(
            CONTROLLER,
            Msg::Observe {
                request_id: 5,
                shard,
                token,
                resource: resource.map(str::to_string),
                settled: NOTHING_SETTLED,
            },
        );
        match output.sent.into_iter().next() {
            Some((
                CONTROLLER,
                Msg::Observed {
                    request_id: 5,
                    instances,
                },
            )) => instances,
            other => panic!("expected an Observed reply, got {other:?}"),
        }
    }

    fn started_instance(outcome: &ActionOutcome) -> InstanceId {
        match outcome {
            ActionOutcome::Started { instance } => *instance,
            other => panic!("expected a start, got {other:?}"),
        }
    }

    #[test]
    fn start_runs_an_instance_and_stop_removes_it() {
        let mut harness = started();
        let (outcome, records) = act(&mut harness, start_action(1, 10, "r1", 0));
        let id = started_instance(&outcome);
        assert_eq!(
            id,
            InstanceId {
                worker: WORKER,
                sequence: 0
            }
        );
        assert!(matches!(&records[..], [
            Event::FenceRaised { shard: SHARD, token: 10 },
            Event::InstanceStarted { action, token: 10, instance },
        ] if *action == action_id(1) && instance.id == id && instance.resource == "r1"));
        let running = observe(&mut harness, SHARD, 10, None).unwrap();
        assert_eq!(running.len(), 1);
        let (outcome, records) = act(&mut harness, stop_action(2, 10, id));
        assert_eq!(outcome, ActionOutcome::Stopped);
        assert!(
            matches!(&records[..], [Event::InstanceStopped { instance, .. }] if instance.id == id)
        );
        assert_eq!(observe(&mut harness, SHARD, 10, None), Ok(vec![]));
    }

    #[test]
    fn stopping_an_unknown_instance_is_not_found_and_records_nothing() {
        let mut harness = started();
        let missing = InstanceId {
            worker: WORKER,
            sequence: 9,
        };
        let (outcome, records) = act(&mut harness, stop_action(1, 0, missing));
        assert_eq!(outcome, ActionOutcome::NotFound);
        assert!(records.is_empty());
    }

    #[test]
    fn a_stop_fenced_by_another_shard_does_not_stop_the_instance() {
        let mut harness = started();
        let (outcome, _) = act(&mut harness, start_action(1, 10, "r1", 0));
        let id = started_instance(&outcome);
        let mut stop = stop_action(2, 99, id);
        stop.shard = ShardId(4);
        let (outcome, records) = act(&mut harness, stop);
        assert_eq!(outcome, ActionOutcome::NotFound);
        assert!(
            !records
                .iter()
                .any(|event| matches!(event, Event::InstanceStopped { .. }))
        );
        assert_eq!(observe(&mut harness, SHARD, 10, None).unwrap().len(), 1);
    }

    #[test]
    fn a_resent_action_runs_once_and_gets_the_same_outcome() {
        let mut harness = started();
        let (first, _) = act(&mut harness, start_action(1, 10, "r1", 0));
        let (again, records) = act(&mut harness, start_action(1, 10, "r1", 0));
        assert_eq!(again, first);
        assert_eq!(
            records,
            vec![Event::ActionDeduplicated {
                action: action_id(1)
            }]
        );
        assert_eq!(observe(&mut harness, SHARD, 10, None).unwrap().len(), 1);
        // A duplicate of a stop also replays, even once the instance is gone.
        let id = started_instance(&first);
        act(&mut harness, stop_action(2, 10, id));
        let (again, _) = act(&mut harness, stop_action(2, 10, id));
        assert_eq!(again, ActionOutcome::Stopped);
    }

    #[test]
    fn with_the_no_fencing_bug_a_stale_token_runs_and_no_fence_is_raised() {
        let settings = WorkerSettings {
            bugs: [Bug::NoFencing].into(),
            ..WorkerSettings::default()
        };
        let mut harness = Harness::new(1, WORKER, Box::new(WorkerNode::new(settings)));
        harness.start();
        let (_, records) = act(&mut harness, start_action(1, 10, "r1", 0));
        assert!(
            !records
                .iter()
                .any(|event| matches!(event, Event::FenceRaised { .. }))
        );
        let (outcome, records) = act(&mut harness, start_action(2, 9, "r1", 0));
        started_instance(&outcome);
        assert!(matches!(
            &records[..],
            [Event::InstanceStarted { token: 9, .. }]
        ));
        assert_eq!(observe(&mut harness, SHARD, 3, None).unwrap().len(), 2);
    }

    #[test]
    fn a_stale_token_is_rejected_recorded_and_never_runs() {
        let mut harness = started();
        act(&mut harness, start_action(1, 10, "r1", 0));
        let (outcome, records) = act(&mut harness, start_action(2, 9, "r1", 1));
        assert_eq!(outcome, ActionOutcome::Rejected { highest_token: 10 });
        assert_eq!(
            records,
            vec![Event::ActionRejected {
                action: action_id(2),
                shard: SHARD,
                token: 9,
                highest_token: 10,
            }]
        );
        // Not stored as executed: a resend is judged by the fence again.
        let (outcome, records) = act(&mut harness, start_action(2, 9, "r1", 1));
        assert_eq!(outcome, ActionOutcome::Rejected { highest_token: 10 });
        assert!(matches!(&records[..], [Event::ActionRejected { .. }]));
        assert_eq!(observe(&mut harness, SHARD, 10, None).unwrap().len(), 1);
        assert!(
            !harness
                .durable()
                .worker()
                .unwrap()
                .executed
                .contains_key(&action_id(2))
        );
    }

    #[test]
    fn observe_raises_the_fence_so_an_older_token_is_rejected() {
        let mut harness = started();
        let output = harness.deliver(
            CONTROLLER,
            Msg::Observe {
                request_id: 1,
                shard: SHARD,
                token: 20,
                resource: None,
                settled: NOTHING_SETTLED,
            },
        );
        assert_eq!(
            output.records,
            vec![Event::FenceRaised {
                shard: SHARD,
                token: 20
            }]
        );
        let (outcome, _) = act(&mut harness, start_action(1, 19, "r1", 0));
        assert_eq!(outcome, ActionOutcome::Rejected { highest_token: 20 });
        assert_eq!(observe(&mut harness, SHARD, 19, None), Err(20));
        // Another shard's fence is untouched.
        assert_eq!(observe(&mut harness, ShardId(4), 1, None), Ok(vec![]));
        let (outcome, records) = act(&mut harness, start_action(2, 20, "r1", 0));
        started_instance(&outcome);
        assert!(
            !records
                .iter()
                .any(|event| matches!(event, Event::FenceRaised { .. }))
        );
    }

    #[test]
    fn observe_reports_the_shard_or_one_resource_in_id_order() {
        let mut harness = started();
        act(&mut harness, start_action(1, 1, "r2", 0));
        act(&mut harness, start_action(2, 1, "r1", 0));
        act(&mut harness, start_action(3, 1, "r2", 1));
        let mut other = start_action(4, 1, "r9", 0);
        other.shard = ShardId(4);
        act(&mut harness, other);
        let all = observe(&mut harness, SHARD, 1, None).unwrap();
        let sequences: Vec<u64> = all.iter().map(|instance| instance.id.sequence).collect();
        assert_eq!(sequences, vec![0, 1, 2]);
        let r2 = observe(&mut harness, SHARD, 1, Some("r2")).unwrap();
        let ordinals: Vec<u32> = r2.iter().map(|instance| instance.ordinal).collect();
        assert_eq!(ordinals, vec![0, 1]);
    }

    #[test]
    fn state_survives_a_restart() {
        let mut harness = started();
        let (first, _) = act(&mut harness, start_action(1, 10, "r1", 0));
        let output = harness.restart(Box::new(WorkerNode::new(WorkerSettings::default())));
        assert!(output.sent.is_empty());
        assert_eq!(observe(&mut harness, SHARD, 10, None).unwrap().len(), 1);
        let (again, records) = act(&mut harness, start_action(1, 10, "r1", 0));
        assert_eq!(again, first, "executed actions are remembered");
        assert!(matches!(&records[..], [Event::ActionDeduplicated { .. }]));
        let (outcome, _) = act(&mut harness, start_action(2, 9, "r1", 1));
        assert_eq!(
            outcome,
            ActionOutcome::Rejected { highest_token: 10 },
            "the fence is kept"
        );
        let (outcome, _) = act(&mut harness, start_action(3, 10, "r1", 1));
        assert_eq!(
            started_instance(&outcome).sequence,
            1,
            "instance ids are not reused"
        );
    }

    fn executed_ids(harness: &Harness<ControlPlane>) -> Vec<u64> {
        let executed = &harness.durable().worker().unwrap().executed;
        executed.keys().map(|id| id.sequence).collect()
    }

    #[test]
    fn a_fence_rise_prunes_the_executed_actions_below_it_and_keeps_those_at_it() {
        let mut harness = started();
        act(&mut harness, start_action(1, 10, "r1", 0));
        act(&mut harness, start_action(2, 10, "r1", 1));
        let mut elsewhere = start_action(3, 5, "r9", 0);
        elsewhere.shard = ShardId(4);
        act(&mut harness, elsewhere);
        assert_eq!(executed_ids(&harness), vec![1, 2, 3]);
        act(&mut harness, start_action(4, 11, "r1", 2));
        assert_eq!(
            executed_ids(&harness),
            vec![3, 4],
            "below the shard's new fence only; another shard's stay"
        );
        observe(&mut harness, SHARD, 11, None).unwrap();
        assert_eq!(executed_ids(&harness), vec![3, 4], "at the fence: kept");
        observe(&mut harness, SHARD, 12, None).unwrap();
        assert_eq!(executed_ids(&harness), vec![3], "an observe prunes too");
    }

    #[test]
    fn a_duplicate_of_a_pruned_action_is_rejected_by_the_fence_and_never_runs_again() {
        let mut harness = started();
        let (first, _) = act(&mut harness, start_action(1, 10, "r1", 0));
        started_instance(&first);
        observe(&mut harness, SHARD, 11, None).unwrap();
        assert!(executed_ids(&harness).is_empty(), "pruned");
        let (again, records) = act(&mut harness, start_action(1, 10, "r1", 0));
        assert_eq!(again, ActionOutcome::Rejected { highest_token: 11 });
        assert_eq!(
            records,
            vec![Event::ActionRejected {
                action: action_id(1),
                shard: SHARD,
                token: 10,
                highest_token: 11,
            }]
        );
        assert_eq!(observe(&mut harness, SHARD, 11, None).unwrap().len(), 1);
    }

    #[test]
    fn the_executed_bound_holds_under_a_long_stream_and_a_full_worker_runs_nothing() {
        const LIMIT: usize = 8;
        let worker = WorkerNode::new(WorkerSettings::default()).with_max_executed_actions(LIMIT);
        let mut harness = Harness::new(1, WORKER, Box::new(worker));
        harness.start();
        // A long stream whose holder changes every five actions: pruning
        // alone keeps the ledger small, and every action runs.
        for sequence in 0..5_000 {
            let token = 1 + sequence / 5;
            let (outcome, _) = act(&mut harness, stop_action(sequence, token, unknown()));
            assert_eq!(outcome, ActionOutcome::NotFound);
            assert!(executed_ids(&harness).len() <= 5);
        }
        // One holder that never changes and never settles fills it: at the
        // bound a new action is answered busy and does not run, while a
        // duplicate is still answered with its first outcome.
        let token = 2_000;
        for sequence in 10_000..10_000 + LIMIT as u64 {
            act(&mut harness, start_action(sequence, token, "r1", 0));
        }
        let (outcome, records) = act(&mut harness, start_action(20_000, token, "r1", 1));
        assert_eq!(outcome, ActionOutcome::Busy);
        assert_eq!(
            records,
            vec![Event::ActionRefusedBusy {
                action: action_id(20_000)
            }]
        );
        assert_eq!(executed_ids(&harness).len(), LIMIT);
        let (replayed, _) = act(&mut harness, start_action(10_000, token, "r1", 0));
        started_instance(&replayed);
        assert_eq!(
            observe(&mut harness, SHARD, token, None).unwrap().len(),
            LIMIT
        );
        // A new holder's fence makes room: its action runs.
        let (outcome, _) = act(&mut harness, start_action(20_001, token + 1, "r1", 1));
        started_instance(&outcome);
        assert_eq!(executed_ids(&harness), vec![20_001]);
    }

    /// What boot 0 settled: every sequence below `below` but `outstanding`.
    fn settled(below: u64, outstanding: &[u64]) -> Settled {
        Settled {
            boot: 0,
            below,
            outstanding: outstanding.to_vec(),
        }
    }

    /// Delivers an action with what its sender settled; returns what the
    /// worker sent back and recorded.
    fn act_settled(
        harness: &mut Harness<ControlPlane>,
        action: Action,
        settled: Settled,
    ) -> (Vec<Msg>, Vec<Event>) {
        let output = harness.deliver(
            CONTROLLER,
            Msg::Act {
                request_id: 9,
                action: Box::new(action),
                settled,
            },
        );
        let sent = output.sent.into_iter().map(|(_, message)| message);
        (sent.collect(), output.records)
    }

    #[test]
    fn settled_actions_are_forgotten_and_a_late_copy_never_runs() {
        let mut harness = started();
        for sequence in 1..=4 {
            act(
                &mut harness,
                start_action(sequence, 10, "r1", sequence as u32),
            );
        }
        assert_eq!(executed_ids(&harness), vec![1, 2, 3, 4]);
        // The holder has the answers of 1, 2 and 4; 3 is still outstanding
        // (its reply was lost), and so is 5, which this message carries.
        // The worker forgets 1, 2 and 4, though 4 is above 3.
        let (sent, _) = act_settled(
            &mut harness,
            start_action(5, 10, "r1", 5),
            settled(6, &[3, 5]),
        );
        assert!(matches!(sent[..], [Msg::Acted { .. }]));
        assert_eq!(executed_ids(&harness), vec![3, 5]);
        // Late copies of 2 and 4 (the network duplicated them) find no
        // entry, but are settled: dropped unrun and unanswered, whatever
        // older statement they carry.
        for late in [2, 4] {
            let (sent, records) = act_settled(
                &mut harness,
                start_action(late, 10, "r1", 2),
                settled(late, &[]),
            );
            assert!(sent.is_empty(), "{sent:?}");
            let dropped = Event::ActionSettledDropped {
                action: action_id(late),
            };
            assert_eq!(records, vec![dropped]);
        }
        // A statement with the same mark cannot unsettle 4 again.
        act_settled(
            &mut harness,
            start_action(3, 10, "r1", 3),
            settled(6, &[2, 3, 4, 5]),
        );
        let (sent, _) = act_settled(&mut harness, start_action(4, 10, "r1", 4), NOTHING_SETTLED);
        assert!(sent.is_empty(), "{sent:?}");
        // A settled copy with a stale token is rejected and answered, as
        // any stale action is: the fence comes first.
        let stale = start_action(2, 9, "r1", 2);
        assert_eq!(
            act(&mut harness, stale).0,
            ActionOutcome::Rejected { highest_token: 10 }
        );
        assert_eq!(observe(&mut harness, SHARD, 10, None).unwrap().len(), 5);
        // 3 is still outstanding: it replays.
        let (replayed, _) = act(&mut harness, start_action(3, 10, "r1", 3));
        started_instance(&replayed);
        assert_eq!(executed_ids(&harness), vec![3, 5]);
        // Another boot of the same controller settles on its own.
        let other_boot = Action {
            id: ActionId {
                boot: 1,
                ..action_id(1)
            },
            ..start_action(1, 10, "r1", 9)
        };
        let (sent, _) = act_settled(&mut harness, other_boot, NOTHING_SETTLED);
        assert!(matches!(sent[..], [Msg::Acted { .. }]));
        // The statements are durable: a reboot forgets neither them nor
        // the rule, so a late copy still cannot run.
        harness.restart(Box::new(WorkerNode::new(WorkerSettings::default())));
        let (sent, _) = act_settled(&mut harness, start_action(1, 10, "r1", 1), NOTHING_SETTLED);
        assert!(sent.is_empty(), "{sent:?}");
    }

    #[test]
    fn an_observe_settles_too_so_one_steady_holder_keeps_the_ledger_small() {
        const LIMIT: usize = 8;
        let worker = WorkerNode::new(WorkerSettings::default()).with_max_executed_actions(LIMIT);
        let mut harness = Harness::new(1, WORKER, Box::new(worker));
        harness.start();
        // Ten times the bound under one token: each action settles the
        // ones answered before it, so none is ever refused.
        for sequence in 1..=10 * LIMIT as u64 {
            let (sent, _) = act_settled(
                &mut harness,
                stop_action(sequence, 7, unknown()),
                settled(sequence + 1, &[sequence]),
            );
            assert!(
                matches!(
                    sent[..],
                    [Msg::Acted {
                        outcome: ActionOutcome::NotFound,
                        ..
                    }]
                ),
                "{sent:?}"
            );
            assert_eq!(executed_ids(&harness), vec![sequence]);
        }
        let output = harness.deliver(
            CONTROLLER,
            Msg::Observe {
                request_id: 3,
                shard: SHARD,
                token: 7,
                resource: None,
                settled: settled(10 * LIMIT as u64 + 1, &[]),
            },
        );
        assert_eq!(output.sent.len(), 1);
        assert!(executed_ids(&harness).is_empty());
    }

    fn unknown() -> InstanceId {
        InstanceId {
            worker: WORKER,
            sequence: u64::MAX,
        }
    }

    #[test]
    fn state_survives_a_reboot_whatever_the_new_monotonic_clock_reads() {
        for rebooted_at_ns in [0, u64::MAX / 4] {
            let mut harness = started();
            harness.advance(500 * node::SECOND_NS);
            let (first, _) = act(&mut harness, start_action(1, 10, "r1", 0));
            let before = harness.durable().worker().unwrap().clone();
            let node = WorkerNode::new(WorkerSettings::default());
            let output = harness.reboot(Box::new(node), rebooted_at_ns);
            assert!(output.sent.is_empty() && output.timers.is_empty());
            assert_eq!(
                harness.durable().worker(),
                Some(&before),
                "nothing re-based"
            );
            let (again, records) = act(&mut harness, start_action(1, 10, "r1", 0));
            assert_eq!(again, first, "still deduplicated");
            assert!(matches!(&records[..], [Event::ActionDeduplicated { .. }]));
            let (stale, _) = act(&mut harness, start_action(2, 9, "r1", 1));
            assert_eq!(stale, ActionOutcome::Rejected { highest_token: 10 });
        }
    }
}
