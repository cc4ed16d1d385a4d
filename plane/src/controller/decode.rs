//! Each store reply of the controller, decoded into what its handler
//! needs. A reply that does not have the shape its transaction gives is a
//! [`ReplyError`]: the request fails as on a timeout, never the node.

use node::NodeId;

use super::holder;
use crate::protocol::{Status, Value, keys};
use crate::reply::{self, Kv, ReplyError};
use crate::store::StoreResponse;

/// The member key's put: whether it was written.
pub(super) fn registered(response: StoreResponse<Value>) -> Result<bool, ReplyError> {
    Ok(reply::txn(response)?.succeeded)
}

/// One membership read: everything a round decides on, at one revision.
#[derive(Debug)]
pub(super) struct Membership {
    pub(super) members: Vec<NodeId>,
    /// Shard keys by shard number, one slot per shard of the run (keys
    /// under the prefix that name no such shard are left out): every
    /// round looks up every shard, so a slot each beats a map built per
    /// round.
    pub(super) shard_keys: Vec<Option<Kv>>,
    pub(super) leader: Option<Kv>,
    /// The store's revision when read.
    pub(super) revision: u64,
}

/// The membership read: members, shard keys (of shards below
/// `shard_count`) and the leader key.
pub(super) fn membership(
    response: StoreResponse<Value>,
    shard_count: u32,
) -> Result<Membership, ReplyError> {
    let txn = reply::txn(response)?;
    if !txn.succeeded {
        return Err(ReplyError::Unexpected("an unconditional read failed"));
    }
    let revision = txn.revision;
    let [members, shard_keys, leader] = txn.exactly()?;
    let (members, shard_keys) = (reply::got_prefix(members)?, reply::got_prefix(shard_keys)?);
    let mut slots = vec![None; shard_count as usize];
    for kv in shard_keys {
        let shard = keys::parse_shard(&kv.key).filter(|shard| shard.0 < shard_count);
        if let Some(shard) = shard {
            slots[shard.0 as usize] = Some(kv);
        }
    }
    Ok(Membership {
        members: members.iter().filter_map(|kv| holder(&kv.value)).collect(),
        shard_keys: slots,
        leader: reply::got(leader)?,
        revision,
    })
}

/// A claim of a lease key (acquire or adopt).
// Decoded and consumed at once, never stored: boxing the large variant
// would only add an allocation per reply.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Claimed {
    /// The key is mine at `revision`: the lease's fencing token.
    Acquired { revision: u64 },
    /// A compare failed: the key as it is.
    Taken { current: Option<Kv> },
}

pub(super) fn claim(response: StoreResponse<Value>) -> Result<Claimed, ReplyError> {
    let txn = reply::txn(response)?;
    if txn.succeeded {
        return Ok(Claimed::Acquired {
            revision: txn.revision,
        });
    }
    let [current] = txn.gets()?;
    Ok(Claimed::Taken { current })
}

/// The resource ids' keys of a full listing.
pub(super) fn listing(response: StoreResponse<Value>) -> Result<Vec<Kv>, ReplyError> {
    let [found] = reply::txn(response)?.exactly()?;
    reply::got_prefix(found)
}

/// What a pass read of the resource.
#[derive(Clone, Copy, Debug)]
pub(super) struct Desired {
    pub(super) replicas: u32,
    pub(super) generation: u64,
    pub(super) mod_revision: u64,
}

/// The desired state (`None`: deleted) and stored status a pass read.
pub(super) fn desired(
    response: StoreResponse<Value>,
) -> Result<(Option<Desired>, Option<Status>), ReplyError> {
    let txn = reply::txn(response)?;
    if !txn.succeeded {
        return Err(ReplyError::Unexpected("an unconditional read failed"));
    }
    let [resource, status] = txn.gets()?;
    let desired = match resource {
        None => None,
        Some(kv) => match &kv.value {
            Value::Resource(resource) => Some(Desired {
                replicas: resource.spec.replicas,
                generation: resource.generation,
                mod_revision: kv.mod_revision,
            }),
            _ => return Err(ReplyError::Unexpected("a resource key without a resource")),
        },
    };
    let stored = match status.as_ref().map(|kv| &kv.value) {
        None => None,
        Some(Value::Status(status)) => Some(*status),
        Some(_) => return Err(ReplyError::Unexpected("a status key without a status")),
    };
    Ok((desired, stored))
}

/// The fenced status write of a converged pass.
// Decoded and consumed at once, never stored: boxing the large variant
// would only add an allocation per reply.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum StatusWrite {
    /// Written at `revision`.
    Written { revision: u64 },
    /// A compare failed: the shard key as it is.
    Refused { shard_key: Option<Kv> },
}

pub(super) fn status_write(response: StoreResponse<Value>) -> Result<StatusWrite, ReplyError> {
    let txn = reply::txn(response)?;
    if txn.succeeded {
        return Ok(StatusWrite::Written {
            revision: txn.revision,
        });
    }
    let [shard_key] = txn.gets()?;
    Ok(StatusWrite::Refused { shard_key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyValue;
    use crate::store::OpResult;

    fn read(results: Vec<OpResult<Value>>) -> StoreResponse<Value> {
        StoreResponse::Txn {
            succeeded: true,
            revision: 3,
            results,
        }
    }

    #[test]
    fn a_membership_reply_of_another_shape_is_an_error() {
        let good = vec![
            OpResult::GotPrefix(vec![]),
            OpResult::GotPrefix(vec![]),
            OpResult::Got(None),
        ];
        assert_eq!(membership(read(good), 4).unwrap().revision, 3);
        let short = vec![OpResult::GotPrefix(vec![]), OpResult::GotPrefix(vec![])];
        assert!(membership(read(short), 4).is_err());
        let swapped = vec![
            OpResult::Got(None),
            OpResult::GotPrefix(vec![]),
            OpResult::Got(None),
        ];
        assert!(membership(read(swapped), 4).is_err());
    }

    #[test]
    fn shard_keys_land_in_their_shards_slot_and_others_are_left_out() {
        let key = |key: &str, revision: u64| {
            Kv::from(KeyValue {
                key: key.into(),
                value: Value::Holder {
                    controller: NodeId(5),
                },
                create_revision: revision,
                mod_revision: revision,
                version: 1,
                lease: None,
            })
        };
        let shard_keys = vec![
            key(&keys::shard(crate::shard::ShardId(0)), 1),
            key(&keys::shard(crate::shard::ShardId(2)), 2),
            key(&keys::shard(crate::shard::ShardId(4)), 3), // No such shard.
            key("/shards/x", 4),                            // Names none.
        ];
        let results = vec![
            OpResult::GotPrefix(vec![]),
            OpResult::GotPrefix(shard_keys),
            OpResult::Got(None),
        ];
        let read = membership(read(results), 4).unwrap();
        let revisions: Vec<Option<u64>> = read
            .shard_keys
            .iter()
            .map(|slot| slot.as_ref().map(|kv| kv.mod_revision))
            .collect();
        assert_eq!(revisions, [Some(1), None, Some(2), None]);
    }

    #[test]
    fn a_resource_key_holding_a_status_fails_the_desired_read() {
        let status = Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        let wrong = Kv::from(KeyValue {
            key: "/res/r".into(),
            value: Value::Status(status),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
            lease: None,
        });
        let reply = read(vec![OpResult::Got(Some(wrong)), OpResult::Got(None)]);
        assert!(desired(reply).is_err());
        let absent = read(vec![OpResult::Got(None), OpResult::Got(None)]);
        assert!(matches!(desired(absent), Ok((None, None))));
    }
}
