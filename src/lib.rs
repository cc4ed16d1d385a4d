//! `controlplane`: a cloud control plane built as sans-IO nodes on the `sim`
//! discrete-event simulator, with the checkers that verify it.

pub mod api;
pub mod artifact;
pub mod billing;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod controller;
pub mod protocol;
pub mod report;
pub mod scenario;
pub mod shard;
pub mod shrink;
pub mod store;
pub mod store_node;
pub mod sweep;
pub mod worker;
pub mod world;
pub mod zoo;
