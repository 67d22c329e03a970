//! Autovacuum: the launcher (default) and, with `--worker`, a worker.
//! See README.md: the launcher keeps its schedule and signal protocol;
//! choosing tables and vacuuming them arrives with storage and VACUUM.

use launch::{ChildContext, Sig};
use shmem_layout::ProcKind;
use std::time::Duration;

fn main() {
    let worker = std::env::args().any(|a| a == "--worker");
    if worker {
        run_worker()
    } else {
        run_launcher()
    }
}

fn run_launcher() -> ! {
    let ctx = ChildContext::start(
        ProcKind::AutovacLauncher,
        "autovacuum launcher",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1, Sig::Usr2],
    );
    launch::title::set("autovacuum launcher");
    ctx.main_loop(
        Sig::Term,
        |_| {},
        |ctx| {
            if !ctx.settings.get_bool("autovacuum") {
                // Turned off by a reload: stop, as PostgreSQL's launcher does.
                ctx.exit(0);
            }
            // Worker news (SIGUSR2) and the choice of a database to vacuum go
            // here; with no tables yet there is nothing to schedule.
            ctx.signals.take(Sig::Usr2);
            Duration::from_secs(ctx.settings.get_int("autovacuum_naptime").max(1) as u64)
        },
    )
}

fn run_worker() -> ! {
    let ctx = ChildContext::start(
        ProcKind::AutovacWorker,
        "autovacuum worker",
        &[Sig::Hup, Sig::Term, Sig::Int, Sig::Usr1],
    );
    let Some(p) = ctx
        .shmem
        .autovac_worker_procs()
        .iter()
        .find(|p| p.try_claim())
    else {
        log::info!("no free autovacuum worker slot");
        ctx.exit(0);
    };
    p.set_owner(std::process::id() as i32, ProcKind::AutovacWorker, 0);
    launch::title::set("autovacuum worker");
    // Vacuuming one database goes here; nothing to do without tables.
    p.release();
    ctx.exit(0)
}
