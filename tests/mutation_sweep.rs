//! The test the mutation campaign runs for every mutant (see the README,
//! "Measuring the checkers"): a short sweep of every scenario through the
//! real binary, judged by the real checkers. A mutant of the nodes' logic is
//! caught when some seed fails a property (or the run panics, or hangs past
//! cargo-mutants' timeout). Ignored in the ordinary suite, whose CI sweep
//! covers the same ground with a thousand seeds.

use std::process::Command;

/// Seeds per scenario: enough to catch most mutants, few enough to run
/// hundreds of mutants in an afternoon.
const SEEDS: &str = "0..6";

#[test]
#[ignore = "the mutation campaign's test: cargo mutants ... -- --ignored"]
fn every_scenario_passes_a_short_sweep() {
    let out = std::env::temp_dir().join(format!("mutation-sweep-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["sweep", "--scenario", "all", "--seeds", SEEDS, "--out"])
        .arg(&out)
        .output()
        .expect("the binary runs");
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        output.status.success(),
        "the sweep failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
}
