//! Starting a cluster on the real host: every node of the layout (or the
//! ones this process is told to run) as a tokio task with its own TCP
//! listener, plus the HTTP edge.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use node::NodeId;
use plane::cluster::{CLUSTER_FILE, ClusterFile, Role, TopologySpec, build_node, layout};
use plane::config::{Bug, Settings};
use plane::protocol::Msg;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::durable::{Persisted, StateFile};
use crate::edge::Edge;
use crate::faults::{Faults, NodeState};
use crate::http::{AppState, Limits, router};
use crate::metrics::Metrics;
use crate::net::{Network, listen};
use crate::runner::{self, NodeSpec};

/// The name of HTTP edge `index`: it holds the id of the layout's client
/// `index` (a real cluster's clients are its HTTP callers).
pub fn edge_name(index: usize) -> String {
    format!("http-{index}")
}

/// How to run a cluster, or the part of one this process hosts.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where each node keeps `DIR/<name>/state.bin` and `history.jsonl`.
    pub data: PathBuf,
    /// Node counts; `clients` is the number of HTTP edges.
    pub topology: TopologySpec,
    /// Every node kind's settings.
    pub settings: Settings,
    /// Planted bugs (for reproducing a simulated failure live).
    pub bugs: Vec<Bug>,
    /// Each node's (and each edge's) TCP address by name; a name missing
    /// here listens on an ephemeral loopback port (single-process only).
    pub addresses: BTreeMap<String, SocketAddr>,
    /// Each edge's HTTP address by edge name; missing: `127.0.0.1:0`.
    pub http: BTreeMap<String, SocketAddr>,
    /// The names this process runs; empty: all of them.
    pub run_only: Vec<String>,
    /// HTTP limits.
    pub limits: Limits,
    /// How long the edge waits for an API node's reply.
    pub edge_timeout: Duration,
    /// Where the admin endpoint listens (loopback only).
    pub admin: SocketAddr,
    /// The admin token; `None`: one is generated.
    pub admin_token: Option<String>,
}

impl ServeConfig {
    /// One process, every node, ephemeral node ports, the API on `http`.
    pub fn single_process(data: PathBuf, http: SocketAddr) -> Self {
        Self {
            data,
            topology: TopologySpec {
                clients: 1,
                ..TopologySpec::default()
            },
            settings: Settings::default(),
            bugs: Vec::new(),
            addresses: BTreeMap::new(),
            http: BTreeMap::from([(edge_name(0), http)]),
            run_only: Vec::new(),
            limits: Limits::default(),
            edge_timeout: Duration::from_secs(5),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_token: None,
        }
    }
}

/// Why a cluster could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// A started cluster (or part of one).
pub struct Running {
    /// Each node's TCP address, by name.
    pub nodes: BTreeMap<String, SocketAddr>,
    /// Each edge's HTTP address, by edge name.
    pub http: BTreeMap<String, SocketAddr>,
    /// The admin endpoint's address.
    pub admin: SocketAddr,
    /// The token the admin endpoint wants.
    pub admin_token: String,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// The first edge's HTTP base URL.
    pub fn url(&self) -> String {
        let address = self.http.values().next().expect("an edge");
        format!("http://{address}")
    }

    /// Stops every node and the edges, and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One thing this process hosts.
enum Member {
    Node(NodeId, String, Role),
    Edge(NodeId, String),
}

/// Starts what `config` asks this process to run, and returns once every
/// listener is bound (the nodes start at once).
pub async fn start(config: ServeConfig) -> Result<Running, StartError> {
    crate::admin::check_loopback(config.admin).map_err(StartError)?;
    let admin_token = match &config.admin_token {
        Some(token) if !token.is_empty() => token.clone(),
        Some(_) => {
            return Err(StartError(
                "--admin-token: the token must not be empty".into(),
            ));
        }
        None => crate::admin::generate_token()
            .map_err(|e| StartError(format!("cannot draw an admin token: {e}")))?,
    };
    let (topology, names) = layout(&config.topology);
    let mut settings = config.settings.clone();
    let bugs: std::collections::BTreeSet<Bug> = config.bugs.iter().copied().collect();
    settings.api.bugs = bugs.clone();
    settings.controller.bugs = bugs.clone();
    settings.worker.bugs = bugs.clone();

    // Every member of the cluster, under the names people use: nodes by
    // their layout name, clients as HTTP edges.
    let mut members = Vec::new();
    let mut node_names = Vec::new();
    for (index, (name, role)) in names.iter().enumerate() {
        let id = NodeId(index as u32);
        if *role == Role::Client {
            let edge = topology
                .clients
                .iter()
                .position(|&c| c == id)
                .expect("a client");
            let name = edge_name(edge);
            node_names.push(name.clone());
            members.push(Member::Edge(id, name));
        } else {
            node_names.push(name.clone());
            members.push(Member::Node(id, name.clone(), *role));
        }
    }
    for name in config.run_only.iter().chain(config.addresses.keys()) {
        if !node_names.contains(name) {
            return Err(StartError(format!(
                "`{name}` is not a node of this topology: allowed {}",
                node_names.join(", ")
            )));
        }
    }
    let runs_here =
        |name: &str| config.run_only.is_empty() || config.run_only.iter().any(|n| n == name);

    std::fs::create_dir_all(&config.data)
        .map_err(|e| StartError(format!("{}: {e}", config.data.display())))?;
    write_cluster_file(
        &config.data,
        &names,
        &node_names,
        &topology,
        &settings,
        &config.bugs,
    )?;

    // Bind this process's listeners first, so every address is known.
    let mut listeners = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    for (index, name) in node_names.iter().enumerate() {
        let id = NodeId(index as u32);
        match config.addresses.get(name) {
            Some(&address) if !runs_here(name) => {
                addresses.insert(id, address);
            }
            None if !runs_here(name) => {
                return Err(StartError(format!(
                    "`{name}` runs in another process but has no address in the peers file"
                )));
            }
            wanted => {
                let wanted = wanted
                    .copied()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
                let listener = TcpListener::bind(wanted)
                    .await
                    .map_err(|e| StartError(format!("{name}: cannot listen on {wanted}: {e}")))?;
                let bound = listener.local_addr().expect("bound");
                addresses.insert(id, bound);
                listeners.insert(id, listener);
            }
        }
    }
    let edges: Vec<bool> = names
        .iter()
        .map(|(_, role)| *role == Role::Client)
        .collect();
    let local: Vec<bool> = node_names.iter().map(|name| runs_here(name)).collect();
    let log = config.data.join(node::fault::FAULT_LOG_FILE);
    let faults = Arc::new(
        Faults::new(
            node_names.clone(),
            local,
            edges,
            node::mix64(crate::runner::host_now_ns()),
        )
        .with_log(&log)
        .map_err(|e| StartError(format!("{}: {e}", log.display())))?,
    );
    let network = Network::new(addresses.clone()).with_faults(faults.clone());
    let metrics = Arc::new(Metrics::new(
        node_names.clone(),
        listeners.contains_key(&topology.store),
    ));
    metrics.attach_faults(faults.clone());
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut http = BTreeMap::new();

    let mut inboxes = BTreeMap::new();
    for member in members {
        match member {
            Member::Node(id, name, role) if listeners.contains_key(&id) => {
                let spec = NodeSpec {
                    id,
                    name: name.clone(),
                    node: build_node(role, &topology, &settings),
                    dir: config.data.join(&name),
                };
                let loaded = runner::load(spec, Some(&metrics))
                    .map_err(|e| StartError(format!("{name}: {e}")))?;
                let (sender, receiver) = mpsc::unbounded_channel::<(NodeId, Msg)>();
                inboxes.insert(id, sender);
                let rebuild = {
                    let (topology, settings, dir) =
                        (topology.clone(), settings.clone(), config.data.join(&name));
                    move || NodeSpec {
                        id,
                        name: name.clone(),
                        node: build_node(role, &topology, &settings),
                        dir: dir.clone(),
                    }
                };
                tasks.spawn(supervise(
                    loaded,
                    rebuild,
                    receiver,
                    network.clone(),
                    metrics.clone(),
                    stop_rx.clone(),
                    faults.clone(),
                ));
            }
            Member::Edge(id, name) if listeners.contains_key(&id) => {
                let state = StateFile::new(&config.data.join(&name))
                    .map_err(|e| StartError(format!("{name}: {e}")))?;
                let boot = match state
                    .load::<()>()
                    .map_err(|e| StartError(format!("{name}: {e}")))?
                {
                    Some(persisted) => persisted.boot + 1,
                    None => 0,
                };
                state
                    .store(&Persisted { boot, durable: () })
                    .map_err(|e| StartError(format!("{name}: {e}")))?;
                let edge = Edge::new(
                    id,
                    boot,
                    topology.apis.clone(),
                    network.clone(),
                    config.edge_timeout,
                );
                let app = Arc::new(AppState {
                    edge,
                    metrics: metrics.clone(),
                    net: network.counters.clone(),
                    shard_count: settings.controller.shard_count,
                });
                let wanted = config
                    .http
                    .get(&name)
                    .copied()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
                let listener = TcpListener::bind(wanted).await.map_err(|e| {
                    StartError(format!("{name}: cannot serve HTTP on {wanted}: {e}"))
                })?;
                http.insert(name.clone(), listener.local_addr().expect("bound"));
                let (sender, mut receiver) = mpsc::unbounded_channel::<(NodeId, Msg)>();
                inboxes.insert(id, sender);
                let deliver = app.clone();
                tasks.spawn(async move {
                    while let Some((from, message)) = receiver.recv().await {
                        deliver.edge.deliver(from, message);
                    }
                });
                let router = router(app, config.limits);
                let max_connections = config.limits.max_connections;
                let idle_timeout = config.limits.idle_timeout;
                let mut stopped = stop_rx.clone();
                tasks.spawn(async move {
                    let listener =
                        crate::http::CappedListener::new(listener, max_connections, idle_timeout);
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.wait_for(|&s| s).await;
                        })
                        .await;
                });
            }
            _ => {}
        }
    }
    let inboxes = Arc::new(inboxes);
    let mut nodes = BTreeMap::new();
    for (id, listener) in listeners {
        nodes.insert(
            node_names[id.index()].clone(),
            listener.local_addr().expect("bound"),
        );
        tasks.spawn(listen(listener, inboxes.clone(), network.counters.clone()));
    }
    let admin_listener = TcpListener::bind(config.admin)
        .await
        .map_err(|e| StartError(format!("admin: cannot listen on {}: {e}", config.admin)))?;
    let admin = admin_listener.local_addr().expect("bound");
    let admin_router = crate::admin::router(Arc::new(crate::admin::Admin {
        token: admin_token.clone(),
        nodes: nodes.clone(),
        http: http.clone(),
        metrics: metrics.clone(),
        net: network.counters.clone(),
        data: config.data.clone(),
        faults: faults.clone(),
        network: network.clone(),
    }));
    let mut stopped = stop_rx.clone();
    tasks.spawn(async move {
        let _ = axum::serve(admin_listener, admin_router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|&s| s).await;
            })
            .await;
    });
    Ok(Running {
        nodes,
        http,
        admin,
        admin_token,
        stop,
        tasks,
    })
}

/// Runs one node, and after a crash fault rebuilds it from its state file
/// (a new boot) once the fault heals. What is queued for it while it is
/// down is lost, as it would be for a crashed process.
async fn supervise(
    first: runner::Loaded,
    rebuild: impl Fn() -> NodeSpec,
    mut inbox: mpsc::UnboundedReceiver<(NodeId, Msg)>,
    network: Network,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    faults: Arc<Faults>,
) {
    let mut loaded = Some(first);
    loop {
        let this = match loaded.take() {
            Some(this) => this,
            None => {
                let spec = rebuild();
                let name = spec.name.clone();
                // Its history is counted already: this process saw it.
                match runner::load(spec, None) {
                    Ok(this) => this,
                    Err(error) => {
                        tracing::error!(node = %name, %error, "cannot restart the node");
                        return;
                    }
                }
            }
        };
        let id = this.id();
        let exit = runner::run(
            this,
            &mut inbox,
            network.clone(),
            metrics.clone(),
            stop.clone(),
            faults.clone(),
        )
        .await;
        if exit != runner::Exit::Crashed {
            return;
        }
        let mut changes = faults.subscribe();
        loop {
            while inbox.try_recv().is_ok() {}
            if faults.node_state(id) != NodeState::Down {
                break;
            }
            tokio::select! {
                _ = stop.changed() => if *stop.borrow() { return },
                _ = changes.changed() => {}
                lost = inbox.recv() => if lost.is_none() { return },
            }
        }
    }
}

fn write_cluster_file(
    data: &Path,
    names: &[(String, Role)],
    node_names: &[String],
    topology: &plane::config::Topology,
    settings: &Settings,
    bugs: &[Bug],
) -> Result<(), StartError> {
    // Edges are written under their edge names, with the client role.
    let nodes = names
        .iter()
        .zip(node_names)
        .map(|((_, role), name)| (name.clone(), *role))
        .collect();
    let file = ClusterFile {
        nodes,
        topology: topology.clone(),
        settings: settings.clone(),
        bugs: bugs.to_vec(),
    };
    let path = data.join(CLUSTER_FILE);
    let text = serde_json::to_string_pretty(&file).expect("serializable");
    std::fs::write(&path, text).map_err(|e| StartError(format!("{}: {e}", path.display())))
}
