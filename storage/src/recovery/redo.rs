//! The resource-manager dispatch table for page redo, and the helpers every
//! page redo routine uses (PostgreSQL's `RmgrTable` and
//! `XLogReadBufferForRedo` in `xlogutils.c`).
//!
//! The startup process replays XLOG, Transaction and Storage records itself
//! (they touch counters, the commit log and files: `replay.rs`); records of
//! the page resource managers (Heap, Btree, ...) go to the routine
//! registered in a [`RedoTable`]. The lead wires the heap:
//!
//! ```text
//!   let mut table = RedoTable::new();
//!   table.register(ResourceManager::Heap, heap::heapam::heap_redo);
//!   startup(&mut ctx, &StartupOptions { redo: &table, .. })
//! ```
//!
//! A page redo routine, for each block the record changes:
//!
//! ```text
//!   match read_block_for_redo(end, record, block_id, buffers, smgr, wal)? {
//!       NeedsRedo(mut page) => { change the page; finish_redo_block(&mut page, end) }
//!       Restored | Done      => {}   // image applied, or the change is on the page
//!   }
//! ```
//!
//! # Invariants
//!
//! 1. A block is changed by redo only if its page LSN is below the end of
//!    the record (idempotence); afterwards its LSN is that end.
//! 2. A full-page image is applied whatever the page holds (the page on disk
//!    may be torn), and its LSN set to the end of the record.
//! 3. A block past the end of its fork is reached by extending the fork
//!    with zero pages, as PostgreSQL's `XLogReadBufferExtended` does: the
//!    relation may have been extended before the crash with the extension
//!    never reaching disk.
//!
//! # Locking
//!
//! The returned page is pinned and locked exclusively; drop it before
//! taking the next block's lock in a different order than normal running
//! uses (the startup process is alone during replay, so no deadlock is
//! possible, but the buffer manager forbids taking a held lock twice).
//!
//! # Crash safety
//!
//! Pages changed by replay are written only after the WAL up to their LSN,
//! which is on disk already (`RecoveryWalFlush` checks it), and are made
//! durable by the end-of-recovery checkpoint.

use std::cell::Cell;

use pgerror::{PgError, Severity};

use crate::buffer::{BlockStorage, BufferManager, ExclusiveContentGuard};
use crate::clog::WalFlush;
use crate::page::Page;
use crate::types::{BlockNumber, ForkNumber, Lsn, RelFileLocator};
use crate::wal::{DecodedRecord, ResourceManager};

/// A page resource manager's redo routine: `(start, end, record, buffers,
/// smgr, wal)`, where `start` is the record's LSN and `end` the position
/// after it (what page LSNs are set to). An `Err` stops recovery.
pub type RedoFn = fn(
    Lsn,
    Lsn,
    &DecodedRecord,
    &mut BufferManager<'_>,
    &mut dyn BlockStorage,
    &dyn WalFlush,
) -> Result<(), PgError>;

/// Which redo routine replays each page resource manager's records.
/// XLOG, Transaction, Storage (built in) and Standby (nothing to replay
/// without hot standby) cannot be registered.
#[derive(Clone)]
pub struct RedoTable {
    handlers: [Option<RedoFn>; 256],
}

impl Default for RedoTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RedoTable {
    /// A table with no page resource manager.
    pub fn new() -> RedoTable {
        RedoTable {
            handlers: [None; 256],
        }
    }

    /// Makes `redo` replay `rmgr`'s records. Panics for the built-in
    /// resource managers: a wiring bug.
    pub fn register(&mut self, rmgr: ResourceManager, redo: RedoFn) -> &mut Self {
        assert!(
            !is_builtin(rmgr),
            "resource manager {rmgr} is replayed by the startup process itself"
        );
        self.handlers[rmgr as usize] = Some(redo);
        self
    }

    pub fn get(&self, rmgr: ResourceManager) -> Option<RedoFn> {
        self.handlers[rmgr as usize]
    }
}

/// Resource managers `replay.rs` handles without the table.
pub(super) fn is_builtin(rmgr: ResourceManager) -> bool {
    matches!(
        rmgr,
        ResourceManager::Xlog
            | ResourceManager::Transaction
            | ResourceManager::Storage
            | ResourceManager::Standby
    )
}

/// What [`read_block_for_redo`] found (PostgreSQL's `XLogRedoAction`).
pub enum RedoAction<'m> {
    /// The change is not on the page yet: apply it, then
    /// [`finish_redo_block`].
    NeedsRedo(ExclusiveContentGuard<'m>),
    /// The record's full-page image was restored; nothing more to do.
    Restored,
    /// The page already has this change (its LSN is at or past `end`).
    Done,
}

/// Brings block `block_id` of `record` into a buffer for replay (invariants
/// 1-3): restores its image if it has one, otherwise reads it (zeroed
/// instead if the record re-initialises it) and compares LSNs.
pub fn read_block_for_redo<'m>(
    end: Lsn,
    record: &DecodedRecord,
    block_id: u8,
    buffers: &'m BufferManager<'_>,
    smgr: &mut dyn BlockStorage,
    wal: &dyn WalFlush,
) -> Result<RedoAction<'m>, PgError> {
    let block = record.block(block_id).ok_or_else(|| {
        PgError::internal(format!(
            "WAL record at end {end} has no block reference {block_id}"
        ))
        .with_severity(Severity::Panic)
    })?;
    if block.has_image() {
        let mut page = buffer_for_redo(
            buffers,
            smgr,
            wal,
            block.locator,
            block.fork,
            block.blkno,
            true,
        )?;
        block.restore_image(&mut page);
        finish_redo_block(&mut page, end);
        return Ok(RedoAction::Restored);
    }
    let page = buffer_for_redo(
        buffers,
        smgr,
        wal,
        block.locator,
        block.fork,
        block.blkno,
        block.will_init,
    )?;
    if Page::new(&*page).lsn() >= end {
        Ok(RedoAction::Done)
    } else {
        Ok(RedoAction::NeedsRedo(page))
    }
}

/// After redo changed a page: its LSN becomes the record's end and the
/// buffer is marked dirty.
pub fn finish_redo_block(page: &mut ExclusiveContentGuard<'_>, end: Lsn) {
    Page::new(&mut **page).set_lsn(end);
    page.mark_dirty();
}

/// The buffer of `blkno`, locked exclusively; zeroed (unless already in a
/// buffer) if `zero`; the fork extended with zero pages up to it if it is
/// past the end (invariant 3). The fork's first file must exist (the
/// replay loop creates missing ones before calling a page routine).
fn buffer_for_redo<'m>(
    buffers: &'m BufferManager<'_>,
    smgr: &mut dyn BlockStorage,
    wal: &dyn WalFlush,
    rel: RelFileLocator,
    fork: ForkNumber,
    blkno: BlockNumber,
    zero: bool,
) -> Result<ExclusiveContentGuard<'m>, PgError> {
    let nblocks = smgr.nblocks(rel, fork)?;
    if blkno.0 < nblocks {
        return Ok(if zero {
            buffers.read_buffer_zero_and_lock(smgr, wal, rel, fork, blkno)?
        } else {
            buffers
                .read_buffer(smgr, wal, rel, fork, blkno)?
                .lock_exclusive()
        });
    }
    loop {
        let page = buffers.extend_buffer(smgr, wal, rel, fork)?;
        match page.block().cmp(&blkno) {
            std::cmp::Ordering::Less => continue,
            std::cmp::Ordering::Equal => return Ok(page),
            // Only the startup process runs during replay: nobody else
            // can have extended the fork meanwhile.
            std::cmp::Ordering::Greater => {
                return Err(PgError::internal(format!(
                    "extending {} for redo passed block {}",
                    crate::smgr::relpath(rel, fork),
                    blkno.0
                ))
                .with_severity(Severity::Panic))
            }
        }
    }
}

/// The WAL rule during replay: the WAL is not open for insertion yet, and
/// every page LSN redo sets is at most the end of the record being
/// replayed, which was read from disk. A flush request beyond it means a
/// page LSN from the future: corruption, refused as PostgreSQL's
/// `XLogFlush` refuses a request past the end of WAL.
pub(super) struct RecoveryWalFlush {
    replayed_upto: Cell<Lsn>,
}

impl RecoveryWalFlush {
    pub(super) fn new(upto: Lsn) -> RecoveryWalFlush {
        RecoveryWalFlush {
            replayed_upto: Cell::new(upto),
        }
    }

    pub(super) fn set(&self, upto: Lsn) {
        self.replayed_upto.set(upto);
    }
}

impl WalFlush for RecoveryWalFlush {
    fn flush_wal_up_to(&self, lsn: Lsn) -> Result<(), PgError> {
        let upto = self.replayed_upto.get();
        if lsn <= upto {
            Ok(())
        } else {
            Err(PgError::internal(format!(
                "xlog flush request {lsn} is not satisfied --- flushed only to {upto}"
            )))
        }
    }
}
