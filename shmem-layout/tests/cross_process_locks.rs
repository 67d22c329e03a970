//! The shared-memory locks across real processes.
//!
//! Each test maps an anonymous shared region (`MAP_SHARED | MAP_ANONYMOUS`)
//! holding a lock and the data it protects, then `fork()`s children that work on
//! it the way backends would. The data is plain memory (`UnsafeCell<u64>`), so a
//! lock that fails to exclude shows up as lost or torn updates, not as a
//! politely failing assertion.
//!
//! A child never returns into the test harness: it runs its body and leaves with
//! `_exit(status)`. Status 0 is success; any other status, a signal, or a child
//! still running after [`CHILD_TIMEOUT`] fails the test in the parent.
//! Children only touch atomics, futexes and the region, never the harness's
//! locks, because the harness is multithreaded when they are forked.

use shmem_layout::lwlock::{LWLock, LWLockMode, LWLockTranche};
use shmem_layout::spinlock::SpinLock;
use std::cell::UnsafeCell;
use std::num::NonZeroUsize;
use std::ops::Deref;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CHILD_TIMEOUT: Duration = Duration::from_secs(30);
const TRANCHE: LWLockTranche = LWLockTranche(1);

// Child exit statuses.
const OK: i32 = 0;
const TORN_READ: i32 = 2;
const READER_INSIDE_EXCLUSIVE: i32 = 3;
const GAVE_UP_WAITING: i32 = 4;
const WRONG_VALUE: i32 = 5;
const PANICKED: i32 = 101;

/// A zero-filled `T` in an anonymous shared mapping, inherited by forked
/// children at the same address, unmapped on drop.
struct SharedRegion<T> {
    ptr: NonNull<T>,
}

impl<T> SharedRegion<T> {
    /// # Safety
    ///
    /// All-zero bytes must be a valid `T`.
    unsafe fn zeroed() -> Self {
        let len = NonZeroUsize::new(std::mem::size_of::<T>()).expect("T is not zero-sized");
        // SAFETY: a fresh anonymous mapping aliases nothing; the kernel fills it
        // with zeros, which the caller promises is a valid T, and aligns it to a
        // page, which satisfies any T's alignment.
        let ptr = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                len,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
            )
        }
        .expect("mmap of a shared anonymous region");
        SharedRegion { ptr: ptr.cast() }
    }
}

impl<T> Deref for SharedRegion<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: mapped, initialized (zeroed) and alive until drop.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for SharedRegion<T> {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and no reference outlives `self`.
        unsafe { nix::sys::mman::munmap(self.ptr.cast(), std::mem::size_of::<T>()) }
            .expect("munmap");
    }
}

/// A forked child process, with a pidfd to wait on it with a timeout.
struct Child {
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

/// Fork a child that runs `body` and exits with the status it returns
/// (101 if it panics).
fn fork_child(body: impl FnOnce() -> i32) -> Child {
    // SAFETY: the child only runs `body`, which touches atomics, futexes and the
    // shared region, then leaves with `_exit`, never returning into the harness.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            let status =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(PANICKED);
            // SAFETY: ends the child without running the parent's atexit
            // handlers or destructors.
            unsafe { libc::_exit(status) }
        }
        pid => {
            // SAFETY: plain system call; the result is checked.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
            assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
            // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
            let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            Child { pid, pidfd }
        }
    }
}

impl Child {
    /// Wait for the child to exit; panic unless it exited with status 0.
    /// A child still running at the deadline is killed first.
    fn expect_success(self, what: &str) {
        let mut pollfd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let deadline = Instant::now() + CHILD_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pollfd, 1, left.as_millis() as i32) };
            if ready > 0 {
                break;
            }
            if ready == 0 || Instant::now() >= deadline {
                // SAFETY: plain system calls on our own child.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                self.reap();
                panic!(
                    "{what} (pid {}) still running after {CHILD_TIMEOUT:?}",
                    self.pid
                );
            }
            // EINTR: poll again.
        }
        let status = self.reap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == OK,
            "{what} (pid {}) failed: {}",
            self.pid,
            describe(status)
        );
    }

    fn reap(&self) -> i32 {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                return status;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EINTR), "waitpid: {err}");
        }
    }

    /// Whether the child is asleep in the kernel (state `S` in /proc).
    fn is_sleeping(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // "pid (comm) S ...": the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            == Some('S')
    }
}

fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        let meaning = match code {
            TORN_READ => "a reader saw the two counters differ",
            READER_INSIDE_EXCLUSIVE => "a writer saw a reader inside",
            GAVE_UP_WAITING => "gave up waiting for the other processes",
            WRONG_VALUE => "read a value not written under the lock",
            PANICKED => "panicked",
            _ => "unexpected status",
        };
        format!("exit status {code}: {meaning}")
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// Poll `cond` (something another process changes) until it holds; panic
/// after [`CHILD_TIMEOUT`].
fn poll_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + CHILD_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// In a child: poll `cond` until it holds or ten seconds have passed.
fn child_poll_until(cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// In a child: announce readiness at `start_line` and wait until all `n`
/// children have, so that they really run against each other.
fn child_start_together(start_line: &AtomicU32, n: u32) -> bool {
    start_line.fetch_add(1, Ordering::SeqCst);
    child_poll_until(|| start_line.load(Ordering::SeqCst) == n)
}

#[repr(C)]
struct SpinCounter {
    lock: SpinLock,
    /// Protected by `lock`.
    count: UnsafeCell<u64>,
    start_line: AtomicU32,
}

#[test]
fn spinlock_counter_incremented_by_four_processes_loses_no_update() {
    const CHILDREN: u64 = 4;
    const INCREMENTS: u64 = 100_000;
    // SAFETY: all-zero is a free SpinLock and a zero count.
    let region = unsafe { SharedRegion::<SpinCounter>::zeroed() };
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            fork_child(|| {
                if !child_start_together(&region.start_line, CHILDREN as u32) {
                    return GAVE_UP_WAITING;
                }
                for _ in 0..INCREMENTS {
                    let _guard = region.lock.acquire();
                    // SAFETY: the spinlock is held.
                    unsafe { *region.count.get() += 1 };
                }
                OK
            })
        })
        .collect();
    for child in children {
        child.expect_success("incrementing child");
    }
    assert!(!region.lock.held_by_anyone());
    // SAFETY: every child has exited; nobody else touches the count.
    assert_eq!(unsafe { *region.count.get() }, CHILDREN * INCREMENTS);
}

#[repr(C)]
struct LWPair {
    lock: LWLock,
    /// `a` and `b` are protected by `lock`; equal whenever it is not held
    /// exclusively.
    a: UnsafeCell<u64>,
    b: UnsafeCell<u64>,
    /// Processes inside the lock in shared mode right now.
    readers_inside: AtomicU32,
    /// Shared acquisitions that found another reader inside.
    concurrent_reads: AtomicU64,
    /// Set by the parent under the lock, for the wake-up tests.
    value: UnsafeCell<u64>,
    start_line: AtomicU32,
}

#[test]
fn lwlock_writer_and_reader_processes_exclude_each_other_but_readers_share() {
    const WRITERS: u64 = 2;
    const READERS: u64 = 3;
    const ROUNDS: u64 = 20_000;
    // SAFETY: all-zero is a free LWLock, zero counters and zero atomics.
    let region = unsafe { SharedRegion::<LWPair>::zeroed() };
    region.lock.init(TRANCHE);
    let mut children = Vec::new();
    for _ in 0..WRITERS {
        children.push((
            "writer",
            fork_child(|| {
                if !child_start_together(&region.start_line, (WRITERS + READERS) as u32) {
                    return GAVE_UP_WAITING;
                }
                for _ in 0..ROUNDS {
                    let _guard = region.lock.acquire(LWLockMode::Exclusive);
                    if region.readers_inside.load(Ordering::SeqCst) != 0 {
                        return READER_INSIDE_EXCLUSIVE;
                    }
                    // SAFETY: exclusive mode is held.
                    unsafe {
                        *region.a.get() += 1;
                        std::hint::spin_loop();
                        *region.b.get() += 1;
                    }
                }
                OK
            }),
        ));
    }
    for _ in 0..READERS {
        children.push((
            "reader",
            fork_child(|| {
                if !child_start_together(&region.start_line, (WRITERS + READERS) as u32) {
                    return GAVE_UP_WAITING;
                }
                for _ in 0..ROUNDS {
                    let _guard = region.lock.acquire_shared();
                    if region.readers_inside.fetch_add(1, Ordering::SeqCst) > 0 {
                        region.concurrent_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    // SAFETY: shared mode is held, so no writer is inside.
                    let (a, b) = unsafe { (*region.a.get(), *region.b.get()) };
                    // Stay inside a little, so that other readers can join.
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    region.readers_inside.fetch_sub(1, Ordering::SeqCst);
                    if a != b {
                        return TORN_READ;
                    }
                }
                OK
            }),
        ));
    }
    for (what, child) in children {
        child.expect_success(what);
    }
    // SAFETY: every child has exited.
    let (a, b) = unsafe { (*region.a.get(), *region.b.get()) };
    assert_eq!((a, b), (WRITERS * ROUNDS, WRITERS * ROUNDS));
    assert!(
        region.concurrent_reads.load(Ordering::Relaxed) > 0,
        "readers never held the lock at the same time"
    );
    assert!(!region.lock.held_by_anyone());
    assert!(!region.lock.waiters_present());
}

#[test]
fn lwlock_shared_mode_is_held_by_four_processes_at_once() {
    const READERS: u32 = 4;
    // SAFETY: all-zero is a free LWLock, zero counters and zero atomics.
    let region = unsafe { SharedRegion::<LWPair>::zeroed() };
    let children: Vec<_> = (0..READERS)
        .map(|_| {
            fork_child(|| {
                let _guard = region.lock.acquire_shared();
                region.readers_inside.fetch_add(1, Ordering::SeqCst);
                // Shared mode that excluded would leave the others outside.
                let all_in =
                    child_poll_until(|| region.readers_inside.load(Ordering::SeqCst) == READERS);
                if all_in {
                    OK
                } else {
                    GAVE_UP_WAITING
                }
            })
        })
        .collect();
    for child in children {
        child.expect_success("shared holder");
    }
    assert!(!region.lock.held_by_anyone());
}

#[test]
fn lwlock_exclusive_waiter_in_another_process_wakes_when_the_holder_releases() {
    // SAFETY: all-zero is a free LWLock, zero counters and zero atomics.
    let region = unsafe { SharedRegion::<LWPair>::zeroed() };
    region.lock.init(TRANCHE);
    let guard = region.lock.acquire_exclusive();
    let child = fork_child(|| {
        let _guard = region.lock.acquire_exclusive();
        // SAFETY: exclusive mode is held.
        if unsafe { *region.value.get() } == 42 {
            OK
        } else {
            WRONG_VALUE
        }
    });
    poll_until("the child sleeps on the lock", || {
        region.lock.waiters_present() && child.is_sleeping()
    });
    // SAFETY: exclusive mode is held (by `guard`).
    unsafe { *region.value.get() = 42 };
    drop(guard);
    child.expect_success("exclusive waiter");
    assert!(!region.lock.held_by_anyone());
    assert!(!region.lock.waiters_present());
}

#[test]
fn lwlock_shared_waiters_in_other_processes_wake_together_when_the_holder_releases() {
    const READERS: u32 = 3;
    // SAFETY: all-zero is a free LWLock, zero counters and zero atomics.
    let region = unsafe { SharedRegion::<LWPair>::zeroed() };
    region.lock.init(TRANCHE);
    let guard = region.lock.acquire(LWLockMode::Exclusive);
    let children: Vec<_> = (0..READERS)
        .map(|_| {
            fork_child(|| {
                let _guard = region.lock.acquire_shared();
                // SAFETY: shared mode is held.
                if unsafe { *region.value.get() } != 42 {
                    return WRONG_VALUE;
                }
                region.readers_inside.fetch_add(1, Ordering::SeqCst);
                // All were queued, so one release admits all of them at once.
                let all_in =
                    child_poll_until(|| region.readers_inside.load(Ordering::SeqCst) == READERS);
                if all_in {
                    OK
                } else {
                    GAVE_UP_WAITING
                }
            })
        })
        .collect();
    poll_until("every reader sleeps on the lock", || {
        region.lock.waiters_present() && children.iter().all(Child::is_sleeping)
    });
    // SAFETY: exclusive mode is held (by `guard`).
    unsafe { *region.value.get() = 42 };
    drop(guard);
    for child in children {
        child.expect_success("shared waiter");
    }
    assert!(!region.lock.held_by_anyone());
    assert!(!region.lock.waiters_present());
}

#[repr(C)]
struct BothLocks {
    spin: SpinLock,
    lwlock: LWLock,
}

#[test]
fn a_process_that_exits_holding_locks_leaves_them_held_until_init() {
    // SAFETY: all-zero is a free SpinLock and a free LWLock.
    let region = unsafe { SharedRegion::<BothLocks>::zeroed() };
    region.lwlock.init(TRANCHE);
    fork_child(|| {
        std::mem::forget(region.spin.acquire());
        std::mem::forget(region.lwlock.acquire_exclusive());
        OK
    })
    .expect_success("child that dies holding both locks");

    assert!(region.spin.held_by_anyone());
    assert!(region.spin.try_acquire().is_none());
    assert!(region.lwlock.held_exclusively());
    assert!(region.lwlock.try_acquire(LWLockMode::Shared).is_none());

    // What the postmaster's crash cycle does to every lock in the segment.
    region.spin.init();
    region.lwlock.init(TRANCHE);
    assert!(region.spin.try_acquire().is_some());
    assert!(region.lwlock.try_acquire(LWLockMode::Exclusive).is_some());
    assert_eq!(region.lwlock.tranche(), TRANCHE);
}
