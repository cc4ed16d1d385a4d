//! The admin endpoint: loopback only. `GET /metrics` is this process's
//! metrics (so a process without an HTTP edge can be scraped); everything
//! under `/admin/` needs the token (`Authorization: Bearer TOKEN`):
//! `GET /admin/status` says what this process runs and where; fault
//! injection (`chaos`) will hang here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::http::error;

/// What the admin handlers share.
pub struct Admin {
    /// The token every request must carry.
    pub token: String,
    /// Each node this process runs, and its TCP address.
    pub nodes: BTreeMap<String, SocketAddr>,
    /// Each edge this process runs, and its HTTP address.
    pub http: BTreeMap<String, SocketAddr>,
    /// This process's metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This process's transport counters.
    pub net: Arc<crate::net::NetCounters>,
}

/// A fresh admin token: 128 bits from the operating system, as hex.
pub fn generate_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Refuses an admin address that is not loopback.
pub fn check_loopback(address: SocketAddr) -> Result<(), String> {
    if address.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--admin {address}: the admin endpoint listens on loopback only: allowed 127.0.0.1:PORT or [::1]:PORT"
        ))
    }
}

/// The admin router.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/admin/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin route: /admin/status") })
        .with_state(admin)
}

/// The refusal of a request without the right token, if it has not.
fn refusal(admin: &Admin, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        // Compare in constant time: the token is a secret.
        Some(token)
            if token.len() == admin.token.len()
                && token
                    .bytes()
                    .zip(admin.token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0 =>
        {
            None
        }
        Some(_) => Some(error(StatusCode::FORBIDDEN, "wrong admin token")),
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "the admin endpoint needs `Authorization: Bearer TOKEN` (printed by serve at start)",
        )),
    }
}

/// This process's metrics, without the token: every process of a
/// multi-process cluster has an admin endpoint, and a process without an
/// HTTP edge (the store, a controller) is scraped here.
async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    let text = admin.metrics.render(&admin.net);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

async fn status(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&admin, &headers) {
        return refused;
    }
    Json(json!({
        "nodes": admin.nodes,
        "http": admin.http,
        "faults": [],
    }))
    .into_response()
}
