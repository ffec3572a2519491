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
        let table_ref = self.table_ref(table);
        let cols: Vec<String> = data.columns.iter().map(|(n, _)| sql::ident(n)).collect();
        let cols = cols.join(", ");
        match self.key_casts(table, key)? {
            Some(casts) => {
                // Straight from the Arrow columns: the delete scans a batch of the key
                // columns alone, cast to the lake's types so the join compares like with
                // like; the insert scans the whole batch, and casts as appends do. Staging
                // into a temporary table first cost as much as the delete and insert together.
                let flags: Vec<bool> = data.ops.iter().map(|op| *op == RowOp::Upsert).collect();
                let columns =
                    arrow::record_batch(data, Some((UPSERT_FLAG, &flags))).map_err(|e| {
                        LakeError::Sql {
                            context: format!("cannot apply changes to table `{table}`: {e}"),
                            source: super::DbError::from(duckdb::Error::AppendError),
                        }
                    })?;
                let positions: Vec<usize> = key
                    .iter()
                    .filter_map(|k| data.columns.iter().position(|(n, _)| n == k))
                    .collect();
                let keys = columns.project(&positions).map_err(|e| LakeError::Sql {
                    context: format!("cannot apply deletes to table `{table}`: {e}"),
                    source: super::DbError::from(duckdb::Error::AppendError),
                })?;
                let keys = super::scan::Registered::new(keys);
                let on: Vec<String> = key
                    .iter()
                    .zip(&casts)
                    .map(|(k, ty)| format!("t.{col} = CAST(s.{col} AS {ty})", col = sql::ident(k)))
                    .collect();
                self.conn
                    .execute(
                        &format!(
                            "DELETE FROM {table_ref} AS t USING {}({}::UBIGINT) AS s WHERE {}",
                            super::scan::FUNCTION,
                            keys.id(),
                            on.join(" AND ")
                        ),
                        [],
                    )
                    .map_err(sql_err(format!("cannot apply deletes to table `{table}`")))?;
                if data.inserts() > 0 {
                    let all = super::scan::Registered::new(columns);
                    self.conn
                        .execute(
                            &format!(
                                "INSERT INTO {table_ref} ({cols}) SELECT {cols} FROM {}({}::UBIGINT) WHERE {}",
                                super::scan::FUNCTION,
                                all.id(),
                                sql::ident(UPSERT_FLAG)
                            ),
                            [],
                        )
                        .map_err(sql_err(format!("cannot apply upserts to table `{table}`")))?;
                }
            }
            None => self.apply_staged(table, data, key, &cols)?,
        }
        counts.inserted = data.inserts() as u64;
        counts.deleted = data.deletes() as u64;
        Ok(counts)
    }

    /// The lake's SQL type of each key column, or `None` when one is a type this crate does
    /// not model (a table made by hand): those keys go through a staged copy in the lake
    /// table's own types.
    fn key_casts(&mut self, table: &str, key: &[String]) -> Result<Option<Vec<String>>, LakeError> {
        let Some(columns) = self.table_columns(table)? else {
            return Ok(None);
        };
        let mut casts = Vec::with_capacity(key.len());
        for k in key {
            let folded = k.to_lowercase();
            let ty = columns
                .iter()
                .find(|(name, _)| *name == *k || name.to_lowercase() == folded)
                .and_then(|(_, ty)| ty.as_ref());
            match ty {
                Some(ty) => casts.push(ty.sql()),
                None => return Ok(None),
            }
        }
        Ok(Some(casts))
    }

    /// Keyed changes through a temporary table in the lake table's types: every staged key
    /// is deleted, then the upserted rows inserted.
    fn apply_staged(
        &mut self,
        table: &str,
        data: &TableBatch,
        key: &[String],
        cols: &str,
    ) -> Result<(), LakeError> {
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
        Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Instant;

    use super::super::{Lake, LakeSettings};
    use crate::batch::{Batch, Position, Target, TopicPartition};
    use crate::decode::{Cell, Change, ColumnType, Datum, Name, Row};
    use crate::shape::Evolution;

    fn lake(dir: &std::path::Path) -> Lake {
        Lake::open(LakeSettings {
            connector: "c".into(),
            catalog: dir.join("meta.ducklake").display().to_string(),
            data_path: dir.join("data").display().to_string(),
            object_store: None,
            schema: "main".into(),
            evolution: Evolution {
                auto_create: true,
                auto_evolve: true,
            },
            data_inlining_row_limit: 0,
            tuning: Default::default(),
            rewrite_delete_threshold: 0.1,
            maintenance_max_files: 4,
        })
        .unwrap()
    }

    fn row(cells: &[(&str, ColumnType, Datum)]) -> Row {
        Row {
            cells: cells
                .iter()
                .map(|(name, ty, value)| Cell {
                    name: Name::from(*name),
                    ty: Some(ty.clone()),
                    value: value.clone(),
                })
                .collect(),
        }
    }

    /// Buffers `changes` as the pipeline does and writes them to `table`.
    fn apply(lake: &mut Lake, table: &str, changes: Vec<Change>) {
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let mut batch = Batch::default();
        let target = Target {
            table,
            columns: None,
            evolution: Evolution {
                auto_create: true,
                auto_evolve: true,
            },
        };
        for (offset, change) in changes.into_iter().enumerate() {
            let at = Position {
                tp: &tp,
                offset: offset as i64,
                timestamp_ms: None,
                bytes: 1,
                now: Instant::now(),
            };
            batch.put(&target, change, &at).unwrap();
        }
        lake.write_table(table, &batch.tables[table]).unwrap();
    }

    fn rows(lake: &Lake, sql: &str) -> Vec<String> {
        let mut stmt = lake.connection().prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn uuid(n: u8) -> Datum {
        Datum::Text(format!("00000000-0000-0000-0000-0000000000{n:02}"))
    }

    /// Keys held in other types than the lake's (a BIGINT value for an INTEGER column, UUID
    /// text for a UUID column) still find their rows: upserts replace, deletes remove, and a
    /// moved key removes its old row.
    #[test]
    fn keyed_changes_find_rows_whose_key_types_differ_from_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = lake(dir.path());
        lake.connection()
            .execute_batch(
                "CREATE TABLE k (id INTEGER, u UUID, v VARCHAR);
                 INSERT INTO k VALUES (1, '00000000-0000-0000-0000-000000000001', 'a'),
                   (2, '00000000-0000-0000-0000-000000000002', 'b'),
                   (3, '00000000-0000-0000-0000-000000000003', 'c');",
            )
            .unwrap();
        let key = |id: i64| {
            row(&[
                ("id", ColumnType::BigInt, Datum::Int(id)),
                ("u", ColumnType::Uuid, uuid(id as u8)),
            ])
        };
        let full = |id: i64, v: &str| {
            row(&[
                ("id", ColumnType::BigInt, Datum::Int(id)),
                ("u", ColumnType::Uuid, uuid(id as u8)),
                ("v", ColumnType::Varchar, Datum::Text(v.into())),
            ])
        };
        apply(
            &mut lake,
            "k",
            vec![
                Change::Upsert {
                    key: key(1),
                    row: full(1, "A"),
                    old_key: None,
                },
                Change::Delete { key: key(2) },
                Change::Upsert {
                    key: key(4),
                    row: full(4, "d"),
                    old_key: None,
                },
                Change::Upsert {
                    key: key(5),
                    row: full(5, "e"),
                    old_key: Some(key(3)),
                },
            ],
        );
        assert_eq!(
            rows(
                &lake,
                "SELECT id || ':' || u || ':' || v FROM k ORDER BY id"
            ),
            [
                "1:00000000-0000-0000-0000-000000000001:A",
                "4:00000000-0000-0000-0000-000000000004:d",
                "5:00000000-0000-0000-0000-000000000005:e",
            ]
        );
    }

    /// A key column of a type the crate does not model (a table made by hand) goes through
    /// the staged path, with the same outcome.
    #[test]
    fn keys_of_unmodelled_types_are_applied_through_a_stage() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = lake(dir.path());
        lake.connection()
            .execute_batch(
                "CREATE TABLE h (id HUGEINT, v VARCHAR);
                 INSERT INTO h VALUES (1, 'a'), (2, 'b');",
            )
            .unwrap();
        assert_eq!(lake.key_casts("h", &["id".into()]).unwrap(), None);
        let key = |id: i64| row(&[("id", ColumnType::BigInt, Datum::Int(id))]);
        apply(
            &mut lake,
            "h",
            vec![
                Change::Upsert {
                    key: key(1),
                    row: row(&[
                        ("id", ColumnType::BigInt, Datum::Int(1)),
                        ("v", ColumnType::Varchar, Datum::Text("A".into())),
                    ]),
                    old_key: None,
                },
                Change::Delete { key: key(2) },
            ],
        );
        assert_eq!(
            rows(&lake, "SELECT id || ':' || v FROM h ORDER BY id"),
            ["1:A"]
        );
    }
}
