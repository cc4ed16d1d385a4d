//! The timers a run has set and not yet fired or cancelled.

use node::{AscendingMap, NodeId, TimerId};

/// Pending timers, per node, each with the node's local time elapsed at
/// which it is due. A node's timer ids only grow (its counter is never
/// reset, not even by a restart), so each node's map is an
/// [`AscendingMap`]: a timer set is appended, and a lookup is a binary
/// search over the few timers one node has pending.
#[derive(Default)]
pub(crate) struct PendingTimers {
    by_node: Vec<AscendingMap<TimerId, u64>>,
}

impl PendingTimers {
    /// Makes room for a node with this index.
    pub(crate) fn add_node(&mut self, node: NodeId) {
        if self.by_node.len() <= node.index() {
            self.by_node
                .resize_with(node.index() + 1, AscendingMap::default);
        }
    }

    /// Records a timer due at `due_elapsed_ns`.
    #[inline]
    pub(crate) fn insert(&mut self, node: NodeId, timer: TimerId, due_elapsed_ns: u64) {
        self.by_node[node.index()].insert(timer, due_elapsed_ns);
    }

    /// When the timer is due, if it is pending.
    #[inline]
    pub(crate) fn get(&self, node: NodeId, timer: TimerId) -> Option<u64> {
        self.by_node[node.index()].get(timer).copied()
    }

    /// Forgets the timer, returning when it was due if it was pending.
    #[inline]
    pub(crate) fn remove(&mut self, node: NodeId, timer: TimerId) -> Option<u64> {
        self.by_node[node.index()].remove(timer)
    }
}
