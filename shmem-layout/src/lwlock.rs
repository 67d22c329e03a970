//! LWLock: the shared/exclusive lock of the shared segment.
//!
//! An [`LWLock`] ("lightweight lock", PostgreSQL's name) is taken in
//! [`LWLockMode::Shared`] by any number of processes at once, or in
//! [`LWLockMode::Exclusive`] by one. It protects larger structures than a
//! [`SpinLock`](crate::spinlock::SpinLock) may (the proc array, a buffer
//! mapping partition, a buffer's page contents) and its holder may do I/O and
//! system calls. Every process type that attaches the segment may take one; the
//! postmaster never does.
//!
//! The whole lock is one 32-bit state word that processes change with
//! compare-and-swap, plus a diagnostic tranche id. Waiters sleep in the kernel
//! with `FUTEX_WAIT_BITSET` on the state word itself, as process-shared futexes
//! (the kernel keys them by the shared page, not by the address, so each process
//! may map the segment anywhere). The bitset says what a sleeper waits for, so a
//! release wakes only the sleepers that can proceed:
//!
//! ```text
//!  bit 31      30          29         28       27..14          13..0
//! ┌────────┬───────────┬──────────┬─────────┬───────────────┬───────────────┐
//! │ parity │ excl.     │ excl.    │ excl.   │ shared        │ shared        │
//! │        │ waiters   │ pending  │ held    │ waiters       │ holders       │
//! └────────┴───────────┴──────────┴─────────┴───────────────┴───────────────┘
//! ```
//!
//! * *shared holders*: processes holding the lock in shared mode.
//! * *exclusive held*: one process holds it exclusively.
//! * *exclusive pending*: one exclusive acquirer has claimed the next turn and
//!   waits for the shared holders to drain. New shared acquirers queue behind it.
//! * *shared waiters*: shared acquirers queued behind the exclusive holder or the
//!   pending one. They are already counted here, so the exclusive release admits
//!   exactly them: it moves this count into *shared holders* in the same CAS.
//! * *exclusive waiters*: further exclusive acquirers may be asleep, waiting for
//!   the exclusive turn to become free.
//! * *parity*: flips at every exclusive release. A queued shared acquirer
//!   remembers it and knows it has been admitted once it changes.
//!
//! # Fairness
//!
//! Phase-fair between the two modes, like Brandenburg and Anderson's phase-fair
//! reader-writer locks and Go's `sync.RWMutex`:
//!
//! * Once an exclusive acquirer is pending, no new shared holder gets in, so a
//!   stream of readers cannot starve a writer: it waits only for the shared
//!   holders that were in when it arrived.
//! * An exclusive release admits every shared acquirer that queued during the
//!   exclusive phase, all at once and before the next exclusive holder, so a
//!   stream of writers cannot starve readers either.
//! * Exclusive acquirers among themselves are not ordered: a release wakes one
//!   sleeping exclusive waiter, but a newcomer may take the turn first (as in
//!   PostgreSQL, which also lets newcomers barge). A woken waiter that loses goes
//!   back to sleep.
//!
//! # Invariants
//!
//! 1. *Exclusive held* and *exclusive pending* are never both set.
//! 2. *Exclusive held* implies zero shared holders.
//! 3. *Exclusive pending* implies at least one shared holder: the last shared
//!    holder to leave turns *pending* into *held* (a hand-off) and wakes the
//!    pending process, in one CAS and one wake.
//! 4. Shared waiters are only ever counted while *exclusive held* or
//!    *exclusive pending* is set; the exclusive release moves them all to
//!    shared holders and flips *parity*.
//! 5. *Parity* changes only at an exclusive release. An admitted shared waiter
//!    is counted as a holder, which keeps the next exclusive acquirer pending,
//!    so *parity* cannot flip back before that waiter has seen it flip.
//! 6. No lost wake-ups: a sleeper passes the state word it last saw to
//!    `FUTEX_WAIT`, which sleeps only if the word still holds that value; every
//!    transition a sleeper waits for changes the word and is followed by a wake
//!    with that sleeper's bitset. If *exclusive waiters* is clear while an
//!    exclusive acquirer sleeps, the release that cleared it has woken another
//!    one, which sets the flag again when it next takes the turn or sleeps.
//! 7. All-zero memory is a free lock with tranche [`LWLockTranche::UNASSIGNED`];
//!    [`LWLock::new`] and [`LWLock::init`] give the same free state with a
//!    tranche.
//!
//! # Locking
//!
//! 1. Hold an LWLock only through its [`LWLockGuard`]; dropping the guard
//!    releases the lock, also during unwinding (PostgreSQL's
//!    `LWLockReleaseAll` at error recovery).
//! 2. Never acquire an LWLock you already hold, in either mode: a second shared
//!    acquisition queues behind a pending exclusive acquirer that waits for
//!    your first one, a deadlock.
//! 3. Take several LWLocks only in the order of the lock-order table in this
//!    crate's README; there is no deadlock detection.
//! 4. A [`SpinLock`](crate::spinlock::SpinLock) may be taken while holding an
//!    LWLock; an LWLock must never be acquired while holding a spinlock.
//! 5. Waiting is not interruptible: a signal handler runs and the wait resumes.
//!    Handlers that must end the process (SIGQUIT, SIGKILL) end it from inside
//!    the wait.
//!
//! # Crash safety
//!
//! A process that dies holding an LWLock, or queued for one, leaves the state
//! word saying so: the lock stays held (or the count stays wrong) forever, and
//! every later acquirer sleeps. Nothing here repairs that. The postmaster treats
//! the death as a crash, stops every child (their futex waits end with the
//! signal) and re-initializes the whole segment, which calls [`LWLock::init`]
//! on every lock (or zero-fills the memory).

use linux_futex::{Futex, Shared};
use std::sync::atomic::{AtomicU32, Ordering};

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LWLockMode {
    /// Any number of holders at once; excludes exclusive holders.
    Shared,
    /// One holder; excludes everyone else.
    Exclusive,
}

/// What a lock protects, for diagnostics: error messages, wait events and the
/// lock-order table in this crate's README. PostgreSQL calls this a tranche.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct LWLockTranche(pub u16);

impl LWLockTranche {
    /// The tranche of a zero-filled lock nobody has named.
    pub const UNASSIGNED: LWLockTranche = LWLockTranche(0);
}

/// Most processes that may hold one lock in shared mode at once, and most that
/// may queue for it in shared mode. The process count of a cluster
/// (connections plus workers plus auxiliary processes) must stay below it.
pub const MAX_SHARED_HOLDERS: u32 = COUNT_MASK;

/// A shared/exclusive lock that lives in shared memory.
///
/// Valid when zero-filled; see the module documentation for the rules of use.
#[repr(C)]
pub struct LWLock {
    /// The packed [`State`]; also the futex every waiter sleeps on.
    state: Futex<Shared>,
    /// A [`LWLockTranche`] in the low 16 bits. Written only by `new`/`init`.
    tranche: AtomicU32,
}

const _: () = {
    assert!(std::mem::size_of::<LWLock>() == 8);
    assert!(std::mem::align_of::<LWLock>() == 4);
};

/// An [`LWLock`] alone on its cache lines, for arrays of independently used
/// locks (PostgreSQL's `LWLockPadded`): 128 bytes, because adjacent-line
/// prefetch makes pairs of 64-byte lines behave as one.
#[repr(C, align(128))]
pub struct LWLockPadded {
    pub lock: LWLock,
}

const _: () = {
    assert!(std::mem::size_of::<LWLockPadded>() == 128);
    assert!(std::mem::align_of::<LWLockPadded>() == 128);
};

/// Holds an [`LWLock`] in one mode; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LWLockGuard<'a> {
    lock: &'a LWLock,
    mode: LWLockMode,
}

const COUNT_BITS: u32 = 14;
const COUNT_MASK: u32 = (1 << COUNT_BITS) - 1;
const ONE_SHARED_HOLDER: u32 = 1;
const ONE_SHARED_WAITER: u32 = 1 << COUNT_BITS;
const EXCLUSIVE: u32 = 1 << 28;
const EXCLUSIVE_PENDING: u32 = 1 << 29;
const EXCLUSIVE_WAITERS: u32 = 1 << 30;
const PARITY: u32 = 1 << 31;
/// Either exclusive flag: the exclusive turn is taken.
const EXCLUSIVE_TURN: u32 = EXCLUSIVE | EXCLUSIVE_PENDING;

/// Futex bitsets: who a sleeper is, so that a release wakes only the right ones.
const WAKE_SHARED_WAITERS: u32 = 1 << 0;
const WAKE_PENDING_EXCLUSIVE: u32 = 1 << 1;
const WAKE_EXCLUSIVE_WAITERS: u32 = 1 << 2;

/// A decoded view of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
struct State(u32);

impl State {
    fn shared_holders(self) -> u32 {
        self.0 & COUNT_MASK
    }
    fn shared_waiters(self) -> u32 {
        (self.0 >> COUNT_BITS) & COUNT_MASK
    }
    fn has(self, flags: u32) -> bool {
        self.0 & flags != 0
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("shared_holders", &self.shared_holders())
            .field("shared_waiters", &self.shared_waiters())
            .field("exclusive", &self.has(EXCLUSIVE))
            .field("exclusive_pending", &self.has(EXCLUSIVE_PENDING))
            .field("exclusive_waiters", &self.has(EXCLUSIVE_WAITERS))
            .field("parity", &self.has(PARITY))
            .finish()
    }
}

impl LWLock {
    /// A free lock of `tranche` (the same state as zero-filled memory, apart
    /// from the tranche).
    pub const fn new(tranche: LWLockTranche) -> Self {
        Self {
            state: Futex::new(0),
            tranche: AtomicU32::new(tranche.0 as u32),
        }
    }

    /// Reset to free and name the tranche, in place.
    ///
    /// Only for segment initialization and the crash cycle's re-initialization,
    /// when no process can be using the lock: it forgets holders and waiters.
    pub fn init(&self, tranche: LWLockTranche) {
        self.tranche.store(u32::from(tranche.0), Ordering::Relaxed);
        self.state.value.store(0, Ordering::Release);
    }

    /// What this lock protects.
    pub fn tranche(&self) -> LWLockTranche {
        LWLockTranche(self.tranche.load(Ordering::Relaxed) as u16)
    }

    /// Acquire in `mode`, sleeping as long as necessary.
    pub fn acquire(&self, mode: LWLockMode) -> LWLockGuard<'_> {
        match mode {
            LWLockMode::Shared => self.acquire_shared(),
            LWLockMode::Exclusive => self.acquire_exclusive(),
        }
    }

    /// Acquire in shared mode, sleeping while the exclusive turn is taken.
    pub fn acquire_shared(&self) -> LWLockGuard<'_> {
        let mut cur = self.load();
        loop {
            let (new, queued) = if cur.has(EXCLUSIVE_TURN) {
                self.check_count(cur.shared_waiters(), "shared waiters");
                (cur.0 + ONE_SHARED_WAITER, true)
            } else {
                self.check_count(cur.shared_holders(), "shared holders");
                (cur.0 + ONE_SHARED_HOLDER, false)
            };
            match self.cas(cur, new) {
                Ok(()) if queued => {
                    self.wait_until_admitted(cur.0 & PARITY);
                    break;
                }
                Ok(()) => break,
                Err(actual) => cur = actual,
            }
        }
        LWLockGuard {
            lock: self,
            mode: LWLockMode::Shared,
        }
    }

    /// Acquire in exclusive mode, sleeping while anyone else holds the lock.
    pub fn acquire_exclusive(&self) -> LWLockGuard<'_> {
        // Whether we have slept as an exclusive waiter: others may still be
        // asleep, so we must leave EXCLUSIVE_WAITERS set for our release to see.
        let mut slept = false;
        let mut cur = self.load();
        loop {
            if !cur.has(EXCLUSIVE_TURN) {
                let waiters = if slept { EXCLUSIVE_WAITERS } else { 0 };
                if cur.shared_holders() == 0 {
                    match self.cas(cur, cur.0 | EXCLUSIVE | waiters) {
                        Ok(()) => break,
                        Err(actual) => cur = actual,
                    }
                } else {
                    match self.cas(cur, cur.0 | EXCLUSIVE_PENDING | waiters) {
                        Ok(()) => {
                            self.wait_for_hand_off();
                            break;
                        }
                        Err(actual) => cur = actual,
                    }
                }
                continue;
            }
            // Another exclusive acquirer has the turn: sleep until it releases.
            if !cur.has(EXCLUSIVE_WAITERS) {
                if let Err(actual) = self.cas(cur, cur.0 | EXCLUSIVE_WAITERS) {
                    cur = actual;
                    continue;
                }
                cur = State(cur.0 | EXCLUSIVE_WAITERS);
            }
            self.sleep(cur, WAKE_EXCLUSIVE_WAITERS);
            slept = true;
            cur = self.load();
        }
        LWLockGuard {
            lock: self,
            mode: LWLockMode::Exclusive,
        }
    }

    /// Acquire in `mode` if that is possible without waiting.
    ///
    /// Shared mode fails while the exclusive turn is taken (held or pending);
    /// exclusive mode fails while anyone holds the lock or has the turn.
    pub fn try_acquire(&self, mode: LWLockMode) -> Option<LWLockGuard<'_>> {
        let mut cur = self.load();
        loop {
            if cur.has(EXCLUSIVE_TURN) {
                return None;
            }
            let new = match mode {
                LWLockMode::Shared => {
                    self.check_count(cur.shared_holders(), "shared holders");
                    cur.0 + ONE_SHARED_HOLDER
                }
                LWLockMode::Exclusive if cur.shared_holders() == 0 => cur.0 | EXCLUSIVE,
                LWLockMode::Exclusive => return None,
            };
            match self.cas(cur, new) {
                Ok(()) => return Some(LWLockGuard { lock: self, mode }),
                Err(actual) => cur = actual,
            }
        }
    }

    /// Whether any process holds the lock at this instant: one exclusively, or
    /// at least one in shared mode (queued acquirers do not count).
    /// For assertions and diagnostics: the answer may be stale at once.
    pub fn held_by_anyone(&self) -> bool {
        let cur = self.load();
        cur.has(EXCLUSIVE) || cur.shared_holders() > 0
    }

    /// Whether some process holds the lock in exclusive mode at this instant.
    /// For assertions and diagnostics.
    pub fn held_exclusively(&self) -> bool {
        self.load().has(EXCLUSIVE)
    }

    /// Whether processes are, or may be, waiting for the lock: queued shared
    /// acquirers, a pending exclusive acquirer, or sleeping exclusive ones.
    /// For diagnostics; may say yes shortly after the last waiter got the lock.
    pub fn waiters_present(&self) -> bool {
        let cur = self.load();
        cur.shared_waiters() > 0 || cur.has(EXCLUSIVE_PENDING | EXCLUSIVE_WAITERS)
    }

    fn load(&self) -> State {
        State(self.state.value.load(Ordering::Acquire))
    }

    /// One attempt to move the state from `cur` to `new`. Acquire-release on
    /// success, so a process taking the lock sees every write made under it by
    /// earlier holders, through the chain of read-modify-writes on this word.
    fn cas(&self, cur: State, new: u32) -> Result<(), State> {
        self.state
            .value
            .compare_exchange_weak(cur.0, new, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(State)
    }

    fn check_count(&self, count: u32, what: &str) {
        assert!(
            count < MAX_SHARED_HOLDERS,
            "LWLock of tranche {} has {count} {what}, the most it can count",
            self.tranche().0
        );
    }

    /// Sleep on the state word as long as it still reads `seen`; returns on a
    /// wake-up, when the word has already changed (EAGAIN), or when a signal
    /// handler ran (EINTR). Callers re-read the state and decide again.
    fn sleep(&self, seen: State, bitset: u32) {
        // Both errors just mean "look again"; the crate panics on anything else
        // (EFAULT, EINVAL), which would be a bug here.
        let _ = self.state.wait_bitset(seen.0, bitset);
    }

    /// A queued shared acquirer: wait until an exclusive release has counted us
    /// among the shared holders, which it signals by flipping the parity.
    fn wait_until_admitted(&self, parity_when_queued: u32) {
        loop {
            let cur = self.load();
            if cur.0 & PARITY != parity_when_queued {
                return;
            }
            self.sleep(cur, WAKE_SHARED_WAITERS);
        }
    }

    /// The pending exclusive acquirer: wait until the last shared holder turns
    /// the pending flag into the held flag for us.
    fn wait_for_hand_off(&self) {
        loop {
            let cur = self.load();
            if cur.has(EXCLUSIVE) {
                return;
            }
            debug_assert!(cur.has(EXCLUSIVE_PENDING), "pending flag lost: {cur:?}");
            self.sleep(cur, WAKE_PENDING_EXCLUSIVE);
        }
    }

    fn release_shared(&self) {
        let mut cur = self.load();
        loop {
            assert!(
                cur.shared_holders() > 0 && !cur.has(EXCLUSIVE),
                "LWLock of tranche {} released in shared mode but not held so: {cur:?}",
                self.tranche().0
            );
            let mut new = cur.0 - ONE_SHARED_HOLDER;
            let hand_off = State(new).shared_holders() == 0 && cur.has(EXCLUSIVE_PENDING);
            if hand_off {
                new = (new & !EXCLUSIVE_PENDING) | EXCLUSIVE;
            }
            match self.cas(cur, new) {
                Ok(()) => {
                    if hand_off {
                        self.state.wake_bitset(1, WAKE_PENDING_EXCLUSIVE);
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn release_exclusive(&self) {
        let mut cur = self.load();
        loop {
            assert!(
                cur.has(EXCLUSIVE),
                "LWLock of tranche {} released in exclusive mode but not held so: {cur:?}",
                self.tranche().0
            );
            // Admit every queued shared acquirer as a holder, flip the parity
            // so they notice, and give up the exclusive turn.
            let admitted = cur.shared_waiters();
            let new = ((cur.0 & PARITY) ^ PARITY) | admitted;
            match self.cas(cur, new) {
                Ok(()) => {
                    if admitted > 0 {
                        self.state.wake_bitset(i32::MAX, WAKE_SHARED_WAITERS);
                    }
                    if cur.has(EXCLUSIVE_WAITERS) {
                        self.state.wake_bitset(1, WAKE_EXCLUSIVE_WAITERS);
                    }
                    return;
                }
                Err(actual) => cur = actual,
            }
        }
    }
}

impl std::fmt::Debug for LWLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LWLock")
            .field("tranche", &self.tranche().0)
            .field("state", &self.load())
            .finish()
    }
}

impl LWLockGuard<'_> {
    /// The mode this guard holds its lock in.
    pub fn mode(&self) -> LWLockMode {
        self.mode
    }
}

impl Drop for LWLockGuard<'_> {
    fn drop(&mut self) {
        match self.mode {
            LWLockMode::Shared => self.lock.release_shared(),
            LWLockMode::Exclusive => self.lock.release_exclusive(),
        }
    }
}

impl std::fmt::Debug for LWLockGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LWLockGuard")
            .field("tranche", &self.lock.tranche().0)
            .field("mode", &self.mode)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    const TRANCHE: LWLockTranche = LWLockTranche(7);

    /// Poll `cond` until it holds; the test fails after ten seconds.
    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    struct Pair {
        lock: LWLock,
        /// Both protected by `lock`; always equal outside exclusive sections.
        a: UnsafeCell<u64>,
        b: UnsafeCell<u64>,
    }
    // SAFETY: `a` and `b` are only touched under `lock` in the mode it allows.
    unsafe impl Sync for Pair {}

    #[test]
    fn zero_filled_memory_is_a_free_lock() {
        // SAFETY: an LWLock is two AtomicU32s, for which all-zero is valid.
        let lock: LWLock = unsafe { std::mem::zeroed() };
        assert_eq!(lock.tranche(), LWLockTranche::UNASSIGNED);
        assert!(!lock.held_by_anyone());
        assert!(lock.try_acquire(LWLockMode::Exclusive).is_some());
        assert!(!lock.held_by_anyone());
    }

    #[test]
    fn init_frees_a_lock_and_names_its_tranche() {
        let lock = LWLock::new(LWLockTranche::UNASSIGNED);
        std::mem::forget(lock.acquire_exclusive());
        assert!(lock.held_exclusively());
        lock.init(TRANCHE);
        assert!(!lock.held_by_anyone());
        assert_eq!(lock.tranche(), TRANCHE);
    }

    #[test]
    fn shared_holders_coexist_and_exclude_exclusive() {
        let lock = LWLock::new(TRANCHE);
        let first = lock.acquire_shared();
        let second = lock
            .try_acquire(LWLockMode::Shared)
            .expect("shared is shared");
        assert_eq!(second.mode(), LWLockMode::Shared);
        assert!(lock.held_by_anyone() && !lock.held_exclusively());
        assert!(lock.try_acquire(LWLockMode::Exclusive).is_none());
        drop(first);
        assert!(lock.try_acquire(LWLockMode::Exclusive).is_none());
        drop(second);
        let exclusive = lock.try_acquire(LWLockMode::Exclusive).expect("now free");
        assert!(lock.held_exclusively());
        assert!(lock.try_acquire(LWLockMode::Shared).is_none());
        assert!(lock.try_acquire(LWLockMode::Exclusive).is_none());
        drop(exclusive);
        assert!(!lock.held_by_anyone());
    }

    #[test]
    fn a_pending_exclusive_acquirer_keeps_new_shared_holders_out() {
        let lock = Arc::new(LWLock::new(TRANCHE));
        let reader = lock.acquire_shared();
        let writer = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                let guard = lock.acquire_exclusive();
                assert!(lock.held_exclusively());
                drop(guard);
            })
        };
        wait_until("the writer is pending", || {
            lock.load().has(EXCLUSIVE_PENDING)
        });
        assert!(
            lock.try_acquire(LWLockMode::Shared).is_none(),
            "writer first"
        );
        drop(reader);
        writer.join().unwrap();
        assert!(!lock.held_by_anyone() && !lock.waiters_present());
    }

    #[test]
    fn readers_queued_behind_a_writer_go_before_the_next_writer() {
        let lock = Arc::new(LWLock::new(TRANCHE));
        let writer_done = Arc::new(AtomicBool::new(false));
        let first_writer = lock.acquire_exclusive();

        let (admitted_tx, admitted_rx) = mpsc::channel();
        let (leave_tx, leave_rx) = mpsc::channel::<()>();
        let leave_rx = Arc::new(std::sync::Mutex::new(leave_rx));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (lock, admitted_tx, leave_rx) = (
                    Arc::clone(&lock),
                    admitted_tx.clone(),
                    Arc::clone(&leave_rx),
                );
                std::thread::spawn(move || {
                    let _guard = lock.acquire_shared();
                    admitted_tx.send(()).unwrap();
                    leave_rx.lock().unwrap().recv().unwrap();
                })
            })
            .collect();
        wait_until("both readers queued", || lock.load().shared_waiters() == 2);

        let second_writer = {
            let (lock, writer_done) = (Arc::clone(&lock), Arc::clone(&writer_done));
            std::thread::spawn(move || {
                let _guard = lock.acquire_exclusive();
                writer_done.store(true, Ordering::SeqCst);
            })
        };
        wait_until("the second writer sleeps", || {
            lock.load().has(EXCLUSIVE_WAITERS)
        });

        drop(first_writer);
        admitted_rx.recv().unwrap();
        admitted_rx.recv().unwrap();
        assert_eq!(lock.load().shared_holders(), 2);
        wait_until("the second writer is pending", || {
            lock.load().has(EXCLUSIVE_PENDING)
        });
        assert!(!writer_done.load(Ordering::SeqCst));
        leave_tx.send(()).unwrap();
        leave_tx.send(()).unwrap();
        for reader in readers {
            reader.join().unwrap();
        }
        second_writer.join().unwrap();
        assert!(writer_done.load(Ordering::SeqCst));
        assert!(!lock.held_by_anyone());
    }

    #[test]
    fn a_sleeping_exclusive_waiter_is_woken_by_the_release() {
        let lock = Arc::new(LWLock::new(TRANCHE));
        let holder = lock.acquire_exclusive();
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || drop(lock.acquire_exclusive()))
        };
        wait_until("the waiter sleeps", || lock.waiters_present());
        drop(holder);
        waiter.join().unwrap();
        assert!(!lock.held_by_anyone());
    }

    #[test]
    fn mixed_threads_never_see_a_torn_pair() {
        const WRITERS: usize = 2;
        const READERS: usize = 3;
        const ROUNDS: u64 = 5_000;
        let shared = Arc::new(Pair {
            lock: LWLock::new(TRANCHE),
            a: UnsafeCell::new(0),
            b: UnsafeCell::new(0),
        });
        let torn = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for _ in 0..WRITERS {
            let shared = Arc::clone(&shared);
            threads.push(std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let _guard = shared.lock.acquire_exclusive();
                    // SAFETY: exclusive mode is held.
                    unsafe {
                        *shared.a.get() += 1;
                        std::hint::spin_loop();
                        *shared.b.get() += 1;
                    }
                }
            }));
        }
        for _ in 0..READERS {
            let (shared, torn) = (Arc::clone(&shared), Arc::clone(&torn));
            threads.push(std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let _guard = shared.lock.acquire(LWLockMode::Shared);
                    // SAFETY: shared mode is held; writers are excluded.
                    let (a, b) = unsafe { (*shared.a.get(), *shared.b.get()) };
                    if a != b {
                        torn.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(torn.load(Ordering::Relaxed), 0);
        let guard = shared.lock.acquire_shared();
        // SAFETY: shared mode is held.
        let (a, b) = unsafe { (*shared.a.get(), *shared.b.get()) };
        assert_eq!((a, b), (WRITERS as u64 * ROUNDS, WRITERS as u64 * ROUNDS));
        drop(guard);
        assert!(!shared.lock.held_by_anyone());
        assert!(!shared.lock.load().has(EXCLUSIVE_PENDING));
        assert_eq!(shared.lock.load().shared_waiters(), 0);
    }

    #[test]
    #[should_panic(expected = "released in exclusive mode but not held so")]
    fn releasing_a_lock_not_held_is_a_bug() {
        let lock = LWLock::new(TRANCHE);
        lock.release_exclusive();
    }
}
