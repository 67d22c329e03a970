//! `satisfies_vacuum` case by case (PostgreSQL's HeapTupleSatisfiesVacuum).
//!
//! The cast:
//!
//! ```text
//!   horizon 100 (the oldest xid some snapshot may still see as running)
//!
//!   OLD     50   committed, below the horizon       A      95   aborted
//!   OLD2    60   committed, below the horizon       CRASH  96   never recorded, not running
//!   NEW    105   committed, at/after the horizon    R     110   running
//!   W      108   committed in the clog, still in the proc array (the P2 window)
//! ```

use super::visibility::{satisfies_vacuum, VacuumState};
use crate::clog::XidStatus;
use crate::heap::tuple::*;
use crate::page::OffsetNumber;
use crate::types::{BlockNumber, Lsn, Xid};
use std::collections::{HashMap, HashSet};

const OLD: Xid = Xid(50);
const OLD2: Xid = Xid(60);
const A: Xid = Xid(95);
const CRASH: Xid = Xid(96);
const NEW: Xid = Xid(105);
const W: Xid = Xid(108);
const R: Xid = Xid(110);
const HORIZON: Xid = Xid(100);
const NONE: Xid = Xid::INVALID;

fn clog() -> HashMap<Xid, (XidStatus, Lsn)> {
    use XidStatus::*;
    HashMap::from([
        (OLD, (Committed, Lsn::INVALID)),
        (OLD2, (Committed, Lsn::INVALID)),
        (A, (Aborted, Lsn::INVALID)),
        (NEW, (Committed, Lsn::INVALID)),
        (W, (Committed, Lsn::INVALID)),
    ])
}

fn proc_array() -> HashSet<Xid> {
    HashSet::from([R, W])
}

/// A tuple header: `xmax` NONE means HEAP_XMAX_INVALID.
fn tuple(xmin: Xid, xmax: Xid, extra_mask: u16) -> HeapTupleHeader {
    HeapTupleHeader {
        xmin,
        xmax,
        cid: 0,
        ctid: ItemPointer::new(BlockNumber(0), OffsetNumber(1)),
        infomask2: 1,
        infomask: extra_mask | if xmax == NONE { HEAP_XMAX_INVALID } else { 0 },
        hoff: 32,
    }
}

fn vacuum(t: HeapTupleHeader) -> VacuumState {
    satisfies_vacuum(&t, HORIZON, &proc_array(), &clog()).expect("no clog errors")
}

const LOCK_ONLY: u16 = HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;

#[test]
fn the_vacuum_matrix() {
    use VacuumState::*;
    let cases = [
        // Inserts.
        ("inserted by committed xact", tuple(OLD, NONE, 0), Live),
        ("inserted by aborted xact", tuple(A, NONE, 0), Dead),
        ("inserted by crashed xact", tuple(CRASH, NONE, 0), Dead),
        (
            "aborted insert known by hint",
            tuple(OLD, NONE, HEAP_XMIN_INVALID),
            Dead,
        ),
        ("inserted by running xact", tuple(R, NONE, 0), InsertInProgress),
        (
            "committed in the clog but still in the proc array (P2)",
            tuple(W, NONE, 0),
            InsertInProgress,
        ),
        (
            "inserted and deleted by the same running xact",
            tuple(R, R, 0),
            DeleteInProgress,
        ),
        (
            "inserted by running xact, locked by itself",
            tuple(R, R, LOCK_ONLY),
            InsertInProgress,
        ),
        (
            "inserted by running xact, deleted by another (impossible, but not a delete in progress)",
            tuple(R, OLD, 0),
            InsertInProgress,
        ),
        ("inserted after the horizon", tuple(NEW, NONE, 0), Live),
        ("frozen", tuple(Xid::FROZEN, NONE, 0), Live),
        ("bootstrap", tuple(Xid::BOOTSTRAP, NONE, 0), Live),
        ("invalid xmin", tuple(Xid::INVALID, NONE, 0), Dead),
        // Deletes.
        ("deleted below the horizon", tuple(OLD, OLD2, 0), Dead),
        (
            "deleted below the horizon, by hint",
            tuple(OLD, OLD2, HEAP_XMIN_COMMITTED | HEAP_XMAX_COMMITTED),
            Dead,
        ),
        (
            "deleted below the horizon by an xid older than the inserter",
            tuple(NEW, OLD2, 0),
            Dead,
        ),
        ("deleted at/after the horizon", tuple(OLD, NEW, 0), RecentlyDead),
        (
            "deleted exactly at the horizon",
            tuple(OLD, HORIZON, HEAP_XMAX_COMMITTED),
            RecentlyDead,
        ),
        (
            "inserted and deleted after the horizon",
            tuple(NEW, NEW, 0),
            RecentlyDead,
        ),
        ("deleter running", tuple(OLD, R, 0), DeleteInProgress),
        (
            "deleter committed in the clog but still running (P2)",
            tuple(OLD, W, 0),
            DeleteInProgress,
        ),
        ("deleter aborted", tuple(OLD, A, 0), Live),
        ("deleter crashed", tuple(OLD, CRASH, 0), Live),
        // Lockers never delete (V3).
        ("locked by a running xact", tuple(OLD, R, LOCK_ONLY), Live),
        ("locked by a committed xact", tuple(OLD, OLD2, LOCK_ONLY), Live),
        (
            "locked, with a committed hint",
            tuple(OLD, OLD2, HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_COMMITTED),
            Live,
        ),
        (
            "exclusive lock bit alone means lock only",
            tuple(OLD, OLD2, HEAP_XMAX_EXCL_LOCK),
            Live,
        ),
        // An aborted inserter wins over everything on the delete side.
        ("inserter aborted, deleter committed", tuple(A, OLD2, 0), Dead),
        ("inserter aborted, deleter running", tuple(A, R, 0), Dead),
    ];
    for (case, t, want) in cases {
        assert_eq!(vacuum(t), want, "{case}");
    }
}

#[test]
fn the_horizon_decides_between_dead_and_recently_dead() {
    let t = tuple(OLD, NEW, 0);
    let at = |h: u64| satisfies_vacuum(&t, Xid(h), &proc_array(), &clog()).unwrap();
    assert_eq!(at(NEW.0), VacuumState::RecentlyDead);
    assert_eq!(at(NEW.0 + 1), VacuumState::Dead);
}

#[test]
fn a_multixact_xmax_is_reported_corrupt() {
    let t = tuple(OLD, R, HEAP_XMAX_IS_MULTI);
    let e = satisfies_vacuum(&t, HORIZON, &proc_array(), &clog()).unwrap_err();
    assert_eq!(e.code, pgerror::SqlState::DATA_CORRUPTED);
}
