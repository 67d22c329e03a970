//! The Heap resource manager's WAL records (PostgreSQL's `heapam_xlog.h`),
//! the page changes they describe, and their redo (`heap_redo`).
//!
//! Backends change a heap page and log it through this file
//! ([`log_heap_change`]); the startup process replays the records with
//! [`heap_redo`]. **One function makes each change**, called by both: the
//! operation in `heapam.rs` and its redo here ([`put_tuple`],
//! [`mark_tuple_replaced`]). Given the same page before, they produce the
//! same bytes after, so a replayed page equals the page that was logged,
//! byte for byte (the checksum field aside: it is set on write copies only).
//!
//! # Record formats
//!
//! Every record: rmgr Heap (10), header xid = the changing transaction.
//! `info` = operation | flags; all integers little-endian.
//!
//! ```text
//!  op 0x00 INSERT   (| 0x80 INIT_PAGE: the page is (re)initialised first)
//!    main data  xl_heap_insert   u32 cid | u16 offnum | u8 flags            7 bytes
//!    block 0    the page; WILL_INIT iff INIT_PAGE; image per rule W3
//!               data (absent when the image is there):
//!               xl_heap_header   u16 infomask2 | u16 infomask | u8 hoff     5 bytes
//!               then the tuple from byte 31 on (null bitmap, padding, values)
//!
//!  op 0x10 DELETE
//!    main data  xl_heap_delete   u64 xmax | u32 cid | u16 offnum
//!                                | u8 infobits_set | u8 flags               16 bytes
//!    block 0    the page; image per rule W3; no data
//!
//!  op 0x20 UPDATE   (| 0x80 INIT_PAGE for the new version's page)
//!    main data  xl_heap_update   u64 old_xmax | u32 cid | u16 old_offnum
//!                                | u8 old_infobits_set | u8 flags
//!                                | u16 new_offnum                           18 bytes
//!    block 0    the new version's page, data as INSERT's block 0
//!    block 1    the old version's page, only if it is another page; no data
//!
//!  op 0x50 MULTI_INSERT (| 0x80 INIT_PAGE; COPY FROM's batches)
//!    main data  xl_heap_multi_insert  u32 cid | u16 ntuples | u8 flags      7 bytes
//!    block 0    the page; WILL_INIT iff INIT_PAGE; image per rule W3
//!               data (absent when the image is there): per tuple, in the
//!               order they were put: u16 offnum | u16 length | that many
//!               bytes as INSERT's block data (xl_heap_header, the rest)
//!
//!  op 0x30 PRUNE    (VACUUM; header xid 0)
//!    main data  xl_heap_prune    u16 ndead | u16 nunused                    4 bytes
//!    block 0    the page; image per rule W3
//!               data (absent when the image is there): ndead u16 offsets
//!               made LP_DEAD, then nunused u16 offsets made LP_UNUSED
//! ```
//!
//! `infobits_set` uses PostgreSQL's `XLHL_*` bits (only `XLHL_KEYS_UPDATED`
//! is produced today: a delete changes the key). `flags` is always 0 for
//! now (PostgreSQL's `XLH_*_ALL_VISIBLE_CLEARED` etc. need a visibility
//! map). Differences from PostgreSQL: xids are 64-bit; `t_cid` is logged
//! (PostgreSQL resets it to `FirstCommandId` in redo) so that replayed
//! pages are byte-identical to the logged ones; no `new_xmax` (no
//! multixacts), no prefix/suffix compression, no HOT.
//!
//! Redo rebuilds the tuple header: xmin = the record's xid, xmax = 0, cid
//! from the main data, ctid = its own tid; infomask2, infomask and hoff from
//! `xl_heap_header`.
//!
//! PRUNE is VACUUM's one page change ([`prune_page`], `vacuum.rs`): normal
//! line pointers of dead tuples become LP_DEAD (their index entries still
//! point there) or, when the table has no index or the index entries are
//! gone, LP_UNUSED; then the page is defragmented. PostgreSQL logs the
//! first as Heap2 PRUNE and the second as Heap2 VACUUM; with no HOT chains
//! (no redirects) one record with two lists does both.
//!
//! # Rules
//!
//! 1. (W1) Mark dirty, then insert the record, then set the page LSN to the
//!    record's **end**, all under the exclusive content lock (PostgreSQL's
//!    order, `access/transam/README`): a checkpoint whose redo pointer is
//!    after the record then finds the buffer dirty and writes it; nobody can
//!    write the page between the change and the LSN (a write needs the
//!    content lock shared).
//! 2. (W2) The image of a page is taken after the change (PostgreSQL's
//!    `XLogRecordAssemble` copies the modified page), with the hole between
//!    `pd_lower` and `pd_upper` left out; with an image the block's data is
//!    not logged (PostgreSQL's rule without `REGBUF_KEEP_DATA`).
//! 3. (W3) Full-page writes: a block gets an image iff it is not WILL_INIT
//!    and its page LSN <= the redo pointer (its first change since the
//!    checkpoint began). The record goes in with `insert_checked(record,
//!    fpw_lsn)`, `fpw_lsn` the smallest LSN of the pages logged *without*
//!    an image; if a checkpoint moved the redo pointer to or past it
//!    meanwhile, the record is rebuilt with the images now required.
//! 4. (W4) INIT_PAGE is logged iff the page has never been WAL-logged (LSN
//!    0) and the record's new tuples are its only items (MULTI_INSERT: at
//!    offsets 1..=ntuples); redo then re-initialises the page instead of
//!    reading it, so the page needs no image.
//! 5. (W5) Redo of a block: an image is restored whatever the page holds; a
//!    WILL_INIT block is re-initialised; otherwise the change is applied
//!    only if the page LSN < the record's end. Every block redone gets LSN
//!    = end and is marked dirty. Replaying a record twice changes nothing.
//!
//! # Locking
//!
//! Redo takes each block's content lock exclusively, one block at a time
//! (the old page of an update, released, then the new one): replay runs
//! alone, with no concurrent readers yet (no hot standby).
//!
//! # Crash safety
//!
//! A torn write of a heap page (some sectors new, some old) fails its
//! checksum and cannot be patched by a record that only sets an xmax or adds
//! a tuple. W3 guarantees that the first record touching a page after the
//! checkpoint's redo pointer carries the whole page, so replay, which starts
//! at that pointer, first restores a complete copy and then applies the
//! later changes (W5). A page first created after the redo pointer is
//! rebuilt from WILL_INIT (W4). A record whose block lies beyond the end of
//! the file extends it with zero pages first (PostgreSQL's
//! `XLogReadBufferExtended`); a normal (no image, no init) block that does
//! not exist, or a relation file that is gone, belongs to a relation dropped
//! or truncated later in the WAL and is skipped with a WARNING (PostgreSQL
//! remembers such pages and PANICs if they are still missing at the end of
//! recovery; that check belongs to the recovery driver).

use pgerror::{PgError, SqlState};

use crate::buffer::{BlockStorage, BufferManager, ExclusiveContentGuard};
use crate::clog::WalFlush;
use crate::heap::tuple::{
    HeapTupleHeader, ItemPointer, HEAP_HOT_UPDATED, HEAP_KEYS_UPDATED, HEAP_LOCK_MASK,
    HEAP_XMAX_COMMITTED, HEAP_XMAX_EXCL_LOCK, HEAP_XMAX_INVALID, HEAP_XMAX_IS_MULTI,
    HEAP_XMAX_KEYSHR_LOCK, HEAP_XMAX_LOCK_ONLY, SIZEOF_HEAP_TUPLE_HEADER,
};
use crate::page::{LpFlags, OffsetNumber, Page};
use crate::types::{BlockNumber, ForkNumber, Lsn, RelFileLocator, Xid, BLCKSZ};
use crate::wal::{
    wal_error_to_pg, AppendedRecord, AssembledRecord, BlockFlags, BlockRef, DecodedRecord,
    PageImage, RecordBuilder, ResourceManager, SharedWal,
};

/// Operation codes (PostgreSQL's `XLOG_HEAP_*`).
pub const XLOG_HEAP_INSERT: u8 = 0x00;
pub const XLOG_HEAP_DELETE: u8 = 0x10;
pub const XLOG_HEAP_UPDATE: u8 = 0x20;
pub const XLOG_HEAP_PRUNE: u8 = 0x30;
/// Several new tuples on one page (PostgreSQL logs this as Heap2's
/// `XLOG_HEAP2_MULTI_INSERT`, also 0x50).
pub const XLOG_HEAP_MULTI_INSERT: u8 = 0x50;
pub const XLOG_HEAP_OPMASK: u8 = 0x70;
/// The (new) tuple's page is initialised by the record (rule W4).
pub const XLOG_HEAP_INIT_PAGE: u8 = 0x80;

/// `infobits_set` (PostgreSQL's `XLHL_*`).
pub const XLHL_XMAX_IS_MULTI: u8 = 0x01;
pub const XLHL_XMAX_LOCK_ONLY: u8 = 0x02;
pub const XLHL_XMAX_EXCL_LOCK: u8 = 0x04;
pub const XLHL_XMAX_KEYSHR_LOCK: u8 = 0x08;
pub const XLHL_KEYS_UPDATED: u8 = 0x10;

/// Every infomask bit that describes xmax (PostgreSQL's `HEAP_XMAX_BITS`).
const HEAP_XMAX_BITS: u16 = HEAP_XMAX_COMMITTED
    | HEAP_XMAX_INVALID
    | HEAP_XMAX_IS_MULTI
    | HEAP_LOCK_MASK
    | HEAP_XMAX_LOCK_ONLY;

/// Size of `xl_heap_header`, the prefix of a logged tuple.
pub const SIZE_OF_HEAP_HEADER: usize = 5;

/// `xl_heap_insert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlHeapInsert {
    pub cid: u32,
    pub offnum: OffsetNumber,
    pub flags: u8,
}

/// `xl_heap_delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlHeapDelete {
    pub xmax: Xid,
    pub cid: u32,
    pub offnum: OffsetNumber,
    pub infobits_set: u8,
    pub flags: u8,
}

/// `xl_heap_update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlHeapUpdate {
    pub old_xmax: Xid,
    pub cid: u32,
    pub old_offnum: OffsetNumber,
    pub old_infobits_set: u8,
    pub flags: u8,
    pub new_offnum: OffsetNumber,
}

impl XlHeapInsert {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(7);
        v.extend_from_slice(&self.cid.to_le_bytes());
        v.extend_from_slice(&self.offnum.0.to_le_bytes());
        v.push(self.flags);
        v
    }

    pub fn decode(data: &[u8]) -> Result<XlHeapInsert, PgError> {
        let mut r = Reader::new(data, "xl_heap_insert");
        let rec = XlHeapInsert {
            cid: r.u32()?,
            offnum: OffsetNumber(r.u16()?),
            flags: r.u8()?,
        };
        r.finish()?;
        Ok(rec)
    }
}

impl XlHeapDelete {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.xmax.0.to_le_bytes());
        v.extend_from_slice(&self.cid.to_le_bytes());
        v.extend_from_slice(&self.offnum.0.to_le_bytes());
        v.push(self.infobits_set);
        v.push(self.flags);
        v
    }

    pub fn decode(data: &[u8]) -> Result<XlHeapDelete, PgError> {
        let mut r = Reader::new(data, "xl_heap_delete");
        let rec = XlHeapDelete {
            xmax: Xid(r.u64()?),
            cid: r.u32()?,
            offnum: OffsetNumber(r.u16()?),
            infobits_set: r.u8()?,
            flags: r.u8()?,
        };
        r.finish()?;
        Ok(rec)
    }
}

impl XlHeapUpdate {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(18);
        v.extend_from_slice(&self.old_xmax.0.to_le_bytes());
        v.extend_from_slice(&self.cid.to_le_bytes());
        v.extend_from_slice(&self.old_offnum.0.to_le_bytes());
        v.push(self.old_infobits_set);
        v.push(self.flags);
        v.extend_from_slice(&self.new_offnum.0.to_le_bytes());
        v
    }

    pub fn decode(data: &[u8]) -> Result<XlHeapUpdate, PgError> {
        let mut r = Reader::new(data, "xl_heap_update");
        let rec = XlHeapUpdate {
            old_xmax: Xid(r.u64()?),
            cid: r.u32()?,
            old_offnum: OffsetNumber(r.u16()?),
            old_infobits_set: r.u8()?,
            flags: r.u8()?,
            new_offnum: OffsetNumber(r.u16()?),
        };
        r.finish()?;
        Ok(rec)
    }
}

/// `xl_heap_multi_insert`: the tuples' command id and how many block 0's
/// data holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlHeapMultiInsert {
    pub cid: u32,
    pub ntuples: u16,
    pub flags: u8,
}

impl XlHeapMultiInsert {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(7);
        v.extend_from_slice(&self.cid.to_le_bytes());
        v.extend_from_slice(&self.ntuples.to_le_bytes());
        v.push(self.flags);
        v
    }

    pub fn decode(data: &[u8]) -> Result<XlHeapMultiInsert, PgError> {
        let mut r = Reader::new(data, "xl_heap_multi_insert");
        let rec = XlHeapMultiInsert {
            cid: r.u32()?,
            ntuples: r.u16()?,
            flags: r.u8()?,
        };
        r.finish()?;
        Ok(rec)
    }
}

/// Appends one tuple to a MULTI_INSERT's block data: its offset, then its
/// logged form ([`logged_tuple_data`]) with that form's length.
pub fn push_multi_insert_tuple(
    data: &mut Vec<u8>,
    offnum: OffsetNumber,
    tuple: &[u8],
) -> Result<(), PgError> {
    let len = u16::try_from(logged_tuple_len(tuple))
        .map_err(|_| PgError::internal("tuple too long for MULTI_INSERT"))?;
    data.extend_from_slice(&offnum.0.to_le_bytes());
    data.extend_from_slice(&len.to_le_bytes());
    append_logged_tuple(data, tuple)
}

/// The (offset, logged tuple) pairs of a MULTI_INSERT's block data.
fn decode_multi_insert_tuples<'d>(
    xl: &XlHeapMultiInsert,
    data: &'d [u8],
) -> Result<Vec<(OffsetNumber, &'d [u8])>, PgError> {
    let mut out = Vec::with_capacity(usize::from(xl.ntuples));
    let mut r = Reader::new(data, "MULTI_INSERT block data");
    for _ in 0..xl.ntuples {
        let off = OffsetNumber(r.u16()?);
        let len = usize::from(r.u16()?);
        let bytes = data
            .get(r.pos..r.pos + len)
            .ok_or_else(|| corrupt("MULTI_INSERT block data is truncated"))?;
        r.pos += len;
        out.push((off, bytes));
    }
    r.finish()?;
    Ok(out)
}

/// `xl_heap_prune`: how many offsets each list in block 0's data holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlHeapPrune {
    pub ndead: u16,
    pub nunused: u16,
}

impl XlHeapPrune {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4);
        v.extend_from_slice(&self.ndead.to_le_bytes());
        v.extend_from_slice(&self.nunused.to_le_bytes());
        v
    }

    pub fn decode(data: &[u8]) -> Result<XlHeapPrune, PgError> {
        let mut r = Reader::new(data, "xl_heap_prune");
        let rec = XlHeapPrune {
            ndead: r.u16()?,
            nunused: r.u16()?,
        };
        r.finish()?;
        Ok(rec)
    }
}

/// Block 0's data of a PRUNE record: the two offset lists.
pub fn prune_offsets_data(dead: &[OffsetNumber], unused: &[OffsetNumber]) -> Vec<u8> {
    dead.iter()
        .chain(unused)
        .flat_map(|o| o.0.to_le_bytes())
        .collect()
}

/// The two offset lists of a PRUNE record's block data.
fn decode_prune_offsets(
    xl: &XlHeapPrune,
    data: &[u8],
) -> Result<(Vec<OffsetNumber>, Vec<OffsetNumber>), PgError> {
    let (nd, nu) = (usize::from(xl.ndead), usize::from(xl.nunused));
    if data.len() != 2 * (nd + nu) {
        return Err(corrupt(format!(
            "PRUNE block data of {} bytes for {nd} + {nu} offsets",
            data.len()
        )));
    }
    let mut offsets = data
        .chunks_exact(2)
        .map(|c| OffsetNumber(u16::from_le_bytes([c[0], c[1]])));
    let dead = offsets.by_ref().take(nd).collect();
    Ok((dead, offsets.collect()))
}

/// VACUUM's change to a heap page (PostgreSQL's `heap_page_prune_execute`
/// and `lazy_vacuum_heap_page`): every offset in `dead`, a normal tuple,
/// becomes LP_DEAD without storage; every offset in `unused`, a normal
/// tuple or an LP_DEAD slot, becomes LP_UNUSED; then the page is
/// defragmented. Used by vacuum and by redo. On an error (an offset that
/// is not in that state, or a corrupt page) the page may be half changed:
/// vacuum applies it to a copy first.
pub fn prune_page(
    page: &mut [u8; BLCKSZ],
    dead: &[OffsetNumber],
    unused: &[OffsetNumber],
) -> Result<(), PgError> {
    let mut p = Page::new(page);
    let state =
        |p: &Page<&mut [u8; BLCKSZ]>, off: OffsetNumber| p.item_id(off).map(|lp| lp.flags());
    for &off in dead {
        if state(&p, off) != Some(LpFlags::Normal) {
            return Err(prune_bad_offset(off, "dead"));
        }
        p.set_dead(off)?;
    }
    for &off in unused {
        if !matches!(state(&p, off), Some(LpFlags::Normal | LpFlags::Dead)) {
            return Err(prune_bad_offset(off, "unused"));
        }
        p.set_unused(off)?;
    }
    p.repair_fragmentation()?;
    Ok(())
}

fn prune_bad_offset(off: OffsetNumber, to: &str) -> PgError {
    PgError::new(
        SqlState::DATA_CORRUPTED,
        format!("line pointer {off} cannot be made {to}: not a tuple"),
    )
}

/// A record that passed its CRC but cannot be replayed: a bug or an
/// incompatible format. The startup process stops (PANIC).
fn corrupt(what: impl std::fmt::Display) -> PgError {
    PgError::new(SqlState::DATA_CORRUPTED, format!("heap redo: {what}"))
}

/// Bounds-checked little-endian reads of a record's main data.
struct Reader<'d> {
    data: &'d [u8],
    pos: usize,
    what: &'static str,
}

impl<'d> Reader<'d> {
    fn new(data: &'d [u8], what: &'static str) -> Reader<'d> {
        Reader { data, pos: 0, what }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], PgError> {
        let bytes = self
            .data
            .get(self.pos..self.pos + N)
            .ok_or_else(|| corrupt(format!("{} is truncated", self.what)))?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PgError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, PgError> {
        Ok(u16::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, PgError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, PgError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    fn finish(&self) -> Result<(), PgError> {
        if self.pos != self.data.len() {
            return Err(corrupt(format!(
                "{} has {} trailing bytes",
                self.what,
                self.data.len() - self.pos
            )));
        }
        Ok(())
    }
}

/// What a logged tuple carries: `xl_heap_header` then the tuple from its
/// null bitmap on (the fixed header's xids, cid and ctid are rebuilt).
pub fn logged_tuple_data(tuple: &[u8]) -> Result<Vec<u8>, PgError> {
    let mut v = Vec::with_capacity(logged_tuple_len(tuple));
    append_logged_tuple(&mut v, tuple)?;
    Ok(v)
}

/// The length of [`logged_tuple_data`] for `tuple`.
fn logged_tuple_len(tuple: &[u8]) -> usize {
    SIZE_OF_HEAP_HEADER + tuple.len().saturating_sub(SIZEOF_HEAP_TUPLE_HEADER)
}

/// Appends [`logged_tuple_data`] of `tuple` to `out`.
fn append_logged_tuple(out: &mut Vec<u8>, tuple: &[u8]) -> Result<(), PgError> {
    let h = HeapTupleHeader::read(tuple)?;
    out.extend_from_slice(&h.infomask2.to_le_bytes());
    out.extend_from_slice(&h.infomask.to_le_bytes());
    out.push(h.hoff);
    out.extend_from_slice(&tuple[SIZEOF_HEAP_TUPLE_HEADER..]);
    Ok(())
}

/// The tuple a redo puts on the page, from the logged data.
fn rebuild_tuple(data: &[u8], xmin: Xid, cid: u32, tid: ItemPointer) -> Result<Vec<u8>, PgError> {
    if data.len() < SIZE_OF_HEAP_HEADER {
        return Err(corrupt("logged tuple shorter than xl_heap_header"));
    }
    let mut tuple = vec![0u8; SIZEOF_HEAP_TUPLE_HEADER];
    tuple.extend_from_slice(&data[SIZE_OF_HEAP_HEADER..]);
    let header = HeapTupleHeader {
        xmin,
        xmax: Xid::INVALID,
        cid,
        ctid: tid,
        infomask2: u16::from_le_bytes([data[0], data[1]]),
        infomask: u16::from_le_bytes([data[2], data[3]]),
        hoff: data[4],
    };
    header.write(&mut tuple)?;
    // The header must describe the bytes (hoff within the tuple etc.).
    HeapTupleHeader::read(&tuple).map_err(|e| corrupt(format!("logged tuple: {e}")))?;
    Ok(tuple)
}

/// Puts `tuple` on the page, at `offnum` (redo) or wherever the page puts
/// it (`None`: a free line pointer or a new one), and sets its ctid to its
/// own tid. Returns the offset number. Used by insert, update and redo.
///
/// A tuple appended after the last line pointer clears
/// `PD_HAS_FREE_LINES`: `add_item` appends only when the hint is off or
/// its search found no free slot (and then clears it), so redo, which
/// names the offset and does not search, must clear it too to give the
/// same bytes.
pub fn put_tuple(
    page: &mut [u8; BLCKSZ],
    blkno: BlockNumber,
    tuple: &[u8],
    offnum: Option<OffsetNumber>,
) -> Result<OffsetNumber, PgError> {
    let mut p = Page::new(page);
    let appended_at = OffsetNumber(p.max_offset().0 + 1);
    let off = p
        .add_item(tuple, offnum, true)?
        .ok_or_else(|| PgError::internal("failed to add tuple"))?;
    if offnum.is_some_and(|want| want != off) {
        return Err(PgError::internal(
            "failed to add tuple at its logged offset",
        ));
    }
    if off == appended_at {
        p.set_has_free_lines(false);
    }
    let item = p
        .get_item_mut(off)?
        .ok_or_else(|| PgError::internal("added tuple has no storage"))?;
    let mut h = HeapTupleHeader::read(item)?;
    h.ctid = ItemPointer::new(blkno, off);
    h.write(item)?;
    Ok(off)
}

/// Ends the life of the tuple at `offnum`: xmax, cmax, the xmax infomask
/// bits from `infobits_set`, and `ctid` (its own tid for a delete, the new
/// version's for an update); the page becomes prunable by `xmax`.
/// PostgreSQL's changes in `heap_delete`/`heap_update` and their redo.
pub fn mark_tuple_replaced(
    page: &mut [u8; BLCKSZ],
    offnum: OffsetNumber,
    xmax: Xid,
    cid: u32,
    infobits_set: u8,
    ctid: ItemPointer,
) -> Result<(), PgError> {
    let mut p = Page::new(page);
    let item = p.get_item_mut(offnum)?.ok_or_else(|| {
        PgError::new(
            SqlState::DATA_CORRUPTED,
            format!("no tuple at offset {offnum} to set xmax on"),
        )
    })?;
    let mut h = HeapTupleHeader::read(item)?;
    h.infomask &= !HEAP_XMAX_BITS;
    h.infomask2 &= !(HEAP_KEYS_UPDATED | HEAP_HOT_UPDATED);
    h.infomask |= infomask_from_infobits(infobits_set);
    if infobits_set & XLHL_KEYS_UPDATED != 0 {
        h.infomask2 |= HEAP_KEYS_UPDATED;
    }
    h.xmax = xmax;
    h.cid = cid;
    h.ctid = ctid;
    h.write(item)?;
    // PostgreSQL's PageSetPrunable: the oldest xmax that may be prunable.
    let prune = p.prune_xid();
    if !prune.is_valid() || xmax < prune {
        p.set_prune_xid(xmax);
    }
    Ok(())
}

/// PostgreSQL's `fix_infomask_from_infobits` (the infomask part).
fn infomask_from_infobits(infobits: u8) -> u16 {
    let mut mask = 0;
    if infobits & XLHL_XMAX_IS_MULTI != 0 {
        mask |= HEAP_XMAX_IS_MULTI;
    }
    if infobits & XLHL_XMAX_LOCK_ONLY != 0 {
        mask |= HEAP_XMAX_LOCK_ONLY;
    }
    if infobits & XLHL_XMAX_EXCL_LOCK != 0 {
        mask |= HEAP_XMAX_EXCL_LOCK;
    }
    if infobits & XLHL_XMAX_KEYSHR_LOCK != 0 {
        mask |= HEAP_XMAX_KEYSHR_LOCK;
    }
    mask
}

/// One page a record changes, as the logging code needs it.
pub struct LogBlock<'p> {
    pub id: u8,
    pub blkno: BlockNumber,
    /// The page after the change (rule W2).
    pub page: &'p [u8; BLCKSZ],
    /// Redo re-initialises the page (INIT_PAGE, rule W4): no image.
    pub will_init: bool,
    /// The block's data, left out when an image is logged.
    pub data: &'p [u8],
}

/// Builds the record for `blocks` as the redo pointer `redo` requires
/// (rule W3) and returns it with its `fpw_lsn`.
pub fn build_heap_record(
    rel: RelFileLocator,
    info: u8,
    xid: Xid,
    blocks: &[LogBlock<'_>],
    main_data: &[u8],
    redo: Lsn,
) -> (AssembledRecord, Lsn) {
    let mut b = RecordBuilder::begin(ResourceManager::Heap, info, xid);
    let mut fpw_lsn = Lsn::INVALID;
    for blk in blocks {
        let page = Page::new(blk.page);
        let image = !blk.will_init && page.lsn() <= redo;
        if !image && !blk.will_init && (!fpw_lsn.is_valid() || page.lsn() < fpw_lsn) {
            fpw_lsn = page.lsn();
        }
        let flags = if blk.will_init {
            BlockFlags::WILL_INIT
        } else {
            BlockFlags::NONE
        };
        b.register_block(
            blk.id,
            rel,
            ForkNumber::Main,
            blk.blkno,
            flags,
            image.then(|| PageImage {
                page: blk.page,
                hole: Some((page.lower(), page.upper())),
            }),
        );
        if !image && !blk.data.is_empty() {
            b.register_block_data(blk.id, blk.data);
        }
    }
    b.register_data(main_data);
    // A heap record holds at most a page's worth of tuples (< 8 KB plus 4
    // bytes each, under the u16 block-data limit) and two images.
    let record = b
        .finish()
        .expect("heap records are far below the size limits");
    (record, fpw_lsn)
}

/// Logs a change already made to `blocks` (rules W1-W3) and returns where
/// the record went; the caller sets each page's LSN to `end`. An error has
/// PANIC severity: the pages hold a change the WAL does not.
pub fn log_heap_change(
    wal: &SharedWal<'_>,
    rel: RelFileLocator,
    info: u8,
    xid: Xid,
    blocks: &[LogBlock<'_>],
    main_data: &[u8],
) -> Result<AppendedRecord, PgError> {
    loop {
        let (record, fpw_lsn) =
            build_heap_record(rel, info, xid, blocks, main_data, wal.redo_ptr());
        match wal.insert_checked(record, fpw_lsn) {
            Ok(Some(at)) => return Ok(at),
            // A checkpoint began since we looked at the redo pointer.
            Ok(None) => continue,
            Err(e) => return Err(wal_error_to_pg(&e)),
        }
    }
}

/// Replays one Heap record ending at `end` (rules W4, W5).
pub fn heap_redo(
    start: Lsn,
    end: Lsn,
    record: &DecodedRecord,
    buffers: &mut BufferManager<'_>,
    smgr: &mut dyn BlockStorage,
    wal: &dyn WalFlush,
) -> Result<(), PgError> {
    if record.rmgr() != ResourceManager::Heap {
        return Err(corrupt(format!(
            "record at {start} belongs to resource manager {}",
            record.rmgr()
        )));
    }
    let buffers: &BufferManager<'_> = buffers;
    let mut redo = Redo {
        buffers,
        smgr,
        wal,
        start,
        end,
    };
    match record.info() & XLOG_HEAP_OPMASK {
        XLOG_HEAP_INSERT => redo.insert(record),
        XLOG_HEAP_DELETE => redo.delete(record),
        XLOG_HEAP_UPDATE => redo.update(record),
        XLOG_HEAP_PRUNE => redo.prune(record),
        XLOG_HEAP_MULTI_INSERT => redo.multi_insert(record),
        op => Err(corrupt(format!("unknown op code {op:#04x} at {start}"))),
    }
}

/// What redo found for one block reference.
enum RedoPage<'m> {
    /// The image was restored (and the LSN set): nothing more to do.
    Restored,
    /// The page already holds this change (its LSN >= the record's end).
    AlreadyApplied,
    /// The block or the file is gone (dropped or truncated later).
    Missing,
    /// Apply the change, then [`finish`].
    NeedsRedo(ExclusiveContentGuard<'m>),
}

struct Redo<'r, 'm> {
    buffers: &'m BufferManager<'m>,
    smgr: &'r mut dyn BlockStorage,
    wal: &'r dyn WalFlush,
    start: Lsn,
    end: Lsn,
}

impl<'m> Redo<'_, 'm> {
    fn block<'d>(&self, record: &'d DecodedRecord, id: u8) -> Result<BlockRef<'d>, PgError> {
        record
            .block(id)
            .ok_or_else(|| corrupt(format!("record at {} has no block {id}", self.start)))
    }

    fn insert(&mut self, record: &DecodedRecord) -> Result<(), PgError> {
        let xl = XlHeapInsert::decode(record.main_data())?;
        let block = self.block(record, 0)?;
        let init = record.info() & XLOG_HEAP_INIT_PAGE != 0;
        if let RedoPage::NeedsRedo(mut page) = self.prepare(&block, init)? {
            self.add_logged_tuple(&mut page, &block, record.xid(), xl.cid, xl.offnum, init)?;
            finish(page, self.end);
        }
        Ok(())
    }

    fn multi_insert(&mut self, record: &DecodedRecord) -> Result<(), PgError> {
        let xl = XlHeapMultiInsert::decode(record.main_data())?;
        let block = self.block(record, 0)?;
        let init = record.info() & XLOG_HEAP_INIT_PAGE != 0;
        if let RedoPage::NeedsRedo(mut page) = self.prepare(&block, init)? {
            if init {
                Page::new(&mut *page).init(0);
            }
            let data = block
                .data()
                .ok_or_else(|| corrupt(format!("record at {} has no tuple data", self.start)))?;
            for (offnum, logged) in decode_multi_insert_tuples(&xl, data)? {
                let tid = ItemPointer::new(block.blkno, offnum);
                let tuple = rebuild_tuple(logged, record.xid(), xl.cid, tid)?;
                put_tuple(&mut page, block.blkno, &tuple, Some(offnum))?;
            }
            finish(page, self.end);
        }
        Ok(())
    }

    fn delete(&mut self, record: &DecodedRecord) -> Result<(), PgError> {
        let xl = XlHeapDelete::decode(record.main_data())?;
        let block = self.block(record, 0)?;
        if let RedoPage::NeedsRedo(mut page) = self.prepare(&block, false)? {
            let own = ItemPointer::new(block.blkno, xl.offnum);
            mark_tuple_replaced(&mut page, xl.offnum, xl.xmax, xl.cid, xl.infobits_set, own)?;
            finish(page, self.end);
        }
        Ok(())
    }

    fn prune(&mut self, record: &DecodedRecord) -> Result<(), PgError> {
        let xl = XlHeapPrune::decode(record.main_data())?;
        let block = self.block(record, 0)?;
        if let RedoPage::NeedsRedo(mut page) = self.prepare(&block, false)? {
            let data = block.data().unwrap_or(&[]);
            let (dead, unused) = decode_prune_offsets(&xl, data)?;
            prune_page(&mut page, &dead, &unused)?;
            finish(page, self.end);
        }
        Ok(())
    }

    fn update(&mut self, record: &DecodedRecord) -> Result<(), PgError> {
        let xl = XlHeapUpdate::decode(record.main_data())?;
        let init = record.info() & XLOG_HEAP_INIT_PAGE != 0;
        let new_block = self.block(record, 0)?;
        let new_tid = ItemPointer::new(new_block.blkno, xl.new_offnum);
        let mark_old = |page: &mut [u8; BLCKSZ]| {
            mark_tuple_replaced(
                page,
                xl.old_offnum,
                xl.old_xmax,
                xl.cid,
                xl.old_infobits_set,
                new_tid,
            )
        };
        let old_block = record.block(1);
        if let Some(old_block) = &old_block {
            if let RedoPage::NeedsRedo(mut page) = self.prepare(old_block, false)? {
                mark_old(&mut page)?;
                finish(page, self.end);
            }
        }
        if let RedoPage::NeedsRedo(mut page) = self.prepare(&new_block, init)? {
            if old_block.is_none() {
                if init {
                    return Err(corrupt("same-page update with INIT_PAGE"));
                }
                mark_old(&mut page)?;
            }
            self.add_logged_tuple(
                &mut page,
                &new_block,
                record.xid(),
                xl.cid,
                xl.new_offnum,
                init,
            )?;
            finish(page, self.end);
        }
        Ok(())
    }

    /// The INSERT/UPDATE new-tuple step: init the page if asked, rebuild
    /// the tuple from the block data, put it at its logged offset.
    fn add_logged_tuple(
        &self,
        page: &mut [u8; BLCKSZ],
        block: &BlockRef<'_>,
        xmin: Xid,
        cid: u32,
        offnum: OffsetNumber,
        init: bool,
    ) -> Result<(), PgError> {
        if init {
            Page::new(&mut *page).init(0);
        }
        let data = block
            .data()
            .ok_or_else(|| corrupt(format!("record at {} has no tuple data", self.start)))?;
        let tid = ItemPointer::new(block.blkno, offnum);
        let tuple = rebuild_tuple(data, xmin, cid, tid)?;
        put_tuple(page, block.blkno, &tuple, Some(offnum))?;
        Ok(())
    }

    /// PostgreSQL's `XLogReadBufferForRedoExtended` (rule W5).
    fn prepare(&mut self, block: &BlockRef<'_>, init: bool) -> Result<RedoPage<'m>, PgError> {
        if init != block.will_init {
            return Err(corrupt(format!(
                "record at {}: INIT_PAGE and WILL_INIT disagree for block {}",
                self.start, block.blkno.0
            )));
        }
        if block.has_image() || block.will_init {
            let Some(mut page) = self.zero_and_lock(block)? else {
                return Ok(RedoPage::Missing);
            };
            if !block.restore_image(&mut page) {
                return Ok(RedoPage::NeedsRedo(page));
            }
            finish(page, self.end);
            return Ok(RedoPage::Restored);
        }
        let nblocks = match self.smgr.nblocks(block.locator, block.fork) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(self.missing(block)),
            Err(e) => return Err(e.into()),
        };
        if block.blkno.0 >= nblocks {
            return Ok(self.missing(block));
        }
        let buf = self.buffers.read_buffer(
            self.smgr,
            self.wal,
            block.locator,
            block.fork,
            block.blkno,
        )?;
        let page = buf.lock_exclusive();
        if Page::new(&*page).lsn() >= self.end {
            return Ok(RedoPage::AlreadyApplied);
        }
        Ok(RedoPage::NeedsRedo(page))
    }

    /// The block, zeroed and locked, extending the file with zero pages up
    /// to it if needed. `None` if the relation file is gone.
    fn zero_and_lock(
        &mut self,
        block: &BlockRef<'_>,
    ) -> Result<Option<ExclusiveContentGuard<'m>>, PgError> {
        let (rel, fork) = (block.locator, block.fork);
        let nblocks = match self.smgr.nblocks(rel, fork) {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                self.missing(block);
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if block.blkno.0 < nblocks {
            let page = self.buffers.read_buffer_zero_and_lock(
                self.smgr,
                self.wal,
                rel,
                fork,
                block.blkno,
            )?;
            return Ok(Some(page));
        }
        loop {
            let page = self.buffers.extend_buffer(self.smgr, self.wal, rel, fork)?;
            if page.block() == block.blkno {
                return Ok(Some(page));
            }
            if page.block() > block.blkno {
                return Err(PgError::internal(format!(
                    "extending for redo passed block {}",
                    block.blkno.0
                )));
            }
        }
    }

    fn missing(&self, block: &BlockRef<'_>) -> RedoPage<'m> {
        log::warn!(
            "heap redo at {}: block {} of relation {}/{}/{} does not exist; \
             assuming the relation is dropped or truncated later in the WAL",
            self.start,
            block.blkno.0,
            block.locator.spc_oid,
            block.locator.db_oid,
            block.locator.rel_number
        );
        RedoPage::Missing
    }
}

/// The end of a block's redo: LSN = the record's end, dirty (rule W5).
fn finish(mut page: ExclusiveContentGuard<'_>, end: Lsn) {
    Page::new(&mut *page).set_lsn(end);
    page.mark_dirty();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_data_round_trips_and_rejects_bad_lengths() {
        let ins = XlHeapInsert {
            cid: 7,
            offnum: OffsetNumber(12),
            flags: 0,
        };
        assert_eq!(ins.encode().len(), 7);
        assert_eq!(XlHeapInsert::decode(&ins.encode()).unwrap(), ins);
        let del = XlHeapDelete {
            xmax: Xid(1 << 40),
            cid: 3,
            offnum: OffsetNumber(2),
            infobits_set: XLHL_KEYS_UPDATED,
            flags: 0,
        };
        assert_eq!(del.encode().len(), 16);
        assert_eq!(XlHeapDelete::decode(&del.encode()).unwrap(), del);
        let upd = XlHeapUpdate {
            old_xmax: Xid(99),
            cid: 1,
            old_offnum: OffsetNumber(5),
            old_infobits_set: 0,
            flags: 0,
            new_offnum: OffsetNumber(6),
        };
        assert_eq!(upd.encode().len(), 18);
        assert_eq!(XlHeapUpdate::decode(&upd.encode()).unwrap(), upd);

        let prune = XlHeapPrune {
            ndead: 3,
            nunused: 1,
        };
        assert_eq!(prune.encode().len(), 4);
        assert_eq!(XlHeapPrune::decode(&prune.encode()).unwrap(), prune);
        let offs = |v: &[u16]| v.iter().map(|&o| OffsetNumber(o)).collect::<Vec<_>>();
        let data = prune_offsets_data(&offs(&[2, 5, 9]), &offs(&[4]));
        assert_eq!(
            decode_prune_offsets(&prune, &data).unwrap(),
            (offs(&[2, 5, 9]), offs(&[4]))
        );
        assert!(decode_prune_offsets(&prune, &data[..6]).is_err());

        let short = XlHeapDelete::decode(&del.encode()[..15]).unwrap_err();
        assert_eq!(short.code, SqlState::DATA_CORRUPTED);
        let mut long = upd.encode();
        long.push(0);
        assert!(XlHeapUpdate::decode(&long).is_err());
    }

    #[test]
    fn a_logged_tuple_rebuilds_with_the_redo_header() {
        let mut tuple = vec![0u8; 32];
        tuple.extend_from_slice(&42i32.to_le_bytes());
        let h = HeapTupleHeader {
            xmin: Xid(10),
            xmax: Xid::INVALID,
            cid: 4,
            ctid: ItemPointer::new(BlockNumber(3), OffsetNumber(9)),
            infomask2: 1,
            infomask: HEAP_XMAX_INVALID,
            hoff: 32,
        };
        h.write(&mut tuple).unwrap();
        let data = logged_tuple_data(&tuple).unwrap();
        assert_eq!(data.len(), SIZE_OF_HEAP_HEADER + tuple.len() - 31);
        let back = rebuild_tuple(&data, Xid(10), 4, h.ctid).unwrap();
        assert_eq!(back, tuple);
        assert!(rebuild_tuple(&data[..4], Xid(10), 4, h.ctid).is_err());
        // An hoff beyond the tuple is caught.
        let mut bad = data.clone();
        bad[4] = 200;
        assert!(rebuild_tuple(&bad, Xid(10), 4, h.ctid).is_err());
    }
}
