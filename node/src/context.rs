//! The context a handler gets: an input snapshot in, a command buffer out.

use crate::random::Random;
use crate::{NodeId, Protocol, TimerId};

/// What a host tells a node for one handler call, frozen for that call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inputs {
    /// This node's id.
    pub id: NodeId,
    /// How many times this node has started before (0 on its first start).
    /// Durable: a host keeps it with the node's durable state.
    pub boot: u32,
    /// The node's monotonic clock, in its own nanoseconds. Never goes back
    /// within a boot; may start anywhere on a new boot.
    pub mono_ns: u64,
    /// The node's wall clock, in nanoseconds since the epoch of its own
    /// choosing. May jump either way.
    pub wall_ns: u64,
}

/// One thing a handler asked its host to do.
#[derive(Debug)]
pub enum Command<P: Protocol> {
    /// Send `message` to `to` (at most once; the network may lose it).
    Send {
        /// The receiver.
        to: NodeId,
        /// What to send.
        message: P::Message,
    },
    /// Fire `on_timer(timer, tag)` after `delay_ns` on the node's monotonic
    /// clock, unless cancelled first.
    SetTimer {
        /// The id the handler was given.
        timer: TimerId,
        /// Delay on the node's monotonic clock.
        delay_ns: u64,
        /// What the timer carries back.
        tag: P::Timer,
    },
    /// Forget a pending timer; one that fired already is no matter.
    CancelTimer {
        /// The timer.
        timer: TimerId,
    },
    /// Append `event` to the history the checkers read.
    Record {
        /// The event, boxed: a protocol's events are its largest values
        /// (the control plane's are 144 bytes, its messages 88), and every
        /// command is as large as its largest variant, so an event held
        /// inline would make each send and timer copy one too. Records are
        /// a few of a handler's commands; sends and timers are most.
        event: Box<P::Event>,
    },
    /// The handler reached a BUGGIFY point (see [`Context::buggify`]). A
    /// testing host may decide to inject a fault right here; every other
    /// host ignores it.
    Buggify {
        /// The point's name, `"<node kind>.<where>"`.
        point: &'static str,
    },
    /// A measurement for operators (see [`Context::measure`]): a real host
    /// exports it as a metric; the simulator ignores it, untraced.
    Measure {
        /// The metric's name, `"<node kind>_<what>"`.
        name: &'static str,
        /// How to aggregate it.
        kind: MeasureKind,
        /// The value.
        value: u64,
    },
}

/// How a host aggregates a [`Command::Measure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasureKind {
    /// The latest value is the current level (a queue's depth).
    Gauge,
    /// Each value is one sample of a distribution (a duration in ns).
    Sample,
}

/// What a handler may see and do: read its inputs and its durable state,
/// draw random numbers, and issue commands.
///
/// A host builds one per handler call with [`Context::new`], calls the
/// handler, asks [`Context::durable_changed`], persists the durable state if
/// so, and only then applies the commands it collected, in order.
pub struct Context<'a, P: Protocol> {
    inputs: Inputs,
    rng: &'a mut dyn Random,
    durable: &'a mut P::Durable,
    durable_changed: bool,
    next_timer: &'a mut u64,
    commands: &'a mut Vec<Command<P>>,
    /// Whether [`Context::measure`] keeps its measurements.
    measures: bool,
}

impl<'a, P: Protocol> Context<'a, P> {
    /// A context over a host's per-node parts. `next_timer` is the node's
    /// timer counter (volatile, never reused within a boot); `commands`
    /// receives what the handler asks for, appended in order.
    pub fn new(
        inputs: Inputs,
        rng: &'a mut dyn Random,
        durable: &'a mut P::Durable,
        next_timer: &'a mut u64,
        commands: &'a mut Vec<Command<P>>,
    ) -> Self {
        Self {
            inputs,
            rng,
            durable,
            durable_changed: false,
            next_timer,
            commands,
            measures: true,
        }
    }

    /// The same context, but [`Context::measure`] drops its measurements
    /// instead of issuing [`Command::Measure`]: for a host that exports no
    /// metrics (a simulator), which would only skip the command.
    #[must_use]
    pub fn without_measures(mut self) -> Self {
        self.measures = false;
        self
    }

    /// This node's id.
    #[inline]
    pub fn id(&self) -> NodeId {
        self.inputs.id
    }

    /// How many times this node started before this boot (0 for the first).
    #[inline]
    pub fn boot(&self) -> u32 {
        self.inputs.boot
    }

    /// The node's monotonic clock, frozen for this handler.
    #[inline]
    pub fn mono_ns(&self) -> u64 {
        self.inputs.mono_ns
    }

    /// The node's wall clock, frozen for this handler: drifts and jumps.
    #[inline]
    pub fn wall_ns(&self) -> u64 {
        self.inputs.wall_ns
    }

    /// Sends `message` to `to`.
    #[inline]
    pub fn send(&mut self, to: NodeId, message: P::Message) {
        self.commands.push(Command::Send { to, message });
    }

    /// Sets a timer that fires after `delay_ns` on this node's monotonic
    /// clock, carrying `tag`.
    #[inline]
    pub fn set_timer(&mut self, delay_ns: u64, tag: P::Timer) -> TimerId {
        *self.next_timer += 1;
        let timer = TimerId(*self.next_timer);
        self.commands.push(Command::SetTimer {
            timer,
            delay_ns,
            tag,
        });
        timer
    }

    /// Cancels a timer; cancelling one that fired already does nothing.
    #[inline]
    pub fn cancel_timer(&mut self, timer: TimerId) {
        self.commands.push(Command::CancelTimer { timer });
    }

    /// This node's own random stream.
    #[inline]
    pub fn rng(&mut self) -> &mut dyn Random {
        self.rng
    }

    /// This node's durable state, to read.
    #[inline]
    pub fn durable(&self) -> &P::Durable {
        self.durable
    }

    /// This node's durable state, to change: the host persists it before
    /// this handler's sends leave.
    #[inline]
    pub fn durable_mut(&mut self) -> &mut P::Durable {
        self.durable_changed = true;
        self.durable
    }

    /// Records a history event for the checkers.
    #[inline]
    pub fn record(&mut self, event: P::Event) {
        self.commands.push(Command::Record {
            event: Box::new(event),
        });
    }

    /// Marks a BUGGIFY point: a place where a fault matters most (just
    /// after a restart, between the steps of a multi-step write, between a
    /// lease's expiry and its holder noticing). `point` names it
    /// `"<node kind>.<where>"`, and must be a constant: hosts count and
    /// hash it by name.
    ///
    /// It returns nothing, so a node cannot branch on it and behaves the
    /// same on every host. A testing host may act on it (for this seed the
    /// point may be on, and this hit may fire): it may delay or drop the
    /// sends the handler issues after this call, crash the node right
    /// after the handler (its durable state already persisted), or pause
    /// it. A real host treats it as a no-op.
    #[inline]
    pub fn buggify(&mut self, point: &'static str) {
        self.commands.push(Command::Buggify { point });
    }

    /// Reports a measurement for operators: a level (`MeasureKind::Gauge`,
    /// e.g. a work queue's depth) or one sample of a distribution
    /// (`MeasureKind::Sample`, e.g. how long a reconcile pass took). Like
    /// [`Context::buggify`] it returns nothing and changes nothing a node
    /// does; a real host exports it as a metric, the simulator ignores it
    /// (it is not part of the trace, so adding one moves no trace hash).
    #[inline]
    pub fn measure(&mut self, name: &'static str, kind: MeasureKind, value: u64) {
        if self.measures {
            self.commands.push(Command::Measure { name, kind, value });
        }
    }

    /// Whether the handler asked for its durable state mutably: the host
    /// must persist it before releasing this handler's sends.
    #[inline]
    pub fn durable_changed(&self) -> bool {
        self.durable_changed
    }
}
