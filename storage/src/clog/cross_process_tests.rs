//! The pool across real processes: three forked children set statuses of
//! disjoint xids concurrently in a pool of four slots, so pages are evicted,
//! written and read back while other processes use them; the parent then
//! reads every status through the pool, and from the files after a
//! checkpoint, and must find exactly what was set.
//!
//! Each child gets:
//! * a contiguous run of xids crossing page boundaries (pages 0..8), whose
//!   runs meet inside pages so neighbouring children share pages;
//! * every third xid of one common page, so all three set bits in the same
//!   bytes at once (lost updates would show as wrong statuses);
//!
//! and sets them in chunks taken in a scrambled order, so that pages keep
//! being evicted and read back while other processes use them.
//!
//! A child runs its body and leaves with `_exit(status)`, never returning
//! into the test harness. It allocates and does file I/O, which is safe after
//! `fork` in a threaded parent with glibc; it takes no harness lock.

use super::page::{self, ClogPageNo, PageBytes, XidStatus};
use super::test_support::{data_dir, shared_pool, FakeWal, SharedMapping};
use crate::test_process::{fork_child, wait_child, StartLine};
use crate::types::{Lsn, Xid, BLCKSZ};
use std::time::Duration;

const CHILDREN: u64 = 3;
const PAGE: u64 = 32768;
/// Child k's run: [RUN_START + k * RUN_LEN, + RUN_LEN), about 2.5 pages each.
const RUN_START: u64 = 5000;
const RUN_LEN: u64 = 80_000;
/// The page all children share byte by byte.
const COMMON_PAGE: u64 = 9;
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

// Child exit statuses.
const OK: i32 = 0;
const SET_FAILED: i32 = 2;
const READ_BACK_WRONG: i32 = 3;
const NO_START: i32 = 4;

/// What every xid of the test ends up as: a fixed function of the xid, with
/// some never set (in progress) and some set twice (sub-committed first).
fn expected(xid: u64) -> XidStatus {
    match xid % 7 {
        0 | 4 => XidStatus::Committed,
        1 | 5 => XidStatus::Aborted,
        2 => XidStatus::InProgress,
        3 => XidStatus::SubCommitted,
        _ => XidStatus::Committed, // via SubCommitted
    }
}

/// The xids child `k` sets.
fn xids_of(k: u64) -> impl Iterator<Item = u64> {
    let run = RUN_START + k * RUN_LEN..RUN_START + (k + 1) * RUN_LEN;
    let common = (COMMON_PAGE * PAGE..(COMMON_PAGE + 1) * PAGE).filter(move |x| x % CHILDREN == k);
    run.chain(common)
}

/// The same xids in the order child `k` sets them: chunks of 1024 in a
/// scrambled order, so that consecutive chunks often need different pages
/// and the four slots keep being evicted and read back.
fn scrambled_xids_of(k: u64) -> Vec<u64> {
    let xids: Vec<u64> = xids_of(k).collect();
    let mut chunks: Vec<&[u64]> = xids.chunks(1024).collect();
    let n = chunks.len();
    for i in 0..n {
        chunks.swap(i, (i * 37 + 11) % n);
    }
    chunks.concat()
}

fn all_xids() -> impl Iterator<Item = u64> {
    (0..CHILDREN).flat_map(xids_of)
}

/// Async commits carry an LSN; the rest do not.
fn commit_lsn(xid: u64) -> Lsn {
    if xid % 3 == 0 {
        Lsn(xid + 1)
    } else {
        Lsn::INVALID
    }
}

/// Waits for `pid` (killing it after CHILD_TIMEOUT) and checks it exited OK.
fn expect_success(pid: libc::pid_t) {
    let status = wait_child(pid, CHILD_TIMEOUT);
    assert_eq!(status, OK, "child {pid} failed with status {status} (2 set failed, 3 read back wrong, 4 never started, 101 panicked)");
}

#[test]
fn three_processes_set_disjoint_xids_through_a_small_pool() {
    let (_dir, files) = data_dir();
    let pool = shared_pool::<4>();
    // SAFETY: FakeWal is two AtomicU64s, valid when zero.
    let wal = unsafe { SharedMapping::<FakeWal>::zeroed() };
    // SAFETY: two AtomicU32s, valid when zero.
    let start = unsafe { SharedMapping::<StartLine>::zeroed() };
    let flush = |lsn| wal.flush(lsn);
    let clog = pool.attach(&files, &flush);
    // The xid allocator has entered page 8: it stays buffered throughout.
    clog.extend_to(Xid(8 * PAGE)).unwrap();

    let children: Vec<_> = (0..CHILDREN)
        .map(|k| {
            let (clog, start) = (&clog, &start);
            fork_child(move || {
                if !start.wait(CHILD_TIMEOUT) {
                    return NO_START;
                }
                for xid in scrambled_xids_of(k) {
                    let status = expected(xid);
                    let first = if xid % 7 == 6 {
                        XidStatus::SubCommitted
                    } else {
                        status
                    };
                    if status == XidStatus::InProgress {
                        continue;
                    }
                    for s in [first, status] {
                        if clog.set_status(Xid(xid), s, commit_lsn(xid)).is_err() {
                            return SET_FAILED;
                        }
                    }
                }
                // Our own statuses, read back while the others still work.
                for xid in xids_of(k).step_by(97) {
                    match clog.get_status(Xid(xid)) {
                        Ok((s, _)) if s == expected(xid) => {}
                        _ => return READ_BACK_WRONG,
                    }
                }
                OK
            })
        })
        .collect();
    start.release(CHILDREN as u32, CHILD_TIMEOUT);
    for pid in children {
        expect_success(pid);
    }

    // Evictions in the children wrote pages holding async commits.
    assert!(wal.flush_calls.load(std::sync::atomic::Ordering::SeqCst) > 0);
    for xid in all_xids() {
        assert_eq!(
            clog.get_status(Xid(xid)).unwrap().0,
            expected(xid),
            "xid {xid} through the pool"
        );
    }
    let stats = clog.write_dirty_pages().unwrap();
    assert!(
        stats.pages_written > 0 && stats.segments_synced == 1,
        "{stats:?}"
    );
    assert!(clog.dirty_pages().is_empty());
    let newest_async = all_xids()
        .filter(|x| commit_lsn(*x).is_valid() && expected(*x) != XidStatus::InProgress)
        .max();
    assert!(
        wal.flushed() >= commit_lsn(newest_async.unwrap()),
        "the last checkpoint flushed the WAL it needed"
    );

    let mut page: PageBytes = [0; BLCKSZ];
    let mut loaded = None;
    for xid in all_xids() {
        let p = ClogPageNo::of(Xid(xid));
        if loaded != Some(p) {
            files.read_page(p, &mut page).unwrap();
            loaded = Some(p);
        }
        assert_eq!(
            page::get_status(&page, Xid(xid)),
            expected(xid),
            "xid {xid} on disk"
        );
    }
    // Nothing outside the children's xids was set.
    for xid in (0..RUN_START).chain(RUN_START + CHILDREN * RUN_LEN..COMMON_PAGE * PAGE) {
        assert_eq!(
            clog.get_status(Xid(xid)).unwrap().0,
            XidStatus::InProgress,
            "xid {xid}"
        );
    }
}
