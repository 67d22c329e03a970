//! Heap access on shared buffers (PostgreSQL's `heapam.c`): insert, fetch,
//! sequential scan, delete and update of tuples in a table's pages, with
//! MVCC visibility, write conflicts and WAL. Backends run it; the startup
//! process runs only its redo ([`heap_redo`], in `heapam_xlog.rs`).
//!
//! Tuples come and go as bytes formed by [`crate::heap::tuple::form_tuple`]
//! ([`HeapRelation::form`] / [`HeapRelation::deform`] wrap it). An
//! operation gets what it touches in a [`HeapContext`] (this process's
//! buffer manager, relation files, WAL, proc array and commit log), the
//! table as a [`HeapRelation`], and the transaction as a [`CurrentXact`].
//! The caller has assigned the xid (`Transam::assign_xid_with` with
//! `Clog::extend_to`) before the first write.
//!
//! # The operations, step by step
//!
//! **Insert** ([`heap_insert`]): check the size (`54000 row is too big`);
//! stamp the header (xmin = my xid, cid, xmax invalid, infomask
//! `HEAP_XMAX_INVALID`); find a page with room and lock it exclusively
//! (`hio.rs`: target block, last block, a page the free space map names,
//! or a new one); put the tuple there (in a slot VACUUM freed, if any)
//! (ctid = its own tid); mark dirty; log INSERT; set the page LSN to the
//! record's end; remember the page as the target block.
//!
//! **Multi-insert** ([`heap_multi_insert`], COPY FROM's batches): the same
//! per tuple, but each page found takes as many of the next tuples as fit,
//! and one MULTI_INSERT record logs them all.
//!
//! **Fetch** ([`heap_fetch`]) and **scan** ([`heap_beginscan`]): pin, lock
//! shared, test each tuple with `satisfies_mvcc` against the snapshot, copy
//! the visible ones out, unlock. A scan does this a page at a time over the
//! blocks that existed when it began (PostgreSQL's page-at-a-time mode) and
//! then yields the copies. Hint bits are not set (buffer rule R4: they
//! would need the exclusive lock), so every check asks the commit log.
//!
//! **Delete** ([`heap_delete`]): lock the page exclusively; `satisfies_update`
//! and `decide_write` on the tuple; unless that says Proceed, unlock and
//! return what to do ([`HeapWriteResult::WaitFor`], `Skip`, `FollowUpdate`;
//! repeatable read fails with `40001`); else set xmax = my xid, cmax, the
//! `HEAP_KEYS_UPDATED` bit, mark dirty, log DELETE, set the LSN.
//!
//! **Update** ([`heap_update`]): as delete up to Proceed; if the new version
//! fits on the same page, put it there, set the old tuple's xmax and ctid =
//! the new tid, log UPDATE with one block. Otherwise unlock, pick another
//! page and lock both (lower block first), **check the old tuple again** (it
//! may have changed while unlocked), and do the same across the two pages,
//! logging both. The new version carries `HEAP_UPDATED`.
//!
//! **The executor's loop** ([`delete_row`], [`update_row`]): call the
//! operation; on `WaitFor(x)` wait with `Transam::wait_for_xid` (no lock
//! held) and try again; on `FollowUpdate` (read committed) fetch the newer
//! version, check the chain link (`is_next_version`; no tuple there, or
//! one with another xmin, means VACUUM removed the version and maybe
//! reused the slot: the row is gone, `vacuum.rs` V5), let the caller
//! re-evaluate its WHERE clause on it (and, for an update, compute the new
//! tuple from it), and try again on that version.
//!
//! # Rules
//!
//! 1. (A1) A tuple is added or its xmax changed only under its page's
//!    exclusive content lock, and the lock is held until the page LSN is set
//!    (buffer rule R3; heapam_xlog W1).
//! 2. (A2) Order inside that lock: change the page, mark dirty, insert the
//!    WAL record, set the page LSN to the record's **end** (W1). Dirty
//!    before the record, as PostgreSQL does: a checkpoint whose redo
//!    pointer falls after our record must find the buffer dirty. The WAL
//!    still comes before the *data*: buffer rule C1 keeps the page from disk
//!    until the WAL up to its LSN is flushed, and nobody can write it before
//!    the LSN is set (a write needs the content lock).
//! 3. (A3) Two pages are locked lower block number first (hio H2); a
//!    waiting writer releases every content lock before it waits for a
//!    transaction.
//! 4. (A4) The old tuple is judged (`satisfies_update`) under the same lock
//!    hold in which it is changed; after any unlock it is judged again.
//! 5. (A5) Tuples are copied out before their page's lock is released
//!    (buffer rule R2): nothing returned points into a buffer.
//! 6. (A6) A WAL error after the page changed has PANIC severity: the page
//!    holds a change the WAL does not describe, and only the crash cycle
//!    (which discards the buffer pool) may follow.
//!
//! # Locking
//!
//! Buffer content locks per A1/A3, and pins; no other lock. Waiting for a
//! transaction happens holding no content lock (transam's xact_wait rule).
//! Relation extension has no lock of its own yet (hio H3).
//!
//! # Crash safety
//!
//! Every change is WAL-logged before its page can reach disk (buffer C1,
//! A2); the first change to a page after a checkpoint's redo pointer logs
//! the whole page (heapam_xlog W3), which is what repairs a torn page
//! write during replay. A transaction's tuples are durable only with its
//! commit record; without one they stay invisible (xmin never committed).

use std::cell::Cell;

use pgerror::{PgError, SqlState};

use crate::buffer::{BlockStorage, BufferManager, ExclusiveContentGuard};
use crate::heap::datum::{Datum, TupleDesc};
use crate::heap::heapam_xlog::{
    log_heap_change, logged_tuple_data, mark_tuple_replaced, push_multi_insert_tuple, put_tuple,
    LogBlock, XlHeapDelete, XlHeapInsert, XlHeapMultiInsert, XlHeapUpdate, XLHL_KEYS_UPDATED,
    XLOG_HEAP_DELETE, XLOG_HEAP_INIT_PAGE, XLOG_HEAP_INSERT, XLOG_HEAP_MULTI_INSERT,
    XLOG_HEAP_UPDATE,
};
use crate::heap::hio::{heap_free_space, init_if_new, nblocks, page_for_insert, UpdateTargets};
use crate::heap::tuple::{
    deform_tuple, form_tuple, HeapTupleHeader, ItemPointer, HEAP2_XACT_MASK, HEAP_UPDATED,
    HEAP_XACT_MASK, HEAP_XMAX_INVALID, MAX_HEAP_TUPLE_SIZE,
};
use crate::page::{maxalign, OffsetNumber, Page};
use crate::transam::{
    decide_write, is_next_version, satisfies_mvcc, satisfies_update, IsolationLevel, Snapshot,
    Transam, WriteAction, WriteKind, XidStatusOracle,
};
use crate::types::{BlockNumber, ForkNumber, RelFileLocator, Xid, BLCKSZ};
use crate::wal::SharedWal;

pub use crate::heap::heapam_xlog::heap_redo;

/// What a heap operation touches, as this process sees it.
pub struct HeapContext<'c, 'a> {
    pub buffers: &'c BufferManager<'a>,
    /// The relation files ([`crate::smgr::Smgr`] in the server).
    pub smgr: &'c mut dyn BlockStorage,
    pub wal: &'c SharedWal<'a>,
    /// The proc array: who is running (`satisfies_update`), waiting.
    pub transam: &'c Transam<'a>,
    /// The commit log (a [`crate::clog::Clog`] in the server).
    pub clog: &'c dyn XidStatusOracle,
    /// How to wait for a transaction that holds a row we must change: the
    /// backend's lock manager (a share lock on the transaction id, so that
    /// row-level deadlocks are detected), or `None` for the proc array's
    /// plain wait (`Transam::wait_for_xid`).
    pub xid_waiter: Option<&'c mut dyn XidWaiter>,
}

/// Waits until transaction `xid` has ended (committed or aborted).
pub trait XidWaiter {
    fn wait_for_xid(
        &mut self,
        xid: Xid,
        interrupts: &mut dyn FnMut() -> Result<(), PgError>,
    ) -> Result<(), PgError>;
}

/// An error that ended a wait for the writer of row `tid` (a cancel, a
/// lock timeout, a deadlock) says what the statement was doing, as
/// PostgreSQL's XactLockTableWait context does: `doing` is `updating`,
/// `deleting`...
pub(crate) fn wait_context(e: PgError, doing: &str, tid: ItemPointer, relation: &str) -> PgError {
    if relation.is_empty() || e.context.is_some() {
        return e;
    }
    e.with_context(format!(
        "while {doing} tuple {tid} in relation \"{relation}\""
    ))
}

/// Waits for `xid` the way the context says.
pub(crate) fn wait_for_writer(
    ctx: &mut HeapContext<'_, '_>,
    xid: Xid,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    match ctx.xid_waiter.as_deref_mut() {
        Some(w) => w.wait_for_xid(xid, interrupts),
        None => ctx.transam.wait_for_xid(xid, None, interrupts).map(|_| ()),
    }
}

/// A heap table as the access method needs it: its files, its columns, and
/// this process's insertion target (PostgreSQL's `smgr_targblock`: a hint,
/// never trusted without checking the page).
pub struct HeapRelation {
    pub locator: RelFileLocator,
    pub desc: TupleDesc,
    /// The table's name, for the CONTEXT of an error during a row wait
    /// (`while updating tuple (0,1) in relation "t"`); empty: none given.
    pub name: String,
    target_block: Cell<Option<BlockNumber>>,
}

thread_local! {
    /// Each relation's insertion target, kept across statements (PostgreSQL
    /// keeps `smgr_targblock` in its long-lived SMgrRelation): without it
    /// every INSERT statement would start by asking the file's length.
    static TARGET_BLOCKS: std::cell::RefCell<std::collections::HashMap<RelFileLocator, BlockNumber>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Relations whose target is remembered at most (forgotten all at once).
const MAX_TARGET_BLOCKS: usize = 1024;

impl HeapRelation {
    pub fn new(locator: RelFileLocator, desc: TupleDesc) -> HeapRelation {
        let target = TARGET_BLOCKS.with(|t| t.borrow().get(&locator).copied());
        HeapRelation {
            locator,
            desc,
            name: String::new(),
            target_block: Cell::new(target),
        }
    }

    /// The same, named for error contexts.
    pub fn named(locator: RelFileLocator, desc: TupleDesc, name: &str) -> HeapRelation {
        HeapRelation {
            name: name.to_string(),
            ..HeapRelation::new(locator, desc)
        }
    }

    /// Where this process last put a tuple.
    pub fn target_block(&self) -> Option<BlockNumber> {
        self.target_block.get()
    }

    pub(crate) fn set_target_block(&self, block: Option<BlockNumber>) {
        if self.target_block.get() == block {
            return;
        }
        self.target_block.set(block);
        TARGET_BLOCKS.with(|t| {
            let mut t = t.borrow_mut();
            match block {
                Some(b) => {
                    if t.len() >= MAX_TARGET_BLOCKS {
                        t.clear();
                    }
                    t.insert(self.locator, b);
                }
                None => {
                    t.remove(&self.locator);
                }
            }
        });
    }

    /// A tuple of this table's shape holding `values`.
    pub fn form(&self, values: &[Option<Datum>]) -> Result<Vec<u8>, PgError> {
        Ok(form_tuple(&self.desc, values)?)
    }

    /// The column values of one of this table's tuples.
    pub fn deform(&self, tuple: &[u8]) -> Result<Vec<Option<Datum>>, PgError> {
        Ok(deform_tuple(&self.desc, tuple)?)
    }
}

/// The command doing the work: its transaction's xid ([`Xid::INVALID`]
/// for a reader without one), its command id, the isolation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentXact {
    pub xid: Xid,
    pub cid: u32,
    pub isolation: IsolationLevel,
}

/// What [`heap_delete`] / [`heap_update`] did or want the caller to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapWriteResult {
    /// The tuple now has our xmax.
    Deleted,
    /// The tuple has our xmax and its new version is at `new_tid`.
    Updated { new_tid: ItemPointer },
    /// Nothing changed and no lock is held: wait for this transaction to
    /// end (`Transam::wait_for_xid`), then call again with the same tid.
    WaitFor(Xid),
    /// Nothing changed: leave the row out (deleted, or already changed by
    /// this command).
    Skip,
    /// Read committed: the row was updated by a committed transaction;
    /// see [`WriteAction::FollowUpdate`].
    FollowUpdate { ctid: ItemPointer, prior_xmax: Xid },
}

/// What the executor's loop ([`delete_row`], [`update_row`]) finally did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// The version at `tid` (the one found, or a newer one) was deleted.
    Deleted { tid: ItemPointer },
    /// The version at `old_tid` was replaced by `new_tid`.
    Updated {
        old_tid: ItemPointer,
        new_tid: ItemPointer,
    },
    /// The row is gone or no longer matches: nothing was changed.
    Skipped,
}

fn require_xid(xact: &CurrentXact, what: &str) -> Result<(), PgError> {
    if xact.xid.is_normal() {
        Ok(())
    } else {
        Err(PgError::internal(format!(
            "cannot {what} a tuple without a transaction id"
        )))
    }
}

/// PostgreSQL's check in `RelationGetBufferForTuple`.
/// `54000 row is too big` for a tuple longer than a page can hold.
pub fn check_tuple_size(len: usize) -> Result<(), PgError> {
    if len > MAX_HEAP_TUPLE_SIZE {
        return Err(PgError::new(
            SqlState::PROGRAM_LIMIT_EXCEEDED,
            format!("row is too big: size {len}, maximum size {MAX_HEAP_TUPLE_SIZE}"),
        ));
    }
    Ok(())
}

/// The header of a new tuple or version (PostgreSQL's
/// `heap_prepare_insert`): our xmin and cid, no xmax, no stale status bits.
fn prepare_new_tuple(tuple: &mut [u8], xact: &CurrentXact, extra: u16) -> Result<(), PgError> {
    let mut h = HeapTupleHeader::read(tuple)?;
    h.infomask &= !HEAP_XACT_MASK;
    h.infomask2 &= !HEAP2_XACT_MASK;
    h.infomask |= HEAP_XMAX_INVALID | extra;
    h.xmin = xact.xid;
    h.xmax = Xid::INVALID;
    h.cid = xact.cid;
    h.ctid = ItemPointer::INVALID;
    h.write(tuple)?;
    Ok(())
}

/// heapam_xlog W4: the page was never logged and holds only our tuple.
fn redo_can_init(page: &[u8; BLCKSZ]) -> bool {
    redo_can_init_with(page, 1)
}

/// heapam_xlog W4 for `n` new tuples: the page was never logged, so it
/// holds nothing but them (an unlogged page has no earlier items: every
/// tuple put on a page is logged), at offsets 1..=n.
fn redo_can_init_with(page: &[u8; BLCKSZ], n: u16) -> bool {
    let p = Page::new(page);
    !p.lsn().is_valid() && p.max_offset().0 == n
}

/// The bytes of the normal (live or dead-but-stored) tuple at `off`.
fn normal_item(page: &[u8; BLCKSZ], off: OffsetNumber) -> Result<Option<&[u8]>, PgError> {
    let p = Page::new(page);
    let Some(lp) = p.item_id(off).filter(|lp| lp.is_normal()) else {
        return Ok(None);
    };
    // get_item checks the line pointer against the page bounds.
    if p.get_item(off)?.is_none() {
        return Ok(None);
    }
    let start = usize::from(lp.offset());
    Ok(Some(&page[start..start + usize::from(lp.length())]))
}

/// Inserts `tuple` (from `form_tuple`) and returns its tid.
pub fn heap_insert(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    tuple: &[u8],
) -> Result<ItemPointer, PgError> {
    require_xid(xact, "insert")?;
    check_tuple_size(tuple.len())?;
    let mut tuple = tuple.to_vec();
    prepare_new_tuple(&mut tuple, xact, 0)?;
    let logged = logged_tuple_data(&tuple)?;
    let mut page = page_for_insert(ctx, rel, maxalign(tuple.len()))?;
    let blkno = page.block();
    let offnum = put_tuple(&mut page, blkno, &tuple, None)?;
    let xl = XlHeapInsert {
        cid: xact.cid,
        offnum,
        flags: 0,
    };
    log_new_tuples(
        ctx,
        rel,
        xact,
        &mut page,
        1,
        XLOG_HEAP_INSERT,
        &logged,
        &xl.encode(),
    )?;
    Ok(ItemPointer::new(blkno, offnum))
}

/// The end of an insert into `page` (rules A1, A2): mark it dirty, log
/// the record `op` (with INIT_PAGE when its `n` new tuples are all the page
/// holds, heapam_xlog W4), set the page LSN, and make the page the target
/// block.
#[allow(clippy::too_many_arguments)]
fn log_new_tuples(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    page: &mut ExclusiveContentGuard<'_>,
    n: u16,
    op: u8,
    block_data: &[u8],
    main_data: &[u8],
) -> Result<(), PgError> {
    let blkno = page.block();
    let init = redo_can_init_with(page, n);
    page.mark_dirty();
    let info = op | if init { XLOG_HEAP_INIT_PAGE } else { 0 };
    let block = LogBlock {
        id: 0,
        blkno,
        page,
        will_init: init,
        data: block_data,
    };
    let at = log_heap_change(ctx.wal, rel.locator, info, xact.xid, &[block], main_data)?;
    Page::new(&mut **page).set_lsn(at.end);
    rel.set_target_block(Some(blkno));
    Ok(())
}

/// Inserts `tuples` (from `form_tuple`) and returns their tids, in order
/// (PostgreSQL's `heap_multi_insert`, for COPY FROM): each page found gets
/// as many of the next tuples as fit, and one MULTI_INSERT record for all
/// of them, under one hold of its exclusive lock (rules A1, A2).
pub fn heap_multi_insert<T: AsRef<[u8]>>(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    tuples: &[T],
) -> Result<Vec<ItemPointer>, PgError> {
    require_xid(xact, "insert")?;
    for t in tuples {
        check_tuple_size(t.as_ref().len())?;
    }
    let mut prepared = Vec::with_capacity(tuples.len());
    for t in tuples {
        let mut t = t.as_ref().to_vec();
        prepare_new_tuple(&mut t, xact, 0)?;
        prepared.push(t);
    }
    let mut tids = Vec::with_capacity(tuples.len());
    let mut rest = prepared.as_slice();
    while let Some(first) = rest.first() {
        let mut page = page_for_insert(ctx, rel, maxalign(first.len()))?;
        let blkno = page.block();
        let mut data = Vec::with_capacity(BLCKSZ);
        let mut n: u16 = 0;
        for tuple in rest {
            // The first fits (page_for_insert saw to it); stop at the
            // first that does not, keeping the order.
            if n > 0 && heap_free_space(&page) < maxalign(tuple.len()) {
                break;
            }
            let offnum = put_tuple(&mut page, blkno, tuple, None)?;
            push_multi_insert_tuple(&mut data, offnum, tuple)?;
            tids.push(ItemPointer::new(blkno, offnum));
            n += 1;
        }
        rest = &rest[usize::from(n)..];
        let xl = XlHeapMultiInsert {
            cid: xact.cid,
            ntuples: n,
            flags: 0,
        };
        let (op, main) = (XLOG_HEAP_MULTI_INSERT, xl.encode());
        log_new_tuples(ctx, rel, xact, &mut page, n, op, &data, &main)?;
    }
    Ok(tids)
}

/// The tuple at `tid` if `snapshot` sees it (PostgreSQL's `heap_fetch`).
pub fn heap_fetch(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    tid: ItemPointer,
    snapshot: &Snapshot,
    xact: &CurrentXact,
) -> Result<Option<Vec<u8>>, PgError> {
    let clog = ctx.clog;
    tuple_at_if(ctx, rel, tid, |h| {
        Ok(satisfies_mvcc(h, snapshot, xact.xid, xact.cid, clog)?.visible)
    })
}

/// What an index scan finds at an entry's heap TID.
#[derive(Debug, PartialEq, Eq)]
pub enum IndexFetch {
    /// The snapshot sees the tuple: a copy of it.
    Visible(Vec<u8>),
    /// Not visible to this snapshot, maybe to others.
    Invisible,
    /// No transaction can ever see it (`surely_dead`, or the slot is
    /// LP_DEAD): the index entry may be marked LP_DEAD.
    SurelyDead,
}

/// [`heap_fetch`] for an index scan (PostgreSQL's `heap_hot_search_buffer`
/// with its `all_dead` answer, without HOT chains). `horizon` gives the
/// vacuum horizon; it is asked only for an invisible tuple, after the
/// buffer lock is released.
pub fn heap_fetch_for_index(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    tid: ItemPointer,
    snapshot: &Snapshot,
    xact: &CurrentXact,
    horizon: &mut dyn FnMut() -> Xid,
) -> Result<IndexFetch, PgError> {
    let clog = ctx.clog;
    let slot = inspect_slot(ctx, rel, tid, |item, h| {
        Ok(
            if satisfies_mvcc(h, snapshot, xact.xid, xact.cid, clog)?.visible {
                Some(item.to_vec())
            } else {
                None
            },
        )
    })?;
    let header = match slot {
        Slot::Dead => return Ok(IndexFetch::SurelyDead),
        Slot::Empty => return Ok(IndexFetch::Invisible),
        Slot::Tuple(_, Some(tuple)) => return Ok(IndexFetch::Visible(tuple)),
        Slot::Tuple(header, None) => header,
    };
    let flushed = ctx.wal.flushed_lsn();
    if crate::transam::visibility::surely_dead(&header, horizon(), ctx.transam, clog, flushed)? {
        Ok(IndexFetch::SurelyDead)
    } else {
        Ok(IndexFetch::Invisible)
    }
}

/// Whether the tuple at `tid` is surely dead (an LP_DEAD slot, or
/// [`surely_dead`](crate::transam::visibility::surely_dead) below
/// `horizon`): the index scan's re-check under the leaf lock (btree
/// dead_items K2).
pub fn heap_tuple_surely_dead(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    tid: ItemPointer,
    horizon: Xid,
) -> Result<bool, PgError> {
    let header = match inspect_slot(ctx, rel, tid, |_, _| Ok(()))? {
        Slot::Dead => return Ok(true),
        Slot::Empty => return Ok(false),
        Slot::Tuple(header, ()) => header,
    };
    let flushed = ctx.wal.flushed_lsn();
    crate::transam::visibility::surely_dead(&header, horizon, ctx.transam, ctx.clog, flushed)
}

/// What a line pointer holds, as [`inspect_slot`] saw it.
enum Slot<T> {
    /// LP_DEAD: the tuple is gone for every snapshot.
    Dead,
    /// Unused, redirected, or past the page's items.
    Empty,
    /// A normal tuple: its header, and what the caller's look found.
    Tuple(HeapTupleHeader, T),
}

/// Reads the slot at `tid` under a shared content lock; `look` sees a
/// normal tuple and its header while the lock is held.
fn inspect_slot<T>(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    tid: ItemPointer,
    look: impl FnOnce(&[u8], &HeapTupleHeader) -> Result<T, PgError>,
) -> Result<Slot<T>, PgError> {
    let buf = ctx.buffers.read_buffer(
        &mut *ctx.smgr,
        ctx.wal,
        rel.locator,
        ForkNumber::Main,
        tid.block,
    )?;
    let page = buf.lock_shared();
    if Page::new(&*page)
        .item_id(tid.offset)
        .is_some_and(|lp| lp.is_dead())
    {
        return Ok(Slot::Dead);
    }
    let Some(item) = normal_item(&page, tid.offset)? else {
        return Ok(Slot::Empty);
    };
    let header = HeapTupleHeader::read(item)?;
    let found = look(item, &header)?;
    Ok(Slot::Tuple(header, found))
}

/// A copy of the normal tuple at `tid`, if `keep` accepts its header; read
/// under a shared content lock.
fn tuple_at_if(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    tid: ItemPointer,
    keep: impl FnOnce(&HeapTupleHeader) -> Result<bool, PgError>,
) -> Result<Option<Vec<u8>>, PgError> {
    let slot = inspect_slot(ctx, rel, tid, |item, h| Ok(keep(h)?.then(|| item.to_vec())))?;
    Ok(match slot {
        Slot::Tuple(_, copy) => copy,
        Slot::Dead | Slot::Empty => None,
    })
}

/// The tuple at `tid` whatever its visibility, if it is the successor of a
/// version whose xmax was `prior_xmax` (conflict rule C5).
fn fetch_next_version(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    tid: ItemPointer,
    prior_xmax: Xid,
) -> Result<Option<Vec<u8>>, PgError> {
    if tid.block.0 >= nblocks(ctx, rel)? {
        return Ok(None);
    }
    tuple_at_if(ctx, rel, tid, |h| Ok(is_next_version(prior_xmax, h)))
}

/// A sequential scan: every tuple `snapshot` sees, block by block, as
/// `(tid, bytes)`. Made by [`heap_beginscan`].
pub struct HeapScan<'s, 'c, 'a> {
    ctx: &'s mut HeapContext<'c, 'a>,
    rel: &'s HeapRelation,
    snapshot: &'s Snapshot,
    xact: CurrentXact,
    /// The relation's length when the scan began.
    nblocks: u32,
    next_block: u32,
    /// Visible tuples of the last page read, copied out (A5).
    page_tuples: std::vec::IntoIter<(ItemPointer, Vec<u8>)>,
}

/// Starts a sequential scan (PostgreSQL's `heap_beginscan`); blocks added
/// after this call are not visited (their tuples are not visible to the
/// snapshot anyway, unless they are this command's own).
pub fn heap_beginscan<'s, 'c, 'a>(
    ctx: &'s mut HeapContext<'c, 'a>,
    rel: &'s HeapRelation,
    snapshot: &'s Snapshot,
    xact: CurrentXact,
) -> Result<HeapScan<'s, 'c, 'a>, PgError> {
    let nblocks = nblocks(ctx, rel)?;
    Ok(HeapScan {
        ctx,
        rel,
        snapshot,
        xact,
        nblocks,
        next_block: 0,
        page_tuples: Vec::new().into_iter(),
    })
}

impl HeapScan<'_, '_, '_> {
    /// The visible tuples of block `b` (pin, shared lock, copy, unlock).
    fn read_page(&mut self, b: BlockNumber) -> Result<Vec<(ItemPointer, Vec<u8>)>, PgError> {
        heap_scan_page(self.ctx, self.rel, b, self.snapshot, self.xact)
    }
}

/// The relation's length in blocks, for a caller that scans page by page
/// with [`heap_scan_page`] (an executor that must use the context between
/// pages, which a [`HeapScan`] holds).
pub fn heap_nblocks(ctx: &mut HeapContext<'_, '_>, rel: &HeapRelation) -> Result<u32, PgError> {
    nblocks(ctx, rel)
}

/// The tuples of block `b` that `snapshot` sees, copied out (pin, shared
/// lock, copy, unlock): one step of a sequential scan.
pub fn heap_scan_page(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    b: BlockNumber,
    snapshot: &Snapshot,
    xact: CurrentXact,
) -> Result<Vec<(ItemPointer, Vec<u8>)>, PgError> {
    let buffers = ctx.buffers;
    let buf = buffers.read_buffer(&mut *ctx.smgr, ctx.wal, rel.locator, ForkNumber::Main, b)?;
    let page = buf.lock_shared();
    let p = Page::new(&*page);
    let mut out = Vec::new();
    if p.is_new() {
        return Ok(out);
    }
    for (off, lp) in p.item_ids() {
        if !lp.is_normal() {
            continue;
        }
        let Some(item) = p.get_item(off)? else {
            continue;
        };
        let h = HeapTupleHeader::read(item)?;
        let vis = satisfies_mvcc(&h, snapshot, xact.xid, xact.cid, ctx.clog)?;
        if vis.visible {
            out.push((ItemPointer::new(b, off), item.to_vec()));
        }
    }
    Ok(out)
}

impl Iterator for HeapScan<'_, '_, '_> {
    type Item = Result<(ItemPointer, Vec<u8>), PgError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(t) = self.page_tuples.next() {
                return Some(Ok(t));
            }
            if self.next_block >= self.nblocks {
                return None;
            }
            let b = BlockNumber(self.next_block);
            self.next_block += 1;
            match self.read_page(b) {
                Ok(tuples) => self.page_tuples = tuples.into_iter(),
                Err(e) => {
                    self.next_block = self.nblocks;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// `satisfies_update` + `decide_write` on the tuple at `tid` of a page
/// whose exclusive lock the caller holds (A4).
fn check_write(
    ctx: &HeapContext<'_, '_>,
    page: &[u8; BLCKSZ],
    tid: ItemPointer,
    xact: &CurrentXact,
    kind: WriteKind,
) -> Result<WriteAction, PgError> {
    let item = normal_item(page, tid.offset)?.ok_or_else(|| {
        PgError::internal(format!(
            "attempted to {} a tuple that does not exist at {tid}",
            match kind {
                WriteKind::Update => "update",
                WriteKind::Delete => "delete",
            }
        ))
    })?;
    let h = HeapTupleHeader::read(item)?;
    let check = satisfies_update(&h, tid, xact.xid, xact.cid, ctx.clog, ctx.transam)?;
    decide_write(check.result, kind, xact.isolation, xact.xid, xact.cid)
}

/// The result for every decision but Proceed.
fn not_proceeding(action: WriteAction) -> Option<HeapWriteResult> {
    match action {
        WriteAction::Proceed => None,
        WriteAction::WaitFor(x) => Some(HeapWriteResult::WaitFor(x)),
        WriteAction::Skip => Some(HeapWriteResult::Skip),
        WriteAction::FollowUpdate { ctid, prior_xmax } => {
            Some(HeapWriteResult::FollowUpdate { ctid, prior_xmax })
        }
    }
}

/// Deletes the tuple at `tid` if the rules allow it now; see
/// [`HeapWriteResult`] for what else may happen.
pub fn heap_delete(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    tid: ItemPointer,
) -> Result<HeapWriteResult, PgError> {
    require_xid(xact, "delete")?;
    let buffers = ctx.buffers;
    let buf = buffers.read_buffer(
        &mut *ctx.smgr,
        ctx.wal,
        rel.locator,
        ForkNumber::Main,
        tid.block,
    )?;
    let mut page = buf.lock_exclusive();
    if let Some(r) = not_proceeding(check_write(ctx, &page, tid, xact, WriteKind::Delete)?) {
        return Ok(r);
    }
    // A delete changes the key (PostgreSQL sets HEAP_KEYS_UPDATED always).
    let infobits = XLHL_KEYS_UPDATED;
    mark_tuple_replaced(&mut page, tid.offset, xact.xid, xact.cid, infobits, tid)?;
    page.mark_dirty();
    let xl = XlHeapDelete {
        xmax: xact.xid,
        cid: xact.cid,
        offnum: tid.offset,
        infobits_set: infobits,
        flags: 0,
    };
    let block = LogBlock {
        id: 0,
        blkno: tid.block,
        page: &page,
        will_init: false,
        data: &[],
    };
    let at = log_heap_change(
        ctx.wal,
        rel.locator,
        XLOG_HEAP_DELETE,
        xact.xid,
        &[block],
        &xl.encode(),
    )?;
    Page::new(&mut *page).set_lsn(at.end);
    Ok(HeapWriteResult::Deleted)
}

/// Replaces the tuple at `otid` by `new_tuple` (from `form_tuple`) if the
/// rules allow it now; see [`HeapWriteResult`] for what else may happen.
pub fn heap_update(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    otid: ItemPointer,
    new_tuple: &[u8],
) -> Result<HeapWriteResult, PgError> {
    require_xid(xact, "update")?;
    check_tuple_size(new_tuple.len())?;
    let mut tuple = new_tuple.to_vec();
    prepare_new_tuple(&mut tuple, xact, HEAP_UPDATED)?;
    let logged = logged_tuple_data(&tuple)?;
    let need = maxalign(tuple.len());
    let xl = |new_offnum| XlHeapUpdate {
        old_xmax: xact.xid,
        cid: xact.cid,
        old_offnum: otid.offset,
        old_infobits_set: 0,
        flags: 0,
        new_offnum,
    };
    let buffers = ctx.buffers;
    let old_buf = buffers.read_buffer(
        &mut *ctx.smgr,
        ctx.wal,
        rel.locator,
        ForkNumber::Main,
        otid.block,
    )?;

    // The same page, if the new version fits there.
    {
        let mut page = old_buf.lock_exclusive();
        if let Some(r) = not_proceeding(check_write(ctx, &page, otid, xact, WriteKind::Update)?) {
            return Ok(r);
        }
        if heap_free_space(&page) >= need {
            let new_off = put_tuple(&mut page, otid.block, &tuple, None)?;
            let new_tid = ItemPointer::new(otid.block, new_off);
            mark_tuple_replaced(&mut page, otid.offset, xact.xid, xact.cid, 0, new_tid)?;
            page.mark_dirty();
            let block = LogBlock {
                id: 0,
                blkno: otid.block,
                page: &page,
                will_init: false,
                data: &logged,
            };
            let at = log_heap_change(
                ctx.wal,
                rel.locator,
                XLOG_HEAP_UPDATE,
                xact.xid,
                &[block],
                &xl(new_off).encode(),
            )?;
            Page::new(&mut *page).set_lsn(at.end);
            return Ok(HeapWriteResult::Updated { new_tid });
        }
    }

    // Another page: both locked in block order, the old tuple judged again.
    let mut targets = UpdateTargets::new(need);
    loop {
        let mut pair = targets.next_pair(ctx, rel, &old_buf)?;
        if let Some(r) = not_proceeding(check_write(ctx, &pair.old, otid, xact, WriteKind::Update)?)
        {
            return Ok(r);
        }
        init_if_new(&mut pair.new);
        if heap_free_space(&pair.new) < need {
            if pair.new_is_extension {
                return Err(PgError::internal(format!(
                    "no room for a tuple of {need} bytes on a new page"
                )));
            }
            continue;
        }
        let new_block = pair.new.block();
        let new_off = put_tuple(&mut pair.new, new_block, &tuple, None)?;
        let new_tid = ItemPointer::new(new_block, new_off);
        mark_tuple_replaced(&mut pair.old, otid.offset, xact.xid, xact.cid, 0, new_tid)?;
        let init = redo_can_init(&pair.new);
        pair.new.mark_dirty();
        pair.old.mark_dirty();
        let blocks = [
            LogBlock {
                id: 0,
                blkno: new_block,
                page: &pair.new,
                will_init: init,
                data: &logged,
            },
            LogBlock {
                id: 1,
                blkno: otid.block,
                page: &pair.old,
                will_init: false,
                data: &[],
            },
        ];
        let info = XLOG_HEAP_UPDATE | if init { XLOG_HEAP_INIT_PAGE } else { 0 };
        let at = log_heap_change(
            ctx.wal,
            rel.locator,
            info,
            xact.xid,
            &blocks,
            &xl(new_off).encode(),
        )?;
        Page::new(&mut *pair.new).set_lsn(at.end);
        Page::new(&mut *pair.old).set_lsn(at.end);
        rel.set_target_block(Some(new_block));
        return Ok(HeapWriteResult::Updated { new_tid });
    }
}

/// Read committed's re-check of a newer version of a row being deleted
/// (EvalPlanQual): does it still match the WHERE clause?
pub type DeleteRecheck<'r> = dyn FnMut(&[u8]) -> Result<bool, PgError> + 'r;

/// The same for an update: the new tuple computed from the newer version,
/// or `None` if it no longer matches.
pub type UpdateRecheck<'r> = dyn FnMut(&[u8]) -> Result<Option<Vec<u8>>, PgError> + 'r;

/// DELETE of one row found at `tid`, to the end: waits for concurrent
/// writers and, under read committed, follows the row to its newest
/// version, where `recheck` re-evaluates the WHERE clause (false: skip).
/// `interrupts` is polled while waiting (query cancel).
pub fn delete_row(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    tid: ItemPointer,
    recheck: &mut DeleteRecheck<'_>,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<RowOutcome, PgError> {
    let mut tid = tid;
    loop {
        match heap_delete(ctx, rel, xact, tid)? {
            HeapWriteResult::Deleted => return Ok(RowOutcome::Deleted { tid }),
            HeapWriteResult::Updated { .. } | HeapWriteResult::Skip => {
                return Ok(RowOutcome::Skipped)
            }
            HeapWriteResult::WaitFor(x) => {
                wait_for_writer(ctx, x, interrupts)
                    .map_err(|e| wait_context(e, "deleting", tid, &rel.name))?;
            }
            HeapWriteResult::FollowUpdate { ctid, prior_xmax } => {
                match fetch_next_version(ctx, rel, ctid, prior_xmax)? {
                    Some(newer) if recheck(&newer)? => tid = ctid,
                    _ => return Ok(RowOutcome::Skipped),
                }
            }
        }
    }
}

/// UPDATE of one row found at `tid` with `new_tuple`, to the end: as
/// [`delete_row`], and on a newer version `recheck` gives the new tuple
/// computed from it (`None`: the row no longer matches; skip it).
pub fn update_row(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    xact: &CurrentXact,
    tid: ItemPointer,
    new_tuple: Vec<u8>,
    recheck: &mut UpdateRecheck<'_>,
    interrupts: &mut dyn FnMut() -> Result<(), PgError>,
) -> Result<RowOutcome, PgError> {
    let (mut tid, mut new_tuple) = (tid, new_tuple);
    loop {
        match heap_update(ctx, rel, xact, tid, &new_tuple)? {
            HeapWriteResult::Updated { new_tid } => {
                return Ok(RowOutcome::Updated {
                    old_tid: tid,
                    new_tid,
                })
            }
            HeapWriteResult::Deleted | HeapWriteResult::Skip => return Ok(RowOutcome::Skipped),
            HeapWriteResult::WaitFor(x) => {
                wait_for_writer(ctx, x, interrupts)
                    .map_err(|e| wait_context(e, "updating", tid, &rel.name))?;
            }
            HeapWriteResult::FollowUpdate { ctid, prior_xmax } => {
                let Some(newer) = fetch_next_version(ctx, rel, ctid, prior_xmax)? else {
                    return Ok(RowOutcome::Skipped);
                };
                match recheck(&newer)? {
                    Some(t) => (tid, new_tuple) = (ctid, t),
                    None => return Ok(RowOutcome::Skipped),
                }
            }
        }
    }
}
