//! The completer: every `completer_interval_ms` one scan of the open index
//! (the unfinished entries' copies) and the locks finds unfinished keys
//! that nobody works on (no lock, or a lock of mine that no operation
//! holds) and takes a batch of them over, so a key whose client gave up
//! still finishes. It scans the index, not the ledger: the ledger keeps
//! every finished key for its TTL, so a scan of it grows with the requests
//! and the scans of a run with their square.

use std::collections::BTreeMap;

use super::decode;
use super::record::is_owned_by;
use super::{ApiNode, COMPLETER_BATCH, Ctx, MAX_OPERATIONS, Operation, Purpose, Reply, Step, ms};
use crate::protocol::{LedgerEntry, Recovery, Timer, Value, keys};
use crate::reply::Kv;
use crate::store::{Op, StoreRequest, Txn};

impl ApiNode {
    pub(super) fn handle_completer(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(ms(self.settings.completer_interval_ms), Timer::Completer);
        let full = self.operations.len() >= MAX_OPERATIONS;
        if self.completer_scanning || self.session.lease().is_none() || full {
            return;
        }
        self.completer_scanning = true;
        let scan = Txn::unconditional(vec![
            Op::GetPrefix {
                prefix: keys::OPEN.into(),
            },
            Op::GetPrefix {
                prefix: keys::LOCKS.into(),
            },
        ]);
        self.send_store(ctx, Purpose::CompleterScan, StoreRequest::Txn(scan));
    }

    pub(super) fn on_completer_scan(&mut self, ctx: &mut Ctx<'_>, reply: Reply) {
        self.completer_scanning = false;
        let Reply::Store(response) = reply else {
            return; // Timed out: the next scan tries again.
        };
        let (open, locks) = match decode::scan(response) {
            Ok(scan) => scan,
            Err(error) => return error.log("completer scan"), // The next scan tries again.
        };
        let locks: BTreeMap<&str, &Kv> = locks
            .iter()
            .filter_map(|kv| Some((kv.key.strip_prefix(keys::LOCKS)?, kv)))
            .collect();
        let me = ctx.id();
        let candidates: Vec<(&str, &Kv, &LedgerEntry, Option<&Kv>)> = open
            .iter()
            .filter_map(|ledger| {
                let Value::Ledger(entry) = &ledger.value else {
                    return None; // The decoder refused such a reply.
                };
                if matches!(entry.recovery, Recovery::Finished { .. }) {
                    return None; // Never in the index: a finish deletes it.
                }
                let key = ledger.key.strip_prefix(keys::OPEN)?;
                let lock = locks.get(key).copied();
                let abandoned = lock.is_none_or(|lock| is_owned_by(lock, me));
                (abandoned && !self.key_busy(key)).then_some((key, ledger, &**entry, lock))
            })
            .collect();
        let start = candidates
            .iter()
            .position(|(key, ..)| *key > self.completer_cursor.as_str())
            .unwrap_or(0);
        let rotated = candidates[start..].iter().chain(&candidates[..start]);
        for &(key, ledger, entry, lock) in rotated.take(COMPLETER_BATCH) {
            if self.operations.len() >= MAX_OPERATIONS {
                break;
            }
            self.completer_cursor = key.to_string();
            self.resume_abandoned(ctx, key, ledger, entry, lock);
        }
    }

    /// Starts an operation without a client that takes `key` over.
    fn resume_abandoned(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &str,
        ledger: &Kv,
        entry: &LedgerEntry,
        lock: Option<&Kv>,
    ) {
        let op = Operation {
            key: key.to_string(),
            fingerprint: entry.fingerprint,
            op: entry.op.clone(),
            client: None,
            step: Step::Idle,
            held: None,
            expires_at_ms: 0,
        };
        let id = self.new_operation_id();
        self.claim(ctx, id, op, ledger, entry, lock);
    }
}
