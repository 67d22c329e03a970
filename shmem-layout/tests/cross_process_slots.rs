//! Child slots and proc entries across real processes.
//!
//! Each test creates a real segment with `Shmem::create`, forks children that
//! re-attach it from a duplicated descriptor (as exec'd children do from the
//! inherited one), and checks what the claims and the activity seqlock
//! promise when several processes race. Children leave with `_exit(status)`;
//! any non-zero status fails the test in the parent.

use shmem_layout::procarray::BackendState;
use shmem_layout::{ProcKind, Shmem, SizingParams};
use std::os::fd::{BorrowedFd, IntoRawFd};
use std::time::{Duration, Instant};

fn params() -> SizingParams {
    SizingParams {
        max_connections: 8,
        superuser_reserved_connections: 0,
        autovacuum_max_workers: 1,
        track_activity_query_size: 128,
        shared_buffers: 0,
        wal_buffers_pages: 0,
        max_locks_per_transaction: 64,
        buffer_pool_bytes: 0,
        wal_bytes: 0,
        clog_bytes: 0,
        transam_bytes: 0,
        checkpointer_bytes: 0,
        lock_table_bytes: 0,
    }
}

/// Attaches the parent's segment the way an exec'd child does.
fn reattach(shm: &Shmem) -> Shmem {
    // SAFETY: the descriptor is open for the life of `shm`.
    let fd = nix::unistd::dup(unsafe { BorrowedFd::borrow_raw(shm.raw_fd()) }).expect("dup");
    Shmem::attach(fd.into_raw_fd()).expect("attach")
}

/// Forks a child running `body`, which returns its exit status.
fn fork_child(body: impl FnOnce() -> i32) -> nix::unistd::Pid {
    // SAFETY: the child only touches the segment and then _exits.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: leaving the forked child without running the harness.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    }
}

fn wait_ok(pids: &[nix::unistd::Pid]) {
    for &p in pids {
        match nix::sys::wait::waitpid(p, None).expect("waitpid") {
            nix::sys::wait::WaitStatus::Exited(_, 0) => {}
            other => panic!("child failed: {other:?}"),
        }
    }
}

#[test]
fn racing_processes_never_claim_the_same_proc_entry_or_slot() {
    let shm = Shmem::create(params(), std::process::id() as i32).unwrap();
    // Four processes each try to claim 4 proc entries and 10 slots: more
    // than exist, so some claims must fail and none may be doubled.
    let pids: Vec<_> = (0..4)
        .map(|n| {
            let shm = &shm;
            fork_child(move || {
                let me = reattach(shm);
                let pid = 1000 + n;
                for _ in 0..4 {
                    if let Some(p) = me.backend_procs().iter().find(|p| p.try_claim()) {
                        p.set_owner(pid, ProcKind::Backend, n as u32);
                    }
                }
                // The exit status reports how many slots this process got.
                let mut got = 0;
                for _ in 0..10 {
                    if let Some(s) = me
                        .child_slots()
                        .iter()
                        .find(|s| s.try_assign(ProcKind::Backend))
                    {
                        s.mark_active(pid);
                        got += 1;
                    }
                }
                got
            })
        })
        .collect();
    let mut slots_won = 0;
    for p in pids {
        match nix::sys::wait::waitpid(p, None).expect("waitpid") {
            nix::sys::wait::WaitStatus::Exited(_, n) if n <= 10 => slots_won += n as usize,
            other => panic!("child failed: {other:?}"),
        }
    }
    let claimed: Vec<i32> = shm
        .backend_procs()
        .iter()
        .filter(|p| p.is_in_use())
        .map(|p| p.pid())
        .collect();
    assert_eq!(claimed.len(), 8, "all 8 entries claimed, by 16 attempts");
    for n in 0..4 {
        let c = claimed.iter().filter(|&&p| p == 1000 + n).count();
        assert!(c <= 4, "process {n} holds {c} entries");
    }
    let slots = shm.child_slots().len();
    assert!(slots < 40, "the test asks for more slots than exist");
    assert_eq!(
        shm.child_slots().iter().filter(|s| s.pid() != 0).count(),
        slots
    );
    assert_eq!(slots_won, slots, "each slot was won by exactly one process");
}

#[test]
fn a_reader_in_another_process_never_sees_a_torn_query_text() {
    let shm = Shmem::create(params(), std::process::id() as i32).unwrap();
    let p = &shm.backend_procs()[2];
    assert!(p.try_claim());
    let idx = shm.proc_index(p);
    let writer = {
        let shm = &shm;
        fork_child(move || {
            let me = reattach(shm);
            let p = &me.procs()[idx];
            p.set_owner(std::process::id() as i32, ProcKind::Backend, 1);
            let a = "a".repeat(100);
            let b = "b".repeat(37);
            let end = Instant::now() + Duration::from_millis(400);
            let mut i = 0u64;
            while Instant::now() < end {
                let q = if i % 2 == 0 { &a } else { &b };
                p.report_state(BackendState::Active, Some(q), &me.query_text(idx), i as i64);
                i += 1;
            }
            0
        })
    };
    let end = Instant::now() + Duration::from_millis(300);
    let mut seen = 0;
    while Instant::now() < end {
        if let Some(s) = p.snapshot(&shm.query_text(idx)) {
            let q = s.query;
            let ok = q.is_empty() || q == "a".repeat(100) || q == "b".repeat(37);
            assert!(ok, "torn query text: {q:?}");
            seen += 1;
        }
    }
    wait_ok(&[writer]);
    assert!(seen > 0, "the reader got at least one consistent copy");
}

#[test]
fn a_child_that_dies_while_active_is_reported_by_its_slot() {
    let shm = Shmem::create(params(), std::process::id() as i32).unwrap();
    let slot = shm
        .child_slots()
        .iter()
        .position(|s| s.try_assign(ProcKind::BgWriter))
        .unwrap();
    let dies = {
        let shm = &shm;
        fork_child(move || {
            let me = reattach(shm);
            me.child_slots()[slot].mark_active(std::process::id() as i32);
            // Dies without mark_inactive, as a crash would.
            3
        })
    };
    let _ = nix::sys::wait::waitpid(dies, None);
    assert!(
        !shm.child_slots()[slot].release(),
        "release reports the unclean exit"
    );

    let slot = shm
        .child_slots()
        .iter()
        .position(|s| s.try_assign(ProcKind::BgWriter))
        .unwrap();
    let clean = {
        let shm = &shm;
        fork_child(move || {
            let me = reattach(shm);
            let s = &me.child_slots()[slot];
            s.mark_active(std::process::id() as i32);
            s.mark_inactive();
            0
        })
    };
    wait_ok(&[clean]);
    assert!(
        shm.child_slots()[slot].release(),
        "a clean exit is not a crash"
    );
}
