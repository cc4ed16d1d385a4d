//! The store: an etcd-like state machine ([`KvStore`], in `kv`) and the
//! node that serves it ([`StoreNode`], in `node`).

mod kv;
mod node;

pub use kv::*;
pub use node::{MAX_WATCHES, StoreNode, StoreState};
