//! What UPDATE and DELETE do when the row version they are about to change
//! is being, or has been, changed by someone else (PostgreSQL's
//! `ExecUpdate`/`ExecDelete` handling of `table_tuple_update`'s result, and
//! the EvalPlanQual re-check of read committed), as one decision function
//! the executor applies.
//!
//! ```text
//!  scan (snapshot) finds version V visible and matching WHERE
//!    │
//!    ▼
//!  lock V's buffer exclusively; satisfies_update(V) ──► decide_write
//!    Proceed ─────────────► change V (still under the buffer lock)
//!    WaitFor(x) ──────────► unlock; wait_for_xid(x); lock; satisfies_update(V) again
//!    Skip ────────────────► leave the row (deleted, or already changed by this command)
//!    FollowUpdate{ctid} ──► read committed only: unlock; fetch the version at ctid;
//!                           if its xmin != V's xmax: the row is gone, skip it;
//!                           else V := that version, satisfies_update(V) again, and once
//!                           the answer is Proceed re-evaluate WHERE on it:
//!                           change it if it still matches, skip the row if not
//!    Err(40001) ──────────► repeatable read: the transaction fails
//! ```
//!
//! # Rules
//!
//! 1. (C1) A running updater is always waited for, at every isolation
//!    level; only its outcome decides. If it aborted the row is ours
//!    (Proceed).
//! 2. (C2) Repeatable read (and serializable) never acts on a version its
//!    snapshot did not see: a committed concurrent update or delete is
//!    `40001 could not serialize access due to concurrent update` (or
//!    `... delete`), PostgreSQL's exact texts.
//! 3. (C3) Read committed follows the update chain to the newest version and
//!    re-checks it (EvalPlanQual): the WHERE clause is evaluated again on the
//!    newest committed version, not on the one the statement's snapshot saw;
//!    the rest of the statement keeps its snapshot. A committed delete just
//!    drops the row from the statement.
//! 4. (C4) A version changed by the current command already is skipped; one
//!    changed by a later command of the current transaction (a trigger) is
//!    PostgreSQL's `27000` error.
//! 5. (C5) The chain link check: a version is the successor of the one whose
//!    xmax was X only if its xmin is X ([`is_next_version`]); otherwise the
//!    slot was reused and the row is gone.
//!
//! # Locking
//!
//! None here. The caller holds the exclusive content lock of the version's
//! buffer from `satisfies_update` until it changes the tuple, and releases
//! it before waiting (xact_wait.rs) or following the chain.
//!
//! # Crash safety
//!
//! Pure decisions; nothing is written.

use super::snapshot::IsolationLevel;
use super::visibility::UpdateResult;
use crate::heap::tuple::{HeapTupleHeader, ItemPointer};
use crate::types::Xid;
use pgerror::{PgError, SqlState};

/// PostgreSQL's ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION.
const TRIGGERED_DATA_CHANGE_VIOLATION: SqlState = SqlState::TRIGGERED_DATA_CHANGE_VIOLATION;

/// The statement changing the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Update,
    Delete,
}

/// What the executor does next with the version it looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAction {
    /// Update or delete this version now.
    Proceed,
    /// Release the buffer lock, [`super::Transam::wait_for_xid`] this xid,
    /// then call `satisfies_update` on the same version again.
    WaitFor(Xid),
    /// Leave this row out of the statement.
    Skip,
    /// Read committed: the row was updated by a committed transaction.
    /// Fetch the version at `ctid`; unless [`is_next_version`]`(prior_xmax,
    /// ..)` the row is gone (skip it); otherwise decide again on that
    /// version and, once it is [`WriteAction::Proceed`], re-evaluate the
    /// WHERE clause on it (rule C3).
    FollowUpdate { ctid: ItemPointer, prior_xmax: Xid },
}

/// The decision for one `satisfies_update` result (rules C1-C4).
/// `my_xid` and `my_cid` are the current transaction's xid and command id,
/// as passed to `satisfies_update`.
pub fn decide_write(
    result: UpdateResult,
    kind: WriteKind,
    isolation: IsolationLevel,
    my_xid: Xid,
    my_cid: u32,
) -> Result<WriteAction, PgError> {
    let transaction_snapshot = isolation.uses_transaction_snapshot();
    match result {
        UpdateResult::Ok => Ok(WriteAction::Proceed),
        UpdateResult::Invisible => Err(PgError::internal(match kind {
            WriteKind::Update => "attempted to update invisible tuple",
            WriteKind::Delete => "attempted to delete invisible tuple",
        })),
        UpdateResult::SelfUpdated { cmax } if cmax == my_cid => Ok(WriteAction::Skip),
        UpdateResult::SelfUpdated { .. } => Err(triggered_change(kind)),
        UpdateResult::BeingUpdated { xmax, .. } if my_xid.is_valid() && xmax == my_xid => {
            // Only a row lock of ours: we may go on.
            Ok(WriteAction::Proceed)
        }
        UpdateResult::BeingUpdated { xmax, .. } => Ok(WriteAction::WaitFor(xmax)),
        UpdateResult::Updated { .. } if transaction_snapshot => Err(serialization_failure(
            "could not serialize access due to concurrent update",
        )),
        UpdateResult::Updated { xmax, ctid } => Ok(WriteAction::FollowUpdate {
            ctid,
            prior_xmax: xmax,
        }),
        UpdateResult::Deleted { .. } if transaction_snapshot => Err(serialization_failure(
            "could not serialize access due to concurrent delete",
        )),
        UpdateResult::Deleted { .. } => Ok(WriteAction::Skip),
    }
}

/// Whether `next` is the successor of a version whose xmax was `prior_xmax`
/// (rule C5; PostgreSQL compares the new version's xmin with the prior xmax
/// at every step of an update chain).
pub fn is_next_version(prior_xmax: Xid, next: &HeapTupleHeader) -> bool {
    prior_xmax.is_valid() && next.xmin == prior_xmax
}

fn serialization_failure(message: &str) -> PgError {
    PgError::new(SqlState::SERIALIZATION_FAILURE, message)
}

fn triggered_change(kind: WriteKind) -> PgError {
    let what = match kind {
        WriteKind::Update => "updated",
        WriteKind::Delete => "deleted",
    };
    PgError::new(
        TRIGGERED_DATA_CHANGE_VIOLATION,
        format!(
            "tuple to be {what} was already modified by an operation triggered by the current command"
        ),
    )
    .with_hint(
        "Consider using an AFTER trigger instead of a BEFORE trigger to propagate changes to other rows.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::OffsetNumber;
    use crate::types::BlockNumber;

    const ME: Xid = Xid(50);
    const CID: u32 = 4;
    const RC: IsolationLevel = IsolationLevel::ReadCommitted;
    const RR: IsolationLevel = IsolationLevel::RepeatableRead;

    fn tid(block: u32, offset: u16) -> ItemPointer {
        ItemPointer::new(BlockNumber(block), OffsetNumber(offset))
    }

    fn decide(
        result: UpdateResult,
        kind: WriteKind,
        iso: IsolationLevel,
    ) -> Result<WriteAction, PgError> {
        decide_write(result, kind, iso, ME, CID)
    }

    #[test]
    fn a_live_row_is_written_at_every_level() {
        for iso in [
            RC,
            RR,
            IsolationLevel::Serializable,
            IsolationLevel::ReadUncommitted,
        ] {
            assert_eq!(
                decide(UpdateResult::Ok, WriteKind::Update, iso),
                Ok(WriteAction::Proceed)
            );
        }
    }

    #[test]
    fn a_running_updater_is_waited_for_at_every_level_but_our_own_lock_is_not() {
        let other = UpdateResult::BeingUpdated {
            xmax: Xid(40),
            lock_only: false,
        };
        for iso in [RC, RR] {
            assert_eq!(
                decide(other, WriteKind::Update, iso),
                Ok(WriteAction::WaitFor(Xid(40)))
            );
            assert_eq!(
                decide(other, WriteKind::Delete, iso),
                Ok(WriteAction::WaitFor(Xid(40)))
            );
        }
        let mine = UpdateResult::BeingUpdated {
            xmax: ME,
            lock_only: true,
        };
        assert_eq!(
            decide(mine, WriteKind::Update, RR),
            Ok(WriteAction::Proceed)
        );
    }

    #[test]
    fn read_committed_follows_an_update_and_skips_a_delete() {
        let updated = UpdateResult::Updated {
            xmax: Xid(40),
            ctid: tid(3, 7),
        };
        assert_eq!(
            decide(updated, WriteKind::Update, RC),
            Ok(WriteAction::FollowUpdate {
                ctid: tid(3, 7),
                prior_xmax: Xid(40)
            })
        );
        assert_eq!(
            decide(updated, WriteKind::Delete, RC),
            Ok(WriteAction::FollowUpdate {
                ctid: tid(3, 7),
                prior_xmax: Xid(40)
            })
        );
        let deleted = UpdateResult::Deleted { xmax: Xid(40) };
        assert_eq!(
            decide(deleted, WriteKind::Update, RC),
            Ok(WriteAction::Skip)
        );
        assert_eq!(
            decide(deleted, WriteKind::Delete, RC),
            Ok(WriteAction::Skip)
        );
    }

    #[test]
    fn repeatable_read_fails_with_postgres_serialization_errors() {
        let updated = UpdateResult::Updated {
            xmax: Xid(40),
            ctid: tid(3, 7),
        };
        for kind in [WriteKind::Update, WriteKind::Delete] {
            for iso in [RR, IsolationLevel::Serializable] {
                let e = decide(updated, kind, iso).unwrap_err();
                assert_eq!(e.code.as_str(), "40001");
                assert_eq!(
                    e.message,
                    "could not serialize access due to concurrent update"
                );
                let e = decide(UpdateResult::Deleted { xmax: Xid(40) }, kind, iso).unwrap_err();
                assert_eq!(e.code.as_str(), "40001");
                assert_eq!(
                    e.message,
                    "could not serialize access due to concurrent delete"
                );
            }
        }
    }

    #[test]
    fn own_changes_skip_in_this_command_and_fail_from_a_later_one() {
        let same = UpdateResult::SelfUpdated { cmax: CID };
        assert_eq!(decide(same, WriteKind::Update, RC), Ok(WriteAction::Skip));
        let later = UpdateResult::SelfUpdated { cmax: CID + 1 };
        let e = decide(later, WriteKind::Delete, RR).unwrap_err();
        assert_eq!(e.code.as_str(), "27000");
        assert_eq!(
            e.message,
            "tuple to be deleted was already modified by an operation triggered by the current command"
        );
        assert!(e.hint.is_some());
        let e = decide(UpdateResult::Invisible, WriteKind::Update, RC).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("XX000", "attempted to update invisible tuple")
        );
    }

    #[test]
    fn the_chain_link_is_checked_by_xmin() {
        let mut next = HeapTupleHeader {
            xmin: Xid(40),
            xmax: Xid::INVALID,
            cid: 0,
            ctid: tid(3, 7),
            infomask2: 0,
            infomask: 0,
            hoff: 32,
        };
        assert!(is_next_version(Xid(40), &next));
        next.xmin = Xid(41);
        assert!(
            !is_next_version(Xid(40), &next),
            "slot reused by another row"
        );
        assert!(!is_next_version(Xid::INVALID, &next));
    }
}
