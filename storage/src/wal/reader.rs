//! Reading the WAL record by record, and finding where it ends.
//!
//! The startup process replays WAL with a [`WalReader`]: it starts at the
//! redo point of the last checkpoint and asks for one record after another.
//! Each page is checked before any record bytes are taken from it, each
//! record is reassembled from its pieces (across pages and segments) and
//! decoded, which checks its CRC. The first thing that does not check out
//! is the end of the WAL: the reader returns `Ok(None)` from then on and
//! [`WalReader::end_of_wal`] says where and why.
//!
//! ```text
//!            next                                    end (aligned)
//!             │                                       │
//!  ...| rec A | len | header .. | page hdr | .. rest  |pad| rec C ...
//!             └── first piece ──┘ CONTRECORD, └─ last ┘
//!                                 rem_len = bytes left
//!
//!  per page:   magic -> info bits -> long header (system id, sizes)
//!              -> page address == this page's LSN -> timeline
//!  per record: start aligned, outside a page header
//!              -> 28 <= tot_len <= MAX_RECORD_BYTES
//!              -> rmgr id, reserved bits, prev == previous record's start
//!              -> each continuation page: CONTRECORD and rem_len agree
//!              -> decode: CRC, block and data lengths
//! ```
//!
//! Where the WAL ends is not an error: after a crash the tail is expected to
//! be torn. A missing segment, a zeroed page or a zero length is where the
//! writer had not yet written (a clean end); a bad magic or page address
//! (a recycled segment), a CRC mismatch or a broken continuation is a tail
//! cut by the crash or damage. Both end replay; only the reason text tells
//! them apart. I/O errors other than a missing file are returned as
//! [`WalError`]: unlike PostgreSQL, which ends recovery on a read error,
//! we refuse to treat an unreadable disk as the end of the WAL, because
//! committed transactions after that point would be silently lost.
//!
//! # Invariants
//!
//! 1. A record is returned only if every page it touches passed the page
//!    checks and the record decoded with a matching CRC.
//! 2. Returned records are consecutive: each one's `prev` is the previous
//!    one's start, and each starts at the previous one's `end` (or just
//!    after the page header there).
//! 3. Memory grows with bytes actually read from valid continuation pages,
//!    never with a length field alone: a garbage length is caught at the
//!    next page header before much is allocated.
//!
//! # Crash safety
//!
//! Replay stops at the first invalid record, so a torn final write is
//! ignored, never half-applied. That loses nothing acknowledged only
//! because a commit is reported after its record (and so every record
//! before it) is flushed: anything beyond the first bad record was never
//! promised to anyone. A later write to the same position after recovery
//! overwrites the torn tail, since the next insert position is
//! [`WalReader::next_lsn`].

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::types::{Lsn, WAL_SEGMENT_BYTES};
use crate::wal::record::{decode, le_u32, DecodedRecord, RecordError, RecordHeader};
use crate::wal::record::{MAX_RECORD_BYTES, RECORD_HEADER_BYTES};
use crate::wal::segment::{
    page_header_bytes, page_start, segment_file_name, PageHeader, TimeLineId, MAXALIGN,
    WAL_PAGE_BYTES, WAL_PAGE_MAGIC, XLP_ALL_FLAGS, XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER,
};
use crate::wal::WalError;

const PAGE: u64 = WAL_PAGE_BYTES as u64;

/// The outcome of fetching one WAL page.
#[derive(Debug, PartialEq, Eq)]
pub enum PageRead {
    /// The buffer holds the page.
    Read,
    /// The segment file (named) does not exist.
    MissingSegment(String),
    /// The segment file (named) ends before the page.
    SegmentTooShort(String),
}

/// Where WAL pages come from: segment files, or memory in tests.
pub trait WalSource {
    /// Reads the page that starts at `page` into `buf`.
    fn read_page(
        &mut self,
        page: Lsn,
        buf: &mut [u8; WAL_PAGE_BYTES],
    ) -> Result<PageRead, WalError>;
}

impl<S: WalSource + ?Sized> WalSource for &mut S {
    fn read_page(
        &mut self,
        page: Lsn,
        buf: &mut [u8; WAL_PAGE_BYTES],
    ) -> Result<PageRead, WalError> {
        (**self).read_page(page, buf)
    }
}

/// Segment files of one timeline in a `pg_wal` directory.
pub struct SegmentDir {
    dir: PathBuf,
    timeline: TimeLineId,
    open: Option<(u64, File)>,
}

impl SegmentDir {
    pub fn new(pg_wal: impl Into<PathBuf>, timeline: TimeLineId) -> SegmentDir {
        SegmentDir {
            dir: pg_wal.into(),
            timeline,
            open: None,
        }
    }
}

impl WalSource for SegmentDir {
    fn read_page(
        &mut self,
        page: Lsn,
        buf: &mut [u8; WAL_PAGE_BYTES],
    ) -> Result<PageRead, WalError> {
        let segno = page.segment();
        let name = segment_file_name(self.timeline, segno);
        let path = self.dir.join(&name);
        if self.open.as_ref().is_none_or(|(s, _)| *s != segno) {
            self.open = None;
            match File::open(&path) {
                Ok(f) => self.open = Some((segno, f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(PageRead::MissingSegment(name));
                }
                Err(source) => {
                    return Err(WalError::Io {
                        op: "open",
                        path,
                        source,
                    })
                }
            }
        }
        let (_, file) = self.open.as_ref().expect("opened above");
        match file.read_exact_at(buf, page.segment_offset()) {
            Ok(()) => Ok(PageRead::Read),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Ok(PageRead::SegmentTooShort(name))
            }
            Err(source) => Err(WalError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }
}

/// Why the WAL ends where it does. The texts follow PostgreSQL's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    MissingSegment(String),
    SegmentTooShort(String),
    /// All-zero page header: never written.
    ZeroedPage,
    BadMagic(u16),
    BadPageInfo(u16),
    WrongSystemId {
        found: u64,
        expected: u64,
    },
    BadSegmentGeometry {
        segment_bytes: u32,
        page_bytes: u32,
    },
    /// The page belongs to another position: a recycled segment.
    PageAddressMismatch {
        found: Lsn,
    },
    WrongTimeline(TimeLineId),
    /// The start position is not a record boundary.
    InvalidStart,
    /// A page at a record boundary claims to continue a record.
    UnexpectedContinuation,
    PrevLinkMismatch {
        found: Lsn,
        expected: Lsn,
    },
    /// A record continues onto a page that does not say so.
    MissingContinuation,
    ContinuationLengthMismatch {
        rem_len: u32,
        expected: u32,
    },
    /// Bad length, rmgr, structure or CRC (a zero length is the clean end).
    InvalidRecord(RecordError),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::MissingSegment(name) => {
                write!(f, "WAL segment {name} does not exist (end of WAL)")
            }
            EndReason::SegmentTooShort(name) => write!(f, "WAL segment {name} is too short"),
            EndReason::ZeroedPage => write!(f, "zeroed page header (end of WAL)"),
            EndReason::BadMagic(m) => write!(f, "invalid magic number {m:04X}"),
            EndReason::BadPageInfo(i) => write!(f, "invalid info bits {i:04X}"),
            EndReason::WrongSystemId { found, expected } => write!(
                f,
                "WAL file is from different database system: WAL file database system \
                 identifier is {found}, pg_control database system identifier is {expected}"
            ),
            EndReason::BadSegmentGeometry {
                segment_bytes,
                page_bytes,
            } => write!(
                f,
                "WAL file has segment size {segment_bytes} and page size {page_bytes}, \
                 expected {WAL_SEGMENT_BYTES} and {WAL_PAGE_BYTES}"
            ),
            EndReason::PageAddressMismatch { found } => {
                write!(
                    f,
                    "unexpected pageaddr {found} (recycled segment, end of WAL)"
                )
            }
            EndReason::WrongTimeline(tli) => write!(f, "unexpected timeline ID {tli}"),
            EndReason::InvalidStart => write!(f, "invalid record offset"),
            EndReason::UnexpectedContinuation => write!(f, "unexpected contrecord flag"),
            EndReason::PrevLinkMismatch { found, expected } => {
                write!(
                    f,
                    "record with incorrect prev-link {found}, expected {expected}"
                )
            }
            EndReason::MissingContinuation => write!(f, "there is no contrecord flag"),
            EndReason::ContinuationLengthMismatch { rem_len, expected } => {
                write!(
                    f,
                    "invalid contrecord length {rem_len} (expected {expected})"
                )
            }
            EndReason::InvalidRecord(RecordError::TooShort(0)) => {
                write!(
                    f,
                    "invalid record length: wanted {RECORD_HEADER_BYTES}, got 0 (end of WAL)"
                )
            }
            EndReason::InvalidRecord(e) => write!(f, "{e}"),
        }
    }
}

/// Where and why the WAL ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndOfWal {
    /// Start of the record that could not be read: the end of valid WAL,
    /// where writing resumes.
    pub lsn: Lsn,
    /// Where the problem was found (the record, or one of its pages).
    pub found_at: Lsn,
    pub reason: EndReason,
}

impl fmt::Display for EndOfWal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.reason, self.found_at)
    }
}

/// One record as read from the WAL.
#[derive(Clone, Debug)]
pub struct ReadRecord {
    /// The record's LSN.
    pub start: Lsn,
    /// Where the next record goes (aligned; may be a page boundary).
    pub end: Lsn,
    pub record: DecodedRecord,
}

/// Why reading stopped: the end of the WAL, or an I/O error.
enum Stop {
    End(EndOfWal),
    Io(WalError),
}

impl From<WalError> for Stop {
    fn from(e: WalError) -> Stop {
        Stop::Io(e)
    }
}

/// Reads records sequentially from a start LSN; see the module docs.
pub struct WalReader<S: WalSource = SegmentDir> {
    source: S,
    timeline: TimeLineId,
    system_id: u64,
    next: Lsn,
    prev: Option<Lsn>,
    page: Box<[u8; WAL_PAGE_BYTES]>,
    /// The page in `page`, already validated.
    loaded: Option<Lsn>,
    end: Option<EndOfWal>,
}

impl WalReader<SegmentDir> {
    /// A reader over the segment files in `pg_wal`, starting with the
    /// record at `start` (a record's LSN, or a page boundary before one).
    pub fn open(
        pg_wal: impl Into<PathBuf>,
        timeline: TimeLineId,
        system_id: u64,
        start: Lsn,
    ) -> Self {
        WalReader::with_source(
            SegmentDir::new(pg_wal, timeline),
            timeline,
            system_id,
            start,
        )
    }
}

impl<S: WalSource> WalReader<S> {
    pub fn with_source(source: S, timeline: TimeLineId, system_id: u64, start: Lsn) -> Self {
        WalReader {
            source,
            timeline,
            system_id,
            next: start,
            prev: None,
            page: Box::new([0u8; WAL_PAGE_BYTES]),
            loaded: None,
            end: None,
        }
    }

    /// The next record, or `None` at the end of the WAL (and ever after).
    pub fn read_record(&mut self) -> Result<Option<ReadRecord>, WalError> {
        if self.end.is_some() {
            return Ok(None);
        }
        match self.try_read() {
            Ok(rec) => {
                self.prev = Some(rec.start);
                self.next = rec.end;
                Ok(Some(rec))
            }
            Err(Stop::End(end)) => {
                log::debug!("end of WAL: {end}");
                self.end = Some(end);
                Ok(None)
            }
            Err(Stop::Io(e)) => Err(e),
        }
    }

    /// Where and why the WAL ended, once [`read_record`](Self::read_record)
    /// has returned `None`.
    pub fn end_of_wal(&self) -> Option<&EndOfWal> {
        self.end.as_ref()
    }

    /// The position after the last record returned (the start position
    /// before any): where the next record is, or where the WAL ends.
    pub fn next_lsn(&self) -> Lsn {
        self.next
    }

    /// The source, e.g. to damage test WAL between reads.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    fn try_read(&mut self) -> Result<ReadRecord, Stop> {
        let record_lsn = self.next;
        let end = |found_at: Lsn, reason: EndReason| {
            Stop::End(EndOfWal {
                lsn: record_lsn,
                found_at,
                reason,
            })
        };
        let mut page = page_start(record_lsn);
        let mut start = record_lsn;
        if record_lsn.0 % PAGE == 0 {
            let header = self.load_page(page, record_lsn)?;
            if header.info & XLP_FIRST_IS_CONTRECORD != 0 {
                return Err(end(page, EndReason::UnexpectedContinuation));
            }
            start = Lsn(page.0 + page_header_bytes(page) as u64);
        } else if record_lsn.0 % MAXALIGN != 0
            || record_lsn.0 - page.0 < page_header_bytes(page) as u64
        {
            return Err(end(record_lsn, EndReason::InvalidStart));
        } else {
            self.load_page(page, record_lsn)?;
        }

        // The length is on this page (records start 8-aligned, pages end
        // 8-aligned): check it before taking anything.
        let at = (start.0 - page.0) as usize;
        let tot_len = le_u32(&self.page[at..at + 4]);
        if (tot_len as usize) < RECORD_HEADER_BYTES {
            return Err(end(
                start,
                EndReason::InvalidRecord(RecordError::TooShort(tot_len)),
            ));
        }
        if tot_len > MAX_RECORD_BYTES {
            return Err(end(
                start,
                EndReason::InvalidRecord(RecordError::TooLong(tot_len)),
            ));
        }
        let total = tot_len as usize;
        let mut buf = Vec::with_capacity(total.min(2 * WAL_PAGE_BYTES));
        let first = total.min(WAL_PAGE_BYTES - at);
        buf.extend_from_slice(&self.page[at..at + first]);
        let mut last_byte_end = Lsn(start.0 + first as u64);
        let mut header_checked = false;
        loop {
            if !header_checked && buf.len() >= RECORD_HEADER_BYTES {
                self.check_record_header(&buf, start)
                    .map_err(|r| end(start, r))?;
                header_checked = true;
            }
            if buf.len() == total {
                break;
            }
            page = Lsn(page.0 + PAGE);
            let header = self.load_page(page, record_lsn)?;
            let remaining = (total - buf.len()) as u32;
            if header.info & XLP_FIRST_IS_CONTRECORD == 0 {
                return Err(end(page, EndReason::MissingContinuation));
            }
            if header.rem_len != remaining {
                return Err(end(
                    page,
                    EndReason::ContinuationLengthMismatch {
                        rem_len: header.rem_len,
                        expected: remaining,
                    },
                ));
            }
            let hl = page_header_bytes(page);
            let n = (total - buf.len()).min(WAL_PAGE_BYTES - hl);
            buf.extend_from_slice(&self.page[hl..hl + n]);
            last_byte_end = Lsn(page.0 + (hl + n) as u64);
        }
        let record = decode(buf).map_err(|e| end(start, EndReason::InvalidRecord(e)))?;
        let end_lsn = Lsn(last_byte_end.0.div_ceil(MAXALIGN) * MAXALIGN);
        Ok(ReadRecord {
            start,
            end: end_lsn,
            record,
        })
    }

    /// Header checks that need only the fixed header: rmgr, reserved bits,
    /// and the prev link (PostgreSQL's `ValidXLogRecordHeader`).
    fn check_record_header(&self, bytes: &[u8], start: Lsn) -> Result<(), EndReason> {
        let header = RecordHeader::parse(bytes).map_err(EndReason::InvalidRecord)?;
        let prev_ok = match self.prev {
            Some(expected) => header.prev == expected,
            None => header.prev < start,
        };
        if !prev_ok {
            return Err(EndReason::PrevLinkMismatch {
                found: header.prev,
                expected: self.prev.unwrap_or(Lsn::INVALID),
            });
        }
        Ok(())
    }

    /// Brings the page at `page` into the buffer and validates its header.
    fn load_page(&mut self, page: Lsn, record_lsn: Lsn) -> Result<PageHeader, Stop> {
        let end = |reason| {
            Stop::End(EndOfWal {
                lsn: record_lsn,
                found_at: page,
                reason,
            })
        };
        if self.loaded != Some(page) {
            self.loaded = None;
            match self.source.read_page(page, &mut self.page)? {
                PageRead::Read => {}
                PageRead::MissingSegment(name) => return Err(end(EndReason::MissingSegment(name))),
                PageRead::SegmentTooShort(name) => {
                    return Err(end(EndReason::SegmentTooShort(name)))
                }
            }
            self.validate_page_header(page).map_err(end)?;
            self.loaded = Some(page);
        }
        Ok(PageHeader::decode(&self.page))
    }

    /// PostgreSQL's `XLogReaderValidatePageHeader`, in its order.
    fn validate_page_header(&self, page: Lsn) -> Result<(), EndReason> {
        let h = PageHeader::decode(&self.page);
        if h.magic != WAL_PAGE_MAGIC {
            if self.page[..LONG_HEADER_PROBE].iter().all(|&b| b == 0) {
                return Err(EndReason::ZeroedPage);
            }
            return Err(EndReason::BadMagic(h.magic));
        }
        let first_in_segment = page.segment_offset() == 0;
        if h.info & !XLP_ALL_FLAGS != 0 || (h.info & XLP_LONG_HEADER != 0) != first_in_segment {
            return Err(EndReason::BadPageInfo(h.info));
        }
        if let Some(long) = h.long {
            if long.system_id != self.system_id {
                return Err(EndReason::WrongSystemId {
                    found: long.system_id,
                    expected: self.system_id,
                });
            }
            if u64::from(long.segment_bytes) != WAL_SEGMENT_BYTES
                || long.page_bytes as usize != WAL_PAGE_BYTES
            {
                return Err(EndReason::BadSegmentGeometry {
                    segment_bytes: long.segment_bytes,
                    page_bytes: long.page_bytes,
                });
            }
        }
        if h.page_addr != page {
            return Err(EndReason::PageAddressMismatch { found: h.page_addr });
        }
        if h.timeline != self.timeline {
            return Err(EndReason::WrongTimeline(h.timeline));
        }
        Ok(())
    }
}

/// How much of a page must be zero to call it never written.
const LONG_HEADER_PROBE: usize = 40;
