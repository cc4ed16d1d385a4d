//! The command line on inputs it must refuse or report honestly: scheduled
//! faults checked when the scenario loads (names, ranges, fields that do
//! not apply, crashes and reboots that never restart), runs that cannot
//! end before the simulator's time limit, store limits that refuse what
//! the nodes need, artifacts checked as strictly as scenarios, input files
//! capped in size and required to be UTF-8, parse errors in the words of
//! the file, a scenario repeated in a sweep, file-safe scenario names, a
//! panic while shrinking, the exit code of a sweep with several kinds of
//! failure, and the commands and node names a report prints.

mod common;

use common::{controlplane, text};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    common::scratch("cli_input", name)
}

fn write(dir: &Path, file: &str, content: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, content).expect("writes");
    path.to_str().expect("utf-8 path").to_string()
}

const HEADER: &str = "name = \"t\"\ndescription = \"d\"\n";

/// A scenario file with one `[[schedule]]` entry at 1 s.
fn with_schedule(dir: &Path, entry: &str) -> String {
    write(
        dir,
        "s.toml",
        &format!("{HEADER}[[schedule]]\nat_ms = 1_000\n{entry}"),
    )
}

/// `simulate` and `sweep` both refuse the file with exit 2 and a message
/// starting with `FILE: expected`.
fn refused_on_load(dir: &Path, file: &str, expected: &str) {
    let out = dir.join("out");
    for args in [
        vec!["simulate", "--scenario", file],
        vec![
            "sweep",
            "--scenario",
            file,
            "--seeds",
            "0..2",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let output = controlplane(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}: {expected}")),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_scheduled_crash_that_never_restarts_is_refused_on_load() {
    let dir = scratch("permanent-crash");
    let file = with_schedule(&dir, "kind = \"crash\"\nnode = \"store\"\n");
    refused_on_load(
        &dir,
        &file,
        "schedule[0].restart_after_ms is required for kind = \"crash\": a node that never comes back",
    );
}

#[test]
fn a_scheduled_reboot_that_never_comes_back_is_refused_on_load() {
    let dir = scratch("reboot-without-restart");
    let file = with_schedule(&dir, "kind = \"reboot\"\nnode = \"controller-0\"\n");
    refused_on_load(
        &dir,
        &file,
        "schedule[0].restart_after_ms is required for kind = \"reboot\": a reboot always comes back",
    );
}

#[test]
fn a_crash_given_a_duration_is_refused_naming_the_field_and_its_kinds() {
    let dir = scratch("crash-duration");
    let file = with_schedule(
        &dir,
        "kind = \"crash\"\nnode = \"store\"\nduration_ms = 5_000\n",
    );
    refused_on_load(
        &dir,
        &file,
        "schedule[0].duration_ms does not apply to kind = \"crash\": it applies to partition, partition_one_way, clog, pause",
    );
}

#[test]
fn an_unknown_scheduled_node_is_refused_on_load_for_simulate_and_sweep() {
    let dir = scratch("unknown-node");
    let file = with_schedule(
        &dir,
        "kind = \"pause\"\nnode = \"controler-1\"\nduration_ms = 500\n",
    );
    refused_on_load(
        &dir,
        &file,
        "schedule[0].node = \"controler-1\" is not a node: allowed store, billing, api-0 to api-1, controller-0 to controller-2",
    );
    assert!(
        !dir.join("out").join("results.jsonl").exists(),
        "no seed ran"
    );
}

#[test]
fn a_shard_holder_beyond_the_shard_count_is_refused_on_load() {
    let dir = scratch("holder-range");
    let file = with_schedule(
        &dir,
        "kind = \"partition\"\nside_a = [\"holder:shard-16\"]\nduration_ms = 500\n",
    );
    refused_on_load(
        &dir,
        &file,
        "schedule[0].side_a[0] = \"holder:shard-16\" is not a shard holder: allowed holder:shard-N with N in 0..=15",
    );
}

#[test]
fn an_overflowing_scheduled_duration_is_refused_on_load() {
    let dir = scratch("huge-duration");
    let file = with_schedule(
        &dir,
        "kind = \"pause\"\nnode = \"store\"\nduration_ms = 9_000_000_000_000_000_000\n",
    );
    refused_on_load(
        &dir,
        &file,
        "schedule[0].duration_ms = 9000000000000000000 is out of range: allowed 1..=3600000",
    );
}

#[test]
fn drawn_crashes_with_no_role_to_crash_are_refused_on_load() {
    let dir = scratch("no-crash-roles");
    let file = write(
        &dir,
        "s.toml",
        &format!(
            "{HEADER}[faults]\nwindow_end_ms = 10_000\ncrash = {{ count_min = 1, count_max = 1, duration_min_ms = 100, duration_max_ms = 100 }}\ncrash_roles = []\n"
        ),
    );
    refused_on_load(
        &dir,
        &file,
        "faults.crash.count_max = 1 needs at least 1 node(s) in faults.crash_roles",
    );
}

#[test]
fn a_scenario_name_that_could_leave_the_failures_directory_is_refused() {
    let dir = scratch("escaping-name");
    let file = write(
        &dir,
        "s.toml",
        "name = \"../../escaped\"\ndescription = \"d\"\n",
    );
    refused_on_load(
        &dir,
        &file,
        "name = \"../../escaped\" is not allowed: it names artifact files, so allowed is a lowercase letter or digit",
    );
}

/// A minimal failure artifact of a short run with these faults.
fn artifact(dir: &Path, file: &str, faults: &serde_json::Value) -> String {
    let artifact = serde_json::json!({
        "format": 1,
        "code_version": "test",
        "scenario": {
            "name": "t",
            "description": "d",
            "run": { "duration_ms": 2_000, "liveness_bound_ms": 1_000, "max_events": 5_000_000 },
            "client": { "workload_end_ms": 1_500 },
        },
        "seed": 1,
        "faults": faults,
        "property": "eventually.converged",
        "message": "m",
        "trace_hash": 0,
    });
    write(dir, file, &artifact.to_string())
}

/// `replay` and `shrink` both refuse the artifact with exit 2 and a
/// message starting with `FILE: expected`.
fn artifact_refused(file: &str, expected: &str) {
    for command in ["replay", "shrink"] {
        let output = controlplane(&[command, file]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {file}: {expected}")),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn an_artifact_whose_crash_never_heals_is_refused_like_a_scenario() {
    // Scenarios refuse such a crash; artifacts now do too, with the same
    // words, rather than replaying a run whose liveness cannot be judged.
    let dir = scratch("never-healed");
    let faults = serde_json::json!([
        { "at_ns": 1_000_000_000u64, "kind": "crash", "node": 0, "restart_after_ns": null }
    ]);
    let file = artifact(&dir, "never.json", &faults);
    artifact_refused(
        &file,
        "faults[0].restart_after_ns is required for kind = \"crash\": a node that never comes back",
    );
}

#[test]
fn artifact_fault_times_and_durations_are_bounded_like_scheduled_faults() {
    let dir = scratch("artifact-bounds");
    let at = serde_json::json!([
        { "at_ns": u64::MAX, "kind": "pause", "node": 0, "duration_ns": 5 }
    ]);
    artifact_refused(
        &artifact(&dir, "at.json", &at),
        "faults[0].at_ns = 18446744073709551615 is out of range: allowed 0..=2000000000 (within run.duration_ms)",
    );
    let long = serde_json::json!([
        { "at_ns": 0, "kind": "partition", "side_a": [0], "side_b": [1], "one_way": false, "duration_ns": u64::MAX }
    ]);
    artifact_refused(
        &artifact(&dir, "long.json", &long),
        "faults[0].duration_ns = 18446744073709551615 is out of range: allowed 0..=3600000000000",
    );
    // In range, but healing too late for the liveness phase to end
    // before the simulator's time limit.
    let late = serde_json::json!([
        { "at_ns": 1_000_000_000u64, "kind": "reboot", "node": 0, "restart_after_ns": 3_600_000_000_000u64 }
    ]);
    artifact_refused(
        &artifact(&dir, "late.json", &late),
        "faults: run.liveness_bound_ms = 1000 after faults[0] healing at 3601000000000 ns ends the run at 3602000 ms, past the simulator's time limit of 3600000 ms",
    );
}

#[test]
fn an_artifact_naming_an_unknown_property_is_refused() {
    let dir = scratch("artifact-property");
    let file = artifact(&dir, "a.json", &serde_json::json!([]));
    let renamed = std::fs::read_to_string(&file)
        .expect("reads")
        .replace("eventually.converged", "eventually.convergd");
    std::fs::write(&file, renamed).expect("writes");
    artifact_refused(
        &file,
        "property = \"eventually.convergd\" is not a property: allowed always.one_resource_per_key,",
    );
}

#[test]
fn an_artifact_field_of_the_wrong_type_is_named_without_rust_types() {
    let dir = scratch("artifact-types");
    let file = artifact(&dir, "a.json", &serde_json::json!([5]));
    artifact_refused(
        &file,
        "faults[0]: invalid type: integer `5`, expected an object with at_ns, kind (one of `partition`, `clog`, `crash`, `pause`, `clock_jump`, `reboot`, `degrade`, `clock_drift`) and the fields of that kind",
    );
}

#[test]
fn endless_and_non_utf8_input_files_are_refused_naming_the_file() {
    let zero = "/dev/zero";
    if Path::new(zero).exists() {
        // Without the cap this would read until memory ran out.
        for args in [
            vec!["replay", zero],
            vec!["shrink", zero],
            vec!["simulate", "--scenario", zero],
        ] {
            let output = controlplane(&args);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(
                stderr.contains("error: /dev/zero: is larger than the 16 MiB cap on input files (16777216 bytes)"),
                "{args:?}: {stderr}"
            );
        }
    }
    let dir = scratch("not-utf8");
    let path = dir.join("s.toml");
    std::fs::write(&path, b"name = \"t\"\ndescription = \"caf\xe9\"\n").expect("writes");
    let file = path.to_str().unwrap();
    refused_on_load(
        &dir,
        file,
        "is not UTF-8 text: invalid byte 0xe9 at byte 29 (line 2, column 19)",
    );
    let json = dir.join("a.json");
    std::fs::write(&json, b"{\"format\": \xff}").expect("writes");
    artifact_refused(
        json.to_str().unwrap(),
        "is not UTF-8 text: invalid byte 0xff at byte 11 (line 1, column 12)",
    );
}

#[test]
fn a_run_that_cannot_end_before_the_time_limit_is_refused_on_load() {
    let dir = scratch("time-limit");
    let file = write(
        &dir,
        "s.toml",
        &format!("{HEADER}[run]\nduration_ms = 3_000_000\nliveness_bound_ms = 700_000\n"),
    );
    refused_on_load(
        &dir,
        &file,
        "run.liveness_bound_ms = 700000 after run.duration_ms = 3000000 ends the run at 3700000 ms, past the simulator's time limit of 3600000 ms",
    );
}

#[test]
fn store_limits_that_refuse_the_nodes_leases_are_refused_on_load() {
    let dir = scratch("store-limits");
    let file = write(
        &dir,
        "s.toml",
        &format!(
            "{HEADER}[api]\nsession_ttl_ms = 1_000\nkeepalive_interval_ms = 300\n[store.limits]\nmin_ttl_ms = 1_500\n"
        ),
    );
    refused_on_load(
        &dir,
        &file,
        "store.limits.min_ttl_ms = 1500 is above api.session_ttl_ms = 1000: the store would refuse every API node's session lease; allowed store.limits.min_ttl_ms <= 1000",
    );
    let file = write(
        &dir,
        "s.toml",
        &format!("{HEADER}[store.limits]\nmax_leases = 2\n"),
    );
    refused_on_load(
        &dir,
        &file,
        "store.limits.max_leases = 2 is below the 27 leases the nodes hold at least",
    );
}

#[test]
fn a_table_of_the_wrong_type_is_named_with_its_fields_not_its_rust_type() {
    let dir = scratch("type-words");
    let file = write(&dir, "s.toml", &format!("{HEADER}[faults]\ncrash = 5\n"));
    refused_on_load(
        &dir,
        &file,
        "faults.crash: invalid type: integer `5`, expected a table with count_min, count_max, duration_min_ms, duration_max_ms (line 4, column 9)",
    );
}

#[test]
fn a_scenario_given_twice_to_sweep_runs_once_and_two_with_one_name_are_refused() {
    let dir = scratch("repeated-scenario");
    let file = write(
        &dir,
        "short.toml",
        "name = \"short\"\ndescription = \"d\"\n[run]\nduration_ms = 2_000\nliveness_bound_ms = 1_000\n[client]\nworkload_end_ms = 1_500\n",
    );
    let out = dir.join("out");
    let output = controlplane(&[
        "sweep",
        "--scenario",
        &file,
        "--scenario",
        &file,
        "--scenario",
        "baseline",
        "--scenario",
        &file,
        "--seeds",
        "0..2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let lines = std::fs::read_to_string(out.join("results.jsonl")).expect("results");
    let scenarios: Vec<String> = lines
        .lines()
        .map(|line| {
            let result: serde_json::Value = serde_json::from_str(line).expect("JSON");
            result["scenario"].as_str().expect("named").to_string()
        })
        .collect();
    assert_eq!(scenarios.len(), 4, "2 scenarios x 2 seeds: {lines}");
    assert_eq!(scenarios.iter().filter(|s| *s == "short").count(), 2);

    let other = write(
        &dir,
        "other.toml",
        "name = \"short\"\ndescription = \"another\"\n",
    );
    let output = controlplane(&[
        "sweep",
        "--scenario",
        &file,
        "--scenario",
        &other,
        "--seeds",
        "0..1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {other}: name = \"short\" is also the name of {file}, a different scenario"
        )),
        "{stderr}"
    );
}

#[test]
fn a_panic_while_shrinking_exits_as_a_crash_with_its_message() {
    // 65536 overlapping cuts of one link overflow the simulator's counter:
    // a panic in the code under test, reachable from an artifact.
    let dir = scratch("shrink-panic");
    let cut = serde_json::json!({
        "at_ns": 0, "kind": "partition", "side_a": [0], "side_b": [1],
        "one_way": true, "duration_ns": 1_000_000_000u64,
    });
    let faults = serde_json::Value::Array(vec![cut; 65_536]);
    let file = artifact(&dir, "panic.json", &faults);
    let output = controlplane(&["shrink", &file]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("crash: "), "{stderr}");
    assert!(
        stderr.contains("too many overlapping link faults"),
        "{stderr}"
    );
}

/// The store cut off until the safety phase ends, with 1 s to recover:
/// most seeds fail `eventually.*`.
const CUT_STORE: &str = "name = \"cut-store\"
description = \"the store cut off until the safety phase ends; 1 s to recover\"
[run]
duration_ms = 20_000
liveness_bound_ms = 1_000
[client]
workload_end_ms = 19_800
[[schedule]]
at_ms = 10_000
kind = \"partition\"
side_a = [\"store\"]
duration_ms = 10_000
";

/// `partition-leader` with a planted bug that acts after a failed renewal:
/// two running holders of one shard, a safety violation.
fn leader_bug(dir: &Path) -> String {
    let original = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/partition-leader.toml"),
    )
    .expect("reads");
    let renamed = original.replacen("name = \"partition-leader\"", "name = \"leader-bug\"", 1);
    write(
        dir,
        "leader-bug.toml",
        &format!("bugs = [\"act-after-renew-failure\"]\n{renamed}"),
    )
}

#[test]
fn a_sweep_with_safety_and_liveness_failures_exits_with_the_safety_code() {
    let dir = scratch("severity");
    let cut_store = write(&dir, "cut-store.toml", CUT_STORE);
    let leader_bug = leader_bug(&dir);
    let out = dir.join("out");
    let output = controlplane(&[
        "sweep",
        "--scenario",
        &cut_store,
        "--scenario",
        &leader_bug,
        "--seeds",
        "0..3",
        "--jobs",
        "2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(
        summary["outcomes"]["safety"].as_u64() > Some(0)
            && summary["outcomes"]["liveness"].as_u64() > Some(0),
        "the sweep has both kinds of failure: {summary}"
    );
    assert_eq!(output.status.code(), Some(3), "{summary}");
}

#[test]
fn violation_lines_and_shrunk_faults_name_nodes() {
    let dir = scratch("node-names");
    let leader_bug = leader_bug(&dir);
    let output = controlplane(&["simulate", "--scenario", &leader_bug, "--seed", "0"]);
    assert_eq!(output.status.code(), Some(3));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("- `")).collect();
    assert!(!lines.is_empty(), "{stdout}");
    for line in lines {
        assert!(line.contains(" on [controller-"), "{line}");
    }

    let cut_store = write(&dir, "cut-store.toml", CUT_STORE);
    let out = dir.join("out");
    let sweep = controlplane(&[
        "sweep",
        "--scenario",
        &cut_store,
        "--seeds",
        "0..1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(sweep.status.code(), Some(4), "{}", text(&sweep.stdout));
    let failure = out.join("failures").join("cut-store-seed-0.json");
    let shrink = controlplane(&["shrink", failure.to_str().unwrap()]);
    let stdout = text(&shrink.stdout);
    assert_eq!(shrink.status.code(), Some(0), "{}", text(&shrink.stderr));
    assert!(
        stdout.contains(": partition [store] | [billing, api-0, api-1, controller-0,"),
        "{stdout}"
    );
}

#[test]
fn the_json_rerun_command_names_the_scenario_path_bugs_and_the_artifact() {
    let dir = scratch("rerun");
    let file = write(
        &dir,
        "short.toml",
        "name = \"short\"\ndescription = \"d\"\n[run]\nduration_ms = 2_000\nliveness_bound_ms = 1_000\n[client]\nworkload_end_ms = 1_500\n",
    );
    let output = controlplane(&[
        "simulate",
        "--scenario",
        &file,
        "--seed",
        "5",
        "--bug",
        "no-fencing",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        json["rerun"],
        format!("cargo run --release -- simulate --scenario {file} --seed 5 --bug no-fencing")
    );

    let replayed = artifact(&dir, "a.json", &serde_json::json!([]));
    let output = controlplane(&["replay", &replayed, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        json["rerun"],
        format!("cargo run --release -- replay {replayed}")
    );
}

/// Runs `controlplane ARGS` and checks it exits `code` with `expected` on
/// stderr; returns stdout.
fn exits(args: &[&str], code: i32, expected: &str) -> String {
    let output = controlplane(args);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    text(&output.stdout)
}

#[test]
fn jobs_and_seeds_out_of_range_are_refused_saying_what_is_allowed() {
    let out = scratch("jobs").join("out");
    let out = out.to_str().unwrap();
    for jobs in ["0", "1025", "4294967296", "many"] {
        let args = ["sweep", "--seeds", "0..2", "--jobs", jobs, "--out", out];
        exits(&args, 2, "allowed an integer 1..=1024");
    }
    for seed in ["-1", "18446744073709551616", "x"] {
        let flag = format!("--seed={seed}");
        let args = ["simulate", &flag];
        exits(
            &args,
            2,
            "not a seed: allowed an integer 0..=18446744073709551615",
        );
    }
    let args = ["sweep", "--seeds", "0..99999999999999999999", "--out", out];
    exits(&args, 2, "allowed an integer 0..=18446744073709551615");
    // More jobs than seeds is fine: the sweep starts no idle threads.
    let output = controlplane(&["sweep", "--seeds", "0..2", "--jobs", "1024", "--out", out]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn all_scenarios_with_another_is_refused_rather_than_dropping_it() {
    let dir = scratch("all-and-more");
    let out = dir.join("out");
    let args = [
        "sweep",
        "--scenario",
        "all",
        "--scenario",
        "nope",
        "--seeds",
        "0..1",
        "--out",
        out.to_str().unwrap(),
    ];
    exits(
        &args,
        2,
        "--scenario all sweeps every scenario in scenarios/: give it alone",
    );
    assert!(!out.join("results.jsonl").exists(), "no seed ran");
}

#[test]
fn a_scenario_file_named_without_toml_or_a_directory_is_read_as_a_file() {
    let dir = scratch("bare-file");
    let baseline = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml"),
    )
    .expect("reads");
    let renamed = baseline.replacen("name = \"baseline\"", "name = \"bare\"", 1);
    write(&dir, "bare.json", &renamed);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["simulate", "--scenario", "bare.json", "--seed", "1"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(stdout.starts_with("# `bare` seed 1: PASS"), "{stdout}");
}

#[test]
fn a_story_of_an_unknown_property_is_refused_and_of_a_held_one_says_so() {
    let args = ["simulate", "--seed", "1", "--story", "always.nonexistent"];
    exits(
        &args,
        2,
        "no such property; allowed: always.one_resource_per_key,",
    );
    let args = [
        "simulate",
        "--scenario",
        "idempotency-storm",
        "--bug",
        "stale-replay-body",
        "--seed",
        "0",
        "--story",
        "eventually.converged",
    ];
    let stdout = exits(&args, 3, "");
    assert!(
        stdout.starts_with(
            "`eventually.converged` held in this run; the story of `always.replay_matches_first` follows.\n"
        ),
        "{stdout}"
    );
}

#[test]
fn an_output_file_that_cannot_be_written_is_refused_before_the_run() {
    let dir = scratch("outputs");
    let here = dir.to_str().unwrap();
    let missing = dir.join("no-such-dir").join("t.html");
    for flag in ["--timeline", "--perfetto"] {
        let args = ["simulate", "--seed", "1", flag, here];
        let stdout = exits(&args, 1, "is a directory: give the path of a file");
        assert!(stdout.is_empty(), "refused before the run: {stdout}");
        let args = ["simulate", "--seed", "1", flag, missing.to_str().unwrap()];
        exits(&args, 1, "does not exist");
    }
    // A failing seed's artifact, for replay and shrink.
    let out = dir.join("sweep");
    let sweep = controlplane(&[
        "sweep",
        "--scenario",
        "idempotency-storm",
        "--bug",
        "stale-replay-body",
        "--seeds",
        "0..1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(sweep.status.code(), Some(3), "{}", text(&sweep.stderr));
    let artifact = out.join("failures").join("idempotency-storm-seed-0.json");
    let artifact = artifact.to_str().unwrap();
    let before = std::fs::read(artifact).expect("reads");
    exits(
        &["replay", artifact, "--timeline", here],
        1,
        "is a directory",
    );
    exits(&["shrink", artifact, "--out", here], 1, "is a directory");
    exits(
        &["shrink", artifact, "--out", artifact],
        2,
        "that is the artifact being shrunk",
    );
    assert_eq!(
        std::fs::read(artifact).expect("reads"),
        before,
        "left as it was"
    );
}

#[test]
fn merge_inputs_that_are_not_sweep_outputs_are_bad_input() {
    let dir = scratch("merge-input");
    let file = write(&dir, "afile", "garbage");
    let shard = dir.join("shard");
    std::fs::create_dir_all(&shard).expect("creates");
    std::fs::write(shard.join("sweep.json"), [0xff_u8, 0xfe, 0x00]).expect("writes");
    let out = dir.join("out");
    let (out, shard) = (out.to_str().unwrap(), shard.to_str().unwrap());
    exits(
        &["merge", "--out", out, &file, shard],
        2,
        "afile/sweep.json: cannot read it",
    );
    exits(
        &["merge", "--out", out, shard, shard],
        2,
        "is not UTF-8 text",
    );
}

#[test]
fn lessons_into_a_file_is_refused_before_any_work() {
    let dir = scratch("lessons-file");
    let file = write(&dir, "pages", "");
    exits(
        &["lessons", "--out", &file, "--no-screenshots"],
        1,
        "is not a directory: give the directory to write the pages to",
    );
}

#[test]
fn a_node_cut_from_itself_or_clogged_to_itself_is_refused_on_load() {
    let dir = scratch("self-faults");
    let file = with_schedule(
        &dir,
        "kind = \"partition\"\nside_a = [\"api-0\"]\nside_b = [\"api-0\", \"store\"]\nduration_ms = 500\n",
    );
    refused_on_load(
        &dir,
        &file,
        "schedule[0].side_a and side_b both name \"api-0\": a node cannot be cut from itself",
    );
    let file = with_schedule(
        &dir,
        "kind = \"clog\"\nfrom = \"api-0\"\nto = \"api-0\"\nduration_ms = 500\n",
    );
    refused_on_load(
        &dir,
        &file,
        "schedule[0].from and to both name \"api-0\": a clog slows the link between two nodes",
    );
}
