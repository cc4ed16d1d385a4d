//! The view drawn from a hand-built status, the sparkline's buckets, and
//! the keys.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::json;

use super::view::{self, Board, Judged, Link, Screen, Status, VerdictRow, Verdicts};
use super::{Action, action};

/// Wall-clock ms the hand-built status is stamped around.
const NOW_MS: u64 = 1_800_000_000_000;

/// A status as `GET /admin/status` sends it: three resources (one
/// unconverged), two shards, a leader, a partition between the store and
/// api-0 healing in 12 s, and an unconverged count that rose to 2 a minute
/// ago and fell to 1.
fn status() -> Status {
    let names = [
        "store",
        "billing",
        "api-0",
        "controller-0",
        "controller-1",
        "worker-0",
        "http-0",
    ];
    serde_json::from_value(json!({
        "names": names,
        "nodes": {"store": "127.0.0.1:4000"},
        "http": {"http-0": "127.0.0.1:8080"},
        "data": "/tmp/watch-data",
        "faults": [{
            "id": 7,
            "fault": {"kind": "partition", "side_a": [0], "side_b": [2],
                      "one_way": false, "duration_ns": 30_000_000_000u64},
            "started_ms_ago": 18_000,
            "heals_in_ms": 12_000,
        }],
        "faults_injected": {"partition": 1},
        "cluster": {
            "sees_store": true,
            "desired": 3,
            "observed": 3,
            "unconverged": 1,
            "unconverged_series": [
                [NOW_MS - 60_000, 1], [NOW_MS - 59_000, 2], [NOW_MS - 30_000, 1]
            ],
            "resources": [
                {"id": "r00000000000000aa", "generation": 1, "replicas": 2,
                 "observed_generation": 1, "ready_replicas": 2, "converged": true},
                {"id": "r00000000000000bb", "generation": 3, "replicas": 5,
                 "observed_generation": 2, "ready_replicas": 4, "converged": false},
                {"id": "r00000000000000cc", "generation": 1, "replicas": 1,
                 "observed_generation": 1, "ready_replicas": 1, "converged": true},
            ],
            "shards": [
                {"shard": 0, "holder": "controller-1", "token": 57},
                {"shard": 1, "holder": "controller-0", "token": 61},
            ],
            "leader": {"shard": null, "holder": "controller-0", "token": 12},
        },
    }))
    .expect("the wire format deserializes")
}

fn board() -> Board {
    let row = |property: &str, judgement, detail: Option<&str>| VerdictRow {
        property: property.to_string(),
        judgement,
        detail: detail.map(str::to_string),
    };
    Board {
        always: vec![
            row("always.one_charge_per_key", Judged::Holds, None),
            row(
                "always.fencing_monotonic",
                Judged::Violated,
                Some("worker-0 accepted token 3 after 5 (worker-0/history.jsonl line 9)"),
            ),
            row("always.one_active_holder", Judged::NotJudged, None),
        ],
        eventually: 5,
        lines: 420,
    }
}

fn screen() -> Screen {
    let mut screen = Screen::new(
        "http://127.0.0.1:9999".to_string(),
        Duration::from_secs(1),
        true,
    );
    screen.status = Some(status());
    screen.verdicts = Verdicts::Ready(board(), 2_000);
    screen.now_ms = NOW_MS;
    screen
}

fn line_with<'a>(frame: &'a str, needle: &str) -> &'a str {
    frame
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{frame}"))
}

#[test]
fn the_frame_shows_resources_leases_faults_the_count_and_the_verdicts() {
    let frame = view::plain_text(&screen(), 100, 40);
    assert_eq!(frame.lines().count(), 40, "{frame}");
    assert!(frame.lines().all(|line| line.chars().count() <= 100));
    assert!(
        frame.contains("3 desired, 3 observed, 1 unconverged"),
        "{frame}"
    );
    // Each resource with desired and observed; the unconverged one first.
    let unconverged = line_with(&frame, "r00000000000000bb");
    for cell in ["3", "5", "2", "4", "NO"] {
        assert!(unconverged.contains(cell), "{unconverged}");
    }
    let position = |id: &str| frame.find(id).expect(id);
    assert!(position("r00000000000000bb") < position("r00000000000000aa"));
    assert!(line_with(&frame, "r00000000000000aa").contains("yes"));
    assert!(line_with(&frame, "r00000000000000cc").contains("yes"));
    // Holders with their fencing tokens, and the leader.
    let shard0 = line_with(&frame, "shard  0");
    assert!(
        shard0.contains("controller-1") && shard0.contains("token 57"),
        "{shard0}"
    );
    let shard1 = line_with(&frame, "shard  1");
    assert!(
        shard1.contains("controller-0") && shard1.contains("token 61"),
        "{shard1}"
    );
    let leader = line_with(&frame, "leader ");
    assert!(
        leader.contains("controller-0") && leader.contains("token 12"),
        "{leader}"
    );
    assert!(frame.contains("2 of 2 shards held"), "{frame}");
    // The fault by node names, with the time it has left.
    let fault = line_with(&frame, "#7 partition [store] | [api-0] for 30.000 s");
    assert!(fault.contains("heals in 12.0 s"), "{fault}");
    assert!(
        frame.contains("1 injected since start: partition 1"),
        "{frame}"
    );
    // The sparkline's title: the peak of the last five minutes.
    assert!(frame.contains("Unconverged: 1 now, peak 2"), "{frame}");
    // Verdicts: one of each word, the violation's detail, eventually aside.
    assert!(
        line_with(&frame, "always.one_charge_per_key").contains("holds"),
        "{frame}"
    );
    line_with(&frame, "VIOLATED   always.fencing_monotonic");
    assert!(line_with(&frame, "always.one_active_holder").contains("not judged"));
    assert!(frame.contains("accepted token 3 after 5 (worker-0/history.jsonl line 9)"));
    assert!(
        frame.contains("1 holds, 1 VIOLATED, 1 not judged"),
        "{frame}"
    );
    assert!(
        frame.contains("420 history lines, judged 2.0 s ago; eventually (5): judged at the end"),
        "{frame}"
    );
    assert!(frame.contains("q/Esc/Ctrl-C quit"), "{frame}");
}

#[test]
fn the_frame_says_when_the_server_is_unreachable_and_keeps_the_last_status() {
    let mut screen = screen();
    screen.link = Link::Down {
        error: "cannot reach the admin endpoint at http://127.0.0.1:9999: Connection refused"
            .to_string(),
        tries: 3,
    };
    screen.status_age_ms = 4_200;
    let frame = view::plain_text(&screen, 100, 40);
    let line = line_with(&frame, "UNREACHABLE");
    assert!(line.contains("retrying every 1.0 s"), "{line}");
    assert!(line.contains("(3 tries, last status 4.2 s ago)"), "{line}");
    assert!(
        frame.contains("Connection refused"),
        "wrapped onto the next line:\n{frame}"
    );
    // What was seen last is still there; the fault's countdown moved on.
    assert!(frame.contains("r00000000000000bb"));
    assert!(frame.contains("heals in 7.8 s"), "{frame}");
}

#[test]
fn a_paused_view_says_so() {
    let mut screen = screen();
    screen.paused = true;
    let frame = view::plain_text(&screen, 100, 40);
    assert!(frame.contains("PAUSED"), "{frame}");
}

#[test]
fn scrolling_moves_the_resource_rows_and_stops_at_the_ends() {
    let mut screen = screen();
    let first = view::plain_text(&screen, 100, 30);
    assert!(first.contains("r00000000000000bb"), "{first}");
    screen.scroll_by(2);
    assert_eq!(screen.scroll, 2);
    screen.scroll_by(isize::MAX / 2);
    assert_eq!(screen.scroll, 2, "at most the last row");
    screen.scroll_by(-1);
    screen.scroll_by(isize::MIN / 2);
    assert_eq!(screen.scroll, 0);
}

#[test]
fn a_narrow_short_frame_still_draws_and_says_what_it_hides() {
    let mut screen = screen();
    let status = screen.status.as_mut().unwrap();
    status.cluster.shards = (0..16)
        .map(|shard| host::metrics::LeaseRow {
            shard: Some(shard),
            holder: Some(format!("controller-{}", shard % 3)),
            token: 100 + u64::from(shard),
        })
        .collect();
    let frame = view::plain_text(&screen, 60, 24);
    assert_eq!(frame.lines().count(), 24);
    assert!(frame.contains("... 10 more"), "{frame}");
}

#[test]
fn a_process_without_the_store_says_where_to_look() {
    let mut screen = screen();
    screen.status.as_mut().unwrap().cluster = host::metrics::ClusterView::default();
    let frame = view::plain_text(&screen, 100, 40);
    assert!(frame.contains("does not host the store"), "{frame}");
}

#[test]
fn buckets_keep_the_peak_of_each_bucket_and_carry_the_count_between_changes() {
    let now = 100_000;
    // 0 until 12 s, then 3, a spike to 5 for 1 s at 30 s, back to 0 at 41 s.
    let series = [(12_000, 3), (30_000, 5), (31_000, 3), (41_000, 0)];
    let bars = view::buckets(&series, now, 10_000, 10);
    assert_eq!(bars, vec![0, 3, 3, 5, 3, 0, 0, 0, 0, 0]);
    // Before any change the count is 0; a change long ago carries over.
    assert_eq!(view::buckets(&[], now, 5_000, 3), vec![0, 0, 0]);
    assert_eq!(view::buckets(&[(1_000, 4)], now, 5_000, 3), vec![4, 4, 4]);
    // Now earlier than the whole span: no underflow.
    assert_eq!(view::buckets(&[(0, 2)], 1_000, 5_000, 2), vec![2, 2]);
}

#[test]
fn keys_map_to_actions() {
    let key = |code, modifiers| KeyEvent::new(code, modifiers);
    let none = KeyModifiers::NONE;
    assert_eq!(action(key(KeyCode::Char('q'), none)), Some(Action::Quit));
    assert_eq!(action(key(KeyCode::Esc, none)), Some(Action::Quit));
    assert_eq!(
        action(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    assert_eq!(action(key(KeyCode::Char('c'), none)), None);
    assert_eq!(action(key(KeyCode::Char('p'), none)), Some(Action::Pause));
    assert_eq!(action(key(KeyCode::Char('r'), none)), Some(Action::Refresh));
    assert_eq!(action(key(KeyCode::Down, none)), Some(Action::Scroll(1)));
    assert_eq!(
        action(key(KeyCode::Char('k'), none)),
        Some(Action::Scroll(-1))
    );
    let mut release = key(KeyCode::Char('q'), none);
    release.kind = KeyEventKind::Release;
    assert_eq!(action(release), None);
}
