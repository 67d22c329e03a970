//! The postmaster's command line: PostgreSQL's `postgres` flags.
//!
//! ```text
//! postmaster -D DIR [-p PORT] [-h ADDRESSES] [-k SOCKET_DIR] [-N MAX_CONN]
//!            [-B SHARED_BUFFERS] [-F] [-c NAME=VALUE ...] [--NAME=VALUE ...]
//! ```
//! `PGDATA` is the fallback for `-D`. Dedicated flags are shorthands for
//! `-c` settings and are applied in command-line order, after the file.

use std::path::PathBuf;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub data_dir: Option<PathBuf>,
    /// `(name, value)` pairs in the order given.
    pub settings: Vec<(String, String)>,
    pub help: bool,
    pub version: bool,
}

pub const USAGE: &str = "\
postmaster is the PostgreSQL-compatible server's supervisor.

Usage:
  postmaster [OPTION]...

Options:
  -B NBUFFERS        number of shared buffers
  -c NAME=VALUE      set run-time parameter
  -D DATADIR         database directory (default: $PGDATA)
  -F                 turn fsync off
  -h HOSTNAME        host name or IP address to listen on
  -k DIRECTORY       Unix-domain socket location
  -N MAX-CONNECT     maximum number of allowed connections
  -p PORT            port number to listen on
  --NAME=VALUE       set run-time parameter
  -V, --version      output version information, then exit
  -?, --help         show this help, then exit
";

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        // Accept both "-p 5432" and "-p5432".
        let mut take = |flag: &str, rest: &str| -> Result<String, String> {
            if !rest.is_empty() {
                Ok(rest.to_string())
            } else {
                it.next()
                    .ok_or_else(|| format!("option requires an argument -- '{}'", &flag[1..]))
            }
        };
        if a == "--help" || a == "-?" {
            o.help = true;
        } else if a == "--version" || a == "-V" {
            o.version = true;
        } else if let Some(kv) = a.strip_prefix("--") {
            o.settings.push(split_setting(kv)?);
        } else if a.len() >= 2 && a.starts_with('-') {
            let (flag, rest) = a.split_at(2);
            match flag {
                "-D" => o.data_dir = Some(PathBuf::from(take(flag, rest)?)),
                "-p" => o.settings.push(("port".into(), take(flag, rest)?)),
                "-h" => o
                    .settings
                    .push(("listen_addresses".into(), take(flag, rest)?)),
                "-k" => o
                    .settings
                    .push(("unix_socket_directories".into(), take(flag, rest)?)),
                "-N" => o
                    .settings
                    .push(("max_connections".into(), take(flag, rest)?)),
                "-B" => o
                    .settings
                    .push(("shared_buffers".into(), take(flag, rest)?)),
                "-F" => o.settings.push(("fsync".into(), "off".into())),
                "-c" => o.settings.push(split_setting(&take(flag, rest)?)?),
                _ => return Err(format!("invalid option -- '{}'", &flag[1..])),
            }
        } else {
            return Err(format!("invalid command-line argument: \"{a}\""));
        }
    }
    Ok(o)
}

fn split_setting(kv: &str) -> Result<(String, String), String> {
    match kv.split_once('=') {
        Some((k, v)) => Ok((k.replace('-', "_"), v.to_string())),
        None => Err(format!("-c {kv} requires a value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Options, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_become_settings_in_order() {
        let o = p(&[
            "-D",
            "/d",
            "-p5433",
            "-h",
            "127.0.0.1",
            "-k",
            "/tmp",
            "-c",
            "work_mem=4MB",
            "--max-connections=7",
        ])
        .unwrap();
        assert_eq!(o.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(
            o.settings,
            vec![
                ("port".into(), "5433".into()),
                ("listen_addresses".into(), "127.0.0.1".into()),
                ("unix_socket_directories".into(), "/tmp".into()),
                ("work_mem".into(), "4MB".into()),
                ("max_connections".into(), "7".into()),
            ]
        );
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(p(&["-x"]).is_err());
        assert!(p(&["-c", "novalue"]).is_err());
        assert!(p(&["-p"]).is_err());
    }
}
