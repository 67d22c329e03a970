//! COPY between a table (or a query) and the client: `COPY t [(cols)]
//! FROM STDIN` and `COPY t [(cols)] | (query) TO STDOUT`, in text and CSV
//! formats (PostgreSQL's copyfrom.c / copyto.c, for the client side only).
//!
//! # Rules
//!
//! 1. (C1) The input is a byte stream: CopyData boundaries mean nothing; a
//!    row is a line (CSV: a quoted field may span lines). A line `\.` ends
//!    the data (what pgbench and psql send); anything after it up to
//!    CopyDone is ignored.
//! 2. (C2) Each value goes through its type's input function and typmod,
//!    then the row through the same NOT NULL checks, heap insert and index
//!    entries as an INSERT (`modify::RowInserter`); columns not listed get
//!    their defaults.
//! 3. (C3) A bad row fails the whole COPY with PostgreSQL's message and a
//!    CONTEXT naming the line (and column): `COPY t, line 3, column a: "x"`.
//!    The transaction then aborts, so no row of it stays.
//! 4. (C4) FREEZE is accepted when the table was created or truncated in
//!    the current transaction, as PostgreSQL requires (rows are stored as
//!    any others: the transaction's commit makes them visible at once
//!    anyway for a table nobody else can have seen).
//! 5. (C5) Rows go into the heap in batches of up to 1000 rows or 64 KB of
//!    tuples (PostgreSQL's multi-insert buffers): each row is parsed,
//!    checked (NOT NULL, size) and formed when its line arrives, so such an
//!    error names its own line; a full batch, and the last one, go in with
//!    one `heap_multi_insert` (one WAL record per page), then their index
//!    entries row by row, and an error there (a unique violation) names
//!    that row's line. Foreign keys are checked after the last row, as
//!    PostgreSQL's after triggers are (`modify::RowInserter::finish`), so a
//!    row may reference any row of the same COPY.
//!
//! Files on the server and PROGRAM are refused (`0A000`): the client side
//! (psql's `\copy`) covers loading and unloading.

use std::borrow::Cow;
use std::sync::Arc;

use pg_query::protobuf::{self as pb, node::Node as N};
use pgerror::{PgError, PgResult, SqlState};
use storage::catalog::{self, RelationInfo};
use storage::lmgr::LockMode;

use super::datum::Datum;
use super::eval::{eval, ExecEnv};
use super::execute::{for_each_row, open_heap, scan_block, ScanCtx};
use super::expr::Expr;
use super::io::{self, IoContext};
use super::modify::{FormedRow, RowInserter};
use super::parser::{inner, string_value};
use super::statement::{exec_env, io_context, scan_ctx};
use super::tables;
use super::types::TypeOid;
use crate::dest::Dest;
use crate::session::Session;

/// COPY's WITH options.
#[derive(Clone, Debug)]
struct CopyOptions {
    csv: bool,
    delimiter: char,
    null: String,
    header: bool,
    quote: char,
    escape: char,
    freeze: bool,
}

fn option_text(d: &pb::DefElem) -> Option<String> {
    match d.arg.as_deref().and_then(inner) {
        Some(N::String(s)) => Some(s.sval.clone()),
        Some(N::Integer(i)) => Some(i.ival.to_string()),
        Some(N::Boolean(b)) => Some(if b.boolval { "true" } else { "false" }.into()),
        Some(N::AConst(c)) => match &c.val {
            Some(pb::a_const::Val::Sval(s)) => Some(s.sval.clone()),
            Some(pb::a_const::Val::Ival(i)) => Some(i.ival.to_string()),
            Some(pb::a_const::Val::Boolval(b)) => {
                Some(if b.boolval { "true" } else { "false" }.into())
            }
            _ => None,
        },
        _ => None,
    }
}

fn option_bool(d: &pb::DefElem) -> PgResult<bool> {
    match option_text(d) {
        None => Ok(true),
        Some(t) => io::parse_bool(&t).ok_or_else(|| {
            PgError::new(
                SqlState::SYNTAX_ERROR,
                format!("{} requires a Boolean value", d.defname),
            )
        }),
    }
}

fn single_char(d: &pb::DefElem, what: &str) -> PgResult<char> {
    let t = option_text(d).unwrap_or_default();
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => Ok(c),
        _ => Err(PgError::unsupported(format!(
            "COPY {what} must be a single one-byte character"
        ))),
    }
}

fn parse_options(options: &[pb::Node]) -> PgResult<CopyOptions> {
    let mut o = CopyOptions {
        csv: false,
        delimiter: '\t',
        null: "\\N".into(),
        header: false,
        quote: '"',
        escape: '"',
        freeze: false,
    };
    let (mut delimiter, mut null, mut quote, mut escape) = (None, None, None, None);
    for opt in options {
        let Some(N::DefElem(d)) = inner(opt) else {
            continue;
        };
        match d.defname.as_str() {
            "format" => match option_text(d).as_deref() {
                Some("text") => o.csv = false,
                Some("csv") => o.csv = true,
                Some("binary") => {
                    return Err(PgError::unsupported(
                        "COPY in binary format is not supported yet",
                    ))
                }
                other => {
                    return Err(PgError::new(
                        SqlState::INVALID_PARAMETER_VALUE,
                        format!(
                            "COPY format \"{}\" not recognized",
                            other.unwrap_or_default()
                        ),
                    ))
                }
            },
            "freeze" => o.freeze = option_bool(d)?,
            "header" => o.header = option_bool(d)?,
            "delimiter" => delimiter = Some(single_char(d, "delimiter")?),
            "null" => null = option_text(d),
            "quote" => quote = Some(single_char(d, "quote")?),
            "escape" => escape = Some(single_char(d, "escape")?),
            "encoding" => {
                let e = option_text(d).unwrap_or_default().to_ascii_uppercase();
                if e != "UTF8" && e != "UTF-8" {
                    return Err(PgError::unsupported(format!(
                        "COPY encoding \"{e}\" is not supported yet"
                    )));
                }
            }
            other => {
                return Err(PgError::new(
                    SqlState::SYNTAX_ERROR,
                    format!("option \"{other}\" not recognized"),
                ))
            }
        }
    }
    if o.csv {
        o.delimiter = delimiter.unwrap_or(',');
        o.null = null.unwrap_or_default();
        o.quote = quote.unwrap_or('"');
        o.escape = escape.unwrap_or(o.quote);
    } else {
        if quote.is_some() || escape.is_some() {
            return Err(PgError::unsupported(
                "COPY QUOTE and ESCAPE are available only in CSV mode",
            ));
        }
        if o.header {
            return Err(PgError::unsupported(
                "COPY HEADER available only in CSV mode",
            ));
        }
        o.delimiter = delimiter.unwrap_or('\t');
        o.null = null.unwrap_or_else(|| "\\N".into());
    }
    Ok(o)
}

/// COPY (the SQL statement).
pub fn exec_copy(
    session: &mut Session,
    query: &str,
    stmt: &pb::CopyStmt,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    if stmt.is_program || !stmt.filename.is_empty() {
        return Err(PgError::unsupported(
            "COPY to or from a file or program on the server is not supported yet; use psql's \\copy",
        ));
    }
    if stmt.where_clause.is_some() {
        return Err(PgError::unsupported(
            "COPY FROM ... WHERE is not supported yet",
        ));
    }
    let options = parse_options(&stmt.options)?;
    if stmt.is_from {
        let rv = stmt
            .relation
            .as_ref()
            .ok_or_else(|| PgError::internal("COPY FROM without a table"))?;
        let rel = tables::open_relation(session, query, rv, LockMode::RowExclusive)?;
        copy_from(session, &rel, stmt, &options, dest)
    } else {
        copy_to(session, query, stmt, &options, dest)
    }
}

/// The table columns a COPY names (all of them without a list).
fn copy_columns(rel: &RelationInfo, attlist: &[pb::Node]) -> PgResult<Vec<usize>> {
    if attlist.is_empty() {
        return Ok((0..rel.columns.len()).collect());
    }
    let mut out = Vec::new();
    for a in attlist {
        let name = string_value(a).unwrap_or_default();
        let i = rel
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                PgError::new(
                    SqlState::UNDEFINED_COLUMN,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        rel.name
                    ),
                )
            })?;
        if out.contains(&i) {
            return Err(PgError::new(
                SqlState::DUPLICATE_COLUMN,
                format!("column \"{name}\" specified more than once"),
            ));
        }
        out.push(i);
    }
    Ok(out)
}

fn copy_from(
    session: &mut Session,
    rel: &Arc<RelationInfo>,
    stmt: &pb::CopyStmt,
    options: &CopyOptions,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    if rel.kind != catalog::RELKIND_RELATION {
        return Err(PgError::new(
            SqlState::WRONG_OBJECT_TYPE,
            format!("cannot copy to non-table relation \"{}\"", rel.name),
        ));
    }
    if rel.namespace == catalog::PG_CATALOG_NAMESPACE {
        return Err(PgError::new(
            SqlState::INSUFFICIENT_PRIVILEGE,
            format!("permission denied for table {}", rel.name),
        ));
    }
    let columns = copy_columns(rel, &stmt.attlist)?;
    let db = session.engine.as_ref().ok_or_else(tables::no_storage)?.db;
    let freeze_refused = options.freeze && !session.storage.created_here(rel.locator(db));
    tables::ensure_xid(session)?;
    let io = io_context(&session.settings, session.xact.xact_start());
    let defaults = (0..rel.columns.len())
        .map(|i| {
            if columns.contains(&i) {
                Ok(Expr::null_of(TypeOid(rel.columns[i].type_oid.0)))
            } else {
                super::modify::default_expr(&io, rel, i)
            }
        })
        .collect::<PgResult<Vec<_>>>()?;
    let has_defaults = defaults.iter().any(|e| {
        !matches!(
            e,
            Expr::Const {
                value: Datum::Null,
                ..
            }
        )
    });
    let mut env = exec_env!(session, &[]);
    let mut scan = scan_ctx!(session);
    let heap = super::execute::heap_of(&scan, rel)?;
    let inserter = super::modify::RowInserter::new(&mut scan, rel, heap)?;
    dest.copy_in_start(columns.len())?;
    // PostgreSQL checks FREEZE once the client is already sending.
    if freeze_refused {
        return Err(PgError::new(
            SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            "cannot perform COPY FREEZE because the table was not created or truncated in the current subtransaction",
        ));
    }
    let mut reader = LineReader::default();
    let mut line_no = 0u64;
    let mut count = 0u64;
    let mut finished = false;
    let mut header_skipped = !options.header;
    let mut row_error: Option<PgError> = None;
    let mut batch = CopyBatch::default();
    // One record: parsed, defaults filled in, then inserted at once or
    // checked, formed and kept for the batch (C5).
    let mut add_row = |line: &str, line_no: u64, env: &mut ExecEnv<'_>, scan: &mut ScanCtx<'_>| {
        // Errors of the row itself name the line and show it, as
        // PostgreSQL does while the line is current.
        let mut formed = || {
            let mut values = parse_row(line, line_no, rel, &columns, options, &io)?;
            if has_defaults {
                for (i, d) in defaults.iter().enumerate() {
                    if !columns.contains(&i) {
                        values[i] = eval(d, env)?;
                    }
                }
            }
            inserter.form(env, &values)
        };
        let row = formed().map_err(|e| with_line(e, rel, line_no, Some(line)))?;
        batch.push(row, line_no);
        if batch.is_full() {
            batch.flush(&inserter, scan, rel)?;
        }
        Ok::<(), PgError>(())
    };
    loop {
        let chunk = match dest.copy_in_read() {
            Ok(c) => c,
            Err(e) => return Err(e),
        };
        let Some(chunk) = chunk else {
            break;
        };
        if finished || row_error.is_some() {
            continue; // C1: the rest up to CopyDone is read and ignored.
        }
        reader.push(&chunk);
        while let Some(line) = reader.next_record(options)? {
            line_no += 1;
            if !header_skipped {
                header_skipped = true;
                continue;
            }
            if line == "\\." {
                finished = true;
                break;
            }
            crate::interrupts::check_for_interrupts()?;
            match add_row(&line, line_no, &mut env, &mut scan) {
                Ok(()) => count += 1,
                Err(e) => {
                    row_error = Some(e);
                    break;
                }
            }
        }
    }
    if let Some(e) = row_error {
        return Err(e);
    }
    if !finished {
        if let Some(rest) = reader.rest() {
            line_no += 1;
            if !(rest.is_empty() || rest == "\\.") {
                add_row(&rest, line_no, &mut env, &mut scan)?;
                count += 1;
            }
        }
    }
    batch.flush(&inserter, &mut scan, rel)?;
    // Foreign keys are checked once every row is in (PostgreSQL's after
    // triggers at the end of the statement), with no line to name.
    inserter.finish(&mut scan)?;
    Ok(format!("COPY {count}"))
}

/// An error's context names the COPY line it came from, and shows the line
/// when it is at hand, unless the error already has a context (PostgreSQL's
/// `CopyFromErrorCallback`).
fn with_line(e: PgError, rel: &RelationInfo, line_no: u64, line: Option<&str>) -> PgError {
    if e.context.is_some() {
        return e;
    }
    e.with_context(line_context(rel, line_no, line))
}

/// `COPY t, line N` or `COPY t, line N: "the line"`, the line cut after
/// 100 bytes with `...` (PostgreSQL's `limit_printout_length`).
fn line_context(rel: &RelationInfo, line_no: u64, line: Option<&str>) -> String {
    const MAX_DISPLAY: usize = 100;
    match line {
        None => format!("COPY {}, line {line_no}", rel.name),
        Some(l) if l.len() <= MAX_DISPLAY => format!("COPY {}, line {line_no}: \"{l}\"", rel.name),
        Some(l) => {
            let mut cut = MAX_DISPLAY;
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("COPY {}, line {line_no}: \"{}...\"", rel.name, &l[..cut])
        }
    }
}

/// How many rows, or bytes of tuples, a batch holds before it is flushed
/// (PostgreSQL's `MAX_BUFFERED_TUPLES` and `MAX_BUFFERED_BYTES`).
const BATCH_ROWS: usize = 1000;
const BATCH_BYTES: usize = 64 * 1024;

/// COPY FROM's rows on their way to the heap (C5; PostgreSQL's
/// `CopyMultiInsertBuffer`), with the line each came from.
#[derive(Default)]
struct CopyBatch {
    rows: Vec<FormedRow>,
    lines: Vec<u64>,
    bytes: usize,
}

impl CopyBatch {
    fn push(&mut self, row: FormedRow, line_no: u64) {
        self.bytes += row.tuple_len();
        self.rows.push(row);
        self.lines.push(line_no);
    }

    fn is_full(&self) -> bool {
        self.rows.len() >= BATCH_ROWS || self.bytes >= BATCH_BYTES
    }

    /// Inserts the rows held; an error names the line of the row it
    /// concerns.
    fn flush(
        &mut self,
        inserter: &RowInserter,
        scan: &mut ScanCtx<'_>,
        rel: &RelationInfo,
    ) -> PgResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let result = inserter.insert_batch(scan, &self.rows);
        let lines = std::mem::take(&mut self.lines);
        self.rows.clear();
        self.bytes = 0;
        result.map_err(|(i, e)| with_line(e, rel, lines[i], None))
    }
}

/// Splits the byte stream into records (C1).
#[derive(Default)]
struct LineReader {
    buf: Vec<u8>,
    pos: usize,
}

impl LineReader {
    fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete record, without its line end. In CSV a newline
    /// inside quotes does not end the record.
    fn next_record(&mut self, o: &CopyOptions) -> PgResult<Option<String>> {
        let bytes = &self.buf[self.pos..];
        let mut in_quotes = false;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if o.csv {
                if b == o.quote as u8 {
                    in_quotes = !in_quotes;
                } else if b == b'\n' && !in_quotes {
                    break;
                }
            } else if b == b'\\' {
                i += 2;
                continue;
            } else if b == b'\n' {
                break;
            }
            i += 1;
        }
        if i >= bytes.len() {
            return Ok(None);
        }
        let mut line = &bytes[..i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| {
                PgError::new(
                    SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                    "invalid byte sequence for encoding \"UTF8\"",
                )
            })?
            .to_string();
        self.pos += i + 1;
        Ok(Some(text))
    }

    /// What is left after CopyDone (a last line without its newline).
    fn rest(&self) -> Option<String> {
        let bytes = &self.buf[self.pos..];
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The raw fields of a text-format line and whether each was the NULL
/// marker (compared before de-escaping, as PostgreSQL does). A field
/// without a backslash is borrowed from the line as it is; only one with an
/// escape is copied out and de-escaped.
fn split_text<'a>(line: &'a str, o: &CopyOptions) -> Vec<Option<Cow<'a, str>>> {
    let mut fields = Vec::with_capacity(8);
    let bytes = line.as_bytes();
    // The delimiter is one ASCII character (parse_options checks it), and an
    // ASCII byte never occurs inside a multi-byte UTF-8 sequence, so the
    // line may be cut at byte positions.
    let delim = o.delimiter as u8;
    let mut start = 0;
    let mut escaped = false;
    let mut i = 0;
    while i <= bytes.len() {
        let b = bytes.get(i).copied();
        if b == Some(b'\\') {
            escaped = true;
            // The escaped character is never a delimiter.
            i = (i + 2).min(bytes.len());
            continue;
        }
        if b.is_some() && b != Some(delim) {
            i += 1;
            continue;
        }
        let raw = &line[start..i];
        fields.push(if raw == o.null {
            None
        } else if escaped {
            Some(Cow::Owned(unescape_text(raw)))
        } else {
            Some(Cow::Borrowed(raw))
        });
        escaped = false;
        i += 1;
        start = i;
    }
    fields
}

/// A text-format field with its backslash escapes resolved.
fn unescape_text(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some(n) = chars.next() else {
            break;
        };
        match n {
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            't' => value.push('\t'),
            'v' => value.push('\u{b}'),
            '0'..='7' => {
                let mut v = n.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            chars.next();
                            v = v * 8 + d;
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(v & 0xff).unwrap_or('?'));
            }
            'x' if chars.peek().is_some_and(|d| d.is_ascii_hexdigit()) => {
                let mut v = 0;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(16)) {
                        Some(d) => {
                            chars.next();
                            v = v * 16 + d;
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(v).unwrap_or('?'));
            }
            other => value.push(other),
        }
    }
    value
}

/// The fields of a CSV record; an unquoted field equal to the NULL string
/// is NULL.
fn split_csv<'a>(line: &str, o: &CopyOptions) -> Vec<Option<Cow<'a, str>>> {
    let mut fields = Vec::new();
    let mut value = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == o.escape && chars.peek() == Some(&o.quote) && o.escape != o.quote {
                value.push(chars.next().unwrap_or(o.quote));
            } else if c == o.quote {
                if o.escape == o.quote && chars.peek() == Some(&o.quote) {
                    chars.next();
                    value.push(o.quote);
                } else {
                    in_quotes = false;
                }
            } else {
                value.push(c);
            }
        } else if c == o.quote {
            in_quotes = true;
            quoted = true;
        } else if c == o.delimiter {
            fields.push(if !quoted && value == o.null {
                None
            } else {
                Some(Cow::Owned(std::mem::take(&mut value)))
            });
            value.clear();
            quoted = false;
        } else {
            value.push(c);
        }
    }
    fields.push(if !quoted && value == o.null {
        None
    } else {
        Some(Cow::Owned(value))
    });
    fields
}

/// One line as a row of the table's columns (C2, C3); unlisted columns are
/// NULL here (the caller fills in defaults).
fn parse_row(
    line: &str,
    line_no: u64,
    rel: &RelationInfo,
    columns: &[usize],
    o: &CopyOptions,
    io: &IoContext,
) -> PgResult<Vec<Datum>> {
    let fields = if o.csv {
        split_csv(line, o)
    } else {
        split_text(line, o)
    };
    let context = || line_context(rel, line_no, Some(line));
    if fields.len() > columns.len() {
        return Err(
            PgError::new(SqlState(*b"22P04"), "extra data after last expected column")
                .with_context(context()),
        );
    }
    if fields.len() < columns.len() {
        let missing = &rel.columns[columns[fields.len()]].name;
        return Err(PgError::new(
            SqlState(*b"22P04"),
            format!("missing data for column \"{missing}\""),
        )
        .with_context(context()));
    }
    let mut values = vec![Datum::Null; rel.columns.len()];
    for (field, &i) in fields.into_iter().zip(columns) {
        let c = &rel.columns[i];
        let Some(text) = field else {
            continue;
        };
        let ty = TypeOid(c.type_oid.0);
        let v = io::input(ty, &text, io)
            .and_then(|v| super::casts::apply_typmod(v, ty, c.typmod, false))
            .map_err(|mut e| {
                e.position = None;
                e.with_context(format!(
                    "COPY {}, line {line_no}, column {}: \"{text}\"",
                    rel.name, c.name
                ))
            })?;
        values[i] = v;
    }
    Ok(values)
}

fn copy_to(
    session: &mut Session,
    query: &str,
    stmt: &pb::CopyStmt,
    o: &CopyOptions,
    dest: &mut dyn Dest,
) -> PgResult<String> {
    if o.freeze {
        return Err(PgError::unsupported(
            "COPY FREEZE cannot be used with COPY TO",
        ));
    }
    let io = io_context(&session.settings, session.xact.xact_start());
    let mut count = 0u64;
    if let Some(rv) = &stmt.relation {
        let rel = tables::open_relation(session, query, rv, LockMode::AccessShare)?;
        let columns = copy_columns(&rel, &stmt.attlist)?;
        let types: Vec<TypeOid> = columns
            .iter()
            .map(|&i| TypeOid(rel.columns[i].type_oid.0))
            .collect();
        if o.header {
            let names: Vec<String> = columns
                .iter()
                .map(|&i| rel.columns[i].name.clone())
                .collect();
            dest.copy_out_start(columns.len())?;
            dest.copy_out_data(header_line(&names, o).as_bytes())?;
        } else {
            dest.copy_out_start(columns.len())?;
        }
        let mut scan = scan_ctx!(session);
        let (heap, nblocks) = open_heap(&mut scan, &rel)?;
        for b in 0..nblocks {
            crate::interrupts::check_for_interrupts()?;
            for (_, row) in scan_block(&mut scan, &heap, b)? {
                let values: Vec<Datum> = columns.iter().map(|&i| row[i].clone()).collect();
                dest.copy_out_data(format_line(&values, &types, o, &io).as_bytes())?;
                count += 1;
            }
        }
    } else {
        let Some(N::SelectStmt(select)) = stmt.query.as_deref().and_then(inner) else {
            return Err(PgError::unsupported(
                "COPY of statements other than SELECT is not supported yet",
            ));
        };
        let from = tables::resolve_from(session, query, select)?;
        let ps = super::analyze::ParseState::new(query, &io);
        let analyzed = super::analyze::analyze_select(&ps, select, &from)?;
        let mut env = exec_env!(session, &[]);
        let planned = super::plan::plan_query(analyzed, &mut env)?;
        let types: Vec<TypeOid> = planned.columns.iter().map(|c| c.ty).collect();
        dest.copy_out_start(types.len())?;
        if o.header {
            let names: Vec<String> = planned.columns.iter().map(|c| c.name.clone()).collect();
            dest.copy_out_data(header_line(&names, o).as_bytes())?;
        }
        let mut scan = scan_ctx!(session);
        for_each_row(&planned, &mut env, &mut scan, |env, _, row| {
            dest.copy_out_data(format_line(&row, &types, o, &env.io).as_bytes())?;
            count += 1;
            Ok(())
        })?;
    }
    dest.copy_out_done()?;
    Ok(format!("COPY {count}"))
}

fn header_line(names: &[String], o: &CopyOptions) -> String {
    let mut line = names
        .iter()
        .map(|n| csv_field(n, o))
        .collect::<Vec<_>>()
        .join(&o.delimiter.to_string());
    line.push('\n');
    line
}

fn csv_field(text: &str, o: &CopyOptions) -> String {
    let needs_quotes = text.is_empty()
        || text == o.null
        || text.contains(o.delimiter)
        || text.contains(o.quote)
        || text.contains(['\n', '\r']);
    if !needs_quotes {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push(o.quote);
    for c in text.chars() {
        if c == o.quote || c == o.escape {
            out.push(o.escape);
        }
        out.push(c);
    }
    out.push(o.quote);
    out
}

/// One row in COPY's output format, with its newline.
fn format_line(values: &[Datum], types: &[TypeOid], o: &CopyOptions, io: &IoContext) -> String {
    let mut line = String::new();
    for (i, (v, &ty)) in values.iter().zip(types).enumerate() {
        if i > 0 {
            line.push(o.delimiter);
        }
        if v.is_null() {
            line.push_str(&o.null);
            continue;
        }
        let text = io::output(v, ty, io);
        if o.csv {
            line.push_str(&csv_field(&text, o));
            continue;
        }
        for c in text.chars() {
            match c {
                '\\' => line.push_str("\\\\"),
                '\n' => line.push_str("\\n"),
                '\r' => line.push_str("\\r"),
                '\t' => line.push_str("\\t"),
                '\u{8}' => line.push_str("\\b"),
                '\u{c}' => line.push_str("\\f"),
                '\u{b}' => line.push_str("\\v"),
                c if c == o.delimiter => {
                    line.push('\\');
                    line.push(c);
                }
                c => line.push(c),
            }
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_options() -> CopyOptions {
        parse_options(&[]).expect("defaults")
    }

    #[test]
    fn text_fields_split_unescape_and_find_nulls() {
        let o = text_options();
        assert_eq!(
            split_text("1\t\\N\ta\\tb\t\\\\N\t", &o),
            vec![
                Some("1".into()),
                None,
                Some("a\tb".into()),
                Some("\\N".into()),
                Some("".into())
            ]
        );
        assert_eq!(split_text("\\101\\x42", &o), vec![Some("AB".into())]);
        // A backslash that ends the line, an escaped delimiter, an
        // escaped multi-byte character, and fields borrowed as they are.
        assert_eq!(
            split_text("a\\\tb\tc\\é\t\\", &o),
            vec![Some("a\tb".into()), Some("cé".into()), Some("".into())]
        );
        assert!(matches!(
            split_text("plain\tx", &o)[0],
            Some(Cow::Borrowed("plain"))
        ));
        assert_eq!(split_text("", &o), vec![Some("".into())]);
    }

    #[test]
    fn records_ignore_message_boundaries() {
        let o = text_options();
        let mut r = LineReader::default();
        r.push(b"1\t2\n3");
        assert_eq!(r.next_record(&o).unwrap(), Some("1\t2".into()));
        assert_eq!(r.next_record(&o).unwrap(), None);
        r.push(b"\t4\r\n\\.\n");
        assert_eq!(r.next_record(&o).unwrap(), Some("3\t4".into()));
        assert_eq!(r.next_record(&o).unwrap(), Some("\\.".into()));
    }

    #[test]
    fn csv_quotes_and_nulls() {
        let mut o = text_options();
        o.csv = true;
        o.delimiter = ',';
        o.null = String::new();
        assert_eq!(
            split_csv("1,,\"\",\"a,\"\"b\"\"\"", &o),
            vec![
                Some("1".into()),
                None,
                Some("".into()),
                Some("a,\"b\"".into())
            ]
        );
        assert_eq!(csv_field("a,b", &o), "\"a,b\"");
        assert_eq!(csv_field("", &o), "\"\"");
    }

    #[test]
    fn text_output_escapes() {
        let o = text_options();
        let io = IoContext::default();
        let line = format_line(
            &[
                Datum::Text("a\tb\\c\nd".into()),
                Datum::Null,
                Datum::Int4(5),
            ],
            &[TypeOid::TEXT, TypeOid::TEXT, TypeOid::INT4],
            &o,
            &io,
        );
        assert_eq!(line, "a\\tb\\\\c\\nd\t\\N\t5\n");
    }
}
