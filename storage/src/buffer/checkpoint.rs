//! Writing and dropping buffers in bulk: the checkpointer's
//! [`BufferManager::checkpoint_buffers`], the bgwriter's
//! [`BufferManager::bgwriter_lru_pass`], and, for truncation and drop,
//! [`BufferManager::flush_relation_buffers`] and
//! [`BufferManager::drop_relation_buffers`] (PostgreSQL's `BufferSync`,
//! `BgBufferSync`, `SyncOneBuffer`, `FlushRelationBuffers`,
//! `DropRelFileNodeBuffers`, `InvalidateBuffer`). The rules (R1.., L1..,
//! C1..) are stated in the header of [`crate::buffer`].
//!
//! ```text
//!  checkpoint_buffers:
//!    1. every buffer: header spinlock; DIRTY & PERMANENT? set CHECKPOINT_NEEDED, note tag
//!    2. sort the noted buffers by (relation, fork, block): sequential writes
//!    3. each one still CHECKPOINT_NEEDED: pin, content lock S, flush_buffer
//!       (which clears CHECKPOINT_NEEDED with DIRTY); progress(done, total)
//! ```
//!
//! # Invariants
//!
//! 1. A buffer marked in step 1 is written by this checkpoint unless some
//!    other process wrote it in between (its write clears
//!    `BM_CHECKPOINT_NEEDED`), or it was dropped. Buffers dirtied after step
//!    1 are not this checkpoint's business: their changes' WAL lies after
//!    the checkpoint's redo point.
//! 2. `drop_relation_buffers` never writes: the caller has WAL-logged (or is
//!    replaying) the truncation or drop that makes the pages garbage.
//!
//! # Locking
//!
//! Every function here waits for content locks (L6): its caller must hold
//! none (checked) and must be the only process that locks the relation's
//! buffers exclusively (the checkpointer and bgwriter never do; callers of
//! the relation functions hold the relation's AccessExclusiveLock).
//! Invalidation takes the old tag's partition lock exclusively, then the
//! header spinlock (L4, L5); it waits for others' pins to go away by polling.
//!
//! # Crash safety
//!
//! `checkpoint_buffers` writes; it does not fsync. The checkpoint is
//! complete only after the writes of every process are fsynced (C3).

use std::time::Duration;

use crate::clog::WalFlush;
use crate::types::{BlockNumber, ForkNumber, RelFileLocator};

use super::desc::{BufferId, TagWords, BUF_REFCOUNT_MASK};
use super::desc::{BM_CHECKPOINT_NEEDED, BM_DIRTY, BM_PERMANENT, BM_TAG_VALID, BM_VALID};
use super::error::BufferError;
use super::manager::{BlockStorage, BufferManager};

/// What [`BufferManager::checkpoint_buffers`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointBufferStats {
    /// Dirty buffers found at the start (marked `BM_CHECKPOINT_NEEDED`).
    pub buffers_to_write: usize,
    /// Of those, the ones this call wrote (others were written meanwhile by
    /// another process).
    pub buffers_written: usize,
}

/// What one [`BufferManager::bgwriter_lru_pass`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BgWriterStats {
    pub buffers_scanned: usize,
    pub buffers_written: usize,
    /// Unpinned buffers with a zero usage count seen: the next victims.
    pub buffers_reusable: usize,
}

/// What [`BufferManager::sync_one_buffer`] found.
struct SyncResult {
    written: bool,
    reusable: bool,
}

impl BufferManager<'_> {
    /// Write every buffer that is dirty now (PostgreSQL's `BufferSync`),
    /// calling `progress(done, total)` after each so that the checkpointer
    /// can pace itself over `checkpoint_completion_target`. Call it after
    /// the checkpoint's redo point is fixed; fsync afterwards (C3).
    pub fn checkpoint_buffers(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<CheckpointBufferStats, BufferError> {
        self.assert_no_content_locks("checkpoint_buffers");
        let mut to_write: Vec<(TagWords, BufferId)> = Vec::new();
        for desc in self.pool.descs {
            let mut hdr = desc.lock_header();
            if !hdr.get().has(BM_DIRTY | BM_PERMANENT | BM_TAG_VALID) {
                continue;
            }
            hdr.state |= BM_CHECKPOINT_NEEDED;
            let words = desc.tag_words();
            drop(hdr);
            // Sorted as words: relation, fork, block (file order).
            to_write.push((words, desc.id()));
        }
        to_write.sort_unstable();
        let total = to_write.len();
        let mut written = 0;
        for (done, (_, id)) in to_write.iter().enumerate() {
            let still_needed = self.pool.desc(*id).load_state().has(BM_CHECKPOINT_NEEDED);
            if still_needed && self.sync_one_buffer(smgr, wal, *id, false)?.written {
                written += 1;
            }
            progress(done + 1, total);
        }
        Ok(CheckpointBufferStats {
            buffers_to_write: total,
            buffers_written: written,
        })
    }

    /// One bgwriter round (PostgreSQL's `BgBufferSync` scan): from clock
    /// position `start_tick` (a value of [`super::BufferPool::clock_ticks`],
    /// at or ahead of the hand), look at up to `max_scan` buffers in clock
    /// order and write the dirty ones the clock sweep would reuse next (no
    /// pins, usage count 0), so that backends find clean victims. Stops
    /// after writing `max_pages` (`bgwriter_lru_maxpages`) or once
    /// `reusable_target` reusable buffers (clean already, or just written)
    /// were seen. The bgwriter chooses the start and the target from the
    /// allocation rate and where its last round stopped.
    pub fn bgwriter_lru_pass(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        start_tick: u64,
        max_scan: usize,
        max_pages: usize,
        reusable_target: usize,
    ) -> Result<BgWriterStats, BufferError> {
        self.assert_no_content_locks("bgwriter_lru_pass");
        let n = self.pool.nbuffers() as u64;
        let mut stats = BgWriterStats::default();
        for i in 0..max_scan as u64 {
            if stats.buffers_written >= max_pages || stats.buffers_reusable >= reusable_target {
                break;
            }
            let id = BufferId(((start_tick + i) % n) as u32);
            let r = self.sync_one_buffer(smgr, wal, id, true)?;
            stats.buffers_scanned += 1;
            stats.buffers_reusable += usize::from(r.reusable);
            stats.buffers_written += usize::from(r.written);
        }
        Ok(stats)
    }

    /// Write buffer `id` if it is valid and dirty (PostgreSQL's
    /// `SyncOneBuffer`); with `skip_recently_used`, only if it also has no
    /// pins and a zero usage count.
    fn sync_one_buffer(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        id: BufferId,
        skip_recently_used: bool,
    ) -> Result<SyncResult, BufferError> {
        let hdr = self.pool.desc(id).lock_header();
        let s = hdr.get();
        let reusable = s.refcount() == 0 && s.usage_count() == 0;
        if (skip_recently_used && !reusable) || !s.has(BM_VALID | BM_DIRTY) {
            return Ok(SyncResult {
                written: false,
                reusable,
            });
        }
        let pinned = self.pin_locked(id, hdr);
        let _content = pinned.lock_shared();
        let written = self.flush_buffer(smgr, wal, id)?;
        Ok(SyncResult { written, reusable })
    }

    /// Write every dirty buffer of `rel` (all forks), e.g. before copying
    /// its files (PostgreSQL's `FlushRelationBuffers`). Returns the number
    /// written.
    pub fn flush_relation_buffers(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        rel: RelFileLocator,
    ) -> Result<usize, BufferError> {
        self.assert_no_content_locks("flush_relation_buffers");
        let of_rel = |w: &TagWords| w[..3] == [rel.spc_oid.0, rel.db_oid.0, rel.rel_number.0];
        let mut written = 0;
        for desc in self.pool.descs {
            // Unlocked pre-check (desc I2): most buffers are someone else's.
            if !of_rel(&desc.tag_words()) {
                continue;
            }
            let hdr = desc.lock_header();
            if !hdr.get().has(BM_TAG_VALID | BM_VALID | BM_DIRTY) || !of_rel(&desc.tag_words()) {
                continue;
            }
            let pinned = self.pin_locked(desc.id(), hdr);
            let _content = pinned.lock_shared();
            written += usize::from(self.flush_buffer(smgr, wal, desc.id())?);
        }
        Ok(written)
    }

    /// Forget, without writing, every buffer of `rel`'s `fork` at or past
    /// `from_block`: the relation is being truncated to `from_block` blocks
    /// or dropped (from 0) (PostgreSQL's `DropRelFileNodeBuffers`). Waits
    /// for other processes' pins (the checkpointer or bgwriter writing one).
    /// Returns the number dropped. The caller holds no pin on them.
    pub fn drop_relation_buffers(
        &self,
        rel: RelFileLocator,
        fork: ForkNumber,
        from_block: BlockNumber,
    ) -> Result<usize, BufferError> {
        let rel_words = [rel.spc_oid.0, rel.db_oid.0, rel.rel_number.0, fork as u32];
        let matches = |w: &TagWords| w[..4] == rel_words && w[4] >= from_block.0;
        let mut dropped = 0;
        for desc in self.pool.descs {
            if matches(&desc.tag_words()) && self.invalidate_buffer(desc.id(), &matches)? {
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// Remove `id` from the mapping table and make it empty, if its tag
    /// still satisfies `matches` (PostgreSQL's `InvalidateBuffer`).
    fn invalidate_buffer(
        &self,
        id: BufferId,
        matches: &dyn Fn(&TagWords) -> bool,
    ) -> Result<bool, BufferError> {
        let desc = self.pool.desc(id);
        let mut waits: u32 = 0;
        loop {
            let hdr = desc.lock_header();
            if !hdr.get().has(BM_TAG_VALID) || !matches(&desc.tag_words()) {
                return Ok(false);
            }
            let tag = desc.tag();
            drop(hdr);
            let hash = tag.hash_code();
            let part = self.pool.mapping.partition_lock(hash).acquire_exclusive();
            let mut hdr = desc.lock_header();
            if !hdr.get().has(BM_TAG_VALID) || desc.tag_words() != tag.words() {
                // Evicted and reused meanwhile: no longer ours to drop.
                return Ok(false);
            }
            if hdr.get().refcount() != 0 {
                drop(hdr);
                drop(part);
                if self.private_pins(id) > 0 {
                    return Err(BufferError::PinnedByThisProcess { id });
                }
                // Another process is writing or looking at it; it lets go soon.
                self.wait_io(id);
                waits += 1;
                if waits < 100 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
                continue;
            }
            desc.clear_tag();
            hdr.state &= BUF_REFCOUNT_MASK;
            drop(hdr);
            self.pool.mapping.delete(&tag, hash, id);
            return Ok(true);
        }
    }

    fn assert_no_content_locks(&self, what: &str) {
        assert!(
            !self.holds_content_locks(),
            "{what} called while holding a buffer content lock (rule L6)"
        );
    }
}
