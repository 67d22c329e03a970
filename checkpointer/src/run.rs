//! The checkpointer's loop (PostgreSQL's `CheckpointerMain`,
//! `CheckpointWriteDelay`, `AbsorbSyncRequests`).
//!
//! ```text
//!  start: publish pid in the shared state; build our engine (own fsync set)
//!  loop:
//!    reset latch; postmaster gone? exit 1
//!    absorb the request queue: fsyncs into our Smgr's dirty set,
//!      tombstones into its unlink list (for the next checkpoint)
//!    SIGHUP: re-read settings            SIGUSR2: shutdown checkpoint, exit 0
//!    requested flags | timeout passed | WAL since redo >= CheckPointSegments?
//!      and recovery finished ──► take the flags (ckpt_started += 1)
//!                               create_checkpoint, spread unless immediate
//!                               ckpt_done = ckpt_started (failed += 1 on error)
//!    sleep until the next timed checkpoint, at most 1 s (WAL poll), or a
//!    signal / latch
//! ```
//!
//! During a spread checkpoint the progress callback naps 100 ms after a
//! buffer while the writes are ahead of both the clock and the WAL, absorbing
//! the queue at each nap (and every 1000 buffers otherwise); a shutdown
//! request or an immediate request ends the napping, so the rest is written
//! at full speed. Requests absorbed during a checkpoint: fsyncs go into its
//! step 8 (through `absorb_fsync_requests`), tombstones wait for the next
//! checkpoint (`checkpointer_shmem` rule F2).
//!
//! # Crash safety
//!
//! A failed online checkpoint (ERROR) leaves the previous one in force; the
//! waiters are told it failed, what was not yet fsynced stays in our dirty
//! set for the next one, and we pause a second. A PANIC (a failed fsync or
//! control file write) exits 1, which the postmaster treats as a crash.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use launch::{ChildContext, Sig};
use pgerror::{PgError, Severity};
use storage::checkpointer_shmem::{AbsorbedRequests, CheckpointerQueue};
use storage::recovery::{
    create_checkpoint, CheckpointFlags, CheckpointKind, CheckpointOptions, CheckpointStats,
    EngineContext, WalRetention,
};

use crate::pacer::{self, PacingSettings, WRITES_PER_ABSORB, WRITE_DELAY_NAP};

/// Attaches our engine and runs the loop; never returns.
pub fn run(ctx: ChildContext) -> ! {
    let queue = storage::shmem::checkpointer_queue(&ctx.shmem);
    queue.set_checkpointer_pid(std::process::id() as i32);
    let fsync = ctx.settings.get_bool("fsync");
    let dir = ctx.args.data_dir.clone();
    let result = storage::shmem::with_checkpointing_engine(&ctx.shmem, &dir, fsync, |engine| {
        Checkpointer::new(&ctx, queue).main_loop(engine)
    });
    match result {
        Ok(never) => match never {},
        Err(e) => {
            log::error!(target: launch::elog::FATAL, "{}", e.message);
            queue.set_checkpointer_pid(0);
            ctx.exit(1)
        }
    }
}

struct Checkpointer<'c> {
    ctx: &'c ChildContext,
    queue: CheckpointerQueue<'c>,
    settings: conf::Settings,
    pacing: PacingSettings,
    /// When the last checkpoint (of any kind, skipped or not) started.
    last_checkpoint: Instant,
}

impl<'c> Checkpointer<'c> {
    fn new(ctx: &'c ChildContext, queue: CheckpointerQueue<'c>) -> Self {
        let settings = ctx.settings.clone();
        Checkpointer {
            ctx,
            queue,
            pacing: PacingSettings::from_settings(&settings),
            settings,
            last_checkpoint: Instant::now(),
        }
    }

    fn main_loop(mut self, engine: &mut EngineContext<'_, '_>) -> std::convert::Infallible {
        loop {
            if self.ctx.begin_loop() {
                self.exit(launch::child::EXIT_POSTMASTER_DIED);
            }
            absorb_into(engine, self.queue.absorb());
            if self.ctx.signals.take(Sig::Hup) {
                if let Some(s) = self.ctx.read_settings() {
                    self.pacing = PacingSettings::from_settings(&s);
                    self.settings = s;
                }
            }
            if self.ctx.signals.take(Sig::Usr2) {
                self.shutdown(engine);
            }
            // SIGINT only wakes us: the requests are in the shared flags.
            self.ctx.signals.take(Sig::Int);

            let sleep = self.maybe_checkpoint(engine);
            self.ctx.wait(sleep);
        }
    }

    /// One look at what is due; returns how long to sleep.
    fn maybe_checkpoint(&mut self, engine: &mut EngineContext<'_, '_>) -> Duration {
        if !self.queue.recovery_finished() || !engine.wal.is_started() {
            // The startup process still owns checkpoints; requests wait.
            return pacer::WAL_POLL_INTERVAL;
        }
        let positions = (engine.wal.redo_ptr(), engine.wal.current_insert_lsn());
        let since_last = self.last_checkpoint.elapsed();
        let due = pacer::due(&self.pacing, since_last, Some(positions));
        let requested = !self.queue.pending_flags().is_empty();
        if !requested && due.causes.is_empty() {
            return due.sleep;
        }
        let flags = self.queue.start_checkpoint() | due.causes;
        let kind = pacer::online_kind(flags);
        if let Some(secs) = pacer::too_frequent(&self.pacing, flags, since_last) {
            let unit = if secs == 1 { "second" } else { "seconds" };
            log::info!("checkpoints are occurring too frequently ({secs} {unit} apart)");
            log::info!(target: launch::elog::HINT, "Consider increasing the configuration parameter \"max_wal_size\".");
        }
        self.last_checkpoint = Instant::now();
        let result = self.checkpoint(engine, kind);
        self.queue.finish_checkpoint(result.is_ok());
        match result {
            Ok(Some(stats)) => log::info!("{}", stats.completion_message()),
            Ok(None) => {}
            Err(e) => {
                self.log_failure(&e);
                // PostgreSQL sleeps a second after an error, so that a
                // persistent failure does not spin.
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if self.queue.pending_flags().is_empty() {
            Duration::from_millis(10)
        } else {
            Duration::ZERO
        }
    }

    /// SIGUSR2: the shutdown checkpoint, then exit 0 (1 if it failed: the
    /// postmaster sees a crash and the next start recovers).
    fn shutdown(&mut self, engine: &mut EngineContext<'_, '_>) -> ! {
        log::info!("shutting down");
        if !self.queue.recovery_finished() || !engine.wal.is_started() {
            // Recovery has not finished (a shutdown during crash recovery):
            // nothing was written since the last checkpoint, and the next
            // start recovers from it, as PostgreSQL's does.
            log::info!("skipping checkpoint: recovery has not finished");
            self.exit(0);
        }
        self.queue.start_checkpoint();
        let result = self.checkpoint(engine, CheckpointKind::Shutdown);
        self.queue.finish_checkpoint(result.is_ok());
        match result {
            Ok(stats) => {
                if let Some(stats) = stats {
                    log::info!("{}", stats.completion_message());
                }
                self.exit(0)
            }
            Err(e) => {
                self.log_failure(&e);
                self.exit(1)
            }
        }
    }

    /// Runs one checkpoint with spreading and absorbing; `None` if it was
    /// skipped as idle.
    fn checkpoint(
        &self,
        engine: &mut EngineContext<'_, '_>,
        kind: CheckpointKind,
    ) -> Result<Option<CheckpointStats>, PgError> {
        let archive_mode = self.settings.get_str("archive_mode") != "off";
        let pg_wal = self.ctx.args.data_dir.join("pg_wal");
        let may_remove =
            move |name: &str| storage::recovery::archiver_done_with(&pg_wal, archive_mode, name);
        // Requests absorbed while the checkpoint runs.
        let absorbed = RefCell::new(AbsorbedRequests::default());
        let queue = self.queue;
        let absorb_fsyncs = || {
            let fresh = queue.absorb();
            let mut held = absorbed.borrow_mut();
            held.unlinks.extend(fresh.unlinks);
            let mut fsyncs = std::mem::take(&mut held.fsyncs);
            fsyncs.extend(fresh.fsyncs);
            fsyncs
        };
        let options = CheckpointOptions {
            fsync_requests: Vec::new(),
            unlink_requests: Vec::new(),
            absorb_fsync_requests: &absorb_fsyncs,
            wal_retention: WalRetention::default(),
            may_remove: &may_remove,
        };
        let wal = engine.wal;
        let schedule =
            pacer::schedule_for(kind, &self.pacing, Instant::now(), wal.current_insert_lsn());
        let mut since_absorb = 0;
        let progress = |written: usize, total: usize| {
            let nap = schedule.is_some()
                && pacer::should_nap(
                    schedule.as_ref(),
                    self.ctx.signals.pending(Sig::Usr2),
                    queue.pending_flags().contains(CheckpointFlags::IMMEDIATE),
                    written,
                    total,
                    wal.current_insert_lsn(),
                    Instant::now(),
                );
            since_absorb += 1;
            if nap || since_absorb >= WRITES_PER_ABSORB {
                absorb_held(&absorbed, queue.absorb());
                since_absorb = 0;
            }
            if nap {
                if self.ctx.begin_loop() {
                    self.exit(launch::child::EXIT_POSTMASTER_DIED);
                }
                self.ctx.wait(WRITE_DELAY_NAP);
            }
        };
        let result = create_checkpoint(kind, engine, options, progress);
        // What was absorbed but not used stays ours: fsyncs (a failure
        // before step 8) and every tombstone (rule F2).
        absorb_into(engine, absorbed.into_inner());
        result.map(|stats| (!stats.skipped).then_some(stats))
    }

    fn log_failure(&self, e: &PgError) {
        let target = if e.severity == Severity::Panic {
            launch::elog::PANIC
        } else {
            "checkpoint"
        };
        log::error!(target: target, "{}", e.message);
        if let Some(d) = &e.detail {
            log::info!(target: launch::elog::DETAIL, "{d}");
        }
        if e.severity == Severity::Panic {
            self.exit(1);
        }
    }

    /// Leaves: no more requests are queued for us.
    fn exit(&self, code: i32) -> ! {
        self.queue.set_checkpointer_pid(0);
        self.ctx.exit(code)
    }
}

/// Absorbed requests into our own storage manager: fsyncs for the next
/// checkpoint's step 8, tombstones for its step 3.
fn absorb_into(engine: &mut EngineContext<'_, '_>, requests: AbsorbedRequests) {
    for tag in requests.fsyncs {
        engine.smgr.register_sync(tag);
    }
    for tag in requests.unlinks {
        engine.smgr.register_unlink(tag);
    }
}

fn absorb_held(held: &RefCell<AbsorbedRequests>, fresh: AbsorbedRequests) {
    let mut held = held.borrow_mut();
    held.fsyncs.extend(fresh.fsyncs);
    held.unlinks.extend(fresh.unlinks);
}
