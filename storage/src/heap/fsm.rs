//! The free space map (PostgreSQL's `freespace.c`, much simplified): for
//! each heap block, roughly how many bytes a new tuple could use there, so
//! that inserts find the space VACUUM freed instead of extending the
//! relation. VACUUM records every page it processes; `hio.rs` asks the map
//! between its target/last block and extension, and records what it finds
//! on a page the map sent it to. Backends run all of it.
//!
//! The map lives in the relation's FSM fork (`<relfilenode>_fsm`), in
//! ordinary pages read and written through the buffer pool: one byte per
//! heap block, the **category** `free bytes / 32` (0..=255), in the page's
//! special space, so that every page passes the page header and checksum
//! checks on read:
//!
//! ```text
//!  FSM block 0: the root   slot i = an upper bound of the categories in leaf i
//!  FSM block 1 + i: leaf i slot j = category of heap block i * FSM_SLOTS + j
//!
//!  each FSM page:  header (28 B) | 4 B pad | FSM_SLOTS = 8160 one-byte slots
//!                  pd_lower = 28, pd_upper = pd_special = 32, LSN 0
//! ```
//!
//! Two levels cover 8160 * 8160 heap blocks (about 500 GB); blocks beyond
//! are not tracked (recording is a no-op, searching never names them). A
//! search reads the root, then one leaf; a page it names is only a hint.
//!
//! # Rules
//!
//! 1. (F1) **The map is a hint.** Whoever uses a block the map names
//!    re-checks its free space under the page's exclusive lock (hio H1),
//!    and records the real amount when there is too little. A block past
//!    the end of the heap (after a truncation) is skipped and recorded as
//!    full. So a stale or lost map costs space or time, never correctness.
//! 2. (F2) **Root slots are upper bounds.** A recorder writes the leaf
//!    slot, then raises the root slot if it is lower; it never lowers it.
//!    A search that finds a leaf without the promised space lowers the
//!    root slot to the leaf's real maximum, computed and written while it
//!    holds the leaf's lock, so a recorder's later raise cannot be lost.
//!    [`fsm_vacuum`] recomputes every root slot (after VACUUM, and repairs
//!    what a crash left).
//! 3. (F3) **Locks.** One FSM page at a time, except leaf then root (F2).
//!    No FSM lock is held while a heap page is locked or the other way
//!    round: callers record after releasing the heap page.
//! 4. (F4) **Not WAL-logged** (PostgreSQL's map is not either). Pages keep
//!    LSN 0, so the WAL rule never delays their writes. The fork is
//!    created on first use and grows with zero-initialised pages; an
//!    all-zero or unreadable page (a torn write: bad checksum) reads as
//!    "no free space" and is re-initialised by the next writer
//!    (PostgreSQL's `RBM_ZERO_ON_ERROR`).
//!
//! # Crash safety
//!
//! Nothing to recover: after a crash the map may say a page has room it
//! has not (F1 re-checks), or not know about room a page has (found again
//! at the next VACUUM). Dropping a relation removes every fork, the map
//! included (`xact::drop_relation_files`, `Smgr::unlink(.., None, ..)`).

use pgerror::PgError;

use crate::buffer::{BufferError, ExclusiveContentGuard, PinnedBuffer, SharedContentGuard};
use crate::heap::heapam::HeapContext;
use crate::page::{maxalign, Page, SIZE_OF_PAGE_HEADER};
use crate::smgr::SmgrError;
use crate::types::{BlockNumber, ForkNumber, RelFileLocator, BLCKSZ};

/// Slots per FSM page: the special space of a page with no items.
pub const FSM_SLOTS: usize = BLCKSZ - maxalign(SIZE_OF_PAGE_HEADER);
/// Bytes per category step (PostgreSQL's `FSM_CAT_STEP`).
pub const FSM_CAT_STEP: usize = BLCKSZ / 256;
/// The root page.
const ROOT: BlockNumber = BlockNumber(0);
/// How many times an FSM extension that lost a race is tried again.
const EXTEND_RACE_RETRIES: usize = 128;

/// The category recorded for `free_bytes` (rounded down: a page in
/// category c has at least `c * FSM_CAT_STEP` bytes).
pub fn fsm_category(free_bytes: usize) -> u8 {
    (free_bytes / FSM_CAT_STEP).min(255) as u8
}

/// The smallest category that guarantees `needed` bytes, if any does.
fn needed_category(needed: usize) -> Option<u8> {
    let cat = needed.div_ceil(FSM_CAT_STEP).max(1);
    u8::try_from(cat).ok()
}

/// Where heap block `block` is recorded: (leaf's FSM block, its slot in
/// the root, its slot in the leaf).
fn address(block: BlockNumber) -> Option<(BlockNumber, usize, usize)> {
    let b = block.0 as usize;
    let leaf = b / FSM_SLOTS;
    (leaf < FSM_SLOTS).then(|| (leaf_block(leaf), leaf, b % FSM_SLOTS))
}

fn leaf_block(leaf: usize) -> BlockNumber {
    BlockNumber(1 + leaf as u32)
}

/// Formats `page` as an empty FSM page (every slot 0).
fn init_fsm_page(page: &mut [u8; BLCKSZ]) {
    Page::new(page).init(FSM_SLOTS);
}

/// The slots of a formatted FSM page; `None` for anything else (an
/// all-zero page, or one that is not an FSM page), which reads as zeros.
fn slots(page: &[u8; BLCKSZ]) -> Option<&[u8]> {
    let p = Page::new(page);
    if usize::from(p.special_offset()) != BLCKSZ - FSM_SLOTS || p.verify_header().is_err() {
        return None;
    }
    Some(&page[BLCKSZ - FSM_SLOTS..])
}

/// The slots, writable; the page is (re)formatted first if it is not a
/// valid FSM page (F4). The caller marks the buffer dirty if it changes a
/// slot (formatting alone changes nothing a reader could tell apart).
fn slots_mut(page: &mut [u8; BLCKSZ]) -> &mut [u8] {
    if slots(page).is_none() {
        init_fsm_page(page);
    }
    &mut page[BLCKSZ - FSM_SLOTS..]
}

/// Length of the FSM fork in pages, 0 if it does not exist.
fn fsm_nblocks(ctx: &mut HeapContext<'_, '_>, rel: RelFileLocator) -> Result<u32, PgError> {
    match ctx.smgr.nblocks(rel, ForkNumber::Fsm) {
        Ok(n) => Ok(n),
        Err(e) if e.is_not_found() => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// A pin on FSM block `blk`, which exists. A page that fails its checks
/// is zeroed and formatted instead (F4).
fn pin_fsm_page<'c>(
    ctx: &mut HeapContext<'c, '_>,
    rel: RelFileLocator,
    blk: BlockNumber,
) -> Result<PinnedBuffer<'c>, PgError> {
    let buffers = ctx.buffers;
    match buffers.read_buffer(&mut *ctx.smgr, ctx.wal, rel, ForkNumber::Fsm, blk) {
        Ok(buf) => Ok(buf),
        Err(BufferError::InvalidPage { path, source, .. }) => {
            log::warn!(
                "invalid page in block {} of free space map {path}: {source}; zeroing it",
                blk.0
            );
            let mut page = buffers.read_buffer_zero_and_lock(
                &mut *ctx.smgr,
                ctx.wal,
                rel,
                ForkNumber::Fsm,
                blk,
            )?;
            if slots(&page).is_none() {
                init_fsm_page(&mut page);
                page.mark_dirty();
            }
            Ok(page.pinned().clone())
        }
        Err(e) => Err(e.into()),
    }
}

fn lock_shared<'c>(
    ctx: &mut HeapContext<'c, '_>,
    rel: RelFileLocator,
    blk: BlockNumber,
) -> Result<SharedContentGuard<'c>, PgError> {
    Ok(pin_fsm_page(ctx, rel, blk)?.lock_shared())
}

fn lock_exclusive<'c>(
    ctx: &mut HeapContext<'c, '_>,
    rel: RelFileLocator,
    blk: BlockNumber,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    Ok(pin_fsm_page(ctx, rel, blk)?.lock_exclusive())
}

/// Grows the FSM fork (creating it if needed) until block `upto` exists;
/// the new pages are formatted and dirty (F4).
fn extend_fsm(
    ctx: &mut HeapContext<'_, '_>,
    rel: RelFileLocator,
    upto: BlockNumber,
) -> Result<(), PgError> {
    let buffers = ctx.buffers;
    let mut races = 0;
    loop {
        let n = match ctx.smgr.nblocks(rel, ForkNumber::Fsm) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                ctx.smgr.create_fork(rel, ForkNumber::Fsm)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if n > upto.0 {
            return Ok(());
        }
        match buffers.extend_buffer(&mut *ctx.smgr, ctx.wal, rel, ForkNumber::Fsm) {
            Ok(mut page) => {
                init_fsm_page(&mut page);
                page.mark_dirty();
            }
            // Another process added that block first (as hio H3).
            Err(
                BufferError::UnexpectedDataBeyondEof { .. }
                | BufferError::Storage(SmgrError::ExtendNotAtEnd { .. }),
            ) if races < EXTEND_RACE_RETRIES => {
                races += 1;
                std::thread::yield_now();
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Records that heap block `block` of `rel` has `free_bytes` for a new
/// tuple (PostgreSQL's `RecordPageWithFreeSpace`). Creates the map if it
/// must say more than "no space" (F4).
pub fn fsm_record(
    ctx: &mut HeapContext<'_, '_>,
    rel: RelFileLocator,
    block: BlockNumber,
    free_bytes: usize,
) -> Result<(), PgError> {
    let cat = fsm_category(free_bytes);
    let Some((leaf_blk, root_slot, slot)) = address(block) else {
        return Ok(());
    };
    if leaf_blk.0 >= fsm_nblocks(ctx, rel)? {
        if cat == 0 {
            return Ok(()); // the missing page says 0 already
        }
        extend_fsm(ctx, rel, leaf_blk)?;
    }
    {
        let mut leaf = lock_exclusive(ctx, rel, leaf_blk)?;
        let s = slots_mut(&mut leaf);
        if s[slot] != cat {
            s[slot] = cat;
            leaf.mark_dirty();
        }
    }
    // F2: raise the root's bound after the leaf is written.
    let bound = {
        let root = lock_shared(ctx, rel, ROOT)?;
        slots(&root).map_or(0, |s| s[root_slot])
    };
    if bound < cat {
        let mut root = lock_exclusive(ctx, rel, ROOT)?;
        let s = slots_mut(&mut root);
        if s[root_slot] < cat {
            s[root_slot] = cat;
            root.mark_dirty();
        }
    }
    Ok(())
}

/// [`fsm_record`], but only if the relation has a map already: what an
/// inserter that found a page too full says (hio), so that a relation
/// nobody vacuums gets no map.
pub fn fsm_update(
    ctx: &mut HeapContext<'_, '_>,
    rel: RelFileLocator,
    block: BlockNumber,
    free_bytes: usize,
) -> Result<(), PgError> {
    if fsm_nblocks(ctx, rel)? == 0 {
        return Ok(());
    }
    fsm_record(ctx, rel, block, free_bytes)
}

/// The recorded free space of heap block `block`, in bytes rounded down to
/// a category (PostgreSQL's `GetRecordedFreeSpace`).
pub fn fsm_recorded(
    ctx: &mut HeapContext<'_, '_>,
    rel: RelFileLocator,
    block: BlockNumber,
) -> Result<usize, PgError> {
    let Some((leaf_blk, _, slot)) = address(block) else {
        return Ok(0);
    };
    if leaf_blk.0 >= fsm_nblocks(ctx, rel)? {
        return Ok(0);
    }
    let leaf = lock_shared(ctx, rel, leaf_blk)?;
    Ok(slots(&leaf).map_or(0, |s| usize::from(s[slot]) * FSM_CAT_STEP))
}

/// A heap block the map says has at least `needed` bytes free, if any
/// (PostgreSQL's `GetPageWithFreeSpace`): the lowest such block, found
/// through the root. A hint only (F1).
pub fn fsm_search(
    ctx: &mut HeapContext<'_, '_>,
    rel: RelFileLocator,
    needed: usize,
) -> Result<Option<BlockNumber>, PgError> {
    let Some(cat) = needed_category(needed) else {
        return Ok(None);
    };
    let n = fsm_nblocks(ctx, rel)?;
    let mut from = 0;
    while n > 1 && from < FSM_SLOTS {
        let candidate = {
            let root = lock_shared(ctx, rel, ROOT)?;
            slots(&root).and_then(|s| s[from..].iter().position(|&c| c >= cat))
        };
        let Some(i) = candidate.map(|p| from + p) else {
            return Ok(None);
        };
        if leaf_block(i).0 >= n {
            return Ok(None); // a bound left over from a shorter fork
        }
        let leaf = lock_shared(ctx, rel, leaf_block(i))?;
        let leaf_slots = slots(&leaf);
        if let Some(j) = leaf_slots.and_then(|s| s.iter().position(|&c| c >= cat)) {
            return Ok(Some(BlockNumber((i * FSM_SLOTS + j) as u32)));
        }
        // F2: the bound was too high; lower it while holding the leaf.
        let max = leaf_slots
            .and_then(|s| s.iter().max().copied())
            .unwrap_or(0);
        let mut root = lock_exclusive(ctx, rel, ROOT)?;
        let s = slots_mut(&mut root);
        if s[i] > max {
            s[i] = max;
            root.mark_dirty();
        }
        drop(root);
        drop(leaf);
        from = i + 1;
    }
    Ok(None)
}

/// Forgets every heap block at or past `heap_nblocks` (before the heap is
/// truncated to that length; PostgreSQL's `FreeSpaceMapPrepareTruncateRel`)
/// and recomputes the root.
pub fn fsm_truncate(
    ctx: &mut HeapContext<'_, '_>,
    rel: RelFileLocator,
    heap_nblocks: u32,
) -> Result<(), PgError> {
    let n = fsm_nblocks(ctx, rel)?;
    let first_leaf = heap_nblocks as usize / FSM_SLOTS;
    for leaf in first_leaf..FSM_SLOTS {
        let blk = leaf_block(leaf);
        if blk.0 >= n {
            break;
        }
        let from = (heap_nblocks as usize).saturating_sub(leaf * FSM_SLOTS);
        let mut page = lock_exclusive(ctx, rel, blk)?;
        let s = slots_mut(&mut page);
        if s[from..].iter().any(|&c| c != 0) {
            s[from..].fill(0);
            page.mark_dirty();
        }
    }
    fsm_vacuum(ctx, rel)
}

/// Makes every root slot the exact maximum of its leaf (F2; PostgreSQL's
/// `FreeSpaceMapVacuum`). Run at the end of VACUUM.
pub fn fsm_vacuum(ctx: &mut HeapContext<'_, '_>, rel: RelFileLocator) -> Result<(), PgError> {
    let n = fsm_nblocks(ctx, rel)?;
    if n == 0 {
        return Ok(());
    }
    for i in 0..FSM_SLOTS {
        let leaf = (leaf_block(i).0 < n)
            .then(|| lock_shared(ctx, rel, leaf_block(i)))
            .transpose()?;
        let max = leaf
            .as_deref()
            .and_then(slots)
            .and_then(|s| s.iter().max().copied())
            .unwrap_or(0);
        let current = {
            let root = lock_shared(ctx, rel, ROOT)?;
            slots(&root).map_or(0, |s| s[i])
        };
        if current != max {
            let mut root = lock_exclusive(ctx, rel, ROOT)?;
            let s = slots_mut(&mut root);
            s[i] = max;
            root.mark_dirty();
        }
        drop(leaf);
        if leaf_block(i).0 >= n {
            // Every later slot belongs to a missing leaf too.
            let mut root = lock_exclusive(ctx, rel, ROOT)?;
            let s = slots_mut(&mut root);
            if s[i..].iter().any(|&c| c != 0) {
                s[i..].fill(0);
                root.mark_dirty();
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
