//! From the recovery point on, under the key's lock: the foreign side
//! effect (a create's charge, which billing deduplicates by key), the
//! recovery point `Charged`, and phase 3, the commit of the resource write,
//! the stored response, the deletion of the entry's `/idem-open/` copy and
//! the unlock in one transaction.

use node::Digested;

use super::decode::{Committed, Fenced, Read};
use super::{
    ApiNode, Commit, Ctx, MAX_CHARGE_SENDS, MAX_COMMIT_ATTEMPTS, Operation, OperationId, Purpose,
    Step, Write, error, lock_unchanged, put,
};
use crate::protocol::{
    ApiOp, ApiResponse, Event, LedgerEntry, Msg, Recovery, Resource, ResponseBody, Value, keys,
    status,
};
use crate::reply::Kv;
use crate::store::{Compare, Op, StoreRequest, Txn};

impl ApiNode {
    /// Continues a key I hold from its recovery point.
    pub(super) fn resume(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation) {
        let held = op.held.as_ref().expect("resuming needs the lock");
        match (&held.entry.op, &held.entry.recovery) {
            // Not reached: records write Started and claims compare an
            // unfinished entry's revision. Replaying is still right.
            (_, Recovery::Finished { response }) => {
                let (response, entry) = (response.clone(), held.entry.clone());
                self.replay(ctx, op, response, &entry)
            }
            (ApiOp::Create { .. }, Recovery::Started) => self.charge(ctx, id, op, 1),
            (ApiOp::Create { .. }, Recovery::Charged { .. }) => self.commit_create(ctx, id, op),
            (ApiOp::Update { .. } | ApiOp::Delete { .. }, _) => self.read(ctx, id, op),
            // Not reached: reads bypass the ledger (`read`).
            (ApiOp::Get { .. } | ApiOp::List { .. }, _) => self.give_up(ctx, op, false),
        }
    }

    /// The foreign side effect: billing deduplicates on the key.
    pub(super) fn charge(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation, sends: u32) {
        assert!((1..=MAX_CHARGE_SENDS).contains(&sends));
        self.send_charge(ctx, id, op, Step::Charge { sends });
    }

    /// Sends the charge of `op`, which waits for billing in `step`.
    pub(super) fn send_charge(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        step: Step,
    ) {
        let request_id = self.requests.next_id(ctx);
        let charge = Msg::Charge {
            request_id,
            key: op.key.clone(),
            amount_cents: self.settings.charge_cents,
        };
        let billing = self.topology.billing;
        ctx.send(billing, charge);
        op.step = step;
        let purpose = Purpose::Operation(id);
        self.requests.track(ctx, request_id, billing, purpose);
        self.operations.insert(id, op);
    }

    /// Saves the recovery point `Charged`, so a takeover skips the charge.
    pub(super) fn save_charged(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        charge_id: u64,
    ) {
        // Billing charged, the recovery point not yet saved: a takeover
        // from here must charge again with the same key (billing dedups).
        ctx.buggify("api.after_charge");
        let held = op.held.as_ref().expect("charging needs the lock");
        let mut entry = held.entry.clone();
        entry.recovery = Recovery::Charged { charge_id };
        let ledger = Value::Ledger(Digested::new(entry));
        let txn = Txn {
            compares: vec![lock_unchanged(&op.key, held)],
            success: vec![
                put(&keys::ledger(&op.key), ledger.clone(), held.ledger_lease),
                put(&keys::open(&op.key), ledger, held.ledger_lease),
            ],
            failure: vec![],
        };
        let step = Step::SaveCharged { charge_id };
        self.await_store(ctx, id, op, step, StoreRequest::Txn(txn));
    }

    pub(super) fn on_save_charged(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        mut op: Operation,
        charge_id: u64,
        saved: Fenced,
    ) {
        if saved == Fenced::Refused {
            return self.give_up(ctx, op, true);
        }
        let held = op.held.as_mut().expect("saving needs the lock");
        held.entry.recovery = Recovery::Charged { charge_id };
        self.commit_create(ctx, id, op);
    }

    pub(super) fn commit_create(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation) {
        let held = op.held.as_ref().expect("committing needs the lock");
        let ApiOp::Create { name, spec } = &held.entry.op else {
            // Not reached: `resume` charges and commits creates only.
            return self.give_up(ctx, op, false);
        };
        let resource = Resource {
            id: held.entry.resource_id.clone(),
            name: name.clone(),
            spec: *spec,
            generation: 1,
        };
        let commit = Commit {
            response: ApiResponse {
                status: status::CREATED,
                body: ResponseBody::Resource(resource.clone()),
            },
            write: Write::Create(resource),
            resource_revision: 0,
            attempt: 1,
        };
        self.commit(ctx, id, op, commit);
    }

    /// Updates and deletes read the resource under the lock first.
    pub(super) fn read(&mut self, ctx: &mut Ctx<'_>, id: OperationId, op: Operation) {
        let held = op.held.as_ref().expect("reading needs the lock");
        let txn = Txn {
            compares: vec![lock_unchanged(&op.key, held)],
            success: vec![Op::Get {
                key: keys::resource(&held.entry.resource_id),
            }],
            failure: vec![],
        };
        self.await_store(ctx, id, op, Step::Read, StoreRequest::Txn(txn));
    }

    pub(super) fn on_read(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        read: Read,
    ) {
        let Read::Found(found) = read else {
            return self.give_up(ctx, op, true);
        };
        let held = op.held.as_ref().expect("reading needs the lock");
        match plan_change(&held.entry, found.as_ref(), 1) {
            Some(commit) => self.commit(ctx, id, op, commit),
            None => self.give_up(ctx, op, false),
        }
    }

    /// Phase 3: the resource write, the stored response and the unlock, at
    /// once, only while my lock stands and the resource is as planned.
    pub(super) fn commit(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        commit: Commit,
    ) {
        // Charged and saved, about to commit under the lock: a pause here
        // lets the lock lapse so the commit must be refused by its compare.
        ctx.buggify("api.before_commit");
        let held = op.held.as_ref().expect("committing needs the lock");
        let resource_id = &held.entry.resource_id;
        let resource_key = keys::resource(resource_id);
        let mut success = match &commit.write {
            Write::Create(resource) | Write::Update(resource) => {
                vec![put(
                    &resource_key,
                    Value::Resource(Digested::new(resource.clone())),
                    None,
                )]
            }
            Write::Delete => vec![
                Op::Delete {
                    key: resource_key.clone(),
                },
                Op::Delete {
                    key: keys::status(resource_id),
                },
            ],
            Write::Nothing => vec![],
        };
        let mut finished = held.entry.clone();
        finished.recovery = Recovery::Finished {
            response: commit.response.clone(),
        };
        let ledger = Value::Ledger(Digested::new(finished));
        success.push(put(&keys::ledger(&op.key), ledger, held.ledger_lease));
        success.push(Op::Delete {
            key: keys::open(&op.key),
        });
        success.push(Op::Delete {
            key: keys::lock(&op.key),
        });
        let resource_as_planned = match commit.resource_revision {
            0 => Compare::Absent {
                key: resource_key.clone(),
            },
            revision => Compare::ModRevisionEquals {
                key: resource_key.clone(),
                revision,
            },
        };
        let txn = Txn {
            compares: vec![lock_unchanged(&op.key, held), resource_as_planned],
            success,
            failure: vec![
                Op::Get {
                    key: keys::lock(&op.key),
                },
                Op::Get { key: resource_key },
            ],
        };
        let step = Step::Commit(Box::new(commit));
        self.await_store(ctx, id, op, step, StoreRequest::Txn(txn));
    }

    pub(super) fn on_commit(
        &mut self,
        ctx: &mut Ctx<'_>,
        id: OperationId,
        op: Operation,
        commit: Commit,
        committed: Committed,
    ) {
        let (lock, found) = match committed {
            Committed::Done { revision } => return self.finish(ctx, op, commit, revision),
            Committed::Refused { lock, found } => (lock, found),
        };
        let held = op.held.as_ref().expect("committing needs the lock");
        if lock
            .as_ref()
            .is_none_or(|lock| lock.mod_revision != held.lock_revision)
        {
            return self.give_up(ctx, op, true);
        }
        // My lock stands, so the resource changed under the plan: plan
        // again from what is there now, a bounded number of times.
        let retry = matches!(
            commit.write,
            Write::Update(_) | Write::Delete | Write::Nothing
        ) && commit.attempt < MAX_COMMIT_ATTEMPTS;
        match plan_change(&held.entry, found.as_ref(), commit.attempt + 1) {
            Some(next) if retry => {
                ctx.record(Event::CommitReplanned {
                    key: op.key.clone(),
                    attempt: next.attempt,
                });
                self.commit(ctx, id, op, next)
            }
            _ => self.give_up(ctx, op, false),
        }
    }

    /// The commit is confirmed: record it and answer.
    pub(super) fn finish(
        &mut self,
        ctx: &mut Ctx<'_>,
        op: Operation,
        commit: Commit,
        revision: u64,
    ) {
        let held = op.held.as_ref().expect("finishing needs the lock");
        let fingerprint = held.entry.fingerprint;
        let resource = match commit.write {
            Write::Create(resource) | Write::Update(resource) => Some(Some(resource)),
            Write::Delete => Some(None),
            Write::Nothing => None,
        };
        if let Some(resource) = resource {
            ctx.record(Event::ResourceCommitted {
                id: held.entry.resource_id.clone(),
                key: op.key.clone(),
                fingerprint,
                created: matches!(held.entry.op, ApiOp::Create { .. }),
                resource,
                revision,
            });
        }
        ctx.record(Event::KeyFinished {
            key: op.key.clone(),
            fingerprint,
            response: commit.response.clone(),
            by_completer: op.client.is_none(),
        });
        self.reply(ctx, op.client, commit.response, false, Some(&held.entry));
    }
}

/// Plans the commit of an update or delete from the resource as found:
/// absent gives a stored 404. `None` when the entry is not a change.
fn plan_change(entry: &LedgerEntry, found: Option<&Kv>, attempt: u32) -> Option<Commit> {
    let id = &entry.resource_id;
    let Some(found) = found else {
        let response = error(status::NOT_FOUND, &format!("resource {id} not found"));
        return Some(Commit {
            response,
            write: Write::Nothing,
            resource_revision: 0,
            attempt,
        });
    };
    let Value::Resource(current) = &found.value else {
        return None;
    };
    let (body, write) = match &entry.op {
        // The same spec again is not a change: the generation stays, and
        // the commit only checks that nothing moved under the answer.
        ApiOp::Update { spec, .. } if *spec == current.spec => (
            ResponseBody::Resource(Resource::clone(current)),
            Write::Nothing,
        ),
        ApiOp::Update { spec, .. } => {
            let next = Resource {
                spec: *spec,
                generation: current.generation + 1,
                ..Resource::clone(current)
            };
            (ResponseBody::Resource(next.clone()), Write::Update(next))
        }
        ApiOp::Delete { .. } => (ResponseBody::Deleted { id: id.clone() }, Write::Delete),
        ApiOp::Create { .. } | ApiOp::Get { .. } | ApiOp::List { .. } => return None,
    };
    let response = ApiResponse {
        status: status::OK,
        body,
    };
    Some(Commit {
        response,
        write,
        resource_revision: found.mod_revision,
        attempt,
    })
}
