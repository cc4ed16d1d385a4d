//! One node on the real host: a tokio task that owns the node, feeds it
//! messages and timers, and carries out its commands under the contract's
//! rules (write-ahead, commands in order, durable boot counter, volatile
//! timers).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use node::history::{HISTORY_FILE, HistoryLine};
use node::{Command, Context, Inputs, Node, NodeId, SplitMix64, TimerId};
use plane::Durable;
use plane::protocol::{ControlPlane, Event, Msg, Timer};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::durable::{Persisted, StateError, StateFile};
use crate::faults::{Faults, NodeState};
use crate::metrics::Metrics;
use crate::net::Network;

/// Handlers run before one durable write (group commit): enough to carry
/// a burst, few enough that the first handler's sends are not held long.
const MAX_BATCH: usize = 64;

/// What one node needs to run.
pub struct NodeSpec {
    /// Its id.
    pub id: NodeId,
    /// Its name, for logs and metrics.
    pub name: String,
    /// The node.
    pub node: Box<dyn Node<ControlPlane> + Send>,
    /// Its data directory (state file and history).
    pub dir: std::path::PathBuf,
}

/// A node ready to run: its state loaded and its boot counted.
pub struct Loaded {
    spec: NodeSpec,
    state: StateFile,
    persisted: Persisted<Durable>,
    history: History,
}

/// Loads a node's state from its data directory and persists its new boot
/// count before anything runs (contract rule: the boot counter is durable).
/// A corrupt or truncated state file stops here, naming the file.
///
/// The node's earlier history is replayed into `metrics`, so gauges such
/// as the desired count describe the whole run, not just this process's
/// life.
///
/// `metrics` is `None` when the node restarts inside a process whose
/// metrics already counted its history (after a crash fault).
pub fn load(spec: NodeSpec, metrics: Option<&Metrics>) -> Result<Loaded, StateError> {
    let state = StateFile::new(&spec.dir)?;
    let persisted = match state.load::<Durable>()? {
        Some(mut persisted) => {
            persisted.boot += 1;
            persisted
        }
        None => Persisted::default(),
    };
    state.store(&persisted)?;
    let history = History::open(&spec.dir, spec.id, metrics)?;
    Ok(Loaded {
        spec,
        state,
        persisted,
        history,
    })
}

impl Loaded {
    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.spec.id
    }
}

/// The node's history file: one JSON line per recorded event.
struct History {
    file: BufWriter<File>,
    path: std::path::PathBuf,
    node: NodeId,
    seq: u64,
}

impl History {
    fn open(dir: &Path, node: NodeId, metrics: Option<&Metrics>) -> Result<Self, StateError> {
        let path = dir.join(HISTORY_FILE);
        let io = |e| StateError::Io(path.clone(), e);
        // Count what earlier boots wrote, so `seq` goes on counting; a
        // line cut short by a kill is cut off, so that the file stays one
        // whole JSON object per line.
        let (seq, whole) = match std::fs::read(&path) {
            Ok(bytes) => {
                let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                for line in bytes[..whole].split(|&b| b == b'\n') {
                    if let Some(metrics) = metrics
                        && let Ok(line) = serde_json::from_slice::<HistoryLine<Event>>(line)
                    {
                        metrics.observe(line.node, &line.event, line.host_ns);
                    }
                }
                let lines = bytes[..whole].iter().filter(|&&b| b == b'\n').count();
                (lines as u64, Some((whole as u64, bytes.len() as u64)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, None),
            Err(e) => return Err(io(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if let Some((whole, len)) = whole
            && whole < len
        {
            tracing::warn!(path = %path.display(), cut = len - whole, "cutting a history line left unfinished by the last stop");
            file.set_len(whole).map_err(io)?;
        }
        Ok(Self {
            file: BufWriter::new(file),
            path,
            node,
            seq,
        })
    }

    fn append(&mut self, inputs: &Inputs, host_ns: u64, event: &Event) -> std::io::Result<()> {
        let line = HistoryLine {
            node: self.node,
            boot: inputs.boot,
            seq: self.seq,
            mono_ns: inputs.mono_ns,
            wall_ns: inputs.wall_ns,
            host_ns,
            event,
        };
        serde_json::to_writer(&mut self.file, &line)?;
        self.file.write_all(b"\n")?;
        self.seq += 1;
        Ok(())
    }
}

/// The host machine's wall clock, ns since the Unix epoch.
pub fn host_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Why [`run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The process is stopping.
    Stopped,
    /// A crash fault took the node down: its volatile state is gone.
    Crashed,
    /// It cannot go on (its state cannot be written, its inbox closed).
    Failed,
}

/// Runs a loaded node until `stop` turns true or a fault crashes it.
/// Messages arrive on `inbox`; sends leave through `network`; `faults`
/// pause it, crash it and skew its clocks.
pub async fn run(
    loaded: Loaded,
    inbox: &mut mpsc::UnboundedReceiver<(NodeId, Msg)>,
    network: Network,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    faults: Arc<Faults>,
) -> Exit {
    let Loaded {
        spec,
        state,
        mut persisted,
        mut history,
    } = loaded;
    let NodeSpec {
        id, name, mut node, ..
    } = spec;
    let boot = persisted.boot;
    let counters = metrics.node_counters(&name);
    let mut fault_changes = faults.subscribe();
    // The node's clocks, through the fault layer's adapter (drift and
    // jumps). A new boot may start the monotonic clock anywhere (contract
    // rule 5); this host starts it at one hour so a reading is never near
    // zero.
    let origin = faults.origin();
    let boot_local_ns = faults.clock(id).local_ns(Instant::now().into_std());
    let readings = || {
        let clock = faults.clock(id);
        let now = Instant::now().into_std();
        let host_ns = host_now_ns();
        let mono_ns = clock.local_ns(now) - boot_local_ns + 3_600 * node::SECOND_NS;
        let wall_ns = (host_ns as i64)
            .saturating_add(clock.wall_skew_ns(origin, now))
            .max(0) as u64;
        (mono_ns, wall_ns, host_ns)
    };
    let mut rng =
        SplitMix64::new(node::mix64(host_now_ns() ^ (u64::from(id.0) << 32)) ^ u64::from(boot));
    let mut next_timer = 0u64;
    let mut commands: Vec<Command<ControlPlane>> = Vec::new();
    let mut timers: BTreeMap<(Instant, TimerId), Timer> = BTreeMap::new();
    let mut deadlines: BTreeMap<TimerId, Instant> = BTreeMap::new();

    enum Input {
        Start,
        Message(NodeId, Msg),
        Timer(TimerId, Timer),
    }
    let mut input = Some(Input::Start);
    // Each handler of a batch: where its commands start, its inputs, and
    // the host's own clock when it ran.
    let mut handlers: Vec<(usize, Inputs, u64)> = Vec::new();
    loop {
        // A pause runs nothing: messages wait in the inbox and timers go
        // overdue, and both arrive at once on resume.
        let paused = match faults.node_state(id) {
            NodeState::Up => None,
            NodeState::Paused(until) => Some(until),
            NodeState::Down => {
                let _ = history.file.flush();
                return Exit::Crashed;
            }
        };
        if paused.is_none()
            && let Some(first) = input.take()
        {
            // Group commit: run the first input and whatever messages are
            // already queued behind it (up to a bound), persist the durable
            // state once, and only then release every send of the batch.
            // Each handler's sends still leave after its state is on disk,
            // which is all the write-ahead rule asks.
            let mut next = Some(first);
            let mut changed = false;
            handlers.clear();
            while let Some(this) = next.take() {
                let (mono_ns, wall_ns, host_ns) = readings();
                let inputs = Inputs {
                    id,
                    boot,
                    mono_ns,
                    wall_ns,
                };
                handlers.push((commands.len(), inputs, host_ns));
                let mut ctx = Context::new(
                    inputs,
                    &mut rng,
                    &mut persisted.durable,
                    &mut next_timer,
                    &mut commands,
                );
                match this {
                    Input::Start => node.on_start(&mut ctx),
                    Input::Message(from, message) => node.on_message(&mut ctx, from, message),
                    Input::Timer(timer, tag) => node.on_timer(&mut ctx, timer, tag),
                }
                changed |= ctx.durable_changed();
                if handlers.len() < MAX_BATCH
                    && let Ok((from, message)) = inbox.try_recv()
                {
                    counters.received.increment(1);
                    next = Some(Input::Message(from, message));
                }
            }
            // Write-ahead: the state and the history reach the disk (or the
            // page cache, for the history) before any send leaves.
            if changed {
                let written = tokio::task::block_in_place(|| state.store(&persisted));
                if let Err(error) = written {
                    tracing::error!(node = %name, %error, "cannot persist durable state: stopping the node");
                    return Exit::Failed;
                }
                counters.durable_writes.increment(1);
            }
            let mut recorded = false;
            let mut handler = 0;
            for (index, command) in commands.iter().enumerate() {
                while handler + 1 < handlers.len() && handlers[handler + 1].0 <= index {
                    handler += 1;
                }
                if let Command::Record { event } = command {
                    let (_, inputs, host_ns) = &handlers[handler];
                    if let Err(error) = history.append(inputs, *host_ns, event) {
                        tracing::error!(node = %name, path = %history.path.display(), %error, "cannot append history");
                    }
                    metrics.observe(id, event, *host_ns);
                    recorded = true;
                }
            }
            if recorded {
                let _ = history.file.flush();
            }
            let now = Instant::now();
            let clock = faults.clock(id);
            for command in commands.drain(..) {
                match command {
                    Command::Send { to, message } => {
                        counters.sent.increment(1);
                        network.send(id, to, message);
                    }
                    Command::SetTimer {
                        timer,
                        delay_ns,
                        tag,
                    } => {
                        // A local delay, on a drifting clock, takes
                        // longer or shorter in real time.
                        let at = now + clock.real_delay(delay_ns);
                        timers.insert((at, timer), tag);
                        deadlines.insert(timer, at);
                    }
                    Command::CancelTimer { timer } => {
                        if let Some(at) = deadlines.remove(&timer) {
                            timers.remove(&(at, timer));
                        }
                    }
                    Command::Measure {
                        name: what,
                        kind,
                        value,
                    } => {
                        metrics.measure(&name, what, kind, value);
                    }
                    Command::Record { .. } | Command::Buggify { .. } => {}
                }
            }
        }
        let next_timer_at = timers.keys().next().map(|&(at, _)| at);
        let running = paused.is_none() && input.is_none();
        let resume_at = paused.flatten();
        tokio::select! {
            biased;
            _ = stop.changed() => {
                if *stop.borrow() {
                    let _ = history.file.flush();
                    return Exit::Stopped;
                }
            }
            _ = fault_changes.changed() => {}
            _ = async { tokio::time::sleep_until(resume_at.expect("guarded").into()).await }, if resume_at.is_some() => {}
            _ = async { tokio::time::sleep_until(next_timer_at.expect("guarded")).await }, if running && next_timer_at.is_some() => {
                let (key, tag) = timers.pop_first().expect("a timer is due");
                deadlines.remove(&key.1);
                input = Some(Input::Timer(key.1, tag));
            }
            received = inbox.recv(), if running => match received {
                Some((from, message)) => {
                    counters.received.increment(1);
                    input = Some(Input::Message(from, message));
                }
                None => return Exit::Failed,
            },
        }
    }
}
