//! The proc array: one entry per process that may use shared state
//! (PostgreSQL's PGPROC plus the activity fields of PgBackendStatus).
//!
//! Entries are laid out as `[backends | autovacuum workers | auxiliaries]`.
//! A backend claims a free entry in the backend range when it starts; the
//! number of free entries is how `max_connections` and
//! `superuser_reserved_connections` are enforced. Each auxiliary process has
//! its fixed entry ([`crate::ProcKind::aux_index`]).
//!
//! # Locking
//! 1. `in_use` is claimed with a compare-and-swap; no lock.
//! 2. `pid`, `kind`, `cancel_key` and the latch owner are written by the
//!    owner right after claiming the entry and before it accepts work;
//!    readers (cancel requests, `pg_stat_activity`) load them atomically.
//! 3. The activity fields are written only by the owner, under the
//!    `changecount` seqlock: the owner makes it odd, writes, makes it even.
//!    Readers copy the fields and retry while the count is odd or changed.
//!    This is PostgreSQL's st_changecount protocol; writers never wait.
//!
//! # Transaction fields
//! `xid` and `xmin` are plain atomics with PostgreSQL's meaning; the rules
//! for reading them consistently (ProcArrayLock in PostgreSQL) belong to the
//! storage crate's snapshot code, which states them. `release` and `init`
//! clear both.
//!
//! # Delaying the checkpoint (DELAY_CHKPT_START)
//! A committing backend sets its flag ([`Proc::set_delay_chkpt_start`])
//! before it inserts its commit record and clears it once the commit log
//! says committed. A checkpoint, after fixing its redo point, notes every
//! entry whose flag is set ([`Proc::delay_chkpt_start_generation`]) and
//! waits until each of those has changed generation: a commit whose record
//! lies before the redo point then has its status in the commit log before
//! the checkpoint writes the commit log. Commits that set the flag after
//! the redo point are not waited for (their record is replayed). Both sides
//! use sequentially consistent atomics; the flag store comes before the WAL
//! insertion's lock acquisition and the checkpointer's load after its
//! acquisition of every insertion lock, so a record before the redo point
//! implies a flag the checkpointer sees.
//!
//! # Crash safety
//! An owner that dies mid-update leaves `changecount` odd; readers give up
//! after a bounded number of retries, and the crash cycle rebuilds the array.

use crate::latch::Latch;
use crate::ProcKind;
use std::cell::UnsafeCell;
use std::sync::atomic::{fence, AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

/// What a backend is doing, as `pg_stat_activity.state` shows it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendState {
    Undefined = 0,
    Idle = 1,
    Active = 2,
    IdleInTransaction = 3,
    IdleInTransactionAborted = 4,
    FastPath = 5,
    Disabled = 6,
}

impl BackendState {
    pub fn from_u32(v: u32) -> BackendState {
        match v {
            1 => BackendState::Idle,
            2 => BackendState::Active,
            3 => BackendState::IdleInTransaction,
            4 => BackendState::IdleInTransactionAborted,
            5 => BackendState::FastPath,
            6 => BackendState::Disabled,
            _ => BackendState::Undefined,
        }
    }

    /// The text `pg_stat_activity.state` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendState::Undefined => "",
            BackendState::Idle => "idle",
            BackendState::Active => "active",
            BackendState::IdleInTransaction => "idle in transaction",
            BackendState::IdleInTransactionAborted => "idle in transaction (aborted)",
            BackendState::FastPath => "fastpath function call",
            BackendState::Disabled => "disabled",
        }
    }
}

/// Fixed-size strings of an entry (NUL-padded).
pub const NAME_BYTES: usize = 64;
pub const ADDR_BYTES: usize = 48;

#[repr(C)]
struct ProcText {
    client_addr: [u8; ADDR_BYTES],
    user_name: [u8; NAME_BYTES],
    database_name: [u8; NAME_BYTES],
    application_name: [u8; NAME_BYTES],
}

/// One proc entry.
#[repr(C)]
pub struct Proc {
    in_use: AtomicU32,
    pid: AtomicI32,
    kind: AtomicU32,
    cancel_key: AtomicU32,
    pub latch: Latch,
    /// The owner's top-level transaction id, 0 when it has none
    /// (PostgreSQL's PGPROC.xid). Written only by the owner; read by
    /// snapshot takers. See "Transaction fields" in the module docs.
    pub xid: AtomicU64,
    /// The oldest xid the owner's snapshots may still consider running, 0
    /// when it holds no snapshot (PostgreSQL's PGPROC.xmin).
    pub xmin: AtomicU64,
    changecount: AtomicU32,
    state: AtomicU32,
    database_oid: AtomicU32,
    user_oid: AtomicU32,
    client_port: AtomicI32,
    /// PostgreSQL's `delayChkptFlags & DELAY_CHKPT_START`, with a
    /// generation: odd while the owner is between inserting its commit
    /// record and recording the commit in the commit log, even otherwise.
    /// Each set and each clear adds one. Written only by the owner; read by
    /// the checkpointer. See "Delaying the checkpoint" in the module docs.
    delay_chkpt_start: AtomicU32,
    backend_start_us: AtomicI64,
    xact_start_us: AtomicI64,
    query_start_us: AtomicI64,
    state_change_us: AtomicI64,
    text: UnsafeCell<ProcText>,
}

// SAFETY: the UnsafeCell is written only by the owner under the seqlock
// protocol described in the module docs.
unsafe impl Sync for Proc {}

const _: () = assert!(std::mem::align_of::<Proc>() == 8);

/// A consistent copy of an entry's activity fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcSnapshot {
    pub pid: i32,
    pub kind: Option<ProcKind>,
    pub state: BackendState,
    pub database_oid: u32,
    pub user_oid: u32,
    pub client_addr: String,
    pub client_port: i32,
    pub user_name: String,
    pub database_name: String,
    pub application_name: String,
    pub backend_start_us: i64,
    pub xact_start_us: i64,
    pub query_start_us: i64,
    pub state_change_us: i64,
    pub query: String,
}

/// Identity fields set once when a backend starts.
pub struct ProcIdentity<'a> {
    pub database_oid: u32,
    pub user_oid: u32,
    pub client_addr: &'a str,
    pub client_port: i32,
    pub user_name: &'a str,
    pub database_name: &'a str,
    pub application_name: &'a str,
    pub backend_start_us: i64,
}

fn copy_str(dst: &mut [u8], s: &str) {
    // Truncate on a char boundary so readers always see valid UTF-8.
    let mut n = s.len().min(dst.len().saturating_sub(1));
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    dst[n..].fill(0);
}

fn read_str(src: &[u8]) -> String {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    String::from_utf8_lossy(&src[..end]).into_owned()
}

impl Proc {
    pub fn init(&self) {
        self.in_use.store(0, Ordering::Relaxed);
        self.pid.store(0, Ordering::Relaxed);
        self.kind.store(0, Ordering::Relaxed);
        self.cancel_key.store(0, Ordering::Relaxed);
        self.xid.store(0, Ordering::Relaxed);
        self.xmin.store(0, Ordering::Relaxed);
        self.delay_chkpt_start.store(0, Ordering::Relaxed);
        self.latch.init();
        self.changecount.store(0, Ordering::Relaxed);
        self.state
            .store(BackendState::Undefined as u32, Ordering::Relaxed);
        // SAFETY: init runs before any child attaches; nobody else reads.
        unsafe {
            std::ptr::write_bytes(self.text.get(), 0, 1);
        }
    }

    /// Claims the entry if it is free.
    pub fn try_claim(&self) -> bool {
        self.in_use
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    pub fn is_in_use(&self) -> bool {
        self.in_use.load(Ordering::Acquire) != 0
    }

    /// Owner: publishes who it is. Call right after claiming.
    pub fn set_owner(&self, pid: i32, kind: ProcKind, cancel_key: u32) {
        self.kind.store(kind as u32, Ordering::Release);
        self.cancel_key.store(cancel_key, Ordering::Release);
        self.latch.own(pid);
        self.pid.store(pid, Ordering::Release);
    }

    /// Owner: gives the entry back (clean exit).
    /// Owner: gives the entry back (clean exit). Everything a later reader
    /// could mistake for the next owner's is cleared first: the kind (so a
    /// free entry never matches a cancel request), the identity and times.
    /// The query text is cleared by the next owner's `set_identity`.
    pub fn release(&self) {
        self.pid.store(0, Ordering::Release);
        self.kind.store(0, Ordering::Release);
        self.latch.disown();
        self.cancel_key.store(0, Ordering::Release);
        self.xid.store(0, Ordering::Release);
        self.xmin.store(0, Ordering::Release);
        self.delay_chkpt_start.store(0, Ordering::SeqCst);
        self.begin_write();
        self.state
            .store(BackendState::Undefined as u32, Ordering::Relaxed);
        self.database_oid.store(0, Ordering::Relaxed);
        self.user_oid.store(0, Ordering::Relaxed);
        self.client_port.store(0, Ordering::Relaxed);
        for t in [
            &self.backend_start_us,
            &self.xact_start_us,
            &self.query_start_us,
            &self.state_change_us,
        ] {
            t.store(0, Ordering::Relaxed);
        }
        self.end_write();
        self.in_use.store(0, Ordering::Release);
    }

    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::Acquire)
    }

    pub fn kind(&self) -> Option<ProcKind> {
        ProcKind::from_u32(self.kind.load(Ordering::Acquire))
    }

    pub fn cancel_key(&self) -> u32 {
        self.cancel_key.load(Ordering::Acquire)
    }

    /// Owner: a commit record is about to be inserted; checkpoints whose
    /// redo point falls after it must wait until the commit log has the
    /// status (PostgreSQL's `delayChkptFlags |= DELAY_CHKPT_START`).
    pub fn set_delay_chkpt_start(&self) {
        let before = self.delay_chkpt_start.fetch_add(1, Ordering::SeqCst);
        debug_assert_eq!(before & 1, 0, "DELAY_CHKPT_START set twice");
    }

    /// Owner: the commit log has the status; checkpoints may go on.
    pub fn clear_delay_chkpt_start(&self) {
        let before = self.delay_chkpt_start.fetch_add(1, Ordering::SeqCst);
        debug_assert_eq!(before & 1, 1, "DELAY_CHKPT_START cleared while not set");
    }

    /// Anyone (the checkpointer): `Some(generation)` while the owner delays
    /// checkpoints. The delay that was in force when this was read has
    /// ended once the value read again differs.
    pub fn delay_chkpt_start_generation(&self) -> Option<u32> {
        let v = self.delay_chkpt_start.load(Ordering::SeqCst);
        (v & 1 == 1).then_some(v)
    }

    fn begin_write(&self) {
        self.changecount.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::SeqCst);
    }

    fn end_write(&self) {
        fence(Ordering::SeqCst);
        self.changecount.fetch_add(1, Ordering::AcqRel);
    }

    /// Owner: records identity fields once at start, and clears whatever
    /// query text a previous owner of the entry left behind.
    pub fn set_identity(&self, id: &ProcIdentity<'_>, query_buf: &QueryText) {
        self.begin_write();
        query_buf.write("");
        self.xact_start_us.store(0, Ordering::Relaxed);
        self.query_start_us.store(0, Ordering::Relaxed);
        self.database_oid.store(id.database_oid, Ordering::Relaxed);
        self.user_oid.store(id.user_oid, Ordering::Relaxed);
        self.client_port.store(id.client_port, Ordering::Relaxed);
        self.backend_start_us
            .store(id.backend_start_us, Ordering::Relaxed);
        // SAFETY: only the owner writes `text`, inside the seqlock.
        let text = unsafe { &mut *self.text.get() };
        copy_str(&mut text.client_addr, id.client_addr);
        copy_str(&mut text.user_name, id.user_name);
        copy_str(&mut text.database_name, id.database_name);
        copy_str(&mut text.application_name, id.application_name);
        self.end_write();
    }

    /// Owner: the application_name changed (SET application_name).
    pub fn set_application_name(&self, name: &str) {
        self.begin_write();
        // SAFETY: as in set_identity.
        let text = unsafe { &mut *self.text.get() };
        copy_str(&mut text.application_name, name);
        self.end_write();
    }

    /// Owner: reports a state change, and the query text when it starts one.
    pub fn report_state(
        &self,
        state: BackendState,
        query: Option<&str>,
        query_buf: &QueryText,
        now_us: i64,
    ) {
        self.begin_write();
        self.state.store(state as u32, Ordering::Relaxed);
        self.state_change_us.store(now_us, Ordering::Relaxed);
        if let Some(q) = query {
            self.query_start_us.store(now_us, Ordering::Relaxed);
            query_buf.write(q);
        }
        self.end_write();
    }

    /// Owner: transaction start time (0 when none).
    pub fn report_xact_start(&self, us: i64) {
        self.begin_write();
        self.xact_start_us.store(us, Ordering::Relaxed);
        self.end_write();
    }

    pub fn state(&self) -> BackendState {
        BackendState::from_u32(self.state.load(Ordering::Acquire))
    }

    /// Anyone: a consistent copy, or None if the owner keeps it busy.
    pub fn snapshot(&self, query_buf: &QueryText) -> Option<ProcSnapshot> {
        for _ in 0..1000 {
            let before = self.changecount.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            fence(Ordering::SeqCst);
            // SAFETY: a racy read of plain bytes; the changecount check below
            // discards any copy that overlapped a write.
            let text = unsafe { std::ptr::read_volatile(self.text.get()) };
            let snap = ProcSnapshot {
                pid: self.pid(),
                kind: self.kind(),
                state: self.state(),
                database_oid: self.database_oid.load(Ordering::Relaxed),
                user_oid: self.user_oid.load(Ordering::Relaxed),
                client_addr: read_str(&text.client_addr),
                client_port: self.client_port.load(Ordering::Relaxed),
                user_name: read_str(&text.user_name),
                database_name: read_str(&text.database_name),
                application_name: read_str(&text.application_name),
                backend_start_us: self.backend_start_us.load(Ordering::Relaxed),
                xact_start_us: self.xact_start_us.load(Ordering::Relaxed),
                query_start_us: self.query_start_us.load(Ordering::Relaxed),
                state_change_us: self.state_change_us.load(Ordering::Relaxed),
                query: query_buf.read(),
            };
            fence(Ordering::SeqCst);
            if self.changecount.load(Ordering::Acquire) == before {
                return Some(snap);
            }
        }
        None
    }
}

/// One proc's query-text buffer of `track_activity_query_size` bytes,
/// written only by the owner inside its `changecount` seqlock.
pub struct QueryText<'a> {
    bytes: &'a [UnsafeCell<u8>],
}

impl<'a> QueryText<'a> {
    pub(crate) fn new(bytes: &'a [UnsafeCell<u8>]) -> Self {
        QueryText { bytes }
    }

    fn write(&self, q: &str) {
        let cap = self.bytes.len().saturating_sub(1);
        let mut n = q.len().min(cap);
        while !q.is_char_boundary(n) {
            n -= 1;
        }
        let dst = self.bytes.as_ptr() as *mut u8;
        // SAFETY: owner-only write inside the seqlock; `n < len`.
        unsafe {
            std::ptr::copy_nonoverlapping(q.as_ptr(), dst, n);
            *dst.add(n) = 0;
        }
    }

    fn read(&self) -> String {
        let mut out = Vec::with_capacity(64);
        for cell in self.bytes {
            // SAFETY: racy byte read validated by the seqlock.
            let b = unsafe { std::ptr::read_volatile(cell.get()) };
            if b == 0 {
                break;
            }
            out.push(b);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
