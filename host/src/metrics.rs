//! `/metrics`: what the nodes recorded, counted as it is recorded, in the
//! Prometheus text format (through the `metrics` facade and its Prometheus
//! exporter, with a recorder per process rather than a global one, so tests
//! can run several clusters in one process).
//!
//! Everything here is read from the history events the nodes record (the
//! same ones the checkers read) and from the transport: the host observes,
//! it never decides.

use std::collections::BTreeMap;
use std::sync::Mutex;

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use node::NodeId;
use plane::protocol::{Event, LeaseName, Resource, Status};

/// What the desired and observed state look like, as recorded by the store.
#[derive(Default)]
struct View {
    desired: BTreeMap<String, Resource>,
    observed: BTreeMap<String, Status>,
    /// When each resource's current generation was written (host ns), until
    /// it is observed converged.
    pending_since: BTreeMap<String, u64>,
    shards: BTreeMap<u32, (Option<NodeId>, u64)>,
    leader: Option<(Option<NodeId>, u64)>,
    /// Resources whose observed state does not match their desired state.
    unconverged: std::collections::BTreeSet<String>,
    /// (host ms, unconverged count) at every change of the count, for
    /// the last [`SERIES_SPAN_MS`].
    series: std::collections::VecDeque<(u64, usize)>,
}

/// How far back the unconverged-count series reaches.
pub const SERIES_SPAN_MS: u64 = 10 * 60 * 1_000;
/// Resources listed in a [`ClusterView`] at most.
pub const VIEW_RESOURCES: usize = 1_000;

impl View {
    /// Re-judges `id` after its desired or observed state changed.
    fn touch(&mut self, id: &str, host_ns: u64) {
        let converged = match (self.desired.get(id), self.observed.get(id)) {
            (Some(resource), Some(status)) => converged(resource, status),
            // Deleted, and its status gone too: nothing left to converge.
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(_), None) => false,
        };
        let changed = if converged {
            self.unconverged.remove(id)
        } else {
            self.unconverged.insert(id.to_string())
        };
        if changed {
            let now_ms = host_ns / 1_000_000;
            self.series.push_back((now_ms, self.unconverged.len()));
            while self
                .series
                .front()
                .is_some_and(|&(at, _)| at + SERIES_SPAN_MS < now_ms)
                || self.series.len() > 4_096
            {
                self.series.pop_front();
            }
        }
    }
}

/// What the store recorded of the cluster, as `GET /admin/status` gives it
/// to `watch`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ClusterView {
    /// This process hosts the store, so the view is complete; otherwise it
    /// is empty.
    pub sees_store: bool,
    /// Resources desired.
    pub desired: usize,
    /// Desired resources with an observed status.
    pub observed: usize,
    /// Desired resources whose status does not match (or that are deleted
    /// while a status remains).
    pub unconverged: usize,
    /// (host wall-clock ms, unconverged count) at each change, for the
    /// last ten minutes.
    pub unconverged_series: Vec<(u64, usize)>,
    /// Desired against observed, by id (the first [`VIEW_RESOURCES`]).
    pub resources: Vec<ResourceRow>,
    /// Each shard's lease: holder and fencing token.
    pub shards: Vec<LeaseRow>,
    /// The leader lease, once one was written.
    pub leader: Option<LeaseRow>,
}

/// One resource: desired and observed.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ResourceRow {
    /// Its id.
    pub id: String,
    /// Desired generation.
    pub generation: u64,
    /// Desired replicas.
    pub replicas: u32,
    /// Observed generation, once a status was written.
    pub observed_generation: Option<u64>,
    /// Ready replicas at that generation.
    pub ready_replicas: Option<u32>,
    /// Observed matches desired.
    pub converged: bool,
}

/// One lease as the store holds it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LeaseRow {
    /// The shard (none for the leader lease).
    pub shard: Option<u32>,
    /// The holder's name, if held.
    pub holder: Option<String>,
    /// The lease's revision: the fencing token its holder uses.
    pub token: u64,
}

/// A node's own counters (see [`Metrics::node_counters`]).
pub struct NodeCounters {
    /// Messages it sent.
    pub sent: metrics::Counter,
    /// Messages it received.
    pub received: metrics::Counter,
    /// Times its durable state was written to disk.
    pub durable_writes: metrics::Counter,
}

/// One process's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    names: Vec<String>,
    sees_store: bool,
    view: Mutex<View>,
    faults: std::sync::OnceLock<std::sync::Arc<crate::faults::Faults>>,
}

impl Metrics {
    /// Metrics for a cluster whose node names are `names`, by id;
    /// `sees_store`: this process hosts the store, so it sees every commit.
    pub fn new(names: Vec<String>, sees_store: bool) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ])
            .expect("static buckets")
            .build_recorder();
        let handle = recorder.handle();
        Self {
            recorder,
            handle,
            names,
            sees_store,
            view: Mutex::default(),
            faults: std::sync::OnceLock::new(),
        }
    }

    fn name(&self, id: NodeId) -> String {
        self.names
            .get(id.index())
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// Runs `f` with this process's recorder.
    fn with(&self, f: impl FnOnce()) {
        with_local_recorder(&self.recorder, f);
    }

    /// One node's message and durable-write counters, registered once:
    /// the runner bumps them for every message, so it holds the handles
    /// rather than looking each counter up by name and label every time.
    pub fn node_counters(&self, node: &str) -> NodeCounters {
        let mut counters = None;
        self.with(|| {
            counters = Some(NodeCounters {
                sent: counter!("controlplane_messages_sent_total", "node" => node.to_string()),
                received: counter!("controlplane_messages_received_total", "node" => node.to_string()),
                durable_writes: counter!("controlplane_durable_writes_total", "node" => node.to_string()),
            });
        });
        counters.expect("registered")
    }

    /// The HTTP edge answered with `status`.
    pub fn http_response(&self, status: u16) {
        self.with(|| {
            counter!("controlplane_http_responses_total", "status" => status.to_string())
                .increment(1)
        });
    }

    /// A node's measurement (`Context::measure`): a gauge per node, or a
    /// sample of a duration in ns, exported in seconds.
    pub fn measure(&self, node: &str, name: &str, kind: node::MeasureKind, value: u64) {
        let node = node.to_string();
        match kind {
            node::MeasureKind::Gauge => {
                let name = format!("controlplane_{name}");
                self.with(|| gauge!(name, "node" => node).set(value as f64));
            }
            node::MeasureKind::Sample => {
                let name = format!("controlplane_{name}_seconds");
                self.with(|| histogram!(name).record(value as f64 / 1e9));
            }
        }
    }

    /// A node recorded `event` (at host time `host_ns`).
    pub fn observe(&self, by: NodeId, event: &Event, host_ns: u64) {
        let count = |name: &'static str| self.with(|| counter!(name).increment(1));
        match event {
            Event::ChargeExecuted { .. } => count("controlplane_charges_total"),
            Event::ChargeDeduplicated { .. } => count("controlplane_charges_deduplicated_total"),
            Event::Replayed { .. } => count("controlplane_idempotency_replays_total"),
            Event::KeyInFlight { .. } => count("controlplane_idempotency_conflicts_total"),
            Event::KeyMismatch { .. } => count("controlplane_idempotency_mismatches_total"),
            Event::ActionRejected { .. } => count("controlplane_fencing_rejections_total"),
            Event::StatusWritten { .. } => count("controlplane_reconcile_status_writes_total"),
            Event::InstanceStarted { .. } => count("controlplane_instances_started_total"),
            Event::InstanceStopped { .. } => count("controlplane_instances_stopped_total"),
            Event::LeaseAcquired { .. } => {
                let node = self.name(by);
                self.with(|| {
                    counter!("controlplane_leases_acquired_total", "node" => node).increment(1)
                });
            }
            Event::DesiredWritten { id, resource, .. } => {
                let mut view = self.view.lock().expect("metrics view");
                match resource {
                    Some(resource) => {
                        let changed = view
                            .desired
                            .get(id)
                            .is_none_or(|old| old.generation != resource.generation);
                        if changed {
                            view.pending_since.insert(id.clone(), host_ns);
                        }
                        view.desired.insert(id.clone(), resource.clone());
                    }
                    None => {
                        view.desired.remove(id);
                        view.pending_since.remove(id);
                    }
                }
                view.touch(id, host_ns);
            }
            Event::StatusStored { id, status, .. } => {
                let mut view = self.view.lock().expect("metrics view");
                match status {
                    Some(status) => {
                        view.observed.insert(id.clone(), *status);
                    }
                    None => {
                        view.observed.remove(id);
                    }
                }
                view.touch(id, host_ns);
                let converged = match (view.desired.get(id), view.observed.get(id)) {
                    (Some(resource), Some(status)) => converged(resource, status),
                    _ => false,
                };
                if converged && let Some(since) = view.pending_since.remove(id) {
                    let seconds = host_ns.saturating_sub(since) as f64 / 1e9;
                    drop(view);
                    self.with(|| histogram!("controlplane_convergence_seconds").record(seconds));
                }
            }
            Event::LeaseStored {
                lease,
                holder,
                revision,
            } => {
                let mut view = self.view.lock().expect("metrics view");
                match lease {
                    LeaseName::Shard(shard) => {
                        view.shards.insert(shard.0, (*holder, *revision));
                    }
                    LeaseName::Leader => view.leader = Some((*holder, *revision)),
                }
            }
            _ => {}
        }
    }

    /// Exports what `faults` did, from now on.
    pub fn attach_faults(&self, faults: std::sync::Arc<crate::faults::Faults>) {
        let _ = self.faults.set(faults);
    }

    /// Whether this process hosts the store (and so sees every commit).
    pub fn sees_store(&self) -> bool {
        self.sees_store
    }

    /// Shards with a holder, out of `shard_count`, as the store recorded.
    pub fn shards_held(&self) -> usize {
        let view = self.view.lock().expect("metrics view");
        view.shards
            .values()
            .filter(|(holder, _)| holder.is_some())
            .count()
    }

    /// The cluster as the store recorded it (empty unless this process
    /// hosts the store).
    pub fn view(&self) -> ClusterView {
        let view = self.view.lock().expect("metrics view");
        let name = |holder: Option<NodeId>| holder.map(|h| self.name(h));
        let resources = view
            .desired
            .iter()
            .take(VIEW_RESOURCES)
            .map(|(id, resource)| {
                let status = view.observed.get(id);
                ResourceRow {
                    id: id.clone(),
                    generation: resource.generation,
                    replicas: resource.spec.replicas,
                    observed_generation: status.map(|s| s.observed_generation),
                    ready_replicas: status.map(|s| s.ready_replicas),
                    converged: !view.unconverged.contains(id),
                }
            })
            .collect();
        ClusterView {
            sees_store: self.sees_store,
            desired: view.desired.len(),
            observed: view
                .observed
                .keys()
                .filter(|id| view.desired.contains_key(*id))
                .count(),
            unconverged: view.unconverged.len(),
            unconverged_series: view.series.iter().copied().collect(),
            resources,
            shards: view
                .shards
                .iter()
                .map(|(shard, (holder, token))| LeaseRow {
                    shard: Some(*shard),
                    holder: name(*holder),
                    token: *token,
                })
                .collect(),
            leader: view.leader.map(|(holder, token)| LeaseRow {
                shard: None,
                holder: name(holder),
                token,
            }),
        }
    }

    /// The Prometheus text exposition of everything so far.
    pub fn render(&self, net: &crate::net::NetCounters) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        {
            let view = self.view.lock().expect("metrics view");
            let unconverged = view.unconverged.len();
            let observed = view
                .observed
                .keys()
                .filter(|id| view.desired.contains_key(*id))
                .count();
            self.with(|| {
                gauge!("controlplane_resources_desired").set(view.desired.len() as f64);
                gauge!("controlplane_resources_observed").set(observed as f64);
                gauge!("controlplane_resources_unconverged").set(unconverged as f64);
                // Holders as node ids (-1: none), so a new holder replaces
                // the old one in the same series; `controlplane_node` maps
                // ids to names.
                let id = |holder: Option<NodeId>| holder.map_or(-1.0, |h| f64::from(h.0));
                for (shard, (holder, token)) in &view.shards {
                    let shard = shard.to_string();
                    gauge!("controlplane_shard_holder", "shard" => shard.clone()).set(id(*holder));
                    gauge!("controlplane_shard_token", "shard" => shard).set(*token as f64);
                }
                if let Some((holder, token)) = view.leader {
                    gauge!("controlplane_leader").set(id(holder));
                    gauge!("controlplane_leader_token").set(token as f64);
                }
                for (index, name) in self.names.iter().enumerate() {
                    gauge!("controlplane_node", "node" => name.clone()).set(index as f64);
                }
                gauge!("controlplane_net_frames_sent").set(net.sent.load(Relaxed) as f64);
                gauge!("controlplane_net_frames_received").set(net.received.load(Relaxed) as f64);
                gauge!("controlplane_net_frames_dropped").set(net.dropped.load(Relaxed) as f64);
                gauge!("controlplane_net_frames_undecodable")
                    .set(net.undecodable.load(Relaxed) as f64);
                if let Some(faults) = self.faults.get() {
                    gauge!("controlplane_faults_active").set(faults.list().len() as f64);
                    for (kind, count) in faults.injected() {
                        gauge!("controlplane_faults_injected", "kind" => kind).set(count as f64);
                    }
                    let c = &faults.counters;
                    for (what, value) in [
                        ("dropped", &c.dropped),
                        ("duplicated", &c.duplicated),
                        ("delayed", &c.delayed),
                        ("held", &c.held),
                    ] {
                        gauge!("controlplane_net_frames_by_fault", "effect" => what)
                            .set(value.load(Relaxed) as f64);
                    }
                }
            });
        }
        self.handle.render()
    }
}

/// Observed equals desired at the current generation.
fn converged(resource: &Resource, status: &Status) -> bool {
    status.observed_generation == resource.generation
        && status.ready_replicas == resource.spec.replicas
}
