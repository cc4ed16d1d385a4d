//! The test the mutation campaign runs for every mutant of this crate (see
//! the README, "Measuring the checkers"): a short sweep of every scenario
//! through the real binary, built from the mutated tree, and judged by the
//! real checkers. A mutant is caught when some seed fails a property (or a
//! run panics, or the sweep hangs past cargo-mutants' timeout).
//!
//! It lives here because cargo-mutants runs the mutated package's own tests,
//! and the sweep needs crates that depend on this one: so it builds and runs
//! the workspace's binary with cargo. Ignored in the ordinary suite, whose
//! CI sweep covers the same ground with a thousand seeds.

use std::path::Path;
use std::process::Command;

/// Seeds per scenario: about nine seconds for all of them at the `mutants`
/// profile on two cores, and a caught mutant stops at its first failing
/// seed (`--fail-fast`), so a campaign of 250 mutants fits in a few hours.
const SEEDS: &str = "0..30";

#[test]
#[ignore = "the mutation campaign's test: cargo mutants (see the README)"]
fn every_scenario_passes_a_short_sweep() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("plane/ is in the workspace");
    let out = std::env::temp_dir().join(format!("mutation-sweep-{}", std::process::id()));
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "run",
            "--quiet",
            "--profile",
            "mutants",
            "-p",
            "controlplane",
            "--",
        ])
        .args([
            "sweep",
            "--scenario",
            "all",
            "--fail-fast",
            "--seeds",
            SEEDS,
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("cargo runs");
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        output.status.success(),
        "the sweep failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
