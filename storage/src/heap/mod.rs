//! Heap tables: tuple format (page-level access comes with the buffer manager).
pub mod tuple;
