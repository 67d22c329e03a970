//! Inserting an entry (PostgreSQL's `nbtinsert.c`): the unique check,
//! finding the place, putting the tuple on the page, and carrying a split
//! up the tree (`_bt_insert_parent`, `_bt_getstackbuf`, `_bt_finish_split`,
//! `_bt_newroot`). The split itself is in `split.rs`.
//!
//! # The life of an insert
//!
//! ```text
//!  bt_insert(values, tid)
//!   1. form the leaf tuple; 54000 if it is larger than BT_MAX_ITEM_BYTES
//!   2. search(key, Write): stack of parents, leaf locked X (creates the root
//!      of an empty index first)
//!   3. unique index, no NULL key: check_unique from the first equal entry
//!      rightwards; a live duplicate -> 23505; an in-progress one -> release
//!      everything, wait for that xid, start again at 2
//!   4. find_insert_loc: step right while (key, tid) > the high key
//!   5. no room on the leaf? remove its LP_DEAD items first (dead_items.rs)
//!      insert_on_page: room? put it there, log INSERT_LEAF, done
//!      no room?  split (split.rs, log SPLIT) ──► insert_parent:
//!        root split  -> new_root (log NEWROOT)
//!        otherwise   -> get_stack_buf (re-find the parent, X) and
//!                       insert_on_page(parent, downlink) ... up the tree
//! ```
//!
//! # Rules
//!
//! 1. (I1) **Lock order.** A writer locks pages bottom-up (child, then
//!    parent) and, on one level, left to right (a page, then its right
//!    sibling), never the other way; the metapage comes after any tree
//!    page. Readers hold one lock at a time (search S1). No cycle of waits
//!    can form.
//! 2. (I2) **The metapage is the index's extension lock.** A new page is
//!    added at the end of the file only while holding the metapage
//!    exclusively ([`allocate_page`]), so two processes never race for
//!    the same block, and the new page is locked before anyone can reach it.
//! 3. (I3) A leaf stays locked from the unique check until the entry is on
//!    a page: two inserters of one key serialize on the first page where
//!    that key could be. Waiting for a transaction (`wait_for_xid`) happens
//!    with no content lock held.
//! 4. (I4) A split keeps the left page locked until the downlink to the
//!    right half is in the parent (or a new root made), so no one else sees
//!    `BTP_INCOMPLETE_SPLIT` in normal running; the record that inserts the
//!    downlink clears the flag in the same atomic step.
//! 5. (I5) A writer that meets `BTP_INCOMPLETE_SPLIT` (left over by a crash
//!    or an error between the two records) finishes that split before
//!    using the page: descending (search S2), stepping right, and re-finding
//!    a parent.
//! 6. (I6) The parent is re-found from the stack hint: the page visited on
//!    the way down, moving right as splits moved the downlink; if the
//!    descent started below the current root (a concurrent root split),
//!    from the leftmost page of the parent level.
//!
//! # Crash safety
//!
//! Each record describes a complete change of the pages it names (rules
//! X1-X3 of `xlog.rs`); a crash between the records of one insert leaves
//! at worst an incomplete split, which I5 repairs. Index entries are not
//! MVCC: an entry whose heap tuple never committed stays until VACUUM
//! removes it (`vacuum.rs`); scans skip it through the heap's visibility.

use pgerror::{PgError, SqlState};

use super::compare::{binsrch, compare_high_key, compare_key, SearchKey};
use super::page::{
    corrupt, has_room_for, insert_item, page_item, set_page_flag, BtMeta, BTP_INCOMPLETE_SPLIT,
    BTREE_METAPAGE, P_HIKEY, P_NONE,
};
use super::search::{
    get_endpoint, lock_exclusive, lock_shared, opaque, read_meta, search, Access, StackEntry,
};
use super::split::{new_root, split};
use super::tuple::{form_leaf_tuple, with_downlink, IndexTuple, BT_MAX_ITEM_BYTES};
use super::unique::{UniqueCheck, UniqueChecker};
use super::xlog::{
    build_root, critical, encode_meta, frame_items, log_btree_change, LogBlock,
    XLOG_BTREE_INSERT_LEAF, XLOG_BTREE_INSERT_UPPER, XLOG_BTREE_NEWROOT,
};
use super::BtreeIndex;
use crate::buffer::{BufferError, ExclusiveContentGuard, SharedContentGuard};
use crate::heap::datum::Datum;
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::page::{OffsetNumber, Page};
use crate::smgr::SmgrError;
use crate::types::{BlockNumber, ForkNumber, BLCKSZ};

/// How many times an extension that found its block taken is retried
/// (cannot happen under I2; kept as heap's hio H3 does, for safety).
const EXTEND_RETRIES: usize = 16;

/// Insert the entry `values` -> `tid` into `index` (PostgreSQL's
/// `btinsert`). With `unique`, a live entry with the same key (and no NULL
/// in it) fails with `23505`; `unique` judges each such entry's heap tuple
/// (see [`super::unique::heap_unique_check`]), and an in-progress one is
/// waited for (`interrupts` is polled while waiting).
pub fn bt_insert(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    values: &[Option<Datum>],
    tid: ItemPointer,
    unique: Option<&mut UniqueChecker<'_>>,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    index.check_values(values, false)?;
    let tuple = form_leaf_tuple(index, values, tid)?;
    check_item_size(index, tuple.len(), tid)?;
    let mut unique = if values.iter().any(Option::is_none) {
        None
    } else {
        unique
    };
    loop {
        let key = SearchKey {
            values,
            tid: if unique.is_some() { None } else { Some(tid) },
        };
        let Some((stack, leaf)) = search(ctx, index, &key, false, Access::Write)? else {
            return Err(PgError::internal("btree write search found no root"));
        };
        let leaf = leaf.into_exclusive()?;
        if let Some(check) = unique.as_mut() {
            match check_unique(ctx, index, &leaf, values, &mut **check)? {
                Conflict::None => {}
                Conflict::Live => return Err(index.unique_violation(values)),
                Conflict::InProgress(xid) => {
                    drop(leaf);
                    crate::heap::heapam::wait_for_writer(ctx, xid, interrupts).map_err(|e| {
                        crate::heap::heapam::wait_context(e, "inserting index", tid, &index.name)
                    })?;
                    continue;
                }
            }
        }
        let key = SearchKey {
            values,
            tid: Some(tid),
        };
        let mut leaf = find_insert_loc(ctx, index, leaf, &key, &stack)?;
        if !has_room_for(&leaf, tuple.len()) {
            // Entries scans marked dead go before a split is considered.
            super::dead_items::delete_marked_items(ctx, index, &mut leaf)?;
        }
        let off = binsrch(index, &key, &leaf, false)?;
        return insert_on_page(ctx, index, leaf, stack, tuple, off, None);
    }
}

/// PostgreSQL's check in `_bt_check_third_page`.
pub fn check_item_size(index: &BtreeIndex, len: usize, tid: ItemPointer) -> Result<(), PgError> {
    if len <= BT_MAX_ITEM_BYTES {
        return Ok(());
    }
    Err(PgError::new(
        SqlState::PROGRAM_LIMIT_EXCEEDED,
        format!(
            "index row size {len} exceeds btree version 4 maximum {BT_MAX_ITEM_BYTES} for index \"{}\"",
            index.name
        ),
    )
    .with_detail(format!("Index row references tuple {tid}."))
    .with_hint(
        "Values larger than 1/3 of a buffer page cannot be indexed.\n\
         Consider a function index of an MD5 hash of the value, or use full text indexing.",
    ))
}

/// What [`check_unique`] found.
enum Conflict {
    None,
    Live,
    InProgress(crate::types::Xid),
}

/// PostgreSQL's `_bt_check_unique`: from the first entry >= key on `leaf`,
/// ask `check` about every entry with an equal key, moving right (shared
/// locks, the leaf still held: I1, I3) while the high key equals the key.
fn check_unique<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    leaf: &ExclusiveContentGuard<'c>,
    values: &[Option<Datum>],
    check: &mut UniqueChecker<'_>,
) -> Result<Conflict, PgError> {
    let key = SearchKey { values, tid: None };
    let mut off = binsrch(index, &key, leaf, false)?;
    let mut right: Option<SharedContentGuard<'c>> = None;
    loop {
        let page: &[u8; BLCKSZ] = match &right {
            Some(r) => r,
            None => leaf,
        };
        let o = opaque(index, page)?;
        let p = Page::new(page);
        if !o.ignore() && off <= p.max_offset() {
            let dead = p.item_id(off).is_some_and(|lp| lp.is_dead());
            let t = IndexTuple::parse(page_item(page, off)?)?;
            off = OffsetNumber(off.0 + 1);
            if dead {
                continue;
            }
            if compare_key(index, &key, &t)? != std::cmp::Ordering::Equal {
                return Ok(Conflict::None);
            }
            let htid = t
                .heap_tid()
                .ok_or_else(|| corrupt(&index.name, "pivot tuple on a leaf"))?;
            match check(ctx, htid)? {
                UniqueCheck::Dead => continue,
                UniqueCheck::Live => return Ok(Conflict::Live),
                UniqueCheck::InProgress(x) => return Ok(Conflict::InProgress(x)),
            }
        }
        if o.is_rightmost() {
            return Ok(Conflict::None);
        }
        if !o.ignore()
            && compare_high_key(index, &key, page, &o)? != Some(std::cmp::Ordering::Equal)
        {
            return Ok(Conflict::None);
        }
        drop(right.take());
        let next = lock_shared(ctx, index, o.next)?;
        off = opaque(index, &next)?.first_data_key();
        right = Some(next);
    }
}

/// PostgreSQL's `_bt_findinsertloc` for heapkeyspace indexes: step right
/// (locking the right page before releasing the current one) while the
/// key, heap TID included, is beyond the high key; finish incomplete
/// splits on the way (I5).
fn find_insert_loc<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    mut leaf: ExclusiveContentGuard<'c>,
    key: &SearchKey<'_>,
    stack: &[StackEntry],
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    loop {
        let o = opaque(index, &leaf)?;
        if o.is_rightmost()
            || compare_high_key(index, key, &leaf, &o)? != Some(std::cmp::Ordering::Greater)
        {
            return Ok(leaf);
        }
        let mut next = o.next;
        loop {
            let right = lock_exclusive(ctx, index, next)?;
            let ro = opaque(index, &right)?;
            if ro.incomplete_split() {
                finish_split(ctx, index, right, stack.to_vec())?;
                continue;
            }
            if ro.ignore() {
                if ro.is_rightmost() {
                    return Err(corrupt(&index.name, "fell off the end of the leaf level"));
                }
                next = ro.next;
                continue;
            }
            leaf = right;
            break;
        }
    }
}

/// Put `tuple` at `off` of `page` (PostgreSQL's `_bt_insertonpg`), splitting
/// if it does not fit. `child` is the left half of a split one level down
/// whose downlink this is: its `BTP_INCOMPLETE_SPLIT` is cleared in the same
/// record (I4), and it is released after that record.
pub(super) fn insert_on_page<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    mut page: ExclusiveContentGuard<'c>,
    stack: Vec<StackEntry>,
    tuple: Vec<u8>,
    off: OffsetNumber,
    mut child: Option<ExclusiveContentGuard<'c>>,
) -> Result<(), PgError> {
    let o = opaque(index, &page)?;
    if let Some(c) = &child {
        opaque(index, c)?;
    }
    if !has_room_for(&page, tuple.len()) {
        let is_root = o.is_root();
        let (left, right) = split(ctx, index, page, off, &tuple, child)?;
        return insert_parent(ctx, index, left, right, stack, is_root);
    }
    if off < o.first_data_key() || off.0 > Page::new(&*page).max_offset().0 + 1 {
        return Err(PgError::internal(format!(
            "btree insert at offset {off} of block {}",
            page.block().0
        )));
    }
    // Critical section (rule X1).
    critical(insert_item(&mut page, off, &tuple))?;
    if let Some(c) = &mut child {
        critical(set_page_flag(c, BTP_INCOMPLETE_SPLIT, false))?;
        c.mark_dirty();
    }
    page.mark_dirty();
    let offnum = off.0.to_le_bytes();
    let mut blocks = vec![LogBlock {
        id: 0,
        blkno: page.block(),
        page: &page,
        will_init: false,
        data: &tuple,
    }];
    if let Some(c) = &child {
        blocks.push(LogBlock {
            id: 1,
            blkno: c.block(),
            page: c,
            will_init: false,
            data: &[],
        });
    }
    let info = if o.is_leaf() {
        XLOG_BTREE_INSERT_LEAF
    } else {
        XLOG_BTREE_INSERT_UPPER
    };
    let at = log_btree_change(ctx.wal, index.locator, info, &blocks, &offnum)?;
    drop(blocks);
    Page::new(&mut *page).set_lsn(at.end);
    if let Some(c) = &mut child {
        Page::new(&mut **c).set_lsn(at.end);
    }
    Ok(())
}

/// After a split of `left` into `left` and `right` (both locked): put the
/// downlink to `right` into the parent, or make a new root (I4, I6).
pub(super) fn insert_parent<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    left: ExclusiveContentGuard<'c>,
    right: ExclusiveContentGuard<'c>,
    mut stack: Vec<StackEntry>,
    is_root: bool,
) -> Result<(), PgError> {
    if is_root {
        return new_root(ctx, index, left, right);
    }
    let level = opaque(index, &left)?.level;
    let (left_blk, right_blk) = (left.block(), right.block());
    let entry = match stack.pop() {
        Some(e) => e,
        None => {
            // The descent began below the current root (I6).
            let Some(p) = get_endpoint(ctx, index, level + 1, false)? else {
                return Err(parent_not_found(index, left_blk, right_blk));
            };
            StackEntry {
                blkno: p.block(),
                offset: OffsetNumber::INVALID,
            }
        }
    };
    let new_item = with_downlink(page_item(&left, P_HIKEY)?, right_blk);
    let Some((parent, down_off)) = get_stack_buf(ctx, index, entry, &stack, left_blk)? else {
        return Err(parent_not_found(index, left_blk, right_blk));
    };
    drop(right);
    insert_on_page(
        ctx,
        index,
        parent,
        stack,
        new_item,
        OffsetNumber(down_off.0 + 1),
        Some(left),
    )
}

fn parent_not_found(index: &BtreeIndex, left: BlockNumber, right: BlockNumber) -> PgError {
    PgError::internal(format!(
        "failed to re-find parent key in index \"{}\" for split pages {}/{}",
        index.name, left.0, right.0
    ))
}

/// PostgreSQL's `_bt_getstackbuf`: the page holding the downlink to
/// `child`, locked exclusively, and that downlink's offset. Starts at the
/// stack entry's page and offset and moves right (I6), finishing
/// incomplete splits there with the stack above (`parents`).
fn get_stack_buf<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    entry: StackEntry,
    parents: &[StackEntry],
    child: BlockNumber,
) -> Result<Option<(ExclusiveContentGuard<'c>, OffsetNumber)>, PgError> {
    let (mut blk, mut start) = (entry.blkno, entry.offset);
    loop {
        let page = lock_exclusive(ctx, index, blk)?;
        let o = opaque(index, &page)?;
        if o.incomplete_split() {
            finish_split(ctx, index, page, parents.to_vec())?;
            continue;
        }
        if !o.ignore() {
            let (min, max) = (o.first_data_key().0, Page::new(&*page).max_offset().0);
            let s = start.0.clamp(min, max.saturating_add(1));
            let found = (s..=max)
                .chain((min..s).rev())
                .map(OffsetNumber)
                .find_map(
                    |off| match page_item(&page, off).and_then(IndexTuple::parse) {
                        Ok(t) if t.downlink() == child => Some(Ok(off)),
                        Ok(_) => None,
                        Err(e) => Some(Err(e)),
                    },
                )
                .transpose()?;
            if let Some(off) = found {
                return Ok(Some((page, off)));
            }
        }
        if o.is_rightmost() {
            return Ok(None);
        }
        blk = o.next;
        start = OffsetNumber::INVALID;
    }
}

/// PostgreSQL's `_bt_finish_split`: `left` (locked X) has
/// `BTP_INCOMPLETE_SPLIT`; lock its right half and insert the missing
/// downlink, or make the new root if `left` was the root (I5).
pub(super) fn finish_split<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    left: ExclusiveContentGuard<'c>,
    stack: Vec<StackEntry>,
) -> Result<(), PgError> {
    let o = opaque(index, &left)?;
    if o.is_rightmost() {
        return Err(corrupt(
            &index.name,
            format!("incomplete split of rightmost block {}", left.block().0),
        ));
    }
    let right = lock_exclusive(ctx, index, o.next)?;
    let ro = opaque(index, &right)?;
    if ro.prev != left.block() {
        return Err(corrupt(
            &index.name,
            format!(
                "right sibling's left-link doesn't match: block {} links to {} instead of expected {}",
                o.next.0,
                ro.prev.0,
                left.block().0
            ),
        ));
    }
    let was_root = read_meta(ctx, index)?.root == left.block();
    log::info!(
        "finishing incomplete split of {}/{} in index \"{}\"",
        left.block().0,
        right.block().0,
        index.name
    );
    insert_parent(ctx, index, left, right, stack, was_root)
}

/// A new zeroed page at the end of the index, locked exclusively (I2).
pub(super) fn allocate_page<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    let meta = lock_exclusive(ctx, index, BTREE_METAPAGE)?;
    let page = extend(ctx, index)?;
    drop(meta);
    Ok(page)
}

/// Add a block; the caller holds the metapage exclusively (I2) or is the
/// only process that knows the index (bulk build).
pub(super) fn extend<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    let buffers = ctx.buffers;
    let mut attempts = 0;
    loop {
        match buffers.extend_buffer(&mut *ctx.smgr, ctx.wal, index.locator, ForkNumber::Main) {
            Ok(page) => return Ok(page),
            Err(
                BufferError::UnexpectedDataBeyondEof { .. }
                | BufferError::Storage(SmgrError::ExtendNotAtEnd { .. }),
            ) if attempts < EXTEND_RETRIES => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The first root of an empty index: a leaf, logged as NEWROOT with the
/// metapage (PostgreSQL's `_bt_getroot` with `BT_WRITE`). Nothing to do if
/// another process made it meanwhile.
pub(super) fn create_root(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
) -> Result<(), PgError> {
    let mut meta = lock_exclusive(ctx, index, BTREE_METAPAGE)?;
    if BtMeta::read(&index.name, &meta)?.root != P_NONE {
        return Ok(());
    }
    let mut root = extend(ctx, index)?;
    let root_blk = root.block();
    let new_meta = BtMeta {
        root: root_blk,
        level: 0,
        fastroot: root_blk,
        fastlevel: 0,
    };
    let page = build_root(0, &[])?;
    // Critical section (rule X1).
    root.copy_from_slice(&*page);
    new_meta.write_page(&mut meta);
    root.mark_dirty();
    meta.mark_dirty();
    let meta_data = encode_meta(&new_meta);
    let empty: [&[u8]; 0] = [];
    let root_data = frame_items(&empty);
    let mut main = root_blk.0.to_le_bytes().to_vec();
    main.extend_from_slice(&0u32.to_le_bytes());
    let at = log_btree_change(
        ctx.wal,
        index.locator,
        XLOG_BTREE_NEWROOT,
        &[
            LogBlock {
                id: 0,
                blkno: root_blk,
                page: &root,
                will_init: true,
                data: &root_data,
            },
            LogBlock {
                id: 2,
                blkno: BTREE_METAPAGE,
                page: &meta,
                will_init: true,
                data: &meta_data,
            },
        ],
        &main,
    )?;
    Page::new(&mut *root).set_lsn(at.end);
    Page::new(&mut *meta).set_lsn(at.end);
    Ok(())
}
