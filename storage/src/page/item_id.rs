//! Line pointers ([`ItemId`]) and the numbers that address them
//! ([`OffsetNumber`]): PostgreSQL's `itemid.h` and `off.h`.
//!
//! A line pointer is 4 bytes, stored little-endian, packed as PostgreSQL's
//! C bit fields are on a little-endian machine:
//!
//! ```text
//!  bit 31            17 16   15 14              0
//!  +-------------------+-------+-----------------+
//!  | lp_len (15 bits)  | flags | lp_off (15 bits)|
//!  +-------------------+-------+-----------------+
//! ```
//!
//! `lp_off` is the item's byte offset in the page (for a redirect: the
//! offset number it points to), `lp_len` its length (0: no storage).

use super::ITEM_ID_SIZE;
use crate::types::BLCKSZ;

/// A 1-based index into a page's line pointer array (0 is invalid).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OffsetNumber(pub u16);

impl OffsetNumber {
    pub const INVALID: OffsetNumber = OffsetNumber(0);
    pub const FIRST: OffsetNumber = OffsetNumber(1);
    /// More line pointers than this cannot fit on a page.
    pub const MAX: OffsetNumber = OffsetNumber((BLCKSZ / ITEM_ID_SIZE) as u16);

    pub fn is_valid(self) -> bool {
        self.0 != 0 && self <= OffsetNumber::MAX
    }
}

impl std::fmt::Display for OffsetNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The state of a line pointer (`lp_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpFlags {
    /// Free for reuse; never has storage.
    Unused = 0,
    /// Points at a live (or not yet pruned) item.
    Normal = 1,
    /// HOT redirect: `lp_off` holds the offset number of the next item.
    Redirect = 2,
    /// Dead; may or may not still have storage.
    Dead = 3,
}

/// A line pointer, as stored on the page (4 bytes, little-endian).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItemId(pub u32);

impl ItemId {
    pub const UNUSED: ItemId = ItemId(0);

    /// Pack the three fields; `off` and `len` keep their low 15 bits.
    pub fn new(off: u16, flags: LpFlags, len: u16) -> ItemId {
        ItemId((off as u32 & 0x7fff) | (flags as u32) << 15 | (len as u32 & 0x7fff) << 17)
    }

    pub fn normal(off: u16, len: u16) -> ItemId {
        ItemId::new(off, LpFlags::Normal, len)
    }

    /// Dead without storage (PostgreSQL's `ItemIdSetDead`).
    pub fn dead() -> ItemId {
        ItemId::new(0, LpFlags::Dead, 0)
    }

    pub fn redirect(target: OffsetNumber) -> ItemId {
        ItemId::new(target.0, LpFlags::Redirect, 0)
    }

    /// Byte offset of the item from the start of the page.
    pub fn offset(self) -> u16 {
        (self.0 & 0x7fff) as u16
    }

    /// Length of the item in bytes (0: no storage).
    pub fn length(self) -> u16 {
        (self.0 >> 17) as u16
    }

    pub fn flags(self) -> LpFlags {
        match (self.0 >> 15) & 3 {
            0 => LpFlags::Unused,
            1 => LpFlags::Normal,
            2 => LpFlags::Redirect,
            _ => LpFlags::Dead,
        }
    }

    pub fn is_used(self) -> bool {
        self.flags() != LpFlags::Unused
    }

    pub fn is_normal(self) -> bool {
        self.flags() == LpFlags::Normal
    }

    pub fn is_redirect(self) -> bool {
        self.flags() == LpFlags::Redirect
    }

    pub fn is_dead(self) -> bool {
        self.flags() == LpFlags::Dead
    }

    pub fn has_storage(self) -> bool {
        self.length() != 0
    }

    /// Where a redirect points.
    pub fn redirect_target(self) -> OffsetNumber {
        OffsetNumber(self.offset())
    }
}
