//! Table shapes: what the catalog says a table looks like, and creating or evolving a table
//! so a batch fits (`auto.create`, `auto.evolve`, DuckLake's allowed promotions).

use duckdb::params;

use super::{sql, sql_err, Lake, LakeError, LAKE};
use crate::batch::TableBatch;
use crate::decode::ColumnType;
use crate::shape::{fit, Fit, TableColumns};

impl Lake {
    /// The table's columns as the catalog has them (cached until the sink changes them);
    /// `None` when the table does not exist.
    pub fn table_columns(&mut self, table: &str) -> Result<Option<TableColumns>, LakeError> {
        if let Some(cols) = self.tables.get(table) {
            return Ok(Some(cols.clone()));
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT column_name, data_type FROM information_schema.columns
                 WHERE table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            )
            .map_err(sql_err(format!("cannot describe table `{table}`")))?;
        let cols: TableColumns = stmt
            .query_map(params![LAKE, self.settings.schema, table], |r| {
                let name: String = r.get(0)?;
                let ty: String = r.get(1)?;
                Ok((name, ColumnType::from_duckdb(&ty)))
            })
            .and_then(|rows| rows.collect())
            .map_err(sql_err(format!("cannot describe table `{table}`")))?;
        if cols.is_empty() {
            return Ok(None);
        }
        self.tables.insert(table.to_owned(), cols.clone());
        Ok(Some(cols))
    }

    /// Creates or evolves `table` so every column of `data` fits.
    pub(super) fn ensure_table(&mut self, table: &str, data: &TableBatch) -> Result<(), LakeError> {
        let table_ref = self.table_ref(table);
        let existing = self.table_columns(table)?;
        let evolution = self.settings.evolution;
        let mut changed = false;
        let mut create = Vec::new();
        for (name, ty) in &data.columns {
            match fit(table, existing.as_ref(), name, ty, evolution)? {
                Fit::Fits if existing.is_none() => {
                    create.push(format!("{} {}", sql::ident(name), ty.sql()))
                }
                Fit::Fits => {}
                Fit::Add => {
                    self.conn
                        .execute_batch(&format!(
                            "ALTER TABLE {table_ref} ADD COLUMN {} {}",
                            sql::ident(name),
                            ty.sql()
                        ))
                        .map_err(sql_err(format!("cannot add column `{name}` to `{table}`")))?;
                    changed = true;
                }
                Fit::Widen(col) => {
                    self.conn
                        .execute_batch(&format!(
                            "ALTER TABLE {table_ref} ALTER COLUMN {} SET DATA TYPE {}",
                            sql::ident(&col),
                            ty.sql()
                        ))
                        .map_err(sql_err(format!(
                            "cannot widen column `{col}` of `{table}` to {ty}"
                        )))?;
                    changed = true;
                }
            }
        }
        if existing.is_none() {
            self.conn
                .execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {table_ref} ({})",
                    create.join(", ")
                ))
                .map_err(sql_err(format!("cannot create table `{table}`")))?;
            changed = true;
        }
        if changed {
            self.tables.remove(table);
        }
        Ok(())
    }
}
