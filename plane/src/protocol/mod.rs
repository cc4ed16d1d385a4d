//! The control plane's vocabulary: what nodes store, send and record.
//!
//! | module | what it owns |
//! |---|---|
//! | `wire` | messages between nodes: API requests and replies, worker actions |
//! | `values` | what the store holds: resources, statuses, ledger entries |
//! | `keys` | the store's key layout |
//! | `events` | history events, the only thing the checkers read |
//! | `summary` | messages and events in one line each, and the subjects they name |
//!
//! Everything is re-exported here, so `crate::protocol::X` names any of it.
//! The protocol type, request ids and timers live here because every node
//! kind uses them.

mod events;
pub(crate) mod keys;
mod summary;
mod values;
mod wire;

pub use events::{BeliefEnd, Event, Intent, LeaseName};
pub use summary::{Subject, action_text};
pub use values::{LedgerEntry, Recovery, Resource, Spec, Status, Value};
pub use wire::{
    Action, ActionId, ActionKind, ActionOutcome, ApiOp, ApiReply, ApiRequest, ApiResponse,
    Instance, InstanceId, Msg, ResourceView, ResponseBody, Settled, status,
};

/// The simulator protocol of the control plane.
pub struct ControlPlane;

impl node::Protocol for ControlPlane {
    type Message = Msg;
    type Timer = Timer;
    type Event = Event;
    type Durable = crate::Durable;
}

/// A request id, unique per sending node and boot: the node's
/// boot in the top 16 bits, a counter below. Replies carry it back.
pub type RequestId = u64;

/// Builds a request id from a node's boot and its counter.
pub(crate) fn request_id(boot: u32, counter: u64) -> RequestId {
    (u64::from(boot) << 48) | (counter & ((1 << 48) - 1))
}

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

// Every handler's commands are moved into the host's buffer and out again;
// past 128 bytes a move is a call to `memcpy` rather than a few register
// stores (the x86-64 code generator's limit), and a command is as large as
// its largest variant. Sends and timers are most commands: keep a message,
// a timer tag or a boxed event from outgrowing that.
const _: () = assert!(std::mem::size_of::<node::Command<ControlPlane>>() <= 128);
