//! Applying one WAL record during recovery: the startup process's redo of
//! the built-in resource managers (PostgreSQL's `xlog_redo`, `xact_redo`,
//! `smgr_redo`) and the dispatch of page records to the [`RedoTable`].
//!
//! `startup.rs` reads records and hands each to [`Replay::apply`]:
//!
//! ```text
//!   every record ─▶ next xid past its xid
//!     XLOG        CHECKPOINT_*: next xid (and oid, at shutdown checkpoints)
//!                 NEXTOID: next oid; NOOP: nothing; FPI*: restore images
//!     Transaction commit/abort ─▶ commit log status, next xid past every
//!                 subtransaction, drop buffers and files of dropped relations
//!     Storage     SMGR_CREATE ─▶ create the fork's file (existing is fine)
//!                 SMGR_TRUNCATE ─▶ drop buffers past the end, shorten the file
//!     Standby     nothing (no hot standby)
//!     others      the registered page redo routine, after making sure the
//!                 files of the blocks it names exist
//! ```
//!
//! # Invariants
//!
//! 1. Each built-in redo is idempotent: statuses may be set again, counters
//!    only move forward (except what a shutdown checkpoint or NEXTOID sets,
//!    as in PostgreSQL), creating an existing file and truncating to a
//!    length at or above the current one do nothing, unlinking a missing
//!    file is fine.
//! 2. Before a page routine runs, every fork it references has a file:
//!    records may name a relation that a later record drops (PostgreSQL's
//!    `XLogReadBufferExtended` creates it too); the later drop removes it.
//! 3. Buffers of a relation are dropped before its files shrink or go.
//!
//! # Crash safety
//!
//! Nothing here is durable by itself: files created and truncated, and
//! pages written, become durable at the end-of-recovery checkpoint; until
//! then `pg_control` still names the old checkpoint and a crash replays the
//! same records again.

use std::collections::HashSet;

use pgerror::PgError;

use crate::types::{BlockNumber, ForkNumber, Lsn, RelFileLocator, Xid};
use crate::wal::{ReadRecord, ResourceManager};

use super::records::{
    decode_checkpoint, decode_next_oid, RedoRecordError, SmgrCreate, SmgrTruncate,
    SMGR_TRUNCATE_HEAP, XLOG_CHECKPOINT_ONLINE, XLOG_CHECKPOINT_SHUTDOWN, XLOG_FPI,
    XLOG_FPI_FOR_HINT, XLOG_NEXTOID, XLOG_NOOP, XLOG_SMGR_CREATE, XLOG_SMGR_TRUNCATE,
};
use super::redo::{read_block_for_redo, RecoveryWalFlush, RedoAction, RedoTable};
use super::EngineContext;

const ALL_FORKS: [ForkNumber; 4] = [
    ForkNumber::Main,
    ForkNumber::Fsm,
    ForkNumber::VisibilityMap,
    ForkNumber::Init,
];

/// The replay state of one recovery.
pub(super) struct Replay<'r, 'c, 'b> {
    ctx: &'r mut EngineContext<'c, 'b>,
    table: &'r RedoTable,
    /// The WAL rule while replaying: up to the record being applied.
    pub(super) flush: RecoveryWalFlush,
    /// Forks known to have a file (invariant 2), so that most records cost
    /// no `stat`.
    known_files: HashSet<(RelFileLocator, ForkNumber)>,
}

impl<'r, 'c, 'b> Replay<'r, 'c, 'b> {
    pub(super) fn new(ctx: &'r mut EngineContext<'c, 'b>, table: &'r RedoTable) -> Self {
        Replay {
            ctx,
            table,
            flush: RecoveryWalFlush::new(Lsn::INVALID),
            known_files: HashSet::new(),
        }
    }

    /// Replays `rec`. An error is a PANIC: recovery cannot go on.
    pub(super) fn apply(&mut self, rec: &ReadRecord) -> Result<(), PgError> {
        self.flush.set(rec.end);
        let xid = rec.record.xid();
        // The atomic read spares the two locks for most records.
        if xid.is_normal() && xid >= self.ctx.transam.next_xid() {
            self.ctx.transam.advance_next_xid_past(xid);
        }
        let result = match rec.record.rmgr() {
            ResourceManager::Xlog => self.xlog(rec),
            ResourceManager::Transaction => self.xact(rec),
            ResourceManager::Storage => self.storage(rec),
            ResourceManager::Standby => Ok(()),
            rmgr => self.page(rec, rmgr),
        };
        result.map_err(|e| in_context(e, rec))
    }

    fn xlog(&mut self, rec: &ReadRecord) -> Result<(), PgError> {
        let record = &rec.record;
        match record.info() {
            XLOG_CHECKPOINT_SHUTDOWN | XLOG_CHECKPOINT_ONLINE => {
                let (checkpoint, shutdown) =
                    decode_checkpoint(record).ok_or(RedoRecordError::BadLength {
                        what: "checkpoint",
                        len: record.main_data().len(),
                    })?;
                if checkpoint.next_xid.0 > Xid::FIRST_NORMAL.0 {
                    self.ctx
                        .transam
                        .advance_next_xid_past(Xid(checkpoint.next_xid.0 - 1));
                }
                // As PostgreSQL: an online checkpoint's oid counter is
                // ignored (NEXTOID records track oids), a shutdown
                // checkpoint's is exact.
                if shutdown {
                    self.ctx.transam.set_next_oid(checkpoint.next_oid);
                }
                Ok(())
            }
            XLOG_NEXTOID => {
                self.ctx.transam.set_next_oid(decode_next_oid(record)?);
                Ok(())
            }
            XLOG_NOOP => Ok(()),
            XLOG_FPI | XLOG_FPI_FOR_HINT => {
                self.ensure_files(rec)?;
                for block in record.blocks() {
                    let action = read_block_for_redo(
                        rec.end,
                        record,
                        block.id,
                        self.ctx.buffers,
                        &mut *self.ctx.smgr,
                        &self.flush,
                    )?;
                    if !matches!(action, RedoAction::Restored) {
                        return Err(RedoRecordError::MissingImage(block.id).into());
                    }
                }
                Ok(())
            }
            info => Err(RedoRecordError::UnknownInfo { rmgr: "xlog", info }.into()),
        }
    }

    fn xact(&mut self, rec: &ReadRecord) -> Result<(), PgError> {
        let clog = self.ctx.clog;
        let mut clog_error = None;
        let redo = crate::transam::xact_record::redo(&rec.record, |xid, status| {
            if clog_error.is_none() {
                if let Err(e) = clog.set_status(xid, status, Lsn::INVALID) {
                    clog_error = Some(e);
                }
            }
        })?;
        if let Some(e) = clog_error {
            return Err(e.into());
        }
        self.ctx.transam.advance_next_xid_past(redo.max_xid);
        for rel in redo.dropped_rels {
            self.drop_relation(rel)?;
        }
        Ok(())
    }

    /// Buffers first, then files (invariant 3). A file that cannot be
    /// removed is a WARNING, as in PostgreSQL: the transaction's outcome
    /// does not depend on it.
    fn drop_relation(&mut self, rel: RelFileLocator) -> Result<(), PgError> {
        for fork in ALL_FORKS {
            self.ctx
                .buffers
                .drop_relation_buffers(rel, fork, BlockNumber(0))?;
            self.known_files.remove(&(rel, fork));
        }
        if let Err(e) = self.ctx.smgr.unlink(rel, None, true) {
            log::warn!("{}", PgError::from(e).message);
        }
        Ok(())
    }

    fn storage(&mut self, rec: &ReadRecord) -> Result<(), PgError> {
        match rec.record.info() {
            XLOG_SMGR_CREATE => {
                let create = SmgrCreate::decode(&rec.record)?;
                self.ctx.smgr.create(create.rel, create.fork, true)?;
                self.known_files.insert((create.rel, create.fork));
                Ok(())
            }
            XLOG_SMGR_TRUNCATE => {
                let truncate = SmgrTruncate::decode(&rec.record)?;
                self.truncate(truncate)
            }
            info => Err(RedoRecordError::UnknownInfo { rmgr: "smgr", info }.into()),
        }
    }

    /// PostgreSQL's `smgr_redo` for a truncation: the main fork is created
    /// if missing (later records may use it), its buffers past the new end
    /// are dropped, and the file is shortened if it is longer. The visibility
    /// map does not exist yet; the free space map is not WAL-logged (VACUUM
    /// cleared the cut blocks' entries before logging, and a stale entry is
    /// only a hint, `heap::fsm` F1): their flags are accepted and ignored.
    fn truncate(&mut self, t: SmgrTruncate) -> Result<(), PgError> {
        if t.flags & SMGR_TRUNCATE_HEAP == 0 {
            return Ok(());
        }
        let main = ForkNumber::Main;
        if !self.ctx.smgr.exists(t.rel, main)? {
            self.ctx.smgr.create(t.rel, main, true)?;
        }
        self.known_files.insert((t.rel, main));
        self.ctx
            .buffers
            .drop_relation_buffers(t.rel, main, t.nblocks)?;
        if self.ctx.smgr.nblocks(t.rel, main)? > t.nblocks.0 {
            self.ctx.smgr.truncate(t.rel, main, t.nblocks.0)?;
        }
        Ok(())
    }

    fn page(&mut self, rec: &ReadRecord, rmgr: ResourceManager) -> Result<(), PgError> {
        let redo = self
            .table
            .get(rmgr)
            .ok_or(RedoRecordError::NoRedoRoutine(rmgr.name()))?;
        self.ensure_files(rec)?;
        redo(
            rec.start,
            rec.end,
            &rec.record,
            self.ctx.buffers,
            &mut *self.ctx.smgr,
            &self.flush,
        )
    }

    /// Invariant 2.
    fn ensure_files(&mut self, rec: &ReadRecord) -> Result<(), PgError> {
        for block in rec.record.blocks() {
            let key = (block.locator, block.fork);
            if self.known_files.contains(&key) {
                continue;
            }
            if !self.ctx.smgr.exists(block.locator, block.fork)? {
                self.ctx.smgr.create(block.locator, block.fork, true)?;
            }
            self.known_files.insert(key);
        }
        Ok(())
    }
}

/// Every replay error is a PANIC naming the record, as PostgreSQL's
/// `CONTEXT:  WAL redo at 0/16B3F28 for Heap/INSERT`.
fn in_context(e: PgError, rec: &ReadRecord) -> PgError {
    let context = format!(
        "WAL redo at {} for {}/{:#04x}",
        rec.start,
        rec.record.rmgr(),
        rec.record.info()
    );
    let detail = match e.detail.clone() {
        Some(d) => format!("{d}\n{context}"),
        None => context,
    };
    PgError {
        severity: pgerror::Severity::Panic,
        detail: Some(detail),
        ..e
    }
}
