//! The store's key layout, in one place: every prefix and key a node
//! reads or writes is built here, so two nodes cannot disagree on one.

use node::NodeId;

use crate::shard::ShardId;

/// Prefix of desired resources.
pub(crate) const RESOURCES: &str = "/res/";
/// Prefix of statuses.
pub(crate) const STATUSES: &str = "/status/";
/// Prefix of the idempotency ledger.
pub(crate) const LEDGER: &str = "/idem/";
/// Prefix of ledger locks.
pub(crate) const LOCKS: &str = "/idem-lock/";
/// Prefix of controller membership.
pub(crate) const MEMBERS: &str = "/members/";
/// Prefix of shard leases.
pub(crate) const SHARDS: &str = "/shards/";
/// The singleton leader lease.
pub(crate) const LEADER: &str = "/leader";

/// `/res/{id}`.
pub(crate) fn resource(id: &str) -> String {
    format!("{RESOURCES}{id}")
}
/// `/status/{id}`.
pub(crate) fn status(id: &str) -> String {
    format!("{STATUSES}{id}")
}
/// `/idem/{key}`.
pub(crate) fn ledger(key: &str) -> String {
    format!("{LEDGER}{key}")
}
/// `/idem-lock/{key}`.
pub(crate) fn lock(key: &str) -> String {
    format!("{LOCKS}{key}")
}
/// `/members/{node}`.
pub(crate) fn member(node: NodeId) -> String {
    format!("{MEMBERS}{:04}", node.0)
}
/// `/shards/{n}`.
pub(crate) fn shard(shard: ShardId) -> String {
    format!("{SHARDS}{:04}", shard.0)
}
