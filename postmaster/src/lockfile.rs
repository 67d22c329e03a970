//! The data directory's lock files.
//!
//! 1. `postmaster.pid` (PostgreSQL's layout, one value per line):
//!    pid, data directory, start time (epoch seconds), port, first socket
//!    directory, first listen address, shared-memory key line, status
//!    (`starting`, `ready`, `stopping`). Created with O_EXCL; a file naming
//!    a live process refuses the start; a stale one is replaced.
//! 2. `postmaster.interlock`: the orphan interlock. The postmaster takes an
//!    exclusive `flock` (proving no process of an earlier postmaster still
//!    holds it), then downgrades it to shared and hands the descriptor to
//!    every child. Each child keeps the open file description, so the lock
//!    lives as long as any process of this postmaster generation does, even
//!    after the postmaster itself is killed. PostgreSQL gets the same effect
//!    from the SysV segment's attach count ("pre-existing shared memory block
//!    is still in use").
//! 3. For each Unix socket, `.s.PGSQL.PORT.lock` next to it, so two servers
//!    never share a socket path.
//!
//! # Crash safety
//! After `kill -9` of the postmaster the pid file stays behind; the next
//! start finds its pid dead and replaces it. The interlock needs no cleanup:
//! the kernel drops a flock with the last descriptor.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const PID_FILE: &str = "postmaster.pid";
pub const INTERLOCK_FILE: &str = "postmaster.interlock";

/// Status words of line 8, padded as PostgreSQL pads them.
pub const STATUS_STARTING: &str = "starting";
pub const STATUS_READY: &str = "ready   ";
pub const STATUS_STOPPING: &str = "stopping";

#[derive(Debug)]
pub struct LockError {
    pub message: String,
    pub hint: Option<String>,
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Creates an exclusive lock file holding our pid, replacing a stale one.
/// `what` describes the lock for the hint ("running in data directory ...").
fn create_lock_file(
    path: &Path,
    shown_as: &str,
    hint_for: impl Fn(i32) -> String,
) -> Result<File, LockError> {
    for _ in 0..100 {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let other: i32 = text
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0);
                if other != std::process::id() as i32 && pid_alive(other) {
                    return Err(LockError {
                        message: format!("lock file \"{shown_as}\" already exists"),
                        hint: Some(hint_for(other)),
                    });
                }
                // Stale: its owner is gone.
                if let Err(e) = std::fs::remove_file(path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(LockError {
                            message: format!("could not remove old lock file \"{}\": {e}", path.display()),
                            hint: Some("The file seems accidentally left over, but it could not be removed. Please remove the file by hand and try again.".into()),
                        });
                    }
                }
            }
            Err(e) => {
                return Err(LockError {
                    message: format!("could not create lock file \"{}\": {e}", path.display()),
                    hint: None,
                })
            }
        }
    }
    Err(LockError {
        message: format!(
            "could not create lock file \"{}\": too many retries",
            path.display()
        ),
        hint: None,
    })
}

/// `postmaster.pid`, owned by this postmaster until dropped.
pub struct PidFile {
    path: PathBuf,
    lines: Vec<String>,
}

impl PidFile {
    pub fn create(data_dir: &Path) -> Result<PidFile, LockError> {
        let path = data_dir.join(PID_FILE);
        let dir = data_dir.display().to_string();
        // PostgreSQL names it relative to the data directory, its cwd.
        create_lock_file(&path, PID_FILE, |pid| {
            format!("Is another postmaster (PID {pid}) running in data directory \"{dir}\"?")
        })?;
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let pf = PidFile {
            path,
            lines: vec![
                std::process::id().to_string(),
                dir,
                start.to_string(),
                String::new(),
                String::new(),
                String::new(),
                format!("{:>9} {:>9}", 0, 0),
                STATUS_STARTING.to_string(),
            ],
        };
        pf.write().map_err(|e| LockError {
            message: format!("could not write lock file \"{}\": {e}", pf.path.display()),
            hint: None,
        })?;
        Ok(pf)
    }

    /// Sets line `n` (1-based) and rewrites the file.
    pub fn set_line(&mut self, n: usize, value: &str) {
        self.lines[n - 1] = value.to_string();
        if let Err(e) = self.write() {
            log::warn!("could not write lock file \"{}\": {e}", self.path.display());
        }
    }

    fn write(&self) -> std::io::Result<()> {
        let mut text = self.lines.join("\n");
        text.push('\n');
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The orphan interlock (see module docs).
pub struct Interlock {
    file: File,
}

impl Interlock {
    pub fn acquire(data_dir: &Path) -> Result<Interlock, LockError> {
        let path = data_dir.join(INTERLOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| LockError {
                message: format!("could not open file \"{}\": {e}", path.display()),
                hint: None,
            })?;
        // SAFETY: flock on our own descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(LockError {
                message: "pre-existing shared memory block is still in use".into(),
                hint: Some(format!(
                    "Terminate any old server processes associated with data directory \"{}\".",
                    data_dir.display()
                )),
            });
        }
        // SAFETY: as above; converting our exclusive lock to a shared one.
        unsafe {
            libc::flock(file.as_raw_fd(), libc::LOCK_SH);
        }
        Ok(Interlock { file })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// `.s.PGSQL.PORT.lock` for one Unix socket.
pub struct SocketLock {
    path: PathBuf,
}

impl SocketLock {
    pub fn create(socket_path: &Path, data_dir: &Path) -> Result<SocketLock, LockError> {
        let path = PathBuf::from(format!("{}.lock", socket_path.display()));
        let sock = socket_path.display().to_string();
        let shown = path.display().to_string();
        let mut f = create_lock_file(&path, &shown, |pid| {
            format!("Is another postmaster (PID {pid}) using socket file \"{sock}\"?")
        })?;
        let _ = writeln!(f, "{}\n{}", std::process::id(), data_dir.display());
        Ok(SocketLock { path })
    }
}

impl SocketLock {
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_pid_file_refuses_and_a_stale_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // Our own parent is alive: the file names a running "postmaster".
        let ppid = nix::unistd::getppid().as_raw();
        std::fs::write(dir.path().join(PID_FILE), format!("{ppid}\n")).unwrap();
        let e = PidFile::create(dir.path()).err().expect("refused");
        assert!(e.message.contains("already exists"));
        assert!(e.hint.unwrap().contains(&format!("PID {ppid}")));
        std::fs::write(dir.path().join(PID_FILE), "999999999\n").unwrap();
        let pf = PidFile::create(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert_eq!(text.lines().next().unwrap(), std::process::id().to_string());
        assert_eq!(text.lines().nth(7).unwrap(), STATUS_STARTING);
        pf.remove();
    }

    #[test]
    fn the_interlock_excludes_a_second_holder_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = Interlock::acquire(dir.path()).unwrap();
        let e = Interlock::acquire(dir.path())
            .err()
            .expect("refused while held");
        assert!(e.message.contains("pre-existing shared memory block"));
        drop(first);
        assert!(Interlock::acquire(dir.path()).is_ok());
    }
}
