//! The checkpointer's shared state (PostgreSQL's `CheckpointerShmem` in
//! `checkpointer.c`, with the request forwarding of `sync.c`): how other
//! processes ask for a checkpoint and wait for it, and how they hand the
//! fsyncs and file removals of their writes and drops to the checkpointer.
//!
//! ```text
//!   one region of the segment (RegionId::Checkpointer)
//!   ┌───────────────────────────────────────────────┬──────────────────────────────┐
//!   │ CheckpointerShared (64 B)                     │ RequestSlot × max_requests   │
//!   │ ckpt_lck: ckpt_flags started done failed      │ (kind, spc, db, rel, fork,   │
//!   │ checkpointer_pid  recovery_finished           │  segno), 24 B each           │
//!   │ queue_lock (CheckpointerCommLock): num_requests│                              │
//!   └───────────────────────────────────────────────┴──────────────────────────────┘
//!
//!   backend, bgwriter ── Smgr::write/extend/truncate ──► forward_fsync ──┐
//!   backend (DROP, at commit) ── Smgr::unlink ──► forward_unlink ────────┤ queue
//!   checkpointer ◄── absorb (each loop, while napping, at checkpoint step 8)
//!
//!   backend (CHECKPOINT) ── request_checkpoint: flags, SIGINT ──► checkpointer
//!        └── waits: a checkpoint that *started* after the request has ended
//! ```
//!
//! Files: here the region, its sizes and the handle [`CheckpointerQueue`];
//! `queue.rs` forwarding, compaction and absorbing (`ForwardSyncRequest`,
//! `CompactCheckpointerRequestQueue`, `AbsorbSyncRequests`); `requests.rs`
//! the checkpoint request protocol (`RequestCheckpoint` and the
//! checkpointer's side of it); `forwarder.rs` the [`SyncRequestForwarder`]
//! that `Smgr` uses in every process but the checkpointer and startup.
//!
//! # Rules
//!
//! 1. (F1) **A write's fsync is never lost.** A process other than the
//!    checkpointer and the startup process queues the fsync request of a
//!    relation segment it wrote *before* its `Smgr` write call returns; if
//!    the queue is full (after compaction) or no checkpointer runs, it
//!    fsyncs the segment itself before returning. A buffer write clears
//!    `BM_CHECKPOINT_NEEDED` only after that call returns, and a checkpoint
//!    absorbs the queue after its buffer writes (step 8), so every write
//!    a checkpoint relies on is fsynced by it or was fsynced already.
//! 2. (F2) **Tombstones wait for a checkpoint that began after them.** An
//!    unlink request is queued after the file was truncated; the
//!    checkpointer removes a tombstone only after a checkpoint whose redo
//!    point follows the request (it hands absorbed tombstones to the
//!    *next* checkpoint's step 3, never to one already running).
//! 3. (F3) **Requests are counted, not just flagged.** `ckpt_started` is
//!    raised when the checkpointer takes the flags and starts, `ckpt_done`
//!    when it ends, `ckpt_failed` too if it failed. A requester that saw
//!    `started = s` before setting its flags waits for `started != s`, then
//!    for `done == that started`; so the checkpoint it waits for began after
//!    its request (PostgreSQL's protocol, comparing with wrapping
//!    arithmetic).
//! 4. (F4) Duplicate requests may be dropped (compaction keeps the last of
//!    each); fsyncing a segment twice, or one that was dropped since (its
//!    file is gone or a zero-length tombstone), is harmless.
//!
//! # Locking
//!
//! - `ckpt_lck` (spinlock) protects `ckpt_flags`, `ckpt_started`,
//!   `ckpt_done`, `ckpt_failed`: loads and stores only inside it.
//! - `queue_lock` (LWLock, tranche [`CHECKPOINTER_COMM_TRANCHE`],
//!   PostgreSQL's CheckpointerCommLock) protects `num_requests` and the
//!   slots, exclusive for every access. It is taken while holding a buffer's
//!   content and I/O locks (a buffer write forwards its fsync), so it comes
//!   after them in the lock order, and nothing else is acquired under it.
//!   Compaction allocates under it (a hash set), as PostgreSQL's does.
//! - `checkpointer_pid`, `recovery_finished` and `writer_fsyncs` are
//!   atomics needing no lock (written by one process: the checkpointer, the
//!   startup process, any writer with `fetch_add`).
//!
//! # Crash safety
//!
//! Nothing here is on disk, and nothing needs to be: a request lost in a
//! crash belongs to a write that replay will redo from WAL, and a tombstone
//! lost in a crash is a zero-length file that only holds its relfilenode
//! back (the next drop of it, or nothing). A process that dies holding
//! `queue_lock` or `ckpt_lck` is a crash; the cycle rebuilds the region.

mod forwarder;
mod queue;
mod requests;

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod tests;

pub use forwarder::SharedSyncForwarder;
pub use queue::{AbsorbedRequests, Forwarded, RequestKind};
pub use requests::{request_checkpoint, CHECKPOINTER_NOT_RUNNING, MAX_SIGNAL_WAIT};

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use shmem_layout::lwlock::{LWLock, LWLockTranche};
use shmem_layout::spinlock::SpinLock;

/// PostgreSQL's individual LWLock number of CheckpointerCommLock.
pub const CHECKPOINTER_COMM_TRANCHE: LWLockTranche = LWLockTranche(17);

/// Fewest queue entries, whatever `shared_buffers` says.
pub const MIN_MAX_REQUESTS: usize = 1024;

/// The region's header. Valid when zero-filled, apart from the lock's
/// tranche and `max_requests`, which [`CheckpointerQueue::init`] sets.
#[repr(C, align(64))]
pub struct CheckpointerShared {
    /// Protects the four `ckpt_*` fields (PostgreSQL's `ckpt_lck`).
    ckpt_lck: SpinLock,
    /// [`crate::recovery::CheckpointFlags`] bits requested and not yet
    /// taken by the checkpointer. Under `ckpt_lck`.
    ckpt_flags: AtomicU32,
    /// Checkpoints started, ended, and failed (wrapping). Under `ckpt_lck`.
    ckpt_started: AtomicU32,
    ckpt_done: AtomicU32,
    ckpt_failed: AtomicU32,
    /// The checkpointer's pid, 0 until it runs. Written by the checkpointer.
    checkpointer_pid: AtomicI32,
    /// 1 once the startup process has finished recovery, including its
    /// end-of-recovery checkpoint. Until then the checkpointer starts no
    /// online checkpoint and the bgwriter writes nothing: that checkpoint
    /// does not absorb this queue. Written by the startup process.
    recovery_finished: AtomicU32,
    /// Fsyncs writers did themselves because the queue could not take them
    /// (PostgreSQL's `buffers_backend_fsync`).
    writer_fsyncs: AtomicU64,
    /// Protects `num_requests` and the slots (CheckpointerCommLock).
    queue_lock: LWLock,
    /// Slots in use, from index 0. Under `queue_lock`.
    num_requests: AtomicU32,
    /// The number of slots; set at init, read-only afterwards.
    max_requests: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<CheckpointerShared>() == 64);

/// One queued request. Every field is written and read under `queue_lock`;
/// atomics only so that the slots may be shared without `unsafe`.
#[repr(C)]
pub struct RequestSlot {
    kind: AtomicU32,
    spc_oid: AtomicU32,
    db_oid: AtomicU32,
    rel_number: AtomicU32,
    fork: AtomicU32,
    segno: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<RequestSlot>() == 24);

/// Bytes of the region for a queue of `max_requests` entries.
pub const fn shmem_size_bytes(max_requests: usize) -> usize {
    std::mem::size_of::<CheckpointerShared>() + max_requests * std::mem::size_of::<RequestSlot>()
}

/// The queue's length for a cluster: PostgreSQL's `NBuffers`, at least
/// [`MIN_MAX_REQUESTS`]. Each buffer written between two absorbs can add
/// at most one entry, and duplicates are compacted away.
pub fn max_requests_for(shared_buffers: u32) -> usize {
    (shared_buffers as usize).max(MIN_MAX_REQUESTS)
}

/// A process's handle on the region. Cheap to copy.
#[derive(Clone, Copy)]
pub struct CheckpointerQueue<'a> {
    shared: &'a CheckpointerShared,
    slots: &'a [RequestSlot],
}

impl<'a> CheckpointerQueue<'a> {
    /// The region at `base`, `len` bytes long; its slot count follows from
    /// `len`.
    ///
    /// # Safety
    /// `base` is 64-byte aligned and points to `len` bytes of shared memory
    /// that stay mapped for `'a`, zero-filled or initialised by
    /// [`CheckpointerQueue::init`], used as this region only.
    pub unsafe fn attach(base: *mut u8, len: usize) -> CheckpointerQueue<'a> {
        let header = std::mem::size_of::<CheckpointerShared>();
        assert!(len >= header, "checkpointer region too small");
        assert_eq!(base as usize % 64, 0, "checkpointer region misaligned");
        let n = (len - header) / std::mem::size_of::<RequestSlot>();
        // SAFETY: per the contract; the header and `n` slots fit in `len`,
        // both types are atomics and locks, valid when zero-filled.
        unsafe {
            CheckpointerQueue {
                shared: &*(base as *const CheckpointerShared),
                slots: std::slice::from_raw_parts(base.add(header) as *const RequestSlot, n),
            }
        }
    }

    /// Initialises a fresh region (the postmaster, before any child runs).
    pub fn init(&self) {
        let s = self.shared;
        s.ckpt_lck.init();
        s.queue_lock.init(CHECKPOINTER_COMM_TRANCHE);
        for a in [
            &s.ckpt_flags,
            &s.ckpt_started,
            &s.ckpt_done,
            &s.ckpt_failed,
            &s.recovery_finished,
            &s.num_requests,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        s.checkpointer_pid.store(0, Ordering::Relaxed);
        s.writer_fsyncs.store(0, Ordering::Relaxed);
        s.max_requests
            .store(self.slots.len() as u32, Ordering::Release);
    }

    /// How many requests the queue holds at most.
    pub fn max_requests(&self) -> usize {
        (self.shared.max_requests.load(Ordering::Acquire) as usize).min(self.slots.len())
    }

    /// The checkpointer, once it runs: publishes its pid.
    pub fn set_checkpointer_pid(&self, pid: i32) {
        self.shared.checkpointer_pid.store(pid, Ordering::SeqCst);
    }

    /// The checkpointer's pid, 0 if none has started.
    pub fn checkpointer_pid(&self) -> i32 {
        self.shared.checkpointer_pid.load(Ordering::SeqCst)
    }

    /// The startup process, after recovery and its end-of-recovery
    /// checkpoint.
    pub fn set_recovery_finished(&self) {
        self.shared.recovery_finished.store(1, Ordering::SeqCst);
    }

    /// Whether the startup process has finished (see the field).
    pub fn recovery_finished(&self) -> bool {
        self.shared.recovery_finished.load(Ordering::SeqCst) != 0
    }

    /// Fsyncs writers had to do themselves.
    pub fn writer_fsyncs(&self) -> u64 {
        self.shared.writer_fsyncs.load(Ordering::Relaxed)
    }

    pub(crate) fn note_writer_fsync(&self) {
        self.shared.writer_fsyncs.fetch_add(1, Ordering::Relaxed);
    }
}
