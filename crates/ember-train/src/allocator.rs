//! The process's allocator: mimalloc, told to keep the memory it frees.
//!
//! Burn's CPU backends allocate every tensor operation's output afresh, megabytes at a time
//! for CNN activations (ResNet-50 at batch 32 frees and allocates 100 MB blocks every layer).
//! glibc's malloc hands blocks that large back to the kernel and maps them again, so every
//! step pays page faults, and copy-on-write faults with TLB shootdowns across threads where a
//! kernel reads its zeroed output before writing it. mimalloc reuses freed memory, but by
//! default it still *purges* (gives the kernel back) whatever stayed unused for a second; a
//! step that takes longer than that (ResNet-50, DenseNet) then faults in, and the kernel
//! zeroes, its whole working set again every step: 30% of a ResNet-50 step at batch 32 was
//! `clear_page_erms`. Training reuses the same sizes every step, so Ember turns purging off
//! (mimalloc's `purge_delay = -1`): the process keeps its peak memory mapped, as PyTorch's
//! and Burn's GPU caching allocators do. Measurements in `docs/benchmarks.md` (fourth round).
//!
//! Setting `MIMALLOC_PURGE_DELAY` in the environment (milliseconds; mimalloc's own default is
//! 1000) still wins: Ember only changes mimalloc's default.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long};
use std::sync::atomic::{AtomicBool, Ordering};

/// mimalloc with purging turned off (see the module documentation).
pub struct Allocator;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3 alike: mimalloc keeps the
/// enum's values stable, with `deprecated_*` placeholders for retired options).
const MI_OPTION_PURGE_DELAY: c_int = 15;

// libmimalloc-sys exposes mimalloc's option functions only with its `extended` feature, and
// even then not the option numbers, so the one function Ember needs is declared here; the
// symbol is in the mimalloc library that the `mimalloc` crate links.
unsafe extern "C" {
    /// Sets an option unless the environment (`MIMALLOC_<NAME>`) or `mi_option_set` did.
    fn mi_option_set_default(option: c_int, value: c_long);
}

static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// Turns purging off, once, before the first allocation this allocator serves.
#[inline(always)]
fn configure_once() {
    if !CONFIGURED.load(Ordering::Relaxed) && !CONFIGURED.swap(true, Ordering::Relaxed) {
        // SAFETY: a plain store into mimalloc's option table, valid before and after its
        // initialisation; racing threads would store the same value.
        unsafe { mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// mimalloc's purge delay in this process, in milliseconds; negative: never purge.
pub fn purge_delay_ms() -> c_long {
    unsafe extern "C" {
        fn mi_option_get(option: c_int) -> c_long;
    }
    // SAFETY: reads mimalloc's option table.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

// SAFETY: every method forwards to `MiMalloc`, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        configure_once();
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        configure_once();
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::purge_delay_ms;
    use std::process::Command;

    /// The library sets no allocator; its unit tests run on this one, as the binaries do.
    #[global_allocator]
    static ALLOCATOR: super::Allocator = super::Allocator;

    /// Run by the test below in a child process whose environment sets the option.
    const CHILD: &str = "allocator::tests::the_environment_still_sets_the_purge_delay";

    #[test]
    fn ember_turns_purging_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment's choice wins (the test below checks that it does)
        }
        assert_eq!(
            purge_delay_ms(),
            -1,
            "mimalloc would give freed memory back after a while"
        );
    }

    /// Also proves that `MI_OPTION_PURGE_DELAY` is the option mimalloc calls `purge_delay`.
    #[test]
    fn the_environment_still_sets_the_purge_delay() {
        if let Ok(value) = std::env::var("MIMALLOC_PURGE_DELAY") {
            assert_eq!(purge_delay_ms().to_string(), value);
            return;
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let child = Command::new(exe)
            .args(["--exact", CHILD, "--test-threads=1"])
            .env("MIMALLOC_PURGE_DELAY", "1234")
            .output()
            .expect("the test binary runs again");
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "child failed: {stdout}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
    }
}
