//! The work queue, client-go style without its timers (the node owns
//! those): queued keys are deduplicated, a key is never processed twice at
//! once (one added while processing is marked dirty and queued again when
//! its pass ends), and failures count per key for exponential backoff.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::shard::ShardId;

/// Keys waiting in the work queue; beyond it additions are dropped (the
/// next resync brings them back).
const MAX_QUEUED_KEYS: usize = 10_000;

/// Whether a queued key may be processed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Readiness {
    /// Its shard is believed and fenced.
    Ready,
    /// Its shard is believed but still fencing: keep it queued.
    Wait,
    /// Its shard is not believed: forget it.
    Drop,
}

/// client-go's work queue without its timers (the node owns those): a
/// deduplicated FIFO, the keys being processed, the keys that changed while
/// processed, and per-key failure counts for backoff.
#[derive(Debug, Default)]
pub(super) struct WorkQueue {
    /// The queued keys in order, each with its shard, worked out once when
    /// the key is added: every dispatch asks each waiting key's shard
    /// whether it is ready, and hashing a key to its shard costs divisions.
    pub(super) order: VecDeque<(String, ShardId)>,
    pub(super) queued: BTreeSet<String>,
    pub(super) processing: BTreeSet<String>,
    pub(super) dirty: BTreeSet<String>,
    pub(super) failures: BTreeMap<String, u32>,
    /// Planted bug `no-workqueue-dedup`: a key being processed is queued
    /// (and handed out) again instead of being marked dirty.
    pub(super) hand_out_processing: bool,
}

impl WorkQueue {
    /// Queues `key` (of `shard`), or marks it dirty if it is being
    /// processed. Dropped when the queue is full: the next resync brings it
    /// back.
    pub(super) fn add(&mut self, key: String, shard: ShardId) {
        if self.processing.contains(&key) && !self.hand_out_processing {
            self.dirty.insert(key);
            return;
        }
        if self.queued.contains(&key) || self.order.len() >= MAX_QUEUED_KEYS {
            return;
        }
        self.queued.insert(key.clone());
        self.order.push_back((key, shard));
        debug_assert_eq!(self.order.len(), self.queued.len());
    }

    /// The first ready key, now marked processing; keys that are to be
    /// dropped are removed on the way, waiting ones stay.
    pub(super) fn pop_ready(
        &mut self,
        readiness: impl Fn(&str, ShardId) -> Readiness,
    ) -> Option<String> {
        let mut index = 0;
        // Bounded: each round removes a key or moves past one.
        while index < self.order.len() {
            let (key, shard) = &self.order[index];
            match readiness(key, *shard) {
                Readiness::Wait => index += 1,
                Readiness::Drop => {
                    let (key, _) = self.order.remove(index).expect("index in range");
                    self.queued.remove(&key);
                }
                Readiness::Ready => {
                    let (key, _) = self.order.remove(index).expect("index in range");
                    self.queued.remove(&key);
                    let fresh = self.processing.insert(key.clone());
                    assert!(fresh || self.hand_out_processing, "not processed twice");
                    return Some(key);
                }
            }
        }
        None
    }

    /// Ends processing of `key`; true if it was added meanwhile and must
    /// be queued again.
    pub(super) fn done(&mut self, key: &str) -> bool {
        self.processing.remove(key);
        self.dirty.remove(key)
    }

    /// Resets `key`'s backoff.
    pub(super) fn forget(&mut self, key: &str) {
        self.failures.remove(key);
    }

    /// Counts a failure of `key` and returns its next delay:
    /// `base_ms * 2^(failures - 1)`, at most `cap_ms`.
    pub(super) fn backoff_ms(&mut self, key: &str, base_ms: u64, cap_ms: u64) -> u64 {
        let failures = self.failures.entry(key.to_string()).or_insert(0);
        *failures = failures.saturating_add(1);
        let doublings = (*failures - 1).min(62);
        base_ms.saturating_mul(1 << doublings).min(cap_ms)
    }

    /// Keeps only the keys `keep` accepts, everywhere.
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.order.retain(|(key, _)| keep(key));
        self.queued.retain(|key| keep(key));
        self.processing.retain(|key| keep(key));
        self.dirty.retain(|key| keep(key));
        self.failures.retain(|key, _| keep(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_queue_never_processes_a_key_twice_and_requeues_dirty_keys() {
        let mut queue = WorkQueue::default();
        queue.add("a".into(), ShardId(0));
        queue.add("a".into(), ShardId(0));
        queue.add("b".into(), ShardId(0));
        assert_eq!(
            queue.pop_ready(|_, _| Readiness::Ready).as_deref(),
            Some("a")
        );
        queue.add("a".into(), ShardId(0)); // While processing: dirty, not queued.
        assert_eq!(
            queue.pop_ready(|_, _| Readiness::Ready).as_deref(),
            Some("b")
        );
        assert_eq!(queue.pop_ready(|_, _| Readiness::Ready), None);
        assert!(queue.done("a"), "dirty: queue it again");
        assert!(!queue.done("b"));
        queue.add("a".into(), ShardId(0));
        queue.add("c".into(), ShardId(0));
        let ready = |key: &str, _| {
            if key == "a" {
                Readiness::Wait
            } else {
                Readiness::Ready
            }
        };
        assert_eq!(queue.pop_ready(ready).as_deref(), Some("c"));
        assert_eq!(queue.pop_ready(|_, _| Readiness::Drop), None);
        assert!(queue.order.is_empty() && queue.queued.is_empty());
    }

    #[test]
    fn with_the_no_dedup_bug_the_queue_hands_out_a_key_being_processed() {
        let mut queue = WorkQueue {
            hand_out_processing: true,
            ..WorkQueue::default()
        };
        queue.add("a".into(), ShardId(0));
        assert_eq!(
            queue.pop_ready(|_, _| Readiness::Ready).as_deref(),
            Some("a")
        );
        queue.add("a".into(), ShardId(0));
        assert_eq!(
            queue.pop_ready(|_, _| Readiness::Ready).as_deref(),
            Some("a")
        );
        assert!(!queue.done("a"), "nothing marked dirty");
    }
}
