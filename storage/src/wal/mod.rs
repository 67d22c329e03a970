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
//! Shared insertion and flushing, on a region of the shared segment:
//!
//! ```text
//!   backend ── insert(record) ─▶ reserve [start,end) ─▶ copy into WAL buffers
//!      │            (insert.rs: 8 insertion slots, no global lock while copying)
//!      └── flush(end) ─▶ wait for insertions ─▶ WALWriteLock ─▶ pwrite + fdatasync
//!                        (write.rs: group commit)          every segment file
//! ```
//!
//! - [`shmem`]: the region's layout ([`WalRegion`], [`shmem_size_bytes`]),
//!   the insertion slots' wait primitive.
//! - [`insert`]: [`SharedWal`], the per-process handle; the insertion
//!   protocol, its invariants and the WAL lock order.
//! - [`write`]: flushing with group commit, the walwriter's
//!   [`SharedWal::write_some`], start-up ([`SharedWal::init_at`]), and the
//!   commit log's [`WalFlush`](crate::clog::WalFlush).
//!
//! Who runs it: the startup process reads (recovery) and then starts
//! insertion at the end of the WAL; backends build and insert records and
//! flush at commit; the walwriter flushes asynchronous commits; the
//! checkpointer moves the redo pointer. `record`, `segment`, `sink` and
//! `reader` are process-local; `shmem`, `insert` and `write` work on the
//! shared region under the locks `insert.rs` lists.
//!
//! Not here yet (later steps): the redo routines of each resource manager,
//! segment recycling (the checkpointer's), `commit_delay`.

pub mod insert;
pub mod reader;
pub mod record;
pub mod segment;
pub mod shmem;
pub mod sink;
pub mod write;

pub use insert::SharedWal;
pub use reader::{EndOfWal, EndReason, ReadRecord, SegmentDir, WalReader, WalSource};
pub use record::{
    decode, AssembledRecord, BlockFlags, BlockRef, DecodedRecord, PageImage, RecordBuilder,
    RecordError, RecordHeader, RecordTooLarge, ResourceManager,
};
pub use segment::{append_record, AppendedRecord, TimeLineId, WalSink};
pub use shmem::{
    shmem_size_bytes, WalRegion, WalStats, MIN_WAL_BUFFERS_PAGES, NUM_INSERTION_SLOTS,
    WAL_SHMEM_ALIGN,
};
pub use sink::{MemoryWal, SegmentFileSink};
pub use write::wal_error_to_pg;

use crate::types::Lsn;
use std::path::PathBuf;

/// What can go wrong with WAL files beyond the end of the WAL (which the
/// reader reports as [`EndOfWal`], not as an error), and with the shared
/// WAL. The caller cannot continue without its WAL: recovery fails,
/// insertion and flushing PANIC, except [`WalError::FlushPastEnd`] (an
/// ERROR: the caller passed a bad LSN) and [`WalError::BadStartPosition`]
/// (start-up refuses).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("could not {op} file \"{}\": {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Insertion or flushing before the startup process ran `init_at`.
    #[error("WAL insertion is not started: recovery has not finished")]
    NotStarted,
    /// An earlier insertion failed half-way: the WAL has a hole.
    #[error("WAL is broken by a failed insertion; nothing more can be flushed")]
    Broken,
    /// A flush request beyond the end of the WAL inserted so far.
    #[error("xlog flush request {requested} is not satisfied --- flushed only to {flushed}")]
    FlushPastEnd { requested: Lsn, flushed: Lsn },
    /// `init_at` was given a position no record can start at.
    #[error("invalid WAL start position {0}")]
    BadStartPosition(Lsn),
    /// The shared region is unusable or its state contradicts itself.
    #[error("WAL shared memory: {0}")]
    Shmem(String),
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod xlog_cross_process_tests;
#[cfg(test)]
mod xlog_tests;
