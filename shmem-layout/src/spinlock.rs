//! Spinlock: the smallest lock in the shared segment.
//!
//! A [`SpinLock`] is one 32-bit word in shared memory. It protects a handful of
//! neighbouring fields for a few instructions (a counter, a flag, a buffer header),
//! in the way PostgreSQL's `slock_t` does. Every process type that attaches the
//! segment may take one; the postmaster never does (it does not touch shared data).
//!
//! Acquisition is test-and-test-and-set, with the backoff of PostgreSQL's
//! `s_lock.c`:
//!
//! ```text
//!   try CAS 0 -> 1 ──ok──> held
//!        │ fail
//!        v
//!   spin: read the word until it looks free (spin_loop hint), then CAS again
//!        │ SPINS_PER_DELAY failed rounds
//!        v
//!   sleep cur_delay (1 ms, growing by a random factor up to 1 s, then back to 1 ms)
//!        │ more than STUCK_SPINLOCK_TIMEOUT in total
//!        v
//!   log "stuck spinlock detected at file:line" and abort the process
//! ```
//!
//! A spinlock that stays held for a minute means its holder died or shared memory
//! is corrupt. Aborting (SIGABRT) makes the postmaster see a crash, kill every child
//! and re-initialize the segment, which is the only way to recover.
//!
//! # Invariants
//!
//! 1. The word is `0` (free) or `1` (held); nothing else is ever stored.
//! 2. All-zero memory is a free spinlock, so a zero-filled segment needs no
//!    initialization; [`SpinLock::init`] and [`SpinLock::new`] give the same state.
//! 3. Only the process that acquired a spinlock releases it, by dropping its
//!    [`SpinLockGuard`]. There is no owner field: the lock does not know who holds it.
//!
//! # Locking
//!
//! 1. Hold a spinlock only for a few instructions: load and store the fields it
//!    protects, then release. Never across a system call, an allocation, a log
//!    line, a panic-prone operation, or the acquisition of any other lock
//!    (including another spinlock or an [`LWLock`](crate::lwlock::LWLock)).
//! 2. Spinlocks do not nest and are not reentrant: acquiring one you already hold
//!    spins until the stuck-spinlock abort.
//! 3. Each spinlock protects the fields its struct's documentation names; those
//!    fields are read and written only while it is held.
//!
//! # Crash safety
//!
//! A process that dies while holding a spinlock leaves it held forever: nothing
//! releases it. Every other process that then tries to acquire it aborts after
//! [`STUCK_SPINLOCK_TIMEOUT`]. Before that, the postmaster has normally already seen
//! the death as a crash; its crash cycle stops every child and re-initializes the
//! whole segment, which calls [`SpinLock::init`] on every spinlock (or zero-fills
//! the memory). A panic inside a spinlock section is a bug; the guard still
//! releases the lock during unwinding.

use std::panic::Location;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const FREE: u32 = 0;
const HELD: u32 = 1;

/// Failed test-and-set rounds before the first sleep (PostgreSQL's default
/// `spins_per_delay`; PostgreSQL adapts it between 10 and 1000, we do not).
pub const SPINS_PER_DELAY: u32 = 100;

/// First sleep after spinning failed (PostgreSQL's `MIN_DELAY_USEC`).
pub const MIN_SPIN_DELAY: Duration = Duration::from_millis(1);

/// Longest single sleep; past it the delay wraps back to [`MIN_SPIN_DELAY`]
/// (PostgreSQL's `MAX_DELAY_USEC`).
pub const MAX_SPIN_DELAY: Duration = Duration::from_secs(1);

/// How long a process waits for one spinlock before declaring it stuck and
/// aborting. PostgreSQL's limit (1000 delays) comes to one or two minutes.
pub const STUCK_SPINLOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// A test-and-test-and-set spinlock that lives in shared memory.
///
/// Valid when zero-filled; see the module documentation for the rules of use.
#[repr(C)]
pub struct SpinLock {
    /// `FREE` or `HELD`.
    state: AtomicU32,
}

const _: () = {
    assert!(std::mem::size_of::<SpinLock>() == 4);
    assert!(std::mem::align_of::<SpinLock>() == 4);
};

/// Holds a [`SpinLock`]; releases it when dropped.
#[must_use = "the spinlock is released as soon as the guard is dropped"]
pub struct SpinLockGuard<'a> {
    lock: &'a SpinLock,
}

/// The slow path gave up: the lock stayed held for longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stuck {
    waited: Duration,
}

impl SpinLock {
    /// A free spinlock (the same state as zero-filled memory).
    pub const fn new() -> Self {
        Self {
            state: AtomicU32::new(FREE),
        }
    }

    /// Reset to free, in place.
    ///
    /// Only for segment initialization and the crash cycle's re-initialization,
    /// when no process can be using the lock: it forgets any holder.
    pub fn init(&self) {
        self.state.store(FREE, Ordering::Release);
    }

    /// Acquire the spinlock, spinning and then sleeping while it is held.
    ///
    /// Aborts the process (after logging the caller's location) if the lock
    /// stays held for [`STUCK_SPINLOCK_TIMEOUT`].
    #[track_caller]
    #[inline]
    pub fn acquire(&self) -> SpinLockGuard<'_> {
        if !self.try_set() {
            self.acquire_contended(Location::caller());
        }
        SpinLockGuard { lock: self }
    }

    /// Acquire the spinlock if it is free right now, without spinning.
    #[inline]
    pub fn try_acquire(&self) -> Option<SpinLockGuard<'_>> {
        self.try_set().then_some(SpinLockGuard { lock: self })
    }

    /// Whether some process holds the lock at this instant. For assertions and
    /// diagnostics only: the answer may be stale as soon as it is returned.
    pub fn held_by_anyone(&self) -> bool {
        self.state.load(Ordering::Relaxed) == HELD
    }

    #[inline]
    fn try_set(&self) -> bool {
        self.state
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    #[inline(never)]
    fn acquire_contended(&self, caller: &Location<'_>) {
        if let Err(stuck) = self.acquire_slow(STUCK_SPINLOCK_TIMEOUT) {
            log::error!(
                "stuck spinlock detected at {}:{} after waiting {:.1} s",
                caller.file(),
                caller.line(),
                stuck.waited.as_secs_f64()
            );
            std::process::abort();
        }
    }

    /// Spin, then sleep with growing delays, until the lock is ours or
    /// `stuck_after` has passed.
    fn acquire_slow(&self, stuck_after: Duration) -> Result<(), Stuck> {
        let started = Instant::now();
        let mut delay = Backoff::new(self);
        loop {
            for _ in 0..SPINS_PER_DELAY {
                // Test before test-and-set: spinning on a plain load keeps the
                // cache line shared instead of bouncing it between CPUs.
                if self.state.load(Ordering::Relaxed) == FREE && self.try_set() {
                    return Ok(());
                }
                std::hint::spin_loop();
            }
            let waited = started.elapsed();
            if waited >= stuck_after {
                return Err(Stuck { waited });
            }
            std::thread::sleep(delay.next().min(stuck_after - waited));
        }
    }
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SpinLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpinLock")
            .field("locked", &self.held_by_anyone())
            .finish()
    }
}

impl Drop for SpinLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.lock.state.store(FREE, Ordering::Release);
    }
}

impl std::fmt::Debug for SpinLockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinLockGuard")
    }
}

/// PostgreSQL's delay schedule: start at [`MIN_SPIN_DELAY`], grow by a random
/// factor in [1, 2) each time so that waiters drift apart instead of waking in
/// lockstep, and wrap back to the minimum once past [`MAX_SPIN_DELAY`].
struct Backoff {
    current: Duration,
    rng: u32,
}

impl Backoff {
    fn new(lock: &SpinLock) -> Self {
        // Any per-process, per-lock value will do; this is not security.
        let seed = std::process::id() ^ (lock as *const SpinLock as usize as u32);
        Self {
            current: MIN_SPIN_DELAY,
            rng: seed | 1,
        }
    }

    fn next(&mut self) -> Duration {
        let this = self.current;
        // xorshift32
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let fraction = f64::from(self.rng) / f64::from(u32::MAX);
        self.current = this.mul_f64(1.0 + fraction);
        if self.current > MAX_SPIN_DELAY {
            self.current = MIN_SPIN_DELAY;
        }
        this
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;
    use std::sync::Arc;

    struct Counted {
        lock: SpinLock,
        /// Protected by `lock`.
        value: UnsafeCell<u64>,
    }
    // SAFETY: `value` is only touched while `lock` is held.
    unsafe impl Sync for Counted {}

    #[test]
    fn zero_filled_memory_is_a_free_lock() {
        // SAFETY: a SpinLock is one AtomicU32, for which all-zero is valid.
        let lock: SpinLock = unsafe { std::mem::zeroed() };
        assert!(!lock.held_by_anyone());
        let guard = lock.try_acquire().expect("a zeroed spinlock is free");
        assert!(lock.held_by_anyone());
        drop(guard);
        assert!(!lock.held_by_anyone());
    }

    #[test]
    fn try_acquire_fails_while_held_and_succeeds_after_release() {
        let lock = SpinLock::new();
        let guard = lock.acquire();
        assert!(lock.try_acquire().is_none());
        drop(guard);
        assert!(lock.try_acquire().is_some());
    }

    #[test]
    fn init_frees_a_lock_whose_holder_vanished() {
        let lock = SpinLock::new();
        std::mem::forget(lock.acquire());
        assert!(lock.held_by_anyone());
        lock.init();
        assert!(!lock.held_by_anyone());
        assert!(lock.try_acquire().is_some());
    }

    #[test]
    fn a_lock_held_too_long_is_reported_stuck() {
        let lock = SpinLock::new();
        let _guard = lock.acquire();
        let limit = Duration::from_millis(30);
        let stuck = lock.acquire_slow(limit).expect_err("nobody releases it");
        assert!(stuck.waited >= limit);
    }

    #[test]
    fn slow_path_acquires_once_the_holder_releases() {
        let lock = Arc::new(SpinLock::new());
        let guard = lock.acquire();
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || lock.acquire_slow(Duration::from_secs(30)))
        };
        // Let the waiter get into its sleeping phase at least once.
        std::thread::sleep(Duration::from_millis(5));
        drop(guard);
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert!(
            lock.held_by_anyone(),
            "the waiter acquired and never released"
        );
    }

    #[test]
    fn threads_incrementing_under_the_lock_lose_no_updates() {
        const THREADS: u64 = 4;
        const PER_THREAD: u64 = 50_000;
        let shared = Arc::new(Counted {
            lock: SpinLock::new(),
            value: UnsafeCell::new(0),
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    for _ in 0..PER_THREAD {
                        let _guard = shared.lock.acquire();
                        // SAFETY: the lock is held.
                        unsafe { *shared.value.get() += 1 };
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let _guard = shared.lock.acquire();
        // SAFETY: the lock is held.
        assert_eq!(unsafe { *shared.value.get() }, THREADS * PER_THREAD);
    }

    #[test]
    fn backoff_grows_and_wraps_within_bounds() {
        let lock = SpinLock::new();
        let mut backoff = Backoff::new(&lock);
        let mut previous = backoff.next();
        assert_eq!(previous, MIN_SPIN_DELAY);
        let mut wrapped = false;
        for _ in 0..100 {
            let delay = backoff.next();
            assert!((MIN_SPIN_DELAY..=MAX_SPIN_DELAY).contains(&delay));
            if delay < previous {
                assert_eq!(delay, MIN_SPIN_DELAY);
                wrapped = true;
            }
            previous = delay;
        }
        assert!(wrapped, "delays wrap back to the minimum past the maximum");
    }
}
