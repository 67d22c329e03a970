//! The startup process. See README.md: it checks the data directory, then
//! runs recovery (`storage::recovery::startup`): reads pg_control, replays
//! WAL from the last checkpoint's redo point when the cluster was not shut
//! down cleanly, writes the end-of-recovery checkpoint, and exits 0.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;

/// The on-disk format version this server reads (PG_VERSION).
const PG_VERSION: &str = "15";

fn main() {
    // A terminal's Ctrl-C reaches every process of the group; PostgreSQL's
    // startup process ignores SIGINT, and so do we.
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let ctx = ChildContext::start(
        ProcKind::Startup,
        "startup",
        &[Sig::Hup, Sig::Term, Sig::Usr2],
    );
    launch::title::set("startup");
    let dir = &ctx.args.data_dir;
    match std::fs::read_to_string(dir.join("PG_VERSION")) {
        Ok(v) if v.trim() == PG_VERSION => {}
        Ok(v) => {
            log::error!(target: launch::elog::FATAL, "database files are incompatible with server");
            log::info!(target: launch::elog::DETAIL, "The data directory was initialized by version {}, which is not compatible with this version {PG_VERSION}.", v.trim());
            ctx.exit(1);
        }
        Err(e) => {
            log::error!(target: launch::elog::FATAL, "could not read file \"{}\": {e}", dir.join("PG_VERSION").display());
            ctx.exit(1);
        }
    }
    for sub in ["global", "base"] {
        if !dir.join(sub).is_dir() {
            log::error!(target: launch::elog::FATAL, "required directory \"{}\" is missing", dir.join(sub).display());
            ctx.exit(1);
        }
    }
    if ctx.signals.take(Sig::Term) {
        ctx.exit(1);
    }
    let fsync = ctx.settings.get_bool("fsync");
    let archive_mode = ctx.settings.get_str("archive_mode") != "off";
    let pg_wal = dir.join("pg_wal");
    let may_remove =
        move |name: &str| storage::recovery::archiver_done_with(&pg_wal, archive_mode, name);
    let table = storage::shmem::redo_table();
    let options = storage::recovery::StartupOptions {
        redo: &table,
        end_of_recovery_checkpoint: true,
        wal_retention: storage::recovery::WalRetention::default(),
        may_remove: &may_remove,
    };
    // Our own fsync set: the end-of-recovery checkpoint fsyncs what replay
    // wrote (no fsync request goes to the checkpointer).
    let result = storage::shmem::with_checkpointing_engine(&ctx.shmem, dir, fsync, |engine| {
        storage::recovery::startup(engine, &options)
    });
    match result.and_then(|r| r) {
        Ok(_) => {
            // From now on the checkpointer may checkpoint and the bgwriter
            // write: our checkpoint is done.
            storage::shmem::checkpointer_queue(&ctx.shmem).set_recovery_finished();
            ctx.exit(0)
        }
        Err(e) => {
            let target = if e.severity == pgerror::Severity::Panic {
                launch::elog::PANIC
            } else {
                launch::elog::FATAL
            };
            log::error!(target: target, "{}", e.message);
            if let Some(d) = &e.detail {
                log::info!(target: launch::elog::DETAIL, "{d}");
            }
            ctx.exit(1)
        }
    }
}
