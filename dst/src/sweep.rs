//! Sweeps: many seeds of a scenario, run in parallel across cores, each
//! result appended to a JSON Lines file as it finishes (a killed sweep loses
//! nothing; `--resume` skips what is done), a failure artifact per failing
//! seed, and a summary that is the same whatever the number of jobs.
//!
//! Threads live here, outside the simulated core: each run is still one
//! thread and one seed, so the results do not depend on scheduling.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // threads and wall time for the runner itself

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::engine::{Engine, EngineRunner, Runner};
use crate::error::Error;
use crate::scenario::Scenario;
use crate::world::{RunOptions, RunResult, planned_faults};

/// How a seed ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The engine that ran it; absent for `sim`, so lines read the same as
    /// before engines existed.
    #[serde(default, skip_serializing_if = "Engine::is_sim")]
    pub engine: Engine,
    /// [`Scenario::config_hash`] of the scenario as run (planted bugs
    /// included), as hex. `--resume` reuses a result only when this
    /// matches; lines written before the field existed have none, so they
    /// are rerun.
    #[serde(default)]
    pub config_hash: Option<String>,
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
    /// Faults applied (for a crash: the faults the run would have applied).
    pub faults: u64,
    /// Sometimes-properties reached, with counts.
    pub sometimes: BTreeMap<String, u64>,
    /// Convergence time after the last heal.
    pub convergence_ns: Option<u64>,
    /// BUGGIFY points reached, by name: whether the seed turned each on,
    /// and how often it fired. Absent without buggify.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub buggify: BTreeMap<String, BuggifySeen>,
}

/// One BUGGIFY point in one seed's result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuggifySeen {
    /// The seed turned the point on.
    pub active: bool,
    /// Hits that fired.
    pub fired: u64,
}

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
    /// Seeds `start..end`.
    pub seeds: Range<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Only seeds with `(seed - start) % count == index`.
    pub shard: Option<(u64, u64)>,
    /// Where results and artifacts go.
    pub out_dir: PathBuf,
    /// Skip seeds already in the results file (same scenario and config).
    pub resume: bool,
    /// Run every seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// Told of every seed as it finishes (from the thread that writes
    /// results), to draw a progress bar; it sees counts only, so it cannot
    /// change a result or their order.
    pub progress: Option<ProgressSink>,
    /// Start no new seed once one has failed (the seeds already running
    /// finish and are recorded).
    pub fail_fast: bool,
    /// The engine every seed runs on.
    pub runner: EngineRunner,
    /// How the summary names the scenarios (with the bugs planted from the
    /// command line); recorded in `sweep.json` so that `merge` titles its
    /// summary the same. Empty: the scenarios' names.
    pub titles: Vec<String>,
}

/// Where a sweep stands, for a progress bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Seeds finished in this run (resumed ones not counted).
    pub done: u64,
    /// Seeds this run has to do.
    pub total: u64,
    /// Of the seeds done, those that failed.
    pub failed: u64,
}

/// A progress callback; see [`SweepOptions::progress`].
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<dyn Fn(Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// A seed as a sweep names it: `17`, or `chaos:17` when the sweep covers
/// several scenarios and the number alone would not say which one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeedName {
    /// Scenario name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Whether [`std::fmt::Display`] names the scenario.
    #[serde(skip)]
    pub with_scenario: bool,
}

impl std::fmt::Display for SeedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.with_scenario {
            write!(f, "{}:{}", self.scenario, self.seed)
        } else {
            write!(f, "{}", self.seed)
        }
    }
}

/// The sweep's summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The engine the seeds ran on.
    pub engine: Engine,
    /// Seeds with a result (including resumed ones), within the sweep's
    /// scenarios, seeds and shard.
    pub seeds: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Seeds per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Failing seeds per property, with the first (lowest) seed.
    pub failures: BTreeMap<String, (u64, SeedName)>,
    /// Per sometimes-property: seeds that reached it, total count.
    pub coverage: BTreeMap<String, (u64, u64)>,
    /// Per BUGGIFY point seen: seeds that reached it, seeds in which it
    /// was active, and how often it fired in total.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub buggify: BTreeMap<String, (u64, u64, u64)>,
    /// Convergence time after heal, ms: p50, p99, max.
    pub convergence_ms: Option<(u64, u64, u64)>,
    /// Seeds run now (not resumed) per wall second.
    pub seeds_per_second: f64,
    /// Simulated seconds per wall second, over the seeds run now.
    pub simulated_per_wall: f64,
    /// Runs made now (twice per seed with --check-determinism).
    pub runs: u64,
    /// `[K, N]` of a `--shard K/N` sweep: its targets are shown but not
    /// judged, since another shard may reach them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<(u64, u64)>,
    /// How many shards `merge` put together; absent on a sweep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_shards: Option<u64>,
    /// Each scenario's targets (`[expect] reaches`) and how many seeds
    /// reached each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// One target of one scenario, over a sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Scenario name.
    pub scenario: String,
    /// The sometimes-path it is written to reach.
    pub path: String,
    /// Seeds that reached it.
    pub seeds: u64,
    /// Seeds of the scenario swept.
    pub swept: u64,
}

impl Summary {
    /// The targets no seed reached. A shard's are never missed: another
    /// shard may reach them, and `merge` judges the whole.
    pub fn missed_targets(&self) -> Vec<&Target> {
        if self.shard.is_some() {
            return Vec::new();
        }
        self.targets.iter().filter(|t| t.seeds == 0).collect()
    }
}

/// How many of `results` reached each target of `scenarios` (name and
/// targets), in the scenarios' order, then the targets' as written.
pub(crate) fn judge_targets<'s>(
    scenarios: impl IntoIterator<Item = (&'s str, &'s [String])>,
    results: &[SeedResult],
) -> Vec<Target> {
    let mut targets = Vec::new();
    for (scenario, paths) in scenarios {
        let swept: Vec<&SeedResult> = results.iter().filter(|r| r.scenario == scenario).collect();
        for path in paths {
            let seeds = swept
                .iter()
                .filter(|r| r.sometimes.get(path).is_some_and(|&count| count > 0))
                .count() as u64;
            targets.push(Target {
                scenario: scenario.to_string(),
                path: path.clone(),
                seeds,
                swept: swept.len() as u64,
            });
        }
    }
    targets
}

/// The targets of scenarios as a sweep holds them.
pub(crate) fn targets_of(scenarios: &[Scenario], results: &[SeedResult]) -> Vec<Target> {
    judge_targets(
        scenarios
            .iter()
            .map(|s| (s.name.as_str(), s.expect.reaches.as_slice())),
        results,
    )
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

/// Runs one seed with `run`, turning a panic into [`Error::Crash`]; bad
/// input stays [`Error::BadInput`].
pub fn run_guarded(
    run: Runner,
    scenario: &Scenario,
    options: &RunOptions,
) -> Result<RunResult, Error> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| run(scenario, options))) {
        Ok(result) => result,
        Err(_) => Err(Error::crash(
            PANIC_MESSAGE
                .with(|slot| slot.borrow_mut().take())
                .unwrap_or_else(|| "panic".to_string()),
        )),
    }
}

/// What a seed's record says of a run that ended in an error: the panic
/// message itself for a crash (the artifact adds no wording to it).
fn crash_message(error: Error) -> String {
    match error {
        Error::Crash { message, .. } => message,
        other => other.to_string(),
    }
}

fn hex(hash: u64) -> String {
    format!("{hash:#018x}")
}

fn run_seed(
    runner: EngineRunner,
    scenario: &Scenario,
    seed: u64,
    check_determinism: bool,
) -> (SeedResult, Option<Artifact>) {
    let options = RunOptions {
        seed,
        faults: None,
        keep_trace: false,
        buggify_redraws_faults: false,
    };
    run_with(runner, scenario, &options, check_determinism)
}

/// Runs one seed with `options` as given (a guided sweep hands it a fault
/// list): the seed's result line and, if it failed, its artifact.
pub(crate) fn run_with(
    runner: EngineRunner,
    scenario: &Scenario,
    options: &RunOptions,
    check_determinism: bool,
) -> (SeedResult, Option<Artifact>) {
    let seed = options.seed;
    let engine = runner.engine;
    let first = match run_guarded(runner.run, scenario, options) {
        Ok(result) => result,
        Err(error) => {
            let (result, artifact) = match &options.faults {
                None => crashed(engine, scenario, seed, crash_message(error)),
                Some(faults) => {
                    // The list given is the run: replay it as it was run.
                    let message = crash_message(error);
                    let mut artifact =
                        Artifact::crashed(engine, scenario, seed, faults.clone(), message.clone());
                    artifact.buggify_redraws_faults = options.buggify_redraws_faults;
                    let (mut result, _) = crashed(engine, scenario, seed, message);
                    result.faults = faults.len() as u64;
                    (result, artifact)
                }
            };
            return (result, Some(artifact));
        }
    };
    let mut outcome = Outcome::of(&first);
    let mut failed: Vec<String> = first.check.failed_properties();
    let mut message = first.check.first_violation().map(|v| v.message.clone());
    let second = check_determinism.then(|| run_guarded(runner.run, scenario, options));
    let nondeterminism = match second {
        None => None,
        Some(Ok(second)) if second.trace_hash == first.trace_hash => None,
        Some(Ok(second)) => Some(format!(
            "trace hash {} then {}: run `simulate --check-determinism` to see where",
            hex(first.trace_hash),
            hex(second.trace_hash)
        )),
        Some(Err(error)) => {
            failed.insert(0, "crash".to_string());
            Some(format!(
                "the first run finished (trace hash {}) but the second panicked: {}",
                hex(first.trace_hash),
                crash_message(error)
            ))
        }
    };
    let mut artifact = (outcome != Outcome::Pass || nondeterminism.is_some())
        .then(|| Artifact::from_run(scenario, &first));
    if let (Some(why), Some(artifact)) = (&nondeterminism, &mut artifact) {
        outcome = Outcome::Nondeterministic;
        failed.insert(0, "determinism".to_string());
        // The artifact names what failed: a nondeterministic seed that
        // broke no property would otherwise read as `none`.
        artifact.property = "determinism".to_string();
        artifact.message = match first.check.first_violation() {
            Some(violation) => format!(
                "{why}; the first run also broke `{}`: {}",
                violation.property, violation.message
            ),
            None => format!("{why}; the first run broke no property"),
        };
        message = Some(why.clone());
    }
    let result = SeedResult {
        scenario: scenario.name.clone(),
        engine,
        config_hash: Some(hex(first.config_hash)),
        seed,
        outcome,
        failed,
        message,
        trace_hash: hex(first.trace_hash),
        events: first.stats.events,
        simulated_ns: first.end_ns,
        faults: first.faults.len() as u64,
        sometimes: first.check.sometimes.clone(),
        convergence_ns: first.check.measurements.convergence_ns,
        buggify: first
            .stats
            .buggify
            .iter()
            .map(|(point, stats)| {
                let seen = BuggifySeen {
                    active: stats.active,
                    fired: stats.fired,
                };
                (point.clone(), seen)
            })
            .collect(),
    };
    debug_assert_eq!(artifact.is_some(), result.outcome != Outcome::Pass);
    (result, artifact)
}

/// The result and artifact of a run on `engine` that panicked.
fn crashed(
    engine: Engine,
    scenario: &Scenario,
    seed: u64,
    message: String,
) -> (SeedResult, Artifact) {
    // Planning fails only on a scenario that `sweep` refuses before any
    // seed runs (see `check_scenarios`).
    let faults = planned_faults(scenario, seed).unwrap_or_default();
    let artifact = Artifact::crashed(engine, scenario, seed, faults, message.clone());
    let result = SeedResult {
        scenario: scenario.name.clone(),
        engine,
        config_hash: Some(hex(scenario.config_hash())),
        seed,
        outcome: Outcome::Crash,
        failed: vec!["crash".to_string()],
        message: Some(message),
        trace_hash: String::new(),
        events: 0,
        simulated_ns: 0,
        faults: artifact.faults.len() as u64,
        sometimes: BTreeMap::new(),
        convergence_ns: None,
        buggify: BTreeMap::new(),
    };
    (result, artifact)
}

/// The file name of a failing seed's artifact in `failures/`.
pub(crate) fn artifact_name(scenario: &str, seed: u64) -> String {
    format!("{scenario}-seed-{seed}.json")
}

/// The results file of a sweep directory.
pub(crate) fn results_path(out_dir: &Path) -> PathBuf {
    out_dir.join("results.jsonl")
}

/// What reading a results file found besides the results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ResultsFile {
    /// Bytes up to and including the last `\n`.
    complete_bytes: u64,
    /// Bytes after it: a line torn by a killed sweep.
    torn_bytes: u64,
}

/// The longest line of `results.jsonl` read on resume: a seed's result is
/// a few KiB, so a longer line is not one a sweep wrote (and reading it
/// whole could take any amount of memory).
const RESULT_LINE_BYTES_MAX: u64 = 1024 * 1024;

/// Reads `path` line by line, handing each complete result to `visit`. A
/// missing file is an empty one.
pub(crate) fn read_results(
    path: &Path,
    mut visit: impl FnMut(SeedResult),
) -> Result<ResultsFile, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ResultsFile::default());
        }
        Err(error) => return Err(Error::io(path, format!("cannot read: {error}"))),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut found = ResultsFile::default();
    let mut line = Vec::new();
    // Bounded by the file: every round consumes at least one byte or ends.
    for number in 1_u64.. {
        line.clear();
        let read = (&mut reader)
            .take(RESULT_LINE_BYTES_MAX + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, format!("cannot read: {e}")))?;
        if read == 0 {
            break;
        }
        if read as u64 > RESULT_LINE_BYTES_MAX {
            return Err(Error::bad_input(
                path.display().to_string(),
                format!(
                    "line {number} is longer than {RESULT_LINE_BYTES_MAX} bytes: not a results \
                     file a sweep wrote (each line is one seed's result, a few KiB)"
                ),
            ));
        }
        if line.last() != Some(&b'\n') {
            // A sweep killed mid-write: not a result, even if it parses.
            found.torn_bytes = read as u64;
            break;
        }
        found.complete_bytes += read as u64;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<SeedResult>(&line) {
            Ok(result) => visit(result),
            Err(_) => eprintln!("{}:{number}: skipping a corrupt line", path.display()),
        }
    }
    Ok(found)
}

/// Cuts a torn last line off `path`, so that the next append starts a line
/// of its own instead of completing the torn one (and losing both).
fn drop_torn_line(path: &Path, found: ResultsFile) -> Result<(), Error> {
    if found.torn_bytes == 0 {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(found.complete_bytes))
        .map_err(|e| Error::io(path, format!("cannot truncate: {e}")))?;
    eprintln!(
        "{}: dropped {} bytes after the last newline (a line torn by an interrupted sweep; its seed is rerun)",
        path.display(),
        found.torn_bytes
    );
    Ok(())
}

/// The scenarios and seeds a sweep covers: `--seeds` cut to `--shard`.
struct Scope<'a> {
    /// The engine the seeds run on.
    engine: Engine,
    scenarios: &'a [Scenario],
    /// [`Scenario::config_hash`] of each scenario, as hex.
    config_hashes: Vec<String>,
    seeds: Range<u64>,
    /// `(index, count)`: `(0, 1)` without `--shard`.
    shard: (u64, u64),
}

impl<'a> Scope<'a> {
    fn new(options: &'a SweepOptions) -> Scope<'a> {
        let shard = options.shard.unwrap_or((0, 1));
        assert!(shard.1 > 0 && shard.0 < shard.1, "shard K/N needs K < N");
        Scope {
            engine: options.runner.engine,
            scenarios: &options.scenarios,
            config_hashes: options
                .scenarios
                .iter()
                .map(|scenario| hex(scenario.config_hash()))
                .collect(),
            seeds: options.seeds.clone(),
            shard,
        }
    }

    /// The shard's seeds, in order, lazily: a range of a billion seeds
    /// costs no memory.
    fn shard_seeds(&self) -> std::iter::StepBy<Range<u64>> {
        let (index, count) = self.shard;
        let first = self.seeds.start.saturating_add(index).min(self.seeds.end);
        (first..self.seeds.end).step_by(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// How many seeds the shard has, per scenario.
    fn seeds_per_scenario(&self) -> u64 {
        let (index, count) = self.shard;
        let length = self.seeds.end.saturating_sub(self.seeds.start);
        if index < length {
            (length - index - 1) / count + 1
        } else {
            0
        }
    }

    fn has_seed(&self, seed: u64) -> bool {
        let (index, count) = self.shard;
        self.seeds.contains(&seed) && (seed - self.seeds.start) % count == index
    }

    /// Every scenario of the sweep with this name: usually one.
    fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = usize> + 's {
        (0..self.scenarios.len()).filter(move |&index| self.scenarios[index].name == name)
    }
}

/// The results a resumed sweep keeps, by scenario index and seed.
type Done = BTreeMap<(usize, u64), SeedResult>;

/// Reads the results file for `--resume`: the results within the scope and
/// for the same configuration count as done; those for another
/// configuration (another hash, or none recorded) are rerun. A file with
/// results of another engine is refused: its findings are another
/// engine's, and mixing them would make the summary lie about both.
fn resume(path: &Path, scope: &Scope) -> Result<Done, Error> {
    let mut done = Done::new();
    let mut other_configuration = BTreeSet::new();
    let mut other_engine = None;
    let found = read_results(path, |result| {
        if result.engine != scope.engine {
            other_engine.get_or_insert(result.engine);
        }
        if !scope.has_seed(result.seed) {
            return;
        }
        for index in scope.named(&result.scenario) {
            let key = (index, result.seed);
            if result.config_hash.as_ref() == Some(&scope.config_hashes[index]) {
                done.insert(key, result.clone());
            } else {
                other_configuration.insert(key);
            }
        }
    })?;
    if let Some(other) = other_engine {
        return Err(Error::bad_input(
            path.display().to_string(),
            format!(
                "holds results of engine {other}, and this sweep runs on {}: resume it with \
                 --engine {other}, or sweep into another --out",
                scope.engine
            ),
        ));
    }
    drop_torn_line(path, found)?;
    let rerun = other_configuration
        .iter()
        .filter(|key| !done.contains_key(key))
        .count();
    if rerun > 0 {
        eprintln!(
            "{rerun} results in {} were for another configuration and are rerun",
            path.display()
        );
    }
    Ok(done)
}

/// Makes the output directory; a fresh sweep also empties it, since stale
/// results or artifacts would read as this sweep's.
pub(crate) fn prepare(options: &SweepOptions) -> Result<(), Error> {
    let failures = options.out_dir.join("failures");
    if !options.resume && failures.exists() {
        std::fs::remove_dir_all(&failures)
            .map_err(|e| Error::io(&failures, format!("cannot clear: {e}")))?;
    }
    std::fs::create_dir_all(&failures)
        .map_err(|e| Error::io(&options.out_dir, format!("cannot create: {e}")))?;
    let path = results_path(&options.out_dir);
    if !options.resume {
        std::fs::write(&path, "").map_err(|e| Error::io(&path, format!("cannot write: {e}")))?;
        // A manifest left by an earlier sweep would describe results that
        // are gone; this sweep writes its own (a guided one none).
        let manifest = crate::merge::manifest_path(&options.out_dir);
        if manifest.exists() {
            std::fs::remove_file(&manifest)
                .map_err(|e| Error::io(&manifest, format!("cannot remove: {e}")))?;
        }
    }
    Ok(())
}

/// Runs the sweep; returns the results within its scenarios, seeds and
/// shard (resumed ones included), sorted, and their summary. Errors: a
/// scenario that is bad input (before anything is written), or results
/// that could not be written.
pub fn sweep(options: &SweepOptions) -> Result<(Vec<SeedResult>, Summary), Error> {
    capture_panics();
    sweep_with(options)
}

/// Scenarios built or changed in code skip [`Scenario::load`]'s checks: a
/// bad one would otherwise fail every seed as a crash, so it is refused as
/// bad input before anything is written.
fn check_scenarios(options: &SweepOptions) -> Result<(), Error> {
    options.scenarios.iter().try_for_each(Scenario::validate)
}

/// [`sweep`] with the panic hook left as it is (a test harness keeps its
/// own, so its failures still print).
fn sweep_with(options: &SweepOptions) -> Result<(Vec<SeedResult>, Summary), Error> {
    check_scenarios(options)?;
    prepare(options)?;
    // Before any seed runs: a shard killed midway still says what it was
    // meant to cover, so `merge` can name what is missing.
    crate::merge::Manifest::of(options).write(&options.out_dir)?;
    let scope = Scope::new(options);
    let path = results_path(&options.out_dir);
    let done = if options.resume {
        resume(&path, &scope)?
    } else {
        Done::new()
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| Error::io(&path, format!("cannot open: {e}")))?;
    let total = (scope.scenarios.len() as u64)
        .saturating_mul(scope.seeds_per_scenario())
        .saturating_sub(done.len() as u64);
    // Work is handed out lazily, one seed per claim: nothing is
    // materialized up front, whatever the range.
    let todo = Mutex::new(
        (0..scope.scenarios.len())
            .flat_map(|index| scope.shard_seeds().map(move |seed| (index, seed)))
            .filter(|key| !done.contains_key(key)),
    );
    if let Some(sink) = &options.progress {
        (sink.0)(Progress {
            done: 0,
            total,
            failed: 0,
        });
    }
    let started = Stopwatch::start();
    let (sender, receiver) = mpsc::channel::<(SeedResult, Option<Artifact>)>();
    let mut fresh = Vec::new();
    let mut failed_now = 0_u64;
    let mut write_error = None;
    let stop = AtomicBool::new(false);
    std::thread::scope(|threads| {
        // No more threads than runs: a thread with nothing to claim costs
        // a start and a stack for nothing.
        let threads_wanted = u64::try_from(options.jobs.max(1)).unwrap_or(u64::MAX);
        for _ in 0..threads_wanted.min(total.max(1)) {
            let sender = sender.clone();
            let todo = &todo;
            let stop = &stop;
            threads.spawn(move || {
                // Bounded: each round claims a seed or ends.
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let claimed = todo.lock().unwrap_or_else(PoisonError::into_inner).next();
                    let Some((index, seed)) = claimed else {
                        break;
                    };
                    let scenario = &options.scenarios[index];
                    let outcome =
                        run_seed(options.runner, scenario, seed, options.check_determinism);
                    if options.fail_fast && outcome.1.is_some() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if sender.send(outcome).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (result, artifact) in receiver {
            if let Some(artifact) = artifact {
                failed_now += 1;
                let name = artifact_name(&result.scenario, result.seed);
                if let Err(error) = artifact.write(&options.out_dir.join("failures").join(name)) {
                    write_error.get_or_insert(error);
                }
            }
            let line = serde_json::to_string(&result).expect("results serialize");
            if let Err(error) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                write_error.get_or_insert(Error::io(&path, format!("cannot write: {error}")));
            }
            fresh.push(result);
            if let Some(sink) = &options.progress {
                (sink.0)(Progress {
                    done: fresh.len() as u64,
                    total,
                    failed: failed_now,
                });
            }
        }
    });
    if let Some(error) = write_error {
        return Err(error);
    }
    let rates = started.rates(&fresh, options.check_determinism);
    let mut all: Vec<SeedResult> = done.into_values().chain(fresh).collect();
    all.sort_by(|a, b| {
        (&a.scenario, a.seed, &a.config_hash).cmp(&(&b.scenario, b.seed, &b.config_hash))
    });
    let mut summary = summarize(options.runner.engine, &all);
    rates.apply(&mut summary);
    summary.shard = options.shard;
    summary.targets = targets_of(&options.scenarios, &all);
    Ok((all, summary))
}

/// The wall clock of one sweep invocation: what its summary's rates are
/// measured with.
pub(crate) struct Stopwatch(Instant);

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    /// The rates of `fresh`, the results run since the start (twice each
    /// when `check_determinism`).
    pub(crate) fn rates(&self, fresh: &[SeedResult], check_determinism: bool) -> Rates {
        let elapsed_s = self.0.elapsed().as_secs_f64().max(1e-9);
        let runs_per_seed: u64 = if check_determinism { 2 } else { 1 };
        // Summed as integers: an empty float sum is -0.0, printed as "-0".
        let simulated_ns: u128 = fresh.iter().map(|r| u128::from(r.simulated_ns)).sum();
        let seeds = fresh.len() as u64;
        Rates {
            runs: seeds * runs_per_seed,
            seeds_per_second: seeds as f64 / elapsed_s,
            simulated_per_wall: simulated_ns as f64 * runs_per_seed as f64
                / sim::SECOND_NS as f64
                / elapsed_s,
        }
    }
}

/// The work one sweep invocation did, and how fast.
pub(crate) struct Rates {
    runs: u64,
    seeds_per_second: f64,
    simulated_per_wall: f64,
}

impl Rates {
    /// Writes the rates into `summary`.
    pub(crate) fn apply(self, summary: &mut Summary) {
        summary.runs = self.runs;
        summary.seeds_per_second = self.seeds_per_second;
        summary.simulated_per_wall = self.simulated_per_wall;
    }
}

/// Builds the summary of a set of results of `engine`: deterministic in
/// its input.
pub(crate) fn summarize(engine: Engine, results: &[SeedResult]) -> Summary {
    let mut summary = Summary {
        engine,
        seeds: results.len() as u64,
        ..Summary::default()
    };
    // A seed number alone is ambiguous once several scenarios are swept.
    let scenarios: BTreeSet<&str> = results.iter().map(|r| r.scenario.as_str()).collect();
    let with_scenario = scenarios.len() > 1;
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
        let name = SeedName {
            scenario: result.scenario.clone(),
            seed: result.seed,
            with_scenario,
        };
        for property in &result.failed {
            let entry = summary
                .failures
                .entry(property.clone())
                .or_insert((0, name.clone()));
            entry.0 += 1;
            if (name.seed, &name.scenario) < (entry.1.seed, &entry.1.scenario) {
                entry.1 = name.clone();
            }
        }
        for (name, &count) in &result.sometimes {
            let entry = summary.coverage.entry(name.clone()).or_default();
            entry.0 += u64::from(count > 0);
            entry.1 += count;
        }
        for (point, seen) in &result.buggify {
            let entry = summary.buggify.entry(point.clone()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(seen.active);
            entry.2 += seen.fired;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::code_version;
    use crate::scratch::Scratch;
    use crate::world::run_scenario;

    fn scratch(name: &str) -> Scratch {
        Scratch::new("controlplane-sweep", name)
    }

    fn options(scenario: &str, seeds: Range<u64>, out_dir: &Path) -> SweepOptions {
        SweepOptions {
            scenarios: vec![Scenario::load(scenario).expect("loads")],
            seeds,
            jobs: 2,
            shard: None,
            out_dir: out_dir.to_path_buf(),
            resume: false,
            check_determinism: false,
            progress: None,
            fail_fast: false,
            runner: EngineRunner::SIM,
            titles: Vec::new(),
        }
    }

    #[test]
    fn a_crashing_seed_gets_an_artifact_with_the_faults_it_would_have_applied() {
        let dir = scratch("crash");
        // gc-pause schedules a pause, so every seed plans at least one fault.
        let mut options = options("gc-pause", 3..5, &dir);
        options.runner.run = |_, _| panic!("the system under test fell over");
        let (results, summary) = sweep_with(&options).expect("sweeps");
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| r.outcome == Outcome::Crash));
        assert_eq!(summary.failures["crash"].0, 2);
        let scenario = &options.scenarios[0];
        for seed in 3..5 {
            let path = dir
                .join("failures")
                .join(format!("gc-pause-seed-{seed}.json"));
            let artifact = Artifact::read(&path).expect("a crash artifact, readable by replay");
            let planned = planned_faults(scenario, seed).expect("plans");
            assert!(!planned.is_empty());
            assert_eq!(artifact.faults, planned);
            assert_eq!(artifact.seed, seed);
            assert_eq!(&artifact.scenario, scenario);
            assert_eq!(artifact.property, "crash");
            // gc-pause buggifies: the planned list lacks what buggify would
            // have injected, so a replay lets it inject again.
            assert!(artifact.buggify_redraws_faults);
            assert_eq!(artifact.code_version, code_version());
            assert!(!artifact.message.is_empty());
        }
    }

    #[test]
    fn a_sweep_summary_lists_every_buggify_point_seen() {
        let dir = scratch("buggify");
        let (results, summary) = sweep(&options("chaos", 0..6, &dir)).expect("sweeps");
        let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for result in &results {
            for (point, seen) in &result.buggify {
                let entry = expected.entry(point.clone()).or_default();
                entry.0 += 1;
                entry.1 += u64::from(seen.active);
                entry.2 += seen.fired;
            }
        }
        assert_eq!(summary.buggify, expected);
        assert!(summary.buggify.len() >= 8, "{:?}", summary.buggify);
        assert!(summary.buggify.values().any(|&(_, active, _)| active > 0));
        assert!(summary.buggify.values().any(|&(_, _, fired)| fired > 0));
        let text = crate::report::sweep_summary(&summary, &["chaos".into()], &dir);
        assert!(text.contains("| buggify point | seeds reached | seeds active | fired |"));
        for (point, (seen, active, fired)) in &summary.buggify {
            assert!(text.contains(&format!("| {point} | {seen} | {active} | {fired} |")));
        }
        // A scenario without buggify lists none.
        let (_, calm) = sweep(&options("baseline", 0..2, &scratch("calm"))).expect("sweeps");
        assert!(calm.buggify.is_empty());
        assert!(
            !crate::report::sweep_summary(&calm, &["baseline".into()], &dir).contains("buggify")
        );
    }

    #[test]
    fn a_nondeterministic_seed_that_passes_gets_an_artifact_naming_determinism() {
        let scenario = Scenario::load("baseline").expect("loads");
        // Every other run gets another trace hash: nondeterminism on demand.
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let flaky = EngineRunner {
            engine: Engine::Sim,
            run: |scenario, options| {
                let mut result = run_scenario(scenario, options)?;
                result.trace_hash ^= CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(result)
            },
        };
        let (result, artifact) = run_seed(flaky, &scenario, 0, true);
        assert!(
            result.failed.iter().all(|p| p == "determinism"),
            "passes otherwise"
        );
        assert_eq!(result.outcome, Outcome::Nondeterministic);
        let artifact = artifact.expect("a failing seed has an artifact");
        assert_eq!(artifact.property, "determinism");
        assert!(
            artifact.message.contains("trace hash"),
            "{}",
            artifact.message
        );
        assert!(
            artifact.message.contains("broke no property"),
            "{}",
            artifact.message
        );

        let (result, artifact) = run_seed(flaky, &scenario, 0, false);
        assert_eq!(result.outcome, Outcome::Pass);
        assert!(artifact.is_none());
    }

    #[test]
    fn a_scenario_broken_in_code_is_bad_input_before_anything_is_written() {
        let dir = scratch("bad-input");
        let mut options = options("baseline", 0..2, &dir);
        options.scenarios[0].topology.workers = 0;
        let error = sweep_with(&options).unwrap_err();
        assert_eq!(
            error,
            Error::bad_input(
                "scenario \"baseline\"",
                "topology.workers = 0 is out of range: allowed 1..=32"
            )
        );
        assert!(!results_path(&dir).exists(), "no seed ran");
    }

    #[test]
    fn a_results_file_that_cannot_be_written_is_an_io_error_naming_it() {
        let dir = scratch("io");
        std::fs::create_dir_all(&dir).expect("scratch");
        // A file where the output directory should be: nothing can go in it.
        let out = dir.join("not-a-directory");
        std::fs::write(&out, "").expect("writes");
        let error = sweep_with(&options("baseline", 0..1, &out)).unwrap_err();
        let Error::Io { path, .. } = &error else {
            panic!("an I/O error, not {error:?}");
        };
        assert!(path.starts_with(&out), "{error}");
    }

    #[test]
    fn fail_fast_starts_no_seed_after_the_first_failure() {
        let out = scratch("fail-fast");
        let mut options = options("baseline", 0..40, &out);
        options.jobs = 1;
        options.runner.run = |scenario, run| {
            assert_ne!(run.seed, 3, "seed 3 falls over");
            run_scenario(scenario, run)
        };
        let (all, _) = sweep_with(&options).expect("sweeps");
        assert_eq!(all.len(), 40, "without fail_fast every seed runs");
        let on = scratch("fail-fast-on");
        options.out_dir = on.to_path_buf();
        options.fail_fast = true;
        let (ran, _) = sweep_with(&options).expect("sweeps");
        let seeds: Vec<u64> = ran.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, vec![0, 1, 2, 3], "one job stops right after seed 3");
        assert_eq!(ran.last().map(|r| r.outcome), Some(Outcome::Crash));
    }

    /// A stand-in for another engine: our runs, named turmoil's.
    const TURMOIL: EngineRunner = EngineRunner {
        engine: Engine::Turmoil,
        run: |scenario, options| {
            let mut result = run_scenario(scenario, options)?;
            result.engine = Engine::Turmoil;
            Ok(result)
        },
    };

    #[test]
    fn results_name_an_engine_other_than_sim_and_resume_refuses_another_engine_s() {
        let out = scratch("engines");
        let mut options = options("baseline", 0..2, &out);
        options.runner = TURMOIL;
        let (results, summary) = sweep_with(&options).expect("sweeps");
        assert!(results.iter().all(|r| r.engine == Engine::Turmoil));
        assert_eq!(summary.engine, Engine::Turmoil);
        let path = results_path(&out);
        let written = std::fs::read_to_string(&path).expect("reads");
        assert_eq!(
            written.matches("\"engine\":\"turmoil\"").count(),
            2,
            "{written}"
        );
        // On sim, the results keep their format from before engines.
        let sim_out = scratch("engines-sim");
        let (_, summary) = sweep_with(&self::options("baseline", 0..1, &sim_out)).expect("sweeps");
        assert_eq!(summary.engine, Engine::Sim);
        let sim_written = std::fs::read_to_string(results_path(&sim_out)).expect("reads");
        assert!(!sim_written.contains("engine"), "{sim_written}");
        // Resuming turmoil's results on sim would mix two engines' findings.
        options.runner = EngineRunner::SIM;
        options.resume = true;
        options.seeds = 0..4;
        let error = sweep_with(&options).unwrap_err();
        assert_eq!(
            error,
            Error::bad_input(
                path.display().to_string(),
                "holds results of engine turmoil, and this sweep runs on sim: resume it with \
                 --engine turmoil, or sweep into another --out"
            )
        );
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), written);
        // On its own engine it resumes.
        options.runner = TURMOIL;
        let (results, summary) = sweep_with(&options).expect("resumes");
        assert_eq!(results.len(), 4);
        assert_eq!(summary.runs, 2, "the first two seeds were done");
    }

    #[test]
    fn a_target_counts_only_its_own_scenario_s_seeds_and_a_shard_misses_none() {
        let result = |scenario: &str, seed: u64, failovers: u64| SeedResult {
            scenario: scenario.to_string(),
            engine: Engine::Sim,
            config_hash: None,
            seed,
            outcome: Outcome::Pass,
            failed: Vec::new(),
            message: None,
            trace_hash: String::new(),
            events: 0,
            simulated_ns: 0,
            faults: 0,
            sometimes: [("failover".to_string(), failovers)].into_iter().collect(),
            convergence_ns: None,
            buggify: BTreeMap::new(),
        };
        // `b` reaches failover in two seeds; `a`, whose target it is, never.
        let results = [result("a", 0, 0), result("b", 0, 3), result("b", 1, 1)];
        let targets = vec!["failover".to_string()];
        let judged = judge_targets(
            [("a", targets.as_slice()), ("b", targets.as_slice())],
            &results,
        );
        let seeds: Vec<(&str, u64, u64)> = judged
            .iter()
            .map(|t| (t.scenario.as_str(), t.seeds, t.swept))
            .collect();
        assert_eq!(seeds, [("a", 0, 1), ("b", 2, 2)]);
        let mut summary = Summary {
            targets: judged,
            ..Summary::default()
        };
        let missed: Vec<&str> = summary
            .missed_targets()
            .iter()
            .map(|t| t.scenario.as_str())
            .collect();
        assert_eq!(missed, ["a"]);
        summary.shard = Some((0, 2));
        assert!(
            summary.missed_targets().is_empty(),
            "another shard may reach it"
        );
    }

    #[test]
    fn a_shard_hands_out_exactly_the_seeds_it_counts() {
        for (seeds, shard) in [
            (0..10, (0, 3)),
            (0..10, (2, 3)),
            (5..6, (1, 2)),
            (7..20, (0, 1)),
        ] {
            let mut options = options("baseline", seeds.clone(), Path::new(""));
            options.shard = Some(shard);
            let scope = Scope::new(&options);
            let handed: Vec<u64> = scope.shard_seeds().collect();
            let expected: Vec<u64> = seeds.filter(|&seed| scope.has_seed(seed)).collect();
            assert_eq!(handed, expected, "{shard:?}");
            assert_eq!(scope.seeds_per_scenario(), expected.len() as u64);
        }
    }
}
