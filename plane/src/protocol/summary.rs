//! Messages and history events told in one line each, and what they are
//! about: the resource, idempotency key, shard, action or token they name.
//!
//! A trace says that `controller-0` got a message; a person hunting a bug
//! needs to know it was `Act start r3#0 gen 2 (shard 1, token 7)`. These
//! lines are for people (trace printers, a violation's story), never
//! parsed back; the subjects are what a story filters on, so they must name
//! the same things the checkers name in a violation.

use std::fmt::Write as _;

use serde::Serialize;

use super::keys;
use super::{
    ActionId, ActionKind, ActionOutcome, ApiOp, ApiRequest, ApiResponse, Event, LeaseName, Msg,
    RequestId, ResponseBody, Value,
};
use crate::shard::ShardId;
use crate::store::{Compare, Op, OpResult, StoreRequest, StoreResponse};

/// The most store ops or results a summary lists before `+N more`.
const OPS_LISTED: usize = 3;

/// Something a message, an event or a violation is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A resource id.
    Resource(String),
    /// An idempotency key.
    Key(String),
    /// A shard (by number).
    Shard(u32),
    /// An action id.
    Action(ActionId),
    /// A fencing token (a shard or leader lease's revision).
    Token(u64),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Resource(id) => write!(f, "resource {id}"),
            Subject::Key(key) => write!(f, "key {key}"),
            Subject::Shard(shard) => write!(f, "shard {shard}"),
            Subject::Action(action) => write!(f, "action {}", action_text(action)),
            Subject::Token(token) => write!(f, "token {token}"),
        }
    }
}

/// `n4/1/5`: the controller's node (`n4`, as node ids print), its boot,
/// the sequence.
pub fn action_text(action: &ActionId) -> String {
    format!(
        "n{}/{}/{}",
        action.controller.0, action.boot, action.sequence
    )
}

/// `#12`, or `#2.12` for a request of the sender's third boot.
fn request_text(request_id: RequestId) -> String {
    let boot = request_id >> 48;
    let counter = request_id & ((1 << 48) - 1);
    if boot == 0 {
        format!("#{counter}")
    } else {
        format!("#{boot}.{counter}")
    }
}

/// What a store key names: `/res/r3` a resource, `/idem/k1` a key, ...
fn key_subject(key: &str) -> Option<Subject> {
    let after = |prefixes: &[&str]| prefixes.iter().find_map(|p| key.strip_prefix(p));
    if let Some(id) = after(&[keys::RESOURCES, keys::STATUSES]) {
        return Some(Subject::Resource(id.to_string()));
    }
    if let Some(key) = after(&[keys::LEDGER, keys::LOCKS, keys::OPEN]) {
        return Some(Subject::Key(key.to_string()));
    }
    let shard = key.strip_prefix(keys::SHARDS)?;
    shard.parse().ok().map(Subject::Shard)
}

fn push_unique(subjects: &mut Vec<Subject>, subject: Subject) {
    if !subjects.contains(&subject) {
        subjects.push(subject);
    }
}

fn lease_subjects(subjects: &mut Vec<Subject>, lease: &LeaseName, token: u64) {
    if let LeaseName::Shard(shard) = lease {
        push_unique(subjects, Subject::Shard(shard.0));
    }
    push_unique(subjects, Subject::Token(token));
}

fn lease_text(lease: &LeaseName) -> String {
    match lease {
        LeaseName::Shard(ShardId(shard)) => format!("shard {shard}"),
        LeaseName::Leader => "leader".to_string(),
    }
}

fn op_text(op: &ApiOp) -> String {
    match op {
        ApiOp::Create { name, spec } => {
            format!(
                "create {name} ({} replicas, image {})",
                spec.replicas, spec.image
            )
        }
        ApiOp::Update { id, spec } => {
            format!(
                "update {id} ({} replicas, image {})",
                spec.replicas, spec.image
            )
        }
        ApiOp::Delete { id } => format!("delete {id}"),
        ApiOp::Get { id } => format!("get {id}"),
        ApiOp::List { after, limit } => match after {
            Some(after) => format!("list after {after} (limit {limit})"),
            None => format!("list (limit {limit})"),
        },
    }
}

fn response_text(response: &ApiResponse) -> String {
    let body = match &response.body {
        ResponseBody::Resource(resource) => {
            format!("{} gen {}", resource.id, resource.generation)
        }
        ResponseBody::Deleted { id } => format!("deleted {id}"),
        ResponseBody::Error { message } => message.clone(),
        ResponseBody::Read(view) => {
            format!("{} gen {}", view.resource.id, view.resource.generation)
        }
        ResponseBody::Page { items, next } => {
            let more = if next.is_some() { ", more" } else { "" };
            format!("{} items{more}", items.len())
        }
    };
    format!("{} {body}", response.status)
}

fn compare_text(compare: &Compare) -> String {
    match compare {
        Compare::ModRevisionEquals { key, revision } => match key_subject(key) {
            Some(Subject::Shard(_)) => format!("fence token {revision} on {key}"),
            _ => format!("{key} at rev {revision}"),
        },
        Compare::Absent { key } => format!("{key} absent"),
        Compare::Present { key } => format!("{key} present"),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Resource(resource) => format!(" (gen {})", resource.generation),
        Value::Status(status) => format!(
            " (observed gen {}, {} ready)",
            status.observed_generation, status.ready_replicas
        ),
        Value::Ledger(entry) => {
            let phase = match &entry.recovery {
                super::Recovery::Started => "started",
                super::Recovery::Charged { .. } => "charged",
                super::Recovery::Finished { .. } => "finished",
            };
            format!(" ({phase})")
        }
        Value::Lock { owner } => format!(" (lock of n{})", owner.0),
        Value::Holder { controller } => format!(" (held by n{})", controller.0),
    }
}

fn store_op_text(op: &Op<Value>) -> String {
    match op {
        Op::Get { key } => format!("get {key}"),
        Op::GetPrefix { prefix } => format!("get {prefix}*"),
        Op::Put { key, value, .. } => format!("put {key}{}", value_text(value)),
        Op::Delete { key } => format!("delete {key}"),
        Op::DeletePrefix { prefix } => format!("delete {prefix}*"),
        Op::Range { prefix, limit, .. } => format!("range {prefix}* (limit {limit})"),
    }
}

fn result_text(result: &OpResult<Value>) -> String {
    match result {
        OpResult::Got(Some(kv)) => format!("got {}{}", kv.key, value_text(&kv.value)),
        OpResult::Got(None) => "got nothing".to_string(),
        OpResult::GotPrefix(kvs) => format!("got {} keys", kvs.len()),
        OpResult::Put { revision, .. } => format!("put at rev {revision}"),
        OpResult::Deleted { count } => format!("deleted {count}"),
        other => format!("{other:?}"),
    }
}

/// `a, b, c +2 more`.
fn listed(items: impl ExactSizeIterator<Item = String>) -> String {
    let total = items.len();
    let mut text = items.take(OPS_LISTED).collect::<Vec<_>>().join(", ");
    if total > OPS_LISTED {
        let _ = write!(text, " +{} more", total - OPS_LISTED);
    }
    text
}

fn store_request_text(request: &StoreRequest<Value>) -> String {
    match request {
        StoreRequest::Txn(txn) => {
            let mut text = String::from("txn");
            if !txn.compares.is_empty() {
                let _ = write!(
                    text,
                    " if {}",
                    listed(txn.compares.iter().map(compare_text))
                );
                text.push(':');
            }
            let _ = write!(text, " {}", listed(txn.success.iter().map(store_op_text)));
            if !txn.failure.is_empty() {
                let _ = write!(
                    text,
                    " else {}",
                    listed(txn.failure.iter().map(store_op_text))
                );
            }
            text
        }
        StoreRequest::LeaseGrant { ttl_ms } => format!("lease grant ttl {ttl_ms} ms"),
        StoreRequest::LeaseKeepAlive { lease } => format!("keep-alive {lease}"),
        StoreRequest::LeaseRevoke { lease } => format!("revoke {lease}"),
    }
}

fn store_response_text(response: &StoreResponse<Value>) -> String {
    match response {
        StoreResponse::Txn {
            succeeded,
            revision,
            results,
        } => {
            let verdict = if *succeeded { "succeeded" } else { "failed" };
            let mut text = format!("txn {verdict} at rev {revision}");
            if !results.is_empty() {
                let _ = write!(text, ": {}", listed(results.iter().map(result_text)));
            }
            text
        }
        StoreResponse::LeaseGranted {
            lease,
            ttl_ms,
            expires_at_ms,
        } => format!("{lease} granted ttl {ttl_ms} ms (expires at {expires_at_ms} ms)"),
        StoreResponse::LeaseKeptAlive { lease, ttl_ms } => {
            format!("{lease} kept alive ttl {ttl_ms} ms")
        }
        StoreResponse::LeaseRevoked { lease } => format!("{lease} revoked"),
        StoreResponse::Error(error) => format!("error {error:?}"),
    }
}

fn action_kind_text(kind: &ActionKind) -> String {
    match kind {
        ActionKind::Start {
            resource,
            ordinal,
            generation,
        } => format!("start {resource}#{ordinal} gen {generation}"),
        ActionKind::Stop { instance } => {
            format!("stop instance n{}/{}", instance.worker.0, instance.sequence)
        }
    }
}

fn outcome_text(outcome: &ActionOutcome) -> String {
    match outcome {
        ActionOutcome::Started { instance } => {
            format!(
                "started instance n{}/{}",
                instance.worker.0, instance.sequence
            )
        }
        ActionOutcome::Stopped => "stopped".to_string(),
        ActionOutcome::NotFound => "nothing to stop".to_string(),
        ActionOutcome::Rejected { highest_token } => {
            format!("rejected: stale token (highest {highest_token})")
        }
        ActionOutcome::Busy => "busy".to_string(),
    }
}

fn api_request_text(request: &ApiRequest) -> String {
    let key = match &request.idempotency_key {
        Some(key) => format!(" key {key}"),
        None => String::new(),
    };
    format!(
        "Api {} {}{key}",
        request_text(request.request_id),
        op_text(&request.op)
    )
}

impl Msg {
    /// The variant's name, e.g. `StoreRequest`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Msg::StoreRequest { .. } => "StoreRequest",
            Msg::StoreReply { .. } => "StoreReply",
            Msg::Watch { .. } => "Watch",
            Msg::Changed { .. } => "Changed",
            Msg::Api(_) => "Api",
            Msg::ApiReply(_) => "ApiReply",
            Msg::Charge { .. } => "Charge",
            Msg::Charged { .. } => "Charged",
            Msg::Observe { .. } => "Observe",
            Msg::Observed { .. } => "Observed",
            Msg::Act { .. } => "Act",
            Msg::Acted { .. } => "Acted",
        }
    }

    /// One line for people: the kind and the fields that matter (request
    /// id, keys, tokens, action ids, generations, statuses).
    pub fn summary(&self) -> String {
        match self {
            Msg::StoreRequest {
                request_id,
                request,
            } => format!(
                "StoreRequest {} {}",
                request_text(*request_id),
                store_request_text(request)
            ),
            Msg::StoreReply {
                request_id,
                response,
            } => format!(
                "StoreReply {} {}",
                request_text(*request_id),
                store_response_text(response)
            ),
            Msg::Watch { prefix } => format!("Watch {prefix}*"),
            Msg::Changed { key, revision } => format!("Changed {key} at rev {revision}"),
            Msg::Api(request) => api_request_text(request),
            Msg::ApiReply(reply) => {
                let replayed = if reply.replayed { " (replayed)" } else { "" };
                format!(
                    "ApiReply {} {}{replayed}",
                    request_text(reply.request_id),
                    response_text(&reply.response)
                )
            }
            Msg::Charge {
                request_id,
                key,
                amount_cents,
            } => format!(
                "Charge {} key {key} {amount_cents} cents",
                request_text(*request_id)
            ),
            Msg::Charged {
                request_id,
                key,
                charge_id,
            } => format!(
                "Charged {} key {key} charge {charge_id}",
                request_text(*request_id)
            ),
            Msg::Observe {
                request_id,
                shard,
                token,
                resource,
                ..
            } => {
                let only = match resource {
                    Some(id) => format!(" resource {id}"),
                    None => String::new(),
                };
                format!(
                    "Observe {} shard {} token {token}{only}",
                    request_text(*request_id),
                    shard.0
                )
            }
            Msg::Observed {
                request_id,
                instances,
            } => match instances {
                Ok(instances) if instances.is_empty() => {
                    format!("Observed {} no instances", request_text(*request_id))
                }
                Ok(instances) => {
                    let listed = listed(instances.iter().map(|instance| {
                        format!(
                            "{}#{} gen {}",
                            instance.resource, instance.ordinal, instance.generation
                        )
                    }));
                    format!(
                        "Observed {} {} instances: {listed}",
                        request_text(*request_id),
                        instances.len()
                    )
                }
                Err(highest) => format!(
                    "Observed {} stale token (highest {highest})",
                    request_text(*request_id)
                ),
            },
            Msg::Act {
                request_id, action, ..
            } => format!(
                "Act {} {} (shard {}, token {}, action {})",
                request_text(*request_id),
                action_kind_text(&action.kind),
                action.shard.0,
                action.token,
                action_text(&action.id)
            ),
            Msg::Acted {
                request_id,
                action_id,
                outcome,
            } => format!(
                "Acted {} action {}: {}",
                request_text(*request_id),
                action_text(action_id),
                outcome_text(outcome)
            ),
        }
    }

    /// Whether the message grants, keeps alive or revokes a store lease
    /// (or answers one): the traffic whose loss ends a session.
    pub fn is_lease_traffic(&self) -> bool {
        match self {
            Msg::StoreRequest { request, .. } => !matches!(request, StoreRequest::Txn(_)),
            Msg::StoreReply { response, .. } => matches!(
                response,
                StoreResponse::LeaseGranted { .. }
                    | StoreResponse::LeaseKeptAlive { .. }
                    | StoreResponse::LeaseRevoked { .. }
            ),
            _ => false,
        }
    }

    /// What the message is about: the resources, keys, shards, actions and
    /// tokens it names (store keys included: `/res/r3` names `r3`).
    pub fn subjects(&self) -> Vec<Subject> {
        let mut subjects = Vec::new();
        let key = |subjects: &mut Vec<Subject>, key: &str| {
            if let Some(subject) = key_subject(key) {
                push_unique(subjects, subject);
            }
        };
        match self {
            Msg::StoreRequest { request, .. } => {
                if let StoreRequest::Txn(txn) = request {
                    for compare in &txn.compares {
                        let (Compare::ModRevisionEquals { key: k, .. }
                        | Compare::Absent { key: k }
                        | Compare::Present { key: k }) = compare;
                        key(&mut subjects, k);
                        if let Compare::ModRevisionEquals { key: k, revision } = compare
                            && matches!(key_subject(k), Some(Subject::Shard(_)))
                        {
                            push_unique(&mut subjects, Subject::Token(*revision));
                        }
                    }
                    for op in txn.success.iter().chain(&txn.failure) {
                        match op {
                            Op::Get { key: k } | Op::Put { key: k, .. } | Op::Delete { key: k } => {
                                key(&mut subjects, k);
                            }
                            Op::GetPrefix { .. } | Op::DeletePrefix { .. } | Op::Range { .. } => {}
                        }
                    }
                }
            }
            Msg::StoreReply { response, .. } => {
                if let StoreResponse::Txn { results, .. } = response {
                    for result in results {
                        if let OpResult::Got(Some(kv)) = result {
                            key(&mut subjects, &kv.key);
                        }
                    }
                }
            }
            Msg::Watch { .. } => {}
            Msg::Changed { key: k, .. } => key(&mut subjects, k),
            Msg::Api(request) => {
                if let Some(k) = &request.idempotency_key {
                    push_unique(&mut subjects, Subject::Key(k.clone()));
                }
                match &request.op {
                    ApiOp::Update { id, .. } | ApiOp::Delete { id } | ApiOp::Get { id } => {
                        push_unique(&mut subjects, Subject::Resource(id.clone()));
                    }
                    ApiOp::Create { .. } | ApiOp::List { .. } => {}
                }
            }
            Msg::ApiReply(reply) => match &reply.response.body {
                ResponseBody::Resource(resource) => {
                    push_unique(&mut subjects, Subject::Resource(resource.id.clone()));
                }
                ResponseBody::Read(view) => {
                    push_unique(&mut subjects, Subject::Resource(view.resource.id.clone()));
                }
                ResponseBody::Deleted { id } => {
                    push_unique(&mut subjects, Subject::Resource(id.clone()));
                }
                ResponseBody::Error { .. } | ResponseBody::Page { .. } => {}
            },
            Msg::Charge { key: k, .. } | Msg::Charged { key: k, .. } => {
                push_unique(&mut subjects, Subject::Key(k.clone()));
            }
            Msg::Observe {
                shard,
                token,
                resource,
                ..
            } => {
                push_unique(&mut subjects, Subject::Shard(shard.0));
                push_unique(&mut subjects, Subject::Token(*token));
                if let Some(id) = resource {
                    push_unique(&mut subjects, Subject::Resource(id.clone()));
                }
            }
            Msg::Observed { instances, .. } => {
                if let Ok(instances) = instances {
                    for instance in instances {
                        push_unique(&mut subjects, Subject::Resource(instance.resource.clone()));
                    }
                }
            }
            Msg::Act { action, .. } => {
                push_unique(&mut subjects, Subject::Action(action.id));
                push_unique(&mut subjects, Subject::Shard(action.shard.0));
                push_unique(&mut subjects, Subject::Token(action.token));
                if let ActionKind::Start { resource, .. } = &action.kind {
                    push_unique(&mut subjects, Subject::Resource(resource.clone()));
                }
            }
            Msg::Acted { action_id, .. } => {
                push_unique(&mut subjects, Subject::Action(*action_id));
            }
        }
        subjects
    }
}

impl Event {
    /// What the event is about, as [`Msg::subjects`].
    pub fn subjects(&self) -> Vec<Subject> {
        let mut subjects = Vec::new();
        let key = |subjects: &mut Vec<Subject>, key: &Option<String>| {
            if let Some(key) = key {
                push_unique(subjects, Subject::Key(key.clone()));
            }
        };
        match self {
            Event::RequestSent { key: k, op, .. } => {
                key(&mut subjects, k);
                if let ApiOp::Update { id, .. } | ApiOp::Delete { id } | ApiOp::Get { id } = op {
                    push_unique(&mut subjects, Subject::Resource(id.clone()));
                }
            }
            Event::ResponseReceived {
                key: k, response, ..
            } => {
                key(&mut subjects, k);
                if let ResponseBody::Resource(resource) = &response.body {
                    push_unique(&mut subjects, Subject::Resource(resource.id.clone()));
                }
            }
            Event::RequestAbandoned { key: k } => key(&mut subjects, k),
            Event::KeyStarted { key: k, .. }
            | Event::KeyTakenOver { key: k, .. }
            | Event::Replayed { key: k }
            | Event::KeyInFlight { key: k }
            | Event::KeyMismatch { key: k, .. }
            | Event::LedgerWritten { key: k, .. }
            | Event::ChargeExecuted { key: k, .. }
            | Event::ChargeDeduplicated { key: k }
            | Event::CommitReplanned { key: k, .. } => {
                push_unique(&mut subjects, Subject::Key(k.clone()));
            }
            Event::KeyFinished {
                key: k, response, ..
            } => {
                push_unique(&mut subjects, Subject::Key(k.clone()));
                if let ResponseBody::Resource(resource) = &response.body {
                    push_unique(&mut subjects, Subject::Resource(resource.id.clone()));
                }
            }
            Event::ResourceCommitted { id, key: k, .. } => {
                push_unique(&mut subjects, Subject::Resource(id.clone()));
                push_unique(&mut subjects, Subject::Key(k.clone()));
            }
            Event::DesiredWritten { id, ledger, .. } => {
                push_unique(&mut subjects, Subject::Resource(id.clone()));
                if let Some((k, _)) = ledger {
                    push_unique(&mut subjects, Subject::Key(k.clone()));
                }
            }
            Event::StatusStored { id, fence, .. } => {
                push_unique(&mut subjects, Subject::Resource(id.clone()));
                if let Some(token) = fence {
                    push_unique(&mut subjects, Subject::Token(*token));
                }
            }
            Event::LeaseStored {
                lease, revision, ..
            } => lease_subjects(&mut subjects, lease, *revision),
            Event::LeaseAcquired { lease, token }
            | Event::BeliefStarted { lease, token }
            | Event::BeliefEnded { lease, token, .. } => {
                lease_subjects(&mut subjects, lease, *token);
            }
            Event::StatusWritten {
                resource, token, ..
            } => {
                push_unique(&mut subjects, Subject::Resource(resource.clone()));
                push_unique(&mut subjects, Subject::Token(*token));
            }
            Event::MembershipObserved { .. } => {}
            Event::BackoffEngaged { resource, .. } => {
                push_unique(&mut subjects, Subject::Resource(resource.clone()));
            }
            Event::FenceRaised { shard, token } => {
                push_unique(&mut subjects, Subject::Shard(shard.0));
                push_unique(&mut subjects, Subject::Token(*token));
            }
            Event::InstanceStarted {
                action,
                token,
                instance,
            }
            | Event::InstanceStopped {
                action,
                token,
                instance,
            } => {
                push_unique(&mut subjects, Subject::Action(*action));
                push_unique(&mut subjects, Subject::Resource(instance.resource.clone()));
                push_unique(&mut subjects, Subject::Shard(instance.shard.0));
                push_unique(&mut subjects, Subject::Token(*token));
            }
            Event::ActionRejected {
                action,
                shard,
                token,
                ..
            } => {
                push_unique(&mut subjects, Subject::Action(*action));
                push_unique(&mut subjects, Subject::Shard(shard.0));
                push_unique(&mut subjects, Subject::Token(*token));
            }
            Event::ActionDeduplicated { action }
            | Event::ActionSettledDropped { action }
            | Event::ActionRefusedBusy { action } => {
                push_unique(&mut subjects, Subject::Action(*action));
            }
        }
        subjects
    }

    /// One line for people: the kind and the fields that matter.
    pub fn summary(&self) -> String {
        let name = self.kind_name();
        match self {
            Event::RequestSent {
                request_id,
                key,
                attempt,
                op,
                ..
            } => {
                let key = key
                    .as_deref()
                    .map(|k| format!(" key {k}"))
                    .unwrap_or_default();
                format!(
                    "{name} {} {}{key} (attempt {attempt})",
                    request_text(*request_id),
                    op_text(op)
                )
            }
            Event::ResponseReceived {
                request_id,
                response,
                replayed,
                ..
            } => {
                let replayed = if *replayed { " (replayed)" } else { "" };
                format!(
                    "{name} {} {}{replayed}",
                    request_text(*request_id),
                    response_text(response)
                )
            }
            Event::KeyFinished {
                key,
                response,
                by_completer,
                ..
            } => {
                let by = if *by_completer {
                    " by the completer"
                } else {
                    ""
                };
                format!("{name} key {key}: {}{by}", response_text(response))
            }
            Event::ResourceCommitted {
                id,
                key,
                created,
                revision,
                ..
            } => format!("{name} {id} key {key} created {created} at rev {revision}"),
            Event::DesiredWritten {
                id,
                resource,
                revision,
                writer,
                ..
            } => {
                let what = match resource {
                    Some(resource) => format!("gen {}", resource.generation),
                    None => "deleted".to_string(),
                };
                format!("{name} {id} {what} at rev {revision} by n{}", writer.0)
            }
            Event::LeaseStored {
                lease,
                holder,
                revision,
            } => {
                let holder = holder.map_or("nobody".to_string(), |n| format!("n{}", n.0));
                format!(
                    "{name} {} held by {holder} at rev {revision}",
                    lease_text(lease)
                )
            }
            Event::LeaseAcquired { lease, token } | Event::BeliefStarted { lease, token } => {
                format!("{name} {} token {token}", lease_text(lease))
            }
            Event::BeliefEnded {
                lease,
                token,
                reason,
            } => format!("{name} {} token {token} ({reason:?})", lease_text(lease)),
            Event::InstanceStarted {
                action,
                token,
                instance,
            }
            | Event::InstanceStopped {
                action,
                token,
                instance,
            } => format!(
                "{name} {}#{} gen {} (shard {}, token {token}, action {})",
                instance.resource,
                instance.ordinal,
                instance.generation,
                instance.shard.0,
                action_text(action)
            ),
            Event::ActionRejected {
                action,
                shard,
                token,
                highest_token,
            } => format!(
                "{name} action {} shard {} token {token} (highest {highest_token})",
                action_text(action),
                shard.0
            ),
            Event::ActionDeduplicated { action }
            | Event::ActionSettledDropped { action }
            | Event::ActionRefusedBusy { action } => {
                format!("{name} action {}", action_text(action))
            }
            Event::FenceRaised { shard, token } => {
                format!("{name} shard {} token {token}", shard.0)
            }
            Event::StatusWritten {
                resource,
                status,
                token,
                revision,
            } => format!(
                "{name} {resource} observed gen {} ({} ready) token {token} at rev {revision}",
                status.observed_generation, status.ready_replicas
            ),
            Event::StatusStored {
                id,
                status,
                revision,
                writer,
                fence,
            } => {
                let what = match status {
                    Some(status) => format!(
                        "observed gen {} ({} ready)",
                        status.observed_generation, status.ready_replicas
                    ),
                    None => "deleted".to_string(),
                };
                let fence = fence
                    .map(|t| format!(", fence token {t}"))
                    .unwrap_or_default();
                format!(
                    "{name} {id} {what} at rev {revision} by n{}{fence}",
                    writer.0
                )
            }
            Event::LedgerWritten {
                key,
                recovery,
                revision,
                ..
            } => {
                let phase = match recovery {
                    super::Recovery::Started => "started".to_string(),
                    super::Recovery::Charged { charge_id } => {
                        format!("charged (charge {charge_id})")
                    }
                    super::Recovery::Finished { response } => {
                        format!("finished: {}", response_text(response))
                    }
                };
                format!("{name} key {key} {phase} at rev {revision}")
            }
            Event::KeyStarted { key, .. }
            | Event::Replayed { key }
            | Event::KeyInFlight { key }
            | Event::ChargeDeduplicated { key } => format!("{name} key {key}"),
            Event::KeyTakenOver { key, by_completer } => {
                let by = if *by_completer {
                    " by the completer"
                } else {
                    ""
                };
                format!("{name} key {key}{by}")
            }
            Event::KeyMismatch { key, .. } => {
                format!("{name} key {key}: reused for another request")
            }
            Event::ChargeExecuted {
                key,
                charge_id,
                amount_cents,
            } => format!("{name} key {key} charge {charge_id} ({amount_cents} cents)"),
            Event::RequestAbandoned { key } => match key {
                Some(key) => format!("{name} key {key}"),
                None => name.to_string(),
            },
            Event::BackoffEngaged { resource, delay_ms } => {
                format!("{name} {resource} for {delay_ms} ms")
            }
            Event::CommitReplanned { key, attempt } => {
                format!("{name} key {key} (attempt {attempt})")
            }
            Event::MembershipObserved { members, revision } => {
                let members: Vec<String> = members.iter().map(|m| format!("n{}", m.0)).collect();
                format!("{name} [{}] at rev {revision}", members.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Action, ActionId, Settled, Spec};
    use crate::store::Txn;
    use node::NodeId;

    fn action_id() -> ActionId {
        ActionId {
            controller: NodeId(4),
            boot: 1,
            sequence: 5,
        }
    }

    #[test]
    fn a_fenced_store_write_names_its_key_and_token() {
        let message = Msg::StoreRequest {
            request_id: 12,
            request: StoreRequest::Txn(Txn {
                compares: vec![Compare::ModRevisionEquals {
                    key: keys::shard(ShardId(3)),
                    revision: 7,
                }],
                success: vec![Op::Put {
                    key: keys::status("r3"),
                    value: Value::Status(super::super::Status {
                        observed_generation: 2,
                        ready_replicas: 1,
                    }),
                    lease: None,
                }],
                failure: Vec::new(),
            }),
        };
        assert_eq!(
            message.summary(),
            "StoreRequest #12 txn if fence token 7 on /shards/0003: \
             put /status/r3 (observed gen 2, 1 ready)"
        );
        assert_eq!(
            message.subjects(),
            vec![
                Subject::Shard(3),
                Subject::Token(7),
                Subject::Resource("r3".into())
            ]
        );
    }

    #[test]
    fn an_act_names_its_action_shard_token_and_generation() {
        let message = Msg::Act {
            request_id: (2 << 48) | 9,
            action: Box::new(Action {
                id: action_id(),
                shard: ShardId(1),
                token: 7,
                kind: ActionKind::Start {
                    resource: "r3".into(),
                    ordinal: 0,
                    generation: 2,
                },
            }),
            settled: Settled {
                boot: 1,
                below: 5,
                outstanding: Vec::new(),
            },
        };
        assert_eq!(
            message.summary(),
            "Act #2.9 start r3#0 gen 2 (shard 1, token 7, action n4/1/5)"
        );
        assert!(message.subjects().contains(&Subject::Action(action_id())));
        assert!(message.subjects().contains(&Subject::Resource("r3".into())));
        let acted = Msg::Acted {
            request_id: 9,
            action_id: action_id(),
            outcome: ActionOutcome::Rejected { highest_token: 8 },
        };
        assert_eq!(
            acted.summary(),
            "Acted #9 action n4/1/5: rejected: stale token (highest 8)"
        );
    }

    #[test]
    fn an_api_request_and_its_charge_name_the_idempotency_key() {
        let request = Msg::Api(ApiRequest {
            request_id: 3,
            idempotency_key: Some("k1".into()),
            op: ApiOp::Create {
                name: "web".into(),
                spec: Spec {
                    replicas: 2,
                    image: 1,
                },
            },
        });
        assert_eq!(
            request.summary(),
            "Api #3 create web (2 replicas, image 1) key k1"
        );
        assert_eq!(request.subjects(), vec![Subject::Key("k1".into())]);
        let charge = Msg::Charge {
            request_id: 4,
            key: "k1".into(),
            amount_cents: 100,
        };
        assert_eq!(charge.summary(), "Charge #4 key k1 100 cents");
        assert_eq!(charge.subjects(), vec![Subject::Key("k1".into())]);
    }

    #[test]
    fn a_long_transaction_lists_three_ops_and_counts_the_rest() {
        let ops = (0..5)
            .map(|n| Op::Get {
                key: keys::resource(&format!("r{n}")),
            })
            .collect();
        let message = Msg::StoreRequest {
            request_id: 1,
            request: StoreRequest::Txn(Txn::unconditional(ops)),
        };
        assert_eq!(
            message.summary(),
            "StoreRequest #1 txn get /res/r0, get /res/r1, get /res/r2 +2 more"
        );
        assert_eq!(message.subjects().len(), 5);
    }

    #[test]
    fn a_lease_event_names_its_shard_and_token() {
        let event = Event::LeaseAcquired {
            lease: LeaseName::Shard(ShardId(2)),
            token: 40,
        };
        assert_eq!(event.summary(), "LeaseAcquired shard 2 token 40");
        assert_eq!(
            event.subjects(),
            vec![Subject::Shard(2), Subject::Token(40)]
        );
    }
}
