//! Phase 1, recording a key, and what a request finds when its key exists
//! already: the stored response replayed, 422 for another request, 409
//! while another node works on it, or a takeover of an abandoned key.

use node::Digested;

use super::decode::Recorded;
use super::{ApiNode, Ctx, Held, Operation, OperationId, Step, error, put};
use crate::protocol::{ApiOp, Event, LedgerEntry, Recovery, Value, keys, status};
use crate::reply::Kv;
use crate::store::{Compare, LeaseId, Op, StoreRequest, Txn};

impl ApiNode {
    /// The key's ledger lease is granted: record the key. (The planted bugs
    /// `side-effect-before-ledger` and `ledger-check-then-act` take their
    /// own way to the record.)
    pub(super) fn with_ledger_lease(
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

    /// Phase 1: record the key at `recovery` (`Started`), with my lock, if
    /// it is new.
    pub(super) fn record(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
        recovery: Recovery,
    ) {
        let Some(session) = self.session.lease() else {
            return self.give_up(ctx, op, false);
        };
        let resource_id = match &op.op {
            ApiOp::Create { .. } => format!("r{:016x}", ctx.rng().next_u64()),
            ApiOp::Update { id, .. } | ApiOp::Delete { id } | ApiOp::Get { id } => id.clone(),
            // Not reached: reads bypass the ledger (`read`).
            ApiOp::List { .. } => String::new(),
        };
        let entry = LedgerEntry {
            fingerprint: op.fingerprint,
            op: op.op.clone(),
            resource_id,
            recovery,
            ttl_ms: self.settings.idempotency_ttl_ms,
            expires_at_ms: op.expires_at_ms,
        };
        // The entry, and its copy in the open index (one shared value).
        let ledger = Value::Ledger(Digested::new(entry.clone()));
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
                put(&ledger_key, ledger.clone(), Some(ledger_lease)),
                put(&keys::open(&op.key), ledger, Some(ledger_lease)),
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

    pub(super) fn on_record(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        entry: LedgerEntry,
        ledger_lease: LeaseId,
        recorded: Recorded,
    ) {
        let (ledger, lock) = match recorded {
            Recorded::Applied { lock_revision } => {
                self.record_started(ctx, &op);
                // The key is recorded and locked, nothing charged yet: a
                // crash here leaves a lock for a takeover to find.
                ctx.buggify("api.after_record");
                op.held = Some(Held {
                    lock_revision,
                    entry,
                    ledger_lease: Some(ledger_lease),
                });
                return self.resume(ctx, id, op);
            }
            Recorded::Exists { ledger, lock } => (ledger, lock),
        };
        // My record may have been applied before: the network duplicated
        // the request and the reply to the first copy was lost. Then the
        // entry is the one I wrote (a create's resource id is drawn per
        // record) under my lock, written by the same transaction, and no
        // other operation of mine holds the key. (Ledger leases are shared
        // between keys, so the entry's lease cannot tell.)
        let my_lock_revision = match (&ledger, &lock) {
            (Some(kv), Some(lock))
                if matches!(&kv.value, Value::Ledger(stored) if **stored == entry)
                    && is_owned_by(lock, ctx.id())
                    && lock.mod_revision == kv.create_revision
                    && !self.key_busy(&op.key) =>
            {
                Some(lock.mod_revision)
            }
            _ => None,
        };
        if let Some(lock_revision) = my_lock_revision {
            // I hold the key already: resume rather than take my own key
            // over.
            self.record_started(ctx, &op);
            op.held = Some(Held {
                lock_revision,
                entry,
                ledger_lease: Some(ledger_lease),
            });
            return self.resume(ctx, id, op);
        }
        self.on_existing(ctx, id, op, ledger, lock);
    }

    /// Phase 2 of the draft: the key exists; replay, refuse, or take over.
    pub(super) fn on_existing(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger: Option<Kv>,
        lock: Option<Kv>,
    ) {
        let Some((ledger, entry)) = ledger.as_ref().and_then(|kv| match &kv.value {
            Value::Ledger(entry) => Some((kv, entry)),
            _ => None,
        }) else {
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
                return self.read_for_replay(ctx, id, op, LedgerEntry::clone(entry));
            }
            let (response, entry) = (response.clone(), LedgerEntry::clone(entry));
            return self.replay(ctx, op, response, &entry);
        }
        let abandoned = match &lock {
            None => true,
            Some(lock) => is_owned_by(lock, ctx.id()) && !self.key_busy(&op.key),
        };
        if !abandoned {
            return self.refuse_in_flight(ctx, op);
        }
        self.claim(ctx, id, op, ledger, entry, lock.as_ref());
    }

    fn record_started(&self, ctx: &mut Ctx<'_>, op: &Operation) {
        ctx.record(Event::KeyStarted {
            key: op.key.clone(),
            fingerprint: op.fingerprint,
        });
    }
}

/// Whether `lock` is held by `node`.
pub(super) fn is_owned_by(lock: &Kv, node: node::NodeId) -> bool {
    matches!(lock.value, Value::Lock { owner } if owner == node)
}
