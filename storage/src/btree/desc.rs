//! The index as the access method sees it ([`BtreeIndex`]: its files, name,
//! key columns and their options), the checks on values handed in, and the
//! texts of the errors that name key values (23505's DETAIL).
//!
//! The catalog integration builds a `BtreeIndex` from `pg_class`,
//! `pg_index` (`indkey`, `indoption`) and `pg_attribute` of the index; the
//! storage engine itself never reads the catalogs here.

use pgerror::{PgError, SqlState};

use super::tuple::INDEX_MAX_KEYS;
use crate::heap::datum::{
    Datum, TupleDesc, BOOLOID, BPCHAROID, CHAROID, DATEOID, FLOAT4OID, FLOAT8OID, INT2OID, INT4OID,
    INT8OID, NAMEOID, NUMERICOID, OIDOID, TEXTOID, TIMESTAMPOID, VARCHAROID,
};
use crate::types::{Oid, RelFileLocator};

/// One key column: its name (for messages), type, and ordering options
/// (`pg_index.indoption`: DESC, NULLS FIRST).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexColumn {
    pub name: String,
    pub type_oid: Oid,
    pub descending: bool,
    pub nulls_first: bool,
}

impl IndexColumn {
    /// `ASC NULLS LAST`, PostgreSQL's default.
    pub fn new(name: impl Into<String>, type_oid: Oid) -> IndexColumn {
        IndexColumn {
            name: name.into(),
            type_oid,
            descending: false,
            nulls_first: false,
        }
    }

    /// `DESC`, whose default is `NULLS FIRST`.
    pub fn descending(mut self) -> IndexColumn {
        self.descending = true;
        self.nulls_first = true;
        self
    }

    pub fn nulls_first(mut self, on: bool) -> IndexColumn {
        self.nulls_first = on;
        self
    }
}

/// A btree index: where its pages are and how its keys are ordered.
#[derive(Clone, Debug)]
pub struct BtreeIndex {
    pub locator: RelFileLocator,
    /// The index's name, for error messages.
    pub name: String,
    pub columns: Vec<IndexColumn>,
    desc: TupleDesc,
    /// Renders a key value in an error's DETAIL (the type's output
    /// function); [`default_value_out`] unless the caller has better.
    pub value_out: fn(&Datum) -> String,
}

impl BtreeIndex {
    /// Checks the column count (1 to [`INDEX_MAX_KEYS`]) and that every type
    /// is one the storage engine can store and order.
    pub fn new(
        locator: RelFileLocator,
        name: impl Into<String>,
        columns: Vec<IndexColumn>,
    ) -> Result<BtreeIndex, PgError> {
        let name = name.into();
        if columns.is_empty() || columns.len() > INDEX_MAX_KEYS {
            return Err(PgError::new(
                SqlState::TOO_MANY_COLUMNS,
                format!("cannot use more than {INDEX_MAX_KEYS} columns in an index"),
            ));
        }
        let types: Vec<(Oid, bool)> = columns.iter().map(|c| (c.type_oid, false)).collect();
        let desc = TupleDesc::from_types(&types).map_err(PgError::from)?;
        Ok(BtreeIndex {
            locator,
            name,
            columns,
            desc,
            value_out: default_value_out,
        })
    }

    /// Number of key columns.
    pub fn natts(&self) -> usize {
        self.columns.len()
    }

    pub(crate) fn desc(&self) -> &TupleDesc {
        &self.desc
    }

    /// `values` must be one per key column (a prefix if `prefix`), each
    /// NULL or of a variant the column's type accepts (any integer for the
    /// integer types, as the integer_ops family compares across them).
    pub fn check_values(&self, values: &[Option<Datum>], prefix: bool) -> Result<(), PgError> {
        let count_ok = if prefix {
            values.len() <= self.natts()
        } else {
            values.len() == self.natts()
        };
        if !count_ok {
            return Err(PgError::internal(format!(
                "{} key values for index \"{}\" of {} columns",
                values.len(),
                self.name,
                self.natts()
            )));
        }
        for (col, v) in self.columns.iter().zip(values) {
            let Some(v) = v else { continue };
            if !accepts(col.type_oid, v, prefix) {
                return Err(PgError::internal(format!(
                    "value {v:?} does not match the type {} of column \"{}\" of index \"{}\"",
                    col.type_oid, col.name, self.name
                )));
            }
        }
        Ok(())
    }

    /// `(a, b)=(1, x)`: the key as PostgreSQL's `BuildIndexValueDescription`
    /// prints it.
    pub fn describe_key(&self, values: &[Option<Datum>]) -> String {
        let cols: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let vals: Vec<String> = values
            .iter()
            .map(|v| {
                v.as_ref()
                    .map_or_else(|| "null".to_string(), self.value_out)
            })
            .collect();
        format!("({})=({})", cols.join(", "), vals.join(", "))
    }

    /// `23505` for a live duplicate of `values` (PostgreSQL's wording).
    pub fn unique_violation(&self, values: &[Option<Datum>]) -> PgError {
        PgError::new(
            SqlState::UNIQUE_VIOLATION,
            format!(
                "duplicate key value violates unique constraint \"{}\"",
                self.name
            ),
        )
        .with_detail(format!("Key {} already exists.", self.describe_key(values)))
    }
}

/// Whether a column of `type_oid` takes `v` (with `cross_integer`, any
/// integer width for an integer column).
fn accepts(type_oid: Oid, v: &Datum, cross_integer: bool) -> bool {
    match (type_oid, v) {
        (INT2OID, Datum::Int2(_)) | (INT4OID, Datum::Int4(_)) | (INT8OID, Datum::Int8(_)) => true,
        (INT2OID | INT4OID | INT8OID, Datum::Int2(_) | Datum::Int4(_) | Datum::Int8(_)) => {
            cross_integer
        }
        (FLOAT8OID, Datum::Float8(_)) | (BOOLOID, Datum::Bool(_)) => true,
        (FLOAT4OID, Datum::Float4(_)) | (DATEOID, Datum::Date(_)) => true,
        (TEXTOID | VARCHAROID | BPCHAROID, Datum::Text(_)) => true,
        (NAMEOID, Datum::Name(_)) | (OIDOID, Datum::Oid(_)) | (CHAROID, Datum::Char(_)) => true,
        (TIMESTAMPOID, Datum::Timestamp(_)) | (NUMERICOID, Datum::Numeric(_)) => true,
        _ => false,
    }
}

/// The text of a value as PostgreSQL's output functions print it, for
/// error details.
pub fn default_value_out(d: &Datum) -> String {
    match d {
        Datum::Int2(v) => v.to_string(),
        Datum::Int4(v) => v.to_string(),
        Datum::Int8(v) => v.to_string(),
        Datum::Float8(v) => float8_out(*v),
        Datum::Float4(v) => float4_out(*v),
        Datum::Date(d) => date_out(*d),
        Datum::Bool(v) => if *v { "t" } else { "f" }.to_string(),
        Datum::Text(s) | Datum::Name(s) | Datum::Numeric(s) => s.clone(),
        Datum::Oid(o) => o.0.to_string(),
        Datum::Char(c) if c.is_ascii() && !c.is_ascii_control() => (*c as char).to_string(),
        Datum::Char(c) => format!("\\{c:03o}"),
        Datum::Timestamp(us) => timestamp_out(*us),
    }
}

/// `float8out` with the default `extra_float_digits`: the shortest text
/// that reads back exactly, in exponent form outside 1e-4 .. 1e15.
fn float8_out(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} prints an integer exponent");
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        v.to_string()
    }
}

/// `float4out` with the default `extra_float_digits`: the shortest text
/// that reads back as the same f32, in exponent form outside 1e-4 .. 1e6.
fn float4_out(v: f32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} prints an integer exponent");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        v.to_string()
    }
}

/// `date_out` in the ISO style: `2000-01-01[ BC]`, or `[-]infinity`.
fn date_out(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => {
            let (year, month, day) = civil_from_days(i64::from(d) + 10_957);
            let bc = if year <= 0 { " BC" } else { "" };
            let year = if year <= 0 { 1 - year } else { year };
            format!("{year:04}-{month:02}-{day:02}{bc}")
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian, with
/// year 0 for 1 BC (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `timestamp_out` in the ISO style: `2000-01-01 00:00:00[.ffffff][ BC]`.
fn timestamp_out(us: i64) -> String {
    match us {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    const DAY_US: i64 = 86_400_000_000;
    // Days from 1970-01-01 to 2000-01-01.
    let days = us.div_euclid(DAY_US) + 10_957;
    let rem = us.rem_euclid(DAY_US);
    let (year, month, day) = civil_from_days(days);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    let mut out = format!(
        "{:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        if year <= 0 { 1 - year } else { year },
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    if year <= 0 {
        out.push_str(" BC");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_postgres_output_functions_do() {
        assert_eq!(float8_out(1.5), "1.5");
        assert_eq!(float8_out(1e20), "1e+20");
        assert_eq!(float8_out(1.25e-5), "1.25e-05");
        assert_eq!(float8_out(0.0001), "0.0001");
        assert_eq!(float8_out(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(float4_out(0.1), "0.1");
        assert_eq!(float4_out(123456789.0), "1.2345679e+08");
        assert_eq!(date_out(0), "2000-01-01");
        assert_eq!(date_out(-2_451_545), "4714-11-24 BC");
        assert_eq!(date_out(2_145_031_948), "5874897-12-31");
        assert_eq!(date_out(i32::MAX), "infinity");
        assert_eq!(timestamp_out(0), "2000-01-01 00:00:00");
        assert_eq!(timestamp_out(-1_000_000 + 500_000), "1999-12-31 23:59:59.5");
        assert_eq!(
            timestamp_out(((366 + 365) * 86_400 + 3_723) * 1_000_000 + 42),
            "2002-01-01 01:02:03.000042"
        );
        assert_eq!(default_value_out(&Datum::Bool(true)), "t");
        assert_eq!(default_value_out(&Datum::Char(b'r')), "r");
    }

    #[test]
    fn the_key_description_names_columns_and_values() {
        let loc = RelFileLocator {
            spc_oid: Oid(1663),
            db_oid: Oid(5),
            rel_number: Oid(16400),
        };
        let idx = BtreeIndex::new(
            loc,
            "t_a_b_key",
            vec![
                IndexColumn::new("a", INT4OID),
                IndexColumn::new("b", TEXTOID),
            ],
        )
        .unwrap();
        let e = idx.unique_violation(&[Some(Datum::Int4(1)), None]);
        assert_eq!(e.code, SqlState::UNIQUE_VIOLATION);
        assert_eq!(
            e.message,
            "duplicate key value violates unique constraint \"t_a_b_key\""
        );
        assert_eq!(
            e.detail.as_deref(),
            Some("Key (a, b)=(1, null) already exists.")
        );
        assert!(idx.check_values(&[Some(Datum::Int8(1))], true).is_ok());
        assert!(idx
            .check_values(&[Some(Datum::Int8(1)), None], false)
            .is_err());
        assert!(idx
            .check_values(&[Some(Datum::Text("x".into()))], true)
            .is_err());
        assert!(BtreeIndex::new(loc, "none", vec![]).is_err());
    }
}
