//! The timeline's model against the run it draws, and its HTML against
//! what a browser and a reader need: the marks in the DOM, escaped text,
//! the same bytes for the same run.

use super::html::escape;
use super::*;
use crate::world::{RunOptions, run_scenario};
use plane::config::Bug;

fn run(name: &str, seed: u64, bug: Option<Bug>) -> (Scenario, RunResult) {
    let mut scenario = Scenario::load(name).expect("loads");
    if let Some(bug) = bug {
        scenario.plant(bug);
    }
    let options = RunOptions {
        seed,
        keep_trace: true,
        ..RunOptions::default()
    };
    let result = run_scenario(&scenario, &options).expect("runs");
    (scenario, result)
}

/// partition-leader with the holder acting after a failed renewal: seed
/// 0 breaks `always.one_active_holder` (the zoo's exhibit for the bug).
fn failing() -> (Scenario, RunResult) {
    let (scenario, result) = run("partition-leader", 0, Some(Bug::ActAfterRenewFailure));
    assert!(
        !result.check.safety_ok(),
        "the planted bug must fire for these tests to mean anything"
    );
    (scenario, result)
}

#[test]
fn every_kept_violation_is_in_the_model_and_marked_in_the_page_with_its_property() {
    let (scenario, result) = failing();
    let timeline = Timeline::from_run(&result, &scenario).expect("draws");
    let kept: usize = result
        .check
        .verdicts
        .iter()
        .map(|verdict| verdict.violations.len())
        .sum();
    assert!(kept > 0);
    assert_eq!(timeline.violations.len(), kept);
    assert!(
        timeline
            .violations
            .iter()
            .any(|v| v.property == "always.one_active_holder")
    );
    let page = html(&timeline);
    for (index, violation) in timeline.violations.iter().enumerate() {
        let marker = format!(
            "<g class=\"violation\" id=\"violation-{index}\" data-property=\"{}\" data-time-ns=\"{}\"",
            violation.property, violation.time_ns
        );
        assert!(page.contains(&marker), "{marker}");
        assert!(page.contains(&escape(&violation.message)));
    }
    assert!(
        page.contains("SAFETY VIOLATION"),
        "the title says how it ended"
    );
}

#[test]
fn the_same_run_draws_the_same_bytes_and_another_seed_does_not() {
    let (scenario, result) = failing();
    let first = html(&Timeline::from_run(&result, &scenario).expect("draws"));
    let (_, again) = run("partition-leader", 0, Some(Bug::ActAfterRenewFailure));
    let second = html(&Timeline::from_run(&again, &scenario).expect("draws"));
    assert_eq!(first, second);
    let (_, other) = run("partition-leader", 1, Some(Bug::ActAfterRenewFailure));
    let third = html(&Timeline::from_run(&other, &scenario).expect("draws"));
    assert_ne!(first, third);
}

#[test]
fn the_page_fetches_nothing_and_holds_its_script_and_svg() {
    let (scenario, result) = failing();
    let page = html(&Timeline::from_run(&result, &scenario).expect("draws"));
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg id=\"plot\""));
    assert!(page.contains("window.onerror"));
    assert!(page.contains("data-ready"));
    for fetch in [
        "src=",
        "href=",
        "@import",
        "url(",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(!page.contains(fetch), "the page must load nothing: {fetch}");
    }
}

#[test]
fn every_answer_the_clients_got_closes_the_attempt_it_answers() {
    let (scenario, result) = run("idempotency-storm", 3, None);
    let timeline = Timeline::from_run(&result, &scenario).expect("draws");
    let answered = timeline
        .requests
        .iter()
        .filter(|r| matches!(r.end, RequestEnd::Answered { .. }))
        .count() as u64;
    // A duplicated reply is recorded twice; the attempt is answered once.
    let history = result.history.as_deref().expect("kept");
    let sent: BTreeSet<(NodeId, u64)> = history
        .iter()
        .filter_map(|e| match &e.event {
            Event::RequestSent { request_id, .. } => Some((e.node, *request_id)),
            _ => None,
        })
        .collect();
    let replies: BTreeSet<(NodeId, u64)> = history
        .iter()
        .filter_map(|e| match &e.event {
            Event::ResponseReceived { request_id, .. } => Some((e.node, *request_id)),
            _ => None,
        })
        .filter(|reply| sent.contains(reply))
        .collect();
    let responses: u64 = result.responses_by_status.values().sum();
    assert!(
        responses > replies.len() as u64,
        "the storm duplicates replies"
    );
    assert_eq!(answered, replies.len() as u64);
    assert_eq!(
        timeline.requests.len() as u64,
        result.history_counts["RequestSent"]
    );
    let retries = timeline.requests.iter().filter(|r| r.attempt > 0).count() as u64;
    assert_eq!(retries, result.history_counts["retries"]);
    for request in &timeline.requests {
        assert!(request.start_ns <= request.end_ns, "{request:?}");
        assert!(request.row < REQUEST_ROWS);
    }
    let abandoned = timeline
        .requests
        .iter()
        .filter(|r| r.end == RequestEnd::Abandoned)
        .count() as u64;
    assert_eq!(
        abandoned,
        result
            .history_counts
            .get("RequestAbandoned")
            .copied()
            .unwrap_or(0)
    );
}

#[test]
fn lease_terms_follow_one_another_with_rising_tokens_and_name_their_holder() {
    let (scenario, result) = run("partition-leader", 2, None);
    let timeline = Timeline::from_run(&result, &scenario).expect("draws");
    assert_eq!(
        timeline.leases.len() as u32,
        scenario.controller.shard_count + 1,
        "a row per shard and the leader"
    );
    assert_eq!(
        timeline.leases.last().map(|r| r.name.as_str()),
        Some("leader")
    );
    for row in &timeline.leases {
        assert!(!row.terms.is_empty(), "{} was held", row.name);
        for pair in row.terms.windows(2) {
            assert!(pair[0].end_ns <= pair[1].start_ns, "{}: {pair:?}", row.name);
            assert!(pair[0].token < pair[1].token, "{}: {pair:?}", row.name);
        }
        for term in &row.terms {
            assert!(timeline.name(term.holder).starts_with("controller-"));
        }
    }
    let acquired = result.history_counts["LeaseAcquired"];
    let marks = timeline
        .marks
        .iter()
        .filter(|m| m.kind == MarkKind::LeaseAcquired)
        .count() as u64;
    assert_eq!(marks, acquired);
}

#[test]
fn a_converged_run_ends_with_running_equal_to_desired() {
    let (scenario, result) = run("baseline", 5, None);
    assert!(result.check.liveness_ok());
    let timeline = Timeline::from_run(&result, &scenario).expect("draws");
    let last = timeline.curve.last().expect("resources were created");
    assert!(last.desired_replicas > 0);
    assert_eq!(last.running, last.desired_replicas);
    assert_eq!(last.running_current, last.desired_replicas);
    // And it was not converged all along: the curve moves.
    assert!(timeline.curve.len() > 2);
    let starts = result.history_counts["InstanceStarted"];
    let drawn = timeline
        .marks
        .iter()
        .filter(|m| m.kind == MarkKind::InstanceStarted)
        .count() as u64;
    assert_eq!(drawn, starts);
}

#[test]
fn each_fault_is_drawn_over_the_lanes_it_hits() {
    let (scenario, result) = run("partition-leader", 2, None);
    let timeline = Timeline::from_run(&result, &scenario).expect("draws");
    assert_eq!(timeline.faults.len(), result.faults.len());
    for (span, fault) in timeline.faults.iter().zip(&result.faults) {
        assert_eq!(span.start_ns, fault.at_ns);
        assert_eq!(span.kind, fault.fault.kind_name());
        assert!(!span.nodes.is_empty());
        if let Fault::Partition { side_a, side_b, .. } = &fault.fault {
            assert_eq!(span.nodes.len(), side_a.len().min(side_b.len()));
        }
    }
    let page = html(&timeline);
    assert_eq!(
        page.matches("<g class=\"fault m ").count(),
        timeline.faults.len()
    );
}

#[test]
fn text_from_the_run_is_escaped_everywhere_it_lands() {
    let (scenario, result) = failing();
    let mut timeline = Timeline::from_run(&result, &scenario).expect("draws");
    timeline.title = "<b>\"x\" & 'y'</b>".into();
    timeline.violations[0].message = "<script>alert(1)</script>".into();
    timeline.nodes[0] = "store\"><img>".into();
    timeline.resources.push("r<1>".into());
    let page = html(&timeline);
    assert!(!page.contains("<script>alert"));
    assert!(!page.contains("<img>"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"));
    assert!(page.contains("value=\"r:r&lt;1&gt;\""));
}

#[test]
fn a_run_that_kept_no_history_is_refused_with_a_reason() {
    let scenario = Scenario::load("baseline").expect("loads");
    let mut options = RunOptions {
        seed: 1,
        ..RunOptions::default()
    };
    options.keep_trace = false;
    let result = run_scenario(&scenario, &options).expect("runs");
    let error = Timeline::from_run(&result, &scenario).unwrap_err();
    assert!(error.to_string().contains("kept no history"), "{error}");
}

#[test]
fn the_chrome_trace_has_the_fields_each_phase_requires() {
    let (scenario, result) = failing();
    let timeline = Timeline::from_run(&result, &scenario).expect("draws");
    let text = crate::perfetto::chrome_trace(&timeline);
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents");
    let mut thread_names = 0;
    for event in events {
        let ph = event["ph"].as_str().expect("ph");
        assert!(event["name"].is_string(), "{event}");
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        match ph {
            "M" => {
                assert!(event["args"]["name"].is_string() || event["args"]["sort_index"].is_u64());
                if event["name"] == "thread_name" {
                    thread_names += 1;
                }
            }
            "X" => {
                assert!(event["ts"].as_f64().expect("ts") >= 0.0, "{event}");
                assert!(event["dur"].as_f64().expect("dur") >= 0.0, "{event}");
            }
            "i" => {
                assert!(event["ts"].is_number(), "{event}");
                assert!(["g", "p", "t"].contains(&event["s"].as_str().expect("scope")));
            }
            "C" => assert!(event["args"]["desired"].is_u64(), "{event}"),
            other => panic!("unexpected phase {other}: {event}"),
        }
    }
    assert!(thread_names >= timeline.nodes.len());
    for name in &timeline.nodes {
        assert!(
            events
                .iter()
                .any(|e| e["name"] == "process_name" && e["args"]["name"] == *name),
            "{name} has a process"
        );
    }
    assert!(events.iter().any(|e| e["ph"] == "i"
        && e["cat"] == "violation"
        && e["name"] == "always.one_active_holder"));
    assert_eq!(text, crate::perfetto::chrome_trace(&timeline), "same bytes");
}
