//! The madsim engine: each control-plane node a madsim node created
//! through its runtime, messages over a `madsim::net::Endpoint` bound on
//! each, time from madsim's clock, crashes, restarts and pauses through its
//! `Handle`, cuts through its network simulator (`NetSim`), the seed given
//! to its runtime. Everything else is the shared engine layer
//! ([`engine::driver::run_node`], [`engine::world::Shared`], [`Plan`]), so
//! the result is judged by the simulator's own checkers.
//!
//! madsim needs `--cfg madsim`, so this crate stands alone (its own
//! workspace, lock file and target directory); `./madsim/run` is cargo run
//! from here, e.g. `./madsim/run test --release`.
//!
//! | what | madsim |
//! |---|---|
//! | latency range | `Config::net.send_latency` (uniform), less the 2 ms madsim's endpoints add to every message ([`ENDPOINT_NS`]), so the largest latency is the scenario's and the smallest at least 2 ms |
//! | random drop | `Config::net.packet_loss_rate` |
//! | slow tail | our sender holds a `tail_ppm` share of messages so they land past the ordinary range (`engine::world::Tail`, as on turmoil; madsim has no tail) |
//! | partition (both ways or one way) | `NetSim::clog_link` / `unclog_link`, per direction, counted so that overlapping cuts heal one at a time (madsim's clog drops a datagram on a cut link: a partition) |
//! | clog | our transport: the receiver's reader holds what arrives on the clogged link and the heal releases it into the node's inbox in a burst, in arrival order (the simulator's semantics); messages held for a node that crashed meanwhile are lost |
//! | crash, reboot | `Handle::kill`, then `Handle::restart` on heal (madsim runs the node's init again, which boots it from [`engine::world::Shared`] once its endpoint is bound, madsim's 1 ms later); a reboot also restarts the monotonic clock; a crash of a node down, or a heal of one up, does nothing, as in the simulator |
//! | pause | `Handle::pause` / `resume` (messages and timers queue and arrive at once; [`Shared::pause_natively`] keeps the shared layer from pausing too); counted, so overlapping pauses resume at the last heal, and a crash ends them, as in the simulator |
//! | degrade of every link | `NetSim::update_config`: loss combined with the scenario's, latency range shifted by the delay; duplicates by our sender |
//! | degrade of some nodes' links | refused: madsim has one loss rate and one latency range for the whole network |
//! | duplicate | our sender sends a second copy (madsim has no duplicates) |
//! | clock drift, jumps, offsets | our clock layer ([`engine::driver`]) |
//!
//! The clog is carried out rather than refused: it is the fault that
//! delivers stale messages in a burst, which is what fencing tokens and
//! lease margins exist for, and holding at the receiver's reader gives the
//! simulator's semantics exactly (held on arrival, released at the heal, in
//! order, lost if the receiver crashed) with nothing patched in madsim.
//!
//! Time: madsim's clock is in nanoseconds, but it wakes a sleeper 50 ns
//! after its deadline and moves on 50 to 100 ns with every task it polls,
//! so what the simulator does at one instant (a pause heals, the node's
//! queued timers fire) would land a few hundred nanoseconds apart, and the
//! checkers would see the paused holder running past its pause. Nodes and
//! the supervisor therefore read madsim's clock down to a tick of
//! [`TICK_NS`] (10 us) and sleep to the tick at or after their deadline;
//! faults are quantized to that tick ([`engine::quantize`]), applied in the
//! tick they are due and recorded at their planned time, so the applied
//! list equals the plan and a replay of it reproduces the run. madsim's own
//! `sleep` lasts at least 1 ms, so our sleeps set their exact deadline
//! (`Sleep::reset`).
//!
//! madsim's endpoints wait at least 1 ms in every send and every receive;
//! each node keeps many receives waiting, so that wait delays a message
//! without throttling the node.
//!
//! madsim's loss and latency draws do not say which messages they lost or
//! slowed: with loss or a slow tail, the whole safety phase counts as
//! disturbed for the checkers' quiet-window checks (as on turmoil).

// madsim's network takes its loss rate as a float: it configures the
// engine, it decides nothing in a node.
#![allow(clippy::cast_precision_loss)]

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dst::error::Error;
use dst::scenario::{NetworkSpec, Scenario};
use dst::world::{RunOptions, RunResult};
use engine::Plan;
use engine::driver::{Io, SharedRef, run_node};
use engine::world::{Links, Shared, timeline};
use futures_channel::mpsc::{UnboundedSender, unbounded};
use futures_util::StreamExt;
use futures_util::future::select;
use futures_util::stream::FuturesUnordered;
use madsim::net::{Endpoint, NetSim, Payload};
use madsim::runtime::{Handle, NodeHandle, Runtime};
use madsim::time::TimeHandle;
use node::NodeId;
use plane::cluster::Role;
use plane::config::{Settings, Topology};
use plane::protocol::Msg;
use sim::{Fault, StopReason};

/// The engine's name, in refusals.
pub const ENGINE: &str = "madsim";
/// The port every node's endpoint is bound to.
const PORT: u16 = 7000;
/// The endpoint tag our messages travel with.
const TAG: u64 = 0x00C0_FFEE;
/// How often the lossy safety phase is marked disturbed.
const MARK_NS: u64 = 100 * node::MILLISECOND_NS;
/// The step time moves in, as nodes see it (see the module docs).
pub const TICK_NS: u64 = 10_000;
/// What madsim's endpoints add to every message: a send and a receive
/// each wait at least 1 ms (their random delay sleeps through a `sleep`
/// with a 1 ms floor).
pub const ENDPOINT_NS: u64 = 2 * node::MILLISECOND_NS;
/// Receives each node keeps waiting at once: a receive holds its message
/// for madsim's 1 ms delay, so one at a time would let a node take in one
/// message per millisecond.
const RECEIVES: usize = 256;

/// What travels between endpoints: the sender and the message, boxed as
/// madsim's payload (no serialization).
type Frame = (NodeId, Msg);
/// A node's inbox, as [`run_node`] reads it.
type Inbox = UnboundedSender<(NodeId, Msg)>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// madsim's own clock, in nanoseconds since the run (its runtime) began.
fn madsim_ns() -> u64 {
    TimeHandle::current().elapsed().as_nanos() as u64
}

/// Simulated time as the nodes and the supervisor see it: madsim's clock
/// down to the last [`TICK_NS`], so that what madsim runs in one step
/// (jittered by its 50 to 100 ns per task) happens at one time.
fn now_ns() -> u64 {
    let now = madsim_ns();
    now - now % TICK_NS
}

/// Waits until [`now_ns`] reads `at_ns` or later: until madsim's clock
/// reaches the tick at or after it, exactly (madsim's own `sleep` lasts at
/// least 1 ms, so the deadline is set again with `reset`). A time already
/// reached does not wait at all.
async fn sleep_until_ns(at_ns: u64) {
    let at = at_ns.div_ceil(TICK_NS).saturating_mul(TICK_NS);
    let time = TimeHandle::current();
    let now = time.elapsed().as_nanos() as u64;
    if at <= now {
        return;
    }
    let mut sleep = time.sleep(Duration::ZERO);
    let deadline = time.now_instant() + Duration::from_nanos(at - now);
    Pin::new(&mut sleep).reset(deadline);
    sleep.await;
}

/// The address of node `index`.
fn address(index: usize) -> SocketAddr {
    let host = index + 1;
    let ip = Ipv4Addr::new(10, 0, (host >> 8) as u8, (host & 0xff) as u8);
    SocketAddr::new(IpAddr::V4(ip), PORT)
}

/// A message held on a clogged link.
struct Held {
    from: NodeId,
    to: NodeId,
    /// The receiver's incarnation when it arrived.
    epoch: u64,
    message: Msg,
}

/// Our transport layer, outside madsim's nodes: the links cut and held,
/// what the clogs hold, and each node's current inbox.
struct Transport {
    links: Links,
    held: Vec<Held>,
    /// Each node's incarnation, bumped by every crash.
    epochs: Vec<u64>,
    /// Each node's inbox while it runs, with its incarnation.
    inboxes: Vec<Option<(u64, Inbox)>>,
}

impl Transport {
    fn new(nodes: usize) -> Self {
        Self {
            links: Links::default(),
            held: Vec::new(),
            epochs: vec![0; nodes],
            inboxes: vec![None; nodes],
        }
    }

    /// Node `id` boots with `inbox`; returns its incarnation.
    fn attach(&mut self, id: NodeId, inbox: Inbox) -> u64 {
        let epoch = self.epochs[id.index()];
        self.inboxes[id.index()] = Some((epoch, inbox));
        epoch
    }

    /// Node `id` crashed: what was held for it is lost, and so is what
    /// is still on its way to this incarnation.
    fn crashed(&mut self, id: NodeId) {
        self.epochs[id.index()] += 1;
        self.inboxes[id.index()] = None;
        self.held.retain(|held| held.to != id);
    }

    /// The clog on `from -> to` healed: what it held goes into the
    /// receiver's inbox at once, in the order it arrived.
    fn release(&mut self, from: NodeId, to: NodeId) {
        let held = std::mem::take(&mut self.held);
        for held in held {
            if held.from != from || held.to != to {
                self.held.push(held);
                continue;
            }
            if let Some((epoch, inbox)) = &self.inboxes[to.index()]
                && *epoch == held.epoch
            {
                let _ = inbox.unbounded_send((from, held.message));
            }
        }
    }
}

/// A node's way to madsim: its endpoint, and the node that carries sends.
struct MadsimIo {
    me: NodeId,
    endpoint: Endpoint,
    addresses: Arc<Vec<SocketAddr>>,
    wire: NodeHandle,
}

impl Io for MadsimIo {
    fn now_ns(&self) -> u64 {
        now_ns()
    }

    fn sleep_until(&self, at_ns: u64) -> impl Future<Output = ()> {
        sleep_until_ns(at_ns)
    }

    fn send(&self, to: NodeId, message: &Msg, late_ns: u64) {
        // madsim's send is async: it runs as a task of the wire node, so
        // `send` stays synchronous, and a message once sent is on the
        // network even if its sender crashes or pauses right after.
        let endpoint = self.endpoint.clone();
        let destination = self.addresses[to.index()];
        let frame: Box<Frame> = Box::new((self.me, message.clone()));
        self.wire.spawn(async move {
            if late_ns > 0 {
                sleep_until_ns(madsim_ns() + late_ns).await;
            }
            // Lost like any datagram if nobody listens (the receiver is
            // down) or the link is cut.
            let _ = endpoint.send_to_raw(destination, TAG, frame).await;
        });
    }
}

/// What a madsim node runs, and runs again on every restart.
struct Host {
    id: NodeId,
    role: Role,
    topology: Topology,
    settings: Settings,
    shared: SharedRef,
    transport: Arc<Mutex<Transport>>,
    addresses: Arc<Vec<SocketAddr>>,
    wire: NodeHandle,
    /// Told when the run hits its event limit.
    limit: UnboundedSender<()>,
}

impl Host {
    /// Binds the endpoint, reads it into the inbox, and runs the node.
    async fn run(self: Arc<Self>) {
        let id = self.id;
        let endpoint = Endpoint::bind(self.addresses[id.index()])
            .await
            .expect("a node's address is free");
        let (inbox, received) = unbounded();
        let epoch = lock(&self.transport).attach(id, inbox.clone());
        madsim::task::spawn_local(read(
            endpoint.clone(),
            inbox,
            id,
            epoch,
            self.transport.clone(),
            self.shared.clone(),
        ));
        let io = MadsimIo {
            me: id,
            endpoint,
            addresses: self.addresses.clone(),
            wire: self.wire.clone(),
        };
        let node = plane::cluster::build_node(self.role, &self.topology, &self.settings);
        run_node(self.shared.clone(), id, node, received, io).await;
        if lock(&self.shared).limit_hit() {
            let _ = self.limit.unbounded_send(());
        }
    }
}

/// One receive on `endpoint`.
async fn receive(endpoint: Endpoint) -> std::io::Result<(Payload, SocketAddr)> {
    endpoint.recv_from_raw(TAG).await
}

/// Node `me`'s reader: what arrives goes into its inbox, or is held while
/// its link is clogged. It keeps [`RECEIVES`] receives waiting, so that
/// madsim's delay on each does not throttle the node.
async fn read(
    endpoint: Endpoint,
    inbox: Inbox,
    me: NodeId,
    epoch: u64,
    transport: Arc<Mutex<Transport>>,
    shared: SharedRef,
) {
    let mut receives: FuturesUnordered<_> =
        (0..RECEIVES).map(|_| receive(endpoint.clone())).collect();
    while let Some(Ok((payload, _))) = receives.next().await {
        receives.push(receive(endpoint.clone()));
        let (from, message) = *payload
            .downcast::<Frame>()
            .expect("only our frames travel with our tag");
        let mut transport = lock(&transport);
        if transport.links.held(from, me) {
            lock(&shared).hold(now_ns(), from, me, &message);
            transport.held.push(Held {
                from,
                to: me,
                epoch,
                message,
            });
            continue;
        }
        drop(transport);
        if inbox.unbounded_send((from, message)).is_err() {
            break;
        }
    }
}

/// madsim's network settings: the scenario's (no loss once `calm`),
/// with the degrades of every link in force (`(drop_ppm, delay_ns)`).
fn weather(network: &NetworkSpec, calm: bool, degrades: &[(u32, u64)]) -> madsim::net::Config {
    let base = if calm {
        0.0
    } else {
        f64::from(network.drop_ppm) / 1e6
    };
    let worst_drop = degrades.iter().map(|&(drop, _)| drop).max().unwrap_or(0);
    let delay = degrades.iter().map(|&(_, delay)| delay).max().unwrap_or(0);
    // Lost by the network or by the degrade: two independent draws.
    let degraded = f64::from(worst_drop) / 1e6;
    let packet_loss_rate = 1.0 - (1.0 - base) * (1.0 - degraded);
    // madsim's endpoints add ENDPOINT_NS to every message: its own draw
    // is the rest, so the largest latency stays the scenario's.
    let low = (network.latency_min_us * 1_000 + delay).saturating_sub(ENDPOINT_NS);
    let high = (network.latency_max_us * 1_000 + delay).saturating_sub(ENDPOINT_NS);
    let (low, high) = (Duration::from_nanos(low), Duration::from_nanos(high));
    // madsim draws from a half-open range: keep it non-empty.
    let high = high.max(low + Duration::from_nanos(1));
    madsim::net::Config {
        packet_loss_rate,
        send_latency: low..high,
    }
}

/// Whether a degrade of `nodes` covers every link of a cluster of `count`
/// nodes (each link has an end in `nodes`): true for `nodes` empty, or
/// for all nodes but at most one.
fn every_link(nodes: &[NodeId], count: usize) -> bool {
    let named: BTreeSet<NodeId> = nodes.iter().copied().collect();
    nodes.is_empty() || named.len() + 1 >= count
}

/// Why madsim cannot express `fault`, if it cannot.
fn cannot(fault: &Fault, count: usize) -> Option<&'static str> {
    match fault {
        Fault::Degrade { nodes, .. } if !every_link(nodes, count) => Some(
            "madsim has one loss rate and one latency range for the whole network, \
             so only a degrade of every link (`nodes` empty) maps onto it",
        ),
        _ => None,
    }
}

/// madsim's configuration for `scenario`: its network's loss and latency.
fn config(scenario: &Scenario) -> madsim::Config {
    madsim::Config {
        net: weather(&scenario.network, false, &[]),
        ..madsim::Config::default()
    }
}

/// Runs `scenario` once on madsim: the same phases as the simulator's run
/// (the workload and the faults, then a calm network for the liveness
/// bound), then the same checkers. A fault list holding a kind madsim
/// cannot express is refused, naming it, before anything runs.
pub fn run_scenario(scenario: &Scenario, options: &RunOptions) -> Result<RunResult, Error> {
    Runtime::with_seed_and_config(options.seed, config(scenario)).block_on(run(scenario, options))
}

/// [`run_scenario`] twice under madsim's own determinism check, which logs
/// every random number madsim draws (scheduling, latency, loss) in the
/// first run and compares the second run's draws with it: the runs must
/// have made the same choices in the same order, not only reached the
/// same trace hash. Returns the second run's result.
///
/// # Panics
/// With madsim's message, where the second run first draws differently
/// (non-determinism in the run or in the nodes).
pub fn check_determinism(scenario: &Scenario, options: &RunOptions) -> Result<RunResult, Error> {
    // madsim's check takes a plain `fn`: the run's inputs wait here, one
    // check at a time.
    static JOB: Mutex<Option<(Scenario, RunOptions)>> = Mutex::new(None);
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = lock(&ONE_AT_A_TIME);
    *lock(&JOB) = Some((scenario.clone(), options.clone()));
    Runtime::check_determinism(options.seed, config(scenario), || async {
        let (scenario, options) = lock(&JOB).clone().expect("the check's run is set");
        run(&scenario, &options).await
    })
}

/// One run, inside a madsim runtime made for it.
async fn run(scenario: &Scenario, options: &RunOptions) -> Result<RunResult, Error> {
    let plan = Plan::new(scenario, options, TICK_NS)?;
    let count = plan.names.len();
    engine::refuse(ENGINE, &plan.faults, &plan.names, |fault| {
        cannot(fault, count)
    })?;
    let mut shared = Shared::new(
        options.seed,
        &plan.clocks,
        scenario.network.duplicate_ppm,
        engine::world::Tail::of(&scenario.network),
        scenario.run.max_events,
        options.keep_trace,
    );
    shared.pause_natively();
    let shared: SharedRef = Arc::new(Mutex::new(shared));
    let (end_ns, stop) = play(scenario, &plan, shared.clone()).await;
    // The killed nodes' tasks (and the runtime's copies of their init)
    // still hold the shared state until the runtime goes: take it out.
    let finished = std::mem::replace(
        &mut *lock(&shared),
        Shared::new(0, &[], 0, Default::default(), 0, false),
    )
    .finish();
    Ok(plan.result(
        scenario,
        options,
        finished,
        end_ns,
        stop,
        dst::engine::Engine::Madsim,
    ))
}

/// The run inside madsim's runtime: creates the nodes, then supervises:
/// plays the fault timeline at its times, calms the network for the
/// liveness phase, and stops at the end or at the event limit. Returns
/// when it stopped and why.
async fn play(scenario: &Scenario, plan: &Plan, shared: SharedRef) -> (u64, StopReason) {
    let handle = Handle::current();
    let net = NetSim::current();
    let count = plan.names.len();
    let addresses: Arc<Vec<SocketAddr>> = Arc::new((0..count).map(address).collect());
    let transport = Arc::new(Mutex::new(Transport::new(count)));
    let (limit, mut limited) = unbounded::<()>();
    // Carries the sends: a node of its own that never crashes or pauses.
    let wire = handle.create_node().name("wire").build();
    let mut ids = Vec::with_capacity(count);
    for (index, (name, role)) in plan.names.iter().enumerate() {
        let host = Arc::new(Host {
            id: NodeId(index as u32),
            role: *role,
            topology: plan.topology.clone(),
            settings: plan.settings.clone(),
            shared: shared.clone(),
            transport: transport.clone(),
            addresses: addresses.clone(),
            wire: wire.clone(),
            limit: limit.clone(),
        });
        let madsim_node = handle
            .create_node()
            .name(name.as_str())
            .ip(addresses[index].ip())
            .init(move || host.clone().run())
            .build();
        ids.push(madsim_node.id());
    }
    // `limit` stays open (this sender lives to the end), so waiting on it
    // never returns at once.

    let network = &scenario.network;
    let lossy = network.drop_ppm > 0 || network.tail_ppm > 0;
    let calm_at = plan.calm_at_ns(scenario);
    let events = timeline(&plan.faults);
    let mut next = 0;
    let mut next_mark = 0u64;
    let mut calm = false;
    let mut pauses: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); count];
    let mut degrades: Vec<usize> = Vec::new();
    let mut stop = StopReason::Deadline;
    loop {
        let now = now_ns();
        if !calm && now >= calm_at {
            // The liveness phase: no loss, no duplicates, no slow tail.
            calm = true;
            let degraded = degraded(plan, &degrades);
            net.update_config(|config| *config = weather(network, true, &degraded));
            lock(&shared).calm();
        }
        while let Some(&(at, heal, index)) = events.get(next).filter(|event| event.0 <= now) {
            next += 1;
            let scheduled = &plan.faults[index];
            let act;
            {
                // Recorded at its planned time: madsim reached it within
                // its step (see the module docs).
                let mut shared = lock(&shared);
                act = if heal {
                    shared.heal_fault(at, index, scheduled)
                } else {
                    shared.start_fault(at, index, scheduled)
                };
            }
            let on = !heal;
            match &scheduled.fault {
                Fault::Partition { .. } => {
                    let mut transport = lock(&transport);
                    for (a, b) in transport.links.apply(&scheduled.fault, on) {
                        if transport.links.cut(a, b) {
                            net.clog_link(ids[a.index()], ids[b.index()]);
                        } else {
                            net.unclog_link(ids[a.index()], ids[b.index()]);
                        }
                    }
                }
                Fault::Clog { .. } => {
                    let mut transport = lock(&transport);
                    for (a, b) in transport.links.apply(&scheduled.fault, on) {
                        if !on {
                            transport.release(a, b);
                        }
                    }
                }
                Fault::Crash { node, .. } | Fault::Reboot { node, .. } => {
                    // As in the simulator: a node down stays down, one up
                    // is not restarted again (Shared decides, in `act`).
                    let i = node.index();
                    if act && on {
                        pauses[i].clear();
                        lock(&transport).crashed(*node);
                        handle.kill(ids[i]);
                    } else if act {
                        handle.restart(ids[i]);
                    }
                }
                Fault::Pause { node, .. } => {
                    let i = node.index();
                    if on {
                        // A node restarting but not yet booted pauses too:
                        // its boot waits for the resume, as in the simulator.
                        if !lock(&shared).is_down(*node) {
                            if pauses[i].is_empty() {
                                handle.pause(ids[i]);
                            }
                            pauses[i].insert(index);
                        }
                    } else if pauses[i].remove(&index) && pauses[i].is_empty() {
                        handle.resume(ids[i]);
                    }
                }
                Fault::Degrade { .. } => {
                    if on {
                        degrades.push(index);
                    } else {
                        degrades.retain(|&other| other != index);
                    }
                    let degraded = degraded(plan, &degrades);
                    net.update_config(|config| *config = weather(network, calm, &degraded));
                }
                Fault::ClockJump { .. } | Fault::ClockDrift { .. } => {}
            }
        }
        if lossy && !calm {
            // madsim does not say which messages it lost or slowed: the
            // whole lossy phase counts as disturbed.
            let mut shared = lock(&shared);
            while next_mark <= now {
                shared.disturbed(next_mark);
                next_mark += MARK_NS;
            }
        }
        if lock(&shared).limit_hit() {
            stop = StopReason::EventLimit;
            break;
        }
        if now >= plan.end_ns {
            break;
        }
        let mut wake = plan.end_ns;
        if let Some(&(at, _, _)) = events.get(next) {
            wake = wake.min(at);
        }
        if !calm {
            wake = wake.min(calm_at);
            if lossy {
                wake = wake.min(next_mark);
            }
        }
        // The event limit wakes us early.
        let _ = select(limited.next(), Box::pin(sleep_until_ns(wake))).await;
    }
    let end_ns = now_ns();
    for (i, &id) in ids.iter().enumerate() {
        let node = NodeId(u32::try_from(i).expect("node indices fit u32"));
        if !lock(&shared).is_down(node) {
            handle.kill(id);
        }
    }
    handle.kill(wire.id());
    drop(limit);
    (end_ns, stop)
}

/// The `(drop_ppm, delay_ns)` of the degrades in force.
fn degraded(plan: &Plan, active: &[usize]) -> Vec<(u32, u64)> {
    active
        .iter()
        .filter_map(|&index| match &plan.faults[index].fault {
            Fault::Degrade {
                drop_ppm, delay_ns, ..
            } => Some((*drop_ppm, *delay_ns)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_degrade_of_every_link_is_expressible_and_of_some_is_not() {
        let degrade = |nodes: Vec<NodeId>| Fault::Degrade {
            nodes,
            drop_ppm: 1,
            duplicate_ppm: 0,
            delay_ns: 0,
            duration_ns: 1,
        };
        assert!(cannot(&degrade(vec![]), 4).is_none());
        assert!(cannot(&degrade(vec![NodeId(0), NodeId(1), NodeId(2)]), 4).is_none());
        assert!(cannot(&degrade(vec![NodeId(0), NodeId(1)]), 4).is_some());
    }

    #[test]
    fn weather_keeps_the_latency_range_non_empty_and_combines_losses() {
        let network = NetworkSpec {
            latency_min_us: 3_000,
            latency_max_us: 3_000,
            drop_ppm: 500_000,
            ..NetworkSpec::default()
        };
        let config = weather(&network, false, &[(500_000, 1_000)]);
        assert!(config.send_latency.start < config.send_latency.end);
        // 3 ms and 1 us of degrade delay, less madsim's 2 ms at the ends.
        assert_eq!(config.send_latency.start, Duration::from_micros(1_001));
        assert!((config.packet_loss_rate - 0.75).abs() < 1e-9);
        assert!((weather(&network, true, &[]).packet_loss_rate).abs() < 1e-9);
    }
}
