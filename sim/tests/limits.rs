//! Every limit ends the run with its own outcome, never a hang.

mod support;

use sim::{ClockConfig, Context, Limits, Node, NodeId, SimConfig, Simulation, StopReason, TimerId};
use support::*;

/// Sets two timers per timer: the queue grows without bound.
struct Flood;

impl Node<Test> for Flood {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        ctx.set_timer(MS, 0);
    }
    fn on_message(&mut self, _: &mut Context<'_, Test>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, ctx: &mut Context<'_, Test>, _: TimerId, _: u64) {
        ctx.set_timer(MS, 0);
        ctx.set_timer(MS, 0);
    }
}

fn flood(limits: Limits) -> Simulation<Test> {
    let mut simulation = Simulation::new(SimConfig {
        limits,
        ..SimConfig::default()
    });
    simulation.add_node("flood", ClockConfig::default(), |_| Box::new(Flood));
    simulation
}

#[test]
fn the_event_limit_ends_the_run() {
    let mut simulation = flood(Limits {
        max_events: 1_000,
        ..Limits::default()
    });
    assert_eq!(simulation.run(), StopReason::EventLimit);
    assert_eq!(simulation.stats().events, 1_000);
}

#[test]
fn the_queue_limit_ends_the_run() {
    let mut simulation = flood(Limits {
        max_queue_len: 100,
        ..Limits::default()
    });
    assert_eq!(simulation.run(), StopReason::QueueLimit);
    assert!(simulation.queue_len() <= 100);
}

/// Sends node 1 one message a millisecond, with one timer pending at a time.
struct Drip;

impl Node<Test> for Drip {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        ctx.set_timer(MS, 0);
    }
    fn on_message(&mut self, _: &mut Context<'_, Test>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, ctx: &mut Context<'_, Test>, _: TimerId, _: u64) {
        ctx.send(NodeId(1), 0);
        ctx.set_timer(MS, 0);
    }
}

/// Messages to node 1, one a millisecond, while node 1 is paused
/// (`clog: false`) or its link is clogged (`clog: true`) for the whole run.
fn parked(clog: bool) -> (StopReason, Simulation<Test>) {
    let mut simulation = Simulation::new(SimConfig {
        limits: Limits {
            max_queue_len: 100,
            ..Limits::default()
        },
        ..exact_config(1)
    });
    simulation.add_node("sender", ClockConfig::default(), |_| Box::new(Drip));
    simulation.add_node("parked", ClockConfig::default(), scripted(vec![]));
    let fault = if clog {
        sim::Fault::Clog {
            from: NodeId(0),
            to: NodeId(1),
            duration_ns: 10 * S,
        }
    } else {
        sim::Fault::Pause {
            node: NodeId(1),
            duration_ns: 10 * S,
        }
    };
    simulation.add_faults([sim::ScheduledFault { at_ns: 0, fault }]);
    let stop = simulation.run();
    (stop, simulation)
}

#[test]
fn messages_parked_by_a_pause_or_a_clog_count_against_the_queue_limit() {
    for clog in [false, true] {
        let (stop, simulation) = parked(clog);
        assert_eq!(stop, StopReason::QueueLimit, "clog: {clog}");
        // At most one timer and a message or two are ever in the queue:
        // the limit was reached by the ~100 messages waiting parked.
        let now_ms = simulation.now_ns() / MS;
        assert!(
            (95..=110).contains(&now_ms),
            "clog {clog}: stopped at {now_ms} ms"
        );
    }
}

#[test]
fn the_time_limit_ends_the_run() {
    let mut simulation = Simulation::new(SimConfig {
        limits: Limits {
            max_time_ns: 50 * MS,
            ..Limits::default()
        },
        ..SimConfig::default()
    });
    // One timer every millisecond, forever.
    let script: Vec<Step> = (1..=1_000).map(|i| tick(i * MS, i)).collect();
    simulation.add_node("ticker", ClockConfig::default(), scripted(script));
    assert_eq!(simulation.run(), StopReason::TimeLimit);
    assert!(simulation.now_ns() <= 50 * MS);
    assert!(StopReason::TimeLimit.is_limit() && !StopReason::Deadline.is_limit());
}

#[test]
fn run_until_stops_at_the_deadline_and_can_continue() {
    let script: Vec<Step> = (1..=10).map(|i| tick(i * 100 * MS, i)).collect();
    let mut simulation = Simulation::new(SimConfig::default());
    simulation.add_node("ticker", ClockConfig::default(), scripted(script));
    assert_eq!(simulation.run_until(450 * MS), StopReason::Deadline);
    assert_eq!(simulation.now_ns(), 450 * MS);
    assert_eq!(simulation.history().len(), 1 + 4);
    assert_eq!(simulation.run_events(3), StopReason::StepBudget);
    assert_eq!(simulation.history().len(), 1 + 7);
    assert_eq!(simulation.run(), StopReason::Quiescent);
    assert_eq!(simulation.history().len(), 1 + 10);
}

/// Sets two timers and cancels the first.
struct Cancels;

impl Node<Test> for Cancels {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        let first = ctx.set_timer(10 * MS, 1);
        ctx.set_timer(20 * MS, 2);
        ctx.cancel_timer(first);
    }
    fn on_message(&mut self, _: &mut Context<'_, Test>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, _: &mut Context<'_, Test>, _: TimerId, tag: u64) {
        assert_eq!(tag, 2, "a cancelled timer never fires");
    }
}

/// A cancelled timer is no event: not counted (nor against
/// `max_events`), though the stats say how many were cancelled.
#[test]
fn a_cancelled_timer_is_no_event_and_is_counted_as_cancelled() {
    let mut simulation = Simulation::new(SimConfig::default());
    simulation.add_node("cancels", ClockConfig::default(), |_| Box::new(Cancels));
    assert_eq!(simulation.run(), StopReason::Quiescent);
    let stats = simulation.stats();
    assert_eq!(
        (stats.events, stats.timers_fired, stats.timers_cancelled),
        (2, 1, 1),
        "the start and the timer that fired are events; the cancelled one is not"
    );
}

/// Sets a timer due later than anything else and cancels it: the run is
/// quiescent when the other timer has fired, at that timer's time.
struct CancelsTheLast;

impl Node<Test> for CancelsTheLast {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        ctx.set_timer(10 * MS, 1);
        let last = ctx.set_timer(50 * MS, 2);
        ctx.cancel_timer(last);
    }
    fn on_message(&mut self, _: &mut Context<'_, Test>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, _: &mut Context<'_, Test>, _: TimerId, _: u64) {}
}

#[test]
fn a_cancelled_timer_moves_no_clock_and_keeps_no_run_going() {
    let mut simulation = Simulation::new(SimConfig::default());
    simulation.add_node("cancels", ClockConfig::default(), |_| {
        Box::new(CancelsTheLast)
    });
    assert_eq!(simulation.run(), StopReason::Quiescent);
    assert_eq!(
        simulation.now_ns(),
        10 * MS,
        "the clock stops at the last live event"
    );
    assert_eq!(simulation.stats().timers_cancelled, 1);

    // A deadline past the cancelled timer finds the queue empty.
    let mut simulation = Simulation::new(SimConfig::default());
    simulation.add_node("cancels", ClockConfig::default(), |_| {
        Box::new(CancelsTheLast)
    });
    assert_eq!(simulation.run_until(100 * MS), StopReason::Quiescent);
    assert_eq!(simulation.queue_len(), 0);
}

/// Sets 200 timers (some due at the same time), cancels most of them in
/// an order unrelated to when they are due, and records the rest as they
/// fire: enough cancelled ones that the queue sweeps them out of the
/// middle of its heap, several times.
struct CancelsMost;

const SET: u64 = 200;

/// Due time of timer `tag`, in ms: a scramble with ties.
fn due_ms(tag: u64) -> u64 {
    1 + (tag * 37) % 61
}

/// Whether timer `tag` survives.
fn kept(tag: u64) -> bool {
    tag % 7 == 3 || tag % 11 == 0
}

impl Node<Test> for CancelsMost {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        let timers: Vec<_> = (0..SET)
            .map(|tag| (tag, ctx.set_timer(due_ms(tag) * MS, tag)))
            .collect();
        // Cancel from the middle outwards, not in the order set.
        let mut cancel: Vec<_> = timers.into_iter().filter(|(tag, _)| !kept(*tag)).collect();
        cancel.sort_by_key(|(tag, _)| (tag * 13) % SET);
        for (_, timer) in cancel {
            ctx.cancel_timer(timer);
        }
    }
    fn on_message(&mut self, _: &mut Context<'_, Test>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, ctx: &mut Context<'_, Test>, _: TimerId, tag: u64) {
        ctx.record(support::Event::Drew { value: tag });
    }
}

#[test]
fn sweeping_cancelled_timers_out_keeps_the_order_of_the_rest() {
    let mut simulation = Simulation::new(SimConfig::default());
    simulation.add_node("cancels", ClockConfig::default(), |_| Box::new(CancelsMost));
    assert_eq!(simulation.run(), StopReason::Quiescent);
    let fired: Vec<u64> = simulation
        .history()
        .iter()
        .map(|entry| match entry.event {
            support::Event::Drew { value } => value,
            ref other => panic!("not a firing: {other:?}"),
        })
        .collect();
    // Due time first; among timers due together, the order they were set.
    let mut expected: Vec<u64> = (0..SET).filter(|tag| kept(*tag)).collect();
    expected.sort_by_key(|tag| (due_ms(*tag), *tag));
    assert_eq!(fired, expected);
    let stats = simulation.stats();
    let cancelled = SET - expected.len() as u64;
    assert_eq!(stats.timers_cancelled, cancelled);
    assert_eq!(stats.events, 1 + expected.len() as u64);
}

/// Sets one timer, due in 100 ms.
struct SetsOne;

impl Node<Test> for SetsOne {
    fn on_start(&mut self, ctx: &mut Context<'_, Test>) {
        ctx.set_timer(100 * MS, 1);
    }
    fn on_message(&mut self, _: &mut Context<'_, Test>, _: NodeId, _: u64) {}
    fn on_timer(&mut self, _: &mut Context<'_, Test>, _: TimerId, _: u64) {}
}

/// A crash ends the node's life and its timers with it: they never fire
/// and are no events, and a run with nothing else left is quiescent.
#[test]
fn a_crash_cancels_the_timers_of_the_life_it_ends() {
    let mut simulation = Simulation::new(SimConfig::default());
    let node = simulation.add_node("sets-one", ClockConfig::default(), |_| Box::new(SetsOne));
    simulation.add_faults([sim::ScheduledFault {
        at_ns: 10 * MS,
        fault: sim::Fault::Crash {
            node,
            restart_after_ns: None,
        },
    }]);
    assert_eq!(simulation.run(), StopReason::Quiescent);
    assert_eq!(simulation.now_ns(), 10 * MS);
    let stats = simulation.stats();
    assert_eq!(
        (stats.events, stats.timers_fired, stats.timers_cancelled),
        (2, 0, 1),
        "the start and the crash are events; the crashed life's timer is not"
    );
}
