//! Index tuples: PostgreSQL's `IndexTupleData` with nbtree's pivot-tuple
//! conventions (`itup.h`, `nbtree.h`'s `BTreeTuple*` macros), little-endian.
//!
//! ```text
//!  0        4        6        8                     data offset
//!  +--------+--------+--------+---------------------+-----------------------+
//!  | t_blk  | t_off  | t_info | null bitmap, 4 B,   | key values, each       |
//!  |  u32   |  u16   |  u16   | only with HASNULLS  | aligned to typalign    |
//!  +--------+--------+--------+---------------------+-----------------------+
//!   t_info: bits 0..13 size in bytes | 0x2000 PIVOT | 0x4000 VARWIDTH | 0x8000 HASNULLS
//! ```
//!
//! The data offset is 8, or 16 with a null bitmap (PostgreSQL's
//! `IndexInfoFindDataOffset`: the bitmap has room for [`INDEX_MAX_KEYS`]
//! bits). Values use the heap's encoding (`heap::datum`), aligned relative
//! to the tuple's start, which is MAXALIGN'ed on the page. A bitmap bit is
//! set when the attribute is **not** null.
//!
//! Two kinds of tuple:
//!
//! - **Leaf tuples** (PIVOT clear): every key column, and `t_blk`/`t_off`
//!   are the heap TID the entry points to. The size is exactly the end of
//!   the last value.
//! - **Pivot tuples** (PIVOT set): high keys, and every item of an internal
//!   page. `t_blk` is the downlink (the child's block; [`BlockNumber::INVALID`]
//!   in a high key). `t_off` holds the number of key attributes kept (bits
//!   0..12; suffix truncation drops trailing ones, which then compare as
//!   minus infinity) and 0x1000 when a heap TID is kept: 6 bytes (u32 block,
//!   u16 offset) right after the MAXALIGN'ed end of the values. A pivot
//!   without a heap TID has minus infinity there. The first item of an
//!   internal page keeps no attribute at all ("minus infinity").
//!
//! # Invariants
//!
//! 1. A tuple's size field equals its length on the page (`lp_len`).
//! 2. Decoding never reads outside the tuple; a bad tuple is `XX001`.
//! 3. [`BT_MAX_ITEM_BYTES`] bounds every leaf tuple, so a pivot made from
//!    it (at most 8 bytes larger) still lets any page split in two.

use std::cmp::Ordering;

use pgerror::{PgError, SqlState};

use super::BtreeIndex;
use crate::heap::datum::{read_datum, write_datum, Datum};
use crate::heap::tuple::ItemPointer;
use crate::page::{maxalign, OffsetNumber, ITEM_ID_SIZE, SIZE_OF_PAGE_HEADER};
use crate::types::{BlockNumber, BLCKSZ};

/// Most key columns an index may have (PostgreSQL's `INDEX_MAX_KEYS`).
pub const INDEX_MAX_KEYS: usize = 32;
/// Bytes of the fixed header.
pub const INDEX_TUPLE_HEADER_BYTES: usize = 8;
const NULL_BITMAP_BYTES: usize = INDEX_MAX_KEYS / 8;

const INDEX_SIZE_MASK: u16 = 0x1FFF;
const INDEX_PIVOT: u16 = 0x2000;
const INDEX_VAR_MASK: u16 = 0x4000;
const INDEX_NULL_MASK: u16 = 0x8000;
const BT_OFFSET_MASK: u16 = 0x0FFF;
const BT_PIVOT_HEAP_TID_ATTR: u16 = 0x1000;
const HEAP_TID_BYTES: usize = 6;

/// The largest leaf tuple (PostgreSQL's `BTMaxItemSize` for version 4):
/// a third of a page, less room for the heap TID a pivot may append.
pub const BT_MAX_ITEM_BYTES: usize = (BLCKSZ
    - maxalign(SIZE_OF_PAGE_HEADER + 3 * ITEM_ID_SIZE)
    - maxalign(super::page::BT_OPAQUE_BYTES))
    / 3
    / 8
    * 8
    - maxalign(HEAP_TID_BYTES);

fn corrupt(what: impl std::fmt::Display) -> PgError {
    PgError::new(
        SqlState::DATA_CORRUPTED,
        format!("corrupted index tuple: {what}"),
    )
}

/// A decoded view of one index tuple's bytes.
#[derive(Clone, Copy, Debug)]
pub struct IndexTuple<'t> {
    bytes: &'t [u8],
}

impl<'t> IndexTuple<'t> {
    /// Check the header against the bytes (invariants 1, 2).
    pub fn parse(bytes: &'t [u8]) -> Result<IndexTuple<'t>, PgError> {
        if bytes.len() < INDEX_TUPLE_HEADER_BYTES {
            return Err(corrupt(format!("{} bytes", bytes.len())));
        }
        let t = IndexTuple { bytes };
        let size = usize::from(t.info() & INDEX_SIZE_MASK);
        if size != bytes.len() || t.data_offset() > size {
            return Err(corrupt(format!(
                "size {size} for an item of {} bytes",
                bytes.len()
            )));
        }
        if t.is_pivot() && t.pivot_has_heap_tid() && size < t.data_offset() + HEAP_TID_BYTES {
            return Err(corrupt("pivot too short for its heap TID"));
        }
        Ok(t)
    }

    fn t_blk(&self) -> u32 {
        u32::from_le_bytes([self.bytes[0], self.bytes[1], self.bytes[2], self.bytes[3]])
    }

    fn t_off(&self) -> u16 {
        u16::from_le_bytes([self.bytes[4], self.bytes[5]])
    }

    fn info(&self) -> u16 {
        u16::from_le_bytes([self.bytes[6], self.bytes[7]])
    }

    pub fn is_pivot(&self) -> bool {
        self.info() & INDEX_PIVOT != 0
    }

    fn has_nulls(&self) -> bool {
        self.info() & INDEX_NULL_MASK != 0
    }

    fn pivot_has_heap_tid(&self) -> bool {
        self.t_off() & BT_PIVOT_HEAP_TID_ATTR != 0
    }

    fn data_offset(&self) -> usize {
        if self.has_nulls() {
            maxalign(INDEX_TUPLE_HEADER_BYTES + NULL_BITMAP_BYTES)
        } else {
            INDEX_TUPLE_HEADER_BYTES
        }
    }

    /// Key attributes present: all of them in a leaf tuple, the kept
    /// prefix in a pivot.
    pub fn natts(&self, index_natts: usize) -> usize {
        if self.is_pivot() {
            usize::from(self.t_off() & BT_OFFSET_MASK)
        } else {
            index_natts
        }
    }

    /// The heap TID: the entry's target in a leaf tuple; in a pivot, the
    /// kept tiebreaker, or `None` for minus infinity.
    pub fn heap_tid(&self) -> Option<ItemPointer> {
        let read = |at: usize| {
            let b = &self.bytes[at..at + HEAP_TID_BYTES];
            ItemPointer::new(
                BlockNumber(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                OffsetNumber(u16::from_le_bytes([b[4], b[5]])),
            )
        };
        if !self.is_pivot() {
            Some(read(0))
        } else if self.pivot_has_heap_tid() {
            Some(read(self.bytes.len() - HEAP_TID_BYTES))
        } else {
            None
        }
    }

    /// A pivot's downlink (the child block).
    pub fn downlink(&self) -> BlockNumber {
        BlockNumber(self.t_blk())
    }

    /// The present key attributes, decoded in order.
    pub fn values<'i>(&self, index: &'i BtreeIndex) -> Values<'t, 'i> {
        let natts = self.natts(index.natts());
        let end = if self.is_pivot() && self.pivot_has_heap_tid() {
            self.bytes.len() - HEAP_TID_BYTES
        } else {
            self.bytes.len()
        };
        Values {
            bytes: self.bytes,
            end,
            index,
            bitmap: self.has_nulls().then(|| {
                let mut b = [0u8; NULL_BITMAP_BYTES];
                b.copy_from_slice(
                    &self.bytes
                        [INDEX_TUPLE_HEADER_BYTES..INDEX_TUPLE_HEADER_BYTES + NULL_BITMAP_BYTES],
                );
                b
            }),
            next: 0,
            natts,
            off: self.data_offset(),
        }
    }

    /// Every present key attribute, decoded.
    pub fn decode(&self, index: &BtreeIndex) -> Result<Vec<Option<Datum>>, PgError> {
        self.values(index).collect()
    }
}

/// The key attributes of one tuple, decoded one at a time (so that a
/// comparison stops decoding at the first difference).
pub struct Values<'t, 'i> {
    bytes: &'t [u8],
    end: usize,
    index: &'i BtreeIndex,
    bitmap: Option<[u8; NULL_BITMAP_BYTES]>,
    next: usize,
    natts: usize,
    off: usize,
}

impl Iterator for Values<'_, '_> {
    type Item = Result<Option<Datum>, PgError>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next;
        if i >= self.natts {
            return None;
        }
        self.next += 1;
        let Some(attr) = self.index.desc().attrs().get(i) else {
            self.natts = 0;
            return Some(Err(corrupt(format!(
                "{} key attributes in an index of {}",
                self.natts,
                self.index.natts()
            ))));
        };
        if self.bitmap.is_some_and(|b| b[i / 8] & (1 << (i % 8)) == 0) {
            return Some(Ok(None));
        }
        match read_datum(&self.bytes[..self.end], self.off, i + 1, attr) {
            Ok((d, next_off)) => {
                self.off = next_off;
                Some(Ok(Some(d)))
            }
            Err(e) => {
                self.natts = 0;
                Some(Err(corrupt(e)))
            }
        }
    }
}

/// What goes in the header besides the values.
enum Kind {
    Leaf(ItemPointer),
    Pivot {
        downlink: BlockNumber,
        heap_tid: Option<ItemPointer>,
    },
}

/// Encode `values` (the first `values.len()` key columns) as a tuple.
fn form(index: &BtreeIndex, values: &[Option<Datum>], kind: Kind) -> Result<Vec<u8>, PgError> {
    if values.len() > index.natts() {
        return Err(PgError::internal(format!(
            "{} values for an index of {} key columns",
            values.len(),
            index.natts()
        )));
    }
    let has_nulls = values.iter().any(Option::is_none);
    let data_off = if has_nulls {
        maxalign(INDEX_TUPLE_HEADER_BYTES + NULL_BITMAP_BYTES)
    } else {
        INDEX_TUPLE_HEADER_BYTES
    };
    let mut t = vec![0u8; data_off];
    let mut info = 0u16;
    for (i, (attr, v)) in index.desc().attrs().iter().zip(values).enumerate() {
        let Some(v) = v else { continue };
        if has_nulls {
            t[INDEX_TUPLE_HEADER_BYTES + i / 8] |= 1 << (i % 8);
        }
        if write_datum(&mut t, i + 1, attr, v).map_err(PgError::from)? {
            info |= INDEX_VAR_MASK;
        }
    }
    if has_nulls {
        info |= INDEX_NULL_MASK;
    }
    let (blk, off) = match kind {
        Kind::Leaf(tid) => (tid.block.0, tid.offset.0),
        Kind::Pivot { downlink, heap_tid } => {
            info |= INDEX_PIVOT;
            let mut off = values.len() as u16;
            if let Some(tid) = heap_tid {
                off |= BT_PIVOT_HEAP_TID_ATTR;
                t.resize(maxalign(t.len()), 0);
                t.extend_from_slice(&tid.block.0.to_le_bytes());
                t.extend_from_slice(&tid.offset.0.to_le_bytes());
            }
            (downlink.0, off)
        }
    };
    if t.len() > usize::from(INDEX_SIZE_MASK) {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("index row requires {} bytes, maximum size is 8191", t.len()),
        ));
    }
    info |= t.len() as u16;
    t[0..4].copy_from_slice(&blk.to_le_bytes());
    t[4..6].copy_from_slice(&off.to_le_bytes());
    t[6..8].copy_from_slice(&info.to_le_bytes());
    Ok(t)
}

/// The leaf tuple for `values` (one per key column) pointing at `tid`.
pub fn form_leaf_tuple(
    index: &BtreeIndex,
    values: &[Option<Datum>],
    tid: ItemPointer,
) -> Result<Vec<u8>, PgError> {
    if values.len() != index.natts() {
        return Err(PgError::internal(format!(
            "{} values for an index of {} key columns",
            values.len(),
            index.natts()
        )));
    }
    form(index, values, Kind::Leaf(tid))
}

/// A pivot holding a key prefix, an optional heap TID, and a downlink.
pub fn form_pivot(
    index: &BtreeIndex,
    values: &[Option<Datum>],
    heap_tid: Option<ItemPointer>,
    downlink: BlockNumber,
) -> Result<Vec<u8>, PgError> {
    form(index, values, Kind::Pivot { downlink, heap_tid })
}

/// The first item of an internal page: no key, only the downlink.
pub fn minus_infinity(downlink: BlockNumber) -> Vec<u8> {
    let mut t = vec![0u8; INDEX_TUPLE_HEADER_BYTES];
    t[0..4].copy_from_slice(&downlink.0.to_le_bytes());
    let info = INDEX_PIVOT | INDEX_TUPLE_HEADER_BYTES as u16;
    t[6..8].copy_from_slice(&info.to_le_bytes());
    t
}

/// A copy of pivot `tuple` pointing at `downlink`.
pub fn with_downlink(tuple: &[u8], downlink: BlockNumber) -> Vec<u8> {
    let mut t = tuple.to_vec();
    t[0..4].copy_from_slice(&downlink.0.to_le_bytes());
    t
}

/// The high key for the left half of a leaf split between `lastleft` and
/// `firstright` (PostgreSQL's `_bt_truncate`): the shortest prefix of
/// `firstright`'s key that is still greater than `lastleft`'s; when the
/// keys are equal, all of them and `lastleft`'s heap TID. Every item on
/// the left is then <= the high key and every item on the right > it.
pub fn truncate(
    index: &BtreeIndex,
    lastleft: &[u8],
    firstright: &[u8],
) -> Result<Vec<u8>, PgError> {
    let left = IndexTuple::parse(lastleft)?.decode(index)?;
    let right = IndexTuple::parse(firstright)?.decode(index)?;
    let same = super::compare::equal_prefix_len(index, &left, &right);
    if same < right.len() {
        form_pivot(index, &right[..=same], None, BlockNumber::INVALID)
    } else {
        let tid = IndexTuple::parse(lastleft)?.heap_tid();
        form_pivot(index, &right, tid, BlockNumber::INVALID)
    }
}

/// Compare heap TIDs as the tiebreaker column (block, then offset).
pub fn compare_tids(a: ItemPointer, b: ItemPointer) -> Ordering {
    (a.block.0, a.offset.0).cmp(&(b.block.0, b.offset.0))
}
