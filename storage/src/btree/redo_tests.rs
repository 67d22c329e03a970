//! Crash safety of the btree: a workload runs on one cluster, then its WAL
//! is replayed into a fresh buffer pool (the crash lost every page that
//! was not written) or onto the files as a checkpoint left them; the
//! replayed index must equal the original byte for byte, scan the same,
//! and pass `bt_verify`. Each test states one rule of `xlog.rs` (X1-X4)
//! or `insert.rs` (I5).

use super::test_support::*;
use super::xlog::XlBtreeSplit;
use super::*;
use crate::buffer::BufferManager;
use crate::heap::test_support::{no_wal_flush, smgr_options, Backend, ReplayTarget};
use crate::heap::HeapContext;
use crate::page::Page;
use crate::smgr::Smgr;
use crate::types::{ForkNumber, Lsn};
use crate::wal::{ReadRecord, ResourceManager};

const NBUFFERS: usize = 256;

/// Inserts 4000 wide keys in random order (three levels, root splits),
/// calling `at_checkpoint` with a new redo pointer after the first 1500.
fn workload(
    b: &mut Backend<'_>,
    idx: &BtreeIndex,
    mut at_checkpoint: impl FnMut(&mut Backend<'_>, Lsn),
) {
    let mut keys: Vec<u64> = (0..4000).collect();
    XorShift(31337).shuffle(&mut keys);
    b.with_ctx(|ctx| bt_create_empty(ctx, idx).unwrap());
    for (n, chunk) in keys.chunks(1500).enumerate() {
        if n == 1 {
            let redo = b.wal.advance_redo_ptr();
            at_checkpoint(b, redo);
        }
        b.with_ctx(|ctx| {
            for &k in chunk {
                insert(ctx, idx, &text(&wide_text(k)), tid(k));
            }
        });
    }
}

fn all_entries(ctx: &mut HeapContext<'_, '_>, idx: &BtreeIndex) -> Vec<IndexEntry> {
    scan(ctx, idx, ScanRange::all(), ScanDirection::Forward)
}

/// Replays `records` into `target` and checks it against `b`'s index.
fn check_replay(
    b: &mut Backend<'_>,
    idx: &BtreeIndex,
    target: &ReplayTarget,
    records: &[ReadRecord],
) {
    let original = index_pages(&b.buffers, &mut b.smgr, &b.wal);
    let expected = b.with_ctx(|ctx| all_entries(ctx, idx));
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(records, &mut buffers, &mut smgr);
    assert_same_pages(&original, &index_pages(&buffers, &mut smgr, &no_wal_flush));
    // X3: replaying everything again changes nothing.
    replay(records, &mut buffers, &mut smgr);
    assert_same_pages(&original, &index_pages(&buffers, &mut smgr, &no_wal_flush));
    with_other_pool(b, &buffers, &mut smgr, |ctx| {
        assert_eq!(all_entries(ctx, idx), expected);
        assert_eq!(verify(ctx, idx).leaf_entries, expected.len());
    });
    // Written out and read back, the pages pass their checks.
    buffers
        .flush_relation_buffers(&mut smgr, &no_wal_flush, INDEX_REL)
        .unwrap();
    buffers
        .drop_relation_buffers(INDEX_REL, ForkNumber::Main, crate::types::BlockNumber(0))
        .unwrap();
    assert_same_pages(&original, &index_pages(&buffers, &mut smgr, &no_wal_flush));
}

#[test]
fn replay_into_an_empty_pool_rebuilds_the_index_byte_for_byte() {
    let c = cluster(NBUFFERS, 1);
    let mut b = c.backend(0);
    let idx = text_index();
    workload(&mut b, &idx, |_, _| {});
    let records = index_records(c.read_wal());
    let ops = |info: u8| {
        records
            .iter()
            .filter(|r| r.record.rmgr() == ResourceManager::Btree && r.record.info() == info)
            .count()
    };
    assert!(ops(XLOG_BTREE_SPLIT_L) + ops(XLOG_BTREE_SPLIT_R) > 50);
    assert!(ops(XLOG_BTREE_INSERT_UPPER) > 50);
    assert_eq!(
        ops(XLOG_BTREE_NEWROOT),
        3,
        "the first root and two root splits"
    );
    // X2: the first change of each existing page after the checkpoint
    // carries its image.
    assert!(records
        .iter()
        .any(|r| r.record.blocks().any(|blk| blk.has_image())));
    check_replay(&mut b, &idx, &replay_target(NBUFFERS), &records);
}

#[test]
fn replay_from_the_redo_pointer_onto_the_checkpointed_files_recovers_the_index() {
    let c = cluster(NBUFFERS, 1);
    let mut b = c.backend(0);
    let idx = text_index();
    let mut checkpoint = None;
    workload(&mut b, &idx, |b, redo| {
        // The checkpoint writes every dirty page; the files are then
        // copied, as a crash after it would leave them.
        b.buffers
            .flush_relation_buffers(&mut b.smgr, &b.wal, INDEX_REL)
            .unwrap();
        let dir = replay_target(NBUFFERS).dir;
        let path = crate::smgr::relpath(INDEX_REL, ForkNumber::Main);
        std::fs::copy(c.dir.path().join(&path), dir.path().join(&path)).unwrap();
        checkpoint = Some((redo, dir));
    });
    let (redo, dir) = checkpoint.unwrap();
    let records: Vec<_> = index_records(c.read_wal())
        .into_iter()
        .filter(|r| r.start >= redo)
        .collect();
    check_replay(
        &mut b,
        &idx,
        &ReplayTarget::with_dir(NBUFFERS, dir),
        &records,
    );
}

#[test]
fn a_bulk_build_is_replayed_from_its_page_images() {
    let c = cluster(64, 1);
    let mut b = c.backend(0);
    let idx = pair_index();
    let entries: Vec<BuildEntry> = (0..30_000u64)
        .map(|i| BuildEntry {
            values: vec![
                Some(crate::heap::datum::Datum::Int4((i % 977) as i32)),
                Some(crate::heap::datum::Datum::Text(format!("x{}", i % 13))),
            ],
            tid: tid(i),
            alive: true,
        })
        .collect();
    b.with_ctx(|ctx| bt_build(ctx, &idx, entries, false).unwrap());
    let records = index_records(c.read_wal());
    assert!(records
        .iter()
        .all(|r| r.record.rmgr() == ResourceManager::Xlog));
    check_replay(&mut b, &idx, &replay_target(64), &records);
}

#[test]
fn a_crash_between_a_split_and_its_downlink_leaves_a_split_the_next_insert_finishes() {
    let c = cluster(NBUFFERS, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        for i in 0..3000 {
            insert(ctx, &idx, &int4(i * 2), tid(i as u64));
        }
    });
    let records = index_records(c.read_wal());
    // The last leaf split: the WAL ends right after it (I4's two records,
    // the second lost).
    let cut = records
        .iter()
        .rposition(|r| {
            matches!(r.record.info(), XLOG_BTREE_SPLIT_L | XLOG_BTREE_SPLIT_R)
                && XlBtreeSplit::decode(r.record.main_data()).unwrap().level == 0
        })
        .unwrap();
    assert_eq!(records[cut + 1].record.info(), XLOG_BTREE_INSERT_UPPER);
    let survived = &records[..=cut];
    let entries = survived
        .iter()
        .filter(|r| {
            matches!(
                r.record.info(),
                XLOG_BTREE_INSERT_LEAF | XLOG_BTREE_SPLIT_L | XLOG_BTREE_SPLIT_R
            ) && (r.record.info() == XLOG_BTREE_INSERT_LEAF
                || XlBtreeSplit::decode(r.record.main_data()).unwrap().level == 0)
        })
        .count();

    let target = replay_target(NBUFFERS);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(survived, &mut buffers, &mut smgr);
    with_other_pool(&b, &buffers, &mut smgr, |ctx| {
        // A correct Lehman-Yao tree: the right half is reached by its link.
        let shape = verify(ctx, &idx);
        assert_eq!((shape.incomplete_splits, shape.leaf_entries), (1, entries));
        let got = all_entries(ctx, &idx);
        assert_eq!(got.len(), entries);
        let last = 2 * (entries as i32 - 1);
        let found = scan(
            ctx,
            &idx,
            ScanRange::equal(int4(last)),
            ScanDirection::Forward,
        );
        assert_eq!(found.len(), 1, "the newest key, on the right half");
        // I5: the next insert that passes the flag finishes the split.
        insert(ctx, &idx, &int4(last + 1), tid(100_000));
        let shape = verify(ctx, &idx);
        assert_eq!(
            (shape.incomplete_splits, shape.leaf_entries),
            (0, entries + 1)
        );
    });
}

#[test]
fn a_record_for_an_index_dropped_later_is_skipped() {
    let c = cluster(16, 1);
    let mut b = c.backend(0);
    let idx = int4_index();
    b.with_ctx(|ctx| {
        bt_create_empty(ctx, &idx).unwrap();
        insert(ctx, &idx, &int4(1), tid(1));
        insert(ctx, &idx, &int4(2), tid(2));
    });
    let records = index_records(c.read_wal());
    let last = records.last().unwrap();
    assert_eq!(last.record.info(), XLOG_BTREE_INSERT_LEAF);
    // X4: replay recreated the file empty (it is dropped later): the insert
    // into a page that is not there is skipped, not an error.
    let target = replay_target(16);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = Smgr::new(target.dir.path(), smgr_options());
    replay([last], &mut buffers, &mut smgr);
    let pages = index_pages(&buffers, &mut smgr, &no_wal_flush);
    assert!(pages.iter().all(|p| Page::new(&**p).is_new()));
}
