//! The timers a run has set and not yet fired or cancelled.

use node::{AscendingMap, NodeId, TimerId};

/// Pending timers, per node, each with the node's local time elapsed at
/// which it is due. A node's timer ids only grow (its counter is never
/// reset, not even by a restart), so each node's map is an
/// [`AscendingMap`]: a timer set is appended, and a lookup is a binary
/// search over the few timers one node has pending.
#[derive(Default)]
pub(crate) struct PendingTimers {
    by_node: Vec<AscendingMap<TimerId, PendingTimer>>,
}

/// A timer set and not yet fired or cancelled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingTimer {
    /// The node's local time elapsed at which it is due.
    pub(crate) due_elapsed_ns: u64,
    /// Where its event waits in the queue's slab, or [`NOT_QUEUED`] while
    /// a pause holds it outside the queue: what lets a cancel kill the
    /// queued event in place.
    pub(crate) slot: u32,
}

/// The slot of a pending timer whose event is not in the queue.
pub(crate) const NOT_QUEUED: u32 = u32::MAX;

impl PendingTimers {
    /// Makes room for a node with this index.
    pub(crate) fn add_node(&mut self, node: NodeId) {
        if self.by_node.len() <= node.index() {
            self.by_node
                .resize_with(node.index() + 1, AscendingMap::default);
        }
    }

    /// Records a timer.
    #[inline]
    pub(crate) fn insert(&mut self, node: NodeId, timer: TimerId, pending: PendingTimer) {
        self.by_node[node.index()].insert(timer, pending);
    }

    /// The timer, if it is pending.
    #[inline]
    pub(crate) fn get(&self, node: NodeId, timer: TimerId) -> Option<PendingTimer> {
        self.by_node[node.index()].get(timer).copied()
    }

    /// Notes where the pending timer's event now waits.
    #[inline]
    pub(crate) fn set_slot(&mut self, node: NodeId, timer: TimerId, slot: u32) {
        if let Some(pending) = self.by_node[node.index()].get_mut(timer) {
            pending.slot = slot;
        }
    }

    /// Forgets every timer of the node, returning them.
    pub(crate) fn take(&mut self, node: NodeId) -> AscendingMap<TimerId, PendingTimer> {
        std::mem::take(&mut self.by_node[node.index()])
    }

    /// Forgets the timer, returning it if it was pending.
    #[inline]
    pub(crate) fn remove(&mut self, node: NodeId, timer: TimerId) -> Option<PendingTimer> {
        self.by_node[node.index()].remove(timer)
    }
}
