//! Who is who (the topology) and each node kind's settings, with their
//! defaults documented in one place. Scenarios override these.

use std::collections::BTreeSet;
use std::fmt;

use node::NodeId;
use serde::{Deserialize, Serialize};

use crate::store::StoreLimits;

/// A planted bug: a classic control-plane mistake that a node can be told
/// to make, so that a sweep proves the checkers catch it (the bug zoo, see
/// `dst::zoo`, which also holds what each bug teaches). Every bug is off unless a scenario's `bugs = [...]` or the
/// command line's `--bug NAME` turns it on. Each node resolves the set to
/// plain `bool` fields when it is built, so a bug that is off costs one
/// predictable branch and changes nothing in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bug {
    /// The API reads the ledger, then writes the key without comparing
    /// that it is still absent.
    LedgerCheckThenAct,
    /// The API charges billing before the key is recorded in the ledger.
    SideEffectBeforeLedger,
    /// Workers ignore fencing tokens.
    NoFencing,
    /// A lease holder trusts its lease for the full TTL from when the reply
    /// arrived.
    LeaseNoDriftMargin,
    /// A lease holder measures its lease on the wall clock.
    LeaseOnWallClock,
    /// A lease holder keeps acting after failed renewals until the store
    /// says the lease is gone.
    ActAfterRenewFailure,
    /// Controllers reconcile only on change notifications: no periodic
    /// resync, no requeue of a failed pass.
    EdgeTriggered,
    /// The work queue hands out a key that is already being processed.
    NoWorkqueueDedup,
    /// A replay recomputes the response from the current resource instead
    /// of returning the stored one.
    StaleReplayBody,
    /// Shards go to controllers by hash mod n over the live members instead
    /// of rendezvous hashing.
    ModuloSharding,
}

impl Bug {
    /// Every bug, in the zoo's order.
    pub fn all() -> [Bug; 10] {
        [
            Bug::LedgerCheckThenAct,
            Bug::SideEffectBeforeLedger,
            Bug::NoFencing,
            Bug::LeaseNoDriftMargin,
            Bug::LeaseOnWallClock,
            Bug::ActAfterRenewFailure,
            Bug::EdgeTriggered,
            Bug::NoWorkqueueDedup,
            Bug::StaleReplayBody,
            Bug::ModuloSharding,
        ]
    }

    /// The kebab-case name used in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Bug::LedgerCheckThenAct => "ledger-check-then-act",
            Bug::SideEffectBeforeLedger => "side-effect-before-ledger",
            Bug::NoFencing => "no-fencing",
            Bug::LeaseNoDriftMargin => "lease-no-drift-margin",
            Bug::LeaseOnWallClock => "lease-on-wall-clock",
            Bug::ActAfterRenewFailure => "act-after-renew-failure",
            Bug::EdgeTriggered => "edge-triggered",
            Bug::NoWorkqueueDedup => "no-workqueue-dedup",
            Bug::StaleReplayBody => "stale-replay-body",
            Bug::ModuloSharding => "modulo-sharding",
        }
    }

    /// The bug of a name; the error lists every allowed name.
    pub fn from_name(name: &str) -> Result<Bug, String> {
        Bug::all()
            .into_iter()
            .find(|bug| bug.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Bug::all().iter().map(|bug| bug.name()).collect();
                format!(
                    "unknown bug `{name}`: allowed {} (or `all` for the zoo)",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
        let key = node::stable_hash(&(resource, ordinal));
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
    /// How often the completer scans the unfinished keys (`/idem-open/`)
    /// for abandoned ones.
    pub completer_interval_ms: u64,
    /// The published lifetime of an idempotency key.
    pub idempotency_ttl_ms: u64,
    /// What a create costs.
    pub charge_cents: u64,
    /// Planted bugs, from the scenario's `bugs` (never from `[api]`).
    #[serde(skip)]
    pub bugs: BTreeSet<Bug>,
}

/// Ledger leases an API node's keys are spread over per key lifetime: keys
/// recorded within one share window (`idempotency_ttl_ms / 8`) hang on one
/// lease, so the store holds a handful of ledger leases per API node instead
/// of one per key (which ran its lease table full after about 10,000 keys).
const LEDGER_LEASE_SHARES: u64 = 8;

impl ApiSettings {
    /// How long after asking for a ledger lease an API node may still hang
    /// new keys on it (its own monotonic time).
    pub fn ledger_lease_share_ms(&self) -> u64 {
        (self.idempotency_ttl_ms / LEDGER_LEASE_SHARES).max(1)
    }

    /// The TTL an API node asks of the store for a ledger lease: the key's
    /// published lifetime plus twice the share window. A key hung on the
    /// lease up to one share window (measured on the API's clock) after
    /// asking has at least `idempotency_ttl_ms` left on the store's clock,
    /// whatever the two clocks' drift (at most 0.1% each, far below 2x).
    pub fn ledger_lease_ttl_ms(&self) -> u64 {
        self.idempotency_ttl_ms
            .saturating_add(2 * self.ledger_lease_share_ms())
    }
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
            bugs: BTreeSet::new(),
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
    /// Planted bugs, from the scenario's `bugs` (never from `[controller]`).
    #[serde(skip)]
    pub bugs: BTreeSet<Bug>,
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
            bugs: BTreeSet::new(),
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

/// Settings of workers: the bound on their executed-action ledger, and the
/// planted bugs like every other node kind's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Executed actions a worker remembers at most, after pruning
    /// ([`crate::worker::MAX_EXECUTED_ACTIONS`] by default, which no
    /// scenario nears). At the bound a worker refuses new actions until its
    /// senders' settled marks or a fence rise make room; a scenario lowers
    /// it to reach that path.
    pub max_executed_actions: usize,
    /// Planted bugs, from the scenario's `bugs`.
    #[serde(skip)]
    pub bugs: BTreeSet<Bug>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            max_executed_actions: crate::worker::MAX_EXECUTED_ACTIONS,
            bugs: BTreeSet::new(),
        }
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
    /// Of new requests when a resource is known, the share that read one
    /// (ppm), taken before updates and deletes: reads after acknowledged
    /// writes must see them.
    pub read_ppm: u32,
    /// Of reads (those of `read_ppm` and the probes), the share that list
    /// a page of resources (ppm) instead of getting one: from the first
    /// page or from just after a known resource, with a limit of
    /// `1..=LIST_LIMIT_MAX` (`crate::client`), so runs page.
    pub list_ppm: u32,
    /// After the workload, a read probe of a known resource this often
    /// (0: none), for as long as the run lasts: the service must still
    /// answer once the faults have healed.
    pub probe_interval_ms: u64,
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
            read_ppm: 100_000,
            list_ppm: 250_000,
            probe_interval_ms: 1_000,
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
    /// Workers.
    pub worker: WorkerSettings,
    /// Clients.
    pub client: ClientSettings,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_validity_shrinks_the_ttl_by_twice_the_drift_bound_and_the_margin() {
        let validity = |max_drift_ppm, lease_margin_ms| {
            ControllerSettings {
                session_ttl_ms: 2_000,
                max_drift_ppm,
                lease_margin_ms,
                ..ControllerSettings::default()
            }
            .lease_validity_ms()
        };
        // 2 s at 0.1 %: 4 ms each way (rounded up by 1), 50 ms margin.
        assert_eq!(validity(1_000, 50), 2_000 - 5 - 50);
        // 2 s at 2 %: 80 ms of drift.
        assert_eq!(validity(20_000, 50), 2_000 - 81 - 50);
        // No drift and no margin still rounds down by 1 ms.
        assert_eq!(validity(0, 0), 1_999);
        // A TTL smaller than its margins is never trusted.
        assert_eq!(validity(20_000, 5_000), 0);
    }
}
