//! Heap tables: the tuple format and heap access on shared buffers.
//!
//! - [`tuple`]: the tuple header, null bitmap, `form_tuple` / `deform_tuple`.
//! - [`datum`]: column values, descriptors and their encoding in a tuple.
//! - [`heapam`]: insert, fetch, scan, delete, update (PostgreSQL's
//!   `heapam.c`), and the executor's wait / follow-the-chain loop.
//! - [`hio`]: finding a page with room for a new tuple (`hio.c`).
//! - [`fsm`]: the free space map, one byte per heap block in the FSM fork
//!   (`freespace.c`).
//! - [`vacuum`]: VACUUM (pruning dead tuples in two passes around the
//!   index cleanup, tail truncation) and ANALYZE's counts (`vacuumlazy.c`).
//! - [`heapam_xlog`]: the Heap WAL records, the page changes they describe,
//!   and `heap_redo` (`heapam_xlog.h`, `heap_redo`).
pub mod datum;
pub mod fsm;
pub mod heapam;
pub mod heapam_xlog;
pub mod hio;
pub mod scan_all;
pub mod tuple;
pub mod vacuum;

pub use heapam::{
    check_tuple_size, delete_row, heap_beginscan, heap_delete, heap_fetch, heap_insert,
    heap_multi_insert, heap_update, update_row, CurrentXact, DeleteRecheck, HeapContext,
    HeapRelation, HeapScan, HeapWriteResult, RowOutcome, UpdateRecheck, XidWaiter,
};
pub use heapam_xlog::heap_redo;
pub use vacuum::{
    dead_tid_lookup, heap_analyze, heap_truncate_tail, heap_vacuum, AnalyzeStats, IndexCleanup,
    VacuumOptions, VacuumStats,
};

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod redo_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vacuum_tests;
