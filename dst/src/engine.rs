//! Which simulator runs a scenario: our own (`sim`), turmoil or madsim.
//!
//! The same scenario, seed and checkers run on every engine, so a finding
//! of one is a question for the others. An engine is a value that flows
//! through simulate, sweep, replay, shrink and the zoo, and every report
//! and artifact names it. Each engine has a run function with the
//! signature of [`run_scenario`]; the binary says which ones it was built
//! with (madsim needs a build of its own), and [`runner`] looks one up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::scenario::Scenario;
use crate::world::{RunOptions, RunResult, run_scenario};

/// A simulation engine.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Our discrete-event simulator (`sim/`): the sans-IO nodes on one
    /// event queue.
    #[default]
    Sim,
    /// The same nodes, through the node contract, as turmoil hosts on its
    /// simulated network and time (crate `engine`).
    Turmoil,
    /// The same nodes as madsim nodes on its simulated network and time (a separate
    /// build: see `./madsim/run`).
    Madsim,
}

impl Engine {
    /// Every engine, in the order help texts list them.
    pub const ALL: [Engine; 3] = [Engine::Sim, Engine::Turmoil, Engine::Madsim];

    /// The name on the command line and in reports: `sim`, `turmoil`,
    /// `madsim`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sim => "sim",
            Engine::Turmoil => "turmoil",
            Engine::Madsim => "madsim",
        }
    }

    /// Whether this is the default engine, which formats leave unnamed so
    /// that files written before engines existed read the same (for
    /// `skip_serializing_if`).
    pub fn is_sim(&self) -> bool {
        *self == Engine::Sim
    }

    /// The command that runs this engine's binary, before the subcommand:
    /// madsim is built on its own, by a script.
    pub fn program(self) -> &'static str {
        match self {
            Engine::Sim | Engine::Turmoil => "cargo run --release --",
            Engine::Madsim => "./madsim/run",
        }
    }

    /// ` --engine NAME` for a command line, or nothing for the default.
    pub fn flag(self) -> String {
        if self.is_sim() {
            String::new()
        } else {
            format!(" --engine {self}")
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> Result<Engine, String> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.name() == text)
            .ok_or_else(|| {
                let allowed: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
                format!("unknown engine {text:?}: allowed {}", allowed.join(", "))
            })
    }
}

/// How an engine runs one seed of a scenario: [`run_scenario`] for `sim`.
/// The [`RunResult`] it returns names the engine.
pub type Runner = fn(&Scenario, &RunOptions) -> Result<RunResult, Error>;

/// An engine with its run function: what simulate, a sweep, the zoo,
/// replay and shrinking run seeds on.
#[derive(Clone, Copy, Debug)]
pub struct EngineRunner {
    /// The engine, for reports, results and artifacts.
    pub engine: Engine,
    /// Its run function.
    pub run: Runner,
}

impl EngineRunner {
    /// Our own simulator.
    pub const SIM: EngineRunner = EngineRunner {
        engine: Engine::Sim,
        run: run_scenario,
    };
}

impl Default for EngineRunner {
    fn default() -> EngineRunner {
        EngineRunner::SIM
    }
}

/// The runner of `engine` among those the binary was built with
/// (`available`; `sim` is always there). An engine not built in is bad
/// input saying how to run it: `command` is the subcommand the user gave
/// (`simulate`, `sweep`, ...), for the command line to use instead.
pub fn runner(
    engine: Engine,
    available: &[(Engine, Runner)],
    command: &str,
) -> Result<EngineRunner, Error> {
    if engine.is_sim() {
        return Ok(EngineRunner::SIM);
    }
    available
        .iter()
        .find(|(name, _)| *name == engine)
        .map(|&(engine, run)| EngineRunner { engine, run })
        .ok_or_else(|| {
            Error::bad_input(
                "",
                format!(
                    "engine {engine} is not built into this binary: run it with {} {command} \
                     ... (see README, \"Engines\")",
                    engine.program()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_parses_from_its_name_and_serializes_as_it() {
        for engine in Engine::ALL {
            assert_eq!(engine.name().parse::<Engine>(), Ok(engine));
            assert_eq!(engine.to_string(), engine.name());
            let json = serde_json::to_string(&engine).expect("serializes");
            assert_eq!(json, format!("\"{}\"", engine.name()));
            assert_eq!(serde_json::from_str::<Engine>(&json).ok(), Some(engine));
        }
        assert_eq!(Engine::default(), Engine::Sim);
    }

    #[test]
    fn an_unknown_engine_is_refused_listing_the_allowed_ones() {
        assert_eq!(
            "Sim".parse::<Engine>(),
            Err("unknown engine \"Sim\": allowed sim, turmoil, madsim".to_string())
        );
        assert!(serde_json::from_str::<Engine>("\"bogus\"").is_err());
    }

    #[test]
    fn only_engines_other_than_sim_are_flagged() {
        assert_eq!(Engine::Sim.flag(), "");
        assert_eq!(Engine::Turmoil.flag(), " --engine turmoil");
    }

    #[test]
    fn sim_is_always_available_and_another_engine_only_when_built_in() {
        let found = runner(Engine::Sim, &[], "simulate").expect("sim is built in");
        assert_eq!(found.engine, Engine::Sim);
        let turmoil =
            runner(Engine::Turmoil, &[(Engine::Turmoil, run_scenario)], "sweep").expect("built in");
        assert_eq!(turmoil.engine, Engine::Turmoil);
        let error = runner(Engine::Madsim, &[(Engine::Turmoil, run_scenario)], "sweep")
            .expect_err("not built in");
        assert_eq!(
            error,
            Error::bad_input(
                "",
                "engine madsim is not built into this binary: run it with ./madsim/run sweep \
                 ... (see README, \"Engines\")"
            )
        );
    }
}
