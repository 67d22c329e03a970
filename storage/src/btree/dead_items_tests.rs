//! `dead_items.rs` (K1-K3): marks from a scan hide exactly the entries the
//! heap re-check confirms, even after the entries moved on the page; an
//! insert into a full leaf removes marked entries instead of splitting;
//! the removal replays to the same page.

use super::test_support::*;
use super::*;
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;

fn number_of(t: ItemPointer) -> u64 {
    u64::from(t.block.0) * 200 + u64::from(t.offset.0) - 1
}

fn numbers(ctx: &mut HeapContext<'_, '_>, idx: &BtreeIndex) -> Vec<u64> {
    scan(ctx, idx, ScanRange::all(), ScanDirection::Forward)
        .iter()
        .map(|e| number_of(e.tid))
        .collect()
}

/// Scan everything and mark, leaf by leaf, the entries `dead` picks; the
/// heap re-check answers `confirm`.
fn kill_where(
    ctx: &mut HeapContext<'_, '_>,
    idx: &BtreeIndex,
    dead: impl Fn(u64) -> bool,
    confirm: impl Fn(u64) -> bool,
) -> usize {
    let entries = scan(ctx, idx, ScanRange::all(), ScanDirection::Forward);
    let mut by_leaf: Vec<(crate::types::BlockNumber, Vec<_>)> = Vec::new();
    for e in entries.iter().filter(|e| dead(number_of(e.tid))) {
        match by_leaf.last_mut() {
            Some((b, items)) if *b == e.blk => items.push((e.off, e.tid)),
            _ => by_leaf.push((e.blk, vec![(e.off, e.tid)])),
        }
    }
    let mut marked = 0;
    for (blk, items) in by_leaf {
        marked += bt_kill_items(ctx, idx, blk, &items, &mut |_, t| Ok(confirm(number_of(t))))
            .expect("kill items");
    }
    marked
}

#[test]
fn marked_entries_are_skipped_only_when_the_heap_confirms() {
    let cluster = cluster(128, 1);
    let mut b = cluster.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for i in 0..1000u64 {
            insert(ctx, &idx, &int4(i as i32), tid(i));
        }
        // The scan thinks every even entry is dead; the heap re-check only
        // confirms multiples of 4 (the others came back to life: K2).
        let marked = kill_where(ctx, &idx, |i| i % 2 == 0, |i| i % 4 == 0);
        assert_eq!(marked, 250);
        let left: Vec<u64> = (0..1000).filter(|i| i % 4 != 0).collect();
        assert_eq!(numbers(ctx, &idx), left);
        let mut back: Vec<u64> = scan(ctx, &idx, ScanRange::all(), ScanDirection::Backward)
            .iter()
            .map(|e| number_of(e.tid))
            .collect();
        back.reverse();
        assert_eq!(back, left);
        // Marks are hints: the tree's entries are all still there.
        assert_eq!(verify(ctx, &idx).leaf_entries, 1000);
    });
}

#[test]
fn marks_find_entries_that_moved_on_the_page() {
    let cluster = cluster(64, 1);
    let mut b = cluster.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for i in (0..100u64).map(|i| i * 10) {
            insert(ctx, &idx, &int4(i as i32), tid(i));
        }
        let entries = scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward);
        let target = entries.iter().find(|e| number_of(e.tid) == 500).unwrap();
        // Entries inserted before it shift its offset.
        for i in [1u64, 2, 3, 11, 12] {
            insert(ctx, &idx, &int4(i as i32), tid(i));
        }
        let n = bt_kill_items(
            ctx,
            &idx,
            target.blk,
            &[(target.off, target.tid)],
            &mut |_, _| Ok(true),
        )
        .unwrap();
        assert_eq!(n, 1);
        let got = numbers(ctx, &idx);
        assert!(!got.contains(&500));
        assert_eq!(got.len(), 104);
    });
}

#[test]
fn a_full_leaf_drops_marked_entries_instead_of_splitting() {
    // An int4 leaf entry takes 16 bytes plus a 4-byte line pointer: about
    // 400 fit on a page, so 300 + 300 would need a split.
    let cluster = cluster(64, 1);
    let mut b = cluster.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for i in 0..300 {
            insert(ctx, &idx, &int4(7), tid(i));
        }
        assert_eq!(verify(ctx, &idx).pages_per_level, vec![1]);
        // All but the newest 10 versions are dead, as after many updates.
        let marked = kill_where(ctx, &idx, |i| i < 290, |_| true);
        assert_eq!(marked, 290);
        for i in 300..600 {
            insert(ctx, &idx, &int4(7), tid(i));
        }
        let shape = verify(ctx, &idx);
        assert_eq!(shape.pages_per_level, vec![1], "no split: the marked went");
        assert_eq!(shape.leaf_entries, 310);
        assert_eq!(numbers(ctx, &idx), (290..600).collect::<Vec<_>>());
    });
}

#[test]
fn a_mark_after_a_checkpoint_logs_the_page_image_and_replays() {
    let cluster = cluster(64, 1);
    let mut b = cluster.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for i in 0..300 {
            insert(ctx, &idx, &int4(i as i32), tid(i));
        }
        // Marks before any checkpoint: hints only, nothing logged.
        assert_eq!(kill_where(ctx, &idx, |i| i < 10, |_| true), 10);
    });
    let before = index_records(cluster.read_wal()).len();
    b.wal.advance_redo_ptr();
    b.with_ctx(|ctx| {
        assert_eq!(
            kill_where(ctx, &idx, |i| (10..20).contains(&i), |_| true),
            10
        );
        // A second mark in the same cycle logs nothing more.
        assert_eq!(
            kill_where(ctx, &idx, |i| (20..30).contains(&i), |_| true),
            10
        );
        // Then the marked entries are removed by an insert into a full leaf.
        for i in 300..500 {
            insert(ctx, &idx, &int4(i as i32), tid(i));
        }
    });
    let records = index_records(cluster.read_wal());
    let hints: Vec<_> = records[before..]
        .iter()
        .filter(|r| r.record.info() == super::xlog::XLOG_BTREE_VACUUM)
        .collect();
    let offsetless = hints
        .iter()
        .filter(|r| r.record.main_data() == 0u16.to_le_bytes())
        .count();
    assert_eq!(
        offsetless, 1,
        "only the first mark after the checkpoint is logged"
    );
    assert!(
        hints[0].record.blocks().any(|blk| blk.has_image()),
        "with the page's image"
    );
    // Replaying the whole WAL gives the same pages and the same scan.
    let original = index_pages(&b.buffers, &mut b.smgr, &b.wal);
    let target = replay_target(64);
    let mut buffers = crate::buffer::BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records, &mut buffers, &mut smgr);
    let replayed = index_pages(
        &buffers,
        &mut smgr,
        &crate::heap::test_support::no_wal_flush,
    );
    assert_eq!(original.len(), replayed.len());
    with_other_pool(&b, &buffers, &mut smgr, |ctx| {
        let got = numbers(ctx, &idx);
        assert!(got.iter().all(|&i| i >= 10), "no marked entry comes back");
        assert_eq!(got.len(), 500 - 30);
    });
}
