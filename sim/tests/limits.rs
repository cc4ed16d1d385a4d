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
