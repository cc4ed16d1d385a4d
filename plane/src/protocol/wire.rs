//! What nodes send each other: the API's requests and replies, worker
//! actions, and the one message enum that carries them all.
//!
//! Everything here is plain data with serde derives: the same messages will
//! cross real TCP once the nodes run on a real host, so a receiver treats
//! every field as peer input.

use node::{Digested, NodeId};
use serde::{Deserialize, Serialize};

use super::{RequestId, Resource, Spec, Status, Value};
use crate::shard::ShardId;
use crate::store::{StoreRequest, StoreResponse};

// ---------------------------------------------------------------------------
// The API.

/// An API call: the writes (create, update, delete) need an
/// Idempotency-Key; the reads (get, list) need none and change nothing.
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
    /// Read a resource's desired state and its status (needs no
    /// Idempotency-Key; changes nothing).
    Get {
        /// Resource id.
        id: String,
    },
    /// Read one page of the resources with their statuses, by id: those
    /// whose id sorts after `after` (from the first when `None`), at most
    /// `limit` of them. Needs no Idempotency-Key; changes nothing.
    List {
        /// The cursor: the `next` of the previous page, `None` for the
        /// first page.
        after: Option<String>,
        /// The most items to return, `1..=ApiOp::MAX_PAGE_LIMIT`; anything
        /// else gets 400 (refused, not clamped: a caller that asks for 0 or
        /// for a thousand has a bug it should hear about).
        limit: u32,
    },
}

impl ApiOp {
    /// The longest name or id a request may carry (a DNS label's limit,
    /// as Kubernetes names have): longer ones get 400 before anything is
    /// recorded, so a ledger entry always fits the store's value bound.
    pub(crate) const MAX_NAME_BYTES: usize = 253;

    /// The largest page a list may ask for.
    pub const MAX_PAGE_LIMIT: u32 = 100;

    /// The name or id this request carries (a list: its cursor, if any).
    pub(crate) fn name_or_id(&self) -> &str {
        match self {
            ApiOp::Create { name, .. } => name,
            ApiOp::Update { id, .. } | ApiOp::Delete { id } | ApiOp::Get { id } => id,
            ApiOp::List { after, .. } => after.as_deref().unwrap_or_default(),
        }
    }

    /// Whether this is a read (get or list): no key, no ledger, no write.
    pub fn is_read(&self) -> bool {
        matches!(self, ApiOp::Get { .. } | ApiOp::List { .. })
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
    /// OK (update, delete, get, list).
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
    /// A get's answer: the resource and its status, read at one revision.
    Read(ResourceView),
    /// A list's answer: one page.
    Page {
        /// The resources with their statuses, by id ascending, all read at
        /// one revision.
        items: Vec<ResourceView>,
        /// The cursor of the next page (pass it as `after`); `None` when
        /// nothing follows this page.
        next: Option<String>,
    },
}

/// A resource as a read shows it: what was asked for (desired state) and
/// what a controller last saw (status), as the store held both at one
/// revision.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceView {
    /// Desired state.
    pub resource: Resource,
    /// Observed state: `None` until a controller has written one.
    pub status: Option<Status>,
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

/// One action's identity: unique per controller boot. A retry of the
/// same action reuses its id, so the worker runs it at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActionId {
    /// The controller that created it.
    pub controller: NodeId,
    /// The controller's boot.
    pub boot: u32,
    /// Counter within that boot.
    pub sequence: u64,
}

/// Where one controller boot stands with one worker, carried by every
/// `Observe` and `Act` it sends there: of the actions it sent that worker
/// with a sequence below `below`, all but those in `outstanding` have been
/// answered or abandoned, and it will never resend one. The worker forgets
/// those, and drops a late copy of one unrun: so its ledger holds only what
/// is still outstanding, however long one holder keeps its token.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Settled {
    /// The controller's boot.
    pub boot: u32,
    /// The next sequence the boot will use.
    pub below: u64,
    /// The sequences below `below` still outstanding at this worker (sent,
    /// unanswered, to be resent), ascending.
    pub outstanding: Vec<u64>,
}

impl Settled {
    /// Whether the action with `sequence` is settled.
    pub fn covers(&self, sequence: u64) -> bool {
        sequence < self.below && self.outstanding.binary_search(&sequence).is_err()
    }

    /// Merges a later or earlier statement of the same boot into this one.
    /// A sequence once settled stays settled: an earlier message (lower
    /// `below`) says nothing new, a later one replaces this, and one with
    /// the same `below` (no action created in between) can only have
    /// settled more of the outstanding ones. Returns whether this changed.
    pub fn merge(&mut self, other: &Settled) -> bool {
        debug_assert_eq!(self.boot, other.boot);
        match other.below.cmp(&self.below) {
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Greater => {
                self.clone_from(other);
                true
            }
            std::cmp::Ordering::Equal => {
                let theirs = &other.outstanding;
                let before = self.outstanding.len();
                self.outstanding.retain(|s| theirs.binary_search(s).is_ok());
                self.outstanding.len() != before
            }
        }
    }
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
    /// Not run: the token passed the fence, but the worker's
    /// executed-action ledger is at its bound. The action is not stored;
    /// the sender backs off and resends it, by when its senders' settled
    /// statements and fence rises have made room.
    Busy,
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
    /// API to client. Boxed, as the largest payload: every message moves
    /// through the event queue by value, and the enum is as large as its
    /// largest variant. Hashing and serde see through the box.
    ApiReply(Box<ApiReply>),
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
        /// What the sender has settled with this worker.
        settled: Settled,
    },
    /// Worker to controller.
    Observed {
        /// The request answered.
        request_id: RequestId,
        /// The instances, or `Err(highest_token)` when the caller's token is
        /// stale.
        instances: Result<Vec<Digested<Instance>>, u64>,
    },
    /// Controller to worker.
    Act {
        /// Correlation id.
        request_id: RequestId,
        /// The action (boxed, as `ApiReply`).
        action: Box<Action>,
        /// What the sender has settled with this worker.
        settled: Settled,
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

// Every message moves through the simulator's event queue by value, a few
// times per delivery: at this size a move is a handful of register copies
// rather than a call to `memcpy`. Box a new large payload to keep it so.
const _: () = assert!(std::mem::size_of::<Msg>() <= 96);
