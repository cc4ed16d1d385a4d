//! Same seed, same trace; different seeds, different traces; streams do not
//! shift one another; a recorded fault list replays the run.

mod support;

use std::collections::BTreeSet;

use sim::{
    ClockConfig, Context, FaultKnobs, FaultRate, FaultTargets, Node, NodeId, SimConfig, SimRng,
    Simulation, Stream, TimerId, TraceKind, first_divergence,
};
use support::*;

const NODES: u32 = 6;

/// Every node gossips to random peers on a jittered timer and answers each
/// message, drawing from its own stream: a small all-to-all workload.
struct Gossip {
    peers: Vec<NodeId>,
}

impl Node<Test> for Gossip {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        let delay = 1 + ctx.rng().below(20 * MS);
        ctx.set_timer(delay, 0);
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Test>, from: NodeId, payload: u64) {
        ctx.record(Event::Received { from, payload });
        if payload % 3 != 0 {
            ctx.send(from, payload / 3);
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Test>, _timer: TimerId, _tag: u64) {
        let peer = self.peers[ctx.rng().index(self.peers.len())];
        let payload = ctx.rng().next_u64() % 1_000;
        ctx.send(peer, payload);
        let delay = 1 + ctx.rng().below(20 * MS);
        ctx.set_timer(delay, 0);
    }
}

fn every_fault_on() -> FaultKnobs {
    let rate = |count_max, low, high| FaultRate {
        count_min: 1,
        count_max,
        duration_min_ns: low,
        duration_max_ns: high,
    };
    FaultKnobs {
        window_start_ns: 0,
        window_end_ns: 2 * S,
        partition: rate(2, 50 * MS, 500 * MS),
        partition_one_way: rate(2, 50 * MS, 500 * MS),
        clog: rate(2, 50 * MS, 300 * MS),
        crash: rate(2, 10 * MS, 300 * MS),
        pause: rate(2, 10 * MS, 300 * MS),
        clock_jump: rate(2, MS, S),
        reboot: rate(2, 10 * MS, 300 * MS),
    }
}

fn config(seed: u64, drop_ppm: u32) -> SimConfig {
    let mut config = SimConfig {
        seed,
        keep_trace: true,
        ..SimConfig::default()
    };
    config.network.drop_ppm = drop_ppm;
    config.network.duplicate_ppm = 20_000;
    config.network.tail_ppm = 10_000;
    config.network.tail_max_ns = 200 * MS;
    config
}

fn build(config: SimConfig) -> Simulation<Test> {
    let mut simulation = Simulation::new(config);
    let peers: Vec<NodeId> = (0..NODES).map(NodeId).collect();
    for index in 0..NODES {
        let clock = ClockConfig {
            drift_ppm: index as i32 * 37 - 100,
            ..ClockConfig::default()
        };
        let peers = peers.clone();
        simulation.add_node(format!("g{index}"), clock, move |_| {
            Box::new(Gossip {
                peers: peers.clone(),
            })
        });
    }
    simulation
}

fn targets() -> FaultTargets {
    let all: Vec<NodeId> = (0..NODES).map(NodeId).collect();
    FaultTargets {
        network: all.clone(),
        crash: all.clone(),
        pause: all.clone(),
        clock: all,
    }
}

fn run_generated(seed: u64) -> Simulation<Test> {
    let mut simulation = build(config(seed, 30_000));
    simulation.generate_faults(&every_fault_on(), &targets());
    simulation.run_until(3 * S);
    simulation
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_over_200_seeds() {
    let mut hashes = BTreeSet::new();
    for seed in 0..200 {
        let first = run_generated(seed);
        let second = run_generated(seed);
        assert_eq!(
            first.trace().hash(),
            second.trace().hash(),
            "seed {seed} is not deterministic"
        );
        assert_eq!(first.trace().len(), second.trace().len());
        assert!(
            first.applied_faults().len() >= 6,
            "seed {seed}: every fault kind is on"
        );
        hashes.insert(first.trace().hash());
    }
    assert_eq!(hashes.len(), 200, "different seeds give different traces");
}

#[test]
fn first_divergence_names_where_two_runs_part() {
    let first = run_generated(5);
    let other = run_generated(6);
    let (left, right) = (
        first.trace().entries().unwrap(),
        other.trace().entries().unwrap(),
    );
    let index = first_divergence(left, right).expect("different seeds part somewhere");
    assert_eq!(left[..index], right[..index]);
    assert_ne!(left.get(index), right.get(index));
}

#[test]
fn a_recorded_fault_list_fed_back_reproduces_the_trace_hash() {
    for seed in 0..20 {
        let original = run_generated(seed);
        let mut replay = build(config(seed, 30_000));
        replay.add_faults(original.applied_faults().to_vec());
        replay.run_until(3 * S);
        assert_eq!(
            replay.trace().hash(),
            original.trace().hash(),
            "seed {seed}"
        );
        assert_eq!(replay.applied_faults(), original.applied_faults());
    }
}

fn node_draws(drop_ppm: u32) -> Vec<(NodeId, u64)> {
    let mut simulation = Simulation::new(config(3, drop_ppm));
    let ticks: Vec<Step> = (1..=50).map(|i| tick(i * 10 * MS, i)).collect();
    for index in 0..3 {
        let script = ticks.clone();
        simulation.add_node(format!("d{index}"), ClockConfig::default(), move |_| {
            Box::new(Scripted {
                script: script.clone(),
                volatile: 0,
                draw_on_timer: true,
            })
        });
    }
    // Traffic whose fate depends on drops, interleaved with the draws.
    let chatter: Vec<Step> = (1..=50)
        .map(|i| send(i * 10 * MS + 1, NodeId(0), i))
        .collect();
    simulation.add_node("chatter", ClockConfig::default(), scripted(chatter));
    simulation.run();
    simulation
        .history()
        .iter()
        .filter_map(|entry| match entry.event {
            Event::Drew { value } => Some((entry.node, value)),
            _ => None,
        })
        .collect()
}

#[test]
fn switching_drops_off_does_not_change_node_draws() {
    // A workload is drawn by the nodes that generate it (the control
    // plane's clients) from their own streams, so this covers it too.
    let with_drops = node_draws(500_000);
    let without_drops = node_draws(0);
    assert_eq!(with_drops.len(), 150);
    assert_eq!(with_drops, without_drops);
}

/// Node 0 sends to nodes 1 and 2 in turn every 10 ms; `cut` partitions
/// node 0 from node 2 for 200 ms. Returns every delivery to node 1.
fn deliveries_to_the_uncut_node(cut: bool) -> Vec<(u64, NodeId, NodeId, u64)> {
    let mut config = config(5, 100_000);
    config.network.duplicate_ppm = 100_000;
    let mut simulation = Simulation::new(config);
    let script: Vec<Step> = (1..=100)
        .map(|i| send(i * 10 * MS, NodeId(1 + (i % 2) as u32), i))
        .collect();
    simulation.add_node("sender", ClockConfig::default(), scripted(script));
    simulation.add_node("uncut", ClockConfig::default(), scripted(vec![]));
    simulation.add_node("cut", ClockConfig::default(), scripted(vec![]));
    if cut {
        simulation.add_faults([sim::ScheduledFault {
            at_ns: 100 * MS,
            fault: sim::Fault::Partition {
                side_a: vec![NodeId(0)],
                side_b: vec![NodeId(2)],
                one_way: false,
                duration_ns: 200 * MS,
            },
        }]);
    }
    simulation.run();
    let all = received(&simulation);
    let to_cut = all.iter().filter(|d| d.1 == NodeId(2)).count();
    assert!(to_cut > 0, "node 2 hears something");
    all.into_iter().filter(|d| d.1 == NodeId(1)).collect()
}

#[test]
fn a_partition_does_not_shift_the_network_draws_of_other_links() {
    // Every message draws its drop, duplicate and latencies whether or not
    // a partition stops it, so cutting one link leaves every other link's
    // deliveries exactly as they were: same times, same drops, same copies.
    let uncut = deliveries_to_the_uncut_node(false);
    let cut = deliveries_to_the_uncut_node(true);
    assert!(uncut.len() > 40, "{} deliveries", uncut.len());
    assert_eq!(cut, uncut);
}

#[test]
fn switching_one_fault_kind_off_keeps_the_other_kinds_schedule() {
    let knobs = every_fault_on();
    let mut without_pauses = knobs.clone();
    without_pauses.pause = FaultRate::default();
    let all = knobs.generate(11, &targets());
    let fewer = without_pauses.generate(11, &targets());
    let not_pause = |f: &&sim::ScheduledFault| f.fault.kind_name() != "pause";
    assert_eq!(
        all.iter().filter(not_pause).collect::<Vec<_>>(),
        fewer.iter().collect::<Vec<_>>()
    );
    assert!(all.len() > fewer.len());
}

#[test]
fn swarm_mode_turns_kinds_on_and_off_by_seed_and_an_enabled_kind_faults_at_least_once() {
    let knobs = every_fault_on();
    let mut mixes = BTreeSet::new();
    for seed in 0..64 {
        let drawn = knobs.swarm(&mut SimRng::derive(seed, Stream::Faults));
        let counts = [
            drawn.partition.count_max,
            drawn.partition_one_way.count_max,
            drawn.clog.count_max,
            drawn.crash.count_max,
            drawn.pause.count_max,
            drawn.clock_jump.count_max,
            drawn.reboot.count_max,
        ];
        for count in counts {
            assert!(
                count == 0 || (1..=2).contains(&count),
                "within the bounds: {counts:?}"
            );
        }
        let faults = drawn.generate(seed, &targets());
        let on = counts.iter().filter(|&&c| c > 0).count();
        assert!(
            on >= 1,
            "seed {seed}: swarm mode never turns everything off"
        );
        assert!(
            faults.len() >= on,
            "seed {seed}: each kind on faults at least once"
        );
        mixes.insert(counts.map(|c| c > 0));
    }
    assert!(
        mixes.len() > 20,
        "seeds explore many mixes: {}",
        mixes.len()
    );
}

#[test]
fn a_kept_trace_keeps_every_message_it_names_and_the_hash_is_unchanged() {
    let kept = run_generated(7);
    let entries = kept.trace().entries().expect("the trace is kept");
    let messages = kept.messages().expect("messages are kept with the trace");
    let naming: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, entry)| {
            matches!(
                entry.kind,
                TraceKind::Deliver | TraceKind::Drop(_) | TraceKind::Duplicate | TraceKind::Hold
            )
        })
        .map(|(index, _)| index)
        .collect();
    assert!(naming.len() > 100, "the workload sends messages");
    assert_eq!(messages.len(), naming.len());
    let kinds: BTreeSet<String> = naming
        .iter()
        .map(|&index| format!("{:?}", entries[index].kind))
        .collect();
    assert!(
        kinds.len() >= 3,
        "delivers, drops and duplicates: {kinds:?}"
    );
    for ((index, message), &expected) in messages.iter().zip(&naming) {
        assert_eq!(*index, expected as u64);
        assert_eq!(entries[expected].digest, sim::stable_hash(message));
    }
    // The same run without a kept trace keeps no message and names itself
    // by the same hash.
    let mut bare = build(SimConfig {
        keep_trace: false,
        ..config(7, 30_000)
    });
    bare.generate_faults(&every_fault_on(), &targets());
    bare.run_until(3 * S);
    assert!(bare.messages().is_none());
    assert_eq!(bare.trace().hash(), kept.trace().hash());
}
