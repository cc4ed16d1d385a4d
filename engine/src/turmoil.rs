//! The turmoil engine: each node a turmoil host, messages as UDP datagrams
//! over `turmoil::net`, timers on the host's paused tokio clock, the seed
//! passed to turmoil's builder.
//!
//! | what | turmoil |
//! |---|---|
//! | latency range | `min/max_message_latency` (turmoil's own exponential curve within the range) |
//! | slow tail | our sender holds the tail's share of messages up to the tail's end (turmoil's one curve cannot put a tenth of the messages seconds late) |
//! | random drop | `fail_rate` (with `repair_rate` 1): a link fails for one message, losing what it carried, and the next message repairs it; a loss rate `p` is a fail rate `p / (1 - p)`, so at most half the messages can be lost and a higher `drop_ppm` is refused |
//! | partition (both ways or one way) | `partition_oneway` / `repair_oneway`, per direction |
//! | clog | `hold` / `release` (turmoil holds a link both ways) |
//! | crash, reboot | `crash` / `bounce`; a reboot also restarts the monotonic clock |
//! | degrade | per link `set_link_fail_rate` and `set_link_latency`; duplicates by our sender |
//! | duplicate | our sender sends a second copy (turmoil has no duplicates) |
//! | pause, clock drift, jumps, offsets | our clock layer ([`crate::driver`]) |
//!
//! Time moves in ticks of [`TICK`]: faults start and heal on a tick, and a
//! timer or message due within a tick runs at its own time inside it.

// turmoil's network takes its rates as floats: they configure the engine,
// they decide nothing in a node.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dst::error::Error;
use dst::scenario::Scenario;
use dst::world::{RunOptions, RunResult};
use node::NodeId;
use plane::protocol::Msg;
use sim::{Fault, StopReason};
use turmoil::net::UdpSocket;

use crate::Plan;
use crate::driver::{Io, SharedRef, run_node};
use crate::world::{Links, Shared, timeline};

/// The port every node listens on.
const PORT: u16 = 7000;
/// turmoil's step: every host runs this much simulated time per step.
pub const TICK: Duration = Duration::from_millis(1);
/// The largest frame a node reads.
const MAX_FRAME: usize = 4 << 20;

struct TurmoilIo {
    me: NodeId,
    socket: Rc<UdpSocket>,
    addrs: Rc<Vec<SocketAddr>>,
}

fn now_ns() -> u64 {
    turmoil::sim_elapsed().map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

impl Io for TurmoilIo {
    fn now_ns(&self) -> u64 {
        now_ns()
    }

    fn sleep_until(&self, at_ns: u64) -> impl std::future::Future<Output = ()> {
        tokio::time::sleep(Duration::from_nanos(at_ns.saturating_sub(now_ns())))
    }

    fn send(&self, to: NodeId, message: &Msg, delay_ns: u64) {
        let frame = serde_json::to_vec(&(self.me.0, message)).expect("a message is JSON");
        let to = self.addrs[to.index()];
        // Lost like any datagram if nobody listens (the receiver is down).
        if delay_ns == 0 {
            let _ = self.socket.try_send_to(&frame, to);
        } else {
            let socket = self.socket.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(Duration::from_nanos(delay_ns)).await;
                let _ = socket.try_send_to(&frame, to);
            });
        }
    }
}

/// The host software of node `id`: bind, read frames into the inbox, run
/// the node. turmoil calls it again on every bounce.
async fn host(
    shared: SharedRef,
    id: NodeId,
    names: Rc<Vec<String>>,
    node: Box<dyn node::Node<plane::ControlPlane> + Send>,
) -> turmoil::Result {
    let socket = Rc::new(UdpSocket::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?);
    let addrs: Vec<SocketAddr> = names
        .iter()
        .map(|name| SocketAddr::new(turmoil::lookup(name.as_str()), PORT))
        .collect();
    let (inbox, received) = futures_channel::mpsc::unbounded();
    let reader = socket.clone();
    tokio::task::spawn_local(async move {
        let mut buffer = vec![0u8; MAX_FRAME];
        while let Ok((len, _)) = reader.recv_from(&mut buffer).await {
            let (from, message): (u32, Msg) =
                serde_json::from_slice(&buffer[..len]).expect("a frame from a node");
            if inbox.unbounded_send((NodeId(from), message)).is_err() {
                break;
            }
        }
    });
    let io = TurmoilIo {
        me: id,
        socket,
        addrs: Rc::new(addrs),
    };
    run_node(shared, id, node, received, io).await;
    Ok(())
}

/// The largest loss turmoil's link model can express (see the table).
const MAX_DROP_PPM: u32 = 500_000;

/// turmoil's fail rate for a loss of `ppm`: with every failed link
/// repaired by the next message, a fail rate `f` loses `f / (1 + f)` of
/// the messages.
fn fail_rate(ppm: u32) -> f64 {
    let p = f64::from(ppm.min(MAX_DROP_PPM)) / 1e6;
    p / (1.0 - p)
}

/// The network's settings, as turmoil takes them.
struct Weather {
    min: Duration,
    max: Duration,
    drop_rate: f64,
}

fn weather(scenario: &Scenario) -> Weather {
    let n = &scenario.network;
    Weather {
        min: Duration::from_micros(n.latency_min_us),
        max: Duration::from_micros(n.latency_max_us),
        drop_rate: fail_rate(n.drop_ppm),
    }
}

/// Runs `scenario` once on turmoil: the same phases as the simulator's run
/// (the workload and the faults, then a calm network for the liveness
/// bound), then the same checkers.
pub fn run_scenario(scenario: &Scenario, options: &RunOptions) -> Result<RunResult, Error> {
    let plan = Plan::new(scenario, options, TICK.as_nanos() as u64)?;
    if scenario.network.drop_ppm > MAX_DROP_PPM {
        return Err(Error::bad_input(
            format!("scenario {:?}", scenario.name),
            format!(
                "network.drop_ppm = {}: turmoil loses at most {MAX_DROP_PPM} ppm (a failed link is repaired by the next message)",
                scenario.network.drop_ppm
            ),
        ));
    }
    crate::refuse("turmoil", &plan.faults, &plan.names, |fault| match fault {
        Fault::Degrade { drop_ppm, .. } if *drop_ppm > MAX_DROP_PPM => Some(
            "turmoil's links fail for one message and are repaired by the next, so at most 500000 ppm of a link's messages can be lost",
        ),
        _ => None,
    })?;
    let seed = options.seed;
    let n = &scenario.network;
    let shared: SharedRef = Arc::new(Mutex::new(Shared::new(
        seed,
        &plan.clocks,
        n.duplicate_ppm,
        crate::world::Tail::of(n),
        scenario.run.max_events,
        options.keep_trace,
    )));
    let w = weather(scenario);
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .epoch(std::time::UNIX_EPOCH)
        .tick_duration(TICK)
        .simulation_duration(Duration::from_nanos(plan.end_ns) + Duration::from_secs(3_600))
        .min_message_latency(w.min)
        .max_message_latency(w.max)
        .fail_rate(w.drop_rate)
        .repair_rate(1.0)
        .udp_capacity(1 << 20);
    let mut sim = builder.build();
    let names: Vec<String> = plan.names.iter().map(|(name, _)| name.clone()).collect();
    let shared_names = Rc::new(names.clone());
    for (index, (name, role)) in plan.names.iter().enumerate() {
        let id = NodeId(index as u32);
        let (shared, names, role) = (shared.clone(), shared_names.clone(), *role);
        let (topology, settings) = (plan.topology.clone(), plan.settings.clone());
        sim.host(name.as_str(), move || {
            let node = plane::cluster::build_node(role, &topology, &settings);
            host(shared.clone(), id, names.clone(), node)
        });
    }

    let lossy = n.drop_ppm > 0;
    let calm_at = plan.calm_at_ns(scenario);
    let events = timeline(&plan.faults);
    let mut next = 0;
    let mut links = Links::default();
    let mut degrades: Vec<usize> = Vec::new();
    let mut touched: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
    let mut calm = false;
    let mut stop = StopReason::Deadline;
    loop {
        let now = sim.elapsed().as_nanos() as u64;
        if !calm && now >= calm_at {
            // The liveness phase: no loss, no duplicates, no slow tail.
            calm = true;
            sim.set_fail_rate(0.0);
            for &(a, b) in &touched {
                sim.set_link_fail_rate(names[a.index()].as_str(), names[b.index()].as_str(), 0.0);
            }
            lock(&shared).calm();
        }
        while let Some(&(at, heal, index)) = events.get(next).filter(|e| e.0 <= now) {
            next += 1;
            let _ = at;
            let scheduled = &plan.faults[index];
            let mut shared_now = lock(&shared);
            let act = if heal {
                shared_now.heal_fault(now, index, scheduled)
            } else {
                shared_now.start_fault(now, index, scheduled)
            };
            drop(shared_now);
            let on = !heal;
            match &scheduled.fault {
                Fault::Partition { .. } | Fault::Clog { .. } => {
                    for (a, b) in links.apply(&scheduled.fault, on) {
                        set_link(&sim, &links, &names, a, b);
                    }
                }
                // As in the simulator: a node down stays down, and one a
                // later heal restarted already is not restarted again.
                Fault::Crash { node, .. } | Fault::Reboot { node, .. } if act => {
                    let name = names[node.index()].as_str();
                    if on {
                        sim.crash(name);
                    } else {
                        sim.bounce(name);
                    }
                }
                Fault::Crash { .. } | Fault::Reboot { .. } => {}
                Fault::Degrade { .. } => {
                    if on {
                        degrades.push(index);
                    } else {
                        degrades.retain(|&d| d != index);
                    }
                    set_degrades(&mut sim, &plan, &w, &degrades, &mut touched, calm);
                }
                Fault::Pause { .. } | Fault::ClockJump { .. } | Fault::ClockDrift { .. } => {}
            }
        }
        if lock(&shared).limit_hit() {
            stop = StopReason::EventLimit;
            break;
        }
        if now >= plan.end_ns {
            break;
        }
        if lossy && !calm && (now / TICK.as_nanos() as u64) % 100 == 0 {
            // turmoil does not say which messages it lost: the whole lossy
            // phase counts as disturbed for quiet-window checks.
            lock(&shared).disturbed(now);
        }
        if let Err(error) = sim.step() {
            panic!("turmoil stopped the run: {error}");
        }
    }
    let end_ns = sim.elapsed().as_nanos() as u64;
    drop(sim);
    let shared = Arc::try_unwrap(shared)
        .ok()
        .expect("the hosts are gone")
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(plan.result(
        scenario,
        options,
        shared.finish(),
        end_ns,
        stop,
        dst::engine::Engine::Turmoil,
    ))
}

fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sets the link between `a` and `b` as the partitions and clogs in force
/// say: held if either way is clogged, then each way cut if partitioned.
fn set_link(sim: &turmoil::Sim<'_>, links: &Links, names: &[String], a: NodeId, b: NodeId) {
    let (name_a, name_b) = (names[a.index()].as_str(), names[b.index()].as_str());
    if links.held(a, b) || links.held(b, a) {
        sim.hold(name_a, name_b);
    } else {
        sim.release(name_a, name_b);
    }
    if links.cut(a, b) {
        sim.partition_oneway(name_a, name_b);
    }
    if links.cut(b, a) {
        sim.partition_oneway(name_b, name_a);
    }
}

/// Sets every link's loss and latency from the degrade faults in force
/// (the worst of those covering a link) or the scenario's network.
fn set_degrades(
    sim: &mut turmoil::Sim<'_>,
    plan: &Plan,
    w: &Weather,
    active: &[usize],
    touched: &mut BTreeSet<(NodeId, NodeId)>,
    calm: bool,
) {
    let count = plan.names.len() as u32;
    for a in 0..count {
        for b in a + 1..count {
            let (a, b) = (NodeId(a), NodeId(b));
            let (mut drop_ppm, mut delay_ns, mut covered) = (0u32, 0u64, false);
            for &index in active {
                if let Fault::Degrade {
                    nodes,
                    drop_ppm: d,
                    delay_ns: l,
                    ..
                } = &plan.faults[index].fault
                    && (nodes.is_empty() || nodes.contains(&a) || nodes.contains(&b))
                {
                    covered = true;
                    drop_ppm = drop_ppm.max(*d);
                    delay_ns = delay_ns.max(*l);
                }
            }
            if !covered && !touched.contains(&(a, b)) {
                continue;
            }
            touched.insert((a, b));
            let (name_a, name_b) = (
                plan.names[a.index()].0.as_str(),
                plan.names[b.index()].0.as_str(),
            );
            let base = if calm { 0.0 } else { w.drop_rate };
            let rate = if drop_ppm > 0 {
                fail_rate(drop_ppm)
            } else {
                base
            };
            sim.set_link_fail_rate(name_a, name_b, rate);
            let delay = Duration::from_nanos(delay_ns);
            sim.set_link_latency(name_a, name_b, w.min + delay);
            sim.set_link_max_message_latency(name_a, name_b, w.max + delay);
        }
    }
}
