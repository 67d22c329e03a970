//! The raw parser: query text in, PostgreSQL's raw parse trees out.
//!
//! We call libpg_query (PostgreSQL 15.1's own grammar, linked in by the
//! `pg_query` crate) through its C entry point `pg_query_parse_protobuf`
//! rather than through the crate's `parse()`, because the crate drops the
//! error's cursor position and clients need it: `selec 1` must answer
//! `42601 syntax error at or near "selec"` with `P` = 1.
//!
//! The whole query string of a simple-Query message is parsed at once, as
//! PostgreSQL does: a syntax error anywhere means no statement of the
//! message runs. The result is split into [`RawStatement`]s using each
//! `RawStmt`'s `stmt_location`/`stmt_len`.
//!
//! # Invariants
//!
//! 1. Every `location` field in the returned trees is a **byte** offset into
//!    the whole query string passed to [`parse`], or -1 when unknown.
//!    [`char_position`] turns it into the 1-based **character** position
//!    that an ErrorResponse's `P` field carries.
//! 2. The C result is freed exactly once, on every path, before returning.
//! 3. No tree deeper than [`MAX_NESTING`] levels is ever built. libpg_query
//!    and every pass after it (prost's decoder, analysis, folding,
//!    evaluation, even `Drop`) recurse once per level, using a few KB of
//!    stack each, and a stack overflow would take the backend down and the
//!    whole cluster through a crash cycle. PostgreSQL guards with
//!    `check_stack_depth`; we bound the nesting before parsing, from the
//!    token stream ([`check_nesting`]), and answer `54001 stack depth limit
//!    exceeded` as PostgreSQL does (PostgreSQL's own limit is higher, about
//!    5000 chained operators with the default 2MB `max_stack_depth`).

use pg_query::protobuf::{node, Node, ParseResult, ScanResult, Token};
use pgerror::{PgError, PgResult, SqlState};
use prost::Message;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

/// One statement of a query string, as the grammar produced it.
#[derive(Debug, Clone)]
pub struct RawStatement {
    /// The statement's raw parse tree (a `SelectStmt`, `VariableSetStmt`...).
    pub node: node::Node,
    /// Byte offset of the statement's first character in the query string.
    pub location: usize,
    /// Byte length of the statement's text (without the trailing `;`).
    pub len: usize,
}

impl RawStatement {
    /// The statement's own text, sliced from the whole query string.
    pub fn text<'q>(&self, query: &'q str) -> &'q str {
        query
            .get(self.location..self.location + self.len)
            .unwrap_or("")
    }
}

// The C interface of libpg_query (pg_query.h). Field order and types must
// match the header exactly.
#[repr(C)]
struct PgQueryError {
    message: *mut c_char,
    funcname: *mut c_char,
    filename: *mut c_char,
    lineno: c_int,
    cursorpos: c_int,
    context: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobuf {
    len: usize,
    data: *mut c_char,
}

#[repr(C)]
struct PgQueryProtobufParseResult {
    parse_tree: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

#[repr(C)]
struct PgQueryScanResult {
    pbuf: PgQueryProtobuf,
    stderr_buffer: *mut c_char,
    error: *mut PgQueryError,
}

extern "C" {
    fn pg_query_parse_protobuf(input: *const c_char) -> PgQueryProtobufParseResult;
    fn pg_query_free_protobuf_parse_result(result: PgQueryProtobufParseResult);
    fn pg_query_scan(input: *const c_char) -> PgQueryScanResult;
    fn pg_query_free_scan_result(result: PgQueryScanResult);
}

/// The deepest expression nesting accepted (see invariant 3). At a few KB
/// of stack per level across all passes, this stays well inside the 8MB
/// main-thread stack a backend runs on.
pub const MAX_NESTING: usize = 1000;

/// Parses a whole query string into its statements. An empty string (or one
/// holding only `;` and comments) gives an empty list. Strings that differ
/// only in integer literals from a recent one are served from the parse
/// cache (`parse_cache.rs`), with the same result.
pub fn parse(query: &str) -> PgResult<Vec<RawStatement>> {
    super::parse_cache::parse_cached(query, parse_uncached)
}

/// [`parse`] without the cache: always through libpg_query.
pub fn parse_uncached(query: &str) -> PgResult<Vec<RawStatement>> {
    let input = CString::new(query).map_err(|_| {
        PgError::new(SqlState::PROTOCOL_VIOLATION, "invalid message format")
            .with_detail("The query string contains a zero byte.")
    })?;
    // A tree has fewer levels than the string has tokens, so short strings
    // need no check.
    if query.len() > MAX_NESTING {
        check_nesting(&input)?;
    }
    // SAFETY: `input` is a valid NUL-terminated string that outlives the
    // call; libpg_query keeps no reference to it.
    let result = unsafe { pg_query_parse_protobuf(input.as_ptr()) };
    let decoded = decode_result(&result);
    // SAFETY: `result` came from pg_query_parse_protobuf and is freed once;
    // nothing borrowed from it outlives this point (decode_result copied).
    unsafe { pg_query_free_protobuf_parse_result(result) };
    let tree = decoded?;
    Ok(split_statements(tree, query.len()))
}

/// Copies the protobuf bytes (or the error) out of libpg_query's result.
fn decode_result(result: &PgQueryProtobufParseResult) -> PgResult<ParseResult> {
    if !result.error.is_null() {
        // SAFETY: a non-null error points to a PgQueryError whose message is
        // a NUL-terminated string, valid until the result is freed.
        let (message, cursorpos) = unsafe {
            let err = &*result.error;
            let message = if err.message.is_null() {
                String::from("syntax error")
            } else {
                CStr::from_ptr(err.message).to_string_lossy().into_owned()
            };
            (message, err.cursorpos)
        };
        let mut error = PgError::new(grammar_error_code(&message), message.clone());
        // The grammar's hints do not cross libpg_query's interface.
        if message == "subquery in FROM must have an alias" {
            error = error.with_hint("For example, FROM (SELECT ...) [AS] foo.");
        }
        if cursorpos > 0 {
            error = error.with_position(cursorpos as u32);
        }
        return Err(error);
    }
    let bytes: &[u8] = if result.parse_tree.data.is_null() || result.parse_tree.len == 0 {
        &[]
    } else {
        // SAFETY: on success `data` points to `len` bytes owned by the result.
        unsafe {
            std::slice::from_raw_parts(result.parse_tree.data as *const u8, result.parse_tree.len)
        }
    };
    ParseResult::decode(bytes).map_err(|e| {
        // Without prost's `no-recursion-limit` feature the decoder refuses
        // trees deeper than 100 protobuf levels (about 40 chained operators).
        if e.to_string().contains("recursion limit") {
            stack_depth_error()
        } else {
            PgError::internal(format!("could not decode parse tree: {e}"))
        }
    })
}

/// Rejects query strings whose parse trees could nest deeper than
/// [`MAX_NESTING`]. The estimate is an upper bound computed from the token
/// stream (the scanner does not recurse): each parenthesis, `CASE` or
/// `ARRAY[` opens a level; within a level, every operator or keyword adds
/// one, except where the grammar builds flat lists (after `,`, `AND`, `OR`,
/// `WHEN`, `THEN`, `ELSE`, `;`); `SELECT` counts three (a subquery adds
/// several nodes).
fn check_nesting(input: &CString) -> PgResult<()> {
    // SAFETY: `input` is a valid NUL-terminated string for the whole call.
    let result = unsafe { pg_query_scan(input.as_ptr()) };
    let tokens = if result.error.is_null() && !result.pbuf.data.is_null() {
        // SAFETY: on success `data` points to `len` bytes owned by the result.
        let bytes =
            unsafe { std::slice::from_raw_parts(result.pbuf.data as *const u8, result.pbuf.len) };
        ScanResult::decode(bytes).ok()
    } else {
        None
    };
    // SAFETY: freed once; `tokens` holds copies only.
    unsafe { pg_query_free_scan_result(result) };
    // A string the scanner rejects gets its error from the parser, which
    // stops at the first bad token.
    let Some(tokens) = tokens else { return Ok(()) };
    if estimated_nesting(tokens.tokens.iter().map(|t| t.token)) > MAX_NESTING {
        return Err(stack_depth_error());
    }
    Ok(())
}

fn stack_depth_error() -> PgError {
    PgError::new(
        SqlState::STATEMENT_TOO_COMPLEX,
        "stack depth limit exceeded",
    )
    .with_hint(
        "Increase the configuration parameter \"max_stack_depth\" (currently 2048kB), \
         after ensuring the platform's stack depth limit is adequate.",
    )
}

/// The upper bound of [`check_nesting`], from token kinds.
fn estimated_nesting(tokens: impl Iterator<Item = i32>) -> usize {
    // Per open level: operators seen since the level's last list separator.
    let mut levels: Vec<usize> = vec![0];
    let mut depth = 0usize; // levels.len() + sum(levels), kept incrementally
    let mut max = 0;
    for token in tokens {
        let t = Token::from_i32(token).unwrap_or(Token::Nul);
        match t {
            Token::Ascii40 | Token::Ascii91 | Token::Case => {
                levels.push(1);
                depth += 2;
            }
            Token::Ascii41 | Token::Ascii93 | Token::EndP => {
                if levels.len() > 1 {
                    depth -= 1 + levels.pop().unwrap_or(0);
                }
            }
            Token::Ascii44
            | Token::And
            | Token::Or
            | Token::When
            | Token::Then
            | Token::Else
            | Token::Ascii59 => {
                let last = levels
                    .last_mut()
                    .expect("the outermost level is never popped");
                depth -= *last;
                *last = 0;
            }
            Token::Ident
            | Token::Uident
            | Token::Fconst
            | Token::Sconst
            | Token::Usconst
            | Token::Bconst
            | Token::Xconst
            | Token::Iconst
            | Token::Param
            | Token::Ascii46 => {}
            _ => {
                let weight = if t == Token::Select { 3 } else { 1 };
                *levels
                    .last_mut()
                    .expect("the outermost level is never popped") += weight;
                depth += weight;
            }
        }
        max = max.max(depth);
    }
    max
}

/// libpg_query does not hand back the SQLSTATE; nearly every grammar error is
/// a syntax error, and the few that are not are recognised by their text.
fn grammar_error_code(message: &str) -> SqlState {
    if message.ends_with("is not supported") || message.contains("not implemented") {
        SqlState::FEATURE_NOT_SUPPORTED
    } else if message.starts_with("invalid Unicode") || message.starts_with("Unicode escape") {
        SqlState::SYNTAX_ERROR
    } else if message.starts_with("value too long") {
        SqlState::STRING_DATA_RIGHT_TRUNCATION
    } else {
        SqlState::SYNTAX_ERROR
    }
}

fn split_statements(tree: ParseResult, query_len: usize) -> Vec<RawStatement> {
    tree.stmts
        .into_iter()
        .filter_map(|raw| {
            let node = raw.stmt.and_then(|n| n.node)?;
            let location = raw.stmt_location.max(0) as usize;
            // stmt_len 0 means "to the end of the string".
            let len = if raw.stmt_len > 0 {
                raw.stmt_len as usize
            } else {
                query_len.saturating_sub(location)
            };
            Some(RawStatement {
                node,
                location,
                len,
            })
        })
        .collect()
}

/// The 1-based character position of a byte offset in `query`, as sent in an
/// ErrorResponse; `None` for an unknown (-1) location.
pub fn char_position(query: &str, byte_location: i32) -> Option<u32> {
    if byte_location < 0 {
        return None;
    }
    let mut end = (byte_location as usize).min(query.len());
    while !query.is_char_boundary(end) {
        end -= 1;
    }
    Some(query[..end].chars().count() as u32 + 1)
}

/// The inner node of a `Node` wrapper, if present.
pub fn inner(node: &Node) -> Option<&node::Node> {
    node.node.as_ref()
}

/// The string value of a `String` node (identifiers in name lists).
pub fn string_value(node: &Node) -> Option<&str> {
    match node.node.as_ref()? {
        node::Node::String(s) => Some(&s.sval),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_with_locations() {
        let q = "select 1; select 2 ;;select 3";
        let stmts = parse(q).unwrap();
        let texts: Vec<&str> = stmts.iter().map(|s| s.text(q)).collect();
        assert_eq!(texts, ["select 1", " select 2 ", "select 3"]);
    }

    #[test]
    fn empty_strings_have_no_statements() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse(" ; -- nothing\n;").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_carry_the_cursor_position() {
        let e = parse("selec 1").unwrap_err();
        assert_eq!(e.code, SqlState::SYNTAX_ERROR);
        assert_eq!(e.message, "syntax error at or near \"selec\"");
        assert_eq!(e.position, Some(1));
        let e = parse("select 1; select 'é', 'abc").unwrap_err();
        assert_eq!(e.message, "unterminated quoted string at or near \"'abc\"");
        assert_eq!(e.position, Some(23));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let chain = |n: usize| format!("select {}", vec!["1"; n].join("+"));
        assert!(
            parse(&chain(MAX_NESTING / 2)).is_ok(),
            "deep trees need prost's no-recursion-limit feature (backend/Cargo.toml)"
        );
        let e = parse(&chain(100_000)).unwrap_err();
        assert_eq!(e.code, SqlState::STATEMENT_TOO_COMPLEX);
        assert_eq!(e.message, "stack depth limit exceeded");
        // Long but flat lists are fine.
        let list = format!("select 1 where 1 in ({})", vec!["1"; 20_000].join(","));
        assert!(parse(&list).is_ok());
        let ors = format!("select {}", vec!["1 = 1"; 5_000].join(" or "));
        assert!(parse(&ors).is_ok());
        let case = format!(
            "select case {} end",
            vec!["when 1 = 1 then 2 + 2"; 5_000].join(" ")
        );
        assert!(parse(&case).is_ok());
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(char_position("select 'é' || x", 15), Some(15));
        assert_eq!(char_position("abc", -1), None);
        assert_eq!(char_position("abc", 0), Some(1));
    }
}
