//! The heap tuple: a fixed header, a null bitmap, then the column values.
//!
//! The layout follows PostgreSQL's `htup_details.h`, with the transaction
//! ids widened to 64 bits. Every field is little-endian and is read and
//! written through byte slices:
//!
//! ```text
//!  0        8        16      20          24         26           28          30       31
//!  +--------+--------+-------+-----------+----------+------------+-----------+--------+
//!  | t_xmin | t_xmax | t_cid | ctid blk  | ctid off | infomask2  | infomask  | t_hoff |
//!  |  u64   |  u64   |  u32  |   u32     |   u16    |    u16     |   u16     |   u8   |
//!  +--------+--------+-------+-----------+----------+------------+-----------+--------+
//!  | null bitmap, (natts + 7) / 8 bytes, only if HEAP_HASNULL | zero padding | -> t_hoff
//!  +----------------------------------------------------------+--------------+
//!  | column values, each aligned to its typalign (see datum.rs) ...           |
//!  +--------------------------------------------------------------------------+
//! ```
//!
//! Differences from PostgreSQL 15:
//!
//! - `t_xmin` and `t_xmax` are 64-bit [`Xid`]s: no wraparound, no freezing,
//!   no multixact epochs. The fixed header is [`SIZEOF_HEAP_TUPLE_HEADER`] =
//!   31 bytes instead of 23; with up to 8 columns the bitmap still fits
//!   before the 32-byte mark, so `t_hoff` is 32 for most tables (PG: 24).
//! - `t_cid` is a plain 32-bit command id (PostgreSQL overlays it with
//!   `t_xvac`, which only the pre-9.0 VACUUM FULL used; there is no combo
//!   CID support yet, though the `HEAP_COMBOCID` bit is reserved).
//! - `t_ctid` is a `u32` block number then a `u16` offset (PostgreSQL splits
//!   the block into two `u16` halves for 2-byte alignment; we read bytes).
//!
//! The infomask bits keep PostgreSQL's values and meanings (hint bits
//! `HEAP_XMIN_COMMITTED` etc. cache commit-log lookups; `HEAP_XMAX_INVALID`
//! means "xmax is not a live deleter or locker"). The null bitmap is
//! PostgreSQL's: bit `i % 8` of byte `i / 8` is set when attribute `i`
//! (0-based) is **not** null; it is present only if some attribute is null.
//!
//! A tuple is exactly as long as its data (the line pointer's `lp_len`): the
//! last value ends at the last byte. A tuple with fewer attributes than the
//! descriptor (written before `ALTER TABLE ... ADD COLUMN`) reads the
//! missing trailing attributes as NULL.
//!
//! Backends form and deform tuples (insert, fetch, update, delete); the
//! startup process writes tuple headers during redo.
//!
//! # Invariants
//!
//! 1. `SIZEOF_HEAP_TUPLE_HEADER + bitmap length <= t_hoff <= tuple length`,
//!    `t_hoff` is MAXALIGN'ed, and `natts <= MAX_HEAP_ATTRIBUTE_NUMBER`.
//! 2. [`form_tuple`] produces a header with invalid xmin/xmax/ctid and only
//!    the `HEAP_HASNULL`/`HEAP_HASVARWIDTH` bits; the heap's insert sets
//!    xmin, cid, `HEAP_XMAX_INVALID` and the ctid before it goes on a page.
//! 3. [`deform_tuple`] and [`HeapTupleHeader::read`] never panic or read
//!    outside the slice; bad bytes are [`TupleError::Corrupt`] (`XX001`).
//!
//! # Crash safety
//!
//! A tuple is only ever changed on a page under an exclusive content lock
//! and a WAL record (hint bits excepted: losing one just means another
//! commit-log lookup). A torn page is caught by the page checksum.

use super::datum::{read_datum, write_datum, Datum, TupleDesc};
use crate::page::{maxalign, OffsetNumber, ITEM_ID_SIZE, SIZE_OF_PAGE_HEADER};
use crate::types::{BlockNumber, Oid, Xid, BLCKSZ};
use pgerror::{PgError, SqlState};

const T_XMIN: usize = 0;
const T_XMAX: usize = 8;
const T_CID: usize = 16;
const T_CTID_BLOCK: usize = 20;
const T_CTID_OFFSET: usize = 24;
const T_INFOMASK2: usize = 26;
const T_INFOMASK: usize = 28;
const T_HOFF: usize = 30;
/// Size of the fixed header; the null bitmap starts here.
pub const SIZEOF_HEAP_TUPLE_HEADER: usize = 31;
const _: () = assert!(SIZEOF_HEAP_TUPLE_HEADER == T_HOFF + 1);

/// Most columns a table may have (PostgreSQL's `MaxHeapAttributeNumber`).
pub const MAX_HEAP_ATTRIBUTE_NUMBER: usize = 1600;
/// Largest tuple that fits on an empty heap page.
pub const MAX_HEAP_TUPLE_SIZE: usize = BLCKSZ - maxalign(SIZE_OF_PAGE_HEADER + ITEM_ID_SIZE);
/// Most tuples (of zero columns) one heap page can hold.
pub const MAX_HEAP_TUPLES_PER_PAGE: usize =
    (BLCKSZ - SIZE_OF_PAGE_HEADER) / (maxalign(SIZEOF_HEAP_TUPLE_HEADER) + ITEM_ID_SIZE);

// t_infomask, with PostgreSQL's values.
/// Some attribute is null (there is a null bitmap).
pub const HEAP_HASNULL: u16 = 0x0001;
/// Some attribute is variable-width.
pub const HEAP_HASVARWIDTH: u16 = 0x0002;
/// xmax is a key-share locker.
pub const HEAP_XMAX_KEYSHR_LOCK: u16 = 0x0010;
/// t_cid is a combo CID (reserved).
pub const HEAP_COMBOCID: u16 = 0x0020;
/// xmax is an exclusive locker.
pub const HEAP_XMAX_EXCL_LOCK: u16 = 0x0040;
/// xmax, if valid, is only a locker, not a deleter.
pub const HEAP_XMAX_LOCK_ONLY: u16 = 0x0080;
/// xmax is a shared locker.
pub const HEAP_XMAX_SHR_LOCK: u16 = HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK;
pub const HEAP_LOCK_MASK: u16 = HEAP_XMAX_SHR_LOCK | HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK;
/// Hint: xmin is known committed.
pub const HEAP_XMIN_COMMITTED: u16 = 0x0100;
/// Hint: xmin is known aborted.
pub const HEAP_XMIN_INVALID: u16 = 0x0200;
/// Hint: xmax is known committed.
pub const HEAP_XMAX_COMMITTED: u16 = 0x0400;
/// xmax is invalid or aborted: the row is not deleted or locked.
pub const HEAP_XMAX_INVALID: u16 = 0x0800;
/// xmax is a MultiXactId (reserved).
pub const HEAP_XMAX_IS_MULTI: u16 = 0x1000;
/// This is an UPDATEd version of a row.
pub const HEAP_UPDATED: u16 = 0x2000;
/// The transaction-status bits (everything but the format bits).
pub const HEAP_XACT_MASK: u16 = 0xFFF0;

// t_infomask2.
/// Number of attributes.
pub const HEAP_NATTS_MASK: u16 = 0x07FF;
/// The update or delete changed key columns.
pub const HEAP_KEYS_UPDATED: u16 = 0x2000;
/// The row was HOT-updated (its new version is on the same page, unindexed).
pub const HEAP_HOT_UPDATED: u16 = 0x4000;
/// This is a heap-only (HOT) tuple.
pub const HEAP_ONLY_TUPLE: u16 = 0x8000;
pub const HEAP2_XACT_MASK: u16 = 0xE000;

/// Why a tuple could not be formed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TupleError {
    /// The bytes are not a valid tuple (for this descriptor): `XX001`.
    #[error("corrupted heap tuple: {0}")]
    Corrupt(String),
    /// Caller bug: one value per attribute is required.
    #[error("tuple descriptor has {expected} attributes but {got} values were given")]
    WrongValueCount { expected: usize, got: usize },
    /// Caller bug: the value's variant does not fit the column type.
    #[error("value for attribute {attnum} does not match its type {type_oid}")]
    TypeMismatch { attnum: usize, type_oid: Oid },
    /// The executor should have checked first (`23502`).
    #[error("null value in attribute {attnum} violates not-null constraint")]
    NullInNotNullColumn { attnum: usize },
    #[error("unsupported column type {type_oid} (typlen {typlen}, typalign '{typalign}')")]
    UnsupportedType {
        type_oid: Oid,
        typlen: i16,
        typalign: char,
    },
    #[error("tables can have at most {max} columns", max = MAX_HEAP_ATTRIBUTE_NUMBER)]
    TooManyColumns { natts: usize },
    #[error("value of attribute {attnum} is too long ({len} bytes)")]
    ValueTooLong { attnum: usize, len: usize },
}

impl From<TupleError> for PgError {
    fn from(e: TupleError) -> PgError {
        let code = match &e {
            TupleError::Corrupt(_) => SqlState::DATA_CORRUPTED,
            TupleError::NullInNotNullColumn { .. } => SqlState::NOT_NULL_VIOLATION,
            TupleError::UnsupportedType { .. } => SqlState::FEATURE_NOT_SUPPORTED,
            TupleError::TooManyColumns { .. } => SqlState::TOO_MANY_COLUMNS,
            TupleError::ValueTooLong { .. } => SqlState::PROGRAM_LIMIT_EXCEEDED,
            TupleError::WrongValueCount { .. } | TupleError::TypeMismatch { .. } => {
                SqlState::INTERNAL_ERROR
            }
        };
        PgError::new(code, e.to_string())
    }
}

/// A tuple's address: block and line pointer (PostgreSQL's ItemPointer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemPointer {
    pub block: BlockNumber,
    pub offset: OffsetNumber,
}

impl ItemPointer {
    pub const INVALID: ItemPointer = ItemPointer {
        block: BlockNumber::INVALID,
        offset: OffsetNumber::INVALID,
    };

    pub fn new(block: BlockNumber, offset: OffsetNumber) -> ItemPointer {
        ItemPointer { block, offset }
    }

    pub fn is_valid(self) -> bool {
        self.block != BlockNumber::INVALID && self.offset.is_valid()
    }
}

impl std::fmt::Display for ItemPointer {
    /// As a `ctid` prints: `(0,1)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({},{})", self.block.0, self.offset.0)
    }
}

/// Bytes of null bitmap for `natts` attributes.
pub fn bitmap_len(natts: usize) -> usize {
    natts.div_ceil(8)
}

/// The fixed header of a tuple, decoded. Change a field on a page with
/// `read`, modify, `write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapTupleHeader {
    /// Inserting transaction.
    pub xmin: Xid,
    /// Deleting or locking transaction (meaningful unless `HEAP_XMAX_INVALID`).
    pub xmax: Xid,
    /// Command id within xmin's (or xmax's) transaction.
    pub cid: u32,
    /// This tuple, or the next version of the row after an update.
    pub ctid: ItemPointer,
    pub infomask2: u16,
    pub infomask: u16,
    /// Offset of the first value: header + bitmap, MAXALIGN'ed.
    pub hoff: u8,
}

fn le<const N: usize>(tuple: &[u8], at: usize) -> [u8; N] {
    let mut b = [0u8; N];
    b.copy_from_slice(&tuple[at..at + N]);
    b
}

impl HeapTupleHeader {
    /// Decode and check the header of `tuple` (invariant 1).
    pub fn read(tuple: &[u8]) -> Result<HeapTupleHeader, TupleError> {
        if tuple.len() < SIZEOF_HEAP_TUPLE_HEADER {
            return Err(TupleError::Corrupt(format!(
                "tuple of {} bytes is shorter than its header",
                tuple.len()
            )));
        }
        let h = HeapTupleHeader {
            xmin: Xid(u64::from_le_bytes(le(tuple, T_XMIN))),
            xmax: Xid(u64::from_le_bytes(le(tuple, T_XMAX))),
            cid: u32::from_le_bytes(le(tuple, T_CID)),
            ctid: ItemPointer {
                block: BlockNumber(u32::from_le_bytes(le(tuple, T_CTID_BLOCK))),
                offset: OffsetNumber(u16::from_le_bytes(le(tuple, T_CTID_OFFSET))),
            },
            infomask2: u16::from_le_bytes(le(tuple, T_INFOMASK2)),
            infomask: u16::from_le_bytes(le(tuple, T_INFOMASK)),
            hoff: tuple[T_HOFF],
        };
        let hoff = h.hoff as usize;
        let min_hoff = SIZEOF_HEAP_TUPLE_HEADER
            + if h.has_nulls() {
                bitmap_len(h.natts())
            } else {
                0
            };
        if hoff < min_hoff || hoff != maxalign(hoff) || hoff > tuple.len() {
            return Err(TupleError::Corrupt(format!(
                "t_hoff {hoff} invalid for {} attributes and {} bytes",
                h.natts(),
                tuple.len()
            )));
        }
        if h.natts() > MAX_HEAP_ATTRIBUTE_NUMBER {
            return Err(TupleError::Corrupt(format!("{} attributes", h.natts())));
        }
        Ok(h)
    }

    /// Store the fixed header into the first 31 bytes of `tuple` (the
    /// bitmap and data are left alone).
    pub fn write(&self, tuple: &mut [u8]) -> Result<(), TupleError> {
        let Some(head) = tuple.get_mut(..SIZEOF_HEAP_TUPLE_HEADER) else {
            return Err(TupleError::Corrupt(format!(
                "tuple of {} bytes is shorter than its header",
                tuple.len()
            )));
        };
        head[T_XMIN..T_XMIN + 8].copy_from_slice(&self.xmin.0.to_le_bytes());
        head[T_XMAX..T_XMAX + 8].copy_from_slice(&self.xmax.0.to_le_bytes());
        head[T_CID..T_CID + 4].copy_from_slice(&self.cid.to_le_bytes());
        head[T_CTID_BLOCK..T_CTID_BLOCK + 4].copy_from_slice(&self.ctid.block.0.to_le_bytes());
        head[T_CTID_OFFSET..T_CTID_OFFSET + 2].copy_from_slice(&self.ctid.offset.0.to_le_bytes());
        head[T_INFOMASK2..T_INFOMASK2 + 2].copy_from_slice(&self.infomask2.to_le_bytes());
        head[T_INFOMASK..T_INFOMASK + 2].copy_from_slice(&self.infomask.to_le_bytes());
        head[T_HOFF] = self.hoff;
        Ok(())
    }

    /// OR `bits` into the stored `t_infomask` in place (setting hint bits
    /// without decoding the whole header).
    pub fn set_hint_bits(tuple: &mut [u8], bits: u16) -> Result<(), TupleError> {
        let mut h = HeapTupleHeader::read(tuple)?;
        h.infomask |= bits;
        tuple[T_INFOMASK..T_INFOMASK + 2].copy_from_slice(&h.infomask.to_le_bytes());
        Ok(())
    }

    pub fn natts(&self) -> usize {
        (self.infomask2 & HEAP_NATTS_MASK) as usize
    }

    pub fn set_natts(&mut self, natts: u16) {
        self.infomask2 = (self.infomask2 & !HEAP_NATTS_MASK) | (natts & HEAP_NATTS_MASK);
    }

    pub fn has_nulls(&self) -> bool {
        self.infomask & HEAP_HASNULL != 0
    }

    pub fn has_varwidth(&self) -> bool {
        self.infomask & HEAP_HASVARWIDTH != 0
    }

    pub fn xmin_committed(&self) -> bool {
        self.infomask & HEAP_XMIN_COMMITTED != 0
    }

    pub fn xmin_invalid(&self) -> bool {
        self.infomask & HEAP_XMIN_INVALID != 0
    }

    pub fn xmax_committed(&self) -> bool {
        self.infomask & HEAP_XMAX_COMMITTED != 0
    }

    pub fn xmax_invalid(&self) -> bool {
        self.infomask & HEAP_XMAX_INVALID != 0
    }

    /// xmax only locks the row (PostgreSQL's `HEAP_XMAX_IS_LOCKED_ONLY`).
    pub fn xmax_is_locked_only(&self) -> bool {
        self.infomask & HEAP_XMAX_LOCK_ONLY != 0
            || self.infomask & (HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK) == HEAP_XMAX_EXCL_LOCK
    }

    pub fn is_updated(&self) -> bool {
        self.infomask & HEAP_UPDATED != 0
    }

    pub fn is_hot_updated(&self) -> bool {
        self.infomask2 & HEAP_HOT_UPDATED != 0
    }

    pub fn is_heap_only(&self) -> bool {
        self.infomask2 & HEAP_ONLY_TUPLE != 0
    }

    pub fn keys_updated(&self) -> bool {
        self.infomask2 & HEAP_KEYS_UPDATED != 0
    }
}

/// Build the bytes of a tuple holding `values` (one per attribute of
/// `desc`, `None` for NULL), with a header as invariant 2 describes.
pub fn form_tuple(desc: &TupleDesc, values: &[Option<Datum>]) -> Result<Vec<u8>, TupleError> {
    if values.len() != desc.natts() {
        return Err(TupleError::WrongValueCount {
            expected: desc.natts(),
            got: values.len(),
        });
    }
    let has_nulls = values.iter().any(Option::is_none);
    let bitmap = if has_nulls {
        bitmap_len(values.len())
    } else {
        0
    };
    let hoff = maxalign(SIZEOF_HEAP_TUPLE_HEADER + bitmap);
    let mut tuple = vec![0u8; hoff];
    let mut infomask = if has_nulls { HEAP_HASNULL } else { 0 };
    for (i, (attr, value)) in desc.attrs().iter().zip(values).enumerate() {
        match value {
            None if attr.not_null => return Err(TupleError::NullInNotNullColumn { attnum: i + 1 }),
            None => {}
            Some(v) => {
                if has_nulls {
                    tuple[SIZEOF_HEAP_TUPLE_HEADER + i / 8] |= 1 << (i % 8);
                }
                if write_datum(&mut tuple, i + 1, attr, v)? {
                    infomask |= HEAP_HASVARWIDTH;
                }
            }
        }
    }
    let mut header = HeapTupleHeader {
        xmin: Xid::INVALID,
        xmax: Xid::INVALID,
        cid: 0,
        ctid: ItemPointer::INVALID,
        infomask2: 0,
        infomask,
        hoff: hoff as u8,
    };
    // TupleDesc::new caps natts at 1600, which fits the 11-bit field.
    header.set_natts(values.len() as u16);
    header.write(&mut tuple)?;
    Ok(tuple)
}

/// Decode every attribute of `desc` from `tuple`. Attributes past the
/// tuple's own `natts` are NULL.
pub fn deform_tuple(desc: &TupleDesc, tuple: &[u8]) -> Result<Vec<Option<Datum>>, TupleError> {
    let h = HeapTupleHeader::read(tuple)?;
    let natts = h.natts();
    if natts > desc.natts() {
        return Err(TupleError::Corrupt(format!(
            "tuple has {natts} attributes but the descriptor {}",
            desc.natts()
        )));
    }
    let bitmap = if h.has_nulls() {
        tuple.get(SIZEOF_HEAP_TUPLE_HEADER..SIZEOF_HEAP_TUPLE_HEADER + bitmap_len(natts))
    } else {
        None
    };
    let mut off = h.hoff as usize;
    let mut values = Vec::with_capacity(desc.natts());
    for (i, attr) in desc.attrs().iter().enumerate() {
        let is_null = i >= natts || bitmap.is_some_and(|b| b[i / 8] & (1 << (i % 8)) == 0);
        if is_null {
            values.push(None);
            continue;
        }
        let (datum, end) = read_datum(tuple, off, i + 1, attr)?;
        values.push(Some(datum));
        off = end;
    }
    if off != tuple.len() {
        return Err(TupleError::Corrupt(format!(
            "data ends at byte {off} but the tuple has {} bytes",
            tuple.len()
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
