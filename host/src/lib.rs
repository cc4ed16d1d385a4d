//! `host`: the control plane's nodes, running for real.
//!
//! The same nodes the simulator proves (`plane`, on the `node` contract) run
//! here as tokio tasks: each node its own TCP listener, messages as
//! length-prefixed postcard frames, real monotonic and wall clocks, durable
//! state in files written ahead of every send, and history appended as JSONL
//! for `controlplane check --history`. An HTTP edge (axum) turns requests
//! into the API node's messages and its replies into responses.
//!
//! This is the only crate of the workspace that touches real time, sockets,
//! files and threads. It carries inputs to the nodes and their commands out;
//! nothing here decides what a node does.
//!
//! | module | what it owns |
//! |---|---|
//! | [`admin`] | the loopback admin endpoint and its token |
//! | [`cluster`] | which nodes this process runs, their listeners, start and stop |
//! | `runner` | one node's task: handlers, timers, write-ahead, history |
//! | [`net`] | TCP frames between nodes |
//! | [`peers`] | the peers file of a multi-process cluster |
//! | [`durable`] | state files: atomic, checksummed, never overwritten when corrupt |
//! | `edge` | the HTTP edge's client id and its requests awaiting replies |
//! | [`http`] | routes, JSON, limits, `/metrics`, `/healthz`, `/readyz` |
//! | `metrics` | counters and gauges from the recorded history |

// Real time, sockets and threads are this crate's job (see the crate docs);
// the determinism lints guard the simulated crates.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

pub mod admin;
pub mod cluster;
pub mod durable;
mod edge;
pub mod faults;
pub mod http;
pub mod metrics;
pub mod net;
pub mod peers;
mod runner;

pub use cluster::{Running, ServeConfig, StartError, start};
