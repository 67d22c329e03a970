//! Listen sockets: TCP on `listen_addresses`, Unix `.s.PGSQL.<port>` in each
//! of `unix_socket_directories`.
//!
//! Sockets are non-blocking and close-on-exec: the postmaster accepts in its
//! poll loop and passes only the accepted descriptor to the backend it
//! launches. Bind failures are reported with PostgreSQL's messages; the
//! start fails only when no socket at all could be created.

use crate::lockfile::{LockError, SocketLock};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, UnixAddr,
};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub struct Listener {
    pub fd: OwnedFd,
    pub is_unix: bool,
}

pub struct Listeners {
    pub sockets: Vec<Listener>,
    unix_paths: Vec<(PathBuf, SocketLock)>,
    /// For postmaster.pid lines 5 and 6.
    pub first_socket_dir: String,
    pub first_listen_addr: String,
}

impl Listeners {
    /// Removes the socket files and their lock files (at exit).
    pub fn remove_files(&self) {
        for (p, lock) in &self.unix_paths {
            let _ = std::fs::remove_file(p);
            lock.remove();
        }
    }
}

fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    match host {
        "*" => vec![
            SocketAddr::new(IpAddr::from([0u8; 4]), port),
            SocketAddr::new(IpAddr::from([0u16; 8]), port),
        ],
        h => (h, port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .unwrap_or_default(),
    }
}

fn bind_tcp(addr: SocketAddr) -> nix::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket::socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    socket::listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    Ok(fd)
}

fn bind_unix(path: &Path) -> nix::Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let _ = std::fs::remove_file(path);
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    // Like PostgreSQL's default unix_socket_permissions = 0777.
    let _ = std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o777));
    socket::listen(&fd, Backlog::new(1024).unwrap_or(Backlog::MAXCONN))?;
    Ok(fd)
}

fn family_word(a: &SocketAddr) -> &'static str {
    if a.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Opens every listen socket. Errors are fatal start-up errors.
pub fn open(
    listen_addresses: &str,
    port: u16,
    socket_dirs: &str,
    data_dir: &Path,
) -> Result<Listeners, LockError> {
    let mut l = Listeners {
        sockets: Vec::new(),
        unix_paths: Vec::new(),
        first_socket_dir: String::new(),
        first_listen_addr: String::new(),
    };
    let hosts: Vec<&str> = listen_addresses
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut tcp_ok = 0;
    for host in &hosts {
        let mut ok_for_host = false;
        for addr in resolve(host, port) {
            match bind_tcp(addr) {
                Ok(fd) => {
                    log::info!(
                        "listening on {} address \"{}\", port {}",
                        family_word(&addr),
                        addr.ip(),
                        port
                    );
                    l.sockets.push(Listener { fd, is_unix: false });
                    ok_for_host = true;
                }
                Err(e) => {
                    log::info!(
                        "could not bind {} address \"{}\": {}",
                        family_word(&addr),
                        addr.ip(),
                        e.desc()
                    );
                    if e == nix::errno::Errno::EADDRINUSE {
                        log::info!(target: launch::elog::HINT, "Is another postmaster already running on port {port}? If not, wait a few seconds and retry.");
                    }
                }
            }
        }
        if ok_for_host {
            tcp_ok += 1;
            if l.first_listen_addr.is_empty() {
                l.first_listen_addr = host.to_string();
            }
        } else {
            log::warn!("could not create listen socket for \"{host}\"");
        }
    }
    if !hosts.is_empty() && tcp_ok == 0 {
        return Err(LockError {
            message: "could not create any TCP/IP sockets".into(),
            hint: None,
        });
    }
    let dirs: Vec<&str> = socket_dirs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for dir in &dirs {
        let path = Path::new(dir).join(format!(".s.PGSQL.{port}"));
        let lock = SocketLock::create(&path, data_dir)?;
        match bind_unix(&path) {
            Ok(fd) => {
                log::info!("listening on Unix socket \"{}\"", path.display());
                l.sockets.push(Listener { fd, is_unix: true });
                l.unix_paths.push((path, lock));
                if l.first_socket_dir.is_empty() {
                    l.first_socket_dir = dir.to_string();
                }
            }
            Err(e) => {
                log::info!(
                    "could not bind Unix address \"{}\": {}",
                    path.display(),
                    e.desc()
                );
                log::warn!("could not create Unix-domain socket in directory \"{dir}\"");
            }
        }
    }
    if !dirs.is_empty() && l.unix_paths.is_empty() {
        return Err(LockError {
            message: "could not create any Unix-domain sockets".into(),
            hint: None,
        });
    }
    if l.sockets.is_empty() {
        return Err(LockError {
            message: "no socket created for listening".into(),
            hint: None,
        });
    }
    Ok(l)
}

/// Accepts one pending connection, if any (non-blocking).
pub fn accept(listener: &Listener) -> Option<OwnedFd> {
    match socket::accept4(listener.fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
        Ok(raw) => {
            // SAFETY: accept4 returned a new descriptor we now own.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            if !listener.is_unix {
                let _ = socket::setsockopt(&fd, sockopt::TcpNoDelay, &true);
                let _ = socket::setsockopt(&fd, sockopt::KeepAlive, &true);
            }
            Some(fd)
        }
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => None,
        Err(e) => {
            // EMFILE and the like leave the socket readable: pause instead
            // of spinning, as PostgreSQL does.
            log::info!("could not accept new connection: {}", e.desc());
            std::thread::sleep(std::time::Duration::from_millis(100));
            None
        }
    }
}

pub fn raw(l: &Listener) -> RawFd {
    l.fd.as_fd().as_raw_fd()
}
