//! When to checkpoint, and how fast to write (PostgreSQL's
//! `CalculateCheckpointSegments`, `XLogCheckpointNeeded`,
//! `IsCheckpointOnSchedule` in `checkpointer.c`).
//!
//! The checkpointer starts a checkpoint when `checkpoint_timeout` has
//! passed since the last one began, or when the WAL written since its redo
//! point reaches [`checkpoint_segments`] (so that, spread over
//! `checkpoint_completion_target`, the next one ends before `max_wal_size`
//! is reached). During a spread checkpoint its progress callback asks
//! [`CheckpointSchedule::on_schedule`] after each buffer: while the writes
//! are ahead of both the clock and the WAL, it naps (PostgreSQL: 100 ms,
//! handling signals and absorbing fsync requests meanwhile); when behind,
//! it writes on at full speed. Immediate checkpoints (shutdown, end of
//! recovery, `CHECKPOINT`) never nap.
//!
//! # Invariants
//!
//! 1. Pure arithmetic on the caller's clock and LSNs: nothing here sleeps
//!    or reads shared state, so the checkpointer stays responsive.
//!
//! # Crash safety
//!
//! Pacing changes only when pages are written, never what a checkpoint
//! guarantees: a crash mid-way is a crash during checkpoint step 6
//! (`checkpoint.rs`).

use std::time::{Duration, Instant};

use crate::types::{Lsn, WAL_SEGMENT_BYTES};

/// How many segments of WAL since the last redo point trigger a checkpoint:
/// `max_wal_size / (1 + checkpoint_completion_target)`, at least 1.
pub fn checkpoint_segments(max_wal_size_bytes: u64, completion_target: f64) -> u64 {
    let segments = max_wal_size_bytes as f64 / WAL_SEGMENT_BYTES as f64;
    ((segments / (1.0 + completion_target.clamp(0.0, 1.0))) as u64).max(1)
}

/// Whether the WAL has grown enough since `redo` for a checkpoint
/// (PostgreSQL's `XLogCheckpointNeeded`): the insert position's segment is
/// `checkpoint_segments - 1` or more past the redo point's.
pub fn wal_checkpoint_needed(redo: Lsn, insert: Lsn, checkpoint_segments: u64) -> bool {
    insert.segment() >= redo.segment() + checkpoint_segments.saturating_sub(1).max(1)
}

/// The pace of one spread checkpoint.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointSchedule {
    /// When the checkpoint started.
    pub started: Instant,
    /// Its redo point.
    pub redo: Lsn,
    pub checkpoint_timeout: Duration,
    /// `checkpoint_completion_target`, 0.0 to 1.0.
    pub completion_target: f64,
    /// [`checkpoint_segments`] for the current settings.
    pub checkpoint_segments: u64,
}

impl CheckpointSchedule {
    /// Whether `written` of `total` buffers done by `now`, with the WAL
    /// inserted up to `insert`, is ahead of schedule: the fraction written,
    /// scaled to the completion target, is at least both the fraction of
    /// `checkpoint_timeout` elapsed and the fraction of the next
    /// checkpoint's WAL already written.
    pub fn on_schedule(&self, written: usize, total: usize, insert: Lsn, now: Instant) -> bool {
        if total == 0 {
            return true;
        }
        let progress = self.completion_target * written as f64 / total as f64;
        let wal_elapsed = insert.0.saturating_sub(self.redo.0) as f64
            / WAL_SEGMENT_BYTES as f64
            / self.checkpoint_segments.max(1) as f64;
        if progress < wal_elapsed {
            return false;
        }
        let timeout = self.checkpoint_timeout.as_secs_f64();
        let time_elapsed = if timeout > 0.0 {
            now.saturating_duration_since(self.started).as_secs_f64() / timeout
        } else {
            1.0
        };
        progress >= time_elapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_trigger_follows_max_wal_size() {
        // PostgreSQL's defaults: 1 GB, 0.9 -> 33 segments.
        assert_eq!(checkpoint_segments(1 << 30, 0.9), 33);
        assert_eq!(checkpoint_segments(16 << 20, 0.9), 1);
        let redo = Lsn(5 * WAL_SEGMENT_BYTES + 100);
        assert!(!wal_checkpoint_needed(redo, Lsn(6 * WAL_SEGMENT_BYTES), 33));
        assert!(wal_checkpoint_needed(redo, Lsn(37 * WAL_SEGMENT_BYTES), 33));
        assert!(wal_checkpoint_needed(redo, Lsn(6 * WAL_SEGMENT_BYTES), 1));
    }

    #[test]
    fn ahead_of_the_clock_and_the_wal_means_on_schedule() {
        let start = Instant::now();
        let s = CheckpointSchedule {
            started: start,
            redo: Lsn(WAL_SEGMENT_BYTES),
            checkpoint_timeout: Duration::from_secs(300),
            completion_target: 0.9,
            checkpoint_segments: 10,
        };
        // Half the buffers after a tenth of the time, no WAL: nap.
        assert!(s.on_schedule(50, 100, s.redo, start + Duration::from_secs(30)));
        // Half the buffers after 90% of the time: behind.
        assert!(!s.on_schedule(50, 100, s.redo, start + Duration::from_secs(270)));
        // Half the buffers but 8 of 10 segments of WAL written: behind.
        let insert = Lsn(s.redo.0 + 8 * WAL_SEGMENT_BYTES);
        assert!(!s.on_schedule(50, 100, insert, start));
        assert!(s.on_schedule(0, 0, insert, start));
    }
}
