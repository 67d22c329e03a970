//! The slotted page: every 8 KB block of a heap (and later index) relation.
//!
//! The layout is PostgreSQL's (`bufpage.h`), with one field widened:
//!
//! ```text
//!  0        8     10     12      14      16        18              20           28
//!  +--------+-----+------+-------+-------+---------+---------------+------------+
//!  | pd_lsn | cks | flags| lower | upper | special | pagesize_vers | prune_xid  |
//!  |  u64   | u16 | u16  |  u16  |  u16  |   u16   |      u16      |    u64     |
//!  +--------+-----+------+-------+-------+---------+---------------+------------+
//!  | line pointer 1 | line pointer 2 | ... | line pointer N |  ->  pd_lower
//!  +----------------+----------------+-----+----------------+
//!  |                       free space                       |
//!  +--------------+---------------------+-------------------+  <-  pd_upper
//!  |    item N    |         ...         |      item 1       |
//!  +--------------+---------------------+-------------------+  <-  pd_special
//!  |            special space (index AMs; empty for heap)    |
//!  +---------------------------------------------------------+  <-  BLCKSZ
//! ```
//!
//! Differences from PostgreSQL 15, all deliberate:
//!
//! - `pd_prune_xid` is a 64-bit [`Xid`] (our xids are 64-bit), so the header
//!   is [`SIZE_OF_PAGE_HEADER`] = 28 bytes instead of 24. Line pointers start
//!   at byte 28, which keeps them 4-byte aligned; items stay MAXALIGN'ed (8).
//! - Every field is **little-endian** on disk, whatever the host, and is read
//!   and written through byte slices (no `#[repr(C)]` overlay), so a page file
//!   is portable and a corrupt page can never produce an unaligned read.
//! - The layout version in the low byte of `pd_pagesize_version` is
//!   [`PAGE_LAYOUT_VERSION`] (`0x81`: the high bit says "not a PostgreSQL
//!   layout", revision 1), so a PostgreSQL page is never mistaken for ours.
//! - The checksum is CRC32C (hardware accelerated by the `crc32c` crate, and
//!   the same function the WAL uses) over the page with `pd_checksum` taken
//!   as zero, followed by the block number; the 32 bits are folded to 16 and
//!   mapped to 1..=65535 as PostgreSQL does, so a valid checksum is never 0.
//!   PostgreSQL uses an FNV-1a variant; either detects torn and flipped pages.
//!
//! A line pointer ([`ItemId`], in `page/item_id.rs`) is 4 bytes, packed as
//! PostgreSQL's bit fields are on a little-endian machine: bits 0..15
//! `lp_off`, bits 15..17 `lp_flags` ([`LpFlags`]), bits 17..32 `lp_len`.
//! Items are addressed by
//! 1-based [`OffsetNumber`]s, which never change while the item lives (ctid
//! chains and indexes point at them), even when [`Page::repair_fragmentation`]
//! moves the bytes.
//!
//! The page is a view ([`Page`]) over a `[u8; BLCKSZ]` owned by someone else
//! (a shared buffer, an I/O buffer, a test array): [`PageRef`] reads,
//! [`PageMut`] also writes. Backends use it on pages in shared buffers, the
//! startup process during redo, and whoever reads or writes a block
//! (backends, bgwriter, checkpointer) calls [`verify_page`] /
//! [`set_checksum`].
//!
//! # Invariants
//!
//! 1. `SIZE_OF_PAGE_HEADER <= pd_lower <= pd_upper <= pd_special <= BLCKSZ`;
//!    `pd_upper` and `pd_special` are MAXALIGN'ed; `pd_lower` sits on a line
//!    pointer boundary. [`verify_header`] checks these on every read from
//!    disk, and every operation re-checks them before touching the page.
//! 2. Every line pointer with storage (`lp_len > 0`) points inside
//!    `[pd_upper, pd_special)` (checked on every access); storage of
//!    different items does not overlap (maintained, not checked: repair
//!    copies each item from a snapshot, so overlapping corrupt items still
//!    cannot cause an out-of-bounds access).
//! 3. An `LP_UNUSED` line pointer has no storage. `PD_HAS_FREE_LINES` is only
//!    a hint that one may exist: [`Page::set_unused`] sets it,
//!    [`Page::add_item`] clears it when a scan finds none, and
//!    [`Page::repair_fragmentation`] recomputes it.
//! 4. An all-zero page is a valid "new" page (a relation extended but never
//!    written); it must be [`Page::init`]ed before items are added.
//!
//! No operation panics or reads out of bounds on a corrupt page: offsets
//! from the page are checked against the header, and a violation is a
//! [`PageError`] (SQLSTATE `XX001 data_corrupted`).
//!
//! # Locking
//!
//! None here. Callers follow the buffer manager's rules: reading a page
//! needs a pin and a shared content lock, changing it an exclusive one
//! (setting hint bits excepted, as in PostgreSQL).
//!
//! # Crash safety
//!
//! - `pd_lsn` is the LSN of the last WAL record that changed the page; the
//!   buffer manager writes a dirty page only after WAL is flushed up to it,
//!   and redo skips records at or below it (replay is idempotent).
//! - [`set_checksum`] is applied to a private copy of the page just before
//!   the write (other backends may set hint bits under a shared lock), and
//!   [`verify_page`] runs after every read. A torn write (some 512-byte
//!   sectors old, some new) fails the checksum; recovery repairs it because
//!   the first change to a page after a checkpoint logs a full-page image.

use crate::types::{BlockNumber, Lsn, Xid, BLCKSZ};
use pgerror::{PgError, SqlState};

mod item_id;
pub use item_id::{ItemId, LpFlags, OffsetNumber};

/// Alignment of items on a page (PostgreSQL's MAXALIGN on 64-bit hosts).
pub const MAXIMUM_ALIGNOF: usize = 8;

/// Round `len` up to a multiple of [`MAXIMUM_ALIGNOF`].
pub const fn maxalign(len: usize) -> usize {
    (len + MAXIMUM_ALIGNOF - 1) & !(MAXIMUM_ALIGNOF - 1)
}

const PD_LSN: usize = 0;
const PD_CHECKSUM: usize = 8;
const PD_FLAGS: usize = 10;
const PD_LOWER: usize = 12;
const PD_UPPER: usize = 14;
const PD_SPECIAL: usize = 16;
const PD_PAGESIZE_VERSION: usize = 18;
const PD_PRUNE_XID: usize = 20;
/// Size of the page header; the first line pointer starts here.
pub const SIZE_OF_PAGE_HEADER: usize = 28;
const _: () = assert!(SIZE_OF_PAGE_HEADER == PD_PRUNE_XID + 8);
/// Size of one line pointer.
pub const ITEM_ID_SIZE: usize = 4;

/// There are (or may be) `LP_UNUSED` line pointers before `pd_lower`.
pub const PD_HAS_FREE_LINES: u16 = 0x0001;
/// Not enough free space for a new tuple (a hint for pruning).
pub const PD_PAGE_FULL: u16 = 0x0002;
/// Every tuple on the page is visible to every transaction.
pub const PD_ALL_VISIBLE: u16 = 0x0004;
const PD_VALID_FLAG_BITS: u16 = 0x0007;

/// Low byte of `pd_pagesize_version`.
pub const PAGE_LAYOUT_VERSION: u8 = 0x81;
const PAGESIZE_VERSION: u16 = BLCKSZ as u16 | PAGE_LAYOUT_VERSION as u16;

/// What is wrong with a page. Every variant except [`PageError::InvalidOffset`]
/// and [`PageError::EmptyItem`] means the page is corrupt: the caller reports
/// `XX001` and must not use the page. Those two are caller bugs (`XX000`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("page verification failed, calculated checksum {computed} but expected {stored}")]
    ChecksumMismatch { stored: u16, computed: u16 },
    #[error("corrupted page pointers: lower = {lower}, upper = {upper}, special = {special}")]
    CorruptPointers {
        lower: u16,
        upper: u16,
        special: u16,
    },
    #[error("invalid page flags {flags:#06x}")]
    InvalidFlags { flags: u16 },
    #[error("invalid page size and layout version {found:#06x}, expected {expected:#06x}", expected = PAGESIZE_VERSION)]
    InvalidPageSizeVersion { found: u16 },
    #[error("corrupted line pointer {offset}: offset = {item_off}, size = {item_len}")]
    CorruptLinePointer {
        offset: OffsetNumber,
        item_off: u16,
        item_len: u16,
    },
    #[error("corrupted item lengths: total {total}, available space {available}")]
    CorruptItemLengths { total: usize, available: usize },
    #[error("invalid item offset {offset} (max {max}) or line pointer in use")]
    InvalidOffset {
        offset: OffsetNumber,
        max: OffsetNumber,
    },
    #[error("cannot add an empty item to a page")]
    EmptyItem,
}

impl PageError {
    /// True if the page itself is bad (as opposed to a bad request).
    pub fn is_corruption(&self) -> bool {
        !matches!(self, PageError::InvalidOffset { .. } | PageError::EmptyItem)
    }
}

impl From<PageError> for PgError {
    fn from(e: PageError) -> PgError {
        if e.is_corruption() {
            PgError::new(SqlState::DATA_CORRUPTED, e.to_string())
        } else {
            PgError::internal(e.to_string())
        }
    }
}

fn get_u16(page: &[u8; BLCKSZ], at: usize) -> u16 {
    u16::from_le_bytes([page[at], page[at + 1]])
}

fn put_u16(page: &mut [u8; BLCKSZ], at: usize, v: u16) {
    page[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(page: &[u8; BLCKSZ], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&page[at..at + 8]);
    u64::from_le_bytes(b)
}

/// True if every byte is zero: a page allocated by extending the relation
/// but never initialized (PostgreSQL accepts these on read too).
pub fn is_new(page: &[u8; BLCKSZ]) -> bool {
    page.iter().all(|&b| b == 0)
}

/// The checksum `page` should carry when stored as block `blkno`.
pub fn page_checksum(page: &[u8; BLCKSZ], blkno: BlockNumber) -> u16 {
    let mut crc = crc32c::crc32c(&page[..PD_CHECKSUM]);
    crc = crc32c::crc32c_append(crc, &[0, 0]);
    crc = crc32c::crc32c_append(crc, &page[PD_CHECKSUM + 2..]);
    // The block number makes a page written at the wrong place fail.
    crc = crc32c::crc32c_append(crc, &blkno.0.to_le_bytes());
    let folded = (crc ^ (crc >> 16)) & 0xffff;
    (folded % 65535 + 1) as u16
}

/// Store the checksum, just before the page is written as block `blkno`.
pub fn set_checksum(page: &mut [u8; BLCKSZ], blkno: BlockNumber) {
    let sum = page_checksum(page, blkno);
    put_u16(page, PD_CHECKSUM, sum);
}

/// True if the stored checksum matches, or the page is all zeros.
pub fn verify_checksum(page: &[u8; BLCKSZ], blkno: BlockNumber) -> bool {
    get_u16(page, PD_CHECKSUM) == page_checksum(page, blkno) || is_new(page)
}

/// The header sanity checks of invariant 1 (PostgreSQL's `PageIsVerified`
/// header part). An all-zero page fails them; use [`verify_page`] on read.
pub fn verify_header(page: &[u8; BLCKSZ]) -> Result<(), PageError> {
    let flags = get_u16(page, PD_FLAGS);
    if flags & !PD_VALID_FLAG_BITS != 0 {
        return Err(PageError::InvalidFlags { flags });
    }
    let found = get_u16(page, PD_PAGESIZE_VERSION);
    if found != PAGESIZE_VERSION {
        return Err(PageError::InvalidPageSizeVersion { found });
    }
    bounds(page).map(|_| ())
}

/// Everything checked when a block arrives from disk: an all-zero page is
/// accepted; otherwise the checksum, then the header.
pub fn verify_page(page: &[u8; BLCKSZ], blkno: BlockNumber) -> Result<(), PageError> {
    let stored = get_u16(page, PD_CHECKSUM);
    let computed = page_checksum(page, blkno);
    if stored != computed {
        if is_new(page) {
            return Ok(());
        }
        return Err(PageError::ChecksumMismatch { stored, computed });
    }
    verify_header(page)
}

/// The three header pointers, checked (invariant 1).
#[derive(Clone, Copy)]
struct Bounds {
    lower: usize,
    upper: usize,
    special: usize,
}

fn bounds(page: &[u8; BLCKSZ]) -> Result<Bounds, PageError> {
    let (lower, upper, special) = (
        get_u16(page, PD_LOWER),
        get_u16(page, PD_UPPER),
        get_u16(page, PD_SPECIAL),
    );
    let b = Bounds {
        lower: lower as usize,
        upper: upper as usize,
        special: special as usize,
    };
    let ok = b.lower >= SIZE_OF_PAGE_HEADER
        && (b.lower - SIZE_OF_PAGE_HEADER) % ITEM_ID_SIZE == 0
        && b.lower <= b.upper
        && b.upper <= b.special
        && b.special <= BLCKSZ
        && b.upper == maxalign(b.upper)
        && b.special == maxalign(b.special);
    if ok {
        Ok(b)
    } else {
        Err(PageError::CorruptPointers {
            lower,
            upper,
            special,
        })
    }
}

/// Byte position of line pointer `off` (1-based).
fn lp_pos(off: u16) -> usize {
    SIZE_OF_PAGE_HEADER + (off as usize - 1) * ITEM_ID_SIZE
}

/// Something that holds one page: a borrowed array (the usual case: a
/// shared buffer or an I/O buffer), an owned array, or a box.
pub trait PageBytes {
    fn page_bytes(&self) -> &[u8; BLCKSZ];
}

/// A [`PageBytes`] that can be written.
pub trait PageBytesMut: PageBytes {
    fn page_bytes_mut(&mut self) -> &mut [u8; BLCKSZ];
}

impl PageBytes for &[u8; BLCKSZ] {
    fn page_bytes(&self) -> &[u8; BLCKSZ] {
        self
    }
}

impl PageBytes for &mut [u8; BLCKSZ] {
    fn page_bytes(&self) -> &[u8; BLCKSZ] {
        self
    }
}

impl PageBytesMut for &mut [u8; BLCKSZ] {
    fn page_bytes_mut(&mut self) -> &mut [u8; BLCKSZ] {
        self
    }
}

impl PageBytes for Box<[u8; BLCKSZ]> {
    fn page_bytes(&self) -> &[u8; BLCKSZ] {
        self
    }
}

impl PageBytesMut for Box<[u8; BLCKSZ]> {
    fn page_bytes_mut(&mut self) -> &mut [u8; BLCKSZ] {
        self
    }
}

/// A view of one page. Reading methods work on any [`PageBytes`], writing
/// ones on a [`PageBytesMut`].
pub struct Page<B>(B);

/// A read-only view of a borrowed page.
pub type PageRef<'a> = Page<&'a [u8; BLCKSZ]>;
/// A writable view of a borrowed page.
pub type PageMut<'a> = Page<&'a mut [u8; BLCKSZ]>;

impl<B: PageBytes> Page<B> {
    /// Wrap the bytes; nothing is checked until an operation needs it.
    pub fn new(bytes: B) -> Page<B> {
        Page(bytes)
    }

    pub fn into_inner(self) -> B {
        self.0
    }

    pub fn bytes(&self) -> &[u8; BLCKSZ] {
        self.0.page_bytes()
    }

    pub fn lsn(&self) -> Lsn {
        Lsn(get_u64(self.bytes(), PD_LSN))
    }

    pub fn checksum(&self) -> u16 {
        get_u16(self.bytes(), PD_CHECKSUM)
    }

    pub fn flags(&self) -> u16 {
        get_u16(self.bytes(), PD_FLAGS)
    }

    pub fn lower(&self) -> u16 {
        get_u16(self.bytes(), PD_LOWER)
    }

    pub fn upper(&self) -> u16 {
        get_u16(self.bytes(), PD_UPPER)
    }

    pub fn special_offset(&self) -> u16 {
        get_u16(self.bytes(), PD_SPECIAL)
    }

    pub fn pagesize_version(&self) -> u16 {
        get_u16(self.bytes(), PD_PAGESIZE_VERSION)
    }

    /// Oldest xmax on the page that may be prunable (a hint).
    pub fn prune_xid(&self) -> Xid {
        Xid(get_u64(self.bytes(), PD_PRUNE_XID))
    }

    pub fn has_free_lines(&self) -> bool {
        self.flags() & PD_HAS_FREE_LINES != 0
    }

    pub fn is_full(&self) -> bool {
        self.flags() & PD_PAGE_FULL != 0
    }

    pub fn is_all_visible(&self) -> bool {
        self.flags() & PD_ALL_VISIBLE != 0
    }

    pub fn is_new(&self) -> bool {
        is_new(self.bytes())
    }

    pub fn verify_header(&self) -> Result<(), PageError> {
        verify_header(self.bytes())
    }

    /// Number of line pointers (0 on an empty page). Clamped, so that on a
    /// corrupt page it still never names a line pointer outside the page.
    pub fn max_offset(&self) -> OffsetNumber {
        let lower = (self.lower() as usize).min(BLCKSZ);
        OffsetNumber((lower.saturating_sub(SIZE_OF_PAGE_HEADER) / ITEM_ID_SIZE) as u16)
    }

    /// The line pointer at `off`, or `None` if there is no such slot.
    pub fn item_id(&self, off: OffsetNumber) -> Option<ItemId> {
        if off.0 == 0 || off > self.max_offset() {
            return None;
        }
        let p = lp_pos(off.0);
        let b = self.bytes();
        Some(ItemId(u32::from_le_bytes([
            b[p],
            b[p + 1],
            b[p + 2],
            b[p + 3],
        ])))
    }

    /// Every line pointer, in offset order.
    pub fn item_ids(&self) -> impl Iterator<Item = (OffsetNumber, ItemId)> + '_ {
        (1..=self.max_offset().0).filter_map(move |o| {
            let off = OffsetNumber(o);
            self.item_id(off).map(|lp| (off, lp))
        })
    }

    /// Where the item at `off` lives, if it has storage: `Ok(None)` for an
    /// unused slot, one without storage, or an offset past the end.
    fn item_range(&self, off: OffsetNumber) -> Result<Option<std::ops::Range<usize>>, PageError> {
        let b = bounds(self.bytes())?;
        let Some(lp) = self.item_id(off) else {
            return Ok(None);
        };
        if !lp.is_used() || !lp.has_storage() {
            return Ok(None);
        }
        let (start, len) = (lp.offset() as usize, lp.length() as usize);
        if start < b.upper || start + len > b.special {
            return Err(PageError::CorruptLinePointer {
                offset: off,
                item_off: lp.offset(),
                item_len: lp.length(),
            });
        }
        Ok(Some(start..start + len))
    }

    /// The bytes of the item at `off` (see `item_range` for `None`).
    pub fn get_item(&self, off: OffsetNumber) -> Result<Option<&[u8]>, PageError> {
        Ok(self.item_range(off)?.map(|r| &self.bytes()[r]))
    }

    /// The special space (empty for heap pages).
    pub fn special(&self) -> Result<&[u8], PageError> {
        let b = bounds(self.bytes())?;
        Ok(&self.bytes()[b.special..])
    }

    /// Free space for one more item including its line pointer
    /// (PostgreSQL's `PageGetFreeSpace`): `pd_upper - pd_lower` minus one
    /// line pointer, 0 if that is negative or the header is corrupt.
    pub fn free_space(&self) -> usize {
        self.exact_free_space().saturating_sub(ITEM_ID_SIZE)
    }

    /// `pd_upper - pd_lower` (PostgreSQL's `PageGetExactFreeSpace`).
    pub fn exact_free_space(&self) -> usize {
        (self.upper() as usize).saturating_sub(self.lower() as usize)
    }
}

impl<B: PageBytesMut> Page<B> {
    fn bytes_mut(&mut self) -> &mut [u8; BLCKSZ] {
        self.0.page_bytes_mut()
    }

    /// Format an empty page with `special_size` bytes (MAXALIGN'ed) of
    /// special space. Everything else, the LSN included, becomes zero.
    ///
    /// # Panics
    /// If the special space would not leave room for the header: the size
    /// is a constant of the access method, not a value read from disk.
    pub fn init(&mut self, special_size: usize) {
        let special_size = maxalign(special_size);
        assert!(
            special_size <= BLCKSZ - maxalign(SIZE_OF_PAGE_HEADER),
            "special space too large"
        );
        let special = (BLCKSZ - special_size) as u16;
        let page = self.bytes_mut();
        page.fill(0);
        put_u16(page, PD_LOWER, SIZE_OF_PAGE_HEADER as u16);
        put_u16(page, PD_UPPER, special);
        put_u16(page, PD_SPECIAL, special);
        put_u16(page, PD_PAGESIZE_VERSION, PAGESIZE_VERSION);
    }

    pub fn set_lsn(&mut self, lsn: Lsn) {
        self.bytes_mut()[PD_LSN..PD_LSN + 8].copy_from_slice(&lsn.0.to_le_bytes());
    }

    pub fn set_prune_xid(&mut self, xid: Xid) {
        self.bytes_mut()[PD_PRUNE_XID..PD_PRUNE_XID + 8].copy_from_slice(&xid.0.to_le_bytes());
    }

    fn set_flag(&mut self, flag: u16, on: bool) {
        let flags = if on {
            self.flags() | flag
        } else {
            self.flags() & !flag
        };
        put_u16(self.bytes_mut(), PD_FLAGS, flags);
    }

    pub fn set_has_free_lines(&mut self, on: bool) {
        self.set_flag(PD_HAS_FREE_LINES, on)
    }

    pub fn set_full(&mut self, on: bool) {
        self.set_flag(PD_PAGE_FULL, on)
    }

    pub fn set_all_visible(&mut self, on: bool) {
        self.set_flag(PD_ALL_VISIBLE, on)
    }

    /// Put `item` on the page (PostgreSQL's `PageAddItemExtended`).
    ///
    /// - `offset: None`: reuse the first unused line pointer if
    ///   `PD_HAS_FREE_LINES` says there may be one, else append one.
    /// - `Some(off), overwrite = true`: use slot `off`, which must be unused
    ///   without storage, or one past the end.
    /// - `Some(off), overwrite = false`: insert at `off`, shifting the line
    ///   pointers from `off` on up by one (for ordered index pages).
    ///
    /// The bytes go just below `pd_upper`, at a MAXALIGN'ed offset, with the
    /// padding zeroed. Returns `Ok(None)` if there is not room.
    pub fn add_item(
        &mut self,
        item: &[u8],
        offset: Option<OffsetNumber>,
        overwrite: bool,
    ) -> Result<Option<OffsetNumber>, PageError> {
        let b = bounds(self.bytes())?;
        if item.is_empty() {
            return Err(PageError::EmptyItem);
        }
        let max = self.max_offset();
        let limit = OffsetNumber(max.0 + 1);
        let mut shuffle = false;
        let off = match offset {
            Some(off) => {
                let bad = PageError::InvalidOffset { offset: off, max };
                if off.0 == 0 || off > limit {
                    return Err(bad);
                }
                if off < limit {
                    if !overwrite {
                        shuffle = true;
                    } else if self
                        .item_id(off)
                        .is_some_and(|lp| lp.is_used() || lp.has_storage())
                    {
                        return Err(bad);
                    }
                }
                off
            }
            None => self.find_free_line_pointer().unwrap_or(limit),
        };
        let lower = if off == limit || shuffle {
            b.lower + ITEM_ID_SIZE
        } else {
            b.lower
        };
        let aligned = maxalign(item.len());
        if aligned > b.upper || lower > b.upper - aligned {
            return Ok(None);
        }
        let upper = b.upper - aligned;
        let page = self.bytes_mut();
        if shuffle {
            page.copy_within(lp_pos(off.0)..b.lower, lp_pos(off.0) + ITEM_ID_SIZE);
        }
        let lp = ItemId::normal(upper as u16, item.len() as u16);
        page[lp_pos(off.0)..lp_pos(off.0) + ITEM_ID_SIZE].copy_from_slice(&lp.0.to_le_bytes());
        page[upper..upper + item.len()].copy_from_slice(item);
        page[upper + item.len()..upper + aligned].fill(0);
        put_u16(page, PD_LOWER, lower as u16);
        put_u16(page, PD_UPPER, upper as u16);
        Ok(Some(off))
    }

    /// The first unused line pointer without storage, if the page says
    /// there may be one; clears the hint when there is none.
    fn find_free_line_pointer(&mut self) -> Option<OffsetNumber> {
        if !self.has_free_lines() {
            return None;
        }
        let found = self
            .item_ids()
            .find(|(_, lp)| !lp.is_used() && !lp.has_storage())
            .map(|(o, _)| o);
        if found.is_none() {
            self.set_has_free_lines(false);
        }
        found
    }

    /// The item at `off`, writable in place (e.g. to set xmax or hint bits).
    pub fn get_item_mut(&mut self, off: OffsetNumber) -> Result<Option<&mut [u8]>, PageError> {
        Ok(self.item_range(off)?.map(|r| &mut self.bytes_mut()[r]))
    }

    /// Overwrite the line pointer at `off`, which must exist.
    pub fn set_item_id(&mut self, off: OffsetNumber, lp: ItemId) -> Result<(), PageError> {
        if self.item_id(off).is_none() {
            return Err(PageError::InvalidOffset {
                offset: off,
                max: self.max_offset(),
            });
        }
        self.bytes_mut()[lp_pos(off.0)..lp_pos(off.0) + ITEM_ID_SIZE]
            .copy_from_slice(&lp.0.to_le_bytes());
        Ok(())
    }

    /// Make slot `off` free for reuse. Its storage becomes a hole until
    /// [`Page::repair_fragmentation`]; `PD_HAS_FREE_LINES` is set.
    pub fn set_unused(&mut self, off: OffsetNumber) -> Result<(), PageError> {
        self.set_item_id(off, ItemId::UNUSED)?;
        self.set_has_free_lines(true);
        Ok(())
    }

    /// Mark `off` dead and drop its storage (heap pruning's `ItemIdSetDead`):
    /// the slot stays taken until index entries pointing at it are gone.
    pub fn set_dead(&mut self, off: OffsetNumber) -> Result<(), PageError> {
        self.set_item_id(off, ItemId::dead())
    }

    /// Mark `off` dead but keep its storage (`ItemIdMarkDead`, index pages).
    pub fn mark_dead(&mut self, off: OffsetNumber) -> Result<(), PageError> {
        let lp = self.item_id(off).unwrap_or(ItemId::UNUSED);
        self.set_item_id(off, ItemId::new(lp.offset(), LpFlags::Dead, lp.length()))
    }

    /// Turn `off` into a HOT redirect to `target`, dropping its storage.
    pub fn set_redirect(
        &mut self,
        off: OffsetNumber,
        target: OffsetNumber,
    ) -> Result<(), PageError> {
        self.set_item_id(off, ItemId::redirect(target))
    }

    /// The writable special space.
    pub fn special_mut(&mut self) -> Result<&mut [u8], PageError> {
        let b = bounds(self.bytes())?;
        Ok(&mut self.bytes_mut()[b.special..])
    }

    /// Squeeze out the holes left by removed items (PostgreSQL's
    /// `PageRepairFragmentation`): every item with storage is moved, in
    /// descending order of its old position, to the end of the item area,
    /// keeping its line pointer number; the freed space is zeroed.
    /// `PD_HAS_FREE_LINES` is set exactly when an unused slot remains.
    /// On a corrupt page nothing is changed and an error is returned.
    pub fn repair_fragmentation(&mut self) -> Result<(), PageError> {
        let b = bounds(self.bytes())?;
        let mut items: Vec<(OffsetNumber, ItemId)> = Vec::new();
        let mut has_unused = false;
        let mut total = 0;
        for (off, lp) in self.item_ids() {
            if !lp.is_used() {
                has_unused = true;
            } else if lp.has_storage() {
                let (start, len) = (lp.offset() as usize, lp.length() as usize);
                if start < b.upper || start + len > b.special {
                    return Err(PageError::CorruptLinePointer {
                        offset: off,
                        item_off: lp.offset(),
                        item_len: lp.length(),
                    });
                }
                total += maxalign(len);
                items.push((off, lp));
            }
        }
        if total > b.special - b.lower {
            return Err(PageError::CorruptItemLengths {
                total,
                available: b.special - b.lower,
            });
        }
        items.sort_by_key(|(_, lp)| std::cmp::Reverse(lp.offset()));
        let old: [u8; BLCKSZ] = *self.bytes();
        let page = self.bytes_mut();
        page[b.lower..b.special].fill(0);
        let mut upper = b.special;
        for (off, lp) in items {
            let (start, len) = (lp.offset() as usize, lp.length() as usize);
            upper -= maxalign(len);
            page[upper..upper + len].copy_from_slice(&old[start..start + len]);
            let moved = ItemId::new(upper as u16, lp.flags(), lp.length());
            page[lp_pos(off.0)..lp_pos(off.0) + ITEM_ID_SIZE]
                .copy_from_slice(&moved.0.to_le_bytes());
        }
        // An unused slot never has storage (invariant 3).
        for o in 1..=self.max_offset().0 {
            let off = OffsetNumber(o);
            if self
                .item_id(off)
                .is_some_and(|lp| !lp.is_used() && lp.0 != 0)
            {
                self.set_item_id(off, ItemId::UNUSED)?;
            }
        }
        put_u16(self.bytes_mut(), PD_UPPER, upper as u16);
        self.set_has_free_lines(has_unused);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
