//! The commit log's error, and how it reaches a client.
//!
//! Texts follow PostgreSQL's `SlruReportIOError`: the message names the
//! transaction whose status could not be accessed (0 when the failing I/O was
//! the write of a page, which serves no one transaction), the detail names the
//! file, the offset and the operating system's reason (`%m`).

use super::page::SegmentNo;
use crate::types::{Lsn, Xid};
use pgerror::{PgError, Severity, SqlState};
use std::{fmt, io};

/// What was being done to a `pg_xact` file when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlruOp {
    Open,
    Read,
    Write,
    Fsync,
    /// Creating the `pg_xact` directory (initdb).
    CreateDir,
    /// Listing the directory (truncation).
    ScanDir,
    /// Removing a segment (truncation).
    Remove,
}

/// A commit log operation failed. What the caller must do:
///
/// * [`ClogError::Io`]: fail the current transaction (ERROR); the statuses
///   involved are unknown, not wrong. After a failed fsync the kernel may have
///   dropped the pages it could not write, so that one is a PANIC: the
///   cluster restarts and WAL replay rewrites them (PostgreSQL's
///   `data_sync_retry = off`).
/// * [`ClogError::WalFlush`]: the WAL could not be flushed as far as a dirty
///   page needed; the page stayed dirty. The WAL's own error is passed on.
#[derive(Debug)]
pub enum ClogError {
    Io {
        /// The transaction asked about; [`Xid::INVALID`] when none.
        xid: Xid,
        op: SlruOp,
        /// Relative to the data directory, as PostgreSQL prints it: `pg_xact/0000`.
        path: String,
        offset_bytes: u64,
        source: io::Error,
    },
    WalFlush {
        lsn: Lsn,
        cause: PgError,
    },
}

impl ClogError {
    pub(crate) fn io(op: SlruOp, path: String, offset_bytes: u64, source: io::Error) -> ClogError {
        ClogError::Io {
            xid: Xid::INVALID,
            op,
            path,
            offset_bytes,
            source,
        }
    }

    /// The same error, reported as a failure to reach `xid`'s status.
    pub(crate) fn for_xid(mut self, for_xid: Xid) -> ClogError {
        if let ClogError::Io { xid, .. } = &mut self {
            *xid = for_xid;
        }
        self
    }

    /// The segment file involved, if any.
    pub fn segment(&self) -> Option<SegmentNo> {
        match self {
            ClogError::Io { path, .. } => {
                path.rsplit('/').next().and_then(SegmentNo::parse_file_name)
            }
            ClogError::WalFlush { .. } => None,
        }
    }

    /// PostgreSQL's errdetail, when it has one.
    pub fn detail(&self) -> Option<String> {
        let ClogError::Io {
            op,
            path,
            offset_bytes,
            source,
            ..
        } = self
        else {
            return None;
        };
        let reason = os_reason(source);
        match op {
            SlruOp::Open => Some(format!("Could not open file \"{path}\": {reason}.")),
            SlruOp::Read => Some(format!(
                "Could not read from file \"{path}\" at offset {offset_bytes}: {reason}."
            )),
            SlruOp::Write => Some(format!(
                "Could not write to file \"{path}\" at offset {offset_bytes}: {reason}."
            )),
            SlruOp::Fsync => Some(format!("Could not fsync file \"{path}\": {reason}.")),
            SlruOp::CreateDir | SlruOp::ScanDir | SlruOp::Remove => None,
        }
    }
}

/// The operating system's text for an error, as `%m` prints it
/// ("No such file or directory", without Rust's "(os error 2)").
fn os_reason(err: &io::Error) -> String {
    match (err.raw_os_error(), err.kind()) {
        (Some(code), _) => nix::errno::Errno::from_raw(code).desc().to_string(),
        (None, io::ErrorKind::UnexpectedEof) => "read too few bytes".to_string(),
        (None, io::ErrorKind::WriteZero) => "wrote too few bytes".to_string(),
        (None, _) => err.to_string(),
    }
}

impl fmt::Display for ClogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClogError::Io {
                op: SlruOp::CreateDir,
                path,
                source,
                ..
            } => write!(
                f,
                "could not create directory \"{path}\": {}",
                os_reason(source)
            ),
            ClogError::Io {
                op: SlruOp::ScanDir,
                path,
                source,
                ..
            } => write!(
                f,
                "could not open directory \"{path}\": {}",
                os_reason(source)
            ),
            ClogError::Io {
                op: SlruOp::Remove,
                path,
                source,
                ..
            } => write!(f, "could not remove file \"{path}\": {}", os_reason(source)),
            ClogError::Io { xid, .. } => write!(f, "could not access status of transaction {xid}"),
            ClogError::WalFlush { lsn, cause } => write!(
                f,
                "could not flush WAL up to {lsn} before writing a commit log page: {}",
                cause.message
            ),
        }
    }
}

impl std::error::Error for ClogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClogError::Io { source, .. } => Some(source),
            ClogError::WalFlush { cause, .. } => Some(cause),
        }
    }
}

impl From<ClogError> for PgError {
    fn from(err: ClogError) -> PgError {
        let message = err.to_string();
        let detail = err.detail();
        match err {
            ClogError::WalFlush { cause, .. } => cause,
            ClogError::Io { op, .. } => {
                let e = PgError::new(SqlState::IO_ERROR, message);
                let e = match detail {
                    Some(detail) => e.with_detail(detail),
                    None => e,
                };
                if op == SlruOp::Fsync {
                    e.with_severity(Severity::Panic)
                } else {
                    e
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_failure_reads_like_postgres() {
        let err = ClogError::io(
            SlruOp::Open,
            "pg_xact/0000".into(),
            0,
            io::Error::from_raw_os_error(libc::ENOENT),
        )
        .for_xid(Xid(1234));
        let pg = PgError::from(err);
        assert_eq!(pg.code, SqlState::IO_ERROR);
        assert_eq!(pg.severity, Severity::Error);
        assert_eq!(pg.message, "could not access status of transaction 1234");
        assert_eq!(
            pg.detail.as_deref(),
            Some("Could not open file \"pg_xact/0000\": No such file or directory.")
        );
    }

    #[test]
    fn write_and_fsync_failures() {
        let write = ClogError::io(
            SlruOp::Write,
            "pg_xact/10000".into(),
            16384,
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(write.segment(), Some(SegmentNo(0x10000)));
        let pg = PgError::from(write);
        assert_eq!(pg.message, "could not access status of transaction 0");
        assert_eq!(
            pg.detail.as_deref(),
            Some("Could not write to file \"pg_xact/10000\" at offset 16384: No space left on device.")
        );
        let fsync = ClogError::io(
            SlruOp::Fsync,
            "pg_xact/0001".into(),
            0,
            io::Error::from_raw_os_error(libc::EIO),
        );
        let pg = PgError::from(fsync);
        assert_eq!(pg.severity, Severity::Panic);
        assert_eq!(
            pg.detail.as_deref(),
            Some("Could not fsync file \"pg_xact/0001\": I/O error.")
        );
    }

    #[test]
    fn a_wal_flush_failure_passes_the_wal_error_on() {
        let cause = PgError::new(
            SqlState::IO_ERROR,
            "could not fsync file \"pg_wal/000000010000000000000001\"",
        );
        let err = ClogError::WalFlush {
            lsn: Lsn(0x1_0000_0028),
            cause: cause.clone(),
        };
        assert!(err
            .to_string()
            .starts_with("could not flush WAL up to 1/28"));
        assert_eq!(PgError::from(err), cause);
    }
}
