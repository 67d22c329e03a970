//! Checking a whole index (a small `amcheck`, `bt_index_parent_check`):
//! used by the tests after every workload, and meant for a later
//! `bt_index_check()` SQL function.
//!
//! Each level is read left to right from its leftmost page; then:
//!
//! 1. sibling links agree (`next.prev == page`), the ends have [`P_NONE`],
//!    every page has its level's number and the leaf flag iff level 0; the
//!    top level is one page, the root, which the metapage names;
//! 2. on every page the data items are strictly increasing (key columns,
//!    then heap TID; truncated attributes and missing TIDs are minus
//!    infinity), and all of them are <= the page's high key and > the left
//!    sibling's high key;
//! 3. the downlinks of a level, read in order, name exactly the pages of
//!    the level below in order (a right half whose split is still
//!    incomplete has no downlink yet), and each downlink's key equals the
//!    high key of the child's left sibling; a parent's high key equals its
//!    last child's.
//!
//! It assumes no concurrent writer (it copies pages one at a time).

use std::cmp::Ordering;

use pgerror::PgError;

use super::compare::compare_column;
use super::page::{corrupt, page_item, BtOpaque, P_HIKEY, P_NONE};
use super::search::{get_endpoint, lock_shared, opaque, read_meta};
use super::tuple::{compare_tids, IndexTuple};
use super::BtreeIndex;
use crate::heap::HeapContext;
use crate::page::{OffsetNumber, Page};
use crate::types::{BlockNumber, BLCKSZ};

/// What [`bt_verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtreeShape {
    pub root: Option<BlockNumber>,
    /// Pages per level, leaves first.
    pub pages_per_level: Vec<usize>,
    pub leaf_entries: usize,
    /// Pages with `BTP_INCOMPLETE_SPLIT` (after a crash mid-split).
    pub incomplete_splits: usize,
}

/// Total order of index tuples, pivots included (rule 2).
pub fn compare_tuples(
    index: &BtreeIndex,
    a: &IndexTuple<'_>,
    b: &IndexTuple<'_>,
) -> Result<Ordering, PgError> {
    let (va, vb) = (a.decode(index)?, b.decode(index)?);
    for ((col, x), y) in index.columns.iter().zip(&va).zip(&vb) {
        let c = compare_column(col, x.as_ref(), y.as_ref());
        if c != Ordering::Equal {
            return Ok(c);
        }
    }
    let c = va.len().cmp(&vb.len());
    if c != Ordering::Equal {
        return Ok(c);
    }
    Ok(match (a.heap_tid(), b.heap_tid()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => compare_tids(x, y),
    })
}

struct LevelPage {
    blk: BlockNumber,
    opaque: BtOpaque,
    page: Box<[u8; BLCKSZ]>,
}

impl LevelPage {
    fn hikey(&self) -> Result<Option<IndexTuple<'_>>, PgError> {
        if self.opaque.is_rightmost() {
            return Ok(None);
        }
        Ok(Some(IndexTuple::parse(page_item(&self.page, P_HIKEY)?)?))
    }

    fn data_items(&self) -> Result<Vec<IndexTuple<'_>>, PgError> {
        let max = Page::new(&*self.page).max_offset().0;
        (self.opaque.first_data_key().0..=max)
            .map(|o| IndexTuple::parse(page_item(&self.page, OffsetNumber(o))?))
            .collect()
    }
}

/// Check `index` (rules 1-3) and describe its shape.
pub fn bt_verify(ctx: &mut HeapContext<'_, '_>, index: &BtreeIndex) -> Result<BtreeShape, PgError> {
    let meta = read_meta(ctx, index)?;
    let mut shape = BtreeShape::default();
    if meta.root == P_NONE {
        return Ok(shape);
    }
    shape.root = Some(meta.root);
    let bad = |what: String| corrupt(&index.name, what);
    let mut levels: Vec<Vec<LevelPage>> = Vec::new();
    for level in 0..=meta.level {
        let Some(first) = get_endpoint(ctx, index, level, false)? else {
            return Err(bad(format!("no level {level}")));
        };
        let mut blk = first.block();
        drop(first);
        let mut pages = Vec::new();
        loop {
            let g = lock_shared(ctx, index, blk)?;
            let page = Box::new(*g);
            drop(g);
            let o = opaque(index, &page)?;
            let prev = pages.last().map_or(P_NONE, |p: &LevelPage| p.blk);
            if o.level != level || o.is_leaf() != (level == 0) || o.prev != prev {
                return Err(bad(format!(
                    "block {} at level {level}: level {}, flags {:#x}, prev {} (expected {})",
                    blk.0, o.level, o.flags, o.prev.0, prev.0
                )));
            }
            if o.incomplete_split() {
                shape.incomplete_splits += 1;
            }
            let next = o.next;
            pages.push(LevelPage {
                blk,
                opaque: o,
                page,
            });
            if next == P_NONE {
                break;
            }
            if pages.len() > 1_000_000 {
                return Err(bad(format!("cycle in the sibling links of level {level}")));
            }
            blk = next;
        }
        levels.push(pages);
    }
    let top = &levels[meta.level as usize];
    if top.len() != 1 || top[0].blk != meta.root || !top[0].opaque.is_root() {
        return Err(bad(format!(
            "the top level has {} pages and the metapage names block {}",
            top.len(),
            meta.root.0
        )));
    }
    for pages in &levels {
        check_order(index, pages)?;
    }
    for level in 1..levels.len() {
        check_downlinks(index, &levels[level], &levels[level - 1])?;
    }
    shape.pages_per_level = levels.iter().map(Vec::len).collect();
    for p in &levels[0] {
        shape.leaf_entries += p.data_items()?.len();
    }
    Ok(shape)
}

/// Rule 2 on one level.
fn check_order(index: &BtreeIndex, pages: &[LevelPage]) -> Result<(), PgError> {
    let mut left_hikey: Option<IndexTuple<'_>> = None;
    for p in pages {
        let items = p.data_items()?;
        let hikey = p.hikey()?;
        // The first item of an internal page is minus infinity.
        let skip = usize::from(!p.opaque.is_leaf());
        let keyed = items.get(skip..).unwrap_or(&[]);
        for (i, t) in keyed.iter().enumerate() {
            let fail = |what: &str| {
                corrupt(
                    &index.name,
                    format!("block {} item {}: {what}", p.blk.0, i + skip + 1),
                )
            };
            if i > 0 && compare_tuples(index, &keyed[i - 1], t)? != Ordering::Less {
                return Err(fail("not above the previous item"));
            }
            if let Some(h) = &hikey {
                if compare_tuples(index, t, h)? == Ordering::Greater {
                    return Err(fail("above the high key"));
                }
            }
            if let Some(l) = &left_hikey {
                if compare_tuples(index, t, l)? != Ordering::Greater {
                    return Err(fail("not above the left sibling's high key"));
                }
            }
        }
        left_hikey = hikey;
    }
    Ok(())
}

/// Rule 3 between a level and the one below.
fn check_downlinks(
    index: &BtreeIndex,
    parents: &[LevelPage],
    children: &[LevelPage],
) -> Result<(), PgError> {
    // The children that must have a downlink, in order.
    let expected: Vec<usize> = (0..children.len())
        .filter(|&i| i == 0 || !children[i - 1].opaque.incomplete_split())
        .collect();
    let mut next = 0;
    for p in parents {
        let mut last_child = None;
        for (i, t) in p.data_items()?.iter().enumerate() {
            let Some(&c) = expected.get(next) else {
                return Err(corrupt(&index.name, "more downlinks than pages below"));
            };
            next += 1;
            if t.downlink() != children[c].blk {
                return Err(corrupt(
                    &index.name,
                    format!(
                        "block {} item {}: downlink {} where block {} was expected",
                        p.blk.0,
                        i + 1,
                        t.downlink().0,
                        children[c].blk.0
                    ),
                ));
            }
            let is_minus_inf = i == 0;
            if !is_minus_inf {
                let Some(h) = (c > 0)
                    .then(|| children[c - 1].hikey())
                    .transpose()?
                    .flatten()
                else {
                    return Err(corrupt(&index.name, "downlink to a leftmost page"));
                };
                if compare_tuples(index, t, &h)? != Ordering::Equal {
                    return Err(corrupt(
                        &index.name,
                        format!(
                            "block {} item {}: key differs from the high key of block {}",
                            p.blk.0,
                            i + 1,
                            children[c - 1].blk.0
                        ),
                    ));
                }
            }
            last_child = Some(c);
        }
        // A parent's high key is the high key of its last child, unless
        // that child's right half still lacks its downlink.
        if let (Some(ph), Some(c)) = (p.hikey()?, last_child) {
            let mut c = c;
            while children[c].opaque.incomplete_split() {
                c += 1;
            }
            let ch = children[c].hikey()?.ok_or_else(|| {
                corrupt(
                    &index.name,
                    "a rightmost child under a non-rightmost parent",
                )
            })?;
            if compare_tuples(index, &ph, &ch)? != Ordering::Equal {
                return Err(corrupt(
                    &index.name,
                    format!("block {}: high key differs from its last child's", p.blk.0),
                ));
            }
        }
    }
    if next != expected.len() {
        return Err(corrupt(
            &index.name,
            format!("{} pages below but {next} downlinks", expected.len()),
        ));
    }
    Ok(())
}
