//! Sharding: resources to shards by jump hash, shards to members by rendezvous hashing.
//!
//! Two layers, so that a membership change moves whole shards (with their
//! leases and fencing tokens) rather than individual resources. Every hash
//! here is the pinned `node::stable_hash`, never std's `DefaultHasher`, so a
//! placement is the same on every host, toolchain and run.

use std::fmt;
use std::hash::Hash;

use node::stable_hash;
use serde::{Deserialize, Serialize};

/// Version of the placement functions in this module (jump hash, rendezvous
/// scores, the modulo baseline). Bump it whenever any of them changes: every
/// resource's shard and every shard's owner would move, so reports print it
/// to tell a changed placement apart from a changed behaviour.
pub const SHARDING_HASH_VERSION: u32 = 1;

/// The LCG multiplier from Lamping & Veach, "A Fast, Minimal Memory,
/// Consistent Hash Algorithm" (2014).
const JUMP_LCG_MULTIPLIER: u64 = 2_862_933_555_777_941_757;

/// A shard: a fixed slice of the resource space, owned by one controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

/// Jump consistent hash: maps `key` to a bucket in `0..buckets` so that
/// growing from n to n+1 buckets moves only about 1/(n+1) of the keys, all of
/// them into the new bucket. Panics if `buckets` is zero.
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    assert!(buckets > 0, "jump_hash needs at least one bucket");
    let buckets = u64::from(buckets);
    let mut bucket: u64 = 0;
    let mut next: u64 = 0;
    // Bounded: `next` grows by at least one per pass (the divisor is at most
    // 2^31), so this runs at most `buckets` times; in practice about ln(n).
    while next < buckets {
        bucket = next;
        key = key.wrapping_mul(JUMP_LCG_MULTIPLIER).wrapping_add(1);
        // The paper computes (b+1) * (2^31 / ((key >> 33) + 1)) in doubles.
        // We allow no floats in decisions, so we take the exact integer
        // quotient (b+1) * 2^31 / ((key >> 33) + 1) instead; b+1 < 2^32, so
        // the product is below 2^63 and fits a u64. It matches the published
        // reference vectors (see the pinned-values test).
        next = ((bucket + 1) << 31) / ((key >> 33) + 1);
        assert!(next > bucket);
    }
    let bucket = u32::try_from(bucket).expect("bucket < buckets fits u32");
    debug_assert!(u64::from(bucket) < buckets);
    bucket
}

/// The shard that owns `resource_id` among `shard_count` shards.
pub fn shard_of(resource_id: &str, shard_count: u32) -> ShardId {
    ShardId(jump_hash(stable_hash(resource_id), shard_count))
}

/// Rendezvous (highest random weight) hashing: the owner of `shard` is the
/// member with the highest `stable_hash(&(shard, member))`. Adding a member
/// moves only the shards it now wins; removing one moves only its shards.
/// Ties are broken by the member's order, so the answer depends neither on
/// the order of `members` nor on luck. `None` when there are no members.
pub fn rendezvous_owner<M: Copy + Ord + Hash>(shard: ShardId, members: &[M]) -> Option<M> {
    members
        .iter()
        .map(|&member| (stable_hash(&(shard, member)), member))
        .max()
        .map(|(_, member)| member)
}

/// The owner of every shard in `0..shard_count` by [`rendezvous_owner`];
/// the index of the result is the shard number.
pub fn assign_shards<M: Copy + Ord + Hash>(shard_count: u32, members: &[M]) -> Vec<Option<M>> {
    (0..shard_count)
        .map(|shard| rendezvous_owner(ShardId(shard), members))
        .collect()
}

/// The bad baseline: `stable_hash(shard) mod n` over the members sorted.
/// Adding or removing one member reshuffles almost every shard (about
/// n/(n+1) of them), so each change is a storm of lease handoffs. Kept only
/// to show the difference in tests and for a planted bug; never use it for
/// real placement.
pub fn modulo_owner<M: Copy + Ord>(shard: ShardId, members: &[M]) -> Option<M> {
    if members.is_empty() {
        return None;
    }
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    let index = stable_hash(&shard) % sorted.len() as u64;
    Some(sorted[index as usize])
}

/// How many shards have a different owner in `after` than in `before`.
/// Both must cover the same shards (equal lengths).
pub fn shards_moved<M: PartialEq>(before: &[Option<M>], after: &[Option<M>]) -> usize {
    assert_eq!(
        before.len(),
        after.len(),
        "assignments of different shard counts"
    );
    before.iter().zip(after).filter(|(b, a)| b != a).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::NodeId;

    const KEY_COUNT: u64 = 10_000;

    fn keys() -> impl Iterator<Item = u64> {
        (0..KEY_COUNT).map(|i| stable_hash(&i))
    }

    fn members(count: u32) -> Vec<NodeId> {
        (0..count).map(NodeId).collect()
    }

    /// Asserts `actual` is within `percent`% of `expected`.
    fn assert_near(actual: usize, expected: usize, percent: usize, what: &str) {
        let tolerance = expected * percent / 100;
        assert!(
            actual.abs_diff(expected) <= tolerance,
            "{what}: {actual} not within {percent}% of {expected}"
        );
    }

    #[test]
    fn jump_hash_stays_below_bucket_count() {
        for buckets in [1, 2, 3, 7, 64, 1000, u32::MAX] {
            for key in keys().take(1000) {
                assert!(jump_hash(key, buckets) < buckets);
            }
        }
    }

    #[test]
    #[should_panic(expected = "at least one bucket")]
    fn jump_hash_rejects_zero_buckets() {
        jump_hash(1, 0);
    }

    #[test]
    fn jump_hash_growing_moves_only_to_new_bucket_about_one_in_n_plus_one() {
        for n in 1..=20u32 {
            let mut moved = 0;
            for key in keys() {
                let (before, after) = (jump_hash(key, n), jump_hash(key, n + 1));
                if before != after {
                    assert_eq!(after, n, "key {key} moved to an old bucket");
                    moved += 1;
                }
            }
            assert_near(moved, KEY_COUNT as usize / (n as usize + 1), 30, "moved");
        }
    }

    #[test]
    fn jump_hash_balances_keys_across_buckets() {
        let mut counts = [0usize; 16];
        for key in keys() {
            counts[jump_hash(key, 16) as usize] += 1;
        }
        for count in counts {
            assert_near(count, KEY_COUNT as usize / 16, 25, "bucket load");
        }
    }

    #[test]
    fn placement_pinned_values() {
        // The first three are the reference vectors other implementations
        // publish (from the paper's C++): our integer division agrees.
        assert_eq!(jump_hash(42, 57), 43);
        assert_eq!(jump_hash(0xDEAD_10CC, 666), 361);
        assert_eq!(jump_hash(256, 1024), 520);
        // A change below moves resources or shards: bump SHARDING_HASH_VERSION.
        assert_eq!(jump_hash(1, 1000), 549);
        assert_eq!(jump_hash(u64::MAX, 1000), 313);
        assert_eq!(shard_of("resource-1", 64), ShardId(37));
        assert_eq!(rendezvous_owner(ShardId(0), &members(5)), Some(NodeId(3)));
        assert_eq!(ShardId(7).to_string(), "shard-7");
    }

    #[test]
    fn rendezvous_adding_member_moves_about_one_in_n_plus_one_all_to_it() {
        let shard_count = 4096;
        for n in 1..=8u32 {
            let before = assign_shards(shard_count, &members(n));
            let after = assign_shards(shard_count, &members(n + 1));
            for (b, a) in before.iter().zip(&after) {
                assert!(b == a || *a == Some(NodeId(n)), "{b:?} moved to {a:?}");
            }
            let moved = shards_moved(&before, &after);
            assert_near(moved, shard_count as usize / (n as usize + 1), 20, "moved");
        }
    }

    #[test]
    fn rendezvous_removing_member_moves_only_its_shards() {
        let all = members(6);
        let removed = NodeId(2);
        let rest: Vec<NodeId> = all.iter().copied().filter(|&m| m != removed).collect();
        let before = assign_shards(4096, &all);
        let after = assign_shards(4096, &rest);
        let owned = before.iter().filter(|&&o| o == Some(removed)).count();
        assert!(owned > 0);
        for (b, a) in before.iter().zip(&after) {
            assert!(b == a || *b == Some(removed), "{b:?} moved to {a:?}");
        }
        assert_eq!(shards_moved(&before, &after), owned);
    }

    #[test]
    fn rendezvous_balances_shards_across_members() {
        let mut counts = [0usize; 5];
        for owner in assign_shards(KEY_COUNT as u32, &members(5)) {
            counts[owner.expect("members is not empty").index()] += 1;
        }
        for count in counts {
            assert_near(count, KEY_COUNT as usize / 5, 10, "member load");
        }
    }

    #[test]
    fn rendezvous_with_no_members_has_no_owner() {
        assert_eq!(rendezvous_owner::<NodeId>(ShardId(3), &[]), None);
        assert_eq!(modulo_owner::<NodeId>(ShardId(3), &[]), None);
        assert_eq!(assign_shards::<NodeId>(4, &[]), vec![None; 4]);
    }

    #[test]
    fn rendezvous_ignores_member_order() {
        let forward = members(7);
        let mut backward = forward.clone();
        backward.reverse();
        let mut shuffled = forward.clone();
        shuffled.rotate_left(3);
        shuffled.swap(0, 5);
        let expected = assign_shards(1024, &forward);
        assert_eq!(assign_shards(1024, &backward), expected);
        assert_eq!(assign_shards(1024, &shuffled), expected);
    }

    #[test]
    fn modulo_baseline_moves_far_more_than_rendezvous_on_join() {
        let (shard_count, n) = (4096u32, 4u32);
        let (old, new) = (members(n), members(n + 1));
        let modulo = |m: &[NodeId]| -> Vec<_> {
            (0..shard_count)
                .map(|s| modulo_owner(ShardId(s), m))
                .collect()
        };
        let modulo_moved = shards_moved(&modulo(&old), &modulo(&new));
        let rendezvous_moved = shards_moved(
            &assign_shards(shard_count, &old),
            &assign_shards(shard_count, &new),
        );
        // Modulo keeps a shard only when h mod n == h mod (n+1): about 1 in n+1.
        assert_near(
            modulo_moved,
            shard_count as usize * 4 / 5,
            10,
            "modulo moved",
        );
        assert!(
            modulo_moved > 3 * rendezvous_moved,
            "{modulo_moved} vs {rendezvous_moved}"
        );
    }
}
