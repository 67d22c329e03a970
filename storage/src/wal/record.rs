//! The WAL record: its byte layout, building one, and decoding one.
//!
//! A record describes one atomic change: a heap insert, a commit, a
//! checkpoint. Backends build records with [`RecordBuilder`] (later, WAL
//! insertion copies them into the shared WAL buffers); the startup process
//! decodes them with [`decode`] and hands each to its resource manager's
//! redo routine. The layout follows PostgreSQL's `xlogrecord.h`: a fixed
//! header, then the headers of the referenced blocks and of the main data,
//! then the payloads in the same order.
//!
//! ```text
//!  offset  size
//!  0       4    tot_len    whole record: header + block headers + payloads
//!  4       1    info       rmgr-specific opcode and flag bits (all 8 bits)
//!  5       1    rmgr       ResourceManager id (PostgreSQL's RmgrId numbers)
//!  6       2    reserved   zero
//!  8       8    xid        64-bit transaction id, 0 if none
//!  16      8    prev       LSN of the previous record's start
//!  24      4    crc        CRC32C, see below
//!  28           block header 0 .. block header n   (ascending block id)
//!               main data header                   (absent if no main data)
//!               block 0 image, block 0 data, .. block n image, block n data
//!               main data
//!  tot_len      (the next record starts at the next 8-byte boundary)
//!
//!  block header:
//!   u8   block id          0..=MAX_BLOCK_ID
//!   u8   fork_flags        low 4 bits fork number, 0x10 HAS_IMAGE,
//!                          0x20 HAS_DATA, 0x40 WILL_INIT, 0x80 SAME_REL
//!   u16  data_len          per-block data bytes (0 iff no HAS_DATA)
//!   [HAS_IMAGE] u16 hole_offset, u16 hole_length
//!   [not SAME_REL] u32 spc_oid, u32 db_oid, u32 rel_number
//!   u32  block number
//!
//!  main data header:  u8 255, u8 len      (DATA_SHORT, len <= 255)
//!                  or u8 254, u32 len     (DATA_LONG)
//! ```
//!
//! There is no end marker for the headers: as in PostgreSQL, a decoder
//! reads headers while more bytes remain than the headers so far announce
//! as payload (image and data lengths), or until the main data header,
//! which is always last.
//!
//! All integers are little-endian, whatever the host: the files must be
//! readable by any build of this server (PostgreSQL uses host order; we pin
//! one). The header holds PostgreSQL's `XLogRecord` fields, reordered so the
//! 64-bit fields are aligned and everything the CRC covers in the header is
//! one prefix (bytes 0..24).
//!
//! **Full-page images.** An image is the 8 KB page with its *hole* left
//! out: the free space between `pd_lower` and `pd_upper`, which the caller
//! (the buffer manager, which knows the page layout) passes as
//! [`PageImage::hole`]. The stored bytes are `page[..hole_offset]` followed
//! by `page[hole_offset + hole_length..]`; restoring fills the hole with
//! zeros. A page without a usable hole is stored whole (`hole_length` 0,
//! `hole_offset` 0). No compression.
//!
//! **CRC.** CRC32C over the bytes after the header (offset 28 to
//! `tot_len`), continued over the header bytes 0..24 (everything before the
//! CRC field). That is PostgreSQL's order, and for the same reason: the body
//! CRC is computed while building, before the insertion position is known;
//! `prev` is filled in at insertion time ([`AssembledRecord::seal`]) and only
//! the 24 header bytes are then added to the CRC.
//!
//! # Invariants
//!
//! 1. `tot_len` is the exact length of the record; `RECORD_HEADER_BYTES <=
//!    tot_len <= MAX_RECORD_BYTES`.
//! 2. Block ids are strictly ascending and at most [`MAX_BLOCK_ID`]; the
//!    first block never has SAME_REL.
//! 3. The header lengths add up exactly: the payloads end at `tot_len`.
//! 4. [`decode`] accepts a buffer only if 1-3 hold, the rmgr id is known,
//!    the reserved bits are zero and the CRC matches. It never panics and
//!    allocates nothing proportional to a length it has not checked against
//!    the buffer: hostile bytes give a [`RecordError`].
//!
//! # Crash safety
//!
//! A record is durable once the WAL up to its end is flushed. A crash in the
//! middle of writing it leaves a torn record whose CRC cannot match (the CRC
//! covers every byte but itself), so replay stops before it. Stopping there
//! loses nothing acknowledged, because a commit is reported to the client
//! only after its commit record, and every record before it, was flushed.

use std::fmt;
use std::ops::Range;

use crate::types::{BlockNumber, ForkNumber, Lsn, Oid, RelFileLocator, Xid, BLCKSZ};

/// Bytes of the fixed record header.
pub const RECORD_HEADER_BYTES: usize = 28;
/// Offset of the CRC field; the header bytes before it are covered by the CRC.
const CRC_OFFSET: usize = 24;
/// The largest record accepted, as PostgreSQL's `XLogRecordMaxSize`
/// (1020 MB: below 1 GB, leaving room for decoding overhead).
pub const MAX_RECORD_BYTES: u32 = 1020 * 1024 * 1024;
/// The largest block id a record may reference (PostgreSQL's
/// `XLR_MAX_BLOCK_ID`).
pub const MAX_BLOCK_ID: u8 = 32;

const BLOCK_ID_DATA_SHORT: u8 = 255;
const BLOCK_ID_DATA_LONG: u8 = 254;

const FORK_MASK: u8 = 0x0F;
const HAS_IMAGE: u8 = 0x10;
const HAS_DATA: u8 = 0x20;
const WILL_INIT: u8 = 0x40;
const SAME_REL: u8 = 0x80;

/// Which subsystem's redo routine replays a record. The numbers are
/// PostgreSQL's `RmgrId`s, so its documentation and `pg_waldump` habits
/// carry over; ids we do not (yet) have are simply absent.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceManager {
    /// Checkpoints, segment switches, full-page-only records.
    Xlog = 0,
    /// Commit and abort.
    Transaction = 1,
    /// Creating and truncating relation files (PostgreSQL's "Storage").
    Storage = 2,
    /// Commit-log page zeroing and truncation.
    Clog = 3,
    /// Running-transactions snapshots, for hot standby later.
    Standby = 8,
    /// Heap insert, update, delete, lock.
    Heap = 10,
    /// B-tree index changes.
    Btree = 11,
}

impl ResourceManager {
    pub fn from_u8(v: u8) -> Option<ResourceManager> {
        Some(match v {
            0 => ResourceManager::Xlog,
            1 => ResourceManager::Transaction,
            2 => ResourceManager::Storage,
            3 => ResourceManager::Clog,
            8 => ResourceManager::Standby,
            10 => ResourceManager::Heap,
            11 => ResourceManager::Btree,
            _ => return None,
        })
    }

    /// The name `pg_waldump` prints.
    pub fn name(self) -> &'static str {
        match self {
            ResourceManager::Xlog => "XLOG",
            ResourceManager::Transaction => "Transaction",
            ResourceManager::Storage => "Storage",
            ResourceManager::Clog => "CLOG",
            ResourceManager::Standby => "Standby",
            ResourceManager::Heap => "Heap",
            ResourceManager::Btree => "Btree",
        }
    }
}

impl fmt::Display for ResourceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a byte buffer is not a valid record. Every variant means the same
/// thing to the reader (the WAL ends here); the text says what was wrong,
/// in PostgreSQL's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("invalid record length: wanted at least {RECORD_HEADER_BYTES}, got {0}")]
    TooShort(u32),
    #[error("record length {0} too long")]
    TooLong(u32),
    #[error("record length {claimed} does not match the {actual} bytes given")]
    LengthMismatch { claimed: u32, actual: usize },
    #[error("invalid resource manager ID {0}")]
    UnknownRmgr(u8),
    #[error("reserved header bits are not zero: {0:#06x}")]
    ReservedBits(u16),
    #[error(
        "incorrect resource manager data checksum: stored {stored:08X}, computed {computed:08X}"
    )]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("malformed record: {0}")]
    Malformed(&'static str),
}

/// The record was larger than [`MAX_RECORD_BYTES`], or one block's data
/// exceeded 65535 bytes: a bug in the caller, or a value too large to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("oversized WAL record: {0}")]
pub struct RecordTooLarge(pub &'static str);

/// Per-block flags the caller chooses; HAS_IMAGE and HAS_DATA follow from
/// what is registered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockFlags(u8);

impl BlockFlags {
    pub const NONE: BlockFlags = BlockFlags(0);
    /// Redo re-initialises the page from scratch, so it need not be read
    /// (PostgreSQL's `REGBUF_WILL_INIT`).
    pub const WILL_INIT: BlockFlags = BlockFlags(WILL_INIT);

    pub fn will_init(self) -> bool {
        self.0 & WILL_INIT != 0
    }
}

/// A full-page image to log: the page and, if it has the standard layout,
/// its `pd_lower` and `pd_upper`, whose gap (all zeros) is left out.
#[derive(Clone, Copy, Debug)]
pub struct PageImage<'a> {
    pub page: &'a [u8; BLCKSZ],
    /// `(pd_lower, pd_upper)`; ignored unless `lower <= upper <= BLCKSZ`.
    pub hole: Option<(u16, u16)>,
}

struct BuilderBlock {
    id: u8,
    locator: RelFileLocator,
    fork: ForkNumber,
    blkno: BlockNumber,
    flags: BlockFlags,
    /// Stored image bytes (hole removed) and the hole.
    image: Option<(Vec<u8>, u16, u16)>,
    data: Vec<u8>,
}

/// Builds one record: `begin`, register blocks and data, `finish`, then
/// [`AssembledRecord::seal`] with the previous record's LSN.
///
/// Registering the same block id twice, an id above [`MAX_BLOCK_ID`], or
/// data for an unregistered block is a bug in the caller and panics.
pub struct RecordBuilder {
    rmgr: ResourceManager,
    info: u8,
    xid: Xid,
    blocks: Vec<BuilderBlock>,
    main_data: Vec<u8>,
}

impl RecordBuilder {
    pub fn begin(rmgr: ResourceManager, info: u8, xid: Xid) -> RecordBuilder {
        RecordBuilder {
            rmgr,
            info,
            xid,
            blocks: Vec::new(),
            main_data: Vec::new(),
        }
    }

    /// References a block the record changes, optionally with its image.
    pub fn register_block(
        &mut self,
        id: u8,
        locator: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        flags: BlockFlags,
        image: Option<PageImage<'_>>,
    ) -> &mut Self {
        assert!(id <= MAX_BLOCK_ID, "block id {id} above MAX_BLOCK_ID");
        assert!(
            self.blocks.iter().all(|b| b.id != id),
            "block id {id} registered twice"
        );
        let image = image.map(|img| {
            let (offset, length) = match img.hole {
                Some((lower, upper)) if lower <= upper && usize::from(upper) <= BLCKSZ => {
                    (lower, upper - lower)
                }
                _ => (0, 0),
            };
            let (o, l) = (usize::from(offset), usize::from(length));
            let mut stored = Vec::with_capacity(BLCKSZ - l);
            stored.extend_from_slice(&img.page[..o]);
            stored.extend_from_slice(&img.page[o + l..]);
            (stored, if length == 0 { 0 } else { offset }, length)
        });
        let pos = self.blocks.partition_point(|b| b.id < id);
        self.blocks.insert(
            pos,
            BuilderBlock {
                id,
                locator,
                fork,
                blkno,
                flags,
                image,
                data: Vec::new(),
            },
        );
        self
    }

    /// Appends per-block data (replayed only if the image is not applied).
    pub fn register_block_data(&mut self, id: u8, data: &[u8]) -> &mut Self {
        let block = self
            .blocks
            .iter_mut()
            .find(|b| b.id == id)
            .unwrap_or_else(|| panic!("no block with id {id} registered"));
        block.data.extend_from_slice(data);
        self
    }

    /// Appends to the main data.
    pub fn register_data(&mut self, data: &[u8]) -> &mut Self {
        self.main_data.extend_from_slice(data);
        self
    }

    /// Lays the record out and computes the CRC of everything after the
    /// header; `prev` and the final CRC come with [`AssembledRecord::seal`].
    pub fn finish(self) -> Result<AssembledRecord, RecordTooLarge> {
        let mut total: u64 = RECORD_HEADER_BYTES as u64;
        let mut prev_rel: Option<RelFileLocator> = None;
        for b in &self.blocks {
            if b.data.len() > usize::from(u16::MAX) {
                return Err(RecordTooLarge("block data longer than 65535 bytes"));
            }
            total += 4 + if b.image.is_some() { 4 } else { 0 } + 4;
            if prev_rel != Some(b.locator) {
                total += 12;
            }
            prev_rel = Some(b.locator);
            total += b.image.as_ref().map_or(0, |i| i.0.len() as u64) + b.data.len() as u64;
        }
        let main_len = self.main_data.len() as u64;
        total += match main_len {
            0 => 0,
            1..=255 => 2,
            _ => 5,
        } + main_len;
        if total > u64::from(MAX_RECORD_BYTES) {
            return Err(RecordTooLarge("record longer than MAX_RECORD_BYTES"));
        }

        let mut out = Vec::with_capacity(total as usize);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.push(self.info);
        out.push(self.rmgr as u8);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.xid.0.to_le_bytes());
        out.extend_from_slice(&Lsn::INVALID.0.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        debug_assert_eq!(out.len(), RECORD_HEADER_BYTES);

        let mut prev_rel: Option<RelFileLocator> = None;
        for b in &self.blocks {
            let mut fork_flags = b.fork as u8 | (b.flags.0 & WILL_INIT);
            if b.image.is_some() {
                fork_flags |= HAS_IMAGE;
            }
            if !b.data.is_empty() {
                fork_flags |= HAS_DATA;
            }
            let same_rel = prev_rel == Some(b.locator);
            if same_rel {
                fork_flags |= SAME_REL;
            }
            prev_rel = Some(b.locator);
            out.push(b.id);
            out.push(fork_flags);
            out.extend_from_slice(&(b.data.len() as u16).to_le_bytes());
            if let Some((_, offset, length)) = &b.image {
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&length.to_le_bytes());
            }
            if !same_rel {
                out.extend_from_slice(&b.locator.spc_oid.0.to_le_bytes());
                out.extend_from_slice(&b.locator.db_oid.0.to_le_bytes());
                out.extend_from_slice(&b.locator.rel_number.0.to_le_bytes());
            }
            out.extend_from_slice(&b.blkno.0.to_le_bytes());
        }
        if main_len > 255 {
            out.push(BLOCK_ID_DATA_LONG);
            out.extend_from_slice(&(main_len as u32).to_le_bytes());
        } else if main_len > 0 {
            out.push(BLOCK_ID_DATA_SHORT);
            out.push(main_len as u8);
        }
        for b in &self.blocks {
            if let Some((stored, _, _)) = &b.image {
                out.extend_from_slice(stored);
            }
            out.extend_from_slice(&b.data);
        }
        out.extend_from_slice(&self.main_data);
        debug_assert_eq!(out.len() as u64, total);

        let body_crc = crc32c::crc32c(&out[RECORD_HEADER_BYTES..]);
        Ok(AssembledRecord {
            bytes: out,
            body_crc,
        })
    }
}

/// A laid-out record waiting for its `prev` link. WAL insertion reserves
/// space using [`AssembledRecord::total_len`], learns the previous record's
/// start, then seals.
pub struct AssembledRecord {
    bytes: Vec<u8>,
    body_crc: u32,
}

impl AssembledRecord {
    pub fn total_len(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// Fills in `prev` and the CRC; the bytes are then final.
    pub fn seal(mut self, prev: Lsn) -> Vec<u8> {
        self.bytes[16..24].copy_from_slice(&prev.0.to_le_bytes());
        let crc = crc32c::crc32c_append(self.body_crc, &self.bytes[..CRC_OFFSET]);
        self.bytes[CRC_OFFSET..RECORD_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
        self.bytes
    }
}

/// The CRC a record's bytes should carry (see the module docs for the order).
/// `bytes` must hold at least the header.
pub fn record_crc(bytes: &[u8]) -> u32 {
    let body = crc32c::crc32c(bytes.get(RECORD_HEADER_BYTES..).unwrap_or(&[]));
    crc32c::crc32c_append(body, &bytes[..CRC_OFFSET.min(bytes.len())])
}

/// The fixed header of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub total_len: u32,
    pub info: u8,
    pub rmgr: ResourceManager,
    pub xid: Xid,
    pub prev: Lsn,
    pub crc: u32,
}

impl RecordHeader {
    /// Parses and checks the header fields that need no more than the
    /// header itself: length bounds, rmgr id, reserved bits. The reader uses
    /// this before assembling a record spread over pages.
    pub fn parse(bytes: &[u8]) -> Result<RecordHeader, RecordError> {
        let total_len = match bytes.get(0..4) {
            Some(b) => le_u32(b),
            None => return Err(RecordError::TooShort(bytes.len() as u32)),
        };
        if (total_len as usize) < RECORD_HEADER_BYTES {
            return Err(RecordError::TooShort(total_len));
        }
        if total_len > MAX_RECORD_BYTES {
            return Err(RecordError::TooLong(total_len));
        }
        if bytes.len() < RECORD_HEADER_BYTES {
            return Err(RecordError::LengthMismatch {
                claimed: total_len,
                actual: bytes.len(),
            });
        }
        let rmgr = ResourceManager::from_u8(bytes[5]).ok_or(RecordError::UnknownRmgr(bytes[5]))?;
        let reserved = u16::from_le_bytes([bytes[6], bytes[7]]);
        if reserved != 0 {
            return Err(RecordError::ReservedBits(reserved));
        }
        Ok(RecordHeader {
            total_len,
            info: bytes[4],
            rmgr,
            xid: Xid(le_u64(&bytes[8..16])),
            prev: Lsn(le_u64(&bytes[16..24])),
            crc: le_u32(&bytes[24..28]),
        })
    }
}

#[derive(Clone, Debug)]
struct DecodedBlock {
    id: u8,
    fork: ForkNumber,
    flags: u8,
    locator: RelFileLocator,
    blkno: BlockNumber,
    hole_offset: u16,
    hole_length: u16,
    image: Range<usize>,
    data: Range<usize>,
}

/// A validated record: the bytes plus where each part lies in them.
#[derive(Clone, Debug)]
pub struct DecodedRecord {
    bytes: Vec<u8>,
    header: RecordHeader,
    blocks: Vec<DecodedBlock>,
    main_data: Range<usize>,
}

/// One block reference of a decoded record.
#[derive(Clone, Copy, Debug)]
pub struct BlockRef<'a> {
    pub id: u8,
    pub locator: RelFileLocator,
    pub fork: ForkNumber,
    pub blkno: BlockNumber,
    pub will_init: bool,
    image: Option<(&'a [u8], u16, u16)>,
    data: Option<&'a [u8]>,
}

impl<'a> BlockRef<'a> {
    pub fn has_image(&self) -> bool {
        self.image.is_some()
    }

    /// The per-block data, if any was registered.
    pub fn data(&self) -> Option<&'a [u8]> {
        self.data
    }

    /// `(hole_offset, hole_length)` of the image, if there is one.
    pub fn image_hole(&self) -> Option<(u16, u16)> {
        self.image.map(|(_, o, l)| (o, l))
    }

    /// The stored image bytes (hole removed), if there is one.
    pub fn image_bytes(&self) -> Option<&'a [u8]> {
        self.image.map(|(b, _, _)| b)
    }

    /// Rebuilds the full page from the image, zeros in the hole. Returns
    /// false (page untouched) if the block has no image.
    pub fn restore_image(&self, page: &mut [u8; BLCKSZ]) -> bool {
        let Some((stored, offset, length)) = self.image else {
            return false;
        };
        let (o, l) = (usize::from(offset), usize::from(length));
        page[..o].copy_from_slice(&stored[..o]);
        page[o..o + l].fill(0);
        page[o + l..].copy_from_slice(&stored[o..]);
        true
    }
}

impl DecodedRecord {
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }
    pub fn rmgr(&self) -> ResourceManager {
        self.header.rmgr
    }
    pub fn info(&self) -> u8 {
        self.header.info
    }
    pub fn xid(&self) -> Xid {
        self.header.xid
    }
    pub fn prev(&self) -> Lsn {
        self.header.prev
    }
    pub fn total_len(&self) -> u32 {
        self.header.total_len
    }
    /// The record's bytes as stored in the WAL.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn main_data(&self) -> &[u8] {
        &self.bytes[self.main_data.clone()]
    }
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }
    /// The block references, in ascending id order.
    pub fn blocks(&self) -> impl Iterator<Item = BlockRef<'_>> {
        self.blocks.iter().map(|b| self.block_ref(b))
    }
    pub fn block(&self, id: u8) -> Option<BlockRef<'_>> {
        self.blocks
            .iter()
            .find(|b| b.id == id)
            .map(|b| self.block_ref(b))
    }

    fn block_ref<'a>(&'a self, b: &DecodedBlock) -> BlockRef<'a> {
        BlockRef {
            id: b.id,
            locator: b.locator,
            fork: b.fork,
            blkno: b.blkno,
            will_init: b.flags & WILL_INIT != 0,
            image: (b.flags & HAS_IMAGE != 0)
                .then(|| (&self.bytes[b.image.clone()], b.hole_offset, b.hole_length)),
            data: (b.flags & HAS_DATA != 0).then(|| &self.bytes[b.data.clone()]),
        }
    }
}

/// Validates and decodes one complete record (exactly `tot_len` bytes).
/// Every length is checked against the buffer; nothing is allocated beyond
/// a vector of at most `MAX_BLOCK_ID + 1` block entries.
pub fn decode(bytes: Vec<u8>) -> Result<DecodedRecord, RecordError> {
    let header = RecordHeader::parse(&bytes)?;
    if header.total_len as usize != bytes.len() {
        return Err(RecordError::LengthMismatch {
            claimed: header.total_len,
            actual: bytes.len(),
        });
    }
    let computed = record_crc(&bytes);
    if computed != header.crc {
        return Err(RecordError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    let (blocks, main_data) = decode_body(&bytes)?;
    Ok(DecodedRecord {
        bytes,
        header,
        blocks,
        main_data,
    })
}

/// Reads the block and main-data headers, then assigns the payload ranges.
fn decode_body(bytes: &[u8]) -> Result<(Vec<DecodedBlock>, Range<usize>), RecordError> {
    use RecordError::Malformed;
    let mut cur = Cursor {
        bytes,
        pos: RECORD_HEADER_BYTES,
    };
    let mut blocks: Vec<DecodedBlock> = Vec::new();
    let mut main_len: usize = 0;
    let mut prev_rel: Option<RelFileLocator> = None;
    // Headers, until the main data header or until what is left is exactly
    // the payload the headers so far announced (PostgreSQL's rule: there is
    // no end marker when the record has no main data).
    let mut payload_bytes: usize = 0;
    while bytes.len() - cur.pos > payload_bytes {
        let id = cur.u8()?;
        match id {
            BLOCK_ID_DATA_SHORT => {
                main_len = usize::from(cur.u8()?);
                break;
            }
            BLOCK_ID_DATA_LONG => {
                main_len = cur.u32()? as usize;
                break;
            }
            id if id > MAX_BLOCK_ID => return Err(Malformed("invalid block id")),
            id if blocks.last().is_some_and(|b| b.id >= id) => {
                return Err(Malformed("out-of-order block id"));
            }
            _ => {}
        }
        let fork_flags = cur.u8()?;
        let fork =
            ForkNumber::from_u8(fork_flags & FORK_MASK).ok_or(Malformed("invalid fork number"))?;
        let data_len = cur.u16()?;
        if (fork_flags & HAS_DATA != 0) != (data_len != 0) {
            return Err(Malformed("HAS_DATA flag does not match the data length"));
        }
        let (hole_offset, hole_length) = if fork_flags & HAS_IMAGE != 0 {
            let (o, l) = (cur.u16()?, cur.u16()?);
            if usize::from(o) + usize::from(l) > BLCKSZ || (l == 0 && o != 0) {
                return Err(Malformed("invalid image hole"));
            }
            (o, l)
        } else {
            (0, 0)
        };
        let locator = if fork_flags & SAME_REL != 0 {
            prev_rel.ok_or(Malformed("SAME_REL set on the first block"))?
        } else {
            RelFileLocator {
                spc_oid: Oid(cur.u32()?),
                db_oid: Oid(cur.u32()?),
                rel_number: Oid(cur.u32()?),
            }
        };
        prev_rel = Some(locator);
        let blkno = BlockNumber(cur.u32()?);
        let image_len = if fork_flags & HAS_IMAGE != 0 {
            BLCKSZ - usize::from(hole_length)
        } else {
            0
        };
        payload_bytes += image_len + usize::from(data_len);
        blocks.push(DecodedBlock {
            id,
            fork,
            flags: fork_flags,
            locator,
            blkno,
            hole_offset,
            hole_length,
            // Lengths for now; turned into ranges below.
            image: 0..image_len,
            data: 0..usize::from(data_len),
        });
    }
    // Payloads, in header order; each must fit in what is left.
    for b in &mut blocks {
        b.image = cur.take(b.image.len())?;
        b.data = cur.take(b.data.len())?;
    }
    let main_data = cur.take(main_len)?;
    if cur.pos != bytes.len() {
        return Err(Malformed("trailing bytes after the main data"));
    }
    Ok((blocks, main_data))
}

/// Bounds-checked little-endian reads.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<Range<usize>, RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(RecordError::Malformed("lengths exceed the record"))?;
        let r = self.pos..end;
        self.pos = end;
        Ok(r)
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        let r = self.take(1)?;
        Ok(self.bytes[r.start])
    }
    fn u16(&mut self) -> Result<u16, RecordError> {
        let r = self.take(2)?;
        Ok(u16::from_le_bytes([
            self.bytes[r.start],
            self.bytes[r.start + 1],
        ]))
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        let r = self.take(4)?;
        Ok(le_u32(&self.bytes[r]))
    }
}

pub(crate) fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
