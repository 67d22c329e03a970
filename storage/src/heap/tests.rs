//! Heap access in one process: each test states one behaviour of
//! `heapam.rs` (or a rule of `heapam_xlog.rs`) and checks it through the
//! public operations, on a real buffer pool, WAL, commit log and proc array.

use pgerror::{PgError, SqlState};

use super::datum::Datum;
use super::heapam::*;
use super::heapam_xlog::{
    build_heap_record, log_heap_change, LogBlock, XLOG_HEAP_DELETE, XLOG_HEAP_INIT_PAGE,
    XLOG_HEAP_INSERT, XLOG_HEAP_OPMASK, XLOG_HEAP_UPDATE,
};
use super::test_support::*;
use super::tuple::{HeapTupleHeader, ItemPointer, HEAP_UPDATED, HEAP_XMAX_INVALID};
use crate::page::{OffsetNumber, Page};
use crate::transam::IsolationLevel;
use crate::types::{BlockNumber, Lsn, Xid, BLCKSZ};
use crate::wal::ResourceManager;

fn header(tuple: &[u8]) -> HeapTupleHeader {
    HeapTupleHeader::read(tuple).unwrap()
}

/// Inserts and commits rows `ids`, returning their tids.
fn committed_rows(b: &mut Backend<'_>, rel: &HeapRelation, ids: &[i32]) -> Vec<ItemPointer> {
    let xid = b.begin();
    let tids = b.with_ctx(|ctx| {
        ids.iter()
            .map(|&i| heap_insert(ctx, rel, &xact(xid, 0), &row(rel, i, "v")).unwrap())
            .collect()
    });
    b.commit(xid);
    tids
}

#[test]
fn inserted_rows_of_every_column_type_scan_and_fetch_back() {
    let cluster = Cluster::new(64, 2);
    let mut b = cluster.backend(0);
    let rel = HeapRelation::new(REL, mixed_desc());
    let xid = b.begin();
    let mut tids = Vec::new();
    b.with_ctx(|ctx| {
        for i in 0..400 {
            let t = rel.form(&mixed_row(i)).unwrap();
            tids.push(heap_insert(ctx, &rel, &xact(xid, 0), &t).unwrap());
        }
    });
    assert!(tids.windows(2).all(|w| w[0] < w[1]), "appended in order");
    assert!(tids.last().unwrap().block.0 >= 3, "spans several pages");
    assert_eq!(rel.target_block(), Some(tids.last().unwrap().block));

    // Our own later command sees them; the inserting command does not.
    let snap = b.snapshot();
    assert!(b.scan(&rel, &snap, xact(xid, 0)).is_empty());
    assert_eq!(b.scan(&rel, &snap, xact(xid, 1)).len(), 400);
    b.commit(xid);

    let mut other = cluster.backend(1);
    let snap = other.snapshot();
    let reader = xact(Xid::INVALID, 0);
    let rows = other.scan(&rel, &snap, reader);
    assert_eq!(rows.len(), 400);
    for (i, (tid, bytes)) in rows.iter().enumerate() {
        assert_eq!(*tid, tids[i]);
        assert_eq!(rel.deform(bytes).unwrap(), mixed_row(i as i32));
        let h = header(bytes);
        assert_eq!(
            (h.xmin, h.xmax, h.cid, h.ctid),
            (xid, Xid::INVALID, 0, *tid)
        );
        assert_eq!(h.infomask & HEAP_XMAX_INVALID, HEAP_XMAX_INVALID);
    }
    let fetched = other
        .with_ctx(|ctx| heap_fetch(ctx, &rel, tids[123], &snap, &reader))
        .unwrap()
        .expect("visible");
    assert_eq!(rel.deform(&fetched).unwrap(), mixed_row(123));
    assert_eq!(other.buffers.pinned_buffer_count(), 0, "no pin leaked");
}

#[test]
fn rows_of_a_running_transaction_are_invisible_until_it_commits() {
    let cluster = Cluster::new(16, 3);
    let (mut writer, mut reader) = (cluster.backend(0), cluster.backend(1));
    let rel = int_text_rel();
    let xid = writer.begin();
    let tid = writer
        .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(xid, 0), &row(&rel, 1, "a")))
        .unwrap();

    let before = reader.snapshot();
    let ro = xact(Xid::INVALID, 0);
    assert!(reader.scan(&rel, &before, ro).is_empty());
    let fetched = reader.with_ctx(|ctx| heap_fetch(ctx, &rel, tid, &before, &ro));
    assert_eq!(fetched.unwrap(), None);

    writer.commit(xid);
    let after = reader.snapshot();
    assert_eq!(reader.scan(&rel, &after, ro).len(), 1);
    assert!(
        reader.scan(&rel, &before, ro).is_empty(),
        "a snapshot taken before the commit still does not see it"
    );

    // An aborted transaction's rows are never seen.
    let x2 = writer.begin();
    writer
        .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(x2, 0), &row(&rel, 2, "b")))
        .unwrap();
    writer.abort(x2);
    let rows = reader.scan(&rel, &reader.snapshot(), ro);
    assert_eq!(
        rows.iter().map(|r| id_of(&rel, &r.1)).collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn an_update_chains_versions_and_a_delete_hides_the_row() {
    let cluster = Cluster::new(16, 2);
    let (mut b, mut r) = (cluster.backend(0), cluster.backend(1));
    let rel = int_text_rel();
    let t0 = committed_rows(&mut b, &rel, &[7])[0];
    let ro = xact(Xid::INVALID, 0);

    let x1 = b.begin();
    let res = b.with_ctx(|ctx| heap_update(ctx, &rel, &xact(x1, 0), t0, &row(&rel, 7, "second")));
    let HeapWriteResult::Updated { new_tid: t1 } = res.unwrap() else {
        panic!("update did not happen");
    };
    assert_eq!(t1, ItemPointer::new(t0.block, OffsetNumber(2)), "same page");
    // Others still see the old version, we see the new one.
    let seen = r.scan(&rel, &r.snapshot(), ro);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [t0]);
    let mine = b.scan(&rel, &b.snapshot(), xact(x1, 1));
    assert_eq!(mine.iter().map(|s| s.0).collect::<Vec<_>>(), [t1]);
    b.commit(x1);

    let snap = r.snapshot();
    let rows = r.scan(&rel, &snap, ro);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, t1);
    assert_eq!(
        rel.deform(&rows[0].1).unwrap()[1],
        Some(Datum::Text("second".into()))
    );
    let new_h = header(&rows[0].1);
    assert_eq!(new_h.xmin, x1);
    assert_eq!(new_h.infomask & HEAP_UPDATED, HEAP_UPDATED);
    // The old version points at the new one and carries our xmax.
    let old = r
        .with_ctx(|ctx| heap_fetch(ctx, &rel, t0, &snap, &ro))
        .unwrap();
    assert_eq!(old, None);
    let pages = r.pages();
    let old_h = header(Page::new(&*pages[0]).get_item(t0.offset).unwrap().unwrap());
    assert_eq!((old_h.xmax, old_h.ctid), (x1, t1));
    assert_eq!(old_h.infomask & HEAP_XMAX_INVALID, 0);

    // A version too large for the old page goes to another page, which
    // gets the chain link; both pages change.
    let x2 = b.begin();
    let big = "y".repeat(8100);
    let res = b.with_ctx(|ctx| heap_update(ctx, &rel, &xact(x2, 0), t1, &row(&rel, 7, &big)));
    let HeapWriteResult::Updated { new_tid: t2 } = res.unwrap() else {
        panic!("update did not happen");
    };
    assert_ne!(t2.block, t1.block, "moved to another page");
    b.commit(x2);
    let rows = r.scan(&rel, &r.snapshot(), ro);
    assert_eq!(rows.iter().map(|s| s.0).collect::<Vec<_>>(), [t2]);

    // Delete: gone for later snapshots, still there for earlier ones.
    let before_delete = r.snapshot();
    let x3 = b.begin();
    let res = b.with_ctx(|ctx| heap_delete(ctx, &rel, &xact(x3, 0), t2));
    assert_eq!(res.unwrap(), HeapWriteResult::Deleted);
    b.commit(x3);
    assert!(r.scan(&rel, &r.snapshot(), ro).is_empty());
    assert_eq!(r.scan(&rel, &before_delete, ro).len(), 1);
    assert_eq!(b.buffers.pinned_buffer_count(), 0);
}

#[test]
fn a_second_change_by_the_same_command_is_skipped() {
    let cluster = Cluster::new(16, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let t0 = committed_rows(&mut b, &rel, &[1])[0];
    let x = b.begin();
    let me = xact(x, 3);
    b.with_ctx(|ctx| {
        let first = heap_update(ctx, &rel, &me, t0, &row(&rel, 1, "a")).unwrap();
        assert!(matches!(first, HeapWriteResult::Updated { .. }));
        assert_eq!(
            heap_update(ctx, &rel, &me, t0, &row(&rel, 1, "b")).unwrap(),
            HeapWriteResult::Skip
        );
        assert_eq!(
            heap_delete(ctx, &rel, &me, t0).unwrap(),
            HeapWriteResult::Skip
        );
    });
}

#[test]
fn a_row_larger_than_a_page_is_54000() {
    let cluster = Cluster::new(16, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let x = b.begin();
    let huge = row(&rel, 1, &"z".repeat(9000));
    let err = b
        .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(x, 0), &huge))
        .unwrap_err();
    assert_eq!(err.code, SqlState::PROGRAM_LIMIT_EXCEEDED);
    assert_eq!(
        err.message,
        format!("row is too big: size {}, maximum size 8160", huge.len())
    );
    // The largest tuple that fits an empty page does fit.
    let fits = row(&rel, 1, &"z".repeat(8160 - 32 - 4 - 4));
    assert_eq!(fits.len(), 8160);
    let tid = b
        .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(x, 0), &fits))
        .unwrap();
    assert_eq!(tid, ItemPointer::new(BlockNumber(0), OffsetNumber(1)));
    let err = b
        .with_ctx(|ctx| heap_update(ctx, &rel, &xact(x, 1), tid, &huge))
        .unwrap_err();
    assert_eq!(err.code.as_str(), "54000");
}

/// `(op, init_page, [has image per block])` of every heap record.
fn heap_records(cluster: &Cluster) -> Vec<(u8, bool, Vec<bool>)> {
    cluster
        .read_wal()
        .into_iter()
        .filter(|r| r.record.rmgr() == ResourceManager::Heap)
        .map(|r| {
            let rec = &r.record;
            (
                rec.info() & XLOG_HEAP_OPMASK,
                rec.info() & XLOG_HEAP_INIT_PAGE != 0,
                rec.blocks().map(|b| b.has_image()).collect(),
            )
        })
        .collect()
}

#[test]
fn the_first_change_to_a_page_after_a_checkpoint_logs_the_whole_page() {
    let cluster = Cluster::new(16, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let x = b.begin();
    let (me, later) = (xact(x, 0), xact(x, 1));
    b.with_ctx(|ctx| {
        let t1 = heap_insert(ctx, &rel, &me, &row(&rel, 1, "a")).unwrap(); // new page
        heap_insert(ctx, &rel, &me, &row(&rel, 2, "b")).unwrap();
        ctx.wal.advance_redo_ptr();
        heap_insert(ctx, &rel, &me, &row(&rel, 3, "c")).unwrap(); // first after
        heap_insert(ctx, &rel, &me, &row(&rel, 4, "d")).unwrap();
        heap_delete(ctx, &rel, &later, t1).unwrap();
        ctx.wal.advance_redo_ptr();
        let t2 = ItemPointer::new(BlockNumber(0), OffsetNumber(2));
        heap_delete(ctx, &rel, &later, t2).unwrap(); // first after
                                                     // A version that needs a new page: the new page is WILL_INIT, the
                                                     // old one (changed since the checkpoint) has no image.
        let t3 = ItemPointer::new(BlockNumber(0), OffsetNumber(3));
        let big = row(&rel, 3, &"w".repeat(8000));
        heap_update(ctx, &rel, &later, t3, &big).unwrap();
        ctx.wal.advance_redo_ptr();
        let t4 = ItemPointer::new(BlockNumber(0), OffsetNumber(4));
        heap_update(ctx, &rel, &later, t4, &row(&rel, 4, "e")).unwrap(); // same page, image
    });
    let (ins, del, upd) = (XLOG_HEAP_INSERT, XLOG_HEAP_DELETE, XLOG_HEAP_UPDATE);
    assert_eq!(
        heap_records(&cluster),
        vec![
            (ins, true, vec![false]),
            (ins, false, vec![false]),
            (ins, false, vec![true]),
            (ins, false, vec![false]),
            (del, false, vec![false]),
            (del, false, vec![true]),
            (upd, true, vec![false, false]),
            (upd, false, vec![true]),
        ]
    );
}

#[test]
fn a_record_built_before_a_checkpoint_is_refused_and_rebuilt_with_the_image() {
    let cluster = Cluster::new(16, 1);
    let wal = cluster.wal();
    let mut page = Box::new([0u8; BLCKSZ]);
    Page::new(&mut *page).init(0);
    // The page was last logged at the current position.
    let first = wal
        .insert(build_heap_record(REL, XLOG_HEAP_DELETE, Xid(3), &[], &[1], Lsn::INVALID).0)
        .unwrap();
    Page::new(&mut *page).set_lsn(first.end);
    let block = LogBlock {
        id: 0,
        blkno: BlockNumber(0),
        page: &page,
        will_init: false,
        data: b"data",
    };
    let (stale, fpw_lsn) = build_heap_record(
        REL,
        XLOG_HEAP_DELETE,
        Xid(3),
        std::slice::from_ref(&block),
        &[0],
        wal.redo_ptr(),
    );
    assert_eq!(fpw_lsn, first.end, "built without an image");
    wal.advance_redo_ptr();
    assert!(
        wal.insert_checked(stale, fpw_lsn).unwrap().is_none(),
        "refused"
    );
    let at = log_heap_change(&wal, REL, XLOG_HEAP_DELETE, Xid(3), &[block], &[0]).unwrap();
    let records = cluster.read_wal();
    let last = records.last().unwrap();
    assert_eq!(last.start, at.start);
    let logged = last.record.block(0).unwrap();
    assert!(logged.has_image());
    assert_eq!(logged.data(), None, "no block data next to an image");
    let mut restored = [0u8; BLCKSZ];
    assert!(logged.restore_image(&mut restored));
    assert_eq!(&restored, &*page);
}

/// Two transactions on one row, driven step by step in one process.
struct Conflict {
    cluster: Cluster,
    rel: HeapRelation,
    row: ItemPointer,
}

impl Conflict {
    fn new() -> Conflict {
        let cluster = Cluster::new(16, 2);
        let rel = int_text_rel();
        let row = {
            let mut b = cluster.backend(0);
            committed_rows(&mut b, &rel, &[1])[0]
        };
        Conflict { cluster, rel, row }
    }
}

#[test]
fn a_writer_waits_for_a_running_updater_then_follows_or_fails_by_isolation() {
    for iso in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
    ] {
        let c = Conflict::new();
        let (mut a, mut b) = (c.cluster.backend(0), c.cluster.backend(1));
        let rel = &c.rel;
        let xa = a.begin();
        let res = a.with_ctx(|ctx| heap_update(ctx, rel, &xact(xa, 0), c.row, &row(rel, 1, "A")));
        let HeapWriteResult::Updated { new_tid } = res.unwrap() else {
            panic!("A's update")
        };
        let xb = b.begin();
        let me = CurrentXact {
            xid: xb,
            cid: 0,
            isolation: iso,
        };
        let res = b.with_ctx(|ctx| heap_update(ctx, rel, &me, c.row, &row(rel, 1, "B")));
        assert_eq!(res.unwrap(), HeapWriteResult::WaitFor(xa), "{iso:?}");
        assert_eq!(
            b.buffers.pinned_buffer_count(),
            0,
            "nothing held while waiting"
        );
        a.commit(xa);
        let res = b.with_ctx(|ctx| heap_update(ctx, rel, &me, c.row, &row(rel, 1, "B")));
        match iso {
            IsolationLevel::ReadCommitted => assert_eq!(
                res.unwrap(),
                HeapWriteResult::FollowUpdate {
                    ctid: new_tid,
                    prior_xmax: xa
                }
            ),
            _ => {
                let e = res.unwrap_err();
                assert_eq!(e.code, SqlState::SERIALIZATION_FAILURE);
                assert_eq!(
                    e.message,
                    "could not serialize access due to concurrent update"
                );
            }
        }
    }
}

#[test]
fn the_row_loop_follows_the_chain_and_rechecks_the_newest_version() {
    let c = Conflict::new();
    let (mut a, mut b) = (c.cluster.backend(0), c.cluster.backend(1));
    let rel = &c.rel;
    let xa = a.begin();
    a.with_ctx(|ctx| heap_update(ctx, rel, &xact(xa, 0), c.row, &row(rel, 2, "A")))
        .unwrap();
    a.commit(xa);
    // B found the row through an old snapshot; it now follows to A's
    // version and computes its new tuple from it.
    let xb = b.begin();
    let mut seen = Vec::new();
    let out = b.with_ctx(|ctx| {
        update_row(
            ctx,
            rel,
            &xact(xb, 0),
            c.row,
            row(rel, 10, "stale"),
            &mut |newer| {
                let id = id_of(rel, newer);
                seen.push(id);
                Ok(Some(row(rel, id + 10, "B")))
            },
            &mut || Ok(()),
        )
    });
    let RowOutcome::Updated { old_tid, new_tid } = out.unwrap() else {
        panic!("not updated")
    };
    assert_eq!(seen, [2]);
    assert_ne!(old_tid, c.row);
    b.commit(xb);
    let rows = b.scan(rel, &b.snapshot(), xact(Xid::INVALID, 0));
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0, id_of(rel, &rows[0].1)), (new_tid, 12));

    // A recheck that says "no longer matches" skips the row; so does a
    // concurrent delete under read committed.
    let xd = a.begin();
    assert_eq!(
        a.with_ctx(|ctx| heap_delete(ctx, rel, &xact(xd, 0), new_tid))
            .unwrap(),
        HeapWriteResult::Deleted
    );
    a.commit(xd);
    let xe = b.begin();
    let out = b.with_ctx(|ctx| {
        delete_row(
            ctx,
            rel,
            &xact(xe, 0),
            new_tid,
            &mut |_| Ok(true),
            &mut || Ok(()),
        )
    });
    assert_eq!(out.unwrap(), RowOutcome::Skipped);
    let rr = CurrentXact {
        xid: xe,
        cid: 1,
        isolation: IsolationLevel::RepeatableRead,
    };
    let e: PgError = b
        .with_ctx(|ctx| delete_row(ctx, rel, &rr, new_tid, &mut |_| Ok(true), &mut || Ok(())))
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        (
            "40001",
            "could not serialize access due to concurrent delete"
        )
    );
}
