//! Latches: PostgreSQL's way to wake a sleeping process.
//!
//! A [`Latch`] lives in shared memory inside its owner's proc entry. Any
//! process may [`Latch::set`] it; only the owner waits on it and resets it.
//! Setting stores `1` and, if the latch was clear, sends the owner SIGURG;
//! the owner's SIGURG handler writes to its self-pipe, which its wait loop
//! (`launch::wait`) polls together with sockets and timeouts.
//!
//! # Invariants
//! 1. Only the owning process resets `is_set`, and it resets *before*
//!    checking the condition it waits for, so a set that races with the reset
//!    is never lost (the classic latch protocol).
//! 2. `owner_pid` is written by the owner when it claims its proc entry and
//!    cleared when it releases it; 0 means "nobody to wake".
//!
//! # Locking
//! None: both fields are atomics.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// The signal a latch set sends to its owner (PostgreSQL uses SIGURG too).
pub const LATCH_SIGNAL: libc::c_int = libc::SIGURG;

#[repr(C)]
pub struct Latch {
    is_set: AtomicU32,
    owner_pid: AtomicI32,
}

const _: () = assert!(std::mem::size_of::<Latch>() == 8);

impl Latch {
    pub fn init(&self) {
        self.is_set.store(0, Ordering::Relaxed);
        self.owner_pid.store(0, Ordering::Relaxed);
    }

    /// Makes the calling process the owner.
    pub fn own(&self, pid: i32) {
        self.owner_pid.store(pid, Ordering::Release);
    }

    pub fn disown(&self) {
        self.owner_pid.store(0, Ordering::Release);
    }

    pub fn owner(&self) -> i32 {
        self.owner_pid.load(Ordering::Acquire)
    }

    /// Sets the latch and wakes its owner if it was clear.
    pub fn set(&self) {
        if self.is_set.swap(1, Ordering::AcqRel) == 0 {
            let pid = self.owner_pid.load(Ordering::Acquire);
            if pid > 0 {
                // SAFETY: sending a signal has no memory-safety effect; a
                // stale pid at worst wakes a process that ignores SIGURG.
                unsafe {
                    libc::kill(pid, LATCH_SIGNAL);
                }
            }
        }
    }

    pub fn is_set(&self) -> bool {
        self.is_set.load(Ordering::Acquire) != 0
    }

    /// Clears the latch. Owner only; check the awaited condition afterwards.
    pub fn reset(&self) {
        self.is_set.store(0, Ordering::SeqCst);
    }
}
