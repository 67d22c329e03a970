//! Session-level behaviour: transactional SET, RESET ALL, and the
//! ParameterStatus reports a backend sends.
//!
//! Runs in backends only. The postmaster and auxiliary processes never SET.
//!
//! # The stack (PostgreSQL's GucStack)
//!
//! Every SQL statement runs inside a transaction, so every session SET is
//! made at a nesting level >= 1 (1 = the top-level transaction, +1 per
//! savepoint). The first change of a setting at a level pushes a
//! [`StackEntry`] holding the value to restore ("prior"). Rules, checked by
//! the tests in `tests.rs` against PostgreSQL 15's behaviour:
//!
//! 1. Abort (or ROLLBACK TO a savepoint) restores the prior value.
//! 2. Commit of the top level keeps a SET value and restores a SET LOCAL one;
//!    after SET then SET LOCAL at one level, commit restores the SET value
//!    ("masked" by the LOCAL).
//! 3. Releasing a savepoint merges its entry into the enclosing level's: a
//!    SET stays a SET, a LOCAL stays local to the enclosing transaction.
//! 4. Values from non-session sources (a reload of postgresql.toml while a
//!    transaction is open) are not transactional: they replace the stacked
//!    prior values whose source has no higher priority, so that a rollback
//!    does not resurrect an obsolete file value.
//! 5. `transaction_isolation`, `transaction_read_only` and
//!    `transaction_deferrable` start every transaction at their
//!    `default_transaction_*` values and return to them at its end.
//!
//! # Reporting
//!
//! `take_report_changes` compares the REPORT settings' SHOW text with what
//! was last reported, so a value that changes and changes back within one
//! statement is not re-sent, as in PostgreSQL 14+.

use crate::table::{self, REPORT, TABLE};
use crate::{Context, Settings, Slot, Source, Value, VarId};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum StackState {
    /// A SET was made at this level.
    Set,
    /// Only SET LOCAL was made at this level.
    Local,
    /// SET, then SET LOCAL: `masked` holds the SET value.
    SetLocal,
}

#[derive(Clone, Debug)]
pub(crate) struct StackEntry {
    pub level: u32,
    pub state: StackState,
    pub prior: Slot,
    pub masked: Option<Slot>,
}

const TRANSACTION_SETTINGS: [(&str, &str); 3] = [
    ("transaction_isolation", "default_transaction_isolation"),
    ("transaction_read_only", "default_transaction_read_only"),
    ("transaction_deferrable", "default_transaction_deferrable"),
];

impl Settings {
    /// A session SET or SET LOCAL of `id` to `slot`.
    pub(crate) fn assign_session(&mut self, id: VarId, slot: Slot, local: bool) {
        let level = self.nest_level.max(1);
        self.nest_level = level;
        self.maybe_stacked = true;
        let var = self.var_mut(id);
        match var.stack.last_mut() {
            Some(top) if top.level >= level => match (local, top.state) {
                (false, _) => {
                    top.state = StackState::Set;
                    top.masked = None;
                }
                (true, StackState::Set) => {
                    top.masked = Some(var.current.clone());
                    top.state = StackState::SetLocal;
                }
                (true, _) => {}
            },
            _ => {
                let state = if local {
                    StackState::Local
                } else {
                    StackState::Set
                };
                let prior = var.current.clone();
                var.stack.push(StackEntry {
                    level,
                    state,
                    prior,
                    masked: None,
                });
            }
        }
        var.current = slot;
    }

    /// A value from a non-session source (rule 4): it becomes the reset
    /// value and the current value unless a higher-priority source set them.
    pub(crate) fn assign_default(&mut self, id: VarId, slot: Slot) {
        let p = slot.source.priority();
        let var = self.var_mut(id);
        if p >= var.reset.source.priority() {
            var.reset = slot.clone();
        }
        for entry in &mut var.stack {
            if p >= entry.prior.source.priority() {
                entry.prior = slot.clone();
            }
        }
        if p >= var.current.source.priority() {
            var.current = slot;
        }
    }

    /// Start of a top-level transaction (rule 5).
    pub fn at_xact_start(&mut self) {
        self.nest_level = 1;
        self.reset_transaction_settings();
    }

    /// Start of a subtransaction (SAVEPOINT); returns the level to pass to
    /// [`Settings::at_subxact_end`].
    pub fn at_subxact_start(&mut self) -> u32 {
        self.nest_level = self.nest_level.max(1) + 1;
        self.nest_level
    }

    /// End of the subtransaction started at `level`: RELEASE (`commit`) or
    /// ROLLBACK TO.
    pub fn at_subxact_end(&mut self, level: u32, commit: bool) {
        self.pop_to(level, commit);
    }

    /// End of the top-level transaction: SET LOCAL values revert, and on
    /// abort every SET made in the transaction reverts too.
    pub fn at_xact_end(&mut self, commit: bool) {
        self.pop_to(1, commit);
        self.reset_transaction_settings();
    }

    /// Ends every nesting level from the deepest down to `level` (rules
    /// 1-3), as if each subtransaction had ended in turn.
    fn pop_to(&mut self, level: u32, commit: bool) {
        let level = level.max(1);
        if !self.maybe_stacked {
            // No SET since every stack was last seen empty: nothing to pop.
            self.nest_level = level - 1;
            return;
        }
        let deepest = self
            .vars
            .iter()
            .chain(self.placeholders.iter().map(|p| &p.var))
            .filter_map(|v| v.stack.last().map(|e| e.level))
            .max()
            .unwrap_or(0);
        for l in (level..=deepest).rev() {
            for var in &mut self.vars {
                pop_level(&mut var.current, &mut var.stack, l, commit);
            }
            for p in &mut self.placeholders {
                pop_level(&mut p.var.current, &mut p.var.stack, l, commit);
            }
        }
        self.nest_level = level - 1;
        if level == 1 {
            self.maybe_stacked = self
                .vars
                .iter()
                .chain(self.placeholders.iter().map(|p| &p.var))
                .any(|v| !v.stack.is_empty());
        }
    }

    fn reset_transaction_settings(&mut self) {
        // Runs at every transaction start and end: the table positions are
        // looked up once per process.
        static IDS: std::sync::OnceLock<[(usize, usize); 3]> = std::sync::OnceLock::new();
        let ids = IDS.get_or_init(|| {
            TRANSACTION_SETTINGS.map(|(name, default_name)| {
                (
                    table::find(name).expect("in the table"),
                    table::find(default_name).expect("in the table"),
                )
            })
        });
        for &(id, default_id) in ids {
            let from = &self.vars[default_id].current.value;
            let var = &self.vars[id];
            let settled = var.current.value == *from
                && var.current.source == Source::Default
                && var.reset == var.current
                && var.stack.is_empty();
            if settled {
                continue;
            }
            let slot = Slot {
                value: from.clone(),
                source: Source::Default,
            };
            let var = &mut self.vars[id];
            var.current = slot.clone();
            var.reset = slot;
            var.stack.clear();
        }
    }

    /// RESET ALL: every session-settable setting that a session changed goes
    /// back to its reset value, transactionally, except the ones PostgreSQL
    /// leaves alone (transaction_*, session_authorization, role, seed).
    pub fn reset_all(&mut self) {
        let mut ids: Vec<VarId> = TABLE
            .iter()
            .enumerate()
            .filter(|(_, def)| matches!(def.context, Context::Session | Context::Superuser))
            .filter(|(_, def)| !def.has(table::NO_RESET_ALL))
            .map(|(i, _)| VarId::Table(i))
            .collect();
        ids.extend((0..self.placeholders.len()).map(VarId::Custom));
        for id in ids {
            let var = self.var(id);
            if var.current.source == Source::Session {
                let slot = var.reset.clone();
                self.assign_session(id, slot, false);
            }
        }
    }

    /// Every REPORT setting with its value, in the order PostgreSQL 15 sends
    /// ParameterStatus at connection start.
    pub fn reported(&self) -> Vec<(&'static str, String)> {
        TABLE
            .iter()
            .enumerate()
            .filter(|(_, def)| def.has(REPORT))
            .map(|(i, def)| (def.name, self.shown(VarId::Table(i))))
            .collect()
    }

    /// [`Settings::reported`], remembering the values as sent: call once at
    /// connection start, after the startup packet's settings are applied.
    pub fn begin_reporting(&mut self) -> Vec<(&'static str, String)> {
        let all = self.reported();
        self.last_reported = Some(all.iter().map(|(_, v)| v.clone()).collect());
        self.last_reported_values = Some(self.reported_values().cloned().collect());
        all
    }

    /// The current values of the REPORT settings, in table order. Their
    /// shown text depends on nothing else.
    fn reported_values(&self) -> impl Iterator<Item = &Value> {
        static IDS: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
        let ids = IDS.get_or_init(|| (0..TABLE.len()).filter(|&i| TABLE[i].has(REPORT)).collect());
        ids.iter().map(|&i| &self.vars[i].current.value)
    }

    /// REPORT settings whose value differs from what was last reported, to
    /// send as ParameterStatus before ReadyForQuery. Before
    /// [`Settings::begin_reporting`] nothing has been reported, so
    /// everything is returned.
    pub fn take_report_changes(&mut self) -> Vec<(&'static str, String)> {
        if let Some(last) = &self.last_reported_values {
            if self.reported_values().eq(last.iter()) {
                return Vec::new();
            }
        }
        self.last_reported_values = Some(self.reported_values().cloned().collect());
        let now = self.reported();
        let changed = match &self.last_reported {
            None => now.clone(),
            Some(last) => now
                .iter()
                .zip(last)
                .filter(|((_, v), old)| v != *old)
                .map(|(p, _)| p.clone())
                .collect(),
        };
        self.last_reported = Some(now.into_iter().map(|(_, v)| v).collect());
        changed
    }
}

/// Ends nesting level `level` for one setting, whose deeper levels have
/// already ended.
fn pop_level(current: &mut Slot, stack: &mut Vec<StackEntry>, level: u32, commit: bool) {
    let Some(entry) = stack.last().filter(|e| e.level >= level).cloned() else {
        return;
    };
    stack.pop();
    let restore = if !commit {
        Some(entry.prior)
    } else if level == 1 {
        match entry.state {
            StackState::Set => None,
            StackState::Local => Some(entry.prior),
            StackState::SetLocal => entry.masked,
        }
    } else {
        match stack.last_mut().filter(|prev| prev.level == level - 1) {
            // Nothing was saved at the enclosing level: this entry becomes
            // that level's.
            None => stack.push(StackEntry {
                level: level - 1,
                ..entry
            }),
            Some(prev) => match entry.state {
                StackState::Set => {
                    prev.state = StackState::Set;
                    prev.masked = None;
                }
                StackState::Local if prev.state == StackState::Set => {
                    prev.masked = Some(entry.prior);
                    prev.state = StackState::SetLocal;
                }
                StackState::Local => {}
                StackState::SetLocal => {
                    prev.masked = entry.masked;
                    prev.state = StackState::SetLocal;
                }
            },
        }
        None
    };
    if let Some(slot) = restore {
        *current = slot;
    }
}
