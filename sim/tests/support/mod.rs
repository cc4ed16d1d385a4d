//! A tiny protocol for testing the simulator: scripted senders and
//! recorders, so each test can assert exactly what a fault did.

#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use sim::{ClockConfig, Context, Node, NodeId, Protocol, SimConfig, Simulation, TimerId};

pub const MS: u64 = sim::MILLISECOND_NS;
pub const S: u64 = sim::SECOND_NS;

pub struct Test;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    Started {
        boot: u32,
        volatile: u64,
        durable: u64,
        /// Messages this node had sent before this start, by its durable count.
        sent: u64,
        /// The monotonic clock at this start.
        mono_ns: u64,
    },
    Received {
        from: NodeId,
        payload: u64,
    },
    Fired {
        tag: u64,
        mono_ns: u64,
        wall_ns: u64,
    },
    Drew {
        value: u64,
    },
}

impl Protocol for Test {
    type Message = u64;
    type Timer = u64;
    type Event = Event;
    type Durable = Durable;
}

/// One scripted action: after `at_ns` on the node's monotonic clock, send
/// `payload` to `to`, or (with `to == None`) just fire and record.
#[derive(Clone, Debug)]
pub struct Step {
    pub at_ns: u64,
    pub to: Option<NodeId>,
    pub payload: u64,
}

pub fn send(at_ns: u64, to: NodeId, payload: u64) -> Step {
    Step {
        at_ns,
        to: Some(to),
        payload,
    }
}

pub fn tick(at_ns: u64, tag: u64) -> Step {
    Step {
        at_ns,
        to: None,
        payload: tag,
    }
}

/// Runs a script of timed sends; records what it receives and when timers
/// fire. Keeps a volatile counter and a durable one to observe crashes.
pub struct Scripted {
    pub script: Vec<Step>,
    pub volatile: u64,
    pub draw_on_timer: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Durable {
    pub starts: u64,
    /// Bumped in the handler that sends, before the send.
    pub sent: u64,
}

impl Node<Test> for Scripted {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        let (durable, sent) = {
            let storage = ctx.durable_mut();
            storage.starts += 1;
            (storage.starts, storage.sent)
        };
        ctx.record(Event::Started {
            boot: ctx.boot(),
            volatile: self.volatile,
            durable,
            sent,
            mono_ns: ctx.mono_ns(),
        });
        self.volatile += 1;
        if ctx.boot() == 0 {
            for (index, step) in self.script.iter().enumerate() {
                ctx.set_timer(step.at_ns, index as u64);
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Test>, from: NodeId, payload: u64) {
        self.volatile += 1;
        ctx.record(Event::Received { from, payload });
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Test>, _timer: TimerId, tag: u64) {
        let step = self.script[tag as usize].clone();
        match step.to {
            Some(to) => {
                ctx.durable_mut().sent += 1;
                ctx.send(to, step.payload);
            }
            None => {
                let (mono_ns, wall_ns) = (ctx.mono_ns(), ctx.wall_ns());
                ctx.record(Event::Fired {
                    tag: step.payload,
                    mono_ns,
                    wall_ns,
                });
            }
        }
        if self.draw_on_timer {
            let value = ctx.rng().next_u64();
            ctx.record(Event::Drew { value });
        }
    }
}

pub fn scripted(script: Vec<Step>) -> impl FnMut(NodeId) -> Box<dyn Node<Test>> + 'static {
    move |_| {
        Box::new(Scripted {
            script: script.clone(),
            volatile: 0,
            draw_on_timer: false,
        })
    }
}

/// A network with a fixed 1 ms latency and no loss, so times are exact.
pub fn exact_config(seed: u64) -> SimConfig {
    let mut config = SimConfig {
        seed,
        keep_trace: true,
        ..SimConfig::default()
    };
    config.network.latency_min_ns = MS;
    config.network.latency_max_ns = MS;
    config.network.tail_max_ns = MS;
    config
}

/// Two nodes, each running its own script.
pub fn pair(config: SimConfig, a: Vec<Step>, b: Vec<Step>) -> (Simulation<Test>, NodeId, NodeId) {
    let mut simulation = Simulation::new(config);
    let first = simulation.add_node("a", ClockConfig::default(), scripted(a));
    let second = simulation.add_node("b", ClockConfig::default(), scripted(b));
    (simulation, first, second)
}

/// (time, receiving node, sender, payload) of every delivery.
pub fn received(simulation: &Simulation<Test>) -> Vec<(u64, NodeId, NodeId, u64)> {
    simulation
        .history()
        .iter()
        .filter_map(|entry| match entry.event {
            Event::Received { from, payload } => Some((entry.time_ns, entry.node, from, payload)),
            _ => None,
        })
        .collect()
}
