//! Which property a real run's history can judge, and from what; which it
//! cannot, and why. One row per property, so a new property without a row
//! fails a test instead of being judged by accident.
//!
//! A real history has no true clock. Each node's own lines are in the
//! order it recorded them; lines of different nodes are ordered by the
//! host clock (see [`super::load`]). So:
//!
//! - A property is **judged** when its verdict depends only on each node's
//!   own order, on store revisions, or on facts of the whole run (two
//!   records of one key that disagree, whichever came first).
//! - A property is judged **by message order** when it compares records of
//!   two nodes that a chain of messages orders in a correct system (billing
//!   charges, its reply reaches the API, the API commits at the store). It
//!   trusts the host clock to put a message's send before its receipt:
//!   true on one machine whose wall clock did not step back, and across
//!   machines while their clocks agree better than one message's latency.
//!   The report marks these.
//! - A property is **not judged** when a correct system could break it in
//!   host-clock order only by timing (two controllers' leases, which
//!   exclude each other by clock rates, not by messages), or when it needs
//!   what only the simulator lists (faults, lost or slowed messages,
//!   BUGGIFY firings), or records the run does not have (no client
//!   history).
//! - `eventually.*` ask what held once faults healed. A real run keeps no
//!   fault list, so they are judged only when the user says none were
//!   injected (`--quiet`), and then only those the end can answer once the
//!   run stopped taking new requests a liveness bound before its end.

/// What a property needs of a real history to be judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Nothing beyond the history: always judged.
    History,
    /// Client records (`RequestSent`, `ResponseReceived`).
    Clients,
    /// A run with no faults injected, that took no new request for a
    /// liveness bound before its end (and no restart within it): judged
    /// on the state at the end.
    QuietEnd,
    /// A run with no faults injected, and client records.
    QuietClients,
    /// Never judged on a real run, for this reason.
    Never(&'static str),
}

/// One property's row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    /// The property.
    pub(crate) property: &'static str,
    /// What it needs.
    pub(crate) needs: Needs,
    /// What a judged verdict is judged from.
    pub(crate) basis: &'static str,
    /// The verdict trusts the host clock to order a message's send before
    /// its receipt across nodes.
    pub(crate) message_order: bool,
}

const fn rule(property: &'static str, needs: Needs, basis: &'static str) -> Rule {
    Rule {
        property,
        needs,
        basis,
        message_order: false,
    }
}

const fn by_message_order(property: &'static str, needs: Needs, basis: &'static str) -> Rule {
    Rule {
        property,
        needs,
        basis,
        message_order: true,
    }
}

const fn never(property: &'static str, reason: &'static str) -> Rule {
    Rule {
        property,
        needs: Needs::Never(reason),
        basis: "",
        message_order: false,
    }
}

/// Why `always.one_active_holder` is not judged.
const LEASE_OVERLAP: &str = "two controllers believing one lease at once is judged on one clock \
     across both, and a paused believer is excused by the simulator's fault list: a real run has \
     neither (leases exclude each other by clock rates, not by messages)";

/// Why the `quiet` properties are not judged.
const DISTURBANCES: &str = "quiet moments are those the simulator's lists show free of faults, \
     lost or slowed messages and BUGGIFY firings: a real network keeps no such list";

/// Every property, in the checkers' report order.
pub(crate) const RULES: &[Rule] = &[
    rule(
        "always.one_resource_per_key",
        Needs::History,
        "the store's commits, in its own order",
    ),
    rule(
        "always.resource_created_once",
        Needs::History,
        "the store's commits, in its own order (and the clients' request kinds, if recorded)",
    ),
    rule(
        "always.one_charge_per_key",
        Needs::History,
        "billing's charges",
    ),
    by_message_order(
        "always.created_after_charge",
        Needs::History,
        "billing's charges before the store's commits: a commit follows the charge's reply",
    ),
    rule(
        "always.replay_matches_first",
        Needs::History,
        "every recorded answer of a key against the others: two that differ break it, whichever came first",
    ),
    rule(
        "always.mismatch_changes_nothing",
        Needs::History,
        "the API's and the store's records of each key against its first request",
    ),
    rule(
        "always.mismatch_answered_422",
        Needs::History,
        "the 422s recorded against each key's stored request",
    ),
    rule(
        "always.keys_fresh",
        Needs::Clients,
        "the clients' sends: two requests under one fresh key break it, whichever came first",
    ),
    by_message_order(
        "always.answers_match_store",
        Needs::Clients,
        "each client's answers against the store's commits before them: an answer follows the commit it reports",
    ),
    rule(
        "always.answers_match_request",
        Needs::Clients,
        "each client's answers against its own requests",
    ),
    rule(
        "always.read_your_writes",
        Needs::Clients,
        "each client's reads against its own acknowledged writes, in its own order",
    ),
    rule(
        "always.generation_counts_changes",
        Needs::History,
        "the store's commits, in its own order",
    ),
    rule(
        "always.action_runs_once",
        Needs::History,
        "the workers' executions: one action id run twice breaks it, wherever and whenever",
    ),
    rule(
        "always.one_instance_per_ordinal",
        Needs::History,
        "the workers' starts and stops: every (resource, ordinal) starts on the one worker that serializes it, in that worker's order",
    ),
    rule(
        "always.fencing_monotonic",
        Needs::History,
        "each worker's own fences and executions, in its own order",
    ),
    rule(
        "always.instance_in_its_shard",
        Needs::History,
        "each execution alone",
    ),
    rule(
        "always.one_holder_per_token",
        Needs::History,
        "every record of a lease token: two controllers named for one break it, whichever came first",
    ),
    rule(
        "always.stale_holder_effect",
        Needs::History,
        "the store's revisions, which order lease and status writes without a clock",
    ),
    never("always.one_active_holder", LEASE_OVERLAP),
    rule(
        "eventually.converged",
        Needs::QuietEnd,
        "the store's desired state against the workers' instances and the last status, at the end",
    ),
    rule(
        "eventually.keys_finished",
        Needs::QuietEnd,
        "the ledger's keys, billing's charges and the store's commits, at the end",
    ),
    rule(
        "eventually.shards_held",
        Needs::QuietEnd,
        "the controllers' beliefs open at the end (a restart ends a node's beliefs)",
    ),
    rule(
        "eventually.shards_placed",
        Needs::QuietEnd,
        "the beliefs open at the end against the membership last read (by store revision)",
    ),
    never("eventually.quiet_leases_kept", DISTURBANCES),
    rule(
        "eventually.available",
        Needs::QuietClients,
        "each client's requests against its own answers, on its own lines' host clock",
    ),
    never("eventually.quiet_first_try", DISTURBANCES),
    by_message_order(
        "cost.shard_movement",
        Needs::History,
        "shard acquisitions in host-clock order (each follows the last holder's release or expiry at the store), memberships by store revision",
    ),
];

/// The row of `property`.
pub(crate) fn rule_of(property: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.property == property)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_has_exactly_one_rule_in_report_order() {
        let rules: Vec<&str> = RULES.iter().map(|rule| rule.property).collect();
        assert_eq!(rules, crate::check::property_names());
    }

    #[test]
    fn a_judged_rule_says_what_it_is_judged_from_and_a_never_rule_why_not() {
        for rule in RULES {
            match rule.needs {
                Needs::Never(reason) => {
                    assert!(rule.basis.is_empty() && reason.len() > 40, "{rule:?}");
                    assert!(!rule.message_order, "{rule:?}");
                }
                _ => assert!(!rule.basis.is_empty(), "{rule:?}"),
            }
        }
    }
}
