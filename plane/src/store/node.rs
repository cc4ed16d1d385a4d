//! The simulated store node: wraps the [`KvStore`] state machine, applies
//! requests in arrival order, expires leases on its own clock and pushes
//! watch notifications.
//!
//! # Why this is linearizable
//!
//! There is one store node and it applies each request whole, inside one
//! handler, in the order messages arrive. That arrival order is the
//! linearization: every request takes effect at one instant between its
//! send and its reply. The whole [`KvStore`] is the node's durable storage,
//! written synchronously, so a reply is only ever sent for a state that
//! survives a crash.
//!
//! # Time
//!
//! Lease expiries live in durable storage, so they cannot be monotonic
//! readings: a reboot may restart the monotonic clock anywhere, and a lease
//! would then expire at once or live for days. The store counts *store
//! time* (ms) on a `BootClock` (`crate::clock`): the latest store time
//! it made durable ([`StoreState::clock_ms`]) plus the monotonic time since
//! this boot began. On its first boot that is exactly `mono_ns / 1 ms`.
//! Store time never goes back and never runs faster than the monotonic
//! clock; it stands still while the store is down.
//!
//! On recovery (any start after the first) every lease gets its full TTL
//! again from now, as etcd does when a leader recovers its leases: while the
//! store was down nobody could keep a lease alive, so a lease must not lose
//! its holder's time to the outage. Because store time after a restart is
//! later than any time used before it, renewal never shortens a lease: a
//! key lives at least until the `expires_at_ms` published for it, maybe
//! longer, never shorter.
//!
//! One [`Timer::LeaseExpiry`] is kept armed for the earliest lease expiry,
//! so leases expire on time even when nobody writes; every request also
//! expires what is due first (the state machine does that).
//!
//! # Watches
//!
//! `Msg::Watch { prefix }` registers the sender. Watches are volatile hints:
//! a restart forgets them, the network may lose a `Changed`, and deletions
//! by lease expiry or revoke are not notified at all. Watchers resync
//! periodically; resync is the truth, notifications only make it faster.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use node::{Context, Digested, Node, NodeId, TimerId};

use crate::clock::BootClock;
use crate::config::StoreSettings;
use crate::protocol::{ControlPlane, Event, LeaseName, Msg, RequestId, Timer, Value, keys};
use crate::shard::ShardId;
use crate::store::{Compare, KvStore, Op, OpResult, StoreRequest, StoreResponse, Txn};

/// Most watches held at once: a (node, prefix) beyond this is not
/// registered. A dozen nodes watch a handful of prefixes each; this only
/// guards against a runaway watcher.
pub const MAX_WATCHES: usize = 1_024;

/// The store's durable storage: the state machine, created on first start
/// with the configured limits (`None` before that, so a store that granted
/// and revoked leases is never mistaken for a fresh one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreState {
    /// The key-value state machine.
    pub kv: Option<KvStore<Value>>,
    /// The latest store time (ms) used: lease expiries are counted on it,
    /// and a restarted store's clock resumes just after it (see the module
    /// doc). `None` before the first start.
    #[serde(default)]
    pub clock_ms: Option<u64>,
}

/// A write an op may make, so the watchers of a key can be told.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum WriteTarget {
    /// `Put` or `Delete` of one key.
    Key(String),
    /// `DeletePrefix` of every key under a prefix.
    Prefix(String),
    /// A read: writes nothing.
    None,
}

/// The one store node.
pub struct StoreNode {
    settings: StoreSettings,
    /// Volatile: (watcher, prefix), forgotten on restart.
    watches: BTreeSet<(NodeId, String)>,
    /// The armed lease-expiry timer and the store millisecond it is for.
    lease_timer: Option<(TimerId, u64)>,
    /// This boot's store clock, started by `on_start`.
    clock: Option<BootClock>,
}

impl StoreNode {
    /// A store that enforces `settings.limits` (validated on load).
    pub fn new(settings: StoreSettings) -> Self {
        Self {
            settings,
            watches: BTreeSet::new(),
            lease_timer: None,
            clock: None,
        }
    }

    // Inputs.

    fn handle_request(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        from: NodeId,
        request_id: RequestId,
        request: StoreRequest<Value>,
    ) {
        let now_ms = self.now_ms(ctx);
        // A transaction that only reads writes nothing to record or notify:
        // it skips the bookkeeping of what was written.
        let targets = match &request {
            StoreRequest::Txn(txn) if may_write(txn) => {
                Some((write_targets(txn), TxnFacts::of(kv(ctx), txn)))
            }
            _ => None,
        };
        let response = kv(ctx).apply(now_ms, request);
        if let (Some(((success, failure), facts)), StoreResponse::Txn { .. }) = (targets, &response)
        {
            let written = written_targets(&response, success, failure);
            record_truth(ctx, from, &facts, &written, &response);
            self.notify_watchers(ctx, &response, &written);
        }
        ctx.send(
            from,
            Msg::StoreReply {
                request_id,
                response,
            },
        );
        self.arm_lease_timer(ctx);
    }

    fn handle_watch(&mut self, from: NodeId, prefix: String) {
        if self.watches.len() >= MAX_WATCHES && !self.watches.contains(&(from, prefix.clone())) {
            // Watches are hints: a refused one costs the watcher only
            // latency, since its resync still finds every change.
            tracing::warn!(%from, prefix, "store watch limit reached; watch not registered");
            return;
        }
        self.watches.insert((from, prefix));
        debug_assert!(self.watches.len() <= MAX_WATCHES);
    }

    fn handle_lease_expiry(&mut self, ctx: &mut Context<'_, ControlPlane>, timer: TimerId) {
        if self.lease_timer.is_some_and(|(armed, _)| armed == timer) {
            self.lease_timer = None;
        }
        let now_ms = self.now_ms(ctx);
        // Deleted keys are not notified: resync repairs (see the module doc).
        kv(ctx).expire_leases(now_ms);
        // Leases just expired; their holders have not noticed yet, and the
        // next holders are about to claim the keys.
        ctx.buggify("store.lease_expired");
        debug_assert!(
            kv(ctx)
                .next_lease_expiry_ms()
                .is_none_or(|next| next > now_ms)
        );
        self.arm_lease_timer(ctx);
    }

    // Helpers.

    /// Keeps exactly one timer armed for the earliest lease expiry.
    fn arm_lease_timer(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        let next_ms = kv(ctx).next_lease_expiry_ms();
        if self.lease_timer.map(|(_, at_ms)| at_ms) == next_ms {
            return;
        }
        if let Some((timer, _)) = self.lease_timer.take() {
            ctx.cancel_timer(timer);
        }
        if let Some(expiry_ms) = next_ms {
            // The timer fires once store time reads `expiry_ms` (never
            // early: the simulator rounds timer delays up).
            let delay_ns = self.clock().delay_until_ns(ctx.mono_ns(), expiry_ms);
            let timer = ctx.set_timer(delay_ns, Timer::LeaseExpiry);
            self.lease_timer = Some((timer, expiry_ms));
        }
    }

    /// This boot's store clock.
    fn clock(&self) -> BootClock {
        self.clock.expect("on_start starts the store clock")
    }

    /// Store time now, made durable as the latest store time used, so a
    /// restart resumes after it and no expiry computed from it is ever
    /// ahead of the clock that judges it.
    fn now_ms(&self, ctx: &mut Context<'_, ControlPlane>) -> u64 {
        let now_ms = self.clock().now_ms(ctx.mono_ns());
        let state = ctx.durable_mut().store_mut();
        debug_assert!(state.clock_ms.is_none_or(|last_ms| last_ms <= now_ms));
        state.clock_ms = Some(now_ms);
        now_ms
    }

    // Outputs.

    /// Sends `Changed` to each watcher whose prefix covers a key written by
    /// the branch that ran. One message per (watcher, key) per transaction.
    fn notify_watchers(
        &self,
        ctx: &mut Context<'_, ControlPlane>,
        response: &StoreResponse<Value>,
        written: &BTreeSet<WriteTarget>,
    ) {
        let StoreResponse::Txn { revision, .. } = response else {
            return;
        };
        for (watcher, prefix) in &self.watches {
            for target in written {
                let key = match target {
                    WriteTarget::Key(key) if key.starts_with(prefix.as_str()) => key,
                    // A prefix delete touches the watch if either range
                    // contains the other; the deleted prefix names the change.
                    WriteTarget::Prefix(deleted)
                        if deleted.starts_with(prefix.as_str())
                            || prefix.starts_with(deleted.as_str()) =>
                    {
                        deleted
                    }
                    _ => continue,
                };
                let changed = Msg::Changed {
                    key: key.clone(),
                    revision: *revision,
                };
                ctx.send(*watcher, changed);
            }
        }
    }
}

/// The keys the branch that ran actually wrote.
fn written_targets(
    response: &StoreResponse<Value>,
    success: Vec<WriteTarget>,
    failure: Vec<WriteTarget>,
) -> BTreeSet<WriteTarget> {
    let StoreResponse::Txn {
        succeeded, results, ..
    } = response
    else {
        return BTreeSet::new();
    };
    let targets = if *succeeded { success } else { failure };
    assert_eq!(targets.len(), results.len(), "one result per op");
    targets
        .into_iter()
        .zip(results)
        .filter(|(_, result)| match result {
            OpResult::Put { .. } => true,
            OpResult::Deleted { count } => *count > 0,
            OpResult::Got(_) | OpResult::GotPrefix(_) | OpResult::GotRange { .. } => false,
        })
        .map(|(target, _)| target)
        .collect()
}

/// What the checkers need to know of a transaction besides what it wrote,
/// read before the state machine consumes it.
struct TxnFacts {
    /// The mod revision it compared on a shard or leader lease key: the
    /// fencing token it is committed under.
    fence: Option<u64>,
    /// The resource keys it may put that were absent before it ran.
    absent_resources: BTreeSet<String>,
}

impl TxnFacts {
    fn of(store: &KvStore<Value>, txn: &Txn<Value>) -> Self {
        let fence = txn.compares.iter().find_map(|compare| match compare {
            Compare::ModRevisionEquals { key, revision }
                if key.starts_with(keys::SHARDS) || key == keys::LEADER =>
            {
                Some(*revision)
            }
            _ => None,
        });
        let absent_resources = txn
            .success
            .iter()
            .chain(&txn.failure)
            .filter_map(|op| match op {
                Op::Put { key, .. }
                    if key.starts_with(keys::RESOURCES) && store.get(key).is_none() =>
                {
                    Some(key.clone())
                }
                _ => None,
            })
            .collect();
        TxnFacts {
            fence,
            absent_resources,
        }
    }
}

/// Records committed writes of desired state, status and the idempotency
/// ledger: the checkers' ground truth, independent of any reply arriving,
/// each with the node whose transaction it was (and, for desired state,
/// the key whose ledger entry the same transaction wrote; for a status,
/// the fencing token it was committed under).
fn record_truth(
    ctx: &mut Context<'_, ControlPlane>,
    writer: NodeId,
    facts: &TxnFacts,
    written: &BTreeSet<WriteTarget>,
    response: &StoreResponse<Value>,
) {
    let StoreResponse::Txn { revision, .. } = response else {
        return;
    };
    // The ledger entry the transaction wrote, if any: the request it
    // carries out.
    let ledger = written.iter().find_map(|target| match target {
        WriteTarget::Key(key) => {
            let idem = key.strip_prefix(keys::LEDGER)?;
            match kv(ctx).get(key).map(|kv| &kv.value) {
                Some(Value::Ledger(entry)) => Some((idem.to_string(), entry.fingerprint)),
                _ => None,
            }
        }
        _ => None,
    });
    for target in written {
        let WriteTarget::Key(key) = target else {
            continue;
        };
        let stored = kv(ctx).get(key).map(|kv| kv.value.clone());
        let event = if let Some(id) = key.strip_prefix(keys::RESOURCES) {
            let resource = match stored {
                Some(Value::Resource(resource)) => Some(Digested::into_inner(resource)),
                _ => None,
            };
            Event::DesiredWritten {
                id: id.to_string(),
                created: resource.is_some() && facts.absent_resources.contains(key),
                resource,
                revision: *revision,
                writer,
                ledger: ledger.clone(),
            }
        } else if let Some(id) = key.strip_prefix(keys::STATUSES) {
            let status = match stored {
                Some(Value::Status(status)) => Some(status),
                _ => None,
            };
            Event::StatusStored {
                id: id.to_string(),
                status,
                revision: *revision,
                writer,
                fence: facts.fence,
            }
        } else if let Some(lease) = lease_name(key) {
            let holder = match stored {
                Some(Value::Holder { controller }) => Some(controller),
                _ => None,
            };
            Event::LeaseStored {
                lease,
                holder,
                revision: *revision,
            }
        } else if let (Some(idem), Some(Value::Ledger(entry))) =
            (key.strip_prefix(keys::LEDGER), stored)
        {
            Event::LedgerWritten {
                key: idem.to_string(),
                fingerprint: entry.fingerprint,
                recovery: entry.recovery.clone(),
                revision: *revision,
            }
        } else {
            continue;
        };
        ctx.record(event);
    }
}

/// The lease a shard or leader key stands for.
fn lease_name(key: &str) -> Option<LeaseName> {
    if key == keys::LEADER {
        return Some(LeaseName::Leader);
    }
    let number = key.strip_prefix(keys::SHARDS)?.parse().ok()?;
    Some(LeaseName::Shard(ShardId(number)))
}

impl Node<ControlPlane> for StoreNode {
    fn on_start(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        let mono_ns = ctx.mono_ns();
        let state = ctx.durable_mut().store_mut();
        if state.kv.is_none() {
            state.kv = Some(KvStore::new(self.settings.limits.clone()));
        }
        self.clock = Some(BootClock::resume(mono_ns, state.clock_ms));
        let now_ms = self.now_ms(ctx);
        if ctx.boot() > 0 {
            // Recovery: a full TTL for every lease (see the module doc).
            kv(ctx).renew_all_leases(now_ms);
            // Recovered, every lease renewed: holders that gave up while
            // the store was down may be owed keys they no longer believe.
            ctx.buggify("store.after_recovery");
        }
        // Timers and watches died with the previous boot.
        self.watches.clear();
        self.lease_timer = None;
        self.arm_lease_timer(ctx);
    }

    fn on_message(&mut self, ctx: &mut Context<'_, ControlPlane>, from: NodeId, message: Msg) {
        match message {
            Msg::StoreRequest {
                request_id,
                request,
            } => self.handle_request(ctx, from, request_id, request),
            Msg::Watch { prefix } => self.handle_watch(from, prefix),
            other => tracing::debug!(%from, "store ignores {other:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, ControlPlane>, timer: TimerId, tag: Timer) {
        match tag {
            Timer::LeaseExpiry => self.handle_lease_expiry(ctx, timer),
            other => tracing::debug!("store ignores timer {other:?}"),
        }
    }
}

/// The state machine in durable storage; `on_start` creates it.
fn kv<'c>(ctx: &'c mut Context<'_, ControlPlane>) -> &'c mut KvStore<Value> {
    ctx.durable_mut()
        .store_mut()
        .kv
        .as_mut()
        .expect("on_start creates the store before any request")
}

/// Whether either branch of `txn` has an op that writes.
fn may_write(txn: &Txn<Value>) -> bool {
    txn.success.iter().chain(&txn.failure).any(|op| match op {
        Op::Put { .. } | Op::Delete { .. } | Op::DeletePrefix { .. } => true,
        Op::Get { .. } | Op::GetPrefix { .. } | Op::Range { .. } => false,
    })
}

/// What each op of each branch may write, in op order, read before the
/// transaction is consumed by the state machine.
fn write_targets(txn: &Txn<Value>) -> (Vec<WriteTarget>, Vec<WriteTarget>) {
    let targets = |ops: &[Op<Value>]| {
        ops.iter()
            .map(|op| match op {
                Op::Put { key, .. } | Op::Delete { key } => WriteTarget::Key(key.clone()),
                Op::DeletePrefix { prefix } => WriteTarget::Prefix(prefix.clone()),
                Op::Get { .. } | Op::GetPrefix { .. } | Op::Range { .. } => WriteTarget::None,
            })
            .collect()
    };
    (targets(&txn.success), targets(&txn.failure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Compare, KeyValue, LeaseId};
    use node::MILLISECOND_NS;
    use node::testing::Harness;

    const STORE: NodeId = NodeId(0);
    const ALICE: NodeId = NodeId(1);
    const BOB: NodeId = NodeId(2);

    fn harness() -> Harness<ControlPlane> {
        Harness::new(7, STORE, Box::new(StoreNode::new(StoreSettings::default())))
    }

    fn started() -> Harness<ControlPlane> {
        let mut harness = harness();
        let output = harness.start();
        assert!(output.sent.is_empty() && output.timers.is_empty());
        harness
    }

    fn holder(node: u32) -> Value {
        Value::Holder {
            controller: NodeId(node),
        }
    }

    fn put(key: &str, lease: Option<LeaseId>) -> Op<Value> {
        Op::Put {
            key: key.into(),
            value: holder(1),
            lease,
        }
    }

    fn txn(ops: Vec<Op<Value>>) -> StoreRequest<Value> {
        StoreRequest::Txn(Txn::unconditional(ops))
    }

    /// Sends `request` from ALICE and returns the reply to it.
    fn call(
        harness: &mut Harness<ControlPlane>,
        request: StoreRequest<Value>,
    ) -> StoreResponse<Value> {
        let output = harness.deliver(
            ALICE,
            Msg::StoreRequest {
                request_id: 99,
                request,
            },
        );
        let replies: Vec<_> = output
            .sent
            .into_iter()
            .filter_map(|(to, msg)| match msg {
                Msg::StoreReply {
                    request_id: 99,
                    response,
                } if to == ALICE => Some(response),
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 1, "exactly one reply");
        replies.into_iter().next().unwrap()
    }

    fn grant(harness: &mut Harness<ControlPlane>, ttl_ms: u64) -> LeaseId {
        match call(harness, StoreRequest::LeaseGrant { ttl_ms }) {
            StoreResponse::LeaseGranted { lease, .. } => lease,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    fn stored(harness: &Harness<ControlPlane>, key: &str) -> Option<KeyValue<Value>> {
        let state = harness.durable().store().expect("store state");
        state
            .kv
            .as_ref()
            .unwrap()
            .get(key)
            .map(|kv| KeyValue::clone(kv))
    }

    /// The `Changed` messages sent, as (watcher, key).
    fn changes(sent: &[(NodeId, Msg)]) -> Vec<(NodeId, String)> {
        sent.iter()
            .filter_map(|(to, msg)| match msg {
                Msg::Changed { key, .. } => Some((*to, key.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn request_is_applied_and_answered_to_its_sender_with_its_id() {
        let mut harness = started();
        let output = harness.deliver(
            BOB,
            Msg::StoreRequest {
                request_id: 42,
                request: txn(vec![put("/res/a", None)]),
            },
        );
        assert_eq!(output.sent.len(), 1);
        let (
            to,
            Msg::StoreReply {
                request_id,
                response,
            },
        ) = &output.sent[0]
        else {
            panic!("expected a reply, got {:?}", output.sent);
        };
        assert_eq!((*to, *request_id), (BOB, 42));
        assert!(matches!(
            response,
            StoreResponse::Txn {
                succeeded: true,
                revision: 1,
                ..
            }
        ));
        let read = call(
            &mut harness,
            txn(vec![Op::Get {
                key: "/res/a".into(),
            }]),
        );
        let StoreResponse::Txn { results, .. } = read else {
            panic!("expected a txn reply");
        };
        assert!(matches!(&results[0], OpResult::Got(Some(kv)) if kv.value == holder(1)));
    }

    #[test]
    fn lease_expires_by_timer_without_traffic_and_deletes_its_keys() {
        let mut harness = started();
        let lease = grant(&mut harness, 500);
        call(&mut harness, txn(vec![put("/members/0001", Some(lease))]));
        assert_eq!(harness.pending_timers(), vec![Timer::LeaseExpiry]);
        assert!(stored(&harness, "/members/0001").is_some());
        let (tag, output) = harness.fire_next_timer().expect("lease timer");
        assert_eq!(tag, Timer::LeaseExpiry);
        assert_eq!(harness.now_ns(), 500 * MILLISECOND_NS, "expires on time");
        assert!(output.sent.is_empty());
        assert!(stored(&harness, "/members/0001").is_none());
        assert!(
            harness.pending_timers().is_empty(),
            "no lease left to expire"
        );
        let keep_alive = call(&mut harness, StoreRequest::LeaseKeepAlive { lease });
        assert!(matches!(keep_alive, StoreResponse::Error(_)));
    }

    #[test]
    fn lease_timer_follows_the_earliest_lease() {
        let mut harness = started();
        let late = grant(&mut harness, 900);
        let early = grant(&mut harness, 300);
        call(&mut harness, StoreRequest::LeaseRevoke { lease: early });
        let (_, _) = harness.fire_next_timer().expect("lease timer");
        assert_eq!(
            harness.now_ns(),
            900 * MILLISECOND_NS,
            "the revoked lease's timer is gone"
        );
        let state = harness.durable().store().unwrap();
        assert_eq!(state.kv.as_ref().unwrap().lease_expiry_ms(late), None);
    }

    #[test]
    fn state_survives_restart_and_leases_get_a_full_ttl_again() {
        let mut harness = started();
        let lease = grant(&mut harness, 1_000);
        call(
            &mut harness,
            txn(vec![put("/leader", Some(lease)), put("/res/a", None)]),
        );
        harness.advance(400 * MILLISECOND_NS);
        let output = harness.restart(Box::new(StoreNode::new(StoreSettings::default())));
        let delays: Vec<u64> = output
            .timers
            .iter()
            .map(|(_, delay_ns, _)| *delay_ns)
            .collect();
        assert_eq!(
            delays,
            vec![1_000 * MILLISECOND_NS],
            "a full TTL from the restart, as etcd recovers leases"
        );
        assert!(stored(&harness, "/leader").is_some());
        let next = call(&mut harness, txn(vec![put("/res/b", None)]));
        assert!(
            matches!(next, StoreResponse::Txn { revision: 2, .. }),
            "revision kept"
        );
        harness.fire_next_timer().expect("lease timer");
        assert_eq!(harness.now_ns(), 1_400 * MILLISECOND_NS);
        assert!(stored(&harness, "/leader").is_none());
        assert!(
            stored(&harness, "/res/a").is_some(),
            "keys without a lease stay"
        );
    }

    fn granted(harness: &mut Harness<ControlPlane>, ttl_ms: u64) -> (LeaseId, u64) {
        match call(harness, StoreRequest::LeaseGrant { ttl_ms }) {
            StoreResponse::LeaseGranted {
                lease,
                expires_at_ms,
                ..
            } => (lease, expires_at_ms),
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    fn lease_expiry_ms(harness: &Harness<ControlPlane>, lease: LeaseId) -> Option<u64> {
        let state = harness.durable().store().expect("store state");
        state.kv.as_ref().unwrap().lease_expiry_ms(lease)
    }

    #[test]
    fn after_a_reboot_a_lease_lives_a_full_ttl_on_the_new_clock_wherever_it_starts() {
        // A monotonic clock that restarts far below and far above the
        // readings of the first boot: with raw readings, the lease would
        // live ten minutes too long in one case and be gone at once in the
        // other.
        for rebooted_at_ns in [5 * MILLISECOND_NS, 10_000_000 * MILLISECOND_NS] {
            let mut harness = harness();
            harness.advance(600_000 * MILLISECOND_NS);
            harness.start();
            let (lease, published_ms) = granted(&mut harness, 1_000);
            call(&mut harness, txn(vec![put("/leader", Some(lease))]));
            harness.advance(400 * MILLISECOND_NS);
            let output = harness.reboot(
                Box::new(StoreNode::new(StoreSettings::default())),
                rebooted_at_ns,
            );
            let delays: Vec<u64> = output
                .timers
                .iter()
                .map(|(_, delay_ns, _)| *delay_ns)
                .collect();
            assert_eq!(
                delays,
                vec![1_000 * MILLISECOND_NS],
                "a full TTL from the reboot"
            );
            // A request right after the reboot expires nothing.
            call(&mut harness, txn(vec![put("/res/a", None)]));
            assert!(
                stored(&harness, "/leader").is_some(),
                "alive after the reboot"
            );
            let expiry_ms = lease_expiry_ms(&harness, lease).expect("lease alive");
            assert!(expiry_ms >= published_ms, "never shorter than published");
            // Store time went on from where it was, not from the new clock.
            let (_, later_ms) = granted(&mut harness, 1_000);
            assert!(later_ms > published_ms, "store time never goes back");
            harness.fire_timer(|tag| *tag == Timer::LeaseExpiry);
            assert_eq!(harness.now_ns(), rebooted_at_ns + 1_000 * MILLISECOND_NS);
            assert!(stored(&harness, "/leader").is_none(), "expired a TTL later");
            assert!(stored(&harness, "/res/a").is_some());
        }
    }

    #[test]
    fn store_time_survives_reboots_and_is_never_a_raw_monotonic_reading() {
        let mut harness = harness();
        harness.advance(600_000 * MILLISECOND_NS);
        harness.start();
        let (_, before_ms) = granted(&mut harness, 1_000);
        assert_eq!(
            before_ms, 601_000,
            "the first boot reads its monotonic clock"
        );
        harness.reboot(Box::new(StoreNode::new(StoreSettings::default())), 0);
        harness.advance(250 * MILLISECOND_NS);
        let (_, after_ms) = granted(&mut harness, 1_000);
        // One past the last store time used, plus the 250 ms of this boot.
        assert_eq!(after_ms, 600_000 + 1 + 250 + 1_000);
        let state = harness.durable().store().unwrap();
        assert_eq!(state.clock_ms, Some(600_251));
    }

    #[test]
    fn watchers_are_told_only_of_keys_under_their_prefix() {
        let mut harness = started();
        harness.deliver(
            ALICE,
            Msg::Watch {
                prefix: "/res/".into(),
            },
        );
        harness.deliver(
            BOB,
            Msg::Watch {
                prefix: "/status/".into(),
            },
        );
        let output = harness.deliver(
            ALICE,
            Msg::StoreRequest {
                request_id: 1,
                request: txn(vec![put("/res/a", None), put("/idem/k", None)]),
            },
        );
        assert_eq!(changes(&output.sent), vec![(ALICE, "/res/a".to_string())]);
        let Msg::Changed { revision, .. } = &output.sent[0].1 else {
            panic!("expected a change first");
        };
        assert_eq!(*revision, 1);
        let output = harness.deliver(
            ALICE,
            Msg::StoreRequest {
                request_id: 2,
                request: txn(vec![
                    put("/status/a", None),
                    Op::Get {
                        key: "/res/a".into(),
                    },
                ]),
            },
        );
        assert_eq!(changes(&output.sent), vec![(BOB, "/status/a".to_string())]);
    }

    #[test]
    fn watchers_are_told_only_of_the_branch_that_ran() {
        let mut harness = started();
        harness.deliver(
            ALICE,
            Msg::Watch {
                prefix: "/res/".into(),
            },
        );
        harness.deliver(
            BOB,
            Msg::Watch {
                prefix: "/status/".into(),
            },
        );
        call(&mut harness, txn(vec![put("/res/a", None)]));
        let request = StoreRequest::Txn(Txn {
            compares: vec![Compare::Absent {
                key: "/res/a".into(),
            }],
            success: vec![put("/status/a", None)],
            failure: vec![put("/res/b", None)],
        });
        let output = harness.deliver(
            BOB,
            Msg::StoreRequest {
                request_id: 3,
                request,
            },
        );
        assert_eq!(changes(&output.sent), vec![(ALICE, "/res/b".to_string())]);
    }

    #[test]
    fn writes_that_change_nothing_are_not_notified() {
        let mut harness = started();
        harness.deliver(
            ALICE,
            Msg::Watch {
                prefix: "/res/".into(),
            },
        );
        let output = harness.deliver(
            BOB,
            Msg::StoreRequest {
                request_id: 1,
                request: txn(vec![
                    Op::Delete {
                        key: "/res/absent".into(),
                    },
                    Op::DeletePrefix {
                        prefix: "/res/".into(),
                    },
                ]),
            },
        );
        assert!(changes(&output.sent).is_empty());
        call(&mut harness, txn(vec![put("/res/a", None)]));
        let output = harness.deliver(
            BOB,
            Msg::StoreRequest {
                request_id: 2,
                request: txn(vec![Op::DeletePrefix {
                    prefix: "/res".into(),
                }]),
            },
        );
        assert_eq!(changes(&output.sent), vec![(ALICE, "/res".to_string())]);
    }

    #[test]
    fn a_repeated_watch_is_registered_once_and_a_restart_forgets_watches() {
        let mut harness = started();
        harness.deliver(
            ALICE,
            Msg::Watch {
                prefix: "/res/".into(),
            },
        );
        harness.deliver(
            ALICE,
            Msg::Watch {
                prefix: "/res/".into(),
            },
        );
        let output = harness.deliver(
            BOB,
            Msg::StoreRequest {
                request_id: 1,
                request: txn(vec![put("/res/a", None)]),
            },
        );
        assert_eq!(changes(&output.sent), vec![(ALICE, "/res/a".to_string())]);
        harness.restart(Box::new(StoreNode::new(StoreSettings::default())));
        let output = harness.deliver(
            BOB,
            Msg::StoreRequest {
                request_id: 2,
                request: txn(vec![put("/res/b", None)]),
            },
        );
        assert!(changes(&output.sent).is_empty());
    }
}
