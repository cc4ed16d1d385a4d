//! Sweeps: many seeds of a scenario, run in parallel across cores, each
//! result appended to a JSON Lines file as it finishes (a killed sweep loses
//! nothing; `--resume` skips what is done), a failure artifact per failing
//! seed, and a summary that is the same whatever the number of jobs.
//!
//! Threads live here, outside the simulated core: each run is still one
//! thread and one seed, so the results do not depend on scheduling.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // threads and wall time for the runner itself

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::scenario::Scenario;
use crate::world::{RunOptions, RunResult, run_scenario};

/// How a seed ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every property held.
    Pass,
    /// Every `always` and `eventually` property held, but a `cost.*`
    /// measurement went over its budget. Less severe than any other
    /// failure, so a sweep's worst outcome names the real one.
    Cost,
    /// An `always` property was violated.
    Safety,
    /// An `eventually` property failed, or the run hit a limit.
    Liveness,
    /// The system under test panicked.
    Crash,
    /// The same seed gave two different traces.
    Nondeterministic,
}

impl Outcome {
    /// The process exit code for this outcome (see the CLI's help).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Safety => 3,
            Outcome::Liveness => 4,
            Outcome::Crash => 5,
            Outcome::Nondeterministic => 6,
            Outcome::Cost => 7,
        }
    }

    /// The outcome of a finished run.
    pub fn of(result: &RunResult) -> Outcome {
        if !result.check.safety_ok() {
            Outcome::Safety
        } else if result.stop.is_limit() || !result.check.liveness_ok() {
            Outcome::Liveness
        } else if !result.check.cost_ok() {
            Outcome::Cost
        } else {
            Outcome::Pass
        }
    }
}

/// One seed's line in `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedResult {
    /// Scenario name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The failing properties, first first.
    pub failed: Vec<String>,
    /// The first violation's message (or the panic message).
    pub message: Option<String>,
    /// Trace hash, as hex.
    pub trace_hash: String,
    /// Events processed.
    pub events: u64,
    /// Simulated nanoseconds run.
    pub simulated_ns: u64,
    /// Faults applied.
    pub faults: u64,
    /// Sometimes-properties reached, with counts.
    pub sometimes: BTreeMap<String, u64>,
    /// Convergence time after the last heal.
    pub convergence_ns: Option<u64>,
}

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
    /// Seeds `start..end`.
    pub seeds: std::ops::Range<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Only seeds with `(seed - start) % count == index`.
    pub shard: Option<(u64, u64)>,
    /// Where results and artifacts go.
    pub out_dir: PathBuf,
    /// Skip seeds already in the results file.
    pub resume: bool,
    /// Run every seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// Print a progress line on stderr.
    pub progress: bool,
}

/// The sweep's summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Seeds with a result (including resumed ones).
    pub seeds: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Seeds per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Failing seeds per property, with the first (lowest) seed.
    pub failures: BTreeMap<String, (u64, u64)>,
    /// Per sometimes-property: seeds that reached it, total count.
    pub coverage: BTreeMap<String, (u64, u64)>,
    /// Convergence time after heal, ms: p50, p99, max.
    pub convergence_ms: Option<(u64, u64, u64)>,
    /// Seeds run now (not resumed) per wall second.
    pub seeds_per_second: f64,
    /// Simulated seconds per wall second, over the seeds run now.
    pub simulated_per_wall: f64,
    /// Runs made now (twice per seed with --check-determinism).
    pub runs: u64,
}

thread_local! {
    static PANIC_MESSAGE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Installs a panic hook that keeps the message for the sweep instead of
/// printing it, so a crashing seed is a reported outcome.
pub fn capture_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        PANIC_MESSAGE.with(|slot| *slot.borrow_mut() = Some(message));
    }));
}

/// Runs one seed, turning a panic into `Err(message)`.
pub fn run_guarded(scenario: &Scenario, options: &RunOptions) -> Result<RunResult, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| run_scenario(scenario, options))) {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(message)) => Err(format!("bad input: {message}")),
        Err(_) => Err(PANIC_MESSAGE
            .with(|slot| slot.borrow_mut().take())
            .unwrap_or_else(|| "panic".to_string())),
    }
}

fn run_seed(
    scenario: &Scenario,
    seed: u64,
    check_determinism: bool,
) -> (SeedResult, Option<Artifact>) {
    let options = RunOptions {
        seed,
        faults: None,
        keep_trace: false,
    };
    let first = match run_guarded(scenario, &options) {
        Ok(result) => result,
        Err(message) => return (crash_result(scenario, seed, message), None),
    };
    let mut outcome = Outcome::of(&first);
    let mut failed: Vec<String> = first.check.failed_properties();
    let mut message = first.check.first_violation().map(|v| v.message.clone());
    if check_determinism {
        match run_guarded(scenario, &options) {
            Ok(second) if second.trace_hash == first.trace_hash => {}
            Ok(second) => {
                outcome = Outcome::Nondeterministic;
                failed.insert(0, "determinism".to_string());
                message = Some(format!(
                    "trace hash {:#018x} then {:#018x}: run `simulate --check-determinism` to see where",
                    first.trace_hash, second.trace_hash
                ));
            }
            Err(panic) => return (crash_result(scenario, seed, panic), None),
        }
    }
    let artifact = (outcome != Outcome::Pass).then(|| Artifact::from_run(scenario, &first));
    let result = SeedResult {
        scenario: scenario.name.clone(),
        seed,
        outcome,
        failed,
        message,
        trace_hash: format!("{:#018x}", first.trace_hash),
        events: first.stats.events,
        simulated_ns: first.end_ns,
        faults: first.faults.len() as u64,
        sometimes: first.check.sometimes.clone(),
        convergence_ns: first.check.measurements.convergence_ns,
    };
    (result, artifact)
}

fn crash_result(scenario: &Scenario, seed: u64, message: String) -> SeedResult {
    SeedResult {
        scenario: scenario.name.clone(),
        seed,
        outcome: Outcome::Crash,
        failed: vec!["crash".to_string()],
        message: Some(message),
        trace_hash: String::new(),
        events: 0,
        simulated_ns: 0,
        faults: 0,
        sometimes: BTreeMap::new(),
        convergence_ns: None,
    }
}

/// The results file of a sweep directory.
pub fn results_path(out_dir: &Path) -> PathBuf {
    out_dir.join("results.jsonl")
}

fn read_results(path: &Path) -> Result<Vec<SeedResult>, String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(Vec::new());
    };
    let mut results = Vec::new();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SeedResult>(&line) {
            Ok(result) => results.push(result),
            // A sweep killed mid-write leaves a torn last line: rerun it.
            Err(_) => eprintln!("{}:{}: skipping a torn line", path.display(), number + 1),
        }
    }
    Ok(results)
}

/// Runs the sweep; returns every result (resumed ones included) and the
/// summary.
pub fn sweep(options: &SweepOptions) -> Result<(Vec<SeedResult>, Summary), String> {
    if !options.resume {
        // A fresh sweep owns its directory's results: stale artifacts from
        // an earlier sweep would read as this one's failures.
        let failures = options.out_dir.join("failures");
        if failures.exists() {
            std::fs::remove_dir_all(&failures)
                .map_err(|e| format!("{}: cannot clear: {e}", failures.display()))?;
        }
    }
    std::fs::create_dir_all(options.out_dir.join("failures"))
        .map_err(|e| format!("{}: cannot create: {e}", options.out_dir.display()))?;
    let path = results_path(&options.out_dir);
    let previous = if options.resume {
        read_results(&path)?
    } else {
        Vec::new()
    };
    if !options.resume {
        std::fs::write(&path, "").map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    let done: BTreeSet<(String, u64)> = previous
        .iter()
        .map(|r| (r.scenario.clone(), r.seed))
        .collect();
    let todo: Vec<(usize, u64)> = options
        .scenarios
        .iter()
        .enumerate()
        .flat_map(|(index, scenario)| {
            options
                .seeds
                .clone()
                .filter(|seed| match options.shard {
                    Some((shard, count)) => (seed - options.seeds.start) % count == shard,
                    None => true,
                })
                .filter(|&seed| !done.contains(&(scenario.name.clone(), seed)))
                .map(move |seed| (index, seed))
        })
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    capture_panics();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(SeedResult, Option<Artifact>)>();
    let mut fresh = Vec::with_capacity(todo.len());
    let mut write_error = None;
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            let sender = sender.clone();
            let (todo, next) = (&todo, &next);
            scope.spawn(move || {
                loop {
                    let claimed = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(index, seed)) = todo.get(claimed) else {
                        break;
                    };
                    let outcome =
                        run_seed(&options.scenarios[index], seed, options.check_determinism);
                    if sender.send(outcome).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (result, artifact) in receiver {
            if let Some(artifact) = artifact {
                let name = format!("{}-seed-{}.json", result.scenario, result.seed);
                if let Err(error) = artifact.write(&options.out_dir.join("failures").join(name)) {
                    write_error.get_or_insert(error);
                }
            }
            let line = serde_json::to_string(&result).expect("results serialize");
            if let Err(error) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                write_error.get_or_insert(format!("{}: {error}", path.display()));
            }
            fresh.push(result);
            if options.progress {
                progress(
                    fresh.len(),
                    todo.len(),
                    &fresh,
                    started.elapsed().as_secs_f64(),
                );
            }
        }
    });
    if options.progress && !todo.is_empty() {
        eprintln!();
    }
    if let Some(error) = write_error {
        return Err(error);
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let mut all = previous;
    all.extend(fresh.iter().cloned());
    all.sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
    let mut summary = summarize(&all);
    let runs_per_seed = if options.check_determinism { 2 } else { 1 };
    summary.runs = fresh.len() as u64 * runs_per_seed;
    summary.seeds_per_second = fresh.len() as f64 / elapsed;
    let simulated_s: f64 = fresh
        .iter()
        .map(|r| r.simulated_ns as f64 / 1e9)
        .sum::<f64>()
        * runs_per_seed as f64;
    summary.simulated_per_wall = simulated_s / elapsed;
    Ok((all, summary))
}

fn progress(done: usize, total: usize, results: &[SeedResult], elapsed_s: f64) {
    let failed = results
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .count();
    let width = 30;
    let filled = done * width / total.max(1);
    eprint!(
        "\r[{}{}] {done}/{total} seeds, {failed} failed, {:.0} seeds/s ",
        "#".repeat(filled),
        ".".repeat(width - filled),
        done as f64 / elapsed_s.max(1e-9)
    );
}

/// Builds the summary of a set of results: deterministic in its input.
pub fn summarize(results: &[SeedResult]) -> Summary {
    let mut summary = Summary {
        seeds: results.len() as u64,
        ..Summary::default()
    };
    let mut convergence = hdrhistogram::Histogram::<u64>::new(3).expect("valid histogram");
    for result in results {
        let outcome = serde_json::to_value(result.outcome).expect("outcome serializes");
        *summary
            .outcomes
            .entry(outcome.as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if result.outcome == Outcome::Pass {
            summary.passed += 1;
        }
        for property in &result.failed {
            let entry = summary
                .failures
                .entry(property.clone())
                .or_insert((0, result.seed));
            entry.0 += 1;
            entry.1 = entry.1.min(result.seed);
        }
        for (name, &count) in &result.sometimes {
            let entry = summary.coverage.entry(name.clone()).or_default();
            entry.0 += u64::from(count > 0);
            entry.1 += count;
        }
        if let Some(ns) = result.convergence_ns {
            convergence
                .record(ns / sim::MILLISECOND_NS)
                .expect("in range");
        }
    }
    if !convergence.is_empty() {
        summary.convergence_ms = Some((
            convergence.value_at_quantile(0.5),
            convergence.value_at_quantile(0.99),
            convergence.max(),
        ));
    }
    summary
}
