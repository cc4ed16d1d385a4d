//! Drive one node's handlers directly, without the event loop: for unit
//! tests of sans-IO nodes. Sends, timers and records are captured as
//! outputs; time moves only when the test says so.

use crate::clock::ClockConfig;
use crate::node::{Context, Node};
use crate::simulation::{Core, SimConfig};
use crate::{NodeId, Protocol, TimerId};

/// What one handler call did.
#[derive(Debug)]
pub struct Output<P: Protocol> {
    /// Messages sent, in order.
    pub sent: Vec<(NodeId, P::Message)>,
    /// Timers set: id, delay on the node's clock, tag.
    pub timers: Vec<(TimerId, u64, P::Timer)>,
    /// History events recorded.
    pub records: Vec<P::Event>,
}

impl<P: Protocol> Default for Output<P> {
    fn default() -> Self {
        Self {
            sent: Vec::new(),
            timers: Vec::new(),
            records: Vec::new(),
        }
    }
}

/// One node, its clock, storage and random stream, and nothing else.
pub struct Harness<P: Protocol> {
    core: Core<P>,
    node: Box<dyn Node<P>>,
    id: NodeId,
    /// Timers set and not yet fired or cancelled: (due at, id, tag).
    pending: Vec<(u64, TimerId, P::Timer)>,
}

impl<P: Protocol> Harness<P>
where
    P::Timer: Clone,
{
    /// A harness for `node` as node `id` among `node_count` nodes.
    pub fn new(seed: u64, node_count: u32, id: NodeId, node: Box<dyn Node<P>>) -> Self {
        assert!(id.0 < node_count, "the node must be one of the nodes");
        let mut core = Core::new(SimConfig {
            seed,
            ..SimConfig::default()
        });
        for index in 0..node_count {
            core.add_slot(format!("n{index}"), ClockConfig::default(), NodeId(index));
        }
        core.init_links();
        Self {
            core,
            node,
            id,
            pending: Vec::new(),
        }
    }

    /// Current true time (equal to the node's clock, which does not drift).
    pub fn now_ns(&self) -> u64 {
        self.core.now_ns
    }

    /// Moves time forward without firing timers.
    pub fn advance(&mut self, delta_ns: u64) {
        self.core.now_ns += delta_ns;
    }

    fn call(&mut self, handler: impl FnOnce(&mut dyn Node<P>, &mut Context<'_, P>)) -> Output<P> {
        let mut ctx = Context {
            core: &mut self.core,
            node: self.id,
        };
        handler(&mut *self.node, &mut ctx);
        let (sent, timers, records) = self.core.drain_outputs();
        for (timer, due_ns, tag) in &timers {
            self.pending.push((*due_ns, *timer, tag.clone()));
        }
        Output {
            sent,
            timers: timers
                .into_iter()
                .map(|(timer, due_ns, tag)| (timer, due_ns - self.core.now_ns, tag))
                .collect(),
            records,
        }
    }

    /// Calls `on_start`.
    pub fn start(&mut self) -> Output<P> {
        self.call(|node, ctx| node.on_start(ctx))
    }

    /// Delivers `message` from `from`.
    pub fn deliver(&mut self, from: NodeId, message: P::Message) -> Output<P> {
        self.call(|node, ctx| node.on_message(ctx, from, message))
    }

    /// Advances to the earliest pending (not cancelled) timer and fires it;
    /// `None` when no timer is pending.
    pub fn fire_next_timer(&mut self) -> Option<(P::Timer, Output<P>)> {
        self.pending
            .retain(|(_, timer, _)| self.core.pending_timers.contains(timer));
        let index =
            (0..self.pending.len()).min_by_key(|&i| (self.pending[i].0, self.pending[i].1))?;
        let (due_ns, timer, tag) = self.pending.remove(index);
        self.core.now_ns = self.core.now_ns.max(due_ns);
        self.core.pending_timers.remove(&timer);
        let fired = tag.clone();
        Some((fired, self.call(|node, ctx| node.on_timer(ctx, timer, tag))))
    }

    /// Fires the earliest pending timer whose tag matches `wanted`.
    pub fn fire_timer(&mut self, wanted: impl Fn(&P::Timer) -> bool) -> Option<Output<P>> {
        self.pending
            .retain(|(_, timer, _)| self.core.pending_timers.contains(timer));
        let index = (0..self.pending.len())
            .filter(|&i| wanted(&self.pending[i].2))
            .min_by_key(|&i| (self.pending[i].0, self.pending[i].1))?;
        let (due_ns, timer, tag) = self.pending.remove(index);
        self.core.now_ns = self.core.now_ns.max(due_ns);
        self.core.pending_timers.remove(&timer);
        Some(self.call(|node, ctx| node.on_timer(ctx, timer, tag)))
    }

    /// The tags of pending timers, earliest first.
    pub fn pending_timers(&self) -> Vec<P::Timer> {
        let mut live: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, timer, _)| self.core.pending_timers.contains(timer))
            .collect();
        live.sort_by_key(|(due_ns, timer, _)| (*due_ns, *timer));
        live.into_iter().map(|(_, _, tag)| tag.clone()).collect()
    }

    /// Replaces the node with a fresh one, as a crash and restart would:
    /// durable storage is kept, pending timers are lost.
    pub fn restart(&mut self, node: Box<dyn Node<P>>) -> Output<P> {
        self.node = node;
        self.pending.clear();
        self.core.pending_timers.clear();
        self.core.nodes[self.id.index()].incarnation += 1;
        self.start()
    }

    /// The node's durable storage, if it holds a `T`.
    pub fn storage<T: 'static>(&self) -> Option<&T> {
        self.core.nodes[self.id.index()]
            .storage
            .as_ref()
            .and_then(|boxed| boxed.downcast_ref::<T>())
    }
}
