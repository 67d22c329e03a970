//! The transaction manager's shared state and the per-process handle on it:
//! the xid counter (PostgreSQL's `ShmemVariableCache->nextXid`, XidGenLock),
//! the oid counter (`nextOid`, `oidCount`, OidGenLock), latestCompletedXid
//! and ProcArrayLock, plus one [`XactEndSlot`] per proc entry for waiters
//! (see [`super::xact_wait`]).
//!
//! Every process that attaches the segment builds a [`Transam`] from the
//! region and the proc array; the postmaster only sizes the region and calls
//! [`init_region`] when it creates the segment.
//!
//! # Invariants
//!
//! 1. After `init`, `next_xid >= FIRST_NORMAL` and `latest_completed_xid <
//!    next_xid`; both only grow.
//! 2. Zero-filled memory is a valid (all locks free) region whose counters
//!    are meaningless until [`init_region`] runs; `init` is idempotent and is
//!    what the crash cycle's fresh segment gets.
//! 3. `end_slots[i]` belongs to `procs[i]`: only the owner of `procs[i]`
//!    increments its `seq`.
//!
//! # Locking
//!
//! Rules P1 (xid assignment under XidGenLock) and P9 (oids under
//! OidGenLock) of the module docs. Lock order: ProcArrayLock, XidGenLock,
//! commit log control lock, OidGenLock, WAL insertion; the callbacks of
//! [`Transam::assign_xid_with`] and [`Transam::new_oid`] run holding
//! XidGenLock and OidGenLock respectively and may take only locks later in
//! that order.
//!
//! # Crash safety
//!
//! Neither counter is WAL-logged per assignment. `next_xid` is restored from
//! the checkpoint and moved past every xid replay sees
//! ([`Transam::set_next_xid`], [`Transam::advance_next_xid_past`]);
//! `next_oid` from the checkpoint and NEXTOID records, which reserve
//! [`VAR_OID_PREFETCH`] oids ahead ([`Transam::set_next_oid`]).

use crate::types::{Oid, Xid};
use shmem_layout::lwlock::{LWLock, LWLockTranche};
use shmem_layout::procarray::Proc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// PostgreSQL's ProcArrayLock id.
pub const PROC_ARRAY_TRANCHE: LWLockTranche = LWLockTranche(4);
/// PostgreSQL's XidGenLock id.
pub const XID_GEN_TRANCHE: LWLockTranche = LWLockTranche(3);
/// PostgreSQL's OidGenLock id.
pub const OID_GEN_TRANCHE: LWLockTranche = LWLockTranche(2);

/// First oid `initdb`'s catalog data may use (PostgreSQL's FirstGenbkiObjectId).
pub const FIRST_GENBKI_OBJECT_ID: Oid = Oid(10000);
/// First oid of user objects (PostgreSQL's FirstNormalObjectId).
pub const FIRST_NORMAL_OBJECT_ID: Oid = Oid(16384);
/// Oids reserved by each NEXTOID record (PostgreSQL's VAR_OID_PREFETCH).
pub const VAR_OID_PREFETCH: u32 = 8192;

/// The fixed part of the region.
#[repr(C, align(64))]
pub struct TransamShared {
    /// PostgreSQL's ProcArrayLock: exclusive to end a transaction (P3),
    /// shared to take a snapshot (P4) or compute the horizon (P6).
    pub(super) proc_array_lock: LWLock,
    /// PostgreSQL's XidGenLock: held exclusively while assigning (P1).
    xid_gen_lock: LWLock,
    /// PostgreSQL's OidGenLock: held exclusively while assigning (P9).
    oid_gen_lock: LWLock,
    /// Next oid to hand out. Protected by `oid_gen_lock`.
    next_oid: AtomicU32,
    /// Oids left before a NEXTOID record must be logged. Protected by
    /// `oid_gen_lock`.
    oid_count: AtomicU32,
    /// Next xid to hand out. Written under `xid_gen_lock` exclusive; read
    /// atomically by anyone.
    pub(super) next_xid: AtomicU64,
    /// Newest xid that has ended. Written under `proc_array_lock` exclusive;
    /// read under it in either mode.
    pub(super) latest_completed_xid: AtomicU64,
}

const _: () = {
    assert!(std::mem::size_of::<TransamShared>() == 64);
    assert!(std::mem::align_of::<TransamShared>() == 64);
};

/// Per proc entry: what waiters for that entry's transaction sleep on.
/// Alone on its cache line, as each is written at every transaction end.
#[repr(C, align(64))]
pub struct XactEndSlot {
    /// Incremented by the entry's owner after each transaction with an xid
    /// ends (P8); the futex word waiters sleep on.
    pub(super) seq: AtomicU32,
    /// Processes currently inside a wait on this slot; the ender skips the
    /// wake system call when it is 0.
    pub(super) waiters: AtomicU32,
}

const _: () = {
    assert!(std::mem::size_of::<XactEndSlot>() == 64);
};

impl XactEndSlot {
    pub fn init(&self) {
        self.seq.store(0, Ordering::Relaxed);
        self.waiters.store(0, Ordering::Relaxed);
    }
}

/// Bytes of the region for `num_procs` proc entries:
/// `64 + 64 × num_procs` (the header, then one [`XactEndSlot`] per entry).
pub const fn shmem_size_bytes(num_procs: usize) -> usize {
    std::mem::size_of::<TransamShared>() + num_procs * std::mem::size_of::<XactEndSlot>()
}

/// Offset of the first [`XactEndSlot`] within the region.
pub const END_SLOTS_OFFSET: usize = std::mem::size_of::<TransamShared>();

/// Postmaster (at segment creation, and again at each crash re-initialisation):
/// sets every lock free and the counters to a fresh cluster's values. The
/// startup process then sets them from the checkpoint.
pub fn init_region(shared: &TransamShared, end_slots: &[XactEndSlot]) {
    shared.init();
    for slot in end_slots {
        slot.init();
    }
}

impl TransamShared {
    /// Fresh values: next xid FIRST_NORMAL (3), nothing completed, next oid
    /// FIRST_GENBKI_OBJECT_ID (what bootstrap starts from; normal running
    /// moves to 16384 at the first assignment).
    pub fn init(&self) {
        self.proc_array_lock.init(PROC_ARRAY_TRANCHE);
        self.xid_gen_lock.init(XID_GEN_TRANCHE);
        self.oid_gen_lock.init(OID_GEN_TRANCHE);
        self.next_oid
            .store(FIRST_GENBKI_OBJECT_ID.0, Ordering::Relaxed);
        self.oid_count.store(0, Ordering::Relaxed);
        self.next_xid.store(Xid::FIRST_NORMAL.0, Ordering::Relaxed);
        self.latest_completed_xid
            .store(Xid::FIRST_NORMAL.0 - 1, Ordering::Relaxed);
    }
}

/// Which oid range [`Transam::new_oid`] may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OidAssignMode {
    /// Under the postmaster: never below [`FIRST_NORMAL_OBJECT_ID`].
    Normal,
    /// Bootstrap and single-user mode (PostgreSQL's `!IsPostmasterEnvironment`):
    /// oids from [`FIRST_GENBKI_OBJECT_ID`] up are allowed.
    Bootstrap,
}

/// One process's handle on the region and the proc array.
#[derive(Clone, Copy)]
pub struct Transam<'a> {
    pub(super) shared: &'a TransamShared,
    pub(super) end_slots: &'a [XactEndSlot],
    pub(super) procs: &'a [Proc],
}

impl<'a> Transam<'a> {
    /// `end_slots` and `procs` must have the same length (one slot per
    /// entry of `Shmem::procs()`).
    pub fn new(
        shared: &'a TransamShared,
        end_slots: &'a [XactEndSlot],
        procs: &'a [Proc],
    ) -> Transam<'a> {
        assert_eq!(
            end_slots.len(),
            procs.len(),
            "one XactEndSlot per proc entry"
        );
        Transam {
            shared,
            end_slots,
            procs,
        }
    }

    pub fn procs(&self) -> &'a [Proc] {
        self.procs
    }

    /// Index of `proc` in the proc array. Panics if it is not an entry of it
    /// (a caller bug).
    pub fn proc_index(&self, proc: &Proc) -> usize {
        let base = self.procs.as_ptr() as usize;
        let addr = proc as *const Proc as usize;
        let size = std::mem::size_of::<Proc>();
        assert!(
            addr >= base && addr < base + self.procs.len() * size && (addr - base) % size == 0,
            "proc entry not in this proc array"
        );
        (addr - base) / size
    }

    /// Assigns the caller's transaction an xid, publishing it in `my_proc`
    /// before returning (P1). For callers without a commit log (tests); the
    /// server uses [`Transam::assign_xid_with`].
    pub fn assign_xid(&self, my_proc: &Proc) -> Xid {
        match self.assign_xid_with(my_proc, |_| Ok::<(), std::convert::Infallible>(())) {
            Ok(xid) => xid,
            Err(never) => match never {},
        }
    }

    /// Assigns an xid (PostgreSQL's GetNewTransactionId). `extend_clog`
    /// runs under XidGenLock with the xid about to be assigned, before
    /// anything changes: it must make the commit log cover that xid
    /// (`Clog::extend_to`). If it fails, nothing is assigned and its error is
    /// returned.
    pub fn assign_xid_with<E>(
        &self,
        my_proc: &Proc,
        extend_clog: impl FnOnce(Xid) -> Result<(), E>,
    ) -> Result<Xid, E> {
        debug_assert_eq!(
            my_proc.xid.load(Ordering::Relaxed),
            0,
            "a transaction gets one xid"
        );
        let _xid_gen = self.shared.xid_gen_lock.acquire_exclusive();
        let xid = Xid(self.shared.next_xid.load(Ordering::SeqCst));
        debug_assert!(xid.is_normal(), "transam region not initialised");
        extend_clog(xid)?;
        // P1: visible in the proc array before any later xid can be assigned.
        my_proc.xid.store(xid.0, Ordering::SeqCst);
        self.shared.next_xid.store(xid.0 + 1, Ordering::SeqCst);
        Ok(xid)
    }

    /// The next xid to be assigned (for the checkpoint record).
    pub fn next_xid(&self) -> Xid {
        Xid(self.shared.next_xid.load(Ordering::SeqCst))
    }

    /// Newest xid that has ended (PostgreSQL's latestCompletedXid).
    pub fn latest_completed_xid(&self) -> Xid {
        let _shared = self.shared.proc_array_lock.acquire_shared();
        Xid(self.shared.latest_completed_xid.load(Ordering::SeqCst))
    }

    /// Startup process, before replay: the checkpoint's next xid. Every xid
    /// below it has ended (no process is running at this point).
    pub fn set_next_xid(&self, next: Xid) {
        let next = next.max(Xid::FIRST_NORMAL);
        {
            let _pa = self.shared.proc_array_lock.acquire_exclusive();
            self.shared
                .latest_completed_xid
                .store(next.0 - 1, Ordering::SeqCst);
        }
        let _xid_gen = self.shared.xid_gen_lock.acquire_exclusive();
        self.shared.next_xid.store(next.0, Ordering::SeqCst);
    }

    /// Startup process, during replay: `xid` appeared in a record (its
    /// header, or a subtransaction list); it must never be assigned again.
    pub fn advance_next_xid_past(&self, xid: Xid) {
        if !xid.is_normal() {
            return;
        }
        {
            let _pa = self.shared.proc_array_lock.acquire_exclusive();
            self.shared
                .latest_completed_xid
                .fetch_max(xid.0, Ordering::SeqCst);
        }
        let _xid_gen = self.shared.xid_gen_lock.acquire_exclusive();
        self.shared.next_xid.fetch_max(xid.0 + 1, Ordering::SeqCst);
    }

    /// Hands out an oid (PostgreSQL's GetNewObjectId). When the current
    /// reservation is used up, `log_next_oid(n)` runs first, under
    /// OidGenLock: it must insert a NEXTOID WAL record saying oids below `n`
    /// may be in use (P9). The record need not be flushed: anything durable
    /// that uses an oid is WAL-logged after it.
    ///
    /// Oids wrap around at 2^32; in [`OidAssignMode::Normal`] the range
    /// below 16384 (and so InvalidOid, 0) is skipped. Uniqueness within a
    /// catalog is the caller's business (an index probe), as in PostgreSQL.
    pub fn new_oid(&self, mode: OidAssignMode, log_next_oid: impl FnOnce(Oid)) -> Oid {
        let shared = self.shared;
        let _oid_gen = shared.oid_gen_lock.acquire_exclusive();
        let mut next = shared.next_oid.load(Ordering::SeqCst);
        let floor = match mode {
            OidAssignMode::Normal => FIRST_NORMAL_OBJECT_ID.0,
            OidAssignMode::Bootstrap => FIRST_GENBKI_OBJECT_ID.0,
        };
        if next < floor {
            // Wraparound, or the first assignment after bootstrap.
            next = FIRST_NORMAL_OBJECT_ID.0;
            shared.oid_count.store(0, Ordering::SeqCst);
        }
        if shared.oid_count.load(Ordering::SeqCst) == 0 {
            log_next_oid(Oid(next.wrapping_add(VAR_OID_PREFETCH)));
            shared.oid_count.store(VAR_OID_PREFETCH, Ordering::SeqCst);
        }
        shared
            .next_oid
            .store(next.wrapping_add(1), Ordering::SeqCst);
        shared.oid_count.fetch_sub(1, Ordering::SeqCst);
        Oid(next)
    }

    /// The next oid to be handed out (for the checkpoint record).
    pub fn next_oid(&self) -> Oid {
        let _oid_gen = self.shared.oid_gen_lock.acquire_shared();
        Oid(self.shared.next_oid.load(Ordering::SeqCst))
    }

    /// Startup (from the checkpoint), replay of a NEXTOID record, or
    /// bootstrap. The next assignment logs a fresh reservation.
    pub fn set_next_oid(&self, next: Oid) {
        let _oid_gen = self.shared.oid_gen_lock.acquire_exclusive();
        self.shared.next_oid.store(next.0, Ordering::SeqCst);
        self.shared.oid_count.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transam::test_support::TestRegion;

    #[test]
    fn region_size_formula() {
        assert_eq!(shmem_size_bytes(0), 64);
        assert_eq!(shmem_size_bytes(109), 64 + 64 * 109);
        assert_eq!(END_SLOTS_OFFSET, 64);
    }

    #[test]
    fn xids_start_at_first_normal_and_are_published() {
        let r = TestRegion::new(3);
        let t = r.transam();
        let p = &t.procs()[1];
        assert_eq!(t.next_xid(), Xid::FIRST_NORMAL);
        let x = t.assign_xid(p);
        assert_eq!(x, Xid(3));
        assert_eq!(p.xid.load(Ordering::SeqCst), 3);
        assert_eq!(t.next_xid(), Xid(4));
        assert_eq!(t.latest_completed_xid(), Xid(2));
    }

    #[test]
    fn a_failed_clog_extension_assigns_nothing() {
        let r = TestRegion::new(2);
        let t = r.transam();
        let p = &t.procs()[0];
        let err = t.assign_xid_with(p, |x| Err(format!("no page for {x}")));
        assert_eq!(err, Err("no page for 3".to_string()));
        assert_eq!(p.xid.load(Ordering::SeqCst), 0);
        assert_eq!(t.next_xid(), Xid(3));
        let mut seen = None;
        let x = t
            .assign_xid_with(p, |x| {
                seen = Some(x);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!((Some(x), x), (seen, Xid(3)));
    }

    #[test]
    fn recovery_moves_the_xid_counter_forward_only() {
        let r = TestRegion::new(1);
        let t = r.transam();
        t.set_next_xid(Xid(1000));
        assert_eq!(
            (t.next_xid(), t.latest_completed_xid()),
            (Xid(1000), Xid(999))
        );
        t.advance_next_xid_past(Xid(500));
        assert_eq!(t.next_xid(), Xid(1000));
        t.advance_next_xid_past(Xid(1500));
        assert_eq!(
            (t.next_xid(), t.latest_completed_xid()),
            (Xid(1501), Xid(1500))
        );
        t.advance_next_xid_past(Xid::BOOTSTRAP);
        assert_eq!(t.next_xid(), Xid(1501));
        assert_eq!(t.assign_xid(&t.procs()[0]), Xid(1501));
    }

    #[test]
    fn oids_start_at_first_normal_and_log_a_reservation_every_prefetch() {
        let r = TestRegion::new(1);
        let t = r.transam();
        let mut logged = Vec::new();
        let first = t.new_oid(OidAssignMode::Normal, |n| logged.push(n));
        assert_eq!(first, FIRST_NORMAL_OBJECT_ID);
        assert_eq!(logged, vec![Oid(16384 + VAR_OID_PREFETCH)]);
        for i in 1..VAR_OID_PREFETCH {
            let oid = t.new_oid(OidAssignMode::Normal, |n| logged.push(n));
            assert_eq!(oid, Oid(16384 + i));
        }
        assert_eq!(logged.len(), 1, "one record per {VAR_OID_PREFETCH} oids");
        let oid = t.new_oid(OidAssignMode::Normal, |n| logged.push(n));
        assert_eq!(oid, Oid(16384 + VAR_OID_PREFETCH));
        assert_eq!(logged[1], Oid(16384 + 2 * VAR_OID_PREFETCH));
    }

    #[test]
    fn bootstrap_oids_stay_below_normal_and_wraparound_skips_reserved_values() {
        let r = TestRegion::new(1);
        let t = r.transam();
        assert_eq!(t.new_oid(OidAssignMode::Bootstrap, |_| ()), Oid(10000));
        assert_eq!(t.new_oid(OidAssignMode::Bootstrap, |_| ()), Oid(10001));
        // The first oid under the postmaster jumps to the user range.
        assert_eq!(t.new_oid(OidAssignMode::Normal, |_| ()), Oid(16384));
        t.set_next_oid(Oid(u32::MAX));
        let mut logged = Vec::new();
        assert_eq!(
            t.new_oid(OidAssignMode::Normal, |n| logged.push(n)),
            Oid(u32::MAX)
        );
        assert_eq!(
            t.new_oid(OidAssignMode::Normal, |n| logged.push(n)),
            FIRST_NORMAL_OBJECT_ID,
            "0 and the reserved range are skipped"
        );
        assert_eq!(
            logged.len(),
            2,
            "a reset after set_next_oid and after wraparound"
        );
    }
}
