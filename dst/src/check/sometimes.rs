//! `sometimes`: how often a run reached each interesting path. Not
//! failures: a sweep sums them to show what it covered, and a path no seed
//! reaches is a gap in the workload or the faults, not a pass.

use std::collections::BTreeMap;

use super::{CheckInput, Measurements};
use plane::protocol::Event;

/// Every path counted, in the report's order (all present, even at zero).
pub(crate) const PATHS: [&str; 14] = [
    "failover",
    "stale_token_rejected",
    "replay_served",
    "in_flight_409",
    "mismatch_422",
    "completer_finished",
    "shard_moved",
    "backoff_engaged",
    "takeover",
    "charge_deduplicated",
    "action_deduplicated",
    "settled_dropped",
    "worker_busy",
    "commit_replanned",
];

/// The path an event shows, if any.
fn path_of(event: &Event) -> Option<&'static str> {
    Some(match event {
        Event::ActionRejected { .. } => "stale_token_rejected",
        Event::Replayed { .. } => "replay_served",
        Event::KeyInFlight { .. } => "in_flight_409",
        Event::KeyMismatch { .. } => "mismatch_422",
        Event::KeyFinished {
            by_completer: true, ..
        } => "completer_finished",
        Event::BackoffEngaged { .. } => "backoff_engaged",
        Event::KeyTakenOver { .. } => "takeover",
        Event::ChargeDeduplicated { .. } => "charge_deduplicated",
        Event::ActionDeduplicated { .. } => "action_deduplicated",
        Event::ActionSettledDropped { .. } => "settled_dropped",
        Event::ActionRefusedBusy { .. } => "worker_busy",
        Event::CommitReplanned { .. } => "commit_replanned",
        _ => return None,
    })
}

/// Counts every path; failovers and shard moves come from the measurements
/// (a lease regained by another controller, a shard acquired by another).
pub(crate) fn count(input: &CheckInput, measurements: &Measurements) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> =
        PATHS.iter().map(|path| (path.to_string(), 0)).collect();
    for entry in input.history {
        if let Some(path) = path_of(&entry.event) {
            *counts.get_mut(path).expect("every path is listed") += 1;
        }
    }
    counts.insert("failover".into(), measurements.failovers.len() as u64);
    counts.insert("shard_moved".into(), measurements.shards_moved);
    counts
}

/// Counts the side effects executed: charges, instance starts and stops.
pub(crate) fn count_side_effects(input: &CheckInput, measurements: &mut Measurements) {
    for entry in input.history {
        match entry.event {
            Event::ChargeExecuted { .. } => measurements.charges += 1,
            Event::InstanceStarted { .. } => measurements.instances_started += 1,
            Event::InstanceStopped { .. } => measurements.instances_stopped += 1,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use plane::protocol::{Event, status};
    use plane::shard::ShardId;

    #[test]
    fn every_path_is_reported_even_when_never_reached() {
        let counts = History::new().report().sometimes;
        assert_eq!(counts.len(), PATHS.len());
        assert!(counts.values().all(|&count| count == 0));
    }

    #[test]
    fn each_interesting_event_counts_its_path() {
        let mut history = History::new();
        let key = || "k1".to_string();
        history.at(
            1,
            WORKER_A,
            Event::ActionRejected {
                action: action(CTRL_A, 1),
                shard: ShardId(0),
                token: 1,
                highest_token: 2,
            },
        );
        history.at(2, API_A, Event::Replayed { key: key() });
        history.at(3, API_A, Event::Replayed { key: key() });
        history.at(4, API_A, Event::KeyInFlight { key: key() });
        history.at(5, API_A, mismatch("k1", 1, 2));
        let mut by_completer = finished("k1", 1, error(status::NOT_FOUND));
        if let Event::KeyFinished {
            by_completer: flag, ..
        } = &mut by_completer
        {
            *flag = true;
        }
        history.at(6, API_B, by_completer);
        history.at(7, API_B, finished("k1", 1, error(status::NOT_FOUND)));
        history.at(
            8,
            CTRL_A,
            Event::BackoffEngaged {
                resource: "res-1".into(),
                delay_ms: 50,
            },
        );
        history.at(
            9,
            API_B,
            Event::KeyTakenOver {
                key: key(),
                by_completer: false,
            },
        );
        history.at(10, BILLING, Event::ChargeDeduplicated { key: key() });
        history.at(
            11,
            WORKER_A,
            Event::ActionDeduplicated {
                action: action(CTRL_A, 1),
            },
        );
        let counts = history.report().sometimes;
        let expected = [
            ("stale_token_rejected", 1),
            ("replay_served", 2),
            ("in_flight_409", 1),
            ("mismatch_422", 1),
            ("completer_finished", 1),
            ("backoff_engaged", 1),
            ("takeover", 1),
            ("charge_deduplicated", 1),
            ("action_deduplicated", 1),
            ("failover", 0),
            ("shard_moved", 0),
        ];
        for (path, count) in expected {
            assert_eq!(counts[path], count, "{path}");
        }
    }

    #[test]
    fn side_effects_are_counted() {
        let mut history = History::new();
        history.clean_create("k1", "res-1", 2);
        history.at(
            900,
            WORKER_A,
            stop(CTRL_A, 9, 1, &instance(WORKER_A, 0, "res-1", 0, 1)),
        );
        let measured = history.report().measurements;
        assert_eq!(
            (
                measured.charges,
                measured.instances_started,
                measured.instances_stopped
            ),
            (1, 2, 1)
        );
    }
}
