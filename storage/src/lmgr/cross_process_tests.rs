//! The lock manager across forked processes on a real segment: a
//! conflicting request blocks until the holder releases; many processes
//! take weak locks while one takes strong ones; lock_timeout; a deadlock
//! between two processes costs exactly one of them its transaction; NoWait;
//! a full table.
//!
//! Each child claims its own backend proc entry (so pids in messages are
//! real), reports through zero-filled shared memory, and leaves with an
//! exit status the parent checks.

use super::tests::{ok, rel, TestLocks};
use super::*;
use crate::test_cluster::{monotonic_ns, shared, Flags};
use crate::test_process::{fork_child, wait_child, StartLine};
use crate::types::Xid;
use pgerror::SqlState;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};
use LockMode::*;

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn a_conflicting_request_blocks_until_the_holder_releases() {
    let t = TestLocks::new(3, 10);
    let f: &Flags = shared();
    let mut a = t.manager(0);
    a.lock_acquire(rel(1), AccessExclusive, LockWait::Block, ok())
        .unwrap();
    let child = fork_child(|| {
        let mut b = t.manager(1);
        f.a.store(1, SeqCst);
        let r = b.lock_acquire(rel(1), AccessShare, LockWait::Block, ok());
        f.b.store(monotonic_ns(), SeqCst);
        b.lock_release_all();
        i32::from(r != Ok(LockResult::Acquired))
    });
    f.wait_until("the child to start", |f| Flags::load(&f.a) == 1);
    t.wait_for_queue(&rel(1), &[(1, AccessShare)]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(Flags::load(&f.b), 0, "granted while the lock was held");
    let released = monotonic_ns();
    a.lock_release_all();
    assert_eq!(wait_child(child, TIMEOUT), 0);
    assert!(Flags::load(&f.b) >= released);
    t.assert_empty();
}

#[derive(Default)]
#[repr(C)]
struct Crowd {
    start: StartLine,
    /// Processes between their weak acquisition of rel 1 and its release.
    weak_holders: AtomicU64,
    /// Times the strong holder saw a weak holder.
    violations: AtomicU64,
    strong_rounds: AtomicU64,
}

/// Four processes take AccessShare and RowExclusive on one table in a loop
/// (fast path) while a fifth takes AccessExclusive on it now and then
/// (transfer, queue, wake-up): the strong holder never coexists with a weak
/// one, and nothing is left in the table afterwards.
#[test]
fn many_processes_take_weak_locks_while_one_takes_strong_ones() {
    const WEAK: usize = 4;
    let t = TestLocks::new(WEAK as u32 + 1, 10);
    let s: &Crowd = shared();
    let mut children = Vec::new();
    for i in 0..WEAK {
        let (t, s) = (&t, s);
        children.push(fork_child(move || {
            let mut m = t.manager(i);
            if !s.start.wait(TIMEOUT) {
                return 2;
            }
            for k in 0..3000u32 {
                let mode = if k % 2 == 0 {
                    AccessShare
                } else {
                    RowExclusive
                };
                if m.lock_acquire(rel(1), mode, LockWait::Block, ok()) != Ok(LockResult::Acquired)
                    || m.lock_acquire(rel(10 + i as u32), AccessShare, LockWait::Block, ok())
                        != Ok(LockResult::Acquired)
                {
                    return 3;
                }
                s.weak_holders.fetch_add(1, SeqCst);
                std::hint::spin_loop();
                s.weak_holders.fetch_sub(1, SeqCst);
                m.lock_release_all();
            }
            0
        }));
    }
    children.push(fork_child(|| {
        let mut m = t.manager(WEAK);
        if !s.start.wait(TIMEOUT) {
            return 2;
        }
        for _ in 0..30 {
            if m.lock_acquire(rel(1), AccessExclusive, LockWait::Block, ok())
                != Ok(LockResult::Acquired)
            {
                return 3;
            }
            for _ in 0..3 {
                if s.weak_holders.load(SeqCst) != 0 {
                    s.violations.fetch_add(1, SeqCst);
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            m.lock_release_all();
            s.strong_rounds.fetch_add(1, SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        }
        0
    }));
    s.start.release(WEAK as u32 + 1, TIMEOUT);
    for c in children {
        assert_eq!(wait_child(c, TIMEOUT), 0);
    }
    assert_eq!(s.violations.load(SeqCst), 0);
    assert_eq!(s.strong_rounds.load(SeqCst), 30);
    t.assert_empty();
}

#[test]
fn lock_timeout_cancels_the_wait() {
    let t = TestLocks::new(2, 10);
    let f: &Flags = shared();
    let child = fork_child(|| {
        let mut m = t.manager(0);
        let r = m.lock_acquire(rel(1), AccessExclusive, LockWait::Block, ok());
        f.a.store(1, SeqCst);
        f.wait_until("the parent's timeout", |f| Flags::load(&f.b) == 1);
        m.lock_release_all();
        i32::from(r != Ok(LockResult::Acquired))
    });
    f.wait_until("the child's lock", |f| Flags::load(&f.a) == 1);
    let mut m = t.manager(1);
    m.set_timeouts(Duration::from_secs(1), Some(Duration::from_millis(150)));
    let started = Instant::now();
    let e = m
        .lock_acquire(rel(1), AccessShare, LockWait::Block, ok())
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.code, SqlState::LOCK_NOT_AVAILABLE);
    assert_eq!(e.message, "canceling statement due to lock timeout");
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(!m.holds(&rel(1), AccessShare));
    assert!(t.table().lock_status(&rel(1)).unwrap().waiting.is_empty());
    f.b.store(1, SeqCst);
    assert_eq!(wait_child(child, TIMEOUT), 0);
    t.assert_empty();
}

#[derive(Default)]
#[repr(C)]
struct Pair {
    pids: [AtomicI32; 2],
    ready: AtomicU64,
    /// 1: acquired, 2: deadlock with the expected DETAIL, 3: deadlock with
    /// another DETAIL, 4: any other outcome.
    results: [AtomicU64; 2],
}

/// Each of two transactions holds its own transaction lock and waits for
/// the other's (two row-level waits in opposite order): one of them gets
/// 40P01 with PostgreSQL's DETAIL, and the other proceeds once it aborts.
#[test]
fn a_two_process_deadlock_fails_exactly_one() {
    let t = TestLocks::new(2, 10);
    let s: &Pair = shared();
    let children: Vec<_> = (0..2)
        .map(|i| {
            let (t, s) = (&t, s);
            fork_child(move || {
                let mut m = t.manager(i);
                m.set_timeouts(Duration::from_millis(200), None);
                let xid = |k: usize| Xid(700 + k as u64);
                let (mine, other) = (xid(i), xid(1 - i));
                let me = std::process::id() as i32;
                s.pids[i].store(me, SeqCst);
                if m.lock_acquire(LockTag::TransactionId(mine), Exclusive, LockWait::Block, ok())
                    != Ok(LockResult::Acquired)
                {
                    return 2;
                }
                s.ready.fetch_add(1, SeqCst);
                let deadline = Instant::now() + TIMEOUT;
                while s.ready.load(SeqCst) < 2 {
                    if Instant::now() > deadline {
                        return 3;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                if i == 1 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let them = s.pids[1 - i].load(SeqCst);
                let result = match m.lock_acquire(
                    LockTag::TransactionId(other),
                    Share,
                    LockWait::Block,
                    ok(),
                ) {
                    Ok(LockResult::Acquired) => 1,
                    Err(e) if e.code == SqlState::DEADLOCK_DETECTED => {
                        let want = format!(
                            "Process {me} waits for ShareLock on transaction {other}; blocked by process {them}.\n\
                             Process {them} waits for ShareLock on transaction {mine}; blocked by process {me}."
                        );
                        if e.detail.as_deref() == Some(want.as_str()) {
                            2
                        } else {
                            eprintln!("unexpected DETAIL: {:?}", e.detail);
                            3
                        }
                    }
                    _ => 4,
                };
                s.results[i].store(result, SeqCst);
                m.lock_release_all();
                0
            })
        })
        .collect();
    for c in children {
        assert_eq!(wait_child(c, TIMEOUT), 0);
    }
    let mut results = [s.results[0].load(SeqCst), s.results[1].load(SeqCst)];
    results.sort_unstable();
    assert_eq!(results, [1, 2], "one proceeds, one gets 40P01");
    t.assert_empty();
}

#[test]
fn nowait_reports_a_lock_that_is_not_available() {
    let t = TestLocks::new(2, 10);
    let f: &Flags = shared();
    let child = fork_child(|| {
        let mut m = t.manager(0);
        let r = m.lock_acquire(rel(1), RowExclusive, LockWait::Block, ok());
        f.a.store(1, SeqCst);
        f.wait_until("the parent's attempt", |f| Flags::load(&f.b) == 1);
        // Its fast-path lock was moved to the table: released there.
        m.lock_release_all();
        i32::from(r != Ok(LockResult::Acquired))
    });
    f.wait_until("the child's lock", |f| Flags::load(&f.a) == 1);
    let mut m = t.manager(1);
    let started = Instant::now();
    assert_eq!(
        m.lock_acquire(rel(1), Share, LockWait::NoWait, ok()),
        Ok(LockResult::NotAvailable)
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(!m.holds(&rel(1), Share));
    let status = t.table().lock_status(&rel(1)).expect("transferred");
    assert_eq!(status.granted, vec![(0, RowExclusive.bit())]);
    assert!(status.waiting.is_empty());
    f.b.store(1, SeqCst);
    assert_eq!(wait_child(child, TIMEOUT), 0);
    assert_eq!(
        m.lock_acquire(rel(1), Share, LockWait::NoWait, ok()),
        Ok(LockResult::Acquired)
    );
    m.lock_release_all();
    t.assert_empty();
}

/// One process fills the table; another's next lock is out of shared
/// memory until the first releases.
#[test]
fn a_full_table_fails_other_processes_until_it_empties() {
    let t = TestLocks::new(2, 10);
    let f: &Flags = shared();
    let child = fork_child(|| {
        let mut m = t.manager(0);
        let mut n = 0;
        let code = loop {
            match m.lock_acquire(rel(n), ShareUpdateExclusive, LockWait::Block, ok()) {
                Ok(LockResult::Acquired) => n += 1,
                Ok(_) => break 2,
                Err(e) if e.code == SqlState::OUT_OF_MEMORY => break 0,
                Err(_) => break 3,
            }
        };
        f.a.store(u64::from(n), SeqCst);
        f.wait_until("the parent's attempt", |f| Flags::load(&f.b) == 1);
        m.lock_release_all();
        code
    });
    f.wait_until("the table to fill", |f| Flags::load(&f.a) > 0);
    let size = LockTableSize::new(t.shmem.params().num_procs(), 10);
    assert_eq!(Flags::load(&f.a) as usize, size.max_locks);
    let mut m = t.manager(1);
    let e = m
        .lock_acquire(rel(100_000), ShareUpdateExclusive, LockWait::Block, ok())
        .unwrap_err();
    assert_eq!(e.code, SqlState::OUT_OF_MEMORY);
    assert_eq!(
        e.hint.as_deref(),
        Some("You might need to increase max_locks_per_transaction.")
    );
    // The fast path needs no table entry.
    assert_eq!(
        m.lock_acquire(rel(100_001), AccessShare, LockWait::Block, ok()),
        Ok(LockResult::Acquired)
    );
    f.b.store(1, SeqCst);
    assert_eq!(wait_child(child, TIMEOUT), 0);
    assert_eq!(
        m.lock_acquire(rel(100_000), ShareUpdateExclusive, LockWait::Block, ok()),
        Ok(LockResult::Acquired)
    );
    m.lock_release_all();
    t.assert_empty();
}
