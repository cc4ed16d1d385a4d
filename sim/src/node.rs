//! The node interface and the context handed to its handlers.

use std::any::Any;

use crate::rng::SimRng;
use crate::simulation::Core;
use crate::{NodeId, Protocol, TimerId};

/// A sans-IO actor: inputs come in through the handlers, and everything it
/// does goes out through the [`Context`].
pub trait Node<P: Protocol> {
    /// Called when the node starts, and again after every restart (then
    /// [`Context::incarnation`] is above zero and durable storage holds what
    /// survived).
    fn on_start(&mut self, ctx: &mut Context<'_, P>);

    /// A message from `from` arrived.
    fn on_message(&mut self, ctx: &mut Context<'_, P>, from: NodeId, message: P::Message);

    /// A timer set by this node fired (and was not cancelled).
    fn on_timer(&mut self, ctx: &mut Context<'_, P>, timer: TimerId, tag: P::Timer);
}

/// What a handler may do: send, set timers, read its clocks, draw random
/// numbers, use its durable storage and record history.
pub struct Context<'a, P: Protocol> {
    pub(crate) core: &'a mut Core<P>,
    pub(crate) node: NodeId,
}

impl<P: Protocol> Context<'_, P> {
    /// This node's id.
    #[inline]
    pub fn id(&self) -> NodeId {
        self.node
    }

    /// How many times this node was restarted (0 for the first start).
    pub fn incarnation(&self) -> u32 {
        self.core.nodes[self.node.index()].incarnation
    }

    /// The node's monotonic clock, in its own (drifting) nanoseconds.
    #[inline]
    pub fn mono_ns(&self) -> u64 {
        self.core.nodes[self.node.index()]
            .clock
            .mono_ns(self.core.now_ns)
    }

    /// The node's wall clock: drifts like the monotonic one, and jumps.
    #[inline]
    pub fn wall_ns(&self) -> u64 {
        self.core.nodes[self.node.index()]
            .clock
            .wall_ns(self.core.now_ns)
    }

    /// Sends `message` to `to` through the simulated network.
    #[inline]
    pub fn send(&mut self, to: NodeId, message: P::Message) {
        self.core.send(self.node, to, message);
    }

    /// Sets a timer that fires after `delay_ns` on this node's monotonic
    /// clock, carrying `tag`.
    #[inline]
    pub fn set_timer(&mut self, delay_ns: u64, tag: P::Timer) -> TimerId {
        self.core.set_timer(self.node, delay_ns, tag)
    }

    /// Cancels a timer; cancelling one that fired already does nothing.
    pub fn cancel_timer(&mut self, timer: TimerId) {
        self.core.pending_timers.remove(&timer);
    }

    /// This node's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.core.nodes[self.node.index()].rng
    }

    /// This node's durable storage, as a value of type `T` created with
    /// `T::default()` on first use. It survives crashes; writes are durable
    /// as soon as they are made (a synchronous, fsync'd write).
    ///
    /// # Panics
    /// If the node used a different type for its storage before.
    pub fn storage<T: Default + 'static>(&mut self) -> &mut T {
        let slot = &mut self.core.nodes[self.node.index()].storage;
        let boxed: &mut Box<dyn Any> = slot.get_or_insert_with(|| Box::new(T::default()));
        boxed
            .downcast_mut::<T>()
            .expect("a node's durable storage keeps one type")
    }

    /// Records a history event for the checkers.
    pub fn record(&mut self, event: P::Event) {
        self.core.record(self.node, event);
    }
}
