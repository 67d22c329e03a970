//! The real walwriter binary, launched as the postmaster launches it, on a
//! segment and data directory this test prepares: WAL inserted and not
//! flushed (an asynchronous commit's) reaches disk within a few
//! `wal_writer_delay`s; SIGTERM ends it with 0.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmem_layout::{ProcKind, Shmem, SizingParams};
use storage::recovery::{RedoTable, StartupOptions, WalRetention};

fn segment() -> Shmem {
    let mut params = SizingParams {
        max_connections: 4,
        superuser_reserved_connections: 0,
        autovacuum_max_workers: 1,
        track_activity_query_size: 128,
        shared_buffers: 16,
        wal_buffers_pages: 16,
        max_locks_per_transaction: 64,
        buffer_pool_bytes: 0,
        wal_bytes: 0,
        clog_bytes: 0,
        transam_bytes: 0,
        checkpointer_bytes: 0,
        lock_table_bytes: 0,
    };
    storage::shmem::region_sizes(&mut params);
    let shmem = Shmem::create(params, std::process::id() as i32).expect("segment");
    storage::shmem::init_regions(&shmem, false).expect("init");
    shmem
}

/// Bootstrap, settings for the child, recovery as the startup process runs it.
fn prepare(shmem: &Shmem, dir: &Path) {
    std::fs::create_dir(dir.join("base")).unwrap();
    storage::recovery::bootstrap_cluster(dir, 7_400_000_000_000_000_779, false).unwrap();
    let mut settings = conf::Settings::defaults();
    settings.set_internal("wal_writer_delay", "50ms").unwrap();
    settings
        .write_exec_params(&launch::child::exec_params_path(dir))
        .unwrap();
    let table = RedoTable::new();
    let options = StartupOptions {
        redo: &table,
        end_of_recovery_checkpoint: true,
        wal_retention: WalRetention::default(),
        may_remove: &|_| true,
    };
    storage::shmem::with_checkpointing_engine(shmem, dir, false, |e| {
        storage::recovery::startup(e, &options)
    })
    .unwrap()
    .unwrap();
}

fn launch(shmem: &Shmem, dir: &Path) -> std::process::Child {
    let slot = shmem
        .child_slots()
        .iter()
        .position(|s| s.try_assign(ProcKind::WalWriter))
        .unwrap();
    let interlock = std::fs::File::open(dir.join("global/pg_control")).unwrap();
    let inherit = [shmem.raw_fd(), interlock.as_raw_fd()];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_walwriter"));
    cmd.args([
        "--shmem",
        &shmem.raw_fd().to_string(),
        "--slot",
        &slot.to_string(),
        "--interlock",
        &interlock.as_raw_fd().to_string(),
        "-D",
        dir.to_str().unwrap(),
    ])
    .stdin(Stdio::null())
    .stderr(Stdio::null());
    // SAFETY: only fcntl, async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for fd in inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn")
}

#[test]
fn inserted_wal_reaches_disk_within_a_few_delays() {
    let dir = tempfile::tempdir().unwrap();
    let shmem = segment();
    prepare(&shmem, dir.path());
    let mut child = launch(&shmem, dir.path());
    let wal = storage::shmem::attach_wal(&shmem, dir.path()).unwrap();
    for round in 0..3 {
        let end = wal
            .insert(storage::recovery::noop_record(&[round; 100]))
            .unwrap()
            .end;
        let inserted = Instant::now();
        while wal.flushed_lsn() < end {
            assert!(
                inserted.elapsed() < Duration::from_secs(5),
                "not flushed by the walwriter"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // SAFETY: signalling our child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
