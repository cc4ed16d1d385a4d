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
//!   boot, which will expire and take the key with it, and a release
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
//! boot, so a restarted controller starts from scratch and reclaims
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
//!
//! # Modules
//!
//! | module | what it owns |
//! |---|---|
//! | this one | the node, its inputs and requests |
//! | `validity` | the session lease (`crate::session`) and the validity gate |
//! | `leases` | membership, shard and leader leases, beliefs and fencing |
//! | `workqueue` | the client-go work queue |
//! | `reconcile` | one pass: read, observe, diff, act |
//! | `status` | the fenced status write of a converged pass |
//! | `decode` | each store reply, typed |

mod decode;
mod leases;
mod reconcile;
mod status;
#[cfg(test)]
mod tests;
mod validity;
mod workqueue;

use std::collections::{BTreeMap, BTreeSet};

use node::{Context, Digested, MILLISECOND_NS, Node, NodeId, TimerId};

use crate::config::{Bug, ControllerSettings, Topology};
use crate::protocol::{
    ActionId, BeliefEnd, ControlPlane, Instance, LeaseName, Msg, RequestId, Status, Timer, Value,
    keys,
};
use crate::requests::Requests;
use crate::session::{self, SessionLease};
use crate::shard::ShardId;
use crate::store::{LeaseId, StoreError, StoreRequest, StoreResponse};
use reconcile::{Pass, ShardWork};
use workqueue::WorkQueue;

type Ctx<'a> = Context<'a, ControlPlane>;

/// `Timer::Custom(VALIDITY_TIMER)`: the lease validity deadline is due.
pub(crate) const VALIDITY_TIMER: u64 = 1;
/// `Timer::Custom(MEMBERSHIP_TIMER)`: time for a membership round.
const MEMBERSHIP_TIMER: u64 = 2;

/// A controller: leases, shards and reconciliation. See the module docs.
pub struct ControllerNode {
    topology: Topology,
    settings: ControllerSettings,
    /// Volatile counters; the boot in the ids keeps them unique.
    action_counter: u64,
    attempt_counter: u64,
    /// Every request in flight, with what it was for.
    requests: Requests<Purpose>,
    /// The session lease, counted on for the validity window from each
    /// proof's send, on the lease clock (see `validity`).
    session: SessionLease,
    /// The member key is on the current session.
    registered: bool,
    /// Fires at the end of the validity window.
    validity_timer: Option<TimerId>,
    /// Leases believed held, with their tokens.
    beliefs: BTreeMap<LeaseName, u64>,
    /// Per believed shard: fence progress and outstanding actions.
    shards: BTreeMap<ShardId, ShardWork>,
    /// The sequence numbers of every believed shard's outstanding actions,
    /// by the worker each went to: what this boot has not settled with
    /// that worker, told on every `Observe` and `Act`. Mirrors the
    /// shards' `outstanding` (see `reconcile::index_outstanding`), so a
    /// message need not walk them all.
    unsettled: BTreeMap<NodeId, BTreeSet<u64>>,
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

/// What a request was for, which says how to read its reply.
#[derive(Debug)]
enum Purpose {
    /// `sent_at_ns` on the lease clock: a grant proves the lease from then.
    Grant {
        sent_at_ns: u64,
    },
    /// `sent_at_ns` on the lease clock: a renewal proves the lease from
    /// then.
    KeepAlive {
        lease: LeaseId,
        sent_at_ns: u64,
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

impl ControllerNode {
    /// A controller that learns its id from the context; `topology` names
    /// the store and the workers, `settings` its intervals and limits.
    pub fn new(topology: Topology, settings: ControllerSettings) -> Self {
        assert!(settings.shard_count > 0, "a controller needs shards");
        let bugs = ControllerBugs::of(&settings);
        Self {
            action_counter: 0,
            attempt_counter: 0,
            // Request ids count from 1, as they always have here.
            requests: Requests::new(1, interval_ns(settings.request_timeout_ms)),
            session: SessionLease::new(validity_window_ms(&settings, bugs)),
            registered: false,
            validity_timer: None,
            beliefs: BTreeMap::new(),
            shards: BTreeMap::new(),
            unsettled: BTreeMap::new(),
            queue: WorkQueue {
                hand_out_processing: bugs.no_workqueue_dedup,
                ..WorkQueue::default()
            },
            passes: BTreeMap::new(),
            requeues: BTreeMap::new(),
            last_members: None,
            bugs,
            topology,
            settings,
        }
    }
}

impl Node<ControlPlane> for ControllerNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        // Just (re)started, no session yet: its old session's keys still
        // hold its shards until the store expires them.
        ctx.buggify("controller.after_start");
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
        let Some(pending) = self.requests.answered(ctx, from, id) else {
            return;
        };
        // Whatever was asked, the store saying my session is gone means
        // every key on it is gone too.
        if let StoreResponse::Error(StoreError::LeaseNotFound(lease)) = &response {
            if self.session.lease() == Some(*lease) {
                self.session_lost(ctx);
            }
        }
        match pending.purpose {
            Purpose::Grant { sent_at_ns } => self.handle_granted(ctx, sent_at_ns, response),
            Purpose::KeepAlive { lease, sent_at_ns } => {
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

    fn handle_observed(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        id: RequestId,
        instances: Result<Vec<Digested<Instance>>, u64>,
    ) {
        let Some(pending) = self.requests.answered(ctx, from, id) else {
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
                    .for_each(|instance| self.enqueue(instance.resource.clone())),
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

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, id: RequestId) {
        let Some(pending) = self.requests.timed_out(timer, id) else {
            return;
        };
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
        let Some(lease) = self.session.lease() else {
            return self.grant_session(ctx);
        };
        let sent_at_ns = self.lease_clock_ns(ctx);
        let purpose = Purpose::KeepAlive { lease, sent_at_ns };
        self.send_store(ctx, session::keep_alive(lease), purpose);
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
                let settled = self.settled(ctx, worker);
                self.send_request(ctx, worker, purpose, |request_id| Msg::Observe {
                    request_id,
                    shard,
                    token,
                    resource: None,
                    settled,
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

// Outputs.
impl ControllerNode {
    fn send_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: NodeId,
        purpose: Purpose,
        message: impl FnOnce(RequestId) -> Msg,
    ) {
        let id = self.requests.next_id(ctx);
        self.requests.track(ctx, id, to, purpose);
        ctx.send(to, message(id));
    }

    fn send_store(&mut self, ctx: &mut Ctx<'_>, request: StoreRequest<Value>, purpose: Purpose) {
        let store = self.topology.store;
        self.send_request(ctx, store, purpose, |request_id| Msg::StoreRequest {
            request_id,
            request,
        });
    }

    fn awaiting(&self, wanted: impl Fn(&Purpose) -> bool) -> bool {
        self.requests.awaiting(wanted)
    }

    fn watch(&mut self, ctx: &mut Ctx<'_>) {
        let prefix = keys::RESOURCES.to_string();
        ctx.send(self.topology.store, Msg::Watch { prefix });
    }
}

// Pure helpers.

/// A timer interval in nanoseconds; never zero, so a periodic timer cannot
/// spin.
fn interval_ns(interval_ms: u64) -> u64 {
    interval_ms.max(1).saturating_mul(MILLISECOND_NS)
}

/// How long after a proof's send the session is counted on: the validity
/// (the TTL shrunk for drift and a margin), or under the planted
/// `lease-no-drift-margin` bug the whole TTL (counted from the reply).
fn validity_window_ms(settings: &ControllerSettings, bugs: ControllerBugs) -> u64 {
    if bugs.lease_no_drift_margin {
        settings.session_ttl_ms
    } else {
        settings.lease_validity_ms()
    }
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
