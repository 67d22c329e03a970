//! Test support: a cluster as the server runs it, in one test process. A
//! real shared segment (memfd) laid out and initialised as the postmaster
//! does (`shmem::region_sizes`, `shmem::init_regions`), a bootstrapped data
//! directory, and recovery run as the startup process does, so that WAL
//! insertion is open. Forked children inherit the mapping and use the same
//! [`Shmem`] as processes of one cluster.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use shmem_layout::procarray::Proc;
use shmem_layout::{ProcKind, Shmem, SizingParams};

use crate::recovery::{EngineContext, RedoTable, StartupOptions, WalRetention};

pub const SYSTEM_ID: u64 = 7_400_000_000_000_000_123;

/// A started cluster: segment and data directory.
pub struct TestCluster {
    pub shmem: Shmem,
    pub dir: tempfile::TempDir,
    pub fsync: bool,
}

impl TestCluster {
    /// Creates, bootstraps and recovers a cluster; `fsync` is the setting
    /// for WAL and relation files (forwarding of fsync requests only
    /// happens with it on).
    pub fn start(fsync: bool) -> TestCluster {
        let mut params = SizingParams {
            max_connections: 4,
            superuser_reserved_connections: 0,
            autovacuum_max_workers: 1,
            track_activity_query_size: 128,
            shared_buffers: 32,
            wal_buffers_pages: 16,
            max_locks_per_transaction: 64,
            buffer_pool_bytes: 0,
            wal_bytes: 0,
            clog_bytes: 0,
            transam_bytes: 0,
            checkpointer_bytes: 0,
            lock_table_bytes: 0,
        };
        crate::shmem::region_sizes(&mut params);
        let shmem = Shmem::create(params, std::process::id() as i32).expect("segment");
        crate::shmem::init_regions(&shmem, fsync).expect("init regions");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("base")).expect("base/");
        crate::recovery::bootstrap_cluster(dir.path(), SYSTEM_ID, false).expect("bootstrap");
        let cluster = TestCluster { shmem, dir, fsync };
        let table = RedoTable::new();
        let options = StartupOptions {
            redo: &table,
            end_of_recovery_checkpoint: true,
            wal_retention: WalRetention::default(),
            may_remove: &|_| true,
        };
        cluster
            .checkpointing_engine(|e| crate::recovery::startup(e, &options))
            .expect("startup");
        crate::shmem::checkpointer_queue(&cluster.shmem).set_recovery_finished();
        cluster
    }

    /// A backend's or bgwriter's handles (fsyncs forwarded).
    pub fn engine<R>(&self, f: impl FnOnce(&mut EngineContext<'_, '_>) -> R) -> R {
        crate::shmem::with_engine(&self.shmem, self.dir.path(), self.fsync, f).expect("engine")
    }

    /// The checkpointer's or startup process's handles (own fsync set).
    pub fn checkpointing_engine<R>(&self, f: impl FnOnce(&mut EngineContext<'_, '_>) -> R) -> R {
        crate::shmem::with_checkpointing_engine(&self.shmem, self.dir.path(), self.fsync, f)
            .expect("engine")
    }

    /// Claims backend proc entry `i` for the calling process.
    pub fn backend_proc(&self, i: usize) -> &Proc {
        let p = &self.shmem.backend_procs()[i];
        assert!(p.try_claim(), "backend proc {i} is taken");
        p.set_owner(std::process::id() as i32, ProcKind::Backend, 0);
        p
    }

    pub fn queue(&self) -> crate::checkpointer_shmem::CheckpointerQueue<'_> {
        crate::shmem::checkpointer_queue(&self.shmem)
    }
}

/// A value in zero-filled `MAP_SHARED` anonymous memory that forked
/// children share with the test; leaked (a few bytes per test).
pub fn shared<T>() -> &'static T {
    let len = std::num::NonZeroUsize::new(std::mem::size_of::<T>().max(1)).expect("non-zero");
    // SAFETY: a fresh anonymous mapping aliases nothing; the types used
    // here (atomics) are valid when zero-filled; it is never unmapped.
    unsafe {
        let ptr = nix::sys::mman::mmap_anonymous(
            None,
            len,
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_SHARED,
        )
        .expect("shared mapping");
        &*(ptr.as_ptr() as *const T)
    }
}

/// Monotonic clock in nanoseconds, comparable across forked processes.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into our timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Shared counters for tests.
#[derive(Default)]
#[repr(C)]
pub struct Flags {
    pub a: AtomicU64,
    pub b: AtomicU64,
    pub c: AtomicU64,
    pub pid: AtomicI32,
}

impl Flags {
    /// Spins (1 ms naps) until `f` holds, up to 10 s.
    pub fn wait_until(&self, what: &str, f: impl Fn(&Flags) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !f(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub fn load(a: &AtomicU64) -> u64 {
        a.load(Ordering::SeqCst)
    }
}
