//! Table shapes: what the catalog says a table looks like, and creating or evolving a table
//! so a batch fits (`auto.create`, `auto.evolve`, DuckLake's allowed promotions).

use duckdb::params;

use super::{sql, sql_err, Lake, LakeError, TableColumns, LAKE};
use crate::batch::TableBatch;
use crate::decode::ColumnType;

impl Lake {
    pub(super) fn table_columns(&mut self, table: &str) -> Result<Option<TableColumns>, LakeError> {
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
        let Some(existing) = self.table_columns(table)? else {
            if !self.settings.auto_create {
                return Err(LakeError::TableMissing {
                    table: table.to_owned(),
                });
            }
            let cols: Vec<String> = data
                .columns
                .iter()
                .map(|(name, ty)| format!("{} {}", sql::ident(name), ty.sql()))
                .collect();
            self.conn
                .execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {table_ref} ({})",
                    cols.join(", ")
                ))
                .map_err(sql_err(format!("cannot create table `{table}`")))?;
            self.tables.remove(table);
            return Ok(());
        };
        let mut changed = false;
        for (name, ty) in &data.columns {
            let found = existing.iter().find(|(c, _)| c.eq_ignore_ascii_case(name));
            match found {
                None if self.settings.auto_evolve => {
                    self.conn
                        .execute_batch(&format!(
                            "ALTER TABLE {table_ref} ADD COLUMN {} {}",
                            sql::ident(name),
                            ty.sql()
                        ))
                        .map_err(sql_err(format!("cannot add column `{name}` to `{table}`")))?;
                    changed = true;
                }
                None => {
                    return Err(LakeError::ColumnMissing {
                        table: table.to_owned(),
                        column: name.clone(),
                        ty: ty.clone(),
                    })
                }
                // A column type the sink does not model: let DuckDB cast on append.
                Some((_, None)) => {}
                Some((_, Some(old))) if ty.fits_into(old) => {}
                Some((col, Some(old))) if self.settings.auto_evolve && old.promotes_to(ty) => {
                    self.conn
                        .execute_batch(&format!(
                            "ALTER TABLE {table_ref} ALTER COLUMN {} SET DATA TYPE {}",
                            sql::ident(col),
                            ty.sql()
                        ))
                        .map_err(sql_err(format!(
                            "cannot widen column `{col}` of `{table}` to {ty}"
                        )))?;
                    changed = true;
                }
                Some((col, Some(old))) => {
                    return Err(LakeError::TypeChange {
                        table: table.to_owned(),
                        column: col.clone(),
                        old: old.sql(),
                        new: ty.clone(),
                        hint: if old.promotes_to(ty) {
                            " without auto.evolve=true"
                        } else {
                            " (not an allowed promotion)"
                        },
                    })
                }
            }
        }
        if changed {
            self.tables.remove(table);
        }
        Ok(())
    }
}
