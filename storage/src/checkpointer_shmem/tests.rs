//! The queue and the request protocol in one process: what a forwarder,
//! the checkpointer and a requester each see.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::Mutex;
use std::time::Duration;

use pgerror::SqlState;

use super::*;
use crate::recovery::CheckpointFlags;
use crate::smgr::{SegmentTag, Smgr, SmgrOptions, SyncRequestForwarder};
use crate::types::{BlockNumber, ForkNumber, Oid, RelFileLocator, BLCKSZ, DEFAULTTABLESPACE_OID};

/// A zero-filled, 64-byte aligned region for a queue of `n` entries.
struct Region {
    ptr: *mut u8,
    layout: Layout,
}

impl Region {
    fn new(n: usize) -> Region {
        let layout = Layout::from_size_align(shmem_size_bytes(n), 64).expect("layout");
        // SAFETY: a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        let r = Region { ptr, layout };
        r.queue().init();
        r
    }

    fn queue(&self) -> CheckpointerQueue<'_> {
        // SAFETY: aligned, sized for the queue, zero-filled, alive as long
        // as the borrow.
        unsafe { CheckpointerQueue::attach(self.ptr, self.layout.size()) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

fn tag(rel: u32, segno: u32) -> SegmentTag {
    SegmentTag {
        rel: RelFileLocator {
            spc_oid: DEFAULTTABLESPACE_OID,
            db_oid: Oid(5),
            rel_number: Oid(rel),
        },
        fork: ForkNumber::Main,
        segno,
    }
}

#[test]
fn the_region_holds_the_queue_it_was_sized_for() {
    assert_eq!(shmem_size_bytes(1024), 64 + 1024 * 24);
    assert_eq!(max_requests_for(16), 1024);
    assert_eq!(max_requests_for(16384), 16384);
    let r = Region::new(8);
    assert_eq!(r.queue().max_requests(), 8);
    assert!(r.queue().is_empty());
    assert_eq!(r.queue().checkpointer_pid(), 0);
    assert!(!r.queue().recovery_finished());
}

#[test]
fn absorbing_takes_every_request_once_in_order() {
    let r = Region::new(8);
    let q = r.queue();
    for (kind, t) in [
        (RequestKind::Fsync, tag(1, 0)),
        (RequestKind::Unlink, tag(9, 0)),
        (RequestKind::Fsync, tag(2, 3)),
        (RequestKind::Fsync, tag(1, 0)),
    ] {
        assert!(q.forward(kind, t).queued);
    }
    assert_eq!(q.len(), 4);
    let a = q.absorb();
    assert_eq!(a.fsyncs, vec![tag(1, 0), tag(2, 3)]);
    assert_eq!(a.unlinks, vec![tag(9, 0)]);
    assert!(q.is_empty());
    assert!(q.absorb().is_empty());
}

#[test]
fn a_full_queue_is_compacted_keeping_the_last_of_each_request() {
    let r = Region::new(6);
    let q = r.queue();
    // 1 2 1 3 2 1: the earlier 1s and the first 2 are repeated later.
    for rel in [1, 2, 1, 3, 2, 1] {
        assert!(q.forward(RequestKind::Fsync, tag(rel, 0)).queued);
    }
    assert_eq!(q.len(), 6);
    let f = q.forward(RequestKind::Fsync, tag(4, 0));
    assert!(f.queued, "compaction made room");
    assert!(f.too_full);
    // 3 2 1 survive in their order, then the new one.
    assert_eq!(q.len(), 4);
    assert_eq!(
        q.absorb().fsyncs,
        vec![tag(3, 0), tag(2, 0), tag(1, 0), tag(4, 0)]
    );
    // An fsync and an unlink of the same segment are different requests.
    for _ in 0..3 {
        q.forward(RequestKind::Fsync, tag(7, 0));
        q.forward(RequestKind::Unlink, tag(7, 0));
    }
    assert!(q.forward(RequestKind::Unlink, tag(8, 0)).queued);
    let a = q.absorb();
    assert_eq!(a.fsyncs, vec![tag(7, 0)]);
    assert_eq!(a.unlinks, vec![tag(7, 0), tag(8, 0)]);
}

#[test]
fn a_full_queue_without_duplicates_refuses() {
    let r = Region::new(4);
    let q = r.queue();
    let mut too_full = vec![];
    for rel in 0..4 {
        let f = q.forward(RequestKind::Fsync, tag(rel, 0));
        assert!(f.queued);
        too_full.push(f.too_full);
    }
    assert_eq!(too_full, [false, true, true, true], "half full wakes");
    let f = q.forward(RequestKind::Fsync, tag(99, 0));
    assert_eq!(
        f,
        Forwarded {
            queued: false,
            too_full: true
        }
    );
    assert_eq!(q.len(), 4, "nothing was lost or added");
}

/// A forwarder over a test queue that counts the fsyncs it refused.
struct QueueForwarder {
    queue: CheckpointerQueue<'static>,
    refused: Mutex<Vec<SegmentTag>>,
}

impl SyncRequestForwarder for QueueForwarder {
    fn forward_fsync(&self, tag: SegmentTag) -> bool {
        let queued = self.queue.forward(RequestKind::Fsync, tag).queued;
        if !queued {
            self.refused.lock().unwrap().push(tag);
        }
        queued
    }
    fn forward_unlink(&self, tag: SegmentTag) -> bool {
        self.queue.forward(RequestKind::Unlink, tag).queued
    }
}

// SAFETY: the queue is shared memory made of atomics and locks.
unsafe impl Send for QueueForwarder {}

#[test]
fn an_smgr_with_a_forwarder_queues_or_fsyncs_itself_before_returning() {
    let region: &'static Region = Box::leak(Box::new(Region::new(2)));
    let forwarder = Box::new(QueueForwarder {
        queue: region.queue(),
        refused: Mutex::new(vec![]),
    });
    let refused: *const Mutex<Vec<SegmentTag>> = &forwarder.refused;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("base")).unwrap();
    let mut smgr = Smgr::new(
        dir.path(),
        SmgrOptions {
            fsync: true,
            segment_size_blocks: 2,
            ..SmgrOptions::default()
        },
    );
    smgr.set_sync_forwarder(forwarder).unwrap();
    assert!(smgr.forwards_sync_requests());
    let rel = tag(16384, 0).rel;
    smgr.create(rel, ForkNumber::Main, false).unwrap();
    let page = [0u8; BLCKSZ];
    let extend = |smgr: &mut Smgr, b: u32| {
        smgr.extend(rel, ForkNumber::Main, BlockNumber(b), &page)
            .unwrap()
    };
    // Two blocks per segment, two entries in the queue. Blocks 0 and 1
    // fill it with segment 0 twice; block 2 (segment 1) finds it full, and
    // compaction drops the first duplicate; block 3 finds it full of
    // distinct requests: its writer fsyncs segment 1 itself.
    for b in 0..4 {
        extend(&mut smgr, b);
    }
    // SAFETY: the forwarder lives inside `smgr`, which is alive.
    let refused = || unsafe { &*refused }.lock().unwrap().clone();
    assert_eq!(refused(), vec![tag(16384, 1)], "fsynced by the writer");
    assert!(
        smgr.take_pending_syncs().is_empty(),
        "nothing stays in a forwarding process"
    );
    let q = region.queue();
    assert_eq!(q.absorb().fsyncs, vec![tag(16384, 0), tag(16384, 1)]);
    // Absorbed: room again.
    smgr.write(rel, ForkNumber::Main, BlockNumber(0), &page)
        .unwrap();
    extend(&mut smgr, 4);
    assert_eq!(q.absorb().fsyncs, vec![tag(16384, 0), tag(16384, 2)]);
    assert_eq!(refused().len(), 1);

    // Dropping the relation hands its tombstone over.
    smgr.unlink(rel, None, false).unwrap();
    assert!(smgr.take_pending_unlinks().is_empty());
    assert_eq!(q.absorb().unlinks, vec![tag(16384, 0)]);
    assert!(
        dir.path().join("base/5/16384").exists(),
        "the tombstone stays"
    );
    assert!(!dir.path().join("base/5/16384.1").exists());
}

#[test]
fn the_checkpointer_takes_the_flags_and_counts_checkpoints() {
    let r = Region::new(4);
    let q = r.queue();
    assert!(q.pending_flags().is_empty());
    // Without WAIT a missing checkpointer is only logged; the flags stay
    // for when it runs.
    q.request(CheckpointFlags::CAUSE_XLOG, Duration::ZERO, || Ok(()))
        .unwrap();
    q.request(CheckpointFlags::IMMEDIATE, Duration::ZERO, || Ok(()))
        .unwrap();
    let pending = q.pending_flags();
    assert!(pending.contains(
        CheckpointFlags::CAUSE_XLOG | CheckpointFlags::IMMEDIATE | CheckpointFlags::REQUESTED
    ));
    assert_eq!(q.start_checkpoint(), pending);
    assert!(q.pending_flags().is_empty(), "taken");
    assert_eq!(q.checkpoint_counts(), (1, 0));
    q.finish_checkpoint(true);
    assert_eq!(q.checkpoint_counts(), (1, 1));
}

#[test]
fn waiting_for_a_checkpoint_without_a_checkpointer_fails_as_postgres() {
    let r = Region::new(4);
    let e = r
        .queue()
        .request(CheckpointFlags::COMMAND, Duration::from_millis(150), || {
            Ok(())
        })
        .unwrap_err();
    assert_eq!(e.code, SqlState::INTERNAL_ERROR);
    assert_eq!(e.message, CHECKPOINTER_NOT_RUNNING);
    // A cancel ends the wait early with its own error.
    let e = r
        .queue()
        .request(CheckpointFlags::COMMAND, Duration::from_secs(60), || {
            Err(pgerror::PgError::new(
                SqlState::QUERY_CANCELED,
                "canceling statement due to user request",
            ))
        })
        .unwrap_err();
    assert_eq!(e.code, SqlState::QUERY_CANCELED);
}
