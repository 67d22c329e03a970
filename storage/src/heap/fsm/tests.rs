//! The free space map's rules F1-F4, one test each where a test can show
//! them, on the heap tests' one-process cluster.

use super::*;
use crate::heap::test_support::{Backend, Cluster, REL};
use crate::page::verify_page;
use crate::smgr::relpath;

fn fsm_pages(b: &mut Backend<'_>) -> u32 {
    b.with_ctx(|ctx| fsm_nblocks(ctx, REL)).unwrap()
}

/// Writes the map's dirty pages and forgets its buffers, so the next
/// access reads the file.
fn flush_and_forget(b: &mut Backend<'_>) {
    b.buffers
        .flush_relation_buffers(&mut b.smgr, &b.wal, REL)
        .unwrap();
    b.buffers
        .drop_relation_buffers(REL, ForkNumber::Fsm, BlockNumber(0))
        .unwrap();
}

#[test]
fn categories_round_down_and_searches_round_up() {
    assert_eq!(fsm_category(0), 0);
    assert_eq!(fsm_category(31), 0);
    assert_eq!(fsm_category(32), 1);
    assert_eq!(fsm_category(8156), 254);
    assert_eq!(fsm_category(100_000), 255);
    assert_eq!(needed_category(1), Some(1));
    assert_eq!(needed_category(32), Some(1));
    assert_eq!(needed_category(33), Some(2));
    assert_eq!(needed_category(255 * 32), Some(255));
    assert_eq!(needed_category(255 * 32 + 1), None);
}

#[test]
fn a_map_is_created_only_when_it_has_something_to_say() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    b.with_ctx(|ctx| {
        assert_eq!(fsm_search(ctx, REL, 100).unwrap(), None, "no fork: no page");
        fsm_record(ctx, REL, BlockNumber(3), 10).unwrap();
    });
    assert!(
        !b.smgr.exists(REL, ForkNumber::Fsm).unwrap(),
        "0 needs no map"
    );
    b.with_ctx(|ctx| fsm_record(ctx, REL, BlockNumber(3), 4000))
        .unwrap();
    assert!(b.smgr.exists(REL, ForkNumber::Fsm).unwrap());
    assert_eq!(fsm_pages(&mut b), 2, "root and the first leaf");
    b.with_ctx(|ctx| {
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(3)).unwrap(), 4000);
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(4)).unwrap(), 0);
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(900_000)).unwrap(), 0);
    });
}

#[test]
fn search_finds_the_lowest_block_with_enough_room() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    b.with_ctx(|ctx| {
        for (blk, free) in [(7, 500), (2, 100), (9, 3000), (5, 2000)] {
            fsm_record(ctx, REL, BlockNumber(blk), free).unwrap();
        }
        let find = |ctx: &mut HeapContext<'_, '_>, need| fsm_search(ctx, REL, need).unwrap();
        assert_eq!(find(ctx, 64), Some(BlockNumber(2)));
        assert_eq!(
            find(ctx, 101),
            Some(BlockNumber(5)),
            "100 rounds down to 96"
        );
        assert_eq!(find(ctx, 1000), Some(BlockNumber(5)));
        assert_eq!(
            find(ctx, 1985),
            Some(BlockNumber(9)),
            "2000 rounds down to 1984"
        );
        assert_eq!(find(ctx, 3001), None);
        // A page found full is recorded so; the next search moves on.
        fsm_record(ctx, REL, BlockNumber(5), 0).unwrap();
        assert_eq!(find(ctx, 1000), Some(BlockNumber(9)));
    });
}

#[test]
fn blocks_of_later_leaves_are_found_through_the_root() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    let far = BlockNumber(2 * FSM_SLOTS as u32 + 17);
    b.with_ctx(|ctx| {
        fsm_record(ctx, REL, BlockNumber(1), 200).unwrap();
        fsm_record(ctx, REL, far, 5000).unwrap();
        assert_eq!(fsm_search(ctx, REL, 150).unwrap(), Some(BlockNumber(1)));
        assert_eq!(fsm_search(ctx, REL, 4000).unwrap(), Some(far));
    });
    assert_eq!(fsm_pages(&mut b), 4, "root and leaves 0..=2");
}

#[test]
fn a_root_bound_that_is_too_high_is_lowered_by_the_search_f2() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    b.with_ctx(|ctx| {
        fsm_record(ctx, REL, BlockNumber(3), 6000).unwrap();
        fsm_record(ctx, REL, BlockNumber(4), 1000).unwrap();
        fsm_record(ctx, REL, BlockNumber(3), 0).unwrap();
        let root_slot = |ctx: &mut HeapContext<'_, '_>| {
            let root = lock_shared(ctx, REL, ROOT).unwrap();
            slots(&root).unwrap()[0]
        };
        assert_eq!(
            root_slot(ctx),
            fsm_category(6000),
            "recorders never lower it"
        );
        assert_eq!(fsm_search(ctx, REL, 5000).unwrap(), None);
        assert_eq!(root_slot(ctx), fsm_category(1000), "the search lowered it");
        fsm_record(ctx, REL, BlockNumber(4), 0).unwrap();
        fsm_vacuum(ctx, REL).unwrap();
        assert_eq!(root_slot(ctx), 0, "vacuum makes it exact");
    });
}

#[test]
fn truncation_forgets_blocks_past_the_new_end() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    let far = BlockNumber(FSM_SLOTS as u32 + 5);
    b.with_ctx(|ctx| {
        for blk in [BlockNumber(1), BlockNumber(10), BlockNumber(11), far] {
            fsm_record(ctx, REL, blk, 4000).unwrap();
        }
        fsm_truncate(ctx, REL, 11).unwrap();
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(10)).unwrap(), 4000);
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(11)).unwrap(), 0);
        assert_eq!(fsm_recorded(ctx, REL, far).unwrap(), 0);
        assert_eq!(fsm_search(ctx, REL, 4001).unwrap(), None);
        assert_eq!(fsm_search(ctx, REL, 3000).unwrap(), Some(BlockNumber(1)));
    });
}

#[test]
fn map_pages_pass_the_page_checks_and_survive_eviction() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    b.with_ctx(|ctx| fsm_record(ctx, REL, BlockNumber(42), 1234))
        .unwrap();
    flush_and_forget(&mut b);
    let path = cluster.dir.path().join(relpath(REL, ForkNumber::Fsm));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 2 * BLCKSZ);
    for (i, chunk) in bytes.chunks(BLCKSZ).enumerate() {
        let page: &[u8; BLCKSZ] = chunk.try_into().unwrap();
        verify_page(page, BlockNumber(i as u32)).expect("a valid page on disk");
        assert_eq!(Page::new(page).lsn(), crate::types::Lsn::INVALID, "F4");
    }
    b.with_ctx(|ctx| {
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(42)).unwrap(), 1216);
        assert_eq!(fsm_search(ctx, REL, 1000).unwrap(), Some(BlockNumber(42)));
    });
}

#[test]
fn a_torn_map_page_reads_as_empty_and_is_rewritten_f4() {
    let cluster = Cluster::new(32, 1);
    let mut b = cluster.backend(0);
    b.with_ctx(|ctx| {
        fsm_record(ctx, REL, BlockNumber(1), 3000).unwrap();
        fsm_record(ctx, REL, BlockNumber(2), 3000).unwrap();
    });
    flush_and_forget(&mut b);
    // Tear the leaf: its second half from another time.
    let path = cluster.dir.path().join(relpath(REL, ForkNumber::Fsm));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[BLCKSZ + 6000..2 * BLCKSZ].fill(0x5a);
    std::fs::write(&path, &bytes).unwrap();
    b.smgr.close_all();

    b.with_ctx(|ctx| {
        assert_eq!(fsm_recorded(ctx, REL, BlockNumber(1)).unwrap(), 0, "zeroed");
        assert_eq!(fsm_search(ctx, REL, 100).unwrap(), None);
        fsm_record(ctx, REL, BlockNumber(2), 500).unwrap();
        assert_eq!(fsm_search(ctx, REL, 100).unwrap(), Some(BlockNumber(2)));
    });
    flush_and_forget(&mut b);
    let bytes = std::fs::read(&path).unwrap();
    let leaf: &[u8; BLCKSZ] = bytes[BLCKSZ..].try_into().unwrap();
    verify_page(leaf, BlockNumber(1)).expect("rewritten whole");
}
