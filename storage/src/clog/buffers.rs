//! The commit log's buffer pool in shared memory, and the per-process handle
//! that works on it. The rules (invariants I1.., locking L1.., crash safety
//! C1..) are stated once, in the module header of [`crate::clog`]; comments
//! here cite them by number.
//!
//! ```text
//!  ClogBuffers<N>  (#[repr(C)], 64 + N × 16448 bytes, 64-byte aligned)
//!  ┌──────────────────────────────┐
//!  │ ClogShared          64 bytes │ control lock, LRU clock, latest page,
//!  │                              │ unsynced segment range + its spinlock
//!  ├──────────────────────────────┤
//!  │ ClogSlot 0       16448 bytes │ ┌ 64 B: I/O lock, state, dirty,
//!  │ ClogSlot 1                   │ │       page number, LRU count
//!  │ ...                          │ ├ 8 KB: 1024 group LSNs (AtomicU64)
//!  │ ClogSlot N-1                 │ └ 8 KB: the page (AtomicU8 × 8192)
//!  └──────────────────────────────┘
//! ```
//!
//! Slot states:
//!
//! ```text
//!            claim (control X)           read done (I/O owner)
//!   Empty ─────────────────► ReadInProgress ─────────► Valid ◄──┐
//!     ▲   ◄─────────────────────── read failed                  │ write done or
//!     │                                                         │ failed (I/O owner)
//!     └── truncate (control X)   Valid ── start write ──► WriteInProgress
//!                                         (control X)
//! ```
//!
//! `dirty` is separate from the state: a page may be re-dirtied while it is
//! being written, and then stays dirty after the write.

use super::error::ClogError;
use super::files::SlruFiles;
use super::page::{
    ClogPageNo, PageBytes, SegmentNo, XidPosition, XidStatus, CLOG_LSN_GROUPS_PER_PAGE,
    CLOG_XACTS_PER_PAGE,
};
use crate::types::{Lsn, Xid, BLCKSZ};
use pgerror::PgError;
use shmem_layout::lwlock::{LWLock, LWLockGuard, LWLockTranche};
use shmem_layout::spinlock::SpinLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

/// Page slots in the cluster's pool: PostgreSQL 15's most
/// (`CLOGShmemBuffers` gives `min(128, max(4, shared_buffers / 512))`, so
/// 128 from 512 MB of shared_buffers up). Fixed here so that the pool's size
/// depends on no setting; 2 MB is small next to shared_buffers.
pub const CLOG_BUFFERS: usize = 128;

/// Tranche of the control lock (PostgreSQL's `XactSLRULock`). Placeholder
/// numbers until shmem-layout keeps a tranche table.
pub const XACT_SLRU_TRANCHE: LWLockTranche = LWLockTranche(30);
/// Tranche of the per-slot I/O locks (PostgreSQL's `XactBuffer`).
pub const XACT_BUFFER_TRANCHE: LWLockTranche = LWLockTranche(31);

/// `latest_page` and `unsynced_first` when there is none.
const NO_PAGE: u64 = u64::MAX;

/// The cluster's pool: [`CLOG_BUFFERS`] slots.
pub type SharedClogBuffers = ClogBuffers<CLOG_BUFFERS>;

/// Bytes of shared memory a pool of `n_slots` slots takes (header and slots
/// contiguous, 64-byte aligned): `64 + n_slots × 16448`.
pub const fn shmem_size_bytes(n_slots: usize) -> usize {
    std::mem::size_of::<ClogShared>() + n_slots * std::mem::size_of::<ClogSlot>()
}

/// What a slot holds. Stored in [`ClogSlot::state`] as a `u32`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Empty = 0,
    ReadInProgress = 1,
    Valid = 2,
    WriteInProgress = 3,
}

impl SlotState {
    fn from_u32(v: u32) -> SlotState {
        match v {
            0 => SlotState::Empty,
            1 => SlotState::ReadInProgress,
            2 => SlotState::Valid,
            3 => SlotState::WriteInProgress,
            _ => panic!("commit log slot state {v} is not a state: shared memory is corrupt"),
        }
    }

    /// Whether the page bytes are the page's contents (I4).
    fn is_usable(self) -> bool {
        matches!(self, SlotState::Valid | SlotState::WriteInProgress)
    }

    fn is_busy(self) -> bool {
        matches!(self, SlotState::ReadInProgress | SlotState::WriteInProgress)
    }
}

/// The pool's control block (PostgreSQL's `SlruSharedData` minus the
/// per-slot arrays).
#[repr(C, align(64))]
pub struct ClogShared {
    /// Protects the slots' `page_no` and state transitions (L1).
    control: LWLock,
    /// Protects `unsynced_first` and `unsynced_last` (L6).
    unsynced_lock: SpinLock,
    /// LRU clock; no lock (L7).
    lru_clock: AtomicU64,
    /// The page `extend_to` or `trim` made current; never evicted (I7).
    /// Written under the control lock held exclusively.
    latest_page: AtomicU64,
    /// Segments written since the last checkpoint took the range: an
    /// inclusive range, `NO_PAGE..0` when empty. Under `unsynced_lock`.
    unsynced_first: AtomicU64,
    unsynced_last: AtomicU64,
}

/// One page buffer.
#[repr(C, align(64))]
pub struct ClogSlot {
    /// Held exclusively for the whole of a read or write of this slot (L2).
    io_lock: LWLock,
    /// A [`SlotState`]. Moved into an I/O state under the control lock held
    /// exclusively; moved out by the I/O owner alone (I3).
    state: AtomicU32,
    /// 1 when the bytes differ from the file (I6).
    dirty: AtomicU32,
    /// The page held, meaningful unless Empty. Control lock exclusive (I2).
    page_no: AtomicU64,
    /// LRU clock value of the last use; no lock (L7).
    lru_count: AtomicU64,
    _reserved: [u8; 32],
    /// Newest async commit LSN per group of 32 xids (I5, C2).
    group_lsns: [AtomicU64; CLOG_LSN_GROUPS_PER_PAGE],
    /// The page. Atomic bytes because setters under the shared control lock
    /// and a writer copying the page touch them concurrently (L8).
    bytes: [AtomicU8; BLCKSZ],
}

/// The whole pool as one `#[repr(C)]` structure, for a region of the
/// segment. Valid when zero-filled; call [`ClogBuffers::init`] once before
/// use (and again at every crash re-initialisation).
#[repr(C)]
pub struct ClogBuffers<const N: usize> {
    shared: ClogShared,
    slots: [ClogSlot; N],
}

const _: () = {
    assert!(std::mem::size_of::<ClogShared>() == 64);
    assert!(std::mem::size_of::<ClogSlot>() == 64 + 2 * BLCKSZ);
    assert!(std::mem::align_of::<ClogSlot>() == 64);
    assert!(std::mem::size_of::<SharedClogBuffers>() == shmem_size_bytes(CLOG_BUFFERS));
    assert!(std::mem::align_of::<SharedClogBuffers>() == 64);
};

impl<const N: usize> ClogBuffers<N> {
    /// The eviction rule needs a slot besides the latest page's (I7).
    const ENOUGH_SLOTS: () = assert!(N >= 2, "a commit log pool needs at least two slots");

    /// Empty every slot and free every lock.
    pub fn init(&self) {
        let () = Self::ENOUGH_SLOTS;
        init_pool(&self.shared, &self.slots);
    }

    /// This process's handle on the pool.
    pub fn attach<'a>(&'a self, files: &'a SlruFiles, wal: &'a dyn WalFlush) -> Clog<'a> {
        let () = Self::ENOUGH_SLOTS;
        Clog::new(&self.shared, &self.slots, files, wal)
    }
}

/// Initialise a pool whose header and slots are placed separately.
pub fn init_pool(shared: &ClogShared, slots: &[ClogSlot]) {
    shared.control.init(XACT_SLRU_TRANCHE);
    shared.unsynced_lock.init();
    // Above every slot's count, so a slot's first use makes it the newest.
    shared.lru_clock.store(1, Ordering::Relaxed);
    shared.latest_page.store(NO_PAGE, Ordering::Relaxed);
    shared.unsynced_first.store(NO_PAGE, Ordering::Relaxed);
    shared.unsynced_last.store(0, Ordering::Relaxed);
    for slot in slots {
        slot.io_lock.init(XACT_BUFFER_TRANCHE);
        slot.state.store(SlotState::Empty as u32, Ordering::Relaxed);
        slot.dirty.store(0, Ordering::Relaxed);
        slot.page_no.store(0, Ordering::Relaxed);
        slot.lru_count.store(0, Ordering::Relaxed);
    }
    std::sync::atomic::fence(Ordering::SeqCst);
}

/// What the commit log needs from the WAL: flush it up to `lsn` before a
/// page holding an asynchronous commit at `lsn` is written (C2). Called
/// holding a slot's I/O lock and no other commit log lock (L5).
pub trait WalFlush {
    fn flush_wal_up_to(&self, lsn: Lsn) -> Result<(), PgError>;
}

impl<F: Fn(Lsn) -> Result<(), PgError>> WalFlush for F {
    fn flush_wal_up_to(&self, lsn: Lsn) -> Result<(), PgError> {
        self(lsn)
    }
}

/// What [`Clog::write_dirty_pages`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClogCheckpointStats {
    pub pages_written: usize,
    pub segments_synced: usize,
}

/// A process's handle on the pool: the shared structure plus this process's
/// files and WAL. Cheap; make one where needed.
pub struct Clog<'a> {
    shared: &'a ClogShared,
    slots: &'a [ClogSlot],
    files: &'a SlruFiles,
    wal: &'a dyn WalFlush,
}

/// The I/O on one slot, owned by this process (I3). Dropping it, on success,
/// error or unwinding alike, ends the I/O: it stores `end` (and sets `dirty`
/// again if `redirty`), and only then releases the I/O lock (L3).
struct IoOwner<'a> {
    slot: &'a ClogSlot,
    end: SlotState,
    redirty: bool,
    _io_lock: LWLockGuard<'a>,
}

impl Drop for IoOwner<'_> {
    fn drop(&mut self) {
        if self.redirty {
            self.slot.dirty.store(1, Ordering::SeqCst);
        }
        self.slot.state.store(self.end as u32, Ordering::Release);
        // `_io_lock` is released after this body, when the fields drop.
    }
}

/// The outcome of looking for a slot to put a new page in.
enum Claim<'a> {
    /// This slot is Empty, or Valid and clean; the control lock was held
    /// throughout.
    Free(LWLockGuard<'a>, usize),
    /// The control lock was released to write or wait; look again.
    Retry(LWLockGuard<'a>),
}

impl<'a> Clog<'a> {
    /// A handle on a pool placed as separate header and slot array.
    pub fn new(
        shared: &'a ClogShared,
        slots: &'a [ClogSlot],
        files: &'a SlruFiles,
        wal: &'a dyn WalFlush,
    ) -> Clog<'a> {
        assert!(
            slots.len() >= 2,
            "a commit log pool needs at least two slots"
        );
        Clog {
            shared,
            slots,
            files,
            wal,
        }
    }

    /// `xid`'s status, and the LSN of the newest asynchronous commit in its
    /// LSN group (invalid if none is buffered). Like PostgreSQL's
    /// `TransactionIdGetStatus`, the LSN lets a caller see whether the WAL is
    /// flushed far enough to set a hint bit.
    pub fn get_status(&self, xid: Xid) -> Result<(XidStatus, Lsn), ClogError> {
        let pos = XidPosition::of(xid);
        {
            let _shared = self.shared.control.acquire_shared();
            if let Some(i) = self.find_usable(pos.page) {
                return Ok(self.load_status(i, pos));
            }
        }
        let control = self.shared.control.acquire_exclusive();
        let (_control, i) = self.read_page(control, pos.page, xid)?;
        Ok(self.load_status(i, pos))
    }

    /// Record `status` for `xid`. For an asynchronous commit pass the commit
    /// record's LSN: the page will not be written before the WAL is flushed
    /// to it (C2). Pass [`Lsn::INVALID`] when there is no such constraint (a
    /// synchronous commit, whose record is flushed already, an abort, replay).
    pub fn set_status(
        &self,
        xid: Xid,
        status: XidStatus,
        commit_lsn: Lsn,
    ) -> Result<(), ClogError> {
        let pos = XidPosition::of(xid);
        {
            let _shared = self.shared.control.acquire_shared();
            if let Some(i) = self.find_usable(pos.page) {
                self.store_status(i, pos, status, commit_lsn);
                return Ok(());
            }
        }
        let control = self.shared.control.acquire_exclusive();
        let (_control, i) = self.read_page(control, pos.page, xid)?;
        self.store_status(i, pos, status, commit_lsn);
        Ok(())
    }

    /// Called for every newly assigned xid (PostgreSQL's `ExtendCLOG`): when
    /// `newest` is the first xid of its page, or the first normal xid, make
    /// that page a zeroed, dirty, buffered page and the latest page. Whatever
    /// the file held there is overwritten (C4). Otherwise nothing.
    pub fn extend_to(&self, newest: Xid) -> Result<(), ClogError> {
        if newest.0 % CLOG_XACTS_PER_PAGE != 0 && newest != Xid::FIRST_NORMAL {
            return Ok(());
        }
        let control = self.shared.control.acquire_exclusive();
        self.zero_page(control, ClogPageNo::of(newest)).map(drop)
    }

    /// At the end of recovery (PostgreSQL's `TrimCLOG`): make `next_xid`'s
    /// page the latest, and clear the statuses of `next_xid` and every later
    /// xid on it, left behind by xids assigned before the crash whose WAL
    /// never reached disk (C4).
    pub fn trim(&self, next_xid: Xid) -> Result<(), ClogError> {
        let pos = XidPosition::of(next_xid);
        let control = self.shared.control.acquire_exclusive();
        if next_xid.0 % CLOG_XACTS_PER_PAGE == 0 {
            self.shared.latest_page.store(pos.page.0, Ordering::Relaxed);
            return Ok(());
        }
        let (_control, i) = self.read_page(control, pos.page, next_xid)?;
        self.shared.latest_page.store(pos.page.0, Ordering::Relaxed);
        let bytes = &self.slots[i].bytes;
        bytes[pos.byte].fetch_and(pos.clear_from(0xFF), Ordering::SeqCst);
        for byte in &bytes[pos.byte + 1..] {
            byte.store(0, Ordering::SeqCst);
        }
        self.slots[i].dirty.store(1, Ordering::SeqCst);
        Ok(())
    }

    /// Checkpoint: write every dirty page, waiting for writes already under
    /// way, then fsync every segment written since the previous checkpoint by
    /// any process, and the directory (C3).
    pub fn write_dirty_pages(&self) -> Result<ClogCheckpointStats, ClogError> {
        let mut stats = ClogCheckpointStats::default();
        let mut control = self.shared.control.acquire_exclusive();
        for i in 0..self.slots.len() {
            if self.state(i) == SlotState::WriteInProgress {
                // Its segment must be in the range taken below.
                control = self.wait_io(control, i);
            }
            if self.state(i) == SlotState::Valid && self.is_dirty(i) {
                control = self.write_slot(control, i)?;
                stats.pages_written += 1;
            }
        }
        drop(control);
        if let Some((first, last)) = self.take_unsynced() {
            for seg in first.0..=last.0 {
                self.files.fsync_segment(SegmentNo(seg))?;
                stats.segments_synced += 1;
            }
        }
        self.files.fsync_dir()?;
        Ok(stats)
    }

    /// Forget every xid before `oldest`: discard buffered pages of the
    /// segments wholly before its page (dirty or not) and remove those
    /// segment files. The caller guarantees that no one will ask about those
    /// xids again. The latest page's segment is never removed.
    pub fn truncate_before(&self, oldest: Xid) -> Result<Vec<SegmentNo>, ClogError> {
        let mut cutoff = ClogPageNo::of(oldest);
        let mut control = self.shared.control.acquire_exclusive();
        let latest = self.shared.latest_page.load(Ordering::Relaxed);
        if latest != NO_PAGE && latest < cutoff.0 {
            log::warn!("commit log truncation at xid {oldest} would pass the latest page {latest}");
            cutoff = ClogPageNo(latest);
        }
        let first_kept = cutoff.segment().first_page();
        'scan: loop {
            for i in 0..self.slots.len() {
                let state = self.state(i);
                if state == SlotState::Empty || self.page_of(i).0 >= first_kept.0 {
                    continue;
                }
                if state.is_busy() {
                    control = self.wait_io(control, i);
                    continue 'scan;
                }
                self.slots[i].dirty.store(0, Ordering::SeqCst);
                self.slots[i]
                    .state
                    .store(SlotState::Empty as u32, Ordering::Release);
            }
            break;
        }
        drop(control);
        self.files.truncate_before(first_kept)
    }

    // ---- slot lookup and bookkeeping -------------------------------------

    fn state(&self, i: usize) -> SlotState {
        SlotState::from_u32(self.slots[i].state.load(Ordering::Acquire))
    }

    fn is_dirty(&self, i: usize) -> bool {
        self.slots[i].dirty.load(Ordering::SeqCst) != 0
    }

    fn page_of(&self, i: usize) -> ClogPageNo {
        ClogPageNo(self.slots[i].page_no.load(Ordering::Relaxed))
    }

    /// The slot holding `page` in any non-Empty state. Control lock held (I1).
    fn find_slot(&self, page: ClogPageNo) -> Option<usize> {
        (0..self.slots.len())
            .find(|&i| self.state(i) != SlotState::Empty && self.page_of(i) == page)
    }

    /// The slot holding `page` with usable bytes. Control lock held.
    fn find_usable(&self, page: ClogPageNo) -> Option<usize> {
        self.find_slot(page).filter(|&i| self.state(i).is_usable())
    }

    /// Mark a slot recently used (PostgreSQL's `SlruRecentlyUsed`). Races
    /// between processes only blur which slot looks oldest (L7).
    fn touch(&self, i: usize) {
        let now = self.shared.lru_clock.load(Ordering::Relaxed);
        if self.slots[i].lru_count.load(Ordering::Relaxed) != now {
            let next = self.shared.lru_clock.fetch_add(1, Ordering::Relaxed) + 1;
            self.slots[i].lru_count.store(next, Ordering::Relaxed);
        }
    }

    fn load_status(&self, i: usize, pos: XidPosition) -> (XidStatus, Lsn) {
        let slot = &self.slots[i];
        let status = pos.status_in(slot.bytes[pos.byte].load(Ordering::SeqCst));
        let lsn = Lsn(slot.group_lsns[pos.lsn_group].load(Ordering::SeqCst));
        self.touch(i);
        (status, lsn)
    }

    /// Set the bits: LSN first, then the bits, then dirty (C2, I6).
    fn store_status(&self, i: usize, pos: XidPosition, status: XidStatus, commit_lsn: Lsn) {
        let slot = &self.slots[i];
        if commit_lsn.is_valid() {
            slot.group_lsns[pos.lsn_group].fetch_max(commit_lsn.0, Ordering::SeqCst);
        }
        let old = slot.bytes[pos.byte]
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                Some(pos.with_status(b, status))
            })
            .expect("the update closure always returns Some");
        debug_assert!(
            pos.status_in(old).may_become(status),
            "xid status {:?} overwritten with {status:?}",
            pos.status_in(old)
        );
        slot.dirty.store(1, Ordering::SeqCst);
        self.touch(i);
    }

    fn note_unsynced(&self, seg: SegmentNo) {
        let _guard = self.shared.unsynced_lock.acquire();
        self.shared
            .unsynced_first
            .fetch_min(seg.0, Ordering::Relaxed);
        self.shared
            .unsynced_last
            .fetch_max(seg.0, Ordering::Relaxed);
    }

    fn take_unsynced(&self) -> Option<(SegmentNo, SegmentNo)> {
        let _guard = self.shared.unsynced_lock.acquire();
        let first = self.shared.unsynced_first.swap(NO_PAGE, Ordering::Relaxed);
        let last = self.shared.unsynced_last.swap(0, Ordering::Relaxed);
        (first <= last).then_some((SegmentNo(first), SegmentNo(last)))
    }

    // ---- moving pages in and out (control lock held exclusively) ----------

    /// A slot holding `page` with usable bytes, reading the page in if it is
    /// not buffered. Returns with the control lock held exclusively.
    fn read_page(
        &self,
        mut control: LWLockGuard<'a>,
        page: ClogPageNo,
        xid: Xid,
    ) -> Result<(LWLockGuard<'a>, usize), ClogError> {
        loop {
            if let Some(i) = self.find_slot(page) {
                match self.state(i) {
                    SlotState::ReadInProgress => control = self.wait_io(control, i),
                    state if state.is_usable() => {
                        self.touch(i);
                        return Ok((control, i));
                    }
                    _ => {} // the read failed just now; claim a slot again
                }
                continue;
            }
            control = match self.claim_slot(control)? {
                Claim::Free(control, i) => self
                    .read_into(control, i, page)
                    .map_err(|e| e.for_xid(xid))?,
                Claim::Retry(control) => control,
            };
            // Normally the page is Valid now, but it was unprotected between
            // the end of the read and re-taking the control lock: look again.
        }
    }

    /// Read `page` into free slot `i`: mark it ReadInProgress, take its I/O
    /// lock, release the control lock for the read (L2, L3).
    fn read_into(
        &self,
        control: LWLockGuard<'a>,
        i: usize,
        page: ClogPageNo,
    ) -> Result<LWLockGuard<'a>, ClogError> {
        let slot = &self.slots[i];
        slot.page_no.store(page.0, Ordering::Relaxed);
        slot.dirty.store(0, Ordering::SeqCst);
        slot.state
            .store(SlotState::ReadInProgress as u32, Ordering::Release);
        self.touch(i);
        let mut io = IoOwner {
            slot,
            end: SlotState::Empty,
            redirty: false,
            _io_lock: slot.io_lock.acquire_exclusive(),
        };
        drop(control);

        let mut buf: PageBytes = [0; BLCKSZ];
        self.files.read_page(page, &mut buf)?;
        for (cell, byte) in slot.bytes.iter().zip(buf) {
            cell.store(byte, Ordering::Relaxed);
        }
        // What is on disk was written after its WAL was flushed (I5).
        for lsn in &slot.group_lsns {
            lsn.store(0, Ordering::Relaxed);
        }
        io.end = SlotState::Valid;
        drop(io);
        Ok(self.shared.control.acquire_exclusive())
    }

    /// Write Valid slot `i` out: mark it WriteInProgress and clean, take its
    /// I/O lock, release the control lock for the write.
    fn write_slot(&self, control: LWLockGuard<'a>, i: usize) -> Result<LWLockGuard<'a>, ClogError> {
        let slot = &self.slots[i];
        debug_assert_eq!(self.state(i), SlotState::Valid);
        let page = self.page_of(i);
        slot.state
            .store(SlotState::WriteInProgress as u32, Ordering::Release);
        slot.dirty.store(0, Ordering::SeqCst);
        let mut io = IoOwner {
            slot,
            end: SlotState::Valid,
            redirty: true,
            _io_lock: slot.io_lock.acquire_exclusive(),
        };
        drop(control);

        self.write_out(slot, page)?;
        io.redirty = false;
        drop(io);
        Ok(self.shared.control.acquire_exclusive())
    }

    /// Copy the page, flush the WAL up to its newest async commit, write
    /// the copy (C2: bits copied before the LSNs are read).
    fn write_out(&self, slot: &ClogSlot, page: ClogPageNo) -> Result<(), ClogError> {
        let mut buf: PageBytes = [0; BLCKSZ];
        for (byte, cell) in buf.iter_mut().zip(&slot.bytes) {
            *byte = cell.load(Ordering::SeqCst);
        }
        let lsn = slot
            .group_lsns
            .iter()
            .map(|lsn| lsn.load(Ordering::SeqCst))
            .max()
            .map_or(Lsn::INVALID, Lsn);
        if lsn.is_valid() {
            self.wal
                .flush_wal_up_to(lsn)
                .map_err(|cause| ClogError::WalFlush { lsn, cause })?;
        }
        self.files.write_page(page, &buf)?;
        self.note_unsynced(page.segment());
        Ok(())
    }

    /// Wait for the I/O on slot `i` to end: release the control lock, pass
    /// through the slot's I/O lock in shared mode, re-take the control lock
    /// (L3). The slot may hold anything afterwards.
    fn wait_io(&self, control: LWLockGuard<'a>, i: usize) -> LWLockGuard<'a> {
        drop(control);
        drop(self.slots[i].io_lock.acquire_shared());
        self.shared.control.acquire_exclusive()
    }

    /// Find a slot for a new page (PostgreSQL's `SlruSelectLRUPage`): an
    /// Empty one, else the least recently used Valid one other than the
    /// latest page, written first if dirty; if every candidate is busy,
    /// wait for the least recently used busy one.
    fn claim_slot(&self, control: LWLockGuard<'a>) -> Result<Claim<'a>, ClogError> {
        if let Some(i) = (0..self.slots.len()).find(|&i| self.state(i) == SlotState::Empty) {
            return Ok(Claim::Free(control, i));
        }
        let latest = self.shared.latest_page.load(Ordering::Relaxed);
        let lru = |i: &usize| self.slots[*i].lru_count.load(Ordering::Relaxed);
        let candidates = || (0..self.slots.len()).filter(|&i| self.page_of(i).0 != latest);
        let oldest_valid = candidates()
            .filter(|&i| self.state(i) == SlotState::Valid)
            .min_by_key(lru);
        match oldest_valid {
            Some(i) if !self.is_dirty(i) => Ok(Claim::Free(control, i)),
            Some(i) => Ok(Claim::Retry(self.write_slot(control, i)?)),
            None => match candidates()
                .filter(|&i| self.state(i).is_busy())
                .min_by_key(lru)
            {
                Some(i) => Ok(Claim::Retry(self.wait_io(control, i))),
                // A read failed and emptied its slot since the first look.
                None => Ok(Claim::Retry(control)),
            },
        }
    }

    /// Make `page` a zeroed, dirty, Valid page in some slot, and the latest page.
    fn zero_page(
        &self,
        mut control: LWLockGuard<'a>,
        page: ClogPageNo,
    ) -> Result<(LWLockGuard<'a>, usize), ClogError> {
        loop {
            let i = match self.find_slot(page) {
                Some(i) if self.state(i).is_busy() => {
                    control = self.wait_io(control, i);
                    continue;
                }
                Some(i) => i,
                None => match self.claim_slot(control)? {
                    Claim::Free(c, i) => {
                        control = c;
                        i
                    }
                    Claim::Retry(c) => {
                        control = c;
                        continue;
                    }
                },
            };
            let slot = &self.slots[i];
            slot.page_no.store(page.0, Ordering::Relaxed);
            for byte in &slot.bytes {
                byte.store(0, Ordering::Relaxed);
            }
            for lsn in &slot.group_lsns {
                lsn.store(0, Ordering::Relaxed);
            }
            slot.dirty.store(1, Ordering::SeqCst);
            slot.state.store(SlotState::Valid as u32, Ordering::Release);
            self.shared.latest_page.store(page.0, Ordering::Relaxed);
            self.touch(i);
            return Ok((control, i));
        }
    }
}

#[cfg(test)]
impl Clog<'_> {
    /// Pages buffered and dirty, for tests.
    pub(crate) fn dirty_pages(&self) -> Vec<ClogPageNo> {
        let _control = self.shared.control.acquire_shared();
        (0..self.slots.len())
            .filter(|&i| self.state(i).is_usable() && self.is_dirty(i))
            .map(|i| self.page_of(i))
            .collect()
    }

    /// Pages buffered, for tests.
    pub(crate) fn buffered_pages(&self) -> Vec<ClogPageNo> {
        let _control = self.shared.control.acquire_shared();
        (0..self.slots.len())
            .filter(|&i| self.state(i) != SlotState::Empty)
            .map(|i| self.page_of(i))
            .collect()
    }
}
