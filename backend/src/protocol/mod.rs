//! The v3 frontend/backend protocol: framing, reading and writing messages
//! on the client socket with blocking I/O.
//!
//! Reads go through a buffer filled with `recv`. A connection with a
//! [`ReadGuard`] never blocks in `recv`: it waits on the socket together
//! with the signal pipe, so SIGTERM, the postmaster's death and (during
//! start-up) `authentication_timeout` end a read even when the client has
//! sent half a message and stalls (PostgreSQL's ProcessClientReadInterrupt). Writes accumulate
//! in an output buffer flushed at ReadyForQuery, when it grows past
//! [`FLUSH_THRESHOLD_BYTES`], and before waiting for input.
//!
//! # Invariants
//! 1. A message is handed out only once it is complete; its length field was
//!    checked against [`MAX_MESSAGE_BYTES`] before the body was buffered.
//! 2. A malformed message is a [`ProtocolError`]: the caller sends a FATAL
//!    08P01 and ends this one connection.

pub mod extended;
pub mod messages;
pub mod startup;

use pgerror::{PgError, SqlState};
use std::os::fd::{AsRawFd, OwnedFd};

/// PostgreSQL's PQ_LARGE_MESSAGE_LIMIT.
pub const MAX_MESSAGE_BYTES: usize = 0x3fff_ffff;
/// PostgreSQL's MAX_STARTUP_PACKET_LENGTH.
pub const MAX_STARTUP_PACKET_BYTES: usize = 10_000;
/// PostgreSQL's PQ_SMALL_MESSAGE_LIMIT, for message types without payload.
pub const MAX_SMALL_MESSAGE_BYTES: usize = 10_000;
pub const FLUSH_THRESHOLD_BYTES: usize = 8192;

/// Why reading from the client stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection (EOF or reset).
    Eof,
    /// The bytes do not form a valid message.
    Protocol(PgError),
    /// A client that does not speak the protocol at all (PostgreSQL's
    /// COMMERROR): logged, never answered, and the connection closed.
    Silent(String),
    /// An error for a client that asked for protocol version 1 or 2: it is
    /// sent in that protocol's unframed form before closing.
    OldProtocol(String),
    /// SIGTERM arrived while waiting for input.
    Terminated,
    /// The postmaster died while waiting for input.
    PostmasterDied,
    /// The guard's deadline passed (authentication_timeout).
    TimedOut,
}

/// What a read watches besides the socket.
pub struct ReadGuard {
    pub signals: launch::Signals,
    pub postmaster_pid: i32,
    /// Absolute deadline for the reads (start-up only).
    pub deadline: Option<std::time::Instant>,
}

pub fn protocol_violation(msg: impl Into<String>) -> ReadError {
    ReadError::Protocol(PgError::fatal(SqlState::PROTOCOL_VIOLATION, msg))
}

/// The client connection: socket plus input and output buffers.
pub struct Connection {
    sock: OwnedFd,
    inbuf: Vec<u8>,
    inpos: usize,
    pub outbuf: Vec<u8>,
    /// The peer went away while we were writing; further output is dropped.
    pub broken: bool,
    /// When set, reads wait on signals too (every real backend sets it).
    pub guard: Option<ReadGuard>,
}

impl Connection {
    pub fn new(sock: OwnedFd) -> Connection {
        Connection {
            sock,
            inbuf: Vec::with_capacity(8192),
            inpos: 0,
            outbuf: Vec::with_capacity(8192),
            broken: false,
            guard: None,
        }
    }

    pub fn raw_fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }

    pub fn sock(&self) -> &OwnedFd {
        &self.sock
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.inbuf.len() - self.inpos
    }

    /// One `recv` into the input buffer. Blocks unless data is ready. With a
    /// read guard, the socket is read without waiting first and watched
    /// (signals, postmaster, deadline) only when it has nothing: the caller
    /// has usually just seen it readable, and a `poll` per message would be
    /// a wasted system call.
    fn fill(&mut self) -> Result<(), ReadError> {
        if self.inpos > 0 && self.inpos == self.inbuf.len() {
            self.inbuf.clear();
            self.inpos = 0;
        } else if self.inpos > 65536 {
            self.inbuf.drain(..self.inpos);
            self.inpos = 0;
        }
        let old = self.inbuf.len();
        loop {
            let flags = match &self.guard {
                None => 0,
                Some(_) => libc::MSG_DONTWAIT,
            };
            self.inbuf.resize(old + 16384, 0);
            // SAFETY: receiving into the spare part of our own buffer.
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    self.inbuf[old..].as_mut_ptr() as *mut libc::c_void,
                    16384,
                    flags,
                )
            };
            if n > 0 {
                self.inbuf.truncate(old + n as usize);
                return Ok(());
            }
            self.inbuf.truncate(old);
            if n == 0 {
                return Err(ReadError::Eof);
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    if let Some(g) = &self.guard {
                        self.wait_readable(g)?;
                    }
                    continue;
                }
                _ => return Err(ReadError::Eof),
            }
        }
    }

    /// Waits until the socket is readable, or returns why it must not.
    fn wait_readable(&self, g: &ReadGuard) -> Result<(), ReadError> {
        use std::os::fd::AsFd;
        loop {
            if g.signals.pending(launch::Sig::Term) {
                return Err(ReadError::Terminated);
            }
            if nix::unistd::getppid().as_raw() != g.postmaster_pid {
                return Err(ReadError::PostmasterDied);
            }
            let mut timeout = std::time::Duration::from_secs(1);
            if let Some(d) = g.deadline {
                let now = std::time::Instant::now();
                if now >= d {
                    return Err(ReadError::TimedOut);
                }
                timeout = timeout.min(d - now);
            }
            if launch::wait(&g.signals, None, Some(self.sock.as_fd()), Some(timeout)).fd_ready {
                return Ok(());
            }
        }
    }

    /// Ensures `n` bytes are buffered, reading as needed.
    fn need(&mut self, n: usize) -> Result<(), ReadError> {
        while self.buffered() < n {
            self.fill()?;
        }
        Ok(())
    }

    /// Reads the untyped startup packet (length-prefixed).
    pub fn read_startup_packet(&mut self) -> Result<Vec<u8>, ReadError> {
        if self.buffered() == 0 {
            // Nothing at all: a port probe. PostgreSQL closes silently.
            self.need(1)?;
        }
        if self.need(4).is_err() {
            return Err(ReadError::Silent("incomplete startup packet".into()));
        }
        let len = u32::from_be_bytes(
            self.inbuf[self.inpos..self.inpos + 4]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        if !(8..=MAX_STARTUP_PACKET_BYTES).contains(&len) {
            return Err(ReadError::Silent("invalid length of startup packet".into()));
        }
        if self.need(len).is_err() {
            return Err(ReadError::Silent("incomplete startup packet".into()));
        }
        let body = self.inbuf[self.inpos + 4..self.inpos + len].to_vec();
        self.inpos += len;
        Ok(body)
    }

    /// Whether a whole message is already buffered (no blocking needed).
    pub fn has_message(&self) -> bool {
        if self.buffered() < 5 {
            return false;
        }
        let len = u32::from_be_bytes(
            self.inbuf[self.inpos + 1..self.inpos + 5]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        self.buffered() >= 1 + len
    }

    /// Reads one typed message: (type byte, body). Messages that carry
    /// query text or data may be up to [`MAX_MESSAGE_BYTES`]; every other
    /// type up to [`MAX_SMALL_MESSAGE_BYTES`] (PostgreSQL's limits). A bad
    /// length is PostgreSQL's COMMERROR: logged, and the connection closed
    /// without a reply.
    pub fn read_message(&mut self) -> Result<(u8, Vec<u8>), ReadError> {
        self.need(5)?;
        let typ = self.inbuf[self.inpos];
        let len = u32::from_be_bytes(
            self.inbuf[self.inpos + 1..self.inpos + 5]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        let limit = match typ {
            b'Q' | b'P' | b'B' | b'F' | b'd' => MAX_MESSAGE_BYTES,
            _ => MAX_SMALL_MESSAGE_BYTES,
        };
        if len < 4 || len > limit {
            return Err(ReadError::Silent(format!("invalid message length {len}")));
        }
        self.need(1 + len)?;
        let body = self.inbuf[self.inpos + 5..self.inpos + 1 + len].to_vec();
        self.inpos += 1 + len;
        Ok((typ, body))
    }

    /// Appends a raw message to the output buffer.
    pub fn send(&mut self, typ: u8, body: &[u8]) {
        self.outbuf.push(typ);
        self.outbuf
            .extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        self.outbuf.extend_from_slice(body);
    }

    /// Writes a single byte with no framing (the answer to SSLRequest).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.outbuf.extend_from_slice(bytes);
    }

    /// Writes out the output buffer; a dead peer marks the connection broken.
    pub fn flush(&mut self) -> Result<(), PgError> {
        let mut off = 0;
        while off < self.outbuf.len() && !self.broken {
            // SAFETY: sending from our own buffer; MSG_NOSIGNAL avoids SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.sock.as_raw_fd(),
                    self.outbuf[off..].as_ptr() as *const libc::c_void,
                    self.outbuf.len() - off,
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                off += n as usize;
                continue;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            self.broken = true;
        }
        self.outbuf.clear();
        if self.broken {
            return Err(PgError::fatal(
                SqlState::CONNECTION_FAILURE,
                "connection to client lost",
            ));
        }
        Ok(())
    }

    /// Flushes only when the output buffer is large.
    pub fn maybe_flush(&mut self) -> Result<(), PgError> {
        if self.outbuf.len() >= FLUSH_THRESHOLD_BYTES {
            self.flush()
        } else {
            Ok(())
        }
    }
}
