//! Text forms settings arrive in from clients: the startup packet's
//! `options` string, the argument list of a `SET` statement, and identifier
//! lists inside a value (`search_path`).
//!
//! * [`parse_options_string`] splits `options` as libpq and PostgreSQL do
//!   (white space separates, a backslash takes the next character
//!   literally) and reads it as PostgreSQL reads a backend's switches:
//!   `-c name=value`, `-cname=value`, `--name=value`, plus the old one-letter
//!   switches that stand for a setting (`-B 100` is `shared_buffers=100`).
//!   Dashes in names become underscores.
//! * [`flatten_set_args`] joins `SET x = a, b` into the one string the
//!   setting parses, quoting identifiers for list settings like
//!   `search_path`, and refuses lists for the others.
//! * [`split_identifier_list`] and [`quote_identifier`] are PostgreSQL's
//!   `SplitIdentifierString` and `quote_identifier`.

use crate::table::{lookup, LIST_INPUT, LIST_QUOTE};
use pgerror::{PgError, SqlState};

/// Splits a comma-separated list of identifiers: unquoted names are
/// lower-cased when `downcase`, `"quoted"` names keep their case and may
/// contain `""`; names are truncated to 63 bytes. None on bad syntax (an
/// empty element, an unterminated quote, a missing comma).
pub fn split_identifier_list(text: &str, downcase: bool) -> Option<Vec<String>> {
    let s = text.as_bytes();
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\x0b');
    let mut i = 0;
    let mut out = Vec::new();
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    if i == s.len() {
        return Some(out);
    }
    loop {
        let mut name = Vec::new();
        if s[i] == b'"' {
            i += 1;
            loop {
                match s.get(i) {
                    None => return None,
                    Some(b'"') if s.get(i + 1) == Some(&b'"') => {
                        name.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        name.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            let start = i;
            while i < s.len() && s[i] != b',' && !is_space(s[i]) {
                i += 1;
            }
            if i == start {
                return None;
            }
            name.extend_from_slice(&s[start..i]);
            if downcase {
                name.make_ascii_lowercase();
            }
        }
        let mut name = String::from_utf8(name).ok()?;
        if name.len() > 63 {
            let mut cut = 63;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        out.push(name);
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        match s.get(i) {
            None => return Some(out),
            Some(b',') => {
                i += 1;
                while i < s.len() && is_space(s[i]) {
                    i += 1;
                }
                if i == s.len() {
                    return None;
                }
            }
            Some(_) => return None,
        }
    }
}

/// Keywords that `quote_identifier` must quote (all but the unreserved ones).
const NON_UNRESERVED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

/// Double-quotes `ident` unless it is a lower-case simple name that is not a
/// reserved word.
pub fn quote_identifier(ident: &str) -> String {
    let safe = ident
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
        && ident
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !NON_UNRESERVED_KEYWORDS.contains(&ident);
    if safe {
        ident.to_string()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

/// One argument of `SET name = a, b, ...` as the parser saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum SetArg {
    Int(i64),
    /// A numeric literal, as written.
    Float(String),
    /// A string literal or an identifier.
    Str(String),
}

/// PostgreSQL's `flatten_set_variable_args`: the text a `SET` statement's
/// arguments stand for.
pub fn flatten_set_args(name: &str, args: &[SetArg]) -> Result<String, PgError> {
    let flags = lookup(name).map_or(0, |d| d.flags);
    if args.len() > 1 && flags & LIST_INPUT == 0 {
        return Err(PgError::new(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("SET {name} takes only one argument"),
        ));
    }
    let parts: Vec<String> = args
        .iter()
        .map(|arg| match arg {
            SetArg::Int(i) => i.to_string(),
            SetArg::Float(f) => f.clone(),
            SetArg::Str(s) if flags & LIST_QUOTE != 0 => quote_identifier(s),
            SetArg::Str(s) => s.clone(),
        })
        .collect();
    Ok(parts.join(", "))
}

/// libpq's and PostgreSQL's `pg_split_opts`: white space separates words, a
/// backslash makes the next character part of the word.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            if c.is_ascii_whitespace() {
                break;
            }
            if c == '\\' {
                if let Some(escaped) = chars.next() {
                    word.push(escaped);
                }
                continue;
            }
            word.push(c);
        }
        words.push(word);
    }
}

fn syntax_error(message: String) -> PgError {
    PgError::fatal(SqlState::SYNTAX_ERROR, message)
}

fn invalid_argument(arg: &str) -> PgError {
    syntax_error(format!(
        "invalid command-line argument for server process: {arg}"
    ))
    .with_hint("Try \"postgres --help\" for more information.")
}

/// `name=value` of `-c` or `--`; `switch` is how the error names it.
fn long_option(text: &str, switch: &str) -> Result<(String, String), PgError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| syntax_error(format!("{switch}{text} requires a value")))?;
    Ok((name.replace('-', "_"), value.to_string()))
}

/// Reads the startup packet's `options` into (setting, value) pairs, in
/// order. Errors are FATAL, as the connection cannot go on.
pub fn parse_options_string(s: &str) -> Result<Vec<(String, String)>, PgError> {
    let words = split_words(s);
    let mut out = Vec::new();
    let mut i = 0;
    let set = |out: &mut Vec<(String, String)>, name: &str, value: &str| {
        out.push((name.to_string(), value.to_string()))
    };
    while i < words.len() {
        let word = &words[i];
        i += 1;
        let Some(switches) = word.strip_prefix('-') else {
            return Err(invalid_argument(word));
        };
        if let Some(long) = switches.strip_prefix('-') {
            out.push(long_option(long, "--")?);
            continue;
        }
        if switches.is_empty() {
            return Err(invalid_argument(word));
        }
        for (pos, letter) in switches.char_indices() {
            let takes_arg = "BcCDdfhkNprStvW".contains(letter);
            let arg = if takes_arg {
                let attached = &switches[pos + letter.len_utf8()..];
                if !attached.is_empty() {
                    Some(attached.to_string())
                } else if i < words.len() {
                    i += 1;
                    Some(words[i - 1].clone())
                } else {
                    return Err(invalid_argument(&format!("-{letter}")));
                }
            } else {
                None
            };
            let a = arg.as_deref().unwrap_or("");
            match letter {
                'c' => out.push(long_option(a, "-c ")?),
                'B' => set(&mut out, "shared_buffers", a),
                'd' => debug_options(&mut out, a),
                'e' => set(&mut out, "DateStyle", "euro"),
                'F' => set(&mut out, "fsync", "false"),
                'f' => {
                    let name = match a {
                        "s" => "enable_seqscan",
                        "i" => "enable_indexscan",
                        "o" => "enable_indexonlyscan",
                        "b" => "enable_bitmapscan",
                        "t" => "enable_tidscan",
                        "n" => "enable_nestloop",
                        "m" => "enable_mergejoin",
                        "h" => "enable_hashjoin",
                        _ => return Err(invalid_argument(&format!("-f {a}"))),
                    };
                    set(&mut out, name, "false");
                }
                'h' => set(&mut out, "listen_addresses", a),
                'i' => set(&mut out, "listen_addresses", "*"),
                'k' => set(&mut out, "unix_socket_directories", a),
                'l' => set(&mut out, "ssl", "true"),
                'N' => set(&mut out, "max_connections", a),
                'O' => set(&mut out, "allow_system_table_mods", "true"),
                'P' => set(&mut out, "ignore_system_indexes", "true"),
                'p' => set(&mut out, "port", a),
                'S' => set(&mut out, "work_mem", a),
                's' => set(&mut out, "log_statement_stats", "true"),
                't' => {
                    let name = match a {
                        "pa" => "log_parser_stats",
                        "pl" => "log_planner_stats",
                        "ex" => "log_executor_stats",
                        _ => return Err(invalid_argument(&format!("-t {a}"))),
                    };
                    set(&mut out, name, "true");
                }
                'W' => set(&mut out, "post_auth_delay", a),
                // Switches that only mean something to a postmaster or a
                // single-user backend are accepted and ignored, as
                // PostgreSQL does for a normal backend.
                'b' | 'C' | 'D' | 'E' | 'j' | 'n' | 'r' | 'T' | 'v' => {}
                _ => return Err(invalid_argument(&format!("-{letter}"))),
            }
            if takes_arg {
                break;
            }
        }
    }
    Ok(out)
}

/// `-d N`: server log level and statement logging, as PostgreSQL maps it.
fn debug_options(out: &mut Vec<(String, String)>, level: &str) {
    let level: i64 = level.trim().parse().unwrap_or(0);
    let mut set = |name: &str, value: String| out.push((name.to_string(), value));
    if level > 0 {
        set("log_min_messages", format!("debug{level}"));
    } else {
        set("log_min_messages", "notice".to_string());
    }
    if level >= 2 {
        set("log_statement", "all".to_string());
    }
    if level >= 3 {
        set("debug_print_parse", "on".to_string());
    }
    if level >= 4 {
        set("debug_print_plan", "on".to_string());
    }
    if level >= 5 {
        set("debug_print_rewritten", "on".to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn identifier_lists_split_like_postgres() {
        assert_eq!(
            split_identifier_list("a, B ,\"C d\"", true).unwrap(),
            ["a", "b", "C d"]
        );
        assert_eq!(
            split_identifier_list("\"$user\", public", true).unwrap(),
            ["$user", "public"]
        );
        assert_eq!(
            split_identifier_list("  ", true).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(split_identifier_list("\"x\"\"y\"", true).unwrap(), ["x\"y"]);
        assert!(split_identifier_list("a,,b", true).is_none());
        assert!(split_identifier_list("a b", true).is_none());
        assert!(split_identifier_list("\"unterminated", true).is_none());
        assert!(split_identifier_list("a,", true).is_none());
    }

    #[test]
    fn identifiers_are_quoted_when_needed() {
        // As PG15 shows `SET search_path = 'user', 'Ab', 'a b', 'ok_1', '$user', 'x"y', '1a', 'é'`.
        let shown: Vec<String> = ["user", "Ab", "a b", "ok_1", "$user", "x\"y", "1a", "é"]
            .iter()
            .map(|s| quote_identifier(s))
            .collect();
        assert_eq!(
            shown.join(", "),
            r#""user", "Ab", "a b", ok_1, "$user", "x""y", "1a", "é""#
        );
        assert_eq!(quote_identifier("public"), "public");
    }

    #[test]
    fn set_arguments_flatten_per_setting() {
        let strs = |v: &[&str]| {
            v.iter()
                .map(|s| SetArg::Str(s.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            flatten_set_args("search_path", &strs(&["a,b"])).unwrap(),
            "\"a,b\""
        );
        assert_eq!(
            flatten_set_args("search_path", &strs(&["a", "B c"])).unwrap(),
            "a, \"B c\""
        );
        assert_eq!(
            flatten_set_args("DateStyle", &strs(&["iso", "dmy"])).unwrap(),
            "iso, dmy"
        );
        assert_eq!(
            flatten_set_args("local_preload_libraries", &strs(&["A", "b"])).unwrap(),
            "\"A\", b"
        );
        assert_eq!(
            flatten_set_args("work_mem", &[SetArg::Float("1.5".into())]).unwrap(),
            "1.5"
        );
        assert_eq!(
            flatten_set_args("work_mem", &[SetArg::Int(64)]).unwrap(),
            "64"
        );
        let e = flatten_set_args("application_name", &strs(&["a", "b"])).unwrap_err();
        assert_eq!(e.code, SqlState::INVALID_PARAMETER_VALUE);
        assert_eq!(e.message, "SET application_name takes only one argument");
        let e = flatten_set_args("foo.baz", &strs(&["a", "b"])).unwrap_err();
        assert_eq!(e.message, "SET foo.baz takes only one argument");
    }

    #[test]
    fn options_strings_read_like_a_backends_switches() {
        assert_eq!(
            parse_options_string("-c work_mem=1MB  -csearch_path=a\\,b --search-path=x").unwrap(),
            pairs(&[
                ("work_mem", "1MB"),
                ("search_path", "a,b"),
                ("search_path", "x")
            ])
        );
        assert_eq!(
            parse_options_string("-c search_path=a\\ b").unwrap(),
            pairs(&[("search_path", "a b")])
        );
        assert_eq!(
            parse_options_string("-c search_path=a\\\\b").unwrap(),
            pairs(&[("search_path", "a\\b")])
        );
        assert_eq!(
            parse_options_string("  -c   x.y=r  ").unwrap(),
            pairs(&[("x.y", "r")])
        );
        assert_eq!(
            parse_options_string("-c work-mem=4MB").unwrap(),
            pairs(&[("work_mem", "4MB")])
        );
        assert_eq!(parse_options_string("-c =5").unwrap(), pairs(&[("", "5")]));
        assert_eq!(
            parse_options_string("-B 100 -e -F").unwrap(),
            pairs(&[
                ("shared_buffers", "100"),
                ("DateStyle", "euro"),
                ("fsync", "false")
            ])
        );
        assert_eq!(parse_options_string("").unwrap(), pairs(&[]));

        let e = parse_options_string("-c work_mem").unwrap_err();
        assert_eq!(e.message, "-c work_mem requires a value");
        let e = parse_options_string("--search_path").unwrap_err();
        assert_eq!(e.message, "--search_path requires a value");
        let e = parse_options_string("-c").unwrap_err();
        assert_eq!(
            e.message,
            "invalid command-line argument for server process: -c"
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("Try \"postgres --help\" for more information.")
        );
        let e = parse_options_string("-c work_mem=1MB extra").unwrap_err();
        assert_eq!(
            e.message,
            "invalid command-line argument for server process: extra"
        );
        let e = parse_options_string("-X").unwrap_err();
        assert_eq!(
            e.message,
            "invalid command-line argument for server process: -X"
        );
        assert_eq!(e.severity, pgerror::Severity::Fatal);
    }
}
