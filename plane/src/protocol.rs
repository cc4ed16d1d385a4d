//! The control plane's vocabulary: what nodes store, send and record.
//!
//! Everything here is plain data with serde derives: the same messages will
//! cross real TCP once the nodes run on a real host. The history events at
//! the bottom are the only thing the checkers read.

use node::NodeId;
use serde::{Deserialize, Serialize};

use crate::shard::ShardId;
use crate::store::{LeaseId, StoreRequest, StoreResponse, StoreValue};

/// The simulator protocol of the control plane.
pub struct ControlPlane;

impl node::Protocol for ControlPlane {
    type Message = Msg;
    type Timer = Timer;
    type Event = Event;
    type Durable = crate::Durable;
}

/// A request id, unique per sending node and incarnation: the node's
/// incarnation in the top 16 bits, a counter below. Replies carry it back.
pub type RequestId = u64;

/// Builds a request id from a node's incarnation and its counter.
pub fn request_id(incarnation: u32, counter: u64) -> RequestId {
    (u64::from(incarnation) << 48) | (counter & ((1 << 48) - 1))
}

// ---------------------------------------------------------------------------
// Resources (desired state) and their status.

/// What a resource asks for. Any change bumps the resource's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Spec {
    /// Number of instances: ordinals `0..replicas`.
    pub replicas: u32,
    /// The version of what each instance runs.
    pub image: u32,
}

/// A resource as stored under `/res/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// Server-generated id (also the workqueue key and the shard key).
    pub id: String,
    /// Client-chosen display name; not unique.
    pub name: String,
    /// Desired state.
    pub spec: Spec,
    /// Starts at 1, bumped by every update.
    pub generation: u64,
}

/// What the controller last saw, stored under `/status/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    /// The generation the running instances match.
    pub observed_generation: u64,
    /// Instances running at that generation.
    pub ready_replicas: u32,
}

// ---------------------------------------------------------------------------
// The API and the idempotency ledger.

/// A mutating API call.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApiOp {
    /// Create a resource with a server-generated id (charges billing).
    Create {
        /// Display name.
        name: String,
        /// Desired state.
        spec: Spec,
    },
    /// Replace a resource's spec (bumps its generation).
    Update {
        /// Resource id.
        id: String,
        /// New desired state.
        spec: Spec,
    },
    /// Delete a resource (its instances are stopped by the controllers).
    Delete {
        /// Resource id.
        id: String,
    },
}

impl ApiOp {
    /// The longest name or id a request may carry (a DNS label's limit,
    /// as Kubernetes names have): longer ones get 400 before anything is
    /// recorded, so a ledger entry always fits the store's value bound.
    pub const MAX_NAME_BYTES: usize = 253;

    /// The name or id this request carries.
    pub fn name_or_id(&self) -> &str {
        match self {
            ApiOp::Create { name, .. } => name,
            ApiOp::Update { id, .. } | ApiOp::Delete { id } => id,
        }
    }

    /// The request fingerprint of the Idempotency-Key draft: a stable hash
    /// of method, target and body.
    pub fn fingerprint(&self) -> u64 {
        node::stable_hash(self)
    }
}

/// A request as a client sends it, with an `Idempotency-Key` header that
/// may be missing (the API answers 400).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiRequest {
    /// Correlates the reply; a retry gets a fresh one.
    pub request_id: RequestId,
    /// The Idempotency-Key header.
    pub idempotency_key: Option<String>,
    /// What to do.
    pub op: ApiOp,
}

/// HTTP status codes the API uses.
pub mod status {
    /// Created.
    pub const CREATED: u16 = 201;
    /// OK (update, delete).
    pub const OK: u16 = 200;
    /// Missing Idempotency-Key, or a malformed request.
    pub const BAD_REQUEST: u16 = 400;
    /// No such resource.
    pub const NOT_FOUND: u16 = 404;
    /// The same key is still being processed.
    pub const CONFLICT: u16 = 409;
    /// The same key was used with a different request.
    pub const UNPROCESSABLE: u16 = 422;
    /// The API could not finish now (store unreachable, lock lost): retry
    /// with the same key.
    pub const UNAVAILABLE: u16 = 503;
}

/// The body of a response.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResponseBody {
    /// The resource after the call.
    Resource(Resource),
    /// The id of a deleted resource.
    Deleted {
        /// Resource id.
        id: String,
    },
    /// An error with a human-readable message.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// An API response: status and body. This pair is what a replay must
/// reproduce exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: ResponseBody,
}

impl ApiResponse {
    /// A response that the ledger stores and replays: anything but the
    /// transient answers (400 for a missing key, 409, 422, 503).
    pub fn is_final(&self) -> bool {
        !matches!(
            self.status,
            status::BAD_REQUEST | status::CONFLICT | status::UNPROCESSABLE | status::UNAVAILABLE
        )
    }
}

/// Where an interrupted key resumes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recovery {
    /// Recorded, nothing else done yet: charge next (creates), or apply.
    Started,
    /// Billing charged: commit next.
    Charged {
        /// Billing's charge id.
        charge_id: u64,
    },
    /// Done: replay this response for every retry with the same request.
    Finished {
        /// The stored first response.
        response: ApiResponse,
    },
}

/// One idempotency key's record, stored under `/idem/{key}` on a store
/// lease whose TTL is the published key lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Fingerprint of the first request that used the key.
    pub fingerprint: u64,
    /// That request, so another node can finish it.
    pub op: ApiOp,
    /// The id a create will use, chosen when the key is recorded, so a
    /// takeover commits the same resource.
    pub resource_id: String,
    /// The recovery point.
    pub recovery: Recovery,
    /// The key's lifetime from when its ledger lease was granted.
    pub ttl_ms: u64,
    /// When the key expires, on the store's clock (ms): the ledger lease's
    /// expiry, which nothing renews.
    pub expires_at_ms: u64,
}

/// A reply from the API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiReply {
    /// The request this answers.
    pub request_id: RequestId,
    /// Status and body.
    pub response: ApiResponse,
    /// The `Idempotent-Replayed` header: served from the ledger.
    pub replayed: bool,
    /// How long the key is kept, when the response is stored.
    pub key_ttl_ms: Option<u64>,
    /// When the stored response expires with its key, on the store's clock
    /// (ms): like an HTTP `Expires` date, it is the server's time.
    pub key_expires_at_ms: Option<u64>,
}

// ---------------------------------------------------------------------------
// Workers: instances, actions and fencing.

/// One action's identity: unique per controller incarnation. A retry of the
/// same action reuses its id, so the worker runs it at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActionId {
    /// The controller that created it.
    pub controller: NodeId,
    /// The controller's incarnation.
    pub incarnation: u32,
    /// Counter within that incarnation.
    pub sequence: u64,
}

/// A running instance's identity at its worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceId {
    /// The worker running it.
    pub worker: NodeId,
    /// Counter at that worker (durable).
    pub sequence: u64,
}

/// An instance as a worker reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instance {
    /// Identity.
    pub id: InstanceId,
    /// Owning resource.
    pub resource: String,
    /// Ordinal within the resource.
    pub ordinal: u32,
    /// The resource generation it runs.
    pub generation: u64,
    /// The resource's shard.
    pub shard: ShardId,
}

/// What an action does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionKind {
    /// Launch a new instance. The worker does not check for an existing one
    /// at the same ordinal, as a cloud's "run instance" does not: avoiding
    /// duplicates is the controller's job, and the checkers verify it.
    Start {
        /// Resource id.
        resource: String,
        /// Ordinal.
        ordinal: u32,
        /// Generation to run.
        generation: u64,
    },
    /// Stop an instance.
    Stop {
        /// The instance.
        instance: InstanceId,
    },
}

/// A side effect a controller asks of a worker, fenced by the shard
/// lease's token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Action {
    /// Deduplication id.
    pub id: ActionId,
    /// The shard of the resource.
    pub shard: ShardId,
    /// The shard lease's revision when the controller acquired it.
    pub token: u64,
    /// What to do.
    pub kind: ActionKind,
}

/// What came of an action.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionOutcome {
    /// A new instance runs.
    Started {
        /// Its id.
        instance: InstanceId,
    },
    /// The instance stopped.
    Stopped,
    /// Nothing to stop.
    NotFound,
    /// The token was lower than one the worker had seen for the shard.
    Rejected {
        /// The highest token seen.
        highest_token: u64,
    },
}

// ---------------------------------------------------------------------------
// Messages.

/// Every message between nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// To the store: one request, applied in arrival order.
    StoreRequest {
        /// Correlation id.
        request_id: RequestId,
        /// The request.
        request: StoreRequest<Value>,
    },
    /// From the store.
    StoreReply {
        /// The request answered.
        request_id: RequestId,
        /// The answer.
        response: StoreResponse<Value>,
    },
    /// To the store: send me a `Changed` for every write under `prefix`.
    /// Watches are volatile (lost when the store restarts) and
    /// notifications may be lost: they are hints, resync is the truth.
    Watch {
        /// Key prefix.
        prefix: String,
    },
    /// From the store to a watcher: `key` changed at `revision`.
    Changed {
        /// The key written.
        key: String,
        /// The revision of the write.
        revision: u64,
    },
    /// Client to API.
    Api(ApiRequest),
    /// API to client.
    ApiReply(ApiReply),
    /// API to billing: charge once per key.
    Charge {
        /// Correlation id.
        request_id: RequestId,
        /// The Idempotency-Key, which billing deduplicates on.
        key: String,
        /// Amount in cents.
        amount_cents: u64,
    },
    /// Billing to API.
    Charged {
        /// The request answered.
        request_id: RequestId,
        /// The key charged.
        key: String,
        /// The (first) charge's id: the same for every retry.
        charge_id: u64,
    },
    /// Controller to worker: report the instances of `shard` (or of one
    /// resource in it). Carries the token, and raises the worker's fence
    /// for the shard to it: a pull ordered after the fence, so the answer
    /// includes every action of an older holder the worker accepted.
    Observe {
        /// Correlation id.
        request_id: RequestId,
        /// The shard.
        shard: ShardId,
        /// The caller's token for it.
        token: u64,
        /// Only this resource, if given.
        resource: Option<String>,
    },
    /// Worker to controller.
    Observed {
        /// The request answered.
        request_id: RequestId,
        /// The instances, or `Err(highest_token)` when the caller's token is
        /// stale.
        instances: Result<Vec<Instance>, u64>,
    },
    /// Controller to worker.
    Act {
        /// Correlation id.
        request_id: RequestId,
        /// The action.
        action: Action,
    },
    /// Worker to controller.
    Acted {
        /// The request answered.
        request_id: RequestId,
        /// The action.
        action_id: ActionId,
        /// What came of it (replayed for a duplicate).
        outcome: ActionOutcome,
    },
}

// ---------------------------------------------------------------------------
// Stored values.

/// Everything the store holds, typed, so no node serializes on the hot path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    /// `/res/{id}`: desired state.
    Resource(Resource),
    /// `/status/{id}`: written by the shard holder, fenced by its token.
    Status(Status),
    /// `/idem/{key}`: the idempotency ledger.
    Ledger(LedgerEntry),
    /// `/idem-lock/{key}`: held by the API node working on the key, on
    /// that node's session lease, so it vanishes if the node dies.
    Lock {
        /// The API node.
        owner: NodeId,
    },
    /// `/members/{node}`, `/shards/{n}`, `/leader`: held by a controller,
    /// on its session lease. The key's mod revision is the fencing token.
    Holder {
        /// The controller.
        controller: NodeId,
    },
}

impl StoreValue for Value {
    fn size_bytes(&self) -> usize {
        match self {
            Value::Resource(resource) => 32 + resource.id.len() + resource.name.len(),
            Value::Status(_) => 16,
            Value::Ledger(entry) => {
                let response = match &entry.recovery {
                    Recovery::Finished { response } => match &response.body {
                        ResponseBody::Resource(r) => 32 + r.id.len() + r.name.len(),
                        ResponseBody::Deleted { id } => 8 + id.len(),
                        ResponseBody::Error { message } => 8 + message.len(),
                    },
                    Recovery::Started | Recovery::Charged { .. } => 16,
                };
                64 + entry.resource_id.len() + entry.op.name_or_id().len() + response
            }
            Value::Lock { .. } | Value::Holder { .. } => 8,
        }
    }
}

/// Store key layout, in one place.
pub mod keys {
    use crate::shard::ShardId;
    use node::NodeId;

    /// Prefix of desired resources.
    pub const RESOURCES: &str = "/res/";
    /// Prefix of statuses.
    pub const STATUSES: &str = "/status/";
    /// Prefix of the idempotency ledger.
    pub const LEDGER: &str = "/idem/";
    /// Prefix of ledger locks.
    pub const LOCKS: &str = "/idem-lock/";
    /// Prefix of controller membership.
    pub const MEMBERS: &str = "/members/";
    /// Prefix of shard leases.
    pub const SHARDS: &str = "/shards/";
    /// The singleton leader lease.
    pub const LEADER: &str = "/leader";

    /// `/res/{id}`.
    pub fn resource(id: &str) -> String {
        format!("{RESOURCES}{id}")
    }
    /// `/status/{id}`.
    pub fn status(id: &str) -> String {
        format!("{STATUSES}{id}")
    }
    /// `/idem/{key}`.
    pub fn ledger(key: &str) -> String {
        format!("{LEDGER}{key}")
    }
    /// `/idem-lock/{key}`.
    pub fn lock(key: &str) -> String {
        format!("{LOCKS}{key}")
    }
    /// `/members/{node}`.
    pub fn member(node: NodeId) -> String {
        format!("{MEMBERS}{:04}", node.0)
    }
    /// `/shards/{n}`.
    pub fn shard(shard: ShardId) -> String {
        format!("{SHARDS}{:04}", shard.0)
    }
}

// ---------------------------------------------------------------------------
// Timers.

/// Every timer, by the node kind that sets it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A request got no reply in time.
    RequestTimeout(RequestId),
    /// The node's periodic duty (keep-alive, membership, next request).
    Tick,
    /// A controller's full resync.
    Resync,
    /// A controller retries one workqueue key after its backoff.
    Requeue(String),
    /// An API node's completer scan.
    Completer,
    /// The store's next lease expiry.
    LeaseExpiry,
    /// A node-specific timer; the node module documents its meaning.
    Custom(u64),
}

// ---------------------------------------------------------------------------
// History: the only thing the checkers read.

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
    },
    /// The store committed a resource's status (`None`: deleted).
    StatusStored {
        /// Resource id.
        id: String,
        /// The stored status after the write.
        status: Option<Status>,
        /// The write's revision.
        revision: u64,
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
    /// A repeated action id was answered without running it again.
    ActionDeduplicated {
        /// The action.
        action: ActionId,
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
        }
    }
}

/// Lease ids are store-assigned; re-exported for the nodes.
pub type StoreLease = LeaseId;
