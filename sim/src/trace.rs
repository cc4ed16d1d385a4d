//! The trace: every delivery, drop, timer, fault and recorded event, in
//! order, and a running hash of its canonical encoding that names the run.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::NodeId;
use node::StableHasher;

/// Bumped whenever what goes into a trace entry, or its order, changes.
///
/// - 1: the first encoding.
/// - 2: a message's digest hashes each shared stored value (a resource or
///   ledger entry, `node::Digested`) as the value's own stable hash,
///   worked out once, rather than field by field on every message that
///   carries it. Every hash changed; no behaviour did.
/// - 3: the same for a stored key as a whole (the store's `KeyValue`, with
///   its key, value and revisions) and for a worker's instance: a store
///   reply hashes one word per key it returns, and an `Observed` one word
///   per instance. Every hash changed; no behaviour did.
/// - 4: the order of the queue made explicit: faults queued first at one
///   time (crashes or pauses fired by BUGGIFY points of two handlers that
///   ran at the same instant) pop in the order they were queued, where
///   before the binary heap's shape decided; so the queue can sweep
///   cancelled timers out of its middle. A cancelled timer is no longer an
///   event: it is not counted, moves no clock and ends no quiet. Every
///   hash changed; behaviour changed only where such faults tied: 17 of
///   the 2,200 runs of `sweep --scenario all --seeds 0..200`, each with
///   the same outcome.
pub const TRACE_ENCODING_VERSION: u32 = 4;

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Lost by the network's random drop.
    Random,
    /// A partition cut the link at send or delivery time.
    Partition,
    /// The receiver was down, or crashed while the message was in flight.
    NodeDown,
    /// A fired BUGGIFY point dropped the sender's sends.
    Buggify,
    /// Lost on a link a degrade fault covers (last: positions are hashed).
    Degrade,
}

/// What one trace entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceKind {
    /// A node started (or restarted: see `Restart`).
    Start,
    /// A message was handled by `node`, sent by `peer`.
    Deliver,
    /// A message from `node` to `peer` was lost.
    Drop(DropReason),
    /// A message from `node` to `peer` was duplicated by the network.
    Duplicate,
    /// A message on `node -> peer` was held by a clog.
    Hold,
    /// A timer fired on `node`.
    Timer,
    /// A fault started; `digest` identifies it.
    Fault,
    /// A fault healed.
    Heal,
    /// A node was rebuilt from durable storage.
    Restart,
    /// A node recorded a history event.
    Record,
    /// A BUGGIFY point fired at `node`; `digest` names the point and what
    /// it did (last: positions are hashed).
    Buggify,
}

/// One trace entry. Payloads are represented by their stable hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TraceEntry {
    /// True simulated time.
    pub time_ns: u64,
    /// What happened.
    pub kind: TraceKind,
    /// The node it happened at (the sender, for drops and duplicates).
    pub node: NodeId,
    /// The other node, where there is one; otherwise equal to `node`.
    pub peer: NodeId,
    /// Stable hash of the payload (message, timer tag, fault or event).
    pub digest: u64,
}

/// The trace of a run: a running hash, and the entries when recorded.
#[derive(Clone, Debug)]
pub struct Trace {
    hasher: StableHasher,
    len: u64,
    entries: Option<Vec<TraceEntry>>,
}

impl Trace {
    /// An empty trace; `keep_entries` keeps every entry, not only the hash.
    pub fn new(keep_entries: bool) -> Self {
        let mut hasher = StableHasher::new();
        TRACE_ENCODING_VERSION.hash(&mut hasher);
        Self {
            hasher,
            len: 0,
            entries: keep_entries.then(Vec::new),
        }
    }

    /// Appends `entry` and returns its index.
    #[inline]
    pub fn push(&mut self, entry: TraceEntry) -> u64 {
        entry.hash(&mut self.hasher);
        if let Some(entries) = &mut self.entries {
            entries.push(entry);
        }
        self.len += 1;
        self.len - 1
    }

    /// The hash naming the run so far.
    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// Number of entries so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before anything happened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries, if the run was configured to keep them.
    pub fn entries(&self) -> Option<&[TraceEntry]> {
        self.entries.as_deref()
    }
}

/// The first index where two traces differ, or `None` if they are equal.
/// When one is a prefix of the other, that is the shorter one's length.
pub fn first_divergence(left: &[TraceEntry], right: &[TraceEntry]) -> Option<usize> {
    let common = left.len().min(right.len());
    (0..common)
        .find(|&index| left[index] != right[index])
        .or((left.len() != right.len()).then_some(common))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(time_ns: u64) -> TraceEntry {
        TraceEntry {
            time_ns,
            kind: TraceKind::Timer,
            node: NodeId(0),
            peer: NodeId(0),
            digest: 0,
        }
    }

    #[test]
    fn first_divergence_finds_the_first_differing_entry() {
        let a = [entry(1), entry(2), entry(3)];
        let b = [entry(1), entry(5), entry(3)];
        assert_eq!(first_divergence(&a, &b), Some(1));
        assert_eq!(first_divergence(&a, &a), None);
        assert_eq!(first_divergence(&a, &a[..2]), Some(2));
    }

    #[test]
    fn hash_depends_on_order() {
        let mut forward = Trace::new(false);
        forward.push(entry(1));
        forward.push(entry(2));
        let mut backward = Trace::new(false);
        backward.push(entry(2));
        backward.push(entry(1));
        assert_ne!(forward.hash(), backward.hash());
    }
}
