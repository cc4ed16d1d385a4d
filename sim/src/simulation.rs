//! The event loop: one queue ordered by (time, sequence), one thread.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::buggify::{BuggifyConfig, BuggifyPointStats, Firing};
use crate::clock::{ClockConfig, NodeClock};
use crate::fault::{Fault, FaultKnobs, FaultTargets, ScheduledFault};
use crate::net::{LinkMatrix, NetworkConfig};
use crate::rng::{SimRng, Stream};
use crate::timers::{NOT_QUEUED, PendingTimer, PendingTimers};
use crate::trace::{DropReason, Trace, TraceEntry, TraceKind};
use node::{Command, Context, Inputs, Node, NodeId, Protocol, Random, TimerId, mix64, stable_hash};

/// Bounds on a run. Hitting one ends the run with that [`StopReason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most events processed in one run.
    pub max_events: u64,
    /// Most events waiting in the queue at once.
    pub max_queue_len: usize,
    /// Latest simulated time an event may happen at.
    pub max_time_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_events: 50_000_000,
            max_queue_len: 1_000_000,
            max_time_ns: 3_600 * crate::SECOND_NS,
        }
    }
}

/// Everything that configures a run apart from its nodes and faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SimConfig {
    /// The root seed of every random stream.
    pub seed: u64,
    /// Latency, drops and duplicates.
    pub network: NetworkConfig,
    /// Bounds on the run.
    pub limits: Limits,
    /// Keep every trace entry (needed to locate where two runs part);
    /// without it only the running hash is kept.
    pub keep_trace: bool,
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Nothing was left to do.
    Quiescent,
    /// The requested deadline was reached.
    Deadline,
    /// The requested number of events was processed.
    StepBudget,
    /// [`Limits::max_events`] was reached.
    EventLimit,
    /// [`Limits::max_queue_len`] was reached.
    QueueLimit,
    /// [`Limits::max_time_ns`] was reached.
    TimeLimit,
}

impl StopReason {
    /// True for the reasons that mean a limit was hit, not a normal end.
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            StopReason::EventLimit | StopReason::QueueLimit | StopReason::TimeLimit
        )
    }
}

/// A recorded history event with where and when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryEntry<E> {
    /// True simulated time (checkers may use it; nodes never see it).
    pub time_ns: u64,
    /// The node that recorded it.
    pub node: NodeId,
    /// Index of its entry in the trace.
    pub trace_index: u64,
    /// The event.
    pub event: E,
}

/// Counters over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    /// Events taken off the queue and handled (dead timers are not events:
    /// see `timers_cancelled`).
    pub events: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Messages handled by their receiver.
    pub messages_delivered: u64,
    /// Messages lost to random drops.
    pub messages_dropped_random: u64,
    /// Messages lost to partitions.
    pub messages_dropped_partition: u64,
    /// Messages lost because the receiver was down or crashed meanwhile.
    pub messages_dropped_node_down: u64,
    /// Extra copies made by the network.
    pub messages_duplicated: u64,
    /// Messages held by a clog (released later).
    pub messages_held: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Timers that will never fire: cancelled, or set in a life of their
    /// node that a crash ended. No events: their keys are taken off the
    /// queue unrun.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timers_cancelled: u64,
    /// Faults applied, by kind.
    pub faults_by_kind: BTreeMap<String, u64>,
    /// History events recorded.
    pub events_recorded: u64,
    /// Messages dropped by a fired BUGGIFY point (0 without buggify).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_dropped_buggify: u64,
    /// Messages lost on a degraded link (0 without a degrade fault).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub messages_dropped_degrade: u64,
    /// Every BUGGIFY point reached, by name: whether the seed turned it
    /// on, how often it was hit and how often it fired. Empty without
    /// buggify.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub buggify: BTreeMap<String, BuggifyPointStats>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

pub(crate) enum Event<P: Protocol> {
    Start {
        node: NodeId,
    },
    Deliver {
        from: NodeId,
        to: NodeId,
        epoch: u32,
        message: P::Message,
    },
    Timer {
        node: NodeId,
        epoch: u32,
        timer: TimerId,
        tag: P::Timer,
    },
    Fault {
        index: usize,
    },
    Heal {
        index: usize,
    },
}

pub(crate) struct Queued<P: Protocol> {
    time_ns: u64,
    seq: u64,
    event: Event<P>,
}

/// Where a queued event waits: its place in the order, (time, rank),
/// and the slot of the event itself in [`EventQueue`]'s slab. The heap
/// sifts these 24 bytes rather than whole messages.
///
/// Every key is unique, so the order in which events pop is fixed by the
/// keys alone, never by the heap's shape: which is what lets the queue
/// take cancelled timers out of the middle of the heap (see
/// [`EventQueue::purge`]) without moving any other event.
#[derive(Clone, Copy)]
struct QueueKey {
    time_ns: u64,
    /// An event queued first at its time (a fault, see
    /// [`Core::push_first`]): the count of such events queued before it,
    /// below [`ORDINARY`]. Any other event: [`ORDINARY`] with its sequence
    /// number, so it comes after every first one of its time, in the order
    /// queued.
    rank: u64,
    slot: u32,
}

/// The rank bit of an event queued in the ordinary way.
const ORDINARY: u64 = 1 << 63;

/// Fewest cancelled timers worth a sweep of the queue.
const PURGE_MIN_DEAD: usize = 32;

impl QueueKey {
    /// (time, rank) as one number: compared in one step.
    #[inline]
    fn order(&self) -> u128 {
        (u128::from(self.time_ns) << 64) | u128::from(self.rank)
    }

    /// The sequence number of an ordinary event; 0 for one queued first.
    #[inline]
    fn seq(&self) -> u64 {
        if self.rank & ORDINARY == 0 {
            0
        } else {
            self.rank & !ORDINARY
        }
    }
}

impl PartialEq for QueueKey {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}
impl Eq for QueueKey {}
impl PartialOrd for QueueKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for QueueKey {
    /// Reversed, so the max-heap pops the earliest (time, rank) first.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

/// The event queue: a binary heap of [`QueueKey`]s over a slab of events.
/// Which slot an event takes is never observed.
///
/// A cancelled timer is killed where it waits: its slot is emptied, and
/// its key stays in the heap, dead, until it reaches the top (it is taken
/// off before anything looks at the queue's next event), or sooner, when
/// the dead outnumber the live and [`EventQueue::purge`] sweeps them all
/// out. Either way it is no event: it is not counted, it moves no clock,
/// and the queue's length is that of its live events.
pub(crate) struct EventQueue<P: Protocol> {
    heap: BinaryHeap<QueueKey>,
    slab: Vec<Option<Event<P>>>,
    free: Vec<u32>,
    /// How many of the heap's keys have an empty slot: killed events.
    dead: usize,
}

impl<P: Protocol> EventQueue<P> {
    fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            dead: 0,
        }
    }

    /// Queues `event`, returning its slot.
    #[inline]
    fn push(&mut self, time_ns: u64, rank: u64, event: Event<P>) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                let slot = u32::try_from(self.slab.len()).expect("queue limit fits u32");
                self.slab.push(Some(event));
                slot
            }
        };
        self.heap.push(QueueKey {
            time_ns,
            rank,
            slot,
        });
        slot
    }

    #[inline]
    fn pop(&mut self) -> Option<Queued<P>> {
        let key = self.heap.pop()?;
        let event = self.slab[key.slot as usize]
            .take()
            .expect("a queued key's slot holds its event");
        self.free.push(key.slot);
        Some(Queued {
            time_ns: key.time_ns,
            seq: key.seq(),
            event,
        })
    }

    /// Kills the event in `slot`: it will never pop.
    #[inline]
    fn kill(&mut self, slot: u32) {
        let event = self.slab[slot as usize].take();
        debug_assert!(event.is_some(), "a slot killed twice");
        self.dead += 1;
    }

    /// When the first live event is due, taking off the killed ones ahead
    /// of it.
    #[inline]
    fn first_live_ns(&mut self) -> Option<u64> {
        loop {
            let key = *self.heap.peek()?;
            if self.dead == 0 || self.slab[key.slot as usize].is_some() {
                return Some(key.time_ns);
            }
            self.heap.pop();
            self.free.push(key.slot);
            self.dead -= 1;
        }
    }

    /// Takes every killed event's key off the heap and frees its slot: the
    /// heap is rebuilt from the rest, and since keys are unique, the live
    /// events pop in the order they would have popped in anyway.
    fn purge(&mut self) {
        let before = self.heap.len();
        let slab = &self.slab;
        let free = &mut self.free;
        self.heap.retain(|key| {
            let live = slab[key.slot as usize].is_some();
            if !live {
                free.push(key.slot);
            }
            live
        });
        debug_assert_eq!(
            before - self.heap.len(),
            self.dead,
            "every killed key counted"
        );
        self.dead = 0;
    }

    /// Live events queued (cancelled timers not counted).
    #[inline]
    fn len(&self) -> usize {
        self.heap.len() - self.dead
    }
}

/// A BUGGIFY point as a run knows it: what its decisions need of its
/// name, worked out on its first hit, its hits so far by node index, and
/// its counters for [`Stats::buggify`] (kept here, so a hit finds them
/// without a lookup by name).
struct BuggifyPoint {
    name: &'static str,
    name_hash: u64,
    active: bool,
    hits: Vec<u64>,
    stats: BuggifyPointStats,
}

pub(crate) struct NodeSlot<P: Protocol> {
    pub(crate) name: String,
    pub(crate) clock: NodeClock,
    pub(crate) rng: SimRng,
    /// What survives a crash: the node's durable state, written in place
    /// by its handlers (the simulator's disk is the memory itself, and a
    /// handler runs whole before any crash, so write-ahead holds).
    pub(crate) durable: P::Durable,
    /// Durable too: how many times the node started before.
    pub(crate) boot: u32,
    /// Volatile per-node timer counter; never reset, so a timer of an
    /// earlier life can never share an id with a live one.
    pub(crate) next_timer: u64,
    /// Bumped on crash and on restart: events stamped with an older epoch
    /// were meant for a previous life and are lost.
    pub(crate) epoch: u32,
    pub(crate) up: bool,
    pub(crate) paused_until_ns: Option<u64>,
}

/// Everything a handler's context may touch: all but the node objects.
pub(crate) struct Core<P: Protocol> {
    pub(crate) now_ns: u64,
    seq: u64,
    /// Events queued first at their time so far (see [`Core::push_first`]).
    firsts: u64,
    queue: EventQueue<P>,
    pub(crate) nodes: Vec<NodeSlot<P>>,
    deferred: Vec<Vec<Queued<P>>>,
    network_rng: SimRng,
    config: SimConfig,
    /// Timers set and not yet fired or cancelled, each with the node's
    /// local time elapsed at which it is due: what decides whether it may
    /// fire once a drift fault changed the clock's rate after it was set.
    /// (Kept here rather than in the queued event, which every event of
    /// the queue would then carry.)
    pub(crate) pending_timers: PendingTimers,
    /// The command buffer handlers write into, reused between calls.
    commands: Vec<Command<P>>,
    /// Handlers that changed durable state (persisted before their sends).
    durable_writes: u64,
    trace: Trace,
    /// With a kept trace only: each message a trace entry names (delivered,
    /// dropped, duplicated or held), by that entry's index, ascending, so
    /// a reader can say what was delivered and not only that something
    /// was. `None` otherwise: a sweep pays one branch per message for it.
    messages: Option<Vec<(u64, P::Message)>>,
    history: Vec<HistoryEntry<P::Event>>,
    stats: Stats,
    limit_hit: Option<StopReason>,
    partitions: LinkMatrix,
    clogs: LinkMatrix,
    held: BTreeMap<(NodeId, NodeId), Vec<Held<P>>>,
    /// Events waiting outside the queue (held by clogs, deferred by
    /// pauses): they count against the queue limit too.
    parked: usize,
    faults: Vec<ScheduledFault>,
    applied: Vec<ScheduledFault>,
    buggify: BuggifyConfig,
    /// Every BUGGIFY point reached so far, in the order first reached,
    /// with its hits per node: the hit number is part of each decision, so
    /// decisions need no random stream.
    buggify_points: Vec<BuggifyPoint>,
    /// Crashes and pauses fired so far (injected or, in a replay, not).
    buggify_faults: u32,
    /// When a message was lost or slowed past the network's range, or a
    /// BUGGIFY point fired: what a checker must not mistake for a quiet
    /// moment. Not traced: it changes no decision.
    disturbed_ns: Vec<u64>,
    /// Degrade faults in force, in the order they started. Empty in almost
    /// every run: the send path looks no further than that.
    degrades: Vec<ActiveDegrade>,
    /// The degraded links' own draws, made only while a degrade is in
    /// force, so a run without one draws exactly what it drew before
    /// degrades existed, and adding or removing a degrade shifts no draw of
    /// the network's stream.
    degrade_rng: SimRng,
    /// Clock drift faults in force, in the order they started.
    drifts: Vec<ActiveDrift>,
}

/// A degrade fault in force: what it does to each message on its links.
struct ActiveDegrade {
    /// Its index in the fault list, to find it again when it heals.
    index: usize,
    /// Per node, whether its links degrade; empty: every node's.
    touches: Vec<bool>,
    drop_ppm: u32,
    duplicate_ppm: u32,
    delay_ns: u64,
}

impl ActiveDegrade {
    #[inline]
    fn covers(&self, from: NodeId, to: NodeId) -> bool {
        self.touches.is_empty() || self.touches[from.index()] || self.touches[to.index()]
    }
}

/// What the degrades in force do to one message.
#[derive(Debug, Default)]
struct Degraded {
    dropped: bool,
    delay_ns: u64,
    /// The latency of each extra copy the degrades make, delay included.
    copy_latencies_ns: Vec<u64>,
}

/// A clock drift fault in force.
///
/// Overlapping drifts on one node: the latest to start sets the rate until
/// it heals; then the latest of those still in force does, and once none
/// is, the configured rate. A drift fault names the rate a clock runs at,
/// as the configured drift does, not an amount to add to it; a sum could
/// also leave the bounded range of rates the clock allows.
struct ActiveDrift {
    index: usize,
    node: NodeId,
    drift_ppm: i32,
}

/// What a fired BUGGIFY point does to the rest of the handler's sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendEffect {
    None,
    Delay(u64),
    Drop,
}

/// Simulated time for log lines: seconds with nanosecond digits.
struct SimTime(u64);

impl std::fmt::Display for SimTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>4}.{:09}s",
            self.0 / crate::SECOND_NS,
            self.0 % crate::SECOND_NS
        )
    }
}

/// A message held by a clog: the receiver's epoch at send time, and the message.
type Held<P> = (u32, <P as Protocol>::Message);

type Factory<P> = Box<dyn FnMut(NodeId) -> Box<dyn Node<P>>>;

/// A simulation of nodes exchanging `P::Message`s.
pub struct Simulation<P: Protocol> {
    core: Core<P>,
    nodes: Vec<Option<Box<dyn Node<P>>>>,
    factories: Vec<Factory<P>>,
    started: bool,
}

impl<P: Protocol> Core<P> {
    /// # Panics
    /// If the network configuration is invalid (see
    /// [`NetworkConfig::validate`]); validate user input before this.
    pub(crate) fn new(config: SimConfig) -> Self {
        if let Err(problem) = config.network.validate() {
            panic!("invalid network configuration: {problem}");
        }
        let keep_trace = config.keep_trace;
        let config_seed = config.seed;
        Core {
            now_ns: 0,
            seq: 0,
            firsts: 0,
            queue: EventQueue::new(),
            nodes: Vec::new(),
            deferred: Vec::new(),
            network_rng: SimRng::derive(config.seed, Stream::Network),
            config,
            pending_timers: PendingTimers::default(),
            commands: Vec::new(),
            durable_writes: 0,
            trace: Trace::new(keep_trace),
            messages: keep_trace.then(Vec::new),
            history: Vec::new(),
            stats: Stats::default(),
            limit_hit: None,
            partitions: LinkMatrix::default(),
            clogs: LinkMatrix::default(),
            held: BTreeMap::new(),
            parked: 0,
            faults: Vec::new(),
            applied: Vec::new(),
            buggify: BuggifyConfig::default(),
            buggify_points: Vec::new(),
            buggify_faults: 0,
            disturbed_ns: Vec::new(),
            degrades: Vec::new(),
            degrade_rng: SimRng::derive(config_seed, Stream::Degrade),
            drifts: Vec::new(),
        }
    }

    pub(crate) fn add_slot(&mut self, name: String, clock: ClockConfig, id: NodeId) {
        debug_assert_eq!(id.index(), self.nodes.len());
        self.nodes.push(NodeSlot {
            name,
            clock: NodeClock::new(clock),
            rng: SimRng::derive(self.config.seed, Stream::Node(id.0)),
            durable: P::Durable::default(),
            boot: 0,
            next_timer: 0,
            epoch: 0,
            up: true,
            paused_until_ns: None,
        });
        self.deferred.push(Vec::new());
        self.pending_timers.add_node(id);
    }

    pub(crate) fn init_links(&mut self) {
        self.partitions = LinkMatrix::new(self.nodes.len());
        self.clogs = LinkMatrix::new(self.nodes.len());
    }

    /// Whether the queue, with what is parked outside it, is full; if so
    /// the run ends with [`StopReason::QueueLimit`].
    #[inline]
    fn queue_full(&mut self) -> bool {
        let full = self.queue.len() + self.parked >= self.config.limits.max_queue_len;
        if full {
            self.limit_hit = Some(StopReason::QueueLimit);
        }
        full
    }

    /// Queues `event` ahead of every other event at `time_ns`, as a fault
    /// given up front would be (faults are queued at the start, before
    /// anything else at their time): so a fault injected during the run and
    /// the same fault replayed from a list apply at the same point. Events
    /// queued first at one time pop in the order they were queued.
    fn push_first(&mut self, time_ns: u64, event: Event<P>) {
        if self.queue_full() {
            return;
        }
        let rank = self.firsts;
        self.firsts += 1;
        debug_assert!(rank < ORDINARY);
        self.queue.push(time_ns, rank, event);
    }

    /// Queues `event` after every other event at `time_ns`, returning its
    /// slot in the queue (`None` if the queue is full).
    #[inline]
    fn push(&mut self, time_ns: u64, event: Event<P>) -> Option<u32> {
        if self.queue_full() {
            return None;
        }
        self.seq += 1;
        debug_assert!(self.seq < ORDINARY);
        Some(self.queue.push(time_ns, ORDINARY | self.seq, event))
    }

    /// When the next live event is due, taking off the cancelled timers
    /// ahead of it: what a run looks at before each step, so a cancelled
    /// timer never counts as an event, never moves the clock and never
    /// keeps a run from being quiescent.
    #[inline]
    fn next_due_ns(&mut self) -> Option<u64> {
        self.queue.first_live_ns()
    }

    /// Cancels a pending timer: its queued event is killed.
    fn cancel_timer(&mut self, node: NodeId, timer: TimerId) {
        if let Some(pending) = self.pending_timers.remove(node, timer) {
            self.kill_timer(pending);
            self.purge_if_mostly_dead();
        }
    }

    /// Forgets the timers of a life a crash just ended, killing their
    /// queued events. (Those a pause held outside the queue went with the
    /// rest of the node's deferred events.)
    fn forget_timers(&mut self, node: NodeId) {
        for pending in self.pending_timers.take(node).values() {
            self.kill_timer(*pending);
        }
        self.purge_if_mostly_dead();
    }

    #[inline]
    fn kill_timer(&mut self, pending: PendingTimer) {
        self.stats.timers_cancelled += 1;
        if pending.slot != NOT_QUEUED {
            self.queue.kill(pending.slot);
        }
    }

    /// Sweeps the cancelled timers out of the queue once they outnumber
    /// the live events (and are more than a few): each sweep costs about
    /// one step per key, paid for by the pops and sifts the dead keys no
    /// longer cost.
    #[inline]
    fn purge_if_mostly_dead(&mut self) {
        if self.queue.dead >= PURGE_MIN_DEAD && self.queue.dead > self.queue.len() {
            self.queue.purge();
        }
    }

    #[inline]
    fn trace(&mut self, kind: TraceKind, node: NodeId, peer: NodeId, digest: u64) -> u64 {
        self.trace.push(TraceEntry {
            time_ns: self.now_ns,
            kind,
            node,
            peer,
            digest,
        })
    }

    /// Traces an entry about `message` (hashed as every payload is) and,
    /// when the trace is kept, keeps a copy of the message by its index.
    #[inline]
    fn trace_message(
        &mut self,
        kind: TraceKind,
        node: NodeId,
        peer: NodeId,
        message: &P::Message,
    ) -> u64 {
        let index = self.trace(kind, node, peer, stable_hash(message));
        if let Some(kept) = &mut self.messages {
            kept.push((index, message.clone()));
        }
        index
    }

    /// Hands a message to the network, with what a fired BUGGIFY point
    /// does to it (`SendEffect::None` without one). The network's draws are
    /// the same either way.
    #[inline]
    pub(crate) fn send_with(
        &mut self,
        from: NodeId,
        to: NodeId,
        message: P::Message,
        effect: SendEffect,
    ) {
        self.stats.messages_sent += 1;
        // Always draw the same values, whatever the probabilities and
        // partitions, so the network stream stays aligned when one fault
        // kind is switched off.
        let network = &self.config.network;
        let dropped = self.network_rng.chance_ppm(network.drop_ppm);
        let duplicated = self.network_rng.chance_ppm(network.duplicate_ppm);
        let mut latency_ns = network.draw_latency_ns(&mut self.network_rng);
        let mut copy_latency_ns = network.draw_latency_ns(&mut self.network_rng);
        // Before any verdict too, for the same reason: which messages draw
        // from the degrade stream depends only on the degrades in force.
        let degraded = if self.degrades.is_empty() {
            None
        } else {
            Some(self.draw_degrades(from, to))
        };
        if self.partitions.is_set(from.index(), to.index()) {
            self.drop_message(from, to, &message, DropReason::Partition);
            return;
        }
        match effect {
            SendEffect::None => {}
            SendEffect::Drop => {
                self.drop_message(from, to, &message, DropReason::Buggify);
                return;
            }
            SendEffect::Delay(extra_ns) => {
                latency_ns = latency_ns.saturating_add(extra_ns);
                copy_latency_ns = copy_latency_ns.saturating_add(extra_ns);
            }
        }
        if dropped {
            self.drop_message(from, to, &message, DropReason::Random);
            return;
        }
        let mut extra_copies_ns = Vec::new();
        if let Some(degraded) = degraded {
            if degraded.dropped {
                self.drop_message(from, to, &message, DropReason::Degrade);
                return;
            }
            latency_ns = latency_ns.saturating_add(degraded.delay_ns);
            copy_latency_ns = copy_latency_ns.saturating_add(degraded.delay_ns);
            extra_copies_ns = degraded.copy_latencies_ns;
        }
        let slowest_ns = extra_copies_ns
            .iter()
            .fold(latency_ns.max(copy_latency_ns), |a, &b| a.max(b));
        if slowest_ns > self.config.network.latency_max_ns {
            self.disturbed_ns.push(self.now_ns);
        }
        let epoch = self.nodes[to.index()].epoch;
        // The degrades' extra copies, each with its own latency.
        for copy_ns in extra_copies_ns {
            self.stats.messages_duplicated += 1;
            self.trace_message(TraceKind::Duplicate, from, to, &message);
            let copy = message.clone();
            self.push(
                self.now_ns.saturating_add(copy_ns),
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    message: copy,
                },
            );
        }
        if duplicated {
            self.stats.messages_duplicated += 1;
            self.trace_message(TraceKind::Duplicate, from, to, &message);
            let copy = message.clone();
            self.push(
                self.now_ns + copy_latency_ns,
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    message: copy,
                },
            );
        }
        self.push(
            self.now_ns + latency_ns,
            Event::Deliver {
                from,
                to,
                epoch,
                message,
            },
        );
    }

    fn drop_message(&mut self, from: NodeId, to: NodeId, message: &P::Message, reason: DropReason) {
        self.disturbed_ns.push(self.now_ns);
        match reason {
            DropReason::Random => self.stats.messages_dropped_random += 1,
            DropReason::Partition => self.stats.messages_dropped_partition += 1,
            DropReason::NodeDown => self.stats.messages_dropped_node_down += 1,
            DropReason::Buggify => self.stats.messages_dropped_buggify += 1,
            DropReason::Degrade => self.stats.messages_dropped_degrade += 1,
        }
        tracing::trace!(target: "sim", "{} {:<14} drop to {} ({reason:?}): {message:?}", SimTime(self.now_ns), self.nodes[from.index()].name, self.nodes[to.index()].name);
        self.trace_message(TraceKind::Drop(reason), from, to, message);
    }

    /// Each degrade in force whose links carry `from -> to` draws, in the
    /// order they started, whether it drops the message, whether it makes
    /// an extra copy, and that copy's latency (drawn whatever the outcome,
    /// so the number of draws depends only on the degrades in force), and
    /// adds its delay. Overlapping degrades compose: any one may drop, each
    /// may add a copy, delays add up.
    #[cold]
    fn draw_degrades(&mut self, from: NodeId, to: NodeId) -> Degraded {
        let mut degraded = Degraded::default();
        let network = &self.config.network;
        let rng = &mut self.degrade_rng;
        for degrade in self.degrades.iter().filter(|d| d.covers(from, to)) {
            degraded.dropped |= rng.chance_ppm(degrade.drop_ppm);
            let duplicated = rng.chance_ppm(degrade.duplicate_ppm);
            let copy_latency_ns = network.draw_latency_ns(rng);
            if duplicated {
                degraded.copy_latencies_ns.push(copy_latency_ns);
            }
            degraded.delay_ns = degraded.delay_ns.saturating_add(degrade.delay_ns);
        }
        for copy_latency_ns in &mut degraded.copy_latencies_ns {
            *copy_latency_ns = copy_latency_ns.saturating_add(degraded.delay_ns);
        }
        degraded
    }

    /// Sets a timer `delay_ns` on the node's monotonic clock from now, when
    /// its local time elapsed reads `elapsed_ns`.
    pub(crate) fn set_timer(
        &mut self,
        node: NodeId,
        timer: TimerId,
        delay_ns: u64,
        tag: P::Timer,
        elapsed_ns: u64,
    ) {
        let slot = &self.nodes[node.index()];
        let fire_at_ns = self
            .now_ns
            .saturating_add(slot.clock.true_duration_ns(delay_ns));
        let epoch = slot.epoch;
        let due_elapsed_ns = elapsed_ns.saturating_add(delay_ns);
        let event = Event::Timer {
            node,
            epoch,
            timer,
            tag,
        };
        let slot = self.push(fire_at_ns, event).unwrap_or(NOT_QUEUED);
        let pending = PendingTimer {
            due_elapsed_ns,
            slot,
        };
        self.pending_timers.insert(node, timer, pending);
    }

    pub(crate) fn record(&mut self, node: NodeId, event: P::Event) {
        self.stats.events_recorded += 1;
        let trace_index = self.trace(TraceKind::Record, node, node, stable_hash(&event));
        tracing::debug!(target: "sim", "{} {:<14} record {event:?}", SimTime(self.now_ns), self.nodes[node.index()].name);
        self.history.push(HistoryEntry {
            time_ns: self.now_ns,
            node,
            trace_index,
            event,
        });
    }

    /// A handler reached a BUGGIFY point: count the hit and decide, from a
    /// hash of (seed, point, node, hit), whether and how it fires. Without
    /// buggify this does nothing at all.
    fn buggify_point(&mut self, node: NodeId, point: &'static str) -> Option<Firing> {
        if !self.buggify.enabled {
            return None;
        }
        let seed = self.config.seed;
        let index = self.buggify_point_index(point);
        let entry = &mut self.buggify_points[index];
        if entry.hits.len() <= node.index() {
            entry.hits.resize(node.index() + 1, 0);
        }
        let hit = entry.hits[node.index()];
        entry.hits[node.index()] += 1;
        let (point_hash, active) = (entry.name_hash, entry.active);
        let mut firing =
            self.buggify
                .decide_hashed(seed, point_hash, active, node, hit, self.now_ns);
        if let Some(Firing::Crash(_) | Firing::Pause(_)) = firing {
            if self.buggify_faults >= self.buggify.max_faults {
                firing = None;
            } else {
                self.buggify_faults += 1;
            }
        }
        let stats = &mut self.buggify_points[index].stats;
        stats.active = active;
        stats.hits += 1;
        if let Some(firing) = firing {
            self.disturbed_ns.push(self.now_ns);
            stats.fired += 1;
            let digest = stable_hash(&(point, firing));
            self.trace(TraceKind::Buggify, node, node, digest);
            tracing::debug!(target: "sim", "{} {:<14} buggify {point}: {firing:?}", SimTime(self.now_ns), self.nodes[node.index()].name);
        }
        firing
    }

    /// The index of `point` in [`Self::buggify_points`], added on its first
    /// hit. A point is one `&'static str`, so the scan compares addresses
    /// first; a name compiled into two places is still one point.
    fn buggify_point_index(&mut self, point: &'static str) -> usize {
        let points = &self.buggify_points;
        if let Some(index) = points.iter().position(|p| std::ptr::eq(p.name, point)) {
            return index;
        }
        if let Some(index) = points.iter().position(|p| p.name == point) {
            return index;
        }
        let name_hash = stable_hash(point);
        self.buggify_points.push(BuggifyPoint {
            name: point,
            name_hash,
            active: self.buggify.is_active_hashed(self.config.seed, name_hash),
            hits: Vec::new(),
            stats: BuggifyPointStats::default(),
        });
        self.buggify_points.len() - 1
    }

    /// Runs `node`'s clocks at the rate of the latest drift fault in force
    /// on it, or at its configured rate when none is, from now on and
    /// continuously (see [`ActiveDrift`] for why the latest wins).
    fn set_clock_rate(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        let drift_ppm = self
            .drifts
            .iter()
            .rev()
            .find(|drift| drift.node == node)
            .map_or(slot.clock.configured_drift_ppm(), |drift| drift.drift_ppm);
        slot.clock.set_drift(self.now_ns, drift_ppm);
    }

    fn set_links(&mut self, fault: &Fault, cut: bool) -> Vec<(NodeId, NodeId)> {
        let mut cleared = Vec::new();
        let mut toggle = |matrix: &mut LinkMatrix, from: NodeId, to: NodeId| {
            if from == to {
                return;
            }
            if cut {
                matrix.add(from.index(), to.index());
            } else if matrix.remove(from.index(), to.index()) {
                cleared.push((from, to));
            }
        };
        match fault {
            Fault::Partition {
                side_a,
                side_b,
                one_way,
                ..
            } => {
                for &a in side_a {
                    for &b in side_b {
                        toggle(&mut self.partitions, a, b);
                        if !one_way {
                            toggle(&mut self.partitions, b, a);
                        }
                    }
                }
            }
            Fault::Clog { from, to, .. } => toggle(&mut self.clogs, *from, *to),
            _ => unreachable!("only link faults cut links"),
        }
        cleared
    }
}

impl<P: Protocol> Simulation<P> {
    /// A simulation with no nodes yet.
    ///
    /// # Panics
    /// If the network configuration is invalid (see
    /// [`NetworkConfig::validate`]); validate user input before this.
    pub fn new(config: SimConfig) -> Self {
        Self {
            core: Core::new(config),
            nodes: Vec::new(),
            factories: Vec::new(),
            started: false,
        }
    }

    /// Adds a node built by `factory`, which is called again to rebuild it
    /// after a crash (the rebuilt node recovers from durable storage in
    /// `on_start`).
    ///
    /// # Panics
    /// After the run started, or with a clock drift beyond the limit.
    pub fn add_node(
        &mut self,
        name: impl Into<String>,
        clock: ClockConfig,
        mut factory: impl FnMut(NodeId) -> Box<dyn Node<P>> + 'static,
    ) -> NodeId {
        assert!(!self.started, "nodes are added before the run starts");
        let id = NodeId(u32::try_from(self.nodes.len()).expect("fewer than 2^32 nodes"));
        self.nodes.push(Some(factory(id)));
        self.factories.push(Box::new(factory));
        self.core.add_slot(name.into(), clock, id);
        id
    }

    /// Turns BUGGIFY on (or off) for this run; off by default. Set it
    /// before the run starts.
    pub fn set_buggify(&mut self, config: BuggifyConfig) {
        self.core.buggify = config;
    }

    /// Every fault scheduled so far: given up front, drawn, or injected by
    /// BUGGIFY during the run (applied or still to come).
    pub fn scheduled_faults(&self) -> &[ScheduledFault] {
        &self.core.faults
    }

    /// Schedules a list of faults (scripted, or an earlier run's
    /// [`applied_faults`](Self::applied_faults)).
    pub fn add_faults(&mut self, faults: impl IntoIterator<Item = ScheduledFault>) {
        for fault in faults {
            let index = self.core.faults.len();
            let at_ns = fault.at_ns;
            self.core.faults.push(fault);
            if self.started {
                self.core
                    .push(at_ns.max(self.core.now_ns), Event::Fault { index });
            }
        }
    }

    /// Draws a fault schedule from the seed and `knobs`, schedules it, and
    /// returns it.
    pub fn generate_faults(
        &mut self,
        knobs: &FaultKnobs,
        targets: &FaultTargets,
    ) -> Vec<ScheduledFault> {
        let faults = knobs.generate(self.core.config.seed, targets);
        self.add_faults(faults.clone());
        faults
    }

    /// Starts the run on its first step: called by every step, so the
    /// check is inlined and the work kept out of line.
    #[inline]
    fn start(&mut self) {
        if !self.started {
            self.start_nodes();
        }
    }

    #[cold]
    fn start_nodes(&mut self) {
        self.started = true;
        let count = self.nodes.len();
        self.core.init_links();
        for index in 0..count {
            self.core.push(
                0,
                Event::Start {
                    node: NodeId(index as u32),
                },
            );
        }
        for index in 0..self.core.faults.len() {
            let at_ns = self.core.faults[index].at_ns;
            self.core.push(at_ns, Event::Fault { index });
        }
    }

    /// Processes one event. `None` means the run may go on; otherwise why
    /// it cannot.
    pub fn step(&mut self) -> Option<StopReason> {
        self.start();
        if let Some(reason) = self.core.limit_hit {
            return Some(reason);
        }
        if self.core.stats.events >= self.core.config.limits.max_events {
            return Some(StopReason::EventLimit);
        }
        let next_ns = self.core.next_due_ns()?;
        if next_ns > self.core.config.limits.max_time_ns {
            return Some(StopReason::TimeLimit);
        }
        let queued = self.core.queue.pop().expect("peeked");
        debug_assert!(queued.time_ns >= self.core.now_ns, "time never goes back");
        self.core.now_ns = queued.time_ns;
        self.core.stats.events += 1;
        self.handle(queued);
        self.core.limit_hit
    }

    /// Runs until nothing is left or a limit is hit.
    pub fn run(&mut self) -> StopReason {
        loop {
            if self.started && self.core.next_due_ns().is_none() {
                return StopReason::Quiescent;
            }
            if let Some(reason) = self.step() {
                return reason;
            }
        }
    }

    /// Runs every event up to and including `deadline_ns`, then sets the
    /// clock to the deadline.
    pub fn run_until(&mut self, deadline_ns: u64) -> StopReason {
        self.start();
        loop {
            match self.core.next_due_ns() {
                None => return StopReason::Quiescent,
                Some(next_ns) if next_ns > deadline_ns => {
                    self.core.now_ns = self.core.now_ns.max(deadline_ns);
                    return StopReason::Deadline;
                }
                Some(_) => {}
            }
            if let Some(reason) = self.step() {
                return reason;
            }
        }
    }

    /// Processes at most `count` events.
    pub fn run_events(&mut self, count: u64) -> StopReason {
        self.start();
        for _ in 0..count {
            if self.core.next_due_ns().is_none() {
                return StopReason::Quiescent;
            }
            if let Some(reason) = self.step() {
                return reason;
            }
        }
        StopReason::StepBudget
    }

    #[inline(always)]
    fn handle(&mut self, queued: Queued<P>) {
        match queued.event {
            Event::Start { node } => {
                self.core.trace(TraceKind::Start, node, node, 0);
                self.dispatch(node, |node, ctx| node.on_start(ctx));
            }
            Event::Deliver {
                from,
                to,
                epoch,
                message,
            } => self.deliver(queued.time_ns, queued.seq, from, to, epoch, message),
            Event::Timer {
                node,
                epoch,
                timer,
                tag,
            } => {
                let slot = &self.core.nodes[node.index()];
                // A dead timer (cancelled, or of a life a crash ended) is
                // taken off before it can pop: see `Core::next_due_ns`.
                let live = slot.up && slot.epoch == epoch;
                let pending = self.core.pending_timers.get(node, timer).filter(|_| live);
                debug_assert!(pending.is_some(), "a dead timer popped");
                let Some(PendingTimer { due_elapsed_ns, .. }) = pending else {
                    self.core.stats.timers_cancelled += 1;
                    return;
                };
                if slot.clock.rate_changed() {
                    let elapsed_ns = slot.clock.local_elapsed_ns(self.core.now_ns);
                    if elapsed_ns < due_elapsed_ns {
                        // The clock slowed after the timer was set: it may
                        // not fire before its local deadline, so it waits
                        // for the rest at today's rate. (A clock that sped
                        // up instead keeps its timers' true deadlines: they
                        // fire late by the node's clock, as on a loaded
                        // host, never early.)
                        let rest_ns = slot.clock.true_duration_ns(due_elapsed_ns - elapsed_ns);
                        let event = Event::Timer {
                            node,
                            epoch,
                            timer,
                            tag,
                        };
                        let at_ns = self.core.now_ns.saturating_add(rest_ns);
                        let slot = self.core.push(at_ns, event).unwrap_or(NOT_QUEUED);
                        self.core.pending_timers.set_slot(node, timer, slot);
                        return;
                    }
                }
                if slot.paused_until_ns.is_some() {
                    let event = Event::Timer {
                        node,
                        epoch,
                        timer,
                        tag,
                    };
                    self.core.pending_timers.set_slot(node, timer, NOT_QUEUED);
                    self.defer(node, queued.time_ns, queued.seq, event);
                    return;
                }
                self.core.pending_timers.remove(node, timer);
                self.core.stats.timers_fired += 1;
                self.core
                    .trace(TraceKind::Timer, node, node, stable_hash(&tag));
                tracing::debug!(target: "sim", "{} {:<14} timer {tag:?}", SimTime(self.core.now_ns), self.core.nodes[node.index()].name);
                self.dispatch(node, |node, ctx| node.on_timer(ctx, timer, tag));
            }
            Event::Fault { index } => self.apply_fault(index),
            Event::Heal { index } => self.heal_fault(index),
        }
    }

    fn defer(&mut self, node: NodeId, time_ns: u64, seq: u64, event: Event<P>) {
        if self.core.queue_full() {
            return;
        }
        self.core.parked += 1;
        self.core.deferred[node.index()].push(Queued {
            time_ns,
            seq,
            event,
        });
    }

    fn deliver(
        &mut self,
        time_ns: u64,
        seq: u64,
        from: NodeId,
        to: NodeId,
        epoch: u32,
        message: P::Message,
    ) {
        let slot = &self.core.nodes[to.index()];
        if !slot.up || slot.epoch != epoch {
            self.core
                .drop_message(from, to, &message, DropReason::NodeDown);
            return;
        }
        if self.core.partitions.is_set(from.index(), to.index()) {
            self.core
                .drop_message(from, to, &message, DropReason::Partition);
            return;
        }
        if self.core.clogs.is_set(from.index(), to.index()) {
            if self.core.queue_full() {
                return;
            }
            self.core.parked += 1;
            self.core.stats.messages_held += 1;
            self.core.trace_message(TraceKind::Hold, from, to, &message);
            self.core
                .held
                .entry((from, to))
                .or_default()
                .push((epoch, message));
            return;
        }
        if slot.paused_until_ns.is_some() {
            let event = Event::Deliver {
                from,
                to,
                epoch,
                message,
            };
            self.defer(to, time_ns, seq, event);
            return;
        }
        self.core.stats.messages_delivered += 1;
        self.core
            .trace_message(TraceKind::Deliver, to, from, &message);
        tracing::debug!(target: "sim", "{} {:<14} deliver from {}: {message:?}", SimTime(self.core.now_ns), self.core.nodes[to.index()].name, self.core.nodes[from.index()].name);
        self.dispatch(to, |node, ctx| node.on_message(ctx, from, message));
    }

    /// Runs one handler, then interprets its commands: the simulator is one
    /// host of the node contract. Write-ahead: the handler's durable state
    /// is persisted (here: it already lives in the slot, which a crash
    /// keeps) and counted before any of its sends is released.
    #[inline]
    fn dispatch(
        &mut self,
        node: NodeId,
        handler: impl FnOnce(&mut dyn Node<P>, &mut Context<'_, P>),
    ) {
        let target = self.nodes[node.index()]
            .as_deref_mut()
            .expect("only live nodes get events");
        let mut commands = std::mem::take(&mut self.core.commands);
        let now_ns = self.core.now_ns;
        let slot = &mut self.core.nodes[node.index()];
        let (elapsed_ns, mono_ns, wall_ns) = slot.clock.readings_ns(now_ns);
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
            &mut slot.next_timer,
            &mut commands,
        )
        .without_measures();
        handler(target, &mut ctx);
        if ctx.durable_changed() {
            self.core.durable_writes += 1;
        }
        let mut effect = SendEffect::None;
        let mut after: Option<Fault> = None;
        for command in commands.drain(..) {
            match command {
                Command::Send { to, message } => self.core.send_with(node, to, message, effect),
                Command::SetTimer {
                    timer,
                    delay_ns,
                    tag,
                } => self.core.set_timer(node, timer, delay_ns, tag, elapsed_ns),
                Command::CancelTimer { timer } => self.core.cancel_timer(node, timer),
                Command::Record { event } => self.core.record(node, *event),
                // For operators of a real host; not part of a run.
                Command::Measure { .. } => {}
                Command::Buggify { point } => match self.core.buggify_point(node, point) {
                    None => {}
                    Some(Firing::Delay(ns)) => effect = SendEffect::Delay(ns),
                    Some(Firing::Drop) => effect = SendEffect::Drop,
                    Some(Firing::Crash(downtime_ns)) => {
                        after.get_or_insert(Fault::Crash {
                            node,
                            restart_after_ns: Some(downtime_ns),
                        });
                    }
                    Some(Firing::Pause(duration_ns)) => {
                        after.get_or_insert(Fault::Pause { node, duration_ns });
                    }
                },
            }
        }
        self.core.commands = commands;
        if let Some(fault) = after.filter(|_| self.core.buggify.inject_faults) {
            // An ordinary fault, 1 ns after the handler: the checkers, the
            // applied list, replay and shrinking see it like any other.
            let index = self.core.faults.len();
            let at_ns = self.core.now_ns.saturating_add(1);
            self.core.faults.push(ScheduledFault { at_ns, fault });
            self.core.push_first(at_ns, Event::Fault { index });
        }
    }

    fn apply_fault(&mut self, index: usize) {
        let scheduled = self.core.faults[index].clone();
        let kind = scheduled.fault.kind_name();
        *self
            .core
            .stats
            .faults_by_kind
            .entry(kind.to_string())
            .or_default() += 1;
        let anchor = scheduled.anchor();
        self.core
            .trace(TraceKind::Fault, anchor, anchor, stable_hash(&scheduled));
        tracing::info!(target: "sim", "{} {:<14} fault {:?}", SimTime(self.core.now_ns), "-", scheduled.fault);
        let heal_after_ns = scheduled.fault.heals_after_ns();
        match &scheduled.fault {
            Fault::Partition { .. } | Fault::Clog { .. } => {
                self.core.set_links(&scheduled.fault, true);
            }
            Fault::Crash { node, .. } | Fault::Reboot { node, .. } => self.crash(*node),
            Fault::Pause { node, duration_ns } => {
                let slot = &mut self.core.nodes[node.index()];
                if slot.up {
                    let until_ns = self.core.now_ns.saturating_add(*duration_ns);
                    slot.paused_until_ns = Some(slot.paused_until_ns.unwrap_or(0).max(until_ns));
                }
            }
            Fault::ClockJump { node, delta_ns } => {
                self.core.nodes[node.index()].clock.jump_wall(*delta_ns);
            }
            Fault::Degrade {
                nodes,
                drop_ppm,
                duplicate_ppm,
                delay_ns,
                ..
            } => {
                let mut touches = Vec::new();
                if !nodes.is_empty() {
                    touches = vec![false; self.core.nodes.len()];
                    for node in nodes {
                        touches[node.index()] = true;
                    }
                }
                self.core.degrades.push(ActiveDegrade {
                    index,
                    touches,
                    drop_ppm: *drop_ppm,
                    duplicate_ppm: *duplicate_ppm,
                    delay_ns: *delay_ns,
                });
            }
            Fault::ClockDrift {
                node, drift_ppm, ..
            } => {
                self.core.drifts.push(ActiveDrift {
                    index,
                    node: *node,
                    drift_ppm: *drift_ppm,
                });
                self.core.set_clock_rate(*node);
            }
        }
        self.core.applied.push(scheduled.clone());
        // A clock jump is instantaneous: there is nothing to heal.
        let heals = !matches!(scheduled.fault, Fault::ClockJump { .. });
        if let Some(after_ns) = heal_after_ns.filter(|_| heals) {
            self.core.push(
                self.core.now_ns.saturating_add(after_ns),
                Event::Heal { index },
            );
        }
    }

    fn heal_fault(&mut self, index: usize) {
        let scheduled = self.core.faults[index].clone();
        let anchor = scheduled.anchor();
        self.core
            .trace(TraceKind::Heal, anchor, anchor, stable_hash(&scheduled));
        tracing::info!(target: "sim", "{} {:<14} heal {:?}", SimTime(self.core.now_ns), "-", scheduled.fault);
        match &scheduled.fault {
            Fault::Partition { .. } => {
                self.core.set_links(&scheduled.fault, false);
            }
            Fault::Clog { .. } => {
                for (from, to) in self.core.set_links(&scheduled.fault, false) {
                    // Release the held messages in a burst, in send order.
                    for (epoch, message) in self.core.held.remove(&(from, to)).unwrap_or_default() {
                        self.core.parked -= 1;
                        let now_ns = self.core.now_ns;
                        self.core.push(
                            now_ns,
                            Event::Deliver {
                                from,
                                to,
                                epoch,
                                message,
                            },
                        );
                    }
                }
            }
            Fault::Crash { node, .. } => self.restart(*node),
            Fault::Reboot { node, .. } => {
                // The new boot's monotonic clock starts from an arbitrary
                // value: fixed by the seed, the node and the boot, drawn
                // from no stream, so no other draw shifts.
                let slot = &mut self.core.nodes[node.index()];
                if !slot.up {
                    let origin_ns = mix64(
                        self.core.config.seed
                            ^ (u64::from(node.0) << 32)
                            ^ u64::from(slot.boot + 1).rotate_left(17),
                    ) % (1_000 * node::SECOND_NS);
                    slot.clock.restart_mono(self.core.now_ns, origin_ns);
                }
                self.restart(*node);
            }
            Fault::Pause { node, .. } => self.resume(*node),
            Fault::ClockJump { .. } => {}
            Fault::Degrade { .. } => self.core.degrades.retain(|d| d.index != index),
            Fault::ClockDrift { node, .. } => {
                self.core.drifts.retain(|d| d.index != index);
                self.core.set_clock_rate(*node);
            }
        }
    }

    fn crash(&mut self, node: NodeId) {
        let slot = &mut self.core.nodes[node.index()];
        if !slot.up {
            return;
        }
        slot.up = false;
        slot.epoch += 1;
        slot.paused_until_ns = None;
        self.core.parked -= self.core.deferred[node.index()].len();
        self.core.deferred[node.index()].clear();
        self.core.forget_timers(node);
        self.nodes[node.index()] = None;
    }

    fn restart(&mut self, node: NodeId) {
        let slot = &mut self.core.nodes[node.index()];
        if slot.up {
            return;
        }
        slot.up = true;
        slot.epoch += 1;
        slot.boot += 1;
        self.nodes[node.index()] = Some((self.factories[node.index()])(node));
        self.core.trace(TraceKind::Restart, node, node, 0);
        self.dispatch(node, |node, ctx| node.on_start(ctx));
    }

    fn resume(&mut self, node: NodeId) {
        let now_ns = self.core.now_ns;
        let slot = &mut self.core.nodes[node.index()];
        match slot.paused_until_ns {
            Some(until_ns) if until_ns <= now_ns => slot.paused_until_ns = None,
            _ => return, // extended by a later pause, or crashed meanwhile
        }
        // What queued up during the pause runs now, in its original order.
        let deferred = std::mem::take(&mut self.core.deferred[node.index()]);
        self.core.parked -= deferred.len();
        for queued in deferred {
            let timer = match queued.event {
                Event::Timer { timer, .. } => Some(timer),
                _ => None,
            };
            let slot = self.core.push(now_ns, queued.event);
            if let Some(timer) = timer {
                let slot = slot.unwrap_or(NOT_QUEUED);
                self.core.pending_timers.set_slot(node, timer, slot);
            }
        }
    }

    /// Changes the network's behaviour from now on (messages already in
    /// flight keep their fate). Used to calm the network for a liveness
    /// phase once the faults have healed.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`NetworkConfig::validate`]).
    pub fn set_network(&mut self, network: NetworkConfig) {
        if let Err(problem) = network.validate() {
            panic!("invalid network configuration: {problem}");
        }
        self.core.config.network = network;
    }

    /// The network's current behaviour.
    pub fn network(&self) -> &NetworkConfig {
        &self.core.config.network
    }

    /// Current true simulated time.
    pub fn now_ns(&self) -> u64 {
        self.core.now_ns
    }

    /// The root seed.
    pub fn seed(&self) -> u64 {
        self.core.config.seed
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.core.trace
    }

    /// With [`SimConfig::keep_trace`]: every message a trace entry names
    /// (delivered, dropped, duplicated or held), by the entry's index,
    /// ascending. `None` when the trace is not kept.
    pub fn messages(&self) -> Option<&[(u64, P::Message)]> {
        self.core.messages.as_deref()
    }

    /// The recorded history so far.
    pub fn history(&self) -> &[HistoryEntry<P::Event>] {
        &self.core.history
    }

    /// Counters so far: a copy, with every BUGGIFY point reached so far
    /// (whose counters live with the point during a run).
    pub fn stats(&self) -> Stats {
        let mut stats = self.core.stats.clone();
        stats.buggify = self
            .core
            .buggify_points
            .iter()
            .map(|point| (point.name.to_string(), point.stats.clone()))
            .collect();
        stats
    }

    /// The faults applied so far, in the order they were applied. Feeding
    /// them to a fresh run with the same seed reproduces this run.
    pub fn applied_faults(&self) -> &[ScheduledFault] {
        &self.core.applied
    }

    /// When, in order, the run was disturbed outside its faults: a message
    /// dropped (for any reason) or slowed past the network's latency range
    /// (its tail, or a BUGGIFY delay), or a BUGGIFY point fired. A checker
    /// that judges quiet moments skips these.
    pub fn disturbances_ns(&self) -> &[u64] {
        &self.core.disturbed_ns
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// A node's name.
    pub fn node_name(&self, node: NodeId) -> &str {
        &self.core.nodes[node.index()].name
    }

    /// Whether a node is running (not crashed).
    pub fn is_up(&self, node: NodeId) -> bool {
        self.core.nodes[node.index()].up
    }

    /// A node's durable state.
    pub fn durable(&self, node: NodeId) -> &P::Durable {
        &self.core.nodes[node.index()].durable
    }

    /// A node's boot counter: how many times it restarted.
    pub fn boot(&self, node: NodeId) -> u32 {
        self.core.nodes[node.index()].boot
    }

    /// How many handler calls changed their node's durable state (each one
    /// persisted before its sends were released).
    pub fn durable_writes(&self) -> u64 {
        self.core.durable_writes
    }

    /// Number of events waiting.
    pub fn queue_len(&self) -> usize {
        self.core.queue.len()
    }
}
