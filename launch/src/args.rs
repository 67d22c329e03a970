//! The child command line: what the postmaster passes across `exec`.
//!
//! ```text
//! <binary> --shmem <fd> --slot <n> --interlock <fd> -D <datadir>
//!          [--client-fd <fd>] [--reject <reason>] [--worker]
//! ```
//! `--shmem` is the inherited memfd of the segment, `--slot` the child slot
//! the postmaster assigned, `--interlock` the descriptor holding the shared
//! flock that keeps a new postmaster from starting while this process lives.
//! A backend also gets its client socket and, when the postmaster will not
//! admit new sessions, the reason to tell the client.

use std::os::fd::RawFd;
use std::path::PathBuf;

/// Why the postmaster is not admitting a new session (PostgreSQL's CAC_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    Startup,
    Shutdown,
    Recovery,
    TooMany,
}

impl RejectReason {
    pub fn as_arg(self) -> &'static str {
        match self {
            RejectReason::Startup => "startup",
            RejectReason::Shutdown => "shutdown",
            RejectReason::Recovery => "recovery",
            RejectReason::TooMany => "toomany",
        }
    }

    fn parse(s: &str) -> Option<RejectReason> {
        match s {
            "startup" => Some(RejectReason::Startup),
            "shutdown" => Some(RejectReason::Shutdown),
            "recovery" => Some(RejectReason::Recovery),
            "toomany" => Some(RejectReason::TooMany),
            _ => None,
        }
    }
}

/// Everything a child learns from its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildArgs {
    pub shmem_fd: RawFd,
    pub slot: usize,
    pub interlock_fd: RawFd,
    pub data_dir: PathBuf,
    pub client_fd: Option<RawFd>,
    pub reject: Option<RejectReason>,
    /// autovacuum: run as a worker rather than the launcher.
    pub worker: bool,
}

impl ChildArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--shmem".to_string(),
            self.shmem_fd.to_string(),
            "--slot".into(),
            self.slot.to_string(),
            "--interlock".into(),
            self.interlock_fd.to_string(),
            "-D".into(),
            self.data_dir.display().to_string(),
        ];
        if let Some(fd) = self.client_fd {
            v.push("--client-fd".into());
            v.push(fd.to_string());
        }
        if let Some(r) = self.reject {
            v.push("--reject".into());
            v.push(r.as_arg().into());
        }
        if self.worker {
            v.push("--worker".into());
        }
        v
    }

    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<ChildArgs, String> {
        let mut shmem_fd = None;
        let mut slot = None;
        let mut interlock_fd = None;
        let mut data_dir = None;
        let mut client_fd = None;
        let mut reject = None;
        let mut worker = false;
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| format!("option {name} needs a value"))
            };
            match a.as_str() {
                "--shmem" => shmem_fd = Some(parse_num(&value("--shmem")?)?),
                "--slot" => slot = Some(parse_num(&value("--slot")?)? as usize),
                "--interlock" => interlock_fd = Some(parse_num(&value("--interlock")?)?),
                "-D" => data_dir = Some(PathBuf::from(value("-D")?)),
                "--client-fd" => client_fd = Some(parse_num(&value("--client-fd")?)?),
                "--reject" => {
                    let v = value("--reject")?;
                    reject = Some(
                        RejectReason::parse(&v)
                            .ok_or_else(|| format!("unknown reject reason \"{v}\""))?,
                    );
                }
                "--worker" => worker = true,
                other => return Err(format!("unrecognized argument \"{other}\"")),
            }
        }
        Ok(ChildArgs {
            shmem_fd: shmem_fd
                .ok_or("--shmem is required (this program is started by the postmaster)")?,
            slot: slot.ok_or("--slot is required")?,
            interlock_fd: interlock_fd.ok_or("--interlock is required")?,
            data_dir: data_dir.ok_or("-D is required")?,
            client_fd,
            reject,
            worker,
        })
    }
}

fn parse_num(s: &str) -> Result<i32, String> {
    s.parse::<i32>()
        .map_err(|_| format!("invalid number \"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = ChildArgs {
            shmem_fd: 5,
            slot: 12,
            interlock_fd: 6,
            data_dir: "/tmp/x y".into(),
            client_fd: Some(9),
            reject: Some(RejectReason::Shutdown),
            worker: false,
        };
        assert_eq!(ChildArgs::parse(a.to_args()).unwrap(), a);
    }

    #[test]
    fn missing_handle_is_explained() {
        let e = ChildArgs::parse(vec!["--slot".into(), "1".into()]).unwrap_err();
        assert!(e.contains("postmaster"), "{e}");
    }
}
