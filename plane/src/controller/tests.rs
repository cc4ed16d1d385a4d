//! The controller's tests: one controller in a harness, its store served
//! from a real `KvStore`, its workers played by the test.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use node::{Digested, MILLISECOND_NS};

use super::*;
use crate::protocol::{
    Action, ActionKind, ActionOutcome, Event, Instance, InstanceId, Resource, Settled, Spec,
};
use crate::shard::rendezvous_owner;
use crate::shard::shard_of;
use crate::store::KvStore;
use crate::store::{Op, StoreRequest, Txn};
use node::testing::{Harness, Output};

const STORE: NodeId = NodeId(0);
const ME: NodeId = NodeId(2);
const OTHER: NodeId = NodeId(3);
const WORKERS: [NodeId; 2] = [NodeId(4), NodeId(5)];
const MS: u64 = MILLISECOND_NS;

fn topology() -> Topology {
    Topology {
        store: STORE,
        billing: NodeId(1),
        apis: vec![],
        controllers: vec![ME, OTHER],
        workers: WORKERS.to_vec(),
        clients: vec![],
    }
}

/// Few shards and a session that outlives every test unless a test
/// shortens it.
fn settings() -> ControllerSettings {
    ControllerSettings {
        shard_count: 4,
        session_ttl_ms: 60_000,
        ..ControllerSettings::default()
    }
}

/// Plays the workers: fences per (worker, shard), deduplicates action
/// ids, runs starts and stops.
#[derive(Default)]
struct Workers {
    instances: Vec<Instance>,
    highest: BTreeMap<(NodeId, ShardId), u64>,
    executed: BTreeMap<ActionId, ActionOutcome>,
    next_sequence: u64,
}

impl Workers {
    fn running(&mut self, worker: NodeId, resource: &str, ordinal: u32, generation: u64) {
        self.next_sequence += 1;
        self.instances.push(Instance {
            id: InstanceId {
                worker,
                sequence: self.next_sequence,
            },
            resource: resource.to_string(),
            ordinal,
            generation,
            shard: shard_of(resource, settings().shard_count),
        });
    }

    fn fence(&mut self, worker: NodeId, shard: ShardId, token: u64) -> Result<(), u64> {
        let highest = self.highest.entry((worker, shard)).or_insert(0);
        if token < *highest {
            return Err(*highest);
        }
        *highest = token;
        Ok(())
    }

    fn reply(&mut self, worker: NodeId, message: &Msg) -> Msg {
        match message {
            Msg::Observe {
                request_id,
                shard,
                token,
                resource,
                ..
            } => {
                let instances = self.fence(worker, *shard, *token).map(|()| {
                    let wanted = |i: &&Instance| {
                        i.id.worker == worker
                            && i.shard == *shard
                            && resource.as_ref().is_none_or(|r| *r == i.resource)
                    };
                    self.instances
                        .iter()
                        .filter(wanted)
                        .cloned()
                        .map(Digested::new)
                        .collect()
                });
                Msg::Observed {
                    request_id: *request_id,
                    instances,
                }
            }
            Msg::Act {
                request_id, action, ..
            } => Msg::Acted {
                request_id: *request_id,
                action_id: action.id,
                outcome: self.act(worker, action),
            },
            other => panic!("not for a worker: {other:?}"),
        }
    }

    fn act(&mut self, worker: NodeId, action: &Action) -> ActionOutcome {
        if let Some(outcome) = self.executed.get(&action.id) {
            return outcome.clone();
        }
        if let Err(highest_token) = self.fence(worker, action.shard, action.token) {
            return ActionOutcome::Rejected { highest_token };
        }
        let outcome = match &action.kind {
            ActionKind::Start {
                resource,
                ordinal,
                generation,
            } => {
                self.running(worker, resource, *ordinal, *generation);
                let instance = self.instances.last().unwrap().id;
                ActionOutcome::Started { instance }
            }
            ActionKind::Stop { instance } => {
                let before = self.instances.len();
                self.instances.retain(|i| i.id != *instance);
                if self.instances.len() < before {
                    ActionOutcome::Stopped
                } else {
                    ActionOutcome::NotFound
                }
            }
        };
        self.executed.insert(action.id, outcome.clone());
        outcome
    }
}

/// One controller in a harness, its store served from a real
/// `KvStore`, its worker messages collected for the test to answer.
struct Rig {
    harness: Harness<ControlPlane>,
    settings: ControllerSettings,
    store: KvStore<Value>,
    to_store: VecDeque<(RequestId, StoreRequest<Value>)>,
    to_workers: Vec<(NodeId, Msg)>,
    records: Vec<Event>,
    /// Timers set, with their delays.
    timers: Vec<(u64, Timer)>,
    /// When true, store requests wait for `serve_one`.
    manual_store: bool,
    /// When true, every store reply is delivered twice.
    duplicate_replies: bool,
}

impl Rig {
    fn new(settings: ControllerSettings) -> Self {
        let node = ControllerNode::new(topology(), settings.clone());
        Self {
            harness: Harness::new(7, ME, Box::new(node)),
            settings,
            store: KvStore::default(),
            to_store: VecDeque::new(),
            to_workers: Vec::new(),
            records: Vec::new(),
            timers: Vec::new(),
            manual_store: false,
            duplicate_replies: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.harness.now_ns() / MS
    }

    /// Takes a handler's output in; returns what it recorded.
    fn absorb(&mut self, out: Output<ControlPlane>) -> Vec<Event> {
        for (to, message) in out.sent {
            match message {
                Msg::StoreRequest {
                    request_id,
                    request,
                } => {
                    assert_eq!(to, STORE);
                    self.to_store.push_back((request_id, request));
                }
                Msg::Watch { .. } => assert_eq!(to, STORE),
                other => self.to_workers.push((to, other)),
            }
        }
        self.timers
            .extend(out.timers.into_iter().map(|(_, delay, tag)| (delay, tag)));
        self.records.extend(out.records.iter().cloned());
        if !self.manual_store {
            self.settle();
        }
        out.records
    }

    /// Serves the oldest store request; returns what its reply's
    /// handler recorded.
    fn serve_one(&mut self) -> Option<Vec<Event>> {
        let (request_id, request) = self.to_store.pop_front()?;
        let response = self.store.apply(self.now_ms(), request);
        let reply = Msg::StoreReply {
            request_id,
            response,
        };
        if self.duplicate_replies {
            let out = self.harness.deliver(STORE, reply.clone());
            self.absorb(out);
        }
        let out = self.harness.deliver(STORE, reply);
        Some(self.absorb(out))
    }

    fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.serve_one().is_none() {
                return;
            }
        }
        panic!("the store traffic does not settle");
    }

    fn start(&mut self) {
        let out = self.harness.start();
        self.absorb(out);
    }

    fn deliver(&mut self, from: NodeId, message: Msg) -> Vec<Event> {
        let out = self.harness.deliver(from, message);
        self.absorb(out)
    }

    fn fire(&mut self, wanted: impl Fn(&Timer) -> bool) -> Vec<Event> {
        let out = self
            .harness
            .fire_timer(wanted)
            .expect("the timer is pending");
        self.absorb(out)
    }

    /// Answers worker messages that `answer` selects, and those their
    /// replies cause, until none is left; the others stay queued.
    fn pump(&mut self, workers: &mut Workers, answer: impl Fn(NodeId, &Msg) -> bool) {
        for _ in 0..10_000 {
            let Some(index) = self.to_workers.iter().position(|(to, m)| answer(*to, m)) else {
                return;
            };
            let (worker, message) = self.to_workers.remove(index);
            let reply = workers.reply(worker, &message);
            self.deliver(worker, reply);
        }
        panic!("the worker traffic does not settle");
    }

    fn put(&mut self, key: String, value: Value) {
        let put = Op::Put {
            key,
            value,
            lease: None,
        };
        let request = StoreRequest::Txn(Txn::unconditional(vec![put]));
        let response = self.store.apply(self.now_ms(), request);
        assert!(matches!(
            response,
            StoreResponse::Txn {
                succeeded: true,
                ..
            }
        ));
    }

    fn put_resource(&mut self, id: &str, replicas: u32, generation: u64) {
        let resource = Resource {
            id: id.to_string(),
            name: id.to_string(),
            spec: Spec { replicas, image: 1 },
            generation,
        };
        self.put(keys::resource(id), Value::Resource(resource.into()));
    }

    fn acts(&self) -> Vec<(NodeId, RequestId, Action)> {
        let acts = self.to_workers.iter().filter_map(|(to, m)| match m {
            Msg::Act {
                request_id, action, ..
            } => Some((*to, *request_id, Action::clone(action))),
            _ => None,
        });
        acts.collect()
    }

    fn pass_observes(&self) -> Vec<RequestId> {
        let observes = self.to_workers.iter().filter_map(|(_, m)| match m {
            Msg::Observe {
                request_id,
                resource: Some(_),
                ..
            } => Some(*request_id),
            _ => None,
        });
        observes.collect()
    }

    /// The token of every lease believed now, by the records.
    fn beliefs(&self) -> BTreeMap<LeaseName, u64> {
        let mut beliefs = BTreeMap::new();
        for record in &self.records {
            match record {
                Event::BeliefStarted { lease, token } => {
                    assert!(beliefs.insert(*lease, *token).is_none(), "{lease:?} twice");
                }
                Event::BeliefEnded { lease, token, .. } => {
                    assert_eq!(beliefs.remove(lease), Some(*token), "{lease:?} ended");
                }
                _ => {}
            }
        }
        beliefs
    }

    fn shard_token(&self, resource: &str) -> u64 {
        let shard = shard_of(resource, self.settings.shard_count);
        self.beliefs()[&LeaseName::Shard(shard)]
    }

    fn ended(&self) -> Vec<(LeaseName, u64, BeliefEnd)> {
        let ended = self.records.iter().filter_map(|r| match r {
            Event::BeliefEnded {
                lease,
                token,
                reason,
            } => Some((*lease, *token, *reason)),
            _ => None,
        });
        ended.collect()
    }
}

fn is_observe(message: &Msg) -> bool {
    matches!(message, Msg::Observe { .. })
}

fn is_fence(message: &Msg) -> bool {
    matches!(message, Msg::Observe { resource: None, .. })
}

fn all_leases(shard_count: u32) -> BTreeSet<LeaseName> {
    let shards = (0..shard_count).map(|s| LeaseName::Shard(ShardId(s)));
    shards.chain([LeaseName::Leader]).collect()
}

/// A rig holding every shard, fenced, with `r1` desired at `replicas`.
fn fenced_rig(replicas: u32, workers: &mut Workers) -> Rig {
    let mut rig = Rig::new(settings());
    rig.put_resource("r1", replicas, 1);
    rig.start();
    rig.pump(workers, |_, m| is_fence(m));
    rig
}

#[test]
fn registers_and_acquires_exactly_the_rendezvous_assigned_shards_and_the_leader() {
    let settings = ControllerSettings {
        shard_count: 8,
        ..settings()
    };
    let mut rig = Rig::new(settings);
    rig.put(keys::member(OTHER), Value::Holder { controller: OTHER });
    rig.start();
    let mine: BTreeSet<LeaseName> = (0..8)
        .map(ShardId)
        .filter(|&s| rendezvous_owner(s, &[ME, OTHER]) == Some(ME))
        .map(LeaseName::Shard)
        .chain([LeaseName::Leader])
        .collect();
    assert!(mine.len() > 1 && mine.len() < 9, "the test needs a split");
    let acquired: BTreeMap<LeaseName, u64> = rig
        .records
        .iter()
        .filter_map(|r| match r {
            Event::LeaseAcquired { lease, token } => Some((*lease, *token)),
            _ => None,
        })
        .collect();
    assert_eq!(acquired.keys().copied().collect::<BTreeSet<_>>(), mine);
    assert_eq!(rig.beliefs(), acquired);
    for (lease, token) in acquired {
        let kv = rig.store.get(&lease_key(lease)).expect("the key is held");
        assert_eq!((holder(&kv.value), kv.mod_revision), (Some(ME), token));
    }
    let member = rig.store.get(&keys::member(ME)).expect("registered");
    assert_eq!(member.value, Value::Holder { controller: ME });
    assert!(member.lease.is_some(), "membership hangs on the session");
}

#[test]
fn stops_acting_once_validity_passed_without_a_keepalive_reply() {
    let settings = ControllerSettings {
        session_ttl_ms: 2_000,
        ..settings()
    };
    let validity_ms = settings.lease_validity_ms();
    let mut rig = Rig::new(settings);
    rig.put_resource("r1", 1, 1);
    rig.start();
    let mut workers = Workers::default();
    rig.pump(&mut workers, |_, m| is_fence(m));
    assert_eq!(
        rig.pass_observes().len(),
        WORKERS.len(),
        "a pass is observing"
    );
    let believed = rig.beliefs();
    assert_eq!(
        believed.keys().copied().collect::<BTreeSet<_>>(),
        all_leases(4)
    );
    // No tick fires: no keep-alive is sent, let alone answered.
    rig.harness.advance(validity_ms * MS);
    rig.pump(&mut workers, |_, m| is_observe(m));
    assert!(rig.acts().is_empty(), "no action after validity passed");
    let expired: BTreeMap<LeaseName, u64> = rig
        .ended()
        .into_iter()
        .map(|(lease, token, reason)| {
            assert_eq!(reason, BeliefEnd::Expired);
            (lease, token)
        })
        .collect();
    assert_eq!(expired, believed, "every belief ended once, Expired");
    assert!(rig.beliefs().is_empty());
}

#[test]
fn validity_counts_from_when_the_keepalive_was_sent() {
    let settings = ControllerSettings {
        session_ttl_ms: 2_000,
        ..settings()
    };
    let validity_ms = settings.lease_validity_ms();
    let keepalive_ms = settings.keepalive_interval_ms;
    let mut rig = Rig::new(settings);
    rig.start(); // The grant is sent at 0.
    rig.manual_store = true;
    rig.fire(|t| *t == Timer::Tick);
    assert_eq!(rig.now_ms(), keepalive_ms);
    assert!(matches!(
        rig.to_store.back(),
        Some((_, StoreRequest::LeaseKeepAlive { .. }))
    ));
    // The reply comes late, and does extend validity past the grant's.
    rig.harness.advance(validity_ms / 2 * MS);
    rig.serve_one();
    rig.harness
        .advance((validity_ms + 1) * MS - rig.harness.now_ns());
    rig.fire(|t| *t == Timer::Tick);
    assert!(rig.ended().is_empty(), "renewed by the keep-alive");
    // But only from when it was sent, not from when it was answered.
    rig.fire(|t| *t == Timer::Custom(VALIDITY_TIMER));
    assert_eq!(rig.now_ms(), keepalive_ms + validity_ms);
    assert_eq!(rig.ended().len(), all_leases(4).len());
    assert!(rig.ended().iter().all(|(_, _, r)| *r == BeliefEnd::Expired));
}

#[test]
fn with_the_no_drift_margin_bug_validity_runs_the_full_ttl_from_the_reply() {
    let settings = ControllerSettings {
        session_ttl_ms: 2_000,
        bugs: [Bug::LeaseNoDriftMargin].into(),
        ..settings()
    };
    let (ttl_ms, keepalive_ms) = (settings.session_ttl_ms, settings.keepalive_interval_ms);
    let mut rig = Rig::new(settings);
    rig.start();
    rig.manual_store = true;
    rig.fire(|t| *t == Timer::Tick);
    let reply_ms = keepalive_ms + 300;
    rig.harness.advance(300 * MS);
    rig.serve_one();
    rig.fire(|t| *t == Timer::Custom(VALIDITY_TIMER));
    assert_eq!(rig.now_ms(), reply_ms + ttl_ms, "past the store's expiry");
    assert_eq!(rig.ended().len(), all_leases(4).len());
}

#[test]
fn with_the_act_after_renew_failure_bug_beliefs_outlive_every_deadline() {
    let settings = ControllerSettings {
        session_ttl_ms: 2_000,
        bugs: [Bug::ActAfterRenewFailure].into(),
        ..settings()
    };
    let ttl_ms = settings.session_ttl_ms;
    let mut rig = Rig::new(settings);
    rig.start();
    let believed = rig.beliefs();
    assert!(!believed.is_empty());
    // Keep-alives go unanswered for three TTLs.
    rig.manual_store = true;
    rig.harness.advance(3 * ttl_ms * MS);
    rig.fire(|t| *t == Timer::Tick);
    assert!(rig.ended().is_empty(), "nobody told it the lease is gone");
    assert_eq!(rig.beliefs(), believed);
}

#[test]
fn fences_every_worker_before_the_first_action_of_a_shard() {
    let mut rig = Rig::new(settings());
    rig.put_resource("r1", 1, 1);
    rig.start();
    let beliefs = rig.beliefs();
    let fences: BTreeSet<(NodeId, ShardId, u64)> = rig
        .to_workers
        .iter()
        .filter_map(|(to, m)| match m {
            Msg::Observe {
                shard,
                token,
                resource: None,
                ..
            } => Some((*to, *shard, *token)),
            _ => None,
        })
        .collect();
    let expected: BTreeSet<(NodeId, ShardId, u64)> = (0..4)
        .map(ShardId)
        .flat_map(|s| WORKERS.map(|w| (w, s, beliefs[&LeaseName::Shard(s)])))
        .collect();
    assert_eq!(fences, expected);
    let mut workers = Workers::default();
    rig.pump(&mut workers, |to, m| to == WORKERS[0] && is_fence(m));
    // A change arrives while one worker is not fenced yet: it waits.
    rig.deliver(STORE, changed("r1"));
    assert!(rig.pass_observes().is_empty() && rig.acts().is_empty());
    rig.pump(&mut workers, |_, m| is_observe(m));
    assert_eq!(rig.acts().len(), 1, "acts once every worker is fenced");
}

#[test]
fn a_pass_starts_missing_ordinals_with_the_shard_token() {
    let mut workers = Workers::default();
    let mut rig = fenced_rig(2, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    let token = rig.shard_token("r1");
    let mut acts = rig.acts();
    acts.sort_by_key(|(_, _, action)| action.id);
    assert_eq!(acts.len(), 2);
    for (ordinal, (to, _, action)) in (0u32..).zip(acts) {
        let start = ActionKind::Start {
            resource: "r1".to_string(),
            ordinal,
            generation: 1,
        };
        assert_eq!(action.kind, start);
        assert_eq!((action.shard, action.token), (shard_of("r1", 4), token));
        assert_eq!(to, topology().worker_for("r1", ordinal));
        assert_eq!((action.id.controller, action.id.boot), (ME, 0));
    }
}

#[test]
fn an_unacknowledged_start_is_resent_with_the_same_action_id() {
    let mut workers = Workers::default();
    let mut rig = fenced_rig(1, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    let [(to, first_request, first)] = rig.acts().try_into().unwrap();
    rig.to_workers.clear(); // The Start is lost.
    rig.fire(|t| *t == Timer::RequestTimeout(first_request));
    rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    rig.pump(&mut workers, |_, m| is_observe(m));
    let [(to_again, request, again)] = rig.acts().try_into().unwrap();
    assert_eq!((to_again, &again), (to, &first), "the same action again");
    assert_ne!(request, first_request, "in a new request");
    // Once acknowledged, the ordinal is diffed again: it runs, so the
    // pass converges and writes the status.
    rig.pump(&mut workers, |_, _| true);
    rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    rig.pump(&mut workers, |_, _| true);
    assert_eq!(workers.instances.len(), 1);
    let status = Status {
        observed_generation: 1,
        ready_replicas: 1,
    };
    let token = rig.shard_token("r1");
    assert!(rig.records.iter().any(|record| matches!(record,
        Event::StatusWritten { resource, status: written, token: used, revision }
            if resource == "r1" && *written == status && *used == token && *revision > token)));
}

#[test]
fn a_generation_change_stops_before_starting() {
    let mut workers = Workers::default();
    workers.running(topology().worker_for("r1", 0), "r1", 0, 1);
    let old = workers.instances[0].id;
    let mut rig = Rig::new(settings());
    rig.put_resource("r1", 1, 2);
    rig.start();
    rig.pump(&mut workers, |_, m| is_observe(m));
    let [(_, _, stop)] = rig.acts().try_into().unwrap();
    assert_eq!(stop.kind, ActionKind::Stop { instance: old });
    rig.pump(&mut workers, |_, m| matches!(m, Msg::Act { .. }));
    assert!(workers.instances.is_empty(), "stopped, nothing started yet");
    assert!(rig.acts().is_empty());
    // The verifying pass (here at once: the listing made the key dirty
    // while the first pass ran) sees nothing running and starts.
    if rig.pass_observes().is_empty() {
        rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    }
    rig.pump(&mut workers, |_, m| is_observe(m));
    let [(_, _, start)] = rig.acts().try_into().unwrap();
    let kind = ActionKind::Start {
        resource: "r1".to_string(),
        ordinal: 0,
        generation: 2,
    };
    assert_eq!(start.kind, kind);
}

/// A rig whose one pass sent `r1`'s one start, answered with `outcome`
/// (made from the shard's token); returns the rig, its workers, the token,
/// the start and what the answer's handler recorded.
fn answer_the_start(
    outcome: impl FnOnce(u64) -> ActionOutcome,
) -> (Rig, Workers, u64, Action, Vec<Event>) {
    let mut workers = Workers::default();
    let mut rig = fenced_rig(1, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    let token = rig.shard_token("r1");
    let [(to, request_id, action)] = rig.acts().try_into().unwrap();
    rig.to_workers.clear();
    let answer = Msg::Acted {
        request_id,
        action_id: action.id,
        outcome: outcome(token),
    };
    let records = rig.deliver(to, answer);
    (rig, workers, token, action, records)
}

#[test]
fn a_rejected_outcome_ends_the_belief_with_fenced() {
    let (mut rig, _, token, _, _) = answer_the_start(|token| ActionOutcome::Rejected {
        highest_token: token + 10,
    });
    let shard = LeaseName::Shard(shard_of("r1", 4));
    assert_eq!(rig.ended(), vec![(shard, token, BeliefEnd::Fenced)]);
    // Nothing more happens for the resource.
    rig.deliver(STORE, changed("r1"));
    assert!(rig.to_workers.is_empty());
    let requeue = Timer::Requeue("r1".to_string());
    assert!(!rig.harness.pending_timers().contains(&requeue));
}

#[test]
fn a_busy_worker_gets_the_same_action_again_after_a_backoff() {
    let (mut rig, mut workers, token, action, records) = answer_the_start(|_| ActionOutcome::Busy);
    assert!(rig.ended().is_empty(), "no belief ends");
    assert_eq!(rig.shard_token("r1"), token);
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Event::BackoffEngaged { resource, .. } if resource == "r1")),
        "the pass backs off: {records:?}"
    );
    // The next pass resends that very action: a copy of it still in
    // flight can only be deduplicated, never run beside a replacement.
    rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    rig.pump(&mut workers, |_, m| is_observe(m));
    let [(_, _, again)] = rig.acts().try_into().unwrap();
    assert_eq!(again, action);
}

#[test]
fn an_answer_that_comes_after_its_pass_failed_does_not_free_the_ordinal() {
    let mut workers = Workers::default();
    let mut rig = fenced_rig(2, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    let mut acts = rig.acts();
    acts.sort_by_key(|(_, _, action)| action.id);
    let [(to_a, request_a, a), (to_b, request_b, b)] = acts.try_into().unwrap();
    rig.to_workers.clear();
    // A's worker is busy: the pass fails while B's start is still on its
    // way. The next pass observes before B runs...
    rig.deliver(
        to_a,
        Msg::Acted {
            request_id: request_a,
            action_id: a.id,
            outcome: ActionOutcome::Busy,
        },
    );
    rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    let observes: Vec<(NodeId, Msg)> = rig.to_workers.drain(..).collect();
    let answers: Vec<(NodeId, Msg)> = observes
        .iter()
        .map(|(worker, m)| (*worker, workers.reply(*worker, m)))
        .collect();
    // ... then B runs, and its answer comes back to the failed pass.
    let started = workers.act(to_b, &b);
    rig.deliver(
        to_b,
        Msg::Acted {
            request_id: request_b,
            action_id: b.id,
            outcome: started,
        },
    );
    for (worker, answer) in answers {
        rig.deliver(worker, answer);
    }
    // The pass saw no instance for B's ordinal, yet it resends B rather
    // than start a second one.
    let resent: Vec<Action> = rig
        .acts()
        .into_iter()
        .map(|(_, _, action)| action)
        .collect();
    assert!(resent.contains(&b), "{resent:?}");
    assert!(resent.iter().all(|action| action.id <= b.id), "{resent:?}");
}

#[test]
fn every_message_to_a_worker_says_what_this_boot_has_settled_there() {
    let settled = |rig: &Rig| -> Vec<(NodeId, Settled)> {
        let sent = rig.to_workers.iter().map(|(to, m)| match m {
            Msg::Act { settled, .. } | Msg::Observe { settled, .. } => (*to, settled.clone()),
            other => panic!("not for a worker: {other:?}"),
        });
        sent.collect()
    };
    let mut workers = Workers::default();
    let mut rig = fenced_rig(4, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    let acts = rig.acts();
    assert_eq!(acts.len(), 4);
    let last = acts.iter().map(|(_, _, a)| a.id.sequence).max().unwrap();
    // Every action is outstanding: each worker hears of those sent to it
    // so far (the one the message carries included), and of nothing else.
    for (to, mark) in settled(&rig) {
        assert_eq!(mark.boot, 0);
        assert!(mark.below <= last + 1, "to {to}");
        assert_eq!(mark.outstanding.last(), Some(&(mark.below - 1)));
        for sequence in &mark.outstanding {
            let target = acts.iter().find(|(_, _, a)| a.id.sequence == *sequence);
            assert_eq!(
                target.map(|(w, _, _)| *w),
                Some(to),
                "{sequence} was sent to {to}"
            );
        }
    }
    // All answered: the next pass tells every worker that everything up
    // to the last sequence used is settled.
    rig.pump(&mut workers, |_, m| matches!(m, Msg::Act { .. }));
    rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    let marks = settled(&rig);
    assert_eq!(marks.len(), WORKERS.len(), "one observe per worker");
    for (to, mark) in marks {
        let expected = Settled {
            boot: 0,
            below: last + 1,
            outstanding: Vec::new(),
        };
        assert_eq!(mark, expected, "to {to}");
    }
}

#[test]
fn actions_of_a_shard_given_up_are_no_longer_told_as_outstanding() {
    // Four starts outstanding, then one is rejected: the belief ends and
    // the shard's outstanding actions are dropped with it.
    let mut workers = Workers::default();
    let mut rig = fenced_rig(4, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    let acts = rig.acts();
    assert_eq!(acts.len(), 4);
    let token = rig.shard_token("r1");
    rig.to_workers.clear();
    let (to, request_id, action) = acts[0].clone();
    let rejected = ActionOutcome::Rejected {
        highest_token: token + 10,
    };
    rig.deliver(
        to,
        Msg::Acted {
            request_id,
            action_id: action.id,
            outcome: rejected,
        },
    );
    let shard = LeaseName::Shard(shard_of("r1", 4));
    assert_eq!(rig.ended(), vec![(shard, token, BeliefEnd::Fenced)]);
    // The next round adopts the key again and fences every worker: none
    // is told of a dropped action as outstanding.
    rig.fire(|t| *t == Timer::Custom(MEMBERSHIP_TIMER));
    let fences: Vec<&Settled> = rig
        .to_workers
        .iter()
        .filter_map(|(_, m)| match m {
            Msg::Observe {
                resource: None,
                settled,
                ..
            } => Some(settled),
            _ => None,
        })
        .collect();
    assert_eq!(fences.len(), WORKERS.len(), "{:?}", rig.to_workers);
    for settled in fences {
        assert!(settled.outstanding.is_empty(), "{settled:?}");
    }
}

fn changed(resource: &str) -> Msg {
    Msg::Changed {
        key: keys::resource(resource),
        revision: 1_000,
    }
}

#[test]
fn failed_passes_back_off_exponentially_up_to_the_cap() {
    let settings = ControllerSettings {
        backoff_base_ms: 50,
        backoff_cap_ms: 300,
        ..settings()
    };
    let mut rig = Rig::new(settings);
    rig.put_resource("r1", 1, 1);
    rig.start();
    let mut workers = Workers::default();
    rig.pump(&mut workers, |_, m| is_fence(m));
    let mut delays_ms = Vec::new();
    for _ in 0..5 {
        let observes = rig.pass_observes();
        rig.to_workers.clear(); // The workers do not answer.
        rig.timers.clear();
        let recorded =
            rig.fire(|t| matches!(t, Timer::RequestTimeout(id) if observes.contains(id)));
        let [Event::BackoffEngaged { delay_ms, .. }] = recorded[..] else {
            panic!("expected one backoff, got {recorded:?}");
        };
        let requeue = (delay_ms * MS, Timer::Requeue("r1".to_string()));
        assert!(rig.timers.contains(&requeue), "requeued after the delay");
        delays_ms.push(delay_ms);
        rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    }
    assert_eq!(delays_ms, [50, 100, 200, 300, 300]);
    // A pass that gets through resets the backoff.
    rig.pump(&mut workers, |_, _| true);
    rig.fire(|t| *t == Timer::Requeue("r1".to_string()));
    let observes = rig.pass_observes();
    let recorded = rig.fire(|t| matches!(t, Timer::RequestTimeout(id) if observes.contains(id)));
    assert!(matches!(
        recorded[..],
        [Event::BackoffEngaged { delay_ms: 50, .. }]
    ));
}

#[test]
fn a_released_shard_belief_ends_before_its_key_is_deleted() {
    let settings = ControllerSettings {
        shard_count: 8,
        ..settings()
    };
    let mut rig = Rig::new(settings);
    rig.start();
    let mut workers = Workers::default();
    rig.pump(&mut workers, |_, m| is_fence(m));
    let before = rig.beliefs();
    rig.put(keys::member(OTHER), Value::Holder { controller: OTHER });
    rig.manual_store = true;
    rig.fire(|t| *t == Timer::Custom(MEMBERSHIP_TIMER));
    let recorded = rig.serve_one().expect("the membership read");
    let moved: BTreeSet<ShardId> = (0..8)
        .map(ShardId)
        .filter(|&s| rendezvous_owner(s, &[ME, OTHER]) == Some(OTHER))
        .collect();
    assert!(!moved.is_empty());
    // The new membership is recorded once, for the cost checker.
    let observed: Vec<&Event> = recorded
        .iter()
        .filter(|r| matches!(r, Event::MembershipObserved { .. }))
        .collect();
    assert!(
        matches!(observed[..], [Event::MembershipObserved { members, .. }] if *members == vec![ME, OTHER])
    );
    let released: BTreeSet<ShardId> = recorded
        .iter()
        .filter(|r| !matches!(r, Event::MembershipObserved { .. }))
        .map(|r| match r {
            Event::BeliefEnded {
                lease: LeaseName::Shard(shard),
                token,
                reason: BeliefEnd::Released,
            } => {
                assert_eq!(before[&LeaseName::Shard(*shard)], *token);
                *shard
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(released, moved);
    // The deletes are sent, not applied: the keys still exist while
    // nothing is done for those shards any more.
    assert_eq!(rig.to_store.len(), moved.len());
    for &shard in &moved {
        assert!(rig.store.get(&keys::shard(shard)).is_some());
    }
    let resource = (0..100)
        .map(|i| format!("r{i}"))
        .find(|r| moved.contains(&shard_of(r, 8)))
        .unwrap();
    rig.put_resource(&resource, 1, 1);
    rig.deliver(STORE, changed(&resource));
    assert_eq!(
        rig.to_store.len(),
        moved.len(),
        "no pass for a released shard"
    );
    rig.settle();
    for &shard in &moved {
        assert!(
            rig.store.get(&keys::shard(shard)).is_none(),
            "{shard} deleted"
        );
    }
}

#[test]
fn a_converged_pass_writes_the_status_fenced_by_the_shard_token() {
    let mut workers = Workers::default();
    workers.running(topology().worker_for("r1", 0), "r1", 0, 1);
    let mut rig = fenced_rig(1, &mut workers);
    rig.pump(&mut workers, |_, m| is_observe(m));
    assert!(rig.acts().is_empty());
    let status = Status {
        observed_generation: 1,
        ready_replicas: 1,
    };
    let stored = rig.store.get(&keys::status("r1")).unwrap();
    let written = Event::StatusWritten {
        resource: "r1".to_string(),
        status,
        token: rig.shard_token("r1"),
        revision: stored.mod_revision,
    };
    assert_eq!(rig.records.iter().filter(|r| **r == written).count(), 1);
    assert_eq!(stored.value, Value::Status(status));
}

#[test]
fn a_status_write_refused_by_the_store_ends_the_belief_lost() {
    let mut workers = Workers::default();
    workers.running(topology().worker_for("r1", 0), "r1", 0, 1);
    let mut rig = fenced_rig(1, &mut workers);
    let token = rig.shard_token("r1");
    let shard = shard_of("r1", 4);
    // Another controller took the shard key meanwhile.
    rig.put(keys::shard(shard), Value::Holder { controller: OTHER });
    rig.pump(&mut workers, |_, m| is_observe(m));
    assert!(
        !rig.records
            .iter()
            .any(|r| matches!(r, Event::StatusWritten { .. }))
    );
    let lease = LeaseName::Shard(shard);
    assert_eq!(rig.ended(), vec![(lease, token, BeliefEnd::Lost)]);
}

#[test]
fn a_lost_session_ends_every_belief_and_starts_over() {
    let mut rig = Rig::new(settings());
    rig.start();
    let before = rig.beliefs();
    let lease = rig.store.get(&keys::member(ME)).unwrap().lease.unwrap();
    rig.store
        .apply(rig.now_ms(), StoreRequest::LeaseRevoke { lease });
    rig.fire(|t| *t == Timer::Tick);
    let lost: BTreeMap<LeaseName, u64> = rig
        .ended()
        .into_iter()
        .map(|(lease, token, reason)| {
            assert_eq!(reason, BeliefEnd::Lost);
            (lease, token)
        })
        .collect();
    assert_eq!(lost, before);
    // A new session registered and took everything back, newer tokens.
    let member = rig.store.get(&keys::member(ME)).expect("registered again");
    assert_ne!(member.lease, Some(lease));
    let after = rig.beliefs();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(after.iter().all(|(lease, token)| *token > before[lease]));
}

#[test]
fn a_restarted_controller_adopts_its_keys_with_fresh_tokens() {
    let mut rig = Rig::new(settings());
    rig.start();
    let before = rig.beliefs();
    let old_session = rig.store.get(&keys::member(ME)).unwrap().lease;
    rig.records.clear();
    let node = ControllerNode::new(topology(), settings());
    let out = rig.harness.restart(Box::new(node));
    rig.to_store.clear(); // Requests of the dead boot.
    rig.absorb(out);
    let after = rig.beliefs();
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (lease, token) in &after {
        assert!(*token > before[lease], "{lease:?} gets a fresh token");
        let kv = rig.store.get(&lease_key(*lease)).unwrap();
        assert_eq!(kv.mod_revision, *token);
        assert_ne!(kv.lease, old_session, "moved onto the new session");
    }
}

#[test]
fn duplicated_store_replies_start_each_belief_once() {
    let mut rig = Rig::new(settings());
    rig.duplicate_replies = true;
    rig.start();
    let acquired = rig
        .records
        .iter()
        .filter(|r| matches!(r, Event::LeaseAcquired { .. }))
        .count();
    assert_eq!(acquired, all_leases(4).len());
    // `beliefs` panics on a belief started twice.
    assert_eq!(
        rig.beliefs().keys().copied().collect::<BTreeSet<_>>(),
        all_leases(4)
    );
}
