//! The peers file of a multi-process cluster (`serve --role NAME --peers
//! FILE`): where every node and edge listens. The topology is read from the
//! names it lists, so every process agrees on it.
//!
//! ```toml
//! [nodes]                      # every node's TCP address
//! store = "127.0.0.1:7100"
//! billing = "127.0.0.1:7101"
//! api-0 = "127.0.0.1:7102"     # api-0, api-1, ... (at least one)
//! controller-0 = "127.0.0.1:7104"
//! worker-0 = "127.0.0.1:7107"
//! http-0 = "127.0.0.1:7110"    # an HTTP edge's node address (for replies)
//!
//! [http]                       # each edge's HTTP address
//! http-0 = "127.0.0.1:8080"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use plane::cluster::TopologySpec;
use serde::Deserialize;

/// A parsed peers file.
#[derive(Clone, Debug)]
pub struct Peers {
    /// Node counts, from the names listed.
    pub topology: TopologySpec,
    /// Every node's and edge's TCP address.
    pub nodes: BTreeMap<String, SocketAddr>,
    /// Each edge's HTTP address.
    pub http: BTreeMap<String, SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    nodes: BTreeMap<String, String>,
    #[serde(default)]
    http: BTreeMap<String, String>,
}

/// Reads and checks a peers file; the error names the file, the key and
/// what is allowed.
pub fn load(path: &Path) -> Result<Peers, String> {
    let at = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{at}: {e}"))?;
    let file: File = toml::from_str(&text).map_err(|e| format!("{at}: {e}"))?;
    let address = |table: &str, name: &str, value: &str| {
        value.parse::<SocketAddr>().map_err(|_| {
            format!("{at}: {table}.{name} = {value:?} is not an address: allowed IP:PORT, e.g. \"127.0.0.1:7100\"")
        })
    };
    let mut nodes = BTreeMap::new();
    for (name, value) in &file.nodes {
        nodes.insert(name.clone(), address("nodes", name, value)?);
    }
    let mut http = BTreeMap::new();
    for (name, value) in &file.http {
        if !file.nodes.contains_key(name) || !name.starts_with("http-") {
            return Err(format!(
                "{at}: http.{name}: an HTTP address needs an edge of that name (http-N) under [nodes]"
            ));
        }
        http.insert(name.clone(), address("http", name, value)?);
    }
    let count = |prefix: &str, at_least: u32| -> Result<u32, String> {
        let mut indices: Vec<u32> = Vec::new();
        for name in file.nodes.keys() {
            if let Some(index) = name.strip_prefix(prefix) {
                indices.push(index.parse().map_err(|_| {
                    format!("{at}: nodes.{name}: allowed {prefix}N with N a number")
                })?);
            }
        }
        indices.sort_unstable();
        let n = indices.len() as u32;
        if indices != (0..n).collect::<Vec<_>>() || n < at_least {
            return Err(format!(
                "{at}: [nodes] must name {prefix}0 to {prefix}N-1 without gaps (at least {at_least}), found {}",
                if indices.is_empty() {
                    "none".to_string()
                } else {
                    indices
                        .iter()
                        .map(|i| format!("{prefix}{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
        Ok(n)
    };
    let topology = TopologySpec {
        apis: count("api-", 1)?,
        controllers: count("controller-", 1)?,
        workers: count("worker-", 1)?,
        clients: count("http-", 1)?,
    };
    for required in ["store", "billing"] {
        if !nodes.contains_key(required) {
            return Err(format!("{at}: [nodes] has no `{required}`"));
        }
    }
    let known = |name: &str| {
        ["store", "billing"].contains(&name)
            || ["api-", "controller-", "worker-", "http-"]
                .iter()
                .any(|p| name.starts_with(p))
    };
    if let Some(unknown) = nodes.keys().find(|n| !known(n)) {
        return Err(format!(
            "{at}: nodes.{unknown}: not a node name: allowed store, billing, api-N, controller-N, worker-N, http-N"
        ));
    }
    Ok(Peers {
        topology,
        nodes,
        http,
    })
}
