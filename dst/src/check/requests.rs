//! Requests end to end: `eventually.keys_finished` (no key left half done,
//! no charge without its resource) and the clients' request latencies.

use std::collections::{BTreeMap, BTreeSet};

use sim::{HistoryEntry, NodeId};

use super::names::{KeyId, KeyIds};
use super::{CheckInput, PropertyKind, Verdict, Violations};
use plane::protocol::{Event, Recovery, Subject, status};

/// Every started key finishes; every charged key created its resource.
pub(crate) const KEYS_FINISHED: &str = "eventually.keys_finished";

/// `eventually.keys_finished`: at the end, every key started in the ledger
/// (`KeyStarted`, or the store's `LedgerWritten`) is finished in it
/// (`KeyFinished`, or a `LedgerWritten` with `Recovery::Finished`), and
/// every key billing charged created its resource (a charge with no
/// resource is money taken for nothing).
pub(crate) fn keys_finished(input: &CheckInput, keys: &KeyIds) -> Verdict {
    let mut found = Violations::new(KEYS_FINISHED, PropertyKind::Eventually);
    // Per key, by its number.
    let mut started: Vec<Option<&HistoryEntry<Event>>> = vec![None; keys.count()];
    let mut charged: Vec<Option<&HistoryEntry<Event>>> = vec![None; keys.count()];
    let mut finished = vec![false; keys.count()];
    let mut created = vec![false; keys.count()];
    for (entry, key) in keys.entries(input.history) {
        let Some(key) = key else { continue };
        match &entry.event {
            Event::KeyStarted { .. } => {
                started[key].get_or_insert(entry);
            }
            // The store's own record: a started key whose API node never
            // heard the reply is still started.
            Event::LedgerWritten { recovery, .. } => {
                started[key].get_or_insert(entry);
                if let Recovery::Finished { response } = recovery {
                    finished[key] = true;
                    if response.status == status::CREATED {
                        created[key] = true;
                    }
                }
            }
            Event::ChargeExecuted { .. } => {
                charged[key].get_or_insert(entry);
            }
            Event::KeyFinished { .. } => {
                finished[key] = true;
            }
            // The store's record of the commit, carrying the key whose
            // ledger entry the same transaction wrote.
            Event::DesiredWritten {
                ledger: Some(_),
                created: true,
                ..
            } => {
                created[key] = true;
            }
            _ => {}
        }
    }
    // Reported in the keys' order, started keys first.
    for (name, key) in keys.by_name() {
        if let (Some(entry), false) = (started[key], finished[key]) {
            let message = format!("key {name} started but never finished");
            let about = vec![Subject::Key(name.to_string())];
            found.about(
                input.end_ns,
                entry.trace_index,
                &[entry.node],
                about,
                message,
            );
        }
    }
    for (name, key) in keys.by_name() {
        if let (Some(entry), false) = (charged[key], created[key]) {
            let message = format!("key {name} charged but created no resource");
            let about = vec![Subject::Key(name.to_string())];
            found.about(
                input.end_ns,
                entry.trace_index,
                &[entry.node],
                about,
                message,
            );
        }
    }
    found.into_verdict()
}

/// Per (client, key), the time from the key's first send to the first
/// final response for it, in the order the responses arrived. Requests
/// without a key get no final answer and are not measured.
pub(crate) fn latencies_ns(input: &CheckInput, keys: &KeyIds) -> Vec<u64> {
    let mut first_sent: BTreeMap<(KeyId, NodeId), u64> = BTreeMap::new();
    let mut answered: BTreeSet<(KeyId, NodeId)> = BTreeSet::new();
    let mut latencies = Vec::new();
    for (entry, key) in keys.entries(input.history) {
        let Some(key) = key else { continue };
        match &entry.event {
            Event::RequestSent { .. } => {
                first_sent.entry((key, entry.node)).or_insert(entry.time_ns);
            }
            Event::ResponseReceived { response, .. } if response.is_final() => {
                let request = (key, entry.node);
                if let Some(&sent_ns) = first_sent.get(&request) {
                    if answered.insert(request) {
                        latencies.push(entry.time_ns.saturating_sub(sent_ns));
                    }
                }
            }
            _ => {}
        }
    }
    latencies
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use plane::protocol::status;

    #[test]
    fn a_started_key_that_never_finished_violates_keys_finished() {
        let mut history = History::new();
        history.at(10, API_A, started("k1", 5));
        history.at(20, API_A, started("k2", 5));
        history.at(30, API_B, finished("k2", 5, error(status::NOT_FOUND)));
        let verdict = history.verdict(KEYS_FINISHED);
        assert_eq!(verdict.violation_count, 1);
        let violation = &verdict.violations[0];
        assert!(violation.message.contains("k1"));
        assert_eq!(violation.nodes, vec![API_A]);
        assert_eq!(violation.trace_index, 0);
        assert_eq!(violation.time_ns, history.end_ns);
    }

    #[test]
    fn a_charge_without_its_resource_violates_keys_finished() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(10, BILLING, charged("k1", 1));
        history.at(
            20,
            API_A,
            commit("res-1", "k1", 5, false, Some(&resource), 3),
        );
        assert_eq!(history.violations(KEYS_FINISHED), 1);
    }

    #[test]
    fn finished_keys_and_charged_creates_hold_keys_finished() {
        let mut history = History::new();
        history.clean_create("k1", "res-1", 1);
        // Finished by the completer on another node.
        history.at(400, API_A, started("k2", 6));
        history.at(900, API_B, finished("k2", 6, error(status::NOT_FOUND)));
        assert_eq!(history.violations(KEYS_FINISHED), 0);
    }

    #[test]
    fn a_key_the_store_started_but_never_finished_violates_keys_finished() {
        // The API never heard the reply to its record: only the store's
        // record says the key started.
        let mut history = History::new();
        history.at(400, STORE, ledger_written("k1", 5, Recovery::Started, 3));
        assert_eq!(history.violations(KEYS_FINISHED), 1);
        let resource = resource("res-1", 1, 1);
        let done = Recovery::Finished {
            response: created(&resource),
        };
        history.at(900, STORE, ledger_written("k1", 5, done, 7));
        assert_eq!(history.violations(KEYS_FINISHED), 0);
    }

    #[test]
    fn latency_runs_from_a_keys_first_send_to_its_first_final_answer() {
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(100, CLIENT_A, sent("k1", 5, 0));
        history.at(200, CLIENT_B, sent("k2", 6, 0));
        history.at(700, CLIENT_A, sent("k1", 5, 1));
        history.at(750, CLIENT_A, received("k1", 5, error(status::CONFLICT)));
        history.at(800, CLIENT_B, received("k2", 6, created(&resource)));
        history.at(900, CLIENT_A, received("k1", 5, created(&resource)));
        history.at(950, CLIENT_A, received("k1", 5, created(&resource)));
        // Another client's answer for a key it never sent is not measured.
        history.at(990, CLIENT_B, received("k1", 5, created(&resource)));
        assert_eq!(
            history.report().measurements.request_latencies_ns,
            vec![ms(600), ms(800)]
        );
    }
}
