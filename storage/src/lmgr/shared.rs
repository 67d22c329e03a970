//! The lock table in shared memory (PostgreSQL's `LockMethodLockHash`,
//! `LockMethodProcLockHash`, the lock fields of `PGPROC` and
//! `FastPathStrongRelationLocks`) and the operations on it that run under a
//! partition lock.
//!
//! ```text
//!   region RegionId::LockTable
//!   ┌──────────────────────────────────────────────────────────────────────┐
//!   │ LockShared: 16 partition LWLocks (LWLockPadded), 2 × 16 free lists    │
//!   │             (spinlock, head, count), 1024 strong-lock counters         │
//!   ├──────────────────────────────────────────────────────────────────────┤
//!   │ buckets: u32 × B        head LockEntry of each hash chain (B = 2^k)    │
//!   │ locks: LockEntry × L    tag, grant/wait masks, granted/waiting counts, │
//!   │                         holder list head, wait queue head/tail         │
//!   │ proclocks: ProcLock × 2L   (lock, proc, hold mask, holder-list links)  │
//!   │ procs: ProcLockState × P   wait state (futex word), queue links,       │
//!   │                            fast-path LWLock and 16 slots               │
//!   └──────────────────────────────────────────────────────────────────────┘
//!   L = max_locks_per_transaction × P,  P = every proc entry of the segment
//! ```
//!
//! Entries refer to each other by index (`NONE` = `u32::MAX`), never by
//! pointer. A lock entry exists while some process holds or awaits it; a
//! proclock (one per lock and proc) while its proc holds a mode of the lock
//! or waits for one.
//!
//! # Invariants
//!
//! 1. A lock entry with tag hash `h` is on bucket `h & (B-1)`'s chain and
//!    belongs to partition `h % 16` (B is a power of two ≥ 16, so the
//!    bucket's partition is the same).
//! 2. For each mode `m`: `granted[m]` = the proclocks of the lock whose
//!    `hold_mask` has `m`; bit `m` of `grant_mask` iff `granted[m] > 0`.
//!    `waiting[m]` = queued procs whose `wait_mode` is `m`; bit `m` of
//!    `wait_mask` iff `waiting[m] > 0`.
//! 3. A proc is in at most one wait queue; while it is, its `wait_status`
//!    is `WAITING` and `wait_lock`, `wait_proclock`, `wait_mode` describe
//!    the request. A granter sets them to `NONE`, then `wait_status` to
//!    `GRANTED`.
//! 4. Free entries are on exactly one free list; a free lock entry's tag
//!    kind is 0. Entries start on their partition's list and may be
//!    borrowed by another partition when its own list is empty.
//!
//! # Locking
//!
//! 1. Partition lock `h % 16` (exclusive) protects every field of the lock
//!    entries of that partition, of their proclocks, of their bucket chains,
//!    and the wait fields of the procs queued on them. All fields are
//!    atomics read and written `Relaxed` under it (atomics only so that the
//!    memory may be shared without `unsafe`); the LWLock orders them.
//! 2. Several partition locks are taken only in increasing index order; the
//!    deadlock checker takes all sixteen.
//! 3. A free list's spinlock protects its head and count and the link
//!    fields of the free entries on it; it is taken under a partition lock,
//!    and nothing is taken under it.
//! 4. `wait_status` is also read without any lock by its owner, with
//!    sequentially consistent loads, and it is the owner's futex.
//! 5. The fast-path fields of a proc are protected by its `fp_lock` (see
//!    `fastpath.rs`); strong-lock counters are atomics.

use super::tag::{LockMask, LockMode, LockTag, PackedTag, CONFLICTS};
use shmem_layout::lwlock::{LWLock, LWLockGuard, LWLockPadded, LWLockTranche};
use shmem_layout::spinlock::SpinLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};

/// Partitions of the lock table (PostgreSQL's `NUM_LOCK_PARTITIONS`).
pub const NUM_LOCK_PARTITIONS: usize = 16;
/// Fast-path slots of each proc (PostgreSQL's `FP_LOCK_SLOTS_PER_BACKEND`).
pub const FP_LOCK_SLOTS_PER_BACKEND: usize = 16;
/// Strong-lock counters (PostgreSQL's `FAST_PATH_STRONG_LOCK_HASH_PARTITIONS`).
pub const FAST_PATH_STRONG_LOCK_PARTITIONS: usize = 1024;

/// PostgreSQL's LWTRANCHE_LOCK_MANAGER: the partition locks.
pub const LOCK_MANAGER_TRANCHE: LWLockTranche = LWLockTranche(61);
/// PostgreSQL's LWTRANCHE_LOCK_FASTPATH: each proc's fast-path lock.
pub const LOCK_FASTPATH_TRANCHE: LWLockTranche = LWLockTranche(59);

/// "No entry" in every index field.
pub(crate) const NONE: u32 = u32::MAX;

/// `wait_status` values (PostgreSQL's `PROC_WAIT_STATUS_*`).
pub(crate) const NOT_WAITING: u32 = 0;
pub(crate) const WAITING: u32 = 1;
pub(crate) const GRANTED: u32 = 2;

#[repr(C, align(64))]
struct FreeList {
    lock: SpinLock,
    /// First free entry, `NONE` if empty. Under `lock`.
    head: AtomicU32,
    /// Entries on the list. Under `lock`.
    count: AtomicU32,
}

/// The fixed part of the region.
#[repr(C, align(128))]
pub struct LockShared {
    partition_locks: [LWLockPadded; NUM_LOCK_PARTITIONS],
    lock_free: [FreeList; NUM_LOCK_PARTITIONS],
    proclock_free: [FreeList; NUM_LOCK_PARTITIONS],
    /// Processes holding or awaiting a strong lock on a relation whose hash
    /// falls here (PostgreSQL's `FastPathStrongRelationLocks->count`).
    strong_counts: [AtomicU32; FAST_PATH_STRONG_LOCK_PARTITIONS],
}

/// A lock (PostgreSQL's `LOCK`). Fields under its partition lock.
#[repr(C)]
pub struct LockEntry {
    /// The [`PackedTag`]; kind 0 when free.
    tag: [AtomicU32; 5],
    hash: AtomicU32,
    /// Next entry on the bucket chain, or on the free list.
    bucket_next: AtomicU32,
    grant_mask: AtomicU32,
    wait_mask: AtomicU32,
    /// Indexed by mode - 1.
    granted: [AtomicU32; 8],
    waiting: [AtomicU32; 8],
    /// First proclock of the lock.
    holders: AtomicU32,
    /// The wait queue: proc indices linked through `ProcLockState::queue_*`.
    queue_head: AtomicU32,
    queue_tail: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<LockEntry>() == 112);

const _: () = assert!(std::mem::size_of::<LockShared>() == 8192);

/// One proc's interest in one lock (PostgreSQL's `PROCLOCK`). Fields under
/// the lock's partition lock.
#[repr(C)]
pub struct ProcLock {
    lock: AtomicU32,
    proc: AtomicU32,
    /// The modes `proc` holds on `lock`.
    hold_mask: AtomicU32,
    /// Links in the lock's holder list; `next` also links the free list.
    prev: AtomicU32,
    next: AtomicU32,
}

const _: () = assert!(std::mem::size_of::<ProcLock>() == 20);

/// A proc entry's lock state (the lock fields of PostgreSQL's `PGPROC`).
#[repr(C, align(64))]
pub struct ProcLockState {
    /// `NOT_WAITING`, `WAITING` or `GRANTED`; the owner's futex word.
    pub(crate) wait_status: AtomicU32,
    /// The awaited lock entry, its proclock and the mode; `NONE` when not
    /// queued. Under the awaited lock's partition lock.
    pub(crate) wait_lock: AtomicU32,
    pub(crate) wait_proclock: AtomicU32,
    pub(crate) wait_mode: AtomicU32,
    /// Links in the wait queue. Under the awaited lock's partition lock.
    queue_prev: AtomicU32,
    queue_next: AtomicU32,
    /// Protects `fp_modes` and `fp_slots` (PostgreSQL's `fpInfoLock`).
    pub(crate) fp_lock: LWLock,
    /// Three bits per slot: weak modes 1..=3 held on the slot's relation.
    pub(crate) fp_modes: AtomicU64,
    /// (database, relation) of each slot; meaningful while its bits are set.
    pub(crate) fp_slots: [[AtomicU32; 2]; FP_LOCK_SLOTS_PER_BACKEND],
}

const _: () = assert!(std::mem::size_of::<ProcLockState>() == 192);

/// A lock's holders and waiters ([`LockTable::lock_status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStatus {
    /// (proc index, modes held), by proc index.
    pub granted: Vec<(usize, LockMask)>,
    /// (proc index, mode awaited), in queue order.
    pub waiting: Vec<(usize, LockMode)>,
}

/// The table's dimensions for a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockTableSize {
    pub num_procs: usize,
    pub max_locks: usize,
    pub max_proclocks: usize,
    pub num_buckets: usize,
}

const fn align64(n: usize) -> usize {
    n.div_ceil(64) * 64
}

impl LockTableSize {
    /// PostgreSQL's sizing: `max_locks_per_transaction` lock entries per
    /// process, twice as many proclocks.
    /// A table too large for 32-bit indexes is clamped to the largest
    /// possible; the segment's creation then fails for lack of memory, the
    /// way an oversized setting should.
    pub fn new(num_procs: usize, max_locks_per_transaction: u32) -> LockTableSize {
        const MOST: usize = NONE as usize / 2 - 1;
        let max_locks = (max_locks_per_transaction as usize)
            .saturating_mul(num_procs)
            .clamp(NUM_LOCK_PARTITIONS, MOST);
        let max_proclocks = 2 * max_locks;
        assert!(num_procs < NONE as usize, "too many proc entries");
        LockTableSize {
            num_procs,
            max_locks,
            max_proclocks,
            num_buckets: max_locks.next_power_of_two().max(NUM_LOCK_PARTITIONS),
        }
    }

    /// Offsets of the buckets, locks, proclocks and procs; the total size.
    fn offsets(&self) -> [usize; 5] {
        let buckets = align64(std::mem::size_of::<LockShared>());
        let locks = align64(buckets + 4 * self.num_buckets);
        let proclocks = align64(locks + std::mem::size_of::<LockEntry>() * self.max_locks);
        let procs = align64(proclocks + std::mem::size_of::<ProcLock>() * self.max_proclocks);
        let end = procs + std::mem::size_of::<ProcLockState>() * self.num_procs;
        [buckets, locks, proclocks, procs, end]
    }

    pub fn bytes(&self) -> usize {
        self.offsets()[4]
    }
}

/// A process's handle on the region. Cheap to copy.
#[derive(Clone, Copy)]
pub struct LockTable<'a> {
    shared: &'a LockShared,
    buckets: &'a [AtomicU32],
    locks: &'a [LockEntry],
    proclocks: &'a [ProcLock],
    pub(crate) procs: &'a [ProcLockState],
}

/// Where a request that cannot be granted at once goes (rule Q2 of the
/// module docs): `Before(p)` puts it ahead of queued proc `p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    GrantNow,
    Before(u32),
    Back,
}

impl<'a> LockTable<'a> {
    /// The region at `base`, `len` bytes, for `size`.
    ///
    /// # Safety
    /// `base` is 128-byte aligned and points to `len` bytes of shared memory
    /// that stay mapped for `'a`, zero-filled or initialised by
    /// [`LockTable::init`] for the same `size`, used as this region only.
    pub unsafe fn attach(base: *mut u8, len: usize, size: LockTableSize) -> LockTable<'a> {
        let [buckets, locks, proclocks, procs, end] = size.offsets();
        assert!(len >= end, "lock table region too small");
        assert_eq!(base as usize % 128, 0, "lock table region misaligned");
        // SAFETY: per the contract every part lies in the region and is
        // aligned (offsets are multiples of 64, the types need at most 64
        // apart from LockShared's 128 at offset 0); all types are atomics and
        // locks, valid when zero-filled.
        unsafe {
            LockTable {
                shared: &*(base as *const LockShared),
                buckets: std::slice::from_raw_parts(
                    base.add(buckets) as *const AtomicU32,
                    size.num_buckets,
                ),
                locks: std::slice::from_raw_parts(
                    base.add(locks) as *const LockEntry,
                    size.max_locks,
                ),
                proclocks: std::slice::from_raw_parts(
                    base.add(proclocks) as *const ProcLock,
                    size.max_proclocks,
                ),
                procs: std::slice::from_raw_parts(
                    base.add(procs) as *const ProcLockState,
                    size.num_procs,
                ),
            }
        }
    }

    /// Initialises the region: every entry free, every lock free. Only on
    /// a segment no process uses yet (creation and the crash cycle).
    pub fn init(&self) {
        let s = self.shared;
        for p in &s.partition_locks {
            p.lock.init(LOCK_MANAGER_TRANCHE);
        }
        for c in &s.strong_counts {
            c.store(0, Relaxed);
        }
        for b in self.buckets {
            b.store(NONE, Relaxed);
        }
        init_free_lists(&s.lock_free, self.locks.len(), |i| {
            let e = &self.locks[i];
            for w in &e.tag {
                w.store(0, Relaxed);
            }
            &e.bucket_next
        });
        init_free_lists(&s.proclock_free, self.proclocks.len(), |i| {
            &self.proclocks[i].next
        });
        for st in self.procs {
            st.wait_status.store(NOT_WAITING, Relaxed);
            for f in [
                &st.wait_lock,
                &st.wait_proclock,
                &st.wait_mode,
                &st.queue_prev,
                &st.queue_next,
            ] {
                f.store(NONE, Relaxed);
            }
            st.fp_lock.init(LOCK_FASTPATH_TRANCHE);
            st.fp_modes.store(0, Relaxed);
        }
    }

    pub fn num_procs(&self) -> usize {
        self.procs.len()
    }

    pub(crate) fn partition_of(hash: u32) -> usize {
        hash as usize % NUM_LOCK_PARTITIONS
    }

    /// Takes partition lock `p` exclusively.
    pub(crate) fn lock_partition(&self, p: usize) -> LWLockGuard<'a> {
        self.shared.partition_locks[p].lock.acquire_exclusive()
    }

    /// Takes all partition locks, in index order (the deadlock checker).
    pub(crate) fn lock_all_partitions(&self) -> Vec<LWLockGuard<'a>> {
        self.shared
            .partition_locks
            .iter()
            .map(|p| p.lock.acquire_exclusive())
            .collect()
    }

    /// The strong-lock counter of a relation tag's hash.
    pub(crate) fn strong_count(&self, hash: u32) -> &'a AtomicU32 {
        &self.shared.strong_counts[hash as usize % FAST_PATH_STRONG_LOCK_PARTITIONS]
    }

    /// Free lock entries and proclocks (tests and diagnostics; not atomic
    /// across lists).
    pub fn free_counts(&self) -> (usize, usize) {
        let count = |lists: &[FreeList]| {
            lists
                .iter()
                .map(|l| {
                    let _g = l.lock.acquire();
                    l.count.load(Relaxed) as usize
                })
                .sum()
        };
        (
            count(&self.shared.lock_free),
            count(&self.shared.proclock_free),
        )
    }

    pub(crate) fn entry(&self, lock: u32) -> &'a LockEntry {
        &self.locks[lock as usize]
    }

    pub(crate) fn proclock(&self, pl: u32) -> &'a ProcLock {
        &self.proclocks[pl as usize]
    }

    /// What the shared table says of `tag`: which procs hold which modes
    /// and who is queued, in queue order; `None` if nobody holds or awaits
    /// it there (fast-path locks are not shown). For tests and diagnostics
    /// (later `pg_locks`).
    pub fn lock_status(&self, tag: &LockTag) -> Option<LockStatus> {
        let packed = tag.pack();
        let hash = packed.hash();
        let _g = self.lock_partition(Self::partition_of(hash));
        let lock = self.find_lock(&packed, hash)?;
        let mut status = LockStatus::default();
        let mut i = self.entry(lock).holders.load(Relaxed);
        while i != NONE {
            let pl = self.proclock(i);
            let mask = pl.hold_mask.load(Relaxed);
            if mask != 0 {
                status.granted.push((pl.proc.load(Relaxed) as usize, mask));
            }
            i = pl.next.load(Relaxed);
        }
        status.granted.sort_unstable();
        let mut p = self.entry(lock).queue_head.load(Relaxed);
        while p != NONE {
            let st = &self.procs[p as usize];
            status.waiting.push((p as usize, wait_mode_of(st)));
            p = st.queue_next.load(Relaxed);
        }
        Some(status)
    }

    // ---- the hash table (under the partition lock) ----

    /// The lock entry of `tag`, if any process holds or awaits it.
    pub(crate) fn find_lock(&self, tag: &PackedTag, hash: u32) -> Option<u32> {
        let mut i = self.buckets[self.bucket_of(hash)].load(Relaxed);
        while i != NONE {
            let e = self.entry(i);
            if e.hash.load(Relaxed) == hash && e.tag() == *tag {
                return Some(i);
            }
            i = e.bucket_next.load(Relaxed);
        }
        None
    }

    /// A new, empty lock entry for `tag`; `None` when the table is full.
    pub(crate) fn create_lock(&self, tag: &PackedTag, hash: u32) -> Option<u32> {
        let part = Self::partition_of(hash);
        let i = pop_free(&self.shared.lock_free, part, |i| &self.entry(i).bucket_next)?;
        let e = self.entry(i);
        for (w, v) in e.tag.iter().zip(tag.0) {
            w.store(v, Relaxed);
        }
        e.hash.store(hash, Relaxed);
        e.grant_mask.store(0, Relaxed);
        e.wait_mask.store(0, Relaxed);
        for c in e.granted.iter().chain(&e.waiting) {
            c.store(0, Relaxed);
        }
        for f in [&e.holders, &e.queue_head, &e.queue_tail] {
            f.store(NONE, Relaxed);
        }
        let bucket = &self.buckets[self.bucket_of(hash)];
        e.bucket_next.store(bucket.load(Relaxed), Relaxed);
        bucket.store(i, Relaxed);
        Some(i)
    }

    fn remove_lock(&self, lock: u32) {
        let e = self.entry(lock);
        let hash = e.hash.load(Relaxed);
        let mut link = &self.buckets[self.bucket_of(hash)];
        loop {
            let i = link.load(Relaxed);
            assert_ne!(i, NONE, "lock entry {lock} missing from its hash chain");
            if i == lock {
                link.store(e.bucket_next.load(Relaxed), Relaxed);
                break;
            }
            link = &self.entry(i).bucket_next;
        }
        e.tag[0].store(0, Relaxed);
        push_free(
            &self.shared.lock_free,
            Self::partition_of(hash),
            lock,
            &e.bucket_next,
        );
    }

    fn bucket_of(&self, hash: u32) -> usize {
        hash as usize & (self.buckets.len() - 1)
    }

    /// `proc`'s proclock on `lock`, if it has one.
    pub(crate) fn find_proclock(&self, lock: u32, proc: u32) -> Option<u32> {
        let mut i = self.entry(lock).holders.load(Relaxed);
        while i != NONE {
            let pl = self.proclock(i);
            if pl.proc.load(Relaxed) == proc {
                return Some(i);
            }
            i = pl.next.load(Relaxed);
        }
        None
    }

    /// A new proclock with no mode for `proc` on `lock`; `None` when full.
    pub(crate) fn create_proclock(&self, lock: u32, proc: u32) -> Option<u32> {
        let part = Self::partition_of(self.entry(lock).hash.load(Relaxed));
        let i = pop_free(&self.shared.proclock_free, part, |i| &self.proclock(i).next)?;
        let pl = self.proclock(i);
        pl.lock.store(lock, Relaxed);
        pl.proc.store(proc, Relaxed);
        pl.hold_mask.store(0, Relaxed);
        let head = &self.entry(lock).holders;
        let first = head.load(Relaxed);
        pl.prev.store(NONE, Relaxed);
        pl.next.store(first, Relaxed);
        if first != NONE {
            self.proclock(first).prev.store(i, Relaxed);
        }
        head.store(i, Relaxed);
        Some(i)
    }

    fn remove_proclock(&self, pl_index: u32) {
        let pl = self.proclock(pl_index);
        let lock = pl.lock.load(Relaxed);
        let (prev, next) = (pl.prev.load(Relaxed), pl.next.load(Relaxed));
        if prev == NONE {
            self.entry(lock).holders.store(next, Relaxed);
        } else {
            self.proclock(prev).next.store(next, Relaxed);
        }
        if next != NONE {
            self.proclock(next).prev.store(prev, Relaxed);
        }
        let part = Self::partition_of(self.entry(lock).hash.load(Relaxed));
        push_free(&self.shared.proclock_free, part, pl_index, &pl.next);
    }

    /// Frees `pl` if it holds nothing and nobody waits with it, then the
    /// lock entry if nobody holds or awaits it. Returns whether `pl` was freed.
    pub(crate) fn cleanup(&self, lock: u32, pl: u32) -> bool {
        let mut freed = false;
        if pl != NONE && self.proclock(pl).hold_mask.load(Relaxed) == 0 {
            let proc = self.proclock(pl).proc.load(Relaxed);
            if self.procs[proc as usize].wait_proclock.load(Relaxed) != pl {
                self.remove_proclock(pl);
                freed = true;
            }
        }
        let e = self.entry(lock);
        if e.holders.load(Relaxed) == NONE && e.queue_head.load(Relaxed) == NONE {
            self.remove_lock(lock);
        }
        freed
    }

    // ---- granting (under the partition lock) ----

    /// Whether `mode` conflicts with a mode some *other* proc holds, for a
    /// requester that holds `my_hold` itself (PostgreSQL's
    /// `LockCheckConflicts`: a process never conflicts with itself).
    pub(crate) fn conflicts_with_others(
        &self,
        lock: u32,
        mode: LockMode,
        my_hold: LockMask,
    ) -> bool {
        let e = self.entry(lock);
        let conflicts = CONFLICTS[mode as usize];
        if e.grant_mask.load(Relaxed) & conflicts == 0 {
            return false;
        }
        LockMode::iter_mask(conflicts).any(|m| {
            let mine = u32::from(my_hold & m.bit() != 0);
            e.granted[m as usize - 1].load(Relaxed) > mine
        })
    }

    pub(crate) fn hold_mask(&self, pl: u32) -> LockMask {
        self.proclock(pl).hold_mask.load(Relaxed)
    }

    pub(crate) fn wait_mask(&self, lock: u32) -> LockMask {
        self.entry(lock).wait_mask.load(Relaxed)
    }

    pub(crate) fn grant(&self, lock: u32, pl: u32, mode: LockMode) {
        let e = self.entry(lock);
        let p = self.proclock(pl);
        debug_assert_eq!(p.hold_mask.load(Relaxed) & mode.bit(), 0, "granted twice");
        e.granted[mode as usize - 1].fetch_add(1, Relaxed);
        e.grant_mask.fetch_or(mode.bit(), Relaxed);
        p.hold_mask.fetch_or(mode.bit(), Relaxed);
    }

    /// Takes `mode` back from `pl`; false if it did not hold it.
    pub(crate) fn ungrant(&self, lock: u32, pl: u32, mode: LockMode) -> bool {
        let e = self.entry(lock);
        let p = self.proclock(pl);
        if p.hold_mask.load(Relaxed) & mode.bit() == 0 {
            return false;
        }
        p.hold_mask.fetch_and(!mode.bit(), Relaxed);
        if e.granted[mode as usize - 1].fetch_sub(1, Relaxed) == 1 {
            e.grant_mask.fetch_and(!mode.bit(), Relaxed);
        }
        true
    }

    /// Rule Q2: a requester that holds modes some queued proc waits for
    /// goes ahead of the first such proc, and is granted at once if nothing
    /// granted to others nor requested ahead of that point conflicts.
    pub(crate) fn placement(&self, lock: u32, mode: LockMode, my_hold: LockMask) -> Placement {
        if my_hold == 0 {
            return Placement::Back;
        }
        let mut ahead: LockMask = 0;
        let mut p = self.entry(lock).queue_head.load(Relaxed);
        while p != NONE {
            let st = &self.procs[p as usize];
            let their = wait_mode_of(st);
            if my_hold & their.conflicts() != 0 {
                if mode.conflicts() & ahead == 0 && !self.conflicts_with_others(lock, mode, my_hold)
                {
                    return Placement::GrantNow;
                }
                return Placement::Before(p);
            }
            ahead |= their.bit();
            p = st.queue_next.load(Relaxed);
        }
        Placement::Back
    }

    /// Queues `proc` for `mode` on `lock` with proclock `pl`, before proc
    /// `before` or at the back (`NONE`), and marks it waiting.
    pub(crate) fn enqueue(&self, lock: u32, proc: u32, pl: u32, mode: LockMode, before: u32) {
        let e = self.entry(lock);
        let st = &self.procs[proc as usize];
        let prev = if before == NONE {
            e.queue_tail.load(Relaxed)
        } else {
            self.procs[before as usize].queue_prev.load(Relaxed)
        };
        st.queue_prev.store(prev, Relaxed);
        st.queue_next.store(before, Relaxed);
        if prev == NONE {
            e.queue_head.store(proc, Relaxed);
        } else {
            self.procs[prev as usize].queue_next.store(proc, Relaxed);
        }
        if before == NONE {
            e.queue_tail.store(proc, Relaxed);
        } else {
            self.procs[before as usize].queue_prev.store(proc, Relaxed);
        }
        e.waiting[mode as usize - 1].fetch_add(1, Relaxed);
        e.wait_mask.fetch_or(mode.bit(), Relaxed);
        st.wait_lock.store(lock, Relaxed);
        st.wait_proclock.store(pl, Relaxed);
        st.wait_mode.store(mode as u32, Relaxed);
        st.wait_status.store(WAITING, SeqCst);
    }

    /// Takes `proc` out of `lock`'s queue and clears its wait fields; its
    /// `wait_status` is left for the caller to set.
    pub(crate) fn dequeue(&self, lock: u32, proc: u32) {
        let e = self.entry(lock);
        let st = &self.procs[proc as usize];
        debug_assert_eq!(st.wait_lock.load(Relaxed), lock, "not queued here");
        let (prev, next) = (st.queue_prev.load(Relaxed), st.queue_next.load(Relaxed));
        if prev == NONE {
            e.queue_head.store(next, Relaxed);
        } else {
            self.procs[prev as usize].queue_next.store(next, Relaxed);
        }
        if next == NONE {
            e.queue_tail.store(prev, Relaxed);
        } else {
            self.procs[next as usize].queue_prev.store(prev, Relaxed);
        }
        let mode = wait_mode_of(st);
        if e.waiting[mode as usize - 1].fetch_sub(1, Relaxed) == 1 {
            e.wait_mask.fetch_and(!mode.bit(), Relaxed);
        }
        for f in [
            &st.wait_lock,
            &st.wait_proclock,
            &st.wait_mode,
            &st.queue_prev,
            &st.queue_next,
        ] {
            f.store(NONE, Relaxed);
        }
    }

    /// Rule Q3 (PostgreSQL's `ProcLockWakeup`): walks the queue in order
    /// and grants every waiter whose mode conflicts neither with what others
    /// hold nor with a waiter still ahead of it. Granted procs are appended
    /// to `wakes`, to be woken once the partition lock is released.
    pub(crate) fn grant_waiters(&self, lock: u32, wakes: &mut Vec<u32>) {
        let e = self.entry(lock);
        let mut ahead: LockMask = 0;
        let mut p = e.queue_head.load(Relaxed);
        while p != NONE {
            let st = &self.procs[p as usize];
            let next = st.queue_next.load(Relaxed);
            let mode = wait_mode_of(st);
            let pl = st.wait_proclock.load(Relaxed);
            if mode.conflicts() & ahead == 0
                && !self.conflicts_with_others(lock, mode, self.hold_mask(pl))
            {
                self.dequeue(lock, p);
                self.grant(lock, pl, mode);
                st.wait_status.store(GRANTED, SeqCst);
                wakes.push(p);
            } else {
                ahead |= mode.bit();
            }
            p = next;
        }
    }

    // ---- reading for the deadlock checker (all partitions held) ----

    /// The procs holding a mode of `lock` in `mask`, other than `proc`.
    pub(crate) fn holders_conflicting(&self, lock: u32, proc: u32, mask: LockMask) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = self.entry(lock).holders.load(Relaxed);
        while i != NONE {
            let pl = self.proclock(i);
            let q = pl.proc.load(Relaxed);
            if q != proc && pl.hold_mask.load(Relaxed) & mask != 0 {
                out.push(q);
            }
            i = pl.next.load(Relaxed);
        }
        out
    }

    /// The procs queued on `lock` ahead of `proc` for a mode in `mask`.
    pub(crate) fn waiters_ahead(&self, lock: u32, proc: u32, mask: LockMask) -> Vec<u32> {
        let mut out = Vec::new();
        let mut p = self.entry(lock).queue_head.load(Relaxed);
        while p != NONE && p != proc {
            let st = &self.procs[p as usize];
            if wait_mode_of(st).bit() & mask != 0 {
                out.push(p);
            }
            p = st.queue_next.load(Relaxed);
        }
        out
    }

    /// Wakes `proc` if it sleeps on its wait status (no lock needed).
    pub(crate) fn wake(&self, proc: u32) {
        super::wait::futex_wake(&self.procs[proc as usize].wait_status);
    }
}

impl LockEntry {
    pub(crate) fn tag(&self) -> PackedTag {
        PackedTag(std::array::from_fn(|i| self.tag[i].load(Relaxed)))
    }
}

/// The mode a queued proc waits for. Only for procs in a queue, whose
/// `wait_mode` the enqueuer set under the same partition lock.
pub(crate) fn wait_mode_of(st: &ProcLockState) -> LockMode {
    LockMode::from_number(st.wait_mode.load(Relaxed)).expect("a queued proc has a wait mode")
}

/// Puts `n` entries on the lists, entry `i` on list `i % 16`.
fn init_free_lists<'e>(lists: &[FreeList], n: usize, next_of: impl Fn(usize) -> &'e AtomicU32) {
    for l in lists {
        l.lock.init();
        l.head.store(NONE, Relaxed);
        l.count.store(0, Relaxed);
    }
    for i in (0..n).rev() {
        let l = &lists[i % lists.len()];
        next_of(i).store(l.head.load(Relaxed), Relaxed);
        l.head.store(i as u32, Relaxed);
        l.count.fetch_add(1, Relaxed);
    }
}

/// Takes an entry from list `part`, or else from the first other list that
/// has one (PostgreSQL's dynahash borrows between free lists too).
fn pop_free<'e>(
    lists: &[FreeList],
    part: usize,
    next_of: impl Fn(u32) -> &'e AtomicU32,
) -> Option<u32> {
    for k in 0..lists.len() {
        let l = &lists[(part + k) % lists.len()];
        let _g = l.lock.acquire();
        let i = l.head.load(Relaxed);
        if i != NONE {
            l.head.store(next_of(i).load(Relaxed), Relaxed);
            l.count.fetch_sub(1, Relaxed);
            return Some(i);
        }
    }
    None
}

fn push_free(lists: &[FreeList], part: usize, i: u32, next: &AtomicU32) {
    let l = &lists[part];
    let _g = l.lock.acquire();
    next.store(l.head.load(Relaxed), Relaxed);
    l.head.store(i, Relaxed);
    l.count.fetch_add(1, Relaxed);
}
