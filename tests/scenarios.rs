//! Every scenario in scenarios/, at a fixed seed: it passes every checker,
//! runs the same twice, and its Markdown report matches the reviewed
//! snapshot in reports/. A change of behaviour shows up as a snapshot diff.

use dst::report;
use dst::scenario::{Scenario, list_scenarios};
use dst::sweep::Outcome;
use dst::world::{RunOptions, run_scenario};

const SEED: u64 = 42;

#[test]
fn every_scenario_passes_at_the_fixed_seed_twice_with_one_trace_hash_and_matches_its_report() {
    let names = list_scenarios();
    assert!(names.len() >= 7, "the scenario library: {names:?}");
    for name in names {
        let scenario = Scenario::load(&name).unwrap_or_else(|e| panic!("{e}"));
        let options = RunOptions {
            seed: SEED,
            faults: None,
            keep_trace: false,
            buggify_redraws_faults: false,
        };
        let first = run_scenario(&scenario, &options).expect("runs");
        let second = run_scenario(&scenario, &options).expect("runs");
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "{name}: same seed, same trace"
        );
        assert_eq!(
            Outcome::of(&first),
            Outcome::Pass,
            "{name}: {:?}",
            first.check.first_violation()
        );
        let rerun = format!("cargo run --release -- simulate --scenario {name} --seed {SEED}");
        let markdown = report::markdown(&first, &rerun);
        insta::with_settings!({
            snapshot_path => "../reports",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name.clone(), markdown);
        });
    }
}

#[test]
fn the_json_report_carries_the_same_verdicts_as_the_markdown() {
    let scenario = Scenario::load("baseline").expect("loads");
    let result = run_scenario(
        &scenario,
        &RunOptions {
            seed: 7,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    let json: serde_json::Value = serde_json::from_str(&report::json(&result)).expect("valid JSON");
    let properties = json["properties"].as_array().expect("properties");
    assert_eq!(properties.len(), result.check.verdicts.len());
    let markdown = report::markdown(&result, "rerun");
    for property in properties {
        let name = property["property"].as_str().expect("name");
        let verdict = property["verdict"].as_str().expect("verdict");
        assert!(
            markdown.contains(&format!("| `{name}` | {verdict} |")),
            "{name}"
        );
    }
    assert_eq!(json["trace_hash"], format!("{:#018x}", result.trace_hash));
}

/// Issue 3's bar: under partitions, drops, duplicates, pauses, crashes,
/// reboots and drift, every resource converges after the faults heal and no side effect
/// runs twice, over 500 seeds. The chaos scenario has all of them.
#[test]
fn five_hundred_chaos_seeds_converge_after_healing_with_no_side_effect_twice() {
    // Not swarm mode: every seed gets every fault kind at once (at least
    // one of each), on top of drops, duplicates, a slow tail and drift.
    let mut scenario = Scenario::load("chaos").expect("loads");
    scenario.faults.swarm = false;
    for rate in [
        &mut scenario.faults.partition,
        &mut scenario.faults.partition_one_way,
        &mut scenario.faults.clog,
        &mut scenario.faults.crash,
        &mut scenario.faults.reboot,
        &mut scenario.faults.pause,
        &mut scenario.faults.clock_jump,
    ] {
        rate.count_min = 1;
    }
    scenario.validate().expect("still a valid scenario");
    let mut faults_seen = std::collections::BTreeSet::new();
    for seed in 0..500 {
        let result = run_scenario(
            &scenario,
            &RunOptions {
                seed,
                ..RunOptions::default()
            },
        )
        .expect("runs");
        for property in [
            "always.one_charge_per_key",
            "always.one_resource_per_key",
            "always.action_runs_once",
            "always.one_instance_per_ordinal",
            "eventually.converged",
            "eventually.keys_finished",
        ] {
            assert!(
                !result.check.violates(property),
                "seed {seed}: {property}: {:?}",
                result.check.first_violation()
            );
        }
        assert_eq!(Outcome::of(&result), Outcome::Pass, "seed {seed}");
        assert_eq!(
            result.stats.faults_by_kind.len(),
            7,
            "seed {seed}: every kind: {:?}",
            result.stats.faults_by_kind
        );
        faults_seen.extend(result.stats.faults_by_kind.keys().cloned());
    }
    for kind in [
        "partition",
        "partition_one_way",
        "clog",
        "crash",
        "reboot",
        "pause",
        "clock_jump",
    ] {
        assert!(
            faults_seen.contains(kind),
            "the sweep exercised {kind}: {faults_seen:?}"
        );
    }
}

/// The largest topology the validator allows (every role at its maximum,
/// and the most shards its resync bound lets through) finishes its default
/// run and is judged, rather than stopping at the event limit.
#[test]
fn the_largest_topology_allowed_finishes_its_default_run() {
    let text = "name = \"largest\"\ndescription = \"every role at its maximum\"\n\
        [topology]\napis = 16\ncontrollers = 32\nworkers = 32\nclients = 16\n\
        [controller]\nshard_count = 1502\n";
    let scenario = Scenario::parse(text, "largest.toml").expect("the validator allows it");
    let result = run_scenario(
        &scenario,
        &RunOptions {
            seed: 1,
            ..RunOptions::default()
        },
    )
    .expect("runs");
    assert!(
        !result.stop.is_limit(),
        "stopped at {:?} after {} events",
        result.stop,
        result.stats.events
    );
    assert_eq!(
        result.check.first_violation(),
        None,
        "a default run of the largest topology passes"
    );
}
