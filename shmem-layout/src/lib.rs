#![doc = include_str!("../README.md")]

pub mod latch;
pub mod layout;
pub mod lwlock;
pub mod pmsignal;
mod proc_kind;
pub mod procarray;
pub mod segment;
pub mod spinlock;

pub use layout::{Layout, RegionId, SizingParams};
pub use proc_kind::{ProcKind, NUM_AUX_PROCS};
pub use segment::{Segment, SegmentError};

use layout::{ShmemHeader, LAYOUT_VERSION, SHMEM_MAGIC};
use pmsignal::{ChildSlot, PmSignal};
use procarray::{Proc, QueryText};
use std::cell::UnsafeCell;
use std::os::fd::RawFd;

/// The shared segment with its layout: typed access to every region.
pub struct Shmem {
    segment: Segment,
    params: SizingParams,
    layout: Layout,
}

impl Shmem {
    /// Postmaster: creates and initialises a fresh segment.
    pub fn create(params: SizingParams, postmaster_pid: i32) -> Result<Shmem, SegmentError> {
        let layout = Layout::compute(&params);
        let segment = Segment::create(layout.total_size_bytes)?;
        // SAFETY: the segment is new, zeroed, large enough for the header at
        // offset 0, and not yet shared with anyone.
        unsafe {
            let hdr = segment.base() as *mut ShmemHeader;
            (*hdr).magic = SHMEM_MAGIC;
            (*hdr).layout_version = LAYOUT_VERSION;
            (*hdr).total_size_bytes = layout.total_size_bytes as u64;
            (*hdr).params = params;
        }
        let shmem = Shmem {
            segment,
            params,
            layout,
        };
        shmem.pm_signal().init(postmaster_pid);
        for s in shmem.child_slots() {
            s.init();
        }
        for p in shmem.procs() {
            p.init();
        }
        Ok(shmem)
    }

    /// Child: attaches the segment from an inherited descriptor and checks
    /// that it was laid out by this same version of the code.
    pub fn attach(fd: RawFd) -> Result<Shmem, SegmentError> {
        let segment = Segment::attach(fd)?;
        if segment.size_bytes() < std::mem::size_of::<ShmemHeader>() {
            return Err(SegmentError::Invalid("too small for its header".into()));
        }
        let hdr: &ShmemHeader = segment.at(0);
        if hdr.magic != SHMEM_MAGIC {
            return Err(SegmentError::Invalid("bad magic number".into()));
        }
        if hdr.layout_version != LAYOUT_VERSION {
            return Err(SegmentError::Invalid(format!(
                "layout version {} but this binary expects {}",
                hdr.layout_version, LAYOUT_VERSION
            )));
        }
        let params = hdr.params;
        let layout = Layout::compute(&params);
        if layout.total_size_bytes as u64 != hdr.total_size_bytes
            || layout.total_size_bytes > segment.size_bytes()
        {
            return Err(SegmentError::Invalid(
                "size does not match its header".into(),
            ));
        }
        Ok(Shmem {
            segment,
            params,
            layout,
        })
    }

    pub fn params(&self) -> &SizingParams {
        &self.params
    }

    pub fn raw_fd(&self) -> RawFd {
        self.segment.raw_fd()
    }

    pub fn size_bytes(&self) -> usize {
        self.segment.size_bytes()
    }

    pub fn pm_signal(&self) -> &PmSignal {
        self.segment.at(self.layout.offset(RegionId::PmSignal))
    }

    pub fn child_slots(&self) -> &[ChildSlot] {
        self.segment.slice_at(
            self.layout.offset(RegionId::ChildSlots),
            self.params.num_child_slots(),
        )
    }

    pub fn procs(&self) -> &[Proc] {
        self.segment
            .slice_at(self.layout.offset(RegionId::Procs), self.params.num_procs())
    }

    /// Entries backends may claim.
    pub fn backend_procs(&self) -> &[Proc] {
        &self.procs()[..self.params.max_connections as usize]
    }

    /// Entries autovacuum workers may claim.
    pub fn autovac_worker_procs(&self) -> &[Proc] {
        let start = self.params.max_connections as usize;
        &self.procs()[start..start + self.params.autovacuum_max_workers as usize]
    }

    /// The fixed entry of an auxiliary process.
    pub fn aux_proc(&self, kind: ProcKind) -> Option<&Proc> {
        let base =
            self.params.max_connections as usize + self.params.autovacuum_max_workers as usize;
        kind.aux_index().map(|i| &self.procs()[base + i])
    }

    /// The query-text buffer of proc entry `index`.
    pub fn query_text(&self, index: usize) -> QueryText<'_> {
        let size = self.params.track_activity_query_size as usize;
        let cells: &[UnsafeCell<u8>] = self
            .segment
            .slice_at(self.layout.offset(RegionId::QueryText) + index * size, size);
        QueryText::new(cells)
    }

    /// A storage region's bytes: its base in this process's mapping and its
    /// length. The storage crate attaches its structures there.
    pub fn region(&self, id: RegionId) -> (*mut u8, usize) {
        let off = self.layout.offset(id);
        let spec = &layout::REGIONS[id as usize];
        let len = (spec.size_bytes)(&self.params);
        assert!(
            off + len <= self.segment.size_bytes(),
            "region {} overruns the segment",
            spec.name
        );
        (self.segment.base().wrapping_add(off), len)
    }

    /// Index of a proc entry within [`Shmem::procs`].
    pub fn proc_index(&self, proc: &Proc) -> usize {
        let base = self.procs().as_ptr() as usize;
        (proc as *const Proc as usize - base) / std::mem::size_of::<Proc>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SizingParams {
        SizingParams {
            max_connections: 4,
            superuser_reserved_connections: 1,
            autovacuum_max_workers: 2,
            track_activity_query_size: 256,
            shared_buffers: 0,
            wal_buffers_pages: 0,
            max_locks_per_transaction: 64,
            buffer_pool_bytes: 0,
            wal_bytes: 0,
            clog_bytes: 0,
            transam_bytes: 0,
            checkpointer_bytes: 0,
            lock_table_bytes: 0,
        }
    }

    #[test]
    fn attach_sees_what_create_initialised() {
        let shm = Shmem::create(params(), 1234).unwrap();
        assert!(shm.child_slots()[3].try_assign(ProcKind::Backend));
        let fd =
            nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(shm.raw_fd()) }).unwrap();
        let child = Shmem::attach(std::os::fd::IntoRawFd::into_raw_fd(fd)).unwrap();
        assert_eq!(child.pm_signal().postmaster_pid(), 1234);
        assert_eq!(child.child_slots()[3].kind(), Some(ProcKind::Backend));
        assert_eq!(child.backend_procs().len(), 4);
        assert_eq!(child.autovac_worker_procs().len(), 2);
        assert!(child.aux_proc(ProcKind::Checkpointer).is_some());
    }

    #[test]
    fn proc_activity_round_trips_through_the_seqlock() {
        let shm = Shmem::create(params(), 1).unwrap();
        let p = &shm.backend_procs()[1];
        assert!(p.try_claim());
        assert!(!p.try_claim());
        p.set_owner(77, ProcKind::Backend, 99);
        p.set_identity(
            &procarray::ProcIdentity {
                database_oid: 5,
                user_oid: 10,
                client_addr: "127.0.0.1",
                client_port: 5555,
                user_name: "alice",
                database_name: "app",
                application_name: "psql",
                backend_start_us: 1,
            },
            &shm.query_text(shm.proc_index(p)),
        );
        let idx = shm.proc_index(p);
        p.report_state(
            procarray::BackendState::Active,
            Some("select 1"),
            &shm.query_text(idx),
            2,
        );
        let s = p.snapshot(&shm.query_text(idx)).unwrap();
        assert_eq!(
            (s.pid, s.user_name.as_str(), s.query.as_str()),
            (77, "alice", "select 1")
        );
        assert_eq!(s.state.as_str(), "active");
        assert_eq!(p.cancel_key(), 99);
        p.release();
        // A free entry must not look like anyone's: no kind (so a cancel
        // request for pid 0 can never match it), no identity, no times.
        assert_eq!((p.pid(), p.kind(), p.cancel_key()), (0, None, 0));
        let s = p.snapshot(&shm.query_text(idx)).unwrap();
        assert_eq!(
            (s.user_oid, s.backend_start_us, s.query_start_us),
            (0, 0, 0)
        );
        assert!(p.try_claim());
        // The next owner's identity clears the old query text.
        p.set_identity(
            &procarray::ProcIdentity {
                database_oid: 5,
                user_oid: 11,
                client_addr: "",
                client_port: -1,
                user_name: "bob",
                database_name: "app",
                application_name: "",
                backend_start_us: 3,
            },
            &shm.query_text(idx),
        );
        assert_eq!(p.snapshot(&shm.query_text(idx)).unwrap().query, "");
    }

    #[test]
    fn delay_chkpt_start_tells_one_delay_from_the_next() {
        let shm = Shmem::create(params(), 1).unwrap();
        let p = &shm.backend_procs()[0];
        assert_eq!(p.delay_chkpt_start_generation(), None);
        p.set_delay_chkpt_start();
        let first = p.delay_chkpt_start_generation().expect("delaying");
        p.clear_delay_chkpt_start();
        assert_eq!(p.delay_chkpt_start_generation(), None);
        p.set_delay_chkpt_start();
        let second = p.delay_chkpt_start_generation().expect("delaying");
        assert_ne!(
            first, second,
            "a checkpoint waiting for the first stops waiting"
        );
        p.clear_delay_chkpt_start();
        p.set_delay_chkpt_start();
        p.release();
        assert_eq!(
            p.delay_chkpt_start_generation(),
            None,
            "released entries delay nothing"
        );
    }

    #[test]
    fn a_slot_released_while_active_reports_a_crash() {
        let shm = Shmem::create(params(), 1).unwrap();
        let s = &shm.child_slots()[0];
        assert!(s.try_assign(ProcKind::Checkpointer));
        s.mark_active(42);
        assert!(!s.release(), "died while active");
        assert!(s.try_assign(ProcKind::Checkpointer));
        s.mark_active(43);
        s.mark_inactive();
        assert!(s.release(), "clean exit");
    }
}
