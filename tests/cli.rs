//! The command line as a user meets it: defaults that work, clear errors
//! with distinct exit codes, sweeps that survive being stopped, replay and
//! shrink of a real failure.

mod common;

use common::{controlplane, text};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    common::scratch("cli", name)
}

#[test]
fn simulate_with_no_arguments_runs_baseline_and_passes() {
    let output = controlplane(&["simulate"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("# `baseline` seed 42: PASS"), "{stdout}");
    assert!(stdout.contains("| `always.one_charge_per_key` | holds |"));
}

#[test]
fn simulate_json_is_valid_json_with_the_outcome() {
    let output = controlplane(&["simulate", "--json", "--seed", "3"]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["outcome"], "pass");
    assert_eq!(json["seed"], 3);
}

#[test]
fn check_determinism_reports_one_trace_hash() {
    let output = controlplane(&[
        "simulate",
        "--scenario",
        "chaos",
        "--seed",
        "9",
        "--check-determinism",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stderr).contains("determinism: both runs gave trace hash"));
}

#[test]
fn an_unknown_scenario_is_bad_input_naming_the_file_and_the_known_ones() {
    let output = controlplane(&["simulate", "--scenario", "no-such-scenario"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no-such-scenario.toml"), "{stderr}");
    assert!(
        stderr.contains("baseline"),
        "lists known scenarios: {stderr}"
    );
}

#[test]
fn a_scenario_with_a_bad_key_is_bad_input_naming_file_and_key() {
    let dir = scratch("bad-key");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "name = \"x\"\ndescription = \"y\"\n[network]\ndrop_ppm = 9000000\n",
    )
    .unwrap();
    let output = controlplane(&["simulate", "--scenario", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(
        stderr.contains("network.drop_ppm = 9000000 is out of range"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_seed_range_is_bad_input() {
    let output = controlplane(&["sweep", "--seeds", "10..5"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("START must be below END"));
}

fn result_lines(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("results.jsonl")).expect("results");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn sweep_results_are_the_same_whatever_the_number_of_jobs() {
    let one = scratch("jobs-1");
    let two = scratch("jobs-2");
    for (dir, jobs) in [(&one, "1"), (&two, "2")] {
        let output = controlplane(&[
            "sweep",
            "--scenario",
            "gc-pause",
            "--seeds",
            "0..12",
            "--jobs",
            jobs,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    }
    assert_eq!(result_lines(&one).len(), 12);
    assert_eq!(result_lines(&one), result_lines(&two));
}

#[test]
fn resume_skips_done_seeds_and_survives_a_torn_last_line() {
    let dir = scratch("resume");
    let out = dir.to_str().unwrap();
    let first = controlplane(&["sweep", "--seeds", "0..5", "--out", out]);
    assert_eq!(first.status.code(), Some(0));
    // A sweep killed mid-write leaves half a line.
    let path = dir.join("results.jsonl");
    let mut content = std::fs::read_to_string(&path).unwrap();
    content.push_str("{\"scenario\":\"baseline\",\"se");
    std::fs::write(&path, content).unwrap();
    let resumed = controlplane(&[
        "sweep", "--seeds", "0..8", "--out", out, "--resume", "--json",
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&resumed.stdout).expect("JSON summary");
    assert_eq!(summary["seeds"], 8, "5 resumed + 3 new");
    assert_eq!(summary["runs"], 3, "only the new seeds ran");
}

#[test]
fn shard_k_of_n_runs_a_disjoint_part() {
    let dir = scratch("shards");
    let mut seeds = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let out = dir.join(shard.replace('/', "-"));
        let output = controlplane(&[
            "sweep",
            "--seeds",
            "0..9",
            "--shard",
            shard,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(0));
        for line in result_lines(&out) {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            seeds.push(value["seed"].as_u64().unwrap());
        }
    }
    seeds.sort_unstable();
    assert_eq!(seeds, (0..9).collect::<Vec<_>>());
}

#[test]
fn a_failing_seed_gets_an_artifact_that_replays_and_shrinks_to_one_fault() {
    let dir = scratch("shrink");
    let out = dir.to_str().unwrap();
    let sweep = controlplane(&[
        "sweep",
        "--scenario",
        "tests/fixtures/tight-bound.toml",
        "--seeds",
        "0..1",
        "--out",
        out,
    ]);
    assert_eq!(
        sweep.status.code(),
        Some(4),
        "a liveness failure: {}",
        text(&sweep.stdout)
    );
    let artifact = dir.join("failures").join("tight-bound-seed-0.json");
    assert!(artifact.exists());

    let replay = controlplane(&["replay", artifact.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(4));
    assert!(
        text(&replay.stderr).contains("matches the artifact"),
        "{}",
        text(&replay.stderr)
    );
    assert!(
        text(&replay.stdout).contains(">>"),
        "shows the trace around the violation"
    );

    let shrink = controlplane(&["shrink", artifact.to_str().unwrap()]);
    assert_eq!(shrink.status.code(), Some(0), "{}", text(&shrink.stderr));
    let stdout = text(&shrink.stdout);
    assert!(stdout.contains("still fails with 1 of"), "{stdout}");
    assert!(stdout.contains("(1-minimal)"), "{stdout}");
    let minimal = dir.join("failures").join("tight-bound-seed-0.min.json");
    let replay_min = controlplane(&["replay", minimal.to_str().unwrap()]);
    assert_eq!(replay_min.status.code(), Some(4));

    // An artifact from before the trace encoding was recorded was hashed
    // under encoding 1: its hash is not compared, and the replay says why
    // while it still judges the property.
    let mut older: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&minimal).unwrap()).unwrap();
    older.as_object_mut().unwrap().remove("trace_encoding");
    let older_path = dir.join("encoding-1.json");
    std::fs::write(&older_path, older.to_string()).unwrap();
    let replay_older = controlplane(&["replay", older_path.to_str().unwrap()]);
    assert_eq!(replay_older.status.code(), Some(4));
    let stderr = text(&replay_older.stderr);
    assert!(
        stderr.contains("computed under encoding 1, so the two do not compare"),
        "{stderr}"
    );
    assert!(!stderr.contains("differs from the artifact"), "{stderr}");

    // A fault naming a node the topology lacks is bad input, not a crash.
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&minimal).unwrap()).unwrap();
    edited["faults"][0]["side_a"] = serde_json::json!([999]);
    let bad = dir.join("bad-node.json");
    std::fs::write(&bad, edited.to_string()).unwrap();
    for command in ["replay", "shrink"] {
        let output = controlplane(&[command, bad.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
        assert!(
            text(&output.stderr).contains("bad-node.json: faults[0] names node 999"),
            "{}",
            text(&output.stderr)
        );
    }
}

#[test]
fn an_engine_not_built_in_is_bad_input_saying_how_to_run_it() {
    let dir = scratch("engine-not-built");
    let out = dir.to_str().unwrap();
    for (command, args) in [
        ("simulate", vec!["simulate"]),
        ("sweep", vec!["sweep", "--seeds", "0..1", "--out", out]),
        (
            "sweep",
            vec!["sweep", "--seeds", "0..1", "--guided", "--out", out],
        ),
        (
            "sweep",
            vec!["sweep", "--seeds", "0..1", "--bug", "all", "--out", out],
        ),
    ] {
        let output = controlplane(&[&args[..], &["--engine", "madsim"]].concat());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&output.stderr),
            format!(
                "error: engine madsim is not built into this binary: run it with ./madsim/run \
                 {command} ... (see README, \"Engines\")\n"
            ),
            "{args:?}"
        );
        assert!(output.stdout.is_empty(), "nothing ran: {args:?}");
    }
}

#[test]
fn an_unknown_engine_is_bad_input_listing_the_allowed_ones() {
    for args in [
        &["simulate"][..],
        &["sweep", "--seeds", "0..1"],
        &["replay", "x.json"],
        &["shrink", "x.json"],
    ] {
        let output = controlplane(&[args, &["--engine", "bogus"]].concat());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("unknown engine \"bogus\": allowed sim, turmoil, madsim"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn reports_name_the_engine_and_sim_is_the_default() {
    let default = controlplane(&["simulate", "--seed", "3"]);
    let explicit = controlplane(&["simulate", "--seed", "3", "--engine", "sim"]);
    assert_eq!(default.status.code(), Some(0));
    assert_eq!(default.stdout, explicit.stdout, "the same run");
    let stdout = text(&default.stdout);
    assert!(stdout.contains("\n| engine | sim |\n"), "{stdout}");
    assert!(
        stdout.contains("Rerun: `cargo run --release -- simulate --scenario baseline --seed 3`"),
        "no flag for the default: {stdout}"
    );
    let json = controlplane(&["simulate", "--seed", "3", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json["engine"], "sim");
}

#[test]
fn replay_and_shrink_run_on_the_artifact_s_engine_unless_told_otherwise() {
    let dir = scratch("artifact-engine");
    let sweep = controlplane(&[
        "sweep",
        "--scenario",
        "tests/fixtures/tight-bound.toml",
        "--seeds",
        "0..1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(sweep.status.code(), Some(4), "{}", text(&sweep.stdout));
    let written = dir.join("failures").join("tight-bound-seed-0.json");
    let mut artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert!(
        artifact.get("engine").is_none(),
        "sim's artifacts name none"
    );
    artifact["engine"] = serde_json::json!("madsim");
    let madsim = dir.join("madsim.json");
    std::fs::write(&madsim, artifact.to_string()).unwrap();
    let path = madsim.to_str().unwrap();
    for command in ["replay", "shrink"] {
        let output = controlplane(&[command, path]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(
            text(&output.stderr).contains(&format!("run it with ./madsim/run {command} ...")),
            "{command}: {}",
            text(&output.stderr)
        );
    }
    let replay = controlplane(&["replay", path, "--engine", "sim"]);
    assert_eq!(replay.status.code(), Some(4), "{}", text(&replay.stderr));
    let stderr = text(&replay.stderr);
    assert!(
        stderr.contains("on sim; the artifact's is madsim's, so the two do not compare"),
        "{stderr}"
    );
    let stdout = text(&replay.stdout);
    assert!(stdout.contains("| engine | sim |"), "{stdout}");
    assert!(
        stdout.contains(&format!("Rerun: `cargo run --release -- replay {path}`")),
        "{stdout}"
    );
    let shrink = controlplane(&["shrink", path, "--engine", "sim"]);
    assert_eq!(shrink.status.code(), Some(0), "{}", text(&shrink.stderr));
    let stdout = text(&shrink.stdout);
    assert!(stdout.contains(" runs on sim)"), "{stdout}");
    let minimal: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("madsim.min.json")).expect("written"),
    )
    .unwrap();
    assert!(
        minimal.get("engine").is_none(),
        "shrunk on sim, so sim's: {minimal}"
    );
}

#[test]
fn a_corrupt_artifact_is_bad_input_naming_the_file() {
    let dir = scratch("corrupt");
    let file = dir.join("broken.json");
    std::fs::write(&file, "{\"format\": 1}").unwrap();
    let output = controlplane(&["replay", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("broken.json: not a failure artifact"));
}

#[test]
fn help_documents_the_exit_codes() {
    let output = controlplane(&["simulate", "--help"]);
    let stdout = text(&output.stdout);
    for line in [
        "3  safety violation",
        "4  liveness failure",
        "5  crash",
        "2  bad input",
    ] {
        assert!(stdout.contains(line), "{line}");
    }
}
