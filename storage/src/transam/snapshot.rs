//! Snapshots and isolation levels: what a statement may see.
//!
//! A [`Snapshot`] is the cut taken by [`Transam::take_snapshot`] (rule P4):
//! every xid below `xmin` had ended; every xid at or above `xmax` is treated
//! as running; between them, exactly those in `xip` are running. The
//! caller's own xid is never in `xip`: its own changes are judged by command
//! id instead (see [`super::visibility`]).
//!
//! Which snapshot a statement uses depends on the isolation level
//! ([`XactSnapshots`]):
//!
//! ```text
//!   read committed     BEGIN ─ stmt1[snap A] ─ stmt2[snap B] ─ stmt3[snap C] ─ COMMIT
//!   repeatable read    BEGIN ─ stmt1[snap A] ─ stmt2[snap A] ─ stmt3[snap A] ─ COMMIT
//! ```
//!
//! As in PostgreSQL, READ UNCOMMITTED behaves as READ COMMITTED, and
//! SERIALIZABLE uses one snapshot per transaction like REPEATABLE READ
//! (there is no serializable snapshot isolation yet, so SERIALIZABLE gives
//! repeatable read's guarantees only).
//!
//! # Invariants
//!
//! 1. `xmin <= xmax`; `xip` is sorted, and `xmin <= x < xmax` for each entry.
//! 2. A repeatable-read transaction uses one snapshot, taken at its first
//!    statement, until it ends; its `Proc.xmin` stays that snapshot's xmin.
//! 3. A read-committed transaction takes a snapshot per statement and
//!    resets `Proc.xmin` at each statement end (P5).
//!
//! # Locking
//!
//! None here; taking the snapshot is ProcArrayLock shared (procarray.rs).
//!
//! # Crash safety
//!
//! Snapshots live in one process's memory only.

use super::shared::Transam;
use crate::types::Xid;
use shmem_layout::procarray::Proc;

/// An MVCC snapshot (PostgreSQL's SnapshotData, MVCC part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Every xid below this had ended when the snapshot was taken.
    pub xmin: Xid,
    /// Every xid at or above this is treated as running.
    pub xmax: Xid,
    /// The xids in `[xmin, xmax)` that were running, sorted.
    pub xip: Vec<Xid>,
}

impl Snapshot {
    /// Whether `xid` counts as running for this snapshot (PostgreSQL's
    /// XidInMVCCSnapshot): its effects are invisible even if it has since
    /// committed. Special xids (bootstrap, frozen) are never running.
    pub fn xid_in_snapshot(&self, xid: Xid) -> bool {
        if xid < self.xmin || !xid.is_normal() {
            return false;
        }
        if xid >= self.xmax {
            return true;
        }
        self.xip.binary_search(&xid).is_ok()
    }
}

/// Transaction isolation levels, with PostgreSQL's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl IsolationLevel {
    /// PostgreSQL's IsolationUsesXactSnapshot: one snapshot for the whole
    /// transaction, and a concurrent update is a serialization failure.
    pub fn uses_transaction_snapshot(self) -> bool {
        matches!(
            self,
            IsolationLevel::RepeatableRead | IsolationLevel::Serializable
        )
    }

    /// The name `SHOW transaction_isolation` prints.
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read uncommitted",
            IsolationLevel::ReadCommitted => "read committed",
            IsolationLevel::RepeatableRead => "repeatable read",
            IsolationLevel::Serializable => "serializable",
        }
    }

    /// Parses a setting value (`read committed`, case-insensitive, as
    /// `SET transaction_isolation` accepts it).
    pub fn from_name(name: &str) -> Option<IsolationLevel> {
        let lower = name.trim().to_ascii_lowercase();
        [
            IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
            IsolationLevel::Serializable,
        ]
        .into_iter()
        .find(|level| level.name() == lower)
    }
}

/// The snapshots of one transaction: the executor asks for the statement's
/// snapshot at every statement start and reports every statement end.
#[derive(Debug)]
pub struct XactSnapshots {
    isolation: IsolationLevel,
    /// Repeatable read: the transaction's snapshot once taken.
    transaction_snapshot: Option<Snapshot>,
}

impl XactSnapshots {
    pub fn new(isolation: IsolationLevel) -> XactSnapshots {
        XactSnapshots {
            isolation,
            transaction_snapshot: None,
        }
    }

    pub fn isolation(&self) -> IsolationLevel {
        self.isolation
    }

    /// The snapshot the statement starting now must use: a new one under
    /// read committed, the transaction's first one under repeatable read.
    pub fn statement_snapshot(&mut self, transam: &Transam<'_>, my_proc: &Proc) -> Snapshot {
        if !self.isolation.uses_transaction_snapshot() {
            return transam.take_snapshot(my_proc);
        }
        self.transaction_snapshot
            .get_or_insert_with(|| transam.take_snapshot(my_proc))
            .clone()
    }

    /// The statement is over and its snapshot dropped. Under read committed
    /// the proc's xmin no longer needs to hold the horizon back.
    pub fn end_statement(&mut self, transam: &Transam<'_>, my_proc: &Proc) {
        if !self.isolation.uses_transaction_snapshot() {
            transam.reset_xmin(my_proc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transam::test_support::TestRegion;
    use std::sync::atomic::Ordering;

    fn snap(xmin: u64, xmax: u64, xip: &[u64]) -> Snapshot {
        Snapshot {
            xmin: Xid(xmin),
            xmax: Xid(xmax),
            xip: xip.iter().map(|&x| Xid(x)).collect(),
        }
    }

    #[test]
    fn xid_in_snapshot_follows_xmin_xmax_and_xip() {
        let s = snap(10, 20, &[10, 15]);
        assert!(!s.xid_in_snapshot(Xid(9)), "below xmin: ended");
        assert!(s.xid_in_snapshot(Xid(10)));
        assert!(!s.xid_in_snapshot(Xid(11)), "in range, not listed: ended");
        assert!(s.xid_in_snapshot(Xid(15)));
        assert!(s.xid_in_snapshot(Xid(20)), "at xmax: running");
        assert!(s.xid_in_snapshot(Xid(1000)));
        assert!(!s.xid_in_snapshot(Xid::BOOTSTRAP));
        assert!(!s.xid_in_snapshot(Xid::FROZEN));
    }

    #[test]
    fn isolation_names_round_trip() {
        for level in [
            IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
            IsolationLevel::Serializable,
        ] {
            assert_eq!(IsolationLevel::from_name(level.name()), Some(level));
        }
        assert_eq!(
            IsolationLevel::from_name("REPEATABLE READ"),
            Some(IsolationLevel::RepeatableRead)
        );
        assert_eq!(IsolationLevel::from_name("snapshot"), None);
        assert!(!IsolationLevel::ReadUncommitted.uses_transaction_snapshot());
        assert!(IsolationLevel::Serializable.uses_transaction_snapshot());
    }

    #[test]
    fn read_committed_sees_commits_between_statements_repeatable_read_does_not() {
        let r = TestRegion::new(3);
        let t = r.transam();
        let p = t.procs();
        let writer = t.assign_xid(&p[0]);

        let mut rc = XactSnapshots::new(IsolationLevel::ReadCommitted);
        let mut rr = XactSnapshots::new(IsolationLevel::RepeatableRead);
        let rc1 = rc.statement_snapshot(&t, &p[1]);
        let rr1 = rr.statement_snapshot(&t, &p[2]);
        assert!(rc1.xid_in_snapshot(writer) && rr1.xid_in_snapshot(writer));
        rc.end_statement(&t, &p[1]);
        rr.end_statement(&t, &p[2]);
        assert_eq!(p[1].xmin.load(Ordering::SeqCst), 0, "RC resets xmin");
        assert_eq!(p[2].xmin.load(Ordering::SeqCst), writer.0, "RR keeps it");

        t.end_transaction(&p[0], writer);
        let rc2 = rc.statement_snapshot(&t, &p[1]);
        let rr2 = rr.statement_snapshot(&t, &p[2]);
        assert!(
            !rc2.xid_in_snapshot(writer),
            "the next RC statement sees the commit"
        );
        assert!(rr2.xid_in_snapshot(writer), "RR keeps its first snapshot");
        assert_eq!(rr1, rr2);
    }
}
