//! What outlives every host of a run on an engine: each node's durable
//! state, boot counter, clock and random stream, the history, the trace and
//! the counters. A host is only the node's volatile half, so an engine's
//! crash and restart lose exactly what a real crash loses.

use std::collections::BTreeMap;

use node::{Command, Context, Inputs, Node, NodeId, Random, TimerId, stable_hash};

use plane::protocol::{ControlPlane, Event, Msg, Timer};
use sim::{
    ClockConfig, Fault, HistoryEntry, NodeClock, ScheduledFault, SimRng, Stats, Stream, Trace,
    TraceEntry, TraceKind,
};

/// One node's lasting parts.
struct Slot {
    clock: NodeClock,
    boot: u32,
    started: bool,
    up: bool,
    /// Taken down by a crash or reboot fault and not yet restarted (a
    /// restarted node is up again once its host boots it).
    down: bool,
    durable: plane::Durable,
    rng: SimRng,
    paused_until_ns: Option<u64>,
    /// Drift faults in force on this node: (fault index, rate).
    drifts: Vec<(usize, i32)>,
}

/// A degrade fault in force.
struct Degrade {
    index: usize,
    nodes: Vec<NodeId>,
    duplicate_ppm: u32,
}

/// The input a handler runs for.
pub enum Input {
    /// The node (re)started.
    Start,
    /// A message arrived.
    Message(NodeId, Msg),
    /// A timer fired.
    Timer(TimerId, Timer),
}

/// What a handler asked the host to do with the network and its timers
/// (history records are kept here already).
pub enum Effect {
    /// Send `message` to `to`, `copies` times (a duplicate is a second copy).
    Send {
        /// The receiver.
        to: NodeId,
        /// What to send.
        message: Msg,
        /// 1, or 2 when the network duplicates it.
        copies: u32,
        /// How long the sender holds it first: the network's slow tail,
        /// which neither engine's latency model has (0 for most).
        delay_ns: u64,
    },
    /// Fire `tag` after `delay_ns` on the node's own monotonic clock.
    SetTimer {
        /// Its id.
        timer: TimerId,
        /// The local delay.
        delay_ns: u64,
        /// What it carries.
        tag: Timer,
    },
    /// Forget a pending timer.
    CancelTimer {
        /// Its id.
        timer: TimerId,
    },
}

/// The network's slow tail, which neither engine's latency model has: a
/// share of the messages held by the sender first, so that with the
/// engine's own latency they land past the ordinary range, about where the
/// simulator's tail (uniform from the range's end to the tail's) puts them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tail {
    /// The share, in parts per million.
    pub ppm: u32,
    /// The shortest hold: the ordinary range's width.
    pub hold_min_ns: u64,
    /// The longest hold: from the range's start to the tail's end.
    pub hold_max_ns: u64,
}

impl Tail {
    /// The tail of `network` (a scenario's), or none.
    pub fn of(network: &dst::scenario::NetworkSpec) -> Tail {
        if network.tail_ppm == 0 || network.tail_max_us <= network.latency_max_us {
            return Tail::default();
        }
        Tail {
            ppm: network.tail_ppm,
            hold_min_ns: (network.latency_max_us - network.latency_min_us) * 1_000,
            hold_max_ns: (network.tail_max_us - network.latency_min_us) * 1_000,
        }
    }
}

/// The run's lasting state, shared by every host of one engine run.
pub struct Shared {
    seed: u64,
    slots: Vec<Slot>,
    trace: Trace,
    /// With a kept trace only: each message a trace entry names, by the
    /// entry's index, ascending (as the simulator keeps them).
    messages: Option<Vec<(u64, Msg)>>,
    history: Vec<HistoryEntry<Event>>,
    stats: Stats,
    applied: Vec<ScheduledFault>,
    disturbances_ns: Vec<u64>,
    network_rng: SimRng,
    duplicate_ppm: u32,
    tail: Tail,
    degrades: Vec<Degrade>,
    max_events: u64,
    limit_hit: bool,
    native_pauses: bool,
    scratch: Vec<Command<ControlPlane>>,
}

impl Shared {
    /// The lasting state of a run with `seed` whose nodes have `clocks`.
    pub fn new(
        seed: u64,
        clocks: &[ClockConfig],
        duplicate_ppm: u32,
        tail: Tail,
        max_events: u64,
        keep_trace: bool,
    ) -> Self {
        let slots = clocks
            .iter()
            .enumerate()
            .map(|(index, &clock)| Slot {
                clock: NodeClock::new(clock),
                boot: 0,
                started: false,
                up: true,
                down: false,
                durable: plane::Durable::default(),
                rng: SimRng::derive(seed, Stream::Node(index as u32)),
                paused_until_ns: None,
                drifts: Vec::new(),
            })
            .collect();
        Self {
            seed,
            slots,
            trace: Trace::new(keep_trace),
            messages: keep_trace.then(Vec::new),
            history: Vec::new(),
            stats: Stats::default(),
            applied: Vec::new(),
            disturbances_ns: Vec::new(),
            network_rng: SimRng::derive(seed, Stream::Network),
            duplicate_ppm,
            tail,
            degrades: Vec::new(),
            max_events,
            limit_hit: false,
            native_pauses: false,
            scratch: Vec::new(),
        }
    }

    /// The engine pauses nodes itself (madsim's `pause`/`resume`): a pause
    /// fault is still counted, traced and listed here, but no longer
    /// holds the node's task in [`Shared::paused_until`].
    pub fn pause_natively(&mut self) {
        self.native_pauses = true;
    }

    /// The engine's transport holds `message` on the clogged link `from ->
    /// to` at `now_ns` (it is released when the clog heals).
    pub fn hold(&mut self, now_ns: u64, from: NodeId, to: NodeId, message: &Msg) {
        self.stats.messages_held += 1;
        self.trace_message(now_ns, TraceKind::Hold, from, to, message);
    }

    /// Traces an entry about `message` and, when the trace is kept, keeps
    /// a copy of the message by its index.
    fn trace_message(
        &mut self,
        now_ns: u64,
        kind: TraceKind,
        node: NodeId,
        peer: NodeId,
        message: &Msg,
    ) -> u64 {
        let index = self.trace(now_ns, kind, node, peer, stable_hash(message));
        if let Some(kept) = &mut self.messages {
            kept.push((index, message.clone()));
        }
        index
    }

    fn trace(
        &mut self,
        now_ns: u64,
        kind: TraceKind,
        node: NodeId,
        peer: NodeId,
        digest: u64,
    ) -> u64 {
        self.trace.push(TraceEntry {
            time_ns: now_ns,
            kind,
            node,
            peer,
            digest,
        })
    }

    /// Whether the run hit its event limit (the engine stops it).
    pub fn limit_hit(&self) -> bool {
        self.limit_hit
    }

    /// When `node` resumes if it is paused at `now_ns`.
    pub fn paused_until(&self, node: NodeId, now_ns: u64) -> Option<u64> {
        self.slots[node.index()]
            .paused_until_ns
            .filter(|&until| until > now_ns)
    }

    /// Local nanoseconds elapsed on `node`'s clock at `now_ns`.
    pub fn local_elapsed_ns(&self, node: NodeId, now_ns: u64) -> u64 {
        self.slots[node.index()].clock.local_elapsed_ns(now_ns)
    }

    /// True nanoseconds for `local_ns` to pass on `node`'s clock now.
    pub fn true_duration_ns(&self, node: NodeId, local_ns: u64) -> u64 {
        self.slots[node.index()].clock.true_duration_ns(local_ns)
    }

    /// A host starts `node` (its first boot, or a restart): the boot
    /// counter is bumped on every start after the first, before `on_start`.
    pub fn boot(&mut self, node: NodeId, now_ns: u64) {
        let slot = &mut self.slots[node.index()];
        let restart = slot.started;
        if restart {
            slot.boot += 1;
        }
        slot.started = true;
        slot.up = true;
        let kind = if restart {
            TraceKind::Restart
        } else {
            TraceKind::Start
        };
        self.trace(now_ns, kind, node, node, 0);
    }

    /// Runs one handler of `node` at true time `now_ns` and returns what it
    /// asked of the network and its timers. Durable state changes in place
    /// here, outside the host, before any send leaves (write-ahead).
    pub fn handle(
        &mut self,
        node: NodeId,
        now_ns: u64,
        target: &mut dyn Node<ControlPlane>,
        input: Input,
        next_timer: &mut u64,
    ) -> Vec<Effect> {
        self.stats.events += 1;
        if self.stats.events > self.max_events {
            self.limit_hit = true;
            return Vec::new();
        }
        match &input {
            Input::Start => {}
            Input::Message(from, message) => {
                self.stats.messages_delivered += 1;
                self.trace_message(now_ns, TraceKind::Deliver, node, *from, message);
            }
            Input::Timer(_, tag) => {
                self.stats.timers_fired += 1;
                self.trace(now_ns, TraceKind::Timer, node, node, stable_hash(tag));
            }
        }
        let mut commands = std::mem::take(&mut self.scratch);
        let slot = &mut self.slots[node.index()];
        let (_, mono_ns, wall_ns) = slot.clock.readings_ns(now_ns);
        let inputs = Inputs {
            id: node,
            boot: slot.boot,
            mono_ns,
            wall_ns,
        };
        let mut ctx = Context::new(
            inputs,
            &mut slot.rng,
            &mut slot.durable,
            next_timer,
            &mut commands,
        )
        .without_measures();
        match input {
            Input::Start => target.on_start(&mut ctx),
            Input::Message(from, message) => target.on_message(&mut ctx, from, message),
            Input::Timer(timer, tag) => target.on_timer(&mut ctx, timer, tag),
        }
        let mut effects = Vec::with_capacity(commands.len());
        for command in commands.drain(..) {
            match command {
                Command::Send { to, message } => {
                    self.stats.messages_sent += 1;
                    let copies = 1 + u32::from(self.duplicates(node, to));
                    if copies > 1 {
                        self.stats.messages_duplicated += 1;
                        self.trace_message(now_ns, TraceKind::Duplicate, node, to, &message);
                    }
                    let tail = self.tail;
                    let delay_ns = if tail.ppm > 0 && self.network_rng.chance_ppm(tail.ppm) {
                        self.disturbed(now_ns);
                        self.network_rng
                            .range_inclusive(tail.hold_min_ns, tail.hold_max_ns)
                    } else {
                        0
                    };
                    effects.push(Effect::Send {
                        to,
                        message,
                        copies,
                        delay_ns,
                    });
                }
                Command::SetTimer {
                    timer,
                    delay_ns,
                    tag,
                } => effects.push(Effect::SetTimer {
                    timer,
                    delay_ns,
                    tag,
                }),
                Command::CancelTimer { timer } => effects.push(Effect::CancelTimer { timer }),
                Command::Record { event } => {
                    let event = *event;
                    self.stats.events_recorded += 1;
                    let trace_index =
                        self.trace(now_ns, TraceKind::Record, node, node, stable_hash(&event));
                    self.history.push(HistoryEntry {
                        time_ns: now_ns,
                        node,
                        trace_index,
                        event,
                    });
                }
                // Hints for a testing host that aims faults at them; these
                // engines inject only the run's fault list.
                Command::Buggify { .. } | Command::Measure { .. } => {}
            }
        }
        self.scratch = commands;
        effects
    }

    /// Whether the network sends a second copy of a message on `from ->
    /// to`: the scenario's duplicate rate, or a degrade fault's on that link.
    fn duplicates(&mut self, from: NodeId, to: NodeId) -> bool {
        let degraded = self
            .degrades
            .iter()
            .filter(|d| d.nodes.is_empty() || d.nodes.contains(&from) || d.nodes.contains(&to))
            .map(|d| d.duplicate_ppm)
            .max()
            .unwrap_or(0);
        let ppm = self.duplicate_ppm.max(degraded);
        ppm > 0 && self.network_rng.chance_ppm(ppm)
    }

    /// The liveness phase's calm network: no more duplicates or slow tail.
    pub fn calm(&mut self) {
        self.duplicate_ppm = 0;
        self.tail = Tail::default();
    }

    /// Marks the run disturbed at `now_ns` (a message the engine may have
    /// lost or slowed), so quiet-window checks skip that moment.
    pub fn disturbed(&mut self, now_ns: u64) {
        if self.disturbances_ns.last() != Some(&now_ns) {
            self.disturbances_ns.push(now_ns);
        }
    }

    /// Whether `node` is down: taken down by a crash or reboot and not yet
    /// restarted (the engine's own record of it would be a second copy).
    pub fn is_down(&self, node: NodeId) -> bool {
        self.slots[node.index()].down
    }

    /// Fault `index` of `faults` starts at `now_ns`: counted, traced and
    /// listed as applied; the parts that live in this layer (pauses, clock
    /// jumps and drift, crashes' bookkeeping, degrade duplicates) act here.
    /// True if the engine must now take the node down: a crash or reboot
    /// of a node that is not down already (as in the simulator, a node
    /// down stays down).
    #[must_use]
    pub fn start_fault(&mut self, now_ns: u64, index: usize, scheduled: &ScheduledFault) -> bool {
        *self
            .stats
            .faults_by_kind
            .entry(scheduled.fault.kind_name().to_string())
            .or_default() += 1;
        let anchor = scheduled.anchor();
        self.trace(
            now_ns,
            TraceKind::Fault,
            anchor,
            anchor,
            stable_hash(scheduled),
        );
        let applied = ScheduledFault {
            at_ns: now_ns,
            fault: scheduled.fault.clone(),
        };
        self.applied.push(applied);
        let mut take_down = false;
        match &scheduled.fault {
            Fault::Crash { node, .. } | Fault::Reboot { node, .. } => {
                let slot = &mut self.slots[node.index()];
                take_down = !slot.down;
                slot.down = true;
                slot.up = false;
                slot.paused_until_ns = None;
            }
            Fault::Pause { node, duration_ns } => {
                let slot = &mut self.slots[node.index()];
                if slot.up && !self.native_pauses {
                    let until = now_ns.saturating_add(*duration_ns);
                    slot.paused_until_ns = Some(slot.paused_until_ns.unwrap_or(0).max(until));
                }
            }
            Fault::ClockJump { node, delta_ns } => {
                self.slots[node.index()].clock.jump_wall(*delta_ns);
            }
            Fault::ClockDrift {
                node, drift_ppm, ..
            } => {
                self.slots[node.index()].drifts.push((index, *drift_ppm));
                self.set_rate(*node, now_ns);
            }
            Fault::Degrade {
                nodes,
                duplicate_ppm,
                ..
            } => self.degrades.push(Degrade {
                index,
                nodes: nodes.clone(),
                duplicate_ppm: *duplicate_ppm,
            }),
            Fault::Partition { .. } | Fault::Clog { .. } => {}
        }
        take_down
    }

    /// Fault `index` heals at `now_ns`. True if the engine must now restart
    /// the node: a crash or reboot healing while the node is down (one a
    /// later crash already restarted is not restarted again).
    #[must_use]
    pub fn heal_fault(&mut self, now_ns: u64, index: usize, scheduled: &ScheduledFault) -> bool {
        let anchor = scheduled.anchor();
        self.trace(
            now_ns,
            TraceKind::Heal,
            anchor,
            anchor,
            stable_hash(scheduled),
        );
        let mut restart = false;
        match &scheduled.fault {
            Fault::Crash { node, .. } => {
                let slot = &mut self.slots[node.index()];
                restart = std::mem::take(&mut slot.down);
            }
            Fault::Reboot { node, .. } if self.slots[node.index()].down => {
                // A new boot's monotonic clock starts anywhere: fixed by the
                // seed, the node and the boot, drawn from no stream. Only a
                // node that is down reboots: restarting a running node's
                // clock would move it back within a boot.
                let slot = &mut self.slots[node.index()];
                slot.down = false;
                restart = true;
                let origin_ns = node::mix64(
                    self.seed
                        ^ (u64::from(node.0) << 32)
                        ^ u64::from(slot.boot + 1).rotate_left(17),
                ) % (1_000 * node::SECOND_NS);
                slot.clock.restart_mono(now_ns, origin_ns);
            }
            Fault::ClockDrift { node, .. } => {
                self.slots[node.index()]
                    .drifts
                    .retain(|&(other, _)| other != index);
                self.set_rate(*node, now_ns);
            }
            Fault::Degrade { .. } => self.degrades.retain(|d| d.index != index),
            _ => {}
        }
        restart
    }

    /// The latest drift fault in force on `node` sets its rate, or its
    /// configured drift when none is.
    fn set_rate(&mut self, node: NodeId, now_ns: u64) {
        let slot = &mut self.slots[node.index()];
        let rate = slot
            .drifts
            .last()
            .map_or(slot.clock.configured_drift_ppm(), |&(_, ppm)| ppm);
        slot.clock.set_drift(now_ns, rate);
    }

    /// The run's pieces, for the checkers and the report.
    pub fn finish(self) -> Finished {
        Finished {
            trace: self.trace,
            messages: self.messages.unwrap_or_default(),
            history: self.history,
            stats: self.stats,
            applied: self.applied,
            disturbances_ns: self.disturbances_ns,
        }
    }
}

/// A finished run's pieces.
pub struct Finished {
    /// The trace.
    pub trace: Trace,
    /// With a kept trace: each message a trace entry names, by the entry's
    /// index, ascending; empty otherwise.
    pub messages: Vec<(u64, Msg)>,
    /// The history, in execution order.
    pub history: Vec<HistoryEntry<Event>>,
    /// The counters.
    pub stats: Stats,
    /// The faults applied, at the times the engine applied them.
    pub applied: Vec<ScheduledFault>,
    /// Moments the engine's network may have lost or slowed a message.
    pub disturbances_ns: Vec<u64>,
}

/// When each fault starts and heals, in time order (starts before heals at
/// one moment, each in list order): the timeline an engine plays.
pub fn timeline(faults: &[ScheduledFault]) -> Vec<(u64, bool, usize)> {
    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (index, scheduled) in faults.iter().enumerate() {
        events.push((scheduled.at_ns, false, index));
        let heals = !matches!(scheduled.fault, Fault::ClockJump { .. });
        if let Some(after) = scheduled.fault.heals_after_ns().filter(|_| heals) {
            events.push((scheduled.at_ns.saturating_add(after), true, index));
        }
    }
    // Heals sort after starts at one moment (false < true), then by index.
    events.sort_by_key(|&(at, heal, index)| (at, heal, index));
    events
}

/// Directed links cut by partitions and held by clogs, counted so that
/// overlapping faults heal one at a time.
#[derive(Default)]
pub struct Links {
    cut: BTreeMap<(NodeId, NodeId), u32>,
    held: BTreeMap<(NodeId, NodeId), u32>,
}

impl Links {
    /// Fault `fault` starts (`on`) or heals; returns the directed links
    /// whose state changed.
    pub fn apply(&mut self, fault: &Fault, on: bool) -> Vec<(NodeId, NodeId)> {
        let (map, pairs) = match fault {
            Fault::Partition {
                side_a,
                side_b,
                one_way,
                ..
            } => {
                let mut pairs = Vec::new();
                for &a in side_a {
                    for &b in side_b {
                        if a != b {
                            pairs.push((a, b));
                            if !one_way {
                                pairs.push((b, a));
                            }
                        }
                    }
                }
                (&mut self.cut, pairs)
            }
            Fault::Clog { from, to, .. } => (&mut self.held, vec![(*from, *to)]),
            _ => return Vec::new(),
        };
        let mut changed = Vec::new();
        for pair in pairs {
            let count = map.entry(pair).or_default();
            let before = *count > 0;
            if on {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
            }
            if before != (*count > 0) {
                changed.push(pair);
            }
        }
        changed
    }

    /// Whether `from -> to` is cut.
    pub fn cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.get(&(from, to)).is_some_and(|&n| n > 0)
    }

    /// Whether `from -> to` is held.
    pub fn held(&self, from: NodeId, to: NodeId) -> bool {
        self.held.get(&(from, to)).is_some_and(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::Context;

    /// A node that notes its monotonic clock at every start.
    #[derive(Default)]
    struct Clocked(Vec<u64>);

    impl Node<ControlPlane> for Clocked {
        fn on_start(&mut self, ctx: &mut Context<'_, ControlPlane>) {
            self.0.push(ctx.mono_ns());
        }
        fn on_message(&mut self, _: &mut Context<'_, ControlPlane>, _: NodeId, _: Msg) {}
        fn on_timer(&mut self, _: &mut Context<'_, ControlPlane>, _: TimerId, _: Timer) {}
    }

    fn at(at_ns: u64, fault: Fault) -> ScheduledFault {
        ScheduledFault { at_ns, fault }
    }

    #[test]
    fn a_reboot_healing_on_a_running_node_leaves_it_and_its_clock_alone() {
        let node = NodeId(0);
        let mut shared = Shared::new(
            7,
            &[ClockConfig::default()],
            0,
            Tail::default(),
            1_000,
            false,
        );
        let crash = at(
            10,
            Fault::Crash {
                node,
                restart_after_ns: Some(20),
            },
        );
        let reboot = at(
            15,
            Fault::Reboot {
                node,
                restart_after_ns: 25,
            },
        );
        let mut clocked = Clocked::default();
        let mut next_timer = 0;
        assert!(shared.start_fault(10, 0, &crash), "the crash takes it down");
        assert!(!shared.start_fault(15, 1, &reboot), "already down");
        assert!(
            shared.heal_fault(30, 0, &crash),
            "the crash's heal restarts it"
        );
        shared.boot(node, 30);
        shared.handle(node, 30, &mut clocked, Input::Start, &mut next_timer);
        assert!(!shared.heal_fault(40, 1, &reboot), "up: no second restart");
        shared.handle(node, 50, &mut clocked, Input::Start, &mut next_timer);
        // The same boot's clock ran on by the 20 ns that passed.
        assert_eq!(clocked.0[1] - clocked.0[0], 20, "{:?}", clocked.0);
    }
}
