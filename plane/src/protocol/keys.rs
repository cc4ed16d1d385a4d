//! The store's key layout, in one place: every prefix and key a node
//! reads or writes is built here, so two nodes cannot disagree on one.

use node::NodeId;

use crate::shard::ShardId;

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
