//! `controlplane-madsim`: the simulation commands (simulate, sweep, replay,
//! shrink, scenarios) with the madsim engine built in. Run it through
//! `./madsim/run simulate --engine madsim ...` from the repository root.

use std::process::ExitCode;

use clap::Parser;
use dst::engine::Engine;

/// Deterministic simulation testing of a cloud control plane, with madsim
/// built in (`--engine madsim`) beside our own simulator (`--engine sim`).
#[derive(Parser, Debug)]
#[command(name = "controlplane-madsim", version, about, after_help = simcli::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: simcli::SimCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    simcli::run(
        cli.command,
        vec![(Engine::Madsim, madsim_engine::run_scenario)],
    )
}
