//! The control file, `global/pg_control` (PostgreSQL's `pg_control.h` and
//! the control-file half of `xlog.c`).
//!
//! One small record says where recovery must start and what state the
//! cluster was left in: the system identifier, the cluster state, the
//! location of the last checkpoint record and a copy of its contents
//! ([`CheckPoint`]: redo point, timeline, next XID, next OID), the minimum
//! recovery point, and the compile-time sizes the files were made with, so
//! that a binary built differently refuses them instead of misreading them.
//!
//! initdb creates it ([`ControlFile::new_for_initdb`], [`ControlFile::create`]);
//! the startup process reads it first thing ([`ControlFile::read`]) and
//! writes it when recovery starts and ends; the checkpointer writes it after
//! every checkpoint and at shutdown ([`ControlFile::write`]). Whoever writes
//! it holds the control lock (PostgreSQL's `ControlFileLock`, built with the
//! shared-memory copy); nothing here locks.
//!
//! # Format
//!
//! Our own layout (PostgreSQL's is a C struct with its padding), every
//! integer little-endian at a fixed offset, then zeros to 8192 bytes
//! (PostgreSQL's `PG_CONTROL_FILE_SIZE`, so that a read never meets a
//! premature end of file):
//!
//! ```text
//! off size field                      off size CheckPoint (at 36, 45 bytes)
//!   0   8  system_identifier          +0   8  redo (Lsn)
//!   8   4  pg_control_version         +8   4  this_timeline_id
//!  12   4  catalog_version_no         +12  4  prev_timeline_id
//!  16   4  state (DbState)            +16  1  full_page_writes
//!  20   8  time (last update)         +17  8  next_xid (64-bit)
//!  28   8  check_point (Lsn)          +25  4  next_oid
//!  36  45  check_point_copy           +29  8  oldest_active_xid
//!  81   8  min_recovery_point         +37  8  time
//!  89   4  min_recovery_point_tli
//!  93   8  backup_start_point         110  4  max_align
//! 101   8  backup_end_point           114  4  block_size_bytes (BLCKSZ)
//! 109   1  backup_end_required        118  4  relseg_size_blocks
//!                                     122  4  wal_block_size_bytes
//!                                     126  4  wal_segment_size_bytes
//!                                     130  4  data_checksum_version
//!                                     134  4  crc: CRC-32C of bytes 0..134
//!                                     138 ..  zeros up to 8192
//! ```
//!
//! System identifier and version sit where PostgreSQL has them, so either
//! server reading the other's file stops at the version check.
//!
//! # Invariants
//!
//! 1. The file is exactly [`PG_CONTROL_FILE_SIZE`] bytes; the meaningful
//!    part, CRC included, is [`CONTROL_ENCODED_BYTES`] <=
//!    [`PG_CONTROL_MAX_SAFE_SIZE`] (512) bytes, checked at compile time.
//! 2. Reading checks, in this order: length, `pg_control_version` (a
//!    different version means a different layout, so its CRC would be at
//!    another offset), the CRC, then catalog version, alignment and sizes.
//!    Nothing from a file that fails a check is used.
//!
//! # Crash safety
//!
//! 1. An update is one `pwrite` of the whole 8 KB at offset 0, in place,
//!    then `fsync`. There is no temporary file and rename: like PostgreSQL,
//!    we rely on a single 512-byte sector being written atomically by the
//!    disk, which is why the meaningful part must stay under 512 bytes. A
//!    torn write would be caught by the CRC, and the server refuses to start
//!    rather than guess.
//! 2. The checkpoint record is flushed to WAL before the control file points
//!    to it, so `check_point` always names a record that is on disk.
//! 3. At initdb the file is created, written, fsynced, and then `global/`
//!    is fsynced so that its directory entry is durable.
//! 4. With `fsync = off` the write still happens, the fsyncs do not.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use pgerror::{PgError, Severity, SqlState};

use crate::smgr::{fsync_file, pread_full, pwrite_full, sqlstate_for_file_access, Errm};
use crate::types::{Lsn, Oid, Xid, BLCKSZ, RELSEG_SIZE_BLOCKS, WAL_SEGMENT_BYTES};

/// Path of the control file, relative to the data directory.
pub const XLOG_CONTROL_FILE: &str = "global/pg_control";

/// Version of this layout. PostgreSQL 15's is 1300; the layout here differs,
/// so the number does too, and each server refuses the other's file.
pub const PG_CONTROL_VERSION: u32 = 91_300;

/// Version of the system catalogs' format (`yyyymmddN`), bumped with any
/// change that needs an initdb (PostgreSQL's `catversion.h`).
pub const CATALOG_VERSION_NO: u32 = 202_611_211;

/// Size of the file on disk.
pub const PG_CONTROL_FILE_SIZE: usize = 8192;

/// The most bytes of meaningful data that a single disk sector write keeps
/// atomic (crash safety rule 1).
pub const PG_CONTROL_MAX_SAFE_SIZE: usize = 512;

/// Tuple alignment the heap format uses (PostgreSQL's `MAXIMUM_ALIGNOF`).
pub const MAXIMUM_ALIGNOF: u32 = 8;

/// `data_checksum_version` when page checksums are on (0: off).
pub const PG_DATA_CHECKSUM_VERSION: u32 = 1;

/// Encoded size of a [`CheckPoint`].
pub const CHECKPOINT_ENCODED_BYTES: usize = 8 + 4 + 4 + 1 + 8 + 4 + 8 + 8;

/// Offset of the CRC: everything before it is covered.
const CRC_OFFSET: usize =
    8 + 4 + 4 + 4 + 8 + 8 + CHECKPOINT_ENCODED_BYTES + 8 + 4 + 8 + 8 + 1 + 4 * 6;

/// Encoded size of a [`ControlFile`], CRC included.
pub const CONTROL_ENCODED_BYTES: usize = CRC_OFFSET + 4;

const _: () = assert!(CONTROL_ENCODED_BYTES <= PG_CONTROL_MAX_SAFE_SIZE);
const _: () = assert!(WAL_SEGMENT_BYTES <= u32::MAX as u64);

/// The cluster state recorded in the control file (PostgreSQL's `DBState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DbState {
    /// `DB_STARTUP`: set while the startup process begins.
    Startup = 0,
    /// `DB_SHUTDOWNED`: clean shutdown; the next start needs no replay.
    Shutdowned = 1,
    /// `DB_SHUTDOWNED_IN_RECOVERY`: a standby shut down cleanly.
    ShutdownedInRecovery = 2,
    /// `DB_SHUTDOWNING`: the shutdown checkpoint is being written.
    Shutdowning = 3,
    /// `DB_IN_CRASH_RECOVERY`: replaying WAL after a crash.
    InCrashRecovery = 4,
    /// `DB_IN_ARCHIVE_RECOVERY`: replaying archived WAL.
    InArchiveRecovery = 5,
    /// `DB_IN_PRODUCTION`: running normally. Found at startup, it means the
    /// server crashed.
    InProduction = 6,
}

impl DbState {
    pub fn from_u32(v: u32) -> Option<DbState> {
        Some(match v {
            0 => DbState::Startup,
            1 => DbState::Shutdowned,
            2 => DbState::ShutdownedInRecovery,
            3 => DbState::Shutdowning,
            4 => DbState::InCrashRecovery,
            5 => DbState::InArchiveRecovery,
            6 => DbState::InProduction,
            _ => return None,
        })
    }

    /// The words `pg_controldata` prints for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            DbState::Startup => "starting up",
            DbState::Shutdowned => "shut down",
            DbState::ShutdownedInRecovery => "shut down in recovery",
            DbState::Shutdowning => "shutting down",
            DbState::InCrashRecovery => "in crash recovery",
            DbState::InArchiveRecovery => "in archive recovery",
            DbState::InProduction => "in production",
        }
    }
}

impl std::fmt::Display for DbState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contents of a checkpoint record, also kept in the control file
/// (PostgreSQL's `CheckPoint`, without multixacts and commit timestamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckPoint {
    /// Where replay starts: the WAL insert position when the checkpoint began.
    pub redo: Lsn,
    pub this_timeline_id: u32,
    /// Equal to `this_timeline_id` unless this checkpoint begins a timeline.
    pub prev_timeline_id: u32,
    pub full_page_writes: bool,
    /// The next transaction id to assign.
    pub next_xid: Xid,
    /// The next OID to assign.
    pub next_oid: Oid,
    /// The oldest transaction still running at the checkpoint (invalid if none).
    pub oldest_active_xid: Xid,
    /// When the checkpoint was taken, in seconds since the Unix epoch.
    pub time: i64,
}

impl CheckPoint {
    /// The checkpoint initdb writes first: timeline 1, the first normal XID.
    pub fn bootstrap(redo: Lsn, next_oid: Oid, time: i64) -> CheckPoint {
        CheckPoint {
            redo,
            this_timeline_id: 1,
            prev_timeline_id: 1,
            full_page_writes: true,
            next_xid: Xid::FIRST_NORMAL,
            next_oid,
            oldest_active_xid: Xid::INVALID,
            time,
        }
    }

    /// The fixed-size little-endian encoding, also the payload of a
    /// checkpoint WAL record.
    pub fn encode(&self) -> [u8; CHECKPOINT_ENCODED_BYTES] {
        let mut out = [0u8; CHECKPOINT_ENCODED_BYTES];
        let mut put = Put::new(&mut out);
        self.put(&mut put);
        out
    }

    /// The inverse of [`CheckPoint::encode`]; `None` if `bytes` is not
    /// exactly [`CHECKPOINT_ENCODED_BYTES`] long.
    pub fn decode(bytes: &[u8]) -> Option<CheckPoint> {
        if bytes.len() != CHECKPOINT_ENCODED_BYTES {
            return None;
        }
        Some(CheckPoint::get(&mut Get::new(bytes)))
    }

    fn put(&self, put: &mut Put<'_>) {
        put.u64(self.redo.0);
        put.u32(self.this_timeline_id);
        put.u32(self.prev_timeline_id);
        put.bool(self.full_page_writes);
        put.u64(self.next_xid.0);
        put.u32(self.next_oid.0);
        put.u64(self.oldest_active_xid.0);
        put.i64(self.time);
    }

    fn get(get: &mut Get<'_>) -> CheckPoint {
        CheckPoint {
            redo: Lsn(get.u64()),
            this_timeline_id: get.u32(),
            prev_timeline_id: get.u32(),
            full_page_writes: get.bool(),
            next_xid: Xid(get.u64()),
            next_oid: Oid(get.u32()),
            oldest_active_xid: Xid(get.u64()),
            time: get.i64(),
        }
    }
}

/// The contents of `global/pg_control` (PostgreSQL's `ControlFileData`).
/// The CRC is not a field: [`ControlFile::encode`] computes it and
/// [`ControlFile::decode`] checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlFile {
    /// Chosen at random by initdb; WAL files carry it too, so that WAL from
    /// another cluster is never replayed.
    pub system_identifier: u64,
    pub pg_control_version: u32,
    pub catalog_version_no: u32,
    pub state: DbState,
    /// Last update of this file, in seconds since the Unix epoch.
    pub time: i64,
    /// Location of the last checkpoint record.
    pub check_point: Lsn,
    /// That record's contents.
    pub check_point_copy: CheckPoint,
    /// Replay must reach this point before the data is consistent (set when
    /// recovery writes pages; invalid otherwise).
    pub min_recovery_point: Lsn,
    pub min_recovery_point_tli: u32,
    /// Where a base backup being restored began and ended (invalid if none).
    pub backup_start_point: Lsn,
    pub backup_end_point: Lsn,
    /// Recovery must see the end-of-backup record before it may finish.
    pub backup_end_required: bool,
    pub max_align: u32,
    pub block_size_bytes: u32,
    pub relseg_size_blocks: u32,
    pub wal_block_size_bytes: u32,
    pub wal_segment_size_bytes: u32,
    /// 0 when page checksums are off, [`PG_DATA_CHECKSUM_VERSION`] when on.
    pub data_checksum_version: u32,
}

impl ControlFile {
    /// The control file initdb writes: state "shut down", pointing at the
    /// bootstrap checkpoint record at `check_point`, sizes of this binary.
    pub fn new_for_initdb(
        system_identifier: u64,
        check_point: Lsn,
        check_point_copy: CheckPoint,
        data_checksums: bool,
    ) -> ControlFile {
        ControlFile {
            system_identifier,
            pg_control_version: PG_CONTROL_VERSION,
            catalog_version_no: CATALOG_VERSION_NO,
            state: DbState::Shutdowned,
            time: check_point_copy.time,
            check_point,
            check_point_copy,
            min_recovery_point: Lsn::INVALID,
            min_recovery_point_tli: 0,
            backup_start_point: Lsn::INVALID,
            backup_end_point: Lsn::INVALID,
            backup_end_required: false,
            max_align: MAXIMUM_ALIGNOF,
            block_size_bytes: BLCKSZ as u32,
            relseg_size_blocks: RELSEG_SIZE_BLOCKS,
            wal_block_size_bytes: BLCKSZ as u32,
            wal_segment_size_bytes: WAL_SEGMENT_BYTES as u32,
            data_checksum_version: if data_checksums {
                PG_DATA_CHECKSUM_VERSION
            } else {
                0
            },
        }
    }

    /// Reads and checks `global/pg_control` (invariant 2).
    pub fn read(data_dir: &Path) -> Result<ControlFile, ControlError> {
        let file = File::open(data_dir.join(XLOG_CONTROL_FILE))
            .map_err(|source| ControlError::Open { source })?;
        let mut buf = [0u8; CONTROL_ENCODED_BYTES];
        let read_bytes =
            pread_full(&file, &mut buf, 0).map_err(|source| ControlError::Read { source })?;
        ControlFile::decode(&buf[..read_bytes])
    }

    /// Creates the file at initdb; refuses an existing one.
    pub fn create(&mut self, data_dir: &Path, fsync: bool) -> Result<(), ControlError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(data_dir.join(XLOG_CONTROL_FILE))
            .map_err(|source| ControlError::Create { source })?;
        self.write_to(&file, fsync)?;
        if fsync {
            File::open(data_dir.join("global"))
                .and_then(|dir| fsync_file(&dir))
                .map_err(|source| ControlError::Fsync {
                    path: "global",
                    source,
                })?;
        }
        Ok(())
    }

    /// Updates the file in place (crash safety rule 1), stamping `time`
    /// with the current time.
    pub fn write(&mut self, data_dir: &Path, fsync: bool) -> Result<(), ControlError> {
        let file = OpenOptions::new()
            .write(true)
            .open(data_dir.join(XLOG_CONTROL_FILE))
            .map_err(|source| ControlError::Open { source })?;
        self.write_to(&file, fsync)
    }

    fn write_to(&mut self, file: &File, fsync: bool) -> Result<(), ControlError> {
        self.time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let bytes = self.encode();
        match pwrite_full(file, &bytes, 0) {
            Ok(n) if n == bytes.len() => {}
            // A write that stops short without an error means a full disk.
            Ok(_) => {
                let source = io::Error::from_raw_os_error(libc::ENOSPC);
                return Err(ControlError::Write { source });
            }
            Err(source) => return Err(ControlError::Write { source }),
        }
        if fsync {
            fsync_file(file).map_err(|source| ControlError::Fsync {
                path: XLOG_CONTROL_FILE,
                source,
            })?;
        }
        Ok(())
    }

    /// The whole file: the fields, the CRC, zeros to 8192 bytes.
    pub fn encode(&self) -> [u8; PG_CONTROL_FILE_SIZE] {
        let mut out = [0u8; PG_CONTROL_FILE_SIZE];
        let mut put = Put::new(&mut out);
        put.u64(self.system_identifier);
        put.u32(self.pg_control_version);
        put.u32(self.catalog_version_no);
        put.u32(self.state as u32);
        put.i64(self.time);
        put.u64(self.check_point.0);
        self.check_point_copy.put(&mut put);
        put.u64(self.min_recovery_point.0);
        put.u32(self.min_recovery_point_tli);
        put.u64(self.backup_start_point.0);
        put.u64(self.backup_end_point.0);
        put.bool(self.backup_end_required);
        put.u32(self.max_align);
        put.u32(self.block_size_bytes);
        put.u32(self.relseg_size_blocks);
        put.u32(self.wal_block_size_bytes);
        put.u32(self.wal_segment_size_bytes);
        put.u32(self.data_checksum_version);
        assert_eq!(
            put.pos, CRC_OFFSET,
            "the layout table and the encoder agree"
        );
        let crc = crc32c::crc32c(&out[..CRC_OFFSET]);
        out[CRC_OFFSET..CONTROL_ENCODED_BYTES].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks the file's first [`CONTROL_ENCODED_BYTES`] (or
    /// more) bytes, in invariant 2's order.
    pub fn decode(bytes: &[u8]) -> Result<ControlFile, ControlError> {
        if bytes.len() < CONTROL_ENCODED_BYTES {
            return Err(ControlError::ShortRead {
                read_bytes: bytes.len(),
            });
        }
        let bytes = &bytes[..CONTROL_ENCODED_BYTES];
        let mut get = Get::new(bytes);
        let system_identifier = get.u64();
        let pg_control_version = get.u32();
        check("PG_CONTROL_VERSION", pg_control_version, PG_CONTROL_VERSION)?;
        let stored_crc = u32::from_le_bytes(
            bytes[CRC_OFFSET..]
                .try_into()
                .expect("the length was checked above"),
        );
        if crc32c::crc32c(&bytes[..CRC_OFFSET]) != stored_crc {
            return Err(ControlError::BadChecksum);
        }
        let catalog_version_no = get.u32();
        let state_raw = get.u32();
        let control = ControlFile {
            system_identifier,
            pg_control_version,
            catalog_version_no,
            state: DbState::from_u32(state_raw).ok_or(ControlError::InvalidState(state_raw))?,
            time: get.i64(),
            check_point: Lsn(get.u64()),
            check_point_copy: CheckPoint::get(&mut get),
            min_recovery_point: Lsn(get.u64()),
            min_recovery_point_tli: get.u32(),
            backup_start_point: Lsn(get.u64()),
            backup_end_point: Lsn(get.u64()),
            backup_end_required: get.bool(),
            max_align: get.u32(),
            block_size_bytes: get.u32(),
            relseg_size_blocks: get.u32(),
            wal_block_size_bytes: get.u32(),
            wal_segment_size_bytes: get.u32(),
            data_checksum_version: get.u32(),
        };
        check(
            "CATALOG_VERSION_NO",
            control.catalog_version_no,
            CATALOG_VERSION_NO,
        )?;
        check("MAXALIGN", control.max_align, MAXIMUM_ALIGNOF)?;
        check("BLCKSZ", control.block_size_bytes, BLCKSZ as u32)?;
        check(
            "RELSEG_SIZE",
            control.relseg_size_blocks,
            RELSEG_SIZE_BLOCKS,
        )?;
        check("XLOG_BLCKSZ", control.wal_block_size_bytes, BLCKSZ as u32)?;
        check(
            "XLOG_SEG_SIZE",
            control.wal_segment_size_bytes,
            WAL_SEGMENT_BYTES as u32,
        )?;
        Ok(control)
    }

    /// Whether pages carry checksums that reads must verify.
    pub fn data_checksums_enabled(&self) -> bool {
        self.data_checksum_version != 0
    }
}

fn check(setting: &'static str, found: u32, expected: u32) -> Result<(), ControlError> {
    if found == expected {
        Ok(())
    } else {
        Err(ControlError::Incompatible {
            setting,
            found,
            expected,
        })
    }
}

/// Why the control file cannot be read or written. Reading failures stop
/// the server from starting; a failed write is a PANIC, since the
/// checkpoint it records cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("could not open file \"{}\": {}", XLOG_CONTROL_FILE, Errm(.source))]
    Open { source: io::Error },
    #[error("could not create file \"{}\": {}", XLOG_CONTROL_FILE, Errm(.source))]
    Create { source: io::Error },
    #[error("could not read file \"{}\": {}", XLOG_CONTROL_FILE, Errm(.source))]
    Read { source: io::Error },
    #[error(
        "could not read file \"{}\": read {read_bytes} of {}",
        XLOG_CONTROL_FILE,
        CONTROL_ENCODED_BYTES
    )]
    ShortRead { read_bytes: usize },
    #[error("could not write file \"{}\": {}", XLOG_CONTROL_FILE, Errm(.source))]
    Write { source: io::Error },
    #[error("could not fsync file \"{path}\": {}", Errm(.source))]
    Fsync {
        path: &'static str,
        source: io::Error,
    },
    #[error("incorrect checksum in control file")]
    BadChecksum,
    /// Made by a different binary: the detail says which setting differs.
    #[error("database files are incompatible with server")]
    Incompatible {
        setting: &'static str,
        found: u32,
        expected: u32,
    },
    #[error("invalid database cluster state {0} in control file")]
    InvalidState(u32),
}

impl ControlError {
    /// PostgreSQL's DETAIL line, for `Incompatible`.
    pub fn detail(&self) -> Option<String> {
        match self {
            ControlError::Incompatible {
                setting,
                found,
                expected,
            } => Some(format!(
                "The database cluster was initialized with {setting} {found}, \
                 but the server was compiled with {setting} {expected}."
            )),
            _ => None,
        }
    }

    /// PostgreSQL's HINT line, for `Incompatible`.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ControlError::Incompatible { setting, .. } => Some(match *setting {
                "PG_CONTROL_VERSION" | "CATALOG_VERSION_NO" | "MAXALIGN" => {
                    "It looks like you need to initdb."
                }
                _ => "It looks like you need to recompile or initdb.",
            }),
            _ => None,
        }
    }

    /// As the server log shows it: I/O failures are PANIC (as in
    /// PostgreSQL), a file that does not check out is FATAL.
    pub fn to_pg_error(&self) -> PgError {
        let message = self.to_string();
        let error = match self {
            ControlError::Open { source }
            | ControlError::Create { source }
            | ControlError::Read { source }
            | ControlError::Write { source }
            | ControlError::Fsync { source, .. } => {
                PgError::new(sqlstate_for_file_access(source), message)
                    .with_severity(Severity::Panic)
            }
            ControlError::ShortRead { .. } => {
                PgError::new(SqlState::DATA_CORRUPTED, message).with_severity(Severity::Panic)
            }
            ControlError::BadChecksum | ControlError::InvalidState(_) => {
                PgError::fatal(SqlState::DATA_CORRUPTED, message)
            }
            ControlError::Incompatible { .. } => PgError::fatal(SqlState::INTERNAL_ERROR, message),
        };
        let error = match self.detail() {
            Some(detail) => error.with_detail(detail),
            None => error,
        };
        match self.hint() {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}

impl From<ControlError> for PgError {
    fn from(e: ControlError) -> PgError {
        e.to_pg_error()
    }
}

/// Little-endian writer over a buffer sized by the caller.
struct Put<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Put<'a> {
    fn new(buf: &'a mut [u8]) -> Put<'a> {
        Put { buf, pos: 0 }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_le_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.bytes(&[u8::from(v)]);
    }
}

/// Little-endian reader; callers check the length first.
struct Get<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Get<'a> {
    fn new(buf: &'a [u8]) -> Get<'a> {
        Get { buf, pos: 0 }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let a = self.buf[self.pos..self.pos + N]
            .try_into()
            .expect("callers check the length before decoding");
        self.pos += N;
        a
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    fn bool(&mut self) -> bool {
        self.array::<1>()[0] != 0
    }
}

#[cfg(test)]
mod tests;
