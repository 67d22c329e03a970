//! Page math: where a transaction's two status bits live, and reading and
//! writing them in a page held as a plain byte array.
//!
//! ```text
//!   xid ──► page   = xid / 32768          (CLOG_XACTS_PER_PAGE)
//!           byte   = (xid % 32768) / 4    (CLOG_XACTS_PER_BYTE)
//!           shift  = (xid % 4) * 2        (CLOG_BITS_PER_XACT)
//!           group  = (xid % 32768) / 32   (CLOG_XACTS_PER_LSN_GROUP)
//!
//!   one byte:  bit 7 6 │ 5 4 │ 3 2 │ 1 0
//!              xid 4k+3│4k+2 │4k+1 │ 4k
//! ```
//!
//! This is PostgreSQL's on-disk layout (`clog.c`), unchanged except that the
//! page number is 64-bit because xids are. Pure functions only: no I/O, no
//! shared memory, usable from any process.

use crate::types::{Xid, BLCKSZ};
use std::fmt;

/// Bits of status per transaction.
pub const CLOG_BITS_PER_XACT: u32 = 2;
/// Transactions per byte of a page.
pub const CLOG_XACTS_PER_BYTE: u64 = 4;
/// Transactions per 8 KB page: 32768.
pub const CLOG_XACTS_PER_PAGE: u64 = BLCKSZ as u64 * CLOG_XACTS_PER_BYTE;
/// Pages per segment file (PostgreSQL's `SLRU_PAGES_PER_SEGMENT`).
pub const SLRU_PAGES_PER_SEGMENT: u64 = 32;
/// Transactions per segment file: 1048576.
pub const CLOG_XACTS_PER_SEGMENT: u64 = CLOG_XACTS_PER_PAGE * SLRU_PAGES_PER_SEGMENT;
/// Transactions sharing one remembered commit LSN in the buffer pool
/// (PostgreSQL's `CLOG_XACTS_PER_LSN_GROUP`).
pub const CLOG_XACTS_PER_LSN_GROUP: u64 = 32;
/// LSN groups per page: 1024.
pub const CLOG_LSN_GROUPS_PER_PAGE: usize =
    (CLOG_XACTS_PER_PAGE / CLOG_XACTS_PER_LSN_GROUP) as usize;

const STATUS_MASK: u8 = (1 << CLOG_BITS_PER_XACT) - 1;

/// One commit log page as bytes.
pub type PageBytes = [u8; BLCKSZ];

/// A transaction's status as recorded in `pg_xact` (PostgreSQL's
/// `XidStatus`). The discriminants are the on-disk bit patterns.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XidStatus {
    /// Never recorded: running, or ended by a crash before it could commit
    /// or abort. All-zero pages say this for every xid.
    InProgress = 0,
    Committed = 1,
    Aborted = 2,
    /// A subtransaction whose parent's commit is being recorded on another
    /// page; readers must look at the parent (PostgreSQL's two-phase update of
    /// a transaction tree that spans pages).
    SubCommitted = 3,
}

impl XidStatus {
    /// The status stored in the low two bits of `bits`. Every pattern is a
    /// status, so this cannot fail on bytes read from disk.
    pub fn from_bits(bits: u8) -> XidStatus {
        match bits & STATUS_MASK {
            0 => XidStatus::InProgress,
            1 => XidStatus::Committed,
            2 => XidStatus::Aborted,
            _ => XidStatus::SubCommitted,
        }
    }

    pub fn bits(self) -> u8 {
        self as u8
    }

    /// Whether a slot holding `self` may be overwritten with `new`:
    /// a status is set once, except that a sub-committed xid later becomes
    /// committed or aborted, and replay may set the same status again.
    pub fn may_become(self, new: XidStatus) -> bool {
        self == XidStatus::InProgress
            || self == new
            || (self == XidStatus::SubCommitted && new != XidStatus::InProgress)
    }
}

/// A page number in `pg_xact`: page `n` holds xids `n * 32768 ..`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClogPageNo(pub u64);

impl ClogPageNo {
    /// The page holding `xid`'s status.
    pub fn of(xid: Xid) -> ClogPageNo {
        ClogPageNo(xid.0 / CLOG_XACTS_PER_PAGE)
    }

    /// The first xid whose status lives on this page.
    pub fn first_xid(self) -> Xid {
        Xid(self.0 * CLOG_XACTS_PER_PAGE)
    }

    /// The segment file holding this page.
    pub fn segment(self) -> SegmentNo {
        SegmentNo(self.0 / SLRU_PAGES_PER_SEGMENT)
    }

    /// Byte offset of this page within its segment file.
    pub fn offset_in_segment_bytes(self) -> u64 {
        (self.0 % SLRU_PAGES_PER_SEGMENT) * BLCKSZ as u64
    }
}

impl fmt::Display for ClogPageNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A segment file number in `pg_xact`: segment `n` holds pages
/// `n * 32 .. n * 32 + 31`. Its file name is [`SegmentNo::file_name`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentNo(pub u64);

/// Longest segment file name: 2^64 xids make 2^44 segments, 11 hex digits.
const MAX_SEGMENT_NAME_DIGITS: usize = 11;

impl SegmentNo {
    pub fn first_page(self) -> ClogPageNo {
        ClogPageNo(self.0 * SLRU_PAGES_PER_SEGMENT)
    }

    /// The file name: upper-case hex, at least four digits, widening as
    /// needed (`0000`, `0FFF`, `FFFF`, `10000`, ...). This is PostgreSQL 15's
    /// `%04X`, so every segment a 32-bit xid can reach (up to `0FFF`) has
    /// exactly PostgreSQL's name, and PostgreSQL 15's directory scan already
    /// accepts the wider names. We did not take PostgreSQL 17's fixed
    /// 15-digit "long segment names": they would rename every existing file.
    pub fn file_name(self) -> String {
        format!("{:04X}", self.0)
    }

    /// The segment a file name stands for, if it is one [`file_name`]
    /// produces (upper-case hex, 4 to 11 digits, no extra leading zeros).
    ///
    /// [`file_name`]: SegmentNo::file_name
    pub fn parse_file_name(name: &str) -> Option<SegmentNo> {
        let hex_digits = name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'));
        if !hex_digits || !(4..=MAX_SEGMENT_NAME_DIGITS).contains(&name.len()) {
            return None;
        }
        let seg = SegmentNo(u64::from_str_radix(name, 16).ok()?);
        (seg.file_name() == name).then_some(seg)
    }
}

impl fmt::Display for SegmentNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// Where one xid's status lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XidPosition {
    pub page: ClogPageNo,
    /// Byte within the page.
    pub byte: usize,
    /// Left shift of the two status bits within that byte (0, 2, 4 or 6).
    pub shift: u32,
    /// Index of the LSN group within the page.
    pub lsn_group: usize,
}

impl XidPosition {
    pub fn of(xid: Xid) -> XidPosition {
        let in_page = xid.0 % CLOG_XACTS_PER_PAGE;
        XidPosition {
            page: ClogPageNo::of(xid),
            byte: (in_page / CLOG_XACTS_PER_BYTE) as usize,
            shift: (in_page % CLOG_XACTS_PER_BYTE) as u32 * CLOG_BITS_PER_XACT,
            lsn_group: (in_page / CLOG_XACTS_PER_LSN_GROUP) as usize,
        }
    }

    /// The status these bits hold in `byte`.
    pub fn status_in(self, byte: u8) -> XidStatus {
        XidStatus::from_bits(byte >> self.shift)
    }

    /// `byte` with this xid's bits replaced by `status`, the others kept.
    pub fn with_status(self, byte: u8, status: XidStatus) -> u8 {
        (byte & !(STATUS_MASK << self.shift)) | (status.bits() << self.shift)
    }

    /// `byte` with this xid's bits and those of the later xids sharing the
    /// byte cleared, the earlier ones kept.
    pub fn clear_from(self, byte: u8) -> u8 {
        byte & ((1u8 << self.shift) - 1)
    }
}

/// `xid`'s status in `page`, which must be page [`ClogPageNo::of`]`(xid)`.
pub fn get_status(page: &PageBytes, xid: Xid) -> XidStatus {
    let pos = XidPosition::of(xid);
    pos.status_in(page[pos.byte])
}

/// Record `status` for `xid` in `page`, which must be page
/// [`ClogPageNo::of`]`(xid)`. The other xids' bits are untouched.
pub fn set_status(page: &mut PageBytes, xid: Xid, status: XidStatus) {
    let pos = XidPosition::of(xid);
    page[pos.byte] = pos.with_status(page[pos.byte], status);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_postgres() {
        assert_eq!(CLOG_XACTS_PER_PAGE, 32768);
        assert_eq!(CLOG_XACTS_PER_SEGMENT, 1_048_576);
        assert_eq!(CLOG_LSN_GROUPS_PER_PAGE, 1024);
    }

    #[test]
    fn positions_of_xids() {
        let at = |xid| {
            let p = XidPosition::of(Xid(xid));
            (p.page.0, p.byte, p.shift, p.lsn_group)
        };
        assert_eq!(at(0), (0, 0, 0, 0));
        assert_eq!(at(3), (0, 0, 6, 0));
        assert_eq!(at(4), (0, 1, 0, 0));
        assert_eq!(at(33), (0, 8, 2, 1));
        assert_eq!(at(32767), (0, 8191, 6, 1023));
        assert_eq!(at(32768), (1, 0, 0, 0));
        assert_eq!(at(5 * 32768 + 1234), (5, 308, 4, 38));
        // Beyond 32 bits: the page number keeps growing, nothing wraps.
        assert_eq!(at(1 << 40), (1 << 25, 0, 0, 0));
    }

    #[test]
    fn pages_and_segments() {
        assert_eq!(ClogPageNo::of(Xid(1_048_575)).segment(), SegmentNo(0));
        assert_eq!(ClogPageNo::of(Xid(1_048_576)).segment(), SegmentNo(1));
        assert_eq!(ClogPageNo(33).offset_in_segment_bytes(), 8192);
        assert_eq!(ClogPageNo(2).first_xid(), Xid(65536));
        assert_eq!(SegmentNo(3).first_page(), ClogPageNo(96));
    }

    #[test]
    fn segment_file_names_widen_past_four_digits() {
        assert_eq!(SegmentNo(0).file_name(), "0000");
        assert_eq!(SegmentNo(0xFFF).file_name(), "0FFF");
        assert_eq!(SegmentNo(0xFFFF).file_name(), "FFFF");
        assert_eq!(SegmentNo(0x10000).file_name(), "10000");
        let last = ClogPageNo::of(Xid(u64::MAX)).segment();
        assert_eq!(last.file_name(), "FFFFFFFFFFF");
        for seg in [0, 0xABC, 0xFFFF, 0x10000, last.0] {
            assert_eq!(
                SegmentNo::parse_file_name(&SegmentNo(seg).file_name()),
                Some(SegmentNo(seg))
            );
        }
    }

    #[test]
    fn only_canonical_names_are_segments() {
        for name in [
            "000",
            "0000A",
            "00001",
            "abcd",
            "+123",
            "12 4",
            "0000.tmp",
            "FFFFFFFFFFFF",
        ] {
            assert_eq!(SegmentNo::parse_file_name(name), None, "{name}");
        }
    }

    #[test]
    fn set_and_get_leave_neighbours_alone() {
        let mut page = [0u8; BLCKSZ];
        set_status(&mut page, Xid(32768 + 5), XidStatus::Committed);
        set_status(&mut page, Xid(32768 + 6), XidStatus::Aborted);
        set_status(&mut page, Xid(32768 + 7), XidStatus::SubCommitted);
        assert_eq!(page[1], 0b11_10_01_00);
        assert_eq!(get_status(&page, Xid(32768 + 4)), XidStatus::InProgress);
        assert_eq!(get_status(&page, Xid(32768 + 5)), XidStatus::Committed);
        assert_eq!(get_status(&page, Xid(32768 + 6)), XidStatus::Aborted);
        assert_eq!(get_status(&page, Xid(32768 + 7)), XidStatus::SubCommitted);
        set_status(&mut page, Xid(32768 + 7), XidStatus::Committed);
        assert_eq!(page[1], 0b01_10_01_00);
        assert!(page.iter().enumerate().all(|(i, b)| i == 1 || *b == 0));
    }

    #[test]
    fn clear_from_keeps_earlier_xids_of_the_byte() {
        let pos = XidPosition::of(Xid(6));
        assert_eq!(pos.clear_from(0b11_11_11_11), 0b00_00_11_11);
        assert_eq!(XidPosition::of(Xid(4)).clear_from(0xFF), 0);
    }

    #[test]
    fn allowed_transitions() {
        use XidStatus::*;
        assert!(InProgress.may_become(Committed));
        assert!(Committed.may_become(Committed));
        assert!(SubCommitted.may_become(Aborted));
        assert!(!Committed.may_become(Aborted));
        assert!(!SubCommitted.may_become(InProgress));
    }
}
