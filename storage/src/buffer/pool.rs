//! The pool in shared memory: where each part sits in the region, how a
//! process attaches it, how it is initialised, and the clock sweep that
//! picks a victim (PostgreSQL's `buf_init.c` and `freelist.c`). The rules
//! (R1.., L1.., C1..) are stated in the header of [`crate::buffer`].
//!
//! ```text
//!  region base (64-byte aligned; the same offsets in every process)
//!  ┌───────────────────────────────┐ 0
//!  │ PoolHeader             64 B   │ nbuffers, nbuckets, clock hand, allocations
//!  ├───────────────────────────────┤ 64
//!  │ MappingPartition × 128 128 B  │ the partition locks
//!  ├───────────────────────────────┤ 16448
//!  │ BufferDesc × n          64 B  │
//!  ├───────────────────────────────┤
//!  │ bucket heads × nbuckets  4 B  │ (rounded up to 64)
//!  ├───────────────────────────────┤
//!  │ MappingEntry × n        24 B  │ (rounded up to 64)
//!  ├───────────────────────────────┤ rounded up to 4096
//!  │ pages × n             8192 B  │
//!  └───────────────────────────────┘
//! ```
//!
//! # Invariants
//!
//! 1. The whole region is valid when zero-filled: every lock free, every
//!    buffer empty, the table empty. [`BufferPool::init`] writes the sizes
//!    into the header, numbers the descriptors and names lock tranches;
//!    [`BufferPool::is_initialized`] checks that it ran for this `nbuffers`.
//! 2. The clock hand `next_victim` only grows (a u64 at one step per
//!    nanosecond lasts centuries); the buffer under it is
//!    `next_victim % nbuffers` and `next_victim / nbuffers` is the number of
//!    completed passes. No lock: one `fetch_add` per step.
//! 3. Page bytes of a buffer are accessed only under the rules R1..R5 and
//!    I/O rule L3; nothing in this file touches them.
//!
//! # Locking
//!
//! The clock sweep reads each state word and takes a header spinlock only
//! on a buffer with no pins (L5); it holds no other lock.
//!
//! # Crash safety
//!
//! Nothing here is durable (C5).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::types::BLCKSZ;

use super::desc::{BufState, BufferDesc, BufferId, BufferTag, LockedHeader, BM_TAG_VALID};
use super::desc::{BM_LOCKED, BUF_USAGECOUNT_ONE};
use super::mapping::NUM_BUFFER_PARTITIONS;
use super::mapping::{mapping_buckets, BufMapping, MappingEntry, MappingPartition};

/// `PoolHeader::magic` once [`BufferPool::init`] ran.
const POOL_MAGIC: u32 = u32::from_be_bytes(*b"BUFP");

/// The pool's own fields.
#[repr(C, align(64))]
pub struct PoolHeader {
    /// [`POOL_MAGIC`] after init. Written by init only, like the next two.
    magic: AtomicU32,
    nbuffers: AtomicU32,
    nbuckets: AtomicU32,
    _pad: u32,
    /// The clock hand (I2). Atomic, no lock.
    next_victim: AtomicU64,
    /// Victims handed out since init (PostgreSQL's `numBufferAllocs`), for
    /// the bgwriter and statistics. Atomic, no lock.
    num_allocs: AtomicU64,
    _reserved: [u8; 32],
}

/// One shared page. Its bytes are reached only through the content lock
/// rules (R1..R5) or by the owner of an I/O on it (L3).
#[repr(C, align(64))]
pub struct BufferPage(UnsafeCell<[u8; BLCKSZ]>);

// SAFETY: BufferPage is shared between processes and threads; every access
// to the bytes goes through a raw pointer under the rules R1..R5 / L3 that
// make them data-race free (one writer under the exclusive content lock or
// as I/O owner of an invalid buffer; readers under a shared content lock).
unsafe impl Sync for BufferPage {}

const _: () = {
    assert!(std::mem::size_of::<PoolHeader>() == 64);
    assert!(std::mem::size_of::<BufferPage>() == BLCKSZ);
};

const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Byte offsets of the pool's parts from the region base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLayout {
    pub nbuffers: usize,
    pub nbuckets: usize,
    pub partitions_offset: usize,
    pub descriptors_offset: usize,
    pub buckets_offset: usize,
    pub entries_offset: usize,
    pub pages_offset: usize,
    pub total_bytes: usize,
}

impl PoolLayout {
    /// The layout for `nbuffers` buffers (at least 1, below 2^31).
    pub const fn new(nbuffers: usize) -> PoolLayout {
        assert!(
            nbuffers >= 1 && nbuffers < (1 << 31),
            "nbuffers out of range"
        );
        let nbuckets = mapping_buckets(nbuffers);
        let partitions_offset = std::mem::size_of::<PoolHeader>();
        let descriptors_offset =
            partitions_offset + NUM_BUFFER_PARTITIONS * std::mem::size_of::<MappingPartition>();
        let buckets_offset = descriptors_offset + nbuffers * std::mem::size_of::<BufferDesc>();
        let entries_offset = buckets_offset + round_up(nbuckets * 4, 64);
        let pages_offset = round_up(
            entries_offset + round_up(nbuffers * std::mem::size_of::<MappingEntry>(), 64),
            4096,
        );
        PoolLayout {
            nbuffers,
            nbuckets,
            partitions_offset,
            descriptors_offset,
            buckets_offset,
            entries_offset,
            pages_offset,
            total_bytes: pages_offset + nbuffers * BLCKSZ,
        }
    }
}

/// Bytes of shared memory a pool of `nbuffers` needs:
/// `round_up(64 + 128·128 + 64·n + round_up(4·nbuckets, 64)
///  + round_up(24·n, 64), 4096) + 8192·n`, with
/// `nbuckets = 2 · next_power_of_two(max(n, 64))`.
pub const fn shmem_size_bytes(nbuffers: usize) -> usize {
    PoolLayout::new(nbuffers).total_bytes
}

/// A process's view of the pool in shared memory. Cheap to copy; holds no
/// per-process state (that is [`super::BufferManager`]).
#[derive(Clone, Copy)]
pub struct BufferPool<'a> {
    pub(crate) header: &'a PoolHeader,
    pub(crate) descs: &'a [BufferDesc],
    pub(crate) pages: &'a [BufferPage],
    pub(crate) mapping: BufMapping<'a>,
}

/// One buffer as `pg_buffercache` would show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferInfo {
    pub id: BufferId,
    /// `None` unless `BM_TAG_VALID`.
    pub tag: Option<BufferTag>,
    pub state: BufState,
}

impl<'a> BufferPool<'a> {
    /// Lay the pool out in the region at `base`.
    ///
    /// # Safety
    ///
    /// - `base` is aligned to 64 bytes and `len >= shmem_size_bytes(nbuffers)`
    ///   bytes from it are mapped readable and writable for all of `'a`
    ///   (in a server: the shared segment, at the same offset in every
    ///   process; a forked or exec'ed child may map it at another address).
    /// - Those bytes are zero-filled, or have been laid out by `attach` with
    ///   the same `nbuffers` (in any process), and nothing writes them except
    ///   through a `BufferPool`.
    /// - [`BufferPool::init`] runs once before any process uses the pool
    ///   through a [`super::BufferManager`], while no process uses it.
    ///
    /// Panics if `base` is misaligned or `len` too small (checked, cheap).
    pub unsafe fn attach(base: *mut u8, len: usize, nbuffers: usize) -> BufferPool<'a> {
        let l = PoolLayout::new(nbuffers);
        assert!(
            base as usize % 64 == 0,
            "buffer pool region must be 64-byte aligned"
        );
        assert!(
            len >= l.total_bytes,
            "buffer pool region of {len} bytes, {} needed",
            l.total_bytes
        );
        // SAFETY: per the contract, every offset below is inside the
        // region, suitably aligned (64-byte base, offsets multiples of the
        // types' alignment), valid when zero or laid out this way before,
        // and shared only through atomics, locks and UnsafeCell pages.
        unsafe {
            let at = |off: usize| base.add(off);
            BufferPool {
                header: &*(at(0) as *const PoolHeader),
                descs: std::slice::from_raw_parts(
                    at(l.descriptors_offset) as *const BufferDesc,
                    nbuffers,
                ),
                pages: std::slice::from_raw_parts(
                    at(l.pages_offset) as *const BufferPage,
                    nbuffers,
                ),
                mapping: BufMapping {
                    partitions: std::slice::from_raw_parts(
                        at(l.partitions_offset) as *const MappingPartition,
                        NUM_BUFFER_PARTITIONS,
                    ),
                    buckets: std::slice::from_raw_parts(
                        at(l.buckets_offset) as *const AtomicU32,
                        l.nbuckets,
                    ),
                    entries: std::slice::from_raw_parts(
                        at(l.entries_offset) as *const MappingEntry,
                        nbuffers,
                    ),
                },
            }
        }
    }

    /// Make every buffer empty and every lock free (I1). Only while no
    /// process uses the pool: segment creation and crash re-initialisation.
    /// Page bytes are left as they are: they mean nothing until `BM_VALID`.
    pub fn init(&self) {
        let h = self.header;
        h.nbuffers.store(self.descs.len() as u32, Ordering::Relaxed);
        h.nbuckets
            .store(self.mapping.buckets.len() as u32, Ordering::Relaxed);
        h.next_victim.store(0, Ordering::Relaxed);
        h.num_allocs.store(0, Ordering::Relaxed);
        for (i, d) in self.descs.iter().enumerate() {
            d.init(BufferId(i as u32));
        }
        self.mapping.init();
        h.magic.store(POOL_MAGIC, Ordering::Release);
    }

    /// Whether `init` ran for this many buffers.
    pub fn is_initialized(&self) -> bool {
        let h = self.header;
        h.magic.load(Ordering::Acquire) == POOL_MAGIC
            && h.nbuffers.load(Ordering::Relaxed) as usize == self.descs.len()
            && h.nbuckets.load(Ordering::Relaxed) as usize == self.mapping.buckets.len()
    }

    pub fn nbuffers(&self) -> usize {
        self.descs.len()
    }

    pub(crate) fn desc(&self, id: BufferId) -> &'a BufferDesc {
        &self.descs[id.index()]
    }

    /// The page bytes, for reading.
    ///
    /// # Safety
    ///
    /// The caller holds a pin and the content lock (either mode), or owns
    /// the I/O on the buffer (R1, L3), for as long as the reference lives.
    pub(crate) unsafe fn page(&self, id: BufferId) -> &'a [u8; BLCKSZ] {
        // SAFETY: per the contract no one writes the bytes meanwhile.
        unsafe { &*self.pages[id.index()].0.get() }
    }

    /// The page bytes, for writing.
    ///
    /// # Safety
    ///
    /// The caller holds a pin and the content lock exclusively, or owns the
    /// I/O on a buffer without `BM_VALID` (R3, L3), for as long as the
    /// reference lives, and makes no other reference to the page meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn page_mut(&self, id: BufferId) -> &'a mut [u8; BLCKSZ] {
        // SAFETY: per the contract this is the only reference.
        unsafe { &mut *self.pages[id.index()].0.get() }
    }

    /// The buffer holding `tag`, if any, at this instant (takes the
    /// partition lock shared). For diagnostics and tests: without a pin the
    /// answer may be stale at once.
    pub fn lookup(&self, tag: &BufferTag) -> Option<BufferId> {
        let hash = tag.hash_code();
        let _part = self.mapping.partition_lock(hash).acquire_shared();
        self.mapping.lookup(tag, hash)
    }

    /// One buffer's tag and state, read under its header spinlock.
    pub fn buffer_info(&self, id: BufferId) -> BufferInfo {
        let desc = self.desc(id);
        let hdr = desc.lock_header();
        let words = desc.tag_words();
        let state = BufState(hdr.state & !BM_LOCKED);
        drop(hdr);
        BufferInfo {
            id,
            tag: if state.has(BM_TAG_VALID) {
                BufferTag::from_words(words)
            } else {
                None
            },
            state,
        }
    }

    /// Advance the clock hand one step and return the buffer it passed
    /// (PostgreSQL's `ClockSweepTick`).
    fn clock_tick(&self) -> BufferId {
        let tick = self.header.next_victim.fetch_add(1, Ordering::Relaxed);
        BufferId((tick % self.descs.len() as u64) as u32)
    }

    /// How many times the clock hand has moved since init: the hand is at
    /// buffer `clock_ticks() % nbuffers`, and the count tells one lap from
    /// the next (PostgreSQL's `StrategySyncStart` with its pass count).
    pub fn clock_ticks(&self) -> u64 {
        self.header.next_victim.load(Ordering::Relaxed)
    }

    /// Victims handed out since init.
    pub fn num_allocs(&self) -> u64 {
        self.header.num_allocs.load(Ordering::Relaxed)
    }

    /// One step of the clock sweep (PostgreSQL's `StrategyGetBuffer`
    /// loop body): `Victim` with its header spinlock held if the buffer
    /// under the hand has no pins and a zero usage count; otherwise its usage
    /// count is decremented (`Decremented`) or it is pinned (`Pinned`).
    pub(crate) fn sweep_step(&self) -> SweepStep<'a> {
        let id = self.clock_tick();
        let desc = self.desc(id);
        // Unlocked pre-check: a pinned buffer is skipped without its spinlock.
        if desc.load_state().refcount() != 0 {
            return SweepStep::Pinned;
        }
        let mut hdr = desc.lock_header();
        let s = hdr.get();
        if s.refcount() != 0 {
            return SweepStep::Pinned;
        }
        if s.usage_count() > 0 {
            hdr.state -= BUF_USAGECOUNT_ONE;
            return SweepStep::Decremented;
        }
        self.header.num_allocs.fetch_add(1, Ordering::Relaxed);
        SweepStep::Victim(id, hdr)
    }
}

/// What one clock step found.
pub(crate) enum SweepStep<'a> {
    Victim(BufferId, LockedHeader<'a>),
    Decremented,
    Pinned,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_formula_matches_the_layout() {
        for n in [1, 4, 100, 16384] {
            let nb = mapping_buckets(n);
            let expected = round_up(
                64 + 128 * 128 + 64 * n + round_up(4 * nb, 64) + round_up(24 * n, 64),
                4096,
            ) + 8192 * n;
            assert_eq!(shmem_size_bytes(n), expected, "n = {n}");
        }
        // shared_buffers = 128MB.
        assert_eq!(shmem_size_bytes(16384), 135_811_072);
        let l = PoolLayout::new(16384);
        assert_eq!(l.pages_offset % 4096, 0);
        assert_eq!(l.descriptors_offset % 64, 0);
    }
}
