//! The background writer's loop (PostgreSQL's `BackgroundWriterMain`).
//!
//! ```text
//!  loop:
//!    reset latch; postmaster gone? exit 1
//!    SIGHUP: re-read settings            SIGTERM: exit 0
//!    a checkpoint ended since last round? close every file (dropped
//!      relations' descriptors go)
//!    recovery finished and bgwriter_lru_maxpages > 0:
//!      one LRU pass: from where the last one stopped (if still ahead of
//!      the clock hand), write dirty, unpinned, usage-count-0 buffers, at
//!      most bgwriter_lru_maxpages, until enough reusable buffers lie
//!      ahead of the hand (`lru.rs`)
//!    sleep bgwriter_delay (signals and the latch wake it)
//! ```
//!
//! It writes nothing before the startup process has finished recovery and
//! its end-of-recovery checkpoint: that checkpoint does not absorb the
//! checkpointer's queue, so a write we forwarded then could escape it.
//!
//! # Crash safety
//!
//! Each write follows the WAL rule (the buffer manager flushes WAL up to
//! the page LSN first) and hands its fsync to the checkpointer before the
//! write returns, or fsyncs itself if the queue is full. A PANIC (a failed
//! fsync or WAL flush) exits 1: the postmaster sees a crash. Another error
//! is logged and the bgwriter pauses a second before the next round.

use std::time::Duration;

use launch::{ChildContext, Sig};
use pgerror::{PgError, Severity};
use storage::recovery::EngineContext;

use crate::lru::LruPlanner;

/// Attaches the engine (fsyncs forwarded to the checkpointer) and loops.
pub fn run(ctx: ChildContext) -> ! {
    let fsync = ctx.settings.get_bool("fsync");
    let dir = ctx.args.data_dir.clone();
    let result = storage::shmem::with_engine(&ctx.shmem, &dir, fsync, |engine| {
        BgWriter {
            ctx: &ctx,
            settings: ctx.settings.clone(),
            planner: LruPlanner::default(),
            checkpoints_done: None,
        }
        .main_loop(engine)
    });
    match result {
        Ok(never) => match never {},
        Err(e) => {
            log::error!(target: launch::elog::FATAL, "{}", e.message);
            ctx.exit(1)
        }
    }
}

struct BgWriter<'c> {
    ctx: &'c ChildContext,
    settings: conf::Settings,
    planner: LruPlanner,
    /// The checkpointer's `ckpt_done` at the last round.
    checkpoints_done: Option<u32>,
}

impl BgWriter<'_> {
    fn main_loop(mut self, engine: &mut EngineContext<'_, '_>) -> std::convert::Infallible {
        let queue = storage::shmem::checkpointer_queue(&self.ctx.shmem);
        loop {
            if self.ctx.begin_loop() {
                self.ctx.exit(launch::child::EXIT_POSTMASTER_DIED);
            }
            if self.ctx.signals.take(Sig::Hup) {
                if let Some(s) = self.ctx.read_settings() {
                    self.settings = s;
                }
            }
            if self.ctx.signals.take(Sig::Term) {
                self.ctx.exit(0);
            }
            // SIGINT and SIGUSR1: nothing to do (PostgreSQL ignores them).
            self.ctx.signals.take(Sig::Int);
            self.ctx.signals.take(Sig::Usr1);

            let (_, done) = queue.checkpoint_counts();
            if self
                .checkpoints_done
                .replace(done)
                .is_some_and(|d| d != done)
            {
                engine.smgr.close_all();
            }
            let delay =
                Duration::from_millis(self.settings.get_int("bgwriter_delay").max(10) as u64);
            if queue.recovery_finished() && engine.wal.is_started() {
                if let Err(e) = self.round(engine, delay) {
                    self.report(&e);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            self.ctx.wait(delay);
        }
    }

    /// One LRU pass.
    fn round(
        &mut self,
        engine: &mut EngineContext<'_, '_>,
        delay: Duration,
    ) -> Result<(), PgError> {
        let max_pages = self.settings.get_int("bgwriter_lru_maxpages").max(0) as usize;
        if max_pages == 0 {
            return Ok(());
        }
        let pool = engine.buffers.pool();
        let scan = self.planner.plan(
            pool.clock_ticks(),
            pool.num_allocs(),
            pool.nbuffers(),
            delay,
            self.settings.get_real("bgwriter_lru_multiplier"),
        );
        let stats = engine.buffers.bgwriter_lru_pass(
            &mut *engine.smgr,
            engine.wal,
            scan.start,
            scan.max_scan,
            max_pages,
            scan.reusable_target,
        )?;
        self.planner.record(&scan, &stats);
        if stats.buffers_written > 0 {
            log::debug!(
                "bgwriter wrote {} buffers, {} reusable ahead of the clock hand",
                stats.buffers_written,
                stats.buffers_reusable
            );
        }
        Ok(())
    }

    fn report(&self, e: &PgError) {
        let panic = e.severity == Severity::Panic;
        let target = if panic {
            launch::elog::PANIC
        } else {
            "bgwriter"
        };
        log::error!(target: target, "{}", e.message);
        if let Some(d) = &e.detail {
            log::info!(target: launch::elog::DETAIL, "{d}");
        }
        if panic {
            self.ctx.exit(1);
        }
    }
}
