//! The timeline in a real browser: a planted bug found by a sweep,
//! shrunk, replayed with `--timeline` and `--perfetto`; the page loaded
//! in headless Chromium, its DOM read back after the script ran, and a
//! screenshot taken. Chromium is a system package (`.ci/run` installs it
//! when missing); without it these tests fail and say how to get it.

mod common;

use common::{controlplane, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The property the planted bug breaks (its zoo exhibit).
const PROPERTY: &str = "always.one_active_holder";

fn scratch(name: &str) -> PathBuf {
    common::scratch("timeline", name)
}

/// `chromium` or `chromium-browser`, whichever is on the PATH.
fn chromium() -> PathBuf {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is needed to test the timeline in a browser, and neither \
             `chromium` nor `chromium-browser` is on the PATH: install it with \
             `apt-get install chromium` (sudo if not root), or run `.ci/run`, which does"
        )
    })
}

/// Runs Chromium headless on `url` with `extra` flags, killing it if it
/// has not finished within a minute (a hung browser fails the test, it
/// does not hang it). Its output goes to files in `profile`, not pipes:
/// a dumped DOM outgrows a pipe's buffer while nobody reads it.
fn headless(profile: &Path, url: &str, extra: &[&str]) -> Output {
    std::fs::create_dir_all(profile).expect("profile dir");
    let (out_path, err_path) = (profile.join("stdout"), profile.join("stderr"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--window-size=1600,900",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("data").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let read = |path: &Path| std::fs::read(path).unwrap_or_default();
    for _ in 0..600 {
        if let Some(status) = child.try_wait().expect("waits") {
            return Output {
                status,
                stdout: read(&out_path),
                stderr: read(&err_path),
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "chromium did not finish within a minute on {url}: {}",
        text(&read(&err_path))
    );
}

/// The `<body ...>` start tag of a dumped DOM.
fn body_tag(dom: &str) -> &str {
    let start = dom.find("<body").expect("a body");
    let end = start + dom[start..].find('>').expect("the tag ends");
    &dom[start..=end]
}

/// A real reproducer of a planted bug: the first failing seed of a sweep
/// with the bug planted, shrunk to a 1-minimal fault list.
fn reproducer(dir: &Path) -> PathBuf {
    let out = dir.join("sweep");
    let sweep = controlplane(&[
        "sweep",
        "--bug",
        "act-after-renew-failure",
        "--scenario",
        "partition-leader",
        "--seeds",
        "0..20",
        "--fail-fast",
        "--jobs",
        "1",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(sweep.status.code(), Some(3), "{}", text(&sweep.stdout));
    let failures = out.join("failures");
    let artifact = std::fs::read_dir(&failures)
        .expect("failures written")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|e| e == "json"))
        .expect("an artifact");
    let shrunk = dir.join("reproducer.min.json");
    let shrink = controlplane(&[
        "shrink",
        artifact.to_str().expect("utf-8"),
        "--out",
        shrunk.to_str().expect("utf-8"),
    ]);
    assert_eq!(shrink.status.code(), Some(0), "{}", text(&shrink.stderr));
    assert!(text(&shrink.stdout).contains("(1-minimal)"));
    shrunk
}

#[test]
fn a_zoo_reproducer_s_timeline_loads_in_chromium_without_script_errors_and_marks_the_violation() {
    let browser = chromium();
    let dir = scratch("reproducer");
    let artifact = reproducer(&dir);
    let page = dir.join("timeline.html");
    let trace = dir.join("trace.json");
    let replay = controlplane(&[
        "replay",
        artifact.to_str().expect("utf-8"),
        "--timeline",
        page.to_str().expect("utf-8"),
        "--perfetto",
        trace.to_str().expect("utf-8"),
    ]);
    let stderr = text(&replay.stderr);
    assert_eq!(replay.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("matches the artifact"), "{stderr}");
    assert!(stderr.contains("timeline: wrote"), "{stderr}");
    // The report prints as it did without the flags.
    let stdout = text(&replay.stdout);
    assert!(stdout.starts_with("# `partition-leader` seed"), "{stdout}");
    assert!(
        stdout.contains(&format!("| `{PROPERTY}` | **violated**")),
        "{stdout}"
    );

    let url = format!("file://{}", page.display());
    let dom = headless(&dir.join("profile-dom"), &url, &["--dump-dom"]);
    assert!(dom.status.success(), "{}", text(&dom.stderr));
    let dom = text(&dom.stdout);
    let body = body_tag(&dom);
    assert!(
        body.contains("data-ready=\"1\""),
        "the script finished: {body}"
    );
    assert!(
        body.contains("data-script-errors=\"\""),
        "no script errors: {body}"
    );
    let marker = format!("class=\"violation\" id=\"violation-0\" data-property=\"{PROPERTY}\"");
    assert!(dom.contains(&marker), "the violation marker is in the DOM");
    // The script drew the axis for the whole run.
    assert!(
        dom.contains("id=\"range\">showing 0.000 s to "),
        "axis label set"
    );

    // Zoomed to the violation and filtered to one shard by the link: the
    // script's zoom and filter paths run too, without errors.
    let zoomed = format!("{url}#t=6-9.5&filter=s:0");
    let dom = headless(&dir.join("profile-zoom"), &zoomed, &["--dump-dom"]);
    let dom = text(&dom.stdout);
    let body = body_tag(&dom);
    assert!(
        body.contains("data-ready=\"1\"") && body.contains("data-script-errors=\"\""),
        "{body}"
    );
    assert!(dom.contains("id=\"range\">showing 6.000 s to 9.500 s"));
    assert!(dom.contains("viewBox=\"6000 0 3500 "), "the plot zoomed");
    assert!(dom.contains(" dim\""), "marks of other shards are dimmed");
    assert!(dom.contains(&marker), "a violation is never filtered away");

    let shot = dir.join("timeline.png");
    let output = headless(
        &dir.join("profile-shot"),
        &url,
        &[&format!("--screenshot={}", shot.display())],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let png = std::fs::read(&shot).expect("the screenshot is written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert_eq!((width, height), (1600, 900));
    // A blank 1600x900 page compresses to a few kilobytes; lanes, bars
    // and text take tens.
    assert!(png.len() > 30_000, "a screenshot of {} bytes", png.len());
    eprintln!(
        "screenshot: {} ({} bytes) by {}",
        shot.display(),
        png.len(),
        browser.display()
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("trace written"))
            .expect("the Perfetto trace is JSON");
    let events = json["traceEvents"].as_array().expect("traceEvents");
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "i" && e["name"] == PROPERTY)
    );
    assert!(events.iter().any(|e| e["ph"] == "X" && e["cat"] == "lease"));
    assert!(events.iter().any(|e| e["ph"] == "C"));
}

#[test]
fn a_timeline_or_trace_that_cannot_be_written_exits_1_naming_the_file() {
    let dir = scratch("unwritable");
    let missing = dir.join("no-such-dir").join("t.html");
    let output = controlplane(&[
        "simulate",
        "--seed",
        "1",
        "--timeline",
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(missing.to_str().expect("utf-8")),
        "{stderr}"
    );
    assert!(stderr.contains("cannot write the timeline"), "{stderr}");
    let missing = dir.join("no-such-dir").join("t.json");
    let output = controlplane(&[
        "simulate",
        "--seed",
        "1",
        "--perfetto",
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("cannot write the perfetto"));
}

#[test]
fn simulate_with_a_timeline_prints_the_same_report_and_trace_hash_as_without() {
    let dir = scratch("same-report");
    let page = dir.join("t.html");
    let trace = dir.join("t.json");
    let plain = controlplane(&["simulate", "--scenario", "chaos", "--seed", "4"]);
    let drawn = controlplane(&[
        "simulate",
        "--scenario",
        "chaos",
        "--seed",
        "4",
        "--timeline",
        page.to_str().expect("utf-8"),
        "--perfetto",
        trace.to_str().expect("utf-8"),
    ]);
    assert_eq!(plain.status.code(), drawn.status.code());
    assert_eq!(text(&plain.stdout), text(&drawn.stdout));
    let html = std::fs::read_to_string(&page).expect("written");
    assert!(html.contains("chaos seed 4 on sim"));
    // Drawn twice, the same bytes.
    let again = dir.join("again.html");
    let output = controlplane(&[
        "simulate",
        "--scenario",
        "chaos",
        "--seed",
        "4",
        "--timeline",
        again.to_str().expect("utf-8"),
    ]);
    assert!(output.status.success());
    assert_eq!(html, std::fs::read_to_string(&again).expect("written"));
}

#[test]
fn every_lesson_s_timeline_loads_in_chromium_and_has_its_screenshot() {
    let docs = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/lessons"));
    let dir = scratch("lessons");
    for pattern in &dst::lessons::PATTERNS {
        let slug = pattern.slug;
        let page = docs.join(format!("{slug}.html"));
        assert!(page.is_file(), "docs/lessons/{slug}.html is committed");
        let url = format!("file://{}", page.display());
        let dom = headless(&dir.join(format!("profile-{slug}")), &url, &["--dump-dom"]);
        assert!(dom.status.success(), "{}", text(&dom.stderr));
        let dom = text(&dom.stdout);
        let body = body_tag(&dom);
        assert!(
            body.contains("data-ready=\"1\"") && body.contains("data-script-errors=\"\""),
            "{slug}: the script finished without errors: {body}"
        );
        assert!(
            dom.contains("class=\"violation\" id=\"violation-0\""),
            "{slug}: the reproducer's violation is marked"
        );
        // The picture the page shows: taken by `controlplane lessons` from
        // this page (its pixels depend on the browser, so only its form is
        // checked here).
        let png = std::fs::read(docs.join(format!("{slug}.png")))
            .unwrap_or_else(|_| panic!("docs/lessons/{slug}.png is committed"));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{slug}.png is a PNG");
        assert!(png.len() > 30_000, "{slug}.png: {} bytes", png.len());
    }
}
