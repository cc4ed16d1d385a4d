//! Faults as data, one type for every host: the simulator draws or
//! scripts them, a real host applies them through its transport and clock
//! layer, and an artifact's fault list can be played against a live
//! cluster. A run records the list it applied; feeding it back reproduces
//! it.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// One fault. Every fault with a duration heals by itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Cut every link from `side_a` to `side_b`, and back unless `one_way`.
    Partition {
        /// One side of the cut.
        side_a: Vec<NodeId>,
        /// The other side.
        side_b: Vec<NodeId>,
        /// Only `side_a -> side_b` is cut.
        one_way: bool,
        /// How long until it heals.
        duration_ns: u64,
    },
    /// Hold every message on the link `from -> to`, then release them at
    /// once, so stale messages arrive in a burst.
    Clog {
        /// Sender side of the link.
        from: NodeId,
        /// Receiver side of the link.
        to: NodeId,
        /// How long messages are held.
        duration_ns: u64,
    },
    /// Lose the node's volatile state, timers and in-flight messages to it;
    /// rebuild it from durable storage after `restart_after_ns` if given.
    Crash {
        /// The node that crashes.
        node: NodeId,
        /// Down time before the restart; `None` keeps it down.
        restart_after_ns: Option<u64>,
    },
    /// Run nothing on the node for a while, then handle what queued up.
    Pause {
        /// The paused node.
        node: NodeId,
        /// How long it is paused.
        duration_ns: u64,
    },
    /// Move the node's wall clock (not its monotonic clock).
    ClockJump {
        /// The node whose wall clock jumps.
        node: NodeId,
        /// Signed jump.
        delta_ns: i64,
    },
    // Last: a variant's position is part of its trace hash.
    /// A machine reboot: lose everything a crash loses, then come back on a
    /// new boot after `restart_after_ns` with the monotonic clock started
    /// again from an arbitrary value (the wall clock goes on). Durable state
    /// survives; nothing in it may hold a raw monotonic reading.
    Reboot {
        /// The node that reboots.
        node: NodeId,
        /// Down time before it is back.
        restart_after_ns: u64,
    },
    /// Degrade every link to or from one of `nodes` (every link when
    /// `nodes` is empty): each message is lost with `drop_ppm`, delivered
    /// twice with `duplicate_ppm`, and held `delay_ns` longer.
    Degrade {
        /// The nodes whose links degrade; empty: every node.
        #[serde(default)]
        nodes: Vec<NodeId>,
        /// Chance that a message is lost, in parts per million.
        #[serde(default)]
        drop_ppm: u32,
        /// Chance that a message is delivered twice, in parts per million.
        #[serde(default)]
        duplicate_ppm: u32,
        /// Latency added to every message.
        #[serde(default)]
        delay_ns: u64,
        /// How long until the links are whole again.
        duration_ns: u64,
    },
    /// Run the node's clocks (monotonic and wall) at a rate error of
    /// `drift_ppm` for a while, as a failing oscillator would; time gained
    /// or lost stays gained or lost after it heals.
    ClockDrift {
        /// The node whose clock drifts.
        node: NodeId,
        /// Rate error: one local nanosecond takes `1 + drift_ppm / 1e6`
        /// true nanoseconds, so a positive drift is a slow clock.
        drift_ppm: i32,
        /// How long the drift lasts.
        duration_ns: u64,
    },
}

impl Fault {
    /// A short name for counting faults by kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Fault::Partition { one_way: false, .. } => "partition",
            Fault::Partition { one_way: true, .. } => "partition_one_way",
            Fault::Clog { .. } => "clog",
            Fault::Crash { .. } => "crash",
            Fault::Pause { .. } => "pause",
            Fault::ClockJump { .. } => "clock_jump",
            Fault::Reboot { .. } => "reboot",
            Fault::Degrade { .. } => "degrade",
            Fault::ClockDrift { .. } => "clock_drift",
        }
    }

    /// How long after it starts the fault has healed. `None`: never.
    pub fn heals_after_ns(&self) -> Option<u64> {
        match self {
            Fault::Partition { duration_ns, .. }
            | Fault::Clog { duration_ns, .. }
            | Fault::Pause { duration_ns, .. }
            | Fault::Degrade { duration_ns, .. }
            | Fault::ClockDrift { duration_ns, .. } => Some(*duration_ns),
            Fault::Reboot {
                restart_after_ns, ..
            } => Some(*restart_after_ns),
            Fault::Crash {
                restart_after_ns, ..
            } => *restart_after_ns,
            Fault::ClockJump { .. } => Some(0),
        }
    }

    /// The node this fault takes down, and after how long it comes back
    /// (`None`: never): crashes and reboots. Checkers that replay liveness
    /// of nodes ask this rather than naming the kinds, so a new kind that
    /// takes a node down cannot be forgotten there.
    pub fn takes_down(&self) -> Option<(NodeId, Option<u64>)> {
        match self {
            Fault::Crash {
                node,
                restart_after_ns,
            } => Some((*node, *restart_after_ns)),
            Fault::Reboot {
                node,
                restart_after_ns,
            } => Some((*node, Some(*restart_after_ns))),
            Fault::Partition { .. }
            | Fault::Clog { .. }
            | Fault::Pause { .. }
            | Fault::ClockJump { .. }
            | Fault::Degrade { .. }
            | Fault::ClockDrift { .. } => None,
        }
    }

    /// Every node the fault names.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Fault::Partition { side_a, side_b, .. } => {
                side_a.iter().chain(side_b.iter()).copied().collect()
            }
            Fault::Clog { from, to, .. } => vec![*from, *to],
            Fault::Degrade { nodes, .. } => nodes.clone(),
            Fault::Crash { node, .. }
            | Fault::ClockDrift { node, .. }
            | Fault::Reboot { node, .. }
            | Fault::Pause { node, .. }
            | Fault::ClockJump { node, .. } => {
                vec![*node]
            }
        }
    }
}

/// A fault at a point in simulated time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// When it starts, in true simulated nanoseconds.
    pub at_ns: u64,
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
}

impl ScheduledFault {
    /// When the fault has healed; `None` for a crash without restart.
    pub fn healed_at_ns(&self) -> Option<u64> {
        self.fault
            .heals_after_ns()
            .map(|after| self.at_ns.saturating_add(after))
    }
}

impl ScheduledFault {
    /// The node a trace entry of this fault is filed under: the first it
    /// names (node 0 for a fault that names none).
    pub fn anchor(&self) -> NodeId {
        self.fault.nodes().first().copied().unwrap_or_default()
    }
}

/// The time by which every fault in `faults` has healed (0 for none), or
/// `None` if one never heals.
pub fn all_healed_at_ns(faults: &[ScheduledFault]) -> Option<u64> {
    faults
        .iter()
        .try_fold(0, |latest, fault| Some(latest.max(fault.healed_at_ns()?)))
}

/// The file a real host appends every fault it starts and heals to, in its
/// data directory, so a real run's history comes with its fault list.
pub const FAULT_LOG_FILE: &str = "faults.jsonl";

/// What happened to a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultLogEvent {
    /// It started.
    Start,
    /// It healed (by itself or on request).
    Heal,
}

/// One line of [`FAULT_LOG_FILE`]. Node ids are the run's member ids (the
/// order of `cluster.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultLogLine {
    /// The host's wall clock, ns since the Unix epoch (the clock history
    /// lines keep in `host_ns`).
    pub host_ns: u64,
    /// The fault's id in its process.
    pub id: u64,
    /// Started or healed.
    pub event: FaultLogEvent,
    /// The fault.
    pub fault: Fault,
}
