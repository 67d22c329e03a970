//! initdb: creates a new data directory. See README.md.
//!
//! ```text
//! initdb -D DIR [-U NAME]        (PGDATA is the fallback for -D)
//! ```
//! Refuses a directory that exists and is not empty. Writes PG_VERSION,
//! postgresql.toml (every setting with its default), pg_hba.conf (trust for
//! local and loopback connections), pg_ident.conf, the directory skeleton
//! (global/, base/<oid>/ for template1, template0 and postgres, pg_wal/,
//! pg_xact/), the first WAL segment with a shutdown checkpoint and
//! `global/pg_control` (`storage::recovery::bootstrap_cluster`), and the
//! system catalogs as heap tables (`storage::catalog::bootstrap_catalogs`):
//! the superuser in pg_authid, the three databases in pg_database, and each
//! database's pg_class, pg_attribute, pg_type and pg_namespace.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The on-disk format version (PG_VERSION).
const PG_VERSION: &str = "15";

/// PostgreSQL's OIDs for the initial databases.
const TEMPLATE1_OID: u32 = 1;
const TEMPLATE0_OID: u32 = 4;
const POSTGRES_OID: u32 = 5;

struct Options {
    data_dir: PathBuf,
    superuser: String,
}

fn usage() -> &'static str {
    "initdb initializes a PostgreSQL-compatible database cluster.\n\n\
     Usage:\n  initdb [OPTION]... [DATADIR]\n\n\
     Options:\n  -D, --pgdata=DATADIR      location for this database cluster\n  \
     -U, --username=NAME       database superuser name (default: postgres)\n  \
     -?, --help                show this help, then exit\n"
}

fn die(msg: &str) -> ! {
    eprintln!("initdb: error: {msg}");
    std::process::exit(1)
}

fn parse_args() -> Options {
    let mut data_dir: Option<PathBuf> = None;
    let mut superuser = "postgres".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .unwrap_or_else(|| die(&format!("option requires an argument -- '{flag}'")))
        };
        match a.as_str() {
            "-D" => data_dir = Some(value("D").into()),
            "-U" => superuser = value("U"),
            "-?" | "--help" => {
                print!("{}", usage());
                std::process::exit(0);
            }
            s if s.starts_with("--pgdata=") => data_dir = Some(s["--pgdata=".len()..].into()),
            s if s.starts_with("--username=") => superuser = s["--username=".len()..].to_string(),
            s if s.starts_with("-D") && s.len() > 2 => data_dir = Some(s[2..].into()),
            s if s.starts_with("-U") && s.len() > 2 => superuser = s[2..].to_string(),
            s if !s.starts_with('-') && data_dir.is_none() => data_dir = Some(s.into()),
            s => {
                eprintln!("initdb: error: unrecognized option \"{s}\"\nTry \"initdb --help\" for more information.");
                std::process::exit(1);
            }
        }
    }
    let data_dir = data_dir
        .or_else(|| std::env::var_os("PGDATA").map(PathBuf::from))
        .unwrap_or_else(|| {
            eprintln!("initdb: error: no data directory specified\ninitdb: hint: You must identify the directory where the data for this database system will reside.  Do this with either the invocation option -D or the environment variable PGDATA.");
            std::process::exit(1)
        });
    if superuser.is_empty() {
        die("superuser name must not be empty");
    }
    if superuser.starts_with("pg_") {
        die(&format!(
            "superuser name \"{superuser}\" is disallowed; role names cannot begin with \"pg_\""
        ));
    }
    Options {
        data_dir,
        superuser,
    }
}

fn write_file(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| {
            die(&format!(
                "could not create file \"{}\": {e}",
                path.display()
            ))
        });
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .unwrap_or_else(|e| die(&format!("could not write file \"{}\": {e}", path.display())));
}

fn make_dir(path: &Path) {
    fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .unwrap_or_else(|e| {
            die(&format!(
                "could not create directory \"{}\": {e}",
                path.display()
            ))
        });
}

fn main() {
    let o = parse_args();
    let dir = &o.data_dir;
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                eprintln!(
                    "initdb: error: directory \"{0}\" exists but is not empty\n\
                     initdb: hint: If you want to create a new database system, either remove or empty the directory \"{0}\" or run initdb with an argument other than \"{0}\".",
                    dir.display()
                );
                std::process::exit(1);
            }
            println!(
                "fixing permissions on existing directory {} ... ok",
                dir.display()
            );
            let _ = fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            print!("creating directory {} ... ", dir.display());
            make_dir(dir);
            println!("ok");
        }
        Err(e) => die(&format!(
            "could not access directory \"{}\": {e}",
            dir.display()
        )),
    }
    println!(
        "The files belonging to this database system will be owned by user \"{}\".\n\
         The database superuser will be \"{}\".\n",
        std::env::var("USER").unwrap_or_else(|_| "root".into()),
        o.superuser
    );
    print!("creating subdirectories ... ");
    for sub in [
        "global",
        "base",
        "pg_wal",
        "pg_wal/archive_status",
        "pg_xact",
    ] {
        make_dir(&dir.join(sub));
    }
    for oid in [TEMPLATE1_OID, TEMPLATE0_OID, POSTGRES_OID] {
        make_dir(&dir.join("base").join(oid.to_string()));
    }
    println!("ok");
    print!("creating configuration files ... ");
    write_file(&dir.join("PG_VERSION"), &format!("{PG_VERSION}\n"));
    write_file(&dir.join("postgresql.toml"), &conf::default_toml());
    write_file(&dir.join("pg_hba.conf"), &conf::hba::default_hba_conf());
    write_file(
        &dir.join("pg_ident.conf"),
        "# User name maps (PostgreSQL's pg_ident.conf format).\n# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n",
    );
    println!("ok");
    print!("creating the first WAL segment and pg_control ... ");
    if let Err(e) = storage::recovery::bootstrap_cluster(
        dir,
        storage::recovery::generate_system_identifier(),
        true,
    ) {
        die(&e.message);
    }
    println!("ok");
    print!("creating the system catalogs ... ");
    let databases = [
        ("template1", TEMPLATE1_OID, true, true),
        ("template0", TEMPLATE0_OID, true, false),
        ("postgres", POSTGRES_OID, false, true),
    ]
    .map(
        |(name, oid, is_template, allow_connections)| storage::catalog::BootstrapDatabase {
            oid: storage::types::Oid(oid),
            name: name.into(),
            is_template,
            allow_connections,
        },
    );
    if let Err(e) = storage::catalog::bootstrap_catalogs(dir, true, &o.superuser, &databases) {
        die(&e.message);
    }
    println!("ok");
    println!(
        "\nSuccess. You can now start the database server using:\n\n    postmaster -D {}\n",
        dir.display()
    );
}
