//! VACUUM of a heap table (PostgreSQL's `vacuumlazy.c` and `pruneheap.c`,
//! without HOT, freezing or a visibility map) and the counting half of
//! ANALYZE. Backends run it, for `VACUUM [ANALYZE] t`; the startup process
//! replays its PRUNE records (`heapam_xlog.rs`).
//!
//! VACUUM removes the tuples no snapshot can see any more (visibility V7:
//! inserted by a transaction that aborted or crashed, or deleted by one
//! that committed below the horizon) and makes their space reusable, then
//! tells the free space map (`fsm.rs`) how much room each page has, so
//! that inserts and updates fill those pages before extending the table.
//!
//! # The passes (lazy vacuum)
//!
//! ```text
//!  pass 1, block by block (exclusive lock, one page at a time):
//!     each tuple: satisfies_vacuum(horizon) ── Dead ──► its line pointer
//!       becomes LP_DEAD (storage freed at once, page defragmented, PRUNE
//!       logged); its TID joins the batch of dead TIDs
//!     record the page's free space in the map
//!  when the batch is full (VacuumOptions::max_dead_tids), and at the end:
//!     index_cleanup(batch): the caller deletes every index entry pointing
//!       at one of those TIDs (bt_bulk_delete per index)
//!     pass 2 over the batch's pages: LP_DEAD -> LP_UNUSED (PRUNE logged),
//!       the slots may now be reused by inserts; record the free space
//!  at the end: the map's root is recomputed (fsm_vacuum)
//! ```
//!
//! A table without indexes (`index_cleanup: None`) makes dead tuples
//! LP_UNUSED in pass 1 directly. An LP_DEAD slot found in pass 1 (left by
//! a VACUUM that failed or was cancelled before its pass 2) joins the
//! batch like a new one.
//!
//! # Rules
//!
//! 1. (V1) **A slot is reused only after its index entries are gone.** A
//!    dead tuple's slot stays LP_DEAD (never reused: `Page::add_item` only
//!    takes LP_UNUSED slots) until `index_cleanup` has returned for a
//!    batch holding its TID; only then does pass 2 make it LP_UNUSED. So
//!    no index entry ever leads to a slot that holds another tuple.
//! 2. (V2) **One VACUUM per table at a time.** Two could each collect the
//!    same LP_DEAD slot; after the first made it unused and an insert
//!    reused it (with a new index entry), the second's index cleanup would
//!    delete the new entry. The caller holds the table's
//!    ShareUpdateExclusiveLock (self-conflicting, as in PostgreSQL); pass 2
//!    also fails (XX000) rather than free a slot that is no longer LP_DEAD.
//! 3. (V3) **The horizon is fixed before the scan** (the caller's
//!    `Transam::global_xmin()`). It only grows, so a tuple judged Dead
//!    stays dead for every snapshot taken later.
//! 4. (V4) **One content lock at a time**, exclusive, held while a page is
//!    judged and changed, released before the next page, before calling
//!    `index_cleanup`, and before the free space map is touched (fsm F3).
//!    Heap access copies tuples out under its locks (heapam A5), so moving
//!    tuples within a page (defragmentation) under the exclusive lock
//!    needs no cleanup lock (pin count 1) as PostgreSQL's does.
//! 5. (V5) **Concurrent writers stay correct.** A tuple some snapshot sees
//!    is never Dead, so what a scan returned can still be updated or
//!    deleted. An UPDATE or DELETE that follows a ctid (read committed)
//!    into a slot VACUUM emptied finds no tuple there, or a tuple whose
//!    xmin is not the prior xmax (`is_next_version`, conflict rule C5),
//!    and skips the row, which is right: that version was deleted by a
//!    committed transaction. Pages added after the scan began are not
//!    visited (they hold nothing older than the horizon).
//! 6. (V6) **Bounded memory.** At most `max_dead_tids` TIDs are held;
//!    a full batch is cleaned from the indexes and pass 2 runs before the
//!    scan goes on (PostgreSQL's `maintenance_work_mem` cycles).
//!
//! # Locking
//!
//! Buffer content locks per V4; heavyweight locks are the caller's (V2;
//! `AccessExclusiveLock` for [`heap_truncate_tail`]). `interrupts` is
//! polled between pages, with no lock held.
//!
//! # Crash safety
//!
//! Every page change is a PRUNE record, logged under the page's lock
//! after the change (heapam A1, A2), with a full-page image on the first
//! change after a checkpoint (heapam_xlog W3), and replayed by
//! `prune_page`, which makes the same bytes. A crash between pass 1 and
//! pass 2 leaves LP_DEAD slots, which the next VACUUM finds and finishes
//! (V1 holds meanwhile: LP_DEAD is never reused). The free space map is
//! not logged (fsm F4).

use pgerror::{PgError, Severity};

use crate::heap::fsm::{fsm_record, fsm_truncate, fsm_vacuum};
use crate::heap::heapam::{CurrentXact, HeapContext, HeapRelation};
use crate::heap::heapam_xlog::{
    log_heap_change, prune_offsets_data, prune_page, LogBlock, XlHeapPrune, XLOG_HEAP_PRUNE,
};
use crate::heap::hio::{heap_free_space, nblocks};
use crate::heap::tuple::{HeapTupleHeader, ItemPointer, MAX_HEAP_TUPLES_PER_PAGE};
use crate::page::{LpFlags, OffsetNumber, Page, ITEM_ID_SIZE, SIZE_OF_PAGE_HEADER};
use crate::recovery::{SmgrTruncate, SMGR_TRUNCATE_FSM, SMGR_TRUNCATE_HEAP};
use crate::transam::{satisfies_mvcc, satisfies_vacuum, Snapshot, VacuumState};
use crate::types::{BlockNumber, ForkNumber, Xid, BLCKSZ};
use crate::wal::wal_error_to_pg;

/// Free bytes of an empty heap page (what the map records for a page
/// that was extended but never used).
const EMPTY_PAGE_FREE: usize = BLCKSZ - SIZE_OF_PAGE_HEADER - ITEM_ID_SIZE;

/// Deletes the index entries of the dead TIDs given (sorted ascending),
/// for every index of the table; see [`dead_tid_lookup`]. Gets the
/// context VACUUM runs in.
pub type IndexCleanup<'r> =
    dyn FnMut(&mut HeapContext<'_, '_>, &[ItemPointer]) -> Result<(), PgError> + 'r;

/// How VACUUM may use memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VacuumOptions {
    /// Most dead TIDs held before the indexes are cleaned (V6); at least
    /// one page's worth is always allowed.
    pub max_dead_tids: usize,
}

impl Default for VacuumOptions {
    /// 256 Ki TIDs (2 MB), about PostgreSQL's default
    /// `maintenance_work_mem` share for a table of this engine's size.
    fn default() -> VacuumOptions {
        VacuumOptions {
            max_dead_tids: 256 * 1024,
        }
    }
}

/// What [`heap_vacuum`] did and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VacuumStats {
    /// Blocks scanned (the relation's length when VACUUM began).
    pub pages_scanned: u32,
    /// Page changes (PRUNE records): a page pruned in pass 1 and freed in
    /// pass 2 counts twice.
    pub pages_changed: u32,
    /// Dead tuples removed.
    pub tuples_removed: u64,
    /// Line pointers freed for reuse (removed tuples, and LP_DEAD slots a
    /// failed VACUUM had left).
    pub line_pointers_freed: u64,
    /// Tuples that stay and are live (or being deleted).
    pub live_tuples: u64,
    /// Tuples that stay because some snapshot may still see them.
    pub recently_dead_tuples: u64,
    /// Tuples inserted by transactions still running.
    pub in_progress_tuples: u64,
    /// Times `index_cleanup` was called (one per batch, V6).
    pub index_passes: u32,
    /// Sum of the free space recorded in the map.
    pub free_bytes: u64,
}

/// The counts ANALYZE stores (PostgreSQL's `relpages`, `reltuples`, and the
/// dead-tuple estimate of the statistics collector).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalyzeStats {
    pub pages: u32,
    /// Tuples the snapshot sees.
    pub live_tuples: u64,
    /// Tuples deleted by committed transactions (removable or not yet).
    pub dead_tuples: u64,
}

/// A membership test over a sorted batch of dead TIDs, as
/// `bt_bulk_delete` wants it (binary search).
pub fn dead_tid_lookup(dead: &[ItemPointer]) -> impl Fn(ItemPointer) -> bool + '_ {
    move |tid| dead.binary_search(&tid).is_ok()
}

/// VACUUM of `rel` (see the module header): removes every tuple dead below
/// `horizon` (`Transam::global_xmin()`, taken by the caller just before,
/// holding no snapshot itself), calling `index_cleanup` for each batch of
/// dead TIDs when the table has indexes, and records each page's free space
/// in the free space map. The caller holds ShareUpdateExclusiveLock on the
/// table (V2).
pub fn heap_vacuum(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    horizon: Xid,
    mut index_cleanup: Option<&mut IndexCleanup<'_>>,
    options: &VacuumOptions,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<VacuumStats, PgError> {
    let mut stats = VacuumStats {
        pages_scanned: nblocks(ctx, rel)?,
        ..VacuumStats::default()
    };
    let batch_limit = options.max_dead_tids.max(MAX_HEAP_TUPLES_PER_PAGE);
    let mut dead: Vec<ItemPointer> = Vec::new();
    for b in 0..stats.pages_scanned {
        interrupts()?;
        if dead.len() + MAX_HEAP_TUPLES_PER_PAGE > batch_limit {
            if let Some(cleanup) = index_cleanup.as_deref_mut() {
                clean_batch(ctx, rel, cleanup, &mut dead, &mut stats, interrupts)?;
            }
        }
        let one_pass = index_cleanup.is_none();
        prune_block(
            ctx,
            rel,
            BlockNumber(b),
            horizon,
            one_pass,
            &mut dead,
            &mut stats,
        )?;
    }
    if let Some(cleanup) = index_cleanup {
        if !dead.is_empty() {
            clean_batch(ctx, rel, cleanup, &mut dead, &mut stats, interrupts)?;
        }
    }
    fsm_vacuum(ctx, rel.locator)?;
    Ok(stats)
}

/// Index cleanup and pass 2 for the batch, which is emptied (V1, V6).
fn clean_batch(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    cleanup: &mut IndexCleanup<'_>,
    dead: &mut Vec<ItemPointer>,
    stats: &mut VacuumStats,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    dead.sort_unstable();
    cleanup(ctx, dead)?;
    stats.index_passes += 1;
    for page_tids in dead.chunk_by(|a, b| a.block == b.block) {
        interrupts()?;
        let offsets: Vec<OffsetNumber> = page_tids.iter().map(|t| t.offset).collect();
        let free = change_page(ctx, rel, page_tids[0].block, &[], &offsets, |page| {
            // V2: every slot must still be the LP_DEAD we collected.
            let p = Page::new(page);
            match offsets.iter().find(|&&o| !p.item_id(o).is_some_and(|lp| lp.is_dead())) {
                Some(o) => Err(PgError::internal(format!(
                    "line pointer ({},{o}) is no longer dead; is another VACUUM running on the table?",
                    page_tids[0].block.0
                ))),
                None => Ok(()),
            }
        })?;
        stats.pages_changed += 1;
        stats.line_pointers_freed += offsets.len() as u64;
        fsm_record(ctx, rel.locator, page_tids[0].block, free)?;
    }
    dead.clear();
    Ok(())
}

/// Applies a PRUNE to block `blk` under its exclusive lock: `check` first,
/// then the change on a copy (so a bad page fails without being half
/// changed), then the page, dirty, the record, the LSN (heapam A2).
/// Returns the page's free space afterwards.
fn change_page(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    blk: BlockNumber,
    to_dead: &[OffsetNumber],
    to_unused: &[OffsetNumber],
    check: impl FnOnce(&[u8; BLCKSZ]) -> Result<(), PgError>,
) -> Result<usize, PgError> {
    let buffers = ctx.buffers;
    let buf = buffers.read_buffer(&mut *ctx.smgr, ctx.wal, rel.locator, ForkNumber::Main, blk)?;
    let mut page = buf.lock_exclusive();
    check(&page)?;
    apply_prune(ctx, rel, &mut page, to_dead, to_unused)?;
    Ok(heap_free_space(&page))
}

/// The PRUNE of the page whose exclusive lock the caller holds.
fn apply_prune(
    ctx: &HeapContext<'_, '_>,
    rel: &HeapRelation,
    page: &mut crate::buffer::ExclusiveContentGuard<'_>,
    to_dead: &[OffsetNumber],
    to_unused: &[OffsetNumber],
) -> Result<(), PgError> {
    let mut copy = Box::new(**page);
    prune_page(&mut copy, to_dead, to_unused)?;
    // Critical section: the page changes, the WAL must follow (heapam A6).
    page.copy_from_slice(&*copy);
    page.mark_dirty();
    let xl = XlHeapPrune {
        ndead: to_dead.len() as u16,
        nunused: to_unused.len() as u16,
    };
    let data = prune_offsets_data(to_dead, to_unused);
    let block = LogBlock {
        id: 0,
        blkno: page.block(),
        page,
        will_init: false,
        data: &data,
    };
    let at = log_heap_change(
        ctx.wal,
        rel.locator,
        XLOG_HEAP_PRUNE,
        Xid::INVALID,
        &[block],
        &xl.encode(),
    )
    .map_err(|e| e.with_severity(Severity::Panic))?;
    Page::new(&mut **page).set_lsn(at.end);
    Ok(())
}

/// Pass 1 on one block: judge every tuple, prune the dead ones (to LP_DEAD,
/// or LP_UNUSED if `one_pass`), add their TIDs to `dead` (unless
/// `one_pass`), record the free space.
fn prune_block(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    blk: BlockNumber,
    horizon: Xid,
    one_pass: bool,
    dead: &mut Vec<ItemPointer>,
    stats: &mut VacuumStats,
) -> Result<(), PgError> {
    let buffers = ctx.buffers;
    let buf = buffers.read_buffer(&mut *ctx.smgr, ctx.wal, rel.locator, ForkNumber::Main, blk)?;
    let mut page = buf.lock_exclusive();
    if Page::new(&*page).is_new() {
        // Extended but never used (a crash, or a failed update): hio
        // initialises it when it is chosen.
        drop(page);
        stats.free_bytes += EMPTY_PAGE_FREE as u64;
        return fsm_record(ctx, rel.locator, blk, EMPTY_PAGE_FREE);
    }
    let (mut to_dead, mut to_unused, mut left_dead) = (Vec::new(), Vec::new(), Vec::new());
    let mut removed = 0;
    {
        let p = Page::new(&*page);
        for (off, lp) in p.item_ids() {
            match lp.flags() {
                LpFlags::Unused | LpFlags::Redirect => {}
                LpFlags::Dead if one_pass => to_unused.push(off),
                LpFlags::Dead => left_dead.push(off),
                LpFlags::Normal => {
                    let Some(item) = p.get_item(off)? else {
                        continue;
                    };
                    let h = HeapTupleHeader::read(item)?;
                    match satisfies_vacuum(&h, horizon, ctx.transam, ctx.clog)? {
                        VacuumState::Dead => {
                            removed += 1;
                            if one_pass {
                                to_unused.push(off);
                            } else {
                                to_dead.push(off);
                            }
                        }
                        VacuumState::Live | VacuumState::DeleteInProgress => stats.live_tuples += 1,
                        VacuumState::RecentlyDead => stats.recently_dead_tuples += 1,
                        VacuumState::InsertInProgress => stats.in_progress_tuples += 1,
                    }
                }
            }
        }
    }
    stats.tuples_removed += removed;
    if one_pass {
        stats.line_pointers_freed += to_unused.len() as u64;
    }
    if !to_dead.is_empty() || !to_unused.is_empty() {
        apply_prune(ctx, rel, &mut page, &to_dead, &to_unused)?;
        stats.pages_changed += 1;
    }
    dead.extend(
        to_dead
            .iter()
            .chain(&left_dead)
            .map(|&off| ItemPointer::new(blk, off)),
    );
    let free = heap_free_space(&page);
    drop(page);
    stats.free_bytes += free as u64;
    fsm_record(ctx, rel.locator, blk, free)
}

/// ANALYZE's counts for `rel` (a full scan, not a sample): pages, the
/// tuples `snapshot` sees for `xact`, and the tuples deleted by committed
/// transactions, judged against the current horizon. One shared content
/// lock at a time; `interrupts` is polled between pages.
pub fn heap_analyze(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    snapshot: &Snapshot,
    xact: CurrentXact,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<AnalyzeStats, PgError> {
    let pages = nblocks(ctx, rel)?;
    let horizon = ctx.transam.global_xmin();
    let mut stats = AnalyzeStats {
        pages,
        ..AnalyzeStats::default()
    };
    let buffers = ctx.buffers;
    for b in 0..pages {
        interrupts()?;
        let buf = buffers.read_buffer(
            &mut *ctx.smgr,
            ctx.wal,
            rel.locator,
            ForkNumber::Main,
            BlockNumber(b),
        )?;
        let page = buf.lock_shared();
        let p = Page::new(&*page);
        if p.is_new() {
            continue;
        }
        for (off, lp) in p.item_ids() {
            if !lp.is_normal() {
                continue;
            }
            let Some(item) = p.get_item(off)? else {
                continue;
            };
            let h = HeapTupleHeader::read(item)?;
            if satisfies_mvcc(&h, snapshot, xact.xid, xact.cid, ctx.clog)?.visible {
                stats.live_tuples += 1;
            } else if matches!(
                satisfies_vacuum(&h, horizon, ctx.transam, ctx.clog)?,
                VacuumState::Dead | VacuumState::RecentlyDead
            ) {
                stats.dead_tuples += 1;
            }
        }
    }
    Ok(stats)
}

/// Cuts the empty pages off the end of `rel` (PostgreSQL's
/// `lazy_truncate_heap`): the longest run of trailing pages without a used
/// line pointer, as a VACUUM leaves them, is removed, and their free space
/// map entries forgotten. Returns the number of pages removed.
///
/// The caller holds the table's **AccessExclusiveLock** (PostgreSQL takes
/// it conditionally and skips the truncation if it is busy): nobody else
/// may be reading or filling those pages. After commit it must invalidate
/// the relation so that other backends close their files (`Smgr::close`,
/// smgr invariant 5).
///
/// Order (PostgreSQL's `RelationTruncate`): forget the map entries, log
/// SMGR_TRUNCATE and flush it, drop the buffers, shorten the file. A crash
/// after the record replays the truncation; a checkpoint between the
/// record and the file change (PostgreSQL delays it with
/// DELAY_CHKPT_COMPLETE; not done here) can leave the cut pages on disk
/// with older contents, every tuple of which is dead (they became empty
/// only through VACUUM), so the next VACUUM removes them again.
pub fn heap_truncate_tail(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
) -> Result<u32, PgError> {
    let old_n = nblocks(ctx, rel)?;
    let mut new_n = old_n;
    let buffers = ctx.buffers;
    while new_n > 0 {
        let buf = buffers.read_buffer(
            &mut *ctx.smgr,
            ctx.wal,
            rel.locator,
            ForkNumber::Main,
            BlockNumber(new_n - 1),
        )?;
        let page = buf.lock_shared();
        let p = Page::new(&*page);
        if !p.is_new() && p.item_ids().any(|(_, lp)| lp.is_used()) {
            break;
        }
        new_n -= 1;
    }
    if new_n == old_n {
        return Ok(0);
    }
    fsm_truncate(ctx, rel.locator, new_n)?;
    let record = SmgrTruncate {
        rel: rel.locator,
        nblocks: BlockNumber(new_n),
        flags: SMGR_TRUNCATE_HEAP | SMGR_TRUNCATE_FSM,
    }
    .assemble();
    let at = ctx.wal.insert(record).map_err(|e| wal_error_to_pg(&e))?;
    ctx.wal.flush(at.end).map_err(|e| wal_error_to_pg(&e))?;
    // From here the WAL says the pages are gone: finish or PANIC.
    let critical = |e: PgError| e.with_severity(Severity::Panic);
    buffers
        .drop_relation_buffers(rel.locator, ForkNumber::Main, BlockNumber(new_n))
        .map_err(|e| critical(e.into()))?;
    ctx.smgr
        .truncate(rel.locator, ForkNumber::Main, new_n)
        .map_err(|e| critical(e.into()))?;
    if rel.target_block().is_some_and(|b| b.0 >= new_n) {
        rel.set_target_block(None);
    }
    Ok(old_n - new_n)
}
