//! WAL replay and checkpoints: PostgreSQL's `StartupXLOG` and
//! `xlogrecovery.c` (the startup process), `CreateCheckPoint` and
//! `RemoveOldXlogFiles` (the checkpointer, and the startup process at the
//! end of recovery), `BootStrapXLOG` (initdb), and the redo routines of the
//! resource managers that need more than the buffer pool.
//!
//! Who runs what:
//!
//! | process | calls | file |
//! |---|---|---|
//! | initdb | [`bootstrap_cluster`] | `bootstrap.rs` |
//! | startup | [`startup`]: read `pg_control`, replay, end-of-recovery checkpoint | `startup.rs`, `replay.rs` |
//! | checkpointer | [`create_checkpoint`] (timed, requested, WAL size, shutdown), pacing with [`CheckpointSchedule`] | `checkpoint.rs`, `pacing.rs` |
//! | checkpointer, startup | [`remove_old_wal_segments`] (inside a checkpoint) | `wal_files.rs` |
//! | backends (DDL), startup | Storage and XLOG record builders and decoders | `records.rs` |
//! | every page resource manager | [`RedoTable`], [`read_block_for_redo`] | `redo.rs` |
//!
//! # The startup sequence (crash recovery), step by step
//!
//! 1. Read `global/pg_control`; a file that does not check out is FATAL.
//! 2. Log how the cluster was left (`database system was shut down at ...`,
//!    `database system was interrupted; last known up at ...`).
//! 3. Read the checkpoint record `pg_control` points to; if it is not a
//!    valid checkpoint record: PANIC `could not locate a valid checkpoint
//!    record`.
//! 4. Recovery is needed if the state is not "shut down", if the redo point
//!    lies before the checkpoint record (an online checkpoint), or if a
//!    valid record follows the checkpoint record.
//! 5. If needed: fsync the whole data directory (what was written before
//!    the crash may be only in the kernel's cache), set the state to "in
//!    crash recovery", log `database system was not properly shut down;
//!    automatic recovery in progress`.
//! 6. Set the xid and oid counters from the checkpoint.
//! 7. Replay from the redo point (or from just after the checkpoint record
//!    when that is the redo point), record by record, through the dispatch
//!    table, until the reader reports the end of the WAL: `redo starts at`,
//!    `redo done at`, or `redo is not required`.
//! 8. Trim the commit log at the next xid; start WAL insertion at the end
//!    of the valid WAL (`init_at`), which overwrites any torn tail.
//! 9. If recovery ran: an end-of-recovery checkpoint (step list below),
//!    which also sets the state "in production"; otherwise (or if the
//!    caller asked to skip it) only the state is written.
//!
//! # The checkpoint sequence, step by step
//!
//! 1. (Shutdown only) state "shutting down" in `pg_control`.
//! 2. Take the tombstones waiting for a checkpoint (`take_pending_unlinks`):
//!    only those registered before the redo point may go at the end.
//! 3. Fix the redo point: `advance_redo_ptr` (holding every insertion slot,
//!    so no record is half-inserted across it). At shutdown and end of
//!    recovery nothing else inserts, so it is where the checkpoint record
//!    will start.
//! 4. Collect the counters: next xid, next oid, oldest running xid; wait
//!    for the commits that were delaying checkpoints at step 3.
//! 5. Write every buffer dirty now (`checkpoint_buffers`, paced by the
//!    caller's progress callback), then the commit log's dirty pages (which
//!    fsyncs its segments).
//! 6. Fsync every relation segment written since the last checkpoint, ours
//!    and those other processes asked for (the queue is absorbed once more
//!    here, after the writes of step 5).
//! 7. Insert the checkpoint record and flush the WAL up to its end.
//! 8. Update `pg_control` (checkPoint, its copy, state) and fsync it.
//! 9. Remove the tombstones taken in step 2.
//! 10. Remove or recycle the WAL segments wholly before the redo point's
//!     segment that the archiver is done with.
//!
//! # Invariants
//!
//! 1. A checkpoint's redo point is at or before its record; every change
//!    whose record lies before the redo point is on disk and fsynced when
//!    `pg_control` names the checkpoint (steps 3, 5, 6 before 8).
//! 2. `pg_control` is updated only after the checkpoint record is flushed,
//!    so it always names a record that is on disk.
//! 3. A page is never written before its WAL: in normal running the buffer
//!    manager flushes the WAL up to the page LSN; during replay every page
//!    LSN is at most the end of the record being replayed, which is on disk
//!    already (`RecoveryWalFlush`).
//! 4. WAL is removed only below the segment of the redo point recorded in
//!    `pg_control`, so replay never needs a removed segment.
//! 5. Replay is idempotent: a page resource manager skips a record whose end
//!    is at or below the page LSN; commit-log statuses, counters and file
//!    creation/truncation/removal may be applied twice.
//!
//! # Locking
//!
//! Nothing here takes a lock of its own. The WAL's insertion slots are held
//! by `advance_redo_ptr`; buffers, commit log and counters take theirs. The
//! control file is written only by the startup process (before any other
//! process runs) and by the checkpointer (one at a time), so it needs no
//! lock yet; PostgreSQL's ControlFileLock arrives when backends read it.
//!
//! # Crash safety
//!
//! A crash at any step of a checkpoint leaves `pg_control` naming the
//! previous checkpoint (until step 8) or the new one (after): see
//! `checkpoint.rs` for each step. A crash during replay leaves the state
//! "in crash recovery" and the same checkpoint: the next start replays the
//! same WAL again, which is harmless by invariant 5.
//!
//! # What the callers provide
//!
//! - A commit between inserting its record and setting its commit-log
//!   status holds the checkpoint back after step 3 (DELAY_CHKPT_START in
//!   the proc entry, set by `crate::xact::commit_transaction`; the
//!   checkpoint waits for it).
//! - Segments written by other processes reach step 6 through the
//!   checkpointer's queue (`crate::checkpointer_shmem`): absorbed before the
//!   checkpoint into [`CheckpointOptions::fsync_requests`] or the
//!   checkpointer's own `Smgr`, and once more just before the fsyncs through
//!   [`CheckpointOptions::absorb_fsync_requests`]. Tombstones of relations
//!   dropped by other processes arrive the same way, before the checkpoint
//!   ([`CheckpointOptions::unlink_requests`]).

mod bootstrap;
mod checkpoint;
mod pacing;
mod records;
mod redo;
mod replay;
mod startup;
mod wal_files;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wal_files_tests;

pub use bootstrap::{
    bootstrap_cluster, generate_system_identifier, Bootstrapped, FIRST_WAL_SEGMENT,
};
pub use checkpoint::{
    create_checkpoint, CheckpointFlags, CheckpointKind, CheckpointOptions, CheckpointReason,
    CheckpointStats,
};
pub use pacing::{checkpoint_segments, wal_checkpoint_needed, CheckpointSchedule};
pub use records::{
    checkpoint_record, decode_checkpoint, decode_next_oid, full_page_image_record, next_oid_record,
    noop_record, RedoRecordError, SmgrCreate, SmgrTruncate, SMGR_TRUNCATE_ALL, SMGR_TRUNCATE_FSM,
    SMGR_TRUNCATE_HEAP, SMGR_TRUNCATE_VM, XLOG_CHECKPOINT_ONLINE, XLOG_CHECKPOINT_SHUTDOWN,
    XLOG_FPI, XLOG_FPI_FOR_HINT, XLOG_NEXTOID, XLOG_NOOP, XLOG_SMGR_CREATE, XLOG_SMGR_TRUNCATE,
};
pub use redo::{finish_redo_block, read_block_for_redo, RedoAction, RedoFn, RedoTable};
pub use startup::{format_pg_time, startup, RecoveryOutcome, StartupOptions};
pub use wal_files::{archiver_done_with, remove_old_wal_segments, WalRemoval, WalRetention};

use std::path::Path;

use crate::buffer::BufferManager;
use crate::clog::Clog;
use crate::smgr::Smgr;
use crate::transam::Transam;
use crate::wal::SharedWal;

/// One process's handles on what checkpoints and recovery work on: the
/// shared regions (WAL, buffer pool, commit log, counters) and its own
/// storage manager. The startup process and the checkpointer each build
/// one after attaching the segment.
///
/// `'c` is the borrow of the handles; `'b` the buffer manager's own
/// lifetime (it is borrowed mutably, so it cannot be shortened to `'c`).
pub struct EngineContext<'c, 'b> {
    pub data_dir: &'c Path,
    pub wal: &'c SharedWal<'c>,
    pub buffers: &'c mut BufferManager<'b>,
    pub clog: &'c Clog<'c>,
    pub transam: Transam<'c>,
    /// This process's storage manager; its `fsync` option is the `fsync`
    /// setting for the control file and directories too.
    pub smgr: &'c mut Smgr,
}

impl EngineContext<'_, '_> {
    /// The `fsync` setting.
    pub fn fsync(&self) -> bool {
        self.smgr.options().fsync
    }

    fn pg_wal(&self) -> std::path::PathBuf {
        self.data_dir.join(PG_WAL_DIR)
    }
}

/// The WAL directory, relative to the data directory.
pub const PG_WAL_DIR: &str = "pg_wal";
/// Where the archiver keeps its `.ready` and `.done` markers, relative to
/// the data directory.
pub const ARCHIVE_STATUS_DIR: &str = "pg_wal/archive_status";

/// Seconds since the Unix epoch, as `pg_control` and checkpoints store time.
fn now_epoch_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
