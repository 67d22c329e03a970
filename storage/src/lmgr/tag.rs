//! What can be locked ([`LockTag`]) and how ([`LockMode`]): PostgreSQL's
//! `LOCKTAG`, its eight table-level lock modes and their conflict table
//! (`lock.h`, `lockdefs.h`, `lock.c`'s `LockConflicts`).
//!
//! A tag is packed into five 32-bit words ([`PackedTag`]) to live in the
//! shared lock table; its hash picks the table's partition, its bucket and
//! its strong-lock counter (see `fastpath.rs`). The hash must be the same in
//! every process: it is a fixed function of the words, never `RandomState`.
//!
//! The conflict table (`X` = the two modes conflict; it is symmetric):
//!
//! ```text
//!                          AS  RS  RX  SUX  S  SRX  X  AX
//!   AccessShare             .   .   .   .   .   .   .   X
//!   RowShare                .   .   .   .   .   .   X   X
//!   RowExclusive            .   .   .   .   X   X   X   X
//!   ShareUpdateExclusive    .   .   .   X   X   X   X   X
//!   Share                   .   .   X   X   .   X   X   X
//!   ShareRowExclusive       .   .   X   X   X   X   X   X
//!   Exclusive               .   X   X   X   X   X   X   X
//!   AccessExclusive         X   X   X   X   X   X   X   X
//! ```

use crate::types::{Oid, Xid};
use std::fmt;

/// A lock mode: PostgreSQL's `AccessShareLock` (1) .. `AccessExclusiveLock` (8).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    /// SELECT.
    AccessShare = 1,
    /// SELECT FOR UPDATE / FOR SHARE.
    RowShare = 2,
    /// INSERT, UPDATE, DELETE.
    RowExclusive = 3,
    /// VACUUM (non-full), ANALYZE, CREATE INDEX CONCURRENTLY.
    ShareUpdateExclusive = 4,
    /// CREATE INDEX; also what a row-level waiter takes on a transaction id.
    Share = 5,
    /// CREATE TRIGGER, some ALTER TABLE forms.
    ShareRowExclusive = 6,
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY; a transaction on its own id.
    Exclusive = 7,
    /// DROP TABLE, TRUNCATE, most ALTER TABLE, LOCK TABLE's default.
    AccessExclusive = 8,
}

/// A set of modes: bit `m` for mode `m` (PostgreSQL's `LOCKMASK`, bit 0 unused).
pub type LockMask = u32;

/// `CONFLICTS[m]`: the modes that conflict with mode `m` (index 0, no lock,
/// conflicts with nothing).
pub(crate) const CONFLICTS: [LockMask; 9] = {
    const fn bits(modes: &[u8]) -> LockMask {
        let mut mask = 0;
        let mut i = 0;
        while i < modes.len() {
            mask |= 1 << modes[i];
            i += 1;
        }
        mask
    }
    [
        0,
        bits(&[8]),
        bits(&[7, 8]),
        bits(&[5, 6, 7, 8]),
        bits(&[4, 5, 6, 7, 8]),
        bits(&[3, 4, 6, 7, 8]),
        bits(&[3, 4, 5, 6, 7, 8]),
        bits(&[2, 3, 4, 5, 6, 7, 8]),
        bits(&[1, 2, 3, 4, 5, 6, 7, 8]),
    ]
};

impl LockMode {
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    /// The mode numbered `n` (1..=8).
    pub fn from_number(n: u32) -> Option<LockMode> {
        LockMode::ALL.get((n as usize).wrapping_sub(1)).copied()
    }

    /// The modes of a mask, weakest first.
    pub fn iter_mask(mask: LockMask) -> impl Iterator<Item = LockMode> {
        LockMode::ALL
            .into_iter()
            .filter(move |m| mask & m.bit() != 0)
    }

    /// This mode's bit in a [`LockMask`].
    pub const fn bit(self) -> LockMask {
        1 << self as u32
    }

    /// The modes this one conflicts with.
    pub const fn conflicts(self) -> LockMask {
        CONFLICTS[self as usize]
    }

    /// Whether a holder of `self` and one of `other` exclude each other.
    pub const fn conflicts_with(self, other: LockMode) -> bool {
        self.conflicts() & other.bit() != 0
    }

    /// PostgreSQL's name, as in `pg_locks.mode` and error messages.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// Weak relation modes may be taken on the fast path: they conflict
    /// with no other weak mode nor with ShareUpdateExclusive, only with the
    /// strong ones (PostgreSQL's `EligibleForRelationFastPath`).
    pub(crate) const fn is_weak(self) -> bool {
        (self as u8) <= LockMode::RowExclusive as u8
    }

    /// Strong relation modes conflict with some weak one, so taking one must
    /// first move every fast-path lock on the relation into the shared table
    /// (PostgreSQL's `ConflictsWithRelationFastPath`).
    pub(crate) const fn is_strong(self) -> bool {
        (self as u8) > LockMode::ShareUpdateExclusive as u8
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A lockable object (PostgreSQL's `LOCKTAG`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockTag {
    /// A table, index, sequence or view of a database (`db` 0 for a shared
    /// catalog). The only tag the fast path takes.
    Relation { db: Oid, rel: Oid },
    /// The right to extend a relation (PostgreSQL's relation extension
    /// lock); room for later, the heap retries extension races for now.
    RelationExtend { db: Oid, rel: Oid },
    /// A transaction, locked Exclusive by itself while it runs, Share by a
    /// process that waits for it to end (row-level waits).
    TransactionId(Xid),
    /// A catalog object other than a relation (room for later).
    Object {
        db: Oid,
        class_id: Oid,
        obj_id: Oid,
        sub_id: u32,
    },
    /// A user's advisory lock: PostgreSQL's four fields, `pg_advisory_lock(bigint)`
    /// puts the key's halves in the middle two (room for later).
    Advisory {
        db: Oid,
        key1: u32,
        key2: u32,
        field4: u16,
    },
}

/// A [`LockTag`] as stored in shared memory: a kind (never 0, which marks a
/// free entry) and four words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PackedTag(pub [u32; 5]);

const KIND_RELATION: u32 = 1;
const KIND_RELATION_EXTEND: u32 = 2;
const KIND_TRANSACTION: u32 = 3;
const KIND_OBJECT: u32 = 4;
const KIND_ADVISORY: u32 = 5;

impl LockTag {
    /// A relation of database `db`.
    pub fn relation(db: Oid, rel: Oid) -> LockTag {
        LockTag::Relation { db, rel }
    }

    pub(crate) fn pack(&self) -> PackedTag {
        PackedTag(match *self {
            LockTag::Relation { db, rel } => [KIND_RELATION, db.0, rel.0, 0, 0],
            LockTag::RelationExtend { db, rel } => [KIND_RELATION_EXTEND, db.0, rel.0, 0, 0],
            LockTag::TransactionId(x) => [KIND_TRANSACTION, x.0 as u32, (x.0 >> 32) as u32, 0, 0],
            LockTag::Object {
                db,
                class_id,
                obj_id,
                sub_id,
            } => [KIND_OBJECT, db.0, class_id.0, obj_id.0, sub_id],
            LockTag::Advisory {
                db,
                key1,
                key2,
                field4,
            } => [KIND_ADVISORY, db.0, key1, key2, u32::from(field4)],
        })
    }

    /// The tag a shared entry holds; `None` for a free entry or garbage.
    pub(crate) fn unpack(p: PackedTag) -> Option<LockTag> {
        let [kind, a, b, c, d] = p.0;
        Some(match kind {
            KIND_RELATION => LockTag::Relation {
                db: Oid(a),
                rel: Oid(b),
            },
            KIND_RELATION_EXTEND => LockTag::RelationExtend {
                db: Oid(a),
                rel: Oid(b),
            },
            KIND_TRANSACTION => LockTag::TransactionId(Xid(u64::from(a) | u64::from(b) << 32)),
            KIND_OBJECT => LockTag::Object {
                db: Oid(a),
                class_id: Oid(b),
                obj_id: Oid(c),
                sub_id: d,
            },
            KIND_ADVISORY => LockTag::Advisory {
                db: Oid(a),
                key1: b,
                key2: c,
                field4: d as u16,
            },
            _ => return None,
        })
    }

    /// The relation of a relation lock: the fast path's key.
    pub(crate) fn fast_path_relation(&self) -> Option<(Oid, Oid)> {
        match *self {
            LockTag::Relation { db, rel } => Some((db, rel)),
            _ => None,
        }
    }
}

impl PackedTag {
    /// The tag's hash code (PostgreSQL's `LockTagHashCode`): the same in
    /// every process.
    pub(crate) fn hash(&self) -> u32 {
        // FNV-1a over the words, then a murmur3 finalizer so that the low
        // bits (partition, bucket) depend on every input bit.
        let mut h: u32 = 0x811c_9dc5;
        for w in self.0 {
            h = (h ^ w).wrapping_mul(0x0100_0193);
        }
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// PostgreSQL's `DescribeLockTag`: "relation 16384 of database 5".
impl fmt::Display for LockTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LockTag::Relation { db, rel } => write!(f, "relation {rel} of database {db}"),
            LockTag::RelationExtend { db, rel } => {
                write!(f, "extension of relation {rel} of database {db}")
            }
            LockTag::TransactionId(x) => write!(f, "transaction {x}"),
            LockTag::Object {
                db,
                class_id,
                obj_id,
                ..
            } => write!(f, "object {obj_id} of class {class_id} of database {db}"),
            LockTag::Advisory {
                db,
                key1,
                key2,
                field4,
            } => write!(f, "advisory lock [{db},{key1},{key2},{field4}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::*;

    /// PostgreSQL's table ("Conflicting Lock Modes" in the documentation),
    /// row by row: the modes each one conflicts with.
    #[test]
    fn conflict_table_is_postgres_table() {
        let expect: [(LockMode, &[LockMode]); 8] = [
            (AccessShare, &[AccessExclusive]),
            (RowShare, &[Exclusive, AccessExclusive]),
            (
                RowExclusive,
                &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
            ),
            (
                ShareUpdateExclusive,
                &[
                    ShareUpdateExclusive,
                    Share,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (
                Share,
                &[
                    RowExclusive,
                    ShareUpdateExclusive,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (
                ShareRowExclusive,
                &[
                    RowExclusive,
                    ShareUpdateExclusive,
                    Share,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (
                Exclusive,
                &[
                    RowShare,
                    RowExclusive,
                    ShareUpdateExclusive,
                    Share,
                    ShareRowExclusive,
                    Exclusive,
                    AccessExclusive,
                ],
            ),
            (AccessExclusive, &LockMode::ALL),
        ];
        for (mode, conflicting) in expect {
            let got: Vec<LockMode> = LockMode::iter_mask(mode.conflicts()).collect();
            assert_eq!(got, conflicting, "{mode}");
        }
        for a in LockMode::ALL {
            for b in LockMode::ALL {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a} / {b}");
            }
        }
    }

    /// What the fast path relies on: whatever conflicts with a weak mode is
    /// strong, and every strong mode conflicts with some weak one (so it
    /// must transfer), while ShareUpdateExclusive is neither.
    #[test]
    fn weak_modes_conflict_only_with_strong_ones() {
        for a in LockMode::ALL.into_iter().filter(|m| m.is_weak()) {
            for b in LockMode::ALL {
                assert!(!a.conflicts_with(b) || b.is_strong(), "{a} / {b}");
            }
        }
        for b in LockMode::ALL.into_iter().filter(|m| m.is_strong()) {
            assert!(RowExclusive.conflicts_with(b), "{b}");
        }
        assert!(!ShareUpdateExclusive.is_weak() && !ShareUpdateExclusive.is_strong());
    }

    #[test]
    fn tags_pack_and_describe_as_postgres() {
        let tags = [
            (
                LockTag::relation(Oid(5), Oid(16384)),
                "relation 16384 of database 5",
            ),
            (
                LockTag::RelationExtend {
                    db: Oid(5),
                    rel: Oid(16384),
                },
                "extension of relation 16384 of database 5",
            ),
            (
                LockTag::TransactionId(Xid((7 << 32) | 456)),
                "transaction 30064771528",
            ),
            (
                LockTag::Object {
                    db: Oid(5),
                    class_id: Oid(1259),
                    obj_id: Oid(42),
                    sub_id: 0,
                },
                "object 42 of class 1259 of database 5",
            ),
            (
                LockTag::Advisory {
                    db: Oid(5),
                    key1: 0,
                    key2: 7,
                    field4: 1,
                },
                "advisory lock [5,0,7,1]",
            ),
        ];
        for (tag, text) in tags {
            assert_eq!(tag.to_string(), text);
            assert_eq!(LockTag::unpack(tag.pack()), Some(tag));
        }
        assert_eq!(LockTag::unpack(PackedTag([0; 5])), None);
        assert_eq!(LockMode::from_number(5), Some(Share));
        assert_eq!(LockMode::from_number(0), None);
        assert_eq!(LockMode::from_number(9), None);
    }

    #[test]
    fn hashes_spread_over_partitions() {
        let mut per_partition = [0u32; 16];
        for rel in 16384..16384 + 1600 {
            let h = LockTag::relation(Oid(5), Oid(rel)).pack().hash();
            per_partition[(h % 16) as usize] += 1;
        }
        assert!(per_partition.iter().all(|&n| (60..=140).contains(&n)));
    }
}
