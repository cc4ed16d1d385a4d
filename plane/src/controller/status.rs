//! The status write of a converged pass: fenced in the store by the shard
//! key's mod revision (the token) and by the resource's mod revision read,
//! so a stale holder cannot write, and the status describes what was read.

use super::decode::{self, Desired, StatusWrite};
use super::reconcile::Outcome;
use super::{ControllerNode, Ctx, Purpose, holder};
use crate::protocol::{BeliefEnd, Event, Status, Value, keys};
use crate::store::{Compare, Op, StoreRequest, StoreResponse, Txn};

impl ControllerNode {
    /// Nothing to do: write the status if it changed.
    pub(super) fn converge(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        desired: Option<Desired>,
        stored: Option<Status>,
    ) {
        // A deleted resource with nothing running has no status to write:
        // the API deleted it.
        let Some(desired) = desired else {
            return self.finish_pass(ctx, resource, attempt, Outcome::Converged);
        };
        let status = Status {
            observed_generation: desired.generation,
            ready_replicas: desired.replicas,
        };
        if stored == Some(status) {
            return self.finish_pass(ctx, resource, attempt, Outcome::Converged);
        }
        let pass = self.pass_mut(attempt).expect("the pass is live");
        let (shard, token) = (pass.shard, pass.token);
        if !self.may_act(ctx, shard, token) {
            return self.abandon_pass(&resource, attempt);
        }
        let txn = Txn {
            compares: vec![
                Compare::ModRevisionEquals {
                    key: keys::shard(shard),
                    revision: token,
                },
                Compare::ModRevisionEquals {
                    key: keys::resource(&resource),
                    revision: desired.mod_revision,
                },
            ],
            success: vec![Op::Put {
                key: keys::status(&resource),
                value: Value::Status(status),
                lease: None,
            }],
            failure: vec![Op::Get {
                key: keys::shard(shard),
            }],
        };
        let purpose = Purpose::WriteStatus {
            resource,
            attempt,
            status,
        };
        self.send_store(ctx, StoreRequest::Txn(txn), purpose);
    }

    pub(super) fn handle_status_written(
        &mut self,
        ctx: &mut Ctx<'_>,
        resource: String,
        attempt: u64,
        status: Status,
        response: StoreResponse<Value>,
    ) {
        let Some(pass) = self.pass_mut(attempt) else {
            return;
        };
        let (shard, token) = (pass.shard, pass.token);
        let shard_key = match decode::status_write(response) {
            Ok(StatusWrite::Written { revision }) => {
                let written = Event::StatusWritten {
                    resource: resource.clone(),
                    status,
                    token,
                    revision,
                };
                ctx.record(written);
                return self.finish_pass(ctx, resource, attempt, Outcome::Converged);
            }
            Ok(StatusWrite::Refused { shard_key }) => shard_key,
            Err(error) => {
                error.log("status write");
                return self.fail_pass(ctx, &resource, attempt);
            }
        };
        let me = ctx.id();
        let still_mine =
            shard_key.is_some_and(|kv| kv.mod_revision == token && holder(&kv.value) == Some(me));
        if still_mine {
            // The resource changed since it was read: look again.
            self.finish_pass(ctx, resource, attempt, Outcome::Progressed);
        } else {
            // The store says the shard key moved on without me.
            self.end_shard_belief(ctx, shard, token, BeliefEnd::Lost);
        }
    }
}
