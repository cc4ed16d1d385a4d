//! The command line on turmoil: a seed runs and names its engine, the same
//! seed gives the same hash, and a failure found on turmoil is written,
//! replayed and shrunk on turmoil. (madsim's builds its own binary: its
//! tests are `./madsim/run test --release`.)

mod common;

use common::{controlplane, scratch, text};
use serde_json::Value;

#[test]
fn a_seed_on_turmoil_names_its_engine_and_gives_its_hash_twice() {
    let output = controlplane(&[
        "simulate",
        "--engine",
        "turmoil",
        "--scenario",
        "partition-leader",
        "--seed",
        "3",
        "--check-determinism",
        "--json",
    ]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("determinism: both runs gave trace hash"),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["engine"], "turmoil");
    assert!(
        report["rerun"]
            .as_str()
            .is_some_and(|r| r.contains("--engine turmoil")),
        "{report}"
    );
}

#[test]
fn a_failure_found_on_turmoil_replays_and_shrinks_on_turmoil() {
    let dir = scratch("engines", "turmoil-failure");
    let out = dir.join("out");
    let sweep = controlplane(&[
        "sweep",
        "--engine",
        "turmoil",
        "--scenario",
        "partition-leader",
        "--bug",
        "act-after-renew-failure",
        "--seeds",
        "0..1",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(sweep.status.code(), Some(3), "{}", text(&sweep.stderr));
    let failures: Vec<_> = std::fs::read_dir(out.join("failures"))
        .expect("failures written")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let path = failures[0].to_str().expect("utf-8");
    let artifact: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("artifact")).expect("JSON");
    assert_eq!(artifact["engine"], "turmoil");

    // Replayed on the artifact's engine, with no flag: the same hash.
    let replay = controlplane(&["replay", path]);
    let stdout = text(&replay.stdout);
    assert_eq!(replay.status.code(), Some(3), "{}", text(&replay.stderr));
    assert!(stdout.contains("| engine | turmoil |"), "{stdout}");
    let hash = format!("{:#018x}", artifact["trace_hash"].as_u64().expect("hash"));
    assert!(
        stdout.contains(&hash),
        "the artifact's hash {hash} again: {stdout}"
    );

    // Shrunk on turmoil, and the minimal artifact still fails there.
    let minimal = dir.join("min.json");
    let shrink = controlplane(&["shrink", path, "--out", minimal.to_str().expect("utf-8")]);
    assert_eq!(shrink.status.code(), Some(0), "{}", text(&shrink.stderr));
    let shrunk: Value =
        serde_json::from_str(&std::fs::read_to_string(&minimal).expect("written")).expect("JSON");
    assert_eq!(shrunk["engine"], "turmoil");
    assert_eq!(shrunk["property"], artifact["property"]);
    let again = controlplane(&["replay", minimal.to_str().expect("utf-8")]);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again.stderr));
}
