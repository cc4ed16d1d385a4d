//! One node's host task, the same on every engine: it takes messages from
//! an inbox and its timers from the engine's clock, runs the node's
//! handlers through [`Shared::handle`], and hands sends to the engine's
//! network. Pauses, clock drift and jumps act here (the engines have no
//! clock layer of their own); crashes are the engine's: it drops this task.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use node::{Node, NodeId, TimerId};
use plane::protocol::{ControlPlane, Msg, Timer};

use crate::world::{Effect, Input, Shared};

/// What a node's task needs of its engine.
pub trait Io {
    /// The engine's simulated time, in nanoseconds since the run began.
    fn now_ns(&self) -> u64;
    /// Waits until simulated time `at_ns`.
    fn sleep_until(&self, at_ns: u64) -> impl Future<Output = ()>;
    /// Sends `message` to `to` through the engine's network (at most once;
    /// the network may lose it), after holding it `delay_ns` (the slow
    /// tail; 0 for most messages).
    fn send(&self, to: NodeId, message: &Msg, delay_ns: u64);
}

/// The shared state of a run, locked by one task at a time (every engine
/// here runs one task at a time, so the lock is never contended).
pub type SharedRef = Arc<Mutex<Shared>>;

fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs node `id` until the engine drops this task (a crash) or the run
/// ends: boots it, then handles each message and timer in turn.
pub async fn run_node(
    shared: SharedRef,
    id: NodeId,
    mut node: Box<dyn Node<ControlPlane> + Send>,
    mut inbox: UnboundedReceiver<(NodeId, Msg)>,
    io: impl Io,
) {
    // Timers by (true due time, id), each with its due local elapsed time,
    // so a clock whose rate changed meanwhile is asked again.
    let mut timers: BTreeMap<(u64, TimerId), (u64, Timer)> = BTreeMap::new();
    let mut due: BTreeMap<TimerId, u64> = BTreeMap::new();
    let mut next_timer = 0u64;
    lock(&shared).boot(id, io.now_ns());
    let mut input = Some(Input::Start);
    loop {
        // A pause runs nothing: messages wait in the inbox and timers go
        // overdue, and both arrive on resume.
        loop {
            let until = lock(&shared).paused_until(id, io.now_ns());
            match until {
                Some(until) => io.sleep_until(until).await,
                None => break,
            }
        }
        if let Some(this) = input.take() {
            let now_ns = io.now_ns();
            let effects = {
                let mut shared = lock(&shared);
                if shared.limit_hit() {
                    return;
                }
                let effects = shared.handle(id, now_ns, node.as_mut(), this, &mut next_timer);
                for effect in &effects {
                    if let Effect::SetTimer {
                        timer,
                        delay_ns,
                        tag,
                    } = effect
                    {
                        let local_due = shared
                            .local_elapsed_ns(id, now_ns)
                            .saturating_add(*delay_ns);
                        let at = now_ns.saturating_add(shared.true_duration_ns(id, *delay_ns));
                        timers.insert((at, *timer), (local_due, tag.clone()));
                        due.insert(*timer, at);
                    }
                }
                effects
            };
            for effect in effects {
                match effect {
                    Effect::Send {
                        to,
                        message,
                        copies,
                        delay_ns,
                    } => {
                        for _ in 0..copies {
                            io.send(to, &message, delay_ns);
                        }
                    }
                    Effect::CancelTimer { timer } => {
                        if let Some(at) = due.remove(&timer) {
                            timers.remove(&(at, timer));
                        }
                    }
                    Effect::SetTimer { .. } => {}
                }
            }
        }
        // Wait for the next message or the first timer due.
        let next_due = timers.keys().next().map(|&(at, _)| at);
        let received = match next_due {
            Some(at) => match select(inbox.next(), Box::pin(io.sleep_until(at))).await {
                Either::Left((received, _)) => Some(received),
                Either::Right(((), _)) => None,
            },
            None => Some(inbox.next().await),
        };
        match received {
            Some(Some((from, message))) => input = Some(Input::Message(from, message)),
            // The engine closed the inbox: the run is over.
            Some(None) => return,
            None => {
                let ((at, timer), (local_due, tag)) = timers.pop_first().expect("a timer is due");
                due.remove(&timer);
                let now_ns = io.now_ns();
                let shared = lock(&shared);
                let elapsed = shared.local_elapsed_ns(id, now_ns);
                if elapsed >= local_due {
                    input = Some(Input::Timer(timer, tag));
                } else {
                    // The clock slowed since it was set: wait the rest.
                    let rest = shared.true_duration_ns(id, local_due - elapsed);
                    let again = now_ns.max(at).saturating_add(rest.max(1));
                    timers.insert((again, timer), (local_due, tag));
                    due.insert(timer, again);
                }
            }
        }
    }
}
