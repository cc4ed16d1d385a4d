//! Who is who in a cluster, and how each node is built: one place for every
//! host (the simulator's runs and the real `serve`), so a node is built the
//! same way wherever it runs.
//!
//! Node counts come from a [`TopologySpec`]; [`layout`] turns them into
//! ids and names in a fixed order (store, billing, apis, controllers,
//! workers, clients), and [`build_node`] builds the node of one role.

use node::{Node, NodeId};
use serde::{Deserialize, Serialize};

use crate::api::ApiNode;
use crate::billing::BillingNode;
use crate::client::ClientNode;
use crate::config::{Settings, Topology};
use crate::controller::ControllerNode;
use crate::protocol::ControlPlane;
use crate::store::StoreNode;
use crate::worker::WorkerNode;

/// Node counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologySpec {
    /// API nodes (1..=16).
    pub apis: u32,
    /// Controllers (1..=32).
    pub controllers: u32,
    /// Workers (1..=32).
    pub workers: u32,
    /// Clients (1..=16).
    pub clients: u32,
}

impl Default for TopologySpec {
    fn default() -> Self {
        Self {
            apis: 2,
            controllers: 3,
            workers: 3,
            clients: 2,
        }
    }
}

/// Node roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The store.
    Store,
    /// Billing.
    Billing,
    /// API nodes.
    Api,
    /// Controllers.
    Controller,
    /// Workers.
    Worker,
    /// Clients.
    Client,
}

/// Node ids and names of a topology, in a fixed order: store,
/// billing, apis, controllers, workers, clients.
pub fn layout(topology: &TopologySpec) -> (Topology, Vec<(String, Role)>) {
    let mut names = vec![
        ("store".to_string(), Role::Store),
        ("billing".to_string(), Role::Billing),
    ];
    let mut next = |role: Role, prefix: &str, count: u32| -> Vec<NodeId> {
        (0..count)
            .map(|index| {
                names.push((format!("{prefix}-{index}"), role));
                NodeId(names.len() as u32 - 1)
            })
            .collect()
    };
    let t = topology;
    let apis = next(Role::Api, "api", t.apis);
    let controllers = next(Role::Controller, "controller", t.controllers);
    let workers = next(Role::Worker, "worker", t.workers);
    let clients = next(Role::Client, "client", t.clients);
    let topology = Topology {
        store: NodeId(0),
        billing: NodeId(1),
        apis,
        controllers,
        workers,
        clients,
    };
    (topology, names)
}

/// The node of `role`, built from the cluster's topology and settings.
pub fn build_node(
    role: Role,
    topology: &Topology,
    settings: &Settings,
) -> Box<dyn Node<ControlPlane> + Send> {
    match role {
        Role::Store => Box::new(StoreNode::new(settings.store.clone())),
        Role::Billing => Box::new(BillingNode::new()),
        Role::Api => Box::new(ApiNode::new(topology.clone(), settings.api.clone())),
        Role::Controller => Box::new(ControllerNode::new(
            topology.clone(),
            settings.controller.clone(),
        )),
        Role::Worker => Box::new(WorkerNode::new(settings.worker.clone())),
        Role::Client => Box::new(ClientNode::new(topology.clone(), settings.client.clone())),
    }
}

/// The name of the cluster description in a real run's data directory.
pub const CLUSTER_FILE: &str = "cluster.json";

/// What a real run's data directory says about its cluster: written by the
/// host at start (`DATA/cluster.json`), read by whoever judges the run's
/// history (`DATA/<node name>/history.jsonl`, see [`node::history`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Every node: its name and role, at the index of its id.
    pub nodes: Vec<(String, Role)>,
    /// Who is who.
    pub topology: Topology,
    /// Every node kind's settings.
    pub settings: Settings,
    /// Planted bugs the nodes run with (none normally).
    pub bugs: Vec<crate::config::Bug>,
}
