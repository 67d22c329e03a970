//! `bt_bulk_delete` (`vacuum.rs` B1-B4): exactly the dead entries go, the
//! tree stays valid with emptied leaves, its VACUUM records replay to the
//! same pages, and it runs safely next to inserters and scanners in other
//! processes.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use pgerror::PgError;

use super::test_support::*;
use super::*;
use crate::buffer::BufferManager;
use crate::heap::test_support::{
    fork_child, poll_until, wait_child, Backend, SharedMem, CHILD_TIMEOUT,
};
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::types::ForkNumber;

/// The index of `i` in the made-up TIDs of `tid(i)`.
fn number_of(t: ItemPointer) -> u64 {
    u64::from(t.block.0) * 200 + u64::from(t.offset.0) - 1
}

fn bulk_delete(
    ctx: &mut HeapContext<'_, '_>,
    idx: &BtreeIndex,
    dead: impl Fn(u64) -> bool,
) -> BulkDeleteStats {
    bt_bulk_delete(ctx, idx, &|t| dead(number_of(t)), &mut no_interrupts).expect("bulk delete")
}

fn all_numbers(ctx: &mut HeapContext<'_, '_>, idx: &BtreeIndex, dir: ScanDirection) -> Vec<u64> {
    scan(ctx, idx, ScanRange::all(), dir)
        .iter()
        .map(|e| number_of(e.tid))
        .collect()
}

/// Keys `0..n` (wide text, so there are many leaves), entry `i` -> `tid(i)`,
/// inserted in a shuffled order so that splits leave half-full pages.
fn load(ctx: &mut HeapContext<'_, '_>, idx: &BtreeIndex, n: u64) {
    bt_create_empty(ctx, idx).unwrap();
    let mut order: Vec<u64> = (0..n).collect();
    XorShift(0x9e37_79b9).shuffle(&mut order);
    for i in order {
        insert(ctx, idx, &text(&wide_text(i)), tid(i));
    }
}

#[test]
fn exactly_the_dead_entries_go() {
    let cluster = cluster(256, 1);
    let mut b = cluster.backend(0);
    let idx = text_index();
    b.with_ctx(|ctx| {
        load(ctx, &idx, 3000);
        let leaves = verify(ctx, &idx).pages_per_level[0];
        let s = bulk_delete(ctx, &idx, |i| i % 3 == 0);
        assert_eq!((s.tuples_removed, s.tuples_remaining), (1000, 2000));
        assert_eq!(s.pages_changed as usize, leaves, "every leaf had one");
        assert!(s.pages_scanned as usize > leaves, "internal pages read too");
        let shape = verify(ctx, &idx);
        assert_eq!(shape.leaf_entries, 2000);
        let kept: Vec<u64> = (0..3000).filter(|i| i % 3 != 0).collect();
        assert_eq!(all_numbers(ctx, &idx, ScanDirection::Forward), kept);
        let mut back = all_numbers(ctx, &idx, ScanDirection::Backward);
        back.reverse();
        assert_eq!(back, kept);
        // Nothing left to do.
        let s = bulk_delete(ctx, &idx, |i| i % 3 == 0);
        assert_eq!((s.tuples_removed, s.pages_changed), (0, 0));
    });
}

#[test]
fn emptied_leaves_stay_in_the_tree_and_take_new_entries() {
    let cluster = cluster(256, 1);
    let mut b = cluster.backend(0);
    let idx = text_index();
    b.with_ctx(|ctx| {
        load(ctx, &idx, 3000);
        let before = verify(ctx, &idx);
        let s = bulk_delete(ctx, &idx, |i| (500..2500).contains(&i));
        assert_eq!(s.tuples_removed, 2000);
        let after = verify(ctx, &idx);
        assert_eq!(
            after.pages_per_level, before.pages_per_level,
            "no page deleted"
        );
        // Ranges over the emptied leaves, both ways.
        let range = ScanRange {
            lower: std::ops::Bound::Included(text(&wide_text(400))),
            upper: std::ops::Bound::Excluded(text(&wide_text(2600))),
        };
        let fwd: Vec<u64> = scan(ctx, &idx, range.clone(), ScanDirection::Forward)
            .iter()
            .map(|e| number_of(e.tid))
            .collect();
        assert_eq!(fwd, (400..500).chain(2500..2600).collect::<Vec<_>>());
        let back = scan(ctx, &idx, range, ScanDirection::Backward);
        assert_eq!(back.len(), 200);
        assert!(bt_search(ctx, &idx, &text(&wide_text(1000)))
            .unwrap()
            .is_empty());
        // New entries land on the emptied leaves.
        for i in (600..2400).step_by(7) {
            insert(ctx, &idx, &text(&wide_text(i)), tid(10_000 + i));
        }
        let again = verify(ctx, &idx);
        assert_eq!(
            again.pages_per_level, before.pages_per_level,
            "no split needed"
        );
        assert_eq!(
            bt_search(ctx, &idx, &text(&wide_text(1006))).unwrap(),
            vec![tid(11_006)]
        );
    });
}

#[test]
fn unique_checks_no_longer_see_removed_entries() {
    let cluster = cluster(64, 1);
    let mut b = cluster.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for i in 0..500u64 {
            insert(ctx, &idx, &int4(i as i32), tid(i));
        }
        bulk_delete(ctx, &idx, |i| i == 42);
        // A checker that calls every equal entry live: none is left for 42.
        let mut live = |_: &mut HeapContext<'_, '_>, _: ItemPointer| Ok(UniqueCheck::Live);
        bt_insert(
            ctx,
            &idx,
            &int4(42),
            tid(9000),
            Some(&mut live),
            &mut no_interrupts,
        )
        .expect("no duplicate left");
        let e = bt_insert(
            ctx,
            &idx,
            &int4(43),
            tid(9001),
            Some(&mut live),
            &mut no_interrupts,
        )
        .unwrap_err();
        assert_eq!(e.code, pgerror::SqlState::UNIQUE_VIOLATION);
    });
}

#[test]
fn vacuum_records_replay_to_the_same_pages_twice_over() {
    let cluster = cluster(256, 1);
    let mut b = cluster.backend(0);
    let idx = text_index();
    b.with_ctx(|ctx| {
        load(ctx, &idx, 2000);
        bulk_delete(ctx, &idx, |i| i % 4 == 0);
    });
    // The first change of each leaf after a checkpoint carries its image.
    b.wal.advance_redo_ptr();
    b.with_ctx(|ctx| {
        bulk_delete(ctx, &idx, |i| i % 4 == 1);
        for i in 0..300 {
            insert(ctx, &idx, &text(&wide_text(i * 5 + 3)), tid(50_000 + i));
        }
        bulk_delete(ctx, &idx, |i| i % 4 == 2 || i >= 50_000 && i % 2 == 0);
    });
    let original = index_pages(&b.buffers, &mut b.smgr, &b.wal);
    let records = index_records(cluster.read_wal());
    let vacuums: Vec<_> = records
        .iter()
        .filter(|r| {
            r.record.rmgr() == crate::wal::ResourceManager::Btree
                && r.record.info() == XLOG_BTREE_VACUUM
        })
        .collect();
    let imaged = vacuums
        .iter()
        .filter(|r| r.record.blocks().any(|blk| blk.has_image()))
        .count();
    assert!(
        imaged > 0 && imaged < vacuums.len(),
        "{imaged} of {}",
        vacuums.len()
    );

    let target = replay_target(256);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records, &mut buffers, &mut smgr);
    replay(&records, &mut buffers, &mut smgr);
    let replayed = index_pages(
        &buffers,
        &mut smgr,
        &crate::heap::test_support::no_wal_flush,
    );
    assert_same_pages(&original, &replayed);
    with_other_pool(&b, &buffers, &mut smgr, |ctx| verify(ctx, &idx));
}

// Child exit statuses.
const OK: i32 = 0;
const NO_START: i32 = 2;
const INSERT_FAILED: i32 = 3;
const SCAN_OUT_OF_ORDER: i32 = 4;
const SCAN_LOST_A_SURVIVOR: i32 = 5;
const SCAN_REPEATED_AN_ENTRY: i32 = 6;

const INITIAL: u64 = 4000;
const INSERTED: u64 = 3000;
const ROUNDS: u64 = 4;

/// Initial entry `i` is deleted in round `i % 5` (rounds 0..4); those with
/// `i % 5 == 4` survive every round.
fn survives(i: u64) -> bool {
    i % 5 == ROUNDS
}

/// Keys: initial entry `i` has key `2 i`, inserted entry `j` key `2 j + 1`
/// (between the initial ones, so inserts split leaves everywhere).
fn key_of(e: &IndexEntry) -> u64 {
    match &e.key[0] {
        Some(crate::heap::datum::Datum::Text(s)) => s[..10].parse().expect("a wide_text key"),
        other => panic!("unexpected key {other:?}"),
    }
}

fn scanner(b: &mut Backend<'_>, idx: &BtreeIndex, board: &[std::sync::atomic::AtomicU64]) -> i32 {
    let survivors: Vec<u64> = (0..INITIAL).filter(|&i| survives(i)).collect();
    loop {
        let done = board[2].load(Ordering::SeqCst) == 1;
        let dir = if board[3].load(Ordering::SeqCst) % 2 == 0 {
            ScanDirection::Forward
        } else {
            ScanDirection::Backward
        };
        let Ok(mut entries) = b.with_ctx(|ctx| bt_scan_all(ctx, idx, ScanRange::all(), dir)) else {
            return SCAN_OUT_OF_ORDER;
        };
        if dir == ScanDirection::Backward {
            entries.reverse();
        }
        let keys: Vec<u64> = entries.iter().map(key_of).collect();
        if keys.windows(2).any(|w| w[0] > w[1]) {
            return SCAN_OUT_OF_ORDER;
        }
        let mut seen: HashMap<ItemPointer, u32> = HashMap::new();
        for e in &entries {
            *seen.entry(e.tid).or_default() += 1;
        }
        if seen.values().any(|&c| c > 1) {
            return SCAN_REPEATED_AN_ENTRY;
        }
        if survivors.iter().any(|&i| !seen.contains_key(&tid(i))) {
            return SCAN_LOST_A_SURVIVOR;
        }
        board[3].fetch_add(1, Ordering::SeqCst);
        if done {
            return OK;
        }
    }
}

/// Bulk deletes in the parent, an inserter and a scanner in children, all
/// at once, through a pool smaller than the index.
#[test]
fn bulk_delete_with_concurrent_inserts_and_scans() {
    let cluster = cluster(48, 3);
    let idx = text_index();
    {
        let mut setup = cluster.backend(2);
        setup.with_ctx(|ctx| {
            bt_create_empty(ctx, &idx).unwrap();
            for i in 0..INITIAL {
                insert(ctx, &idx, &text(&wide_text(2 * i)), tid(i));
            }
        });
    }
    // [0] children ready, [1] go, [2] deletes done, [3] scans done,
    // [4] inserts done.
    let board_mem = SharedMem::new(4096);
    let scan_pid = {
        let (cluster, board_mem, idx) = (&cluster, &board_mem, &idx);
        fork_child(move || {
            let board = board_mem.u64s(5);
            let mut b = cluster.backend(0);
            board[0].fetch_add(1, Ordering::SeqCst);
            if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                return NO_START;
            }
            scanner(&mut b, idx, board)
        })
    };
    let insert_pid = {
        let (cluster, board_mem, idx) = (&cluster, &board_mem, &idx);
        fork_child(move || {
            let board = board_mem.u64s(5);
            let mut b = cluster.backend(1);
            board[0].fetch_add(1, Ordering::SeqCst);
            if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                return NO_START;
            }
            let mut order: Vec<u64> = (0..INSERTED).collect();
            XorShift(0x2545_f491).shuffle(&mut order);
            for j in order {
                let key = text(&wide_text(2 * j + 1));
                let res = b.with_ctx(|ctx| {
                    bt_insert(ctx, idx, &key, tid(100_000 + j), None, &mut no_interrupts)
                });
                if res.is_err() {
                    return INSERT_FAILED;
                }
                board[4].fetch_add(1, Ordering::SeqCst);
            }
            OK
        })
    };
    let board = board_mem.u64s(5);
    assert!(poll_until(CHILD_TIMEOUT, || board[0]
        .load(Ordering::SeqCst)
        == 2));
    board[1].store(1, Ordering::SeqCst);

    let mut parent = cluster.backend(2);
    let mut removed = 0;
    for round in 0..ROUNDS {
        // Let the others get going between rounds.
        let scans = board[3].load(Ordering::SeqCst);
        assert!(poll_until(CHILD_TIMEOUT, || board[3]
            .load(Ordering::SeqCst)
            > scans));
        let s = parent.with_ctx(|ctx| {
            bt_bulk_delete(
                ctx,
                &idx,
                &|t| {
                    let i = number_of(t);
                    i < INITIAL && i % 5 == round
                },
                &mut || Ok::<(), PgError>(()),
            )
        });
        removed += s.expect("bulk delete").tuples_removed;
    }
    let inserted_meanwhile = board[4].load(Ordering::SeqCst);
    board[2].store(1, Ordering::SeqCst);
    assert_eq!(wait_child(insert_pid, CHILD_TIMEOUT), OK, "inserter");
    assert_eq!(wait_child(scan_pid, CHILD_TIMEOUT), OK, "scanner");
    assert_eq!(removed, INITIAL / 5 * ROUNDS);
    assert!(inserted_meanwhile > 0, "the inserter ran alongside");

    parent.with_ctx(|ctx| {
        let shape = verify(ctx, &idx);
        let left = INITIAL / 5 + INSERTED;
        assert_eq!(shape.leaf_entries as u64, left);
        let mut tids: Vec<u64> = all_numbers(ctx, &idx, ScanDirection::Forward);
        tids.sort_unstable();
        let expected: Vec<u64> = (0..INITIAL)
            .filter(|&i| survives(i))
            .chain((0..INSERTED).map(|j| 100_000 + j))
            .collect();
        assert_eq!(tids, expected);
    });
    // The interleaved WAL replays to the same pages.
    let original = index_pages(&parent.buffers, &mut parent.smgr, &parent.wal);
    let records = index_records(cluster.read_wal());
    let target = replay_target(128);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records, &mut buffers, &mut smgr);
    let replayed = index_pages(
        &buffers,
        &mut smgr,
        &crate::heap::test_support::no_wal_flush,
    );
    assert_same_pages(&original, &replayed);
    let n = parent.smgr.nblocks(INDEX_REL, ForkNumber::Main).unwrap();
    assert_eq!(original.len() as u32, n);
}

/// What a backend does for `VACUUM t` on a table with one btree index:
/// `heap_vacuum` with `bt_bulk_delete` as the index cleanup.
#[test]
fn heap_vacuum_cleans_a_btree_index_before_freeing_slots() {
    use crate::heap::datum::Datum;
    use crate::heap::test_support::{id_of, int_text_rel, row, xact};
    use crate::heap::{
        dead_tid_lookup, heap_delete, heap_fetch, heap_insert, heap_update, heap_vacuum,
        HeapWriteResult, VacuumOptions,
    };
    use crate::types::Xid;

    let cluster = cluster(128, 1);
    let mut b = cluster.backend(0);
    let rel = int_text_rel();
    let idx = int4_index();
    let key_of_row = |t: &[u8]| int4(id_of(&rel, t));
    let x = b.begin();
    let mut tids: Vec<ItemPointer> = b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        (0..1000)
            .map(|i| {
                let t = row(&rel, i, "v");
                let tid = heap_insert(ctx, &rel, &xact(x, 0), &t).unwrap();
                insert(ctx, &idx, &key_of_row(&t), tid);
                tid
            })
            .collect()
    });
    b.commit(x);
    let x = b.begin();
    b.with_ctx(|ctx| {
        for (i, tid) in tids.iter_mut().enumerate() {
            if i % 5 == 0 {
                heap_delete(ctx, &rel, &xact(x, 0), *tid).unwrap();
            } else if i % 5 == 1 {
                let t = row(&rel, i as i32, "updated");
                let HeapWriteResult::Updated { new_tid } =
                    heap_update(ctx, &rel, &xact(x, 0), *tid, &t).unwrap()
                else {
                    panic!("update");
                };
                insert(ctx, &idx, &key_of_row(&t), new_tid);
                *tid = new_tid;
            }
        }
    });
    b.commit(x);

    let horizon = b.transam.global_xmin();
    let mut index_stats = Vec::new();
    let mut cleanup = |ctx: &mut HeapContext<'_, '_>, dead: &[ItemPointer]| {
        let s = bt_bulk_delete(ctx, &idx, &dead_tid_lookup(dead), &mut no_interrupts)?;
        index_stats.push(s);
        Ok(())
    };
    let s = b
        .with_ctx(|ctx| {
            heap_vacuum(
                ctx,
                &rel,
                horizon,
                Some(&mut cleanup),
                &VacuumOptions::default(),
                &mut no_interrupts,
            )
        })
        .unwrap();
    assert_eq!(s.tuples_removed, 400, "200 deleted, 200 old versions");
    assert_eq!(index_stats.len(), 1);
    assert_eq!(index_stats[0].tuples_removed, 400);
    assert_eq!(index_stats[0].tuples_remaining, 800);

    // Every entry left leads to the live version with its key.
    let snap = b.snapshot();
    b.with_ctx(|ctx| {
        assert_eq!(verify(ctx, &idx).leaf_entries, 800);
        for e in scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward) {
            let t = heap_fetch(ctx, &rel, e.tid, &snap, &xact(Xid::INVALID, 0))
                .unwrap()
                .expect("a live heap tuple");
            assert_eq!(e.key, key_of_row(&t));
        }
        assert!(bt_search(ctx, &idx, &[Some(Datum::Int4(5))])
            .unwrap()
            .is_empty());
        assert_eq!(bt_search(ctx, &idx, &int4(6)).unwrap(), vec![tids[6]]);
    });
}
