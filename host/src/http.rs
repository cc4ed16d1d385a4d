//! The HTTP API (axum): JSON in, the API node's answer out.
//!
//! | route | what it becomes |
//! |---|---|
//! | `POST /v1/resources` | `ApiOp::Create` (needs `Idempotency-Key`) |
//! | `PUT /v1/resources/{id}` | `ApiOp::Update` (needs `Idempotency-Key`) |
//! | `DELETE /v1/resources/{id}` | `ApiOp::Delete` (needs `Idempotency-Key`) |
//! | `GET /v1/resources/{id}` | `ApiOp::Get`: the resource with its status |
//! | `GET /v1/resources?limit=N&after=ID` | `ApiOp::List`: a page by id, and `next` |
//! | `GET /metrics`, `/healthz`, `/readyz` | the host's own |
//!
//! Bad input is answered here, before any node sees it, with a JSON error
//! body: malformed JSON 400, a body over the limit 413, an unknown route
//! 404, a wrong method 405, a wrong content type 415. Too many requests in
//! flight: 503 with `Retry-After`; a request that takes too long: 503 too.
//! A missing Idempotency-Key is *not* answered here: the API node answers
//! it 400, so that rule has one implementation.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{BoxError, Json, Router};
use plane::protocol::{ApiOp, ApiReply, ResourceView, ResponseBody, Spec};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::edge::Edge;
use crate::metrics::Metrics;
use crate::net::NetCounters;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Limits that keep a slow or flooding client from taking the server down.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Requests handled at once; more are answered 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// A request taking longer is answered 503.
    pub request_timeout: Duration,
    /// Connections held open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            request_timeout: Duration::from_secs(10),
            max_connections: 1_024,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// What the handlers share.
pub struct AppState {
    /// The link to the API nodes.
    pub edge: Edge,
    /// This process's metrics.
    pub metrics: Arc<Metrics>,
    /// This process's transport counters.
    pub net: Arc<NetCounters>,
    /// Shards a ready cluster has a holder for.
    pub shard_count: u32,
}

type Shared = Arc<AppState>;

/// The router with every route and limit.
pub fn router(state: Shared, limits: Limits) -> Router {
    let api = Router::new()
        .route("/v1/resources", axum::routing::post(create).get(list))
        .route("/v1/resources/{id}", get(read).put(update).delete(remove))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    api.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)).layer(
        tower::ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
            .load_shed()
            .concurrency_limit(limits.max_in_flight)
            .timeout(limits.request_timeout),
    )
}

/// A JSON error body with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn overloaded(error: BoxError) -> Response {
    let message = if error.is::<tower::timeout::error::Elapsed>() {
        "the request took too long: retry with the same Idempotency-Key"
    } else {
        "too many requests in flight: retry later with the same Idempotency-Key"
    };
    let mut response = error_response_503(message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn error_response_503(message: &str) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, message)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such route: the API is /v1/resources and /v1/resources/{id}",
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// A body the extractor refused: the rejection's status (400 malformed,
/// 413 too large, 415 wrong content type, 422 wrong fields) with a JSON
/// body saying why.
fn rejected(rejection: JsonRejection) -> Response {
    error(rejection.status(), rejection.body_text())
}

/// An Idempotency-Key header that is not visible ASCII.
struct BadKey;

impl IntoResponse for BadKey {
    fn into_response(self) -> Response {
        error(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be visible ASCII",
        )
    }
}

/// The Idempotency-Key header, if any (a missing one is the API node's to
/// answer).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, BadKey> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|key| Some(key.trim_matches('"').to_string()))
            .map_err(|_| BadKey),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    spec: Spec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    spec: Spec,
}

async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => return rejected(rejection),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(bad) => return bad.into_response(),
    };
    let op = ApiOp::Create {
        name: body.name,
        spec: body.spec,
    };
    call(&state, key, op).await
}

async fn update(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<UpdateBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => return rejected(rejection),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(bad) => return bad.into_response(),
    };
    call(
        &state,
        key,
        ApiOp::Update {
            id,
            spec: body.spec,
        },
    )
    .await
}

async fn remove(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(bad) => return bad.into_response(),
    };
    call(&state, key, ApiOp::Delete { id }).await
}

/// The query of a list: `?limit=N&after=ID`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Items per page (the API node allows 1 to 100).
    limit: Option<u32>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// Items per page when the query names none.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;

async fn list(
    State(state): State<Shared>,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(axum::extract::Query(query)) => query,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{}: allowed ?limit=1..100&after=ID", rejection.body_text()),
            );
        }
    };
    let op = ApiOp::List {
        after: query.after,
        limit: query.limit.unwrap_or(DEFAULT_PAGE_LIMIT),
    };
    call(&state, None, op).await
}

async fn read(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    call(&state, None, ApiOp::Get { id }).await
}

/// Sends `op` through the edge and turns the API node's reply into HTTP.
async fn call(state: &AppState, key: Option<String>, op: ApiOp) -> Response {
    let response = match state.edge.call(key, op).await {
        Ok(reply) => to_http(reply),
        Err(no_answer) => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no answer from the API node {} within {} ms: retry with the same Idempotency-Key",
                    no_answer.api,
                    no_answer.waited.as_millis()
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    };
    state.metrics.http_response(response.status().as_u16());
    response
}

/// The JSON of a response body.
pub fn body_json(body: &ResponseBody) -> Value {
    match body {
        ResponseBody::Resource(resource) => json!({
            "id": resource.id,
            "name": resource.name,
            "generation": resource.generation,
            "spec": resource.spec,
        }),
        ResponseBody::Deleted { id } => json!({ "id": id, "deleted": true }),
        ResponseBody::Error { message } => json!({ "error": message }),
        ResponseBody::Read(view) => view_json(view),
        ResponseBody::Page { items, next } => json!({
            "items": items.iter().map(view_json).collect::<Vec<_>>(),
            "next": next,
        }),
    }
}

/// A resource with its status: desired (`spec` at `generation`) and
/// observed (`status`, null until a controller wrote one).
fn view_json(view: &ResourceView) -> Value {
    let resource = &view.resource;
    json!({
        "id": resource.id,
        "name": resource.name,
        "generation": resource.generation,
        "spec": resource.spec,
        "status": view.status,
    })
}

/// The API node's reply as HTTP: its status, its body as JSON, and the
/// Idempotency-Key headers (`Idempotent-Replayed` on a replay; the key's
/// lifetime and expiry, on the store's clock, when the response is stored).
pub fn to_http(reply: ApiReply) -> Response {
    let status =
        StatusCode::from_u16(reply.response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(body_json(&reply.response.body))).into_response();
    let headers = response.headers_mut();
    if reply.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(ttl_ms) = reply.key_ttl_ms {
        headers.insert("idempotency-key-ttl-ms", HeaderValue::from(ttl_ms));
    }
    if let Some(at_ms) = reply.key_expires_at_ms {
        headers.insert("idempotency-key-expires-at-ms", HeaderValue::from(at_ms));
    }
    if reply.response.status == 503 {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn metrics(State(state): State<Shared>) -> Response {
    let text = state.metrics.render(&state.net);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

/// Ready once an API node answers a read and, in a process that hosts the
/// store (and so sees its commits), every shard has a holder. A process
/// without the store cannot see shard holders and says so.
async fn readyz(State(state): State<Shared>) -> Response {
    let probe = state
        .edge
        .call(
            None,
            ApiOp::Get {
                id: "readyz-probe".into(),
            },
        )
        .await;
    let api_answers = matches!(&probe, Ok(reply) if reply.response.status == 404);
    let (shards_ok, shards_held) = if state.metrics.sees_store() {
        let held = state.metrics.shards_held();
        (held == state.shard_count as usize, json!(held))
    } else {
        (true, json!("not seen: the store runs in another process"))
    };
    let ready = api_answers && shards_ok;
    let body = json!({
        "ready": ready,
        "api_answers": api_answers,
        "shards_held": shards_held,
        "shard_count": state.shard_count,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// A listener that holds at most `max` connections open: the next accept
/// waits for a slot, so a flood of connections cannot exhaust the process
/// (the kernel's backlog holds the rest); and a connection that neither
/// sends nor receives for the idle timeout is closed, so a slow or silent
/// client cannot keep its slot.
pub struct CappedListener {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
    idle: Duration,
}

impl CappedListener {
    /// Caps `inner` at `max` open connections, each closed after `idle`
    /// without traffic.
    pub fn new(inner: tokio::net::TcpListener, max: usize, idle: Duration) -> Self {
        Self {
            inner,
            slots: Arc::new(tokio::sync::Semaphore::new(max.max(1))),
            idle,
        }
    }
}

/// A connection holding its slot until it closes, with its idle deadline.
pub struct CappedStream {
    stream: tokio::net::TcpStream,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl CappedStream {
    /// Traffic moved: the idle deadline starts again.
    fn active(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// Nothing moved: an error once the idle deadline passed, which makes
    /// hyper close the connection.
    fn idle_error<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection idle past the timeout",
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = CappedStream {
                        stream,
                        idle: self.idle,
                        deadline: Box::pin(tokio::time::sleep(self.idle)),
                        _slot: slot,
                    };
                    return (stream, address);
                }
                // Out of file descriptors and the like: wait, as axum's
                // own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for CappedStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.stream).poll_read(cx, buf) {
            std::task::Poll::Pending => this.idle_error(cx),
            ready => {
                this.active();
                ready
            }
        }
    }
}

impl tokio::io::AsyncWrite for CappedStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.stream).poll_write(cx, buf) {
            std::task::Poll::Pending => this.idle_error(cx),
            ready => {
                this.active();
                ready
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A router whose API node never answers (it has no address).
    fn silent(limits: Limits, edge_timeout: Duration) -> Router {
        let network = crate::net::Network::new(Default::default());
        let state = Arc::new(AppState {
            edge: Edge::new(
                node::NodeId(9),
                0,
                vec![node::NodeId(2)],
                network.clone(),
                edge_timeout,
            ),
            metrics: Arc::new(Metrics::new(Vec::new(), false)),
            net: network.counters.clone(),
            shard_count: 1,
        });
        router(state, limits)
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    async fn error_of(response: Response) -> (StatusCode, Option<String>, String) {
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        (status, retry, json["error"].as_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn a_request_beyond_the_in_flight_cap_is_shed_with_retry_after() {
        let limits = Limits {
            max_in_flight: 1,
            request_timeout: Duration::from_secs(5),
            max_connections: 8,
            idle_timeout: Duration::from_secs(30),
        };
        let app = silent(limits, Duration::from_millis(400));
        let first = tokio::spawn(app.clone().oneshot(get("/v1/resources/a")));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, retry, message) =
            error_of(app.oneshot(get("/v1/resources/b")).await.unwrap()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(message.contains("too many requests"), "{message}");
        // The first one ends by the edge's timeout, also 503, retryable.
        let (status, retry, message) = error_of(first.await.unwrap().unwrap()).await;
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
        );
        assert!(message.contains("no answer from the API node"), "{message}");
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_answered_503() {
        let limits = Limits {
            max_in_flight: 8,
            request_timeout: Duration::from_millis(100),
            max_connections: 8,
            idle_timeout: Duration::from_secs(30),
        };
        let app = silent(limits, Duration::from_secs(5));
        let (status, retry, message) =
            error_of(app.oneshot(get("/v1/resources/a")).await.unwrap()).await;
        assert_eq!(
            (status, retry.as_deref()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("1"))
        );
        assert!(message.contains("took too long"), "{message}");
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_idle_timeout_and_frees_its_slot() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let capped = CappedListener::new(listener, 1, Duration::from_millis(200));
        let app = silent(Limits::default(), Duration::from_millis(100));
        tokio::spawn(async move { axum::serve(capped, app).await });

        // One silent connection holds the only slot until it idles out.
        let mut silent_client = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), silent_client.read_to_end(&mut rest))
                .await;
        assert!(
            matches!(closed, Ok(Ok(_))),
            "closed by the server: {closed:?}"
        );

        // The slot is free again: a real request is served.
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_string(&mut answer))
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
