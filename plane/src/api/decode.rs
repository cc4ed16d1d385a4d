//! Each store reply of an API operation, decoded into what its step needs.
//!
//! One decoder per transaction the API sends. A reply that does not have
//! the shape its transaction gives (another kind, another number of
//! results, a ledger key holding something else) is a [`ReplyError`]: the
//! step fails as on a timeout, where the old positional matches would have
//! panicked on input from a peer.

use std::collections::BTreeMap;

use crate::protocol::{Resource, ResourceView, Status, Value, keys};
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

/// The completer's scan: every unfinished entry's copy and every lock.
/// Checked, not copied: the entries are borrowed from the reply where they
/// are used.
pub(super) fn scan(response: StoreResponse<Value>) -> Result<(Vec<Kv>, Vec<Kv>), ReplyError> {
    let [ledgers, locks] = reply::txn(response)?.exactly()?;
    let ledgers = reply::got_prefix(ledgers)?;
    if !ledgers
        .iter()
        .all(|kv| matches!(kv.value, Value::Ledger(_)))
    {
        return Err(ReplyError::Unexpected(
            "an open-index key without a ledger entry",
        ));
    }
    Ok((ledgers, reply::got_prefix(locks)?))
}

/// A client's get: the resource and its status, read together; `None`
/// when there is no such resource.
pub(super) fn get(response: StoreResponse<Value>) -> Result<Option<ResourceView>, ReplyError> {
    let [resource, status] = reply::txn(response)?.gets()?;
    let Some(resource) = resource else {
        return Ok(None);
    };
    let Value::Resource(resource) = &resource.value else {
        return Err(ReplyError::Unexpected("a resource key without a resource"));
    };
    let status = match status.as_ref().map(|kv| &kv.value) {
        None => None,
        Some(Value::Status(status)) => Some(*status),
        Some(_) => return Err(ReplyError::Unexpected("a status key without a status")),
    };
    let resource = Resource::clone(resource);
    Ok(Some(ResourceView { resource, status }))
}

/// One page of a list, as answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Page {
    pub(super) items: Vec<ResourceView>,
    pub(super) next: Option<String>,
}

/// A client's list: the range of resources and the range of statuses
/// after the same cursor, with the same limit, read in one transaction.
pub(super) fn list(response: StoreResponse<Value>) -> Result<Page, ReplyError> {
    let [resources, statuses] = reply::txn(response)?.exactly()?;
    let (resources, resources_more) = reply::got_range(resources)?;
    let (statuses, statuses_more) = reply::got_range(statuses)?;
    page(resources, resources_more, statuses, statuses_more)
}

/// Joins a range of resources with a range of statuses read after the
/// same cursor at the same revision.
///
/// A status is written only while its resource stands (the controller's
/// write compares the resource's mod revision) and is deleted with it, so
/// the statuses after the cursor belong to resources after it, and the
/// first `limit` statuses hold every status of the first `limit`
/// resources. Should that ever not hold (statuses left without their
/// resource), the statuses read may end before the resources do: the page
/// is then cut after the last status read, and `next` resumes from there,
/// so no item is ever shown without the status the store held with it.
fn page(
    resources: Vec<Kv>,
    resources_more: bool,
    statuses: Vec<Kv>,
    statuses_more: bool,
) -> Result<Page, ReplyError> {
    let mut observed: BTreeMap<String, Status> = BTreeMap::new();
    for kv in statuses {
        let (Some(id), Value::Status(status)) = (kv.key.strip_prefix(keys::STATUSES), &kv.value)
        else {
            return Err(ReplyError::Unexpected("a status key without a status"));
        };
        observed.insert(id.to_string(), *status);
    }
    // Statuses are known up to the last one read when more follow, and
    // everywhere when none do.
    let statuses_end = match (statuses_more, observed.last_key_value()) {
        (false, _) => None,
        (true, Some((id, _))) => Some(id.clone()),
        (true, None) => return Err(ReplyError::Unexpected("more statuses than none")),
    };
    if resources_more && resources.is_empty() {
        return Err(ReplyError::Unexpected("more resources than none"));
    }
    let mut items: Vec<ResourceView> = Vec::new();
    let mut cut = false;
    for kv in resources {
        let (Some(id), Value::Resource(resource)) =
            (kv.key.strip_prefix(keys::RESOURCES), &kv.value)
        else {
            return Err(ReplyError::Unexpected("a resource key without a resource"));
        };
        if resource.id != id {
            return Err(ReplyError::Unexpected("a resource stored under another id"));
        }
        if items
            .last()
            .is_some_and(|last| last.resource.id.as_str() >= id)
        {
            return Err(ReplyError::Unexpected("a range out of key order"));
        }
        if statuses_end.as_deref().is_some_and(|end| id > end) {
            cut = true;
            break;
        }
        let status = observed.get(id).copied();
        let resource = Resource::clone(resource);
        items.push(ResourceView { resource, status });
    }
    let next = match (cut, resources_more) {
        (true, _) => statuses_end,
        (false, true) => items.last().map(|view| view.resource.id.clone()),
        (false, false) => None,
    };
    Ok(Page { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Spec;
    use crate::store::KeyValue;
    use node::Digested;

    fn stored(key: String, value: Value) -> Kv {
        Kv::from(KeyValue {
            key,
            value,
            create_revision: 1,
            mod_revision: 1,
            version: 1,
            lease: None,
        })
    }

    fn resource(id: &str) -> Kv {
        let resource = Resource {
            id: id.into(),
            name: "n".into(),
            spec: Spec {
                replicas: 1,
                image: 1,
            },
            generation: 1,
        };
        stored(keys::resource(id), Value::Resource(resource.into()))
    }

    fn status(id: &str) -> Kv {
        let status = Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        stored(keys::status(id), Value::Status(status))
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.items.iter().map(|v| v.resource.id.as_str()).collect()
    }

    #[test]
    fn a_page_joins_each_resource_with_its_status_and_names_the_next_cursor() {
        let page = page(
            vec![resource("a"), resource("b")],
            true,
            vec![status("b")],
            false,
        );
        let page = page.expect("fits");
        assert_eq!(ids(&page), ["a", "b"]);
        assert_eq!(page.items[0].status, None);
        assert!(page.items[1].status.is_some());
        assert_eq!(page.next.as_deref(), Some("b"));
    }

    #[test]
    fn a_page_is_cut_where_the_statuses_read_end_if_more_follow() {
        let resources = vec![resource("a"), resource("c"), resource("e")];
        let statuses = vec![status("b"), status("c")];
        let page = page(resources, false, statuses, true).expect("fits");
        assert_eq!(
            (ids(&page), page.next.as_deref()),
            (vec!["a", "c"], Some("c"))
        );
    }

    #[test]
    fn a_range_that_does_not_fit_its_read_is_an_error_not_a_page() {
        let out_of_order = page(vec![resource("b"), resource("a")], false, vec![], false);
        let mut moved = Digested::into_inner(resource("a"));
        moved.key = keys::resource("z");
        let moved = Kv::from(moved);
        let misplaced = page(vec![moved], false, vec![], false);
        let not_a_status = page(vec![], false, vec![resource("a")], false);
        let more_than_none = page(vec![], true, vec![], false);
        for result in [out_of_order, misplaced, not_a_status, more_than_none] {
            assert!(
                matches!(result, Err(ReplyError::Unexpected(_))),
                "{result:?}"
            );
        }
    }
}
