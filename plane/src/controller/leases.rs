//! Membership, the shard and leader leases, and beliefs: one snapshot per
//! membership round settles each lease (acquire, adopt, release, or see it
//! lost); a belief starts only while the session is valid, and a shard's
//! belief fences every worker before any pass of the shard runs.

use std::collections::{BTreeMap, BTreeSet};

use node::{Digested, NodeId};

use super::decode::{self, Claimed, Membership};
use super::reconcile::{ShardWork, index_outstanding};
use super::{ControllerNode, Ctx, Purpose, holder, lease_key};
use crate::protocol::{BeliefEnd, Event, Instance, LeaseName, Msg, Value, keys};
use crate::reply::Kv;
use crate::shard::{ShardId, modulo_owner, rendezvous_owner, shard_of};
use crate::store::{Compare, LeaseId, Op, StoreRequest, StoreResponse, Txn};

impl ControllerNode {
    /// Puts my member key on the session, unless done or in flight.
    pub(super) fn register(&mut self, ctx: &mut Ctx<'_>) {
        let Some(lease) = self.session.lease() else {
            return;
        };
        if self.registered || self.awaiting(|p| matches!(p, Purpose::Register { .. })) {
            return;
        }
        let put = Op::Put {
            key: keys::member(ctx.id()),
            value: Value::Holder {
                controller: ctx.id(),
            },
            lease: Some(lease),
        };
        let request = StoreRequest::Txn(Txn::unconditional(vec![put]));
        self.send_store(ctx, request, Purpose::Register { lease });
    }

    /// One snapshot of members, shard keys and the leader key.
    pub(super) fn read_membership(&mut self, ctx: &mut Ctx<'_>) {
        let registered = self.session.lease().is_some() && self.registered;
        if !registered || self.awaiting(|p| matches!(p, Purpose::Membership)) {
            return;
        }
        let ops = vec![
            Op::GetPrefix {
                prefix: keys::MEMBERS.to_string(),
            },
            Op::GetPrefix {
                prefix: keys::SHARDS.to_string(),
            },
            Op::Get {
                key: keys::LEADER.to_string(),
            },
        ];
        let request = StoreRequest::Txn(Txn::unconditional(ops));
        self.send_store(ctx, request, Purpose::Membership);
    }

    pub(super) fn handle_registered(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseId,
        response: StoreResponse<Value>,
    ) {
        if self.session.lease() != Some(lease) {
            return;
        }
        match decode::registered(response) {
            Ok(true) => {
                self.registered = true;
                self.read_membership(ctx);
            }
            // Retried at the next tick.
            Ok(false) => {}
            Err(error) => error.log("member registration"),
        }
    }

    pub(super) fn handle_membership(&mut self, ctx: &mut Ctx<'_>, response: StoreResponse<Value>) {
        let read = match decode::membership(response, self.settings.shard_count) {
            Ok(read) => read,
            // The next round reads again.
            Err(error) => return error.log("membership read"),
        };
        self.observe_membership(ctx, &read);
        let me = ctx.id();
        if !read.members.contains(&me) {
            // My member key is gone, so my session probably is too (the
            // keep-alive will tell). Re-register rather than hand every
            // shard away on what may be a passing state.
            self.registered = false;
            self.register(ctx);
            return;
        }
        for shard in (0..self.settings.shard_count).map(ShardId) {
            let owner = if self.bugs.modulo_sharding {
                modulo_owner(shard, &read.members)
            } else {
                rendezvous_owner(shard, &read.members)
            };
            let wanted = owner == Some(me);
            let stored = read.shard_keys[shard.0 as usize].as_ref();
            self.settle_lease(ctx, LeaseName::Shard(shard), wanted, stored, read.revision);
        }
        let leader = read.leader.as_ref();
        self.settle_lease(ctx, LeaseName::Leader, true, leader, read.revision);
    }

    /// Records a membership that differs from the last one read.
    pub(super) fn observe_membership(&mut self, ctx: &mut Ctx<'_>, read: &Membership) {
        let mut members = read.members.clone();
        members.sort_unstable();
        if self.last_members.as_ref() == Some(&members) {
            return;
        }
        ctx.record(Event::MembershipObserved {
            members: members.clone(),
            revision: read.revision,
        });
        self.last_members = Some(members);
    }

    /// Settles one lease against a membership snapshot taken at
    /// `read_revision` (see the module docs for the cases).
    pub(super) fn settle_lease(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseName,
        wanted: bool,
        stored: Option<&Kv>,
        read_revision: u64,
    ) {
        let mine = stored.filter(|kv| holder(&kv.value) == Some(ctx.id()));
        if let Some(&token) = self.beliefs.get(&lease) {
            if !wanted {
                self.release(ctx, lease, token);
            } else if read_revision >= token && mine.is_none_or(|kv| kv.mod_revision != token) {
                // A read newer than my claim shows the key gone or retaken.
                self.end_belief(ctx, lease, BeliefEnd::Lost);
            }
            return;
        }
        if self.awaiting(|purpose| purpose.lease() == Some(lease)) {
            return;
        }
        match (stored, mine) {
            (None, _) if wanted => self.claim(ctx, lease, None),
            (_, Some(kv)) if wanted => self.claim(ctx, lease, Some(kv.mod_revision)),
            (_, Some(kv)) => self.delete_lease_key(ctx, lease, kv.mod_revision),
            // Someone else's, or free and not mine to take.
            _ => {}
        }
    }

    /// Acquires a free key (`seen_revision` is `None`) or adopts my own
    /// key at `seen_revision` by putting it again on the current session.
    pub(super) fn claim(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseName,
        seen_revision: Option<u64>,
    ) {
        // A claim whose reply could not be believed would only churn.
        if !self.valid(ctx) {
            return;
        }
        let session = self.session.lease().expect("valid implies a session");
        let key = lease_key(lease);
        let compare = match seen_revision {
            None => Compare::Absent { key: key.clone() },
            Some(revision) => Compare::ModRevisionEquals {
                key: key.clone(),
                revision,
            },
        };
        let put = Op::Put {
            key: key.clone(),
            value: Value::Holder {
                controller: ctx.id(),
            },
            lease: Some(session),
        };
        let txn = Txn {
            compares: vec![compare],
            success: vec![put],
            failure: vec![Op::Get { key }],
        };
        let purpose = Purpose::Claim { lease, session };
        self.send_store(ctx, StoreRequest::Txn(txn), purpose);
    }

    pub(super) fn handle_claimed(
        &mut self,
        ctx: &mut Ctx<'_>,
        lease: LeaseName,
        session: LeaseId,
        response: StoreResponse<Value>,
    ) {
        let revision = match decode::claim(response) {
            Ok(Claimed::Acquired { revision }) => revision,
            Ok(Claimed::Taken { current }) => {
                // Taken already: if by me (a restart, or an earlier claim
                // whose reply was lost), adopt it.
                if let Some(kv) = current.filter(|kv| holder(&kv.value) == Some(ctx.id())) {
                    self.claim(ctx, lease, Some(kv.mod_revision));
                }
                return;
            }
            // The next membership round settles the lease again.
            Err(error) => return error.log("lease claim"),
        };
        ctx.record(Event::LeaseAcquired {
            lease,
            token: revision,
        });
        // Acquired, fences not yet raised: delayed or lost `Observe`s leave
        // the previous holder's actions unfenced a while longer.
        ctx.buggify("controller.after_acquire");
        // The key lives only as long as the session it was put on, and only
        // the current session's validity is known.
        let current = self.session.lease() == Some(session);
        if current && self.valid(ctx) && !self.beliefs.contains_key(&lease) {
            self.begin_belief(ctx, lease, revision);
        }
    }

    /// Gives a lease up: the belief ends before the key can move.
    pub(super) fn release(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, token: u64) {
        self.end_belief(ctx, lease, BeliefEnd::Released);
        self.delete_lease_key(ctx, lease, token);
    }

    pub(super) fn delete_lease_key(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, revision: u64) {
        let key = lease_key(lease);
        let txn = Txn {
            compares: vec![Compare::ModRevisionEquals {
                key: key.clone(),
                revision,
            }],
            success: vec![Op::Delete { key }],
            failure: Vec::new(),
        };
        self.send_store(ctx, StoreRequest::Txn(txn), Purpose::Release { lease });
    }

    pub(super) fn begin_belief(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, token: u64) {
        assert!(self.valid(ctx), "a belief starts only while valid");
        let previous = self.beliefs.insert(lease, token);
        assert!(previous.is_none(), "one belief per lease");
        ctx.record(Event::BeliefStarted { lease, token });
        let LeaseName::Shard(shard) = lease else {
            return;
        };
        let workers: BTreeSet<NodeId> = self.topology.workers.iter().copied().collect();
        let work = ShardWork {
            token,
            fence_waiting: workers.clone(),
            outstanding: BTreeMap::new(),
        };
        self.shards.insert(shard, work);
        for worker in workers.iter().copied() {
            self.send_fence(ctx, shard, token, worker);
        }
        if workers.is_empty() {
            self.list_resources(ctx);
        }
    }

    pub(super) fn end_belief(&mut self, ctx: &mut Ctx<'_>, lease: LeaseName, reason: BeliefEnd) {
        let Some(token) = self.beliefs.remove(&lease) else {
            return;
        };
        ctx.record(Event::BeliefEnded {
            lease,
            token,
            reason,
        });
        if let LeaseName::Shard(shard) = lease {
            self.drop_shard_work(ctx, shard);
        }
    }

    /// Ends the shard's belief if it still is the one with `token`.
    pub(super) fn end_shard_belief(
        &mut self,
        ctx: &mut Ctx<'_>,
        shard: ShardId,
        token: u64,
        reason: BeliefEnd,
    ) {
        let lease = LeaseName::Shard(shard);
        if self.beliefs.get(&lease) == Some(&token) {
            self.end_belief(ctx, lease, reason);
        }
    }

    pub(super) fn end_all_beliefs(&mut self, ctx: &mut Ctx<'_>, reason: BeliefEnd) {
        let held: Vec<LeaseName> = self.beliefs.keys().copied().collect();
        for lease in held {
            self.end_belief(ctx, lease, reason);
        }
        assert!(self.beliefs.is_empty() && self.shards.is_empty());
    }

    /// Forgets everything about a shard no longer believed: its passes,
    /// queued keys, backoffs and outstanding actions. The next holder
    /// fences before acting, so nothing here needs finishing.
    pub(super) fn drop_shard_work(&mut self, ctx: &mut Ctx<'_>, shard: ShardId) {
        if let Some(work) = self.shards.remove(&shard) {
            for outstanding in work.outstanding.values() {
                index_outstanding(&mut self.unsettled, outstanding, false);
            }
        }
        let shard_count = self.settings.shard_count;
        let in_shard = move |key: &str| shard_of(key, shard_count) == shard;
        self.passes.retain(|_, pass| pass.shard != shard);
        self.queue.retain(|key| !in_shard(key));
        let dropped: Vec<String> = self
            .requeues
            .keys()
            .filter(|key| in_shard(key))
            .cloned()
            .collect();
        for key in dropped {
            if let Some(timer) = self.requeues.remove(&key) {
                ctx.cancel_timer(timer);
            }
        }
    }

    pub(super) fn send_fence(
        &mut self,
        ctx: &mut Ctx<'_>,
        shard: ShardId,
        token: u64,
        worker: NodeId,
    ) {
        if !self.may_act(ctx, shard, token) {
            return;
        }
        let purpose = Purpose::Fence {
            shard,
            token,
            worker,
        };
        let settled = self.settled(ctx, worker);
        self.send_request(ctx, worker, purpose, |request_id| Msg::Observe {
            request_id,
            shard,
            token,
            resource: None,
            settled,
        });
    }

    pub(super) fn handle_fence_observed(
        &mut self,
        ctx: &mut Ctx<'_>,
        shard: ShardId,
        token: u64,
        worker: NodeId,
        instances: Result<Vec<Digested<Instance>>, u64>,
    ) {
        let Ok(found) = instances else {
            // A higher token reached this worker: someone else holds it now.
            self.end_shard_belief(ctx, shard, token, BeliefEnd::Fenced);
            return;
        };
        let Some(work) = self.shards.get_mut(&shard).filter(|w| w.token == token) else {
            return;
        };
        if !work.fence_waiting.remove(&worker) {
            return;
        }
        let fenced = work.fence_waiting.is_empty();
        for instance in found {
            self.enqueue(instance.resource.clone());
        }
        if fenced {
            // Every worker fenced, nothing read yet: the new holder is about
            // to act for the first time.
            ctx.buggify("controller.after_fenced");
            // Now passes may run: find every resource of the shard.
            self.list_resources(ctx);
        }
    }
}
