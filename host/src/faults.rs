//! Faults in a live cluster: the simulator's fault type ([`node::fault`]),
//! applied by this host's transport, runner and clock adapter.
//!
//! | fault | where it acts |
//! |---|---|
//! | partition (both ways or one way), clog | [`Faults::route`], on every send of a node of this process |
//! | degrade (drop, duplicate, delay) | [`Faults::route`] |
//! | pause | the runner stops handling anything; queued messages and overdue timers run at once after |
//! | crash, reboot | the runner stops (volatile state, timers and queued messages lost); the node is rebuilt from its state file when the fault heals |
//! | clock jump | [`NodeClock`]: the wall clock moves; the monotonic clock does not |
//! | clock drift | [`NodeClock`]: both clocks run at a rate error while it lasts |
//!
//! Link faults act where a message is sent, so in a multi-process cluster a
//! process cuts only its own nodes' sends: a partition between two
//! processes is sent to both admin endpoints. A fault on a node (pause,
//! crash, clock) goes to the process that runs it.
//!
//! Faults decide nothing a node does: they lose, hold, copy and delay
//! messages, stop handlers from running and skew the readings a handler is
//! given, all of which a node must survive on any host.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use node::fault::{Fault, FaultLogEvent, FaultLogLine};
use node::{NodeId, Random, SplitMix64};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The largest clock drift accepted: 10 %, as in the simulator.
pub const DRIFT_PPM_LIMIT: i32 = 100_000;
/// The longest fault accepted: a day.
pub const MAX_FAULT_NS: u64 = 24 * 3_600 * node::SECOND_NS;

/// One active fault, as `GET /admin/faults` lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActiveFault {
    /// Its id, for `DELETE /admin/faults/{id}`.
    pub id: u64,
    /// What it is.
    pub fault: Fault,
    /// How long ago it started, in ms.
    pub started_ms_ago: u64,
    /// How long until it heals by itself, in ms; `None`: only on heal.
    pub heals_in_ms: Option<u64>,
}

struct Active {
    fault: Fault,
    started: Instant,
    until: Option<Instant>,
}

/// What a send should become.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Send it now, `copies` times (1 or 2), each after `delay`.
    Send {
        /// How many copies (a duplicate fault makes 2).
        copies: u8,
        /// Added latency.
        delay: Duration,
    },
    /// Lost (a partition or a degraded link).
    Drop,
    /// Held until the clog on this link heals.
    Hold,
}

/// What the runner of a node should do.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum NodeState {
    /// Run.
    Up,
    /// Handle nothing until this instant (or until healed).
    Paused(Option<Instant>),
    /// Stop: volatile state is lost; come back when the crash heals.
    Down,
}

/// One node's clock adapter: the readings a handler gets, skewed the way
/// the faults say.
#[derive(Clone, Copy, Debug)]
pub struct NodeClock {
    /// Real instant of the last rate change.
    base_real: Instant,
    /// Local ns elapsed (since the process started) at `base_real`.
    base_local_ns: u64,
    /// Current rate error.
    drift_ppm: i32,
    /// Sum of wall-clock jumps.
    wall_jump_ns: i64,
}

impl NodeClock {
    fn new(origin: Instant) -> Self {
        Self {
            base_real: origin,
            base_local_ns: 0,
            drift_ppm: 0,
            wall_jump_ns: 0,
        }
    }

    /// Local ns elapsed since the process started, at real instant `now`.
    pub fn local_ns(&self, now: Instant) -> u64 {
        let real = now.saturating_duration_since(self.base_real).as_nanos() as u64;
        let rate = (1_000_000 + i64::from(self.drift_ppm)) as u128;
        self.base_local_ns + (u128::from(real) * 1_000_000 / rate) as u64
    }

    /// The real time a local delay takes at the current rate.
    pub fn real_delay(&self, local_ns: u64) -> Duration {
        let rate = (1_000_000 + i64::from(self.drift_ppm)) as u128;
        Duration::from_nanos(
            (u128::from(local_ns) * rate)
                .div_ceil(1_000_000)
                .min(u128::from(u64::MAX)) as u64,
        )
    }

    /// How far the wall clock is off the host's: drift gained or lost plus
    /// jumps, in ns, at `now`; `origin` is when the process started.
    pub fn wall_skew_ns(&self, origin: Instant, now: Instant) -> i64 {
        let real = now.saturating_duration_since(origin).as_nanos() as i64;
        self.local_ns(now) as i64 - real + self.wall_jump_ns
    }

    fn set_drift(&mut self, now: Instant, drift_ppm: i32) {
        self.base_local_ns = self.local_ns(now);
        self.base_real = now;
        self.drift_ppm = drift_ppm;
    }
}

struct Table {
    next_id: u64,
    active: BTreeMap<u64, Active>,
    clocks: Vec<NodeClock>,
    rng: SplitMix64,
}

/// Counters of what faults did, for `/metrics`.
#[derive(Debug, Default)]
pub struct FaultCounters {
    /// Frames lost to a partition or a degraded link.
    pub dropped: std::sync::atomic::AtomicU64,
    /// Extra copies sent by a degraded link.
    pub duplicated: std::sync::atomic::AtomicU64,
    /// Frames sent late by a degraded link.
    pub delayed: std::sync::atomic::AtomicU64,
    /// Frames held by a clog (released when it heals).
    pub held: std::sync::atomic::AtomicU64,
}

/// This process's fault table.
pub struct Faults {
    names: Vec<String>,
    /// Nodes this process runs (others' faults are refused here).
    local: Vec<bool>,
    /// Edges (HTTP clients): they can be cut off, not crashed or paused.
    edges: Vec<bool>,
    origin: Instant,
    table: Mutex<Table>,
    /// How many faults are active: a send with none active takes no lock.
    active: std::sync::atomic::AtomicUsize,
    changed: watch::Sender<u64>,
    /// Fault counters.
    pub counters: FaultCounters,
    injected: Mutex<BTreeMap<&'static str, u64>>,
    log: Option<Mutex<std::fs::File>>,
}

impl Faults {
    /// A table for a cluster whose members are `names` (by node id);
    /// `local[i]`: this process runs member `i`; `edges[i]`: it is an edge.
    pub fn new(names: Vec<String>, local: Vec<bool>, edges: Vec<bool>, seed: u64) -> Self {
        let origin = Instant::now();
        let clocks = vec![NodeClock::new(origin); names.len()];
        Self {
            names,
            local,
            edges,
            origin,
            table: Mutex::new(Table {
                next_id: 1,
                active: BTreeMap::new(),
                clocks,
                rng: SplitMix64::new(seed),
            }),
            active: std::sync::atomic::AtomicUsize::new(0),
            changed: watch::channel(0).0,
            counters: FaultCounters::default(),
            injected: Mutex::default(),
            log: None,
        }
    }

    /// Appends every start and heal to `path` (see
    /// [`node::fault::FAULT_LOG_FILE`]), so `check --history` knows when
    /// the run's faults healed.
    pub fn with_log(mut self, path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        self.log = Some(Mutex::new(file));
        Ok(self)
    }

    fn append(&self, id: u64, event: FaultLogEvent, fault: &Fault) {
        use std::io::Write;
        let Some(log) = &self.log else { return };
        let line = FaultLogLine {
            host_ns: crate::runner::host_now_ns(),
            id,
            event,
            fault: fault.clone(),
        };
        let mut text = serde_json::to_string(&line).expect("a fault is JSON");
        text.push('\n');
        let mut file = log.lock().expect("fault log");
        if let Err(error) = file.write_all(text.as_bytes()) {
            tracing::error!(%error, "cannot append to the fault log");
        }
    }

    /// The member names, by node id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// When this process's clocks started.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// Wakes when any fault starts or heals.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.injected.lock().expect("injected").clone()
    }

    fn bump(&self) {
        self.changed.send_modify(|version| *version += 1);
    }

    /// Checks a fault against this cluster; the error names the field and
    /// what is allowed.
    pub fn validate(&self, fault: &Fault) -> Result<(), String> {
        let count = self.names.len();
        for node in fault.nodes() {
            if node.index() >= count {
                return Err(format!(
                    "node {} is not a member of this cluster: allowed 0..{count} ({})",
                    node.0,
                    self.names.join(", ")
                ));
            }
        }
        let span = |field: &str, ns: u64| {
            if ns == 0 || ns > MAX_FAULT_NS {
                Err(format!(
                    "{field} ({ns} ns) must be positive and at most a day ({MAX_FAULT_NS} ns)"
                ))
            } else {
                Ok(())
            }
        };
        let own = |node: NodeId, what: &str| {
            if self.edges[node.index()] {
                Err(format!(
                    "{} is an HTTP edge, not a node: {what} applies to nodes",
                    self.names[node.index()]
                ))
            } else if !self.local[node.index()] {
                Err(format!(
                    "{} runs in another process: send this fault to that process's admin endpoint",
                    self.names[node.index()]
                ))
            } else {
                Ok(())
            }
        };
        match fault {
            Fault::Partition {
                side_a,
                side_b,
                duration_ns,
                ..
            } => {
                if side_a.is_empty() || side_b.is_empty() {
                    return Err("a partition needs two non-empty sides".into());
                }
                if let Some(both) = side_a.iter().find(|n| side_b.contains(n)) {
                    return Err(format!(
                        "{} is on both sides of the partition",
                        self.names[both.index()]
                    ));
                }
                span("duration_ns", *duration_ns)
            }
            Fault::Clog {
                from,
                to,
                duration_ns,
            } => {
                if from == to {
                    return Err("a clog needs two different nodes".into());
                }
                span("duration_ns", *duration_ns)
            }
            Fault::Degrade {
                drop_ppm,
                duplicate_ppm,
                delay_ns,
                duration_ns,
                ..
            } => {
                for (field, value) in [("drop_ppm", drop_ppm), ("duplicate_ppm", duplicate_ppm)] {
                    if *value > 1_000_000 {
                        return Err(format!("{field} ({value}) must be at most 1000000"));
                    }
                }
                if *delay_ns > 60 * node::SECOND_NS {
                    return Err(format!(
                        "delay_ns ({delay_ns}) must be at most a minute (60000000000)"
                    ));
                }
                span("duration_ns", *duration_ns)
            }
            Fault::Pause { node, duration_ns } => {
                own(*node, "pause")?;
                span("duration_ns", *duration_ns)
            }
            Fault::Crash {
                node,
                restart_after_ns,
            } => {
                own(*node, "crash")?;
                match restart_after_ns {
                    Some(after) => span("restart_after_ns", *after),
                    None => Ok(()),
                }
            }
            Fault::Reboot {
                node,
                restart_after_ns,
            } => {
                own(*node, "reboot")?;
                span("restart_after_ns", *restart_after_ns)
            }
            Fault::ClockJump { node, delta_ns } => {
                own(*node, "a clock jump")?;
                if delta_ns.unsigned_abs() > MAX_FAULT_NS {
                    return Err(format!(
                        "delta_ns ({delta_ns}) must be within a day either way"
                    ));
                }
                Ok(())
            }
            Fault::ClockDrift {
                node,
                drift_ppm,
                duration_ns,
            } => {
                own(*node, "clock drift")?;
                if drift_ppm.abs() > DRIFT_PPM_LIMIT {
                    return Err(format!(
                        "drift_ppm ({drift_ppm}) must be within -{DRIFT_PPM_LIMIT}..={DRIFT_PPM_LIMIT}"
                    ));
                }
                span("duration_ns", *duration_ns)
            }
        }
    }

    /// Starts `fault` now (after [`Faults::validate`]). Returns its id, and
    /// when it heals by itself (the caller schedules [`Faults::heal`]).
    /// A clock jump is instantaneous: it gets an id but is never active.
    pub fn inject(&self, fault: Fault) -> (u64, Option<Duration>) {
        let now = Instant::now();
        let after = fault.heals_after_ns().map(Duration::from_nanos);
        *self
            .injected
            .lock()
            .expect("injected")
            .entry(fault.kind_name())
            .or_default() += 1;
        let mut table = self.table.lock().expect("fault table");
        let id = table.next_id;
        table.next_id += 1;
        self.append(id, FaultLogEvent::Start, &fault);
        match &fault {
            Fault::ClockJump { node, delta_ns } => {
                table.clocks[node.index()].wall_jump_ns += delta_ns;
                drop(table);
                self.bump();
                return (id, None);
            }
            Fault::ClockDrift {
                node, drift_ppm, ..
            } => table.clocks[node.index()].set_drift(now, *drift_ppm),
            _ => {}
        }
        table.active.insert(
            id,
            Active {
                fault,
                started: now,
                until: after.map(|after| now + after),
            },
        );
        self.active
            .store(table.active.len(), std::sync::atomic::Ordering::Release);
        drop(table);
        self.bump();
        (id, after)
    }

    /// Heals fault `id`; returns it, or `None` if it is not active.
    pub fn heal(&self, id: u64) -> Option<Fault> {
        let now = Instant::now();
        let mut table = self.table.lock().expect("fault table");
        let healed = table.active.remove(&id)?.fault;
        self.active
            .store(table.active.len(), std::sync::atomic::Ordering::Release);
        self.append(id, FaultLogEvent::Heal, &healed);
        if let Fault::ClockDrift { node, .. } = &healed {
            // Back to the latest drift still active on the node, or none.
            let drift = table
                .active
                .values()
                .rev()
                .find_map(|active| match &active.fault {
                    Fault::ClockDrift {
                        node: other,
                        drift_ppm,
                        ..
                    } if other == node => Some(*drift_ppm),
                    _ => None,
                })
                .unwrap_or(0);
            table.clocks[node.index()].set_drift(now, drift);
        }
        drop(table);
        self.bump();
        Some(healed)
    }

    /// Every active fault's id.
    pub fn active_ids(&self) -> Vec<u64> {
        self.table
            .lock()
            .expect("fault table")
            .active
            .keys()
            .copied()
            .collect()
    }

    /// The active faults.
    pub fn list(&self) -> Vec<ActiveFault> {
        let now = Instant::now();
        let table = self.table.lock().expect("fault table");
        table
            .active
            .iter()
            .map(|(&id, active)| ActiveFault {
                id,
                fault: active.fault.clone(),
                started_ms_ago: now.saturating_duration_since(active.started).as_millis() as u64,
                heals_in_ms: active
                    .until
                    .map(|until| until.saturating_duration_since(now).as_millis() as u64),
            })
            .collect()
    }

    /// What becomes of a message from `from` to `to` sent now.
    pub fn route(&self, from: NodeId, to: NodeId) -> Route {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        if self.active.load(Acquire) == 0 {
            return Route::Send {
                copies: 1,
                delay: Duration::ZERO,
            };
        }
        let mut table = self.table.lock().expect("fault table");
        let mut clogged = false;
        let mut degrades = Vec::new();
        for active in table.active.values() {
            match &active.fault {
                Fault::Partition {
                    side_a,
                    side_b,
                    one_way,
                    ..
                } => {
                    let cut = (side_a.contains(&from) && side_b.contains(&to))
                        || (!one_way && side_b.contains(&from) && side_a.contains(&to));
                    if cut {
                        self.counters.dropped.fetch_add(1, Relaxed);
                        return Route::Drop;
                    }
                }
                Fault::Clog {
                    from: clog_from,
                    to: clog_to,
                    ..
                } => clogged |= *clog_from == from && *clog_to == to,
                Fault::Degrade {
                    nodes,
                    drop_ppm,
                    duplicate_ppm,
                    delay_ns,
                    ..
                } if nodes.is_empty() || nodes.contains(&from) || nodes.contains(&to) => {
                    degrades.push((*drop_ppm, *duplicate_ppm, *delay_ns));
                }
                _ => {}
            }
        }
        if clogged {
            self.counters.held.fetch_add(1, Relaxed);
            return Route::Hold;
        }
        let mut copies = 1;
        let mut delay_ns = 0u64;
        for (drop_ppm, duplicate_ppm, added_ns) in degrades {
            if table.rng.chance_ppm(drop_ppm) {
                self.counters.dropped.fetch_add(1, Relaxed);
                return Route::Drop;
            }
            if table.rng.chance_ppm(duplicate_ppm) {
                copies = 2;
            }
            delay_ns = delay_ns.saturating_add(added_ns);
        }
        if copies > 1 {
            self.counters.duplicated.fetch_add(1, Relaxed);
        }
        if delay_ns > 0 {
            self.counters.delayed.fetch_add(1, Relaxed);
        }
        Route::Send {
            copies,
            delay: Duration::from_nanos(delay_ns),
        }
    }

    /// Whether the link `from -> to` is still clogged.
    pub fn clogged(&self, from: NodeId, to: NodeId) -> bool {
        let table = self.table.lock().expect("fault table");
        table.active.values().any(|active| {
            matches!(&active.fault, Fault::Clog { from: f, to: t, .. } if *f == from && *t == to)
        })
    }

    /// What node `node`'s runner should do now.
    pub fn node_state(&self, node: NodeId) -> NodeState {
        let table = self.table.lock().expect("fault table");
        let mut paused: Option<Option<Instant>> = None;
        for active in table.active.values() {
            match &active.fault {
                Fault::Crash { node: n, .. } | Fault::Reboot { node: n, .. } if *n == node => {
                    return NodeState::Down;
                }
                Fault::Pause { node: n, .. } if *n == node => {
                    // The latest end of every pause on it.
                    paused = Some(match (paused.flatten(), active.until) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    });
                }
                _ => {}
            }
        }
        match paused {
            Some(until) => NodeState::Paused(until),
            None => NodeState::Up,
        }
    }

    /// Node `node`'s clock adapter as it stands.
    pub fn clock(&self, node: NodeId) -> NodeClock {
        self.table.lock().expect("fault table").clocks[node.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> Faults {
        Faults::new(
            vec!["store".into(), "api-0".into(), "http-0".into()],
            vec![true, true, true],
            vec![false, false, true],
            7,
        )
    }

    #[test]
    fn a_partition_drops_both_ways_and_heals() {
        let faults = faults();
        let partition = Fault::Partition {
            side_a: vec![NodeId(0)],
            side_b: vec![NodeId(1)],
            one_way: false,
            duration_ns: node::SECOND_NS,
        };
        faults.validate(&partition).unwrap();
        let (id, after) = faults.inject(partition);
        assert_eq!(after, Some(Duration::from_secs(1)));
        assert_eq!(faults.route(NodeId(0), NodeId(1)), Route::Drop);
        assert_eq!(faults.route(NodeId(1), NodeId(0)), Route::Drop);
        assert!(matches!(
            faults.route(NodeId(2), NodeId(1)),
            Route::Send { copies: 1, .. }
        ));
        assert!(faults.heal(id).is_some());
        assert!(faults.heal(id).is_none(), "healed twice");
        assert!(matches!(
            faults.route(NodeId(0), NodeId(1)),
            Route::Send { copies: 1, .. }
        ));
    }

    #[test]
    fn a_one_way_partition_cuts_one_direction() {
        let faults = faults();
        faults.inject(Fault::Partition {
            side_a: vec![NodeId(0)],
            side_b: vec![NodeId(1)],
            one_way: true,
            duration_ns: node::SECOND_NS,
        });
        assert_eq!(faults.route(NodeId(0), NodeId(1)), Route::Drop);
        assert!(matches!(
            faults.route(NodeId(1), NodeId(0)),
            Route::Send { .. }
        ));
    }

    #[test]
    fn a_degraded_link_drops_duplicates_and_delays_at_its_rates() {
        let faults = faults();
        faults.inject(Fault::Degrade {
            nodes: vec![NodeId(0)],
            drop_ppm: 100_000,
            duplicate_ppm: 200_000,
            delay_ns: 5_000_000,
            duration_ns: node::SECOND_NS,
        });
        let (mut dropped, mut doubled) = (0, 0);
        for _ in 0..10_000 {
            match faults.route(NodeId(1), NodeId(0)) {
                Route::Drop => dropped += 1,
                Route::Send { copies, delay } => {
                    assert_eq!(delay, Duration::from_millis(5));
                    doubled += usize::from(copies == 2);
                }
                Route::Hold => panic!("nothing is clogged"),
            }
        }
        assert!((800..1_200).contains(&dropped), "dropped {dropped}");
        assert!((1_500..2_100).contains(&doubled), "doubled {doubled}");
        // A link that touches no degraded node is whole.
        assert_eq!(
            faults.route(NodeId(1), NodeId(2)),
            Route::Send {
                copies: 1,
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_clog_holds_only_its_link() {
        let faults = faults();
        let (id, _) = faults.inject(Fault::Clog {
            from: NodeId(1),
            to: NodeId(0),
            duration_ns: node::SECOND_NS,
        });
        assert_eq!(faults.route(NodeId(1), NodeId(0)), Route::Hold);
        assert!(matches!(
            faults.route(NodeId(0), NodeId(1)),
            Route::Send { .. }
        ));
        assert!(faults.clogged(NodeId(1), NodeId(0)));
        faults.heal(id);
        assert!(!faults.clogged(NodeId(1), NodeId(0)));
    }

    #[test]
    fn node_states_follow_pause_and_crash() {
        let faults = faults();
        assert_eq!(faults.node_state(NodeId(0)), NodeState::Up);
        let (pause, _) = faults.inject(Fault::Pause {
            node: NodeId(0),
            duration_ns: node::SECOND_NS,
        });
        assert!(matches!(
            faults.node_state(NodeId(0)),
            NodeState::Paused(Some(_))
        ));
        let (crash, _) = faults.inject(Fault::Crash {
            node: NodeId(0),
            restart_after_ns: None,
        });
        assert_eq!(faults.node_state(NodeId(0)), NodeState::Down);
        faults.heal(crash);
        faults.heal(pause);
        assert_eq!(faults.node_state(NodeId(0)), NodeState::Up);
    }

    #[test]
    fn edges_and_other_processes_nodes_cannot_be_crashed_here() {
        let mut faults = faults();
        let crash = |node| Fault::Crash {
            node: NodeId(node),
            restart_after_ns: Some(node::SECOND_NS),
        };
        assert!(
            faults
                .validate(&crash(2))
                .unwrap_err()
                .contains("HTTP edge")
        );
        faults.local[1] = false;
        assert!(
            faults
                .validate(&crash(1))
                .unwrap_err()
                .contains("another process")
        );
        assert!(
            faults
                .validate(&crash(9))
                .unwrap_err()
                .contains("not a member")
        );
        let drift = Fault::ClockDrift {
            node: NodeId(0),
            drift_ppm: 200_000,
            duration_ns: 1,
        };
        assert!(faults.validate(&drift).unwrap_err().contains("drift_ppm"));
        let zero = Fault::Pause {
            node: NodeId(0),
            duration_ns: 0,
        };
        assert!(faults.validate(&zero).unwrap_err().contains("duration_ns"));
    }

    #[test]
    fn clocks_drift_continuously_and_jumps_move_only_the_wall() {
        let origin = Instant::now();
        let mut clock = NodeClock::new(origin);
        let at = |ms| origin + Duration::from_millis(ms);
        assert_eq!(clock.local_ns(at(1_000)), 1_000_000_000);
        // +100000 ppm: a slow clock, 1 local s per 1.1 real s.
        clock.set_drift(at(1_000), 100_000);
        assert_eq!(
            clock.local_ns(at(1_000)),
            1_000_000_000,
            "no jump at the change"
        );
        assert_eq!(clock.local_ns(at(2_100)), 2_000_000_000);
        assert_eq!(
            clock.real_delay(1_000_000_000),
            Duration::from_millis(1_100)
        );
        assert_eq!(clock.wall_skew_ns(origin, at(2_100)), -100_000_000);
        clock.set_drift(at(2_100), 0);
        assert_eq!(
            clock.local_ns(at(3_100)),
            3_000_000_000,
            "time lost stays lost"
        );
        clock.wall_jump_ns += 5_000;
        assert_eq!(clock.wall_skew_ns(origin, at(3_100)), -100_000_000 + 5_000);
        assert_eq!(
            clock.local_ns(at(3_100)),
            3_000_000_000,
            "mono does not jump"
        );
    }
}
