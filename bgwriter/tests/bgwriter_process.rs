//! The real bgwriter binary, launched as the postmaster launches it, on a
//! segment and data directory this test prepares (playing postmaster,
//! startup process and backend): it cleans the dirty, unused buffers ahead
//! of the clock hand once recovery has finished, and exits 0 on SIGTERM.
//! (The WAL rule on its writes is the buffer manager's, tested there.)

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shmem_layout::{ProcKind, Shmem, SizingParams};
use storage::buffer::{BufferId, BM_DIRTY};
use storage::recovery::{RedoTable, StartupOptions, WalRetention};
use storage::types::{ForkNumber, Oid, RelFileLocator, DEFAULTTABLESPACE_OID};

const NBUFFERS: u32 = 32;
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
        shared_buffers: NBUFFERS,
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
    storage::recovery::bootstrap_cluster(dir, 7_400_000_000_000_000_778, false).unwrap();
    let mut settings = conf::Settings::defaults();
    settings.set_internal("fsync", "off").unwrap();
    settings.set_internal("bgwriter_delay", "10ms").unwrap();
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

fn launch(shmem: &Shmem, dir: &Path, kind: ProcKind) -> std::process::Child {
    let slot = shmem
        .child_slots()
        .iter()
        .position(|s| s.try_assign(kind))
        .unwrap();
    let interlock = std::fs::File::open(dir.join("global/pg_control")).unwrap();
    let inherit = [shmem.raw_fd(), interlock.as_raw_fd()];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bgwriter"));
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

fn dirty_buffers(shmem: &Shmem, dir: &Path) -> usize {
    storage::shmem::with_engine(shmem, dir, false, |e| {
        let pool = e.buffers.pool();
        (0..pool.nbuffers() as u32)
            .filter(|&i| pool.buffer_info(BufferId(i)).state.has(BM_DIRTY))
            .count()
    })
    .unwrap()
}

#[test]
fn the_bgwriter_cleans_unused_buffers_once_recovery_has_finished() {
    let dir = tempfile::tempdir().unwrap();
    let shmem = segment();
    prepare(&shmem, dir.path());
    let mut child = launch(&shmem, dir.path(), ProcKind::BgWriter);

    // Every buffer dirty; one more block makes the clock sweep take every
    // usage count to zero (and write one victim itself).
    storage::shmem::with_engine(&shmem, dir.path(), false, |e| {
        e.smgr.create(REL, ForkNumber::Main, false).unwrap();
        for _ in 0..=NBUFFERS {
            let mut page = e
                .buffers
                .extend_buffer(&mut *e.smgr, e.wal, REL, ForkNumber::Main)
                .unwrap();
            page.mark_dirty();
        }
    })
    .unwrap();
    // Recovery is not finished yet: the bgwriter leaves them alone.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(dirty_buffers(&shmem, dir.path()), NBUFFERS as usize);

    storage::shmem::checkpointer_queue(&shmem).set_recovery_finished();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The newest block was just used (usage count 1): not the bgwriter's.
    while dirty_buffers(&shmem, dir.path()) > 1 {
        assert!(Instant::now() < deadline, "the bgwriter left dirty buffers");
        std::thread::sleep(Duration::from_millis(20));
    }
    let on_disk = std::fs::metadata(dir.path().join("base/5/16384"))
        .unwrap()
        .len();
    assert_eq!(on_disk, u64::from(NBUFFERS + 1) * 8192);

    // SAFETY: signalling our child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
