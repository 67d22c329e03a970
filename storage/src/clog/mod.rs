//! The commit log (`pg_xact`): two bits of status for every transaction id,
//! kept in 8 KB pages that are buffered in shared memory (PostgreSQL's
//! `clog.c` on top of `slru.c`).
//!
//! Backends set a status when their transaction commits or aborts and read
//! statuses to decide tuple visibility; the startup process sets statuses
//! while replaying commit and abort records and trims the current page at the
//! end of recovery; the checkpointer writes dirty pages at each checkpoint
//! and removes segments no one needs; whichever process assigns xids extends
//! the log page by page. All of them share one [`ClogBuffers`] pool.
//!
//! # Layout
//!
//! On disk ([`page`], [`files`]): status `xid` is bits `(xid % 4) * 2` and
//! up of byte `(xid % 32768) / 4` of page `xid / 32768`; 32 pages make a
//! segment file `pg_xact/XXXX` (upper-case hex, at least four digits,
//! widening past `FFFF`: [`SegmentNo::file_name`]).
//!
//! ```text
//!  xid 1234567 ─► page 37, byte 5537, shift 6 ─► pg_xact/0001, offset 5 × 8192
//!
//!  status bits: 00 in progress   01 committed   10 aborted   11 sub-committed
//! ```
//!
//! In shared memory ([`buffers`]): a control block and N page slots, each
//! with its page number, state (Empty, ReadInProgress, Valid,
//! WriteInProgress), dirty flag, LRU count, an I/O lock, one LSN per group of
//! 32 xids, and the page bytes. `64 + N × 16448` bytes ([`shmem_size_bytes`]);
//! the cluster uses N = [`CLOG_BUFFERS`] = 128: 2105408 bytes.
//!
//! Two layers, so that each can be tested alone: [`page`] and [`files`] are
//! pure page math and file I/O usable from any process with no shared
//! memory; [`buffers`] is the pool, whose per-process handle [`Clog`] offers
//! `get_status`, `set_status`, `extend_to`, `trim`, `write_dirty_pages` and
//! `truncate_before`.
//!
//! # Invariants
//!
//! 1. (I1) At most one non-Empty slot holds a given page.
//! 2. (I2) A slot's page number changes only under the control lock held
//!    exclusively, and only while the slot is Empty, or Valid and clean.
//! 3. (I3) A slot in ReadInProgress or WriteInProgress ("busy") belongs to
//!    the process holding its I/O lock exclusively. Only that process ends
//!    the I/O, by storing Valid or Empty, and it does so before releasing
//!    the I/O lock, on error and unwinding too (`IoOwner`). Nobody else
//!    changes a busy slot's state or page number.
//! 4. (I4) The bytes of a Valid or WriteInProgress slot are the page's
//!    current contents; those of a ReadInProgress slot mean nothing yet.
//! 5. (I5) A slot's group LSN is at least the commit LSN of every
//!    asynchronous commit recorded in that group since the page was read or
//!    zeroed. A page read from disk starts with zero LSNs: it was written
//!    only after the WAL it depends on was flushed (C2).
//! 6. (I6) `dirty` is set after every change to a slot's bytes, and cleared
//!    only by the process starting a write, under the control lock held
//!    exclusively, before it copies the bytes.
//! 7. (I7) The latest page (the last one `extend_to` zeroed or `trim`
//!    named) is never chosen for eviction; hence a pool needs two slots.
//! 8. (I8) Zero-filled memory followed by `init` is an empty pool with every
//!    lock free.
//!
//! # Locking
//!
//! 1. (L1) The control lock (tranche [`XACT_SLRU_TRANCHE`], PostgreSQL's
//!    `XactSLRULock`), shared: look up a page's slot and read or set status
//!    bits and group LSNs in a usable slot. Exclusive: assign a slot to a
//!    page, move a slot into an I/O state, clear `dirty`, zero or trim a page,
//!    change the latest page, empty slots at truncation.
//! 2. (L2) A slot's I/O lock (tranche [`XACT_BUFFER_TRANCHE`]) is held
//!    exclusively for the whole of that slot's read or write, including the
//!    WAL flush before a write. Others wait for that I/O by taking the lock
//!    in shared mode and releasing it at once.
//! 3. (L3) Lock order: the control lock before a slot I/O lock, never the
//!    reverse. A process holding an I/O lock never acquires the control lock:
//!    it ends the I/O with an atomic store (I3), releases the I/O lock, and
//!    only then re-takes the control lock. Waiting for I/O therefore means:
//!    release the control lock, pass through the I/O lock, re-take the
//!    control lock, look again.
//! 4. (L4) A process holds at most one slot I/O lock at a time.
//! 5. (L5) The [`WalFlush`] callback runs holding one slot I/O lock and no
//!    control lock; it must not use the commit log. In the cluster-wide lock
//!    order: commit log control lock, then commit log slot I/O lock, then
//!    the WAL's locks.
//! 6. (L6) The spinlock `unsynced_lock` protects the range of segments
//!    written since the last checkpoint; it is held for two atomic updates,
//!    with or without the other locks.
//! 7. (L7) The LRU clock and LRU counts are updated with relaxed atomics
//!    under the control lock in either mode; a race only changes which slot
//!    looks oldest.
//! 8. (L8) Page bytes, group LSNs and `dirty` are atomics. They change only
//!    under the control lock (either mode); the owner of a write copies the
//!    bytes and reads the LSNs without it, the slot being kept from eviction
//!    by its WriteInProgress state (I3).
//!
//! A reader loses the page it just read if someone evicts it between the
//! end of the read and the re-taking of the control lock (L3); it then reads
//! again. With more slots than pages in concurrent use this is rare.
//!
//! # Crash safety
//!
//! 1. (C1) The commit log is not WAL-logged per status change. Commit and
//!    abort records are; replay from the last checkpoint's redo point sets
//!    their statuses again, so anything written after the redo point may be
//!    lost or torn. A page that never reached disk reads as zeros: in
//!    progress, which for an xid not running after a restart means aborted.
//! 2. (C2) The WAL-before-data rule for asynchronous commits: `set_status`
//!    stores the commit LSN in the xid's group before the status bits; a
//!    write copies the bits before reading the LSNs, flushes the WAL up to
//!    the largest, and only then writes the copy. So every status on disk is
//!    covered by WAL on disk, and a commit the WAL lost is never seen as
//!    committed. Synchronous commits flush their record before setting the
//!    status and pass no LSN; aborts need none (losing one is harmless).
//! 3. (C3) A checkpoint (`write_dirty_pages`) writes every dirty page, waits
//!    for writes in progress, then fsyncs every segment written since the
//!    previous checkpoint by any process (evictions record their segment in
//!    shared memory after writing) and the directory. The caller must keep
//!    the checkpoint's redo point from passing a commit that has logged its
//!    record but not yet set its status (PostgreSQL's `DELAY_CHKPT_START`),
//!    or that status would be in neither the checkpoint nor the replay.
//!    A failed fsync is a PANIC.
//! 4. (C4) No zero-page or truncate WAL records (PostgreSQL has them): with
//!    64-bit xids a page is never reused. `extend_to` zeroes each new page in
//!    memory, overwriting whatever a previous life left on disk, and at the
//!    end of recovery `trim(next_xid)` clears the statuses from `next_xid` to
//!    the end of its page, which may hold aborts of xids assigned before the
//!    crash whose records never reached disk (those xids will be assigned
//!    again). Truncation only removes segments below every xid still
//!    referenced, and replay never looks there.

pub mod buffers;
pub mod error;
pub mod files;
pub mod page;

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod test_support;

pub use buffers::{
    init_pool, shmem_size_bytes, Clog, ClogBuffers, ClogCheckpointStats, ClogShared, ClogSlot,
    SharedClogBuffers, WalFlush, CLOG_BUFFERS, XACT_BUFFER_TRANCHE, XACT_SLRU_TRANCHE,
};
pub use error::{ClogError, SlruOp};
pub use files::{SlruFiles, PG_XACT_DIR};
pub use page::{ClogPageNo, SegmentNo, XidPosition, XidStatus};
