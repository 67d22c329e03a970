//! The startup process's work: from `pg_control` to a running WAL
//! (PostgreSQL's `StartupXLOG`, `InitWalRecovery`, `PerformWalRecovery`,
//! `FinishWalRecovery`).
//!
//! Run once per start and after every crash, by the startup process, before
//! any backend or auxiliary process touches the shared regions; the
//! postmaster answers `57P03 the database system is starting up` meanwhile.
//!
//! # The sequence, step by step
//!
//! 1. Read `pg_control`. Unreadable or failing its checks: FATAL, with
//!    PostgreSQL's message (`incorrect checksum in control file`, ...).
//! 2. Log the state it was left in (`database system was shut down at
//!    ...`, `database system was interrupted; last known up at ...`).
//! 3. Read the checkpoint record at `checkPoint`. Missing, torn or not a
//!    checkpoint: PANIC `could not locate a valid checkpoint record`. A
//!    redo point after it: PANIC `invalid redo in checkpoint record`.
//! 4. Decide: recovery is needed if the state is not "shut down", if the
//!    redo point is before the record, or if a valid record follows it
//!    (PostgreSQL does not look for one; we do, so that WAL written after a
//!    restored `pg_control` is never silently overwritten).
//! 5. If needed: fsync the data directory (PostgreSQL's
//!    `SyncDataDirectory`: pages and WAL written before the crash may sit
//!    in the kernel's cache, and the checkpoint at the end will claim them
//!    durable), log `database system was not properly shut down; automatic
//!    recovery in progress`, set the state "in crash recovery".
//! 6. Counters from the checkpoint: next xid, next oid.
//! 7. Replay (`replay.rs`) from the redo point, or from just after the
//!    checkpoint record when that is the redo point, until the end of the
//!    WAL; log `redo starts at`, `redo done at ... system usage: ...`, or
//!    `redo is not required`.
//! 8. Trim the commit log at the next xid; start WAL insertion at the end of
//!    the valid WAL (`init_at`: a torn tail is overwritten by the next
//!    write); set the redo pointer to the checkpoint's.
//! 9. If recovery ran and [`StartupOptions::end_of_recovery_checkpoint`]:
//!    an end-of-recovery checkpoint (all replayed pages written and
//!    fsynced, state "in production"), so that the next crash replays
//!    nothing from before it. Otherwise write the state "in production"
//!    only; `pg_control` keeps naming the old checkpoint, and a crash
//!    before the next checkpoint replays the same WAL again (idempotent).
//!
//! # Invariants
//!
//! 1. Nothing is inserted into the WAL before step 8; the only WAL flush
//!    target during replay is WAL already read from disk.
//! 2. The WAL continues exactly at the end of the last valid record, with
//!    that record as the prev link.
//!
//! # Crash safety
//!
//! A crash during steps 5-8 leaves the state "in crash recovery" (or the
//! earlier one) and the same checkpoint: the next start redoes the same
//! work. During step 9, see `checkpoint.rs`.

use std::time::{Duration, Instant};

use pgerror::{PgError, Severity, SqlState};

use crate::control::{CheckPoint, ControlFile, DbState};
use crate::types::{Lsn, Oid, Xid};
use crate::wal::{wal_error_to_pg, EndOfWal, ReadRecord, TimeLineId, WalReader};

use super::checkpoint::{create_checkpoint, CheckpointKind, CheckpointOptions, CheckpointStats};
use super::records::decode_checkpoint;
use super::redo::RedoTable;
use super::replay::Replay;
use super::wal_files::WalRetention;
use super::EngineContext;

/// What the startup process brings besides the context.
pub struct StartupOptions<'f> {
    /// The page resource managers' redo routines.
    pub redo: &'f RedoTable,
    /// Write an end-of-recovery checkpoint after replay (the default).
    /// Without it, `pg_control` keeps the old checkpoint until the
    /// checkpointer's first one.
    pub end_of_recovery_checkpoint: bool,
    /// For the end-of-recovery checkpoint's WAL removal.
    pub wal_retention: WalRetention,
    pub may_remove: &'f dyn Fn(&str) -> bool,
}

/// What startup found and did.
#[derive(Clone, Debug)]
pub struct RecoveryOutcome {
    /// The state `pg_control` was left in.
    pub previous_state: DbState,
    /// The checkpoint replay started from.
    pub checkpoint_lsn: Lsn,
    pub checkpoint: CheckPoint,
    /// Whether recovery ran (step 4).
    pub needed: bool,
    /// Records replayed.
    pub replayed: usize,
    /// Where WAL insertion continues, and the last valid record before it.
    pub next_lsn: Lsn,
    pub prev_lsn: Lsn,
    pub next_xid: Xid,
    pub next_oid: Oid,
    /// Where and why reading stopped.
    pub end_of_wal: Option<EndOfWal>,
    /// The end-of-recovery checkpoint, if one was taken.
    pub end_of_recovery_checkpoint: Option<CheckpointStats>,
}

/// Runs the startup sequence (module docs) on the data directory of `ctx`.
pub fn startup(
    ctx: &mut EngineContext<'_, '_>,
    options: &StartupOptions<'_>,
) -> Result<RecoveryOutcome, PgError> {
    // 1, 2.
    let mut control = ControlFile::read(ctx.data_dir).map_err(|e| {
        let e = PgError::from(e);
        let severity = e.severity.max(Severity::Fatal);
        PgError { severity, ..e }
    })?;
    log_previous_state(&control);
    let previous_state = control.state;
    let timeline = TimeLineId(control.check_point_copy.this_timeline_id);
    let system_id = control.system_identifier;
    let pg_wal = ctx.pg_wal();

    // 3.
    let checkpoint_lsn = control.check_point;
    let mut reader = WalReader::open(&pg_wal, timeline, system_id, checkpoint_lsn);
    let read = reader.read_record().map_err(|e| wal_error_to_pg(&e))?;
    let Some((checkpoint, _shutdown)) = read
        .as_ref()
        .filter(|r| r.start == checkpoint_lsn)
        .and_then(|r| decode_checkpoint(&r.record))
    else {
        if let Some(end) = reader.end_of_wal() {
            log::info!("{end}");
        }
        return Err(PgError::new(
            SqlState::DATA_CORRUPTED,
            "could not locate a valid checkpoint record",
        )
        .with_severity(Severity::Panic));
    };
    log::debug!(
        "checkpoint record is at {checkpoint_lsn}; redo record is at {}",
        checkpoint.redo
    );
    if checkpoint.redo > checkpoint_lsn {
        return Err(PgError::new(
            SqlState::DATA_CORRUPTED,
            "invalid redo in checkpoint record",
        )
        .with_severity(Severity::Panic));
    }

    // 4. Position the reader where replay starts and look at the first record.
    if checkpoint.redo < checkpoint_lsn {
        reader = WalReader::open(&pg_wal, timeline, system_id, checkpoint.redo);
    }
    let mut first = next_record(&mut reader)?;
    let needed =
        control.state != DbState::Shutdowned || checkpoint.redo < checkpoint_lsn || first.is_some();

    // 5.
    if needed {
        if control.state == DbState::Shutdowned {
            log::info!("WAL found after the shutdown checkpoint record; recovery in progress");
        } else {
            log::info!(
                "database system was not properly shut down; automatic recovery in progress"
            );
        }
        if ctx.fsync() {
            sync_data_directory(ctx.data_dir);
        }
        control.state = DbState::InCrashRecovery;
        control.write(ctx.data_dir, ctx.fsync())?;
    }

    // 6.
    ctx.transam.set_next_xid(checkpoint.next_xid);
    ctx.transam.set_next_oid(checkpoint.next_oid);

    // 7.
    let mut replayed = 0usize;
    let mut prev_lsn = checkpoint_lsn;
    if first.is_some() {
        let usage = Usage::start();
        let mut replay = Replay::new(ctx, options.redo);
        log::info!(
            "redo starts at {}",
            first.as_ref().map_or(Lsn::INVALID, |r| r.start)
        );
        while let Some(rec) = first.take() {
            replay.apply(&rec)?;
            replayed += 1;
            prev_lsn = rec.start;
            first = next_record(&mut reader)?;
        }
        if let Some(end) = reader.end_of_wal() {
            log::info!("{end}");
        }
        log::info!("redo done at {prev_lsn} system usage: {}", usage.show());
    } else {
        log::info!("redo is not required");
    }
    let next_lsn = reader.next_lsn();
    let end_of_wal = reader.end_of_wal().cloned();

    // 8.
    let next_xid = ctx.transam.next_xid();
    ctx.clog.trim(next_xid)?;
    ctx.wal
        .init_at(next_lsn, prev_lsn, timeline, system_id)
        .map_err(|e| wal_error_to_pg(&e))?;
    ctx.wal.set_redo_ptr(checkpoint.redo);

    // 9.
    let mut end_of_recovery_checkpoint = None;
    if needed && options.end_of_recovery_checkpoint {
        let stats = create_checkpoint(
            CheckpointKind::EndOfRecovery,
            ctx,
            CheckpointOptions {
                wal_retention: options.wal_retention,
                may_remove: options.may_remove,
                ..CheckpointOptions::default()
            },
            |_, _| {},
        )?;
        log::info!("{}", stats.completion_message());
        end_of_recovery_checkpoint = Some(stats);
    } else {
        let mut control = ControlFile::read(ctx.data_dir)?;
        control.state = DbState::InProduction;
        control.write(ctx.data_dir, ctx.fsync())?;
    }

    Ok(RecoveryOutcome {
        previous_state,
        checkpoint_lsn,
        checkpoint,
        needed,
        replayed,
        next_lsn,
        prev_lsn,
        next_xid,
        next_oid: ctx.transam.next_oid(),
        end_of_wal,
        end_of_recovery_checkpoint,
    })
}

fn next_record(reader: &mut WalReader) -> Result<Option<ReadRecord>, PgError> {
    reader.read_record().map_err(|e| wal_error_to_pg(&e))
}

/// Step 2, PostgreSQL's words for each state.
fn log_previous_state(control: &ControlFile) {
    let at = format_pg_time(control.time);
    match control.state {
        DbState::Shutdowned => log::info!("database system was shut down at {at}"),
        DbState::ShutdownedInRecovery => {
            log::info!("database system was shut down in recovery at {at}")
        }
        DbState::Shutdowning => {
            log::info!("database system shutdown was interrupted; last known up at {at}")
        }
        DbState::InCrashRecovery => {
            log::info!("database system was interrupted while in recovery at {at}");
            log::info!(target: "HINT", "This probably means that some data is corrupted and you will have to use the last backup for recovery.");
        }
        DbState::InArchiveRecovery => {
            log::info!("database system was interrupted while in recovery at log time {at}")
        }
        DbState::InProduction | DbState::Startup => {
            log::info!("database system was interrupted; last known up at {at}")
        }
    }
}

/// Seconds since the epoch as PostgreSQL's `str_time` prints them
/// (`%Y-%m-%d %H:%M:%S %Z`), in UTC.
pub fn format_pg_time(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// CPU and wall time since recovery began (PostgreSQL's `pg_rusage`).
struct Usage {
    wall: Instant,
    cpu: (Duration, Duration),
}

impl Usage {
    fn start() -> Usage {
        Usage {
            wall: Instant::now(),
            cpu: cpu_times(),
        }
    }

    /// `CPU: user: 0.01 s, system: 0.00 s, elapsed: 0.02 s`
    fn show(&self) -> String {
        let (user, system) = cpu_times();
        let f = |d: Duration| format!("{}.{:02} s", d.as_secs(), d.subsec_millis() / 10);
        format!(
            "CPU: user: {}, system: {}, elapsed: {}",
            f(user.saturating_sub(self.cpu.0)),
            f(system.saturating_sub(self.cpu.1)),
            f(self.wall.elapsed())
        )
    }
}

fn cpu_times() -> (Duration, Duration) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid rusage.
    let (rc, usage) = unsafe {
        let rc = libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        (rc, usage.assume_init())
    };
    if rc != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

/// Fsyncs every file and directory under the data directory (PostgreSQL's
/// `SyncDataDirectory`). Failures are logged, not fatal, as in PostgreSQL:
/// the end-of-recovery checkpoint fsyncs what replay depends on again.
fn sync_data_directory(data_dir: &std::path::Path) {
    let started = Instant::now();
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                log::info!("could not open directory \"{}\": {e}", dir.display());
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => fsync_path(&path),
                _ => {}
            }
        }
        fsync_path(&dir);
    }
    log::debug!(
        "syncing data directory took {:.3} s",
        started.elapsed().as_secs_f64()
    );
}

fn fsync_path(path: &std::path::Path) {
    if let Err(e) = std::fs::File::open(path).and_then(|f| f.sync_all()) {
        log::info!("could not fsync file \"{}\": {e}", path.display());
    }
}
