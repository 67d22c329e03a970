//! The shared invalidation queue (PostgreSQL's sinvaladt.c, reduced): how a
//! backend that changed the catalogs tells every other backend to drop what
//! it cached about a relation.
//!
//! A ring of [`INVAL_QUEUE_SIZE`] messages, each `(database, relation)`,
//! numbered by an ever-growing sequence number. A writer appends after its
//! transaction commits; each reader remembers the number of the next
//! message it has not read and, before a statement looks at the catalogs,
//! reads what was appended since. A reader that fell more than the ring's
//! size behind has lost messages and must drop its whole cache (PostgreSQL's
//! "reset" of a backend that overflowed the queue).
//!
//! # Invariants
//!
//! 1. Message `s` is in slot `s % INVAL_QUEUE_SIZE` from the moment
//!    `next_seq` exceeds `s` until message `s + INVAL_QUEUE_SIZE` is written.
//! 2. A reader never applies a message that was overwritten: it reads under
//!    the lock, and only messages newer than `next_seq - INVAL_QUEUE_SIZE`.
//!
//! # Locking
//!
//! One spinlock, held for a few loads or stores; readers take it only when
//! `next_seq` moved since they last looked (an atomic load otherwise).

use shmem_layout::spinlock::SpinLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::types::Oid;

/// Messages the ring holds.
pub const INVAL_QUEUE_SIZE: usize = 256;

#[repr(C)]
struct InvalSlot {
    db: AtomicU32,
    rel: AtomicU32,
}

/// The queue, in shared memory (valid when zero-filled).
#[repr(C, align(64))]
pub struct SharedInvalQueue {
    lock: SpinLock,
    next_seq: AtomicU64,
    slots: [InvalSlot; INVAL_QUEUE_SIZE],
}

/// Bytes the queue takes.
pub const fn shmem_size_bytes() -> usize {
    std::mem::size_of::<SharedInvalQueue>()
}

/// One message: drop what is cached about relation `rel` of database `db`
/// (`rel` 0: about every relation of `db`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalMessage {
    pub db: Oid,
    pub rel: Oid,
}

/// What a reader must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalAction {
    /// Drop what is cached about these relations.
    Relations(Vec<InvalMessage>),
    /// Messages were lost: drop everything.
    ResetAll,
}

impl SharedInvalQueue {
    /// At segment initialisation (no process attached yet).
    pub fn init(&self) {
        self.lock.init();
        self.next_seq.store(0, Ordering::Relaxed);
    }

    /// Where a new reader starts: after every message already written.
    pub fn current_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }

    /// Appends messages (after the writer's transaction committed).
    pub fn send(&self, msgs: &[InvalMessage]) {
        if msgs.is_empty() {
            return;
        }
        let _guard = self.lock.acquire();
        let mut seq = self.next_seq.load(Ordering::Relaxed);
        for m in msgs {
            let slot = &self.slots[(seq % INVAL_QUEUE_SIZE as u64) as usize];
            slot.db.store(m.db.0, Ordering::Relaxed);
            slot.rel.store(m.rel.0, Ordering::Relaxed);
            seq += 1;
        }
        self.next_seq.store(seq, Ordering::Release);
    }

    /// The messages since `*next_to_read`, which moves past them. `None`
    /// when there is nothing new.
    pub fn receive(&self, next_to_read: &mut u64) -> Option<InvalAction> {
        if self.next_seq.load(Ordering::Acquire) == *next_to_read {
            return None;
        }
        let _guard = self.lock.acquire();
        let end = self.next_seq.load(Ordering::Relaxed);
        let start = *next_to_read;
        *next_to_read = end;
        if end - start > INVAL_QUEUE_SIZE as u64 {
            return Some(InvalAction::ResetAll);
        }
        let msgs = (start..end)
            .map(|s| {
                let slot = &self.slots[(s % INVAL_QUEUE_SIZE as u64) as usize];
                InvalMessage {
                    db: Oid(slot.db.load(Ordering::Relaxed)),
                    rel: Oid(slot.rel.load(Ordering::Relaxed)),
                }
            })
            .collect();
        Some(InvalAction::Relations(msgs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Box<SharedInvalQueue> {
        // SAFETY: the queue is atomics and a spinlock, all valid when zero.
        let q: Box<SharedInvalQueue> = unsafe { Box::new(std::mem::zeroed()) };
        q.init();
        q
    }

    fn msg(rel: u32) -> InvalMessage {
        InvalMessage {
            db: Oid(5),
            rel: Oid(rel),
        }
    }

    #[test]
    fn readers_see_each_message_once_in_order() {
        let q = queue();
        let mut a = q.current_seq();
        assert_eq!(q.receive(&mut a), None);
        q.send(&[msg(16384), msg(16390)]);
        let mut late = q.current_seq();
        q.send(&[msg(16400)]);
        assert_eq!(
            q.receive(&mut a),
            Some(InvalAction::Relations(vec![
                msg(16384),
                msg(16390),
                msg(16400)
            ]))
        );
        assert_eq!(q.receive(&mut a), None);
        assert_eq!(
            q.receive(&mut late),
            Some(InvalAction::Relations(vec![msg(16400)]))
        );
    }

    #[test]
    fn a_reader_that_fell_a_ring_behind_resets() {
        let q = queue();
        let mut slow = q.current_seq();
        let mut fast = q.current_seq();
        for i in 0..INVAL_QUEUE_SIZE as u32 {
            q.send(&[msg(i)]);
        }
        assert!(
            matches!(q.receive(&mut fast), Some(InvalAction::Relations(m)) if m.len() == INVAL_QUEUE_SIZE)
        );
        q.send(&[msg(1)]);
        assert_eq!(q.receive(&mut slow), Some(InvalAction::ResetAll));
        assert_eq!(q.receive(&mut slow), None);
    }
}
