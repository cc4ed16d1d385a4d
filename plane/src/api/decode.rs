//! Each store reply of an API operation, decoded into what its step needs.
//!
//! One decoder per transaction the API sends. A reply that does not have
//! the shape its transaction gives (another kind, another number of
//! results, a ledger key holding something else) is a [`ReplyError`]: the
//! step fails as on a timeout, where the old positional matches would have
//! panicked on input from a peer.

use crate::protocol::Value;
use crate::reply::{self, Kv, ReplyError};
use crate::store::StoreResponse;

/// The record of phase 1.
// Decoded and consumed at once, never stored: boxing the large variant
// would only add an allocation per reply.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Recorded {
    /// The key was new: it is recorded and my lock is at `lock_revision`.
    Applied { lock_revision: u64 },
    /// The key exists: its entry and its lock as they are.
    Exists {
        ledger: Option<Kv>,
        lock: Option<Kv>,
    },
}

pub(super) fn record(response: StoreResponse<Value>) -> Result<Recorded, ReplyError> {
    let txn = reply::txn(response)?;
    if txn.succeeded {
        return Ok(Recorded::Applied {
            lock_revision: txn.revision,
        });
    }
    let [ledger, lock] = txn.gets()?;
    Ok(Recorded::Exists { ledger, lock })
}

/// A write fenced by compares, with nothing read when they fail (a claim,
/// or saving the recovery point `Charged`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fenced {
    /// Written at `revision`.
    Written { revision: u64 },
    /// A compare failed: nothing written.
    Refused,
}

pub(super) fn fenced_write(response: StoreResponse<Value>) -> Result<Fenced, ReplyError> {
    let txn = reply::txn(response)?;
    Ok(if txn.succeeded {
        Fenced::Written {
            revision: txn.revision,
        }
    } else {
        Fenced::Refused
    })
}

/// An update's or delete's read of its resource under the lock.
// Decoded and consumed at once, never stored: boxing the large variant
// would only add an allocation per reply.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Read {
    /// My lock is gone.
    LockLost,
    /// The resource as found.
    Found(Option<Kv>),
}

pub(super) fn read(response: StoreResponse<Value>) -> Result<Read, ReplyError> {
    let txn = reply::txn(response)?;
    if !txn.succeeded {
        return Ok(Read::LockLost);
    }
    let [found] = txn.gets()?;
    Ok(Read::Found(found))
}

/// Phase 3's commit.
// Decoded and consumed at once, never stored: boxing the large variant
// would only add an allocation per reply.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Committed {
    /// Written at `revision`.
    Done { revision: u64 },
    /// A compare failed: the lock and the resource as they are.
    Refused { lock: Option<Kv>, found: Option<Kv> },
}

pub(super) fn commit(response: StoreResponse<Value>) -> Result<Committed, ReplyError> {
    let txn = reply::txn(response)?;
    if txn.succeeded {
        return Ok(Committed::Done {
            revision: txn.revision,
        });
    }
    let [lock, found] = txn.gets()?;
    Ok(Committed::Refused { lock, found })
}

/// Planted bug `ledger-check-then-act`: the ledger entry and lock read.
pub(super) fn check_ledger(response: StoreResponse<Value>) -> Result<[Option<Kv>; 2], ReplyError> {
    reply::txn(response)?.gets()
}

/// Planted bug `stale-replay-body`: the resource read.
pub(super) fn replay_read(response: StoreResponse<Value>) -> Result<Option<Kv>, ReplyError> {
    let [found] = reply::txn(response)?.gets()?;
    Ok(found)
}

/// The completer's scan: every ledger entry and every lock. Checked, not
/// copied: the scan reads the whole ledger every interval, so the entries
/// are borrowed from the reply where they are used.
pub(super) fn scan(response: StoreResponse<Value>) -> Result<(Vec<Kv>, Vec<Kv>), ReplyError> {
    let [ledgers, locks] = reply::txn(response)?.exactly()?;
    let ledgers = reply::got_prefix(ledgers)?;
    if !ledgers
        .iter()
        .all(|kv| matches!(kv.value, Value::Ledger(_)))
    {
        return Err(ReplyError::Unexpected(
            "a ledger key without a ledger entry",
        ));
    }
    Ok((ledgers, reply::got_prefix(locks)?))
}
