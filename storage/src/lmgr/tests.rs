//! The lock manager in one process: several [`LockManager`]s on one real
//! segment, each owning its own proc entry, blocking ones in threads. The
//! queue rules Q1-Q3, the fast path and its transfer, NoWait, interrupts,
//! a full table, a three-way deadlock, random contention; and (ignored,
//! run by hand) the cost of an uncontended acquire/release pair.

use super::*;
use crate::types::{Oid, Xid};
use pgerror::SqlState;
use shmem_layout::{ProcKind, Shmem, SizingParams};
use std::time::{Duration, Instant};
use LockMode::*;

/// A segment holding a proc array and a lock table, nothing else.
pub(super) struct TestLocks {
    pub shmem: Shmem,
}

impl TestLocks {
    pub fn new(backends: u32, max_locks_per_transaction: u32) -> TestLocks {
        let mut p = SizingParams {
            max_connections: backends,
            superuser_reserved_connections: 0,
            autovacuum_max_workers: 0,
            track_activity_query_size: 64,
            shared_buffers: 0,
            wal_buffers_pages: 0,
            max_locks_per_transaction,
            buffer_pool_bytes: 0,
            wal_bytes: 0,
            clog_bytes: 0,
            transam_bytes: 0,
            checkpointer_bytes: 0,
            lock_table_bytes: 0,
        };
        p.lock_table_bytes = shmem_size_bytes(p.num_procs(), max_locks_per_transaction) as u64;
        let shmem = Shmem::create(p, std::process::id() as i32).expect("segment");
        crate::shmem::lock_table(&shmem).init();
        TestLocks { shmem }
    }

    pub fn table(&self) -> LockTable<'_> {
        crate::shmem::lock_table(&self.shmem)
    }

    /// Claims backend entry `i` for the calling process and returns its
    /// lock manager (deadlock checks after 100 ms).
    pub fn manager(&self, i: usize) -> LockManager<'_> {
        let p = &self.shmem.backend_procs()[i];
        assert!(p.try_claim(), "backend proc {i} is taken");
        p.set_owner(std::process::id() as i32, ProcKind::Backend, 0);
        let mut m = LockManager::new(self.table(), self.shmem.procs(), i);
        m.set_timeouts(Duration::from_millis(100), None);
        m
    }

    /// The table is empty again: every entry free, no fast-path lock.
    pub fn assert_empty(&self) {
        let t = self.table();
        let size = LockTableSize::new(
            self.shmem.params().num_procs(),
            self.shmem.params().max_locks_per_transaction,
        );
        assert_eq!(t.free_counts(), (size.max_locks, size.max_proclocks));
        for p in 0..t.num_procs() {
            assert!(
                t.fast_path_locks(p).is_empty(),
                "proc {p} has fast-path locks"
            );
        }
    }

    /// Waits (1 ms naps, 10 s at most) until `tag`'s queue is `waiting`.
    pub fn wait_for_queue(&self, tag: &LockTag, waiting: &[(usize, LockMode)]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let q = self.table().lock_status(tag).map(|s| s.waiting);
            if q.as_deref() == Some(waiting) {
                return;
            }
            assert!(Instant::now() < deadline, "queue is {q:?}, not {waiting:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

pub(super) fn rel(n: u32) -> LockTag {
    LockTag::relation(Oid(5), Oid(16384 + n))
}

pub(super) fn ok() -> impl FnMut() -> pgerror::PgResult<()> {
    || Ok(())
}

fn try_lock(m: &mut LockManager<'_>, tag: LockTag, mode: LockMode) -> LockResult {
    m.lock_acquire(tag, mode, LockWait::NoWait, ok())
        .expect("no error")
}

fn lock(m: &mut LockManager<'_>, tag: LockTag, mode: LockMode) -> LockResult {
    m.lock_acquire(tag, mode, LockWait::Block, ok())
        .expect("no error")
}

#[test]
fn reacquiring_a_held_lock_only_counts() {
    let t = TestLocks::new(2, 10);
    let mut a = t.manager(0);
    assert_eq!(lock(&mut a, rel(1), AccessShare), LockResult::Acquired);
    assert_eq!(lock(&mut a, rel(1), AccessShare), LockResult::AlreadyHeld);
    assert_eq!(lock(&mut a, rel(1), Share), LockResult::Acquired);
    assert!(a.lock_release(&rel(1), AccessShare));
    assert!(a.holds(&rel(1), AccessShare));
    assert!(a.lock_release(&rel(1), AccessShare));
    assert!(!a.holds(&rel(1), AccessShare) && a.holds(&rel(1), Share));
    assert!(!a.lock_release(&rel(1), AccessShare), "not held any more");
    assert!(a.lock_release(&rel(1), Share));
    assert!(a.held_locks().is_empty());
    t.assert_empty();
}

/// Every pair of modes, through the manager: the second process gets its
/// mode without waiting iff the two do not conflict, whichever path (fast
/// path, transfer, shared table) each one takes.
#[test]
fn the_manager_follows_the_conflict_table() {
    let t = TestLocks::new(2, 10);
    let (mut a, mut b) = (t.manager(0), t.manager(1));
    for first in LockMode::ALL {
        for second in LockMode::ALL {
            assert_eq!(lock(&mut a, rel(1), first), LockResult::Acquired);
            let want = if first.conflicts_with(second) {
                LockResult::NotAvailable
            } else {
                LockResult::Acquired
            };
            assert_eq!(
                try_lock(&mut b, rel(1), second),
                want,
                "{first} then {second}"
            );
            a.lock_release_all();
            b.lock_release_all();
            t.assert_empty();
        }
    }
}

#[test]
fn weak_locks_take_the_fast_path_until_a_strong_one_moves_them() {
    let t = TestLocks::new(2, 10);
    let table = t.table();
    let (mut a, mut b) = (t.manager(0), t.manager(1));
    lock(&mut a, rel(1), AccessShare);
    lock(&mut a, rel(1), RowExclusive);
    assert_eq!(
        table.fast_path_locks(0),
        vec![(Oid(5), Oid(16385), AccessShare.bit() | RowExclusive.bit())]
    );
    assert_eq!(
        table.lock_status(&rel(1)),
        None,
        "nothing in the shared table"
    );

    // A strong request moves them into the table, even when it fails.
    assert_eq!(try_lock(&mut b, rel(1), Share), LockResult::NotAvailable);
    assert!(table.fast_path_locks(0).is_empty());
    let status = table.lock_status(&rel(1)).expect("transferred");
    assert_eq!(
        status.granted,
        vec![(0, AccessShare.bit() | RowExclusive.bit())]
    );

    // Releasing finds them in the table.
    assert!(a.lock_release(&rel(1), RowExclusive));
    assert_eq!(try_lock(&mut b, rel(1), Share), LockResult::Acquired);
    // While the strong lock is held, weak requests use the table.
    lock(&mut a, rel(1), RowShare);
    assert!(table.fast_path_locks(0).is_empty());
    a.lock_release_all();
    b.lock_release_all();
    t.assert_empty();

    // Once it is gone, the fast path is open again; past 16 relations the
    // table takes the rest.
    for n in 0..20 {
        lock(&mut a, rel(n), AccessShare);
    }
    assert_eq!(table.fast_path_locks(0).len(), FP_LOCK_SLOTS_PER_BACKEND);
    assert!(table.lock_status(&rel(19)).is_some());
    a.lock_release_all();
    t.assert_empty();
}

/// Q1: a request compatible with every holder still queues behind a
/// conflicting waiter, so weak requests cannot starve a strong one.
#[test]
fn a_new_request_queues_behind_a_conflicting_waiter() {
    let t = TestLocks::new(3, 10);
    let (mut a, mut c) = (t.manager(0), t.manager(2));
    let mut b = t.manager(1);
    lock(&mut a, rel(1), AccessShare);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| lock(&mut b, rel(1), AccessExclusive));
        t.wait_for_queue(&rel(1), &[(1, AccessExclusive)]);
        assert_eq!(
            try_lock(&mut c, rel(1), AccessShare),
            LockResult::NotAvailable
        );
        a.lock_release_all();
        assert_eq!(waiter.join().unwrap(), LockResult::Acquired);
    });
    assert_eq!(
        try_lock(&mut c, rel(1), AccessShare),
        LockResult::NotAvailable
    );
    b.lock_release_all();
    assert_eq!(try_lock(&mut c, rel(1), AccessShare), LockResult::Acquired);
    c.lock_release_all();
    t.assert_empty();
}

/// Q2: a holder of something a waiter waits for goes ahead of it: granted
/// at once when nothing else conflicts, queued just before it otherwise.
#[test]
fn a_holder_goes_ahead_of_the_waiters_that_wait_for_it() {
    let t = TestLocks::new(3, 10);
    let (mut a, mut c) = (t.manager(0), t.manager(2));
    let mut b = t.manager(1);
    lock(&mut a, rel(1), AccessShare);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| lock(&mut b, rel(1), AccessExclusive));
        t.wait_for_queue(&rel(1), &[(1, AccessExclusive)]);
        // Behind B it would wait for B, which waits for it.
        assert_eq!(try_lock(&mut a, rel(1), RowExclusive), LockResult::Acquired);
        a.lock_release_all();
        assert_eq!(waiter.join().unwrap(), LockResult::Acquired);
    });
    b.lock_release_all();

    // Now with a conflicting holder C: A queues before B.
    lock(&mut a, rel(1), AccessShare);
    lock(&mut c, rel(1), RowExclusive);
    std::thread::scope(|s| {
        let b_wait = s.spawn(|| lock(&mut b, rel(1), AccessExclusive));
        t.wait_for_queue(&rel(1), &[(1, AccessExclusive)]);
        let at = &mut a;
        let a_wait = s.spawn(move || (lock(at, rel(1), Share), at));
        t.wait_for_queue(&rel(1), &[(0, Share), (1, AccessExclusive)]);
        c.lock_release_all();
        let (r, at) = a_wait.join().unwrap();
        assert_eq!(r, LockResult::Acquired);
        t.wait_for_queue(&rel(1), &[(1, AccessExclusive)]);
        at.lock_release_all();
        assert_eq!(b_wait.join().unwrap(), LockResult::Acquired);
    });
    b.lock_release_all();
    t.assert_empty();
}

/// Q3: a release grants waiters in queue order, and a compatible waiter
/// behind a blocked one stays queued.
#[test]
fn releases_grant_in_queue_order() {
    let t = TestLocks::new(4, 10);
    let mut a = t.manager(0);
    let (mut b, mut c, mut d) = (t.manager(1), t.manager(2), t.manager(3));
    lock(&mut a, rel(1), AccessExclusive);
    std::thread::scope(|s| {
        let (bt, ct, dt) = (&mut b, &mut c, &mut d);
        let b_wait = s.spawn(move || {
            let r = lock(bt, rel(1), AccessShare);
            (r, bt)
        });
        t.wait_for_queue(&rel(1), &[(1, AccessShare)]);
        let c_wait = s.spawn(move || {
            let r = lock(ct, rel(1), AccessExclusive);
            ct.lock_release_all();
            r
        });
        t.wait_for_queue(&rel(1), &[(1, AccessShare), (2, AccessExclusive)]);
        let d_wait = s.spawn(move || {
            let r = lock(dt, rel(1), AccessShare);
            dt.lock_release_all();
            r
        });
        t.wait_for_queue(
            &rel(1),
            &[(1, AccessShare), (2, AccessExclusive), (3, AccessShare)],
        );
        a.lock_release_all();
        let (r, bt) = b_wait.join().unwrap();
        assert_eq!(r, LockResult::Acquired);
        // D is compatible with B but stays behind C.
        t.wait_for_queue(&rel(1), &[(2, AccessExclusive), (3, AccessShare)]);
        bt.lock_release_all();
        assert_eq!(c_wait.join().unwrap(), LockResult::Acquired);
        assert_eq!(d_wait.join().unwrap(), LockResult::Acquired);
    });
    t.assert_empty();
}

#[test]
fn an_interrupt_ends_a_wait_with_its_error() {
    let t = TestLocks::new(2, 10);
    let (mut a, mut b) = (t.manager(0), t.manager(1));
    lock(&mut a, rel(1), AccessExclusive);
    let mut calls = 0;
    let started = Instant::now();
    let got = b.lock_acquire(rel(1), AccessShare, LockWait::Block, || {
        calls += 1;
        if calls == 3 {
            Err(pgerror::PgError::new(
                SqlState::QUERY_CANCELED,
                "canceling statement due to user request",
            ))
        } else {
            Ok(())
        }
    });
    assert_eq!(got.unwrap_err().code, SqlState::QUERY_CANCELED);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!b.holds(&rel(1), AccessShare));
    let status = t.table().lock_status(&rel(1)).unwrap();
    assert!(status.waiting.is_empty());
    a.lock_release_all();
    t.assert_empty();
}

#[test]
fn a_full_table_is_out_of_shared_memory_and_recovers() {
    let t = TestLocks::new(2, 10);
    let max_locks = LockTableSize::new(t.shmem.params().num_procs(), 10).max_locks;
    let (mut a, mut b) = (t.manager(0), t.manager(1));
    for n in 0..max_locks as u32 {
        lock(&mut a, rel(n), ShareUpdateExclusive);
    }
    let e = a
        .lock_acquire(rel(9999), ShareUpdateExclusive, LockWait::Block, ok())
        .unwrap_err();
    assert_eq!(e.code, SqlState::OUT_OF_MEMORY);
    assert_eq!(e.message, "out of shared memory");
    assert_eq!(
        e.hint.as_deref(),
        Some("You might need to increase max_locks_per_transaction.")
    );
    // A strong request that must transfer fast-path locks fails the same
    // way, and leaves no strong count behind.
    lock(&mut b, rel(20_000), AccessShare);
    let e = a
        .lock_acquire(rel(20_000), AccessExclusive, LockWait::NoWait, ok())
        .unwrap_err();
    assert_eq!(e.code, SqlState::OUT_OF_MEMORY);
    // Existing locks still work: another mode of a held lock needs no entry.
    assert_eq!(lock(&mut a, rel(0), RowExclusive), LockResult::Acquired);
    a.lock_release_all();
    b.lock_release_all();
    t.assert_empty();
    assert_eq!(lock(&mut b, rel(20_000), AccessShare), LockResult::Acquired);
    assert_eq!(
        t.table().fast_path_locks(1).len(),
        1,
        "fast path open again"
    );
    b.lock_release_all();
    t.assert_empty();
}

/// A cycle through three processes on relations; the victim's DETAIL names
/// every edge, starting with its own.
#[test]
fn a_three_way_deadlock_is_reported_with_every_edge() {
    let t = TestLocks::new(3, 10);
    let mut ms = [t.manager(0), t.manager(1), t.manager(2)];
    for (i, m) in ms.iter_mut().enumerate() {
        lock(m, rel(i as u32), AccessExclusive);
    }
    let pid = std::process::id();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = ms
            .iter_mut()
            .enumerate()
            .map(|(i, m)| {
                s.spawn(move || {
                    // Stagger so that the last to wait closes the cycle.
                    std::thread::sleep(Duration::from_millis(30 * i as u64));
                    let r = m.lock_acquire(
                        rel((i as u32 + 1) % 3),
                        AccessExclusive,
                        LockWait::Block,
                        ok(),
                    );
                    m.lock_release_all();
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{results:?}");
    let e = errors[0];
    assert_eq!(e.code, SqlState::DEADLOCK_DETECTED);
    assert_eq!(e.message, "deadlock detected");
    assert_eq!(e.hint.as_deref(), Some("See server log for query details."));
    let detail = e.detail.as_deref().unwrap();
    assert_eq!(detail.lines().count(), 3, "{detail}");
    for line in detail.lines() {
        assert!(
            line.starts_with(&format!(
                "Process {pid} waits for AccessExclusiveLock on relation 1638"
            )) && line.ends_with(&format!("of database 5; blocked by process {pid}.")),
            "{line}"
        );
    }
    t.assert_empty();
}

/// Row-level waits: a transaction holds Exclusive on its own id, a
/// waiter asks for Share and gets it when the transaction ends.
#[test]
fn a_transaction_lock_is_waited_for_until_its_holder_ends() {
    let t = TestLocks::new(2, 10);
    let (mut a, mut b) = (t.manager(0), t.manager(1));
    let xid = LockTag::TransactionId(Xid(1234));
    lock(&mut a, xid, Exclusive);
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            let r = lock(&mut b, xid, Share);
            b.lock_release_all();
            r
        });
        t.wait_for_queue(&xid, &[(1, Share)]);
        a.lock_release_all();
        assert_eq!(w.join().unwrap(), LockResult::Acquired);
    });
    t.assert_empty();
}

/// The cost of an uncontended acquire/release pair on each path. Run with
/// `cargo test --release -p storage lmgr::tests::uncontended -- --ignored --nocapture`.
#[test]
#[ignore]
fn uncontended_acquire_release_cost() {
    let t = TestLocks::new(2, 64);
    let mut a = t.manager(0);
    const N: u32 = 2_000_000;
    let mut measure = |what: &str, mode: LockMode, hold_first: bool| {
        if hold_first {
            lock(&mut a, rel(7), mode);
        }
        let started = Instant::now();
        for _ in 0..N {
            a.lock_acquire(rel(7), mode, LockWait::Block, ok()).unwrap();
            a.lock_release(&rel(7), mode);
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(N);
        println!("{what}: {ns:.1} ns per acquire/release pair");
        a.lock_release_all();
    };
    measure("AccessShare, fast path", AccessShare, false);
    measure("RowExclusive, fast path", RowExclusive, false);
    measure(
        "ShareUpdateExclusive, shared table",
        ShareUpdateExclusive,
        false,
    );
    measure(
        "AccessExclusive, shared table + transfer",
        AccessExclusive,
        false,
    );
    measure("AccessShare, already held (local table)", AccessShare, true);
    t.assert_empty();
}

#[test]
fn dropping_the_handle_releases_its_locks() {
    let t = TestLocks::new(2, 10);
    let mut a = t.manager(0);
    lock(&mut a, rel(1), AccessShare);
    lock(&mut a, rel(2), AccessExclusive);
    drop(a);
    t.assert_empty();
}

/// What the crash cycle relies on: `init` on a used table (as on a fresh
/// segment) leaves it empty.
#[test]
fn init_forgets_every_lock() {
    let t = TestLocks::new(2, 10);
    let mut a = t.manager(0);
    lock(&mut a, rel(1), AccessShare);
    lock(&mut a, rel(2), AccessExclusive);
    std::mem::forget(a);
    t.table().init();
    t.assert_empty();
    assert_eq!(t.table().lock_status(&rel(2)), None);
}

/// Threads take and release random modes on three relations, blocking
/// (with short timeouts, so deadlocks and lock timeouts happen), with
/// NoWait, or releasing everything as an abort would. Each records its
/// holdings in shared counters after acquiring and before releasing; a
/// process granted a mode must never see another one counted in a
/// conflicting mode. Afterwards the table is empty.
#[test]
fn random_contention_never_grants_conflicting_modes() {
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    const THREADS: usize = 4;
    const RELS: usize = 3;
    let t = TestLocks::new(THREADS as u32, 10);
    let holders: [[AtomicU32; 9]; RELS] = Default::default();
    let violations = AtomicU32::new(0);
    let deadlocks = AtomicU32::new(0);
    let timeouts = AtomicU32::new(0);
    let start = std::sync::Barrier::new(THREADS);
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let (t, holders, violations) = (&t, &holders, &violations);
            let (deadlocks, timeouts) = (&deadlocks, &timeouts);
            let start = &start;
            s.spawn(move || {
                let mut m = t.manager(i);
                start.wait();
                m.set_timeouts(Duration::from_millis(20), Some(Duration::from_millis(60)));
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
                let mut next = move |n: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % n
                };
                let mut held: Vec<(usize, LockMode)> = Vec::new();
                // One entry per acquisition; the counters count holders.
                let forget_all = |held: &mut Vec<(usize, LockMode)>| {
                    held.sort_unstable();
                    held.dedup();
                    for (r, mode) in held.drain(..) {
                        holders[r][mode as usize].fetch_sub(1, SeqCst);
                    }
                };
                for _ in 0..1000 {
                    let roll = next(100);
                    if roll < 60 {
                        let r = next(RELS as u64) as usize;
                        let mode = LockMode::ALL[next(8) as usize];
                        let wait = if roll < 20 {
                            LockWait::NoWait
                        } else {
                            LockWait::Block
                        };
                        match m.lock_acquire(rel(r as u32), mode, wait, ok()) {
                            Ok(LockResult::AlreadyHeld) => held.push((r, mode)),
                            Ok(LockResult::Acquired) => {
                                let clash = LockMode::iter_mask(mode.conflicts()).any(|other| {
                                    let mine = u32::from(held.contains(&(r, other)));
                                    holders[r][other as usize].load(SeqCst) > mine
                                });
                                if clash {
                                    violations.fetch_add(1, SeqCst);
                                }
                                holders[r][mode as usize].fetch_add(1, SeqCst);
                                held.push((r, mode));
                                for _ in 0..200 {
                                    std::hint::spin_loop();
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                match e.code {
                                    SqlState::DEADLOCK_DETECTED => deadlocks.fetch_add(1, SeqCst),
                                    SqlState::LOCK_NOT_AVAILABLE => timeouts.fetch_add(1, SeqCst),
                                    _ => panic!("{e:?}"),
                                };
                                forget_all(&mut held);
                                m.lock_release_all();
                            }
                        }
                    } else if roll < 95 && !held.is_empty() {
                        let (r, mode) = held.swap_remove(next(held.len() as u64) as usize);
                        if !held.contains(&(r, mode)) {
                            holders[r][mode as usize].fetch_sub(1, SeqCst);
                        }
                        assert!(m.lock_release(&rel(r as u32), mode));
                    } else {
                        forget_all(&mut held);
                        m.lock_release_all();
                    }
                }
                forget_all(&mut held);
                m.lock_release_all();
            });
        }
    });
    assert_eq!(violations.load(SeqCst), 0);
    eprintln!(
        "{} deadlocks, {} lock timeouts",
        deadlocks.load(SeqCst),
        timeouts.load(SeqCst)
    );
    t.assert_empty();
}
