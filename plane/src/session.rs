//! The session lease: one store lease per node boot that the node's
//! keys hang on (an API node's ledger locks, a controller's membership,
//! shard and leader keys), kept alive by the node and expired by the store
//! on the store's clock when the node stops renewing it.
//!
//! # What a node can know of it
//!
//! A reply to a grant or a keep-alive proves that the store reset the
//! lease's TTL at some point after the request was *sent*. So the node
//! counts from the send, on its own monotonic clock, never from the reply:
//! the lease lives at least until `sent_at + window`, where the window is
//! the caller's choice:
//!
//! - a controller acts on its beliefs only within the *validity*: the TTL
//!   shrunk by twice the largest drift the scenario allows and a margin
//!   (`ttl * (1 - 2 * max_drift) - margin`, see
//!   `ControllerSettings::lease_validity_ms`), because both clocks may
//!   drift apart while it counts;
//! - an API node uses the full TTL only to decide whether renewing is still
//!   worth it: past it, the store may have expired the lease, so it grants
//!   a new one. Its locks are fenced by the store, not by this window.
//!
//! The proof only moves forward: a late reply to an older keep-alive
//! cannot extend the window. When the store says the lease is gone, the
//! session is lost with every key on it.

use node::MILLISECOND_NS;

use crate::protocol::Value;
use crate::reply::ReplyError;
use crate::store::{LeaseId, StoreError, StoreRequest, StoreResponse};

/// A node's session lease, as far as the node can know it.
#[derive(Debug)]
pub(crate) struct SessionLease {
    /// How long after a proof's send the node counts on the lease.
    window_ns: u64,
    /// The lease, once granted; `None` before and after it was lost.
    lease: Option<LeaseId>,
    /// On the node's lease clock: when the request behind the newest proof
    /// that the lease lived was sent.
    proven_at_ns: Option<u64>,
}

impl SessionLease {
    /// No lease yet; once granted, counted on for `window_ms` from each
    /// proof's send.
    pub(crate) fn new(window_ms: u64) -> Self {
        Self {
            window_ns: window_ms.saturating_mul(MILLISECOND_NS),
            lease: None,
            proven_at_ns: None,
        }
    }

    /// The lease, if one is granted and not known lost.
    pub(crate) fn lease(&self) -> Option<LeaseId> {
        self.lease
    }

    /// Until when (lease clock) the node counts on the lease; 0 without a
    /// proof.
    pub(crate) fn lives_until_ns(&self) -> u64 {
        self.proven_at_ns.map_or(0, |proven_at_ns| {
            proven_at_ns.saturating_add(self.window_ns)
        })
    }

    /// Whether a lease is held and `now_ns` (lease clock) is within its
    /// window.
    pub(crate) fn lives_at(&self, now_ns: u64) -> bool {
        self.lease.is_some() && now_ns < self.lives_until_ns()
    }

    /// A grant was answered with `lease`. The grant is a proof too: the
    /// caller passes it to [`Self::proven`] from the time it counts from.
    pub(crate) fn granted(&mut self, lease: LeaseId) {
        self.lease = Some(lease);
    }

    /// A proof that the lease lived at `from_ns`: the window moves to
    /// `from_ns + window` if that is later. Returns the new end, if moved.
    pub(crate) fn proven(&mut self, from_ns: u64) -> Option<u64> {
        let until_ns = from_ns.saturating_add(self.window_ns);
        if until_ns <= self.lives_until_ns() {
            return None;
        }
        self.proven_at_ns = Some(from_ns);
        Some(until_ns)
    }

    /// The lease is gone (or about to be replaced): forget it and its proof.
    pub(crate) fn lost(&mut self) {
        self.lease = None;
        self.proven_at_ns = None;
    }
}

/// The request that grants a session of `ttl_ms`.
pub(crate) fn grant(ttl_ms: u64) -> StoreRequest<Value> {
    StoreRequest::LeaseGrant { ttl_ms }
}

/// The request that keeps `lease` alive.
pub(crate) fn keep_alive(lease: LeaseId) -> StoreRequest<Value> {
    StoreRequest::LeaseKeepAlive { lease }
}

/// A granted lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Granted {
    /// The lease.
    pub(crate) lease: LeaseId,
    /// When it expires unless kept alive, on the store's clock (ms).
    pub(crate) expires_at_ms: u64,
}

/// The reply to a grant (a session's, or any other lease's).
pub(crate) fn decode_grant(response: StoreResponse<Value>) -> Result<Granted, ReplyError> {
    match response {
        StoreResponse::LeaseGranted {
            lease,
            expires_at_ms,
            ..
        } => Ok(Granted {
            lease,
            expires_at_ms,
        }),
        StoreResponse::Error(error) => Err(ReplyError::Refused(error)),
        _ => Err(ReplyError::Unexpected("not a lease grant")),
    }
}

/// What a keep-alive of `lease` learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeptAlive {
    /// The store reset the TTL: a proof.
    Renewed,
    /// The store has no such lease: the session is lost.
    NotFound,
}

/// The reply to a keep-alive of `lease`.
pub(crate) fn decode_keep_alive(
    lease: LeaseId,
    response: StoreResponse<Value>,
) -> Result<KeptAlive, ReplyError> {
    match response {
        StoreResponse::LeaseKeptAlive { lease: renewed, .. } if renewed == lease => {
            Ok(KeptAlive::Renewed)
        }
        StoreResponse::Error(StoreError::LeaseNotFound(_)) => Ok(KeptAlive::NotFound),
        StoreResponse::Error(error) => Err(ReplyError::Refused(error)),
        _ => Err(ReplyError::Unexpected("not a keep-alive of this lease")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = MILLISECOND_NS;

    #[test]
    fn the_window_counts_from_the_send_and_only_moves_forward() {
        let mut session = SessionLease::new(1_000);
        assert!(!session.lives_at(0), "nothing before a grant");
        session.granted(LeaseId(1));
        assert!(!session.lives_at(0), "granted, but not yet proven");
        assert_eq!(session.proven(100 * MS), Some(1_100 * MS));
        assert!(session.lives_at(1_099 * MS));
        assert!(!session.lives_at(1_100 * MS));
        // A late reply to a keep-alive sent before the grant's proof.
        assert_eq!(session.proven(50 * MS), None);
        assert_eq!(session.lives_until_ns(), 1_100 * MS);
        assert_eq!(session.proven(600 * MS), Some(1_600 * MS));
    }

    #[test]
    fn a_lost_session_forgets_its_lease_and_proof() {
        let mut session = SessionLease::new(1_000);
        session.granted(LeaseId(1));
        session.proven(0);
        session.lost();
        assert_eq!((session.lease(), session.lives_until_ns()), (None, 0));
        assert!(!session.lives_at(0));
    }

    #[test]
    fn keep_alive_replies_decode_to_renewed_not_found_or_an_error() {
        let lease = LeaseId(4);
        let renewed = StoreResponse::LeaseKeptAlive { lease, ttl_ms: 1 };
        assert_eq!(decode_keep_alive(lease, renewed), Ok(KeptAlive::Renewed));
        let gone = StoreResponse::Error(StoreError::LeaseNotFound(lease));
        assert_eq!(decode_keep_alive(lease, gone), Ok(KeptAlive::NotFound));
        let other = StoreResponse::LeaseKeptAlive {
            lease: LeaseId(5),
            ttl_ms: 1,
        };
        assert!(matches!(
            decode_keep_alive(lease, other),
            Err(ReplyError::Unexpected(_))
        ));
        let granted = StoreResponse::LeaseRevoked { lease };
        assert!(decode_grant(granted).is_err());
    }
}
