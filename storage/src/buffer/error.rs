//! The buffer manager's error, with PostgreSQL's message texts, and how it
//! reaches a client.
//!
//! Every variant is an ERROR for the current transaction except what
//! [`SmgrError::to_pg_error`] makes a PANIC (a failed fsync). The buffer
//! involved is always left consistent: a failed read leaves it without
//! `BM_VALID` (the next reader tries again), a failed write leaves it dirty
//! with `BM_IO_ERROR` (the next flush tries again).

use pgerror::{PgError, SqlState};

use crate::page::PageError;
use crate::smgr::SmgrError;
use crate::types::Lsn;

use super::desc::BufferId;

/// What went wrong. The caller fails the current transaction.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// Reading, writing or extending the relation file failed; the message
    /// names the block and the file.
    #[error(transparent)]
    Storage(#[from] SmgrError),
    /// The block read from disk failed its checksum or header checks
    /// (`XX001`); the buffer stays invalid.
    #[error("invalid page in block {blkno} of relation {path}")]
    InvalidPage {
        blkno: u32,
        path: String,
        source: PageError,
    },
    /// The WAL could not be flushed as far as a dirty page needed, so the
    /// page was not written and stays dirty. The WAL's own error is passed on.
    #[error(
        "could not flush WAL to {lsn} before writing block {blkno} of relation {path}: {cause}"
    )]
    WalFlush {
        lsn: Lsn,
        blkno: u32,
        path: String,
        cause: PgError,
    },
    /// Every buffer is pinned: shared_buffers is too small for the number of
    /// processes, or this process pins too many buffers.
    #[error("no unpinned buffers available")]
    NoUnpinnedBuffers,
    /// Extending found a buffer already holding non-zero data for the new
    /// block.
    #[error("unexpected data beyond EOF in block {blkno} of relation {path}")]
    UnexpectedDataBeyondEof { blkno: u32, path: String },
    /// `drop_relation_buffers` met a buffer this very process pins: a bug
    /// in the caller, which must release its pins first.
    #[error("buffer {id} is pinned in drop_relation_buffers")]
    PinnedByThisProcess { id: BufferId },
}

impl BufferError {
    /// As a client or the server log sees it.
    pub fn to_pg_error(&self) -> PgError {
        match self {
            BufferError::Storage(e) => e.to_pg_error(),
            BufferError::InvalidPage { source, .. } => {
                PgError::new(SqlState::DATA_CORRUPTED, self.to_string())
                    .with_detail(source.to_string())
            }
            BufferError::WalFlush { cause, .. } => cause.clone(),
            BufferError::UnexpectedDataBeyondEof { .. } => PgError::internal(self.to_string())
                .with_hint(
                "This has been seen to occur with buggy kernels; consider updating your system.",
            ),
            BufferError::NoUnpinnedBuffers | BufferError::PinnedByThisProcess { .. } => {
                PgError::internal(self.to_string())
            }
        }
    }
}

impl From<BufferError> for PgError {
    fn from(e: BufferError) -> PgError {
        e.to_pg_error()
    }
}
