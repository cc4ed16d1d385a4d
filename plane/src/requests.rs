//! Request tracking: request ids, the requests awaiting a reply, and each
//! one's timeout, written once for every node kind that asks and waits.
//!
//! A node numbers its requests with its boot and a volatile counter
//! ([`crate::protocol::request_id`]), so ids stay unique across restarts
//! without storing the counter. A reply is matched to its request by id
//! and sender; one the node no longer waits for (late after its timeout,
//! duplicated by the network, or addressed to an earlier boot) is
//! ignored. Every tracked request has one `Timer::RequestTimeout`, set when
//! it is tracked and cancelled when its reply arrives.

use node::{AscendingMap, Context, NodeId, TimerId};

use crate::protocol::{ControlPlane, RequestId, Timer, request_id};

type Ctx<'a> = Context<'a, ControlPlane>;

/// Requests in flight per node. Each has a timeout and every sender is
/// bounded, so reaching this is a bug, reported as a crash rather than a
/// leak.
pub(crate) const MAX_PENDING_REQUESTS: usize = 100_000;

/// Numbers one boot's requests.
#[derive(Debug)]
pub(crate) struct RequestIds {
    next_counter: u64,
}

impl RequestIds {
    /// Ids whose counters start at `first_counter`. Ids travel in messages
    /// and so in the trace: each node kind keeps the first counter it has
    /// always used (1 for the API and the controller, 0 for the client).
    pub(crate) fn starting_at(first_counter: u64) -> Self {
        Self {
            next_counter: first_counter,
        }
    }

    /// The next id of boot `boot`.
    pub(crate) fn next(&mut self, boot: u32) -> RequestId {
        let id = request_id(boot, self.next_counter);
        self.next_counter += 1;
        id
    }
}

/// A request awaiting its reply.
#[derive(Debug)]
pub(crate) struct Pending<P> {
    /// Who must answer: a reply from anyone else is ignored.
    pub(crate) to: NodeId,
    /// The request's timeout timer.
    pub(crate) timer: TimerId,
    /// What the request was for, which says how to read its reply.
    pub(crate) purpose: P,
}

/// A node's requests in flight, by id, with what each was for.
#[derive(Debug)]
pub(crate) struct Requests<P> {
    ids: RequestIds,
    timeout_ns: u64,
    /// By id: a node's ids only grow, so a new request is appended.
    pending: AscendingMap<RequestId, Pending<P>>,
}

impl<P> Requests<P> {
    /// Tracking with ids from `first_counter` (see [`RequestIds`]) and
    /// `timeout_ns` per request.
    pub(crate) fn new(first_counter: u64, timeout_ns: u64) -> Self {
        Self {
            ids: RequestIds::starting_at(first_counter),
            timeout_ns,
            pending: AscendingMap::default(),
        }
    }

    /// A fresh id, for a tracked request or a fire-and-forget one.
    pub(crate) fn next_id(&mut self, ctx: &Ctx<'_>) -> RequestId {
        self.ids.next(ctx.boot())
    }

    /// Awaits a reply to `id` from `to`: sets its timeout.
    pub(crate) fn track(&mut self, ctx: &mut Ctx<'_>, id: RequestId, to: NodeId, purpose: P) {
        assert!(
            self.pending.len() < MAX_PENDING_REQUESTS,
            "requests in flight are bounded"
        );
        let timer = ctx.set_timer(self.timeout_ns, Timer::RequestTimeout(id));
        let pending = Pending { to, timer, purpose };
        let fresh = self.pending.insert(id, pending);
        assert!(fresh.is_none(), "request ids are unique");
    }

    /// The request a reply from `from` answers, if it is still awaited
    /// from `from`; its timeout is cancelled.
    pub(crate) fn answered(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        id: RequestId,
    ) -> Option<Pending<P>> {
        let pending = self.pending.remove_if(id, |pending| pending.to == from)?;
        ctx.cancel_timer(pending.timer);
        Some(pending)
    }

    /// The request whose timeout `timer` fired, if it is still awaited.
    pub(crate) fn timed_out(&mut self, timer: TimerId, id: RequestId) -> Option<Pending<P>> {
        self.pending.remove_if(id, |pending| pending.timer == timer)
    }

    /// Stops awaiting `id` (the caller saw it fail): cancels its timeout.
    pub(crate) fn cancel(&mut self, ctx: &mut Ctx<'_>, id: RequestId) -> Option<P> {
        let pending = self.pending.remove(id)?;
        ctx.cancel_timer(pending.timer);
        Some(pending.purpose)
    }

    /// Whether a request for which `wanted` holds is in flight.
    pub(crate) fn awaiting(&self, wanted: impl Fn(&P) -> bool) -> bool {
        self.pending
            .values()
            .any(|pending| wanted(&pending.purpose))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use node::testing::Harness;

    use super::*;

    #[test]
    fn ids_carry_the_incarnation_and_count_from_the_first_counter() {
        let mut ids = RequestIds::starting_at(1);
        assert_eq!(ids.next(0), 1);
        assert_eq!(ids.next(0), 2);
        let mut ids = RequestIds::starting_at(0);
        assert_eq!(ids.next(3), 3 << 48);
        assert_eq!(ids.next(3), (3 << 48) | 1);
    }

    /// What the node's handlers found: the purpose of each answered or
    /// timed-out request, `None` when nothing was awaited.
    type Log = Rc<RefCell<Vec<Option<&'static str>>>>;

    /// A node that only exercises `Requests` in its handlers.
    struct Asker {
        requests: Requests<&'static str>,
        log: Log,
    }

    impl node::Node<ControlPlane> for Asker {
        fn on_start(&mut self, ctx: &mut Ctx<'_>) {
            let id = self.requests.next_id(ctx);
            self.requests.track(ctx, id, NodeId(9), "ask");
        }

        fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, message: crate::protocol::Msg) {
            let crate::protocol::Msg::Watch { prefix } = message else {
                return;
            };
            let id: RequestId = prefix.parse().unwrap();
            let answered = self.requests.answered(ctx, from, id);
            self.log.borrow_mut().push(answered.map(|p| p.purpose));
        }

        fn on_timer(&mut self, _ctx: &mut Ctx<'_>, timer: TimerId, tag: Timer) {
            let Timer::RequestTimeout(id) = tag else {
                return;
            };
            let timed_out = self.requests.timed_out(timer, id);
            self.log.borrow_mut().push(timed_out.map(|p| p.purpose));
        }
    }

    fn asker() -> (Harness<ControlPlane>, Log) {
        let log = Rc::default();
        let node = Asker {
            requests: Requests::new(1, 100),
            log: Rc::clone(&log),
        };
        let mut harness = Harness::new(1, NodeId(1), Box::new(node));
        harness.start();
        (harness, log)
    }

    fn reply(id: RequestId) -> crate::protocol::Msg {
        crate::protocol::Msg::Watch {
            prefix: id.to_string(),
        }
    }

    #[test]
    fn a_reply_from_another_node_or_a_second_reply_is_ignored() {
        let (mut harness, log) = asker();
        harness.deliver(NodeId(8), reply(1));
        let out = harness.deliver(NodeId(9), reply(1));
        assert_eq!(out.timers.len(), 0);
        harness.deliver(NodeId(9), reply(1));
        assert_eq!(*log.borrow(), vec![None, Some("ask"), None]);
        assert!(
            harness.pending_timers().is_empty(),
            "the timeout was cancelled"
        );
    }

    #[test]
    fn a_timeout_ends_the_request_and_a_late_reply_finds_nothing() {
        let (mut harness, log) = asker();
        harness.fire_timer(|tag| matches!(tag, Timer::RequestTimeout(1)));
        harness.deliver(NodeId(9), reply(1));
        assert_eq!(*log.borrow(), vec![Some("ask"), None]);
    }
}
