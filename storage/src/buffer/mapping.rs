//! The buffer mapping table: which buffer holds a given [`BufferTag`]
//! (PostgreSQL's `buf_table.c` over a partitioned shared hash table). The
//! rules (R1.., L1.., C1..) are stated in the header of [`crate::buffer`].
//!
//! ```text
//!  hash = tag.hash_code()
//!  partition = hash % 128                       bucket = hash % nbuckets
//!
//!  partitions [128 × 128 B]   buckets [nbuckets × u32]    entries [nbuffers × 24 B]
//!  ┌──────────────┐           ┌────┐                      indexed by buffer id
//!  │ LWLock, pad  │ ◄──────── │ b  │ ─► entry 7 ─► entry 2 ─► end
//!  │ ...          │ (bucket   │ ...│    tag words, next
//!  └──────────────┘  b % 128) └────┘
//! ```
//!
//! Bucket chains in fixed arrays: each bucket heads a chain of entries, and
//! the entry of buffer `b` is `entries[b]`. Links and heads store
//! `buffer id + 1`, so 0 means "none" and zero-filled memory is an empty
//! table.
//!
//! # Invariants
//!
//! 1. `nbuckets` is a power of two and a multiple of 128, so every bucket
//!    lies in exactly one partition (`bucket % 128 == hash % 128`): a
//!    partition lock covers whole chains.
//! 2. A buffer is in at most one chain, so `nbuffers` entries always
//!    suffice. The buffer manager moves a buffer from its old tag to its new
//!    one while holding both partition locks, deleting before inserting
//!    (L4); nobody can observe the moment between.
//! 3. A tag is in at most one chain entry: `insert` is called only after a
//!    `lookup` of the tag under the same exclusive partition lock failed.
//!
//! # Locking
//!
//! Every function here requires the caller to hold the partition lock of
//! the hash it passes: shared for [`BufMapping::lookup`], exclusive for
//! [`BufMapping::insert`] and [`BufMapping::delete`] (L4). The lock gives the
//! ordering; the cells are relaxed atomics only because they live in shared
//! memory.
//!
//! # Crash safety
//!
//! Volatile, like the whole pool (C5).

use std::sync::atomic::{AtomicU32, Ordering};

use shmem_layout::lwlock::{LWLock, LWLockTranche};

use super::desc::{BufferId, BufferTag, TagWords};

/// Partitions of the mapping table, each with its own lock (PostgreSQL's
/// `NUM_BUFFER_PARTITIONS`).
pub const NUM_BUFFER_PARTITIONS: usize = 128;

/// Tranche of the partition locks (PostgreSQL's `BufferMapping`).
pub const BUFFER_MAPPING_TRANCHE: LWLockTranche = LWLockTranche(42);

/// Link value for "no entry".
const NONE: u32 = 0;

/// One partition's lock, alone on two cache lines (as `LWLockPadded`, but
/// 64-byte aligned so that a region at any 64-byte offset can hold it).
#[repr(C, align(64))]
pub struct MappingPartition {
    pub(crate) lock: LWLock,
    _pad: [u8; 120],
}

/// Buffer `b`'s chain entry: the tag it is filed under and the next link.
#[repr(C)]
pub struct MappingEntry {
    tag: [AtomicU32; 5],
    next: AtomicU32,
}

const _: () = {
    assert!(std::mem::size_of::<MappingPartition>() == 128);
    assert!(std::mem::size_of::<MappingEntry>() == 24);
};

/// Buckets for a pool of `nbuffers`: at least two per buffer rounded up to
/// a power of two, and at least 128 (I1).
pub const fn mapping_buckets(nbuffers: usize) -> usize {
    let n = if nbuffers < 64 { 64 } else { nbuffers };
    n.next_power_of_two() * 2
}

/// A process's view of the table in shared memory.
#[derive(Clone, Copy)]
pub(crate) struct BufMapping<'a> {
    pub(crate) partitions: &'a [MappingPartition],
    pub(crate) buckets: &'a [AtomicU32],
    pub(crate) entries: &'a [MappingEntry],
}

impl<'a> BufMapping<'a> {
    /// Free every lock and empty every chain. Only when no process uses it.
    pub(crate) fn init(&self) {
        for p in self.partitions {
            p.lock.init(BUFFER_MAPPING_TRANCHE);
        }
        for b in self.buckets {
            b.store(NONE, Ordering::Relaxed);
        }
        for e in self.entries {
            for w in &e.tag {
                w.store(0, Ordering::Relaxed);
            }
            e.next.store(NONE, Ordering::Relaxed);
        }
    }

    pub(crate) fn partition_of(hash: u32) -> usize {
        hash as usize % NUM_BUFFER_PARTITIONS
    }

    /// The lock of the partition holding `hash`.
    pub(crate) fn partition_lock(&self, hash: u32) -> &'a LWLock {
        &self.partitions[Self::partition_of(hash)].lock
    }

    fn bucket(&self, hash: u32) -> &'a AtomicU32 {
        // I1: buckets.len() is a power of two.
        &self.buckets[hash as usize & (self.buckets.len() - 1)]
    }

    fn entry(&self, link: u32) -> &'a MappingEntry {
        self.entries
            .get(link as usize - 1)
            .expect("buffer mapping link past the table: shared memory is corrupt")
    }

    fn entry_tag(e: &MappingEntry) -> TagWords {
        std::array::from_fn(|i| e.tag[i].load(Ordering::Relaxed))
    }

    /// The buffer filed under `tag`. Partition lock held, either mode.
    pub(crate) fn lookup(&self, tag: &BufferTag, hash: u32) -> Option<BufferId> {
        let words = tag.words();
        let mut link = self.bucket(hash).load(Ordering::Relaxed);
        let mut steps = 0;
        while link != NONE {
            let e = self.entry(link);
            if Self::entry_tag(e) == words {
                return Some(BufferId(link - 1));
            }
            link = e.next.load(Ordering::Relaxed);
            steps += 1;
            assert!(
                steps <= self.entries.len(),
                "shared buffer hash table corrupted: a chain loops"
            );
        }
        None
    }

    /// File buffer `id` under `tag`. Partition lock held exclusively; the
    /// tag is not in the table (I3) and the buffer is in no chain (I2).
    pub(crate) fn insert(&self, tag: &BufferTag, hash: u32, id: BufferId) {
        debug_assert!(self.lookup(tag, hash).is_none(), "tag mapped twice");
        let e = &self.entries[id.index()];
        for (cell, w) in e.tag.iter().zip(tag.words()) {
            cell.store(w, Ordering::Relaxed);
        }
        let bucket = self.bucket(hash);
        e.next
            .store(bucket.load(Ordering::Relaxed), Ordering::Relaxed);
        bucket.store(id.0 + 1, Ordering::Relaxed);
    }

    /// Remove buffer `id`, filed under `tag`. Partition lock held
    /// exclusively. A missing entry means shared memory is corrupt.
    pub(crate) fn delete(&self, tag: &BufferTag, hash: u32, id: BufferId) {
        let target = id.0 + 1;
        let mut cell = self.bucket(hash);
        let mut steps = 0;
        loop {
            let link = cell.load(Ordering::Relaxed);
            assert!(
                link != NONE && steps <= self.entries.len(),
                "shared buffer hash table corrupted: buffer {id} not filed under {tag:?}"
            );
            let e = self.entry(link);
            if link == target {
                debug_assert_eq!(Self::entry_tag(e), tag.words());
                cell.store(e.next.load(Ordering::Relaxed), Ordering::Relaxed);
                e.next.store(NONE, Ordering::Relaxed);
                return;
            }
            cell = &e.next;
            steps += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BlockNumber, ForkNumber, Oid, RelFileLocator};

    struct Table {
        partitions: Vec<MappingPartition>,
        buckets: Vec<AtomicU32>,
        entries: Vec<MappingEntry>,
    }

    fn table(nbuffers: usize) -> Table {
        fn zeroed<T>() -> T {
            // SAFETY: only used for locks and atomics, valid when zero.
            unsafe { std::mem::zeroed() }
        }
        Table {
            partitions: (0..NUM_BUFFER_PARTITIONS).map(|_| zeroed()).collect(),
            buckets: (0..mapping_buckets(nbuffers))
                .map(|_| AtomicU32::new(0))
                .collect(),
            entries: (0..nbuffers).map(|_| zeroed()).collect(),
        }
    }

    fn view(t: &Table) -> BufMapping<'_> {
        BufMapping {
            partitions: &t.partitions,
            buckets: &t.buckets,
            entries: &t.entries,
        }
    }

    fn tag(block: u32) -> BufferTag {
        let rel = RelFileLocator {
            spc_oid: Oid(1663),
            db_oid: Oid(5),
            rel_number: Oid(16384),
        };
        BufferTag::new(rel, ForkNumber::Main, BlockNumber(block))
    }

    #[test]
    fn bucket_counts_are_powers_of_two_covering_every_partition() {
        for n in [1, 4, 63, 64, 65, 1000, 16384] {
            let b = mapping_buckets(n);
            assert!(b.is_power_of_two() && b % NUM_BUFFER_PARTITIONS == 0 && b >= 2 * n);
        }
    }

    #[test]
    fn insert_lookup_delete_keep_every_chain_intact() {
        let t = table(300);
        let m = view(&t);
        m.init();
        // 300 entries in 1024 buckets: chains of several entries occur.
        for i in 0..300 {
            let tg = tag(i * 7);
            m.insert(&tg, tg.hash_code(), BufferId(i));
        }
        for i in 0..300 {
            let tg = tag(i * 7);
            assert_eq!(m.lookup(&tg, tg.hash_code()), Some(BufferId(i)));
        }
        assert_eq!(m.lookup(&tag(1), tag(1).hash_code()), None);
        // Delete every third, from the middle of chains too.
        for i in (0..300).step_by(3) {
            let tg = tag(i * 7);
            m.delete(&tg, tg.hash_code(), BufferId(i));
        }
        for i in 0..300 {
            let tg = tag(i * 7);
            let expected = (i % 3 != 0).then_some(BufferId(i));
            assert_eq!(m.lookup(&tg, tg.hash_code()), expected);
        }
        // A deleted buffer can be filed again under another tag (I2).
        let moved = tag(100_000);
        m.insert(&moved, moved.hash_code(), BufferId(0));
        assert_eq!(m.lookup(&moved, moved.hash_code()), Some(BufferId(0)));
    }

    #[test]
    #[should_panic(expected = "shared buffer hash table corrupted")]
    fn deleting_a_missing_entry_reports_corruption() {
        let t = table(4);
        let m = view(&t);
        m.init();
        m.delete(&tag(1), tag(1).hash_code(), BufferId(2));
    }
}
