//! `sweep` as a user meets it across several invocations: resuming after a
//! change of configuration, of range or of shard, after a kill that tore the
//! last line, over a range too large to list, and the summary it prints.

mod common;

use common::{controlplane, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn scratch(name: &str) -> PathBuf {
    common::scratch("sweep-cli", name)
}

/// Runs `sweep ARGS --out DIR --json`; returns the exit code, the summary
/// and stderr.
fn sweep_json(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut all = vec![
        "sweep",
        "--json",
        "--jobs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let output = controlplane(&all);
    let stderr = text(&output.stderr);
    let summary = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("a JSON summary ({e}): {}\n{stderr}", text(&output.stdout)));
    (output.status.code(), summary, stderr)
}

fn results_file(dir: &Path) -> PathBuf {
    dir.join("results.jsonl")
}

/// Every line of the results file, parsed; panics on a line that is not.
fn result_lines(dir: &Path) -> Vec<serde_json::Value> {
    let content = std::fs::read_to_string(results_file(dir)).expect("results");
    content
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn write_lines(dir: &Path, lines: &[serde_json::Value]) {
    let content: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(results_file(dir), content).expect("writes");
}

#[test]
fn resume_reruns_seeds_done_under_another_configuration() {
    let dir = scratch("planted-bug");
    let chaos = ["--scenario", "chaos", "--seeds", "0..3"];
    let (code, _, stderr) = sweep_json(&dir, &chaos);
    assert_eq!(code, Some(0), "{stderr}");

    let with_bug = [&chaos[..], &["--resume", "--bug", "no-workqueue-dedup"]].concat();
    let (code, summary, stderr) = sweep_json(&dir, &with_bug);
    assert_eq!(
        code,
        Some(3),
        "the planted bug is caught: {summary}\n{stderr}"
    );
    assert_eq!(
        summary["runs"], 3,
        "every seed reran under the new configuration"
    );
    assert_eq!(summary["seeds"], 3);
    assert!(
        stderr.contains("3 results in")
            && stderr.contains("were for another configuration and are rerun"),
        "{stderr}"
    );

    // Each configuration now has its own results, and resumes from them.
    let (code, summary, stderr) = sweep_json(&dir, &with_bug);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(summary["runs"], 0);
    assert!(!stderr.contains("another configuration"), "{stderr}");
    let without_bug = [&chaos[..], &["--resume"]].concat();
    let (code, summary, stderr) = sweep_json(&dir, &without_bug);
    assert_eq!(code, Some(0), "the bug-free results still pass: {stderr}");
    assert_eq!(summary["runs"], 0);
    assert_eq!(summary["passed"], 3);
}

#[test]
fn resume_refuses_results_of_another_engine_and_leaves_them_as_they_are() {
    let dir = scratch("other-engine");
    let (code, summary, stderr) = sweep_json(&dir, &["--seeds", "0..2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["engine"], "sim");
    let mut lines = result_lines(&dir);
    assert!(
        lines.iter().all(|line| line.get("engine").is_none()),
        "sim's lines read as before engines existed"
    );
    // The same seeds, as a turmoil sweep would have written them.
    for line in &mut lines {
        line["engine"] = serde_json::json!("turmoil");
    }
    write_lines(&dir, &lines);
    let before = std::fs::read_to_string(results_file(&dir)).expect("reads");
    let output = controlplane(&[
        "sweep",
        "--seeds",
        "0..3",
        "--resume",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "bad input");
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {}: holds results of engine turmoil, and this sweep runs on sim: resume it \
             with --engine turmoil, or sweep into another --out",
            results_file(&dir).display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(results_file(&dir)).expect("reads"),
        before
    );
}

#[test]
fn resume_reruns_results_that_record_no_configuration() {
    let dir = scratch("no-config-hash");
    let (code, _, stderr) = sweep_json(&dir, &["--seeds", "0..3"]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut lines = result_lines(&dir);
    assert!(lines.iter().all(|line| line["config_hash"].is_string()));
    // A results file written before results recorded their configuration.
    for line in &mut lines {
        line.as_object_mut().unwrap().remove("config_hash");
    }
    write_lines(&dir, &lines);
    let (code, summary, stderr) = sweep_json(&dir, &["--seeds", "0..3", "--resume"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["runs"], 3);
    assert!(
        stderr.contains("3 results in") && stderr.contains("another configuration"),
        "{stderr}"
    );
}

#[test]
fn resume_summarizes_only_the_requested_seeds_and_shard() {
    let dir = scratch("narrower");
    let (code, _, stderr) = sweep_json(&dir, &["--seeds", "0..6"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Seed 4 failed, as far as the file says.
    let mut lines = result_lines(&dir);
    let line = lines.iter_mut().find(|line| line["seed"] == 4).unwrap();
    line["outcome"] = "safety".into();
    line["failed"] = serde_json::json!(["always.planted_in_the_file"]);
    write_lines(&dir, &lines);

    let (code, summary, stderr) = sweep_json(&dir, &["--seeds", "0..3", "--resume"]);
    assert_eq!(code, Some(0), "seed 4 is outside 0..3: {summary}\n{stderr}");
    assert_eq!(summary["seeds"], 3);
    assert_eq!(summary["runs"], 0);
    assert_eq!(summary["failures"], serde_json::json!({}));

    let (code, summary, _) = sweep_json(&dir, &["--seeds", "0..6", "--shard", "1/2", "--resume"]);
    assert_eq!(code, Some(0), "seed 4 is in shard 0 of 2: {summary}");
    assert_eq!(summary["seeds"], 3);
    let (code, summary, _) = sweep_json(&dir, &["--seeds", "0..6", "--shard", "0/2", "--resume"]);
    assert_eq!(code, Some(3), "{summary}");
    assert_eq!(summary["seeds"], 3);
    assert_eq!(summary["runs"], 0);
}

#[test]
fn resume_after_a_torn_last_line_keeps_every_new_result() {
    let dir = scratch("torn");
    let (code, _, stderr) = sweep_json(&dir, &["--seeds", "0..3"]);
    assert_eq!(code, Some(0), "{stderr}");
    let torn = "{\"scenario\":\"baseline\",\"se";
    let mut content = std::fs::read_to_string(results_file(&dir)).unwrap();
    content.push_str(torn);
    std::fs::write(results_file(&dir), content).unwrap();

    let (code, summary, stderr) = sweep_json(&dir, &["--seeds", "0..6", "--resume"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["runs"], 3);
    assert!(
        stderr.contains(&format!("dropped {} bytes", torn.len())),
        "{stderr}"
    );
    let mut seeds: Vec<u64> = result_lines(&dir)
        .iter()
        .map(|line| line["seed"].as_u64().unwrap())
        .collect();
    seeds.sort_unstable();
    assert_eq!(seeds, (0..6).collect::<Vec<_>>(), "no result lost or torn");
}

#[test]
fn a_sweep_of_every_seed_there_is_starts_running_at_once() {
    let dir = scratch("every-seed");
    // 2^64 - 1 seeds: listing them first would take 2^68 bytes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args([
            "sweep",
            "--seeds",
            "0..18446744073709551615",
            "--jobs",
            "1",
            "--out",
        ])
        .arg(&dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let mut first_line = false;
    let mut exited = None;
    // A minute at most, in 50 ms polls.
    for _ in 0..1_200 {
        let content = std::fs::read_to_string(results_file(&dir)).unwrap_or_default();
        first_line = content.contains('\n');
        exited = child.try_wait().expect("waits");
        if first_line || exited.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "the sweep died instead of running");
    assert!(first_line, "no seed finished within a minute");
}

#[test]
fn a_sweep_with_nothing_new_to_run_reports_zero_throughput() {
    let dir = scratch("zero");
    let out = dir.to_str().unwrap();
    let first = controlplane(&["sweep", "--seeds", "0..2", "--out", out]);
    assert_eq!(first.status.code(), Some(0));
    let again = controlplane(&["sweep", "--seeds", "0..2", "--out", out, "--resume"]);
    assert_eq!(again.status.code(), Some(0));
    let stdout = text(&again.stdout);
    assert!(
        stdout.contains("0 runs on sim at 0.0 seeds/s, 0 simulated s per wall s"),
        "{stdout}"
    );
    assert!(!stdout.contains("-0"), "{stdout}");
}

/// The "first seed" cells of the failures table.
fn first_seed_cells(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| line.split('|').nth(3))
        .map(|cell| cell.trim().to_string())
        .collect()
}

#[test]
fn a_multi_scenario_sweep_names_the_scenario_of_each_first_failing_seed() {
    let dir = scratch("multi");
    let out = dir.to_str().unwrap();
    let multi = controlplane(&[
        "sweep",
        "--scenario",
        "baseline",
        "--scenario",
        "chaos",
        "--bug",
        "no-workqueue-dedup",
        "--seeds",
        "0..2",
        "--out",
        out,
    ]);
    assert_eq!(multi.status.code(), Some(3), "{}", text(&multi.stderr));
    let stdout = text(&multi.stdout);
    let cells = first_seed_cells(&stdout);
    assert!(!cells.is_empty(), "a failures table: {stdout}");
    for cell in &cells {
        let (scenario, seed) = cell.split_once(':').unwrap_or_else(|| panic!("{stdout}"));
        assert!(["baseline", "chaos"].contains(&scenario), "{stdout}");
        assert!(seed.parse::<u64>().is_ok(), "{stdout}");
    }

    // One scenario: the seed alone is unambiguous.
    let single = controlplane(&[
        "sweep",
        "--scenario",
        "chaos",
        "--bug",
        "no-workqueue-dedup",
        "--seeds",
        "0..2",
        "--out",
        out,
    ]);
    assert_eq!(single.status.code(), Some(3));
    let stdout = text(&single.stdout);
    let cells = first_seed_cells(&stdout);
    assert!(!cells.is_empty(), "{stdout}");
    assert!(
        cells.iter().all(|cell| cell.parse::<u64>().is_ok()),
        "{stdout}"
    );
}

#[test]
fn resume_refuses_a_results_file_with_an_endless_line_naming_it() {
    let dir = scratch("endless-line");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // 2 MiB without a newline: no sweep wrote that.
    std::fs::write(results_file(&dir), vec![b'x'; 2 << 20]).expect("writes");
    let output = controlplane(&[
        "sweep",
        "--scenario",
        "baseline",
        "--seeds",
        "0..1",
        "--resume",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "bad input");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("results.jsonl"), "{stderr}");
    assert!(
        stderr.contains("line 1 is longer than 1048576 bytes"),
        "{stderr}"
    );
}
