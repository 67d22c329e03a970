//! The Transaction resource manager's WAL records, commit and abort
//! (PostgreSQL's `xl_xact_commit` / `xl_xact_abort` in `xact.h`, redo in
//! `xact_redo`), and their redo effect on the commit log.
//!
//! A backend builds the record at commit or abort ([`XactCommit::assemble`],
//! [`XactAbort::assemble`]) and hands it to WAL insertion; the startup
//! process decodes it ([`decode_xact_record`]) and applies it
//! ([`redo_commit`], [`redo_abort`]). The top-level xid is the record
//! header's; the payload is the record's main data, little-endian:
//!
//! ```text
//!  info  0x00 COMMIT | 0x20 ABORT          (PostgreSQL's XLOG_XACT_* values)
//!
//!  i64   xact_time      commit/abort time, µs since 2000-01-01 UTC (TimestampTz)
//!  u32   xinfo          which optional parts follow:
//!                         0x02 HAS_SUBXACTS  0x04 HAS_RELFILELOCATORS  0x08 HAS_INVALS
//!  [HAS_SUBXACTS]        u32 n, then n × u64 subtransaction xids
//!  [HAS_RELFILELOCATORS] u32 n, then n × (u32 spc, u32 db, u32 relnumber):
//!                        relations whose files go at commit (DROP) or abort (CREATE)
//!  [HAS_INVALS]          u32 invalidation flags (commit only; a placeholder
//!                        until the shared invalidation queue defines messages)
//! ```
//!
//! # Rules
//!
//! 1. (R1) Replay of a commit marks the subtransactions SubCommitted, then
//!    the top-level xid Committed, then the subtransactions Committed
//!    (PostgreSQL's TransactionIdCommitTree order), so a reader never sees a
//!    subtransaction committed before its parent. An abort marks all Aborted.
//! 2. (R2) Replay is idempotent: setting a status again is allowed
//!    (`XidStatus::may_become`).
//! 3. (R3) The redo result names the largest xid of the record: the startup
//!    process must pass it to `Transam::advance_next_xid_past`, and must
//!    unlink the listed relations' files (smgr) after the status is set.
//! 4. (R4) Decoding checks every count against the bytes present before
//!    allocating, and rejects unknown info bits, unknown xinfo bits, a
//!    non-normal xid and trailing bytes.
//!
//! # Locking
//!
//! None here: the caller of redo passes a `clog_set` that takes the commit
//! log's locks.
//!
//! # Crash safety
//!
//! A commit is durable once its record is flushed; the status in `pg_xact`
//! may be lost in a crash and is rebuilt by this redo (clog rule C1). An
//! abort record is not flushed at abort: if it is lost, the xid has no
//! status and reads as aborted anyway.

use crate::clog::XidStatus;
use crate::types::{Oid, RelFileLocator, Xid};
use crate::wal::record::{
    AssembledRecord, DecodedRecord, RecordBuilder, RecordTooLarge, ResourceManager,
};
use pgerror::{PgError, SqlState};

/// Info values (PostgreSQL's XLOG_XACT_COMMIT, XLOG_XACT_ABORT).
pub const XLOG_XACT_COMMIT: u8 = 0x00;
pub const XLOG_XACT_ABORT: u8 = 0x20;

/// xinfo bits (PostgreSQL's XACT_XINFO_*).
pub const XACT_XINFO_HAS_SUBXACTS: u32 = 1 << 1;
pub const XACT_XINFO_HAS_RELFILELOCATORS: u32 = 1 << 2;
pub const XACT_XINFO_HAS_INVALS: u32 = 1 << 3;
const KNOWN_XINFO: u32 =
    XACT_XINFO_HAS_SUBXACTS | XACT_XINFO_HAS_RELFILELOCATORS | XACT_XINFO_HAS_INVALS;

/// A commit record's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XactCommit {
    pub xid: Xid,
    /// Microseconds since 2000-01-01 00:00 UTC (PostgreSQL's TimestampTz).
    pub commit_time_us: i64,
    pub subxacts: Vec<Xid>,
    /// Relations dropped by the transaction: their files go now.
    pub dropped_rels: Vec<RelFileLocator>,
    /// Cache invalidation flags (placeholder; 0 = none).
    pub inval_flags: u32,
}

/// An abort record's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XactAbort {
    pub xid: Xid,
    pub abort_time_us: i64,
    pub subxacts: Vec<Xid>,
    /// Relations created by the transaction: their files go now.
    pub dropped_rels: Vec<RelFileLocator>,
}

/// A decoded Transaction record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XactRecord {
    Commit(XactCommit),
    Abort(XactAbort),
}

/// What replaying a record did and what the startup process must still do
/// (rule R3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XactRedo {
    pub xid: Xid,
    /// Committed or Aborted.
    pub status: XidStatus,
    /// Largest xid in the record: advance `next_xid` past it.
    pub max_xid: Xid,
    /// Unlink these relations' files.
    pub dropped_rels: Vec<RelFileLocator>,
}

/// A Transaction record that cannot be replayed (the WAL passed its CRC, so
/// this is a bug or an incompatible format: the startup process stops with
/// PANIC, as PostgreSQL does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XactRecordError {
    #[error("record of resource manager {0} is not a transaction record")]
    WrongResourceManager(&'static str),
    #[error("unknown transaction record info {0:#04x}")]
    UnknownInfo(u8),
    #[error("transaction record for invalid xid {0}")]
    InvalidXid(Xid),
    #[error("transaction record truncated: {0}")]
    Truncated(&'static str),
    #[error("transaction record has unknown xinfo bits {0:#x}")]
    UnknownXinfo(u32),
    #[error("transaction record has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl From<XactRecordError> for PgError {
    fn from(e: XactRecordError) -> PgError {
        PgError::new(SqlState::DATA_CORRUPTED, e.to_string())
    }
}

impl XactCommit {
    /// The record to insert (then `seal` with the previous record's LSN).
    pub fn assemble(&self) -> Result<AssembledRecord, RecordTooLarge> {
        let mut xinfo = 0;
        if !self.subxacts.is_empty() {
            xinfo |= XACT_XINFO_HAS_SUBXACTS;
        }
        if !self.dropped_rels.is_empty() {
            xinfo |= XACT_XINFO_HAS_RELFILELOCATORS;
        }
        if self.inval_flags != 0 {
            xinfo |= XACT_XINFO_HAS_INVALS;
        }
        let mut data = encode_common(
            self.commit_time_us,
            xinfo,
            &self.subxacts,
            &self.dropped_rels,
        );
        if self.inval_flags != 0 {
            data.extend_from_slice(&self.inval_flags.to_le_bytes());
        }
        let mut b = RecordBuilder::begin(ResourceManager::Transaction, XLOG_XACT_COMMIT, self.xid);
        b.register_data(&data);
        b.finish()
    }
}

impl XactAbort {
    pub fn assemble(&self) -> Result<AssembledRecord, RecordTooLarge> {
        let mut xinfo = 0;
        if !self.subxacts.is_empty() {
            xinfo |= XACT_XINFO_HAS_SUBXACTS;
        }
        if !self.dropped_rels.is_empty() {
            xinfo |= XACT_XINFO_HAS_RELFILELOCATORS;
        }
        let data = encode_common(
            self.abort_time_us,
            xinfo,
            &self.subxacts,
            &self.dropped_rels,
        );
        let mut b = RecordBuilder::begin(ResourceManager::Transaction, XLOG_XACT_ABORT, self.xid);
        b.register_data(&data);
        b.finish()
    }
}

fn encode_common(time_us: i64, xinfo: u32, subxacts: &[Xid], rels: &[RelFileLocator]) -> Vec<u8> {
    let mut data = Vec::with_capacity(12 + 4 + subxacts.len() * 8 + 4 + rels.len() * 12 + 4);
    data.extend_from_slice(&time_us.to_le_bytes());
    data.extend_from_slice(&xinfo.to_le_bytes());
    if xinfo & XACT_XINFO_HAS_SUBXACTS != 0 {
        data.extend_from_slice(&(subxacts.len() as u32).to_le_bytes());
        for x in subxacts {
            data.extend_from_slice(&x.0.to_le_bytes());
        }
    }
    if xinfo & XACT_XINFO_HAS_RELFILELOCATORS != 0 {
        data.extend_from_slice(&(rels.len() as u32).to_le_bytes());
        for r in rels {
            for v in [r.spc_oid, r.db_oid, r.rel_number] {
                data.extend_from_slice(&v.0.to_le_bytes());
            }
        }
    }
    data
}

/// Reads little-endian values off a byte slice, never past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], XactRecordError> {
        if self.bytes.len() < n {
            return Err(XactRecordError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, XactRecordError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, XactRecordError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A count of `item_bytes`-sized items that must fit in what is left.
    fn count(&mut self, item_bytes: usize, what: &'static str) -> Result<usize, XactRecordError> {
        let n = self.u32(what)? as usize;
        if n.checked_mul(item_bytes)
            .is_none_or(|len| len > self.bytes.len())
        {
            return Err(XactRecordError::Truncated(what));
        }
        Ok(n)
    }
}

/// Decodes a Transaction record (rule R4).
pub fn decode_xact_record(record: &DecodedRecord) -> Result<XactRecord, XactRecordError> {
    if record.rmgr() != ResourceManager::Transaction {
        return Err(XactRecordError::WrongResourceManager(record.rmgr().name()));
    }
    let info = record.info();
    if info != XLOG_XACT_COMMIT && info != XLOG_XACT_ABORT {
        return Err(XactRecordError::UnknownInfo(info));
    }
    let xid = record.xid();
    if !xid.is_normal() {
        return Err(XactRecordError::InvalidXid(xid));
    }
    let mut r = Reader {
        bytes: record.main_data(),
    };
    let time_us = r.u64("time")? as i64;
    let xinfo = r.u32("xinfo")?;
    if xinfo & !KNOWN_XINFO != 0 || (info == XLOG_XACT_ABORT && xinfo & XACT_XINFO_HAS_INVALS != 0)
    {
        return Err(XactRecordError::UnknownXinfo(xinfo));
    }
    let mut subxacts = Vec::new();
    if xinfo & XACT_XINFO_HAS_SUBXACTS != 0 {
        let n = r.count(8, "subtransactions")?;
        subxacts.reserve(n);
        for _ in 0..n {
            let sub = Xid(r.u64("subtransactions")?);
            if !sub.is_normal() {
                return Err(XactRecordError::InvalidXid(sub));
            }
            subxacts.push(sub);
        }
    }
    let mut dropped_rels = Vec::new();
    if xinfo & XACT_XINFO_HAS_RELFILELOCATORS != 0 {
        let n = r.count(12, "relations")?;
        dropped_rels.reserve(n);
        for _ in 0..n {
            dropped_rels.push(RelFileLocator {
                spc_oid: Oid(r.u32("relations")?),
                db_oid: Oid(r.u32("relations")?),
                rel_number: Oid(r.u32("relations")?),
            });
        }
    }
    let inval_flags = if xinfo & XACT_XINFO_HAS_INVALS != 0 {
        r.u32("invalidation flags")?
    } else {
        0
    };
    if !r.bytes.is_empty() {
        return Err(XactRecordError::TrailingBytes(r.bytes.len()));
    }
    Ok(if info == XLOG_XACT_COMMIT {
        XactRecord::Commit(XactCommit {
            xid,
            commit_time_us: time_us,
            subxacts,
            dropped_rels,
            inval_flags,
        })
    } else {
        XactRecord::Abort(XactAbort {
            xid,
            abort_time_us: time_us,
            subxacts,
            dropped_rels,
        })
    })
}

/// Replays a Transaction record of either kind (rules R1-R3).
pub fn redo(
    record: &DecodedRecord,
    clog_set: impl FnMut(Xid, XidStatus),
) -> Result<XactRedo, XactRecordError> {
    match decode_xact_record(record)? {
        XactRecord::Commit(c) => Ok(apply_commit(c, clog_set)),
        XactRecord::Abort(a) => Ok(apply_abort(a, clog_set)),
    }
}

/// Replays a commit record; an abort record is an error here.
pub fn redo_commit(
    record: &DecodedRecord,
    clog_set: impl FnMut(Xid, XidStatus),
) -> Result<XactRedo, XactRecordError> {
    match decode_xact_record(record)? {
        XactRecord::Commit(c) => Ok(apply_commit(c, clog_set)),
        XactRecord::Abort(_) => Err(XactRecordError::UnknownInfo(record.info())),
    }
}

/// Replays an abort record; a commit record is an error here.
pub fn redo_abort(
    record: &DecodedRecord,
    clog_set: impl FnMut(Xid, XidStatus),
) -> Result<XactRedo, XactRecordError> {
    match decode_xact_record(record)? {
        XactRecord::Abort(a) => Ok(apply_abort(a, clog_set)),
        XactRecord::Commit(_) => Err(XactRecordError::UnknownInfo(record.info())),
    }
}

fn max_xid(xid: Xid, subxacts: &[Xid]) -> Xid {
    subxacts.iter().copied().fold(xid, Xid::max)
}

fn apply_commit(c: XactCommit, mut clog_set: impl FnMut(Xid, XidStatus)) -> XactRedo {
    for &sub in &c.subxacts {
        clog_set(sub, XidStatus::SubCommitted);
    }
    clog_set(c.xid, XidStatus::Committed);
    for &sub in &c.subxacts {
        clog_set(sub, XidStatus::Committed);
    }
    XactRedo {
        xid: c.xid,
        status: XidStatus::Committed,
        max_xid: max_xid(c.xid, &c.subxacts),
        dropped_rels: c.dropped_rels,
    }
}

fn apply_abort(a: XactAbort, mut clog_set: impl FnMut(Xid, XidStatus)) -> XactRedo {
    clog_set(a.xid, XidStatus::Aborted);
    for &sub in &a.subxacts {
        clog_set(sub, XidStatus::Aborted);
    }
    XactRedo {
        xid: a.xid,
        status: XidStatus::Aborted,
        max_xid: max_xid(a.xid, &a.subxacts),
        dropped_rels: a.dropped_rels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Lsn, DEFAULTTABLESPACE_OID};
    use crate::wal::record::decode;

    fn rel(n: u32) -> RelFileLocator {
        RelFileLocator {
            spc_oid: DEFAULTTABLESPACE_OID,
            db_oid: Oid(5),
            rel_number: Oid(n),
        }
    }

    fn through_wal(rec: AssembledRecord) -> DecodedRecord {
        decode(rec.seal(Lsn(0x1000))).expect("a record we built decodes")
    }

    #[test]
    fn a_commit_round_trips_and_replays_in_tree_order() {
        let commit = XactCommit {
            xid: Xid(900),
            commit_time_us: 812_345_678_901_234,
            subxacts: vec![Xid(901), Xid(905)],
            dropped_rels: vec![rel(16384), rel(16390)],
            inval_flags: 1,
        };
        let rec = through_wal(commit.assemble().unwrap());
        assert_eq!(rec.rmgr(), ResourceManager::Transaction);
        assert_eq!(rec.info(), XLOG_XACT_COMMIT);
        assert_eq!(
            decode_xact_record(&rec),
            Ok(XactRecord::Commit(commit.clone()))
        );
        let mut sets = Vec::new();
        let done = redo_commit(&rec, |x, s| sets.push((x.0, s))).unwrap();
        use XidStatus::*;
        assert_eq!(
            sets,
            vec![
                (901, SubCommitted),
                (905, SubCommitted),
                (900, Committed),
                (901, Committed),
                (905, Committed)
            ]
        );
        assert_eq!(
            done,
            XactRedo {
                xid: Xid(900),
                status: Committed,
                max_xid: Xid(905),
                dropped_rels: vec![rel(16384), rel(16390)],
            }
        );
    }

    #[test]
    fn a_plain_commit_is_twelve_bytes_of_payload() {
        let commit = XactCommit {
            xid: Xid(7),
            commit_time_us: -5,
            subxacts: vec![],
            dropped_rels: vec![],
            inval_flags: 0,
        };
        let rec = through_wal(commit.assemble().unwrap());
        assert_eq!(rec.main_data().len(), 12);
        let mut sets = Vec::new();
        let done = redo(&rec, |x, s| sets.push((x, s))).unwrap();
        assert_eq!(sets, vec![(Xid(7), XidStatus::Committed)]);
        assert_eq!(done.max_xid, Xid(7));
    }

    #[test]
    fn an_abort_round_trips_and_replays() {
        let abort = XactAbort {
            xid: Xid(77),
            abort_time_us: 1,
            subxacts: vec![Xid(78)],
            dropped_rels: vec![rel(20000)],
        };
        let rec = through_wal(abort.assemble().unwrap());
        assert_eq!(rec.info(), XLOG_XACT_ABORT);
        assert_eq!(decode_xact_record(&rec), Ok(XactRecord::Abort(abort)));
        let mut sets = Vec::new();
        let done = redo_abort(&rec, |x, s| sets.push((x.0, s))).unwrap();
        assert_eq!(
            sets,
            vec![(77, XidStatus::Aborted), (78, XidStatus::Aborted)]
        );
        assert_eq!((done.status, done.max_xid), (XidStatus::Aborted, Xid(78)));
        assert!(
            redo_commit(&rec, |_, _| ()).is_err(),
            "an abort is not a commit"
        );
    }

    fn raw(info: u8, xid: Xid, data: &[u8]) -> DecodedRecord {
        let mut b = RecordBuilder::begin(ResourceManager::Transaction, info, xid);
        b.register_data(data);
        through_wal(b.finish().unwrap())
    }

    #[test]
    fn malformed_payloads_are_rejected_without_panicking() {
        let mut good = Vec::new();
        good.extend_from_slice(&0i64.to_le_bytes());
        good.extend_from_slice(&XACT_XINFO_HAS_SUBXACTS.to_le_bytes());
        good.extend_from_slice(&1u32.to_le_bytes());
        good.extend_from_slice(&10u64.to_le_bytes());
        assert!(decode_xact_record(&raw(XLOG_XACT_COMMIT, Xid(9), &good)).is_ok());
        for cut in 0..good.len() {
            let got = decode_xact_record(&raw(XLOG_XACT_COMMIT, Xid(9), &good[..cut]));
            assert!(
                matches!(got, Err(XactRecordError::Truncated(_))),
                "cut at {cut}: {got:?}"
            );
        }
        let mut huge = good.clone();
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_xact_record(&raw(XLOG_XACT_COMMIT, Xid(9), &huge)),
            Err(XactRecordError::Truncated(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            decode_xact_record(&raw(XLOG_XACT_COMMIT, Xid(9), &trailing)),
            Err(XactRecordError::TrailingBytes(1))
        );
        assert_eq!(
            decode_xact_record(&raw(0x10, Xid(9), &good)),
            Err(XactRecordError::UnknownInfo(0x10))
        );
        assert_eq!(
            decode_xact_record(&raw(XLOG_XACT_COMMIT, Xid::INVALID, &good)),
            Err(XactRecordError::InvalidXid(Xid::INVALID))
        );
        let mut bad_xinfo = good.clone();
        bad_xinfo[8..12].copy_from_slice(&0x40u32.to_le_bytes());
        assert_eq!(
            decode_xact_record(&raw(XLOG_XACT_COMMIT, Xid(9), &bad_xinfo)),
            Err(XactRecordError::UnknownXinfo(0x40))
        );
        let heap = RecordBuilder::begin(ResourceManager::Heap, 0, Xid(9))
            .finish()
            .unwrap();
        assert_eq!(
            decode_xact_record(&through_wal(heap)),
            Err(XactRecordError::WrongResourceManager("Heap"))
        );
        let e: PgError = XactRecordError::TrailingBytes(1).into();
        assert_eq!(e.code, SqlState::DATA_CORRUPTED);
    }
}
