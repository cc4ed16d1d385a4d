//! Billing node: the external payment service the API charges, once per
//! Idempotency-Key.
//!
//! It behaves as a real payment API does: a charge request carries the
//! caller's idempotency key, and a repeated key (a retry, a network
//! duplicate, or another API node finishing an interrupted create) gets the
//! first charge's id back instead of a second charge. The ledger of keys is
//! durable and written before the reply goes out, so a crash between the
//! two loses nothing: the caller retries and is answered from the ledger.
//! `ChargeExecuted` is the side effect the checkers count; it is recorded
//! once per key, ever.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use node::{Context, Node, NodeId, TimerId};

use crate::protocol::{ControlPlane, Event, Msg, RequestId, Timer};

/// Keys the ledger holds at most. Past it billing refuses new keys (and
/// answers nothing, so the caller times out): an unbounded ledger would be a
/// leak in a long run, and a million charges is far beyond any scenario.
pub const MAX_CHARGES: usize = 1_000_000;

/// Billing's durable storage: every key charged and its charge id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingLedger {
    /// Charge id by idempotency key.
    charges: BTreeMap<String, u64>,
    /// The last charge id handed out; ids start at 1.
    last_charge_id: u64,
}

/// What the ledger made of one charge request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// A new key: this charge was executed now.
    Executed(u64),
    /// A known key: the first charge's id.
    Deduplicated(u64),
    /// A new key, but the ledger is full: nothing was charged.
    Full,
}

impl BillingLedger {
    /// The charge id of `key`, if it was charged.
    pub fn charge_id(&self, key: &str) -> Option<u64> {
        self.charges.get(key).copied()
    }

    /// How many keys were charged.
    pub fn len(&self) -> usize {
        self.charges.len()
    }

    /// Whether nothing was charged yet.
    pub fn is_empty(&self) -> bool {
        self.charges.is_empty()
    }

    /// Charges `key` unless it was charged before or the ledger holds
    /// `limit` keys already.
    pub fn charge(&mut self, key: &str, limit: usize) -> ChargeOutcome {
        if let Some(charge_id) = self.charge_id(key) {
            return ChargeOutcome::Deduplicated(charge_id);
        }
        if self.charges.len() >= limit {
            return ChargeOutcome::Full;
        }
        self.last_charge_id += 1;
        let charge_id = self.last_charge_id;
        let fresh = self.charges.insert(key.to_string(), charge_id);
        assert!(fresh.is_none(), "a key is charged once");
        assert!(self.charges.len() <= limit);
        ChargeOutcome::Executed(charge_id)
    }
}

/// The billing service. It has no volatile state: everything it knows is in
/// its durable [`BillingLedger`].
#[derive(Debug, Default)]
pub struct BillingNode {}

impl BillingNode {
    /// A billing node; its ledger lives in the node's durable storage.
    pub fn new() -> Self {
        Self {}
    }

    fn handle_charge(
        &mut self,
        ctx: &mut Context<'_, ControlPlane>,
        from: NodeId,
        request_id: RequestId,
        key: String,
        amount_cents: u64,
    ) {
        // The write is durable as soon as it is made, so it lands before the
        // reply below leaves: a crash in between cannot lose the charge.
        let outcome = ctx.durable_mut().billing_mut().charge(&key, MAX_CHARGES);
        let charge_id = match outcome {
            ChargeOutcome::Executed(charge_id) => {
                ctx.record(Event::ChargeExecuted {
                    key: key.clone(),
                    charge_id,
                    amount_cents,
                });
                charge_id
            }
            ChargeOutcome::Deduplicated(charge_id) => {
                ctx.record(Event::ChargeDeduplicated { key: key.clone() });
                charge_id
            }
            ChargeOutcome::Full => {
                debug_assert!(false, "billing ledger full at {MAX_CHARGES} keys");
                return;
            }
        };
        // Charged (durable), reply not yet sent: a lost or late reply makes
        // the API retry, which must be deduplicated by the key.
        ctx.buggify("billing.before_reply");
        ctx.send(
            from,
            Msg::Charged {
                request_id,
                key,
                charge_id,
            },
        );
    }
}

impl Node<ControlPlane> for BillingNode {
    fn on_start(&mut self, _ctx: &mut Context<'_, ControlPlane>) {}

    fn on_message(&mut self, ctx: &mut Context<'_, ControlPlane>, from: NodeId, message: Msg) {
        // Billing serves one request; anything else is not addressed to it.
        if let Msg::Charge {
            request_id,
            key,
            amount_cents,
        } = message
        {
            self.handle_charge(ctx, from, request_id, key, amount_cents);
        }
    }

    fn on_timer(&mut self, _ctx: &mut Context<'_, ControlPlane>, _timer: TimerId, _tag: Timer) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::testing::Harness;

    const BILLING: NodeId = NodeId(1);
    const API: NodeId = NodeId(2);

    fn harness() -> Harness<ControlPlane> {
        let mut harness = Harness::new(3, BILLING, Box::new(BillingNode::new()));
        harness.start();
        harness
    }

    fn charge(request_id: RequestId, key: &str) -> Msg {
        Msg::Charge {
            request_id,
            key: key.into(),
            amount_cents: 100,
        }
    }

    /// Delivers a charge and returns the charge id of the one reply.
    fn charged(
        harness: &mut Harness<ControlPlane>,
        request_id: RequestId,
        key: &str,
    ) -> (u64, Vec<Event>) {
        let output = harness.deliver(API, charge(request_id, key));
        let [
            (
                to,
                Msg::Charged {
                    request_id: replied,
                    key: replied_key,
                    charge_id,
                },
            ),
        ] = &output.sent[..]
        else {
            panic!("one Charged reply, got {:?}", output.sent)
        };
        assert_eq!(
            (*to, *replied, replied_key.as_str()),
            (API, request_id, key)
        );
        (*charge_id, output.records)
    }

    #[test]
    fn repeated_key_returns_the_first_charge_id_and_executes_once() {
        let mut harness = harness();
        let (first, records) = charged(&mut harness, 1, "k");
        assert_eq!(
            records,
            vec![Event::ChargeExecuted {
                key: "k".into(),
                charge_id: first,
                amount_cents: 100
            }]
        );
        let (again, records) = charged(&mut harness, 2, "k");
        assert_eq!(again, first);
        assert_eq!(records, vec![Event::ChargeDeduplicated { key: "k".into() }]);
        assert_eq!(harness.durable().billing().unwrap().len(), 1);
    }

    #[test]
    fn distinct_keys_get_distinct_charge_ids() {
        let mut harness = harness();
        let (a, _) = charged(&mut harness, 1, "a");
        let (b, _) = charged(&mut harness, 2, "b");
        assert_ne!(a, b);
        let ledger = harness.durable().billing().unwrap();
        assert_eq!(
            (ledger.charge_id("a"), ledger.charge_id("b")),
            (Some(a), Some(b))
        );
    }

    #[test]
    fn charges_survive_a_restart() {
        let mut harness = harness();
        let (first, _) = charged(&mut harness, 1, "k");
        harness.restart(Box::new(BillingNode::new()));
        let (again, records) = charged(&mut harness, 2, "k");
        assert_eq!(again, first);
        assert_eq!(records, vec![Event::ChargeDeduplicated { key: "k".into() }]);
        let (next, _) = charged(&mut harness, 3, "other");
        assert!(next > first, "charge ids are not reused after a restart");
    }

    #[test]
    fn charges_survive_a_reboot_whatever_the_new_monotonic_clock_reads() {
        for rebooted_at_ns in [0, u64::MAX / 4] {
            let mut harness = harness();
            harness.advance(500 * node::SECOND_NS);
            let (first, _) = charged(&mut harness, 1, "k");
            let before = harness.durable().billing().unwrap().clone();
            let output = harness.reboot(Box::new(BillingNode::new()), rebooted_at_ns);
            assert!(output.sent.is_empty() && output.timers.is_empty());
            assert_eq!(
                harness.durable().billing(),
                Some(&before),
                "nothing re-based"
            );
            let (again, records) = charged(&mut harness, 2, "k");
            assert_eq!(again, first, "still deduplicated");
            assert_eq!(records, vec![Event::ChargeDeduplicated { key: "k".into() }]);
            let (next, _) = charged(&mut harness, 3, "other");
            assert!(next > first, "charge ids are not reused after a reboot");
        }
    }

    #[test]
    fn a_full_ledger_refuses_new_keys_but_answers_known_ones() {
        let mut ledger = BillingLedger::default();
        assert_eq!(ledger.charge("a", 1), ChargeOutcome::Executed(1));
        assert_eq!(ledger.charge("b", 1), ChargeOutcome::Full);
        assert_eq!(ledger.charge("a", 1), ChargeOutcome::Deduplicated(1));
        assert_eq!((ledger.len(), ledger.charge_id("b")), (1, None));
    }
}
