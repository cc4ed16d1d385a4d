//! `replay --story` on every zoo bug's shrunk reproducer: 10 to 40 lines,
//! the violating effect last, what the violation is about in the events
//! shown, and the same story from the command line as from the library.

mod common;

use common::{controlplane, scratch, text};
use dst::check::{PropertyKind, Violation};
use dst::engine::EngineRunner;
use dst::story::{MAX_LINES, MIN_LINES, story};
use dst::world::{RunOptions, RunResult, run_scenario};
use dst::zoo::hunt;
use plane::config::Bug;
use plane::protocol::{Subject, action_text};

fn jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The bug's shrunk reproducer, hunted as `sweep --bug all` does, and its
/// replay with the trace kept.
fn reproducer(bug: Bug) -> (dst::artifact::Artifact, RunResult) {
    let row = hunt(EngineRunner::SIM, bug, 0..1_000, jobs()).expect("the zoo runs");
    assert!(row.caught_as_expected(), "{bug}: not caught as expected");
    let artifact = row
        .caught
        .and_then(|catch| catch.shrunk)
        .expect("a shrunk reproducer")
        .artifact;
    let options = RunOptions {
        seed: artifact.seed,
        faults: Some(artifact.faults.clone()),
        keep_trace: true,
        buggify_redraws_faults: artifact.buggify_redraws_faults,
    };
    let result = run_scenario(&artifact.scenario, &options).expect("the reproducer runs");
    (artifact, result)
}

fn violation<'r>(result: &'r RunResult, property: &str) -> (&'r Violation, PropertyKind) {
    let verdict = result
        .check
        .verdicts
        .iter()
        .find(|verdict| verdict.property == property)
        .expect("the property is judged");
    (
        verdict.violations.first().expect("the reproducer fails"),
        verdict.kind,
    )
}

/// How an event line shows `subject`, node numbers named.
fn shown(subject: &Subject, names: &[String]) -> String {
    match subject {
        Subject::Resource(id) => id.clone(),
        Subject::Key(key) => format!("key {key}"),
        Subject::Shard(shard) => format!("shard {shard}"),
        Subject::Token(token) => format!("token {token}"),
        Subject::Action(action) => {
            let text = action_text(action);
            let node = action.controller.0 as usize;
            text.replacen(&format!("n{node}"), &names[node], 1)
        }
    }
}

fn check_story(bug: Bug) {
    let (artifact, result) = reproducer(bug);
    let (violation, kind) = violation(&result, &artifact.property);
    assert!(
        !violation.subjects.is_empty(),
        "{bug}: the checker names what `{}` is about",
        violation.property
    );
    let told = story(&result, &artifact.property);
    let lines: Vec<&str> = told.lines().collect();
    assert!(
        (MIN_LINES..=MAX_LINES).contains(&lines.len()),
        "{bug}: {} lines:\n{told}",
        lines.len()
    );
    assert!(lines[0].contains(violation.property), "{bug}: {told}");
    let last = lines.last().expect("lines");
    assert!(
        last.starts_with(">>"),
        "{bug}: the effect is marked:\n{told}"
    );
    assert_eq!(
        lines.iter().filter(|line| line.starts_with(">>")).count(),
        1,
        "{bug}: one effect:\n{told}"
    );
    match kind {
        PropertyKind::Eventually => assert!(
            last.contains("the run ends unresolved"),
            "{bug}: a liveness story ends with the judgment:\n{told}"
        ),
        PropertyKind::Always | PropertyKind::Cost => {
            // The last line is the record the checker pointed at.
            let history = result.history.as_deref().expect("kept");
            let effect = history
                .iter()
                .find(|entry| entry.trace_index == violation.trace_index)
                .expect("the violation points at a record");
            let node = &result.node_names[effect.node.index()];
            assert!(
                last.contains(node.as_str()) && last.contains(effect.event.kind_name()),
                "{bug}: the last line is {:?} at {node}:\n{told}",
                effect.event.kind_name()
            );
        }
    }
    // What the violation is about shows in the events, not only in the
    // heading.
    let events = &lines[4..];
    for subject in &violation.subjects {
        let needle = shown(subject, &result.node_names);
        assert!(
            events.iter().any(|line| line.contains(&needle)),
            "{bug}: `{needle}` appears in no event:\n{told}"
        );
    }
    // Messages are shown with their content.
    assert!(
        events
            .iter()
            .any(|line| line.contains(" <- ") || line.contains(" -> ")),
        "{bug}: no message in the story:\n{told}"
    );
}

#[test]
fn the_story_of_every_zoo_bug_s_reproducer_fits_and_ends_with_the_effect() {
    for bug in Bug::all() {
        check_story(bug);
    }
}

#[test]
fn replay_story_prints_the_library_s_story_and_keeps_the_exit_code() {
    let (artifact, result) = reproducer(Bug::NoFencing);
    let dir = scratch("story", "replay");
    let path = dir.join("no-fencing.min.json");
    artifact.write(&path).expect("the artifact is written");
    let path = path.to_str().expect("utf-8 path");
    let run = controlplane(&["replay", path, "--story"]);
    assert_eq!(run.status.code(), Some(3), "a safety violation: {run:?}");
    assert_eq!(text(&run.stdout), story(&result, &artifact.property));
    // Without --story the excerpt shows message contents too.
    let plain = text(&controlplane(&["replay", path]).stdout);
    assert!(plain.contains("Deliver <-> controller-"), "{plain}");
    assert!(
        plain.contains(": Act #"),
        "messages show their content:\n{plain}"
    );
    let both = controlplane(&["replay", path, "--story", "--json"]);
    assert_eq!(both.status.code(), Some(2), "--story and --json conflict");
}

#[test]
fn a_passing_run_has_no_story() {
    let options = RunOptions {
        seed: 1,
        keep_trace: true,
        ..RunOptions::default()
    };
    let scenario = dst::scenario::Scenario::load("baseline").expect("loads");
    let result = run_scenario(&scenario, &options).expect("runs");
    assert!(
        result.check.first_violation().is_none(),
        "baseline seed 1 passes"
    );
    assert!(story(&result, "always.one_charge_per_key").starts_with("No violation"));
    let run = controlplane(&[
        "simulate",
        "--scenario",
        "baseline",
        "--seed",
        "1",
        "--story",
    ]);
    assert_eq!(run.status.code(), Some(0));
    assert!(text(&run.stdout).starts_with("No violation"));
}
