//! The bug zoo on a live cluster: `serve --bug NAME` under `load` and
//! `chaos`, then `check --history` on what the cluster wrote. Each test
//! asserts the one property its bug breaks; the control test runs every
//! procedure on a cluster without a bug and asserts it passes, so each
//! catch is the bug's and not the procedure's.
//!
//! Everything goes through the built binary, on loopback, with ephemeral
//! ports and a data directory under the system's temp dir (kept, and
//! named on stderr, when a test fails). Children are killed when their
//! guard drops, so a failing assertion leaves nothing running. One live
//! cluster runs at a time (a lock), since the races these procedures open
//! are timed in tens of milliseconds on a shared 2-core machine.
//!
//! What reproduces and how (see the README's "The zoo on a live cluster"):
//!
//! | bug | procedure | property |
//! |---|---|---|
//! | `ledger-check-then-act` | every create sent twice at once; store -> api-1 clogged 200 ms, six times | `always.one_resource_per_key` |
//! | `side-effect-before-ledger` | API -> store cut one way for 3 s, the client killed before it heals | `eventually.keys_finished` (`--quiet`) |
//! | `edge-triggered` | 20 % of the workers' messages lost for 3 s | `eventually.converged` (`--quiet`) |
//! | `modulo-sharding` | the zoo's own shrunk reproducer (`chaos --from`): a controller crashed for 6 s | `cost.shard_movement` |
//! | `no-fencing` | shard 0's holder's sends to the workers clogged, then the holder paused past its lease | `always.one_instance_per_ordinal` (up to 3 tries) |
//! | `no-workqueue-dedup` | worker-2's links 130 ms slower, light load | `always.one_instance_per_ordinal` (up to 3 tries) |

// A live cluster is driven and waited for in real time, from threads: none
// of this is simulated code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_controlplane");

/// Tries for a bug whose live race fires in most runs, not all (about
/// five in six for each of `no-fencing` and `no-workqueue-dedup`).
const TRIES: u32 = 3;

/// One live cluster at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A test's turn: it holds the lock, and says how long the test took when
/// it ends.
struct Turn {
    _lock: MutexGuard<'static, ()>,
    test: &'static str,
    start: Instant,
}

fn one_at_a_time(test: &'static str) -> Turn {
    // A failed test poisons the lock; the next one may still run.
    let lock = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Turn {
        _lock: lock,
        test,
        start: Instant::now(),
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        eprintln!(
            "zoo_live: {} took {:.1} s",
            self.test,
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// A fresh directory for one run under the system's temp dir: the data
/// directory, the children's output, the artifacts. Removed when the run
/// ends, unless a test is failing or `ZOO_LIVE_KEEP` is set (then its
/// path is printed).
struct RunDir(PathBuf);

impl RunDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "zoo-live-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("data")).expect("a run directory");
        Self(path)
    }

    fn data(&self) -> PathBuf {
        self.0.join("data")
    }

    fn data_arg(&self) -> String {
        self.data().to_str().expect("a UTF-8 temp path").to_string()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("ZOO_LIVE_KEEP").is_some() {
            eprintln!("zoo_live: kept {} for a look", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process that is killed (and reaped) when the guard drops.
struct Guarded {
    child: Child,
    what: String,
}

impl Guarded {
    /// Starts `controlplane ARGS`, its stdout and stderr in `dir/LOG.out`
    /// and `dir/LOG.err`.
    fn spawn(dir: &Path, log: &str, args: &[String]) -> Self {
        let out = File::create(dir.join(format!("{log}.out"))).expect("a log file");
        let err = File::create(dir.join(format!("{log}.err"))).expect("a log file");
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("the binary starts");
        Self {
            child,
            what: format!("controlplane {}", args.join(" ")),
        }
    }

    /// Waits up to `limit` for the child to exit.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit`, and fails the test naming the command if it
    /// did not exit by then.
    fn finish(&mut self, limit: Duration) -> ExitStatus {
        match self.wait_for(limit) {
            Some(status) => status,
            None => panic!("`{}` did not end within {limit:?}", self.what),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs `controlplane ARGS` to its end (at most `limit`) and returns its
/// exit code and stdout.
fn run_command(dir: &Path, log: &str, args: &[String], limit: Duration) -> (i32, String) {
    let mut child = Guarded::spawn(dir, log, args);
    let status = child.finish(limit);
    let stdout = std::fs::read_to_string(dir.join(format!("{log}.out"))).unwrap_or_default();
    (status.code().unwrap_or(-1), stdout)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

/// One plain HTTP/1.1 exchange (`Connection: close`): the status and the
/// body; `None` if the connection failed.
fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    text.push_str("Content-Type: application/json\r\n");
    if let Some(key) = key {
        text.push_str(&format!("Idempotency-Key: {key}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(text.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.lines().next()?.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Frames the cluster's clogs have held so far, from the admin endpoint's
/// `/metrics` (which needs no token): printed, so a try that did not
/// break its property shows whether anything was held at all.
fn frames_held(run: &RunDir) -> Option<u64> {
    let admin: Value =
        serde_json::from_str(&std::fs::read_to_string(run.data().join("admin.json")).ok()?).ok()?;
    let address: SocketAddr = admin["url"]
        .as_str()?
        .strip_prefix("http://")?
        .parse()
        .ok()?;
    let (_, metrics) = http(address, "GET", "/metrics", None, "")?;
    metrics
        .lines()
        .find(|line| line.starts_with("controlplane_net_frames_by_fault{effect=\"held\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .map(|value| value as u64)
}

/// A running `controlplane serve`.
struct Serve {
    process: Guarded,
    http: SocketAddr,
}

impl Serve {
    /// Starts `serve` on ephemeral loopback ports with `extra` flags and
    /// waits until it is ready.
    fn start(run: &RunDir, extra: &[&str]) -> Self {
        let mut args = strings(&[
            "serve",
            "--data",
            &run.data_arg(),
            "--http",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ]);
        args.extend(strings(extra));
        let mut process = Guarded::spawn(&run.0, "serve", &args);
        // It prints `  http-0: API, /metrics, /healthz and /readyz at
        // http://ADDRESS` once every listener is bound, and writes
        // DATA/admin.json, which `chaos --data` reads.
        let start = Instant::now();
        let http = loop {
            let printed = std::fs::read_to_string(run.0.join("serve.out")).unwrap_or_default();
            let address = printed
                .lines()
                .find(|line| line.contains(": API, "))
                .and_then(|line| line.rsplit("http://").next())
                .and_then(|address| address.trim().parse::<SocketAddr>().ok());
            if let Some(address) = address
                && run.data().join("admin.json").is_file()
            {
                break address;
            }
            if let Some(status) = process.wait_for(Duration::ZERO) {
                let stderr = std::fs::read_to_string(run.0.join("serve.err")).unwrap_or_default();
                panic!("serve exited ({status}) before it served: {stderr}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve did not print its address within 30 s: {printed}"
            );
            sleep(Duration::from_millis(50));
        };
        let serve = Self { process, http };
        serve.wait_ready();
        serve
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while http(self.http, "GET", "/readyz", None, "").map(|(status, _)| status) != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve not ready within 30 s"
            );
            sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Creates (or, after the first time, replays) the one heartbeat
    /// resource: a replay is recorded by the API node (`Replayed`) without
    /// starting new work, so the history goes on through a quiet stretch
    /// (an idle cluster records nothing, and `check --quiet` judges the
    /// end only a liveness bound after the last new request).
    fn heartbeat(&self) -> Option<u16> {
        let answer = http(
            self.http,
            "POST",
            "/v1/resources",
            Some("zoo-live-heartbeat"),
            r#"{"name": "heartbeat", "spec": {"replicas": 1, "image": 1}}"#,
        );
        answer.map(|(status, _)| status)
    }

    /// Replays the heartbeat every 500 ms for `span`.
    fn heartbeats(&self, span: Duration) {
        let start = Instant::now();
        while start.elapsed() < span {
            let _ = self.heartbeat();
            sleep(Duration::from_millis(500));
        }
    }

    /// Stops serve the way Ctrl-C does (SIGINT), killing it if it lingers.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.process.child.id().to_string()])
            .status();
        if self.process.wait_for(Duration::from_secs(10)).is_none() {
            eprintln!("zoo_live: serve ignored SIGINT for 10 s; killed");
        }
    }
}

/// `controlplane load` against `serve`, started now.
fn load(run: &RunDir, serve: &Serve, rps: u32, duration: &str, extra: &[&str]) -> Guarded {
    let mut args = strings(&[
        "load",
        "--url",
        &serve.url(),
        "--rps",
        &rps.to_string(),
        "--duration",
        duration,
        "--data",
        &run.data_arg(),
    ]);
    args.extend(strings(extra));
    Guarded::spawn(&run.0, "load", &args)
}

/// `controlplane chaos ARGS --data DATA`; fails the test if chaos does.
fn chaos(run: &RunDir, args: &[&str]) -> String {
    let mut all = strings(&["chaos"]);
    all.extend(strings(args));
    all.extend(strings(&["--data", &run.data_arg()]));
    let (code, stdout) = run_to_end(run, "chaos", &all, Duration::from_secs(60));
    assert_eq!(code, 0, "chaos {args:?} failed: {stdout}");
    stdout
}

fn run_to_end(run: &RunDir, log: &str, args: &[String], limit: Duration) -> (i32, String) {
    let (code, stdout) = run_command(&run.0, log, args, limit);
    if code != 0 {
        let stderr = std::fs::read_to_string(run.0.join(format!("{log}.err"))).unwrap_or_default();
        return (code, format!("{stdout}{stderr}"));
    }
    (code, stdout)
}

/// The current holder of `shard`, from `chaos status --json`.
fn holder_of(run: &RunDir, shard: u64) -> String {
    let status: Value =
        serde_json::from_str(&chaos(run, &["status", "--json"])).expect("status is JSON");
    status["cluster"]["shards"]
        .as_array()
        .and_then(|shards| {
            shards
                .iter()
                .find(|lease| lease["shard"].as_u64().unwrap_or(0) == shard)
        })
        .and_then(|lease| lease["holder"].as_str())
        .unwrap_or_else(|| panic!("no holder of shard {shard} in {status}"))
        .to_string()
}

/// Sleeps until `at` after `start`.
fn at(start: Instant, at: f64) {
    let due = start + Duration::from_secs_f64(at);
    let now = Instant::now();
    if due > now {
        sleep(due - now);
    }
}

/// `check --history DATA --json` and its verdicts.
struct Verdicts {
    code: i32,
    report: Value,
}

impl Verdicts {
    fn check(run: &RunDir, extra: &[&str]) -> Self {
        let mut args = strings(&["check", "--history", &run.data_arg(), "--json"]);
        args.extend(strings(extra));
        let (code, stdout) = run_to_end(run, "check", &args, Duration::from_secs(60));
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|_| panic!("check printed no JSON (exit {code}): {stdout}"));
        Self { code, report }
    }

    fn verdict(&self, property: &str) -> &Value {
        self.report["verdicts"]
            .as_array()
            .and_then(|verdicts| verdicts.iter().find(|v| v["property"] == property))
            .unwrap_or_else(|| panic!("no verdict for {property}: {}", self.report))
    }

    /// `holds`, `violated`, `over budget` or `not judged`.
    fn judgement(&self, property: &str) -> String {
        self.verdict(property)["judgement"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    fn broken(&self, property: &str) -> bool {
        matches!(
            self.judgement(property).as_str(),
            "violated" | "over budget"
        )
    }

    /// One line per property that failed, with its first message.
    fn summary(&self) -> String {
        let mut lines = vec![format!(
            "check exited {} ({})",
            self.code, self.report["outcome"]
        )];
        for verdict in self.report["verdicts"].as_array().into_iter().flatten() {
            let judgement = verdict["judgement"].as_str().unwrap_or("?");
            if judgement == "violated" || judgement == "over budget" {
                let message = verdict["violations"][0]["message"].as_str().unwrap_or("");
                lines.push(format!(
                    "  {} {judgement}: {message}",
                    verdict["property"].as_str().unwrap_or("?")
                ));
            }
        }
        lines.join("\n")
    }
}

/// `--bug NAME` when planting it, nothing for the control.
fn bug_flags(bug: Option<&'static str>) -> Vec<&'static str> {
    bug.map_or_else(Vec::new, |name| vec!["--bug", name])
}

/// Every create sent twice at once (the edge sends the copies to api-0 and
/// api-1 in turn), while the store's replies to api-1 are held 200 ms six
/// times: api-1 reads "absent" for a key, api-0 records, charges and
/// commits it meanwhile, and api-1's unconditional record then restarts
/// the finished key, which its commit creates a second time.
fn ledger_check_then_act(bug: Option<&'static str>) -> Verdicts {
    let run = RunDir::new("ledger-check-then-act");
    let serve = Serve::start(&run, &bug_flags(bug));
    let start = Instant::now();
    let mut load = load(&run, &serve, 50, "5s", &["--duplicate-ppm", "1000000"]);
    for round in 0..6 {
        at(start, 1.0 + 0.5 * f64::from(round));
        chaos(&run, &["clog", "store", "api-1", "--for", "200ms"]);
    }
    load.finish(Duration::from_secs(60));
    serve.stop();
    Verdicts::check(&run, &[])
}

/// API nodes cut off from the store (one way) for 3 s: each create is
/// charged at billing first and then cannot be recorded; the client gives
/// up (killed) before the cut heals. With the key recorded first, nothing
/// is charged that the ledger does not hold, and the completer finishes
/// what was started. Judged with `--quiet` (a liveness bound after the
/// heal, replays keeping the history going): every fault has healed by
/// then, so the end is that of a healed run.
fn side_effect_before_ledger(bug: Option<&'static str>) -> Verdicts {
    let run = RunDir::new("side-effect-before-ledger");
    let serve = Serve::start(&run, &bug_flags(bug));
    assert_eq!(serve.heartbeat(), Some(201), "the heartbeat resource");
    let start = Instant::now();
    let mut load = load(&run, &serve, 20, "4s", &[]);
    at(start, 1.5);
    chaos(
        &run,
        &[
            "partition",
            "api-0,api-1",
            "store",
            "--one-way",
            "--for",
            "3s",
        ],
    );
    at(start, 4.0);
    let _ = load.child.kill();
    load.finish(Duration::from_secs(10));
    at(start, 5.0);
    serve.heartbeats(Duration::from_secs(5));
    serve.stop();
    Verdicts::check(&run, &["--quiet", "--liveness-bound-ms", "4000"])
}

/// 20 % of the workers' messages lost for 3 s under load: passes fail and
/// notifications are lost. Level-triggered controllers requeue failed
/// passes and resync every 2 s; edge-triggered ones never look again.
fn edge_triggered(bug: Option<&'static str>) -> Verdicts {
    let run = RunDir::new("edge-triggered");
    let serve = Serve::start(&run, &bug_flags(bug));
    assert_eq!(serve.heartbeat(), Some(201), "the heartbeat resource");
    let start = Instant::now();
    let mut load = load(&run, &serve, 20, "5s", &[]);
    at(start, 1.0);
    chaos(
        &run,
        &[
            "drop",
            "--ppm",
            "200000",
            "--nodes",
            "worker-0,worker-1,worker-2",
            "--for",
            "3s",
        ],
    );
    load.finish(Duration::from_secs(60));
    serve.heartbeats(Duration::from_secs(7));
    serve.stop();
    Verdicts::check(&run, &["--quiet", "--liveness-bound-ms", "5000"])
}

/// The zoo's own reproducer for `modulo-sharding`, as `sweep --bug all`
/// shrinks it (seed 0 of `shard-churn`: one controller crashed at 3 s and
/// restarted 6 s later), written to `dir`.
fn zoo_reproducer(dir: &Path, bug: &str) -> PathBuf {
    let out = dir.join("sweep");
    let args = strings(&[
        "sweep",
        "--bug",
        "all",
        "--seeds",
        "0..1",
        "--out",
        out.to_str().expect("UTF-8"),
    ]);
    // Exit 8: not every bug fires at seed 0; this one does.
    let (code, stdout) = run_command(dir, "sweep", &args, Duration::from_secs(120));
    let path = out.join("zoo").join(format!("{bug}.min.json"));
    assert!(
        path.is_file(),
        "the zoo wrote no reproducer for {bug} (exit {code}): {stdout}"
    );
    path
}

/// The simulator's reproducer played live: `serve --scenario shard-churn`
/// (five controllers, 32 shards) and `chaos --from` the zoo's artifact.
/// Hash-mod-n placement moves most shards when the crashed controller
/// leaves and again when it comes back.
fn modulo_sharding(bug: Option<&'static str>) -> Verdicts {
    let run = RunDir::new("modulo-sharding");
    let artifact = zoo_reproducer(&run.0, "modulo-sharding");
    let mut flags = vec!["--scenario", "shard-churn"];
    flags.extend(bug_flags(bug));
    let serve = Serve::start(&run, &flags);
    let mut load = load(&run, &serve, 10, "9s", &[]);
    // Blocks until the artifact's last fault has healed (9 s).
    chaos(&run, &["--from", artifact.to_str().expect("UTF-8")]);
    load.finish(Duration::from_secs(60));
    serve.stop();
    Verdicts::check(&run, &[])
}

/// The latency tail of the simulator's `delayed-actions`, aimed. Under
/// load, the workers' links are slowed 100 ms for 0.9 s, so a pass spends
/// a slowed round trip observing; 0.6 s in, shard 0's holder's sends to
/// every worker are held for 6 s, which catches the actions of the passes
/// that had already observed, and 300 ms later (once those passes have
/// acted) the holder is paused for 7 s, far past its 2 s lease. Its shards
/// move, the new holders start the instances that are missing, and then
/// the held actions land. A fencing worker rejects them (the new holders
/// raised its fence); `no-fencing` runs them beside the new ones.
fn no_fencing(bug: Option<&'static str>) -> Verdicts {
    let run = RunDir::new("no-fencing");
    let serve = Serve::start(&run, &bug_flags(bug));
    let start = Instant::now();
    let mut load = load(&run, &serve, 35, "9s", &[]);
    at(start, 1.0);
    let holder = holder_of(&run, 0);
    at(start, 2.0);
    chaos(
        &run,
        &[
            "delay",
            "--nodes",
            "worker-0,worker-1,worker-2",
            "--by",
            "100ms",
            "--for",
            "900ms",
        ],
    );
    at(start, 2.6);
    for worker in ["worker-0", "worker-1", "worker-2"] {
        chaos(&run, &["clog", &holder, worker, "--for", "6s"]);
    }
    sleep(Duration::from_millis(300));
    chaos(&run, &["pause", &holder, "--for", "7s"]);
    sleep(Duration::from_millis(500));
    eprintln!(
        "zoo_live: no-fencing: {:?} frames held from {holder} to the workers",
        frames_held(&run)
    );
    load.finish(Duration::from_secs(60));
    sleep(Duration::from_secs(1));
    serve.stop();
    Verdicts::check(&run, &[])
}

/// Light load with worker-2's links 130 ms slower: a pass waits about
/// 260 ms for worker-2's observation while its actions to the other
/// workers land at once, so a second pass of the same key handed out
/// meanwhile (a resync, a notification) observes before the first pass's
/// start lands and plans after its acknowledgement: the same ordinal
/// again. A deduplicating queue marks the key dirty instead.
fn no_workqueue_dedup(bug: Option<&'static str>) -> Verdicts {
    let run = RunDir::new("no-workqueue-dedup");
    let serve = Serve::start(&run, &bug_flags(bug));
    let start = Instant::now();
    let mut load = load(&run, &serve, 6, "6s", &[]);
    at(start, 1.0);
    chaos(
        &run,
        &[
            "delay", "--nodes", "worker-2", "--by", "130ms", "--for", "6s",
        ],
    );
    load.finish(Duration::from_secs(60));
    sleep(Duration::from_secs(1));
    serve.stop();
    Verdicts::check(&run, &[])
}

/// Runs `procedure` up to `tries` times until `property` breaks; returns
/// the last verdicts and the try that broke it.
fn until_broken(
    tries: u32,
    property: &str,
    procedure: impl Fn() -> Verdicts,
) -> (Verdicts, Option<u32>) {
    let mut last = None;
    for attempt in 1..=tries {
        let verdicts = procedure();
        if verdicts.broken(property) {
            eprintln!("zoo_live: {property} broken on try {attempt} of {tries}");
            return (verdicts, Some(attempt));
        }
        eprintln!(
            "zoo_live: try {attempt} of {tries} did not break {property}:\n{}",
            verdicts.summary()
        );
        last = Some(verdicts);
    }
    (last.expect("at least one try"), None)
}

/// Asserts that `verdicts` broke `property` and exited with `code`.
fn assert_caught(verdicts: &Verdicts, property: &str, code: i32) {
    let summary = verdicts.summary();
    assert!(
        verdicts.broken(property),
        "{property} not broken:\n{summary}"
    );
    assert_eq!(verdicts.code, code, "{summary}");
    assert!(
        verdicts.report["planted_bugs"]
            .as_array()
            .is_some_and(|bugs| !bugs.is_empty()),
        "the planted bug is named in the report:\n{summary}"
    );
}

#[test]
fn ledger_check_then_act_creates_a_second_resource_for_one_key() {
    let _turn = one_at_a_time("ledger_check_then_act_creates_a_second_resource_for_one_key");
    let verdicts = ledger_check_then_act(Some("ledger-check-then-act"));
    assert_caught(&verdicts, "always.one_resource_per_key", 3);
}

#[test]
fn side_effect_before_ledger_charges_keys_that_create_nothing() {
    let _turn = one_at_a_time("side_effect_before_ledger_charges_keys_that_create_nothing");
    let verdicts = side_effect_before_ledger(Some("side-effect-before-ledger"));
    assert_caught(&verdicts, "eventually.keys_finished", 4);
}

#[test]
fn edge_triggered_leaves_resources_unconverged_for_good() {
    let _turn = one_at_a_time("edge_triggered_leaves_resources_unconverged_for_good");
    let verdicts = edge_triggered(Some("edge-triggered"));
    assert_caught(&verdicts, "eventually.converged", 4);
}

#[test]
fn modulo_sharding_moves_most_shards_when_a_controller_leaves_and_returns() {
    let _turn =
        one_at_a_time("modulo_sharding_moves_most_shards_when_a_controller_leaves_and_returns");
    let verdicts = modulo_sharding(Some("modulo-sharding"));
    assert_caught(&verdicts, "cost.shard_movement", 7);
}

#[test]
fn no_fencing_runs_a_deposed_holders_held_action_beside_the_new_one() {
    let _turn = one_at_a_time("no_fencing_runs_a_deposed_holders_held_action_beside_the_new_one");
    let property = "always.one_instance_per_ordinal";
    let (verdicts, _) = until_broken(TRIES, property, || no_fencing(Some("no-fencing")));
    assert_caught(&verdicts, property, 3);
}

#[test]
fn no_workqueue_dedup_starts_one_ordinal_twice() {
    let _turn = one_at_a_time("no_workqueue_dedup_starts_one_ordinal_twice");
    let property = "always.one_instance_per_ordinal";
    let (verdicts, _) = until_broken(TRIES, property, || {
        no_workqueue_dedup(Some("no-workqueue-dedup"))
    });
    assert_caught(&verdicts, property, 3);
}

/// Every procedure above on a cluster without a bug: `check` passes, and
/// the property each bug breaks is judged and holds. Two clusters at a
/// time, to stay near 40 s.
#[test]
fn without_a_planted_bug_every_procedure_passes_check() {
    let _turn = one_at_a_time("without_a_planted_bug_every_procedure_passes_check");
    type Procedure = fn(Option<&'static str>) -> Verdicts;
    let halves: [Vec<(&str, &str, Procedure)>; 2] = [
        vec![
            ("no-fencing", "always.one_instance_per_ordinal", no_fencing),
            (
                "side-effect-before-ledger",
                "eventually.keys_finished",
                side_effect_before_ledger,
            ),
            (
                "no-workqueue-dedup",
                "always.one_instance_per_ordinal",
                no_workqueue_dedup,
            ),
        ],
        vec![
            ("modulo-sharding", "cost.shard_movement", modulo_sharding),
            ("edge-triggered", "eventually.converged", edge_triggered),
            (
                "ledger-check-then-act",
                "always.one_resource_per_key",
                ledger_check_then_act,
            ),
        ],
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .iter()
            .map(|half| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (name, property, procedure) in half {
                        let verdicts = procedure(None);
                        let judgement = verdicts.judgement(property);
                        if verdicts.code != 0 || judgement != "holds" {
                            failures.push(format!(
                                "{name}'s procedure without the bug: {property} {judgement}\n{}",
                                verdicts.summary()
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a control thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
