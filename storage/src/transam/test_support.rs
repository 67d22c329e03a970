//! Test fixtures: a transaction region and a proc array in one anonymous
//! `MAP_SHARED` mapping (threads share it; forked children inherit it at the
//! same address, as they would a real segment), and shared arrays of
//! atomics for results.

use super::shared::{init_region, Transam, TransamShared, XactEndSlot, END_SLOTS_OFFSET};
pub use crate::test_process::{fork_child, wait_child};
use shmem_layout::procarray::Proc;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8};

/// A zero-filled shared anonymous mapping of `len` bytes.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Mapping {
        let size = NonZeroUsize::new(len).expect("non-empty mapping");
        // SAFETY: a fresh anonymous mapping aliases nothing; the kernel fills
        // it with zeros and aligns it to a page.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                size,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }
        .expect("mmap of a shared anonymous region");
        Mapping {
            ptr: ptr.cast(),
            len,
        }
    }

    /// # Safety
    /// `[offset, offset + n × size_of::<T>())` lies in the mapping, is
    /// aligned for `T`, and all-zero bytes are a valid `T`.
    unsafe fn slice<T>(&self, offset: usize, n: usize) -> &[T] {
        debug_assert!(offset + n * std::mem::size_of::<T>() <= self.len);
        debug_assert_eq!(
            (self.ptr.as_ptr() as usize + offset) % std::mem::align_of::<T>(),
            0
        );
        // SAFETY: per the contract; the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset) as *const T, n) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range; no borrow outlives self.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) }.expect("munmap");
    }
}

// SAFETY: the mapping holds atomics and locks only, meant for sharing.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

/// `[TransamShared | XactEndSlot × n | Proc × n]`, initialised.
pub struct TestRegion {
    map: Mapping,
    n: usize,
}

impl TestRegion {
    pub fn new(n: usize) -> TestRegion {
        let procs_offset = END_SLOTS_OFFSET + n * std::mem::size_of::<XactEndSlot>();
        let map = Mapping::new(procs_offset + n * std::mem::size_of::<Proc>());
        let region = TestRegion { map, n };
        let t = region.transam();
        init_region(t.shared, t.end_slots);
        for p in t.procs {
            p.init();
        }
        region
    }

    pub fn transam(&self) -> Transam<'_> {
        let procs_offset = END_SLOTS_OFFSET + self.n * std::mem::size_of::<XactEndSlot>();
        // SAFETY: the offsets follow the layout above inside a mapping sized
        // for it; page alignment plus multiples of 64 satisfy every
        // alignment; TransamShared, XactEndSlot and Proc are atomics, locks
        // and byte arrays, valid when zero.
        unsafe {
            Transam::new(
                &self.map.slice::<TransamShared>(0, 1)[0],
                self.map.slice::<XactEndSlot>(END_SLOTS_OFFSET, self.n),
                self.map.slice::<Proc>(procs_offset, self.n),
            )
        }
    }
}

/// `n` shared `AtomicU64`s, zero.
pub struct SharedU64s {
    map: Mapping,
    n: usize,
}

impl SharedU64s {
    pub fn new(n: usize) -> SharedU64s {
        SharedU64s {
            map: Mapping::new(n.max(1) * 8),
            n,
        }
    }

    pub fn get(&self) -> &[AtomicU64] {
        // SAFETY: sized for n u64s at a page-aligned start; zero is valid.
        unsafe { self.map.slice(0, self.n) }
    }
}

/// `n` shared `AtomicU8`s, zero.
pub struct SharedU8s {
    map: Mapping,
    n: usize,
}

impl SharedU8s {
    pub fn new(n: usize) -> SharedU8s {
        SharedU8s {
            map: Mapping::new(n.max(1)),
            n,
        }
    }

    pub fn get(&self) -> &[AtomicU8] {
        // SAFETY: sized for n bytes; zero is valid.
        unsafe { self.map.slice(0, self.n) }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock_gettime");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
