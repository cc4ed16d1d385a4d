//! History events: what nodes record for the checkers, the only thing the
//! checkers read. Each names what the checkers need and nothing more.

use node::NodeId;
use serde::{Deserialize, Serialize};

use super::{ActionId, ApiOp, ApiResponse, Instance, Recovery, RequestId, Resource, Status};
use crate::shard::ShardId;

/// Which lease a controller holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LeaseName {
    /// A shard's lease.
    Shard(ShardId),
    /// The singleton leader lease.
    Leader,
}

/// Why a controller stopped trusting a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BeliefEnd {
    /// Its validity deadline (on the monotonic clock) passed unrenewed.
    Expired,
    /// The store said the lease is gone.
    Lost,
    /// It gave the shard up to the rendezvous owner.
    Released,
    /// A worker rejected its token.
    Fenced,
}

/// What a client meant by a request: the checkers tell a collision of keys
/// from a deliberate reuse, and a 400 asked for from one that was not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Intent {
    /// A key never used before, by this client or any other.
    Fresh,
    /// An earlier request's key, sent on purpose with another body: 422 is
    /// the right answer.
    Reuse {
        /// The fingerprint of the request the key was first used for.
        first_fingerprint: u64,
    },
    /// No key, on purpose: 400 is the right answer.
    NoKey,
    /// A read, which needs no key.
    Read,
}

/// A history event. Each names what the checkers need and nothing more.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    // --- clients ---
    /// A client sent a request (a retry is another event, same key).
    RequestSent {
        /// Correlation id.
        request_id: RequestId,
        /// The API node it went to.
        api: NodeId,
        /// The Idempotency-Key sent, if any.
        key: Option<String>,
        /// The request fingerprint.
        fingerprint: u64,
        /// 0 for the first try of a key, then 1, 2, ...
        attempt: u32,
        /// The client's number for the logical request: every attempt
        /// and duplicate of one request carries the same.
        logical: u64,
        /// What the client meant by it.
        intent: Intent,
        /// The request the key stands for.
        op: ApiOp,
    },
    /// A client got a reply.
    ResponseReceived {
        /// Correlation id.
        request_id: RequestId,
        /// The key of the request.
        key: Option<String>,
        /// The request fingerprint.
        fingerprint: u64,
        /// Status and body.
        response: ApiResponse,
        /// The `Idempotent-Replayed` header.
        replayed: bool,
    },
    /// A client gave up on a request after its last retry.
    RequestAbandoned {
        /// The key.
        key: Option<String>,
    },

    // --- API ---
    /// A key was recorded as started in the ledger (phase 1 committed).
    KeyStarted {
        /// The key.
        key: String,
        /// The request fingerprint stored.
        fingerprint: u64,
    },
    /// A stale lock was taken over to resume a key from its recovery point.
    KeyTakenOver {
        /// The key.
        key: String,
        /// True when the completer (not a client retry) took it.
        by_completer: bool,
    },
    /// A key's final response was committed (phase 3).
    KeyFinished {
        /// The key.
        key: String,
        /// The request fingerprint.
        fingerprint: u64,
        /// The stored response.
        response: ApiResponse,
        /// True when the completer finished it.
        by_completer: bool,
    },
    /// The desired state of a resource changed in the store.
    ResourceCommitted {
        /// Resource id.
        id: String,
        /// The key whose request did it.
        key: String,
        /// That request's fingerprint.
        fingerprint: u64,
        /// True for a create.
        created: bool,
        /// The new desired state; `None` when deleted.
        resource: Option<Resource>,
        /// The store revision of the commit: orders commits.
        revision: u64,
    },
    /// A response was served from the ledger.
    Replayed {
        /// The key.
        key: String,
    },
    /// 409: the key was in flight elsewhere.
    KeyInFlight {
        /// The key.
        key: String,
    },
    /// 422: the key was reused with another fingerprint.
    KeyMismatch {
        /// The key.
        key: String,
        /// The stored fingerprint.
        stored_fingerprint: u64,
        /// The new request's fingerprint.
        fingerprint: u64,
    },

    // --- store (the truth: recorded as the store applies a write, so a
    // reply lost on its way back cannot hide it) ---
    /// The store committed a resource's desired state (`None`: deleted).
    DesiredWritten {
        /// Resource id.
        id: String,
        /// The stored resource after the write.
        resource: Option<Resource>,
        /// The write's revision.
        revision: u64,
        /// The node whose transaction it was.
        writer: NodeId,
        /// The Idempotency-Key whose ledger entry the same transaction
        /// wrote, with that entry's fingerprint: the request this commit
        /// carries out.
        ledger: Option<(String, u64)>,
        /// The resource did not exist before this write.
        created: bool,
    },
    /// The store committed a resource's status (`None`: deleted).
    StatusStored {
        /// Resource id.
        id: String,
        /// The stored status after the write.
        status: Option<Status>,
        /// The write's revision.
        revision: u64,
        /// The node whose transaction it was.
        writer: NodeId,
        /// The fencing token the transaction was committed under: the mod
        /// revision it compared on a shard or leader lease key, if any.
        fence: Option<u64>,
    },
    /// The store committed an idempotency ledger entry.
    LedgerWritten {
        /// The key.
        key: String,
        /// The stored fingerprint.
        fingerprint: u64,
        /// The stored recovery point (with the response once finished).
        recovery: Recovery,
        /// The write's revision.
        revision: u64,
    },

    /// The store committed a write of a shard or leader lease key: who
    /// holds it from this revision on (`None`: deleted). The revision is
    /// the holder's fencing token.
    LeaseStored {
        /// Which lease.
        lease: LeaseName,
        /// The holder written.
        holder: Option<NodeId>,
        /// The write's revision.
        revision: u64,
    },

    // --- billing ---
    /// Billing charged a key (the side effect).
    ChargeExecuted {
        /// The key.
        key: String,
        /// The charge's id.
        charge_id: u64,
        /// Amount.
        amount_cents: u64,
    },
    /// Billing answered a repeated key with the first charge.
    ChargeDeduplicated {
        /// The key.
        key: String,
    },

    // --- controllers ---
    /// A controller acquired a lease: `token` is the lease key's revision.
    LeaseAcquired {
        /// Which lease.
        lease: LeaseName,
        /// Its fencing token.
        token: u64,
    },
    /// A controller starts believing it holds a lease (and may act).
    BeliefStarted {
        /// Which lease.
        lease: LeaseName,
        /// The token.
        token: u64,
    },
    /// A controller stops believing it holds a lease.
    BeliefEnded {
        /// Which lease.
        lease: LeaseName,
        /// The token.
        token: u64,
        /// Why.
        reason: BeliefEnd,
    },
    /// A controller wrote a resource's status (fenced in the store).
    StatusWritten {
        /// Resource id.
        resource: String,
        /// The status.
        status: Status,
        /// Fencing token used.
        token: u64,
        /// The store revision of the write: orders it against lease
        /// acquisitions (whose tokens are revisions too).
        revision: u64,
    },
    /// A controller read a membership that differs from the last one it
    /// read (recorded on change only, so a steady run records a handful).
    /// Shard placement is a function of membership; the cost checker
    /// replays these to know what an ideal placement would have moved.
    MembershipObserved {
        /// The members, sorted.
        members: Vec<NodeId>,
        /// The store revision of the read: orders observations from
        /// different controllers.
        revision: u64,
    },
    /// A workqueue key was requeued with backoff after a failed pass.
    BackoffEngaged {
        /// The key.
        resource: String,
        /// The delay.
        delay_ms: u64,
    },

    // --- workers ---
    /// The worker raised its fence for a shard (from an observe or action).
    FenceRaised {
        /// The shard.
        shard: ShardId,
        /// The new highest token.
        token: u64,
    },
    /// A side effect: a new instance runs.
    InstanceStarted {
        /// The action that did it.
        action: ActionId,
        /// Its token.
        token: u64,
        /// The instance.
        instance: Instance,
    },
    /// A side effect: an instance stopped.
    InstanceStopped {
        /// The action that did it.
        action: ActionId,
        /// Its token.
        token: u64,
        /// The instance.
        instance: Instance,
    },
    /// An action was rejected for a stale token.
    ActionRejected {
        /// The action.
        action: ActionId,
        /// The shard.
        shard: ShardId,
        /// The stale token.
        token: u64,
        /// The highest token seen for the shard.
        highest_token: u64,
    },
    /// A repeated action id was answered with its first outcome, not run
    /// again.
    ActionDeduplicated {
        /// The action.
        action: ActionId,
    },
    /// A copy of an action its sender had settled (answered or given up)
    /// passed the fence and was dropped unrun and unanswered: the worker
    /// may have forgotten whether it ran.
    ActionSettledDropped {
        /// The action.
        action: ActionId,
    },
    /// An action that passed the fence was refused unrun (answered
    /// [`crate::protocol::ActionOutcome::Busy`]) because the worker's
    /// executed-action ledger was at its bound.
    ActionRefusedBusy {
        /// The action.
        action: ActionId,
    },
    /// An update's or delete's commit found the resource changed under its
    /// plan while the key's lock still stood: the API plans again from the
    /// resource as it is now (`attempt` is the new plan's, from 2).
    CommitReplanned {
        /// The key.
        key: String,
        /// The attempt the new plan commits as.
        attempt: u32,
    },
}

impl Event {
    /// The variant's name, for counting events by kind in reports.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Event::RequestSent { .. } => "RequestSent",
            Event::ResponseReceived { .. } => "ResponseReceived",
            Event::RequestAbandoned { .. } => "RequestAbandoned",
            Event::KeyStarted { .. } => "KeyStarted",
            Event::KeyTakenOver { .. } => "KeyTakenOver",
            Event::KeyFinished { .. } => "KeyFinished",
            Event::ResourceCommitted { .. } => "ResourceCommitted",
            Event::Replayed { .. } => "Replayed",
            Event::KeyInFlight { .. } => "KeyInFlight",
            Event::KeyMismatch { .. } => "KeyMismatch",
            Event::DesiredWritten { .. } => "DesiredWritten",
            Event::LedgerWritten { .. } => "LedgerWritten",
            Event::StatusStored { .. } => "StatusStored",
            Event::LeaseStored { .. } => "LeaseStored",
            Event::ChargeExecuted { .. } => "ChargeExecuted",
            Event::ChargeDeduplicated { .. } => "ChargeDeduplicated",
            Event::LeaseAcquired { .. } => "LeaseAcquired",
            Event::BeliefStarted { .. } => "BeliefStarted",
            Event::BeliefEnded { .. } => "BeliefEnded",
            Event::StatusWritten { .. } => "StatusWritten",
            Event::MembershipObserved { .. } => "MembershipObserved",
            Event::BackoffEngaged { .. } => "BackoffEngaged",
            Event::FenceRaised { .. } => "FenceRaised",
            Event::InstanceStarted { .. } => "InstanceStarted",
            Event::InstanceStopped { .. } => "InstanceStopped",
            Event::ActionRejected { .. } => "ActionRejected",
            Event::ActionDeduplicated { .. } => "ActionDeduplicated",
            Event::ActionSettledDropped { .. } => "ActionSettledDropped",
            Event::ActionRefusedBusy { .. } => "ActionRefusedBusy",
            Event::CommitReplanned { .. } => "CommitReplanned",
        }
    }
}
