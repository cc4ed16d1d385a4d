//! Taking an abandoned key over: an unfinished entry whose lock vanished
//! (its owner's session expired, or it gave up) or is a stale lock of this
//! very node is claimed by putting my lock, if the lock and the entry are
//! still as seen; the key then resumes from its recovery point.

use super::decode::Fenced;
use super::{ApiNode, Ctx, Held, Operation, OperationId, Step, put};
use crate::protocol::{Event, LedgerEntry, Value, keys};
use crate::reply::Kv;
use crate::store::{Compare, LeaseId, StoreRequest, Txn};

impl ApiNode {
    /// Takes an abandoned key: puts my lock if the lock and the entry
    /// (`ledger`, holding `entry`) are still as seen. `ledger` is the
    /// entry's ledger key or its copy in the open index: every write of an
    /// unfinished entry writes both in one transaction, so they share a mod
    /// revision, and the compare is on the ledger key either way. A copy
    /// that outlived its entry's finish (written by a node that predates
    /// the copies, on a real host) is then refused, not resumed.
    pub(super) fn claim(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger: &Kv,
        entry: &LedgerEntry,
        lock: Option<&Kv>,
    ) {
        let Some(session) = self.session.lease() else {
            return self.give_up(ctx, op, false);
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
            key: keys::ledger(&op.key),
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

    pub(super) fn on_claim(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        entry: LedgerEntry,
        ledger_lease: Option<LeaseId>,
        claimed: Fenced,
    ) {
        let Fenced::Written { revision } = claimed else {
            // Someone else got there first (or the entry moved on).
            return self.refuse_in_flight(ctx, op);
        };
        ctx.record(Event::KeyTakenOver {
            key: op.key.clone(),
            by_completer: op.client.is_none(),
        });
        op.held = Some(Held {
            lock_revision: revision,
            entry,
            ledger_lease,
        });
        self.resume(ctx, id, op);
    }
}
