//! Desired against running state over time: the convergence measurements
//! (time to converge after healing, unconverged resources per second) and
//! `eventually.converged`.
//!
//! Desired state is replayed from `ResourceCommitted` (per resource, the
//! commit with the highest store revision seen so far wins, since commits
//! may be recorded out of revision order); running state from
//! `InstanceStarted`/`InstanceStopped`. A resource is converged when its
//! running instances match its desired state exactly: ordinals
//! `0..replicas` each run once at the desired generation and nothing else
//! runs; a deleted (or never committed) resource runs nothing. The set of
//! unconverged resources is kept up to date entry by entry, so the
//! measurements cost one pass. What is known of each resource is kept in a
//! `Vec` indexed by its number ([`ResourceIds`]), not looked up by id.

use std::collections::{BTreeMap, BTreeSet};

use sim::{HistoryEntry, NodeId, SECOND_NS};

use super::names::{ResourceId, ResourceIds};
use super::{CheckInput, Measurements, PropertyKind, Verdict, Violations};
use plane::protocol::{Event, InstanceId, Resource, Status, Subject};

/// At the end, every resource runs as desired and its status says so.
pub(crate) const CONVERGED: &str = "eventually.converged";

/// Per-second samples kept at most (a bound on a very long run: a day).
const SAMPLES_MAX: usize = 86_400;

/// What one resource runs: instance -> (ordinal, generation).
type Running = BTreeMap<InstanceId, (u32, u64)>;

/// What the replay knows of one resource.
#[derive(Default)]
struct Tracked<'h> {
    /// The highest revision committed so far and its state; `None` until
    /// a commit.
    desired: Option<(u64, Option<&'h Resource>)>,
    /// Its running instances; `None` until an instance started.
    running: Option<Running>,
    /// Since when its running instances differ from desired, if they do.
    unconverged_since_ns: Option<u64>,
    /// The last entry that touched it (trace index, node).
    last_touch: Option<(u64, NodeId)>,
    /// The last status written, and by whom (trace index, writer,
    /// revision). The highest store revision wins: the store's own record
    /// and the writer's record of one write agree, and either may be
    /// missing.
    status: Option<(Status, u64, NodeId, u64)>,
}

/// Desired and running state at one point of the replay.
struct World<'r, 'h> {
    /// Every resource id, with its number.
    numbers: &'r ResourceIds<'h>,
    /// Per resource, by its number.
    tracked: Vec<Tracked<'h>>,
    /// How many resources' running instances differ from desired.
    unconverged: usize,
    /// How long each unconverged spell lasted, per resource, ns: from the
    /// entry that made running differ from desired to the entry that made
    /// them match again.
    spells_ns: Vec<u64>,
}

impl<'r, 'h> World<'r, 'h> {
    /// Nothing committed, nothing running.
    fn new(numbers: &'r ResourceIds<'h>) -> Self {
        World {
            numbers,
            tracked: std::iter::repeat_with(Tracked::default)
                .take(numbers.count())
                .collect(),
            unconverged: 0,
            spells_ns: Vec::new(),
        }
    }

    /// Applies one entry, which names the resource numbered `resource` if
    /// any; re-judges that resource.
    fn apply(&mut self, entry: &'h HistoryEntry<Event>, resource: Option<ResourceId>) {
        // Every event below names its resource; no other changes one.
        let Some(number) = resource else {
            return;
        };
        match &entry.event {
            // The store's record is the truth; the API's is the same write
            // when its reply arrived. The highest revision wins either way.
            Event::DesiredWritten {
                resource, revision, ..
            }
            | Event::ResourceCommitted {
                resource, revision, ..
            } => {
                let desired = self.tracked[number].desired.get_or_insert((0, None));
                if *revision >= desired.0 {
                    *desired = (*revision, resource.as_ref());
                }
            }
            Event::InstanceStarted { instance, .. } => {
                let running = self.tracked[number].running.get_or_insert_default();
                running.insert(instance.id, (instance.ordinal, instance.generation));
            }
            Event::InstanceStopped { instance, .. } => {
                if let Some(running) = &mut self.tracked[number].running {
                    running.remove(&instance.id);
                }
            }
            Event::StatusWritten {
                status, revision, ..
            } => {
                self.store_status(number, Some(*status), *revision, entry);
                return;
            }
            Event::StatusStored {
                status, revision, ..
            } => {
                self.store_status(number, *status, *revision, entry);
                return;
            }
            _ => return,
        }
        let tracked = &mut self.tracked[number];
        tracked.last_touch = Some((entry.trace_index, entry.node));
        if tracked.is_converged() {
            if let Some(since) = tracked.unconverged_since_ns.take() {
                self.unconverged -= 1;
                self.spells_ns.push(entry.time_ns.saturating_sub(since));
            }
        } else if tracked.unconverged_since_ns.is_none() {
            tracked.unconverged_since_ns = Some(entry.time_ns);
            self.unconverged += 1;
        }
    }

    fn store_status(
        &mut self,
        number: ResourceId,
        status: Option<Status>,
        revision: u64,
        entry: &HistoryEntry<Event>,
    ) {
        let stored = &mut self.tracked[number].status;
        if stored.is_some_and(|(_, _, _, seen)| seen > revision) {
            return;
        }
        *stored = status.map(|status| (status, entry.trace_index, entry.node, revision));
    }

    /// Every resource committed or running, in the ids' order.
    fn resources(&self) -> impl Iterator<Item = (&'h str, &Tracked<'h>)> + '_ {
        self.numbers
            .by_name()
            .map(|(id, number)| (id, &self.tracked[number]))
            .filter(|(_, tracked)| tracked.desired.is_some() || tracked.running.is_some())
    }
}

impl<'h> Tracked<'h> {
    fn desired(&self) -> Option<&'h Resource> {
        self.desired.and_then(|(_, resource)| resource)
    }

    fn running(&self) -> impl Iterator<Item = (&InstanceId, &(u32, u64))> {
        self.running.iter().flatten()
    }

    /// Running matches desired exactly: as many instances as replicas, each
    /// at the desired generation, with ordinals `0..replicas` each once.
    fn is_converged(&self) -> bool {
        let running = self.running.as_ref().map_or(0, Running::len);
        let Some(resource) = self.desired() else {
            return running == 0;
        };
        let replicas = resource.spec.replicas as usize;
        if running != replicas {
            return false;
        }
        // As many instances as ordinals below `replicas`: each ordinal is
        // taken once exactly when none is taken twice.
        let mut taken = vec![false; replicas];
        self.running().all(|(_, &(ordinal, generation))| {
            let ordinal = ordinal as usize;
            generation == resource.generation
                && ordinal < replicas
                && !std::mem::replace(&mut taken[ordinal], true)
        })
    }

    /// "0@g3 on n7, ..." for messages.
    fn describe_running(&self) -> String {
        let parts: Vec<String> = self
            .running()
            .map(|(instance, (ordinal, generation))| {
                format!("{ordinal}@g{generation} on {}", instance.worker)
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }

    fn workers(&self) -> Vec<NodeId> {
        let workers: BTreeSet<NodeId> = self
            .running()
            .map(|(instance, _)| instance.worker)
            .collect();
        workers.into_iter().collect()
    }
}

/// The replay of a whole run: the state at its end and its samples.
pub(crate) struct Timeline<'r, 'h> {
    world: World<'r, 'h>,
    /// Unconverged resources at each whole second, from 0 to the end.
    samples: Vec<u32>,
    /// When the unconverged set last became empty (0 if it always was).
    last_converged_ns: u64,
}

impl<'r, 'h> Timeline<'r, 'h> {
    /// Replays the history (whose resources `resources` numbers); a sample
    /// at second `s` sees every entry up to and including time `s`.
    pub(crate) fn build(input: &CheckInput<'h>, resources: &'r ResourceIds<'h>) -> Self {
        let mut timeline = Timeline {
            world: World::new(resources),
            samples: Vec::new(),
            last_converged_ns: 0,
        };
        for (entry, resource) in resources.entries(input.history) {
            timeline.sample_until(entry.time_ns, input.end_ns);
            let was_converged = timeline.world.unconverged == 0;
            timeline.world.apply(entry, resource);
            if !was_converged && timeline.world.unconverged == 0 {
                timeline.last_converged_ns = entry.time_ns;
            }
        }
        timeline.sample_until(input.end_ns.saturating_add(1), input.end_ns);
        timeline
    }

    /// Takes the samples due strictly before `time_ns` (and not after the
    /// run's end).
    fn sample_until(&mut self, time_ns: u64, end_ns: u64) {
        while self.samples.len() < SAMPLES_MAX {
            let sample_ns = self.samples.len() as u64 * SECOND_NS;
            if sample_ns >= time_ns || sample_ns > end_ns {
                break;
            }
            self.samples.push(self.world.unconverged as u32);
        }
    }

    /// Fills the convergence measurements.
    pub(crate) fn measure(&self, input: &CheckInput, measurements: &mut Measurements) {
        measurements.unconverged_per_second = self.samples.clone();
        measurements.convergence_spells_ns = self.world.spells_ns.clone();
        measurements.convergence_ns = (self.world.unconverged == 0)
            .then(|| self.last_converged_ns.saturating_sub(input.healed_ns));
    }

    /// `eventually.converged`: at the end, every resource runs as desired,
    /// and every live resource's last status reports its generation with
    /// all its replicas ready.
    pub(crate) fn converged(&self, input: &CheckInput) -> Verdict {
        let mut found = Violations::new(CONVERGED, PropertyKind::Eventually);
        let world = &self.world;
        for (id, tracked) in world.resources() {
            let (trace_index, node) = tracked.last_touch.unwrap_or_default();
            if !tracked.is_converged() {
                let wanted = match tracked.desired() {
                    Some(r) => format!(
                        "{} replicas at generation {}",
                        r.spec.replicas, r.generation
                    ),
                    None => "nothing (deleted or never committed)".to_string(),
                };
                let message = format!("{id} wants {wanted}, runs {}", tracked.describe_running());
                let mut nodes = vec![node];
                nodes.extend(tracked.workers());
                let about = vec![Subject::Resource(id.to_string())];
                found.about(input.end_ns, trace_index, &nodes, about, message);
            }
            if let Some(message) = stale_status(tracked, id) {
                let (trace_index, node) = match tracked.status {
                    Some((_, index, writer, _)) => (index, writer),
                    None => (trace_index, node),
                };
                let about = vec![Subject::Resource(id.to_string())];
                found.about(input.end_ns, trace_index, &[node], about, message);
            }
        }
        found.into_verdict()
    }
}

/// Why a live resource's last status does not report it converged.
fn stale_status(tracked: &Tracked, id: &str) -> Option<String> {
    let resource = tracked.desired()?;
    let Some((status, _, _, _)) = tracked.status else {
        return Some(format!(
            "{id} at generation {} never had a status written",
            resource.generation
        ));
    };
    let current = status.observed_generation == resource.generation
        && status.ready_replicas == resource.spec.replicas;
    (!current).then(|| {
        format!(
            "{id}: last status observed generation {} with {} ready, wants generation {} with {}",
            status.observed_generation,
            status.ready_replicas,
            resource.generation,
            resource.spec.replicas
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// res-1 created at 500 ms with two replicas, both running by 2.5 s.
    fn two_replicas(history: &mut History) -> (Resource, [plane::protocol::Instance; 2]) {
        let resource = resource("res-1", 2, 1);
        let instances = [
            instance(WORKER_A, 1, "res-1", 0, 1),
            instance(WORKER_B, 1, "res-1", 1, 1),
        ];
        history.at(
            500,
            API_A,
            commit("res-1", "k1", 5, true, Some(&resource), 10),
        );
        history.at(1_500, WORKER_A, start(CTRL_A, 1, 1, &instances[0]));
        history.at(2_500, WORKER_B, start(CTRL_A, 2, 1, &instances[1]));
        history.at(2_600, CTRL_A, status_written("res-1", 1, 2, 1));
        (resource, instances)
    }

    #[test]
    fn unconverged_resources_are_sampled_at_each_whole_second() {
        let mut history = History::new();
        two_replicas(&mut history);
        history.at(
            3_000,
            API_A,
            commit("res-2", "k2", 6, true, Some(&resource("res-2", 1, 1)), 11),
        );
        history.ending(0, 4_500);
        let measured = history.report().measurements;
        // 0 s: nothing; 1 s and 2 s: res-1 short of replicas; 3 s: res-2
        // committed at exactly 3 s counts; 4 s: still not running.
        assert_eq!(measured.unconverged_per_second, vec![0, 1, 1, 1, 1]);
        assert_eq!(measured.convergence_ns, None);
    }

    #[test]
    fn convergence_time_runs_from_healing_to_the_last_time_it_converged() {
        let mut history = History::new();
        two_replicas(&mut history);
        history.ending(1_000, 5_000);
        assert_eq!(
            history.report().measurements.convergence_ns,
            Some(ms(1_500))
        );

        // Converged before the faults healed: no time needed after healing.
        history.ending(3_000, 5_000);
        assert_eq!(history.report().measurements.convergence_ns, Some(0));
    }

    #[test]
    fn an_update_unconverges_until_replaced_instances_run() {
        let mut history = History::new();
        let (_, old) = two_replicas(&mut history);
        let updated = resource("res-1", 1, 2);
        history.at(
            3_000,
            API_A,
            commit("res-1", "k3", 7, false, Some(&updated), 12),
        );
        history.at(3_100, WORKER_A, stop(CTRL_A, 3, 1, &old[0]));
        history.at(3_200, WORKER_B, stop(CTRL_A, 4, 1, &old[1]));
        history.at(
            3_300,
            WORKER_A,
            start(CTRL_A, 5, 1, &instance(WORKER_A, 2, "res-1", 0, 2)),
        );
        history.ending(2_000, 4_000);
        let measured = history.report().measurements;
        // The update committed at exactly 3 s is unconverged in that sample.
        assert_eq!(measured.unconverged_per_second, vec![0, 1, 1, 1, 0]);
        assert_eq!(measured.convergence_ns, Some(ms(1_300)));
    }

    #[test]
    fn each_spell_of_one_resource_is_timed_from_divergence_to_match() {
        let mut history = History::new();
        let (_, old) = two_replicas(&mut history);
        // Created at 0.5 s, both replicas at 2.5 s: a 2 s spell.
        history.ending(0, 3_000);
        assert_eq!(
            history.report().measurements.convergence_spells_ns,
            vec![ms(2_000)]
        );
        // Scaled to one replica at 3 s, matched when the extra stops at 3.4 s.
        let scaled = resource("res-1", 1, 1);
        history.at(
            3_000,
            API_A,
            commit("res-1", "k3", 7, false, Some(&scaled), 12),
        );
        history.at(3_400, WORKER_B, stop(CTRL_A, 3, 1, &old[1]));
        // Deleted at 4 s and never stopped: an open spell is not timed.
        history.at(4_000, API_A, commit("res-1", "k4", 8, false, None, 13));
        history.ending(0, 5_000);
        assert_eq!(
            history.report().measurements.convergence_spells_ns,
            vec![ms(2_000), ms(400)]
        );
    }

    #[test]
    fn a_desired_state_the_store_committed_but_no_api_recorded_must_converge() {
        // The API's reply was lost: only the store's record says the
        // resource exists, and nothing runs for it.
        let mut history = History::new();
        let resource = resource("res-1", 1, 1);
        history.at(500, STORE, desired_written("res-1", Some(&resource), 10));
        // Nothing runs, and no status was written.
        assert_eq!(history.violations(CONVERGED), 2);
        history.at(
            1_500,
            WORKER_A,
            start(CTRL_A, 1, 1, &instance(WORKER_A, 1, "res-1", 0, 1)),
        );
        history.at(1_600, CTRL_A, status_written("res-1", 1, 1, 1));
        assert_eq!(history.violations(CONVERGED), 0);
    }

    #[test]
    fn a_status_the_store_committed_counts_even_if_its_writer_never_heard() {
        let mut history = History::new();
        let wanted = resource("res-1", 1, 2);
        history.at(500, STORE, desired_written("res-1", Some(&wanted), 10));
        history.at(
            1_500,
            WORKER_A,
            start(CTRL_A, 1, 1, &instance(WORKER_A, 1, "res-1", 0, 2)),
        );
        let old = Status {
            observed_generation: 1,
            ready_replicas: 1,
        };
        history.at(1_600, CTRL_A, status_written_at("res-1", 1, 1, 1, 8));
        assert_eq!(
            history.violations(CONVERGED),
            1,
            "status is a generation behind"
        );
        let current = Status {
            observed_generation: 2,
            ready_replicas: 1,
        };
        history.at(1_700, STORE, status_stored("res-1", Some(current), 12));
        // A late record of an older write does not undo a newer one.
        history.at(1_800, STORE, status_stored("res-1", Some(old), 9));
        assert_eq!(history.violations(CONVERGED), 0);
    }

    #[test]
    fn a_missing_replica_at_the_end_violates_converged() {
        let mut history = History::new();
        let resource = resource("res-1", 2, 1);
        history.at(
            500,
            API_A,
            commit("res-1", "k1", 5, true, Some(&resource), 10),
        );
        history.at(
            1_500,
            WORKER_A,
            start(CTRL_A, 1, 1, &instance(WORKER_A, 1, "res-1", 0, 1)),
        );
        history.at(1_600, CTRL_A, status_written("res-1", 1, 2, 1));
        let verdict = history.verdict(CONVERGED);
        assert_eq!(verdict.violation_count, 1);
        let violation = &verdict.violations[0];
        assert!(
            violation.message.contains("2 replicas at generation 1"),
            "{}",
            violation.message
        );
        assert_eq!(violation.nodes, vec![WORKER_A]);
        assert_eq!(violation.time_ns, history.end_ns);
    }

    #[test]
    fn an_old_generation_or_an_extra_ordinal_at_the_end_violates_converged() {
        let mut history = History::new();
        two_replicas(&mut history);
        let extra = instance(WORKER_A, 9, "res-1", 2, 1);
        history.at(3_000, WORKER_A, start(CTRL_A, 9, 1, &extra));
        assert_eq!(history.violations(CONVERGED), 1);

        let mut stale = History::new();
        two_replicas(&mut stale);
        let updated = resource("res-1", 2, 2);
        stale.at(
            3_000,
            API_A,
            commit("res-1", "k3", 7, false, Some(&updated), 12),
        );
        stale.at(3_100, CTRL_A, status_written("res-1", 2, 2, 1));
        assert_eq!(stale.violations(CONVERGED), 1);
    }

    #[test]
    fn instances_of_a_deleted_resource_violate_converged() {
        let mut history = History::new();
        two_replicas(&mut history);
        history.at(3_000, API_A, commit("res-1", "k9", 8, false, None, 13));
        assert_eq!(history.violations(CONVERGED), 1);
    }

    #[test]
    fn the_highest_revision_wins_whatever_the_recording_order() {
        let mut history = History::new();
        let (resource, _) = two_replicas(&mut history);
        let older = plane::protocol::Resource {
            generation: 0,
            ..resource
        };
        history.at(
            3_000,
            API_B,
            commit("res-1", "k0", 4, false, Some(&older), 9),
        );
        assert_eq!(history.violations(CONVERGED), 0);
    }

    #[test]
    fn a_stale_or_missing_status_violates_converged() {
        let mut history = History::new();
        two_replicas(&mut history);
        history.at(2_700, CTRL_A, status_written("res-1", 1, 1, 1));
        let verdict = history.verdict(CONVERGED);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("1 ready"));
        assert_eq!(verdict.violations[0].trace_index, history.last_index());

        let mut silent = History::new();
        silent.at(
            500,
            API_A,
            commit("res-1", "k1", 5, true, Some(&resource("res-1", 0, 1)), 10),
        );
        assert_eq!(silent.violations(CONVERGED), 1);
    }

    #[test]
    fn running_as_desired_with_a_current_status_holds_converged() {
        let mut history = History::new();
        let (_, instances) = two_replicas(&mut history);
        history.at(
            3_000,
            API_A,
            commit("res-2", "k2", 6, true, Some(&resource("res-2", 1, 1)), 11),
        );
        history.at(3_500, API_A, commit("res-2", "k3", 7, false, None, 12));
        history.at(4_000, WORKER_A, stop(CTRL_A, 3, 1, &instances[0]));
        history.at(
            4_100,
            WORKER_A,
            start(CTRL_A, 4, 1, &instance(WORKER_A, 2, "res-1", 0, 1)),
        );
        assert_eq!(history.violations(CONVERGED), 0);
    }
}
