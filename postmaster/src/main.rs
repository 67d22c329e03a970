//! The postmaster: the supervisor of a cluster. See README.md.

mod children;
mod listen;
mod lockfile;
mod options;
mod server;

use launch::{Sig, Signals};
use server::{PmState, Postmaster, ShutdownMode};
use std::path::{Path, PathBuf};

const VERSION_LINE: &str = "postmaster (PostgreSQL) 15.0 (pgrust 0.1.0)";

fn fatal(msg: &str, hint: Option<&str>) -> ! {
    log::error!(target: launch::elog::FATAL, "{msg}");
    if let Some(h) = hint {
        log::info!(target: launch::elog::HINT, "{h}");
    }
    std::process::exit(1)
}

fn check_data_dir(dir: &Path) {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fatal(
            &format!("data directory \"{}\" does not exist", dir.display()),
            None,
        ),
        Err(e) => fatal(
            &format!(
                "could not read permissions of directory \"{}\": {e}",
                dir.display()
            ),
            None,
        ),
        Ok(m) if !m.is_dir() => fatal(
            &format!(
                "specified data directory \"{}\" is not a directory",
                dir.display()
            ),
            None,
        ),
        Ok(_) => {}
    }
    if !dir.join("PG_VERSION").exists() {
        log::error!(target: launch::elog::FATAL, "\"{}\" is not a valid data directory", dir.display());
        log::info!(target: launch::elog::DETAIL, "File \"{}\" is missing.", dir.join("PG_VERSION").display());
        std::process::exit(1);
    }
}

fn main() {
    launch::elog::init("postmaster", log::LevelFilter::Info);
    let opts = match options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("postmaster: {e}\nTry \"postmaster --help\" for more information.");
            std::process::exit(1);
        }
    };
    if opts.help {
        print!("{}", options::USAGE);
        return;
    }
    if opts.version {
        println!("{VERSION_LINE}");
        return;
    }
    let data_dir: PathBuf = match opts
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("PGDATA").map(PathBuf::from))
    {
        Some(d) => std::path::absolute(&d).unwrap_or(d),
        None => {
            eprintln!(
                "postmaster does not know where to find the database system data.\n\
                 You must specify the -D invocation option or set the PGDATA environment variable."
            );
            std::process::exit(2);
        }
    };
    check_data_dir(&data_dir);
    let settings = match conf::Settings::load(&data_dir, &opts.settings) {
        Ok(s) => s,
        Err(e) => fatal(&e.message, e.hint.as_deref()),
    };

    let signals = match Signals::install(&[
        Sig::Hup,
        Sig::Int,
        Sig::Term,
        Sig::Quit,
        Sig::Usr1,
        Sig::Chld,
    ]) {
        Ok(s) => s,
        Err(e) => fatal(&format!("could not install signal handlers: {e}"), None),
    };
    let sizing = server::sizing_params(&settings);
    if sizing.num_procs() > shmem_layout::lwlock::MAX_SHARED_HOLDERS as usize {
        fatal(
            &format!(
                "max_connections + autovacuum_max_workers is too large: at most {} processes can share a lock",
                shmem_layout::lwlock::MAX_SHARED_HOLDERS as usize - shmem_layout::NUM_AUX_PROCS
            ),
            None,
        );
    }
    let mut pidfile = match lockfile::PidFile::create(&data_dir) {
        Ok(p) => p,
        Err(e) => fatal(&e.message, e.hint.as_deref()),
    };
    let interlock = match lockfile::Interlock::acquire(&data_dir) {
        Ok(i) => i,
        Err(e) => {
            pidfile.remove();
            fatal(&e.message, e.hint.as_deref())
        }
    };
    log::info!(
        "starting PostgreSQL 15.0 (pgrust 0.1.0) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit"
    );
    let port = settings.get_int("port") as u16;
    let listeners = match listen::open(
        &settings.get_str("listen_addresses"),
        port,
        &settings.get_str("unix_socket_directories"),
        &data_dir,
    ) {
        Ok(l) => l,
        Err(e) => {
            pidfile.remove();
            fatal(&e.message, e.hint.as_deref())
        }
    };
    pidfile.set_line(4, &port.to_string());
    pidfile.set_line(5, &listeners.first_socket_dir);
    pidfile.set_line(6, &listeners.first_listen_addr);

    let _ = std::fs::create_dir_all(data_dir.join("global"));
    if let Err(e) = settings.write_exec_params(&launch::child::exec_params_path(&data_dir)) {
        pidfile.remove();
        listeners.remove_files();
        fatal(
            &format!("could not write server settings for child processes: {e}"),
            None,
        );
    }
    let shmem = match server::create_shared_memory(&settings) {
        Ok(s) => s,
        Err(e) => {
            pidfile.remove();
            listeners.remove_files();
            fatal(
                &format!("could not create shared memory segment: {e}"),
                None,
            )
        }
    };
    let mut pm = Postmaster {
        children: children::Children::new(&data_dir),
        data_dir,
        settings,
        pidfile,
        interlock,
        listeners,
        shmem,
        signals,
        state: PmState::Startup,
        shutdown: ShutdownMode::None,
        fatal_error: false,
        abort_started: None,
        sent_sigkill: false,
        conns_allowed: true,
        ready_once: false,
        startup_signalled: false,
        crash_recovery: false,
        last_aux_launch: Default::default(),
    };
    pm.start_cycle();
    pm.run()
}
