//! `chaos` against a live cluster: every fault kind acts on the running
//! nodes the way the simulator's does and heals by itself, bad input gets
//! one line and an exit code, and an artifact's fault list plays in real
//! time. Every cluster here runs in the test's process on ephemeral
//! loopback ports and is stopped at the end.

// Real servers, waited for in real time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{controlplane, text};
use node::history::HistoryLine;
use plane::protocol::Event;
use serde_json::Value;

const TOKEN: &str = "chaos-test-token";

struct Cluster {
    runtime: tokio::runtime::Runtime,
    running: Option<host::Running>,
    http: SocketAddr,
    admin: String,
    data: PathBuf,
}

impl Cluster {
    fn start(name: &str) -> Self {
        let data = common::scratch("chaos", name);
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let mut config =
            host::ServeConfig::single_process(data.clone(), "127.0.0.1:0".parse().unwrap());
        config.admin_token = Some(TOKEN.to_string());
        let running = runtime.block_on(host::start(config)).expect("serve starts");
        let http = *running.http.values().next().expect("an edge");
        let admin = format!("http://{}", running.admin);
        let cluster = Self {
            runtime,
            running: Some(running),
            http,
            admin,
            data,
        };
        eventually(Duration::from_secs(20), "readyz", || {
            cluster.get("/readyz").0 == 200
        });
        cluster
    }

    /// `controlplane chaos ARGS --url ADMIN --token TOKEN`: (exit, stdout, stderr).
    fn chaos(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["chaos"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--url", &self.admin, "--token", TOKEN]);
        let output = controlplane(&all);
        (
            output.status.code().unwrap_or(-1),
            text(&output.stdout),
            text(&output.stderr),
        )
    }

    fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    fn get(&self, path: &str) -> (u16, String) {
        match self
            .client()
            .get(format!("http://{}{path}", self.http))
            .send()
        {
            Ok(answer) => (answer.status().as_u16(), answer.text().unwrap_or_default()),
            Err(_) => (0, String::new()),
        }
    }

    fn create(&self, key: &str) -> u16 {
        self.client()
            .post(format!("http://{}/v1/resources", self.http))
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({"name": key, "spec": {"replicas": 2, "image": 1}}))
            .send()
            .map_or(0, |answer| answer.status().as_u16())
    }

    fn status(&self) -> Value {
        self.client()
            .get(format!("{}/admin/status", self.admin))
            .bearer_auth(TOKEN)
            .send()
            .expect("admin answers")
            .json()
            .expect("JSON")
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self
            .client()
            .get(format!("{}/metrics", self.admin))
            .send()
            .and_then(|answer| answer.text())
            .unwrap_or_default();
        text.lines()
            .find(|line| line.split(' ').next() == Some(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    }

    fn history(&self, node: &str) -> Vec<HistoryLine<Event>> {
        let text =
            std::fs::read_to_string(self.data.join(node).join("history.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    fn stop(mut self) -> PathBuf {
        let running = self.running.take().expect("running");
        self.runtime.block_on(running.shutdown());
        self.data.clone()
    }
}

fn eventually(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(100));
    }
}

fn converged(cluster: &Cluster, desired: usize) -> bool {
    let view = &cluster.status()["cluster"];
    view["desired"].as_u64() == Some(desired as u64) && view["unconverged"].as_u64() == Some(0)
}

fn shard_0(cluster: &Cluster) -> (Option<String>, u64) {
    let status = cluster.status();
    let lease = status["cluster"]["shards"]
        .as_array()
        .and_then(|shards| shards.iter().find(|s| s["shard"] == 0))
        .cloned()
        .unwrap_or_default();
    (
        lease["holder"].as_str().map(str::to_string),
        lease["token"].as_u64().unwrap_or(0),
    )
}

fn active_faults(cluster: &Cluster) -> usize {
    cluster.status()["faults"].as_array().map_or(0, Vec::len)
}

#[test]
fn every_fault_kind_acts_on_a_live_cluster_heals_by_itself_and_breaks_no_property() {
    let cluster = Cluster::start("every-kind");
    for key in ["a", "b", "c"] {
        assert_eq!(cluster.create(key), 201, "create {key}");
    }
    eventually(Duration::from_secs(20), "3 resources converge", || {
        converged(&cluster, 3)
    });

    // Status: members, shard holders, no faults yet.
    let (code, out, err) = cluster.chaos(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("members: store, billing, api-0"), "{out}");
    assert!(out.contains("shard-0: controller-"), "{out}");
    assert!(out.contains("no active faults"), "{out}");

    // A partition of shard 0's holder from everyone: its lease expires at
    // the store and another controller takes the shard with a higher
    // fencing token; the partition heals by itself.
    let (holder, token) = shard_0(&cluster);
    let holder = holder.expect("shard 0 is held");
    let (code, out, err) = cluster.chaos(&["partition", "shard-0", "--for", "6s"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("shard-0 is {holder}")), "{out}");
    assert!(
        out.contains(&format!("partition [{holder}] | [store")),
        "{out}"
    );
    let (code, out, _) = cluster.chaos(&["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("s left)"), "the partition is listed: {out}");
    eventually(
        Duration::from_secs(15),
        "another controller takes shard 0",
        || {
            let (now, now_token) = shard_0(&cluster);
            now.is_some_and(|now| now != holder) && now_token > token
        },
    );
    assert!(cluster.metric("controlplane_net_frames_by_fault{effect=\"dropped\"}") > 0.0);
    eventually(
        Duration::from_secs(10),
        "the partition heals by itself",
        || active_faults(&cluster) == 0,
    );

    // A pause of the store: reads find no store (the API node gives up on
    // it after its request timeout) until it resumes.
    let (status, _) = cluster.get("/v1/resources/does-not-exist");
    assert_eq!(status, 404, "a read before the pause");
    let (code, _, err) = cluster.chaos(&["pause", "store", "--for", "2s"]);
    assert_eq!(code, 0, "{err}");
    let (status, _) = cluster.get("/v1/resources/does-not-exist");
    assert_eq!(status, 503, "a read during the pause");
    eventually(
        Duration::from_secs(10),
        "reads answer after the pause",
        || cluster.get("/v1/resources/does-not-exist").0 == 404,
    );

    // A crash of the store: it comes back on a new boot, its state kept.
    let boots_before = cluster.history("store").iter().map(|l| l.boot).max();
    let (code, _, err) = cluster.chaos(&["crash", "store", "--for", "1s"]);
    assert_eq!(code, 0, "{err}");
    eventually(Duration::from_secs(10), "the store's crash heals", || {
        active_faults(&cluster) == 0
    });
    // A store at rest records nothing (lease renewals write no history
    // line), so the new boot shows in the first write after the restart.
    eventually(
        Duration::from_secs(20),
        "the restarted store takes writes",
        || matches!(cluster.create("d"), 200 | 201),
    );
    let boots_after = cluster.history("store").iter().map(|l| l.boot).max();
    assert!(
        boots_after > boots_before,
        "the store restarted on a new boot: {boots_before:?} then {boots_after:?}"
    );

    // A crash of billing: back on a new boot, and its history is not
    // counted twice by this process's metrics.
    let charges = cluster.metric("controlplane_charges_total");
    assert_eq!(charges, 4.0, "one charge per create so far");
    let (code, _, err) = cluster.chaos(&["crash", "billing", "--for", "500ms"]);
    assert_eq!(code, 0, "{err}");
    eventually(Duration::from_secs(10), "billing's crash heals", || {
        active_faults(&cluster) == 0
    });
    eventually(
        Duration::from_secs(20),
        "a create after billing restarted",
        || matches!(cluster.create("d2"), 200 | 201),
    );
    assert_eq!(cluster.metric("controlplane_charges_total"), 5.0);

    // Clocks: a wall-clock jump shows in the store's readings and in
    // nothing else; a drift is accepted and heals.
    let (code, out, err) = cluster.chaos(&[
        "skew",
        "store",
        "--offset",
        "30s",
        "--drift-ppm",
        "50000",
        "--for",
        "1s",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("clock jump store by +30.000 s"), "{out}");
    assert!(out.contains("clock drift store at +50000 ppm"), "{out}");
    let lines_before = cluster.history("store").len();
    assert_eq!(cluster.create("e"), 201);
    eventually(
        Duration::from_secs(10),
        "the store records after the jump",
        || cluster.history("store").len() > lines_before + 2,
    );
    let skewed = cluster.history("store")[lines_before..]
        .iter()
        .map(|line| line.wall_ns as i64 - line.host_ns as i64)
        .min()
        .expect("lines");
    assert!(
        skewed > 25_000_000_000,
        "wall clock ahead by {skewed} ns only"
    );

    // Degraded links: duplicates and drops on every link, delays on the
    // API nodes'; clog and release between an API node and the store.
    for args in [
        vec!["duplicate", "--ppm", "500000", "--for", "2s"],
        vec![
            "delay",
            "--by",
            "50ms",
            "--nodes",
            "api-0,api-1",
            "--for",
            "2s",
        ],
        vec!["clog", "api-0", "store", "--for", "1s"],
    ] {
        let (code, _, err) = cluster.chaos(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    for key in ["f", "g", "h"] {
        let status = cluster.create(key);
        assert!(
            status == 201 || status == 503,
            "create {key} under faults: {status}"
        );
    }
    for effect in ["duplicated", "delayed", "held"] {
        let name = format!("controlplane_net_frames_by_fault{{effect=\"{effect}\"}}");
        assert!(cluster.metric(&name) > 0.0, "{name}");
    }
    let (code, _, err) = cluster.chaos(&[
        "drop", "--ppm", "1000000", "--nodes", "billing", "--for", "30s",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cluster.chaos(&["heal"]);
    assert_eq!(code, 0);
    assert!(out.contains("healed"), "{out}");
    eventually(Duration::from_secs(10), "every fault healed", || {
        active_faults(&cluster) == 0
    });
    for key in ["f", "g", "h", "i"] {
        // Retried with the same key until answered: still one resource each.
        eventually(Duration::from_secs(20), "create after heal", || {
            matches!(cluster.create(key), 200 | 201)
        });
    }
    eventually(
        Duration::from_secs(30),
        "10 resources converge after every heal",
        || converged(&cluster, 10),
    );
    let data = cluster.stop();

    // The fault log lists them all, and the checkers find nothing wrong,
    // eventual properties included (every fault went through chaos).
    let log = std::fs::read_to_string(data.join("faults.jsonl")).expect("fault log");
    for kind in [
        "partition",
        "pause",
        "crash",
        "clock_jump",
        "clock_drift",
        "degrade",
        "clog",
    ] {
        assert!(
            log.contains(&format!("\"kind\":\"{kind}\"")),
            "{kind} not logged"
        );
    }
    let output = controlplane(&[
        "check",
        "--history",
        data.to_str().unwrap(),
        "--quiet",
        "--liveness-bound-ms",
        "20000",
    ]);
    let report = text(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("the fault log lists"), "{report}");
}

/// The one line a failing command printed, and that it printed one line.
fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0]
}

#[test]
fn bad_input_to_chaos_gets_one_line_and_a_distinct_exit_code() {
    let cluster = Cluster::start("bad-input");
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["pause", "nobody", "--for", "2s"],
            2,
            "unknown node `nobody`: allowed store, billing",
        ),
        (&["pause", "store", "--for", "-5s"], 2, "cannot be negative"),
        (&["pause", "store", "--for", "soon"], 2, "--for `soon`"),
        (
            &["drop", "--ppm", "2000000", "--for", "1s"],
            2,
            "--ppm `2000000`",
        ),
        (
            &["skew", "store", "--drift-ppm", "500000", "--for", "1s"],
            2,
            "--drift-ppm",
        ),
        (&["crash", "http-0"], 13, "http-0 is an HTTP edge"),
        (&["heal", "999"], 13, "no active fault 999"),
    ];
    for (args, code, words) in cases {
        let (got, _, err) = cluster.chaos(args);
        assert_eq!(got, code, "{args:?}: {err}");
        assert!(one_line(&err).contains(words), "{args:?}: {err}");
    }
    // A wrong token, no token, no subcommand.
    let wrong = controlplane(&[
        "chaos",
        "status",
        "--url",
        &cluster.admin,
        "--token",
        "wrong",
    ]);
    assert_eq!(wrong.status.code(), Some(13));
    assert!(one_line(&text(&wrong.stderr)).contains("wrong admin token"));
    let none = std::process::Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .args(["chaos", "status", "--url", &cluster.admin])
        .env_remove("CONTROLPLANE_ADMIN_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(none.status.code(), Some(2));
    assert!(one_line(&text(&none.stderr)).contains("--token"));
    // Admin flags go before or after the subcommand.
    let before = controlplane(&["chaos", "--url", &cluster.admin, "--token", TOKEN, "status"]);
    assert_eq!(before.status.code(), Some(0), "{}", text(&before.stderr));
    let both = controlplane(&["chaos", "--from", "x.json", "status"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(one_line(&text(&both.stderr)).contains("without a subcommand"));
    let bare = controlplane(&["chaos"]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(one_line(&text(&bare.stderr)).contains("needs a subcommand"));
    // Nothing was started by any of them.
    assert_eq!(active_faults(&cluster), 0);
    let admin = cluster.admin.clone();
    cluster.stop();
    // A server that is down.
    let down = controlplane(&["chaos", "status", "--url", &admin, "--token", TOKEN]);
    assert_eq!(down.status.code(), Some(11));
    assert!(one_line(&text(&down.stderr)).contains("cannot reach the admin endpoint"));
    // A data directory with no running serve.
    let missing = controlplane(&["chaos", "status", "--data", "/nonexistent-dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(one_line(&text(&missing.stderr)).contains("admin.json"));
}

fn write_artifact(path: &Path, faults: Vec<sim::ScheduledFault>) {
    let scenario = dst::scenario::Scenario::load("baseline").expect("baseline");
    let artifact = dst::artifact::Artifact {
        format: 1,
        code_version: dst::artifact::code_version(),
        scenario,
        seed: 7,
        engine: dst::engine::Engine::Sim,
        faults,
        property: "always.one_charge_per_key".into(),
        message: "made up for the test".into(),
        trace_hash: 0,
        trace_encoding: sim::TRACE_ENCODING_VERSION,
        buggify_redraws_faults: false,
    };
    artifact.write(path).expect("writes");
}

#[test]
fn an_artifacts_faults_play_against_a_live_cluster_in_real_time() {
    let cluster = Cluster::start("from-artifact");
    let (_, names) =
        dst::layout::layout(&dst::scenario::Scenario::load("baseline").unwrap().topology);
    let id =
        |name: &str| sim::NodeId(names.iter().position(|(n, _)| n == name).expect(name) as u32);
    let artifact = cluster.data.join("artifact.json");
    let ms = |ms: u64| ms * 1_000_000;
    write_artifact(
        &artifact,
        vec![
            sim::ScheduledFault {
                at_ns: ms(300),
                fault: sim::Fault::Pause {
                    node: id("controller-0"),
                    duration_ns: ms(800),
                },
            },
            sim::ScheduledFault {
                at_ns: ms(600),
                fault: sim::Fault::Partition {
                    side_a: vec![id("store")],
                    side_b: vec![id("api-0"), id("client-1")],
                    one_way: true,
                    duration_ns: ms(700),
                },
            },
            // The live cluster has one edge: client-1 is not a member.
            sim::ScheduledFault {
                at_ns: ms(900),
                fault: sim::Fault::Clog {
                    from: id("client-1"),
                    to: id("api-0"),
                    duration_ns: ms(100),
                },
            },
        ],
    );
    let started = Instant::now();
    let (code, out, err) = cluster.chaos(&["--from", artifact.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("fault 1: pause controller-0 for 0.800 s"),
        "{out}"
    );
    assert!(
        out.contains("one-way partition [store] -> [api-0] for 0.700 s"),
        "{out}"
    );
    assert!(
        out.contains("skipped at 0.900 s: clog client-1 -> api-0"),
        "{out}"
    );
    assert!(
        out.contains("played 2, skipped 1; every fault has healed"),
        "{out}"
    );
    // Played in real time: it ended once the last fault healed (1.3 s).
    assert!(took >= Duration::from_millis(1_250), "took {took:?}");
    assert_eq!(active_faults(&cluster), 0);
    let data = cluster.stop();
    let log = std::fs::read_to_string(data.join("faults.jsonl")).expect("fault log");
    let lines: Vec<node::fault::FaultLogLine> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a log line"))
        .collect();
    let starts: Vec<u64> = lines
        .iter()
        .filter(|l| l.event == node::fault::FaultLogEvent::Start)
        .map(|l| l.host_ns)
        .collect();
    assert_eq!(starts.len(), 2, "{log}");
    let gap_ms = (starts[1] - starts[0]) / 1_000_000;
    assert!(
        (200..600).contains(&gap_ms),
        "started {gap_ms} ms apart, planned 300"
    );

    // A bad artifact is bad input naming the file.
    std::fs::write(data.join("bad.json"), "{}").unwrap();
    let bad = controlplane(&[
        "chaos",
        "--from",
        data.join("bad.json").to_str().unwrap(),
        "--url",
        "http://127.0.0.1:1",
        "--token",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("bad.json"));
}
