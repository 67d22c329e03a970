//! `SlruFiles`: reading and writing `pg_xact` pages in segment files.
//!
//! ```text
//!   <data dir>/pg_xact/0000    pages 0..31     xids 0 .. 1048575
//!                      0001    pages 32..63    xids 1048576 .. 2097151
//!                      ...
//!                      FFFF
//!                      10000   names widen past four hex digits (SegmentNo::file_name)
//! ```
//!
//! Each segment is up to 32 pages of 8 KB; page `p` sits at byte
//! `(p % 32) * 8192` of segment `p / 32`. Segments grow by writes; a page
//! that was never written reads as zeros, whether its segment file is
//! missing, shorter than the page, or has a hole there. Zeros mean "in
//! progress" for every xid, which is what a transaction never recorded is.
//!
//! Every process that touches the commit log has its own `SlruFiles` (it is
//! a path and a flag, no open descriptors), so it is safe to use after
//! `fork`. Files are opened for each operation: commit log I/O is rare (an
//! eviction, a checkpoint), and keeping no descriptors means nothing to
//! invalidate when segments are removed.
//!
//! # Crash safety
//!
//! [`SlruFiles::write_page`] does not fsync: a checkpoint calls
//! [`SlruFiles::fsync_segment`] for every segment written since the previous
//! one, then [`SlruFiles::fsync_dir`] so that new files' directory entries
//! are durable too. Until then, the WAL covers whatever a crash loses.
//! A torn page write mixes old and new bytes; every status is two bits inside
//! one byte, so each xid reads either its old or its new status, and replay
//! from the last checkpoint's redo point sets the new ones again.

use super::error::{ClogError, SlruOp};
use super::page::{ClogPageNo, PageBytes, SegmentNo};
use crate::types::BLCKSZ;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The commit log's directory, relative to the data directory.
pub const PG_XACT_DIR: &str = "pg_xact";

/// Mode of new segment files (PostgreSQL's `pg_file_create_mode`).
const SEGMENT_FILE_MODE: u32 = 0o600;

/// The `pg_xact` directory of one data directory.
#[derive(Clone, Debug)]
pub struct SlruFiles {
    data_dir: PathBuf,
    fsync: bool,
}

impl SlruFiles {
    /// The commit log of the cluster in `data_dir`, with fsync on.
    pub fn new(data_dir: impl Into<PathBuf>) -> SlruFiles {
        SlruFiles {
            data_dir: data_dir.into(),
            fsync: true,
        }
    }

    /// Follow the `fsync` setting: when off, the fsync calls do nothing
    /// (and a crash of the machine may lose commit statuses, as in
    /// PostgreSQL).
    pub fn with_fsync(mut self, fsync: bool) -> SlruFiles {
        self.fsync = fsync;
        self
    }

    /// `pg_xact/<name>`, as error messages print it.
    pub fn relative_path(seg: SegmentNo) -> String {
        format!("{PG_XACT_DIR}/{}", seg.file_name())
    }

    fn dir_path(&self) -> PathBuf {
        self.data_dir.join(PG_XACT_DIR)
    }

    fn segment_path(&self, seg: SegmentNo) -> PathBuf {
        self.dir_path().join(seg.file_name())
    }

    /// Create the empty `pg_xact` directory (initdb).
    pub fn create_dir(&self) -> Result<(), ClogError> {
        std::fs::create_dir(self.dir_path())
            .map_err(|e| ClogError::io(SlruOp::CreateDir, PG_XACT_DIR.into(), 0, e))
    }

    /// Read `page` into `buf`. A missing segment, or a segment that ends
    /// before or inside the page, gives zeros for the missing bytes.
    pub fn read_page(&self, page: ClogPageNo, buf: &mut PageBytes) -> Result<(), ClogError> {
        let seg = page.segment();
        let offset = page.offset_in_segment_bytes();
        let file = match File::open(self.segment_path(seg)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                buf.fill(0);
                return Ok(());
            }
            Err(e) => {
                return Err(ClogError::io(
                    SlruOp::Open,
                    Self::relative_path(seg),
                    offset,
                    e,
                ))
            }
        };
        let mut done = 0;
        while done < BLCKSZ {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ClogError::io(
                        SlruOp::Read,
                        Self::relative_path(seg),
                        offset,
                        e,
                    ))
                }
            }
        }
        buf[done..].fill(0);
        Ok(())
    }

    /// Write `buf` as `page`, creating the segment file if needed. Not
    /// durable until [`SlruFiles::fsync_segment`].
    pub fn write_page(&self, page: ClogPageNo, buf: &PageBytes) -> Result<(), ClogError> {
        let seg = page.segment();
        let offset = page.offset_in_segment_bytes();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(SEGMENT_FILE_MODE)
            .open(self.segment_path(seg))
            .map_err(|e| ClogError::io(SlruOp::Open, Self::relative_path(seg), offset, e))?;
        file.write_all_at(buf, offset)
            .map_err(|e| ClogError::io(SlruOp::Write, Self::relative_path(seg), offset, e))
    }

    /// Make a segment's written pages durable. A segment that no longer
    /// exists (truncated since it was written) needs nothing.
    pub fn fsync_segment(&self, seg: SegmentNo) -> Result<(), ClogError> {
        if !self.fsync {
            return Ok(());
        }
        let fail = |e| ClogError::io(SlruOp::Fsync, Self::relative_path(seg), 0, e);
        match File::open(self.segment_path(seg)) {
            Ok(file) => file.sync_all().map_err(fail),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClogError::io(SlruOp::Open, Self::relative_path(seg), 0, e)),
        }
    }

    /// Make the directory's entries (new segment files) durable.
    pub fn fsync_dir(&self) -> Result<(), ClogError> {
        if !self.fsync {
            return Ok(());
        }
        File::open(self.dir_path())
            .and_then(|dir| dir.sync_all())
            .map_err(|e| ClogError::io(SlruOp::Fsync, PG_XACT_DIR.into(), 0, e))
    }

    /// The segments present, in increasing order. Other files are ignored.
    pub fn segments(&self) -> Result<Vec<SegmentNo>, ClogError> {
        let scan_failed = |e| ClogError::io(SlruOp::ScanDir, PG_XACT_DIR.into(), 0, e);
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(self.dir_path()).map_err(scan_failed)? {
            let entry = entry.map_err(scan_failed)?;
            if let Some(seg) = entry
                .file_name()
                .to_str()
                .and_then(SegmentNo::parse_file_name)
            {
                segments.push(seg);
            }
        }
        segments.sort();
        Ok(segments)
    }

    /// Remove every segment whose pages all come before `cutoff`; the
    /// segment holding `cutoff` stays. Returns the segments removed.
    pub fn truncate_before(&self, cutoff: ClogPageNo) -> Result<Vec<SegmentNo>, ClogError> {
        let keep_from = cutoff.segment();
        let mut removed = Vec::new();
        for seg in self.segments()? {
            if seg >= keep_from {
                break;
            }
            log::debug!("removing file \"{}\"", Self::relative_path(seg));
            match std::fs::remove_file(self.segment_path(seg)) {
                Ok(()) => removed.push(seg),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ClogError::io(
                        SlruOp::Remove,
                        Self::relative_path(seg),
                        0,
                        e,
                    ))
                }
            }
        }
        Ok(removed)
    }

    /// The data directory this commit log belongs to.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clog::page::{get_status, set_status, XidStatus};
    use crate::types::Xid;
    use pgerror::PgError;

    fn pg_xact() -> (tempfile::TempDir, SlruFiles) {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = SlruFiles::new(dir.path());
        files.create_dir().expect("create pg_xact");
        (dir, files)
    }

    fn page_with(xid: Xid, status: XidStatus) -> PageBytes {
        let mut page = [0u8; BLCKSZ];
        set_status(&mut page, xid, status);
        page
    }

    #[test]
    fn a_missing_segment_reads_as_all_in_progress() {
        let (_dir, files) = pg_xact();
        let mut buf = [0xAAu8; BLCKSZ];
        files.read_page(ClogPageNo(40), &mut buf).unwrap();
        assert!(buf.iter().all(|b| *b == 0));
        assert!(
            files.segments().unwrap().is_empty(),
            "reading creates nothing"
        );
    }

    #[test]
    fn a_write_creates_the_segment_and_reads_back() {
        let (dir, files) = pg_xact();
        let xid = Xid(33 * 32768 + 77);
        files
            .write_page(ClogPageNo(33), &page_with(xid, XidStatus::Committed))
            .unwrap();
        let seg_file = dir.path().join("pg_xact/0001");
        assert_eq!(
            std::fs::metadata(&seg_file).unwrap().len(),
            2 * BLCKSZ as u64
        );

        let mut buf = [0u8; BLCKSZ];
        files.read_page(ClogPageNo(33), &mut buf).unwrap();
        assert_eq!(get_status(&buf, xid), XidStatus::Committed);
        // Page 32 is a hole before it, page 34 lies past the end: zeros.
        for page in [32, 34, 63] {
            let mut buf = [0xFFu8; BLCKSZ];
            files.read_page(ClogPageNo(page), &mut buf).unwrap();
            assert!(buf.iter().all(|b| *b == 0), "page {page}");
        }
        files.fsync_segment(SegmentNo(1)).unwrap();
        files.fsync_segment(SegmentNo(9)).unwrap();
        files.fsync_dir().unwrap();
    }

    #[test]
    fn a_segment_cut_inside_a_page_reads_the_rest_as_zeros() {
        let (dir, files) = pg_xact();
        files.write_page(ClogPageNo(0), &[0x55; BLCKSZ]).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(dir.path().join("pg_xact/0000"))
            .unwrap();
        f.set_len(100).unwrap();
        let mut buf = [0u8; BLCKSZ];
        files.read_page(ClogPageNo(0), &mut buf).unwrap();
        assert!(buf[..100].iter().all(|b| *b == 0x55));
        assert!(buf[100..].iter().all(|b| *b == 0));
    }

    #[test]
    fn wide_segment_numbers_get_wide_names() {
        let (dir, files) = pg_xact();
        let page = SegmentNo(0x12345).first_page();
        files.write_page(page, &[1; BLCKSZ]).unwrap();
        assert!(dir.path().join("pg_xact/12345").exists());
        assert_eq!(files.segments().unwrap(), vec![SegmentNo(0x12345)]);
    }

    #[test]
    fn truncate_removes_only_whole_segments_before_the_cutoff() {
        let (dir, files) = pg_xact();
        for seg in [0, 1, 2, 3] {
            files
                .write_page(SegmentNo(seg).first_page(), &[1; BLCKSZ])
                .unwrap();
        }
        std::fs::write(dir.path().join("pg_xact/README"), "not a segment").unwrap();
        // Page 95 is the last of segment 2: segments 0 and 1 go, 2 stays.
        let removed = files.truncate_before(ClogPageNo(95)).unwrap();
        assert_eq!(removed, vec![SegmentNo(0), SegmentNo(1)]);
        assert_eq!(files.segments().unwrap(), vec![SegmentNo(2), SegmentNo(3)]);
        // The first page of segment 3 as cutoff removes segment 2 entirely.
        assert_eq!(
            files.truncate_before(ClogPageNo(96)).unwrap(),
            vec![SegmentNo(2)]
        );
        assert!(dir.path().join("pg_xact/README").exists());
    }

    #[test]
    fn an_unopenable_segment_is_an_error_naming_the_file() {
        let (dir, files) = pg_xact();
        std::fs::create_dir(dir.path().join("pg_xact/0000")).unwrap();
        let mut buf = [0u8; BLCKSZ];
        let err = files.read_page(ClogPageNo(3), &mut buf).unwrap_err();
        let pg = PgError::from(err.for_xid(Xid(1234)));
        assert_eq!(pg.message, "could not access status of transaction 1234");
        assert_eq!(
            pg.detail.as_deref(),
            Some("Could not read from file \"pg_xact/0000\" at offset 24576: Is a directory.")
        );
        let err = files.write_page(ClogPageNo(3), &buf).unwrap_err();
        assert_eq!(
            err.detail().as_deref(),
            Some("Could not open file \"pg_xact/0000\": Is a directory.")
        );
    }

    #[test]
    fn a_missing_directory_fails_writes() {
        let dir = tempfile::tempdir().unwrap();
        let files = SlruFiles::new(dir.path());
        let err = files.write_page(ClogPageNo(0), &[0; BLCKSZ]).unwrap_err();
        assert_eq!(
            err.detail().as_deref(),
            Some("Could not open file \"pg_xact/0000\": No such file or directory.")
        );
    }
}
