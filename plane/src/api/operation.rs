//! Operations: one request in progress (or one key the completer resumes)
//! is a small state machine with at most one store or billing request
//! outstanding. Its reply is decoded for the step it waits in and moves it
//! on; a reply that does not fit, a refusal or a timeout fails the step.

use super::{ApiNode, Client, Ctx, MAX_CHARGE_SENDS, MAX_OPERATIONS, Purpose, Reply, decode};
use crate::protocol::{ApiOp, ApiResponse, LedgerEntry, Recovery, Resource, Value};
use crate::reply::ReplyError;
use crate::session;
use crate::store::{LeaseId, StoreRequest, StoreResponse};

/// An operation's identity within this node's boot.
pub(super) type OperationId = u64;

/// One request in progress, or one key the completer resumes.
#[derive(Debug)]
pub(super) struct Operation {
    pub(super) key: String,
    /// The request's fingerprint (for the completer: the stored one).
    pub(super) fingerprint: u64,
    /// The request (for the completer: the stored one).
    pub(super) op: ApiOp,
    /// `None` when the completer runs it: nobody to answer.
    pub(super) client: Option<Client>,
    /// What the outstanding request is for.
    pub(super) step: Step,
    /// Set once this operation holds the key's lock.
    pub(super) held: Option<Held>,
    /// When a key this operation records expires (store clock, ms): set
    /// when its ledger lease is granted.
    pub(super) expires_at_ms: u64,
}

/// The lock an operation holds and the ledger entry it works on.
#[derive(Debug)]
pub(super) struct Held {
    /// The lock's mod revision: every later write compares it.
    pub(super) lock_revision: u64,
    pub(super) entry: LedgerEntry,
    /// The ledger entry's lease: rewrites keep the key's lifetime.
    pub(super) ledger_lease: Option<LeaseId>,
}

#[derive(Debug)]
pub(super) enum Step {
    /// No request outstanding: only while a handler runs.
    Idle,
    GrantLedgerLease {
        asked_at_ns: u64,
    },
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

impl Step {
    /// The step's name, for logs.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Step::Idle => "idle",
            Step::GrantLedgerLease { .. } => "ledger lease grant",
            Step::Record { .. } => "record",
            Step::Claim { .. } => "claim",
            Step::Charge { .. } => "charge",
            Step::SaveCharged { .. } => "save charged",
            Step::Read => "read",
            Step::Commit(_) => "commit",
            Step::CheckLedger { .. } => "ledger check",
            Step::ChargeFirst { .. } => "charge first",
            Step::ReplayRead(_) => "replay read",
        }
    }
}

/// A planned commit: the response to store and the resource write.
#[derive(Debug)]
pub(super) struct Commit {
    pub(super) response: ApiResponse,
    pub(super) write: Write,
    /// The resource's mod revision the plan was made from; 0 when absent.
    pub(super) resource_revision: u64,
    pub(super) attempt: u32,
}

#[derive(Debug)]
pub(super) enum Write {
    Create(Resource),
    Update(Resource),
    Delete,
    /// A stored 404: nothing to write but the response.
    Nothing,
}

impl ApiNode {
    /// Feeds the reply of an operation's outstanding request to its step.
    pub(super) fn advance(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        reply: Reply,
    ) {
        let step = std::mem::replace(&mut op.step, Step::Idle);
        match (step, reply) {
            (Step::Charge { .. }, Reply::Charged { key, charge_id }) if key == op.key => {
                self.save_charged(ctx, id, op, charge_id)
            }
            (Step::Charge { sends }, Reply::TimedOut) if sends < MAX_CHARGE_SENDS => {
                self.charge(ctx, id, op, sends + 1)
            }
            (Step::ChargeFirst { ledger_lease, .. }, Reply::Charged { key, charge_id })
                if key == op.key =>
            {
                let recovery = Recovery::Charged { charge_id };
                self.record(ctx, id, op, ledger_lease, recovery)
            }
            (
                Step::ChargeFirst {
                    sends,
                    ledger_lease,
                },
                Reply::TimedOut,
            ) if sends < MAX_CHARGE_SENDS => {
                self.charge_first(ctx, id, op, ledger_lease, sends + 1)
            }
            (step, Reply::Store(response)) => self.on_store_reply(ctx, id, op, step, response),
            // A timeout, or a billing answer that does not fit.
            (step, _) => self.step_failed(ctx, op, &step),
        }
    }

    /// Decodes a store reply for `step` and hands the typed result on; one
    /// that does not decode fails the step as a timeout would.
    pub(super) fn on_store_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        step: Step,
        response: StoreResponse<Value>,
    ) {
        let name = step.name();
        let failed = match step {
            Step::GrantLedgerLease { asked_at_ns } => match session::decode_grant(response) {
                Ok(granted) => {
                    self.share_ledger_lease(super::LedgerLease {
                        lease: granted.lease,
                        expires_at_ms: granted.expires_at_ms,
                        asked_at_ns,
                    });
                    let op = Operation {
                        expires_at_ms: granted.expires_at_ms,
                        ..op
                    };
                    return self.with_ledger_lease(ctx, id, op, granted.lease);
                }
                Err(error) => error,
            },
            Step::Record {
                entry,
                ledger_lease,
            } => match decode::record(response) {
                Ok(recorded) => return self.on_record(ctx, id, op, *entry, ledger_lease, recorded),
                Err(error) => error,
            },
            Step::Claim {
                entry,
                ledger_lease,
            } => match decode::fenced_write(response) {
                Ok(claimed) => return self.on_claim(ctx, id, op, *entry, ledger_lease, claimed),
                Err(error) => error,
            },
            Step::SaveCharged { charge_id } => match decode::fenced_write(response) {
                Ok(saved) => return self.on_save_charged(ctx, id, op, charge_id, saved),
                Err(error) => error,
            },
            Step::Read => match decode::read(response) {
                Ok(read) => return self.on_read(ctx, id, op, read),
                Err(error) => error,
            },
            Step::Commit(commit) => match decode::commit(response) {
                Ok(committed) => return self.on_commit(ctx, id, op, *commit, committed),
                Err(error) => error,
            },
            Step::CheckLedger { ledger_lease } => match decode::check_ledger(response) {
                Ok([ledger, lock]) => {
                    return self.on_check_ledger(ctx, id, op, ledger_lease, ledger, lock);
                }
                Err(error) => error,
            },
            Step::ReplayRead(entry) => match decode::replay_read(response) {
                Ok(found) => return self.on_replay_read(ctx, op, &entry, found),
                Err(error) => error,
            },
            // Waiting for billing, or for nothing: no store reply fits.
            Step::Idle | Step::Charge { .. } | Step::ChargeFirst { .. } => {
                ReplyError::Unexpected("a store reply to a step that awaits none")
            }
        };
        failed.log(name);
        self.give_up(ctx, op, false);
    }

    /// The outstanding request of `op` in `step` failed (timed out, was
    /// refused, or got an answer that does not fit): end with 503.
    pub(super) fn step_failed(&mut self, ctx: &mut Ctx<'_>, op: Operation, step: &Step) {
        tracing::debug!(key = %op.key, "{} failed", step.name());
        self.give_up(ctx, op, false);
    }

    pub(super) fn new_operation_id(&mut self) -> OperationId {
        self.next_operation += 1;
        self.next_operation
    }

    /// Whether an operation of mine works on `key` (in any phase).
    pub(super) fn key_busy(&self, key: &str) -> bool {
        self.operations.values().any(|op| op.key == key)
    }

    /// Sends a tracked store request for operation `id`, which waits in
    /// `step` for the reply.
    pub(super) fn await_store(
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
}
