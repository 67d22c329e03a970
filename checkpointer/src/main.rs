//! The checkpointer. See README.md: PostgreSQL's signal protocol (SIGUSR2 =
//! shutdown checkpoint then exit, SIGINT = checkpoint request, SIGTERM
//! ignored), timed checkpoints every `checkpoint_timeout`, and the shutdown
//! checkpoint that lets the next start skip recovery
//! (`storage::recovery::create_checkpoint`).

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::{Duration, Instant};
use storage::recovery::{CheckpointKind, CheckpointOptions, CheckpointReason, WalRetention};

/// Runs one checkpoint of `kind` with this process's handles on the
/// storage regions, and logs PostgreSQL's completion line.
fn checkpoint(ctx: &ChildContext, kind: CheckpointKind) -> Result<(), pgerror::PgError> {
    let fsync = ctx.settings.get_bool("fsync");
    let archive_mode = ctx.settings.get_str("archive_mode") != "off";
    let pg_wal = ctx.args.data_dir.join("pg_wal");
    let may_remove =
        move |name: &str| storage::recovery::archiver_done_with(&pg_wal, archive_mode, name);
    let stats = storage::shmem::with_engine(&ctx.shmem, &ctx.args.data_dir, fsync, |engine| {
        if !engine.wal.is_started() {
            // Recovery has not finished (a shutdown during crash recovery):
            // nothing was written since the last checkpoint, and the next
            // start recovers from it, as PostgreSQL's does.
            log::info!("skipping checkpoint: recovery has not finished");
            return Ok(None);
        }
        let options = CheckpointOptions {
            fsync_requests: Vec::new(),
            unlink_requests: Vec::new(),
            wal_retention: WalRetention::default(),
            may_remove: &may_remove,
        };
        storage::recovery::create_checkpoint(kind, engine, options, |_, _| {}).map(Some)
    })??;
    if let Some(stats) = stats.filter(|s| !s.skipped) {
        log::info!("{}", stats.completion_message());
    }
    Ok(())
}

fn log_failure(e: &pgerror::PgError) {
    let target = if e.severity == pgerror::Severity::Panic {
        launch::elog::PANIC
    } else {
        "checkpoint"
    };
    log::error!(target: target, "{}", e.message);
    if let Some(d) = &e.detail {
        log::info!(target: launch::elog::DETAIL, "{d}");
    }
}

fn main() {
    // SIGTERM is ignored: the checkpointer must outlive the backends in a
    // shutdown, and waits for SIGUSR2, as PostgreSQL's does.
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let ctx = ChildContext::start(
        ProcKind::Checkpointer,
        "checkpointer",
        &[Sig::Hup, Sig::Int, Sig::Usr1, Sig::Usr2],
    );
    launch::title::set("checkpointer");
    let mut last_checkpoint = Instant::now();
    ctx.main_loop(
        Sig::Usr2,
        |ctx| {
            log::info!("shutting down");
            if let Err(e) = checkpoint(ctx, CheckpointKind::Shutdown) {
                log_failure(&e);
                // Not a clean shutdown: the postmaster sees a crash and the
                // next start recovers from the previous checkpoint.
                ctx.exit(1);
            }
        },
        |ctx| {
            let timeout =
                Duration::from_secs(ctx.settings.get_int("checkpoint_timeout").max(1) as u64);
            let requested = ctx.signals.take(Sig::Int);
            if requested || last_checkpoint.elapsed() >= timeout {
                let reason = if requested {
                    CheckpointReason::Requested
                } else {
                    CheckpointReason::Timed
                };
                if let Err(e) = checkpoint(ctx, CheckpointKind::Online(reason)) {
                    log_failure(&e);
                }
                last_checkpoint = Instant::now();
            }
            timeout
                .saturating_sub(last_checkpoint.elapsed())
                .max(Duration::from_millis(10))
        },
    )
}
