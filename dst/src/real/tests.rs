//! A simulated run written out as a real one must be judged as the
//! simulation judged it, wherever a real history can judge; bad files must
//! be refused naming the file and the line.

use std::path::Path;
use std::sync::OnceLock;

use super::*;
use crate::scenario::Scenario;
use crate::scratch::Scratch;
use crate::world::{RunOptions, RunResult, run_scenario};
use plane::config::Bug;

fn scratch(name: &str) -> Scratch {
    Scratch::new("controlplane-real", name)
}

/// A run of `scenario` (with `bugs` planted) that kept its history.
fn run(scenario: &str, seed: u64, bugs: &[Bug]) -> (Scenario, RunResult) {
    let mut scenario = Scenario::load(scenario).expect("loads");
    for &bug in bugs {
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

/// `baseline` seed 1, run once for every test that needs a clean history.
fn baseline() -> &'static (Scenario, RunResult) {
    static RUN: OnceLock<(Scenario, RunResult)> = OnceLock::new();
    RUN.get_or_init(|| run("baseline", 1, &[]))
}

/// `run` written out to a fresh directory `name`.
fn written(name: &str, run: &(Scenario, RunResult)) -> Scratch {
    let dir = scratch(name);
    write_simulated_history(&dir, &run.0, &run.1).expect("writes");
    dir
}

fn quiet(liveness_bound_ms: u64) -> RealOptions {
    RealOptions {
        quiet: true,
        liveness_bound_ms,
    }
}

/// Every property the real check judged got the simulation's verdict:
/// held in both, or broken in both as often. Returns how many were judged.
fn assert_same_verdicts(real: &RealCheckReport, simulated: &RunResult) -> usize {
    let mut judged = 0;
    for verdict in &real.verdicts {
        let property = verdict.verdict.property;
        if verdict.verdict.not_judged.is_some() {
            continue;
        }
        judged += 1;
        let expected = simulated
            .check
            .verdicts
            .iter()
            .find(|v| v.property == property)
            .expect("the simulation judged it");
        assert_eq!(
            verdict.verdict.violation_count, expected.violation_count,
            "{property}: real {:#?}\nsimulated {:#?}",
            verdict.verdict.violations, expected.violations
        );
    }
    judged
}

fn line_of(dir: &Path, node: &str, line: usize) -> String {
    let text = std::fs::read_to_string(dir.join(node).join("history.jsonl")).expect("reads");
    text.lines().nth(line - 1).expect("the line").to_string()
}

fn rewrite(dir: &Path, node: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let path = dir.join(node).join("history.jsonl");
    let text = std::fs::read_to_string(&path).expect("reads");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    edit(&mut lines);
    std::fs::write(&path, lines.join("\n") + "\n").expect("writes");
}

#[test]
fn a_clean_simulated_run_written_out_is_judged_as_the_simulation_judged_it() {
    let run = baseline();
    let dir = written("clean", run);
    let report = check_history(&dir).expect("reads");
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.markdown());
    let judged = assert_same_verdicts(&report, &run.1);
    assert!(judged >= 19, "every always property but one: {judged}");
    let history = run.1.history.as_ref().expect("kept");
    assert_eq!(report.read.lines, history.len() as u64);
    assert_eq!(report.read.nodes, run.1.node_names.len());
    assert!(report.read.truncated.is_empty());
    assert_eq!(report.read.restarts, 0);
    // Without --quiet, nothing says the faults healed.
    for verdict in report
        .verdicts
        .iter()
        .filter(|v| v.verdict.kind == PropertyKind::Eventually)
    {
        let reason = verdict.verdict.not_judged.as_deref().expect("not judged");
        let quiet_moments = verdict.verdict.property.contains(".quiet_");
        assert_eq!(
            reason.contains("--quiet"),
            !quiet_moments,
            "{}: {reason}",
            verdict.verdict.property
        );
    }
    let holder = report.verdict("always.one_active_holder").expect("listed");
    assert_eq!(holder.judgement, "not judged");
}

#[test]
fn a_quiet_run_is_judged_at_its_end_as_the_simulation_judged_it() {
    let run = baseline();
    let dir = written("quiet", run);
    let bound_ms = run.0.run.liveness_bound_ms;
    let report = check_history_with(&dir, &quiet(bound_ms)).expect("reads");
    assert_eq!(report.outcome, Outcome::Pass, "{}", report.markdown());
    let judged = assert_same_verdicts(&report, &run.1);
    for property in [
        "eventually.converged",
        "eventually.keys_finished",
        "eventually.shards_held",
        "eventually.shards_placed",
        "eventually.available",
    ] {
        let verdict = report.verdict(property).expect("listed");
        assert_eq!(verdict.judgement, "holds", "{property}: {verdict:#?}");
    }
    for property in ["eventually.quiet_first_try", "eventually.quiet_leases_kept"] {
        let verdict = report.verdict(property).expect("listed");
        assert_eq!(verdict.judgement, "not judged", "{property}");
    }
    assert_eq!(judged, crate::check::property_names().len() - 3);
}

#[test]
fn a_quiet_run_stopped_soon_after_a_new_request_is_not_judged_at_its_end() {
    let run = baseline();
    let dir = written("quiet-unsettled", run);
    // The baseline's workload ends at 15 s and the run at 30 s: a bound of
    // 20 s cannot have passed since its last new request.
    let report = check_history_with(&dir, &quiet(20_000)).expect("reads");
    let verdict = report.verdict("eventually.converged").expect("listed");
    let reason = verdict.verdict.not_judged.as_deref().expect("not judged");
    assert!(reason.contains("the last new request"), "{reason}");
    assert_eq!(
        report
            .verdict("eventually.available")
            .expect("listed")
            .judgement,
        "holds"
    );
}

#[test]
fn a_planted_bug_a_run_catches_is_caught_in_its_real_history_too() {
    // Seeds where a sweep finds each bug (`sweep --bug NAME --scenario S`),
    // each caught by a property a real history judges.
    for (scenario, seed, bug, property) in [
        (
            "idempotency-storm",
            1,
            Bug::LedgerCheckThenAct,
            "always.one_resource_per_key",
        ),
        (
            "delayed-actions",
            9,
            Bug::NoFencing,
            "always.one_instance_per_ordinal",
        ),
    ] {
        let run = run(scenario, seed, &[bug]);
        assert!(
            run.1.check.violates(property),
            "{bug}: the simulation caught it"
        );
        let dir = written(&format!("bug-{bug}"), &run);
        let report = check_history(&dir).expect("reads");
        assert_eq!(report.outcome, Outcome::Safety, "{}", report.markdown());
        let verdict = report.verdict(property).expect("listed");
        assert_eq!(verdict.judgement, "violated", "{bug}");
        assert_same_verdicts(&report, &run.1);
        assert_eq!(report.planted_bugs, vec![bug.name().to_string()]);
        let markdown = report.markdown();
        assert!(markdown.contains("SAFETY VIOLATION"), "{markdown}");
        assert!(
            markdown.contains(&format!("| `{property}` | **VIOLATED**")),
            "{markdown}"
        );
        // Violations point at lines of files, and name nodes.
        assert!(verdict.locations[0].contains("/history.jsonl line "));
        assert!(
            !verdict.verdict.violations[0]
                .message
                .contains("trace index")
        );
    }
}

#[test]
fn a_bug_only_liveness_catches_is_caught_at_the_end_of_a_quiet_real_history() {
    // side-effect-before-ledger charges a key that then creates nothing,
    // which only `eventually.keys_finished` sees. The storm's faults all
    // end by 25 s and its end comes a liveness bound after: the calm end
    // that --quiet vouches for.
    let run = run("idempotency-storm", 2, &[Bug::SideEffectBeforeLedger]);
    let expected = run
        .1
        .check
        .verdict("eventually.keys_finished")
        .expect("judged");
    assert!(expected.violation_count > 0, "the simulation caught it");
    let dir = written("bug-liveness", &run);
    let report = check_history_with(&dir, &quiet(run.0.run.liveness_bound_ms)).expect("reads");
    let verdict = report.verdict("eventually.keys_finished").expect("listed");
    assert_eq!(verdict.judgement, "violated", "{}", report.markdown());
    assert_eq!(verdict.verdict.violation_count, expected.violation_count);
    assert!(
        verdict.verdict.violations[0]
            .message
            .contains("charged but created no resource")
    );
    assert_eq!(report.outcome, Outcome::Liveness, "{}", report.markdown());
    // Without --quiet the end is not judged, and nothing else fails.
    let plain = check_history(&dir).expect("reads");
    assert_eq!(
        plain
            .verdict("eventually.keys_finished")
            .expect("listed")
            .judgement,
        "not judged"
    );
    assert_eq!(plain.outcome, Outcome::Pass, "{}", plain.markdown());
}

#[test]
fn restarts_show_in_the_history_and_end_the_beliefs_of_the_old_boot() {
    // chaos seed 3 crashes and reboots nodes; the history shows each
    // restart of a node that recorded on both sides of it.
    let run = run("chaos", 3, &[]);
    let dir = written("restarts", &run);
    let report = check_history(&dir).expect("reads");
    assert!(report.read.restarts > 0, "{:?}", report.read);
    // The run's end is calm and a liveness bound after its last fault: a
    // controller's beliefs from before a restart must not still count.
    let quiet_report =
        check_history_with(&dir, &quiet(run.0.run.liveness_bound_ms)).expect("reads");
    let held = quiet_report
        .verdict("eventually.shards_held")
        .expect("listed");
    assert_eq!(held.judgement, "holds", "{}", quiet_report.markdown());
    // They would, were a restart not taken as a crash.
    let mut loaded = load::load(&dir).expect("reads");
    let controllers = loaded.cluster.topology.controllers.clone();
    assert!(
        loaded
            .restarts
            .iter()
            .any(|fault| controllers.contains(&fault.fault.nodes()[0])),
        "a controller restarted: {:?}",
        loaded.restarts
    );
    loaded.restarts.clear();
    let blind = judge(&loaded, &quiet(run.0.run.liveness_bound_ms));
    let held = blind.verdict("eventually.shards_held").expect("listed");
    assert_eq!(held.judgement, "violated", "{}", blind.markdown());
    assert!(
        report.read.boots
            > report.read.nodes as u64 - report.read.nodes_without_history.len() as u64
    );
    assert_same_verdicts(&report, &run.1);
}

#[test]
fn a_truncated_last_line_is_dropped_counted_and_named() {
    let run = baseline();
    let dir = written("truncated", run);
    let whole = line_of(&dir, "billing", 1);
    let path = dir.join("billing").join("history.jsonl");
    let lines = std::fs::read_to_string(&path)
        .expect("reads")
        .lines()
        .count();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("opens");
    std::io::Write::write_all(&mut file, &whole.as_bytes()[..whole.len() / 2]).expect("writes");
    let report = check_history(&dir).expect("a cut last line is not bad input");
    assert_eq!(
        report.read.truncated,
        vec![TruncatedLine {
            file: "billing/history.jsonl".to_string(),
            line: lines as u64 + 1,
        }]
    );
    let history = run.1.history.as_ref().expect("kept");
    assert_eq!(report.read.lines, history.len() as u64);
    assert_same_verdicts(&report, &run.1);
    let markdown = report.markdown();
    assert!(
        markdown.contains(&format!(
            "1 last lines cut short and dropped: `billing/history.jsonl` line {}",
            lines + 1
        )),
        "{markdown}"
    );
}

#[test]
fn a_malformed_line_before_the_last_is_bad_input_naming_file_and_line() {
    let run = baseline();
    let dir = written("malformed", run);
    rewrite(&dir, "store", |lines| lines[2].truncate(20));
    let error = check_history(&dir).expect_err("refused");
    let Error::BadInput { file, message } = &error else {
        panic!("bad input: {error:?}");
    };
    assert!(file.ends_with("store/history.jsonl"), "{file}");
    assert!(
        message.starts_with("line 3: not a history line"),
        "{message}"
    );
}

#[test]
fn lines_out_of_order_or_of_another_node_are_bad_input() {
    let run = baseline();
    let dir = written("out-of-order", run);
    rewrite(&dir, "store", |lines| lines.swap(3, 4));
    let error = check_history(&dir).expect_err("refused").to_string();
    assert!(
        error.contains("store/history.jsonl: line 5: seq 3 after seq 4"),
        "{error}"
    );

    let dir = written("other-node", run);
    let billing = line_of(&dir, "billing", 1);
    rewrite(&dir, "store", |lines| lines.insert(1, billing));
    let error = check_history(&dir).expect_err("refused").to_string();
    assert!(
        error.contains("line 2: recorded by node 1, but this is the history of store (node 0)"),
        "{error}"
    );
}

#[test]
fn a_missing_directory_or_cluster_file_is_bad_input_naming_it() {
    let dir = scratch("missing");
    let error = check_history(&dir).expect_err("refused");
    assert!(matches!(error, Error::BadInput { .. }));
    assert!(error.to_string().contains("no such directory"), "{error}");

    std::fs::create_dir_all(&dir).expect("creates");
    let error = check_history(&dir).expect_err("refused");
    let Error::BadInput { file, message } = &error else {
        panic!("bad input: {error:?}");
    };
    assert!(file.ends_with("cluster.json"), "{file}");
    assert!(message.starts_with("missing"), "{message}");

    std::fs::write(dir.join("cluster.json"), "{\"nodes\": []}").expect("writes");
    let error = check_history(&dir).expect_err("refused").to_string();
    assert!(
        error.contains("cluster.json: not a cluster description"),
        "{error}"
    );
}

#[test]
fn a_cluster_file_whose_names_or_roles_do_not_fit_is_bad_input() {
    let run = baseline();
    let dir = written("bad-cluster", run);
    let path = dir.join("cluster.json");
    let text = std::fs::read_to_string(&path).expect("reads");
    std::fs::write(&path, text.replacen("\"api-0\"", "\"../api-0\"", 1)).expect("writes");
    let error = check_history(&dir).expect_err("refused").to_string();
    assert!(error.contains("cannot name a directory"), "{error}");

    std::fs::write(&path, text.replacen("\"store\"", "\"billing\"", 1)).expect("writes");
    let error = check_history(&dir).expect_err("refused").to_string();
    assert!(error.contains("given twice"), "{error}");
}

#[test]
fn without_client_history_the_client_properties_are_not_judged() {
    let run = baseline();
    let dir = written("no-clients", run);
    for client in ["client-0", "client-1"] {
        std::fs::remove_file(dir.join(client).join("history.jsonl")).expect("removes");
    }
    let report = check_history_with(&dir, &quiet(run.0.run.liveness_bound_ms)).expect("reads");
    assert!(!report.client_history);
    assert_eq!(
        report.read.nodes_without_history,
        vec!["client-0".to_string(), "client-1".to_string()]
    );
    for property in [
        "always.keys_fresh",
        "always.answers_match_store",
        "always.answers_match_request",
        "always.read_your_writes",
        "eventually.available",
    ] {
        let verdict = report.verdict(property).expect("listed");
        assert_eq!(
            verdict.verdict.not_judged.as_deref(),
            Some("no client history"),
            "{property}"
        );
    }
    // Only the clients recorded anything once the workload was done, so
    // nothing shows the run went on long enough to settle.
    let converged = report.verdict("eventually.converged").expect("listed");
    let reason = converged.verdict.not_judged.as_deref().expect("not judged");
    assert!(
        reason.contains("before the history's last line") && reason.contains("settle"),
        "{reason}"
    );
    assert_eq!(report.outcome, Outcome::Pass);
    assert!(
        report
            .markdown()
            .contains("| `always.keys_fresh` | not judged: no client history |")
    );
}

#[test]
fn a_directory_where_no_node_wrote_history_is_bad_input_naming_it() {
    let run = baseline();
    let names = plane::cluster::layout(&run.0.topology).1;
    let dir = written("empty", run);
    for (name, _) in &names {
        let _ = std::fs::remove_file(dir.join(name).join("history.jsonl"));
    }
    let refused = |dir: &Path, what: &str| {
        let error = check_history(dir).expect_err("nothing to judge is refused");
        let Error::BadInput { file, message } = &error else {
            panic!("bad input: {error:?}");
        };
        assert_eq!(file, &dir.display().to_string());
        assert!(
            message.starts_with("no node wrote any history: "),
            "{message}"
        );
        assert!(message.contains(what), "{message}");
    };
    refused(
        &dir,
        "none of the 12 nodes cluster.json lists has a history file",
    );
    // Files there, but empty, or with nothing but a last line cut short.
    for (name, _) in &names[..3] {
        std::fs::write(dir.join(name).join("history.jsonl"), "").expect("writes");
    }
    refused(&dir, "the 3 history file(s) there hold no line");
    std::fs::write(dir.join("store").join("history.jsonl"), "{\"node\": 0").expect("writes");
    refused(&dir, "hold no line but 1 last line(s) cut short");
    // One line anywhere is a history, judged as before.
    let line = {
        let whole = written("one-line", run);
        line_of(&whole, "billing", 1)
    };
    std::fs::write(dir.join("billing").join("history.jsonl"), line + "\n").expect("writes");
    let report = check_history(&dir).expect("one line is a history");
    assert_eq!(report.read.lines, 1);
}

/// `run` written out, with its `cluster.json` edited by `edit`.
fn with_cluster(
    name: &str,
    run: &(Scenario, RunResult),
    edit: impl FnOnce(&mut serde_json::Value),
) -> Scratch {
    let dir = written(name, run);
    let path = dir.join("cluster.json");
    let mut cluster: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("JSON");
    edit(&mut cluster);
    std::fs::write(&path, cluster.to_string()).expect("writes");
    dir
}

/// The message of the bad input `check_history(dir)` is refused with,
/// after checking that it names `file_end`.
fn refusal(dir: &Path, file_end: &str) -> String {
    let error = check_history(dir).expect_err("refused");
    let Error::BadInput { file, message } = &error else {
        panic!("bad input: {error:?}");
    };
    assert!(file.ends_with(file_end), "{file}: {message}");
    message.clone()
}

#[test]
fn a_cluster_object_written_as_an_array_is_bad_input_not_read_by_position() {
    let run = baseline();
    let dir = with_cluster("array", run, |cluster| {
        cluster["settings"]["store"]["limits"] = serde_json::json!([100_000]);
    });
    let message = refusal(&dir, "cluster.json");
    assert!(
        message.starts_with("settings.store.limits: expected an object with max_keys")
            && message.ends_with("found an array"),
        "{message}"
    );
}

#[test]
fn cluster_settings_a_scenario_would_refuse_are_bad_input_naming_the_field() {
    let run = baseline();
    for (section, field, value, expected) in [
        (
            "controller",
            "shard_count",
            serde_json::json!(4_294_967_295u64),
            "settings.controller.shard_count = 4294967295 is out of range: allowed 1..=4096",
        ),
        (
            "controller",
            "shard_count",
            serde_json::json!(10_000_000),
            "settings.controller.shard_count = 10000000 is out of range: allowed 1..=4096",
        ),
        (
            "controller",
            "shard_count",
            serde_json::json!(0),
            "settings.controller.shard_count = 0 is out of range: allowed 1..=4096",
        ),
        (
            "worker",
            "max_executed_actions",
            serde_json::json!(0),
            "settings.worker.max_executed_actions = 0 is out of range: allowed 1..=",
        ),
        (
            "controller",
            "session_ttl_ms",
            serde_json::json!(0),
            "settings.controller.session_ttl_ms = 0 is out of range: allowed 100..=600000",
        ),
        (
            "controller",
            "max_drift_ppm",
            serde_json::json!(200_000),
            "settings.controller.max_drift_ppm = 200000 is out of range: allowed 0..=100000",
        ),
        (
            "api",
            "keepalive_interval_ms",
            serde_json::json!(2_000),
            "settings.api.keepalive_interval_ms = 2000 is out of range: allowed 1..=1500 (at \
             most half of settings.api.session_ttl_ms)",
        ),
        (
            "client",
            "workload_end_ms",
            serde_json::json!(4_000_000),
            "settings.client.workload_end_ms = 4000000 is out of range: allowed 0..=3599000 \
             (within a scenario's run.duration_ms)",
        ),
    ] {
        let dir = with_cluster("settings", run, |cluster| {
            cluster["settings"][section][field] = value.clone();
        });
        let message = refusal(&dir, "cluster.json");
        assert_eq!(
            message.get(..expected.len()),
            Some(expected),
            "{section}.{field}: {message}"
        );
    }
}

#[test]
fn the_settings_every_scenario_and_serve_write_are_accepted() {
    use plane::cluster::{ClusterFile, layout};
    let cluster = |topology: &plane::cluster::TopologySpec, settings, bugs| {
        let (topology, nodes) = layout(topology);
        ClusterFile {
            nodes,
            topology,
            settings,
            bugs,
        }
    };
    for name in crate::scenario::list_scenarios() {
        let scenario = Scenario::load(&name).expect("loads");
        // As simulated, and as `serve --scenario` runs it: one HTTP edge.
        let mut served = scenario.topology.clone();
        served.clients = 1;
        for topology in [&scenario.topology, &served] {
            let file = cluster(topology, scenario.settings(), scenario.bugs.clone());
            limits::settings_problems(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    let served = plane::cluster::TopologySpec {
        clients: 1,
        ..Default::default()
    };
    let file = cluster(&served, plane::config::Settings::default(), Vec::new());
    limits::settings_problems(&file).expect("`serve`'s defaults");
}

#[test]
fn a_topology_that_leaves_out_or_repeats_a_node_is_bad_input_naming_the_field() {
    let run = baseline();
    let dir = with_cluster("no-workers", run, |cluster| {
        cluster["topology"]["workers"] = serde_json::json!([]);
    });
    let message = refusal(&dir, "cluster.json");
    assert!(
        message.starts_with("topology.workers = 0 is out of range: allowed 1..=32"),
        "{message}"
    );
    let dir = with_cluster("worker-left-out", run, |cluster| {
        let workers = cluster["topology"]["workers"].as_array_mut().expect("list");
        workers.pop();
    });
    let message = refusal(&dir, "cluster.json");
    assert!(
        message.starts_with(
            "`nodes` lists worker-2 (node 9) as Worker, but topology.workers does not name it"
        ),
        "{message}"
    );
    let dir = with_cluster("worker-twice", run, |cluster| {
        let first = cluster["topology"]["workers"][0].clone();
        cluster["topology"]["workers"][1] = first;
    });
    let message = refusal(&dir, "cluster.json");
    assert!(
        message.starts_with(
            "topology.workers names node 7 (worker-0), and topology.workers names it already"
        ),
        "{message}"
    );
    let dir = with_cluster("worker-as-api", run, |cluster| {
        let worker = cluster["topology"]["workers"][0].clone();
        cluster["topology"]["apis"][0] = worker;
    });
    let message = refusal(&dir, "cluster.json");
    assert!(
        message
            .starts_with("topology.apis names node 7 (worker-0) as Api, but `nodes` says Worker"),
        "{message}"
    );
}

/// The first line of `node`'s file whose event is a `kind`: its number,
/// and the line with its event edited by `edit`.
fn edit_event(
    dir: &Path,
    node: &str,
    kind: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> usize {
    let mut number = 0;
    rewrite(dir, node, |lines| {
        let index = lines
            .iter()
            .position(|line| line.contains(&format!("{{\"{kind}\":")))
            .unwrap_or_else(|| panic!("{node} recorded a {kind}"));
        let mut line: serde_json::Value = serde_json::from_str(&lines[index]).expect("JSON");
        edit(&mut line["event"][kind]);
        lines[index] = line.to_string();
        number = index + 1;
    });
    number
}

#[test]
fn a_node_or_shard_the_cluster_does_not_have_is_bad_input_naming_file_and_line() {
    let run = baseline();
    let shards = run.0.controller.shard_count;
    // A run of 16 shards judged as one of 1: the first line naming
    // another shard is refused, not judged as a violation.
    let dir = with_cluster("one-shard", run, |cluster| {
        cluster["settings"]["controller"]["shard_count"] = serde_json::json!(1);
    });
    let message = refusal(&dir, "history.jsonl");
    assert!(
        message.contains(
            ", but cluster.json has settings.controller.shard_count = 1: allowed shards 0..=0"
        ),
        "{message}"
    );
    let dir = written("shard-past", run);
    let number = edit_event(&dir, "controller-0", "LeaseAcquired", |event| {
        event["lease"] = serde_json::json!({ "Shard": shards });
    });
    let message = refusal(&dir, "controller-0/history.jsonl");
    assert!(
        message.starts_with(&format!(
            "line {number}: LeaseAcquired.lease names shard {shards}, but cluster.json has \
             settings.controller.shard_count = {shards}: allowed shards 0..={}",
            shards - 1
        )),
        "{message}"
    );
    for (name, node, kind, edit, expected) in [
        (
            "fence",
            "worker-0",
            "FenceRaised",
            Box::new(move |event: &mut serde_json::Value| event["shard"] = serde_json::json!(shards))
                as Box<dyn FnOnce(&mut serde_json::Value)>,
            format!("FenceRaised.shard names shard {shards}, but cluster.json has settings.controller.shard_count = {shards}: allowed shards 0..={}", shards - 1),
        ),
        (
            "writer",
            "store",
            "DesiredWritten",
            Box::new(|event: &mut serde_json::Value| event["writer"] = serde_json::json!(99)),
            "DesiredWritten.writer names node 99, but cluster.json lists 12 nodes: allowed 0..=11".to_string(),
        ),
        (
            "holder",
            "store",
            "LeaseStored",
            Box::new(|event: &mut serde_json::Value| event["holder"] = serde_json::json!(7)),
            "LeaseStored.holder names node 7 (worker-0), which cluster.json lists as Worker: allowed is a node of role Controller".to_string(),
        ),
        (
            "api",
            "client-0",
            "RequestSent",
            Box::new(|event: &mut serde_json::Value| event["api"] = serde_json::json!(0)),
            "RequestSent.api names node 0 (store), which cluster.json lists as Store: allowed is a node of role Api".to_string(),
        ),
        (
            "instance",
            "worker-0",
            "InstanceStarted",
            Box::new(|event: &mut serde_json::Value| event["instance"]["id"]["worker"] = serde_json::json!(40)),
            "InstanceStarted.instance.id.worker names node 40, but cluster.json lists 12 nodes".to_string(),
        ),
    ] {
        let dir = written(name, run);
        let number = edit_event(&dir, node, kind, edit);
        let message = refusal(&dir, &format!("{node}/history.jsonl"));
        assert!(
            message.starts_with(&format!("line {number}: {expected}")),
            "{name}: {message}"
        );
    }
}

#[test]
fn the_json_report_names_each_verdict_and_why_one_was_not_judged() {
    let run = baseline();
    let dir = written("json", run);
    let report = check_history(&dir).expect("reads");
    let json: serde_json::Value = serde_json::from_str(&report.json()).expect("JSON");
    assert_eq!(json["outcome"], "pass");
    assert_eq!(json["read"]["lines"], report.read.lines);
    let verdicts = json["verdicts"].as_array().expect("verdicts");
    let holder = verdicts
        .iter()
        .find(|v| v["property"] == "always.one_active_holder")
        .expect("listed");
    assert_eq!(holder["judgement"], "not judged");
    assert!(
        holder["not_judged"]
            .as_str()
            .expect("a reason")
            .contains("one clock")
    );
    let charge = verdicts
        .iter()
        .find(|v| v["property"] == "always.one_charge_per_key")
        .expect("listed");
    assert_eq!(charge["judgement"], "holds");
    assert!(charge.get("not_judged").is_none());
}

#[test]
fn trace_indices_in_messages_become_files_and_lines() {
    let run = baseline();
    let dir = written("trace-index", run);
    let loaded = load::load(&dir).expect("reads");
    let names: Vec<String> = loaded
        .cluster
        .nodes
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    let (node, line) = loaded.origin[5];
    let text = name_trace_indices(
        "ran again, first at trace index 5; trace index x",
        &loaded,
        &names,
    );
    assert_eq!(
        text,
        format!(
            "ran again, first at {}/history.jsonl line {line}; trace index x",
            names[node.index()]
        )
    );
}

#[test]
fn the_fault_log_lists_live_faults_and_holds_liveness_until_the_last_heals() {
    use node::fault::{FAULT_LOG_FILE, FaultLogEvent, FaultLogLine};
    use sim::{Fault, NodeId};
    let run = baseline();
    let dir = written("fault-log", run);
    let bound_ms = run.0.run.liveness_bound_ms;
    let history = run.1.history.as_ref().expect("kept");
    let end_ns = history.last().expect("lines").time_ns;
    let first_ns = history.first().expect("lines").time_ns;
    let at = |ns: u64| SIMULATED_EPOCH_NS + ns;
    let pause = Fault::Pause {
        node: NodeId(2),
        duration_ns: 60 * sim::SECOND_NS,
    };
    let line = |host_ns, id, event, fault: &Fault| {
        serde_json::to_string(&FaultLogLine {
            host_ns,
            id,
            event,
            fault: fault.clone(),
        })
        .expect("json")
    };
    // A pause from 1 s that healed after 2 s, on request, and a crash that
    // starts 1 ms before the end and never heals; a last line cut short.
    let crash = Fault::Crash {
        node: NodeId(0),
        restart_after_ns: None,
    };
    let healed_pause = [
        line(
            at(first_ns + sim::SECOND_NS),
            1,
            FaultLogEvent::Start,
            &pause,
        ),
        line(
            at(first_ns + 3 * sim::SECOND_NS),
            1,
            FaultLogEvent::Heal,
            &pause,
        ),
    ];
    let unhealed_crash = line(
        at(end_ns - sim::MILLISECOND_NS),
        2,
        FaultLogEvent::Start,
        &crash,
    );
    let text = format!(
        "{}\n{unhealed_crash}\n{{\"host_ns\": 1",
        healed_pause.join("\n")
    );
    std::fs::write(dir.join(FAULT_LOG_FILE), text).expect("writes");
    let report = check_history_with(&dir, &quiet(bound_ms)).expect("reads");
    let logged = &report.read.faults_logged;
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(logged[0].at_ns, sim::SECOND_NS);
    assert_eq!(
        logged[0].fault,
        Fault::Pause {
            node: NodeId(2),
            duration_ns: 2 * sim::SECOND_NS
        },
        "the pause lasted until its heal, not its planned minute"
    );
    let verdict = report.verdict("eventually.converged").expect("listed");
    assert_eq!(verdict.judgement, "not judged", "{verdict:#?}");
    assert!(
        format!("{verdict:?}").contains("never healed"),
        "{verdict:#?}"
    );
    assert!(report.markdown().contains("the fault log lists 2"));

    // Without the unhealed crash, the run is settled again and judged.
    let healed_only = healed_pause.join("\n") + "\n";
    std::fs::write(dir.join(FAULT_LOG_FILE), healed_only).expect("writes");
    let report = check_history_with(&dir, &quiet(bound_ms)).expect("reads");
    let verdict = report.verdict("eventually.converged").expect("listed");
    assert_eq!(verdict.judgement, "holds", "{verdict:#?}");

    // A malformed line before the last is bad input naming it.
    std::fs::write(dir.join(FAULT_LOG_FILE), "nope\n{}\n").expect("writes");
    let error = check_history_with(&dir, &quiet(bound_ms)).expect_err("refused");
    assert!(error.to_string().contains("faults.jsonl line 1"), "{error}");
}
