//! One scenario on every engine, one core each: `cargo bench --bench engines`.
//!
//! The same seeds of the same scenario on our simulator, on turmoil and on
//! madsim (a separate build, run through `./madsim/run`; skipped with a
//! note if it cannot be built). Prints seeds per second and simulated
//! seconds per wall second for each; figures are printed, never asserted.
//! `ENGINES_SCENARIO` (default `partition-leader`) and `ENGINES_SEEDS`
//! (default 20) change the run.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time is what we measure

use std::process::Command;
use std::time::Instant;

use dst::scenario::Scenario;
use dst::world::{RunOptions, RunResult};

type Runner = fn(&Scenario, &RunOptions) -> Result<RunResult, dst::error::Error>;

fn measure(name: &str, scenario: &Scenario, seeds: u64, run: Runner) {
    let started = Instant::now();
    let mut simulated_ns = 0u64;
    let mut passed = 0;
    for seed in 0..seeds {
        let options = RunOptions {
            seed,
            ..RunOptions::default()
        };
        let result = run(scenario, &options).expect("runs");
        simulated_ns += result.end_ns;
        passed += u32::from(result.check.first_violation().is_none());
    }
    report(
        name,
        seeds,
        started.elapsed().as_secs_f64(),
        simulated_ns as f64 / 1e9,
        passed,
    );
}

fn report(name: &str, seeds: u64, wall_s: f64, simulated_s: f64, passed: u32) {
    println!(
        "{name:8} {seeds:4} seeds in {wall_s:7.2} s: {:8.2} seeds/s, {:8.1} simulated s per wall s, {passed} passed",
        seeds as f64 / wall_s,
        simulated_s / wall_s,
    );
}

fn main() {
    let name = std::env::var("ENGINES_SCENARIO").unwrap_or_else(|_| "partition-leader".into());
    let seeds: u64 = std::env::var("ENGINES_SEEDS").map_or(20, |s| s.parse().expect("a number"));
    let scenario = Scenario::load(&name).expect("scenario loads");
    println!("{name}: seeds 0..{seeds} on one core, each engine in turn");
    measure("sim", &scenario, seeds, dst::world::run_scenario);
    measure("turmoil", &scenario, seeds, engine::turmoil::run_scenario);
    madsim(&name, seeds);
}

/// madsim needs `--cfg madsim`, so it runs in its own build: its own
/// binary sweeps the same seeds on one core and prints the summary.
fn madsim(name: &str, seeds: u64) {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::env::temp_dir().join("controlplane-bench-engines-madsim");
    let _ = std::fs::remove_dir_all(&out);
    let output = Command::new(format!("{root}/madsim/run"))
        .args([
            "run",
            "--release",
            "--quiet",
            "--bin",
            "controlplane-madsim",
            "--",
        ])
        .args(["sweep", "--scenario", name, "--jobs", "1", "--json"])
        .arg("--seeds")
        .arg(format!("0..{seeds}"))
        .arg("--out")
        .arg(&out)
        .output();
    let _ = std::fs::remove_dir_all(&out);
    let summary: Option<serde_json::Value> = output
        .as_ref()
        .ok()
        .and_then(|output| serde_json::from_slice(&output.stdout).ok());
    match summary {
        Some(summary) => {
            let per_second = summary["seeds_per_second"].as_f64().unwrap_or(0.0);
            let wall_s = seeds as f64 / per_second.max(f64::MIN_POSITIVE);
            let simulated = summary["simulated_per_wall"].as_f64().unwrap_or(0.0) * wall_s;
            let passed = summary["passed"].as_u64().unwrap_or(0) as u32;
            report("madsim", seeds, wall_s, simulated, passed);
        }
        None => println!(
            "madsim   skipped: ./madsim/run could not sweep ({})",
            match &output {
                Ok(output) => String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .to_string(),
                Err(error) => error.to_string(),
            }
        ),
    }
}
