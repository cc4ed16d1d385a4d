//! A seeded, single-threaded discrete-event simulator: one host of the
//! [`node`] contract.
//!
//! # The model
//!
//! A [`Simulation`] holds nodes ([`Node`]) and one event queue ordered by
//! (true simulated time in nanoseconds, sequence number). For each start,
//! delivery or timer it freezes the node's clocks into the handler's
//! [`Context`], lends it the node's random stream and durable state, calls
//! the handler, and then interprets the commands it issued (sends, timer
//! sets and cancels, history records) in order. Handlers never block, never
//! see true time, and never do I/O, so the same node runs on a real host.
//!
//! # Faults
//!
//! The network draws latency (a range plus a tail), drops and duplicates
//! per message ([`NetworkConfig`]). Discrete faults ([`Fault`]: partitions,
//! one-way partitions, clogs, crashes with restart, reboots, pauses,
//! wall-clock jumps, degraded links and clock drift) are data: a timed
//! list, scripted or drawn from the seed with [`FaultKnobs`]. A run records the list it applied
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

mod buggify;
mod clock;
mod fault;
mod net;
mod rng;
mod simulation;
mod timers;
mod trace;

pub use buggify::{BuggifyAction, BuggifyConfig, BuggifyPointStats};
pub use clock::{ClockConfig, DRIFT_PPM_LIMIT, NodeClock};
pub use fault::{Fault, FaultKnobs, FaultRate, FaultTargets, ScheduledFault, all_healed_at_ns};
pub use net::NetworkConfig;
pub use rng::{SimRng, Stream};
pub use simulation::{HistoryEntry, Limits, SimConfig, Simulation, Stats, StopReason};
pub use trace::{
    DropReason, TRACE_ENCODING_VERSION, Trace, TraceEntry, TraceKind, first_divergence,
};

// The contract this simulator hosts, re-exported for its users' convenience.
pub use node::{
    Context, MILLISECOND_NS, Node, NodeId, Protocol, Random, SECOND_NS, STABLE_HASH_VERSION,
    StableHasher, TimerId, mix64, stable_hash,
};
