//! The bug zoo: every planted [`Bug`], each swept alone over the scenario
//! written to expose it, to prove that the real checkers catch it in a real
//! run, and how soon.
//!
//! A framework is worth the bugs it finds. For each bug the zoo turns it on
//! in its scenario ([`exhibit`]), runs seeds in order until one fails, and
//! shrinks that failure to a 1-minimal fault list with [`crate::shrink`].
//! Seeds run in parallel in chunks, but a chunk is judged only once every
//! seed in it has run and the *lowest* failing seed is the answer, so the
//! result is the same whatever the number of jobs. A bug that no seed in
//! the range exposes is reported as not caught: a gap in a checker or in
//! the scenarios, never a pass.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::artifact::Artifact;
use crate::engine::{Engine, EngineRunner};
use crate::error::Error;
use crate::scenario::Scenario;
use crate::shrink::{ShrinkResult, shrink};
use crate::sweep::{Outcome, run_guarded};
use crate::world::{RunOptions, RunResult};
use plane::config::Bug;

/// Seeds one parallel chunk runs per job: enough to keep every core busy,
/// few enough that little is wasted past the first failure.
const SEEDS_PER_JOB_PER_CHUNK: u64 = 4;

/// Where a bug lives in the zoo: the scenario that exposes it and the
/// property expected to catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Exhibit {
    /// The bug.
    pub bug: Bug,
    /// The scenario (in `scenarios/`) whose runs expose it.
    pub scenario: &'static str,
    /// The property that should fire.
    pub property: &'static str,
}

/// The scenario and property of each bug.
pub fn exhibit(bug: Bug) -> Exhibit {
    let (scenario, property) = match bug {
        Bug::LedgerCheckThenAct => ("idempotency-storm", "always.one_resource_per_key"),
        Bug::SideEffectBeforeLedger => ("idempotency-storm", "eventually.keys_finished"),
        Bug::NoFencing => ("delayed-actions", "always.one_instance_per_ordinal"),
        Bug::LeaseNoDriftMargin => ("lease-expiry", "always.one_active_holder"),
        Bug::LeaseOnWallClock => ("lease-expiry", "always.one_active_holder"),
        Bug::ActAfterRenewFailure => ("partition-leader", "always.one_active_holder"),
        Bug::EdgeTriggered => ("chaos", "eventually.converged"),
        Bug::NoWorkqueueDedup => ("chaos", "always.one_instance_per_ordinal"),
        Bug::StaleReplayBody => ("idempotency-storm", "always.replay_matches_first"),
        Bug::ModuloSharding => ("shard-churn", "cost.shard_movement"),
    };
    Exhibit {
        bug,
        scenario,
        property,
    }
}

/// How one seed of a hunt ended.
#[derive(Debug)]
pub enum SeedVerdict {
    /// Every property held.
    Pass,
    /// A property failed.
    Fail(Box<RunResult>),
    /// The system under test panicked, with the message.
    Crash(String),
}

/// The lowest seed in `seeds` whose run of `scenario` on `runner` does not
/// pass, with how it failed; `None` if every seed passes. Runs up to `jobs`
/// seeds at once, in chunks, and answers the same whatever `jobs` is. A
/// panic is a crash verdict; its message is kept only if the caller installed
/// [`crate::sweep::capture_panics`] (the command line does; a test harness
/// keeps its own hook so its failures still print).
pub fn first_failure(
    runner: EngineRunner,
    scenario: &Scenario,
    seeds: Range<u64>,
    jobs: usize,
) -> Result<Option<(u64, SeedVerdict)>, Error> {
    first_matching(runner, scenario, seeds, jobs, |verdict| {
        !matches!(verdict, SeedVerdict::Pass)
    })
}

/// The lowest seed of `seeds` whose verdict is `wanted`, run in chunks of
/// seeds in parallel: the same answer for any number of jobs.
fn first_matching(
    runner: EngineRunner,
    scenario: &Scenario,
    seeds: Range<u64>,
    jobs: usize,
    wanted: impl Fn(&SeedVerdict) -> bool,
) -> Result<Option<(u64, SeedVerdict)>, Error> {
    let jobs = jobs.max(1);
    let chunk = jobs as u64 * SEEDS_PER_JOB_PER_CHUNK;
    let mut start = seeds.start;
    // Bounded: every round moves `start` forward by at least one seed.
    while start < seeds.end {
        let end = start.saturating_add(chunk).min(seeds.end);
        let mut verdicts = run_chunk(runner, scenario, start..end, jobs)?;
        verdicts.sort_by_key(|(seed, _)| *seed);
        if let Some(failed) = verdicts.into_iter().find(|(_, verdict)| wanted(verdict)) {
            return Ok(Some(failed));
        }
        start = end;
    }
    Ok(None)
}

/// Runs every seed of `seeds` on `jobs` threads; each run is still one
/// thread and one seed, so the verdicts do not depend on scheduling.
fn run_chunk(
    runner: EngineRunner,
    scenario: &Scenario,
    seeds: Range<u64>,
    jobs: usize,
) -> Result<Vec<(u64, SeedVerdict)>, Error> {
    let next = AtomicU64::new(seeds.start);
    let verdicts = Mutex::new(Vec::new());
    let bad_input = Mutex::new(None);
    std::thread::scope(|scope| {
        let runs = usize::try_from(seeds.end.saturating_sub(seeds.start)).unwrap_or(usize::MAX);
        for _ in 0..jobs.clamp(1, runs.max(1)) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        break;
                    }
                    let options = RunOptions {
                        seed,
                        ..RunOptions::default()
                    };
                    let verdict = match run_guarded(runner.run, scenario, &options) {
                        Ok(result) if Outcome::of(&result) == Outcome::Pass => SeedVerdict::Pass,
                        Ok(result) => SeedVerdict::Fail(Box::new(result)),
                        Err(Error::Crash { message, .. }) => SeedVerdict::Crash(message),
                        // Bad input fails every seed alike: stop, and say so.
                        Err(error) => {
                            *bad_input.lock().expect("no panics hold it") = Some(error);
                            break;
                        }
                    };
                    verdicts
                        .lock()
                        .expect("no panics hold it")
                        .push((seed, verdict));
                }
            });
        }
    });
    if let Some(error) = bad_input.into_inner().expect("threads joined") {
        return Err(error);
    }
    Ok(verdicts.into_inner().expect("threads joined"))
}

/// One bug caught: where, by what, and its shrunk reproducer.
#[derive(Clone, Debug)]
pub struct Catch {
    /// The first failing seed.
    pub seed: u64,
    /// Seeds run in order up to and including it.
    pub seeds_to_failure: u64,
    /// How the run ended.
    pub outcome: Outcome,
    /// The property that fired first (`crash` for a panic).
    pub property: String,
    /// Every property that failed in the run.
    pub failed: Vec<String>,
    /// What the checker said.
    pub message: String,
    /// The failing run, reproducible with `replay`.
    pub artifact: Artifact,
    /// The reproducer shrunk to a 1-minimal fault list (not for a crash).
    pub shrunk: Option<ShrinkResult>,
}

/// One row of the zoo.
#[derive(Clone, Debug)]
pub struct ZooRow {
    /// The bug, its scenario and expected property.
    pub exhibit: Exhibit,
    /// The engine its seeds ran on.
    pub engine: Engine,
    /// Seeds in the range searched.
    pub seeds_searched: u64,
    /// `None`: no seed in the range failed.
    pub caught: Option<Catch>,
}

impl ZooRow {
    /// Caught, by the property expected, with a 1-minimal reproducer.
    pub fn caught_as_expected(&self) -> bool {
        self.caught.as_ref().is_some_and(|catch| {
            catch.failed.iter().any(|p| p == self.exhibit.property)
                && catch.shrunk.as_ref().is_some_and(|s| s.one_minimal)
        })
    }
}

/// Hunts `bug` alone in its scenario over `seeds` on `runner`, then
/// shrinks the first failure there.
pub fn hunt(
    runner: EngineRunner,
    bug: Bug,
    seeds: Range<u64>,
    jobs: usize,
) -> Result<ZooRow, Error> {
    let exhibit = exhibit(bug);
    let mut scenario = Scenario::load(exhibit.scenario)?;
    scenario.bugs.clear();
    scenario.plant(bug);
    let seeds_searched = seeds.end.saturating_sub(seeds.start);
    // The first seed where the expected property fires (or the system
    // crashes): another property firing first is a side effect of the bug
    // that the table mentions, not the lesson.
    let expected = exhibit.property;
    let first = first_matching(
        runner,
        &scenario,
        seeds.clone(),
        jobs,
        |verdict| match verdict {
            SeedVerdict::Pass => false,
            SeedVerdict::Crash(_) => true,
            SeedVerdict::Fail(result) => result
                .check
                .failed_properties()
                .iter()
                .any(|p| p == expected),
        },
    )?;
    let caught = match first {
        None => None,
        Some((seed, verdict)) => Some(catch(
            runner,
            &scenario,
            seed,
            seed - seeds.start + 1,
            verdict,
            expected,
        )?),
    };
    Ok(ZooRow {
        exhibit,
        engine: runner.engine,
        seeds_searched,
        caught,
    })
}

fn catch(
    runner: EngineRunner,
    scenario: &Scenario,
    seed: u64,
    seeds_to_failure: u64,
    verdict: SeedVerdict,
    expected: &str,
) -> Result<Catch, Error> {
    match verdict {
        SeedVerdict::Pass => unreachable!("only failures are caught"),
        SeedVerdict::Crash(message) => {
            // Shrinking reruns the scenario, and a panic would take the
            // shrinker down with it: a crash is reported as found.
            let faults = crate::world::planned_faults(scenario, seed)?;
            let artifact =
                Artifact::crashed(runner.engine, scenario, seed, faults, message.clone());
            Ok(Catch {
                seed,
                seeds_to_failure,
                outcome: Outcome::Crash,
                property: "crash".to_string(),
                failed: vec!["crash".to_string()],
                message,
                artifact,
                shrunk: None,
            })
        }
        SeedVerdict::Fail(result) => {
            // Shrink for the expected property, whatever else fired.
            let mut artifact = Artifact::from_run(scenario, &result);
            let expected_violation = result
                .check
                .verdicts
                .iter()
                .filter(|verdict| verdict.property == expected)
                .find_map(|verdict| verdict.violations.first());
            if let Some(violation) = expected_violation {
                artifact.property = expected.to_string();
                artifact.message = violation.message.clone();
            }
            let shrunk = shrink(&artifact, runner)?;
            Ok(Catch {
                seed,
                seeds_to_failure,
                outcome: Outcome::of(&result),
                property: artifact.property.clone(),
                failed: result.check.failed_properties(),
                message: artifact.message.clone(),
                artifact,
                shrunk: Some(shrunk),
            })
        }
    }
}

/// Hunts every bug of `bugs` in turn over `seeds` on `runner`; `each`
/// sees every row as it is done (for progress).
pub fn run(
    runner: EngineRunner,
    bugs: &[Bug],
    seeds: Range<u64>,
    jobs: usize,
    mut each: impl FnMut(&ZooRow),
) -> Result<Vec<ZooRow>, Error> {
    let mut rows = Vec::with_capacity(bugs.len());
    for &bug in bugs {
        let row = hunt(runner, bug, seeds.clone(), jobs)?;
        each(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// One row as tools read it.
#[derive(Clone, Debug, Serialize)]
pub struct ZooLine {
    /// The bug's name.
    pub bug: String,
    /// The engine its seeds ran on.
    pub engine: Engine,
    /// Its scenario.
    pub scenario: String,
    /// The property expected to catch it.
    pub expected: String,
    /// The property that fired first, if caught.
    pub fired: Option<String>,
    /// The first failing seed.
    pub seed: Option<u64>,
    /// Seeds run to the first failure.
    pub seeds_to_failure: Option<u64>,
    /// Seeds searched.
    pub seeds_searched: u64,
    /// Faults in the failing run.
    pub faults_before: Option<usize>,
    /// Faults in the shrunk reproducer.
    pub faults_after: Option<usize>,
    /// Whether removing any one of them makes the run pass.
    pub one_minimal: Option<bool>,
    /// Caught by the expected property with a 1-minimal reproducer.
    pub caught_as_expected: bool,
}

impl From<&ZooRow> for ZooLine {
    fn from(row: &ZooRow) -> Self {
        let catch = row.caught.as_ref();
        let shrunk = catch.and_then(|c| c.shrunk.as_ref());
        ZooLine {
            bug: row.exhibit.bug.name().to_string(),
            engine: row.engine,
            scenario: row.exhibit.scenario.to_string(),
            expected: row.exhibit.property.to_string(),
            fired: catch.map(|c| c.property.clone()),
            seed: catch.map(|c| c.seed),
            seeds_to_failure: catch.map(|c| c.seeds_to_failure),
            seeds_searched: row.seeds_searched,
            faults_before: shrunk.map(|s| s.faults_before),
            faults_after: shrunk.map(|s| s.faults_after),
            one_minimal: shrunk.map(|s| s.one_minimal),
            caught_as_expected: row.caught_as_expected(),
        }
    }
}

/// The zoo as a Markdown table, then what each bug teaches.
pub fn markdown(rows: &[ZooRow]) -> String {
    let mut out = String::from(
        "| bug | scenario | property that fired | seeds to first failure | faults in the shrunk reproducer |\n\
         |---|---|---|---|---|\n",
    );
    for row in rows {
        let exhibit = &row.exhibit;
        let (fired, seeds, faults) = match &row.caught {
            None => (
                format!("none (expected `{}`)", exhibit.property),
                format!("not caught in {} seeds", row.seeds_searched),
                "-".to_string(),
            ),
            Some(catch) => {
                let mut fired = format!("`{}`", catch.property);
                if catch.property != exhibit.property {
                    let also = if catch.failed.iter().any(|p| p == exhibit.property) {
                        "also"
                    } else {
                        "NOT"
                    };
                    fired.push_str(&format!(" ({also} `{}`)", exhibit.property));
                }
                let faults = match &catch.shrunk {
                    Some(s) => format!(
                        "{} of {}{}",
                        s.faults_after,
                        s.faults_before,
                        if s.one_minimal {
                            ", 1-minimal"
                        } else {
                            ", NOT 1-minimal"
                        }
                    ),
                    None => "not shrunk (a crash)".to_string(),
                };
                (
                    fired,
                    format!("{} (seed {})", catch.seeds_to_failure, catch.seed),
                    faults,
                )
            }
        };
        out.push_str(&format!(
            "| `{}` | {} | {fired} | {seeds} | {faults} |\n",
            exhibit.bug, exhibit.scenario
        ));
    }
    out
}

/// One bullet per bug: what goes wrong, and why the pattern exists.
pub fn lessons(bugs: &[Bug]) -> String {
    bugs.iter()
        .map(|&bug| format!("- `{bug}`: {} {}\n", what_goes_wrong(bug), lesson(bug)))
        .collect()
}

// The prose of the zoo: it teaches, so it lives with the zoo rather than in
// `plane`, whose nodes only need to know whether a bug is on.

/// What goes wrong when the bug is on, in one sentence.
pub(crate) fn what_goes_wrong(bug: Bug) -> &'static str {
    match bug {
        Bug::LedgerCheckThenAct => {
            "Two requests with one key both read \"absent\" and both write, so a \
             late one restarts a finished key and creates a second resource."
        }
        Bug::SideEffectBeforeLedger => {
            "Billing is charged before anything is recorded, so a request that \
             is then refused (a key reused for another request: 422) or whose \
             node dies keeps the money and creates nothing."
        }
        Bug::NoFencing => {
            "A worker runs whatever reaches it, so an action a dead holder sent \
             long ago lands after the new holder acted and starts a second \
             instance."
        }
        Bug::LeaseNoDriftMargin => {
            "The holder counts the full TTL from the reply, while the store \
             counted it from the request on a clock that may run faster, so both \
             the old and the new holder believe they lead for a while."
        }
        Bug::LeaseOnWallClock => {
            "An NTP step back moves the holder's deadline forward by the step, \
             so it goes on acting long after the store expired its lease."
        }
        Bug::ActAfterRenewFailure => {
            "A holder cut off from the store never hears that its lease expired \
             and acts alongside its successor until the partition heals."
        }
        Bug::EdgeTriggered => {
            "One lost notification, or one failed pass, leaves a resource \
             unconverged for good: nothing ever looks at it again."
        }
        Bug::NoWorkqueueDedup => {
            "Two passes of one key run at once; each observes before the other's \
             start lands, and both start the same instance."
        }
        Bug::StaleReplayBody => {
            "A retry after the resource changed gets today's resource instead of \
             the answer the first request got."
        }
        Bug::ModuloSharding => {
            "A join or a leave reassigns almost every shard instead of about \
             1/(n+1) of them: a storm of lease handoffs, each a pause in \
             reconciliation."
        }
    }
}

/// Why the correct pattern exists: the lesson the bug teaches.
pub(crate) fn lesson(bug: Bug) -> &'static str {
    match bug {
        Bug::LedgerCheckThenAct => {
            "Record an idempotency key with a compare-and-set (create only if \
             absent), because a read followed by a write is a race that \
             retries, duplicated sends and slow nodes will win."
        }
        Bug::SideEffectBeforeLedger => {
            "Record the key before any foreign side effect, so every charge has \
             a ledger entry that a retry or the completer can finish from."
        }
        Bug::NoFencing => {
            "Leases only say who should act; a fencing token checked where the \
             effect happens is what stops a delayed message from a former \
             holder."
        }
        Bug::LeaseNoDriftMargin => {
            "Count a lease from when the request was sent and shrink it by the \
             largest drift the clocks may have, because the store's clock and \
             yours do not agree."
        }
        Bug::LeaseOnWallClock => {
            "Measure durations on a monotonic clock: wall clocks are stepped by \
             NTP and operators, in both directions."
        }
        Bug::ActAfterRenewFailure => {
            "Silence is not consent: stop acting when the lease could have \
             expired, whether or not anyone told you so."
        }
        Bug::EdgeTriggered => {
            "Reconcile on levels, not edges: notifications are hints that may be \
             lost, so a periodic resync and a requeue on failure must repair \
             what they miss."
        }
        Bug::NoWorkqueueDedup => {
            "A work queue must never hand out a key that is being processed \
             (client-go marks it dirty and queues it again when the pass ends), \
             because a reconciler's read-diff-act is not atomic."
        }
        Bug::StaleReplayBody => {
            "Store the first response with the key and replay it byte for byte: \
             an idempotent retry must get the same answer, not a new one."
        }
        Bug::ModuloSharding => {
            "Use rendezvous (or consistent) hashing, which moves only the shards \
             a joining or leaving member wins or held."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_has_a_scenario_that_loads_and_a_known_property() {
        let known = crate::check::property_names();
        for bug in Bug::all() {
            let exhibit = exhibit(bug);
            let scenario =
                Scenario::load(exhibit.scenario).unwrap_or_else(|e| panic!("{bug}: {e}"));
            assert!(
                scenario.bugs.is_empty(),
                "{bug}: the library plants nothing"
            );
            assert!(
                known.contains(&exhibit.property),
                "{bug}: {} is not a property",
                exhibit.property
            );
        }
    }

    #[test]
    fn the_readme_teaches_every_bug_in_the_zoo_s_own_words() {
        // The prose lives here; the README quotes it, and must not drift.
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("the README reads");
        for line in lessons(&Bug::all()).lines() {
            assert!(readme.contains(line), "README lacks: {line}");
        }
        for bug in Bug::all() {
            assert!(what_goes_wrong(bug).ends_with('.'), "{bug}");
            assert!(lesson(bug).ends_with('.'), "{bug}");
        }
    }

    #[test]
    fn a_bug_not_caught_says_so_in_its_row() {
        let row = ZooRow {
            exhibit: exhibit(Bug::NoFencing),
            engine: Engine::Sim,
            seeds_searched: 7,
            caught: None,
        };
        assert!(!row.caught_as_expected());
        let table = markdown(&[row]);
        assert!(table.contains("not caught in 7 seeds"), "{table}");
        assert!(table.contains("`no-fencing` | delayed-actions"), "{table}");
    }

    #[test]
    fn the_first_failure_is_the_lowest_failing_seed_whatever_the_jobs() {
        // Two passes of one key at once double-start an instance in some
        // baseline seeds but not in most.
        let mut scenario = Scenario::load("baseline").expect("loads");
        scenario.plant(Bug::NoWorkqueueDedup);
        let seeds = |jobs| {
            first_failure(EngineRunner::SIM, &scenario, 0..30, jobs)
                .expect("runs")
                .map(|(seed, _)| seed)
        };
        let one = seeds(1);
        let first = one.expect("a failure within 30 seeds");
        assert!(first > 0, "seed 0 passes, so the order matters");
        assert_eq!(seeds(3), one);
    }
}
