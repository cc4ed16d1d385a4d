//! `sweep --guided` as a user meets it: the same arguments give the same
//! results whatever --jobs, a guided failure replays from its artifact,
//! `--compare` prints both sweeps, and the help says what it does.

mod common;

use common::{controlplane, text};
use std::path::Path;

fn results(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("results.jsonl")).expect("results")
}

fn lines(dir: &Path) -> Vec<serde_json::Value> {
    results(dir)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn guided(dir: &Path, jobs: &str, scenario: &str, seeds: &str) -> std::process::Output {
    controlplane(&[
        "sweep",
        "--guided",
        "--scenario",
        scenario,
        "--seeds",
        seeds,
        "--jobs",
        jobs,
        "--out",
        dir.to_str().unwrap(),
    ])
}

#[test]
fn a_guided_sweep_is_the_same_for_the_same_arguments_whatever_the_jobs() {
    let one = common::scratch("guided", "jobs-1");
    let two = common::scratch("guided", "jobs-2");
    let first = guided(&one, "1", "chaos", "0..40");
    assert!(first.status.code().is_some(), "{}", text(&first.stderr));
    let second = guided(&two, "2", "chaos", "0..40");
    assert_eq!(results(&one), results(&two));
    assert_eq!(first.status.code(), second.status.code());
    let lines = lines(&one);
    assert_eq!(lines.len(), 40);
    // The warm-up draws from the seed; later runs mutate corpus entries
    // and say which entry and mutation.
    assert!(lines[..10].iter().all(|l| l["origin"]["from"] == "seed"));
    let mutants: Vec<_> = lines
        .iter()
        .filter(|l| l["origin"]["from"] == "mutant")
        .collect();
    assert!(!mutants.is_empty(), "some runs are mutants");
    for line in mutants {
        assert!(line["origin"]["parent"].is_u64(), "{line}");
        assert!(line["origin"]["parent_seed"].is_u64(), "{line}");
        assert!(line["origin"]["mutation"].is_string(), "{line}");
    }
    assert!(lines.iter().any(|l| l["corpus_entry"].is_u64()));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("## Coverage reached"), "{stdout}");
    assert!(stdout.contains("| chaos | 40 |"), "{stdout}");
    // The summary's rates measure the runs this sweep made.
    let rates = stdout
        .lines()
        .find_map(|line| line.strip_prefix("40 runs on sim at "))
        .unwrap_or_else(|| panic!("a rate line in {stdout}"));
    let figures: Vec<f64> = rates
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(figures.len(), 2, "{rates}");
    assert!(figures.iter().all(|&f| f > 0.0), "{rates}");
}

#[test]
fn a_guided_failure_replays_from_its_artifact_to_the_same_trace_hash() {
    let dir = common::scratch("guided", "replay");
    let sweep = guided(&dir, "2", "tests/fixtures/tight-bound.toml", "0..24");
    assert_eq!(sweep.status.code(), Some(4), "{}", text(&sweep.stderr));
    let lines = lines(&dir);
    let mutant = lines
        .iter()
        .find(|l| l["origin"]["from"] == "mutant" && l["outcome"] != "pass")
        .expect("a failing mutant");
    let seed = mutant["seed"].as_u64().unwrap();
    let artifact = dir
        .join("failures")
        .join(format!("tight-bound-seed-{seed}.json"));
    let replay = controlplane(&["replay", artifact.to_str().unwrap()]);
    let stderr = text(&replay.stderr);
    assert!(stderr.contains("matches the artifact"), "{stderr}");
    let hash = mutant["trace_hash"].as_str().unwrap();
    assert!(stderr.contains(hash), "{hash} in {stderr}");
}

#[test]
fn compare_prints_plain_and_guided_coverage() {
    let dir = common::scratch("guided", "compare");
    let output = controlplane(&[
        "sweep",
        "--guided",
        "--compare",
        "--scenario",
        "chaos",
        "--seeds",
        "0..24",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("| chaos | 24 | plain |"), "{stdout}");
    assert!(stdout.contains("| chaos | 24 | guided |"), "{stdout}");
    // The plain arm is a plain sweep: the same seeds, the same results.
    let plain = lines(&dir.join("plain"));
    assert!(plain.iter().all(|l| l["origin"]["from"] == "seed"));
}

#[test]
fn the_help_says_what_guided_does() {
    let help = text(&controlplane(&["sweep", "--help"]).stdout);
    for words in ["--guided", "corpus entry", "--compare", "OUT/plain"] {
        assert!(help.contains(words), "{words} in {help}");
    }
    let refused = controlplane(&["sweep", "--guided", "--resume", "--seeds", "0..1"]);
    assert_eq!(refused.status.code(), Some(2));
    let refused = controlplane(&["sweep", "--compare", "--seeds", "0..1"]);
    assert_eq!(refused.status.code(), Some(2));
}
