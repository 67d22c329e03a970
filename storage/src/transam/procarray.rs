//! The proc array's transaction side: ending a transaction, taking a
//! snapshot, testing whether an xid is running, and the oldest xmin
//! (PostgreSQL's `procarray.c`: ProcArrayEndTransaction, GetSnapshotData,
//! TransactionIdIsInProgress, GetOldestNonRemovableTransactionId).
//!
//! Backends run all of it on their own proc entry (`my_proc`) and read
//! everyone else's. The `xid` and `xmin` fields live in shmem-layout's
//! [`Proc`]; this file states the rules for them.
//!
//! # Invariants
//!
//! 1. `Proc.xid` is written only by its owner: set by `assign_xid` (under
//!    XidGenLock, P1), cleared by `end_transaction` (under ProcArrayLock
//!    exclusive, P3).
//! 2. `Proc.xmin` is written only by its owner: set by `take_snapshot` if 0
//!    (under ProcArrayLock shared), cleared by `end_transaction` or
//!    `reset_xmin` (P5).
//! 3. `latest_completed_xid` only grows, and only under ProcArrayLock
//!    exclusive; so successive snapshots have non-decreasing `xmax`.
//! 4. A snapshot's `xip` is sorted, holds no duplicates, never the taker's
//!    own xid, and every entry is in `[xmin, xmax)`.
//! 5. A process ends (aborts) its transaction before it gives its proc entry
//!    back: `Proc::release` clears `xid` too, but without raising
//!    latestCompletedXid or waking waiters (those still notice within one
//!    interrupt-check interval, as they re-check the entry).
//!
//! # Locking
//!
//! ProcArrayLock exclusive in `end_transaction` (for a transaction with an
//! xid); shared in `take_snapshot`, `global_xmin` and
//! `latest_completed_xid`. `is_running` takes no lock (P7). Nothing else is
//! acquired while ProcArrayLock is held; the waiters are woken after it is
//! released.
//!
//! # Crash safety
//!
//! Nothing here is on disk. A process that dies with an xid in its entry is
//! a crash; the cycle re-initialises the array and the region, and its xid,
//! with no commit record, reads as aborted.

use super::shared::Transam;
use super::snapshot::Snapshot;
use crate::types::Xid;
use shmem_layout::procarray::Proc;
use std::sync::atomic::Ordering;

impl Transam<'_> {
    /// Ends the caller's transaction in the proc array (PostgreSQL's
    /// ProcArrayEndTransaction) and wakes whoever waits for it.
    ///
    /// `xid` is the transaction's xid, or [`Xid::INVALID`] if it never got
    /// one. For a real xid the caller must already have recorded the commit
    /// or abort in the commit log (P2).
    pub fn end_transaction(&self, my_proc: &Proc, xid: Xid) {
        if !xid.is_valid() {
            // Without an xid we are in nobody's snapshot; only our xmin holds
            // anything back, and clearing it needs no lock.
            my_proc.xmin.store(0, Ordering::SeqCst);
            return;
        }
        debug_assert_eq!(
            my_proc.xid.load(Ordering::SeqCst),
            xid.0,
            "ending someone else's xid"
        );
        {
            let _pa = self.shared.proc_array_lock.acquire_exclusive();
            my_proc.xid.store(0, Ordering::SeqCst);
            my_proc.xmin.store(0, Ordering::SeqCst);
            self.shared
                .latest_completed_xid
                .fetch_max(xid.0, Ordering::SeqCst);
        }
        self.wake_xact_waiters(self.proc_index(my_proc));
    }

    /// Takes a snapshot (PostgreSQL's GetSnapshotData, rule P4) and, if the
    /// caller holds none yet (`my_proc.xmin` is 0), advertises its xmin.
    pub fn take_snapshot(&self, my_proc: &Proc) -> Snapshot {
        let mut snapshot = Snapshot {
            xmin: Xid::INVALID,
            xmax: Xid::INVALID,
            xip: Vec::with_capacity(self.procs.len()),
        };
        self.take_snapshot_into(my_proc, &mut snapshot);
        snapshot
    }

    /// [`Transam::take_snapshot`] reusing `snapshot`'s allocation.
    pub fn take_snapshot_into(&self, my_proc: &Proc, snapshot: &mut Snapshot) {
        snapshot.xip.clear();
        snapshot.xip.reserve(self.procs.len());
        let my_index = self.proc_index(my_proc);
        {
            let _pa = self.shared.proc_array_lock.acquire_shared();
            let xmax = self.shared.latest_completed_xid.load(Ordering::SeqCst) + 1;
            let mut xmin = xmax;
            let my_xid = my_proc.xid.load(Ordering::SeqCst);
            if my_xid != 0 && my_xid < xmax {
                xmin = my_xid;
            }
            for (i, proc) in self.procs.iter().enumerate() {
                let xid = proc.xid.load(Ordering::SeqCst);
                // Xids at or past xmax are running for this snapshot anyway
                // (P1: they were assigned after the scan's cut).
                if xid == 0 || i == my_index || xid >= xmax {
                    continue;
                }
                xmin = xmin.min(xid);
                snapshot.xip.push(Xid(xid));
            }
            if my_proc.xmin.load(Ordering::SeqCst) == 0 {
                // P5: set under the lock, so a concurrent global_xmin either
                // sees it or sees every xid it is computed from.
                my_proc.xmin.store(xmin, Ordering::SeqCst);
            }
            snapshot.xmin = Xid(xmin);
            snapshot.xmax = Xid(xmax);
        }
        snapshot.xip.sort_unstable();
    }

    /// The caller holds no snapshot any more (read committed, between
    /// statements): stop holding back the horizon (PostgreSQL's
    /// SnapshotResetXmin). Its xid, if any, still does.
    pub fn reset_xmin(&self, my_proc: &Proc) {
        my_proc.xmin.store(0, Ordering::SeqCst);
    }

    /// The oldest xid any current or future snapshot may consider running
    /// (P6). Tuples deleted by transactions that committed below it are dead
    /// to everyone.
    pub fn global_xmin(&self) -> Xid {
        let _pa = self.shared.proc_array_lock.acquire_shared();
        let mut oldest = self.shared.latest_completed_xid.load(Ordering::SeqCst) + 1;
        for proc in self.procs {
            for v in [
                proc.xid.load(Ordering::SeqCst),
                proc.xmin.load(Ordering::SeqCst),
            ] {
                if v != 0 {
                    oldest = oldest.min(v);
                }
            }
        }
        Xid(oldest)
    }

    /// Whether `xid` is still in some proc entry (PostgreSQL's
    /// TransactionIdIsInProgress; the caller's own xid counts). No lock (P7).
    pub fn is_running(&self, xid: Xid) -> bool {
        if !xid.is_normal() || xid.0 >= self.shared.next_xid.load(Ordering::SeqCst) {
            return false;
        }
        self.find_proc_running(xid).is_some()
    }

    /// Index of the proc entry whose xid is `xid`, if any.
    pub(super) fn find_proc_running(&self, xid: Xid) -> Option<usize> {
        self.procs
            .iter()
            .position(|p| p.xid.load(Ordering::SeqCst) == xid.0)
    }
}

impl super::visibility::XidRunningOracle for Transam<'_> {
    fn is_running(&self, xid: Xid) -> bool {
        Transam::is_running(self, xid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transam::test_support::TestRegion;

    #[test]
    fn a_snapshot_lists_other_running_xids_but_not_its_own() {
        let r = TestRegion::new(4);
        let t = r.transam();
        let p = t.procs();
        let x3 = t.assign_xid(&p[0]);
        let x4 = t.assign_xid(&p[1]);
        let x5 = t.assign_xid(&p[2]);
        t.end_transaction(&p[1], x4);
        let s = t.take_snapshot(&p[2]);
        // xmax is latestCompleted + 1 = 5: x5 is at xmax, running anyway.
        assert_eq!((s.xmin, s.xmax, s.xip.clone()), (x3, Xid(5), vec![x3]));
        assert!(s.xid_in_snapshot(x3));
        assert!(!s.xid_in_snapshot(x4));
        assert!(s.xid_in_snapshot(x5));
        assert_eq!(p[2].xmin.load(Ordering::SeqCst), 3, "xmin advertised");
    }

    #[test]
    fn own_xid_counts_for_xmin_and_an_existing_xmin_is_kept() {
        let r = TestRegion::new(3);
        let t = r.transam();
        let p = t.procs();
        let a = t.assign_xid(&p[0]);
        let b = t.assign_xid(&p[1]);
        t.end_transaction(&p[1], b);
        let s = t.take_snapshot(&p[0]);
        assert_eq!((s.xmin, s.xmax, s.xip.len()), (a, Xid(5), 0));
        // Read-only proc 2 snapshots twice; its xmin stays the first one's.
        let s1 = t.take_snapshot(&p[2]);
        assert_eq!(s1.xmin, a);
        t.end_transaction(&p[0], a);
        let s2 = t.take_snapshot(&p[2]);
        assert_eq!(s2.xmin, Xid(5));
        assert_eq!(p[2].xmin.load(Ordering::SeqCst), a.0);
        t.reset_xmin(&p[2]);
        t.take_snapshot(&p[2]);
        assert_eq!(p[2].xmin.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn ending_clears_the_entry_and_advances_latest_completed() {
        let r = TestRegion::new(2);
        let t = r.transam();
        let p = t.procs();
        let a = t.assign_xid(&p[0]);
        let b = t.assign_xid(&p[1]);
        t.take_snapshot(&p[0]);
        assert!(t.is_running(a) && t.is_running(b));
        t.end_transaction(&p[1], b);
        assert_eq!(t.latest_completed_xid(), b);
        t.end_transaction(&p[0], a);
        assert_eq!(t.latest_completed_xid(), b, "never goes back");
        assert!(!t.is_running(a) && !t.is_running(b));
        assert_eq!(
            (
                p[0].xid.load(Ordering::SeqCst),
                p[0].xmin.load(Ordering::SeqCst)
            ),
            (0, 0)
        );
        assert!(!t.is_running(Xid(99)), "never assigned");
        assert!(!t.is_running(Xid::BOOTSTRAP));
    }

    #[test]
    fn global_xmin_is_the_oldest_xid_or_xmin() {
        let r = TestRegion::new(3);
        let t = r.transam();
        let p = t.procs();
        assert_eq!(
            t.global_xmin(),
            Xid(3),
            "nothing running: latestCompleted + 1"
        );
        let reader_snapshot = t.take_snapshot(&p[2]);
        assert_eq!(reader_snapshot.xmin, Xid(3));
        let a = t.assign_xid(&p[0]);
        let b = t.assign_xid(&p[1]);
        t.end_transaction(&p[0], a);
        // The reader's xmin (3) still holds the horizon although a ended.
        assert_eq!(t.global_xmin(), Xid(3));
        t.reset_xmin(&p[2]);
        assert_eq!(t.global_xmin(), b);
        t.end_transaction(&p[1], b);
        assert_eq!(t.global_xmin(), Xid(5));
    }

    #[test]
    fn a_transaction_without_xid_only_clears_its_xmin() {
        let r = TestRegion::new(2);
        let t = r.transam();
        let p = t.procs();
        t.take_snapshot(&p[0]);
        t.end_transaction(&p[0], Xid::INVALID);
        assert_eq!(p[0].xmin.load(Ordering::SeqCst), 0);
        assert_eq!(t.latest_completed_xid(), Xid(2));
    }
}
