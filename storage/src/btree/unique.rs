//! Judging the heap tuple behind an equal index entry for a unique check
//! (PostgreSQL's `_bt_check_unique` with `SnapshotDirty`,
//! `HeapTupleSatisfiesDirty`).
//!
//! `bt_insert` does not read the heap itself: the caller passes a
//! [`UniqueChecker`], usually a closure around [`heap_unique_check`] for
//! the index's table and the inserting transaction. The answer for an
//! entry's heap tuple, as of now (not as of a snapshot):
//!
//! | heap tuple | answer |
//! |---|---|
//! | no tuple at the TID, inserter aborted, or deleted by a committed transaction or by us | `Dead` |
//! | inserted by a running transaction (not us) | `InProgress(xmin)` |
//! | being deleted by a running transaction (not us) | `InProgress(xmax)` |
//! | otherwise (committed or ours, and not deleted, or deleter aborted, or only locked) | `Live` |
//!
//! `InProgress` makes the inserter release its locks, wait for that
//! transaction and check again: if it commits the duplicate is live (or
//! dead, for a deleter), if it aborts it is not.
//!
//! # Locking
//!
//! The heap page is pinned and locked shared while its header is read; the
//! caller (bt_insert) holds the index leaf exclusively meanwhile (index
//! page, then heap page, the order PostgreSQL uses; heap code never locks
//! an index page while holding a heap page).

use pgerror::PgError;

use crate::clog::XidStatus;
use crate::heap::tuple::{HeapTupleHeader, ItemPointer};
use crate::heap::HeapContext;
use crate::page::Page;
use crate::transam::{XidRunningOracle, XidStatusOracle};
use crate::types::{ForkNumber, RelFileLocator, Xid};

/// The fate of one existing entry's heap tuple, for a unique check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueCheck {
    /// Gone or never committed: no conflict.
    Dead,
    /// A live duplicate: the insert fails with 23505.
    Live,
    /// That transaction inserts or deletes it now: wait for it, look again.
    InProgress(Xid),
}

/// Judges the heap tuple at a TID. Gets the context `bt_insert` runs in.
pub type UniqueChecker<'r> =
    dyn FnMut(&mut HeapContext<'_, '_>, ItemPointer) -> Result<UniqueCheck, PgError> + 'r;

/// Committed? The special xids per visibility rule V6.
fn committed(clog: &(impl XidStatusOracle + ?Sized), xid: Xid) -> Result<bool, PgError> {
    if !xid.is_normal() {
        return Ok(xid.is_valid());
    }
    Ok(matches!(clog.status(xid)?.0, XidStatus::Committed))
}

/// The table of the module header for one tuple header, as transaction
/// `my_xid` sees it (PostgreSQL's `HeapTupleSatisfiesDirty`). The proc
/// array is asked before the commit log (visibility rule V1).
pub fn unique_status(
    t: &HeapTupleHeader,
    my_xid: Xid,
    clog: &(impl XidStatusOracle + ?Sized),
    running: &(impl XidRunningOracle + ?Sized),
) -> Result<UniqueCheck, PgError> {
    let me = |x: Xid| my_xid.is_valid() && x == my_xid;
    if !t.xmin_committed() {
        if t.xmin_invalid() {
            return Ok(UniqueCheck::Dead);
        }
        if me(t.xmin) {
            // Our own row: gone only if we deleted it.
            let deleted = !t.xmax_invalid() && !t.xmax_is_locked_only() && me(t.xmax);
            return Ok(if deleted {
                UniqueCheck::Dead
            } else {
                UniqueCheck::Live
            });
        }
        if running.is_running(t.xmin) {
            return Ok(UniqueCheck::InProgress(t.xmin));
        }
        if !committed(clog, t.xmin)? {
            return Ok(UniqueCheck::Dead);
        }
    }
    if t.xmax_invalid() || t.xmax_is_locked_only() {
        return Ok(UniqueCheck::Live);
    }
    if t.xmax_committed() || me(t.xmax) {
        return Ok(UniqueCheck::Dead);
    }
    if running.is_running(t.xmax) {
        return Ok(UniqueCheck::InProgress(t.xmax));
    }
    Ok(if committed(clog, t.xmax)? {
        UniqueCheck::Dead
    } else {
        UniqueCheck::Live
    })
}

/// [`unique_status`] of the heap tuple at `tid` of table `heap` (pin, lock
/// shared, read the header, unlock); `Dead` if there is none.
pub fn heap_unique_check(
    ctx: &mut HeapContext<'_, '_>,
    heap: RelFileLocator,
    tid: ItemPointer,
    my_xid: Xid,
) -> Result<UniqueCheck, PgError> {
    if tid.block.0 >= ctx.smgr.nblocks(heap, ForkNumber::Main)? {
        return Ok(UniqueCheck::Dead);
    }
    let buffers = ctx.buffers;
    let buf = buffers.read_buffer(&mut *ctx.smgr, ctx.wal, heap, ForkNumber::Main, tid.block)?;
    let page = buf.lock_shared();
    let p = Page::new(&*page);
    if !p.item_id(tid.offset).is_some_and(|lp| lp.is_normal()) {
        return Ok(UniqueCheck::Dead);
    }
    let Some(item) = p.get_item(tid.offset)? else {
        return Ok(UniqueCheck::Dead);
    };
    let header = HeapTupleHeader::read(item)?;
    unique_status(&header, my_xid, ctx.clog, ctx.transam)
}
