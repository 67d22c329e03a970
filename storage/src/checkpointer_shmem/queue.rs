//! The request queue: forwarding (PostgreSQL's `ForwardSyncRequest`),
//! compaction when full (`CompactCheckpointerRequestQueue`) and absorbing
//! (`AbsorbSyncRequests`). Rules F1, F4 and the locking are in `mod.rs`.
//!
//! ```text
//!   forward(kind, tag)            queue_lock X
//!     full? ── compact: drop every entry followed by an identical one
//!               └─ nothing dropped ──► not queued (the writer fsyncs)
//!     slot[num_requests] = (kind, tag); num_requests += 1
//!     half full or more ──► tell the caller to wake the checkpointer
//!
//!   absorb()                      queue_lock X
//!     copy slot[0..num_requests], num_requests = 0
//! ```

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use crate::smgr::SegmentTag;
use crate::types::{ForkNumber, Oid, RelFileLocator};

use super::{CheckpointerQueue, RequestSlot};

/// What a queued request asks of the checkpointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RequestKind {
    /// Fsync the segment before the next checkpoint completes.
    Fsync = 1,
    /// Remove the tombstone after the next checkpoint.
    Unlink = 2,
}

/// What [`CheckpointerQueue::forward`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// The request is in the queue. If not, the queue was full and held no
    /// duplicates to drop.
    pub queued: bool,
    /// The queue is at least half full: wake the checkpointer so it
    /// absorbs soon (PostgreSQL's `too_full`).
    pub too_full: bool,
}

/// The requests taken out of the queue, in the order they were queued,
/// duplicates removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AbsorbedRequests {
    pub fsyncs: Vec<SegmentTag>,
    pub unlinks: Vec<SegmentTag>,
}

impl AbsorbedRequests {
    pub fn is_empty(&self) -> bool {
        self.fsyncs.is_empty() && self.unlinks.is_empty()
    }
}

impl RequestSlot {
    fn store(&self, kind: RequestKind, tag: SegmentTag) {
        self.kind.store(kind as u32, Ordering::Relaxed);
        self.spc_oid.store(tag.rel.spc_oid.0, Ordering::Relaxed);
        self.db_oid.store(tag.rel.db_oid.0, Ordering::Relaxed);
        self.rel_number
            .store(tag.rel.rel_number.0, Ordering::Relaxed);
        self.fork.store(tag.fork as u32, Ordering::Relaxed);
        self.segno.store(tag.segno, Ordering::Relaxed);
    }

    /// The entry, or `None` if the slot holds something no writer stores
    /// (shared memory is not trusted blindly).
    fn load(&self) -> Option<(RequestKind, SegmentTag)> {
        let kind = match self.kind.load(Ordering::Relaxed) {
            1 => RequestKind::Fsync,
            2 => RequestKind::Unlink,
            _ => return None,
        };
        let fork = u8::try_from(self.fork.load(Ordering::Relaxed))
            .ok()
            .and_then(ForkNumber::from_u8)?;
        let tag = SegmentTag {
            rel: RelFileLocator {
                spc_oid: Oid(self.spc_oid.load(Ordering::Relaxed)),
                db_oid: Oid(self.db_oid.load(Ordering::Relaxed)),
                rel_number: Oid(self.rel_number.load(Ordering::Relaxed)),
            },
            fork,
            segno: self.segno.load(Ordering::Relaxed),
        };
        Some((kind, tag))
    }

    fn copy_from(&self, other: &RequestSlot) {
        for (dst, src) in [
            (&self.kind, &other.kind),
            (&self.spc_oid, &other.spc_oid),
            (&self.db_oid, &other.db_oid),
            (&self.rel_number, &other.rel_number),
            (&self.fork, &other.fork),
            (&self.segno, &other.segno),
        ] {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

impl CheckpointerQueue<'_> {
    /// Queues a request (PostgreSQL's `ForwardSyncRequest`, without its
    /// "is a checkpointer running" test, which the caller makes). When the
    /// queue is full it is compacted first; if that frees nothing the
    /// request is not queued and the caller must do the work itself (an
    /// fsync at once; an unlink waits and tries again).
    pub fn forward(&self, kind: RequestKind, tag: SegmentTag) -> Forwarded {
        let max = self.max_requests();
        let _queue = self.shared.queue_lock.acquire_exclusive();
        let mut n = self.len_locked();
        if n >= max {
            if !self.compact_locked(n) {
                return Forwarded {
                    queued: false,
                    too_full: true,
                };
            }
            n = self.len_locked();
        }
        self.slots[n].store(kind, tag);
        self.shared
            .num_requests
            .store((n + 1) as u32, Ordering::Relaxed);
        Forwarded {
            queued: true,
            too_full: n + 1 >= max / 2,
        }
    }

    /// Takes every queued request (PostgreSQL's `AbsorbSyncRequests`). The
    /// checkpointer only.
    pub fn absorb(&self) -> AbsorbedRequests {
        let entries: Vec<Option<(RequestKind, SegmentTag)>> = {
            let _queue = self.shared.queue_lock.acquire_exclusive();
            let n = self.len_locked();
            let entries = self.slots[..n].iter().map(RequestSlot::load).collect();
            self.shared.num_requests.store(0, Ordering::Relaxed);
            entries
        };
        let mut seen = HashSet::new();
        let mut absorbed = AbsorbedRequests::default();
        for entry in entries {
            let Some((kind, tag)) = entry else {
                log::warn!("ignoring an invalid entry of the checkpointer's request queue");
                continue;
            };
            if !seen.insert((kind, tag)) {
                continue;
            }
            match kind {
                RequestKind::Fsync => absorbed.fsyncs.push(tag),
                RequestKind::Unlink => absorbed.unlinks.push(tag),
            }
        }
        absorbed
    }

    /// Requests queued now.
    pub fn len(&self) -> usize {
        let _queue = self.shared.queue_lock.acquire_exclusive();
        self.len_locked()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `num_requests`, queue_lock held.
    fn len_locked(&self) -> usize {
        (self.shared.num_requests.load(Ordering::Relaxed) as usize).min(self.slots.len())
    }

    /// PostgreSQL's `CompactCheckpointerRequestQueue`, queue_lock held
    /// exclusively: drops every entry that an identical later entry
    /// repeats (and any invalid one), keeping the order of the rest.
    /// Returns whether anything was dropped.
    fn compact_locked(&self, n: usize) -> bool {
        let mut later = HashSet::with_capacity(n);
        let mut keep = vec![false; n];
        for i in (0..n).rev() {
            if let Some(entry) = self.slots[i].load() {
                keep[i] = later.insert(entry);
            }
        }
        let kept = keep.iter().filter(|k| **k).count();
        if kept == n {
            return false;
        }
        let kept_indexes = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i);
        for (next, i) in kept_indexes.enumerate() {
            if i != next {
                self.slots[next].copy_from(&self.slots[i]);
            }
        }
        self.shared
            .num_requests
            .store(kept as u32, Ordering::Relaxed);
        log::debug!("compacted fsync request queue from {n} entries to {kept} entries");
        true
    }
}
