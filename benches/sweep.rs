//! Sweep and shrink throughput, release build: `cargo bench --bench sweep`.
//!
//! The chaos scenario (default topology, 60 simulated seconds of faults and
//! workload, then the liveness phase) over 1,000 seeds with the determinism
//! check (each seed run twice), on every core; then shrinking a real failing
//! artifact. Figures are printed, never asserted.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time is what we measure

use std::time::Instant;

use dst::artifact::Artifact;
use dst::engine::EngineRunner;
use dst::scenario::Scenario;
use dst::sweep::{SweepOptions, sweep};
use dst::world::{RunOptions, run_scenario};

fn main() {
    let out_dir = std::env::temp_dir().join("controlplane-bench-sweep");
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    let options = SweepOptions {
        scenarios: vec![Scenario::load("chaos").expect("chaos loads")],
        seeds: 0..1_000,
        jobs,
        shard: None,
        out_dir,
        resume: false,
        check_determinism: true,
        progress: false,
        fail_fast: false,
        runner: EngineRunner::SIM,
    };
    let started = Instant::now();
    let (results, summary) = sweep(&options).expect("sweep runs");
    let seconds = started.elapsed().as_secs_f64();
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
