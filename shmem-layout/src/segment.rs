//! The shared-memory segment: a memfd mapped `MAP_SHARED` in every process.
//!
//! The postmaster creates the segment with [`Segment::create`]; every child
//! re-attaches it with [`Segment::attach`] from the descriptor number it
//! inherits across fork+exec (BRIEF §3). The segment is mapped at a different
//! address in every process, so nothing stored in it may be a pointer: shared
//! structures refer to each other by offset from the segment's start.
//!
//! # Invariants
//! 1. The whole size is reserved with `fallocate` at creation, so touching
//!    any page can never SIGBUS for lack of memory; running out is an error
//!    at start instead.
//! 2. The memory reads as zeroes right after creation (memfd pages start
//!    zero-filled); region init functions rely on it.
//! 3. A [`Segment`] unmaps on drop; references handed out by [`Segment::at`]
//!    borrow the segment, so none outlives the mapping.
//!
//! # Crash safety
//! A memfd has no name in any filesystem: when the last process holding the
//! descriptor or a mapping exits, the kernel frees it. Nothing is left in
//! `/dev/shm` after a crash (docs/decisions/0001-memfd-segment.md).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// Errors creating or attaching the segment.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("could not create shared memory segment: {0}")]
    Create(std::io::Error),
    #[error("could not reserve {size_bytes} bytes of shared memory: {source}")]
    Reserve {
        size_bytes: usize,
        source: std::io::Error,
    },
    #[error("could not map shared memory segment: {0}")]
    Map(std::io::Error),
    #[error("shared memory descriptor {fd} is not usable: {source}")]
    BadHandle { fd: RawFd, source: std::io::Error },
    #[error("shared memory segment is invalid: {0}")]
    Invalid(String),
}

/// A mapping of the shared segment in this process.
pub struct Segment {
    fd: OwnedFd,
    base: NonNull<u8>,
    size_bytes: usize,
}

// SAFETY: the mapping is process-shared memory accessed only through atomics
// and locks that live inside it; the Segment itself is just a handle.
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    /// Creates a new zero-filled segment of `size_bytes`, fully reserved.
    pub fn create(size_bytes: usize) -> Result<Segment, SegmentError> {
        let name = CString::new("pgrust shared memory").expect("no NUL in literal");
        // SAFETY: plain syscall with a valid C string.
        let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(SegmentError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: memfd_create returned a fresh descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: valid descriptor; fallocate reserves the pages now.
        let rc = unsafe { libc::fallocate(fd.as_raw_fd(), 0, 0, size_bytes as libc::off_t) };
        if rc != 0 {
            return Err(SegmentError::Reserve {
                size_bytes,
                source: std::io::Error::last_os_error(),
            });
        }
        Self::map(fd, size_bytes)
    }

    /// Attaches the segment whose descriptor this process inherited.
    ///
    /// Takes ownership of `fd`. The size is read from the descriptor itself.
    pub fn attach(fd: RawFd) -> Result<Segment, SegmentError> {
        // SAFETY: fstat on an arbitrary descriptor number is harmless; a bad
        // one fails with EBADF.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(SegmentError::BadHandle {
                fd,
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: fstat succeeded, so `fd` is an open descriptor we were
        // handed to own (the launch protocol passes it for that purpose).
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // Keep it from leaking into anything this child execs.
        let _ = nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        Self::map(owned, st.st_size as usize)
    }

    fn map(fd: OwnedFd, size_bytes: usize) -> Result<Segment, SegmentError> {
        if size_bytes == 0 {
            return Err(SegmentError::Invalid("size is zero".into()));
        }
        // SAFETY: mapping a descriptor we own, shared, for its whole size.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(SegmentError::Map(std::io::Error::last_os_error()));
        }
        Ok(Segment {
            fd,
            base: NonNull::new(addr as *mut u8).expect("mmap never returns NULL on success"),
            size_bytes,
        })
    }

    /// The descriptor number to pass to a child (`--shmem <fd>`).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Base address of the mapping in this process.
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// A shared reference to a `T` at `offset`.
    ///
    /// # Panics
    /// If the object does not fit in the segment or is misaligned: offsets
    /// come from the layout computed in this crate, so either is a bug.
    pub fn at<T>(&self, offset: usize) -> &T {
        assert!(
            offset
                .checked_add(std::mem::size_of::<T>())
                .is_some_and(|end| end <= self.size_bytes),
            "object at offset {offset} overruns the segment"
        );
        let ptr = self.base.as_ptr().wrapping_add(offset);
        assert_eq!(
            ptr as usize % std::mem::align_of::<T>(),
            0,
            "misaligned shared object"
        );
        // SAFETY: in bounds and aligned (checked above); shared types are
        // #[repr(C)] structures of atomics and lock-protected cells that are
        // valid for any bit pattern the init functions leave.
        unsafe { &*(ptr as *const T) }
    }

    /// A shared slice of `len` `T`s starting at `offset`.
    pub fn slice_at<T>(&self, offset: usize, len: usize) -> &[T] {
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len)
            .expect("slice size overflow");
        assert!(
            offset
                .checked_add(bytes)
                .is_some_and(|end| end <= self.size_bytes),
            "slice at offset {offset} overruns the segment"
        );
        let ptr = self.base.as_ptr().wrapping_add(offset);
        assert_eq!(
            ptr as usize % std::mem::align_of::<T>(),
            0,
            "misaligned shared slice"
        );
        // SAFETY: as in `at`.
        unsafe { std::slice::from_raw_parts(ptr as *const T, len) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mapped in `map`.
        unsafe {
            libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.size_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_zeroed_and_attach_sees_the_same_memory() {
        let seg = Segment::create(1 << 20).unwrap();
        let word: &std::sync::atomic::AtomicU64 = seg.at(4096);
        assert_eq!(word.load(std::sync::atomic::Ordering::Relaxed), 0);
        word.store(42, std::sync::atomic::Ordering::Relaxed);
        let dup = nix::unistd::dup(&seg.fd).unwrap();
        let other = Segment::attach(std::os::fd::IntoRawFd::into_raw_fd(dup)).unwrap();
        assert_eq!(other.size_bytes(), 1 << 20);
        let w2: &std::sync::atomic::AtomicU64 = other.at(4096);
        assert_eq!(w2.load(std::sync::atomic::Ordering::Relaxed), 42);
    }

    #[test]
    fn attach_of_a_closed_descriptor_is_an_error() {
        assert!(matches!(
            Segment::attach(987_654),
            Err(SegmentError::BadHandle { .. })
        ));
    }
}
