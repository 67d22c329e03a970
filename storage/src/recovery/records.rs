//! The WAL records of the XLOG and Storage resource managers: their info
//! values, payload layouts, builders and decoders (PostgreSQL's
//! `pg_control.h` XLOG_* values and `storage_xlog.h`).
//!
//! Builders are used by the checkpointer (checkpoint records), by whoever
//! assigns oids (NEXTOID, through `Transam::new_oid`'s callback), by DDL
//! (relation file creation and truncation); decoders by the startup
//! process. Payloads are the record's main data, little-endian, with no
//! block references unless stated:
//!
//! ```text
//!  XLOG (rmgr 0)
//!   0x00 CHECKPOINT_SHUTDOWN  CheckPoint (control.rs layout, 45 bytes): shutdown
//!                             and end-of-recovery checkpoints; redo == own LSN
//!   0x10 CHECKPOINT_ONLINE    CheckPoint (45 bytes); redo <= own LSN
//!   0x20 NOOP                 any bytes; replay does nothing (tests, padding)
//!   0x30 NEXTOID              u32 next oid: oids below it may be in use
//!   0xA0 FPI_FOR_HINT, 0xB0 FPI
//!                             no main data; blocks 0.. each with a full-page
//!                             image, restored as they are
//!
//!  Storage (rmgr 2)
//!   0x10 SMGR_CREATE          u32 spc, u32 db, u32 relnumber, u8 fork  (13 bytes)
//!   0x20 SMGR_TRUNCATE        u32 nblocks (new length), u32 spc, u32 db,
//!                             u32 relnumber, u32 flags                 (20 bytes)
//!                             flags: 0x1 HEAP (main fork), 0x2 VM, 0x4 FSM
//! ```
//!
//! The info values are PostgreSQL's; the layouts follow its structs
//! (`xl_smgr_create`, `xl_smgr_truncate`) field for field, packed.
//!
//! # Invariants
//!
//! 1. Decoders accept exactly the lengths above and reject unknown fork
//!    numbers and flag bits, so a record that passed its CRC but not these
//!    checks is reported, never half-applied.
//!
//! # Crash safety
//!
//! A file is created before its SMGR_CREATE record is inserted (a crash in
//! between leaves an orphan file, harmless); a truncation is logged and its
//! record flushed before any file shrinks, so replay can always finish it.

use pgerror::{PgError, Severity, SqlState};

use crate::control::{CheckPoint, CHECKPOINT_ENCODED_BYTES};
use crate::types::{BlockNumber, ForkNumber, Oid, RelFileLocator, Xid, BLCKSZ};
use crate::wal::ResourceManager;
use crate::wal::{AssembledRecord, BlockFlags, DecodedRecord, PageImage, RecordBuilder};

pub const XLOG_CHECKPOINT_SHUTDOWN: u8 = 0x00;
pub const XLOG_CHECKPOINT_ONLINE: u8 = 0x10;
pub const XLOG_NOOP: u8 = 0x20;
pub const XLOG_NEXTOID: u8 = 0x30;
pub const XLOG_FPI_FOR_HINT: u8 = 0xA0;
pub const XLOG_FPI: u8 = 0xB0;

pub const XLOG_SMGR_CREATE: u8 = 0x10;
pub const XLOG_SMGR_TRUNCATE: u8 = 0x20;

/// SMGR_TRUNCATE flags: which forks the truncation covers.
pub const SMGR_TRUNCATE_HEAP: u32 = 0x0001;
pub const SMGR_TRUNCATE_VM: u32 = 0x0002;
pub const SMGR_TRUNCATE_FSM: u32 = 0x0004;
pub const SMGR_TRUNCATE_ALL: u32 = SMGR_TRUNCATE_HEAP | SMGR_TRUNCATE_VM | SMGR_TRUNCATE_FSM;

const SMGR_CREATE_BYTES: usize = 13;
const SMGR_TRUNCATE_BYTES: usize = 20;

/// A record that passed its CRC but cannot be replayed: a bug or a format
/// this binary does not know. Recovery stops with PANIC, as PostgreSQL's
/// redo routines do (`xlog_redo: unknown op code`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedoRecordError {
    #[error("{rmgr}_redo: unknown op code {info}")]
    UnknownInfo { rmgr: &'static str, info: u8 },
    #[error("invalid {what} record: {len} bytes of main data")]
    BadLength { what: &'static str, len: usize },
    #[error("invalid fork number {0} in {1} record")]
    BadFork(u8, &'static str),
    #[error("invalid truncate flags {0:#x}")]
    BadTruncateFlags(u32),
    #[error("full-page image record without an image for block {0}")]
    MissingImage(u8),
    #[error("no redo routine for resource manager {0}")]
    NoRedoRoutine(&'static str),
}

impl From<RedoRecordError> for PgError {
    fn from(e: RedoRecordError) -> PgError {
        PgError::new(SqlState::DATA_CORRUPTED, e.to_string()).with_severity(Severity::Panic)
    }
}

fn small_record(rmgr: ResourceManager, info: u8, data: &[u8]) -> AssembledRecord {
    let mut b = RecordBuilder::begin(rmgr, info, Xid::INVALID);
    b.register_data(data);
    b.finish().expect("a record of a few bytes fits")
}

/// A checkpoint record: SHUTDOWN info for shutdown and end-of-recovery
/// checkpoints, ONLINE otherwise.
pub fn checkpoint_record(checkpoint: &CheckPoint, shutdown: bool) -> AssembledRecord {
    let info = if shutdown {
        XLOG_CHECKPOINT_SHUTDOWN
    } else {
        XLOG_CHECKPOINT_ONLINE
    };
    small_record(ResourceManager::Xlog, info, &checkpoint.encode())
}

/// The checkpoint in a record, and whether it is a shutdown checkpoint;
/// `None` for anything else (another rmgr or info, a wrong length).
pub fn decode_checkpoint(record: &DecodedRecord) -> Option<(CheckPoint, bool)> {
    if record.rmgr() != ResourceManager::Xlog
        || !matches!(
            record.info(),
            XLOG_CHECKPOINT_SHUTDOWN | XLOG_CHECKPOINT_ONLINE
        )
        || record.main_data().len() != CHECKPOINT_ENCODED_BYTES
    {
        return None;
    }
    let checkpoint = CheckPoint::decode(record.main_data())?;
    Some((checkpoint, record.info() == XLOG_CHECKPOINT_SHUTDOWN))
}

/// A NEXTOID record: oids below `next` may be in use (for
/// `Transam::new_oid`'s `log_next_oid` callback).
pub fn next_oid_record(next: Oid) -> AssembledRecord {
    small_record(ResourceManager::Xlog, XLOG_NEXTOID, &next.0.to_le_bytes())
}

pub fn decode_next_oid(record: &DecodedRecord) -> Result<Oid, RedoRecordError> {
    let data = record.main_data();
    let bytes: [u8; 4] = data.try_into().map_err(|_| RedoRecordError::BadLength {
        what: "NEXTOID",
        len: data.len(),
    })?;
    Ok(Oid(u32::from_le_bytes(bytes)))
}

/// A record that replay ignores, carrying `payload` (any size the WAL
/// accepts): tests use it to fill WAL quickly.
pub fn noop_record(payload: &[u8]) -> AssembledRecord {
    let mut b = RecordBuilder::begin(ResourceManager::Xlog, XLOG_NOOP, Xid::INVALID);
    b.register_data(payload);
    b.finish()
        .expect("callers pass payloads below the record size limit")
}

/// An FPI record: the whole page of one block, restored as it is by replay
/// (PostgreSQL's `log_newpage`). `hole` is `(pd_lower, pd_upper)` for a
/// page with the standard layout.
pub fn full_page_image_record(
    rel: RelFileLocator,
    fork: ForkNumber,
    blkno: BlockNumber,
    page: &[u8; BLCKSZ],
    hole: Option<(u16, u16)>,
) -> AssembledRecord {
    let mut b = RecordBuilder::begin(ResourceManager::Xlog, XLOG_FPI, Xid::INVALID);
    b.register_block(
        0,
        rel,
        fork,
        blkno,
        BlockFlags::WILL_INIT,
        Some(PageImage { page, hole }),
    );
    b.finish().expect("one page image fits in a record")
}

/// SMGR_CREATE: a relation fork's first file was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmgrCreate {
    pub rel: RelFileLocator,
    pub fork: ForkNumber,
}

impl SmgrCreate {
    pub fn assemble(&self) -> AssembledRecord {
        let mut data = Vec::with_capacity(SMGR_CREATE_BYTES);
        put_locator(&mut data, self.rel);
        data.push(self.fork as u8);
        small_record(ResourceManager::Storage, XLOG_SMGR_CREATE, &data)
    }

    pub fn decode(record: &DecodedRecord) -> Result<SmgrCreate, RedoRecordError> {
        let data = record.main_data();
        if data.len() != SMGR_CREATE_BYTES {
            return Err(RedoRecordError::BadLength {
                what: "SMGR_CREATE",
                len: data.len(),
            });
        }
        let fork = ForkNumber::from_u8(data[12])
            .ok_or(RedoRecordError::BadFork(data[12], "SMGR_CREATE"))?;
        Ok(SmgrCreate {
            rel: get_locator(&data[..12]),
            fork,
        })
    }
}

/// SMGR_TRUNCATE: the relation was cut to `nblocks` blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmgrTruncate {
    pub rel: RelFileLocator,
    pub nblocks: BlockNumber,
    pub flags: u32,
}

impl SmgrTruncate {
    pub fn assemble(&self) -> AssembledRecord {
        let mut data = Vec::with_capacity(SMGR_TRUNCATE_BYTES);
        data.extend_from_slice(&self.nblocks.0.to_le_bytes());
        put_locator(&mut data, self.rel);
        data.extend_from_slice(&self.flags.to_le_bytes());
        small_record(ResourceManager::Storage, XLOG_SMGR_TRUNCATE, &data)
    }

    pub fn decode(record: &DecodedRecord) -> Result<SmgrTruncate, RedoRecordError> {
        let data = record.main_data();
        if data.len() != SMGR_TRUNCATE_BYTES {
            return Err(RedoRecordError::BadLength {
                what: "SMGR_TRUNCATE",
                len: data.len(),
            });
        }
        let flags = le_u32(&data[16..20]);
        if flags & !SMGR_TRUNCATE_ALL != 0 {
            return Err(RedoRecordError::BadTruncateFlags(flags));
        }
        Ok(SmgrTruncate {
            nblocks: BlockNumber(le_u32(&data[0..4])),
            rel: get_locator(&data[4..16]),
            flags,
        })
    }
}

fn put_locator(out: &mut Vec<u8>, rel: RelFileLocator) {
    out.extend_from_slice(&rel.spc_oid.0.to_le_bytes());
    out.extend_from_slice(&rel.db_oid.0.to_le_bytes());
    out.extend_from_slice(&rel.rel_number.0.to_le_bytes());
}

/// `bytes` is exactly 12 long (checked by the callers).
fn get_locator(bytes: &[u8]) -> RelFileLocator {
    RelFileLocator {
        spc_oid: Oid(le_u32(&bytes[0..4])),
        db_oid: Oid(le_u32(&bytes[4..8])),
        rel_number: Oid(le_u32(&bytes[8..12])),
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Lsn, DEFAULTTABLESPACE_OID};
    use crate::wal::decode;

    fn decoded(record: AssembledRecord) -> DecodedRecord {
        decode(record.seal(Lsn(0x100_0028))).expect("a sealed record decodes")
    }

    const REL: RelFileLocator = RelFileLocator {
        spc_oid: DEFAULTTABLESPACE_OID,
        db_oid: Oid(5),
        rel_number: Oid(16_385),
    };

    #[test]
    fn storage_records_round_trip() {
        let create = SmgrCreate {
            rel: REL,
            fork: ForkNumber::Fsm,
        };
        let rec = decoded(create.assemble());
        assert_eq!(
            (rec.rmgr(), rec.info()),
            (ResourceManager::Storage, XLOG_SMGR_CREATE)
        );
        assert_eq!(SmgrCreate::decode(&rec), Ok(create));

        let truncate = SmgrTruncate {
            rel: REL,
            nblocks: BlockNumber(7),
            flags: SMGR_TRUNCATE_HEAP,
        };
        let rec = decoded(truncate.assemble());
        assert_eq!(rec.info(), XLOG_SMGR_TRUNCATE);
        assert_eq!(rec.main_data().len(), 20);
        assert_eq!(SmgrTruncate::decode(&rec), Ok(truncate));
    }

    #[test]
    fn bad_payloads_are_refused() {
        let mut b = RecordBuilder::begin(ResourceManager::Storage, XLOG_SMGR_CREATE, Xid::INVALID);
        b.register_data(&[0u8; 12]);
        let rec = decoded(b.finish().expect("fits"));
        assert!(matches!(
            SmgrCreate::decode(&rec),
            Err(RedoRecordError::BadLength { len: 12, .. })
        ));
        let mut data = vec![0u8; 13];
        data[12] = 9;
        let mut b = RecordBuilder::begin(ResourceManager::Storage, XLOG_SMGR_CREATE, Xid::INVALID);
        b.register_data(&data);
        let rec = decoded(b.finish().expect("fits"));
        assert_eq!(
            SmgrCreate::decode(&rec),
            Err(RedoRecordError::BadFork(9, "SMGR_CREATE"))
        );
        let truncate = SmgrTruncate {
            rel: REL,
            nblocks: BlockNumber(0),
            flags: 0x10,
        };
        let rec = decoded(truncate.assemble());
        assert_eq!(
            SmgrTruncate::decode(&rec),
            Err(RedoRecordError::BadTruncateFlags(0x10))
        );
    }

    #[test]
    fn checkpoint_and_nextoid_records() {
        let cp = CheckPoint::bootstrap(Lsn(0x100_0028), Oid(10_000), 1_700_000_000);
        let rec = decoded(checkpoint_record(&cp, true));
        assert_eq!(rec.info(), XLOG_CHECKPOINT_SHUTDOWN);
        assert_eq!(decode_checkpoint(&rec), Some((cp, true)));
        let rec = decoded(checkpoint_record(&cp, false));
        assert_eq!(decode_checkpoint(&rec), Some((cp, false)));
        let rec = decoded(next_oid_record(Oid(24_576)));
        assert_eq!(decode_checkpoint(&rec), None);
        assert_eq!(decode_next_oid(&rec), Ok(Oid(24_576)));
        assert_eq!(
            RedoRecordError::UnknownInfo {
                rmgr: "xlog",
                info: 0x40
            }
            .to_string(),
            "xlog_redo: unknown op code 64"
        );
    }
}
