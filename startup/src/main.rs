//! The startup process. See README.md: in this version it checks the data
//! directory and exits 0; WAL replay arrives with the storage engine.

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
    log::debug!("data directory checked; no WAL to replay yet");
    ctx.exit(0)
}
