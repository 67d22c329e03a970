//! The storage manager's errors, with PostgreSQL's message texts, and their
//! SQLSTATEs for clients (`errcode_for_file_access`). Also used by
//! `control.rs` for its file errors.

use std::fmt;
use std::io;

use pgerror::{PgError, Severity, SqlState};

use crate::types::BLCKSZ;

use super::MAX_BLOCK_NUMBER;

/// `%m`: the C library's text for an errno, as PostgreSQL prints it
/// ("No such file or directory", without Rust's "(os error 2)").
pub(crate) struct Errm<'a>(pub(crate) &'a io::Error);

impl fmt::Display for Errm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // std formats an OS error as strerror's text plus " (os error N)".
        let text = self.0.to_string();
        match self.0.raw_os_error() {
            Some(code) => {
                let suffix = format!(" (os error {code})");
                f.write_str(text.strip_suffix(&suffix).unwrap_or(&text))
            }
            None => f.write_str(&text),
        }
    }
}

const UNDEFINED_FILE: SqlState = SqlState::UNDEFINED_FILE;
const DUPLICATE_FILE: SqlState = SqlState::DUPLICATE_FILE;
const DISK_FULL: SqlState = SqlState::DISK_FULL;
const INSUFFICIENT_RESOURCES: SqlState = SqlState::INSUFFICIENT_RESOURCES;

/// PostgreSQL's `errcode_for_file_access`: the SQLSTATE for a failed file
/// operation, by errno.
pub(crate) fn sqlstate_for_file_access(e: &io::Error) -> SqlState {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => UNDEFINED_FILE,
        Some(libc::EEXIST) => DUPLICATE_FILE,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
            SqlState::INSUFFICIENT_PRIVILEGE
        }
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => DISK_FULL,
        Some(libc::ENFILE) | Some(libc::EMFILE) => INSUFFICIENT_RESOURCES,
        Some(libc::ENOMEM) => SqlState::OUT_OF_MEMORY,
        _ => SqlState::IO_ERROR,
    }
}

/// What went wrong with a relation file. Messages are PostgreSQL's; paths
/// are relative to the data directory.
#[derive(Debug, thiserror::Error)]
pub enum SmgrError {
    #[error("could not create file \"{path}\": {}", Errm(.source))]
    Create { path: String, source: io::Error },
    #[error("could not create directory \"{path}\": {}", Errm(.source))]
    CreateDir { path: String, source: io::Error },
    #[error("could not open file \"{path}\": {}", Errm(.source))]
    Open { path: String, source: io::Error },
    #[error("could not open file \"{path}\" (target block {blkno}): {}", Errm(.source))]
    OpenSegment {
        path: String,
        blkno: u32,
        source: io::Error,
    },
    #[error("could not open file \"{path}\" (target block {blkno}): previous segment is only {prev_blocks} blocks")]
    PreviousSegmentShort {
        path: String,
        blkno: u32,
        prev_blocks: u64,
    },
    #[error("could not stat file \"{path}\": {}", Errm(.source))]
    Stat { path: String, source: io::Error },
    #[error("segment too big: file \"{path}\" has {blocks} blocks, a segment holds {max_blocks}")]
    SegmentTooBig {
        path: String,
        blocks: u64,
        max_blocks: u32,
    },
    #[error("could not read block {blkno} in file \"{path}\": {}", Errm(.source))]
    Read {
        path: String,
        blkno: u32,
        source: io::Error,
    },
    #[error(
        "could not read block {blkno} in file \"{path}\": read only {read_bytes} of {} bytes",
        BLCKSZ
    )]
    ShortRead {
        path: String,
        blkno: u32,
        read_bytes: usize,
    },
    #[error("could not write block {blkno} in file \"{path}\": {}", Errm(.source))]
    Write {
        path: String,
        blkno: u32,
        source: io::Error,
    },
    #[error(
        "could not write block {blkno} in file \"{path}\": wrote only {written_bytes} of {} bytes",
        BLCKSZ
    )]
    ShortWrite {
        path: String,
        blkno: u32,
        written_bytes: usize,
    },
    #[error("could not extend file \"{path}\": {}", Errm(.source))]
    Extend { path: String, source: io::Error },
    #[error(
        "could not extend file \"{path}\": wrote only {written_bytes} of {} bytes at block {blkno}",
        BLCKSZ
    )]
    ShortExtend {
        path: String,
        blkno: u32,
        written_bytes: usize,
    },
    #[error("cannot extend file \"{path}\" beyond {} blocks", MAX_BLOCK_NUMBER)]
    ExtendLimit { path: String },
    #[error("could not extend file \"{path}\": block {blkno} is not the next block, the file has {nblocks} blocks")]
    ExtendNotAtEnd {
        path: String,
        blkno: u32,
        nblocks: u32,
    },
    #[error("could not truncate file \"{path}\" to {nblocks} blocks: {}", Errm(.source))]
    Truncate {
        path: String,
        nblocks: u32,
        source: io::Error,
    },
    #[error(
        "could not truncate file \"{path}\" to {nblocks} blocks: it's only {current} blocks now"
    )]
    TruncateBeyondEnd {
        path: String,
        nblocks: u32,
        current: u32,
    },
    #[error("could not fsync file \"{path}\": {}", Errm(.source))]
    Fsync { path: String, source: io::Error },
    #[error("could not remove file \"{path}\": {}", Errm(.source))]
    Remove { path: String, source: io::Error },
}

impl SmgrError {
    /// The file (or fork) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            SmgrError::Open { source, .. } | SmgrError::OpenSegment { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            _ => false,
        }
    }

    /// As a client or the server log sees it. A failed fsync is a PANIC
    /// (PostgreSQL's `data_sync_elevel`), everything else an ERROR.
    pub fn to_pg_error(&self) -> PgError {
        let message = self.to_string();
        match self {
            SmgrError::Fsync { source, .. } => {
                PgError::new(sqlstate_for_file_access(source), message)
                    .with_severity(Severity::Panic)
            }
            SmgrError::ShortRead { .. } | SmgrError::SegmentTooBig { .. } => {
                PgError::new(SqlState::DATA_CORRUPTED, message)
            }
            SmgrError::ShortWrite { .. } | SmgrError::ShortExtend { .. } => {
                PgError::new(DISK_FULL, message).with_hint("Check free disk space.")
            }
            SmgrError::Extend { source, .. } => {
                PgError::new(sqlstate_for_file_access(source), message)
                    .with_hint("Check free disk space.")
            }
            SmgrError::ExtendLimit { .. } => {
                PgError::new(SqlState::PROGRAM_LIMIT_EXCEEDED, message)
            }
            SmgrError::ExtendNotAtEnd { .. } | SmgrError::TruncateBeyondEnd { .. } => {
                PgError::internal(message)
            }
            SmgrError::PreviousSegmentShort { .. } => PgError::new(SqlState::IO_ERROR, message),
            SmgrError::Create { source, .. }
            | SmgrError::CreateDir { source, .. }
            | SmgrError::Open { source, .. }
            | SmgrError::OpenSegment { source, .. }
            | SmgrError::Stat { source, .. }
            | SmgrError::Read { source, .. }
            | SmgrError::Write { source, .. }
            | SmgrError::Truncate { source, .. }
            | SmgrError::Remove { source, .. } => {
                PgError::new(sqlstate_for_file_access(source), message)
            }
        }
    }
}

impl From<SmgrError> for PgError {
    fn from(e: SmgrError) -> PgError {
        e.to_pg_error()
    }
}
