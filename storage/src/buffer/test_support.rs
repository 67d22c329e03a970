//! Test fixtures: a pool in an anonymous shared mapping (forked children
//! inherit it, as they would the segment), a data directory with one
//! relation, a storage wrapper that counts, slows or fails I/O, and WAL
//! stand-ins.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pgerror::PgError;

use super::manager::BlockStorage;
use super::pool::{shmem_size_bytes, BufferPool};
use crate::page::Page;
use crate::smgr::{Smgr, SmgrError, SmgrOptions};
use crate::types::DEFAULTTABLESPACE_OID;
use crate::types::{BlockNumber, ForkNumber, Lsn, Oid, RelFileLocator, BLCKSZ};

/// Zero-filled `MAP_SHARED | MAP_ANONYMOUS` memory.
pub struct SharedRegion {
    ptr: NonNull<u8>,
    len: usize,
}

impl SharedRegion {
    pub fn new(len: usize) -> SharedRegion {
        let nz = NonZeroUsize::new(len).expect("non-empty region");
        // SAFETY: a fresh anonymous mapping aliases nothing.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                nz,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }
        .expect("mmap of a shared anonymous region");
        SharedRegion {
            ptr: ptr.cast(),
            len,
        }
    }

    pub fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The region as a `T` (all-zero must be a valid `T`; it is, for the
    /// atomics-only structs of these tests).
    pub fn as_ref<T>(&self) -> &T {
        assert!(std::mem::size_of::<T>() <= self.len);
        // SAFETY: mapped, page aligned, zero-filled atomics, alive with self.
        unsafe { &*(self.ptr.as_ptr() as *const T) }
    }

    /// A pool of `nbuffers` laid out in this region (not initialised).
    pub fn pool(&self, nbuffers: usize) -> BufferPool<'_> {
        // SAFETY: the region is page aligned, large enough (asserted by
        // attach), zero-filled or laid out for the same nbuffers by the
        // caller, and mapped for as long as the borrow of self.
        unsafe { BufferPool::attach(self.base(), self.len, nbuffers) }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range; no borrow outlives self.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) }.expect("munmap");
    }
}

/// A region holding an initialised pool of `nbuffers`.
pub fn pool_region(nbuffers: usize) -> SharedRegion {
    let region = SharedRegion::new(shmem_size_bytes(nbuffers));
    region.pool(nbuffers).init();
    region
}

pub const REL: RelFileLocator = RelFileLocator {
    spc_oid: DEFAULTTABLESPACE_OID,
    db_oid: Oid(5),
    rel_number: Oid(16384),
};
pub const MAIN: ForkNumber = ForkNumber::Main;

pub fn smgr_options() -> SmgrOptions {
    SmgrOptions {
        fsync: false,
        ..SmgrOptions::default()
    }
}

/// A temporary data directory with `REL` created (empty).
pub fn data_dir() -> (tempfile::TempDir, Smgr) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("base")).expect("create base/");
    let mut smgr = Smgr::new(dir.path(), smgr_options());
    smgr.create(REL, MAIN, false).expect("create relation");
    (dir, smgr)
}

/// Put `n` formatted, checksummed blocks (stamped with their number) on
/// disk, past the pool.
pub fn write_blocks(smgr: &mut Smgr, n: u32) {
    for b in 0..n {
        let mut page = [0u8; BLCKSZ];
        format_page(&mut page, u64::from(b));
        crate::page::set_checksum(&mut page, BlockNumber(b));
        smgr.extend(REL, MAIN, BlockNumber(b), &page)
            .expect("extend");
    }
}

/// Block `blkno` of `REL` as it is on disk now, read past the pool.
pub fn disk_page(dir: &std::path::Path, blkno: u32) -> Box<[u8; BLCKSZ]> {
    let mut smgr = Smgr::new(dir, smgr_options());
    let mut page = Box::new([0u8; BLCKSZ]);
    smgr.read(REL, MAIN, BlockNumber(blkno), &mut page)
        .expect("read block from disk");
    page
}

/// Byte `at` of the special space of a page formatted by `format_page`.
pub const SPECIAL_BYTES: usize = 64;

/// Format `page` as an empty page with a 64-byte special space holding
/// `stamp` as its first eight bytes.
pub fn format_page(page: &mut [u8; BLCKSZ], stamp: u64) {
    let mut p = Page::new(page);
    p.init(SPECIAL_BYTES);
    p.special_mut().expect("fresh page")[..8].copy_from_slice(&stamp.to_le_bytes());
}

/// The `i`-th u64 of the special space.
pub fn special_u64(page: &[u8; BLCKSZ], i: usize) -> u64 {
    let off = BLCKSZ - SPECIAL_BYTES + 8 * i;
    u64::from_le_bytes(page[off..off + 8].try_into().expect("8 bytes"))
}

pub fn set_special_u64(page: &mut [u8; BLCKSZ], i: usize, v: u64) {
    let off = BLCKSZ - SPECIAL_BYTES + 8 * i;
    page[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// WAL that is always flushed far enough.
pub fn no_wal(_: Lsn) -> Result<(), PgError> {
    Ok(())
}

/// The WAL as the buffer manager sees it: how far it was asked to flush.
/// Atomics only, so it can live in a shared mapping.
#[derive(Default)]
pub struct FakeWal {
    pub flushed: AtomicU64,
    pub calls: AtomicU64,
    /// Next LSN handed out to page changes.
    pub next_lsn: AtomicU64,
}

impl FakeWal {
    pub fn flush(&self, lsn: Lsn) -> Result<(), PgError> {
        self.flushed.fetch_max(lsn.0, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// An LSN for a new change: above everything handed out before.
    pub fn insert(&self) -> Lsn {
        Lsn(self.next_lsn.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// Counters a [`TestStorage`] updates; atomics, so that they can sit in
/// a shared mapping and be summed over processes.
#[derive(Default)]
pub struct IoCounters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub fail_writes: AtomicBool,
    /// Microseconds each read sleeps first (to make reads overlap).
    pub read_delay_us: AtomicU64,
}

/// [`Smgr`] with counted, optionally slow reads and optionally failing writes.
pub struct TestStorage<'c> {
    pub smgr: Smgr,
    pub io: &'c IoCounters,
}

impl BlockStorage for TestStorage<'_> {
    fn nblocks(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<u32, SmgrError> {
        self.smgr.nblocks(rel, fork)
    }

    fn read(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &mut [u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        self.io.reads.fetch_add(1, Ordering::SeqCst);
        let delay = self.io.read_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
        self.smgr.read(rel, fork, blkno, page)
    }

    fn write(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        if self.io.fail_writes.load(Ordering::SeqCst) {
            return Err(SmgrError::Write {
                path: crate::smgr::relpath(rel, fork),
                blkno: blkno.0,
                source: std::io::Error::from_raw_os_error(libc::ENOSPC),
            });
        }
        self.io.writes.fetch_add(1, Ordering::SeqCst);
        self.smgr.write(rel, fork, blkno, page)
    }

    fn extend(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        self.smgr.extend(rel, fork, blkno, page)
    }

    fn create_fork(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<(), SmgrError> {
        BlockStorage::create_fork(&mut self.smgr, rel, fork)
    }

    fn truncate(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: u32,
    ) -> Result<(), SmgrError> {
        self.smgr.truncate(rel, fork, nblocks)
    }
}
