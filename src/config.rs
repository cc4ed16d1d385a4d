//! Who is who (the topology) and each node kind's settings, with their
//! defaults documented in one place. Scenarios override these.

use serde::{Deserialize, Serialize};
use sim::NodeId;

use crate::store::StoreLimits;

/// Node ids by role. Every node learns the topology at construction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Topology {
    /// The one store.
    pub store: NodeId,
    /// The one billing service.
    pub billing: NodeId,
    /// API nodes.
    pub apis: Vec<NodeId>,
    /// Controllers.
    pub controllers: Vec<NodeId>,
    /// Workers (the data plane).
    pub workers: Vec<NodeId>,
    /// Clients (the workload).
    pub clients: Vec<NodeId>,
}

impl Topology {
    /// The worker that runs every action of one (resource, ordinal): the one
    /// place its actions are serialized and its fence is checked.
    pub fn worker_for(&self, resource: &str, ordinal: u32) -> NodeId {
        assert!(!self.workers.is_empty(), "a topology has workers");
        let key = sim::stable_hash(&(resource, ordinal));
        self.workers[crate::shard::jump_hash(key, self.workers.len() as u32) as usize]
    }
}

/// Settings of the store node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Bounds on keys, values, transactions and leases.
    pub limits: StoreLimits,
}

/// Settings of API nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// How long to wait for the store or billing before giving up on a step.
    pub request_timeout_ms: u64,
    /// TTL of the API node's session lease, which its ledger locks hang on.
    pub session_ttl_ms: u64,
    /// How often the session lease is kept alive.
    pub keepalive_interval_ms: u64,
    /// How often the completer scans the ledger for abandoned keys.
    pub completer_interval_ms: u64,
    /// The published lifetime of an idempotency key.
    pub idempotency_ttl_ms: u64,
    /// What a create costs.
    pub charge_cents: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            request_timeout_ms: 300,
            session_ttl_ms: 3_000,
            keepalive_interval_ms: 500,
            completer_interval_ms: 1_000,
            idempotency_ttl_ms: 24 * 3_600 * 1_000,
            charge_cents: 100,
        }
    }
}

/// Settings of controllers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerSettings {
    /// Resources map to this many shards by jump consistent hash.
    pub shard_count: u32,
    /// TTL of the controller's session lease (membership, shard and leader
    /// keys all hang on it).
    pub session_ttl_ms: u64,
    /// How often the session lease is kept alive (well under the TTL).
    pub keepalive_interval_ms: u64,
    /// The largest clock drift, in ppm, the scenario allows on any node: the
    /// lease validity margin is computed from it.
    pub max_drift_ppm: u32,
    /// Extra safety margin subtracted from lease validity.
    pub lease_margin_ms: u64,
    /// How often membership is read and shard ownership adjusted.
    pub membership_interval_ms: u64,
    /// How often every owned resource is requeued (level-triggered resync).
    pub resync_interval_ms: u64,
    /// How long to wait for a store or worker reply.
    pub request_timeout_ms: u64,
    /// First retry delay of a failed key; doubles per failure.
    pub backoff_base_ms: u64,
    /// Largest retry delay.
    pub backoff_cap_ms: u64,
    /// Keys processed at once.
    pub max_concurrent_reconciles: u32,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            shard_count: 16,
            session_ttl_ms: 2_000,
            keepalive_interval_ms: 400,
            max_drift_ppm: 1_000,
            lease_margin_ms: 50,
            membership_interval_ms: 500,
            resync_interval_ms: 2_000,
            request_timeout_ms: 300,
            backoff_base_ms: 50,
            backoff_cap_ms: 2_000,
            max_concurrent_reconciles: 4,
        }
    }
}

impl ControllerSettings {
    /// How long after sending a keep-alive (or grant) the holder may trust
    /// its lease, on its own monotonic clock.
    ///
    /// The store expires the lease `ttl` after it applies the request, on
    /// the store's clock. In true time, the store's TTL may be as short as
    /// `ttl * (1 - d)` and the holder's measure of it as long as
    /// `ttl * (1 + d)` for drift bound `d`; the request also reached the
    /// store after it was sent, which only helps. So the holder trusts
    /// `ttl * (1 - 2d)` minus a fixed margin, measured from the send.
    pub fn lease_validity_ms(&self) -> u64 {
        let ttl = self.session_ttl_ms;
        let drift_ms = ttl * 2 * u64::from(self.max_drift_ppm) / 1_000_000 + 1;
        ttl.saturating_sub(drift_ms)
            .saturating_sub(self.lease_margin_ms)
    }
}

/// Settings of clients (the workload).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// Time between new requests, uniform in `0.5..1.5` times this.
    pub request_interval_ms: u64,
    /// New requests stop after this time (retries go on).
    pub workload_end_ms: u64,
    /// How long a try waits for a reply before retrying with the same key.
    pub request_timeout_ms: u64,
    /// Tries per request before the client gives up.
    pub max_attempts: u32,
    /// Chance that a retry goes to another API node.
    pub retry_other_api_ppm: u32,
    /// Chance that a request is sent twice at once (a duplicated retry).
    pub duplicate_send_ppm: u32,
    /// Chance that a new request reuses an old key with a different body.
    pub reuse_key_ppm: u32,
    /// Chance that a request has no Idempotency-Key.
    pub missing_key_ppm: u32,
    /// Of new requests, the share that are updates (ppm); the rest split
    /// between creates and deletes by `delete_ppm`.
    pub update_ppm: u32,
    /// Of new requests, the share that are deletes (ppm).
    pub delete_ppm: u32,
    /// At most this many resources created per client.
    pub max_creates: u32,
    /// Replicas of a new resource, uniform in `1..=max_replicas`.
    pub max_replicas: u32,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            request_interval_ms: 400,
            workload_end_ms: 20_000,
            request_timeout_ms: 600,
            max_attempts: 20,
            retry_other_api_ppm: 300_000,
            duplicate_send_ppm: 50_000,
            reuse_key_ppm: 20_000,
            missing_key_ppm: 10_000,
            update_ppm: 300_000,
            delete_ppm: 100_000,
            max_creates: 12,
            max_replicas: 3,
        }
    }
}

/// All node settings of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The store.
    pub store: StoreSettings,
    /// API nodes.
    pub api: ApiSettings,
    /// Controllers.
    pub controller: ControllerSettings,
    /// Clients.
    pub client: ClientSettings,
}
