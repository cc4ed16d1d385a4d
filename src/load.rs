//! `controlplane load`: an open-loop load generator against a running
//! server. Logical requests start on a fixed schedule (`--rps`), whatever
//! the answers; mostly creates, some updates and reads of resources it
//! created. Each is retried with the same Idempotency-Key through 503s,
//! 409s and timeouts (bounded tries, honouring `Retry-After`), and a share
//! of the creates and updates is sent twice at once. At the end it counts
//! duplicate charges, which must be 0: from the billing node's history
//! when the data directory is at hand, else bounded from `/metrics`.

// A client of a real server: real time (the schedule, latencies, a unique
// key prefix per run) and spawned tasks are its job; the determinism lints
// guard the simulated crates.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use hdrhistogram::Histogram;
use node::history::{HISTORY_FILE, HistoryLine};
use plane::protocol::Event;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::EXIT_BAD_INPUT;
use crate::remote_http::{
    EXIT_DUPLICATES, EXIT_FAILED, EXIT_UNREACHABLE, Outcome, Remote, Request, Retry, TRY_TIMEOUT,
    TryError, parse_base_url, parse_count, parse_duration,
};

/// The exit codes of `load`, for its help.
pub const EXIT_CODES: &str = "\
Exit codes:
  0   the run finished and no key was charged twice (errors and retries are reported, not fatal)
  2   bad input: a flag was invalid
  10  two answers to one key disagreed (a duplicate send got another resource)
  11  the server could not be reached (nothing listens at --url, or no try ever connected)
  12  duplicate charges: some key was charged more than once";

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The server's base URL, as `serve` prints it, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    url: String,
    /// Logical requests started per second, on a fixed schedule whatever
    /// the answers (open loop); 1 to 100000.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    rps: String,
    /// How long to start requests for: 500ms, 30s, 2m, 1h or 1m30s.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    duration: String,
    /// Logical requests in flight at most; one due while all are busy is
    /// skipped and counted (the schedule never waits for answers).
    #[arg(
        long,
        value_name = "C",
        default_value = "64",
        allow_hyphen_values = true
    )]
    concurrency: String,
    /// Share of creates and updates sent twice at once with the same key
    /// and body, in parts per million (50000 = 5 %).
    #[arg(
        long = "duplicate-ppm",
        value_name = "P",
        default_value = "50000",
        allow_hyphen_values = true
    )]
    duplicate_ppm: String,
    /// Tries per logical request, the first included: retries go after a
    /// 503, a 409 or a timeout, with the same key.
    #[arg(
        long,
        value_name = "N",
        default_value = "6",
        allow_hyphen_values = true
    )]
    attempts: String,
    /// The server's data directory, on this machine: duplicate charges are
    /// then counted exactly from DIR/billing/history.jsonl instead of
    /// bounded from /metrics.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// A load run's settings.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub url: String,
    pub rps: u32,
    pub duration: Duration,
    pub concurrency: usize,
    pub duplicate_ppm: u32,
    pub attempts: u32,
    pub data: Option<PathBuf>,
}

impl LoadArgs {
    fn options(&self) -> Result<LoadOptions, String> {
        Ok(LoadOptions {
            url: parse_base_url(&self.url)?,
            rps: parse_count("rps", &self.rps, 1, 100_000)? as u32,
            duration: parse_duration(&self.duration).map_err(|e| format!("--duration {e}"))?,
            concurrency: parse_count("concurrency", &self.concurrency, 1, 100_000)? as usize,
            duplicate_ppm: parse_count("duplicate-ppm", &self.duplicate_ppm, 0, 1_000_000)? as u32,
            attempts: parse_count("attempts", &self.attempts, 1, 100)? as u32,
            data: self.data.clone(),
        })
    }
}

/// The share of each kind of request, in percent: creates, then updates;
/// the rest are reads. Updates and reads need a created resource, so they
/// are creates until one exists.
const CREATE_PERCENT: u64 = 70;
const UPDATE_PERCENT: u64 = 15;
/// After the schedule, how long creates that got no 201 are retried to
/// learn their fate (the server may finish a key after a client gave up).
const SETTLE_FOR: Duration = Duration::from_secs(15);

/// How duplicate charges were counted.
#[derive(Clone, Debug)]
pub enum Charges {
    /// Exactly, from the billing node's history.
    History {
        path: PathBuf,
        /// `ChargeExecuted` lines.
        charges: u64,
        /// Distinct keys charged.
        keys: u64,
        /// Keys charged more than once.
        duplicate_keys: u64,
        /// Keys of this run charged.
        this_run_keys: u64,
        /// A last line cut short (a write in progress), ignored.
        truncated_last_line: bool,
        /// Other lines that are not history lines, ignored.
        bad_lines: u64,
    },
    /// A bound from `/metrics`: charges counted during the run against the
    /// create keys that got a 201.
    Metrics {
        before: f64,
        after: f64,
        created_keys: u64,
    },
    /// Could not be counted.
    Unknown(String),
}

impl Charges {
    /// Duplicate charges, if known (from /metrics: charges beyond the keys
    /// created, a lower bound on duplicates only if no other client charged).
    pub fn duplicates(&self) -> Option<u64> {
        match self {
            Charges::History { duplicate_keys, .. } => Some(*duplicate_keys),
            Charges::Metrics {
                before,
                after,
                created_keys,
            } => Some(((after - before) - *created_keys as f64).max(0.0) as u64),
            Charges::Unknown(_) => None,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub options: LoadOptions,
    /// Logical requests due on the schedule.
    pub scheduled: u64,
    /// Due while `concurrency` were in flight: not sent.
    pub skipped: u64,
    /// Sent, by kind.
    pub sent_by_kind: BTreeMap<&'static str, u64>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Logical requests whose final answer was 2xx.
    pub succeeded: u64,
    /// Final answers (status, or `timeout`, `connect`, `broken`).
    pub final_by_status: BTreeMap<String, u64>,
    /// Every try's answer.
    pub tries_by_status: BTreeMap<String, u64>,
    /// The first body (or error) seen for each status that is not 2xx.
    pub examples: BTreeMap<String, String>,
    /// Per logical request, retries included, in microseconds.
    pub per_request: Histogram<u64>,
    /// Per try, in microseconds.
    pub per_try: Histogram<u64>,
    /// Logical requests sent twice at once.
    pub duplicate_sends: u64,
    /// Of those, both sends ending 2xx with identical bodies.
    pub duplicates_agreed: u64,
    /// Two answers to one key that differ (each is a bug): a few examples.
    pub disagreements: Vec<String>,
    pub disagreement_count: u64,
    /// Distinct create keys that got a 201.
    pub created_keys: u64,
    /// Creates that got no 201 during the run but did when retried after it.
    pub settled_later: u64,
    /// Creates whose fate is still unknown.
    pub unsettled: u64,
    pub charges: Charges,
    /// No try ever connected.
    pub unreachable: bool,
}

impl LoadReport {
    /// Successful logical requests per second of the run.
    pub fn achieved_rps(&self) -> f64 {
        self.succeeded as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The exit code this run deserves.
    pub fn exit_code(&self) -> u8 {
        if self.unreachable {
            EXIT_UNREACHABLE
        } else if self.charges.duplicates().unwrap_or(0) > 0 {
            EXIT_DUPLICATES
        } else if self.disagreement_count > 0 {
            EXIT_FAILED
        } else {
            0
        }
    }
}

/// Nothing answered at the URL.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `controlplane load`.
pub fn load(args: LoadArgs) -> ExitCode {
    let options = match args.options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if let Some(dir) = &options.data
        && !dir.is_dir()
    {
        eprintln!(
            "error: --data {}: not a directory (give the server's data directory, as `serve --data`)",
            dir.display()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let runtime = match crate::remote_http::runtime(EXIT_FAILED) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    eprintln!(
        "load: {} rps for {:?} against {} (concurrency {}, duplicates {} ppm)",
        options.rps, options.duration, options.url, options.concurrency, options.duplicate_ppm
    );
    match runtime.block_on(run_load(&options)) {
        Err(unreachable) => {
            eprintln!("error: {unreachable}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Ok(report) => {
            print!("{}", markdown(&report));
            ExitCode::from(report.exit_code())
        }
    }
}

/// SplitMix64: enough randomness to pick kinds and resources, no
/// dependency.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

/// One logical request.
#[derive(Clone, Debug)]
enum Planned {
    Create { key: String, request: Request },
    Update { request: Request },
    Get { request: Request },
}

impl Planned {
    fn kind(&self) -> &'static str {
        match self {
            Planned::Create { .. } => "create",
            Planned::Update { .. } => "update",
            Planned::Get { .. } => "get",
        }
    }

    fn request(&self) -> &Request {
        match self {
            Planned::Create { request, .. }
            | Planned::Update { request, .. }
            | Planned::Get { request } => request,
        }
    }
}

/// What the request tasks record.
struct Stats {
    per_request: Histogram<u64>,
    per_try: Histogram<u64>,
    final_by_status: BTreeMap<String, u64>,
    tries_by_status: BTreeMap<String, u64>,
    /// The first body (or error) seen for each status that is not 2xx.
    examples: BTreeMap<String, String>,
    succeeded: u64,
    duplicate_sends: u64,
    duplicates_agreed: u64,
    disagreements: Vec<String>,
    disagreement_count: u64,
    created_keys: BTreeSet<String>,
    created_ids: Vec<String>,
    /// Creates with no 201 yet, to retry after the schedule.
    unsettled: Vec<(String, Request)>,
    last_answer: Option<Instant>,
    connected: bool,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h at 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl Stats {
    fn new() -> Self {
        Self {
            per_request: histogram(),
            per_try: histogram(),
            final_by_status: BTreeMap::new(),
            tries_by_status: BTreeMap::new(),
            examples: BTreeMap::new(),
            succeeded: 0,
            duplicate_sends: 0,
            duplicates_agreed: 0,
            disagreements: Vec::new(),
            disagreement_count: 0,
            created_keys: BTreeSet::new(),
            created_ids: Vec::new(),
            unsettled: Vec::new(),
            last_answer: None,
            connected: false,
        }
    }

    fn tries(&mut self, outcome: &Outcome) {
        for attempt in &outcome.tries {
            self.per_try.saturating_record(micros(attempt.elapsed));
            let (label, example) = match &attempt.result {
                Ok(answer) => (answer.status.to_string(), answer.text.trim().to_string()),
                Err(error) => (error.label().to_string(), error.to_string()),
            };
            if !label.starts_with('2') && !self.examples.contains_key(&label) {
                let example: String = example.chars().take(160).collect();
                self.examples.insert(label.clone(), example);
            }
            self.connected |= !matches!(attempt.result, Err(TryError::Connect(_)));
            *self.tries_by_status.entry(label).or_default() += 1;
        }
    }

    fn record(&mut self, planned: &Planned, primary: &Outcome, duplicate: Option<&Outcome>) {
        self.last_answer = Some(Instant::now());
        self.tries(primary);
        self.per_request.saturating_record(micros(primary.elapsed));
        *self.final_by_status.entry(primary.label()).or_default() += 1;
        let ok = |outcome: &Outcome| {
            outcome
                .answer()
                .filter(|answer| (200..300).contains(&answer.status))
                .cloned()
        };
        let (first, second) = (ok(primary), duplicate.and_then(ok));
        if first.is_some() {
            self.succeeded += 1;
        }
        if let Some(duplicate) = duplicate {
            self.tries(duplicate);
            self.duplicate_sends += 1;
            match (&first, &second) {
                (Some(a), Some(b)) if a.status == b.status && a.body == b.body => {
                    self.duplicates_agreed += 1;
                }
                (Some(a), Some(b)) => {
                    self.disagreement_count += 1;
                    if self.disagreements.len() < 5 {
                        self.disagreements.push(format!(
                            "{} {}: {} {} and {} {}",
                            planned.kind(),
                            planned.request().path,
                            a.status,
                            a.text.trim(),
                            b.status,
                            b.text.trim()
                        ));
                    }
                }
                _ => {} // One of them gave up: nothing to compare.
            }
        }
        if let Planned::Create { key, request } = planned {
            let created = first.or(second).filter(|answer| answer.status == 201);
            match created {
                Some(answer) => self.created(key, &answer.body),
                None => self.unsettled.push((key.clone(), request.clone())),
            }
        }
    }

    fn created(&mut self, key: &str, body: &Value) {
        if self.created_keys.insert(key.to_string())
            && let Some(id) = body.get("id").and_then(Value::as_str)
        {
            self.created_ids.push(id.to_string());
        }
    }
}

/// Runs the load `options` describe and measures it. Fails only if
/// nothing answers at the URL before the run.
pub async fn run_load(options: &LoadOptions) -> Result<LoadReport, Unreachable> {
    let remote = Remote::new(&options.url).map_err(Unreachable)?;
    if let Err(TryError::Connect(why)) = remote.send(&Request::get("/healthz")).await {
        return Err(Unreachable(format!(
            "cannot reach the server at {}: {why}",
            remote.base()
        )));
    }
    let charges_before = match remote.metrics().await {
        Ok(metrics) => metrics
            .get("controlplane_resources_desired")
            .map(|_| metrics.counter("controlplane_charges_total")),
        Err(_) => None,
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("load-{nanos:x}-{}", std::process::id());
    let mut draw = Draw(nanos as u64);
    let stats = Arc::new(Mutex::new(Stats::new()));
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let scheduled =
        ((f64::from(options.rps) * options.duration.as_secs_f64()).round() as u64).max(1);
    let mut sent_by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut skipped = 0;
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let interval = 1.0 / f64::from(options.rps);
    for index in 0..scheduled {
        let due = started + Duration::from_secs_f64(index as f64 * interval);
        tokio::time::sleep_until(due.into()).await;
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let planned = plan(&mut draw, &prefix, index, &stats);
        let duplicate = !matches!(planned, Planned::Get { .. })
            && draw.below(1_000_000) < u64::from(options.duplicate_ppm);
        *sent_by_kind.entry(planned.kind()).or_default() += 1;
        let (remote, stats) = (remote.clone(), stats.clone());
        let retry_attempts = options.attempts;
        tasks.spawn(async move {
            let retry = Retry {
                attempts: retry_attempts,
                deadline: Instant::now() + TRY_TIMEOUT * retry_attempts,
            };
            let request = planned.request();
            let (primary, second) = if duplicate {
                let (a, b) = tokio::join!(
                    remote.send_retrying(request, retry),
                    remote.send_retrying(request, retry)
                );
                (a, Some(b))
            } else {
                (remote.send_retrying(request, retry).await, None)
            };
            stats
                .lock()
                .expect("stats")
                .record(&planned, &primary, second.as_ref());
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = {
        let stats = stats.lock().expect("stats");
        stats
            .last_answer
            .map_or(started.elapsed(), |at| at - started)
    };

    // Creates that got no 201: retry them with the same key until their
    // fate is known, so every charge can be matched to a created key.
    let unsettled = std::mem::take(&mut stats.lock().expect("stats").unsettled);
    let settle_deadline = Instant::now() + SETTLE_FOR;
    let mut settled_later = 0;
    let mut still_unsettled = 0;
    for (key, request) in unsettled {
        let retry = Retry {
            attempts: u32::MAX,
            deadline: settle_deadline,
        };
        let outcome = if Instant::now() < settle_deadline {
            Some(remote.send_retrying(&request, retry).await)
        } else {
            None
        };
        match outcome.as_ref().and_then(Outcome::answer) {
            Some(answer) if answer.status == 201 => {
                settled_later += 1;
                stats.lock().expect("stats").created(&key, &answer.body);
            }
            _ => still_unsettled += 1,
        }
    }

    let stats = Arc::try_unwrap(stats)
        .ok()
        .expect("every task finished")
        .into_inner()
        .expect("stats");
    let charges = match &options.data {
        Some(dir) => count_history_charges(&dir.join("billing").join(HISTORY_FILE), &prefix),
        None => match (charges_before, remote.metrics().await) {
            (Some(before), Ok(after)) => Charges::Metrics {
                before,
                after: after.counter("controlplane_charges_total"),
                created_keys: stats.created_keys.len() as u64,
            },
            (None, _) => Charges::Unknown(
                "/metrics had no controlplane_resources_desired before the run: this edge's \
                 process does not host billing; give --data"
                    .into(),
            ),
            (_, Err(error)) => Charges::Unknown(error),
        },
    };
    Ok(LoadReport {
        options: options.clone(),
        scheduled,
        skipped,
        sent_by_kind,
        elapsed,
        succeeded: stats.succeeded,
        final_by_status: stats.final_by_status,
        tries_by_status: stats.tries_by_status,
        examples: stats.examples,
        per_request: stats.per_request,
        per_try: stats.per_try,
        duplicate_sends: stats.duplicate_sends,
        duplicates_agreed: stats.duplicates_agreed,
        disagreements: stats.disagreements,
        disagreement_count: stats.disagreement_count,
        created_keys: stats.created_keys.len() as u64,
        settled_later,
        unsettled: still_unsettled,
        charges,
        unreachable: !stats.connected && scheduled > skipped,
    })
}

/// Picks logical request `index`: a create, or an update or read of a
/// resource this run created.
fn plan(draw: &mut Draw, prefix: &str, index: u64, stats: &Mutex<Stats>) -> Planned {
    let roll = draw.below(100);
    let target = {
        let stats = stats.lock().expect("stats");
        if stats.created_ids.is_empty() {
            None
        } else {
            let at = draw.below(stats.created_ids.len() as u64) as usize;
            Some(stats.created_ids[at].clone())
        }
    };
    let replicas = 1 + draw.below(3) as u32;
    let image = 1 + draw.below(100) as u32;
    match target {
        Some(id) if roll >= CREATE_PERCENT + UPDATE_PERCENT => Planned::Get {
            request: Request::get(format!("/v1/resources/{id}")),
        },
        Some(id) if roll >= CREATE_PERCENT => {
            let key = format!("{prefix}-u{index}");
            Planned::Update {
                request: Request::update(&key, &id, replicas, image),
            }
        }
        _ => {
            let key = format!("{prefix}-c{index}");
            Planned::Create {
                request: Request::create(&key, &format!("load-{index}"), replicas, image),
                key,
            }
        }
    }
}

/// Counts `ChargeExecuted` per key in a billing history file. A last line
/// without its newline that does not parse is a write in progress and is
/// ignored; other lines that do not parse are counted and ignored.
pub fn count_history_charges(path: &Path, this_run_prefix: &str) -> Charges {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => return Charges::Unknown(format!("{}: {error}", path.display())),
    };
    let mut per_key: BTreeMap<String, u64> = BTreeMap::new();
    let (mut truncated_last_line, mut bad_lines) = (false, 0);
    let ends_whole = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let count = lines.len();
    for (index, line) in lines.into_iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HistoryLine<Event>>(line) {
            Ok(HistoryLine {
                event: Event::ChargeExecuted { key, .. },
                ..
            }) => *per_key.entry(key).or_default() += 1,
            Ok(_) => {}
            Err(_) if index + 1 == count && !ends_whole => truncated_last_line = true,
            Err(_) => bad_lines += 1,
        }
    }
    Charges::History {
        path: path.to_path_buf(),
        charges: per_key.values().sum(),
        keys: per_key.len() as u64,
        duplicate_keys: per_key.values().filter(|&&n| n > 1).count() as u64,
        this_run_keys: per_key
            .keys()
            .filter(|key| key.starts_with(this_run_prefix))
            .count() as u64,
        truncated_last_line,
        bad_lines,
    }
}

fn ms(micros: u64) -> String {
    format!("{:.1}", micros as f64 / 1000.0)
}

fn latency_row(name: &str, histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return format!("| {name} | 0 | - | - | - |\n");
    }
    format!(
        "| {name} | {} | {} | {} | {} |\n",
        histogram.len(),
        ms(histogram.value_at_quantile(0.5)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max())
    )
}

/// The report as Markdown.
pub fn markdown(report: &LoadReport) -> String {
    let options = &report.options;
    let mut out = format!(
        "# load against {}: {} rps for {:?}\n\n| measure | value |\n|---|---|\n",
        options.url, options.rps, options.duration
    );
    let sent: u64 = report.sent_by_kind.values().sum();
    let kinds: Vec<String> = report
        .sent_by_kind
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    let rows = [
        (
            "scheduled",
            format!(
                "{} ({} per second for {:.2} s)",
                report.scheduled,
                options.rps,
                options.duration.as_secs_f64()
            ),
        ),
        (
            "sent",
            format!(
                "{sent} ({}); skipped at the concurrency limit of {}: {}",
                kinds.join(", "),
                options.concurrency,
                report.skipped
            ),
        ),
        (
            "achieved",
            format!(
                "{:.1} successful requests/s ({} of {sent} succeeded in {:.2} s)",
                report.achieved_rps(),
                report.succeeded,
                report.elapsed.as_secs_f64()
            ),
        ),
        (
            "tries",
            format!(
                "{} ({} retries; at most {} per request)",
                report.per_try.len(),
                report
                    .per_try
                    .len()
                    .saturating_sub(report.per_request.len() + report.duplicate_sends),
                options.attempts
            ),
        ),
        (
            "duplicate sends",
            format!(
                "{} ({} ppm); both answers 2xx and identical: {}; disagreeing: {}",
                report.duplicate_sends,
                options.duplicate_ppm,
                report.duplicates_agreed,
                report.disagreement_count
            ),
        ),
        (
            "creates",
            format!(
                "{} keys got a 201 ({} only when retried after the run); fate unknown: {}",
                report.created_keys, report.settled_later, report.unsettled
            ),
        ),
    ];
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out.push_str("\n## Latency (ms)\n\n| | count | p50 | p99 | max |\n|---|---|---|---|---|\n");
    out.push_str(&latency_row(
        "per request (retries included)",
        &report.per_request,
    ));
    out.push_str(&latency_row("per try", &report.per_try));
    out.push_str(
        "\n## Answers\n\n| status | final answers | tries | first body seen |\n|---|---|---|---|\n",
    );
    let statuses: BTreeSet<&String> = report
        .final_by_status
        .keys()
        .chain(report.tries_by_status.keys())
        .collect();
    for status in statuses {
        let example = report.examples.get(status).map_or(String::new(), |text| {
            format!("`{}`", text.replace('|', "\\|"))
        });
        out.push_str(&format!(
            "| {status} | {} | {} | {example} |\n",
            report.final_by_status.get(status).copied().unwrap_or(0),
            report.tries_by_status.get(status).copied().unwrap_or(0)
        ));
    }
    for example in &report.disagreements {
        out.push_str(&format!("\nDISAGREEMENT: {example}\n"));
    }
    out.push_str(&format!(
        "\n## Duplicate charges: {}\n\n",
        report
            .charges
            .duplicates()
            .map_or("unknown".to_string(), |n| n.to_string())
    ));
    match &report.charges {
        Charges::History {
            path,
            charges,
            keys,
            duplicate_keys,
            this_run_keys,
            truncated_last_line,
            bad_lines,
        } => {
            out.push_str(&format!(
                "Counted exactly from {}: {charges} charges over {keys} keys ({this_run_keys} of \
                 this run), {duplicate_keys} keys charged more than once.",
                path.display()
            ));
            if *truncated_last_line {
                out.push_str(" A last line cut short was ignored.");
            }
            if *bad_lines > 0 {
                out.push_str(&format!(" {bad_lines} unreadable lines were ignored."));
            }
            out.push('\n');
        }
        Charges::Metrics {
            before,
            after,
            created_keys,
        } => out.push_str(&format!(
            "A bound from /metrics: controlplane_charges_total rose by {} while {created_keys} \
             distinct create keys got a 201; more charges than keys would mean duplicates. \
             Another client charging at the same time would inflate it, and duplicates that \
             stay below the count of keys that never got a 201 would hide; give --data DIR \
             for an exact count.\n",
            after - before
        )),
        Charges::Unknown(why) => out.push_str(&format!("Not counted: {why}\n")),
    }
    if report.unreachable {
        out.push_str("\nNo try ever connected: the server was unreachable.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_charges_count_duplicates_and_ignore_a_cut_last_line() {
        let dir = std::env::temp_dir().join(format!("load-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let line = |key: &str, seq: u64| {
            serde_json::to_string(&HistoryLine {
                node: node::NodeId(1),
                boot: 0,
                seq,
                mono_ns: 0,
                wall_ns: 0,
                host_ns: 0,
                event: Event::ChargeExecuted {
                    key: key.into(),
                    charge_id: seq,
                    amount_cents: 100,
                },
            })
            .expect("serializes")
        };
        let path = dir.join("history.jsonl");
        let text = format!(
            "{}\n{}\n{}\n{}",
            line("run-a", 0),
            line("run-b", 1),
            line("other", 2),
            &line("run-a", 3)[..20]
        );
        std::fs::write(&path, text).expect("writes");
        let Charges::History {
            charges,
            keys,
            duplicate_keys,
            this_run_keys,
            truncated_last_line,
            bad_lines,
            ..
        } = count_history_charges(&path, "run-")
        else {
            panic!("counted");
        };
        assert_eq!((charges, keys, duplicate_keys), (3, 3, 0));
        assert_eq!(this_run_keys, 2);
        assert!(truncated_last_line);
        assert_eq!(bad_lines, 0);
        let doubled = format!("{}\n{}\n", line("run-a", 0), line("run-a", 1));
        std::fs::write(&path, doubled).expect("writes");
        assert_eq!(count_history_charges(&path, "run-").duplicates(), Some(1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn flags_are_refused_in_one_line() {
        let args = |rps: &str, duration: &str, url: &str| LoadArgs {
            url: url.into(),
            rps: rps.into(),
            duration: duration.into(),
            concurrency: "64".into(),
            duplicate_ppm: "0".into(),
            attempts: "6".into(),
            data: None,
        };
        for (rps, duration, url) in [
            ("0", "1s", "http://127.0.0.1:1"),
            ("10", "-1s", "http://127.0.0.1:1"),
            ("10", "1s", "not a url"),
            ("ten", "1s", "http://127.0.0.1:1"),
        ] {
            let error = args(rps, duration, url).options().expect_err(rps);
            assert!(!error.contains('\n'), "{error}");
        }
        assert!(args("10", "2s", "http://127.0.0.1:1").options().is_ok());
    }
}
