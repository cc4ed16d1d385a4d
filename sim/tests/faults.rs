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

const C: NodeId = NodeId(2);

/// Three nodes: A and B each running a script, C only listening.
fn trio(config: sim::SimConfig, a: Vec<Step>, b: Vec<Step>) -> Simulation<Test> {
    let mut simulation = Simulation::new(config);
    simulation.add_node("a", ClockConfig::default(), scripted(a));
    simulation.add_node("b", ClockConfig::default(), scripted(b));
    simulation.add_node("c", ClockConfig::default(), scripted(vec![]));
    simulation
}

fn degrade(at_ns: u64, nodes: Vec<NodeId>, duration_ns: u64) -> ScheduledFault {
    ScheduledFault {
        at_ns,
        fault: Fault::Degrade {
            nodes,
            drop_ppm: 0,
            duplicate_ppm: 0,
            delay_ns: 0,
            duration_ns,
        },
    }
}

fn with_degrade(
    mut scheduled: ScheduledFault,
    set: impl FnOnce(&mut u32, &mut u32, &mut u64),
) -> ScheduledFault {
    if let Fault::Degrade {
        drop_ppm,
        duplicate_ppm,
        delay_ns,
        ..
    } = &mut scheduled.fault
    {
        set(drop_ppm, duplicate_ppm, delay_ns);
    }
    scheduled
}

#[test]
fn a_full_drop_degrade_loses_every_message_on_its_links_in_the_window_and_none_after() {
    let mut simulation = trio(
        exact_config(1),
        // To B in the window, to C in the window, to B after it.
        vec![send(10 * MS, B, 1), send(20 * MS, C, 2), send(2 * S, B, 3)],
        // From B in the window, and after it.
        vec![send(500 * MS, A, 4), send(3 * S, A, 5)],
    );
    let full_drop = with_degrade(degrade(0, vec![B], S), |drop_ppm, _, _| {
        *drop_ppm = 1_000_000;
    });
    simulation.add_faults([full_drop]);
    assert_eq!(simulation.run(), StopReason::Quiescent);
    let got = received(&simulation);
    // A -> C does not touch B: untouched. Everything on B's links in the
    // window is lost; nothing after it.
    assert_eq!(
        got,
        vec![
            (21 * MS, C, A, 2),
            (2 * S + MS, B, A, 3),
            (3 * S + MS, A, B, 5)
        ]
    );
    assert_eq!(simulation.stats().messages_dropped_degrade, 2);
    assert_eq!(simulation.stats().messages_dropped_random, 0);
    let drops: Vec<(u64, NodeId, NodeId)> = simulation
        .trace()
        .entries()
        .expect("kept")
        .iter()
        .filter(|entry| entry.kind == sim::TraceKind::Drop(sim::DropReason::Degrade))
        .map(|entry| (entry.time_ns, entry.node, entry.peer))
        .collect();
    assert_eq!(drops, vec![(10 * MS, A, B), (500 * MS, B, A)]);
    assert_eq!(simulation.stats().faults_by_kind.get("degrade"), Some(&1));
}

#[test]
fn a_degrade_of_no_nodes_covers_every_link() {
    let mut simulation = trio(
        exact_config(1),
        vec![send(10 * MS, B, 1), send(20 * MS, C, 2)],
        vec![send(30 * MS, C, 3)],
    );
    let everywhere = with_degrade(degrade(0, vec![], S), |drop_ppm, _, _| {
        *drop_ppm = 1_000_000;
    });
    simulation.add_faults([everywhere]);
    simulation.run();
    assert!(received(&simulation).is_empty());
    assert_eq!(simulation.stats().messages_dropped_degrade, 3);
}

#[test]
fn a_full_duplicate_degrade_delivers_each_message_twice_in_the_window_only() {
    let (mut simulation, a, b) = pair(
        exact_config(1),
        vec![send(10 * MS, B, 1), send(2 * S, B, 2)],
        vec![],
    );
    let doubling = with_degrade(degrade(0, vec![A], S), |_, duplicate_ppm, _| {
        *duplicate_ppm = 1_000_000;
    });
    simulation.add_faults([doubling]);
    simulation.run();
    let payloads: Vec<(NodeId, NodeId, u64)> = received(&simulation)
        .iter()
        .map(|&(_, to, from, payload)| (to, from, payload))
        .collect();
    assert_eq!(payloads, vec![(b, a, 1), (b, a, 1), (b, a, 2)]);
    assert_eq!(simulation.stats().messages_duplicated, 1);
}

#[test]
fn a_delay_degrade_delays_every_copy_and_overlapping_delays_add_up() {
    let (mut simulation, a, b) = pair(
        exact_config(1),
        vec![
            send(10 * MS, B, 1),
            send(1_500 * MS, B, 2),
            send(3 * S, B, 3),
        ],
        vec![],
    );
    let slow = |at_ns, delay, duration_ns| {
        with_degrade(
            degrade(at_ns, vec![B], duration_ns),
            |_, duplicate_ppm, delay_ns| {
                *duplicate_ppm = 1_000_000;
                *delay_ns = delay;
            },
        )
    };
    // 50 ms over [0, 2 s), another 30 ms over [1 s, 2 s).
    simulation.add_faults([slow(0, 50 * MS, 2 * S), slow(S, 30 * MS, S)]);
    simulation.run();
    let got = received(&simulation);
    assert_eq!(
        got,
        vec![
            // One degrade: the message and its copy, 1 ms + 50 ms.
            (61 * MS, b, a, 1),
            (61 * MS, b, a, 1),
            // Both: a copy from each, all 1 ms + 80 ms late.
            (1_581 * MS, b, a, 2),
            (1_581 * MS, b, a, 2),
            (1_581 * MS, b, a, 2),
            // Healed: on time, once.
            (3 * S + MS, b, a, 3),
        ]
    );
    // Slowed past the network's latency range: a disturbance.
    assert!(simulation.disturbances_ns().contains(&(10 * MS)));
}

/// A network with random latencies and losses, so that any shift of the
/// network's random stream would show in the deliveries.
fn random_config(seed: u64) -> sim::SimConfig {
    let mut config = exact_config(seed);
    config.network.latency_max_ns = 20 * MS;
    config.network.tail_max_ns = 20 * MS;
    config.network.drop_ppm = 100_000;
    config.network.duplicate_ppm = 100_000;
    config
}

fn chatter() -> (Vec<Step>, Vec<Step>) {
    let a = (0..40).map(|i| send(i * 100 * MS, B, i)).collect();
    let b = (0..40)
        .map(|i| send(i * 100 * MS + 7, A, 100 + i))
        .collect();
    (a, b)
}

#[test]
fn a_degrade_draws_from_its_own_stream_and_only_while_in_force() {
    for seed in 1..=5 {
        let (a, b) = chatter();
        let mut plain = trio(random_config(seed), a.clone(), b.clone());
        plain.run();
        // A degrade of C's links, which carry nothing, changes no delivery.
        let mut elsewhere = trio(random_config(seed), a.clone(), b.clone());
        let lossy = with_degrade(degrade(S, vec![C], S), |drop_ppm, duplicate_ppm, _| {
            *drop_ppm = 500_000;
            *duplicate_ppm = 500_000;
        });
        elsewhere.add_faults([lossy]);
        elsewhere.run();
        assert_eq!(received(&plain), received(&elsewhere), "seed {seed}");
        // A pure delay on A and B from 1.05 s to 2.05 s moves exactly the
        // messages sent then, by exactly the delay: the network's own
        // draws (latency, loss, copies) are the same for every message.
        let mut delayed = trio(random_config(seed), a, b);
        let window_ns = S + 50 * MS..2 * S + 50 * MS;
        let slow = with_degrade(degrade(window_ns.start, vec![A, B], S), |_, _, delay_ns| {
            *delay_ns = 5 * S;
        });
        delayed.add_faults([slow]);
        delayed.run();
        let mut expected: Vec<_> = received(&plain)
            .into_iter()
            .map(|(time_ns, to, from, payload)| {
                let sent_ns = if from == A {
                    payload * 100 * MS
                } else {
                    (payload - 100) * 100 * MS + 7
                };
                let late = window_ns.contains(&sent_ns);
                (time_ns + if late { 5 * S } else { 0 }, to, from, payload)
            })
            .collect();
        let mut got = received(&delayed);
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "seed {seed}");
    }
}

#[test]
fn the_same_seed_with_degrades_and_drifts_gives_the_same_trace_hash() {
    let run = |seed: u64| {
        let (a, b) = chatter();
        let mut simulation = trio(random_config(seed), a, b);
        simulation.add_faults([
            with_degrade(
                degrade(S, vec![B], 2 * S),
                |drop_ppm, duplicate_ppm, delay_ns| {
                    *drop_ppm = 300_000;
                    *duplicate_ppm = 300_000;
                    *delay_ns = 7 * MS;
                },
            ),
            with_degrade(degrade(2 * S, vec![], S), |drop_ppm, _, delay_ns| {
                *drop_ppm = 100_000;
                *delay_ns = 3 * MS;
            }),
            ScheduledFault {
                at_ns: 500 * MS,
                fault: Fault::ClockDrift {
                    node: A,
                    drift_ppm: 80_000,
                    duration_ns: 2 * S,
                },
            },
        ]);
        simulation.run();
        (simulation.trace().hash(), simulation.stats())
    };
    for seed in [3, 42] {
        let (hash, stats) = run(seed);
        assert_eq!(run(seed), (hash, stats.clone()), "seed {seed}");
        assert!(stats.messages_dropped_degrade > 0, "seed {seed}: {stats:?}");
        assert_ne!(hash, run(seed + 1000).0);
    }
}

fn drifting(script: Vec<Step>, faults: Vec<(u64, i32, u64)>) -> Simulation<Test> {
    let mut simulation = Simulation::new(exact_config(1));
    let node = simulation.add_node("drifting", ClockConfig::default(), scripted(script));
    simulation.add_faults(faults.into_iter().map(|(at_ns, drift_ppm, duration_ns)| {
        ScheduledFault {
            at_ns,
            fault: Fault::ClockDrift {
                node,
                drift_ppm,
                duration_ns,
            },
        }
    }));
    simulation
}

#[test]
fn a_slow_drift_slows_the_clock_in_its_window_and_the_time_lost_stays_lost() {
    // Timers due at 1 s .. 10 s of local time, set at the start; the clock
    // runs 10 % slow from 2 s to 6 s of true time.
    let script = (1..=10).map(|i| tick(i * S, i)).collect();
    let mut simulation = drifting(script, vec![(2 * S, 100_000, 4 * S)]);
    simulation.run();
    let fired = fired_at(&simulation);
    assert_eq!(fired.len(), 10);
    let mut last_mono_ns = 0;
    for &(_, tag, mono_ns, wall_ns) in &fired {
        assert!(mono_ns >= tag * S, "timer {tag} fired early at {mono_ns}");
        assert!(mono_ns >= last_mono_ns, "the monotonic clock went back");
        assert_eq!(wall_ns, mono_ns, "the wall clock drifts alike");
        last_mono_ns = mono_ns;
    }
    // Before the window: true time.
    assert_eq!((fired[0].0, fired[0].2), (S, S));
    // In it: a local second takes 1.1 true seconds (rounded up to the ns),
    // and timers set before the clock slowed wait for their local deadline.
    assert_eq!((fired[2].0, fired[2].2), (3 * S + 100 * MS + 1, 3 * S));
    assert_eq!((fired[3].0, fired[3].2), (4 * S + 200 * MS + 1, 4 * S));
    // After it: the configured rate again, 4 s - 4 s / 1.1 behind for good.
    let lost_ns = 4 * S - 4 * S * 1_000_000 / 1_100_000;
    for &(true_ns, tag, mono_ns, _) in &fired[6..] {
        assert_eq!(true_ns - mono_ns, lost_ns, "timer {tag}");
        assert_eq!(mono_ns, tag * S, "timer {tag} on time by its clock");
    }
}

#[test]
fn a_fast_drift_speeds_the_clock_up_and_no_timer_fires_early() {
    let script = (1..=10).map(|i| tick(i * S, i)).collect();
    let mut simulation = drifting(script, vec![(2 * S, -100_000, 4 * S)]);
    simulation.run();
    let fired = fired_at(&simulation);
    assert_eq!(fired.len(), 10);
    let mut last_mono_ns = 0;
    for &(_, tag, mono_ns, _) in &fired {
        assert!(mono_ns >= tag * S, "timer {tag} fired early at {mono_ns}");
        assert!(mono_ns >= last_mono_ns, "the monotonic clock went back");
        last_mono_ns = mono_ns;
    }
    // Timers set before the clock sped up keep their true deadline.
    let in_window: Vec<u64> = fired[2..5].iter().map(|f| f.0).collect();
    assert_eq!(in_window, vec![3 * S, 4 * S, 5 * S]);
    // In the window a true second is 1/0.9 local seconds.
    assert_eq!(fired[3].2 - fired[2].2, S * 1_000_000 / 900_000);
    // Gained time stays gained, at the configured rate after the heal.
    let gained_ns = 4 * S * 1_000_000 / 900_000 - 4 * S;
    for &(true_ns, tag, mono_ns, _) in &fired[6..] {
        assert_eq!(mono_ns - true_ns, gained_ns, "timer {tag}");
    }
}

/// The local time elapsed after `true_ns`, computed independently: rate
/// pieces `(start, drift_ppm)`, each continuing where the last ended.
fn piecewise_elapsed_ns(pieces: &[(u64, i32)], true_ns: u64) -> u64 {
    let local = |since_ns: u64, drift_ppm: i32| {
        since_ns * 1_000_000 / (1_000_000 + i64::from(drift_ppm)) as u64
    };
    let mut elapsed_ns = 0;
    for (index, &(start_ns, drift_ppm)) in pieces.iter().enumerate() {
        let end_ns = pieces.get(index + 1).map_or(u64::MAX, |next| next.0);
        if true_ns < end_ns {
            return elapsed_ns + local(true_ns - start_ns, drift_ppm);
        }
        elapsed_ns += local(end_ns - start_ns, drift_ppm);
    }
    unreachable!("the last piece lasts for ever")
}

#[test]
fn overlapping_drifts_on_one_node_the_latest_in_force_sets_the_rate() {
    // +5 % from 1 s to 5 s; -5 % from 2 s to 3 s on top of it: the latest
    // wins while it lasts, then the first is in force again until 5 s.
    let script = (1..=80).map(|i| tick(i * 100 * MS, i)).collect();
    let mut simulation = drifting(script, vec![(S, 50_000, 4 * S), (2 * S, -50_000, S)]);
    simulation.run();
    let pieces = [
        (0, 0),
        (S, 50_000),
        (2 * S, -50_000),
        (3 * S, 50_000),
        (5 * S, 0),
    ];
    let fired = fired_at(&simulation);
    assert_eq!(fired.len(), 80);
    for &(true_ns, tag, mono_ns, _) in &fired {
        assert_eq!(
            mono_ns,
            piecewise_elapsed_ns(&pieces, true_ns),
            "timer {tag}"
        );
        assert!(mono_ns >= tag * 100 * MS, "timer {tag} fired early");
    }
    assert_eq!(
        simulation.stats().faults_by_kind.get("clock_drift"),
        Some(&2)
    );
}
