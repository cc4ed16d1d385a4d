//! Reboot tests of the nodes that keep nothing durable: API nodes and
//! controllers. Each runs against a real store (and billing, and workers)
//! in a small rig, is rebooted with its monotonic clock restarted far from
//! where it was, and must start over from what the store holds rather than
//! trust anything timed on the old clock: its sessions, its beliefs, its
//! locks. Only public constructors and messages are used, so these tests do
//! not depend on how `api` and `controller` are organized inside.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use node::testing::{Harness, Output};
use node::{MILLISECOND_NS, Node, NodeId, SECOND_NS};

use crate::Durable;
use crate::api::ApiNode;
use crate::billing::BillingNode;
use crate::config::{ApiSettings, ControllerSettings, StoreSettings, Topology, WorkerSettings};
use crate::controller::{ControllerNode, VALIDITY_TIMER};
use crate::protocol::{
    ApiOp, ApiReply, ApiRequest, ControlPlane, Event, LeaseName, Msg, Spec, Timer, keys, status,
};
use crate::store::{Op, StoreNode, StoreRequest};
use crate::worker::WorkerNode;

const STORE: NodeId = NodeId(0);
const BILLING: NodeId = NodeId(1);
const API: NodeId = NodeId(2);
const CONTROLLER: NodeId = NodeId(3);
const WORKERS: [NodeId; 2] = [NodeId(4), NodeId(5)];
/// The test itself plays the client: messages to it are only logged.
const CLIENT: NodeId = NodeId(6);

/// Where the rebooted node's clock stood before the reboot, and the two
/// places it restarts from: far below (raw readings would seem to lie in
/// the future) and far above (they would seem long past).
const FIRST_BOOT_NS: u64 = 500 * SECOND_NS;
const REBOOTED_AT_NS: [u64; 2] = [0, 100_000 * SECOND_NS];

fn topology() -> Topology {
    Topology {
        store: STORE,
        billing: BILLING,
        apis: vec![API],
        controllers: vec![CONTROLLER],
        workers: WORKERS.to_vec(),
        clients: vec![CLIENT],
    }
}

/// A handful of nodes joined by an instant, lossless network. One node is
/// *driven*: time moves when its timers fire, and every other node's clock
/// moves by as much (their own timers are not needed here: the store
/// expires due leases on every request).
struct Rig {
    nodes: BTreeMap<NodeId, Harness<ControlPlane>>,
    driven: NodeId,
    /// Sent and not yet delivered, in send order.
    queue: VecDeque<(NodeId, NodeId, Msg)>,
    /// Everything sent, in order: (from, to, message).
    sent: Vec<(NodeId, NodeId, Msg)>,
    /// Everything recorded, in order.
    records: Vec<(NodeId, Event)>,
    /// Every timer set, in order: (node, delay, tag).
    timers: Vec<(NodeId, u64, Timer)>,
}

impl Rig {
    fn new(driven: NodeId) -> Self {
        Self {
            nodes: BTreeMap::new(),
            driven,
            queue: VecDeque::new(),
            sent: Vec::new(),
            records: Vec::new(),
            timers: Vec::new(),
        }
    }

    /// Starts `node` as `id` with its monotonic clock at `mono_ns`.
    fn add(&mut self, id: NodeId, node: Box<dyn Node<ControlPlane>>, mono_ns: u64) {
        let mut harness = Harness::new(u64::from(id.0) + 1, id, node);
        harness.advance(mono_ns);
        let output = harness.start();
        self.nodes.insert(id, harness);
        self.absorb(id, output);
    }

    fn absorb(&mut self, from: NodeId, output: Output<ControlPlane>) {
        for (to, message) in output.sent {
            self.queue.push_back((from, to, message.clone()));
            self.sent.push((from, to, message));
        }
        self.records
            .extend(output.records.into_iter().map(|event| (from, event)));
        self.timers.extend(
            output
                .timers
                .into_iter()
                .map(|(_, delay_ns, tag)| (from, delay_ns, tag)),
        );
    }

    /// Delivers until nothing is in flight (to the client: logged only).
    fn pump(&mut self) {
        for _ in 0..100_000 {
            let Some((from, to, message)) = self.queue.pop_front() else {
                return;
            };
            if let Some(harness) = self.nodes.get_mut(&to) {
                let output = harness.deliver(from, message);
                self.absorb(to, output);
            }
        }
        panic!("the rig did not quiesce");
    }

    /// Fires the driven node's timers for `duration_ns` of its clock,
    /// delivering everything after each.
    fn run(&mut self, duration_ns: u64) {
        self.pump();
        let until_ns = self.nodes[&self.driven].now_ns() + duration_ns;
        for _ in 0..100_000 {
            let driven = self.nodes.get_mut(&self.driven).expect("driven node");
            let before_ns = driven.now_ns();
            if before_ns >= until_ns {
                return;
            }
            let (_, output) = driven.fire_next_timer().expect("a periodic timer");
            let elapsed_ns = driven.now_ns() - before_ns;
            for (id, other) in &mut self.nodes {
                if *id != self.driven {
                    other.advance(elapsed_ns);
                }
            }
            self.absorb(self.driven, output);
            self.pump();
        }
        panic!("time did not reach the end of the run");
    }

    /// Reboots the driven node as `node`, its clock restarted at `mono_ns`.
    /// What was in flight is lost.
    fn reboot(&mut self, node: Box<dyn Node<ControlPlane>>, mono_ns: u64) {
        self.queue.clear();
        let harness = self.nodes.get_mut(&self.driven).expect("driven node");
        let output = harness.reboot(node, mono_ns);
        self.absorb(self.driven, output);
    }

    fn durable(&self, id: NodeId) -> &Durable {
        self.nodes[&id].durable()
    }

    /// Delivers the next message in flight, if any.
    fn pump_one(&mut self) {
        if let Some((from, to, message)) = self.queue.pop_front() {
            if let Some(harness) = self.nodes.get_mut(&to) {
                let output = harness.deliver(from, message);
                self.absorb(to, output);
            }
        }
    }

    /// Lease grants the driven node has sent so far.
    fn count_session_grants(&self) -> usize {
        self.sent
            .iter()
            .filter(|(from, _, message)| {
                *from == self.driven
                    && matches!(
                        message,
                        Msg::StoreRequest {
                            request: StoreRequest::LeaseGrant { .. },
                            ..
                        }
                    )
            })
            .count()
    }

    /// The client sends `request` to the API node.
    fn request(&mut self, request: ApiRequest) {
        self.queue.push_back((CLIENT, API, Msg::Api(request)));
    }

    /// The replies the client got to `request_id`.
    fn replies(&self, request_id: u64) -> Vec<ApiReply> {
        self.sent
            .iter()
            .filter_map(|(_, to, message)| match message {
                Msg::ApiReply(reply) if *to == CLIENT && reply.request_id == request_id => {
                    Some(ApiReply::clone(reply))
                }
                _ => None,
            })
            .collect()
    }

    /// How many recorded events are `wanted`.
    fn count(&self, wanted: impl Fn(&Event) -> bool) -> usize {
        self.records
            .iter()
            .filter(|(_, event)| wanted(event))
            .count()
    }
}

// API nodes.

fn api_node() -> Box<dyn Node<ControlPlane>> {
    Box::new(ApiNode::new(topology(), ApiSettings::default()))
}

fn api_rig() -> Rig {
    let mut rig = Rig::new(API);
    rig.add(STORE, Box::new(StoreNode::new(StoreSettings::default())), 0);
    rig.add(BILLING, Box::new(BillingNode::new()), 0);
    rig.add(API, api_node(), FIRST_BOOT_NS);
    rig.run(SECOND_NS);
    rig
}

fn create(request_id: u64, key: &str) -> ApiRequest {
    ApiRequest {
        request_id,
        idempotency_key: Some(key.into()),
        op: ApiOp::Create {
            name: format!("name-of-{key}"),
            spec: Spec {
                replicas: 1,
                image: 1,
            },
        },
    }
}

/// Whether `message` is the commit of a create: the transaction that puts
/// the resource.
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

#[test]
fn a_rebooted_api_node_keeps_nothing_and_finishes_keys_from_the_store_on_a_new_session() {
    for rebooted_at_ns in REBOOTED_AT_NS {
        let mut rig = api_rig();
        // One key finished before the reboot.
        rig.request(create(1, "done"));
        rig.pump();
        let first = rig.replies(1);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].response.status, status::CREATED);
        // Another interrupted by the reboot after its charge, just before
        // its commit: the commit is lost with the machine.
        rig.request(create(2, "cut"));
        for _ in 0..1_000 {
            if rig
                .queue
                .front()
                .is_none_or(|(_, _, message)| is_commit(message))
            {
                break;
            }
            rig.pump_one();
        }
        assert!(rig.queue.front().is_some_and(|(_, _, m)| is_commit(m)));
        let sessions_before = rig.count_session_grants();
        rig.reboot(api_node(), rebooted_at_ns);

        assert_eq!(rig.durable(API), &Durable::Fresh, "nothing kept to re-base");
        assert_eq!(
            rig.count_session_grants(),
            sessions_before + 1,
            "a new session at once: the old one was timed on the old clock"
        );
        rig.run(SECOND_NS);
        // Retries: the finished key replays, the cut one is reclaimed from
        // the store and finished, charged once in all.
        rig.request(create(3, "done"));
        rig.request(create(4, "cut"));
        rig.pump();
        let replayed = rig.replies(3);
        assert_eq!(replayed.len(), 1);
        assert!(replayed[0].replayed);
        assert_eq!(replayed[0].response, first[0].response);
        let resumed = rig.replies(4);
        assert_eq!(resumed.len(), 1, "{resumed:?}");
        assert_eq!(resumed[0].response.status, status::CREATED);
        let charged = |key: &str| {
            rig.count(|event| matches!(event, Event::ChargeExecuted { key: k, .. } if k == key))
        };
        assert_eq!((charged("done"), charged("cut")), (1, 1));
        let committed = rig.count(|event| matches!(event, Event::ResourceCommitted { .. }));
        assert_eq!(committed, 2, "one commit per key");
    }
}

// Controllers.

fn controller_settings() -> ControllerSettings {
    ControllerSettings {
        shard_count: 4,
        ..ControllerSettings::default()
    }
}

fn controller_node() -> Box<dyn Node<ControlPlane>> {
    Box::new(ControllerNode::new(topology(), controller_settings()))
}

/// The leases the controller came to believe in, with their tokens, among
/// `records`.
fn beliefs(records: &[(NodeId, Event)]) -> BTreeMap<LeaseName, u64> {
    records
        .iter()
        .filter_map(|(node, event)| match event {
            Event::BeliefStarted { lease, token } if *node == CONTROLLER => Some((*lease, *token)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_rebooted_controller_trusts_no_old_belief_and_acts_only_under_fresh_higher_tokens() {
    for rebooted_at_ns in REBOOTED_AT_NS {
        let mut rig = Rig::new(CONTROLLER);
        rig.add(STORE, Box::new(StoreNode::new(StoreSettings::default())), 0);
        for worker in WORKERS {
            rig.add(
                worker,
                Box::new(WorkerNode::new(WorkerSettings::default())),
                0,
            );
        }
        rig.add(CONTROLLER, controller_node(), FIRST_BOOT_NS);
        rig.run(5 * SECOND_NS);
        let before = beliefs(&rig.records);
        let shards: BTreeSet<LeaseName> = before
            .keys()
            .copied()
            .filter(|lease| matches!(lease, LeaseName::Shard(_)))
            .collect();
        assert_eq!(shards.len(), 4, "the only controller holds every shard");
        assert!(before.contains_key(&LeaseName::Leader));

        let (records_at, sent_at, timers_at) =
            (rig.records.len(), rig.sent.len(), rig.timers.len());
        rig.reboot(controller_node(), rebooted_at_ns);
        assert_eq!(
            rig.durable(CONTROLLER),
            &Durable::Fresh,
            "nothing kept to re-base"
        );
        rig.run(5 * SECOND_NS);

        let after = beliefs(&rig.records[records_at..]);
        assert_eq!(
            after.keys().copied().collect::<BTreeSet<_>>(),
            before.keys().copied().collect::<BTreeSet<_>>(),
            "the same leases, reclaimed from the store"
        );
        for (lease, token) in &after {
            assert!(
                token > &before[lease],
                "{lease:?}: a fresh token, not the old one"
            );
        }
        // Nothing sent on this boot carries a token of the last one.
        let mut fenced = 0;
        for (from, _, message) in &rig.sent[sent_at..] {
            let (shard, token) = match message {
                Msg::Observe { shard, token, .. } if *from == CONTROLLER => (*shard, *token),
                Msg::Act { action, .. } if *from == CONTROLLER => (action.shard, action.token),
                _ => continue,
            };
            assert!(token > before[&LeaseName::Shard(shard)], "{message:?}");
            fenced += 1;
        }
        assert!(
            fenced >= 4 * WORKERS.len(),
            "every shard fenced anew at every worker"
        );
        // Validity is re-based too: every deadline set on this boot counts
        // from a grant or keep-alive sent on this boot's clock, so it is never
        // further away than one validity period.
        let validity_ns = controller_settings().lease_validity_ms() * MILLISECOND_NS;
        let deadlines: Vec<u64> = rig.timers[timers_at..]
            .iter()
            .filter(|(node, _, tag)| *node == CONTROLLER && *tag == Timer::Custom(VALIDITY_TIMER))
            .map(|(_, delay_ns, _)| *delay_ns)
            .collect();
        assert!(!deadlines.is_empty(), "the new session was validated");
        assert!(
            deadlines.iter().all(|&delay_ns| delay_ns <= validity_ns),
            "{deadlines:?}"
        );
    }
}
