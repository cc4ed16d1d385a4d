//! What `watch` draws: a [`Screen`] (the last status, the last verdicts,
//! and the viewer's own state) rendered into a ratatui frame. Pure: no
//! clock, no I/O, so `watch --once`, the live view and the tests draw the
//! same thing from the same data.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use host::faults::ActiveFault;
use host::metrics::{ClusterView, LeaseRow, ResourceRow};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table, Wrap};
use serde::Deserialize;

/// One bar of the unconverged sparkline spans this long.
pub const BUCKET_MS: u64 = 5_000;
/// The sparkline reaches back at most this many bars (five minutes).
pub const BUCKETS_MAX: usize = 60;

/// `GET /admin/status`, as `serve` answers it (see `host::admin`).
#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    /// Member names by node id: fault node ids index it.
    pub names: Vec<String>,
    /// The nodes this process runs, with their TCP addresses.
    #[serde(default)]
    pub nodes: BTreeMap<String, String>,
    /// The HTTP edges this process runs, with their addresses.
    #[serde(default)]
    pub http: BTreeMap<String, String>,
    /// The process's data directory, where the histories are.
    pub data: PathBuf,
    /// The faults active now.
    #[serde(default)]
    pub faults: Vec<ActiveFault>,
    /// Faults injected since start, by kind.
    #[serde(default)]
    pub faults_injected: BTreeMap<String, u64>,
    /// Desired against observed, leases, the unconverged series.
    pub cluster: ClusterView,
}

/// Whether the last status request got an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// It did.
    Up,
    /// It did not: why (one line), and how many tries in a row failed.
    Down {
        /// The error, as `AdminError` prints it.
        error: String,
        /// Failed tries since the last answer.
        tries: u64,
    },
}

/// One always-property's verdict, as the screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictRow {
    /// `always.one_charge_per_key`.
    pub property: String,
    /// `holds`, `VIOLATED` or `not judged`.
    pub judgement: Judged,
    /// For a violation: the first one's message and where it points.
    pub detail: Option<String>,
}

/// A verdict in one of three words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    /// Judged, never broken.
    Holds,
    /// Judged, broken at least once.
    Violated,
    /// The real history cannot judge it (see `check --history`).
    NotJudged,
}

impl Judged {
    fn word(self) -> &'static str {
        match self {
            Judged::Holds => "holds",
            Judged::Violated => "VIOLATED",
            Judged::NotJudged => "not judged",
        }
    }

    fn style(self) -> Style {
        match self {
            Judged::Holds => Style::new().fg(Color::Green),
            Judged::Violated => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            Judged::NotJudged => Style::new().fg(Color::DarkGray),
        }
    }
}

/// The verdicts of one check of the history so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Board {
    /// The always-properties, in the checkers' order.
    pub always: Vec<VerdictRow>,
    /// How many eventually-properties there are: judged only at the end.
    pub eventually: usize,
    /// History lines read.
    pub lines: u64,
}

impl Board {
    /// The board of a real-run check: its always-properties; the
    /// eventually-properties only counted (a live run has not ended, so
    /// they cannot be judged yet); cost measurements left out.
    pub fn of(report: &dst::real::RealCheckReport) -> Board {
        use dst::check::{Judgement, PropertyKind};
        let mut board = Board {
            lines: report.read.lines,
            ..Board::default()
        };
        for real in &report.verdicts {
            let verdict = &real.verdict;
            match verdict.kind {
                PropertyKind::Always => {}
                PropertyKind::Eventually => {
                    board.eventually += 1;
                    continue;
                }
                PropertyKind::Cost => continue,
            }
            let (judgement, detail) = match verdict.judgement() {
                Judgement::Holds => (Judged::Holds, None),
                Judgement::NotJudged(_) => (Judged::NotJudged, None),
                Judgement::Violated => {
                    let first = verdict.violations.first().map(|v| v.message.clone());
                    let at = real.locations.first().cloned();
                    let detail = match (first, at) {
                        (Some(message), Some(at)) => format!("{message} ({at})"),
                        (Some(message), None) => message,
                        (None, _) => format!("{} violations", verdict.violation_count),
                    };
                    (Judged::Violated, Some(detail))
                }
            };
            board.always.push(VerdictRow {
                property: verdict.property.to_string(),
                judgement,
                detail,
            });
        }
        board
    }

    fn count(&self, judged: Judged) -> usize {
        self.always
            .iter()
            .filter(|row| row.judgement == judged)
            .count()
    }
}

/// Where the verdicts are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdicts {
    /// The first check has not finished.
    Pending,
    /// The last check's board, and how long ago it finished, ms.
    Ready(Board, u64),
    /// The history could not be read (one line).
    Failed(String),
}

/// Everything one frame shows.
#[derive(Clone, Debug)]
pub struct Screen {
    /// The admin endpoint watched.
    pub url: String,
    /// The last status answered, if any was.
    pub status: Option<Status>,
    /// How long ago that status was answered, ms.
    pub status_age_ms: u64,
    /// Whether the last request was answered.
    pub link: Link,
    /// The always-properties' verdicts.
    pub verdicts: Verdicts,
    /// Refreshing is paused (`p`).
    pub paused: bool,
    /// First resource row shown.
    pub scroll: usize,
    /// How often the status is asked for.
    pub interval: Duration,
    /// The host wall clock now, ms since the Unix epoch: the unconverged
    /// series is stamped with it.
    pub now_ms: u64,
    /// Show the keys in the footer (the live view) or not (`--once`).
    pub live: bool,
}

impl Screen {
    /// A screen with nothing to show yet.
    pub fn new(url: String, interval: Duration, live: bool) -> Self {
        Screen {
            url,
            status: None,
            status_age_ms: 0,
            link: Link::Up,
            verdicts: Verdicts::Pending,
            paused: false,
            scroll: 0,
            interval,
            now_ms: 0,
            live,
        }
    }

    /// The resources, unconverged first, then by id.
    pub fn resources(&self) -> Vec<&ResourceRow> {
        let mut rows: Vec<&ResourceRow> = self
            .status
            .iter()
            .flat_map(|status| status.cluster.resources.iter())
            .collect();
        rows.sort_by(|a, b| a.converged.cmp(&b.converged).then(a.id.cmp(&b.id)));
        rows
    }

    /// Moves the resource list by `delta` rows, kept within the list.
    pub fn scroll_by(&mut self, delta: isize) {
        let last = self.resources().len().saturating_sub(1);
        self.scroll = self.scroll.saturating_add_signed(delta).min(last);
    }
}

/// Draws `screen` into `frame`.
pub fn render(frame: &mut Frame, screen: &Screen) {
    let area = frame.area();
    let verdict_height = verdict_height(screen, area.width);
    let fault_height = fault_height(screen);
    let header_height = if screen.link == Link::Up { 2 } else { 3 };
    let [header, top, faults, verdicts, footer] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Min(6),
        Constraint::Length(fault_height),
        Constraint::Length(verdict_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let [left, leases] =
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(top);
    let [resources, sparkline] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(6)]).areas(left);
    render_header(frame, header, screen);
    render_resources(frame, resources, screen);
    render_sparkline(frame, sparkline, screen);
    render_leases(frame, leases, screen);
    render_faults(frame, faults, screen);
    render_verdicts(frame, verdicts, screen);
    render_footer(frame, footer, screen);
}

fn seconds(ms: u64) -> String {
    format!("{}.{} s", ms / 1_000, (ms % 1_000) / 100)
}

fn render_header(frame: &mut Frame, area: Rect, screen: &Screen) {
    let mut first = vec![Span::styled(
        "controlplane watch",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    first.push(Span::raw(format!("  {}", screen.url)));
    if let Some(status) = &screen.status {
        let cluster = &status.cluster;
        let unconverged_style = if cluster.unconverged > 0 {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::Green)
        };
        first.push(Span::raw(format!(
            "  {} desired, {} observed, ",
            cluster.desired, cluster.observed
        )));
        first.push(Span::styled(
            format!("{} unconverged", cluster.unconverged),
            unconverged_style,
        ));
    }
    let second = match (&screen.link, screen.paused) {
        (Link::Down { error, tries }, _) => Line::from(Span::styled(
            format!(
                "UNREACHABLE, retrying every {} ({tries} tries{}): {error}",
                seconds(screen.interval.as_millis() as u64),
                screen
                    .status
                    .as_ref()
                    .map(|_| format!(", last status {} ago", seconds(screen.status_age_ms)))
                    .unwrap_or_default()
            ),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )),
        (Link::Up, true) => Line::from(Span::styled(
            format!(
                "PAUSED: status from {} ago (p resumes)",
                seconds(screen.status_age_ms)
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
        (Link::Up, false) => Line::from(format!(
            "updated {} ago, every {}{}",
            seconds(screen.status_age_ms),
            seconds(screen.interval.as_millis() as u64),
            screen
                .status
                .as_ref()
                .map(|s| format!("; data {}", s.data.display()))
                .unwrap_or_default()
        )),
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), second]).wrap(Wrap { trim: false }),
        area,
    );
}

fn render_resources(frame: &mut Frame, area: Rect, screen: &Screen) {
    let rows = screen.resources();
    let visible = area.height.saturating_sub(3) as usize;
    let start = screen.scroll.min(rows.len().saturating_sub(visible));
    let shown = rows.len().min(start + visible) - start.min(rows.len());
    let range = if rows.is_empty() {
        String::new()
    } else if shown < rows.len() {
        format!(", rows {}-{} of {}", start + 1, start + shown, rows.len())
    } else {
        String::new()
    };
    let block = Block::bordered().title(format!(" Resources: desired against observed{range} "));
    let Some(status) = &screen.status else {
        frame.render_widget(Paragraph::new("no status yet").block(block), area);
        return;
    };
    if !status.cluster.sees_store {
        let text = "This process does not host the store, so it sees no desired or \
                    observed state: watch the store's process instead.";
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    if rows.is_empty() {
        frame.render_widget(Paragraph::new("no resources yet").block(block), area);
        return;
    }
    let body = rows.iter().skip(start).take(visible).map(|row| {
        let (mark, style) = if row.converged {
            ("yes", Style::new().fg(Color::Green))
        } else {
            (
                "NO",
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )
        };
        let seen = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
        Row::new(vec![
            row.id.clone(),
            row.generation.to_string(),
            row.replicas.to_string(),
            seen(row.observed_generation.map(|g| g.to_string())),
            seen(row.ready_replicas.map(|r| r.to_string())),
            mark.to_string(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(17),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(9),
    ];
    let header = Row::new(["id", "gen", "replicas", "obs gen", "ready", "converged"])
        .style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(Table::new(body, widths).header(header).block(block), area);
}

/// The unconverged count over the `count` buckets of `bucket_ms` that end
/// at `now_ms`, oldest first: each bucket the highest count it saw, so a
/// spike shorter than a bucket still shows. `series` is (ms, count) at each
/// change, in order; before its first point the count is taken as 0.
pub fn buckets(series: &[(u64, usize)], now_ms: u64, bucket_ms: u64, count: usize) -> Vec<u64> {
    assert!(bucket_ms > 0, "a bucket spans some time");
    let span_ms = bucket_ms.saturating_mul(count as u64);
    let start_ms = now_ms.saturating_sub(span_ms);
    let mut points = series.iter().peekable();
    let mut current: u64 = 0;
    let mut out = Vec::with_capacity(count);
    for index in 0..count as u64 {
        let end_ms = start_ms + (index + 1) * bucket_ms;
        // The count on entering the bucket, then every change inside it.
        let begin_ms = end_ms - bucket_ms;
        while let Some(&&(at_ms, value)) = points.peek() {
            if at_ms > begin_ms {
                break;
            }
            current = value as u64;
            points.next();
        }
        let mut peak = current;
        while let Some(&&(at_ms, value)) = points.peek() {
            if at_ms >= end_ms {
                break;
            }
            current = value as u64;
            peak = peak.max(current);
            points.next();
        }
        out.push(peak);
    }
    assert_eq!(out.len(), count);
    out
}

fn render_sparkline(frame: &mut Frame, area: Rect, screen: &Screen) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let count = inner_width.clamp(1, BUCKETS_MAX);
    let series = screen
        .status
        .as_ref()
        .map(|s| s.cluster.unconverged_series.as_slice())
        .unwrap_or_default();
    let bars = buckets(series, screen.now_ms, BUCKET_MS, count);
    let now = screen.status.as_ref().map_or(0, |s| s.cluster.unconverged);
    let peak = bars.iter().copied().max().unwrap_or(0);
    let span_s = count as u64 * BUCKET_MS / 1_000;
    let title = format!(
        " Unconverged: {now} now, peak {peak} in {}:{:02} min ",
        span_s / 60,
        span_s % 60,
    );
    let scale = format!(" a bar {} s, newest right ", BUCKET_MS / 1_000);
    let sparkline = Sparkline::default()
        .block(Block::bordered().title(title).title_bottom(scale))
        .data(bars)
        .max(peak.max(1))
        .style(Style::new().fg(Color::Yellow));
    frame.render_widget(sparkline, area);
}

fn lease_line(label: String, lease: &LeaseRow, holder_width: usize) -> Line<'static> {
    let holder = lease.holder.as_deref().unwrap_or("(none)");
    let style = if lease.holder.is_some() {
        Style::new()
    } else {
        Style::new().fg(Color::Yellow)
    };
    Line::from(vec![
        Span::raw(label),
        Span::styled(format!("{holder:<holder_width$}"), style),
        Span::raw(format!("  token {}", lease.token)),
    ])
}

fn render_leases(frame: &mut Frame, area: Rect, screen: &Screen) {
    let cluster = screen.status.as_ref().map(|s| &s.cluster);
    let shards: &[LeaseRow] = cluster.map(|c| c.shards.as_slice()).unwrap_or_default();
    let leader = cluster.and_then(|c| c.leader.as_ref());
    let holder_width = shards
        .iter()
        .chain(leader)
        .map(|l| l.holder.as_deref().map_or(6, str::len))
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    match leader {
        Some(lease) => lines.push(lease_line("leader    ".to_string(), lease, holder_width)),
        None => lines.push(Line::styled(
            "leader    (none yet)",
            Style::new().fg(Color::Yellow),
        )),
    }
    for lease in shards {
        let shard = lease.shard.map_or("?".to_string(), |s| s.to_string());
        lines.push(lease_line(
            format!("shard {shard:>2}  "),
            lease,
            holder_width,
        ));
    }
    let held = shards.iter().filter(|l| l.holder.is_some()).count();
    let inner = area.height.saturating_sub(2) as usize;
    if lines.len() > inner && inner > 0 {
        let hidden = lines.len() - (inner - 1);
        lines.truncate(inner - 1);
        lines.push(Line::styled(
            format!("... {hidden} more"),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let title = format!(" Leases: {held} of {} shards held ", shards.len());
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn fault_height(screen: &Screen) -> u16 {
    let active = screen.status.as_ref().map_or(0, |s| s.faults.len());
    (active.clamp(1, 4) + 1 + 2) as u16
}

fn render_faults(frame: &mut Frame, area: Rect, screen: &Screen) {
    let mut lines = Vec::new();
    let (faults, injected, names) = match &screen.status {
        Some(status) => (
            status.faults.as_slice(),
            &status.faults_injected,
            status.names.as_slice(),
        ),
        None => (&[][..], &BTreeMap::new(), &[][..]),
    };
    for active in faults {
        let left = match active.heals_in_ms {
            Some(ms) => format!(
                "heals in {}",
                seconds(ms.saturating_sub(screen.status_age_ms))
            ),
            None => "until healed (DELETE /admin/faults)".to_string(),
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "#{} {}",
                    active.id,
                    dst::report::fault_line(&active.fault, names)
                ),
                Style::new().fg(Color::Red),
            ),
            Span::raw(format!(
                "; started {} ago, {left}",
                seconds(active.started_ms_ago + screen.status_age_ms)
            )),
        ]));
    }
    if faults.is_empty() {
        lines.push(Line::from("none active"));
    }
    let total: u64 = injected.values().sum();
    let kinds: Vec<String> = injected
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    lines.push(Line::styled(
        if total == 0 {
            "none injected since start".to_string()
        } else {
            format!("{total} injected since start: {}", kinds.join(", "))
        },
        Style::new().fg(Color::DarkGray),
    ));
    let title = format!(" Faults: {} active ", faults.len());
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

/// Verdict grid columns at `width`.
fn verdict_columns(width: u16) -> usize {
    if width >= 90 { 2 } else { 1 }
}

fn verdict_height(screen: &Screen, width: u16) -> u16 {
    let rows = match &screen.verdicts {
        Verdicts::Ready(board, _) => {
            let grid = board.always.len().div_ceil(verdict_columns(width));
            let details = board
                .always
                .iter()
                .filter(|row| row.detail.is_some())
                .count()
                .min(3);
            grid + details + 1
        }
        Verdicts::Pending => 1,
        // Room for a wrapped error (a path, and what to do).
        Verdicts::Failed(_) => 3,
    };
    (rows + 2) as u16
}

fn render_verdicts(frame: &mut Frame, area: Rect, screen: &Screen) {
    let (title, lines) = match &screen.verdicts {
        Verdicts::Pending => (
            " Always-properties ".to_string(),
            vec![Line::from("judging the history so far...")],
        ),
        Verdicts::Failed(error) => (
            " Always-properties ".to_string(),
            vec![Line::styled(
                format!("cannot judge the history: {error}"),
                Style::new().fg(Color::Red),
            )],
        ),
        Verdicts::Ready(board, age_ms) => (
            format!(
                " Always-properties so far: {} holds, {} VIOLATED, {} not judged ",
                board.count(Judged::Holds),
                board.count(Judged::Violated),
                board.count(Judged::NotJudged),
            ),
            board_lines(board, *age_ms, area.width),
        ),
    };
    let violated =
        matches!(&screen.verdicts, Verdicts::Ready(board, _) if board.count(Judged::Violated) > 0);
    let border = if violated {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title).border_style(border)),
        area,
    );
}

fn board_lines(board: &Board, age_ms: u64, width: u16) -> Vec<Line<'static>> {
    let columns = verdict_columns(width);
    let cell_width = (width.saturating_sub(2) as usize) / columns;
    let rows = board.always.len().div_ceil(columns);
    let mut lines = Vec::new();
    for row in 0..rows {
        let mut spans = Vec::new();
        for column in 0..columns {
            let Some(verdict) = board.always.get(column * rows + row) else {
                continue;
            };
            let word = format!("{:<11}", verdict.judgement.word());
            let name = format!(
                "{:<w$}",
                verdict.property,
                w = cell_width.saturating_sub(11)
            );
            spans.push(Span::styled(word, verdict.judgement.style()));
            spans.push(Span::raw(name));
        }
        lines.push(Line::from(spans));
    }
    for verdict in board.always.iter().filter(|v| v.detail.is_some()).take(3) {
        lines.push(Line::styled(
            format!(
                "{}: {}",
                verdict.property,
                verdict.detail.as_deref().unwrap_or_default()
            ),
            Style::new().fg(Color::Red),
        ));
    }
    lines.push(Line::styled(
        format!(
            "{} history lines, judged {} ago; eventually ({}): judged at the end (check --history)",
            board.lines,
            seconds(age_ms),
            board.eventually
        ),
        Style::new().fg(Color::DarkGray),
    ));
    lines
}

fn render_footer(frame: &mut Frame, area: Rect, screen: &Screen) {
    let text = if screen.live {
        " q/Esc/Ctrl-C quit   p pause/resume   up/down j/k PgUp/PgDn scroll   r refresh now"
    } else {
        " one frame (watch --once); `controlplane watch` without --once follows it live"
    };
    frame.render_widget(
        Paragraph::new(text).style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
    );
}

/// `screen` drawn on a `width` x `height` buffer, as plain text lines with
/// trailing spaces trimmed: the frame `watch --once` prints.
pub fn plain_text(screen: &Screen, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("a test backend never fails");
    terminal
        .draw(|frame| render(frame, screen))
        .expect("a test backend never fails");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        let mut skip = 0usize;
        for x in 0..buffer.area.width {
            let cell = &buffer[(x, y)];
            // A wide symbol covers the cells after it: print it once.
            if skip == 0 {
                line.push_str(cell.symbol());
            }
            skip = skip.max(unicode_width(cell.symbol())).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn unicode_width(symbol: &str) -> usize {
    ratatui::text::Span::raw(symbol).width()
}
