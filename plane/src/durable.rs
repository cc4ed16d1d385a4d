//! What each node kind keeps across crashes and reboots, as one serde type
//! that a host can write to disk.
//!
//! None of it holds a raw monotonic reading: a reboot may restart the
//! monotonic clock anywhere. The store and the client keep their times on
//! a durable node clock (`crate::clock`); billing and workers keep no time
//! at all.

use serde::{Deserialize, Serialize};

use crate::billing::BillingLedger;
use crate::client::ClientState;
use crate::store::StoreState;
use crate::worker::WorkerState;

/// A node's durable state. API nodes and controllers keep nothing durable
/// (their work lives in the store, on leases that die with them), so they
/// stay [`Durable::Fresh`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durable {
    /// Nothing written yet.
    #[default]
    Fresh,
    /// The store's state machine.
    Store(StoreState),
    /// Billing's ledger of charges.
    Billing(BillingLedger),
    /// A worker's instances, executed actions and fences.
    Worker(WorkerState),
    /// A client's outstanding and known requests.
    Client(ClientState),
}

macro_rules! accessors {
    ($($variant:ident, $state:ty, $get:ident, $get_mut:ident;)*) => {
        impl Durable {
            $(
                #[doc = concat!("The ", stringify!($variant), " state, if this node keeps one.")]
                pub fn $get(&self) -> Option<&$state> {
                    match self {
                        Durable::$variant(state) => Some(state),
                        _ => None,
                    }
                }

                #[doc = concat!("The ", stringify!($variant), " state, created empty on first use.")]
                ///
                /// # Panics
                /// If this node already keeps another kind's state: a node
                /// kind keeps one type, so that is a bug in the node.
                pub fn $get_mut(&mut self) -> &mut $state {
                    if matches!(self, Durable::Fresh) {
                        *self = Durable::$variant(<$state>::default());
                    }
                    match self {
                        Durable::$variant(state) => state,
                        other => panic!(
                            concat!("a node keeps one durable kind; asked for ", stringify!($variant), " in {:?}"),
                            std::mem::discriminant(other)
                        ),
                    }
                }
            )*
        }
    };
}

accessors! {
    Store, StoreState, store, store_mut;
    Billing, BillingLedger, billing, billing_mut;
    Worker, WorkerState, worker, worker_mut;
    Client, ClientState, client, client_mut;
}
