//! The node contract: what a host needs to know of a node, and nothing of
//! any particular host.
//!
//! A node is a sans-IO state machine. A host (our discrete-event simulator,
//! a tokio process, turmoil or madsim) calls one of its three handlers
//! ([`Node::on_start`], [`Node::on_message`], [`Node::on_timer`]) with a
//! [`Context`] and then carries out what the handler asked for:
//!
//! ```text
//!            inputs, frozen for the handler              commands, in order
//!   id, boot, mono_ns, wall_ns, random stream,   ──►  node  ──►  Send, SetTimer,
//!   durable state (read and written in place)                   CancelTimer, Record,
//!                                                               Buggify, Measure
//! ```
//!
//! The handler is a pure function of the node's volatile state and these
//! inputs: it never reads a clock, a socket or a file, never sleeps, never
//! spawns. So the same node runs unchanged under every host, and what the
//! simulator proves is proved of the code that runs for real.
//!
//! # Rules every host follows
//!
//! - **Write-ahead.** When a handler changed its durable state
//!   ([`Context::durable_changed`]), the host makes that state durable
//!   (written, fsync'd) *before* it releases any of that handler's sends.
//!   A peer that saw a message can then never see the sender forget what
//!   it did before sending it.
//! - **Commands in order.** The host applies [`Command`]s in the order the
//!   handler issued them.
//! - **Boots.** The boot counter is durable: the host increments it on every
//!   start after the first and persists it before calling `on_start`. Nodes
//!   put it in every request and action id, so ids never repeat across
//!   restarts. The monotonic clock may restart from any value on a new boot
//!   (a machine reboot): durable state must never hold a raw monotonic
//!   reading across boots.
//! - **Timers** are volatile: a crash or reboot loses every pending timer,
//!   and timer ids are unique per node within one boot.
//! - **Clocks** are the node's own: `mono_ns` never goes back within a boot,
//!   `wall_ns` may jump either way. Both are frozen for one handler call.
//! - **BUGGIFY points are hints.** [`Context::buggify`] marks a code point
//!   where a fault matters most (FoundationDB's BUGGIFY): just after a
//!   restart, between the steps of a multi-step write, between a lease's
//!   expiry and its holder noticing. It returns nothing, so node logic is
//!   the same on every host. A real host ignores [`Command::Buggify`]; a
//!   testing host may, for some seeds and some hits, delay or drop the
//!   sends the handler issues after the point, or crash (write-ahead state
//!   already persisted) or pause the node right after the handler. Those
//!   are faults a node must survive anyway; the point only aims them.
//!
//! # What is here
//!
//! [`Protocol`] names a system's types; [`Node`] is the handler trait;
//! [`Context`] is the input snapshot plus command buffer; [`Random`] gives
//! the pinned bounded draws over any random source; [`stable_hash`] is the
//! fixed hash every host and node must agree on (sharding, fingerprints,
//! traces); [`testing::Harness`] drives one node by hand in unit tests.

#![deny(missing_docs)]

mod ascending;
mod context;
pub mod fault;
mod hash;
pub mod history;
mod random;
pub mod testing;

use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub use ascending::AscendingMap;
pub use context::{Command, Context, Inputs, MeasureKind};
pub use hash::{Digested, STABLE_HASH_VERSION, StableHasher, mix64, stable_hash};
pub use random::{Random, SplitMix64};

/// Nanoseconds in a millisecond, for readable constants.
pub const MILLISECOND_NS: u64 = 1_000_000;
/// Nanoseconds in a second.
pub const SECOND_NS: u64 = 1_000_000_000;

/// A node's identity: its index in the cluster's node list.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index into per-node tables.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A timer's identity, unique per node within one boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerId(pub u64);

/// The types a system of nodes exchanges: one implementation per system.
///
/// Messages cross real networks and events are written to history files,
/// so both are serde types; durable state is written to disk by a real
/// host. Message, timer and event are hashed into simulation traces with
/// [`StableHasher`], so their `Hash` must depend only on their contents.
pub trait Protocol: 'static {
    /// What nodes send to each other.
    type Message: Clone + fmt::Debug + Hash + Serialize + DeserializeOwned + 'static;
    /// What a node attaches to a timer, returned when it fires.
    type Timer: Clone + fmt::Debug + Hash + 'static;
    /// What nodes record in the history for checkers to read.
    type Event: Clone + fmt::Debug + Hash + Serialize + DeserializeOwned + 'static;
    /// A node's durable state: survives crashes and reboots. `Default` is
    /// the state of a node that never ran.
    type Durable: Default + fmt::Debug + Serialize + DeserializeOwned + 'static;
}

/// A sans-IO actor: inputs come in through the handlers, and everything it
/// does goes out through the [`Context`].
pub trait Node<P: Protocol> {
    /// Called when the node starts, and again after every restart (then
    /// [`Context::boot`] is above zero and durable state holds what
    /// survived).
    fn on_start(&mut self, ctx: &mut Context<'_, P>);

    /// A message from `from` arrived.
    fn on_message(&mut self, ctx: &mut Context<'_, P>, from: NodeId, message: P::Message);

    /// A timer set by this node fired (and was not cancelled).
    fn on_timer(&mut self, ctx: &mut Context<'_, P>, timer: TimerId, tag: P::Timer);
}
