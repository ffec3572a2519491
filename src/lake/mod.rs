//! The lake: one DuckDB connection with the DuckLake catalog attached as `lake`, owned by one
//! thread ([`LakeHandle`]). Each flush is one DuckLake transaction holding the rows of every
//! table, the covered offsets in `__ducklake_sink_offsets` and the lineage commit message, so
//! data and offsets become visible together or not at all.

mod arrow;
pub mod sql;
mod thread;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use duckdb::{params, Connection};
use serde_json::json;

use crate::batch::{Batch, TableBatch, TopicPartition};
use crate::config::ConnectorConfig;
use crate::decode::ColumnType;

pub use thread::{LakeHandle, RetryPolicy};

/// Name the DuckLake catalog is attached under.
pub const LAKE: &str = "lake";
/// Table holding, per connector and partition, the next offset to read.
pub const OFFSETS_TABLE: &str = "__ducklake_sink_offsets";

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("the DuckDB extension `{name}` is not installed ({source}); run scripts/setup.sh, which installs it offline into ~/.duckdb/extensions/v1.5.5/")]
    ExtensionMissing {
        name: String,
        source: Box<duckdb::Error>,
    },
    #[error("cannot attach DuckLake catalog `{catalog}` (data path `{data_path}`): {source}")]
    Attach {
        catalog: String,
        data_path: String,
        source: Box<duckdb::Error>,
    },
    #[error("DuckLake catalog `{catalog}` is in use by another process; a DuckDB-file catalog admits one process at a time (stop the other worker or `ducklake-sink` command, or use a postgres: catalog): {source}")]
    Locked {
        catalog: String,
        source: Box<duckdb::Error>,
    },
    #[error("{context}: {source}")]
    Sql {
        context: String,
        source: Box<duckdb::Error>,
    },
    #[error(
        "table `{table}` does not exist and auto.create=false; create it or set auto.create=true"
    )]
    TableMissing { table: String },
    #[error("table `{table}` has no column `{column}` ({ty}) and auto.evolve=false; add it or set auto.evolve=true")]
    ColumnMissing {
        table: String,
        column: String,
        ty: ColumnType,
    },
    #[error("table `{table}`, column `{column}`: records carry {new} but the column is {old}, and DuckLake cannot change {old} to {new}{hint}")]
    TypeChange {
        table: String,
        column: String,
        old: String,
        new: ColumnType,
        hint: &'static str,
    },
    /// Another worker claimed the partition after this one did: this worker is a zombie
    /// (paused past its session, or split from the group) and must not commit.
    #[error("fenced: `{topic}` partition {partition} was claimed by another worker (lake epoch is no longer {epoch}); this worker's uncommitted records for it were discarded and the new owner reads them again from the lake offsets")]
    Fenced {
        topic: String,
        partition: i32,
        epoch: i64,
    },
    #[error("the lake thread has stopped")]
    Gone,
}

impl LakeError {
    /// A commit that lost against a concurrent writer (another worker's flush or claim).
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Sql { source, .. } => {
                let text = source.to_string();
                text.contains("Failed to commit") || text.contains("onflict")
            }
            _ => false,
        }
    }

    /// Failures that a later attempt may not hit (catalog unreachable or restarting, commit
    /// conflicts between workers, a catalog being initialised by another worker). Judged by
    /// DuckDB's error text: its error codes do not tell these apart.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Locked { .. } => true,
            Self::Sql { source, .. } | Self::Attach { source, .. } => {
                let text = source.to_string();
                [
                    "onflict",
                    "Failed to commit",
                    "lock",
                    "connect",
                    "Connection",
                    "timeout",
                    "IO Error",
                    "server closed",
                    "terminating",
                    "shutting down",
                    "starting up",
                    // Two workers initialising one catalog at the same moment.
                    "duplicate key",
                    "already exists",
                ]
                .iter()
                .any(|needle| text.contains(needle))
            }
            _ => false,
        }
    }
}

fn sql_err(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> LakeError {
    let context = context.into();
    move |source| LakeError::Sql {
        context,
        source: Box::new(source),
    }
}

/// A partition as a worker holds it after claiming it: where to resume and the epoch that
/// proves ownership in every later commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Next offset to read; `None` when nothing of the partition was ever committed.
    pub next_offset: Option<i64>,
    pub epoch: i64,
    /// Kafka timestamp of the record at `next_offset - 1`, when known.
    pub last_timestamp_ms: Option<i64>,
}

/// Data files before and after a maintenance run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCounts {
    pub before: u64,
    pub after: u64,
}

/// What one committed flush produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushOutcome {
    pub snapshot_id: Option<i64>,
    pub rows: u64,
    /// Time spent appending rows (DDL included) and committing (offsets, lineage, COMMIT).
    pub append: std::time::Duration,
    pub commit: std::time::Duration,
}

/// Lake-side settings taken from the connector.
#[derive(Debug, Clone)]
pub struct LakeSettings {
    pub connector: String,
    pub catalog: String,
    pub data_path: String,
    pub schema: String,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub data_inlining_row_limit: u64,
}

impl From<&ConnectorConfig> for LakeSettings {
    fn from(c: &ConnectorConfig) -> Self {
        Self {
            connector: c.name.clone(),
            catalog: c.catalog.clone(),
            data_path: c.data_path.clone(),
            schema: c.schema.clone(),
            auto_create: c.auto_create,
            auto_evolve: c.auto_evolve,
            data_inlining_row_limit: c.data_inlining_row_limit,
        }
    }
}

/// Column names and types of a lake table as the catalog reports them (`None`: a type the
/// sink does not create; values are cast by DuckDB on append).
type TableColumns = Vec<(String, Option<ColumnType>)>;

/// The connection and what it knows about the lake's tables. Not `Sync`: one thread owns it.
pub struct Lake {
    conn: Connection,
    settings: LakeSettings,
    tables: HashMap<String, TableColumns>,
}

impl Lake {
    /// Opens DuckDB in memory, loads DuckLake (offline) and attaches the catalog, creating the
    /// schema and the offsets table when missing.
    pub fn open(settings: LakeSettings) -> Result<Self, LakeError> {
        let conn = Connection::open_in_memory().map_err(sql_err("cannot start DuckDB"))?;
        // Extensions come from the local extension directory (scripts/setup.sh); never try
        // the network, whose failure would only hide the real problem.
        conn.execute_batch("SET autoinstall_known_extensions = false")
            .map_err(sql_err("cannot configure DuckDB"))?;
        load_extension(&conn, "ducklake")?;
        load_extension(&conn, "icu")?;
        let catalog = settings.catalog.as_str();
        if catalog.starts_with("postgres:") {
            load_extension(&conn, "postgres_scanner")?;
        } else if catalog.starts_with("sqlite:") {
            load_extension(&conn, "sqlite_scanner")?;
        } else {
            create_parent_dir(catalog);
        }
        let local_data = !settings.data_path.contains("://");
        if local_data {
            let _ = std::fs::create_dir_all(&settings.data_path);
        }
        let attach = format!(
            "ATTACH {} AS {} (DATA_PATH {}, DATA_INLINING_ROW_LIMIT {})",
            sql::literal(&format!("ducklake:{catalog}")),
            sql::ident(LAKE),
            sql::literal(&settings.data_path),
            settings.data_inlining_row_limit
        );
        conn.execute_batch(&attach).map_err(|source| {
            let catalog = crate::config::redact_catalog(catalog);
            if source.to_string().contains("Could not set lock") {
                LakeError::Locked {
                    catalog,
                    source: Box::new(source),
                }
            } else {
                LakeError::Attach {
                    catalog,
                    data_path: settings.data_path.clone(),
                    source: Box::new(source),
                }
            }
        })?;
        let lake = Self {
            conn,
            settings,
            tables: HashMap::new(),
        };
        lake.prepare()?;
        Ok(lake)
    }

    fn schema_ref(&self) -> String {
        format!("{}.{}", sql::ident(LAKE), sql::ident(&self.settings.schema))
    }

    fn table_ref(&self, table: &str) -> String {
        sql::qualified(LAKE, &self.settings.schema, table)
    }

    fn prepare(&self) -> Result<(), LakeError> {
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {offsets} (
                 connector VARCHAR, topic VARCHAR, \"partition\" INTEGER, next_offset BIGINT,
                 topic_id VARCHAR, epoch BIGINT, updated_at TIMESTAMP WITH TIME ZONE,
                 last_timestamp_ms BIGINT);
             USE {schema};",
            schema = self.schema_ref(),
            offsets = self.table_ref(OFFSETS_TABLE),
        );
        self.conn
            .execute_batch(&ddl)
            .map_err(sql_err("cannot create the schema and offsets table"))
    }

    /// Takes ownership of `partitions` for this worker: in one transaction, bumps each
    /// partition's epoch (creating its row when missing) and returns where to resume. Any
    /// worker still holding an older epoch can no longer commit for these partitions.
    pub fn claim(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Claim>, LakeError> {
        self.in_transaction("cannot claim partitions", |lake| {
            let offsets = lake.table_ref(OFFSETS_TABLE);
            let context = "cannot claim partitions";
            let mut select = lake
                .conn
                .prepare(&format!(
                    "SELECT next_offset, epoch, last_timestamp_ms FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"
                ))
                .map_err(sql_err(context))?;
            let mut claims = BTreeMap::new();
            for tp in partitions {
                let current = select
                    .query_map(params![lake.settings.connector, tp.topic, tp.partition], |r| {
                        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql_err(context))?;
                let claim = match current.first() {
                    Some(&(next_offset, epoch, last_timestamp_ms)) => {
                        let epoch = epoch.unwrap_or(0) + 1;
                        lake.conn
                            .execute(
                                &format!(
                                    "UPDATE {offsets} SET epoch = ?, updated_at = now() WHERE connector = ? AND topic = ? AND \"partition\" = ?"
                                ),
                                params![epoch, lake.settings.connector, tp.topic, tp.partition],
                            )
                            .map_err(sql_err(context))?;
                        Claim {
                            next_offset,
                            epoch,
                            last_timestamp_ms,
                        }
                    }
                    None => {
                        lake.conn
                            .execute(
                                &format!(
                                    "INSERT INTO {offsets} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                                     VALUES (?, ?, ?, NULL, NULL, 1, now(), NULL)"
                                ),
                                params![lake.settings.connector, tp.topic, tp.partition],
                            )
                            .map_err(sql_err(context))?;
                        Claim {
                            next_offset: None,
                            epoch: 1,
                            last_timestamp_ms: None,
                        }
                    }
                };
                claims.insert(tp.clone(), claim);
            }
            let (message, extra) = (
                format!("{}: claimed {} partitions", lake.settings.connector, claims.len()),
                json!({
                    "kind": "claim",
                    "connector": lake.settings.connector,
                    "claimed": claims.iter().map(|(tp, c)| json!({"topic": tp.topic, "partition": tp.partition, "epoch": c.epoch, "next_offset": c.next_offset})).collect::<Vec<_>>(),
                })
                .to_string(),
            );
            lake.set_commit_message(&message, &extra)?;
            Ok(claims)
        })
    }

    /// Sets, or with `next_offset = None` forgets, the stored offset of partitions (the
    /// `reset` command). Bumps the epoch, so a worker still running is fenced.
    pub fn reset_offsets(
        &mut self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> Result<(), LakeError> {
        self.in_transaction("cannot reset offsets", |lake| {
            let offsets = lake.table_ref(OFFSETS_TABLE);
            for (tp, next) in partitions {
                let old_epoch: Option<i64> = lake
                    .conn
                    .query_row(
                        &format!("SELECT max(epoch) FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"),
                        params![lake.settings.connector, tp.topic, tp.partition],
                        |r| r.get(0),
                    )
                    .map_err(sql_err("cannot reset offsets"))?;
                lake.conn
                    .execute(
                        &format!("DELETE FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"),
                        params![lake.settings.connector, tp.topic, tp.partition],
                    )
                    .map_err(sql_err("cannot reset offsets"))?;
                if let Some(next) = next {
                    lake.conn
                        .execute(
                            &format!(
                                "INSERT INTO {offsets} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                                 VALUES (?, ?, ?, ?, NULL, ?, now(), NULL)"
                            ),
                            params![lake.settings.connector, tp.topic, tp.partition, next, old_epoch.unwrap_or(0) + 1],
                        )
                        .map_err(sql_err("cannot reset offsets"))?;
                }
            }
            let listed: Vec<String> = partitions
                .iter()
                .map(|(tp, n)| format!("{}[{}]={}", tp.topic, tp.partition, n.map_or("forgotten".to_owned(), |n| n.to_string())))
                .collect();
            lake.set_commit_message(
                &format!("{}: offsets reset by operator: {}", lake.settings.connector, listed.join(" ")),
                &json!({"kind": "reset", "connector": lake.settings.connector, "reset": listed}).to_string(),
            )
        })
    }

    /// Partitions this connector has rows for, with their stored offsets.
    pub fn stored_partitions(
        &self,
        topic: &str,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, LakeError> {
        let q = format!(
            "SELECT \"partition\", next_offset FROM {} WHERE connector = ? AND topic = ? ORDER BY 1",
            self.table_ref(OFFSETS_TABLE)
        );
        let mut stmt = self
            .conn
            .prepare(&q)
            .map_err(sql_err("cannot read lake offsets"))?;
        let rows = stmt
            .query_map(params![self.settings.connector, topic], |r| {
                Ok((
                    TopicPartition {
                        topic: topic.to_owned(),
                        partition: r.get(0)?,
                    },
                    r.get::<_, Option<i64>>(1)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql_err("cannot read lake offsets"))?;
        Ok(rows)
    }

    fn set_commit_message(&self, message: &str, extra: &str) -> Result<(), LakeError> {
        self.conn
            .execute(
                &format!(
                    "CALL {}.set_commit_message('ducklake-sink', ?, extra_info => ?)",
                    sql::ident(LAKE)
                ),
                params![message, extra],
            )
            .map_err(sql_err("cannot set the commit message"))?;
        Ok(())
    }

    /// Runs `body` inside BEGIN … COMMIT; on any error rolls back and forgets cached table
    /// shapes (DDL of the failed transaction is gone too).
    fn in_transaction<T>(
        &mut self,
        what: &str,
        body: impl FnOnce(&mut Self) -> Result<T, LakeError>,
    ) -> Result<T, LakeError> {
        self.conn
            .execute_batch("BEGIN TRANSACTION")
            .map_err(sql_err(format!("{what}: cannot begin a transaction")))?;
        let result = body(self).and_then(|v| {
            self.conn
                .execute_batch("COMMIT")
                .map_err(sql_err(format!("{what}: commit failed")))?;
            Ok(v)
        });
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.tables.clear();
        }
        result
    }

    /// Writes `batch` as one DuckLake transaction (one snapshot), provided this worker still
    /// holds every partition at the epoch in `epochs`. On error nothing of it is visible.
    pub fn flush(
        &mut self,
        batch: &Batch,
        epochs: &BTreeMap<TopicPartition, i64>,
    ) -> Result<FlushOutcome, LakeError> {
        let started = std::time::Instant::now();
        let mut append = std::time::Duration::ZERO;
        let rows = self.in_transaction("flush", |lake| {
            let mut rows = 0;
            for (table, data) in &batch.tables {
                if data.rows.is_empty() {
                    continue;
                }
                lake.ensure_table(table, data)?;
                rows += lake.append(table, data)?;
            }
            append = started.elapsed();
            lake.write_offsets(batch, epochs)?;
            let (message, extra) = lineage(&lake.settings.connector, batch, rows);
            lake.set_commit_message(&message, &extra)?;
            Ok(rows)
        })?;
        Ok(FlushOutcome {
            snapshot_id: self.current_snapshot(),
            rows,
            append,
            commit: started.elapsed().saturating_sub(append),
        })
    }

    fn current_snapshot(&self) -> Option<i64> {
        self.conn
            .query_row(
                &format!(
                    "SELECT id::BIGINT FROM {}.current_snapshot()",
                    sql::ident(LAKE)
                ),
                [],
                |r| r.get(0),
            )
            .ok()
    }

    fn table_columns(&mut self, table: &str) -> Result<Option<TableColumns>, LakeError> {
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
    fn ensure_table(&mut self, table: &str, data: &TableBatch) -> Result<(), LakeError> {
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
                        ty: *ty,
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
                        new: *ty,
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

    fn append(&mut self, table: &str, data: &TableBatch) -> Result<u64, LakeError> {
        let names: Vec<&str> = data.columns.iter().map(|(n, _)| n.as_str()).collect();
        let context = || format!("cannot append to table `{table}`");
        let mut appender = self
            .conn
            .appender_with_columns_to_catalog_and_db(table, LAKE, &self.settings.schema, &names)
            .map_err(sql_err(context()))?;
        let columns = arrow::record_batch(data).map_err(|e| LakeError::Sql {
            context: format!("{}: {e}", context()),
            source: Box::new(duckdb::Error::AppendError),
        })?;
        appender
            .append_record_batch(columns)
            .map_err(sql_err(context()))?;
        appender.flush().map_err(sql_err(context()))?;
        Ok(data.rows.len() as u64)
    }

    /// Moves each partition's offset forward, compare-and-set on the claim epoch: a row
    /// whose epoch changed belongs to another worker now, and the whole flush is refused.
    fn write_offsets(
        &self,
        batch: &Batch,
        epochs: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), LakeError> {
        let mut update = self
            .conn
            .prepare(&format!(
                "UPDATE {} SET next_offset = ?, last_timestamp_ms = ?, updated_at = now()
                 WHERE connector = ? AND topic = ? AND \"partition\" = ? AND epoch = ?",
                self.table_ref(OFFSETS_TABLE)
            ))
            .map_err(sql_err("cannot store offsets"))?;
        for (tp, range) in &batch.offsets {
            let epoch = epochs.get(tp).copied().unwrap_or(-1);
            let updated = update
                .execute(params![
                    range.next_offset(),
                    range.last_timestamp_ms,
                    self.settings.connector,
                    tp.topic,
                    tp.partition,
                    epoch
                ])
                .map_err(sql_err("cannot store offsets"))?;
            if updated != 1 {
                return Err(LakeError::Fenced {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    epoch,
                });
            }
        }
        Ok(())
    }

    /// Table upkeep: moves inlined rows to Parquet, merges the small files that frequent
    /// flushes leave behind and, with a `retention`, expires older snapshots and deletes the
    /// files only they used. Each step is its own DuckLake commit.
    pub fn maintain(
        &mut self,
        retention: Option<std::time::Duration>,
    ) -> Result<FileCounts, LakeError> {
        let before = self.data_files()?;
        let lake = sql::literal(LAKE);
        let mut steps = vec![
            format!("CALL ducklake_flush_inlined_data({lake})"),
            format!("CALL ducklake_merge_adjacent_files({lake})"),
        ];
        if let Some(keep) = retention {
            let older_than = format!("now() - INTERVAL {} MILLISECONDS", keep.as_millis());
            steps.push(format!(
                "CALL ducklake_expire_snapshots({lake}, older_than => {older_than})"
            ));
            steps.push(format!(
                "CALL ducklake_cleanup_old_files({lake}, older_than => {older_than})"
            ));
        }
        for step in steps {
            let mut stmt = self
                .conn
                .prepare(&step)
                .map_err(sql_err(format!("maintenance: {step}")))?;
            let mut rows = stmt
                .query([])
                .map_err(sql_err(format!("maintenance: {step}")))?;
            while rows
                .next()
                .map_err(sql_err(format!("maintenance: {step}")))?
                .is_some()
            {}
        }
        Ok(FileCounts {
            before,
            after: self.data_files()?,
        })
    }

    /// Parquet data files of the lake's live tables.
    fn data_files(&self) -> Result<u64, LakeError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT coalesce(sum(file_count), 0)::BIGINT FROM {}.table_info()",
                    sql::ident(LAKE)
                ),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(sql_err("cannot count data files"))
    }

    /// Runs arbitrary SQL (the `sql` subcommand) on this connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn load_extension(conn: &Connection, name: &str) -> Result<(), LakeError> {
    conn.execute_batch(&format!("LOAD {name}"))
        .map_err(|source| LakeError::ExtensionMissing {
            name: name.to_owned(),
            source: Box::new(source),
        })
}

fn create_parent_dir(catalog_file: &str) {
    let path = Path::new(catalog_file.strip_prefix("duckdb:").unwrap_or(catalog_file));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// The commit message and `extra_info` JSON of a flush: connector, per-partition offset
/// ranges and record counts, rows per table, and the newest Kafka timestamp per topic.
pub fn lineage(connector: &str, batch: &Batch, rows: u64) -> (String, String) {
    let mut ranges = Vec::new();
    let mut parts = Vec::new();
    let mut max_ts: BTreeMap<&str, i64> = BTreeMap::new();
    for (tp, r) in &batch.offsets {
        parts.push(format!(
            "{}[{}]@{}..{}",
            tp.topic, tp.partition, r.first, r.last
        ));
        ranges.push(json!({
            "topic": tp.topic, "partition": tp.partition,
            "first_offset": r.first, "last_offset": r.last, "records": r.records,
        }));
        if let Some(ts) = r.max_timestamp_ms {
            let e = max_ts.entry(tp.topic.as_str()).or_insert(ts);
            *e = (*e).max(ts);
        }
    }
    let tables: BTreeMap<&str, usize> = batch
        .tables
        .iter()
        .map(|(t, b)| (t.as_str(), b.rows.len()))
        .collect();
    let message = format!(
        "{connector}: {} records, {rows} rows: {}",
        batch.records(),
        parts.join(" ")
    );
    let extra = json!({
        "kind": "flush",
        "connector": connector,
        "records": batch.records(),
        "rows": rows,
        "offsets": ranges,
        "tables": tables,
        "max_timestamp_ms": max_ts,
    });
    (message, extra.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_error(text: &str) -> LakeError {
        // Any duckdb::Error carrying `text` in its message; classification reads the text.
        LakeError::Sql {
            context: "test".into(),
            source: Box::new(duckdb::Error::InvalidParameterName(text.into())),
        }
    }

    #[test]
    fn transient_catalog_failures_are_retryable_and_data_errors_are_not() {
        for text in [
            "TransactionContext Error: Failed to commit DuckLake transaction: conflict",
            "IO Error: Unable to connect to Postgres at host=127.0.0.1: Connection refused",
            "server closed the connection unexpectedly",
            "FATAL: terminating connection due to administrator command",
            "ERROR: duplicate key value violates unique constraint \"pg_type_typname_nsp_index\"",
            "Could not set lock on file",
        ] {
            assert!(sql_error(text).is_retryable(), "{text}");
        }
        for text in [
            "Catalog Error: Table with name x does not exist!",
            "Conversion Error: Could not convert string 'a' to INT64",
        ] {
            assert!(!sql_error(text).is_retryable(), "{text}");
        }
        let fenced = LakeError::Fenced {
            topic: "t".into(),
            partition: 0,
            epoch: 1,
        };
        assert!(!fenced.is_retryable());
    }

    /// The quoting helper against a real DuckDB: hostile names round-trip as names.
    #[test]
    fn hostile_names_stay_names() {
        let conn = Connection::open_in_memory().unwrap();
        for name in [
            r#"a"b"#,
            "x; DROP TABLE t; --",
            "select",
            "zoë 表",
            "dots.in.name",
        ] {
            conn.execute_batch(&format!(
                "CREATE TABLE {} ({} INTEGER)",
                sql::ident(name),
                sql::ident(name)
            ))
            .unwrap();
            let col: String = conn
                .query_row(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                    params![name],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(col, name);
        }
    }
}
