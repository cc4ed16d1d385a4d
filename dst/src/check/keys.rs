//! The idempotency keys a history names, numbered once per run.
//!
//! Several properties keep something per key (its first start, its first
//! charge, whether it finished) and consult it at every entry that names
//! the key. Looking a `&str` up in a `BTreeMap` at each of those entries,
//! once per property, compares strings over and over; numbering every key
//! once here lets them index a `Vec` instead. Numbers are given in order of
//! first appearance, so they are deterministic, but they carry no meaning:
//! a property that reports keys in order walks [`KeyIds::by_name`].

use std::collections::BTreeMap;

use sim::HistoryEntry;

use plane::protocol::Event;

/// A key's number: an index into a per-key `Vec`, below [`KeyIds::count`].
pub(crate) type KeyId = usize;

/// Every key of one history, and which key each entry names.
pub(crate) struct KeyIds<'h> {
    /// Per history entry, by position: the key it names, if any.
    at: Vec<Option<KeyId>>,
    /// Every key, by name.
    by_name: BTreeMap<&'h str, KeyId>,
}

impl<'h> KeyIds<'h> {
    /// Numbers the keys of `history` in one pass.
    pub(crate) fn build(history: &'h [HistoryEntry<Event>]) -> Self {
        let mut by_name: BTreeMap<&'h str, KeyId> = BTreeMap::new();
        let at: Vec<Option<KeyId>> = history
            .iter()
            .map(|entry| {
                let key = key_of(&entry.event)?;
                let next = by_name.len();
                Some(*by_name.entry(key).or_insert(next))
            })
            .collect();
        debug_assert_eq!(at.len(), history.len());
        KeyIds { at, by_name }
    }

    /// How many distinct keys the history names: the length of a per-key
    /// `Vec`.
    pub(crate) fn count(&self) -> usize {
        self.by_name.len()
    }

    /// The key the entry at `position` in the history names, if any.
    pub(crate) fn at(&self, position: usize) -> Option<KeyId> {
        self.at[position]
    }

    /// Every entry of `history` (the one these were built from) with the
    /// key it names, if any, in history order.
    pub(crate) fn entries<'k>(
        &'k self,
        history: &'h [HistoryEntry<Event>],
    ) -> impl Iterator<Item = (&'h HistoryEntry<Event>, Option<KeyId>)> + 'k {
        assert_eq!(history.len(), self.at.len(), "keys of another history");
        history.iter().zip(self.at.iter().copied())
    }

    /// Every key with its number, in the keys' order (as a
    /// `BTreeMap<&str, _>` would iterate them).
    pub(crate) fn by_name(&self) -> impl Iterator<Item = (&'h str, KeyId)> + '_ {
        self.by_name.iter().map(|(&name, &id)| (name, id))
    }
}

/// The idempotency key an event names, if any: a commit names the key
/// whose ledger entry its transaction wrote.
fn key_of(event: &Event) -> Option<&str> {
    match event {
        Event::RequestSent { key, .. }
        | Event::ResponseReceived { key, .. }
        | Event::RequestAbandoned { key } => key.as_deref(),
        Event::DesiredWritten { ledger, .. } => ledger.as_ref().map(|(key, _)| key.as_str()),
        Event::KeyStarted { key, .. }
        | Event::KeyTakenOver { key, .. }
        | Event::KeyFinished { key, .. }
        | Event::ResourceCommitted { key, .. }
        | Event::Replayed { key }
        | Event::KeyInFlight { key }
        | Event::KeyMismatch { key, .. }
        | Event::LedgerWritten { key, .. }
        | Event::ChargeExecuted { key, .. }
        | Event::ChargeDeduplicated { key }
        | Event::CommitReplanned { key, .. } => Some(key),
        Event::StatusStored { .. }
        | Event::LeaseStored { .. }
        | Event::LeaseAcquired { .. }
        | Event::BeliefStarted { .. }
        | Event::BeliefEnded { .. }
        | Event::StatusWritten { .. }
        | Event::MembershipObserved { .. }
        | Event::BackoffEngaged { .. }
        | Event::FenceRaised { .. }
        | Event::InstanceStarted { .. }
        | Event::InstanceStopped { .. }
        | Event::ActionRejected { .. }
        | Event::ActionDeduplicated { .. }
        | Event::ActionSettledDropped { .. }
        | Event::ActionRefusedBusy { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn entries_naming_one_key_share_its_number_and_others_have_none() {
        let mut history = History::new();
        history.at(10, CLIENT_A, sent("k2", 5, 0));
        history.at(20, API_A, started("k1", 5));
        history.at(30, API_A, started("k2", 5));
        history.at(40, BILLING, charged("k1", 1));
        history.at(50, CTRL_A, status_written("res-1", 1, 1, 1));
        let keys = KeyIds::build(&history.entries);
        assert_eq!(keys.count(), 2);
        assert_eq!(keys.at(0), Some(0));
        assert_eq!(keys.at(1), Some(1));
        assert_eq!(keys.at(2), Some(0));
        assert_eq!(keys.at(3), Some(1));
        assert_eq!(keys.at(4), None);
        let names: Vec<(&str, KeyId)> = keys.by_name().collect();
        assert_eq!(names, vec![("k1", 1), ("k2", 0)]);
    }
}
