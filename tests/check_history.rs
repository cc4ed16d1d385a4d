//! `controlplane check --history DIR` as a user meets it: a simulated run
//! written out as a real host writes its data directory, judged with the
//! exit codes of `simulate`, and bad directories refused in one line that
//! names the file.

mod common;

use std::path::{Path, PathBuf};

use common::{controlplane, text};
use dst::real::write_simulated_history;
use dst::scenario::Scenario;
use dst::world::{RunOptions, run_scenario};
use plane::config::Bug;

/// `scenario` seed `seed` (with `bugs`) written to a fresh directory.
fn history(name: &str, scenario: &str, seed: u64, bugs: &[Bug]) -> PathBuf {
    let dir = common::scratch("check-history", name);
    let mut scenario = Scenario::load(scenario).expect("loads");
    for &bug in bugs {
        scenario.plant(bug);
    }
    let options = RunOptions {
        seed,
        keep_trace: true,
        ..RunOptions::default()
    };
    let result = run_scenario(&scenario, &options).expect("runs");
    write_simulated_history(&dir, &scenario, &result).expect("writes");
    dir
}

fn check(dir: &Path, flags: &[&str]) -> std::process::Output {
    let mut args = vec!["check", "--history", dir.to_str().expect("UTF-8 path")];
    args.extend_from_slice(flags);
    controlplane(&args)
}

#[test]
fn a_clean_history_passes_and_says_what_it_did_not_judge() {
    let dir = history("clean", "baseline", 1, &[]);
    let output = check(&dir, &[]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.starts_with("# History of `"), "{stdout}");
    assert!(stdout.contains(": PASS"), "{stdout}");
    assert!(stdout.contains("| `always.one_charge_per_key` | holds | billing's charges |"));
    assert!(stdout.contains("| `always.one_active_holder` | not judged: "));
    assert!(stdout.contains("| `eventually.converged` | not judged: "));
}

#[test]
fn a_quiet_history_is_judged_at_its_end() {
    let dir = history("quiet", "baseline", 1, &[]);
    let output = check(&dir, &["--quiet", "--liveness-bound-ms", "10000", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["outcome"], "pass");
    assert_eq!(json["quiet"], true);
    let converged = json["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["property"] == "eventually.converged")
        .expect("listed");
    assert_eq!(converged["judgement"], "holds");
}

#[test]
fn a_planted_bug_in_the_history_exits_as_a_safety_violation() {
    let dir = history("no-fencing", "delayed-actions", 9, &[Bug::NoFencing]);
    let output = check(&dir, &[]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains(": SAFETY VIOLATION"), "{stdout}");
    assert!(
        stdout.contains("| `always.one_instance_per_ordinal` | **VIOLATED**"),
        "{stdout}"
    );
    assert!(
        stdout.contains("no-fencing"),
        "the planted bug is named: {stdout}"
    );
}

#[test]
fn a_liveness_failure_at_the_end_of_a_quiet_history_exits_4() {
    let dir = history(
        "side-effect",
        "idempotency-storm",
        2,
        &[Bug::SideEffectBeforeLedger],
    );
    let output = check(&dir, &["--quiet", "--liveness-bound-ms", "20000"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("| `eventually.keys_finished` | **VIOLATED**"),
        "{stdout}"
    );
}

#[test]
fn a_missing_directory_is_bad_input_in_one_line() {
    let dir = common::scratch("check-history", "missing").join("nowhere");
    let output = check(&dir, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nowhere: no such directory"), "{stderr}");
}

#[test]
fn a_missing_cluster_file_is_bad_input_naming_it() {
    let dir = common::scratch("check-history", "no-cluster");
    let output = check(&dir, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("cluster.json: missing"), "{stderr}");
}

#[test]
fn a_malformed_middle_line_is_bad_input_naming_file_and_line() {
    let dir = history("malformed", "baseline", 1, &[]);
    let path = dir.join("billing").join("history.jsonl");
    let original = std::fs::read_to_string(&path).expect("reads");
    let mut lines: Vec<&str> = original.lines().collect();
    lines[1] = "{\"node\": 1, \"boot\": 0";
    std::fs::write(&path, lines.join("\n") + "\n").expect("writes");
    let output = check(&dir, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("billing/history.jsonl: line 2: not a history line"),
        "{stderr}"
    );
}

#[test]
fn a_truncated_last_line_is_tolerated_and_reported() {
    let dir = history("truncated", "baseline", 1, &[]);
    let path = dir.join("store").join("history.jsonl");
    let mut text_now = std::fs::read_to_string(&path).expect("reads");
    let lines = text_now.lines().count();
    text_now.push_str("{\"node\":0,\"boot\":0,\"seq\":99999,\"mono_");
    std::fs::write(&path, text_now).expect("writes");
    let output = check(&dir, &[]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("`store/history.jsonl` line {}", lines + 1)),
        "{stdout}"
    );
}
