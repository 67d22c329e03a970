//! The buffer manager in one process: each test states one rule from the
//! module header and checks it against the files on disk.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Barrier;

use pgerror::{PgError, SqlState};

use super::test_support::*;
use super::*;
use crate::page::{page_checksum, verify_page, Page};
use crate::smgr::Smgr;
use crate::types::{BlockNumber, Lsn, BLCKSZ};

fn blk(n: u32) -> BlockNumber {
    BlockNumber(n)
}

fn tag(n: u32) -> BufferTag {
    BufferTag::new(REL, MAIN, blk(n))
}

fn state_of(mgr: &BufferManager<'_>, n: u32) -> BufState {
    let id = mgr.pool().lookup(&tag(n)).expect("block is buffered");
    mgr.pool().buffer_info(id).state
}

/// Change block `n`: counter 1 of its special space := `value`, LSN := `lsn`.
fn modify(mgr: &BufferManager<'_>, smgr: &mut Smgr, n: u32, value: u64, lsn: Lsn) {
    let buf = mgr
        .read_buffer(smgr, &no_wal, REL, MAIN, blk(n))
        .expect("read");
    let mut page = buf.lock_exclusive();
    set_special_u64(&mut page, 1, value);
    Page::new(&mut *page).set_lsn(lsn);
    page.mark_dirty();
}

#[test]
fn a_zeroed_region_after_init_is_an_empty_pool() {
    let region = pool_region(4);
    let pool = region.pool(4);
    assert!(pool.is_initialized());
    assert!(!SharedRegion::new(shmem_size_bytes(4))
        .pool(4)
        .is_initialized());
    for i in 0..4 {
        let info = pool.buffer_info(BufferId(i));
        assert_eq!((info.tag, info.state.0), (None, 0));
    }
    assert_eq!(pool.lookup(&tag(0)), None);
}

#[test]
fn read_modify_flush_round_trips_through_the_files() {
    let (dir, mut smgr) = data_dir();
    let region = pool_region(8);
    let mgr = BufferManager::new(region.pool(8));
    for b in 0..3 {
        let mut page = mgr
            .extend_buffer(&mut smgr, &no_wal, REL, MAIN)
            .expect("extend");
        assert_eq!(page.block(), blk(b));
        assert!(page.iter().all(|&x| x == 0), "a new block is zeroed");
        format_page(&mut page, 100 + u64::from(b));
        page.mark_dirty();
    }
    assert_eq!(smgr.nblocks(REL, MAIN).unwrap(), 3);
    assert_eq!(
        mgr.flush_relation_buffers(&mut smgr, &no_wal, REL).unwrap(),
        3
    );
    for b in 0..3 {
        let page = disk_page(dir.path(), b);
        verify_page(&page, blk(b)).expect("written pages verify");
        assert_eq!(special_u64(&page, 0), 100 + u64::from(b));
    }
    // Forget the buffers and read the blocks back from disk.
    assert_eq!(mgr.drop_relation_buffers(REL, MAIN, blk(0)).unwrap(), 3);
    for b in 0..3 {
        let buf = mgr
            .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(b))
            .unwrap();
        assert_eq!(special_u64(&buf.lock_shared(), 0), 100 + u64::from(b));
    }
    modify(&mgr, &mut smgr, 1, 42, Lsn::INVALID);
    let stats = mgr
        .checkpoint_buffers(&mut smgr, &no_wal, |_, _| {})
        .unwrap();
    assert_eq!((stats.buffers_to_write, stats.buffers_written), (1, 1));
    assert_eq!(special_u64(&disk_page(dir.path(), 1), 1), 42);
    assert!(!state_of(&mgr, 1).has(BM_DIRTY));
    assert_eq!(mgr.pinned_buffer_count(), 0);
}

#[test]
fn repeated_pins_touch_the_shared_refcount_once() {
    let (_dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    let a = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let b = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let c = a.clone();
    assert_eq!(a.id(), b.id());
    assert_eq!(mgr.private_pins(a.id()), 3);
    assert_eq!(mgr.pool().buffer_info(a.id()).state.refcount(), 1);
    let id = c.into_raw();
    drop((a, b));
    assert_eq!(mgr.pool().buffer_info(id).state.refcount(), 1);
    mgr.unpin(id);
    assert_eq!(mgr.pool().buffer_info(id).state.refcount(), 0);
    assert_eq!(mgr.pinned_buffer_count(), 0);
}

#[test]
#[should_panic(expected = "taken twice by one process")]
fn taking_a_content_lock_twice_is_caught_before_it_deadlocks() {
    let (_dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    let buf = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let _first = buf.lock_shared();
    let _second = buf.lock_shared();
}

#[test]
fn a_pool_of_four_serves_twenty_blocks_by_eviction() {
    let (dir, smgr) = data_dir();
    let io = IoCounters::default();
    let mut storage = TestStorage { smgr, io: &io };
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    for b in 0..20u32 {
        let mut page = mgr.extend_buffer(&mut storage, &no_wal, REL, MAIN).unwrap();
        format_page(&mut page, 1000 + u64::from(b));
        page.mark_dirty();
    }
    // Sixteen dirty pages were evicted (written) to make room.
    assert_eq!(io.writes.load(Ordering::SeqCst), 16);
    for round in 0..2 {
        let order: Vec<u32> = if round == 0 {
            (0..20).collect()
        } else {
            (0..20).map(|i| (i * 7) % 20).collect()
        };
        for b in order {
            let buf = mgr
                .read_buffer(&mut storage, &no_wal, REL, MAIN, blk(b))
                .unwrap();
            assert_eq!(special_u64(&buf.lock_shared(), 0), 1000 + u64::from(b));
            let mapped = (0..20).filter(|&t| mgr.pool().lookup(&tag(t)).is_some());
            assert!(mapped.count() <= 4, "at most four blocks are buffered");
        }
    }
    assert!(
        io.reads.load(Ordering::SeqCst) >= 36,
        "evicted blocks are read again"
    );
    mgr.checkpoint_buffers(&mut storage, &no_wal, |_, _| {})
        .unwrap();
    for b in 0..20 {
        assert_eq!(
            special_u64(&disk_page(dir.path(), b), 0),
            1000 + u64::from(b)
        );
    }
}

#[test]
fn evicting_a_dirty_buffer_writes_its_page_first() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 9);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    modify(&mgr, &mut smgr, 0, 777, Lsn::INVALID);
    assert_eq!(
        special_u64(&disk_page(dir.path(), 0), 1),
        0,
        "not written yet"
    );
    for b in 1..9 {
        mgr.read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(b))
            .unwrap();
    }
    assert_eq!(mgr.pool().lookup(&tag(0)), None, "block 0 was evicted");
    let page = disk_page(dir.path(), 0);
    verify_page(&page, blk(0)).expect("the evicted page was written with its checksum");
    assert_eq!(special_u64(&page, 1), 777);
}

#[test]
fn the_wal_is_flushed_up_to_the_page_lsn_before_the_page_is_written() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    modify(&mgr, &mut smgr, 0, 5, Lsn(0x5000));
    // Each flush request, with the LSN the file's page had at that moment.
    let calls: RefCell<Vec<(Lsn, Lsn)>> = RefCell::new(Vec::new());
    let wal = |lsn: Lsn| -> Result<(), PgError> {
        let on_disk = Page::new(&*disk_page(dir.path(), 0)).lsn();
        calls.borrow_mut().push((lsn, on_disk));
        Ok(())
    };
    assert_eq!(mgr.flush_relation_buffers(&mut smgr, &wal, REL).unwrap(), 1);
    let calls = calls.into_inner();
    assert_eq!(calls.len(), 1);
    let (flushed_to, disk_lsn_then) = calls[0];
    assert!(flushed_to >= Lsn(0x5000), "flushed to {flushed_to}");
    assert_eq!(
        disk_lsn_then,
        Lsn::INVALID,
        "the file still held the old page"
    );
    assert_eq!(Page::new(&*disk_page(dir.path(), 0)).lsn(), Lsn(0x5000));
}

#[test]
fn a_failed_wal_flush_leaves_the_page_dirty_and_unwritten() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    modify(&mgr, &mut smgr, 0, 9, Lsn(77));
    let failing = |_: Lsn| Err(PgError::internal("WAL is gone"));
    let err = mgr
        .flush_relation_buffers(&mut smgr, &failing, REL)
        .expect_err("no write without WAL");
    assert!(
        matches!(err, BufferError::WalFlush { lsn: Lsn(77), .. }),
        "{err:?}"
    );
    assert_eq!(err.to_pg_error().message, "WAL is gone");
    assert_eq!(special_u64(&disk_page(dir.path(), 0), 1), 0);
    assert!(state_of(&mgr, 0).has(BM_DIRTY | BM_IO_ERROR));
}

#[test]
fn checksums_are_set_on_write_and_a_corrupt_page_is_an_error() {
    let (dir, smgr) = data_dir();
    let io = IoCounters::default();
    let mut storage = TestStorage { smgr, io: &io };
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    for _ in 0..3 {
        let mut page = mgr.extend_buffer(&mut storage, &no_wal, REL, MAIN).unwrap();
        format_page(&mut page, 7);
        page.mark_dirty();
    }
    mgr.checkpoint_buffers(&mut storage, &no_wal, |_, _| {})
        .unwrap();
    let page = disk_page(dir.path(), 2);
    assert_eq!(Page::new(&*page).checksum(), page_checksum(&page, blk(2)));
    assert_ne!(Page::new(&*page).checksum(), 0);

    // Flip one byte of block 2 on disk, behind the pool's back.
    let path = dir.path().join("base/5/16384");
    let mut file = std::fs::read(&path).unwrap();
    file[2 * BLCKSZ + 100] ^= 0xFF;
    std::fs::write(&path, file).unwrap();
    mgr.drop_relation_buffers(REL, MAIN, blk(0)).unwrap();

    let reads_before = io.reads.load(Ordering::SeqCst);
    for _ in 0..2 {
        let err = mgr
            .read_buffer(&mut storage, &no_wal, REL, MAIN, blk(2))
            .expect_err("a corrupt page is an error");
        let pg = err.to_pg_error();
        assert_eq!(pg.code, SqlState::DATA_CORRUPTED);
        assert_eq!(
            pg.message,
            "invalid page in block 2 of relation base/5/16384"
        );
        let s = state_of(&mgr, 2);
        assert!(
            !s.has(BM_VALID) && s.has(BM_IO_ERROR) && s.refcount() == 0,
            "{s:?}"
        );
    }
    assert_eq!(
        io.reads.load(Ordering::SeqCst),
        reads_before + 2,
        "each reader retries"
    );
    let ok = mgr
        .read_buffer(&mut storage, &no_wal, REL, MAIN, blk(1))
        .unwrap();
    assert_eq!(special_u64(&ok.lock_shared(), 0), 7);
}

#[test]
fn drop_relation_buffers_forgets_pages_without_writing_them() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 5);
    let region = pool_region(8);
    let mgr = BufferManager::new(region.pool(8));
    for b in 0..5 {
        modify(&mgr, &mut smgr, b, 500 + u64::from(b), Lsn::INVALID);
    }
    assert_eq!(mgr.drop_relation_buffers(REL, MAIN, blk(3)).unwrap(), 2);
    for b in 0..5 {
        assert_eq!(mgr.pool().lookup(&tag(b)).is_some(), b < 3, "block {b}");
    }
    let stats = mgr
        .checkpoint_buffers(&mut smgr, &no_wal, |_, _| {})
        .unwrap();
    assert_eq!(stats.buffers_written, 3);
    for b in 0..5 {
        let expected = if b < 3 { 500 + u64::from(b) } else { 0 };
        assert_eq!(
            special_u64(&disk_page(dir.path(), b), 1),
            expected,
            "block {b}"
        );
    }
    // Another fork and another relation are untouched.
    assert_eq!(
        mgr.drop_relation_buffers(REL, crate::types::ForkNumber::Fsm, blk(0))
            .unwrap(),
        0
    );
}

#[test]
fn drop_relation_buffers_refuses_a_buffer_this_process_pins() {
    let (_dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    let _pin = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let err = mgr.drop_relation_buffers(REL, MAIN, blk(0)).unwrap_err();
    assert!(matches!(err, BufferError::PinnedByThisProcess { .. }));
}

#[test]
fn concurrent_readers_of_a_missing_page_share_one_buffer_and_one_read() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let pool = region.pool(4);
    let io = IoCounters::default();
    io.read_delay_us.store(50_000, Ordering::SeqCst);
    let start = Barrier::new(4);
    let ids: Vec<BufferId> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mgr = BufferManager::new(pool);
                    let mut storage = TestStorage {
                        smgr: Smgr::new(dir.path(), smgr_options()),
                        io: &io,
                    };
                    start.wait();
                    let buf = mgr
                        .read_buffer(&mut storage, &no_wal, REL, MAIN, blk(0))
                        .unwrap();
                    assert_eq!(special_u64(&buf.lock_shared(), 0), 0);
                    buf.id()
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|&id| id == ids[0]), "{ids:?}");
    assert_eq!(io.reads.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_write_leaves_the_buffer_dirty_with_io_error() {
    let (dir, smgr) = data_dir();
    let io = IoCounters::default();
    let mut storage = TestStorage { smgr, io: &io };
    write_blocks(&mut storage.smgr, 1);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    let buf = mgr
        .read_buffer(&mut storage, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let mut page = buf.lock_exclusive();
    set_special_u64(&mut page, 1, 31);
    page.mark_dirty();
    drop(page);
    io.fail_writes.store(true, Ordering::SeqCst);
    let err = mgr
        .flush_relation_buffers(&mut storage, &no_wal, REL)
        .unwrap_err();
    assert!(err.to_string().contains("could not write block 0"), "{err}");
    assert!(state_of(&mgr, 0).has(BM_DIRTY | BM_IO_ERROR | BM_VALID));
    assert_eq!(special_u64(&disk_page(dir.path(), 0), 1), 0);
    io.fail_writes.store(false, Ordering::SeqCst);
    assert_eq!(
        mgr.flush_relation_buffers(&mut storage, &no_wal, REL)
            .unwrap(),
        1
    );
    let s = state_of(&mgr, 0);
    assert!(!s.has(BM_DIRTY) && !s.has(BM_IO_ERROR), "{s:?}");
    assert_eq!(special_u64(&disk_page(dir.path(), 0), 1), 31);
}

#[test]
fn a_checkpoint_writes_what_was_dirty_when_it_started() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 6);
    let region = pool_region(8);
    let mgr = BufferManager::new(region.pool(8));
    for b in 0..4 {
        modify(&mgr, &mut smgr, b, 10 + u64::from(b), Lsn::INVALID);
    }
    let mut other = Smgr::new(dir.path(), smgr_options());
    let mut seen = Vec::new();
    let stats = mgr
        .checkpoint_buffers(&mut smgr, &no_wal, |done, total| {
            if done == 1 {
                // Dirtied after the marking: not this checkpoint's business.
                modify(&mgr, &mut other, 5, 99, Lsn::INVALID);
            }
            seen.push((done, total));
        })
        .unwrap();
    assert_eq!(
        stats,
        CheckpointBufferStats {
            buffers_to_write: 4,
            buffers_written: 4
        }
    );
    assert_eq!(seen, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    for b in 0..4 {
        assert_eq!(special_u64(&disk_page(dir.path(), b), 1), 10 + u64::from(b));
        assert!(!state_of(&mgr, b).has(BM_CHECKPOINT_NEEDED));
    }
    assert!(state_of(&mgr, 5).has(BM_DIRTY));
    assert_eq!(special_u64(&disk_page(dir.path(), 5), 1), 0);
}

#[test]
fn the_bgwriter_writes_only_unpinned_unused_dirty_buffers() {
    let (_dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 8);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    for b in 0..4 {
        modify(&mgr, &mut smgr, b, 1, Lsn::INVALID);
    }
    // All four were used once: nothing for the bgwriter yet.
    let stats = mgr
        .bgwriter_lru_pass(
            &mut smgr,
            &no_wal,
            mgr.pool().clock_ticks(),
            mgr.pool().nbuffers(),
            10,
            usize::MAX,
        )
        .unwrap();
    assert_eq!((stats.buffers_written, stats.buffers_reusable), (0, 0));
    // Block 0 stays pinned; reading block 4 sweeps the usage counts to 0
    // and evicts one buffer (writing it).
    let pinned = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    mgr.read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(4))
        .unwrap();
    fn dirty(mgr: &BufferManager<'_>) -> usize {
        let is_dirty = |id| mgr.pool().buffer_info(id).state.has(BM_DIRTY);
        (0..4)
            .filter(|&b| mgr.pool().lookup(&tag(b)).is_some_and(is_dirty))
            .count()
    }
    assert_eq!(dirty(&mgr), 3, "blocks 0, 2, 3 are dirty");
    let none = mgr
        .bgwriter_lru_pass(
            &mut smgr,
            &no_wal,
            mgr.pool().clock_ticks(),
            mgr.pool().nbuffers(),
            10,
            0,
        )
        .unwrap();
    assert_eq!(
        (none.buffers_scanned, none.buffers_written),
        (0, 0),
        "no reusable buffer wanted: nothing to look at"
    );
    let first = mgr
        .bgwriter_lru_pass(
            &mut smgr,
            &no_wal,
            mgr.pool().clock_ticks(),
            mgr.pool().nbuffers(),
            1,
            usize::MAX,
        )
        .unwrap();
    assert_eq!(first.buffers_written, 1, "max_pages bounds a pass");
    let second = mgr
        .bgwriter_lru_pass(
            &mut smgr,
            &no_wal,
            mgr.pool().clock_ticks(),
            mgr.pool().nbuffers(),
            10,
            usize::MAX,
        )
        .unwrap();
    assert_eq!(second.buffers_written, 1);
    assert_eq!(dirty(&mgr), 1, "only the pinned block 0 stays dirty");
    assert!(state_of(&mgr, 0).has(BM_DIRTY));
    drop(pinned);
}

#[test]
fn pinning_every_buffer_yourself_is_an_error_not_a_hang() {
    let (_dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 3);
    let region = pool_region(2);
    let mgr = BufferManager::new(region.pool(2));
    let _a = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let _b = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(1))
        .unwrap();
    let err = mgr
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(2))
        .unwrap_err();
    assert!(matches!(err, BufferError::NoUnpinnedBuffers));
    assert_eq!(err.to_pg_error().message, "no unpinned buffers available");
}

#[test]
fn zero_and_lock_gives_a_locked_zeroed_page_without_reading() {
    let (dir, smgr) = data_dir();
    let io = IoCounters::default();
    let mut storage = TestStorage { smgr, io: &io };
    write_blocks(&mut storage.smgr, 2);
    let region = pool_region(4);
    let mgr = BufferManager::new(region.pool(4));
    let mut page = mgr
        .read_buffer_zero_and_lock(&mut storage, &no_wal, REL, MAIN, blk(1))
        .unwrap();
    assert!(page.iter().all(|&b| b == 0));
    assert_eq!(io.reads.load(Ordering::SeqCst), 0);
    format_page(&mut page, 4242);
    Page::new(&mut *page).set_lsn(Lsn(9));
    page.mark_dirty();
    drop(page);
    // A valid buffer is returned as it is, locked.
    let again = mgr
        .read_buffer_zero_and_lock(&mut storage, &no_wal, REL, MAIN, blk(1))
        .unwrap();
    assert_eq!(special_u64(&again, 0), 4242);
    drop(again);
    mgr.checkpoint_buffers(&mut storage, &no_wal, |_, _| {})
        .unwrap();
    assert_eq!(special_u64(&disk_page(dir.path(), 1), 0), 4242);
}

#[test]
fn a_cleanup_lock_needs_the_only_pin() {
    let (_dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(4);
    let (a, b) = (
        BufferManager::new(region.pool(4)),
        BufferManager::new(region.pool(4)),
    );
    let mine = a
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let theirs = b
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    let _extra = mine.clone();
    assert!(
        mine.try_lock_for_cleanup().is_none(),
        "another process pins it"
    );
    drop(theirs);
    assert!(mine.try_lock_for_cleanup().is_some());
    let shared = mine.lock_shared();
    let other = b
        .read_buffer(&mut smgr, &no_wal, REL, MAIN, blk(0))
        .unwrap();
    assert!(
        other.try_lock_exclusive().is_none(),
        "excluded by a shared lock"
    );
    drop(shared);
    assert!(other.try_lock_exclusive().is_some());
}
