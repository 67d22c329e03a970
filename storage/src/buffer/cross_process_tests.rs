//! The pool across real processes. Forked children attach the same pool in
//! an anonymous shared mapping (as children attach the segment), each with
//! its own `Smgr` on the same data directory and its own private pin map.
//!
//! 1. Four children increment counters on the pages of 16 blocks through a
//!    pool of 6 buffers (20000 steps each), so that pages are evicted, written, and read back
//!    while other processes use them; one child also runs bgwriter passes,
//!    another checkpoints. Each page holds one counter per child and a
//!    total, changed together under the exclusive content lock; readers
//!    under a shared lock check that the total is the sum (no torn view).
//!    The parent then checkpoints and finds the exact counts on disk, every
//!    page verified, and no page LSN beyond the flushed WAL.
//! 2. Four children read the same uncached block at once, with slow reads:
//!    exactly one read reaches the file.
//!
//! A child runs its body and leaves with `_exit(status)`, never returning
//! into the test harness.

use crate::test_process::{fork_child, wait_child};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::test_support::*;
use super::*;
use crate::page::{verify_page, Page};
use crate::smgr::Smgr;
use crate::types::{BlockNumber, Lsn};

const CHILDREN: usize = 4;
const NBUFFERS: usize = 6;
const BLOCKS: u32 = 16;
const ITERATIONS: usize = 20_000;
const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

// Child exit statuses.
const OK: i32 = 0;
const BUFFER_ERROR: i32 = 2;
const TORN_PAGE: i32 = 3;
const NO_START: i32 = 4;

/// Special-space slots: 0 the block stamp, 1..=4 one counter per child,
/// 5 the total.
const TOTAL_SLOT: usize = 1 + CHILDREN;

/// What the children share besides the pool.
#[derive(Default)]
struct TestShared {
    wal: FakeWal,
    io: IoCounters,
    ready: AtomicU32,
    go: AtomicU32,
}

impl TestShared {
    /// In a child: report ready, then wait for the parent's go.
    fn wait_start(&self) -> bool {
        self.ready.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + CHILD_TIMEOUT;
        while self.go.load(Ordering::SeqCst) == 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    fn release(&self, n: u32) {
        let deadline = Instant::now() + CHILD_TIMEOUT;
        while self.ready.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "children never got ready");
            std::thread::yield_now();
        }
        self.go.store(1, Ordering::SeqCst);
    }
}

/// Child `k`'s steps: (block, whether to increment), from a fixed xorshift
/// sequence, so that the parent can recompute the expected counts.
fn steps(k: usize) -> Vec<(u32, bool)> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (k as u64 + 1) * 0x1000_0001;
    (0..ITERATIONS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % u64::from(BLOCKS)) as u32, x % 4 != 0)
        })
        .collect()
}

/// Child `k` of test 1.
fn increment_counters(
    k: usize,
    dir: &std::path::Path,
    region: &SharedRegion,
    t: &TestShared,
) -> i32 {
    let mgr = BufferManager::new(region.pool(NBUFFERS));
    let mut storage = TestStorage {
        smgr: Smgr::new(dir, smgr_options()),
        io: &t.io,
    };
    let wal = |lsn: Lsn| t.wal.flush(lsn);
    if !t.wait_start() {
        return NO_START;
    }
    for (i, (b, increment)) in steps(k).into_iter().enumerate() {
        let buf = match mgr.read_buffer(&mut storage, &wal, REL, MAIN, BlockNumber(b)) {
            Ok(buf) => buf,
            Err(e) => {
                eprintln!("child {k}: read of block {b}: {e}");
                return BUFFER_ERROR;
            }
        };
        if increment {
            let mut page = buf.lock_exclusive();
            let mine = special_u64(&page, 1 + k);
            if i % 64 == 0 {
                // Give the others a chance to barge in: with a broken
                // content lock, this update would be lost.
                std::thread::yield_now();
            }
            set_special_u64(&mut page, 1 + k, mine + 1);
            let total = special_u64(&page, TOTAL_SLOT);
            set_special_u64(&mut page, TOTAL_SLOT, total + 1);
            Page::new(&mut *page).set_lsn(t.wal.insert());
            page.mark_dirty();
        } else {
            let page = buf.lock_shared();
            let sum: u64 = (1..=CHILDREN).map(|c| special_u64(&page, c)).sum();
            if special_u64(&page, 0) != u64::from(b) || special_u64(&page, TOTAL_SLOT) != sum {
                return TORN_PAGE;
            }
        }
        drop(buf);
        let extra = match k {
            0 if i % 200 == 0 => mgr
                .bgwriter_lru_pass(
                    &mut storage,
                    &wal,
                    mgr.pool().clock_ticks(),
                    mgr.pool().nbuffers(),
                    3,
                    usize::MAX,
                )
                .map(drop),
            1 if i % 5000 == 2500 => mgr
                .checkpoint_buffers(&mut storage, &wal, |_, _| {})
                .map(drop),
            _ => Ok(()),
        };
        if let Err(e) = extra {
            eprintln!("child {k}: background write: {e}");
            return BUFFER_ERROR;
        }
    }
    OK
}

/// Waits for `pid` (killing it after CHILD_TIMEOUT) and checks it exited OK.
fn expect_success(pid: libc::pid_t) {
    let status = wait_child(pid, CHILD_TIMEOUT);
    assert_eq!(status, OK, "child {pid} failed with status {status} (2 buffer error, 3 torn page, 4 never started, 101 panicked)");
}

#[test]
fn four_processes_increment_counters_through_a_pool_of_six() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, BLOCKS);
    let region = pool_region(NBUFFERS);
    let shared = SharedRegion::new(std::mem::size_of::<TestShared>());
    let t: &TestShared = shared.as_ref();

    let children: Vec<_> = (0..CHILDREN)
        .map(|k| fork_child(|| increment_counters(k, dir.path(), &region, t)))
        .collect();
    let started = Instant::now();
    t.release(CHILDREN as u32);
    for pid in children {
        expect_success(pid);
    }
    eprintln!(
        "children done in {:?}: {} reads, {} writes",
        started.elapsed(),
        t.io.reads.load(Ordering::SeqCst),
        t.io.writes.load(Ordering::SeqCst)
    );
    assert!(
        t.io.reads.load(Ordering::SeqCst) > u64::from(BLOCKS),
        "a pool of six for sixteen blocks evicts and reads again"
    );

    let mgr = BufferManager::new(region.pool(NBUFFERS));
    for i in 0..NBUFFERS {
        assert_eq!(
            mgr.pool().buffer_info(BufferId(i as u32)).state.refcount(),
            0,
            "no pin leaked"
        );
    }
    let wal = |lsn: Lsn| t.wal.flush(lsn);
    mgr.checkpoint_buffers(&mut smgr, &wal, |_, _| {}).unwrap();

    let mut expected = vec![[0u64; CHILDREN]; BLOCKS as usize];
    for (k, counts) in (0..CHILDREN).map(|k| (k, steps(k))) {
        for (b, increment) in counts {
            expected[b as usize][k] += u64::from(increment);
        }
    }
    let flushed = Lsn(t.wal.flushed.load(Ordering::SeqCst));
    for b in 0..BLOCKS {
        let page = disk_page(dir.path(), b);
        verify_page(&page, BlockNumber(b)).expect("every page on disk verifies");
        assert_eq!(special_u64(&page, 0), u64::from(b));
        for k in 0..CHILDREN {
            assert_eq!(
                special_u64(&page, 1 + k),
                expected[b as usize][k],
                "block {b} child {k}"
            );
        }
        let total: u64 = expected[b as usize].iter().sum();
        assert_eq!(special_u64(&page, TOTAL_SLOT), total, "block {b} total");
        assert!(
            Page::new(&*page).lsn() <= flushed,
            "block {b}: WAL before data"
        );
    }
}

#[test]
fn processes_reading_one_missing_block_share_a_single_read() {
    let (dir, mut smgr) = data_dir();
    write_blocks(&mut smgr, 1);
    let region = pool_region(NBUFFERS);
    let shared = SharedRegion::new(std::mem::size_of::<TestShared>());
    let t: &TestShared = shared.as_ref();
    t.io.read_delay_us.store(100_000, Ordering::SeqCst);

    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            fork_child(|| {
                let mgr = BufferManager::new(region.pool(NBUFFERS));
                let mut storage = TestStorage {
                    smgr: Smgr::new(dir.path(), smgr_options()),
                    io: &t.io,
                };
                if !t.wait_start() {
                    return NO_START;
                }
                let status = match mgr.read_buffer(&mut storage, &no_wal, REL, MAIN, BlockNumber(0))
                {
                    Ok(buf) if special_u64(&buf.lock_shared(), 0) == 0 => OK,
                    Ok(_) => TORN_PAGE,
                    Err(_) => BUFFER_ERROR,
                };
                status
            })
        })
        .collect();
    t.release(CHILDREN as u32);
    for pid in children {
        expect_success(pid);
    }
    assert_eq!(t.io.reads.load(Ordering::SeqCst), 1);
    let pool = region.pool(NBUFFERS);
    let id = pool
        .lookup(&BufferTag::new(REL, MAIN, BlockNumber(0)))
        .expect("buffered");
    let info = pool.buffer_info(id);
    assert!(
        info.state.has(BM_VALID) && info.state.refcount() == 0,
        "{info:?}"
    );
}
