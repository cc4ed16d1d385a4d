//! `test-remote` and `load` against a real server started in this process
//! on ephemeral loopback ports: every case of the suite passes, a short
//! load charges no key twice; and the commands' answers to a closed port
//! and to bad flags.

// Real servers, real time: these tests start the host and wait on it.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{controlplane, text};
use controlplane::load::{Charges, LoadOptions, run_load};
use controlplane::remote::{SuiteOptions, Verdict, markdown, run_suite};

/// A data directory of its own, removed when the test ends (or fails).
struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the target's scratch space, named for this
    /// process so parallel runs do not meet.
    fn new(name: &str) -> Self {
        Self(common::scratch(
            "remote",
            &format!("{name}-{}", std::process::id()),
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_suite_passes_and_a_short_load_charges_no_key_twice() {
    let data = TempDir::new("suite");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = host::ServeConfig::single_process(
            data.0.clone(),
            "127.0.0.1:0".parse().expect("address"),
        );
        let running = host::start(config).await.expect("the server starts");
        let url = running.url();

        let options = SuiteOptions {
            timeout: Duration::from_secs(30),
        };
        let cases = tokio::time::timeout(Duration::from_secs(240), run_suite(&url, options))
            .await
            .expect("the suite ends in time")
            .expect("the server is reachable");
        let table = markdown(&url, &cases);
        println!("{table}");
        for case in &cases {
            assert_eq!(
                case.verdict,
                Verdict::Pass,
                "{}: {}\n{table}",
                case.name,
                case.detail
            );
        }

        let options = LoadOptions {
            url: url.clone(),
            rps: 50,
            duration: Duration::from_secs(2),
            concurrency: 64,
            duplicate_ppm: 100_000,
            attempts: 6,
            data: Some(data.0.clone()),
        };
        let report = tokio::time::timeout(Duration::from_secs(120), run_load(&options))
            .await
            .expect("the load ends in time")
            .expect("the server is reachable");
        let rendered = controlplane::load::markdown(&report);
        println!("{rendered}");
        assert!(report.succeeded > 0, "{rendered}");
        assert!(
            matches!(report.charges, Charges::History { .. }),
            "{rendered}"
        );
        assert_eq!(report.charges.duplicates(), Some(0), "{rendered}");
        assert_eq!(report.disagreement_count, 0, "{rendered}");
        assert_eq!(report.exit_code(), 0, "{rendered}");

        // From /metrics the same run's bound must also show no duplicate.
        let options = LoadOptions {
            data: None,
            duration: Duration::from_secs(1),
            ..options
        };
        let report = tokio::time::timeout(Duration::from_secs(120), run_load(&options))
            .await
            .expect("the load ends in time")
            .expect("the server is reachable");
        let rendered = controlplane::load::markdown(&report);
        assert!(
            matches!(report.charges, Charges::Metrics { .. }),
            "{rendered}"
        );
        assert_eq!(report.charges.duplicates(), Some(0), "{rendered}");

        running.shutdown().await;
    });
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("bound").port()
}

#[test]
fn a_closed_port_is_one_line_and_exit_11() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    for args in [
        vec!["test-remote", "--url", &url],
        vec!["load", "--url", &url, "--rps", "10", "--duration", "1s"],
    ] {
        let output = controlplane(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(11), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.starts_with("load: "))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: cannot reach the server at http://127.0.0.1:"),
            "{stderr}"
        );
        assert!(text(&output.stdout).is_empty(), "{args:?}");
    }
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let port = closed_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["load", "--url", &url, "--rps", "0", "--duration", "1s"],
            "error: --rps 0: must be from 1 to 100000",
        ),
        (
            vec!["load", "--url", &url, "--rps", "5", "--duration", "-1s"],
            "error: --duration `-1s`: a duration cannot be negative",
        ),
        (
            vec!["load", "--url", &url, "--rps", "5", "--duration", "30"],
            "error: --duration `30`: `30` has no unit",
        ),
        (
            vec![
                "load",
                "--url",
                "localhost",
                "--rps",
                "5",
                "--duration",
                "1s",
            ],
            "error: --url `localhost`: not a URL",
        ),
        (
            vec!["test-remote", "--url", "https://example.invalid"],
            "error: --url `https://example.invalid`: scheme `https` is not supported",
        ),
        (
            vec!["test-remote", "--url", &url, "--timeout-s", "-3"],
            "error: --timeout-s `-3`: expected a whole number",
        ),
    ];
    for (args, expected) in cases {
        let output = controlplane(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
    }
}
