//! Values that cross a process or disk boundary, as newtypes.
//!
//! PostgreSQL's vocabulary: an [`Lsn`] is a byte position in the WAL, an
//! [`Xid`] a transaction id (64-bit here: no wraparound, no freezing), an
//! [`Oid`] a catalog object id, a [`RelFileLocator`] names a relation's
//! files, a [`BlockNumber`] a page within one fork of a relation.

use std::fmt;

/// Size of every data page and WAL page.
pub const BLCKSZ: usize = 8192;
/// Data files are split into segments of this many blocks (1 GB).
pub const RELSEG_SIZE_BLOCKS: u32 = (1024 * 1024 * 1024 / BLCKSZ) as u32;
/// WAL segment file size (16 MB).
pub const WAL_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// A WAL position (byte offset since the start of the WAL stream).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    pub const INVALID: Lsn = Lsn(0);

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// The WAL segment number this position falls in.
    pub fn segment(self) -> u64 {
        self.0 / WAL_SEGMENT_BYTES
    }

    /// Offset within that segment.
    pub fn segment_offset(self) -> u64 {
        self.0 % WAL_SEGMENT_BYTES
    }
}

impl fmt::Display for Lsn {
    /// PostgreSQL's `%X/%X` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A transaction id. 0 is invalid, 1 bootstrap, 2 frozen (kept for
/// PostgreSQL's meaning; with 64 bits nothing is ever frozen), normal ids
/// start at 3.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xid(pub u64);

impl Xid {
    pub const INVALID: Xid = Xid(0);
    pub const BOOTSTRAP: Xid = Xid(1);
    pub const FROZEN: Xid = Xid(2);
    pub const FIRST_NORMAL: Xid = Xid(3);

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }

    pub fn is_normal(self) -> bool {
        self.0 >= Xid::FIRST_NORMAL.0
    }
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A catalog object id.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub u32);

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A page number within one fork of a relation.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockNumber(pub u32);

impl BlockNumber {
    pub const INVALID: BlockNumber = BlockNumber(u32::MAX);
}

/// Which file of a relation: the main data, the free space map, the
/// visibility map, or the init fork of an unlogged relation.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForkNumber {
    Main = 0,
    Fsm = 1,
    VisibilityMap = 2,
    Init = 3,
}

impl ForkNumber {
    /// The file-name suffix PostgreSQL uses (`""`, `_fsm`, `_vm`, `_init`).
    pub fn suffix(self) -> &'static str {
        match self {
            ForkNumber::Main => "",
            ForkNumber::Fsm => "_fsm",
            ForkNumber::VisibilityMap => "_vm",
            ForkNumber::Init => "_init",
        }
    }

    pub fn from_u8(v: u8) -> Option<ForkNumber> {
        match v {
            0 => Some(ForkNumber::Main),
            1 => Some(ForkNumber::Fsm),
            2 => Some(ForkNumber::VisibilityMap),
            3 => Some(ForkNumber::Init),
            _ => None,
        }
    }
}

/// The files of one relation: tablespace, database and relfilenode
/// (PostgreSQL's RelFileLocator). Shared catalogs have `db_oid` 0 and live
/// in `global/`; everything else in `base/<db_oid>/`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RelFileLocator {
    pub spc_oid: Oid,
    pub db_oid: Oid,
    pub rel_number: Oid,
}

/// The default tablespace's OID (`base/`), and the global one (`global/`).
pub const DEFAULTTABLESPACE_OID: Oid = Oid(1663);
pub const GLOBALTABLESPACE_OID: Oid = Oid(1664);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_prints_like_postgres() {
        assert_eq!(Lsn(0x1_0000_0028).to_string(), "1/28");
        assert_eq!(Lsn(0x0169_8A60).to_string(), "0/1698A60");
        assert_eq!(Lsn(3 * WAL_SEGMENT_BYTES + 5).segment(), 3);
        assert_eq!(Lsn(3 * WAL_SEGMENT_BYTES + 5).segment_offset(), 5);
    }

    #[test]
    fn segments_hold_one_gigabyte() {
        assert_eq!(RELSEG_SIZE_BLOCKS, 131_072);
    }
}
