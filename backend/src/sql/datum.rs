//! Runtime values.
//!
//! A [`Datum`] is one SQL value as the executor passes it around. Its type
//! is not stored in it: the analyzer fixed every expression's type, and the
//! executor trusts it (an `Int4` datum only ever flows where an `int4` is
//! expected). Several SQL types share a representation: `text`, `varchar`,
//! `name` and `unknown` literals are all `Text`; `oid` and `regtype` are
//! both `Oid`.
//!
//! When tuples are stored on pages, this becomes the in-memory form that
//! the heap's deform step produces.

use super::numeric::Numeric;
use std::cmp::Ordering;

#[derive(Clone, Debug)]
pub enum Datum {
    Null,
    Bool(bool),
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Numeric(Numeric),
    /// text, varchar, name, and the string of an `unknown` literal.
    Text(String),
    /// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's epoch) for
    /// timestamptz; for timestamp, the wall-clock reading counted the same
    /// way (as if it were UTC).
    TimestampTz(i64),
    /// date: days since 2000-01-01; `i32::MIN`/`i32::MAX` are -infinity
    /// and infinity.
    Date(i32),
    /// oid and regtype.
    Oid(u32),
    /// The only value of type `void`.
    Void,
    /// An array (one dimension, lower bound 1) of its type's element type.
    Array(Vec<Datum>),
}

impl Datum {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// Any integer datum widened to i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Datum::Int2(v) => Some(v as i64),
            Datum::Int4(v) => Some(v as i64),
            Datum::Int8(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Datum::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Datum::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The btree ordering of two non-null values of the same type (or of
    /// two integer types). `None` for values that have no ordering here.
    pub fn compare(&self, other: &Datum) -> Option<Ordering> {
        use Datum::*;
        Some(match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (Float8(a), Float8(b)) => float8_cmp(*a, *b),
            (Float4(a), Float4(b)) => float8_cmp(f64::from(*a), f64::from(*b)),
            (Date(a), Date(b)) => a.cmp(b),
            (Numeric(a), Numeric(b)) => a.cmp(b),
            // Text compares bytewise: the "C" collation.
            (Text(a), Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (TimestampTz(a), TimestampTz(b)) => a.cmp(b),
            (Oid(a), Oid(b)) => a.cmp(b),
            // Element by element, NULLs after values; then the shorter first.
            (Array(a), Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    let o = match (x.is_null(), y.is_null()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        (false, false) => x.compare(y)?,
                    };
                    if o.is_ne() {
                        return Some(o);
                    }
                }
                a.len().cmp(&b.len())
            }
            (a, b) => a.as_i64()?.cmp(&b.as_i64()?),
        })
    }
}

/// float8's btree order: NaN equals NaN and sorts above every other value.
pub fn float8_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).expect("neither is NaN"),
    }
}
