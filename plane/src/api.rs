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
//!    lease whose TTL is the key's lifetime) and a lock (`/idem-lock/{key}`,
//!    on this node's session lease), if the entry is absent. The lock's mod
//!    revision `L` is this node's claim on the key.
//! 2. Foreign side effect (creates only): charge billing with the key, which
//!    billing deduplicates, then save the recovery point `Charged`.
//! 3. Commit: one transaction writes the resource, stores the final response
//!    and deletes the lock.
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
//! scans the ledger periodically, takes such a key over by putting its own
//! lock (comparing that the lock is still absent and the entry unchanged)
//! and resumes from the recovery point. A lock of this very node that no
//! in-progress operation holds (left by a crash or by a request that gave
//! up) is reclaimed the same way: the lock is rewritten on the current
//! session, which also fences any stale transaction of the old holder.
//!
//! # Operations
//!
//! Each request (or completer resumption) is an [`Operation`]: a small
//! state machine with at most one store or billing request outstanding,
//! whose request id maps back to it. Every request has a timeout; a reply
//! whose id is unknown (late, duplicated, or from an earlier incarnation)
//! is ignored. Fire-and-forget requests (revoking an unused lease, deleting
//! the lock of an operation that gave up) are sent untracked: their replies
//! are ignored as unknown, and nothing depends on them succeeding.
//!
//! # Planted bugs
//!
//! For the bug zoo (`crate::zoo`) an API node can be told to make three
//! classic mistakes ([`Bug`]), resolved to the flags of `ApiBugs` at
//! construction: check the ledger with a read and record without the
//! absent compare, charge billing before recording the key, and rebuild a
//! replay from the current resource.

use std::collections::BTreeMap;

use node::{Context, Node, NodeId, TimerId};

use crate::config::{ApiSettings, Bug, Topology};
use crate::protocol::{
    ApiOp, ApiReply, ApiRequest, ApiResponse, ControlPlane, Event, LedgerEntry, Msg, Recovery,
    RequestId, Resource, ResponseBody, Timer, Value, keys, request_id, status,
};
use crate::store::{Compare, KeyValue, LeaseId, Op, OpResult, StoreRequest, StoreResponse, Txn};

type Ctx<'a> = Context<'a, ControlPlane>;
type Kv = KeyValue<Value>;

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

/// An operation's identity within this node's incarnation.
type OperationId = u64;

/// An API node.
pub struct ApiNode {
    topology: Topology,
    settings: ApiSettings,
    /// Counter behind request ids; volatile, the incarnation keeps ids unique.
    next_request: u64,
    next_operation: OperationId,
    session: Session,
    operations: BTreeMap<OperationId, Operation>,
    /// Every tracked request in flight: at most one per operation, one for
    /// the session and one for the completer.
    pending: BTreeMap<RequestId, Pending>,
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

/// The session lease that this node's ledger locks hang on.
#[derive(Debug, Default)]
struct Session {
    lease: Option<LeaseId>,
    /// When the request that last granted or renewed the lease was sent, on
    /// this node's monotonic clock.
    renewed_at_ns: u64,
    /// A grant or keep-alive is in flight.
    in_flight: bool,
}

#[derive(Debug)]
struct Pending {
    purpose: Purpose,
    timer: TimerId,
}

/// What a tracked request was for.
#[derive(Debug)]
enum Purpose {
    SessionGrant { sent_at_ns: u64 },
    SessionKeepAlive { lease: LeaseId, sent_at_ns: u64 },
    CompleterScan,
    Operation(OperationId),
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

/// One request in progress, or one key the completer resumes.
#[derive(Debug)]
struct Operation {
    key: String,
    /// The request's fingerprint (for the completer: the stored one).
    fingerprint: u64,
    /// The request (for the completer: the stored one).
    op: ApiOp,
    /// `None` when the completer runs it: nobody to answer.
    client: Option<Client>,
    /// What the outstanding request is for.
    step: Step,
    /// Set once this operation holds the key's lock.
    held: Option<Held>,
    /// When a key this operation records expires (store clock, ms): set
    /// when its ledger lease is granted.
    expires_at_ms: u64,
}

/// The lock an operation holds and the ledger entry it works on.
#[derive(Debug)]
struct Held {
    /// The lock's mod revision: every later write compares it.
    lock_revision: u64,
    entry: LedgerEntry,
    /// The ledger entry's lease: rewrites keep the key's lifetime.
    ledger_lease: Option<LeaseId>,
}

#[derive(Debug)]
enum Step {
    /// No request outstanding: only while a handler runs.
    Idle,
    GrantLedgerLease,
    Record {
        entry: Box<LedgerEntry>,
        ledger_lease: LeaseId,
    },
    Claim {
        entry: Box<LedgerEntry>,
        ledger_lease: Option<LeaseId>,
    },
    Charge {
        sends: u32,
    },
    SaveCharged {
        charge_id: u64,
    },
    Read,
    Commit(Box<Commit>),
    /// Planted bug `ledger-check-then-act`: the ledger read before an
    /// unconditional record.
    CheckLedger {
        ledger_lease: LeaseId,
    },
    /// Planted bug `side-effect-before-ledger`: the charge, before any
    /// record.
    ChargeFirst {
        sends: u32,
        ledger_lease: LeaseId,
    },
    /// Planted bug `stale-replay-body`: the resource read to rebuild a
    /// finished key's answer.
    ReplayRead(Box<LedgerEntry>),
}

/// A planned commit: the response to store and the resource write.
#[derive(Debug)]
struct Commit {
    response: ApiResponse,
    write: Write,
    /// The resource's mod revision the plan was made from; 0 when absent.
    resource_revision: u64,
    attempt: u32,
}

#[derive(Debug)]
enum Write {
    Create(Resource),
    Update(Resource),
    Delete,
    /// A stored 404: nothing to write but the response.
    Nothing,
}

/// A transaction's outcome.
struct TxnOutcome {
    succeeded: bool,
    revision: u64,
    results: Vec<OpResult<Value>>,
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
            topology,
            settings,
            next_request: 0,
            next_operation: 0,
            session: Session::default(),
            operations: BTreeMap::new(),
            pending: BTreeMap::new(),
            completer_scanning: false,
            completer_cursor: String::new(),
            bugs,
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
        let key = match request.idempotency_key {
            Some(key) if !key.is_empty() && key.len() <= MAX_KEY_BYTES => key,
            _ => {
                let response = error(status::BAD_REQUEST, "a valid Idempotency-Key is required");
                return self.reply(ctx, Some(client), response, false, None);
            }
        };
        let name = request.op.name_or_id();
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
            fingerprint: request.op.fingerprint(),
            op: request.op,
            client: Some(client),
            step: Step::Idle,
            held: None,
            expires_at_ms: 0,
        };
        if self.session.lease.is_none() || self.operations.len() >= MAX_OPERATIONS {
            return self.give_up(ctx, op, false);
        }
        let id = self.new_operation_id();
        let ttl_ms = self.settings.idempotency_ttl_ms;
        let request = StoreRequest::LeaseGrant { ttl_ms };
        self.await_store(ctx, id, op, Step::GrantLedgerLease, request);
    }

    fn handle_reply(&mut self, ctx: &mut Ctx<'_>, request_id: RequestId, reply: Reply) {
        // Unknown: late after its timeout, a network duplicate, or an
        // answer to an earlier incarnation.
        let Some(pending) = self.pending.remove(&request_id) else {
            return;
        };
        ctx.cancel_timer(pending.timer);
        self.dispatch(ctx, pending.purpose, reply);
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, request_id: RequestId) {
        if let Some(pending) = self.pending.remove(&request_id) {
            self.dispatch(ctx, pending.purpose, Reply::TimedOut);
        }
    }

    fn handle_tick(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(ms(self.settings.keepalive_interval_ms), Timer::Tick);
        if self.session.in_flight {
            return;
        }
        // Past its TTL since the last renewal was sent, the store may have
        // expired the lease: stop renewing it and start a new session.
        let age_ns = ctx.mono_ns().saturating_sub(self.session.renewed_at_ns);
        match self.session.lease {
            Some(lease) if age_ns < ms(self.settings.session_ttl_ms) => {
                self.session.in_flight = true;
                let purpose = Purpose::SessionKeepAlive {
                    lease,
                    sent_at_ns: ctx.mono_ns(),
                };
                self.send_store(ctx, purpose, StoreRequest::LeaseKeepAlive { lease });
            }
            _ => self.grant_session(ctx),
        }
    }

    fn handle_completer(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(ms(self.settings.completer_interval_ms), Timer::Completer);
        let full = self.operations.len() >= MAX_OPERATIONS;
        if self.completer_scanning || self.session.lease.is_none() || full {
            return;
        }
        self.completer_scanning = true;
        let scan = Txn::unconditional(vec![
            Op::GetPrefix {
                prefix: keys::LEDGER.into(),
            },
            Op::GetPrefix {
                prefix: keys::LOCKS.into(),
            },
        ]);
        self.send_store(ctx, Purpose::CompleterScan, StoreRequest::Txn(scan));
    }

    fn dispatch(&mut self, ctx: &mut Ctx<'_>, purpose: Purpose, reply: Reply) {
        match purpose {
            Purpose::SessionGrant { sent_at_ns } => self.on_session_granted(sent_at_ns, reply),
            Purpose::SessionKeepAlive { lease, sent_at_ns } => {
                self.on_session_kept_alive(ctx, lease, sent_at_ns, reply)
            }
            Purpose::CompleterScan => self.on_completer_scan(ctx, reply),
            Purpose::Operation(id) => {
                let Some(op) = self.operations.remove(&id) else {
                    unreachable!("an operation lives while its request is pending");
                };
                self.advance(ctx, id, op, reply);
            }
        }
    }

    // -----------------------------------------------------------------------
    // The session.

    fn grant_session(&mut self, ctx: &mut Ctx<'_>) {
        assert!(!self.session.in_flight, "one session request at a time");
        self.session.lease = None;
        self.session.in_flight = true;
        let purpose = Purpose::SessionGrant {
            sent_at_ns: ctx.mono_ns(),
        };
        let ttl_ms = self.settings.session_ttl_ms;
        self.send_store(ctx, purpose, StoreRequest::LeaseGrant { ttl_ms });
    }

    fn on_session_granted(&mut self, sent_at_ns: u64, reply: Reply) {
        assert!(self.session.lease.is_none());
        self.session.in_flight = false;
        // On an error or a timeout the next tick asks again. A grant that
        // timed out may have been applied: that lease expires unused.
        if let Reply::Store(StoreResponse::LeaseGranted { lease, .. }) = reply {
            self.session.lease = Some(lease);
            self.session.renewed_at_ns = sent_at_ns;
        }
    }

    fn on_session_kept_alive(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseId,
        sent_at_ns: u64,
        reply: Reply,
    ) {
        assert_eq!(self.session.lease, Some(lease), "only a grant replaces it");
        self.session.in_flight = false;
        match reply {
            Reply::Store(StoreResponse::LeaseKeptAlive { .. }) => {
                self.session.renewed_at_ns = sent_at_ns;
            }
            // A lost keep-alive says nothing about the lease: the next tick
            // renews it, until it is old enough to have expired.
            Reply::TimedOut => {}
            // LeaseNotFound (or any failure): the lease is gone.
            Reply::Store(_) | Reply::Charged { .. } => self.grant_session(ctx),
        }
    }

    // -----------------------------------------------------------------------
    // The completer.

    fn on_completer_scan(&mut self, ctx: &mut Ctx<'_>, reply: Reply) {
        self.completer_scanning = false;
        let Reply::Store(StoreResponse::Txn { results, .. }) = reply else {
            return; // Timed out or failed: the next scan tries again.
        };
        let [OpResult::GotPrefix(ledgers), OpResult::GotPrefix(locks)] = &results[..] else {
            unreachable!("a scan reads two prefixes");
        };
        let locks: BTreeMap<&str, &Kv> = locks
            .iter()
            .filter_map(|kv| Some((kv.key.strip_prefix(keys::LOCKS)?, kv)))
            .collect();
        let me = ctx.id();
        let candidates: Vec<(&str, &Kv, Option<&Kv>)> = ledgers
            .iter()
            .filter_map(|ledger| {
                let key = ledger.key.strip_prefix(keys::LEDGER)?;
                let lock = locks.get(key).copied();
                let abandoned = lock.is_none_or(|lock| is_owned_by(lock, me));
                let unfinished = !is_finished(ledger);
                (abandoned && unfinished && !self.key_busy(key)).then_some((key, ledger, lock))
            })
            .collect();
        let start = candidates
            .iter()
            .position(|(key, ..)| *key > self.completer_cursor.as_str())
            .unwrap_or(0);
        let rotated = candidates[start..].iter().chain(&candidates[..start]);
        for &(key, ledger, lock) in rotated.take(COMPLETER_BATCH) {
            if self.operations.len() >= MAX_OPERATIONS {
                break;
            }
            self.completer_cursor = key.to_string();
            self.resume_abandoned(ctx, key, ledger, lock);
        }
    }

    /// Starts an operation without a client that takes `key` over.
    fn resume_abandoned(&mut self, ctx: &mut Ctx<'_>, key: &str, ledger: &Kv, lock: Option<&Kv>) {
        let Value::Ledger(entry) = &ledger.value else {
            unreachable!("the ledger holds ledger entries");
        };
        let op = Operation {
            key: key.to_string(),
            fingerprint: entry.fingerprint,
            op: entry.op.clone(),
            client: None,
            step: Step::Idle,
            held: None,
            expires_at_ms: 0,
        };
        let id = self.new_operation_id();
        self.claim(ctx, id, op, ledger, lock);
    }

    // -----------------------------------------------------------------------
    // Operations: the state machine.

    /// Feeds the reply of an operation's outstanding request to its step.
    fn advance(&mut self, ctx: &mut Ctx<'_>, id: OperationId, mut op: Operation, reply: Reply) {
        let step = std::mem::replace(&mut op.step, Step::Idle);
        // A ledger lease granted but not yet holding a record is revoked if
        // the operation ends here.
        let unused_lease = match &step {
            Step::CheckLedger { ledger_lease } | Step::ChargeFirst { ledger_lease, .. } => {
                Some(*ledger_lease)
            }
            _ => None,
        };
        let response = match (step, reply) {
            (Step::Charge { .. }, Reply::Charged { key, charge_id }) if key == op.key => {
                return self.save_charged(ctx, id, op, charge_id);
            }
            (Step::Charge { sends }, Reply::TimedOut) if sends < MAX_CHARGE_SENDS => {
                return self.charge(ctx, id, op, sends + 1);
            }
            (Step::ChargeFirst { ledger_lease, .. }, Reply::Charged { key, charge_id })
                if key == op.key =>
            {
                let recovery = Recovery::Charged { charge_id };
                return self.record(ctx, id, op, ledger_lease, recovery);
            }
            (
                Step::ChargeFirst {
                    sends,
                    ledger_lease,
                },
                Reply::TimedOut,
            ) if sends < MAX_CHARGE_SENDS => {
                return self.charge_first(ctx, id, op, ledger_lease, sends + 1);
            }
            (step, Reply::Store(response)) if !matches!(response, StoreResponse::Error(_)) => {
                (step, response)
            }
            // A timeout, a store error, or an answer that does not fit.
            _ => {
                if let Some(lease) = unused_lease {
                    self.revoke(ctx, lease);
                }
                return self.give_up(ctx, op, false);
            }
        };
        match response {
            (
                Step::GrantLedgerLease,
                StoreResponse::LeaseGranted {
                    lease,
                    expires_at_ms,
                    ..
                },
            ) => {
                let op = Operation {
                    expires_at_ms,
                    ..op
                };
                self.with_ledger_lease(ctx, id, op, lease)
            }
            (
                step,
                StoreResponse::Txn {
                    succeeded,
                    revision,
                    results,
                },
            ) => {
                let txn = TxnOutcome {
                    succeeded,
                    revision,
                    results,
                };
                self.on_txn(ctx, id, op, step, txn)
            }
            _ => self.give_up(ctx, op, false),
        }
    }

    fn on_txn(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        step: Step,
        txn: TxnOutcome,
    ) {
        match step {
            Step::Record {
                entry,
                ledger_lease,
            } => self.on_record(ctx, id, op, *entry, ledger_lease, txn),
            Step::Claim {
                entry,
                ledger_lease,
            } => self.on_claim(ctx, id, op, *entry, ledger_lease, txn),
            Step::SaveCharged { charge_id } => self.on_save_charged(ctx, id, op, charge_id, txn),
            Step::Read => self.on_read(ctx, id, op, txn),
            Step::Commit(commit) => self.on_commit(ctx, id, op, *commit, txn),
            Step::CheckLedger { ledger_lease } => {
                self.on_check_ledger(ctx, id, op, ledger_lease, txn)
            }
            Step::ReplayRead(entry) => self.on_replay_read(ctx, op, &entry, txn),
            Step::Idle | Step::GrantLedgerLease | Step::Charge { .. } => {
                self.give_up(ctx, op, false)
            }
            Step::ChargeFirst { ledger_lease, .. } => {
                self.revoke(ctx, ledger_lease);
                self.give_up(ctx, op, false)
            }
        }
    }

    /// The key's ledger lease is granted: record the key. (The planted bugs
    /// `side-effect-before-ledger` and `ledger-check-then-act` take their
    /// own way to the record.)
    fn with_ledger_lease(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
    ) {
        if self.bugs.side_effect_before_ledger && matches!(op.op, ApiOp::Create { .. }) {
            return self.charge_first(ctx, id, op, ledger_lease, 1);
        }
        if self.bugs.ledger_check_then_act {
            return self.check_ledger(ctx, id, op, ledger_lease);
        }
        self.record(ctx, id, op, ledger_lease, Recovery::Started);
    }

    /// Planted bug `ledger-check-then-act`: look before leaping, in two
    /// requests, so another request with the key can leap in between.
    fn check_ledger(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
    ) {
        let read = Txn::unconditional(vec![
            Op::Get {
                key: keys::ledger(&op.key),
            },
            Op::Get {
                key: keys::lock(&op.key),
            },
        ]);
        let step = Step::CheckLedger { ledger_lease };
        self.await_store(ctx, id, op, step, StoreRequest::Txn(read));
    }

    fn on_check_ledger(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
        txn: TxnOutcome,
    ) {
        let mut results = txn.results.into_iter();
        let (Some(OpResult::Got(ledger)), Some(OpResult::Got(lock))) =
            (results.next(), results.next())
        else {
            unreachable!("a ledger check reads two keys");
        };
        if ledger.is_none() {
            // Absent when read; the record below no longer compares that.
            return self.record(ctx, id, op, ledger_lease, Recovery::Started);
        }
        self.revoke(ctx, ledger_lease);
        self.on_existing(ctx, id, op, ledger, lock);
    }

    /// Planted bug `side-effect-before-ledger`: charge, then record the key
    /// as already charged.
    fn charge_first(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
        sends: u32,
    ) {
        assert!((1..=MAX_CHARGE_SENDS).contains(&sends));
        let step = Step::ChargeFirst {
            sends,
            ledger_lease,
        };
        self.send_charge(ctx, id, op, step);
    }

    /// Phase 1: record the key at `recovery` (`Started`), with my lock, if
    /// it is new.
    fn record(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
        recovery: Recovery,
    ) {
        let Some(session) = self.session.lease else {
            self.revoke(ctx, ledger_lease);
            return self.give_up(ctx, op, false);
        };
        let resource_id = match &op.op {
            ApiOp::Create { .. } => format!("r{:016x}", ctx.rng().next_u64()),
            ApiOp::Update { id, .. } | ApiOp::Delete { id } => id.clone(),
        };
        let entry = LedgerEntry {
            fingerprint: op.fingerprint,
            op: op.op.clone(),
            resource_id,
            recovery,
            ttl_ms: self.settings.idempotency_ttl_ms,
            expires_at_ms: op.expires_at_ms,
        };
        let (ledger_key, lock_key) = (keys::ledger(&op.key), keys::lock(&op.key));
        let absent = Compare::Absent {
            key: ledger_key.clone(),
        };
        let txn = Txn {
            // The planted `ledger-check-then-act` bug checked in a read
            // before, and writes whatever happened since.
            compares: if self.bugs.ledger_check_then_act {
                vec![]
            } else {
                vec![absent]
            },
            success: vec![
                put(
                    &ledger_key,
                    Value::Ledger(entry.clone()),
                    Some(ledger_lease),
                ),
                put(&lock_key, Value::Lock { owner: ctx.id() }, Some(session)),
            ],
            failure: vec![Op::Get { key: ledger_key }, Op::Get { key: lock_key }],
        };
        let entry = Box::new(entry);
        let step = Step::Record {
            entry,
            ledger_lease,
        };
        self.await_store(ctx, id, op, step, StoreRequest::Txn(txn));
    }

    fn on_record(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        entry: LedgerEntry,
        ledger_lease: LeaseId,
        txn: TxnOutcome,
    ) {
        if txn.succeeded {
            self.record_started(ctx, &op);
            op.held = Some(Held {
                lock_revision: txn.revision,
                entry,
                ledger_lease: Some(ledger_lease),
            });
            return self.resume(ctx, id, op);
        }
        let mut results = txn.results.into_iter();
        let (Some(OpResult::Got(ledger)), Some(OpResult::Got(lock))) =
            (results.next(), results.next())
        else {
            unreachable!("a failed record reads two keys");
        };
        let Some(mine) = ledger.as_ref().filter(|kv| kv.lease == Some(ledger_lease)) else {
            self.revoke(ctx, ledger_lease);
            return self.on_existing(ctx, id, op, ledger, lock);
        };
        // The entry is on my lease: my record was applied before (the
        // network duplicated the request and lost the first reply).
        self.record_started(ctx, &op);
        let my_lock = lock.as_ref().filter(|lock| {
            is_owned_by(lock, ctx.id()) && lock.mod_revision == mine.create_revision
        });
        if let Some(lock) = my_lock {
            // The lock is the one that record wrote: I hold the key already,
            // so resume rather than take my own key over.
            op.held = Some(Held {
                lock_revision: lock.mod_revision,
                entry,
                ledger_lease: Some(ledger_lease),
            });
            return self.resume(ctx, id, op);
        }
        self.on_existing(ctx, id, op, ledger, lock);
    }

    /// Phase 2 of the draft: the key exists; replay, refuse, or take over.
    fn on_existing(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger: Option<Kv>,
        lock: Option<Kv>,
    ) {
        let Some(Kv {
            value: Value::Ledger(entry),
            ..
        }) = &ledger
        else {
            return self.give_up(ctx, op, false); // Expired meanwhile.
        };
        if entry.fingerprint != op.fingerprint {
            ctx.record(Event::KeyMismatch {
                key: op.key.clone(),
                stored_fingerprint: entry.fingerprint,
                fingerprint: op.fingerprint,
            });
            let response = error(
                status::UNPROCESSABLE,
                "the key was used for another request",
            );
            return self.reply(ctx, op.client, response, false, None);
        }
        if let Recovery::Finished { response } = &entry.recovery {
            if self.bugs.stale_replay_body {
                return self.read_for_replay(ctx, id, op, entry.clone());
            }
            let (response, entry) = (response.clone(), entry.clone());
            return self.replay(ctx, op, response, &entry);
        }
        let abandoned = match &lock {
            None => true,
            Some(lock) => is_owned_by(lock, ctx.id()) && !self.key_busy(&op.key),
        };
        if !abandoned {
            return self.refuse_in_flight(ctx, op);
        }
        let ledger = ledger.as_ref().expect("matched above");
        self.claim(ctx, id, op, ledger, lock.as_ref());
    }

    /// Takes an abandoned key: puts my lock if the lock and the entry are
    /// still as seen.
    fn claim(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger: &Kv,
        lock: Option<&Kv>,
    ) {
        let Some(session) = self.session.lease else {
            return self.give_up(ctx, op, false);
        };
        let Value::Ledger(entry) = &ledger.value else {
            unreachable!("the ledger holds ledger entries");
        };
        let lock_key = keys::lock(&op.key);
        let lock_unchanged = match lock {
            None => Compare::Absent {
                key: lock_key.clone(),
            },
            Some(lock) => Compare::ModRevisionEquals {
                key: lock_key.clone(),
                revision: lock.mod_revision,
            },
        };
        let entry_unchanged = Compare::ModRevisionEquals {
            key: ledger.key.clone(),
            revision: ledger.mod_revision,
        };
        let txn = Txn {
            compares: vec![lock_unchanged, entry_unchanged],
            success: vec![put(
                &lock_key,
                Value::Lock { owner: ctx.id() },
                Some(session),
            )],
            failure: vec![],
        };
        let step = Step::Claim {
            entry: Box::new(entry.clone()),
            ledger_lease: ledger.lease,
        };
        self.await_store(ctx, id, op, step, StoreRequest::Txn(txn));
    }

    fn on_claim(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        entry: LedgerEntry,
        ledger_lease: Option<LeaseId>,
        txn: TxnOutcome,
    ) {
        if !txn.succeeded {
            // Someone else got there first (or the entry moved on).
            return self.refuse_in_flight(ctx, op);
        }
        ctx.record(Event::KeyTakenOver {
            key: op.key.clone(),
            by_completer: op.client.is_none(),
        });
        op.held = Some(Held {
            lock_revision: txn.revision,
            entry,
            ledger_lease,
        });
        self.resume(ctx, id, op);
    }

    /// Continues a key I hold from its recovery point.
    fn resume(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation) {
        let held = op.held.as_ref().expect("resuming needs the lock");
        match (&held.entry.op, &held.entry.recovery) {
            // Not reached: records write Started and claims compare an
            // unfinished entry's revision. Replaying is still right.
            (_, Recovery::Finished { response }) => {
                let (response, entry) = (response.clone(), held.entry.clone());
                self.replay(ctx, op, response, &entry)
            }
            (ApiOp::Create { .. }, Recovery::Started) => self.charge(ctx, id, op, 1),
            (ApiOp::Create { .. }, Recovery::Charged { .. }) => self.commit_create(ctx, id, op),
            (ApiOp::Update { .. } | ApiOp::Delete { .. }, _) => self.read(ctx, id, op),
        }
    }

    /// The foreign side effect: billing deduplicates on the key.
    fn charge(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation, sends: u32) {
        assert!((1..=MAX_CHARGE_SENDS).contains(&sends));
        self.send_charge(ctx, id, op, Step::Charge { sends });
    }

    /// Sends the charge of `op`, which waits for billing in `step`.
    fn send_charge(&mut self, ctx: &mut Ctx<'_>, id: OperationId, mut op: Operation, step: Step) {
        let request_id = self.new_request_id(ctx);
        let charge = Msg::Charge {
            request_id,
            key: op.key.clone(),
            amount_cents: self.settings.charge_cents,
        };
        ctx.send(self.topology.billing, charge);
        op.step = step;
        self.track(ctx, request_id, Purpose::Operation(id));
        self.operations.insert(id, op);
    }

    /// Planted bug `stale-replay-body`: instead of the stored response, a
    /// replay answers with the resource as it is now.
    fn read_for_replay(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        entry: LedgerEntry,
    ) {
        let read = Txn::unconditional(vec![Op::Get {
            key: keys::resource(&entry.resource_id),
        }]);
        let step = Step::ReplayRead(Box::new(entry));
        self.await_store(ctx, id, op, step, StoreRequest::Txn(read));
    }

    fn on_replay_read(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: Operation,
        entry: &LedgerEntry,
        txn: TxnOutcome,
    ) {
        let [OpResult::Got(found)] = &txn.results[..] else {
            unreachable!("a replay read gets one key");
        };
        let response = recomputed_response(entry, found.as_ref());
        self.replay(ctx, op, response, entry);
    }

    /// Saves the recovery point `Charged`, so a takeover skips the charge.
    fn save_charged(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation, charge_id: u64) {
        let held = op.held.as_ref().expect("charging needs the lock");
        let mut entry = held.entry.clone();
        entry.recovery = Recovery::Charged { charge_id };
        let txn = Txn {
            compares: vec![lock_unchanged(&op.key, held)],
            success: vec![put(
                &keys::ledger(&op.key),
                Value::Ledger(entry),
                held.ledger_lease,
            )],
            failure: vec![],
        };
        let step = Step::SaveCharged { charge_id };
        self.await_store(ctx, id, op, step, StoreRequest::Txn(txn));
    }

    fn on_save_charged(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        charge_id: u64,
        txn: TxnOutcome,
    ) {
        if !txn.succeeded {
            return self.give_up(ctx, op, true);
        }
        let held = op.held.as_mut().expect("saving needs the lock");
        held.entry.recovery = Recovery::Charged { charge_id };
        self.commit_create(ctx, id, op);
    }

    fn commit_create(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation) {
        let held = op.held.as_ref().expect("committing needs the lock");
        let ApiOp::Create { name, spec } = &held.entry.op else {
            unreachable!("only creates charge");
        };
        let resource = Resource {
            id: held.entry.resource_id.clone(),
            name: name.clone(),
            spec: *spec,
            generation: 1,
        };
        let commit = Commit {
            response: ApiResponse {
                status: status::CREATED,
                body: ResponseBody::Resource(resource.clone()),
            },
            write: Write::Create(resource),
            resource_revision: 0,
            attempt: 1,
        };
        self.commit(ctx, id, op, commit);
    }

    /// Updates and deletes read the resource under the lock first.
    fn read(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation) {
        let held = op.held.as_ref().expect("reading needs the lock");
        let txn = Txn {
            compares: vec![lock_unchanged(&op.key, held)],
            success: vec![Op::Get {
                key: keys::resource(&held.entry.resource_id),
            }],
            failure: vec![],
        };
        self.await_store(ctx, id, op, Step::Read, StoreRequest::Txn(txn));
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation, txn: TxnOutcome) {
        if !txn.succeeded {
            return self.give_up(ctx, op, true);
        }
        let [OpResult::Got(found)] = &txn.results[..] else {
            unreachable!("a read gets one key");
        };
        let held = op.held.as_ref().expect("reading needs the lock");
        match plan_change(&held.entry, found.as_ref(), 1) {
            Some(commit) => self.commit(ctx, id, op, commit),
            None => self.give_up(ctx, op, false),
        }
    }

    /// Phase 3: the resource write, the stored response and the unlock, at
    /// once, only while my lock stands and the resource is as planned.
    fn commit(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation, commit: Commit) {
        let held = op.held.as_ref().expect("committing needs the lock");
        let resource_id = &held.entry.resource_id;
        let resource_key = keys::resource(resource_id);
        let mut success = match &commit.write {
            Write::Create(resource) | Write::Update(resource) => {
                vec![put(&resource_key, Value::Resource(resource.clone()), None)]
            }
            Write::Delete => vec![
                Op::Delete {
                    key: resource_key.clone(),
                },
                Op::Delete {
                    key: keys::status(resource_id),
                },
            ],
            Write::Nothing => vec![],
        };
        let mut finished = held.entry.clone();
        finished.recovery = Recovery::Finished {
            response: commit.response.clone(),
        };
        let ledger = Value::Ledger(finished);
        success.push(put(&keys::ledger(&op.key), ledger, held.ledger_lease));
        success.push(Op::Delete {
            key: keys::lock(&op.key),
        });
        let resource_as_planned = match commit.resource_revision {
            0 => Compare::Absent {
                key: resource_key.clone(),
            },
            revision => Compare::ModRevisionEquals {
                key: resource_key.clone(),
                revision,
            },
        };
        let txn = Txn {
            compares: vec![lock_unchanged(&op.key, held), resource_as_planned],
            success,
            failure: vec![
                Op::Get {
                    key: keys::lock(&op.key),
                },
                Op::Get { key: resource_key },
            ],
        };
        let step = Step::Commit(Box::new(commit));
        self.await_store(ctx, id, op, step, StoreRequest::Txn(txn));
    }

    fn on_commit(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        commit: Commit,
        txn: TxnOutcome,
    ) {
        if txn.succeeded {
            return self.finish(ctx, op, commit, txn.revision);
        }
        let [OpResult::Got(lock), OpResult::Got(found)] = &txn.results[..] else {
            unreachable!("a failed commit reads two keys");
        };
        let held = op.held.as_ref().expect("committing needs the lock");
        if lock
            .as_ref()
            .is_none_or(|lock| lock.mod_revision != held.lock_revision)
        {
            return self.give_up(ctx, op, true);
        }
        // My lock stands, so the resource changed under the plan: plan
        // again from what is there now, a bounded number of times.
        let retry = matches!(
            commit.write,
            Write::Update(_) | Write::Delete | Write::Nothing
        ) && commit.attempt < MAX_COMMIT_ATTEMPTS;
        match plan_change(&held.entry, found.as_ref(), commit.attempt + 1) {
            Some(next) if retry => self.commit(ctx, id, op, next),
            _ => self.give_up(ctx, op, false),
        }
    }

    /// The commit is confirmed: record it and answer.
    fn finish(&mut self, ctx: &mut Ctx<'_>, op: Operation, commit: Commit, revision: u64) {
        let held = op.held.as_ref().expect("finishing needs the lock");
        let fingerprint = held.entry.fingerprint;
        let resource = match commit.write {
            Write::Create(resource) | Write::Update(resource) => Some(Some(resource)),
            Write::Delete => Some(None),
            Write::Nothing => None,
        };
        if let Some(resource) = resource {
            ctx.record(Event::ResourceCommitted {
                id: held.entry.resource_id.clone(),
                key: op.key.clone(),
                fingerprint,
                created: matches!(held.entry.op, ApiOp::Create { .. }),
                resource,
                revision,
            });
        }
        ctx.record(Event::KeyFinished {
            key: op.key.clone(),
            fingerprint,
            response: commit.response.clone(),
            by_completer: op.client.is_none(),
        });
        self.reply(ctx, op.client, commit.response, false, Some(&held.entry));
    }

    // -----------------------------------------------------------------------
    // Helpers.

    fn new_operation_id(&mut self) -> OperationId {
        self.next_operation += 1;
        self.next_operation
    }

    fn new_request_id(&mut self, ctx: &mut Ctx<'_>) -> RequestId {
        self.next_request += 1;
        request_id(ctx.boot(), self.next_request)
    }

    /// Whether an operation of mine works on `key` (in any phase).
    fn key_busy(&self, key: &str) -> bool {
        self.operations.values().any(|op| op.key == key)
    }

    fn record_started(&self, ctx: &mut Ctx<'_>, op: &Operation) {
        ctx.record(Event::KeyStarted {
            key: op.key.clone(),
            fingerprint: op.fingerprint,
        });
    }

    // -----------------------------------------------------------------------
    // Outputs.

    /// Sends a tracked store request for operation `id`, which waits in
    /// `step` for the reply.
    fn await_store(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        step: Step,
        request: StoreRequest<Value>,
    ) {
        op.step = step;
        self.send_store(ctx, Purpose::Operation(id), request);
        let previous = self.operations.insert(id, op);
        assert!(previous.is_none(), "an operation waits on one request");
        assert!(self.operations.len() <= MAX_OPERATIONS);
    }

    fn send_store(&mut self, ctx: &mut Ctx<'_>, purpose: Purpose, request: StoreRequest<Value>) {
        let request_id = self.new_request_id(ctx);
        let message = Msg::StoreRequest {
            request_id,
            request,
        };
        ctx.send(self.topology.store, message);
        self.track(ctx, request_id, purpose);
    }

    fn track(&mut self, ctx: &mut Ctx<'_>, request_id: RequestId, purpose: Purpose) {
        let timeout = Timer::RequestTimeout(request_id);
        let timer = ctx.set_timer(ms(self.settings.request_timeout_ms), timeout);
        let fresh = self.pending.insert(request_id, Pending { purpose, timer });
        assert!(fresh.is_none(), "request ids are unique");
    }

    /// Sends an untracked request: its reply is ignored.
    fn fire_and_forget(&mut self, ctx: &mut Ctx<'_>, request: StoreRequest<Value>) {
        let request_id = self.new_request_id(ctx);
        let message = Msg::StoreRequest {
            request_id,
            request,
        };
        ctx.send(self.topology.store, message);
    }

    fn revoke(&mut self, ctx: &mut Ctx<'_>, lease: LeaseId) {
        self.fire_and_forget(ctx, StoreRequest::LeaseRevoke { lease });
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
        ctx.send(client.node, Msg::ApiReply(reply));
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
                self.handle_reply(ctx, request_id, Reply::Store(response))
            }
            Msg::Charged {
                request_id,
                key,
                charge_id,
            } if from == self.topology.billing => {
                self.handle_reply(ctx, request_id, Reply::Charged { key, charge_id })
            }
            _ => {} // Not addressed to an API node.
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: Timer) {
        match tag {
            Timer::RequestTimeout(request_id) => self.handle_timeout(ctx, request_id),
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
fn lock_unchanged(key: &str, held: &Held) -> Compare<Value> {
    Compare::ModRevisionEquals {
        key: keys::lock(key),
        revision: held.lock_revision,
    }
}

fn is_owned_by(lock: &Kv, node: NodeId) -> bool {
    matches!(lock.value, Value::Lock { owner } if owner == node)
}

fn is_finished(ledger: &Kv) -> bool {
    matches!(
        &ledger.value,
        Value::Ledger(LedgerEntry {
            recovery: Recovery::Finished { .. },
            ..
        })
    )
}

/// What the planted `stale-replay-body` bug answers for a finished key: the
/// stored status with the resource as `found` now (404 if it is gone). A
/// delete's answer names only the id, so it comes out unchanged.
fn recomputed_response(entry: &LedgerEntry, found: Option<&Kv>) -> ApiResponse {
    let Recovery::Finished { response: stored } = &entry.recovery else {
        unreachable!("only a finished key is replayed");
    };
    match (&entry.op, found.map(|kv| &kv.value)) {
        (ApiOp::Delete { .. }, _) => stored.clone(),
        (_, Some(Value::Resource(current))) => ApiResponse {
            status: stored.status,
            body: ResponseBody::Resource(current.clone()),
        },
        _ => error(
            status::NOT_FOUND,
            &format!("resource {} not found", entry.resource_id),
        ),
    }
}

/// Plans the commit of an update or delete from the resource as found:
/// absent gives a stored 404. `None` when the entry is not a change.
fn plan_change(entry: &LedgerEntry, found: Option<&Kv>, attempt: u32) -> Option<Commit> {
    let id = &entry.resource_id;
    let Some(found) = found else {
        let response = error(status::NOT_FOUND, &format!("resource {id} not found"));
        return Some(Commit {
            response,
            write: Write::Nothing,
            resource_revision: 0,
            attempt,
        });
    };
    let Value::Resource(current) = &found.value else {
        return None;
    };
    let (body, write) = match &entry.op {
        // The same spec again is not a change: the generation stays, and
        // the commit only checks that nothing moved under the answer.
        ApiOp::Update { spec, .. } if *spec == current.spec => {
            (ResponseBody::Resource(current.clone()), Write::Nothing)
        }
        ApiOp::Update { spec, .. } => {
            let next = Resource {
                spec: *spec,
                generation: current.generation + 1,
                ..current.clone()
            };
            (ResponseBody::Resource(next.clone()), Write::Update(next))
        }
        ApiOp::Delete { .. } => (ResponseBody::Deleted { id: id.clone() }, Write::Delete),
        ApiOp::Create { .. } => return None,
    };
    let response = ApiResponse {
        status: status::OK,
        body,
    };
    Some(Commit {
        response,
        write,
        resource_revision: found.mod_revision,
        attempt,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use node::MILLISECOND_NS;
    use node::testing::{Harness, Output};

    use super::*;
    use crate::billing::BillingNode;
    use crate::protocol::{Spec, Status};
    use crate::store::KvStore;

    const STORE: NodeId = NodeId(0);
    const BILLING: NodeId = NodeId(1);
    const API_A: NodeId = NodeId(2);
    const API_B: NodeId = NodeId(3);
    const CLIENT: NodeId = NodeId(4);

    fn topology() -> Topology {
        Topology {
            store: STORE,
            billing: BILLING,
            apis: vec![API_A, API_B],
            clients: vec![CLIENT],
            ..Topology::default()
        }
    }

    /// Short session and timers, so tests expire sessions in a few ticks.
    fn settings() -> ApiSettings {
        ApiSettings {
            request_timeout_ms: 100,
            session_ttl_ms: 1_000,
            keepalive_interval_ms: 200,
            completer_interval_ms: 500,
            ..ApiSettings::default()
        }
    }

    fn node() -> Box<ApiNode> {
        Box::new(ApiNode::new(topology(), settings()))
    }

    type Hold = Box<dyn Fn(NodeId, NodeId, &Msg) -> bool>;

    /// Two API nodes, a real billing node and a real store state machine,
    /// wired by a FIFO queue. Messages matching `hold` wait in `held` until
    /// the test releases (or drops) them.
    struct Cluster {
        store: KvStore<Value>,
        store_now_ms: u64,
        billing: Harness<ControlPlane>,
        apis: Vec<Harness<ControlPlane>>,
        queue: VecDeque<(NodeId, NodeId, Msg)>,
        held: Vec<(NodeId, NodeId, Msg)>,
        hold: Hold,
        records: Vec<(NodeId, Event)>,
        replies: Vec<ApiReply>,
        next_client_request: RequestId,
    }

    impl Cluster {
        fn unstarted() -> Self {
            let mut billing = Harness::new(1, BILLING, Box::new(BillingNode::new()));
            billing.start();
            Self {
                store: KvStore::default(),
                store_now_ms: 0,
                billing,
                apis: vec![
                    Harness::new(2, API_A, node()),
                    Harness::new(3, API_B, node()),
                ],
                queue: VecDeque::new(),
                held: Vec::new(),
                hold: no_hold(),
                records: Vec::new(),
                replies: Vec::new(),
                next_client_request: 0,
            }
        }

        /// Both API nodes with `bugs` planted, started.
        fn planted(bugs: &[Bug]) -> Self {
            Self::with(ApiSettings {
                bugs: bugs.iter().copied().collect(),
                ..settings()
            })
        }

        /// Both API nodes with `settings`, started.
        fn with(settings: ApiSettings) -> Self {
            let mut cluster = Self::unstarted();
            let node =
                |settings: &ApiSettings| Box::new(ApiNode::new(topology(), settings.clone()));
            cluster.apis = vec![
                Harness::new(2, API_A, node(&settings)),
                Harness::new(3, API_B, node(&settings)),
            ];
            cluster.start(API_A);
            cluster.start(API_B);
            cluster
        }

        /// Both API nodes started, with their sessions granted.
        fn new() -> Self {
            let mut cluster = Self::unstarted();
            cluster.start(API_A);
            cluster.start(API_B);
            cluster
        }

        fn api(&mut self, node: NodeId) -> &mut Harness<ControlPlane> {
            &mut self.apis[node.index() - API_A.index()]
        }

        fn start(&mut self, node: NodeId) {
            let output = self.api(node).start();
            self.absorb(node, output);
        }

        fn restart(&mut self, node: NodeId) {
            let output = self.api(node).restart(self::node());
            self.absorb(node, output);
        }

        fn absorb(&mut self, from: NodeId, output: Output<ControlPlane>) {
            self.records
                .extend(output.records.into_iter().map(|event| (from, event)));
            for (to, message) in output.sent {
                self.queue.push_back((from, to, message));
            }
            self.pump();
        }

        fn pump(&mut self) {
            for _ in 0..100_000 {
                let Some((from, to, message)) = self.queue.pop_front() else {
                    return;
                };
                if (self.hold)(from, to, &message) {
                    self.held.push((from, to, message));
                } else {
                    self.deliver(from, to, message);
                }
            }
            panic!("the cluster did not settle");
        }

        fn deliver(&mut self, from: NodeId, to: NodeId, message: Msg) {
            match to {
                STORE => {
                    let Msg::StoreRequest {
                        request_id,
                        request,
                    } = message
                    else {
                        panic!("the store gets store requests: {message:?}");
                    };
                    let sender_ms = self.api(from).now_ns() / MILLISECOND_NS;
                    self.store_now_ms = self.store_now_ms.max(sender_ms);
                    let response = self.store.apply(self.store_now_ms, request);
                    let reply = Msg::StoreReply {
                        request_id,
                        response,
                    };
                    self.queue.push_back((STORE, from, reply));
                }
                BILLING => {
                    let output = self.billing.deliver(from, message);
                    self.records
                        .extend(output.records.into_iter().map(|event| (BILLING, event)));
                    for (to, message) in output.sent {
                        self.queue.push_back((BILLING, to, message));
                    }
                }
                CLIENT => {
                    let Msg::ApiReply(reply) = message else {
                        panic!("clients get API replies: {message:?}");
                    };
                    self.replies.push(reply);
                }
                api => {
                    let output = self.api(api).deliver(from, message);
                    self.records
                        .extend(output.records.into_iter().map(|event| (api, event)));
                    for (to, message) in output.sent {
                        self.queue.push_back((api, to, message));
                    }
                }
            }
        }

        /// Sends a client request and runs everything that follows.
        fn send(&mut self, api: NodeId, key: Option<&str>, op: ApiOp) -> RequestId {
            self.next_client_request += 1;
            let request = ApiRequest {
                request_id: self.next_client_request,
                idempotency_key: key.map(String::from),
                op,
            };
            let output = self.api(api).deliver(CLIENT, Msg::Api(request));
            self.absorb(api, output);
            self.next_client_request
        }

        /// Sends a request and returns its one answer.
        fn call(&mut self, api: NodeId, key: &str, op: ApiOp) -> ApiReply {
            let request_id = self.send(api, Some(key), op);
            self.only_reply(request_id)
        }

        fn replies_to(&self, request_id: RequestId) -> Vec<&ApiReply> {
            self.replies
                .iter()
                .filter(|reply| reply.request_id == request_id)
                .collect()
        }

        fn only_reply(&self, request_id: RequestId) -> ApiReply {
            let replies = self.replies_to(request_id);
            assert_eq!(replies.len(), 1, "one reply to {request_id}: {replies:?}");
            replies[0].clone()
        }

        fn fire(&mut self, api: NodeId, wanted: impl Fn(&Timer) -> bool) {
            let output = self.api(api).fire_timer(wanted).expect("a pending timer");
            self.absorb(api, output);
        }

        /// Fires `api`'s next keep-alive tick `rounds` times (each moves its
        /// clock, and so the store's, by the keep-alive interval).
        fn tick(&mut self, api: NodeId, rounds: u32) {
            for _ in 0..rounds {
                self.fire(api, |timer| matches!(timer, Timer::Tick));
            }
        }

        fn fire_completer(&mut self, api: NodeId) {
            self.fire(api, |timer| matches!(timer, Timer::Completer));
        }

        fn fire_request_timeout(&mut self, api: NodeId) {
            self.fire(api, |timer| matches!(timer, Timer::RequestTimeout(_)));
        }

        /// Stops holding, and delivers everything held so far.
        fn release_all(&mut self) {
            self.hold = no_hold();
            self.queue.extend(self.held.drain(..));
            self.pump();
        }

        fn count(&self, wanted: impl Fn(&Event) -> bool) -> usize {
            self.records
                .iter()
                .filter(|(_, event)| wanted(event))
                .count()
        }

        fn read(&mut self, prefix: &str) -> Vec<Kv> {
            let scan = Txn::unconditional(vec![Op::GetPrefix {
                prefix: prefix.into(),
            }]);
            let StoreResponse::Txn { mut results, .. } =
                self.store.apply(self.store_now_ms, StoreRequest::Txn(scan))
            else {
                panic!("a read succeeds");
            };
            let Some(OpResult::GotPrefix(found)) = results.pop() else {
                panic!("a prefix read");
            };
            found
        }

        fn resources(&mut self) -> Vec<Resource> {
            self.read(keys::RESOURCES)
                .into_iter()
                .map(|kv| match kv.value {
                    Value::Resource(resource) => resource,
                    other => panic!("not a resource: {other:?}"),
                })
                .collect()
        }

        fn ledger(&mut self, key: &str) -> Option<LedgerEntry> {
            match self.store.get(&keys::ledger(key)).map(|kv| &kv.value) {
                Some(Value::Ledger(entry)) => Some(entry.clone()),
                None => None,
                other => panic!("not a ledger entry: {other:?}"),
            }
        }

        fn write(&mut self, key: String, value: Value) {
            let txn = Txn::unconditional(vec![put(&key, value, None)]);
            self.store.apply(self.store_now_ms, StoreRequest::Txn(txn));
        }
    }

    fn no_hold() -> Hold {
        Box::new(|_, _, _| false)
    }

    fn spec(replicas: u32) -> Spec {
        Spec { replicas, image: 1 }
    }

    fn create(name: &str) -> ApiOp {
        ApiOp::Create {
            name: name.into(),
            spec: spec(1),
        }
    }

    fn created_resource(reply: &ApiReply) -> Resource {
        assert_eq!(reply.response.status, status::CREATED, "{reply:?}");
        let ResponseBody::Resource(resource) = &reply.response.body else {
            panic!("a created resource: {reply:?}");
        };
        resource.clone()
    }

    fn is_charge_executed(event: &Event) -> bool {
        matches!(event, Event::ChargeExecuted { .. })
    }

    fn is_committed(event: &Event) -> bool {
        matches!(event, Event::ResourceCommitted { .. })
    }

    /// A commit transaction: one that writes a resource.
    fn is_commit(message: &Msg) -> bool {
        let Msg::StoreRequest {
            request: StoreRequest::Txn(txn),
            ..
        } = message
        else {
            return false;
        };
        txn.success
            .iter()
            .any(|op| matches!(op, Op::Put { key, .. } if key.starts_with(keys::RESOURCES)))
    }

    /// A takeover: a transaction that writes only a lock.
    fn is_claim(message: &Msg) -> bool {
        let Msg::StoreRequest {
            request: StoreRequest::Txn(txn),
            ..
        } = message
        else {
            return false;
        };
        matches!(&txn.success[..], [Op::Put { key, .. }] if key.starts_with(keys::LOCKS))
    }

    /// A record transaction: one that creates a ledger entry.
    fn is_record(message: &Msg) -> bool {
        let Msg::StoreRequest {
            request: StoreRequest::Txn(txn),
            ..
        } = message
        else {
            return false;
        };
        txn.compares
            .iter()
            .any(|c| matches!(c, Compare::Absent { key } if key.starts_with(keys::LEDGER)))
    }

    #[test]
    fn a_duplicated_record_whose_first_reply_is_lost_resumes_without_a_takeover() {
        let mut cluster = Cluster::new();
        cluster.hold =
            Box::new(|from, to, message| from == API_A && to == STORE && is_record(message));
        let request_id = cluster.send(API_A, Some("k"), create("a"));
        let (from, to, record) = cluster.held.pop().expect("the record was held");
        // The network delivers the record twice; both replies are held.
        cluster.hold = Box::new(|from, to, _| from == STORE && to == API_A);
        cluster.queue.push_back((from, to, record.clone()));
        cluster.queue.push_back((from, to, record));
        cluster.pump();
        assert_eq!(cluster.held.len(), 2, "success, then failure");
        // The success reply is lost; the failure reply arrives.
        let failure = cluster.held.remove(1);
        cluster.held.clear();
        cluster.hold = no_hold();
        cluster.queue.push_back(failure);
        cluster.pump();
        let reply = cluster.only_reply(request_id);
        assert_eq!(reply.response.status, status::CREATED);
        let taken_over = |e: &Event| matches!(e, Event::KeyTakenOver { .. });
        assert_eq!(cluster.count(taken_over), 0, "my own key is not taken over");
        assert_eq!(cluster.count(is_charge_executed), 1);
    }

    #[test]
    fn missing_key_is_rejected_with_400_and_records_nothing() {
        let mut cluster = Cluster::new();
        let revision = cluster.store.revision();
        let request_id = cluster.send(API_A, None, create("a"));
        let reply = cluster.only_reply(request_id);
        assert_eq!(reply.response.status, status::BAD_REQUEST);
        assert_eq!((reply.replayed, reply.key_ttl_ms), (false, None));
        assert!(cluster.records.is_empty(), "{:?}", cluster.records);
        assert_eq!(cluster.store.revision(), revision, "nothing was written");
    }

    #[test]
    fn request_before_the_session_is_granted_gets_503() {
        let mut cluster = Cluster::unstarted();
        cluster.hold = Box::new(|_, to, _| to == STORE);
        cluster.start(API_A);
        let reply = cluster.call(API_A, "k", create("a"));
        assert_eq!(reply.response.status, status::UNAVAILABLE);
        assert_eq!(reply.key_ttl_ms, None);
        assert!(cluster.records.is_empty());
        assert_eq!(cluster.held.len(), 1, "only the session grant was sent");
    }

    #[test]
    fn create_records_charges_commits_and_answers_201() {
        let mut cluster = Cluster::new();
        let reply = cluster.call(API_A, "k", create("a"));
        let resource = created_resource(&reply);
        assert_eq!((resource.name.as_str(), resource.generation), ("a", 1));
        assert!(!reply.replayed);
        assert_eq!(reply.key_ttl_ms, Some(settings().idempotency_ttl_ms));
        let kinds: Vec<&str> = cluster.records.iter().map(|(_, e)| e.kind_name()).collect();
        assert_eq!(
            kinds,
            [
                "KeyStarted",
                "ChargeExecuted",
                "ResourceCommitted",
                "KeyFinished"
            ]
        );
        let fingerprint = create("a").fingerprint();
        let Event::ResourceCommitted {
            id,
            key,
            fingerprint: committed_fingerprint,
            created,
            resource: committed,
            revision,
        } = &cluster.records[2].1
        else {
            panic!()
        };
        assert_eq!((id, key.as_str()), (&resource.id, "k"));
        assert_eq!((*committed_fingerprint, *created), (fingerprint, true));
        assert_eq!(committed.as_ref(), Some(&resource));
        assert_eq!(
            *revision,
            cluster.store.get(&keys::resource(id)).unwrap().mod_revision
        );
        assert_eq!(cluster.resources(), vec![resource]);
        let entry = cluster.ledger("k").unwrap();
        assert_eq!(
            entry.recovery,
            Recovery::Finished {
                response: reply.response
            }
        );
        assert!(cluster.store.get(&keys::lock("k")).is_none(), "unlocked");
    }

    #[test]
    fn same_key_and_body_replays_the_identical_response() {
        let mut cluster = Cluster::new();
        let first = cluster.call(API_A, "k", create("a"));
        for api in [API_A, API_B] {
            let again = cluster.call(api, "k", create("a"));
            assert_eq!(again.response, first.response);
            assert_eq!((again.replayed, again.key_ttl_ms), (true, first.key_ttl_ms));
        }
        assert_eq!(cluster.count(|e| matches!(e, Event::Replayed { .. })), 2);
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(cluster.count(is_committed), 1);
        assert_eq!(cluster.resources().len(), 1);
    }

    #[test]
    fn same_key_with_a_different_body_gets_422_and_creates_nothing() {
        let mut cluster = Cluster::new();
        cluster.call(API_A, "k", create("a"));
        let reply = cluster.call(API_B, "k", create("b"));
        assert_eq!(reply.response.status, status::UNPROCESSABLE);
        assert_eq!((reply.replayed, reply.key_ttl_ms), (false, None));
        let mismatch = Event::KeyMismatch {
            key: "k".into(),
            stored_fingerprint: create("a").fingerprint(),
            fingerprint: create("b").fingerprint(),
        };
        assert_eq!(cluster.count(|e| *e == mismatch), 1);
        assert_eq!(cluster.count(is_committed), 1);
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(cluster.resources().len(), 1);
    }

    #[test]
    fn with_the_check_then_act_bug_a_late_record_restarts_a_finished_key() {
        let mut cluster = Cluster::planted(&[Bug::LedgerCheckThenAct]);
        // B has read "absent"; its record is slow to reach the store.
        cluster.hold = Box::new(|from, to, message| {
            from == API_B
                && to == STORE
                && matches!(message, Msg::StoreRequest { request: StoreRequest::Txn(txn), .. }
                    if txn.compares.is_empty()
                        && txn.success.iter().any(|op| matches!(op, Op::Put { key, .. } if key.starts_with(keys::LEDGER))))
        });
        let late = cluster.send(API_B, Some("k"), create("a"));
        assert!(cluster.replies_to(late).is_empty());
        let first = cluster.call(API_A, "k", create("a"));
        assert_eq!(first.response.status, status::CREATED);
        cluster.release_all();
        let second = cluster.only_reply(late);
        assert_eq!(second.response.status, status::CREATED);
        assert_ne!(second.response, first.response, "two resources for one key");
        assert_eq!(cluster.count(is_committed), 2);
        assert_eq!(cluster.resources().len(), 2);
    }

    #[test]
    fn with_the_side_effect_first_bug_a_create_refused_422_was_charged() {
        let mut cluster = Cluster::planted(&[Bug::SideEffectBeforeLedger]);
        let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
        let update = ApiOp::Update { id, spec: spec(2) };
        cluster.call(API_A, "u", update);
        let reused = cluster.call(API_B, "u", create("b"));
        assert_eq!(reused.response.status, status::UNPROCESSABLE);
        let charged_u = |e: &Event| matches!(e, Event::ChargeExecuted { key, .. } if key == "u");
        assert_eq!(cluster.count(charged_u), 1, "money taken for a 422");
        assert_eq!(cluster.resources().len(), 1);
    }

    #[test]
    fn with_the_stale_replay_bug_a_replay_after_an_update_answers_the_new_resource() {
        let mut cluster = Cluster::planted(&[Bug::StaleReplayBody]);
        let first = cluster.call(API_A, "c", create("a"));
        let id = created_resource(&first).id;
        cluster.call(API_B, "u", ApiOp::Update { id, spec: spec(3) });
        let again = cluster.call(API_B, "c", create("a"));
        assert!(again.replayed);
        assert_eq!(again.response.status, first.response.status);
        assert_eq!(created_resource(&again).generation, 2);
        assert_ne!(again.response, first.response);
    }

    #[test]
    fn same_key_while_in_flight_gets_409() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, to, _| to == BILLING);
        let first = cluster.send(API_A, Some("k"), create("a"));
        for api in [API_B, API_A] {
            let reply = cluster.call(api, "k", create("a"));
            assert_eq!(reply.response.status, status::CONFLICT);
            assert_eq!(reply.key_ttl_ms, None);
        }
        assert_eq!(cluster.count(|e| matches!(e, Event::KeyInFlight { .. })), 2);
        cluster.release_all();
        created_resource(&cluster.only_reply(first));
    }

    #[test]
    fn duplicate_delivery_of_a_request_in_progress_is_answered_once() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, to, _| to == BILLING);
        let request = ApiRequest {
            request_id: 77,
            idempotency_key: Some("k".into()),
            op: create("a"),
        };
        for _ in 0..2 {
            let output = cluster
                .api(API_A)
                .deliver(CLIENT, Msg::Api(request.clone()));
            cluster.absorb(API_A, output);
        }
        cluster.release_all();
        created_resource(&cluster.only_reply(77));
        assert_eq!(cluster.count(|e| matches!(e, Event::KeyInFlight { .. })), 0);
    }

    #[test]
    fn restarted_node_leaves_a_started_key_that_another_completer_finishes_with_one_charge() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, to, _| to == BILLING);
        let first = cluster.send(API_A, Some("k"), create("a"));
        assert_eq!(cluster.count(|e| matches!(e, Event::KeyStarted { .. })), 1);
        cluster.restart(API_A);
        // The charge sent before the crash still reaches billing; its reply
        // goes to the new incarnation, which ignores it.
        cluster.release_all();
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert!(cluster.replies_to(first).is_empty());
        assert_eq!(cluster.ledger("k").unwrap().recovery, Recovery::Started);
        // B keeps its session alive past A's old session's TTL: the lock
        // hung on that session vanishes.
        cluster.tick(API_B, 6);
        assert!(cluster.store.get(&keys::lock("k")).is_none());
        cluster.fire_completer(API_B);
        let taken = Event::KeyTakenOver {
            key: "k".into(),
            by_completer: true,
        };
        assert_eq!(
            cluster
                .records
                .iter()
                .filter(|r| *r == &(API_B, taken.clone()))
                .count(),
            1
        );
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(
            cluster.count(|e| matches!(e, Event::ChargeDeduplicated { .. })),
            1
        );
        let finished = |e: &Event| {
            matches!(
                e,
                Event::KeyFinished {
                    by_completer: true,
                    ..
                }
            )
        };
        assert_eq!(cluster.count(finished), 1);
        assert_eq!(cluster.count(is_committed), 1);
        let resource = &cluster.resources()[0];
        let retry = cluster.call(API_A, "k", create("a"));
        assert_eq!(
            (created_resource(&retry), retry.replayed),
            (resource.clone(), true)
        );
    }

    #[test]
    fn commit_after_the_lock_was_taken_over_answers_503_and_does_not_commit() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, _, message| is_commit(message));
        let first = cluster.send(API_A, Some("k"), create("a"));
        assert_eq!(cluster.held.len(), 1, "A's commit is delayed");
        // A is paused past its session: B's completer takes the key over at
        // its recovery point (charged); B's commit is delayed too.
        cluster.tick(API_B, 6);
        cluster.fire_completer(API_B);
        assert_eq!(
            cluster.count(|e| matches!(e, Event::KeyTakenOver { .. })),
            1
        );
        assert_eq!(cluster.held.len(), 2);
        // A's commit arrives first, while the resource is still absent:
        // only the lock fence stops it.
        let revision = cluster.store.revision();
        cluster.hold = no_hold();
        let a_commit = cluster.held.remove(0);
        assert_eq!(a_commit.0, API_A);
        cluster.queue.push_back(a_commit);
        cluster.pump();
        let reply = cluster.only_reply(first);
        assert_eq!(reply.response.status, status::UNAVAILABLE);
        assert_eq!(cluster.store.revision(), revision, "A wrote nothing");
        assert_eq!(cluster.count(is_committed), 0);
        cluster.release_all();
        let committed: Vec<NodeId> = cluster
            .records
            .iter()
            .filter(|(_, e)| is_committed(e))
            .map(|(node, _)| *node)
            .collect();
        assert_eq!(committed, vec![API_B]);
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(cluster.resources().len(), 1);
    }

    #[test]
    fn stale_holder_cannot_overwrite_a_key_finished_by_another_node() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|from, to, _| from == API_A && to == BILLING);
        let first = cluster.send(API_A, Some("k"), create("a"));
        // A is paused with its charge in flight; B's completer finishes the
        // key after A's session expired.
        cluster.tick(API_B, 6);
        cluster.fire_completer(API_B);
        let finished = cluster.ledger("k").unwrap();
        assert!(matches!(finished.recovery, Recovery::Finished { .. }));
        // A wakes up: billing answers its old charge (deduplicated), and
        // A's recovery-point write must not clobber the stored response.
        let revision = cluster.store.revision();
        cluster.release_all();
        assert_eq!(
            cluster.only_reply(first).response.status,
            status::UNAVAILABLE
        );
        assert_eq!(cluster.ledger("k"), Some(finished));
        assert_eq!(cluster.store.revision(), revision, "A wrote nothing");
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(cluster.count(is_committed), 1);
    }

    #[test]
    fn update_bumps_generation_and_replays() {
        let mut cluster = Cluster::new();
        let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
        let update = ApiOp::Update {
            id: id.clone(),
            spec: spec(3),
        };
        let reply = cluster.call(API_B, "u", update.clone());
        assert_eq!(reply.response.status, status::OK);
        let expected = Resource {
            id: id.clone(),
            name: "a".into(),
            spec: spec(3),
            generation: 2,
        };
        assert_eq!(
            reply.response.body,
            ResponseBody::Resource(expected.clone())
        );
        assert_eq!(cluster.resources(), vec![expected.clone()]);
        let committed = |e: &Event| matches!(e, Event::ResourceCommitted { created: false, resource: Some(r), .. } if r.generation == 2);
        assert_eq!(cluster.count(committed), 1);
        let again = cluster.call(API_A, "u", update);
        assert_eq!((again.response, again.replayed), (reply.response, true));
        assert_eq!(
            cluster.resources()[0].generation,
            2,
            "a replay applies nothing"
        );
    }

    #[test]
    fn a_key_lives_for_its_ttl_on_the_store_clock_says_so_and_is_then_new() {
        let mut cluster = Cluster::with(ApiSettings {
            idempotency_ttl_ms: 5_000,
            ..settings()
        });
        let first = cluster.call(API_A, "k", create("a"));
        assert_eq!(first.response.status, status::CREATED);
        let expires_at_ms = cluster.ledger("k").expect("recorded").expires_at_ms;
        assert!(
            (5_000..=cluster.store_now_ms + 5_000).contains(&expires_at_ms),
            "the ledger lease's expiry: {expires_at_ms}"
        );
        assert_eq!(
            (first.key_ttl_ms, first.key_expires_at_ms),
            (Some(5_000), Some(expires_at_ms))
        );
        // Within the TTL: the stored answer, with the same expiry, and a 422
        // (which is not stored, so says nothing of expiry) for another body.
        let again = cluster.call(API_B, "k", create("a"));
        assert!(again.replayed);
        assert_eq!(again.key_expires_at_ms, Some(expires_at_ms));
        let other = cluster.call(API_B, "k", create("b"));
        assert_eq!(other.response.status, status::UNPROCESSABLE);
        assert_eq!(other.key_expires_at_ms, None);
        // Six seconds of keep-alives later the store has expired the key:
        // the same key is a new request.
        for _ in 0..30 {
            cluster.tick(API_A, 1);
            cluster.tick(API_B, 1);
        }
        assert!(cluster.store_now_ms > expires_at_ms);
        cluster.store.expire_leases(cluster.store_now_ms);
        assert!(cluster.ledger("k").is_none(), "expired with its lease");
        let fresh = cluster.call(API_B, "k", create("b"));
        assert_eq!(fresh.response.status, status::CREATED);
        assert!(!fresh.replayed);
        assert!(fresh.key_expires_at_ms > Some(expires_at_ms));
        assert_eq!(cluster.resources().len(), 2);
    }

    #[test]
    fn an_oversized_name_gets_400_before_anything_is_recorded_or_charged() {
        let mut cluster = Cluster::new();
        let huge = "x".repeat(2 << 20);
        let reply = cluster.call(API_A, "k", create(&huge));
        assert_eq!(reply.response.status, status::BAD_REQUEST);
        assert!(cluster.ledger("k").is_none());
        assert_eq!(
            cluster.count(|e| matches!(e, Event::ChargeExecuted { .. })),
            0
        );
        // The longest allowed name fits the store's value bound end to end.
        let longest = "y".repeat(ApiOp::MAX_NAME_BYTES);
        let reply = cluster.call(API_A, "k2", create(&longest));
        assert_eq!(reply.response.status, status::CREATED);
    }

    #[test]
    fn update_to_the_same_spec_keeps_the_generation_and_writes_nothing() {
        let mut cluster = Cluster::new();
        let created = created_resource(&cluster.call(API_A, "c", create("a")));
        let same = ApiOp::Update {
            id: created.id.clone(),
            spec: created.spec,
        };
        let reply = cluster.call(API_B, "u", same);
        assert_eq!(reply.response.status, status::OK);
        assert_eq!(reply.response.body, ResponseBody::Resource(created.clone()));
        assert_eq!(cluster.resources(), vec![created]);
        let updated = |e: &Event| matches!(e, Event::ResourceCommitted { created: false, .. });
        assert_eq!(cluster.count(updated), 0, "no desired-state write");
    }

    #[test]
    fn update_that_races_a_concurrent_write_replans_on_the_new_generation() {
        let mut cluster = Cluster::new();
        let created = created_resource(&cluster.call(API_A, "c", create("a")));
        cluster.hold = Box::new(|from, _, message| from == API_A && is_commit(message));
        let update = ApiOp::Update {
            id: created.id.clone(),
            spec: spec(3),
        };
        let request_id = cluster.send(API_A, Some("u"), update);
        let raced = Resource {
            generation: 5,
            ..created.clone()
        };
        cluster.write(keys::resource(&created.id), Value::Resource(raced));
        cluster.release_all();
        let reply = cluster.only_reply(request_id);
        let ResponseBody::Resource(updated) = &reply.response.body else {
            panic!("{reply:?}")
        };
        assert_eq!((updated.generation, updated.spec), (6, spec(3)));
        assert_eq!(cluster.resources()[0].generation, 6);
    }

    #[test]
    fn update_of_a_missing_id_stores_and_replays_404() {
        let mut cluster = Cluster::new();
        let update = ApiOp::Update {
            id: "r-missing".into(),
            spec: spec(2),
        };
        let first = cluster.call(API_A, "u", update.clone());
        assert_eq!(first.response.status, status::NOT_FOUND);
        assert_eq!(first.key_ttl_ms, Some(settings().idempotency_ttl_ms));
        let finished = |e: &Event| matches!(e, Event::KeyFinished { response, .. } if response.status == status::NOT_FOUND);
        assert_eq!(cluster.count(finished), 1);
        assert_eq!(cluster.count(is_committed), 0);
        let again = cluster.call(API_B, "u", update);
        assert_eq!((again.response, again.replayed), (first.response, true));
        assert!(cluster.resources().is_empty());
    }

    #[test]
    fn delete_removes_the_resource_and_its_status() {
        let mut cluster = Cluster::new();
        let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
        let status = Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        cluster.write(keys::status(&id), Value::Status(status));
        let reply = cluster.call(API_B, "d", ApiOp::Delete { id: id.clone() });
        assert_eq!(reply.response.status, status::OK);
        assert_eq!(
            reply.response.body,
            ResponseBody::Deleted { id: id.clone() }
        );
        assert!(cluster.resources().is_empty());
        assert!(cluster.store.get(&keys::status(&id)).is_none());
        let deleted = |e: &Event| matches!(e, Event::ResourceCommitted { resource: None, .. });
        assert_eq!(cluster.count(deleted), 1);
    }

    #[test]
    fn billing_timeout_resends_the_charge_with_the_same_key() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, to, _| to == BILLING);
        let request_id = cluster.send(API_A, Some("k"), create("a"));
        cluster.fire_request_timeout(API_A);
        let charges: Vec<(RequestId, &str)> = cluster
            .held
            .iter()
            .map(|(_, _, message)| match message {
                Msg::Charge {
                    request_id, key, ..
                } => (*request_id, key.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(charges.len(), 2);
        assert_ne!(charges[0].0, charges[1].0, "a resend is a new request");
        assert_eq!((charges[0].1, charges[1].1), ("k", "k"));
        cluster.release_all();
        created_resource(&cluster.only_reply(request_id));
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(cluster.count(is_committed), 1);
    }

    #[test]
    fn giving_up_releases_the_lock_so_a_retry_elsewhere_takes_over() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, to, _| to == BILLING);
        let first = cluster.send(API_A, Some("k"), create("a"));
        for _ in 0..MAX_CHARGE_SENDS {
            cluster.fire_request_timeout(API_A);
        }
        assert_eq!(
            cluster.only_reply(first).response.status,
            status::UNAVAILABLE
        );
        assert!(cluster.store.get(&keys::lock("k")).is_none(), "released");
        cluster.held.clear(); // The network lost every charge.
        cluster.hold = no_hold();
        let retry = cluster.call(API_B, "k", create("a"));
        created_resource(&retry);
        assert!(!retry.replayed);
        let taken = Event::KeyTakenOver {
            key: "k".into(),
            by_completer: false,
        };
        assert_eq!(cluster.count(|e| *e == taken), 1);
        assert_eq!(cluster.count(is_charge_executed), 1);
        assert_eq!(cluster.count(is_committed), 1);
    }

    #[test]
    fn racing_takeovers_of_an_abandoned_key_let_exactly_one_win() {
        let mut cluster = Cluster::new();
        cluster.hold = Box::new(|_, to, _| to == BILLING);
        let first = cluster.send(API_A, Some("k"), create("a"));
        for _ in 0..MAX_CHARGE_SENDS {
            cluster.fire_request_timeout(API_A);
        }
        assert_eq!(
            cluster.only_reply(first).response.status,
            status::UNAVAILABLE
        );
        cluster.held.clear();
        // Both a client retry at B and A's completer find the key abandoned
        // and try to claim it at once.
        cluster.hold = Box::new(|_, _, message| is_claim(message));
        let retry = cluster.send(API_B, Some("k"), create("a"));
        cluster.fire_completer(API_A);
        assert_eq!(cluster.held.len(), 2, "two claims in flight");
        cluster.release_all();
        assert_eq!(
            cluster.count(|e| matches!(e, Event::KeyTakenOver { .. })),
            1
        );
        created_resource(&cluster.only_reply(retry));
        assert_eq!(cluster.count(is_committed), 1);
        assert_eq!(cluster.count(is_charge_executed), 1);
    }

    #[test]
    fn late_reply_is_ignored_and_my_own_completer_finishes_the_key() {
        let mut cluster = Cluster::new();
        let record_reply = |from: NodeId, _: NodeId, message: &Msg| {
            from == STORE
                && matches!(
                    message,
                    Msg::StoreReply {
                        response: StoreResponse::Txn { .. },
                        ..
                    }
                )
        };
        cluster.hold = Box::new(record_reply);
        let first = cluster.send(API_A, Some("k"), create("a"));
        assert_eq!(cluster.ledger("k").unwrap().recovery, Recovery::Started);
        cluster.fire_request_timeout(API_A);
        assert_eq!(
            cluster.only_reply(first).response.status,
            status::UNAVAILABLE
        );
        // The record's reply arrives after its timeout: ignored.
        cluster.release_all();
        assert_eq!(cluster.replies_to(first).len(), 1);
        assert!(cluster.records.is_empty(), "{:?}", cluster.records);
        // The lock is mine and no operation holds it: the completer resumes.
        cluster.fire_completer(API_A);
        let finished = |e: &Event| {
            matches!(
                e,
                Event::KeyFinished {
                    by_completer: true,
                    ..
                }
            )
        };
        assert_eq!(cluster.count(finished), 1);
        assert_eq!(cluster.count(is_charge_executed), 1);
        let retry = cluster.call(API_B, "k", create("a"));
        assert!(retry.replayed);
        created_resource(&retry);
    }

    #[test]
    fn keep_alive_that_finds_no_lease_starts_a_new_session() {
        let mut cluster = Cluster::new();
        // A started first, so its session is the store's first lease.
        let revoked = cluster.store.apply(
            cluster.store_now_ms,
            StoreRequest::LeaseRevoke { lease: LeaseId(1) },
        );
        assert_eq!(revoked, StoreResponse::LeaseRevoked { lease: LeaseId(1) });
        cluster.tick(API_A, 1);
        assert!(
            cluster.store.lease_expiry_ms(LeaseId(3)).is_some(),
            "regranted"
        );
        created_resource(&cluster.call(API_A, "k", create("a")));
    }

    #[test]
    fn requests_beyond_the_operation_cap_get_503() {
        let mut cluster = Cluster::new();
        let ledger_ttl_ms = settings().idempotency_ttl_ms;
        cluster.hold = Box::new(
            move |_, _, message| matches!(message, Msg::StoreRequest { request: StoreRequest::LeaseGrant { ttl_ms }, .. } if *ttl_ms == ledger_ttl_ms),
        );
        for index in 0..MAX_OPERATIONS {
            cluster.send(API_A, Some(&format!("k{index}")), create("a"));
        }
        assert!(cluster.replies.is_empty());
        let reply = cluster.call(API_A, "one-too-many", create("a"));
        assert_eq!(reply.response.status, status::UNAVAILABLE);
    }
}
