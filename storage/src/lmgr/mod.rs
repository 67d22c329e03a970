//! The heavyweight lock manager (PostgreSQL's `lock.c`, `proc.c`'s lock
//! waits and `deadlock.c`): table-level locks in the eight modes of
//! PostgreSQL, transaction-id locks for row-level waits, held until the end
//! of the transaction, with a FIFO wait queue per lock, `lock_timeout` and
//! deadlock detection.
//!
//! Run by every process that takes heavyweight locks: backends (and later
//! autovacuum workers), each through its own [`LockManager`]. The
//! postmaster only sizes the region ([`shmem_size_bytes`]) and initialises
//! it in every new segment ([`LockTable::init`]).
//!
//! # The life of a lock request
//!
//! 1. [`LockManager::lock_acquire`] looks in the process's local table: a
//!    mode already held is only counted again (PostgreSQL's `LOCALLOCK`).
//! 2. A weak relation mode (AccessShare, RowShare, RowExclusive) goes into a
//!    fast-path slot of the process's own proc entry, under its own LWLock,
//!    when no strong lock on the relation is held or awaited
//!    (`fastpath.rs`). This is the path of every SELECT, INSERT, UPDATE and
//!    DELETE.
//! 3. Otherwise the tag's hash picks one of 16 partitions; under its LWLock
//!    the request finds or creates the lock entry and its proclock, and is
//!    granted or queued by the rules below (`manager.rs`, `shared.rs`). A
//!    strong relation mode first moves every process's fast-path locks on
//!    the relation into the table.
//! 4. A queued request sleeps on its proc's futex word until a releaser
//!    grants it, polling interrupts, `lock_timeout` and, after
//!    `deadlock_timeout`, the waits-for graph (`wait.rs`, `deadlock.rs`).
//! 5. At commit or abort, [`LockManager::lock_release_all`] releases
//!    everything and wakes the waiters it unblocks.
//!
//! # Queue rules
//!
//! * **Q1.** A request is granted at once iff its mode conflicts neither
//!   with a mode granted to *another* process (a process never conflicts
//!   with itself) nor with any mode some process is queued for. Otherwise
//!   it queues at the back: a stream of weak requests cannot starve a
//!   queued strong one.
//! * **Q2.** Exception: a requester that already holds a mode of this lock
//!   that a queued process waits for goes ahead of the first such process,
//!   since waiting behind it would be a deadlock by queue order. It is
//!   granted at once if it conflicts with nothing granted to others nor with
//!   any waiter ahead of that point, else queued just before that process.
//!   (PostgreSQL's `ProcSleep`. PostgreSQL also reports at once the case
//!   where that process holds something conflicting with the request; we
//!   queue and let the deadlock check find the cycle after
//!   `deadlock_timeout`.)
//! * **Q3.** After a release or a waiter leaving, the queue is walked in
//!   order and every waiter is granted whose mode conflicts neither with
//!   what others hold nor with a waiter still ahead of it
//!   (`ProcLockWakeup`). Compatible waiters behind a blocked one stay put.
//!
//! # Rules for callers
//!
//! 1. Take a relation's lock before reading its pages or catalog rows, and
//!    keep it until the transaction ends (`lock_release_all` at commit and
//!    abort); release earlier only what PostgreSQL releases earlier.
//! 2. **Never wait for a heavyweight lock while holding a buffer content
//!    lock, a pin you could not give up, an LWLock or a spinlock**: the
//!    holder you wait for may need them to finish, and heavyweight waits
//!    last up to the end of another transaction. Heavyweight locks come
//!    before every LWLock in the lock order.
//! 3. A process releases all its locks before it gives up its proc entry
//!    (dropping its [`LockManager`] does it).
//! 4. An error from `lock_acquire` aborts the transaction; the abort's
//!    `lock_release_all` releases whatever the process holds.
//!
//! # Locking (inside the lock manager)
//!
//! Partition LWLocks (tranche [`LOCK_MANAGER_TRANCHE`]) in increasing index
//! order, the deadlock checker taking all 16; then at most one proc's
//! fast-path LWLock ([`LOCK_FASTPATH_TRANCHE`]), taken either alone or
//! under one partition lock, never the reverse; then the free-list
//! spinlocks. Wake-ups (futex) happen after the partition lock is released.
//!
//! # Crash safety
//!
//! Nothing is on disk. A process that dies holding heavyweight locks is a
//! crash: the postmaster stops every child and builds a new segment, whose
//! lock table `init` leaves empty. Prepared transactions, whose locks
//! would have to survive, do not exist yet.
//!
//! # Files
//!
//! ```text
//! tag.rs        LockTag, LockMode, the conflict table, PostgreSQL's names
//! shared.rs     the region: partitions, hash table, entries, queues, grants
//! fastpath.rs   per-proc fast-path slots, strong-lock counters, transfer
//! manager.rs    LockManager: local table, acquire, release, release all
//! wait.rs       sleeping until granted, timeouts, leaving the queue
//! deadlock.rs   the waits-for graph and the deadlock report
//! ```

mod deadlock;
mod fastpath;
mod manager;
mod shared;
mod tag;
mod wait;

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod tests;

pub use manager::{LockManager, DEFAULT_DEADLOCK_TIMEOUT};
pub use shared::{
    LockStatus, LockTable, LockTableSize, FP_LOCK_SLOTS_PER_BACKEND, LOCK_FASTPATH_TRANCHE,
    LOCK_MANAGER_TRANCHE, NUM_LOCK_PARTITIONS,
};
pub use tag::{LockMask, LockMode, LockTag};

use pgerror::{PgError, SqlState};
use std::time::Duration;

/// Longest sleep of a lock wait between two calls of its `interrupts`.
pub const INTERRUPT_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Whether [`LockManager::lock_acquire`] may sleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockWait {
    Block,
    /// Return [`LockResult::NotAvailable`] instead (`NOWAIT`,
    /// conditional acquisition).
    NoWait,
}

/// How a successful [`LockManager::lock_acquire`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockResult {
    /// Newly acquired.
    Acquired,
    /// This process already held the mode; it now holds it once more.
    AlreadyHeld,
    /// [`LockWait::NoWait`] and the lock is not free; nothing is held.
    NotAvailable,
}

/// Bytes of the lock table region for `num_procs` proc entries.
pub fn shmem_size_bytes(num_procs: usize, max_locks_per_transaction: u32) -> usize {
    LockTableSize::new(num_procs, max_locks_per_transaction).bytes()
}

/// `53200 out of shared memory`, PostgreSQL's words when the lock table is full.
pub fn out_of_shared_memory() -> PgError {
    PgError::new(SqlState::OUT_OF_MEMORY, "out of shared memory")
        .with_hint("You might need to increase max_locks_per_transaction.")
}

/// `55P03`: a wait outlasted `lock_timeout`.
pub fn lock_timeout_error() -> PgError {
    PgError::new(
        SqlState::LOCK_NOT_AVAILABLE,
        "canceling statement due to lock timeout",
    )
}

/// `40P01` with the cycle, one "Process N waits for ..." line per edge.
pub fn deadlock_error(detail: String) -> PgError {
    PgError::new(SqlState::DEADLOCK_DETECTED, "deadlock detected")
        .with_detail(detail)
        .with_hint("See server log for query details.")
}
