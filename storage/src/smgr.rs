//! Relation files: the storage manager (PostgreSQL's `smgr.c` and `md.c`).
//!
//! Every fork of a relation is a chain of segment files of 8 KB blocks,
//! named after its [`RelFileLocator`] relative to the data directory:
//!
//! ```text
//! base/<db oid>/<relfilenode>[_fsm|_vm|_init][.<segno>]   default tablespace
//! global/<relfilenode>[_fsm|_vm|_init][.<segno>]          shared catalogs (db 0)
//!
//! block b of a fork  ->  segment  b / segment_size_blocks   (".0" is written as no suffix)
//!                        offset   (b % segment_size_blocks) * BLCKSZ
//!
//!   16384        16384.1       16384.2      16384.3
//!  [full 1 GB]  [full 1 GB]  [partial]     [0 bytes, inactive]
//! ```
//!
//! Every process that touches relation pages owns one [`Smgr`]: backends
//! (through the buffer manager), the startup process during redo, and the
//! checkpointer and bgwriter when they write dirty buffers. Nothing here is
//! in shared memory; an `Smgr` is the process's cache of open file
//! descriptors, its set of segments waiting for fsync, and the rules below.
//! It raises no signals and handles none.
//!
//! Here: paths, [`Smgr`] and its options. `error.rs`: [`SmgrError`] with
//! PostgreSQL's messages and SQLSTATEs. `fd_cache.rs`: the bounded cache of
//! open files. `tests.rs`: the rules below, one test each.
//!
//! # Invariants
//!
//! 1. On disk a fork is: zero or more *full* segments of exactly
//!    `segment_size_blocks` blocks, then exactly one *partial* segment
//!    (0 <= blocks < segment_size_blocks), then optionally *inactive*
//!    segments of 0 bytes left behind by [`Smgr::truncate`]. Hence
//!    `nblocks = full segments * segment_size_blocks + blocks of the partial
//!    one`, found by walking from segment 0 until a segment is not full.
//! 2. [`Smgr::extend`] writes only block `nblocks`, so a segment file is
//!    created only when the one before it is full, and at most one per call
//!    (md.c's guard against the "Sorcerer's Apprentice": a wild block number
//!    must not create thousands of files).
//! 3. [`Smgr::read`] and [`Smgr::write`] never create files, and open segment
//!    `k > 0` only when segment `k - 1` is full; otherwise they fail with
//!    `previous segment is only N blocks`.
//! 4. At most `max_open_files` segment files are open; beyond that the least
//!    recently used one is closed. Closing is always safe: there is no
//!    user-space buffering, every write is a `pwrite` straight to the kernel.
//! 5. The number of leading full segments of a fork is cached (as md.c
//!    caches its chain of open segments) so that `nblocks` stats one file.
//!    Only this process's own truncate/unlink lower it. When another process
//!    truncates or drops a relation, the caller must call [`Smgr::close`] on
//!    the shared invalidation message (PostgreSQL's smgr invalidation), which
//!    also drops descriptors that may point at unlinked files.
//! 6. Truncation keeps segment files that become inactive (0 bytes) instead
//!    of unlinking them: another process may hold a descriptor to one, and if
//!    the relation grows back, its writes must land in the live file, not in
//!    an unlinked copy that disappears.
//! 7. The largest length this process has seen or made for a fork (by
//!    `nblocks`, `extend`, `truncate`) is cached as a lower bound, so that
//!    [`Smgr::block_exists`] answers without a `stat` for a block below it:
//!    forks only grow, except by a truncate or drop, and those lower or
//!    forget it here (own) or come with [`Smgr::close`] (another process's,
//!    invariant 5). `nblocks` itself always asks the file system: another
//!    process may have extended the fork.
//!
//! # Crash safety
//!
//! 1. WAL first is the caller's rule: the buffer manager flushes WAL up to a
//!    page's LSN before [`Smgr::write`]; file creation, truncation and drop
//!    are WAL-logged by the caller first (truncation only after its WAL
//!    record is flushed). Redo repeats them: `create(.., is_redo = true)`
//!    accepts an existing file, `unlink(.., is_redo = true)` removes at once.
//! 2. A created file is durable before `create`/`extend` returns: after
//!    creating a segment file (or a database directory) the parent directory
//!    is fsynced. The same after removing files.
//! 3. Block writes become durable only at fsync, and **a write's fsync is
//!    never lost**: before `write`, `extend` or `truncate` returns, the
//!    segment is either
//!    - in this process's dirty set, if it keeps its own (the checkpointer,
//!      and the startup process, which writes its own end-of-recovery
//!      checkpoint): a checkpoint is complete only after
//!      [`Smgr::sync_pending`] has fsynced them; or
//!    - handed to the checkpointer through the [`SyncRequestForwarder`]
//!      (every other process: backends, bgwriter; PostgreSQL's
//!      `RegisterSyncRequest`), whose checkpoint fsyncs it; or
//!    - fsynced right here, when the forwarder cannot take it (queue full
//!      and not compactable, or no checkpointer running).
//!
//!    A failed fsync is a PANIC
//!    ([`SmgrError::to_pg_error`]): Linux may drop the dirty pages and clear
//!    the error, so a retry could report a success that is not one; recovery
//!    from WAL is the only safe path. A descriptor reopened after LRU
//!    eviction still reports an earlier writeback error on Linux >= 4.16.
//! 4. Truncation works from the last segment backwards, so a crash midway
//!    leaves a fork that satisfies invariant 1 with a length between the old
//!    and the new; replaying the truncate record finishes the job.
//! 5. Dropping a main fork (outside redo) truncates segment 0 to zero bytes
//!    and leaves it as a *tombstone* until after the next checkpoint
//!    ([`Smgr::take_pending_unlinks`], [`Smgr::complete_unlink`]; a process
//!    with a forwarder hands the tombstone to the checkpointer instead,
//!    which removes it after its next checkpoint): while WAL
//!    that names the old relfilenode may still be replayed, the number must
//!    not be reused by a new relation (whose `create` fails on the
//!    tombstone). Other forks and later segments are removed at once.
//! 6. A block inside a file that was never written (a hole) reads as zeros,
//!    by the filesystem's rule; the page layer treats an all-zero page as new.
//!
//! With `fsync = off` ([`SmgrOptions::fsync`]) nothing is fsynced, files or
//! directories, and no dirty set is kept: a crash of the machine may then
//! lose or corrupt anything.
//!
//! # Locking
//!
//! None here. Callers serialize what must be: the relation extension lock
//! around `nblocks` + `extend`, a buffer's I/O-in-progress flag around the
//! reads and writes of one block.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::types::{
    BlockNumber, ForkNumber, RelFileLocator, BLCKSZ, DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID,
    RELSEG_SIZE_BLOCKS,
};

mod error;
mod fd_cache;

pub use error::SmgrError;
pub(crate) use error::{sqlstate_for_file_access, Errm};
use fd_cache::FdCache;

/// PostgreSQL's `max_files_per_process` default: segment files one process
/// keeps open before closing the least recently used.
pub const DEFAULT_MAX_OPEN_FILES: usize = 1000;

/// The highest valid block number (`InvalidBlockNumber` is `u32::MAX`).
pub const MAX_BLOCK_NUMBER: u32 = u32::MAX - 1;

/// Modes of new files and directories (PostgreSQL's `pg_file_create_mode`
/// and `pg_dir_create_mode`).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

const ALL_FORKS: [ForkNumber; 4] = [
    ForkNumber::Main,
    ForkNumber::Fsm,
    ForkNumber::VisibilityMap,
    ForkNumber::Init,
];

/// The directory holding a relation's files, relative to the data directory.
/// Tablespaces other than `pg_default` and `pg_global` are not created by
/// anything yet; their files go under `pg_tblspc/<spc>/<db>/` (PostgreSQL
/// adds a version directory there).
pub fn reldir(rel: RelFileLocator) -> String {
    if rel.spc_oid == GLOBALTABLESPACE_OID {
        "global".to_string()
    } else if rel.spc_oid == DEFAULTTABLESPACE_OID {
        format!("base/{}", rel.db_oid)
    } else {
        format!("pg_tblspc/{}/{}", rel.spc_oid, rel.db_oid)
    }
}

/// PostgreSQL's `relpath`: segment 0 of a fork, e.g. `base/5/16384_fsm`.
pub fn relpath(rel: RelFileLocator, fork: ForkNumber) -> String {
    format!("{}/{}{}", reldir(rel), rel.rel_number, fork.suffix())
}

/// One segment file: `base/5/16384.2`; segment 0 has no suffix.
pub fn segment_path(rel: RelFileLocator, fork: ForkNumber, segno: u32) -> String {
    if segno == 0 {
        relpath(rel, fork)
    } else {
        format!("{}.{}", relpath(rel, fork), segno)
    }
}

/// Names one segment file of one fork: the unit of open files and of fsync
/// requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SegmentTag {
    pub rel: RelFileLocator,
    pub fork: ForkNumber,
    pub segno: u32,
}

impl SegmentTag {
    /// Path relative to the data directory.
    pub fn path(&self) -> String {
        segment_path(self.rel, self.fork, self.segno)
    }
}

/// Where a process that does not run checkpoints sends the fsyncs and
/// tombstone removals its writes and drops call for: the checkpointer's
/// request queue (`crate::checkpointer_shmem`). Crash safety rule 3.
pub trait SyncRequestForwarder: Send {
    /// Queues an fsync of `tag` for the next checkpoint. `false` if it
    /// could not be queued: the caller fsyncs the segment itself at once.
    fn forward_fsync(&self, tag: SegmentTag) -> bool;
    /// Queues the removal of the tombstone `tag` after the next checkpoint
    /// (waiting while the queue is full). `false` if no checkpointer runs:
    /// the caller keeps the tombstone in its own list.
    fn forward_unlink(&self, tag: SegmentTag) -> bool;
}

/// Settings fixed when a process builds its [`Smgr`].
#[derive(Clone, Debug)]
pub struct SmgrOptions {
    /// The `fsync` setting. When false, no file or directory is ever fsynced.
    pub fsync: bool,
    /// Blocks per segment file: [`RELSEG_SIZE_BLOCKS`] (1 GB) in a server;
    /// tests use a few blocks to exercise segment boundaries.
    pub segment_size_blocks: u32,
    /// Segment files kept open at once; the least recently used is closed
    /// beyond this. At least 1.
    pub max_open_files: usize,
}

impl Default for SmgrOptions {
    fn default() -> SmgrOptions {
        SmgrOptions {
            fsync: true,
            segment_size_blocks: RELSEG_SIZE_BLOCKS,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
        }
    }
}

/// One process's access to relation files. See the module documentation.
pub struct Smgr {
    data_dir: PathBuf,
    options: SmgrOptions,
    /// Open segment files, at most `max_open_files` (invariant 4).
    fds: FdCache,
    /// Per fork, how many leading segments are known to be full (invariant 5).
    full_segments: HashMap<(RelFileLocator, ForkNumber), u32>,
    /// Per fork, a length it is known to have at least (invariant 7).
    known_blocks: HashMap<(RelFileLocator, ForkNumber), u32>,
    /// Segments written since their last fsync (crash safety rule 3).
    pending_syncs: HashSet<SegmentTag>,
    /// Tombstones to remove after the next checkpoint (crash safety rule 5).
    pending_unlinks: Vec<SegmentTag>,
    /// Set in processes that hand fsyncs and tombstones to the checkpointer
    /// (crash safety rule 3); `None` in those that run checkpoints.
    forwarder: Option<Box<dyn SyncRequestForwarder>>,
}

/// Whether opening a segment may create it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Existing,
    Create,
}

impl Smgr {
    /// A storage manager for the data directory `data_dir`. Opens nothing.
    pub fn new(data_dir: impl Into<PathBuf>, options: SmgrOptions) -> Smgr {
        assert!(
            options.segment_size_blocks > 0,
            "a segment holds at least one block"
        );
        Smgr {
            data_dir: data_dir.into(),
            fds: FdCache::new(options.max_open_files),
            options,
            full_segments: HashMap::new(),
            known_blocks: HashMap::new(),
            pending_syncs: HashSet::new(),
            pending_unlinks: Vec::new(),
            forwarder: None,
        }
    }

    /// From now on, hand fsync requests and tombstones to `forwarder`
    /// instead of keeping them (every process except the checkpointer and
    /// the startup process). Segments already in the dirty set are
    /// forwarded too, or fsynced if that fails.
    pub fn set_sync_forwarder(
        &mut self,
        forwarder: Box<dyn SyncRequestForwarder>,
    ) -> Result<(), SmgrError> {
        self.forwarder = Some(forwarder);
        for tag in self.take_pending_syncs() {
            self.register_dirty_segment(tag)?;
        }
        for tag in std::mem::take(&mut self.pending_unlinks) {
            self.register_tombstone(tag);
        }
        Ok(())
    }

    /// Whether fsyncs and tombstones go to the checkpointer.
    pub fn forwards_sync_requests(&self) -> bool {
        self.forwarder.is_some()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn options(&self) -> &SmgrOptions {
        &self.options
    }

    /// How many segment files this process holds open now.
    pub fn open_file_count(&self) -> usize {
        self.fds.len()
    }

    /// Creates segment 0 of a fork, and the database directory if missing.
    /// An existing file is an error (`File exists`) unless `is_redo`.
    pub fn create(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        is_redo: bool,
    ) -> Result<(), SmgrError> {
        self.close_fork(rel, fork);
        self.ensure_reldir(rel, is_redo)?;
        let tag = SegmentTag {
            rel,
            fork,
            segno: 0,
        };
        let path = tag.path();
        let abs = self.data_dir.join(&path);
        let file = match open_file(&abs, true) {
            Ok(file) => {
                self.fsync_parent(&path)?;
                file
            }
            Err(e) if is_redo && e.kind() == io::ErrorKind::AlreadyExists => {
                open_file(&abs, false).map_err(|_| SmgrError::Create { path, source: e })?
            }
            Err(source) => return Err(SmgrError::Create { path, source }),
        };
        self.fds.insert(tag, file);
        Ok(())
    }

    /// Whether segment 0 of the fork exists (a dropped main fork's tombstone
    /// counts until it is removed, as in PostgreSQL).
    pub fn exists(&self, rel: RelFileLocator, fork: ForkNumber) -> Result<bool, SmgrError> {
        let path = relpath(rel, fork);
        self.data_dir
            .join(&path)
            .try_exists()
            .map_err(|source| SmgrError::Stat { path, source })
    }

    /// The fork's length in blocks (invariant 1). A missing segment 0 is an
    /// error ([`SmgrError::is_not_found`]).
    pub fn nblocks(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<u32, SmgrError> {
        let seg = u64::from(self.options.segment_size_blocks);
        let mut segno = self.full_segments.get(&(rel, fork)).copied().unwrap_or(0);
        loop {
            let tag = SegmentTag { rel, fork, segno };
            let blocks = match self.segment_blocks(tag) {
                Ok(blocks) => blocks,
                // The segment after a full one may not exist yet.
                Err(e) if segno > 0 && e.is_not_found() => 0,
                Err(e) => return Err(e),
            };
            let total = u64::from(segno) * seg + blocks;
            if blocks < seg || total > u64::from(MAX_BLOCK_NUMBER) {
                let n = total.min(u64::from(MAX_BLOCK_NUMBER)) as u32;
                self.known_blocks.insert((rel, fork), n);
                return Ok(n);
            }
            segno += 1;
            self.full_segments.insert((rel, fork), segno);
        }
    }

    /// Appends block `blkno`, which must be the fork's current length,
    /// creating the next segment file at a segment boundary.
    pub fn extend(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        let blkno = blkno.0;
        if blkno > MAX_BLOCK_NUMBER {
            return Err(SmgrError::ExtendLimit {
                path: relpath(rel, fork),
            });
        }
        let nblocks = self.nblocks(rel, fork)?;
        if blkno != nblocks {
            return Err(SmgrError::ExtendNotAtEnd {
                path: relpath(rel, fork),
                blkno,
                nblocks,
            });
        }
        let (tag, offset) = self.locate(rel, fork, blkno);
        let file = self.open_segment(tag, Some(blkno), Open::Create)?;
        match pwrite_full(file, page, offset) {
            Ok(n) if n == BLCKSZ => {}
            Ok(written_bytes) => {
                return Err(SmgrError::ShortExtend {
                    path: tag.path(),
                    blkno,
                    written_bytes,
                })
            }
            Err(source) => {
                return Err(SmgrError::Extend {
                    path: tag.path(),
                    source,
                })
            }
        }
        self.register_dirty_segment(tag)?;
        if (blkno + 1) % self.options.segment_size_blocks == 0 {
            self.full_segments.insert((rel, fork), tag.segno + 1);
        }
        let known = self.known_blocks.entry((rel, fork)).or_insert(0);
        *known = (*known).max(blkno + 1);
        Ok(())
    }

    /// Reads block `blkno`. A block at or past the end of its segment file
    /// is an error (`read only 0 of 8192 bytes`); a hole reads as zeros.
    pub fn read(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &mut [u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        let blkno = blkno.0;
        let (tag, offset) = self.locate(rel, fork, blkno);
        let file = self.open_block_segment(tag, blkno)?;
        match pread_full(file, page, offset) {
            Ok(n) if n == BLCKSZ => Ok(()),
            Ok(read_bytes) => Err(SmgrError::ShortRead {
                path: tag.path(),
                blkno,
                read_bytes,
            }),
            Err(source) => Err(SmgrError::Read {
                path: tag.path(),
                blkno,
                source,
            }),
        }
    }

    /// Overwrites block `blkno`, which must exist (`blkno < nblocks`: like
    /// PostgreSQL, this is not checked beyond the segment existing).
    pub fn write(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
        page: &[u8; BLCKSZ],
    ) -> Result<(), SmgrError> {
        let blkno = blkno.0;
        let (tag, offset) = self.locate(rel, fork, blkno);
        let file = self.open_block_segment(tag, blkno)?;
        match pwrite_full(file, page, offset) {
            Ok(n) if n == BLCKSZ => {}
            Ok(written_bytes) => {
                return Err(SmgrError::ShortWrite {
                    path: tag.path(),
                    blkno,
                    written_bytes,
                })
            }
            Err(source) => {
                return Err(SmgrError::Write {
                    path: tag.path(),
                    blkno,
                    source,
                })
            }
        }
        self.register_dirty_segment(tag)?;
        Ok(())
    }

    /// Shortens the fork to `nblocks` blocks, last segment first (crash
    /// safety rule 4); segments wholly past the end become inactive
    /// (0 bytes, kept: invariant 6).
    pub fn truncate(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        nblocks: u32,
    ) -> Result<(), SmgrError> {
        let current = self.nblocks(rel, fork)?;
        if nblocks > current {
            return Err(SmgrError::TruncateBeyondEnd {
                path: relpath(rel, fork),
                nblocks,
                current,
            });
        }
        if nblocks == current {
            return Ok(());
        }
        let seg = self.options.segment_size_blocks;
        let known_full = self.full_segments.get(&(rel, fork)).copied().unwrap_or(0);
        self.full_segments
            .insert((rel, fork), known_full.min(nblocks / seg));
        self.known_blocks.insert((rel, fork), nblocks);
        let last_segno = current / seg;
        for segno in (0..=last_segno).rev() {
            let prior_blocks = u64::from(segno) * u64::from(seg);
            if prior_blocks + u64::from(seg) <= u64::from(nblocks) {
                break; // this and every earlier segment stay whole
            }
            let keep_blocks = u64::from(nblocks).saturating_sub(prior_blocks);
            let tag = SegmentTag { rel, fork, segno };
            let file = match self.open_segment(tag, None, Open::Existing) {
                Ok(file) => file,
                // The segment after an exactly full one need not exist.
                Err(e) if segno == last_segno && segno > 0 && e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            set_len(file, keep_blocks * BLCKSZ as u64).map_err(|source| SmgrError::Truncate {
                path: tag.path(),
                nblocks,
                source,
            })?;
            self.register_dirty_segment(tag)?;
        }
        Ok(())
    }

    /// Removes one fork (`Some`) or all forks (`None`) of a relation:
    /// truncates each segment to zero (freeing the space even where other
    /// processes still hold descriptors), then unlinks it, except that a main
    /// fork's segment 0 stays as a tombstone unless `is_redo` (crash safety
    /// rule 5). Missing files are fine. Goes on past failures and returns
    /// the first; the caller, usually past commit, logs it as a WARNING.
    pub fn unlink(
        &mut self,
        rel: RelFileLocator,
        fork: Option<ForkNumber>,
        is_redo: bool,
    ) -> Result<(), SmgrError> {
        let forks = match fork {
            Some(fork) => vec![fork],
            None => ALL_FORKS.to_vec(),
        };
        let mut first_error = None;
        let mut removed_any = false;
        for fork in forks {
            self.close_fork(rel, fork);
            self.pending_syncs
                .retain(|t| !(t.rel == rel && t.fork == fork));
            for segno in 0.. {
                let tag = SegmentTag { rel, fork, segno };
                let path = tag.path();
                let abs = self.data_dir.join(&path);
                match truncate_path(&abs) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(source) => {
                        let path = path.clone();
                        first_error.get_or_insert(SmgrError::Truncate {
                            path,
                            nblocks: 0,
                            source,
                        });
                    }
                    Ok(()) => {}
                }
                if segno == 0 && fork == ForkNumber::Main && !is_redo {
                    self.register_tombstone(tag);
                    continue;
                }
                match std::fs::remove_file(&abs) {
                    Ok(()) => removed_any = true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(source) => {
                        first_error.get_or_insert(SmgrError::Remove { path, source });
                        break;
                    }
                }
            }
        }
        if removed_any {
            if let Err(e) = self.fsync_parent(&relpath(rel, ForkNumber::Main)) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Adds a tombstone to this process's list (the checkpointer, for
    /// requests absorbed from other processes); removed after the next
    /// checkpoint.
    pub fn register_unlink(&mut self, tag: SegmentTag) {
        if !self.pending_unlinks.contains(&tag) {
            self.pending_unlinks.push(tag);
        }
    }

    /// Drains the tombstones left by `unlink`; the checkpointer passes each
    /// to [`Smgr::complete_unlink`] once the next checkpoint has completed.
    pub fn take_pending_unlinks(&mut self) -> Vec<SegmentTag> {
        std::mem::take(&mut self.pending_unlinks)
    }

    /// Removes a tombstone (or any segment file); a missing file is fine.
    pub fn complete_unlink(&mut self, tag: SegmentTag) -> Result<(), SmgrError> {
        self.fds.remove(&tag);
        let path = tag.path();
        match std::fs::remove_file(self.data_dir.join(&path)) {
            Ok(()) => self.fsync_parent(&path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SmgrError::Remove { path, source }),
        }
    }

    /// Fsyncs every segment of the fork now (PostgreSQL's `immedsync`), for
    /// callers that wrote without WAL and need the data durable at once.
    pub fn sync(&mut self, rel: RelFileLocator, fork: ForkNumber) -> Result<(), SmgrError> {
        if !self.options.fsync {
            return Ok(());
        }
        let last_segno = self.nblocks(rel, fork)? / self.options.segment_size_blocks;
        let mut tags: Vec<SegmentTag> = (0..=last_segno)
            .map(|segno| SegmentTag { rel, fork, segno })
            .collect();
        // Inactive segments truncated since their last fsync.
        tags.extend(
            self.pending_syncs
                .iter()
                .filter(|t| t.rel == rel && t.fork == fork && t.segno > last_segno),
        );
        for tag in tags {
            match self.open_segment(tag, None, Open::Existing) {
                Ok(file) => fsync_file(file).map_err(|source| SmgrError::Fsync {
                    path: tag.path(),
                    source,
                })?,
                Err(e) if tag.segno > 0 && e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            self.pending_syncs.remove(&tag);
        }
        Ok(())
    }

    /// Records in this process's own dirty set that a segment must be
    /// fsynced before the next checkpoint completes; the checkpointer calls
    /// it for requests absorbed from other processes. Does nothing with
    /// `fsync = off`.
    pub fn register_sync(&mut self, tag: SegmentTag) {
        if self.options.fsync {
            self.pending_syncs.insert(tag);
        }
    }

    /// After a write to `tag` (PostgreSQL's `register_dirty_segment`),
    /// crash safety rule 3: forward the fsync, or fsync now if it cannot be
    /// forwarded, or keep it in the dirty set.
    fn register_dirty_segment(&mut self, tag: SegmentTag) -> Result<(), SmgrError> {
        if !self.options.fsync {
            return Ok(());
        }
        let Some(forwarder) = &self.forwarder else {
            self.pending_syncs.insert(tag);
            return Ok(());
        };
        if forwarder.forward_fsync(tag) {
            return Ok(());
        }
        log::debug!("could not forward fsync request because request queue is full");
        let file = self.open_segment(tag, None, Open::Existing)?;
        fsync_file(file).map_err(|source| SmgrError::Fsync {
            path: tag.path(),
            source,
        })
    }

    /// A dropped main fork's tombstone: to the checkpointer if there is a
    /// forwarder and a checkpointer takes it, else into our own list.
    fn register_tombstone(&mut self, tag: SegmentTag) {
        if let Some(forwarder) = &self.forwarder {
            if forwarder.forward_unlink(tag) {
                return;
            }
        }
        self.register_unlink(tag);
    }

    /// Drains the dirty set without fsyncing, to hand it to the process that
    /// will.
    pub fn take_pending_syncs(&mut self) -> Vec<SegmentTag> {
        self.pending_syncs.drain().collect()
    }

    /// Fsyncs every segment in the dirty set and empties it; returns how
    /// many were fsynced. A segment whose file has gone (dropped since) is
    /// skipped, as PostgreSQL allows ENOENT here. On error the segments not
    /// yet synced stay in the set, but see crash safety rule 3: the caller
    /// must PANIC, not retry.
    pub fn sync_pending(&mut self) -> Result<usize, SmgrError> {
        let tags: Vec<SegmentTag> = self.pending_syncs.iter().copied().collect();
        let mut synced = 0;
        for tag in tags {
            match self.open_segment(tag, None, Open::Existing) {
                Ok(file) => {
                    fsync_file(file).map_err(|source| SmgrError::Fsync {
                        path: tag.path(),
                        source,
                    })?;
                    synced += 1;
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            self.pending_syncs.remove(&tag);
        }
        Ok(synced)
    }

    /// Closes every descriptor of the relation and forgets what is cached
    /// about its length: the response to another process's truncate or drop
    /// (invariant 5). Pending fsyncs are kept.
    pub fn close(&mut self, rel: RelFileLocator) {
        for fork in ALL_FORKS {
            self.close_fork(rel, fork);
        }
    }

    /// Closes every descriptor and forgets every cached length.
    pub fn close_all(&mut self) {
        self.fds.clear();
        self.full_segments.clear();
        self.known_blocks.clear();
    }

    /// Whether block `blkno` of the fork exists: without a `stat` when this
    /// process already knows the fork to be longer (invariant 7).
    pub fn block_exists(
        &mut self,
        rel: RelFileLocator,
        fork: ForkNumber,
        blkno: BlockNumber,
    ) -> Result<bool, SmgrError> {
        if self
            .known_blocks
            .get(&(rel, fork))
            .is_some_and(|&n| blkno.0 < n)
        {
            return Ok(true);
        }
        Ok(blkno.0 < self.nblocks(rel, fork)?)
    }

    // ---- internals ----

    /// The segment holding `blkno` and the byte offset of the block in it.
    fn locate(&self, rel: RelFileLocator, fork: ForkNumber, blkno: u32) -> (SegmentTag, u64) {
        let seg = self.options.segment_size_blocks;
        let tag = SegmentTag {
            rel,
            fork,
            segno: blkno / seg,
        };
        (tag, u64::from(blkno % seg) * BLCKSZ as u64)
    }

    /// Opens the segment holding `blkno` for a read or write (invariant 3).
    fn open_block_segment(&mut self, tag: SegmentTag, blkno: u32) -> Result<&File, SmgrError> {
        let known_full = self
            .full_segments
            .get(&(tag.rel, tag.fork))
            .copied()
            .unwrap_or(0);
        if tag.segno > known_full && !self.fds.contains(&tag) {
            let prev = SegmentTag {
                segno: tag.segno - 1,
                ..tag
            };
            let prev_blocks = self.segment_blocks(prev)?;
            if prev_blocks < u64::from(self.options.segment_size_blocks) {
                return Err(SmgrError::PreviousSegmentShort {
                    path: tag.path(),
                    blkno,
                    prev_blocks,
                });
            }
            self.full_segments.insert((tag.rel, tag.fork), tag.segno);
        }
        self.open_segment(tag, Some(blkno), Open::Existing)
    }

    /// Length of one segment file in whole blocks (a partial trailing block
    /// does not count, as in md.c).
    fn segment_blocks(&mut self, tag: SegmentTag) -> Result<u64, SmgrError> {
        let max_blocks = self.options.segment_size_blocks;
        let file = self.open_segment(tag, None, Open::Existing)?;
        let len = file
            .metadata()
            .map_err(|source| SmgrError::Stat {
                path: tag.path(),
                source,
            })?
            .len();
        let blocks = len / BLCKSZ as u64;
        if blocks > u64::from(max_blocks) {
            return Err(SmgrError::SegmentTooBig {
                path: tag.path(),
                blocks,
                max_blocks,
            });
        }
        Ok(blocks)
    }

    /// The open descriptor of a segment, from the cache or newly opened
    /// (evicting the least recently used beyond the limit). `Open::Create`
    /// creates a missing file and fsyncs its directory.
    fn open_segment(
        &mut self,
        tag: SegmentTag,
        blkno: Option<u32>,
        how: Open,
    ) -> Result<&File, SmgrError> {
        if self.fds.contains(&tag) {
            return Ok(self.fds.get(&tag).expect("contains() was just checked"));
        }
        let path = tag.path();
        let abs = self.data_dir.join(&path);
        let opened = match open_file(&abs, false) {
            Err(e) if how == Open::Create && e.kind() == io::ErrorKind::NotFound => {
                match open_file(&abs, true) {
                    Ok(file) => Ok((file, true)),
                    // Created by someone else in between.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        open_file(&abs, false).map(|f| (f, false))
                    }
                    Err(e) => Err(e),
                }
            }
            other => other.map(|f| (f, false)),
        };
        let (file, created) = opened.map_err(|source| match (how, blkno) {
            (Open::Create, _) => SmgrError::Extend {
                path: path.clone(),
                source,
            },
            (Open::Existing, Some(blkno)) => SmgrError::OpenSegment {
                path: path.clone(),
                blkno,
                source,
            },
            (Open::Existing, None) => SmgrError::Open {
                path: path.clone(),
                source,
            },
        })?;
        if created {
            self.fsync_parent(&path)?;
        }
        Ok(self.fds.insert(tag, file))
    }

    fn close_fork(&mut self, rel: RelFileLocator, fork: ForkNumber) {
        self.fds.remove_where(|t| t.rel == rel && t.fork == fork);
        self.full_segments.remove(&(rel, fork));
        self.known_blocks.remove(&(rel, fork));
    }

    /// Makes `base/<db>` if it is missing (PostgreSQL's
    /// `TablespaceCreateDbspace`); in redo, with any missing parents.
    fn ensure_reldir(&mut self, rel: RelFileLocator, is_redo: bool) -> Result<(), SmgrError> {
        if rel.spc_oid == GLOBALTABLESPACE_OID {
            return Ok(());
        }
        let dir = reldir(rel);
        let abs = self.data_dir.join(&dir);
        if abs.is_dir() {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(DIR_MODE).recursive(is_redo);
        match builder.create(&abs) {
            Ok(()) => self.fsync_parent(&dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && abs.is_dir() => Ok(()),
            Err(source) => Err(SmgrError::CreateDir { path: dir, source }),
        }
    }

    /// Fsyncs the directory containing `path` (relative), so that a created
    /// or removed entry in it is durable.
    fn fsync_parent(&self, path: &str) -> Result<(), SmgrError> {
        if !self.options.fsync {
            return Ok(());
        }
        let dir = Path::new(path).parent().unwrap_or(Path::new(""));
        let shown = dir.to_string_lossy().into_owned();
        let file = File::open(self.data_dir.join(dir)).map_err(|source| SmgrError::Open {
            path: shown.clone(),
            source,
        })?;
        match fsync_file(&file) {
            // Some filesystems cannot fsync a directory (PostgreSQL ignores these too).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::EINVAL)) => Ok(()),
            Err(source) => Err(SmgrError::Fsync {
                path: shown,
                source,
            }),
            Ok(()) => Ok(()),
        }
    }
}

fn open_file(path: &Path, create_new: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).mode(FILE_MODE);
    if create_new {
        options.create_new(true);
    }
    options.open(path)
}

/// `pread` until `buf` is full or end of file; retries on EINTR. Returns
/// the bytes read.
pub(crate) fn pread_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `pwrite` until all of `buf` is written or the kernel writes nothing
/// (a full disk); retries on EINTR. Returns the bytes written.
pub(crate) fn pwrite_full(file: &File, buf: &[u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.write_at(&buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `fsync`, retried on EINTR.
pub(crate) fn fsync_file(file: &File) -> io::Result<()> {
    loop {
        match file.sync_all() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn set_len(file: &File, len: u64) -> io::Result<()> {
    loop {
        match file.set_len(len) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Truncates a file to zero bytes by name (PostgreSQL's `do_truncate`).
fn truncate_path(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    set_len(&file, 0)
}

#[cfg(test)]
mod tests;
