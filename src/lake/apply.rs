//! Writing one table's buffered changes inside the flush transaction.
//!
//! Append tables: the rows go in as whole Arrow columns, one `INSERT … SELECT` from a scan of
//! the record batch (`scan.rs`).
//! Keyed tables (upserts): the batch already holds one change per key; they are staged in a
//! temporary table (the same scan), every staged key is deleted from the lake table (`DELETE … USING`), and
//! the upserted rows are inserted from the stage (`INSERT … SELECT`). A truncate empties the
//! table first. All of it is part of the flush's one DuckLake transaction.

use super::{arrow, sql, sql_err, Lake, LakeError};
use crate::batch::{RowOp, TableBatch};

/// Temporary table (in DuckDB's `temp` catalog, not the lake) that stages a keyed table's
/// changes during a flush.
const STAGE: &str = "__ducklake_sink_stage";
/// Stage column telling upserts (true) from deletes (false).
const UPSERT_FLAG: &str = "__ducklake_sink_upsert";

/// What a flush did to one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// Rows inserted (appended, or upserted).
    pub inserted: u64,
    /// Keys deleted (delete changes; rows replaced by upserts are not counted).
    pub deleted: u64,
    /// Whether the table was truncated.
    pub truncated: bool,
}

impl TableCounts {
    /// What applying `data` does, as the batch says (for a flush found already committed).
    pub fn of(data: &TableBatch) -> Self {
        Self {
            inserted: data.inserts() as u64,
            deleted: data.deletes() as u64,
            truncated: data.truncate,
        }
    }
}

impl Lake {
    /// Applies `data` to `table` (creating or evolving it as configured).
    pub(super) fn write_table(
        &mut self,
        table: &str,
        data: &TableBatch,
    ) -> Result<TableCounts, LakeError> {
        let mut counts = TableCounts::default();
        self.note_written(table);
        let exists = self.table_columns(table)?.is_some();
        if data.truncate && exists {
            self.conn
                .execute(&format!("DELETE FROM {}", self.table_ref(table)), [])
                .map_err(sql_err(format!("cannot truncate table `{table}`")))?;
            counts.truncated = true;
        }
        if data.rows.is_empty() {
            return Ok(counts);
        }
        let Some(key) = &data.key else {
            self.ensure_table(table, data)?;
            counts.inserted = self.append(table, data)?;
            return Ok(counts);
        };
        // Deletes alone never create a table: there is nothing to delete from.
        if !exists && data.inserts() == 0 {
            return Ok(counts);
        }
        self.ensure_table(table, data)?;
        self.stage(table, data)?;
        let table_ref = self.table_ref(table);
        let stage_ref = sql::qualified("temp", "main", STAGE);
        let on: Vec<String> = key
            .iter()
            .map(|k| format!("t.{col} = s.{col}", col = sql::ident(k)))
            .collect();
        self.conn
            .execute(
                &format!(
                    "DELETE FROM {table_ref} AS t USING {stage_ref} AS s WHERE {}",
                    on.join(" AND ")
                ),
                [],
            )
            .map_err(sql_err(format!("cannot apply deletes to table `{table}`")))?;
        let cols: Vec<String> = data.columns.iter().map(|(n, _)| sql::ident(n)).collect();
        let cols = cols.join(", ");
        if data.inserts() > 0 {
            self.conn
                .execute(
                    &format!(
                        "INSERT INTO {table_ref} ({cols}) SELECT {cols} FROM {stage_ref} WHERE {}",
                        sql::ident(UPSERT_FLAG)
                    ),
                    [],
                )
                .map_err(sql_err(format!("cannot apply upserts to table `{table}`")))?;
        }
        counts.inserted = data.inserts() as u64;
        counts.deleted = data.deletes() as u64;
        Ok(counts)
    }

    fn append(&mut self, table: &str, data: &TableBatch) -> Result<u64, LakeError> {
        let columns = arrow::record_batch(data, None).map_err(|e| LakeError::Sql {
            context: format!("cannot append to table `{table}`: {e}"),
            source: super::DbError::from(duckdb::Error::AppendError),
        })?;
        let cols: Vec<String> = data.columns.iter().map(|(n, _)| sql::ident(n)).collect();
        let cols = cols.join(", ");
        let batch = super::scan::Registered::new(columns);
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {} ({cols}) SELECT {cols} FROM {}({}::UBIGINT)",
                    self.table_ref(table),
                    super::scan::FUNCTION,
                    batch.id()
                ),
                [],
            )
            .map_err(sql_err(format!("cannot append to table `{table}`")))?;
        Ok(data.rows.len() as u64)
    }

    /// Fills the stage table with `data`'s rows and whether each upserts, in the lake
    /// table's own column types (DuckDB casts on insert).
    fn stage(&mut self, table: &str, data: &TableBatch) -> Result<(), LakeError> {
        let cols: Vec<String> = data.columns.iter().map(|(n, _)| sql::ident(n)).collect();
        self.conn
            .execute_batch(&format!(
                "CREATE OR REPLACE TEMP TABLE {stage} AS SELECT {} FROM {} LIMIT 0;
                 ALTER TABLE {stage_ref} ADD COLUMN {flag} BOOLEAN;",
                cols.join(", "),
                self.table_ref(table),
                stage = sql::ident(STAGE),
                stage_ref = sql::qualified("temp", "main", STAGE),
                flag = sql::ident(UPSERT_FLAG),
            ))
            .map_err(sql_err(format!("cannot stage changes of table `{table}`")))?;
        let flags: Vec<bool> = data.ops.iter().map(|op| *op == RowOp::Upsert).collect();
        let columns =
            arrow::record_batch(data, Some((UPSERT_FLAG, &flags))).map_err(|e| LakeError::Sql {
                context: format!("cannot stage changes of table `{table}`: {e}"),
                source: super::DbError::from(duckdb::Error::AppendError),
            })?;
        let mut names: Vec<String> = data.columns.iter().map(|(n, _)| sql::ident(n)).collect();
        names.push(sql::ident(UPSERT_FLAG));
        let names = names.join(", ");
        // Scanned straight from the Arrow columns, as appends are: the appender copied every
        // row into a buffer of its own first.
        let batch = super::scan::Registered::new(columns);
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {} ({names}) SELECT {names} FROM {}({}::UBIGINT)",
                    sql::qualified("temp", "main", STAGE),
                    super::scan::FUNCTION,
                    batch.id()
                ),
                [],
            )
            .map_err(sql_err(format!("cannot stage changes of table `{table}`")))?;
        Ok(())
    }
}
