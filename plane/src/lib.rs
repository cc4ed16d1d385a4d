//! `plane`: the control plane, as sans-IO nodes on the [`node`] contract.
//!
//! | module | what it owns |
//! |---|---|
//! | [`protocol`] | wire messages, stored values, the key layout, timers and history events |
//! | `session` | the session lease and its window, shared by API nodes and controllers |
//! | `requests` | request ids, replies awaited and their timeouts, shared by every asking node |
//! | `reply` | store replies decoded as peer input: a typed result or an error, never a panic |
//! | [`store`] | an etcd-like state machine and the node that serves it |
//! | [`api`] | the Idempotency-Key API: three phases, takeover, the completer |
//! | [`billing`] | the foreign side effect: a deduplicating payment ledger |
//! | [`controller`] | membership, shard and leader leases, the work queue, reconciliation |
//! | [`worker`] | the data plane: fenced, deduplicated instance starts and stops |
//! | [`client`] | the workload: retries, duplicate sends, key reuse |
//! | [`shard`] | jump hash (resource to shard) and rendezvous hash (shard to controller) |
//! | [`cluster`] | roles, node ids and names, and how each node is built |
//! | [`config`] | topology and each node kind's settings, defaults in one place |
//! | [`durable`] | what each node kind keeps across crashes, as one serde type |
//! | `clock` | node time that survives reboots: durable readings, never raw monotonic ones |
//!
//! Nothing here depends on a host: the crate sees only [`node`], so the
//! simulator, a real tokio process and other engines run the same code.

pub mod api;
pub mod billing;
pub mod client;
mod clock;
pub mod cluster;
pub mod config;
pub mod controller;
pub mod durable;
pub mod protocol;
mod reply;
mod requests;
mod session;
pub mod shard;
pub mod store;
pub mod worker;

#[cfg(test)]
mod reboot_tests;

pub use durable::Durable;
pub use protocol::ControlPlane;
