//! The process's cache of open segment files: what PostgreSQL's virtual file
//! descriptors (`fd.c`) do for md.c, reduced to one rule. At most `capacity`
//! files are open; opening one more closes the least recently used.
//!
//! Closing is always safe (the parent module's invariant 4): nothing is
//! buffered in user space, and fsync obligations are tracked by segment
//! name, not by descriptor.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;

use super::SegmentTag;

struct Entry {
    file: File,
    last_used: u64,
}

pub(super) struct FdCache {
    files: HashMap<SegmentTag, Entry>,
    /// `last_used` tick -> segment, oldest first: the eviction order.
    lru: BTreeMap<u64, SegmentTag>,
    clock: u64,
    capacity: usize,
}

impl FdCache {
    pub(super) fn new(capacity: usize) -> FdCache {
        FdCache {
            files: HashMap::new(),
            lru: BTreeMap::new(),
            clock: 0,
            capacity: capacity.max(1),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.files.len()
    }

    pub(super) fn contains(&self, tag: &SegmentTag) -> bool {
        self.files.contains_key(tag)
    }

    /// The open file, marked as just used.
    pub(super) fn get(&mut self, tag: &SegmentTag) -> Option<&File> {
        let entry = self.files.get_mut(tag)?;
        self.clock += 1;
        self.lru.remove(&entry.last_used);
        entry.last_used = self.clock;
        self.lru.insert(self.clock, *tag);
        Some(&entry.file)
    }

    /// Caches `file` under `tag` (closing a previous one), closing the least
    /// recently used files beyond the capacity.
    pub(super) fn insert(&mut self, tag: SegmentTag, file: File) -> &File {
        self.remove(&tag);
        while self.files.len() >= self.capacity {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            self.files.remove(&victim);
        }
        self.clock += 1;
        self.lru.insert(self.clock, tag);
        let entry = Entry {
            file,
            last_used: self.clock,
        };
        &self.files.entry(tag).insert_entry(entry).into_mut().file
    }

    pub(super) fn remove(&mut self, tag: &SegmentTag) {
        if let Some(entry) = self.files.remove(tag) {
            self.lru.remove(&entry.last_used);
        }
    }

    /// Closes every file whose tag matches.
    pub(super) fn remove_where(&mut self, matches: impl Fn(&SegmentTag) -> bool) {
        let tags: Vec<SegmentTag> = self.files.keys().filter(|t| matches(t)).copied().collect();
        for tag in tags {
            self.remove(&tag);
        }
    }

    pub(super) fn clear(&mut self) {
        self.files.clear();
        self.lru.clear();
    }
}
