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

/// Inlined: every allocation passes here, and once the option is set this
/// is one load and one branch (out of line it was a call per allocation,
/// 0.4% of a chaos seed's instructions).
#[inline(always)]
fn configure() {
    // SAFETY: setting an option allocates nothing and does not call back
    // into this allocator; it is allowed at any time.
    CONFIGURE.call_once(|| unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) });
}

/// The largest alignment mimalloc's plain `mi_malloc` guarantees for a
/// block at least that large (`MI_MAX_ALIGN_SIZE`); smaller blocks are
/// aligned to their size class, which is at least their size.
const PLAIN_ALIGN: usize = 16;

/// Whether `layout` can take mimalloc's plain entry points rather than its
/// aligned ones: the same rule as the standard library's own allocators.
/// The plain path skips the aligned path's checks on every call, which
/// were about 3% of a chaos seed's instructions.
#[inline]
fn plain(layout: Layout) -> bool {
    layout.align() <= PLAIN_ALIGN && layout.align() <= layout.size()
}

// SAFETY: every call is passed to mimalloc: to its plain entry points when
// the alignment asked for is one they guarantee (see `plain`), otherwise
// to its aligned ones.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        configure();
        if plain(layout) {
            unsafe { libmimalloc_sys::mi_malloc(layout.size()).cast() }
        } else {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        configure();
        if plain(layout) {
            unsafe { libmimalloc_sys::mi_zalloc(layout.size()).cast() }
        } else {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= PLAIN_ALIGN && layout.align() <= new_size {
            unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block the plain path hands out is aligned as its layout asks,
    /// for every size and alignment it takes, and survives growing and
    /// shrinking with its contents.
    #[test]
    fn plain_blocks_are_aligned_as_asked() {
        let allocator = Allocator;
        for align in [1, 2, 4, 8, 16] {
            for size in (align..=256).chain([1_000, 4_096, 70_000]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                assert!(plain(layout));
                unsafe {
                    let ptr = allocator.alloc(layout);
                    assert!(!ptr.is_null());
                    assert_eq!(ptr as usize % align, 0, "size {size} align {align}");
                    ptr.write_bytes(0xa5, size);
                    let grown = allocator.realloc(ptr, layout, size * 3);
                    assert_eq!(grown as usize % align, 0);
                    assert_eq!(*grown.add(size - 1), 0xa5);
                    let zeroed = allocator.alloc_zeroed(layout);
                    assert_eq!(zeroed as usize % align, 0);
                    assert!((0..size).all(|i| *zeroed.add(i) == 0));
                    allocator.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());
                    allocator.dealloc(zeroed, layout);
                }
            }
        }
        // Larger alignments still take the aligned path.
        let layout = Layout::from_size_align(64, 64).unwrap();
        assert!(!plain(layout));
        unsafe {
            let ptr = allocator.alloc(layout);
            assert_eq!(ptr as usize % 64, 0);
            allocator.dealloc(ptr, layout);
        }
    }
}
