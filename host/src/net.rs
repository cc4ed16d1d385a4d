//! Messages between nodes over real TCP: length-prefixed frames, each one
//! postcard-encoded [`Envelope`].
//!
//! Delivery is at most once, as the node contract promises and no more: a
//! frame queued for a peer that cannot be reached is dropped after a
//! bounded queue fills, and a connection that breaks loses what was in
//! flight. The nodes already survive lost messages (timeouts, retries,
//! resync), so the transport adds no retries of its own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use node::NodeId;
use plane::protocol::Msg;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::faults::{Faults, Route};

/// The largest frame accepted: far above any message the store's limits
/// allow, far below what could exhaust memory.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
/// Frames queued for one peer before new ones are dropped.
const QUEUE_PER_PEER: usize = 4_096;

/// One message on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// What was sent.
    pub message: Msg,
}

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// Counters of one process's transport, for `/metrics`.
#[derive(Debug, Default)]
pub struct NetCounters {
    /// Frames handed to a connection.
    pub sent: std::sync::atomic::AtomicU64,
    /// Frames dropped: the peer's queue was full or its connection broke.
    pub dropped: std::sync::atomic::AtomicU64,
    /// Frames received and decoded.
    pub received: std::sync::atomic::AtomicU64,
    /// Frames received that could not be decoded (peer input, not trusted).
    pub undecodable: std::sync::atomic::AtomicU64,
}

/// Messages a clog holds, by link (from, to), in send order.
type Held = BTreeMap<(NodeId, NodeId), Vec<Msg>>;

/// The sending half of a process's transport: one connection (and queue)
/// per peer, opened on first use and reopened after it breaks.
#[derive(Clone)]
pub struct Network {
    addresses: Arc<BTreeMap<NodeId, SocketAddr>>,
    outboxes: Arc<Mutex<BTreeMap<NodeId, mpsc::Sender<Bytes>>>>,
    /// Messages held by clogs, by link, in send order.
    held: Arc<Mutex<Held>>,
    faults: Option<Arc<Faults>>,
    /// Counters.
    pub counters: Arc<NetCounters>,
}

impl Network {
    /// A transport that reaches each node at its address.
    pub fn new(addresses: BTreeMap<NodeId, SocketAddr>) -> Self {
        Self {
            addresses: Arc::new(addresses),
            outboxes: Arc::default(),
            held: Arc::default(),
            faults: None,
            counters: Arc::default(),
        }
    }

    /// The same transport, with every send passing through `faults`.
    pub fn with_faults(mut self, faults: Arc<Faults>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Sends `message` from `from` to `to`, as the active faults allow:
    /// lost, held by a clog, copied or delayed.
    pub fn send(&self, from: NodeId, to: NodeId, message: Msg) {
        let Some(faults) = &self.faults else {
            return self.send_now(from, to, message);
        };
        match faults.route(from, to) {
            Route::Send { copies, delay } if delay.is_zero() => {
                if copies > 1 {
                    self.send_now(from, to, message.clone());
                }
                self.send_now(from, to, message);
            }
            Route::Send { copies, delay } => {
                let network = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if copies > 1 {
                        network.send_now(from, to, message.clone());
                    }
                    network.send_now(from, to, message);
                });
            }
            Route::Drop => {}
            Route::Hold => {
                let mut held = self.held.lock().expect("held lock");
                // Checked again under the lock, so a release cannot slip
                // between the route and the hold.
                if faults.clogged(from, to) {
                    held.entry((from, to)).or_default().push(message);
                } else {
                    drop(held);
                    self.send_now(from, to, message);
                }
            }
        }
    }

    /// Releases what a healed clog held on `from -> to`, in a burst.
    pub fn release(&self, from: NodeId, to: NodeId) {
        let burst = {
            let mut held = self.held.lock().expect("held lock");
            if self
                .faults
                .as_ref()
                .is_some_and(|faults| faults.clogged(from, to))
            {
                return; // another clog still holds the link
            }
            held.remove(&(from, to)).unwrap_or_default()
        };
        for message in burst {
            self.send_now(from, to, message);
        }
    }

    /// Sends `message` from `from` to `to`: queued for the peer's
    /// connection, dropped if the queue is full or the peer unknown.
    fn send_now(&self, from: NodeId, to: NodeId, message: Msg) {
        use std::sync::atomic::Ordering::Relaxed;
        let envelope = Envelope { from, to, message };
        let frame = match postcard::to_stdvec(&envelope) {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) => {
                tracing::error!(%error, "a message could not be encoded; dropped");
                self.counters.dropped.fetch_add(1, Relaxed);
                return;
            }
        };
        let outbox = {
            let mut outboxes = self.outboxes.lock().expect("outboxes lock");
            match outboxes.get(&to) {
                Some(outbox) if !outbox.is_closed() => outbox.clone(),
                _ => {
                    let Some(&address) = self.addresses.get(&to) else {
                        self.counters.dropped.fetch_add(1, Relaxed);
                        return;
                    };
                    let (sender, receiver) = mpsc::channel(QUEUE_PER_PEER);
                    tokio::spawn(connection(address, receiver, self.counters.clone()));
                    outboxes.insert(to, sender.clone());
                    sender
                }
            }
        };
        if outbox.try_send(frame).is_err() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Keeps one peer's connection: connects (retrying with a short backoff),
/// writes queued frames, and reconnects when the connection breaks.
async fn connection(
    address: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
    counters: Arc<NetCounters>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut backoff = Duration::from_millis(20);
    loop {
        let stream = match TcpStream::connect(address).await {
            Ok(stream) => stream,
            Err(_) => {
                // The peer is down: what waits for it would be stale by the
                // time it is back; lose it, as a network would.
                while let Ok(_frame) = queue.try_recv() {
                    counters.dropped.fetch_add(1, Relaxed);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
                if queue.is_closed() {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, codec());
        loop {
            let Some(frame) = queue.recv().await else {
                return;
            };
            if framed.send(frame).await.is_err() {
                counters.dropped.fetch_add(1, Relaxed);
                break;
            }
            counters.sent.fetch_add(1, Relaxed);
        }
    }
}

/// Accepts connections on `listener` and hands every decoded envelope
/// addressed to a node in `inboxes` to it. Runs until the process stops.
pub async fn listen(
    listener: TcpListener,
    inboxes: Arc<BTreeMap<NodeId, mpsc::UnboundedSender<(NodeId, Msg)>>>,
    counters: Arc<NetCounters>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let inboxes = inboxes.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let _ = stream.set_nodelay(true);
            let mut framed = Framed::new(stream, codec());
            while let Some(Ok(frame)) = framed.next().await {
                match postcard::from_bytes::<Envelope>(&frame) {
                    Ok(envelope) => {
                        counters.received.fetch_add(1, Relaxed);
                        if let Some(inbox) = inboxes.get(&envelope.to) {
                            let _ = inbox.send((envelope.from, envelope.message));
                        }
                    }
                    Err(_) => {
                        counters.undecodable.fetch_add(1, Relaxed);
                    }
                }
            }
        });
    }
}
