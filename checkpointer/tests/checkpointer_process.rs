//! The real checkpointer binary, launched as the postmaster launches it, on
//! a segment and data directory this test prepares (it plays postmaster,
//! startup process and backend):
//!
//! 1. It publishes its pid; a `CHECKPOINT`-style request from this process
//!    reaches it and returns once the checkpoint is done.
//! 2. It absorbs fsync requests forwarded to its queue.
//! 3. WAL beyond `max_wal_size` starts a spread `wal` checkpoint (it naps
//!    between buffers while ahead of schedule); an
//!    immediate request during it makes it finish at full speed, then the
//!    requested one runs.
//! 4. SIGUSR2: `shutting down`, the shutdown checkpoint, exit 0.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmem_layout::{ProcKind, Shmem, SizingParams};
use storage::checkpointer_shmem::{request_checkpoint, RequestKind};
use storage::recovery::{CheckpointFlags, RedoTable, StartupOptions, WalRetention};
use storage::smgr::SegmentTag;
use storage::types::{ForkNumber, Oid, RelFileLocator, DEFAULTTABLESPACE_OID};

const REL: RelFileLocator = RelFileLocator {
    spc_oid: DEFAULTTABLESPACE_OID,
    db_oid: Oid(5),
    rel_number: Oid(16384),
};

fn segment() -> Shmem {
    let mut params = SizingParams {
        max_connections: 4,
        superuser_reserved_connections: 0,
        autovacuum_max_workers: 1,
        track_activity_query_size: 128,
        shared_buffers: 64,
        wal_buffers_pages: 64,
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

fn prepare_data_dir(dir: &Path) {
    std::fs::create_dir(dir.join("base")).unwrap();
    storage::recovery::bootstrap_cluster(dir, 7_400_000_000_000_000_777, false).unwrap();
    let mut settings = conf::Settings::defaults();
    for (name, value) in [
        ("fsync", "off"),
        ("max_wal_size", "2MB"),
        ("checkpoint_completion_target", "0.9"),
        ("checkpoint_timeout", "300s"),
    ] {
        settings.set_internal(name, value).unwrap();
    }
    settings
        .write_exec_params(&launch::child::exec_params_path(dir))
        .unwrap();
}

/// Recovery as the startup process runs it, then "recovery finished".
fn startup(shmem: &Shmem, dir: &Path) {
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
    storage::shmem::checkpointer_queue(shmem).set_recovery_finished();
}

fn launch(shmem: &Shmem, dir: &Path, log: &Path) -> std::process::Child {
    let slot = shmem
        .child_slots()
        .iter()
        .position(|s| s.try_assign(ProcKind::Checkpointer))
        .unwrap();
    let interlock = std::fs::File::open(dir.join("global/pg_control")).unwrap();
    let inherit = [shmem.raw_fd(), interlock.as_raw_fd()];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_checkpointer"));
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
    .stderr(std::fs::File::create(log).unwrap())
    .env_remove("RUST_LOG");
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
    let child = cmd.spawn().expect("spawn the checkpointer");
    drop(interlock);
    child
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The checkpointer's log lines after the `[pid] checkpointer LOG:  ` prefix.
fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once("LOG:  ").map(|(_, m)| m.to_string()))
        .collect()
}

fn position(lines: &[String], prefix: &str) -> Option<usize> {
    lines.iter().position(|l| l.starts_with(prefix))
}

#[test]
fn the_checkpointer_process_serves_requests_wal_volume_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("checkpointer.log");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    prepare_data_dir(&data);
    let shmem = segment();
    startup(&shmem, &data);
    let queue = storage::shmem::checkpointer_queue(&shmem);
    let mut child = launch(&shmem, &data, &log);
    wait_for("the checkpointer's pid", Duration::from_secs(10), || {
        queue.checkpointer_pid() == child.id() as i32
    });

    // 1. A CHECKPOINT.
    request_checkpoint(&shmem, CheckpointFlags::COMMAND, || Ok(())).expect("checkpoint");
    let lines = log_lines(&log);
    assert!(
        position(&lines, "checkpoint starting: immediate force wait").is_some(),
        "{lines:?}"
    );
    assert!(
        position(&lines, "checkpoint complete: wrote").is_some(),
        "{lines:?}"
    );

    // 2. A forwarded fsync request is absorbed within its polling interval.
    let tag = SegmentTag {
        rel: REL,
        fork: ForkNumber::Main,
        segno: 0,
    };
    assert!(queue.forward(RequestKind::Fsync, tag).queued);
    wait_for("the queue to be absorbed", Duration::from_secs(5), || {
        queue.is_empty()
    });

    // 3. Dirty buffers, then more than max_wal_size of WAL: a spread
    // checkpoint starts by itself.
    storage::shmem::with_engine(&shmem, &data, false, |e| {
        e.smgr.create(REL, ForkNumber::Main, false).unwrap();
        for _ in 0..60 {
            let mut page = e
                .buffers
                .extend_buffer(&mut *e.smgr, e.wal, REL, ForkNumber::Main)
                .unwrap();
            page.mark_dirty();
        }
        // Just past the next segment boundary: after that, no more WAL, so
        // only the clock paces the checkpoint.
        let redo = e.wal.redo_ptr();
        let payload = vec![0u8; 64 * 1024];
        while e.wal.current_insert_lsn().segment() < redo.segment() + 1 {
            e.wal
                .insert(storage::recovery::noop_record(&payload))
                .unwrap();
        }
    })
    .unwrap();
    wait_for("a WAL-size checkpoint", Duration::from_secs(10), || {
        position(&log_lines(&log), "checkpoint starting: wal").is_some()
    });
    // Spread: ahead of a 0.9 × 300 s schedule, it naps 100 ms after each
    // of its 60 buffers.
    std::thread::sleep(Duration::from_millis(1500));
    let lines = log_lines(&log);
    let wal = position(&lines, "checkpoint starting: wal").unwrap();
    assert!(
        !lines[wal..]
            .iter()
            .any(|l| l.starts_with("checkpoint complete")),
        "the WAL-size checkpoint is spread, not done yet: {lines:?}"
    );
    // An immediate request ends the napping; the requested checkpoint
    // follows.
    let asked = Instant::now();
    request_checkpoint(&shmem, CheckpointFlags::COMMAND, || Ok(())).expect("checkpoint");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let lines = log_lines(&log);
    let wal = position(&lines, "checkpoint starting: wal").unwrap();
    let completions: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("checkpoint complete"))
        .map(|(i, _)| i)
        .collect();
    let second_request = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with("checkpoint starting: immediate force wait"))
        .map(|(i, _)| i)
        .nth(1)
        .expect("the second request's checkpoint");
    assert!(
        completions.iter().any(|&c| c > wal && c < second_request),
        "the WAL checkpoint completes before the requested one starts: {lines:?}"
    );
    assert!(completions.iter().any(|&c| c > second_request), "{lines:?}");

    // 4. Shutdown.
    // SAFETY: signalling our child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGUSR2);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let lines = log_lines(&log);
    let shutting = position(&lines, "shutting down").expect("shutting down");
    assert!(lines[shutting..]
        .iter()
        .any(|l| l == "checkpoint starting: shutdown immediate"));
    assert_eq!(queue.checkpointer_pid(), 0, "no more requests for it");
    let control = storage::control::ControlFile::read(&data).unwrap();
    assert_eq!(control.state, storage::control::DbState::Shutdowned);
}
