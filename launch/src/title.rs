//! Process titles: what `ps` shows for each process, as PostgreSQL's
//! ps_status.c does on Linux, by overwriting the original argv area.
//!
//! glibc calls functions in `.init_array` with `(argc, argv, envp)`; we use
//! that to remember where the argument strings live. [`set`] writes the new
//! title there, padded with NULs; the kernel's `/proc/PID/cmdline`, which
//! `ps` reads, then shows it. The title is cut to the space the original
//! arguments took (the postmaster's child command lines leave plenty).
//!
//! Call [`set`] only after the command line has been parsed: `std::env::args`
//! reads the same memory.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

static AREA_START: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static AREA_LEN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn capture_argv(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    _envp: *const *const libc::c_char,
) {
    if argc <= 0 || argv.is_null() {
        return;
    }
    // SAFETY: glibc passes the process's real argv, argc entries long.
    unsafe {
        let first = *argv;
        if first.is_null() {
            return;
        }
        // The strings are laid out contiguously; stop at the first gap.
        let mut end = first.add(libc::strlen(first) + 1);
        for i in 1..argc as usize {
            let s = *argv.add(i);
            if s != end {
                break;
            }
            end = s.add(libc::strlen(s) + 1);
        }
        AREA_START.store(first as *mut u8, Ordering::Relaxed);
        AREA_LEN.store(end as usize - first as usize, Ordering::Relaxed);
    }
}

#[used]
#[link_section = ".init_array"]
static CAPTURE_ARGV: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = capture_argv;

/// Sets the process title shown by `ps`.
pub fn set(title: &str) {
    let start = AREA_START.load(Ordering::Relaxed);
    let len = AREA_LEN.load(Ordering::Relaxed);
    if start.is_null() || len < 2 {
        return;
    }
    let n = title.len().min(len - 1);
    // SAFETY: [start, start+len) is this process's argv area, which we own
    // from here on; nothing else reads it after argument parsing.
    unsafe {
        std::ptr::copy_nonoverlapping(title.as_ptr(), start, n);
        std::ptr::write_bytes(start.add(n), 0, len - n);
    }
}
