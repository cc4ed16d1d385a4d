//! `watch` against a real cluster, as a user runs it: `--once` printing a
//! frame, the one-line refusals at start, and the live view on a real
//! terminal (tmux), quit with `q`, the terminal put back.

// A real server and a real terminal are waited for in real time: none of
// this is simulated code.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;
#[path = "common/tmux.rs"]
mod tmux;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};
use tmux::Tmux;

const TOKEN: &str = "watch-test-token";

fn scratch(name: &str) -> PathBuf {
    common::scratch("watch", name)
}

/// Polls `ready` every 200 ms until it holds or `limit` passes.
fn eventually(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(200));
    }
}

/// A cluster in this process, with resources created and converged.
struct Cluster {
    runtime: tokio::runtime::Runtime,
    running: Option<host::Running>,
    /// The admin endpoint's base URL.
    admin: String,
    /// The resources created.
    ids: Vec<String>,
}

impl Cluster {
    /// Starts every node on loopback with `TOKEN`, creates `count`
    /// resources over HTTP and waits until every one converged, every
    /// shard is held and a leader is elected.
    fn start(data: &Path, count: usize) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let mut config =
            host::ServeConfig::single_process(data.to_path_buf(), "127.0.0.1:0".parse().unwrap());
        config.admin_token = Some(TOKEN.to_string());
        let running = runtime.block_on(host::start(config)).expect("serve starts");
        let admin = format!("http://{}", running.admin);
        let http = running.url();
        let client = reqwest::Client::new();
        let ready = || {
            runtime.block_on(async {
                let answer = client.get(format!("{http}/readyz")).send().await;
                answer.is_ok_and(|a| a.status() == 200)
            })
        };
        let mut ids = Vec::new();
        eventually(Duration::from_secs(30), "readyz", ready);
        for index in 0..count {
            let body = serde_json::json!({
                "name": format!("web-{index}"),
                "spec": {"replicas": 2, "image": 1},
            });
            let mut id = None;
            eventually(Duration::from_secs(30), "a create answered 201", || {
                id = runtime.block_on(async {
                    let answer = client
                        .post(format!("{http}/v1/resources"))
                        .header("Idempotency-Key", format!("watch-key-{index}"))
                        .json(&body)
                        .send()
                        .await
                        .ok()?;
                    if answer.status() != 201 {
                        return None;
                    }
                    let value: serde_json::Value = answer.json().await.ok()?;
                    value["id"].as_str().map(str::to_string)
                });
                id.is_some()
            });
            ids.push(id.expect("an id"));
        }
        let cluster = Cluster {
            runtime,
            running: Some(running),
            admin,
            ids,
        };
        eventually(Duration::from_secs(60), "converged", || {
            let status = cluster.status();
            let view = &status["cluster"];
            view["desired"] == count
                && view["unconverged"] == 0
                && view["observed"] == count
                && view["leader"]["holder"].is_string()
                && view["shards"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty() && s.iter().all(|l| l["holder"].is_string()))
        });
        cluster
    }

    /// `GET /admin/status`, or null.
    fn status(&self) -> serde_json::Value {
        self.runtime.block_on(async {
            let answer = reqwest::Client::new()
                .get(format!("{}/admin/status", self.admin))
                .bearer_auth(TOKEN)
                .send()
                .await;
            match answer {
                Ok(answer) => answer.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            }
        })
    }

    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The (holder, token) of every shard and the leader, from the status.
fn leases(status: &serde_json::Value) -> Vec<(String, u64)> {
    let view = &status["cluster"];
    view["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&view["leader"]))
        .map(|lease| {
            (
                lease["holder"].as_str().unwrap_or_default().to_string(),
                lease["token"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// A line of `frame` holding every one of `parts`.
fn has_line(frame: &str, parts: &[&str]) -> bool {
    frame
        .lines()
        .any(|line| parts.iter().all(|part| line.contains(part)))
}

#[test]
fn once_prints_the_cluster_its_leases_and_the_verdicts_as_plain_text() {
    let data = scratch("once");
    let mut cluster = Cluster::start(&data, 3);
    let status = cluster.status();
    // Found through the data directory, as `serve` leaves it.
    let file = controlplane::admin_client::AdminFile {
        url: cluster.admin.clone(),
        token: TOKEN.to_string(),
    };
    controlplane::admin_client::write_admin_file(&data, "admin.json", &file).unwrap();
    let output = common::controlplane(&[
        "watch",
        "--once",
        "--data",
        data.to_str().unwrap(),
        "--width",
        "110",
        "--height",
        "44",
    ]);
    let frame = common::text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{frame}{}",
        common::text(&output.stderr)
    );
    assert!(!frame.contains('\u{1b}'), "no terminal control: {frame:?}");
    assert_eq!(frame.lines().count(), 44, "{frame}");
    assert!(frame.lines().all(|line| line.chars().count() <= 110));
    assert!(
        frame.contains("3 desired, 3 observed, 0 unconverged"),
        "{frame}"
    );
    for id in &cluster.ids {
        assert!(has_line(&frame, &[id, "yes"]), "{id} converged in\n{frame}");
    }
    // Every shard holder and the leader, with the token the store holds
    // (the lease may have moved since: then the next status says so).
    let now = cluster.status();
    for (holder, token) in leases(&status) {
        let token_text = format!("token {token}");
        let moved = !leases(&now).contains(&(holder.clone(), token));
        assert!(
            moved || has_line(&frame, &[&holder, &token_text]),
            "{holder} {token_text} in\n{frame}"
        );
    }
    assert!(frame.contains("Faults: 0 active"), "{frame}");
    assert!(frame.contains("Always-properties so far"), "{frame}");
    assert!(frame.contains(" 0 VIOLATED"), "{frame}");
    for property in [
        "always.one_charge_per_key",
        "always.fencing_monotonic",
        "always.one_holder_per_token",
    ] {
        assert!(
            has_line(&frame, &["holds", property]),
            "{property}: {frame}"
        );
    }
    assert!(
        frame.contains("eventually (") && frame.contains("judged at the end"),
        "{frame}"
    );
    cluster.stop();
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn at_start_a_wrong_token_is_one_line_and_exit_13_and_no_server_is_exit_11() {
    let data = scratch("refused");
    let mut cluster = Cluster::start(&data, 0);
    let output = common::controlplane(&[
        "watch",
        "--once",
        "--url",
        &cluster.admin,
        "--token",
        "not-the-token",
    ]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(13), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("wrong admin token"), "{stderr}");
    assert!(output.stdout.is_empty());
    // No admin.json (an in-process start writes none): the error names
    // the file, exit 2.
    let output = common::controlplane(&["watch", "--once", "--data", data.to_str().unwrap()]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("admin.json"), "{stderr}");
    cluster.stop();

    // Stopped: nothing listens there any more.
    let output =
        common::controlplane(&["watch", "--once", "--url", &cluster.admin, "--token", TOKEN]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(11), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("cannot reach the admin endpoint"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn without_a_terminal_or_an_endpoint_watch_says_what_to_give() {
    let output = common::controlplane(&["watch", "--url", "http://127.0.0.1:9", "--token", "t"]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--once"), "{stderr}");
    let output = common::controlplane(&["watch", "--once"]);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--url"), "{stderr}");
    let output = common::controlplane(&[
        "watch", "--width", "80", "--url", "http://x", "--token", "t",
    ]);
    assert_eq!(output.status.code(), Some(2), "--width needs --once");
    let output = common::controlplane(&["watch", "--once", "--interval", "0s"]);
    assert_eq!(output.status.code(), Some(2), "an interval of 0");
}

/// Typing into the session.
trait Keys {
    fn keys(&self, keys: &str);
}

impl Keys for Tmux {
    fn keys(&self, keys: &str) {
        let output = self.command(&["send-keys", "-t", self.session(), keys]);
        assert!(output.status.success(), "send-keys {keys}");
    }
}

#[test]
fn the_live_view_draws_on_a_terminal_survives_a_dead_server_and_quits_on_q_restoring_it() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (CI installs it: .ci/run)");
        return;
    }
    let data = scratch("live");
    let mut cluster = Cluster::start(&data, 2);
    let marker = data.join("exited");
    let stty = data.join("stty");
    // Before and after: the shell's own screen, which the alternate
    // screen must give back; stty shows whether raw mode was left on.
    let script = format!(
        "echo BEFORE-WATCH; {bin} watch --url {url} --token {TOKEN} --interval 300ms; \
         echo EXITED:$? > {marker}; stty -a > {stty}; echo AFTER-WATCH; sleep 60",
        bin = env!("CARGO_BIN_EXE_controlplane"),
        url = cluster.admin,
        marker = marker.display(),
        stty = stty.display(),
    );
    let tmux = Tmux::new("watch");
    let started = tmux.command(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        tmux.session(),
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        started.status.success(),
        "tmux: {}",
        common::text(&started.stderr)
    );

    let screen = tmux.wait_for(
        &[
            &cluster.ids[0],
            &cluster.ids[1],
            "0 unconverged",
            "Always-properties so far",
        ],
        Duration::from_secs(30),
    );
    assert!(screen.contains("q/Esc/Ctrl-C quit"), "{screen}");
    assert!(screen.contains("0 VIOLATED"), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("leader") && l.contains("token")),
        "{screen}"
    );
    assert!(
        !screen.contains("BEFORE-WATCH"),
        "on the alternate screen:\n{screen}"
    );

    tmux.keys("p");
    tmux.wait_for(&["PAUSED"], Duration::from_secs(10));
    tmux.keys("p");

    // The server goes away mid-watch: the view says so and goes on.
    cluster.stop();
    let screen = tmux.wait_for(&["UNREACHABLE", "retrying"], Duration::from_secs(30));
    assert!(
        screen.contains(&cluster.ids[0]),
        "the last status stays:\n{screen}"
    );

    tmux.keys("q");
    eventually(Duration::from_secs(10), "watch exits on q", || {
        std::fs::read_to_string(&marker).is_ok_and(|text| text.contains("EXITED:"))
    });
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "EXITED:0");
    eventually(Duration::from_secs(5), "stty ran", || {
        std::fs::read_to_string(&stty).is_ok_and(|text| text.contains("icanon"))
    });
    let modes = std::fs::read_to_string(&stty).unwrap();
    let flags: Vec<&str> = modes.split_whitespace().collect();
    for cooked in ["icanon", "echo", "isig"] {
        assert!(flags.contains(&cooked), "raw mode left on: {modes}");
    }
    let screen = tmux.wait_for(&["AFTER-WATCH"], Duration::from_secs(5));
    assert!(
        screen.contains("BEFORE-WATCH"),
        "the main screen is back:\n{screen}"
    );
    assert!(
        !screen.contains("Always-properties"),
        "the frame is gone with the alternate screen:\n{screen}"
    );
    drop(tmux);
    let _ = std::fs::remove_dir_all(&data);
}
