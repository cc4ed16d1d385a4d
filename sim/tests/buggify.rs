//! BUGGIFY in the simulator: off changes nothing, on fires the same way for
//! the same seed, and the crashes it injects are ordinary faults that a
//! replay of the applied list reproduces.

use serde::{Deserialize, Serialize};
use sim::{
    BuggifyAction, BuggifyConfig, ClockConfig, Context, Fault, Node, NodeId, Protocol, SimConfig,
    Simulation, TimerId,
};

const MS: u64 = sim::MILLISECOND_NS;
const POINT: &str = "echo.before_reply";

struct Echo;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Durable {
    replies: u64,
}

impl Protocol for Echo {
    type Message = u64;
    type Timer = u64;
    type Event = u64;
    type Durable = Durable;
}

/// Replies to every message with the payload plus one (marking a point
/// before the reply when `mark`), and starts a fresh exchange every 10 ms.
struct EchoNode {
    mark: bool,
}

impl EchoNode {
    fn peer(ctx: &Context<'_, Echo>) -> NodeId {
        NodeId(1 - ctx.id().0)
    }
}

impl Node<Echo> for EchoNode {
    fn on_start(&mut self, ctx: &mut Context<'_, Echo>) {
        ctx.set_timer(10 * MS, 0);
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Echo>, _from: NodeId, payload: u64) {
        ctx.record(payload);
        if payload % 16 == 15 {
            return;
        }
        ctx.durable_mut().replies += 1;
        if self.mark {
            ctx.buggify(POINT);
        }
        let peer = Self::peer(ctx);
        ctx.send(peer, payload + 1);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Echo>, _timer: TimerId, tag: u64) {
        let peer = Self::peer(ctx);
        ctx.send(peer, (tag + 1) * 16);
        ctx.set_timer(10 * MS, tag + 1);
    }
}

fn simulation(seed: u64, mark: bool, buggify: Option<BuggifyConfig>) -> Simulation<Echo> {
    let mut config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    config.network.latency_min_ns = MS;
    config.network.latency_max_ns = 3 * MS;
    config.network.drop_ppm = 10_000;
    let mut simulation = Simulation::new(config);
    for name in ["a", "b"] {
        simulation.add_node(name, ClockConfig::default(), move |_| {
            Box::new(EchoNode { mark }) as Box<dyn Node<Echo>>
        });
    }
    if let Some(buggify) = buggify {
        simulation.set_buggify(buggify);
    }
    simulation
}

fn on(actions: Vec<BuggifyAction>) -> BuggifyConfig {
    BuggifyConfig {
        enabled: true,
        active_ppm: 1_000_000,
        fire_ppm: 20_000,
        actions,
        max_faults: 3,
        delay_min_ns: 5 * MS,
        delay_max_ns: 50 * MS,
        pause_min_ns: 20 * MS,
        pause_max_ns: 80 * MS,
        downtime_min_ns: 30 * MS,
        downtime_max_ns: 90 * MS,
        until_ns: 1_500 * MS,
        inject_faults: true,
    }
}

const END_NS: u64 = 2_000 * MS;

#[test]
fn buggify_off_changes_nothing() {
    let mut unmarked = simulation(7, false, None);
    unmarked.run_until(END_NS);
    let mut marked = simulation(7, true, None);
    marked.run_until(END_NS);
    // Off, but with every other knob set: still nothing.
    let off = BuggifyConfig {
        enabled: false,
        ..on(vec![BuggifyAction::Crash, BuggifyAction::Drop])
    };
    let mut configured = simulation(7, true, Some(off));
    configured.run_until(END_NS);
    for other in [&marked, &configured] {
        assert_eq!(other.trace().hash(), unmarked.trace().hash());
        assert_eq!(other.stats(), unmarked.stats());
        assert_eq!(other.applied_faults(), unmarked.applied_faults());
    }
    assert!(unmarked.stats().buggify.is_empty());
}

#[test]
fn buggify_on_fires_the_same_way_for_the_same_seed() {
    let all = vec![
        BuggifyAction::Delay,
        BuggifyAction::Drop,
        BuggifyAction::Crash,
        BuggifyAction::Pause,
    ];
    let mut first = simulation(7, true, Some(on(all.clone())));
    first.run_until(END_NS);
    let mut second = simulation(7, true, Some(on(all.clone())));
    second.run_until(END_NS);
    assert_eq!(first.trace().hash(), second.trace().hash());
    assert_eq!(first.stats(), second.stats());
    let point = &first.stats().buggify[POINT];
    assert!(point.active && point.fired > 0 && point.hits > point.fired);
    let mut unmarked = simulation(7, false, None);
    unmarked.run_until(END_NS);
    assert_ne!(first.trace().hash(), unmarked.trace().hash());
    // Another seed decides differently.
    let mut other = simulation(8, true, Some(on(all)));
    other.run_until(END_NS);
    assert_ne!(first.trace().hash(), other.trace().hash());
}

#[test]
fn a_fired_crash_is_an_applied_fault_and_replaying_the_list_reproduces_the_run() {
    let mut live = simulation(11, true, Some(on(vec![BuggifyAction::Crash])));
    live.run_until(END_NS);
    let applied = live.applied_faults().to_vec();
    let crashes: Vec<_> = applied
        .iter()
        .filter(|f| matches!(f.fault, Fault::Crash { .. }))
        .collect();
    assert_eq!(crashes.len(), 3, "capped at max_faults: {applied:?}");
    assert!(live.boot(NodeId(0)) + live.boot(NodeId(1)) == 3);
    // A replay holds the crashes as data and injects none itself.
    let replay_config = BuggifyConfig {
        inject_faults: false,
        ..on(vec![BuggifyAction::Crash])
    };
    let mut replay = simulation(11, true, Some(replay_config));
    replay.add_faults(applied.clone());
    replay.run_until(END_NS);
    assert_eq!(replay.trace().hash(), live.trace().hash());
    assert_eq!(replay.applied_faults(), &applied[..]);
    // Without the crashes in the list, it is a different run.
    let mut bare = simulation(
        11,
        true,
        Some(BuggifyConfig {
            inject_faults: false,
            ..on(vec![BuggifyAction::Crash])
        }),
    );
    bare.run_until(END_NS);
    assert_ne!(bare.trace().hash(), live.trace().hash());
}

#[test]
fn a_fired_pause_is_an_applied_fault_too() {
    let mut live = simulation(3, true, Some(on(vec![BuggifyAction::Pause])));
    live.run_until(END_NS);
    let pauses = live
        .applied_faults()
        .iter()
        .filter(|f| matches!(f.fault, Fault::Pause { .. }))
        .count();
    assert_eq!(pauses, 3);
    let mut replay = simulation(
        3,
        true,
        Some(BuggifyConfig {
            inject_faults: false,
            ..on(vec![BuggifyAction::Pause])
        }),
    );
    replay.add_faults(live.applied_faults().to_vec());
    replay.run_until(END_NS);
    assert_eq!(replay.trace().hash(), live.trace().hash());
}
