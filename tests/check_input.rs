//! `controlplane check --history DIR` on data directories that are not
//! what a real run writes: settings no scenario allows, a `cluster.json`
//! at odds with itself or with the history, no history at all. Each is bad
//! input (exit 2) in one line naming the file, the field and what is
//! allowed, and none takes long.

// The host's clock: a refusal must come within a bound of real time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::text;
use dst::real::write_simulated_history;
use dst::scenario::Scenario;
use dst::world::{RunOptions, run_scenario};

/// A guard against a hang, not a measure of speed: a refusal takes
/// milliseconds, and the shard counts below ran for 20 s and more, using
/// gigabytes, before they were refused.
const LIMIT: Duration = Duration::from_secs(120);

/// `baseline` seed 1 written out once; each test copies it.
fn template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::scratch("check-input", "template");
        let scenario = Scenario::load("baseline").expect("loads");
        let options = RunOptions {
            seed: 1,
            keep_trace: true,
            ..RunOptions::default()
        };
        let result = run_scenario(&scenario, &options).expect("runs");
        write_simulated_history(&dir, &scenario, &result).expect("writes");
        dir
    })
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates");
    for entry in std::fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies");
        }
    }
}

/// A fresh copy of the template, its `cluster.json` edited by `edit`.
fn data(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let dir = common::scratch("check-input", name);
    copy(template(), &dir);
    let path = dir.join("cluster.json");
    let mut cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("JSON");
    edit(&mut cluster);
    std::fs::write(&path, cluster.to_string()).expect("writes");
    dir
}

/// `check --history dir`, killed if it runs past [`LIMIT`]: its exit code
/// and its stderr.
fn check(dir: &Path) -> (Option<i32>, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["check", "--history", dir.to_str().expect("UTF-8 path")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    loop {
        if child.try_wait().expect("waits").is_some() {
            break;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("check --history {} ran past {LIMIT:?}", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    (output.status.code(), text(&output.stderr))
}

/// `check` refused `dir` as bad input in one line that starts with
/// `error: <dir>/<file>: <message>`.
fn refused(dir: &Path, file: &str, message: &str) {
    let (code, stderr) = check(dir);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let path = if file.is_empty() {
        dir.display().to_string()
    } else {
        dir.join(file).display().to_string()
    };
    let expected = format!("error: {path}: {message}");
    assert!(
        stderr.starts_with(&expected),
        "{stderr}\nexpected {expected}"
    );
}

#[test]
fn settings_out_of_a_scenarios_limits_are_refused_at_once_naming_the_field() {
    for (name, section, field, value, message) in [
        (
            "shards-u32-max",
            "controller",
            "shard_count",
            4_294_967_295u64,
            "settings.controller.shard_count = 4294967295 is out of range: allowed 1..=4096",
        ),
        (
            "shards-ten-million",
            "controller",
            "shard_count",
            10_000_000,
            "settings.controller.shard_count = 10000000 is out of range: allowed 1..=4096",
        ),
        (
            "no-executed-actions",
            "worker",
            "max_executed_actions",
            0,
            "settings.worker.max_executed_actions = 0 is out of range: allowed 1..=",
        ),
        (
            "no-session-ttl",
            "controller",
            "session_ttl_ms",
            0,
            "settings.controller.session_ttl_ms = 0 is out of range: allowed 100..=600000",
        ),
    ] {
        let dir = data(name, |cluster| {
            cluster["settings"][section][field] = serde_json::json!(value);
        });
        refused(&dir, "cluster.json", message);
    }
}

#[test]
fn a_topology_without_the_workers_nodes_lists_is_refused_naming_the_field() {
    let dir = data("no-workers", |cluster| {
        cluster["topology"]["workers"] = serde_json::json!([]);
    });
    refused(
        &dir,
        "cluster.json",
        "topology.workers = 0 is out of range: allowed 1..=32",
    );
}

#[test]
fn a_shard_past_the_shard_count_is_bad_input_not_a_violation() {
    // A run of 16 shards said to have 1: the first line naming another
    // shard is refused.
    let dir = data("one-shard", |cluster| {
        cluster["settings"]["controller"]["shard_count"] = serde_json::json!(1);
    });
    let (code, stderr) = check(&dir);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("/history.jsonl: line ")
            && stderr.contains(
                ", but cluster.json has settings.controller.shard_count = 1: allowed shards 0..=0"
            ),
        "{stderr}"
    );

    // Shard 12 of 1, on the one line of the history.
    let dir = data("shard-12", |cluster| {
        cluster["settings"]["controller"]["shard_count"] = serde_json::json!(1);
    });
    for entry in std::fs::read_dir(&dir).expect("lists") {
        let node = entry.expect("entry").path();
        if node.is_dir() && !node.ends_with("controller-0") {
            let _ = std::fs::remove_file(node.join("history.jsonl"));
        }
    }
    let path = dir.join("controller-0").join("history.jsonl");
    let original = std::fs::read_to_string(&path).expect("reads");
    let acquired = original
        .lines()
        .find(|line| line.contains("{\"LeaseAcquired\":"))
        .expect("a lease acquired");
    let mut line: serde_json::Value = serde_json::from_str(acquired).expect("JSON");
    line["event"]["LeaseAcquired"]["lease"] = serde_json::json!({ "Shard": 12 });
    std::fs::write(&path, format!("{line}\n")).expect("writes");
    refused(
        &dir,
        "controller-0/history.jsonl",
        "line 1: LeaseAcquired.lease names shard 12, but cluster.json has \
         settings.controller.shard_count = 1: allowed shards 0..=0",
    );
}

#[test]
fn a_node_the_cluster_does_not_have_is_bad_input_naming_file_and_line() {
    let dir = data("writer-99", |_| {});
    let path = dir.join("store").join("history.jsonl");
    let original = std::fs::read_to_string(&path).expect("reads");
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    let index = lines
        .iter()
        .position(|line| line.contains("{\"DesiredWritten\":"))
        .expect("a desired write");
    let mut line: serde_json::Value = serde_json::from_str(&lines[index]).expect("JSON");
    line["event"]["DesiredWritten"]["writer"] = serde_json::json!(99);
    lines[index] = line.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").expect("writes");
    refused(
        &dir,
        "store/history.jsonl",
        &format!(
            "line {}: DesiredWritten.writer names node 99, but cluster.json lists 12 nodes: \
             allowed 0..=11",
            index + 1
        ),
    );
}

#[test]
fn a_directory_where_no_node_wrote_history_is_refused_naming_it() {
    let dir = common::scratch("check-input", "cluster-only");
    std::fs::copy(template().join("cluster.json"), dir.join("cluster.json")).expect("copies");
    refused(
        &dir,
        "",
        "no node wrote any history: none of the 12 nodes cluster.json lists has a history file",
    );

    // Some nodes' history is enough, as before.
    let dir = data("billing-only", |_| {});
    for entry in std::fs::read_dir(&dir).expect("lists") {
        let node = entry.expect("entry").path();
        if node.is_dir() && !node.ends_with("billing") {
            let _ = std::fs::remove_file(node.join("history.jsonl"));
        }
    }
    let output = common::controlplane(&["check", "--history", dir.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(": PASS"));
}
