//! Ending a transaction durably: PostgreSQL's `RecordTransactionCommit`,
//! `RecordTransactionAbort` and the file removal of `smgrDoPendingDeletes`
//! (`xact.c`, `storage.c`). Backends (and autovacuum workers) call
//! [`commit_transaction`] or [`abort_transaction`] at the end of every
//! transaction, with the handles of `storage::shmem::with_engine`.
//!
//! # Commit, step by step
//!
//! 0. No xid (the transaction wrote nothing): no record, no flush, no
//!    commit-log change; only the proc array forgets its xmin.
//! 1. Set DELAY_CHKPT_START on our proc entry.
//! 2. Insert the commit record (`XactCommit`: time, dropped relations).
//! 3. Synchronous commit (`synchronous_commit` on, or any dropped relation,
//!    whose file removal cannot be undone): flush the WAL to the record's
//!    end (group commit: one fdatasync for every commit waiting). Otherwise
//!    not: the walwriter writes it within a few `wal_writer_delay`s.
//! 4. Set the commit-log status to committed; for an asynchronous commit
//!    with the record's end LSN, so the page (and hint bits on tuples) wait
//!    until the WAL is flushed that far.
//! 5. Clear DELAY_CHKPT_START.
//! 6. Leave the proc array (`Transam::end_transaction`): from here other
//!    snapshots see the transaction as ended, and waiters wake.
//! 7. Drop the buffers and remove the files of the dropped relations; a
//!    main fork's first segment stays as a tombstone, handed to the
//!    checkpointer, until the next checkpoint. Failures are WARNINGs: the
//!    transaction is committed.
//!
//! Abort: insert the abort record (no flush: a lost abort record reads as
//! aborted anyway), set the status aborted, leave the proc array, remove
//! the files of the relations the transaction created.
//!
//! # Invariants
//!
//! 1. (X1) The commit is acknowledged (this returns) only after step 3 for
//!    a synchronous commit: its record is durable.
//! 2. (X2) The status is in the commit log before the xid leaves the proc
//!    array (transam rule P2).
//! 3. (X3) DELAY_CHKPT_START covers steps 2-4: a checkpoint whose redo
//!    point falls after the record waits until the status is in the commit
//!    log, so the checkpoint's commit log, written after that wait, has it
//!    (the record itself will not be replayed after that checkpoint).
//! 4. (X4) Files of a dropped relation go only after the commit record is
//!    flushed (step 3 is forced) and the xid has left the proc array.
//!
//! # Locking
//!
//! No lock of its own. WAL insertion and flush, the commit log and the proc
//! array take theirs; none is held across a step. The caller holds no
//! buffer content lock (dropping buffers waits for pins to go).
//!
//! # Crash safety
//!
//! Between steps 2 and 4 an error is a PANIC (PostgreSQL's critical
//! section): the WAL may say committed while the commit log does not, and
//! only the crash cycle's replay makes them agree. A crash after step 3
//! keeps the commit (replay sets the status); before it, an asynchronous
//! commit may be lost, which is what `synchronous_commit = off` accepts.

use pgerror::{PgError, Severity, SqlState};
use shmem_layout::procarray::Proc;

use crate::clog::XidStatus;
use crate::recovery::EngineContext;
use crate::transam::{XactAbort, XactCommit};
use crate::types::{BlockNumber, ForkNumber, Lsn, RelFileLocator, Xid};
use crate::wal::wal_error_to_pg;

const ALL_FORKS: [ForkNumber; 4] = [
    ForkNumber::Main,
    ForkNumber::Fsm,
    ForkNumber::VisibilityMap,
    ForkNumber::Init,
];

/// Commits the caller's transaction (the steps in the module docs) and
/// returns the end of its commit record ([`Lsn::INVALID`] without an xid).
/// `commit_time_us` is microseconds since 2000-01-01 UTC; `dropped_rels`
/// the relations whose files go with the commit (DROP TABLE).
///
/// An `Err` of severity PANIC means the cluster must go through the crash
/// cycle; an ERROR (the record is too large) means nothing was done.
pub fn commit_transaction(
    engine: &mut EngineContext<'_, '_>,
    my_proc: &Proc,
    xid: Xid,
    commit_time_us: i64,
    dropped_rels: &[RelFileLocator],
    synchronous_commit: bool,
) -> Result<Lsn, PgError> {
    commit_transaction_then(
        engine,
        my_proc,
        xid,
        commit_time_us,
        dropped_rels,
        synchronous_commit,
        || {},
    )
}

/// [`commit_transaction`], running `when_visible` after the transaction
/// left the proc array (step 6) and before the dropped relations' files go
/// (step 7): where a backend tells others, through the invalidation queue,
/// to stop using those files.
pub fn commit_transaction_then(
    engine: &mut EngineContext<'_, '_>,
    my_proc: &Proc,
    xid: Xid,
    commit_time_us: i64,
    dropped_rels: &[RelFileLocator],
    synchronous_commit: bool,
    when_visible: impl FnOnce(),
) -> Result<Lsn, PgError> {
    // 0.
    if !xid.is_valid() {
        debug_assert!(dropped_rels.is_empty(), "dropping relations needs an xid");
        engine.transam.end_transaction(my_proc, Xid::INVALID);
        when_visible();
        return Ok(Lsn::INVALID);
    }
    let record = XactCommit {
        xid,
        commit_time_us,
        subxacts: Vec::new(),
        dropped_rels: dropped_rels.to_vec(),
        inval_flags: 0,
    }
    .assemble()
    .map_err(|e| PgError::new(SqlState::PROGRAM_LIMIT_EXCEEDED, e.0))?;
    let synchronous = synchronous_commit || !dropped_rels.is_empty();

    let end = {
        // 1; cleared by the guard (5), also on the way out with a PANIC.
        let _delay = DelayCheckpointStart::set(my_proc);
        // 2.
        let appended = engine.wal.insert(record).map_err(|e| wal_error_to_pg(&e))?;
        // 3.
        if synchronous {
            engine
                .wal
                .flush(appended.end)
                .map_err(|e| critical(wal_error_to_pg(&e)))?;
        }
        // 4.
        let async_lsn = if synchronous {
            Lsn::INVALID
        } else {
            appended.end
        };
        engine
            .clog
            .set_status(xid, XidStatus::Committed, async_lsn)
            .map_err(|e| critical(e.into()))?;
        appended.end
    };
    // 6.
    engine.transam.end_transaction(my_proc, xid);
    when_visible();
    // 7.
    drop_relation_files(engine, dropped_rels);
    Ok(end)
}

/// Aborts the caller's transaction and returns the end of its abort record
/// ([`Lsn::INVALID`] without an xid). `created_rels` are the relations the
/// transaction created, whose files go now.
pub fn abort_transaction(
    engine: &mut EngineContext<'_, '_>,
    my_proc: &Proc,
    xid: Xid,
    abort_time_us: i64,
    created_rels: &[RelFileLocator],
) -> Result<Lsn, PgError> {
    if !xid.is_valid() {
        engine.transam.end_transaction(my_proc, Xid::INVALID);
        return Ok(Lsn::INVALID);
    }
    let record = XactAbort {
        xid,
        abort_time_us,
        subxacts: Vec::new(),
        dropped_rels: created_rels.to_vec(),
    }
    .assemble()
    .map_err(|e| PgError::new(SqlState::PROGRAM_LIMIT_EXCEEDED, e.0))?;
    let appended = engine.wal.insert(record).map_err(|e| wal_error_to_pg(&e))?;
    engine
        .clog
        .set_status(xid, XidStatus::Aborted, Lsn::INVALID)
        .map_err(|e| critical(e.into()))?;
    engine.transam.end_transaction(my_proc, xid);
    drop_relation_files(engine, created_rels);
    Ok(appended.end)
}

/// DELAY_CHKPT_START for as long as it lives.
struct DelayCheckpointStart<'p>(&'p Proc);

impl<'p> DelayCheckpointStart<'p> {
    fn set(proc: &'p Proc) -> Self {
        proc.set_delay_chkpt_start();
        DelayCheckpointStart(proc)
    }
}

impl Drop for DelayCheckpointStart<'_> {
    fn drop(&mut self) {
        self.0.clear_delay_chkpt_start();
    }
}

/// An error between inserting the record and setting the status: the WAL
/// and the commit log may disagree, so PANIC.
fn critical(e: PgError) -> PgError {
    e.with_severity(Severity::Panic)
}

/// Step 7 (PostgreSQL's `smgrdounlinkall`): buffers first, then files.
/// Problems are logged as WARNINGs, as PostgreSQL does after commit.
fn drop_relation_files(engine: &mut EngineContext<'_, '_>, rels: &[RelFileLocator]) {
    for &rel in rels {
        for fork in ALL_FORKS {
            if let Err(e) = engine
                .buffers
                .drop_relation_buffers(rel, fork, BlockNumber(0))
            {
                log::warn!("{}", PgError::from(e).message);
            }
        }
        if let Err(e) = engine.smgr.unlink(rel, None, false) {
            log::warn!("{}", PgError::from(e).message);
        }
    }
}

#[cfg(test)]
mod tests;
