//! What the store holds: desired resources, their status, the
//! idempotency ledger, and the holders of locks and leases.
//!
//! Stored values outlive the node that wrote them and are read by other
//! nodes, so they change only with care for what is already stored.

use node::{Digested, NodeId};
use serde::{Deserialize, Serialize};

use super::{ApiOp, ApiResponse, ResponseBody};
use crate::store::StoreValue;

// ---------------------------------------------------------------------------
// Resources (desired state) and their status.

/// What a resource asks for. Any change bumps the resource's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Spec {
    /// Number of instances: ordinals `0..replicas`.
    pub replicas: u32,
    /// The version of what each instance runs.
    pub image: u32,
}

/// A resource as stored under `/res/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// Server-generated id (also the workqueue key and the shard key).
    pub id: String,
    /// Client-chosen display name; not unique.
    pub name: String,
    /// Desired state.
    pub spec: Spec,
    /// Starts at 1, bumped by every update.
    pub generation: u64,
}

/// What the controller last saw, stored under `/status/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    /// The generation the running instances match.
    pub observed_generation: u64,
    /// Instances running at that generation.
    pub ready_replicas: u32,
}

// ---------------------------------------------------------------------------
// The idempotency ledger.

/// Where an interrupted key resumes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recovery {
    /// Recorded, nothing else done yet: charge next (creates), or apply.
    Started,
    /// Billing charged: commit next.
    Charged {
        /// Billing's charge id.
        charge_id: u64,
    },
    /// Done: replay this response for every retry with the same request.
    Finished {
        /// The stored first response.
        response: ApiResponse,
    },
}

/// One idempotency key's record, stored under `/idem/{key}` on a store
/// lease whose TTL is the published key lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Fingerprint of the first request that used the key.
    pub fingerprint: u64,
    /// That request, so another node can finish it.
    pub op: ApiOp,
    /// The id a create will use, chosen when the key is recorded, so a
    /// takeover commits the same resource.
    pub resource_id: String,
    /// The recovery point.
    pub recovery: Recovery,
    /// The key's lifetime from when its ledger lease was granted.
    pub ttl_ms: u64,
    /// When the key expires, on the store's clock (ms): the ledger lease's
    /// expiry when it was granted. Nothing renews it but a store recovery,
    /// which grants every lease a full TTL again, so the key lives at least
    /// this long.
    pub expires_at_ms: u64,
}

// ---------------------------------------------------------------------------
// The value enum.

/// Everything the store holds, typed, so no node serializes on the hot path.
///
/// The large variants are shared, not copied: a read hands out the stored
/// value, and a scan of the ledger or of every resource would otherwise
/// copy each entry's strings into the reply. They are [`Digested`]: a
/// message that carries one hashes into the trace as its digest, worked
/// out once when the value was made, instead of all its fields again on
/// every read (trace encoding 2). They compare and serialize as what they
/// hold.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    /// `/res/{id}`: desired state.
    Resource(Digested<Resource>),
    /// `/status/{id}`: written by the shard holder, fenced by its token.
    Status(Status),
    /// `/idem/{key}`: the idempotency ledger; while the entry is
    /// unfinished, a copy at `/idem-open/{key}` too, on the same lease.
    Ledger(Digested<LedgerEntry>),
    /// `/idem-lock/{key}`: held by the API node working on the key, on
    /// that node's session lease, so it vanishes if the node dies.
    Lock {
        /// The API node.
        owner: NodeId,
    },
    /// `/members/{node}`, `/shards/{n}`, `/leader`: held by a controller,
    /// on its session lease. The key's mod revision is the fencing token.
    Holder {
        /// The controller.
        controller: NodeId,
    },
}

impl StoreValue for Value {
    fn size_bytes(&self) -> usize {
        match self {
            Value::Resource(resource) => 32 + resource.id.len() + resource.name.len(),
            Value::Status(_) => 16,
            Value::Ledger(entry) => {
                let response = match &entry.recovery {
                    Recovery::Finished { response } => body_size_bytes(&response.body),
                    Recovery::Started | Recovery::Charged { .. } => 16,
                };
                64 + entry.resource_id.len() + entry.op.name_or_id().len() + response
            }
            Value::Lock { .. } | Value::Holder { .. } => 8,
        }
    }
}

/// What a stored response's body weighs. Reads are never stored (they
/// bypass the ledger), but a size is a size.
fn body_size_bytes(body: &ResponseBody) -> usize {
    let view = |v: &super::ResourceView| 48 + v.resource.id.len() + v.resource.name.len();
    match body {
        ResponseBody::Resource(r) => 32 + r.id.len() + r.name.len(),
        ResponseBody::Deleted { id } => 8 + id.len(),
        ResponseBody::Error { message } => 8 + message.len(),
        ResponseBody::Read(read) => view(read),
        ResponseBody::Page { items, next } => {
            let cursor = next.as_ref().map_or(0, String::len);
            8 + cursor + items.iter().map(view).sum::<usize>()
        }
    }
}
