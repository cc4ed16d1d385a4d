//! The controller's session and its validity: the session lease
//! ([`crate::session`]) counted on for the validity window from each
//! proof's send, the timer that notices the end of the window, and the
//! gate that every side effect passes.

use super::{ControllerNode, Ctx, Purpose, VALIDITY_TIMER};
use crate::protocol::{BeliefEnd, LeaseName, Timer, Value};
use crate::session::{self, KeptAlive};
use crate::shard::ShardId;
use crate::store::{LeaseId, StoreResponse};

impl ControllerNode {
    /// The clock leases are measured on: the monotonic clock, which only
    /// drifts. (The planted `lease-on-wall-clock` bug reads the wall clock,
    /// which also jumps.)
    pub(super) fn lease_clock_ns(&self, ctx: &Ctx<'_>) -> u64 {
        if self.bugs.lease_on_wall_clock {
            ctx.wall_ns()
        } else {
            ctx.mono_ns()
        }
    }

    /// Whether the session lease surely still lives at the store.
    pub(super) fn valid(&self, ctx: &Ctx<'_>) -> bool {
        // The planted `act-after-renew-failure` bug trusts the session until
        // the store says it is gone, however long renewals have failed.
        if self.bugs.act_after_renew_failure {
            return self.session.lease().is_some();
        }
        self.session.lives_at(self.lease_clock_ns(ctx))
    }

    /// A reply to a request sent at `sent_at_ns` proved the lease alive
    /// from then on for the validity window. Only ever moves forward.
    pub(super) fn extend_validity(&mut self, ctx: &mut Ctx<'_>, sent_at_ns: u64) {
        let from_ns = if self.bugs.lease_no_drift_margin {
            // Planted bug: counted from the reply (with the whole TTL as the
            // window, see `validity_window_ms`).
            self.lease_clock_ns(ctx)
        } else {
            sent_at_ns
        };
        let Some(until_ns) = self.session.proven(from_ns) else {
            return;
        };
        if let Some(timer) = self.validity_timer.take() {
            ctx.cancel_timer(timer);
        }
        let now_ns = self.lease_clock_ns(ctx);
        if until_ns > now_ns {
            let timer = ctx.set_timer(until_ns - now_ns, Timer::Custom(VALIDITY_TIMER));
            self.validity_timer = Some(timer);
        }
    }

    /// Ends every belief once the validity deadline has passed.
    pub(super) fn check_validity(&mut self, ctx: &mut Ctx<'_>) {
        if !self.valid(ctx) && !self.beliefs.is_empty() {
            // The lease ran out and the holder only notices now: the other
            // controllers may already be taking its shards over.
            ctx.buggify("controller.noticed_expiry");
            self.end_all_beliefs(ctx, BeliefEnd::Expired);
        }
    }

    /// The gate before every side effect on `shard`.
    pub(super) fn may_act(&mut self, ctx: &mut Ctx<'_>, shard: ShardId, token: u64) -> bool {
        self.check_validity(ctx);
        let may = self.beliefs.get(&LeaseName::Shard(shard)) == Some(&token);
        if may {
            // Passed the gate: the lease may expire in the store before the
            // action lands (delayed sends, a pause), the narrow window that
            // only the workers' fence closes.
            ctx.buggify("controller.before_act");
        }
        may
    }

    /// The store deleted the session and every key on it.
    pub(super) fn session_lost(&mut self, ctx: &mut Ctx<'_>) {
        self.end_all_beliefs(ctx, BeliefEnd::Lost);
        self.session.lost();
        self.registered = false;
        if let Some(timer) = self.validity_timer.take() {
            ctx.cancel_timer(timer);
        }
        self.grant_session(ctx);
    }

    pub(super) fn grant_session(&mut self, ctx: &mut Ctx<'_>) {
        if self.awaiting(|purpose| matches!(purpose, Purpose::Grant { .. })) {
            return;
        }
        let purpose = Purpose::Grant {
            sent_at_ns: self.lease_clock_ns(ctx),
        };
        let ttl_ms = self.settings.session_ttl_ms;
        self.send_store(ctx, session::grant(ttl_ms), purpose);
    }

    pub(super) fn handle_granted(
        &mut self,
        ctx: &mut Ctx<'_>,
        sent_at_ns: u64,
        response: StoreResponse<Value>,
    ) {
        // An error is retried at the next tick; a second session (which
        // cannot happen with one grant in flight) would be left to expire.
        let granted = match session::decode_grant(response) {
            Ok(granted) => granted,
            Err(error) => return error.log("session grant"),
        };
        if self.session.lease().is_some() {
            return;
        }
        self.session.granted(granted.lease);
        self.registered = false;
        self.extend_validity(ctx, sent_at_ns);
        self.register(ctx);
    }

    pub(super) fn handle_kept_alive(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseId,
        sent_at_ns: u64,
        response: StoreResponse<Value>,
    ) {
        // A reply about an older session says nothing about this one; a
        // `LeaseNotFound` was handled as a lost session already.
        match session::decode_keep_alive(lease, response) {
            Ok(KeptAlive::Renewed) if self.session.lease() == Some(lease) => {
                self.extend_validity(ctx, sent_at_ns);
            }
            Ok(_) => {}
            Err(error) => error.log("session keep-alive"),
        }
    }
}
