//! The visibility matrix, case by case against PostgreSQL's rules
//! (`HeapTupleSatisfiesMVCC`, `HeapTupleSatisfiesUpdate`), and the
//! concurrent-update scenario of the issue end to end in one process.
//!
//! The cast, for every case:
//!
//! ```text
//!   snapshot: xmin 100, xmax 110, xip [100, 105]      current xact: xid 107, command 5
//!
//!   C       90   committed before the snapshot        A      95   aborted
//!   C_ASYNC 91   committed asynchronously, LSN 0/5000 CRASH  96   never recorded, not running
//!   R      100   running                              LATE  105   committed after the snapshot
//!   AFTER  120   committed, at/after the snapshot's xmax
//!   W      108   committed in the clog, still in the proc array (the P2 window)
//! ```

use super::conflict::{decide_write, is_next_version, WriteAction, WriteKind};
use super::snapshot::{IsolationLevel, Snapshot};
use super::test_support::TestRegion;
use super::visibility::{satisfies_mvcc, satisfies_update, HintBits, UpdateResult};
use super::xact_wait::XactWait;
use crate::clog::XidStatus;
use crate::heap::tuple::*;
use crate::page::OffsetNumber;
use crate::types::{BlockNumber, Lsn, Xid};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

const C: Xid = Xid(90);
const C_ASYNC: Xid = Xid(91);
const A: Xid = Xid(95);
const CRASH: Xid = Xid(96);
const R: Xid = Xid(100);
const LATE: Xid = Xid(105);
const ME: Xid = Xid(107);
const W: Xid = Xid(108);
const AFTER: Xid = Xid(120);
const MY_CID: u32 = 5;
const ASYNC_LSN: Lsn = Lsn(0x5000);
const NONE: Xid = Xid::INVALID;

fn snapshot() -> Snapshot {
    Snapshot {
        xmin: Xid(100),
        xmax: Xid(110),
        xip: vec![R, LATE],
    }
}

fn clog() -> HashMap<Xid, (XidStatus, Lsn)> {
    use XidStatus::*;
    HashMap::from([
        (C, (Committed, Lsn::INVALID)),
        (C_ASYNC, (Committed, ASYNC_LSN)),
        (A, (Aborted, Lsn::INVALID)),
        (LATE, (Committed, Lsn::INVALID)),
        (AFTER, (Committed, Lsn::INVALID)),
        (W, (Committed, Lsn::INVALID)),
    ])
}

fn proc_array() -> HashSet<Xid> {
    HashSet::from([R, ME, W])
}

fn self_tid() -> ItemPointer {
    ItemPointer::new(BlockNumber(0), OffsetNumber(1))
}

fn newer_tid() -> ItemPointer {
    ItemPointer::new(BlockNumber(2), OffsetNumber(9))
}

/// A tuple header: `xmax` NONE means HEAP_XMAX_INVALID.
fn tuple(xmin: Xid, xmax: Xid, cid: u32, extra_mask: u16) -> HeapTupleHeader {
    HeapTupleHeader {
        xmin,
        xmax,
        cid,
        ctid: self_tid(),
        infomask2: 1,
        infomask: extra_mask | if xmax == NONE { HEAP_XMAX_INVALID } else { 0 },
        hoff: 32,
    }
}

fn updated(mut t: HeapTupleHeader) -> HeapTupleHeader {
    t.ctid = newer_tid();
    t.infomask |= HEAP_UPDATED;
    t
}

fn mvcc(t: HeapTupleHeader) -> (bool, u16) {
    let v = satisfies_mvcc(&t, &snapshot(), ME, MY_CID, &clog()).expect("no clog errors");
    (v.visible, v.hints.all())
}

const XMIN_C: u16 = HEAP_XMIN_COMMITTED;
const XMIN_I: u16 = HEAP_XMIN_INVALID;
const XMAX_C: u16 = HEAP_XMAX_COMMITTED;
const XMAX_I: u16 = HEAP_XMAX_INVALID;

#[test]
fn mvcc_insert_side() {
    // (case, tuple, visible, suggested hint bits)
    let cases = [
        (
            "inserted by committed xact",
            tuple(C, NONE, 0, 0),
            true,
            XMIN_C,
        ),
        (
            "inserted by aborted xact",
            tuple(A, NONE, 0, 0),
            false,
            XMIN_I,
        ),
        (
            "inserted by crashed xact",
            tuple(CRASH, NONE, 0, 0),
            false,
            XMIN_I,
        ),
        ("inserted by running xact", tuple(R, NONE, 0, 0), false, 0),
        (
            "inserted by xact committed after snapshot (in xip)",
            tuple(LATE, NONE, 0, 0),
            false,
            0,
        ),
        (
            "inserted by xact at/after snapshot xmax",
            tuple(AFTER, NONE, 0, 0),
            false,
            0,
        ),
        (
            "committed hint but not visible to snapshot (V5)",
            tuple(LATE, NONE, 0, XMIN_C),
            false,
            0,
        ),
        (
            "aborted hint is trusted over the clog",
            tuple(C, NONE, 0, XMIN_I),
            false,
            0,
        ),
        (
            "frozen hint skips the snapshot",
            tuple(LATE, NONE, 0, XMIN_C | XMIN_I),
            true,
            0,
        ),
        (
            "inserted by bootstrap xid",
            tuple(Xid::BOOTSTRAP, NONE, 0, 0),
            true,
            XMIN_C,
        ),
        (
            "invalid xmin is aborted",
            tuple(Xid::INVALID, NONE, 0, 0),
            false,
            XMIN_I,
        ),
        (
            "own insert, earlier command",
            tuple(ME, NONE, 3, 0),
            true,
            0,
        ),
        (
            "own insert, current command",
            tuple(ME, NONE, MY_CID, 0),
            false,
            0,
        ),
        (
            "own insert, later command",
            tuple(ME, NONE, MY_CID + 1, 0),
            false,
            0,
        ),
        (
            "own insert, own delete in earlier command",
            tuple(ME, ME, 4, 0),
            false,
            0,
        ),
        (
            "own insert, locked by self",
            tuple(ME, ME, 3, HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK),
            true,
            0,
        ),
        (
            "own insert, xmax of an aborted subxact",
            tuple(ME, A, 3, 0),
            true,
            XMAX_I,
        ),
    ];
    for (case, t, visible, hints) in cases {
        assert_eq!(mvcc(t), (visible, hints), "{case}");
    }
}

#[test]
fn mvcc_delete_side() {
    let lock = HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
    let cases = [
        ("deleted by running xact", tuple(C, R, 0, 0), true, XMIN_C),
        (
            "deleted by committed xact",
            tuple(C, C, 0, 0),
            false,
            XMIN_C | XMAX_C,
        ),
        (
            "updated by committed xact",
            updated(tuple(C, C, 0, 0)),
            false,
            XMIN_C | XMAX_C,
        ),
        (
            "deleted by xact committed after snapshot",
            tuple(C, LATE, 0, 0),
            true,
            XMIN_C,
        ),
        (
            "deleted by xact at/after xmax",
            tuple(C, AFTER, 0, 0),
            true,
            XMIN_C,
        ),
        (
            "deleted by aborted xact",
            tuple(C, A, 0, 0),
            true,
            XMIN_C | XMAX_I,
        ),
        (
            "deleted by crashed xact",
            tuple(C, CRASH, 0, 0),
            true,
            XMIN_C | XMAX_I,
        ),
        (
            "locked only by committed xact",
            tuple(C, C, 0, lock),
            true,
            XMIN_C,
        ),
        (
            "locked only by running xact",
            tuple(C, R, 0, lock),
            true,
            XMIN_C,
        ),
        (
            "exclusive lock bit alone means lock-only",
            tuple(C, R, 0, HEAP_XMAX_EXCL_LOCK),
            true,
            XMIN_C,
        ),
        (
            "key-share lock without LOCK_ONLY is a delete",
            tuple(C, C, 0, HEAP_XMAX_KEYSHR_LOCK),
            false,
            XMIN_C | XMAX_C,
        ),
        (
            "deleted by own earlier command",
            tuple(C, ME, 4, XMIN_C),
            false,
            0,
        ),
        (
            "deleted by own current command",
            tuple(C, ME, MY_CID, XMIN_C),
            true,
            0,
        ),
        (
            "deleted by own later command",
            tuple(C, ME, MY_CID + 1, XMIN_C),
            true,
            0,
        ),
        ("locked by self", tuple(C, ME, 3, XMIN_C | lock), true, 0),
        (
            "xmax committed hint, delete visible",
            tuple(C, CRASH, 0, XMIN_C | XMAX_C),
            false,
            0,
        ),
        (
            "xmax committed hint, delete after snapshot (V5)",
            tuple(C, LATE, 0, XMIN_C | XMAX_C),
            true,
            0,
        ),
        (
            "insert after snapshot hides a committed delete too",
            tuple(LATE, C, 0, 0),
            false,
            0,
        ),
    ];
    for (case, t, visible, hints) in cases {
        assert_eq!(mvcc(t), (visible, hints), "{case}");
    }
}

#[test]
fn a_transaction_without_xid_sees_by_snapshot_only() {
    // A read-only transaction (xid INVALID) must not mistake INVALID xmax for itself.
    let t = tuple(C, NONE, 0, 0);
    let v = satisfies_mvcc(&t, &snapshot(), Xid::INVALID, 0, &clog()).unwrap();
    assert!(v.visible);
    let t = tuple(ME, NONE, 0, 0);
    let v = satisfies_mvcc(&t, &snapshot(), Xid::INVALID, 0, &clog()).unwrap();
    assert!(
        !v.visible,
        "107 is below xmax and not in xip, and never committed: aborted"
    );
}

#[test]
fn own_insert_then_own_delete_in_the_current_command_is_hidden_known_difference() {
    // PostgreSQL (combo cid: cmin 3, cmax 5) shows this row to command 5;
    // with one cid per header we take cmin = cmax = 5 and hide it.
    assert_eq!(mvcc(tuple(ME, ME, MY_CID, 0)), (false, 0));
}

#[test]
fn commit_hints_wait_for_the_wal() {
    let v = satisfies_mvcc(
        &tuple(C_ASYNC, NONE, 0, 0),
        &snapshot(),
        ME,
        MY_CID,
        &clog(),
    )
    .unwrap();
    assert!(v.visible);
    assert_eq!(
        v.hints,
        HintBits {
            invalid_bits: 0,
            xmin_committed: Some(ASYNC_LSN),
            xmax_committed: None
        }
    );
    assert_eq!(
        v.hints.settable(Lsn(0x4fff), Lsn(0x100)),
        0,
        "not flushed: no hint"
    );
    assert_eq!(v.hints.settable(ASYNC_LSN, Lsn(0x100)), XMIN_C, "flushed");
    assert_eq!(
        v.hints.settable(Lsn(0x100), Lsn(0x6000)),
        XMIN_C,
        "page LSN interlock"
    );
    assert_eq!(
        v.hints.settable(Lsn(u64::MAX), Lsn::INVALID),
        XMIN_C,
        "unlogged table"
    );
    // Abort hints never wait.
    let v = satisfies_mvcc(&tuple(C_ASYNC, A, 0, 0), &snapshot(), ME, MY_CID, &clog()).unwrap();
    assert_eq!(v.hints.settable(Lsn(0), Lsn(0)), XMAX_I);
    assert!(!v.hints.is_empty());
}

#[test]
fn multixact_xmax_is_reported_corrupt() {
    let t = tuple(C, R, 0, HEAP_XMAX_IS_MULTI);
    let e = satisfies_mvcc(&t, &snapshot(), ME, MY_CID, &clog()).unwrap_err();
    assert_eq!(e.code.as_str(), "XX001");
    let e = satisfies_update(&t, self_tid(), ME, MY_CID, &clog(), &proc_array()).unwrap_err();
    assert_eq!(e.code.as_str(), "XX001");
}

fn upd(t: HeapTupleHeader) -> (UpdateResult, u16) {
    let c = satisfies_update(&t, self_tid(), ME, MY_CID, &clog(), &proc_array()).unwrap();
    (c.result, c.hints.all())
}

#[test]
fn update_matrix() {
    use UpdateResult::*;
    let lock = HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
    let cases = [
        ("live, committed insert", tuple(C, NONE, 0, 0), Ok, XMIN_C),
        (
            "insert committed after any snapshot: no snapshot here",
            tuple(LATE, NONE, 0, 0),
            Ok,
            XMIN_C,
        ),
        ("running inserter", tuple(R, NONE, 0, 0), Invisible, 0),
        ("aborted inserter", tuple(A, NONE, 0, 0), Invisible, XMIN_I),
        (
            "crashed inserter",
            tuple(CRASH, NONE, 0, 0),
            Invisible,
            XMIN_I,
        ),
        (
            "inserter committed but still in proc array",
            tuple(W, NONE, 0, 0),
            Invisible,
            0,
        ),
        ("own insert, earlier command", tuple(ME, NONE, 3, 0), Ok, 0),
        (
            "own insert, current command",
            tuple(ME, NONE, MY_CID, 0),
            Invisible,
            0,
        ),
        // PostgreSQL (cmin 3, cmax 5): SelfUpdated; with one cid: Invisible.
        (
            "own insert updated by own current command",
            updated(tuple(ME, ME, MY_CID, 0)),
            Invisible,
            0,
        ),
        (
            "own insert deleted by own earlier command",
            tuple(ME, ME, 4, 0),
            Invisible,
            0,
        ),
        (
            "own insert locked by running other",
            tuple(ME, R, 3, lock),
            BeingUpdated {
                xmax: R,
                lock_only: true,
            },
            0,
        ),
        (
            "own insert locked by ended other",
            tuple(ME, A, 3, lock),
            Ok,
            0,
        ),
        (
            "being updated by running xact",
            updated(tuple(C, R, 0, XMIN_C)),
            BeingUpdated {
                xmax: R,
                lock_only: false,
            },
            0,
        ),
        (
            "updater committed but still in proc array (P2)",
            updated(tuple(C, W, 0, XMIN_C)),
            BeingUpdated {
                xmax: W,
                lock_only: false,
            },
            0,
        ),
        (
            "updated by committed xact",
            updated(tuple(C, C, 0, XMIN_C)),
            Updated {
                xmax: C,
                ctid: newer_tid(),
            },
            XMAX_C,
        ),
        (
            "deleted by committed xact",
            tuple(C, C, 0, XMIN_C),
            Deleted { xmax: C },
            XMAX_C,
        ),
        (
            "updated, xmax committed hint",
            updated(tuple(C, CRASH, 0, XMIN_C | XMAX_C)),
            Updated {
                xmax: CRASH,
                ctid: newer_tid(),
            },
            0,
        ),
        (
            "update by aborted xact",
            updated(tuple(C, A, 0, XMIN_C)),
            Ok,
            XMAX_I,
        ),
        (
            "update by crashed xact",
            updated(tuple(C, CRASH, 0, XMIN_C)),
            Ok,
            XMAX_I,
        ),
        (
            "locked by running xact",
            tuple(C, R, 0, XMIN_C | lock),
            BeingUpdated {
                xmax: R,
                lock_only: true,
            },
            0,
        ),
        (
            "locked by committed xact",
            tuple(C, C, 0, XMIN_C | lock),
            Ok,
            XMAX_I,
        ),
        (
            "locked by committed xact, hinted",
            tuple(C, C, 0, XMIN_C | XMAX_C | lock),
            Ok,
            0,
        ),
        (
            "locked by self",
            tuple(C, ME, 0, XMIN_C | lock),
            BeingUpdated {
                xmax: ME,
                lock_only: true,
            },
            0,
        ),
        (
            "updated by own current command",
            updated(tuple(C, ME, MY_CID, XMIN_C)),
            SelfUpdated { cmax: MY_CID },
            0,
        ),
        (
            "updated by own later command",
            updated(tuple(C, ME, MY_CID + 1, XMIN_C)),
            SelfUpdated { cmax: MY_CID + 1 },
            0,
        ),
        (
            "updated by own earlier command",
            updated(tuple(C, ME, 4, XMIN_C)),
            Invisible,
            0,
        ),
    ];
    for (case, t, result, hints) in cases {
        assert_eq!(upd(t), (result, hints), "{case}");
    }
}

/// The issue's scenario, in one process with two threads: T1 updates a row
/// and holds its transaction open; T2's UPDATE of the same row waits for
/// T1, then (read committed) follows to T1's new version, or (repeatable
/// read) fails with 40001; if T1 aborts, T2 updates the old version.
fn concurrent_update(
    isolation: IsolationLevel,
    t1_commits: bool,
) -> Result<(WriteAction, ItemPointer), String> {
    let region = TestRegion::new(2);
    let t = region.transam();
    let (p1, p2) = (&t.procs()[0], &t.procs()[1]);
    let clog = Mutex::new(HashMap::<Xid, (XidStatus, Lsn)>::new());
    let mut c = clog.lock().unwrap();
    let creator = t.assign_xid(p1);
    c.insert(creator, (XidStatus::Committed, Lsn::INVALID));
    t.end_transaction(p1, creator);
    drop(c);

    // T2 starts and takes its snapshot: the row (creator's) is visible.
    let t2_snapshot = t.take_snapshot(p2);
    let t2 = t.assign_xid(p2);
    // T1 updates: old version gets xmax T1, new version at newer_tid.
    let t1 = t.assign_xid(p1);
    let old = HeapTupleHeader {
        ctid: newer_tid(),
        ..tuple(creator, t1, 0, HEAP_XMIN_COMMITTED)
    };
    let new = HeapTupleHeader {
        infomask: HEAP_XMAX_INVALID | HEAP_UPDATED,
        ..tuple(t1, NONE, 0, 0)
    };
    assert!(
        satisfies_mvcc(&old, &t2_snapshot, t2, 0, &*clog.lock().unwrap())
            .unwrap()
            .visible
    );

    std::thread::scope(|s| {
        let t2_thread = s.spawn(|| -> Result<(WriteAction, ItemPointer), String> {
            let mut version = old;
            let mut at = self_tid();
            loop {
                let check = {
                    let c = clog.lock().unwrap();
                    satisfies_update(&version, at, t2, 0, &*c, &t).map_err(|e| e.message)?
                };
                let action = decide_write(check.result, WriteKind::Update, isolation, t2, 0)
                    .map_err(|e| format!("{} {}", e.code, e.message))?;
                match action {
                    WriteAction::WaitFor(x) => {
                        let got = t
                            .wait_for_xid(x, None, &mut || Ok(()))
                            .map_err(|e| e.message)?;
                        assert_eq!(got, XactWait::Ended);
                    }
                    WriteAction::FollowUpdate { ctid, prior_xmax } => {
                        assert_eq!(ctid, newer_tid());
                        assert!(is_next_version(prior_xmax, &new));
                        (version, at) = (new, ctid);
                    }
                    done => return Ok((done, at)),
                }
            }
        });
        while t.xact_waiters(0) == 0 {
            std::thread::yield_now();
        }
        let status = if t1_commits {
            XidStatus::Committed
        } else {
            XidStatus::Aborted
        };
        clog.lock().unwrap().insert(t1, (status, Lsn::INVALID));
        t.end_transaction(p1, t1);
        assert_eq!(p1.xid.load(Ordering::SeqCst), 0);
        t2_thread.join().unwrap()
    })
}

#[test]
fn read_committed_waits_then_updates_the_newest_version() {
    let got = concurrent_update(IsolationLevel::ReadCommitted, true);
    assert_eq!(got, Ok((WriteAction::Proceed, newer_tid())));
}

#[test]
fn repeatable_read_waits_then_fails_with_40001() {
    let got = concurrent_update(IsolationLevel::RepeatableRead, true);
    assert_eq!(
        got,
        Err("40001 could not serialize access due to concurrent update".to_string())
    );
}

#[test]
fn after_the_updater_aborts_both_levels_update_the_old_version() {
    for isolation in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
    ] {
        let got = concurrent_update(isolation, false);
        assert_eq!(got, Ok((WriteAction::Proceed, self_tid())), "{isolation:?}");
    }
}
