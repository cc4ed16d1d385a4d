//! The workload: a client that creates, updates and deletes resources
//! through the API with idempotency keys, and retries the way a careful
//! real client does.
//!
//! # A logical request and its attempts
//!
//! Every `Timer::Tick` (every `request_interval_ms`, uniform in 0.5x..1.5x)
//! before `workload_end_ms` starts one new *logical request* if fewer than
//! `MAX_OUTSTANDING` are outstanding. A logical request is one operation
//! with one Idempotency-Key and one body; it is sent in *attempts*. Each
//! attempt goes to one API node, or, with `duplicate_send_ppm`, to two at
//! once (a duplicated retry, which exercises 409). Every send has its own
//! request id and its own `Timer::RequestTimeout`.
//!
//! A reply to *any* attempt counts: a final response (`is_final`), a 422 or
//! a 400 ends the logical request. A 409, a 503 or a timeout fails only the
//! send it answers; when every send of the current attempt has failed, the
//! client waits a short random delay (`Timer::Custom(sequence)`: "retry
//! logical request `sequence`") and sends the next attempt with the same
//! key and body, to another API node with `retry_other_api_ppm`. After
//! `max_attempts` attempts it records `RequestAbandoned`. Every reply is
//! recorded as `ResponseReceived`, late or not, for the checkers compare
//! them all.
//!
//! # What a new request does
//!
//! With no known resource, a create. Otherwise `read_ppm` of requests read
//! (no key: reads bypass the ledger): `list_ppm` of them list a page of
//! resources (the first page, or the page after a known resource, of
//! `1..=LIST_LIMIT_MAX` items), the others get a known resource; of the rest
//! `update_ppm` are updates and `delete_ppm` deletes, of a known resource;
//! the rest are creates while fewer than `max_creates` were sent, and
//! updates after that. With `missing_key_ppm` the request carries no key
//! (expect 400); with `reuse_key_ppm` it reuses the key of an earlier
//! request that got a final answer, with a different body (expect 422).
//! Every send records the client's [`Intent`] (a fresh key, a deliberate
//! reuse, no key on purpose, a read) and the request itself, so the
//! checkers can tell a collision of keys from a reuse.
//!
//! After `workload_end_ms` the ticks go on every `probe_interval_ms` as
//! read probes of a known resource (gets and lists, by `list_ppm`), one at
//! a time, for as long as the run
//! lasts: once the faults have healed, the service must answer them
//! (`eventually.available`).
//!
//! # State
//!
//! Everything but timers lives in durable storage ([`ClientState`]), so a
//! restarted client neither reuses its keys by accident nor forgets what it
//! sent: outstanding requests are retried after the restart, and late
//! replies to the previous boot's sends are still recorded.
//!
//! # Time
//!
//! The times kept durably (when the workload began, when a request was
//! first sent, until when a key may be reused) are *client time*, not
//! monotonic readings, which a reboot may restart anywhere. Client time runs
//! on a `BootClock` (`crate::clock`): the latest client time made durable
//! plus this boot's monotonic time, so it survives reboots but stands still
//! while the client is down. The workload therefore lasts
//! `workload_end_ms` of the client's own up time.
//!
//! Standing still makes client time *underestimate* how long ago a reading
//! of an earlier boot was taken, which is the unsafe direction for key
//! reuse: a key reused after its published TTL really ran out would be
//! executed afresh instead of answered 422. So a key is reuse-safe only when
//! its first send was in this boot; every reuse window opened in an earlier
//! boot ends on restart.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use node::{Context, MILLISECOND_NS, Node, NodeId, TimerId};
use serde::{Deserialize, Serialize};

use crate::clock::BootClock;
use crate::config::{ClientSettings, Topology};
use crate::protocol::{
    ApiOp, ApiReply, ApiRequest, ApiResponse, ControlPlane, Event, Intent, Msg, RequestId,
    ResponseBody, Spec, Timer, status,
};
use crate::requests::Requests;

/// Logical requests in flight at once.
pub(crate) const MAX_OUTSTANDING: usize = 2;
/// Resources a client remembers; creates beyond are not remembered.
pub(crate) const MAX_KNOWN_RESOURCES: usize = 1_024;
/// Finished keys kept as candidates for reuse (oldest dropped first).
pub(crate) const MAX_FINISHED_KEYS: usize = 256;
/// Sends remembered for correlating replies (oldest finished dropped first).
/// A reply to a forgotten send is not recorded: far beyond any scenario.
pub(crate) const MAX_SENT: usize = 100_000;
/// Shortest pause before a retry.
pub(crate) const RETRY_DELAY_MS_MIN: u64 = 50;
/// Longest pause before a retry.
pub const RETRY_DELAY_MS_MAX: u64 = 300;
/// The largest page a client's list asks for: small, so that the dozens
/// of resources of a run take several pages and the cursor is exercised.
pub(crate) const LIST_LIMIT_MAX: u64 = 8;

/// One send of a logical request: what a reply to it is matched with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The logical request's sequence.
    pub logical: u64,
    /// The key sent.
    pub key: Option<String>,
    /// The request's fingerprint.
    pub fingerprint: u64,
}

/// A logical request not yet answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logical {
    /// The Idempotency-Key, the same for every attempt.
    pub key: Option<String>,
    /// The body, the same for every attempt.
    pub op: ApiOp,
    /// Whether the key belongs to an earlier request (a 422 is expected).
    pub reused_key: bool,
    /// What the client means by it, recorded with every send.
    pub intent: Intent,
    /// The current attempt, from 0.
    pub attempt: u32,
    /// When the first attempt was sent (client ms): the key cannot have
    /// been recorded, nor its lifetime begun, before then.
    pub first_sent_ms: u64,
    /// The API node of the current attempt's first send.
    pub api: NodeId,
    /// Sends of the current attempt not yet failed.
    pub in_flight: BTreeSet<RequestId>,
    /// A retry timer is armed.
    pub retry_pending: bool,
}

/// A key that got a final answer, a candidate for reuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedKey {
    /// The key.
    pub key: String,
    /// The fingerprint stored with it.
    pub fingerprint: u64,
    /// Reuse it only before this time (client ms), well inside its
    /// published TTL, so the API still holds it and answers 422. Ends on a
    /// restart (see the module doc's "Time").
    pub reusable_until_ms: u64,
}

/// A client's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientState {
    /// The client time of the first start, in ms: the workload's clock
    /// starts here (a monotonic clock's zero means nothing).
    pub started_at_ms: Option<u64>,
    /// The latest client time (ms) used: a restarted client's clock resumes
    /// just after it (see the module doc's "Time").
    #[serde(default)]
    pub clock_ms: Option<u64>,
    /// Numbers logical requests, names and keys; never reused.
    pub next_sequence: u64,
    /// Creates sent with a fresh key.
    pub creates: u32,
    /// Resources known to exist, with the image last seen.
    pub known: BTreeMap<String, u32>,
    /// Keys that got a final answer, oldest first.
    pub finished: VecDeque<FinishedKey>,
    /// Every send remembered, by request id.
    pub sent: BTreeMap<RequestId, Sent>,
    /// Logical requests in flight, by sequence.
    pub outstanding: BTreeMap<u64, Logical>,
}

/// One client of the workload.
pub struct ClientNode {
    /// Volatile: this boot's client clock, started by `on_start`.
    clock: Option<BootClock>,
    topology: Topology,
    settings: ClientSettings,
    /// Volatile: request ids within this boot, and the timeout of
    /// each send in flight. Replies are matched through the durable
    /// `ClientState::sent` instead, so even a late one is recorded.
    requests: Requests<()>,
    /// Volatile: the retry timer of each logical request waiting to retry.
    retries: BTreeMap<u64, TimerId>,
}

impl ClientNode {
    /// A client sending to `topology.apis` (which must not be empty).
    pub fn new(topology: Topology, settings: ClientSettings) -> Self {
        assert!(!topology.apis.is_empty(), "a client needs an API node");
        let timeout_ns = settings.request_timeout_ms.max(1) * MILLISECOND_NS;
        Self {
            clock: None,
            topology,
            settings,
            // Request ids count from 0, as they always have here.
            requests: Requests::new(0, timeout_ns),
            retries: BTreeMap::new(),
        }
    }

    // Inputs.

    fn handle_tick(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        if self.workload_elapsed_ms(ctx) >= self.settings.workload_end_ms {
            // The workload is over; retries go on, and a read probe now and
            // then shows whether the service still answers.
            return self.probe(ctx);
        }
        if state(ctx).outstanding.len() < MAX_OUTSTANDING {
            self.start_request(ctx);
        }
        self.arm_tick(ctx);
    }

    /// After the workload: reads a known resource, if nothing is
    /// outstanding, and arms the next probe.
    fn probe(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        if self.settings.probe_interval_ms == 0 {
            return;
        }
        let known_count = state(ctx).known.len();
        if known_count > 0 && state(ctx).outstanding.is_empty() {
            let index = ctx.rng().index(known_count);
            let id = state(ctx).known.keys().nth(index).cloned();
            let op = self.read_op(ctx, id.expect("index below the count"));
            self.start_logical(ctx, op, None, Intent::Read);
        }
        let delay_ms = self.settings.probe_interval_ms;
        ctx.set_timer(delay_ms * MILLISECOND_NS, Timer::Tick);
    }

    fn handle_reply(&mut self, ctx: &mut Context<'_, ControlPlane>, reply: ApiReply) {
        let Some(sent) = state(ctx).sent.get(&reply.request_id).cloned() else {
            tracing::debug!(request_id = reply.request_id, "reply to an unknown send");
            return;
        };
        ctx.record(Event::ResponseReceived {
            request_id: reply.request_id,
            key: sent.key.clone(),
            fingerprint: sent.fingerprint,
            response: reply.response.clone(),
            replayed: reply.replayed,
        });
        let code = reply.response.status;
        if reply.response.is_final() || code == status::UNPROCESSABLE || code == status::BAD_REQUEST
        {
            self.finish(ctx, sent.logical, &reply);
        } else {
            // 409 or 503: this send failed; the request goes on.
            self.send_failed(ctx, sent.logical, reply.request_id);
        }
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        timer: TimerId,
        request_id: RequestId,
    ) {
        self.requests.timed_out(timer, request_id);
        if let Some(sent) = state(ctx).sent.get(&request_id).cloned() {
            self.send_failed(ctx, sent.logical, request_id);
        }
    }

    fn handle_retry(&mut self, ctx: &mut Context<'_, ControlPlane>, logical: u64) {
        self.retries.remove(&logical);
        let other_api = ctx.rng().chance_ppm(self.settings.retry_other_api_ppm);
        let Some(entry) = state(ctx).outstanding.get(&logical).cloned() else {
            return;
        };
        if !entry.retry_pending {
            return; // A stale timer: the request was answered meanwhile.
        }
        let api = if other_api {
            self.other_api(ctx, entry.api)
        } else {
            entry.api
        };
        let entry = state(ctx).outstanding.get_mut(&logical).expect("checked");
        entry.retry_pending = false;
        entry.attempt += 1;
        entry.api = api;
        self.send_attempt(ctx, logical);
    }

    // Helpers.

    /// Picks what to do and sends its first attempt.
    fn start_request(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        let sequence = state(ctx).next_sequence;
        let op = self.choose_op(ctx, sequence);
        if op.is_read() {
            return self.start_logical(ctx, op, None, Intent::Read);
        }
        let (key, intent) = self.choose_key(ctx, sequence, &op);
        if matches!(op, ApiOp::Create { .. }) && intent == Intent::Fresh {
            state(ctx).creates += 1;
        }
        self.start_logical(ctx, op, key, intent);
    }

    /// Starts logical request `op` with `key` and sends its first attempt.
    fn start_logical(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        op: ApiOp,
        key: Option<String>,
        intent: Intent,
    ) {
        let sequence = state(ctx).next_sequence;
        state(ctx).next_sequence += 1;
        let api = self.topology.apis[ctx.rng().index(self.topology.apis.len())];
        let logical = Logical {
            key,
            op,
            reused_key: matches!(intent, Intent::Reuse { .. }),
            intent,
            attempt: 0,
            first_sent_ms: self.now_ms(ctx),
            api,
            in_flight: BTreeSet::new(),
            retry_pending: false,
        };
        let outstanding = &mut state(ctx).outstanding;
        assert!(outstanding.len() < MAX_OUTSTANDING);
        outstanding.insert(sequence, logical);
        self.send_attempt(ctx, sequence);
    }

    /// A create when nothing is known; else by the configured shares.
    fn choose_op(&mut self, ctx: &mut Context<'_, ControlPlane>, sequence: u64) -> ApiOp {
        let replicas = ctx
            .rng()
            .range_inclusive(1, u64::from(self.settings.max_replicas));
        let replicas = u32::try_from(replicas).expect("at most max_replicas");
        let known_count = state(ctx).known.len();
        if known_count == 0 {
            return self.create_op(ctx, sequence, replicas);
        }
        let roll = ctx.rng().below(1_000_000);
        let index = ctx.rng().index(known_count);
        let (id, image) = state(ctx)
            .known
            .iter()
            .nth(index)
            .map(|(id, image)| (id.clone(), *image))
            .expect("index below the count");
        if ctx.rng().chance_ppm(self.settings.read_ppm) {
            return self.read_op(ctx, id);
        }
        let update_ppm = u64::from(self.settings.update_ppm);
        let delete_ppm = u64::from(self.settings.delete_ppm);
        let may_create = state(ctx).creates < self.settings.max_creates;
        if roll >= update_ppm + delete_ppm && may_create {
            self.create_op(ctx, sequence, replicas)
        } else if roll >= update_ppm && roll < update_ppm + delete_ppm {
            ApiOp::Delete { id }
        } else {
            let spec = Spec {
                replicas,
                image: image.saturating_add(1),
            };
            ApiOp::Update { id, spec }
        }
    }

    /// A read about known resource `id`: a get of it, or with `list_ppm`
    /// a list of the first page or of the page just after it.
    fn read_op(&mut self, ctx: &mut Context<'_, ControlPlane>, id: String) -> ApiOp {
        if !ctx.rng().chance_ppm(self.settings.list_ppm) {
            return ApiOp::Get { id };
        }
        let from_start = ctx.rng().chance_ppm(500_000);
        let limit = ctx.rng().range_inclusive(1, LIST_LIMIT_MAX);
        ApiOp::List {
            after: (!from_start).then_some(id),
            limit: u32::try_from(limit).expect("at most LIST_LIMIT_MAX"),
        }
    }

    fn create_op(
        &self,
        ctx: &mut Context<'_, ControlPlane>,
        sequence: u64,
        replicas: u32,
    ) -> ApiOp {
        ApiOp::Create {
            name: format!("c{}-{sequence}", ctx.id().0),
            spec: Spec { replicas, image: 1 },
        }
    }

    /// A fresh key, no key, or a finished key reused with another body.
    fn choose_key(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        sequence: u64,
        op: &ApiOp,
    ) -> (Option<String>, Intent) {
        let missing = ctx.rng().chance_ppm(self.settings.missing_key_ppm);
        let reuse = ctx.rng().chance_ppm(self.settings.reuse_key_ppm);
        if missing {
            return (None, Intent::NoKey);
        }
        let now_ms = self.now_ms(ctx);
        if reuse {
            // Counted, then the drawn one found by a second walk: only the
            // key reused is copied, and only when one is.
            let fingerprint = op.fingerprint();
            let reusable = |old: &&FinishedKey| {
                old.fingerprint != fingerprint && now_ms < old.reusable_until_ms
            };
            let count = state(ctx).finished.iter().filter(reusable).count();
            if count > 0 {
                let index = ctx.rng().index(count);
                let old = state(ctx)
                    .finished
                    .iter()
                    .filter(reusable)
                    .nth(index)
                    .expect("the drawn index is below the count");
                let first_fingerprint = old.fingerprint;
                return (Some(old.key.clone()), Intent::Reuse { first_fingerprint });
            }
        }
        (Some(format!("k{}-{sequence}", ctx.id().0)), Intent::Fresh)
    }

    /// One send of the current attempt failed; retry once all have.
    fn send_failed(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        logical: u64,
        request_id: RequestId,
    ) {
        let Some(entry) = state(ctx).outstanding.get_mut(&logical) else {
            return; // Already answered: a late failure changes nothing.
        };
        if !entry.in_flight.remove(&request_id) {
            return; // An earlier attempt's send, or already failed.
        }
        let attempt_over = entry.in_flight.is_empty() && !entry.retry_pending;
        self.requests.cancel(ctx, request_id);
        if attempt_over {
            self.retry_or_abandon(ctx, logical);
        }
    }

    fn retry_or_abandon(&mut self, ctx: &mut Context<'_, ControlPlane>, logical: u64) {
        let max_attempts = self.settings.max_attempts.max(1);
        let entry = state(ctx).outstanding.get(&logical).expect("outstanding");
        assert!(entry.in_flight.is_empty() && !entry.retry_pending);
        if entry.attempt + 1 >= max_attempts {
            let entry = self.forget(ctx, logical);
            ctx.record(Event::RequestAbandoned { key: entry.key });
            return;
        }
        let delay_ms = ctx
            .rng()
            .range_inclusive(RETRY_DELAY_MS_MIN, RETRY_DELAY_MS_MAX);
        let timer = ctx.set_timer(delay_ms * MILLISECOND_NS, Timer::Custom(logical));
        self.retries.insert(logical, timer);
        let entry = state(ctx)
            .outstanding
            .get_mut(&logical)
            .expect("outstanding");
        entry.retry_pending = true;
    }

    /// Ends a logical request with `reply` and learns from it.
    fn finish(&mut self, ctx: &mut Context<'_, ControlPlane>, logical: u64, reply: &ApiReply) {
        if !state(ctx).outstanding.contains_key(&logical) {
            return; // Finished already: the reply was only recorded.
        }
        let entry = self.forget(ctx, logical);
        let state = state(ctx);
        learn_resources(state, &entry.op, &reply.response);
        if let (true, false, Some(key)) = (reply.response.is_final(), entry.reused_key, entry.key) {
            let reusable_until_ms = self.reusable_until_ms(entry.first_sent_ms, reply.key_ttl_ms);
            state.finished.push_back(FinishedKey {
                key,
                fingerprint: entry.op.fingerprint(),
                reusable_until_ms,
            });
            if state.finished.len() > MAX_FINISHED_KEYS {
                state.finished.pop_front();
            }
        }
    }

    /// Removes a logical request and cancels its timers.
    fn forget(&mut self, ctx: &mut Context<'_, ControlPlane>, logical: u64) -> Logical {
        let entry = state(ctx)
            .outstanding
            .remove(&logical)
            .expect("outstanding");
        for &request_id in &entry.in_flight {
            self.requests.cancel(ctx, request_id);
        }
        if let Some(timer) = self.retries.remove(&logical) {
            ctx.cancel_timer(timer);
        }
        entry
    }

    /// Any API node but `current`, when there is another.
    fn other_api(&self, ctx: &mut Context<'_, ControlPlane>, current: NodeId) -> NodeId {
        let others: Vec<NodeId> = self
            .topology
            .apis
            .iter()
            .copied()
            .filter(|&api| api != current)
            .collect();
        if others.is_empty() {
            return current;
        }
        others[ctx.rng().index(others.len())]
    }

    // Outputs.

    fn arm_tick(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        let interval_ms = self.settings.request_interval_ms.max(1);
        let delay_ms = ctx
            .rng()
            .range_inclusive(interval_ms / 2, interval_ms * 3 / 2)
            .max(1);
        ctx.set_timer(delay_ms * MILLISECOND_NS, Timer::Tick);
    }

    /// Sends the current attempt: to its API, and with `duplicate_send_ppm`
    /// to a second one at once.
    fn send_attempt(&mut self, ctx: &mut Context<'_, ControlPlane>, logical: u64) {
        let api = state(ctx).outstanding[&logical].api;
        let duplicate = ctx.rng().chance_ppm(self.settings.duplicate_send_ppm);
        self.send_one(ctx, logical, api);
        if duplicate && self.topology.apis.len() > 1 {
            let second = self.other_api(ctx, api);
            self.send_one(ctx, logical, second);
        }
    }

    fn send_one(&mut self, ctx: &mut Context<'_, ControlPlane>, logical: u64, api: NodeId) {
        let request_id = self.requests.next_id(ctx);
        let state = state(ctx);
        let entry = state.outstanding.get_mut(&logical).expect("outstanding");
        entry.in_flight.insert(request_id);
        let (key, op, attempt, intent) = (
            entry.key.clone(),
            entry.op.clone(),
            entry.attempt,
            entry.intent,
        );
        let fingerprint = op.fingerprint();
        remember_send(
            state,
            request_id,
            Sent {
                logical,
                key: key.clone(),
                fingerprint,
            },
        );
        ctx.record(Event::RequestSent {
            request_id,
            api,
            key: key.clone(),
            fingerprint,
            attempt,
            logical,
            intent,
            op: op.clone(),
        });
        let request = ApiRequest {
            request_id,
            idempotency_key: key,
            op,
        };
        ctx.send(api, Msg::Api(request));
        self.requests.track(ctx, request_id, api, ());
    }
}

impl Node<ControlPlane> for ClientNode {
    fn on_start(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        self.resume_clock(ctx);
        // After a restart the sends in flight are lost to us (their timers
        // died), though their replies still count: retry each request.
        let resumed: Vec<u64> = state(ctx).outstanding.keys().copied().collect();
        for logical in resumed {
            let entry = state(ctx).outstanding.get_mut(&logical).expect("listed");
            entry.in_flight.clear();
            entry.retry_pending = false;
            self.retry_or_abandon(ctx, logical);
        }
        if self.workload_elapsed_ms(ctx) < self.settings.workload_end_ms {
            self.arm_tick(ctx);
        } else if self.settings.probe_interval_ms > 0 {
            let delay_ms = self.settings.probe_interval_ms;
            ctx.set_timer(delay_ms * MILLISECOND_NS, Timer::Tick);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, ControlPlane>, from: NodeId, message: Msg) {
        match message {
            Msg::ApiReply(reply) => self.handle_reply(ctx, *reply),
            other => tracing::debug!(%from, "client ignores {other:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, ControlPlane>, timer: TimerId, tag: Timer) {
        match tag {
            Timer::Tick => self.handle_tick(ctx),
            Timer::RequestTimeout(request_id) => self.handle_timeout(ctx, timer, request_id),
            Timer::Custom(logical) => self.handle_retry(ctx, logical),
            other => tracing::debug!("client ignores timer {other:?}"),
        }
    }
}

/// Client time (see the module doc's "Time").
impl ClientNode {
    /// Starts this boot's clock where the last boot's left off, the
    /// workload's clock on the first start, and ends every reuse window of
    /// an earlier boot: the client cannot tell how long it was down, so it
    /// cannot tell whether those keys are still inside their TTL.
    fn resume_clock(&mut self, ctx: &mut Context<'_, ControlPlane>) {
        let mono_ns = ctx.mono_ns();
        let clock = BootClock::resume(mono_ns, state(ctx).clock_ms);
        self.clock = Some(clock);
        let now_ms = self.now_ms(ctx);
        state(ctx).started_at_ms.get_or_insert(now_ms);
        if ctx.boot() > 0 {
            for old in &mut state(ctx).finished {
                old.reusable_until_ms = old.reusable_until_ms.min(clock.began_ms());
            }
        }
    }

    /// Client time now, made durable as the latest used, so the next boot
    /// resumes after it.
    fn now_ms(&self, ctx: &mut Context<'_, ControlPlane>) -> u64 {
        let clock = self.clock.expect("on_start starts the client clock");
        let now_ms = clock.now_ms(ctx.mono_ns());
        let state = state(ctx);
        debug_assert!(state.clock_ms.is_none_or(|last_ms| last_ms <= now_ms));
        state.clock_ms = Some(now_ms);
        now_ms
    }

    /// Milliseconds of client time since the client first started: the
    /// workload's clock.
    fn workload_elapsed_ms(&self, ctx: &mut Context<'_, ControlPlane>) -> u64 {
        let now_ms = self.now_ms(ctx);
        now_ms.saturating_sub(state(ctx).started_at_ms.unwrap_or(now_ms))
    }

    /// Until when a key that got a final answer may be reused with another
    /// body: the first half of its published TTL, counted from our first
    /// send (the key's lifetime began after that; half the TTL leaves room
    /// for clock drift and for the reusing request's own retries, so a 422
    /// is expected). Never when the first send was in an earlier boot:
    /// client time stood still while the client was down, so the time since
    /// that send is unknown and may exceed the TTL.
    fn reusable_until_ms(&self, first_sent_ms: u64, key_ttl_ms: Option<u64>) -> u64 {
        let clock = self.clock.expect("on_start starts the client clock");
        if first_sent_ms < clock.began_ms() {
            return 0;
        }
        key_ttl_ms.map_or(u64::MAX, |ttl_ms| first_sent_ms.saturating_add(ttl_ms / 2))
    }
}

fn state<'c>(ctx: &'c mut Context<'_, ControlPlane>) -> &'c mut ClientState {
    ctx.durable_mut().client_mut()
}

/// Updates the known resources from the answer that ended a request: a
/// resource body (201, or 200 for an update or a get) is remembered with
/// its image, a deletion or a 404 forgets the id. A list's page teaches
/// nothing: it shows other clients' resources too.
fn learn_resources(state: &mut ClientState, op: &ApiOp, response: &ApiResponse) {
    let forgotten = match (&response.body, op) {
        (ResponseBody::Deleted { id }, _) => Some(id),
        (_, ApiOp::Update { id, .. } | ApiOp::Delete { id } | ApiOp::Get { id })
            if response.status == status::NOT_FOUND =>
        {
            Some(id)
        }
        _ => None,
    };
    if let Some(id) = forgotten {
        state.known.remove(id);
    }
    let resource = match &response.body {
        ResponseBody::Resource(resource) => resource,
        ResponseBody::Read(view) => &view.resource,
        _ => return,
    };
    if state.known.len() < MAX_KNOWN_RESOURCES || state.known.contains_key(&resource.id) {
        state.known.insert(resource.id.clone(), resource.spec.image);
    }
    debug_assert!(state.known.len() <= MAX_KNOWN_RESOURCES);
}

/// Remembers a send, dropping the oldest send of a finished request when
/// full (never one an outstanding request may still need).
fn remember_send(state: &mut ClientState, request_id: RequestId, sent: Sent) {
    if state.sent.len() >= MAX_SENT {
        let oldest = state
            .sent
            .iter()
            .find(|(_, old)| !state.outstanding.contains_key(&old.logical))
            .map(|(id, _)| *id);
        if let Some(oldest) = oldest {
            state.sent.remove(&oldest);
        }
    }
    state.sent.insert(request_id, sent);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Resource;
    use node::testing::{Harness, Output};

    const API_A: NodeId = NodeId(2);
    const API_B: NodeId = NodeId(3);
    const CLIENT: NodeId = NodeId(4);

    /// A predictable workload: no duplicates, no key tricks, same API.
    fn settings() -> ClientSettings {
        ClientSettings {
            duplicate_send_ppm: 0,
            reuse_key_ppm: 0,
            missing_key_ppm: 0,
            retry_other_api_ppm: 0,
            read_ppm: 0,
            list_ppm: 0,
            probe_interval_ms: 0,
            ..ClientSettings::default()
        }
    }

    #[test]
    fn after_the_workload_a_probe_reads_a_known_resource_every_interval() {
        let mut harness = started(ClientSettings {
            workload_end_ms: 1_000,
            probe_interval_ms: 500,
            ..settings()
        });
        let mut reads = Vec::new();
        for _ in 0..40 {
            let output = harness
                .fire_timer(|tag| *tag == Timer::Tick)
                .expect("probes keep the tick armed");
            for (_, request) in requests(&output) {
                match &request.op {
                    ApiOp::Get { id } => {
                        assert!(harness.now_ns() >= 1_000 * MILLISECOND_NS);
                        assert_eq!(request.idempotency_key, None, "reads need no key");
                        assert!(output.records.iter().any(|event| matches!(
                            event,
                            Event::RequestSent {
                                intent: Intent::Read,
                                ..
                            }
                        )));
                        reads.push((harness.now_ns(), id.clone()));
                    }
                    _ => assert!(harness.now_ns() < 1_000 * MILLISECOND_NS),
                }
                reply(
                    &mut harness,
                    request.request_id,
                    status::CREATED,
                    resource("r", 1),
                );
            }
        }
        assert!(reads.len() >= 30, "a probe per interval: {}", reads.len());
        assert!(reads.iter().all(|(_, id)| id == "r"));
        let gaps: Vec<u64> = reads.windows(2).map(|w| w[1].0 - w[0].0).collect();
        assert!(
            gaps.iter().all(|&gap| gap == 500 * MILLISECOND_NS),
            "{gaps:?}"
        );
    }

    #[test]
    fn with_read_ppm_a_known_resource_is_read_without_a_key() {
        let mut harness = started(ClientSettings {
            read_ppm: 1_000_000,
            ..settings()
        });
        let first = requests(&tick(&mut harness)).remove(0).1;
        assert!(
            matches!(first.op, ApiOp::Create { .. }),
            "nothing known yet"
        );
        reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r", 1),
        );
        let second = requests(&tick(&mut harness)).remove(0).1;
        assert_eq!(second.op, ApiOp::Get { id: "r".into() });
        assert_eq!(second.idempotency_key, None);
        // A 404 forgets the resource: the next request is a create.
        reply(&mut harness, second.request_id, status::NOT_FOUND, error());
        let third = requests(&tick(&mut harness)).remove(0).1;
        assert!(matches!(third.op, ApiOp::Create { .. }));
    }

    #[test]
    fn with_list_ppm_reads_list_pages_from_the_start_or_after_a_known_resource() {
        let mut harness = started(ClientSettings {
            read_ppm: 1_000_000,
            list_ppm: 1_000_000,
            workload_end_ms: 20_000,
            probe_interval_ms: 500,
            ..settings()
        });
        let first = requests(&tick(&mut harness)).remove(0).1;
        assert!(matches!(first.op, ApiOp::Create { .. }));
        reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r", 1),
        );
        let (mut from_start, mut after_known, mut limits) = (0, 0, BTreeSet::new());
        for _ in 0..60 {
            let output = harness
                .fire_timer(|tag| *tag == Timer::Tick)
                .expect("the tick stays armed");
            for (_, request) in requests(&output) {
                let ApiOp::List { after, limit } = &request.op else {
                    panic!("every read lists: {:?}", request.op);
                };
                assert_eq!(request.idempotency_key, None, "reads need no key");
                match after.as_deref() {
                    None => from_start += 1,
                    Some(after) => {
                        assert_eq!(after, "r", "the page after a known resource");
                        after_known += 1;
                    }
                }
                assert!((1..=LIST_LIMIT_MAX).contains(&u64::from(*limit)));
                limits.insert(*limit);
                let page = ResponseBody::Page {
                    items: vec![],
                    next: None,
                };
                reply(&mut harness, request.request_id, status::OK, page);
            }
        }
        assert!(
            from_start > 5 && after_known > 5,
            "{from_start} {after_known}"
        );
        assert!(limits.len() > 3, "limits vary: {limits:?}");
        // A page teaches nothing, so the resource is still known and read.
        assert_eq!(harness.durable().client().unwrap().known.len(), 1);
    }

    #[test]
    fn a_get_s_answer_teaches_the_image_it_shows() {
        let mut state = ClientState::default();
        state.known.insert("r".into(), 1);
        let view = crate::protocol::ResourceView {
            resource: Resource {
                id: "r".into(),
                name: "n".into(),
                spec: Spec {
                    replicas: 1,
                    image: 5,
                },
                generation: 3,
            },
            status: None,
        };
        let response = ApiResponse {
            status: status::OK,
            body: ResponseBody::Read(view),
        };
        learn_resources(&mut state, &ApiOp::Get { id: "r".into() }, &response);
        assert_eq!(state.known.get("r"), Some(&5));
        // A page teaches nothing: it shows other clients' resources too.
        let ResponseBody::Read(mut view) = response.body else {
            unreachable!()
        };
        view.resource.id = "theirs".into();
        let page = ApiResponse {
            status: status::OK,
            body: ResponseBody::Page {
                items: vec![view],
                next: None,
            },
        };
        let list = ApiOp::List {
            after: None,
            limit: 5,
        };
        learn_resources(&mut state, &list, &page);
        assert_eq!(state.known.len(), 1);
    }

    fn started(settings: ClientSettings) -> Harness<ControlPlane> {
        let topology = Topology {
            store: NodeId(0),
            billing: NodeId(1),
            apis: vec![API_A, API_B],
            clients: vec![CLIENT],
            ..Topology::default()
        };
        let node = ClientNode::new(topology, settings);
        let mut harness = Harness::new(11, CLIENT, Box::new(node));
        let output = harness.start();
        assert!(output.sent.is_empty());
        assert_eq!(harness.pending_timers(), vec![Timer::Tick]);
        harness
    }

    fn tick(harness: &mut Harness<ControlPlane>) -> Output<ControlPlane> {
        harness
            .fire_timer(|tag| *tag == Timer::Tick)
            .expect("a tick is pending")
    }

    fn requests(output: &Output<ControlPlane>) -> Vec<(NodeId, ApiRequest)> {
        output
            .sent
            .iter()
            .filter_map(|(to, msg)| match msg {
                Msg::Api(request) => Some((*to, request.clone())),
                _ => None,
            })
            .collect()
    }

    /// The one request an output sent.
    fn only_request(output: &Output<ControlPlane>) -> ApiRequest {
        let mut sent = requests(output);
        assert_eq!(sent.len(), 1, "one request: {sent:?}");
        sent.remove(0).1
    }

    fn resource(id: &str, image: u32) -> ResponseBody {
        ResponseBody::Resource(Resource {
            id: id.into(),
            name: "n".into(),
            spec: Spec { replicas: 1, image },
            generation: 1,
        })
    }

    fn error() -> ResponseBody {
        ResponseBody::Error {
            message: "no".into(),
        }
    }

    fn reply(
        harness: &mut Harness<ControlPlane>,
        request_id: RequestId,
        status: u16,
        body: ResponseBody,
    ) -> Output<ControlPlane> {
        let reply = ApiReply {
            request_id,
            response: ApiResponse { status, body },
            replayed: false,
            key_ttl_ms: Some(86_400_000),
            key_expires_at_ms: Some(86_400_000),
        };
        harness.deliver(API_A, Msg::ApiReply(Box::new(reply)))
    }

    fn fire_retry(harness: &mut Harness<ControlPlane>) -> Option<Output<ControlPlane>> {
        harness.fire_timer(|tag| matches!(tag, Timer::Custom(_)))
    }

    fn fire_timeout(harness: &mut Harness<ControlPlane>) -> Output<ControlPlane> {
        harness
            .fire_timer(|tag| matches!(tag, Timer::RequestTimeout(_)))
            .expect("a timeout is pending")
    }

    fn has_timer(harness: &Harness<ControlPlane>, wanted: impl Fn(&Timer) -> bool) -> bool {
        harness.pending_timers().iter().any(wanted)
    }

    fn outstanding(harness: &Harness<ControlPlane>) -> usize {
        harness.durable().client().unwrap().outstanding.len()
    }

    fn received(output: &Output<ControlPlane>) -> usize {
        output
            .records
            .iter()
            .filter(|event| matches!(event, Event::ResponseReceived { .. }))
            .count()
    }

    #[test]
    fn a_create_is_sent_with_a_fresh_key_and_recorded() {
        let mut harness = started(settings());
        let output = tick(&mut harness);
        let (api, request) = requests(&output).remove(0);
        assert!(api == API_A || api == API_B);
        assert_eq!(request.idempotency_key.as_deref(), Some("k4-0"));
        let ApiOp::Create { name, spec } = &request.op else {
            panic!("the first request is a create: {request:?}");
        };
        assert_eq!(name, "c4-0");
        assert_eq!(spec.image, 1);
        assert!((1..=3).contains(&spec.replicas));
        assert_eq!(
            output.records,
            vec![Event::RequestSent {
                request_id: request.request_id,
                api,
                key: Some("k4-0".into()),
                fingerprint: request.op.fingerprint(),
                attempt: 0,
                logical: 0,
                intent: Intent::Fresh,
                op: request.op.clone(),
            }]
        );
        let timeout = output
            .timers
            .iter()
            .find(|(_, _, tag)| *tag == Timer::RequestTimeout(request.request_id))
            .expect("a timeout per send");
        assert_eq!(timeout.1, 600 * MILLISECOND_NS);
        assert!(has_timer(&harness, |tag| *tag == Timer::Tick));
    }

    #[test]
    fn a_timeout_retries_with_the_same_key_and_body() {
        let mut harness = started(settings());
        let first = only_request(&tick(&mut harness));
        let output = fire_timeout(&mut harness);
        let delay_ns = output.timers[0].1;
        assert!((50 * MILLISECOND_NS..=300 * MILLISECOND_NS).contains(&delay_ns));
        let output = fire_retry(&mut harness).expect("a retry is armed");
        let retry = only_request(&output);
        assert_eq!(retry.idempotency_key, first.idempotency_key);
        assert_eq!(retry.op, first.op);
        assert_ne!(retry.request_id, first.request_id);
        assert!(matches!(
            &output.records[..],
            [Event::RequestSent { attempt: 1, .. }]
        ));
    }

    #[test]
    fn a_conflict_retries_and_a_reply_to_an_earlier_attempt_counts() {
        let mut harness = started(settings());
        let first = only_request(&tick(&mut harness));
        let output = reply(&mut harness, first.request_id, status::CONFLICT, error());
        assert_eq!(received(&output), 1);
        assert!(!has_timer(&harness, |tag| matches!(
            tag,
            Timer::RequestTimeout(_)
        )));
        let retry = only_request(&fire_retry(&mut harness).expect("retry after 409"));
        assert_eq!(retry.idempotency_key, first.idempotency_key);
        // The first attempt's late 201 ends the request.
        let output = reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 1),
        );
        assert_eq!(received(&output), 1);
        assert_eq!(outstanding(&harness), 0);
        assert!(!has_timer(&harness, |tag| matches!(
            tag,
            Timer::RequestTimeout(_)
        )));
        let known = &harness.durable().client().unwrap().known;
        assert_eq!(known.get("r1"), Some(&1));
    }

    #[test]
    fn a_final_answer_ends_the_request_and_late_replies_are_still_recorded() {
        let mut harness = started(settings());
        let first = only_request(&tick(&mut harness));
        reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 1),
        );
        assert_eq!(outstanding(&harness), 0);
        assert!(!has_timer(&harness, |tag| !matches!(tag, Timer::Tick)));
        // A duplicate of the reply, and a 503 after the fact: both recorded,
        // neither retries.
        let output = reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 1),
        );
        assert_eq!(received(&output), 1);
        let output = reply(&mut harness, first.request_id, status::UNAVAILABLE, error());
        assert_eq!(received(&output), 1);
        assert!(output.sent.is_empty() && output.timers.is_empty());
        assert!(fire_retry(&mut harness).is_none());
    }

    #[test]
    fn a_duplicated_send_retries_only_once_both_copies_failed() {
        let mut harness = started(ClientSettings {
            duplicate_send_ppm: 1_000_000,
            ..settings()
        });
        let sent = requests(&tick(&mut harness));
        assert_eq!(sent.len(), 2);
        assert_ne!(sent[0].0, sent[1].0, "two different API nodes");
        assert_eq!(sent[0].1.idempotency_key, sent[1].1.idempotency_key);
        assert_ne!(sent[0].1.request_id, sent[1].1.request_id);
        let output = reply(
            &mut harness,
            sent[0].1.request_id,
            status::CONFLICT,
            error(),
        );
        assert!(output.timers.is_empty(), "the other copy may still succeed");
        let output = fire_timeout(&mut harness);
        assert!(matches!(&output.timers[..], [(_, _, Timer::Custom(0))]));
    }

    #[test]
    fn a_missing_key_happens_at_its_rate_and_a_400_ends_the_request() {
        let mut harness = started(ClientSettings {
            missing_key_ppm: 1_000_000,
            ..settings()
        });
        let request = only_request(&tick(&mut harness));
        assert_eq!(request.idempotency_key, None);
        let output = reply(
            &mut harness,
            request.request_id,
            status::BAD_REQUEST,
            error(),
        );
        assert_eq!(received(&output), 1);
        assert_eq!(outstanding(&harness), 0);
        assert!(fire_retry(&mut harness).is_none());
        assert_eq!(harness.durable().client().unwrap().creates, 0);
    }

    #[test]
    fn a_reused_key_happens_at_its_rate_with_another_body_and_a_422_ends_it() {
        let mut harness = started(ClientSettings {
            reuse_key_ppm: 1_000_000,
            ..settings()
        });
        let first = only_request(&tick(&mut harness));
        assert_eq!(
            first.idempotency_key.as_deref(),
            Some("k4-0"),
            "nothing to reuse yet"
        );
        reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 1),
        );
        let second = only_request(&tick(&mut harness));
        assert_eq!(second.idempotency_key, first.idempotency_key);
        assert_ne!(second.op.fingerprint(), first.op.fingerprint());
        let output = reply(
            &mut harness,
            second.request_id,
            status::UNPROCESSABLE,
            error(),
        );
        assert_eq!(received(&output), 1);
        assert_eq!(outstanding(&harness), 0);
        assert!(fire_retry(&mut harness).is_none());
    }

    #[test]
    fn a_key_is_reused_only_in_the_first_half_of_its_ttl_counted_from_the_first_send() {
        let reuse_at = |reply_after_ms: u64| {
            let mut harness = started(ClientSettings {
                reuse_key_ppm: 1_000_000,
                ..settings()
            });
            let first = only_request(&tick(&mut harness));
            harness.advance(reply_after_ms * MILLISECOND_NS);
            let stored = ApiReply {
                request_id: first.request_id,
                response: ApiResponse {
                    status: status::CREATED,
                    body: resource("r1", 1),
                },
                replayed: false,
                key_ttl_ms: Some(2_000),
                key_expires_at_ms: Some(2_000),
            };
            harness.deliver(API_A, Msg::ApiReply(Box::new(stored)));
            let next = only_request(&tick(&mut harness));
            next.idempotency_key == first.idempotency_key
        };
        assert!(reuse_at(100), "well inside the TTL");
        // The reply came 1.2 s after the send: half the TTL counted from the
        // reply would still allow reuse, counted from the send it does not.
        assert!(!reuse_at(1_200));
    }

    #[test]
    fn a_retry_goes_to_the_other_api_node_at_its_rate() {
        let mut harness = started(ClientSettings {
            retry_other_api_ppm: 1_000_000,
            ..settings()
        });
        let output = tick(&mut harness);
        let (first_api, first) = requests(&output).remove(0);
        fire_timeout(&mut harness);
        let retry = fire_retry(&mut harness).expect("a retry after the timeout");
        let (retry_api, again) = requests(&retry).remove(0);
        assert_eq!(again.idempotency_key, first.idempotency_key);
        assert_eq!(again.op, first.op);
        assert_ne!(retry_api, first_api, "the retry went elsewhere");
        assert!([API_A, API_B].contains(&retry_api));
    }

    #[test]
    fn an_update_targets_a_known_resource_with_its_image_bumped() {
        let mut harness = started(ClientSettings {
            update_ppm: 1_000_000,
            ..settings()
        });
        let first = only_request(&tick(&mut harness));
        assert!(
            matches!(first.op, ApiOp::Create { .. }),
            "nothing known yet"
        );
        reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 4),
        );
        let update = only_request(&tick(&mut harness));
        let ApiOp::Update { id, spec } = &update.op else {
            panic!("expected an update: {update:?}");
        };
        assert_eq!((id.as_str(), spec.image), ("r1", 5));
        reply(&mut harness, update.request_id, status::NOT_FOUND, error());
        assert!(harness.durable().client().unwrap().known.is_empty());
    }

    #[test]
    fn a_delete_forgets_the_resource_once_answered() {
        let mut harness = started(ClientSettings {
            update_ppm: 0,
            delete_ppm: 1_000_000,
            ..settings()
        });
        let first = only_request(&tick(&mut harness));
        reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 1),
        );
        let delete = only_request(&tick(&mut harness));
        assert_eq!(delete.op, ApiOp::Delete { id: "r1".into() });
        let deleted = ResponseBody::Deleted { id: "r1".into() };
        reply(&mut harness, delete.request_id, status::OK, deleted);
        assert!(harness.durable().client().unwrap().known.is_empty());
    }

    #[test]
    fn no_more_than_two_requests_are_outstanding() {
        let mut harness = started(settings());
        assert_eq!(requests(&tick(&mut harness)).len(), 1);
        assert_eq!(requests(&tick(&mut harness)).len(), 1);
        assert!(requests(&tick(&mut harness)).is_empty());
        assert_eq!(outstanding(&harness), 2);
    }

    #[test]
    fn no_new_request_after_workload_end() {
        let mut harness = started(ClientSettings {
            workload_end_ms: 2_000,
            ..settings()
        });
        let mut sends = 0;
        // Bounded: ticks are at least 200 ms apart and stop at 2 s.
        for _ in 0..100 {
            let Some(output) = harness.fire_timer(|tag| *tag == Timer::Tick) else {
                break;
            };
            for (_, request) in requests(&output) {
                assert!(harness.now_ns() < 2_000 * MILLISECOND_NS);
                reply(
                    &mut harness,
                    request.request_id,
                    status::CREATED,
                    resource("r", 1),
                );
                sends += 1;
            }
        }
        assert!(sends >= 2, "the workload ran: {sends}");
        assert!(harness.now_ns() >= 2_000 * MILLISECOND_NS);
        assert!(!has_timer(&harness, |tag| *tag == Timer::Tick));
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let mut harness = started(ClientSettings {
            max_attempts: 3,
            ..settings()
        });
        let first = only_request(&tick(&mut harness));
        let mut attempts = vec![0];
        for _ in 0..2 {
            fire_timeout(&mut harness);
            let output = fire_retry(&mut harness).expect("retry");
            for event in &output.records {
                if let Event::RequestSent { attempt, .. } = event {
                    attempts.push(*attempt);
                }
            }
        }
        assert_eq!(attempts, vec![0, 1, 2]);
        let output = fire_timeout(&mut harness);
        assert_eq!(
            output.records,
            vec![Event::RequestAbandoned {
                key: first.idempotency_key
            }]
        );
        assert_eq!(outstanding(&harness), 0);
        assert!(fire_retry(&mut harness).is_none());
    }

    #[test]
    fn a_restart_retries_outstanding_requests_and_records_late_replies() {
        let mut harness = started(settings());
        let first = only_request(&tick(&mut harness));
        let node = ClientNode::new(
            Topology {
                apis: vec![API_A, API_B],
                ..Topology::default()
            },
            settings(),
        );
        let output = harness.restart(Box::new(node));
        assert!(
            output
                .timers
                .iter()
                .any(|(_, _, tag)| *tag == Timer::Custom(0))
        );
        let retry = only_request(&fire_retry(&mut harness).expect("resumed"));
        assert_eq!(retry.idempotency_key, first.idempotency_key);
        assert_ne!(retry.request_id, first.request_id, "a new boot's id");
        let output = reply(
            &mut harness,
            first.request_id,
            status::CREATED,
            resource("r1", 1),
        );
        assert_eq!(received(&output), 1);
        assert_eq!(outstanding(&harness), 0);
        let next = only_request(&tick(&mut harness));
        assert_eq!(
            next.idempotency_key.as_deref(),
            Some("k4-1"),
            "keys are not reused"
        );
    }

    fn client_node(settings: ClientSettings) -> Box<ClientNode> {
        let topology = Topology {
            apis: vec![API_A, API_B],
            clients: vec![CLIENT],
            ..Topology::default()
        };
        Box::new(ClientNode::new(topology, settings))
    }

    /// A client first started when its monotonic clock read `mono_ns`.
    fn booted_at(settings: ClientSettings, mono_ns: u64) -> Harness<ControlPlane> {
        let mut harness = Harness::new(11, CLIENT, client_node(settings.clone()));
        harness.advance(mono_ns);
        harness.start();
        harness
    }

    /// Fires ticks while one is armed and before `until_ns`, answering every
    /// request with a 201 at once; bounded by `max_ticks`.
    fn run_ticks(harness: &mut Harness<ControlPlane>, until_ns: u64, max_ticks: usize) {
        for _ in 0..max_ticks {
            let next_tick_due = has_timer(harness, |tag| *tag == Timer::Tick);
            if !next_tick_due || harness.now_ns() >= until_ns {
                return;
            }
            let output = tick(harness);
            for (_, request) in requests(&output) {
                reply(
                    harness,
                    request.request_id,
                    status::CREATED,
                    resource("r1", 1),
                );
            }
        }
        panic!("ticks did not stop within {max_ticks}");
    }

    /// A final answer to `request_id` whose key is kept for 2 s.
    fn stored_for_two_seconds(
        harness: &mut Harness<ControlPlane>,
        request_id: RequestId,
    ) -> Output<ControlPlane> {
        let stored = ApiReply {
            request_id,
            response: ApiResponse {
                status: status::CREATED,
                body: resource("r1", 1),
            },
            replayed: false,
            key_ttl_ms: Some(2_000),
            key_expires_at_ms: Some(2_000),
        };
        harness.deliver(API_A, Msg::ApiReply(Box::new(stored)))
    }

    #[test]
    fn after_a_reboot_the_workload_goes_on_for_the_up_time_it_had_left() {
        const FIRST_BOOT_NS: u64 = 500_000 * MILLISECOND_NS;
        // Below and far above the first boot's readings: raw readings would
        // restart the workload from zero, or end it at once.
        for rebooted_at_ns in [0, 10_000_000 * MILLISECOND_NS] {
            let settings = ClientSettings {
                workload_end_ms: 2_000,
                ..settings()
            };
            let mut harness = booted_at(settings.clone(), FIRST_BOOT_NS);
            run_ticks(&mut harness, FIRST_BOOT_NS + 1_200 * MILLISECOND_NS, 100);
            let before_ms = (harness.now_ns() - FIRST_BOOT_NS) / MILLISECOND_NS;
            assert!((1_200..2_000).contains(&before_ms), "{before_ms}");
            harness.reboot(client_node(settings), rebooted_at_ns);
            let state = harness.durable().client().unwrap();
            assert_eq!(state.started_at_ms, Some(500_000), "client time, kept");
            assert!(has_timer(&harness, |tag| *tag == Timer::Tick), "not over");
            run_ticks(&mut harness, u64::MAX, 100);
            let after_ms = (harness.now_ns() - rebooted_at_ns) / MILLISECOND_NS;
            // The workload ends at the first tick past 2 s of up time; a
            // tick is at most 600 ms after the one before.
            let up_ms = before_ms + after_ms;
            assert!(
                (1_999..=2_600).contains(&up_ms),
                "ran {up_ms} ms of up time"
            );
        }
    }

    #[test]
    fn after_a_reboot_a_key_finished_before_it_is_not_reused() {
        let settings = ClientSettings {
            reuse_key_ppm: 1_000_000,
            ..settings()
        };
        let mut harness = booted_at(settings.clone(), 500_000 * MILLISECOND_NS);
        let first = only_request(&tick(&mut harness));
        stored_for_two_seconds(&mut harness, first.request_id);
        let finished = &harness.durable().client().unwrap().finished;
        assert!(
            finished[0].reusable_until_ms > 500_000,
            "reusable before the reboot"
        );
        // The new boot's clock starts low: a window kept in raw readings
        // would stay open for eight minutes.
        harness.reboot(client_node(settings), 0);
        let next = only_request(&tick(&mut harness));
        assert_ne!(next.idempotency_key, first.idempotency_key);
        let state = harness.durable().client().unwrap();
        let now_ms = state.clock_ms.expect("client time");
        assert!(
            state.finished[0].reusable_until_ms <= now_ms,
            "its window ended"
        );
    }

    #[test]
    fn a_request_first_sent_before_a_reboot_and_finished_after_is_not_reused() {
        let settings = ClientSettings {
            reuse_key_ppm: 1_000_000,
            ..settings()
        };
        let mut harness = booted_at(settings.clone(), 500_000 * MILLISECOND_NS);
        let first = only_request(&tick(&mut harness));
        harness.reboot(client_node(settings), 0);
        let retry = only_request(&fire_retry(&mut harness).expect("resumed"));
        assert_eq!(retry.idempotency_key, first.idempotency_key);
        stored_for_two_seconds(&mut harness, retry.request_id);
        assert_eq!(outstanding(&harness), 0);
        let finished = &harness.durable().client().unwrap().finished;
        assert_eq!(finished[0].reusable_until_ms, 0, "never reusable");
        let next = only_request(&tick(&mut harness));
        assert_ne!(next.idempotency_key, first.idempotency_key);
    }
}
