#![doc = include_str!("../README.md")]

// Errors that can reach a client: a severity, a SQLSTATE and PostgreSQL's
// message text, plus the optional fields of an ErrorResponse.
//
// Every library that can fail in a way a client sees (`conf` for `SET`,
// the backend's SQL layers, later `storage`) returns [`PgError`], so the
// backend's protocol layer can turn any of them into an ErrorResponse
// without translation. The codes live in one table, [`SqlState`]'s
// constants, named as in PostgreSQL's `errcodes.txt`.
//
// Severity carries PostgreSQL's meaning for the process: `Error` aborts the
// current transaction, `Fatal` ends the session, `Panic` takes the cluster
// through the crash cycle.

use std::fmt;

/// A five-character SQLSTATE code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState(pub [u8; 5]);

impl SqlState {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("SQLSTATE constants are ASCII")
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({})", self.as_str())
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! sqlstates {
    ($($name:ident = $code:literal;)*) => {
        impl SqlState {
            $(pub const $name: SqlState = SqlState(*$code);)*
        }
    };
}

// The subset of PostgreSQL's errcodes.txt the server raises; add codes here,
// under PostgreSQL's names, as new errors appear.
sqlstates! {
    SUCCESSFUL_COMPLETION = b"00000";
    WARNING = b"01000";
    NO_DATA = b"02000";
    CONNECTION_EXCEPTION = b"08000";
    CONNECTION_FAILURE = b"08006";
    PROTOCOL_VIOLATION = b"08P01";
    FEATURE_NOT_SUPPORTED = b"0A000";
    INVALID_TRANSACTION_INITIATION = b"0B000";
    CARDINALITY_VIOLATION = b"21000";
    DATA_EXCEPTION = b"22000";
    STRING_DATA_RIGHT_TRUNCATION = b"22001";
    NUMERIC_VALUE_OUT_OF_RANGE = b"22003";
    NULL_VALUE_NOT_ALLOWED = b"22004";
    INVALID_DATETIME_FORMAT = b"22007";
    DATETIME_FIELD_OVERFLOW = b"22008";
    DIVISION_BY_ZERO = b"22012";
    INVALID_PARAMETER_VALUE = b"22023";
    INVALID_TEXT_REPRESENTATION = b"22P02";
    INVALID_BINARY_REPRESENTATION = b"22P03";
    CHARACTER_NOT_IN_REPERTOIRE = b"22021";
    INTEGRITY_CONSTRAINT_VIOLATION = b"23000";
    NOT_NULL_VIOLATION = b"23502";
    FOREIGN_KEY_VIOLATION = b"23503";
    UNIQUE_VIOLATION = b"23505";
    CHECK_VIOLATION = b"23514";
    INVALID_CURSOR_STATE = b"24000";
    TRIGGERED_DATA_CHANGE_VIOLATION = b"27000";
    INVALID_TRANSACTION_STATE = b"25000";
    ACTIVE_SQL_TRANSACTION = b"25001";
    NO_ACTIVE_SQL_TRANSACTION = b"25P01";
    IN_FAILED_SQL_TRANSACTION = b"25P02";
    READ_ONLY_SQL_TRANSACTION = b"25006";
    INVALID_AUTHORIZATION_SPECIFICATION = b"28000";
    INVALID_PASSWORD = b"28P01";
    INVALID_SQL_STATEMENT_NAME = b"26000";
    INVALID_CATALOG_NAME = b"3D000";
    INVALID_CURSOR_NAME = b"34000";
    SERIALIZATION_FAILURE = b"40001";
    DEADLOCK_DETECTED = b"40P01";
    SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION = b"42000";
    SYNTAX_ERROR = b"42601";
    INSUFFICIENT_PRIVILEGE = b"42501";
    CANNOT_COERCE = b"42846";
    GROUPING_ERROR = b"42803";
    WRONG_OBJECT_TYPE = b"42809";
    INVALID_FOREIGN_KEY = b"42830";
    UNDEFINED_COLUMN = b"42703";
    UNDEFINED_FUNCTION = b"42883";
    UNDEFINED_TABLE = b"42P01";
    UNDEFINED_PARAMETER = b"42P02";
    DUPLICATE_CURSOR = b"42P03";
    AMBIGUOUS_PARAMETER = b"42P08";
    UNDEFINED_OBJECT = b"42704";
    DUPLICATE_COLUMN = b"42701";
    DUPLICATE_PREPARED_STATEMENT = b"42P05";
    DUPLICATE_TABLE = b"42P07";
    DUPLICATE_OBJECT = b"42710";
    AMBIGUOUS_COLUMN = b"42702";
    AMBIGUOUS_FUNCTION = b"42725";
    DATATYPE_MISMATCH = b"42804";
    INDETERMINATE_DATATYPE = b"42P18";
    UNDEFINED_DATABASE = b"3D000";
    INVALID_NAME = b"42602";
    INSUFFICIENT_RESOURCES = b"53000";
    DISK_FULL = b"53100";
    TOO_MANY_CONNECTIONS = b"53300";
    OUT_OF_MEMORY = b"53200";
    PROGRAM_LIMIT_EXCEEDED = b"54000";
    STATEMENT_TOO_COMPLEX = b"54001";
    TOO_MANY_COLUMNS = b"54011";
    OBJECT_NOT_IN_PREREQUISITE_STATE = b"55000";
    OBJECT_IN_USE = b"55006";
    CANT_CHANGE_RUNTIME_PARAM = b"55P02";
    LOCK_NOT_AVAILABLE = b"55P03";
    QUERY_CANCELED = b"57014";
    ADMIN_SHUTDOWN = b"57P01";
    CRASH_SHUTDOWN = b"57P02";
    CANNOT_CONNECT_NOW = b"57P03";
    IDLE_IN_TRANSACTION_SESSION_TIMEOUT = b"25P03";
    IDLE_SESSION_TIMEOUT = b"57P05";
    SYSTEM_ERROR = b"58000";
    IO_ERROR = b"58030";
    UNDEFINED_FILE = b"58P01";
    DUPLICATE_FILE = b"58P02";
    CONFIG_FILE_ERROR = b"F0000";
    INTERNAL_ERROR = b"XX000";
    DATA_CORRUPTED = b"XX001";
}

/// PostgreSQL's message severities, as sent in the `S`/`V` fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Debug,
    Log,
    Info,
    Notice,
    Warning,
    /// Aborts the current transaction; the session goes on.
    Error,
    /// Ends the session.
    Fatal,
    /// Takes the whole cluster through the crash cycle.
    Panic,
}

impl Severity {
    /// The text PostgreSQL puts in the `S` and `V` fields.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Debug => "DEBUG",
            Severity::Log => "LOG",
            Severity::Info => "INFO",
            Severity::Notice => "NOTICE",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
        }
    }
}

/// An error or notice as a client will see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgError {
    pub severity: Severity,
    pub code: SqlState,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// 1-based character (not byte) offset into the query string, as in the
    /// ErrorResponse `P` field.
    pub position: Option<u32>,
    /// The object the error is about: schema (`s`), table (`t`) and column
    /// (`c`) names, as PostgreSQL reports for constraint violations.
    pub object: Option<Box<ErrorObject>>,
    /// Where it happened (the `W` field, psql's CONTEXT line), e.g.
    /// `COPY t, line 3, column a: "x"`.
    pub context: Option<String>,
}

/// The schema, table and column an error names.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ErrorObject {
    pub schema: String,
    pub table: String,
    pub column: Option<String>,
    /// The constraint (`n`), for constraint violations.
    pub constraint: Option<String>,
}

impl PgError {
    /// An ERROR with the given code and message.
    pub fn new(code: SqlState, message: impl Into<String>) -> PgError {
        PgError {
            severity: Severity::Error,
            code,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
            object: None,
            context: None,
        }
    }

    /// A FATAL error: the session ends after it is sent.
    pub fn fatal(code: SqlState, message: impl Into<String>) -> PgError {
        PgError {
            severity: Severity::Fatal,
            ..PgError::new(code, message)
        }
    }

    /// A notice of any non-error severity (NOTICE, WARNING, ...).
    pub fn notice(severity: Severity, code: SqlState, message: impl Into<String>) -> PgError {
        PgError {
            severity,
            ..PgError::new(code, message)
        }
    }

    /// `0A000 feature not supported`: the honest answer for what is not built yet.
    pub fn unsupported(message: impl Into<String>) -> PgError {
        PgError::new(SqlState::FEATURE_NOT_SUPPORTED, message)
    }

    /// `XX000`: a broken invariant that must not take the process down.
    pub fn internal(message: impl Into<String>) -> PgError {
        PgError::new(SqlState::INTERNAL_ERROR, message)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> PgError {
        self.detail = Some(detail.into());
        self
    }

    /// Names the schema, table and (optionally) column the error is about.
    pub fn with_object(mut self, object: ErrorObject) -> PgError {
        self.object = Some(Box::new(object));
        self
    }

    pub fn with_context(mut self, context: impl Into<String>) -> PgError {
        self.context = Some(context.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> PgError {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_position(mut self, position: u32) -> PgError {
        self.position = Some(position);
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> PgError {
        self.severity = severity;
        self
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:  {}", self.severity.as_str(), self.message)
    }
}

impl std::error::Error for PgError {}

pub type PgResult<T> = Result<T, PgError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_render_as_five_characters() {
        assert_eq!(SqlState::TOO_MANY_CONNECTIONS.as_str(), "53300");
        assert_eq!(SqlState::QUERY_CANCELED.to_string(), "57014");
    }

    #[test]
    fn builders_set_fields() {
        let e = PgError::new(SqlState::SYNTAX_ERROR, "syntax error at or near \"selec\"")
            .with_position(1);
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.position, Some(1));
        assert_eq!(e.to_string(), "ERROR:  syntax error at or near \"selec\"");
    }
}
