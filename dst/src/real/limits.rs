//! What `cluster.json` and the history lines may say: the settings within
//! the limits a scenario's are held to, and every node and shard a line
//! names one that `cluster.json` has.
//!
//! A real run's settings come from a scenario (`serve --scenario`) or the
//! defaults, so a `cluster.json` whose settings no scenario allows was
//! written by hand or by something else, and a value out of range can make
//! the checkers take any amount of time and memory (a shard count of 2^32
//! is a table of 2^32 shards).

use node::NodeId;
use plane::cluster::{ClusterFile, Role};
use plane::protocol::{ActionId, Event, LeaseName};
use plane::shard::ShardId;
use sim::MILLISECOND_NS;

use crate::scenario::{RUN_EVENTS_MAX, RUN_MS_MIN, Scenario};

/// The sections of a scenario that are sections of `cluster.json`'s
/// `settings` too.
const SETTINGS_SECTIONS: [&str; 5] = ["store.", "api.", "controller.", "worker.", "client."];

/// Checks the topology's sizes and the settings of `cluster` as a
/// scenario's are checked: by the scenario's own validation, run on a
/// scenario with these settings and this many nodes of each role, no
/// faults, and the shortest run they allow (the client workload's end; a
/// real run has no simulated duration or event budget, and the shortest
/// run asks the least of both). The error starts with the field, as
/// `cluster.json` spells it: `settings.controller.shard_count = 0 is out
/// of range: allowed 1..=4096`.
pub(crate) fn settings_problems(cluster: &ClusterFile) -> Result<(), String> {
    let mut scenario = Scenario::parse("name = \"cluster\"\ndescription = \"cluster.json\"\n", "")
        .expect("a scenario of defaults is valid");
    let count = |ids: &[NodeId]| u32::try_from(ids.len()).unwrap_or(u32::MAX);
    let t = &cluster.topology;
    scenario.topology.apis = count(&t.apis);
    scenario.topology.controllers = count(&t.controllers);
    scenario.topology.workers = count(&t.workers);
    scenario.topology.clients = count(&t.clients);
    let s = &cluster.settings;
    scenario.store = s.store.clone();
    scenario.api = s.api.clone();
    scenario.controller = s.controller.clone();
    scenario.worker = s.worker.clone();
    scenario.client = s.client.clone();
    // A scenario sets the controllers' drift bound from its clocks.
    scenario.clocks.max_drift_ppm = s.controller.max_drift_ppm;
    scenario.bugs = cluster.bugs.clone();
    let limit_ms = sim::Limits::default().max_time_ns / MILLISECOND_NS;
    scenario.run.liveness_bound_ms = RUN_MS_MIN;
    scenario.run.duration_ms = s
        .client
        .workload_end_ms
        .clamp(RUN_MS_MIN, limit_ms.saturating_sub(RUN_MS_MIN));
    scenario.run.max_events = RUN_EVENTS_MAX;
    scenario
        .problems()
        .map_err(|message| in_cluster_terms(&message))
}

/// A scenario's problem in `cluster.json`'s terms: its settings keys under
/// `settings.`, the clocks' drift bound as the controllers', a topology
/// size as the length of its list, a run's keys as a scenario's.
fn in_cluster_terms(message: &str) -> String {
    let message = message.replace("clocks.max_drift_ppm", "controller.max_drift_ppm");
    let mut out = String::with_capacity(message.len() + 32);
    for (at, c) in message.char_indices() {
        let word_start = message[..at]
            .chars()
            .next_back()
            .is_none_or(|before| !(before.is_alphanumeric() || "_.-".contains(before)));
        if word_start {
            let rest = &message[at..];
            if SETTINGS_SECTIONS
                .iter()
                .any(|section| rest.starts_with(section))
            {
                out.push_str("settings.");
            } else if rest.starts_with("run.") {
                out.push_str("a scenario's ");
            }
        }
        out.push(c);
    }
    if message.starts_with("topology.") {
        out.push_str(" (the number of node ids the list holds)");
    }
    out
}

/// Checks that every node `event` names is one of `cluster`'s nodes, of
/// the role the field takes, and every shard is below
/// `settings.controller.shard_count`. The error names the event's field
/// and what is allowed.
pub(crate) fn id_problems(event: &Event, cluster: &ClusterFile) -> Result<(), String> {
    let mut nodes: Vec<(&str, NodeId, Option<Role>)> = Vec::new();
    let mut shards: Vec<(&str, ShardId)> = Vec::new();
    let lease = |name: &LeaseName, shards: &mut Vec<(&str, ShardId)>| {
        if let LeaseName::Shard(shard) = name {
            shards.push(("lease", *shard));
        }
    };
    let action = |id: &ActionId| ("action.controller", id.controller, Some(Role::Controller));
    // Every variant by name, so that one added with an id is not missed.
    match event {
        Event::RequestSent { api, .. } => nodes.push(("api", *api, Some(Role::Api))),
        Event::DesiredWritten { writer, .. } | Event::StatusStored { writer, .. } => {
            nodes.push(("writer", *writer, None));
        }
        Event::LeaseStored {
            lease: name,
            holder,
            ..
        } => {
            lease(name, &mut shards);
            if let Some(holder) = holder {
                nodes.push(("holder", *holder, Some(Role::Controller)));
            }
        }
        Event::LeaseAcquired { lease: name, .. }
        | Event::BeliefStarted { lease: name, .. }
        | Event::BeliefEnded { lease: name, .. } => lease(name, &mut shards),
        Event::MembershipObserved { members, .. } => {
            for member in members {
                nodes.push(("members", *member, Some(Role::Controller)));
            }
        }
        Event::FenceRaised { shard, .. } => shards.push(("shard", *shard)),
        Event::InstanceStarted {
            action: id,
            instance,
            ..
        }
        | Event::InstanceStopped {
            action: id,
            instance,
            ..
        } => {
            nodes.push(action(id));
            nodes.push(("instance.id.worker", instance.id.worker, Some(Role::Worker)));
            shards.push(("instance.shard", instance.shard));
        }
        Event::ActionRejected {
            action: id, shard, ..
        } => {
            nodes.push(action(id));
            shards.push(("shard", *shard));
        }
        Event::ActionDeduplicated { action: id }
        | Event::ActionSettledDropped { action: id }
        | Event::ActionRefusedBusy { action: id } => nodes.push(action(id)),
        Event::ResponseReceived { .. }
        | Event::RequestAbandoned { .. }
        | Event::KeyStarted { .. }
        | Event::KeyTakenOver { .. }
        | Event::KeyFinished { .. }
        | Event::ResourceCommitted { .. }
        | Event::Replayed { .. }
        | Event::KeyInFlight { .. }
        | Event::KeyMismatch { .. }
        | Event::LedgerWritten { .. }
        | Event::ChargeExecuted { .. }
        | Event::ChargeDeduplicated { .. }
        | Event::StatusWritten { .. }
        | Event::BackoffEngaged { .. }
        | Event::CommitReplanned { .. } => {}
    }
    let kind = event.kind_name();
    for (field, node, role) in nodes {
        let Some((name, actual)) = cluster.nodes.get(node.index()) else {
            return Err(format!(
                "{kind}.{field} names node {}, but cluster.json lists {} nodes: allowed \
                 0..={}",
                node.0,
                cluster.nodes.len(),
                cluster.nodes.len().saturating_sub(1)
            ));
        };
        if let Some(role) = role.filter(|role| role != actual) {
            return Err(format!(
                "{kind}.{field} names node {} ({name}), which cluster.json lists as \
                 {actual:?}: allowed is a node of role {role:?}",
                node.0
            ));
        }
    }
    let shard_count = cluster.settings.controller.shard_count;
    if let Some((field, shard)) = shards.into_iter().find(|(_, s)| s.0 >= shard_count) {
        return Err(format!(
            "{kind}.{field} names shard {}, but cluster.json has \
             settings.controller.shard_count = {shard_count}: allowed shards 0..={}",
            shard.0,
            shard_count.saturating_sub(1)
        ));
    }
    Ok(())
}
