//! Write-ahead log: record format, segment files, reading.
//!
//! Every change to a data page is first described by a WAL record; the
//! record reaches disk before the page does, and a commit is acknowledged
//! only once its commit record is on disk. After a crash the startup
//! process reads the WAL from the last checkpoint's redo point and replays
//! each record, stopping at the first one that does not check out.
//!
//! ```text
//!  RecordBuilder ──finish──▶ AssembledRecord ──seal(prev)──▶ bytes
//!        (record.rs)                                           │
//!                              append_record(sink, lsn, bytes) │ (segment.rs)
//!                                                              ▼
//!             WalSink: SegmentFileSink (pg_wal/ files), MemoryWal   (sink.rs)
//!                                                              │
//!     WalReader ◀── WalSource: SegmentDir (pg_wal/ files), MemoryWal
//!        │ (reader.rs)
//!        └─▶ ReadRecord { start, end, record: DecodedRecord } ... EndOfWal
//! ```
//!
//! Table of contents:
//! - [`record`]: the record layout, [`RecordBuilder`], [`decode`].
//! - [`segment`]: segment file names, page headers, LSN arithmetic,
//!   [`append_record`] and the [`WalSink`] it writes to.
//! - [`sink`]: [`SegmentFileSink`] (files in `pg_wal/`) and [`MemoryWal`].
//! - [`reader`]: [`WalReader`], which validates pages and records and
//!   reports where the WAL ends ([`EndOfWal`]).
//!
//! Who runs it: the startup process reads (recovery); backends build
//! records; the WAL writer path (later: backends at commit, the walwriter)
//! appends and syncs. Everything in this module is process-local: it
//! touches no shared memory and takes no locks; the WAL buffers that will
//! sit between builders and files bring their own.
//!
//! Not here yet (later steps): insertion into shared WAL buffers with
//! concurrent reservation (built on [`segment::lsn_to_bytepos`] and
//! [`AssembledRecord::seal`]), flushing with group commit, the redo
//! routines of each resource manager.

pub mod reader;
pub mod record;
pub mod segment;
pub mod sink;

pub use reader::{EndOfWal, EndReason, ReadRecord, SegmentDir, WalReader, WalSource};
pub use record::{
    decode, AssembledRecord, BlockFlags, BlockRef, DecodedRecord, PageImage, RecordBuilder,
    RecordError, RecordHeader, RecordTooLarge, ResourceManager,
};
pub use segment::{append_record, AppendedRecord, TimeLineId, WalSink};
pub use sink::{MemoryWal, SegmentFileSink};

use std::path::PathBuf;

/// What can go wrong with WAL files beyond the end of the WAL (which the
/// reader reports as [`EndOfWal`], not as an error). The caller cannot
/// continue without its WAL: recovery fails, insertion PANICs.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("could not {op} file \"{}\": {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
