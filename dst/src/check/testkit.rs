//! Hand-built histories for the checkers' tests: a builder and one helper
//! per event, so a test reads as the story of a run.

use sim::{Fault, HistoryEntry, NodeId, ScheduledFault};

use super::{CheckInput, CheckReport, Verdict, check};
use plane::config::Topology;
use plane::protocol::{
    ActionId, ApiOp, ApiResponse, BeliefEnd, Event, Instance, InstanceId, Intent, LeaseName,
    Recovery, Resource, ResourceView, ResponseBody, Spec, Status, status,
};
use plane::shard::{ShardId, shard_of};

/// Shards in every test history.
pub(crate) const SHARDS: u32 = 4;
pub(crate) const STORE: NodeId = NodeId(0);
pub(crate) const BILLING: NodeId = NodeId(1);
pub(crate) const API_A: NodeId = NodeId(2);
pub(crate) const API_B: NodeId = NodeId(3);
pub(crate) const CTRL_A: NodeId = NodeId(4);
pub(crate) const CTRL_B: NodeId = NodeId(5);
pub(crate) const CTRL_C: NodeId = NodeId(6);
pub(crate) const WORKER_A: NodeId = NodeId(7);
pub(crate) const WORKER_B: NodeId = NodeId(8);
pub(crate) const CLIENT_A: NodeId = NodeId(9);
pub(crate) const CLIENT_B: NodeId = NodeId(10);

/// Milliseconds to nanoseconds: tests speak in milliseconds.
pub(crate) fn ms(milliseconds: u64) -> u64 {
    milliseconds * sim::MILLISECOND_NS
}

/// A history under construction, with the run's faults and bounds.
pub(crate) struct History {
    pub entries: Vec<HistoryEntry<Event>>,
    pub faults: Vec<ScheduledFault>,
    pub topology: Topology,
    pub healed_ns: u64,
    pub end_ns: u64,
    /// When a message was lost or slowed or a BUGGIFY point fired.
    pub disturbances_ns: Vec<u64>,
}

impl History {
    /// Empty; faults healed at 0, the run ends at 10 s.
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            faults: Vec::new(),
            topology: Topology {
                store: STORE,
                billing: BILLING,
                apis: vec![API_A, API_B],
                controllers: vec![CTRL_A, CTRL_B, CTRL_C],
                workers: vec![WORKER_A, WORKER_B],
                clients: vec![CLIENT_A, CLIENT_B],
            },
            healed_ns: 0,
            end_ns: ms(10_000),
            disturbances_ns: Vec::new(),
        }
    }

    /// The network or a BUGGIFY point disturbed the run at `time_ms`.
    pub(crate) fn disturb(&mut self, time_ms: u64) {
        self.disturbances_ns.push(ms(time_ms));
        self.disturbances_ns.sort_unstable();
    }

    /// Appends `event` recorded by `node` at `time_ms`; the trace index is
    /// ten times the entry's position, as other trace entries sit between.
    pub(crate) fn at(&mut self, time_ms: u64, node: NodeId, event: Event) -> &mut Self {
        let trace_index = 10 * self.entries.len() as u64;
        self.entries.push(HistoryEntry {
            time_ns: ms(time_ms),
            node,
            trace_index,
            event,
        });
        self
    }

    /// The trace index of the last entry appended.
    pub(crate) fn last_index(&self) -> u64 {
        self.entries.last().expect("an entry").trace_index
    }

    /// `node` crashes at `time_ms`, restarting after `restart_after_ms`.
    pub(crate) fn crash(&mut self, time_ms: u64, node: NodeId, restart_after_ms: Option<u64>) {
        self.faults.push(ScheduledFault {
            at_ns: ms(time_ms),
            fault: Fault::Crash {
                node,
                restart_after_ns: restart_after_ms.map(ms),
            },
        });
    }

    /// `node` reboots at `time_ms`, back after `restart_after_ms`.
    pub(crate) fn reboot(&mut self, time_ms: u64, node: NodeId, restart_after_ms: u64) {
        self.faults.push(ScheduledFault {
            at_ns: ms(time_ms),
            fault: Fault::Reboot {
                node,
                restart_after_ns: ms(restart_after_ms),
            },
        });
    }

    /// `node` pauses at `time_ms` for `duration_ms`.
    pub(crate) fn pause(&mut self, time_ms: u64, node: NodeId, duration_ms: u64) {
        self.faults.push(ScheduledFault {
            at_ns: ms(time_ms),
            fault: Fault::Pause {
                node,
                duration_ns: ms(duration_ms),
            },
        });
    }

    /// Faults healed at `healed_ms`, the run ended at `end_ms`.
    pub(crate) fn ending(&mut self, healed_ms: u64, end_ms: u64) {
        self.healed_ns = ms(healed_ms);
        self.end_ns = ms(end_ms);
    }

    pub(crate) fn input(&self) -> CheckInput<'_> {
        CheckInput {
            history: &self.entries,
            faults: &self.faults,
            topology: &self.topology,
            shard_count: SHARDS,
            healed_ns: self.healed_ns,
            end_ns: self.end_ns,
            liveness_bound_ns: ms(10_000),
            request_timeout_ns: ms(600),
            lease_ttl_ns: ms(2_000),
            disturbances_ns: &self.disturbances_ns,
        }
    }

    pub(crate) fn report(&self) -> CheckReport {
        check(&self.input())
    }

    /// The verdict of `property`; panics if there is none.
    pub(crate) fn verdict(&self, property: &str) -> Verdict {
        self.report()
            .verdict(property)
            .unwrap_or_else(|| panic!("no verdict {property}"))
            .clone()
    }

    /// How many times `property` was violated.
    pub(crate) fn violations(&self, property: &str) -> u64 {
        self.verdict(property).violation_count
    }

    /// A whole, correct life of one create through key `key` with
    /// `replicas` instances, starting at 100 ms and done by 1 s: the
    /// controller holds every shard and the leader lease throughout.
    pub(crate) fn clean_create(&mut self, key: &str, id: &str, replicas: u32) {
        self.hold_everything(CTRL_A, 1);
        let resource = resource(id, replicas, 1);
        let fingerprint = 77;
        let create = ApiOp::Create {
            name: resource.name.clone(),
            spec: resource.spec,
        };
        self.at(
            100,
            CLIENT_A,
            sent_op(key, fingerprint, 0, Intent::Fresh, create),
        );
        self.at(110, API_A, started(key, fingerprint));
        self.at(120, BILLING, charged(key, 1));
        self.at(
            130,
            API_A,
            commit(id, key, fingerprint, true, Some(&resource), 10),
        );
        self.at(130, API_A, finished(key, fingerprint, created(&resource)));
        self.at(
            140,
            CLIENT_A,
            received(key, fingerprint, created(&resource)),
        );
        for ordinal in 0..replicas {
            let instance = instance(WORKER_A, u64::from(ordinal), id, ordinal, 1);
            self.at(
                200,
                WORKER_A,
                start(CTRL_A, u64::from(ordinal), 1, &instance),
            );
        }
        self.at(300, CTRL_A, status_written(id, 1, replicas, 1));
    }

    /// `controller` acquires and believes every shard and the leader lease
    /// at 1 ms with `token`.
    pub(crate) fn hold_everything(&mut self, controller: NodeId, token: u64) {
        let leases = (0..SHARDS)
            .map(|shard| LeaseName::Shard(ShardId(shard)))
            .chain([LeaseName::Leader]);
        for lease in leases {
            self.at(1, controller, acquired(lease, token));
            self.at(1, controller, belief(lease, token));
        }
    }
}

pub(crate) fn resource(id: &str, replicas: u32, generation: u64) -> Resource {
    Resource {
        id: id.to_string(),
        name: format!("name-of-{id}"),
        spec: Spec { replicas, image: 1 },
        generation,
    }
}

pub(crate) fn created(resource: &Resource) -> ApiResponse {
    ApiResponse {
        status: status::CREATED,
        body: ResponseBody::Resource(resource.clone()),
    }
}

pub(crate) fn error(status: u16) -> ApiResponse {
    ApiResponse {
        status,
        body: ResponseBody::Error {
            message: format!("status {status}"),
        },
    }
}

/// The request id of `key`'s `attempt` in the test histories.
pub(crate) fn request_id(key: &str, attempt: u32) -> u64 {
    sim::stable_hash(&key) % 1_000_000 * 100 + u64::from(attempt)
}

/// The first send of a create with a fresh key.
pub(crate) fn sent(key: &str, fingerprint: u64, attempt: u32) -> Event {
    sent_op(
        key,
        fingerprint,
        attempt,
        Intent::Fresh,
        ApiOp::Create {
            name: key.to_string(),
            spec: Spec {
                replicas: 1,
                image: 1,
            },
        },
    )
}

/// A send of `op` under `key` (logical request: the key's hash).
pub(crate) fn sent_op(
    key: &str,
    fingerprint: u64,
    attempt: u32,
    intent: Intent,
    op: ApiOp,
) -> Event {
    Event::RequestSent {
        request_id: request_id(key, attempt),
        api: API_A,
        key: Some(key.to_string()),
        fingerprint,
        attempt,
        logical: sim::stable_hash(&key),
        intent,
        op,
    }
}

/// A read of `id` as request `request_id`.
pub(crate) fn read_sent(id: &str, request_id: u64) -> Event {
    Event::RequestSent {
        request_id,
        api: API_A,
        key: None,
        fingerprint: 0,
        attempt: 0,
        logical: request_id,
        intent: Intent::Read,
        op: ApiOp::Get { id: id.to_string() },
    }
}

/// A list of the page after `after` of at most `limit`, as request
/// `request_id`.
pub(crate) fn list_sent(after: Option<&str>, limit: u32, request_id: u64) -> Event {
    Event::RequestSent {
        request_id,
        api: API_A,
        key: None,
        fingerprint: 0,
        attempt: 0,
        logical: request_id,
        intent: Intent::Read,
        op: ApiOp::List {
            after: after.map(String::from),
            limit,
        },
    }
}

/// A get's 200: `resource` with `status`.
pub(crate) fn read_ok(resource: &Resource, status: Option<Status>) -> ApiResponse {
    ApiResponse {
        status: status::OK,
        body: ResponseBody::Read(ResourceView {
            resource: resource.clone(),
            status,
        }),
    }
}

/// A list's 200: `items` with their statuses, and the next cursor.
pub(crate) fn page(items: &[(&Resource, Option<Status>)], next: Option<&str>) -> ApiResponse {
    let items = items
        .iter()
        .map(|&(resource, status)| ResourceView {
            resource: resource.clone(),
            status,
        })
        .collect();
    ApiResponse {
        status: status::OK,
        body: ResponseBody::Page {
            items,
            next: next.map(String::from),
        },
    }
}

/// A status as a controller writes it.
pub(crate) fn observed(generation: u64, ready_replicas: u32) -> Status {
    Status {
        observed_generation: generation,
        ready_replicas,
    }
}

/// The answer to request `request_id` (no key: a read).
pub(crate) fn read_received(request_id: u64, response: ApiResponse) -> Event {
    Event::ResponseReceived {
        request_id,
        key: None,
        fingerprint: 0,
        response,
        replayed: false,
    }
}

pub(crate) fn received(key: &str, fingerprint: u64, response: ApiResponse) -> Event {
    Event::ResponseReceived {
        request_id: request_id(key, 0),
        key: Some(key.to_string()),
        fingerprint,
        response,
        replayed: false,
    }
}

pub(crate) fn started(key: &str, fingerprint: u64) -> Event {
    Event::KeyStarted {
        key: key.to_string(),
        fingerprint,
    }
}

pub(crate) fn finished(key: &str, fingerprint: u64, response: ApiResponse) -> Event {
    Event::KeyFinished {
        key: key.to_string(),
        fingerprint,
        response,
        by_completer: false,
    }
}

pub(crate) fn commit(
    id: &str,
    key: &str,
    fingerprint: u64,
    created: bool,
    resource: Option<&Resource>,
    revision: u64,
) -> Event {
    Event::DesiredWritten {
        id: id.to_string(),
        resource: resource.cloned(),
        revision,
        writer: API_A,
        ledger: Some((key.to_string(), fingerprint)),
        created,
    }
}

pub(crate) fn mismatch(key: &str, stored_fingerprint: u64, fingerprint: u64) -> Event {
    Event::KeyMismatch {
        key: key.to_string(),
        stored_fingerprint,
        fingerprint,
    }
}

pub(crate) fn charged(key: &str, charge_id: u64) -> Event {
    Event::ChargeExecuted {
        key: key.to_string(),
        charge_id,
        amount_cents: 100,
    }
}

pub(crate) fn acquired(lease: LeaseName, token: u64) -> Event {
    Event::LeaseAcquired { lease, token }
}

pub(crate) fn belief(lease: LeaseName, token: u64) -> Event {
    Event::BeliefStarted { lease, token }
}

pub(crate) fn belief_end(lease: LeaseName, token: u64) -> Event {
    Event::BeliefEnded {
        lease,
        token,
        reason: BeliefEnd::Expired,
    }
}

pub(crate) fn shard_lease(shard: u32) -> LeaseName {
    LeaseName::Shard(ShardId(shard))
}

/// The shard lease of `resource` in the test histories.
pub(crate) fn lease_of(resource: &str) -> LeaseName {
    LeaseName::Shard(shard_of(resource, SHARDS))
}

/// A status write committed just after its holder's acquisition.
pub(crate) fn status_written(resource: &str, generation: u64, ready: u32, token: u64) -> Event {
    status_written_at(resource, generation, ready, token, token + 1)
}

pub(crate) fn status_written_at(
    resource: &str,
    generation: u64,
    ready: u32,
    token: u64,
    revision: u64,
) -> Event {
    Event::StatusWritten {
        resource: resource.to_string(),
        status: Status {
            observed_generation: generation,
            ready_replicas: ready,
        },
        token,
        revision,
    }
}

pub(crate) fn desired_written(id: &str, resource: Option<&Resource>, revision: u64) -> Event {
    Event::DesiredWritten {
        id: id.to_string(),
        resource: resource.cloned(),
        revision,
        writer: API_A,
        ledger: None,
        created: false,
    }
}

/// A status the store committed for `writer` under `fence`.
pub(crate) fn status_stored_by(
    id: &str,
    status: Option<Status>,
    revision: u64,
    writer: NodeId,
    fence: Option<u64>,
) -> Event {
    Event::StatusStored {
        id: id.to_string(),
        status,
        revision,
        writer,
        fence,
    }
}

pub(crate) fn status_stored(id: &str, status: Option<Status>, revision: u64) -> Event {
    status_stored_by(id, status, revision, CTRL_A, Some(1))
}

pub(crate) fn ledger_written(
    key: &str,
    fingerprint: u64,
    recovery: Recovery,
    revision: u64,
) -> Event {
    Event::LedgerWritten {
        key: key.to_string(),
        fingerprint,
        recovery,
        revision,
    }
}

pub(crate) fn fence(shard: ShardId, token: u64) -> Event {
    Event::FenceRaised { shard, token }
}

pub(crate) fn action(controller: NodeId, sequence: u64) -> ActionId {
    ActionId {
        controller,
        boot: 0,
        sequence,
    }
}

/// An instance of `resource` in its proper shard.
pub(crate) fn instance(
    worker: NodeId,
    sequence: u64,
    resource: &str,
    ordinal: u32,
    generation: u64,
) -> Instance {
    Instance {
        id: InstanceId { worker, sequence },
        resource: resource.to_string(),
        ordinal,
        generation,
        shard: shard_of(resource, SHARDS),
    }
}

pub(crate) fn start(controller: NodeId, sequence: u64, token: u64, instance: &Instance) -> Event {
    Event::InstanceStarted {
        action: action(controller, sequence),
        token,
        instance: instance.clone(),
    }
}

pub(crate) fn stop(controller: NodeId, sequence: u64, token: u64, instance: &Instance) -> Event {
    Event::InstanceStopped {
        action: action(controller, sequence),
        token,
        instance: instance.clone(),
    }
}
