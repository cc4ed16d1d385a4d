//! What clients meant and were told, against what happened where it
//! happened: keys are fresh unless reused on purpose, every answer names
//! what the store committed (a read: what it held while the read was in
//! flight, desired state and status together), a read after an
//! acknowledged write sees it, and once the faults have healed the service
//! answers.
//!
//! The clients record their intent with every send ([`Intent`]) and the
//! request itself; the store records every commit with the key whose
//! ledger entry the same transaction wrote. Nothing here trusts the API's
//! own record of what it did.

use std::collections::{BTreeMap, BTreeSet};

use sim::{HistoryEntry, NodeId};

use super::names::{KeyId, KeyIds};
use super::reads::{Holdings, covered, page_problem};
use super::{
    CheckInput, Measurements, PropertyKind, QUIET_BEFORE_NS, Verdict, Violations, quiet_between,
};
use plane::protocol::{
    ApiOp, ApiResponse, Event, Intent, RequestId, Resource, ResourceView, ResponseBody, status,
};

/// A key sent as fresh was never used before (by any client, for any
/// other request), and a deliberate reuse names the key's first request.
pub(crate) const KEYS_FRESH: &str = "always.keys_fresh";
/// A resource in an answer is one the store committed: a write's answer
/// names the state the store committed under the write's key (or, for a
/// write that changed nothing, a state it committed before), a read's a
/// state it committed, and a deletion's answer a deletion it committed.
/// A get's resource and status, and each item of a list's page, are a pair
/// the store held at one revision the read may have read (the one current
/// when it was sent, or one committed before its answer); and a page
/// leaves out no resource that stood the whole time within the ids it
/// covers (after its cursor, up to its next cursor).
pub(crate) const ANSWERS_MATCH_STORE: &str = "always.answers_match_store";
/// A success answers what was asked: a 201 carries the spec the create
/// asked for at generation 1, a 200 to an update the resource and spec it
/// named, a 200 to a delete the resource it named, a 200 to a get that
/// resource with its status, and a 200 to a list a page: at most its
/// limit of items, by id, after its cursor, with a next cursor that moves
/// on.
pub(crate) const ANSWERS_MATCH_REQUEST: &str = "always.answers_match_request";
/// A read sent after a client's write was acknowledged sees that write
/// (or a later one): never an older generation, never a deleted resource
/// back, never a 404 for a resource that client did not delete; and a
/// list whose page covers such a resource's id lists it.
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
    /// The key's number ([`KeyIds`]).
    key_id: Option<KeyId>,
    op: &'h ApiOp,
    intent: Intent,
    logical: u64,
    attempt: u32,
}

/// A key's first send: its client, logical request, fingerprint and entry.
type FirstSend<'h> = (NodeId, u64, u64, &'h HistoryEntry<Event>);

/// Every client send, by (client, request id): built once per run and
/// shared by this module's properties.
pub(crate) struct Sends<'h>(BTreeMap<(NodeId, RequestId), Send<'h>>);

impl<'h> Sends<'h> {
    pub(crate) fn build(history: &'h [HistoryEntry<Event>], keys: &KeyIds<'h>) -> Self {
        let mut sends = BTreeMap::new();
        for (entry, key_id) in keys.entries(history) {
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
                    key_id,
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
        ApiOp::List { .. } => response.status == status::OK,
        _ => response.is_final(),
    }
}

/// The resource a get's 200 shows: with its status, or (a body of the
/// wrong shape, which `answers_match_request` judges) bare.
fn read_resource(body: &ResponseBody) -> Option<&Resource> {
    match body {
        ResponseBody::Read(view) => Some(&view.resource),
        ResponseBody::Resource(resource) => Some(resource),
        _ => None,
    }
}

/// The verdicts of this module's `always.*` properties, in report order.
pub(crate) fn verdicts(input: &CheckInput, keys: &KeyIds, sends: &Sends) -> Vec<Verdict> {
    vec![
        keys_fresh(input, keys),
        answers_match_store(input, keys, sends),
        answers_match_request(input, sends),
        read_your_writes(input, sends),
    ]
}

fn keys_fresh(input: &CheckInput, keys: &KeyIds) -> Verdict {
    let mut found = Violations::new(KEYS_FRESH, PropertyKind::Always);
    // Per key, by its number: the first send's client, logical request and
    // fingerprint.
    let mut first: Vec<Option<FirstSend>> = vec![None; keys.count()];
    for (entry, key_id) in keys.entries(input.history) {
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
        let first = &mut first[key_id.expect("a send with a key names it")];
        let Some((node, first_logical, first_fingerprint, previous)) = *first else {
            if let Intent::Reuse { .. } = intent {
                let message = format!("key {key} sent as a reuse, but it was never used before");
                found.at_entry(entry, &[], message);
            }
            *first = Some((entry.node, *logical, *fingerprint, entry));
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

fn answers_match_store(input: &CheckInput, keys: &KeyIds, sends: &Sends) -> Verdict {
    let mut found = Violations::new(ANSWERS_MATCH_STORE, PropertyKind::Always);
    // What the store committed under each key (by its number), and every
    // state of each id.
    let mut by_key: Vec<Option<Option<&Resource>>> = vec![None; keys.count()];
    let mut states: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    let mut deleted: BTreeMap<&str, u64> = BTreeMap::new();
    // Every state the store held, desired state and status together.
    let mut holdings = Holdings::default();
    for (entry, key_id) in keys.entries(input.history) {
        holdings.observe(entry);
        match &entry.event {
            Event::DesiredWritten {
                id,
                resource,
                ledger,
                revision,
                ..
            } => {
                if let (Some(_), Some(key_id)) = (ledger, key_id) {
                    by_key[key_id].get_or_insert(resource.as_ref());
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
                if send.op.is_read() {
                    let read = Read {
                        sent: send.entry.trace_index,
                        answered: entry.trace_index,
                        holdings: &holdings,
                        committed_state: &committed_state,
                    };
                    for message in read.unlike_store(send.op, &response.body) {
                        found.at_entry(entry, &[], message);
                    }
                    continue;
                }
                let problem = match (&response.body, send.op, send.key.zip(send.key_id)) {
                    (ResponseBody::Resource(r), op, Some((key, key_id))) => match by_key[key_id] {
                        Some(Some(stored)) if stored != r => Some(format!(
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
                    (ResponseBody::Deleted { id }, _, Some((key, _)))
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

/// One read's 200, against what the store held while it was in flight.
struct Read<'a, 'h> {
    /// The trace indices of its send and of the answer.
    sent: u64,
    answered: u64,
    holdings: &'a Holdings<'h>,
    /// Whether the store ever committed a resource state.
    committed_state: &'a dyn Fn(&Resource) -> bool,
}

impl Read<'_, '_> {
    /// How the answer to `op` differs from anything the store held then.
    fn unlike_store(&self, op: &ApiOp, body: &ResponseBody) -> Vec<String> {
        match (op, body) {
            // A bare resource (the wrong shape) is judged as reads were
            // before they carried a status: a state the store committed.
            (ApiOp::Get { .. }, ResponseBody::Resource(r)) if !(self.committed_state)(r) => {
                vec![never_committed("a read", r)]
            }
            (ApiOp::Get { .. }, ResponseBody::Read(view)) => {
                self.view_problem("a read", view).into_iter().collect()
            }
            (ApiOp::List { after, .. }, ResponseBody::Page { items, next }) => {
                let mut problems: Vec<String> = items
                    .iter()
                    .filter_map(|view| self.view_problem("a list", view))
                    .collect();
                let standing = self.holdings.standing_throughout(
                    after.as_deref(),
                    next.as_deref(),
                    self.sent,
                    self.answered,
                );
                let listed = listed_ids(items);
                problems.extend(standing.into_iter().filter(|id| !listed.contains(id)).map(|id| {
                    format!(
                        "a list after {after:?} up to {next:?} left out {id}, which the store held from before the list was sent until it was answered"
                    )
                }));
                problems
            }
            _ => Vec::new(),
        }
    }

    /// How one resource with its status differs from what the store held.
    fn view_problem(&self, what: &str, view: &ResourceView) -> Option<String> {
        let r = &view.resource;
        if !(self.committed_state)(r) {
            return Some(never_committed(what, r));
        }
        if self.holdings.held_between(view, self.sent, self.answered) {
            return None;
        }
        Some(format!(
            "{what} answered {} generation {} {:?} with status {:?}, which the store did not hold together at any revision between the send and the answer",
            r.id, r.generation, r.spec, view.status
        ))
    }
}

fn never_committed(what: &str, r: &Resource) -> String {
    format!(
        "{what} of {} answered generation {} {:?}, a state the store never committed",
        r.id, r.generation, r.spec
    )
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

/// How a success answer differs from what the request asked for.
fn unlike_request(op: &ApiOp, response: &ApiResponse) -> Option<String> {
    if !matches!(response.status, status::OK | status::CREATED) {
        return None;
    }
    let status = response.status;
    match (op, &response.body) {
        (ApiOp::Get { id }, ResponseBody::Read(view))
            if status == status::OK && view.resource.id == *id =>
        {
            None
        }
        (ApiOp::List { after, limit }, ResponseBody::Page { items, next })
            if status == status::OK =>
        {
            page_problem(after.as_deref(), *limit, items, next.as_deref())
                .map(|problem| format!("{} was answered a page with {problem}", describe(op)))
        }
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
        (op, ResponseBody::Read(view)) => Some(format!(
            "{} was answered {status} with {} generation {} and its status",
            describe(op),
            view.resource.id,
            view.resource.generation
        )),
        (op, ResponseBody::Page { items, .. }) => Some(format!(
            "{} was answered {status} with a page of {} items",
            describe(op),
            items.len()
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

/// A request as a violation names it.
fn describe(op: &ApiOp) -> String {
    match op {
        ApiOp::Create { spec, .. } => format!("a create of {spec:?}"),
        ApiOp::Update { id, spec } => format!("an update of {id} to {spec:?}"),
        ApiOp::Delete { id } => format!("a delete of {id}"),
        ApiOp::Get { id } => format!("a read of {id}"),
        ApiOp::List { after, limit } => format!("a list after {after:?} of at most {limit}"),
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

/// What one client was told of one of its resources and when (in the
/// order received), and when it first sent a delete of it: one lookup
/// answers both, for each id a page covers.
#[derive(Default)]
struct Told {
    acks: Vec<(u64, Acked)>,
    delete_sent_ns: Option<u64>,
}

impl Told {
    /// What the client had been told by `sent_ns`.
    fn known(&self, sent_ns: u64) -> Known {
        let mut known = Known::default();
        for &(at_ns, acked) in &self.acks {
            if at_ns > sent_ns {
                continue;
            }
            match acked {
                Acked::Exists { generation } => {
                    known.newest_generation = known.newest_generation.max(Some(generation));
                }
                Acked::Deleted => known.was_deleted = true,
            }
        }
        known
    }

    /// Whether the client had sent a delete by `at_ns`.
    fn deleting(&self, at_ns: u64) -> bool {
        self.delete_sent_ns.is_some_and(|sent_ns| sent_ns <= at_ns)
    }
}

/// One client's resources, by id.
type ClientAcks<'h> = BTreeMap<&'h str, Told>;

/// What each client was told of its own resources, and when it asked to
/// delete them, as the history goes.
#[derive(Default)]
struct Acks<'h> {
    /// Per client, per resource (by client first, so a list's id range is
    /// one range of one map).
    acks: BTreeMap<NodeId, ClientAcks<'h>>,
    /// Per client, the resources it was told exist and has not sent a
    /// delete of: the only ones a page may owe it. (The history goes
    /// forward in time, so a delete sent is sent before every answer read
    /// after it.) A long run's clients delete most of what they made, and
    /// a page's range covers all of it.
    undeleted: BTreeMap<NodeId, BTreeSet<&'h str>>,
}

/// What a client knew of one resource when it sent a read.
#[derive(Default)]
struct Known {
    /// The newest generation acknowledged.
    newest_generation: Option<u64>,
    /// A deletion was acknowledged.
    was_deleted: bool,
}

impl<'h> Acks<'h> {
    fn told(&self, client: NodeId, id: &str) -> Option<&Told> {
        self.acks.get(&client)?.get(id)
    }

    /// What `client` had been told of `id` by `sent_ns`.
    fn known(&self, client: NodeId, id: &str, sent_ns: u64) -> Known {
        self.told(client, id)
            .map_or_else(Known::default, |told| told.known(sent_ns))
    }

    /// Whether `client` had sent a delete of `id` by `at_ns`.
    fn deleting(&self, client: NodeId, id: &str, at_ns: u64) -> bool {
        self.told(client, id)
            .is_some_and(|told| told.deleting(at_ns))
    }

    /// The resources `client` was told exist and has not asked to
    /// delete, with ids in `(after, through]` (unbounded where `None`),
    /// and what it was told.
    fn undeleted_ids(
        &self,
        client: NodeId,
        after: Option<&str>,
        through: Option<&str>,
    ) -> Vec<(&'h str, &Told)> {
        let (Some(ids), Some(told)) = (self.undeleted.get(&client), self.acks.get(&client)) else {
            return Vec::new();
        };
        covered(ids, after, through)
            .map(|id| (id, &told[id]))
            .collect()
    }

    /// Records that `client` was told `acked` of `id` at `at_ns`.
    fn ack(&mut self, client: NodeId, id: &'h str, at_ns: u64, acked: Acked) {
        let ids = self.acks.entry(client).or_default();
        let told = ids.entry(id).or_default();
        told.acks.push((at_ns, acked));
        if let (Acked::Exists { .. }, None) = (acked, told.delete_sent_ns) {
            self.undeleted.entry(client).or_default().insert(id);
        }
    }

    /// Records that `client` sent a delete of `id` at `at_ns` (the first
    /// one counts).
    fn delete_sent(&mut self, client: NodeId, id: &'h str, at_ns: u64) {
        let ids = self.acks.entry(client).or_default();
        ids.entry(id)
            .or_default()
            .delete_sent_ns
            .get_or_insert(at_ns);
        if let Some(undeleted) = self.undeleted.get_mut(&client) {
            undeleted.remove(id);
        }
    }
}

/// The ids a page lists, to look each id of its range up in once: a
/// page's range can hold many more ids than its items (every resource
/// deleted there since), and a scan of the items per id multiplied them.
fn listed_ids(items: &[ResourceView]) -> BTreeSet<&str> {
    items.iter().map(|view| view.resource.id.as_str()).collect()
}

/// How `r`, found by a read (`subject`), is older than what its client
/// knew when it sent the read.
fn older_than_known(subject: &str, r: &Resource, known: &Known) -> Option<String> {
    if known.was_deleted {
        return Some(format!(
            "{subject} sent after its deletion was acknowledged found generation {}",
            r.generation
        ));
    }
    let newest = known.newest_generation?;
    (r.generation < newest).then(|| {
        format!(
            "{subject} found generation {}, after generation {newest} was acknowledged",
            r.generation
        )
    })
}

fn read_your_writes(input: &CheckInput, sends: &Sends) -> Verdict {
    let mut found = Violations::new(READ_YOUR_WRITES, PropertyKind::Always);
    let mut acks = Acks::default();
    for entry in input.history {
        match &entry.event {
            Event::RequestSent {
                op: ApiOp::Delete { id },
                ..
            } => {
                acks.delete_sent(entry.node, id, entry.time_ns);
            }
            Event::ResponseReceived {
                request_id,
                response,
                ..
            } => {
                let Some(send) = sends.of(entry, *request_id) else {
                    continue;
                };
                if send.op.is_read() {
                    for message in unread_writes(&acks, entry, send, response) {
                        found.at_entry(entry, &[], message);
                    }
                    continue;
                }
                if send.key.is_none() || !response.is_final() {
                    continue;
                }
                let (id, acked) = match (&response.body, response.status) {
                    (ResponseBody::Resource(r), status::OK | status::CREATED) => {
                        let generation = r.generation;
                        (r.id.as_str(), Acked::Exists { generation })
                    }
                    (ResponseBody::Deleted { id }, status::OK) => (id.as_str(), Acked::Deleted),
                    _ => continue,
                };
                acks.ack(entry.node, id, entry.time_ns, acked);
            }
            _ => {}
        }
    }
    found.into_verdict()
}

/// How a read's answer (`entry`) misses a write its client had been
/// acknowledged before sending it.
fn unread_writes(
    acks: &Acks,
    entry: &HistoryEntry<Event>,
    send: &Send,
    response: &ApiResponse,
) -> Vec<String> {
    let (client, sent_ns) = (entry.node, send.entry.time_ns);
    match (send.op, response.status, &response.body) {
        (ApiOp::Get { id }, status::OK, body) => read_resource(body)
            .and_then(|r| {
                older_than_known(
                    &format!("a read of {id}"),
                    r,
                    &acks.known(client, id, sent_ns),
                )
            })
            .into_iter()
            .collect(),
        (ApiOp::Get { id }, status::NOT_FOUND, _) => {
            let known = acks.known(client, id, sent_ns);
            match known.newest_generation {
                Some(newest) if !acks.deleting(client, id, entry.time_ns) => vec![format!(
                    "a read of {id} found nothing, after generation {newest} was acknowledged and no delete was sent"
                )],
                _ => Vec::new(),
            }
        }
        (ApiOp::List { after, .. }, status::OK, ResponseBody::Page { items, next }) => {
            let mut problems: Vec<String> = items
                .iter()
                .filter_map(|view| {
                    let r = &view.resource;
                    let subject = format!("a list after {after:?} showing {}", r.id);
                    older_than_known(&subject, r, &acks.known(client, &r.id, sent_ns))
                })
                .collect();
            let listed = listed_ids(items);
            for (id, told) in acks.undeleted_ids(client, after.as_deref(), next.as_deref()) {
                let Some(newest) = told.known(sent_ns).newest_generation else {
                    continue;
                };
                if !listed.contains(id) && !told.deleting(entry.time_ns) {
                    problems.push(format!(
                        "a list after {after:?} up to {next:?} left out {id}, after generation {newest} was acknowledged and no delete was sent"
                    ));
                }
            }
            problems
        }
        _ => Vec::new(),
    }
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
        let about = sent.event.subjects();
        found.about(until_ns, sent.trace_index, &[node], about, message);
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
        history.at(80, CLIENT_A, read_received(900, read_ok(&v1, None)));
        // Another client never wrote: it may see anything committed.
        history.at(70, CLIENT_B, read_sent("r1", 901));
        history.at(80, CLIENT_B, read_received(901, read_ok(&v1, None)));
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
        early.at(40, CLIENT_A, read_received(900, read_ok(&v1, None)));
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

    /// r1 created at generation 1 (revision 10), its status written
    /// (revision 11), then updated to generation 2 (revision 12): each
    /// acknowledged to client A.
    fn r1_life(history: &mut History) -> (Resource, Resource) {
        let v1 = resource("r1", 1, 1);
        let v2 = resource("r1", 2, 2);
        history.at(10, CLIENT_A, sent("k1", 5, 0));
        history.at(20, API_A, commit("r1", "k1", 5, true, Some(&v1), 10));
        history.at(30, CLIENT_A, received("k1", 5, created(&v1)));
        history.at(40, STORE, status_stored("r1", Some(observed(1, 1)), 11));
        history.at(
            50,
            CLIENT_A,
            sent_op("k2", 6, 0, Intent::Fresh, update("r1", 2)),
        );
        history.at(60, API_A, commit("r1", "k2", 6, false, Some(&v2), 12));
        history.at(70, CLIENT_A, received("k2", 6, ok(&v2)));
        (v1, v2)
    }

    #[test]
    fn a_read_s_status_must_be_one_the_store_held_with_its_resource_while_it_was_in_flight() {
        let mut history = History::new();
        let (v1, v2) = r1_life(&mut history);
        // As the store held them: generation 2 beside the older status.
        history.at(80, CLIENT_B, read_sent("r1", 900));
        history.at(
            90,
            CLIENT_B,
            read_received(900, read_ok(&v2, Some(observed(1, 1)))),
        );
        for property in [ANSWERS_MATCH_STORE, ANSWERS_MATCH_REQUEST, READ_YOUR_WRITES] {
            assert_eq!(history.violations(property), 0, "{property}");
        }
        // A status the store never wrote, and generation 2 without the
        // status that was there all along.
        history.at(100, CLIENT_B, read_sent("r1", 901));
        history.at(
            110,
            CLIENT_B,
            read_received(901, read_ok(&v2, Some(observed(2, 1)))),
        );
        history.at(120, CLIENT_B, read_sent("r1", 902));
        history.at(130, CLIENT_B, read_received(902, read_ok(&v2, None)));
        // Generation 1 read long after generation 2 was committed: a
        // stale read, though no write of this client is missed.
        history.at(140, CLIENT_B, read_sent("r1", 903));
        history.at(
            150,
            CLIENT_B,
            read_received(903, read_ok(&v1, Some(observed(1, 1)))),
        );
        let verdict = history.verdict(ANSWERS_MATCH_STORE);
        assert_eq!(verdict.violation_count, 3, "{verdict:?}");
        assert!(
            verdict.violations[0]
                .message
                .contains("did not hold together")
        );
        assert_eq!(history.violations(READ_YOUR_WRITES), 0);
        // A read in flight across the update may see either side of it.
        let mut racing = History::new();
        let v1 = resource("r1", 1, 1);
        racing.at(10, API_A, desired_written("r1", Some(&v1), 10));
        racing.at(20, CLIENT_B, read_sent("r1", 900));
        racing.at(30, API_A, desired_written("r1", Some(&v2), 11));
        racing.at(40, CLIENT_B, read_received(900, read_ok(&v1, None)));
        assert_eq!(racing.violations(ANSWERS_MATCH_STORE), 0);
    }

    #[test]
    fn a_page_showing_what_the_store_did_not_hold_or_leaving_out_what_stood_violates_answers_match_store()
     {
        let mut history = History::new();
        let (r1, r2, r3) = (
            resource("r1", 1, 1),
            resource("r2", 1, 1),
            resource("r3", 1, 1),
        );
        history.at(10, API_A, desired_written("r1", Some(&r1), 10));
        history.at(10, API_A, desired_written("r2", Some(&r2), 11));
        history.at(10, API_A, desired_written("r3", Some(&r3), 12));
        history.at(20, CLIENT_B, list_sent(None, 2, 900));
        history.at(
            30,
            CLIENT_B,
            read_received(900, page(&[(&r1, None), (&r2, None)], Some("r2"))),
        );
        history.at(40, CLIENT_B, list_sent(Some("r2"), 2, 901));
        history.at(50, CLIENT_B, read_received(901, page(&[(&r3, None)], None)));
        for property in [ANSWERS_MATCH_STORE, ANSWERS_MATCH_REQUEST, READ_YOUR_WRITES] {
            assert_eq!(history.violations(property), 0, "{property}");
        }
        // r2 left out of a page that covers it; r3 listed with a status it
        // never had; and, once r1 is deleted, r1 listed again.
        history.at(60, CLIENT_B, list_sent(None, 5, 902));
        history.at(
            70,
            CLIENT_B,
            read_received(902, page(&[(&r1, None), (&r3, Some(observed(1, 1)))], None)),
        );
        history.at(80, API_A, desired_written("r1", None, 13));
        history.at(90, CLIENT_B, list_sent(None, 1, 903));
        history.at(
            100,
            CLIENT_B,
            read_received(903, page(&[(&r1, None)], Some("r1"))),
        );
        let verdict = history.verdict(ANSWERS_MATCH_STORE);
        assert_eq!(verdict.violation_count, 3, "{verdict:?}");
        let says = |text: &str| verdict.violations.iter().any(|v| v.message.contains(text));
        assert!(says("left out r2"), "{verdict:?}");
        assert!(says("a list answered r3"), "{verdict:?}");
        assert!(says("a list answered r1"), "{verdict:?}");
    }

    #[test]
    fn a_read_answered_in_another_shape_or_a_misshapen_page_violates_answers_match_request() {
        let mut history = History::new();
        let (r1, r2) = (resource("r1", 1, 1), resource("r2", 1, 1));
        history.at(10, API_A, desired_written("r1", Some(&r1), 10));
        history.at(10, API_A, desired_written("r2", Some(&r2), 11));
        history.at(20, CLIENT_B, read_sent("r1", 900));
        history.at(30, CLIENT_B, read_received(900, read_ok(&r1, None)));
        history.at(40, CLIENT_B, list_sent(Some("r1"), 1, 901));
        history.at(50, CLIENT_B, read_received(901, page(&[(&r2, None)], None)));
        assert_eq!(history.violations(ANSWERS_MATCH_REQUEST), 0);
        let answers = [
            ok(&r1),                                 // a get without its status
            read_ok(&r2, None),                      // another resource
            page(&[(&r1, None)], None),              // a page to a get
            page(&[(&r1, None), (&r2, None)], None), // over the limit of 1
            page(&[(&r1, None)], None),              // not after the cursor
            page(&[], Some("r0")),                   // a cursor going back
            read_ok(&r2, None),                      // a get's answer to a list
        ];
        for (index, response) in answers.into_iter().enumerate() {
            let request_id = 910 + index as u64;
            let time_ms = 60 + 10 * index as u64;
            let sent = if index < 3 {
                read_sent("r1", request_id)
            } else {
                list_sent(Some("r1"), 1, request_id)
            };
            history.at(time_ms, CLIENT_B, sent);
            history.at(time_ms + 5, CLIENT_B, read_received(request_id, response));
        }
        let verdict = history.verdict(ANSWERS_MATCH_REQUEST);
        assert_eq!(verdict.violation_count, 7, "{verdict:?}");
        assert!(
            verdict.violations[0]
                .message
                .contains("a read of r1 was answered 200")
        );
        assert!(
            verdict.violations[3]
                .message
                .contains("2 items for a limit of 1")
        );
    }

    #[test]
    fn a_list_covering_a_resource_its_client_wrote_must_show_it_as_acknowledged() {
        let mut history = History::new();
        let (v1, v2) = r1_life(&mut history);
        let status = Some(observed(1, 1));
        // Covering r1 and showing generation 2: fine. A page that ends
        // before r1 does not cover it.
        history.at(80, CLIENT_A, list_sent(None, 3, 900));
        history.at(
            90,
            CLIENT_A,
            read_received(900, page(&[(&v2, status)], None)),
        );
        history.at(100, CLIENT_A, list_sent(None, 1, 901));
        let r0 = resource("r0", 1, 1);
        history.at(95, API_A, desired_written("r0", Some(&r0), 13));
        history.at(
            110,
            CLIENT_A,
            read_received(901, page(&[(&r0, None)], Some("r0"))),
        );
        assert_eq!(history.violations(READ_YOUR_WRITES), 0);
        // A page covering r1 without it, and one showing generation 1.
        history.at(120, CLIENT_A, list_sent(None, 3, 902));
        history.at(
            130,
            CLIENT_A,
            read_received(902, page(&[(&r0, None)], None)),
        );
        history.at(140, CLIENT_A, list_sent(Some("r0"), 3, 903));
        history.at(
            150,
            CLIENT_A,
            read_received(903, page(&[(&v1, status)], None)),
        );
        // Another client was told nothing of r1: not its writes to read.
        history.at(120, CLIENT_B, list_sent(None, 3, 904));
        history.at(
            130,
            CLIENT_B,
            read_received(904, page(&[(&r0, None)], None)),
        );
        let verdict = history.verdict(READ_YOUR_WRITES);
        assert_eq!(verdict.violation_count, 2, "{verdict:?}");
        assert!(verdict.violations[0].message.contains("left out r1"));
        assert!(
            verdict.violations[1]
                .message
                .contains("found generation 1, after generation 2")
        );
        assert!(verdict.violations.iter().all(|v| v.nodes == [CLIENT_A]));
        // Once the client sent a delete of r1, a page may leave it out.
        history.at(
            160,
            CLIENT_A,
            sent_op("k3", 7, 0, Intent::Fresh, ApiOp::Delete { id: "r1".into() }),
        );
        history.at(170, CLIENT_A, list_sent(None, 3, 905));
        history.at(
            180,
            CLIENT_A,
            read_received(905, page(&[(&r0, None)], None)),
        );
        assert_eq!(history.violations(READ_YOUR_WRITES), 2);
    }

    #[test]
    fn the_ids_a_page_covers_are_the_clients_own_undeleted_in_after_through() {
        let mut acks = Acks::default();
        let told = Acked::Exists { generation: 1 };
        for id in ["a", "b", "c", "d", "e"] {
            acks.ack(CLIENT_A, id, 1, told);
        }
        acks.ack(CLIENT_B, "b2", 1, told);
        // A delete sent leaves the id out, even if an answer telling it
        // exists comes after (an update that was in flight).
        acks.delete_sent(CLIENT_A, "e", 2);
        acks.ack(CLIENT_A, "e", 3, told);
        // Told only of a deletion: nothing owed either.
        acks.ack(CLIENT_A, "f", 3, Acked::Deleted);
        let ids_of = |client, after, through| -> Vec<&str> {
            let told = acks.undeleted_ids(client, after, through);
            told.into_iter().map(|(id, _)| id).collect()
        };
        let ids = |after, through| ids_of(CLIENT_A, after, through);
        assert_eq!(ids(None, None), ["a", "b", "c", "d"]);
        assert_eq!(ids(Some("a"), Some("c")), ["b", "c"]);
        assert_eq!(ids(Some("b"), None), ["c", "d"]);
        assert_eq!(ids(None, Some("b")), ["a", "b"]);
        assert!(ids(Some("c"), Some("c")).is_empty());
        assert!(
            ids(Some("d"), Some("a")).is_empty(),
            "a backwards page covers nothing"
        );
        assert_eq!(ids_of(CLIENT_B, Some("b"), None), ["b2"]);
        assert!(ids_of(API_A, None, None).is_empty());
    }

    #[test]
    fn the_undeleted_ids_are_those_of_the_definition_in_random_histories() {
        use node::{Random, SplitMix64};
        let ids = ["a", "b", "c", "d", "e"];
        let clients = [CLIENT_A, CLIENT_B];
        let ranges = [
            (None, None),
            (Some("a"), None),
            (None, Some("c")),
            (Some("b"), Some("e")),
            (Some("c"), Some("a")),
        ];
        let mut rng = SplitMix64::new(5);
        let mut judged = 0;
        for _ in 0..1_000 {
            let mut acks = Acks::default();
            let mut now = 0;
            for _ in 0..40 {
                now += rng.below(3); // The history goes forward in time.
                let (client, id) = (clients[rng.index(2)], ids[rng.index(ids.len())]);
                match rng.below(4) {
                    0 => acks.delete_sent(client, id, now),
                    1 => acks.ack(client, id, now, Acked::Deleted),
                    _ => {
                        let generation = 1 + rng.below(3);
                        acks.ack(client, id, now, Acked::Exists { generation });
                    }
                }
                // By the definition: every id the client was told of in
                // the range that it was told exists and has not deleted.
                for (after, through) in ranges {
                    let in_range =
                        |id: &str| after.is_none_or(|a| id > a) && through.is_none_or(|t| id <= t);
                    let mut expected: Vec<&str> = ids
                        .iter()
                        .copied()
                        .filter(|&id| in_range(id))
                        .filter(|&id| {
                            acks.told(client, id).is_some_and(|told| {
                                !told.deleting(now)
                                    && told
                                        .acks
                                        .iter()
                                        .any(|(_, acked)| matches!(acked, Acked::Exists { .. }))
                            })
                        })
                        .collect();
                    if matches!((after, through), (Some(a), Some(t)) if a >= t) {
                        expected.clear();
                    }
                    let undeleted: Vec<&str> = acks
                        .undeleted_ids(client, after, through)
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect();
                    assert_eq!(
                        undeleted, expected,
                        "{client} {after:?} {through:?} at {now}"
                    );
                    judged += 1;
                }
            }
        }
        assert!(judged > 10_000, "{judged}");
    }

    #[test]
    fn a_list_answered_200_is_a_read_that_succeeded() {
        let mut history = History::new();
        history.at(3_000, CLIENT_A, list_sent(None, 5, 900));
        assert_eq!(history.violations(QUIET_FIRST_TRY), 1);
        assert_eq!(history.violations(AVAILABLE), 1);
        history.at(3_100, CLIENT_A, read_received(900, page(&[], None)));
        assert_eq!(history.violations(QUIET_FIRST_TRY), 0);
        assert_eq!(history.violations(AVAILABLE), 0);
        assert_eq!(history.report().measurements.fresh_succeeded, 1);
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
