//! Store replies as peer input: the shapes a node expects back, and the
//! error when a reply has none of them.
//!
//! In the simulator the store runs in-process and always answers what was
//! asked. Over a real network its replies are input from a peer, so a
//! malformed or unexpected one must fail the request it answers (as a
//! timeout would), never the node. Each node decodes the replies to its
//! own transactions with these pieces into typed results.

use std::fmt;

use node::Digested;

use crate::protocol::Value;
use crate::store::{KeyValue, OpResult, StoreError, StoreResponse};

/// A stored key as the nodes read it.
pub(crate) type Kv = Digested<KeyValue<Value>>;

/// Why a store reply could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyError {
    /// The store refused the request: a legitimate answer, and a failure.
    Refused(StoreError),
    /// The reply does not fit the request: another kind, another shape, or
    /// a value of another type than the key holds.
    Unexpected(&'static str),
}

impl ReplyError {
    /// Logs the error of the reply to `request`: a refusal is routine, a
    /// reply that does not fit is a peer misbehaving.
    pub(crate) fn log(&self, request: &str) {
        match self {
            ReplyError::Refused(error) => tracing::debug!(request, %error, "store refused"),
            ReplyError::Unexpected(what) => {
                tracing::warn!(request, what, "unexpected store reply, failing the request");
            }
        }
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Refused(error) => write!(f, "refused: {error}"),
            ReplyError::Unexpected(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

/// A transaction's outcome.
#[derive(Debug)]
pub(crate) struct TxnReply {
    /// Whether every compare held (the success branch ran).
    pub(crate) succeeded: bool,
    /// The store's revision after the transaction.
    pub(crate) revision: u64,
    /// One result per op of the branch that ran.
    pub(crate) results: Vec<OpResult<Value>>,
}

/// The reply to a transaction.
pub(crate) fn txn(response: StoreResponse<Value>) -> Result<TxnReply, ReplyError> {
    match response {
        StoreResponse::Txn {
            succeeded,
            revision,
            results,
        } => Ok(TxnReply {
            succeeded,
            revision,
            results,
        }),
        StoreResponse::Error(error) => Err(ReplyError::Refused(error)),
        _ => Err(ReplyError::Unexpected("not a transaction reply")),
    }
}

impl TxnReply {
    /// The results of a branch of exactly `N` ops.
    pub(crate) fn exactly<const N: usize>(self) -> Result<[OpResult<Value>; N], ReplyError> {
        <[OpResult<Value>; N]>::try_from(self.results)
            .map_err(|_| ReplyError::Unexpected("another number of results"))
    }

    /// The results of a branch of exactly `N` single-key reads.
    pub(crate) fn gets<const N: usize>(self) -> Result<[Option<Kv>; N], ReplyError> {
        let results = self.exactly::<N>()?;
        let mut found = [const { None }; N];
        for (slot, result) in found.iter_mut().zip(results) {
            *slot = got(result)?;
        }
        Ok(found)
    }
}

/// The key a `Get` read.
pub(crate) fn got(result: OpResult<Value>) -> Result<Option<Kv>, ReplyError> {
    match result {
        OpResult::Got(found) => Ok(found),
        _ => Err(ReplyError::Unexpected("not a single-key read")),
    }
}

/// The keys a `GetPrefix` read.
pub(crate) fn got_prefix(result: OpResult<Value>) -> Result<Vec<Kv>, ReplyError> {
    match result {
        OpResult::GotPrefix(found) => Ok(found),
        _ => Err(ReplyError::Unexpected("not a prefix read")),
    }
}

/// The keys a `Range` read, and whether more follow them.
pub(crate) fn got_range(result: OpResult<Value>) -> Result<(Vec<Kv>, bool), ReplyError> {
    match result {
        OpResult::GotRange { found, more } => Ok((found, more)),
        _ => Err(ReplyError::Unexpected("not a range read")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(results: Vec<OpResult<Value>>) -> StoreResponse<Value> {
        StoreResponse::Txn {
            succeeded: true,
            revision: 7,
            results,
        }
    }

    #[test]
    fn a_refusal_and_a_reply_of_another_kind_are_errors_not_panics() {
        let refused = StoreResponse::Error(StoreError::TooManyOps { limit: 1 });
        assert!(matches!(txn(refused), Err(ReplyError::Refused(_))));
        let other = StoreResponse::LeaseKeptAlive {
            lease: crate::store::LeaseId(1),
            ttl_ms: 1,
        };
        assert!(matches!(txn(other), Err(ReplyError::Unexpected(_))));
    }

    #[test]
    fn gets_want_exactly_that_many_single_key_reads() {
        let two = || vec![OpResult::Got(None), OpResult::Got(None)];
        assert_eq!(txn(reply(two())).unwrap().gets::<2>(), Ok([None, None]));
        assert!(txn(reply(two())).unwrap().gets::<1>().is_err());
        let prefix = vec![OpResult::GotPrefix(vec![]), OpResult::Got(None)];
        assert!(txn(reply(prefix)).unwrap().gets::<2>().is_err());
    }
}
