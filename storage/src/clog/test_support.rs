//! Test fixtures: a pool in an anonymous shared mapping, a data directory,
//! and a WAL stand-in that records how far it was asked to flush.

use super::buffers::ClogBuffers;
use super::files::SlruFiles;
use crate::types::Lsn;
use pgerror::PgError;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// A zero-filled `T` in a `MAP_SHARED | MAP_ANONYMOUS` mapping: forked
/// children inherit it at the same address, as they would a real segment.
pub struct SharedMapping<T> {
    ptr: NonNull<T>,
}

impl<T> SharedMapping<T> {
    /// # Safety
    ///
    /// All-zero bytes must be a valid `T`.
    pub unsafe fn zeroed() -> SharedMapping<T> {
        let len = NonZeroUsize::new(std::mem::size_of::<T>()).expect("T is not zero-sized");
        // SAFETY: a fresh anonymous mapping aliases nothing; the kernel fills
        // it with zeros, which the caller promises is a valid T, and aligns it
        // to a page, more than any T here needs.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                len,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }
        .expect("mmap of a shared anonymous region");
        SharedMapping { ptr: ptr.cast() }
    }
}

impl<T> Deref for SharedMapping<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: mapped, zero-initialised (valid per `zeroed`'s contract)
        // and alive until drop.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for SharedMapping<T> {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and no reference outlives self.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), std::mem::size_of::<T>()) }
            .expect("munmap");
    }
}

/// A fresh, initialised pool of `N` slots in shared memory.
pub fn shared_pool<const N: usize>() -> SharedMapping<ClogBuffers<N>> {
    // SAFETY: a ClogBuffers is atomics, locks and byte arrays, all valid
    // when zero (invariant I8).
    let pool = unsafe { SharedMapping::<ClogBuffers<N>>::zeroed() };
    pool.init();
    pool
}

/// A temporary data directory with an empty `pg_xact`.
pub fn data_dir() -> (tempfile::TempDir, SlruFiles) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = SlruFiles::new(dir.path());
    files.create_dir().expect("create pg_xact");
    (dir, files)
}

/// The WAL as far as the commit log sees it: how far it has been flushed.
/// Lives in shared memory in cross-process tests.
#[derive(Default)]
pub struct FakeWal {
    pub flushed: AtomicU64,
    pub flush_calls: AtomicU64,
}

impl FakeWal {
    pub fn flush(&self, lsn: Lsn) -> Result<(), PgError> {
        self.flushed.fetch_max(lsn.0, Ordering::SeqCst);
        self.flush_calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    pub fn flushed(&self) -> Lsn {
        Lsn(self.flushed.load(Ordering::SeqCst))
    }
}
