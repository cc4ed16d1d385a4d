//! Scenario targets (`[expect] reaches`): a sweep in which no seed reaches
//! a path the scenario is written to reach fails with exit 9 naming it, on
//! every kind of sweep; a shard only shows it and `merge` judges the whole;
//! one seed reports it without failing; a name that is no path is bad
//! input.

mod common;

use common::{controlplane, text};
use std::path::{Path, PathBuf};

const FIXTURE: &str = "tests/fixtures/unreachable-target.toml";

fn scratch(name: &str) -> PathBuf {
    common::scratch("targets", name)
}

fn path(dir: &Path) -> &str {
    dir.to_str().expect("UTF-8")
}

/// Runs `controlplane ARGS`; returns exit code, stdout and stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = controlplane(args);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// The stderr line a missed target prints.
const MISSED: &str = "target missed: scenario `unreachable-target` is written to reach \
                      `stale_token_rejected`";

#[test]
fn a_sweep_that_never_reaches_a_target_exits_9_naming_it() {
    let out = scratch("plain");
    let (code, stdout, stderr) = run(&[
        "sweep",
        "--scenario",
        FIXTURE,
        "--seeds",
        "0..3",
        "--out",
        path(&out),
    ]);
    assert_eq!(code, Some(9), "{stdout}{stderr}");
    assert!(stderr.contains(MISSED), "{stderr}");
    assert!(
        !stderr.contains("`in_flight_409` (its"),
        "reached: {stderr}"
    );
    assert!(
        stdout.contains("| unreachable-target: `stale_token_rejected` | 0 | **MISSED** |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| unreachable-target: `in_flight_409` | 3 | reached |"),
        "{stdout}"
    );

    let (code, stdout, stderr) = run(&[
        "sweep",
        "--scenario",
        FIXTURE,
        "--seeds",
        "0..3",
        "--out",
        path(&out),
        "--json",
    ]);
    assert_eq!(code, Some(9), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        summary["targets"],
        serde_json::json!([
            {"scenario": "unreachable-target", "path": "in_flight_409", "seeds": 3, "swept": 3},
            {"scenario": "unreachable-target", "path": "stale_token_rejected", "seeds": 0, "swept": 3},
        ])
    );
}

#[test]
fn a_guided_sweep_and_a_turmoil_sweep_judge_targets_too() {
    let out = scratch("guided");
    let (code, _, stderr) = run(&[
        "sweep",
        "--guided",
        "--scenario",
        FIXTURE,
        "--seeds",
        "0..2",
        "--out",
        path(&out),
    ]);
    assert_eq!(code, Some(9), "{stderr}");
    assert!(stderr.contains(MISSED), "{stderr}");

    let out = scratch("turmoil");
    let (code, _, stderr) = run(&[
        "sweep",
        "--engine",
        "turmoil",
        "--scenario",
        FIXTURE,
        "--seeds",
        "0..1",
        "--out",
        path(&out),
    ]);
    assert_eq!(code, Some(9), "{stderr}");
    assert!(stderr.contains(MISSED), "{stderr}");
}

#[test]
fn a_failing_seed_outranks_a_missed_target() {
    let out = scratch("outranked");
    // The planted bug fails some of these faultless seeds (a liveness
    // failure): their exit code wins, and the missed target is still named.
    let (code, stdout, stderr) = run(&[
        "sweep",
        "--scenario",
        FIXTURE,
        "--bug",
        "ledger-check-then-act",
        "--seeds",
        "0..3",
        "--out",
        path(&out),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    if summary["passed"] == summary["seeds"] {
        panic!("the planted bug was expected to fail a seed: {summary}");
    }
    assert_eq!(code, Some(4), "{summary}\n{stderr}");
    assert!(stderr.contains(MISSED), "{stderr}");
}

#[test]
fn a_shard_only_shows_its_targets_and_merge_judges_them_over_all_shards() {
    let dir = scratch("shards");
    let shards: Vec<PathBuf> = (0..2).map(|k| dir.join(format!("shard-{k}"))).collect();
    for (k, out) in shards.iter().enumerate() {
        let shard = format!("{k}/2");
        let (code, stdout, stderr) = run(&[
            "sweep",
            "--scenario",
            FIXTURE,
            "--seeds",
            "0..4",
            "--shard",
            &shard,
            "--out",
            path(out),
        ]);
        assert_eq!(code, Some(0), "another shard may reach it: {stderr}");
        assert!(!stderr.contains("target missed"), "{stderr}");
        assert!(
            stdout.contains(
                "| unreachable-target: `stale_token_rejected` | 0 | not reached in this shard |"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains("judged over all shards by `merge`"),
            "{stdout}"
        );
    }
    let merged = dir.join("merged");
    let (code, stdout, stderr) = run(&[
        "merge",
        "--out",
        path(&merged),
        path(&shards[0]),
        path(&shards[1]),
    ]);
    assert_eq!(code, Some(9), "{stdout}{stderr}");
    assert!(stderr.contains(MISSED), "{stderr}");
    assert!(
        stdout.contains("| unreachable-target: `in_flight_409` | 4 | reached |"),
        "{stdout}"
    );
}

#[test]
fn one_seed_reports_its_targets_without_failing_on_them() {
    let (code, _, stderr) = run(&["simulate", "--scenario", FIXTURE, "--seed", "0"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("targets: `in_flight_409` reached (")
            && stderr.contains("`stale_token_rejected` not reached"),
        "{stderr}"
    );
}

#[test]
fn a_target_that_is_no_sometimes_path_is_bad_input_naming_the_file_the_key_and_the_paths() {
    let dir = scratch("unknown");
    let file = dir.join("typo.toml");
    let fixture = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE))
        .expect("fixture");
    std::fs::write(
        &file,
        fixture.replace("\"stale_token_rejected\"", "\"stale_token_rejectd\""),
    )
    .expect("writes");
    for command in ["simulate", "sweep"] {
        let mut args = vec![command, "--scenario", path(&file)];
        if command == "sweep" {
            args.extend_from_slice(&["--seeds", "0..1", "--out", path(&dir)]);
        }
        let (code, _, stderr) = run(&args);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(path(&file))
                && stderr.contains(
                    "expect.reaches[1] = \"stale_token_rejectd\" is not a sometimes-path"
                )
                && stderr.contains("allowed failover, stale_token_rejected, replay_served"),
            "{stderr}"
        );
    }
}

#[test]
fn a_missed_target_counts_the_seeds_of_its_own_scenario() {
    let out = scratch("own-seeds");
    let (code, _, stderr) = run(&[
        "sweep",
        "--scenario",
        FIXTURE,
        "--scenario",
        "baseline",
        "--seeds",
        "0..3",
        "--out",
        path(&out),
    ]);
    assert_eq!(code, Some(9), "{stderr}");
    // Six seeds ran, three of them of the scenario with the target.
    assert!(
        stderr.contains(&format!(
            "{MISSED} (its [expect] reaches), and none of the 3 seeds did"
        )),
        "{stderr}"
    );
}
