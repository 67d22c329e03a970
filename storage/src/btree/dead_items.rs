//! Entries whose heap tuples are dead to everyone: marking them LP_DEAD
//! from index scans (PostgreSQL's `_bt_killitems`) and removing marked
//! entries from a full leaf before splitting it (`_bt_delete_or_dedup_one_page`'s
//! simple deletion, without the bottom-up part).
//!
//! Without HOT, every UPDATE adds an index entry, and the entries of old
//! versions stay until VACUUM. A scan that meets such an entry fetches a
//! heap tuple no one can see; marking the entry LP_DEAD lets later scans
//! skip it without the heap visit (scans and unique checks already skip
//! LP_DEAD items), and an insert that finds its leaf full removes the
//! marked items first instead of splitting.
//!
//! # Rules
//!
//! 1. (K1) **Only surely dead tuples.** The caller's `still_dead` must say
//!    that the heap tuple at the TID can never be seen by any transaction,
//!    now or after a crash (`transam::visibility::surely_dead`: the deleter
//!    committed below the vacuum horizon, its commit record flushed).
//! 2. (K2) **Re-checked under the leaf's exclusive lock.** A scan works
//!    from a copy of the page; by the time it marks, VACUUM may have
//!    removed the entry and freed its heap slot, and an insert may have
//!    reused the slot and put a new entry for it on this leaf. So the entry
//!    is found again by heap TID on the locked page, and `still_dead` asks
//!    the heap again while the leaf stays locked: a new entry for a reused
//!    slot must be inserted into this leaf under the same lock, so the
//!    entry found either is the old one (its slot cannot have been reused:
//!    VACUUM frees a slot only after removing its entries) or points at a
//!    tuple that is itself surely dead. Either way the mark is right. The
//!    lock order is leaf, then heap buffer, as in the unique check
//!    (insert I3).
//! 3. (K3) **Marks are hints.** Setting LP_DEAD is not WAL-logged as a
//!    change: after a crash a mark may be missing, never wrong (K1 holds for
//!    the durable state). But pages carry checksums, so a hint-only write
//!    torn by a power loss must be repairable: when the mark is the page's
//!    first change since the checkpoint's redo pointer, a VACUUM record
//!    with no offsets is logged for its full-page image (PostgreSQL's
//!    `XLogSaveBufferForHint`); later marks in the same cycle need nothing,
//!    since the image already in the WAL repairs the page. Removing marked
//!    items changes the page's contents and is logged like VACUUM's
//!    deletion (XLOG_BTREE_VACUUM, replayed by the same redo).

use pgerror::PgError;

use super::page::{page_item, set_page_flag, BTP_HAS_GARBAGE};
use super::search::{lock_exclusive, opaque};
use super::tuple::IndexTuple;
use super::vacuum::{delete_and_log, log_vacuum};
use super::BtreeIndex;
use crate::buffer::ExclusiveContentGuard;
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::page::{OffsetNumber, Page};
use crate::types::BlockNumber;

/// Asks the heap whether the tuple at a TID is surely dead (K1).
pub type StillDead<'f> =
    dyn FnMut(&mut HeapContext<'_, '_>, ItemPointer) -> Result<bool, PgError> + 'f;

/// Mark LP_DEAD the entries of leaf `blk` that a scan found at `items`
/// (offset when copied, heap TID) and whose tuples are still surely dead
/// (K2). Returns how many were marked.
pub fn bt_kill_items(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
    items: &[(OffsetNumber, ItemPointer)],
    still_dead: &mut StillDead<'_>,
) -> Result<usize, PgError> {
    if items.is_empty() {
        return Ok(0);
    }
    let mut page = lock_exclusive(ctx, index, blk)?;
    let o = opaque(index, &page)?;
    if !o.is_leaf() || o.ignore() {
        return Ok(0);
    }
    let (first, max) = (o.first_data_key().0, Page::new(&*page).max_offset().0);
    let tid_at =
        |page: &[u8; crate::types::BLCKSZ], off: u16| -> Result<Option<ItemPointer>, PgError> {
            let lp = Page::new(page).item_id(OffsetNumber(off));
            if !lp.is_some_and(|lp| lp.is_normal()) {
                return Ok(None);
            }
            Ok(IndexTuple::parse(page_item(page, OffsetNumber(off))?)?.heap_tid())
        };
    let mut marked = 0;
    for &(off, tid) in items {
        // Where the scan saw it, else wherever it moved on this page.
        let found = if off.0 >= first && off.0 <= max && tid_at(&page, off.0)? == Some(tid) {
            Some(off.0)
        } else {
            let mut hit = None;
            for o in first..=max {
                if tid_at(&page, o)? == Some(tid) {
                    hit = Some(o);
                    break;
                }
            }
            hit
        };
        let Some(at) = found else { continue };
        if !still_dead(ctx, tid)? {
            continue;
        }
        Page::new(&mut *page)
            .mark_dead(OffsetNumber(at))
            .map_err(|e| PgError::internal(format!("btree kill item: {e:?}")))?;
        marked += 1;
    }
    if marked > 0 {
        set_page_flag(&mut page, BTP_HAS_GARBAGE, true)?;
        page.mark_dirty();
        if Page::new(&*page).lsn() <= ctx.wal.redo_ptr() {
            // The first change since the checkpoint began: log the page's
            // image, so that a torn write of it can be repaired (K3).
            log_vacuum(ctx, index, &mut page, &[])?;
        }
    }
    Ok(marked)
}

/// Remove the LP_DEAD items of leaf `page` (locked exclusively by an
/// inserter that found no room), logged as VACUUM's deletion (K3).
/// Returns whether anything was removed.
pub(super) fn delete_marked_items(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    page: &mut ExclusiveContentGuard<'_>,
) -> Result<bool, PgError> {
    let o = opaque(index, page)?;
    if !o.is_leaf() || o.ignore() {
        return Ok(false);
    }
    let p = Page::new(&**page);
    let doomed: Vec<OffsetNumber> = (o.first_data_key().0..=p.max_offset().0)
        .map(OffsetNumber)
        .filter(|&off| p.item_id(off).is_some_and(|lp| lp.is_dead()))
        .collect();
    if doomed.is_empty() {
        return Ok(false);
    }
    delete_and_log(ctx, index, page, &doomed)?;
    Ok(true)
}
