//! The timers a run has set and not yet fired or cancelled.

use node::{NodeId, TimerId};

/// Pending timers, per node, each with the node's local time elapsed at
/// which it is due.
///
/// A node's timer ids only grow (its counter is never reset, not even by a
/// restart), so each node's list stays sorted by appending, and a lookup is
/// a binary search over the few timers one node has pending. The lists
/// behave as one map from (node, timer) to due time, which is all the
/// simulator asks of them.
#[derive(Default)]
pub(crate) struct PendingTimers {
    by_node: Vec<Vec<(TimerId, u64)>>,
}

impl PendingTimers {
    /// Makes room for a node with this index.
    pub(crate) fn add_node(&mut self, node: NodeId) {
        if self.by_node.len() <= node.index() {
            self.by_node.resize_with(node.index() + 1, Vec::new);
        }
    }

    /// Records a timer due at `due_elapsed_ns`, replacing any entry with
    /// the same id.
    #[inline]
    pub(crate) fn insert(&mut self, node: NodeId, timer: TimerId, due_elapsed_ns: u64) {
        let timers = &mut self.by_node[node.index()];
        match timers.last() {
            Some(&(last, _)) if last >= timer => match timers.binary_search_by_key(&timer, |e| e.0)
            {
                Ok(at) => timers[at].1 = due_elapsed_ns,
                Err(at) => timers.insert(at, (timer, due_elapsed_ns)),
            },
            _ => timers.push((timer, due_elapsed_ns)),
        }
    }

    /// When the timer is due, if it is pending.
    #[inline]
    pub(crate) fn get(&self, node: NodeId, timer: TimerId) -> Option<u64> {
        let timers = &self.by_node[node.index()];
        let at = timers.binary_search_by_key(&timer, |e| e.0).ok()?;
        Some(timers[at].1)
    }

    /// Forgets the timer, returning when it was due if it was pending.
    #[inline]
    pub(crate) fn remove(&mut self, node: NodeId, timer: TimerId) -> Option<u64> {
        let timers = &mut self.by_node[node.index()];
        let at = timers.binary_search_by_key(&timer, |e| e.0).ok()?;
        Some(timers.remove(at).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{SimRng, Stream};
    use node::Random;
    use std::collections::BTreeMap;

    /// The per-node lists answer exactly as one ordered map would, over
    /// random sets, cancels, fires and re-inserts of old ids.
    #[test]
    fn behaves_as_a_map() {
        for seed in 0..20 {
            let mut rng = SimRng::derive(seed, Stream::Network);
            let mut table = PendingTimers::default();
            let mut model = BTreeMap::new();
            let mut next = [0u64; 4];
            for node in 0..4 {
                table.add_node(NodeId(node));
            }
            for _ in 0..5_000 {
                let node = NodeId(rng.below(4) as u32);
                let n = node.index();
                match rng.below(10) {
                    0..=3 => {
                        next[n] += 1;
                        let due = rng.below(1_000);
                        table.insert(node, TimerId(next[n]), due);
                        model.insert((node, TimerId(next[n])), due);
                    }
                    4 => {
                        // An old id again (never done by the simulator,
                        // but the table must still behave as a map).
                        let timer = TimerId(rng.below(next[n] + 1));
                        let due = rng.below(1_000);
                        table.insert(node, timer, due);
                        model.insert((node, timer), due);
                    }
                    5..=7 => {
                        let timer = TimerId(rng.below(next[n] + 1));
                        assert_eq!(table.remove(node, timer), model.remove(&(node, timer)));
                    }
                    _ => {
                        let timer = TimerId(rng.below(next[n] + 1));
                        assert_eq!(table.get(node, timer), model.get(&(node, timer)).copied());
                    }
                }
            }
        }
    }
}
