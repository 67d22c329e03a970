//! Waiting until another transaction ends (PostgreSQL's
//! `XactLockTableWait`): a writer that finds a row being updated by a
//! running transaction blocks here, then looks at the row again.
//!
//! PostgreSQL makes every transaction hold a heavyweight lock on its own xid
//! and has waiters queue on it. There is no lock manager yet, so the wait is
//! built on the proc array: each proc entry has an [`XactEndSlot`] whose
//! `seq` its owner increments after every transaction with an xid ends;
//! waiters sleep on `seq` with a process-shared futex (the kernel keys it by
//! the shared page, so every process may map the segment anywhere).
//!
//! ```text
//!   ender (owner of procs[i])               waiter for xid X
//!   ─────────────────────────               ────────────────────────────────
//!   clog: X committed          (P2)         i = entry whose xid is X, or done
//!   ProcArrayLock excl:                     waiters[i] += 1
//!     procs[i].xid = 0         (P3)         s = seq[i]
//!   seq[i] += 1                             procs[i].xid still X? else done
//!   if waiters[i] > 0: futex_wake(seq[i])   futex_wait(seq[i], s, slice)
//!                                           waiters[i] -= 1; check interrupts; repeat
//! ```
//!
//! # Invariants
//!
//! 1. No lost wake-up (P8): every operation above is sequentially
//!    consistent. If the waiter saw `procs[i].xid == X`, its `waiters`
//!    increment precedes the ender's clearing of the xid, so the ender sees
//!    `waiters > 0` and wakes; the futex sleeps only while `seq` still holds
//!    the value read before the xid check.
//! 2. When [`Transam::wait_for_xid`] returns [`XactWait::Ended`], the xid is
//!    in no proc entry, so its final status is in the commit log (P2).
//! 3. An xid is never assigned twice, so once an entry holds another xid (or
//!    none), X has ended for good.
//!
//! # Locking
//!
//! No lock is taken; the caller must hold none either (in particular not
//! the buffer content lock of the row it waits for: release it, wait, lock
//! again and re-check). Never wait for your own xid: nobody would end it.
//!
//! Interrupts: a signal handler that returns lets the futex wait resume
//! (handlers are installed with SA_RESTART), so the wait sleeps at most
//! [`INTERRUPT_CHECK_INTERVAL`] at a time and calls `check_for_interrupts`
//! between sleeps; a cancel request or lock timeout is noticed within that.
//!
//! # Crash safety
//!
//! Nothing is on disk. A waiter whose awaited process dies is ended by the
//! crash cycle's SIGQUIT with everyone else.

use super::shared::{Transam, XactEndSlot};
use crate::types::Xid;
use pgerror::PgError;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Longest single sleep of a wait, between two interrupt checks.
pub const INTERRUPT_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// How [`Transam::wait_for_xid`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XactWait {
    /// The transaction is no longer running: look at its status and the row
    /// again.
    Ended,
    /// The timeout passed first (for lock_timeout or a deadlock check).
    TimedOut,
}

impl Transam<'_> {
    /// Blocks until `xid` is no longer running, `timeout` (if any) passes,
    /// or `check_for_interrupts` returns an error, which is passed on.
    /// `check_for_interrupts` is called before the first look and between
    /// sleeps.
    pub fn wait_for_xid(
        &self,
        xid: Xid,
        timeout: Option<Duration>,
        check_for_interrupts: &mut dyn FnMut() -> Result<(), PgError>,
    ) -> Result<XactWait, PgError> {
        self.wait_for_xid_checking_every(
            xid,
            timeout,
            INTERRUPT_CHECK_INTERVAL,
            check_for_interrupts,
        )
    }

    /// [`Transam::wait_for_xid`] with another interrupt-check interval
    /// (tests use a long one to show that the wake-up, not the interval,
    /// ends the wait).
    pub(super) fn wait_for_xid_checking_every(
        &self,
        xid: Xid,
        timeout: Option<Duration>,
        interval: Duration,
        check_for_interrupts: &mut dyn FnMut() -> Result<(), PgError>,
    ) -> Result<XactWait, PgError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            check_for_interrupts()?;
            let Some(i) = self.find_proc_running(xid) else {
                return Ok(XactWait::Ended);
            };
            let slot = &self.end_slots[i];
            slot.waiters.fetch_add(1, Ordering::SeqCst);
            let seen = slot.seq.load(Ordering::SeqCst);
            let still_running = self.procs[i].xid.load(Ordering::SeqCst) == xid.0;
            let mut timed_out = false;
            if still_running {
                let slice = match deadline {
                    None => interval,
                    Some(d) => d.saturating_duration_since(Instant::now()).min(interval),
                };
                if slice.is_zero() {
                    timed_out = true;
                } else {
                    futex::wait(&slot.seq, seen, slice);
                }
            }
            slot.waiters.fetch_sub(1, Ordering::SeqCst);
            if !still_running {
                return Ok(XactWait::Ended);
            }
            if timed_out {
                return Ok(XactWait::TimedOut);
            }
        }
    }

    /// The owner of entry `index` ended a transaction (P8).
    pub(super) fn wake_xact_waiters(&self, index: usize) {
        let slot: &XactEndSlot = &self.end_slots[index];
        slot.seq.fetch_add(1, Ordering::SeqCst);
        if slot.waiters.load(Ordering::SeqCst) != 0 {
            futex::wake_all(&slot.seq);
        }
    }

    /// Processes currently waiting on entry `index` (tests and diagnostics).
    pub fn xact_waiters(&self, index: usize) -> u32 {
        self.end_slots[index].waiters.load(Ordering::SeqCst)
    }
}

/// Process-shared futex calls on a word in shared memory.
mod futex {
    use super::*;

    /// Sleeps while `*word == expected`, at most `timeout`. Returns on a
    /// wake, a changed value, the timeout, a signal or a spurious wake-up
    /// alike: the caller re-checks its condition.
    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `word` is a live, aligned u32 for the duration of the call
        // and `ts` outlives it. FUTEX_WAIT (not _PRIVATE) because the word
        // is in memory shared between processes. The kernel only reads the
        // word; the result is deliberately ignored (see above).
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

    /// Wakes every process sleeping on `word`.
    pub(super) fn wake_all(word: &AtomicU32) {
        // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE does not access
        // user memory beyond keying the wait queue by its address.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transam::test_support::TestRegion;
    use pgerror::SqlState;
    use std::sync::Arc;

    fn no_interrupts() -> impl FnMut() -> Result<(), PgError> {
        || Ok(())
    }

    #[test]
    fn futex_wake_ends_a_long_sleep() {
        let word = Arc::new(AtomicU32::new(7));
        let sleeper = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                let started = Instant::now();
                while word.load(Ordering::SeqCst) == 7 {
                    futex::wait(&word, 7, Duration::from_secs(30));
                }
                started.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        word.store(8, Ordering::SeqCst);
        futex::wake_all(&word);
        assert!(sleeper.join().unwrap() < Duration::from_secs(10));
    }

    #[test]
    fn waiting_for_an_ended_or_unknown_xid_returns_at_once() {
        let r = TestRegion::new(2);
        let t = r.transam();
        let p = &t.procs()[0];
        let x = t.assign_xid(p);
        t.end_transaction(p, x);
        let mut ok = no_interrupts();
        assert_eq!(t.wait_for_xid(x, None, &mut ok), Ok(XactWait::Ended));
        assert_eq!(
            t.wait_for_xid(Xid(12345), None, &mut ok),
            Ok(XactWait::Ended)
        );
    }

    #[test]
    fn a_wait_times_out_while_the_xid_runs() {
        let r = TestRegion::new(2);
        let t = r.transam();
        let x = t.assign_xid(&t.procs()[0]);
        let started = Instant::now();
        let mut ok = no_interrupts();
        let got = t.wait_for_xid(x, Some(Duration::from_millis(60)), &mut ok);
        assert_eq!(got, Ok(XactWait::TimedOut));
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert_eq!(t.xact_waiters(0), 0, "the waiter deregistered");
    }

    #[test]
    fn an_interrupt_ends_the_wait_with_its_error() {
        let r = TestRegion::new(2);
        let t = r.transam();
        let x = t.assign_xid(&t.procs()[0]);
        let mut calls = 0;
        let mut cancel = || {
            calls += 1;
            if calls == 3 {
                Err(PgError::new(
                    SqlState::QUERY_CANCELED,
                    "canceling statement due to user request",
                ))
            } else {
                Ok(())
            }
        };
        let got = t.wait_for_xid(x, None, &mut cancel);
        assert_eq!(got.unwrap_err().code, SqlState::QUERY_CANCELED);
        assert_eq!(t.xact_waiters(0), 0);
    }

    #[test]
    fn waiters_in_other_threads_wake_promptly_when_the_xid_ends() {
        let r = Arc::new(TestRegion::new(3));
        let x = r.transam().assign_xid(&r.transam().procs()[0]);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let mut ok = || Ok(());
                    let long = Duration::from_secs(60);
                    let got = r
                        .transam()
                        .wait_for_xid_checking_every(x, None, long, &mut ok);
                    (got, Instant::now())
                })
            })
            .collect();
        let t = r.transam();
        while t.xact_waiters(0) < 2 {
            std::thread::yield_now();
        }
        let ended = Instant::now();
        t.end_transaction(&t.procs()[0], x);
        for w in waiters {
            let (got, woke) = w.join().unwrap();
            assert_eq!(got, Ok(XactWait::Ended));
            assert!(woke.duration_since(ended) < Duration::from_millis(100));
        }
    }
}
