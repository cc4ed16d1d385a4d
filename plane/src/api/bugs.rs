//! The planted bugs' detours, for the bug zoo: each bends one step of the
//! correct path the way a classic mistake does, and is on only when the
//! scenario plants it (see `ApiBugs`).

use super::{ApiNode, Ctx, MAX_CHARGE_SENDS, Operation, OperationId, Step, error};
use crate::protocol::{
    ApiOp, ApiResponse, LedgerEntry, Recovery, ResponseBody, Value, keys, status,
};
use crate::reply::Kv;
use crate::store::{LeaseId, Op, StoreRequest, Txn};

impl ApiNode {
    /// Planted bug `ledger-check-then-act`: look before leaping, in two
    /// requests, so another request with the key can leap in between.
    pub(super) fn check_ledger(
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

    pub(super) fn on_check_ledger(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        ledger_lease: LeaseId,
        ledger: Option<Kv>,
        lock: Option<Kv>,
    ) {
        if ledger.is_none() {
            // Absent when read; the record below no longer compares that.
            return self.record(ctx, id, op, ledger_lease, Recovery::Started);
        }
        self.on_existing(ctx, id, op, ledger, lock);
    }

    /// Planted bug `side-effect-before-ledger`: charge, then record the key
    /// as already charged.
    pub(super) fn charge_first(
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

    /// Planted bug `stale-replay-body`: instead of the stored response, a
    /// replay answers with the resource as it is now.
    pub(super) fn read_for_replay(
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

    pub(super) fn on_replay_read(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: Operation,
        entry: &LedgerEntry,
        found: Option<Kv>,
    ) {
        let Recovery::Finished { response: stored } = &entry.recovery else {
            // Not reached: only a finished key is read for a replay.
            return self.give_up(ctx, op, false);
        };
        let response = recomputed_response(entry, stored, found.as_ref());
        self.replay(ctx, op, response, entry);
    }
}

/// What the planted `stale-replay-body` bug answers for a finished key: the
/// `stored` status with the resource as `found` now (404 if it is gone). A
/// delete's answer names only the id, so it comes out unchanged.
fn recomputed_response(
    entry: &LedgerEntry,
    stored: &ApiResponse,
    found: Option<&Kv>,
) -> ApiResponse {
    match (&entry.op, found.map(|kv| &kv.value)) {
        (ApiOp::Delete { .. }, _) => stored.clone(),
        (_, Some(Value::Resource(current))) => ApiResponse {
            status: stored.status,
            body: ResponseBody::Resource(crate::protocol::Resource::clone(current)),
        },
        _ => error(
            status::NOT_FOUND,
            &format!("resource {} not found", entry.resource_id),
        ),
    }
}
