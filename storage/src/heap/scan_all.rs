//! Every tuple stored in a heap page, with its state for VACUUM-like
//! decisions (PostgreSQL's index build scan, which uses
//! HeapTupleSatisfiesVacuum rather than a snapshot): an index must cover
//! every tuple some snapshot may still see, including rows other
//! transactions are inserting or deleting right now.
//!
//! # Locking
//!
//! The page's shared content lock while reading; tuples are copied out
//! before it is released (heapam rule A5).

use pgerror::PgError;

use crate::heap::heapam::{HeapContext, HeapRelation};
use crate::heap::tuple::{HeapTupleHeader, ItemPointer};
use crate::page::Page;
use crate::transam::{satisfies_vacuum, VacuumState};
use crate::types::{BlockNumber, ForkNumber, Xid};

/// The normal tuples of block `b` with their [`VacuumState`] as of now,
/// with `horizon` the oldest xmin any running transaction may still use
/// (`Transam::global_xmin`).
pub fn heap_page_tuples(
    ctx: &mut HeapContext<'_, '_>,
    rel: &HeapRelation,
    b: BlockNumber,
    horizon: Xid,
) -> Result<Vec<(ItemPointer, Vec<u8>, VacuumState)>, PgError> {
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
        let state = satisfies_vacuum(&h, horizon, ctx.transam, ctx.clog)?;
        out.push((ItemPointer::new(b, off), item.to_vec(), state));
    }
    Ok(out)
}
