//! Finding a page with room for a new tuple (PostgreSQL's `hio.c`:
//! `RelationGetBufferForTuple`), for an insert and for the new version of
//! an update that does not fit on its old page. Backends run it.
//!
//! ```text
//!  candidates, in order:  1. the relation's target block (this process's
//!                            cache of where it last put a tuple)
//!                         2. the last block of the relation
//!                         3. blocks the free space map names (fsm.rs), each
//!                            re-checked; one found too full is recorded so
//!                            and the map asked again
//!                         4. a new block at the end (extension)
//! ```
//!
//! PostgreSQL asks the map before the last block; here the last block
//! comes first because a relation that mostly grows has its room there,
//! and a map that does not exist costs a failed `stat`. VACUUM
//! records every page's free space in the map; a candidate page that turns
//! out too full has its real free space recorded after its lock is
//! released (fsm F1, F3), if the relation has a map at all (a relation
//! nobody vacuums gets none, and keeps its rows in insertion order).
//! Extension records nothing: the new page becomes the target block.
//!
//! # Rules
//!
//! 1. (H1) A page is used only once its exclusive content lock is held and
//!    it was seen to have room ([`heap_free_space`] >= the MAXALIGN'ed
//!    tuple length); an all-zero page (extended but never initialised) is
//!    initialised first. A block named by the map or the target cache that
//!    no longer exists (the relation was truncated) is skipped.
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
//! 4. (H4) The map is asked at most [`FSM_TRIES`] times per tuple, so a
//!    map that keeps naming full pages (other processes filling them
//!    first) ends in an extension rather than a long hunt.
//!
//! # Locking
//!
//! Content locks only, per H2; no free-space-map lock is held together
//! with a heap page lock (fsm F3). Pins are taken while holding the old
//! page's lock (buffer rule L4 allows it); eviction of a dirty victim takes
//! the victim's content lock conditionally (L2).
//!
//! # Crash safety
//!
//! Initialising a page here is not logged by itself: the record that puts
//! the first tuple on it says INIT_PAGE (heapam_xlog W4). A page initialised
//! and then not used (the update found its row changed meanwhile) has LSN 0,
//! so whoever uses it next logs INIT_PAGE or a full-page image. The free
//! space map is not logged and only ever a hint (fsm F1).

use pgerror::PgError;

use crate::buffer::{BufferError, ExclusiveContentGuard, PinnedBuffer};
use crate::heap::fsm::{fsm_search, fsm_update};
use crate::heap::heapam::{HeapContext, HeapRelation};
use crate::heap::tuple::MAX_HEAP_TUPLES_PER_PAGE;
use crate::page::{is_new, Page};
use crate::smgr::SmgrError;
use crate::types::{BlockNumber, ForkNumber, BLCKSZ};

/// How many times an extension that lost a race (H3) is tried again.
const EXTEND_RACE_RETRIES: usize = 128;
/// How many blocks the free space map may name for one tuple (H4).
pub const FSM_TRIES: usize = 64;

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

/// Whether block `b` of the heap exists, without a `stat` when this
/// process already knows the heap to be longer (smgr invariant 7).
fn block_exists(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    b: BlockNumber,
) -> Result<bool, PgError> {
    ctx.smgr
        .block_exists(rel.locator, ForkNumber::Main, b)
        .map_err(PgError::from)
}

/// A locked page with room for `need` bytes, for an insert.
pub fn page_for_insert<'c>(
    ctx: &mut HeapContext<'c, '_>,
    rel: &HeapRelation,
    need: usize,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    let buffers = ctx.buffers;
    let mut tried: Vec<BlockNumber> = Vec::new();
    let mut fsm_tries = 0;
    // The target block first, checked without a `stat` when this process
    // knows the relation to be longer (smgr invariant 7); the relation's
    // length only if it is full.
    let mut target = rel.target_block();
    let mut last_tried = false;
    loop {
        let candidate = match target.take() {
            Some(b) => b,
            None if !last_tried => {
                last_tried = true;
                match nblocks(ctx, rel)?.checked_sub(1) {
                    Some(b) => BlockNumber(b),
                    None => continue,
                }
            }
            None if fsm_tries < FSM_TRIES => {
                fsm_tries += 1;
                match fsm_search(ctx, rel.locator, need)? {
                    // Named again after we recorded it full: someone
                    // raised it meanwhile; leave it to them (H4).
                    Some(b) if tried.contains(&b) => break,
                    Some(b) => b,
                    None => break,
                }
            }
            None => break,
        };
        if tried.contains(&candidate) {
            continue;
        }
        tried.push(candidate);
        if !block_exists(ctx, rel, candidate)? {
            fsm_update(ctx, rel.locator, candidate, 0)?; // H1: truncated away
            continue;
        }
        let buf = buffers.read_buffer(
            &mut *ctx.smgr,
            ctx.wal,
            rel.locator,
            ForkNumber::Main,
            candidate,
        )?;
        let mut page = buf.lock_exclusive();
        init_if_new(&mut page);
        let free = heap_free_space(&page);
        if free >= need {
            return Ok(page);
        }
        drop(page);
        fsm_update(ctx, rel.locator, candidate, free)?;
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
    /// The MAXALIGN'ed length of the new version.
    need: usize,
    /// 0: target block, 1: last block, 2: the free space map, 3 and on:
    /// extension.
    stage: u8,
    fsm_tries: usize,
    tried: Vec<BlockNumber>,
}

impl UpdateTargets {
    pub fn new(need: usize) -> UpdateTargets {
        UpdateTargets {
            need,
            stage: 0,
            fsm_tries: 0,
            tried: Vec::new(),
        }
    }

    /// The next block to try before extending, if any, and whether the
    /// free space map named it.
    fn next_candidate(
        &mut self,
        ctx: &mut HeapContext<'_, '_>,
        rel: &HeapRelation,
    ) -> Result<Option<(BlockNumber, bool)>, PgError> {
        loop {
            let fixed = match self.stage {
                0 => rel.target_block(),
                1 => nblocks(ctx, rel)?.checked_sub(1).map(BlockNumber),
                2 if self.fsm_tries < FSM_TRIES => {
                    self.fsm_tries += 1;
                    match fsm_search(ctx, rel.locator, self.need)? {
                        Some(b) if !self.tried.contains(&b) => return Ok(Some((b, true))),
                        _ => None, // nothing, or named again (H4)
                    }
                }
                _ => return Ok(None),
            };
            self.stage += 1;
            if let Some(b) = fixed {
                return Ok(Some((b, false)));
            }
        }
    }

    /// Locks `old` (the update's old page, pinned, unlocked) and the next
    /// candidate page, in block order; a candidate without room for the
    /// new version is recorded in the free space map (if there is one) and
    /// passed over. The
    /// caller re-checks the old tuple and the new page's room, and calls
    /// again if there was none.
    pub fn next_pair<'c>(
        &mut self,
        ctx: &mut HeapContext<'c, '_>,
        rel: &HeapRelation,
        old: &PinnedBuffer<'c>,
    ) -> Result<PagePair<'c>, PgError> {
        let buffers = ctx.buffers;
        let old_block = old.block();
        loop {
            let Some((b, from_fsm)) = self.next_candidate(ctx, rel)? else {
                break;
            };
            if self.tried.contains(&b) {
                continue;
            }
            self.tried.push(b);
            if b == old_block {
                if from_fsm {
                    // The map thinks the old page has room; it had not.
                    let free = heap_free_space(&old.lock_shared());
                    fsm_update(ctx, rel.locator, b, free)?;
                }
                continue;
            }
            if !block_exists(ctx, rel, b)? {
                fsm_update(ctx, rel.locator, b, 0)?; // H1: truncated away
                continue;
            }
            let buf =
                buffers.read_buffer(&mut *ctx.smgr, ctx.wal, rel.locator, ForkNumber::Main, b)?;
            let (old, mut new) = if b < old_block {
                let new = buf.lock_exclusive();
                (old.lock_exclusive(), new)
            } else {
                let old = old.lock_exclusive();
                (old, buf.lock_exclusive())
            };
            init_if_new(&mut new);
            let free = heap_free_space(&new);
            if free >= self.need {
                return Ok(PagePair {
                    old,
                    new,
                    new_is_extension: false,
                });
            }
            drop((old, new));
            fsm_update(ctx, rel.locator, b, free)?;
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
