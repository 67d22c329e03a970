//! The kinds of process the postmaster starts, and their binaries and titles.

/// A process type. Stored in shared memory as its `u32` discriminant.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcKind {
    Backend = 1,
    Startup = 2,
    Checkpointer = 3,
    BgWriter = 4,
    WalWriter = 5,
    AutovacLauncher = 6,
    AutovacWorker = 7,
    Archiver = 8,
}

impl ProcKind {
    pub const ALL: [ProcKind; 8] = [
        ProcKind::Backend,
        ProcKind::Startup,
        ProcKind::Checkpointer,
        ProcKind::BgWriter,
        ProcKind::WalWriter,
        ProcKind::AutovacLauncher,
        ProcKind::AutovacWorker,
        ProcKind::Archiver,
    ];

    pub fn from_u32(v: u32) -> Option<ProcKind> {
        ProcKind::ALL.into_iter().find(|k| *k as u32 == v)
    }

    /// The binary that runs this kind, next to the postmaster's executable.
    pub fn binary(self) -> &'static str {
        match self {
            ProcKind::Backend => "backend",
            ProcKind::Startup => "startup",
            ProcKind::Checkpointer => "checkpointer",
            ProcKind::BgWriter => "bgwriter",
            ProcKind::WalWriter => "walwriter",
            ProcKind::AutovacLauncher | ProcKind::AutovacWorker => "autovacuum",
            ProcKind::Archiver => "archiver",
        }
    }

    /// The name PostgreSQL uses in log lines and `pg_stat_activity.backend_type`.
    pub fn description(self) -> &'static str {
        match self {
            ProcKind::Backend => "client backend",
            ProcKind::Startup => "startup",
            ProcKind::Checkpointer => "checkpointer",
            ProcKind::BgWriter => "background writer",
            ProcKind::WalWriter => "walwriter",
            ProcKind::AutovacLauncher => "autovacuum launcher",
            ProcKind::AutovacWorker => "autovacuum worker",
            ProcKind::Archiver => "archiver",
        }
    }

    /// What the postmaster calls it when it exits (`checkpointer process`).
    pub fn process_name(self) -> &'static str {
        match self {
            ProcKind::Backend => "server process",
            ProcKind::Startup => "startup process",
            ProcKind::Checkpointer => "checkpointer process",
            ProcKind::BgWriter => "background writer process",
            ProcKind::WalWriter => "WAL writer process",
            ProcKind::AutovacLauncher => "autovacuum launcher process",
            ProcKind::AutovacWorker => "autovacuum worker process",
            ProcKind::Archiver => "archiver process",
        }
    }

    /// Auxiliary processes have one fixed proc entry each.
    pub fn aux_index(self) -> Option<usize> {
        match self {
            ProcKind::Startup => Some(0),
            ProcKind::Checkpointer => Some(1),
            ProcKind::BgWriter => Some(2),
            ProcKind::WalWriter => Some(3),
            ProcKind::Archiver => Some(4),
            ProcKind::AutovacLauncher => Some(5),
            ProcKind::Backend | ProcKind::AutovacWorker => None,
        }
    }
}

/// Number of fixed auxiliary proc entries (see [`ProcKind::aux_index`]).
pub const NUM_AUX_PROCS: usize = 6;
