//! RAII handles on shared buffers: [`PinnedBuffer`] owns one pin,
//! [`SharedContentGuard`] and [`ExclusiveContentGuard`] own a pin and the
//! content lock, and give `&[u8; BLCKSZ]` or `&mut [u8; BLCKSZ]` to the page
//! (PostgreSQL's `Buffer` plus `LockBuffer`/`ReleaseBuffer`). The rules
//! (R1.., L1.., C1..) are stated in the header of [`crate::buffer`].
//!
//! ```text
//!  read_buffer ──► PinnedBuffer ──lock_shared()────► SharedContentGuard    (&page)
//!                       │       ──lock_exclusive()─► ExclusiveContentGuard (&mut page,
//!                       │                                                   mark_dirty)
//!                       └─ clone() = one more private pin; drop = unpin
//! ```
//!
//! A content guard holds its own pin (a private count, no shared atomic),
//! so it outlives the `PinnedBuffer` it came from and can be returned on
//! its own (`read_buffer_zero_and_lock`, `extend_buffer`).
//!
//! # Invariants
//!
//! 1. Page bytes are reachable only through a content guard: shared for
//!    `&`, exclusive for `&mut` (R1, R3). So the type system enforces that
//!    a process reads a page only with a pin and a content lock, and writes
//!    it only with the exclusive lock; `mark_dirty` exists only on the
//!    exclusive guard (R6).
//! 2. Dropping a guard releases the content lock before the pin (field
//!    order), so a pin is never dropped under a held content lock.
//!
//! # Locking
//!
//! Locking a buffer whose content lock this process already holds panics
//! (manager I2): it would deadlock otherwise. Take several content locks
//! only in an order that every process follows (L1).
//!
//! # Crash safety
//!
//! Changing a page and marking it dirty does not make the change durable;
//! the caller WAL-logs it and sets the page LSN under the same exclusive
//! lock (C1).

use std::ops::{Deref, DerefMut};

use shmem_layout::lwlock::{LWLockGuard, LWLockMode};

use crate::types::{BlockNumber, BLCKSZ};

use super::desc::{BufferId, BufferTag};
use super::manager::BufferManager;

/// One pin on a shared buffer. The buffer keeps its block (its tag) for as
/// long as any pin on it lives (R2).
pub struct PinnedBuffer<'m> {
    mgr: &'m BufferManager<'m>,
    id: BufferId,
}

impl<'m> PinnedBuffer<'m> {
    /// Take ownership of a pin already counted in the private map.
    pub(crate) fn adopt(mgr: &'m BufferManager<'m>, id: BufferId) -> PinnedBuffer<'m> {
        PinnedBuffer { mgr, id }
    }

    /// Take back a pin given away with [`PinnedBuffer::into_raw`].
    /// Panics if this process holds no pin on `id`.
    pub fn from_raw(mgr: &'m BufferManager<'m>, id: BufferId) -> PinnedBuffer<'m> {
        assert!(
            mgr.private_pins(id) > 0,
            "from_raw of buffer {id}, which this process does not pin"
        );
        PinnedBuffer { mgr, id }
    }

    /// Keep the pin but give up the guard: the caller must later call
    /// [`BufferManager::unpin`] or [`PinnedBuffer::from_raw`].
    pub fn into_raw(self) -> BufferId {
        let id = self.id;
        std::mem::forget(self);
        id
    }

    pub fn id(&self) -> BufferId {
        self.id
    }

    /// The block this buffer holds (stable while pinned).
    pub fn tag(&self) -> BufferTag {
        self.mgr.pool.desc(self.id).tag()
    }

    pub fn block(&self) -> BlockNumber {
        self.tag().block
    }

    /// Wait for the content lock in shared mode.
    pub fn lock_shared(&self) -> SharedContentGuard<'m> {
        let lock = self
            .mgr
            .lock_content(self.id, LWLockMode::Shared, true)
            .expect("a waiting acquisition always succeeds");
        SharedContentGuard {
            _lock: lock,
            pin: self.clone(),
        }
    }

    /// Wait for the content lock in exclusive mode.
    pub fn lock_exclusive(&self) -> ExclusiveContentGuard<'m> {
        let lock = self
            .mgr
            .lock_content(self.id, LWLockMode::Exclusive, true)
            .expect("a waiting acquisition always succeeds");
        ExclusiveContentGuard {
            _lock: lock,
            pin: self.clone(),
        }
    }

    /// The exclusive content lock if it is free now
    /// (PostgreSQL's `ConditionalLockBuffer`).
    pub fn try_lock_exclusive(&self) -> Option<ExclusiveContentGuard<'m>> {
        let lock = self
            .mgr
            .lock_content(self.id, LWLockMode::Exclusive, false)?;
        Some(ExclusiveContentGuard {
            _lock: lock,
            pin: self.clone(),
        })
    }

    /// The exclusive content lock, if it is free and no other process pins
    /// the buffer (PostgreSQL's `ConditionalLockBufferForCleanup`; rule R5).
    pub fn try_lock_for_cleanup(&self) -> Option<ExclusiveContentGuard<'m>> {
        let guard = self.try_lock_exclusive()?;
        // Our own pins count once in the shared refcount (manager I1).
        (self.mgr.pool.desc(self.id).load_state().refcount() == 1).then_some(guard)
    }
}

impl Clone for PinnedBuffer<'_> {
    /// One more pin, counted in the private map only.
    fn clone(&self) -> Self {
        self.mgr.pin_again(self.id);
        PinnedBuffer {
            mgr: self.mgr,
            id: self.id,
        }
    }
}

impl Drop for PinnedBuffer<'_> {
    fn drop(&mut self) {
        self.mgr.unpin(self.id);
    }
}

impl std::fmt::Debug for PinnedBuffer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedBuffer")
            .field("id", &self.id)
            .finish()
    }
}

/// A pin and the content lock in shared mode: the page, read-only.
pub struct SharedContentGuard<'m> {
    // Declared first: released before the pin (I2).
    _lock: LWLockGuard<'m>,
    pin: PinnedBuffer<'m>,
}

impl<'m> SharedContentGuard<'m> {
    pub fn pinned(&self) -> &PinnedBuffer<'m> {
        &self.pin
    }

    pub fn id(&self) -> BufferId {
        self.pin.id
    }

    pub fn block(&self) -> BlockNumber {
        self.pin.block()
    }
}

impl Deref for SharedContentGuard<'_> {
    type Target = [u8; BLCKSZ];
    fn deref(&self) -> &[u8; BLCKSZ] {
        // SAFETY: pin and shared content lock held while self lives (R1).
        unsafe { self.pin.mgr.pool.page(self.pin.id) }
    }
}

impl Drop for SharedContentGuard<'_> {
    fn drop(&mut self) {
        self.pin.mgr.note_unlocked(self.pin.id);
    }
}

/// A pin and the content lock in exclusive mode: the page, writable.
pub struct ExclusiveContentGuard<'m> {
    // Declared first: released before the pin (I2).
    _lock: LWLockGuard<'m>,
    pin: PinnedBuffer<'m>,
}

impl<'m> ExclusiveContentGuard<'m> {
    /// Record that the page changed (PostgreSQL's `MarkBufferDirty`): it
    /// will be written before the buffer is reused, by the checkpoint, or
    /// by the bgwriter. Call it inside the change's critical section,
    /// before the WAL record is inserted and the page LSN set (C1).
    pub fn mark_dirty(&mut self) {
        self.pin.mgr.mark_dirty(self.pin.id);
    }

    pub fn pinned(&self) -> &PinnedBuffer<'m> {
        &self.pin
    }

    pub fn id(&self) -> BufferId {
        self.pin.id
    }

    pub fn block(&self) -> BlockNumber {
        self.pin.block()
    }
}

impl Deref for ExclusiveContentGuard<'_> {
    type Target = [u8; BLCKSZ];
    fn deref(&self) -> &[u8; BLCKSZ] {
        // SAFETY: pin and exclusive content lock held while self lives (R1).
        unsafe { self.pin.mgr.pool.page(self.pin.id) }
    }
}

impl DerefMut for ExclusiveContentGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8; BLCKSZ] {
        // SAFETY: pin and exclusive content lock held while self lives, and
        // `&mut self` makes this the only reference through the guard (R3).
        unsafe { self.pin.mgr.pool.page_mut(self.pin.id) }
    }
}

impl Drop for ExclusiveContentGuard<'_> {
    fn drop(&mut self) {
        self.pin.mgr.note_unlocked(self.pin.id);
    }
}
