//! Column values ([`Datum`]), column descriptions ([`Attribute`],
//! [`TupleDesc`]) and the bytes one value takes inside a heap tuple.
//!
//! The types issue 3 needs, with `pg_type`'s OIDs, lengths and alignments:
//!
//! ```text
//!  type     oid   typlen  typalign   stored as
//!  bool      16      1    c (1)      one byte, 0 or 1
//!  int2      21      2    s (2)      i16, little-endian
//!  int4      23      4    i (4)      i32, little-endian
//!  int8      20      8    d (8)      i64, little-endian
//!  float4   700      4    i (4)      IEEE 754 single bits, little-endian
//!  float8   701      8    d (8)      IEEE 754 bits, little-endian
//!  text      25     -1    i (4)      varlena
//!  varchar 1043     -1    i (4)      varlena (the length limit is the executor's)
//!  bpchar  1042     -1    i (4)      varlena, blank-padded by the executor
//!  numeric 1700     -1    i (4)      varlena holding the value's text form
//!                                     (exact, scale kept; not PostgreSQL's
//!                                     base-10000 digits)
//!  timestamp 1114     8    d (8)      i64 microseconds since 2000-01-01, LE
//!  date    1082      4    i (4)      i32 days since 2000-01-01, LE
//!                                     (i32::MIN/MAX: -infinity/infinity)
//!  char      18      1    c (1)      one byte (the catalogs' "char")
//!  name      19     64    c (1)      NUL-padded, at most 63 bytes of text
//!  oid       26      4    i (4)      u32, little-endian
//! ```
//!
//! `char`, `name` and `oid` are there for the system catalogs; user tables
//! may use them too.
//!
//! Alignment is PostgreSQL's: before a value, the offset from the start of
//! the tuple is rounded up to the type's `typalign`, and the padding is
//! zero. Tuples start MAXALIGN'ed on the page and `t_hoff` is MAXALIGN'ed,
//! so aligning the offset aligns the address.
//!
//! A varlena is PostgreSQL's, little-endian flavour, with both headers:
//!
//! ```text
//!  short (1-byte) header, total length 1..=127, never aligned:
//!    +----------------------+---------------+
//!    | (len << 1) | 1  (u8) | data (len-1)  |
//!    +----------------------+---------------+
//!  4-byte header, total length 4..2^30, aligned to 4:
//!    +--------------------------+---------------+
//!    | len << 2   (u32 LE)      | data (len-4)  |
//!    +--------------------------+---------------+
//! ```
//!
//! A value whose data is at most 126 bytes gets the short header (saving 3
//! bytes and the padding); longer ones the 4-byte header. Readers accept
//! both. Where a varlena may start, a zero byte can only be padding (a short
//! header is odd, and a 4-byte header is already aligned), so the reader
//! aligns only when it sees a zero (PostgreSQL's `att_align_pointer`). The
//! other varlena forms, compressed (`len << 2 | 2`) and external (the byte
//! `0x01`), are never written, as there is no TOAST yet, and are rejected
//! as corruption when read.
//!
//! [`Datum`] is the storage engine's value type; the executor's own value
//! type may later replace it (the encoding here would not change).
//!
//! # Invariants
//!
//! 1. A [`TupleDesc`] only holds attributes whose (OID, typlen, typalign)
//!    is one of the rows above, so encoding and decoding agree on layout.
//! 2. Decoding never reads outside the given slice: every length comes from
//!    the bytes and is checked before use.

use super::tuple::{TupleError, MAX_HEAP_ATTRIBUTE_NUMBER};
use crate::types::Oid;

pub const BOOLOID: Oid = Oid(16);
pub const INT8OID: Oid = Oid(20);
pub const INT2OID: Oid = Oid(21);
pub const INT4OID: Oid = Oid(23);
pub const TEXTOID: Oid = Oid(25);
pub const FLOAT4OID: Oid = Oid(700);
pub const FLOAT8OID: Oid = Oid(701);
pub const DATEOID: Oid = Oid(1082);
pub const VARCHAROID: Oid = Oid(1043);
pub const BPCHAROID: Oid = Oid(1042);
pub const NUMERICOID: Oid = Oid(1700);
pub const TIMESTAMPOID: Oid = Oid(1114);
pub const CHAROID: Oid = Oid(18);
pub const NAMEOID: Oid = Oid(19);
pub const OIDOID: Oid = Oid(26);

/// Bytes of a `name` value (PostgreSQL's NAMEDATALEN), the final NUL
/// included.
pub const NAMEDATALEN: usize = 64;

/// Largest total size (header included) of a varlena.
pub const MAX_VARLENA_BYTES: usize = 0x3fff_ffff;
/// Largest total size of a varlena with a 1-byte header.
const VARATT_SHORT_MAX: usize = 0x7f;

/// `pg_type.typalign`: the alignment of a type's values in a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypAlign {
    Char,
    Short,
    Int,
    Double,
}

impl TypAlign {
    /// From `pg_type`'s letter (`c`, `s`, `i`, `d`).
    pub fn from_char(c: char) -> Option<TypAlign> {
        match c {
            'c' => Some(TypAlign::Char),
            's' => Some(TypAlign::Short),
            'i' => Some(TypAlign::Int),
            'd' => Some(TypAlign::Double),
            _ => None,
        }
    }

    pub fn as_char(self) -> char {
        match self {
            TypAlign::Char => 'c',
            TypAlign::Short => 's',
            TypAlign::Int => 'i',
            TypAlign::Double => 'd',
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            TypAlign::Char => 1,
            TypAlign::Short => 2,
            TypAlign::Int => 4,
            TypAlign::Double => 8,
        }
    }

    /// Round `off` up to this alignment.
    pub fn align(self, off: usize) -> usize {
        let a = self.bytes();
        (off + a - 1) & !(a - 1)
    }
}

/// One column value (a SQL NULL is `None` around it).
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    Int2(i16),
    Int4(i32),
    Int8(i64),
    Float4(f32),
    Float8(f64),
    Bool(bool),
    /// `text` and `varchar`; always valid UTF-8 (the server encoding).
    Text(String),
    /// `oid`.
    Oid(Oid),
    /// `name`: at most NAMEDATALEN-1 bytes, no NUL.
    Name(String),
    /// `"char"`: one byte.
    Char(u8),
    /// `timestamp`: microseconds since 2000-01-01 00:00, wall clock.
    Timestamp(i64),
    /// `date`: days since 2000-01-01; i32::MIN and i32::MAX are -infinity
    /// and infinity.
    Date(i32),
    /// `numeric`: the value's canonical text form (the executor parses it).
    Numeric(String),
}

/// `typlen` and `typalign` of a supported built-in type.
fn builtin_layout(type_oid: Oid) -> Option<(i16, TypAlign)> {
    match type_oid {
        BOOLOID | CHAROID => Some((1, TypAlign::Char)),
        NAMEOID => Some((NAMEDATALEN as i16, TypAlign::Char)),
        OIDOID | FLOAT4OID | DATEOID => Some((4, TypAlign::Int)),
        INT2OID => Some((2, TypAlign::Short)),
        INT4OID => Some((4, TypAlign::Int)),
        INT8OID | FLOAT8OID | TIMESTAMPOID => Some((8, TypAlign::Double)),
        TEXTOID | VARCHAROID | BPCHAROID | NUMERICOID => Some((-1, TypAlign::Int)),
        _ => None,
    }
}

/// What a tuple needs to know about one column (a slice of `pg_attribute`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub type_oid: Oid,
    /// Bytes of a value, or -1 for a varlena.
    pub typlen: i16,
    pub typalign: TypAlign,
    pub not_null: bool,
}

impl Attribute {
    /// A column of a supported built-in type, with its `pg_type` layout.
    pub fn new(type_oid: Oid, not_null: bool) -> Result<Attribute, TupleError> {
        match builtin_layout(type_oid) {
            Some((typlen, typalign)) => Ok(Attribute {
                type_oid,
                typlen,
                typalign,
                not_null,
            }),
            None => Err(TupleError::UnsupportedType {
                type_oid,
                typlen: 0,
                typalign: '?',
            }),
        }
    }
}

/// The columns of a relation, in attribute-number order (1-based in
/// messages, as `attnum` is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TupleDesc {
    attrs: Vec<Attribute>,
}

impl TupleDesc {
    /// Check invariant 1 and the column limit.
    pub fn new(attrs: Vec<Attribute>) -> Result<TupleDesc, TupleError> {
        if attrs.len() > MAX_HEAP_ATTRIBUTE_NUMBER {
            return Err(TupleError::TooManyColumns { natts: attrs.len() });
        }
        for a in &attrs {
            if builtin_layout(a.type_oid) != Some((a.typlen, a.typalign)) {
                return Err(TupleError::UnsupportedType {
                    type_oid: a.type_oid,
                    typlen: a.typlen,
                    typalign: a.typalign.as_char(),
                });
            }
        }
        Ok(TupleDesc { attrs })
    }

    /// Convenience: columns of built-in types given as (OID, NOT NULL).
    pub fn from_types(types: &[(Oid, bool)]) -> Result<TupleDesc, TupleError> {
        let attrs = types
            .iter()
            .map(|&(oid, nn)| Attribute::new(oid, nn))
            .collect::<Result<_, _>>()?;
        TupleDesc::new(attrs)
    }

    pub fn attrs(&self) -> &[Attribute] {
        &self.attrs
    }

    pub fn natts(&self) -> usize {
        self.attrs.len()
    }
}

/// Append `value` for attribute `attnum` (1-based) at the end of `tuple`,
/// padding first as the type requires. Returns true for a varlena (the
/// tuple then gets `HEAP_HASVARWIDTH`).
pub(crate) fn write_datum(
    tuple: &mut Vec<u8>,
    attnum: usize,
    attr: &Attribute,
    value: &Datum,
) -> Result<bool, TupleError> {
    let pad = |t: &mut Vec<u8>| t.resize(attr.typalign.align(t.len()), 0);
    match (attr.type_oid, value) {
        (BOOLOID, Datum::Bool(v)) => tuple.push(u8::from(*v)),
        (INT2OID, Datum::Int2(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_le_bytes());
        }
        (INT4OID, Datum::Int4(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_le_bytes());
        }
        (INT8OID, Datum::Int8(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_le_bytes());
        }
        (FLOAT8OID, Datum::Float8(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        (FLOAT4OID, Datum::Float4(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        (DATEOID, Datum::Date(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_le_bytes());
        }
        (OIDOID, Datum::Oid(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.0.to_le_bytes());
        }
        (CHAROID, Datum::Char(v)) => tuple.push(*v),
        (NAMEOID, Datum::Name(s)) => {
            let data = s.as_bytes();
            if data.len() >= NAMEDATALEN || data.contains(&0) {
                return Err(TupleError::ValueTooLong {
                    attnum,
                    len: data.len(),
                });
            }
            let start = tuple.len();
            tuple.extend_from_slice(data);
            tuple.resize(start + NAMEDATALEN, 0);
        }
        (TIMESTAMPOID, Datum::Timestamp(v)) => {
            pad(tuple);
            tuple.extend_from_slice(&v.to_le_bytes());
        }
        (TEXTOID | VARCHAROID | BPCHAROID, Datum::Text(s)) | (NUMERICOID, Datum::Numeric(s)) => {
            let data = s.as_bytes();
            if data.len() + 1 <= VARATT_SHORT_MAX {
                tuple.push(((data.len() + 1) << 1 | 1) as u8);
            } else {
                let total = data.len() + 4;
                if total > MAX_VARLENA_BYTES {
                    return Err(TupleError::ValueTooLong {
                        attnum,
                        len: data.len(),
                    });
                }
                pad(tuple);
                tuple.extend_from_slice(&((total as u32) << 2).to_le_bytes());
            }
            tuple.extend_from_slice(data);
            return Ok(true);
        }
        _ => {
            return Err(TupleError::TypeMismatch {
                attnum,
                type_oid: attr.type_oid,
            })
        }
    }
    Ok(false)
}

/// `N` bytes of `tuple` at `at`, if they are there.
fn fixed<const N: usize>(tuple: &[u8], at: usize) -> Option<[u8; N]> {
    tuple.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Decode attribute `attnum` (1-based), which follows byte `off` (before
/// alignment). Returns the value and the offset just past it.
pub(crate) fn read_datum(
    tuple: &[u8],
    off: usize,
    attnum: usize,
    attr: &Attribute,
) -> Result<(Datum, usize), TupleError> {
    let corrupt = |what: &str| TupleError::Corrupt(format!("attribute {attnum}: {what}"));
    if attr.typlen < 0 {
        let (text, end) = read_varlena(tuple, off).map_err(|what| corrupt(what))?;
        let datum = match attr.type_oid {
            NUMERICOID => Datum::Numeric(text),
            _ => Datum::Text(text),
        };
        return Ok((datum, end));
    }
    let at = attr.typalign.align(off);
    let short = || corrupt("value runs past the end of the tuple");
    let (datum, len) = match attr.type_oid {
        BOOLOID => match fixed::<1>(tuple, at).ok_or_else(short)? {
            [0] => (Datum::Bool(false), 1),
            [1] => (Datum::Bool(true), 1),
            _ => return Err(corrupt("bool is neither 0 nor 1")),
        },
        INT2OID => (
            Datum::Int2(i16::from_le_bytes(fixed(tuple, at).ok_or_else(short)?)),
            2,
        ),
        INT4OID => (
            Datum::Int4(i32::from_le_bytes(fixed(tuple, at).ok_or_else(short)?)),
            4,
        ),
        INT8OID => (
            Datum::Int8(i64::from_le_bytes(fixed(tuple, at).ok_or_else(short)?)),
            8,
        ),
        TIMESTAMPOID => (
            Datum::Timestamp(i64::from_le_bytes(fixed(tuple, at).ok_or_else(short)?)),
            8,
        ),
        FLOAT8OID => {
            let bits = u64::from_le_bytes(fixed(tuple, at).ok_or_else(short)?);
            (Datum::Float8(f64::from_bits(bits)), 8)
        }
        FLOAT4OID => {
            let bits = u32::from_le_bytes(fixed(tuple, at).ok_or_else(short)?);
            (Datum::Float4(f32::from_bits(bits)), 4)
        }
        DATEOID => (
            Datum::Date(i32::from_le_bytes(fixed(tuple, at).ok_or_else(short)?)),
            4,
        ),
        OIDOID => (
            Datum::Oid(Oid(u32::from_le_bytes(fixed(tuple, at).ok_or_else(short)?))),
            4,
        ),
        CHAROID => (Datum::Char(fixed::<1>(tuple, at).ok_or_else(short)?[0]), 1),
        NAMEOID => {
            let bytes: [u8; NAMEDATALEN] = fixed(tuple, at).ok_or_else(short)?;
            let len = bytes.iter().position(|&b| b == 0).unwrap_or(NAMEDATALEN);
            let text = std::str::from_utf8(&bytes[..len])
                .map_err(|_| corrupt("name is not valid UTF-8"))?;
            (Datum::Name(text.to_owned()), NAMEDATALEN)
        }
        other => {
            return Err(TupleError::UnsupportedType {
                type_oid: other,
                typlen: attr.typlen,
                typalign: attr.typalign.as_char(),
            })
        }
    };
    Ok((datum, at + len))
}

fn read_varlena(tuple: &[u8], off: usize) -> Result<(String, usize), &'static str> {
    let start = match tuple.get(off) {
        Some(&b) if b != 0 => off,
        _ => TypAlign::Int.align(off),
    };
    let first = *tuple
        .get(start)
        .ok_or("varlena header past the end of the tuple")?;
    let (data_start, total) = if first == 0x01 {
        return Err("external (TOAST) varlena is not supported");
    } else if first & 1 == 1 {
        (start + 1, (first >> 1) as usize)
    } else {
        let header = u32::from_le_bytes(
            fixed(tuple, start).ok_or("varlena header past the end of the tuple")?,
        );
        if header & 3 != 0 {
            return Err("compressed varlena is not supported");
        }
        let total = (header >> 2) as usize;
        if total < 4 {
            return Err("varlena length shorter than its header");
        }
        (start + 4, total)
    };
    let end = start + total;
    let data = tuple
        .get(data_start..end)
        .ok_or("varlena runs past the end of the tuple")?;
    let text = std::str::from_utf8(data).map_err(|_| "text is not valid UTF-8")?;
    Ok((text.to_owned(), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_types_have_pg_type_layouts() {
        let expect = [
            (BOOLOID, 1, 'c'),
            (INT2OID, 2, 's'),
            (INT4OID, 4, 'i'),
            (INT8OID, 8, 'd'),
            (FLOAT8OID, 8, 'd'),
            (TEXTOID, -1, 'i'),
            (VARCHAROID, -1, 'i'),
            (CHAROID, 1, 'c'),
            (NAMEOID, 64, 'c'),
            (BPCHAROID, -1, 'i'),
            (TIMESTAMPOID, 8, 'd'),
            (OIDOID, 4, 'i'),
        ];
        for (oid, typlen, align) in expect {
            let a = Attribute::new(oid, false).expect("built-in");
            assert_eq!(
                (a.typlen, a.typalign.as_char()),
                (typlen, align),
                "type {oid}"
            );
            assert_eq!(TypAlign::from_char(align), Some(a.typalign));
        }
        assert!(
            Attribute::new(Oid(1184), false).is_err(),
            "timestamptz is not supported yet"
        );
    }

    #[test]
    fn catalog_types_round_trip() {
        let cases = [
            (OIDOID, Datum::Oid(Oid(16384)), 4),
            (CHAROID, Datum::Char(b'r'), 1),
            (NAMEOID, Datum::Name("pg_class".into()), 64),
        ];
        for (oid, value, len) in cases {
            let attr = Attribute::new(oid, true).expect("built-in");
            let mut t = Vec::new();
            write_datum(&mut t, 1, &attr, &value).expect("fits");
            assert_eq!(t.len(), len);
            assert_eq!(read_datum(&t, 0, 1, &attr), Ok((value, len)));
        }
        let attr = Attribute::new(NAMEOID, true).expect("built-in");
        let long = Datum::Name("n".repeat(64));
        assert!(write_datum(&mut Vec::new(), 1, &attr, &long).is_err());
    }

    #[test]
    fn alignment_rounds_up() {
        assert_eq!(TypAlign::Char.align(33), 33);
        assert_eq!(TypAlign::Short.align(33), 34);
        assert_eq!(TypAlign::Int.align(33), 36);
        assert_eq!(TypAlign::Double.align(33), 40);
        assert_eq!(TypAlign::Double.align(40), 40);
    }

    #[test]
    fn descriptors_reject_inconsistent_layouts() {
        let mut a = Attribute::new(INT4OID, false).expect("built-in");
        a.typalign = TypAlign::Double;
        assert!(matches!(
            TupleDesc::new(vec![a]),
            Err(TupleError::UnsupportedType { .. })
        ));
        let many =
            vec![Attribute::new(BOOLOID, false).expect("built-in"); MAX_HEAP_ATTRIBUTE_NUMBER + 1];
        assert_eq!(
            TupleDesc::new(many),
            Err(TupleError::TooManyColumns { natts: 1601 })
        );
    }

    #[test]
    fn text_switches_to_the_four_byte_header_after_126_bytes() {
        let attr = Attribute::new(TEXTOID, false).expect("built-in");
        for (n, header_len) in [(0, 1), (126, 1), (127, 4), (5000, 4)] {
            let mut t = vec![0xAA]; // one byte in: a 4-byte header needs padding
            let s = "x".repeat(n);
            write_datum(&mut t, 1, &attr, &Datum::Text(s.clone())).expect("fits");
            let pad = if header_len == 4 { 3 } else { 0 };
            assert_eq!(t.len(), 1 + pad + header_len + n, "{n} bytes");
            assert_eq!(read_datum(&t, 1, 1, &attr), Ok((Datum::Text(s), t.len())));
        }
        assert_eq!(
            read_varlena(&[0x01, 0, 0, 0], 0),
            Err("external (TOAST) varlena is not supported")
        );
        assert_eq!(
            read_varlena(&[0x0a, 0, 0, 0], 0),
            Err("compressed varlena is not supported")
        );
        assert_eq!(
            read_varlena(&[0x08, 0, 0, 0], 0),
            Err("varlena length shorter than its header")
        );
        assert_eq!(
            read_varlena(&[0x0b, b'a'], 0),
            Err("varlena runs past the end of the tuple")
        );
        assert_eq!(
            read_varlena(&[0x05, 0xff], 0),
            Err("text is not valid UTF-8")
        );
        assert_eq!(
            read_varlena(&[0, 0], 0),
            Err("varlena header past the end of the tuple")
        );
    }
}
