//! `controlplane`: a cloud control plane built as sans-IO nodes on the `sim`
//! discrete-event simulator, with the checkers that verify it.

pub mod config;
pub mod protocol;
pub mod shard;
pub mod store;
