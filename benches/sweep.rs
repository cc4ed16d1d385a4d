//! Sweep and shrink throughput, release build: `cargo bench --bench sweep`.
//!
//! 1. One core, side by side: the bare event loop (ten no-op nodes
//!    re-arming a 1 ms timer, the simulator's ceiling) and chaos seeds run
//!    one after another with their checkers. Prints chaos seeds per
//!    core-second, events per second, and the ratio of the two loops'
//!    events per second, also without the chaos events that were cancelled
//!    timers (the bare loop cancels none); then the peak heap of one chaos
//!    run, counted by this benchmark's allocator.
//! 2. The chaos scenario (default topology, 60 simulated seconds of faults
//!    and workload, then the liveness phase) over 1,000 seeds with the
//!    determinism check (each seed run twice), on every core.
//! 3. Shrinking a real failing artifact.
//! 4. (Printed after part 1.) A steady load of 50 requests a second for
//!    60 s and for 240 s, best of 3 each: events per second of both, and
//!    their ratio. Work that grows with the run's history (a scan of the
//!    whole ledger, a checker walking every earlier answer) makes the long
//!    run slower per event; a ratio near 1 says a run's cost grows with its
//!    length, not faster.
//!
//! Figures are printed, never asserted. `SWEEP_BENCH_SEEDS` (default 200,
//! at least 3) sets the one-core chaos seeds: each of the three rounds runs
//! a third of them, seeds 0 on. `SWEEP_BENCH_SKIP_SWEEP=1` skips part 2.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time is what we measure

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Instant;

use controlplane::alloc::Allocator;
use sim::{ClockConfig, Context, Node, NodeId, Protocol, SimConfig, Simulation, TimerId};

use dst::artifact::Artifact;
use dst::engine::EngineRunner;
use dst::scenario::Scenario;
use dst::sweep::{SweepOptions, sweep};
use dst::world::{RunOptions, run_scenario};

/// The binary's allocator, counting, while [`COUNTING`] is on, the bytes
/// asked for less those freed, and the peak of that (requested bytes, not
/// the allocator's footprint). Off while speed is measured, when it costs
/// one relaxed load per call.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

impl Counting {
    fn grew(size: usize) {
        if COUNTING.load(Ordering::Relaxed) {
            let size = size as isize;
            let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
    }
    fn shrank(size: usize) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(size as isize, Ordering::Relaxed);
        }
    }
    /// The peak heap of `work`, above what was live before it (frees of
    /// older memory during `work` would lower it; a run frees none).
    fn peak_of<T>(work: impl FnOnce() -> T) -> usize {
        LIVE.store(0, Ordering::Relaxed);
        PEAK.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        let result = work();
        COUNTING.store(false, Ordering::Relaxed);
        drop(result);
        PEAK.load(Ordering::Relaxed).max(0) as usize
    }
}

// SAFETY: every call is passed to the binary's allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::grew(layout.size());
        unsafe { Allocator.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::grew(layout.size());
        unsafe { Allocator.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::shrank(layout.size());
        unsafe { Allocator.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::shrank(layout.size());
        Self::grew(new_size);
        unsafe { Allocator.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Bare;

impl Protocol for Bare {
    type Message = ();
    type Timer = ();
    type Event = ();
    type Durable = ();
}

/// Re-arms a 1 ms timer and does nothing else.
struct Idle;

impl Node<Bare> for Idle {
    fn on_start(&mut self, ctx: &mut Context<'_, Bare>) {
        ctx.set_timer(sim::MILLISECOND_NS, ());
    }
    fn on_message(&mut self, _: &mut Context<'_, Bare>, _: NodeId, _: ()) {}
    fn on_timer(&mut self, ctx: &mut Context<'_, Bare>, _: TimerId, _: ()) {
        ctx.set_timer(sim::MILLISECOND_NS, ());
    }
}

/// Events per second of the bare loop: ten idle nodes, 100 simulated s.
fn bare_loop() -> f64 {
    let started = Instant::now();
    let mut simulation = Simulation::<Bare>::new(SimConfig::default());
    for index in 0..10 {
        simulation.add_node(format!("idle{index}"), ClockConfig::default(), |_| {
            Box::new(Idle)
        });
    }
    simulation.run_until(100 * sim::SECOND_NS);
    simulation.stats().events as f64 / started.elapsed().as_secs_f64()
}

/// Chaos seeds one after another on this core, checkers included: seeds
/// per second and events per second. (Cancelled timers are no events, in
/// the chaos runs as in the bare loop.)
fn chaos_one_core(chaos: &Scenario, seeds: u64) -> (f64, f64) {
    let started = Instant::now();
    let mut events = 0;
    for seed in 0..seeds {
        let options = RunOptions {
            seed,
            ..RunOptions::default()
        };
        events += run_scenario(chaos, &options).expect("runs").stats.events;
    }
    let seconds = started.elapsed().as_secs_f64();
    (seeds as f64 / seconds, events as f64 / seconds)
}

fn one_core(chaos: &Scenario) {
    let seeds = std::env::var("SWEEP_BENCH_SEEDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(200u64)
        .max(3);
    // Warm up, then alternate so both loops see the same machine.
    bare_loop();
    chaos_one_core(chaos, 5);
    let (mut bare, mut seeds_per_s, mut events_per_s) = (0.0f64, 0.0f64, 0.0f64);
    for _ in 0..3 {
        bare = bare.max(bare_loop());
        let (s, e) = chaos_one_core(chaos, seeds / 3);
        seeds_per_s = seeds_per_s.max(s);
        events_per_s = events_per_s.max(e);
    }
    println!(
        "one core, best of 3: bare event loop {:.2} M events/s; chaos {seeds_per_s:.1} seeds per core-second, {:.2} M events/s with the checkers: {:.1}% of the bare loop",
        bare / 1e6,
        events_per_s / 1e6,
        100.0 * events_per_s / bare,
    );
    let peak = (0..20)
        .map(|seed| {
            let options = RunOptions {
                seed,
                ..RunOptions::default()
            };
            Counting::peak_of(|| run_scenario(chaos, &options).expect("runs"))
        })
        .max()
        .unwrap_or(0);
    println!(
        "peak heap of one chaos run (seeds 0..20, the largest): {:.2} MB",
        peak as f64 / 1e6
    );
}

/// Events per second of one run of steady load (a request every 20 ms on
/// average, no faults) lasting `workload_s` simulated seconds.
fn steady(workload_s: u64) -> f64 {
    let text = format!(
        "name = \"steady-{workload_s}\"\ndescription = \"steady load\"\n\
         [run]\nduration_ms = {}\nliveness_bound_ms = 10_000\n\
         [client]\nworkload_end_ms = {}\nrequest_interval_ms = 20\n",
        (workload_s + 10) * 1_000,
        workload_s * 1_000,
    );
    let scenario = Scenario::parse(&text, "steady.toml").expect("a valid scenario");
    let options = RunOptions {
        seed: 1,
        ..RunOptions::default()
    };
    let started = Instant::now();
    let result = run_scenario(&scenario, &options).expect("runs");
    assert!(
        result.check.first_violation().is_none(),
        "steady load passes"
    );
    result.stats.events as f64 / started.elapsed().as_secs_f64()
}

fn long_runs() {
    steady(60); // Warm up.
    let (mut short, mut long) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        short = short.max(steady(60));
        long = long.max(steady(240));
    }
    println!(
        "steady load, 50 requests/s, best of 3: 60 s {:.2} M events/s, 240 s {:.2} M events/s: the long run at {:.2}x the short one's rate (1 is linear)",
        short / 1e6,
        long / 1e6,
        long / short,
    );
}

fn main() {
    // `./pgo/run bench` sets this when it builds the benchmark with its
    // profile, so figures of the two builds cannot be mistaken for each
    // other.
    let build = option_env!("CONTROLPLANE_BUILD").unwrap_or("release");
    println!("build: {build}");
    let chaos = Scenario::load("chaos").expect("chaos loads");
    one_core(&chaos);
    long_runs();
    if std::env::var_os("SWEEP_BENCH_SKIP_SWEEP").is_some() {
        return;
    }
    let out_dir = std::env::temp_dir().join("controlplane-bench-sweep");
    let _ = std::fs::remove_dir_all(&out_dir);
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    let options = SweepOptions {
        scenarios: vec![chaos],
        seeds: 0..1_000,
        jobs,
        shard: None,
        out_dir,
        resume: false,
        check_determinism: true,
        progress: None,
        titles: Vec::new(),
        fail_fast: false,
        runner: EngineRunner::SIM,
    };
    let started = Instant::now();
    let (results, summary) = sweep(&options).expect("sweep runs");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&options.out_dir);
    println!(
        "chaos sweep: {} seeds x2 (--check-determinism) on {jobs} jobs in {seconds:.1} s: {:.1} seeds/s, {:.0} simulated s per wall s, {} passed",
        results.len(),
        summary.seeds_per_second,
        summary.simulated_per_wall,
        summary.passed
    );

    let scenario = Scenario::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tight-bound.toml"
    ))
    .expect("fixture");
    let failing = (0..100)
        .map(|seed| {
            run_scenario(
                &scenario,
                &RunOptions {
                    seed,
                    ..RunOptions::default()
                },
            )
            .expect("runs")
        })
        .find(|result| !result.check.liveness_ok())
        .expect("the fixture fails for some seed");
    let artifact = Artifact::from_run(&scenario, &failing);
    let started = Instant::now();
    let shrunk = dst::shrink::shrink(&artifact, EngineRunner::SIM).expect("shrinks");
    println!(
        "shrink: {} -> {} faults in {} runs, {:.3} s ({})",
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.runs,
        started.elapsed().as_secs_f64(),
        if shrunk.one_minimal {
            "1-minimal"
        } else {
            "not 1-minimal"
        }
    );
}
