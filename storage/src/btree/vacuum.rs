//! VACUUM's index cleanup for btrees (PostgreSQL's `btbulkdelete`,
//! `btvacuumscan`, `btvacuumpage` and `_bt_delitems_vacuum`): remove every
//! leaf entry whose heap TID the heap's VACUUM found dead, before the heap
//! slots are freed for reuse (heap vacuum rule V1). Backends run it, from
//! the `index_cleanup` callback they give `heap_vacuum`; the startup
//! process replays its VACUUM records ([`btree_redo`](super::btree_redo)).
//!
//! ```text
//!  for every block 1.. in physical order (re-reading the length at the end
//!  until it stops growing):
//!     lock shared: not a leaf, deleted, new? skip. Any entry whose heap
//!       TID is dead (or marked LP_DEAD)? no: count it, next block
//!     unlock; lock exclusive; find them again (the page may have changed);
//!       rebuild the page without them, log VACUUM, set the LSN; unlock
//! ```
//!
//! Pages are not deleted (an emptied leaf keeps its high key and its place
//! in the tree), so internal pages never change here.
//!
//! # Rules
//!
//! 1. (B1) **Every entry present when the scan began is judged.** New
//!    pages are only ever added at the end of the file (no page is reused:
//!    there is no page deletion), and a split moves entries only to the
//!    new right half, so an entry is either on a page not yet scanned or
//!    moves to a block at or past the end the scan re-reads. Entries
//!    inserted meanwhile cannot point at a dead TID: its heap slot is
//!    LP_DEAD, never reused until this cleanup has finished.
//! 2. (B2) **One leaf lock at a time**, exclusive only while the page is
//!    rebuilt; no other lock is held, so bulk delete never waits in a
//!    cycle with inserters (who lock left to right, child to parent).
//! 3. (B3) **Readers never see a half-changed page and never lose their
//!    place.** Scans copy a page's entries under its shared lock and keep
//!    no offset across a lock release (scan N1): they continue at the
//!    sibling link, which deletion does not change, so they neither skip
//!    nor repeat entries (PostgreSQL's scans likewise work from copies and
//!    re-find their position by heap TID when they come back). A unique
//!    check holds the leaf locked while it asks the heap about an entry
//!    (insert I3), so the entry and its heap tuple cannot go away under it.
//! 4. (B4) As every btree change: change, mark dirty, log, set the LSN,
//!    under the exclusive lock (xlog X1); the page is rebuilt by one
//!    function, [`delete_items`], in the operation and in redo.
//!
//! # Crash safety
//!
//! Each leaf's deletion is one record. A crash midway leaves some leaves
//! cleaned and some not; the heap's slots stay LP_DEAD (heap pass 2 had
//! not run), and the next VACUUM collects them again and repeats the
//! cleanup, which deletes what is left.

use pgerror::PgError;

use super::page::{init_page, page_item, put_items, BtOpaque, BTP_HAS_GARBAGE, BTREE_METAPAGE};
use super::search::{lock_exclusive, lock_shared, opaque};
use super::tuple::IndexTuple;
use super::xlog::{critical, log_btree_change, LogBlock, XLOG_BTREE_VACUUM};
use super::BtreeIndex;
use crate::buffer::ExclusiveContentGuard;
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::page::{is_new, OffsetNumber, Page};
use crate::types::{BlockNumber, ForkNumber, BLCKSZ};

/// What [`bt_bulk_delete`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkDeleteStats {
    /// Blocks of the index file read (the metapage not counted).
    pub pages_scanned: u32,
    /// Leaf pages rebuilt.
    pub pages_changed: u32,
    /// Entries removed.
    pub tuples_removed: u64,
    /// Leaf entries left (PostgreSQL's `num_index_tuples`).
    pub tuples_remaining: u64,
}

/// Removes every leaf entry of `index` whose heap TID `dead` accepts
/// (PostgreSQL's `btbulkdelete`); `dead` is usually
/// `heap::dead_tid_lookup(batch)`. `interrupts` is polled between pages.
pub fn bt_bulk_delete(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    dead: &dyn Fn(ItemPointer) -> bool,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<BulkDeleteStats, PgError> {
    let mut stats = BulkDeleteStats::default();
    let mut next = BTREE_METAPAGE.0 + 1;
    loop {
        // B1: pages added by splits during the scan are at the end.
        let n = ctx.smgr.nblocks(index.locator, ForkNumber::Main)?;
        if next >= n {
            return Ok(stats);
        }
        for b in next..n {
            interrupts()?;
            vacuum_page(ctx, index, BlockNumber(b), dead, &mut stats)?;
        }
        next = n;
    }
}

/// The data items of a leaf to delete: dead heap TIDs and LP_DEAD marks.
fn deletable(
    index: &BtreeIndex,
    page: &[u8; BLCKSZ],
    o: &BtOpaque,
    dead: &dyn Fn(ItemPointer) -> bool,
) -> Result<(Vec<OffsetNumber>, u64), PgError> {
    let p = Page::new(page);
    let mut doomed = Vec::new();
    let mut kept = 0;
    for off in o.first_data_key().0..=p.max_offset().0 {
        let off = OffsetNumber(off);
        let marked = p.item_id(off).is_some_and(|lp| lp.is_dead());
        let tid = IndexTuple::parse(page_item(page, off)?)?
            .heap_tid()
            .ok_or_else(|| super::page::corrupt(&index.name, "pivot tuple on a leaf"))?;
        if marked || dead(tid) {
            doomed.push(off);
        } else {
            kept += 1;
        }
    }
    Ok((doomed, kept))
}

/// One block of the scan (B2, B4).
fn vacuum_page(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
    dead: &dyn Fn(ItemPointer) -> bool,
    stats: &mut BulkDeleteStats,
) -> Result<(), PgError> {
    stats.pages_scanned += 1;
    {
        let page = lock_shared(ctx, index, blk)?;
        if is_new(&page) {
            return Ok(()); // allocated by a split that has not used it yet
        }
        let o = opaque(index, &page)?;
        if !o.is_leaf() || o.ignore() {
            return Ok(());
        }
        let (doomed, kept) = deletable(index, &page, &o, dead)?;
        if doomed.is_empty() {
            stats.tuples_remaining += kept;
            return Ok(());
        }
    }
    let mut page = lock_exclusive(ctx, index, blk)?;
    let o = opaque(index, &page)?;
    let (doomed, kept) = deletable(index, &page, &o, dead)?;
    stats.tuples_remaining += kept;
    if doomed.is_empty() {
        return Ok(());
    }
    delete_and_log(ctx, index, &mut page, &doomed)?;
    stats.pages_changed += 1;
    stats.tuples_removed += doomed.len() as u64;
    Ok(())
}

/// Deletes the items at `doomed` from leaf `page` (locked exclusively) and
/// logs it as a VACUUM record: VACUUM's pass and an inserter's removal of
/// LP_DEAD items.
pub(super) fn delete_and_log(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    page: &mut ExclusiveContentGuard<'_>,
    doomed: &[OffsetNumber],
) -> Result<(), PgError> {
    let mut rebuilt = Box::new(**page);
    delete_items(&mut rebuilt, doomed)?;
    // Critical section (xlog X1).
    page.copy_from_slice(&*rebuilt);
    page.mark_dirty();
    log_vacuum(ctx, index, page, doomed)
}

/// Logs the change already made to leaf `page` as a VACUUM record that
/// deletes `doomed` (none: only LP_DEAD marks, logged for the page's image)
/// and sets the page LSN. A WAL error is PANIC (xlog X1): the page holds
/// a change the WAL does not.
pub(super) fn log_vacuum(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    page: &mut ExclusiveContentGuard<'_>,
    doomed: &[OffsetNumber],
) -> Result<(), PgError> {
    let main = (doomed.len() as u16).to_le_bytes();
    let data = offsets_data(doomed);
    let blkno = page.block();
    let at = critical(log_btree_change(
        ctx.wal,
        index.locator,
        XLOG_BTREE_VACUUM,
        &[LogBlock {
            id: 0,
            blkno,
            page,
            will_init: false,
            data: &data,
        }],
        &main,
    ))?;
    Page::new(&mut **page).set_lsn(at.end);
    Ok(())
}

/// The VACUUM record's block data: the deleted offsets, `u16` each.
pub fn offsets_data(offsets: &[OffsetNumber]) -> Vec<u8> {
    offsets.iter().flat_map(|o| o.0.to_le_bytes()).collect()
}

/// Rebuilds a leaf without the items at `offsets` (ascending data items),
/// keeping its high key, the others in order, and its opaque part minus
/// `BTP_HAS_GARBAGE` (PostgreSQL's `_bt_delitems_vacuum`), and its LSN
/// (the caller then sets the record's). Used by [`bt_bulk_delete`] and by
/// redo.
pub fn delete_items(page: &mut [u8; BLCKSZ], offsets: &[OffsetNumber]) -> Result<(), PgError> {
    let mut o = BtOpaque::read(page)?;
    let max = Page::new(&*page).max_offset();
    let valid = offsets.windows(2).all(|w| w[0] < w[1])
        && offsets
            .iter()
            .all(|&off| off >= o.first_data_key() && off <= max);
    if !o.is_leaf() || !valid {
        return Err(PgError::new(
            pgerror::SqlState::DATA_CORRUPTED,
            format!(
                "cannot delete items {offsets:?} from a btree page with {} items",
                max.0
            ),
        ));
    }
    let kept: Vec<Vec<u8>> = (1..=max.0)
        .map(OffsetNumber)
        .filter(|off| offsets.binary_search(off).is_err())
        .map(|off| page_item(page, off).map(<[u8]>::to_vec))
        .collect::<Result<_, _>>()?;
    // The LSN stays until the caller sets the record's: full-page-image
    // decisions read it (xlog X2).
    let lsn = Page::new(&*page).lsn();
    o.flags &= !BTP_HAS_GARBAGE;
    init_page(page, &o);
    let items: Vec<&[u8]> = kept.iter().map(Vec::as_slice).collect();
    put_items(page, &items)?;
    Page::new(page).set_lsn(lsn);
    Ok(())
}

/// Redo's half of [`offsets_data`].
pub fn decode_offsets(data: &[u8], n: u16) -> Result<Vec<OffsetNumber>, PgError> {
    if data.len() != 2 * usize::from(n) {
        return Err(PgError::new(
            pgerror::SqlState::DATA_CORRUPTED,
            format!(
                "btree redo: VACUUM data of {} bytes for {n} offsets",
                data.len()
            ),
        ));
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| OffsetNumber(u16::from_le_bytes([c[0], c[1]])))
        .collect())
}
