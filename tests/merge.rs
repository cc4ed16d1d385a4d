//! `merge` as a CI matrix or a Kubernetes Indexed Job uses it: N shards of
//! one sweep run apart, merged into what the sweep run whole writes and
//! says; and every way a set of directories can fail to be one sweep,
//! refused with the directory and what differs.
//!
//! "The same" (see `dst::merge`): the same result lines by content (a
//! sweep writes them in the order seeds finish, so they are compared
//! sorted), the same artifacts by name and bytes, the same summary JSON
//! but for `runs`, `seeds_per_second`, `simulated_per_wall` (the work of
//! one invocation) and `merged_shards`, and the same exit code.

mod common;

use common::{controlplane, text};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    common::scratch("merge", name)
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

/// `sweep SWEEP --out OUT [--shard K/N] --jobs JOBS --json`.
fn sweep(sweep: &[&str], out: &Path, shard: Option<&str>, jobs: &str) -> (Option<i32>, String) {
    let mut args = vec!["sweep", "--json", "--jobs", jobs, "--out", path(out)];
    args.extend_from_slice(sweep);
    if let Some(shard) = shard {
        args.extend_from_slice(&["--shard", shard]);
    }
    let (code, stdout, stderr) = run(&args);
    assert!(
        matches!(code, Some(0 | 3 | 4 | 9)),
        "{args:?}: {code:?}\n{stderr}"
    );
    (code, stdout)
}

/// `merge --out OUT INPUTS... [--json]`.
fn merge(out: &Path, inputs: &[&Path], json: bool) -> (Option<i32>, String, String) {
    let mut args = vec!["merge", "--out", path(out)];
    if json {
        args.push("--json");
    }
    args.extend(inputs.iter().map(|dir| path(dir)));
    run(&args)
}

fn sorted_lines(dir: &Path) -> Vec<String> {
    let content = std::fs::read_to_string(dir.join("results.jsonl")).expect("results");
    let mut lines: Vec<String> = content.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Every file in `dir/failures`, by name, with its bytes.
fn artifacts(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("failures"))
        .expect("failures/")
        .map(|entry| {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).expect("reads"))
        })
        .collect();
    files.sort();
    files
}

/// A summary without the fields about one invocation's work.
fn comparable(summary: &str) -> serde_json::Value {
    let mut value: serde_json::Value =
        serde_json::from_str(summary).unwrap_or_else(|e| panic!("a JSON summary ({e}): {summary}"));
    let object = value.as_object_mut().expect("an object");
    for field in [
        "runs",
        "seeds_per_second",
        "simulated_per_wall",
        "merged_shards",
    ] {
        object.remove(field);
    }
    value
}

/// Chaos with a planted bug that the checkers catch within a few seeds:
/// failures/ has something to merge.
const FAILING: [&str; 6] = [
    "--scenario",
    "chaos",
    "--bug",
    "no-workqueue-dedup",
    "--seeds",
    "0..7",
];

#[test]
fn three_shards_merged_equal_the_sweep_run_whole() {
    let dir = scratch("three");
    let shards: Vec<PathBuf> = (0..3).map(|k| dir.join(format!("shard-{k}"))).collect();
    for (k, out) in shards.iter().enumerate() {
        // Jobs differ between shards: nothing may depend on them.
        let jobs = if k == 1 { "1" } else { "2" };
        let (code, _) = sweep(&FAILING, out, Some(&format!("{k}/3")), jobs);
        assert!(code.is_some());
    }
    let whole = dir.join("whole");
    let (whole_code, whole_summary) = sweep(&FAILING, &whole, None, "2");
    assert_eq!(
        whole_code,
        Some(3),
        "the planted bug is caught: {whole_summary}"
    );

    let merged = dir.join("merged");
    // Given in another order than the shards' indices.
    let inputs: Vec<&Path> = vec![&shards[2], &shards[0], &shards[1]];
    let (code, summary, stderr) = merge(&merged, &inputs, true);
    assert_eq!(code, whole_code, "{stderr}");

    let lines = sorted_lines(&merged);
    assert_eq!(lines.len(), 7);
    assert_eq!(lines, sorted_lines(&whole));
    let failures = artifacts(&merged);
    assert!(!failures.is_empty(), "some seeds failed");
    assert_eq!(failures, artifacts(&whole));
    assert_eq!(comparable(&summary), comparable(&whole_summary));
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON");
    assert_eq!(summary["merged_shards"], 3);
    assert_eq!(summary["runs"], 0, "a merge runs no seed");
    let seeds_failed = summary["seeds"].as_u64().unwrap() - summary["passed"].as_u64().unwrap();
    assert_eq!(failures.len() as u64, seeds_failed);

    // The Markdown summary too: the same but for the line about the work
    // done and the directory the artifacts are in.
    let markdown = |args: &[&str], out: &Path| -> String {
        let (_, stdout, _) = run(args);
        stdout
            .lines()
            .filter(|line| !line.contains(" runs on ") && !line.starts_with("Merged from "))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(path(out), "OUT")
    };
    let mut merge_args = vec!["merge", "--out", path(&merged)];
    merge_args.extend(inputs.iter().map(|dir| path(dir)));
    let merged_markdown = markdown(&merge_args, &merged);
    let mut whole_args = vec!["sweep", "--out", path(&whole)];
    whole_args.extend_from_slice(&FAILING);
    assert_eq!(merged_markdown, markdown(&whole_args, &whole));
    assert!(merged_markdown.contains("# Sweep of chaos --bug no-workqueue-dedup: 7 seeds"));

    // The merged output is a sweep's output: it merges again, as one shard.
    let again = dir.join("again");
    let (code, summary_again, stderr) = merge(&again, &[&merged], true);
    assert_eq!(code, whole_code, "{stderr}");
    assert_eq!(comparable(&summary_again), comparable(&whole_summary));
}

/// Three shards of a quick sweep, for the refusals.
fn quick_shards(dir: &Path) -> Vec<PathBuf> {
    (0..3)
        .map(|k| {
            let out = dir.join(format!("shard-{k}"));
            let args = ["--scenario", "baseline", "--seeds", "0..6"];
            sweep(&args, &out, Some(&format!("{k}/3")), "2");
            out
        })
        .collect()
}

/// Asserts that merging `inputs` is refused as bad input with a message
/// holding every one of `parts`; nothing is written.
fn refused(dir: &Path, inputs: &[&Path], parts: &[&str]) {
    let out = dir.join("refused");
    let (code, stdout, stderr) = merge(&out, inputs, false);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    for part in parts {
        assert!(stderr.contains(part), "{part:?} not in: {stderr}");
    }
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!out.join("results.jsonl").exists(), "nothing written");
}

#[test]
fn shards_of_different_configurations_are_refused_naming_what_differs() {
    let dir = scratch("configuration");
    let shards = quick_shards(&dir);
    let (a, b) = (&shards[0], &shards[1]);

    let bugged = dir.join("bugged");
    let args = [
        "--scenario",
        "baseline",
        "--seeds",
        "0..6",
        "--bug",
        "no-fencing",
    ];
    sweep(&args, &bugged, Some("2/3"), "2");
    refused(
        &dir,
        &[a, b, &bugged],
        &[
            path(&bugged),
            "planted in baseline the bugs [no-fencing]",
            "[]",
        ],
    );

    let other_range = dir.join("other-range");
    sweep(
        &["--scenario", "baseline", "--seeds", "0..7"],
        &other_range,
        Some("2/3"),
        "2",
    );
    refused(
        &dir,
        &[a, b, &other_range],
        &[path(&other_range), "swept seeds 0..7", "0..6"],
    );

    let other_count = dir.join("other-count");
    sweep(
        &["--scenario", "baseline", "--seeds", "0..6"],
        &other_count,
        Some("2/4"),
        "2",
    );
    refused(
        &dir,
        &[a, b, &other_count],
        &[path(&other_count), "shard count N = 4", "3"],
    );

    let other_scenario = dir.join("other-scenario");
    sweep(
        &["--scenario", "gc-pause", "--seeds", "0..6"],
        &other_scenario,
        Some("2/3"),
        "2",
    );
    refused(
        &dir,
        &[a, b, &other_scenario],
        &[
            path(&other_scenario),
            "swept scenarios gc-pause",
            "baseline",
        ],
    );

    // Another build: the same shard as written by other code.
    let other_code = dir.join("other-code");
    copy_dir(&shards[2], &other_code);
    let manifest = other_code.join("sweep.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    value["code_version"] = "0.0.9 (0123456789ab)".into();
    std::fs::write(&manifest, value.to_string()).unwrap();
    refused(
        &dir,
        &[a, b, &other_code],
        &[path(&other_code), "code version 0.0.9 (0123456789ab)"],
    );

    // All three as run: merged.
    let (code, _, stderr) = merge(&dir.join("good"), &[a, b, &shards[2]], false);
    assert_eq!(code, Some(0), "{stderr}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("failures")).unwrap();
    for name in ["sweep.json", "results.jsonl"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn a_shard_given_twice_or_left_out_is_refused() {
    let dir = scratch("shards");
    let shards = quick_shards(&dir);
    let twice = dir.join("shard-1-again");
    copy_dir(&shards[1], &twice);
    refused(
        &dir,
        &[&shards[0], &shards[1], &twice],
        &[path(&twice), "is shard 1/3, and so is", path(&shards[1])],
    );
    refused(
        &dir,
        &[&shards[0], &shards[1]],
        &["shard 2/3 of seeds 0..6 is missing"],
    );
    refused(
        &dir,
        &[&shards[0], &shards[1], &dir.join("nowhere")],
        &["nowhere", "not the --out of a sweep"],
    );
    // Merging into a shard would overwrite what is being read.
    let (code, _, stderr) = merge(&shards[0], &[&shards[0], &shards[1], &shards[2]], false);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is also one of the shards merged"),
        "{stderr}"
    );
}

#[test]
fn a_shard_killed_midway_is_refused_naming_its_missing_seeds_until_resumed() {
    let dir = scratch("killed");
    let shards = quick_shards(&dir);
    // Shard 1/3 covers seeds 1 and 4; as if killed before seed 4 finished.
    let results = shards[1].join("results.jsonl");
    let content = std::fs::read_to_string(&results).unwrap();
    let kept: String = content
        .lines()
        .filter(|line| !line.contains("\"seed\":4,"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(kept.lines().count(), 1);
    std::fs::write(&results, kept).unwrap();
    refused(
        &dir,
        &[&shards[0], &shards[1], &shards[2]],
        &[
            path(&shards[1]),
            "shard 1/3 has no result for 1 of its 2 seeds (4)",
            "--resume",
        ],
    );
    // Rerun as the message says: merged.
    let args = ["--scenario", "baseline", "--seeds", "0..6", "--resume"];
    sweep(&args, &shards[1], Some("1/3"), "2");
    let (code, summary, stderr) = merge(
        &dir.join("merged"),
        &[&shards[0], &shards[1], &shards[2]],
        true,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["seeds"], 6);
}
