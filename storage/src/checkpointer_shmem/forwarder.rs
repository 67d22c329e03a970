//! The [`SyncRequestForwarder`] an `Smgr` uses in every process that does
//! not run checkpoints itself (backends, bgwriter): PostgreSQL's
//! `RegisterSyncRequest` on top of `ForwardSyncRequest`.
//!
//! An `Smgr` has no lifetime, so the forwarder cannot borrow the caller's
//! mapping of the segment; it owns its own mapping of the same memfd
//! (a second `mmap` of the inherited descriptor, at another address).
//! Atomics, the queue's LWLock futex and the latch work across both
//! mappings: they name the same shared pages.
//!
//! # Rules
//!
//! 1. An fsync request is queued only while a checkpointer runs (its pid is
//!    published); otherwise, or when the queue is full even after
//!    compaction, `forward_fsync` says no and the `Smgr` fsyncs at once
//!    (rule F1).
//! 2. An unlink request waits, 10 ms at a time, while the queue is full and
//!    a checkpointer runs (PostgreSQL retries the same way); with no
//!    checkpointer it says no and the `Smgr` keeps the tombstone.
//! 3. A queue at least half full wakes the checkpointer through its latch.

use std::os::fd::{BorrowedFd, IntoRawFd};
use std::time::Duration;

use shmem_layout::{ProcKind, SegmentError, Shmem};

use crate::smgr::{SegmentTag, SyncRequestForwarder};

use super::{CheckpointerQueue, RequestKind};

/// Pause before retrying an unlink request the full queue refused.
const UNLINK_RETRY: Duration = Duration::from_millis(10);

/// Forwards an `Smgr`'s requests to the checkpointer's queue, through its
/// own mapping of the segment.
pub struct SharedSyncForwarder {
    shmem: Shmem,
}

impl SharedSyncForwarder {
    /// Maps `shmem`'s segment once more, for an `Smgr` to own.
    pub fn new(shmem: &Shmem) -> Result<SharedSyncForwarder, SegmentError> {
        // SAFETY: the descriptor stays open while `shmem` is borrowed; dup
        // only reads it.
        let fd = nix::unistd::dup(unsafe { BorrowedFd::borrow_raw(shmem.raw_fd()) })
            .map_err(|e| SegmentError::Invalid(format!("could not duplicate descriptor: {e}")))?;
        Ok(SharedSyncForwarder {
            shmem: Shmem::attach(fd.into_raw_fd())?,
        })
    }

    fn queue(&self) -> CheckpointerQueue<'_> {
        crate::shmem::checkpointer_queue(&self.shmem)
    }

    /// Rule 3.
    fn wake_checkpointer(&self) {
        if let Some(p) = self.shmem.aux_proc(ProcKind::Checkpointer) {
            p.latch.set();
        }
    }
}

impl SyncRequestForwarder for SharedSyncForwarder {
    fn forward_fsync(&self, tag: SegmentTag) -> bool {
        let queue = self.queue();
        if queue.checkpointer_pid() == 0 {
            queue.note_writer_fsync();
            return false;
        }
        let f = queue.forward(RequestKind::Fsync, tag);
        if f.too_full {
            self.wake_checkpointer();
        }
        if !f.queued {
            queue.note_writer_fsync();
        }
        f.queued
    }

    fn forward_unlink(&self, tag: SegmentTag) -> bool {
        let queue = self.queue();
        loop {
            if queue.checkpointer_pid() == 0 {
                return false;
            }
            let f = queue.forward(RequestKind::Unlink, tag);
            if f.too_full {
                self.wake_checkpointer();
            }
            if f.queued {
                return true;
            }
            std::thread::sleep(UNLINK_RETRY);
        }
    }
}
