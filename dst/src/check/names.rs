//! The names a history mentions, numbered once per run: idempotency keys
//! ([`KeyIds`]) and resource ids ([`ResourceIds`]).
//!
//! Several properties keep something per key (its first start, its first
//! charge, whether it finished) or per resource (what it runs, its shard)
//! and consult it at every entry that names one. Looking a `&str` up in a
//! `BTreeMap` at each of those entries, once per property, compares strings
//! over and over; numbering every name once here lets them index a `Vec`
//! instead. Numbers are given in order of first appearance, so they are
//! deterministic, but they carry no meaning: a property that reports names
//! in order walks [`Names::by_name`].
//!
//! Numbering looks each name up by its [`stable_hash`] first, then by the
//! name itself: hashing a short id once costs less than comparing it, byte
//! by byte, with the ten or so others a search by name visits. Two names
//! with one hash are still told apart by the name.

use std::collections::BTreeMap;

use node::stable_hash;
use sim::HistoryEntry;

use plane::protocol::Event;

/// A name's number: an index into a per-name `Vec`, below
/// [`Names::count`].
pub(crate) type NameId = usize;

/// An idempotency key's number.
pub(crate) type KeyId = NameId;

/// A resource id's number.
pub(crate) type ResourceId = NameId;

/// Every idempotency key of one history, and which key each entry names.
pub(crate) type KeyIds<'h> = Names<'h>;

/// Every resource id of one history, and which resource each entry names.
pub(crate) type ResourceIds<'h> = Names<'h>;

/// Every name of one kind in one history, and which name each entry
/// names (at most one of that kind).
pub(crate) struct Names<'h> {
    /// Per history entry, by position: the name it names, if any.
    at: Vec<Option<NameId>>,
    /// Every name with its number, sorted by name.
    by_name: Vec<(&'h str, NameId)>,
    /// Every name, by number.
    by_number: Vec<&'h str>,
}

impl<'h> Names<'h> {
    /// Numbers the idempotency keys of `history` in one pass.
    pub(crate) fn keys(history: &'h [HistoryEntry<Event>]) -> Self {
        Self::build(history, key_of)
    }

    /// Numbers the resource ids of `history` in one pass.
    pub(crate) fn resources(history: &'h [HistoryEntry<Event>]) -> Self {
        Self::build(history, resource_of)
    }

    /// Numbers the names `name_of` finds in `history`, in one pass.
    fn build(history: &'h [HistoryEntry<Event>], name_of: fn(&Event) -> Option<&str>) -> Self {
        let mut numbers: BTreeMap<(u64, &'h str), NameId> = BTreeMap::new();
        let mut by_number: Vec<&'h str> = Vec::new();
        let at: Vec<Option<NameId>> = history
            .iter()
            .map(|entry| {
                let name = name_of(&entry.event)?;
                let next = by_number.len();
                let number = *numbers.entry((stable_hash(name), name)).or_insert(next);
                if number == next {
                    by_number.push(name);
                }
                Some(number)
            })
            .collect();
        debug_assert_eq!(at.len(), history.len());
        let mut by_name: Vec<(&'h str, NameId)> = by_number
            .iter()
            .enumerate()
            .map(|(number, &name)| (name, number))
            .collect();
        by_name.sort_unstable();
        Names {
            at,
            by_name,
            by_number,
        }
    }

    /// How many distinct names the history names: the length of a
    /// per-name `Vec`.
    pub(crate) fn count(&self) -> usize {
        self.by_number.len()
    }

    /// The name the entry at `position` in the history names, if any.
    pub(crate) fn at(&self, position: usize) -> Option<NameId> {
        self.at[position]
    }

    /// Every entry of `history` (the one these were built from) with the
    /// name it names, if any, in history order.
    pub(crate) fn entries<'k>(
        &'k self,
        history: &'h [HistoryEntry<Event>],
    ) -> impl Iterator<Item = (&'h HistoryEntry<Event>, Option<NameId>)> + 'k {
        assert_eq!(history.len(), self.at.len(), "names of another history");
        history.iter().zip(self.at.iter().copied())
    }

    /// Every name with its number, in the names' order (as a
    /// `BTreeMap<&str, _>` would iterate them).
    pub(crate) fn by_name(&self) -> impl Iterator<Item = (&'h str, NameId)> + '_ {
        self.by_name.iter().copied()
    }

    /// Every name, by number: what a per-name `Vec` derived from the names
    /// themselves is built from.
    pub(crate) fn by_number(&self) -> &[&'h str] {
        &self.by_number
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

/// The resource whose state an event records, if any: its desired state,
/// its status, or one of its instances. (A workqueue requeue or a replan
/// names a resource too, but changes none of its state.)
fn resource_of(event: &Event) -> Option<&str> {
    match event {
        Event::DesiredWritten { id, .. }
        | Event::ResourceCommitted { id, .. }
        | Event::StatusStored { id, .. } => Some(id),
        Event::StatusWritten { resource, .. } => Some(resource),
        Event::InstanceStarted { instance, .. } | Event::InstanceStopped { instance, .. } => {
            Some(&instance.resource)
        }
        Event::RequestSent { .. }
        | Event::ResponseReceived { .. }
        | Event::RequestAbandoned { .. }
        | Event::KeyStarted { .. }
        | Event::KeyTakenOver { .. }
        | Event::KeyFinished { .. }
        | Event::Replayed { .. }
        | Event::KeyInFlight { .. }
        | Event::KeyMismatch { .. }
        | Event::LedgerWritten { .. }
        | Event::LeaseStored { .. }
        | Event::ChargeExecuted { .. }
        | Event::ChargeDeduplicated { .. }
        | Event::LeaseAcquired { .. }
        | Event::BeliefStarted { .. }
        | Event::BeliefEnded { .. }
        | Event::MembershipObserved { .. }
        | Event::BackoffEngaged { .. }
        | Event::FenceRaised { .. }
        | Event::ActionRejected { .. }
        | Event::ActionDeduplicated { .. }
        | Event::ActionSettledDropped { .. }
        | Event::ActionRefusedBusy { .. }
        | Event::CommitReplanned { .. } => None,
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
        let keys = Names::keys(&history.entries);
        assert_eq!(keys.count(), 2);
        assert_eq!(keys.at(0), Some(0));
        assert_eq!(keys.at(1), Some(1));
        assert_eq!(keys.at(2), Some(0));
        assert_eq!(keys.at(3), Some(1));
        assert_eq!(keys.at(4), None);
        let names: Vec<(&str, KeyId)> = keys.by_name().collect();
        assert_eq!(names, vec![("k1", 1), ("k2", 0)]);
    }

    #[test]
    fn entries_naming_one_resource_share_its_number_in_order_of_appearance() {
        let mut history = History::new();
        history.at(10, CTRL_A, status_written("res-2", 1, 1, 1));
        history.at(20, API_A, started("k1", 5));
        let one = instance(WORKER_A, 1, "res-1", 0, 1);
        history.at(30, WORKER_A, start(CTRL_A, 1, 1, &one));
        history.at(40, WORKER_A, stop(CTRL_A, 2, 1, &one));
        let resources = Names::resources(&history.entries);
        assert_eq!(resources.count(), 2);
        let at: Vec<Option<ResourceId>> = (0..4).map(|position| resources.at(position)).collect();
        assert_eq!(at, vec![Some(0), None, Some(1), Some(1)]);
        assert_eq!(resources.by_number(), ["res-2", "res-1"]);
        let names: Vec<(&str, ResourceId)> = resources.by_name().collect();
        assert_eq!(names, vec![("res-1", 1), ("res-2", 0)]);
    }
}
