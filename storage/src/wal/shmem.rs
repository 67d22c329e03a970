//! The shared part of WAL insertion: one region of the shared segment
//! holding the insert position, the insertion slots, the WAL buffers and
//! the write/flush progress (PostgreSQL's `XLogCtl` and `WALInsertLocks`).
//!
//! Every process that writes WAL (backends, checkpointer, walwriter,
//! startup at the end of recovery) attaches the region with
//! [`WalRegion::attach`] and works on it through its own
//! [`SharedWal`](super::SharedWal) handle; the algorithms are in
//! `insert.rs` (reserve, copy, buffer replacement) and `write.rs` (write,
//! flush, start-up). This file only lays the region out and provides the
//! insertion slots' wait-for-progress primitive.
//!
//! ```text
//!  region (shmem_size_bytes(n) bytes, base 128-byte aligned)
//!  ┌──────────────────────────────┐ 0
//!  │ WalShmem                     │ config   : magic, n, started, broken,
//!  │  (1664 bytes, each part on   │            fsync, timeline, system id
//!  │   its own 128-byte lines)    │ insert   : spinlock + CurrBytePos,
//!  │                              │            PrevBytePos; redo pointer
//!  │                              │ slots[8] : LWLock + inserting_at
//!  │                              │ mapping  : WALBufMappingLock +
//!  │                              │            initialized_upto
//!  │                              │ progress : WALWriteLock + written_upto,
//!  │                              │            flushed_upto
//!  │                              │ stats    : writes, fsyncs, ...
//!  ├──────────────────────────────┤ 1664
//!  │ xlblocks[n]  AtomicU64       │ end LSN of the page each buffer holds
//!  │  (padded to 128 bytes)       │ (0: none / being initialised)
//!  ├──────────────────────────────┤ 1664 + round_up(8n, 128)
//!  │ page 0 .. page n-1  8 KB each│ the WAL buffers: page i holds the page
//!  └──────────────────────────────┘ whose number is ≡ i (mod n)
//! ```
//!
//! # Invariants
//!
//! 1. The region is valid for any bit pattern (atomics, locks, bytes) and
//!    means nothing until [`WalRegion::init`] stored the magic number;
//!    [`WalRegion::attach`] refuses it before that. Insertion and flushing
//!    refuse to run until `init_at` (start-up) set `started`.
//! 2. `xlblocks[i]` is either 0 or the end LSN of the page held in buffer
//!    `i`, and that page's number is ≡ `i` (mod n). While a buffer is being
//!    (re)initialised its `xlblocks` is 0.
//! 3. An insertion slot's `inserting_at` is [`NOT_INSERTING`] when no
//!    insertion is in progress under it; otherwise its holder has no bytes
//!    left to copy below that LSN (0: its position is not known yet, which
//!    promises nothing). It only grows during one insertion.
//! 4. `change_seq` changes after every change of `inserting_at` that a
//!    waiter might wait for, so a waiter that sleeps on an old value of
//!    `change_seq` is never left asleep past such a change.
//!
//! # Locking
//!
//! Which lock protects which field is said at each field; the lock order
//! and the waiting rules are stated once, in `insert.rs`.
//!
//! # Crash safety
//!
//! Nothing here survives a crash: the crash cycle re-initialises the whole
//! segment ([`WalRegion::init`]) and the startup process rebuilds the state
//! from the WAL on disk (`init_at`). A process that dies holding an
//! insertion slot leaves `inserting_at` below its reservation, so no flush
//! can pass the hole it left: commits after it are never acknowledged
//! before the crash cycle, and replay stops at the hole.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use shmem_layout::lwlock::{LWLock, LWLockTranche};
use shmem_layout::spinlock::SpinLock;

use crate::types::Lsn;
use crate::wal::segment::WAL_PAGE_BYTES;
use crate::wal::WalError;

/// Insertion slots (PostgreSQL's `NUM_XLOGINSERT_LOCKS`): up to this many
/// processes copy records into the WAL buffers at once.
pub const NUM_INSERTION_SLOTS: usize = 8;
/// The fewest WAL buffers the region accepts (PostgreSQL's minimum for
/// `wal_buffers`).
pub const MIN_WAL_BUFFERS_PAGES: usize = 4;
/// The alignment the region's base must have.
pub const WAL_SHMEM_ALIGN: usize = 128;

/// Tranche of the insertion slots' locks (PostgreSQL's `WALInsert`).
/// Placeholder numbers until shmem-layout keeps a tranche table.
pub const WAL_INSERT_TRANCHE: LWLockTranche = LWLockTranche(40);
/// Tranche of `WALBufMappingLock`.
pub const WAL_BUF_MAPPING_TRANCHE: LWLockTranche = LWLockTranche(41);
/// Tranche of `WALWriteLock`.
pub const WAL_WRITE_TRANCHE: LWLockTranche = LWLockTranche(42);

/// `inserting_at` of a slot under which no insertion is in progress.
pub(super) const NOT_INSERTING: u64 = u64::MAX;
/// `prev_byte_pos` before the first record: its successor's prev link is 0.
pub(super) const NO_PREV: u64 = u64::MAX;

const WAL_SHMEM_MAGIC: u32 = 0x5741_4C31; // "WAL1"
const PAGE: usize = WAL_PAGE_BYTES;

/// Bytes of shared memory the WAL region takes with `wal_buffers_pages`
/// buffers: `1664 + round_up(8 × n, 128) + 8192 × n`.
pub const fn shmem_size_bytes(wal_buffers_pages: usize) -> usize {
    std::mem::size_of::<WalShmem>() + xlblocks_bytes(wal_buffers_pages) + wal_buffers_pages * PAGE
}

const fn xlblocks_bytes(n: usize) -> usize {
    (n * 8).div_ceil(WAL_SHMEM_ALIGN) * WAL_SHMEM_ALIGN
}

/// Set once by `init` (and `init_at`), read by everyone.
#[repr(C, align(128))]
pub(super) struct ConfigShared {
    pub(super) magic: AtomicU32,
    pub(super) n_pages: AtomicU32,
    /// 1 once `init_at` has set the insert position (Release/Acquire).
    pub(super) started: AtomicU32,
    /// 1 once an insertion failed half-way: the WAL has a hole and nothing
    /// may be flushed any more (the caller PANICs).
    pub(super) broken: AtomicU32,
    /// 1: flushing calls `fdatasync`. Changeable at any time (`fsync` is a
    /// reloadable setting); read at each flush.
    pub(super) fsync: AtomicU32,
    /// Written by `init_at` only.
    pub(super) timeline: AtomicU32,
    pub(super) system_id: AtomicU64,
}

/// Where the next record goes (PostgreSQL's `XLogCtlInsert`).
#[repr(C, align(128))]
pub(super) struct InsertPosition {
    /// Protects `curr_byte_pos` and `prev_byte_pos` (held for a few
    /// instructions: read, add, store).
    pub(super) lock: SpinLock,
    /// Usable-byte position (`segment::lsn_to_bytepos`) of the end of
    /// reserved WAL. Under `lock`.
    pub(super) curr_byte_pos: AtomicU64,
    /// Usable-byte position of the start of the last reserved record, or
    /// [`NO_PREV`]. Under `lock`.
    pub(super) prev_byte_pos: AtomicU64,
    /// The redo pointer of the latest checkpoint (PostgreSQL's
    /// `Insert->RedoRecPtr`): written holding every insertion slot's lock,
    /// so read holding any one of them it is stable.
    pub(super) redo_rec_ptr: AtomicU64,
}

/// One insertion slot (PostgreSQL's `WALInsertLockPadded`).
#[repr(C, align(128))]
pub struct InsertionSlot {
    /// Held exclusively by the one process inserting under this slot
    /// (or by the checkpointer holding all slots).
    pub(super) lock: LWLock,
    /// Invariant 3. Written only by the holder of `lock`; read by anyone.
    inserting_at: AtomicU64,
    /// Futex word waiters sleep on; bumped after `inserting_at` changes.
    change_seq: AtomicU32,
    /// Processes between deciding to sleep on `change_seq` and waking up:
    /// the holder issues a wake-up only when this is non-zero.
    waiters: AtomicU32,
}

/// `WALBufMappingLock` and what it protects.
#[repr(C, align(128))]
pub(super) struct BufferMapping {
    /// Held exclusively while (re)initialising buffers; protects
    /// `initialized_upto` and every change of `xlblocks`.
    pub(super) lock: LWLock,
    /// End of the newest initialised buffer page. Under `lock`.
    pub(super) initialized_upto: AtomicU64,
}

/// `WALWriteLock` and the write/flush progress (PostgreSQL's
/// `LogwrtResult`, kept in two atomics instead of under `info_lck`).
#[repr(C, align(128))]
pub(super) struct WriteProgress {
    /// Held exclusively while writing and syncing WAL files.
    pub(super) lock: LWLock,
    /// WAL up to here is written to the files (`pwrite` returned).
    /// Stored under `lock`; loaded by anyone (Acquire).
    pub(super) written_upto: AtomicU64,
    /// WAL up to here is durable (`fdatasync` returned, or fsync is off).
    /// Stored under `lock`, after `written_upto`; loaded by anyone.
    pub(super) flushed_upto: AtomicU64,
}

/// Counters for tests and `pg_stat_wal`; relaxed, no lock.
#[repr(C, align(128))]
pub(super) struct StatsShared {
    pub(super) writes: AtomicU64,
    pub(super) pages_written: AtomicU64,
    pub(super) fsyncs: AtomicU64,
    pub(super) wal_buffers_full: AtomicU64,
    pub(super) flushes: AtomicU64,
}

/// The fixed part of the region.
#[repr(C, align(128))]
pub struct WalShmem {
    pub(super) config: ConfigShared,
    pub(super) insert: InsertPosition,
    pub(super) slots: [InsertionSlot; NUM_INSERTION_SLOTS],
    pub(super) mapping: BufferMapping,
    pub(super) progress: WriteProgress,
    pub(super) stats: StatsShared,
}

const _: () = {
    assert!(std::mem::size_of::<InsertionSlot>() == 128);
    assert!(std::mem::size_of::<WalShmem>() == 1664);
    assert!(std::mem::align_of::<WalShmem>() == WAL_SHMEM_ALIGN);
    assert!(shmem_size_bytes(4) == 1664 + 128 + 4 * 8192);
};

/// WAL activity counters, summed over all processes since `init`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// `pwrite` calls (each one run of contiguous pages).
    pub writes: u64,
    pub pages_written: u64,
    /// `fdatasync` calls on WAL segment files.
    pub fsyncs: u64,
    /// Writes an inserter had to do to free a buffer (`wal_buffers_full`).
    pub wal_buffers_full: u64,
    /// Flushes that took `WALWriteLock` and wrote or synced.
    pub flushes: u64,
}

/// A process's view of the region: validated pointers into it.
#[derive(Clone, Copy)]
pub struct WalRegion<'a> {
    pub(super) ctl: &'a WalShmem,
    pub(super) xlblocks: &'a [AtomicU64],
    pages: NonNull<u8>,
    n_pages: usize,
}

// SAFETY: the page bytes behind `pages` are shared between processes (and
// threads) by design; every access goes through the insertion protocol of
// `insert.rs`, which gives each byte range one writer at a time and orders
// it before any reader with the atomics of the slots and the progress.
unsafe impl Send for WalRegion<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for WalRegion<'_> {}

impl<'a> WalRegion<'a> {
    /// Lays out and initialises a region of `wal_buffers_pages` buffers:
    /// at segment creation and at every crash re-initialisation. Resets
    /// every lock, so no process may be using the region.
    ///
    /// # Safety
    ///
    /// `base` points to `len_bytes` bytes that are readable and writable
    /// for `'a`, in memory shared with the processes that will attach it
    /// (or private, in tests), aligned to [`WAL_SHMEM_ALIGN`], and never
    /// accessed except through `WalRegion`s. No process uses the region
    /// during the call.
    pub unsafe fn init(
        base: *mut u8,
        len_bytes: usize,
        wal_buffers_pages: usize,
        fsync: bool,
    ) -> Result<WalRegion<'a>, WalError> {
        if !(MIN_WAL_BUFFERS_PAGES..=u32::MAX as usize).contains(&wal_buffers_pages) {
            return Err(WalError::Shmem(format!(
                "wal_buffers of {wal_buffers_pages} pages: at least {MIN_WAL_BUFFERS_PAGES} needed"
            )));
        }
        // SAFETY: the caller's contract, passed on.
        let region = unsafe { Self::view(base, len_bytes, wal_buffers_pages)? };
        let ctl = region.ctl;
        ctl.config
            .n_pages
            .store(wal_buffers_pages as u32, Ordering::Relaxed);
        ctl.config.started.store(0, Ordering::Relaxed);
        ctl.config.broken.store(0, Ordering::Relaxed);
        ctl.config.fsync.store(u32::from(fsync), Ordering::Relaxed);
        ctl.config.timeline.store(0, Ordering::Relaxed);
        ctl.config.system_id.store(0, Ordering::Relaxed);
        ctl.insert.lock.init();
        ctl.insert.curr_byte_pos.store(0, Ordering::Relaxed);
        ctl.insert.prev_byte_pos.store(NO_PREV, Ordering::Relaxed);
        ctl.insert.redo_rec_ptr.store(0, Ordering::Relaxed);
        for slot in &ctl.slots {
            slot.lock.init(WAL_INSERT_TRANCHE);
            slot.inserting_at.store(NOT_INSERTING, Ordering::Relaxed);
            slot.change_seq.store(0, Ordering::Relaxed);
            slot.waiters.store(0, Ordering::Relaxed);
        }
        ctl.mapping.lock.init(WAL_BUF_MAPPING_TRANCHE);
        ctl.mapping.initialized_upto.store(0, Ordering::Relaxed);
        ctl.progress.lock.init(WAL_WRITE_TRANCHE);
        ctl.progress.written_upto.store(0, Ordering::Relaxed);
        ctl.progress.flushed_upto.store(0, Ordering::Relaxed);
        for counter in region.stats_counters() {
            counter.store(0, Ordering::Relaxed);
        }
        for end in region.xlblocks {
            end.store(0, Ordering::Relaxed);
        }
        // The magic goes last: an attacher that sees it sees the rest.
        ctl.config.magic.store(WAL_SHMEM_MAGIC, Ordering::Release);
        Ok(region)
    }

    /// A view of a region some process has [`init`](Self::init)ialised.
    ///
    /// # Safety
    ///
    /// As for [`init`](Self::init), except that other processes may be
    /// using the region.
    pub unsafe fn attach(base: *mut u8, len_bytes: usize) -> Result<WalRegion<'a>, WalError> {
        if len_bytes < std::mem::size_of::<WalShmem>() {
            return Err(WalError::Shmem(format!(
                "region of {len_bytes} bytes is too small"
            )));
        }
        check_alignment(base)?;
        // SAFETY: aligned and large enough for the header (checked), valid
        // for any bit pattern, live for 'a (caller).
        let ctl = unsafe { &*(base as *const WalShmem) };
        if ctl.config.magic.load(Ordering::Acquire) != WAL_SHMEM_MAGIC {
            return Err(WalError::Shmem(
                "region was never initialised (bad magic number)".into(),
            ));
        }
        let n = ctl.config.n_pages.load(Ordering::Relaxed) as usize;
        // SAFETY: the caller's contract, passed on.
        unsafe { Self::view(base, len_bytes, n) }
    }

    /// # Safety
    /// The contract of [`init`](Self::init).
    unsafe fn view(base: *mut u8, len_bytes: usize, n: usize) -> Result<WalRegion<'a>, WalError> {
        check_alignment(base)?;
        if n < MIN_WAL_BUFFERS_PAGES || len_bytes < shmem_size_bytes(n) {
            return Err(WalError::Shmem(format!(
                "region of {len_bytes} bytes cannot hold {n} WAL buffers ({} bytes needed)",
                shmem_size_bytes(n)
            )));
        }
        let header = std::mem::size_of::<WalShmem>();
        // SAFETY: the header, the xlblocks array and the pages lie inside
        // the caller's `len_bytes` (checked above) at offsets that keep
        // their alignment (the base is 128-aligned, the header and the
        // xlblocks part are multiples of 128 bytes). Atomics and locks are
        // valid for any bit pattern.
        unsafe {
            let ctl = &*(base as *const WalShmem);
            let xlblocks = std::slice::from_raw_parts(base.add(header) as *const AtomicU64, n);
            let pages = NonNull::new_unchecked(base.add(header + xlblocks_bytes(n)));
            Ok(WalRegion {
                ctl,
                xlblocks,
                pages,
                n_pages: n,
            })
        }
    }

    /// Number of WAL buffers (`wal_buffers` in pages).
    pub fn wal_buffers_pages(&self) -> usize {
        self.n_pages
    }

    /// The buffer that holds (or will hold) the page starting at `page`.
    pub(super) fn buffer_index(&self, page: Lsn) -> usize {
        ((page.0 / PAGE as u64) % self.n_pages as u64) as usize
    }

    /// The first byte of buffer `idx`. Writing through it is allowed only
    /// as the insertion protocol says (see `insert.rs`).
    pub(super) fn page_ptr(&self, idx: usize) -> *mut u8 {
        assert!(idx < self.n_pages, "WAL buffer {idx} out of range");
        // SAFETY: idx < n_pages, so the offset stays inside the pages.
        unsafe { self.pages.as_ptr().add(idx * PAGE) }
    }

    pub(super) fn stats(&self) -> WalStats {
        let s = &self.ctl.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WalStats {
            writes: get(&s.writes),
            pages_written: get(&s.pages_written),
            fsyncs: get(&s.fsyncs),
            wal_buffers_full: get(&s.wal_buffers_full),
            flushes: get(&s.flushes),
        }
    }

    fn stats_counters(&self) -> [&AtomicU64; 5] {
        let s = &self.ctl.stats;
        [
            &s.writes,
            &s.pages_written,
            &s.fsyncs,
            &s.wal_buffers_full,
            &s.flushes,
        ]
    }
}

fn check_alignment(base: *mut u8) -> Result<(), WalError> {
    if base.is_null() || (base as usize) % WAL_SHMEM_ALIGN != 0 {
        return Err(WalError::Shmem(format!(
            "region base {base:p} is not {WAL_SHMEM_ALIGN}-byte aligned"
        )));
    }
    Ok(())
}

impl InsertionSlot {
    /// Holder, right after taking the lock: the position is not known yet.
    /// No wake-up: nobody waits for a slot to go back to "unknown".
    pub(super) fn mark_position_unknown(&self) {
        self.inserting_at.store(0, Ordering::SeqCst);
    }

    /// Holder: nothing of ours is left below `at` ([`NOT_INSERTING`]: the
    /// insertion is over). Wakes processes waiting for this slot.
    pub(super) fn set_inserting_at(&self, at: u64) {
        self.inserting_at.store(at, Ordering::SeqCst);
        self.change_seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            futex_wake_all(&self.change_seq);
        }
    }

    /// Sleeps until the slot's holder has nothing left to copy below
    /// `upto` (PostgreSQL's `LWLockWaitForVar` loop); returns the
    /// `inserting_at` then seen, [`NOT_INSERTING`] if the slot is free.
    ///
    /// No lost wake-up (invariant 4): the waiter announces itself in
    /// `waiters`, re-reads `inserting_at`, and sleeps only while
    /// `change_seq` still has the value read before; the holder changes
    /// `inserting_at`, then `change_seq`, then reads `waiters` (all SeqCst),
    /// so either it sees the waiter and wakes it, or the waiter's re-read
    /// sees the change.
    pub(super) fn wait_until_past(&self, upto: Lsn) -> u64 {
        loop {
            let seq = self.change_seq.load(Ordering::SeqCst);
            let at = self.inserting_at.load(Ordering::SeqCst);
            if at >= upto.0 {
                return at;
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            if self.inserting_at.load(Ordering::SeqCst) == at {
                futex_wait(&self.change_seq, seq);
            }
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Sleeps while `word` holds `expected` (or until a signal or a spurious
/// wake-up: callers re-check their condition).
fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned u32. FUTEX_WAIT (not the _PRIVATE
    // variant) because the word lives in memory shared between processes,
    // which the kernel keys by the physical page. A null timeout waits
    // without limit. The result is deliberately ignored: EAGAIN (the value
    // changed), EINTR (a signal) and wake-ups all mean "look again".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE only reads the address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}
