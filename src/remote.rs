//! `controlplane test-remote`: a black-box suite against any running
//! server, over its HTTP API only. Each case is a row of a Markdown table:
//! the Idempotency-Key rules (missing key, replay, another body, a key in
//! flight), create, update and delete each followed until converged, and
//! concurrent duplicated sends of one create giving one resource and one
//! charge.
//!
//! Convergence is read from the resource's `status` when a GET carries one
//! (`observed_generation` and `ready_replicas`), and otherwise from the
//! `controlplane_resources_unconverged` gauge of `/metrics` reaching 0
//! (which counts every resource, so another client's work can delay it).

// A client of a real server: real time (deadlines, latencies, unique key
// prefixes) is its job; the determinism lints guard the simulated crates.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use futures_util::future::join_all;
use serde_json::Value;

use crate::cli::EXIT_BAD_INPUT;
use crate::remote_http::{
    EXIT_FAILED, EXIT_UNREACHABLE, Outcome, Remote, Request, Retry, TryError, parse_count,
};

/// The exit codes of `test-remote`, for its help.
pub const EXIT_CODES: &str = "\
Exit codes:
  0   every case passed (a case marked `not reached` could not be provoked and is not a failure)
  2   bad input: a flag was invalid
  10  a case failed
  11  the server could not be reached (nothing listens at --url)";

#[derive(Args, Debug)]
pub struct TestRemoteArgs {
    /// The server's base URL, as `serve` prints it, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The bound of each case, in seconds: waiting for /readyz, retrying a
    /// request through 503s, and waiting for convergence.
    #[arg(
        long = "timeout-s",
        value_name = "N",
        default_value = "30",
        allow_hyphen_values = true
    )]
    timeout_s: String,
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// What the case looks for could not be provoked from outside; the
    /// detail says why. Not a pass, not a failure.
    NotReached,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotReached => "not reached",
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    pub ms: u128,
}

/// The suite's settings.
#[derive(Clone, Copy, Debug)]
pub struct SuiteOptions {
    /// The bound of each case.
    pub timeout: Duration,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
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

/// What a case found when it did not fail.
enum Found {
    Pass(String),
    NotReached(String),
}

type CaseResult = Result<Found, String>;

/// The cases, in the order they run: later ones reuse what earlier ones
/// created.
const CASES: &[&str] = &[
    "ready",
    "key.missing",
    "key.replay",
    "key.mismatch",
    "key.in_flight",
    "read.missing",
    "create.converge",
    "create.concurrent_duplicates",
    "list.pages",
    "update.converge",
    "delete.converge",
];

/// Runs every case against the server at `url` (a base URL). Fails only if
/// nothing answers there; a case that fails is a row.
pub async fn run_suite(url: &str, options: SuiteOptions) -> Result<Vec<Case>, Unreachable> {
    let remote = Remote::new(url).map_err(Unreachable)?;
    if let Err(TryError::Connect(why)) = remote.send(&Request::get("/healthz")).await {
        return Err(Unreachable(format!(
            "cannot reach the server at {}: {why}",
            remote.base()
        )));
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut suite = Suite {
        remote,
        timeout: options.timeout,
        prefix: format!("test-remote-{:x}-{}", nanos, std::process::id()),
        resource: None,
    };
    let mut cases: Vec<Case> = Vec::new();
    for &name in CASES {
        if cases
            .first()
            .is_some_and(|ready| ready.verdict == Verdict::Fail)
        {
            cases.push(Case {
                name,
                verdict: Verdict::Fail,
                detail: "not run: the server never became ready".into(),
                ms: 0,
            });
            continue;
        }
        let started = Instant::now();
        let result = suite.run(name).await;
        let (verdict, detail) = match result {
            Ok(Found::Pass(detail)) => (Verdict::Pass, detail),
            Ok(Found::NotReached(detail)) => (Verdict::NotReached, detail),
            Err(detail) => (Verdict::Fail, detail),
        };
        cases.push(Case {
            name,
            verdict,
            detail,
            ms: started.elapsed().as_millis(),
        });
    }
    Ok(cases)
}

/// The table, and a closing line with the counts.
pub fn markdown(url: &str, cases: &[Case]) -> String {
    let mut out = format!(
        "# test-remote against {url}\n\n| case | verdict | detail | ms |\n|---|---|---|---|\n"
    );
    for case in cases {
        let detail = case.detail.replace('|', "\\|").replace('\n', " ");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            case.name,
            case.verdict.word(),
            detail,
            case.ms
        ));
    }
    let count = |verdict| cases.iter().filter(|c| c.verdict == verdict).count();
    out.push_str(&format!(
        "\ntest-remote: {} of {} cases passed, {} failed, {} not reached\n",
        count(Verdict::Pass),
        cases.len(),
        count(Verdict::Fail),
        count(Verdict::NotReached)
    ));
    out
}

/// `controlplane test-remote`.
pub fn test_remote(args: TestRemoteArgs) -> ExitCode {
    let timeout_s = match parse_count("timeout-s", &args.timeout_s, 1, 3600) {
        Ok(value) => value,
        Err(message) => return bad_input(message),
    };
    let url = match crate::remote_http::parse_base_url(&args.url) {
        Ok(url) => url,
        Err(message) => return bad_input(message),
    };
    let runtime = match crate::remote_http::runtime(EXIT_FAILED) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let options = SuiteOptions {
        timeout: Duration::from_secs(timeout_s),
    };
    match runtime.block_on(run_suite(&url, options)) {
        Err(unreachable) => {
            eprintln!("error: {unreachable}");
            ExitCode::from(EXIT_UNREACHABLE)
        }
        Ok(cases) => {
            print!("{}", markdown(&url, &cases));
            if cases.iter().any(|case| case.verdict == Verdict::Fail) {
                ExitCode::from(EXIT_FAILED)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

fn bad_input(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// What the cases share.
struct Suite {
    remote: Remote,
    timeout: Duration,
    /// Makes every key and name of this run unique.
    prefix: String,
    /// The resource `create.converge` made, for update and delete.
    resource: Option<Value>,
}

/// Concurrent senders in `create.concurrent_duplicates`.
const DUPLICATE_TASKS: usize = 4;
/// Sends per sender there: the first two at once, the rest one by one.
const SENDS_PER_TASK: usize = 3;
/// Rounds of simultaneous sends `key.in_flight` tries before it gives up.
const IN_FLIGHT_ROUNDS: usize = 20;
/// Simultaneous sends per round there.
const IN_FLIGHT_SENDS: usize = 3;

impl Suite {
    async fn run(&mut self, name: &str) -> CaseResult {
        match name {
            "ready" => self.ready().await,
            "key.missing" => self.key_missing().await,
            "key.replay" => self.key_replay().await,
            "key.mismatch" => self.key_mismatch().await,
            "key.in_flight" => self.key_in_flight().await,
            "read.missing" => self.read_missing().await,
            "create.converge" => self.create_converge().await,
            "create.concurrent_duplicates" => self.concurrent_duplicates().await,
            "list.pages" => self.list_pages().await,
            "update.converge" => self.update_converge().await,
            "delete.converge" => self.delete_converge().await,
            other => Err(format!("no case `{other}`")),
        }
    }

    fn key(&self, case: &str) -> String {
        format!("{}-{case}", self.prefix)
    }

    fn retry(&self) -> Retry {
        Retry {
            attempts: u32::MAX,
            deadline: Instant::now() + self.timeout,
        }
    }

    /// Sends with retries until a final answer; `Err` if none came.
    async fn final_answer(&self, request: &Request) -> Result<crate::remote_http::Answer, String> {
        let outcome = self.remote.send_retrying(request, self.retry()).await;
        match outcome.last() {
            Ok(answer) if !answer.retryable() => Ok(answer.clone()),
            _ => Err(format!(
                "{:?} {}: no final answer within {} s: {}",
                request.method,
                request.path,
                self.timeout.as_secs(),
                describe(&outcome)
            )),
        }
    }

    /// Creates a resource and expects 201.
    async fn create(
        &self,
        key: &str,
        name: &str,
        replicas: u32,
        image: u32,
    ) -> Result<crate::remote_http::Answer, String> {
        let answer = self
            .final_answer(&Request::create(key, name, replicas, image))
            .await?;
        expect_status(&answer, 201, "create")?;
        Ok(answer)
    }

    async fn ready(&mut self) -> CaseResult {
        let health = self
            .remote
            .send(&Request::get("/healthz"))
            .await
            .map_err(|e| format!("/healthz: {e}"))?;
        expect_status(&health, 200, "/healthz")?;
        let started = Instant::now();
        let deadline = started + self.timeout;
        loop {
            let last = match self.remote.send(&Request::get("/readyz")).await {
                Ok(answer) if answer.status == 200 => {
                    return Ok(Found::Pass(format!(
                        "/healthz 200; /readyz 200 after {} ms",
                        started.elapsed().as_millis()
                    )));
                }
                Ok(answer) => format!("{} {}", answer.status, answer.text.trim()),
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "/readyz not 200 within {} s: last {last}",
                    self.timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn key_missing(&mut self) -> CaseResult {
        let mut request = Request::create("unused", &self.key("missing"), 1, 1);
        request.key = None;
        let answer = self.final_answer(&request).await?;
        expect_status(&answer, 400, "a create without Idempotency-Key")?;
        let message = answer
            .body
            .get("error")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("400 without an `error` message: {}", answer.text))?;
        Ok(Found::Pass(format!("400: {message}")))
    }

    async fn key_replay(&mut self) -> CaseResult {
        let key = self.key("replay");
        let first = self.create(&key, "tr-replay", 1, 1).await?;
        let again = self
            .remote
            .send(&Request::create(&key, "tr-replay", 1, 1))
            .await;
        let again = again.map_err(|e| format!("the replay: {e}"))?;
        if again.status != first.status || again.body != first.body {
            return Err(format!(
                "the replay differs: first {} {}, replay {} {}",
                first.status, first.text, again.status, again.text
            ));
        }
        if !again.replayed {
            return Err("the replay lacks `idempotent-replayed: true`".into());
        }
        for (which, answer) in [("first answer", &first), ("replay", &again)] {
            if answer.key_ttl_ms.is_none() || answer.key_expires_at_ms.is_none() {
                return Err(format!(
                    "the {which} lacks idempotency-key-ttl-ms or idempotency-key-expires-at-ms"
                ));
            }
        }
        if first.key_expires_at_ms != again.key_expires_at_ms {
            return Err(format!(
                "the key's expiry moved: {:?} then {:?}",
                first.key_expires_at_ms, again.key_expires_at_ms
            ));
        }
        Ok(Found::Pass(format!(
            "201 {}; replay identical with idempotent-replayed: true; key ttl {} ms",
            first.id().unwrap_or("?"),
            again.key_ttl_ms.unwrap_or(0)
        )))
    }

    async fn key_mismatch(&mut self) -> CaseResult {
        let key = self.key("mismatch");
        let first = self.create(&key, "tr-mismatch", 1, 1).await?;
        let other = self
            .final_answer(&Request::create(&key, "tr-mismatch", 2, 1))
            .await?;
        expect_status(&other, 422, "the same key with another body")?;
        if other.replayed {
            return Err("the 422 claims to be a replay".into());
        }
        // The 422 is not stored: the first body still replays.
        let again = self
            .final_answer(&Request::create(&key, "tr-mismatch", 1, 1))
            .await?;
        if again.status != 201 || again.body != first.body || !again.replayed {
            return Err(format!(
                "after the 422 the first body no longer replays: {} {}",
                again.status, again.text
            ));
        }
        Ok(Found::Pass(
            "422 for another body; the first body still replays its 201".into(),
        ))
    }

    /// Sends the same create several times at once, round after round,
    /// until one send meets the key in flight (409). Whether it does is up
    /// to timing: a send that arrives after the first finished gets the
    /// replay instead, which is also right.
    async fn key_in_flight(&mut self) -> CaseResult {
        let mut seen = Vec::new();
        for round in 0..IN_FLIGHT_ROUNDS {
            let key = self.key(&format!("in-flight-{round}"));
            let request = Request::create(&key, "tr-in-flight", 1, 1);
            let sends = (0..IN_FLIGHT_SENDS).map(|_| self.remote.send(&request));
            let answers = join_all(sends).await;
            // Settle the key whatever happened, and learn its resource.
            let settled = self.create(&key, "tr-in-flight", 1, 1).await?;
            let mut conflict = None;
            for answer in &answers {
                match answer {
                    Ok(a) if a.status == 201 => {
                        if a.body != settled.body {
                            return Err(format!(
                                "round {round}: two different 201s for one key: {} and {}",
                                a.text, settled.text
                            ));
                        }
                    }
                    Ok(a) if a.status == 409 => {
                        if a.replayed || a.key_ttl_ms.is_some() {
                            return Err(format!(
                                "round {round}: the 409 was marked stored or replayed"
                            ));
                        }
                        conflict = Some(a.clone());
                    }
                    Ok(a) if a.status == 503 => {}
                    Ok(a) => {
                        return Err(format!(
                            "round {round}: a simultaneous send got {} {}",
                            a.status, a.text
                        ));
                    }
                    Err(_) => {}
                }
            }
            seen.push(
                answers
                    .iter()
                    .map(|a| match a {
                        Ok(a) => a.status.to_string(),
                        Err(e) => e.label().to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("+"),
            );
            if let Some(conflict) = conflict {
                let message = conflict
                    .body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Ok(Found::Pass(format!(
                    "round {}: {} sends at once got {}; the 409 ({message}) is not stored: a retry replays the 201",
                    round + 1,
                    IN_FLIGHT_SENDS,
                    seen.last().map_or("", String::as_str)
                )));
            }
        }
        Ok(Found::NotReached(format!(
            "{IN_FLIGHT_ROUNDS} rounds of {IN_FLIGHT_SENDS} simultaneous sends ({}) never met the key in flight: \
             the first finished before the others were recorded; every answer agreed",
            seen.join(", ")
        )))
    }

    /// Pages through every resource: ids strictly ascending across pages,
    /// no page over its limit, the one `create.converge` made among them;
    /// a page of one says where the next starts; a limit of 0 is refused.
    async fn list_pages(&mut self) -> CaseResult {
        const LIMIT: usize = 100;
        const MAX_PAGES: usize = 1_000;
        let refused = self
            .final_answer(&Request::get("/v1/resources?limit=0".to_string()))
            .await?;
        expect_status(&refused, 400, "a list with limit 0")?;
        let mine = self
            .resource
            .as_ref()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_str)
            .ok_or("no resource from create.converge to look for")?
            .to_string();
        let mut ids: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let query = match &after {
                None => format!("/v1/resources?limit={LIMIT}"),
                Some(cursor) => format!("/v1/resources?limit={LIMIT}&after={cursor}"),
            };
            let page = self.final_answer(&Request::get(query)).await?;
            expect_status(&page, 200, "a list")?;
            let items = page.body["items"]
                .as_array()
                .ok_or("a page without items")?;
            if items.len() > LIMIT {
                return Err(format!("a page of {} items for limit {LIMIT}", items.len()));
            }
            for item in items {
                let id = item["id"]
                    .as_str()
                    .ok_or("an item without an id")?
                    .to_string();
                if ids.last().is_some_and(|last| *last >= id) {
                    return Err(format!(
                        "ids out of order across pages: {id} after {}",
                        ids.last().unwrap()
                    ));
                }
                ids.push(id);
            }
            pages += 1;
            match page.body["next"].as_str() {
                Some(next) if pages < MAX_PAGES => after = Some(next.to_string()),
                Some(_) => return Err(format!("more than {MAX_PAGES} pages")),
                None => break,
            }
        }
        if !ids.contains(&mine) {
            return Err(format!(
                "{mine} missing from {} listed resources",
                ids.len()
            ));
        }
        let one = self
            .final_answer(&Request::get("/v1/resources?limit=1".to_string()))
            .await?;
        expect_status(&one, 200, "a list with limit 1")?;
        if one.body["items"].as_array().map(Vec::len) != Some(1) || !one.body["next"].is_string() {
            return Err(format!(
                "a page of one of {} resources: {}",
                ids.len(),
                one.text
            ));
        }
        Ok(Found::Pass(format!(
            "{} resources in {pages} page(s) of up to {LIMIT}, ascending, {mine} among them; limit=1 gives one and a next; limit=0 is 400",
            ids.len()
        )))
    }

    async fn read_missing(&mut self) -> CaseResult {
        let path = format!("/v1/resources/{}-absent", self.prefix);
        let answer = self.final_answer(&Request::get(path)).await?;
        expect_status(&answer, 404, "GET of an unknown id")?;
        Ok(Found::Pass("404 for an unknown id".into()))
    }

    async fn create_converge(&mut self) -> CaseResult {
        let key = self.key("create");
        let created = self.create(&key, "tr-web", 2, 1).await?;
        let id = created.id().ok_or("201 without an id")?.to_string();
        if created.body.get("generation").and_then(Value::as_u64) != Some(1) {
            return Err(format!(
                "a new resource not at generation 1: {}",
                created.text
            ));
        }
        let read = self
            .final_answer(&Request::get(format!("/v1/resources/{id}")))
            .await?;
        expect_status(&read, 200, "GET of the created resource")?;
        if !same_resource(&read.body, &created.body) {
            return Err(format!(
                "GET differs from the 201: {} against {}",
                read.text, created.text
            ));
        }
        let how = self.converge(&id, 1, 2).await?;
        self.resource = Some(created.body.clone());
        Ok(Found::Pass(format!("201 {id} at generation 1; {how}")))
    }

    /// Several senders send one create with one key, some sends at once,
    /// each retrying through 503 and 409: every one must end with the same
    /// resource, and billing must charge once.
    async fn concurrent_duplicates(&mut self) -> CaseResult {
        let before = self.charges().await?;
        let key = self.key("duplicates");
        let request = Request::create(&key, "tr-duplicates", 1, 1);
        let retry = self.retry();
        let tasks = (0..DUPLICATE_TASKS).map(|_| {
            let (remote, request) = (self.remote.clone(), request.clone());
            async move {
                let mut outcomes = Vec::new();
                let (a, b) = tokio::join!(
                    remote.send_retrying(&request, retry),
                    remote.send_retrying(&request, retry)
                );
                outcomes.extend([a, b]);
                for _ in 2..SENDS_PER_TASK {
                    outcomes.push(remote.send_retrying(&request, retry).await);
                }
                outcomes
            }
        });
        let outcomes: Vec<Outcome> = join_all(tasks).await.into_iter().flatten().collect();
        let mut ids = std::collections::BTreeSet::new();
        let (mut fresh, mut conflicts, mut unavailable) = (0, 0, 0);
        for outcome in &outcomes {
            for attempt in &outcome.tries {
                match &attempt.result {
                    Ok(a) if a.status == 409 => conflicts += 1,
                    Ok(a) if a.status == 503 => unavailable += 1,
                    _ => {}
                }
            }
            match outcome.answer() {
                Some(answer) if answer.status == 201 => {
                    ids.insert(answer.id().unwrap_or("").to_string());
                    fresh += usize::from(!answer.replayed);
                }
                _ => {
                    return Err(format!(
                        "a send ended without a 201 within {} s: {}",
                        self.timeout.as_secs(),
                        describe(outcome)
                    ));
                }
            }
        }
        if ids.len() != 1 {
            return Err(format!("one key gave {} resources: {ids:?}", ids.len()));
        }
        if fresh > 1 {
            return Err(format!("{fresh} answers were fresh 201s, not replays"));
        }
        let id = ids.into_iter().next().unwrap_or_default();
        let read = self
            .final_answer(&Request::get(format!("/v1/resources/{id}")))
            .await?;
        expect_status(&read, 200, "GET of the resource")?;
        // Billing records its charge before it answers, so the count is
        // there by now; wait a little for a late second one to show.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut after = self.charges().await?;
        while after - before < 1.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = self.charges().await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = self.charges().await?;
        let charged = after - before;
        if charged != 1.0 {
            return Err(format!(
                "controlplane_charges_total rose by {charged} for one key (another client \
                 creating at the same time would also move it)"
            ));
        }
        Ok(Found::Pass(format!(
            "{} sends ({DUPLICATE_TASKS} senders x {SENDS_PER_TASK}, pairs at once): one resource {id}, \
             {fresh} fresh 201, {conflicts} 409 and {unavailable} 503 retried; charges +1",
            outcomes.len()
        )))
    }

    async fn update_converge(&mut self) -> CaseResult {
        let resource = match &self.resource {
            Some(resource) => resource.clone(),
            None => {
                self.create(&self.key("update-base"), "tr-web", 2, 1)
                    .await?
                    .body
            }
        };
        let id = resource["id"].as_str().ok_or("no id")?.to_string();
        let generation = resource["generation"].as_u64().ok_or("no generation")?;
        let key = self.key("update");
        let request = Request::update(&key, &id, 3, 2);
        let updated = self.final_answer(&request).await?;
        expect_status(&updated, 200, "update")?;
        let new_generation = updated.body.get("generation").and_then(Value::as_u64);
        if new_generation != Some(generation + 1) {
            return Err(format!(
                "generation {generation} became {new_generation:?}, not {}",
                generation + 1
            ));
        }
        if updated.id() != Some(&id)
            || updated.body["spec"] != serde_json::json!({"replicas": 3, "image": 2})
        {
            return Err(format!("the update answered {}", updated.text));
        }
        let again = self.final_answer(&request).await?;
        if again.status != 200 || again.body != updated.body || !again.replayed {
            return Err(format!(
                "the update's replay differs: {} {}",
                again.status, again.text
            ));
        }
        let how = self.converge(&id, generation + 1, 3).await?;
        self.resource = Some(updated.body.clone());
        Ok(Found::Pass(format!(
            "200 at generation {}; replay identical; {how}",
            generation + 1
        )))
    }

    async fn delete_converge(&mut self) -> CaseResult {
        let resource = match &self.resource {
            Some(resource) => resource.clone(),
            None => {
                self.create(&self.key("delete-base"), "tr-web", 1, 1)
                    .await?
                    .body
            }
        };
        let id = resource["id"].as_str().ok_or("no id")?.to_string();
        let replicas = resource["spec"]["replicas"].as_u64().ok_or("no replicas")?;
        let deadline = Instant::now() + self.timeout;
        let running_before = self.settled_running_instances(deadline).await?;
        let key = self.key("delete");
        let request = Request::delete(&key, &id);
        let deleted = self.final_answer(&request).await?;
        expect_status(&deleted, 200, "delete")?;
        if deleted.body != serde_json::json!({ "id": id, "deleted": true }) {
            return Err(format!("the delete answered {}", deleted.text));
        }
        let again = self.final_answer(&request).await?;
        if again.status != 200 || again.body != deleted.body || !again.replayed {
            return Err(format!(
                "the delete's replay differs: {} {}",
                again.status, again.text
            ));
        }
        let read = self
            .final_answer(&Request::get(format!("/v1/resources/{id}")))
            .await?;
        expect_status(&read, 404, "GET after delete")?;
        // Converged: its instances stopped. From outside that shows only
        // in the counters: running instances (started - stopped) fall by
        // its replicas.
        let started = Instant::now();
        let deadline = started + self.timeout;
        let wanted = running_before - replicas as f64;
        loop {
            let running = self.running_instances().await?;
            if running == wanted {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "running instances (started - stopped, from /metrics) are {running}, not \
                     {wanted} ({running_before} before the delete of {replicas} replicas), after \
                     {} s (another client's work would also move them)",
                    self.timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.metrics_converged(deadline).await?;
        self.resource = None;
        Ok(Found::Pass(format!(
            "200 deleted; replay identical; GET 404; its {replicas} instances stopped \
             (/metrics running {running_before} -> {wanted}) and unconverged 0 after {} ms",
            started.elapsed().as_millis()
        )))
    }

    /// `controlplane_charges_total` now.
    async fn charges(&self) -> Result<f64, String> {
        let metrics = self.remote.metrics().await?;
        if metrics.get("controlplane_resources_desired").is_none() {
            return Err(
                "/metrics has no controlplane_resources_desired: this edge's process does not \
                 host the store and billing, so charges cannot be counted here"
                    .into(),
            );
        }
        Ok(metrics.counter("controlplane_charges_total"))
    }

    /// Waits until resource `id` is converged at `generation` with
    /// `replicas` ready: from its `status` if GET carries one, else from
    /// `/metrics`. Says how, and how long it took.
    async fn converge(&self, id: &str, generation: u64, replicas: u64) -> Result<String, String> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let path = format!("/v1/resources/{id}");
        loop {
            let read = self.final_answer(&Request::get(path.clone())).await?;
            expect_status(&read, 200, "GET while converging")?;
            let read_generation = read.body.get("generation").and_then(Value::as_u64);
            if read_generation != Some(generation) {
                return Err(format!(
                    "GET shows generation {read_generation:?} while converging to {generation} \
                     (another client changed it?)"
                ));
            }
            let Some(status) = read.body.get("status") else {
                self.metrics_converged(deadline).await?;
                return Ok(format!(
                    "converged by /metrics (GET has no status) in {} ms",
                    started.elapsed().as_millis()
                ));
            };
            let observed = status.get("observed_generation").and_then(Value::as_u64);
            let ready = status.get("ready_replicas").and_then(Value::as_u64);
            if observed == Some(generation) && ready == Some(replicas) {
                return Ok(format!(
                    "status converged (generation {generation}, {replicas} ready) in {} ms",
                    started.elapsed().as_millis()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not converged within {} s: status {status} for generation {generation} \
                     with {replicas} replicas",
                    self.timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Running instances by `/metrics`: started minus stopped.
    async fn running_instances(&self) -> Result<f64, String> {
        let metrics = self.remote.metrics().await?;
        if metrics.get("controlplane_resources_desired").is_none() {
            return Err(
                "/metrics has no controlplane_resources_desired: this edge's process does not \
                 host the cluster, so instances cannot be counted here"
                    .into(),
            );
        }
        Ok(metrics.counter("controlplane_instances_started_total")
            - metrics.counter("controlplane_instances_stopped_total"))
    }

    /// Running instances once everything is converged and the count holds
    /// still for 300 ms (an update's old instances may stop a little after
    /// its new ones report ready).
    async fn settled_running_instances(&self, deadline: Instant) -> Result<f64, String> {
        let mut last = None;
        loop {
            self.metrics_converged(deadline).await?;
            let running = self.running_instances().await?;
            if last == Some(running) {
                return Ok(running);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "running instances did not settle within {} s",
                    self.timeout.as_secs()
                ));
            }
            last = Some(running);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits until `/metrics` shows no unconverged resource.
    async fn metrics_converged(&self, deadline: Instant) -> Result<(), String> {
        loop {
            let metrics = self.remote.metrics().await?;
            let unconverged = metrics
                .get("controlplane_resources_unconverged")
                .ok_or("/metrics has no controlplane_resources_unconverged gauge")?;
            if unconverged == 0.0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "/metrics still shows {unconverged} unconverged resources after {} s \
                     (it counts every resource: another client's work would delay it)",
                    self.timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `Err` naming what was expected unless `answer` has `status`.
fn expect_status(
    answer: &crate::remote_http::Answer,
    status: u16,
    what: &str,
) -> Result<(), String> {
    if answer.status == status {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {status}, got {} {}",
            answer.status,
            answer.text.trim()
        ))
    }
}

/// The fields a resource answer must agree on (a GET may add `status`).
fn same_resource(a: &Value, b: &Value) -> bool {
    ["id", "name", "generation", "spec"]
        .iter()
        .all(|field| a.get(field) == b.get(field))
}

/// A logical request's tries in a few words.
fn describe(outcome: &Outcome) -> String {
    let last = match outcome.last() {
        Ok(answer) => format!("{} {}", answer.status, answer.text.trim()),
        Err(error) => error.to_string(),
    };
    format!("{} tries, last: {last}", outcome.tries.len())
}
