//! WAL segment files and the page layout inside them, and
//! [`append_record`], which lays a record into pages.
//!
//! The WAL is one byte stream addressed by [`Lsn`], cut into 16 MB segment
//! files in `pg_wal/`, each cut into 8 KB pages. Every page starts with a
//! header; records follow, each at an 8-byte (MAXALIGN) boundary, and a
//! record that does not fit continues after the next page's header, across
//! segment boundaries too. The layout is PostgreSQL's (`xlog_internal.h`),
//! little-endian, with our own magic number because the record format
//! differs from PostgreSQL's (64-bit xids, see `record.rs`).
//!
//! ```text
//!  segment file 000000010000000000000003 (16 MB = 2048 pages)
//!  +----------------------------------+----------------------------+--
//!  | long header (40) | rec A | rec B..| short header (24) | ..B | C  | ..
//!  +----------------------------------+----------------------------+--
//!  page 0                              page 1: FIRST_IS_CONTRECORD,
//!                                              rem_len = bytes of B left
//!
//!  page header, every page:            long header, first page of a segment:
//!   0  u16 magic   WAL_PAGE_MAGIC       24  u64 system identifier
//!   2  u16 info    FIRST_IS_CONTRECORD  32  u32 segment size (bytes)
//!                  | LONG_HEADER        36  u32 WAL page size (bytes)
//!   4  u32 timeline                     40
//!   8  u64 page address (its own LSN)
//!  16  u32 rem_len (continued record's bytes remaining, this page on)
//!  20  u32 zero
//!  24
//! ```
//!
//! A record starts at the insert position, or just after the page header if
//! that position is a page boundary ([`next_record_start`]); it ends at the
//! 8-byte boundary after its last byte, which may be a page boundary. The
//! padding is zero.
//!
//! File names are PostgreSQL's: 8 hex digits of timeline, then the segment
//! number split in two, as in `XLogFileName`:
//! `{tli:08X}{seg / 256:08X}{seg % 256:08X}` (256 segments of 16 MB per
//! 4 GB "xlogid").
//!
//! [`lsn_to_bytepos`] and [`bytepos_to_lsn`] convert between LSNs and
//! positions that count only record bytes (PostgreSQL's "usable byte
//! positions"): WAL insertion reserves space by adding to a byte position,
//! which needs no knowledge of where page headers fall.
//!
//! # Invariants
//!
//! 1. Every page written holds a header whose page address is the page's
//!    own LSN; a segment's first page, and only it, has LONG_HEADER.
//! 2. A page's FIRST_IS_CONTRECORD is set iff a record started on an earlier
//!    page has bytes on it; `rem_len` then counts that record's bytes from
//!    this page to its end.
//! 3. Records start 8-byte aligned and outside page headers, so a record's
//!    4-byte length always lies on its first page.
//! 4. [`append_record`] writes each byte of the stream at most once: the
//!    header of a page is written by the one record that first reaches it.
//!    Concurrent inserters of disjoint reserved ranges never overwrite one
//!    another (the WAL buffers zero a page before it is handed out).
//!
//! # Crash safety
//!
//! The page address in every header ties a page to one position in the
//! stream: an old segment renamed for reuse still holds pages whose address
//! is 16 MB (or more) behind, and the reader treats them as the end of WAL.
//! A torn page write leaves either the old page or a mix; the CRC of any
//! record on it fails, so replay stops before it. That is safe because a
//! commit is acknowledged only after the WAL through its record is flushed.

use crate::types::{Lsn, BLCKSZ, WAL_SEGMENT_BYTES};
use crate::wal::record::{le_u32, le_u64, RECORD_HEADER_BYTES};
use crate::wal::WalError;
use std::fmt;

/// Size of a WAL page (PostgreSQL's `XLOG_BLCKSZ`).
pub const WAL_PAGE_BYTES: usize = BLCKSZ;
const PAGE: u64 = WAL_PAGE_BYTES as u64;
/// Pages in a segment.
pub const PAGES_PER_SEGMENT: u64 = WAL_SEGMENT_BYTES / PAGE;
/// Segments per 4 GB: the split of the segment number in file names.
pub const SEGMENTS_PER_XLOGID: u64 = 0x1_0000_0000 / WAL_SEGMENT_BYTES;
/// Our magic number (PostgreSQL 15's is 0xD110; the record format differs).
pub const WAL_PAGE_MAGIC: u16 = 0xD15A;
/// Header of every page but a segment's first.
pub const SHORT_PAGE_HEADER_BYTES: usize = 24;
/// Header of a segment's first page.
pub const LONG_PAGE_HEADER_BYTES: usize = 40;
/// Records are aligned to this many bytes.
pub const MAXALIGN: u64 = 8;

/// The page begins with the rest of a record started on an earlier page.
pub const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
/// The page has the long header (first page of a segment).
pub const XLP_LONG_HEADER: u16 = 0x0002;
/// Every flag a valid page may carry.
pub const XLP_ALL_FLAGS: u16 = XLP_FIRST_IS_CONTRECORD | XLP_LONG_HEADER;

const USABLE_BYTES_IN_PAGE: u64 = PAGE - SHORT_PAGE_HEADER_BYTES as u64;
const USABLE_BYTES_IN_SEGMENT: u64 = PAGES_PER_SEGMENT * USABLE_BYTES_IN_PAGE
    - (LONG_PAGE_HEADER_BYTES - SHORT_PAGE_HEADER_BYTES) as u64;

/// A timeline id (PostgreSQL's `TimeLineID`). Recovery to a point in time
/// starts a new timeline; until then everything is on timeline 1.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeLineId(pub u32);

impl fmt::Display for TimeLineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The file name of segment `segno` on timeline `tli`.
pub fn segment_file_name(tli: TimeLineId, segno: u64) -> String {
    format!(
        "{:08X}{:08X}{:08X}",
        tli.0,
        segno / SEGMENTS_PER_XLOGID,
        segno % SEGMENTS_PER_XLOGID
    )
}

/// Parses a segment file name back into its timeline and segment number.
/// Anything else in `pg_wal/` (`archive_status`, temporary files, history
/// files) gives `None`.
pub fn parse_segment_file_name(name: &str) -> Option<(TimeLineId, u64)> {
    if name.len() != 24 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
        return None;
    }
    let part = |r: std::ops::Range<usize>| u32::from_str_radix(&name[r], 16).ok();
    let (tli, hi, lo) = (part(0..8)?, part(8..16)?, part(16..24)?);
    if u64::from(lo) >= SEGMENTS_PER_XLOGID {
        return None;
    }
    Some((
        TimeLineId(tli),
        u64::from(hi) * SEGMENTS_PER_XLOGID + u64::from(lo),
    ))
}

/// The LSN of the first byte of segment `segno`.
pub fn segment_start(segno: u64) -> Lsn {
    Lsn(segno * WAL_SEGMENT_BYTES)
}

/// The start of the page holding `lsn`.
pub fn page_start(lsn: Lsn) -> Lsn {
    Lsn(lsn.0 - lsn.0 % PAGE)
}

/// Header size of the page starting at `page`: long on a segment's first page.
pub fn page_header_bytes(page: Lsn) -> usize {
    if page.segment_offset() == 0 {
        LONG_PAGE_HEADER_BYTES
    } else {
        SHORT_PAGE_HEADER_BYTES
    }
}

/// Rounds up to the record alignment.
pub fn maxalign(n: u64) -> u64 {
    n.div_ceil(MAXALIGN) * MAXALIGN
}

/// Where a record inserted at `pos` begins: `pos`, or past the page header
/// if `pos` is a page boundary.
pub fn next_record_start(pos: Lsn) -> Lsn {
    if pos.0 % PAGE == 0 {
        Lsn(pos.0 + page_header_bytes(pos) as u64)
    } else {
        pos
    }
}

/// An LSN as a count of record bytes before it (page headers excluded).
/// An LSN inside a page header counts as the end of that header.
pub fn lsn_to_bytepos(lsn: Lsn) -> u64 {
    let full_segments = lsn.segment();
    let offset = lsn.segment_offset();
    let (full_pages, in_page) = (offset / PAGE, offset % PAGE);
    let base = full_segments * USABLE_BYTES_IN_SEGMENT;
    if full_pages == 0 {
        base + in_page.saturating_sub(LONG_PAGE_HEADER_BYTES as u64)
    } else {
        base + (PAGE - LONG_PAGE_HEADER_BYTES as u64)
            + (full_pages - 1) * USABLE_BYTES_IN_PAGE
            + in_page.saturating_sub(SHORT_PAGE_HEADER_BYTES as u64)
    }
}

/// The LSN of byte position `pos` as a record start: at a page boundary
/// this is just past the page header.
pub fn bytepos_to_lsn(pos: u64) -> Lsn {
    bytepos_to_lsn_inner(pos, false)
}

/// The LSN of byte position `pos` as a record end: at a page boundary this
/// is the boundary itself.
pub fn bytepos_to_end_lsn(pos: u64) -> Lsn {
    bytepos_to_lsn_inner(pos, true)
}

fn bytepos_to_lsn_inner(pos: u64, as_end: bool) -> Lsn {
    let full_segments = pos / USABLE_BYTES_IN_SEGMENT;
    let mut left = pos % USABLE_BYTES_IN_SEGMENT;
    let first_page_usable = PAGE - LONG_PAGE_HEADER_BYTES as u64;
    let offset = if left < first_page_usable {
        if left == 0 && as_end {
            0
        } else {
            left + LONG_PAGE_HEADER_BYTES as u64
        }
    } else {
        left -= first_page_usable;
        let (full_pages, in_page) = (left / USABLE_BYTES_IN_PAGE, left % USABLE_BYTES_IN_PAGE);
        let header = if in_page == 0 && as_end {
            0
        } else {
            SHORT_PAGE_HEADER_BYTES as u64
        };
        PAGE + full_pages * PAGE + in_page + header
    };
    Lsn(full_segments * WAL_SEGMENT_BYTES + offset)
}

/// A page header as stored (see the module diagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageHeader {
    pub magic: u16,
    pub info: u16,
    pub timeline: TimeLineId,
    pub page_addr: Lsn,
    pub rem_len: u32,
    /// Present iff `info` has [`XLP_LONG_HEADER`].
    pub long: Option<LongPageHeader>,
}

/// The fields only the first page of a segment carries, so a segment can
/// be checked against the cluster it is found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongPageHeader {
    pub system_id: u64,
    pub segment_bytes: u32,
    pub page_bytes: u32,
}

impl PageHeader {
    /// The header [`append_record`] writes for the page at `page`.
    pub fn for_page(page: Lsn, timeline: TimeLineId, system_id: u64, rem_len: u32) -> PageHeader {
        let first_in_segment = page.segment_offset() == 0;
        let mut info = if rem_len > 0 {
            XLP_FIRST_IS_CONTRECORD
        } else {
            0
        };
        if first_in_segment {
            info |= XLP_LONG_HEADER;
        }
        PageHeader {
            magic: WAL_PAGE_MAGIC,
            info,
            timeline,
            page_addr: page,
            rem_len,
            long: first_in_segment.then_some(LongPageHeader {
                system_id,
                segment_bytes: WAL_SEGMENT_BYTES as u32,
                page_bytes: WAL_PAGE_BYTES as u32,
            }),
        }
    }

    pub fn encoded_len(&self) -> usize {
        if self.long.is_some() {
            LONG_PAGE_HEADER_BYTES
        } else {
            SHORT_PAGE_HEADER_BYTES
        }
    }

    pub fn encode(&self) -> [u8; LONG_PAGE_HEADER_BYTES] {
        let mut b = [0u8; LONG_PAGE_HEADER_BYTES];
        b[0..2].copy_from_slice(&self.magic.to_le_bytes());
        b[2..4].copy_from_slice(&self.info.to_le_bytes());
        b[4..8].copy_from_slice(&self.timeline.0.to_le_bytes());
        b[8..16].copy_from_slice(&self.page_addr.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.rem_len.to_le_bytes());
        if let Some(long) = &self.long {
            b[24..32].copy_from_slice(&long.system_id.to_le_bytes());
            b[32..36].copy_from_slice(&long.segment_bytes.to_le_bytes());
            b[36..40].copy_from_slice(&long.page_bytes.to_le_bytes());
        }
        b
    }

    /// Parses the header at the start of `page` without judging it; the
    /// long fields are read iff the info bits say so.
    pub fn decode(page: &[u8; WAL_PAGE_BYTES]) -> PageHeader {
        let info = u16::from_le_bytes([page[2], page[3]]);
        PageHeader {
            magic: u16::from_le_bytes([page[0], page[1]]),
            info,
            timeline: TimeLineId(le_u32(&page[4..8])),
            page_addr: Lsn(le_u64(&page[8..16])),
            rem_len: le_u32(&page[16..20]),
            long: (info & XLP_LONG_HEADER != 0).then(|| LongPageHeader {
                system_id: le_u64(&page[24..32]),
                segment_bytes: le_u32(&page[32..36]),
                page_bytes: le_u32(&page[36..40]),
            }),
        }
    }
}

/// Somewhere WAL bytes can be written by LSN: segment files, memory for
/// tests, later the shared WAL buffers. One sink is one timeline of one
/// cluster, which the page headers name.
pub trait WalSink {
    fn timeline(&self) -> TimeLineId;
    fn system_id(&self) -> u64;
    /// Writes `bytes` at `lsn`. Callers never cross a page boundary.
    fn write_at(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), WalError>;
}

/// Where [`append_record`] put a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendedRecord {
    /// The record's LSN: what the next record's `prev` must be.
    pub start: Lsn,
    /// The next insert position (8-byte aligned, possibly a page boundary).
    pub end: Lsn,
}

/// Lays `record` (a sealed record: its `prev` must be the previous record's
/// start) into the stream at insert position `lsn`, writing the page header
/// of every page it is the first to reach and zero padding up to its end.
///
/// # Panics
/// If `lsn` is not a valid insert position (8-byte aligned, outside page
/// headers) or `record` is not a record whose length field matches its
/// length: both are bugs in the caller.
pub fn append_record(
    out: &mut impl WalSink,
    lsn: Lsn,
    record: &[u8],
) -> Result<AppendedRecord, WalError> {
    assert!(
        record.len() >= RECORD_HEADER_BYTES && le_u32(&record[..4]) as usize == record.len(),
        "append_record: not a sealed record"
    );
    let in_page = lsn.0 % PAGE;
    assert!(
        lsn.0 % MAXALIGN == 0
            && (in_page == 0 || in_page >= page_header_bytes(page_start(lsn)) as u64),
        "append_record: {lsn} is not an insert position"
    );
    let (timeline, system_id) = (out.timeline(), out.system_id());
    let mut pos = lsn;
    let mut rest = record;
    if pos.0 % PAGE == 0 {
        pos = write_page_header(out, pos, PageHeader::for_page(pos, timeline, system_id, 0))?;
    }
    let start = pos;
    loop {
        let room = (PAGE - pos.0 % PAGE) as usize;
        let n = room.min(rest.len());
        out.write_at(pos, &rest[..n])?;
        pos = Lsn(pos.0 + n as u64);
        rest = &rest[n..];
        if rest.is_empty() {
            break;
        }
        let remaining = u32::try_from(rest.len()).expect("records are below MAX_RECORD_BYTES");
        pos = write_page_header(
            out,
            pos,
            PageHeader::for_page(pos, timeline, system_id, remaining),
        )?;
    }
    let end = Lsn(maxalign(pos.0));
    if end > pos {
        out.write_at(pos, &[0u8; MAXALIGN as usize][..(end.0 - pos.0) as usize])?;
    }
    Ok(AppendedRecord { start, end })
}

fn write_page_header(
    out: &mut impl WalSink,
    page: Lsn,
    header: PageHeader,
) -> Result<Lsn, WalError> {
    let len = header.encoded_len();
    out.write_at(page, &header.encode()[..len])?;
    Ok(Lsn(page.0 + len as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_postgres_names() {
        assert_eq!(
            segment_file_name(TimeLineId(1), 1),
            "000000010000000000000001"
        );
        assert_eq!(
            segment_file_name(TimeLineId(1), 255),
            "0000000100000000000000FF"
        );
        assert_eq!(
            segment_file_name(TimeLineId(1), 256),
            "000000010000000100000000"
        );
        assert_eq!(
            segment_file_name(TimeLineId(0x1A), 0x3_05),
            "0000001A0000000300000005"
        );
        // 0/16B3F28 is in segment 1, as PostgreSQL's pg_walfile_name says.
        assert_eq!(
            segment_file_name(TimeLineId(1), Lsn(0x16B_3F28).segment()),
            "000000010000000000000001"
        );
    }

    #[test]
    fn file_names_parse_back() {
        for segno in [0u64, 1, 255, 256, 257, 0xFFFF_FFFF * 256 + 255] {
            let name = segment_file_name(TimeLineId(7), segno);
            assert_eq!(
                parse_segment_file_name(&name),
                Some((TimeLineId(7), segno)),
                "{name}"
            );
        }
        for bad in [
            "archive_status",
            "00000001000000000000001", // 23 digits
            "000000010000000000000001.partial",
            "00000001000000000000000a", // lower case
            "000000010000000000000100", // low part >= 256
            "00000002.history",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn page_headers_round_trip() {
        let first = PageHeader::for_page(segment_start(3), TimeLineId(1), 0xABCD, 0);
        assert_eq!(first.encoded_len(), LONG_PAGE_HEADER_BYTES);
        assert_eq!(first.info, XLP_LONG_HEADER);
        let next = PageHeader::for_page(Lsn(segment_start(3).0 + PAGE), TimeLineId(1), 0xABCD, 77);
        assert_eq!(next.encoded_len(), SHORT_PAGE_HEADER_BYTES);
        assert_eq!(next.info, XLP_FIRST_IS_CONTRECORD);
        for h in [first, next] {
            let mut page = [0u8; WAL_PAGE_BYTES];
            page[..LONG_PAGE_HEADER_BYTES].copy_from_slice(&h.encode());
            assert_eq!(PageHeader::decode(&page), h);
        }
    }

    #[test]
    fn byte_positions_skip_page_headers() {
        let seg1 = segment_start(1);
        assert_eq!(bytepos_to_lsn(0), Lsn(40));
        assert_eq!(bytepos_to_end_lsn(0), Lsn(0));
        let first_page_usable = PAGE - 40;
        assert_eq!(bytepos_to_lsn(first_page_usable), Lsn(PAGE + 24));
        assert_eq!(bytepos_to_end_lsn(first_page_usable), Lsn(PAGE));
        assert_eq!(bytepos_to_lsn(USABLE_BYTES_IN_SEGMENT), Lsn(seg1.0 + 40));
        assert_eq!(bytepos_to_end_lsn(USABLE_BYTES_IN_SEGMENT), seg1);
        // Round trips for record starts everywhere in a segment and the next.
        for lsn in [
            40u64,
            48,
            PAGE - 8,
            PAGE + 24,
            5 * PAGE + 1000,
            WAL_SEGMENT_BYTES - 8,
            seg1.0 + 40,
            seg1.0 + PAGE + 24,
        ] {
            assert_eq!(
                bytepos_to_lsn(lsn_to_bytepos(Lsn(lsn))),
                Lsn(lsn),
                "{lsn:#x}"
            );
        }
        // Boundaries map to the position just after the previous page's bytes.
        assert_eq!(lsn_to_bytepos(Lsn(PAGE)), first_page_usable);
        assert_eq!(lsn_to_bytepos(seg1), USABLE_BYTES_IN_SEGMENT);
    }

    #[test]
    fn record_starts_skip_a_page_header_at_a_boundary() {
        assert_eq!(
            next_record_start(segment_start(2)),
            Lsn(segment_start(2).0 + 40)
        );
        assert_eq!(next_record_start(Lsn(PAGE * 3)), Lsn(PAGE * 3 + 24));
        assert_eq!(next_record_start(Lsn(PAGE * 3 + 64)), Lsn(PAGE * 3 + 64));
        assert_eq!(maxalign(29), 32);
        assert_eq!(maxalign(32), 32);
    }
}
