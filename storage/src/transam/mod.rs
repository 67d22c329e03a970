//! Transactions: xid and oid assignment, the proc-array protocol, snapshots,
//! tuple visibility, waiting for another transaction, and the commit and
//! abort WAL records (PostgreSQL's `varsup.c`, `procarray.c`,
//! `heapam_visibility.c`, `lmgr.c`'s `XactLockTableWait` and `xact.c`'s
//! records, after `src/backend/access/transam/README`).
//!
//! Backends run all of it; the startup process replays commit and abort
//! records ([`xact_record`]) and moves the counters forward; the
//! checkpointer reads the counters for its checkpoint record.
//!
//! ```text
//!   shared memory (one region, `shmem_size_bytes(num_procs)` bytes)
//!   ┌──────────────────────────────┬──────────────┬─────┬──────────────┐
//!   │ TransamShared (64 B)         │ XactEndSlot 0│ ... │ XactEndSlot n│  one per proc entry,
//!   │ ProcArrayLock XidGenLock     │ seq, waiters │     │ (64 B each)  │  same index as
//!   │ OidGenLock next_xid next_oid │              │     │              │  Shmem::procs()
//!   │ oid_count latest_completed   │              │     │              │
//!   └──────────────────────────────┴──────────────┴─────┴──────────────┘
//!   plus, in shmem-layout's proc array: Proc.xid, Proc.xmin per process
//! ```
//!
//! | file | what |
//! |---|---|
//! | [`shared`] | `TransamShared`, `XactEndSlot`, sizes, the per-process handle [`Transam`]; xid and oid counters |
//! | [`procarray`] | ending a transaction, snapshots, `is_running`, `global_xmin` |
//! | [`xact_wait`] | blocking until an xid ends (`XactLockTableWait`), futex based |
//! | [`snapshot`] | [`Snapshot`], isolation levels, which snapshot a statement uses |
//! | [`visibility`] | `satisfies_mvcc`, `satisfies_update`, `satisfies_vacuum`, hint-bit suggestions |
//! | [`conflict`] | what the executor does when the row it writes is being or was changed |
//! | [`xact_record`] | commit and abort WAL payloads, their redo |
//!
//! # The life of a writing transaction
//!
//! 1. `BEGIN`; the first statement takes a snapshot
//!    ([`XactSnapshots::statement_snapshot`]): read committed takes a new one
//!    for every statement, repeatable read keeps the first for the whole
//!    transaction.
//! 2. The first write calls [`Transam::assign_xid_with`] (extending the
//!    commit log under XidGenLock); the xid is in the proc array before the
//!    call returns.
//! 3. Scans test each tuple with [`satisfies_mvcc`]. An UPDATE or DELETE
//!    tests the version it is about to change with [`satisfies_update`] and
//!    lets [`decide_write`] say what to do: go ahead, wait for the xid with
//!    [`Transam::wait_for_xid`] and look again, skip the row, follow the
//!    update chain (read committed), or fail with `40001` (repeatable read).
//! 4. Commit (`crate::xact::commit_transaction`): build the commit record
//!    ([`XactCommit::assemble`]), insert and flush it under
//!    DELAY_CHKPT_START, set the commit-log status, then
//!    [`Transam::end_transaction`] (clear the xid from the proc array,
//!    advance latestCompletedXid, wake the waiters). Abort
//!    (`crate::xact::abort_transaction`): the same with the abort record and
//!    no flush.
//!
//! # The protocol (numbered rules; the files refer to them as P1..P9)
//!
//! 1. (P1) **Assignment publishes under XidGenLock.** An xid is read from
//!    `next_xid`, the commit log is extended to cover it, it is stored in the
//!    caller's `Proc.xid`, and only then is `next_xid` advanced and XidGenLock
//!    released. So any xid Y > X is handed out only after X is visible in the
//!    proc array: by the time Y can have completed (and raised
//!    latestCompletedXid past X), X is in the array. Hence: *every running xid
//!    below latestCompletedXid + 1 is in the proc array.*
//! 2. (P2) **Status before departure.** A transaction records its commit or
//!    abort in the commit log *before* it leaves the proc array. Whoever no
//!    longer finds the xid running finds its final status in the commit log.
//!    There is a window in which an xid is both committed in the log and
//!    still in the array: checks without a snapshot must therefore ask the
//!    proc array first and the commit log second; MVCC checks ask the
//!    snapshot first.
//! 3. (P3) **Ending under ProcArrayLock exclusive.** `Proc.xid` and
//!    `Proc.xmin` are cleared and latestCompletedXid is raised to the xid in
//!    one exclusive section. latestCompletedXid never goes down.
//! 4. (P4) **Snapshots under ProcArrayLock shared.** `xmax` =
//!    latestCompletedXid + 1, `xip` = every other process's xid below `xmax`,
//!    `xmin` = the smallest of `xip`, `xmax` and the caller's own xid. No
//!    transaction can end during the scan (P3), and by P1 no running xid
//!    below `xmax` is missing, so the snapshot is a consistent cut: every xid
//!    below `xmax` and not in `xip` (and not the caller's) had ended before
//!    the snapshot, and its commit-log status is final (P2).
//! 5. (P5) **`Proc.xmin` belongs to its owner.** It is set by the owner's
//!    `take_snapshot` (under ProcArrayLock shared) if it was 0, and cleared by
//!    `end_transaction` or `reset_xmin` when the owner holds no snapshot.
//! 6. (P6) **Horizon.** `global_xmin` (under ProcArrayLock shared) is the
//!    minimum of latestCompletedXid + 1 and every valid `Proc.xid` and
//!    `Proc.xmin`. No snapshot, present or future, can see an xid below it as
//!    running. VACUUM removes only what was deleted below it (visibility V7).
//! 7. (P7) **Running test without a lock.** `is_running(xid)` loads the
//!    `Proc.xid`s atomically. The xid is stored before `assign_xid` returns
//!    (P1) and cleared before `end_transaction` returns (P3), so the answer
//!    is right at some instant during the call.
//! 8. (P8) **Waking waiters.** After clearing its xid, the ender increments
//!    its [`XactEndSlot`]'s `seq` and, if `waiters` is non-zero, futex-wakes
//!    every sleeper on `seq`. A waiter increments `waiters`, reads `seq`,
//!    re-checks that the xid is still in the same proc entry, and sleeps only
//!    while `seq` is unchanged. All of these are sequentially consistent, so
//!    a wake-up is never lost.
//! 9. (P9) **Oids under OidGenLock.** `new_oid` hands out oids from
//!    `next_oid`, never below 16384 in normal running, and every
//!    [`VAR_OID_PREFETCH`] oids calls back, still under OidGenLock, to log a
//!    NEXTOID record reserving the next batch.
//!
//! # Locking
//!
//! Lock order (take only in increasing order). ProcArrayLock and XidGenLock
//! are never held together today; XidGenLock is held while the
//! `extend_clog` callback takes the commit log's locks, and OidGenLock while
//! the NEXTOID callback inserts WAL:
//!
//! | # | lock | tranche | protects |
//! |---|---|---|---|
//! | 1 | ProcArrayLock | 4 | `latest_completed_xid`; the set of `Proc.xid`s a snapshot sees; `Proc.xmin` of snapshot takers |
//! | 2 | XidGenLock | 3 | `next_xid`; publishing `Proc.xid` (P1) |
//! | 3 | commit log control lock (`clog`) | 30 | taken inside XidGenLock by the `extend_clog` callback |
//! | 4 | OidGenLock | 2 | `next_oid`, `oid_count` |
//! | 5 | WAL insertion locks (`wal`) | | taken inside OidGenLock by the NEXTOID callback |
//!
//! `XactEndSlot`s are atomics only (rule P8) and may be used under any lock;
//! nobody sleeps on them while holding a lock.
//!
//! # Crash safety
//!
//! Xids are not WAL-logged when assigned. After a crash the startup process
//! sets `next_xid` from the checkpoint record ([`Transam::set_next_xid`]) and
//! moves it past the xid of every replayed record and every subtransaction
//! xid in commit and abort records ([`Transam::advance_next_xid_past`]).
//! Xids handed out before the crash whose records never reached disk are
//! handed out again: nothing durable refers to them, because a data page that
//! carries an xid is written only after the WAL that put it there. The commit
//! log's `trim(next_xid)` at the end of recovery clears statuses such reused
//! xids may have left. Transactions running at the crash have no commit
//! record, so their status stays "in progress" in the log while no process
//! has them in the proc array: every check reads that as aborted.
//! The proc array and this region are rebuilt from zero by the crash cycle.
//! Oids: `next_oid` comes from the checkpoint and from replayed NEXTOID
//! records, which always reserve ahead of any oid in use (P9).

pub mod conflict;
pub mod inval;
pub mod procarray;
pub mod shared;
pub mod snapshot;
pub mod visibility;
pub mod xact_record;
pub mod xact_wait;

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod vacuum_visibility_tests;
#[cfg(test)]
mod visibility_tests;

pub use conflict::{decide_write, is_next_version, WriteAction, WriteKind};
pub use shared::{
    shmem_size_bytes, OidAssignMode, Transam, TransamShared, XactEndSlot, FIRST_GENBKI_OBJECT_ID,
    FIRST_NORMAL_OBJECT_ID, OID_GEN_TRANCHE, PROC_ARRAY_TRANCHE, VAR_OID_PREFETCH, XID_GEN_TRANCHE,
};
pub use snapshot::{IsolationLevel, Snapshot, XactSnapshots};
pub use visibility::{
    satisfies_mvcc, satisfies_update, satisfies_vacuum, HintBits, UpdateCheck, UpdateResult,
    VacuumState, Visibility, XidRunningOracle, XidStatusOracle,
};
pub use xact_record::{
    decode_xact_record, redo, redo_abort, redo_commit, XactAbort, XactCommit, XactRecord,
    XactRecordError, XactRedo,
};
pub use xact_wait::{XactWait, INTERRUPT_CHECK_INTERVAL};
