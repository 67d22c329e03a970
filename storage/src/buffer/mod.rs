//! The shared buffer pool: 8 KB pages of relations cached in shared memory,
//! shared by every process (PostgreSQL's `src/backend/storage/buffer`).
//!
//! Backends read and change pages through it; the startup process replays
//! WAL into it; the checkpointer writes every dirty page at each checkpoint;
//! the bgwriter writes dirty pages just ahead of the clock hand so that
//! backends find clean victims. The postmaster only creates the memory.
//!
//! ```text
//!   one region of the shared segment (pool.rs)
//!   ┌────────┬────────────────────┬──────────────────┬───────────────┬─────────────┐
//!   │ header │ 128 partition locks│ descriptors × n  │ mapping table │ pages × n   │
//!   │ clock  │ (mapping.rs)       │ (desc.rs)        │ (mapping.rs)  │ 8 KB each   │
//!   └────────┴────────────────────┴──────────────────┴───────────────┴─────────────┘
//!        per process: BufferManager (manager.rs) = the pool + private pin counts
//!        handles:     PinnedBuffer, SharedContentGuard, ExclusiveContentGuard (guards.rs)
//!        bulk:        checkpoint_buffers, bgwriter_lru_pass, flush/drop_relation_buffers
//!                     (checkpoint.rs)
//! ```
//!
//! Using it: the postmaster reserves [`shmem_size_bytes`]`(nbuffers)` bytes
//! in the segment, lays the pool out with [`BufferPool::attach`] and calls
//! [`BufferPool::init`]; every child attaches the same region (at any
//! address) and makes one [`BufferManager`]. Reads go through
//! [`BufferManager::read_buffer`], which returns a [`PinnedBuffer`]; its
//! `lock_shared`/`lock_exclusive` give the page bytes.
//!
//! Files: `desc.rs` descriptors and the state word; `mapping.rs` the
//! partitioned tag → buffer table; `pool.rs` layout, attach, init, clock
//! sweep; `manager.rs` pins, read, extend, I/O, flush; `guards.rs` RAII
//! handles; `checkpoint.rs` bulk writes and drops; `error.rs`; tests in
//! `tests.rs` (one process) and `cross_process_tests.rs` (forked children).
//!
//! # Buffer rules
//!
//! As PostgreSQL's `storage/buffer/README` states them, adapted where noted:
//!
//! 1. (R1) To read a page, a process holds a pin on its buffer and the
//!    content lock in shared or exclusive mode. Here the page bytes are
//!    reachable only through a content guard, so this is enforced by type.
//! 2. (R2) A pin alone keeps the buffer holding the same block (no
//!    eviction, no retagging). PostgreSQL also lets a process keep reading a
//!    tuple it found after dropping the content lock, pin still held; here a
//!    caller copies what it needs before dropping the guard.
//! 3. (R3) To add a tuple or change a tuple's xmin/xmax, a process holds a
//!    pin and the content lock in exclusive mode.
//! 4. (R4) PostgreSQL lets hint bits be set under a shared content lock.
//!    Not supported yet: under a shared lock the page is `&[u8]` for
//!    everyone, so a concurrent byte write would be a data race. Hint bits
//!    need an exclusive lock until an atomic hint-bit API exists.
//! 5. (R5) To physically remove tuples or compact free space, a process
//!    holds a pin and the exclusive lock and has seen the shared pin count
//!    at one (a cleanup lock: [`PinnedBuffer::try_lock_for_cleanup`]).
//! 6. (R6) A page is marked dirty only under the exclusive content lock
//!    ([`ExclusiveContentGuard::mark_dirty`]), after changing it.
//! 7. (R7) A buffer's tag and state flags change only under its header
//!    spinlock (the `BM_LOCKED` bit of the state word); the tag only while
//!    no other process pins the buffer, and under the mapping partition
//!    lock of the old and the new tag.
//! 8. (R8) The WAL rule: a dirty page is written only after the WAL up to
//!    its LSN is flushed (C1).
//!
//! # Locking
//!
//! The buffer manager's locks, outermost first; a process that holds
//! several took them in this order:
//!
//! 1. (L1) Buffer content locks (LWLock per buffer, tranche 40). A process
//!    may hold several; the caller orders them (B-tree: parent before child,
//!    left before right; heap: lower block first). Taking one the process
//!    holds already panics.
//! 2. (L2) The content lock of a *victim* being evicted is taken only
//!    conditionally: the evicting process may hold other content locks, and
//!    the victim's holder may be waiting for one of them. Busy → next victim.
//! 3. (L3) A buffer's I/O lock (LWLock per buffer, tranche 41, PostgreSQL
//!    13's `io_in_progress_lock`) is held exclusively by the process doing a
//!    read or write of that buffer, for the whole I/O, while
//!    `BM_IO_IN_PROGRESS` is set. It comes after the buffer's content lock
//!    (a flush holds the content lock shared; zero-and-lock and extend hold
//!    it exclusive). An I/O owner waits for no content lock and no partition
//!    lock. Others wait for an I/O by taking the I/O lock shared and
//!    releasing it, holding no partition lock.
//! 4. (L4) Mapping partition locks (128, tranche 42): a lookup holds its
//!    partition's lock shared, an insertion or deletion exclusive. At most
//!    two at once, lower partition number first. While holding one a
//!    process pins (an atomic) and takes header spinlocks, nothing else. A
//!    process may hold content locks while it takes a partition lock (a
//!    read while holding another page, as a heap update does); never the
//!    reverse. No global lock is on the read path: a hit is one shared
//!    partition lock and one compare-and-swap.
//! 5. (L5) A buffer header spinlock is innermost: held for a few loads and
//!    stores, with no LWLock acquisition, allocation, system call or other
//!    header spinlock inside.
//! 6. (L6) `checkpoint_buffers`, `bgwriter_lru_pass` and
//!    `flush_relation_buffers` wait for content locks in shared mode; their
//!    caller holds no content lock (checked).
//!
//! The WAL's locks come after L3 ([`crate::clog::WalFlush`] is called
//! holding a content lock shared and the I/O lock) and are never held with
//! L4 or L5. The clock hand and the allocation counter are atomics outside
//! the order.
//!
//! # Crash safety
//!
//! 1. (C1) WAL before data: [`BufferManager`]'s flush copies the page under
//!    the content lock (shared: nobody can change it, R3), reads the copy's
//!    LSN, calls `wal.flush_wal_up_to(lsn)`, and only then writes the copy.
//!    A zero LSN (a page never WAL-logged, such as a fresh extension) needs
//!    no flush.
//! 2. (C2) Checksums: set on the private copy just before the write, and
//!    [`crate::page::verify_page`] runs after every read; a page that fails
//!    is an error and its buffer stays invalid. A torn write fails the
//!    checksum; replay repairs it from the full-page image that the first
//!    change after a checkpoint logs.
//! 3. (C3) A checkpoint writes every buffer that was dirty when it started;
//!    the writes count only once fsynced. A write by a backend or the
//!    bgwriter queues its fsync request for the checkpointer before
//!    `Smgr::write` returns (or fsyncs itself), and the I/O, hence
//!    `BM_CHECKPOINT_NEEDED`, ends only after that; the checkpoint absorbs
//!    the queue after its writes (`crate::checkpointer_shmem`, rule F1).
//! 4. (C4) A failed write leaves the page dirty with `BM_IO_ERROR`; a
//!    failed read leaves the buffer without `BM_VALID`. No buffer ever
//!    claims contents it does not have.
//! 5. (C5) The pool is volatile. A process that dies holding a pin, a lock
//!    or an I/O leaves that state behind; nothing here repairs it. The
//!    postmaster treats the death as a crash and re-creates the segment
//!    (zero-filled, then `init`), and replay rebuilds what was lost.

mod checkpoint;
mod desc;
mod error;
mod guards;
mod manager;
mod mapping;
mod pool;

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use checkpoint::{BgWriterStats, CheckpointBufferStats};
pub use desc::{BufState, BufferId, BufferTag, BM_MAX_USAGE_COUNT};
pub use desc::{BM_CHECKPOINT_NEEDED, BM_DIRTY, BM_IO_ERROR, BM_IO_IN_PROGRESS, BM_JUST_DIRTIED};
pub use desc::{BM_LOCKED, BM_PERMANENT, BM_PIN_COUNT_WAITER, BM_TAG_VALID, BM_VALID};
pub use desc::{BUFFER_CONTENT_TRANCHE, BUFFER_IO_TRANCHE};
pub use error::BufferError;
pub use guards::{ExclusiveContentGuard, PinnedBuffer, SharedContentGuard};
pub use manager::{BlockStorage, BufferManager};
pub use mapping::{mapping_buckets, BUFFER_MAPPING_TRANCHE, NUM_BUFFER_PARTITIONS};
pub use pool::{shmem_size_bytes, BufferInfo, BufferPool, PoolLayout};
