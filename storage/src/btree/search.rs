//! Finding pages: locking helpers, the descent from the root to a leaf
//! (PostgreSQL's `_bt_search`), moving right past concurrent splits
//! (`_bt_moveright`), and the leftmost or rightmost page of a level
//! (`_bt_get_endpoint`).
//!
//! # The descent (Lehman and Yao)
//!
//! ```text
//!   metapage (S, copy root and level, release)
//!     └─ root (S) ─ move right while key > high key ─ binary search ─ downlink
//!         └─ child (S; X if it is the leaf of an insert) ─ move right ─ ...
//!             └─ leaf: returned locked, with the stack of parents visited
//! ```
//!
//! A process holds **one** content lock at a time on the way down: it
//! releases the parent before locking the child. A split of the child in
//! between only moved keys to the right, and the child's right link leads
//! there, so moving right while the key is beyond the high key (or equal
//! to it for a `nextkey` search) always finds the right page. The stack
//! records, for each level above the leaf, the page and the offset of the
//! downlink followed: a hint for finding the parent again later.
//!
//! # Rules
//!
//! 1. (S1) No lock coupling on the way down or right: release, then lock
//!    the next page. Pages are never deleted (VACUUM only removes leaf
//!    entries), so a block read from a downlink or right link stays a page
//!    of the same level.
//! 2. (S2) An inserting descent (`Access::Write`) that meets
//!    `BTP_INCOMPLETE_SPLIT` finishes that split before going on
//!    (`insert::finish_split`, with the stack above the page).
//! 3. (S3) The metapage is read under a shared lock held alone, so it is
//!    always the last lock a writer takes (see `insert.rs`).

use std::ops::Deref;

use pgerror::PgError;

use super::compare::{binsrch, compare_high_key, SearchKey};
use super::page::{page_item, BtMeta, BtOpaque, BTREE_METAPAGE, P_NONE};
use super::tuple::IndexTuple;
use super::BtreeIndex;
use crate::buffer::{ExclusiveContentGuard, PinnedBuffer, SharedContentGuard};
use crate::heap::HeapContext;
use crate::page::{OffsetNumber, Page};
use crate::types::{BlockNumber, ForkNumber, BLCKSZ};

/// The lock a search takes on the leaf it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A page locked in either mode.
pub enum Locked<'c> {
    Shared(SharedContentGuard<'c>),
    Exclusive(ExclusiveContentGuard<'c>),
}

impl<'c> Locked<'c> {
    pub fn block(&self) -> BlockNumber {
        match self {
            Locked::Shared(g) => g.block(),
            Locked::Exclusive(g) => g.block(),
        }
    }

    fn access(&self) -> Access {
        match self {
            Locked::Shared(_) => Access::Read,
            Locked::Exclusive(_) => Access::Write,
        }
    }

    /// The exclusive guard, or an internal error if the page is only shared.
    pub fn into_exclusive(self) -> Result<ExclusiveContentGuard<'c>, PgError> {
        match self {
            Locked::Exclusive(g) => Ok(g),
            Locked::Shared(g) => Err(PgError::internal(format!(
                "btree page {} locked shared where an insert needs it exclusive",
                g.block().0
            ))),
        }
    }
}

impl Deref for Locked<'_> {
    type Target = [u8; BLCKSZ];
    fn deref(&self) -> &[u8; BLCKSZ] {
        match self {
            Locked::Shared(g) => g,
            Locked::Exclusive(g) => g,
        }
    }
}

/// A parent visited on the way down: its block and the downlink followed
/// (PostgreSQL's `BTStackData`). The last entry is the nearest parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackEntry {
    pub blkno: BlockNumber,
    pub offset: OffsetNumber,
}

/// Pin block `blk` of the index.
pub fn pin<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
) -> Result<PinnedBuffer<'c>, PgError> {
    let buffers = ctx.buffers;
    Ok(buffers.read_buffer(
        &mut *ctx.smgr,
        ctx.wal,
        index.locator,
        ForkNumber::Main,
        blk,
    )?)
}

pub fn lock_shared<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
) -> Result<SharedContentGuard<'c>, PgError> {
    Ok(pin(ctx, index, blk)?.lock_shared())
}

pub fn lock_exclusive<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
) -> Result<ExclusiveContentGuard<'c>, PgError> {
    Ok(pin(ctx, index, blk)?.lock_exclusive())
}

pub fn lock<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    blk: BlockNumber,
    access: Access,
) -> Result<Locked<'c>, PgError> {
    Ok(match access {
        Access::Read => Locked::Shared(lock_shared(ctx, index, blk)?),
        Access::Write => Locked::Exclusive(lock_exclusive(ctx, index, blk)?),
    })
}

/// The metapage's fields, read under a shared lock held alone (S3).
pub fn read_meta(ctx: &mut HeapContext<'_, '_>, index: &BtreeIndex) -> Result<BtMeta, PgError> {
    let page = lock_shared(ctx, index, BTREE_METAPAGE)?;
    BtMeta::read(&index.name, &page)
}

/// The opaque part of a page of this index; corruption names the index.
pub fn opaque(index: &BtreeIndex, page: &[u8; BLCKSZ]) -> Result<BtOpaque, PgError> {
    let o = BtOpaque::read(page).map_err(|e| super::page::corrupt(&index.name, e.message))?;
    if o.is_meta() {
        return Err(super::page::corrupt(
            &index.name,
            "metapage linked into the tree",
        ));
    }
    Ok(o)
}

/// The downlink of the item at `off` of an internal page.
pub fn downlink_at(page: &[u8; BLCKSZ], off: OffsetNumber) -> Result<BlockNumber, PgError> {
    Ok(IndexTuple::parse(page_item(page, off)?)?.downlink())
}

/// Descend to the leaf where `key` belongs (S1, S2): the first item >= key
/// is on it or, if none is, the first item of its right sibling (> key
/// with `nextkey`). The leaf is locked per `access`, internal pages are
/// only ever locked shared. `None`: the index has no root yet (a write
/// search creates it instead).
pub fn search<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    key: &SearchKey<'_>,
    nextkey: bool,
    access: Access,
) -> Result<Option<(Vec<StackEntry>, Locked<'c>)>, PgError> {
    loop {
        let meta = read_meta(ctx, index)?;
        if meta.root == P_NONE {
            if access == Access::Read {
                return Ok(None);
            }
            super::insert::create_root(ctx, index)?;
            continue;
        }
        let root_access = if meta.level == 0 {
            access
        } else {
            Access::Read
        };
        let mut page = lock(ctx, index, meta.root, root_access)?;
        let mut stack = Vec::new();
        loop {
            page = move_right(ctx, index, page, key, nextkey, access, &stack)?;
            let o = opaque(index, &page)?;
            if o.is_leaf() {
                return Ok(Some((stack, page)));
            }
            let off = binsrch(index, key, &page, nextkey)?;
            let child = downlink_at(&page, off)?;
            stack.push(StackEntry {
                blkno: page.block(),
                offset: off,
            });
            let child_access = if o.level == 1 { access } else { Access::Read };
            drop(page);
            page = lock(ctx, index, child, child_access)?;
        }
    }
}

/// PostgreSQL's `_bt_moveright`: from `page`, follow right links while
/// the key is beyond the high key (or at it, with `nextkey`), and past
/// ignorable pages; an inserting search finishes incomplete splits it
/// meets (S2). Returns the page locked in the mode `page` was.
pub fn move_right<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    mut page: Locked<'c>,
    key: &SearchKey<'_>,
    nextkey: bool,
    access: Access,
    stack: &[StackEntry],
) -> Result<Locked<'c>, PgError> {
    loop {
        let o = opaque(index, &page)?;
        if o.is_rightmost() {
            return Ok(page);
        }
        if access == Access::Write && o.incomplete_split() {
            let (blk, mode) = (page.block(), page.access());
            drop(page);
            let left = lock_exclusive(ctx, index, blk)?;
            if opaque(index, &left)?.incomplete_split() {
                super::insert::finish_split(ctx, index, left, stack.to_vec())?;
            } else {
                drop(left);
            }
            page = lock(ctx, index, blk, mode)?;
            continue;
        }
        let go_right = o.ignore()
            || match compare_high_key(index, key, &page, &o)? {
                Some(std::cmp::Ordering::Greater) => true,
                Some(std::cmp::Ordering::Equal) => nextkey,
                _ => false,
            };
        if !go_right {
            return Ok(page);
        }
        let mode = page.access();
        drop(page);
        page = lock(ctx, index, o.next, mode)?;
    }
}

/// The leftmost (or rightmost) page of `level`, locked shared
/// (`_bt_get_endpoint`); `None` if the tree is not that tall.
pub fn get_endpoint<'c>(
    ctx: &mut HeapContext<'c, '_>,
    index: &BtreeIndex,
    level: u32,
    rightmost: bool,
) -> Result<Option<SharedContentGuard<'c>>, PgError> {
    let meta = read_meta(ctx, index)?;
    if meta.root == P_NONE || meta.level < level {
        return Ok(None);
    }
    let mut page = lock_shared(ctx, index, meta.root)?;
    loop {
        let mut o = opaque(index, &page)?;
        while o.ignore() || (rightmost && !o.is_rightmost()) {
            if o.is_rightmost() {
                return Err(super::page::corrupt(
                    &index.name,
                    format!("fell off the end of level {}", o.level),
                ));
            }
            let next = o.next;
            drop(page);
            page = lock_shared(ctx, index, next)?;
            o = opaque(index, &page)?;
        }
        if o.level == level {
            return Ok(Some(page));
        }
        if o.level < level || o.is_leaf() {
            return Err(super::page::corrupt(
                &index.name,
                format!("no page of level {level} below the root"),
            ));
        }
        let off = if rightmost {
            Page::new(&*page).max_offset()
        } else {
            o.first_data_key()
        };
        let child = downlink_at(&page, off)?;
        drop(page);
        page = lock_shared(ctx, index, child)?;
    }
}
