//! Child slots and the postmaster's signal board: PostgreSQL's pmsignal.c.
//!
//! The postmaster assigns every child it launches a [`ChildSlot`] before the
//! fork. The child marks its slot *active* once it has attached shared memory
//! and marks it *inactive* again just before a clean exit. A child that dies
//! while its slot is still active may have left shared memory inconsistent,
//! whatever its exit status, so the postmaster treats that as a crash
//! (BRIEF §4).
//!
//! The board also carries requests from children to the postmaster
//! ([`PmRequest`], set here and announced with SIGUSR1, because only the
//! postmaster forks) and the postmaster's reason for the SIGQUIT it sends
//! ([`QuitReason`]), which backends read in their SIGQUIT handler to choose
//! the message they send to their client.
//!
//! # Locking
//! Every field is an atomic written by one side and read by the other; no
//! locks. The postmaster only ever touches this region with single atomic
//! loads and stores, so a corrupt segment cannot hang it.
//!
//! # Invariants
//! 1. Slot states move Unused -> Assigned (postmaster, before fork) ->
//!    Active (child, after attach) -> Assigned (child, clean exit) ->
//!    Unused (postmaster, after reaping).
//! 2. Only the postmaster moves a slot out of or into Unused.

use crate::ProcKind;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    Unused = 0,
    Assigned = 1,
    Active = 2,
}

/// One launched child.
#[repr(C)]
pub struct ChildSlot {
    state: AtomicU32,
    pid: AtomicI32,
    kind: AtomicU32,
    _pad: u32,
}

const _: () = assert!(std::mem::size_of::<ChildSlot>() == 16);

impl ChildSlot {
    pub fn init(&self) {
        self.state
            .store(SlotState::Unused as u32, Ordering::Relaxed);
        self.pid.store(0, Ordering::Relaxed);
        self.kind.store(0, Ordering::Relaxed);
    }

    pub fn state(&self) -> SlotState {
        match self.state.load(Ordering::Acquire) {
            1 => SlotState::Assigned,
            2 => SlotState::Active,
            _ => SlotState::Unused,
        }
    }

    /// Postmaster: claims an unused slot for a child about to be forked.
    pub fn try_assign(&self, kind: ProcKind) -> bool {
        if self
            .state
            .compare_exchange(
                SlotState::Unused as u32,
                SlotState::Assigned as u32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.kind.store(kind as u32, Ordering::Release);
            self.pid.store(0, Ordering::Release);
            true
        } else {
            false
        }
    }

    /// Postmaster: records the child's pid after the fork.
    pub fn set_pid(&self, pid: i32) {
        self.pid.store(pid, Ordering::Release);
    }

    /// Child: shared memory is attached and in use from now on.
    pub fn mark_active(&self, pid: i32) {
        self.pid.store(pid, Ordering::Release);
        self.state
            .store(SlotState::Active as u32, Ordering::Release);
    }

    /// Child: about to exit cleanly, having left shared memory consistent.
    pub fn mark_inactive(&self) {
        self.state
            .store(SlotState::Assigned as u32, Ordering::Release);
    }

    /// Postmaster: the child was reaped. Returns whether it exited cleanly
    /// as far as the slot can tell (false means it died while active).
    pub fn release(&self) -> bool {
        let prev = self.state.swap(SlotState::Unused as u32, Ordering::AcqRel);
        self.pid.store(0, Ordering::Release);
        prev != SlotState::Active as u32
    }

    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::Acquire)
    }

    pub fn kind(&self) -> Option<ProcKind> {
        ProcKind::from_u32(self.kind.load(Ordering::Acquire))
    }
}

/// Why the postmaster sent SIGQUIT (PostgreSQL's QuitSignalReason).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuitReason {
    /// Nobody told us: someone else sent SIGQUIT.
    NotSent = 0,
    /// Another process crashed; the cluster is being reinitialised.
    Crash = 1,
    /// Immediate shutdown.
    Stop = 2,
}

/// Requests a child can make of the postmaster.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmRequest {
    /// The autovacuum launcher wants a worker started.
    StartAutovacWorker = 0,
    /// The startup process finished recovery (it also exits 0).
    RecoveryFinished = 1,
}

const NUM_PM_REQUESTS: usize = 2;

/// The postmaster's signal board: the head of the region.
#[repr(C)]
pub struct PmSignal {
    postmaster_pid: AtomicI32,
    quit_reason: AtomicU32,
    requests: [AtomicU32; NUM_PM_REQUESTS],
}

impl PmSignal {
    pub fn init(&self, postmaster_pid: i32) {
        self.postmaster_pid.store(postmaster_pid, Ordering::Relaxed);
        self.quit_reason
            .store(QuitReason::NotSent as u32, Ordering::Relaxed);
        for r in &self.requests {
            r.store(0, Ordering::Relaxed);
        }
    }

    pub fn postmaster_pid(&self) -> i32 {
        self.postmaster_pid.load(Ordering::Acquire)
    }

    /// Postmaster: set before sending SIGQUIT to children.
    pub fn set_quit_reason(&self, reason: QuitReason) {
        self.quit_reason.store(reason as u32, Ordering::Release);
    }

    /// Async-signal-safe: a single atomic load.
    pub fn quit_reason(&self) -> QuitReason {
        match self.quit_reason.load(Ordering::Acquire) {
            1 => QuitReason::Crash,
            2 => QuitReason::Stop,
            _ => QuitReason::NotSent,
        }
    }

    /// Child: raises a request flag and signals the postmaster (SIGUSR1).
    pub fn send_request(&self, req: PmRequest) {
        self.requests[req as usize].store(1, Ordering::Release);
        let pid = self.postmaster_pid();
        if pid > 0 {
            // SAFETY: a signal to the postmaster; no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGUSR1);
            }
        }
    }

    /// Postmaster: tests and clears a request flag.
    pub fn take_request(&self, req: PmRequest) -> bool {
        self.requests[req as usize].swap(0, Ordering::AcqRel) != 0
    }
}
