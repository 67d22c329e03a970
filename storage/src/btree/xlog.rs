//! The Btree resource manager's WAL records (PostgreSQL's `nbtxlog.h`),
//! logging them, and their redo (`btree_redo`, registered for
//! [`ResourceManager::Btree`] in `shmem::redo_table`).
//!
//! As for the heap (`heapam_xlog.rs`), **one function makes each page
//! change** and both the operation and its redo call it
//! ([`insert_item`], [`build_split_left`], [`build_split_right`],
//! [`build_root`], [`BtMeta::write_page`], clearing
//! `BTP_INCOMPLETE_SPLIT`), so a replayed page has the bytes of the logged
//! one (the checksum field aside).
//!
//! # Record formats
//!
//! Rmgr Btree (11), header xid 0 (index records need none). Integers are
//! little-endian. "Items" in block data are framed as `u16 len | bytes`,
//! in offset order.
//!
//! ```text
//!  0x00 INSERT_LEAF    main  u16 offnum
//!                      blk 0 the leaf; data: the new tuple
//!  0x10 INSERT_UPPER   main  u16 offnum
//!                      blk 0 the internal page; data: the new downlink
//!                      blk 1 the left child of the split this completes:
//!                            BTP_INCOMPLETE_SPLIT cleared; no data
//!  0x30 SPLIT_L        main  u32 level | u16 firstright | u16 newitempos
//!  0x40 SPLIT_R              (SPLIT_L: the new item went to the left half)
//!                      blk 0 the left half (the page that was split); data:
//!                            u16 len | new high key [| the new item, SPLIT_L]
//!                      blk 1 the new right half, WILL_INIT; data: its items
//!                      blk 2 the old right sibling, if any: left link; no data
//!                      blk 3 internal splits: the child whose split this
//!                            downlink completes; flag cleared; no data
//!  0x80 VACUUM         main  u16 ndeleted
//!                      blk 0 the leaf; data: ndeleted u16 offsets, ascending,
//!                            of the items removed (the page is rebuilt
//!                            without them: `vacuum::delete_items`)
//!  0xA0 NEWROOT        main  u32 root block | u32 level
//!                      blk 0 the new root, WILL_INIT; data: its items (none
//!                            for the first root, a leaf)
//!                      blk 1 the old root (left child), level > 0 only:
//!                            flag cleared; no data
//!  blk 2 the metapage, WILL_INIT; data: u32 root | u32 level | u32 fastroot
//!                            | u32 fastlevel
//! ```
//!
//! `newitempos` and `firstright` count the *data* items of the page after
//! the insertion, from 0: the new item is number `newitempos`, items
//! `0..firstright` stay left, the rest go right. Redo of the left half
//! rebuilds it from the page before the split, the high key and (SPLIT_L)
//! the new item, as the split itself did. The metapage of an empty index,
//! and every page of a bulk build, are logged as XLOG FPI records
//! (PostgreSQL's `log_newpage`), replayed by the startup process itself.
//!
//! Differences from PostgreSQL: split offsets are 0-based data positions;
//! there is no posting-list (deduplication) data, no `INSERT_META`,
//! `DELETE` (LP_DEAD cleanup by inserters), `MARK_PAGE_HALFDEAD`,
//! `UNLINK_PAGE`, `REUSE_PAGE` or `META_CLEANUP` yet (no page deletion);
//! VACUUM carries no snapshot conflict horizon (no hot standby).
//!
//! # Rules
//!
//! 1. (X1) As heap W1: under the exclusive content locks of every page the
//!    record names, change the pages, mark them dirty, insert the record,
//!    set each page's LSN to the record's end. Between the first change and
//!    the LSN nothing may fail softly: an error there has PANIC severity
//!    ([`critical`]), because a page would hold a change the WAL lacks.
//! 2. (X2) Full-page images as heap W3: a block that is not WILL_INIT gets
//!    an image iff its LSN is at or below the redo pointer, checked again
//!    at insertion (`insert_checked`); with an image its data is left out.
//! 3. (X3) Redo (`read_block_for_redo`): an image is restored as is; a
//!    WILL_INIT block is rebuilt from the record; any other block is
//!    changed only if its LSN is below the record's end; every block redone
//!    gets LSN = end and is marked dirty. Replaying twice changes nothing.
//! 4. (X4) A block that redo finds all zeros without an image or WILL_INIT
//!    belongs to an index dropped later in the WAL (replay recreated its
//!    file empty); it is skipped with a WARNING, as heap redo does.
//!
//! # Locking
//!
//! Redo locks one block at a time, in block-id order: replay is alone.
//!
//! # Crash safety
//!
//! A split is two records (SPLIT, then INSERT_UPPER or NEWROOT); a crash
//! between them leaves `BTP_INCOMPLETE_SPLIT` on the left half, which is
//! still a correct Lehman-Yao tree (the right half is reached through the
//! right link). The next inserter that meets the flag finishes the split
//! (`insert.rs`, rule I5), as PostgreSQL does since 9.4.

use pgerror::{PgError, Severity, SqlState};

use super::page::{
    init_page, insert_item, page_items, put_items, set_page_flag, BtMeta, BtOpaque,
    BTP_HAS_GARBAGE, BTP_INCOMPLETE_SPLIT, BTP_ROOT, BTP_SPLIT_END, P_NONE,
};
use super::vacuum::{decode_offsets, delete_items};
use crate::buffer::{BlockStorage, BufferManager};
use crate::clog::WalFlush;
use crate::page::{is_new, OffsetNumber, Page};
use crate::recovery::{finish_redo_block, read_block_for_redo, RedoAction};
use crate::types::{BlockNumber, ForkNumber, Lsn, RelFileLocator, Xid, BLCKSZ};
use crate::wal::{
    wal_error_to_pg, AppendedRecord, AssembledRecord, BlockFlags, DecodedRecord, PageImage,
    RecordBuilder, ResourceManager, SharedWal,
};

pub const XLOG_BTREE_INSERT_LEAF: u8 = 0x00;
pub const XLOG_BTREE_INSERT_UPPER: u8 = 0x10;
pub const XLOG_BTREE_SPLIT_L: u8 = 0x30;
pub const XLOG_BTREE_SPLIT_R: u8 = 0x40;
pub const XLOG_BTREE_VACUUM: u8 = 0x80;
pub const XLOG_BTREE_NEWROOT: u8 = 0xA0;

/// Escalate an error inside a critical section (rule X1) to PANIC.
pub fn critical<T>(r: Result<T, PgError>) -> Result<T, PgError> {
    r.map_err(|e| e.with_severity(Severity::Panic))
}

/// A record that passed its CRC but cannot be replayed: PANIC.
fn corrupt(what: impl std::fmt::Display) -> PgError {
    PgError::new(SqlState::DATA_CORRUPTED, format!("btree redo: {what}"))
}

/// One page a record names.
pub struct LogBlock<'p> {
    pub id: u8,
    pub blkno: BlockNumber,
    /// The page after the change (its image is taken from it).
    pub page: &'p [u8; BLCKSZ],
    pub will_init: bool,
    /// Left out when an image is logged (rule X2).
    pub data: &'p [u8],
}

/// The record for `blocks` as redo pointer `redo` requires, and its
/// `fpw_lsn` (rule X2).
fn build_record(
    rel: RelFileLocator,
    info: u8,
    blocks: &[LogBlock<'_>],
    main_data: &[u8],
    redo: Lsn,
) -> (AssembledRecord, Lsn) {
    let mut b = RecordBuilder::begin(ResourceManager::Btree, info, Xid::INVALID);
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
    let record = b
        .finish()
        .expect("btree records hold at most four pages' worth of data");
    (record, fpw_lsn)
}

/// Log a change already made to `blocks` (rules X1, X2); the caller then
/// sets each page's LSN to the returned `end`. Errors are PANIC.
pub fn log_btree_change(
    wal: &SharedWal<'_>,
    rel: RelFileLocator,
    info: u8,
    blocks: &[LogBlock<'_>],
    main_data: &[u8],
) -> Result<AppendedRecord, PgError> {
    loop {
        let (record, fpw_lsn) = build_record(rel, info, blocks, main_data, wal.redo_ptr());
        match wal.insert_checked(record, fpw_lsn) {
            Ok(Some(at)) => return Ok(at),
            Ok(None) => continue,
            Err(e) => return Err(wal_error_to_pg(&e).with_severity(Severity::Panic)),
        }
    }
}

/// `u16 len | bytes` for each item.
pub fn frame_items<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        let item = item.as_ref();
        out.extend_from_slice(&(item.len() as u16).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

fn unframe_items(mut data: &[u8]) -> Result<Vec<&[u8]>, PgError> {
    let mut items = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 {
            return Err(corrupt("truncated item frame"));
        }
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let item = data
            .get(2..2 + len)
            .ok_or_else(|| corrupt("item runs past the block data"))?;
        items.push(item);
        data = &data[2 + len..];
    }
    Ok(items)
}

/// SPLIT's main data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlBtreeSplit {
    pub level: u32,
    pub firstright: u16,
    pub newitempos: u16,
}

impl XlBtreeSplit {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8);
        v.extend_from_slice(&self.level.to_le_bytes());
        v.extend_from_slice(&self.firstright.to_le_bytes());
        v.extend_from_slice(&self.newitempos.to_le_bytes());
        v
    }

    pub fn decode(d: &[u8]) -> Result<XlBtreeSplit, PgError> {
        if d.len() != 8 {
            return Err(corrupt(format!("xl_btree_split of {} bytes", d.len())));
        }
        Ok(XlBtreeSplit {
            level: u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
            firstright: u16::from_le_bytes([d[4], d[5]]),
            newitempos: u16::from_le_bytes([d[6], d[7]]),
        })
    }

    /// Whether the new item stayed on the left half (SPLIT_L).
    pub fn newitem_on_left(&self) -> bool {
        self.newitempos < self.firstright
    }
}

/// Block 0's data of a SPLIT: the new high key, then the new item if it
/// went left.
pub fn split_left_data(hikey: &[u8], newitem: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + hikey.len() + newitem.map_or(0, <[u8]>::len));
    v.extend_from_slice(&(hikey.len() as u16).to_le_bytes());
    v.extend_from_slice(hikey);
    if let Some(item) = newitem {
        v.extend_from_slice(item);
    }
    v
}

/// The meta fields NEWROOT logs for block 2.
pub fn encode_meta(m: &BtMeta) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    for x in [m.root.0, m.level, m.fastroot.0, m.fastlevel] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn decode_meta(d: &[u8]) -> Result<BtMeta, PgError> {
    if d.len() != 16 {
        return Err(corrupt(format!("xl_btree_metadata of {} bytes", d.len())));
    }
    let u = |i: usize| u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]);
    Ok(BtMeta {
        root: BlockNumber(u(0)),
        level: u(1),
        fastroot: BlockNumber(u(2)),
        fastlevel: u(3),
    })
}

/// The left half of a split (the page keeps its block): the data items
/// `left_items`, high key `hikey`, right link `right`, and the original
/// page's left link and flags, with `BTP_INCOMPLETE_SPLIT` set and the
/// root flag cleared (`_bt_split`'s `leftpage`).
pub fn build_split_left(
    orig: &BtOpaque,
    left_items: &[&[u8]],
    hikey: &[u8],
    right: BlockNumber,
) -> Result<Box<[u8; BLCKSZ]>, PgError> {
    let mut page = Box::new([0u8; BLCKSZ]);
    let opaque = BtOpaque {
        prev: orig.prev,
        next: right,
        level: orig.level,
        flags: (orig.flags & !(BTP_ROOT | BTP_SPLIT_END | BTP_HAS_GARBAGE)) | BTP_INCOMPLETE_SPLIT,
        cycle_id: 0,
    };
    init_page(&mut page, &opaque);
    let mut items: Vec<&[u8]> = Vec::with_capacity(left_items.len() + 1);
    items.push(hikey);
    items.extend_from_slice(left_items);
    put_items(&mut page, &items)?;
    Ok(page)
}

/// The new right half: `items` (its high key first unless it is
/// rightmost), between `left` and `next`.
pub fn build_split_right(
    level: u32,
    left: BlockNumber,
    next: BlockNumber,
    items: &[&[u8]],
) -> Result<Box<[u8; BLCKSZ]>, PgError> {
    let mut page = Box::new([0u8; BLCKSZ]);
    let opaque = BtOpaque {
        prev: left,
        next,
        ..BtOpaque::new(level)
    };
    init_page(&mut page, &opaque);
    put_items(&mut page, items)?;
    Ok(page)
}

/// A root page of `level` holding `items` (`_bt_newroot`, `_bt_getroot`).
pub fn build_root(level: u32, items: &[&[u8]]) -> Result<Box<[u8; BLCKSZ]>, PgError> {
    let mut page = Box::new([0u8; BLCKSZ]);
    let mut opaque = BtOpaque::new(level);
    opaque.flags |= BTP_ROOT;
    init_page(&mut page, &opaque);
    put_items(&mut page, items)?;
    Ok(page)
}

/// The data items that stay on the left: the first `firstright` of the
/// page's items with the new item at `newitempos` (given iff it is among
/// them).
pub fn left_data_items<'a>(
    orig_items: &[&'a [u8]],
    xl: &XlBtreeSplit,
    newitem: Option<&'a [u8]>,
) -> Result<Vec<&'a [u8]>, PgError> {
    let (k, pos) = (usize::from(xl.firstright), usize::from(xl.newitempos));
    let mut items = Vec::with_capacity(k);
    match newitem {
        Some(item) if pos < k && k <= orig_items.len() + 1 => {
            items.extend_from_slice(&orig_items[..k - 1]);
            items.insert(pos, item);
        }
        None if pos >= k && k <= orig_items.len() => items.extend_from_slice(&orig_items[..k]),
        _ => {
            return Err(corrupt(format!(
                "split at {k} of {} items with the new item at {pos}",
                orig_items.len()
            )))
        }
    }
    Ok(items)
}

/// Replays one Btree record ending at `end` (rules X3, X4).
pub fn btree_redo(
    start: Lsn,
    end: Lsn,
    record: &DecodedRecord,
    buffers: &mut BufferManager<'_>,
    smgr: &mut dyn BlockStorage,
    wal: &dyn WalFlush,
) -> Result<(), PgError> {
    if record.rmgr() != ResourceManager::Btree {
        return Err(corrupt(format!(
            "record at {start} belongs to resource manager {}",
            record.rmgr()
        )));
    }
    let buffers: &BufferManager<'_> = buffers;
    let redo = Redo {
        buffers,
        start,
        end,
        record,
    };
    match record.info() {
        XLOG_BTREE_INSERT_LEAF | XLOG_BTREE_INSERT_UPPER => redo.insert(smgr, wal),
        XLOG_BTREE_SPLIT_L | XLOG_BTREE_SPLIT_R => redo.split(smgr, wal),
        XLOG_BTREE_NEWROOT => redo.newroot(smgr, wal),
        XLOG_BTREE_VACUUM => redo.vacuum(smgr, wal),
        info => Err(corrupt(format!("unknown op code {info:#04x} at {start}"))),
    }
}

struct Redo<'r, 'm> {
    buffers: &'m BufferManager<'m>,
    start: Lsn,
    end: Lsn,
    record: &'r DecodedRecord,
}

impl Redo<'_, '_> {
    fn data(&self, id: u8) -> Result<&[u8], PgError> {
        self.record.block(id).and_then(|b| b.data()).ok_or_else(|| {
            corrupt(format!(
                "record at {} has no data for block {id}",
                self.start
            ))
        })
    }

    /// Apply `change` to block `id` unless rule X3 says it is there already.
    fn apply(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        id: u8,
        change: impl FnOnce(&mut [u8; BLCKSZ]) -> Result<(), PgError>,
    ) -> Result<(), PgError> {
        match read_block_for_redo(self.end, self.record, id, self.buffers, smgr, wal)? {
            RedoAction::NeedsRedo(mut page) => {
                let will_init = self.record.block(id).is_some_and(|b| b.will_init);
                if !will_init && is_new(&page) {
                    log::warn!(
                        "btree redo at {}: block {} is empty; assuming the index \
                         is dropped later in the WAL",
                        self.start,
                        page.block().0
                    );
                    return Ok(());
                }
                change(&mut page)?;
                finish_redo_block(&mut page, self.end);
                Ok(())
            }
            RedoAction::Restored | RedoAction::Done => Ok(()),
        }
    }

    fn clear_incomplete_split(
        &self,
        smgr: &mut dyn BlockStorage,
        wal: &dyn WalFlush,
        id: u8,
    ) -> Result<(), PgError> {
        if self.record.block(id).is_none() {
            return Ok(());
        }
        self.apply(smgr, wal, id, |page| {
            set_page_flag(page, BTP_INCOMPLETE_SPLIT, false)
        })
    }

    fn insert(&self, smgr: &mut dyn BlockStorage, wal: &dyn WalFlush) -> Result<(), PgError> {
        let m = self.record.main_data();
        if m.len() != 2 {
            return Err(corrupt(format!("xl_btree_insert of {} bytes", m.len())));
        }
        let off = OffsetNumber(u16::from_le_bytes([m[0], m[1]]));
        if self.record.info() == XLOG_BTREE_INSERT_UPPER {
            self.clear_incomplete_split(smgr, wal, 1)?;
        }
        let has_image = self.record.block(0).is_some_and(|b| b.has_image());
        let tuple = if has_image { &[][..] } else { self.data(0)? };
        self.apply(smgr, wal, 0, |page| insert_item(page, off, tuple))
    }

    fn split(&self, smgr: &mut dyn BlockStorage, wal: &dyn WalFlush) -> Result<(), PgError> {
        let xl = XlBtreeSplit::decode(self.record.main_data())?;
        let left_blk = self
            .record
            .block(0)
            .ok_or_else(|| corrupt("split without its left page"))?
            .blkno;
        let next = self.record.block(2).map_or(P_NONE, |b| b.blkno);
        let right_blk = self
            .record
            .block(1)
            .ok_or_else(|| corrupt("split without its right page"))?
            .blkno;

        // The right half, rebuilt from its logged items.
        let right_items = unframe_items(self.data(1)?)?;
        self.apply(smgr, wal, 1, |page| {
            page.copy_from_slice(&*build_split_right(xl.level, left_blk, next, &right_items)?);
            Ok(())
        })?;

        // The left half, from the page as it was before the split.
        let has_image = self.record.block(0).is_some_and(|b| b.has_image());
        let left_data = if has_image { &[][..] } else { self.data(0)? };
        self.apply(smgr, wal, 0, |page| {
            if left_data.len() < 2 {
                return Err(corrupt("split without the left high key"));
            }
            let hikey_len = usize::from(u16::from_le_bytes([left_data[0], left_data[1]]));
            let hikey = left_data
                .get(2..2 + hikey_len)
                .ok_or_else(|| corrupt("left high key runs past the block data"))?;
            let rest = &left_data[2 + hikey_len..];
            let newitem = xl.newitem_on_left().then_some(rest);
            let orig = BtOpaque::read(page)?;
            let orig_items = page_items(page, orig.first_data_key())?;
            let left = build_split_left(
                &orig,
                &left_data_items(&orig_items, &xl, newitem)?,
                hikey,
                right_blk,
            )?;
            page.copy_from_slice(&*left);
            Ok(())
        })?;

        if self.record.block(2).is_some() {
            self.apply(smgr, wal, 2, |page| {
                let mut o = BtOpaque::read(page)?;
                o.prev = right_blk;
                o.write(page)
            })?;
        }
        self.clear_incomplete_split(smgr, wal, 3)
    }

    fn vacuum(&self, smgr: &mut dyn BlockStorage, wal: &dyn WalFlush) -> Result<(), PgError> {
        let m = self.record.main_data();
        if m.len() != 2 {
            return Err(corrupt(format!("xl_btree_vacuum of {} bytes", m.len())));
        }
        let n = u16::from_le_bytes([m[0], m[1]]);
        let has_image = self.record.block(0).is_some_and(|b| b.has_image());
        // No offsets: the hint record of dead_items K3, there for its image.
        let offsets = if has_image || n == 0 {
            Vec::new()
        } else {
            decode_offsets(self.data(0)?, n)?
        };
        self.apply(smgr, wal, 0, |page| delete_items(page, &offsets))
    }

    fn newroot(&self, smgr: &mut dyn BlockStorage, wal: &dyn WalFlush) -> Result<(), PgError> {
        let m = self.record.main_data();
        if m.len() != 8 {
            return Err(corrupt(format!("xl_btree_newroot of {} bytes", m.len())));
        }
        let level = u32::from_le_bytes([m[4], m[5], m[6], m[7]]);
        let items = match self.record.block(0).and_then(|b| b.data()) {
            Some(d) => unframe_items(d)?,
            None => Vec::new(),
        };
        self.apply(smgr, wal, 0, |page| {
            page.copy_from_slice(&*build_root(level, &items)?);
            Ok(())
        })?;
        self.clear_incomplete_split(smgr, wal, 1)?;
        let meta = decode_meta(self.data(2)?)?;
        self.apply(smgr, wal, 2, |page| {
            meta.write_page(page);
            Ok(())
        })
    }
}
