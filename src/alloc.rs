//! The process's allocator: mimalloc, configured before its first
//! allocation. The binary and the benchmarks install it with
//! `#[global_allocator] static ALLOCATOR: Allocator = Allocator;`.
//!
//! A simulated run allocates and frees small messages and stored values at
//! a high rate, and mimalloc's size-class free lists serve that faster than
//! glibc's malloc (`cargo bench --bench sweep`). It decides nothing a node
//! sees, so trace hashes are unchanged.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Once;

/// mimalloc, with the option below set first.
pub struct Allocator;

static CONFIGURE: Once = Once::new();

/// mimalloc's `arena_eager_commit` (4 in its `mi_option_e`, v2 and v3
/// alike), turned off before the process's first allocation through Rust
/// (mimalloc reads it lazily, when it reserves an arena, so no arena is
/// committed eagerly): an arena's pages are then committed as they are
/// used rather than when it is reserved,
/// so a chaos seed's resident memory stays near glibc's (9.7 MB against
/// 9.1; 13.5 with the option on). This overrides the environment variable
/// `MIMALLOC_ARENA_EAGER_COMMIT`.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

fn configure() {
    // SAFETY: setting an option allocates nothing and does not call back
    // into this allocator; it is allowed at any time.
    CONFIGURE.call_once(|| unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) });
}

// SAFETY: every call is passed to mimalloc unchanged.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        configure();
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        configure();
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}
