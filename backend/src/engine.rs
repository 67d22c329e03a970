//! A backend's handles on the storage engine: WAL, buffer pool, commit log,
//! proc array, its own relation files (`Smgr`), and the shared invalidation
//! queue — built once after the backend attached the segment, and kept for
//! the whole session.
//!
//! The handles borrow the shared segment. A backend lives exactly as long
//! as its mapping, so the engine maps the segment a second time (a `dup` of
//! the descriptor the postmaster passed) and leaks that mapping: the
//! handles are `'static`, and the session can own them next to the
//! `ChildContext` without borrowing from it. The mapping goes away when the
//! process exits.
//!
//! # Invariants
//!
//! 1. One `Engine` per process, made after the proc entry was claimed.
//! 2. Nothing here is shared between processes except through the segment.

use std::path::PathBuf;

use launch::ChildContext;
use pgerror::{PgError, PgResult};
use shmem_layout::procarray::Proc;
use shmem_layout::Shmem;
use storage::buffer::BufferManager;
use storage::clog::{Clog, SlruFiles};
use storage::heap::HeapContext;
use storage::recovery::EngineContext;
use storage::smgr::{Smgr, SmgrOptions};
use storage::transam::inval::SharedInvalQueue;
use storage::transam::Transam;
use storage::types::Oid;
use storage::wal::SharedWal;

pub struct Engine {
    pub shmem: &'static Shmem,
    pub data_dir: PathBuf,
    pub wal: &'static SharedWal<'static>,
    pub buffers: BufferManager<'static>,
    pub clog: Clog<'static>,
    pub transam: Transam<'static>,
    pub smgr: Smgr,
    pub inval: &'static SharedInvalQueue,
    /// This backend's proc entry.
    pub proc: &'static Proc,
    /// Heavyweight locks: tables for the transaction, and its transaction
    /// id (row-level waits).
    pub locks: storage::lmgr::LockManager<'static>,
    /// The database this session is connected to (0 before it is known).
    pub db: Oid,
}

impl Engine {
    /// Attaches every storage region for this process (invariant 1).
    pub fn attach(ctx: &ChildContext, proc_index: usize) -> PgResult<Engine> {
        // SAFETY: dup of the segment descriptor the launch protocol passed
        // us; the copy is owned by the second mapping below.
        let fd = unsafe { libc::dup(ctx.args.shmem_fd) };
        if fd < 0 {
            return Err(PgError::internal(format!(
                "could not duplicate the shared memory descriptor: {}",
                std::io::Error::last_os_error()
            )));
        }
        let shmem: &'static Shmem = Box::leak(Box::new(
            Shmem::attach(fd).map_err(|e| PgError::internal(e.to_string()))?,
        ));
        let data_dir = ctx.args.data_dir.clone();
        let fsync = ctx.settings.get_bool("fsync");
        let p = *shmem.params();
        let (base, len) = shmem.region(shmem_layout::RegionId::Wal);
        // SAFETY: the WAL region of the live segment, initialised by the
        // postmaster; mapped for the rest of the process (leaked above).
        let region = unsafe { storage::wal::WalRegion::attach(base, len) }
            .map_err(|e| PgError::internal(format!("could not attach WAL buffers: {e}")))?;
        let wal: &'static SharedWal<'static> =
            Box::leak(Box::new(SharedWal::new(region, data_dir.join("pg_wal"))));
        let (base, len) = shmem.region(shmem_layout::RegionId::BufferPool);
        // SAFETY: the buffer pool region, initialised for `shared_buffers`.
        let pool =
            unsafe { storage::buffer::BufferPool::attach(base, len, p.shared_buffers as usize) };
        let files: &'static SlruFiles =
            Box::leak(Box::new(SlruFiles::new(&data_dir).with_fsync(fsync)));
        let (clog_shared, clog_slots) = storage::shmem::clog_parts(shmem);
        let clog = Clog::new(clog_shared, clog_slots, files, wal);
        let (ts, end_slots) = storage::shmem::transam_parts(shmem);
        let transam = Transam::new(ts, end_slots, shmem.procs());
        let mut smgr = Smgr::new(
            &data_dir,
            SmgrOptions {
                fsync,
                ..Default::default()
            },
        );
        // Fsyncs and tombstones of the files this backend writes go to the
        // checkpointer before each write returns.
        let forwarder = storage::checkpointer_shmem::SharedSyncForwarder::new(shmem)
            .map_err(|e| PgError::internal(format!("could not map shared memory: {e}")))?;
        smgr.set_sync_forwarder(Box::new(forwarder))?;
        Ok(Engine {
            shmem,
            data_dir,
            wal,
            buffers: BufferManager::new(pool),
            clog,
            transam,
            smgr,
            inval: storage::shmem::inval_queue(shmem),
            proc: &shmem.procs()[proc_index],
            locks: storage::lmgr::LockManager::new(
                storage::shmem::lock_table(shmem),
                shmem.procs(),
                proc_index,
            ),
            db: Oid(0),
        })
    }

    /// What heap access needs, borrowed for one operation.
    pub fn heap_ctx(&mut self) -> HeapContext<'_, 'static> {
        HeapContext {
            buffers: &self.buffers,
            smgr: &mut self.smgr,
            wal: self.wal,
            transam: &self.transam,
            clog: &self.clog,
            xid_waiter: Some(&mut self.locks),
        }
    }

    /// The same handles as the recovery and checkpoint code takes them.
    pub fn engine_ctx(&mut self) -> EngineContext<'_, 'static> {
        EngineContext {
            data_dir: &self.data_dir,
            wal: self.wal,
            buffers: &mut self.buffers,
            clog: &self.clog,
            transam: self.transam,
            smgr: &mut self.smgr,
        }
    }
}
