//! Sleeping until a queued request is granted (PostgreSQL's `ProcSleep`,
//! with the timeouts its `CheckDeadLock` and lock_timeout handlers serve).
//!
//! The waiter sleeps on its own `wait_status` word as a process-shared
//! futex; whoever grants its request (a releaser, a waiter that gave up, a
//! deadlock victim leaving the queue) sets the word to `GRANTED` under the
//! partition lock and wakes it after releasing that lock.
//!
//! ```text
//!   loop:
//!     wait_status == GRANTED?                 → Acquired
//!     interrupts()? error                     → leave the queue, pass it on
//!     lock_timeout passed?                    → leave the queue, 55P03
//!     deadlock_timeout passed (again)?        → check for a deadlock (deadlock.rs):
//!                                                 cycle through us → we left the queue, 40P01
//!     futex_wait(wait_status, WAITING, ≤ INTERRUPT_CHECK_INTERVAL)
//! ```
//!
//! # Invariants
//!
//! 1. No lost wake-up: the futex sleeps only while the word still reads
//!    `WAITING`, and every grant changes it before waking.
//! 2. Leaving the queue happens under the partition lock, after checking
//!    the word there: a request granted meanwhile is kept (the lock is
//!    held), never half-removed.
//! 3. The deadlock check runs `deadlock_timeout` after the wait began and
//!    again every `deadlock_timeout` while it lasts; PostgreSQL checks once,
//!    the repeat costs one pass over the wait graph per second and covers
//!    cycles closed by edges that appear without a new wait.
//!
//! # Crash safety
//!
//! A waiter whose holder dies waits until the crash cycle's SIGQUIT ends it
//! with everyone else; the segment is then rebuilt.

use super::deadlock::{check_for_deadlock, DeadlockCheck};
use super::manager::LockManager;
use super::shared::{LockTable, GRANTED, NOT_WAITING, WAITING};
use super::{lock_timeout_error, INTERRUPT_CHECK_INTERVAL};
use pgerror::{PgError, PgResult};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// How a wait ended.
pub(crate) enum WaitEnd {
    Granted,
    /// Granted, but an interrupt arrived at the same time: the lock is held
    /// and the error is passed on.
    GrantedButFailed(PgError),
    /// Not granted; the request left the queue (and its proclock was freed
    /// if it held nothing).
    Failed {
        error: PgError,
        pl_freed: bool,
    },
}

/// What leaving the queue found.
enum Leave {
    WasGranted,
    Left { pl_freed: bool },
}

impl LockManager<'_> {
    /// Sleeps until the request this process just queued is granted, an
    /// interrupt or timeout ends it, or it is found in a deadlock.
    pub(crate) fn wait_for_grant(
        &mut self,
        hash: u32,
        interrupts: &mut dyn FnMut() -> PgResult<()>,
    ) -> WaitEnd {
        let word = &self.table.procs[self.me as usize].wait_status;
        let started = Instant::now();
        let timeout_at = self.lock_timeout.map(|t| started + t);
        let mut deadlock_check_at = started + self.deadlock_timeout;
        loop {
            if word.load(SeqCst) == GRANTED {
                word.store(NOT_WAITING, SeqCst);
                return WaitEnd::Granted;
            }
            if let Err(error) = interrupts() {
                return match self.leave_queue(hash) {
                    Leave::WasGranted => WaitEnd::GrantedButFailed(error),
                    Leave::Left { pl_freed } => WaitEnd::Failed { error, pl_freed },
                };
            }
            let now = Instant::now();
            if timeout_at.is_some_and(|t| now >= t) {
                return match self.leave_queue(hash) {
                    Leave::WasGranted => WaitEnd::Granted,
                    Leave::Left { pl_freed } => WaitEnd::Failed {
                        error: lock_timeout_error(),
                        pl_freed,
                    },
                };
            }
            if now >= deadlock_check_at {
                match check_for_deadlock(&self.table, self.procs, self.me) {
                    DeadlockCheck::Granted => {
                        word.store(NOT_WAITING, SeqCst);
                        return WaitEnd::Granted;
                    }
                    DeadlockCheck::NoDeadlock => {
                        deadlock_check_at = Instant::now() + self.deadlock_timeout;
                    }
                    DeadlockCheck::Deadlock { error, pl_freed } => {
                        return WaitEnd::Failed { error, pl_freed };
                    }
                }
            }
            let mut until = now + INTERRUPT_CHECK_INTERVAL;
            until = until.min(deadlock_check_at);
            if let Some(t) = timeout_at {
                until = until.min(t);
            }
            futex_wait(word, WAITING, until.saturating_duration_since(now));
        }
    }

    /// Takes this process out of the wait queue it is in (PostgreSQL's
    /// `RemoveFromWaitQueue`), unless it was granted meanwhile, and grants
    /// the waiters behind it that it held back.
    fn leave_queue(&mut self, hash: u32) -> Leave {
        let t = &self.table;
        let st = &t.procs[self.me as usize];
        let mut wakes = Vec::new();
        let leave = {
            let _g = t.lock_partition(LockTable::partition_of(hash));
            if st.wait_status.load(SeqCst) == GRANTED {
                Leave::WasGranted
            } else {
                let lock = st.wait_lock.load(Relaxed);
                let pl = st.wait_proclock.load(Relaxed);
                t.dequeue(lock, self.me);
                st.wait_status.store(NOT_WAITING, SeqCst);
                t.grant_waiters(lock, &mut wakes);
                Leave::Left {
                    pl_freed: t.cleanup(lock, pl),
                }
            }
        };
        st.wait_status.store(NOT_WAITING, SeqCst);
        for p in wakes {
            t.wake(p);
        }
        leave
    }
}

/// Sleeps while `*word == expected`, at most `timeout`. Returns on a wake,
/// a changed value, the timeout, a signal or a spurious wake-up alike: the
/// caller re-checks.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call and
    // `ts` outlives it. FUTEX_WAIT (not _PRIVATE): the word is in memory
    // shared between processes. The kernel only reads the word; the result
    // is deliberately ignored (see above).
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wakes the process sleeping on `word` (its owner; nobody else sleeps on it).
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE only keys the wait
    // queue by its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
