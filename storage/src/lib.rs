//! The storage engine (issue 3, being built): relation files, pages, heap
//! tuples, WAL, the commit log and the control file.
//!
//! Table of contents (each module opens with its rules):
//! - [`types`]: newtypes that cross process and disk boundaries.
//! - `smgr`: relation files in 8 KB pages and 1 GB segments.
//! - `page`: the slotted page layout with LSN and checksum.
//! - `heap`: heap tuple format.
//! - `wal`: WAL record format, segment files, reading with CRC checks.
//! - `control`: `global/pg_control`.
//! - `clog`: the commit log in `pg_xact`.
//!
//! Nothing here is wired into the server yet: these are the on-disk formats,
//! each tested on its own, that the buffer manager, WAL insertion and
//! recovery will be built on.

pub mod types;
pub mod clog;
pub mod control;
pub mod heap;
pub mod page;
pub mod smgr;
pub mod wal;
