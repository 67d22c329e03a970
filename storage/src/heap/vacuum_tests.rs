//! VACUUM on the heap, one rule per test (`vacuum.rs` V1-V6), and the
//! replay of its PRUNE records: what a snapshot may still see stays, the
//! rest goes; slots wait for the index cleanup; a table under steady
//! updates stops growing; the free space map leads inserts to freed
//! pages; the empty tail is cut off; a ctid followed into an emptied or
//! reused slot ends the chain.

use super::fsm::{fsm_recorded, fsm_search};
use super::heapam::*;
use super::heapam_xlog::{heap_redo, XLOG_HEAP_OPMASK, XLOG_HEAP_PRUNE};
use super::test_support::*;
use super::tuple::ItemPointer;
use super::vacuum::*;
use crate::buffer::BufferManager;
use crate::page::{LpFlags, Page};
use crate::types::{BlockNumber, ForkNumber, Xid, BLCKSZ};
use crate::wal::ResourceManager;
use pgerror::PgError;

fn no_interrupts() -> Result<(), PgError> {
    Ok(())
}

/// VACUUM with the horizon as a backend computes it.
fn vacuum_with(
    b: &mut Backend<'_>,
    rel: &HeapRelation,
    cleanup: Option<&mut IndexCleanup<'_>>,
    options: &VacuumOptions,
) -> Result<VacuumStats, PgError> {
    let horizon = b.transam.global_xmin();
    b.with_ctx(|ctx| heap_vacuum(ctx, rel, horizon, cleanup, options, &mut no_interrupts))
}

fn vacuum(b: &mut Backend<'_>, rel: &HeapRelation) -> VacuumStats {
    vacuum_with(b, rel, None, &VacuumOptions::default()).expect("vacuum")
}

fn insert_rows(
    b: &mut Backend<'_>,
    rel: &HeapRelation,
    ids: std::ops::Range<i32>,
) -> Vec<ItemPointer> {
    let x = b.begin();
    let tids = b.with_ctx(|ctx| {
        ids.map(|i| heap_insert(ctx, rel, &xact(x, 0), &row(rel, i, "v")).unwrap())
            .collect()
    });
    b.commit(x);
    tids
}

fn delete_rows(b: &mut Backend<'_>, rel: &HeapRelation, tids: &[ItemPointer]) {
    let x = b.begin();
    b.with_ctx(|ctx| {
        for &tid in tids {
            assert_eq!(
                heap_delete(ctx, rel, &xact(x, 0), tid).unwrap(),
                HeapWriteResult::Deleted
            );
        }
    });
    b.commit(x);
}

fn lp_flags(ctx: &mut HeapContext<'_, '_>, tid: ItemPointer) -> LpFlags {
    let buffers = ctx.buffers;
    let buf = buffers
        .read_buffer(&mut *ctx.smgr, ctx.wal, REL, ForkNumber::Main, tid.block)
        .unwrap();
    let page = buf.lock_shared();
    Page::new(&*page)
        .item_id(tid.offset)
        .map_or(LpFlags::Unused, |lp| lp.flags())
}

fn ids_seen(b: &mut Backend<'_>, rel: &HeapRelation) -> Vec<i32> {
    let snap = b.snapshot();
    let mut ids: Vec<i32> = b
        .scan(rel, &snap, xact(Xid::INVALID, 0))
        .iter()
        .map(|(_, t)| id_of(rel, t))
        .collect();
    b.transam.reset_xmin(b.proc());
    ids.sort_unstable();
    ids
}

fn nblocks(b: &mut Backend<'_>) -> u32 {
    b.smgr.nblocks(REL, ForkNumber::Main).unwrap()
}

#[test]
fn vacuum_removes_only_what_no_snapshot_can_see_v3() {
    let cluster = Cluster::new(64, 2);
    let mut b = cluster.backend(0);
    let mut reader = cluster.backend(1);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..100);
    let old = reader.snapshot();

    let x2 = b.begin();
    b.with_ctx(|ctx| {
        for &tid in &tids[..20] {
            heap_delete(ctx, &rel, &xact(x2, 0), tid).unwrap();
        }
        for (i, &tid) in tids[20..40].iter().enumerate() {
            let new = row(&rel, 20 + i as i32, "new");
            heap_update(ctx, &rel, &xact(x2, 0), tid, &new).unwrap();
        }
    });
    b.commit(x2);
    let x3 = b.begin();
    let aborted = b.with_ctx(|ctx| {
        (1000..1010)
            .map(|i| heap_insert(ctx, &rel, &xact(x3, 0), &row(&rel, i, "a")).unwrap())
            .collect::<Vec<_>>()
    });
    b.abort(x3);
    // A transaction still running: 5 inserts and one delete in progress.
    let x4 = b.begin();
    b.with_ctx(|ctx| {
        for i in 2000..2005 {
            heap_insert(ctx, &rel, &xact(x4, 0), &row(&rel, i, "r")).unwrap();
        }
        heap_delete(ctx, &rel, &xact(x4, 0), tids[99]).unwrap();
    });

    let s = vacuum(&mut b, &rel);
    assert_eq!(s.tuples_removed, 10, "only the aborted inserts");
    assert_eq!(
        s.live_tuples, 80,
        "60 untouched (one being deleted) + 20 new versions"
    );
    assert_eq!(s.recently_dead_tuples, 40, "the old snapshot may see them");
    assert_eq!(s.in_progress_tuples, 5);
    b.with_ctx(|ctx| {
        for &tid in &aborted {
            assert_eq!(lp_flags(ctx, tid), LpFlags::Unused, "no index: one pass");
        }
    });
    // The old snapshot still sees exactly the 100 original rows.
    let seen = reader.scan(&rel, &old, xact(Xid::INVALID, 0));
    let mut ids: Vec<i32> = seen.iter().map(|(_, t)| id_of(&rel, t)).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..100).collect::<Vec<_>>());
    assert!(seen.iter().all(|(_, t)| text_of(&rel, t) == "v"));

    // Once that snapshot is gone, so are the versions only it could see.
    reader.transam.reset_xmin(reader.proc());
    b.abort(x4);
    let s = vacuum(&mut b, &rel);
    assert_eq!(
        (
            s.tuples_removed,
            s.live_tuples,
            s.recently_dead_tuples,
            s.in_progress_tuples
        ),
        (40 + 5, 80, 0, 0)
    );
    assert_eq!(ids_seen(&mut b, &rel), (20..100).collect::<Vec<_>>());
    let s = vacuum(&mut b, &rel);
    assert_eq!(
        (s.tuples_removed, s.pages_changed),
        (0, 0),
        "nothing left to do"
    );
}

#[test]
fn with_indexes_dead_slots_wait_for_the_index_cleanup_v1_v6() {
    let cluster = Cluster::new(64, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..1200);
    let mut deleted: Vec<ItemPointer> = tids.iter().copied().step_by(3).collect();
    delete_rows(&mut b, &rel, &deleted);
    deleted.sort_unstable();

    let mut batches: Vec<Vec<ItemPointer>> = Vec::new();
    let mut cleanup = |ctx: &mut HeapContext<'_, '_>, dead: &[ItemPointer]| {
        assert!(dead.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        for &tid in dead {
            assert_eq!(lp_flags(ctx, tid), LpFlags::Dead, "V1: not reusable yet");
        }
        batches.push(dead.to_vec());
        Ok(())
    };
    // The smallest batch: one page's worth (V6).
    let options = VacuumOptions { max_dead_tids: 1 };
    let s = vacuum_with(&mut b, &rel, Some(&mut cleanup), &options).unwrap();
    assert_eq!(s.tuples_removed, 400);
    assert_eq!(s.line_pointers_freed, 400);
    assert_eq!(s.index_passes as usize, batches.len());
    assert!(batches.len() >= 4, "one batch per page ({})", batches.len());
    assert_eq!(batches.concat(), deleted, "every dead TID once, in order");
    b.with_ctx(|ctx| {
        for &tid in &deleted {
            assert_eq!(lp_flags(ctx, tid), LpFlags::Unused);
        }
    });
    // The slots are reused by new rows.
    let fresh = int_text_rel();
    let new_tids = insert_rows(&mut b, &fresh, 5000..5400);
    let reused = new_tids.iter().filter(|t| deleted.contains(t)).count();
    assert!(reused > 300, "freed slots reused ({reused})");
    assert_eq!(ids_seen(&mut b, &rel).len(), 800 + 400);
}

#[test]
fn a_failed_index_cleanup_leaves_dead_slots_for_the_next_vacuum() {
    let cluster = Cluster::new(64, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..600);
    let mut deleted: Vec<ItemPointer> = tids.iter().copied().step_by(2).collect();
    delete_rows(&mut b, &rel, &deleted);
    deleted.sort_unstable();

    let mut failing = |_: &mut HeapContext<'_, '_>, _: &[ItemPointer]| {
        Err(PgError::new(
            pgerror::SqlState::QUERY_CANCELED,
            "canceling statement due to user request",
        ))
    };
    let e = vacuum_with(&mut b, &rel, Some(&mut failing), &VacuumOptions::default()).unwrap_err();
    assert_eq!(e.code, pgerror::SqlState::QUERY_CANCELED);
    // Pass 1 freed the storage and told the map; the slots stay dead.
    let fresh = int_text_rel();
    let before = nblocks(&mut b);
    let new_tids = insert_rows(&mut b, &fresh, 1000..1250);
    assert_eq!(nblocks(&mut b), before, "the freed space was found");
    assert!(new_tids.iter().all(|t| !deleted.contains(t)), "V1");

    let mut got = Vec::new();
    let mut cleanup = |_: &mut HeapContext<'_, '_>, dead: &[ItemPointer]| {
        got.extend_from_slice(dead);
        Ok(())
    };
    let s = vacuum_with(&mut b, &rel, Some(&mut cleanup), &VacuumOptions::default()).unwrap();
    assert_eq!(got, deleted, "the left-over LP_DEAD slots are cleaned now");
    assert_eq!((s.tuples_removed, s.line_pointers_freed), (0, 300));
    b.with_ctx(|ctx| assert_eq!(lp_flags(ctx, deleted[0]), LpFlags::Unused));
}

#[test]
fn a_table_under_steady_updates_stops_growing_once_vacuumed() {
    const ROWS: i32 = 600;
    const ROUNDS: usize = 8;
    let cluster = Cluster::new(64, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let mut tids = insert_rows(&mut b, &rel, 0..ROWS);
    let mut sizes = Vec::new();
    for round in 0..ROUNDS {
        let x = b.begin();
        b.with_ctx(|ctx| {
            for (i, tid) in tids.iter_mut().enumerate() {
                let new = row(&rel, i as i32, &format!("round {round}"));
                match heap_update(ctx, &rel, &xact(x, 0), *tid, &new).unwrap() {
                    HeapWriteResult::Updated { new_tid } => *tid = new_tid,
                    other => panic!("update: {other:?}"),
                }
            }
        });
        b.commit(x);
        let s = vacuum(&mut b, &rel);
        assert_eq!(s.tuples_removed, ROWS as u64, "round {round}");
        sizes.push(nblocks(&mut b));
    }
    // Two copies of the table at most: the live one and the one freed.
    let settled = sizes[1];
    assert!(
        sizes[1..].iter().all(|&n| n == settled),
        "the relation stopped growing: {sizes:?}"
    );
    let rows = b.scan(&rel, &b.snapshot(), xact(Xid::INVALID, 0));
    assert_eq!(rows.len(), ROWS as usize);
    let last = format!("round {}", ROUNDS - 1);
    assert!(rows.iter().all(|(_, t)| text_of(&rel, t) == last));

    // Without VACUUM the same work keeps adding pages.
    let x = b.begin();
    b.with_ctx(|ctx| {
        for tid in tids.iter_mut() {
            let new = row(&rel, 0, "unvacuumed");
            if let HeapWriteResult::Updated { new_tid } =
                heap_update(ctx, &rel, &xact(x, 0), *tid, &new).unwrap()
            {
                *tid = new_tid;
            }
        }
    });
    b.commit(x);
    let x = b.begin();
    b.with_ctx(|ctx| {
        for tid in tids.iter_mut() {
            let new = row(&rel, 0, "unvacuumed again");
            heap_update(ctx, &rel, &xact(x, 0), *tid, &new).unwrap();
        }
    });
    b.commit(x);
    assert!(nblocks(&mut b) > settled, "no reuse without vacuum");
}

#[test]
fn inserts_find_freed_pages_through_the_free_space_map() {
    let cluster = Cluster::new(64, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..2000);
    let n = nblocks(&mut b);
    assert!(n >= 8);
    let early: Vec<ItemPointer> = tids.iter().copied().filter(|t| t.block.0 < 3).collect();
    delete_rows(&mut b, &rel, &early);
    let s = vacuum(&mut b, &rel);
    assert_eq!(s.tuples_removed, early.len() as u64);
    b.with_ctx(|ctx| {
        assert!(fsm_recorded(ctx, REL, BlockNumber(0)).unwrap() > 7000);
        assert_eq!(fsm_search(ctx, REL, 4000).unwrap(), Some(BlockNumber(0)));
    });
    // Another backend's relation handle has no target block: it fills the
    // last page, then the map sends it to the freed ones.
    let fresh = int_text_rel();
    let new_tids = insert_rows(&mut b, &fresh, 5000..5000 + early.len() as i32);
    assert_eq!(nblocks(&mut b), n, "no extension");
    let on_freed = new_tids.iter().filter(|t| t.block.0 < 3).count();
    assert!(on_freed > early.len() / 2, "{on_freed} rows on freed pages");
    let all = ids_seen(&mut b, &rel);
    assert_eq!(all.len(), 2000);
}

#[test]
fn the_empty_tail_is_truncated_and_forgotten_by_the_map() {
    let cluster = Cluster::new(64, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..2000);
    let n = nblocks(&mut b);
    let tail: Vec<ItemPointer> = tids.iter().copied().filter(|t| t.block.0 >= 3).collect();
    delete_rows(&mut b, &rel, &tail);
    vacuum(&mut b, &rel);
    let cut = b.with_ctx(|ctx| heap_truncate_tail(ctx, &rel)).unwrap();
    assert_eq!(cut, n - 3);
    assert_eq!(nblocks(&mut b), 3);
    assert_eq!(rel.target_block(), None, "the cut target is forgotten");
    b.with_ctx(|ctx| {
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(3)).unwrap(), 0);
        assert_eq!(fsm_search(ctx, REL, 2000).unwrap(), None);
    });
    let truncates: Vec<_> = cluster
        .read_wal()
        .into_iter()
        .filter(|r| r.record.rmgr() == ResourceManager::Storage)
        .collect();
    assert_eq!(truncates.len(), 1, "one SMGR_TRUNCATE");
    assert_eq!(b.with_ctx(|ctx| heap_truncate_tail(ctx, &rel)).unwrap(), 0);
    // The table grows again from there.
    insert_rows(&mut b, &rel, 3000..3500);
    assert!(nblocks(&mut b) > 3);
    assert_eq!(ids_seen(&mut b, &rel).len(), tids.len() - tail.len() + 500);
}

/// An xid older than the updater that deletes its new version: with a
/// transaction in between still running, the horizon falls between them,
/// so the new version is removable while the old one is not.
#[test]
fn a_ctid_followed_into_an_emptied_or_reused_slot_ends_the_chain_v5() {
    let cluster = Cluster::new(64, 3);
    let mut b = cluster.backend(0);
    let mut mid = cluster.backend(1);
    let mut deleter = cluster.backend(2);
    let rel = int_text_rel();
    let t0 = insert_rows(&mut b, &rel, 1..2)[0];

    let x_del = deleter.begin();
    let x_mid = mid.begin();
    let x_upd = b.begin();
    assert!(x_del < x_mid && x_mid < x_upd);
    let t1 = match b
        .with_ctx(|ctx| heap_update(ctx, &rel, &xact(x_upd, 0), t0, &row(&rel, 1, "updated")))
        .unwrap()
    {
        HeapWriteResult::Updated { new_tid } => new_tid,
        other => panic!("{other:?}"),
    };
    b.commit(x_upd);
    let gone = deleter
        .with_ctx(|ctx| heap_delete(ctx, &rel, &xact(x_del, 1), t1))
        .unwrap();
    assert_eq!(gone, HeapWriteResult::Deleted);
    deleter.commit(x_del);
    assert_eq!(b.transam.global_xmin(), x_mid);

    let s = vacuum(&mut b, &rel);
    assert_eq!((s.tuples_removed, s.recently_dead_tuples), (1, 1));
    b.with_ctx(|ctx| {
        assert_eq!(lp_flags(ctx, t1), LpFlags::Unused);
        assert_eq!(lp_flags(ctx, t0), LpFlags::Normal);
    });

    // A DELETE that found t0 follows its ctid into the empty slot.
    let delete_t0 = |mid: &mut Backend<'_>| {
        mid.with_ctx(|ctx| {
            delete_row(
                ctx,
                &rel,
                &xact(x_mid, 0),
                t0,
                &mut |_| Ok(true),
                &mut no_interrupts,
            )
        })
        .unwrap()
    };
    assert_eq!(delete_t0(&mut mid), RowOutcome::Skipped);

    // The slot is reused by a new row; the chain still ends there
    // (is_next_version: the new tuple's xmin is not the updater).
    let fresh = int_text_rel();
    let t_new = insert_rows(&mut b, &fresh, 7..8)[0];
    assert_eq!(t_new, t1, "the freed slot was reused");
    assert_eq!(delete_t0(&mut mid), RowOutcome::Skipped);
    mid.abort(x_mid);
    assert_eq!(ids_seen(&mut b, &rel), vec![7], "the new row is untouched");
}

fn replay_heap(
    records: &[crate::wal::ReadRecord],
    target: &ReplayTarget,
) -> Vec<Box<[u8; BLCKSZ]>> {
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    for _ in 0..2 {
        for r in records {
            heap_redo(
                r.start,
                r.end,
                &r.record,
                &mut buffers,
                &mut smgr,
                &no_wal_flush,
            )
            .unwrap_or_else(|e| panic!("redo of the record at {}: {e}", r.start));
        }
    }
    relation_pages(&buffers, &mut smgr, &no_wal_flush)
}

#[test]
fn prune_records_replay_to_the_same_pages_twice_over() {
    let cluster = Cluster::new(128, 1);
    let mut b = cluster.backend(0);
    let rel = HeapRelation::new(REL, mixed_desc());
    let insert_mixed = |b: &mut Backend<'_>, ids: std::ops::Range<i32>, commit: bool| {
        let x = b.begin();
        let tids: Vec<ItemPointer> = b.with_ctx(|ctx| {
            ids.map(|i| heap_insert(ctx, &rel, &xact(x, 0), &rel.form(&mixed_row(i)).unwrap()))
                .collect::<Result<_, _>>()
                .unwrap()
        });
        if commit {
            b.commit(x)
        } else {
            b.abort(x)
        }
        tids
    };
    let tids = insert_mixed(&mut b, 0..400, true);
    insert_mixed(&mut b, 400..450, false);
    let x = b.begin();
    b.with_ctx(|ctx| {
        for (i, &tid) in tids.iter().enumerate() {
            if i % 4 == 0 {
                heap_delete(ctx, &rel, &xact(x, 0), tid).unwrap();
            } else if i % 4 == 1 {
                let new = rel.form(&mixed_row(i as i32 + 1000)).unwrap();
                heap_update(ctx, &rel, &xact(x, 1), tid, &new).unwrap();
            }
        }
    });
    b.commit(x);
    // Two passes (an "index" that needs nothing done), in small batches.
    let mut cleanup = |_: &mut HeapContext<'_, '_>, _: &[ItemPointer]| Ok(());
    let options = VacuumOptions { max_dead_tids: 300 };
    let s = vacuum_with(&mut b, &rel, Some(&mut cleanup), &options).unwrap();
    assert!(s.index_passes > 1 && s.tuples_removed == 250, "{s:?}");

    // One-pass pruning, the first change after a checkpoint's redo
    // pointer: with images.
    let survivors: Vec<ItemPointer> = b
        .scan(&rel, &b.snapshot(), xact(Xid::INVALID, 0))
        .into_iter()
        .map(|(tid, _)| tid)
        .filter(|t| t.block.0 % 2 == 0)
        .collect();
    b.transam.reset_xmin(b.proc());
    delete_rows(&mut b, &rel, &survivors);
    b.wal.advance_redo_ptr();
    let s = vacuum(&mut b, &rel);
    assert_eq!(s.tuples_removed, survivors.len() as u64);
    insert_mixed(&mut b, 2000..2300, true);

    let original = b.pages();
    let records: Vec<_> = cluster
        .read_wal()
        .into_iter()
        .filter(|r| r.record.rmgr() == ResourceManager::Heap)
        .collect();
    let prunes: Vec<_> = records
        .iter()
        .filter(|r| r.record.info() & XLOG_HEAP_OPMASK == XLOG_HEAP_PRUNE)
        .collect();
    let with_image = prunes
        .iter()
        .filter(|r| r.record.blocks().any(|blk| blk.has_image()))
        .count();
    assert!(
        with_image > 0 && with_image < prunes.len(),
        "{with_image} of {}",
        prunes.len()
    );
    assert!(prunes.iter().all(|r| r.record.xid() == Xid::INVALID));

    let target = ReplayTarget::new(128);
    let replayed = replay_heap(&records, &target);
    assert_eq!(original.len(), replayed.len(), "number of blocks");
    for (blk, (o, r)) in original.iter().zip(&replayed).enumerate() {
        assert!(o[..] == r[..], "block {blk} differs after replay");
    }
}

#[test]
fn analyze_counts_pages_live_and_dead_tuples() {
    let cluster = Cluster::new(64, 2);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..1000);
    delete_rows(&mut b, &rel, &tids[..100]);
    let x = b.begin();
    b.with_ctx(|ctx| {
        for i in 0..50 {
            heap_insert(ctx, &rel, &xact(x, 0), &row(&rel, 5000 + i, "running")).unwrap();
        }
    });
    let mut other = cluster.backend(1);
    let snap = other.snapshot();
    let analyze = |b: &mut Backend<'_>, snap, me| {
        b.with_ctx(|ctx| heap_analyze(ctx, &rel, snap, me, &mut no_interrupts))
            .unwrap()
    };
    let s = analyze(&mut other, &snap, xact(Xid::INVALID, 0));
    assert_eq!(s.pages, nblocks(&mut b));
    assert_eq!((s.live_tuples, s.dead_tuples), (900, 100));
    // The inserting transaction's later command sees its own rows.
    let s = analyze(&mut b, &snap, xact(x, 1));
    assert_eq!(s.live_tuples, 950);
    b.commit(x);
    other.transam.reset_xmin(other.proc());
    vacuum(&mut b, &rel);
    let now = other.snapshot();
    let s = analyze(&mut other, &now, xact(Xid::INVALID, 0));
    assert_eq!((s.live_tuples, s.dead_tuples), (950, 0));
}

#[test]
fn without_indexes_left_over_dead_slots_are_freed_in_one_pass() {
    let cluster = Cluster::new(64, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let tids = insert_rows(&mut b, &rel, 0..300);
    delete_rows(&mut b, &rel, &tids[..100]);
    let mut failing = |_: &mut HeapContext<'_, '_>, _: &[ItemPointer]| {
        Err(PgError::internal("index cleanup failed"))
    };
    vacuum_with(&mut b, &rel, Some(&mut failing), &VacuumOptions::default()).unwrap_err();
    // The table's last index is gone (DROP INDEX): one pass now.
    delete_rows(&mut b, &rel, &tids[100..150]);
    let s = vacuum(&mut b, &rel);
    assert_eq!((s.tuples_removed, s.line_pointers_freed), (50, 150));
    b.with_ctx(|ctx| {
        assert!(tids[..150]
            .iter()
            .all(|&t| lp_flags(ctx, t) == LpFlags::Unused));
    });
}
