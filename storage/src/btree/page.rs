//! B-tree pages: the special area every index page carries, the metapage
//! (block 0), and the item helpers the rest of the access method uses
//! (PostgreSQL's `nbtree.h` page macros and parts of `nbtpage.c`).
//!
//! A btree page is a slotted page ([`crate::page`]) whose special space is
//! [`BtOpaque`], 16 bytes, PostgreSQL's `BTPageOpaqueData`:
//!
//! ```text
//!   pd_special                                                 BLCKSZ
//!   +-----------+-----------+-------------+-----------+-------------+
//!   | btpo_prev | btpo_next | btpo_level  | btpo_flags| btpo_cycleid|
//!   |   u32     |   u32     |    u32      |   u16     |    u16      |
//!   +-----------+-----------+-------------+-----------+-------------+
//! ```
//!
//! `prev`/`next` are the left and right siblings on the same level
//! ([`P_NONE`] = none: block 0 is the metapage, never a sibling), `level`
//! counts from 0 at the leaves. Line pointer 1 ([`P_HIKEY`]) holds the
//! **high key** on every page except the rightmost of its level: an upper
//! bound (inclusive) for the keys on the page. Data items start at
//! [`first_data_key`]: 2, or 1 on a rightmost page. On an internal page the
//! first data item is "minus infinity": its key is never compared (it has
//! no key attributes at all), only its downlink is used.
//!
//! ```text
//!   leaf page, not rightmost            internal page, rightmost
//!   lp1  high key (pivot)               lp1  -inf        -> child a
//!   lp2  (k1, tid)                      lp2  (k5)        -> child b
//!   lp3  (k2, tid)                      lp3  (k9, tid)   -> child c
//!   ...  in key order                   ...
//! ```
//!
//! The **metapage** (block 0) has no items; its special space is the
//! opaque part with [`BTP_META`] followed by [`BtMeta`]'s fields:
//!
//! ```text
//!   +16 u32 magic 0x053162 | u32 version 4 | u32 root | u32 level
//!   +32 u32 fastroot | u32 fastlevel | u32 last_cleanup_num_delpages | u32 0
//!   +48 f64 last_cleanup_num_heap_tuples (-1) | u8 allequalimage (0) | pad to 64
//! ```
//!
//! (PostgreSQL keeps the metadata in the page body behind `pd_lower`; the
//! slotted-page API here keeps `pd_lower` on a line-pointer boundary, so
//! the fields sit in a larger special area instead. A full-page image of
//! the metapage is then almost all hole.) `root` is [`P_NONE`] until the
//! first insert creates a root leaf. There is no page deletion yet, so the
//! fast root always equals the root.
//!
//! # Flags
//!
//! `BTP_LEAF` (level 0), `BTP_ROOT` (the page the metapage points at),
//! `BTP_META`, and `BTP_INCOMPLETE_SPLIT`: set on the left half of a split
//! until the downlink to the right half is in the parent (or a new root is
//! made); whoever finds it set while inserting finishes the split first.
//! `BTP_DELETED`, `BTP_HALF_DEAD`, `BTP_SPLIT_END`, `BTP_HAS_GARBAGE` and
//! the cycle id are reserved for VACUUM (page deletion, LP_DEAD cleanup)
//! and are never set today; readers already skip deleted and half-dead
//! pages as PostgreSQL's `P_IGNORE` does.
//!
//! # Invariants
//!
//! 1. Every index page except block 0 has a special space of exactly
//!    [`BT_OPAQUE_BYTES`]; block 0 has [`META_SPECIAL_BYTES`] and `BTP_META`.
//!    [`BtOpaque::read`] checks the size and reports corruption otherwise.
//! 2. A page's level never changes; siblings have the same level.
//! 3. `prev`/`next` form a doubly linked list per level, leftmost `prev` and
//!    rightmost `next` being [`P_NONE`].
//!
//! # Locking
//!
//! None here: callers hold the content lock (shared to read, exclusive to
//! change) as `crate::btree` states.

use pgerror::{PgError, SqlState};

use crate::page::{maxalign, OffsetNumber, Page};
use crate::types::{BlockNumber, BLCKSZ};

/// The metapage's block.
pub const BTREE_METAPAGE: BlockNumber = BlockNumber(0);
/// "No page": a missing sibling, or no root yet.
pub const P_NONE: BlockNumber = BlockNumber(0);
/// Where the high key lives on a page that has one.
pub const P_HIKEY: OffsetNumber = OffsetNumber(1);

/// Bytes of [`BtOpaque`] (PostgreSQL's `sizeof(BTPageOpaqueData)`).
pub const BT_OPAQUE_BYTES: usize = 16;
/// Bytes of the metapage's special space: the opaque part and the metadata.
pub const META_SPECIAL_BYTES: usize = 64;

pub const BTREE_MAGIC: u32 = 0x053162;
/// PostgreSQL 12+'s "heapkeyspace" btrees: the heap TID is part of the key.
pub const BTREE_VERSION: u32 = 4;

pub const BTP_LEAF: u16 = 1 << 0;
pub const BTP_ROOT: u16 = 1 << 1;
pub const BTP_DELETED: u16 = 1 << 2;
pub const BTP_META: u16 = 1 << 3;
pub const BTP_HALF_DEAD: u16 = 1 << 4;
pub const BTP_SPLIT_END: u16 = 1 << 5;
pub const BTP_HAS_GARBAGE: u16 = 1 << 6;
pub const BTP_INCOMPLETE_SPLIT: u16 = 1 << 7;
pub const BTP_HAS_FULLXID: u16 = 1 << 8;

/// Usable bytes of a btree page for items and their line pointers.
pub const PAGE_CAPACITY_BYTES: usize =
    BLCKSZ - crate::page::SIZE_OF_PAGE_HEADER - maxalign(BT_OPAQUE_BYTES);

/// A page that is not a valid btree page of this index: `XX001`.
pub fn corrupt(index_name: &str, what: impl std::fmt::Display) -> PgError {
    PgError::new(
        SqlState::DATA_CORRUPTED,
        format!("index \"{index_name}\" contains a corrupted page: {what}"),
    )
}

/// PostgreSQL's `BTPageOpaqueData`, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtOpaque {
    pub prev: BlockNumber,
    pub next: BlockNumber,
    pub level: u32,
    pub flags: u16,
    pub cycle_id: u16,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl BtOpaque {
    /// A page of `level` with no siblings and the leaf flag as the level says.
    pub fn new(level: u32) -> BtOpaque {
        BtOpaque {
            prev: P_NONE,
            next: P_NONE,
            level,
            flags: if level == 0 { BTP_LEAF } else { 0 },
            cycle_id: 0,
        }
    }

    /// The special space of `page`, which must be a btree page (invariant 1).
    pub fn read(page: &[u8; BLCKSZ]) -> Result<BtOpaque, PgError> {
        let p = Page::new(page);
        let special = p.special().map_err(PgError::from)?;
        if special.len() != BT_OPAQUE_BYTES && special.len() != META_SPECIAL_BYTES {
            return Err(PgError::new(
                SqlState::DATA_CORRUPTED,
                format!(
                    "btree page has a special space of {} bytes (page not initialized?)",
                    special.len()
                ),
            ));
        }
        Ok(BtOpaque {
            prev: BlockNumber(le_u32(special, 0)),
            next: BlockNumber(le_u32(special, 4)),
            level: le_u32(special, 8),
            flags: le_u16(special, 12),
            cycle_id: le_u16(special, 14),
        })
    }

    /// Store into the special space of an initialised btree page.
    pub fn write(&self, page: &mut [u8; BLCKSZ]) -> Result<(), PgError> {
        let mut p = Page::new(page);
        let special = p.special_mut().map_err(PgError::from)?;
        if special.len() < BT_OPAQUE_BYTES {
            return Err(PgError::internal(
                "btree opaque written to a non-btree page",
            ));
        }
        special[0..4].copy_from_slice(&self.prev.0.to_le_bytes());
        special[4..8].copy_from_slice(&self.next.0.to_le_bytes());
        special[8..12].copy_from_slice(&self.level.to_le_bytes());
        special[12..14].copy_from_slice(&self.flags.to_le_bytes());
        special[14..16].copy_from_slice(&self.cycle_id.to_le_bytes());
        Ok(())
    }

    pub fn is_leaf(&self) -> bool {
        self.flags & BTP_LEAF != 0
    }
    pub fn is_root(&self) -> bool {
        self.flags & BTP_ROOT != 0
    }
    pub fn is_meta(&self) -> bool {
        self.flags & BTP_META != 0
    }
    pub fn is_rightmost(&self) -> bool {
        self.next == P_NONE
    }
    pub fn is_leftmost(&self) -> bool {
        self.prev == P_NONE
    }
    pub fn incomplete_split(&self) -> bool {
        self.flags & BTP_INCOMPLETE_SPLIT != 0
    }
    /// Deleted or half-dead: skipped by every reader (`P_IGNORE`).
    pub fn ignore(&self) -> bool {
        self.flags & (BTP_DELETED | BTP_HALF_DEAD) != 0
    }

    /// The first line pointer holding a data item (`P_FIRSTDATAKEY`).
    pub fn first_data_key(&self) -> OffsetNumber {
        if self.is_rightmost() {
            P_HIKEY
        } else {
            OffsetNumber(P_HIKEY.0 + 1)
        }
    }
}

/// Format `page` as an empty btree page with `opaque`.
pub fn init_page(page: &mut [u8; BLCKSZ], opaque: &BtOpaque) {
    Page::new(&mut *page).init(BT_OPAQUE_BYTES);
    opaque
        .write(page)
        .expect("a freshly initialised page has the btree special space");
}

/// The metapage's contents (`BTMetaPageData`, the fields in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtMeta {
    pub root: BlockNumber,
    pub level: u32,
    pub fastroot: BlockNumber,
    pub fastlevel: u32,
}

impl BtMeta {
    /// An index without a root yet.
    pub const EMPTY: BtMeta = BtMeta {
        root: P_NONE,
        level: 0,
        fastroot: P_NONE,
        fastlevel: 0,
    };

    /// Decode and check block 0 of index `index_name`.
    pub fn read(index_name: &str, page: &[u8; BLCKSZ]) -> Result<BtMeta, PgError> {
        let opaque = BtOpaque::read(page)?;
        let p = Page::new(page);
        let special = p.special().map_err(PgError::from)?;
        if !opaque.is_meta() || special.len() != META_SPECIAL_BYTES {
            return Err(PgError::new(
                SqlState::DATA_CORRUPTED,
                format!("index \"{index_name}\" is not a btree"),
            ));
        }
        let (magic, version) = (le_u32(special, 16), le_u32(special, 20));
        if magic != BTREE_MAGIC {
            return Err(PgError::new(
                SqlState::DATA_CORRUPTED,
                format!("index \"{index_name}\" is not a btree"),
            ));
        }
        if version != BTREE_VERSION {
            return Err(PgError::new(
                SqlState::DATA_CORRUPTED,
                format!(
                    "version mismatch in index \"{index_name}\": file version {version}, \
                     current version {BTREE_VERSION}, minimal supported version {BTREE_VERSION}"
                ),
            ));
        }
        Ok(BtMeta {
            root: BlockNumber(le_u32(special, 24)),
            level: le_u32(special, 28),
            fastroot: BlockNumber(le_u32(special, 32)),
            fastlevel: le_u32(special, 36),
        })
    }

    /// (Re)write the whole metapage from these fields (PostgreSQL's
    /// `_bt_initmetapage`; redo rebuilds it the same way).
    pub fn write_page(&self, page: &mut [u8; BLCKSZ]) {
        Page::new(&mut *page).init(META_SPECIAL_BYTES);
        let mut opaque = BtOpaque::new(0);
        opaque.flags = BTP_META;
        opaque
            .write(page)
            .expect("a freshly initialised metapage has its special space");
        let mut p = Page::new(page);
        let special = p
            .special_mut()
            .expect("a freshly initialised metapage has its special space");
        let fields = [
            BTREE_MAGIC,
            BTREE_VERSION,
            self.root.0,
            self.level,
            self.fastroot.0,
            self.fastlevel,
            0, // last_cleanup_num_delpages
            0,
        ];
        for (i, v) in fields.iter().enumerate() {
            special[16 + 4 * i..20 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        special[48..56].copy_from_slice(&(-1.0f64).to_le_bytes());
        special[56] = 0; // allequalimage: no deduplication
    }
}

/// The bytes of the item at `off`, which must exist (an index page has no
/// unused or storage-less line pointers).
pub fn page_item(page: &[u8; BLCKSZ], off: OffsetNumber) -> Result<&[u8], PgError> {
    let p = Page::new(page);
    let missing = || {
        PgError::new(
            SqlState::DATA_CORRUPTED,
            format!("btree page has no item at offset {off}"),
        )
    };
    // get_item checks the line pointer against the page bounds.
    p.get_item(off)
        .map_err(PgError::from)?
        .ok_or_else(missing)?;
    let lp = p.item_id(off).ok_or_else(missing)?;
    let start = usize::from(lp.offset());
    Ok(&page[start..start + usize::from(lp.length())])
}

/// Every item of the page from `from` on, in offset order.
pub fn page_items(page: &[u8; BLCKSZ], from: OffsetNumber) -> Result<Vec<&[u8]>, PgError> {
    let max = Page::new(page).max_offset();
    (from.0..=max.0)
        .map(|o| page_item(page, OffsetNumber(o)))
        .collect()
}

/// Room for one more item of `len` bytes (MAXALIGN'ed, line pointer
/// included), as `_bt_insertonpg` checks with `PageGetFreeSpace`.
pub fn has_room_for(page: &[u8; BLCKSZ], len: usize) -> bool {
    Page::new(page).free_space() >= maxalign(len)
}

/// Bytes an item takes on a page: its MAXALIGN'ed length and line pointer.
pub fn item_footprint(len: usize) -> usize {
    maxalign(len) + crate::page::ITEM_ID_SIZE
}

/// Put `items` on an empty page in order, from offset 1 on. Used by splits,
/// new roots, the bulk build and their redo, so that a page rebuilt by redo
/// has the same bytes as the one logged.
pub fn put_items(page: &mut [u8; BLCKSZ], items: &[&[u8]]) -> Result<(), PgError> {
    let mut p = Page::new(page);
    for (i, item) in items.iter().enumerate() {
        let off = OffsetNumber(i as u16 + 1);
        match p.add_item(item, Some(off), false).map_err(PgError::from)? {
            Some(got) if got == off => {}
            _ => {
                return Err(PgError::internal(format!(
                    "btree page overflow while adding item {off} of {}",
                    items.len()
                )))
            }
        }
    }
    Ok(())
}

/// Insert `item` at `off`, shifting later line pointers up (leaf and
/// upper-level inserts, and their redo).
pub fn insert_item(page: &mut [u8; BLCKSZ], off: OffsetNumber, item: &[u8]) -> Result<(), PgError> {
    match Page::new(page)
        .add_item(item, Some(off), false)
        .map_err(PgError::from)?
    {
        Some(got) if got == off => Ok(()),
        _ => Err(PgError::internal(format!(
            "failed to add index item at offset {off}"
        ))),
    }
}

/// Set or clear `flag` in the page's opaque part.
pub fn set_page_flag(page: &mut [u8; BLCKSZ], flag: u16, on: bool) -> Result<(), PgError> {
    let mut o = BtOpaque::read(page)?;
    if on {
        o.flags |= flag;
    } else {
        o.flags &= !flag;
    }
    o.write(page)
}
