//! Removing and recycling WAL segments after a checkpoint (PostgreSQL's
//! `RemoveOldXlogFiles`, `RemoveXlogFile`, `InstallXLogFileSegment` and
//! `XLOGfileslop`).
//!
//! Run by whoever completes a checkpoint (the checkpointer; the startup
//! process for the end-of-recovery checkpoint), after `pg_control` names
//! the new checkpoint.
//!
//! ```text
//!  pg_wal/   ... 0F 10 11 │ 12 13 [14] │ 15 16          (segment numbers)
//!                          │  ▲      ▲  │  ▲  ▲
//!   candidates: below the  │  redo  insert  future names: recycled old
//!   redo segment (minus    │ segment       segments land here, up to
//!   wal_keep_segments) and │               redo segment + min_wal_size - 1
//!   done with by the archiver
//! ```
//!
//! A candidate is *recycled* (renamed to the lowest free future segment
//! name, so the WAL writer later finds it already allocated and writes over
//! it) while that name is within `min_wal_size_segments` of the redo
//! segment, and deleted otherwise. So `pg_wal` holds about
//! `max(min_wal_size, WAL written between two checkpoints)` worth of
//! segments. PostgreSQL also stretches the recycling horizon by an estimate
//! of the WAL one checkpoint cycle writes; we use `min_wal_size` alone.
//! No segment is ever pre-allocated ("0 WAL file(s) added").
//!
//! # Invariants
//!
//! 1. Nothing at or after the segment holding the redo point of the
//!    checkpoint in `pg_control` is removed or renamed, nor the
//!    `wal_keep_segments` segments before it.
//! 2. A segment is removed or recycled only if `may_remove(name)` says the
//!    archiver is done with it (`archive_status/<name>.done`, or archiving
//!    off); its `.done`/`.ready` markers go with it.
//! 3. Recycling never replaces a file: the new name is made with `link`,
//!    which fails if the name exists (the WAL writer may create that very
//!    segment at the same moment), then the old name is unlinked.
//!
//! # Crash safety
//!
//! A recycled segment keeps its old contents; every page header in it names
//! an LSN one or more segments back, so the WAL reader takes it for the end
//! of the WAL until the writer has overwritten a page. A crash between
//! `link` and `unlink` leaves one file under two names; the old one is
//! below the redo point and goes at the next checkpoint. The directory is
//! fsynced after the changes (with `fsync` on).

use std::io;
use std::path::Path;

use pgerror::{PgError, Severity, SqlState};

use crate::types::Lsn;
use crate::wal::segment::parse_segment_file_name;
use crate::wal::segment::segment_file_name;
use crate::wal::TimeLineId;

/// How much WAL to keep and how much to recycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalRetention {
    /// `min_wal_size` in segments: old segments are recycled rather than
    /// removed while the future names they take are within this many
    /// segments of the redo point's (PostgreSQL's default 80 MB: 5).
    pub min_wal_size_segments: u64,
    /// `wal_keep_size` in segments: kept before the redo point's segment.
    pub wal_keep_segments: u64,
}

impl Default for WalRetention {
    fn default() -> Self {
        WalRetention {
            min_wal_size_segments: 5,
            wal_keep_segments: 0,
        }
    }
}

/// What [`remove_old_wal_segments`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalRemoval {
    pub removed: usize,
    pub recycled: usize,
    /// Candidates the archiver was not done with.
    pub kept_for_archiver: usize,
}

/// Removes or recycles the segments of `timeline` in `pg_wal` that are
/// wholly before `redo`'s segment (see the module docs); `insert` is the
/// current insert position (future names start after its segment).
pub fn remove_old_wal_segments(
    pg_wal: &Path,
    timeline: TimeLineId,
    redo: Lsn,
    insert: Lsn,
    retention: WalRetention,
    may_remove: &dyn Fn(&str) -> bool,
    fsync: bool,
) -> Result<WalRemoval, PgError> {
    let cutoff = redo.segment().saturating_sub(retention.wal_keep_segments);
    let recycle_upto = (redo.segment() + retention.min_wal_size_segments).saturating_sub(1);
    let mut candidates = Vec::new();
    let mut existing_future = std::collections::BTreeSet::new();
    let entries = std::fs::read_dir(pg_wal).map_err(|e| {
        io_error(format!(
            "could not open directory \"{}\": {e}",
            pg_wal.display()
        ))
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            io_error(format!(
                "could not read directory \"{}\": {e}",
                pg_wal.display()
            ))
        })?;
        let name = entry.file_name();
        let Some((tli, segno)) = name.to_str().and_then(parse_segment_file_name) else {
            continue;
        };
        if tli != timeline {
            continue;
        }
        if segno < cutoff {
            candidates.push(segno);
        } else if segno > insert.segment() {
            existing_future.insert(segno);
        }
    }
    candidates.sort_unstable();

    let mut out = WalRemoval::default();
    let mut next_future = insert.segment() + 1;
    for segno in candidates {
        let name = segment_file_name(timeline, segno);
        if !may_remove(&name) {
            out.kept_for_archiver += 1;
            continue;
        }
        let path = pg_wal.join(&name);
        let mut recycled = false;
        while next_future <= recycle_upto && !recycled {
            let target = next_future;
            next_future += 1;
            if existing_future.contains(&target) {
                continue;
            }
            let new_path = pg_wal.join(segment_file_name(timeline, target));
            match std::fs::hard_link(&path, &new_path) {
                Ok(()) => recycled = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    log::warn!(
                        "could not link file \"{}\" to \"{}\": {e}",
                        path.display(),
                        new_path.display()
                    );
                    break;
                }
            }
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                // PostgreSQL: LOG and go on; the next checkpoint tries again.
                log::info!("could not remove file \"{}\": {e}", path.display());
                continue;
            }
        }
        if recycled {
            log::debug!("recycled write-ahead log file \"{name}\"");
            out.recycled += 1;
        } else {
            log::debug!("removing write-ahead log file \"{name}\"");
            out.removed += 1;
        }
        remove_archive_status(pg_wal, &name);
    }
    if fsync && (out.removed + out.recycled) > 0 {
        super::bootstrap::fsync_dir(pg_wal)?;
    }
    Ok(out)
}

/// PostgreSQL's `XLogArchiveCleanup`: the markers of a segment that is gone.
fn remove_archive_status(pg_wal: &Path, name: &str) {
    for suffix in ["done", "ready"] {
        let marker = pg_wal
            .join("archive_status")
            .join(format!("{name}.{suffix}"));
        match std::fs::remove_file(&marker) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("could not remove file \"{}\": {e}", marker.display()),
        }
    }
}

/// The archiver's rule for [`remove_old_wal_segments`]: with archiving on,
/// a segment may go once `archive_status/<name>.done` exists; with it off,
/// always (PostgreSQL's `XLogArchiveCheckDone`, simplified: no `.ready` is
/// created here).
pub fn archiver_done_with(pg_wal: &Path, archive_mode: bool, name: &str) -> bool {
    !archive_mode
        || pg_wal
            .join("archive_status")
            .join(format!("{name}.done"))
            .exists()
}

fn io_error(message: String) -> PgError {
    PgError::new(SqlState::IO_ERROR, message).with_severity(Severity::Error)
}
