//! What clients meant and were told, against what happened where it
//! happened: keys are fresh unless reused on purpose, every answer names
//! what the store committed, a read after an acknowledged write sees it,
//! and once the faults have healed the service answers.
//!
//! The clients record their intent with every send ([`Intent`]) and the
//! request itself; the store records every commit with the key whose
//! ledger entry the same transaction wrote. Nothing here trusts the API's
//! own record of what it did.

use std::collections::BTreeMap;

use sim::{HistoryEntry, NodeId};

use super::{
    CheckInput, Measurements, PropertyKind, QUIET_BEFORE_NS, Verdict, Violations, quiet_between,
};
use plane::protocol::{
    ApiOp, ApiResponse, Event, Intent, RequestId, Resource, ResponseBody, status,
};

/// A key sent as fresh was never used before (by any client, for any
/// other request), and a deliberate reuse names the key's first request.
pub(crate) const KEYS_FRESH: &str = "always.keys_fresh";
/// A resource in an answer is one the store committed: a write's answer
/// names the state the store committed under the write's key (or, for a
/// write that changed nothing, a state it committed before), a read's a
/// state it committed, and a deletion's answer a deletion it committed.
pub(crate) const ANSWERS_MATCH_STORE: &str = "always.answers_match_store";
/// A write's success answers what was asked: a 201 carries the spec the
/// create asked for at generation 1, a 200 to an update the resource and
/// spec it named, a 200 to a delete the resource it named.
pub(crate) const ANSWERS_MATCH_REQUEST: &str = "always.answers_match_request";
/// A read sent after a client's write was acknowledged sees that write
/// (or a later one): never an older generation, never a deleted resource
/// back, never a 404 for a resource that client did not delete.
pub(crate) const READ_YOUR_WRITES: &str = "always.read_your_writes";
/// Fresh requests (and reads) sent while no fault is active, and none
/// starts within the liveness bound, succeed within the bound.
pub(crate) const AVAILABLE: &str = "eventually.available";

/// A fresh request (or a read) whose first attempt was sent in a quiet
/// stretch (no fault active, no message lost or slowed past the network's
/// range and no BUGGIFY point fired, from [`QUIET_BEFORE_NS`] before the
/// send until the client's timeout after it) is answered by that attempt:
/// a final answer (a read: 200 or 404) within the timeout, with no retry;
/// and no send in a quiet stretch is answered 503 (which says the service
/// could not finish: nothing should stop it then).
/// The recovery paths (a retry's takeover, the completer) finish a key the
/// happy path dropped, so only this tells that the happy path works.
pub(crate) const QUIET_FIRST_TRY: &str = "eventually.quiet_first_try";

/// A request sent this close to the end of the run is not judged by
/// `eventually.available`: it has too little time left to be answered.
const AVAILABILITY_GRACE_NS: u64 = 2 * sim::MILLISECOND_NS * 1_000;

/// One send, as the client recorded it.
struct Send<'h> {
    entry: &'h HistoryEntry<Event>,
    key: Option<&'h str>,
    op: &'h ApiOp,
    intent: Intent,
    logical: u64,
    attempt: u32,
}

/// Every client send, by (client, request id): built once per run and
/// shared by this module's properties.
pub(crate) struct Sends<'h>(BTreeMap<(NodeId, RequestId), Send<'h>>);

impl<'h> Sends<'h> {
    pub(crate) fn build(history: &'h [HistoryEntry<Event>]) -> Self {
        let mut sends = BTreeMap::new();
        for entry in history {
            if let Event::RequestSent {
                request_id,
                key,
                op,
                intent,
                logical,
                attempt,
                ..
            } = &entry.event
            {
                let send = Send {
                    entry,
                    key: key.as_deref(),
                    op,
                    intent: *intent,
                    logical: *logical,
                    attempt: *attempt,
                };
                sends.insert((entry.node, *request_id), send);
            }
        }
        Sends(sends)
    }

    /// The send a response answers.
    fn of(&self, entry: &HistoryEntry<Event>, request_id: RequestId) -> Option<&Send<'h>> {
        self.0.get(&(entry.node, request_id))
    }

    /// Every response a client received to a recorded send, in history
    /// order, with that send.
    fn answers<'s>(
        &'s self,
        history: &'h [HistoryEntry<Event>],
    ) -> impl Iterator<Item = (&'h HistoryEntry<Event>, &'s Send<'h>, &'h ApiResponse)> + 's {
        history.iter().filter_map(move |entry| match &entry.event {
            Event::ResponseReceived {
                request_id,
                response,
                ..
            } => Some((entry, self.of(entry, *request_id)?, response)),
            _ => None,
        })
    }
}

/// Whether `response` ends its request well: a read found the resource or
/// learned it is gone, a write got a final answer.
fn succeeded(send: &Send, response: &ApiResponse) -> bool {
    match send.op {
        ApiOp::Get { .. } => matches!(response.status, status::OK | status::NOT_FOUND),
        _ => response.is_final(),
    }
}

/// The verdicts of this module's `always.*` properties, in report order.
pub(crate) fn verdicts(input: &CheckInput, sends: &Sends) -> Vec<Verdict> {
    vec![
        keys_fresh(input),
        answers_match_store(input, sends),
        answers_match_request(input, sends),
        read_your_writes(input, sends),
    ]
}

fn keys_fresh(input: &CheckInput) -> Verdict {
    let mut found = Violations::new(KEYS_FRESH, PropertyKind::Always);
    // Per key: the first send's client, logical request and fingerprint.
    let mut first: BTreeMap<&str, (NodeId, u64, u64, &HistoryEntry<Event>)> = BTreeMap::new();
    for entry in input.history {
        let Event::RequestSent {
            key: Some(key),
            fingerprint,
            intent,
            logical,
            ..
        } = &entry.event
        else {
            continue;
        };
        let Some(&(node, first_logical, first_fingerprint, previous)) = first.get(key.as_str())
        else {
            if let Intent::Reuse { .. } = intent {
                let message = format!("key {key} sent as a reuse, but it was never used before");
                found.at_entry(entry, &[], message);
            }
            first.insert(key, (entry.node, *logical, *fingerprint, entry));
            continue;
        };
        if node == entry.node && first_logical == *logical {
            continue; // A retry or a duplicate of the first request.
        }
        let message = match intent {
            Intent::Fresh => format!(
                "key {key} sent as fresh by {} (request {logical}, fingerprint {fingerprint}), \
                 but {node} used it first (request {first_logical}, fingerprint {first_fingerprint})",
                entry.node
            ),
            Intent::Reuse {
                first_fingerprint: named,
            } if *named != first_fingerprint => format!(
                "key {key} reused as the key of fingerprint {named}, but it was first used for \
                 fingerprint {first_fingerprint}"
            ),
            _ => continue,
        };
        found.at_entry(entry, &[previous.node], message);
    }
    found.into_verdict()
}

fn answers_match_store(input: &CheckInput, sends: &Sends) -> Verdict {
    let mut found = Violations::new(ANSWERS_MATCH_STORE, PropertyKind::Always);
    // What the store committed under each key, and every state of each id.
    let mut by_key: BTreeMap<&str, Option<&Resource>> = BTreeMap::new();
    let mut states: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    let mut deleted: BTreeMap<&str, u64> = BTreeMap::new();
    for entry in input.history {
        match &entry.event {
            Event::DesiredWritten {
                id,
                resource,
                ledger,
                revision,
                ..
            } => {
                if let Some((key, _)) = ledger {
                    by_key.entry(key).or_insert(resource.as_ref());
                }
                match resource {
                    Some(resource) => states.entry(id).or_default().push(resource),
                    None => {
                        deleted.entry(id).or_insert(*revision);
                    }
                }
            }
            Event::ResponseReceived {
                request_id,
                response,
                ..
            } if matches!(response.status, status::OK | status::CREATED) => {
                let Some(send) = sends.of(entry, *request_id) else {
                    continue;
                };
                let committed_state =
                    |r: &Resource| states.get(r.id.as_str()).is_some_and(|s| s.contains(&r));
                let problem = match (&response.body, send.op, send.key) {
                    (ResponseBody::Resource(r), ApiOp::Get { .. }, _) if !committed_state(r) => {
                        Some(format!(
                            "a read of {} answered generation {} {:?}, a state the store never committed",
                            r.id, r.generation, r.spec
                        ))
                    }
                    (_, ApiOp::Get { .. }, _) => None,
                    (ResponseBody::Resource(r), op, Some(key)) => match by_key.get(key) {
                        Some(Some(stored)) if *stored != r => Some(format!(
                            "key {key} answered {} {} generation {} {:?}, but the store committed generation {} {:?} under it",
                            response.status,
                            r.id,
                            r.generation,
                            r.spec,
                            stored.generation,
                            stored.spec
                        )),
                        Some(Some(_)) => None,
                        Some(None) => Some(format!(
                            "key {key} answered {} with {}, but the store deleted it under that key",
                            response.status, r.id
                        )),
                        None if matches!(op, ApiOp::Create { .. }) => Some(format!(
                            "key {key} answered {} naming {}, which the store never committed under that key",
                            response.status, r.id
                        )),
                        None if !committed_state(r) => Some(format!(
                            "key {key} answered {} with {} generation {} {:?}, a state the store never committed",
                            response.status, r.id, r.generation, r.spec
                        )),
                        None => None,
                    },
                    (ResponseBody::Deleted { id }, _, Some(key))
                        if !deleted.contains_key(id.as_str()) =>
                    {
                        Some(format!(
                            "key {key} answered that {id} was deleted, but the store never deleted it"
                        ))
                    }
                    _ => None,
                };
                if let Some(message) = problem {
                    found.at_entry(entry, &[], message);
                }
            }
            _ => {}
        }
    }
    found.into_verdict()
}

fn answers_match_request(input: &CheckInput, sends: &Sends) -> Verdict {
    let mut found = Violations::new(ANSWERS_MATCH_REQUEST, PropertyKind::Always);
    for (entry, send, response) in sends.answers(input.history) {
        if let Some(message) = unlike_request(send.op, response) {
            found.at_entry(entry, &[], message);
        }
    }
    found.into_verdict()
}

/// How a success answer to a write differs from what the write asked for.
fn unlike_request(op: &ApiOp, response: &ApiResponse) -> Option<String> {
    if !matches!(response.status, status::OK | status::CREATED) {
        return None;
    }
    let status = response.status;
    match (op, &response.body) {
        (ApiOp::Get { .. }, _) => None,
        (ApiOp::Create { spec, .. }, ResponseBody::Resource(r))
            if status == status::CREATED && r.spec == *spec && r.generation == 1 =>
        {
            None
        }
        (ApiOp::Update { id, spec }, ResponseBody::Resource(r))
            if status == status::OK && r.id == *id && r.spec == *spec =>
        {
            None
        }
        (ApiOp::Delete { id }, ResponseBody::Deleted { id: named })
            if status == status::OK && named == id =>
        {
            None
        }
        (op, ResponseBody::Resource(r)) => Some(format!(
            "{} was answered {status} with {} generation {} {:?}",
            describe(op),
            r.id,
            r.generation,
            r.spec
        )),
        (op, ResponseBody::Deleted { id }) => Some(format!(
            "{} was answered {status} saying {id} was deleted",
            describe(op)
        )),
        (op, ResponseBody::Error { message }) => Some(format!(
            "{} was answered {status} with an error body: {message}",
            describe(op)
        )),
    }
}

/// A write as a violation names it.
fn describe(op: &ApiOp) -> String {
    match op {
        ApiOp::Create { spec, .. } => format!("a create of {spec:?}"),
        ApiOp::Update { id, spec } => format!("an update of {id} to {spec:?}"),
        ApiOp::Delete { id } => format!("a delete of {id}"),
        ApiOp::Get { id } => format!("a read of {id}"),
    }
}
/// What a client was told of one of its resources, and when.
#[derive(Clone, Copy)]
enum Acked {
    /// The resource exists at this generation (or a later one).
    Exists { generation: u64 },
    /// The resource is deleted.
    Deleted,
}

fn read_your_writes(input: &CheckInput, sends: &Sends) -> Verdict {
    let mut found = Violations::new(READ_YOUR_WRITES, PropertyKind::Always);
    // Per (client, resource): acknowledgements in the order received.
    let mut acks: BTreeMap<(NodeId, &str), Vec<(u64, Acked)>> = BTreeMap::new();
    // Per (client, resource): when the client first sent a delete of it.
    let mut delete_sent: BTreeMap<(NodeId, &str), u64> = BTreeMap::new();
    for entry in input.history {
        match &entry.event {
            Event::RequestSent {
                op: ApiOp::Delete { id },
                ..
            } => {
                delete_sent
                    .entry((entry.node, id.as_str()))
                    .or_insert(entry.time_ns);
            }
            Event::ResponseReceived {
                request_id,
                response,
                ..
            } => {
                let Some(send) = sends.of(entry, *request_id) else {
                    continue;
                };
                if let ApiOp::Get { id } = send.op {
                    let sent_ns = send.entry.time_ns;
                    let client_acks = acks.get(&(entry.node, id.as_str()));
                    let before: Vec<Acked> = client_acks
                        .into_iter()
                        .flatten()
                        .filter(|(at_ns, _)| *at_ns <= sent_ns)
                        .map(|&(_, acked)| acked)
                        .collect();
                    let newest_generation = before
                        .iter()
                        .filter_map(|acked| match acked {
                            Acked::Exists { generation } => Some(*generation),
                            Acked::Deleted => None,
                        })
                        .max();
                    let was_deleted = before.iter().any(|acked| matches!(acked, Acked::Deleted));
                    let deleting = delete_sent
                        .get(&(entry.node, id.as_str()))
                        .is_some_and(|&at_ns| at_ns <= entry.time_ns);
                    let problem = match (&response.body, response.status) {
                        (ResponseBody::Resource(r), status::OK) if was_deleted => Some(format!(
                            "a read of {id} sent after its deletion was acknowledged found generation {}",
                            r.generation
                        )),
                        (ResponseBody::Resource(r), status::OK)
                            if newest_generation.is_some_and(|g| r.generation < g) =>
                        {
                            Some(format!(
                                "a read of {id} found generation {}, after generation {} was acknowledged",
                                r.generation,
                                newest_generation.unwrap_or_default()
                            ))
                        }
                        (_, status::NOT_FOUND) if newest_generation.is_some() && !deleting => {
                            Some(format!(
                                "a read of {id} found nothing, after generation {} was acknowledged and no delete was sent",
                                newest_generation.unwrap_or_default()
                            ))
                        }
                        _ => None,
                    };
                    if let Some(message) = problem {
                        found.at_entry(entry, &[], message);
                    }
                    continue;
                }
                if send.key.is_none() || !response.is_final() {
                    continue;
                }
                let acked = match (&response.body, response.status) {
                    (ResponseBody::Resource(r), status::OK | status::CREATED) => Acked::Exists {
                        generation: r.generation,
                    },
                    (ResponseBody::Deleted { .. }, status::OK) => Acked::Deleted,
                    _ => continue,
                };
                let id = match (&response.body, send.op) {
                    (ResponseBody::Resource(r), _) => r.id.as_str(),
                    (ResponseBody::Deleted { id }, _) => id.as_str(),
                    _ => continue,
                };
                acks.entry((entry.node, id))
                    .or_default()
                    .push((entry.time_ns, acked));
            }
            _ => {}
        }
    }
    found.into_verdict()
}

/// `eventually.quiet_first_try`: see [`QUIET_FIRST_TRY`].
pub(crate) fn quiet_first_try(input: &CheckInput, sends: &Sends) -> Verdict {
    let mut found = Violations::new(QUIET_FIRST_TRY, PropertyKind::Eventually);
    let timeout_ns = input.request_timeout_ns;
    // Per logical request: its first attempt's first send, and whether a
    // send of that attempt was answered in time.
    let mut first: BTreeMap<(NodeId, u64), (&HistoryEntry<Event>, bool)> = BTreeMap::new();
    for send in sends.0.values() {
        if send.attempt == 0 && matches!(send.intent, Intent::Fresh | Intent::Read) {
            let slot = first
                .entry((send.entry.node, send.logical))
                .or_insert((send.entry, false));
            if send.entry.time_ns < slot.0.time_ns {
                slot.0 = send.entry;
            }
        }
    }
    for (entry, send, response) in sends.answers(input.history) {
        if response.status == status::UNAVAILABLE && quiet(input, send.entry.time_ns) {
            let message = format!(
                "request {} of {}, sent at {} ms with the run quiet, was answered 503",
                send.logical,
                entry.node,
                send.entry.time_ns / sim::MILLISECOND_NS
            );
            found.at_entry(entry, &[], message);
        }
        if let (true, 0, Some(slot)) = (
            succeeded(send, response),
            send.attempt,
            first.get_mut(&(entry.node, send.logical)),
        ) {
            slot.1 |= entry.time_ns <= slot.0.time_ns.saturating_add(timeout_ns);
        }
    }
    for (&(node, number), &(sent, answered)) in &first {
        let until_ns = sent.time_ns.saturating_add(timeout_ns);
        if answered || until_ns > input.end_ns || !quiet(input, sent.time_ns) {
            continue;
        }
        let message = format!(
            "request {number} of {node}, sent at {} ms with the run quiet, was not answered by its first try within {} ms",
            sent.time_ns / sim::MILLISECOND_NS,
            timeout_ns / sim::MILLISECOND_NS
        );
        found.at(until_ns, sent.trace_index, &[node], message);
    }
    found.into_verdict()
}

/// Whether nothing disturbed the run from [`QUIET_BEFORE_NS`] before
/// `sent_ns` (and after the boot) until the client's timeout after it.
fn quiet(input: &CheckInput, sent_ns: u64) -> bool {
    // The nodes' boot is the first thing to settle from.
    sent_ns.checked_sub(QUIET_BEFORE_NS).is_some_and(|from_ns| {
        quiet_between(
            input,
            from_ns,
            sent_ns.saturating_add(input.request_timeout_ns),
        )
    })
}

/// One logical request, for availability.
struct Logical {
    first_sent_ns: u64,
    trace_index: u64,
    succeeded_ns: Option<u64>,
}

/// The run's goodput, and `eventually.available`.
pub(crate) struct Availability {
    pub(crate) verdict: Verdict,
    fresh_requests: u64,
    fresh_succeeded: u64,
    judged: u64,
    met: u64,
}

impl Availability {
    /// Fills the goodput measurements.
    pub(crate) fn measure(&self, measurements: &mut Measurements) {
        measurements.fresh_requests = self.fresh_requests;
        measurements.fresh_succeeded = self.fresh_succeeded;
        measurements.availability_judged = self.judged;
        measurements.availability_met = self.met;
    }
}

/// `eventually.available` and the run's goodput: every fresh request or
/// read (by the clients' intent) sent while no fault was active, with none
/// starting within `input.liveness_bound_ns`, must succeed within that
/// bound (by the end of the run, if sooner; requests sent in the run's
/// last two seconds are not judged).
pub(crate) fn available(input: &CheckInput, sends: &Sends) -> Availability {
    let bound_ns = input.liveness_bound_ns;
    let mut found = Violations::new(AVAILABLE, PropertyKind::Eventually);
    let mut logicals: BTreeMap<(NodeId, u64), Logical> = BTreeMap::new();
    for send in sends.0.values() {
        if !matches!(send.intent, Intent::Fresh | Intent::Read) {
            continue;
        }
        let logical = logicals
            .entry((send.entry.node, send.logical))
            .or_insert(Logical {
                first_sent_ns: send.entry.time_ns,
                trace_index: send.entry.trace_index,
                succeeded_ns: None,
            });
        if send.entry.time_ns < logical.first_sent_ns {
            logical.first_sent_ns = send.entry.time_ns;
            logical.trace_index = send.entry.trace_index;
        }
    }
    for (entry, send, response) in sends.answers(input.history) {
        let success = succeeded(send, response);
        if let (true, Some(logical)) = (success, logicals.get_mut(&(entry.node, send.logical))) {
            logical.succeeded_ns.get_or_insert(entry.time_ns);
        }
    }
    // Fault activity: [start, heal) per applied fault.
    let spans: Vec<(u64, u64)> = input
        .faults
        .iter()
        .map(|fault| (fault.at_ns, fault.healed_at_ns().unwrap_or(u64::MAX)))
        .collect();
    let mut judged = 0;
    let mut met = 0;
    for (&(node, number), logical) in &logicals {
        let sent_ns = logical.first_sent_ns;
        let deadline_ns = sent_ns.saturating_add(bound_ns).min(input.end_ns);
        let quiet = spans
            .iter()
            .all(|&(start, heal)| heal <= sent_ns || start > deadline_ns);
        if !quiet || sent_ns.saturating_add(AVAILABILITY_GRACE_NS) > input.end_ns {
            continue;
        }
        judged += 1;
        if logical.succeeded_ns.is_some_and(|at| at <= deadline_ns) {
            met += 1;
            continue;
        }
        let message = match logical.succeeded_ns {
            Some(at) => format!(
                "request {number} of {node}, sent at {} ms with no fault active, succeeded only after {} ms (bound {} ms)",
                sent_ns / sim::MILLISECOND_NS,
                (at - sent_ns) / sim::MILLISECOND_NS,
                bound_ns / sim::MILLISECOND_NS
            ),
            None => format!(
                "request {number} of {node}, sent at {} ms with no fault active, never succeeded (bound {} ms)",
                sent_ns / sim::MILLISECOND_NS,
                bound_ns / sim::MILLISECOND_NS
            ),
        };
        found.at(deadline_ns, logical.trace_index, &[node], message);
    }
    Availability {
        verdict: found.into_verdict(),
        fresh_requests: logicals.len() as u64,
        fresh_succeeded: logicals
            .values()
            .filter(|logical| logical.succeeded_ns.is_some())
            .count() as u64,
        judged,
        met,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use plane::protocol::{ApiResponse, Spec};

    fn update(id: &str, replicas: u32) -> ApiOp {
        ApiOp::Update {
            id: id.to_string(),
            spec: Spec { replicas, image: 1 },
        }
    }

    fn ok(resource: &Resource) -> ApiResponse {
        ApiResponse {
            status: status::OK,
            body: ResponseBody::Resource(resource.clone()),
        }
    }

    #[test]
    fn a_fresh_key_another_request_used_first_violates_keys_fresh() {
        let mut history = History::new();
        history.at(10, CLIENT_A, sent("k1", 5, 0));
        history.at(20, CLIENT_A, sent("k1", 5, 1)); // a retry: fine
        history.at(30, CLIENT_B, sent("k2", 6, 0));
        assert_eq!(history.violations(KEYS_FRESH), 0);
        // Another client picks the same key as fresh: a collision.
        history.at(40, CLIENT_B, sent("k1", 9, 0));
        let verdict = history.verdict(KEYS_FRESH);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("used it first"));
        assert_eq!(verdict.violations[0].nodes, vec![CLIENT_B, CLIENT_A]);
    }

    #[test]
    fn a_deliberate_reuse_holds_keys_fresh_only_if_it_names_the_first_request() {
        let mut history = History::new();
        history.at(10, CLIENT_A, sent("k1", 5, 0));
        let reuse = |first_fingerprint| {
            let mut event = sent_op(
                "k1",
                8,
                0,
                Intent::Reuse { first_fingerprint },
                update("r1", 2),
            );
            if let Event::RequestSent { logical, .. } = &mut event {
                *logical += 1;
            }
            event
        };
        history.at(20, CLIENT_A, reuse(5));
        assert_eq!(history.violations(KEYS_FRESH), 0);
        history.at(30, CLIENT_A, reuse(7));
        assert_eq!(history.violations(KEYS_FRESH), 1);
    }

    #[test]
    fn a_201_naming_what_the_store_committed_under_its_key_holds() {
        let mut history = History::new();
        history.clean_create("k1", "r1", 2);
        assert_eq!(history.violations(ANSWERS_MATCH_STORE), 0);
    }

    #[test]
    fn a_201_the_store_never_committed_violates_answers_match_store() {
        let mut history = History::new();
        let resource = resource("r1", 1, 1);
        history.at(10, CLIENT_A, sent("k1", 5, 0));
        history.at(20, CLIENT_A, received("k1", 5, created(&resource)));
        let verdict = history.verdict(ANSWERS_MATCH_STORE);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("never committed"));
    }

    #[test]
    fn an_answer_other_than_the_keys_commit_violates_answers_match_store() {
        let mut history = History::new();
        let first = resource("r1", 1, 2);
        let later = resource("r1", 3, 3);
        history.at(
            10,
            CLIENT_A,
            sent_op("k1", 5, 0, Intent::Fresh, update("r1", 1)),
        );
        history.at(20, API_A, commit("r1", "k1", 5, false, Some(&first), 10));
        history.at(30, API_A, commit("r1", "k2", 6, false, Some(&later), 11));
        // A replay rebuilt from the resource as it is now.
        history.at(40, CLIENT_A, received("k1", 5, ok(&later)));
        let verdict = history.verdict(ANSWERS_MATCH_STORE);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("under it"));
    }

    #[test]
    fn a_clean_life_answers_what_was_asked() {
        let mut history = History::new();
        history.clean_create("k1", "r1", 3);
        assert_eq!(history.report().failed_properties(), Vec::<String>::new());
    }

    #[test]
    fn a_success_unlike_its_request_violates_answers_match_request() {
        let mut history = History::new();
        let v1 = resource("r1", 1, 1);
        let v2 = resource("r1", 2, 2);
        history.at(
            10,
            CLIENT_A,
            sent_op("k1", 5, 0, Intent::Fresh, update("r1", 2)),
        );
        history.at(20, CLIENT_A, received("k1", 5, ok(&v2)));
        assert_eq!(history.violations(ANSWERS_MATCH_REQUEST), 0);
        // An update to 3 replicas answered with the resource as it was.
        history.at(
            30,
            CLIENT_A,
            sent_op("k2", 6, 0, Intent::Fresh, update("r1", 3)),
        );
        history.at(40, CLIENT_A, received("k2", 6, ok(&v1)));
        // A create answered at generation 2, and a delete naming another id.
        history.at(50, CLIENT_A, sent("k3", 7, 0));
        history.at(60, CLIENT_A, received("k3", 7, created(&v2)));
        history.at(
            70,
            CLIENT_A,
            sent_op("k4", 8, 0, Intent::Fresh, ApiOp::Delete { id: "r1".into() }),
        );
        let deleted = ApiResponse {
            status: status::OK,
            body: ResponseBody::Deleted { id: "r2".into() },
        };
        history.at(80, CLIENT_A, received("k4", 8, deleted));
        let verdict = history.verdict(ANSWERS_MATCH_REQUEST);
        assert_eq!(verdict.violation_count, 3);
        assert!(verdict.violations[0].message.contains("an update of r1"));
    }

    #[test]
    fn reads_must_see_acknowledged_writes() {
        let mut history = History::new();
        let v1 = resource("r1", 1, 1);
        let v2 = resource("r1", 2, 2);
        history.at(10, CLIENT_A, sent("k1", 5, 0));
        history.at(20, API_A, commit("r1", "k1", 5, true, Some(&v1), 10));
        history.at(30, CLIENT_A, received("k1", 5, created(&v1)));
        history.at(
            40,
            CLIENT_A,
            sent_op("k2", 6, 0, Intent::Fresh, update("r1", 2)),
        );
        history.at(50, API_A, commit("r1", "k2", 6, false, Some(&v2), 11));
        history.at(60, CLIENT_A, received("k2", 6, ok(&v2)));
        // Sent after the update was acknowledged, yet sees generation 1.
        history.at(70, CLIENT_A, read_sent("r1", 900));
        history.at(80, CLIENT_A, read_received(900, ok(&v1)));
        // Another client never wrote: it may see anything committed.
        history.at(70, CLIENT_B, read_sent("r1", 901));
        history.at(80, CLIENT_B, read_received(901, ok(&v1)));
        let verdict = history.verdict(READ_YOUR_WRITES);
        assert_eq!(verdict.violation_count, 1);
        assert_eq!(verdict.violations[0].nodes, vec![CLIENT_A]);
        assert!(verdict.violations[0].message.contains("after generation 2"));
        // A read sent before the acknowledgement arrived is not judged.
        let mut early = History::new();
        early.at(
            10,
            CLIENT_A,
            sent_op("k2", 6, 0, Intent::Fresh, update("r1", 2)),
        );
        early.at(15, CLIENT_A, read_sent("r1", 900));
        early.at(20, API_A, commit("r1", "k2", 6, false, Some(&v2), 11));
        early.at(30, CLIENT_A, received("k2", 6, ok(&v2)));
        early.at(40, CLIENT_A, read_received(900, ok(&v1)));
        assert_eq!(early.violations(READ_YOUR_WRITES), 0);
    }

    #[test]
    fn a_404_after_an_acknowledged_create_without_a_delete_violates_read_your_writes() {
        let mut history = History::new();
        let v1 = resource("r1", 1, 1);
        history.at(10, CLIENT_A, sent("k1", 5, 0));
        history.at(20, API_A, commit("r1", "k1", 5, true, Some(&v1), 10));
        history.at(30, CLIENT_A, received("k1", 5, created(&v1)));
        history.at(40, CLIENT_A, read_sent("r1", 900));
        history.at(50, CLIENT_A, read_received(900, error(status::NOT_FOUND)));
        assert_eq!(history.violations(READ_YOUR_WRITES), 1);
    }

    #[test]
    fn a_request_sent_with_no_fault_active_that_never_succeeds_violates_available() {
        let mut history = History::new();
        history.at(100, CLIENT_A, sent("k1", 5, 0));
        history.at(200, CLIENT_A, received("k1", 5, error(status::UNAVAILABLE)));
        let verdict = history.verdict(AVAILABLE);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("never succeeded"));
        let report = history.report();
        assert_eq!(report.measurements.fresh_requests, 1);
        assert_eq!(report.measurements.fresh_succeeded, 0);
        assert_eq!(report.measurements.availability_judged, 1);
    }

    #[test]
    fn a_quiet_request_answered_only_by_its_retry_violates_quiet_first_try() {
        let mut history = History::new();
        let v1 = resource("r1", 1, 1);
        history.at(3_000, CLIENT_A, sent("k1", 5, 0));
        history.at(3_700, CLIENT_A, sent("k1", 5, 1));
        let retried = Event::ResponseReceived {
            request_id: request_id("k1", 1),
            key: Some("k1".into()),
            fingerprint: 5,
            response: created(&v1),
            replayed: false,
        };
        history.at(3_800, CLIENT_A, retried);
        // A second request, answered by its first try: fine.
        history.at(4_000, CLIENT_B, sent("k2", 6, 0));
        history.at(4_100, CLIENT_B, received("k2", 6, created(&v1)));
        let verdict = history.verdict(QUIET_FIRST_TRY);
        assert_eq!(verdict.violation_count, 1, "{verdict:?}");
        assert!(verdict.violations[0].message.contains("first try"));
        assert_eq!(verdict.violations[0].nodes, vec![CLIENT_A]);
        // A 503 to the first try is no answer either, and a 503 while the
        // run is quiet is a violation of its own.
        history.at(5_000, CLIENT_B, sent("k3", 7, 0));
        history.at(
            5_100,
            CLIENT_B,
            received("k3", 7, error(status::UNAVAILABLE)),
        );
        let verdict = history.verdict(QUIET_FIRST_TRY);
        assert_eq!(verdict.violation_count, 3, "{verdict:?}");
        let says_503 = |v: &crate::check::Violation| v.message.contains("answered 503");
        assert_eq!(verdict.violations.iter().filter(|v| says_503(v)).count(), 1);
    }

    #[test]
    fn a_first_try_near_a_disturbance_or_a_fault_is_not_judged() {
        let mut history = History::new();
        history.at(3_000, CLIENT_A, sent("k1", 5, 0));
        history.at(6_000, CLIENT_B, sent("k2", 6, 0));
        assert_eq!(history.violations(QUIET_FIRST_TRY), 2);
        // A message lost during k1's first try; a pause healed 1 s before
        // k2's (within the settling margin).
        history.disturb(3_300);
        history.pause(4_000, API_A, 1_000);
        assert_eq!(history.violations(QUIET_FIRST_TRY), 0);
        // A disturbance long before a send leaves it judged.
        let mut later = History::new();
        later.disturb(100);
        later.at(3_000, CLIENT_A, sent("k1", 5, 0));
        assert_eq!(later.violations(QUIET_FIRST_TRY), 1);
    }

    #[test]
    fn a_request_sent_while_a_fault_is_active_is_not_judged_for_availability() {
        let mut history = History::new();
        history.pause(50, API_A, 1_000);
        history.at(100, CLIENT_A, sent("k1", 5, 0));
        history.at(200, CLIENT_A, received("k1", 5, error(status::UNAVAILABLE)));
        assert_eq!(history.violations(AVAILABLE), 0);
        assert_eq!(history.report().measurements.availability_judged, 0);
        // Nor one whose bound a later fault cuts into.
        let mut later = History::new();
        later.pause(5_000, API_A, 1_000);
        later.at(100, CLIENT_A, sent("k1", 5, 0));
        assert_eq!(later.violations(AVAILABLE), 0);
    }

    #[test]
    fn a_clean_create_is_available_and_counts_as_goodput() {
        let mut history = History::new();
        history.clean_create("k1", "r1", 1);
        assert_eq!(history.violations(AVAILABLE), 0);
        let measurements = history.report().measurements;
        assert_eq!(
            (
                measurements.fresh_requests,
                measurements.fresh_succeeded,
                measurements.availability_met
            ),
            (1, 1, 1)
        );
    }
}
