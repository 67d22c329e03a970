//! Creating a checkpoint (PostgreSQL's `CreateCheckPoint` and
//! `CheckPointGuts`, and the log lines of `LogCheckpointStart` /
//! `LogCheckpointEnd`).
//!
//! Run by the checkpointer (timed, requested by `CHECKPOINT`, triggered by
//! WAL volume, and the shutdown checkpoint), and by the startup process at
//! the end of recovery. One checkpoint at a time: the caller serialises.
//!
//! # The sequence, step by step
//!
//! 1. Read `pg_control`. A timed, WAL-size or unforced requested checkpoint
//!    with no WAL inserted since the last checkpoint record is skipped
//!    ("system is idle").
//! 2. Shutdown only: set the state "shutting down" and write `pg_control`.
//! 3. Take the pending tombstones (this process's and
//!    [`CheckpointOptions::unlink_requests`]).
//! 4. Fix the redo point (`advance_redo_ptr`); for shutdown and end of
//!    recovery, where nothing else inserts, it is the current insert
//!    position and the checkpoint record will start exactly there.
//! 5. Collect next xid, next oid and the oldest running xid; then wait
//!    until every process that had DELAY_CHKPT_START set at this moment has
//!    cleared it (its commit record may lie before the redo point while its
//!    commit-log status is not set yet).
//! 6. Write every dirty buffer, pacing through `progress(done, total)`.
//! 7. Write and fsync the commit log's dirty pages.
//! 8. Fsync the relation segments written since the last checkpoint: ours,
//!    [`CheckpointOptions::fsync_requests`], and what
//!    [`CheckpointOptions::absorb_fsync_requests`] returns now (requests
//!    forwarded while step 6 ran).
//! 9. Insert the checkpoint record (SHUTDOWN info for shutdown and end of
//!    recovery, ONLINE otherwise) and flush the WAL to its end.
//! 10. Write `pg_control`: checkPoint, its copy, the state ("shut down"
//!     after a shutdown checkpoint, "in production" otherwise), and fsync.
//! 11. Remove the tombstones from step 3.
//! 12. Remove or recycle old WAL segments (`wal_files.rs`).
//!
//! # Invariants
//!
//! 1. redo <= checkpoint record LSN; for shutdown checkpoints they are
//!    equal, or the checkpoint fails with PANIC ("concurrent write-ahead
//!    log activity while database system is shutting down").
//! 2. `pg_control` names the new checkpoint only after steps 6-9 are done
//!    and durable.
//! 3. Every commit record before the redo point has its status in the
//!    commit log written at step 7 (the wait of step 5).
//! 4. Every relation write that cleared a buffer marked at step 6 is
//!    fsynced at step 8: by us, by its writer (queue full), or because its
//!    request was queued before the write returned and is absorbed at
//!    step 8.
//!
//! # Crash safety (a crash at each step)
//!
//! - Steps 1-8: `pg_control` still names the previous checkpoint; replay
//!   starts at its redo point, which is before everything written here.
//!   Pages written so far are simply replayed over (idempotent). After
//!   step 2 the next start logs "shutdown was interrupted" and recovers.
//! - Step 9: the record may or may not have reached disk; `pg_control`
//!   does not name it yet, so it is replayed (if present) as an ordinary
//!   record from the previous redo point.
//! - Step 10: one sector write; either the old or the new contents, both
//!   naming a checkpoint record on disk.
//! - Step 11: a tombstone left behind is removed at the next checkpoint
//!   by whoever re-registers it; its relfilenode stays unused meanwhile.
//! - Step 12: see `wal_files.rs`; nothing still needed is touched.

use std::time::{Duration, Instant};

use pgerror::{PgError, Severity, SqlState};

use crate::control::{CheckPoint, ControlFile, DbState};
use crate::smgr::SegmentTag;
use crate::types::{Lsn, Xid};
use crate::wal::segment::{lsn_to_bytepos, maxalign};
use crate::wal::{wal_error_to_pg, TimeLineId};

use super::records::checkpoint_record;
use super::wal_files::{remove_old_wal_segments, WalRetention};
use super::{now_epoch_secs, EngineContext};

/// PostgreSQL's checkpoint request flags (`CHECKPOINT_*` in `xlog.h`), as
/// requesters set them in the checkpointer's shared state and as "checkpoint
/// starting:" prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CheckpointFlags(pub u32);

impl CheckpointFlags {
    pub const NONE: CheckpointFlags = CheckpointFlags(0);
    /// Write at full speed: no spreading over `checkpoint_completion_target`.
    pub const IMMEDIATE: CheckpointFlags = CheckpointFlags(0x0004);
    /// Take it even if nothing was written since the last one.
    pub const FORCE: CheckpointFlags = CheckpointFlags(0x0008);
    /// The requester waits for it to complete.
    pub const WAIT: CheckpointFlags = CheckpointFlags(0x0020);
    /// Someone asked (set with every request; not printed).
    pub const REQUESTED: CheckpointFlags = CheckpointFlags(0x0040);
    /// Caused by the WAL volume (`max_wal_size`).
    pub const CAUSE_XLOG: CheckpointFlags = CheckpointFlags(0x0080);
    /// Caused by `checkpoint_timeout`.
    pub const CAUSE_TIME: CheckpointFlags = CheckpointFlags(0x0100);
    /// What the `CHECKPOINT` command asks for.
    pub const COMMAND: CheckpointFlags = CheckpointFlags(0x0004 | 0x0008 | 0x0020);

    pub fn contains(self, other: CheckpointFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The words PostgreSQL 15's `LogCheckpointStart` prints for these
    /// flags, each with a leading space, in its order.
    fn words(self) -> String {
        [
            (Self::IMMEDIATE, " immediate"),
            (Self::FORCE, " force"),
            (Self::WAIT, " wait"),
            (Self::CAUSE_XLOG, " wal"),
            (Self::CAUSE_TIME, " time"),
        ]
        .iter()
        .filter(|(f, _)| self.contains(*f))
        .map(|(_, w)| *w)
        .collect()
    }
}

impl std::ops::BitOr for CheckpointFlags {
    type Output = CheckpointFlags;
    fn bitor(self, rhs: CheckpointFlags) -> CheckpointFlags {
        CheckpointFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for CheckpointFlags {
    fn bitor_assign(&mut self, rhs: CheckpointFlags) {
        self.0 |= rhs.0;
    }
}

/// Why an online checkpoint runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointReason {
    /// `checkpoint_timeout` elapsed.
    Timed,
    /// Someone asked through the checkpointer's shared state (`CHECKPOINT`
    /// asks [`CheckpointFlags::COMMAND`]); the flags of every request taken
    /// together, plus the cause the checkpointer found itself.
    Requested(CheckpointFlags),
    /// `max_wal_size` worth of WAL since the last redo point.
    WalSize,
}

/// Which checkpoint to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// The last thing a clean shutdown does; no other process inserts WAL.
    Shutdown,
    /// The startup process, after replay; nothing else runs yet.
    EndOfRecovery,
    Online(CheckpointReason),
}

impl CheckpointKind {
    /// Immediate checkpoints write at full speed; the others are spread.
    pub fn is_immediate(self) -> bool {
        match self {
            CheckpointKind::Shutdown | CheckpointKind::EndOfRecovery => true,
            CheckpointKind::Online(CheckpointReason::Requested(flags)) => {
                flags.contains(CheckpointFlags::IMMEDIATE)
            }
            CheckpointKind::Online(CheckpointReason::Timed | CheckpointReason::WalSize) => false,
        }
    }

    fn is_shutdown_like(self) -> bool {
        matches!(
            self,
            CheckpointKind::Shutdown | CheckpointKind::EndOfRecovery
        )
    }

    /// Whether the checkpoint is skipped when nothing was inserted since
    /// the last checkpoint record (PostgreSQL: unless shutdown, end of
    /// recovery or FORCE).
    fn skips_when_idle(self) -> bool {
        match self {
            CheckpointKind::Shutdown | CheckpointKind::EndOfRecovery => false,
            CheckpointKind::Online(CheckpointReason::Requested(flags)) => {
                !flags.contains(CheckpointFlags::FORCE)
            }
            CheckpointKind::Online(CheckpointReason::Timed | CheckpointReason::WalSize) => true,
        }
    }

    /// PostgreSQL's flag words after "checkpoint starting:".
    fn flag_words(self) -> String {
        match self {
            CheckpointKind::Shutdown => " shutdown immediate".to_string(),
            CheckpointKind::EndOfRecovery => " end-of-recovery immediate wait".to_string(),
            CheckpointKind::Online(CheckpointReason::Requested(flags)) => flags.words(),
            CheckpointKind::Online(CheckpointReason::Timed) => " time".to_string(),
            CheckpointKind::Online(CheckpointReason::WalSize) => " wal".to_string(),
        }
    }

    /// The line PostgreSQL logs when a checkpoint begins.
    pub fn start_message(self) -> String {
        format!("checkpoint starting:{}", self.flag_words())
    }
}

/// What the caller brings besides the context.
pub struct CheckpointOptions<'f> {
    /// Relation segments other processes wrote and asked to have fsynced.
    pub fsync_requests: Vec<SegmentTag>,
    /// Tombstones of relations other processes dropped (removed after this
    /// checkpoint).
    pub unlink_requests: Vec<SegmentTag>,
    /// Called at step 8, just before the fsyncs: the fsync requests other
    /// processes forwarded while the buffers were being written (the
    /// checkpointer absorbs its queue here, PostgreSQL's
    /// `AbsorbSyncRequests` at the start of `ProcessSyncRequests`). A write
    /// done by another process during step 6 is in that queue by then, or
    /// was fsynced by its writer (`checkpointer_shmem` rule F1).
    pub absorb_fsync_requests: &'f dyn Fn() -> Vec<SegmentTag>,
    pub wal_retention: WalRetention,
    /// Whether a WAL segment may be removed (the archiver is done with it).
    pub may_remove: &'f dyn Fn(&str) -> bool,
}

impl Default for CheckpointOptions<'_> {
    fn default() -> Self {
        CheckpointOptions {
            fsync_requests: Vec::new(),
            unlink_requests: Vec::new(),
            absorb_fsync_requests: &Vec::new,
            wal_retention: WalRetention::default(),
            may_remove: &|_| true,
        }
    }
}

/// What a checkpoint did (PostgreSQL's `CheckpointStatsData`).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointStats {
    pub kind: CheckpointKind,
    /// A timed checkpoint found nothing to do.
    pub skipped: bool,
    /// The checkpoint record's LSN and its redo point.
    pub checkpoint_lsn: Lsn,
    pub redo: Lsn,
    pub buffers_written: usize,
    /// `shared_buffers`, for the percentage.
    pub nbuffers: usize,
    pub clog_pages_written: usize,
    pub segments_added: usize,
    pub segments_removed: usize,
    pub segments_recycled: usize,
    /// Relation segment files fsynced.
    pub sync_files: usize,
    pub write_time: Duration,
    pub sync_time: Duration,
    pub total_time: Duration,
    pub longest_sync: Duration,
    /// Bytes of WAL between the previous redo point and this one.
    pub distance_bytes: u64,
}

impl CheckpointStats {
    fn skipped(kind: CheckpointKind, control: &ControlFile, nbuffers: usize) -> Self {
        CheckpointStats {
            kind,
            skipped: true,
            checkpoint_lsn: control.check_point,
            redo: control.check_point_copy.redo,
            buffers_written: 0,
            nbuffers,
            clog_pages_written: 0,
            segments_added: 0,
            segments_removed: 0,
            segments_recycled: 0,
            sync_files: 0,
            write_time: Duration::ZERO,
            sync_time: Duration::ZERO,
            total_time: Duration::ZERO,
            longest_sync: Duration::ZERO,
            distance_bytes: 0,
        }
    }

    /// PostgreSQL 15's "checkpoint complete" line. The estimate is this
    /// checkpoint's distance (PostgreSQL keeps a moving average).
    pub fn completion_message(&self) -> String {
        let pct = if self.nbuffers == 0 {
            0.0
        } else {
            self.buffers_written as f64 * 100.0 / self.nbuffers as f64
        };
        let average = if self.sync_files == 0 {
            Duration::ZERO
        } else {
            self.sync_time / self.sync_files as u32
        };
        let kb = self.distance_bytes / 1024;
        format!(
            "checkpoint complete: wrote {} buffers ({pct:.1}%); \
             {} WAL file(s) added, {} removed, {} recycled; \
             write={}, sync={}, total={}; \
             sync files={}, longest={}, average={}; \
             distance={kb} kB, estimate={kb} kB",
            self.buffers_written,
            self.segments_added,
            self.segments_removed,
            self.segments_recycled,
            secs(self.write_time),
            secs(self.sync_time),
            secs(self.total_time),
            self.sync_files,
            secs(self.longest_sync),
            secs(average),
        )
    }
}

/// `1.234 s`, as PostgreSQL prints checkpoint timings.
fn secs(d: Duration) -> String {
    format!("{}.{:03} s", d.as_secs(), d.subsec_millis())
}

/// Takes a checkpoint of `kind` (the sequence in the module docs), calling
/// `progress(done, total)` after each buffer written. The caller logs the
/// result ([`CheckpointStats::completion_message`]); the start line is
/// logged here. An error leaves the previous checkpoint in force; a failed
/// fsync or control file write is a PANIC.
pub fn create_checkpoint(
    kind: CheckpointKind,
    ctx: &mut EngineContext<'_, '_>,
    options: CheckpointOptions<'_>,
    progress: impl FnMut(usize, usize),
) -> Result<CheckpointStats, PgError> {
    let started = Instant::now();
    let fsync = ctx.fsync();
    let nbuffers = ctx.buffers.pool().nbuffers();
    let mut control = ControlFile::read(ctx.data_dir).map_err(panic)?;
    let prev_redo = control.check_point_copy.redo;
    let timeline = TimeLineId(control.check_point_copy.this_timeline_id);

    // 1. Idle: a checkpoint that may be skipped, right after the previous
    // record.
    if kind.skips_when_idle() && is_idle(ctx, &control) {
        log::debug!("checkpoint skipped because system is idle");
        return Ok(CheckpointStats::skipped(kind, &control, nbuffers));
    }
    log::info!("{}", kind.start_message());

    // 2.
    if kind == CheckpointKind::Shutdown {
        control.state = DbState::Shutdowning;
        control.write(ctx.data_dir, fsync).map_err(panic)?;
    }

    // 3.
    let mut tombstones = ctx.smgr.take_pending_unlinks();
    tombstones.extend(options.unlink_requests);

    // 4-10. On failure the previous checkpoint stays in force, and so do
    // the tombstones.
    let requests = FsyncRequests {
        before: options.fsync_requests,
        absorb: options.absorb_fsync_requests,
    };
    let written = match write_checkpoint(kind, ctx, &mut control, requests, progress) {
        Ok(written) => written,
        Err(e) => {
            keep_tombstones(ctx, &tombstones);
            return Err(e);
        }
    };
    let redo = written.redo;

    // 11.
    for tag in tombstones {
        if let Err(e) = ctx.smgr.complete_unlink(tag) {
            log::warn!("{}", PgError::from(e).message);
        }
    }

    // 12.
    let removal = remove_old_wal_segments(
        &ctx.pg_wal(),
        timeline,
        redo,
        ctx.wal.current_insert_lsn(),
        options.wal_retention,
        options.may_remove,
        fsync,
    )?;

    Ok(CheckpointStats {
        kind,
        skipped: false,
        checkpoint_lsn: written.checkpoint_lsn,
        redo,
        buffers_written: written.buffers_written,
        nbuffers,
        clog_pages_written: written.clog_pages_written,
        segments_added: 0,
        segments_removed: removal.removed,
        segments_recycled: removal.recycled,
        sync_files: written.sync_files,
        write_time: written.write_time,
        sync_time: written.sync_time,
        total_time: started.elapsed(),
        longest_sync: written.longest_sync,
        distance_bytes: redo.0.saturating_sub(prev_redo.0),
    })
}

/// What steps 4-10 did.
struct Written {
    redo: Lsn,
    checkpoint_lsn: Lsn,
    buffers_written: usize,
    clog_pages_written: usize,
    sync_files: usize,
    longest_sync: Duration,
    write_time: Duration,
    sync_time: Duration,
}

/// The fsync requests of other processes: those known before the
/// checkpoint and the hook that collects those forwarded meanwhile.
struct FsyncRequests<'f> {
    before: Vec<SegmentTag>,
    absorb: &'f dyn Fn() -> Vec<SegmentTag>,
}

/// Steps 4-10: redo point, counters, writes, fsyncs, the record,
/// `pg_control`.
fn write_checkpoint(
    kind: CheckpointKind,
    ctx: &mut EngineContext<'_, '_>,
    control: &mut ControlFile,
    requests: FsyncRequests<'_>,
    progress: impl FnMut(usize, usize),
) -> Result<Written, PgError> {
    let timeline = control.check_point_copy.this_timeline_id;
    // 4.
    let redo = ctx.wal.advance_redo_ptr();

    // 5.
    let next_xid = ctx.transam.next_xid();
    let next_oid = ctx.transam.next_oid();
    let oldest_active_xid = oldest_running_xid(ctx).unwrap_or(next_xid);
    wait_for_delaying_commits(ctx.transam.procs());

    // 6, 7.
    let write_start = Instant::now();
    let buffer_stats = ctx
        .buffers
        .checkpoint_buffers(&mut *ctx.smgr, ctx.wal, progress)?;
    let clog_stats = ctx.clog.write_dirty_pages()?;

    // 8.
    let sync_start = Instant::now();
    let mut fsync_requests = requests.before;
    fsync_requests.extend((requests.absorb)());
    let (sync_files, longest_sync) = sync_relation_files(ctx, fsync_requests)?;
    let sync_end = Instant::now();

    // 9.
    let checkpoint = CheckPoint {
        redo,
        this_timeline_id: timeline,
        prev_timeline_id: timeline,
        full_page_writes: true,
        next_xid,
        next_oid,
        oldest_active_xid,
        time: now_epoch_secs(),
    };
    let appended = ctx
        .wal
        .insert(checkpoint_record(&checkpoint, kind.is_shutdown_like()))
        .map_err(|e| wal_error_to_pg(&e))?;
    if kind.is_shutdown_like() && appended.start != redo {
        return Err(PgError::internal(
            "concurrent write-ahead log activity while database system is shutting down",
        )
        .with_severity(Severity::Panic));
    }
    ctx.wal
        .flush(appended.end)
        .map_err(|e| wal_error_to_pg(&e))?;

    // 10.
    control.state = if kind == CheckpointKind::Shutdown {
        DbState::Shutdowned
    } else {
        DbState::InProduction
    };
    control.check_point = appended.start;
    control.check_point_copy = checkpoint;
    control.min_recovery_point = Lsn::INVALID;
    control.min_recovery_point_tli = 0;
    control.write(ctx.data_dir, ctx.fsync()).map_err(panic)?;

    Ok(Written {
        redo,
        checkpoint_lsn: appended.start,
        buffers_written: buffer_stats.buffers_written,
        clog_pages_written: clog_stats.pages_written,
        sync_files,
        longest_sync,
        write_time: sync_start - write_start,
        sync_time: sync_end - sync_start,
    })
}

/// A failed checkpoint must not lose the tombstones it took: unlinking the
/// (empty) main fork again registers it for the next checkpoint.
fn keep_tombstones(ctx: &mut EngineContext<'_, '_>, tombstones: &[SegmentTag]) {
    for tag in tombstones {
        if let Err(e) = ctx.smgr.unlink(tag.rel, Some(tag.fork), false) {
            log::warn!("{}", PgError::from(e).message);
        }
    }
}

/// Nothing was inserted since the checkpoint record `pg_control` names:
/// the insert position is just past it.
fn is_idle(ctx: &EngineContext<'_, '_>, control: &ControlFile) -> bool {
    let record_bytes = maxalign(u64::from(
        checkpoint_record(&control.check_point_copy, false).total_len(),
    ));
    lsn_to_bytepos(ctx.wal.current_insert_lsn())
        == lsn_to_bytepos(control.check_point) + record_bytes
}

/// The smallest xid in the proc array (PostgreSQL's
/// `GetOldestActiveTransactionId`), `None` if no transaction has one.
fn oldest_running_xid(ctx: &EngineContext<'_, '_>) -> Option<Xid> {
    ctx.transam
        .procs()
        .iter()
        .map(|p| Xid(p.xid.load(std::sync::atomic::Ordering::SeqCst)))
        .filter(|x| x.is_valid())
        .min()
}

/// Step 5, last part (PostgreSQL's `GetVirtualXIDsDelayingChkpt` and
/// `HaveVirtualXIDsDelayingChkpt`): waits, in 10 ms naps, until every
/// process that was between inserting its commit record and setting its
/// commit-log status when the redo point was fixed has finished that step.
/// Otherwise a commit whose record lies before the redo point could miss
/// both the commit log written in step 7 and the replay from the redo point.
/// Later commits are not waited for: their records follow the redo point.
fn wait_for_delaying_commits(procs: &[shmem_layout::procarray::Proc]) {
    let delaying: Vec<(usize, u32)> = procs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.delay_chkpt_start_generation().map(|g| (i, g)))
        .collect();
    if delaying.is_empty() {
        return;
    }
    while delaying
        .iter()
        .any(|&(i, g)| procs[i].delay_chkpt_start_generation() == Some(g))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Step 8, one file at a time so that the longest fsync can be reported.
/// On an error the files not yet synced stay registered for the next try.
fn sync_relation_files(
    ctx: &mut EngineContext<'_, '_>,
    requests: Vec<SegmentTag>,
) -> Result<(usize, Duration), PgError> {
    let mut tags = ctx.smgr.take_pending_syncs();
    tags.extend(requests);
    tags.sort_unstable_by_key(|t| {
        (
            t.rel.spc_oid,
            t.rel.db_oid,
            t.rel.rel_number,
            t.fork as u8,
            t.segno,
        )
    });
    tags.dedup();
    let mut synced = 0;
    let mut longest = Duration::ZERO;
    for (i, tag) in tags.iter().enumerate() {
        ctx.smgr.register_sync(*tag);
        let t = Instant::now();
        match ctx.smgr.sync_pending() {
            Ok(n) => synced += n,
            Err(e) => {
                for rest in &tags[i + 1..] {
                    ctx.smgr.register_sync(*rest);
                }
                return Err(e.into());
            }
        }
        longest = longest.max(t.elapsed());
    }
    Ok((synced, longest))
}

/// Control file failures during a checkpoint: the cluster state on disk is
/// in doubt, so always PANIC.
fn panic(e: crate::control::ControlError) -> PgError {
    let e = PgError::from(e);
    if e.severity < Severity::Panic {
        PgError {
            severity: Severity::Panic,
            code: if e.code == SqlState::INTERNAL_ERROR {
                SqlState::DATA_CORRUPTED
            } else {
                e.code
            },
            ..e
        }
    } else {
        e
    }
}
