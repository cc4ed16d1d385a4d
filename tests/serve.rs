//! `serve` as a user runs it: the real nodes on loopback TCP behind the
//! HTTP API, state in a data directory. Every test binds ephemeral loopback
//! ports, ends by itself within its time bounds, and stops what it started.

// A real server is waited for in real time, and a client runs beside the
// test on a thread: none of this is simulated code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use node::history::HistoryLine;
use plane::protocol::Event;

fn scratch(name: &str) -> PathBuf {
    common::scratch("serve", name)
}

/// One HTTP exchange, as a plain HTTP/1.1 client would have it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("JSON body: {}", self.body))
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer; a
/// refused or broken connection is `None`.
fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<Answer> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_string(),
    })
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn create(address: SocketAddr, key: &str, name: &str, replicas: u32) -> Option<Answer> {
    let body = format!(r#"{{"name": "{name}", "spec": {{"replicas": {replicas}, "image": 1}}}}"#);
    request(
        address,
        "POST",
        "/v1/resources",
        &[JSON, ("Idempotency-Key", key)],
        Some(&body),
    )
}

/// Polls `ready` every 100 ms until it holds or `limit` passes.
fn eventually(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(100));
    }
}

/// A gauge or counter's value in a Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.split(' ').next() == Some(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn metrics(address: SocketAddr) -> String {
    request(address, "GET", "/metrics", &[], None)
        .map(|answer| answer.body)
        .unwrap_or_default()
}

struct InProcess {
    runtime: tokio::runtime::Runtime,
    running: Option<host::Running>,
    http: SocketAddr,
}

impl InProcess {
    fn start(data: &Path) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let config =
            host::ServeConfig::single_process(data.to_path_buf(), "127.0.0.1:0".parse().unwrap());
        let running = runtime.block_on(host::start(config)).expect("serve starts");
        let http = *running.http.values().next().expect("an edge");
        eventually(Duration::from_secs(20), "readyz", || {
            request(http, "GET", "/readyz", &[], None).is_some_and(|a| a.status == 200)
        });
        Self {
            runtime,
            running: Some(running),
            http,
        }
    }

    fn stop(mut self) {
        let running = self.running.take().expect("running");
        self.runtime.block_on(running.shutdown());
    }
}

#[test]
fn serve_answers_every_idempotency_rule_converges_and_keeps_its_state_across_restarts() {
    let data = scratch("single");
    let server = InProcess::start(&data);
    let http = server.http;

    let first = create(http, "key-a", "web", 2).expect("an answer");
    assert_eq!(first.status, 201, "{first:?}");
    let resource = first.json();
    assert_eq!(resource["generation"], 1);
    assert_eq!(resource["spec"]["replicas"], 2);
    assert!(
        first.headers.contains_key("idempotency-key-ttl-ms"),
        "{first:?}"
    );
    let id = resource["id"].as_str().expect("an id").to_string();

    let replay = create(http, "key-a", "web", 2).expect("an answer");
    assert_eq!(
        (replay.status, replay.body.as_str()),
        (201, first.body.as_str())
    );
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(create(http, "key-a", "other", 2).unwrap().status, 422);
    let no_key = request(
        http,
        "POST",
        "/v1/resources",
        &[JSON],
        Some(r#"{"name":"x","spec":{"replicas":1,"image":1}}"#),
    )
    .unwrap();
    assert_eq!(no_key.status, 400, "{no_key:?}");
    assert!(no_key.json()["error"].is_string());

    // Bad input never reaches a node: each gets its status and a JSON error.
    let bad = |method, path: &str, headers: &[(&str, &str)], body: Option<&str>| {
        let answer = request(http, method, path, headers, body).expect("an answer");
        assert!(answer.json()["error"].is_string(), "{answer:?}");
        answer.status
    };
    assert_eq!(
        bad(
            "POST",
            "/v1/resources",
            &[JSON, ("Idempotency-Key", "k")],
            Some("{\"name\":")
        ),
        400
    );
    assert_eq!(
        bad(
            "POST",
            "/v1/resources",
            &[("Idempotency-Key", "k")],
            Some("{}")
        ),
        415
    );
    let huge = format!(
        r#"{{"name": "{}", "spec": {{"replicas": 1, "image": 1}}}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(
        bad(
            "POST",
            "/v1/resources",
            &[JSON, ("Idempotency-Key", "k")],
            Some(&huge)
        ),
        413
    );
    assert_eq!(bad("GET", "/v2/nothing", &[], None), 404);
    assert_eq!(bad("PATCH", "/v1/resources/x", &[], None), 405);

    let converged = |desired: f64| {
        let text = metrics(http);
        metric(&text, "controlplane_resources_desired") == Some(desired)
            && metric(&text, "controlplane_resources_unconverged") == Some(0.0)
    };
    eventually(Duration::from_secs(20), "the create converges", || {
        converged(1.0)
    });
    // A read shows desired and observed state: the status the controller
    // wrote once the instances ran.
    let read = request(http, "GET", &format!("/v1/resources/{id}"), &[], None).unwrap();
    assert_eq!(read.status, 200, "{read:?}");
    let read = read.json();
    assert_eq!(
        (read["id"].as_str(), read["generation"].as_u64()),
        (Some(id.as_str()), Some(1))
    );
    assert_eq!(read["status"]["observed_generation"], 1, "{read}");
    assert_eq!(read["status"]["ready_replicas"], 2, "{read}");

    let second = create(http, "key-b", "db", 1).unwrap().json();
    let second_id = second["id"].as_str().unwrap().to_string();
    // Two resources, listed a page of one at a time, by id.
    let page =
        |query: &str| request(http, "GET", &format!("/v1/resources{query}"), &[], None).unwrap();
    let first_page = page("?limit=1");
    assert_eq!(first_page.status, 200, "{first_page:?}");
    let first_page = first_page.json();
    let next = first_page["next"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second_page = page(&format!("?limit=1&after={next}")).json();
    assert!(second_page["next"].is_null(), "{second_page}");
    let mut listed = vec![
        first_page["items"][0]["id"].as_str().unwrap().to_string(),
        second_page["items"][0]["id"].as_str().unwrap().to_string(),
    ];
    let mut ids = vec![id.clone(), second_id.clone()];
    assert!(listed[0] < listed[1], "by id: {listed:?}");
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
    assert_eq!(page("").json()["items"].as_array().unwrap().len(), 2);
    for bad in ["?limit=0", "?limit=1000", "?limit=x", "?colour=red"] {
        let answer = page(bad);
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert!(answer.json()["error"].is_string(), "{bad}: {answer:?}");
    }
    let update = request(
        http,
        "PUT",
        &format!("/v1/resources/{second_id}"),
        &[JSON, ("Idempotency-Key", "key-b-update")],
        Some(r#"{"spec": {"replicas": 3, "image": 2}}"#),
    )
    .unwrap();
    assert_eq!(update.status, 200, "{update:?}");
    assert_eq!(update.json()["generation"], 2);
    eventually(Duration::from_secs(20), "the update converges", || {
        converged(2.0)
    });
    let delete = request(
        http,
        "DELETE",
        &format!("/v1/resources/{second_id}"),
        &[("Idempotency-Key", "key-b-delete")],
        None,
    )
    .unwrap();
    assert_eq!(delete.status, 200, "{delete:?}");
    assert_eq!(
        request(
            http,
            "GET",
            &format!("/v1/resources/{second_id}"),
            &[],
            None
        )
        .unwrap()
        .status,
        404
    );
    eventually(Duration::from_secs(20), "the delete converges", || {
        converged(1.0)
    });
    let text = metrics(http);
    assert_eq!(
        metric(&text, "controlplane_charges_total"),
        Some(2.0),
        "{text}"
    );
    for per_node in [
        "controlplane_messages_sent_total{node=\"store\"}",
        "controlplane_messages_received_total{node=\"store\"}",
        "controlplane_durable_writes_total{node=\"store\"}",
    ] {
        assert!(
            metric(&text, per_node).is_some_and(|n| n > 0.0),
            "{per_node}: {text}"
        );
    }
    // What the controllers measure, and the store's commits seen.
    let passes = metric(
        &text,
        "controlplane_controller_reconcile_pass_seconds_count",
    );
    assert!(passes.is_some_and(|n| n >= 3.0), "{text}");
    assert!(
        text.contains("controlplane_controller_workqueue_depth{node=\"controller-"),
        "{text}"
    );
    // The first create and the update, at least, were waited for.
    let converged = metric(&text, "controlplane_convergence_seconds_count");
    assert!(converged.is_some_and(|n| n >= 2.0), "{text}");
    assert!(
        text.contains("controlplane_shard_token{shard=\"15\"}"),
        "{text}"
    );
    assert!(
        metric(&text, "controlplane_leader").is_some_and(|id| id >= 2.0),
        "{text}"
    );
    server.stop();

    // Started again from the same data directory: the resource, the ledger
    // and every boot counter survived.
    let server = InProcess::start(&data);
    let read = request(
        server.http,
        "GET",
        &format!("/v1/resources/{id}"),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json()["spec"], resource["spec"]);
    let replay = create(server.http, "key-a", "web", 2).unwrap();
    assert_eq!(
        (replay.status, replay.body.as_str()),
        (201, first.body.as_str())
    );
    // The metrics describe the whole run: the nodes' histories replayed.
    let text = metrics(server.http);
    assert_eq!(
        metric(&text, "controlplane_resources_desired"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "controlplane_charges_total"),
        Some(2.0),
        "{text}"
    );
    server.stop();
    let boots: Vec<u32> = std::fs::read_to_string(data.join("store/history.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<HistoryLine<Event>>(line)
                .unwrap()
                .boot
        })
        .collect();
    assert_eq!(
        (boots.first(), boots.last()),
        (Some(&0), Some(&1)),
        "the store's boots"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn an_admin_address_off_loopback_is_refused() {
    let data = scratch("admin");
    let output = common::controlplane(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--admin",
        "0.0.0.0:0",
    ]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("loopback only"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

/// Starts `serve` on a data directory whose store holds `state`: it must
/// stop with exit 9 and one line naming the file and saying each of
/// `wanted`, and leave the file as it was.
fn serve_refuses_the_state_file(name: &str, state: &[u8], wanted: &[&str]) {
    let data = scratch(name);
    std::fs::create_dir_all(data.join("store")).unwrap();
    std::fs::write(data.join("store/state.bin"), state).unwrap();
    let output = common::controlplane(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--http",
        "127.0.0.1:0",
    ]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert!(stderr.contains("store/state.bin"), "{stderr}");
    for words in wanted {
        assert!(stderr.contains(words), "{words:?}: {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_eq!(
        std::fs::read(data.join("store/state.bin")).unwrap(),
        state,
        "left untouched"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_corrupt_state_file_stops_serve_naming_the_file_and_keeps_it() {
    let garbage = b"CPST\x02\x00\x00\x00not a state file at all";
    serve_refuses_the_state_file("corrupt", garbage, &["corrupt"]);
}

#[test]
fn a_state_file_of_an_older_format_stops_serve_naming_it_and_keeps_it() {
    // A whole file of format 1: its header, then an empty payload.
    let mut old = b"CPST\x01\x00\x00\x00".to_vec();
    old.extend_from_slice(&0u64.to_le_bytes());
    old.extend_from_slice(&0u64.to_le_bytes());
    let wanted = [
        "state format 1, written by an older build",
        "remove the node's data directory",
    ];
    serve_refuses_the_state_file("old-format", &old, &wanted);
}

/// Role processes of a multi-process cluster, killed when dropped.
struct Processes {
    peers: PathBuf,
    /// Fixed admin addresses, for the roles whose metrics a test reads.
    admin: BTreeMap<String, SocketAddr>,
    data: PathBuf,
    children: BTreeMap<String, Child>,
}

impl Processes {
    fn spawn(&mut self, role: &str) {
        let log = std::fs::File::create(self.data.join(format!("{role}.log"))).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_controlplane"));
        command
            .args(["serve", "--role", role, "--peers"])
            .arg(&self.peers)
            .arg("--data")
            .arg(&self.data);
        if let Some(admin) = self.admin.get(role) {
            command.arg("--admin").arg(admin.to_string());
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        self.children.insert(role.to_string(), child);
    }

    /// `kill -9`: no chance to flush or clean up.
    fn kill(&mut self, role: &str) {
        let mut child = self.children.remove(role).expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Every line of one node's history.
fn history(data: &Path, node: &str) -> Vec<Event> {
    let text = std::fs::read_to_string(data.join(node).join("history.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<HistoryLine<Event>>(line).ok())
        .map(|line| line.event)
        .collect()
}

/// Whether the store's last commits show every live resource converged.
fn store_converged(data: &Path) -> bool {
    let mut desired = BTreeMap::new();
    let mut observed = BTreeMap::new();
    for event in history(data, "store") {
        match event {
            Event::DesiredWritten { id, resource, .. } => {
                desired.insert(id, resource);
            }
            Event::StatusStored { id, status, .. } => {
                observed.insert(id, status);
            }
            _ => {}
        }
    }
    desired.iter().all(|(id, resource)| match resource {
        None => true,
        Some(resource) => observed.get(id).copied().flatten().is_some_and(|status| {
            status.observed_generation == resource.generation
                && status.ready_replicas == resource.spec.replicas
        }),
    })
}

#[test]
fn killing_role_processes_mid_request_loses_nothing_and_charges_once() {
    let data = scratch("multi");
    let roles = [
        "store",
        "billing",
        "api-0",
        "api-1",
        "controller-0",
        "controller-1",
        "controller-2",
        "worker-0",
        "worker-1",
        "worker-2",
        "http-0",
    ];
    let ports = free_ports(roles.len() + 2);
    let store_admin: SocketAddr = format!("127.0.0.1:{}", ports[roles.len() + 1])
        .parse()
        .unwrap();
    let mut peers = String::from("[nodes]\n");
    for (role, port) in roles.iter().zip(&ports) {
        peers.push_str(&format!("{role} = \"127.0.0.1:{port}\"\n"));
    }
    let http: SocketAddr = format!("127.0.0.1:{}", ports[roles.len()]).parse().unwrap();
    peers.push_str(&format!("[http]\nhttp-0 = \"{http}\"\n"));
    let peers_path = data.join("peers.toml");
    std::fs::write(&peers_path, peers).unwrap();
    let mut cluster = Processes {
        peers: peers_path,
        admin: BTreeMap::from([("store".to_string(), store_admin)]),
        data: data.clone(),
        children: BTreeMap::new(),
    };
    for role in roles {
        cluster.spawn(role);
    }
    eventually(Duration::from_secs(30), "readyz", || {
        request(http, "GET", "/readyz", &[], None).is_some_and(|a| a.status == 200)
    });

    // A client creates resources one after another, each retried with its
    // key until it gets a final answer; meanwhile an API node, then billing
    // and then the store are killed with SIGKILL and restarted.
    let client = std::thread::spawn(move || {
        let mut created = BTreeMap::new();
        for n in 0..24 {
            let key = format!("load-{n}");
            let start = Instant::now();
            loop {
                assert!(
                    start.elapsed() < Duration::from_secs(40),
                    "{key}: no final answer"
                );
                match create(http, &key, &format!("r{n}"), 1 + n % 3) {
                    Some(answer) if answer.status == 201 => {
                        created.insert(key, answer.json()["id"].as_str().unwrap().to_string());
                        break;
                    }
                    Some(answer) => {
                        assert!([409, 503].contains(&answer.status), "{key}: {answer:?}")
                    }
                    None => {}
                }
                sleep(Duration::from_millis(100));
            }
            sleep(Duration::from_millis(150));
        }
        created
    });
    for victim in ["api-0", "billing", "store"] {
        sleep(Duration::from_millis(900));
        cluster.kill(victim);
        sleep(Duration::from_millis(300));
        cluster.spawn(victim);
    }
    let created = client.join().expect("the client finished");
    assert_eq!(created.len(), 24);

    // Every key created one resource, which is there, once.
    let ids: std::collections::BTreeSet<&String> = created.values().collect();
    assert_eq!(ids.len(), created.len(), "one resource per key");
    for (key, id) in &created {
        // A 503 says "retry" (a restarted node still catching up, or a
        // loaded machine): the resource must be there once answered.
        let mut read = None;
        for _ in 0..20 {
            read = request(http, "GET", &format!("/v1/resources/{id}"), &[], None);
            if read.as_ref().is_some_and(|read| read.status != 503) {
                break;
            }
            sleep(Duration::from_millis(250));
        }
        let read = read.expect("an answer");
        assert_eq!(read.status, 200, "{key}: {read:?}");
        let replay = create(
            http,
            key,
            &format!("r{}", &key[5..]),
            1 + key[5..].parse::<u32>().unwrap() % 3,
        )
        .unwrap();
        assert_eq!(
            replay.json()["id"].as_str(),
            Some(id.as_str()),
            "{key}: the replay"
        );
    }
    // Billing charged each key exactly once, by its own durable record.
    let mut charges: BTreeMap<String, u32> = BTreeMap::new();
    for event in history(&data, "billing") {
        if let Event::ChargeExecuted { key, .. } = event {
            *charges.entry(key).or_default() += 1;
        }
    }
    for key in created.keys() {
        assert_eq!(
            charges.get(key),
            Some(&1),
            "{key} charged once: {charges:?}"
        );
    }
    assert!(
        charges.values().all(|&n| n == 1),
        "no duplicate charge: {charges:?}"
    );
    eventually(Duration::from_secs(30), "every resource converges", || {
        store_converged(&data)
    });
    // The store's process, restarted mid-run, still counts every resource:
    // its metrics are rebuilt from its history at start.
    let text = metrics(store_admin);
    assert_eq!(
        metric(&text, "controlplane_resources_desired"),
        Some(24.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "controlplane_resources_unconverged"),
        Some(0.0),
        "{text}"
    );
    drop(cluster);

    // The run's own history, judged by the simulator's checkers.
    let output = common::controlplane(&["check", "--history", data.to_str().unwrap()]);
    let report = common::text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report}{}",
        common::text(&output.stderr)
    );
    for judged in [
        "always.one_charge_per_key",
        "always.one_resource_per_key",
        "always.action_runs_once",
    ] {
        assert!(
            report.contains(&format!("| `{judged}` | holds |")),
            "{judged}: {report}"
        );
    }
    let _ = std::fs::remove_dir_all(&data);
}
