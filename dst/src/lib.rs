//! `dst`: the deterministic simulation testing framework around the
//! control plane.
//!
//! | module | what it owns |
//! |---|---|
//! | [`engine`] | which simulator runs a scenario (`sim`, turmoil, madsim), and looking up its run function |
//! | [`error`] | why a call failed: bad input, results not written, or a crash of the system under test |
//! | [`layout`] | who is who: node counts, ids, names and roles, and what a node name in a scenario resolves to |
//! | [`scenario`] | scenario files: parsed, validated, resolved into one run's configuration |
//! | [`world`] | one run: the nodes of [`plane`] on [`sim`], the safety and liveness phases |
//! | [`check`] | the checkers: `always`, `eventually`, `cost` and `sometimes` properties over the history |
//! | [`report`] | Markdown and JSON reports of one run |
//! | [`timeline`] | a run as a picture: lanes per node, leases, faults, requests, side effects, violations; one self-contained HTML page |
//! | [`perfetto`] | the same picture as Chrome trace event JSON, for ui.perfetto.dev and chrome://tracing |
//! | [`sweep`] | many seeds in parallel, resumable, with a failure artifact per failing seed |
//! | [`merge`] | the outputs of `sweep --shard K/N` run apart, merged into the one sweep they split |
//! | [`guided`] | coverage-guided sweeps: a corpus of fault lists that reached rare coverage, mutated |
//! | [`shrink`] | delta debugging over a failing run's fault list |
//! | [`story`] | the story of a failure: the events that explain one violation, with message contents |
//! | [`artifact`] | what a failure leaves behind so it can be replayed |
//! | [`real`] | a real run's history (`check --history`): read, merged, judged by the same checkers where one clock is not needed |
//! | [`input`] | reading input files: one size cap, UTF-8 errors that name the byte |
//! | [`lessons`] | `docs/lessons/`: a page per pattern, generated from the zoo's reproducers and their stories |
//! | [`zoo`] | the planted bugs, the scenario that exposes each, and what each teaches |

// A small public surface: what the command line, its tests and benches
// use is `pub`, everything else `pub(crate)`, and this lint keeps items of
// private modules from claiming more.
#![warn(unreachable_pub)]

pub mod artifact;
pub mod check;
pub mod engine;
pub mod error;
pub mod guided;
pub mod input;
pub mod layout;
pub mod lessons;
pub mod merge;
pub mod perfetto;
pub mod real;
pub mod report;
pub mod scenario;
#[cfg(test)]
mod scratch;
pub mod shrink;
pub mod story;
pub mod sweep;
pub mod timeline;
pub mod world;
pub mod zoo;
