//! Index scans (PostgreSQL's `nbtsearch.c`: `_bt_first`, `_bt_next`,
//! `_bt_readpage`, `_bt_walk_left`), page at a time.
//!
//! A [`BtScan`] returns the entries whose key lies in a range, in index
//! order (forward) or reverse order (backward), as [`IndexEntry`]s: the
//! heap TID and the key values. Entries are not MVCC-aware: the caller
//! fetches each heap tuple and tests it against its snapshot, as
//! PostgreSQL's executor does.
//!
//! ```text
//!  first call:  search(lower bound) -> leaf, binary search -> start offset
//!  each page:   lock shared, copy every entry in range, note the sibling
//!               link, unlock; hand out the copies one by one
//!  forward:     next page = the right link noted under the lock
//!  backward:    next page = the page whose right link is the one just read,
//!               found from the left link noted (moving right if that page
//!               split since)
//! ```
//!
//! The scan does not hold the context between calls: [`BtScan::next`]
//! takes it, so the caller can fetch heap tuples in between.
//!
//! # Bounds
//!
//! Bounds are value lists for a prefix of the key columns, compared in
//! index order (NULL sorts last by default, so `Excluded([NULL])` as upper
//! bound means "every non-null value", which is what `col > 5` needs).
//!
//! # Rules
//!
//! 1. (N1) A page's entries are copied under its shared lock, with the
//!    sibling link; no lock, pin or offset is kept between pages. VACUUM
//!    deletes entries but never pages (`vacuum.rs` B3), so a remembered
//!    block stays valid and deletions between two reads cannot make the
//!    scan skip or repeat an entry; an entry deleted after its page was
//!    copied may still be returned (its heap tuple is dead to the
//!    caller's snapshot).
//! 2. (N2) Forward: entries that a concurrent split moves right of the page
//!    just read were already returned; the scan continues at the right
//!    link noted before that split, so it returns each entry present when
//!    its page was read exactly once. Entries inserted meanwhile may or
//!    may not be seen: they belong to transactions the caller's snapshot
//!    cannot see anyway (or to its own later commands).
//! 3. (N3) Backward: the left neighbour of the page P just read is found
//!    by starting at P's noted left link and moving right until a page
//!    whose right link is P (it may have split after P was read); pages
//!    are never deleted, so that page exists. Splits only move entries to
//!    the right, so nothing already returned is met again.

use std::ops::Bound;
use std::sync::Arc;

use pgerror::PgError;

use super::compare::{binsrch, compare_values, SearchKey};
use super::page::{corrupt, page_item, P_NONE};
use super::search::{get_endpoint, lock_shared, opaque, search, Access, Locked};
use super::tuple::IndexTuple;
use super::BtreeIndex;
use crate::heap::datum::Datum;
use crate::heap::tuple::ItemPointer;
use crate::heap::HeapContext;
use crate::page::{OffsetNumber, Page};
use crate::types::{BlockNumber, BLCKSZ};

/// Which way a scan goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanDirection {
    Forward,
    Backward,
}

/// A key range on a prefix of the index columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanRange {
    pub lower: Bound<Vec<Option<Datum>>>,
    pub upper: Bound<Vec<Option<Datum>>>,
}

impl ScanRange {
    /// Every entry.
    pub fn all() -> ScanRange {
        ScanRange {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        }
    }

    /// Entries whose key starts with `prefix` (`=` on those columns).
    pub fn equal(prefix: Vec<Option<Datum>>) -> ScanRange {
        ScanRange {
            lower: Bound::Included(prefix.clone()),
            upper: Bound::Included(prefix),
        }
    }
}

/// One entry a scan returns.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    pub tid: ItemPointer,
    pub key: Vec<Option<Datum>>,
    /// Where the entry was when the scan copied it (for
    /// [`super::bt_kill_items`]; it may have moved since).
    pub blk: BlockNumber,
    pub off: OffsetNumber,
}

enum State {
    NotStarted,
    /// The last page read and the sibling to read next (P_NONE: none).
    At {
        blk: BlockNumber,
        sibling: BlockNumber,
    },
    Done,
}

/// An index scan in progress; see the module header.
pub struct BtScan {
    /// Shared so that a scan can outlive the caller's borrow (an executor
    /// node keeps its scan between rows).
    index: Arc<BtreeIndex>,
    range: ScanRange,
    direction: ScanDirection,
    state: State,
    /// The current page's entries in scan order, consumed from the back.
    pending: Vec<IndexEntry>,
}

/// All entries of `range` in `direction`, collected.
pub fn bt_scan_all(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    range: ScanRange,
    direction: ScanDirection,
) -> Result<Vec<IndexEntry>, PgError> {
    let mut scan = BtScan::new(index.clone(), range, direction)?;
    let mut out = Vec::new();
    while let Some(e) = scan.next(ctx)? {
        out.push(e);
    }
    Ok(out)
}

/// The heap TIDs of the entries whose key starts with `prefix` (an
/// equality search on those columns; `None` matches NULL), in index order.
pub fn bt_search(
    ctx: &mut HeapContext<'_, '_>,
    index: &BtreeIndex,
    prefix: &[Option<Datum>],
) -> Result<Vec<ItemPointer>, PgError> {
    let range = ScanRange::equal(prefix.to_vec());
    Ok(bt_scan_all(ctx, index, range, ScanDirection::Forward)?
        .into_iter()
        .map(|e| e.tid)
        .collect())
}

fn bound_values(b: &Bound<Vec<Option<Datum>>>) -> Option<&[Option<Datum>]> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

impl BtScan {
    /// A scan of `range` (checked against the index's columns); nothing is
    /// read until the first [`BtScan::next`].
    pub fn new(
        index: impl Into<Arc<BtreeIndex>>,
        range: ScanRange,
        direction: ScanDirection,
    ) -> Result<BtScan, PgError> {
        let index = index.into();
        for b in [&range.lower, &range.upper] {
            if let Some(v) = bound_values(b) {
                index.check_values(v, true)?;
            }
        }
        Ok(BtScan {
            index,
            range,
            direction,
            state: State::NotStarted,
            pending: Vec::new(),
        })
    }

    /// The index being scanned.
    pub fn index(&self) -> &Arc<BtreeIndex> {
        &self.index
    }

    /// The next entry, or `None` at the end of the range.
    pub fn next(&mut self, ctx: &mut HeapContext<'_, '_>) -> Result<Option<IndexEntry>, PgError> {
        loop {
            if let Some(e) = self.pending.pop() {
                return Ok(Some(e));
            }
            match self.state {
                State::Done => return Ok(None),
                State::NotStarted => self.first(ctx)?,
                State::At { sibling, .. } if sibling == P_NONE => self.state = State::Done,
                State::At { blk, sibling } => match self.direction {
                    ScanDirection::Forward => {
                        let index = Arc::clone(&self.index);
                        let page = lock_shared(ctx, &index, sibling)?;
                        let start = opaque(&index, &page)?.first_data_key();
                        self.read_page(sibling, &page, start)?;
                    }
                    ScanDirection::Backward => self.walk_left(ctx, blk, sibling)?,
                },
            }
        }
    }

    /// Position on the first page and read it (`_bt_first`).
    fn first(&mut self, ctx: &mut HeapContext<'_, '_>) -> Result<(), PgError> {
        let index = Arc::clone(&self.index);
        let index = &*index;
        let forward = self.direction == ScanDirection::Forward;
        let bound = if forward {
            &self.range.lower
        } else {
            &self.range.upper
        };
        let (page, start) = match bound {
            Bound::Unbounded => {
                let Some(page) = get_endpoint(ctx, index, 0, !forward)? else {
                    self.state = State::Done;
                    return Ok(());
                };
                let o = opaque(index, &page)?;
                let start = if forward {
                    o.first_data_key()
                } else {
                    Page::new(&*page).max_offset()
                };
                (Locked::Shared(page), start)
            }
            Bound::Included(v) | Bound::Excluded(v) => {
                let key = SearchKey {
                    values: v,
                    tid: None,
                };
                // Forward from the first entry >= v (> v if excluded);
                // backward from the last entry <= v (< v if excluded).
                let nextkey = matches!(bound, Bound::Excluded(_)) == forward;
                let Some((_, page)) = search(ctx, index, &key, nextkey, Access::Read)? else {
                    self.state = State::Done;
                    return Ok(());
                };
                let off = binsrch(index, &key, &page, nextkey)?;
                let start = if forward {
                    off
                } else {
                    OffsetNumber(off.0 - 1)
                };
                (page, start)
            }
        };
        self.read_page(page.block(), &page, start)
    }

    /// Copy the page's entries in range, from `start` in scan direction,
    /// and note where to go next (N1).
    fn read_page(
        &mut self,
        blk: BlockNumber,
        page: &[u8; BLCKSZ],
        start: OffsetNumber,
    ) -> Result<(), PgError> {
        let index = Arc::clone(&self.index);
        let index = &*index;
        let o = opaque(index, page)?;
        let blk_sibling = if self.direction == ScanDirection::Forward {
            o.next
        } else {
            o.prev
        };
        let p = Page::new(page);
        let (first, max) = (o.first_data_key().0, p.max_offset().0);
        let offsets: Box<dyn Iterator<Item = u16>> = match self.direction {
            ScanDirection::Forward => Box::new(start.0.max(first)..=max),
            ScanDirection::Backward => Box::new((first..=start.0.min(max)).rev()),
        };
        let mut entries = Vec::new();
        let mut stopped = false;
        if !o.ignore() {
            for off in offsets {
                let off = OffsetNumber(off);
                if p.item_id(off).is_some_and(|lp| lp.is_dead()) {
                    continue;
                }
                let t = IndexTuple::parse(page_item(page, off)?)?;
                let key = t.decode(index)?;
                if !self.in_range(&key) {
                    stopped = true;
                    break;
                }
                let tid = t
                    .heap_tid()
                    .ok_or_else(|| corrupt(&index.name, "pivot tuple on a leaf"))?;
                entries.push(IndexEntry { tid, key, blk, off });
            }
        }
        entries.reverse();
        self.pending = entries;
        self.state = if stopped {
            State::Done
        } else {
            State::At {
                blk,
                sibling: blk_sibling,
            }
        };
        Ok(())
    }

    /// Whether `key` is still within the bound the scan goes towards (the
    /// start bound holds by positioning).
    fn in_range(&self, key: &[Option<Datum>]) -> bool {
        use std::cmp::Ordering::*;
        let (bound, past) = match self.direction {
            ScanDirection::Forward => (&self.range.upper, Greater),
            ScanDirection::Backward => (&self.range.lower, Less),
        };
        match bound {
            Bound::Unbounded => true,
            Bound::Included(v) => compare_values(&self.index, key, v) != past,
            Bound::Excluded(v) => compare_values(&self.index, key, v) == past.reverse(),
        }
    }

    /// Read the left neighbour of `blk`, starting the hunt at `left` (N3).
    fn walk_left(
        &mut self,
        ctx: &mut HeapContext<'_, '_>,
        blk: BlockNumber,
        left: BlockNumber,
    ) -> Result<(), PgError> {
        let mut cur = left;
        loop {
            let index = Arc::clone(&self.index);
            let page = lock_shared(ctx, &index, cur)?;
            let o = opaque(&index, &page)?;
            if o.next == blk {
                let max = Page::new(&*page).max_offset();
                return self.read_page(cur, &page, max);
            }
            if o.is_rightmost() || o.next == cur {
                return Err(corrupt(
                    &self.index.name,
                    format!("could not find left sibling of block {}", blk.0),
                ));
            }
            cur = o.next;
        }
    }
}
