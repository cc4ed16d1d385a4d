//! Store: the pure state machine of an etcd-like linearizable key-value store.
//!
//! This module owns the data model and its rules, nothing else: no simulator,
//! no I/O, no clock. Time comes in as `now_ms` on every call, in the store
//! node's own clock; the node that wraps [`KvStore`] applies requests in
//! arrival order (that order is the linearization) and persists the whole
//! value as its durable storage, which is why it holds only ordered,
//! deterministic containers.
//!
//! The semantics follow etcd's v3 API:
//!
//! - One global revision, starting at 0. Every transaction that writes
//!   anything bumps it by exactly one, and all its writes share that
//!   revision. A lease expiry or revoke that deletes keys bumps it once too.
//!   Reads, failed compares, deletes of absent keys and rejected requests do
//!   not bump it.
//! - Each key carries `create_revision`, `mod_revision` and `version` (the
//!   number of puts since it was created).
//! - A transaction evaluates all its compares against the state before it,
//!   then runs the success or the failure ops in order; a read inside the
//!   transaction sees the writes of earlier ops of the same transaction.
//! - A transaction is validated in full before anything is written (op
//!   counts, value sizes, leases, the key count afterwards), so a rejected
//!   one changes nothing. It runs against an overlay ([`TxnView`]) and is
//!   committed only once it is known to fit.
//! - A lease has a TTL; a put with a lease attaches the key, a put without
//!   one detaches it. A lease expires when `now_ms` reaches its expiry
//!   (exactly at the TTL boundary), and then its keys are deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::Hash;
use std::ops::Bound;

use node::Digested;
use serde::{Deserialize, Serialize};

/// A value the store can hold. The store needs only to clone, compare and
/// measure it, so the control plane can store typed values directly.
pub trait StoreValue: Clone + fmt::Debug + Hash + Eq + 'static {
    /// The size charged against [`StoreLimits::max_value_bytes`].
    fn size_bytes(&self) -> usize;
}

impl StoreValue for String {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl StoreValue for Vec<u8> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

/// A lease: granted by the store, never reused, starting at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(pub u64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lease-{}", self.0)
    }
}

/// A key as stored, with etcd's per-key revisions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue<V> {
    /// The key.
    pub key: String,
    /// The value.
    pub value: V,
    /// The revision of the put that created the key.
    pub create_revision: u64,
    /// The revision of the latest put to the key.
    pub mod_revision: u64,
    /// Puts since the key was created: 1 on creation.
    pub version: u64,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// A condition of a transaction, evaluated against the state before it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compare {
    /// The key's mod revision is `revision`; 0 matches an absent key.
    ModRevisionEquals { key: String, revision: u64 },
    /// The key does not exist.
    Absent { key: String },
    /// The key exists.
    Present { key: String },
}

/// One operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de> + Hash"))]
pub enum Op<V> {
    /// Read one key.
    Get { key: String },
    /// Read every key starting with `prefix`, in key order.
    GetPrefix { prefix: String },
    /// Write one key, attached to `lease` or to none.
    Put {
        key: String,
        value: V,
        lease: Option<LeaseId>,
    },
    /// Delete one key.
    Delete { key: String },
    /// Delete every key starting with `prefix`.
    DeletePrefix { prefix: String },
    /// Read at most `limit` keys starting with `prefix` and sorting after
    /// `after` (from the first such key when `None`), in key order: one
    /// bounded page of a prefix, as etcd's range with a limit. The reply
    /// says whether more keys follow, so a caller pages on by passing the
    /// last key it got as the next `after`.
    Range {
        prefix: String,
        after: Option<String>,
        limit: u32,
    },
}

/// The result of one [`Op`], in the same position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de> + Hash"))]
pub enum OpResult<V> {
    /// The key, if it existed.
    Got(Option<Digested<KeyValue<V>>>),
    /// The keys under the prefix, in key order.
    GotPrefix(Vec<Digested<KeyValue<V>>>),
    /// The revision written and the key as it was before.
    Put {
        revision: u64,
        previous: Option<Digested<KeyValue<V>>>,
    },
    /// How many keys were deleted.
    Deleted { count: u64 },
    /// The keys of a [`Op::Range`], in key order, and whether more keys
    /// under the prefix follow the last of them.
    GotRange {
        found: Vec<Digested<KeyValue<V>>>,
        more: bool,
    },
}

/// A multi-key transaction: if all `compares` hold, run `success`, else
/// `failure`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de> + Hash"))]
pub struct Txn<V> {
    /// Conditions, all of which must hold for `success` to run.
    pub compares: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<Op<V>>,
    /// Ops run otherwise.
    pub failure: Vec<Op<V>>,
}

impl<V> Txn<V> {
    /// A transaction without compares that always runs `ops`.
    pub fn unconditional(ops: Vec<Op<V>>) -> Self {
        Txn {
            compares: Vec::new(),
            success: ops,
            failure: Vec::new(),
        }
    }
}

/// A request to the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de> + Hash"))]
pub enum StoreRequest<V> {
    /// Run a transaction.
    Txn(Txn<V>),
    /// Grant a fresh lease expiring `ttl_ms` from now.
    LeaseGrant { ttl_ms: u64 },
    /// Reset a lease's expiry to its TTL from now.
    LeaseKeepAlive { lease: LeaseId },
    /// Delete a lease and every key attached to it.
    LeaseRevoke { lease: LeaseId },
}

/// The store's answer to one [`StoreRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de> + Hash"))]
pub enum StoreResponse<V> {
    /// Which branch ran, the store's revision after the transaction, and one
    /// result per op of that branch.
    Txn {
        succeeded: bool,
        revision: u64,
        results: Vec<OpResult<V>>,
    },
    /// A new lease.
    LeaseGranted {
        lease: LeaseId,
        ttl_ms: u64,
        /// When it expires unless kept alive, on the store's clock (ms).
        expires_at_ms: u64,
    },
    /// The lease now expires `ttl_ms` after the request.
    LeaseKeptAlive { lease: LeaseId, ttl_ms: u64 },
    /// The lease and its keys are gone.
    LeaseRevoked { lease: LeaseId },
    /// The request was rejected and changed nothing.
    Error(StoreError),
}

/// Why a request was rejected. A rejected request changes nothing (though
/// leases due at its `now_ms` still expire first).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoreError {
    /// The lease does not exist: never granted, revoked or expired.
    LeaseNotFound(LeaseId),
    /// The transaction would leave more than `limit` keys.
    TooManyKeys { limit: usize },
    /// A put's value is larger than `limit` bytes.
    ValueTooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
    /// The compares, the success ops or the failure ops number over `limit`.
    TooManyOps { limit: usize },
    /// `limit` leases exist already.
    TooManyLeases { limit: usize },
    /// A lease TTL outside `min_ms..=max_ms`.
    TtlOutOfRange {
        ttl_ms: u64,
        min_ms: u64,
        max_ms: u64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::LeaseNotFound(lease) => write!(f, "{lease} not found"),
            StoreError::TooManyKeys { limit } => write!(f, "more than {limit} keys"),
            StoreError::ValueTooLarge { key, size, limit } => {
                write!(f, "value of {key:?} is {size} bytes, over {limit}")
            }
            StoreError::TooManyOps { limit } => write!(f, "more than {limit} ops in a txn"),
            StoreError::TooManyLeases { limit } => write!(f, "more than {limit} leases"),
            StoreError::TtlOutOfRange {
                ttl_ms,
                min_ms,
                max_ms,
            } => write!(f, "lease ttl {ttl_ms} ms outside {min_ms}..={max_ms} ms"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Bounds on everything the store holds, so a runaway workload gets an error
/// reply instead of an unbounded store.
///
/// Defaults (see [`StoreLimits::default`]): 100 000 keys, 1 MiB values,
/// 128 ops per transaction, 10 000 leases, lease TTLs from 100 ms to a week.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreLimits {
    /// Keys in the store after any transaction.
    pub max_keys: usize,
    /// Bytes of one value, by [`StoreValue::size_bytes`].
    pub max_value_bytes: usize,
    /// Compares, success ops and failure ops of one transaction, each.
    pub max_ops_per_txn: usize,
    /// Leases alive at once.
    pub max_leases: usize,
    /// Shortest lease TTL granted.
    pub min_ttl_ms: u64,
    /// Longest lease TTL granted.
    pub max_ttl_ms: u64,
}

impl Default for StoreLimits {
    /// 1 MiB values and 128 ops per transaction are near etcd's defaults
    /// (1.5 MiB requests, `--max-txn-ops=128`). A week of TTL covers an
    /// idempotency key's retention (a day, on a lease shared by the keys of
    /// a few hours: `ApiSettings::ledger_lease_ttl_ms`); 100 ms is below
    /// any sensible lease.
    fn default() -> Self {
        StoreLimits {
            max_keys: 100_000,
            max_value_bytes: 1 << 20,
            max_ops_per_txn: 128,
            max_leases: 10_000,
            min_ttl_ms: 100,
            max_ttl_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

impl StoreLimits {
    /// Checks the limits make sense, naming the first that does not.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_ttl_ms == 0 {
            return Err("min_ttl_ms must be at least 1: a zero TTL expires at birth".into());
        }
        if self.min_ttl_ms > self.max_ttl_ms {
            return Err(format!(
                "min_ttl_ms ({}) is above max_ttl_ms ({})",
                self.min_ttl_ms, self.max_ttl_ms
            ));
        }
        if self.max_ops_per_txn == 0 {
            return Err("max_ops_per_txn must be at least 1".into());
        }
        Ok(())
    }
}

/// A lease as stored: its TTL, when it expires, and the keys attached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    ttl_ms: u64,
    expiry_ms: u64,
    keys: BTreeSet<String>,
}

/// The store's whole state: keys, leases and the revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de> + Hash"))]
pub struct KvStore<V> {
    limits: StoreLimits,
    revision: u64,
    keys: BTreeMap<String, Digested<KeyValue<V>>>,
    leases: BTreeMap<LeaseId, Lease>,
    /// Every lease as (expiry, id), so the next to expire is the first.
    expiries: BTreeSet<(u64, LeaseId)>,
    next_lease_id: u64,
}

impl<V: StoreValue> Default for KvStore<V> {
    fn default() -> Self {
        KvStore::new(StoreLimits::default())
    }
}

/// A transaction that ran against an overlay, ready to commit.
struct Executed<V> {
    succeeded: bool,
    results: Vec<OpResult<V>>,
    /// Final state of each key written: `None` for deleted.
    writes: BTreeMap<String, Option<Digested<KeyValue<V>>>>,
}

impl<V: StoreValue> KvStore<V> {
    /// An empty store at revision 0. Panics if `limits` are invalid
    /// ([`StoreLimits::validate`]): the caller validates configuration on load.
    pub fn new(limits: StoreLimits) -> Self {
        if let Err(problem) = limits.validate() {
            panic!("invalid store limits: {problem}");
        }
        KvStore {
            limits,
            revision: 0,
            keys: BTreeMap::new(),
            leases: BTreeMap::new(),
            expiries: BTreeSet::new(),
            next_lease_id: 1,
        }
    }

    // Getters.

    /// The global revision: that of the latest write (tests read it; no
    /// node decides by it).
    #[cfg(test)]
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// One key, outside any transaction.
    pub fn get(&self, key: &str) -> Option<&Digested<KeyValue<V>>> {
        self.keys.get(key)
    }

    /// How many keys exist.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key exists.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The limits this store enforces.
    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// When `lease` expires, if it exists (tests read it).
    #[cfg(test)]
    pub fn lease_expiry_ms(&self, lease: LeaseId) -> Option<u64> {
        self.leases.get(&lease).map(|entry| entry.expiry_ms)
    }

    /// When the next lease expires, so the node can set a timer for it.
    pub fn next_lease_expiry_ms(&self) -> Option<u64> {
        self.expiries.first().map(|&(expiry_ms, _)| expiry_ms)
    }

    // Inputs.

    /// Applies one request at `now_ms`, after expiring the leases due then.
    pub fn apply(&mut self, now_ms: u64, request: StoreRequest<V>) -> StoreResponse<V> {
        let revision_before = self.revision;
        self.expire_leases(now_ms);
        let response = match request {
            StoreRequest::Txn(txn) => self.apply_txn(txn),
            StoreRequest::LeaseGrant { ttl_ms } => self.grant_lease(now_ms, ttl_ms),
            StoreRequest::LeaseKeepAlive { lease } => self.keep_alive(now_ms, lease),
            StoreRequest::LeaseRevoke { lease } => self.revoke(lease),
        };
        assert!(self.revision >= revision_before, "revision went backwards");
        self.check_invariants();
        response
    }

    /// Removes every lease whose expiry is at or before `now_ms`, with its
    /// keys, in expiry order; returns the leases removed.
    pub fn expire_leases(&mut self, now_ms: u64) -> Vec<LeaseId> {
        let mut expired = Vec::new();
        // Bounded: each pass removes one entry of `expiries`.
        while let Some(&(expiry_ms, lease)) = self.expiries.first() {
            if expiry_ms > now_ms {
                break;
            }
            let removed = self.remove_lease(lease);
            assert!(removed, "an indexed lease exists");
            expired.push(lease);
        }
        debug_assert!(self.next_lease_expiry_ms().is_none_or(|next| next > now_ms));
        expired
    }

    /// Gives every lease its full TTL again from `now_ms`, as etcd does when
    /// a leader recovers its leases: the store was down for an unknown time,
    /// during which no holder could keep its lease alive, so a lease that
    /// kept only its remaining TTL might expire before its holder even
    /// reached the store again. `now_ms` must not be earlier than any time
    /// this store used before, so no lease (and no `expires_at_ms` published
    /// for one) is shortened: keys may live longer than published, never
    /// shorter.
    pub fn renew_all_leases(&mut self, now_ms: u64) {
        let mut renewed = BTreeSet::new();
        for (lease, entry) in &mut self.leases {
            let expiry_ms = now_ms.saturating_add(entry.ttl_ms);
            assert!(
                expiry_ms >= entry.expiry_ms,
                "renewing {lease} at {now_ms} ms would shorten it: the clock went back"
            );
            entry.expiry_ms = expiry_ms;
            renewed.insert((expiry_ms, *lease));
        }
        self.expiries = renewed;
        self.check_invariants();
    }

    // Transactions.

    fn apply_txn(&mut self, txn: Txn<V>) -> StoreResponse<V> {
        let executed = match self.execute_txn(txn) {
            Ok(executed) => executed,
            Err(error) => return StoreResponse::Error(error),
        };
        if !executed.writes.is_empty() {
            self.commit(executed.writes);
        }
        StoreResponse::Txn {
            succeeded: executed.succeeded,
            revision: self.revision,
            results: executed.results,
        }
    }

    /// Validates and runs `txn` against an overlay; touches nothing.
    fn execute_txn(&self, txn: Txn<V>) -> Result<Executed<V>, StoreError> {
        self.check_txn_shape(&txn)?;
        let succeeded = txn.compares.iter().all(|compare| self.holds(compare));
        let ops = if succeeded { txn.success } else { txn.failure };
        self.check_leases(&ops)?;
        let mut view = TxnView {
            keys: &self.keys,
            writes: BTreeMap::new(),
            revision: self.revision + 1,
        };
        let results = ops.into_iter().map(|op| view.run(op)).collect();
        if view.key_count_after() > self.limits.max_keys {
            return Err(StoreError::TooManyKeys {
                limit: self.limits.max_keys,
            });
        }
        Ok(Executed {
            succeeded,
            results,
            writes: view.writes,
        })
    }

    /// Limits that hold whichever branch runs: op counts and value sizes.
    fn check_txn_shape(&self, txn: &Txn<V>) -> Result<(), StoreError> {
        let limit = self.limits.max_ops_per_txn;
        let longest = txn
            .compares
            .len()
            .max(txn.success.len())
            .max(txn.failure.len());
        if longest > limit {
            return Err(StoreError::TooManyOps { limit });
        }
        let limit = self.limits.max_value_bytes;
        for op in txn.success.iter().chain(&txn.failure) {
            if let Op::Put { key, value, .. } = op {
                let size = value.size_bytes();
                if size > limit {
                    let key = key.clone();
                    return Err(StoreError::ValueTooLarge { key, size, limit });
                }
            }
        }
        Ok(())
    }

    /// Every lease the chosen branch attaches must exist (as in etcd, the
    /// branch that does not run is not checked).
    fn check_leases(&self, ops: &[Op<V>]) -> Result<(), StoreError> {
        let attached = ops.iter().filter_map(|op| match op {
            Op::Put { lease, .. } => *lease,
            _ => None,
        });
        for lease in attached {
            if !self.leases.contains_key(&lease) {
                return Err(StoreError::LeaseNotFound(lease));
            }
        }
        Ok(())
    }

    fn holds(&self, compare: &Compare) -> bool {
        match compare {
            Compare::ModRevisionEquals { key, revision } => {
                self.keys.get(key).map_or(0, |kv| kv.mod_revision) == *revision
            }
            Compare::Absent { key } => !self.keys.contains_key(key),
            Compare::Present { key } => self.keys.contains_key(key),
        }
    }

    /// Applies the overlay of a validated transaction at the next revision.
    fn commit(&mut self, writes: BTreeMap<String, Option<Digested<KeyValue<V>>>>) {
        assert!(!writes.is_empty(), "only a writing txn bumps the revision");
        self.revision += 1;
        for (key, write) in writes {
            debug_assert!(
                write
                    .as_ref()
                    .is_none_or(|kv| kv.mod_revision == self.revision)
            );
            let new_lease = write.as_ref().and_then(|kv| kv.lease);
            let old = match write {
                Some(kv) => self.keys.insert(key.clone(), kv),
                None => self.keys.remove(&key),
            };
            if let Some(old_lease) = old.and_then(|kv| kv.lease) {
                let attached = self.lease_mut(old_lease).keys.remove(&key);
                assert!(attached, "a leased key is in its lease's set");
            }
            if let Some(new_lease) = new_lease {
                self.lease_mut(new_lease).keys.insert(key);
            }
        }
    }

    // Leases.

    fn grant_lease(&mut self, now_ms: u64, ttl_ms: u64) -> StoreResponse<V> {
        let (min_ms, max_ms) = (self.limits.min_ttl_ms, self.limits.max_ttl_ms);
        if !(min_ms..=max_ms).contains(&ttl_ms) {
            let error = StoreError::TtlOutOfRange {
                ttl_ms,
                min_ms,
                max_ms,
            };
            return StoreResponse::Error(error);
        }
        if self.leases.len() >= self.limits.max_leases {
            let limit = self.limits.max_leases;
            return StoreResponse::Error(StoreError::TooManyLeases { limit });
        }
        let lease = LeaseId(self.next_lease_id);
        self.next_lease_id = self.next_lease_id.checked_add(1).expect("lease ids last");
        let expiry_ms = now_ms.saturating_add(ttl_ms);
        let keys = BTreeSet::new();
        let fresh = self.leases.insert(
            lease,
            Lease {
                ttl_ms,
                expiry_ms,
                keys,
            },
        );
        assert!(fresh.is_none(), "lease ids are never reused");
        let indexed = self.expiries.insert((expiry_ms, lease));
        assert!(indexed);
        StoreResponse::LeaseGranted {
            lease,
            ttl_ms,
            expires_at_ms: expiry_ms,
        }
    }

    fn keep_alive(&mut self, now_ms: u64, lease: LeaseId) -> StoreResponse<V> {
        let Some(entry) = self.leases.get_mut(&lease) else {
            return StoreResponse::Error(StoreError::LeaseNotFound(lease));
        };
        let old_expiry_ms = entry.expiry_ms;
        entry.expiry_ms = now_ms.saturating_add(entry.ttl_ms);
        let ttl_ms = entry.ttl_ms;
        let new_key = (entry.expiry_ms, lease);
        let was_indexed = self.expiries.remove(&(old_expiry_ms, lease));
        assert!(was_indexed, "every lease is indexed by its expiry");
        self.expiries.insert(new_key);
        StoreResponse::LeaseKeptAlive { lease, ttl_ms }
    }

    fn revoke(&mut self, lease: LeaseId) -> StoreResponse<V> {
        if self.remove_lease(lease) {
            StoreResponse::LeaseRevoked { lease }
        } else {
            StoreResponse::Error(StoreError::LeaseNotFound(lease))
        }
    }

    /// Removes `lease` and deletes its keys at a new revision (if it had
    /// any). Returns whether the lease existed.
    fn remove_lease(&mut self, lease: LeaseId) -> bool {
        let Some(removed) = self.leases.remove(&lease) else {
            return false;
        };
        let was_indexed = self.expiries.remove(&(removed.expiry_ms, lease));
        assert!(was_indexed, "every lease is indexed by its expiry");
        if !removed.keys.is_empty() {
            self.revision += 1;
            for key in &removed.keys {
                let kv = self.keys.remove(key).expect("a lease's keys exist");
                assert_eq!(kv.lease, Some(lease), "a lease's keys point back at it");
            }
        }
        true
    }

    fn lease_mut(&mut self, lease: LeaseId) -> &mut Lease {
        self.leases
            .get_mut(&lease)
            .expect("leases are checked before a txn writes")
    }

    /// Cheap invariants always; the full cross-check of keys and leases in
    /// debug builds, where it costs one pass per request.
    fn check_invariants(&self) {
        assert!(self.keys.len() <= self.limits.max_keys);
        assert!(self.leases.len() <= self.limits.max_leases);
        assert_eq!(self.leases.len(), self.expiries.len());
        let newest = self.leases.last_key_value().map(|(lease, _)| lease.0);
        assert!(newest.is_none_or(|id| id < self.next_lease_id));
        if !cfg!(debug_assertions) {
            return;
        }
        for (key, kv) in &self.keys {
            assert_eq!(&kv.key, key);
            assert!(0 < kv.create_revision && kv.create_revision <= kv.mod_revision);
            assert!(kv.mod_revision <= self.revision && kv.version >= 1);
            if let Some(lease) = kv.lease {
                assert!(self.leases[&lease].keys.contains(key), "{key} in {lease}");
            }
        }
        for (lease, entry) in &self.leases {
            assert!(self.expiries.contains(&(entry.expiry_ms, *lease)));
            for key in &entry.keys {
                assert_eq!(self.keys[key].lease, Some(*lease));
            }
        }
    }
}

/// The store as one transaction sees it: the committed keys overlaid with
/// the transaction's own writes so far.
struct TxnView<'a, V> {
    keys: &'a BTreeMap<String, Digested<KeyValue<V>>>,
    /// Final state of each key written so far: `None` for deleted.
    writes: BTreeMap<String, Option<Digested<KeyValue<V>>>>,
    /// The revision this transaction writes at, if it writes.
    revision: u64,
}

impl<V: StoreValue> TxnView<'_, V> {
    fn run(&mut self, op: Op<V>) -> OpResult<V> {
        match op {
            Op::Get { key } => OpResult::Got(self.get(&key).cloned()),
            Op::GetPrefix { prefix } => {
                // The merging walk of `range`, unbounded: no map of the
                // prefix is built only to be copied out.
                let (found, _) = self.range(&prefix, None, usize::MAX);
                OpResult::GotPrefix(found)
            }
            Op::Put { key, value, lease } => self.put(key, value, lease),
            Op::Delete { key } => {
                let count = u64::from(self.delete(key));
                OpResult::Deleted { count }
            }
            Op::DeletePrefix { prefix } => {
                let doomed: Vec<String> = self
                    .with_prefix(&prefix)
                    .into_keys()
                    .map(String::from)
                    .collect();
                let count = u64::try_from(doomed.len()).expect("key count fits u64");
                for key in doomed {
                    let deleted = self.delete(key);
                    assert!(deleted);
                }
                OpResult::Deleted { count }
            }
            Op::Range {
                prefix,
                after,
                limit,
            } => {
                let limit = usize::try_from(limit).expect("u32 fits usize");
                let (found, more) = self.range(&prefix, after.as_deref(), limit);
                debug_assert!(found.len() <= limit);
                OpResult::GotRange { found, more }
            }
        }
    }

    fn get(&self, key: &str) -> Option<&Digested<KeyValue<V>>> {
        match self.writes.get(key) {
            Some(write) => write.as_ref(),
            None => self.keys.get(key),
        }
    }

    /// Every visible key starting with `prefix`, in key order.
    fn with_prefix(&self, prefix: &str) -> BTreeMap<&str, &Digested<KeyValue<V>>> {
        let mut visible: BTreeMap<&str, &Digested<KeyValue<V>>> = prefix_range(self.keys, prefix)
            .map(|(key, kv)| (key.as_str(), kv))
            .collect();
        for (key, write) in prefix_range(&self.writes, prefix) {
            match write {
                Some(kv) => visible.insert(key, kv),
                None => visible.remove(key.as_str()),
            };
        }
        visible
    }

    /// At most `limit` visible keys starting with `prefix` and sorting
    /// after `after`, in key order, and whether another visible one
    /// follows. Walks the committed keys and this transaction's writes
    /// side by side from the lower bound, so it reads only what it returns
    /// (plus the keys this transaction deleted on the way and one more),
    /// never the whole prefix.
    fn range(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<Digested<KeyValue<V>>>, bool) {
        // A cursor before the prefix starts at the prefix: the keys between
        // them do not start with it and would end the walk at once.
        let lower = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let end = PrefixEnd::of(prefix);
        if matches!(lower, Bound::Excluded(after) if end.passed_by(after)) {
            return (Vec::new(), false); // The cursor is past every key of the prefix.
        }
        let bounds = (lower, end.bound());
        let mut committed = self
            .keys
            .range::<str, _>(bounds)
            .take_while(|(key, _)| end.within(key, prefix))
            .peekable();
        if self.writes.is_empty() {
            // Nothing of this transaction's to merge (as in every read-only
            // one): the committed keys as they are.
            let found: Vec<_> = committed
                .by_ref()
                .take(limit)
                .map(|(_, kv)| kv.clone())
                .collect();
            let more = found.len() == limit && committed.next().is_some();
            return (found, more);
        }
        let mut written = self
            .writes
            .range::<str, _>(bounds)
            .take_while(|(key, _)| end.within(key, prefix))
            .peekable();
        let mut found = Vec::new();
        // Bounded: each pass consumes an entry of one of the two ranges.
        loop {
            let visible = match (committed.peek(), written.peek()) {
                (None, None) => return (found, false),
                (Some((old, _)), Some((new, _))) if old == new => {
                    committed.next();
                    written.next().and_then(|(_, write)| write.as_ref())
                }
                (Some((old, _)), Some((new, _))) if old > new => {
                    written.next().and_then(|(_, write)| write.as_ref())
                }
                (Some(_), _) => committed.next().map(|(_, kv)| kv),
                (None, Some(_)) => written.next().and_then(|(_, write)| write.as_ref()),
            };
            let Some(kv) = visible else {
                continue; // Deleted by this transaction.
            };
            if found.len() == limit {
                return (found, true);
            }
            found.push(kv.clone());
        }
    }

    fn put(&mut self, key: String, value: V, lease: Option<LeaseId>) -> OpResult<V> {
        let previous = self.get(&key).cloned();
        let kv = match &previous {
            Some(old) => KeyValue {
                key: key.clone(),
                value,
                create_revision: old.create_revision,
                mod_revision: self.revision,
                version: old.version + 1,
                lease,
            },
            None => KeyValue {
                key: key.clone(),
                value,
                create_revision: self.revision,
                mod_revision: self.revision,
                version: 1,
                lease,
            },
        };
        self.writes.insert(key, Some(Digested::new(kv)));
        OpResult::Put {
            revision: self.revision,
            previous,
        }
    }

    /// Deletes `key` if visible; returns whether it was.
    fn delete(&mut self, key: String) -> bool {
        if self.get(&key).is_none() {
            return false;
        }
        self.writes.insert(key, None);
        true
    }

    /// How many keys the store would hold if this transaction committed.
    fn key_count_after(&self) -> usize {
        let mut count = self.keys.len();
        for (key, write) in &self.writes {
            match (self.keys.contains_key(key), write.is_some()) {
                (false, true) => count += 1,
                (true, false) => count -= 1,
                _ => {}
            }
        }
        count
    }
}

/// The entries of `map` whose keys start with `prefix`, in key order.
fn prefix_range<'m, T>(
    map: &'m BTreeMap<String, T>,
    prefix: &str,
) -> impl Iterator<Item = (&'m String, &'m T)> {
    let end = PrefixEnd::of(prefix);
    map.range::<str, _>((Bound::Included(prefix), end.bound()))
        .take_while(move |(key, _)| end.within(key, prefix))
}

/// Where the keys starting with a prefix end, so that a walk over them is
/// a bounded range rather than a comparison of every key with the prefix.
///
/// The keys that start with `p` are exactly those from `p` up to, not
/// including, `p` with its last byte raised by one: they share every byte
/// before it, and that byte is the prefix's. Raising the byte keeps the
/// string valid UTF-8 when it is ASCII below DEL; for any other last byte
/// (and the empty prefix) the walk compares keys as before.
enum PrefixEnd {
    Before(String),
    Compare,
}

impl PrefixEnd {
    fn of(prefix: &str) -> Self {
        match prefix.as_bytes().last() {
            Some(&last) if last < 0x7f => {
                let mut end = String::with_capacity(prefix.len());
                end.push_str(&prefix[..prefix.len() - 1]);
                end.push(char::from(last + 1));
                PrefixEnd::Before(end)
            }
            _ => PrefixEnd::Compare,
        }
    }

    fn bound(&self) -> Bound<&str> {
        match self {
            PrefixEnd::Before(end) => Bound::Excluded(end),
            PrefixEnd::Compare => Bound::Unbounded,
        }
    }

    /// Whether a cursor at `key` is past every key of the prefix (a range
    /// may not start after its end).
    fn passed_by(&self, key: &str) -> bool {
        matches!(self, PrefixEnd::Before(end) if key >= end.as_str())
    }

    /// Whether `key`, met in a walk from the prefix within
    /// [`PrefixEnd::bound`], starts with `prefix`.
    #[inline]
    fn within(&self, key: &str, prefix: &str) -> bool {
        match self {
            PrefixEnd::Before(_) => true,
            PrefixEnd::Compare => key.starts_with(prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Store = KvStore<String>;

    fn store() -> Store {
        KvStore::new(StoreLimits::default())
    }

    fn put(key: &str, value: &str) -> Op<String> {
        let (key, value) = (key.to_string(), value.to_string());
        Op::Put {
            key,
            value,
            lease: None,
        }
    }

    fn put_leased(key: &str, value: &str, lease: LeaseId) -> Op<String> {
        let (key, value) = (key.to_string(), value.to_string());
        Op::Put {
            key,
            value,
            lease: Some(lease),
        }
    }

    fn get(key: &str) -> Op<String> {
        Op::Get {
            key: key.to_string(),
        }
    }

    /// Runs a transaction, expecting it to be accepted: (succeeded, results).
    fn txn(
        store: &mut Store,
        compares: Vec<Compare>,
        success: Vec<Op<String>>,
        failure: Vec<Op<String>>,
    ) -> (bool, Vec<OpResult<String>>) {
        let request = StoreRequest::Txn(Txn {
            compares,
            success,
            failure,
        });
        match store.apply(0, request) {
            StoreResponse::Txn {
                succeeded,
                revision,
                results,
            } => {
                assert_eq!(revision, store.revision());
                (succeeded, results)
            }
            other => panic!("txn rejected: {other:?}"),
        }
    }

    fn run(store: &mut Store, ops: Vec<Op<String>>) -> Vec<OpResult<String>> {
        txn(store, vec![], ops, vec![]).1
    }

    fn rejected(store: &mut Store, now_ms: u64, request: StoreRequest<String>) -> StoreError {
        match store.apply(now_ms, request) {
            StoreResponse::Error(error) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn grant(store: &mut Store, now_ms: u64, ttl_ms: u64) -> LeaseId {
        match store.apply(now_ms, StoreRequest::LeaseGrant { ttl_ms }) {
            StoreResponse::LeaseGranted {
                lease,
                ttl_ms: granted,
                expires_at_ms,
            } => {
                assert_eq!(granted, ttl_ms);
                assert_eq!(expires_at_ms, now_ms + ttl_ms);
                lease
            }
            other => panic!("grant rejected: {other:?}"),
        }
    }

    fn value(store: &Store, key: &str) -> Option<String> {
        store.get(key).map(|kv| kv.value.clone())
    }

    #[test]
    fn writes_of_one_txn_share_one_new_revision() {
        let mut store = store();
        assert_eq!(store.revision(), 0);
        run(&mut store, vec![put("a", "1"), put("b", "1")]);
        assert_eq!(store.revision(), 1);
        assert_eq!(store.get("a").unwrap().mod_revision, 1);
        assert_eq!(store.get("b").unwrap().mod_revision, 1);
        let results = run(&mut store, vec![put("c", "1")]);
        assert_eq!(store.revision(), 2);
        assert_eq!(
            results,
            vec![OpResult::Put {
                revision: 2,
                previous: None
            }]
        );
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn update_keeps_create_revision_and_counts_versions() {
        let mut store = store();
        run(&mut store, vec![put("a", "1")]);
        run(&mut store, vec![put("b", "1")]);
        let results = run(&mut store, vec![put("a", "2")]);
        let kv = store.get("a").unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (1, 3, 2));
        let OpResult::Put { revision, previous } = &results[0] else {
            panic!()
        };
        assert_eq!(*revision, 3);
        assert_eq!(previous.as_ref().unwrap().value, "1");
    }

    #[test]
    fn delete_then_recreate_starts_a_new_life() {
        let mut store = store();
        run(&mut store, vec![put("a", "1"), put("a", "2")]);
        assert_eq!(store.get("a").unwrap().version, 2);
        let results = run(&mut store, vec![Op::Delete { key: "a".into() }]);
        assert_eq!(results, vec![OpResult::Deleted { count: 1 }]);
        assert_eq!((store.get("a"), store.revision()), (None, 2));
        run(&mut store, vec![put("a", "3")]);
        let kv = store.get("a").unwrap();
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (3, 3, 1));
    }

    #[test]
    fn reads_and_deletes_of_absent_keys_do_not_bump_the_revision() {
        let mut store = store();
        run(&mut store, vec![put("a", "1")]);
        let results = run(&mut store, vec![get("a"), Op::Delete { key: "zz".into() }]);
        assert_eq!(store.revision(), 1);
        assert_eq!(results[1], OpResult::Deleted { count: 0 });
        let (succeeded, _) = txn(
            &mut store,
            vec![Compare::Absent { key: "a".into() }],
            vec![],
            vec![],
        );
        assert!(!succeeded);
        assert_eq!(store.revision(), 1);
    }

    /// Runs `compare` against a store holding "k" = "v" at revision 1 and
    /// "late" = "x" at revision 2; returns which branch ran and checks it ran
    /// only that branch.
    fn branch_taken(compare: Compare) -> bool {
        let mut store = store();
        run(&mut store, vec![put("k", "v")]);
        run(&mut store, vec![put("late", "x")]);
        let (succeeded, _) = txn(
            &mut store,
            vec![compare],
            vec![put("s", "1")],
            vec![put("f", "1")],
        );
        assert_eq!(store.get("s").is_some(), succeeded);
        assert_eq!(store.get("f").is_some(), !succeeded);
        succeeded
    }

    #[test]
    fn mod_revision_equals_matches_revision_and_zero_for_absent() {
        let compare = |key: &str, revision| Compare::ModRevisionEquals {
            key: key.into(),
            revision,
        };
        assert!(branch_taken(compare("late", 2)));
        assert!(!branch_taken(compare("late", 1)));
        assert!(branch_taken(compare("absent", 0)));
        assert!(!branch_taken(compare("k", 0)));
    }

    #[test]
    fn absent_and_present_compares_test_existence() {
        assert!(branch_taken(Compare::Absent {
            key: "absent".into()
        }));
        assert!(!branch_taken(Compare::Absent { key: "k".into() }));
        assert!(branch_taken(Compare::Present { key: "k".into() }));
        assert!(!branch_taken(Compare::Present {
            key: "absent".into()
        }));
    }

    #[test]
    fn every_compare_must_hold_for_success() {
        let holds = Compare::Present { key: "k".into() };
        let fails = Compare::Absent { key: "k".into() };
        let mut store = store();
        run(&mut store, vec![put("k", "v")]);
        let (succeeded, _) = txn(&mut store, vec![holds.clone(), fails], vec![], vec![]);
        assert!(!succeeded);
        let (succeeded, _) = txn(&mut store, vec![holds.clone(), holds], vec![], vec![]);
        assert!(succeeded);
    }

    #[test]
    fn reads_inside_a_txn_see_earlier_writes_of_that_txn() {
        let mut store = store();
        run(&mut store, vec![put("a/1", "old"), put("a/2", "old")]);
        let prefix = || Op::GetPrefix {
            prefix: "a/".into(),
        };
        let ops = vec![
            put("a/1", "new"),
            get("a/1"),
            Op::Delete { key: "a/2".into() },
            put("a/3", "new"),
            prefix(),
        ];
        let results = run(&mut store, ops);
        let OpResult::Got(Some(kv)) = &results[1] else {
            panic!()
        };
        assert_eq!(
            (kv.value.as_str(), kv.version, kv.mod_revision),
            ("new", 2, 2)
        );
        let OpResult::GotPrefix(found) = &results[4] else {
            panic!()
        };
        let keys: Vec<&str> = found.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a/1", "a/3"]);
        assert_eq!(store.revision(), 2);
    }

    #[test]
    fn get_prefix_returns_only_matching_keys_in_key_order() {
        let mut store = store();
        run(
            &mut store,
            vec![
                put("b", "1"),
                put("ab", "1"),
                put("a", "1"),
                put("a/", "1"),
                put("aa", "1"),
            ],
        );
        let results = run(&mut store, vec![Op::GetPrefix { prefix: "a".into() }]);
        let OpResult::GotPrefix(found) = &results[0] else {
            panic!()
        };
        let keys: Vec<&str> = found.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["a", "a/", "aa", "ab"]);
    }

    #[test]
    fn prefix_reads_agree_with_comparing_every_key_whatever_its_last_byte() {
        // Prefixes whose end is a raised last byte (ASCII), and those that
        // compare every key instead: empty, DEL, and a multi-byte char.
        let keys = [
            "", "a", "a/", "a/x", "a0", "a\u{7f}", "a\u{7f}b", "b", "é", "éa", "ê", "z\u{7f}",
        ];
        let prefixes = ["", "a", "a/", "a\u{7f}", "é", "z", "q"];
        let mut store = store();
        run(&mut store, keys.iter().map(|key| put(key, "v")).collect());
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        for prefix in prefixes {
            let cursors = std::iter::once(None).chain(keys.iter().map(|key| Some(*key)));
            for after in cursors.chain([Some("\u{10ffff}")]) {
                let expected: Vec<&str> = sorted
                    .iter()
                    .copied()
                    .filter(|key| key.starts_with(prefix) && after.is_none_or(|a| *key > a))
                    .collect();
                let results = run(&mut store, vec![range(prefix, after, 100)]);
                assert_eq!(
                    ranged(&results[0]),
                    (expected.clone(), false),
                    "{prefix:?} after {after:?}"
                );
                if after.is_none() {
                    let results = run(
                        &mut store,
                        vec![Op::GetPrefix {
                            prefix: prefix.into(),
                        }],
                    );
                    let OpResult::GotPrefix(found) = &results[0] else {
                        panic!()
                    };
                    let found: Vec<&str> = found.iter().map(|kv| kv.key.as_str()).collect();
                    assert_eq!(found, expected, "{prefix:?}");
                }
            }
        }
    }

    fn range(prefix: &str, after: Option<&str>, limit: u32) -> Op<String> {
        Op::Range {
            prefix: prefix.into(),
            after: after.map(String::from),
            limit,
        }
    }

    /// The keys of a range result, and whether more follow.
    fn ranged(result: &OpResult<String>) -> (Vec<&str>, bool) {
        let OpResult::GotRange { found, more } = result else {
            panic!("not a range: {result:?}")
        };
        (found.iter().map(|kv| kv.key.as_str()).collect(), *more)
    }

    #[test]
    fn range_pages_through_a_prefix_in_key_order_and_says_when_more_follow() {
        let mut store = store();
        let keys = ["a/3", "a/1", "b/1", "a/5", "a", "a/2", "a/4"];
        run(&mut store, keys.iter().map(|key| put(key, "v")).collect());
        let page = |store: &mut Store, after, limit| {
            let results = run(store, vec![range("a/", after, limit)]);
            let (keys, more) = ranged(&results[0]);
            (keys.join(" "), more)
        };
        assert_eq!(page(&mut store, None, 2), ("a/1 a/2".into(), true));
        assert_eq!(page(&mut store, Some("a/2"), 2), ("a/3 a/4".into(), true));
        assert_eq!(page(&mut store, Some("a/4"), 2), ("a/5".into(), false));
        // A page that ends exactly at the last key has nothing more.
        assert_eq!(page(&mut store, Some("a/3"), 2), ("a/4 a/5".into(), false));
        assert_eq!(page(&mut store, Some("a/5"), 2), (String::new(), false));
        // A cursor between keys, or one that is not a key at all.
        assert_eq!(page(&mut store, Some("a/2x"), 1), ("a/3".into(), true));
        assert_eq!(
            page(&mut store, None, 100),
            ("a/1 a/2 a/3 a/4 a/5".into(), false)
        );
        // Limit 0 reads nothing but still says whether anything is there.
        assert_eq!(page(&mut store, None, 0), (String::new(), true));
        assert_eq!(page(&mut store, Some("a/5"), 0), (String::new(), false));
        assert_eq!(store.revision(), 1, "reads write nothing");
    }

    #[test]
    fn range_with_a_cursor_outside_the_prefix_starts_or_ends_at_its_edge() {
        let mut store = store();
        let keys = ["a", "b/1", "b/2", "c"];
        run(&mut store, keys.iter().map(|key| put(key, "v")).collect());
        let results = run(
            &mut store,
            vec![
                range("b/", Some("a"), 5),
                range("b/", Some("b/"), 5),
                range("b/", Some("b0"), 5),
                range("b/", Some("c"), 5),
            ],
        );
        assert_eq!(ranged(&results[0]), (vec!["b/1", "b/2"], false));
        assert_eq!(ranged(&results[1]), (vec!["b/1", "b/2"], false));
        assert_eq!(ranged(&results[2]), (vec![], false));
        assert_eq!(ranged(&results[3]), (vec![], false));
    }

    #[test]
    fn range_sees_the_txn_s_own_writes_and_counts_only_visible_keys() {
        let mut store = store();
        let keys = ["a/1", "a/2", "a/3", "a/4"];
        run(&mut store, keys.iter().map(|key| put(key, "old")).collect());
        let ops = vec![
            Op::Delete { key: "a/1".into() },
            Op::Delete { key: "a/2".into() },
            put("a/2b", "new"),
            put("a/3", "new"),
            range("a/", None, 2),
            range("a/", Some("a/3"), 2),
        ];
        let results = run(&mut store, ops);
        assert_eq!(ranged(&results[4]), (vec!["a/2b", "a/3"], true));
        let OpResult::GotRange { found, .. } = &results[4] else {
            panic!()
        };
        assert_eq!(found[1].value, "new", "the txn's own put");
        assert_eq!(ranged(&results[5]), (vec!["a/4"], false));
        // A key deleted by the txn at the end of the range is no "more".
        let results = run(
            &mut store,
            vec![
                Op::Delete { key: "a/4".into() },
                range("a/", Some("a/2b"), 1),
            ],
        );
        assert_eq!(ranged(&results[1]), (vec!["a/3"], false));
    }

    #[test]
    fn delete_prefix_removes_only_matching_keys_and_counts_them() {
        let mut store = store();
        run(
            &mut store,
            vec![
                put("x/1", "1"),
                put("x/2", "1"),
                put("x", "1"),
                put("y/1", "1"),
            ],
        );
        let results = run(
            &mut store,
            vec![Op::DeletePrefix {
                prefix: "x/".into(),
            }],
        );
        assert_eq!(results, vec![OpResult::Deleted { count: 2 }]);
        assert_eq!(store.len(), 2);
        assert!(store.get("x").is_some() && store.get("y/1").is_some());
        assert_eq!(store.revision(), 2);
    }

    #[test]
    fn lease_expiry_deletes_attached_keys_exactly_at_the_ttl() {
        let mut store = store();
        let lease = grant(&mut store, 1_000, 500);
        run(
            &mut store,
            vec![put_leased("held", "1", lease), put("free", "1")],
        );
        assert_eq!(store.expire_leases(1_499), vec![]);
        assert!(store.get("held").is_some());
        assert_eq!(store.revision(), 1);
        assert_eq!(store.expire_leases(1_500), vec![lease]);
        assert_eq!((store.get("held"), store.revision()), (None, 2));
        assert!(store.get("free").is_some());
        assert_eq!(store.lease_expiry_ms(lease), None);
    }

    #[test]
    fn expiry_of_a_lease_without_keys_does_not_bump_the_revision() {
        let mut store = store();
        let lease = grant(&mut store, 0, 100);
        assert_eq!(store.expire_leases(100), vec![lease]);
        assert_eq!(store.revision(), 0);
    }

    #[test]
    fn apply_expires_due_leases_before_the_request() {
        let mut store = store();
        let lease = grant(&mut store, 0, 100);
        run(&mut store, vec![put_leased("k", "v", lease)]);
        let request = StoreRequest::Txn(Txn::unconditional(vec![get("k")]));
        let StoreResponse::Txn {
            results, revision, ..
        } = store.apply(100, request)
        else {
            panic!()
        };
        assert_eq!((results, revision), (vec![OpResult::Got(None)], 2));
    }

    #[test]
    fn keep_alive_moves_expiry_to_ttl_from_now() {
        let mut store = store();
        let lease = grant(&mut store, 0, 100);
        run(&mut store, vec![put_leased("k", "v", lease)]);
        let response = store.apply(90, StoreRequest::LeaseKeepAlive { lease });
        assert_eq!(
            response,
            StoreResponse::LeaseKeptAlive { lease, ttl_ms: 100 }
        );
        assert_eq!(store.lease_expiry_ms(lease), Some(190));
        assert_eq!(store.expire_leases(189), vec![]);
        assert!(store.get("k").is_some());
        assert_eq!(store.expire_leases(190), vec![lease]);
    }

    #[test]
    fn keep_alive_of_an_expired_or_unknown_lease_is_rejected() {
        let mut store = store();
        let lease = grant(&mut store, 0, 100);
        let error = rejected(&mut store, 100, StoreRequest::LeaseKeepAlive { lease });
        assert_eq!(error, StoreError::LeaseNotFound(lease));
        let unknown = LeaseId(99);
        let error = rejected(
            &mut store,
            100,
            StoreRequest::LeaseKeepAlive { lease: unknown },
        );
        assert_eq!(error, StoreError::LeaseNotFound(unknown));
    }

    #[test]
    fn revoke_deletes_the_lease_and_its_keys_at_a_new_revision() {
        let mut store = store();
        let lease = grant(&mut store, 0, 1_000);
        run(
            &mut store,
            vec![put_leased("a", "1", lease), put_leased("b", "1", lease)],
        );
        let response = store.apply(10, StoreRequest::LeaseRevoke { lease });
        assert_eq!(response, StoreResponse::LeaseRevoked { lease });
        assert!(store.is_empty());
        assert_eq!(store.revision(), 2);
        let error = rejected(&mut store, 10, StoreRequest::LeaseRevoke { lease });
        assert_eq!(error, StoreError::LeaseNotFound(lease));
    }

    #[test]
    fn put_without_a_lease_detaches_the_key() {
        let mut store = store();
        let lease = grant(&mut store, 0, 100);
        run(&mut store, vec![put_leased("k", "1", lease)]);
        run(&mut store, vec![put("k", "2")]);
        assert_eq!(store.get("k").unwrap().lease, None);
        assert_eq!(store.expire_leases(100), vec![lease]);
        assert_eq!(value(&store, "k").as_deref(), Some("2"));
        assert_eq!(store.revision(), 2);
    }

    #[test]
    fn put_with_another_lease_moves_the_key_to_it() {
        let mut store = store();
        let short = grant(&mut store, 0, 100);
        let long = grant(&mut store, 0, 1_000);
        run(&mut store, vec![put_leased("k", "1", short)]);
        run(&mut store, vec![put_leased("k", "2", long)]);
        assert_eq!(store.expire_leases(100), vec![short]);
        assert_eq!(value(&store, "k").as_deref(), Some("2"));
        assert_eq!(store.expire_leases(1_000), vec![long]);
        assert!(store.is_empty());
    }

    #[test]
    fn put_then_delete_in_one_txn_writes_at_one_revision_and_leaves_nothing() {
        let mut store = store();
        let ops = vec![put("k", "1"), Op::Delete { key: "k".into() }, get("k")];
        let results = run(&mut store, ops);
        assert_eq!(results[1], OpResult::Deleted { count: 1 });
        assert_eq!(results[2], OpResult::Got(None));
        assert_eq!((store.len(), store.revision()), (0, 1));
    }

    #[test]
    fn put_with_an_unknown_lease_is_rejected_and_changes_nothing() {
        let mut store = store();
        run(&mut store, vec![put("a", "1")]);
        let before = store.clone();
        let ops = vec![put("a", "2"), put_leased("b", "1", LeaseId(7))];
        let error = rejected(&mut store, 0, StoreRequest::Txn(Txn::unconditional(ops)));
        assert_eq!(error, StoreError::LeaseNotFound(LeaseId(7)));
        assert_eq!(store, before);
    }

    #[test]
    fn unknown_lease_in_the_branch_not_taken_is_not_checked() {
        let mut store = store();
        let failure = vec![put_leased("b", "1", LeaseId(7))];
        let (succeeded, _) = txn(&mut store, vec![], vec![put("a", "1")], failure);
        assert!(succeeded);
        assert_eq!(store.len(), 1);
    }

    fn small_limits() -> StoreLimits {
        StoreLimits {
            max_keys: 2,
            max_value_bytes: 4,
            max_ops_per_txn: 3,
            max_leases: 1,
            min_ttl_ms: 10,
            max_ttl_ms: 1_000,
        }
    }

    #[test]
    fn too_many_keys_is_rejected_and_changes_nothing() {
        let mut store = KvStore::new(small_limits());
        run(&mut store, vec![put("a", "1")]);
        let before = store.clone();
        let request = StoreRequest::Txn(Txn::unconditional(vec![put("b", "1"), put("c", "1")]));
        assert_eq!(
            rejected(&mut store, 0, request),
            StoreError::TooManyKeys { limit: 2 }
        );
        assert_eq!(store, before);
        // Deleting first makes room within the same txn.
        run(
            &mut store,
            vec![Op::Delete { key: "a".into() }, put("b", "1"), put("c", "1")],
        );
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn value_too_large_is_rejected_and_changes_nothing() {
        let mut store = KvStore::new(small_limits());
        let before = store.clone();
        let request = StoreRequest::Txn(Txn::unconditional(vec![put("a", "1"), put("b", "12345")]));
        let error = rejected(&mut store, 0, request);
        assert_eq!(
            error,
            StoreError::ValueTooLarge {
                key: "b".into(),
                size: 5,
                limit: 4
            }
        );
        assert_eq!(store, before);
        run(&mut store, vec![put("b", "1234")]);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn too_many_ops_is_rejected_and_changes_nothing() {
        let mut store = KvStore::new(small_limits());
        let before = store.clone();
        let ops = vec![put("a", "1"), get("a"), get("a"), get("a")];
        let error = rejected(&mut store, 0, StoreRequest::Txn(Txn::unconditional(ops)));
        assert_eq!(error, StoreError::TooManyOps { limit: 3 });
        let compares = vec![Compare::Absent { key: "a".into() }; 4];
        let request = StoreRequest::Txn(Txn {
            compares,
            success: vec![put("a", "1")],
            failure: vec![],
        });
        assert_eq!(
            rejected(&mut store, 0, request),
            StoreError::TooManyOps { limit: 3 }
        );
        assert_eq!(store, before);
    }

    #[test]
    fn too_many_leases_is_rejected_and_changes_nothing() {
        let mut store = KvStore::new(small_limits());
        grant(&mut store, 0, 100);
        let before = store.clone();
        let error = rejected(&mut store, 0, StoreRequest::LeaseGrant { ttl_ms: 100 });
        assert_eq!(error, StoreError::TooManyLeases { limit: 1 });
        assert_eq!(store, before);
    }

    #[test]
    fn ttl_outside_the_range_is_rejected_and_changes_nothing() {
        let mut store = KvStore::new(small_limits());
        let before = store.clone();
        for ttl_ms in [9, 1_001] {
            let error = rejected(&mut store, 0, StoreRequest::LeaseGrant { ttl_ms });
            assert_eq!(
                error,
                StoreError::TtlOutOfRange {
                    ttl_ms,
                    min_ms: 10,
                    max_ms: 1_000
                }
            );
        }
        assert_eq!(store, before);
        grant(&mut store, 0, 10);
        store.expire_leases(10);
        grant(&mut store, 0, 1_000);
    }

    #[test]
    fn next_lease_expiry_is_the_earliest_live_lease() {
        let mut store = store();
        assert_eq!(store.next_lease_expiry_ms(), None);
        let late = grant(&mut store, 0, 500);
        let early = grant(&mut store, 0, 200);
        assert_eq!(store.next_lease_expiry_ms(), Some(200));
        store.apply(150, StoreRequest::LeaseKeepAlive { lease: early });
        assert_eq!(store.next_lease_expiry_ms(), Some(350));
        store.apply(160, StoreRequest::LeaseRevoke { lease: early });
        assert_eq!(store.next_lease_expiry_ms(), Some(500));
        assert_eq!(store.expire_leases(500), vec![late]);
        assert_eq!(store.next_lease_expiry_ms(), None);
    }

    #[test]
    fn renewing_all_leases_gives_each_its_full_ttl_from_now_and_keeps_its_keys() {
        let mut store = store();
        let short = grant(&mut store, 0, 100);
        let long = grant(&mut store, 50, 1_000);
        run(&mut store, vec![put_leased("k", "v", short)]);
        store.renew_all_leases(90);
        assert_eq!(store.lease_expiry_ms(short), Some(190));
        assert_eq!(store.lease_expiry_ms(long), Some(1_090));
        assert_eq!(store.next_lease_expiry_ms(), Some(190));
        assert_eq!(store.expire_leases(189), vec![]);
        assert!(store.get("k").is_some(), "alive past its old expiry");
        assert_eq!(store.expire_leases(190), vec![short]);
        assert!(store.get("k").is_none());
    }

    #[test]
    #[should_panic(expected = "would shorten it")]
    fn renewing_leases_at_an_earlier_time_than_their_grant_is_refused() {
        let mut store = store();
        grant(&mut store, 500, 100);
        store.renew_all_leases(100);
    }

    #[test]
    fn lease_ids_are_never_reused() {
        let mut store = store();
        let first = grant(&mut store, 0, 100);
        store.apply(0, StoreRequest::LeaseRevoke { lease: first });
        let second = grant(&mut store, 0, 100);
        assert_ne!(first, second);
        assert!(first.0 >= 1 && second > first);
    }

    #[test]
    fn invalid_limits_are_named() {
        assert_eq!(StoreLimits::default().validate(), Ok(()));
        let zero_ttl = StoreLimits {
            min_ttl_ms: 0,
            ..StoreLimits::default()
        };
        assert!(zero_ttl.validate().unwrap_err().contains("min_ttl_ms"));
        let inverted = StoreLimits {
            min_ttl_ms: 10,
            max_ttl_ms: 5,
            ..StoreLimits::default()
        };
        assert!(inverted.validate().unwrap_err().contains("max_ttl_ms"));
    }
}
