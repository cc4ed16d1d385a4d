//! The simulation commands (`simulate`, `sweep`, `replay`, `shrink`,
//! `scenarios`) over the [`dst`] framework, for every binary that runs
//! seeds: `controlplane` (our simulator and turmoil) and the madsim build's
//! `controlplane-madsim`. It parses, prints and picks the exit code;
//! nothing else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{Args, Subcommand};

use dst::artifact::{Artifact, code_version};
use dst::engine::{Engine, EngineRunner, Runner};
use dst::error::Error;
use dst::guided::{self, GuidedOptions, guided_sweep};
use dst::merge::merge;
use dst::report;
use dst::scenario::Scenario;
use dst::sweep::{Outcome, Progress, ProgressSink, Summary, SweepOptions, run_guarded, sweep};
use dst::world::{RunOptions, RunResult, run_scenario};
use dst::zoo;
use plane::config::Bug;

mod screenshot;

/// Exit code for bad input (an unreadable scenario, a bad flag).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when writing results failed.
pub const EXIT_IO: u8 = 1;
/// Exit code of the bug zoo when a planted bug went uncaught.
pub const EXIT_ZOO_MISSED: u8 = 8;
/// Exit code of a sweep in which a scenario's target (`[expect] reaches`)
/// was reached by no seed, and nothing worse happened.
pub const EXIT_TARGET_MISSED: u8 = 9;

/// The exit codes of the simulation commands, for help texts.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  every property held
  1  results could not be written
  2  bad input: a scenario, artifact or flag was invalid (the message names the file, the key and what is allowed)
  3  safety violation: an `always` property failed
  4  liveness failure: an `eventually` property failed, or could not be judged because a fault never healed, or the run hit a limit
  5  crash: the system under test panicked
  6  nondeterminism: the same seed gave two different traces
  7  cost over budget: a `cost.*` measurement exceeded its budget (nothing unsafe happened)
  8  the bug zoo (`sweep --bug all`): a planted bug was not caught by its expected property
  9  target missed: a scenario names in `[expect] reaches` a sometimes-path that no seed of the sweep reached, so it no longer tests what it was written for (judged by `sweep` and `merge`; not by a `--shard` sweep, since another shard may reach it, nor by `simulate`, which only reports it)
A sweep exits with its most severe outcome: 6, then 5, 3, 4, 7, 9 (safety before liveness; a finding about the system before a missed target, which has no failing seed to replay).";

/// The commands that run seeds.
#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Run one seed of a scenario, check it, and print its report.
    ///
    /// If the scenario names targets (`[expect] reaches`), stderr says
    /// which this seed reached; one seed never fails on a target (exit 9
    /// is a sweep's).
    #[command(after_help = EXIT_CODES)]
    Simulate(SimulateArgs),
    /// Run many seeds in parallel and summarize; writes results.jsonl and
    /// a failure artifact per failing seed.
    #[command(after_help = EXIT_CODES)]
    Sweep(SweepArgs),
    /// Rerun a failure artifact exactly, confirm its trace hash, and show
    /// the trace around the violation.
    #[command(after_help = EXIT_CODES)]
    Replay(ReplayArgs),
    /// Reduce a failure artifact's faults to a 1-minimal list that still
    /// breaks the same property.
    #[command(after_help = EXIT_CODES)]
    Shrink(ShrinkArgs),
    /// Merge the --out directories of `sweep --shard K/N` (all N shards of
    /// one sweep) into one results.jsonl, failures/ and summary: the same
    /// as the sweep run whole would have written, and the same exit code.
    ///
    /// Refused (exit 2, naming the directory and what differs) when the
    /// shards ran different code or configuration (code version, engine,
    /// seeds, N, scenarios, config hashes, bugs, targets,
    /// --check-determinism), when a shard is given twice, or when a shard
    /// or some of a shard's seeds are missing (finish a killed shard with
    /// `sweep ... --resume`). Results lines are written sorted by scenario
    /// and seed (a sweep writes them as seeds finish). The summary's
    /// `runs`, `seeds_per_second` and `simulated_per_wall` are 0: a merge
    /// runs no seed.
    #[command(after_help = EXIT_CODES)]
    Merge(MergeArgs),
    /// List the scenarios in scenarios/ with their descriptions.
    Scenarios,
    /// Write docs/lessons/: a page per pattern (idempotency, reconciliation,
    /// leader election and fencing, sharding) generated from the bug zoo:
    /// each bug's first failing seed, the command that shows the checker
    /// catching it, and the story of its shrunk reproducer. Exits 8 if a
    /// planted bug was not caught.
    #[command(after_help = EXIT_CODES)]
    Lessons(LessonsArgs),
}

#[derive(Args, Debug)]
pub struct LessonsArgs {
    /// The directory to write the pages to (created if missing); the
    /// committed ones live in docs/lessons.
    #[arg(long, default_value = "docs/lessons")]
    out: PathBuf,
    /// Runs in parallel while hunting (default: the number of cores); the
    /// pages are the same for any number.
    #[arg(long, value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// Do not screenshot each pattern's timeline to PATTERN.png. By
    /// default they are taken with headless Chromium (`chromium` or
    /// `chromium-browser` on the PATH; without it `lessons` says so and
    /// exits 2 after writing the pages).
    #[arg(long)]
    no_screenshots: bool,
}

/// The engines this binary was built with (set once by [`run`]).
static ENGINES: OnceLock<Vec<(Engine, Runner)>> = OnceLock::new();

/// Runs `command` with the engines this binary was built with (`sim` is
/// always one, whether listed or not); returns the process exit code.
pub fn run(command: SimCommand, engines: Vec<(Engine, Runner)>) -> ExitCode {
    let _ = ENGINES.set(engines);
    match command {
        SimCommand::Simulate(args) => simulate(args),
        SimCommand::Sweep(args) => run_sweep(args),
        SimCommand::Replay(args) => replay(args),
        SimCommand::Shrink(args) => shrink(args),
        SimCommand::Merge(args) => run_merge(args),
        SimCommand::Lessons(args) => lessons(args),
        SimCommand::Scenarios => {
            let names = match dst::scenario::all_scenarios() {
                Ok(names) => names,
                Err(error) => return fail(&error, None),
            };
            for name in names {
                match Scenario::load(&name) {
                    Ok(scenario) => {
                        let first = scenario
                            .description
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        println!("{name:<20} {first}");
                    }
                    Err(error) => println!("{name:<20} (invalid: {error})"),
                }
            }
            ExitCode::SUCCESS
        }
    }
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// A scenario name from scenarios/ (see `scenarios`) or a path to a TOML file.
    #[arg(long, default_value = "baseline")]
    scenario: String,
    /// The root seed: same seed, same code, same run.
    #[arg(long, default_value_t = 42, value_parser = parse_seed)]
    seed: u64,
    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Print the event log (simulated time and node on each line) through
    /// tracing; filter with RUST_LOG (default `sim=debug`).
    #[arg(long)]
    trace: bool,
    /// Run twice and compare trace hashes; name the first event where the
    /// runs part, if they do.
    #[arg(long)]
    check_determinism: bool,
    /// Print the story of the run's first violation instead of the report:
    /// in at most 40 lines, the faults, lease changes, messages (with their
    /// content) and records about what the violation names, the violating
    /// effect last. Give a property (e.g. `--story eventually.converged`)
    /// to tell that one's story.
    #[arg(long, value_name = "PROPERTY", num_args = 0..=1, default_missing_value = "", conflicts_with = "json")]
    story: Option<String>,
    /// Plant a bug (repeat the flag for several), added to the scenario's
    /// own `bugs`: ledger-check-then-act, side-effect-before-ledger,
    /// no-fencing, lease-no-drift-margin, lease-on-wall-clock,
    /// act-after-renew-failure, edge-triggered, no-workqueue-dedup,
    /// stale-replay-body, modulo-sharding.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Also write the run as one self-contained HTML page: a lane per
    /// node, lease terms per shard, faults, requests, side effects, the
    /// desired-against-running curve and every violation; zoom, pan,
    /// hover and a filter, no network needed. Keeps the history.
    #[arg(long, value_name = "FILE.html")]
    timeline: Option<PathBuf>,
    /// Also write the run in the Chrome trace event format (JSON), which
    /// ui.perfetto.dev and chrome://tracing open. Keeps the history.
    #[arg(long, value_name = "FILE.json")]
    perfetto: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArg,
}

/// `--engine`, on every command that runs seeds.
#[derive(Args, Debug)]
struct EngineArg {
    /// The simulation engine the seeds run on: `sim`, our own discrete-event
    /// simulator; `turmoil`, the real host's nodes on turmoil's simulated
    /// network and time; `madsim`, the real host's nodes on madsim's
    /// simulated tokio (a separate build: `./madsim/run`). The same
    /// scenarios and checkers on each. [default: sim; replay and shrink:
    /// the artifact's engine]
    #[arg(long, value_name = "ENGINE")]
    engine: Option<Engine>,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Scenario names or paths; repeat the flag, or `all` for every
    /// scenario [default: baseline]. A scenario given more than once (by
    /// name or by path) is swept once, where it was first given; two
    /// different scenarios with one name are refused, since results and
    /// artifacts are filed by name.
    #[arg(long)]
    scenario: Vec<String>,
    /// Seeds as START..END (END exclusive), e.g. 0..1000.
    #[arg(long, value_parser = parse_seed_range)]
    seeds: std::ops::Range<u64>,
    /// Runs in parallel (default: the number of cores).
    #[arg(long, value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// Run only part K of N (K from 0), to split a sweep across CI jobs or
    /// a Kubernetes Indexed Job (K = $JOB_COMPLETION_INDEX); `merge` puts
    /// the N outputs back together. A shard shows scenario targets but does
    /// not fail on them (another shard may reach them): `merge` judges them.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Where results.jsonl and failures/ go.
    #[arg(long, default_value = "sweep-out")]
    out: PathBuf,
    /// Skip seeds already in OUT/results.jsonl.
    #[arg(long)]
    resume: bool,
    /// Run each seed twice and fail on differing trace hashes.
    #[arg(long)]
    check_determinism: bool,
    /// Start no new seed after the first failure (seeds already running
    /// finish and are recorded); the summary counts only the seeds run.
    /// For a quick yes or no, as in the mutation campaign.
    #[arg(long, conflicts_with = "guided")]
    fail_fast: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Plant a bug in every scenario swept (repeat for several; see
    /// `simulate --help` for the names). `--bug all` runs the bug zoo
    /// instead: each bug alone in the scenario written to expose it, seeds
    /// in order until its expected property fails, shrunk for that
    /// property; prints a table and writes
    /// the reproducers to OUT/zoo/.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<String>,
    /// Coverage-guided: run i still uses seed i, but after a warm-up (a
    /// quarter of the seeds, at least 8) three runs in four take the fault
    /// list of a corpus entry (runs that reached new sometimes-path or
    /// BUGGIFY coverage, rare coverage favoured) and mutate it: shift a
    /// fault, scale its duration, drop one, duplicate one onto another
    /// node of the same kind, or splice two lists. Deterministic for the
    /// same arguments, whatever --jobs. Results lines name the corpus entry
    /// and mutation; failures get artifacts that `replay` reproduces.
    #[arg(long, conflicts_with_all = ["resume", "shard"])]
    guided: bool,
    /// With --guided: sweep the same seeds plain (OUT/plain) and guided
    /// (OUT/guided) and print the coverage each reached.
    #[arg(long, requires = "guided")]
    compare: bool,
    #[command(flatten)]
    engine: EngineArg,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The --out directory of each shard, in any order.
    #[arg(required = true, value_name = "SHARD_OUT")]
    inputs: Vec<PathBuf>,
    /// Where the merged results.jsonl, failures/ and sweep.json go (not one
    /// of the shards).
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A failure artifact written by `sweep` or `shrink`.
    artifact: PathBuf,
    /// Trace entries to show on each side of the violation.
    #[arg(long, default_value_t = 12)]
    context: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the run as one self-contained HTML page: a lane per
    /// node, lease terms per shard, faults, requests, side effects, the
    /// desired-against-running curve and every violation; zoom, pan,
    /// hover and a filter, no network needed. Keeps the history.
    #[arg(long, value_name = "FILE.html")]
    timeline: Option<PathBuf>,
    /// Also write the run in the Chrome trace event format (JSON), which
    /// ui.perfetto.dev and chrome://tracing open. Keeps the history.
    #[arg(long, value_name = "FILE.json")]
    perfetto: Option<PathBuf>,
    /// Print the story of the artifact's violation instead of the report
    /// and trace: in at most 40 lines, the faults, lease changes, messages
    /// (with their content) and records about what the violation names,
    /// the violating effect last.
    #[arg(long, conflicts_with = "json")]
    story: bool,
    #[command(flatten)]
    engine: EngineArg,
}

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// A failure artifact written by `sweep`.
    artifact: PathBuf,
    /// Where to write the minimal artifact (default: next to the input,
    /// with `.min.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArg,
}

/// The engines built into this binary, with their run functions: `sim`
/// always, and what the binary gave [`run`].
pub fn available_engines() -> Vec<(Engine, Runner)> {
    let mut engines = vec![(Engine::Sim, run_scenario as Runner)];
    for &(engine, run) in ENGINES.get().map_or(&[][..], Vec::as_slice) {
        if engine != Engine::Sim {
            engines.push((engine, run));
        }
    }
    engines
}

/// The runner of `engine` for `command`; bad input, saying how to run it,
/// if this binary was built without it.
fn engine_runner(engine: Engine, command: &str) -> Result<EngineRunner, Error> {
    dst::engine::runner(engine, &available_engines(), command)
}

/// A seed: any integer 0..=u64::MAX.
fn parse_seed(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("`{text}`: not a seed: allowed an integer 0..={}", u64::MAX))
}

fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}`: expected START..END, e.g. 0..1000"))?;
    let (start, end) = (parse_seed(start)?, parse_seed(end)?);
    if start >= end {
        return Err(format!("`{text}`: START must be below END"));
    }
    Ok(start..end)
}

/// The most runs in parallel: far more than any machine has cores, and
/// few enough threads to start.
const MAX_JOBS: usize = 1024;

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(jobs) if (1..=MAX_JOBS).contains(&jobs) => Ok(jobs),
        _ => Err(format!(
            "`{text}`: allowed an integer 1..={MAX_JOBS} (runs in parallel)"
        )),
    }
}

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}`: expected K/N, e.g. 0/4"))?;
    let index: u64 = index
        .parse()
        .map_err(|_| format!("`{index}`: not a number"))?;
    let count: u64 = count
        .parse()
        .map_err(|_| format!("`{count}`: not a number"))?;
    if count == 0 || index >= count {
        return Err(format!("`{text}`: need 0 <= K < N"));
    }
    Ok((index, count))
}

/// The bugs named on the command line; `Ok(None)` for `all` (the zoo).
fn parse_bugs(names: &[String]) -> Result<Option<Vec<Bug>>, String> {
    if names.iter().any(|name| name == "all") {
        if names.len() > 1 {
            return Err("--bug all runs the whole zoo: give it alone".to_string());
        }
        return Ok(None);
    }
    names
        .iter()
        .map(|name| Bug::from_name(name))
        .collect::<Result<Vec<Bug>, String>>()
        .map(Some)
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// The exit code of an error, by its variant.
fn exit_code(error: &Error) -> u8 {
    match error {
        Error::BadInput { .. } => EXIT_BAD_INPUT,
        Error::Io { .. } => EXIT_IO,
        Error::Crash { .. } => Outcome::Crash.exit_code() as u8,
    }
}

/// Prints `error` and returns its exit code; a crash prints how to rerun
/// it when `rerun` is given.
pub fn fail(error: &Error, rerun: Option<&str>) -> ExitCode {
    match error {
        Error::Crash { .. } => {
            eprintln!("crash: {error}");
            if let Some(rerun) = rerun {
                eprintln!("rerun: {rerun}");
            }
        }
        Error::BadInput { .. } | Error::Io { .. } => eprintln!("error: {error}"),
    }
    ExitCode::from(exit_code(error))
}

/// Names `file` in a bad-input error that names none (shrinking does not
/// know which file its artifact came from).
fn in_file(error: Error, file: &std::path::Path) -> Error {
    match error {
        Error::BadInput {
            file: named,
            message,
        } if named.is_empty() => Error::bad_input(file.display().to_string(), message),
        other => other,
    }
}

fn exit_for(result: &RunResult) -> ExitCode {
    ExitCode::from(Outcome::of(result).exit_code() as u8)
}

fn simulate(args: SimulateArgs) -> ExitCode {
    let runner = match engine_runner(args.engine.engine.unwrap_or_default(), "simulate") {
        Ok(runner) => runner,
        Err(error) => return fail(&error, None),
    };
    let mut scenario = match Scenario::load(&args.scenario) {
        Ok(scenario) => scenario,
        Err(error) => return fail(&error, None),
    };
    match parse_bugs(&args.bugs) {
        Ok(Some(bugs)) => bugs.into_iter().for_each(|bug| scenario.plant(bug)),
        Ok(None) => {
            return bad_input("--bug all is the zoo, a sweep: `sweep --bug all --seeds 0..1000`");
        }
        Err(error) => return bad_input(error),
    }
    if let Some(property) = args.story.as_deref().filter(|p| !p.is_empty()) {
        let known = dst::check::property_names();
        if !known.contains(&property) {
            return bad_input(format!(
                "--story {property}: no such property; allowed: {}",
                known.join(", ")
            ));
        }
    }
    let pictures = Pictures {
        timeline: args.timeline.as_deref(),
        perfetto: args.perfetto.as_deref(),
    };
    if let Err(error) = pictures.preflight() {
        return fail(&error, None);
    }
    let command =
        report::simulate_command(&args.scenario, args.seed, &scenario.bugs, runner.engine);
    if args.trace {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sim=debug"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .without_time()
            .with_target(false)
            .with_level(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .init();
    }
    let options = RunOptions {
        seed: args.seed,
        faults: None,
        keep_trace: args.check_determinism
            || args.story.is_some()
            || args.timeline.is_some()
            || args.perfetto.is_some(),
        buggify_redraws_faults: false,
    };
    dst::sweep::capture_panics();
    let result = match run_guarded(runner.run, &scenario, &options) {
        Ok(result) => result,
        Err(error) => return fail(&error, Some(&command)),
    };
    if args.check_determinism
        && let Some(code) = run_again_and_compare(runner.run, &scenario, &options, &result)
    {
        return code;
    }
    if let Some(property) = &args.story {
        print!("{}", dst::story::story(&result, property));
    } else if args.json {
        println!("{}", report::json_with_rerun(&result, &command));
    } else {
        print!("{}", report::markdown(&result, &command));
    }
    report_targets(&scenario, &result);
    // After the report, so a file that could not be written loses nothing.
    if let Err(error) = pictures.write(&result, &scenario) {
        return fail(&error, None);
    }
    exit_for(&result)
}

/// Says on stderr which of the scenario's targets this one seed reached:
/// one seed is not expected to reach them all, so it never fails on them.
fn report_targets(scenario: &Scenario, result: &RunResult) {
    if scenario.expect.reaches.is_empty() {
        return;
    }
    let verdicts: Vec<String> = scenario
        .expect
        .reaches
        .iter()
        .map(|path| match result.check.sometimes.get(path) {
            Some(&count) if count > 0 => format!("`{path}` reached ({count})"),
            _ => format!("`{path}` not reached"),
        })
        .collect();
    eprintln!(
        "targets: {} (one seed does not fail on a target; a sweep in which no seed reaches one does, exit 9)",
        verdicts.join(", ")
    );
}

fn run_sweep(args: SweepArgs) -> ExitCode {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let runner = match engine_runner(args.engine.engine.unwrap_or_default(), "sweep") {
        Ok(runner) => runner,
        Err(error) => return fail(&error, None),
    };
    let planted = match parse_bugs(&args.bugs) {
        Ok(Some(bugs)) => bugs,
        Ok(None) if args.guided => {
            return bad_input("--bug all is the zoo, which is not guided: drop --guided");
        }
        Ok(None) => return run_zoo(&args, jobs, runner),
        Err(error) => return bad_input(error),
    };
    let names: Vec<String> = if args.scenario.is_empty() {
        vec!["baseline".to_string()]
    } else if args.scenario.iter().any(|name| name == "all") {
        if args.scenario.len() > 1 {
            return bad_input(
                "--scenario all sweeps every scenario in scenarios/: give it alone, or name each scenario",
            );
        }
        match dst::scenario::all_scenarios() {
            Ok(names) => names,
            Err(error) => return fail(&error, None),
        }
    } else {
        args.scenario.clone()
    };
    let (names, scenarios) = match load_once(&names, &planted) {
        Ok(loaded) => loaded,
        Err(error) => return fail(&error, None),
    };
    if args.guided {
        return run_guided(&args, &names, scenarios, jobs, &planted, runner);
    }
    let options = SweepOptions {
        scenarios,
        seeds: args.seeds.clone(),
        jobs,
        shard: args.shard,
        out_dir: args.out.clone(),
        resume: args.resume,
        check_determinism: args.check_determinism,
        progress: None,
        fail_fast: args.fail_fast,
        runner,
        titles: sweep_titles(&names, &planted),
    };
    let bar = progress_bar();
    let options = SweepOptions {
        progress: bar.as_ref().map(|(_, sink)| sink.clone()),
        ..options
    };
    let swept = sweep(&options);
    if let Some((bar, _)) = bar {
        bar.finish();
    }
    let (results, summary) = match swept {
        Ok(done) => done,
        Err(error) => return fail(&error, None),
    };
    if args.json {
        print_json(&summary);
    } else {
        print!(
            "{}",
            report::sweep_summary(&summary, &options.titles, &args.out)
        );
    }
    let worst = Outcome::worst(results.iter().map(|r| r.outcome));
    sweep_exit(worst, &summary)
}

/// A sweep's exit code: its worst seed's, or [`EXIT_TARGET_MISSED`] if
/// every seed passed but a target was missed (each missed one is named on
/// stderr whatever the seeds did).
fn sweep_exit(worst: Outcome, summary: &Summary) -> ExitCode {
    let missed = summary.missed_targets();
    for target in &missed {
        eprintln!(
            "target missed: scenario `{}` is written to reach `{}` (its [expect] reaches), and \
             none of the {} seeds did: the scenario no longer tests what it was written for",
            target.scenario, target.path, target.swept
        );
    }
    if worst != Outcome::Pass || missed.is_empty() {
        ExitCode::from(worst.exit_code() as u8)
    } else {
        ExitCode::from(EXIT_TARGET_MISSED)
    }
}

/// A guided sweep with the progress bar of [`progress_bar`].
fn guided_with_bar(
    options: &GuidedOptions,
) -> Result<(Vec<guided::GuidedLine>, guided::GuidedSummary), Error> {
    let bar = progress_bar();
    let options = GuidedOptions {
        progress: bar.as_ref().map(|(_, sink)| sink.clone()),
        ..options.clone()
    };
    let swept = guided_sweep(&options);
    if let Some((bar, _)) = bar {
        bar.finish();
    }
    swept
}

/// A progress bar on stderr when it is a terminal (never in a pipe or a
/// file, so logs and JSON stay clean): seeds done of the total, failures so
/// far, seeds per second and the time left. It only counts what the sweep
/// tells it.
fn progress_bar() -> Option<(indicatif::ProgressBar, ProgressSink)> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "[{bar:30}] {pos}/{len} seeds, {msg}, {rate}, {eta} left",
    )
    .expect("a valid template")
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
            let _ = write!(out, "{:.1} seeds/s", state.per_sec());
        },
    )
    .progress_chars("#>.");
    bar.set_style(style);
    bar.set_message("0 failed");
    let drawn = bar.clone();
    let sink = ProgressSink(std::sync::Arc::new(move |progress: Progress| {
        drawn.set_length(progress.total);
        drawn.set_message(format!("{} failed", progress.failed));
        drawn.set_position(progress.done);
    }));
    Some((bar, sink))
}

/// `merge`: see [`dst::merge`].
fn run_merge(args: MergeArgs) -> ExitCode {
    let merged = match merge(&args.inputs, &args.out) {
        Ok(merged) => merged,
        Err(error) => return fail(&error, None),
    };
    if args.json {
        print_json(&merged.summary);
    } else {
        print!(
            "{}",
            report::sweep_summary(&merged.summary, &merged.manifest.titles, &args.out)
        );
    }
    sweep_exit(merged.worst(), &merged.summary)
}

/// The scenarios' titles in a sweep summary: with the bugs planted in
/// them, so a planted bug's failures do not read as the scenario's own.
fn sweep_titles(names: &[String], planted: &[Bug]) -> Vec<String> {
    let planted: String = planted.iter().map(|bug| format!(" --bug {bug}")).collect();
    names
        .iter()
        .map(|name| format!("{name}{planted}"))
        .collect()
}

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("a summary serializes")
    );
}

/// `sweep --guided` (and `--compare`): see [`dst::guided`].
fn run_guided(
    args: &SweepArgs,
    names: &[String],
    scenarios: Vec<Scenario>,
    jobs: usize,
    planted: &[Bug],
    runner: EngineRunner,
) -> ExitCode {
    let options = GuidedOptions {
        scenarios,
        seeds: args.seeds.clone(),
        jobs,
        out_dir: args.out.clone(),
        check_determinism: args.check_determinism,
        mutate: true,
        runner,
        progress: None,
    };
    let titles = sweep_titles(names, planted);
    if args.compare {
        let arm = |mutate: bool, dir: &str| GuidedOptions {
            mutate,
            out_dir: args.out.join(dir),
            ..options.clone()
        };
        let plain = match guided_with_bar(&arm(false, "plain")) {
            Ok((_, summary)) => summary,
            Err(error) => return fail(&error, None),
        };
        let guided = match guided_with_bar(&arm(true, "guided")) {
            Ok((_, summary)) => summary,
            Err(error) => return fail(&error, None),
        };
        if args.json {
            let both = serde_json::json!({ "plain": plain.guided, "guided": guided.guided });
            println!(
                "{}",
                serde_json::to_string_pretty(&both).expect("serializes")
            );
        } else {
            println!(
                "# Coverage, plain against guided: {}, seeds {}..{} on {}\n",
                titles.join(", "),
                args.seeds.start,
                args.seeds.end,
                runner.engine
            );
            print!("{}", guided::comparison(&plain.guided, &guided.guided));
            println!("\nResults in {0}/plain and {0}/guided.", args.out.display());
        }
        return ExitCode::SUCCESS;
    }
    let (lines, summary) = match guided_with_bar(&options) {
        Ok(done) => done,
        Err(error) => return fail(&error, None),
    };
    if args.json {
        print_json(&summary);
    } else {
        print!(
            "{}",
            report::sweep_summary(&summary.sweep, &titles, &args.out)
        );
        print!("\n{}", guided::markdown(&summary));
    }
    sweep_exit(guided::worst(&lines), &summary.sweep)
}

/// Loads each scenario named, with `planted` bugs, keeping the first of
/// any given twice (`chaos` and `scenarios/chaos.toml` are one), so no
/// seed runs twice and no result line is written twice. Two different
/// scenarios with one name are bad input: their results and artifacts
/// would be filed under one name.
fn load_once(names: &[String], planted: &[Bug]) -> Result<(Vec<String>, Vec<Scenario>), Error> {
    let mut kept_names: Vec<String> = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for name in names {
        let mut scenario = Scenario::load(name)?;
        planted.iter().for_each(|&bug| scenario.plant(bug));
        match scenarios.iter().position(|s| s.name == scenario.name) {
            Some(index) if scenarios[index] == scenario => continue,
            Some(index) => {
                return Err(Error::bad_input(
                    name.clone(),
                    format!(
                        "name = {:?} is also the name of {}, a different scenario: results \
                         and artifacts are filed by scenario name, so allowed is one scenario \
                         per name (rename one)",
                        scenario.name, kept_names[index]
                    ),
                ));
            }
            None => {
                kept_names.push(name.clone());
                scenarios.push(scenario);
            }
        }
    }
    Ok((kept_names, scenarios))
}

/// `sweep --bug all`: the bug zoo. Exits 0 when every bug was caught by
/// its expected property with a 1-minimal reproducer.
fn lessons(args: LessonsArgs) -> ExitCode {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    if args.out.exists() && !args.out.is_dir() {
        let error = Error::io(
            &args.out,
            "is not a directory: give the directory to write the pages to (created if missing)",
        );
        return fail(&error, None);
    }
    dst::sweep::capture_panics();
    let lessons = match dst::lessons::generate(EngineRunner::SIM, jobs) {
        Ok(lessons) => lessons,
        Err(error) => return fail(&error, None),
    };
    if let Err(error) = std::fs::create_dir_all(&args.out) {
        return fail(
            &Error::io(&args.out, format!("cannot create: {error}")),
            None,
        );
    }
    for page in &lessons.pages {
        let path = args.out.join(&page.file);
        if let Err(error) = std::fs::write(&path, &page.text) {
            return fail(&Error::io(&path, format!("cannot write: {error}")), None);
        }
        eprintln!("lessons: wrote {}", path.display());
    }
    if !args.no_screenshots {
        for page in lessons.pages.iter().filter(|p| p.file.ends_with(".html")) {
            let html = args.out.join(&page.file);
            let png = html.with_extension("png");
            if let Err(error) = screenshot::take(&html, &png) {
                return fail(&error, None);
            }
            eprintln!("lessons: wrote {}", png.display());
        }
    }
    if lessons.missed.is_empty() {
        ExitCode::SUCCESS
    } else {
        let missed: Vec<String> = lessons.missed.iter().map(ToString::to_string).collect();
        eprintln!(
            "lessons: not caught as expected: {} (their pages say so)",
            missed.join(", ")
        );
        ExitCode::from(EXIT_ZOO_MISSED)
    }
}

fn run_zoo(args: &SweepArgs, jobs: usize, runner: EngineRunner) -> ExitCode {
    if !args.scenario.is_empty()
        || args.shard.is_some()
        || args.resume
        || args.check_determinism
        || args.fail_fast
    {
        return bad_input(
            "--bug all sweeps each bug in its own scenario, from the first seed: \
             it takes --seeds, --jobs, --out, --engine and --json only",
        );
    }
    let dir = args.out.join("zoo");
    if let Err(error) = std::fs::create_dir_all(&dir) {
        return fail(&Error::io(&dir, format!("cannot create: {error}")), None);
    }
    let bugs = Bug::all();
    let mut write_error = None;
    dst::sweep::capture_panics();
    let rows = zoo::run(runner, &bugs, args.seeds.clone(), jobs, |row| {
        let line = zoo::ZooLine::from(row);
        match (&line.fired, line.seeds_to_failure) {
            (Some(fired), Some(seeds)) => {
                eprintln!("zoo: {}: `{fired}` after {seeds} seeds", line.bug)
            }
            _ => eprintln!("zoo: {}: not caught", line.bug),
        }
        if let Some(catch) = &row.caught {
            let found = dir.join(format!("{}.json", line.bug));
            let mut written = catch.artifact.write(&found);
            if let (Ok(()), Some(shrunk)) = (&written, &catch.shrunk) {
                written = shrunk
                    .artifact
                    .write(&dir.join(format!("{}.min.json", line.bug)));
            }
            if let Err(error) = written {
                write_error.get_or_insert(error);
            }
        }
    });
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => return fail(&error, None),
    };
    if let Some(error) = write_error {
        return fail(&error, None);
    }
    if args.json {
        let lines: Vec<zoo::ZooLine> = rows.iter().map(zoo::ZooLine::from).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&lines).expect("zoo lines serialize")
        );
    } else {
        println!(
            "# Bug zoo: {} bugs, seeds {}..{} on {}\n",
            rows.len(),
            args.seeds.start,
            args.seeds.end,
            runner.engine
        );
        print!("{}", zoo::markdown(&rows));
        println!(
            "\nReproducers: {}/BUG.min.json (replay one with `{}`)\n",
            dir.display(),
            report::replay_command(std::path::Path::new("FILE"), runner.engine)
        );
        print!("{}", zoo::lessons(&bugs));
    }
    if rows.iter().all(zoo::ZooRow::caught_as_expected) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ZOO_MISSED)
    }
}

/// Runs `options` again with `run` and compares the trace with `first`'s:
/// prints the verdict, and the first entry where the runs part if they do.
/// Returns the exit code when the second run differs or crashes.
fn run_again_and_compare(
    run: Runner,
    scenario: &Scenario,
    options: &RunOptions,
    first: &dst::world::RunResult,
) -> Option<ExitCode> {
    match run_guarded(run, scenario, options) {
        Ok(second) if second.trace_hash == first.trace_hash => {
            eprintln!(
                "determinism: both runs gave trace hash {:#018x}",
                first.trace_hash
            );
            None
        }
        Ok(second) => {
            let (left, right) = (
                first.trace.as_deref().unwrap_or(&[]),
                second.trace.as_deref().unwrap_or(&[]),
            );
            let index = sim::first_divergence(left, right).unwrap_or(0);
            eprintln!(
                "determinism: FAILED: trace hashes {:#018x} and {:#018x} part at entry {index}:\n  first:  {:?}\n  second: {:?}",
                first.trace_hash,
                second.trace_hash,
                left.get(index),
                right.get(index)
            );
            Some(ExitCode::from(Outcome::Nondeterministic.exit_code() as u8))
        }
        Err(error) => {
            eprintln!("the second run failed: {error}");
            Some(ExitCode::from(exit_code(&error)))
        }
    }
}

fn replay(args: ReplayArgs) -> ExitCode {
    let artifact = match Artifact::read(&args.artifact) {
        Ok(artifact) => artifact,
        Err(error) => return fail(&error, None),
    };
    if artifact.code_version != code_version() {
        eprintln!(
            "warning: the artifact was written by {} and this is {}: the run may differ",
            artifact.code_version,
            code_version()
        );
    }
    let runner = match artifact_runner(&args.engine, &artifact, "replay") {
        Ok(runner) => runner,
        Err(error) => return fail(&error, None),
    };
    let pictures = Pictures {
        timeline: args.timeline.as_deref(),
        perfetto: args.perfetto.as_deref(),
    };
    if let Err(error) = pictures.preflight() {
        return fail(&error, None);
    }
    let options = RunOptions {
        seed: artifact.seed,
        faults: Some(artifact.faults.clone()),
        keep_trace: true,
        buggify_redraws_faults: artifact.buggify_redraws_faults,
    };
    dst::sweep::capture_panics();
    let result = match run_guarded(runner.run, &artifact.scenario, &options) {
        Ok(result) => result,
        Err(error) => return fail(&error, None),
    };
    if artifact.property == "crash" {
        eprintln!(
            "warning: the artifact records a crash, but the run completed: the crash did not happen again (has the code changed?)"
        );
    } else if artifact.property == "determinism" {
        // The artifact's hash is one of two: the question is whether the
        // seed still parts from itself.
        let again = run_again_and_compare(runner.run, &artifact.scenario, &options, &result);
        if let Some(code) = again {
            return code;
        }
        eprintln!("warning: the seed no longer gives two traces (has the code changed?)");
    } else if runner.engine != artifact.engine {
        eprintln!(
            "replay: trace hash {:#018x} on {}; the artifact's is {}'s, so the two do not compare",
            result.trace_hash, runner.engine, artifact.engine
        );
    } else if artifact.trace_encoding != sim::TRACE_ENCODING_VERSION {
        eprintln!(
            "replay: trace hash {:#018x} under trace encoding {}; the artifact's was computed under encoding {}, so the two do not compare (its property is judged as usual)",
            result.trace_hash,
            sim::TRACE_ENCODING_VERSION,
            artifact.trace_encoding
        );
    } else if result.trace_hash == artifact.trace_hash {
        eprintln!(
            "replay: trace hash {:#018x} matches the artifact",
            result.trace_hash
        );
    } else {
        eprintln!(
            "warning: trace hash {:#018x} differs from the artifact's {:#018x}: the code or its behaviour changed",
            result.trace_hash, artifact.trace_hash
        );
    }
    let command = report::replay_command(&args.artifact, runner.engine);
    if args.story {
        print!("{}", dst::story::story(&result, &artifact.property));
    } else if args.json {
        println!("{}", report::json_with_rerun(&result, &command));
    } else {
        print!("{}", report::markdown(&result, &command));
        print!(
            "{}",
            report::trace_excerpt(&result, &artifact.property, args.context)
        );
    }
    // After the report, so a file that could not be written loses nothing.
    if let Err(error) = pictures.write(&result, &artifact.scenario) {
        return fail(&error, None);
    }
    exit_for(&result)
}

/// The pictures of a run asked for with `--timeline` and `--perfetto`.
struct Pictures<'a> {
    timeline: Option<&'a std::path::Path>,
    perfetto: Option<&'a std::path::Path>,
}

impl Pictures<'_> {
    /// Refuses, before anything runs, a file asked for that could not be
    /// written: so a long run's report is not lost to a typo.
    fn preflight(&self) -> Result<(), Error> {
        for (path, what) in [(self.timeline, "timeline"), (self.perfetto, "perfetto")] {
            if let Some(path) = path {
                writable_file(path, what)?;
            }
        }
        Ok(())
    }

    /// Draws `result` (a run of `scenario` that kept its history) into
    /// each file asked for, and says so on stderr; a file that cannot be
    /// written is an I/O error naming it.
    fn write(&self, result: &RunResult, scenario: &Scenario) -> Result<(), Error> {
        if self.timeline.is_none() && self.perfetto.is_none() {
            return Ok(());
        }
        let timeline = dst::timeline::Timeline::from_run(result, scenario)?;
        let outputs = [
            (
                self.timeline,
                "timeline",
                dst::timeline::html as fn(&_) -> String,
            ),
            (self.perfetto, "perfetto", dst::perfetto::chrome_trace),
        ];
        for (path, what, draw) in outputs {
            let Some(path) = path else { continue };
            let text = draw(&timeline);
            std::fs::write(path, &text)
                .map_err(|error| Error::io(path, format!("cannot write the {what}: {error}")))?;
            eprintln!("{what}: wrote {} ({} bytes)", path.display(), text.len());
        }
        Ok(())
    }
}

/// Whether `path` can take the file `what` (checked before a run that
/// writes it): not a directory, in a directory that exists.
fn writable_file(path: &std::path::Path, what: &str) -> Result<(), Error> {
    if path.is_dir() {
        return Err(Error::io(
            path,
            format!("is a directory: give the path of a file to write the {what} to"),
        ));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|p| !p.is_dir()) {
        return Err(Error::io(
            path,
            format!(
                "cannot write the {what}: directory {} does not exist",
                parent.display()
            ),
        ));
    }
    Ok(())
}

/// The runner `replay` and `shrink` use: the artifact's engine, unless
/// `--engine` names another.
fn artifact_runner(
    arg: &EngineArg,
    artifact: &Artifact,
    command: &str,
) -> Result<EngineRunner, Error> {
    engine_runner(arg.engine.unwrap_or(artifact.engine), command)
}

fn shrink(args: ShrinkArgs) -> ExitCode {
    let artifact = match Artifact::read(&args.artifact) {
        Ok(artifact) => artifact,
        Err(error) => return fail(&error, None),
    };
    let runner = match artifact_runner(&args.engine, &artifact, "shrink") {
        Ok(runner) => runner,
        Err(error) => return fail(&error, None),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.artifact.with_extension("min.json"));
    if same_file(&out, &args.artifact) {
        return bad_input(format!(
            "--out {}: that is the artifact being shrunk; write the reproducer elsewhere",
            out.display()
        ));
    }
    if let Err(error) = writable_file(&out, "shrunk artifact") {
        return fail(&error, None);
    }
    dst::sweep::capture_panics();
    let shrunk = match dst::shrink::shrink(&artifact, runner) {
        Ok(shrunk) => shrunk,
        Err(error @ Error::Crash { .. }) => {
            eprintln!("crash: {}: {error}", args.artifact.display());
            eprintln!(
                "rerun: {}",
                report::replay_command(&args.artifact, runner.engine)
            );
            return ExitCode::from(exit_code(&error));
        }
        Err(error) => return fail(&in_file(error, &args.artifact), None),
    };
    println!(
        "shrink: `{}` still fails with {} of {} faults ({} runs on {}){}",
        artifact.property,
        shrunk.faults_after,
        shrunk.faults_before,
        shrunk.runs,
        runner.engine,
        if shrunk.one_minimal {
            "; removing any one of them makes it pass (1-minimal)"
        } else {
            "; NOT 1-minimal (the run budget ran out)"
        }
    );
    let names: Vec<String> = dst::layout::layout(&shrunk.artifact.scenario.topology)
        .1
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for fault in &shrunk.artifact.faults {
        println!(
            "  at {:>9.3} s: {}",
            fault.at_ns as f64 / 1e9,
            report::fault_line(&fault.fault, &names)
        );
    }
    // After the faults are printed, so a file that could not be written
    // loses nothing.
    if let Err(error) = shrunk.artifact.write(&out) {
        return fail(&error, None);
    }
    println!(
        "wrote {}\nreplay: {}",
        out.display(),
        report::replay_command(&out, runner.engine)
    );
    ExitCode::SUCCESS
}

/// Whether `a` and `b` name one existing file.
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_variant_exits_with_the_code_the_help_documents() {
        let cases = [
            (Error::bad_input("x.toml", "bad"), 2, "  2  bad input"),
            (
                Error::io("out", "cannot write"),
                1,
                "  1  results could not be written",
            ),
            (
                Error::Crash {
                    message: "boom".into(),
                    faults: None,
                },
                5,
                "  5  crash",
            ),
        ];
        for (error, code, line) in cases {
            assert_eq!(exit_code(&error), code, "{error:?}");
            assert!(EXIT_CODES.contains(line), "{line}");
        }
    }

    #[test]
    fn every_engine_built_in_names_its_runs_and_sim_is_always_one() {
        let available = available_engines();
        assert!(available.iter().any(|&(engine, _)| engine == Engine::Sim));
        let mut scenario = Scenario::load("baseline").expect("loads");
        scenario.run.duration_ms = 2_000;
        scenario.run.liveness_bound_ms = 1_000;
        scenario.client.workload_end_ms = 1_500;
        for (engine, _) in available {
            let runner = engine_runner(engine, "simulate").expect("built in");
            let options = RunOptions {
                seed: 1,
                ..RunOptions::default()
            };
            let result = (runner.run)(&scenario, &options).expect("runs");
            assert_eq!(result.engine, engine, "reports and artifacts name it");
        }
    }

    #[test]
    fn a_shrink_error_without_a_file_gets_the_artifact_s_path() {
        let path = std::path::Path::new("sweep-out/failures/a.json");
        let named = in_file(Error::bad_input("", "nothing to shrink"), path);
        assert_eq!(
            named.to_string(),
            "sweep-out/failures/a.json: nothing to shrink"
        );
        // A file already named stays named.
        let kept = in_file(Error::bad_input("x.toml", "bad"), path);
        assert_eq!(kept.to_string(), "x.toml: bad");
    }
}
