//! Heap access across real processes: forked children share one cluster
//! mapping (buffer pool, WAL, commit log, proc array), as backends share
//! the segment, and each builds its own handles after fork.
//!
//! 1. Three children insert 500 rows each into one table at the same time
//!    (through a pool smaller than the table, so pages are evicted and
//!    read back, and the tail page is extended by whoever fills it first);
//!    the parent then finds exactly 1500 rows with distinct payloads, and a
//!    replay of the interleaved WAL rebuilds the same pages.
//! 2. The concurrent-update scenario: child A updates a row and keeps its
//!    transaction open; child B's update of the same row blocks in
//!    `wait_for_xid` until A commits; then read committed re-applies B's
//!    change to A's version, and repeatable read fails with 40001.
//!
//! 3. Three children increment one wide row 100 times each, under read
//!    committed, each increment its own transaction. The row is so wide that
//!    a page holds two versions, so nearly every new version goes to another
//!    page (unlock, lock both pages, judge the old version again: heapam
//!    rule A4). No increment may be lost and exactly one version may stay
//!    live.
//!
//! 4. VACUUM runs over and over in the parent while three children
//!    increment counters in shared rows (read committed, following update
//!    chains into pages VACUUM is pruning) and a fourth inserts: no
//!    increment is lost, every row is there once, the freed space is
//!    reused, and the interleaved WAL (PRUNE records included) replays to
//!    the same pages.
//!
//! A child returns its exit status from its body and leaves with `_exit`;
//! the parent reaps it with a timeout.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::heapam::*;
use super::heapam_xlog::heap_redo;
use super::test_support::*;
use super::vacuum::{heap_vacuum, VacuumOptions};
use crate::buffer::BufferManager;
use crate::transam::IsolationLevel;
use crate::types::Xid;
use crate::wal::ResourceManager;

// Child exit statuses.
const OK: i32 = 0;
const NO_START: i32 = 2;
const INSERT_FAILED: i32 = 3;
const NEVER_WAITED_FOR: i32 = 4;
const ROW_NOT_SEEN: i32 = 5;
const WRONG_OUTCOME: i32 = 6;

#[test]
fn three_processes_insert_concurrently_and_every_row_is_there_once() {
    const CHILDREN: usize = 3;
    const PER_CHILD: i32 = 500;
    const PER_XACT: i32 = 50;
    let cluster = Cluster::new(24, CHILDREN + 1);
    // [0] children ready, [1] go.
    let start = SharedMem::new(4096);
    let rel = int_text_rel();
    let pids: Vec<_> = (0..CHILDREN)
        .map(|k| {
            let (cluster, start, rel) = (&cluster, &start, &rel);
            fork_child(move || {
                let mut b = cluster.backend(k);
                let board = start.u64s(2);
                board[0].fetch_add(1, Ordering::SeqCst);
                if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                    return NO_START;
                }
                for chunk in 0..PER_CHILD / PER_XACT {
                    let xid = b.begin();
                    let inserted = b.with_ctx(|ctx| {
                        (0..PER_XACT).try_for_each(|j| {
                            let i = chunk * PER_XACT + j;
                            let id = k as i32 * 10_000 + i;
                            let text = format!("child {k} row {i} {}", "p".repeat(i as usize % 40));
                            heap_insert(ctx, rel, &xact(xid, 0), &row(rel, id, &text)).map(drop)
                        })
                    });
                    if inserted.is_err() {
                        return INSERT_FAILED;
                    }
                    b.commit(xid);
                }
                OK
            })
        })
        .collect();
    let board = start.u64s(2);
    assert!(poll_until(CHILD_TIMEOUT, || {
        board[0].load(Ordering::SeqCst) == CHILDREN as u64
    }));
    board[1].store(1, Ordering::SeqCst);
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), OK);
    }

    let mut parent = cluster.backend(CHILDREN);
    let rows = parent.scan(&rel, &parent.snapshot(), xact(Xid::INVALID, 0));
    assert_eq!(rows.len(), CHILDREN * PER_CHILD as usize);
    let mut ids: Vec<i32> = rows.iter().map(|(_, t)| id_of(&rel, t)).collect();
    ids.sort_unstable();
    let expected: Vec<i32> = (0..CHILDREN as i32)
        .flat_map(|k| (0..PER_CHILD).map(move |i| k * 10_000 + i))
        .collect();
    assert_eq!(ids, expected, "every payload exactly once");
    for (_, t) in &rows {
        let id = id_of(&rel, t);
        let (k, i) = (id / 10_000, id % 10_000);
        assert!(text_of(&rel, t).starts_with(&format!("child {k} row {i} ")));
    }
    let mut tids: Vec<_> = rows.iter().map(|(tid, _)| *tid).collect();
    tids.dedup();
    assert_eq!(tids.len(), rows.len(), "distinct tids");

    // The interleaved WAL of the three processes replays to the same pages.
    let original = parent.pages();
    let records: Vec<_> = cluster
        .read_wal()
        .into_iter()
        .filter(|r| r.record.rmgr() == ResourceManager::Heap)
        .collect();
    assert_eq!(records.len(), rows.len());
    let target = ReplayTarget::new(64);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    for r in &records {
        heap_redo(
            r.start,
            r.end,
            &r.record,
            &mut buffers,
            &mut smgr,
            &no_wal_flush,
        )
        .unwrap();
    }
    let replayed = relation_pages(&buffers, &mut smgr, &no_wal_flush);
    assert_eq!(original.len(), replayed.len());
    for (b, (o, r)) in original.iter().zip(&replayed).enumerate() {
        assert!(o[..] == r[..], "block {b} differs after replay");
    }
}

/// Runs the scenario of the module header at `isolation` and returns the
/// row's `(id, text)` as a fresh snapshot finally sees it.
fn concurrent_update(isolation: IsolationLevel) -> (i32, String) {
    let cluster = Cluster::new(16, 3);
    let rel = int_text_rel();
    let tid = {
        let mut setup = cluster.backend(0);
        let x = setup.begin();
        let tid = setup
            .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(x, 0), &row(&rel, 1, "original")))
            .unwrap();
        setup.commit(x);
        tid
    };
    // [0] A's xid once it has updated, [1] when A began to commit (ns),
    // [2] when B's update returned (ns).
    let board_mem = SharedMem::new(4096);
    let (a_proc, b_proc) = (1, 2);

    let a = {
        let (cluster, rel, board_mem) = (&cluster, &rel, &board_mem);
        fork_child(move || {
            let board = board_mem.u64s(3);
            let mut a = cluster.backend(a_proc);
            let x = a.begin();
            let res = a.with_ctx(|ctx| heap_update(ctx, rel, &xact(x, 0), tid, &row(rel, 2, "A")));
            if !matches!(res, Ok(HeapWriteResult::Updated { .. })) {
                return WRONG_OUTCOME;
            }
            board[0].store(x.0, Ordering::SeqCst);
            // Commit only once B sleeps on our transaction, and a while later.
            if !poll_until(CHILD_TIMEOUT, || a.transam.xact_waiters(a_proc) > 0) {
                return NEVER_WAITED_FOR;
            }
            std::thread::sleep(Duration::from_millis(100));
            board[1].store(monotonic_ns(), Ordering::SeqCst);
            a.commit(x);
            OK
        })
    };
    let b = {
        let (cluster, rel, board_mem) = (&cluster, &rel, &board_mem);
        fork_child(move || {
            let board = board_mem.u64s(3);
            if !poll_until(CHILD_TIMEOUT, || board[0].load(Ordering::SeqCst) != 0) {
                return NO_START;
            }
            let mut b = cluster.backend(b_proc);
            // The statement's snapshot sees the row as it was before A.
            let snap = b.snapshot();
            let seen = b.scan(rel, &snap, xact(Xid::INVALID, 0));
            if seen.len() != 1 || seen[0].0 != tid || id_of(rel, &seen[0].1) != 1 {
                return ROW_NOT_SEEN;
            }
            let xb = b.begin();
            let me = CurrentXact {
                xid: xb,
                cid: 0,
                isolation,
            };
            let res = b.with_ctx(|ctx| {
                update_row(
                    ctx,
                    rel,
                    &me,
                    tid,
                    row(rel, 11, "B"),
                    &mut |newer| Ok(Some(row(rel, id_of(rel, newer) + 10, "B"))),
                    &mut || Ok(()),
                )
            });
            board[2].store(monotonic_ns(), Ordering::SeqCst);
            match (isolation, res) {
                (IsolationLevel::ReadCommitted, Ok(RowOutcome::Updated { old_tid, .. }))
                    if old_tid != tid =>
                {
                    b.commit(xb);
                    OK
                }
                (IsolationLevel::RepeatableRead, Err(e))
                    if e.code.as_str() == "40001"
                        && e.message == "could not serialize access due to concurrent update" =>
                {
                    b.abort(xb);
                    OK
                }
                _ => WRONG_OUTCOME,
            }
        })
    };
    assert_eq!(wait_child(a, CHILD_TIMEOUT), OK, "child A");
    assert_eq!(wait_child(b, CHILD_TIMEOUT), OK, "child B");
    let board = board_mem.u64s(3);
    assert!(
        board[2].load(Ordering::SeqCst) >= board[1].load(Ordering::SeqCst),
        "B's update returned before A committed"
    );
    let mut parent = cluster.backend(0);
    let rows = parent.scan(&rel, &parent.snapshot(), xact(Xid::INVALID, 0));
    assert_eq!(rows.len(), 1, "one live version");
    (id_of(&rel, &rows[0].1), text_of(&rel, &rows[0].1))
}

#[test]
fn read_committed_waits_for_the_updater_then_applies_to_its_version() {
    assert_eq!(
        concurrent_update(IsolationLevel::ReadCommitted),
        (12, "B".to_string())
    );
}

#[test]
fn repeatable_read_waits_for_the_updater_then_fails_with_40001() {
    assert_eq!(
        concurrent_update(IsolationLevel::RepeatableRead),
        (2, "A".to_string())
    );
}

#[test]
fn concurrent_increments_of_one_wide_row_lose_nothing() {
    const CHILDREN: usize = 3;
    const PER_CHILD: i32 = 100;
    let cluster = Cluster::new(24, CHILDREN + 1);
    let rel = int_text_rel();
    let pad = "w".repeat(3000);
    {
        let mut setup = cluster.backend(CHILDREN);
        let x = setup.begin();
        setup
            .with_ctx(|ctx| heap_insert(ctx, &rel, &xact(x, 0), &row(&rel, 0, &pad)))
            .unwrap();
        setup.commit(x);
    }
    let start = SharedMem::new(4096);
    let pids: Vec<_> = (0..CHILDREN)
        .map(|k| {
            let (cluster, start, rel, pad) = (&cluster, &start, &rel, &pad);
            fork_child(move || {
                let mut b = cluster.backend(k);
                let board = start.u64s(2);
                board[0].fetch_add(1, Ordering::SeqCst);
                if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                    return NO_START;
                }
                for _ in 0..PER_CHILD {
                    let snap = b.snapshot();
                    let seen = b.scan(rel, &snap, xact(Xid::INVALID, 0));
                    let [(tid, current)] = &seen[..] else {
                        return ROW_NOT_SEEN;
                    };
                    let x = b.begin();
                    let next = row(rel, id_of(rel, current) + 1, pad);
                    let res = b.with_ctx(|ctx| {
                        update_row(
                            ctx,
                            rel,
                            &xact(x, 0),
                            *tid,
                            next,
                            &mut |newer| Ok(Some(row(rel, id_of(rel, newer) + 1, pad))),
                            &mut || Ok(()),
                        )
                    });
                    if !matches!(res, Ok(RowOutcome::Updated { .. })) {
                        return WRONG_OUTCOME;
                    }
                    b.commit(x);
                    b.transam.reset_xmin(b.proc());
                }
                OK
            })
        })
        .collect();
    let board = start.u64s(2);
    assert!(poll_until(CHILD_TIMEOUT, || {
        board[0].load(Ordering::SeqCst) == CHILDREN as u64
    }));
    board[1].store(1, Ordering::SeqCst);
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), OK);
    }
    let mut parent = cluster.backend(CHILDREN);
    let rows = parent.scan(&rel, &parent.snapshot(), xact(Xid::INVALID, 0));
    assert_eq!(rows.len(), 1, "exactly one live version");
    assert_eq!(id_of(&rel, &rows[0].1), CHILDREN as i32 * PER_CHILD);
    let blocks = parent
        .smgr
        .nblocks(REL, crate::types::ForkNumber::Main)
        .unwrap();
    assert!(
        blocks >= 100,
        "versions went to other pages ({blocks} blocks)"
    );
}

/// The counter row `key` with value `n`, padded so that a page holds a
/// few versions and many updates move to other pages.
fn counter_row(rel: &HeapRelation, key: i32, n: u32) -> Vec<u8> {
    row(rel, key, &format!("{n:06}{}", "c".repeat(1500)))
}

fn counter_of(rel: &HeapRelation, tuple: &[u8]) -> u32 {
    text_of(rel, tuple)[..6].parse().expect("counter")
}

#[test]
fn vacuum_runs_while_others_update_and_insert() {
    const UPDATERS: usize = 3;
    const KEYS: i32 = 12;
    const INCREMENTS: u32 = 150;
    /// An updater waits for a VACUUM to finish after this many increments.
    const PACE: u32 = 20;
    const INSERTS: i32 = 400;
    let procs = UPDATERS + 2;
    let cluster = Cluster::new(32, procs);
    let rel = int_text_rel();
    {
        let mut setup = cluster.backend(procs - 1);
        let x = setup.begin();
        setup.with_ctx(|ctx| {
            for key in 0..KEYS {
                heap_insert(ctx, &rel, &xact(x, 0), &counter_row(&rel, key, 0)).unwrap();
            }
        });
        setup.commit(x);
    }
    // [0] children ready, [1] go, [2] children done, [3] vacuums done.
    let board_mem = SharedMem::new(4096);
    let mut pids: Vec<_> = (0..UPDATERS)
        .map(|k| {
            let (cluster, board_mem, rel) = (&cluster, &board_mem, &rel);
            fork_child(move || {
                let board = board_mem.u64s(4);
                let mut b = cluster.backend(k);
                board[0].fetch_add(1, Ordering::SeqCst);
                if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                    return NO_START;
                }
                for i in 0..INCREMENTS {
                    let key = (i as i32 * 7 + k as i32) % KEYS;
                    let snap = b.snapshot();
                    let seen = b.scan(rel, &snap, xact(Xid::INVALID, 0));
                    let Some((tid, current)) = seen.iter().find(|(_, t)| id_of(rel, t) == key)
                    else {
                        return ROW_NOT_SEEN;
                    };
                    let x = b.begin();
                    let next = counter_row(rel, key, counter_of(rel, current) + 1);
                    let res = b.with_ctx(|ctx| {
                        update_row(
                            ctx,
                            rel,
                            &xact(x, 0),
                            *tid,
                            next,
                            &mut |newer| {
                                Ok(Some(counter_row(rel, key, counter_of(rel, newer) + 1)))
                            },
                            &mut || Ok(()),
                        )
                    });
                    if !matches!(res, Ok(RowOutcome::Updated { .. })) {
                        return WRONG_OUTCOME;
                    }
                    b.commit(x);
                    b.transam.reset_xmin(b.proc());
                    if i % PACE == PACE - 1 {
                        // Let VACUUM keep up whatever the scheduler does.
                        let seen = board[3].load(Ordering::SeqCst);
                        if !poll_until(CHILD_TIMEOUT, || board[3].load(Ordering::SeqCst) > seen) {
                            return NO_START;
                        }
                    }
                }
                board[2].fetch_add(1, Ordering::SeqCst);
                OK
            })
        })
        .collect();
    pids.push({
        let (cluster, board_mem, rel) = (&cluster, &board_mem, &rel);
        fork_child(move || {
            let board = board_mem.u64s(4);
            let mut b = cluster.backend(UPDATERS);
            board[0].fetch_add(1, Ordering::SeqCst);
            if !poll_until(CHILD_TIMEOUT, || board[1].load(Ordering::SeqCst) == 1) {
                return NO_START;
            }
            for chunk in 0..INSERTS / 20 {
                let x = b.begin();
                let inserted = b.with_ctx(|ctx| {
                    (0..20).try_for_each(|j| {
                        let id = 1000 + chunk * 20 + j;
                        heap_insert(ctx, rel, &xact(x, 0), &row(rel, id, "inserted")).map(drop)
                    })
                });
                if inserted.is_err() {
                    return INSERT_FAILED;
                }
                b.commit(x);
            }
            board[2].fetch_add(1, Ordering::SeqCst);
            OK
        })
    });
    let board = board_mem.u64s(4);
    assert!(poll_until(CHILD_TIMEOUT, || {
        board[0].load(Ordering::SeqCst) == UPDATERS as u64 + 1
    }));
    board[1].store(1, Ordering::SeqCst);

    let mut parent = cluster.backend(procs - 1);
    let mut vacuums = 0;
    let mut removed = 0;
    while board[2].load(Ordering::SeqCst) < UPDATERS as u64 + 1 {
        let horizon = parent.transam.global_xmin();
        let s = parent
            .with_ctx(|ctx| {
                heap_vacuum(
                    ctx,
                    &rel,
                    horizon,
                    None,
                    &VacuumOptions::default(),
                    &mut || Ok(()),
                )
            })
            .expect("vacuum");
        vacuums += 1;
        removed += s.tuples_removed;
        board[3].store(vacuums, Ordering::SeqCst);
    }
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), OK);
    }
    assert!(
        vacuums > 1 && removed > 0,
        "{vacuums} vacuums removed {removed}"
    );

    let rows = parent.scan(&rel, &parent.snapshot(), xact(Xid::INVALID, 0));
    parent.transam.reset_xmin(parent.proc());
    let counters: Vec<_> = rows.iter().filter(|(_, t)| id_of(&rel, t) < KEYS).collect();
    assert_eq!(counters.len(), KEYS as usize, "one live version per key");
    let total: u32 = counters.iter().map(|(_, t)| counter_of(&rel, t)).sum();
    assert_eq!(total, UPDATERS as u32 * INCREMENTS, "no increment lost");
    let mut inserted: Vec<i32> = rows
        .iter()
        .map(|(_, t)| id_of(&rel, t))
        .filter(|&id| id >= 1000)
        .collect();
    inserted.sort_unstable();
    assert_eq!(inserted, (1000..1000 + INSERTS).collect::<Vec<_>>());

    // Without VACUUM every version would still take its ~1.5 KB.
    let blocks = parent
        .smgr
        .nblocks(REL, crate::types::ForkNumber::Main)
        .unwrap();
    let versions = KEYS as u32 + UPDATERS as u32 * INCREMENTS;
    assert!(blocks < versions / 10, "space was reused: {blocks} blocks");

    // The interleaved WAL, PRUNE records included, replays to the same pages.
    let original = parent.pages();
    let records: Vec<_> = cluster
        .read_wal()
        .into_iter()
        .filter(|r| r.record.rmgr() == ResourceManager::Heap)
        .collect();
    let target = ReplayTarget::new(64);
    let mut buffers = BufferManager::new(target.pool());
    let mut smgr = target.smgr();
    for r in &records {
        heap_redo(
            r.start,
            r.end,
            &r.record,
            &mut buffers,
            &mut smgr,
            &no_wal_flush,
        )
        .unwrap();
    }
    let replayed = relation_pages(&buffers, &mut smgr, &no_wal_flush);
    assert_eq!(original.len(), replayed.len());
    for (b, (o, r)) in original.iter().zip(&replayed).enumerate() {
        assert!(o[..] == r[..], "block {b} differs after replay");
    }
}
