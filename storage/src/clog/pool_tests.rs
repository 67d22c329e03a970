//! The buffer pool in one process: each test states one rule of
//! `clog/mod.rs` and checks it through the public operations, looking at the
//! files with a fresh `SlruFiles` where the rule is about the disk.

use super::buffers::shmem_size_bytes;
use super::page::{self, ClogPageNo, PageBytes, SegmentNo, XidStatus};
use super::test_support::{data_dir, shared_pool, FakeWal};
use super::{ClogCheckpointStats, SlruFiles};
use crate::types::{Lsn, Xid, BLCKSZ};
use pgerror::{PgError, SqlState};
use std::cell::Cell;

use XidStatus::{Aborted, Committed, InProgress, SubCommitted};

const PAGE: u64 = 32768;

/// The status of `xid` as the files say, bypassing the pool.
fn on_disk(files: &SlruFiles, xid: Xid) -> XidStatus {
    let mut buf: PageBytes = [0; BLCKSZ];
    files
        .read_page(ClogPageNo::of(xid), &mut buf)
        .expect("read page");
    page::get_status(&buf, xid)
}

#[test]
fn the_pool_size_formula() {
    assert_eq!(shmem_size_bytes(1), 64 + 16448);
    assert_eq!(shmem_size_bytes(128), 2_105_408);
}

#[test]
fn statuses_read_back_with_their_group_lsn() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<4>();
    let clog = pool.attach(&files, &flush);

    assert_eq!(
        clog.get_status(Xid(100)).unwrap(),
        (InProgress, Lsn::INVALID)
    );
    clog.set_status(Xid(100), Committed, Lsn(0x500)).unwrap();
    clog.set_status(Xid(101), Aborted, Lsn::INVALID).unwrap();
    clog.set_status(Xid(102), SubCommitted, Lsn::INVALID)
        .unwrap();
    clog.set_status(Xid(102), Committed, Lsn(0x400)).unwrap();
    // 96..127 are one LSN group: the newest async commit LSN is shared.
    assert_eq!(clog.get_status(Xid(100)).unwrap(), (Committed, Lsn(0x500)));
    assert_eq!(clog.get_status(Xid(101)).unwrap(), (Aborted, Lsn(0x500)));
    assert_eq!(clog.get_status(Xid(102)).unwrap(), (Committed, Lsn(0x500)));
    assert_eq!(
        clog.get_status(Xid(128)).unwrap(),
        (InProgress, Lsn::INVALID)
    );
    assert_eq!(clog.dirty_pages(), vec![ClogPageNo(0)]);
    assert_eq!(
        on_disk(&files, Xid(100)),
        InProgress,
        "nothing is written before it must be"
    );
}

#[test]
fn evicted_pages_are_written_and_read_back() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);

    for p in 0..6 {
        clog.set_status(Xid(p * PAGE + p), Committed, Lsn::INVALID)
            .unwrap();
    }
    assert_eq!(clog.buffered_pages().len(), 2);
    for p in 0..4 {
        assert_eq!(
            on_disk(&files, Xid(p * PAGE + p)),
            Committed,
            "page {p} was evicted"
        );
    }
    for p in 0..6 {
        assert_eq!(clog.get_status(Xid(p * PAGE + p)).unwrap().0, Committed);
        assert_eq!(
            clog.get_status(Xid(p * PAGE + p + 1)).unwrap().0,
            InProgress
        );
    }
    assert_eq!(
        wal.flush_calls.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no async commits"
    );
}

#[test]
fn an_async_commit_reaches_disk_only_after_its_wal() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let xid = Xid(7);
    let seen_on_disk_at_flush = Cell::new(None);
    let flush = |lsn| {
        seen_on_disk_at_flush.set(Some(on_disk(&files, xid)));
        wal.flush(lsn)
    };
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);

    clog.set_status(xid, Committed, Lsn(0x1234)).unwrap();
    clog.set_status(Xid(8), Committed, Lsn(0x1000)).unwrap();
    // Two more pages evict page 0.
    clog.get_status(Xid(PAGE)).unwrap();
    clog.get_status(Xid(2 * PAGE)).unwrap();
    assert_eq!(
        wal.flushed(),
        Lsn(0x1234),
        "flushed to the page's newest commit"
    );
    assert_eq!(
        seen_on_disk_at_flush.get(),
        Some(InProgress),
        "flush came before the write"
    );
    assert_eq!(on_disk(&files, xid), Committed);
    // Read back from disk, the page owes nothing to the WAL any more.
    assert_eq!(clog.get_status(xid).unwrap(), (Committed, Lsn::INVALID));
}

#[test]
fn a_failed_wal_flush_keeps_the_page_dirty_and_unwritten() {
    let (_dir, files) = data_dir();
    let fail = |_lsn| Err(PgError::new(SqlState::IO_ERROR, "WAL is broken"));
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &fail);

    clog.set_status(Xid(5), Committed, Lsn(0x99)).unwrap();
    let err = clog.write_dirty_pages().unwrap_err();
    assert_eq!(PgError::from(err).message, "WAL is broken");
    assert_eq!(clog.dirty_pages(), vec![ClogPageNo(0)]);
    assert_eq!(on_disk(&files, Xid(5)), InProgress);
}

#[test]
fn a_checkpoint_writes_every_dirty_page_and_syncs_evicted_segments() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<3>();
    let clog = pool.attach(&files, &flush);

    // Segment 0 (pages 0, 1), segment 1 (page 32), segment 2 (page 64).
    let xids = [
        Xid(3),
        Xid(PAGE + 9),
        Xid(32 * PAGE + 1),
        Xid(64 * PAGE + 2),
    ];
    for (n, xid) in xids.iter().enumerate() {
        clog.set_status(*xid, Committed, Lsn(100 + n as u64))
            .unwrap();
    }
    // Page 0 was evicted by now (three slots, four pages).
    assert_eq!(on_disk(&files, xids[0]), Committed);
    let stats = clog.write_dirty_pages().unwrap();
    assert_eq!(
        stats,
        ClogCheckpointStats {
            pages_written: 3,
            segments_synced: 3
        }
    );
    assert!(clog.dirty_pages().is_empty());
    for xid in xids {
        assert_eq!(on_disk(&files, xid), Committed);
    }
    assert_eq!(wal.flushed(), Lsn(103));
    // Nothing written since: nothing to do.
    assert_eq!(
        clog.write_dirty_pages().unwrap(),
        ClogCheckpointStats::default()
    );
}

#[test]
fn extend_to_zeroes_a_new_page_over_what_the_file_held() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);
    files
        .write_page(ClogPageNo(3), &[0b1010_1010; BLCKSZ])
        .unwrap(); // all aborted

    clog.extend_to(Xid(3 * PAGE + 1)).unwrap();
    assert_eq!(
        clog.get_status(Xid(3 * PAGE + 1)).unwrap().0,
        Aborted,
        "not a page start: no-op"
    );
    clog.extend_to(Xid(3 * PAGE)).unwrap();
    assert_eq!(clog.get_status(Xid(3 * PAGE + 1)).unwrap().0, InProgress);
    clog.write_dirty_pages().unwrap();
    assert_eq!(on_disk(&files, Xid(3 * PAGE + 5)), InProgress);
}

#[test]
fn the_latest_page_is_never_evicted() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);

    clog.extend_to(Xid(10 * PAGE)).unwrap();
    for p in 0..5 {
        clog.get_status(Xid(p * PAGE)).unwrap();
    }
    assert!(clog.buffered_pages().contains(&ClogPageNo(10)));
    assert_eq!(clog.dirty_pages(), vec![ClogPageNo(10)]);
}

#[test]
fn trim_clears_the_current_page_from_next_xid_on() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);
    let base = 2 * PAGE;
    for off in [0, 1, 5, 6, 7, 100, PAGE - 1] {
        clog.set_status(Xid(base + off), Aborted, Lsn::INVALID)
            .unwrap();
    }
    clog.write_dirty_pages().unwrap();

    // The "new" pool after a restart: next_xid = base + 6.
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);
    clog.trim(Xid(base + 6)).unwrap();
    let expect = [
        (0, Aborted),
        (1, Aborted),
        (5, Aborted),
        (6, InProgress),
        (7, InProgress),
    ];
    for (off, status) in expect
        .into_iter()
        .chain([(100, InProgress), (PAGE - 1, InProgress)])
    {
        assert_eq!(
            clog.get_status(Xid(base + off)).unwrap().0,
            status,
            "xid base+{off}"
        );
    }
    // The trimmed page is the latest: pages 0..3 cannot evict it.
    for p in 0..4 {
        clog.get_status(Xid(p * PAGE + 1)).unwrap();
    }
    assert_eq!(clog.dirty_pages(), vec![ClogPageNo(2)]);
}

#[test]
fn truncate_discards_buffered_pages_and_removes_whole_segments() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<4>();
    let clog = pool.attach(&files, &flush);
    let seg = 32 * PAGE;
    for xid in [1, seg + 1, 2 * seg + 1, 3 * seg + 1] {
        clog.set_status(Xid(xid), Committed, Lsn::INVALID).unwrap();
    }
    clog.write_dirty_pages().unwrap();
    clog.set_status(Xid(2), Committed, Lsn::INVALID).unwrap(); // dirty again
    clog.extend_to(Xid(3 * seg)).unwrap();

    let removed = clog.truncate_before(Xid(2 * seg + 40_000)).unwrap();
    assert_eq!(removed, vec![SegmentNo(0), SegmentNo(1)]);
    assert_eq!(files.segments().unwrap(), vec![SegmentNo(2), SegmentNo(3)]);
    let mut buffered = clog.buffered_pages();
    buffered.sort();
    assert_eq!(buffered, vec![ClogPageNo(64), ClogPageNo(96)]);
    assert_eq!(clog.get_status(Xid(2 * seg + 1)).unwrap().0, Committed);
}

#[test]
fn a_read_error_names_the_xid_and_leaves_no_slot_behind() {
    let (dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);
    std::fs::create_dir(dir.path().join("pg_xact/0000")).unwrap();

    let err = PgError::from(clog.get_status(Xid(1234)).unwrap_err());
    assert_eq!(err.code, SqlState::IO_ERROR);
    assert_eq!(err.message, "could not access status of transaction 1234");
    assert_eq!(
        err.detail.as_deref(),
        Some("Could not read from file \"pg_xact/0000\" at offset 0: Is a directory.")
    );
    assert!(clog.buffered_pages().is_empty());

    std::fs::remove_dir(dir.path().join("pg_xact/0000")).unwrap();
    assert_eq!(clog.get_status(Xid(1234)).unwrap().0, InProgress);
}

#[test]
fn a_failed_write_keeps_the_page_dirty() {
    let (dir, files) = data_dir();
    let wal = FakeWal::default();
    let flush = |lsn| wal.flush(lsn);
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);
    clog.set_status(Xid(5), Committed, Lsn::INVALID).unwrap();
    std::fs::create_dir(dir.path().join("pg_xact/0000")).unwrap();

    let err = clog.write_dirty_pages().unwrap_err();
    assert_eq!(
        err.detail().as_deref(),
        Some("Could not open file \"pg_xact/0000\": Is a directory.")
    );
    assert_eq!(clog.dirty_pages(), vec![ClogPageNo(0)]);
    assert_eq!(clog.get_status(Xid(5)).unwrap().0, Committed);

    std::fs::remove_dir(dir.path().join("pg_xact/0000")).unwrap();
    assert_eq!(clog.write_dirty_pages().unwrap().pages_written, 1);
    assert_eq!(on_disk(&files, Xid(5)), Committed);
}

#[test]
fn a_panic_during_a_write_still_ends_the_io() {
    let (_dir, files) = data_dir();
    let wal = FakeWal::default();
    let panics = Cell::new(true);
    let flush = |lsn| {
        assert!(!panics.get(), "the WAL flush blew up");
        wal.flush(lsn)
    };
    let pool = shared_pool::<2>();
    let clog = pool.attach(&files, &flush);
    clog.set_status(Xid(5), Committed, Lsn(0x10)).unwrap();

    let unwound =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| clog.write_dirty_pages()));
    assert!(unwound.is_err());
    // The slot is Valid and dirty again, its I/O lock free: nothing hangs.
    assert_eq!(clog.dirty_pages(), vec![ClogPageNo(0)]);
    panics.set(false);
    assert_eq!(clog.write_dirty_pages().unwrap().pages_written, 1);
    assert_eq!(on_disk(&files, Xid(5)), Committed);
}
