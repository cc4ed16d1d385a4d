//! The sweep's progress bar: drawn on a real terminal (tmux) with seeds
//! done, failures so far, a rate and the time left; never written into a
//! pipe, where stderr is a log and stdout JSON.

// A real terminal is waited for in real time: none of this is simulated
// code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::process::Command;
use std::time::Duration;
use tmux::Tmux;

/// Chaos with a planted bug the checkers catch in most seeds: the bar has
/// failures to count.
const SWEEP: [&str; 8] = [
    "sweep",
    "--scenario",
    "chaos",
    "--bug",
    "no-workqueue-dedup",
    "--seeds",
    "0..24",
    "--json",
];

#[test]
fn a_sweep_into_a_pipe_draws_no_progress_bar() {
    let out = common::scratch("progress", "piped");
    let mut args = SWEEP.to_vec();
    args.extend_from_slice(&["--jobs", "2", "--out", out.to_str().unwrap()]);
    let output = common::controlplane(&args);
    assert_eq!(output.status.code(), Some(3));
    let stderr = common::text(&output.stderr);
    for mark in ["\u{1b}", "\r", "seeds/s", "left"] {
        assert!(!stderr.contains(mark), "{mark:?} in stderr: {stderr:?}");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is the JSON summary alone");
    assert_eq!(summary["seeds"], 24);
}

#[test]
fn a_sweep_on_a_terminal_shows_seeds_failures_rate_and_time_left() {
    bar_on_a_terminal("plain", &[]);
}

#[test]
fn a_guided_sweep_on_a_terminal_shows_its_bar_too() {
    bar_on_a_terminal("guided", &["--guided"]);
}

/// Runs [`SWEEP`] with `extra` flags on a real terminal and checks the
/// bar's last frame against the failures the sweep wrote.
fn bar_on_a_terminal(name: &str, extra: &[&str]) {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (CI installs it: .ci/run)");
        return;
    }
    let out = common::scratch("progress", name);
    let json = out.join("summary.json");
    let sweep_out = out.join("sweep");
    let mut args = SWEEP.to_vec();
    args.extend_from_slice(extra);
    // stdout to a file, stderr on the terminal: the bar, and JSON that
    // stays clean.
    let script = format!(
        "cd {root} && {bin} {args} --jobs 1 --out {out} > {json}; echo EXITED:$?; sleep 60",
        root = env!("CARGO_MANIFEST_DIR"),
        bin = env!("CARGO_BIN_EXE_controlplane"),
        args = args.join(" "),
        out = sweep_out.display(),
        json = json.display(),
    );
    let tmux = Tmux::new(if extra.is_empty() { "sweep" } else { "guided" });
    let started = tmux.command(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "20",
        "-s",
        tmux.session(),
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        started.status.success(),
        "{}",
        common::text(&started.stderr)
    );
    let screen = tmux.wait_for(&["EXITED:"], Duration::from_secs(120));
    assert!(screen.contains("EXITED:3"), "{screen}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary")).expect("JSON");
    // One artifact per failing seed, whichever kind of sweep it was.
    let failed = std::fs::read_dir(sweep_out.join("failures"))
        .expect("failures written")
        .count();
    assert!(failed > 0, "{summary}");
    // The bar's last frame stays: every seed, and the failures the summary
    // counts.
    let line = screen
        .lines()
        .find(|line| line.contains("24/24 seeds"))
        .unwrap_or_else(|| panic!("no finished bar:\n{screen}"));
    assert!(line.starts_with("[###"), "{line}");
    assert!(
        line.contains(&format!("24/24 seeds, {failed} failed, ")),
        "{line}"
    );
    assert!(
        line.contains(" seeds/s, ") && line.ends_with(" left"),
        "{line}"
    );
}
