//! Ending transactions on a started cluster: what the commit log, the WAL
//! and the proc array say afterwards, for each way a transaction ends.

use std::sync::atomic::Ordering;

use super::*;
use crate::test_cluster::{TestCluster, SYSTEM_ID};
use crate::transam::{decode_xact_record, XactRecord};
use crate::types::{Oid, DEFAULTTABLESPACE_OID};
use crate::wal::{ReadRecord, TimeLineId, WalReader};

fn begin(e: &EngineContext<'_, '_>, proc: &Proc) -> Xid {
    let clog = e.clog;
    e.transam
        .assign_xid_with(proc, |x| clog.extend_to(x))
        .expect("xid")
}

/// The record that starts at `start` in the flushed WAL.
fn record_at(c: &TestCluster, start: Lsn) -> ReadRecord {
    let pg_wal = c.dir.path().join("pg_wal");
    let mut reader = WalReader::open(pg_wal, TimeLineId(1), SYSTEM_ID, start);
    reader
        .read_record()
        .expect("readable")
        .expect("a record at start")
}

#[test]
fn a_synchronous_commit_is_flushed_and_committed_before_it_returns() {
    let c = TestCluster::start(false);
    let proc = c.backend_proc(0);
    c.engine(|e| {
        let xid = begin(e, proc);
        let start = e.wal.current_insert_lsn();
        let end = commit_transaction(e, proc, xid, 1234, &[], true).unwrap();
        assert!(end > start);
        assert!(e.wal.flushed_lsn() >= end, "flushed before returning");
        assert_eq!(
            e.clog.get_status(xid).unwrap(),
            (XidStatus::Committed, Lsn::INVALID)
        );
        assert_eq!(proc.xid.load(Ordering::SeqCst), 0, "left the proc array");
        assert!(!e.transam.is_running(xid));
        assert_eq!(proc.delay_chkpt_start_generation(), None);
        let rec = record_at(&c, start);
        match decode_xact_record(&rec.record).unwrap() {
            XactRecord::Commit(commit) => {
                assert_eq!((commit.xid, commit.commit_time_us), (xid, 1234));
            }
            other => panic!("not a commit: {other:?}"),
        }
    });
}

#[test]
fn an_asynchronous_commit_waits_for_the_walwriter() {
    let c = TestCluster::start(false);
    let proc = c.backend_proc(0);
    c.engine(|e| {
        let flushed_before = e.wal.flushed_lsn();
        let xid = begin(e, proc);
        let end = commit_transaction(e, proc, xid, 1, &[], false).unwrap();
        assert_eq!(e.wal.flushed_lsn(), flushed_before, "no flush at commit");
        // Committed for everyone, but the page (and hint bits) remember
        // the LSN the WAL must reach first.
        assert_eq!(e.clog.get_status(xid).unwrap(), (XidStatus::Committed, end));
        assert!(!e.transam.is_running(xid));
        // The walwriter's round.
        assert!(e.wal.write_some().unwrap() >= end);
        assert!(e.wal.flushed_lsn() >= end);
    });
}

#[test]
fn an_abort_is_logged_without_a_flush() {
    let c = TestCluster::start(false);
    let proc = c.backend_proc(0);
    c.engine(|e| {
        let flushed_before = e.wal.flushed_lsn();
        let xid = begin(e, proc);
        let start = e.wal.current_insert_lsn();
        let end = abort_transaction(e, proc, xid, 99, &[]).unwrap();
        assert!(end > start);
        assert_eq!(e.wal.flushed_lsn(), flushed_before);
        assert_eq!(
            e.clog.get_status(xid).unwrap(),
            (XidStatus::Aborted, Lsn::INVALID)
        );
        assert!(!e.transam.is_running(xid));
        e.wal.write_some().unwrap();
        assert!(matches!(
            decode_xact_record(&record_at(&c, start).record).unwrap(),
            XactRecord::Abort(a) if a.xid == xid && a.abort_time_us == 99
        ));
    });
}

#[test]
fn a_transaction_without_an_xid_writes_nothing() {
    let c = TestCluster::start(false);
    let proc = c.backend_proc(0);
    c.engine(|e| {
        proc.xmin.store(7, Ordering::SeqCst);
        let insert = e.wal.current_insert_lsn();
        assert_eq!(
            commit_transaction(e, proc, Xid::INVALID, 1, &[], true).unwrap(),
            Lsn::INVALID
        );
        assert_eq!(
            abort_transaction(e, proc, Xid::INVALID, 1, &[]).unwrap(),
            Lsn::INVALID
        );
        assert_eq!(e.wal.current_insert_lsn(), insert, "no record");
        assert_eq!(proc.xmin.load(Ordering::SeqCst), 0, "snapshot xmin gone");
    });
}

#[test]
fn dropped_relations_force_a_flush_and_leave_a_tombstone_for_the_checkpointer() {
    let c = TestCluster::start(true);
    c.queue().set_checkpointer_pid(std::process::id() as i32);
    let proc = c.backend_proc(0);
    let rel = RelFileLocator {
        spc_oid: DEFAULTTABLESPACE_OID,
        db_oid: Oid(5),
        rel_number: Oid(16400),
    };
    c.engine(|e| {
        e.smgr.create(rel, ForkNumber::Main, false).unwrap();
        e.smgr.create(rel, ForkNumber::Fsm, false).unwrap();
        let xid = begin(e, proc);
        let end = commit_transaction(e, proc, xid, 5, &[rel], false).unwrap();
        assert!(
            e.wal.flushed_lsn() >= end,
            "a drop makes even an asynchronous commit synchronous"
        );
        assert_eq!(
            e.clog.get_status(xid).unwrap(),
            (XidStatus::Committed, Lsn::INVALID)
        );
    });
    let base = c.dir.path().join("base/5");
    assert!(!base.join("16400_fsm").exists(), "other forks go at once");
    assert_eq!(
        std::fs::metadata(base.join("16400")).unwrap().len(),
        0,
        "the main fork is an empty tombstone"
    );
    let a = c.queue().absorb();
    assert_eq!(
        a.unlinks,
        vec![crate::smgr::SegmentTag {
            rel,
            fork: ForkNumber::Main,
            segno: 0
        }]
    );
}
