//! Key order: per-type comparison of values, the column options (DESC,
//! NULLS FIRST/LAST), comparing a search key with an index tuple
//! (PostgreSQL's `_bt_compare`), and binary search on a page
//! (`_bt_binsrch`).
//!
//! # The order of index entries
//!
//! Entries are ordered by their key columns, left to right, each with its
//! type's default btree operator class (PostgreSQL's `*_ops`):
//!
//! | type | order |
//! |---|---|
//! | int2, int4, int8 | numeric (any mix of the three compares as int8, as the integer_ops family does) |
//! | float8 | numeric, -0 = 0, NaN equal to itself and above every other value (`float8_cmp_internal`) |
//! | float4 | as float8 (`float4_cmp_internal`) |
//! | date | day number; -infinity and infinity (i32::MIN/MAX) at the ends |
//! | bool | false < true |
//! | text, varchar | bytewise on the UTF-8 bytes: the "C" collation |
//! | bpchar | bytewise after dropping trailing spaces (`bpcharcmp` in "C") |
//! | name | bytewise ("C", as `name` always is) |
//! | oid | unsigned |
//! | "char" | unsigned byte |
//! | timestamp | microseconds |
//! | numeric | by value, -Infinity < finite < Infinity < NaN (`numeric_cmp`) |
//!
//! NULL equals NULL and sorts after every value (NULLS LAST), before with
//! NULLS FIRST; DESC reverses the value order (PostgreSQL's default for
//! DESC is NULLS FIRST). Then the heap TID breaks ties (version-4
//! "heapkeyspace" btrees), so no two entries are equal.
//!
//! # Comparing a search key with a tuple
//!
//! A [`SearchKey`] has values for a prefix of the key columns and an
//! optional heap TID. [`compare_key`] answers "key <=> tuple" (`Greater`
//! when the key sorts after the tuple), with PostgreSQL's conventions for
//! pivots:
//!
//! 1. Attributes compare left to right; the first difference decides.
//! 2. Attributes a pivot truncated away are minus infinity: a key with more
//!    attributes than the pivot is greater.
//! 3. A key without a heap TID, with as many attributes as a pivot that kept
//!    no heap TID, is greater: every entry with those values has a TID
//!    above minus infinity, so all of them lie right of the pivot (this is
//!    what lets a search for `= x` go straight to the page holding x).
//! 4. Otherwise, a key without a TID equals a tuple with the same values;
//!    with a TID, the TIDs decide (a pivot's missing TID is minus infinity).
//! 5. The first data item of an internal page is minus infinity: every key
//!    is greater ([`compare_at`]).

use std::cmp::Ordering;

use pgerror::PgError;

use super::page::{page_item, BtOpaque};
use super::tuple::{compare_tids, IndexTuple};
use super::{BtreeIndex, IndexColumn};
use crate::heap::datum::{Datum, BPCHAROID};
use crate::heap::tuple::ItemPointer;
use crate::page::{OffsetNumber, Page};
use crate::types::BLCKSZ;

/// Where a search is going: values for a prefix of the key columns
/// (`None` is NULL) and, for an insertion, the heap TID.
#[derive(Clone, Copy, Debug)]
pub struct SearchKey<'k> {
    pub values: &'k [Option<Datum>],
    pub tid: Option<ItemPointer>,
}

fn float8_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn integer(d: &Datum) -> Option<i64> {
    match d {
        Datum::Int2(v) => Some(i64::from(*v)),
        Datum::Int4(v) => Some(i64::from(*v)),
        Datum::Int8(v) => Some(*v),
        _ => None,
    }
}

/// Rank of a variant, to keep the order total for mismatched types (which
/// [`super::BtreeIndex::check_values`] keeps out of the tree).
fn variant_rank(d: &Datum) -> u8 {
    match d {
        Datum::Int2(_) | Datum::Int4(_) | Datum::Int8(_) => 0,
        Datum::Float8(_) => 1,
        Datum::Bool(_) => 2,
        Datum::Text(_) => 3,
        Datum::Oid(_) => 4,
        Datum::Name(_) => 5,
        Datum::Char(_) => 6,
        Datum::Timestamp(_) => 7,
        Datum::Numeric(_) => 8,
        Datum::Float4(_) => 9,
        Datum::Date(_) => 10,
    }
}

/// Where a numeric's text form sits among the special values.
fn numeric_class(s: &str) -> i8 {
    match s {
        "-Infinity" => -1,
        "Infinity" => 1,
        "NaN" => 2,
        _ => 0,
    }
}

/// Compare two finite, non-negative decimal strings (`digits[.digits]`).
fn decimal_magnitude_cmp(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> (String, String) {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        (int.to_owned(), frac.to_owned())
    };
    let (ai, af) = split(a);
    let (bi, bf) = split(b);
    ai.len()
        .cmp(&bi.len())
        .then_with(|| ai.cmp(&bi))
        .then_with(|| af.cmp(&bf))
}

/// `numeric_cmp` on the canonical text form the heap stores: -Infinity <
/// finite values < Infinity < NaN (NaN equals itself, as in PostgreSQL).
pub fn numeric_text_cmp(a: &str, b: &str) -> Ordering {
    let (ca, cb) = (numeric_class(a), numeric_class(b));
    if ca != 0 || cb != 0 {
        return ca.cmp(&cb);
    }
    let (na, ma) = a.strip_prefix('-').map_or((false, a), |m| (true, m));
    let (nb, mb) = b.strip_prefix('-').map_or((false, b), |m| (true, m));
    let is_zero = |m: &str| m.bytes().all(|c| c == b'0' || c == b'.');
    let sign = |neg: bool, m: &str| {
        if is_zero(m) {
            0
        } else if neg {
            -1
        } else {
            1
        }
    };
    let (sa, sb) = (sign(na, ma), sign(nb, mb));
    if sa != sb {
        return sa.cmp(&sb);
    }
    let mag = decimal_magnitude_cmp(ma, mb);
    if sa < 0 {
        mag.reverse()
    } else {
        mag
    }
}

/// The default operator class order of two non-null values of a column of
/// type `column.type_oid` (ascending).
pub fn compare_datums(column: &IndexColumn, a: &Datum, b: &Datum) -> Ordering {
    if let (Some(x), Some(y)) = (integer(a), integer(b)) {
        return x.cmp(&y);
    }
    match (a, b) {
        (Datum::Float8(x), Datum::Float8(y)) => float8_cmp(*x, *y),
        (Datum::Bool(x), Datum::Bool(y)) => x.cmp(y),
        (Datum::Text(x), Datum::Text(y)) if column.type_oid == BPCHAROID => x
            .trim_end_matches(' ')
            .as_bytes()
            .cmp(y.trim_end_matches(' ').as_bytes()),
        (Datum::Text(x), Datum::Text(y)) | (Datum::Name(x), Datum::Name(y)) => {
            x.as_bytes().cmp(y.as_bytes())
        }
        (Datum::Oid(x), Datum::Oid(y)) => x.0.cmp(&y.0),
        (Datum::Char(x), Datum::Char(y)) => x.cmp(y),
        (Datum::Timestamp(x), Datum::Timestamp(y)) => x.cmp(y),
        (Datum::Numeric(x), Datum::Numeric(y)) => numeric_text_cmp(x, y),
        (Datum::Float4(x), Datum::Float4(y)) => float8_cmp(f64::from(*x), f64::from(*y)),
        (Datum::Date(x), Datum::Date(y)) => x.cmp(y),
        _ => variant_rank(a).cmp(&variant_rank(b)),
    }
}

/// Two values of one column in index order: NULLs per NULLS FIRST/LAST,
/// values per DESC.
pub fn compare_column(column: &IndexColumn, a: Option<&Datum>, b: Option<&Datum>) -> Ordering {
    let nulls_first = column.nulls_first;
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) if nulls_first => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) if nulls_first => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let c = compare_datums(column, x, y);
            if column.descending {
                c.reverse()
            } else {
                c
            }
        }
    }
}

/// Two value lists over the same columns, compared on their common prefix.
pub fn compare_values(index: &BtreeIndex, a: &[Option<Datum>], b: &[Option<Datum>]) -> Ordering {
    for ((col, x), y) in index.columns.iter().zip(a).zip(b) {
        let c = compare_column(col, x.as_ref(), y.as_ref());
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// How many leading attributes of `a` and `b` are equal.
pub fn equal_prefix_len(index: &BtreeIndex, a: &[Option<Datum>], b: &[Option<Datum>]) -> usize {
    index
        .columns
        .iter()
        .zip(a.iter().zip(b))
        .take_while(|(col, (x, y))| compare_column(col, x.as_ref(), y.as_ref()) == Ordering::Equal)
        .count()
}

/// `key <=> tuple` (rules 1-4 of the module header).
pub fn compare_key(
    index: &BtreeIndex,
    key: &SearchKey<'_>,
    tuple: &IndexTuple<'_>,
) -> Result<Ordering, PgError> {
    let tuple_natts = tuple.natts(index.natts());
    let mut values = tuple.values(index);
    for (i, (col, k)) in index.columns.iter().zip(key.values).enumerate() {
        if i >= tuple_natts {
            return Ok(Ordering::Greater); // rule 2
        }
        let v = values
            .next()
            .expect("the tuple has at least tuple_natts attributes")?;
        let c = compare_column(col, k.as_ref(), v.as_ref());
        if c != Ordering::Equal {
            return Ok(c);
        }
    }
    let tuple_tid = tuple.heap_tid();
    let Some(key_tid) = key.tid else {
        if key.values.len() == tuple_natts && tuple.is_pivot() && tuple_tid.is_none() {
            return Ok(Ordering::Greater); // rule 3
        }
        return Ok(Ordering::Equal);
    };
    if key.values.len() < index.natts() || key.values.len() < tuple_natts {
        return Ok(Ordering::Equal);
    }
    Ok(match tuple_tid {
        None => Ordering::Greater,
        Some(t) => compare_tids(key_tid, t),
    })
}

/// `key <=> the item at off` of a page, with rule 5.
pub fn compare_at(
    index: &BtreeIndex,
    key: &SearchKey<'_>,
    page: &[u8; BLCKSZ],
    opaque: &BtOpaque,
    off: OffsetNumber,
) -> Result<Ordering, PgError> {
    if !opaque.is_leaf() && off == opaque.first_data_key() {
        return Ok(Ordering::Greater);
    }
    let tuple = IndexTuple::parse(page_item(page, off)?)?;
    compare_key(index, key, &tuple)
}

/// PostgreSQL's `_bt_binsrch`. On a leaf: the first item >= key (> key if
/// `nextkey`), possibly one past the last. On an internal page: the item
/// whose downlink to follow, the last one < key (<= key if `nextkey`).
pub fn binsrch(
    index: &BtreeIndex,
    key: &SearchKey<'_>,
    page: &[u8; BLCKSZ],
    nextkey: bool,
) -> Result<OffsetNumber, PgError> {
    let opaque = BtOpaque::read(page)?;
    let mut low = opaque.first_data_key().0;
    let max = Page::new(page).max_offset().0;
    if max < low {
        return Ok(OffsetNumber(low));
    }
    let mut high = max + 1;
    // Move low past items the key is greater than (or equal to, if nextkey).
    while high > low {
        let mid = low + (high - low) / 2;
        let c = compare_at(index, key, page, &opaque, OffsetNumber(mid))?;
        let go_right = match c {
            Ordering::Greater => true,
            Ordering::Equal => nextkey,
            Ordering::Less => false,
        };
        if go_right {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    if opaque.is_leaf() {
        return Ok(OffsetNumber(low));
    }
    // The first data item is minus infinity, so low is past it.
    Ok(OffsetNumber(low - 1))
}

/// `key <=> the page's high key`; `None` on a rightmost page (no bound).
pub fn compare_high_key(
    index: &BtreeIndex,
    key: &SearchKey<'_>,
    page: &[u8; BLCKSZ],
    opaque: &BtOpaque,
) -> Result<Option<Ordering>, PgError> {
    if opaque.is_rightmost() {
        return Ok(None);
    }
    let hikey = IndexTuple::parse(page_item(page, super::page::P_HIKEY)?)?;
    compare_key(index, key, &hikey).map(Some)
}

#[cfg(test)]
mod numeric_tests {
    use super::numeric_text_cmp;
    use std::cmp::Ordering::*;

    #[test]
    fn numeric_text_order() {
        let sorted = [
            "-Infinity",
            "-100.5",
            "-100",
            "-9.99",
            "-0.001",
            "0",
            "0.00",
            "0.001",
            "1",
            "1.10",
            "9.99",
            "10",
            "100.5",
            "Infinity",
            "NaN",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                let got = numeric_text_cmp(a, b);
                let same = (*a == "0" && *b == "0.00") || (*a == "0.00" && *b == "0");
                let want = if same { Equal } else { i.cmp(&j) };
                assert_eq!(got, want, "{a} vs {b}");
            }
        }
        assert_eq!(numeric_text_cmp("1.10", "1.1"), Equal);
    }
}
