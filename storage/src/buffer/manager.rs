//! The per-process side of the buffer manager: [`BufferManager`], this
//! process's handle on the shared [`BufferPool`] with its private pin
//! counts, and the paths that bring a block into a buffer and write it out
//! (PostgreSQL's `bufmgr.c`: `ReadBuffer_common`, `BufferAlloc`,
//! `StartBufferIO`/`TerminateBufferIO`, `FlushBuffer`, `MarkBufferDirty`).
//! The rules (R1.., L1.., C1..) are stated in the header of
//! [`crate::buffer`]; comments here cite them.
//!
//! ```text
//!  read_buffer(tag)
//!    ├─ partition lock S: lookup ── hit ──► pin ──► (valid? done : wait for / do the read)
//!    └─ miss: clock sweep ──► victim, pinned
//!             ├─ dirty? try content lock S ─ busy ─► next victim
//!             │           └─ flush_buffer (WAL first, checksum on a copy, smgr.write)
//!             ├─ partition locks X (old and new tag, lower number first)
//!             ├─ new tag already mapped? ──► pin that one, let the victim go
//!             ├─ header spinlock: still only our pin and clean? else next victim
//!             └─ retag, remap ──► start_io(read) ──► smgr.read, verify_page ──► BM_VALID
//! ```
//!
//! # Invariants
//!
//! 1. This process's pins on buffer `b` are `private[b].pins`; the shared
//!    refcount counts the process once while that is positive (PostgreSQL's
//!    `PrivateRefCount`). Repeated pins of one buffer touch only the map.
//! 2. `private[b].lock` says whether this process holds `b`'s content lock
//!    and in which mode; a second acquisition is a bug and panics before it
//!    could deadlock (the LWLock rule "never take a lock you hold").
//! 3. Every pin is owned by a [`PinnedBuffer`] or a content guard (or was
//!    given away with [`PinnedBuffer::into_raw`]); dropping it unpins, also
//!    while unwinding from an error.
//! 4. An I/O is owned by an `IoInProgress`, which ends it when dropped:
//!    `finish` on success, otherwise `BM_IO_ERROR` is set and the buffer is
//!    left as it was (invalid after a failed read, dirty after a failed
//!    write).
//!
//! # Locking
//!
//! See L1..L6. The handle is not `Sync` (its private map is a `RefCell`):
//! one per process, or one per thread in tests.
//!
//! # Crash safety
//!
//! See C1..C5: `flush_buffer` is where the WAL rule is enforced.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use shmem_layout::lwlock::{LWLockGuard, LWLockMode};

use crate::clog::WalFlush;
use crate::page::{is_new, set_checksum, verify_page, Page};
use crate::smgr::{relpath, Smgr, SmgrError};
use crate::types::{BlockNumber, ForkNumber, RelFileLocator, BLCKSZ};

use super::desc::{BufState, BufferDesc, BufferId, BufferTag, LockedHeader};
use super::desc::{BM_CHECKPOINT_NEEDED, BM_DIRTY, BM_IO_ERROR, BM_IO_IN_PROGRESS};
use super::desc::{BM_JUST_DIRTIED, BM_PERMANENT, BM_TAG_VALID, BM_VALID};
use super::desc::{BUF_REFCOUNT_ONE, BUF_USAGECOUNT_MASK, BUF_USAGECOUNT_ONE};
use super::error::BufferError;
use super::guards::{ExclusiveContentGuard, PinnedBuffer};
use super::mapping::BufMapping;
use super::pool::{BufferPool, SweepStep};

/// How long a clock sweep keeps looking while every buffer is pinned by
/// other processes before it gives up with `NoUnpinnedBuffers`. PostgreSQL
/// gives up after one fruitless pass; tiny pools under many processes pass
/// through that state briefly, so we poll a little.
const ALL_PINNED_PATIENCE: Duration = Duration::from_secs(1);

/// The relation files a buffer manager reads and writes: [`Smgr`] in the
/// server; tests wrap it to count or fail I/O. Same contracts as `Smgr`.
pub trait BlockStorage {
    fn nblocks(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<u32, SmgrError>;
    /// Whether block `blkno` exists. `Smgr` answers from its cached lower
    /// bound when it can (smgr invariant 7).
    fn block_exists(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
    ) -> Result<bool, SmgrError> {
        Ok(blkno.0 < self.nblocks(rel, fork)?)
    }
    fn read(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &mut [u8; BLCKSZ],
    ) -> Result<(), SmgrError>;
    fn write(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError>;
    fn extend(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError>;
    /// Creates the fork's first segment if it does not exist; a concurrent
    /// creator is fine. For forks that are not WAL-logged (the free space
    /// map), which a relation gets on first use.
    fn create_fork(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<(), SmgrError>;
    /// Shortens the fork to `nblocks` (`Smgr::truncate`); the caller has
    /// logged and flushed the truncation and dropped the buffers past it.
    fn truncate(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: u32,
    ) -> Result<(), SmgrError>;
}

impl BlockStorage for Smgr {
    fn nblocks(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<u32, SmgrError> {
        Smgr::nblocks(self, rel, fork)
    }
    fn block_exists(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
    ) -> Result<bool, SmgrError> {
        Smgr::block_exists(self, rel, fork, blkno)
    }
    fn read(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &mut [u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        Smgr::read(self, rel, fork, blkno, page)
    }
    fn write(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        Smgr::write(self, rel, fork, blkno, page)
    }
    fn extend(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        Smgr::extend(self, rel, fork, blkno, page)
    }
    fn create_fork(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<(), SmgrError> {
        if Smgr::exists(self, rel, fork)? {
            return Ok(());
        }
        // `is_redo` semantics: a file created meanwhile by another process
        // is opened, not an error.
        Smgr::create(self, rel, fork, true)
    }
    fn truncate(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: u32,
    ) -> Result<(), SmgrError> {
        Smgr::truncate(self, rel, fork, nblocks)
    }
}

/// This process's pins and content lock on one buffer (I1, I2).
struct PrivateRef {
    pins: u32,
    lock: Option<LWLockMode>,
}

/// A process's handle on the shared pool. Make one per process (backend,
/// startup, checkpointer, bgwriter) after attaching the segment.
pub struct BufferManager<'a> {
    pub(crate) pool: BufferPool<'a>,
    /// I1, I2. Never borrowed across a wait or a call out of this module.
    private: RefCell<HashMap<BufferId, PrivateRef>>,
    /// The page copy a write checksums (C2); reused to avoid an allocation
    /// per write.
    scratch: RefCell<Box<[u8; BLCKSZ]>>,
}

/// Which way an I/O goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoKind {
    Input,
    Output,
}

/// This process owns the I/O on one buffer (I4, L3).
pub(crate) struct IoInProgress<'m> {
    desc: &'m BufferDesc,
    kind: IoKind,
    finished: bool,
    _io_lock: LWLockGuard<'m>,
}

impl IoInProgress<'_> {
    /// End the I/O successfully (PostgreSQL's `TerminateBufferIO`): clear
    /// `BM_DIRTY` if asked and not re-dirtied meanwhile, set `set_flags`.
    pub(crate) fn finish(mut self, clear_dirty: bool, set_flags: u32) {
        self.terminate(clear_dirty, set_flags);
        self.finished = true;
    }

    fn terminate(&self, clear_dirty: bool, set_flags: u32) -> BufState {
        let mut hdr = self.desc.lock_header();
        let before = hdr.get();
        hdr.state &= !(BM_IO_IN_PROGRESS | BM_IO_ERROR);
        if clear_dirty && !before.has(BM_JUST_DIRTIED) {
            hdr.state &= !(BM_DIRTY | BM_CHECKPOINT_NEEDED);
        }
        hdr.state |= set_flags;
        before
    }
}

impl Drop for IoInProgress<'_> {
    /// Unless finished: the I/O failed (PostgreSQL's `AbortBufferIO`).
    /// The I/O lock is released after this body, when the fields drop.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let before = self.terminate(false, BM_IO_ERROR);
        if self.kind == IoKind::Output && before.has(BM_IO_ERROR) {
            let tag = self.desc.tag();
            log::warn!(
                "could not write block {} of {}: multiple failures --- write error might be permanent",
                tag.block.0,
                relpath(tag.rel, tag.fork)
            );
        }
    }
}

impl<'a> BufferManager<'a> {
    /// This process's handle. Panics if the pool was never initialised.
    pub fn new(pool: BufferPool<'a>) -> BufferManager<'a> {
        assert!(
            pool.is_initialized(),
            "buffer pool used before BufferPool::init"
        );
        BufferManager {
            pool,
            private: RefCell::new(HashMap::new()),
            scratch: RefCell::new(Box::new([0; BLCKSZ])),
        }
    }

    pub fn pool(&self) -> BufferPool<'a> {
        self.pool
    }

    /// Buffers this process pins now (for leak checks at transaction end).
    pub fn pinned_buffer_count(&self) -> usize {
        self.private.borrow().len()
    }

    /// This process's pins on `id` (0 if none).
    pub fn private_pins(&self, id: BufferId) -> u32 {
        self.private.borrow().get(&id).map_or(0, |e| e.pins)
    }

    /// Pin `tag`'s block, reading it if it is not in a buffer (PostgreSQL's
    /// `ReadBuffer` with `RBM_NORMAL`). The block must exist. A block that
    /// fails its checksum or header checks is an error naming block and
    /// file; the buffer stays invalid and the next reader tries again.
    pub fn read_buffer<'m>(
        &'m self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
    ) -> Result<PinnedBuffer<'m>, BufferError> {
        let tag = BufferTag::new(rel, fork, blkno);
        let (buf, valid) = self.buffer_alloc(smgr, wal, &tag)?;
        if !valid {
            if let Some(io) = self.start_io(buf.id(), IoKind::Input) {
                // SAFETY: we own the I/O on a buffer without BM_VALID (L3).
                let page = unsafe { self.pool.page_mut(buf.id()) };
                smgr.read(rel, fork, blkno, page)?;
                verify_page(page, blkno).map_err(|source| BufferError::InvalidPage {
                    blkno: blkno.0,
                    path: relpath(rel, fork),
                    source,
                })?;
                io.finish(false, BM_VALID);
            }
        }
        Ok(buf)
    }

    /// Pin `tag`'s block without reading it and lock it exclusively
    /// (`RBM_ZERO_AND_LOCK`): a buffer not already valid is zeroed, for a
    /// caller that overwrites the whole page (redo of a full-page image, a
    /// page being initialised). The content lock is taken before the buffer
    /// becomes valid, so nobody sees the zeroes.
    pub fn read_buffer_zero_and_lock<'m>(
        &'m self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
    ) -> Result<ExclusiveContentGuard<'m>, BufferError> {
        let tag = BufferTag::new(rel, fork, blkno);
        let (buf, valid) = self.buffer_alloc(smgr, wal, &tag)?;
        let mut guard = buf.lock_exclusive();
        if !valid {
            if let Some(io) = self.start_io(buf.id(), IoKind::Input) {
                guard.fill(0);
                io.finish(false, BM_VALID);
            }
        }
        Ok(guard)
    }

    /// Add a zeroed block at the end of the fork and return its buffer,
    /// locked exclusively (PostgreSQL's `ReadBuffer(P_NEW)` plus the lock).
    /// The caller holds the relation extension lock, initialises the page
    /// and marks it dirty.
    pub fn extend_buffer<'m>(
        &'m self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        rel: RelFileLocator,
        fork: ForkNumber,
    ) -> Result<ExclusiveContentGuard<'m>, BufferError> {
        let blkno = BlockNumber(smgr.nblocks(rel, fork)?);
        let tag = BufferTag::new(rel, fork, blkno);
        let (buf, _) = self.buffer_alloc(smgr, wal, &tag)?;
        let mut guard = buf.lock_exclusive();
        let desc = self.pool.desc(buf.id());
        let io = loop {
            if let Some(io) = self.start_io(buf.id(), IoKind::Input) {
                break io;
            }
            // A valid buffer for a block past the end: left over from an
            // extension whose write failed. Only zeroes may be dropped.
            if !is_new(&guard) {
                return Err(BufferError::UnexpectedDataBeyondEof {
                    blkno: blkno.0,
                    path: relpath(rel, fork),
                });
            }
            let mut hdr = desc.lock_header();
            hdr.state &= !BM_VALID;
        };
        guard.fill(0);
        smgr.extend(rel, fork, blkno, &guard)?;
        io.finish(false, BM_VALID);
        Ok(guard)
    }

    /// Find or make a buffer for `tag` and pin it (PostgreSQL's
    /// `BufferAlloc`); also says whether it is valid already.
    fn buffer_alloc<'m>(
        &'m self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        tag: &BufferTag,
    ) -> Result<(PinnedBuffer<'m>, bool), BufferError> {
        let mapping = self.pool.mapping;
        let hash = tag.hash_code();
        let new_part = BufMapping::partition_of(hash);
        {
            let _part = mapping.partitions[new_part].lock.acquire_shared();
            if let Some(id) = mapping.lookup(tag, hash) {
                let (buf, state) = self.pin(id);
                return Ok((buf, state.has(BM_VALID)));
            }
        }
        loop {
            let (victim, state) = self.get_victim()?;
            let id = victim.id();
            let desc = self.pool.desc(id);
            if state.has(BM_DIRTY) {
                // Conditional (L2): its holder may be waiting for a lock we hold.
                let Some(_content) = desc.content_lock.try_acquire(LWLockMode::Shared) else {
                    continue;
                };
                self.flush_buffer(smgr, wal, id)?;
            }
            // Stable: we pin it, so only we can retag it (desc I2).
            let old = state.has(BM_TAG_VALID).then(|| desc.tag());
            let old_hash = old.map(|t| t.hash_code());
            let _parts = self.lock_partitions(new_part, old_hash.map(BufMapping::partition_of));
            if let Some(existing) = mapping.lookup(tag, hash) {
                // Someone else brought it in meanwhile; the victim goes back.
                let (buf, st) = self.pin(existing);
                return Ok((buf, st.has(BM_VALID)));
            }
            let mut hdr = desc.lock_header();
            let s = hdr.get();
            if s.refcount() != 1 || s.has(BM_DIRTY) {
                // Pinned or dirtied by someone else since we chose it.
                continue;
            }
            desc.set_tag(&hdr, tag);
            hdr.state &= !(BM_VALID
                | BM_DIRTY
                | BM_JUST_DIRTIED
                | BM_CHECKPOINT_NEEDED
                | BM_IO_ERROR
                | BM_PERMANENT
                | BUF_USAGECOUNT_MASK);
            // Every relation is WAL-logged for now (no unlogged tables yet).
            hdr.state |= BM_TAG_VALID | BM_PERMANENT | BUF_USAGECOUNT_ONE;
            drop(hdr);
            if let (Some(old), Some(old_hash)) = (old, old_hash) {
                mapping.delete(&old, old_hash, id);
            }
            mapping.insert(tag, hash, id);
            return Ok((victim, false));
        }
    }

    /// Both partition locks exclusively, lower number first, once if equal (L4).
    fn lock_partitions(
        &self,
        a: usize,
        b: Option<usize>,
    ) -> (LWLockGuard<'a>, Option<LWLockGuard<'a>>) {
        let lock = |p: usize| self.pool.mapping.partitions[p].lock.acquire_exclusive();
        match b {
            Some(b) if b < a => {
                let first = lock(b);
                (lock(a), Some(first))
            }
            Some(b) if b > a => {
                let first = lock(a);
                (first, Some(lock(b)))
            }
            _ => (lock(a), None),
        }
    }

    /// Run the clock sweep until it yields an unpinned buffer with a zero
    /// usage count, and pin it. Also returns its state at that moment.
    fn get_victim<'m>(&'m self) -> Result<(PinnedBuffer<'m>, BufState), BufferError> {
        let n = self.pool.nbuffers();
        let mut tries = n;
        let mut all_pinned_since: Option<Instant> = None;
        loop {
            match self.pool.sweep_step() {
                SweepStep::Victim(id, hdr) => {
                    let state = hdr.get();
                    return Ok((self.pin_locked(id, hdr), state));
                }
                SweepStep::Decremented => tries = n,
                SweepStep::Pinned => {
                    tries -= 1;
                    if tries > 0 {
                        continue;
                    }
                    // A whole pass found only pins. If they are all ours,
                    // nobody will release one.
                    if self.pinned_buffer_count() >= n {
                        return Err(BufferError::NoUnpinnedBuffers);
                    }
                    let since = *all_pinned_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= ALL_PINNED_PATIENCE {
                        return Err(BufferError::NoUnpinnedBuffers);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                    tries = n;
                }
            }
        }
    }

    /// Pin a buffer found in the mapping table, partition lock held
    /// (PostgreSQL's `PinBuffer`). Returns its state after the pin.
    fn pin<'m>(&'m self, id: BufferId) -> (PinnedBuffer<'m>, BufState) {
        let mut private = self.private.borrow_mut();
        let state = match private.get_mut(&id) {
            Some(e) => {
                e.pins += 1;
                self.pool.desc(id).load_state()
            }
            None => {
                let s = self.pool.desc(id).pin_shared();
                private.insert(
                    id,
                    PrivateRef {
                        pins: 1,
                        lock: None,
                    },
                );
                s
            }
        };
        drop(private);
        (PinnedBuffer::adopt(self, id), state)
    }

    /// Pin a buffer whose header spinlock we hold, releasing the spinlock
    /// (PostgreSQL's `PinBuffer_Locked`; no usage count bump). The map is
    /// only looked at under the spinlock; an insertion (which may
    /// allocate) waits until it is released (L5).
    pub(crate) fn pin_locked<'m>(
        &'m self,
        id: BufferId,
        mut hdr: LockedHeader<'_>,
    ) -> PinnedBuffer<'m> {
        let mut private = self.private.borrow_mut();
        match private.get_mut(&id) {
            Some(e) => {
                drop(hdr);
                e.pins += 1;
            }
            None => {
                hdr.state += BUF_REFCOUNT_ONE;
                drop(hdr);
                private.insert(
                    id,
                    PrivateRef {
                        pins: 1,
                        lock: None,
                    },
                );
            }
        }
        drop(private);
        PinnedBuffer::adopt(self, id)
    }

    /// One more pin on a buffer this process pins already
    /// (PostgreSQL's `IncrBufferRefCount`).
    pub(crate) fn pin_again(&self, id: BufferId) {
        let mut private = self.private.borrow_mut();
        let e = private
            .get_mut(&id)
            .expect("pin_again of a buffer this process does not pin");
        e.pins += 1;
    }

    /// Drop one of this process's pins (PostgreSQL's `ReleaseBuffer`);
    /// the last one releases the shared pin. Panics if there is none.
    pub fn unpin(&self, id: BufferId) {
        let mut private = self.private.borrow_mut();
        let e = private
            .get_mut(&id)
            .expect("unpin of a buffer this process does not pin");
        e.pins -= 1;
        if e.pins > 0 {
            return;
        }
        assert!(
            e.lock.is_none(),
            "last pin of buffer {id} dropped while its content lock is held"
        );
        private.remove(&id);
        drop(private);
        self.pool.desc(id).unpin_shared();
    }

    /// Take `id`'s content lock in `mode` (waiting, or only if free), and
    /// record it (I2). Panics if this process pins none or holds it already.
    pub(crate) fn lock_content(
        &self,
        id: BufferId,
        mode: LWLockMode,
        wait: bool,
    ) -> Option<LWLockGuard<'a>> {
        {
            let private = self.private.borrow();
            let e = private
                .get(&id)
                .expect("content lock of a buffer this process does not pin (rule R1)");
            assert!(
                e.lock.is_none(),
                "content lock of buffer {id} taken twice by one process"
            );
        }
        let lock = &self.pool.desc(id).content_lock;
        let guard = if wait {
            lock.acquire(mode)
        } else {
            lock.try_acquire(mode)?
        };
        if let Some(e) = self.private.borrow_mut().get_mut(&id) {
            e.lock = Some(mode);
        }
        Some(guard)
    }

    /// Record that the content lock of `id` is being released.
    pub(crate) fn note_unlocked(&self, id: BufferId) {
        if let Some(e) = self.private.borrow_mut().get_mut(&id) {
            e.lock = None;
        }
    }

    /// Whether this process holds any content lock (L6 checks).
    pub(crate) fn holds_content_locks(&self) -> bool {
        self.private.borrow().values().any(|e| e.lock.is_some())
    }

    /// Set `BM_DIRTY` and `BM_JUST_DIRTIED` (PostgreSQL's
    /// `MarkBufferDirty`). Caller holds a pin and the exclusive content lock.
    pub(crate) fn mark_dirty(&self, id: BufferId) {
        self.pool
            .desc(id)
            .update_state(|s| s | BM_DIRTY | BM_JUST_DIRTIED);
    }

    /// Claim the I/O on `id` (PostgreSQL's `StartBufferIO`): wait for an
    /// I/O under way, then `None` if there is nothing left to do (valid
    /// already for input, clean already for output). Caller holds a pin.
    pub(crate) fn start_io<'m>(&'m self, id: BufferId, kind: IoKind) -> Option<IoInProgress<'m>> {
        let desc = self.pool.desc(id);
        loop {
            let io_lock = desc.io_lock.acquire_exclusive();
            let mut hdr = desc.lock_header();
            let s = hdr.get();
            if !s.has(BM_IO_IN_PROGRESS) {
                let done = match kind {
                    IoKind::Input => s.has(BM_VALID),
                    IoKind::Output => !s.has(BM_DIRTY),
                };
                if done {
                    drop(hdr);
                    drop(io_lock);
                    return None;
                }
                hdr.state |= BM_IO_IN_PROGRESS;
                drop(hdr);
                return Some(IoInProgress {
                    desc,
                    kind,
                    finished: false,
                    _io_lock: io_lock,
                });
            }
            drop(hdr);
            drop(io_lock);
            self.wait_io(id);
        }
    }

    /// Wait until no I/O is under way on `id` (PostgreSQL's `WaitIO`):
    /// the owner holds the I/O lock for as long as `BM_IO_IN_PROGRESS` is
    /// set, so passing through it in shared mode waits exactly that long.
    pub(crate) fn wait_io(&self, id: BufferId) {
        let desc = self.pool.desc(id);
        while desc.load_state().has(BM_IO_IN_PROGRESS) {
            drop(desc.io_lock.acquire_shared());
        }
    }

    /// Write `id` out if it is dirty (PostgreSQL's `FlushBuffer`). Caller
    /// holds a pin and the content lock in either mode. The WAL rule (C1):
    /// the page is copied, the WAL flushed up to the copy's LSN, and only
    /// then is the copy checksummed and written. Returns whether it wrote.
    pub(crate) fn flush_buffer(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        id: BufferId,
    ) -> Result<bool, BufferError> {
        let Some(io) = self.start_io(id, IoKind::Output) else {
            return Ok(false);
        };
        let desc = self.pool.desc(id);
        let tag = desc.tag();
        let permanent = {
            let mut hdr = desc.lock_header();
            hdr.state &= !BM_JUST_DIRTIED;
            hdr.get().has(BM_PERMANENT)
        };
        let mut copy = self.scratch.borrow_mut();
        // SAFETY: the caller holds a pin and the content lock (R1).
        copy.copy_from_slice(unsafe { self.pool.page(id) });
        let lsn = Page::new(&**copy).lsn();
        if permanent && lsn.is_valid() {
            wal.flush_wal_up_to(lsn)
                .map_err(|cause| BufferError::WalFlush {
                    lsn,
                    blkno: tag.block.0,
                    path: relpath(tag.rel, tag.fork),
                    cause,
                })?;
        }
        set_checksum(&mut copy, tag.block);
        smgr.write(tag.rel, tag.fork, tag.block, &copy)?;
        io.finish(true, 0);
        Ok(true)
    }
}
