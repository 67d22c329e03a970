//! Creating a cluster's WAL, commit log and control file at initdb
//! (PostgreSQL's `BootStrapXLOG`).
//!
//! initdb calls [`bootstrap_cluster`] once, in a directory it has just
//! made; nothing else runs. Afterwards the cluster looks cleanly shut down:
//! the next start reads the one checkpoint record and needs no replay.
//!
//! ```text
//!  pg_wal/000000010000000000000001    segment 1 (LSN 0 is invalid, so the WAL
//!      0/1000000  long page header    starts one segment in, as PostgreSQL's)
//!      0/1000028  XLOG CHECKPOINT_SHUTDOWN, prev 0/0:
//!                 redo 0/1000028 (itself), timeline 1, next xid 3,
//!                 next oid 10000 (FirstGenbkiObjectId), oldest active xid 0
//!  pg_wal/archive_status/
//!  pg_xact/                           empty: every status reads "in progress"
//!  global/pg_control                  state "shut down", checkPoint 0/1000028
//! ```
//!
//! The first oid is PostgreSQL's bootstrap value, FirstGenbkiObjectId
//! (10000): initdb's own catalog rows may take oids from there, and normal
//! running jumps to FirstNormalObjectId (16384) at its first assignment
//! (`Transam::new_oid`).
//!
//! # Steps
//!
//! 1. Create `pg_wal/`, `pg_wal/archive_status/`, `pg_xact/` and `global/`
//!    if missing (initdb may have made some).
//! 2. Write the checkpoint record into a new segment 1 and fsync it.
//! 3. Create `global/pg_control` pointing at it, and fsync it and `global/`.
//! 4. Fsync the directories made in step 1 and the data directory.
//!
//! # Invariants
//!
//! 1. The bootstrap checkpoint's redo point is its own LSN, and
//!    `pg_control` names it: the first start reads it and replays nothing.
//! 2. The control file is created, never overwritten: a second run on the
//!    same directory fails.
//!
//! # Crash safety
//!
//! The control file is written last: a crash before it leaves no
//! `pg_control`, and the server refuses the directory; initdb is rerun in a
//! fresh directory. With `fsync` off nothing is fsynced (as PostgreSQL's
//! `initdb --no-sync`).

use std::fs::File;
use std::io;
use std::path::Path;

use pgerror::{PgError, Severity, SqlState};

use crate::clog::{SlruFiles, PG_XACT_DIR};
use crate::control::{CheckPoint, ControlFile};
use crate::transam::FIRST_GENBKI_OBJECT_ID;
use crate::types::Lsn;
use crate::wal::segment::{next_record_start, segment_start};
use crate::wal::{append_record, wal_error_to_pg, SegmentFileSink, TimeLineId};

use super::records::checkpoint_record;
use super::{now_epoch_secs, ARCHIVE_STATUS_DIR, PG_WAL_DIR};

/// The segment the WAL starts in.
pub const FIRST_WAL_SEGMENT: u64 = 1;

/// What [`bootstrap_cluster`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bootstrapped {
    /// The LSN of the bootstrap checkpoint record (0/1000028).
    pub checkpoint_lsn: Lsn,
    pub checkpoint: CheckPoint,
    /// Where WAL insertion continues.
    pub next_lsn: Lsn,
}

/// Creates the WAL, commit log and control file of a new cluster in
/// `data_dir` (see the module docs). `system_id` identifies the cluster in
/// every WAL segment header ([`generate_system_identifier`] makes one).
pub fn bootstrap_cluster(
    data_dir: &Path,
    system_id: u64,
    fsync: bool,
) -> Result<Bootstrapped, PgError> {
    for dir in [PG_WAL_DIR, ARCHIVE_STATUS_DIR, "global"] {
        create_dir_if_missing(data_dir, dir)?;
    }
    if !data_dir.join(PG_XACT_DIR).is_dir() {
        SlruFiles::new(data_dir).create_dir()?;
    }

    let timeline = TimeLineId(1);
    let start = next_record_start(segment_start(FIRST_WAL_SEGMENT));
    let checkpoint = CheckPoint::bootstrap(start, FIRST_GENBKI_OBJECT_ID, now_epoch_secs());
    let bytes = checkpoint_record(&checkpoint, true).seal(Lsn::INVALID);
    let mut sink = SegmentFileSink::new(data_dir.join(PG_WAL_DIR), timeline, system_id);
    let appended = append_record(&mut sink, segment_start(FIRST_WAL_SEGMENT), &bytes)
        .map_err(|e| wal_error_to_pg(&e))?;
    debug_assert_eq!(appended.start, start);
    if fsync {
        sink.sync().map_err(|e| wal_error_to_pg(&e))?;
    }

    let mut control = ControlFile::new_for_initdb(system_id, appended.start, checkpoint, true);
    control.create(data_dir, fsync)?;

    if fsync {
        for dir in [PG_WAL_DIR, ARCHIVE_STATUS_DIR, PG_XACT_DIR, "."] {
            fsync_dir(&data_dir.join(dir))?;
        }
    }
    Ok(Bootstrapped {
        checkpoint_lsn: appended.start,
        checkpoint,
        next_lsn: appended.end,
    })
}

/// A new system identifier, as PostgreSQL's `BootStrapXLOG` makes one: the
/// seconds of the current time in the upper 32 bits, the microseconds in
/// the next 20, and 12 bits of the process id, so that clusters made in
/// the same second on one machine still differ.
pub fn generate_system_identifier() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() << 32)
        | (u64::from(now.subsec_micros()) << 12)
        | u64::from(std::process::id() & 0xFFF)
}

fn create_dir_if_missing(data_dir: &Path, dir: &str) -> Result<(), PgError> {
    match std::fs::create_dir(data_dir.join(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(
            format!("could not create directory \"{dir}\": {e}"),
            &e,
        )),
    }
}

pub(super) fn fsync_dir(path: &Path) -> Result<(), PgError> {
    File::open(path).and_then(|d| d.sync_all()).map_err(|e| {
        io_error(
            format!("could not fsync file \"{}\": {e}", path.display()),
            &e,
        )
        .with_severity(Severity::Panic)
    })
}

fn io_error(message: String, e: &io::Error) -> PgError {
    let code = match e.kind() {
        io::ErrorKind::NotFound => SqlState::UNDEFINED_FILE,
        io::ErrorKind::AlreadyExists => SqlState::DUPLICATE_FILE,
        _ => SqlState::IO_ERROR,
    };
    PgError::fatal(code, message)
}
