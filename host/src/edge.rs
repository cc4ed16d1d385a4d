//! The HTTP edge's link to the API nodes: it holds a client node id, sends
//! each HTTP request as the API node's `Api` message and waits for the
//! `ApiReply`. It adds no semantics: every Idempotency-Key rule, every
//! status and every body comes from the API node; the edge only converts.
//!
//! The edge never retries. A request that gets no reply within its timeout
//! is answered 503 with `Retry-After`, and the HTTP client retries with the
//! same Idempotency-Key, exactly as the simulated clients do.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use node::NodeId;
use plane::protocol::{ApiOp, ApiReply, ApiRequest, Msg, RequestId};
use tokio::sync::oneshot;

use crate::net::Network;

/// The edge: a client id, the API nodes it may use, and the requests
/// awaiting their reply.
pub struct Edge {
    id: NodeId,
    apis: Vec<NodeId>,
    network: Network,
    pending: Mutex<BTreeMap<RequestId, oneshot::Sender<ApiReply>>>,
    boot: u32,
    next: AtomicU64,
    turn: AtomicUsize,
    timeout: Duration,
}

/// Why a request got no answer.
#[derive(Debug)]
pub struct NoAnswer {
    /// The API node it was sent to.
    pub api: NodeId,
    /// How long the edge waited.
    pub waited: Duration,
}

impl Edge {
    /// An edge with client id `id` (whose `boot` makes its request ids
    /// unique across restarts), sending to `apis` in turn.
    pub fn new(
        id: NodeId,
        boot: u32,
        apis: Vec<NodeId>,
        network: Network,
        timeout: Duration,
    ) -> Self {
        assert!(!apis.is_empty(), "an edge needs an API node");
        Self {
            id,
            apis,
            network,
            pending: Mutex::default(),
            boot,
            next: AtomicU64::new(0),
            turn: AtomicUsize::new(0),
            timeout,
        }
    }

    /// Sends `op` with `key` to the next API node and waits for its reply.
    pub async fn call(&self, key: Option<String>, op: ApiOp) -> Result<ApiReply, NoAnswer> {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        let request_id = (u64::from(self.boot) << 48) | (counter & ((1 << 48) - 1));
        let api = self.apis[self.turn.fetch_add(1, Ordering::Relaxed) % self.apis.len()];
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(request_id, sender);
        let request = ApiRequest {
            request_id,
            idempotency_key: key,
            op,
        };
        self.network.send(self.id, api, Msg::Api(request));
        let answer = tokio::time::timeout(self.timeout, receiver).await;
        self.pending
            .lock()
            .expect("pending lock")
            .remove(&request_id);
        match answer {
            Ok(Ok(reply)) => Ok(reply),
            _ => Err(NoAnswer {
                api,
                waited: self.timeout,
            }),
        }
    }

    /// A message for the edge arrived: a reply completes its request; a
    /// late, duplicate or stray one is dropped.
    pub fn deliver(&self, from: NodeId, message: Msg) {
        if let Msg::ApiReply(reply) = message
            && self.apis.contains(&from)
            && let Some(waiter) = self
                .pending
                .lock()
                .expect("pending lock")
                .remove(&reply.request_id)
        {
            let _ = waiter.send(*reply);
        }
    }
}
