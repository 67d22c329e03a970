//! When to checkpoint and how fast to write: the decisions of PostgreSQL's
//! `CheckpointerMain` loop and `CheckpointWriteDelay`, as pure functions of
//! the settings, the clock and the WAL positions, so that they can be tested
//! without a cluster. The arithmetic itself (`CheckPointSegments`,
//! `IsCheckpointOnSchedule`) is `storage::recovery::pacing`.

use std::time::{Duration, Instant};

use storage::recovery::{
    checkpoint_segments, wal_checkpoint_needed, CheckpointFlags, CheckpointKind, CheckpointReason,
    CheckpointSchedule,
};
use storage::types::Lsn;

/// The settings a checkpoint decision depends on (re-read after SIGHUP).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacingSettings {
    pub checkpoint_timeout: Duration,
    pub completion_target: f64,
    pub max_wal_size_bytes: u64,
    /// `checkpoint_warning`; zero disables the warning.
    pub checkpoint_warning: Duration,
}

impl PacingSettings {
    pub fn from_settings(s: &conf::Settings) -> PacingSettings {
        PacingSettings {
            checkpoint_timeout: s
                .get_duration("checkpoint_timeout")
                .unwrap_or(Duration::from_secs(300))
                .max(Duration::from_secs(1)),
            completion_target: s.get_real("checkpoint_completion_target"),
            max_wal_size_bytes: s.get_bytes("max_wal_size").unwrap_or(1 << 30),
            checkpoint_warning: s
                .get_duration("checkpoint_warning")
                .unwrap_or(Duration::ZERO),
        }
    }

    /// PostgreSQL's `CheckPointSegments`.
    pub fn checkpoint_segments(&self) -> u64 {
        checkpoint_segments(self.max_wal_size_bytes, self.completion_target)
    }
}

/// The checkpointer wakes at least this often to look at the WAL volume
/// (backends may also wake it with SIGINT).
pub const WAL_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a spread checkpoint naps while ahead of schedule (PostgreSQL's
/// 100 ms in `CheckpointWriteDelay`).
pub const WRITE_DELAY_NAP: Duration = Duration::from_millis(100);

/// Buffers written at full speed between two absorbs of the request queue
/// (PostgreSQL's `WRITES_PER_ABSORB`).
pub const WRITES_PER_ABSORB: usize = 1000;

/// What one turn of the loop found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The causes found by the checkpointer itself (`CAUSE_TIME`,
    /// `CAUSE_XLOG`); requests come on top.
    pub causes: CheckpointFlags,
    /// How long to sleep if nothing is due now.
    pub sleep: Duration,
}

/// Whether a checkpoint is due by time or WAL volume, and otherwise how
/// long to sleep. `redo`/`insert` are `None` while WAL insertion has not
/// started (recovery).
pub fn due(
    settings: &PacingSettings,
    since_last: Duration,
    redo_and_insert: Option<(Lsn, Lsn)>,
) -> Due {
    let mut causes = CheckpointFlags::NONE;
    if since_last >= settings.checkpoint_timeout {
        causes |= CheckpointFlags::CAUSE_TIME;
    }
    if let Some((redo, insert)) = redo_and_insert {
        if wal_checkpoint_needed(redo, insert, settings.checkpoint_segments()) {
            causes |= CheckpointFlags::CAUSE_XLOG;
        }
    }
    let sleep = settings
        .checkpoint_timeout
        .saturating_sub(since_last)
        .clamp(Duration::from_millis(10), WAL_POLL_INTERVAL);
    Due { causes, sleep }
}

/// The online checkpoint for the flags taken from the shared state plus
/// the causes found: a pure timer or WAL trigger keeps its reason, anything
/// requested prints the merged flags as PostgreSQL does.
pub fn online_kind(flags: CheckpointFlags) -> CheckpointKind {
    let reason = if flags == CheckpointFlags::CAUSE_TIME {
        CheckpointReason::Timed
    } else if flags == CheckpointFlags::CAUSE_XLOG {
        CheckpointReason::WalSize
    } else {
        CheckpointReason::Requested(flags)
    };
    CheckpointKind::Online(reason)
}

/// PostgreSQL's `checkpoints are occurring too frequently` warning: a
/// WAL-triggered checkpoint less than `checkpoint_warning` after the
/// previous one. Returns the seconds between them if it applies.
pub fn too_frequent(
    settings: &PacingSettings,
    flags: CheckpointFlags,
    since_previous: Duration,
) -> Option<u64> {
    (flags.contains(CheckpointFlags::CAUSE_XLOG)
        && !settings.checkpoint_warning.is_zero()
        && since_previous < settings.checkpoint_warning)
        .then_some(since_previous.as_secs())
}

/// The pace of one checkpoint's writes: `None` for an immediate one.
pub fn schedule_for(
    kind: CheckpointKind,
    settings: &PacingSettings,
    started: Instant,
    insert_at_start: Lsn,
) -> Option<CheckpointSchedule> {
    (!kind.is_immediate()).then_some(CheckpointSchedule {
        started,
        redo: insert_at_start,
        checkpoint_timeout: settings.checkpoint_timeout,
        completion_target: settings.completion_target,
        checkpoint_segments: settings.checkpoint_segments(),
    })
}

/// PostgreSQL's `CheckpointWriteDelay` test: nap after this buffer only in
/// a spread checkpoint, with no shutdown and no immediate request pending,
/// while the writes are ahead of schedule.
pub fn should_nap(
    schedule: Option<&CheckpointSchedule>,
    shutdown_pending: bool,
    immediate_requested: bool,
    written: usize,
    total: usize,
    insert: Lsn,
    now: Instant,
) -> bool {
    match schedule {
        Some(s) if !shutdown_pending && !immediate_requested => {
            s.on_schedule(written, total, insert, now)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::types::WAL_SEGMENT_BYTES;

    fn settings() -> PacingSettings {
        PacingSettings {
            checkpoint_timeout: Duration::from_secs(300),
            completion_target: 0.9,
            max_wal_size_bytes: 1 << 30,
            checkpoint_warning: Duration::from_secs(30),
        }
    }

    fn seg(n: u64) -> Lsn {
        Lsn(n * WAL_SEGMENT_BYTES)
    }

    #[test]
    fn timer_and_wal_volume_make_a_checkpoint_due() {
        let s = settings();
        assert_eq!(s.checkpoint_segments(), 33);
        // Idle, early: sleep, at most a second so the WAL is looked at.
        let d = due(&s, Duration::from_secs(10), Some((seg(1), seg(1))));
        assert_eq!(d.causes, CheckpointFlags::NONE);
        assert_eq!(d.sleep, WAL_POLL_INTERVAL);
        // Nearly at the timeout: sleep only the rest.
        let d = due(&s, Duration::from_millis(299_700), None);
        assert_eq!(d.sleep, Duration::from_millis(300));
        // The timeout passed.
        let d = due(&s, Duration::from_secs(300), None);
        assert_eq!(d.causes, CheckpointFlags::CAUSE_TIME);
        assert_eq!(d.sleep, Duration::from_millis(10));
        // 32 segments of WAL since the redo point: not yet; 33: due.
        let redo = Lsn(seg(3).0 + 4096);
        assert_eq!(
            due(&s, Duration::ZERO, Some((redo, seg(3 + 31)))).causes,
            CheckpointFlags::NONE
        );
        assert_eq!(
            due(&s, Duration::ZERO, Some((redo, seg(3 + 32)))).causes,
            CheckpointFlags::CAUSE_XLOG
        );
        // A small max_wal_size: every segment.
        let small = PacingSettings {
            max_wal_size_bytes: 32 << 20,
            ..s
        };
        assert_eq!(small.checkpoint_segments(), 1);
        assert_eq!(
            due(&small, Duration::ZERO, Some((redo, seg(4)))).causes,
            CheckpointFlags::CAUSE_XLOG
        );
    }

    #[test]
    fn the_kind_follows_what_was_asked() {
        assert_eq!(
            online_kind(CheckpointFlags::CAUSE_TIME),
            CheckpointKind::Online(CheckpointReason::Timed)
        );
        assert_eq!(
            online_kind(CheckpointFlags::CAUSE_XLOG),
            CheckpointKind::Online(CheckpointReason::WalSize)
        );
        let command = CheckpointFlags::COMMAND | CheckpointFlags::REQUESTED;
        let k = online_kind(command);
        assert!(k.is_immediate());
        assert_eq!(
            k.start_message(),
            "checkpoint starting: immediate force wait"
        );
        let nudge = CheckpointFlags::CAUSE_XLOG | CheckpointFlags::REQUESTED;
        assert!(!online_kind(nudge).is_immediate());
        assert_eq!(
            online_kind(nudge).start_message(),
            "checkpoint starting: wal"
        );
    }

    #[test]
    fn frequent_wal_checkpoints_are_reported() {
        let s = settings();
        let wal = CheckpointFlags::CAUSE_XLOG;
        assert_eq!(too_frequent(&s, wal, Duration::from_secs(12)), Some(12));
        assert_eq!(too_frequent(&s, wal, Duration::from_secs(31)), None);
        assert_eq!(
            too_frequent(&s, CheckpointFlags::CAUSE_TIME, Duration::from_secs(1)),
            None
        );
        let off = PacingSettings {
            checkpoint_warning: Duration::ZERO,
            ..s
        };
        assert_eq!(too_frequent(&off, wal, Duration::from_secs(1)), None);
    }

    #[test]
    fn only_spread_checkpoints_ahead_of_schedule_nap() {
        let s = settings();
        let start = Instant::now();
        let timed = CheckpointKind::Online(CheckpointReason::Timed);
        let sched = schedule_for(timed, &s, start, seg(10));
        assert!(sched.is_some());
        let early = start + Duration::from_secs(1);
        // Half written after a second: ahead, nap.
        assert!(should_nap(
            sched.as_ref(),
            false,
            false,
            50,
            100,
            seg(10),
            early
        ));
        // But never with a shutdown or an immediate request pending.
        assert!(!should_nap(
            sched.as_ref(),
            true,
            false,
            50,
            100,
            seg(10),
            early
        ));
        assert!(!should_nap(
            sched.as_ref(),
            false,
            true,
            50,
            100,
            seg(10),
            early
        ));
        // Behind the clock: write on.
        let late = start + Duration::from_secs(280);
        assert!(!should_nap(
            sched.as_ref(),
            false,
            false,
            50,
            100,
            seg(10),
            late
        ));
        // Immediate kinds have no schedule at all.
        let cmd = CheckpointKind::Online(CheckpointReason::Requested(CheckpointFlags::COMMAND));
        assert!(schedule_for(cmd, &s, start, seg(10)).is_none());
        assert!(schedule_for(CheckpointKind::Shutdown, &s, start, seg(10)).is_none());
    }

    /// Written as fast as the disk allows and napping once after each
    /// buffer while ahead (as the progress callback does), a spread
    /// checkpoint of `n` buffers ends at about `completion_target` of the
    /// timeout, not sooner; with few buffers it is bounded by one nap per
    /// buffer instead.
    #[test]
    fn a_spread_checkpoint_lasts_about_the_completion_target() {
        let s = PacingSettings {
            checkpoint_timeout: Duration::from_secs(30),
            completion_target: 0.5,
            ..settings()
        };
        let start = Instant::now();
        let timed = CheckpointKind::Online(CheckpointReason::Timed);
        let sched = schedule_for(timed, &s, start, seg(10)).expect("spread");
        let run = |n: usize| {
            let mut now = start;
            for done in 1..=n {
                if should_nap(Some(&sched), false, false, done, n, seg(10), now) {
                    now += WRITE_DELAY_NAP;
                }
            }
            now - start
        };
        let took = run(400);
        assert!(
            took >= Duration::from_millis(14_800) && took <= Duration::from_millis(15_200),
            "took {took:?}"
        );
        assert_eq!(run(20), 20 * WRITE_DELAY_NAP);
    }
}
