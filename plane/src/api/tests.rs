//! The API node's tests: two API nodes, a real billing node and a real
//! store state machine, wired by a FIFO queue the tests hold and release.

use std::collections::VecDeque;

use node::testing::{Harness, Output};
use node::{Digested, MILLISECOND_NS};

use super::*;
use crate::billing::BillingNode;
use crate::config::Bug;
use crate::protocol::Recovery;
use crate::protocol::{Resource, ResourceView, Spec, Status};
use crate::reply::Kv;
use crate::store::KvStore;
use crate::store::{OpResult, StoreResponse};

const STORE: NodeId = NodeId(0);
const BILLING: NodeId = NodeId(1);
const API_A: NodeId = NodeId(2);
const API_B: NodeId = NodeId(3);
const CLIENT: NodeId = NodeId(4);

fn topology() -> Topology {
    Topology {
        store: STORE,
        billing: BILLING,
        apis: vec![API_A, API_B],
        clients: vec![CLIENT],
        ..Topology::default()
    }
}

/// Short session and timers, so tests expire sessions in a few ticks.
fn settings() -> ApiSettings {
    ApiSettings {
        request_timeout_ms: 100,
        session_ttl_ms: 1_000,
        keepalive_interval_ms: 200,
        completer_interval_ms: 500,
        ..ApiSettings::default()
    }
}

fn node() -> Box<ApiNode> {
    Box::new(ApiNode::new(topology(), settings()))
}

type Hold = Box<dyn Fn(NodeId, NodeId, &Msg) -> bool>;

/// Two API nodes, a real billing node and a real store state machine,
/// wired by a FIFO queue. Messages matching `hold` wait in `held` until
/// the test releases (or drops) them.
struct Cluster {
    store: KvStore<Value>,
    store_now_ms: u64,
    billing: Harness<ControlPlane>,
    apis: Vec<Harness<ControlPlane>>,
    queue: VecDeque<(NodeId, NodeId, Msg)>,
    held: Vec<(NodeId, NodeId, Msg)>,
    hold: Hold,
    records: Vec<(NodeId, Event)>,
    replies: Vec<ApiReply>,
    next_client_request: RequestId,
}

impl Cluster {
    fn unstarted() -> Self {
        let mut billing = Harness::new(1, BILLING, Box::new(BillingNode::new()));
        billing.start();
        Self {
            store: KvStore::default(),
            store_now_ms: 0,
            billing,
            apis: vec![
                Harness::new(2, API_A, node()),
                Harness::new(3, API_B, node()),
            ],
            queue: VecDeque::new(),
            held: Vec::new(),
            hold: no_hold(),
            records: Vec::new(),
            replies: Vec::new(),
            next_client_request: 0,
        }
    }

    /// Both API nodes with `bugs` planted, started.
    fn planted(bugs: &[Bug]) -> Self {
        Self::with(ApiSettings {
            bugs: bugs.iter().copied().collect(),
            ..settings()
        })
    }

    /// Both API nodes with `settings`, started.
    fn with(settings: ApiSettings) -> Self {
        let mut cluster = Self::unstarted();
        let node = |settings: &ApiSettings| Box::new(ApiNode::new(topology(), settings.clone()));
        cluster.apis = vec![
            Harness::new(2, API_A, node(&settings)),
            Harness::new(3, API_B, node(&settings)),
        ];
        cluster.start(API_A);
        cluster.start(API_B);
        cluster
    }

    /// Both API nodes started, with their sessions granted.
    fn new() -> Self {
        let mut cluster = Self::unstarted();
        cluster.start(API_A);
        cluster.start(API_B);
        cluster
    }

    fn api(&mut self, node: NodeId) -> &mut Harness<ControlPlane> {
        &mut self.apis[node.index() - API_A.index()]
    }

    fn start(&mut self, node: NodeId) {
        let output = self.api(node).start();
        self.absorb(node, output);
    }

    fn restart(&mut self, node: NodeId) {
        let output = self.api(node).restart(self::node());
        self.absorb(node, output);
    }

    fn absorb(&mut self, from: NodeId, output: Output<ControlPlane>) {
        self.records
            .extend(output.records.into_iter().map(|event| (from, event)));
        for (to, message) in output.sent {
            self.queue.push_back((from, to, message));
        }
        self.pump();
    }

    fn pump(&mut self) {
        for _ in 0..100_000 {
            let Some((from, to, message)) = self.queue.pop_front() else {
                return;
            };
            if (self.hold)(from, to, &message) {
                self.held.push((from, to, message));
            } else {
                self.deliver(from, to, message);
            }
        }
        panic!("the cluster did not settle");
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, message: Msg) {
        match to {
            STORE => {
                let Msg::StoreRequest {
                    request_id,
                    request,
                } = message
                else {
                    panic!("the store gets store requests: {message:?}");
                };
                let sender_ms = self.api(from).now_ns() / MILLISECOND_NS;
                self.store_now_ms = self.store_now_ms.max(sender_ms);
                let response = self.store.apply(self.store_now_ms, request);
                let reply = Msg::StoreReply {
                    request_id,
                    response,
                };
                self.queue.push_back((STORE, from, reply));
            }
            BILLING => {
                let output = self.billing.deliver(from, message);
                self.records
                    .extend(output.records.into_iter().map(|event| (BILLING, event)));
                for (to, message) in output.sent {
                    self.queue.push_back((BILLING, to, message));
                }
            }
            CLIENT => {
                let Msg::ApiReply(reply) = message else {
                    panic!("clients get API replies: {message:?}");
                };
                self.replies.push(*reply);
            }
            api => {
                let output = self.api(api).deliver(from, message);
                self.records
                    .extend(output.records.into_iter().map(|event| (api, event)));
                for (to, message) in output.sent {
                    self.queue.push_back((api, to, message));
                }
            }
        }
    }

    /// Sends a client request and runs everything that follows.
    fn send(&mut self, api: NodeId, key: Option<&str>, op: ApiOp) -> RequestId {
        self.next_client_request += 1;
        let request = ApiRequest {
            request_id: self.next_client_request,
            idempotency_key: key.map(String::from),
            op,
        };
        let output = self.api(api).deliver(CLIENT, Msg::Api(request));
        self.absorb(api, output);
        self.next_client_request
    }

    /// Sends a request and returns its one answer.
    fn call(&mut self, api: NodeId, key: &str, op: ApiOp) -> ApiReply {
        let request_id = self.send(api, Some(key), op);
        self.only_reply(request_id)
    }

    fn replies_to(&self, request_id: RequestId) -> Vec<&ApiReply> {
        self.replies
            .iter()
            .filter(|reply| reply.request_id == request_id)
            .collect()
    }

    fn only_reply(&self, request_id: RequestId) -> ApiReply {
        let replies = self.replies_to(request_id);
        assert_eq!(replies.len(), 1, "one reply to {request_id}: {replies:?}");
        replies[0].clone()
    }

    fn fire(&mut self, api: NodeId, wanted: impl Fn(&Timer) -> bool) {
        let output = self.api(api).fire_timer(wanted).expect("a pending timer");
        self.absorb(api, output);
    }

    /// Fires `api`'s next keep-alive tick `rounds` times (each moves its
    /// clock, and so the store's, by the keep-alive interval).
    fn tick(&mut self, api: NodeId, rounds: u32) {
        for _ in 0..rounds {
            self.fire(api, |timer| matches!(timer, Timer::Tick));
        }
    }

    fn fire_completer(&mut self, api: NodeId) {
        self.fire(api, |timer| matches!(timer, Timer::Completer));
    }

    fn fire_request_timeout(&mut self, api: NodeId) {
        self.fire(api, |timer| matches!(timer, Timer::RequestTimeout(_)));
    }

    /// Stops holding, and delivers everything held so far.
    fn release_all(&mut self) {
        self.hold = no_hold();
        self.queue.extend(self.held.drain(..));
        self.pump();
    }

    fn count(&self, wanted: impl Fn(&Event) -> bool) -> usize {
        self.records
            .iter()
            .filter(|(_, event)| wanted(event))
            .count()
    }

    fn read(&mut self, prefix: &str) -> Vec<Kv> {
        let scan = Txn::unconditional(vec![Op::GetPrefix {
            prefix: prefix.into(),
        }]);
        let StoreResponse::Txn { mut results, .. } =
            self.store.apply(self.store_now_ms, StoreRequest::Txn(scan))
        else {
            panic!("a read succeeds");
        };
        let Some(OpResult::GotPrefix(found)) = results.pop() else {
            panic!("a prefix read");
        };
        found
    }

    fn resources(&mut self) -> Vec<Resource> {
        self.read(keys::RESOURCES)
            .into_iter()
            .map(|kv| match &kv.value {
                Value::Resource(resource) => Resource::clone(resource),
                other => panic!("not a resource: {other:?}"),
            })
            .collect()
    }

    fn ledger(&mut self, key: &str) -> Option<LedgerEntry> {
        match self.store.get(&keys::ledger(key)).map(|kv| &kv.value) {
            Some(Value::Ledger(entry)) => Some(LedgerEntry::clone(entry)),
            None => None,
            other => panic!("not a ledger entry: {other:?}"),
        }
    }

    /// Gets `id` through `api`: the resource and its status, or `None`
    /// for a 404.
    fn get(&mut self, api: NodeId, id: &str) -> Option<ResourceView> {
        let request_id = self.send(api, None, ApiOp::Get { id: id.into() });
        let reply = self.only_reply(request_id);
        assert_eq!((reply.replayed, reply.key_ttl_ms), (false, None));
        match (reply.response.status, reply.response.body) {
            (status::OK, ResponseBody::Read(view)) => Some(view),
            (status::NOT_FOUND, _) => None,
            (status, body) => panic!("a get answered {status} {body:?}"),
        }
    }

    /// Lists a page through `api`: its items and its next cursor.
    fn page(
        &mut self,
        api: NodeId,
        after: Option<&str>,
        limit: u32,
    ) -> (Vec<ResourceView>, Option<String>) {
        let request_id = self.send(api, None, list(after, limit));
        let reply = self.only_reply(request_id);
        match (reply.response.status, reply.response.body) {
            (status::OK, ResponseBody::Page { items, next }) => (items, next),
            (status, body) => panic!("a list answered {status} {body:?}"),
        }
    }

    fn write(&mut self, key: String, value: Value) {
        let txn = Txn::unconditional(vec![put(&key, value, None)]);
        self.store.apply(self.store_now_ms, StoreRequest::Txn(txn));
    }
}

fn no_hold() -> Hold {
    Box::new(|_, _, _| false)
}

fn spec(replicas: u32) -> Spec {
    Spec { replicas, image: 1 }
}

fn create(name: &str) -> ApiOp {
    ApiOp::Create {
        name: name.into(),
        spec: spec(1),
    }
}

fn created_resource(reply: &ApiReply) -> Resource {
    assert_eq!(reply.response.status, status::CREATED, "{reply:?}");
    let ResponseBody::Resource(resource) = &reply.response.body else {
        panic!("a created resource: {reply:?}");
    };
    resource.clone()
}

fn is_charge_executed(event: &Event) -> bool {
    matches!(event, Event::ChargeExecuted { .. })
}

fn is_committed(event: &Event) -> bool {
    matches!(event, Event::ResourceCommitted { .. })
}

/// A commit transaction: one that writes a resource.
fn is_commit(message: &Msg) -> bool {
    let Msg::StoreRequest {
        request: StoreRequest::Txn(txn),
        ..
    } = message
    else {
        return false;
    };
    txn.success
        .iter()
        .any(|op| matches!(op, Op::Put { key, .. } if key.starts_with(keys::RESOURCES)))
}

/// A takeover: a transaction that writes only a lock.
fn is_claim(message: &Msg) -> bool {
    let Msg::StoreRequest {
        request: StoreRequest::Txn(txn),
        ..
    } = message
    else {
        return false;
    };
    matches!(&txn.success[..], [Op::Put { key, .. }] if key.starts_with(keys::LOCKS))
}

/// A record transaction: one that creates a ledger entry.
fn is_record(message: &Msg) -> bool {
    let Msg::StoreRequest {
        request: StoreRequest::Txn(txn),
        ..
    } = message
    else {
        return false;
    };
    txn.compares
        .iter()
        .any(|c| matches!(c, Compare::Absent { key } if key.starts_with(keys::LEDGER)))
}

#[test]
fn a_duplicated_record_whose_first_reply_is_lost_resumes_without_a_takeover() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|from, to, message| from == API_A && to == STORE && is_record(message));
    let request_id = cluster.send(API_A, Some("k"), create("a"));
    let (from, to, record) = cluster.held.pop().expect("the record was held");
    // The network delivers the record twice; both replies are held.
    cluster.hold = Box::new(|from, to, _| from == STORE && to == API_A);
    cluster.queue.push_back((from, to, record.clone()));
    cluster.queue.push_back((from, to, record));
    cluster.pump();
    assert_eq!(cluster.held.len(), 2, "success, then failure");
    // The success reply is lost; the failure reply arrives.
    let failure = cluster.held.remove(1);
    cluster.held.clear();
    cluster.hold = no_hold();
    cluster.queue.push_back(failure);
    cluster.pump();
    let reply = cluster.only_reply(request_id);
    assert_eq!(reply.response.status, status::CREATED);
    let taken_over = |e: &Event| matches!(e, Event::KeyTakenOver { .. });
    assert_eq!(cluster.count(taken_over), 0, "my own key is not taken over");
    assert_eq!(cluster.count(is_charge_executed), 1);
}

#[test]
fn missing_key_is_rejected_with_400_and_records_nothing() {
    let mut cluster = Cluster::new();
    let revision = cluster.store.revision();
    let request_id = cluster.send(API_A, None, create("a"));
    let reply = cluster.only_reply(request_id);
    assert_eq!(reply.response.status, status::BAD_REQUEST);
    assert_eq!((reply.replayed, reply.key_ttl_ms), (false, None));
    assert!(cluster.records.is_empty(), "{:?}", cluster.records);
    assert_eq!(cluster.store.revision(), revision, "nothing was written");
}

#[test]
fn request_before_the_session_is_granted_gets_503() {
    let mut cluster = Cluster::unstarted();
    cluster.hold = Box::new(|_, to, _| to == STORE);
    cluster.start(API_A);
    let reply = cluster.call(API_A, "k", create("a"));
    assert_eq!(reply.response.status, status::UNAVAILABLE);
    assert_eq!(reply.key_ttl_ms, None);
    assert!(cluster.records.is_empty());
    assert_eq!(cluster.held.len(), 1, "only the session grant was sent");
}

#[test]
fn create_records_charges_commits_and_answers_201() {
    let mut cluster = Cluster::new();
    let reply = cluster.call(API_A, "k", create("a"));
    let resource = created_resource(&reply);
    assert_eq!((resource.name.as_str(), resource.generation), ("a", 1));
    assert!(!reply.replayed);
    assert_eq!(reply.key_ttl_ms, Some(settings().idempotency_ttl_ms));
    let kinds: Vec<&str> = cluster.records.iter().map(|(_, e)| e.kind_name()).collect();
    assert_eq!(
        kinds,
        [
            "KeyStarted",
            "ChargeExecuted",
            "ResourceCommitted",
            "KeyFinished"
        ]
    );
    let fingerprint = create("a").fingerprint();
    let Event::ResourceCommitted {
        id,
        key,
        fingerprint: committed_fingerprint,
        created,
        resource: committed,
        revision,
    } = &cluster.records[2].1
    else {
        panic!()
    };
    assert_eq!((id, key.as_str()), (&resource.id, "k"));
    assert_eq!((*committed_fingerprint, *created), (fingerprint, true));
    assert_eq!(committed.as_ref(), Some(&resource));
    assert_eq!(
        *revision,
        cluster.store.get(&keys::resource(id)).unwrap().mod_revision
    );
    assert_eq!(cluster.resources(), vec![resource]);
    let entry = cluster.ledger("k").unwrap();
    assert_eq!(
        entry.recovery,
        Recovery::Finished {
            response: reply.response
        }
    );
    assert!(cluster.store.get(&keys::lock("k")).is_none(), "unlocked");
}

#[test]
fn same_key_and_body_replays_the_identical_response() {
    let mut cluster = Cluster::new();
    let first = cluster.call(API_A, "k", create("a"));
    for api in [API_A, API_B] {
        let again = cluster.call(api, "k", create("a"));
        assert_eq!(again.response, first.response);
        assert_eq!((again.replayed, again.key_ttl_ms), (true, first.key_ttl_ms));
    }
    assert_eq!(cluster.count(|e| matches!(e, Event::Replayed { .. })), 2);
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.count(is_committed), 1);
    assert_eq!(cluster.resources().len(), 1);
}

#[test]
fn same_key_with_a_different_body_gets_422_and_creates_nothing() {
    let mut cluster = Cluster::new();
    cluster.call(API_A, "k", create("a"));
    let reply = cluster.call(API_B, "k", create("b"));
    assert_eq!(reply.response.status, status::UNPROCESSABLE);
    assert_eq!((reply.replayed, reply.key_ttl_ms), (false, None));
    let mismatch = Event::KeyMismatch {
        key: "k".into(),
        stored_fingerprint: create("a").fingerprint(),
        fingerprint: create("b").fingerprint(),
    };
    assert_eq!(cluster.count(|e| *e == mismatch), 1);
    assert_eq!(cluster.count(is_committed), 1);
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.resources().len(), 1);
}

#[test]
fn with_the_check_then_act_bug_a_late_record_restarts_a_finished_key() {
    let mut cluster = Cluster::planted(&[Bug::LedgerCheckThenAct]);
    // B has read "absent"; its record is slow to reach the store.
    cluster.hold = Box::new(|from, to, message| {
        from == API_B
            && to == STORE
            && matches!(message, Msg::StoreRequest { request: StoreRequest::Txn(txn), .. }
                if txn.compares.is_empty()
                    && txn.success.iter().any(|op| matches!(op, Op::Put { key, .. } if key.starts_with(keys::LEDGER))))
    });
    let late = cluster.send(API_B, Some("k"), create("a"));
    assert!(cluster.replies_to(late).is_empty());
    let first = cluster.call(API_A, "k", create("a"));
    assert_eq!(first.response.status, status::CREATED);
    cluster.release_all();
    let second = cluster.only_reply(late);
    assert_eq!(second.response.status, status::CREATED);
    assert_ne!(second.response, first.response, "two resources for one key");
    assert_eq!(cluster.count(is_committed), 2);
    assert_eq!(cluster.resources().len(), 2);
}

#[test]
fn with_the_side_effect_first_bug_a_create_refused_422_was_charged() {
    let mut cluster = Cluster::planted(&[Bug::SideEffectBeforeLedger]);
    let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
    let update = ApiOp::Update { id, spec: spec(2) };
    cluster.call(API_A, "u", update);
    let reused = cluster.call(API_B, "u", create("b"));
    assert_eq!(reused.response.status, status::UNPROCESSABLE);
    let charged_u = |e: &Event| matches!(e, Event::ChargeExecuted { key, .. } if key == "u");
    assert_eq!(cluster.count(charged_u), 1, "money taken for a 422");
    assert_eq!(cluster.resources().len(), 1);
}

#[test]
fn with_the_stale_replay_bug_a_replay_after_an_update_answers_the_new_resource() {
    let mut cluster = Cluster::planted(&[Bug::StaleReplayBody]);
    let first = cluster.call(API_A, "c", create("a"));
    let id = created_resource(&first).id;
    cluster.call(API_B, "u", ApiOp::Update { id, spec: spec(3) });
    let again = cluster.call(API_B, "c", create("a"));
    assert!(again.replayed);
    assert_eq!(again.response.status, first.response.status);
    assert_eq!(created_resource(&again).generation, 2);
    assert_ne!(again.response, first.response);
}

#[test]
fn same_key_while_in_flight_gets_409() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    let first = cluster.send(API_A, Some("k"), create("a"));
    for api in [API_B, API_A] {
        let reply = cluster.call(api, "k", create("a"));
        assert_eq!(reply.response.status, status::CONFLICT);
        assert_eq!(reply.key_ttl_ms, None);
    }
    assert_eq!(cluster.count(|e| matches!(e, Event::KeyInFlight { .. })), 2);
    cluster.release_all();
    created_resource(&cluster.only_reply(first));
}

#[test]
fn duplicate_delivery_of_a_request_in_progress_is_answered_once() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    let request = ApiRequest {
        request_id: 77,
        idempotency_key: Some("k".into()),
        op: create("a"),
    };
    for _ in 0..2 {
        let output = cluster
            .api(API_A)
            .deliver(CLIENT, Msg::Api(request.clone()));
        cluster.absorb(API_A, output);
    }
    cluster.release_all();
    created_resource(&cluster.only_reply(77));
    assert_eq!(cluster.count(|e| matches!(e, Event::KeyInFlight { .. })), 0);
}

#[test]
fn restarted_node_leaves_a_started_key_that_another_completer_finishes_with_one_charge() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    let first = cluster.send(API_A, Some("k"), create("a"));
    assert_eq!(cluster.count(|e| matches!(e, Event::KeyStarted { .. })), 1);
    cluster.restart(API_A);
    // The charge sent before the crash still reaches billing; its reply
    // goes to the new boot, which ignores it.
    cluster.release_all();
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert!(cluster.replies_to(first).is_empty());
    assert_eq!(cluster.ledger("k").unwrap().recovery, Recovery::Started);
    // B keeps its session alive past A's old session's TTL: the lock
    // hung on that session vanishes.
    cluster.tick(API_B, 6);
    assert!(cluster.store.get(&keys::lock("k")).is_none());
    cluster.fire_completer(API_B);
    let taken = Event::KeyTakenOver {
        key: "k".into(),
        by_completer: true,
    };
    assert_eq!(
        cluster
            .records
            .iter()
            .filter(|r| *r == &(API_B, taken.clone()))
            .count(),
        1
    );
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(
        cluster.count(|e| matches!(e, Event::ChargeDeduplicated { .. })),
        1
    );
    let finished = |e: &Event| {
        matches!(
            e,
            Event::KeyFinished {
                by_completer: true,
                ..
            }
        )
    };
    assert_eq!(cluster.count(finished), 1);
    assert_eq!(cluster.count(is_committed), 1);
    let resource = &cluster.resources()[0];
    let retry = cluster.call(API_A, "k", create("a"));
    assert_eq!(
        (created_resource(&retry), retry.replayed),
        (resource.clone(), true)
    );
}

#[test]
fn the_open_index_holds_the_unfinished_keys_and_is_all_the_completer_scans() {
    let mut cluster = Cluster::new();
    let open = |cluster: &mut Cluster| -> Vec<String> {
        let found = cluster.read(keys::OPEN);
        found.into_iter().map(|kv| kv.key.clone()).collect()
    };
    cluster.call(API_A, "done", create("a"));
    assert!(open(&mut cluster).is_empty(), "a finish deletes the copy");
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    cluster.send(API_A, Some("k"), create("b"));
    cluster.restart(API_A);
    cluster.release_all();
    assert_eq!(open(&mut cluster), [keys::open("k")]);
    assert_eq!(cluster.read(keys::LEDGER).len(), 2);
    let copy = cluster
        .store
        .get(&keys::open("k"))
        .expect("the copy")
        .clone();
    let entry = cluster
        .store
        .get(&keys::ledger("k"))
        .expect("the entry")
        .clone();
    assert_eq!((&copy.value, copy.lease), (&entry.value, entry.lease));
    // An unfinished entry without its copy (no node writes one) is not
    // found: the completer reads the index, not the ledger.
    let orphan = cluster.ledger("k").expect("recorded");
    cluster.write(keys::ledger("orphan"), Value::Ledger(Digested::new(orphan)));
    cluster.tick(API_B, 6);
    cluster.fire_completer(API_B);
    let taken = |key: &str| {
        let event = Event::KeyTakenOver {
            key: key.into(),
            by_completer: true,
        };
        move |e: &Event| *e == event
    };
    assert_eq!(cluster.count(taken("k")), 1);
    assert_eq!(cluster.count(taken("orphan")), 0);
    assert!(matches!(
        cluster.ledger("k").expect("kept").recovery,
        Recovery::Finished { .. }
    ));
    assert!(open(&mut cluster).is_empty());
}

#[test]
fn a_copy_left_beside_a_finished_entry_is_never_resumed() {
    // A node that predates the open index (a real host's older build)
    // finishes a key without deleting its copy: the claim compares the
    // entry itself, so the completer cannot run the finished key again.
    let mut cluster = Cluster::new();
    cluster.call(API_A, "done", create("a"));
    let finished = cluster.ledger("done").expect("finished");
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    cluster.send(API_A, Some("k"), create("b"));
    cluster.restart(API_A);
    cluster.release_all();
    let entry = Value::Ledger(Digested::new(finished.clone()));
    cluster.write(keys::ledger("k"), entry);
    assert!(
        cluster.store.get(&keys::open("k")).is_some(),
        "the copy stays"
    );
    cluster.tick(API_B, 6);
    assert!(cluster.store.get(&keys::lock("k")).is_none(), "abandoned");
    cluster.fire_completer(API_B);
    let taken = Event::KeyTakenOver {
        key: "k".into(),
        by_completer: true,
    };
    assert_eq!(cluster.count(|e| *e == taken), 0);
    assert_eq!(cluster.ledger("k"), Some(finished));
    assert_eq!(cluster.count(is_charge_executed), 2, "a and b, once each");
}

#[test]
fn commit_after_the_lock_was_taken_over_answers_503_and_does_not_commit() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, _, message| is_commit(message));
    let first = cluster.send(API_A, Some("k"), create("a"));
    assert_eq!(cluster.held.len(), 1, "A's commit is delayed");
    // A is paused past its session: B's completer takes the key over at
    // its recovery point (charged); B's commit is delayed too.
    cluster.tick(API_B, 6);
    cluster.fire_completer(API_B);
    assert_eq!(
        cluster.count(|e| matches!(e, Event::KeyTakenOver { .. })),
        1
    );
    assert_eq!(cluster.held.len(), 2);
    // A's commit arrives first, while the resource is still absent:
    // only the lock fence stops it.
    let revision = cluster.store.revision();
    cluster.hold = no_hold();
    let a_commit = cluster.held.remove(0);
    assert_eq!(a_commit.0, API_A);
    cluster.queue.push_back(a_commit);
    cluster.pump();
    let reply = cluster.only_reply(first);
    assert_eq!(reply.response.status, status::UNAVAILABLE);
    assert_eq!(cluster.store.revision(), revision, "A wrote nothing");
    assert_eq!(cluster.count(is_committed), 0);
    cluster.release_all();
    let committed: Vec<NodeId> = cluster
        .records
        .iter()
        .filter(|(_, e)| is_committed(e))
        .map(|(node, _)| *node)
        .collect();
    assert_eq!(committed, vec![API_B]);
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.resources().len(), 1);
}

#[test]
fn stale_holder_cannot_overwrite_a_key_finished_by_another_node() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|from, to, _| from == API_A && to == BILLING);
    let first = cluster.send(API_A, Some("k"), create("a"));
    // A is paused with its charge in flight; B's completer finishes the
    // key after A's session expired.
    cluster.tick(API_B, 6);
    cluster.fire_completer(API_B);
    let finished = cluster.ledger("k").unwrap();
    assert!(matches!(finished.recovery, Recovery::Finished { .. }));
    // A wakes up: billing answers its old charge (deduplicated), and
    // A's recovery-point write must not clobber the stored response.
    let revision = cluster.store.revision();
    cluster.release_all();
    assert_eq!(
        cluster.only_reply(first).response.status,
        status::UNAVAILABLE
    );
    assert_eq!(cluster.ledger("k"), Some(finished));
    assert_eq!(cluster.store.revision(), revision, "A wrote nothing");
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.count(is_committed), 1);
}

#[test]
fn update_bumps_generation_and_replays() {
    let mut cluster = Cluster::new();
    let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
    let update = ApiOp::Update {
        id: id.clone(),
        spec: spec(3),
    };
    let reply = cluster.call(API_B, "u", update.clone());
    assert_eq!(reply.response.status, status::OK);
    let expected = Resource {
        id: id.clone(),
        name: "a".into(),
        spec: spec(3),
        generation: 2,
    };
    assert_eq!(
        reply.response.body,
        ResponseBody::Resource(expected.clone())
    );
    assert_eq!(cluster.resources(), vec![expected.clone()]);
    let committed = |e: &Event| matches!(e, Event::ResourceCommitted { created: false, resource: Some(r), .. } if r.generation == 2);
    assert_eq!(cluster.count(committed), 1);
    let again = cluster.call(API_A, "u", update);
    assert_eq!((again.response, again.replayed), (reply.response, true));
    assert_eq!(
        cluster.resources()[0].generation,
        2,
        "a replay applies nothing"
    );
}

#[test]
fn a_key_lives_for_its_ttl_on_the_store_clock_says_so_and_is_then_new() {
    let mut cluster = Cluster::with(ApiSettings {
        idempotency_ttl_ms: 5_000,
        ..settings()
    });
    let first = cluster.call(API_A, "k", create("a"));
    assert_eq!(first.response.status, status::CREATED);
    let expires_at_ms = cluster.ledger("k").expect("recorded").expires_at_ms;
    let lease_ttl_ms = cluster_settings_ledger_lease_ttl_ms(5_000);
    assert!(
        (5_000..=cluster.store_now_ms + lease_ttl_ms).contains(&expires_at_ms),
        "the ledger lease's expiry: {expires_at_ms}"
    );
    assert_eq!(
        (first.key_ttl_ms, first.key_expires_at_ms),
        (Some(5_000), Some(expires_at_ms))
    );
    // Within the TTL: the stored answer, with the same expiry, and a 422
    // (which is not stored, so says nothing of expiry) for another body.
    let again = cluster.call(API_B, "k", create("a"));
    assert!(again.replayed);
    assert_eq!(again.key_expires_at_ms, Some(expires_at_ms));
    let other = cluster.call(API_B, "k", create("b"));
    assert_eq!(other.response.status, status::UNPROCESSABLE);
    assert_eq!(other.key_expires_at_ms, None);
    // Eight seconds of keep-alives later (past the shared lease's TTL) the
    // store has expired the key: the same key is a new request.
    for _ in 0..40 {
        cluster.tick(API_A, 1);
        cluster.tick(API_B, 1);
    }
    assert!(cluster.store_now_ms > expires_at_ms);
    cluster.store.expire_leases(cluster.store_now_ms);
    assert!(cluster.ledger("k").is_none(), "expired with its lease");
    let fresh = cluster.call(API_B, "k", create("b"));
    assert_eq!(fresh.response.status, status::CREATED);
    assert!(!fresh.replayed);
    assert!(fresh.key_expires_at_ms > Some(expires_at_ms));
    assert_eq!(cluster.resources().len(), 2);
}

#[test]
fn a_read_needs_no_key_sees_the_last_write_and_records_nothing() {
    let mut cluster = Cluster::new();
    let created = created_resource(&cluster.call(API_A, "c", create("a")));
    let update = ApiOp::Update {
        id: created.id.clone(),
        spec: spec(3),
    };
    assert_eq!(cluster.call(API_A, "u", update).response.status, status::OK);
    let (records, revision) = (cluster.records.len(), cluster.store.revision());
    let seen = cluster.get(API_B, &created.id).expect("found");
    assert_eq!(
        seen.resource.generation, 2,
        "the acknowledged update is seen"
    );
    assert_eq!(cluster.records.len(), records, "a read records nothing");
    assert_eq!(cluster.store.revision(), revision, "a read writes nothing");
}

/// A status as a controller would write it.
fn observed(generation: u64, ready_replicas: u32) -> Status {
    Status {
        observed_generation: generation,
        ready_replicas,
    }
}

#[test]
fn a_get_answers_the_resource_with_no_status_until_one_is_written_then_with_it() {
    let mut cluster = Cluster::new();
    let created = created_resource(&cluster.call(API_A, "c", create("a")));
    let before = cluster.get(API_A, &created.id).expect("found");
    assert_eq!(
        before,
        ResourceView {
            resource: created.clone(),
            status: None
        }
    );
    cluster.write(keys::status(&created.id), Value::Status(observed(1, 1)));
    let after = cluster.get(API_B, &created.id).expect("found");
    assert_eq!(
        after,
        ResourceView {
            resource: created.clone(),
            status: Some(observed(1, 1))
        }
    );
    // An update shows the new desired state beside the status the
    // controller has not yet caught up: both as the store holds them.
    let update = ApiOp::Update {
        id: created.id.clone(),
        spec: spec(2),
    };
    assert_eq!(cluster.call(API_A, "u", update).response.status, status::OK);
    let updated = cluster.get(API_A, &created.id).expect("found");
    assert_eq!(
        (updated.resource.generation, updated.status),
        (2, Some(observed(1, 1)))
    );
}

#[test]
fn a_get_of_a_missing_id_is_404_and_of_a_malformed_one_400() {
    let mut cluster = Cluster::new();
    let missing = cluster.send(API_A, None, ApiOp::Get { id: "nope".into() });
    let reply = cluster.only_reply(missing);
    assert_eq!(reply.response.status, status::NOT_FOUND);
    assert_eq!((reply.replayed, reply.key_ttl_ms), (false, None));
    // A status without its resource is still no resource.
    cluster.write(keys::status("orphan"), Value::Status(observed(1, 1)));
    let orphan = cluster.send(
        API_A,
        None,
        ApiOp::Get {
            id: "orphan".into(),
        },
    );
    assert_eq!(
        cluster.only_reply(orphan).response.status,
        status::NOT_FOUND
    );
    for id in [String::new(), "x".repeat(ApiOp::MAX_NAME_BYTES + 1)] {
        let bad = cluster.send(API_B, None, ApiOp::Get { id });
        assert_eq!(cluster.only_reply(bad).response.status, status::BAD_REQUEST);
    }
}

#[test]
fn a_read_the_store_does_not_answer_gets_503() {
    let mut cluster = Cluster::new();
    let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
    cluster.hold = Box::new(|_, to, _| to == STORE);
    let get = cluster.send(API_A, None, ApiOp::Get { id });
    cluster.fire_request_timeout(API_A);
    let list = cluster.send(API_A, None, list(None, 10));
    cluster.fire_request_timeout(API_A);
    for request_id in [get, list] {
        let reply = cluster.only_reply(request_id);
        assert_eq!(reply.response.status, status::UNAVAILABLE, "{reply:?}");
    }
}

fn list(after: Option<&str>, limit: u32) -> ApiOp {
    ApiOp::List {
        after: after.map(String::from),
        limit,
    }
}

#[test]
fn a_list_pages_through_every_resource_by_id_with_its_status() {
    let mut cluster = Cluster::new();
    let mut ids: Vec<String> = (0..5)
        .map(|n| created_resource(&cluster.call(API_A, &format!("c{n}"), create("a"))).id)
        .collect();
    ids.sort();
    cluster.write(keys::status(&ids[1]), Value::Status(observed(1, 1)));
    cluster.write(keys::status(&ids[4]), Value::Status(observed(1, 0)));
    let revision = cluster.store.revision();
    let (first, next) = cluster.page(API_A, None, 3);
    let listed: Vec<&str> = first.iter().map(|v| v.resource.id.as_str()).collect();
    assert_eq!(listed, ids[..3]);
    assert_eq!(next.as_deref(), Some(ids[2].as_str()), "the last item's id");
    let statuses: Vec<Option<Status>> = first.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [None, Some(observed(1, 1)), None]);
    // The second page is the last: it ends exactly at the last resource.
    let (second, next) = cluster.page(API_B, next.as_deref(), 2);
    let listed: Vec<&str> = second.iter().map(|v| v.resource.id.as_str()).collect();
    assert_eq!(listed, ids[3..]);
    assert_eq!(second[1].status, Some(observed(1, 0)));
    assert_eq!(next, None, "nothing follows the last page");
    // After the last id, and with room to spare: empty, and the end.
    assert_eq!(cluster.page(API_A, Some(&ids[4]), 100), (vec![], None));
    let (all, next) = cluster.page(API_A, None, 100);
    assert_eq!((all.len(), next), (5, None));
    assert_eq!(cluster.store.revision(), revision, "lists write nothing");
}

#[test]
fn a_list_limit_outside_1_to_100_or_a_malformed_cursor_is_refused_with_400() {
    let mut cluster = Cluster::new();
    created_resource(&cluster.call(API_A, "c", create("a")));
    for limit in [0, ApiOp::MAX_PAGE_LIMIT + 1, u32::MAX] {
        let request_id = cluster.send(API_A, None, list(None, limit));
        let reply = cluster.only_reply(request_id);
        assert_eq!(reply.response.status, status::BAD_REQUEST);
        let ResponseBody::Error { message } = &reply.response.body else {
            panic!("{reply:?}")
        };
        assert_eq!(message, &format!("limit must be 1 to 100, not {limit}"));
    }
    for after in [String::new(), "x".repeat(ApiOp::MAX_NAME_BYTES + 1)] {
        let request_id = cluster.send(API_A, None, list(Some(&after), 10));
        let reply = cluster.only_reply(request_id);
        assert_eq!(reply.response.status, status::BAD_REQUEST, "{reply:?}");
    }
    // The bounds themselves are fine.
    assert_eq!(cluster.page(API_A, None, 1).0.len(), 1);
    assert_eq!(cluster.page(API_A, None, ApiOp::MAX_PAGE_LIMIT).0.len(), 1);
}

#[test]
fn statuses_without_their_resources_cut_a_page_short_but_lose_no_item() {
    // Not something the nodes write (a status is written only while its
    // resource stands, and deleted with it), but should it happen, the
    // statuses read may end before the resources do: the page stops
    // there, so no item is shown without the status stored with it.
    let mut cluster = Cluster::new();
    let mut ids: Vec<String> = (0..3)
        .map(|n| created_resource(&cluster.call(API_A, &format!("c{n}"), create("a"))).id)
        .collect();
    ids.sort();
    // Ids sort after "a1": real ones start with "r".
    for orphan in ["a0", "a1"] {
        cluster.write(keys::status(orphan), Value::Status(observed(9, 9)));
    }
    cluster.write(keys::status(&ids[2]), Value::Status(observed(1, 1)));
    // Two statuses read (both orphans, sorting first), more follow: of
    // nothing after "a1" is it known whether it has a status.
    let (page, next) = cluster.page(API_A, None, 2);
    assert_eq!((page, next.as_deref()), (vec![], Some("a1")));
    let (page, next) = cluster.page(API_A, next.as_deref(), 2);
    let listed: Vec<&str> = page.iter().map(|v| v.resource.id.as_str()).collect();
    assert_eq!(listed, ids[..2]);
    assert_eq!(next.as_deref(), Some(ids[1].as_str()));
    let (page, next) = cluster.page(API_A, next.as_deref(), 2);
    assert_eq!(page.len(), 1);
    assert_eq!(
        (page[0].resource.id.as_str(), page[0].status, next),
        (ids[2].as_str(), Some(observed(1, 1)), None)
    );
}

fn cluster_settings_ledger_lease_ttl_ms(idempotency_ttl_ms: u64) -> u64 {
    ApiSettings {
        idempotency_ttl_ms,
        ..settings()
    }
    .ledger_lease_ttl_ms()
}

#[test]
fn keys_share_ledger_leases_so_a_long_run_cannot_fill_the_lease_table() {
    // One lease per key filled the store's 10,000 leases after 45 minutes
    // of steady load, and from then on every request got 503.
    let mut cluster = Cluster::with(ApiSettings {
        idempotency_ttl_ms: 8_000,
        ..settings()
    });
    let asked = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = asked.clone();
    let lease_ttl_ms = cluster_settings_ledger_lease_ttl_ms(8_000);
    cluster.hold = Box::new(move |_, _, message| {
        if matches!(message, Msg::StoreRequest { request: StoreRequest::LeaseGrant { ttl_ms }, .. } if *ttl_ms == lease_ttl_ms)
        {
            counter.set(counter.get() + 1);
        }
        false
    });
    let grants = |_: &Cluster| asked.get();
    for index in 0..50 {
        let reply = cluster.call(API_A, &format!("k{index}"), create("a"));
        assert_eq!(reply.response.status, status::CREATED);
    }
    assert_eq!(grants(&cluster), 1, "fifty keys, one ledger lease");
    // Past the share window (1 s), the next key asks for a new lease, whose
    // expiry it publishes; the old keys keep theirs.
    let old_expiry = cluster.ledger("k0").expect("recorded").expires_at_ms;
    for _ in 0..12 {
        cluster.tick(API_A, 1);
    }
    let reply = cluster.call(API_A, "late", create("a"));
    assert_eq!(grants(&cluster), 2);
    let late_expiry = cluster.ledger("late").expect("recorded").expires_at_ms;
    assert!(late_expiry > old_expiry);
    assert_eq!(reply.key_expires_at_ms, Some(late_expiry));
    // Every key still lives its full published TTL from its record.
    assert!(old_expiry >= 8_000 + 1_000);
}

#[test]
fn an_oversized_name_gets_400_before_anything_is_recorded_or_charged() {
    let mut cluster = Cluster::new();
    let huge = "x".repeat(2 << 20);
    let reply = cluster.call(API_A, "k", create(&huge));
    assert_eq!(reply.response.status, status::BAD_REQUEST);
    assert!(cluster.ledger("k").is_none());
    assert_eq!(
        cluster.count(|e| matches!(e, Event::ChargeExecuted { .. })),
        0
    );
    // The longest allowed name fits the store's value bound end to end.
    let longest = "y".repeat(ApiOp::MAX_NAME_BYTES);
    let reply = cluster.call(API_A, "k2", create(&longest));
    assert_eq!(reply.response.status, status::CREATED);
}

#[test]
fn update_to_the_same_spec_keeps_the_generation_and_writes_nothing() {
    let mut cluster = Cluster::new();
    let created = created_resource(&cluster.call(API_A, "c", create("a")));
    let same = ApiOp::Update {
        id: created.id.clone(),
        spec: created.spec,
    };
    let reply = cluster.call(API_B, "u", same);
    assert_eq!(reply.response.status, status::OK);
    assert_eq!(reply.response.body, ResponseBody::Resource(created.clone()));
    assert_eq!(cluster.resources(), vec![created]);
    let updated = |e: &Event| matches!(e, Event::ResourceCommitted { created: false, .. });
    assert_eq!(cluster.count(updated), 0, "no desired-state write");
}

#[test]
fn update_that_races_a_concurrent_write_replans_on_the_new_generation() {
    let mut cluster = Cluster::new();
    let created = created_resource(&cluster.call(API_A, "c", create("a")));
    cluster.hold = Box::new(|from, _, message| from == API_A && is_commit(message));
    let update = ApiOp::Update {
        id: created.id.clone(),
        spec: spec(3),
    };
    let request_id = cluster.send(API_A, Some("u"), update);
    let raced = Resource {
        generation: 5,
        ..created.clone()
    };
    cluster.write(keys::resource(&created.id), Value::Resource(raced.into()));
    cluster.release_all();
    let reply = cluster.only_reply(request_id);
    let ResponseBody::Resource(updated) = &reply.response.body else {
        panic!("{reply:?}")
    };
    assert_eq!((updated.generation, updated.spec), (6, spec(3)));
    assert_eq!(cluster.resources()[0].generation, 6);
}

#[test]
fn update_of_a_missing_id_stores_and_replays_404() {
    let mut cluster = Cluster::new();
    let update = ApiOp::Update {
        id: "r-missing".into(),
        spec: spec(2),
    };
    let first = cluster.call(API_A, "u", update.clone());
    assert_eq!(first.response.status, status::NOT_FOUND);
    assert_eq!(first.key_ttl_ms, Some(settings().idempotency_ttl_ms));
    let finished = |e: &Event| matches!(e, Event::KeyFinished { response, .. } if response.status == status::NOT_FOUND);
    assert_eq!(cluster.count(finished), 1);
    assert_eq!(cluster.count(is_committed), 0);
    let again = cluster.call(API_B, "u", update);
    assert_eq!((again.response, again.replayed), (first.response, true));
    assert!(cluster.resources().is_empty());
}

#[test]
fn delete_removes_the_resource_and_its_status() {
    let mut cluster = Cluster::new();
    let id = created_resource(&cluster.call(API_A, "c", create("a"))).id;
    let status = Status {
        observed_generation: 1,
        ready_replicas: 1,
    };
    cluster.write(keys::status(&id), Value::Status(status));
    let reply = cluster.call(API_B, "d", ApiOp::Delete { id: id.clone() });
    assert_eq!(reply.response.status, status::OK);
    assert_eq!(
        reply.response.body,
        ResponseBody::Deleted { id: id.clone() }
    );
    assert!(cluster.resources().is_empty());
    assert!(cluster.store.get(&keys::status(&id)).is_none());
    let deleted = |e: &Event| matches!(e, Event::ResourceCommitted { resource: None, .. });
    assert_eq!(cluster.count(deleted), 1);
}

#[test]
fn billing_timeout_resends_the_charge_with_the_same_key() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    let request_id = cluster.send(API_A, Some("k"), create("a"));
    cluster.fire_request_timeout(API_A);
    let charges: Vec<(RequestId, &str)> = cluster
        .held
        .iter()
        .map(|(_, _, message)| match message {
            Msg::Charge {
                request_id, key, ..
            } => (*request_id, key.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(charges.len(), 2);
    assert_ne!(charges[0].0, charges[1].0, "a resend is a new request");
    assert_eq!((charges[0].1, charges[1].1), ("k", "k"));
    cluster.release_all();
    created_resource(&cluster.only_reply(request_id));
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.count(is_committed), 1);
}

#[test]
fn giving_up_releases_the_lock_so_a_retry_elsewhere_takes_over() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    let first = cluster.send(API_A, Some("k"), create("a"));
    for _ in 0..MAX_CHARGE_SENDS {
        cluster.fire_request_timeout(API_A);
    }
    assert_eq!(
        cluster.only_reply(first).response.status,
        status::UNAVAILABLE
    );
    assert!(cluster.store.get(&keys::lock("k")).is_none(), "released");
    cluster.held.clear(); // The network lost every charge.
    cluster.hold = no_hold();
    let retry = cluster.call(API_B, "k", create("a"));
    created_resource(&retry);
    assert!(!retry.replayed);
    let taken = Event::KeyTakenOver {
        key: "k".into(),
        by_completer: false,
    };
    assert_eq!(cluster.count(|e| *e == taken), 1);
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.count(is_committed), 1);
}

#[test]
fn racing_takeovers_of_an_abandoned_key_let_exactly_one_win() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|_, to, _| to == BILLING);
    let first = cluster.send(API_A, Some("k"), create("a"));
    for _ in 0..MAX_CHARGE_SENDS {
        cluster.fire_request_timeout(API_A);
    }
    assert_eq!(
        cluster.only_reply(first).response.status,
        status::UNAVAILABLE
    );
    cluster.held.clear();
    // Both a client retry at B and A's completer find the key abandoned
    // and try to claim it at once.
    cluster.hold = Box::new(|_, _, message| is_claim(message));
    let retry = cluster.send(API_B, Some("k"), create("a"));
    cluster.fire_completer(API_A);
    assert_eq!(cluster.held.len(), 2, "two claims in flight");
    cluster.release_all();
    assert_eq!(
        cluster.count(|e| matches!(e, Event::KeyTakenOver { .. })),
        1
    );
    created_resource(&cluster.only_reply(retry));
    assert_eq!(cluster.count(is_committed), 1);
    assert_eq!(cluster.count(is_charge_executed), 1);
}

#[test]
fn late_reply_is_ignored_and_my_own_completer_finishes_the_key() {
    let mut cluster = Cluster::new();
    let record_reply = |from: NodeId, _: NodeId, message: &Msg| {
        from == STORE
            && matches!(
                message,
                Msg::StoreReply {
                    response: StoreResponse::Txn { .. },
                    ..
                }
            )
    };
    cluster.hold = Box::new(record_reply);
    let first = cluster.send(API_A, Some("k"), create("a"));
    assert_eq!(cluster.ledger("k").unwrap().recovery, Recovery::Started);
    cluster.fire_request_timeout(API_A);
    assert_eq!(
        cluster.only_reply(first).response.status,
        status::UNAVAILABLE
    );
    // The record's reply arrives after its timeout: ignored.
    cluster.release_all();
    assert_eq!(cluster.replies_to(first).len(), 1);
    assert!(cluster.records.is_empty(), "{:?}", cluster.records);
    // The lock is mine and no operation holds it: the completer resumes.
    cluster.fire_completer(API_A);
    let finished = |e: &Event| {
        matches!(
            e,
            Event::KeyFinished {
                by_completer: true,
                ..
            }
        )
    };
    assert_eq!(cluster.count(finished), 1);
    assert_eq!(cluster.count(is_charge_executed), 1);
    let retry = cluster.call(API_B, "k", create("a"));
    assert!(retry.replayed);
    created_resource(&retry);
}

#[test]
fn keep_alive_that_finds_no_lease_starts_a_new_session() {
    let mut cluster = Cluster::new();
    // A started first, so its session is the store's first lease.
    let revoked = cluster.store.apply(
        cluster.store_now_ms,
        StoreRequest::LeaseRevoke { lease: LeaseId(1) },
    );
    assert_eq!(revoked, StoreResponse::LeaseRevoked { lease: LeaseId(1) });
    cluster.tick(API_A, 1);
    assert!(
        cluster.store.lease_expiry_ms(LeaseId(3)).is_some(),
        "regranted"
    );
    created_resource(&cluster.call(API_A, "k", create("a")));
}

#[test]
fn requests_beyond_the_operation_cap_get_503() {
    let mut cluster = Cluster::new();
    let ledger_ttl_ms = settings().ledger_lease_ttl_ms();
    cluster.hold = Box::new(
        move |_, _, message| matches!(message, Msg::StoreRequest { request: StoreRequest::LeaseGrant { ttl_ms }, .. } if *ttl_ms == ledger_ttl_ms),
    );
    for index in 0..MAX_OPERATIONS {
        cluster.send(API_A, Some(&format!("k{index}")), create("a"));
    }
    assert!(cluster.replies.is_empty());
    let reply = cluster.call(API_A, "one-too-many", create("a"));
    assert_eq!(reply.response.status, status::UNAVAILABLE);
}

#[test]
fn a_malformed_store_reply_fails_the_request_with_503_and_a_retry_finishes_the_key() {
    let mut cluster = Cluster::new();
    cluster.hold = Box::new(|from, to, message| {
        from == STORE
            && to == API_A
            && matches!(
                message,
                Msg::StoreReply {
                    response: StoreResponse::Txn { .. },
                    ..
                }
            )
    });
    let first = cluster.send(API_A, Some("k"), create("a"));
    let (from, to, record_reply) = cluster.held.pop().expect("the record's reply was held");
    let Msg::StoreReply { request_id, .. } = record_reply else {
        panic!("a store reply: {record_reply:?}");
    };
    // A peer answers the record with a failed transaction that read
    // nothing: not the shape of a record's failure branch.
    let malformed = Msg::StoreReply {
        request_id,
        response: StoreResponse::Txn {
            succeeded: false,
            revision: 0,
            results: vec![],
        },
    };
    cluster.hold = no_hold();
    cluster.queue.push_back((from, to, malformed));
    cluster.pump();
    assert_eq!(
        cluster.only_reply(first).response.status,
        status::UNAVAILABLE
    );
    // The record was applied; a retry takes my own abandoned key over.
    created_resource(&cluster.call(API_A, "k", create("a")));
    assert_eq!(cluster.count(is_charge_executed), 1);
    assert_eq!(cluster.count(is_committed), 1);
}
