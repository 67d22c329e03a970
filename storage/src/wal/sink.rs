//! Where WAL bytes go: segment files in `pg_wal/`, or memory for tests.
//!
//! [`SegmentFileSink`] is the file side of the WAL writer: it writes bytes
//! at an LSN into the segment file that holds it (`pwrite`), creating
//! segments as the stream reaches them, and makes them durable with
//! [`SegmentFileSink::sync`]. [`MemoryWal`] keeps segments in memory so
//! tests can lay out and damage WAL cheaply; both are also [`WalSource`]s
//! for the reader.
//!
//! ```text
//!  pg_wal/
//!    xlogtemp.<pid>              being created: fallocated, fsynced, then
//!        │  rename()             renamed; never seen under a segment name
//!        ▼                       until it is whole
//!    000000010000000000000001    16 MB, zero where nothing was written
//!    000000010000000000000002
//! ```
//!
//! # Invariants
//!
//! 1. A file with a segment name is always a full 16 MB segment: it is
//!    built under a temporary name and renamed only after its space is
//!    allocated and fsynced, and the directory is fsynced after the rename.
//! 2. [`SegmentFileSink::sync`] returns only after every byte written
//!    through the sink since the previous `sync` is on disk (`fdatasync`).
//! 3. One process at a time writes a given `pg_wal` through a sink (the
//!    WAL writer role): segment creation does not guard against a second
//!    creator of the same segment.
//!
//! # Crash safety
//!
//! A crash while a segment is being created leaves at most an
//! `xlogtemp.*` file, which the next creation replaces. A crash between
//! writes and `sync` leaves a prefix of them, possibly a torn page: the
//! reader stops at the first record whose CRC fails, and no commit in the
//! lost part was acknowledged, because acknowledgement waits for `sync`.
//! Writing over an existing (recycled) segment leaves its old bytes after
//! the last record written; their page addresses, `prev` links and CRCs
//! do not match the new stream, so the reader ends there. (The WAL writer
//! proper writes whole pages from zeroed WAL buffers, as PostgreSQL does.)

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::types::{Lsn, WAL_SEGMENT_BYTES};
use crate::wal::reader::{PageRead, WalSource};
use crate::wal::segment::{segment_file_name, TimeLineId, WalSink, WAL_PAGE_BYTES};
use crate::wal::WalError;

/// WAL segments held in memory (tests, tools).
pub struct MemoryWal {
    timeline: TimeLineId,
    system_id: u64,
    segments: BTreeMap<u64, Vec<u8>>,
}

impl MemoryWal {
    pub fn new(timeline: TimeLineId, system_id: u64) -> MemoryWal {
        MemoryWal {
            timeline,
            system_id,
            segments: BTreeMap::new(),
        }
    }

    /// The bytes of segment `segno`, if it exists.
    pub fn segment_mut(&mut self, segno: u64) -> Option<&mut Vec<u8>> {
        self.segments.get_mut(&segno)
    }

    /// Installs (or replaces) segment `segno`; it is padded or cut to 16 MB.
    pub fn put_segment(&mut self, segno: u64, mut bytes: Vec<u8>) {
        bytes.resize(WAL_SEGMENT_BYTES as usize, 0);
        self.segments.insert(segno, bytes);
    }

    pub fn remove_segment(&mut self, segno: u64) -> Option<Vec<u8>> {
        self.segments.remove(&segno)
    }

    /// One byte of the stream, for tests that damage WAL.
    pub fn byte_mut(&mut self, lsn: Lsn) -> Option<&mut u8> {
        self.segments
            .get_mut(&lsn.segment())?
            .get_mut(lsn.segment_offset() as usize)
    }
}

impl WalSink for MemoryWal {
    fn timeline(&self) -> TimeLineId {
        self.timeline
    }
    fn system_id(&self) -> u64 {
        self.system_id
    }
    fn write_at(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), WalError> {
        let segment = self
            .segments
            .entry(lsn.segment())
            .or_insert_with(|| vec![0u8; WAL_SEGMENT_BYTES as usize]);
        let at = lsn.segment_offset() as usize;
        segment[at..at + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

impl WalSource for MemoryWal {
    fn read_page(
        &mut self,
        page: Lsn,
        buf: &mut [u8; WAL_PAGE_BYTES],
    ) -> Result<PageRead, WalError> {
        let Some(segment) = self.segments.get(&page.segment()) else {
            return Ok(PageRead::MissingSegment(segment_file_name(
                self.timeline,
                page.segment(),
            )));
        };
        let at = page.segment_offset() as usize;
        match segment.get(at..at + WAL_PAGE_BYTES) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(PageRead::Read)
            }
            None => Ok(PageRead::SegmentTooShort(segment_file_name(
                self.timeline,
                page.segment(),
            ))),
        }
    }
}

/// Writes WAL into segment files under `pg_wal/`.
pub struct SegmentFileSink {
    dir: PathBuf,
    timeline: TimeLineId,
    system_id: u64,
    /// Segments written since the last `sync`, with their files; the last
    /// one used stays open after `sync`.
    open: Vec<(u64, File, bool)>,
}

impl SegmentFileSink {
    /// A sink writing into `pg_wal` (which must exist).
    pub fn new(
        pg_wal: impl Into<PathBuf>,
        timeline: TimeLineId,
        system_id: u64,
    ) -> SegmentFileSink {
        SegmentFileSink {
            dir: pg_wal.into(),
            timeline,
            system_id,
            open: Vec::new(),
        }
    }

    pub fn segment_path(&self, segno: u64) -> PathBuf {
        self.dir.join(segment_file_name(self.timeline, segno))
    }

    /// Makes everything written so far durable, then closes all segment
    /// files but the most recently used.
    pub fn sync(&mut self) -> Result<(), WalError> {
        for (segno, file, dirty) in &mut self.open {
            if *dirty {
                file.sync_data()
                    .map_err(|e| io_error("fsync", &self.dir, *segno, self.timeline, e))?;
                *dirty = false;
            }
        }
        let keep = self.open.len().saturating_sub(1);
        self.open.drain(..keep);
        Ok(())
    }

    fn file_for(&mut self, segno: u64) -> Result<&File, WalError> {
        let index = match self.open.iter().position(|(s, _, _)| *s == segno) {
            Some(i) => i,
            None => {
                let file = open_or_create_segment(&self.dir, self.timeline, segno)?;
                self.open.push((segno, file, false));
                self.open.len() - 1
            }
        };
        // The most recently used file goes last, so `sync` keeps it open.
        let entry = self.open.remove(index);
        self.open.push(entry);
        let last = self.open.last_mut().expect("just pushed");
        last.2 = true;
        Ok(&last.1)
    }
}

impl WalSink for SegmentFileSink {
    fn timeline(&self) -> TimeLineId {
        self.timeline
    }
    fn system_id(&self) -> u64 {
        self.system_id
    }
    fn write_at(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), WalError> {
        let (dir, tli) = (self.dir.clone(), self.timeline);
        let file = self.file_for(lsn.segment())?;
        file.write_all_at(bytes, lsn.segment_offset())
            .map_err(|e| io_error("write to", &dir, lsn.segment(), tli, e))
    }
}

/// Opens segment `segno` for writing, creating it zero-filled if absent.
pub fn open_or_create_segment(dir: &Path, tli: TimeLineId, segno: u64) -> Result<File, WalError> {
    let path = dir.join(segment_file_name(tli, segno));
    match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(WalError::Io {
                op: "open",
                path,
                source: e,
            })
        }
    }
    let tmp = dir.join(format!("xlogtemp.{}", std::process::id()));
    fn err<'p>(op: &'static str, p: &'p Path) -> impl FnOnce(io::Error) -> WalError + 'p {
        move |source| WalError::Io {
            op,
            path: p.to_path_buf(),
            source,
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(err("create", &tmp))?;
    nix::fcntl::posix_fallocate(&file, 0, WAL_SEGMENT_BYTES as libc::off_t).map_err(|e| {
        WalError::Io {
            op: "allocate",
            path: tmp.clone(),
            source: e.into(),
        }
    })?;
    file.sync_all().map_err(err("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(err("rename", &tmp))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err("fsync", dir))?;
    Ok(file)
}

fn io_error(
    op: &'static str,
    dir: &Path,
    segno: u64,
    tli: TimeLineId,
    source: io::Error,
) -> WalError {
    WalError::Io {
        op,
        path: dir.join(segment_file_name(tli, segno)),
        source,
    }
}
