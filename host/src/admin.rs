//! The admin endpoint: loopback only. `GET /metrics` is this process's
//! metrics (so a process without an HTTP edge can be scraped); everything
//! under `/admin/` needs the token (`Authorization: Bearer TOKEN`):
//!
//! | route | what |
//! |---|---|
//! | `GET /admin/status` | what this process runs and where, its data directory, active faults, and the cluster as the store recorded it (for `watch`) |
//! | `GET /admin/faults` | the active faults |
//! | `POST /admin/faults` | start a fault: a [`Fault`] as JSON (node ids by `names` in the status) |
//! | `DELETE /admin/faults` | heal every fault |
//! | `DELETE /admin/faults/{id}` | heal one |

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

use crate::faults::Faults;
use crate::http::error;
use crate::net::Network;
use node::fault::Fault;

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
    /// The data directory (histories, for `watch` and `check`).
    pub data: std::path::PathBuf,
    /// This process's fault table.
    pub faults: Arc<Faults>,
    /// The transport (a healed clog releases what it held through it).
    pub network: Network,
}

impl Admin {
    /// Starts `fault`, and schedules its heal if it heals by itself.
    pub fn start_fault(self: &Arc<Self>, fault: Fault) -> Result<u64, String> {
        self.faults.validate(&fault)?;
        tracing::warn!(?fault, "chaos: fault injected");
        let (id, after) = self.faults.inject(fault);
        if let Some(after) = after {
            let admin = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                admin.heal_fault(id);
            });
        }
        Ok(id)
    }

    /// Heals fault `id`, releasing what a clog held; false if it was not
    /// active.
    pub fn heal_fault(&self, id: u64) -> bool {
        match self.faults.heal(id) {
            Some(fault) => {
                tracing::warn!(?fault, "chaos: fault healed");
                if let Fault::Clog { from, to, .. } = fault {
                    self.network.release(from, to);
                }
                true
            }
            None => false,
        }
    }
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
        .route(
            "/admin/faults",
            get(list_faults).post(post_fault).delete(heal_all),
        )
        .route("/admin/faults/{id}", delete(heal_one))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such admin route: allowed /admin/status, /admin/faults, /admin/faults/{id}, /metrics",
            )
        })
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
        "names": admin.faults.names(),
        "nodes": admin.nodes,
        "http": admin.http,
        "data": admin.data,
        "faults": admin.faults.list(),
        "faults_injected": admin.faults.injected(),
        "cluster": admin.metrics.view(),
    }))
    .into_response()
}

async fn list_faults(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&admin, &headers) {
        return refused;
    }
    Json(json!({ "faults": admin.faults.list() })).into_response()
}

async fn post_fault(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = refusal(&admin, &headers) {
        return refused;
    }
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body is not a fault: {e}; allowed kinds partition, clog, crash, pause, clock_jump, reboot, degrade, clock_drift"
                ),
            );
        }
    };
    match admin.start_fault(fault.clone()) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({ "id": id, "fault": fault })),
        )
            .into_response(),
        Err(message) => error(StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

async fn heal_all(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&admin, &headers) {
        return refused;
    }
    let healed: Vec<u64> = admin
        .faults
        .active_ids()
        .into_iter()
        .filter(|&id| admin.heal_fault(id))
        .collect();
    Json(json!({ "healed": healed })).into_response()
}

async fn heal_one(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<u64>,
) -> Response {
    if let Some(refused) = refusal(&admin, &headers) {
        return refused;
    }
    if admin.heal_fault(id) {
        Json(json!({ "healed": [id] })).into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no active fault {id}"))
    }
}
