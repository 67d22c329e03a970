//! Page splits and new roots (PostgreSQL's `_bt_split`, `_bt_findsplitloc`
//! in a simpler form, and `_bt_newroot`).
//!
//! ```text
//!   before:   ... <-> [ L: a b c d e (hk) ] <-> [ S ] ...
//!   after:    ... <-> [ L: a b c (hk') ] <-> [ R: d e (hk) ] <-> [ S ] ...
//!                      INCOMPLETE_SPLIT          new block
//!   then the parent gets the downlink  hk' -> R  (insert.rs), which clears
//!   INCOMPLETE_SPLIT on L in the same record; for a root split a new root
//!   [ -inf -> L, hk' -> R ] is made instead and the metapage points at it.
//! ```
//!
//! The new high key `hk'` of a leaf split is the shortest separator between
//! the last item kept left and the first moved right (`tuple::truncate`);
//! on an internal page it is the first item moved right, whose copy on the
//! right page becomes that page's minus-infinity item.
//!
//! # Choosing the split point
//!
//! Every split point that lets both halves fit is a candidate. The target
//! is half the bytes, except on the rightmost page when the new item goes
//! last (ascending inserts): the left half is then filled to the fill
//! factor (90% for leaves, 70% above, PostgreSQL's defaults), so that a
//! sequentially loaded index is not half empty. Among leaf candidates
//! within 5% of the target, the one whose neighbours share the fewest
//! leading key columns wins (a shorter high key; PostgreSQL's "split
//! interval" idea), then the one closest to the target.
//!
//! # Locking
//!
//! The page being split is held exclusively by the caller, with the child
//! whose split this completes (internal splits). Here: the new page
//! (`allocate_page`: metapage, then the fresh block), then the old right
//! sibling, to fix its left link. All three are released by the caller,
//! the sibling and the child here after the record (insert.rs I1, I4).

use pgerror::PgError;

use super::compare::equal_prefix_len;
use super::insert::allocate_page;
use super::page::{
    corrupt, item_footprint, page_item, page_items, set_page_flag, BtMeta, BtOpaque,
    BTP_INCOMPLETE_SPLIT, BTREE_METAPAGE, PAGE_CAPACITY_BYTES, P_HIKEY,
};
use super::search::{lock_exclusive, opaque};
use super::tuple::{minus_infinity, truncate, with_downlink, IndexTuple, INDEX_TUPLE_HEADER_BYTES};
use super::xlog::{
    build_root, build_split_left, build_split_right, critical, encode_meta, frame_items,
    left_data_items, log_btree_change, split_left_data, LogBlock, XlBtreeSplit, XLOG_BTREE_NEWROOT,
    XLOG_BTREE_SPLIT_L, XLOG_BTREE_SPLIT_R,
};
use super::BtreeIndex;
use crate::buffer::ExclusiveContentGuard;
use crate::heap::HeapContext;
use crate::page::{OffsetNumber, Page};
use crate::types::{BlockNumber, BLCKSZ};

/// Left half's share of a rightmost leaf split at the end.
const LEAF_FILLFACTOR: f64 = 0.90;
/// The same for internal pages (PostgreSQL's `BTREE_NONLEAF_FILLFACTOR`).
const NONLEAF_FILLFACTOR: f64 = 0.70;

/// Split `left` (locked X) to make room for `newitem` at `newitem_off`;
/// returns both halves, locked. `child`: see `insert_on_page`.
pub(super) fn split<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    mut left: ExclusiveContentGuard<'c>,
    newitem_off: OffsetNumber,
    newitem: &[u8],
    mut child: Option<ExclusiveContentGuard<'c>>,
) -> Result<(ExclusiveContentGuard<'c>, ExclusiveContentGuard<'c>), PgError> {
    let orig: Box<[u8; BLCKSZ]> = Box::new(*left);
    let o = opaque(index, &orig)?;
    let first = o.first_data_key();
    let orig_items = page_items(&orig, first)?;
    if newitem_off < first || usize::from(newitem_off.0 - first.0) > orig_items.len() {
        return Err(PgError::internal(format!(
            "btree split with the new item at offset {newitem_off}"
        )));
    }
    let pos = usize::from(newitem_off.0 - first.0);
    let mut items = orig_items.clone();
    items.insert(pos, newitem);
    let orig_hikey = if o.is_rightmost() {
        None
    } else {
        Some(page_item(&orig, P_HIKEY)?)
    };
    let k = choose_split(index, &items, &o, pos, orig_hikey.map(<[u8]>::len))?;
    let hikey = if o.is_leaf() {
        truncate(index, items[k - 1], items[k])?
    } else {
        with_downlink(items[k], BlockNumber::INVALID)
    };
    let xl = XlBtreeSplit {
        level: o.level,
        firstright: k as u16,
        newitempos: pos as u16,
    };
    let right_first;
    let mut right_items: Vec<&[u8]> = orig_hikey.into_iter().collect();
    if o.is_leaf() {
        right_items.extend_from_slice(&items[k..]);
    } else {
        right_first = minus_infinity(IndexTuple::parse(items[k])?.downlink());
        right_items.push(&right_first);
        right_items.extend_from_slice(&items[k + 1..]);
    }

    let left_blk = left.block();
    let mut right = allocate_page(ctx, index)?;
    let right_blk = right.block();
    let mut sibling = None;
    if !o.is_rightmost() {
        let s = lock_exclusive(ctx, index, o.next)?;
        let so = opaque(index, &s)?;
        if so.prev != left_blk {
            return Err(corrupt(
                &index.name,
                format!(
                    "right sibling's left-link doesn't match: block {} links to {} instead of expected {}",
                    o.next.0, so.prev.0, left_blk.0
                ),
            ));
        }
        sibling = Some((s, so));
    }
    let on_left = xl.newitem_on_left();
    let left_items = left_data_items(&orig_items, &xl, on_left.then_some(newitem))?;
    let left_page = build_split_left(&o, &left_items, &hikey, right_blk)?;
    let right_page = build_split_right(o.level, left_blk, o.next, &right_items)?;
    if let Some(c) = &child {
        opaque(index, c)?;
    }

    // Critical section (rule X1).
    left.copy_from_slice(&*left_page);
    right.copy_from_slice(&*right_page);
    if let Some((s, so)) = &mut sibling {
        so.prev = right_blk;
        critical(so.write(s))?;
        s.mark_dirty();
    }
    if let Some(c) = &mut child {
        critical(set_page_flag(c, BTP_INCOMPLETE_SPLIT, false))?;
        c.mark_dirty();
    }
    left.mark_dirty();
    right.mark_dirty();
    let left_data = split_left_data(&hikey, on_left.then_some(newitem));
    let right_data = frame_items(&right_items);
    let mut blocks = vec![
        LogBlock {
            id: 0,
            blkno: left_blk,
            page: &left,
            will_init: false,
            data: &left_data,
        },
        LogBlock {
            id: 1,
            blkno: right_blk,
            page: &right,
            will_init: true,
            data: &right_data,
        },
    ];
    if let Some((s, _)) = &sibling {
        blocks.push(LogBlock {
            id: 2,
            blkno: s.block(),
            page: s,
            will_init: false,
            data: &[],
        });
    }
    if let Some(c) = &child {
        blocks.push(LogBlock {
            id: 3,
            blkno: c.block(),
            page: c,
            will_init: false,
            data: &[],
        });
    }
    let info = if on_left {
        XLOG_BTREE_SPLIT_L
    } else {
        XLOG_BTREE_SPLIT_R
    };
    let at = log_btree_change(ctx.wal, index.locator, info, &blocks, &xl.encode())?;
    drop(blocks);
    for page in [Some(&mut left), Some(&mut right)]
        .into_iter()
        .chain([sibling.as_mut().map(|(s, _)| s), child.as_mut()])
        .flatten()
    {
        Page::new(&mut **page).set_lsn(at.end);
    }
    Ok((left, right))
}

/// The number of data items (of `items`, the page's with the new one)
/// that stay left; see the module header.
fn choose_split(
    index: &BtreeIndex,
    items: &[&[u8]],
    o: &BtOpaque,
    newitem_pos: usize,
    orig_hikey_len: Option<usize>,
) -> Result<usize, PgError> {
    let n = items.len();
    let fp: Vec<usize> = items.iter().map(|i| item_footprint(i.len())).collect();
    let total: usize = fp.iter().sum();
    let right_hikey = orig_hikey_len.map_or(0, item_footprint);
    let fill = match (o.is_rightmost() && newitem_pos + 1 == n, o.is_leaf()) {
        (true, true) => LEAF_FILLFACTOR,
        (true, false) => NONLEAF_FILLFACTOR,
        (false, _) => 0.5,
    };
    let target = (total as f64 * fill) as usize;
    let mut candidates = Vec::new();
    let mut left_data = 0;
    for k in 1..n {
        left_data += fp[k - 1];
        let right_data = total - left_data;
        let (left_use, right_use) = if o.is_leaf() {
            // The high key is at most firstright plus a heap TID.
            (left_data + fp[k] + 8, right_data + right_hikey)
        } else {
            let minus_inf = item_footprint(INDEX_TUPLE_HEADER_BYTES);
            (
                left_data + fp[k],
                right_data - fp[k] + minus_inf + right_hikey,
            )
        };
        if left_use <= PAGE_CAPACITY_BYTES && right_use <= PAGE_CAPACITY_BYTES {
            candidates.push((k, left_data.abs_diff(target)));
        }
    }
    let Some(&(best, best_dist)) = candidates.iter().min_by_key(|(_, d)| *d) else {
        return Err(PgError::internal(format!(
            "could not find a feasible split point for index \"{}\"",
            index.name
        )));
    };
    if !o.is_leaf() {
        return Ok(best);
    }
    let window = best_dist + total / 20;
    let mut chosen = (usize::MAX, best_dist, best);
    for &(k, dist) in candidates.iter().filter(|(_, d)| *d <= window) {
        let a = IndexTuple::parse(items[k - 1])?.decode(index)?;
        let b = IndexTuple::parse(items[k])?.decode(index)?;
        let shared = equal_prefix_len(index, &a, &b);
        if (shared, dist) < (chosen.0, chosen.1) {
            chosen = (shared, dist, k);
        }
    }
    Ok(chosen.2)
}

/// PostgreSQL's `_bt_newroot`: the root `left` split into `left` and
/// `right` (both locked X); make the root one level up pointing at both
/// and point the metapage at it, in one NEWROOT record.
pub(super) fn new_root<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    mut left: ExclusiveContentGuard<'c>,
    right: ExclusiveContentGuard<'c>,
) -> Result<(), PgError> {
    let lo = opaque(index, &left)?;
    let (left_blk, right_blk) = (left.block(), right.block());
    let level = lo.level + 1;
    let downlinks = [
        minus_infinity(left_blk),
        with_downlink(page_item(&left, P_HIKEY)?, right_blk),
    ];
    let items = [&downlinks[0][..], &downlinks[1][..]];
    let root_page = build_root(level, &items)?;
    let mut root = allocate_page(ctx, index)?;
    let root_blk = root.block();
    let mut meta = lock_exclusive(ctx, index, BTREE_METAPAGE)?;
    let old = BtMeta::read(&index.name, &meta)?;
    if old.root != left_blk {
        return Err(corrupt(
            &index.name,
            format!(
                "root split of block {} but the metapage points at {}",
                left_blk.0, old.root.0
            ),
        ));
    }
    let new_meta = BtMeta {
        root: root_blk,
        level,
        fastroot: root_blk,
        fastlevel: level,
    };

    // Critical section (rule X1).
    root.copy_from_slice(&*root_page);
    critical(set_page_flag(&mut left, BTP_INCOMPLETE_SPLIT, false))?;
    new_meta.write_page(&mut meta);
    root.mark_dirty();
    left.mark_dirty();
    meta.mark_dirty();
    let root_data = frame_items(&items);
    let meta_data = encode_meta(&new_meta);
    let mut main = root_blk.0.to_le_bytes().to_vec();
    main.extend_from_slice(&level.to_le_bytes());
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
                id: 1,
                blkno: left_blk,
                page: &left,
                will_init: false,
                data: &[],
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
    for page in [&mut root, &mut left, &mut meta] {
        Page::new(&mut **page).set_lsn(at.end);
    }
    drop(right);
    Ok(())
}
