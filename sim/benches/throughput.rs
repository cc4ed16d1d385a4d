//! Simulator throughput: ping-pong, a 50-node all-to-all workload with
//! every fault kind on, and a bare event loop as the ceiling.
//!
//! `cargo bench -p sim` (release). Figures are printed, never asserted.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time is what we measure here

use std::time::Instant;

use sim::{
    ClockConfig, Context, FaultKnobs, FaultRate, FaultTargets, Node, NodeId, Protocol, SimConfig,
    Simulation, TimerId,
};

const MS: u64 = sim::MILLISECOND_NS;
const S: u64 = sim::SECOND_NS;

struct Bench;

impl Protocol for Bench {
    type Message = u64;
    type Timer = u64;
    type Event = u64;
    type Durable = ();
}

struct Pinger {
    peer: NodeId,
    round_trips: u64,
    serve: bool,
}

impl Node<Bench> for Pinger {
    fn on_start(&mut self, ctx: &mut Context<'_, Bench>) {
        if !self.serve {
            ctx.send(self.peer, 0);
        }
    }
    fn on_message(&mut self, ctx: &mut Context<'_, Bench>, from: NodeId, count: u64) {
        if self.serve {
            ctx.send(from, count);
        } else if count + 1 < self.round_trips {
            ctx.send(from, count + 1);
        }
    }
    fn on_timer(&mut self, _: &mut Context<'_, Bench>, _: TimerId, _: u64) {}
}

fn ping_pong(seed: u64, round_trips: u64) -> u64 {
    let mut config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    config.network.latency_min_ns = MS;
    config.network.latency_max_ns = 10 * MS;
    config.network.tail_max_ns = 10 * MS;
    let mut simulation = Simulation::<Bench>::new(config);
    let (client, server) = (NodeId(0), NodeId(1));
    simulation.add_node("client", ClockConfig::default(), move |_| {
        Box::new(Pinger {
            peer: server,
            round_trips,
            serve: false,
        })
    });
    simulation.add_node("server", ClockConfig::default(), move |_| {
        Box::new(Pinger {
            peer: client,
            round_trips,
            serve: true,
        })
    });
    simulation.run();
    assert_eq!(simulation.stats().messages_delivered, 2 * round_trips);
    simulation.trace().hash()
}

/// Sends to a random peer every 1-10 ms and answers every fourth message.
struct Chatty {
    nodes: u32,
}

impl Node<Bench> for Chatty {
    fn on_start(&mut self, ctx: &mut Context<'_, Bench>) {
        let delay = ctx.rng().range_inclusive(MS, 10 * MS);
        ctx.set_timer(delay, 0);
    }
    fn on_message(&mut self, ctx: &mut Context<'_, Bench>, from: NodeId, value: u64) {
        if value % 4 == 0 {
            ctx.send(from, value / 4 + 1);
        }
    }
    fn on_timer(&mut self, ctx: &mut Context<'_, Bench>, _: TimerId, _: u64) {
        let peer = NodeId(ctx.rng().below(u64::from(self.nodes)) as u32);
        let value = ctx.rng().next_u64();
        ctx.send(peer, value);
        let delay = ctx.rng().range_inclusive(MS, 10 * MS);
        ctx.set_timer(delay, 0);
    }
}

fn all_to_all(seed: u64, nodes: u32, duration_ns: u64) -> (u64, u64) {
    let mut config = SimConfig {
        seed,
        ..SimConfig::default()
    };
    config.network.drop_ppm = 10_000;
    config.network.duplicate_ppm = 10_000;
    config.network.tail_ppm = 10_000;
    config.network.tail_max_ns = 100 * MS;
    let mut simulation = Simulation::<Bench>::new(config);
    let ids: Vec<NodeId> = (0..nodes).map(NodeId).collect();
    for index in 0..nodes {
        let clock = ClockConfig {
            drift_ppm: (index as i32 % 21 - 10) * 10,
            ..ClockConfig::default()
        };
        simulation.add_node(format!("n{index}"), clock, move |_| {
            Box::new(Chatty { nodes })
        });
    }
    let rate = |count_max, low, high| FaultRate {
        count_min: 1,
        count_max,
        duration_min_ns: low,
        duration_max_ns: high,
    };
    let knobs = FaultKnobs {
        window_start_ns: 0,
        window_end_ns: duration_ns,
        partition: rate(5, 100 * MS, S),
        partition_one_way: rate(5, 100 * MS, S),
        clog: rate(5, 100 * MS, S),
        crash: rate(5, 100 * MS, S),
        pause: rate(5, 100 * MS, S),
        clock_jump: rate(5, MS, S),
        reboot: rate(5, 100 * MS, S),
    };
    let targets = FaultTargets {
        network: ids.clone(),
        crash: ids.clone(),
        pause: ids.clone(),
        clock: ids,
    };
    simulation.generate_faults(&knobs, &targets);
    simulation.run_until(duration_ns);
    (simulation.stats().events, simulation.trace().hash())
}

/// Re-arms a 1 ms timer and does nothing else.
struct Idle;

impl Node<Bench> for Idle {
    fn on_start(&mut self, ctx: &mut Context<'_, Bench>) {
        ctx.set_timer(MS, 0);
    }
    fn on_message(&mut self, _: &mut Context<'_, Bench>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, ctx: &mut Context<'_, Bench>, _: TimerId, _: u64) {
        ctx.set_timer(MS, 0);
    }
}

fn bare_loop(nodes: u32, duration_ns: u64) -> u64 {
    let mut simulation = Simulation::<Bench>::new(SimConfig::default());
    for index in 0..nodes {
        simulation.add_node(format!("idle{index}"), ClockConfig::default(), |_| {
            Box::new(Idle)
        });
    }
    simulation.run_until(duration_ns);
    simulation.stats().events
}

fn main() {
    // Warm up, then measure for a fixed number of runs.
    ping_pong(0, 5_000);
    let runs = 400;
    let start = Instant::now();
    let mut checksum = 0u64;
    for seed in 0..runs {
        checksum ^= ping_pong(seed, 5_000);
    }
    let seconds = start.elapsed().as_secs_f64();
    let round_trips = (runs * 5_000) as f64;
    println!(
        "ping-pong (2 nodes, 1-10 ms latency, 5,000 round trips a run, {runs} runs): {:.0} round trips/s ({:.1} ns per event) [checksum {checksum:x}]",
        round_trips / seconds,
        seconds * 1e9 / (2.0 * round_trips)
    );

    let simulated_ns = 10 * S;
    let start = Instant::now();
    let mut events = 0;
    let seeds = 5;
    for seed in 0..seeds {
        events += all_to_all(seed, 50, simulated_ns).0;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "all-to-all (50 nodes, every fault kind on, {seeds} x 10 simulated s): {:.0} events/s, {:.1} simulated s per wall s",
        events as f64 / seconds,
        (seeds * simulated_ns) as f64 / 1e9 / seconds
    );

    let start = Instant::now();
    let events = bare_loop(10, 100 * S);
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "bare event loop (10 no-op nodes re-arming a 1 ms timer, 100 simulated s): {:.0} events/s",
        events as f64 / seconds
    );
}
