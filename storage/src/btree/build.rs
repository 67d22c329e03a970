//! Creating an index: an empty one ([`bt_create_empty`]) or one built
//! bottom-up from a table's entries ([`bt_build`], PostgreSQL's
//! `nbtsort.c`). The backend runs it for CREATE INDEX, after creating the
//! relation file (and its SMGR_CREATE record) as for any new relation.
//!
//! # The bulk build
//!
//! ```text
//!   entries ─ sort by (key, heap TID) ─ unique? adjacent live equal keys -> 23505
//!     └─ leaf level, left to right: fill a page to 90%, then
//!          the last item moves to a new page, the old page gets the high key
//!          truncate(second last, last) and a right link, and is written;
//!          its right neighbour's downlink (the high key) goes up one level,
//!          which fills its pages the same way (70%), creating levels as needed
//!     └─ at the end each level's last page is written as rightmost; the top
//!        level has one page: the root. The metapage (block 0) last.
//! ```
//!
//! Block numbers are handed out in order as pages are started (block 0 is
//! reserved for the metapage first), each block added to the file at once,
//! zeroed; a page is written when it is finished.
//!
//! # Crash safety
//!
//! The simplest option that needs no extra rule: every page goes through
//! shared buffers and is WAL-logged as a full-page image (an XLOG FPI
//! record, PostgreSQL's `log_newpage`): copy into the buffer, mark dirty,
//! insert the record, set the LSN, like any other logged change (heap
//! rule W1). The
//! buffer manager writes it only after its WAL, and a checkpoint writes it
//! like any dirty buffer, so no fsync at the end is needed (PostgreSQL's
//! wal_level=minimal path, which skips the WAL but fsyncs the file, is
//! the other choice; it would need the commit to wait for that fsync).
//! Replay restores every page from its image. The index is visible to
//! other backends only once the transaction that created it commits; a
//! crash before leaves an orphan file, as for any relation created by an
//! aborted transaction.
//!
//! # Locking
//!
//! No other process knows the index yet: pages are locked (exclusively,
//! one at a time) only because the buffer manager requires it for writes.
//!
//! The whole sorted input is held in memory (PostgreSQL's tuplesort
//! spills to disk past `maintenance_work_mem`; not yet).

use std::cmp::Ordering;

use pgerror::{PgError, Severity, SqlState};

use super::compare::compare_values;
use super::insert::{check_item_size, extend};
use super::page::{
    init_page, item_footprint, put_items, BtMeta, BtOpaque, BTP_ROOT, BTREE_METAPAGE,
    PAGE_CAPACITY_BYTES, P_NONE,
};
use super::search::lock_exclusive;
use super::tuple::IndexTuple;
use super::tuple::{compare_tids, form_leaf_tuple, minus_infinity, truncate, with_downlink};
use super::xlog::critical;
use super::BtreeIndex;
use crate::heap::datum::Datum;
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::page::{Page, ITEM_ID_SIZE};
use crate::recovery::full_page_image_record;
use crate::types::{BlockNumber, ForkNumber, BLCKSZ};
use crate::wal::wal_error_to_pg;

/// Free space left on a leaf page when the build moves on (fillfactor 90).
const LEAF_FREE_TARGET: usize = PAGE_CAPACITY_BYTES / 10;
/// The same for internal pages (PostgreSQL's `BTREE_NONLEAF_FILLFACTOR` 70).
const NONLEAF_FREE_TARGET: usize = PAGE_CAPACITY_BYTES * 3 / 10;

/// One entry for the bulk build: a heap tuple's key and TID.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildEntry {
    pub values: Vec<Option<Datum>>,
    pub tid: ItemPointer,
    /// False for a tuple that is dead to some snapshots but not all
    /// ("recently dead"): it is indexed but not checked for uniqueness,
    /// as PostgreSQL's `tupleIsAlive`.
    pub alive: bool,
}

/// What a build produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildStats {
    pub index_tuples: usize,
    /// Pages of the tree (the metapage not counted).
    pub pages: u32,
    /// Levels, leaves included; 0 for an empty index.
    pub levels: u32,
}

fn require_empty(ctx: &mut HeapContext<'_, '_>, index: &BtreeIndex) -> Result<(), PgError> {
    let n = ctx.smgr.nblocks(index.locator, ForkNumber::Main)?;
    if n != 0 {
        return Err(PgError::internal(format!(
            "index \"{}\" already contains data ({n} blocks)",
            index.name
        )));
    }
    Ok(())
}

/// Write `page` as block `blk` through shared buffers and log its image.
fn write_logged_page(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
    page: &[u8; BLCKSZ],
) -> Result<(), PgError> {
    let mut buf = lock_exclusive(ctx, index, blk)?;
    buf.copy_from_slice(page);
    buf.mark_dirty();
    let p = Page::new(page);
    let record = full_page_image_record(
        index.locator,
        ForkNumber::Main,
        blk,
        page,
        Some((p.lower(), p.upper())),
    );
    let at = critical(
        ctx.wal
            .insert(record)
            .map_err(|e| wal_error_to_pg(&e).with_severity(Severity::Panic)),
    )?;
    Page::new(&mut *buf).set_lsn(at.end);
    Ok(())
}

/// Initialise an empty index: block 0, the metapage without a root
/// (PostgreSQL's `btbuildempty`). The relation file must exist and be empty.
pub fn bt_create_empty(ctx: &mut HeapContext<'_, '_>, index: &BtreeIndex) -> Result<(), PgError> {
    require_empty(ctx, index)?;
    write_meta(ctx, index, &BtMeta::EMPTY)
}

fn write_meta(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    meta: &BtMeta,
) -> Result<(), PgError> {
    let n = ctx.smgr.nblocks(index.locator, ForkNumber::Main)?;
    if n == 0 {
        drop(extend(ctx, index)?);
    }
    let mut page = Box::new([0u8; BLCKSZ]);
    meta.write_page(&mut page);
    write_logged_page(ctx, index, BTREE_METAPAGE, &page)
}

/// Build `index` from `entries` (any order) bottom-up; see the module
/// header. With `unique`, two live entries with equal keys without NULLs
/// fail with 23505 "could not create unique index".
pub fn bt_build(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    mut entries: Vec<BuildEntry>,
    unique: bool,
) -> Result<BuildStats, PgError> {
    require_empty(ctx, index)?;
    for e in &entries {
        index.check_values(&e.values, false)?;
    }
    entries.sort_by(|a, b| {
        compare_values(index, &a.values, &b.values).then_with(|| compare_tids(a.tid, b.tid))
    });
    if unique {
        check_duplicates(index, &entries)?;
    }
    drop(extend(ctx, index)?); // block 0, for the metapage
    let mut b = Builder {
        index,
        levels: Vec::new(),
        pages: 0,
    };
    for e in &entries {
        let tuple = form_leaf_tuple(index, &e.values, e.tid)?;
        check_item_size(index, tuple.len(), e.tid)?;
        b.add(ctx, 0, tuple)?;
    }
    let meta = b.finish(ctx)?;
    write_meta(ctx, index, &meta)?;
    Ok(BuildStats {
        index_tuples: entries.len(),
        pages: b.pages,
        levels: b.levels.len() as u32,
    })
}

/// Adjacent live entries (sorted) with equal non-null keys.
fn check_duplicates(index: &BtreeIndex, entries: &[BuildEntry]) -> Result<(), PgError> {
    let mut prev: Option<&BuildEntry> = None;
    for e in entries.iter().filter(|e| e.alive) {
        if e.values.iter().any(Option::is_none) {
            continue;
        }
        if let Some(p) = prev {
            if compare_values(index, &p.values, &e.values) == Ordering::Equal {
                return Err(PgError::new(
                    SqlState::UNIQUE_VIOLATION,
                    format!("could not create unique index \"{}\"", index.name),
                )
                .with_detail(format!(
                    "Key {} is duplicated.",
                    index.describe_key(&e.values)
                )));
            }
        }
        prev = Some(e);
    }
    Ok(())
}

/// The page being filled on one level.
struct LevelState {
    blkno: BlockNumber,
    prev: BlockNumber,
    items: Vec<Vec<u8>>,
    /// Footprints of the items plus the high key's line pointer.
    used: usize,
}

impl LevelState {
    fn new(blkno: BlockNumber, prev: BlockNumber) -> LevelState {
        LevelState {
            blkno,
            prev,
            items: Vec::new(),
            used: ITEM_ID_SIZE,
        }
    }
}

struct Builder<'i> {
    index: &'i BtreeIndex,
    /// The page being filled at each level, leaves first.
    levels: Vec<LevelState>,
    pages: u32,
}

impl Builder<'_> {
    fn allocate(&mut self, ctx: &mut HeapContext<'_, '_>) -> Result<BlockNumber, PgError> {
        let page = extend(ctx, self.index)?;
        self.pages += 1;
        Ok(page.block())
    }

    /// Append `item` to the page of `level` (PostgreSQL's `_bt_buildadd`).
    fn add(
        &mut self,
        ctx: &mut HeapContext<'_, '_>,
        level: usize,
        item: Vec<u8>,
    ) -> Result<(), PgError> {
        if level == self.levels.len() {
            let blk = self.allocate(ctx)?;
            self.levels.push(LevelState::new(blk, P_NONE));
        }
        let st = &self.levels[level];
        let free = PAGE_CAPACITY_BYTES - st.used;
        // A leaf keeps 8 bytes spare: its last item may become a high key
        // with a heap TID appended.
        let spare = if level == 0 { 8 } else { 0 };
        let target = if level == 0 {
            LEAF_FREE_TARGET
        } else {
            NONLEAF_FREE_TARGET
        };
        let full = free < item_footprint(item.len()) + spare || free < target;
        if full && st.items.len() >= 2 {
            self.finish_page(ctx, level)?;
        }
        self.push(level, item)
    }

    /// Put `item` on the level's current page; the first item of an
    /// internal page is minus infinity.
    fn push(&mut self, level: usize, item: Vec<u8>) -> Result<(), PgError> {
        let st = &mut self.levels[level];
        let item = if level > 0 && st.items.is_empty() {
            minus_infinity(IndexTuple::parse(&item)?.downlink())
        } else {
            item
        };
        st.used += item_footprint(item.len());
        st.items.push(item);
        Ok(())
    }

    /// The level's page is full: its last item moves to a new page, the
    /// page gets a high key and is written, the new page's downlink goes up.
    fn finish_page(&mut self, ctx: &mut HeapContext<'_, '_>, level: usize) -> Result<(), PgError> {
        let new_blk = self.allocate(ctx)?;
        let index = self.index;
        let st = &mut self.levels[level];
        let last = st.items.pop().expect("a full page has items");
        st.used -= item_footprint(last.len());
        let hikey = if level == 0 {
            let before = st.items.last().expect("a full page has two items");
            truncate(index, before, &last)?
        } else {
            with_downlink(&last, BlockNumber::INVALID)
        };
        let prev_blk = st.blkno;
        let old = std::mem::replace(st, LevelState::new(new_blk, prev_blk));
        self.write(ctx, level, &old, new_blk, Some(&hikey), false)?;
        if level + 1 == self.levels.len() {
            self.add(ctx, level + 1, minus_infinity(old.blkno))?;
        }
        self.add(ctx, level + 1, with_downlink(&hikey, new_blk))?;
        self.push(level, last)
    }

    fn write(
        &self,
        ctx: &mut HeapContext<'_, '_>,
        level: usize,
        st: &LevelState,
        next: BlockNumber,
        hikey: Option<&[u8]>,
        root: bool,
    ) -> Result<(), PgError> {
        let mut opaque = BtOpaque::new(level as u32);
        opaque.prev = st.prev;
        opaque.next = next;
        if root {
            opaque.flags |= BTP_ROOT;
        }
        let mut page = Box::new([0u8; BLCKSZ]);
        init_page(&mut page, &opaque);
        let items: Vec<&[u8]> = hikey
            .into_iter()
            .chain(st.items.iter().map(Vec::as_slice))
            .collect();
        put_items(&mut page, &items)?;
        write_logged_page(ctx, self.index, st.blkno, &page)
    }

    /// Write each level's last page as rightmost; the top one is the root.
    fn finish(&mut self, ctx: &mut HeapContext<'_, '_>) -> Result<BtMeta, PgError> {
        let Some(top) = self.levels.len().checked_sub(1) else {
            return Ok(BtMeta::EMPTY);
        };
        for level in 0..=top {
            let st = std::mem::replace(&mut self.levels[level], LevelState::new(P_NONE, P_NONE));
            self.write(ctx, level, &st, P_NONE, None, level == top)?;
            self.levels[level] = st;
        }
        let root = self.levels[top].blkno;
        Ok(BtMeta {
            root,
            level: top as u32,
            fastroot: root,
            fastlevel: top as u32,
        })
    }
}
