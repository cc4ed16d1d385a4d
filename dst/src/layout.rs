//! Who is who in a run: how many nodes of each role (a scenario's
//! `[topology]`), their ids and names in a fixed order, and what a node name
//! in a scenario file (`controller-1`, `holder:shard-3`) resolves to.
//!
//! Scenario validation and the run both need this, so it lives below both:
//! `scenario` and `world` depend on it, it depends on neither.

use sim::NodeId;

use plane::config::Topology;
use plane::shard::{ShardId, rendezvous_owner};

pub use plane::cluster::{Role, TopologySpec, layout};

/// What a scheduled fault's node names resolve against: a scenario's
/// layout and its shard count.
pub(crate) struct NodeNames<'a> {
    /// Names and roles by node id (see [`layout`]).
    pub names: &'a [(String, Role)],
    /// Who is who.
    pub topology: &'a Topology,
    /// `holder:shard-N` must name a shard below this.
    pub shard_count: u32,
}

impl NodeNames<'_> {
    /// Resolves a node name of a scheduled fault: `store`, `api-0`, ..., or
    /// `holder:shard-N`. The error says what is allowed; the caller puts
    /// the key and the name before it.
    pub(crate) fn resolve(&self, name: &str) -> Result<NodeId, String> {
        if let Some(shard) = name.strip_prefix("holder:shard-") {
            let last = self.shard_count.saturating_sub(1);
            let shard = shard
                .parse::<u32>()
                .ok()
                .filter(|&shard| shard < self.shard_count)
                .ok_or_else(|| {
                    format!(
                        "is not a shard holder: allowed holder:shard-N with N in 0..={last} \
                         (controller.shard_count = {})",
                        self.shard_count
                    )
                })?;
            return rendezvous_owner(ShardId(shard), &self.topology.controllers)
                .ok_or_else(|| "has no holder: the topology has no controllers".to_string());
        }
        self.names
            .iter()
            .position(|(known, _)| known == name)
            .map(|index| NodeId(index as u32))
            .ok_or_else(|| {
                format!(
                    "is not a node: allowed {}, or holder:shard-N with N in 0..={}",
                    self.allowed(),
                    self.shard_count.saturating_sub(1)
                )
            })
    }

    /// The node names, one run of a role shown as `api-0 to api-2`.
    fn allowed(&self) -> String {
        let mut groups: Vec<(Role, &str, &str)> = Vec::new();
        for (name, role) in self.names {
            match groups.last_mut() {
                Some((last_role, _, last)) if last_role == role => *last = name,
                _ => groups.push((*role, name, name)),
            }
        }
        groups
            .iter()
            .map(|&(_, first, last)| {
                if first == last {
                    first.to_string()
                } else {
                    format!("{first} to {last}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
