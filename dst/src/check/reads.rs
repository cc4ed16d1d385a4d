//! What a read may have seen: every state the store held of each resource
//! (desired state and status together, revision by revision, from the
//! store's own record of its commits), and the shape a page must have.
//! `answers` judges gets and lists with it.
//!
//! A read is one store transaction, applied after the client sent it and
//! before the client got the answer, so it saw the state the store held
//! at one revision in that window: the state current when the read was
//! sent, or one committed before the answer came. Anything else (a pair of
//! desired state and status never stored together, a state overwritten
//! before the read was sent, a resource left out of a page although it
//! stood the whole time) is an answer the store cannot have given.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use sim::HistoryEntry;

use plane::protocol::{Event, Resource, ResourceView, Status};

/// What the store held of one resource after one revision.
#[derive(Clone, Copy)]
struct Held<'h> {
    /// The trace index of the store's commit: orders it against sends and
    /// answers.
    trace_index: u64,
    revision: u64,
    resource: Option<&'h Resource>,
    status: Option<Status>,
}

/// Per resource id, every state the store held, in commit order. Built as
/// the history is read: when an answer is judged, it holds every commit
/// before that answer, and none after.
#[derive(Default)]
pub(crate) struct Holdings<'h> {
    by_id: BTreeMap<&'h str, Vec<Held<'h>>>,
    /// The ids whose newest state has a resource. A page judged against
    /// these alone skips every id deleted for good before its answer,
    /// which no page needs to list: in a long run, most of its range.
    live: BTreeSet<&'h str>,
    /// The trace index of the newest commit taken in.
    newest: Option<u64>,
}

impl<'h> Holdings<'h> {
    /// Takes in a commit of desired state or status; ignores other events.
    /// The writes of one transaction (a delete removes the resource and
    /// its status) share a revision and make one state: nobody can read
    /// between them.
    pub(crate) fn observe(&mut self, entry: &'h HistoryEntry<Event>) {
        let (id, revision) = match &entry.event {
            Event::DesiredWritten { id, revision, .. }
            | Event::StatusStored { id, revision, .. } => (id.as_str(), *revision),
            _ => return,
        };
        let states = self.by_id.entry(id).or_default();
        let mut held = match states.last() {
            Some(last) if last.revision == revision => states.pop().expect("a last"),
            Some(last) => *last,
            None => Held {
                trace_index: 0,
                revision,
                resource: None,
                status: None,
            },
        };
        held.trace_index = entry.trace_index;
        held.revision = revision;
        match &entry.event {
            Event::DesiredWritten { resource, .. } => held.resource = resource.as_ref(),
            Event::StatusStored { status, .. } => held.status = *status,
            _ => unreachable!("matched above"),
        }
        if held.resource.is_some() {
            self.live.insert(id);
        } else {
            self.live.remove(id);
        }
        states.push(held);
        self.newest = Some(entry.trace_index);
    }

    /// The states of `id` a read sent at trace index `sent` and answered
    /// at `answered` may have seen: the one current at the send (nothing,
    /// before the first commit) and every one committed before the answer.
    /// (An iterator, not a list: a page asks this of every id in its
    /// range, and nothing needs the states kept.)
    fn visible(
        &self,
        id: &str,
        sent: u64,
        answered: u64,
    ) -> impl Iterator<Item = (Option<&'h Resource>, Option<Status>)> + use<'_, 'h> {
        let states = self.by_id.get(id).map(Vec::as_slice).unwrap_or_default();
        visible_in(states, sent, answered)
    }

    /// Whether the store held `view` (this desired state with this status)
    /// at some revision a read sent at `sent` and answered at `answered`
    /// may have read.
    pub(crate) fn held_between(&self, view: &ResourceView, sent: u64, answered: u64) -> bool {
        self.visible(&view.resource.id, sent, answered)
            .any(|(resource, status)| resource == Some(&view.resource) && status == view.status)
    }

    /// The ids in `(after, through]` (unbounded where `None`) that stood
    /// in the store at every revision a read sent at `sent` and answered at
    /// `answered` may have read: a page covering them must list them.
    pub(crate) fn standing_throughout(
        &self,
        after: Option<&str>,
        through: Option<&str>,
        sent: u64,
        answered: u64,
    ) -> Vec<&'h str> {
        // Only the live ids can qualify. One whose newest state has no
        // resource had it either before the send (the state current then,
        // or an earlier one of those after it, is gone) or between the
        // send and the answer: it did not stand throughout. Which needs
        // every commit taken in to come before the answer.
        assert!(
            self.newest.is_none_or(|newest| newest < answered),
            "a page judged against commits after its answer"
        );
        covered(&self.live, after, through)
            .filter(|id| {
                self.visible(id, sent, answered)
                    .all(|(resource, _)| resource.is_some())
            })
            .collect()
    }
}

/// The ids of `ids` that a page after `after`, up to `through`, covers:
/// those in `(after, through]`, unbounded where `None`.
pub(crate) fn covered<'s, 'h>(
    ids: &'s BTreeSet<&'h str>,
    after: Option<&str>,
    through: Option<&str>,
) -> impl Iterator<Item = &'h str> + use<'s, 'h> {
    // A page whose next cursor is not past its cursor covers nothing: its
    // range is cut to (after, after], empty (and one `range` allows).
    let through = match (after, through) {
        (Some(after), Some(through)) if through < after => Some(after),
        _ => through,
    };
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let upper = through.map_or(Bound::Unbounded, Bound::Included);
    ids.range::<str, _>((lower, upper)).copied()
}

/// The states of [`Holdings::visible`], from one id's states.
fn visible_in<'s, 'h>(
    states: &'s [Held<'h>],
    sent: u64,
    answered: u64,
) -> impl Iterator<Item = (Option<&'h Resource>, Option<Status>)> + use<'s, 'h> {
    let before = states.partition_point(|held| held.trace_index < sent);
    let current = match before.checked_sub(1) {
        Some(index) => (states[index].resource, states[index].status),
        None => (None, None),
    };
    let during = states[before..]
        .iter()
        .take_while(move |held| held.trace_index < answered)
        .map(|held| (held.resource, held.status));
    std::iter::once(current).chain(during)
}

/// How a page differs from what a list after `after` with `limit` may
/// answer: ids strictly ascending and after the cursor, at most `limit`
/// of them, and a next cursor (if any) at or after the last item and past
/// `after`, so following it always moves on.
pub(crate) fn page_problem(
    after: Option<&str>,
    limit: u32,
    items: &[ResourceView],
    next: Option<&str>,
) -> Option<String> {
    let limit_items = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit_items {
        return Some(format!("{} items for a limit of {limit}", items.len()));
    }
    let ids: Vec<&str> = items.iter().map(|view| view.resource.id.as_str()).collect();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Some(format!("{} listed before {}: not by id", pair[0], pair[1]));
    }
    if let (Some(after), Some(first)) = (after, ids.first()) {
        if *first <= after {
            return Some(format!("{first} listed, not after the cursor {after}"));
        }
    }
    match (next, ids.last(), after) {
        (Some(next), Some(last), _) if next < *last => {
            Some(format!("next cursor {next} before the last item {last}"))
        }
        (Some(next), _, Some(after)) if next <= after => Some(format!(
            "next cursor {next} does not move past the cursor {after}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn view(resource: &Resource, status: Option<Status>) -> ResourceView {
        ResourceView {
            resource: resource.clone(),
            status,
        }
    }

    fn observed(generation: u64) -> Status {
        Status {
            observed_generation: generation,
            ready_replicas: 1,
        }
    }

    #[test]
    fn a_read_may_see_the_state_at_its_send_or_any_committed_before_its_answer() {
        let v1 = resource("r1", 1, 1);
        let v2 = resource("r1", 1, 2);
        let mut history = History::new();
        history.at(10, API_A, desired_written("r1", Some(&v1), 1)); // 0
        history.at(20, CTRL_A, status_stored("r1", Some(observed(1)), 2)); // 10
        history.at(30, API_A, desired_written("r1", Some(&v2), 3)); // 20
        history.at(40, API_A, desired_written("r1", None, 4)); // 30
        history.at(40, API_A, status_stored("r1", None, 4)); // 40
        let mut holdings = Holdings::default();
        for entry in &history.entries {
            holdings.observe(entry);
        }
        // Sent after the status, answered before the update.
        assert!(holdings.held_between(&view(&v1, Some(observed(1))), 15, 19));
        assert!(
            !holdings.held_between(&view(&v1, None), 15, 19),
            "overwritten before the send"
        );
        assert!(
            !holdings.held_between(&view(&v2, Some(observed(1))), 15, 19),
            "not yet"
        );
        // Sent before anything, answered after the update: any of them.
        assert!(holdings.held_between(&view(&v1, None), 0, 25));
        assert!(holdings.held_between(&view(&v2, Some(observed(1))), 0, 25));
        // Never stored together: generation 2 without a status.
        assert!(!holdings.held_between(&view(&v2, None), 0, 99));
        // The delete's two writes are one state: no moment without the
        // resource but with its status.
        assert_eq!(holdings.by_id["r1"].len(), 4);
        // Standing throughout: r1 from its create until the delete. (A page
        // is judged as the history is read: against the commits before its
        // answer.)
        let upto = |answered: u64| {
            let mut holdings = Holdings::default();
            for entry in history.entries.iter().filter(|e| e.trace_index < answered) {
                holdings.observe(entry);
            }
            holdings
        };
        assert_eq!(upto(25).standing_throughout(None, None, 5, 25), ["r1"]);
        assert!(upto(45).standing_throughout(None, None, 5, 45).is_empty());
        assert!(
            upto(0).standing_throughout(None, None, 0, 0).is_empty(),
            "not yet"
        );
        assert!(
            upto(25)
                .standing_throughout(Some("r1"), None, 5, 25)
                .is_empty()
        );
        assert!(
            upto(25)
                .standing_throughout(None, Some("r0"), 5, 25)
                .is_empty()
        );
        assert!(
            upto(25)
                .standing_throughout(Some("r2"), Some("r1"), 5, 25)
                .is_empty()
        );
    }

    #[test]
    fn a_page_is_owed_the_ids_live_throughout_and_none_deleted_before_or_during() {
        let (v1, v2, v3) = (
            resource("r1", 1, 1),
            resource("r2", 1, 1),
            resource("r3", 1, 1),
        );
        let mut history = History::new();
        history.at(10, API_A, desired_written("r1", Some(&v1), 1)); // 0
        history.at(10, API_A, desired_written("r2", Some(&v2), 2)); // 10
        history.at(10, API_A, desired_written("r3", Some(&v3), 3)); // 20
        history.at(20, API_A, desired_written("r1", None, 4)); // 30: r1 gone for good
        history.at(30, API_A, desired_written("r2", None, 5)); // 40: r2 gone...
        history.at(40, API_A, desired_written("r2", Some(&v2), 6)); // 50: ...and back
        history.at(50, API_A, desired_written("r3", None, 7)); // 60: r3 gone mid-read
        let mut holdings = Holdings::default();
        for entry in history.entries.iter().filter(|e| e.trace_index < 65) {
            holdings.observe(entry);
        }
        // Sent after r2 came back, answered after r3 went: only r2 stood.
        assert_eq!(holdings.standing_throughout(None, None, 55, 65), ["r2"]);
        // Sent before r2 went: it was missing a while.
        assert!(holdings.standing_throughout(None, None, 35, 65).is_empty());
    }

    /// [`Holdings::standing_throughout`] by its definition: every id
    /// ever committed in the range, each judged by what a read could see.
    fn standing_by_definition<'h>(
        holdings: &Holdings<'h>,
        (after, through): (Option<&str>, Option<&str>),
        sent: u64,
        answered: u64,
    ) -> Vec<&'h str> {
        let in_range = |id: &str| after.is_none_or(|a| id > a) && through.is_none_or(|t| id <= t);
        holdings
            .by_id
            .keys()
            .copied()
            .filter(|id| in_range(id))
            .filter(|id| {
                holdings
                    .visible(id, sent, answered)
                    .all(|(resource, _)| resource.is_some())
            })
            .collect()
    }

    #[test]
    fn the_ids_standing_throughout_are_those_of_the_definition_in_random_histories() {
        use node::{Random, SplitMix64};
        let ids = ["r0", "r1", "r2", "r3", "r4"];
        let resources: Vec<Resource> = ids.iter().map(|id| resource(id, 1, 1)).collect();
        let ranges = [
            (None, None),
            (Some("r1"), None),
            (None, Some("r2")),
            (Some("r0"), Some("r3")),
            (Some("r2"), Some("r2")),
        ];
        let mut rng = SplitMix64::new(17);
        let mut judged = 0;
        for _ in 0..400 {
            // Creates, deletes (a resource and its status, or either
            // alone), statuses; some writes share a revision (one
            // transaction).
            let mut history = History::new();
            let mut revision = 1;
            for _ in 0..2 + rng.below(25) {
                let i = rng.index(ids.len());
                let event = match rng.below(4) {
                    0 => desired_written(ids[i], None, revision),
                    1 => status_stored(ids[i], None, revision),
                    2 => status_stored(ids[i], Some(observed(1)), revision),
                    _ => desired_written(ids[i], Some(&resources[i]), revision),
                };
                revision += rng.below(3).min(1);
                history.at(10, API_A, event);
            }
            // Judged as the checker does: with the commits before the answer.
            for cut in 0..=history.entries.len() {
                let mut holdings = Holdings::default();
                for entry in &history.entries[..cut] {
                    holdings.observe(entry);
                }
                let answered = 10 * cut as u64 + 5;
                for sent in (0..=answered).step_by(5) {
                    for range in ranges {
                        assert_eq!(
                            holdings.standing_throughout(range.0, range.1, sent, answered),
                            standing_by_definition(&holdings, range, sent, answered),
                            "{range:?} sent {sent} answered {answered}"
                        );
                        judged += 1;
                    }
                }
            }
        }
        assert!(judged > 10_000, "{judged}");
    }

    #[test]
    #[should_panic(expected = "a page judged against commits after its answer")]
    fn a_page_is_never_judged_against_commits_after_its_answer() {
        let v1 = resource("r1", 1, 1);
        let mut history = History::new();
        history.at(10, API_A, desired_written("r1", Some(&v1), 1)); // 0
        history.at(20, API_A, desired_written("r1", None, 2)); // 10
        let mut holdings = Holdings::default();
        for entry in &history.entries {
            holdings.observe(entry);
        }
        holdings.standing_throughout(None, None, 0, 5);
    }

    #[test]
    fn a_page_out_of_order_over_its_limit_or_with_a_cursor_going_back_is_misshapen() {
        let r = |id: &str| view(&resource(id, 1, 1), None);
        assert_eq!(
            page_problem(Some("a"), 2, &[r("b"), r("c")], Some("c")),
            None
        );
        assert_eq!(page_problem(None, 2, &[], None), None);
        assert_eq!(
            page_problem(Some("a"), 2, &[], Some("b")),
            None,
            "a page cut short"
        );
        let problems = [
            page_problem(None, 1, &[r("b"), r("c")], None),
            page_problem(None, 2, &[r("c"), r("b")], None),
            page_problem(None, 2, &[r("b"), r("b")], None),
            page_problem(Some("b"), 2, &[r("b")], None),
            page_problem(None, 2, &[r("b"), r("c")], Some("b")),
            page_problem(Some("b"), 2, &[], Some("b")),
        ];
        for (index, problem) in problems.iter().enumerate() {
            assert!(problem.is_some(), "case {index}");
        }
    }
}
