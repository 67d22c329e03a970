//! Asking for a checkpoint and waiting for it (PostgreSQL's
//! `RequestCheckpoint`), and the checkpointer's side of the protocol (rule
//! F3 in `mod.rs`).
//!
//! ```text
//!  requester                                  checkpointer
//!  ─────────                                  ────────────
//!  ckpt_lck: flags |= F | REQUESTED,
//!            remember started=s, failed=f
//!  SIGINT ───────────────────────────────────► wakes; flags != 0
//!                                              ckpt_lck: take flags, started += 1
//!  wait until started != s  (now s')           ... the checkpoint ...
//!                                              ckpt_lck: failed += 1 if it failed,
//!  wait until done - s' >= 0  ◄─────────────── done = started
//!  failed != f ? ERROR "checkpoint request failed"
//! ```
//!
//! Runs in any process but the checkpointer (a backend's `CHECKPOINT`, a
//! backend nudging for a WAL-size checkpoint); the checkpointer runs
//! [`CheckpointerQueue::start_checkpoint`] and
//! [`CheckpointerQueue::finish_checkpoint`] around each checkpoint, timed
//! or requested, so that every waiter is released.
//!
//! # Locking
//!
//! `ckpt_lck` around each read or change of the counters and flags, a few
//! loads and stores; the waits poll with short sleeps holding nothing and
//! call the requester's interrupt check between naps, so a cancel works.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use pgerror::PgError;
use shmem_layout::Shmem;

use crate::recovery::CheckpointFlags;

use super::CheckpointerQueue;

/// How long a waiting requester keeps trying to signal a checkpointer that
/// is not running yet (PostgreSQL's `MAX_SIGNAL_TRIES` × 100 ms).
pub const MAX_SIGNAL_WAIT: Duration = Duration::from_secs(60);

/// PostgreSQL 15's message when no checkpointer can be signalled.
pub const CHECKPOINTER_NOT_RUNNING: &str =
    "could not signal for checkpoint: checkpointer is not running";

/// Pause between two signal attempts.
const SIGNAL_RETRY: Duration = Duration::from_millis(100);
/// Pause between two looks at the counters while waiting.
const WAIT_POLL: Duration = Duration::from_millis(10);

/// Asks the checkpointer for a checkpoint with `flags`
/// ([`CheckpointFlags::COMMAND`] for `CHECKPOINT`; `CAUSE_XLOG` alone to
/// nudge it about the WAL volume) and, with [`CheckpointFlags::WAIT`],
/// waits until a checkpoint that started after this call has completed.
/// `interrupts` is called between naps; its error (a cancel) ends the wait.
///
/// Errors (SQLSTATE XX000, as PostgreSQL's `elog(ERROR)`): `could not
/// signal for checkpoint: checkpointer is not running` (waiting, after
/// [`MAX_SIGNAL_WAIT`]); `checkpoint request failed` with the hint
/// `Consult recent messages in the server log for details.` when the
/// checkpoint waited for failed. Without WAIT, a checkpointer that cannot be
/// signalled is only logged: it will see the flags when it runs.
pub fn request_checkpoint(
    shmem: &Shmem,
    flags: CheckpointFlags,
    interrupts: impl FnMut() -> Result<(), PgError>,
) -> Result<(), PgError> {
    crate::shmem::checkpointer_queue(shmem).request(flags, MAX_SIGNAL_WAIT, interrupts)
}

impl CheckpointerQueue<'_> {
    /// [`request_checkpoint`] with the signal-retry bound as a parameter.
    pub fn request(
        &self,
        flags: CheckpointFlags,
        signal_wait: Duration,
        mut interrupts: impl FnMut() -> Result<(), PgError>,
    ) -> Result<(), PgError> {
        let wait = flags.contains(CheckpointFlags::WAIT);
        let (old_started, old_failed) = {
            let s = self.shared;
            let _l = s.ckpt_lck.acquire();
            let taken = s.ckpt_flags.load(Relaxed);
            s.ckpt_flags
                .store(taken | (flags | CheckpointFlags::REQUESTED).0, Relaxed);
            (s.ckpt_started.load(Relaxed), s.ckpt_failed.load(Relaxed))
        };

        let deadline = Instant::now() + signal_wait;
        loop {
            let pid = self.checkpointer_pid();
            let failure = if pid == 0 {
                CHECKPOINTER_NOT_RUNNING.to_string()
            } else {
                // SAFETY: sending a signal has no memory effect here.
                match unsafe { libc::kill(pid, libc::SIGINT) } {
                    0 => break,
                    _ => format!(
                        "could not signal for checkpoint: {}",
                        std::io::Error::last_os_error()
                    ),
                }
            };
            if !wait || Instant::now() >= deadline {
                if wait {
                    return Err(PgError::internal(failure));
                }
                log::info!("{failure}");
                return Ok(());
            }
            interrupts()?;
            std::thread::sleep(SIGNAL_RETRY);
        }
        if !wait {
            return Ok(());
        }

        // A checkpoint that started after our flags were set ...
        let new_started = loop {
            let started = {
                let _l = self.shared.ckpt_lck.acquire();
                self.shared.ckpt_started.load(Relaxed)
            };
            if started != old_started {
                break started;
            }
            interrupts()?;
            std::thread::sleep(WAIT_POLL);
        };
        // ... and its end.
        let new_failed = loop {
            let (done, failed) = {
                let _l = self.shared.ckpt_lck.acquire();
                (
                    self.shared.ckpt_done.load(Relaxed),
                    self.shared.ckpt_failed.load(Relaxed),
                )
            };
            if done.wrapping_sub(new_started) as i32 >= 0 {
                break failed;
            }
            interrupts()?;
            std::thread::sleep(WAIT_POLL);
        };
        if new_failed != old_failed {
            return Err(PgError::internal("checkpoint request failed")
                .with_hint("Consult recent messages in the server log for details."));
        }
        Ok(())
    }

    /// The checkpointer: the flags requested and not yet taken, left in
    /// place (PostgreSQL's `ImmediateCheckpointRequested` reads them so).
    pub fn pending_flags(&self) -> CheckpointFlags {
        let _l = self.shared.ckpt_lck.acquire();
        CheckpointFlags(self.shared.ckpt_flags.load(Relaxed))
    }

    /// The checkpointer, as a checkpoint (of any cause) starts: takes the
    /// requested flags and counts the start. Requests arriving from now on
    /// are for the next checkpoint.
    pub fn start_checkpoint(&self) -> CheckpointFlags {
        let s = self.shared;
        let _l = s.ckpt_lck.acquire();
        let flags = s.ckpt_flags.swap(0, Relaxed);
        s.ckpt_started
            .store(s.ckpt_started.load(Relaxed).wrapping_add(1), Relaxed);
        CheckpointFlags(flags)
    }

    /// The checkpointer, once the checkpoint started last has ended (also
    /// when it was skipped as idle): releases its waiters, telling them
    /// whether it failed.
    pub fn finish_checkpoint(&self, succeeded: bool) {
        let s = self.shared;
        let _l = s.ckpt_lck.acquire();
        if !succeeded {
            s.ckpt_failed
                .store(s.ckpt_failed.load(Relaxed).wrapping_add(1), Relaxed);
        }
        s.ckpt_done.store(s.ckpt_started.load(Relaxed), Relaxed);
    }

    /// Checkpoints started and done so far (wrapping counters).
    pub fn checkpoint_counts(&self) -> (u32, u32) {
        let _l = self.shared.ckpt_lck.acquire();
        (
            self.shared.ckpt_started.load(Relaxed),
            self.shared.ckpt_done.load(Relaxed),
        )
    }
}
