//! The command line: the simulation commands ([`simcli`]) and the real
//! host's (`serve`, `check`, `test-remote`, `load`, `chaos`, `watch`). It
//! parses, prints and picks the exit code; nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use dst::engine::{Engine, Runner};
pub use simcli::{EXIT_BAD_INPUT, EXIT_CODES, EXIT_IO, EXIT_ZOO_MISSED, fail};

/// Deterministic simulation testing of a cloud control plane.
#[derive(Parser, Debug)]
#[command(name = "controlplane", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Sim(simcli::SimCommand),
    /// Run the control plane for real: every node a tokio task on loopback
    /// TCP, the HTTP API in front, state in a data directory.
    Serve(crate::serve::ServeArgs),
    /// Judge a real run's history (a data directory written by a real
    /// host) with the simulator's checkers; what needs one clock across
    /// nodes is reported as not judged, with why.
    #[command(after_help = CHECK_EXIT_CODES)]
    Check(CheckArgs),
    /// Run a black-box suite against a running server (every
    /// Idempotency-Key rule, create, update and delete until converged,
    /// concurrent duplicated creates giving one resource and one charge)
    /// and print a table of cases.
    #[command(after_help = crate::remote::EXIT_CODES)]
    TestRemote(crate::remote::TestRemoteArgs),
    /// Put open-loop load on a running server (creates, updates, reads;
    /// retries with the same key, duplicate sends) and report throughput,
    /// latency and duplicate charges.
    #[command(after_help = crate::load::EXIT_CODES)]
    Load(crate::load::LoadArgs),
    /// Break a running cluster on purpose through its admin endpoint:
    /// partitions, clogs, lost, duplicated and delayed messages, pauses,
    /// crashes and clock skew, each healing by itself; or play a failure
    /// artifact's faults in real time (--from).
    #[command(after_help = crate::chaos::EXIT_CODES)]
    Chaos(crate::chaos::ChaosArgs),
    /// Watch a running cluster (`serve`) live in the terminal.
    ///
    /// It shows desired against observed per resource (unconverged first),
    /// the unconverged count over the last five minutes, each shard's lease
    /// holder and fencing token and the leader's, the active faults with
    /// the time each has left, and every always-property judged over the
    /// history written so far.
    ///
    /// Point it at serve's data directory (`watch --data data`: serve
    /// wrote the admin endpoint and its token to data/admin.json), or give
    /// both as serve printed them (`--url URL --token TOKEN`). Keys: q, Esc
    /// or Ctrl-C quit; p pauses; up and down (or j and k) scroll the
    /// resources; r refreshes now. `--once` prints one frame as plain text
    /// instead.
    #[command(after_help = crate::watch::EXIT_CODES)]
    Watch(crate::watch::WatchArgs),
}

/// The engines built into this binary besides `sim`: turmoil (madsim
/// needs a build of its own, `./madsim/run`).
pub fn engines() -> Vec<(Engine, Runner)> {
    vec![(Engine::Turmoil, engine::turmoil::run_scenario)]
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(command) => simcli::run(command, engines()),
        Command::Serve(args) => crate::serve::serve(args),
        Command::Check(args) => check_history(args),
        Command::TestRemote(args) => crate::remote::test_remote(args),
        Command::Load(args) => crate::load::load(args),
        Command::Chaos(args) => crate::chaos::chaos(args),
        Command::Watch(args) => crate::watch::watch(args),
    }
}

// --- check --history: a real run's history ---

const CHECK_EXIT_CODES: &str = "\
Exit codes:
  0  every property judged held (those not judged are listed, each with why)
  2  bad input: no such directory, no or a bad cluster.json, or a malformed history line before a file's last (the message names the file and the line)
  3  safety violation: an `always` property failed
  4  liveness failure: an `eventually` property failed (judged only with --quiet)
  7  cost over budget: a `cost.*` measurement exceeded its budget (nothing unsafe happened)";

#[derive(Args, Debug)]
struct CheckArgs {
    /// The run's data directory: cluster.json and <node>/history.jsonl.
    #[arg(long, value_name = "DIR")]
    history: PathBuf,
    /// No faults were injected into the run: judge `eventually.*` on its
    /// end, if it went on for the liveness bound after its last new
    /// request and its last restart (a restart the history shows still
    /// counts as a fault). Without it, `eventually.*` is not judged.
    #[arg(long)]
    quiet: bool,
    /// With --quiet: how long the run must have gone on after its last new
    /// request and its last restart for its end to be judged.
    #[arg(long, value_name = "MS", default_value_t = dst::real::RealOptions::default().liveness_bound_ms)]
    liveness_bound_ms: u64,
    /// Print the report as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

fn check_history(args: CheckArgs) -> ExitCode {
    let options = dst::real::RealOptions {
        quiet: args.quiet,
        liveness_bound_ms: args.liveness_bound_ms,
    };
    let report = match dst::real::check_history_with(&args.history, &options) {
        Ok(report) => report,
        Err(error) => return fail(&error, None),
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.markdown());
    }
    ExitCode::from(report.outcome.exit_code() as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dst::scenario::Scenario;
    use dst::world::RunOptions;

    #[test]
    fn every_engine_built_in_names_its_runs() {
        let mut scenario = Scenario::load("baseline").expect("loads");
        scenario.run.duration_ms = 2_000;
        scenario.run.liveness_bound_ms = 1_000;
        scenario.client.workload_end_ms = 1_500;
        let built = engines();
        assert!(built.iter().any(|&(engine, _)| engine == Engine::Turmoil));
        for (engine, run) in built {
            let options = RunOptions {
                seed: 1,
                ..RunOptions::default()
            };
            let result = run(&scenario, &options).expect("runs");
            assert_eq!(result.engine, engine, "reports and artifacts name it");
        }
    }
}
