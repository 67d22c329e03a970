//! Transaction-block state: PostgreSQL's xact.c `TBlockState` machine, for
//! a server that has no storage yet (so a transaction is a span of time
//! with settings to roll back, not yet a set of changes).
//!
//! ```text
//!            start_command                 begin_block (BEGIN)
//!  Default ───────────────▶ Started ─────────────────────────▶ InProgress
//!     ▲                      │   ▲ │ begin_implicit_block          │   │
//!     │ commit_command /     │   │ ▼ (several statements           │   │ error
//!     │ abort_current        │  ImplicitInProgress  in one Query)  │   ▼
//!     └──────────────────────┴──────────────────────────── COMMIT/  Aborted
//!                                                          ROLLBACK ◀──┘
//! ```
//!
//! # Rules
//!
//! 1. Every statement runs inside a transaction: [`TransactionState::start_command`]
//!    opens one if none is open (state `Started`, a single-statement
//!    transaction that [`TransactionState::commit_command`] ends).
//! 2. Several statements in one simple-Query message form an *implicit*
//!    block: an error in any of them rolls back all of them.
//! 3. An error inside an explicit block (`BEGIN`) aborts the transaction at
//!    once (its settings are rolled back then) but keeps the block, state
//!    `Aborted`, until COMMIT or ROLLBACK; every other statement fails with
//!    `25P02`. COMMIT of an aborted block reports `ROLLBACK`.
//! 4. `conf::Settings::at_xact_start` is called when a transaction starts
//!    and `at_xact_end` exactly once when it commits or aborts.
//! 5. The transaction's start time (`now()`) is the statement start time of
//!    its first statement.
//! 6. Savepoints are subtransactions of an explicit block, each with a
//!    settings nesting level. An error inside one aborts only the innermost
//!    subtransaction (its settings revert at once); `ROLLBACK TO` reverts to
//!    the savepoint and leaves the failed state; `ROLLBACK` and `COMMIT`
//!    then end the whole transaction.

use pgerror::{PgError, PgResult, Severity, SqlState};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlockState {
    /// No transaction.
    #[default]
    Default,
    /// A single-statement transaction.
    Started,
    /// Several statements of one Query message, without BEGIN.
    ImplicitInProgress,
    /// Between BEGIN and COMMIT/ROLLBACK.
    InProgress,
    /// An explicit block whose transaction failed.
    Aborted,
}

#[derive(Debug, Default)]
pub struct TransactionState {
    block: BlockState,
    /// Start of the current transaction, as a timestamptz.
    xact_start: i64,
    /// Start of the current statement (the Query message's arrival).
    stmt_start: i64,
    /// Open savepoints, outermost first: (name, settings nesting level).
    savepoints: Vec<(String, u32)>,
    /// In `Aborted`: whether the top-level transaction's settings were
    /// already rolled back (no savepoint was open when the error came).
    top_aborted: bool,
    /// Set when the top-level transaction ended (true: committed), until
    /// the caller ends it in the storage engine too ([`Self::take_ended`]).
    ended: Option<bool>,
    /// Counts the ends of transactions, a failed block counting when the
    /// block ends (ROLLBACK), not at its error: what ties a portal to its
    /// transaction.
    ended_count: u64,
}

fn warning(code: SqlState, message: &str) -> PgError {
    PgError::notice(Severity::Warning, code, message)
}

fn no_transaction_warning() -> PgError {
    warning(
        SqlState::NO_ACTIVE_SQL_TRANSACTION,
        "there is no transaction in progress",
    )
}

impl TransactionState {
    /// The ReadyForQuery status byte: idle, in a block, or in a failed block.
    pub fn ready_status(&self) -> u8 {
        match self.block {
            BlockState::Default | BlockState::Started => b'I',
            BlockState::ImplicitInProgress | BlockState::InProgress => b'T',
            BlockState::Aborted => b'E',
        }
    }

    /// IsTransactionBlock: inside BEGIN ... COMMIT or an implicit block.
    pub fn in_transaction_block(&self) -> bool {
        !matches!(self.block, BlockState::Default | BlockState::Started)
    }

    /// Inside BEGIN ... COMMIT (in progress or failed), not an implicit
    /// block: where AND CHAIN is allowed.
    pub fn in_explicit_block(&self) -> bool {
        matches!(self.block, BlockState::InProgress | BlockState::Aborted)
    }

    /// Whether a savepoint is open (writes are refused there for now).
    pub fn has_savepoints(&self) -> bool {
        !self.savepoints.is_empty()
    }

    pub fn is_aborted(&self) -> bool {
        self.block == BlockState::Aborted
    }

    pub fn xact_start(&self) -> i64 {
        self.xact_start
    }

    pub fn stmt_start(&self) -> i64 {
        self.stmt_start
    }

    /// Records the arrival time of a client message (statement_timestamp()).
    pub fn set_statement_start(&mut self, ts: i64) {
        self.stmt_start = ts;
    }

    /// StartTransactionCommand: opens a transaction if none is open.
    pub fn start_command(&mut self, settings: &mut conf::Settings) {
        if self.block == BlockState::Default {
            self.block = BlockState::Started;
            self.xact_start = self.stmt_start;
            settings.at_xact_start();
        }
    }

    pub fn begin_implicit_block(&mut self) {
        if self.block == BlockState::Started {
            self.block = BlockState::ImplicitInProgress;
        }
    }

    pub fn end_implicit_block(&mut self) {
        if self.block == BlockState::ImplicitInProgress {
            self.block = BlockState::Started;
        }
    }

    /// CommitTransactionCommand: ends a single-statement transaction; inside
    /// a block, nothing happens until COMMIT.
    pub fn commit_command(&mut self, settings: &mut conf::Settings) {
        if self.block == BlockState::Started {
            self.finish(settings, true);
        }
    }

    /// AbortCurrentTransaction, after an error.
    pub fn abort_current(&mut self, settings: &mut conf::Settings) {
        match self.block {
            BlockState::Default | BlockState::Aborted => {}
            BlockState::Started | BlockState::ImplicitInProgress => self.finish(settings, false),
            BlockState::InProgress => {
                match self.savepoints.last() {
                    Some(&(_, level)) => {
                        settings.at_subxact_end(level, false);
                        self.top_aborted = false;
                    }
                    None => {
                        // The transaction ends now; the block stays until
                        // ROLLBACK (finish_aborted counts its end).
                        settings.at_xact_end(false);
                        self.top_aborted = true;
                        self.ended = Some(false);
                    }
                }
                self.block = BlockState::Aborted;
            }
        }
    }

    /// BEGIN / START TRANSACTION. Returns the warning to send, if any.
    pub fn begin_block(&mut self) -> Option<PgError> {
        match self.block {
            BlockState::Started | BlockState::ImplicitInProgress | BlockState::Default => {
                self.block = BlockState::InProgress;
                None
            }
            BlockState::InProgress | BlockState::Aborted => Some(warning(
                SqlState::ACTIVE_SQL_TRANSACTION,
                "there is already a transaction in progress",
            )),
        }
    }

    /// COMMIT / END: returns the command tag (`ROLLBACK` for a failed block)
    /// and the warning to send, if any.
    pub fn end_block(&mut self, settings: &mut conf::Settings) -> (&'static str, Option<PgError>) {
        match self.block {
            BlockState::InProgress => {
                self.finish(settings, true);
                ("COMMIT", None)
            }
            BlockState::Aborted => {
                self.finish_aborted(settings);
                ("ROLLBACK", None)
            }
            BlockState::Started | BlockState::ImplicitInProgress => {
                self.finish(settings, true);
                ("COMMIT", Some(no_transaction_warning()))
            }
            BlockState::Default => ("COMMIT", Some(no_transaction_warning())),
        }
    }

    /// ROLLBACK / ABORT: returns the warning to send, if any.
    pub fn user_abort_block(&mut self, settings: &mut conf::Settings) -> Option<PgError> {
        match self.block {
            BlockState::InProgress => {
                self.finish(settings, false);
                None
            }
            BlockState::Aborted => {
                self.finish_aborted(settings);
                None
            }
            BlockState::Started | BlockState::ImplicitInProgress => {
                self.finish(settings, false);
                Some(no_transaction_warning())
            }
            BlockState::Default => Some(no_transaction_warning()),
        }
    }

    /// SAVEPOINT name.
    pub fn define_savepoint(&mut self, settings: &mut conf::Settings, name: &str) -> PgResult<()> {
        self.require_explicit_block("SAVEPOINT")?;
        let level = settings.at_subxact_start();
        self.savepoints.push((name.to_string(), level));
        Ok(())
    }

    /// `RELEASE [SAVEPOINT] name`: ends it and every savepoint opened after it,
    /// keeping their settings.
    pub fn release_savepoint(&mut self, settings: &mut conf::Settings, name: &str) -> PgResult<()> {
        self.require_explicit_block("RELEASE SAVEPOINT")?;
        let index = self.find_savepoint(name)?;
        settings.at_subxact_end(self.savepoints[index].1, true);
        self.savepoints.truncate(index);
        Ok(())
    }

    /// `ROLLBACK TO [SAVEPOINT] name`: undoes everything since the savepoint,
    /// which stays open; a failed block becomes usable again.
    pub fn rollback_to_savepoint(
        &mut self,
        settings: &mut conf::Settings,
        name: &str,
    ) -> PgResult<()> {
        self.require_explicit_block("ROLLBACK TO SAVEPOINT")?;
        let index = self.find_savepoint(name)?;
        settings.at_subxact_end(self.savepoints[index].1, false);
        self.savepoints.truncate(index);
        let level = settings.at_subxact_start();
        self.savepoints.push((name.to_string(), level));
        self.block = BlockState::InProgress;
        Ok(())
    }

    fn require_explicit_block(&self, what: &str) -> PgResult<()> {
        match self.block {
            BlockState::InProgress | BlockState::Aborted => Ok(()),
            _ => Err(PgError::new(
                SqlState::NO_ACTIVE_SQL_TRANSACTION,
                format!("{what} can only be used in transaction blocks"),
            )),
        }
    }

    fn find_savepoint(&self, name: &str) -> PgResult<usize> {
        self.savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| {
                PgError::new(
                    SqlState(*b"3B001"),
                    format!("savepoint \"{name}\" does not exist"),
                )
            })
    }

    fn finish_aborted(&mut self, settings: &mut conf::Settings) {
        if self.top_aborted {
            // Ended at the error already; the block ends now.
            self.ended_count += 1;
        } else {
            settings.at_xact_end(false);
            self.set_ended(false);
        }
        self.savepoints.clear();
        self.block = BlockState::Default;
    }

    /// Whether the top-level transaction ended since the last call, and
    /// how (true: committed). The storage side of the end follows it.
    pub fn take_ended(&mut self) -> Option<bool> {
        self.ended.take()
    }

    /// The number of transactions ended so far; it changes when the
    /// current one commits or aborts, or its failed block ends.
    pub fn ended_count(&self) -> u64 {
        self.ended_count
    }

    fn set_ended(&mut self, commit: bool) {
        self.ended = Some(commit);
        self.ended_count += 1;
    }

    fn finish(&mut self, settings: &mut conf::Settings, commit: bool) {
        settings.at_xact_end(commit);
        self.set_ended(commit);
        self.savepoints.clear();
        self.block = BlockState::Default;
    }
}
