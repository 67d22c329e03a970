//! Writing the WAL buffers to the segment files and making them durable:
//! PostgreSQL's `XLogFlush`, `XLogWrite` and `XLogBackgroundFlush`, and the
//! start-up that points insertion at the end of the WAL recovery found.
//!
//! Who runs it: a backend at commit (`flush(end of the commit record)`),
//! the buffer manager and the commit log before writing a page (the WAL
//! rule, through [`WalFlush`]), the walwriter every `wal_writer_delay`
//! ([`SharedWal::write_some`], for `synchronous_commit = off`), an inserter
//! that needs a buffer back (`write_out_buffer`), the startup process once
//! ([`SharedWal::init_at`]).
//!
//! # Flushing, step by step (group commit)
//!
//! 1. If `flushed_upto >= upto`, return: someone already did it.
//! 2. Wait for the insertions below `upto` to finish; this also tells how
//!    far *all* inserted WAL is complete, possibly well past `upto`.
//! 3. Take WALWriteLock. If `flushed_upto >= upto` now, release and
//!    return: the holder before us wrote and synced our record with its
//!    own. That is group commit: one `fdatasync` for every commit that was
//!    waiting for the lock.
//! 4. Look again how far insertions are complete (records that finished
//!    while we waited for the lock ride along), write every page up to
//!    there, `fdatasync` (unless `fsync` is off), publish `written_upto`,
//!    then `flushed_upto`, release.
//!
//! Writing (`write_locked`, PostgreSQL's `XLogWrite`) goes from
//! `written_upto` in runs of contiguous buffers, one `pwrite` per run; a run
//! ends at the last buffer, at a segment end, or at the target. A partial
//! last page is written whole and written again next time. A segment is
//! opened (created zero-filled if new) when a run enters it, and synced
//! when a run completes it, so every segment before the current one is
//! durable once written (with `fsync` on). Each process writes through its
//! own file descriptor; `fdatasync` on any descriptor of a file syncs what
//! every process wrote to it.
//!
//! # Invariants
//!
//! 1. `flushed_upto <= written_upto`; both only grow, and change only
//!    under WALWriteLock.
//! 2. Pages are written only below a point all insertions have passed
//!    (see `insert.rs`, invariant 3), from the buffer that holds them
//!    (checked against `xlblocks`).
//! 3. With `fsync` on, `flushed_upto` is published only after `fdatasync`
//!    of the segment holding the byte before it returned, and every earlier
//!    segment was synced when it was completed.
//!
//! # Locking
//!
//! WALWriteLock is held for the whole of a write and sync. The lock order
//! and the waiting rules are in `insert.rs`; the per-process segment file
//! mutex is taken only inside WALWriteLock.
//!
//! # Crash safety
//!
//! A commit is acknowledged only after `flush(end)` returned, that is after
//! the WAL up to its end was synced. A crash mid-write leaves a prefix of
//! the written pages, possibly a torn page: its records fail their CRC and
//! replay stops there, before anything not yet acknowledged. A failed
//! `fdatasync` is a PANIC (the kernel may have dropped the pages), as in
//! PostgreSQL. With `fsync` off nothing is guaranteed after an OS crash.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;

use pgerror::{PgError, Severity, SqlState};
use shmem_layout::lwlock::LWLockGuard;

use crate::clog::WalFlush;
use crate::types::Lsn;
use crate::wal::reader::{PageRead, SegmentDir, WalSource};
use crate::wal::segment::{
    lsn_to_bytepos, page_header_bytes, page_start, segment_file_name, TimeLineId, MAXALIGN,
    WAL_PAGE_BYTES,
};
use crate::wal::shmem::NO_PREV;
use crate::wal::sink::open_or_create_segment;
use crate::wal::{SharedWal, WalError};

const PAGE: u64 = WAL_PAGE_BYTES as u64;

impl SharedWal<'_> {
    /// Start-up (the startup process, before any other process inserts):
    /// the WAL continues at `next_lsn` (the reader's end of WAL) after the
    /// record at `prev_record_lsn` ([`Lsn::INVALID`] before the first
    /// record ever), on `timeline` of the cluster `system_id`. A partly
    /// filled last page is read back into its buffer, zeroed past
    /// `next_lsn`, so whatever torn bytes follow on disk are overwritten by
    /// the next write of that page.
    pub fn init_at(
        &self,
        next_lsn: Lsn,
        prev_record_lsn: Lsn,
        timeline: TimeLineId,
        system_id: u64,
    ) -> Result<(), WalError> {
        let in_page = next_lsn.0 % PAGE;
        if next_lsn.0 % MAXALIGN != 0
            || (in_page != 0 && in_page < page_header_bytes(page_start(next_lsn)) as u64)
            || (prev_record_lsn.is_valid() && prev_record_lsn >= next_lsn)
        {
            return Err(WalError::BadStartPosition(next_lsn));
        }
        let ctl = self.ctl();
        ctl.config.started.store(0, Ordering::SeqCst);
        ctl.config.broken.store(0, Ordering::SeqCst);
        ctl.config.timeline.store(timeline.0, Ordering::Relaxed);
        ctl.config.system_id.store(system_id, Ordering::Relaxed);
        {
            let _g = ctl.insert.lock.acquire();
            ctl.insert
                .curr_byte_pos
                .store(lsn_to_bytepos(next_lsn), Ordering::Relaxed);
            let prev = if prev_record_lsn.is_valid() {
                lsn_to_bytepos(prev_record_lsn)
            } else {
                NO_PREV
            };
            ctl.insert.prev_byte_pos.store(prev, Ordering::Relaxed);
        }
        for end in self.region.xlblocks {
            end.store(0, Ordering::Relaxed);
        }
        let initialized_upto = if in_page == 0 {
            next_lsn
        } else {
            let page = page_start(next_lsn);
            let mut bytes = Box::new([0u8; WAL_PAGE_BYTES]);
            match SegmentDir::new(&self.pg_wal, timeline).read_page(page, &mut bytes)? {
                PageRead::Read => {}
                PageRead::MissingSegment(name) | PageRead::SegmentTooShort(name) => {
                    return Err(WalError::Io {
                        op: "read",
                        path: self.pg_wal.join(name),
                        source: io::ErrorKind::UnexpectedEof.into(),
                    });
                }
            }
            bytes[in_page as usize..].fill(0);
            let idx = self.region.buffer_index(page);
            // SAFETY: start-up runs alone (the caller's contract), so no
            // one else touches the buffers; the copy stays within one page.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.region.page_ptr(idx),
                    WAL_PAGE_BYTES,
                );
            }
            self.region.xlblocks[idx].store(page.0 + PAGE, Ordering::Relaxed);
            Lsn(page.0 + PAGE)
        };
        ctl.mapping
            .initialized_upto
            .store(initialized_upto.0, Ordering::Relaxed);
        ctl.progress
            .written_upto
            .store(next_lsn.0, Ordering::Relaxed);
        ctl.progress
            .flushed_upto
            .store(next_lsn.0, Ordering::Relaxed);
        ctl.config.started.store(1, Ordering::Release);
        log::debug!("WAL insertion starts at {next_lsn}, prev {prev_record_lsn}");
        Ok(())
    }

    /// Makes the WAL durable up to at least `upto` (PostgreSQL's
    /// `XLogFlush`), and with it everything inserted so far (group commit).
    /// `upto` may be a record end or any LSN up to the current insert
    /// position. An `Err` other than [`WalError::FlushPastEnd`] is a PANIC.
    pub fn flush(&self, upto: Lsn) -> Result<(), WalError> {
        if upto <= self.flushed_lsn() {
            return Ok(());
        }
        self.check_usable()?;
        let end = self.reserved_end_lsn();
        let upto = if upto <= end {
            upto
        } else if upto <= self.current_insert_lsn() {
            end // just past the page header at the end: nothing more to do
        } else {
            return Err(WalError::FlushPastEnd {
                requested: upto,
                flushed: self.flushed_lsn(),
            });
        };
        if upto <= self.flushed_lsn() {
            return Ok(());
        }
        let complete = self.wait_for_insertions(upto);
        let write_lock = self.ctl().progress.lock.acquire_exclusive();
        if upto <= self.flushed_lsn() {
            return Ok(());
        }
        // Locking rule 4 of insert.rs: `complete` is known finished, so
        // this only picks up what finished meanwhile, without blocking.
        let complete = self.wait_for_insertions(complete);
        self.check_usable()?;
        self.write_locked(&write_lock, complete, true)?;
        self.ctl().stats.flushes.fetch_add(1, Ordering::Relaxed);
        debug_assert!(self.flushed_lsn() >= upto);
        Ok(())
    }

    /// The walwriter's round (PostgreSQL's `XLogBackgroundFlush`): writes
    /// and syncs everything inserted so far, so asynchronous commits reach
    /// disk. Returns how far the WAL is now flushed.
    pub fn write_some(&self) -> Result<Lsn, WalError> {
        let end = self.reserved_end_lsn();
        if end > self.flushed_lsn() {
            self.flush(end)?;
        }
        Ok(self.flushed_lsn())
    }

    /// WAL up to here is durable (or written, with `fsync` off).
    pub fn flushed_lsn(&self) -> Lsn {
        Lsn(self.ctl().progress.flushed_upto.load(Ordering::Acquire))
    }

    /// WAL up to here is written to the segment files.
    pub fn written_lsn(&self) -> Lsn {
        Lsn(self.ctl().progress.written_upto.load(Ordering::Acquire))
    }

    /// Sets the `fsync` setting for every process (it is reloadable).
    pub fn set_fsync(&self, on: bool) {
        self.ctl()
            .config
            .fsync
            .store(u32::from(on), Ordering::Relaxed);
    }

    pub fn fsync_enabled(&self) -> bool {
        self.ctl().config.fsync.load(Ordering::Relaxed) != 0
    }

    /// An inserter needs the buffer whose page ends at `old_end`: waits for
    /// the insertions into it, then writes it, and the whole pages after it
    /// that are complete, without syncing. Holds the caller's insertion
    /// slot (Locking rule 2 of insert.rs).
    pub(super) fn write_out_buffer(&self, old_end: Lsn) -> Result<(), WalError> {
        let complete = self.wait_for_insertions(old_end);
        let write_lock = self.ctl().progress.lock.acquire_exclusive();
        if self.written_lsn() < old_end {
            let target = old_end.max(page_start(complete));
            self.write_locked(&write_lock, target, false)?;
            self.ctl()
                .stats
                .wal_buffers_full
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes the buffers from `written_upto` to `target`, then syncs if
    /// `flush` (PostgreSQL's `XLogWrite`). `target` must be a point all
    /// insertions have passed. Holding WALWriteLock (`_held`).
    fn write_locked(
        &self,
        _held: &LWLockGuard<'_>,
        target: Lsn,
        flush: bool,
    ) -> Result<(), WalError> {
        let ctl = self.ctl();
        let n = self.region.wal_buffers_pages();
        let fsync = self.fsync_enabled();
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let files = Files {
            dir: &self.pg_wal,
            timeline: self.timeline(),
        };
        let mut written = self.written_lsn();
        while written < target {
            let first_page = page_start(written);
            let first_idx = self.region.buffer_index(first_page);
            let mut run_end = Lsn(first_page.0 + PAGE);
            self.check_buffer(first_idx, run_end)?;
            let mut run_pages = 1usize;
            while run_end < target && first_idx + run_pages < n && run_end.segment_offset() != 0 {
                let idx = self.region.buffer_index(run_end);
                run_end = Lsn(run_end.0 + PAGE);
                run_pages += 1;
                self.check_buffer(idx, run_end)?;
            }
            let len = (run_end.0 - first_page.0) as usize;
            writer.write(&files, first_page, self.region.page_ptr(first_idx), len)?;
            ctl.stats.writes.fetch_add(1, Ordering::Relaxed);
            ctl.stats
                .pages_written
                .fetch_add(len as u64 / PAGE, Ordering::Relaxed);
            written = run_end.min(target);
            ctl.progress
                .written_upto
                .store(written.0, Ordering::Release);
            if run_end.segment_offset() == 0 && run_end <= target {
                // A segment completed: sync it now, as we leave it.
                if fsync {
                    writer.sync(&files, run_end.segment() - 1)?;
                    ctl.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
                }
                ctl.progress
                    .flushed_upto
                    .store(written.0, Ordering::Release);
            }
        }
        if flush && self.flushed_lsn() < written {
            if fsync {
                writer.sync(&files, Lsn(written.0 - 1).segment())?;
                ctl.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            ctl.progress
                .flushed_upto
                .store(written.0, Ordering::Release);
        }
        Ok(())
    }

    /// Buffer `idx` must hold the page ending at `end` (invariant 2).
    fn check_buffer(&self, idx: usize, end: Lsn) -> Result<(), WalError> {
        let got = Lsn(self.region.xlblocks[idx].load(Ordering::Acquire));
        if got != end {
            return Err(WalError::Shmem(format!(
                "WAL write request up to {end} is past the buffers: buffer {idx} holds the page ending at {got}"
            )));
        }
        Ok(())
    }
}

/// Where segment files are and what they are called.
struct Files<'p> {
    dir: &'p Path,
    timeline: TimeLineId,
}

impl Files<'_> {
    fn io_error(&self, op: &'static str, segno: u64, source: io::Error) -> WalError {
        WalError::Io {
            op,
            path: self.dir.join(segment_file_name(self.timeline, segno)),
            source,
        }
    }
}

/// A process's open segment file (PostgreSQL's `openLogFile`). Segments
/// behind the write position are never written again, so keeping one open
/// file is enough; it is closed when writing moves to another segment.
#[derive(Default)]
pub(crate) struct SegmentWriter {
    open: Option<(TimeLineId, u64, File)>,
}

impl SegmentWriter {
    fn file(&mut self, files: &Files<'_>, segno: u64) -> Result<&File, WalError> {
        if !matches!(&self.open, Some((t, s, _)) if *t == files.timeline && *s == segno) {
            self.open = None;
            let file = open_or_create_segment(files.dir, files.timeline, segno)?;
            self.open = Some((files.timeline, segno, file));
        }
        Ok(&self.open.as_ref().expect("opened just above").2)
    }

    /// Writes `len` bytes from `src` (WAL buffers) at `at`, inside one
    /// segment.
    fn write(
        &mut self,
        files: &Files<'_>,
        at: Lsn,
        src: *const u8,
        len: usize,
    ) -> Result<(), WalError> {
        let segno = at.segment();
        debug_assert!(at.segment_offset() + len as u64 <= crate::types::WAL_SEGMENT_BYTES);
        let fd = self.file(files, segno)?.as_raw_fd();
        let mut done = 0usize;
        while done < len {
            // SAFETY: `src..src + len` lies in the WAL buffers, which stay
            // mapped; the kernel only reads it. Bytes past the target on a
            // partial last page may change concurrently (another inserter's
            // record); they are written again later, as in PostgreSQL.
            let r = unsafe {
                libc::pwrite(
                    fd,
                    src.add(done).cast(),
                    len - done,
                    (at.segment_offset() + done as u64) as libc::off_t,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(files.io_error("write to", segno, e));
            }
            if r == 0 {
                return Err(files.io_error("write to", segno, io::ErrorKind::WriteZero.into()));
            }
            done += r as usize;
        }
        Ok(())
    }

    /// `fdatasync` of segment `segno`.
    fn sync(&mut self, files: &Files<'_>, segno: u64) -> Result<(), WalError> {
        self.file(files, segno)?
            .sync_data()
            .map_err(|e| files.io_error("fsync", segno, e))
    }
}

/// The WAL rule for the buffer manager and the commit log.
impl WalFlush for SharedWal<'_> {
    fn flush_wal_up_to(&self, lsn: Lsn) -> Result<(), PgError> {
        self.flush(lsn).map_err(|e| wal_error_to_pg(&e))
    }
}

/// How a WAL error reaches a client: a flush request past the end of WAL
/// is an ERROR (a corrupt page LSN), anything else a PANIC.
pub fn wal_error_to_pg(e: &WalError) -> PgError {
    match e {
        WalError::FlushPastEnd { requested, flushed } => PgError::internal(format!(
            "xlog flush request {requested} is not satisfied --- flushed only to {flushed}"
        )),
        WalError::Io { .. } => {
            PgError::new(SqlState::IO_ERROR, e.to_string()).with_severity(Severity::Panic)
        }
        _ => PgError::internal(e.to_string()).with_severity(Severity::Panic),
    }
}
