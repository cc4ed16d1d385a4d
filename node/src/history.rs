//! The history a real host writes: one JSON line per recorded event, one
//! file per node, so the same checkers that judge a simulated run can judge
//! a real one (`controlplane check --history DIR`).
//!
//! A simulated history has one true clock; a real one has none. Each line
//! carries what the host knew when the handler ran: the node's own clocks
//! (as the node saw them, skew included) and the host machine's wall clock.
//! Lines of one node are in the order they were recorded (`seq` counts up
//! across boots); lines of different nodes are ordered only as well as the
//! machines' wall clocks agree.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// The name of a node's history file inside its data directory.
pub const HISTORY_FILE: &str = "history.jsonl";

/// One recorded event of a real run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine<E> {
    /// The node that recorded it.
    pub node: NodeId,
    /// The node's boot when it recorded it.
    pub boot: u32,
    /// Position in this node's history, counting up across boots.
    pub seq: u64,
    /// The node's monotonic clock at the handler (restarts on a new boot).
    pub mono_ns: u64,
    /// The node's wall clock at the handler, as the node saw it.
    pub wall_ns: u64,
    /// The host machine's wall clock at the handler (ns since the Unix
    /// epoch), unskewed: the only clock lines of different nodes share.
    pub host_ns: u64,
    /// The event.
    pub event: E,
}
