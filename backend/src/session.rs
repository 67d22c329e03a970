//! Per-connection state shared by the protocol loop and the SQL layer.

use std::time::SystemTime;

/// What the backend knows about its client and its settings.
pub struct Session {
    /// This session's settings: the server's, then the startup packet, then SET.
    pub settings: conf::Settings,
    pub user_name: String,
    pub database_name: String,
    pub backend_pid: i32,
    pub backend_start: SystemTime,
    /// Transaction-block state, owned by `sql::xact`.
    pub xact: crate::sql::xact::TransactionState,
    /// The storage engine; `None` in unit tests of table-less SQL.
    pub engine: Option<crate::engine::Engine>,
    /// The current transaction as the engine sees it (`sql::tables`).
    pub storage: crate::sql::tables::StorageXact,
    pub relcache: crate::sql::tables::RelCache,
    /// Prepared statements by name (`""`: the protocol's unnamed one),
    /// from Parse and PREPARE alike (`sql::prepared`).
    pub prepared: std::collections::HashMap<String, crate::sql::prepared::PreparedStatement>,
    /// Portals by name (`""`: the unnamed one), from Bind; they last no
    /// longer than their transaction (`sql::portal`).
    pub portals: std::collections::HashMap<String, crate::sql::portal::Portal>,
}

impl Session {
    /// A session that has just finished its start-up (no transaction open).
    pub fn new(
        settings: conf::Settings,
        user_name: String,
        database_name: String,
        backend_pid: i32,
    ) -> Session {
        Session {
            settings,
            user_name,
            database_name,
            backend_pid,
            backend_start: SystemTime::now(),
            xact: Default::default(),
            engine: None,
            storage: Default::default(),
            relcache: Default::default(),
            prepared: Default::default(),
            portals: Default::default(),
        }
    }
}
