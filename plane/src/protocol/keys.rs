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
/// Prefix of the unfinished part of the ledger: a copy of each entry not
/// yet finished, so the completer's scan reads what may need it and not
/// the whole ledger, which grows with every request until keys expire.
pub(crate) const OPEN: &str = "/idem-open/";
/// Prefix of controller membership.
pub(crate) const MEMBERS: &str = "/members/";
/// Prefix of shard leases.
pub(crate) const SHARDS: &str = "/shards/";
/// The singleton leader lease.
pub(crate) const LEADER: &str = "/leader";

/// `prefix` then `rest`, allocated once at its final size: `format!`
/// guesses the size and grows the string as it writes, and these keys are
/// built on every store request.
fn joined(prefix: &str, rest: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + rest.len());
    key.push_str(prefix);
    key.push_str(rest);
    key
}

/// `/res/{id}`.
pub(crate) fn resource(id: &str) -> String {
    joined(RESOURCES, id)
}
/// `/status/{id}`.
pub(crate) fn status(id: &str) -> String {
    joined(STATUSES, id)
}
/// `/idem/{key}`.
pub(crate) fn ledger(key: &str) -> String {
    joined(LEDGER, key)
}
/// `/idem-lock/{key}`.
pub(crate) fn lock(key: &str) -> String {
    joined(LOCKS, key)
}
/// `/idem-open/{key}`.
pub(crate) fn open(key: &str) -> String {
    joined(OPEN, key)
}
/// `/members/{node}`.
pub(crate) fn member(node: NodeId) -> String {
    format!("{MEMBERS}{:04}", node.0)
}
/// `/shards/{n}`.
pub(crate) fn shard(shard: ShardId) -> String {
    format!("{SHARDS}{:04}", shard.0)
}

/// The shard whose key [`shard`] makes is `key`, if one is: the inverse
/// of [`shard`], without building a key per shard to look one up. Keys
/// under [`SHARDS`] that [`shard`] never makes (a sign, a letter, leading
/// zeros past four digits) name none.
pub(crate) fn parse_shard(key: &str) -> Option<ShardId> {
    let digits = key.strip_prefix(SHARDS)?;
    let canonical = digits.len() >= 4
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 4 || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse().ok().map(ShardId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_shard_inverts_shard_and_nothing_else() {
        for n in [0, 7, 42, 999, 1_000, 9_999, 10_000, 123_456, u32::MAX] {
            assert_eq!(parse_shard(&shard(ShardId(n))), Some(ShardId(n)));
        }
        for key in [
            "/shards/",
            "/shards/7",
            "/shards/007",
            "/shards/00007",
            "/shards/+007",
            "/shards/00a7",
            "/shards/0007/x",
            "/shards/99999999999",
            "/members/0007",
            "/leader",
        ] {
            assert_eq!(parse_shard(key), None, "{key}");
        }
    }
}
