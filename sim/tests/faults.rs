//! One test per fault kind, each asserting exactly that fault's effect.

mod support;

use sim::{ClockConfig, Fault, NodeId, ScheduledFault, Simulation, StopReason};
use support::*;

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);

fn partition(at_ns: u64, one_way: bool, duration_ns: u64) -> ScheduledFault {
    ScheduledFault {
        at_ns,
        fault: Fault::Partition {
            side_a: vec![A],
            side_b: vec![B],
            one_way,
            duration_ns,
        },
    }
}

#[test]
fn a_partition_blocks_both_directions_and_heals() {
    let (mut simulation, a, b) = pair(
        exact_config(1),
        vec![send(10 * MS, B, 1), send(2 * S, B, 2)],
        vec![send(10 * MS, A, 3), send(2 * S, A, 4)],
    );
    simulation.add_faults([partition(0, false, S)]);
    assert_eq!(simulation.run(), StopReason::Quiescent);
    let got = received(&simulation);
    assert_eq!(got, vec![(2 * S + MS, b, a, 2), (2 * S + MS, a, b, 4)]);
    assert_eq!(simulation.stats().messages_dropped_partition, 2);
}

#[test]
fn a_one_way_partition_blocks_one_direction_only() {
    let (mut simulation, a, b) = pair(
        exact_config(1),
        vec![send(10 * MS, B, 1)],
        vec![send(10 * MS, A, 2)],
    );
    simulation.add_faults([partition(0, true, S)]);
    simulation.run();
    assert_eq!(received(&simulation), vec![(11 * MS, a, b, 2)]);
}

#[test]
fn a_duplicated_message_is_delivered_twice() {
    let mut config = exact_config(1);
    config.network.duplicate_ppm = 1_000_000;
    let (mut simulation, _, b) = pair(config, vec![send(10 * MS, B, 7)], vec![]);
    simulation.run();
    let got = received(&simulation);
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|&(_, to, _, payload)| to == b && payload == 7)
    );
    assert_eq!(simulation.stats().messages_duplicated, 1);
}

#[test]
fn a_dropped_message_never_arrives() {
    let mut config = exact_config(1);
    config.network.drop_ppm = 1_000_000;
    let (mut simulation, _, _) = pair(config, vec![send(10 * MS, B, 7)], vec![]);
    simulation.run();
    assert!(received(&simulation).is_empty());
    assert_eq!(simulation.stats().messages_dropped_random, 1);
}

#[test]
fn a_clogged_link_holds_then_releases_in_a_burst_in_order() {
    let (mut simulation, a, b) = pair(
        exact_config(1),
        vec![
            send(10 * MS, B, 1),
            send(20 * MS, B, 2),
            send(30 * MS, B, 3),
        ],
        vec![send(10 * MS, A, 9)],
    );
    simulation.add_faults([ScheduledFault {
        at_ns: 0,
        fault: Fault::Clog {
            from: A,
            to: B,
            duration_ns: S,
        },
    }]);
    simulation.run();
    let got = received(&simulation);
    // The reverse direction is untouched; the clogged one arrives at once.
    assert_eq!(got[0], (11 * MS, a, b, 9));
    assert_eq!(&got[1..], &[(S, b, a, 1), (S, b, a, 2), (S, b, a, 3)]);
    assert_eq!(simulation.stats().messages_held, 3);
}

fn fired_at(simulation: &Simulation<Test>) -> Vec<(u64, u64, u64, u64)> {
    simulation
        .history()
        .iter()
        .filter_map(|entry| match entry.event {
            Event::Fired {
                tag,
                mono_ns,
                wall_ns,
            } => Some((entry.time_ns, tag, mono_ns, wall_ns)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_positive_drift_makes_a_ten_second_timer_fire_late_by_drift_times_ten_microseconds() {
    for drift_ppm in [1, 50, 250, 100_000] {
        let mut simulation = Simulation::new(exact_config(1));
        let clock = ClockConfig {
            drift_ppm,
            ..ClockConfig::default()
        };
        simulation.add_node("drifting", clock, scripted(vec![tick(10 * S, 0)]));
        simulation.run();
        let fired = fired_at(&simulation);
        let late_ns = fired[0].0 - 10 * S;
        assert_eq!(late_ns, drift_ppm as u64 * 10_000, "drift {drift_ppm} ppm");
        // The node itself believes exactly ten seconds passed.
        assert_eq!(fired[0].2, 10 * S);
    }
}

#[test]
fn a_clock_jump_moves_the_wall_clock_and_not_the_monotonic_one() {
    let mut simulation = Simulation::new(exact_config(1));
    let node = simulation.add_node(
        "jumpy",
        ClockConfig::default(),
        scripted(vec![tick(500 * MS, 0), tick(1_500 * MS, 1)]),
    );
    simulation.add_faults([ScheduledFault {
        at_ns: S,
        fault: Fault::ClockJump {
            node,
            delta_ns: 5 * S as i64,
        },
    }]);
    simulation.run();
    let fired = fired_at(&simulation);
    let (mono_before, wall_before) = (fired[0].2, fired[0].3);
    let (mono_after, wall_after) = (fired[1].2, fired[1].3);
    assert_eq!(mono_after - mono_before, S);
    assert_eq!(wall_after - wall_before, 6 * S);
}

#[test]
fn a_pause_defers_handlers_then_runs_them_in_order() {
    let (mut simulation, a, b) = pair(
        exact_config(1),
        vec![send(200 * MS, B, 1), send(300 * MS, B, 2)],
        vec![tick(500 * MS, 3)],
    );
    simulation.add_faults([ScheduledFault {
        at_ns: 100 * MS,
        fault: Fault::Pause {
            node: B,
            duration_ns: S,
        },
    }]);
    simulation.run();
    let resumed_ns = 1_100 * MS;
    let on_b: Vec<_> = simulation
        .history()
        .iter()
        .filter(|entry| entry.node == b && !matches!(entry.event, Event::Started { .. }))
        .map(|entry| (entry.time_ns, entry.event.clone()))
        .collect();
    assert_eq!(
        on_b,
        vec![
            (
                resumed_ns,
                Event::Received {
                    from: a,
                    payload: 1
                }
            ),
            (
                resumed_ns,
                Event::Received {
                    from: a,
                    payload: 2
                }
            ),
            (
                resumed_ns,
                Event::Fired {
                    tag: 3,
                    mono_ns: resumed_ns,
                    wall_ns: resumed_ns
                }
            ),
        ]
    );
}

#[test]
fn a_crash_loses_volatile_state_timers_and_messages_and_keeps_durable_state() {
    let (mut simulation, _, b) = pair(
        exact_config(1),
        // 900 ms: in flight when B crashes at 900.5 ms; 1.5 s: B is down;
        // 3 s: B is back.
        vec![
            send(900 * MS, B, 1),
            send(1_500 * MS, B, 2),
            send(3 * S, B, 3),
        ],
        // B's own timer at 2.5 s must die with the crash.
        vec![tick(2_500 * MS, 4)],
    );
    simulation.add_faults([ScheduledFault {
        at_ns: 900 * MS + MS / 2,
        fault: Fault::Crash {
            node: B,
            restart_after_ns: Some(S),
        },
    }]);
    simulation.run();
    let starts: Vec<_> = simulation
        .history()
        .iter()
        .filter(|entry| entry.node == b)
        .filter_map(|entry| match entry.event {
            Event::Started {
                boot,
                volatile,
                durable,
                ..
            } => Some((entry.time_ns, boot, volatile, durable)),
            _ => None,
        })
        .collect();
    // Rebuilt at 1.9005 s: volatile counter back to zero, durable kept.
    assert_eq!(starts, vec![(0, 0, 0, 1), (1_900 * MS + MS / 2, 1, 0, 2)]);
    let payloads: Vec<u64> = received(&simulation).iter().map(|r| r.3).collect();
    assert_eq!(payloads, vec![3]);
    assert!(
        fired_at(&simulation).is_empty(),
        "the pre-crash timer must not fire"
    );
    assert_eq!(simulation.stats().messages_dropped_node_down, 2);
    assert_eq!(simulation.durable(b).starts, 2);
    assert_eq!(simulation.boot(b), 1);
}

#[test]
fn a_crash_without_restart_keeps_the_node_down() {
    let (mut simulation, _, b) = pair(exact_config(1), vec![send(2 * S, B, 1)], vec![]);
    simulation.add_faults([ScheduledFault {
        at_ns: S,
        fault: Fault::Crash {
            node: B,
            restart_after_ns: None,
        },
    }]);
    simulation.run();
    assert!(!simulation.is_up(b));
    assert!(received(&simulation).is_empty());
}

#[test]
fn write_ahead_a_crash_right_after_a_send_keeps_what_the_handler_wrote_first() {
    // A's timer handler bumps its durable `sent` count, then sends. A crash
    // one nanosecond later, while the message is still in flight, must find
    // the count persisted: the peer holds the message, so the sender may
    // not have forgotten sending it.
    let (mut simulation, a, _) = pair(exact_config(3), vec![send(S, B, 7)], vec![]);
    simulation.add_faults([ScheduledFault {
        at_ns: S + 1,
        fault: Fault::Crash {
            node: a,
            restart_after_ns: Some(S),
        },
    }]);
    simulation.run();
    let payloads: Vec<u64> = received(&simulation).iter().map(|r| r.3).collect();
    assert_eq!(payloads, vec![7], "the message left before the crash");
    let restarted_with: Vec<u64> = simulation
        .history()
        .iter()
        .filter(|entry| entry.node == a)
        .filter_map(|entry| match entry.event {
            Event::Started { boot: 1, sent, .. } => Some(sent),
            _ => None,
        })
        .collect();
    assert_eq!(restarted_with, vec![1], "the send's durable write survived");
    // Three starts (A, B, A again) and the send changed durable state.
    assert_eq!(simulation.durable_writes(), 4);
}

#[test]
fn a_reboot_keeps_durable_state_bumps_the_boot_and_restarts_the_monotonic_clock() {
    let (mut simulation, a, _) = pair(exact_config(5), vec![tick(3 * S, 1)], vec![]);
    simulation.add_faults([ScheduledFault {
        at_ns: 10 * S,
        fault: Fault::Reboot {
            node: a,
            restart_after_ns: 2 * S,
        },
    }]);
    simulation.run();
    let starts: Vec<(u64, u32, u64, u64)> = simulation
        .history()
        .iter()
        .filter(|entry| entry.node == a)
        .filter_map(|entry| match entry.event {
            Event::Started {
                boot,
                durable,
                mono_ns,
                ..
            } => Some((entry.time_ns, boot, durable, mono_ns)),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    let (first, second) = (starts[0], starts[1]);
    assert_eq!((second.0, second.1, second.2), (12 * S, 1, 2));
    // Without the reboot the clock would read its first start's value plus
    // the 12 s that passed; a new boot's clock starts elsewhere.
    assert_ne!(second.3, first.3 + 12 * S, "the monotonic clock restarted");
    assert_eq!(simulation.boot(a), 1);
    assert_eq!(simulation.stats().faults_by_kind.get("reboot"), Some(&1));
}

#[test]
fn swarm_draws_for_older_kinds_do_not_change_when_reboots_are_allowed() {
    use sim::{FaultKnobs, FaultRate, SimRng, Stream};
    let rate = FaultRate {
        count_min: 1,
        count_max: 3,
        duration_min_ns: S,
        duration_max_ns: 2 * S,
    };
    let without = FaultKnobs {
        window_end_ns: 10 * S,
        crash: rate.clone(),
        pause: rate.clone(),
        ..FaultKnobs::default()
    };
    let with = FaultKnobs {
        reboot: rate,
        ..without.clone()
    };
    let mut compared = 0;
    for seed in 0..64 {
        let a = without.swarm(&mut SimRng::derive(seed, Stream::Faults));
        let b = with.swarm(&mut SimRng::derive(seed, Stream::Faults));
        let on = |k: &FaultKnobs| (k.crash.count_max > 0) as u32 + (k.pause.count_max > 0) as u32;
        // The one difference allowed: a seed that drew every older kind off
        // needs no rescue when it drew reboots on.
        let rescued = on(&a) == 1 && on(&b) == 0 && b.reboot.count_max > 0;
        if !rescued {
            compared += 1;
            assert_eq!((&a.crash, &a.pause), (&b.crash, &b.pause), "seed {seed}");
        }
    }
    assert!(compared > 32, "most seeds compared: {compared}");
}
