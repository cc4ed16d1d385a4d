//! Drive one node's handlers by hand, with no event loop and no network:
//! for unit tests of sans-IO nodes, in the spirit of quinn's test `Pair`.
//! Sends, timers and records are captured as outputs; time moves only when
//! the test says so.

use crate::context::{Command, Context, Inputs};
use crate::random::SplitMix64;
use crate::{Node, NodeId, Protocol, TimerId};

/// What one handler call did.
#[derive(Debug)]
pub struct Output<P: Protocol> {
    /// Messages sent, in order.
    pub sent: Vec<(NodeId, P::Message)>,
    /// Timers set: id, delay on the node's clock, tag.
    pub timers: Vec<(TimerId, u64, P::Timer)>,
    /// History events recorded.
    pub records: Vec<P::Event>,
    /// Whether the handler changed its durable state (a host would persist
    /// it before releasing `sent`).
    pub durable_changed: bool,
    /// BUGGIFY points the handler reached, in order. The harness, like a
    /// real host, injects nothing at them: they only tell a test which
    /// marked windows a path went through.
    pub buggify_points: Vec<&'static str>,
    /// Measurements reported, in order (name and value).
    pub measures: Vec<(&'static str, u64)>,
}

/// One node, its clocks, durable state and random stream, and nothing else.
pub struct Harness<P: Protocol> {
    node: Box<dyn Node<P>>,
    id: NodeId,
    boot: u32,
    mono_ns: u64,
    wall_ns: u64,
    rng: SplitMix64,
    durable: P::Durable,
    next_timer: u64,
    /// Timers set and not yet fired or cancelled: (due at on the monotonic
    /// clock, id, tag).
    pending: Vec<(u64, TimerId, P::Timer)>,
}

impl<P: Protocol> Harness<P> {
    /// A harness for `node` as node `id`, its random stream seeded with
    /// `seed`, both clocks at zero.
    pub fn new(seed: u64, id: NodeId, node: Box<dyn Node<P>>) -> Self {
        Self {
            node,
            id,
            boot: 0,
            mono_ns: 0,
            wall_ns: 0,
            rng: SplitMix64::new(seed),
            durable: P::Durable::default(),
            next_timer: 0,
            pending: Vec::new(),
        }
    }

    /// The node's monotonic clock (which does not drift here).
    pub fn now_ns(&self) -> u64 {
        self.mono_ns
    }

    /// Moves both clocks forward without firing timers.
    pub fn advance(&mut self, delta_ns: u64) {
        self.mono_ns += delta_ns;
        self.wall_ns += delta_ns;
    }

    /// Steps the wall clock alone, as NTP or an operator would.
    pub fn jump_wall(&mut self, delta_ns: i64) {
        self.wall_ns = self.wall_ns.saturating_add_signed(delta_ns);
    }

    fn call(&mut self, handler: impl FnOnce(&mut dyn Node<P>, &mut Context<'_, P>)) -> Output<P> {
        let mut commands = Vec::new();
        let inputs = Inputs {
            id: self.id,
            boot: self.boot,
            mono_ns: self.mono_ns,
            wall_ns: self.wall_ns,
        };
        let mut ctx = Context::new(
            inputs,
            &mut self.rng,
            &mut self.durable,
            &mut self.next_timer,
            &mut commands,
        );
        handler(&mut *self.node, &mut ctx);
        let mut output = Output {
            sent: Vec::new(),
            timers: Vec::new(),
            records: Vec::new(),
            durable_changed: ctx.durable_changed(),
            buggify_points: Vec::new(),
            measures: Vec::new(),
        };
        for command in commands {
            match command {
                Command::Send { to, message } => output.sent.push((to, message)),
                Command::SetTimer {
                    timer,
                    delay_ns,
                    tag,
                } => {
                    self.pending
                        .push((self.mono_ns + delay_ns, timer, tag.clone()));
                    output.timers.push((timer, delay_ns, tag));
                }
                Command::CancelTimer { timer } => self.pending.retain(|(_, id, _)| *id != timer),
                Command::Record { event } => output.records.push(*event),
                Command::Buggify { point } => output.buggify_points.push(point),
                Command::Measure { name, value, .. } => output.measures.push((name, value)),
            }
        }
        output
    }

    /// Calls `on_start`.
    pub fn start(&mut self) -> Output<P> {
        self.call(|node, ctx| node.on_start(ctx))
    }

    /// Delivers `message` from `from`.
    pub fn deliver(&mut self, from: NodeId, message: P::Message) -> Output<P> {
        self.call(|node, ctx| node.on_message(ctx, from, message))
    }

    /// Advances to the earliest pending timer and fires it; `None` when no
    /// timer is pending.
    pub fn fire_next_timer(&mut self) -> Option<(P::Timer, Output<P>)> {
        let index =
            (0..self.pending.len()).min_by_key(|&i| (self.pending[i].0, self.pending[i].1))?;
        let (timer, tag) = self.take_pending(index);
        let fired = tag.clone();
        Some((fired, self.call(|node, ctx| node.on_timer(ctx, timer, tag))))
    }

    /// Fires the earliest pending timer whose tag matches `wanted`.
    pub fn fire_timer(&mut self, wanted: impl Fn(&P::Timer) -> bool) -> Option<Output<P>> {
        let index = (0..self.pending.len())
            .filter(|&i| wanted(&self.pending[i].2))
            .min_by_key(|&i| (self.pending[i].0, self.pending[i].1))?;
        let (timer, tag) = self.take_pending(index);
        Some(self.call(|node, ctx| node.on_timer(ctx, timer, tag)))
    }

    fn take_pending(&mut self, index: usize) -> (TimerId, P::Timer) {
        let (due_ns, timer, tag) = self.pending.remove(index);
        if due_ns > self.mono_ns {
            self.advance(due_ns - self.mono_ns);
        }
        (timer, tag)
    }

    /// The tags of pending timers, earliest first.
    pub fn pending_timers(&self) -> Vec<P::Timer> {
        let mut live: Vec<_> = self.pending.iter().collect();
        live.sort_by_key(|(due_ns, timer, _)| (*due_ns, *timer));
        live.into_iter().map(|(_, _, tag)| tag.clone()).collect()
    }

    /// Replaces the node with a fresh one, as a process crash and restart
    /// would: durable state is kept, pending timers are lost, the boot
    /// counter goes up, the clocks go on.
    pub fn restart(&mut self, node: Box<dyn Node<P>>) -> Output<P> {
        self.node = node;
        self.pending.clear();
        self.boot += 1;
        self.start()
    }

    /// As [`restart`](Self::restart), but the machine rebooted: the
    /// monotonic clock starts again at `mono_ns`.
    pub fn reboot(&mut self, node: Box<dyn Node<P>>, mono_ns: u64) -> Output<P> {
        self.mono_ns = mono_ns;
        self.restart(node)
    }

    /// The node's durable state.
    pub fn durable(&self) -> &P::Durable {
        &self.durable
    }

    /// The boot counter.
    pub fn boot(&self) -> u32 {
        self.boot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Proto;
    impl Protocol for Proto {
        type Message = u32;
        type Timer = u8;
        type Event = u32;
        type Durable = u32;
    }

    /// Sends 1, marks a point, sends 2, marks another, records.
    struct Marked;
    impl Node<Proto> for Marked {
        fn on_start(&mut self, ctx: &mut Context<'_, Proto>) {
            ctx.send(NodeId(1), 1);
            ctx.buggify("test.between_sends");
            ctx.send(NodeId(1), 2);
            ctx.buggify("test.before_record");
            *ctx.durable_mut() += 1;
            ctx.record(7);
        }
        fn on_message(&mut self, _: &mut Context<'_, Proto>, _: NodeId, _: u32) {}
        fn on_timer(&mut self, _: &mut Context<'_, Proto>, _: TimerId, _: u8) {}
    }

    #[test]
    fn a_buggify_point_is_a_no_op_on_a_host_that_injects_nothing() {
        let mut harness = Harness::new(1, NodeId(0), Box::new(Marked));
        let output = harness.start();
        // Everything else the handler asked for happens as if unmarked.
        assert_eq!(output.sent, vec![(NodeId(1), 1), (NodeId(1), 2)]);
        assert_eq!(output.records, vec![7]);
        assert!(output.durable_changed);
        assert_eq!(*harness.durable(), 1);
        // The points are reported, in order, and nothing more.
        assert_eq!(
            output.buggify_points,
            vec!["test.between_sends", "test.before_record"]
        );
        let again = harness.restart(Box::new(Marked));
        assert_eq!(again.sent.len(), 2);
        assert_eq!(*harness.durable(), 2);
    }

    /// A host that exports no metrics asks for a context without
    /// measurements: `measure` then issues nothing, and every other command
    /// comes out as before, in order.
    #[test]
    fn a_context_without_measures_drops_only_the_measurements() {
        let commands_of = |measures: bool| {
            let (mut rng, mut durable, mut next_timer) = (SplitMix64::new(1), 0u32, 0u64);
            let mut commands = Vec::new();
            let inputs = Inputs {
                id: NodeId(0),
                boot: 0,
                mono_ns: 0,
                wall_ns: 0,
            };
            let ctx = Context::<Proto>::new(
                inputs,
                &mut rng,
                &mut durable,
                &mut next_timer,
                &mut commands,
            );
            let mut ctx = if measures {
                ctx
            } else {
                ctx.without_measures()
            };
            ctx.send(NodeId(1), 1);
            ctx.measure("test_depth", crate::MeasureKind::Gauge, 3);
            ctx.record(7);
            commands
                .iter()
                .map(|command| match command {
                    Command::Send { .. } => "send",
                    Command::Measure { .. } => "measure",
                    Command::Record { .. } => "record",
                    _ => "other",
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(commands_of(true), ["send", "measure", "record"]);
        assert_eq!(commands_of(false), ["send", "record"]);
    }
}
