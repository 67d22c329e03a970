//! The checkpointer's shared state across forked processes on a real
//! segment: requests reach the checkpointer and release their waiters only
//! after a checkpoint that started later; fsync and unlink requests of a
//! writer reach the checkpointer; a checkpoint waits for DELAY_CHKPT_START.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crate::recovery::{create_checkpoint, CheckpointFlags, CheckpointKind, CheckpointReason};
use crate::smgr::SegmentTag;
use crate::test_cluster::{monotonic_ns, shared, Flags, TestCluster};
use crate::test_process::{fork_child, wait_child};
use crate::types::{BlockNumber, ForkNumber, Oid, RelFileLocator, BLCKSZ, DEFAULTTABLESPACE_OID};

const TIMEOUT: Duration = Duration::from_secs(30);

fn rel(n: u32) -> RelFileLocator {
    RelFileLocator {
        spc_oid: DEFAULTTABLESPACE_OID,
        db_oid: Oid(5),
        rel_number: Oid(n),
    }
}

/// In a child: become the checkpointer (SIGINT only wakes it).
fn become_checkpointer(c: &TestCluster) {
    // SAFETY: ignoring a signal in this single-purpose child.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    c.queue().set_checkpointer_pid(std::process::id() as i32);
}

/// In a child: waits (5 ms naps, up to 10 s) until some flags are pending.
fn wait_for_request(c: &TestCluster) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.queue().pending_flags().is_empty() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn a_request_reaches_the_checkpointer_and_learns_how_it_ended() {
    let c = TestCluster::start(false);
    let seen: &Flags = shared();
    let child = fork_child(|| {
        become_checkpointer(&c);
        for succeed in [true, false] {
            if !wait_for_request(&c) {
                return 2;
            }
            let flags = c.queue().start_checkpoint();
            seen.a.store(u64::from(flags.0), SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            c.queue().finish_checkpoint(succeed);
        }
        0
    });
    let q = c.queue();
    q.request(CheckpointFlags::COMMAND, TIMEOUT, || Ok(()))
        .expect("the first checkpoint succeeds");
    assert_eq!(
        seen.a.load(SeqCst),
        u64::from((CheckpointFlags::COMMAND | CheckpointFlags::REQUESTED).0)
    );
    let e = q
        .request(CheckpointFlags::COMMAND, TIMEOUT, || Ok(()))
        .expect_err("the second one fails");
    assert_eq!(e.message, "checkpoint request failed");
    assert_eq!(
        e.hint.as_deref(),
        Some("Consult recent messages in the server log for details.")
    );
    assert_eq!(wait_child(child, TIMEOUT), 0);
}

/// A request that arrives while a checkpoint runs waits for the next one
/// (rule F3): that one may have started before the requester's changes.
#[test]
fn a_request_during_a_checkpoint_waits_for_the_next_one() {
    let c = TestCluster::start(false);
    let f: &Flags = shared();
    let child = fork_child(|| {
        become_checkpointer(&c);
        // A timed checkpoint is under way when the request comes.
        c.queue().start_checkpoint();
        f.a.store(1, SeqCst);
        f.wait_until("the request", |_| !c.queue().pending_flags().is_empty());
        std::thread::sleep(Duration::from_millis(100));
        c.queue().finish_checkpoint(true);
        // The requested one.
        c.queue().start_checkpoint();
        f.b.store(monotonic_ns(), SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        c.queue().finish_checkpoint(true);
        0
    });
    f.wait_until("the first checkpoint", |f| Flags::load(&f.a) == 1);
    c.queue()
        .request(CheckpointFlags::COMMAND, TIMEOUT, || Ok(()))
        .unwrap();
    let returned = monotonic_ns();
    let second_started = f.b.load(SeqCst);
    assert!(
        second_started > 0,
        "returned before the second checkpoint began"
    );
    assert!(
        returned >= second_started + 90_000_000,
        "returned before it ended"
    );
    assert_eq!(wait_child(child, TIMEOUT), 0);
}

#[test]
fn fsync_and_unlink_requests_of_a_writer_reach_the_checkpointer() {
    let c = TestCluster::start(true);
    let q = c.queue();
    q.set_checkpointer_pid(std::process::id() as i32);
    let child = fork_child(|| {
        c.engine(|e| {
            let page = [0u8; BLCKSZ];
            e.smgr.create(rel(16384), ForkNumber::Main, false).unwrap();
            e.smgr
                .extend(rel(16384), ForkNumber::Main, BlockNumber(0), &page)
                .unwrap();
            e.smgr.create(rel(16385), ForkNumber::Main, false).unwrap();
            e.smgr.unlink(rel(16385), None, false).unwrap();
            assert!(e.smgr.take_pending_syncs().is_empty());
            assert!(e.smgr.take_pending_unlinks().is_empty());
        });
        0
    });
    assert_eq!(wait_child(child, TIMEOUT), 0);
    let seg0 = |n| SegmentTag {
        rel: rel(n),
        fork: ForkNumber::Main,
        segno: 0,
    };
    let a = q.absorb();
    assert_eq!(a.fsyncs, vec![seg0(16384)]);
    assert_eq!(a.unlinks, vec![seg0(16385)]);
    assert_eq!(q.writer_fsyncs(), 0);

    // With no checkpointer the writer fsyncs itself, and keeps its
    // tombstone.
    q.set_checkpointer_pid(0);
    let child = fork_child(|| {
        c.engine(|e| {
            let page = [0u8; BLCKSZ];
            e.smgr
                .extend(rel(16384), ForkNumber::Main, BlockNumber(1), &page)
                .unwrap();
            assert!(e.smgr.take_pending_syncs().is_empty());
            e.smgr.create(rel(16386), ForkNumber::Main, false).unwrap();
            e.smgr.unlink(rel(16386), None, false).unwrap();
            assert_eq!(e.smgr.take_pending_unlinks(), vec![seg0(16386)]);
        });
        0
    });
    assert_eq!(wait_child(child, TIMEOUT), 0);
    assert!(q.absorb().is_empty());
    assert_eq!(q.writer_fsyncs(), 1);
}

/// A commit between its record and its commit-log status holds back a
/// checkpoint whose redo point was fixed meanwhile (DELAY_CHKPT_START).
#[test]
fn a_checkpoint_waits_for_commits_that_delay_it() {
    let c = TestCluster::start(false);
    let f: &Flags = shared();
    let child = fork_child(|| {
        let p = c.backend_proc(0);
        p.set_delay_chkpt_start();
        f.a.store(1, SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        f.b.store(monotonic_ns(), SeqCst);
        p.clear_delay_chkpt_start();
        p.release();
        0
    });
    f.wait_until("the commit to start", |f| Flags::load(&f.a) == 1);
    let kind = CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::COMMAND));
    let started = monotonic_ns();
    c.checkpointing_engine(|e| create_checkpoint(kind, e, Default::default(), |_, _| {}))
        .expect("checkpoint");
    let ended = monotonic_ns();
    let cleared = f.b.load(SeqCst);
    assert!(
        cleared > 0 && ended >= cleared,
        "the checkpoint did not wait"
    );
    assert!(ended - started >= 100_000_000);
    assert_eq!(wait_child(child, TIMEOUT), 0);
    // Nobody delaying: no wait.
    let started = monotonic_ns();
    c.checkpointing_engine(|e| create_checkpoint(kind, e, Default::default(), |_, _| {}))
        .expect("checkpoint");
    assert!(monotonic_ns() - started < 250_000_000);
}
