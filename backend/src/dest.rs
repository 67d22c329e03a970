//! Where query results go: PostgreSQL's DestReceiver, reduced to what the
//! SQL layer emits. The protocol layer implements it on top of the client
//! socket; tests implement it with a Vec.

use pgerror::PgResult;

/// One column of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    pub name: String,
    /// pg_class OID of the source table, 0 when not a plain column.
    pub table_oid: u32,
    /// Attribute number in that table, 0 when not a plain column.
    pub column_attr: i16,
    pub type_oid: u32,
    /// pg_type.typlen (-1 for varlena, -2 for cstring).
    pub type_len: i16,
    pub type_mod: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// The SQL layer's output. Each call may fail when the client is gone.
pub trait Dest {
    fn row_description(&mut self, fields: &[FieldDesc]) -> PgResult<()>;
    /// One row in text format; `None` is SQL NULL.
    fn data_row(&mut self, values: &[Option<String>]) -> PgResult<()>;
    fn command_complete(&mut self, tag: &str) -> PgResult<()>;
    fn empty_query(&mut self) -> PgResult<()>;
    /// A NOTICE/WARNING/INFO for the client (not an error).
    fn notice(&mut self, notice: &pgerror::PgError) -> PgResult<()>;
    /// An Execute stopped at its row limit; the portal has more.
    fn portal_suspended(&mut self) -> PgResult<()>;

    /// COPY FROM STDIN: tells the client to send `ncols` text columns
    /// (CopyInResponse).
    fn copy_in_start(&mut self, _ncols: usize) -> PgResult<()> {
        Err(no_copy())
    }
    /// The next chunk of COPY data, `None` after the client's CopyDone; its
    /// CopyFail is an error. Chunks need not end at line boundaries.
    fn copy_in_read(&mut self) -> PgResult<Option<Vec<u8>>> {
        Err(no_copy())
    }
    /// COPY TO STDOUT: CopyOutResponse for `ncols` text columns.
    fn copy_out_start(&mut self, _ncols: usize) -> PgResult<()> {
        Err(no_copy())
    }
    /// One CopyData message.
    fn copy_out_data(&mut self, _data: &[u8]) -> PgResult<()> {
        Err(no_copy())
    }
    /// CopyDone.
    fn copy_out_done(&mut self) -> PgResult<()> {
        Err(no_copy())
    }
}

fn no_copy() -> pgerror::PgError {
    pgerror::PgError::unsupported("COPY is not supported in this context")
}

/// A Dest that records everything, for unit tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct VecDest {
    pub events: Vec<String>,
}

#[cfg(test)]
impl Dest for VecDest {
    fn row_description(&mut self, fields: &[FieldDesc]) -> PgResult<()> {
        let cols: Vec<String> = fields
            .iter()
            .map(|f| format!("{}:{}", f.name, f.type_oid))
            .collect();
        self.events.push(format!("T {}", cols.join(",")));
        Ok(())
    }
    fn data_row(&mut self, values: &[Option<String>]) -> PgResult<()> {
        let v: Vec<String> = values
            .iter()
            .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
            .collect();
        self.events.push(format!("D {}", v.join("|")));
        Ok(())
    }
    fn command_complete(&mut self, tag: &str) -> PgResult<()> {
        self.events.push(format!("C {tag}"));
        Ok(())
    }
    fn empty_query(&mut self) -> PgResult<()> {
        self.events.push("I".into());
        Ok(())
    }
    fn notice(&mut self, notice: &pgerror::PgError) -> PgResult<()> {
        self.events
            .push(format!("N {} {}", notice.severity.as_str(), notice.message));
        Ok(())
    }
    fn portal_suspended(&mut self) -> PgResult<()> {
        self.events.push("s".into());
        Ok(())
    }
}
