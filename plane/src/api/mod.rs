//! API node: serves clients' mutating requests exactly once per
//! Idempotency-Key, in atomic phases with recovery points.
//!
//! # Semantics (IETF httpapi "The Idempotency-Key HTTP Header Field")
//!
//! A request without a key gets 400. The first request with a key is
//! executed and its response stored in the ledger (`/idem/{key}`) for the
//! key's published lifetime (`key_ttl_ms` in every stored reply). A later
//! request with the same key and the same fingerprint gets that response
//! again, marked `replayed`; with another fingerprint it gets 422; while the
//! first is still being processed it gets 409. Error responses that are
//! results (404) are stored and replayed like successes; transient answers
//! (400, 409, 422, 503) are not.
//!
//! # Phases (Brandur Leach, "Implementing Stripe-like Idempotency Keys")
//!
//! 1. Record: one transaction creates the ledger entry (`Started`, on a
//!    ledger lease that outlives the key's published lifetime, shared with
//!    the keys this node records within a few hours, see `LedgerLease`:
//!    one lease per key ran the store's lease table full in a long run)
//!    and a lock (`/idem-lock/{key}`,
//!    on this node's session lease), if the entry is absent. The lock's mod
//!    revision `L` is this node's claim on the key. Until the key finishes,
//!    a copy of its entry at `/idem-open/{key}` (on the same lease, written
//!    with every write of the entry) indexes the unfinished keys.
//! 2. Foreign side effect (creates only): charge billing with the key, which
//!    billing deduplicates, then save the recovery point `Charged`.
//! 3. Commit: one transaction writes the resource, stores the final response
//!    and deletes the entry's copy and the lock.
//!
//! Every write after phase 1 compares the lock's mod revision with `L`. A
//! node that lost its lock (its session expired during a pause, or another
//! node took the key over) therefore cannot commit; and because the commit
//! deletes the lock, at most one commit per key ever succeeds, whoever
//! races. A node answers a final status only after its own commit was
//! confirmed; otherwise it answers 503 and the client retries.
//!
//! # Recovery
//!
//! An entry that is not finished and has no lock was abandoned: its owner
//! died (the lock vanished with its session) or gave up (and deleted its
//! lock so others need not wait). A client retry, or the completer that
//! scans the unfinished keys' copies periodically (not the ledger, which
//! keeps every finished key for its TTL), takes such a key over by putting
//! its own lock (comparing that the lock is still absent and the entry
//! unchanged) and resumes from the recovery point. A lock of this very node
//! that no in-progress operation holds (left by a crash or by a request
//! that gave up) is reclaimed the same way: the lock is rewritten on the
//! current session, which also fences any stale transaction of the old
//! holder.
//!
//! # Operations
//!
//! Each request (or completer resumption) is an [`Operation`]: a small
//! state machine with at most one store or billing request outstanding,
//! whose request id maps back to it (`crate::requests`). Every request has
//! a timeout; a reply whose id is unknown (late, duplicated, or from an
//! earlier boot) is ignored, and a store reply that does not fit its
//! step is decoded into an error (`decode`) and fails the step as a
//! timeout would. Fire-and-forget requests (deleting the lock of an
//! operation that gave up) are sent untracked:
//! their replies are ignored as unknown, and nothing depends on them
//! succeeding.
//!
//! # Modules
//!
//! | module | what it owns |
//! |---|---|
//! | this one | the node, its handlers, its session and its answers |
//! | `operation` | an operation's state machine: steps, replies decoded per step |
//! | `record` | phase 1, and what an existing key gets: replay, 409, 422 |
//! | `takeover` | claiming an abandoned key |
//! | `commit` | from the recovery point on: charge, save `Charged`, commit |
//! | `completer` | the periodic scan that finishes abandoned keys |
//! | `read` | a client's reads, get and list: no key, no ledger |
//! | `bugs` | the planted bugs' detours |
//! | `decode` | each store reply, typed |
//!
//! # Planted bugs
//!
//! For the bug zoo (`crate::zoo`) an API node can be told to make three
//! classic mistakes ([`Bug`]), resolved to the flags of `ApiBugs` at
//! construction: check the ledger with a read and record without the
//! absent compare, charge billing before recording the key, and rebuild a
//! replay from the current resource.

mod bugs;
mod commit;
mod completer;
mod decode;
mod operation;
mod read;
mod record;
mod takeover;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use node::{Context, Node, NodeId, TimerId};

use crate::config::{ApiSettings, Bug, Topology};
use crate::protocol::{
    ApiOp, ApiReply, ApiRequest, ApiResponse, ControlPlane, Event, LedgerEntry, Msg, RequestId,
    ResponseBody, Timer, Value, keys, status,
};
use crate::reply::ReplyError;
use crate::requests::Requests;
use crate::session::{self, KeptAlive, SessionLease};
use crate::store::{Compare, LeaseId, Op, StoreRequest, StoreResponse, Txn};
use operation::{Commit, Held, Operation, OperationId, Step, Write};

type Ctx<'a> = Context<'a, ControlPlane>;

/// In-progress operations at once; past it a request gets 503.
const MAX_OPERATIONS: usize = 256;
/// Charge sends per operation (billing deduplicates, so a resend after a
/// timeout is safe) before the operation gives up with 503.
const MAX_CHARGE_SENDS: u32 = 3;
/// Commit attempts of an update or delete whose resource changed under it
/// before the operation gives up with 503.
const MAX_COMMIT_ATTEMPTS: u32 = 5;
/// Keys the completer resumes per scan.
const COMPLETER_BATCH: usize = 8;
/// Longest Idempotency-Key accepted; a longer one gets 400.
const MAX_KEY_BYTES: usize = 256;

/// An API node.
pub struct ApiNode {
    topology: Topology,
    settings: ApiSettings,
    next_operation: OperationId,
    /// The session lease that this node's ledger locks hang on, counted on
    /// for its full TTL: past it the next tick grants a new one.
    session: SessionLease,
    /// A grant or keep-alive is in flight: one at a time.
    session_in_flight: bool,
    operations: BTreeMap<OperationId, Operation>,
    /// Every tracked request in flight: at most one per operation, one for
    /// the session and one for the completer.
    requests: Requests<Purpose>,
    /// The ledger lease new keys hang on while it is young enough (see
    /// [`LedgerLease`]); volatile: after a restart the old one expires.
    ledger_lease: Option<LedgerLease>,
    completer_scanning: bool,
    /// The last key the completer resumed: the next scan starts after it,
    /// so keys that keep failing cannot starve the others.
    completer_cursor: String,
    /// Planted bugs, resolved once.
    bugs: ApiBugs,
}

/// The planted bugs an API node can make (see [`Bug`]), as plain flags.
#[derive(Clone, Copy, Debug, Default)]
struct ApiBugs {
    /// Read the ledger, then record the key without the absent compare.
    ledger_check_then_act: bool,
    /// Charge billing before recording the key.
    side_effect_before_ledger: bool,
    /// Answer a replay from the current resource, not the stored response.
    stale_replay_body: bool,
}

/// A ledger lease that keys may share. Keys recorded within
/// `ApiSettings::ledger_lease_share_ms` of asking for it (on this node's
/// monotonic clock) hang on it and still live their full published
/// lifetime; later keys ask for a new one.
#[derive(Clone, Copy, Debug)]
struct LedgerLease {
    lease: LeaseId,
    /// The lease's expiry on the store's clock, published with each key.
    expires_at_ms: u64,
    /// When this node asked for it: the lease cannot be older.
    asked_at_ns: u64,
}

/// What a tracked request was for.
#[derive(Debug)]
enum Purpose {
    SessionGrant {
        sent_at_ns: u64,
    },
    SessionKeepAlive {
        lease: LeaseId,
        sent_at_ns: u64,
    },
    CompleterScan,
    Operation(OperationId),
    /// A get for a client (`read`).
    Get(Client),
    /// A list for a client (`read`).
    List(Client),
}

/// What came back for a tracked request.
enum Reply {
    Store(StoreResponse<Value>),
    Charged { key: String, charge_id: u64 },
    TimedOut,
}

/// Who to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Client {
    node: NodeId,
    request_id: RequestId,
}

impl ApiNode {
    /// An API node serving `topology`'s clients with `settings`.
    pub fn new(topology: Topology, settings: ApiSettings) -> Self {
        assert!(settings.keepalive_interval_ms > 0 && settings.completer_interval_ms > 0);
        assert!(settings.keepalive_interval_ms < settings.session_ttl_ms);
        let on = |bug: Bug| settings.bugs.contains(&bug);
        let bugs = ApiBugs {
            ledger_check_then_act: on(Bug::LedgerCheckThenAct),
            side_effect_before_ledger: on(Bug::SideEffectBeforeLedger),
            stale_replay_body: on(Bug::StaleReplayBody),
        };
        Self {
            next_operation: 0,
            session: SessionLease::new(settings.session_ttl_ms),
            session_in_flight: false,
            operations: BTreeMap::new(),
            // Request ids count from 1, as they always have here.
            requests: Requests::new(1, ms(settings.request_timeout_ms)),
            ledger_lease: None,
            completer_scanning: false,
            completer_cursor: String::new(),
            bugs,
            topology,
            settings,
        }
    }

    // -----------------------------------------------------------------------
    // Inputs.

    fn handle_api_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, request: ApiRequest) {
        let client = Client {
            node: from,
            request_id: request.request_id,
        };
        if self.operations.values().any(|op| op.client == Some(client)) {
            return; // A network duplicate of a request in progress.
        }
        let write = match request.op {
            ApiOp::Get { id } => return self.get(ctx, client, id),
            ApiOp::List { after, limit } => return self.list(ctx, client, after, limit),
            write => write,
        };
        let key = match request.idempotency_key {
            Some(key) if !key.is_empty() && key.len() <= MAX_KEY_BYTES => key,
            _ => {
                let response = error(status::BAD_REQUEST, "a valid Idempotency-Key is required");
                return self.reply(ctx, Some(client), response, false, None);
            }
        };
        let name = write.name_or_id();
        if name.is_empty() || name.len() > ApiOp::MAX_NAME_BYTES {
            let message = format!(
                "a name or id must have 1 to {} bytes, not {}",
                ApiOp::MAX_NAME_BYTES,
                name.len()
            );
            let response = error(status::BAD_REQUEST, &message);
            return self.reply(ctx, Some(client), response, false, None);
        }
        let op = Operation {
            key,
            fingerprint: write.fingerprint(),
            op: write,
            client: Some(client),
            step: Step::Idle,
            held: None,
            expires_at_ms: 0,
        };
        if self.session.lease().is_none() || self.operations.len() >= MAX_OPERATIONS {
            return self.give_up(ctx, op, false);
        }
        let id = self.new_operation_id();
        if let Some(shared) = self.shared_ledger_lease(ctx.mono_ns()) {
            let op = Operation {
                expires_at_ms: shared.expires_at_ms,
                ..op
            };
            return self.with_ledger_lease(ctx, id, op, shared.lease);
        }
        let ttl_ms = self.settings.ledger_lease_ttl_ms();
        let request = StoreRequest::LeaseGrant { ttl_ms };
        let step = Step::GrantLedgerLease {
            asked_at_ns: ctx.mono_ns(),
        };
        self.await_store(ctx, id, op, step, request);
    }

    /// The ledger lease a key recorded now may hang on, if one is young
    /// enough to outlive the key's published lifetime.
    fn shared_ledger_lease(&self, now_ns: u64) -> Option<LedgerLease> {
        let share_ns = ms(self.settings.ledger_lease_share_ms());
        self.ledger_lease
            .filter(|shared| now_ns.saturating_sub(shared.asked_at_ns) <= share_ns)
    }

    /// A ledger lease was granted: later keys share it while it is young,
    /// unless a younger one is shared already.
    fn share_ledger_lease(&mut self, granted: LedgerLease) {
        let younger = self
            .ledger_lease
            .is_none_or(|shared| shared.asked_at_ns < granted.asked_at_ns);
        if younger {
            self.ledger_lease = Some(granted);
        }
    }

    fn handle_reply(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: RequestId, reply: Reply) {
        // Unknown: late after its timeout, a network duplicate, or an
        // answer to an earlier boot.
        let Some(pending) = self.requests.answered(ctx, from, id) else {
            return;
        };
        self.dispatch(ctx, pending.purpose, reply);
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, id: RequestId) {
        if let Some(pending) = self.requests.timed_out(timer, id) {
            self.dispatch(ctx, pending.purpose, Reply::TimedOut);
        }
    }

    fn handle_tick(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(ms(self.settings.keepalive_interval_ms), Timer::Tick);
        if self.session_in_flight {
            return;
        }
        // Past its TTL since the last renewal was sent, the store may have
        // expired the lease: stop renewing it and start a new session.
        let now_ns = ctx.mono_ns();
        match self.session.lease() {
            Some(lease) if self.session.lives_at(now_ns) => {
                self.session_in_flight = true;
                let purpose = Purpose::SessionKeepAlive {
                    lease,
                    sent_at_ns: now_ns,
                };
                self.send_store(ctx, purpose, session::keep_alive(lease));
            }
            _ => self.grant_session(ctx),
        }
    }

    fn dispatch(&mut self, ctx: &mut Ctx<'_>, purpose: Purpose, reply: Reply) {
        match purpose {
            Purpose::SessionGrant { sent_at_ns } => self.on_session_granted(sent_at_ns, reply),
            Purpose::SessionKeepAlive { lease, sent_at_ns } => {
                self.on_session_kept_alive(ctx, lease, sent_at_ns, reply)
            }
            Purpose::CompleterScan => self.on_completer_scan(ctx, reply),
            Purpose::Get(client) => self.on_get(ctx, client, reply),
            Purpose::List(client) => self.on_list(ctx, client, reply),
            Purpose::Operation(id) => {
                let op = self
                    .operations
                    .remove(&id)
                    .expect("an operation lives while its request is pending");
                self.advance(ctx, id, op, reply);
            }
        }
    }

    // -----------------------------------------------------------------------
    // The session (see `crate::session`).

    fn grant_session(&mut self, ctx: &mut Ctx<'_>) {
        assert!(!self.session_in_flight, "one session request at a time");
        self.session.lost();
        self.session_in_flight = true;
        let purpose = Purpose::SessionGrant {
            sent_at_ns: ctx.mono_ns(),
        };
        let ttl_ms = self.settings.session_ttl_ms;
        self.send_store(ctx, purpose, session::grant(ttl_ms));
    }

    fn on_session_granted(&mut self, sent_at_ns: u64, reply: Reply) {
        assert!(self.session.lease().is_none());
        self.session_in_flight = false;
        // On an error or a timeout the next tick asks again. A grant that
        // timed out may have been applied: that lease expires unused.
        let Reply::Store(response) = reply else {
            return;
        };
        match session::decode_grant(response) {
            Ok(granted) => {
                self.session.granted(granted.lease);
                self.session.proven(sent_at_ns);
            }
            Err(error) => error.log("session grant"),
        }
    }

    fn on_session_kept_alive(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseId,
        sent_at_ns: u64,
        reply: Reply,
    ) {
        assert_eq!(
            self.session.lease(),
            Some(lease),
            "only a grant replaces it"
        );
        self.session_in_flight = false;
        // A lost keep-alive says nothing about the lease: the next tick
        // renews it, until it is old enough to have expired.
        let Reply::Store(response) = reply else {
            return;
        };
        match session::decode_keep_alive(lease, response) {
            Ok(KeptAlive::Renewed) => {
                self.session.proven(sent_at_ns);
            }
            // The lease is gone, or the store refused to renew it.
            Ok(KeptAlive::NotFound) | Err(ReplyError::Refused(_)) => self.grant_session(ctx),
            // Says nothing about the lease, as a lost reply would not.
            Err(error) => error.log("session keep-alive"),
        }
    }

    // -----------------------------------------------------------------------
    // Helpers.

    // -----------------------------------------------------------------------
    // Outputs.

    fn send_store(&mut self, ctx: &mut Ctx<'_>, purpose: Purpose, request: StoreRequest<Value>) {
        let request_id = self.requests.next_id(ctx);
        let message = Msg::StoreRequest {
            request_id,
            request,
        };
        let store = self.topology.store;
        ctx.send(store, message);
        self.requests.track(ctx, request_id, store, purpose);
    }

    /// Sends an untracked request: its reply is ignored.
    fn fire_and_forget(&mut self, ctx: &mut Ctx<'_>, request: StoreRequest<Value>) {
        let request_id = self.requests.next_id(ctx);
        let message = Msg::StoreRequest {
            request_id,
            request,
        };
        ctx.send(self.topology.store, message);
    }

    /// Ends `op` with 503. Unless the lock is known lost, deletes it (if it
    /// still is mine at the revision I hold), so a retry or the completer
    /// can take the key over without waiting for my session to expire.
    fn give_up(&mut self, ctx: &mut Ctx<'_>, op: Operation, lock_lost: bool) {
        if let (Some(held), false) = (&op.held, lock_lost) {
            let release = Txn {
                compares: vec![lock_unchanged(&op.key, held)],
                success: vec![Op::Delete {
                    key: keys::lock(&op.key),
                }],
                failure: vec![],
            };
            self.fire_and_forget(ctx, StoreRequest::Txn(release));
        }
        let response = error(status::UNAVAILABLE, "could not finish now: retry");
        self.reply(ctx, op.client, response, false, None);
    }

    fn refuse_in_flight(&mut self, ctx: &mut Ctx<'_>, op: Operation) {
        if op.client.is_none() {
            return; // The completer lost a race: nobody to tell.
        }
        ctx.record(Event::KeyInFlight {
            key: op.key.clone(),
        });
        let response = error(status::CONFLICT, "a request with this key is in progress");
        self.reply(ctx, op.client, response, false, None);
    }

    fn replay(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: Operation,
        response: ApiResponse,
        entry: &LedgerEntry,
    ) {
        ctx.record(Event::Replayed {
            key: op.key.clone(),
        });
        self.reply(ctx, op.client, response, true, Some(entry));
    }

    /// Answers the client, if any. `stored` is the key's ledger entry when
    /// the response is the one stored with it: the reply then says how long
    /// it is kept.
    fn reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: Option<Client>,
        response: ApiResponse,
        replayed: bool,
        stored: Option<&LedgerEntry>,
    ) {
        let Some(client) = client else {
            return;
        };
        assert!(
            !replayed || response.is_final(),
            "only stored responses replay"
        );
        assert_eq!(
            stored.is_some(),
            response.is_final(),
            "final responses are the stored ones"
        );
        let reply = ApiReply {
            request_id: client.request_id,
            response,
            replayed,
            key_ttl_ms: stored.map(|entry| entry.ttl_ms),
            key_expires_at_ms: stored.map(|entry| entry.expires_at_ms),
        };
        ctx.send(client.node, Msg::ApiReply(Box::new(reply)));
    }
}

impl Node<ControlPlane> for ApiNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(ms(self.settings.keepalive_interval_ms), Timer::Tick);
        ctx.set_timer(ms(self.settings.completer_interval_ms), Timer::Completer);
        self.grant_session(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, message: Msg) {
        match message {
            Msg::Api(request) => self.handle_api_request(ctx, from, request),
            Msg::StoreReply {
                request_id,
                response,
            } if from == self.topology.store => {
                self.handle_reply(ctx, from, request_id, Reply::Store(response))
            }
            Msg::Charged {
                request_id,
                key,
                charge_id,
            } if from == self.topology.billing => {
                self.handle_reply(ctx, from, request_id, Reply::Charged { key, charge_id })
            }
            _ => {} // Not addressed to an API node.
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, tag: Timer) {
        match tag {
            Timer::RequestTimeout(request_id) => self.handle_timeout(ctx, timer, request_id),
            Timer::Tick => self.handle_tick(ctx),
            Timer::Completer => self.handle_completer(ctx),
            _ => {} // Not set by an API node.
        }
    }
}

// ---------------------------------------------------------------------------
// Pure helpers.

fn ms(milliseconds: u64) -> u64 {
    milliseconds * node::MILLISECOND_NS
}

fn error(status: u16, message: &str) -> ApiResponse {
    ApiResponse {
        status,
        body: ResponseBody::Error {
            message: message.to_string(),
        },
    }
}

fn put(key: &str, value: Value, lease: Option<LeaseId>) -> Op<Value> {
    Op::Put {
        key: key.to_string(),
        value,
        lease,
    }
}

/// The fence of every write after phase 1: my lock, at the revision I got.
fn lock_unchanged(key: &str, held: &Held) -> Compare {
    Compare::ModRevisionEquals {
        key: keys::lock(key),
        revision: held.lock_revision,
    }
}
