//! WAL insertion into the shared WAL buffers: PostgreSQL's
//! `XLogInsertRecord`, `ReserveXLogInsertLocation`, `GetXLogBuffer`,
//! `AdvanceXLInsertBuffer` and `WaitXLogInsertionsToFinish`, on the region
//! of `shmem.rs`.
//!
//! Every process that logs changes (backends, checkpointer, startup at the
//! end of recovery) calls [`SharedWal::insert`]; many insert at once, and
//! no global lock is held while a record is copied.
//!
//! # The insertion protocol, step by step
//!
//! 1. **Take an insertion slot**: the lock of one of the 8 slots, exclusive
//!    (the slot this process used last; if that one was busy, wait for it
//!    and try the next one next time). Mark the slot's position unknown.
//! 2. **Check the redo pointer** ([`SharedWal::insert_checked`] only): if a
//!    checkpoint moved it past a page this record changes without a full
//!    image, give the slot back and let the caller rebuild the record.
//! 3. **Reserve** `maxalign(len)` bytes: under the insert-position spinlock,
//!    add them to `CurrBytePos` (a count of usable bytes, page headers left
//!    out, so the sum needs no knowledge of pages) and swap `PrevBytePos`.
//!    This gives `[start, end)` and the prev link. Publish `start` as the
//!    slot's `inserting_at` (the page start instead, if `start` is just
//!    after a page header: that page may not be initialised yet).
//! 4. **Seal** the record with its prev link (the CRC is completed).
//! 5. **Copy** it page by page. For each page, find its buffer; if the
//!    buffer does not hold that page yet, publish our progress in
//!    `inserting_at` and *advance* the buffers (below). On each page the
//!    record continues onto, write the page header with
//!    FIRST_IS_CONTRECORD and `rem_len`.
//! 6. **Release**: set `inserting_at` to NOT_INSERTING (waking waiters),
//!    drop the slot lock, and return `[start, end)`. The caller decides
//!    about durability: a commit calls `flush(end)`.
//!
//! **Advancing the buffers** (`advance_insert_buffer`), under
//! WALBufMappingLock: while the page we need is not initialised, take the
//! next buffer in turn; if it still holds a page that is not written,
//! release WALBufMappingLock, wait for insertions into that page to finish,
//! write it under WALWriteLock (and whatever whole pages are finished after
//! it), and start over. Otherwise zero the buffer, write the page header
//! (long on a segment's first page), and publish its end in `xlblocks`.
//!
//! **Waiting for insertions** (`wait_for_insertions(upto)`): read the end
//! of reserved WAL, then for each slot sleep until its `inserting_at` is at
//! least `upto`; the smallest `inserting_at` seen (or the reserved end)
//! bounds the WAL known complete: it may be written.
//!
//! # Invariants
//!
//! 1. Reserved ranges are disjoint and consecutive; each record's prev link
//!    is the start of the range reserved just before it.
//! 2. Every byte of the stream has one writer: the page header by the
//!    process that initialises the buffer (FIRST_IS_CONTRECORD and
//!    `rem_len` by the inserter whose record continues onto the page), the
//!    record bytes by their reserver. Padding stays as zeroed.
//! 3. A buffer is re-used only after its page is written
//!    (`written_upto >= xlblocks[i]`), and written only once the insertions
//!    into it have finished: a page is never lost or written torn by us.
//! 4. An inserter's `inserting_at` never exceeds the position it still has
//!    to write; it is raised only to a page start before it touches that
//!    page's header, so no page whose header may still change is written.
//! 5. `flushed_upto <= written_upto <= initialized_upto`, and
//!    `written_upto <=` the end of reserved WAL.
//!
//! # Locking
//!
//! Lock order (a process holding several took them in this order):
//!
//! 1. an insertion slot's LWLock (one; or all 8 in index order, by
//!    [`SharedWal::advance_redo_ptr`] only);
//! 2. WALBufMappingLock;
//! 3. WALWriteLock;
//! 4. the insert-position spinlock (a few instructions, no other lock
//!    taken inside it; also taken alone).
//!
//! Rules:
//!
//! 1. WALBufMappingLock and WALWriteLock are never held together: the
//!    buffer advance releases the first before it waits or writes.
//! 2. WALWriteLock is taken while holding an insertion slot only in the
//!    buffer advance, as PostgreSQL does; the slot's `inserting_at` is then
//!    already raised to the page being waited for.
//! 3. Waiting for insertions happens holding no lock, or holding one's own
//!    insertion slot with `inserting_at` published (step 5), never while
//!    holding WALBufMappingLock.
//! 4. Under WALWriteLock one may wait for insertions only up to a point
//!    already known finished (the flush does, to pick up the records that
//!    finished while it waited for the lock): only slots whose position is
//!    still unknown can then make it sleep, and those are between steps 1
//!    and 3, which take no lock.
//! 5. Deadlock freedom: an inserter waits only for insertions below the
//!    page it needs minus `wal_buffers`, and every inserter that waits has
//!    published its page start first; two inserters cannot each be below
//!    the other's threshold. A flusher holds no slot.
//!
//! # Crash safety
//!
//! Insertion makes nothing durable: a record is durable once `flush` has
//! returned for its end, and a commit is acknowledged only after that.
//! An insertion that fails half-way (an I/O error while freeing a buffer)
//! leaves a hole: the region is marked broken, every later flush fails (so
//! no commit after the hole is acknowledged), and the caller must PANIC;
//! replay stops at the hole. A process that dies mid-insertion keeps its
//! slot's lock and `inserting_at` below its range, so flushes past it wait
//! for the crash cycle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use shmem_layout::lwlock::LWLockGuard;

use crate::types::Lsn;
use crate::wal::record::AssembledRecord;
use crate::wal::segment::{
    bytepos_to_end_lsn, bytepos_to_lsn, maxalign, page_header_bytes, page_start, AppendedRecord,
    PageHeader, TimeLineId, WAL_PAGE_BYTES,
};
use crate::wal::shmem::{
    InsertionSlot, WalRegion, WalShmem, WalStats, NOT_INSERTING, NO_PREV, NUM_INSERTION_SLOTS,
};
use crate::wal::write::SegmentWriter;
use crate::wal::WalError;

const PAGE: u64 = WAL_PAGE_BYTES as u64;

/// This process's handle on the shared WAL: the region, the `pg_wal`
/// directory, and the process-local state (its open segment file, its
/// preferred insertion slot). One per process, made after `fork` (it owns
/// an open file and a mutex); cheap to create.
pub struct SharedWal<'a> {
    pub(super) region: WalRegion<'a>,
    pub(super) pg_wal: PathBuf,
    preferred_slot: AtomicUsize,
    /// The segment file this process last wrote; used only while holding
    /// WALWriteLock, so the mutex is never contended across processes.
    pub(super) writer: Mutex<SegmentWriter>,
}

/// Where a reservation landed.
struct Reservation {
    start: Lsn,
    end: Lsn,
    prev: Lsn,
}

impl<'a> SharedWal<'a> {
    /// This process's handle on `region`, writing segment files in `pg_wal`.
    pub fn new(region: WalRegion<'a>, pg_wal: impl Into<PathBuf>) -> SharedWal<'a> {
        SharedWal {
            region,
            pg_wal: pg_wal.into(),
            preferred_slot: AtomicUsize::new(std::process::id() as usize % NUM_INSERTION_SLOTS),
            writer: Mutex::new(SegmentWriter::default()),
        }
    }

    pub(super) fn ctl(&self) -> &'a WalShmem {
        self.region.ctl
    }

    /// Inserts `record` and returns where it went (`end` is what a commit
    /// flushes). An `Err` means the WAL is broken: PANIC.
    pub fn insert(&self, record: AssembledRecord) -> Result<AppendedRecord, WalError> {
        Ok(self
            .insert_checked(record, Lsn::INVALID)?
            .expect("without an fpw_lsn an insertion is never refused"))
    }

    /// Inserts `record` unless the redo pointer has reached `fpw_lsn`: the
    /// oldest page LSN among the pages the record changes *without* a
    /// full-page image (PostgreSQL's `fpw_lsn`; [`Lsn::INVALID`] if none).
    /// `None` means a checkpoint started since the record was built: build
    /// it again with the images [`redo_ptr`](Self::redo_ptr) now calls for.
    pub fn insert_checked(
        &self,
        record: AssembledRecord,
        fpw_lsn: Lsn,
    ) -> Result<Option<AppendedRecord>, WalError> {
        self.check_usable()?;
        let size = maxalign(u64::from(record.total_len()));
        let (slot, guard) = self.acquire_slot();
        slot.mark_position_unknown();
        // Stable while we hold a slot (only advance_redo_ptr writes it).
        let redo = self.ctl().insert.redo_rec_ptr.load(Ordering::Acquire);
        if fpw_lsn.is_valid() && fpw_lsn.0 <= redo {
            slot.set_inserting_at(NOT_INSERTING);
            return Ok(None);
        }
        let r = self.reserve(size);
        slot.set_inserting_at(progress_mark(r.start).0);
        let bytes = record.seal(r.prev);
        match self.copy_record(slot, &bytes, r.start) {
            Ok(last_byte_end) => {
                debug_assert_eq!(Lsn(maxalign(last_byte_end.0)), r.end);
                slot.set_inserting_at(NOT_INSERTING);
                drop(guard);
                Ok(Some(AppendedRecord {
                    start: r.start,
                    end: r.end,
                }))
            }
            Err(e) => {
                // Our range is a hole from here on. Marked broken, the WAL
                // refuses every flush, so nothing past the hole is ever
                // acknowledged; inserting_at stays below the hole until
                // another inserter takes the slot, holding up flushers that
                // are already waiting until they see the mark.
                self.ctl().config.broken.store(1, Ordering::SeqCst);
                log::error!("WAL insertion at {} failed, WAL is broken: {e}", r.start);
                drop(guard);
                Err(e)
            }
        }
    }

    /// Where the next record will start (PostgreSQL's
    /// `GetXLogInsertRecPtr`, `pg_current_wal_insert_lsn()`).
    pub fn current_insert_lsn(&self) -> Lsn {
        let ins = &self.ctl().insert;
        let pos = {
            let _g = ins.lock.acquire();
            ins.curr_byte_pos.load(Ordering::Relaxed)
        };
        bytepos_to_lsn(pos)
    }

    /// The end of reserved WAL as a flush target: at a page boundary, the
    /// boundary itself.
    pub fn reserved_end_lsn(&self) -> Lsn {
        let ins = &self.ctl().insert;
        let pos = {
            let _g = ins.lock.acquire();
            ins.curr_byte_pos.load(Ordering::Relaxed)
        };
        bytepos_to_end_lsn(pos)
    }

    /// The redo pointer of the latest checkpoint: a record changing a page
    /// whose LSN is at or below it must carry the page's full image.
    pub fn redo_ptr(&self) -> Lsn {
        Lsn(self.ctl().insert.redo_rec_ptr.load(Ordering::Acquire))
    }

    /// Checkpoint: holding every insertion slot (so no insertion is in
    /// progress and none decides about full-page images meanwhile), makes
    /// the current insert position the redo pointer, and returns it
    /// (PostgreSQL's `CreateCheckPoint` redo determination).
    pub fn advance_redo_ptr(&self) -> Lsn {
        let slots = &self.ctl().slots;
        let guards: [LWLockGuard<'_>; NUM_INSERTION_SLOTS] =
            std::array::from_fn(|i| slots[i].lock.acquire_exclusive());
        let redo = self.current_insert_lsn();
        self.ctl()
            .insert
            .redo_rec_ptr
            .store(redo.0, Ordering::Release);
        drop(guards);
        redo
    }

    /// Sets the redo pointer to the last checkpoint's, at start-up.
    pub fn set_redo_ptr(&self, redo: Lsn) {
        let slots = &self.ctl().slots;
        let guards: [LWLockGuard<'_>; NUM_INSERTION_SLOTS] =
            std::array::from_fn(|i| slots[i].lock.acquire_exclusive());
        self.ctl()
            .insert
            .redo_rec_ptr
            .store(redo.0, Ordering::Release);
        drop(guards);
    }

    /// Counters summed over all processes.
    pub fn stats(&self) -> WalStats {
        self.region.stats()
    }

    pub(super) fn timeline(&self) -> TimeLineId {
        TimeLineId(self.ctl().config.timeline.load(Ordering::Relaxed))
    }

    /// Whether start-up (recovery) has opened WAL for insertion yet.
    pub fn is_started(&self) -> bool {
        self.ctl().config.started.load(Ordering::Acquire) != 0
    }

    pub(super) fn check_usable(&self) -> Result<(), WalError> {
        let config = &self.ctl().config;
        if config.started.load(Ordering::Acquire) == 0 {
            return Err(WalError::NotStarted);
        }
        if config.broken.load(Ordering::Acquire) != 0 {
            return Err(WalError::Broken);
        }
        Ok(())
    }

    /// Step 1: this process's slot, or the next one after a wait.
    fn acquire_slot(&self) -> (&'a InsertionSlot, LWLockGuard<'a>) {
        let i = self.preferred_slot.load(Ordering::Relaxed);
        let slot = &self.ctl().slots[i];
        if let Some(guard) = slot
            .lock
            .try_acquire(shmem_layout::lwlock::LWLockMode::Exclusive)
        {
            return (slot, guard);
        }
        self.preferred_slot
            .store((i + 1) % NUM_INSERTION_SLOTS, Ordering::Relaxed);
        (slot, slot.lock.acquire_exclusive())
    }

    /// Step 3 (PostgreSQL's `ReserveXLogInsertLocation`).
    fn reserve(&self, size: u64) -> Reservation {
        let ins = &self.ctl().insert;
        let (start_pos, prev_pos) = {
            let _g = ins.lock.acquire();
            let start = ins.curr_byte_pos.load(Ordering::Relaxed);
            ins.curr_byte_pos.store(start + size, Ordering::Relaxed);
            let prev = ins.prev_byte_pos.load(Ordering::Relaxed);
            ins.prev_byte_pos.store(start, Ordering::Relaxed);
            (start, prev)
        };
        Reservation {
            start: bytepos_to_lsn(start_pos),
            end: bytepos_to_end_lsn(start_pos + size),
            prev: if prev_pos == NO_PREV {
                Lsn::INVALID
            } else {
                bytepos_to_lsn(prev_pos)
            },
        }
    }

    /// Step 5 (PostgreSQL's `CopyXLogRecordToWAL`): returns the end of the
    /// last byte copied.
    fn copy_record(&self, slot: &InsertionSlot, bytes: &[u8], start: Lsn) -> Result<Lsn, WalError> {
        let (timeline, system_id) = (
            self.timeline(),
            self.ctl().config.system_id.load(Ordering::Relaxed),
        );
        let mut pos = start;
        let mut rest = bytes;
        let mut idx = self.get_buffer(slot, pos)?;
        loop {
            let offset = (pos.0 % PAGE) as usize;
            let n = rest.len().min(WAL_PAGE_BYTES - offset);
            // SAFETY: buffer `idx` holds the page of `pos` until our
            // insertion finishes (invariant 3: it cannot be written, so not
            // re-used, while our inserting_at is below it); these bytes are
            // in our reservation, so no one else writes them (invariant 2);
            // offset + n <= WAL_PAGE_BYTES.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    rest.as_ptr(),
                    self.region.page_ptr(idx).add(offset),
                    n,
                );
            }
            pos = Lsn(pos.0 + n as u64);
            rest = &rest[n..];
            if rest.is_empty() {
                return Ok(pos);
            }
            // `pos` is a page boundary: the record continues on the next page.
            idx = self.get_buffer(slot, pos)?;
            let remaining = u32::try_from(rest.len()).expect("records are below 1 GB");
            let header = PageHeader::for_page(pos, timeline, system_id, remaining);
            let len = header.encoded_len();
            // SAFETY: as above; the header of a page a record continues onto
            // is ours to complete (invariant 2), and no writer reads it yet
            // (invariant 4).
            unsafe {
                std::ptr::copy_nonoverlapping(
                    header.encode().as_ptr(),
                    self.region.page_ptr(idx),
                    len,
                );
            }
            pos = Lsn(pos.0 + len as u64);
        }
    }

    /// The buffer holding the page of `pos`, initialising it (and writing
    /// out what it held) if need be (PostgreSQL's `GetXLogBuffer`).
    fn get_buffer(&self, slot: &InsertionSlot, pos: Lsn) -> Result<usize, WalError> {
        let page = page_start(pos);
        let idx = self.region.buffer_index(page);
        let want = page.0 + PAGE;
        if self.region.xlblocks[idx].load(Ordering::Acquire) != want {
            // Let flushers and other inserters past what we have done
            // while we wait (invariant 4, Locking rule 5).
            slot.set_inserting_at(progress_mark(pos).0);
            self.advance_insert_buffer(pos)?;
            let got = self.region.xlblocks[idx].load(Ordering::Acquire);
            if got != want {
                return Err(WalError::Shmem(format!(
                    "could not find WAL buffer for {pos}: buffer {idx} holds the page ending at {}",
                    Lsn(got)
                )));
            }
        }
        Ok(idx)
    }

    /// Initialises buffers until the page of `upto` is (PostgreSQL's
    /// `AdvanceXLInsertBuffer`). Called holding an insertion slot whose
    /// `inserting_at` is published.
    fn advance_insert_buffer(&self, upto: Lsn) -> Result<(), WalError> {
        let mapping = &self.ctl().mapping;
        let mut guard = mapping.lock.acquire_exclusive();
        loop {
            let next_page = Lsn(mapping.initialized_upto.load(Ordering::Acquire));
            if upto < next_page {
                return Ok(());
            }
            let idx = self.region.buffer_index(next_page);
            let old_end = Lsn(self.region.xlblocks[idx].load(Ordering::Acquire));
            if self.written_lsn() < old_end {
                // The buffer still holds unwritten WAL: write it out first
                // (Locking rule 1: never with WALBufMappingLock held).
                drop(guard);
                self.write_out_buffer(old_end)?;
                guard = mapping.lock.acquire_exclusive();
                continue;
            }
            self.init_buffer_page(idx, next_page);
            mapping
                .initialized_upto
                .store(next_page.0 + PAGE, Ordering::Release);
        }
    }

    /// Zeroes buffer `idx` and gives it the header of the page at `page`;
    /// called holding WALBufMappingLock (or alone, at start-up).
    pub(super) fn init_buffer_page(&self, idx: usize, page: Lsn) {
        let xlblock = &self.region.xlblocks[idx];
        // Invariant 2 of shmem.rs: 0 while the page is being replaced.
        xlblock.store(0, Ordering::Release);
        let header = PageHeader::for_page(
            page,
            self.timeline(),
            self.ctl().config.system_id.load(Ordering::Relaxed),
            0,
        );
        // SAFETY: the buffer's old page is written (checked by the caller
        // under WALBufMappingLock) and no inserter can be using it (its
        // insertions finished before it was written); only the holder of
        // WALBufMappingLock initialises buffers.
        unsafe {
            let p = self.region.page_ptr(idx);
            std::ptr::write_bytes(p, 0, WAL_PAGE_BYTES);
            std::ptr::copy_nonoverlapping(header.encode().as_ptr(), p, header.encoded_len());
        }
        xlblock.store(page.0 + PAGE, Ordering::Release);
    }

    /// Waits until every insertion below `upto` (capped at the end of
    /// reserved WAL) has finished and returns how far the WAL is known
    /// complete: at least the capped `upto` (PostgreSQL's
    /// `WaitXLogInsertionsToFinish`). See Locking rules 3 and 4.
    pub(super) fn wait_for_insertions(&self, upto: Lsn) -> Lsn {
        let reserved = self.reserved_end_lsn();
        let upto = upto.min(reserved);
        let mut finished = reserved.0;
        for slot in &self.ctl().slots {
            let at = slot.wait_until_past(upto);
            finished = finished.min(at);
        }
        Lsn(finished)
    }
}

/// What an inserter about to write at `pos` may publish as its
/// `inserting_at`: `pos`, or the page start if `pos` is just after the page
/// header, because the page (header included) may not be initialised yet
/// and must not look complete to a writer (invariant 4).
fn progress_mark(pos: Lsn) -> Lsn {
    let page = page_start(pos);
    if pos.0 - page.0 <= page_header_bytes(page) as u64 {
        page
    } else {
        pos
    }
}
