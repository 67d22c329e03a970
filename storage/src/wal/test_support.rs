//! Helpers shared by the WAL tests.

/// A tiny deterministic xorshift generator, so fuzz loops need no `rand`.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `0..n` for tests (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` zero bytes in a `MAP_SHARED | MAP_ANONYMOUS` mapping: forked
/// children inherit it at the same address, as they would the segment.
/// Page-aligned, so it satisfies any region alignment.
pub struct SharedBytes {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the bytes are plain shared memory; the code under test
// synchronises its own accesses (that is what it is tested for).
unsafe impl Send for SharedBytes {}
// SAFETY: as for Send.
unsafe impl Sync for SharedBytes {}

impl SharedBytes {
    pub fn new(len: usize) -> SharedBytes {
        let nz = std::num::NonZeroUsize::new(len).expect("a non-empty mapping");
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
        SharedBytes {
            ptr: ptr.cast(),
            len,
        }
    }

    pub fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range; regions borrowed from it
        // do not outlive it in the tests.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), self.len) }.expect("munmap");
    }
}
