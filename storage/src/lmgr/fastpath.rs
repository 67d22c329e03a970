//! The fast path for weak relation locks (PostgreSQL's fast-path locking in
//! `lock.c`): every statement takes AccessShare or RowExclusive on its
//! tables, and those modes conflict only with the strong ones (Share and
//! above), which DDL takes. So a backend records a weak lock in a slot of
//! its own proc entry, under its own LWLock, and touches no partition lock
//! as long as nobody wants a strong lock on that relation.
//!
//! ```text
//!   weak acquirer (own fp_lock only)          strong acquirer
//!   ────────────────────────────────          ───────────────────────────────────
//!   fp_lock(me)                               strong_count[h % 1024] += 1   (S1)
//!   strong_count[h % 1024] == 0 ?             partition lock of h
//!     yes: record mode in a slot; done        for every proc p, in index order:
//!     no:  go to the shared table               fp_lock(p): move p's slot for the
//!   release fp_lock(me)                                      relation into the table
//!                                             (then acquire in the table as usual)
//!   ...                                       ...
//!   strong release: strong_count -= 1 after the lock left the table
//! ```
//!
//! # Invariants
//!
//! 1. (S1) While a process holds or awaits a strong lock on a relation, the
//!    relation's strong counter is non-zero, and no weak lock on it is in any
//!    fast-path slot: the acquirer raised the counter before it went through
//!    every proc's slots under that proc's `fp_lock`, and a weak acquirer
//!    reads the counter under its own `fp_lock`, so one that comes after the
//!    transfer sees the counter and uses the shared table.
//! 2. A proc has at most one slot per relation; its three bits are the weak
//!    modes it holds on it there. Each (relation, mode) a process holds is
//!    either in a slot or in the shared table, never both.
//! 3. Only the owner adds to its slots; the owner and a strong acquirer
//!    (transferring) clear them, both under the proc's `fp_lock`. An owner
//!    that finds its lock gone from its slots releases it in the shared
//!    table, where the transfer put it.
//!
//! # Locking
//!
//! A proc's `fp_lock` is taken alone (weak acquire and release) or under one
//! partition lock (the transfer), never the other way round: nothing is
//! acquired while holding an `fp_lock`, apart from the free-list spinlocks
//! the transfer's allocations take.

use super::shared::{LockTable, ProcLockState, FP_LOCK_SLOTS_PER_BACKEND, NONE};
use super::tag::{LockMask, LockMode, PackedTag};
use crate::types::Oid;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// The three fast-path bits of `slot` holding `mask` (modes 1..=3).
fn slot_bits(slot: usize, mask: LockMask) -> u64 {
    u64::from((mask >> 1) & 7) << (3 * slot)
}

/// The weak modes in `slot` of a fast-path word.
fn slot_mask(bits: u64, slot: usize) -> LockMask {
    (((bits >> (3 * slot)) & 7) as u32) << 1
}

fn slot_is(st: &ProcLockState, slot: usize, db: Oid, rel: Oid) -> bool {
    st.fp_slots[slot][0].load(Relaxed) == db.0 && st.fp_slots[slot][1].load(Relaxed) == rel.0
}

/// The slot `st` uses for (db, rel), if any. Caller holds `st.fp_lock`.
fn find_slot(st: &ProcLockState, bits: u64, db: Oid, rel: Oid) -> Option<usize> {
    (0..FP_LOCK_SLOTS_PER_BACKEND).find(|&s| slot_mask(bits, s) != 0 && slot_is(st, s, db, rel))
}

impl LockTable<'_> {
    /// Owner `proc`: takes weak `mode` on (db, rel) in a slot, if no strong
    /// lock on the relation is held or awaited and a slot is available.
    pub(crate) fn fast_path_grant(
        &self,
        proc: u32,
        db: Oid,
        rel: Oid,
        mode: LockMode,
        hash: u32,
    ) -> bool {
        debug_assert!(mode.is_weak());
        let st = &self.procs[proc as usize];
        let _g = st.fp_lock.acquire_exclusive();
        if self.strong_count(hash).load(SeqCst) != 0 {
            return false;
        }
        let bits = st.fp_modes.load(Relaxed);
        let slot = match find_slot(st, bits, db, rel) {
            Some(s) => s,
            None => match (0..FP_LOCK_SLOTS_PER_BACKEND).find(|&s| slot_mask(bits, s) == 0) {
                Some(s) => {
                    st.fp_slots[s][0].store(db.0, Relaxed);
                    st.fp_slots[s][1].store(rel.0, Relaxed);
                    s
                }
                None => return false,
            },
        };
        st.fp_modes
            .store(bits | slot_bits(slot, mode.bit()), Relaxed);
        true
    }

    /// Owner `proc`: releases the weak modes `mask` on (db, rel) from its
    /// slot; returns the modes that were there (the others were
    /// transferred to the shared table).
    pub(crate) fn fast_path_release(
        &self,
        proc: u32,
        db: Oid,
        rel: Oid,
        mask: LockMask,
    ) -> LockMask {
        let st = &self.procs[proc as usize];
        let _g = st.fp_lock.acquire_exclusive();
        release_in_slot(st, db, rel, mask)
    }

    /// Owner `proc`: [`LockTable::fast_path_release`] for many relations
    /// under one acquisition of its `fp_lock`. Each item is (db, rel, modes
    /// to release); the modes found are returned in the same order.
    pub(crate) fn fast_path_release_many(
        &self,
        proc: u32,
        items: &[(Oid, Oid, LockMask)],
    ) -> Vec<LockMask> {
        let st = &self.procs[proc as usize];
        let _g = st.fp_lock.acquire_exclusive();
        items
            .iter()
            .map(|&(db, rel, mask)| release_in_slot(st, db, rel, mask))
            .collect()
    }

    /// The strong acquirer of (db, rel), after raising the relation's
    /// strong counter: moves every proc's fast-path locks on the relation
    /// into the shared table (PostgreSQL's `FastPathTransferRelationLocks`).
    /// False if the table ran out of entries; what was moved stays moved.
    pub(crate) fn fast_path_transfer(&self, tag: &PackedTag, hash: u32, db: Oid, rel: Oid) -> bool {
        let _part = self.lock_partition(Self::partition_of(hash));
        for (p, st) in self.procs.iter().enumerate() {
            let _g = st.fp_lock.acquire_exclusive();
            let bits = st.fp_modes.load(Relaxed);
            let Some(slot) = find_slot(st, bits, db, rel) else {
                continue;
            };
            let lock = match self.find_lock(tag, hash) {
                Some(l) => l,
                None => match self.create_lock(tag, hash) {
                    Some(l) => l,
                    None => return false,
                },
            };
            let pl = match self.find_proclock(lock, p as u32) {
                Some(pl) => pl,
                None => match self.create_proclock(lock, p as u32) {
                    Some(pl) => pl,
                    None => {
                        self.cleanup(lock, NONE);
                        return false;
                    }
                },
            };
            let held = self.hold_mask(pl);
            for mode in LockMode::iter_mask(slot_mask(bits, slot) & !held) {
                self.grant(lock, pl, mode);
            }
            st.fp_modes.store(bits & !slot_bits(slot, 0b1110), Relaxed);
        }
        true
    }

    /// Weak modes `proc` holds on the fast path (tests and diagnostics).
    pub fn fast_path_locks(&self, proc: usize) -> Vec<(Oid, Oid, LockMask)> {
        let st = &self.procs[proc];
        let _g = st.fp_lock.acquire_exclusive();
        let bits = st.fp_modes.load(Relaxed);
        (0..FP_LOCK_SLOTS_PER_BACKEND)
            .filter(|&s| slot_mask(bits, s) != 0)
            .map(|s| {
                (
                    Oid(st.fp_slots[s][0].load(Relaxed)),
                    Oid(st.fp_slots[s][1].load(Relaxed)),
                    slot_mask(bits, s),
                )
            })
            .collect()
    }

    /// Forgets whatever a previous owner of `proc` left in its slots.
    pub(crate) fn fast_path_reset(&self, proc: u32) -> bool {
        let st = &self.procs[proc as usize];
        let _g = st.fp_lock.acquire_exclusive();
        st.fp_modes.swap(0, Relaxed) != 0
    }
}

/// Clears `mask` from the slot of (db, rel); returns the modes it held of
/// `mask`. Caller holds `st.fp_lock`.
fn release_in_slot(st: &ProcLockState, db: Oid, rel: Oid, mask: LockMask) -> LockMask {
    let bits = st.fp_modes.load(Relaxed);
    let Some(slot) = find_slot(st, bits, db, rel) else {
        return 0;
    };
    let found = slot_mask(bits, slot) & mask;
    st.fp_modes.store(bits & !slot_bits(slot, found), Relaxed);
    found
}
