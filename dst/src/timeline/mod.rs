//! A run as a picture: what happened on which node and when, read from a
//! kept history, laid out once as data ([`Timeline`]) and drawn two ways:
//! a self-contained HTML page ([`html`]) and a Chrome trace for Perfetto
//! ([`crate::perfetto`]). Both draw the same model, so what one shows the
//! other shows too.
//!
//! The model reads only what the checkers read (the history, the applied
//! faults, the verdicts), so it works for every engine that keeps its
//! history. It is built in one pass over the history plus a first pass
//! that learns which resource each Idempotency-Key created, so a charge or
//! a replay can be filtered by resource like the request that caused it.

mod html;

pub use html::html;

use std::collections::{BTreeMap, BTreeSet};

use sim::{Fault, HistoryEntry, NodeId, ScheduledFault};

use crate::error::Error;
use crate::report::{fault_line, name_nodes_in};
use crate::scenario::Scenario;
use crate::sweep::Outcome;
use crate::world::RunResult;
use plane::protocol::{ApiOp, BeliefEnd, Event, InstanceId, LeaseName, ResponseBody};
use plane::shard::shard_of;

/// Requests a client lane stacks side by side before they overlap.
pub(crate) const REQUEST_ROWS: usize = 4;
/// Beliefs a lease row stacks side by side before they overlap.
pub(crate) const BELIEF_ROWS: usize = 3;

/// One run, laid out for drawing. Times are true simulated nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    /// `chaos` seed 42 on sim: FAIL (always.one_active_holder).
    pub title: String,
    /// When the run stopped: the right edge.
    pub end_ns: u64,
    /// When the last fault healed, if one did.
    pub healed_ns: Option<u64>,
    /// Node names by id: one lane each.
    pub nodes: Vec<String>,
    /// One row per shard (ascending), then the leader lease.
    pub leases: Vec<LeaseRow>,
    /// The applied faults, each over the lanes it hits.
    pub faults: Vec<FaultSpan>,
    /// Client requests, send to answer.
    pub requests: Vec<RequestSpan>,
    /// Side effects and other instants worth a tick on a node's lane.
    pub marks: Vec<Mark>,
    /// Desired against observed, at every change.
    pub curve: Vec<CurvePoint>,
    /// Every violation the checkers kept, in time order.
    pub violations: Vec<ViolationMark>,
    /// Every resource id seen, for the filter.
    pub resources: Vec<String>,
    /// The shard count, for the filter.
    pub shard_count: u32,
}

/// A lease's terms as the store wrote them, and who believed they held it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    /// `shard-3` or `leader`.
    pub name: String,
    /// The shard, for a shard lease.
    pub shard: Option<u32>,
    /// Holders as the store recorded them; gaps where the key was deleted.
    pub terms: Vec<Term>,
    /// Controllers' beliefs that they hold it, with a row each so
    /// overlapping beliefs (the bug the fencing token exists for) show.
    pub beliefs: Vec<Belief>,
}

/// A holder of a lease from one store write to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// The write.
    pub start_ns: u64,
    /// The next write of the key, or the end of the run.
    pub end_ns: u64,
    /// The holder.
    pub holder: NodeId,
    /// The fencing token: the write's revision.
    pub token: u64,
}

/// A controller believing it held a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Belief {
    /// The controller.
    pub node: NodeId,
    /// The token it believed in.
    pub token: u64,
    /// From.
    pub start_ns: u64,
    /// To (the end of the run, or its crash, if it never said).
    pub end_ns: u64,
    /// Why it stopped: `expired`, `lost`, ...; `None`: it never said.
    pub reason: Option<&'static str>,
    /// The sub-row it is drawn in, `0..BELIEF_ROWS`.
    pub row: usize,
}

/// A fault, over the lanes it hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSpan {
    /// Its kind, as reports count it: `partition`, `pause`, ...
    pub kind: &'static str,
    /// When it started.
    pub start_ns: u64,
    /// When it healed (the start for a clock jump; the end of the run for
    /// one that never healed).
    pub end_ns: u64,
    /// The lanes shaded: the nodes it cuts off, stops or skews.
    pub nodes: Vec<NodeId>,
    /// What a report says of it.
    pub label: String,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestEnd {
    /// Answered, with this status; `replayed` from the ledger.
    Answered {
        /// HTTP status.
        status: u16,
        /// The `Idempotent-Replayed` header.
        replayed: bool,
    },
    /// No answer before the client sent the next attempt or gave up.
    NoAnswer,
    /// The client gave up on the key after this attempt.
    Abandoned,
}

/// One attempt of a client request, from send to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpan {
    /// The client.
    pub client: NodeId,
    /// The API node it went to.
    pub api: NodeId,
    /// Sent at.
    pub start_ns: u64,
    /// Answered at (or given up, or the next attempt, or the end).
    pub end_ns: u64,
    /// 0 for the first try, then 1, 2, ...
    pub attempt: u32,
    /// `create`, `update`, ...
    pub op: &'static str,
    /// The Idempotency-Key.
    pub key: Option<String>,
    /// The resource it names or created.
    pub resource: Option<String>,
    /// How it ended.
    pub end: RequestEnd,
    /// Its sub-row in the client's lane, `0..REQUEST_ROWS`.
    pub row: usize,
}

/// What a tick on a lane stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkKind {
    /// Billing charged a key.
    Charge,
    /// Billing answered a repeated key with the first charge.
    ChargeDeduplicated,
    /// A worker started an instance.
    InstanceStarted,
    /// A worker stopped an instance.
    InstanceStopped,
    /// A worker refused an action for a stale token.
    ActionRejected,
    /// A controller acquired a lease.
    LeaseAcquired,
    /// An API node served a replay from the ledger.
    Replayed,
    /// An API node answered 409 or 422.
    KeyConflict,
    /// An API node (or its completer) took over a stale key.
    KeyTakenOver,
}

impl MarkKind {
    /// A short class name for styles and the legend.
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Charge => "charge",
            MarkKind::ChargeDeduplicated => "charge-dedup",
            MarkKind::InstanceStarted => "start",
            MarkKind::InstanceStopped => "stop",
            MarkKind::ActionRejected => "rejected",
            MarkKind::LeaseAcquired => "acquired",
            MarkKind::Replayed => "replay",
            MarkKind::KeyConflict => "conflict",
            MarkKind::KeyTakenOver => "takeover",
        }
    }
}

/// An instant on a node's lane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// What happened.
    pub kind: MarkKind,
    /// Where.
    pub node: NodeId,
    /// When.
    pub time_ns: u64,
    /// The details.
    pub label: String,
    /// The resource it concerns, if known.
    pub resource: Option<String>,
    /// The shard it concerns, if known.
    pub shard: Option<u32>,
}

/// Desired against observed at one moment: what the convergence checker
/// compares, summed over every resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CurvePoint {
    /// From this time on.
    pub time_ns: u64,
    /// Replicas the store's desired state asks for.
    pub desired_replicas: u64,
    /// Instances running on workers, any generation.
    pub running: u64,
    /// Instances running at their resource's desired generation.
    pub running_current: u64,
}

/// A violation where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViolationMark {
    /// The property.
    pub property: &'static str,
    /// When.
    pub time_ns: u64,
    /// The nodes involved, the recording node first.
    pub nodes: Vec<NodeId>,
    /// The trace position.
    pub trace_index: u64,
    /// The checker's message, with node names.
    pub message: String,
}

impl Timeline {
    /// Lays out `result`, a run of `scenario` that kept its history.
    /// Bad input when it did not: the caller asked for a picture of a run
    /// whose engine or options left nothing to draw.
    pub fn from_run(result: &RunResult, scenario: &Scenario) -> Result<Timeline, Error> {
        let history = result.history.as_deref().ok_or_else(|| {
            Error::bad_input(
                format!("{} engine", result.engine),
                "this run kept no history to draw (run it with the trace kept)",
            )
        })?;
        let shard_count = scenario.controller.shard_count.max(1);
        let names = &result.node_names;
        let key_resources = resources_by_key(history);
        let mut requests = Requests {
            timeout_ns: scenario
                .client
                .request_timeout_ms
                .saturating_mul(sim::MILLISECOND_NS),
            ..Requests::default()
        };
        let mut leases = Leases::default();
        let mut curve = Curve::default();
        let mut marks = Vec::new();
        let mut resources: BTreeSet<String> = BTreeSet::new();
        for entry in history {
            requests.record(entry, &key_resources);
            leases.record(entry);
            curve.record(entry);
            if let Some(mark) = mark_of(entry, &key_resources, shard_count) {
                marks.push(mark);
            }
            if let Some(id) = resource_named(&entry.event) {
                resources.insert(id.to_string());
            }
        }
        let end_ns = result.end_ns.max(history.last().map_or(0, |e| e.time_ns));
        let violations = violations(result);
        debug_assert!(violations.windows(2).all(|w| w[0].time_ns <= w[1].time_ns));
        Ok(Timeline {
            title: title(result),
            end_ns,
            healed_ns: result.healed_ns,
            nodes: names.clone(),
            leases: leases.finish(end_ns),
            faults: fault_spans(&result.faults, names, end_ns),
            requests: requests.finish(end_ns),
            marks,
            curve: curve.points,
            violations,
            resources: resources.into_iter().collect(),
            shard_count,
        })
    }

    /// The shard of a resource id, as the controllers place it.
    pub fn shard_of(&self, resource: &str) -> u32 {
        shard_of(resource, self.shard_count).0
    }

    /// A node's name.
    pub fn name(&self, node: NodeId) -> &str {
        self.nodes.get(node.index()).map_or("?", String::as_str)
    }
}

fn title(result: &RunResult) -> String {
    let outcome = match Outcome::of(result) {
        Outcome::Pass => "PASS",
        Outcome::Cost => "COST",
        Outcome::Safety => "SAFETY VIOLATION",
        Outcome::Liveness => "LIVENESS FAILURE",
        Outcome::Crash => "CRASH",
        Outcome::Nondeterministic => "NONDETERMINISTIC",
    };
    let mut title = format!(
        "`{}` seed {} on {}: {outcome}",
        result.scenario, result.seed, result.engine
    );
    if !result.bugs.is_empty() {
        let bugs: Vec<String> = result.bugs.iter().map(|bug| bug.to_string()).collect();
        title.push_str(&format!(" (planted: {})", bugs.join(", ")));
    }
    title
}

fn violations(result: &RunResult) -> Vec<ViolationMark> {
    let mut all: Vec<ViolationMark> = result
        .check
        .verdicts
        .iter()
        .flat_map(|verdict| verdict.violations.iter())
        .map(|violation| ViolationMark {
            property: violation.property,
            time_ns: violation.time_ns,
            nodes: violation.nodes.clone(),
            trace_index: violation.trace_index,
            message: name_nodes_in(&violation.message, &result.node_names),
        })
        .collect();
    all.sort_by_key(|v| (v.time_ns, v.trace_index, v.property));
    all
}

/// Which resource each Idempotency-Key created or changed, from the
/// store's record of the commit (a replay or a charge names only the key).
fn resources_by_key(history: &[HistoryEntry<Event>]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for entry in history {
        match &entry.event {
            Event::ResourceCommitted { id, key, .. } => {
                map.entry(key.clone()).or_insert_with(|| id.clone());
            }
            Event::DesiredWritten {
                id,
                ledger: Some((key, _)),
                ..
            } => {
                map.entry(key.clone()).or_insert_with(|| id.clone());
            }
            _ => {}
        }
    }
    map
}

/// The resource an event names directly.
fn resource_named(event: &Event) -> Option<&str> {
    match event {
        Event::ResourceCommitted { id, .. }
        | Event::DesiredWritten { id, .. }
        | Event::StatusStored { id, .. } => Some(id),
        Event::InstanceStarted { instance, .. } | Event::InstanceStopped { instance, .. } => {
            Some(&instance.resource)
        }
        _ => None,
    }
}

fn op_name(op: &ApiOp) -> &'static str {
    match op {
        ApiOp::Create { .. } => "create",
        ApiOp::Update { .. } => "update",
        ApiOp::Delete { .. } => "delete",
        ApiOp::Get { .. } => "get",
        ApiOp::List { .. } => "list",
    }
}

fn op_resource(op: &ApiOp) -> Option<&str> {
    match op {
        ApiOp::Update { id, .. } | ApiOp::Delete { id } | ApiOp::Get { id } => Some(id),
        ApiOp::Create { .. } | ApiOp::List { .. } => None,
    }
}

/// Pairs each attempt with its answer, per client.
#[derive(Default)]
struct Requests {
    spans: Vec<RequestSpan>,
    /// (client, request id) -> index of the open span.
    open: BTreeMap<(NodeId, u64), usize>,
    /// (client, logical request) -> index of its latest attempt.
    latest: BTreeMap<(NodeId, u64), usize>,
    /// How long a client waits for an answer: an unanswered attempt ends
    /// there (a read is not retried, so nothing else would end it).
    timeout_ns: u64,
}

impl Requests {
    fn record(&mut self, entry: &HistoryEntry<Event>, keys: &BTreeMap<String, String>) {
        match &entry.event {
            Event::RequestSent {
                request_id,
                api,
                key,
                attempt,
                logical,
                op,
                ..
            } => {
                // An earlier attempt still open when the next goes out had
                // timed out at the client: it ends here, unanswered.
                if let Some(&earlier) = self.latest.get(&(entry.node, *logical))
                    && self.spans[earlier].end == RequestEnd::NoAnswer
                    && self.spans[earlier].end_ns == u64::MAX
                {
                    self.spans[earlier].end_ns = entry.time_ns;
                }
                let resource = op_resource(op)
                    .map(str::to_string)
                    .or_else(|| key.as_ref().and_then(|key| keys.get(key).cloned()));
                let index = self.spans.len();
                self.spans.push(RequestSpan {
                    client: entry.node,
                    api: *api,
                    start_ns: entry.time_ns,
                    end_ns: u64::MAX,
                    attempt: *attempt,
                    op: op_name(op),
                    key: key.clone(),
                    resource,
                    end: RequestEnd::NoAnswer,
                    row: 0,
                });
                self.open.insert((entry.node, *request_id), index);
                self.latest.insert((entry.node, *logical), index);
            }
            Event::ResponseReceived {
                request_id,
                response,
                replayed,
                ..
            } => {
                if let Some(index) = self.open.remove(&(entry.node, *request_id)) {
                    let span = &mut self.spans[index];
                    span.end_ns = entry.time_ns;
                    span.end = RequestEnd::Answered {
                        status: response.status,
                        replayed: *replayed,
                    };
                    if span.resource.is_none()
                        && let ResponseBody::Resource(resource) = &response.body
                    {
                        span.resource = Some(resource.id.clone());
                    }
                }
            }
            Event::RequestAbandoned { key } => {
                // The client's latest open attempt with this key.
                let found = self
                    .spans
                    .iter_mut()
                    .rev()
                    .find(|s| s.client == entry.node && s.key == *key && s.end_ns == u64::MAX);
                if let Some(span) = found {
                    span.end_ns = entry.time_ns;
                    span.end = RequestEnd::Abandoned;
                }
            }
            _ => {}
        }
    }

    /// Closes what is still open at the end and packs each client's
    /// attempts into rows, first fit.
    fn finish(mut self, end_ns: u64) -> Vec<RequestSpan> {
        let mut row_free: BTreeMap<NodeId, [u64; REQUEST_ROWS]> = BTreeMap::new();
        for span in &mut self.spans {
            if span.end == RequestEnd::NoAnswer && self.timeout_ns > 0 {
                let gave_up_ns = span.start_ns.saturating_add(self.timeout_ns);
                span.end_ns = span.end_ns.min(gave_up_ns);
            }
            if span.end_ns == u64::MAX || span.end_ns > end_ns {
                span.end_ns = end_ns.max(span.start_ns);
            }
            let free = row_free.entry(span.client).or_insert([0; REQUEST_ROWS]);
            let row = (0..REQUEST_ROWS)
                .find(|&row| free[row] <= span.start_ns)
                .unwrap_or(REQUEST_ROWS - 1);
            free[row] = free[row].max(span.end_ns);
            span.row = row;
        }
        self.spans
    }
}

/// Terms from the store's writes of lease keys, beliefs from the
/// controllers.
#[derive(Default)]
struct Leases {
    /// Every write of each lease key: (time, holder, revision).
    writes: BTreeMap<LeaseName, Vec<(u64, Option<NodeId>, u64)>>,
    beliefs: BTreeMap<LeaseName, Vec<Belief>>,
    /// (controller, lease, token) -> index of its open belief.
    open: BTreeMap<(NodeId, LeaseName, u64), usize>,
}

impl Leases {
    fn record(&mut self, entry: &HistoryEntry<Event>) {
        match &entry.event {
            Event::LeaseStored {
                lease,
                holder,
                revision,
            } => self
                .writes
                .entry(*lease)
                .or_default()
                .push((entry.time_ns, *holder, *revision)),
            Event::BeliefStarted { lease, token } => {
                let beliefs = self.beliefs.entry(*lease).or_default();
                self.open
                    .insert((entry.node, *lease, *token), beliefs.len());
                beliefs.push(Belief {
                    node: entry.node,
                    token: *token,
                    start_ns: entry.time_ns,
                    end_ns: u64::MAX,
                    reason: None,
                    row: 0,
                });
            }
            Event::BeliefEnded {
                lease,
                token,
                reason,
            } => {
                if let Some(index) = self.open.remove(&(entry.node, *lease, *token)) {
                    let belief = &mut self.beliefs.get_mut(lease).expect("opened")[index];
                    belief.end_ns = entry.time_ns;
                    belief.reason = Some(match reason {
                        BeliefEnd::Expired => "expired",
                        BeliefEnd::Lost => "lost",
                        BeliefEnd::Released => "released",
                        BeliefEnd::Fenced => "fenced",
                    });
                }
            }
            _ => {}
        }
    }

    fn finish(self, end_ns: u64) -> Vec<LeaseRow> {
        let names: BTreeSet<LeaseName> = self
            .writes
            .keys()
            .chain(self.beliefs.keys())
            .copied()
            .collect();
        // Shards ascending, then the leader (LeaseName orders them so).
        let mut beliefs = self.beliefs;
        let mut writes = self.writes;
        names
            .into_iter()
            .map(|lease| {
                let terms = terms(writes.remove(&lease).unwrap_or_default(), end_ns);
                let beliefs = pack_beliefs(beliefs.remove(&lease).unwrap_or_default(), end_ns);
                let (name, shard) = match lease {
                    LeaseName::Shard(shard) => (shard.to_string(), Some(shard.0)),
                    LeaseName::Leader => ("leader".to_string(), None),
                };
                LeaseRow {
                    name,
                    shard,
                    terms,
                    beliefs,
                }
            })
            .collect()
    }
}

fn terms(writes: Vec<(u64, Option<NodeId>, u64)>, end_ns: u64) -> Vec<Term> {
    let mut terms = Vec::new();
    for (index, &(start_ns, holder, token)) in writes.iter().enumerate() {
        let Some(holder) = holder else { continue };
        let next_ns = writes.get(index + 1).map_or(end_ns, |next| next.0);
        terms.push(Term {
            start_ns,
            end_ns: next_ns.max(start_ns),
            holder,
            token,
        });
    }
    terms
}

fn pack_beliefs(mut beliefs: Vec<Belief>, end_ns: u64) -> Vec<Belief> {
    let mut free = [0u64; BELIEF_ROWS];
    for belief in &mut beliefs {
        if belief.end_ns == u64::MAX {
            belief.end_ns = end_ns.max(belief.start_ns);
        }
        let row = (0..BELIEF_ROWS)
            .find(|&row| free[row] <= belief.start_ns)
            .unwrap_or(BELIEF_ROWS - 1);
        free[row] = free[row].max(belief.end_ns);
        belief.row = row;
    }
    beliefs
}

/// Desired replicas against running instances, kept as the history goes.
#[derive(Default)]
struct Curve {
    /// Resource -> (desired generation, replicas).
    desired: BTreeMap<String, (u64, u32)>,
    /// Resource -> running instance -> generation.
    running: BTreeMap<String, BTreeMap<InstanceId, u64>>,
    points: Vec<CurvePoint>,
    last: CurvePoint,
}

impl Curve {
    fn current(&self, id: &str) -> u64 {
        let Some(&(generation, _)) = self.desired.get(id) else {
            return 0;
        };
        self.running.get(id).map_or(0, |running| {
            running.values().filter(|&&g| g == generation).count()
        }) as u64
    }

    fn record(&mut self, entry: &HistoryEntry<Event>) {
        match &entry.event {
            Event::DesiredWritten { id, resource, .. } => match resource {
                Some(resource) => {
                    let wanted = (resource.generation, resource.spec.replicas);
                    self.desired.insert(id.clone(), wanted);
                }
                None => {
                    self.desired.remove(id);
                }
            },
            Event::InstanceStarted { instance, .. } => {
                self.running
                    .entry(instance.resource.clone())
                    .or_default()
                    .insert(instance.id, instance.generation);
            }
            Event::InstanceStopped { instance, .. } => {
                if let Some(running) = self.running.get_mut(&instance.resource) {
                    running.remove(&instance.id);
                }
            }
            _ => return,
        }
        // Totals are recomputed whole: resources number in the hundreds,
        // and the history's instance events in the thousands.
        let point = CurvePoint {
            time_ns: entry.time_ns,
            desired_replicas: self.desired.values().map(|&(_, r)| u64::from(r)).sum(),
            running: self.running.values().map(|r| r.len() as u64).sum(),
            running_current: self.desired.keys().map(|id| self.current(id)).sum(),
        };
        let same = |a: &CurvePoint, b: &CurvePoint| {
            (a.desired_replicas, a.running, a.running_current)
                == (b.desired_replicas, b.running, b.running_current)
        };
        if same(&point, &self.last) && !self.points.is_empty() {
            return;
        }
        match self.points.last_mut() {
            // Several changes at one instant: keep the last.
            Some(last) if last.time_ns == point.time_ns => *last = point,
            _ => self.points.push(point),
        }
        self.last = point;
    }
}

fn mark_of(
    entry: &HistoryEntry<Event>,
    keys: &BTreeMap<String, String>,
    shard_count: u32,
) -> Option<Mark> {
    let by_key = |key: &str| keys.get(key).cloned();
    let (kind, label, resource, shard) = match &entry.event {
        Event::ChargeExecuted {
            key,
            charge_id,
            amount_cents,
        } => (
            MarkKind::Charge,
            format!("charge {charge_id} of {amount_cents} cents for key {key}"),
            by_key(key),
            None,
        ),
        Event::ChargeDeduplicated { key } => (
            MarkKind::ChargeDeduplicated,
            format!("charge deduplicated for key {key}"),
            by_key(key),
            None,
        ),
        Event::InstanceStarted {
            action,
            token,
            instance,
        }
        | Event::InstanceStopped {
            action,
            token,
            instance,
        } => {
            let started = matches!(entry.event, Event::InstanceStarted { .. });
            (
                if started {
                    MarkKind::InstanceStarted
                } else {
                    MarkKind::InstanceStopped
                },
                format!(
                    "{} {}#{} gen {} (instance {}.{}, action {}.{}.{}, token {token})",
                    if started { "start" } else { "stop" },
                    instance.resource,
                    instance.ordinal,
                    instance.generation,
                    instance.id.worker,
                    instance.id.sequence,
                    action.controller,
                    action.boot,
                    action.sequence
                ),
                Some(instance.resource.clone()),
                Some(instance.shard.0),
            )
        }
        Event::ActionRejected {
            action,
            shard,
            token,
            highest_token,
        } => (
            MarkKind::ActionRejected,
            format!(
                "rejected action {}.{}.{} on {shard}: token {token} < {highest_token}",
                action.controller, action.boot, action.sequence
            ),
            None,
            Some(shard.0),
        ),
        Event::LeaseAcquired { lease, token } => {
            let (name, shard) = match lease {
                LeaseName::Shard(shard) => (shard.to_string(), Some(shard.0)),
                LeaseName::Leader => ("leader".to_string(), None),
            };
            (
                MarkKind::LeaseAcquired,
                format!("acquired {name} lease, token {token}"),
                None,
                shard,
            )
        }
        Event::Replayed { key } => (
            MarkKind::Replayed,
            format!("replayed the stored answer for key {key}"),
            by_key(key),
            None,
        ),
        Event::KeyInFlight { key } => (
            MarkKind::KeyConflict,
            format!("409: key {key} in flight"),
            by_key(key),
            None,
        ),
        Event::KeyMismatch { key, .. } => (
            MarkKind::KeyConflict,
            format!("422: key {key} reused with another request"),
            by_key(key),
            None,
        ),
        Event::KeyTakenOver { key, by_completer } => (
            MarkKind::KeyTakenOver,
            format!(
                "key {key} taken over{}",
                if *by_completer {
                    " by the completer"
                } else {
                    ""
                }
            ),
            by_key(key),
            None,
        ),
        _ => return None,
    };
    let shard = shard.or_else(|| resource.as_deref().map(|r| shard_of(r, shard_count).0));
    Some(Mark {
        kind,
        node: entry.node,
        time_ns: entry.time_ns,
        label,
        resource,
        shard,
    })
}

/// Each fault over the lanes it hits: a partition shades its smaller side
/// (the side cut off; shading everyone tells nothing), a clog both ends
/// of the link, a degrade its nodes (every lane when it names none), the
/// rest the one node they name.
fn fault_spans(faults: &[ScheduledFault], names: &[String], end_ns: u64) -> Vec<FaultSpan> {
    faults
        .iter()
        .map(|scheduled| {
            let nodes = match &scheduled.fault {
                Fault::Partition { side_a, side_b, .. } => {
                    if side_b.len() < side_a.len() {
                        side_b.clone()
                    } else {
                        side_a.clone()
                    }
                }
                Fault::Degrade { nodes, .. } if nodes.is_empty() => {
                    (0..names.len() as u32).map(NodeId).collect()
                }
                fault => fault.nodes(),
            };
            FaultSpan {
                kind: scheduled.fault.kind_name(),
                start_ns: scheduled.at_ns,
                end_ns: scheduled
                    .healed_at_ns()
                    .unwrap_or(end_ns)
                    .max(scheduled.at_ns),
                nodes,
                label: fault_line(&scheduled.fault, names),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
