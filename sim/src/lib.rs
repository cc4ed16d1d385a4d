//! A seeded, single-threaded discrete-event simulator for sans-IO actors.
//!
//! # The model
//!
//! A [`Simulation`] holds nodes ([`Node`]) and one event queue ordered by
//! (true simulated time in nanoseconds, sequence number). A node is a set of
//! handlers for start, message and timer; each handler gets a [`Context`]
//! through which it sends messages, sets and cancels timers, reads its own
//! clocks, draws from its own random stream, reads and writes its durable
//! storage, and records typed history events. Handlers never block, never
//! see true time, and never do I/O, so the same node can later run on a real
//! host.
//!
//! # Faults
//!
//! The network draws latency (a range plus a tail), drops and duplicates
//! per message ([`NetworkConfig`]). Discrete faults ([`Fault`]: partitions,
//! one-way partitions, clogs, crashes with restart, pauses and wall-clock
//! jumps) are data: a timed list, scripted or drawn from the seed with
//! [`FaultKnobs`]. A run records the list it applied
//! ([`Simulation::applied_faults`]); feeding that list back in reproduces
//! the run.
//!
//! # Determinism
//!
//! One root seed; a ChaCha8 stream per purpose ([`Stream`]). The trace
//! ([`Trace`]) hashes every delivery, drop, timer, fault and recorded event
//! with a fixed hash ([`StableHasher`]); same seed and same code give the
//! same hash, and [`first_divergence`] names where two runs part.
//!
//! # Limits
//!
//! Every run is bounded by [`Limits`]: events, queue length and simulated
//! time. Hitting one ends the run with that [`StopReason`], never a hang.

#![deny(missing_docs)]

mod clock;
mod fault;
mod harness;
mod hash;
mod net;
mod node;
mod rng;
mod simulation;
mod trace;

use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

pub use clock::{ClockConfig, DRIFT_PPM_LIMIT};
pub use fault::{Fault, FaultKnobs, FaultRate, FaultTargets, ScheduledFault, all_healed_at_ns};
pub use harness::{Harness, Output};
pub use hash::{STABLE_HASH_VERSION, StableHasher, mix64, stable_hash};
pub use net::NetworkConfig;
pub use node::{Context, Node};
pub use rng::{SimRng, Stream};
pub use simulation::{HistoryEntry, Limits, SimConfig, Simulation, Stats, StopReason};
pub use trace::{
    DropReason, TRACE_ENCODING_VERSION, Trace, TraceEntry, TraceKind, first_divergence,
};

/// Nanoseconds in a millisecond, for readable constants.
pub const MILLISECOND_NS: u64 = 1_000_000;
/// Nanoseconds in a second.
pub const SECOND_NS: u64 = 1_000_000_000;

/// A node's identity: its index in the order nodes were added.
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

/// A timer's identity, unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerId(pub u64);

/// The types a simulated system exchanges: one implementation per system.
///
/// All three are hashed into the trace with [`StableHasher`], so their
/// `Hash` must depend only on their contents.
pub trait Protocol: 'static {
    /// What nodes send to each other.
    type Message: Clone + fmt::Debug + Hash + 'static;
    /// What a node attaches to a timer, returned when it fires.
    type Timer: fmt::Debug + Hash + 'static;
    /// What nodes record in the history for checkers to read.
    type Event: Clone + fmt::Debug + Hash + 'static;
}
