//! Heap tables: tuple format (page-level access comes with the buffer manager).
//!
//! - [`tuple`]: the tuple header, null bitmap, `form_tuple` / `deform_tuple`.
//! - [`datum`]: column values, descriptors and their encoding in a tuple.
pub mod datum;
pub mod tuple;
pub mod heapam;
