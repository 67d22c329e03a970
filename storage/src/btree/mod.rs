//! B-tree indexes (PostgreSQL's `nbtree`): Lehman and Yao's high-concurrency
//! B+-tree with right links, on slotted pages in shared buffers, WAL-logged,
//! with the heap TID as the last key column (PostgreSQL 12+'s version-4
//! "heapkeyspace" trees: every entry is unique, duplicates are ordered by
//! TID, and suffix truncation keeps upper levels small).
//!
//! Backends run all of it; the startup process runs only [`btree_redo`].
//! The catalog side (pg_index rows, CREATE INDEX, the planner) is the
//! backend's: it describes an index as a [`BtreeIndex`] and calls:
//!
//! | what | call |
//! |---|---|
//! | CREATE INDEX on an empty table | create the relation file (+ SMGR_CREATE record), then [`bt_create_empty`] |
//! | CREATE INDEX on a table with rows | create the file, then [`bt_build`] with one [`BuildEntry`] per heap tuple |
//! | INSERT / UPDATE of a row | [`bt_insert`] per index, after the heap insert, with [`heap_unique_check`] as the checker of a unique index |
//! | index scan | [`BtScan::new`] with a [`ScanRange`], then [`BtScan::next`]; fetch each TID from the heap and test it against the snapshot ([`bt_search`]: all TIDs of one key); [`bt_kill_items`] for entries whose tuples turned out surely dead |
//! | VACUUM | [`bt_bulk_delete`] per index, inside the `index_cleanup` callback of `heap::heap_vacuum`, with `heap::dead_tid_lookup(batch)` |
//! | amcheck | [`bt_verify`] |
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `desc.rs` | [`BtreeIndex`], [`IndexColumn`], value checks, 23505's text |
//! | `page.rs` | the special area, flags, the metapage, item helpers |
//! | `tuple.rs` | index tuples: leaf tuples, pivots, suffix truncation |
//! | `compare.rs` | key order per type, `_bt_compare`, binary search |
//! | `search.rs` | locking helpers, the descent, moving right, level endpoints |
//! | `insert.rs` | [`bt_insert`]: unique check, insertion, carrying splits up |
//! | `split.rs` | page splits and new roots |
//! | `scan.rs` | [`BtScan`]: range scans forward and backward |
//! | `build.rs` | [`bt_create_empty`], [`bt_build`] (bottom-up bulk build) |
//! | `unique.rs` | [`UniqueCheck`], [`heap_unique_check`] (the dirty snapshot) |
//! | `vacuum.rs` | [`bt_bulk_delete`]: VACUUM's removal of dead entries |
//! | `dead_items.rs` | [`bt_kill_items`]: LP_DEAD marks from scans; their removal before a split |
//! | `xlog.rs` | WAL records, their logging and [`btree_redo`] |
//! | `verify.rs` | [`bt_verify`]: structural checks of a whole tree |
//!
//! # The tree
//!
//! ```text
//!   block 0: metapage ── root, level
//!                           │
//!   level 2           [ -inf | k40 ]                      (root)
//!                      /          \
//!   level 1   [ -inf | k20 ] <-> [ -inf | k60 | k80 ]      (internal pages)
//!              /     |            ...
//!   level 0  [a..k20] <-> [k21..k40] <-> ... <-> [k81..]  (leaves: key + heap TID)
//! ```
//!
//! Every page but the rightmost of its level has a high key (an upper bound
//! of its keys); a downlink's key is the high key of the child to its left.
//! Right links make a split visible in two steps, and the tree is correct
//! after each: first the new right half is linked in (readers reach it by
//! moving right past the high key), then its downlink goes into the parent.
//!
//! # Rules
//!
//! The numbered rules live where they are enforced: search S1-S3
//! (`search.rs`), insert I1-I6 (`insert.rs`), scan N1-N3 (`scan.rs`), WAL
//! X1-X4 (`xlog.rs`). In short:
//!
//! 1. To read a page, pin and lock it shared; to change it, exclusive
//!    (buffer rule R1/R3). Readers hold one content lock at a time.
//! 2. Writers lock child before parent and left before right; the metapage
//!    last. The metapage's exclusive lock doubles as the index's relation
//!    extension lock.
//! 3. A split holds the left page until its downlink is in the parent; a
//!    page marked `BTP_INCOMPLETE_SPLIT` (a crash in between) is completed
//!    by the next writer that meets it.
//! 4. Every change is logged under the page locks (change, mark dirty,
//!    insert the record, set the LSN), with a full-page image on the first
//!    change after a checkpoint's redo pointer; redo is idempotent by LSN.
//! 5. Index entries are not MVCC: scans return TIDs, the caller checks the
//!    heap tuple; uniqueness asks the caller about each equal entry's heap
//!    tuple and waits for in-progress transactions without holding locks.
//! 6. VACUUM removes the entries of dead heap TIDs before the heap frees
//!    those slots (heap vacuum V1), one leaf at a time under its exclusive
//!    lock. A TID a scan returned may therefore name a slot freed and
//!    reused since: only an MVCC test of the heap tuple (which cannot see
//!    a tuple inserted after its snapshot) makes it a result; a unique
//!    check judges the heap tuple while it holds the leaf (B3).
//!
//! # Not yet
//!
//! No page deletion (VACUUM removes entries but leaves emptied leaves in
//! place: `BTP_DELETED`, `BTP_HALF_DEAD`, the cycle id and LP_DEAD marking
//! by scans are reserved, and readers already skip them), no
//! deduplication (posting lists), no
//! `INCLUDE` columns, no deferred unique checks, no fast root separate
//! from the root, no cached metapage, and the bulk build sorts in memory.

mod build;
mod compare;
mod dead_items;
mod desc;
mod insert;
mod page;
mod scan;
mod search;
mod split;
mod tuple;
mod unique;
mod vacuum;
mod verify;
mod xlog;

#[cfg(test)]
mod cross_process_tests;
#[cfg(test)]
mod dead_items_tests;
#[cfg(test)]
mod redo_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vacuum_tests;

pub use build::{bt_build, bt_create_empty, BuildEntry, BuildStats};
pub use compare::{compare_column, compare_datums};
pub use dead_items::{bt_kill_items, StillDead};
pub use desc::{default_value_out, BtreeIndex, IndexColumn};
pub use insert::bt_insert;
pub use page::{
    BtMeta, BtOpaque, BTP_DELETED, BTP_HALF_DEAD, BTP_HAS_FULLXID, BTP_HAS_GARBAGE,
    BTP_INCOMPLETE_SPLIT, BTP_LEAF, BTP_META, BTP_ROOT, BTP_SPLIT_END, BTREE_MAGIC, BTREE_METAPAGE,
    BTREE_VERSION, P_NONE,
};
pub use scan::{bt_scan_all, bt_search, BtScan, IndexEntry, ScanDirection, ScanRange};
pub use tuple::{BT_MAX_ITEM_BYTES, INDEX_MAX_KEYS};
pub use unique::{heap_unique_check, unique_status, UniqueCheck, UniqueChecker};
pub use vacuum::{bt_bulk_delete, BulkDeleteStats};
pub use verify::{bt_verify, BtreeShape};
pub use xlog::{
    btree_redo, XLOG_BTREE_INSERT_LEAF, XLOG_BTREE_INSERT_UPPER, XLOG_BTREE_NEWROOT,
    XLOG_BTREE_SPLIT_L, XLOG_BTREE_SPLIT_R, XLOG_BTREE_VACUUM,
};
