//! Finding a page with room for a new tuple (PostgreSQL's `hio.c`:
//! `RelationGetBufferForTuple`), for an insert and for the new version of
//! an update that does not fit on its old page. Backends run it.
//!
//! ```text
//!  candidates, in order:  1. the relation's target block (this process's
//!                            cache of where it last put a tuple)
//!                         2. the last block of the relation
//!                         3. a new block at the end (extension)
//! ```
//!
//! There is no free space map yet: space freed on earlier pages is not
//! found again (PostgreSQL asks its FSM between steps 1 and 3). Nothing
//! frees space yet either (no vacuum), so only the tail of a relation has
//! room.
//!
//! # Rules
//!
//! 1. (H1) A page is used only once its exclusive content lock is held and
//!    it was seen to have room ([`heap_free_space`] >= the MAXALIGN'ed
//!    tuple length); an all-zero page (extended but never initialised) is
//!    initialised first.
//! 2. (H2) Two pages (update) are locked lower block number first. A new
//!    block at the end is above every existing one, so extending while
//!    holding the old page's lock keeps the order.
//! 3. (H3) Extension without a relation extension lock (there is no lock
//!    manager yet): two processes may both see `nblocks = N` and both try
//!    to add block N. The buffer mapping makes exactly one of them its I/O
//!    owner; the other gets `UnexpectedDataBeyondEof` (it found the winner's
//!    initialised page) or `ExtendNotAtEnd` (the file grew meanwhile) and
//!    tries again with the new length. A process holds at most the old page
//!    of its update (a lower block) while it extends, so the loser's wait
//!    for the winner's new page cannot close a cycle (H2).
//!
//! # Locking
//!
//! Content locks only, per H2. Pins are taken while holding the old page's
//! lock (buffer rule L4 allows it); eviction of a dirty victim takes the
//! victim's content lock conditionally (L2).
//!
//! # Crash safety
//!
//! Initialising a page here is not logged by itself: the record that puts
//! the first tuple on it says INIT_PAGE (heapam_xlog W4). A page initialised
//! and then not used (the update found its row changed meanwhile) has LSN 0,
//! so whoever uses it next logs INIT_PAGE or a full-page image.

use pgerror::PgError;

use crate::buffer::{BufferError, ExclusiveContentGuard, PinnedBuffer};
use crate::heap::heapam::{HeapContext, HeapRelation};
use crate::heap::tuple::MAX_HEAP_TUPLES_PER_PAGE;
use crate::page::{is_new, Page};
use crate::smgr::SmgrError;
use crate::types::{BlockNumber, ForkNumber, BLCKSZ};

/// How many times an extension that lost a race (H3) is tried again.
const EXTEND_RACE_RETRIES: usize = 128;

/// Room for one more tuple of MAXALIGN'ed length, line pointer included
/// (PostgreSQL's `PageGetHeapFreeSpace`): 0 once the page has as many line
/// pointers as a heap page may and none is free.
pub fn heap_free_space(page: &[u8; BLCKSZ]) -> usize {
    let p = Page::new(page);
    if usize::from(p.max_offset().0) >= MAX_HEAP_TUPLES_PER_PAGE && !p.has_free_lines() {
        return 0;
    }
    p.free_space()
}

/// Formats an all-zero page as an empty heap page (H1). Returns whether it
/// was new.
pub fn init_if_new(page: &mut [u8; BLCKSZ]) -> bool {
    if !is_new(page) {
        return false;
    }
    Page::new(page).init(0);
    true
}

pub(crate) fn nblocks(ctx: &mut HeapContext<'_, '_>, rel: &HeapRelation) -> Result<u32, PgError> {
    ctx.smgr
        .nblocks(rel.locator, ForkNumber::Main)
        .map_err(PgError::from)
}

/// A locked page with room for `need` bytes, for an insert.
pub fn page_for_insert<'c>(
    ctx: &mut HeapContext<'c, '_>,
    rel: &HeapRelation,
    need: usize,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    let buffers = ctx.buffers;
    let n = nblocks(ctx, rel)?;
    let last = n.checked_sub(1).map(BlockNumber);
    let mut tried = None;
    for candidate in [rel.target_block(), last].into_iter().flatten() {
        if candidate.0 >= n || tried == Some(candidate) {
            continue;
        }
        tried = Some(candidate);
        let buf = buffers.read_buffer(
            &mut *ctx.smgr,
            ctx.wal,
            rel.locator,
            ForkNumber::Main,
            candidate,
        )?;
        let mut page = buf.lock_exclusive();
        init_if_new(&mut page);
        if heap_free_space(&page) >= need {
            return Ok(page);
        }
    }
    rel.set_target_block(None);
    let mut page = extend_relation(ctx, rel)?;
    init_if_new(&mut page);
    Ok(page)
}

/// A new block at the end of the relation, locked and zeroed (H3).
pub fn extend_relation<'c>(
    ctx: &mut HeapContext<'c, '_>,
    rel: &HeapRelation,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    let buffers = ctx.buffers;
    let mut attempts = 0;
    loop {
        match buffers.extend_buffer(&mut *ctx.smgr, ctx.wal, rel.locator, ForkNumber::Main) {
            Ok(page) => return Ok(page),
            Err(
                BufferError::UnexpectedDataBeyondEof { .. }
                | BufferError::Storage(SmgrError::ExtendNotAtEnd { .. }),
            ) if attempts < EXTEND_RACE_RETRIES => {
                attempts += 1;
                std::thread::yield_now();
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The old page of an update and a page for its new version, both locked
/// (H2). `new_is_extension`: the new page was just added to the relation.
pub struct PagePair<'c> {
    pub old: ExclusiveContentGuard<'c>,
    pub new: ExclusiveContentGuard<'c>,
    pub new_is_extension: bool,
}

/// Walks the candidates of the module header for an update's new version,
/// one call per attempt.
pub struct UpdateTargets {
    /// 0: target block, 1: last block, 2 and on: extension.
    stage: u8,
    tried: Vec<BlockNumber>,
}

impl Default for UpdateTargets {
    fn default() -> UpdateTargets {
        UpdateTargets::new()
    }
}

impl UpdateTargets {
    pub fn new() -> UpdateTargets {
        UpdateTargets {
            stage: 0,
            tried: Vec::new(),
        }
    }

    /// Locks `old` (the update's old page, pinned, unlocked) and the next
    /// candidate page, in block order. The caller re-checks the old tuple
    /// and the new page's room, and calls again if there was none.
    pub fn next_pair<'c>(
        &mut self,
        ctx: &mut HeapContext<'c, '_>,
        rel: &HeapRelation,
        old: &PinnedBuffer<'c>,
    ) -> Result<PagePair<'c>, PgError> {
        let buffers = ctx.buffers;
        let old_block = old.block();
        while self.stage < 2 {
            let n = nblocks(ctx, rel)?;
            let candidate = match self.stage {
                0 => rel.target_block(),
                _ => n.checked_sub(1).map(BlockNumber),
            };
            self.stage += 1;
            let Some(b) = candidate else { continue };
            if b == old_block || b.0 >= n || self.tried.contains(&b) {
                continue;
            }
            self.tried.push(b);
            let buf =
                buffers.read_buffer(&mut *ctx.smgr, ctx.wal, rel.locator, ForkNumber::Main, b)?;
            let (old, new) = if b < old_block {
                let new = buf.lock_exclusive();
                (old.lock_exclusive(), new)
            } else {
                let old = old.lock_exclusive();
                (old, buf.lock_exclusive())
            };
            return Ok(PagePair {
                old,
                new,
                new_is_extension: false,
            });
        }
        self.stage = self.stage.saturating_add(1);
        let old = old.lock_exclusive();
        let new = extend_relation(ctx, rel)?;
        Ok(PagePair {
            old,
            new,
            new_is_extension: true,
        })
    }
}
