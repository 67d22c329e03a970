//! The bodies of the extended query protocol's frontend messages (Parse,
//! Bind, Describe, Execute, Close), decoded, and the backend's replies that
//! carry data (ParameterDescription). The other replies (ParseComplete
//! `1`, BindComplete `2`, CloseComplete `3`, NoData `n`, PortalSuspended
//! `s`) have empty bodies.
//!
//! A malformed body is an ERROR (not FATAL) with PostgreSQL's pqformat.c
//! texts: `08P01 invalid string in message`, `insufficient data left in
//! message`, `invalid message format`; the backend then skips to Sync like
//! after any other error in these messages.

use super::messages::BodyReader;
use pgerror::{PgError, PgResult, SqlState};

/// Parse: a statement name (`""`: unnamed), its text, declared parameter
/// types (0: the server decides).
#[derive(Debug)]
pub struct ParseMessage<'a> {
    pub name: &'a str,
    pub query: &'a str,
    pub param_types: Vec<u32>,
}

/// Bind: a portal from a statement, with parameter values.
#[derive(Debug)]
pub struct BindMessage<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    /// None, one for all, or one per parameter; 0 text, 1 binary.
    pub param_formats: Vec<i16>,
    /// `None` is SQL NULL.
    pub params: Vec<Option<&'a [u8]>>,
    /// None, one for all, or one per result column.
    pub result_formats: Vec<i16>,
}

/// What Describe and Close name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

/// Execute: a portal and at most how many rows (0: all).
#[derive(Debug)]
pub struct ExecuteMessage<'a> {
    pub portal: &'a str,
    pub max_rows: i32,
}

/// One decoded message of the extended protocol.
#[derive(Debug)]
pub enum Message<'a> {
    Parse(ParseMessage<'a>),
    Bind(BindMessage<'a>),
    Describe(Target, &'a str),
    Execute(ExecuteMessage<'a>),
    Close(Target, &'a str),
}

/// Decodes a message of type `P`, `B`, `D`, `E` or `C`.
pub fn decode(typ: u8, body: &[u8]) -> PgResult<Message<'_>> {
    Ok(match typ {
        b'P' => Message::Parse(parse_message(body)?),
        b'B' => Message::Bind(bind_message(body)?),
        b'D' => {
            let (target, name) = target_message(body, "DESCRIBE")?;
            Message::Describe(target, name)
        }
        b'E' => Message::Execute(execute_message(body)?),
        b'C' => {
            let (target, name) = target_message(body, "CLOSE")?;
            Message::Close(target, name)
        }
        other => {
            return Err(PgError::internal(format!(
                "message type {other} is not part of the extended protocol"
            )))
        }
    })
}

fn protocol_error(message: &str) -> PgError {
    PgError::new(SqlState::PROTOCOL_VIOLATION, message)
}

fn insufficient() -> PgError {
    protocol_error("insufficient data left in message")
}

fn cstr<'a>(r: &mut BodyReader<'a>) -> PgResult<&'a str> {
    r.cstr()
        .ok_or_else(|| protocol_error("invalid string in message"))
}

fn i16_list(r: &mut BodyReader) -> PgResult<Vec<i16>> {
    let n = r.i16().ok_or_else(insufficient)?;
    (0..n.max(0))
        .map(|_| r.i16().ok_or_else(insufficient))
        .collect()
}

fn end(r: &BodyReader) -> PgResult<()> {
    if r.remaining() != 0 {
        return Err(protocol_error("invalid message format"));
    }
    Ok(())
}

pub fn parse_message(body: &[u8]) -> PgResult<ParseMessage<'_>> {
    let mut r = BodyReader::new(body);
    let name = cstr(&mut r)?;
    let query = cstr(&mut r)?;
    let n = r.i16().ok_or_else(insufficient)?;
    let param_types = (0..n.max(0))
        .map(|_| r.u32().ok_or_else(insufficient))
        .collect::<PgResult<_>>()?;
    end(&r)?;
    Ok(ParseMessage {
        name,
        query,
        param_types,
    })
}

pub fn bind_message(body: &[u8]) -> PgResult<BindMessage<'_>> {
    let mut r = BodyReader::new(body);
    let portal = cstr(&mut r)?;
    let statement = cstr(&mut r)?;
    let param_formats = i16_list(&mut r)?;
    let n = r.i16().ok_or_else(insufficient)?;
    let mut params = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n.max(0) {
        let len = r.i32().ok_or_else(insufficient)?;
        params.push(match len {
            -1 => None,
            l if l < 0 => return Err(insufficient()),
            l => Some(r.bytes(l as usize).ok_or_else(insufficient)?),
        });
    }
    let result_formats = i16_list(&mut r)?;
    end(&r)?;
    Ok(BindMessage {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

/// Describe and Close: `S` or `P`, then a name. `what` names the message in
/// the error for another subtype (`DESCRIBE`, `CLOSE`).
pub fn target_message<'a>(body: &'a [u8], what: &str) -> PgResult<(Target, &'a str)> {
    let mut r = BodyReader::new(body);
    let kind = r.u8().ok_or_else(insufficient)?;
    let name = cstr(&mut r)?;
    end(&r)?;
    match kind {
        b'S' => Ok((Target::Statement, name)),
        b'P' => Ok((Target::Portal, name)),
        other => Err(protocol_error(&format!(
            "invalid {what} message subtype {other}"
        ))),
    }
}

pub fn execute_message(body: &[u8]) -> PgResult<ExecuteMessage<'_>> {
    let mut r = BodyReader::new(body);
    let portal = cstr(&mut r)?;
    let max_rows = r.i32().ok_or_else(insufficient)?;
    end(&r)?;
    Ok(ExecuteMessage { portal, max_rows })
}

/// ParameterDescription (`t`): the statement's parameter type OIDs.
pub fn parameter_description(types: &[u32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + 4 * types.len());
    b.extend_from_slice(&(types.len() as i16).to_be_bytes());
    for t in types {
        b.extend_from_slice(&t.to_be_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind_body() -> Vec<u8> {
        let mut b = b"p\0s\0".to_vec();
        b.extend_from_slice(&1i16.to_be_bytes()); // one format for all
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&2i16.to_be_bytes()); // two values
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(b"42");
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b
    }

    #[test]
    fn bind_carries_values_and_nulls() {
        let body = bind_body();
        let m = bind_message(&body).unwrap();
        assert_eq!((m.portal, m.statement), ("p", "s"));
        assert_eq!(m.param_formats, vec![0]);
        assert_eq!(m.params, vec![Some(&b"42"[..]), None]);
        assert_eq!(m.result_formats, vec![0]);
    }

    #[test]
    fn short_or_long_bodies_are_errors_not_panics() {
        let body = bind_body();
        for cut in 0..body.len() {
            assert!(bind_message(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = body.clone();
        long.push(0);
        assert_eq!(
            bind_message(&long).unwrap_err().message,
            "invalid message format"
        );
    }

    #[test]
    fn parse_describe_execute() {
        let mut b = b"s1\0select $1\0".to_vec();
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&23u32.to_be_bytes());
        let m = parse_message(&b).unwrap();
        assert_eq!(
            (m.name, m.query, m.param_types),
            ("s1", "select $1", vec![23])
        );
        assert_eq!(
            target_message(b"Pcur\0", "DESCRIBE").unwrap(),
            (Target::Portal, "cur")
        );
        assert_eq!(
            target_message(b"Xcur\0", "CLOSE").unwrap_err().message,
            "invalid CLOSE message subtype 88"
        );
        let mut e = b"\0".to_vec();
        e.extend_from_slice(&5i32.to_be_bytes());
        assert_eq!(execute_message(&e).unwrap().max_rows, 5);
        assert_eq!(
            parameter_description(&[23, 25]),
            vec![0, 2, 0, 0, 0, 23, 0, 0, 0, 25]
        );
    }
}
