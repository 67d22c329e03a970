//! The storage engine's regions of the shared segment: their sizes, and
//! their initialisation in a freshly created segment.
//!
//! `shmem-layout` lays the regions out but cannot name their types (this
//! crate depends on it), so the postmaster asks [`region_sizes`] for the byte
//! sizes, stores them in the segment header through `SizingParams`, creates
//! the segment, and calls [`init_regions`] once, before any child exists
//! (and again on the fresh segment of every crash cycle). Children attach
//! the same regions from the header's sizes, and build their handles with
//! [`with_engine`] (processes that hand their fsyncs to the checkpointer)
//! or [`with_checkpointing_engine`] (the checkpointer and the startup
//! process, which fsync what their checkpoints need themselves).
//!
//! # Invariants
//! 1. `init_regions` runs only on a segment no process has attached yet.
//! 2. The sizes stored in the header are the ones the structures were
//!    initialised for; each attach re-checks that the region is big enough.

use shmem_layout::{RegionId, Shmem, SizingParams};

/// PostgreSQL's automatic wal_buffers (`-1`): 1/32 of shared_buffers,
/// between 8 pages (64 kB) and one WAL segment (2048 pages).
pub fn resolve_wal_buffers_pages(wal_buffers_setting: i64, shared_buffers: u32) -> u32 {
    if wal_buffers_setting > 0 {
        return (wal_buffers_setting as u32).max(crate::wal::MIN_WAL_BUFFERS_PAGES as u32);
    }
    let segment_pages = (crate::types::WAL_SEGMENT_BYTES / crate::types::BLCKSZ as u64) as u32;
    (shared_buffers / 32).clamp(8, segment_pages)
}

/// Fills in the storage fields of `params` (shared_buffers and wal_buffers
/// must already be set).
pub fn region_sizes(params: &mut SizingParams) {
    params.buffer_pool_bytes =
        crate::buffer::shmem_size_bytes(params.shared_buffers as usize) as u64;
    params.wal_bytes = crate::wal::shmem_size_bytes(params.wal_buffers_pages as usize) as u64;
    params.clog_bytes = crate::clog::shmem_size_bytes(crate::clog::CLOG_BUFFERS) as u64;
    params.transam_bytes = (crate::transam::shmem_size_bytes(params.num_procs())
        + crate::transam::inval::shmem_size_bytes()) as u64;
    params.checkpointer_bytes = crate::checkpointer_shmem::shmem_size_bytes(
        crate::checkpointer_shmem::max_requests_for(params.shared_buffers),
    ) as u64;
    params.lock_table_bytes =
        crate::lmgr::shmem_size_bytes(params.num_procs(), params.max_locks_per_transaction) as u64;
}

/// Initialises every storage region of a new segment.
pub fn init_regions(shmem: &Shmem, fsync: bool) -> Result<(), String> {
    let p = *shmem.params();

    let (base, len) = shmem.region(RegionId::BufferPool);
    // SAFETY: the region lies inside the live mapping, is page-aligned (its
    // RegionSpec says so), zero-filled, and no other process has attached
    // the segment yet (invariant 1).
    let pool = unsafe { crate::buffer::BufferPool::attach(base, len, p.shared_buffers as usize) };
    pool.init();

    let (base, len) = shmem.region(RegionId::Wal);
    // SAFETY: as above; the region is 128-byte aligned as WAL_SHMEM_ALIGN asks.
    unsafe { crate::wal::WalRegion::init(base, len, p.wal_buffers_pages as usize, fsync) }
        .map_err(|e| format!("could not initialize WAL buffers: {e}"))?;

    let (base, len) = shmem.region(RegionId::Clog);
    let n = crate::clog::CLOG_BUFFERS;
    assert!(
        len >= crate::clog::shmem_size_bytes(n),
        "commit log region too small"
    );
    // SAFETY: the region holds a ClogShared followed by `n` ClogSlots (its
    // size is clog::shmem_size_bytes(n)), 64-byte aligned, zero-filled and
    // not yet shared; both types are valid when zero-filled.
    let (shared, slots) = unsafe {
        let shared = &*(base as *const crate::clog::ClogShared);
        let slots_base = base.add(std::mem::size_of::<crate::clog::ClogShared>())
            as *const crate::clog::ClogSlot;
        (shared, std::slice::from_raw_parts(slots_base, n))
    };
    crate::clog::init_pool(shared, slots);

    let (base, len) = shmem.region(RegionId::Transam);
    let nprocs = p.num_procs();
    assert!(
        len >= crate::transam::shmem_size_bytes(nprocs),
        "transaction region too small"
    );
    // SAFETY: the region holds a TransamShared followed by one XactEndSlot
    // per proc entry at END_SLOTS_OFFSET; zero-filled, aligned, not shared yet.
    let (shared, end_slots) = unsafe {
        let shared = &*(base as *const crate::transam::TransamShared);
        let slots_base = base.add(crate::transam::shared::END_SLOTS_OFFSET)
            as *const crate::transam::XactEndSlot;
        (shared, std::slice::from_raw_parts(slots_base, nprocs))
    };
    crate::transam::shared::init_region(shared, end_slots);
    inval_queue(shmem).init();
    checkpointer_queue(shmem).init();
    lock_table(shmem).init();
    Ok(())
}

/// The heavyweight lock table in the segment; a process that takes locks
/// wraps it in its `lmgr::LockManager` with the proc array.
pub fn lock_table(shmem: &Shmem) -> crate::lmgr::LockTable<'_> {
    let (base, len) = shmem.region(RegionId::LockTable);
    let p = shmem.params();
    let size = crate::lmgr::LockTableSize::new(p.num_procs(), p.max_locks_per_transaction);
    // SAFETY: the region lies in the live mapping, 128-byte aligned (its
    // RegionSpec), sized by `region_sizes` for these same parameters,
    // zero-filled or initialised by `init_regions`; it stays mapped while
    // `shmem` is borrowed.
    unsafe { crate::lmgr::LockTable::attach(base, len, size) }
}

/// The shared invalidation queue: after the transaction state's end slots,
/// in the same region.
pub fn inval_queue(shmem: &Shmem) -> &crate::transam::inval::SharedInvalQueue {
    let (base, len) = shmem.region(RegionId::Transam);
    let offset = crate::transam::shmem_size_bytes(shmem.params().num_procs());
    assert!(
        len >= offset + crate::transam::inval::shmem_size_bytes(),
        "transaction region too small"
    );
    // SAFETY: `region_sizes` made room for the queue at this offset, which
    // is 64-byte aligned (a multiple of 64 from a 64-aligned region); the
    // queue is atomics and a spinlock, valid when zero-filled.
    unsafe { &*(base.add(offset) as *const crate::transam::inval::SharedInvalQueue) }
}

/// The checkpointer's requests and fsync queue in the segment.
pub fn checkpointer_queue(shmem: &Shmem) -> crate::checkpointer_shmem::CheckpointerQueue<'_> {
    let (base, len) = shmem.region(RegionId::Checkpointer);
    // SAFETY: the region lies in the live mapping, 64-byte aligned, sized
    // by `region_sizes`, zero-filled or initialised by `init_regions`; it
    // stays mapped while `shmem` is borrowed.
    unsafe { crate::checkpointer_shmem::CheckpointerQueue::attach(base, len) }
}

/// This process's handle on the shared WAL (the walwriter needs nothing
/// else; the checkpointer polls the insert position with it).
pub fn attach_wal<'a>(
    shmem: &'a Shmem,
    data_dir: &std::path::Path,
) -> Result<crate::wal::SharedWal<'a>, pgerror::PgError> {
    let (base, len) = shmem.region(RegionId::Wal);
    // SAFETY: the WAL region of the live segment, initialised by the
    // postmaster; mapped while `shmem` is borrowed.
    let region = unsafe { crate::wal::WalRegion::attach(base, len) }
        .map_err(|e| pgerror::PgError::internal(format!("could not attach WAL buffers: {e}")))?;
    Ok(crate::wal::SharedWal::new(region, data_dir.join("pg_wal")))
}

/// The commit log's shared header and slots inside its region.
pub fn clog_parts(shmem: &Shmem) -> (&crate::clog::ClogShared, &[crate::clog::ClogSlot]) {
    let (base, len) = shmem.region(RegionId::Clog);
    let n = crate::clog::CLOG_BUFFERS;
    assert!(
        len >= crate::clog::shmem_size_bytes(n),
        "commit log region too small"
    );
    // SAFETY: the region holds a ClogShared followed by `n` ClogSlots,
    // 64-byte aligned, initialised by `init_regions`; it stays mapped as
    // long as `shmem` is borrowed.
    unsafe {
        let shared = &*(base as *const crate::clog::ClogShared);
        let slots = base.add(std::mem::size_of::<crate::clog::ClogShared>())
            as *const crate::clog::ClogSlot;
        (shared, std::slice::from_raw_parts(slots, n))
    }
}

/// The transaction state's header and wait slots inside its region.
pub fn transam_parts(
    shmem: &Shmem,
) -> (
    &crate::transam::TransamShared,
    &[crate::transam::XactEndSlot],
) {
    let (base, len) = shmem.region(RegionId::Transam);
    let n = shmem.params().num_procs();
    assert!(
        len >= crate::transam::shmem_size_bytes(n),
        "transaction region too small"
    );
    // SAFETY: as in `clog_parts`, for a TransamShared and `n` XactEndSlots.
    unsafe {
        let shared = &*(base as *const crate::transam::TransamShared);
        let slots = base.add(crate::transam::shared::END_SLOTS_OFFSET)
            as *const crate::transam::XactEndSlot;
        (shared, std::slice::from_raw_parts(slots, n))
    }
}

/// Builds this process's handles on the storage regions (WAL, buffer pool,
/// commit log, transaction state) and its own storage manager, and runs `f`
/// with them. For every process that does not run checkpoints itself
/// (backends, bgwriter, autovacuum): its storage manager hands fsync and
/// tombstone requests to the checkpointer (`checkpointer_shmem` rule F1).
pub fn with_engine<R>(
    shmem: &Shmem,
    data_dir: &std::path::Path,
    fsync: bool,
    f: impl FnOnce(&mut crate::recovery::EngineContext<'_, '_>) -> R,
) -> Result<R, pgerror::PgError> {
    let forwarder = crate::checkpointer_shmem::SharedSyncForwarder::new(shmem)
        .map_err(|e| pgerror::PgError::internal(format!("could not map shared memory: {e}")))?;
    engine(shmem, data_dir, fsync, Some(Box::new(forwarder)), f)
}

/// [`with_engine`] for the two processes that write checkpoints: the
/// checkpointer and the startup process (its end-of-recovery checkpoint).
/// Their storage manager keeps its own fsync set and tombstones, which
/// their checkpoints take.
pub fn with_checkpointing_engine<R>(
    shmem: &Shmem,
    data_dir: &std::path::Path,
    fsync: bool,
    f: impl FnOnce(&mut crate::recovery::EngineContext<'_, '_>) -> R,
) -> Result<R, pgerror::PgError> {
    engine(shmem, data_dir, fsync, None, f)
}

fn engine<R>(
    shmem: &Shmem,
    data_dir: &std::path::Path,
    fsync: bool,
    forwarder: Option<Box<dyn crate::smgr::SyncRequestForwarder>>,
    f: impl FnOnce(&mut crate::recovery::EngineContext<'_, '_>) -> R,
) -> Result<R, pgerror::PgError> {
    let p = *shmem.params();
    let wal = attach_wal(shmem, data_dir)?;
    let (base, len) = shmem.region(RegionId::BufferPool);
    // SAFETY: the buffer pool region, initialised for `shared_buffers`.
    let pool = unsafe { crate::buffer::BufferPool::attach(base, len, p.shared_buffers as usize) };
    let mut buffers = crate::buffer::BufferManager::new(pool);
    let files = crate::clog::SlruFiles::new(data_dir).with_fsync(fsync);
    let (clog_shared, clog_slots) = clog_parts(shmem);
    let clog = crate::clog::Clog::new(clog_shared, clog_slots, &files, &wal);
    let (ts, end_slots) = transam_parts(shmem);
    let transam = crate::transam::Transam::new(ts, end_slots, shmem.procs());
    let mut smgr = crate::smgr::Smgr::new(
        data_dir,
        crate::smgr::SmgrOptions {
            fsync,
            ..Default::default()
        },
    );
    if let Some(forwarder) = forwarder {
        smgr.set_sync_forwarder(forwarder)
            .map_err(pgerror::PgError::from)?;
    }
    let mut ctx = crate::recovery::EngineContext {
        data_dir,
        wal: &wal,
        buffers: &mut buffers,
        clog: &clog,
        transam,
        smgr: &mut smgr,
    };
    Ok(f(&mut ctx))
}

/// The resource managers whose pages the startup process replays.
pub fn redo_table() -> crate::recovery::RedoTable {
    let mut t = crate::recovery::RedoTable::new();
    t.register(crate::wal::ResourceManager::Heap, crate::heap::heap_redo);
    t.register(crate::wal::ResourceManager::Btree, crate::btree::btree_redo);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_buffers_follow_postgres_automatic_rule() {
        assert_eq!(resolve_wal_buffers_pages(-1, 16384), 512);
        assert_eq!(resolve_wal_buffers_pages(-1, 16), 8);
        assert_eq!(resolve_wal_buffers_pages(-1, 1 << 20), 2048);
        assert_eq!(resolve_wal_buffers_pages(64, 16384), 64);
    }

    #[test]
    fn a_real_segment_holds_every_storage_region() {
        let mut p = SizingParams {
            max_connections: 5,
            superuser_reserved_connections: 1,
            autovacuum_max_workers: 1,
            track_activity_query_size: 128,
            shared_buffers: 32,
            wal_buffers_pages: 8,
            max_locks_per_transaction: 64,
            buffer_pool_bytes: 0,
            wal_bytes: 0,
            clog_bytes: 0,
            transam_bytes: 0,
            checkpointer_bytes: 0,
            lock_table_bytes: 0,
        };
        region_sizes(&mut p);
        let shm = Shmem::create(p, 1).unwrap();
        init_regions(&shm, false).unwrap();
        let (base, len) = shm.region(RegionId::BufferPool);
        assert_eq!(base as usize % 4096, 0);
        // SAFETY: attaching the pool just initialised, in this process.
        let pool = unsafe { crate::buffer::BufferPool::attach(base, len, 32) };
        assert!(pool.is_initialized());
        let (base, len) = shm.region(RegionId::Wal);
        // SAFETY: the WAL region just initialised.
        assert!(unsafe { crate::wal::WalRegion::attach(base, len) }.is_ok());
        let (locks, proclocks) = lock_table(&shm).free_counts();
        assert_eq!(
            (locks, proclocks),
            (64 * p.num_procs(), 128 * p.num_procs())
        );
    }
}
