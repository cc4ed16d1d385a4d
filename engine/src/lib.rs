//! The same control-plane nodes, scenarios and checkers on other engines
//! than our own simulator: turmoil here, madsim in its own crate (it needs
//! `--cfg madsim`, see `madsim/`).
//!
//! An engine supplies time, a network and crashes; everything else is
//! shared with the simulator:
//!
//! - the nodes are `plane`'s, built by `build_node` and run through the
//!   node contract by one host task each ([`driver::run_node`]);
//! - a node's durable state, boot counter, clock and random stream live
//!   outside the engine's hosts ([`world::Shared`]), so a crash loses what
//!   a real crash loses and nothing more;
//! - clocks (drift, offsets, jumps, drift faults) and pauses are our own
//!   layer, since neither engine has clocks per node;
//! - the fault list is the simulator's: scheduled in the scenario or drawn
//!   from the seed ([`dst::world::planned_faults`]), or given (replay,
//!   shrink); each engine maps every kind onto its own mechanisms and
//!   refuses, by name, a kind it cannot express;
//! - the history feeds the same checkers ([`dst::world::judge`]), and the
//!   result is a [`RunResult`] like the simulator's, so reports, sweeps,
//!   artifacts, replay and shrinking work unchanged.

pub mod driver;
#[cfg(feature = "turmoil")]
pub mod turmoil;
pub mod world;

use dst::error::Error;
use dst::layout::{Role, layout};
use dst::scenario::Scenario;
use dst::world::{Judged, RunOptions, RunResult, count_history, draw_clock, judge};
use node::NodeId;
use plane::config::{Settings, Topology};
use sim::{ClockConfig, ScheduledFault, StopReason};

use crate::world::Finished;

const MS: u64 = node::MILLISECOND_NS;

/// What a run is made of before it starts, on any engine.
pub struct Plan {
    /// The faults to apply, in time order.
    pub faults: Vec<ScheduledFault>,
    /// Node names and roles by id.
    pub names: Vec<(String, Role)>,
    /// Who is who.
    pub topology: Topology,
    /// The nodes' settings.
    pub settings: Settings,
    /// Each node's clock.
    pub clocks: Vec<ClockConfig>,
    /// When the safety phase ends: the run's duration, or the last heal if
    /// later (None: a fault never heals).
    pub healed_ns: Option<u64>,
    /// When the run ends: the safety phase plus the liveness bound.
    pub end_ns: u64,
}

impl Plan {
    /// The plan of `scenario` with `options`: its faults (given, or
    /// scheduled and drawn from the seed), layout and clocks.
    /// An engine that moves in steps of `tick_ns` gets the faults as it
    /// will apply them (see [`quantize`]).
    pub fn new(scenario: &Scenario, options: &RunOptions, tick_ns: u64) -> Result<Plan, Error> {
        let faults = match &options.faults {
            Some(faults) => faults.clone(),
            None => dst::world::planned_faults(scenario, options.seed)?,
        };
        let mut faults = quantize(&faults, tick_ns);
        faults.sort_by_key(|fault| fault.at_ns);
        let (topology, names) = layout(&scenario.topology);
        let clocks = (0..names.len())
            .map(|i| draw_clock(options.seed, NodeId(i as u32), scenario))
            .collect();
        let duration_ns = scenario.run.duration_ms.saturating_mul(MS);
        let healed_ns = sim::all_healed_at_ns(&faults).map(|healed| healed.max(duration_ns));
        let end_ns = healed_ns
            .unwrap_or(duration_ns)
            .saturating_add(scenario.run.liveness_bound_ms.saturating_mul(MS));
        Ok(Plan {
            faults,
            names,
            topology,
            settings: scenario.settings(),
            clocks,
            healed_ns,
            end_ns,
        })
    }

    /// When the liveness phase starts.
    pub fn calm_at_ns(&self, scenario: &Scenario) -> u64 {
        self.healed_ns
            .unwrap_or_else(|| scenario.run.duration_ms.saturating_mul(MS))
    }

    /// A node of role `role` as `plane` builds it.
    pub fn build(&self, role: Role) -> Box<dyn node::Node<plane::ControlPlane> + Send> {
        plane::cluster::build_node(role, &self.topology, &self.settings)
    }

    /// The result of a finished run on `engine`, judged by the same
    /// checkers as the simulator's.
    pub fn result(
        self,
        scenario: &Scenario,
        options: &RunOptions,
        finished: Finished,
        end_ns: u64,
        stop: StopReason,
        engine: dst::engine::Engine,
    ) -> RunResult {
        let check = judge(
            scenario,
            &Judged {
                topology: &self.topology,
                history: &finished.history,
                faults: &finished.applied,
                healed_ns: self.healed_ns,
                end_ns,
                disturbances_ns: &finished.disturbances_ns,
            },
        );
        let (history_counts, responses_by_status) = count_history(&finished.history);
        let keep = options.keep_trace;
        RunResult {
            engine,
            scenario: scenario.name.clone(),
            config_hash: scenario.config_hash(),
            seed: options.seed,
            stop,
            trace_hash: finished.trace.hash(),
            trace_len: finished.trace.len(),
            stats: finished.stats,
            faults: finished.applied,
            healed_ns: self.healed_ns,
            end_ns,
            check,
            node_names: self.names.into_iter().map(|(name, _)| name).collect(),
            clocks: self.clocks,
            history_counts,
            responses_by_status,
            records: if keep {
                finished
                    .history
                    .iter()
                    .map(|entry| (entry.trace_index, format!("{:?}", entry.event)))
                    .collect()
            } else {
                Default::default()
            },
            messages: finished.messages.into_iter().collect(),
            trace: finished.trace.entries().map(<[sim::TraceEntry]>::to_vec),
            history: keep.then_some(finished.history),
            bugs: scenario.bugs.clone(),
        }
    }
}

/// `faults` as an engine that moves in steps of `tick_ns` applies them:
/// each starts on the first step at or after its time and lasts a whole
/// number of steps (rounded up), so the list the checkers read is the one
/// that happened. Idempotent, so a replayed list stays as it was.
pub fn quantize(faults: &[ScheduledFault], tick_ns: u64) -> Vec<ScheduledFault> {
    let up = |ns: u64| ns.div_ceil(tick_ns).saturating_mul(tick_ns);
    faults
        .iter()
        .map(|scheduled| {
            let mut fault = scheduled.fault.clone();
            match &mut fault {
                sim::Fault::Partition { duration_ns, .. }
                | sim::Fault::Clog { duration_ns, .. }
                | sim::Fault::Pause { duration_ns, .. }
                | sim::Fault::Degrade { duration_ns, .. }
                | sim::Fault::ClockDrift { duration_ns, .. } => *duration_ns = up(*duration_ns),
                sim::Fault::Crash {
                    restart_after_ns, ..
                } => *restart_after_ns = restart_after_ns.map(up),
                sim::Fault::Reboot {
                    restart_after_ns, ..
                } => *restart_after_ns = up(*restart_after_ns),
                sim::Fault::ClockJump { .. } => {}
            }
            ScheduledFault {
                at_ns: up(scheduled.at_ns),
                fault,
            }
        })
        .collect()
}

/// Refuses a fault list holding a kind `engine` cannot express, naming it.
pub fn refuse(
    engine: &str,
    faults: &[ScheduledFault],
    names: &[(String, Role)],
    cannot: impl Fn(&sim::Fault) -> Option<&'static str>,
) -> Result<(), Error> {
    for (index, scheduled) in faults.iter().enumerate() {
        if let Some(why) = cannot(&scheduled.fault) {
            let labels: Vec<String> = names.iter().map(|(name, _)| name.clone()).collect();
            return Err(Error::bad_input(
                format!("engine {engine}"),
                format!(
                    "fault {index} ({}) at {} ms: {engine} cannot express `{}`: {why}",
                    dst::report::fault_line(&scheduled.fault, &labels),
                    scheduled.at_ns / MS,
                    scheduled.fault.kind_name(),
                ),
            ));
        }
    }
    Ok(())
}
