//! A process's handle on the lock manager (PostgreSQL's `LockAcquire`,
//! `LockRelease`, `LockReleaseAll` and the backend-local `LOCALLOCK` table).
//!
//! ```text
//!   lock_acquire(tag, mode)
//!     local table: already held in this mode? ── yes ──► count + 1 (AlreadyHeld)
//!     weak relation mode, no strong lock anywhere, free slot?
//!                                             ── yes ──► fast-path slot (Acquired)
//!     strong relation mode: raise the strong counter, transfer fast-path locks
//!     partition lock: find or create the lock and our proclock
//!       grantable (rule Q1, or Q2 lets us ahead)? ── yes ──► grant (Acquired)
//!       NoWait                                    ──────► NotAvailable
//!       else queue (Q2 placement) and sleep (wait.rs) ──► Acquired / error
//!
//!   lock_release(tag, mode): count - 1; at zero, from the slot or the table,
//!     waking the waiters it unblocks (Q3)
//!   lock_release_all(): everything, at commit and abort
//! ```
//!
//! # Invariants
//!
//! 1. The local table is authoritative for what this process holds: an
//!    entry's `counts[m] > 0` iff the process holds mode `m` of the tag,
//!    once, in a fast-path slot (if `m` is in `fast_path` and the slot still
//!    has it) or in the shared table.
//! 2. `proclock`, when not `NONE`, is this process's proclock on the tag's
//!    lock entry; it is freed only by this process (when it holds nothing
//!    of the lock and is not waiting), which then resets the field.
//! 3. A strong relation mode held (or awaited) adds one to the relation's
//!    strong counter, taken back when the mode is released or the request
//!    fails.
//!
//! # Locking
//!
//! `lock_acquire` may sleep: the caller must hold no LWLock and no spinlock,
//! and in particular **no buffer content lock and no pin it cannot give up**
//! (the holder it waits for may need that buffer to finish). Take relation
//! locks before reading the relation's pages.

use super::shared::{LockTable, Placement, NONE, NOT_WAITING};
use super::tag::{LockMask, LockMode, LockTag, PackedTag};
use super::wait::WaitEnd;
use super::{out_of_shared_memory, LockResult, LockWait};
use pgerror::PgResult;
use shmem_layout::procarray::Proc;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// PostgreSQL's default `deadlock_timeout`.
pub const DEFAULT_DEADLOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// What this process holds of one tag (PostgreSQL's `LOCALLOCK`, one per
/// tag rather than per tag and mode).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalLock {
    /// Acquisitions not yet released, per mode (index mode - 1).
    pub(crate) counts: [u32; 8],
    /// Modes taken on the fast path (a transfer may have moved them since).
    pub(crate) fast_path: LockMask,
    /// Our proclock on the tag's lock entry, or `NONE` if unknown or none.
    pub(crate) proclock: u32,
}

impl Default for LocalLock {
    fn default() -> LocalLock {
        LocalLock {
            counts: [0; 8],
            fast_path: 0,
            proclock: NONE,
        }
    }
}

impl LocalLock {
    pub(crate) fn held(&self) -> LockMask {
        LockMode::ALL
            .into_iter()
            .filter(|m| self.counts[*m as usize - 1] > 0)
            .fold(0, |mask, m| mask | m.bit())
    }
}

/// A small multiplicative hasher for the local table: tags are a few
/// integers, and the table is private to the process.
#[derive(Default)]
pub(crate) struct TagHasher(u64);

impl TagHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for TagHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    fn write_u16(&mut self, v: u16) {
        self.add(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn write_isize(&mut self, v: isize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// What the shared table said to a request.
enum TableOutcome {
    Granted { pl: u32 },
    NotAvailable { pl: u32 },
    Waiting { pl: u32 },
}

/// The lock manager as one process sees it: the shared table plus its own
/// local table. One per process that owns a proc entry and takes
/// heavyweight locks (backends, autovacuum workers).
pub struct LockManager<'a> {
    pub(crate) table: LockTable<'a>,
    pub(crate) procs: &'a [Proc],
    pub(crate) me: u32,
    pub(crate) local: HashMap<LockTag, LocalLock, BuildHasherDefault<TagHasher>>,
    pub(crate) deadlock_timeout: Duration,
    pub(crate) lock_timeout: Option<Duration>,
}

/// Releases whatever is still held when the handle goes away, as
/// PostgreSQL's `ProcKill` does at process exit; not while unwinding from
/// a panic, which may have left the table half-changed (a crash anyway).
impl Drop for LockManager<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.lock_release_all();
        }
    }
}

impl<'a> LockManager<'a> {
    /// The handle of the process that owns proc entry `my_proc` of `procs`
    /// (the whole proc array, in the lock table's order).
    pub fn new(table: LockTable<'a>, procs: &'a [Proc], my_proc: usize) -> LockManager<'a> {
        assert!(
            my_proc < table.num_procs() && procs.len() == table.num_procs(),
            "proc entry {my_proc} outside the lock table"
        );
        let me = my_proc as u32;
        if table.fast_path_reset(me) {
            log::warn!("proc entry {my_proc} still had fast-path locks of its previous owner");
        }
        table.procs[my_proc].wait_status.store(NOT_WAITING, SeqCst);
        LockManager {
            table,
            procs,
            me,
            local: HashMap::default(),
            deadlock_timeout: DEFAULT_DEADLOCK_TIMEOUT,
            lock_timeout: None,
        }
    }

    /// `deadlock_timeout` and `lock_timeout` (`None` for 0, no limit) for
    /// the waits to come; the backend sets them from its settings.
    pub fn set_timeouts(&mut self, deadlock_timeout: Duration, lock_timeout: Option<Duration>) {
        self.deadlock_timeout = deadlock_timeout;
        self.lock_timeout = lock_timeout.filter(|t| !t.is_zero());
    }

    /// Acquires `mode` on `tag` (PostgreSQL's `LockAcquire`). With
    /// [`LockWait::Block`] it sleeps until granted, calling `interrupts` at
    /// least every [`super::INTERRUPT_CHECK_INTERVAL`] and passing on its
    /// error; it fails with `55P03` after `lock_timeout` and with `40P01`
    /// if, after `deadlock_timeout`, it finds itself in a deadlock. With
    /// [`LockWait::NoWait`] it returns [`LockResult::NotAvailable`] instead
    /// of waiting. A full table is `53200 out of shared memory`.
    ///
    /// When the call fails, nothing of this request is held, except when an
    /// interrupt arrived after the grant: then the mode is held (and
    /// released by `lock_release_all` at abort) and the error returned.
    pub fn lock_acquire(
        &mut self,
        tag: LockTag,
        mode: LockMode,
        wait: LockWait,
        mut interrupts: impl FnMut() -> PgResult<()>,
    ) -> PgResult<LockResult> {
        let m = mode as usize - 1;
        let mut local = match self.local.get_mut(&tag) {
            Some(l) if l.counts[m] > 0 => {
                l.counts[m] += 1;
                return Ok(LockResult::AlreadyHeld);
            }
            Some(l) => *l,
            None => LocalLock::default(),
        };
        let packed = tag.pack();
        let hash = packed.hash();
        let relation = tag.fast_path_relation();
        if let Some((db, rel)) = relation.filter(|_| mode.is_weak()) {
            if self.table.fast_path_grant(self.me, db, rel, mode, hash) {
                local.counts[m] = 1;
                local.fast_path |= mode.bit();
                self.local.insert(tag, local);
                return Ok(LockResult::Acquired);
            }
        }
        let strong = relation.is_some() && mode.is_strong();
        if let Some((db, rel)) = relation.filter(|_| strong) {
            self.table.strong_count(hash).fetch_add(1, SeqCst);
            if !self.table.fast_path_transfer(&packed, hash, db, rel) {
                self.table.strong_count(hash).fetch_sub(1, SeqCst);
                return Err(out_of_shared_memory());
            }
        }
        let outcome = match self.acquire_in_table(&packed, hash, mode, wait, local.proclock) {
            Ok(o) => o,
            Err(e) => {
                if strong {
                    self.table.strong_count(hash).fetch_sub(1, SeqCst);
                }
                return Err(e);
            }
        };
        let (granted, result, pl) = match outcome {
            TableOutcome::Granted { pl } => (true, Ok(LockResult::Acquired), pl),
            TableOutcome::NotAvailable { pl } => (false, Ok(LockResult::NotAvailable), pl),
            TableOutcome::Waiting { pl } => match self.wait_for_grant(hash, &mut interrupts) {
                WaitEnd::Granted => (true, Ok(LockResult::Acquired), pl),
                WaitEnd::GrantedButFailed(e) => (true, Err(e), pl),
                WaitEnd::Failed { error, pl_freed } => {
                    (false, Err(error), if pl_freed { NONE } else { pl })
                }
            },
        };
        local.proclock = pl;
        if granted {
            local.counts[m] = 1;
        } else if strong {
            self.table.strong_count(hash).fetch_sub(1, SeqCst);
        }
        self.store_local(tag, local);
        result
    }

    /// Releases one acquisition of `mode` on `tag` (PostgreSQL's
    /// `LockRelease`); false, with a WARNING, if it is not held.
    pub fn lock_release(&mut self, tag: &LockTag, mode: LockMode) -> bool {
        let m = mode as usize - 1;
        let Some(l) = self.local.get_mut(tag) else {
            log::warn!("you don't own a lock of type {mode}");
            return false;
        };
        match l.counts[m] {
            0 => {
                log::warn!("you don't own a lock of type {mode}");
                return false;
            }
            1 => {}
            _ => {
                l.counts[m] -= 1;
                return true;
            }
        }
        let mut local = *l;
        local.counts[m] = 0;
        let packed = tag.pack();
        let hash = packed.hash();
        let mut in_slot = 0;
        if local.fast_path & mode.bit() != 0 {
            local.fast_path &= !mode.bit();
            let (db, rel) = tag.fast_path_relation().expect("fast path holds relations");
            in_slot = self.table.fast_path_release(self.me, db, rel, mode.bit());
        }
        if in_slot == 0 {
            local.proclock = self.release_in_table(&packed, hash, mode.bit(), local.proclock);
        }
        if tag.fast_path_relation().is_some() && mode.is_strong() {
            self.table.strong_count(hash).fetch_sub(1, SeqCst);
        }
        self.store_local(*tag, local);
        true
    }

    /// Releases every lock this process holds (PostgreSQL's
    /// `LockReleaseAll`), at commit, abort, and before giving up the proc
    /// entry.
    pub fn lock_release_all(&mut self) {
        if self.local.is_empty() {
            return;
        }
        let entries: Vec<(LockTag, LocalLock)> = self.local.drain().collect();
        let fast: Vec<(usize, (_, _, LockMask))> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, (tag, l))| {
                let (db, rel) = tag.fast_path_relation()?;
                let fp = l.fast_path & l.held();
                (fp != 0).then_some((i, (db, rel, fp)))
            })
            .collect();
        let items: Vec<_> = fast.iter().map(|(_, item)| *item).collect();
        let found = self.table.fast_path_release_many(self.me, &items);
        let mut in_slot = vec![0; entries.len()];
        for ((i, _), f) in fast.iter().zip(found) {
            in_slot[*i] = f;
        }
        for ((tag, l), in_slot) in entries.iter().zip(in_slot) {
            let packed = tag.pack();
            let hash = packed.hash();
            let rest = l.held() & !in_slot;
            if rest != 0 {
                self.release_in_table(&packed, hash, rest, l.proclock);
            }
            if tag.fast_path_relation().is_some() {
                let strong = LockMode::iter_mask(l.held())
                    .filter(|m| m.is_strong())
                    .count();
                if strong > 0 {
                    self.table
                        .strong_count(hash)
                        .fetch_sub(strong as u32, SeqCst);
                }
            }
        }
    }

    /// Whether this process holds `mode` on `tag`.
    pub fn holds(&self, tag: &LockTag, mode: LockMode) -> bool {
        self.local
            .get(tag)
            .is_some_and(|l| l.counts[mode as usize - 1] > 0)
    }

    /// Every (tag, modes) this process holds.
    pub fn held_locks(&self) -> Vec<(LockTag, LockMask)> {
        self.local.iter().map(|(t, l)| (*t, l.held())).collect()
    }

    /// This process's proc entry index.
    pub fn my_proc(&self) -> usize {
        self.me as usize
    }

    fn store_local(&mut self, tag: LockTag, local: LocalLock) {
        if local.held() == 0 {
            debug_assert_eq!(local.proclock, NONE, "a proclock that holds nothing");
            self.local.remove(&tag);
        } else {
            self.local.insert(tag, local);
        }
    }

    /// The shared-table part of an acquisition, under the partition lock.
    fn acquire_in_table(
        &self,
        tag: &PackedTag,
        hash: u32,
        mode: LockMode,
        wait: LockWait,
        cached_pl: u32,
    ) -> PgResult<TableOutcome> {
        let t = &self.table;
        let _g = t.lock_partition(LockTable::partition_of(hash));
        let lock = match t.find_lock(tag, hash) {
            Some(l) => l,
            None => t.create_lock(tag, hash).ok_or_else(out_of_shared_memory)?,
        };
        let pl = if cached_pl != NONE {
            cached_pl
        } else if let Some(pl) = t.find_proclock(lock, self.me) {
            pl
        } else if let Some(pl) = t.create_proclock(lock, self.me) {
            pl
        } else {
            t.cleanup(lock, NONE);
            return Err(out_of_shared_memory());
        };
        let held = t.hold_mask(pl);
        let placement = if mode.conflicts() & t.wait_mask(lock) == 0
            && !t.conflicts_with_others(lock, mode, held)
        {
            Placement::GrantNow
        } else {
            t.placement(lock, mode, held)
        };
        Ok(match (placement, wait) {
            (Placement::GrantNow, _) => {
                t.grant(lock, pl, mode);
                TableOutcome::Granted { pl }
            }
            (_, LockWait::NoWait) => {
                let freed = t.cleanup(lock, pl);
                TableOutcome::NotAvailable {
                    pl: if freed { NONE } else { pl },
                }
            }
            (Placement::Before(p), LockWait::Block) => {
                t.enqueue(lock, self.me, pl, mode, p);
                TableOutcome::Waiting { pl }
            }
            (Placement::Back, LockWait::Block) => {
                t.enqueue(lock, self.me, pl, mode, NONE);
                TableOutcome::Waiting { pl }
            }
        })
    }

    /// Releases `modes` of the tag in the shared table and wakes the
    /// waiters that can now go (rule Q3). Returns our proclock, or `NONE`
    /// if it was freed.
    fn release_in_table(&self, tag: &PackedTag, hash: u32, modes: LockMask, cached_pl: u32) -> u32 {
        let t = &self.table;
        let mut wakes = Vec::new();
        let result = {
            let _g = t.lock_partition(LockTable::partition_of(hash));
            let Some(lock) = t.find_lock(tag, hash) else {
                log::warn!(
                    "lock {:?} is not in the shared lock table",
                    LockTag::unpack(*tag)
                );
                return NONE;
            };
            let pl = match cached_pl {
                NONE => t.find_proclock(lock, self.me),
                pl => Some(pl),
            };
            let Some(pl) = pl else {
                log::warn!("no proclock of ours on lock {:?}", LockTag::unpack(*tag));
                return NONE;
            };
            let mut wake_needed = 0;
            for mode in LockMode::iter_mask(modes) {
                if t.ungrant(lock, pl, mode) {
                    wake_needed |= mode.conflicts();
                } else {
                    log::warn!("you don't own a lock of type {mode}");
                }
            }
            if wake_needed & t.wait_mask(lock) != 0 {
                t.grant_waiters(lock, &mut wakes);
            }
            if t.cleanup(lock, pl) {
                NONE
            } else {
                pl
            }
        };
        for p in wakes {
            t.wake(p);
        }
        result
    }
}

/// Row-level waits through the lock manager (PostgreSQL's
/// XactLockTableWait): a share lock on the writer's transaction id, which
/// the writer holds exclusively until it ends, so that a cycle of
/// transactions waiting for each other's rows is a detected deadlock.
impl crate::heap::XidWaiter for LockManager<'_> {
    fn wait_for_xid(
        &mut self,
        xid: crate::types::Xid,
        interrupts: &mut dyn FnMut() -> Result<(), pgerror::PgError>,
    ) -> Result<(), pgerror::PgError> {
        let tag = LockTag::TransactionId(xid);
        self.lock_acquire(tag, LockMode::Share, LockWait::Block, &mut *interrupts)?;
        self.lock_release(&tag, LockMode::Share);
        Ok(())
    }
}
