//! The bug zoo, asserted: each planted bug, alone in the scenario written
//! to expose it, is caught by the real checkers within 1,000 seeds, by the
//! property expected, with a reproducer that shrinks to a 1-minimal fault
//! list; and the same seeds pass with the bug off, so it is the bug (not
//! the scenario) that the checkers caught.
//!
//! Each test stops at the first failing seed and prints how many seeds it
//! took (`cargo test --release --test bugs -- --nocapture`).

use dst::engine::EngineRunner;
use dst::scenario::Scenario;
use dst::world::{RunOptions, run_scenario};
use dst::zoo::{exhibit, first_failure, hunt};
use plane::config::Bug;

/// The most seeds a bug may need.
const SEEDS: u64 = 1_000;

fn jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Hunts `bug`, asserts it was caught as expected, and checks that the
/// bug-free build passes every seed up to the one that caught it.
fn caught_within_the_seed_budget(bug: Bug) {
    let row =
        hunt(EngineRunner::SIM, bug, 0..SEEDS, jobs()).unwrap_or_else(|e| panic!("{bug}: {e}"));
    let expected = row.exhibit.property;
    let catch = row.caught.as_ref().unwrap_or_else(|| {
        panic!(
            "{bug}: not caught in {SEEDS} seeds of {}",
            row.exhibit.scenario
        )
    });
    println!(
        "{bug}: caught by `{}` after {} seeds of {} (seed {})",
        catch.property, catch.seeds_to_failure, row.exhibit.scenario, catch.seed
    );
    assert!(
        catch.failed.iter().any(|p| p == expected),
        "{bug}: expected `{expected}` to fire, got {:?}: {}",
        catch.failed,
        catch.message
    );
    assert!(
        catch.artifact.scenario.bugs == vec![bug],
        "{bug}: the artifact replays with the bug planted"
    );
    let shrunk = catch
        .shrunk
        .as_ref()
        .expect("a failure, not a crash, is shrunk");
    assert!(
        shrunk.one_minimal,
        "{bug}: shrinking {} faults stopped at {} without reaching 1-minimal",
        shrunk.faults_before, shrunk.faults_after
    );
    assert!(shrunk.faults_after <= shrunk.faults_before);
    // Check the shrinker's claim independently: the minimal fault list still
    // breaks the expected property, and without any one of its faults the
    // property holds.
    let minimal = &shrunk.artifact;
    let violates = |faults: Vec<sim::ScheduledFault>| {
        let options = RunOptions {
            seed: minimal.seed,
            faults: Some(faults),
            ..RunOptions::default()
        };
        run_scenario(&minimal.scenario, &options)
            .expect("the reproducer runs")
            .check
            .violates(expected)
    };
    assert!(
        violates(minimal.faults.clone()),
        "{bug}: the reproducer breaks `{expected}`"
    );
    for skip in 0..minimal.faults.len() {
        let mut fewer = minimal.faults.clone();
        fewer.remove(skip);
        assert!(
            !violates(fewer),
            "{bug}: still broken without fault {skip}: not 1-minimal"
        );
    }

    let clean = Scenario::load(row.exhibit.scenario).expect("the scenario loads");
    assert!(clean.bugs.is_empty());
    if let Some((seed, verdict)) =
        first_failure(EngineRunner::SIM, &clean, 0..catch.seed + 1, jobs()).expect("runs")
    {
        panic!(
            "{bug}: with the bug off, {} seed {seed} fails too: {verdict:?}",
            row.exhibit.scenario
        );
    }
}

#[test]
fn ledger_check_then_act_commits_one_key_twice() {
    caught_within_the_seed_budget(Bug::LedgerCheckThenAct);
}

#[test]
fn side_effect_before_ledger_charges_for_nothing() {
    caught_within_the_seed_budget(Bug::SideEffectBeforeLedger);
}

#[test]
fn no_fencing_lets_a_delayed_action_start_a_second_instance() {
    caught_within_the_seed_budget(Bug::NoFencing);
}

#[test]
fn lease_without_drift_margin_leaves_two_running_holders() {
    caught_within_the_seed_budget(Bug::LeaseNoDriftMargin);
}

#[test]
fn lease_on_the_wall_clock_outlives_the_store_lease_after_a_step_back() {
    caught_within_the_seed_budget(Bug::LeaseOnWallClock);
}

#[test]
fn acting_after_failed_renewals_leaves_two_running_holders() {
    caught_within_the_seed_budget(Bug::ActAfterRenewFailure);
}

#[test]
fn edge_triggered_reconciliation_never_converges_after_a_lost_notification() {
    caught_within_the_seed_budget(Bug::EdgeTriggered);
}

#[test]
fn a_work_queue_without_dedup_starts_one_instance_twice() {
    caught_within_the_seed_budget(Bug::NoWorkqueueDedup);
}

#[test]
fn a_recomputed_replay_differs_from_the_first_answer() {
    caught_within_the_seed_budget(Bug::StaleReplayBody);
}

#[test]
fn modulo_sharding_moves_shards_over_budget() {
    caught_within_the_seed_budget(Bug::ModuloSharding);
}

#[test]
fn every_bug_has_a_test_here() {
    // A new bug must get its own test above (and a scenario that exposes
    // it): this list fails to match until it does.
    let tested = [
        Bug::LedgerCheckThenAct,
        Bug::SideEffectBeforeLedger,
        Bug::NoFencing,
        Bug::LeaseNoDriftMargin,
        Bug::LeaseOnWallClock,
        Bug::ActAfterRenewFailure,
        Bug::EdgeTriggered,
        Bug::NoWorkqueueDedup,
        Bug::StaleReplayBody,
        Bug::ModuloSharding,
    ];
    assert_eq!(tested, Bug::all());
    for bug in tested {
        assert!(!exhibit(bug).scenario.is_empty());
    }
}
