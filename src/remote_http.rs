//! What `test-remote` and `load` share: a base URL checked once, one try of
//! a request (status, the Idempotency-Key headers, the JSON body), retries
//! with the same key through 503s and timeouts, `/metrics` read as numbers,
//! and the flag parsers that refuse bad input in one line.

// These commands talk to a real server over real sockets and measure real
// latencies: wall and monotonic time are their job. The determinism lints
// guard the simulated crates, not this client.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Exit code: a case of `test-remote` failed, or `load` saw answers to one
/// key that disagree.
pub const EXIT_FAILED: u8 = 10;
/// Exit code: the server could not be reached at all.
pub const EXIT_UNREACHABLE: u8 = 11;
/// Exit code of `load`: a key was charged more than once.
pub const EXIT_DUPLICATES: u8 = 12;

/// How long one try may take before the client gives up on it (the server
/// answers 503 itself after 10 s, so this only catches a server that hangs).
pub const TRY_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest wait between tries, whatever `Retry-After` asks.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The multi-threaded tokio runtime a real-host command runs on; if it
/// cannot start, one line and `exit_code`.
pub fn runtime(exit_code: u8) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the runtime: {error}");
            std::process::ExitCode::from(exit_code)
        })
}

/// Checks a base URL (`http://host:port`, optionally with a path prefix)
/// and returns it without a trailing slash.
pub fn parse_base_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|error| {
        format!("--url `{text}`: not a URL ({error}); expected e.g. http://127.0.0.1:8080")
    })?;
    if url.scheme() != "http" {
        return Err(format!(
            "--url `{text}`: scheme `{}` is not supported: only http:// (the API serves plain HTTP)",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "--url `{text}`: no host; expected e.g. http://127.0.0.1:8080"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--url `{text}`: give the base URL only, without `?` or `#`"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Parses a duration such as `500ms`, `30s`, `2m`, `1h` or `1m30s`
/// (decimals allowed: `1.5s`). Refuses negative, zero and unit-less values.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let hint = "expected e.g. 500ms, 30s, 2m, 1h or 1m30s";
    if trimmed.starts_with('-') {
        return Err(format!("`{text}`: a duration cannot be negative; {hint}"));
    }
    if trimmed.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    let mut total = 0f64;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}`: `{number}` is not a number; {hint}"))?;
        let seconds = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("`{text}`: `{number}` has no unit; {hint}")),
            other => return Err(format!("`{text}`: unknown unit `{other}`; {hint}")),
        };
        total += seconds;
        rest = next;
    }
    // A week is far beyond any load run, and keeps the arithmetic finite.
    if !(total.is_finite() && total <= 7.0 * 24.0 * 3600.0) {
        return Err(format!("`{text}`: at most a week (168h)"));
    }
    let duration = Duration::from_secs_f64(total);
    if duration < Duration::from_millis(1) {
        return Err(format!("`{text}`: must be at least 1ms"));
    }
    Ok(duration)
}

/// Parses a whole number for `flag` within `min..=max`.
pub fn parse_count(flag: &str, text: &str, min: u64, max: u64) -> Result<u64, String> {
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("--{flag} `{text}`: expected a whole number from {min} to {max}"))?;
    if !(min..=max).contains(&value) {
        return Err(format!("--{flag} {value}: must be from {min} to {max}"));
    }
    Ok(value)
}

/// An HTTP method the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        }
    }
}

/// One request, sendable as often as needed (a retry sends the same key
/// and body).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// The path after the base URL, starting with `/`.
    pub path: String,
    pub key: Option<String>,
    pub body: Option<Value>,
}

impl Request {
    /// `POST /v1/resources` with `key`.
    pub fn create(key: &str, name: &str, replicas: u32, image: u32) -> Self {
        Self {
            method: Method::Post,
            path: "/v1/resources".into(),
            key: Some(key.into()),
            body: Some(serde_json::json!({
                "name": name,
                "spec": { "replicas": replicas, "image": image },
            })),
        }
    }

    /// `PUT /v1/resources/{id}` with `key`.
    pub fn update(key: &str, id: &str, replicas: u32, image: u32) -> Self {
        Self {
            method: Method::Put,
            path: format!("/v1/resources/{id}"),
            key: Some(key.into()),
            body: Some(serde_json::json!({ "spec": { "replicas": replicas, "image": image } })),
        }
    }

    /// `DELETE /v1/resources/{id}` with `key`.
    pub fn delete(key: &str, id: &str) -> Self {
        Self {
            method: Method::Delete,
            path: format!("/v1/resources/{id}"),
            key: Some(key.into()),
            body: None,
        }
    }

    /// `GET` of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            path: path.into(),
            key: None,
            body: None,
        }
    }
}

/// A server's answer to one try.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
    /// `idempotent-replayed: true` was present.
    pub replayed: bool,
    /// `Retry-After`, in whole seconds as the server sends it.
    pub retry_after: Option<Duration>,
    /// `idempotency-key-ttl-ms`.
    pub key_ttl_ms: Option<u64>,
    /// `idempotency-key-expires-at-ms`.
    pub key_expires_at_ms: Option<u64>,
}

impl Answer {
    /// Worth another try with the same key: overloaded or no answer from
    /// an API node (503), or the key still in flight elsewhere (409).
    pub fn retryable(&self) -> bool {
        matches!(self.status, 503 | 409)
    }

    /// The body's `id` field, if a string.
    pub fn id(&self) -> Option<&str> {
        self.body.get("id").and_then(Value::as_str)
    }
}

/// Why a try got no answer.
#[derive(Clone, Debug)]
pub enum TryError {
    /// No connection could be made (refused, no route, bad host).
    Connect(String),
    /// No answer within [`TRY_TIMEOUT`].
    Timeout,
    /// The connection broke, or the answer could not be read.
    Broken(String),
}

impl TryError {
    /// A short label for counting errors.
    pub fn label(&self) -> &'static str {
        match self {
            TryError::Connect(_) => "connect",
            TryError::Timeout => "timeout",
            TryError::Broken(_) => "broken",
        }
    }
}

impl std::fmt::Display for TryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TryError::Connect(why) => write!(f, "cannot connect: {why}"),
            TryError::Timeout => write!(f, "no answer within {} s", TRY_TIMEOUT.as_secs()),
            TryError::Broken(why) => write!(f, "the exchange broke: {why}"),
        }
    }
}

/// The innermost cause of an error, which is where reqwest keeps the
/// useful words ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// One try and how it went.
#[derive(Clone, Debug)]
pub struct Try {
    pub result: Result<Answer, TryError>,
    pub elapsed: Duration,
}

/// A logical request: every try, the last one deciding.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub tries: Vec<Try>,
    pub elapsed: Duration,
}

impl Outcome {
    /// The last try's result.
    pub fn last(&self) -> &Result<Answer, TryError> {
        &self.tries.last().expect("at least one try").result
    }

    /// The last answer, if the last try got one.
    pub fn answer(&self) -> Option<&Answer> {
        self.last().as_ref().ok()
    }

    /// The final status as a label: the status code, or why there was none.
    pub fn label(&self) -> String {
        match self.last() {
            Ok(answer) => answer.status.to_string(),
            Err(error) => error.label().to_string(),
        }
    }
}

/// When to stop retrying.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries at most (the first included).
    pub attempts: u32,
    /// No try starts after this.
    pub deadline: Instant,
}

/// A server at a base URL.
#[derive(Clone)]
pub struct Remote {
    base: String,
    client: reqwest::Client,
}

impl Remote {
    /// A client for `base` (checked with [`parse_base_url`]). Proxies from
    /// the environment are ignored: the target is named directly.
    pub fn new(base: &str) -> Result<Self, String> {
        let base = parse_base_url(base)?;
        let client = reqwest::Client::builder()
            .timeout(TRY_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|error| format!("cannot build the HTTP client: {error}"))?;
        Ok(Self { base, client })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `request` once.
    pub async fn send(&self, request: &Request) -> Result<Answer, TryError> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self.client.request(request.method.reqwest(), &url);
        if let Some(key) = &request.key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|error| {
            if error.is_timeout() {
                TryError::Timeout
            } else if error.is_connect() {
                TryError::Connect(root_cause(&error))
            } else {
                TryError::Broken(root_cause(&error))
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|error| {
            if error.is_timeout() {
                TryError::Timeout
            } else {
                TryError::Broken(root_cause(&error))
            }
        })?;
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let number = |name: &str| header(name).and_then(|value| value.trim().parse::<u64>().ok());
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            replayed: header("idempotent-replayed") == Some("true"),
            retry_after: number("retry-after").map(Duration::from_secs),
            key_ttl_ms: number("idempotency-key-ttl-ms"),
            key_expires_at_ms: number("idempotency-key-expires-at-ms"),
        })
    }

    /// Sends `request` until an answer that is not worth retrying (see
    /// [`Answer::retryable`]), retrying with the same key and body after
    /// 503s, 409s, timeouts and broken connections; waits as `Retry-After`
    /// asks (at most [`MAX_BACKOFF`]), else backs off exponentially from
    /// 50 ms with jitter.
    pub async fn send_retrying(&self, request: &Request, retry: Retry) -> Outcome {
        let started = Instant::now();
        let mut tries = Vec::new();
        for attempt in 0..retry.attempts.max(1) {
            let began = Instant::now();
            let result = self.send(request).await;
            let again = match &result {
                Ok(answer) => answer.retryable(),
                Err(_) => true,
            };
            let wait = match &result {
                Ok(Answer {
                    retry_after: Some(after),
                    ..
                }) => (*after).min(MAX_BACKOFF),
                _ => backoff(request, attempt),
            };
            tries.push(Try {
                result,
                elapsed: began.elapsed(),
            });
            if !again || attempt + 1 >= retry.attempts || Instant::now() + wait >= retry.deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Outcome {
            tries,
            elapsed: started.elapsed(),
        }
    }

    /// `GET /metrics`, parsed.
    pub async fn metrics(&self) -> Result<Metrics, String> {
        match self.send(&Request::get("/metrics")).await {
            Ok(answer) if answer.status == 200 => Ok(Metrics::parse(&answer.text)),
            Ok(answer) => Err(format!("/metrics answered {}", answer.status)),
            Err(error) => Err(format!("/metrics: {error}")),
        }
    }
}

/// Exponential backoff from 50 ms, doubling, capped at 1 s, with a jitter
/// of up to half drawn from the key and attempt (no random source needed:
/// different keys spread out, and a rerun waits the same).
fn backoff(request: &Request, attempt: u32) -> Duration {
    let base_ms = (50u64 << attempt.min(5)).min(1000);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in request
        .key
        .as_deref()
        .unwrap_or(&request.path)
        .bytes()
        .chain(attempt.to_le_bytes())
    {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    Duration::from_millis(base_ms / 2 + hash % (base_ms / 2 + 1))
}

/// A `/metrics` page: each series (`name` or `name{labels}`) with its value.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub series: BTreeMap<String, f64>,
}

impl Metrics {
    /// Parses the Prometheus text format, skipping comments and lines it
    /// cannot read.
    pub fn parse(text: &str) -> Self {
        let series = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                Some((name.trim().to_string(), value.trim().parse::<f64>().ok()?))
            })
            .collect();
        Self { series }
    }

    /// The value of an unlabelled series.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.series.get(name).copied()
    }

    /// A counter that has not been incremented yet is absent: 0.
    pub fn counter(&self, name: &str) -> f64 {
        self.get(name).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_refuse_nonsense() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["-1s", "", "30", "3x", "s", "0s", "1..2s", "9999999h"] {
            let error = parse_duration(bad).expect_err(bad);
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(
            parse_base_url("http://h:1/prefix/").as_deref(),
            Ok("http://h:1/prefix")
        );
        for bad in [
            "127.0.0.1:8080",
            "ftp://x",
            "https://x",
            "http://",
            "http://x/?a=1",
            "",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metrics_read_plain_and_labelled_series() {
        let metrics = Metrics::parse(
            "# TYPE controlplane_charges_total counter\ncontrolplane_charges_total 7\n\
             controlplane_http_responses_total{status=\"201\"} 3\n",
        );
        assert_eq!(metrics.get("controlplane_charges_total"), Some(7.0));
        assert_eq!(
            metrics.get("controlplane_http_responses_total{status=\"201\"}"),
            Some(3.0)
        );
        assert_eq!(metrics.counter("controlplane_missing_total"), 0.0);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let request = Request::get("/x");
        for attempt in 0..40 {
            let wait = backoff(&request, attempt);
            assert!(wait >= Duration::from_millis(25) && wait <= Duration::from_secs(1));
        }
    }
}
