//! Connection start: PostgreSQL's ProcessStartupPacket.
//!
//! ```text
//! client                         backend
//! SSLRequest / GSSENCRequest ->  'N' (no encryption offered), read again
//! CancelRequest              ->  find pid+key in the proc array, SIGINT it,
//!                                close (no reply, as PostgreSQL)
//! StartupMessage 3.x         ->  NegotiateProtocolVersion if x > 0 or
//!                                `_pq_.` options were sent; parameters
//! ```
//! Anything else is a FATAL 08P01 (or 0A000 for an unsupported protocol
//! version) and the connection ends.

use super::{protocol_violation, Connection, ReadError};
use crate::protocol::messages::{self, BodyReader};
use pgerror::{PgError, SqlState};

const CANCEL_REQUEST_CODE: u32 = (1234 << 16) | 5678;
const SSL_REQUEST_CODE: u32 = (1234 << 16) | 5679;
const GSSENC_REQUEST_CODE: u32 = (1234 << 16) | 5680;
/// The newest protocol we speak, 3.0, as NegotiateProtocolVersion sends it.
const PROTOCOL_LATEST: u32 = 3 << 16;

/// What the first packets asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupRequest {
    /// A session with these parameters (user, database, options, GUCs).
    Session { params: Vec<(String, String)> },
    /// Cancel the query running in backend `pid` if `key` matches.
    Cancel { pid: i32, key: u32 },
}

/// Reads packets until a StartupMessage or CancelRequest arrives.
pub fn read_startup(conn: &mut Connection) -> Result<StartupRequest, ReadError> {
    let mut ssl_done = false;
    let mut gss_done = false;
    loop {
        let body = conn.read_startup_packet()?;
        let mut r = BodyReader::new(&body);
        let code = r
            .u32()
            .ok_or_else(|| protocol_violation("invalid length of startup packet"))?;
        match code {
            CANCEL_REQUEST_CODE => {
                let pid = r
                    .u32()
                    .ok_or_else(|| protocol_violation("invalid length of startup packet"))?
                    as i32;
                let key = r
                    .u32()
                    .ok_or_else(|| protocol_violation("invalid length of startup packet"))?;
                return Ok(StartupRequest::Cancel { pid, key });
            }
            SSL_REQUEST_CODE if !ssl_done => {
                ssl_done = true;
                conn.send_raw(b"N");
                conn.flush().map_err(|_| ReadError::Eof)?;
            }
            GSSENC_REQUEST_CODE if !gss_done => {
                gss_done = true;
                conn.send_raw(b"N");
                conn.flush().map_err(|_| ReadError::Eof)?;
            }
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => {
                return Err(protocol_violation(
                    "received unencrypted data after SSL request",
                ));
            }
            _ => {
                let major = code >> 16;
                let minor = code & 0xffff;
                let unsupported = format!(
                    "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                );
                if major < 3 {
                    return Err(ReadError::OldProtocol(unsupported));
                }
                if major != 3 {
                    return Err(ReadError::Protocol(PgError::fatal(
                        SqlState::FEATURE_NOT_SUPPORTED,
                        unsupported,
                    )));
                }
                let mut params = Vec::new();
                let mut unrecognized = Vec::new();
                loop {
                    let name = r.cstr().ok_or_else(|| {
                        protocol_violation(
                            "invalid startup packet layout: expected terminator as last byte",
                        )
                    })?;
                    if name.is_empty() {
                        break;
                    }
                    let value = r.cstr().ok_or_else(|| {
                        protocol_violation(
                            "invalid startup packet layout: expected terminator as last byte",
                        )
                    })?;
                    if name.starts_with("_pq_.") {
                        unrecognized.push(name.to_string());
                    } else {
                        params.push((name.to_string(), value.to_string()));
                    }
                }
                if r.remaining() != 0 {
                    return Err(protocol_violation(
                        "invalid startup packet layout: expected terminator as last byte",
                    ));
                }
                if minor > 0 || !unrecognized.is_empty() {
                    conn.send(
                        b'v',
                        &messages::negotiate_protocol_version(PROTOCOL_LATEST, &unrecognized),
                    );
                }
                return Ok(StartupRequest::Session { params });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn packet(code: u32, rest: &[u8]) -> Vec<u8> {
        let mut p = ((rest.len() + 8) as u32).to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(rest);
        p
    }

    fn conn_with(input: &[u8]) -> (Connection, UnixStream) {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(input).unwrap();
        (Connection::new(a.into()), b)
    }

    #[test]
    fn ssl_request_gets_n_then_startup_is_read() {
        let mut input = packet(SSL_REQUEST_CODE, &[]);
        input.extend(packet(3 << 16, b"user\0bob\0database\0db\0\0"));
        let (mut c, mut peer) = conn_with(&input);
        let req = read_startup(&mut c).unwrap();
        assert_eq!(
            req,
            StartupRequest::Session {
                params: vec![
                    ("user".into(), "bob".into()),
                    ("database".into(), "db".into())
                ]
            }
        );
        let mut n = [0u8; 1];
        peer.read_exact(&mut n).unwrap();
        assert_eq!(&n, b"N");
    }

    #[test]
    fn newer_minor_version_is_negotiated_down() {
        let (mut c, _peer) = conn_with(&packet((3 << 16) | 2, b"user\0bob\0_pq_.x\0y\0\0"));
        read_startup(&mut c).unwrap();
        assert_eq!(c.outbuf[0], b'v');
    }

    #[test]
    fn cancel_request_is_recognised() {
        let mut rest = 42u32.to_be_bytes().to_vec();
        rest.extend_from_slice(&7u32.to_be_bytes());
        let (mut c, _peer) = conn_with(&packet(CANCEL_REQUEST_CODE, &rest));
        assert_eq!(
            read_startup(&mut c).unwrap(),
            StartupRequest::Cancel { pid: 42, key: 7 }
        );
    }

    #[test]
    fn old_protocols_get_an_old_style_error_and_garbage_is_silent() {
        let (mut c, _p) = conn_with(&packet(2 << 16, b"\0"));
        assert!(
            matches!(read_startup(&mut c), Err(ReadError::OldProtocol(m)) if m.contains("2.0"))
        );
        let (mut c, _p) = conn_with(&packet(4 << 16, b"\0"));
        assert!(
            matches!(read_startup(&mut c), Err(ReadError::Protocol(e)) if e.code == SqlState::FEATURE_NOT_SUPPORTED)
        );
        let (mut c, _p) = conn_with(&[0, 0, 0, 2]);
        assert!(matches!(read_startup(&mut c), Err(ReadError::Silent(_))));
    }
}
