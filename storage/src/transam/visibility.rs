//! Tuple visibility (PostgreSQL's `heapam_visibility.c`): pure functions of
//! a tuple header, the current transaction (its xid and command id), a
//! snapshot or the proc array, and the commit log.
//!
//! * [`satisfies_mvcc`]: may this snapshot see this tuple? (scans)
//! * [`satisfies_update`]: may the current transaction update, delete or
//!   lock this tuple now, and if not, why? (UPDATE, DELETE)
//! * [`satisfies_vacuum`]: is this tuple dead to every snapshot that exists
//!   or may still be taken, so that VACUUM may remove it? (VACUUM, ANALYZE)
//!
//! Both return the hint bits that could be set ([`HintBits`]); they never
//! write. The caller sets them if it holds the buffer's content lock (shared
//! is enough, as in PostgreSQL) and, for a commit bit, only once the WAL is
//! flushed past the commit record or the page's own LSN is past it
//! ([`HintBits::settable`]): otherwise a crash could keep the page with a
//! "committed" hint while losing an asynchronous commit.
//!
//! # Rules
//!
//! 1. (V1) Order of questions, as in PostgreSQL: is it the current
//!    transaction? then, for MVCC, is it running according to the snapshot,
//!    and for updates, is it running according to the proc array? and only
//!    then, did it commit according to the commit log (P2). An xid that is
//!    not running and not committed aborted or crashed.
//! 2. (V2) The current transaction's own inserts are visible to commands
//!    after the inserting one (`cmin < current cid`); its own deletes hide
//!    the tuple from commands after the deleting one (`cmax < current cid`).
//! 3. (V3) An xmax that only locked the row (HEAP_XMAX_LOCK_ONLY, or an
//!    exclusive-lock bit without KEYSHR) never hides the tuple.
//! 4. (V4) An aborted (or crashed) xmax is as if there were none
//!    (suggests HEAP_XMAX_INVALID); a committed locker too.
//! 5. (V5) Hint bits that say committed (HEAP_XMIN_COMMITTED,
//!    HEAP_XMAX_COMMITTED) only shortcut the commit-log lookup; under MVCC
//!    the snapshot is still asked whether that commit is visible.
//! 6. (V6) The special xids: INVALID is aborted; BOOTSTRAP and FROZEN are
//!    committed and never running.
//! 7. (V7) **The vacuum horizon.** A tuple is removable (Dead) only if its
//!    inserter aborted or crashed, or its deleter committed with an xid
//!    below the horizon (`Transam::global_xmin`, procarray rule P6): no
//!    snapshot, present or future, sees such a delete as running, so none
//!    can see the tuple. A committed delete at or above the horizon is
//!    RecentlyDead: some snapshot may still see the tuple.
//!
//! Differences from PostgreSQL: no subtransactions (the current
//! transaction is one xid), no multixacts (a tuple with HEAP_XMAX_IS_MULTI
//! and a live xmax is reported corrupted, XX001), and no combo command ids:
//! the header has one `cid`, which is cmin until someone deletes the tuple
//! and cmax afterwards. Only when a transaction deletes a tuple it inserted
//! itself does this lose information: cmin is then taken to equal cmax, so a
//! command between the two (a cursor opened after the insert and read after
//! the delete) does not see the row, where PostgreSQL would.
//!
//! # Locking
//!
//! None taken here. The caller holds a pin and at least a shared content
//! lock on the tuple's buffer while reading the header (a consistent
//! header). The commit-log oracle takes the clog's own locks.
//!
//! # Crash safety
//!
//! Read-only. See [`HintBits::settable`] for the WAL-before-hint rule.

use super::snapshot::Snapshot;
use crate::clog::{Clog, XidStatus};
use crate::heap::tuple::{
    HeapTupleHeader, ItemPointer, HEAP_LOCK_MASK, HEAP_XMAX_COMMITTED, HEAP_XMAX_EXCL_LOCK,
    HEAP_XMAX_INVALID, HEAP_XMAX_IS_MULTI, HEAP_XMAX_LOCK_ONLY, HEAP_XMIN_COMMITTED,
    HEAP_XMIN_INVALID,
};
use crate::types::{Lsn, Xid};
use pgerror::{PgError, SqlState};
use std::collections::{HashMap, HashSet};

/// The commit log, as visibility sees it. Implemented by the shared
/// [`Clog`]; tests use a map.
pub trait XidStatusOracle {
    /// The recorded status of a normal xid and, for a commit, the LSN the
    /// WAL must be flushed to before a hint bit may say so
    /// ([`Lsn::INVALID`] when none is needed). A never-recorded xid is
    /// [`XidStatus::InProgress`]. [`XidStatus::SubCommitted`] counts as not
    /// committed (there are no subtransactions yet; it only exists for an
    /// instant while a multi-page commit is recorded).
    fn status(&self, xid: Xid) -> Result<(XidStatus, Lsn), PgError>;
}

impl XidStatusOracle for Clog<'_> {
    fn status(&self, xid: Xid) -> Result<(XidStatus, Lsn), PgError> {
        self.get_status(xid).map_err(PgError::from)
    }
}

/// A map as the commit log, for tests here and in other crates: xids
/// absent from it were never recorded (in progress, or crashed).
impl XidStatusOracle for HashMap<Xid, (XidStatus, Lsn)> {
    fn status(&self, xid: Xid) -> Result<(XidStatus, Lsn), PgError> {
        Ok(self
            .get(&xid)
            .copied()
            .unwrap_or((XidStatus::InProgress, Lsn::INVALID)))
    }
}

/// The proc array, as [`satisfies_update`] sees it: implemented by
/// [`super::Transam`] (PostgreSQL's TransactionIdIsInProgress).
pub trait XidRunningOracle {
    fn is_running(&self, xid: Xid) -> bool;
}

/// A set of running xids as the proc array, for tests.
impl XidRunningOracle for HashSet<Xid> {
    fn is_running(&self, xid: Xid) -> bool {
        self.contains(&xid)
    }
}

/// Hint bits a visibility check found could be set on the tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HintBits {
    /// HEAP_XMIN_INVALID and/or HEAP_XMAX_INVALID: always safe to set.
    pub invalid_bits: u16,
    /// HEAP_XMIN_COMMITTED may be set once the WAL is flushed to this LSN
    /// (INVALID: at once).
    pub xmin_committed: Option<Lsn>,
    /// HEAP_XMAX_COMMITTED, likewise.
    pub xmax_committed: Option<Lsn>,
}

impl HintBits {
    pub fn is_empty(&self) -> bool {
        *self == HintBits::default()
    }

    /// Every suggested bit, ignoring the WAL condition.
    pub fn all(&self) -> u16 {
        self.invalid_bits
            | self.xmin_committed.map_or(0, |_| HEAP_XMIN_COMMITTED)
            | self.xmax_committed.map_or(0, |_| HEAP_XMAX_COMMITTED)
    }

    /// The bits that may be set now (PostgreSQL's SetHintBits): abort bits
    /// always; a commit bit if its commit LSN is invalid, already flushed
    /// (`<= wal_flushed`), or not after `page_lsn` (the page cannot reach
    /// disk before the WAL up to its own LSN, which then covers the commit).
    /// For unlogged and temporary relations pass `Lsn(u64::MAX)` as
    /// `wal_flushed`.
    pub fn settable(&self, wal_flushed: Lsn, page_lsn: Lsn) -> u16 {
        let ok = |lsn: Lsn| !lsn.is_valid() || lsn <= wal_flushed || lsn <= page_lsn;
        let mut bits = self.invalid_bits;
        if self.xmin_committed.is_some_and(ok) {
            bits |= HEAP_XMIN_COMMITTED;
        }
        if self.xmax_committed.is_some_and(ok) {
            bits |= HEAP_XMAX_COMMITTED;
        }
        bits
    }
}

/// The answer of [`satisfies_mvcc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visibility {
    pub visible: bool,
    pub hints: HintBits,
}

/// What [`satisfies_update`] found (PostgreSQL's TM_Result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateResult {
    /// The tuple is live and may be updated, deleted or locked (TM_Ok).
    Ok,
    /// The tuple did not exist for this command: inserted by a later command
    /// of this transaction, by a running or an aborted one, or deleted by an
    /// earlier command of this transaction (TM_Invisible).
    Invisible,
    /// This transaction already updated or deleted it, in command `cmax`,
    /// at or after the current one (TM_SelfModified).
    SelfUpdated { cmax: u32 },
    /// A committed transaction updated it; the newer version is at `ctid`
    /// (TM_Updated).
    Updated { xmax: Xid, ctid: ItemPointer },
    /// A committed transaction deleted it (TM_Deleted).
    Deleted { xmax: Xid },
    /// Transaction `xmax` is running and updated, deleted or locked it
    /// (TM_BeingModified): wait for it, then look again. `xmax` may be the
    /// current transaction when it only locked the row.
    BeingUpdated { xmax: Xid, lock_only: bool },
}

/// The answer of [`satisfies_update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateCheck {
    pub result: UpdateResult,
    pub hints: HintBits,
}

/// PostgreSQL's HEAP_XMAX_IS_LOCKED_ONLY.
fn xmax_is_locked_only(infomask: u16) -> bool {
    infomask & HEAP_XMAX_LOCK_ONLY != 0
        || infomask & (HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK) == HEAP_XMAX_EXCL_LOCK
}

fn xmin_committed_hint(infomask: u16) -> bool {
    infomask & HEAP_XMIN_COMMITTED != 0
}

/// Known aborted: INVALID without COMMITTED (both together mean frozen).
fn xmin_invalid_hint(infomask: u16) -> bool {
    infomask & (HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID) == HEAP_XMIN_INVALID
}

fn xmin_frozen_hint(infomask: u16) -> bool {
    infomask & (HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID) == HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID
}

/// The current transaction, as the visibility rules see it.
#[derive(Clone, Copy)]
struct Me {
    xid: Xid,
    cid: u32,
}

impl Me {
    /// PostgreSQL's TransactionIdIsCurrentTransactionId (no subtransactions).
    fn is(&self, xid: Xid) -> bool {
        self.xid.is_valid() && xid == self.xid
    }
}

/// The commit LSN if `xid` committed (V6 for the special xids).
fn did_commit(oracle: &(impl XidStatusOracle + ?Sized), xid: Xid) -> Result<Option<Lsn>, PgError> {
    if !xid.is_normal() {
        return Ok(xid.is_valid().then_some(Lsn::INVALID));
    }
    match oracle.status(xid)? {
        (XidStatus::Committed, lsn) => Ok(Some(lsn)),
        _ => Ok(None),
    }
}

fn check_no_multixact(t: &HeapTupleHeader) -> Result<(), PgError> {
    if t.infomask & HEAP_XMAX_IS_MULTI != 0 && t.infomask & HEAP_XMAX_INVALID == 0 {
        return Err(PgError::new(
            SqlState::DATA_CORRUPTED,
            format!("tuple has a multixact xmax {} (not supported)", t.xmax),
        ));
    }
    Ok(())
}

/// Is tuple `t` visible to `snapshot`, for command `my_cid` of transaction
/// `my_xid` ([`Xid::INVALID`] if it has none)? PostgreSQL's
/// HeapTupleSatisfiesMVCC.
pub fn satisfies_mvcc(
    t: &HeapTupleHeader,
    snapshot: &Snapshot,
    my_xid: Xid,
    my_cid: u32,
    oracle: &(impl XidStatusOracle + ?Sized),
) -> Result<Visibility, PgError> {
    check_no_multixact(t)?;
    let mut hints = HintBits::default();
    let visible = mvcc(
        t,
        snapshot,
        Me {
            xid: my_xid,
            cid: my_cid,
        },
        oracle,
        &mut hints,
    )?;
    Ok(Visibility { visible, hints })
}

fn mvcc(
    t: &HeapTupleHeader,
    snapshot: &Snapshot,
    me: Me,
    oracle: &(impl XidStatusOracle + ?Sized),
    hints: &mut HintBits,
) -> Result<bool, PgError> {
    let mask = t.infomask;
    // Part 1: was the insert visible?
    if !xmin_committed_hint(mask) {
        if xmin_invalid_hint(mask) {
            return Ok(false);
        }
        if me.is(t.xmin) {
            if t.cid >= me.cid {
                return Ok(false); // inserted by this or a later command (V2)
            }
            if mask & HEAP_XMAX_INVALID != 0 || xmax_is_locked_only(mask) {
                return Ok(true);
            }
            if !me.is(t.xmax) {
                // Only an aborted subtransaction of ours could have deleted
                // a row nobody else can see yet (V4).
                hints.invalid_bits |= HEAP_XMAX_INVALID;
                return Ok(true);
            }
            return Ok(t.cid >= me.cid); // deleted by this or a later command: still visible
        }
        if snapshot.xid_in_snapshot(t.xmin) {
            return Ok(false);
        }
        match did_commit(oracle, t.xmin)? {
            Some(lsn) => hints.xmin_committed = Some(lsn),
            None => {
                hints.invalid_bits |= HEAP_XMIN_INVALID;
                return Ok(false);
            }
        }
    } else if !xmin_frozen_hint(mask) && snapshot.xid_in_snapshot(t.xmin) {
        return Ok(false); // committed, but after our snapshot (V5)
    }

    // Part 2: the insert is visible; is a delete?
    if mask & HEAP_XMAX_INVALID != 0 || xmax_is_locked_only(mask) {
        return Ok(true); // V3
    }
    if mask & HEAP_XMAX_COMMITTED == 0 {
        if me.is(t.xmax) {
            return Ok(t.cid >= me.cid); // V2
        }
        if snapshot.xid_in_snapshot(t.xmax) {
            return Ok(true);
        }
        match did_commit(oracle, t.xmax)? {
            Some(lsn) => hints.xmax_committed = Some(lsn),
            None => {
                hints.invalid_bits |= HEAP_XMAX_INVALID;
                return Ok(true); // V4
            }
        }
    } else if snapshot.xid_in_snapshot(t.xmax) {
        return Ok(true); // committed, but after our snapshot (V5)
    }
    Ok(false)
}

/// May command `my_cid` of transaction `my_xid` update, delete or lock tuple
/// `t`, which lives at `self_tid`? PostgreSQL's HeapTupleSatisfiesUpdate:
/// judged against the proc array and the commit log as of now, not a
/// snapshot. `running` must be the proc array (rule V1 depends on asking it
/// before the commit log).
pub fn satisfies_update(
    t: &HeapTupleHeader,
    self_tid: ItemPointer,
    my_xid: Xid,
    my_cid: u32,
    oracle: &(impl XidStatusOracle + ?Sized),
    running: &(impl XidRunningOracle + ?Sized),
) -> Result<UpdateCheck, PgError> {
    check_no_multixact(t)?;
    let mut hints = HintBits::default();
    let me = Me {
        xid: my_xid,
        cid: my_cid,
    };
    let result = update(t, self_tid, me, oracle, running, &mut hints)?;
    Ok(UpdateCheck { result, hints })
}

fn update(
    t: &HeapTupleHeader,
    self_tid: ItemPointer,
    me: Me,
    oracle: &(impl XidStatusOracle + ?Sized),
    running: &(impl XidRunningOracle + ?Sized),
    hints: &mut HintBits,
) -> Result<UpdateResult, PgError> {
    let mask = t.infomask;
    let locked_only = xmax_is_locked_only(mask);
    let updated_or_deleted = |xmax: Xid| {
        if t.ctid != self_tid {
            UpdateResult::Updated { xmax, ctid: t.ctid }
        } else {
            UpdateResult::Deleted { xmax }
        }
    };
    // Part 1: does the tuple exist for this command?
    if !xmin_committed_hint(mask) {
        if xmin_invalid_hint(mask) {
            return Ok(UpdateResult::Invisible);
        }
        if me.is(t.xmin) {
            if t.cid >= me.cid {
                return Ok(UpdateResult::Invisible); // inserted after the scan started
            }
            if mask & HEAP_XMAX_INVALID != 0 {
                return Ok(UpdateResult::Ok);
            }
            if locked_only {
                // Someone (possibly we) locked our new row.
                return Ok(if running.is_running(t.xmax) {
                    UpdateResult::BeingUpdated {
                        xmax: t.xmax,
                        lock_only: true,
                    }
                } else {
                    UpdateResult::Ok
                });
            }
            if !me.is(t.xmax) {
                hints.invalid_bits |= HEAP_XMAX_INVALID; // aborted subtransaction
                return Ok(UpdateResult::Ok);
            }
            return Ok(self_modified(t.cid, me));
        }
        if running.is_running(t.xmin) {
            return Ok(UpdateResult::Invisible);
        }
        match did_commit(oracle, t.xmin)? {
            Some(lsn) => hints.xmin_committed = Some(lsn),
            None => {
                hints.invalid_bits |= HEAP_XMIN_INVALID;
                return Ok(UpdateResult::Invisible);
            }
        }
    }

    // Part 2: it exists; who has touched it since?
    if mask & HEAP_XMAX_INVALID != 0 {
        return Ok(UpdateResult::Ok);
    }
    if mask & HEAP_XMAX_COMMITTED != 0 {
        if locked_only {
            return Ok(UpdateResult::Ok);
        }
        return Ok(updated_or_deleted(t.xmax));
    }
    if me.is(t.xmax) {
        if locked_only {
            return Ok(UpdateResult::BeingUpdated {
                xmax: t.xmax,
                lock_only: true,
            });
        }
        return Ok(self_modified(t.cid, me));
    }
    if running.is_running(t.xmax) {
        return Ok(UpdateResult::BeingUpdated {
            xmax: t.xmax,
            lock_only: locked_only,
        });
    }
    match did_commit(oracle, t.xmax)? {
        None => {
            hints.invalid_bits |= HEAP_XMAX_INVALID; // aborted or crashed
            Ok(UpdateResult::Ok)
        }
        Some(_) if locked_only => {
            hints.invalid_bits |= HEAP_XMAX_INVALID; // the locker is gone
            Ok(UpdateResult::Ok)
        }
        Some(lsn) => {
            hints.xmax_committed = Some(lsn);
            Ok(updated_or_deleted(t.xmax))
        }
    }
}

/// Our own update or delete in command `cmax`: after the scan started (a
/// later or the same command) it is SelfUpdated, before it the tuple is gone.
fn self_modified(cmax: u32, me: Me) -> UpdateResult {
    if cmax >= me.cid {
        UpdateResult::SelfUpdated { cmax }
    } else {
        UpdateResult::Invisible
    }
}

/// What [`satisfies_vacuum`] found (PostgreSQL's HTSV_Result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VacuumState {
    /// Dead to every snapshot there is or will be: may be removed (V7).
    Dead,
    /// Inserted by a committed transaction and not deleted (or deleted by
    /// one that aborted, or only locked).
    Live,
    /// Deleted by a committed transaction that some snapshot may still see
    /// as running: keep it for now.
    RecentlyDead,
    /// The inserting transaction is still running.
    InsertInProgress,
    /// Inserted by a committed transaction; the deleting one still runs.
    DeleteInProgress,
}

/// Whether the tuple is dead to every transaction, present and future,
/// and will stay so after a crash (PostgreSQL's "surely dead", what lets an
/// index scan mark the tuple's index entry LP_DEAD without WAL): the
/// inserter aborted or crashed, or the deleter committed below `horizon`
/// (V7) with its commit record already flushed (`<= wal_flushed`; a
/// commit still only in WAL buffers could be lost in a crash, and the
/// tuple would be live again).
pub fn surely_dead(
    t: &HeapTupleHeader,
    horizon: Xid,
    running: &(impl XidRunningOracle + ?Sized),
    oracle: &(impl XidStatusOracle + ?Sized),
    wal_flushed: Lsn,
) -> Result<bool, PgError> {
    check_no_multixact(t)?;
    let mask = t.infomask;
    if !xmin_committed_hint(mask) {
        if xmin_invalid_hint(mask) {
            return Ok(true);
        }
        if running.is_running(t.xmin) {
            return Ok(false);
        }
        if did_commit(oracle, t.xmin)?.is_none() {
            return Ok(true); // aborted or crashed: nobody ever sees it
        }
    }
    if mask & HEAP_XMAX_INVALID != 0 || xmax_is_locked_only(mask) || t.xmax >= horizon {
        return Ok(false);
    }
    if mask & HEAP_XMAX_COMMITTED != 0 {
        return Ok(true); // the hint is only set once the commit is flushed
    }
    if running.is_running(t.xmax) {
        return Ok(false);
    }
    Ok(did_commit(oracle, t.xmax)?.is_some_and(|lsn| !lsn.is_valid() || lsn <= wal_flushed))
}

/// PostgreSQL's HeapTupleSatisfiesVacuum: the fate of tuple `t` for
/// VACUUM, with `horizon` the oldest xid any snapshot may still consider
/// running (`Transam::global_xmin`, taken once before the scan). `running`
/// must be the proc array, asked before the commit log (V1). The caller
/// need not have an xid; its own xmin, if it advertises one, is part of
/// the horizon like everyone else's.
pub fn satisfies_vacuum(
    t: &HeapTupleHeader,
    horizon: Xid,
    running: &(impl XidRunningOracle + ?Sized),
    oracle: &(impl XidStatusOracle + ?Sized),
) -> Result<VacuumState, PgError> {
    check_no_multixact(t)?;
    let mask = t.infomask;
    // Part 1: did the insert commit?
    if !xmin_committed_hint(mask) {
        if xmin_invalid_hint(mask) {
            return Ok(VacuumState::Dead);
        }
        if running.is_running(t.xmin) {
            // Inserted and deleted by the same running transaction: the
            // delete is what is in progress (PostgreSQL asks whether xmax
            // is the current transaction; a vacuum has none of its own).
            let deleted_by_inserter =
                mask & HEAP_XMAX_INVALID == 0 && !xmax_is_locked_only(mask) && t.xmax == t.xmin;
            return Ok(if deleted_by_inserter {
                VacuumState::DeleteInProgress
            } else {
                VacuumState::InsertInProgress
            });
        }
        if did_commit(oracle, t.xmin)?.is_none() {
            return Ok(VacuumState::Dead); // aborted or crashed
        }
    }

    // Part 2: the insert committed; was it deleted, and how long ago?
    if mask & HEAP_XMAX_INVALID != 0 || xmax_is_locked_only(mask) {
        return Ok(VacuumState::Live); // V3: a locker never deletes
    }
    if mask & HEAP_XMAX_COMMITTED == 0 {
        if running.is_running(t.xmax) {
            return Ok(VacuumState::DeleteInProgress);
        }
        if did_commit(oracle, t.xmax)?.is_none() {
            return Ok(VacuumState::Live); // V4: the deleter aborted
        }
    }
    Ok(if t.xmax < horizon {
        VacuumState::Dead
    } else {
        VacuumState::RecentlyDead
    })
}
