//! `always.*` properties of the idempotent API: per key, one effect, one
//! charge, one answer, and nothing done for a request answered 422.
//!
//! A key's "stored fingerprint" is the fingerprint of its first
//! `KeyStarted` anywhere in the history (a started record's reply may be
//! delayed past later events, so "first" is not "earliest before"). When no
//! `KeyStarted` was recorded (its API node crashed before the store's reply
//! arrived) the first `KeyFinished`, then the first final response a client
//! received, stand in for it: the properties stay strict without blaming
//! the system for a record it could not make.
//!
//! Keys are numbered once per run ([`KeyIds`]): what a property keeps per
//! key lives in a `Vec` indexed by that number, and what the whole history
//! says of a key (its stored fingerprint, its first answer) is worked out
//! once per key, not at every entry that names it.

use std::collections::{BTreeMap, BTreeSet};

use sim::HistoryEntry;

use super::names::{KeyId, KeyIds};
use super::{CheckInput, PropertyKind, Verdict, Violations};
use plane::protocol::{ApiOp, ApiResponse, Event, Recovery, status};

/// Per key, at most one commit: a create names one resource id.
pub(crate) const ONE_RESOURCE_PER_KEY: &str = "always.one_resource_per_key";
/// Per resource id, at most one create.
pub(crate) const RESOURCE_CREATED_ONCE: &str = "always.resource_created_once";
/// Per key, at most one charge, and each charge with an id of its own.
pub(crate) const ONE_CHARGE_PER_KEY: &str = "always.one_charge_per_key";
/// A create commits only after billing executed its key's charge: no
/// resource for free.
pub(crate) const CREATED_AFTER_CHARGE: &str = "always.created_after_charge";
/// Every final answer for a key equals its first.
pub(crate) const REPLAY_MATCHES_FIRST: &str = "always.replay_matches_first";
/// Nothing is committed for a request other than the key's first.
pub(crate) const MISMATCH_CHANGES_NOTHING: &str = "always.mismatch_changes_nothing";
/// A reused key with another request gets a 422, and only such a request.
pub(crate) const MISMATCH_ANSWERED_422: &str = "always.mismatch_answered_422";

/// Every idempotency verdict, in report order.
pub(crate) fn verdicts(input: &CheckInput, keys: &KeyIds) -> Vec<Verdict> {
    let index = KeyIndex::build(input.history, keys);
    vec![
        one_resource_per_key(input, keys),
        resource_created_once(input, &index),
        one_charge_per_key(input, keys),
        created_after_charge(input, &index),
        replay_matches_first(input, &index),
        mismatch_changes_nothing(input, &index),
        mismatch_answered_422(input, &index),
    ]
}

/// What the whole history says about one key.
#[derive(Clone, Copy, Default)]
struct KeyFacts<'h> {
    /// Its first `KeyStarted` (or the store's first `LedgerWritten`).
    first_started: Option<&'h HistoryEntry<Event>>,
    /// Its first `KeyFinished` (or finished `LedgerWritten`).
    first_finished: Option<&'h HistoryEntry<Event>>,
    /// The first final response a client received for it.
    first_final_response: Option<&'h HistoryEntry<Event>>,
    /// Whether the clients' first request under it was a create: what a
    /// commit under the key carries out, by the client's record.
    create: Option<bool>,
    /// The fingerprint of its first request, as well as it is known.
    stored_fingerprint: Option<u64>,
    /// Its first answer: the stored response, else the first final one a
    /// client received for the stored fingerprint.
    first_response: Option<(&'h HistoryEntry<Event>, &'h ApiResponse)>,
}

/// What the whole history says about each key, for the properties that
/// compare an entry against the key's first request or answer.
struct KeyIndex<'k, 'h> {
    keys: &'k KeyIds<'h>,
    /// Per key, by its number.
    facts: Vec<KeyFacts<'h>>,
    /// Fingerprints answered 422 per key (by the API or as a client saw).
    rejected: BTreeSet<(KeyId, u64)>,
}

impl<'k, 'h> KeyIndex<'k, 'h> {
    fn build(history: &'h [HistoryEntry<Event>], keys: &'k KeyIds<'h>) -> Self {
        let mut facts = vec![KeyFacts::default(); keys.count()];
        let mut rejected = BTreeSet::new();
        // The first final response a client received per key and fingerprint.
        let mut first_final_by_fingerprint: BTreeMap<(KeyId, u64), &'h HistoryEntry<Event>> =
            BTreeMap::new();
        for (entry, key) in keys.entries(history) {
            let Some(key) = key else { continue };
            let known = &mut facts[key];
            match &entry.event {
                Event::KeyStarted { .. } => {
                    known.first_started.get_or_insert(entry);
                }
                Event::KeyFinished { .. } => {
                    known.first_finished.get_or_insert(entry);
                }
                Event::LedgerWritten { recovery, .. } => {
                    known.first_started.get_or_insert(entry);
                    if matches!(recovery, Recovery::Finished { .. }) {
                        known.first_finished.get_or_insert(entry);
                    }
                }
                Event::KeyMismatch { fingerprint, .. } => {
                    rejected.insert((key, *fingerprint));
                }
                Event::ResponseReceived {
                    fingerprint,
                    response,
                    ..
                } => {
                    if response.status == status::UNPROCESSABLE {
                        rejected.insert((key, *fingerprint));
                    }
                    if response.is_final() {
                        known.first_final_response.get_or_insert(entry);
                        first_final_by_fingerprint
                            .entry((key, *fingerprint))
                            .or_insert(entry);
                    }
                }
                Event::RequestSent { op, .. } => {
                    known
                        .create
                        .get_or_insert(matches!(op, ApiOp::Create { .. }));
                }
                _ => {}
            }
        }
        for (key, known) in facts.iter_mut().enumerate() {
            known.stored_fingerprint = [
                known.first_started,
                known.first_finished,
                known.first_final_response,
            ]
            .into_iter()
            .flatten()
            .find_map(|entry| fingerprint_of(&entry.event));
            known.first_response = first_response(known, |stored| {
                first_final_by_fingerprint.get(&(key, stored)).copied()
            });
        }
        KeyIndex {
            keys,
            facts,
            rejected,
        }
    }

    /// What the history says of the key the entry at `position` names.
    fn of(&self, position: usize) -> Option<&KeyFacts<'h>> {
        self.keys.at(position).map(|key| &self.facts[key])
    }
}

/// The first answer for a key: the stored response, else the first final
/// one a client received for the stored fingerprint (`first_final` finds
/// it by fingerprint).
fn first_response<'h>(
    facts: &KeyFacts<'h>,
    first_final: impl Fn(u64) -> Option<&'h HistoryEntry<Event>>,
) -> Option<(&'h HistoryEntry<Event>, &'h ApiResponse)> {
    if let Some(entry) = facts.first_finished {
        match &entry.event {
            Event::KeyFinished { response, .. }
            | Event::LedgerWritten {
                recovery: Recovery::Finished { response },
                ..
            } => return Some((entry, response)),
            _ => {}
        }
    }
    let entry = first_final(facts.stored_fingerprint?)?;
    match &entry.event {
        Event::ResponseReceived { response, .. } => Some((entry, response)),
        _ => None,
    }
}

fn fingerprint_of(event: &Event) -> Option<u64> {
    match event {
        Event::KeyStarted { fingerprint, .. }
        | Event::LedgerWritten { fingerprint, .. }
        | Event::KeyFinished { fingerprint, .. }
        | Event::ResponseReceived { fingerprint, .. } => Some(*fingerprint),
        _ => None,
    }
}

/// A key's first commit: the resource id, whether it created it, the
/// revision, and the store's entry.
type FirstCommit<'h> = (&'h str, bool, u64, &'h HistoryEntry<Event>);

/// Per key, at most one commit of desired state, judged where it took
/// effect: the store's `DesiredWritten` names the key whose ledger entry the
/// same transaction wrote. Two commits are the request's effect applied
/// twice, and two creates are two resources for one key.
fn one_resource_per_key(input: &CheckInput, keys: &KeyIds) -> Verdict {
    let mut found = Violations::new(ONE_RESOURCE_PER_KEY, PropertyKind::Always);
    let mut first: Vec<Option<FirstCommit>> = vec![None; keys.count()];
    for (entry, key_id) in keys.entries(input.history) {
        let Event::DesiredWritten {
            id,
            ledger: Some((key, _)),
            created,
            revision,
            writer,
            ..
        } = &entry.event
        else {
            continue;
        };
        let first = &mut first[key_id.expect("a commit names its ledger key")];
        let Some((first_id, first_created, first_revision, previous)) = *first else {
            *first = Some((id, *created, *revision, entry));
            continue;
        };
        if first_revision == *revision && first_id == id {
            continue; // One commit, recorded twice.
        }
        let what = if *created && first_created && first_id != id {
            "created two resources"
        } else {
            "committed twice"
        };
        let message = format!(
            "key {key} {what}: {first_id} at revision {first_revision}, then {id} at revision {revision} (by {writer})"
        );
        let first_writer = match &previous.event {
            Event::DesiredWritten { writer, .. } => *writer,
            _ => previous.node,
        };
        found.at_entry(entry, &[*writer, first_writer], message);
    }
    found.into_verdict()
}

/// Per resource id, at most one create, judged at the store: a commit
/// carrying out a create (by the client's record of the key's request, or
/// the store's own "was absent" when the key is unknown) of an id the store
/// has held before would overwrite a resource another key paid for.
fn resource_created_once(input: &CheckInput, index: &KeyIndex) -> Verdict {
    let mut found = Violations::new(RESOURCE_CREATED_ONCE, PropertyKind::Always);
    // Per id: the first write (key, revision, entry).
    let mut first: BTreeMap<&str, (Option<&str>, u64, &HistoryEntry<Event>)> = BTreeMap::new();
    for (position, entry) in input.history.iter().enumerate() {
        let Event::DesiredWritten {
            id,
            ledger,
            resource: Some(_),
            revision,
            writer,
            created,
        } = &entry.event
        else {
            continue;
        };
        let key = ledger.as_ref().map(|(key, _)| key.as_str());
        let is_create = index
            .of(position)
            .and_then(|facts| facts.create)
            .unwrap_or(*created);
        match first.get(id.as_str()) {
            None => {
                first.insert(id, (key, *revision, entry));
            }
            Some(&(first_key, first_revision, previous)) if is_create => {
                let message = format!(
                    "resource {id} created again by key {} at revision {revision} (by {writer}), after key {} wrote it at revision {first_revision}",
                    key.unwrap_or("-"),
                    first_key.unwrap_or("-"),
                );
                found.at_entry(entry, &[*writer, previous.node], message);
            }
            Some(_) => {}
        }
    }
    found.into_verdict()
}

/// Every commit that creates a resource for a key (by the client's record
/// of the key's request, or the store's "was absent" when the key is
/// unknown) comes after billing executed that key's charge: judged where
/// both effects took place, the store's commit and billing's charge.
fn created_after_charge(input: &CheckInput, index: &KeyIndex) -> Verdict {
    let mut found = Violations::new(CREATED_AFTER_CHARGE, PropertyKind::Always);
    let mut charged = vec![false; index.facts.len()];
    for (entry, key_id) in index.keys.entries(input.history) {
        match &entry.event {
            Event::ChargeExecuted { .. } => {
                charged[key_id.expect("a charge names its key")] = true;
            }
            Event::DesiredWritten {
                id,
                ledger: Some((key, _)),
                resource: Some(_),
                created,
                writer,
                ..
            } => {
                let key_id = key_id.expect("a commit names its ledger key");
                let is_create = index.facts[key_id].create.unwrap_or(*created);
                if is_create && !charged[key_id] {
                    let message = format!(
                        "resource {id} created for key {key} (by {writer}), which billing never charged"
                    );
                    found.at_entry(entry, &[*writer], message);
                }
            }
            _ => {}
        }
    }
    found.into_verdict()
}

/// Per key, at most one `ChargeExecuted`.
fn one_charge_per_key(input: &CheckInput, keys: &KeyIds) -> Verdict {
    let mut found = Violations::new(ONE_CHARGE_PER_KEY, PropertyKind::Always);
    let mut first: Vec<Option<(u64, &HistoryEntry<Event>)>> = vec![None; keys.count()];
    // A charge id names one charge: two keys under one id are two charges
    // that a refund or a reconciliation cannot tell apart.
    let mut by_id: BTreeMap<u64, (KeyId, &str)> = BTreeMap::new();
    for (entry, key_id) in keys.entries(input.history) {
        let Event::ChargeExecuted { key, charge_id, .. } = &entry.event else {
            continue;
        };
        let key_id = key_id.expect("a charge names its key");
        if let Some(&(_, other)) = by_id.get(charge_id).filter(|&&(other, _)| other != key_id) {
            let message = format!("charge id {charge_id} given to key {other} and to key {key}");
            found.at_entry(entry, &[], message);
        }
        by_id.entry(*charge_id).or_insert((key_id, key));
        let first = &mut first[key_id];
        match *first {
            None => {
                *first = Some((*charge_id, entry));
            }
            Some((first_charge, previous)) => {
                let message = format!(
                    "key {key} charged twice: charge {first_charge}, then charge {charge_id}"
                );
                found.at_entry(entry, &[previous.node], message);
            }
        }
    }
    found.into_verdict()
}

/// Every final response a client receives for a key with the key's stored
/// fingerprint equals the key's first answer exactly (status and body), and
/// every `KeyFinished` of a key agrees with the first.
fn replay_matches_first(input: &CheckInput, index: &KeyIndex) -> Verdict {
    let mut found = Violations::new(REPLAY_MATCHES_FIRST, PropertyKind::Always);
    for (position, entry) in input.history.iter().enumerate() {
        let Some(facts) = index.of(position) else {
            continue;
        };
        let (key, fingerprint, response) = match &entry.event {
            Event::KeyFinished {
                key,
                fingerprint,
                response,
                ..
            }
            | Event::LedgerWritten {
                key,
                fingerprint,
                recovery: Recovery::Finished { response },
                ..
            } => (key, *fingerprint, response),
            Event::ResponseReceived {
                key: Some(key),
                fingerprint,
                response,
                ..
            } if response.is_final() && facts.stored_fingerprint == Some(*fingerprint) => {
                (key, *fingerprint, response)
            }
            _ => continue,
        };
        let Some((first, first_response)) = facts.first_response else {
            continue;
        };
        let first_fingerprint = fingerprint_of(&first.event);
        if std::ptr::eq(first, entry)
            || (first_response == response && first_fingerprint == Some(fingerprint))
        {
            continue;
        }
        let message = format!(
            "key {key}: answered {} {:?} (fingerprint {fingerprint}), but its first answer was {} {:?} (fingerprint {})",
            response.status,
            response.body,
            first_response.status,
            first_response.body,
            first_fingerprint.unwrap_or_default(),
        );
        found.at_entry(entry, &[first.node], message);
    }
    found.into_verdict()
}

/// Every commit and stored answer under a key is for the key's first
/// request: a request answered 422 never commits, and a key is never
/// started twice for two different requests.
fn mismatch_changes_nothing(input: &CheckInput, index: &KeyIndex) -> Verdict {
    let mut found = Violations::new(MISMATCH_CHANGES_NOTHING, PropertyKind::Always);
    for (entry, key_id) in index.keys.entries(input.history) {
        let (key, fingerprint, what) = match &entry.event {
            Event::DesiredWritten {
                ledger: Some((key, fingerprint)),
                id,
                ..
            } => (key, *fingerprint, format!("committed resource {id}")),
            Event::KeyFinished {
                key, fingerprint, ..
            } => (key, *fingerprint, "stored its answer".to_string()),
            Event::KeyStarted {
                key, fingerprint, ..
            } => (key, *fingerprint, "was started".to_string()),
            _ => continue,
        };
        let key_id = key_id.expect("the event names its key");
        let started = index.facts[key_id].first_started;
        let stored = started.and_then(|first| fingerprint_of(&first.event));
        let was_rejected = index.rejected.contains(&(key_id, fingerprint));
        let mut others = Vec::new();
        let mut message = None;
        if let (Some(stored), Some(first)) = (stored, started) {
            if stored != fingerprint {
                others.push(first.node);
                message = Some(format!(
                    "key {key} {what} for fingerprint {fingerprint}, but the key started with fingerprint {stored}"
                ));
            }
        }
        if message.is_none() && was_rejected {
            message = Some(format!(
                "key {key} {what} for fingerprint {fingerprint}, a request answered 422"
            ));
        }
        if let Some(message) = message {
            found.at_entry(entry, &others, message);
        }
    }
    found.into_verdict()
}

/// A 422 answers only a request whose fingerprint differs from the key's
/// stored one, and such a request never gets a final answer.
fn mismatch_answered_422(input: &CheckInput, index: &KeyIndex) -> Verdict {
    let mut found = Violations::new(MISMATCH_ANSWERED_422, PropertyKind::Always);
    for (position, entry) in input.history.iter().enumerate() {
        let Some(facts) = index.of(position) else {
            continue;
        };
        let message = match &entry.event {
            Event::KeyMismatch {
                key,
                stored_fingerprint,
                fingerprint,
            } => mismatch_event_error(facts, key, *stored_fingerprint, *fingerprint),
            Event::ResponseReceived {
                key: Some(key),
                fingerprint,
                response,
                ..
            } => response_error(facts, key, *fingerprint, response),
            _ => None,
        };
        if let Some(message) = message {
            found.at_entry(entry, &[], message);
        }
    }
    found.into_verdict()
}

fn mismatch_event_error(
    facts: &KeyFacts,
    key: &str,
    stored_fingerprint: u64,
    fingerprint: u64,
) -> Option<String> {
    if fingerprint == stored_fingerprint {
        return Some(format!(
            "key {key}: 422 for fingerprint {fingerprint}, the stored request's own"
        ));
    }
    let started = facts
        .first_started
        .and_then(|first| fingerprint_of(&first.event))?;
    (started != stored_fingerprint).then(|| {
        format!(
            "key {key}: 422 names stored fingerprint {stored_fingerprint}, but the key started with {started}"
        )
    })
}

fn response_error(
    facts: &KeyFacts,
    key: &str,
    fingerprint: u64,
    response: &ApiResponse,
) -> Option<String> {
    let stored = facts.stored_fingerprint?;
    if response.status == status::UNPROCESSABLE && fingerprint == stored {
        return Some(format!(
            "key {key}: 422 for fingerprint {fingerprint}, the stored request's own"
        ));
    }
    (response.is_final() && fingerprint != stored).then(|| {
        format!(
            "key {key}: final answer {} for fingerprint {fingerprint}, but the key belongs to fingerprint {stored}",
            response.status
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use plane::protocol::status;

    #[test]
    fn one_key_creating_two_resources_violates_one_resource_per_key() {
        let mut history = History::new();
        let (first, second) = (resource("res-1", 1, 1), resource("res-2", 1, 1));
        history.at(10, API_A, commit("res-1", "k1", 5, true, Some(&first), 3));
        history.at(20, API_B, commit("res-2", "k1", 5, true, Some(&second), 4));
        let verdict = history.verdict(ONE_RESOURCE_PER_KEY);
        assert_eq!(verdict.violation_count, 1);
        let violation = &verdict.violations[0];
        assert_eq!(violation.nodes, vec![API_B, API_A]);
        assert_eq!(violation.trace_index, history.last_index());
        assert!(
            violation.message.contains("created two resources"),
            "{}",
            violation.message
        );
        assert!(violation.message.contains("res-1") && violation.message.contains("res-2"));
    }

    #[test]
    fn one_key_committing_twice_violates_one_resource_per_key() {
        let mut history = History::new();
        let (first, again) = (resource("res-1", 1, 2), resource("res-1", 1, 3));
        history.at(
            10,
            API_A,
            commit("res-1", "k-up", 5, false, Some(&first), 3),
        );
        history.at(
            20,
            API_B,
            commit("res-1", "k-up", 5, false, Some(&again), 4),
        );
        assert_eq!(history.violations(ONE_RESOURCE_PER_KEY), 1);
    }

    #[test]
    fn one_commit_per_key_or_one_commit_recorded_twice_holds_one_resource_per_key() {
        let mut history = History::new();
        let (first, second) = (resource("res-1", 1, 1), resource("res-2", 1, 1));
        history.at(10, API_A, commit("res-1", "k1", 5, true, Some(&first), 3));
        history.at(11, API_A, commit("res-1", "k1", 5, true, Some(&first), 3));
        history.at(20, API_B, commit("res-2", "k2", 5, true, Some(&second), 4));
        history.at(30, API_B, commit("res-2", "k3", 6, false, None, 5));
        assert_eq!(history.violations(ONE_RESOURCE_PER_KEY), 0);
    }

    #[test]
    fn two_keys_creating_one_id_violate_resource_created_once() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(
            10,
            API_A,
            commit("res-1", "k1", 5, true, Some(&resource), 3),
        );
        history.at(
            20,
            API_B,
            commit("res-1", "k2", 6, true, Some(&resource), 4),
        );
        assert_eq!(history.violations(RESOURCE_CREATED_ONCE), 1);

        let mut valid = History::new();
        valid.at(
            10,
            API_A,
            commit("res-1", "k1", 5, true, Some(&resource), 3),
        );
        valid.at(
            20,
            API_B,
            commit("res-1", "k2", 6, false, Some(&resource), 4),
        );
        assert_eq!(valid.violations(RESOURCE_CREATED_ONCE), 0);
    }

    #[test]
    fn two_charges_for_one_key_violate_one_charge_per_key() {
        let mut history = History::new();
        history.at(10, BILLING, charged("k1", 1));
        history.at(20, BILLING, charged("k1", 2));
        let verdict = history.verdict(ONE_CHARGE_PER_KEY);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].time_ns, ms(20));
        assert!(verdict.violations[0].message.contains("k1"));
    }

    #[test]
    fn one_charge_per_key_for_several_keys_holds_one_charge_per_key() {
        let mut history = History::new();
        history.at(10, BILLING, charged("k1", 1));
        history.at(20, BILLING, charged("k2", 2));
        history.at(30, BILLING, Event::ChargeDeduplicated { key: "k1".into() });
        assert_eq!(history.violations(ONE_CHARGE_PER_KEY), 0);
    }

    #[test]
    fn a_replay_with_another_body_violates_replay_matches_first() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        let other = resource("res-9", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_A, finished("k1", 5, created(&first)));
        history.at(30, CLIENT_A, received("k1", 5, created(&first)));
        history.at(40, CLIENT_A, received("k1", 5, created(&other)));
        let verdict = history.verdict(REPLAY_MATCHES_FIRST);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].time_ns, ms(40));
        assert_eq!(verdict.violations[0].nodes, vec![CLIENT_A, API_A]);
    }

    #[test]
    fn a_replay_differing_from_the_stored_response_violates_even_if_no_api_recorded_it() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        let other = resource("res-9", 1, 1);
        let done = Recovery::Finished {
            response: created(&first),
        };
        history.at(20, STORE, ledger_written("k1", 5, done, 4));
        history.at(40, CLIENT_A, received("k1", 5, created(&other)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 1);
    }

    #[test]
    fn a_replay_with_another_status_violates_replay_matches_first() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_A, finished("k1", 5, created(&first)));
        history.at(40, CLIENT_A, received("k1", 5, error(status::NOT_FOUND)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 1);
    }

    #[test]
    fn two_disagreeing_finishes_violate_replay_matches_first() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_A, finished("k1", 5, created(&first)));
        history.at(30, API_B, finished("k1", 5, error(status::NOT_FOUND)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 1);
    }

    #[test]
    fn replays_equal_to_the_first_and_transient_answers_hold_replay_matches_first() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(15, CLIENT_A, received("k1", 5, error(status::CONFLICT)));
        history.at(16, CLIENT_A, received("k1", 5, error(status::UNAVAILABLE)));
        history.at(20, API_A, finished("k1", 5, created(&first)));
        history.at(25, API_B, finished("k1", 5, created(&first)));
        history.at(30, CLIENT_A, received("k1", 5, created(&first)));
        history.at(40, CLIENT_A, received("k1", 5, created(&first)));
        // Another request under the key is another property's business.
        history.at(
            50,
            CLIENT_B,
            received("k1", 6, error(status::UNPROCESSABLE)),
        );
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 0);
    }

    #[test]
    fn without_a_recorded_finish_replays_must_equal_the_first_received() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        history.at(30, CLIENT_A, received("k1", 5, created(&first)));
        history.at(40, CLIENT_A, received("k1", 5, created(&first)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 0);
        history.at(50, CLIENT_A, received("k1", 5, error(status::NOT_FOUND)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 1);
    }

    #[test]
    fn a_final_answer_to_another_request_is_not_what_replays_must_match() {
        let mut history = History::new();
        let first = resource("res-1", 1, 1);
        let wrong = resource("res-9", 1, 1);
        history.at(10, API_A, started("k1", 5));
        // The wrong answer is another property's violation, not the reference.
        history.at(20, CLIENT_B, received("k1", 6, created(&wrong)));
        history.at(30, CLIENT_A, received("k1", 5, created(&first)));
        history.at(40, CLIENT_A, received("k1", 5, created(&first)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 0);
        assert_eq!(history.violations(MISMATCH_ANSWERED_422), 1);
        history.at(50, CLIENT_A, received("k1", 5, created(&wrong)));
        assert_eq!(history.violations(REPLAY_MATCHES_FIRST), 1);
    }

    #[test]
    fn a_commit_for_a_request_answered_422_violates_mismatch_changes_nothing() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_B, mismatch("k1", 5, 6));
        history.at(
            30,
            API_B,
            commit("res-1", "k1", 6, true, Some(&resource), 3),
        );
        let verdict = history.verdict(MISMATCH_CHANGES_NOTHING);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![API_B, API_A]);
        assert!(verdict.violations[0].message.contains("res-1"));
    }

    #[test]
    fn a_commit_for_a_rejected_request_violates_even_without_a_started_record() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(
            20,
            CLIENT_A,
            received("k1", 6, error(status::UNPROCESSABLE)),
        );
        history.at(
            30,
            API_B,
            commit("res-1", "k1", 6, true, Some(&resource), 3),
        );
        assert_eq!(history.violations(MISMATCH_CHANGES_NOTHING), 1);
    }

    #[test]
    fn a_key_started_for_two_requests_violates_mismatch_changes_nothing() {
        let mut history = History::new();
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_B, started("k1", 6));
        assert_eq!(history.violations(MISMATCH_CHANGES_NOTHING), 1);
    }

    #[test]
    fn commits_for_the_first_request_hold_mismatch_changes_nothing() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_B, mismatch("k1", 5, 6));
        history.at(
            25,
            CLIENT_B,
            received("k1", 6, error(status::UNPROCESSABLE)),
        );
        history.at(
            30,
            API_A,
            commit("res-1", "k1", 5, true, Some(&resource), 3),
        );
        history.at(30, API_A, finished("k1", 5, created(&resource)));
        // A takeover resumes the key without starting it again.
        history.at(40, API_B, commit("res-2", "k2", 9, true, None, 4));
        assert_eq!(history.violations(MISMATCH_CHANGES_NOTHING), 0);
    }

    #[test]
    fn a_422_for_the_stored_request_violates_mismatch_answered_422() {
        let mut history = History::new();
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_B, mismatch("k1", 5, 5));
        history.at(
            30,
            CLIENT_A,
            received("k1", 5, error(status::UNPROCESSABLE)),
        );
        assert_eq!(history.violations(MISMATCH_ANSWERED_422), 2);
    }

    #[test]
    fn a_final_answer_to_another_request_violates_mismatch_answered_422() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(30, CLIENT_B, received("k1", 6, created(&resource)));
        let verdict = history.verdict(MISMATCH_ANSWERED_422);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![CLIENT_B]);
    }

    #[test]
    fn a_422_naming_a_wrong_stored_fingerprint_violates_mismatch_answered_422() {
        let mut history = History::new();
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_B, mismatch("k1", 4, 6));
        assert_eq!(history.violations(MISMATCH_ANSWERED_422), 1);
    }

    #[test]
    fn a_422_for_another_request_holds_mismatch_answered_422() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_B, mismatch("k1", 5, 6));
        history.at(
            25,
            CLIENT_B,
            received("k1", 6, error(status::UNPROCESSABLE)),
        );
        history.at(30, CLIENT_A, received("k1", 5, created(&resource)));
        assert_eq!(history.violations(MISMATCH_ANSWERED_422), 0);
    }

    #[test]
    fn a_create_committed_without_a_charge_violates_created_after_charge() {
        let mut history = History::new();
        history.clean_create("k1", "r1", 1);
        assert_eq!(history.violations(CREATED_AFTER_CHARGE), 0);
        let resource = resource("r2", 1, 1);
        history.at(400, CLIENT_A, sent("k2", 9, 0));
        history.at(410, API_A, commit("r2", "k2", 9, true, Some(&resource), 20));
        // Charged only after the commit: too late.
        history.at(420, BILLING, charged("k2", 2));
        let verdict = history.verdict(CREATED_AFTER_CHARGE);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("never charged"));
    }

    #[test]
    fn one_charge_id_for_two_keys_violates_one_charge_per_key() {
        let mut history = History::new();
        history.at(10, BILLING, charged("k1", 1));
        history.at(20, BILLING, charged("k2", 2));
        assert_eq!(history.violations(ONE_CHARGE_PER_KEY), 0);
        history.at(30, BILLING, charged("k3", 1));
        let verdict = history.verdict(ONE_CHARGE_PER_KEY);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("charge id 1"));
    }
}
