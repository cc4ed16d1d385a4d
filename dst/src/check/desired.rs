//! The desired state the store committed, judged write by write: a
//! resource is born at generation 1, and its generation counts the changes
//! of its spec, one per change; nothing writes it after its deletion.
//!
//! Convergence is judged by generation (a controller that saw generation
//! *g* reports status for *g*), so a spec change that keeps the generation
//! would read as converged while the old spec runs. This reads only the
//! store's record of each commit (`DesiredWritten`), never the API's.

use std::collections::BTreeMap;

use super::{CheckInput, PropertyKind, Verdict, Violations};
use plane::protocol::{Event, Resource};

/// Per resource, in commit order: the first state is generation 1, a
/// write that changes the spec raises the generation by exactly one, a
/// write that keeps it keeps the generation (and the id and name never
/// change), and no write follows a deletion.
pub(crate) const GENERATION_COUNTS_CHANGES: &str = "always.generation_counts_changes";

/// What the store holds of one resource, as the commits so far left it.
enum Stored<'h> {
    Present(&'h Resource),
    Deleted,
}

pub(crate) fn generation_counts_changes(input: &CheckInput) -> Verdict {
    let mut found = Violations::new(GENERATION_COUNTS_CHANGES, PropertyKind::Always);
    let mut stored: BTreeMap<&str, Stored> = BTreeMap::new();
    for entry in input.history {
        let Event::DesiredWritten {
            id,
            resource,
            revision,
            ..
        } = &entry.event
        else {
            continue;
        };
        let problem = match (stored.get(id.as_str()), resource) {
            (_, Some(next)) if next.id != *id => Some(format!(
                "revision {revision} stored {} under the key of {id}",
                next.id
            )),
            (None, Some(next)) if next.generation != 1 => Some(format!(
                "{id} was created at generation {} (revision {revision}), not 1",
                next.generation
            )),
            (Some(Stored::Deleted), Some(next)) => Some(format!(
                "{id} was written again at generation {} (revision {revision}) after its deletion",
                next.generation
            )),
            (Some(Stored::Present(previous)), Some(next)) => change_problem(previous, next)
                .map(|problem| format!("{id} at revision {revision}: {problem}")),
            (Some(Stored::Deleted), None) => {
                Some(format!("{id} was deleted again (revision {revision})"))
            }
            (None | Some(Stored::Present(_)), None) | (None, Some(_)) => None,
        };
        if let Some(message) = problem {
            found.at_entry(entry, &[], message);
        }
        let state = match resource {
            Some(next) => Stored::Present(next),
            None => Stored::Deleted,
        };
        stored.insert(id, state);
    }
    found.into_verdict()
}

/// What is wrong with `next` as the successor of `previous`, if anything.
fn change_problem(previous: &Resource, next: &Resource) -> Option<String> {
    if next.name != previous.name {
        return Some(format!(
            "the name changed from {:?} to {:?}",
            previous.name, next.name
        ));
    }
    let expected = if next.spec == previous.spec {
        previous.generation
    } else {
        previous.generation + 1
    };
    if next.generation == expected {
        return None;
    }
    let what = if next.spec == previous.spec {
        format!("the spec stayed {:?}", next.spec)
    } else {
        format!(
            "the spec changed from {:?} to {:?}",
            previous.spec, next.spec
        )
    };
    Some(format!(
        "{what}, generation {} to {} (expected {expected})",
        previous.generation, next.generation
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// The store commits `id` at `replicas` and `generation` (`None`: its
    /// deletion) at `time_ms`, revision `revision`.
    fn write(
        history: &mut History,
        time_ms: u64,
        id: &str,
        state: Option<(u32, u64)>,
        revision: u64,
    ) {
        let resource = state.map(|(replicas, generation)| resource(id, replicas, generation));
        history.at(
            time_ms,
            API_A,
            desired_written(id, resource.as_ref(), revision),
        );
    }

    #[test]
    fn a_spec_change_raises_the_generation_by_exactly_one() {
        let mut history = History::new();
        write(&mut history, 10, "r1", Some((1, 1)), 5);
        write(&mut history, 20, "r1", Some((2, 2)), 6);
        write(&mut history, 30, "r1", None, 7);
        assert_eq!(history.violations(GENERATION_COUNTS_CHANGES), 0);
    }

    #[test]
    fn a_spec_change_that_keeps_the_generation_violates() {
        let mut history = History::new();
        write(&mut history, 10, "r1", Some((1, 1)), 5);
        write(&mut history, 20, "r1", Some((2, 1)), 6);
        let verdict = history.verdict(GENERATION_COUNTS_CHANGES);
        assert_eq!(verdict.violation_count, 1);
        assert!(verdict.violations[0].message.contains("expected 2"));
    }

    #[test]
    fn a_rewrite_of_the_same_spec_keeps_the_generation() {
        let mut history = History::new();
        write(&mut history, 10, "r1", Some((1, 1)), 5);
        write(&mut history, 20, "r1", Some((1, 2)), 6);
        write(&mut history, 30, "r1", Some((3, 4)), 7);
        let verdict = history.verdict(GENERATION_COUNTS_CHANGES);
        assert_eq!(verdict.violation_count, 2);
        assert!(verdict.violations[0].message.contains("the spec stayed"));
    }

    #[test]
    fn a_create_past_generation_one_or_a_write_after_deletion_violates() {
        let mut history = History::new();
        write(&mut history, 10, "r1", Some((1, 2)), 5);
        write(&mut history, 20, "r2", Some((1, 1)), 6);
        write(&mut history, 30, "r2", None, 7);
        write(&mut history, 40, "r2", Some((1, 1)), 8);
        let verdict = history.verdict(GENERATION_COUNTS_CHANGES);
        assert_eq!(verdict.violation_count, 2);
        assert!(verdict.violations[0].message.contains("not 1"));
        assert!(verdict.violations[1].message.contains("after its deletion"));
    }
}
