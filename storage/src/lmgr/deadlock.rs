//! Deadlock detection (PostgreSQL's `deadlock.c`, without its queue
//! rearrangement).
//!
//! A waiter that has waited `deadlock_timeout` takes every partition lock,
//! in index order, and looks for a cycle through itself in the waits-for
//! graph. The graph's nodes are procs; a queued proc P waiting for mode m
//! on lock L has an edge to:
//!
//! * (hard) every other proc holding on L a mode that conflicts with m;
//! * (soft) every proc queued ahead of P on L for a mode that conflicts
//!   with m, since rule Q3 grants nobody past a conflicting waiter.
//!
//! ```text
//!   P1 ──waits for ShareLock on transaction 7──► P2 (holds ExclusiveLock)
//!    ▲                                            │
//!    └──── waits for ShareLock on transaction 9 ──┘ (P1 holds ExclusiveLock)
//! ```
//!
//! If a cycle goes through the checker, the checker is the victim: it
//! leaves its queue (granting whoever that unblocks) and fails with
//! `40P01 deadlock detected`, the cycle in the DETAIL as PostgreSQL writes
//! it. Its other locks are released by its caller's abort, which lets the
//! rest of the cycle proceed. Only one process can be checking at a time
//! (all partition locks), and the victim's leaving breaks the cycle before
//! the next check, so each deadlock costs exactly one process its
//! transaction.
//!
//! PostgreSQL also resolves *soft* cycles (those needing a soft edge) by
//! reordering wait queues instead of aborting anyone. We do not: such a
//! cycle is reported as a deadlock too. It needs three or more processes
//! queued on one lock in a particular order, and the victim may retry.
//!
//! Fast-path locks need no edges: the only modes that conflict with a weak
//! fast-path mode are strong ones, and a strong request transfers every
//! fast-path lock of its relation into the table before it queues.
//!
//! # Locking
//!
//! All sixteen partition locks, exclusive, in index order; nothing else.
//! Waiters' fields are protected by the partition lock of the lock they
//! wait on, so the graph read is consistent. The checker reads other
//! procs' pids from the proc array (atomics) for the message.

use super::deadlock_error;
use super::shared::{wait_mode_of, LockTable, GRANTED, NONE, NOT_WAITING, WAITING};
use super::tag::{LockMode, LockTag};
use pgerror::PgError;
use shmem_layout::procarray::Proc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// What a deadlock check found.
pub(crate) enum DeadlockCheck {
    /// The request was granted before the check got the locks.
    Granted,
    NoDeadlock,
    /// A cycle through the checker: it has left its queue.
    Deadlock {
        error: PgError,
        pl_freed: bool,
    },
}

/// One edge of a cycle: `waiter` waits for `mode` on `tag`, blocked by
/// `blocker`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub waiter: u32,
    pub mode: LockMode,
    pub tag: Option<LockTag>,
    pub blocker: u32,
}

/// Runs the check for queued proc `me` (PostgreSQL's `CheckDeadLock`).
pub(crate) fn check_for_deadlock(table: &LockTable<'_>, procs: &[Proc], me: u32) -> DeadlockCheck {
    let st = &table.procs[me as usize];
    let mut wakes = Vec::new();
    let outcome = {
        let _all = table.lock_all_partitions();
        if st.wait_status.load(SeqCst) == GRANTED {
            return DeadlockCheck::Granted;
        }
        match find_cycle(table, me) {
            None => DeadlockCheck::NoDeadlock,
            Some(cycle) => {
                let detail = cycle
                    .iter()
                    .map(|e| describe(e, procs))
                    .collect::<Vec<_>>()
                    .join("\n");
                let lock = st.wait_lock.load(Relaxed);
                let pl = st.wait_proclock.load(Relaxed);
                table.dequeue(lock, me);
                st.wait_status.store(NOT_WAITING, SeqCst);
                table.grant_waiters(lock, &mut wakes);
                DeadlockCheck::Deadlock {
                    error: deadlock_error(detail),
                    pl_freed: table.cleanup(lock, pl),
                }
            }
        }
    };
    for p in wakes {
        table.wake(p);
    }
    outcome
}

/// "Process 123 waits for ShareLock on transaction 456; blocked by process 789."
fn describe(e: &Edge, procs: &[Proc]) -> String {
    let tag = e
        .tag
        .map(|t| t.to_string())
        .unwrap_or_else(|| "an unknown object".into());
    format!(
        "Process {} waits for {} on {}; blocked by process {}.",
        procs[e.waiter as usize].pid(),
        e.mode,
        tag,
        procs[e.blocker as usize].pid()
    )
}

/// The procs `p` waits for, with what it waits for; empty if it is not
/// queued. Caller holds every partition lock.
fn out_edges(table: &LockTable<'_>, p: u32) -> Vec<Edge> {
    let st = &table.procs[p as usize];
    let lock = st.wait_lock.load(Relaxed);
    if st.wait_status.load(SeqCst) != WAITING || lock == NONE {
        return Vec::new();
    }
    let mode = wait_mode_of(st);
    let tag = LockTag::unpack(table.entry(lock).tag());
    let mut blockers = table.holders_conflicting(lock, p, mode.conflicts());
    for w in table.waiters_ahead(lock, p, mode.conflicts()) {
        if !blockers.contains(&w) {
            blockers.push(w);
        }
    }
    blockers
        .into_iter()
        .map(|blocker| Edge {
            waiter: p,
            mode,
            tag,
            blocker,
        })
        .collect()
}

/// A cycle of the waits-for graph through `start`, as its edges from
/// `start` round to `start`; `None` if there is none. Depth-first, each
/// proc explored once: a proc fully explored without reaching `start`
/// cannot reach it later either.
pub(crate) fn find_cycle(table: &LockTable<'_>, start: u32) -> Option<Vec<Edge>> {
    let mut visited = vec![false; table.num_procs()];
    visited[start as usize] = true;
    // Each frame: a node's out-edges and the index of the next to follow.
    let mut stack: Vec<(Vec<Edge>, usize)> = vec![(out_edges(table, start), 0)];
    while let Some((edges, next)) = stack.last_mut() {
        let Some(edge) = edges.get(*next).cloned() else {
            stack.pop();
            continue;
        };
        *next += 1;
        if edge.blocker == start {
            let cycle: Vec<Edge> = stack
                .iter()
                .map(|(edges, next)| edges[*next - 1].clone())
                .collect();
            debug_assert_eq!(cycle.last(), Some(&edge));
            return Some(cycle);
        }
        if !visited[edge.blocker as usize] {
            visited[edge.blocker as usize] = true;
            stack.push((out_edges(table, edge.blocker), 0));
        }
    }
    None
}
