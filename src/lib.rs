//! `controlplane`: the command line over the [`dst`] testing framework and
//! the [`plane`] nodes. Everything of substance lives in those crates; this
//! one parses arguments, prints and maps outcomes to exit codes.

pub mod admin_client;
pub mod alloc;
pub mod chaos;
pub mod cli;
pub mod load;
pub mod remote;
pub mod remote_http;
pub mod serve;
pub mod watch;
