//! Controller node: its store session, membership, shard and leader leases,
//! and the level-triggered reconciliation of the resources in its shards.
//!
//! # Session and validity
//!
//! A controller lives in the store as a session lease. Its membership key,
//! the shard keys it holds and the leader key all hang on that lease, so
//! when the controller dies the store deletes all of them at once, when the
//! TTL runs out on the store's clock. The controller keeps the session
//! alive every `keepalive_interval_ms` and remembers, on its own monotonic
//! clock, when each keep-alive (or the grant) was *sent*. A successful reply
//! proves the store reset the TTL at some point after that send, so the
//! lease lives at least until `sent_at + lease_validity_ms()` on our clock
//! (the validity shrinks the TTL by the largest drift the scenario allows
//! and a margin; see `ControllerSettings::lease_validity_ms`). That deadline
//! only moves forward: a late reply to an older keep-alive cannot extend it.
//! The controller acts on a shard only while its clock is before that
//! deadline, and it checks this right before every side effect. When the
//! deadline passes unrenewed every belief ends (`Expired`); when the store
//! answers `LeaseNotFound` the session is gone with all its keys, every
//! belief ends (`Lost`), and a new session starts.
//!
//! # Shards and the leader
//!
//! Resources map to `shard_count` shards by jump hash; shards map to the
//! live members by rendezvous hashing. Every `membership_interval_ms` one
//! transaction reads the members, every shard key and the leader key (one
//! snapshot, at one store revision), and each lease is settled on its own:
//!
//! - wanted and free: acquire it with `compare Absent, put on my session`;
//!   the put's revision is the lease's fencing token;
//! - wanted and already mine but not believed (after a restart, or after a
//!   claim whose reply was lost): *adopt* it by putting it again under a
//!   compare on the mod revision seen. This deviates from "adopt with the
//!   token read": the key may still hang on the session of a previous
//!   incarnation, which will expire and take the key with it, and a release
//!   delete of mine still in the network would match the old revision. The
//!   re-put moves the key onto the live session and mints a fresh, higher
//!   token, so both hazards are gone;
//! - believed but no longer wanted (a member joined): end the belief
//!   (`Released`) first, then delete the key under a compare on the token,
//!   so the new owner can take it only once this controller stopped acting;
//! - mine, not believed and not wanted: delete it the same way;
//! - believed, but a read newer than the token shows the key gone or
//!   retaken: the belief ends (`Lost`).
//!
//! At most one claim or release per lease is in flight. The leader lease is
//! the same mechanism on one key that every member wants; whoever holds it
//! is the leader. It has no duties beyond existing.
//!
//! # Fencing
//!
//! A shard's token travels with every action, and workers reject a token
//! lower than the highest they have seen for the shard. When a belief
//! starts, the controller first sends `Observe{shard, token}` to every
//! worker and waits for every reply (retrying on timeout) before any pass
//! of that shard runs: each worker then has its fence at our token, so an
//! older holder's delayed actions are rejected from then on, and what the
//! workers report includes everything they accepted before. Every instance
//! has one serialization point, the worker `Topology::worker_for(resource,
//! ordinal)` that receives all of its starts (a stop goes to the worker the
//! instance runs on, which is the same one).
//!
//! # The work queue
//!
//! client-go semantics: queued keys are deduplicated; a key is never
//! processed twice at once (one added while processing is marked dirty and
//! queued again when its pass ends); at most `max_concurrent_reconciles`
//! passes run; a failed pass requeues its key after a per-key exponential
//! backoff (`backoff_base_ms` doubling up to `backoff_cap_ms`, reset on
//! success). Keys come from store watch hints, from what fences and resyncs
//! observe at the workers, and from a full listing of desired resources
//! every `resync_interval_ms`: watch notifications may be lost, so the
//! resync is the truth, and observing the workers also finds instances of
//! resources that no longer exist.
//!
//! # One pass
//!
//! For resource `r` in shard `s` with token `T`, each step only while the
//! belief holds: read the desired state and stored status (one txn); ask
//! every worker for `r`'s instances; diff per ordinal, at most one action
//! per ordinal (start what is missing, stop what runs at another generation
//! before starting its replacement in a later pass, stop extras and
//! everything beyond the replica count or of a deleted resource); send the
//! actions and wait for every acknowledgement. An action sent and not yet
//! acknowledged stays *outstanding* for its (resource, ordinal) until the
//! belief ends: later passes resend that very action (the worker
//! deduplicates by id) instead of diffing the ordinal again, because a
//! delayed start that lands after the next observe saw "nothing running"
//! would otherwise start a second instance. A pass that acted requeues its
//! key soon to verify; a pass that found nothing to do writes the status if
//! it changed, in a txn that compares the shard key's mod revision with the
//! token (store-side fencing) and the resource's mod revision with the one
//! read (so the status describes what was read). Any timeout or error
//! fails the pass (backoff); a belief lost mid-pass abandons it.
//!
//! # Timers
//!
//! `Tick` keeps the session alive (or grants a new one) and retries
//! registration; `Resync` renews the watch and resyncs;
//! `Requeue(resource)` ends a backoff; `RequestTimeout(id)` fails one
//! request. Node-specific: `Custom(VALIDITY_TIMER)` fires at the validity
//! deadline so expiry is noticed even when nothing else happens, and
//! `Custom(MEMBERSHIP_TIMER)` starts a membership round.
//!
//! The node keeps nothing durable: request and action ids carry the
//! incarnation, so a restarted controller starts from scratch and reclaims
//! its shards by adoption.
//!
//! # Planted bugs
//!
//! For the bug zoo (`crate::zoo`) the controller can be told to make six
//! classic mistakes ([`Bug`]), each resolved to a flag of `ControllerBugs`
//! at construction and marked "planted bug" where it bends the code above:
//! validity from the reply with the full TTL, validity on the wall clock,
//! trusting the session until the store denies it, no resync or failure
//! requeue, a work queue that hands out a key being processed, and shards
//! by hash mod n.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use node::{Context, MILLISECOND_NS, Node, NodeId, TimerId};

use crate::config::{Bug, ControllerSettings, Topology};
use crate::protocol::{
    Action, ActionId, ActionKind, ActionOutcome, BeliefEnd, ControlPlane, Event, Instance,
    LeaseName, Msg, RequestId, Status, Timer, Value, keys, request_id,
};
use crate::shard::{ShardId, modulo_owner, rendezvous_owner, shard_of};
use crate::store::{
    Compare, KeyValue, LeaseId, Op, OpResult, StoreError, StoreRequest, StoreResponse, Txn,
};

type Ctx<'a> = Context<'a, ControlPlane>;

/// `Timer::Custom(VALIDITY_TIMER)`: the lease validity deadline is due.
pub const VALIDITY_TIMER: u64 = 1;
/// `Timer::Custom(MEMBERSHIP_TIMER)`: time for a membership round.
pub const MEMBERSHIP_TIMER: u64 = 2;

/// Keys waiting in the work queue; beyond it additions are dropped (the
/// next resync brings them back).
const MAX_QUEUED_KEYS: usize = 10_000;
/// Actions one pass sends; the rest wait for the verifying pass.
const MAX_ACTIONS_PER_PASS: usize = 64;
/// Requests in flight. Each has a timeout and the senders are bounded, so
/// reaching this is a bug, reported as a crash rather than a leak.
const MAX_PENDING_REQUESTS: usize = 100_000;

/// A controller: leases, shards and reconciliation. See the module docs.
pub struct ControllerNode {
    topology: Topology,
    settings: ControllerSettings,
    /// Volatile counters; the incarnation in the ids keeps them unique.
    request_counter: u64,
    action_counter: u64,
    attempt_counter: u64,
    pending: BTreeMap<RequestId, Pending>,
    session: Option<Session>,
    /// Time on the lease clock (the monotonic clock) until which the
    /// session lease surely lives.
    valid_until_ns: u64,
    validity_timer: Option<TimerId>,
    /// Leases believed held, with their tokens.
    beliefs: BTreeMap<LeaseName, u64>,
    /// Per believed shard: fence progress and outstanding actions.
    shards: BTreeMap<ShardId, ShardWork>,
    queue: WorkQueue,
    /// Every pass running, by attempt (unique per pass; replies carry it,
    /// so a reply to an earlier pass of the same key finds nothing). The
    /// queue hands a key to one pass at a time, except under the planted
    /// `no-workqueue-dedup` bug, where two passes of a key coexist here.
    passes: BTreeMap<u64, Pass>,
    /// The one pending `Timer::Requeue` per key.
    requeues: BTreeMap<String, TimerId>,
    /// The membership last read (sorted), to record only changes.
    last_members: Option<Vec<NodeId>>,
    /// Planted bugs, resolved once.
    bugs: ControllerBugs,
}

/// The planted bugs a controller can make (see [`Bug`]), as plain flags.
#[derive(Clone, Copy, Debug, Default)]
struct ControllerBugs {
    /// Validity runs the full TTL from when the reply arrived.
    lease_no_drift_margin: bool,
    /// Validity is measured on the wall clock.
    lease_on_wall_clock: bool,
    /// Validity never runs out: only the store saying so ends the lease.
    act_after_renew_failure: bool,
    /// No periodic resync and no requeue of a failed pass.
    edge_triggered: bool,
    /// Shards go to members by hash mod n.
    modulo_sharding: bool,
    /// The work queue hands out a key that is being processed.
    no_workqueue_dedup: bool,
}

impl ControllerBugs {
    fn of(settings: &ControllerSettings) -> Self {
        let on = |bug: Bug| settings.bugs.contains(&bug);
        Self {
            lease_no_drift_margin: on(Bug::LeaseNoDriftMargin),
            lease_on_wall_clock: on(Bug::LeaseOnWallClock),
            act_after_renew_failure: on(Bug::ActAfterRenewFailure),
            edge_triggered: on(Bug::EdgeTriggered),
            modulo_sharding: on(Bug::ModuloSharding),
            no_workqueue_dedup: on(Bug::NoWorkqueueDedup),
        }
    }
}

/// A request in flight.
#[derive(Debug)]
struct Pending {
    to: NodeId,
    /// On the lease clock: a keep-alive's reply extends validity from here.
    sent_at_ns: u64,
    timer: TimerId,
    purpose: Purpose,
}

/// What a request was for, which says how to read its reply.
#[derive(Debug)]
enum Purpose {
    Grant,
    KeepAlive {
        lease: LeaseId,
    },
    Register {
        lease: LeaseId,
    },
    Membership,
    /// Acquire (compare absent) or adopt (compare a revision); the session
    /// lease it puts on.
    Claim {
        lease: LeaseName,
        session: LeaseId,
    },
    Release {
        lease: LeaseName,
    },
    ListResources,
    Fence {
        shard: ShardId,
        token: u64,
        worker: NodeId,
    },
    ResyncObserve {
        shard: ShardId,
        token: u64,
    },
    ReadDesired {
        resource: String,
        attempt: u64,
    },
    PassObserve {
        resource: String,
        attempt: u64,
        worker: NodeId,
    },
    PassAct {
        resource: String,
        attempt: u64,
        shard: ShardId,
        token: u64,
        ordinal: u32,
        action: ActionId,
    },
    WriteStatus {
        resource: String,
        attempt: u64,
        status: Status,
    },
}

impl Purpose {
    /// The lease a claim or release is about.
    fn lease(&self) -> Option<LeaseName> {
        match self {
            Purpose::Claim { lease, .. } | Purpose::Release { lease } => Some(*lease),
            _ => None,
        }
    }

    /// The pass a pass step belongs to.
    fn pass(&self) -> Option<(&str, u64)> {
        match self {
            Purpose::ReadDesired { resource, attempt }
            | Purpose::PassObserve {
                resource, attempt, ..
            }
            | Purpose::PassAct {
                resource, attempt, ..
            }
            | Purpose::WriteStatus {
                resource, attempt, ..
            } => Some((resource, *attempt)),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Session {
    lease: LeaseId,
    /// The member key is on this lease.
    registered: bool,
}

/// A believed shard's working state; dropped when the belief ends.
#[derive(Debug)]
struct ShardWork {
    token: u64,
    /// Workers whose fence reply is awaited; no pass runs until empty.
    fence_waiting: BTreeSet<NodeId>,
    /// Sent, unacknowledged actions by (resource, ordinal).
    outstanding: BTreeMap<(String, u32), Outstanding>,
}

/// An action, the ordinal it is for and the worker it goes to.
#[derive(Clone, Debug)]
struct Outstanding {
    ordinal: u32,
    target: NodeId,
    action: Action,
}

/// One reconcile pass of one key.
#[derive(Debug)]
struct Pass {
    shard: ShardId,
    token: u64,
    step: Step,
}

#[derive(Debug)]
enum Step {
    ReadingDesired,
    Observing {
        desired: Option<Desired>,
        stored: Option<Status>,
        waiting: BTreeSet<NodeId>,
        instances: Vec<Instance>,
    },
    Acting {
        waiting: BTreeSet<ActionId>,
    },
    WritingStatus,
}

/// What a pass read of the resource.
#[derive(Clone, Copy, Debug)]
struct Desired {
    replicas: u32,
    generation: u64,
    mod_revision: u64,
}

/// How a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Observed equals desired (status written if needed).
    Converged,
    /// Acted, or saw a change: look again soon.
    Progressed,
    /// Timed out or got an error: back off.
    Failed,
}

impl ControllerNode {
    /// A controller that learns its id from the context; `topology` names
    /// the store and the workers, `settings` its intervals and limits.
    pub fn new(topology: Topology, settings: ControllerSettings) -> Self {
        assert!(settings.shard_count > 0, "a controller needs shards");
        let bugs = ControllerBugs::of(&settings);
        Self {
            topology,
            settings,
            request_counter: 0,
            action_counter: 0,
            attempt_counter: 0,
            pending: BTreeMap::new(),
            session: None,
            valid_until_ns: 0,
            validity_timer: None,
            beliefs: BTreeMap::new(),
            shards: BTreeMap::new(),
            queue: WorkQueue {
                hand_out_processing: bugs.no_workqueue_dedup,
                ..WorkQueue::default()
            },
            passes: BTreeMap::new(),
            requeues: BTreeMap::new(),
            last_members: None,
            bugs,
        }
    }
}

impl Node<ControlPlane> for ControllerNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.watch(ctx);
        self.grant_session(ctx);
        let settings = &self.settings;
        ctx.set_timer(interval_ns(settings.keepalive_interval_ms), Timer::Tick);
        let membership_ns = interval_ns(settings.membership_interval_ms);
        ctx.set_timer(membership_ns, Timer::Custom(MEMBERSHIP_TIMER));
        ctx.set_timer(interval_ns(settings.resync_interval_ms), Timer::Resync);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, message: Msg) {
        self.check_validity(ctx);
        match message {
            Msg::StoreReply {
                request_id,
                response,
            } => self.handle_store_reply(ctx, from, request_id, response),
            Msg::Changed { key, .. } => self.handle_changed(&key),
            Msg::Observed {
                request_id,
                instances,
            } => self.handle_observed(ctx, from, request_id, instances),
            Msg::Acted {
                request_id,
                action_id,
                outcome,
            } => self.handle_acted(ctx, from, request_id, action_id, outcome),
            // Nothing else is addressed to a controller.
            _ => {}
        }
        self.dispatch(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, tag: Timer) {
        // This check is all the validity timer is for.
        self.check_validity(ctx);
        match tag {
            Timer::RequestTimeout(id) => self.handle_timeout(ctx, timer, id),
            Timer::Tick => self.handle_tick(ctx),
            Timer::Custom(MEMBERSHIP_TIMER) => self.handle_membership_timer(ctx),
            Timer::Resync => self.handle_resync(ctx),
            Timer::Requeue(resource) => self.handle_requeue(timer, resource),
            _ => {}
        }
        self.dispatch(ctx);
    }
}

// Inputs.
impl ControllerNode {
    fn handle_store_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        id: RequestId,
        response: StoreResponse<Value>,
    ) {
        let Some(pending) = self.take_pending(ctx, from, id) else {
            return;
        };
        if let StoreResponse::Error(StoreError::LeaseNotFound(lease)) = &response {
            if self.session_lease() == Some(*lease) {
                self.session_lost(ctx);
            }
        }
        let sent_at_ns = pending.sent_at_ns;
        match pending.purpose {
            Purpose::Grant => self.handle_granted(ctx, sent_at_ns, response),
            Purpose::KeepAlive { lease } => {
                self.handle_kept_alive(ctx, lease, sent_at_ns, response);
            }
            Purpose::Register { lease } => self.handle_registered(ctx, lease, response),
            Purpose::Membership => self.handle_membership(ctx, response),
            Purpose::Claim { lease, session } => {
                self.handle_claimed(ctx, lease, session, response);
            }
            Purpose::ListResources => self.handle_listed(response),
            Purpose::ReadDesired { resource, attempt } => {
                self.handle_desired(ctx, resource, attempt, response);
            }
            Purpose::WriteStatus {
                resource,
                attempt,
                status,
            } => self.handle_status_written(ctx, resource, attempt, status, response),
            // A release needs no answer: the next membership round sees the
            // key either way. Worker purposes never get store replies.
            _ => {}
        }
    }

    fn handle_granted(
        &mut self,
        ctx: &mut Ctx<'_>,
        sent_at_ns: u64,
        response: StoreResponse<Value>,
    ) {
        // An error is retried at the next tick; a second session (which
        // cannot happen with one grant in flight) would be left to expire.
        let StoreResponse::LeaseGranted { lease, .. } = response else {
            return;
        };
        if self.session.is_some() {
            return;
        }
        self.session = Some(Session {
            lease,
            registered: false,
        });
        self.extend_validity(ctx, sent_at_ns);
        self.register(ctx);
    }

    fn handle_kept_alive(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseId,
        sent_at_ns: u64,
        response: StoreResponse<Value>,
    ) {
        // A reply about an older session says nothing about this one; a
        // `LeaseNotFound` was handled as a lost session already.
        if self.session_lease() == Some(lease)
            && matches!(response, StoreResponse::LeaseKeptAlive { .. })
        {
            self.extend_validity(ctx, sent_at_ns);
        }
    }

    fn handle_registered(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseId,
        response: StoreResponse<Value>,
    ) {
        let Some(session) = self.session.as_mut().filter(|s| s.lease == lease) else {
            return;
        };
        if matches!(
            response,
            StoreResponse::Txn {
                succeeded: true,
                ..
            }
        ) {
            session.registered = true;
            self.read_membership(ctx);
        }
    }

    fn handle_membership(&mut self, ctx: &mut Ctx<'_>, response: StoreResponse<Value>) {
        let Some(read) = parse_membership(response) else {
            return;
        };
        self.observe_membership(ctx, &read);
        let me = ctx.id();
        if !read.members.contains(&me) {
            // My member key is gone, so my session probably is too (the
            // keep-alive will tell). Re-register rather than hand every
            // shard away on what may be a passing state.
            if let Some(session) = self.session.as_mut() {
                session.registered = false;
            }
            self.register(ctx);
            return;
        }
        for shard in (0..self.settings.shard_count).map(ShardId) {
            let owner = if self.bugs.modulo_sharding {
                modulo_owner(shard, &read.members)
            } else {
                rendezvous_owner(shard, &read.members)
            };
            let wanted = owner == Some(me);
            let stored = read.shard_keys.get(&keys::shard(shard));
            self.settle_lease(ctx, LeaseName::Shard(shard), wanted, stored, read.revision);
        }
        let leader = read.leader.as_ref();
        self.settle_lease(ctx, LeaseName::Leader, true, leader, read.revision);
    }

    /// Records a membership that differs from the last one read.
    fn observe_membership(&mut self, ctx: &mut Ctx<'_>, read: &Membership) {
        let mut members = read.members.clone();
        members.sort_unstable();
        if self.last_members.as_ref() == Some(&members) {
            return;
        }
        ctx.record(Event::MembershipObserved {
            members: members.clone(),
            revision: read.revision,
        });
        self.last_members = Some(members);
    }

    fn handle_claimed(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseName,
        session: LeaseId,
        response: StoreResponse<Value>,
    ) {
        let StoreResponse::Txn {
            succeeded,
            revision,
            results,
        } = response
        else {
            return;
        };
        if !succeeded {
            // Taken already: if by me (a restart, or an earlier claim whose
            // reply was lost), adopt it.
            if let Some(OpResult::Got(Some(kv))) = results.first() {
                if holder(&kv.value) == Some(ctx.id()) {
                    self.claim(ctx, lease, Some(kv.mod_revision));
                }
            }
            return;
        }
        ctx.record(Event::LeaseAcquired {
            lease,
            token: revision,
        });
        // The key lives only as long as the session it was put on, and only
        // the current session's validity is known.
        let current = self.session_lease() == Some(session);
        if current && self.valid(ctx) && !self.beliefs.contains_key(&lease) {
            self.begin_belief(ctx, lease, revision);
        }
    }

    fn handle_listed(&mut self, response: StoreResponse<Value>) {
        let StoreResponse::Txn { results, .. } = response else {
            return;
        };
        let Some(OpResult::GotPrefix(found)) = results.into_iter().next() else {
            return;
        };
        for kv in found {
            if let Some(id) = kv.key.strip_prefix(keys::RESOURCES) {
                self.enqueue(id.to_string());
            }
        }
    }

    fn handle_changed(&mut self, key: &str) {
        if let Some(id) = key.strip_prefix(keys::RESOURCES) {
            self.enqueue(id.to_string());
        }
    }

    fn handle_observed(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        id: RequestId,
        instances: Result<Vec<Instance>, u64>,
    ) {
        let Some(pending) = self.take_pending(ctx, from, id) else {
            return;
        };
        match pending.purpose {
            Purpose::Fence {
                shard,
                token,
                worker,
            } => self.handle_fence_observed(ctx, shard, token, worker, instances),
            Purpose::ResyncObserve { shard, token } => match instances {
                Ok(found) => found
                    .into_iter()
                    .for_each(|instance| self.enqueue(instance.resource)),
                Err(_) => self.end_shard_belief(ctx, shard, token, BeliefEnd::Fenced),
            },
            Purpose::PassObserve {
                resource,
                attempt,
                worker,
            } => self.handle_pass_observed(ctx, resource, attempt, worker, instances),
            _ => {}
        }
    }

    fn handle_fence_observed(
        &mut self,
        ctx: &mut Ctx<'_>,
        shard: ShardId,
        token: u64,
        worker: NodeId,
        instances: Result<Vec<Instance>, u64>,
    ) {
        let Ok(found) = instances else {
            // A higher token reached this worker: someone else holds it now.
            self.end_shard_belief(ctx, shard, token, BeliefEnd::Fenced);
            return;
        };
        let Some(work) = self.shards.get_mut(&shard).filter(|w| w.token == token) else {
            return;
        };
        if !work.fence_waiting.remove(&worker) {
            return;
        }
        let fenced = work.fence_waiting.is_empty();
        for instance in found {
            self.enqueue(instance.resource);
        }
        if fenced {
            // Now passes may run: find every resource of the shard.
            self.list_resources(ctx);
        }
    }

    fn handle_desired(
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
        let Some((desired, stored)) = parse_desired(response) else {
            return self.fail_pass(ctx, &resource, attempt);
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
        for &worker in &workers {
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
            });
        }
        if workers.is_empty() {
            self.plan_pass(ctx, resource, attempt);
        }
    }

    fn handle_pass_observed(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        worker: NodeId,
        instances: Result<Vec<Instance>, u64>,
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

    fn handle_acted(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        id: RequestId,
        action_id: ActionId,
        outcome: ActionOutcome,
    ) {
        let Some(pending) = self.take_pending(ctx, from, id) else {
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
        // Acknowledged: whatever the worker did shows in the next observe,
        // so the ordinal may be diffed again.
        if let Some(work) = self.shards.get_mut(&shard).filter(|w| w.token == token) {
            let key = (resource.clone(), ordinal);
            if work
                .outstanding
                .get(&key)
                .is_some_and(|o| o.action.id == action)
            {
                work.outstanding.remove(&key);
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

    fn handle_status_written(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        status: Status,
        response: StoreResponse<Value>,
    ) {
        let Some(pass) = self.pass_mut(attempt) else {
            return;
        };
        let (shard, token) = (pass.shard, pass.token);
        let StoreResponse::Txn {
            succeeded,
            results,
            revision,
        } = response
        else {
            return self.fail_pass(ctx, &resource, attempt);
        };
        if succeeded {
            let written = Event::StatusWritten {
                resource: resource.clone(),
                status,
                token,
                revision,
            };
            ctx.record(written);
            return self.finish_pass(ctx, resource, attempt, Outcome::Converged);
        }
        let me = ctx.id();
        let still_mine = matches!(results.first(), Some(OpResult::Got(Some(kv)))
            if kv.mod_revision == token && holder(&kv.value) == Some(me));
        if still_mine {
            // The resource changed since it was read: look again.
            self.finish_pass(ctx, resource, attempt, Outcome::Progressed);
        } else {
            // The store says the shard key moved on without me.
            self.end_shard_belief(ctx, shard, token, BeliefEnd::Lost);
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, id: RequestId) {
        if self.pending.get(&id).is_none_or(|p| p.timer != timer) {
            return;
        }
        let pending = self.pending.remove(&id).expect("checked above");
        if let Some((resource, attempt)) = pending.purpose.pass() {
            let resource = resource.to_string();
            return self.fail_pass(ctx, &resource, attempt);
        }
        // A fence is retried until answered; session, membership, claims,
        // listings and resync observes are retried by their periodic timers.
        if let Purpose::Fence {
            shard,
            token,
            worker,
        } = pending.purpose
        {
            let waiting = self
                .shards
                .get(&shard)
                .is_some_and(|w| w.token == token && w.fence_waiting.contains(&worker));
            if waiting {
                self.send_fence(ctx, shard, token, worker);
            }
        }
    }

    fn handle_tick(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(
            interval_ns(self.settings.keepalive_interval_ms),
            Timer::Tick,
        );
        let Some(lease) = self.session_lease() else {
            return self.grant_session(ctx);
        };
        let request = StoreRequest::LeaseKeepAlive { lease };
        self.send_store(ctx, request, Purpose::KeepAlive { lease });
        self.register(ctx);
    }

    fn handle_membership_timer(&mut self, ctx: &mut Ctx<'_>) {
        let delay_ns = interval_ns(self.settings.membership_interval_ms);
        ctx.set_timer(delay_ns, Timer::Custom(MEMBERSHIP_TIMER));
        self.read_membership(ctx);
    }

    fn handle_resync(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(interval_ns(self.settings.resync_interval_ms), Timer::Resync);
        // The store forgets watches when it restarts.
        self.watch(ctx);
        if self.bugs.edge_triggered {
            // Planted bug: trust the notifications, skip the level pass.
            return;
        }
        self.list_resources(ctx);
        let fenced: Vec<(ShardId, u64)> = self
            .shards
            .iter()
            .filter(|(_, work)| work.fence_waiting.is_empty())
            .map(|(&shard, work)| (shard, work.token))
            .collect();
        for (shard, token) in fenced {
            for worker in self.topology.workers.clone() {
                if !self.may_act(ctx, shard, token) {
                    break;
                }
                let purpose = Purpose::ResyncObserve { shard, token };
                self.send_request(ctx, worker, purpose, |request_id| Msg::Observe {
                    request_id,
                    shard,
                    token,
                    resource: None,
                });
            }
        }
    }

    fn handle_requeue(&mut self, timer: TimerId, resource: String) {
        if self.requeues.get(&resource) == Some(&timer) {
            self.requeues.remove(&resource);
            self.enqueue(resource);
        }
    }
}

// Helpers: session and validity.
impl ControllerNode {
    fn session_lease(&self) -> Option<LeaseId> {
        self.session.as_ref().map(|session| session.lease)
    }

    /// The clock leases are measured on: the monotonic clock, which only
    /// drifts. (The planted `lease-on-wall-clock` bug reads the wall clock,
    /// which also jumps.)
    fn lease_clock_ns(&self, ctx: &Ctx<'_>) -> u64 {
        if self.bugs.lease_on_wall_clock {
            ctx.wall_ns()
        } else {
            ctx.mono_ns()
        }
    }

    /// Whether the session lease surely still lives at the store.
    fn valid(&self, ctx: &Ctx<'_>) -> bool {
        // The planted `act-after-renew-failure` bug trusts the session until
        // the store says it is gone, however long renewals have failed.
        let in_time =
            self.bugs.act_after_renew_failure || self.lease_clock_ns(ctx) < self.valid_until_ns;
        self.session.is_some() && in_time
    }

    /// A reply to a request sent at `sent_at_ns` proved the lease alive
    /// from then on for the validity period. Only ever moves forward.
    fn extend_validity(&mut self, ctx: &mut Ctx<'_>, sent_at_ns: u64) {
        let (from_ns, validity_ms) = if self.bugs.lease_no_drift_margin {
            // Planted bug: the whole TTL, counted from the reply.
            (self.lease_clock_ns(ctx), self.settings.session_ttl_ms)
        } else {
            (sent_at_ns, self.settings.lease_validity_ms())
        };
        let until_ns = from_ns.saturating_add(validity_ms.saturating_mul(MILLISECOND_NS));
        if until_ns <= self.valid_until_ns {
            return;
        }
        self.valid_until_ns = until_ns;
        if let Some(timer) = self.validity_timer.take() {
            ctx.cancel_timer(timer);
        }
        let now_ns = self.lease_clock_ns(ctx);
        if until_ns > now_ns {
            let timer = ctx.set_timer(until_ns - now_ns, Timer::Custom(VALIDITY_TIMER));
            self.validity_timer = Some(timer);
        }
    }

    /// Ends every belief once the validity deadline has passed.
    fn check_validity(&mut self, ctx: &mut Ctx<'_>) {
        if !self.valid(ctx) && !self.beliefs.is_empty() {
            self.end_all_beliefs(ctx, BeliefEnd::Expired);
        }
    }

    /// The gate before every side effect on `shard`.
    fn may_act(&mut self, ctx: &mut Ctx<'_>, shard: ShardId, token: u64) -> bool {
        self.check_validity(ctx);
        self.beliefs.get(&LeaseName::Shard(shard)) == Some(&token)
    }

    /// The store deleted the session and every key on it.
    fn session_lost(&mut self, ctx: &mut Ctx<'_>) {
        self.end_all_beliefs(ctx, BeliefEnd::Lost);
        self.session = None;
        self.valid_until_ns = 0;
        if let Some(timer) = self.validity_timer.take() {
            ctx.cancel_timer(timer);
        }
        self.grant_session(ctx);
    }
}

// Helpers: leases and beliefs.
impl ControllerNode {
    /// Settles one lease against a membership snapshot taken at
    /// `read_revision` (see the module docs for the cases).
    fn settle_lease(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseName,
        wanted: bool,
        stored: Option<&KeyValue<Value>>,
        read_revision: u64,
    ) {
        let mine = stored.filter(|kv| holder(&kv.value) == Some(ctx.id()));
        if let Some(&token) = self.beliefs.get(&lease) {
            if !wanted {
                self.release(ctx, lease, token);
            } else if read_revision >= token && mine.is_none_or(|kv| kv.mod_revision != token) {
                // A read newer than my claim shows the key gone or retaken.
                self.end_belief(ctx, lease, BeliefEnd::Lost);
            }
            return;
        }
        if self.awaiting(|purpose| purpose.lease() == Some(lease)) {
            return;
        }
        match (stored, mine) {
            (None, _) if wanted => self.claim(ctx, lease, None),
            (_, Some(kv)) if wanted => self.claim(ctx, lease, Some(kv.mod_revision)),
            (_, Some(kv)) => self.delete_lease_key(ctx, lease, kv.mod_revision),
            // Someone else's, or free and not mine to take.
            _ => {}
        }
    }

    /// Acquires a free key (`seen_revision` is `None`) or adopts my own
    /// key at `seen_revision` by putting it again on the current session.
    fn claim(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, seen_revision: Option<u64>) {
        // A claim whose reply could not be believed would only churn.
        if !self.valid(ctx) {
            return;
        }
        let session = self.session_lease().expect("valid implies a session");
        let key = lease_key(lease);
        let compare = match seen_revision {
            None => Compare::Absent { key: key.clone() },
            Some(revision) => Compare::ModRevisionEquals {
                key: key.clone(),
                revision,
            },
        };
        let put = Op::Put {
            key: key.clone(),
            value: Value::Holder {
                controller: ctx.id(),
            },
            lease: Some(session),
        };
        let txn = Txn {
            compares: vec![compare],
            success: vec![put],
            failure: vec![Op::Get { key }],
        };
        let purpose = Purpose::Claim { lease, session };
        self.send_store(ctx, StoreRequest::Txn(txn), purpose);
    }

    /// Gives a lease up: the belief ends before the key can move.
    fn release(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, token: u64) {
        self.end_belief(ctx, lease, BeliefEnd::Released);
        self.delete_lease_key(ctx, lease, token);
    }

    fn delete_lease_key(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, revision: u64) {
        let key = lease_key(lease);
        let txn = Txn {
            compares: vec![Compare::ModRevisionEquals {
                key: key.clone(),
                revision,
            }],
            success: vec![Op::Delete { key }],
            failure: Vec::new(),
        };
        self.send_store(ctx, StoreRequest::Txn(txn), Purpose::Release { lease });
    }

    fn begin_belief(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, token: u64) {
        assert!(self.valid(ctx), "a belief starts only while valid");
        let previous = self.beliefs.insert(lease, token);
        assert!(previous.is_none(), "one belief per lease");
        ctx.record(Event::BeliefStarted { lease, token });
        let LeaseName::Shard(shard) = lease else {
            return;
        };
        let workers: BTreeSet<NodeId> = self.topology.workers.iter().copied().collect();
        let work = ShardWork {
            token,
            fence_waiting: workers.clone(),
            outstanding: BTreeMap::new(),
        };
        self.shards.insert(shard, work);
        for worker in workers.iter().copied() {
            self.send_fence(ctx, shard, token, worker);
        }
        if workers.is_empty() {
            self.list_resources(ctx);
        }
    }

    fn end_belief(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, reason: BeliefEnd) {
        let Some(token) = self.beliefs.remove(&lease) else {
            return;
        };
        ctx.record(Event::BeliefEnded {
            lease,
            token,
            reason,
        });
        if let LeaseName::Shard(shard) = lease {
            self.drop_shard_work(ctx, shard);
        }
    }

    /// Ends the shard's belief if it still is the one with `token`.
    fn end_shard_belief(
        &mut self,
        ctx: &mut Ctx<'_>,
        shard: ShardId,
        token: u64,
        reason: BeliefEnd,
    ) {
        let lease = LeaseName::Shard(shard);
        if self.beliefs.get(&lease) == Some(&token) {
            self.end_belief(ctx, lease, reason);
        }
    }

    fn end_all_beliefs(&mut self, ctx: &mut Ctx<'_>, reason: BeliefEnd) {
        let held: Vec<LeaseName> = self.beliefs.keys().copied().collect();
        for lease in held {
            self.end_belief(ctx, lease, reason);
        }
        assert!(self.beliefs.is_empty() && self.shards.is_empty());
    }

    /// Forgets everything about a shard no longer believed: its passes,
    /// queued keys, backoffs and outstanding actions. The next holder
    /// fences before acting, so nothing here needs finishing.
    fn drop_shard_work(&mut self, ctx: &mut Ctx<'_>, shard: ShardId) {
        self.shards.remove(&shard);
        let shard_count = self.settings.shard_count;
        let in_shard = move |key: &str| shard_of(key, shard_count) == shard;
        self.passes.retain(|_, pass| pass.shard != shard);
        self.queue.retain(|key| !in_shard(key));
        let dropped: Vec<String> = self
            .requeues
            .keys()
            .filter(|key| in_shard(key))
            .cloned()
            .collect();
        for key in dropped {
            if let Some(timer) = self.requeues.remove(&key) {
                ctx.cancel_timer(timer);
            }
        }
    }
}

// Helpers: the work queue and passes.
impl ControllerNode {
    /// Queues a resource if its shard is believed.
    fn enqueue(&mut self, resource: String) {
        if self
            .shards
            .contains_key(&shard_of(&resource, self.settings.shard_count))
        {
            self.queue.add(resource);
        }
    }

    /// Starts passes for ready keys while slots are free.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>) {
        if !self.valid(ctx) {
            return;
        }
        let limit = self.settings.max_concurrent_reconciles.max(1) as usize;
        // Bounded: every round moves one key from the queue into a pass.
        while self.passes.len() < limit {
            let shard_count = self.settings.shard_count;
            let shards = &self.shards;
            let next = self
                .queue
                .pop_ready(|key| match shards.get(&shard_of(key, shard_count)) {
                    None => Readiness::Drop,
                    Some(work) if !work.fence_waiting.is_empty() => Readiness::Wait,
                    Some(_) => Readiness::Ready,
                });
            let Some(resource) = next else {
                break;
            };
            self.start_pass(ctx, resource);
        }
    }

    fn pass_mut(&mut self, attempt: u64) -> Option<&mut Pass> {
        self.passes.get_mut(&attempt)
    }

    fn start_pass(&mut self, ctx: &mut Ctx<'_>, resource: String) {
        let shard = shard_of(&resource, self.settings.shard_count);
        let token = self.shards[&shard].token;
        self.attempt_counter += 1;
        let attempt = self.attempt_counter;
        let pass = Pass {
            shard,
            token,
            step: Step::ReadingDesired,
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

    /// All workers answered: resend what is outstanding, diff the rest.
    fn plan_pass(&mut self, ctx: &mut Ctx<'_>, resource: String, attempt: u64) {
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
            work.outstanding
                .insert((resource.clone(), ordinal), outstanding.clone());
            self.send_act(ctx, &resource, attempt, &outstanding);
        }
        let pass = self.pass_mut(attempt).expect("the pass is live");
        pass.step = Step::Acting { waiting };
    }

    /// Nothing to do: write the status if it changed.
    fn converge(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        desired: Option<Desired>,
        stored: Option<Status>,
    ) {
        // A deleted resource with nothing running has no status to write:
        // the API deleted it.
        let Some(desired) = desired else {
            return self.finish_pass(ctx, resource, attempt, Outcome::Converged);
        };
        let status = Status {
            observed_generation: desired.generation,
            ready_replicas: desired.replicas,
        };
        if stored == Some(status) {
            return self.finish_pass(ctx, resource, attempt, Outcome::Converged);
        }
        let pass = self.pass_mut(attempt).expect("the pass is live");
        let (shard, token) = (pass.shard, pass.token);
        if !self.may_act(ctx, shard, token) {
            return self.abandon_pass(&resource, attempt);
        }
        let txn = Txn {
            compares: vec![
                Compare::ModRevisionEquals {
                    key: keys::shard(shard),
                    revision: token,
                },
                Compare::ModRevisionEquals {
                    key: keys::resource(&resource),
                    revision: desired.mod_revision,
                },
            ],
            success: vec![Op::Put {
                key: keys::status(&resource),
                value: Value::Status(status),
                lease: None,
            }],
            failure: vec![Op::Get {
                key: keys::shard(shard),
            }],
        };
        let purpose = Purpose::WriteStatus {
            resource,
            attempt,
            status,
        };
        self.send_store(ctx, StoreRequest::Txn(txn), purpose);
    }

    fn finish_pass(&mut self, ctx: &mut Ctx<'_>, resource: String, attempt: u64, outcome: Outcome) {
        assert!(
            self.passes.remove(&attempt).is_some(),
            "finishing a live pass"
        );
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
            self.queue.add(resource);
        }
    }

    fn fail_pass(&mut self, ctx: &mut Ctx<'_>, resource: &str, attempt: u64) {
        if self.pass_mut(attempt).is_some() {
            self.finish_pass(ctx, resource.to_string(), attempt, Outcome::Failed);
        }
    }

    /// The belief went away mid-pass: drop the pass, requeue nothing.
    fn abandon_pass(&mut self, resource: &str, attempt: u64) {
        self.passes.remove(&attempt);
        self.queue.done(resource);
    }

    fn schedule_requeue(&mut self, ctx: &mut Ctx<'_>, resource: String, delay_ms: u64) {
        if let Some(timer) = self.requeues.remove(&resource) {
            ctx.cancel_timer(timer);
        }
        let delay_ns = delay_ms.saturating_mul(MILLISECOND_NS);
        let timer = ctx.set_timer(delay_ns, Timer::Requeue(resource.clone()));
        self.requeues.insert(resource, timer);
    }
}

// Outputs.
impl ControllerNode {
    fn send_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: NodeId,
        purpose: Purpose,
        message: impl FnOnce(RequestId) -> Msg,
    ) {
        assert!(
            self.pending.len() < MAX_PENDING_REQUESTS,
            "controller requests in flight are bounded"
        );
        self.request_counter += 1;
        let id = request_id(ctx.boot(), self.request_counter);
        let timeout_ns = interval_ns(self.settings.request_timeout_ms);
        let timer = ctx.set_timer(timeout_ns, Timer::RequestTimeout(id));
        let pending = Pending {
            to,
            sent_at_ns: self.lease_clock_ns(ctx),
            timer,
            purpose,
        };
        self.pending.insert(id, pending);
        ctx.send(to, message(id));
    }

    fn send_store(&mut self, ctx: &mut Ctx<'_>, request: StoreRequest<Value>, purpose: Purpose) {
        let store = self.topology.store;
        self.send_request(ctx, store, purpose, |request_id| Msg::StoreRequest {
            request_id,
            request,
        });
    }

    /// The request a reply answers, if it is still awaited from `from`.
    /// Unknown ids are late (timed out), duplicated by the network, or
    /// from an earlier incarnation: all ignored.
    fn take_pending(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: RequestId) -> Option<Pending> {
        if self.pending.get(&id)?.to != from {
            return None;
        }
        let pending = self.pending.remove(&id)?;
        ctx.cancel_timer(pending.timer);
        Some(pending)
    }

    fn awaiting(&self, wanted: impl Fn(&Purpose) -> bool) -> bool {
        self.pending
            .values()
            .any(|pending| wanted(&pending.purpose))
    }

    fn watch(&mut self, ctx: &mut Ctx<'_>) {
        let prefix = keys::RESOURCES.to_string();
        ctx.send(self.topology.store, Msg::Watch { prefix });
    }

    fn grant_session(&mut self, ctx: &mut Ctx<'_>) {
        if self.awaiting(|purpose| matches!(purpose, Purpose::Grant)) {
            return;
        }
        let ttl_ms = self.settings.session_ttl_ms;
        self.send_store(ctx, StoreRequest::LeaseGrant { ttl_ms }, Purpose::Grant);
    }

    /// Puts my member key on the session, unless done or in flight.
    fn register(&mut self, ctx: &mut Ctx<'_>) {
        let Some(session) = &self.session else {
            return;
        };
        let lease = session.lease;
        if session.registered || self.awaiting(|p| matches!(p, Purpose::Register { .. })) {
            return;
        }
        let put = Op::Put {
            key: keys::member(ctx.id()),
            value: Value::Holder {
                controller: ctx.id(),
            },
            lease: Some(lease),
        };
        let request = StoreRequest::Txn(Txn::unconditional(vec![put]));
        self.send_store(ctx, request, Purpose::Register { lease });
    }

    /// One snapshot of members, shard keys and the leader key.
    fn read_membership(&mut self, ctx: &mut Ctx<'_>) {
        let registered = self.session.as_ref().is_some_and(|s| s.registered);
        if !registered || self.awaiting(|p| matches!(p, Purpose::Membership)) {
            return;
        }
        let ops = vec![
            Op::GetPrefix {
                prefix: keys::MEMBERS.to_string(),
            },
            Op::GetPrefix {
                prefix: keys::SHARDS.to_string(),
            },
            Op::Get {
                key: keys::LEADER.to_string(),
            },
        ];
        let request = StoreRequest::Txn(Txn::unconditional(ops));
        self.send_store(ctx, request, Purpose::Membership);
    }

    fn list_resources(&mut self, ctx: &mut Ctx<'_>) {
        if self.shards.is_empty() || self.awaiting(|p| matches!(p, Purpose::ListResources)) {
            return;
        }
        let ops = vec![Op::GetPrefix {
            prefix: keys::RESOURCES.to_string(),
        }];
        let request = StoreRequest::Txn(Txn::unconditional(ops));
        self.send_store(ctx, request, Purpose::ListResources);
    }

    fn send_fence(&mut self, ctx: &mut Ctx<'_>, shard: ShardId, token: u64, worker: NodeId) {
        if !self.may_act(ctx, shard, token) {
            return;
        }
        let purpose = Purpose::Fence {
            shard,
            token,
            worker,
        };
        self.send_request(ctx, worker, purpose, |request_id| Msg::Observe {
            request_id,
            shard,
            token,
            resource: None,
        });
    }

    /// A new action with a fresh id, addressed to the instance's worker.
    fn new_action(
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
            incarnation: ctx.boot(),
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

    fn send_act(
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
        self.send_request(ctx, outstanding.target, purpose, |request_id| Msg::Act {
            request_id,
            action,
        });
    }
}

// Pure helpers.

/// A timer interval in nanoseconds; never zero, so a periodic timer cannot
/// spin.
fn interval_ns(interval_ms: u64) -> u64 {
    interval_ms.max(1).saturating_mul(MILLISECOND_NS)
}

/// The controller named by a holder value.
fn holder(value: &Value) -> Option<NodeId> {
    match value {
        Value::Holder { controller } => Some(*controller),
        _ => None,
    }
}

/// The store key of a lease.
fn lease_key(lease: LeaseName) -> String {
    match lease {
        LeaseName::Shard(shard) => keys::shard(shard),
        LeaseName::Leader => keys::LEADER.to_string(),
    }
}

/// One membership read: everything a round decides on, at one revision.
struct Membership {
    members: Vec<NodeId>,
    /// Shard keys by key.
    shard_keys: BTreeMap<String, KeyValue<Value>>,
    leader: Option<KeyValue<Value>>,
    /// The store's revision when read.
    revision: u64,
}

/// The membership read, or `None` if the reply is not what was asked.
fn parse_membership(response: StoreResponse<Value>) -> Option<Membership> {
    let StoreResponse::Txn {
        succeeded: true,
        revision,
        results,
    } = response
    else {
        return None;
    };
    let [members, shard_keys, leader] = <[OpResult<Value>; 3]>::try_from(results).ok()?;
    let (OpResult::GotPrefix(members), OpResult::GotPrefix(shard_keys), OpResult::Got(leader)) =
        (members, shard_keys, leader)
    else {
        return None;
    };
    Some(Membership {
        members: members.iter().filter_map(|kv| holder(&kv.value)).collect(),
        shard_keys: shard_keys
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect(),
        leader,
        revision,
    })
}

/// The desired state and stored status a pass read, or `None` if the
/// reply is not what was asked.
fn parse_desired(response: StoreResponse<Value>) -> Option<(Option<Desired>, Option<Status>)> {
    let StoreResponse::Txn {
        succeeded: true,
        results,
        ..
    } = response
    else {
        return None;
    };
    let [resource, status] = <[OpResult<Value>; 2]>::try_from(results).ok()?;
    let (OpResult::Got(resource), OpResult::Got(status)) = (resource, status) else {
        return None;
    };
    let desired = match resource {
        None => None,
        Some(KeyValue {
            value: Value::Resource(resource),
            mod_revision,
            ..
        }) => Some(Desired {
            replicas: resource.spec.replicas,
            generation: resource.generation,
            mod_revision,
        }),
        Some(_) => return None,
    };
    let stored = match status {
        None => None,
        Some(KeyValue {
            value: Value::Status(status),
            ..
        }) => Some(status),
        Some(_) => return None,
    };
    Some((desired, stored))
}

/// The actions that move `resource` toward `desired` (replicas and
/// generation; `None` when deleted), at most one per ordinal and at most
/// `limit` in all, skipping the `busy` ordinals (those with an outstanding
/// action). Empty means converged.
fn diff(
    resource: &str,
    desired: Option<(u32, u64)>,
    instances: &[Instance],
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

/// Whether a queued key may be processed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    /// Its shard is believed and fenced.
    Ready,
    /// Its shard is believed but still fencing: keep it queued.
    Wait,
    /// Its shard is not believed: forget it.
    Drop,
}

/// client-go's work queue without its timers (the node owns those): a
/// deduplicated FIFO, the keys being processed, the keys that changed while
/// processed, and per-key failure counts for backoff.
#[derive(Debug, Default)]
struct WorkQueue {
    order: VecDeque<String>,
    queued: BTreeSet<String>,
    processing: BTreeSet<String>,
    dirty: BTreeSet<String>,
    failures: BTreeMap<String, u32>,
    /// Planted bug `no-workqueue-dedup`: a key being processed is queued
    /// (and handed out) again instead of being marked dirty.
    hand_out_processing: bool,
}

impl WorkQueue {
    /// Queues `key`, or marks it dirty if it is being processed. Dropped
    /// when the queue is full: the next resync brings it back.
    fn add(&mut self, key: String) {
        if self.processing.contains(&key) && !self.hand_out_processing {
            self.dirty.insert(key);
            return;
        }
        if self.queued.contains(&key) || self.order.len() >= MAX_QUEUED_KEYS {
            return;
        }
        self.queued.insert(key.clone());
        self.order.push_back(key);
        debug_assert_eq!(self.order.len(), self.queued.len());
    }

    /// The first ready key, now marked processing; keys that are to be
    /// dropped are removed on the way, waiting ones stay.
    fn pop_ready(&mut self, readiness: impl Fn(&str) -> Readiness) -> Option<String> {
        let mut index = 0;
        // Bounded: each round removes a key or moves past one.
        while index < self.order.len() {
            match readiness(&self.order[index]) {
                Readiness::Wait => index += 1,
                Readiness::Drop => {
                    let key = self.order.remove(index).expect("index in range");
                    self.queued.remove(&key);
                }
                Readiness::Ready => {
                    let key = self.order.remove(index).expect("index in range");
                    self.queued.remove(&key);
                    let fresh = self.processing.insert(key.clone());
                    assert!(fresh || self.hand_out_processing, "not processed twice");
                    return Some(key);
                }
            }
        }
        None
    }

    /// Ends processing of `key`; true if it was added meanwhile and must
    /// be queued again.
    fn done(&mut self, key: &str) -> bool {
        self.processing.remove(key);
        self.dirty.remove(key)
    }

    /// Resets `key`'s backoff.
    fn forget(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Counts a failure of `key` and returns its next delay:
    /// `base_ms * 2^(failures - 1)`, at most `cap_ms`.
    fn backoff_ms(&mut self, key: &str, base_ms: u64, cap_ms: u64) -> u64 {
        let failures = self.failures.entry(key.to_string()).or_insert(0);
        *failures = failures.saturating_add(1);
        let doublings = (*failures - 1).min(62);
        base_ms.saturating_mul(1 << doublings).min(cap_ms)
    }

    /// Keeps only the keys `keep` accepts, everywhere.
    fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.order.retain(|key| keep(key));
        self.queued.retain(|key| keep(key));
        self.processing.retain(|key| keep(key));
        self.dirty.retain(|key| keep(key));
        self.failures.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{InstanceId, Resource, Spec};
    use crate::store::KvStore;
    use node::testing::{Harness, Output};

    const STORE: NodeId = NodeId(0);
    const ME: NodeId = NodeId(2);
    const OTHER: NodeId = NodeId(3);
    const WORKERS: [NodeId; 2] = [NodeId(4), NodeId(5)];
    const MS: u64 = MILLISECOND_NS;

    fn topology() -> Topology {
        Topology {
            store: STORE,
            billing: NodeId(1),
            apis: vec![],
            controllers: vec![ME, OTHER],
            workers: WORKERS.to_vec(),
            clients: vec![],
        }
    }

    /// Few shards and a session that outlives every test unless a test
    /// shortens it.
    fn settings() -> ControllerSettings {
        ControllerSettings {
            shard_count: 4,
            session_ttl_ms: 60_000,
            ..ControllerSettings::default()
        }
    }

    /// Plays the workers: fences per (worker, shard), deduplicates action
    /// ids, runs starts and stops.
    #[derive(Default)]
    struct Workers {
        instances: Vec<Instance>,
        highest: BTreeMap<(NodeId, ShardId), u64>,
        executed: BTreeMap<ActionId, ActionOutcome>,
        next_sequence: u64,
    }

    impl Workers {
        fn running(&mut self, worker: NodeId, resource: &str, ordinal: u32, generation: u64) {
            self.next_sequence += 1;
            self.instances.push(Instance {
                id: InstanceId {
                    worker,
                    sequence: self.next_sequence,
                },
                resource: resource.to_string(),
                ordinal,
                generation,
                shard: shard_of(resource, settings().shard_count),
            });
        }

        fn fence(&mut self, worker: NodeId, shard: ShardId, token: u64) -> Result<(), u64> {
            let highest = self.highest.entry((worker, shard)).or_insert(0);
            if token < *highest {
                return Err(*highest);
            }
            *highest = token;
            Ok(())
        }

        fn reply(&mut self, worker: NodeId, message: &Msg) -> Msg {
            match message {
                Msg::Observe {
                    request_id,
                    shard,
                    token,
                    resource,
                } => {
                    let instances = self.fence(worker, *shard, *token).map(|()| {
                        let wanted = |i: &&Instance| {
                            i.id.worker == worker
                                && i.shard == *shard
                                && resource.as_ref().is_none_or(|r| *r == i.resource)
                        };
                        self.instances.iter().filter(wanted).cloned().collect()
                    });
                    Msg::Observed {
                        request_id: *request_id,
                        instances,
                    }
                }
                Msg::Act { request_id, action } => Msg::Acted {
                    request_id: *request_id,
                    action_id: action.id,
                    outcome: self.act(worker, action),
                },
                other => panic!("not for a worker: {other:?}"),
            }
        }

        fn act(&mut self, worker: NodeId, action: &Action) -> ActionOutcome {
            if let Some(outcome) = self.executed.get(&action.id) {
                return outcome.clone();
            }
            if let Err(highest_token) = self.fence(worker, action.shard, action.token) {
                return ActionOutcome::Rejected { highest_token };
            }
            let outcome = match &action.kind {
                ActionKind::Start {
                    resource,
                    ordinal,
                    generation,
                } => {
                    self.running(worker, resource, *ordinal, *generation);
                    let instance = self.instances.last().unwrap().id;
                    ActionOutcome::Started { instance }
                }
                ActionKind::Stop { instance } => {
                    let before = self.instances.len();
                    self.instances.retain(|i| i.id != *instance);
                    if self.instances.len() < before {
                        ActionOutcome::Stopped
                    } else {
                        ActionOutcome::NotFound
                    }
                }
            };
            self.executed.insert(action.id, outcome.clone());
            outcome
        }
    }

    /// One controller in a harness, its store served from a real
    /// `KvStore`, its worker messages collected for the test to answer.
    struct Rig {
        harness: Harness<ControlPlane>,
        settings: ControllerSettings,
        store: KvStore<Value>,
        to_store: VecDeque<(RequestId, StoreRequest<Value>)>,
        to_workers: Vec<(NodeId, Msg)>,
        records: Vec<Event>,
        /// Timers set, with their delays.
        timers: Vec<(u64, Timer)>,
        /// When true, store requests wait for `serve_one`.
        manual_store: bool,
        /// When true, every store reply is delivered twice.
        duplicate_replies: bool,
    }

    impl Rig {
        fn new(settings: ControllerSettings) -> Self {
            let node = ControllerNode::new(topology(), settings.clone());
            Self {
                harness: Harness::new(7, ME, Box::new(node)),
                settings,
                store: KvStore::default(),
                to_store: VecDeque::new(),
                to_workers: Vec::new(),
                records: Vec::new(),
                timers: Vec::new(),
                manual_store: false,
                duplicate_replies: false,
            }
        }

        fn now_ms(&self) -> u64 {
            self.harness.now_ns() / MS
        }

        /// Takes a handler's output in; returns what it recorded.
        fn absorb(&mut self, out: Output<ControlPlane>) -> Vec<Event> {
            for (to, message) in out.sent {
                match message {
                    Msg::StoreRequest {
                        request_id,
                        request,
                    } => {
                        assert_eq!(to, STORE);
                        self.to_store.push_back((request_id, request));
                    }
                    Msg::Watch { .. } => assert_eq!(to, STORE),
                    other => self.to_workers.push((to, other)),
                }
            }
            self.timers
                .extend(out.timers.into_iter().map(|(_, delay, tag)| (delay, tag)));
            self.records.extend(out.records.iter().cloned());
            if !self.manual_store {
                self.settle();
            }
            out.records
        }

        /// Serves the oldest store request; returns what its reply's
        /// handler recorded.
        fn serve_one(&mut self) -> Option<Vec<Event>> {
            let (request_id, request) = self.to_store.pop_front()?;
            let response = self.store.apply(self.now_ms(), request);
            let reply = Msg::StoreReply {
                request_id,
                response,
            };
            if self.duplicate_replies {
                let out = self.harness.deliver(STORE, reply.clone());
                self.absorb(out);
            }
            let out = self.harness.deliver(STORE, reply);
            Some(self.absorb(out))
        }

        fn settle(&mut self) {
            for _ in 0..10_000 {
                if self.serve_one().is_none() {
                    return;
                }
            }
            panic!("the store traffic does not settle");
        }

        fn start(&mut self) {
            let out = self.harness.start();
            self.absorb(out);
        }

        fn deliver(&mut self, from: NodeId, message: Msg) -> Vec<Event> {
            let out = self.harness.deliver(from, message);
            self.absorb(out)
        }

        fn fire(&mut self, wanted: impl Fn(&Timer) -> bool) -> Vec<Event> {
            let out = self
                .harness
                .fire_timer(wanted)
                .expect("the timer is pending");
            self.absorb(out)
        }

        /// Answers worker messages that `answer` selects, and those their
        /// replies cause, until none is left; the others stay queued.
        fn pump(&mut self, workers: &mut Workers, answer: impl Fn(NodeId, &Msg) -> bool) {
            for _ in 0..10_000 {
                let Some(index) = self.to_workers.iter().position(|(to, m)| answer(*to, m)) else {
                    return;
                };
                let (worker, message) = self.to_workers.remove(index);
                let reply = workers.reply(worker, &message);
                self.deliver(worker, reply);
            }
            panic!("the worker traffic does not settle");
        }

        fn put(&mut self, key: String, value: Value) {
            let put = Op::Put {
                key,
                value,
                lease: None,
            };
            let request = StoreRequest::Txn(Txn::unconditional(vec![put]));
            let response = self.store.apply(self.now_ms(), request);
            assert!(matches!(
                response,
                StoreResponse::Txn {
                    succeeded: true,
                    ..
                }
            ));
        }

        fn put_resource(&mut self, id: &str, replicas: u32, generation: u64) {
            let resource = Resource {
                id: id.to_string(),
                name: id.to_string(),
                spec: Spec { replicas, image: 1 },
                generation,
            };
            self.put(keys::resource(id), Value::Resource(resource));
        }

        fn acts(&self) -> Vec<(NodeId, RequestId, Action)> {
            let acts = self.to_workers.iter().filter_map(|(to, m)| match m {
                Msg::Act { request_id, action } => Some((*to, *request_id, action.clone())),
                _ => None,
            });
            acts.collect()
        }

        fn pass_observes(&self) -> Vec<RequestId> {
            let observes = self.to_workers.iter().filter_map(|(_, m)| match m {
                Msg::Observe {
                    request_id,
                    resource: Some(_),
                    ..
                } => Some(*request_id),
                _ => None,
            });
            observes.collect()
        }

        /// The token of every lease believed now, by the records.
        fn beliefs(&self) -> BTreeMap<LeaseName, u64> {
            let mut beliefs = BTreeMap::new();
            for record in &self.records {
                match record {
                    Event::BeliefStarted { lease, token } => {
                        assert!(beliefs.insert(*lease, *token).is_none(), "{lease:?} twice");
                    }
                    Event::BeliefEnded { lease, token, .. } => {
                        assert_eq!(beliefs.remove(lease), Some(*token), "{lease:?} ended");
                    }
                    _ => {}
                }
            }
            beliefs
        }

        fn shard_token(&self, resource: &str) -> u64 {
            let shard = shard_of(resource, self.settings.shard_count);
            self.beliefs()[&LeaseName::Shard(shard)]
        }

        fn ended(&self) -> Vec<(LeaseName, u64, BeliefEnd)> {
            let ended = self.records.iter().filter_map(|r| match r {
                Event::BeliefEnded {
                    lease,
                    token,
                    reason,
                } => Some((*lease, *token, *reason)),
                _ => None,
            });
            ended.collect()
        }
    }

    fn is_observe(message: &Msg) -> bool {
        matches!(message, Msg::Observe { .. })
    }

    fn is_fence(message: &Msg) -> bool {
        matches!(message, Msg::Observe { resource: None, .. })
    }

    fn all_leases(shard_count: u32) -> BTreeSet<LeaseName> {
        let shards = (0..shard_count).map(|s| LeaseName::Shard(ShardId(s)));
        shards.chain([LeaseName::Leader]).collect()
    }

    /// A rig holding every shard, fenced, with `r1` desired at `replicas`.
    fn fenced_rig(replicas: u32, workers: &mut Workers) -> Rig {
        let mut rig = Rig::new(settings());
        rig.put_resource("r1", replicas, 1);
        rig.start();
        rig.pump(workers, |_, m| is_fence(m));
        rig
    }

    #[test]
    fn registers_and_acquires_exactly_the_rendezvous_assigned_shards_and_the_leader() {
        let settings = ControllerSettings {
            shard_count: 8,
            ..settings()
        };
        let mut rig = Rig::new(settings);
        rig.put(keys::member(OTHER), Value::Holder { controller: OTHER });
        rig.start();
        let mine: BTreeSet<LeaseName> = (0..8)
            .map(ShardId)
            .filter(|&s| rendezvous_owner(s, &[ME, OTHER]) == Some(ME))
            .map(LeaseName::Shard)
            .chain([LeaseName::Leader])
            .collect();
        assert!(mine.len() > 1 && mine.len() < 9, "the test needs a split");
        let acquired: BTreeMap<LeaseName, u64> = rig
            .records
            .iter()
            .filter_map(|r| match r {
                Event::LeaseAcquired { lease, token } => Some((*lease, *token)),
                _ => None,
            })
            .collect();
        assert_eq!(acquired.keys().copied().collect::<BTreeSet<_>>(), mine);
        assert_eq!(rig.beliefs(), acquired);
        for (lease, token) in acquired {
            let kv = rig.store.get(&lease_key(lease)).expect("the key is held");
            assert_eq!((holder(&kv.value), kv.mod_revision), (Some(ME), token));
        }
        let member = rig.store.get(&keys::member(ME)).expect("registered");
        assert_eq!(member.value, Value::Holder { controller: ME });
        assert!(member.lease.is_some(), "membership hangs on the session");
    }

    #[test]
    fn stops_acting_once_validity_passed_without_a_keepalive_reply() {
        let settings = ControllerSettings {
            session_ttl_ms: 2_000,
            ..settings()
        };
        let validity_ms = settings.lease_validity_ms();
        let mut rig = Rig::new(settings);
        rig.put_resource("r1", 1, 1);
        rig.start();
        let mut workers = Workers::default();
        rig.pump(&mut workers, |_, m| is_fence(m));
        assert_eq!(
            rig.pass_observes().len(),
            WORKERS.len(),
            "a pass is observing"
        );
        let believed = rig.beliefs();
        assert_eq!(
            believed.keys().copied().collect::<BTreeSet<_>>(),
            all_leases(4)
        );
        // No tick fires: no keep-alive is sent, let alone answered.
        rig.harness.advance(validity_ms * MS);
        rig.pump(&mut workers, |_, m| is_observe(m));
        assert!(rig.acts().is_empty(), "no action after validity passed");
        let expired: BTreeMap<LeaseName, u64> = rig
            .ended()
            .into_iter()
            .map(|(lease, token, reason)| {
                assert_eq!(reason, BeliefEnd::Expired);
                (lease, token)
            })
            .collect();
        assert_eq!(expired, believed, "every belief ended once, Expired");
        assert!(rig.beliefs().is_empty());
    }

    #[test]
    fn validity_counts_from_when_the_keepalive_was_sent() {
        let settings = ControllerSettings {
            session_ttl_ms: 2_000,
            ..settings()
        };
        let validity_ms = settings.lease_validity_ms();
        let keepalive_ms = settings.keepalive_interval_ms;
        let mut rig = Rig::new(settings);
        rig.start(); // The grant is sent at 0.
        rig.manual_store = true;
        rig.fire(|t| *t == Timer::Tick);
        assert_eq!(rig.now_ms(), keepalive_ms);
        assert!(matches!(
            rig.to_store.back(),
            Some((_, StoreRequest::LeaseKeepAlive { .. }))
        ));
        // The reply comes late, and does extend validity past the grant's.
        rig.harness.advance(validity_ms / 2 * MS);
        rig.serve_one();
        rig.harness
            .advance((validity_ms + 1) * MS - rig.harness.now_ns());
        rig.fire(|t| *t == Timer::Tick);
        assert!(rig.ended().is_empty(), "renewed by the keep-alive");
        // But only from when it was sent, not from when it was answered.
        rig.fire(|t| *t == Timer::Custom(VALIDITY_TIMER));
        assert_eq!(rig.now_ms(), keepalive_ms + validity_ms);
        assert_eq!(rig.ended().len(), all_leases(4).len());
        assert!(rig.ended().iter().all(|(_, _, r)| *r == BeliefEnd::Expired));
    }

    #[test]
    fn with_the_no_drift_margin_bug_validity_runs_the_full_ttl_from_the_reply() {
        let settings = ControllerSettings {
            session_ttl_ms: 2_000,
            bugs: [Bug::LeaseNoDriftMargin].into(),
            ..settings()
        };
        let (ttl_ms, keepalive_ms) = (settings.session_ttl_ms, settings.keepalive_interval_ms);
        let mut rig = Rig::new(settings);
        rig.start();
        rig.manual_store = true;
        rig.fire(|t| *t == Timer::Tick);
        let reply_ms = keepalive_ms + 300;
        rig.harness.advance(300 * MS);
        rig.serve_one();
        rig.fire(|t| *t == Timer::Custom(VALIDITY_TIMER));
        assert_eq!(rig.now_ms(), reply_ms + ttl_ms, "past the store's expiry");
        assert_eq!(rig.ended().len(), all_leases(4).len());
    }

    #[test]
    fn with_the_act_after_renew_failure_bug_beliefs_outlive_every_deadline() {
        let settings = ControllerSettings {
            session_ttl_ms: 2_000,
            bugs: [Bug::ActAfterRenewFailure].into(),
            ..settings()
        };
        let ttl_ms = settings.session_ttl_ms;
        let mut rig = Rig::new(settings);
        rig.start();
        let believed = rig.beliefs();
        assert!(!believed.is_empty());
        // Keep-alives go unanswered for three TTLs.
        rig.manual_store = true;
        rig.harness.advance(3 * ttl_ms * MS);
        rig.fire(|t| *t == Timer::Tick);
        assert!(rig.ended().is_empty(), "nobody told it the lease is gone");
        assert_eq!(rig.beliefs(), believed);
    }

    #[test]
    fn fences_every_worker_before_the_first_action_of_a_shard() {
        let mut rig = Rig::new(settings());
        rig.put_resource("r1", 1, 1);
        rig.start();
        let beliefs = rig.beliefs();
        let fences: BTreeSet<(NodeId, ShardId, u64)> = rig
            .to_workers
            .iter()
            .filter_map(|(to, m)| match m {
                Msg::Observe {
                    shard,
                    token,
                    resource: None,
                    ..
                } => Some((*to, *shard, *token)),
                _ => None,
            })
            .collect();
        let expected: BTreeSet<(NodeId, ShardId, u64)> = (0..4)
            .map(ShardId)
            .flat_map(|s| WORKERS.map(|w| (w, s, beliefs[&LeaseName::Shard(s)])))
            .collect();
        assert_eq!(fences, expected);
        let mut workers = Workers::default();
        rig.pump(&mut workers, |to, m| to == WORKERS[0] && is_fence(m));
        // A change arrives while one worker is not fenced yet: it waits.
        rig.deliver(STORE, changed("r1"));
        assert!(rig.pass_observes().is_empty() && rig.acts().is_empty());
        rig.pump(&mut workers, |_, m| is_observe(m));
        assert_eq!(rig.acts().len(), 1, "acts once every worker is fenced");
    }

    #[test]
    fn a_pass_starts_missing_ordinals_with_the_shard_token() {
        let mut workers = Workers::default();
        let mut rig = fenced_rig(2, &mut workers);
        rig.pump(&mut workers, |_, m| is_observe(m));
        let token = rig.shard_token("r1");
        let mut acts = rig.acts();
        acts.sort_by_key(|(_, _, action)| action.id);
        assert_eq!(acts.len(), 2);
        for (ordinal, (to, _, action)) in (0u32..).zip(acts) {
            let start = ActionKind::Start {
                resource: "r1".to_string(),
                ordinal,
                generation: 1,
            };
            assert_eq!(action.kind, start);
            assert_eq!((action.shard, action.token), (shard_of("r1", 4), token));
            assert_eq!(to, topology().worker_for("r1", ordinal));
            assert_eq!((action.id.controller, action.id.incarnation), (ME, 0));
        }
    }

    #[test]
    fn an_unacknowledged_start_is_resent_with_the_same_action_id() {
        let mut workers = Workers::default();
        let mut rig = fenced_rig(1, &mut workers);
        rig.pump(&mut workers, |_, m| is_observe(m));
        let [(to, first_request, first)] = rig.acts().try_into().unwrap();
        rig.to_workers.clear(); // The Start is lost.
        rig.fire(|t| *t == Timer::RequestTimeout(first_request));
        rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
        rig.pump(&mut workers, |_, m| is_observe(m));
        let [(to_again, request, again)] = rig.acts().try_into().unwrap();
        assert_eq!((to_again, &again), (to, &first), "the same action again");
        assert_ne!(request, first_request, "in a new request");
        // Once acknowledged, the ordinal is diffed again: it runs, so the
        // pass converges and writes the status.
        rig.pump(&mut workers, |_, _| true);
        rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
        rig.pump(&mut workers, |_, _| true);
        assert_eq!(workers.instances.len(), 1);
        let status = Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        let token = rig.shard_token("r1");
        assert!(rig.records.iter().any(|record| matches!(record,
            Event::StatusWritten { resource, status: written, token: used, revision }
                if resource == "r1" && *written == status && *used == token && *revision > token)));
    }

    #[test]
    fn a_generation_change_stops_before_starting() {
        let mut workers = Workers::default();
        workers.running(topology().worker_for("r1", 0), "r1", 0, 1);
        let old = workers.instances[0].id;
        let mut rig = Rig::new(settings());
        rig.put_resource("r1", 1, 2);
        rig.start();
        rig.pump(&mut workers, |_, m| is_observe(m));
        let [(_, _, stop)] = rig.acts().try_into().unwrap();
        assert_eq!(stop.kind, ActionKind::Stop { instance: old });
        rig.pump(&mut workers, |_, m| matches!(m, Msg::Act { .. }));
        assert!(workers.instances.is_empty(), "stopped, nothing started yet");
        assert!(rig.acts().is_empty());
        // The verifying pass (here at once: the listing made the key dirty
        // while the first pass ran) sees nothing running and starts.
        if rig.pass_observes().is_empty() {
            rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
        }
        rig.pump(&mut workers, |_, m| is_observe(m));
        let [(_, _, start)] = rig.acts().try_into().unwrap();
        let kind = ActionKind::Start {
            resource: "r1".to_string(),
            ordinal: 0,
            generation: 2,
        };
        assert_eq!(start.kind, kind);
    }

    #[test]
    fn a_rejected_outcome_ends_the_belief_with_fenced() {
        let mut workers = Workers::default();
        let mut rig = fenced_rig(1, &mut workers);
        rig.pump(&mut workers, |_, m| is_observe(m));
        let token = rig.shard_token("r1");
        let [(to, request_id, action)] = rig.acts().try_into().unwrap();
        rig.to_workers.clear();
        let rejected = Msg::Acted {
            request_id,
            action_id: action.id,
            outcome: ActionOutcome::Rejected {
                highest_token: token + 10,
            },
        };
        rig.deliver(to, rejected);
        let shard = LeaseName::Shard(shard_of("r1", 4));
        assert_eq!(rig.ended(), vec![(shard, token, BeliefEnd::Fenced)]);
        // Nothing more happens for the resource.
        rig.deliver(STORE, changed("r1"));
        assert!(rig.to_workers.is_empty());
        let requeue = Timer::Requeue("r1".to_string());
        assert!(!rig.harness.pending_timers().contains(&requeue));
    }

    fn changed(resource: &str) -> Msg {
        Msg::Changed {
            key: keys::resource(resource),
            revision: 1_000,
        }
    }

    #[test]
    fn failed_passes_back_off_exponentially_up_to_the_cap() {
        let settings = ControllerSettings {
            backoff_base_ms: 50,
            backoff_cap_ms: 300,
            ..settings()
        };
        let mut rig = Rig::new(settings);
        rig.put_resource("r1", 1, 1);
        rig.start();
        let mut workers = Workers::default();
        rig.pump(&mut workers, |_, m| is_fence(m));
        let mut delays_ms = Vec::new();
        for _ in 0..5 {
            let observes = rig.pass_observes();
            rig.to_workers.clear(); // The workers do not answer.
            rig.timers.clear();
            let recorded =
                rig.fire(|t| matches!(t, Timer::RequestTimeout(id) if observes.contains(id)));
            let [Event::BackoffEngaged { delay_ms, .. }] = recorded[..] else {
                panic!("expected one backoff, got {recorded:?}");
            };
            let requeue = (delay_ms * MS, Timer::Requeue("r1".to_string()));
            assert!(rig.timers.contains(&requeue), "requeued after the delay");
            delays_ms.push(delay_ms);
            rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
        }
        assert_eq!(delays_ms, [50, 100, 200, 300, 300]);
        // A pass that gets through resets the backoff.
        rig.pump(&mut workers, |_, _| true);
        rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
        let observes = rig.pass_observes();
        let recorded =
            rig.fire(|t| matches!(t, Timer::RequestTimeout(id) if observes.contains(id)));
        assert!(matches!(
            recorded[..],
            [Event::BackoffEngaged { delay_ms: 50, .. }]
        ));
    }

    #[test]
    fn a_released_shard_belief_ends_before_its_key_is_deleted() {
        let settings = ControllerSettings {
            shard_count: 8,
            ..settings()
        };
        let mut rig = Rig::new(settings);
        rig.start();
        let mut workers = Workers::default();
        rig.pump(&mut workers, |_, m| is_fence(m));
        let before = rig.beliefs();
        rig.put(keys::member(OTHER), Value::Holder { controller: OTHER });
        rig.manual_store = true;
        rig.fire(|t| *t == Timer::Custom(MEMBERSHIP_TIMER));
        let recorded = rig.serve_one().expect("the membership read");
        let moved: BTreeSet<ShardId> = (0..8)
            .map(ShardId)
            .filter(|&s| rendezvous_owner(s, &[ME, OTHER]) == Some(OTHER))
            .collect();
        assert!(!moved.is_empty());
        // The new membership is recorded once, for the cost checker.
        let observed: Vec<&Event> = recorded
            .iter()
            .filter(|r| matches!(r, Event::MembershipObserved { .. }))
            .collect();
        assert!(
            matches!(observed[..], [Event::MembershipObserved { members, .. }] if *members == vec![ME, OTHER])
        );
        let released: BTreeSet<ShardId> = recorded
            .iter()
            .filter(|r| !matches!(r, Event::MembershipObserved { .. }))
            .map(|r| match r {
                Event::BeliefEnded {
                    lease: LeaseName::Shard(shard),
                    token,
                    reason: BeliefEnd::Released,
                } => {
                    assert_eq!(before[&LeaseName::Shard(*shard)], *token);
                    *shard
                }
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(released, moved);
        // The deletes are sent, not applied: the keys still exist while
        // nothing is done for those shards any more.
        assert_eq!(rig.to_store.len(), moved.len());
        for &shard in &moved {
            assert!(rig.store.get(&keys::shard(shard)).is_some());
        }
        let resource = (0..100)
            .map(|i| format!("r{i}"))
            .find(|r| moved.contains(&shard_of(r, 8)))
            .unwrap();
        rig.put_resource(&resource, 1, 1);
        rig.deliver(STORE, changed(&resource));
        assert_eq!(
            rig.to_store.len(),
            moved.len(),
            "no pass for a released shard"
        );
        rig.settle();
        for &shard in &moved {
            assert!(
                rig.store.get(&keys::shard(shard)).is_none(),
                "{shard} deleted"
            );
        }
    }

    #[test]
    fn a_converged_pass_writes_the_status_fenced_by_the_shard_token() {
        let mut workers = Workers::default();
        workers.running(topology().worker_for("r1", 0), "r1", 0, 1);
        let mut rig = fenced_rig(1, &mut workers);
        rig.pump(&mut workers, |_, m| is_observe(m));
        assert!(rig.acts().is_empty());
        let status = Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        let stored = rig.store.get(&keys::status("r1")).unwrap();
        let written = Event::StatusWritten {
            resource: "r1".to_string(),
            status,
            token: rig.shard_token("r1"),
            revision: stored.mod_revision,
        };
        assert_eq!(rig.records.iter().filter(|r| **r == written).count(), 1);
        assert_eq!(stored.value, Value::Status(status));
    }

    #[test]
    fn a_status_write_refused_by_the_store_ends_the_belief_lost() {
        let mut workers = Workers::default();
        workers.running(topology().worker_for("r1", 0), "r1", 0, 1);
        let mut rig = fenced_rig(1, &mut workers);
        let token = rig.shard_token("r1");
        let shard = shard_of("r1", 4);
        // Another controller took the shard key meanwhile.
        rig.put(keys::shard(shard), Value::Holder { controller: OTHER });
        rig.pump(&mut workers, |_, m| is_observe(m));
        assert!(
            !rig.records
                .iter()
                .any(|r| matches!(r, Event::StatusWritten { .. }))
        );
        let lease = LeaseName::Shard(shard);
        assert_eq!(rig.ended(), vec![(lease, token, BeliefEnd::Lost)]);
    }

    #[test]
    fn a_lost_session_ends_every_belief_and_starts_over() {
        let mut rig = Rig::new(settings());
        rig.start();
        let before = rig.beliefs();
        let lease = rig.store.get(&keys::member(ME)).unwrap().lease.unwrap();
        rig.store
            .apply(rig.now_ms(), StoreRequest::LeaseRevoke { lease });
        rig.fire(|t| *t == Timer::Tick);
        let lost: BTreeMap<LeaseName, u64> = rig
            .ended()
            .into_iter()
            .map(|(lease, token, reason)| {
                assert_eq!(reason, BeliefEnd::Lost);
                (lease, token)
            })
            .collect();
        assert_eq!(lost, before);
        // A new session registered and took everything back, newer tokens.
        let member = rig.store.get(&keys::member(ME)).expect("registered again");
        assert_ne!(member.lease, Some(lease));
        let after = rig.beliefs();
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>()
        );
        assert!(after.iter().all(|(lease, token)| *token > before[lease]));
    }

    #[test]
    fn a_restarted_controller_adopts_its_keys_with_fresh_tokens() {
        let mut rig = Rig::new(settings());
        rig.start();
        let before = rig.beliefs();
        let old_session = rig.store.get(&keys::member(ME)).unwrap().lease;
        rig.records.clear();
        let node = ControllerNode::new(topology(), settings());
        let out = rig.harness.restart(Box::new(node));
        rig.to_store.clear(); // Requests of the dead incarnation.
        rig.absorb(out);
        let after = rig.beliefs();
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>()
        );
        for (lease, token) in &after {
            assert!(*token > before[lease], "{lease:?} gets a fresh token");
            let kv = rig.store.get(&lease_key(*lease)).unwrap();
            assert_eq!(kv.mod_revision, *token);
            assert_ne!(kv.lease, old_session, "moved onto the new session");
        }
    }

    #[test]
    fn duplicated_store_replies_start_each_belief_once() {
        let mut rig = Rig::new(settings());
        rig.duplicate_replies = true;
        rig.start();
        let acquired = rig
            .records
            .iter()
            .filter(|r| matches!(r, Event::LeaseAcquired { .. }))
            .count();
        assert_eq!(acquired, all_leases(4).len());
        // `beliefs` panics on a belief started twice.
        assert_eq!(
            rig.beliefs().keys().copied().collect::<BTreeSet<_>>(),
            all_leases(4)
        );
    }

    fn instance(sequence: u64, ordinal: u32, generation: u64) -> Instance {
        Instance {
            id: InstanceId {
                worker: WORKERS[0],
                sequence,
            },
            resource: "r".to_string(),
            ordinal,
            generation,
            shard: ShardId(0),
        }
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

    #[test]
    fn the_work_queue_never_processes_a_key_twice_and_requeues_dirty_keys() {
        let mut queue = WorkQueue::default();
        queue.add("a".into());
        queue.add("a".into());
        queue.add("b".into());
        assert_eq!(queue.pop_ready(|_| Readiness::Ready).as_deref(), Some("a"));
        queue.add("a".into()); // While processing: dirty, not queued.
        assert_eq!(queue.pop_ready(|_| Readiness::Ready).as_deref(), Some("b"));
        assert_eq!(queue.pop_ready(|_| Readiness::Ready), None);
        assert!(queue.done("a"), "dirty: queue it again");
        assert!(!queue.done("b"));
        queue.add("a".into());
        queue.add("c".into());
        let ready = |key: &str| {
            if key == "a" {
                Readiness::Wait
            } else {
                Readiness::Ready
            }
        };
        assert_eq!(queue.pop_ready(ready).as_deref(), Some("c"));
        assert_eq!(queue.pop_ready(|_| Readiness::Drop), None);
        assert!(queue.order.is_empty() && queue.queued.is_empty());
    }

    #[test]
    fn with_the_no_dedup_bug_the_queue_hands_out_a_key_being_processed() {
        let mut queue = WorkQueue {
            hand_out_processing: true,
            ..WorkQueue::default()
        };
        queue.add("a".into());
        assert_eq!(queue.pop_ready(|_| Readiness::Ready).as_deref(), Some("a"));
        queue.add("a".into());
        assert_eq!(queue.pop_ready(|_| Readiness::Ready).as_deref(), Some("a"));
        assert!(!queue.done("a"), "nothing marked dirty");
    }
}
