//! The control plane on madsim: the same scenarios and checkers.

use dst::scenario::Scenario;
use dst::world::{RunOptions, RunResult};
use node::NodeId;
use sim::{Fault, ScheduledFault, TraceKind};

const MS: u64 = node::MILLISECOND_NS;

fn options(seed: u64, keep_trace: bool) -> RunOptions {
    RunOptions {
        seed,
        keep_trace,
        ..RunOptions::default()
    }
}

fn run(name: &str, seed: u64) -> RunResult {
    let scenario = Scenario::load(name).expect("scenario loads");
    madsim_engine::run_scenario(&scenario, &options(seed, false)).expect("runs")
}

fn verdict(r: &RunResult) -> Option<(&str, &str)> {
    r.check
        .first_violation()
        .map(|v| (v.property, v.message.as_str()))
}

/// A scenario from its text, through the same parser as a file's.
/// A scenario of `duration_ms` with the workload ending at
/// `workload_end_ms`, liveness judged within `liveness_bound_ms`, and
/// `schedule` (its `[[schedule]]` entries).
fn with_schedule(
    name: &str,
    (duration_ms, workload_end_ms, liveness_bound_ms): (u64, u64, u64),
    schedule: &str,
) -> Scenario {
    let text = format!(
        "name = \"{name}\"\ndescription = \"{name}\"\n[run]\nduration_ms = {duration_ms}\n\
         liveness_bound_ms = {liveness_bound_ms}\n[client]\nworkload_end_ms = {workload_end_ms}\n\
         {schedule}"
    );
    Scenario::parse(&text, &format!("{name}.toml")).expect("the test's scenario parses")
}

fn index_of(result: &RunResult, name: &str) -> NodeId {
    let index = result
        .node_names
        .iter()
        .position(|known| known == name)
        .unwrap_or_else(|| panic!("no node {name}"));
    NodeId(index as u32)
}

#[test]
fn baseline_passes_on_madsim_with_the_same_hash_twice() {
    // The wall clock only times the test, outside the run.
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let first = run("baseline", 1);
    eprintln!(
        "{:?} events {} records {} hash {:x} in {:.1?} violations {:?}",
        first.stop,
        first.stats.events,
        first.stats.events_recorded,
        first.trace_hash,
        started.elapsed(),
        verdict(&first),
    );
    assert!(verdict(&first).is_none());
    assert!(first.stats.events_recorded > 0);
    let again = run("baseline", 1);
    assert_eq!(first.trace_hash, again.trace_hash);
    let other = run("baseline", 2);
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "the seed reaches madsim"
    );
}

#[test]
fn a_degrade_of_some_links_is_refused_by_name() {
    let scenario = Scenario::load("baseline").expect("scenario loads");
    let faults = vec![ScheduledFault {
        at_ns: 1_000 * MS,
        fault: Fault::Degrade {
            nodes: vec![NodeId(0)],
            drop_ppm: 100_000,
            duplicate_ppm: 0,
            delay_ns: 0,
            duration_ns: 1_000 * MS,
        },
    }];
    let options = RunOptions {
        faults: Some(faults),
        ..options(1, false)
    };
    let error = madsim_engine::run_scenario(&scenario, &options)
        .expect_err("madsim cannot degrade some links only")
        .to_string();
    eprintln!("{error}");
    assert!(error.contains("madsim cannot express `degrade`"), "{error}");
}

#[test]
fn a_degrade_of_every_link_runs() {
    let scenario = Scenario::load("baseline").expect("scenario loads");
    let faults = vec![ScheduledFault {
        at_ns: 3_000 * MS,
        fault: Fault::Degrade {
            nodes: vec![],
            drop_ppm: 200_000,
            duplicate_ppm: 100_000,
            delay_ns: 2 * MS,
            duration_ns: 3_000 * MS,
        },
    }];
    let options = RunOptions {
        faults: Some(faults),
        ..options(3, false)
    };
    let result = madsim_engine::run_scenario(&scenario, &options).expect("runs");
    assert!(result.stats.messages_duplicated > 0);
    assert!(verdict(&result).is_none(), "{:?}", verdict(&result));
}

#[test]
fn a_partition_cuts_the_links_it_names() {
    let scenario = with_schedule(
        "madsim-partition",
        (12_000, 8_000, 10_000),
        r#"
[[schedule]]
at_ms = 3_000
kind = "partition"
side_a = ["api-0"]
side_b = ["store"]
duration_ms = 3_000
"#,
    );
    let result = madsim_engine::run_scenario(&scenario, &options(1, true)).expect("runs");
    let (api, store) = (index_of(&result, "api-0"), index_of(&result, "store"));
    let trace = result.trace.as_ref().expect("the trace was kept");
    let across = |from_ns: u64, until_ns: u64| {
        trace
            .iter()
            .filter(|entry| {
                entry.kind == TraceKind::Deliver
                    && ((entry.node, entry.peer) == (api, store)
                        || (entry.node, entry.peer) == (store, api))
                    && (from_ns..until_ns).contains(&entry.time_ns)
            })
            .count()
    };
    // What was sent before the cut may still land within the latency
    // range (madsim decides a datagram's fate when it is sent).
    let before = across(1_000 * MS, 3_000 * MS);
    let during = across(3_000 * MS + 10 * MS, 6_000 * MS);
    let after = across(6_000 * MS + 10 * MS, 9_000 * MS);
    eprintln!("api-0 <-> store deliveries: before {before}, during {during}, after {after}");
    assert!(
        before > 0 && after > 0,
        "the link carries traffic when whole"
    );
    assert_eq!(during, 0, "nothing crosses the cut");
    assert!(verdict(&result).is_none(), "{:?}", verdict(&result));
}

#[test]
fn a_crash_restarts_the_node_on_a_new_boot_and_a_clog_holds_then_releases() {
    let scenario = with_schedule(
        "madsim-crash",
        (12_000, 8_000, 10_000),
        r#"
[[schedule]]
at_ms = 2_000
kind = "crash"
node = "api-0"
restart_after_ms = 1_500
[[schedule]]
at_ms = 4_000
kind = "pause"
node = "store"
duration_ms = 500
[[schedule]]
at_ms = 5_000
kind = "clog"
from = "store"
to = "api-1"
duration_ms = 1_000
"#,
    );
    let result = madsim_engine::run_scenario(&scenario, &options(2, true)).expect("runs");
    let api = index_of(&result, "api-0");
    let store = index_of(&result, "store");
    let trace = result.trace.as_ref().expect("the trace was kept");
    let restart = trace
        .iter()
        .find(|entry| entry.kind == TraceKind::Restart && entry.node == api)
        .expect("api-0 restarted");
    assert!(restart.time_ns >= 3_500 * MS, "{}", restart.time_ns);
    assert!(
        !trace.iter().any(|entry| entry.node == api
            && entry.kind == TraceKind::Deliver
            && (2_000 * MS + 1..3_500 * MS).contains(&entry.time_ns)),
        "a crashed node handles nothing"
    );
    let history = result.history.as_ref().expect("the history was kept");
    assert!(
        history
            .iter()
            .any(|entry| entry.node == api && entry.time_ns >= restart.time_ns),
        "api-0 works again after its restart"
    );
    // The pause: the store handles nothing for its 500 ms.
    assert!(
        !trace.iter().any(|entry| entry.node == store
            && matches!(entry.kind, TraceKind::Deliver | TraceKind::Timer)
            && (4_000 * MS + 1..4_500 * MS).contains(&entry.time_ns)),
        "a paused node handles nothing"
    );
    assert!(result.stats.messages_held > 0, "the clog held messages");
    eprintln!(
        "restart at {} ms, {} held",
        restart.time_ns / MS,
        result.stats.messages_held
    );
    assert!(verdict(&result).is_none(), "{:?}", verdict(&result));
}

#[test]
fn overlapping_crashes_of_one_node_restart_it_once_and_its_clock_never_goes_back() {
    // A reboot that starts while the node is down from a crash does
    // nothing; the crash's heal restarts the node, and the reboot's later
    // heal finds it up and leaves it, and its clock, be.
    // Restarting the running node's clock moved it back within a boot and
    // the controller panicked (worker-restarts seeds 173 and 177).
    let scenario = with_schedule(
        "madsim-overlap",
        (8_000, 6_000, 20_000),
        r#"
[[schedule]]
at_ms = 2_000
kind = "crash"
node = "controller-0"
restart_after_ms = 1_000
[[schedule]]
at_ms = 2_500
kind = "reboot"
node = "controller-0"
restart_after_ms = 1_500
"#,
    );
    let result = madsim_engine::run_scenario(&scenario, &options(3, true)).expect("runs");
    assert_eq!(verdict(&result), None);
    let controller = index_of(&result, "controller-0");
    let restarts: Vec<_> = result
        .trace
        .as_ref()
        .expect("the trace was kept")
        .iter()
        .filter(|entry| entry.kind == TraceKind::Restart && entry.node == controller)
        .collect();
    assert_eq!(restarts.len(), 1, "one restart: {restarts:?}");
    assert!(restarts[0].time_ns >= 3_000 * MS && restarts[0].time_ns < 4_000 * MS);
}

#[test]
fn a_given_fault_list_replays_to_the_same_hash() {
    let scenario = Scenario::load("worker-restarts").expect("scenario loads");
    let first = madsim_engine::run_scenario(&scenario, &options(4, false)).expect("runs");
    let replay = RunOptions {
        faults: Some(first.faults.clone()),
        ..options(4, false)
    };
    let again = madsim_engine::run_scenario(&scenario, &replay).expect("runs");
    assert_eq!(first.faults, again.faults);
    assert_eq!(first.trace_hash, again.trace_hash);
}

#[test]
fn the_event_limit_stops_the_run() {
    let mut scenario = Scenario::load("baseline").expect("scenario loads");
    scenario.run.max_events = 2_000;
    let result = madsim_engine::run_scenario(&scenario, &options(1, false)).expect("runs");
    assert_eq!(result.stop, sim::StopReason::EventLimit);
    assert!(
        result.end_ns < 20_000 * MS,
        "stopped early: {} ms",
        result.end_ns / MS
    );
}

#[test]
fn a_planted_bug_is_caught_on_madsim() {
    // The checkers judge what madsim ran: a holder that keeps acting after
    // its renewals fail is caught where it is on our simulator.
    let bug = plane::config::Bug::ActAfterRenewFailure;
    let exhibit = dst::zoo::exhibit(bug);
    let mut scenario = Scenario::load(exhibit.scenario).expect("scenario loads");
    scenario.plant(bug);
    let result = madsim_engine::run_scenario(&scenario, &options(0, false)).expect("runs");
    assert_eq!(
        verdict(&result).map(|(property, _)| property),
        Some(exhibit.property)
    );
}

#[test]
#[ignore = "the bug zoo on madsim: the first seed that catches each planted bug"]
fn zoo() {
    let seeds: u64 = std::env::var("SEEDS").map_or(30, |s| s.parse().unwrap());
    for bug in plane::config::Bug::all() {
        let exhibit = dst::zoo::exhibit(bug);
        let mut scenario = Scenario::load(exhibit.scenario).expect("scenario loads");
        scenario.plant(bug);
        let first = |engine: &dyn Fn(&Scenario, &RunOptions) -> RunResult| {
            (0..seeds).find_map(|seed| {
                let r = engine(&scenario, &options(seed, false));
                r.check
                    .first_violation()
                    .map(|v| (seed, v.property.to_string()))
            })
        };
        let madsim = first(&|s, o| madsim_engine::run_scenario(s, o).expect("runs"));
        let ours = first(&|s, o| dst::world::run_scenario(s, o).expect("runs"));
        eprintln!(
            "{bug:?} in {} (expect {}): madsim {madsim:?}, simulator {ours:?}",
            exhibit.scenario, exhibit.property
        );
    }
}

#[test]
#[ignore = "a survey: prints every scenario's verdict for a few seeds"]
fn survey() {
    let seeds: u64 = std::env::var("SEEDS").map_or(2, |s| s.parse().unwrap());
    let (mut runs, mut differ) = (0, 0);
    for name in dst::scenario::list_scenarios() {
        let scenario = Scenario::load(&name).expect("scenario loads");
        for seed in 0..seeds {
            // Our simulator's verdict beside madsim's.
            let ours = dst::world::run_scenario(&scenario, &options(seed, false))
                .expect("the simulator runs");
            let ours = verdict(&ours).map(|(property, _)| property);
            match madsim_engine::run_scenario(&scenario, &options(seed, false)) {
                Ok(r) => {
                    runs += 1;
                    let theirs = verdict(&r);
                    let same = theirs.map(|(property, _)| property) == ours;
                    differ += u32::from(!same);
                    eprintln!(
                        "{name:20} {seed:3} {:?} {:>6} events  {:?}  (simulator: {}{})",
                        r.stop,
                        r.stats.events,
                        theirs,
                        ours.unwrap_or("pass"),
                        if same { "" } else { ", DIFFERS" },
                    );
                }
                Err(error) => eprintln!("{name:20} {seed:3} refused: {error}"),
            }
        }
    }
    eprintln!("{runs} runs, {differ} verdicts differ from the simulator's");
}

#[test]
fn madsims_own_determinism_check_passes_and_agrees_with_a_plain_run() {
    let scenario = Scenario::load("chaos").expect("scenario loads");
    let checked = madsim_engine::check_determinism(&scenario, &options(5, false)).expect("runs");
    let plain = madsim_engine::run_scenario(&scenario, &options(5, false)).expect("runs");
    assert_eq!(checked.trace_hash, plain.trace_hash);
}
