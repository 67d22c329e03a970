//! The proc-array protocol across real processes: forked children share a
//! transaction region and a proc array in a `MAP_SHARED` mapping, as
//! backends share the segment.
//!
//! 1. Concurrent assignment: every xid is handed out exactly once, the set
//!    is dense from 3, and each child sees its own xids increase.
//! 2. Snapshots while others commit: writers assign, run and end
//!    transactions, publishing each xid's phase (RUNNING, ENDING, ENDED) in
//!    a shared array; checkers read the phases before and after taking a
//!    snapshot and verify P4: an xid ENDED before the snapshot is never in
//!    it, an xid RUNNING both before and after is always in it, and an xid
//!    the snapshot calls ended had begun ending before it was taken. The
//!    same for `is_running` (P7).
//! 3. Waiting: one child holds an xid, another blocks in `wait_for_xid` and
//!    must wake within 100 ms of `end_transaction`.
//!
//! Children run their body and `_exit(status)`; the parent reaps them with
//! a timeout.

use super::test_support::{
    fork_child, monotonic_ns, wait_child, SharedU64s, SharedU8s, TestRegion,
};
use super::xact_wait::XactWait;
use crate::types::Xid;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

// Child exit statuses.
const OK: i32 = 0;
const NOT_MONOTONIC: i32 = 2;
const ENDED_XID_IN_SNAPSHOT: i32 = 3;
const RUNNING_XID_MISSING: i32 = 4;
const BAD_SNAPSHOT_SHAPE: i32 = 5;
const ENDED_XID_RUNNING: i32 = 6;
const RUNNING_XID_NOT_RUNNING: i32 = 7;
const WAIT_FAILED: i32 = 8;
const NOTHING_CHECKED: i32 = 9;
const NO_START: i32 = 10;
const NOT_ENDED_BUT_NOT_IN_SNAPSHOT: i32 = 11;

/// Spins (yielding) until `cond` holds, or gives up after `limit`.
fn spin_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

#[test]
fn concurrent_assignment_hands_out_each_xid_once() {
    const CHILDREN: usize = 4;
    const PER_CHILD: usize = 3000;
    let region = TestRegion::new(CHILDREN);
    let results = SharedU64s::new(CHILDREN * PER_CHILD);
    let pids: Vec<_> = (0..CHILDREN)
        .map(|k| {
            let (region, results) = (&region, &results);
            fork_child(move || {
                let t = region.transam();
                let me = &t.procs()[k];
                let mut prev = 0;
                for i in 0..PER_CHILD {
                    let x = t.assign_xid(me);
                    if x.0 <= prev {
                        return NOT_MONOTONIC;
                    }
                    prev = x.0;
                    results.get()[k * PER_CHILD + i].store(x.0, Ordering::SeqCst);
                    t.end_transaction(me, x);
                }
                OK
            })
        })
        .collect();
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), OK);
    }
    let mut all: Vec<u64> = results
        .get()
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    all.sort_unstable();
    let n = (CHILDREN * PER_CHILD) as u64;
    let expected: Vec<u64> = (3..3 + n).collect();
    assert_eq!(all, expected, "every xid from 3 exactly once");
    let t = region.transam();
    assert_eq!(t.next_xid(), Xid(3 + n));
    assert_eq!(t.latest_completed_xid(), Xid(2 + n));
    assert!(t.procs().iter().all(|p| p.xid.load(Ordering::SeqCst) == 0));
}

const UNSEEN: u8 = 0;
const RUNNING: u8 = 1;
const ENDING: u8 = 2;
const ENDED: u8 = 3;

fn phases(status: &[AtomicU8], out: &mut Vec<u8>) {
    out.clear();
    out.extend(status.iter().map(|s| s.load(Ordering::SeqCst)));
}

/// One checker round: phases, snapshot, phases; then the same around
/// `is_running` for a sample. Returns how many RUNNING xids it verified.
fn check_round(
    t: &super::Transam<'_>,
    me: &shmem_layout::procarray::Proc,
    status: &[AtomicU8],
    before: &mut Vec<u8>,
    after: &mut Vec<u8>,
    last_xmax: &mut Xid,
) -> Result<u64, i32> {
    phases(status, before);
    let s = t.take_snapshot(me);
    phases(status, after);
    t.reset_xmin(me);
    let sorted = s.xip.windows(2).all(|w| w[0] < w[1]);
    let in_range = s.xip.iter().all(|&x| s.xmin <= x && x < s.xmax);
    if !sorted || !in_range || s.xmin > s.xmax || s.xmax < *last_xmax {
        return Err(BAD_SNAPSHOT_SHAPE);
    }
    *last_xmax = s.xmax;
    let mut verified = 0;
    for (x, (&b, &a)) in before.iter().zip(after.iter()).enumerate() {
        let xid = Xid(x as u64);
        if b == ENDED && s.xid_in_snapshot(xid) {
            return Err(ENDED_XID_IN_SNAPSHOT);
        }
        // The converse: whatever the snapshot calls ended had at least
        // begun ending before it was taken (P1 makes this hold for xids
        // whose assignment was still under way).
        if xid.is_normal() && !s.xid_in_snapshot(xid) && a != ENDING && a != ENDED {
            return Err(NOT_ENDED_BUT_NOT_IN_SNAPSHOT);
        }
        if b == RUNNING && a == RUNNING {
            if !s.xid_in_snapshot(xid) {
                return Err(RUNNING_XID_MISSING);
            }
            verified += 1;
        }
    }
    // is_running on a sample: the newest xids, where the action is.
    let newest = before.iter().rposition(|&p| p != UNSEEN).unwrap_or(0);
    for x in newest.saturating_sub(8)..=newest {
        let xid = Xid(x as u64);
        let b = status[x].load(Ordering::SeqCst);
        let running = t.is_running(xid);
        let a = status[x].load(Ordering::SeqCst);
        if b == ENDED && running {
            return Err(ENDED_XID_RUNNING);
        }
        if b == RUNNING && a == RUNNING && !running {
            return Err(RUNNING_XID_NOT_RUNNING);
        }
    }
    Ok(verified)
}

#[test]
fn snapshots_never_miss_running_xids_nor_show_ended_ones() {
    const WRITERS: usize = 3;
    const CHECKERS: usize = 2;
    const PER_WRITER: usize = 2000;
    let total_xids = 3 + WRITERS * PER_WRITER;
    let region = TestRegion::new(WRITERS + CHECKERS);
    let status = SharedU8s::new(total_xids);
    // [0] writers finished, [1..] RUNNING xids each checker verified.
    let board = SharedU64s::new(1 + CHECKERS);

    let mut pids = Vec::new();
    for w in 0..WRITERS {
        let (region, status, board) = (&region, &status, &board);
        pids.push(fork_child(move || {
            let t = region.transam();
            let me = &t.procs()[w];
            let status = status.get();
            for i in 0..PER_WRITER {
                let x = t.assign_xid(me);
                status[x.0 as usize].store(RUNNING, Ordering::SeqCst);
                // Keep some transactions open for a while, with a snapshot.
                if i % 7 == 0 {
                    let s = t.take_snapshot(me);
                    if s.xip.contains(&x) {
                        return BAD_SNAPSHOT_SHAPE;
                    }
                    for _ in 0..50 {
                        std::thread::yield_now();
                    }
                }
                status[x.0 as usize].store(ENDING, Ordering::SeqCst);
                t.end_transaction(me, x);
                status[x.0 as usize].store(ENDED, Ordering::SeqCst);
            }
            board.get()[0].fetch_add(1, Ordering::SeqCst);
            OK
        }));
    }
    for c in 0..CHECKERS {
        let (region, status, board) = (&region, &status, &board);
        pids.push(fork_child(move || {
            let t = region.transam();
            let me = &t.procs()[WRITERS + c];
            let (mut before, mut after) = (Vec::new(), Vec::new());
            let mut last_xmax = Xid::INVALID;
            let mut verified = 0;
            loop {
                let writers_done = board.get()[0].load(Ordering::SeqCst) == WRITERS as u64;
                match check_round(
                    &t,
                    me,
                    status.get(),
                    &mut before,
                    &mut after,
                    &mut last_xmax,
                ) {
                    Ok(n) => verified += n,
                    Err(code) => return code,
                }
                if writers_done {
                    break;
                }
            }
            board.get()[1 + c].store(verified, Ordering::SeqCst);
            if verified == 0 {
                return NOTHING_CHECKED;
            }
            OK
        }));
    }
    for pid in pids {
        assert_eq!(wait_child(pid, CHILD_TIMEOUT), OK);
    }
    let t = region.transam();
    assert_eq!(t.next_xid(), Xid(total_xids as u64));
    // Nothing runs any more: a final snapshot is empty and xmin = xmax.
    let me = &t.procs()[WRITERS];
    let s = t.take_snapshot(me);
    assert!(s.xip.is_empty());
    assert_eq!(
        (s.xmin, s.xmax),
        (Xid(total_xids as u64), Xid(total_xids as u64))
    );
    assert_eq!(t.global_xmin(), Xid(total_xids as u64));
}

#[test]
fn a_waiter_in_another_process_wakes_promptly_when_the_xid_ends() {
    let region = TestRegion::new(2);
    // [0] the holder's xid, [1] when it began ending (ns), [2] when the
    // waiter woke (ns), [3] how long the waiter was blocked (ns).
    let board = SharedU64s::new(4);
    let holder = {
        let (region, board) = (&region, &board);
        fork_child(move || {
            let t = region.transam();
            let me = &t.procs()[0];
            let x = t.assign_xid(me);
            board.get()[0].store(x.0, Ordering::SeqCst);
            // End only once the waiter is registered, and has slept a while.
            if !spin_until(Duration::from_secs(30), || t.xact_waiters(0) > 0) {
                return NO_START;
            }
            std::thread::sleep(Duration::from_millis(150));
            board.get()[1].store(monotonic_ns(), Ordering::SeqCst);
            t.end_transaction(me, x);
            OK
        })
    };
    let waiter = {
        let (region, board) = (&region, &board);
        fork_child(move || {
            let t = region.transam();
            let published: &AtomicU64 = &board.get()[0];
            if !spin_until(Duration::from_secs(30), || {
                published.load(Ordering::SeqCst) != 0
            }) {
                return NO_START;
            }
            let x = Xid(published.load(Ordering::SeqCst));
            let started = monotonic_ns();
            // Interrupt checks far apart: only the wake-up can end this wait
            // in time.
            let got = t.wait_for_xid_checking_every(
                x,
                Some(Duration::from_secs(60)),
                Duration::from_secs(30),
                &mut || Ok(()),
            );
            let woke = monotonic_ns();
            board.get()[2].store(woke, Ordering::SeqCst);
            board.get()[3].store(woke - started, Ordering::SeqCst);
            if got != Ok(XactWait::Ended) || t.is_running(x) {
                return WAIT_FAILED;
            }
            OK
        })
    };
    assert_eq!(wait_child(holder, CHILD_TIMEOUT), OK);
    assert_eq!(wait_child(waiter, CHILD_TIMEOUT), OK);
    let (ended, woke, blocked) = (
        board.get()[1].load(Ordering::SeqCst),
        board.get()[2].load(Ordering::SeqCst),
        board.get()[3].load(Ordering::SeqCst),
    );
    assert!(woke >= ended, "the waiter returned before the xid ended");
    assert!(
        Duration::from_nanos(blocked) >= Duration::from_millis(150),
        "the waiter really blocked"
    );
    let latency = Duration::from_nanos(woke - ended);
    assert!(
        latency < Duration::from_millis(100),
        "woke {latency:?} after the end"
    );
}
