//! Buffer descriptors: one 64-byte header per shared buffer, holding the
//! buffer's tag, its packed state word (with the header spinlock bit), the
//! content lock and the I/O lock (PostgreSQL's `BufferDesc` and the state
//! macros of `buf_internals.h`). The rules (R1.., L1.., C1..) are stated
//! once in the header of [`crate::buffer`]; comments here cite them.
//!
//! ```text
//!  BufferDesc (#[repr(C, align(64))], 64 bytes)
//!  ┌────────────────────────────┬────────┬────────┬──────┬──────────────┬──────────┬──────────┐
//!  │ tag: spc, db, rel, fork,   │ buf_id │ state  │ pad  │ content_lock │ io_lock  │ reserved │
//!  │      block  (5 × u32)      │  u32   │  u32   │ u32  │  LWLock (8)  │ LWLock 8 │   16     │
//!  └────────────────────────────┴────────┴────────┴──────┴──────────────┴──────────┴──────────┘
//!
//!  state (u32), PostgreSQL's bit assignment:
//!   31        30        29       28       27     26     25    24    23    22     21..18   17..0
//!  PERMANENT CKPT_NEED PIN_WAIT JUST_DIR IO_ERR IO_IN  TAG_V VALID DIRTY LOCKED  usage   refcount
//! ```
//!
//! # Invariants
//!
//! 1. `LOCKED` is the header spinlock (L5). While it is set, only its holder
//!    changes the state word: everyone else (pin, unpin, mark dirty) changes
//!    it by compare-and-swap against a value without `LOCKED`, so their CAS
//!    fails and they wait ([`BufferDesc::wait_unlocked`]). The holder writes
//!    the whole word back with one release store when it unlocks.
//! 2. The tag changes only with the header spinlock held, the buffer's
//!    refcount zero (or one: the process changing it), and the mapping
//!    partition of the old tag (and of the new one) held exclusively (L4).
//!    So a process that holds a pin, or holds the partition lock of a
//!    mapping entry naming this buffer, reads a stable tag without the
//!    spinlock. The tag words are relaxed atomics so that an unlocked
//!    pre-check of a tag that is changing is a stale read, never undefined
//!    behaviour.
//! 3. All-zero memory is a descriptor with no tag, refcount 0, usage 0, no
//!    flags and free locks; [`BufferDesc::init`] gives the same state plus
//!    the buffer id and lock tranches.
//!
//! # Locking
//!
//! The header spinlock is held for a few loads and stores; never across an
//! allocation, a system call, a log line or any other lock acquisition (L5).
//!
//! # Crash safety
//!
//! A process that dies holding the header spinlock leaves `LOCKED` set:
//! every later locker spins into the stuck-spinlock abort, a crash, and the
//! crash cycle builds a fresh segment (C5).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmem_layout::lwlock::{LWLock, LWLockTranche};
use shmem_layout::spinlock::{SPINS_PER_DELAY, STUCK_SPINLOCK_TIMEOUT};

use crate::types::{BlockNumber, ForkNumber, Oid, RelFileLocator};

/// Tranche of the content locks (PostgreSQL's `BufferContent`).
/// Placeholder numbers until shmem-layout keeps a tranche table.
pub const BUFFER_CONTENT_TRANCHE: LWLockTranche = LWLockTranche(40);
/// Tranche of the per-buffer I/O locks (PostgreSQL 13's `BufferIO`).
pub const BUFFER_IO_TRANCHE: LWLockTranche = LWLockTranche(41);

/// Pins counted in the low 18 bits: up to 262143 processes.
pub const BUF_REFCOUNT_ONE: u32 = 1;
pub const BUF_REFCOUNT_MASK: u32 = (1 << 18) - 1;
pub const BUF_USAGECOUNT_SHIFT: u32 = 18;
pub const BUF_USAGECOUNT_MASK: u32 = 0xF << BUF_USAGECOUNT_SHIFT;
pub const BUF_USAGECOUNT_ONE: u32 = 1 << BUF_USAGECOUNT_SHIFT;
/// The clock sweep's usage count saturates here (PostgreSQL's
/// `BM_MAX_USAGE_COUNT`).
pub const BM_MAX_USAGE_COUNT: u32 = 5;

/// The buffer header spinlock.
pub const BM_LOCKED: u32 = 1 << 22;
/// The page differs from the file.
pub const BM_DIRTY: u32 = 1 << 23;
/// The page holds the block named by the tag.
pub const BM_VALID: u32 = 1 << 24;
/// The tag is meaningful (the buffer is in the mapping table).
pub const BM_TAG_VALID: u32 = 1 << 25;
/// A read or write of the page is under way (its owner holds the I/O lock).
pub const BM_IO_IN_PROGRESS: u32 = 1 << 26;
/// The last I/O on the page failed.
pub const BM_IO_ERROR: u32 = 1 << 27;
/// Dirtied again since the current write copied the page.
pub const BM_JUST_DIRTIED: u32 = 1 << 28;
/// Reserved for a process waiting for the pin count to drop to one
/// (PostgreSQL's cleanup lock waiter); unused yet.
pub const BM_PIN_COUNT_WAITER: u32 = 1 << 29;
/// Must be written by the checkpoint in progress.
pub const BM_CHECKPOINT_NEEDED: u32 = 1 << 30;
/// The relation is WAL-logged: its writes obey the WAL rule and checkpoints.
pub const BM_PERMANENT: u32 = 1 << 31;

/// A buffer's index in the descriptor and page arrays (0-based; PostgreSQL's
/// `Buffer` is this plus one).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub u32);

impl BufferId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for BufferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a buffer holds: one block of one fork of one relation
/// (PostgreSQL's `BufferTag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferTag {
    pub rel: RelFileLocator,
    pub fork: ForkNumber,
    pub block: BlockNumber,
}

/// A tag as stored in shared memory: spc, db, rel, fork, block.
pub(crate) type TagWords = [u32; 5];

impl BufferTag {
    pub fn new(rel: RelFileLocator, fork: ForkNumber, block: BlockNumber) -> BufferTag {
        BufferTag { rel, fork, block }
    }

    pub(crate) fn words(&self) -> TagWords {
        [
            self.rel.spc_oid.0,
            self.rel.db_oid.0,
            self.rel.rel_number.0,
            self.fork as u32,
            self.block.0,
        ]
    }

    /// The tag stored in shared memory; `None` if the fork word is not a
    /// fork, which only corrupt shared memory can produce.
    pub(crate) fn from_words(w: TagWords) -> Option<BufferTag> {
        let fork = u8::try_from(w[3]).ok().and_then(ForkNumber::from_u8)?;
        Some(BufferTag {
            rel: RelFileLocator {
                spc_oid: Oid(w[0]),
                db_oid: Oid(w[1]),
                rel_number: Oid(w[2]),
            },
            fork,
            block: BlockNumber(w[4]),
        })
    }

    /// The mapping table's hash: a fixed function of the tag, the same in
    /// every process (no per-process random seed).
    pub fn hash_code(&self) -> u32 {
        let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
        for w in self.words() {
            h = (h ^ u64::from(w)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            h ^= h >> 29;
        }
        (h ^ (h >> 32)) as u32
    }
}

/// A decoded copy of a state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BufState(pub u32);

impl BufState {
    pub fn refcount(self) -> u32 {
        self.0 & BUF_REFCOUNT_MASK
    }
    pub fn usage_count(self) -> u32 {
        (self.0 & BUF_USAGECOUNT_MASK) >> BUF_USAGECOUNT_SHIFT
    }
    /// Whether every bit of `flags` is set.
    pub fn has(self, flags: u32) -> bool {
        self.0 & flags == flags
    }
}

impl std::fmt::Debug for BufState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [(u32, &str); 10] = [
            (BM_LOCKED, "LOCKED"),
            (BM_DIRTY, "DIRTY"),
            (BM_VALID, "VALID"),
            (BM_TAG_VALID, "TAG_VALID"),
            (BM_IO_IN_PROGRESS, "IO_IN_PROGRESS"),
            (BM_IO_ERROR, "IO_ERROR"),
            (BM_JUST_DIRTIED, "JUST_DIRTIED"),
            (BM_PIN_COUNT_WAITER, "PIN_COUNT_WAITER"),
            (BM_CHECKPOINT_NEEDED, "CHECKPOINT_NEEDED"),
            (BM_PERMANENT, "PERMANENT"),
        ];
        let flags: Vec<&str> = NAMES
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, name)| *name)
            .collect();
        write!(
            f,
            "BufState {{ refcount: {}, usage: {}, flags: {} }}",
            self.refcount(),
            self.usage_count(),
            flags.join("|")
        )
    }
}

/// One buffer's header in shared memory. Valid when zero-filled (I3).
#[repr(C, align(64))]
pub struct BufferDesc {
    /// The tag, as [`TagWords`]: header spinlock plus partition locks (I2).
    tag: [AtomicU32; 5],
    /// This descriptor's index; written by `init` only.
    buf_id: AtomicU32,
    /// Refcount, usage count and flags; the header spinlock is its bit
    /// `BM_LOCKED` (I1).
    state: AtomicU32,
    _pad: u32,
    /// Protects the page bytes (R1..R5).
    pub(crate) content_lock: LWLock,
    /// Held exclusively by the process doing I/O on the buffer for the
    /// whole I/O; others wait for it by passing through in shared mode (L3).
    pub(crate) io_lock: LWLock,
    _reserved: [u8; 16],
}

const _: () = {
    assert!(std::mem::size_of::<BufferDesc>() == 64);
    assert!(std::mem::align_of::<BufferDesc>() == 64);
};

/// The header spinlock, held. Dropping it stores `state` (without
/// `BM_LOCKED`) in one release store: change `state` to change the word.
pub(crate) struct LockedHeader<'a> {
    desc: &'a BufferDesc,
    pub(crate) state: u32,
}

impl LockedHeader<'_> {
    pub(crate) fn get(&self) -> BufState {
        BufState(self.state)
    }
}

impl Drop for LockedHeader<'_> {
    fn drop(&mut self) {
        self.desc
            .state
            .store(self.state & !BM_LOCKED, Ordering::Release);
    }
}

impl BufferDesc {
    /// Reset to an empty buffer numbered `id` with free locks. Only when no
    /// process uses the pool (segment creation, crash re-initialisation).
    pub(crate) fn init(&self, id: BufferId) {
        self.clear_tag();
        self.buf_id.store(id.0, Ordering::Relaxed);
        self.state.store(0, Ordering::Relaxed);
        self.content_lock.init(BUFFER_CONTENT_TRANCHE);
        self.io_lock.init(BUFFER_IO_TRANCHE);
    }

    pub fn id(&self) -> BufferId {
        BufferId(self.buf_id.load(Ordering::Relaxed))
    }

    /// The state word now (may be stale at once unless the header is locked).
    pub fn load_state(&self) -> BufState {
        BufState(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn tag_words(&self) -> TagWords {
        std::array::from_fn(|i| self.tag[i].load(Ordering::Relaxed))
    }

    /// The tag; stable for a process holding a pin (I2).
    pub(crate) fn tag(&self) -> BufferTag {
        BufferTag::from_words(self.tag_words())
            .expect("buffer tag in shared memory names a fork: shared memory is corrupt")
    }

    /// Set the tag. Caller holds the header spinlock and the partition
    /// locks of I2.
    pub(crate) fn set_tag(&self, _header: &LockedHeader<'_>, tag: &BufferTag) {
        for (cell, w) in self.tag.iter().zip(tag.words()) {
            cell.store(w, Ordering::Relaxed);
        }
    }

    /// Forget the tag (block number invalid); the caller also clears
    /// `BM_TAG_VALID`.
    pub(crate) fn clear_tag(&self) {
        for cell in &self.tag {
            cell.store(0, Ordering::Relaxed);
        }
        self.tag[4].store(BlockNumber::INVALID.0, Ordering::Relaxed);
    }

    /// Take the header spinlock (PostgreSQL's `LockBufHdr`).
    pub(crate) fn lock_header(&self) -> LockedHeader<'_> {
        let mut delay = SpinDelay::new();
        loop {
            let old = self.state.fetch_or(BM_LOCKED, Ordering::Acquire);
            if old & BM_LOCKED == 0 {
                return LockedHeader {
                    desc: self,
                    state: old | BM_LOCKED,
                };
            }
            while self.state.load(Ordering::Relaxed) & BM_LOCKED != 0 {
                delay.pause();
            }
        }
    }

    /// Wait until the header spinlock is free and return the state then
    /// (PostgreSQL's `WaitBufHdrUnlocked`).
    pub(crate) fn wait_unlocked(&self) -> u32 {
        let mut delay = SpinDelay::new();
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & BM_LOCKED == 0 {
                return s;
            }
            delay.pause();
        }
    }

    /// Change the state word without the header spinlock: `f` maps the
    /// current unlocked state to the new one (I1). Returns the new state.
    pub(crate) fn update_state(&self, f: impl Fn(u32) -> u32) -> u32 {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            if old & BM_LOCKED != 0 {
                old = self.wait_unlocked();
            }
            let new = f(old);
            match self
                .state
                .compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return new,
                Err(actual) => old = actual,
            }
        }
    }

    /// Add one shared pin, bumping the usage count (PostgreSQL's
    /// `PinBuffer` without a strategy). Returns the new state.
    pub(crate) fn pin_shared(&self) -> BufState {
        BufState(self.update_state(|s| {
            let mut new = s + BUF_REFCOUNT_ONE;
            if BufState(s).usage_count() < BM_MAX_USAGE_COUNT {
                new += BUF_USAGECOUNT_ONE;
            }
            new
        }))
    }

    /// Drop one shared pin (PostgreSQL's `UnpinBuffer`).
    pub(crate) fn unpin_shared(&self) {
        self.update_state(|s| {
            assert!(
                BufState(s).refcount() > 0,
                "unpin of a buffer with no pins: shared memory is corrupt"
            );
            s - BUF_REFCOUNT_ONE
        });
    }
}

/// Spin, then sleep with growing delays; abort the process after
/// [`STUCK_SPINLOCK_TIMEOUT`] (the spinlock module's schedule, for the
/// header spinlock bit).
struct SpinDelay {
    spins: u32,
    delay: Duration,
    started: Option<Instant>,
}

impl SpinDelay {
    fn new() -> SpinDelay {
        SpinDelay {
            spins: 0,
            delay: Duration::from_millis(1),
            started: None,
        }
    }

    fn pause(&mut self) {
        if self.spins < SPINS_PER_DELAY {
            self.spins += 1;
            std::hint::spin_loop();
            return;
        }
        self.spins = 0;
        let started = *self.started.get_or_insert_with(Instant::now);
        if started.elapsed() >= STUCK_SPINLOCK_TIMEOUT {
            log::error!("stuck spinlock detected: buffer header locked for over a minute");
            std::process::abort();
        }
        std::thread::sleep(self.delay);
        self.delay = (self.delay * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(n: u32) -> RelFileLocator {
        RelFileLocator {
            spc_oid: Oid(1663),
            db_oid: Oid(5),
            rel_number: Oid(n),
        }
    }

    #[test]
    fn tags_round_trip_through_shared_words() {
        let tag = BufferTag::new(rel(16384), ForkNumber::VisibilityMap, BlockNumber(7));
        assert_eq!(BufferTag::from_words(tag.words()), Some(tag));
        assert_eq!(BufferTag::from_words([1, 2, 3, 9, 4]), None);
    }

    #[test]
    fn the_hash_is_a_fixed_function_of_the_tag() {
        let a = BufferTag::new(rel(16384), ForkNumber::Main, BlockNumber(0));
        let b = BufferTag::new(rel(16384), ForkNumber::Main, BlockNumber(1));
        assert_eq!(a.hash_code(), a.hash_code());
        assert_ne!(a.hash_code(), b.hash_code());
        // Pinned: every process of a cluster must compute the same function.
        assert_eq!(a.hash_code(), 2_080_987_868);
    }

    #[test]
    fn zero_filled_descriptor_is_empty_and_unlocked() {
        // SAFETY: atomics and LWLocks, all valid when zero (I3).
        let desc: BufferDesc = unsafe { std::mem::zeroed() };
        let s = desc.load_state();
        assert_eq!((s.refcount(), s.usage_count(), s.0), (0, 0, 0));
        assert!(!desc.content_lock.held_by_anyone());
        let h = desc.lock_header();
        assert!(h.get().has(BM_LOCKED));
        drop(h);
        assert!(!desc.load_state().has(BM_LOCKED));
    }

    #[test]
    fn pins_bump_usage_up_to_the_maximum() {
        // SAFETY: as above.
        let desc: BufferDesc = unsafe { std::mem::zeroed() };
        desc.init(BufferId(3));
        for _ in 0..7 {
            desc.pin_shared();
        }
        let s = desc.load_state();
        assert_eq!((s.refcount(), s.usage_count()), (7, BM_MAX_USAGE_COUNT));
        for _ in 0..7 {
            desc.unpin_shared();
        }
        assert_eq!(desc.load_state().refcount(), 0);
        assert_eq!(desc.id(), BufferId(3));
    }

    #[test]
    fn a_locked_header_holds_off_pins_until_released() {
        // SAFETY: as above.
        let desc: BufferDesc = unsafe { std::mem::zeroed() };
        std::thread::scope(|s| {
            let mut h = desc.lock_header();
            let pinner = s.spawn(|| desc.pin_shared());
            std::thread::sleep(Duration::from_millis(20));
            // The pinner cannot have changed the word under our lock.
            assert_eq!(BufState(desc.state.load(Ordering::SeqCst)).refcount(), 0);
            h.state |= BM_VALID;
            drop(h);
            let after = pinner.join().unwrap();
            assert!(after.has(BM_VALID));
            assert_eq!(after.refcount(), 1);
        });
    }
}
