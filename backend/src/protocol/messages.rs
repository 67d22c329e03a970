//! Encoders for backend messages and a small reader for frontend message
//! bodies. Names follow the protocol documentation's message names.

use crate::dest::FieldDesc;
use pgerror::PgError;

/// Appends a NUL-terminated string.
pub fn put_cstr(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

pub fn authentication_ok() -> Vec<u8> {
    0u32.to_be_bytes().to_vec()
}

pub fn parameter_status(name: &str, value: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(name.len() + value.len() + 2);
    put_cstr(&mut b, name);
    put_cstr(&mut b, value);
    b
}

pub fn backend_key_data(pid: i32, key: u32) -> Vec<u8> {
    let mut b = pid.to_be_bytes().to_vec();
    b.extend_from_slice(&key.to_be_bytes());
    b
}

/// ErrorResponse ('E') or NoticeResponse ('N') body.
pub fn error_fields(e: &PgError) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + e.message.len());
    let sev = e.severity.as_str();
    b.push(b'S');
    put_cstr(&mut b, sev);
    b.push(b'V');
    put_cstr(&mut b, sev);
    b.push(b'C');
    put_cstr(&mut b, e.code.as_str());
    b.push(b'M');
    put_cstr(&mut b, &e.message);
    if let Some(d) = &e.detail {
        b.push(b'D');
        put_cstr(&mut b, d);
    }
    if let Some(h) = &e.hint {
        b.push(b'H');
        put_cstr(&mut b, h);
    }
    if let Some(p) = e.position {
        b.push(b'P');
        put_cstr(&mut b, &p.to_string());
    }
    if let Some(w) = &e.context {
        b.push(b'W');
        put_cstr(&mut b, w);
    }
    if let Some(o) = &e.object {
        b.push(b's');
        put_cstr(&mut b, &o.schema);
        b.push(b't');
        put_cstr(&mut b, &o.table);
        if let Some(c) = &o.column {
            b.push(b'c');
            put_cstr(&mut b, c);
        }
        if let Some(n) = &o.constraint {
            b.push(b'n');
            put_cstr(&mut b, n);
        }
    }
    b.push(0);
    b
}

/// CopyInResponse / CopyOutResponse body: text format, `ncols` text
/// columns.
pub fn copy_response(ncols: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(3 + 2 * ncols);
    b.push(0);
    b.extend_from_slice(&(ncols as i16).to_be_bytes());
    for _ in 0..ncols {
        b.extend_from_slice(&0i16.to_be_bytes());
    }
    b
}

pub fn row_description(fields: &[FieldDesc]) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + fields.len() * 32);
    b.extend_from_slice(&(fields.len() as i16).to_be_bytes());
    for f in fields {
        put_cstr(&mut b, &f.name);
        b.extend_from_slice(&f.table_oid.to_be_bytes());
        b.extend_from_slice(&f.column_attr.to_be_bytes());
        b.extend_from_slice(&f.type_oid.to_be_bytes());
        b.extend_from_slice(&f.type_len.to_be_bytes());
        b.extend_from_slice(&f.type_mod.to_be_bytes());
        b.extend_from_slice(&f.format.to_be_bytes());
    }
    b
}

pub fn data_row(values: &[Option<String>]) -> Vec<u8> {
    let mut b = Vec::with_capacity(2 + values.len() * 8);
    b.extend_from_slice(&(values.len() as i16).to_be_bytes());
    for v in values {
        match v {
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(s) => {
                b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                b.extend_from_slice(s.as_bytes());
            }
        }
    }
    b
}

pub fn command_complete(tag: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(tag.len() + 1);
    put_cstr(&mut b, tag);
    b
}

/// NegotiateProtocolVersion: the newest version we support (as PostgreSQL
/// 15 sends it, the whole `3 << 16`, not just the minor number), and the protocol
/// options (`_pq_.*`) we did not recognise.
pub fn negotiate_protocol_version(newest_version: u32, unrecognized: &[String]) -> Vec<u8> {
    let mut b = newest_version.to_be_bytes().to_vec();
    b.extend_from_slice(&(unrecognized.len() as u32).to_be_bytes());
    for o in unrecognized {
        put_cstr(&mut b, o);
    }
    b
}

/// Reads fields out of a frontend message body.
pub struct BodyReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BodyReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BodyReader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A NUL-terminated string, which must be valid UTF-8.
    pub fn cstr(&mut self) -> Option<&'a str> {
        let rest = &self.buf[self.pos..];
        let end = rest.iter().position(|&b| b == 0)?;
        let s = std::str::from_utf8(&rest[..end]).ok()?;
        self.pos += end + 1;
        Some(s)
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.array()?))
    }

    pub fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.array()?))
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }
}

/// The query string of a Query message, validated as PostgreSQL does:
/// a NUL-terminated string (08P01 `invalid string in message`), nothing
/// after it (08P01 `invalid message format`), valid UTF-8 (22021
/// `invalid byte sequence for encoding "UTF8": 0x..`). Each is an ERROR;
/// the session goes on.
pub fn query_string(body: &[u8]) -> Result<String, PgError> {
    use pgerror::SqlState;
    let Some(nul) = body.iter().position(|&b| b == 0) else {
        return Err(PgError::new(
            SqlState::PROTOCOL_VIOLATION,
            "invalid string in message",
        ));
    };
    if nul + 1 != body.len() {
        return Err(PgError::new(
            SqlState::PROTOCOL_VIOLATION,
            "invalid message format",
        ));
    }
    match std::str::from_utf8(&body[..nul]) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let bad = &body[e.valid_up_to()..nul];
            let want = match bad[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            let shown: Vec<String> = bad
                .iter()
                .take(want)
                .map(|b| format!("0x{b:02x}"))
                .collect();
            Err(PgError::new(
                SqlState::CHARACTER_NOT_IN_REPERTOIRE,
                format!(
                    "invalid byte sequence for encoding \"UTF8\": {}",
                    shown.join(" ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgerror::SqlState;

    #[test]
    fn error_response_carries_code_message_and_position() {
        let e = PgError::new(SqlState::SYNTAX_ERROR, "syntax error at or near \"selec\"")
            .with_position(1);
        let b = error_fields(&e);
        let text = String::from_utf8_lossy(&b);
        assert!(text.starts_with("SERROR\0VERROR\0C42601\0Msyntax error"));
        assert!(text.ends_with("P1\0\0"));
    }

    #[test]
    fn data_row_encodes_null_as_minus_one() {
        let b = data_row(&[Some("1".into()), None]);
        assert_eq!(b, vec![0, 2, 0, 0, 0, 1, b'1', 255, 255, 255, 255]);
    }

    #[test]
    fn query_strings_are_checked_like_postgres() {
        assert_eq!(query_string(b"select 1\0").unwrap(), "select 1");
        assert_eq!(
            query_string(b"select 1").unwrap_err().message,
            "invalid string in message"
        );
        assert_eq!(
            query_string(b"select 1\0x").unwrap_err().message,
            "invalid message format"
        );
        let e = query_string(b"select '\xc3\x28'\0").unwrap_err();
        assert_eq!(e.code.as_str(), "22021");
        assert_eq!(
            e.message,
            "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28"
        );
    }

    #[test]
    fn body_reader_rejects_unterminated_strings() {
        let mut r = BodyReader::new(b"user\0bob");
        assert_eq!(r.cstr(), Some("user"));
        assert_eq!(r.cstr(), None);
    }
}
