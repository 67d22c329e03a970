//! The btree across real processes: forked children share one cluster
//! mapping (buffer pool, WAL, proc array), as backends share the segment.
//!
//! 1. Three children insert 10000 wide keys each, in random order (or all
//!    ascending, fighting over the rightmost leaf), into one
//!    unique index through a pool far smaller than the index (pages are
//!    evicted and read back, splits race with each other), while a fourth
//!    scans forward and backward again and again. Every scan must be
//!    strictly ordered and contain every key whose insert had finished when
//!    the scan began (search S1, scan N2/N3). At the end every key is there
//!    exactly once, `bt_verify` passes, and replaying the interleaved WAL
//!    into an empty pool rebuilds the same pages.
//! 2. Unique check against an in-progress insert: A inserts key 1 and keeps
//!    its transaction open; B's insert of key 1 sleeps in `wait_for_xid`
//!    until A ends; if A commits, B fails with 23505; if A aborts, B's
//!    insert succeeds (insert I3).
//!
//! A child returns its exit status and leaves with `_exit`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use pgerror::{PgError, SqlState};

use super::test_support::*;
use super::*;
use crate::buffer::BufferManager;
use crate::heap::heap_insert;
use crate::heap::test_support::{
    fork_child, int_text_rel, monotonic_ns, no_wal_flush, poll_until, row, wait_child, xact,
    Backend, SharedMem, CHILD_TIMEOUT,
};
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;

const OK: i32 = 0;
const NO_START: i32 = 2;
const INSERT_FAILED: i32 = 3;
const SCAN_OUT_OF_ORDER: i32 = 4;
const SCAN_MISSED_A_KEY: i32 = 5;
const TOO_FEW_SCANS: i32 = 6;
const NEVER_WAITED_FOR: i32 = 7;
const WRONG_OUTCOME: i32 = 8;

const INSERTERS: u64 = 3;
const PER_CHILD: u64 = 10_000;

/// Child `k`'s keys, in the order it inserts them: interleaved with the
/// other children's, ascending (all fight over the rightmost leaf) or in
/// random order.
fn keys_of(k: u64, ascending: bool) -> Vec<u64> {
    let mut keys: Vec<u64> = (0..PER_CHILD).map(|i| i * INSERTERS + k).collect();
    if !ascending {
        XorShift(0x51_7cc1_b727_220a ^ (k + 1)).shuffle(&mut keys);
    }
    keys
}

/// A unique checker for keys that are never equal: any call is a failure.
fn never_called(_: &mut HeapContext<'_, '_>, t: ItemPointer) -> Result<UniqueCheck, PgError> {
    Err(PgError::internal(format!("unexpected equal key at {t}")))
}

fn key_number(e: &IndexEntry) -> u64 {
    match &e.key[0] {
        Some(crate::heap::datum::Datum::Text(s)) => s[..10].parse().expect("a wide_text key"),
        other => panic!("unexpected key {other:?}"),
    }
}

/// The scanner's loop: returns its exit status.
fn scanner(
    b: &mut Backend<'_>,
    idx: &BtreeIndex,
    board: &[std::sync::atomic::AtomicU64],
    ascending: bool,
) -> i32 {
    let expected: Vec<Vec<u64>> = (0..INSERTERS).map(|k| keys_of(k, ascending)).collect();
    let mut scans = 0;
    loop {
        let done =
            (0..INSERTERS as usize).all(|k| board[2 + k].load(Ordering::SeqCst) == PER_CHILD);
        let counts: Vec<usize> = (0..INSERTERS as usize)
            .map(|k| board[2 + k].load(Ordering::SeqCst) as usize)
            .collect();
        let dir = if scans % 2 == 0 {
            ScanDirection::Forward
        } else {
            ScanDirection::Backward
        };
        let mut got: Vec<u64> = match b.with_ctx(|ctx| bt_scan_all(ctx, idx, ScanRange::all(), dir))
        {
            Ok(entries) => entries.iter().map(key_number).collect(),
            Err(_) => return SCAN_OUT_OF_ORDER,
        };
        if dir == ScanDirection::Backward {
            got.reverse();
        }
        if got.windows(2).any(|w| w[0] >= w[1]) {
            return SCAN_OUT_OF_ORDER;
        }
        for (k, keys) in expected.iter().enumerate() {
            if keys[..counts[k]]
                .iter()
                .any(|key| got.binary_search(key).is_err())
            {
                return SCAN_MISSED_A_KEY;
            }
        }
        scans += 1;
        if !done && got.len() > 1000 {
            board[7].fetch_add(1, Ordering::SeqCst);
        }
        if done {
            return if scans >= 3 { OK } else { TOO_FEW_SCANS };
        }
    }
}

#[test]
fn concurrent_random_inserts_and_scans_find_every_key_once() {
    concurrent_inserts_and_scans(false);
}

#[test]
fn concurrent_ascending_inserts_and_scans_find_every_key_once() {
    concurrent_inserts_and_scans(true);
}

/// Scenario 1 of the module header.
fn concurrent_inserts_and_scans(ascending: bool) {
    let c = cluster(48, INSERTERS as usize + 2);
    let idx = text_index();
    c.backend(0)
        .with_ctx(|ctx| bt_create_empty(ctx, &idx).unwrap());
    // [0] children ready, [1] go, [2..5] keys inserted by each inserter,
    // [7] scans of over 1000 entries before the end.
    let mem = SharedMem::new(4096);
    let mut pids = Vec::new();
    for k in 0..INSERTERS {
        let (c, idx, mem) = (&c, &idx, &mem);
        pids.push(fork_child(move || {
            let board = mem.u64s(8);
            let mut b = c.backend(k as usize);
            board[0].fetch_add(1, Ordering::SeqCst);
            if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                return NO_START;
            }
            for key in keys_of(k, ascending) {
                let value = text(&wide_text(key));
                let mut check = never_called;
                let res = b.with_ctx(|ctx| {
                    bt_insert(
                        ctx,
                        idx,
                        &value,
                        tid(key),
                        Some(&mut check),
                        &mut no_interrupts,
                    )
                });
                if res.is_err() {
                    return INSERT_FAILED;
                }
                board[2 + k as usize].fetch_add(1, Ordering::SeqCst);
            }
            OK
        }));
    }
    let scan_pid = {
        let (c, idx, mem) = (&c, &idx, &mem);
        fork_child(move || {
            let board = mem.u64s(8);
            let mut b = c.backend(INSERTERS as usize);
            board[0].fetch_add(1, Ordering::SeqCst);
            if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                return NO_START;
            }
            scanner(&mut b, idx, board, ascending)
        })
    };
    let board = mem.u64s(8);
    assert!(poll_until(CHILD_TIMEOUT, || {
        board[0].load(Ordering::SeqCst) == INSERTERS + 1
    }));
    board[1].store(1, Ordering::SeqCst);
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), OK, "inserter");
    }
    assert_eq!(wait_child(scan_pid, CHILD_TIMEOUT), OK, "scanner");
    assert!(
        board[7].load(Ordering::SeqCst) >= 1,
        "some scan ran while the inserters were half way"
    );

    let mut parent = c.backend(INSERTERS as usize + 1);
    let (shape, keys) = parent.with_ctx(|ctx| {
        let shape = verify(ctx, &idx);
        let all = scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward);
        (shape, all.iter().map(key_number).collect::<Vec<_>>())
    });
    assert_eq!(keys, (0..INSERTERS * PER_CHILD).collect::<Vec<_>>());
    assert!(shape.pages_per_level.len() >= 3, "{shape:?}");
    assert!(shape.pages_per_level[0] > 48 * 4, "larger than the pool");

    // The interleaved WAL of the three inserters replays to the same pages.
    let original = index_pages(&parent.buffers, &mut parent.smgr, &parent.wal);
    let records = index_records(c.read_wal());
    let target = replay_target(64);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    replay(&records, &mut buffers, &mut smgr);
    assert_same_pages(&original, &index_pages(&buffers, &mut smgr, &no_wal_flush));
}

/// Runs scenario 2; `a_commits` decides A's end. Returns B's result.
fn unique_against_in_progress(a_commits: bool) -> Result<(), PgError> {
    let c = cluster(32, 3);
    let idx = int4_index();
    let rel = int_text_rel();
    c.backend(0)
        .with_ctx(|ctx| bt_create_empty(ctx, &idx).unwrap());
    // [0] A's xid, [1] when A ended (ns), [2] when B's insert returned
    // (ns), [3] B's outcome: 1 ok, 2 duplicate.
    let mem = SharedMem::new(4096);
    let (a_proc, b_proc) = (1, 2);
    let insert_one = |b: &mut Backend<'_>, x| {
        b.with_ctx(|ctx| {
            let t = heap_insert(ctx, &rel, &xact(x, 0), &row(&rel, 1, "one"))?;
            let mut check =
                |ctx: &mut HeapContext<'_, '_>, t| heap_unique_check(ctx, HEAP_REL, t, x);
            bt_insert(ctx, &idx, &int4(1), t, Some(&mut check), &mut no_interrupts)
        })
    };
    let a = {
        let (c, mem, insert_one) = (&c, &mem, &insert_one);
        fork_child(move || {
            let board = mem.u64s(4);
            let mut a = c.backend(a_proc);
            let x = a.begin();
            if insert_one(&mut a, x).is_err() {
                return INSERT_FAILED;
            }
            board[0].store(x.0, Ordering::SeqCst);
            if !poll_until(CHILD_TIMEOUT, || a.transam.xact_waiters(a_proc) > 0) {
                return NEVER_WAITED_FOR;
            }
            std::thread::sleep(Duration::from_millis(100));
            board[1].store(monotonic_ns(), Ordering::SeqCst);
            if a_commits {
                a.commit(x);
            } else {
                a.abort(x);
            }
            OK
        })
    };
    let b = {
        let (c, mem, insert_one) = (&c, &mem, &insert_one);
        fork_child(move || {
            let board = mem.u64s(4);
            if !poll_until(CHILD_TIMEOUT, || board[0].load(Ordering::SeqCst) != 0) {
                return NO_START;
            }
            let mut b = c.backend(b_proc);
            let x = b.begin();
            let res = insert_one(&mut b, x);
            board[2].store(monotonic_ns(), Ordering::SeqCst);
            match res {
                Ok(()) => {
                    board[3].store(1, Ordering::SeqCst);
                    b.commit(x);
                    OK
                }
                Err(e) if e.code == SqlState::UNIQUE_VIOLATION => {
                    board[3].store(2, Ordering::SeqCst);
                    b.abort(x);
                    OK
                }
                Err(_) => WRONG_OUTCOME,
            }
        })
    };
    assert_eq!(wait_child(a, CHILD_TIMEOUT), OK, "child A");
    assert_eq!(wait_child(b, CHILD_TIMEOUT), OK, "child B");
    let board = mem.u64s(4);
    assert!(
        board[2].load(Ordering::SeqCst) >= board[1].load(Ordering::SeqCst),
        "B's insert returned before A ended"
    );
    let entries = c
        .backend(0)
        .with_ctx(|ctx| scan(ctx, &idx, ScanRange::all(), ScanDirection::Forward));
    if board[3].load(Ordering::SeqCst) == 1 {
        assert_eq!(entries.len(), 2, "A's dead entry and B's");
        Ok(())
    } else {
        assert_eq!(entries.len(), 1, "A's entry only");
        Err(idx.unique_violation(&int4(1)))
    }
}

#[test]
fn an_insert_waits_for_an_in_progress_duplicate_and_fails_once_it_commits() {
    let e = unique_against_in_progress(true).unwrap_err();
    assert_eq!(e.code, SqlState::UNIQUE_VIOLATION);
}

#[test]
fn an_insert_waits_for_an_in_progress_duplicate_and_succeeds_once_it_aborts() {
    unique_against_in_progress(false).unwrap();
}
