//! The lake: one DuckDB connection with the DuckLake catalog attached as `lake`, owned by one
//! thread ([`LakeHandle`]). Each flush is one DuckLake transaction holding the rows of every
//! table, the covered offsets in `__ducklake_sink_offsets` and the lineage commit message, so
//! data and offsets become visible together or not at all.

mod apply;
/// Public for the benchmark example only.
#[doc(hidden)]
pub mod arrow;
mod lineage;
mod maintenance;
mod object_store;
mod offsets;
mod scan;
mod schema;
mod thread;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use duckdb::Connection;

use crate::batch::{Batch, TopicPartition};
use crate::config::{ConnectorConfig, LakeTuning, ObjectStore};
pub use crate::offsets::Claim;
use crate::offsets::Expect;
use crate::shape::{Evolution, Misfit, TableColumns};
use crate::sql;

pub use apply::TableCounts;
pub use lineage::lineage;

pub use thread::{backoff, LakeHandle, RetryPolicy};

/// Name the DuckLake catalog is attached under.
pub const LAKE: &str = "lake";
/// Table holding, per connector and partition, the next offset to read.
pub const OFFSETS_TABLE: &str = "__ducklake_sink_offsets";
/// Rows per insert the offsets table keeps in the catalog (a flush appends one per partition).
const OFFSETS_INLINING_ROWS: u32 = 10_000;

/// A DuckDB error whose text is shown with secrets scrubbed: DuckDB repeats a catalog's
/// connection string, password included, in its own messages.
#[derive(Debug)]
pub struct DbError(Box<duckdb::Error>);

impl From<duckdb::Error> for DbError {
    fn from(e: duckdb::Error) -> Self {
        Self(Box::new(e))
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::config::scrub_secrets(&self.0.to_string()))
    }
}

impl std::error::Error for DbError {}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("the DuckDB extension `{name}` is not installed ({source}); run scripts/setup.sh, which installs it offline into ~/.duckdb/extensions/v1.5.5/")]
    ExtensionMissing { name: String, source: DbError },
    #[error("cannot attach DuckLake catalog `{catalog}` (data path `{data_path}`): {source}")]
    Attach {
        catalog: String,
        data_path: String,
        source: DbError,
    },
    #[error("DuckLake catalog `{catalog}` is in use by another process; a DuckDB-file catalog admits one process at a time (stop the other worker or `ducklake-sink` command, or use a postgres: catalog): {source}")]
    Locked { catalog: String, source: DbError },
    /// The object store of the data path refused a request (bad credentials, no such bucket),
    /// or its secret could not be set up: no retry fixes that.
    #[error("object store {endpoint}, bucket `{bucket}`: {problem}: {source}")]
    ObjectStore {
        endpoint: String,
        bucket: String,
        problem: String,
        source: DbError,
    },
    /// Creating the schema and the offsets table of a fresh catalog.
    #[error("{context}: {source}")]
    Init { context: String, source: DbError },
    #[error("{context}: {source}")]
    Sql { context: String, source: DbError },
    #[error(transparent)]
    Misfit(#[from] Misfit),
    /// Another worker claimed the partition after this one did: this worker is a zombie
    /// (paused past its session, or split from the group) and must not commit.
    #[error("fenced: `{topic}` partition {partition} was claimed by another worker (lake epoch is no longer {epoch}); this worker's uncommitted records for it were discarded and the new owner reads them again from the lake offsets")]
    Fenced {
        topic: String,
        partition: i32,
        epoch: i64,
    },
    /// The lake's offset is not the one this worker's batch continues from, under this
    /// worker's own epoch: something else moved it (an operator's reset during the run).
    #[error("`{topic}` partition {partition}: the lake's next offset is {found:?}, but this worker's batch continues from {expected:?} under its own claim; another writer or a reset moved it. Nothing of the batch was committed; restart the worker to resume from the lake offsets")]
    OffsetMoved {
        topic: String,
        partition: i32,
        expected: Option<i64>,
        found: Option<i64>,
    },
    /// Test hook (`DUCKLAKE_SINK_FAULT_AFTER_COMMIT=N`): every Nth flush reports failure
    /// after its `COMMIT` succeeded, as a connection lost at that moment would.
    #[error("injected fault: the connection was lost after COMMIT was sent (outcome unknown)")]
    InjectedAfterCommit,
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

    /// An error whose text shows the object store rejecting a request (HTTP 4xx but 408/429)
    /// becomes [`LakeError::ObjectStore`], naming the endpoint and the bucket.
    pub fn with_store(self, store: Option<&ObjectStore>) -> Self {
        let Some(store) = store else { return self };
        let status = match &self {
            Self::Sql { source, .. } | Self::Init { source, .. } | Self::Attach { source, .. } => {
                match object_store::failure(&source.to_string()) {
                    Some(object_store::Failure::Rejected(status)) => status,
                    _ => return self,
                }
            }
            _ => return self,
        };
        match self {
            Self::Sql { source, .. } | Self::Init { source, .. } | Self::Attach { source, .. } => {
                Self::ObjectStore {
                    endpoint: store.endpoint_name(),
                    bucket: store.bucket.clone(),
                    problem: object_store::rejection(status, store),
                    source,
                }
            }
            other => other,
        }
    }

    /// Failures that a later attempt may not hit (catalog unreachable or restarting, commit
    /// conflicts between workers, a catalog being initialised by another worker, an object
    /// store unreachable or failing on its side). Judged by DuckDB's error text: its error
    /// codes do not tell these apart.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Locked { .. } | Self::InjectedAfterCommit => true,
            Self::Sql { source, .. } | Self::Init { source, .. } => {
                let text = source.to_string();
                // Two workers initialising one catalog at the same moment race inside
                // DuckLake; elsewhere these texts mean a deterministic failure (a duplicate
                // column), which retrying cannot fix.
                let init_race = matches!(self, Self::Init { .. })
                    && ["duplicate key", "already exists"]
                        .iter()
                        .any(|needle| text.contains(needle));
                init_race || transient(&text)
            }
            Self::Attach { source, .. } => {
                let text = source.to_string();
                text.contains("duplicate key")
                    || text.contains("already exists")
                    || transient(&text)
            }
            _ => false,
        }
    }
}

/// Failures a later attempt may not hit, by what happened (DuckDB's error codes do not tell
/// them apart). "IO Error" alone is not one: it also covers deterministic failures (a value
/// Parquet cannot store). An object store's answer decides first: its client errors read
/// "Unable to connect to URL … (HTTP code 403)".
fn transient(text: &str) -> bool {
    match object_store::failure(text) {
        Some(object_store::Failure::Transient) => return true,
        Some(object_store::Failure::Rejected(_)) => return false,
        None => {}
    }
    [
        "onflict",
        "Failed to commit",
        "Could not set lock",
        "nable to connect",
        "could not connect",
        "onnection refused",
        "onnection reset",
        "no connection to the server",
        "could not send data",
        "could not receive data",
        "server closed",
        "terminating connection",
        "shutting down",
        "starting up",
        "timeout",
        "timed out",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

fn sql_err(context: impl Into<String>) -> impl FnOnce(duckdb::Error) -> LakeError {
    let context = context.into();
    move |source| LakeError::Sql {
        context,
        source: DbError::from(source),
    }
}

/// Data files before and after a maintenance run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCounts {
    pub before: u64,
    pub after: u64,
}

/// What one committed flush produced.
#[derive(Debug, Clone, PartialEq)]
pub struct FlushOutcome {
    pub snapshot_id: Option<i64>,
    /// Rows inserted, all tables together.
    pub rows: u64,
    /// What the flush did to each table.
    pub tables: BTreeMap<String, TableCounts>,
    /// The columns of each table written, after the flush's DDL.
    pub shapes: BTreeMap<String, TableColumns>,
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
    /// The store and credentials of an `s3://` data path.
    pub object_store: Option<ObjectStore>,
    pub schema: String,
    pub evolution: Evolution,
    pub data_inlining_row_limit: u64,
    /// DuckDB threads and memory, and the Parquet options of the connector's schema.
    pub tuning: LakeTuning,
    /// Maintenance rewrites data files whose deleted fraction passes this.
    pub rewrite_delete_threshold: f64,
    /// One maintenance run rewrites at most this many data files and runs at most this many
    /// merges per table; the rest waits for the next run.
    pub maintenance_max_files: u64,
}

impl From<&ConnectorConfig> for LakeSettings {
    fn from(c: &ConnectorConfig) -> Self {
        Self {
            connector: c.name.clone(),
            catalog: c.catalog.clone(),
            data_path: c.data_path.clone(),
            object_store: c.object_store.clone(),
            schema: c.schema.clone(),
            evolution: c.evolution(),
            data_inlining_row_limit: c.data_inlining_row_limit,
            tuning: c.tuning.clone(),
            rewrite_delete_threshold: c.rewrite_delete_threshold,
            maintenance_max_files: c.maintenance_max_files,
        }
    }
}

/// The connection and what it knows about the lake's tables. Not `Sync`: one thread owns it.
pub struct Lake {
    conn: Connection,
    settings: LakeSettings,
    tables: HashMap<String, TableColumns>,
    /// Tables this connection wrote: once there are any, the only ones its maintenance
    /// touches, so workers never compact each other's tables (a merge or rewrite conflicts
    /// with the owner's deletes).
    written: std::collections::BTreeSet<String>,
}

impl Lake {
    /// Opens DuckDB in memory, loads DuckLake (offline) and attaches the catalog, creating the
    /// schema and the offsets table when missing. An `s3://` data path gets its secret first.
    pub fn open(settings: LakeSettings) -> Result<Self, LakeError> {
        let store = settings.object_store.clone();
        Self::open_inner(settings).map_err(|e| e.with_store(store.as_ref()))
    }

    fn open_inner(settings: LakeSettings) -> Result<Self, LakeError> {
        let conn = Connection::open_in_memory().map_err(sql_err("cannot start DuckDB"))?;
        // Extensions come from the local extension directory (scripts/setup.sh); never try
        // the network, whose failure would only hide the real problem.
        conn.execute_batch("SET autoinstall_known_extensions = false")
            .map_err(sql_err("cannot configure DuckDB"))?;
        configure(&conn, &settings.tuning)?;
        scan::register(&conn).map_err(sql_err("cannot register the batch scan"))?;
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
        match &settings.object_store {
            Some(store) => object_store::configure(&conn, store, &settings.data_path)?,
            None => {
                let _ = std::fs::create_dir_all(&settings.data_path);
            }
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
                    source: DbError::from(source),
                }
            } else {
                LakeError::Attach {
                    catalog,
                    data_path: settings.data_path.clone(),
                    source: DbError::from(source),
                }
            }
        })?;
        let lake = Self {
            conn,
            settings,
            tables: HashMap::new(),
            written: Default::default(),
        };
        lake.prepare()?;
        lake.set_parquet_options()?;
        lake.inline_offsets();
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
            .map_err(|source| LakeError::Init {
                context: "cannot create the schema and offsets table".into(),
                source: DbError::from(source),
            })
    }

    /// The Parquet options the connector's schema holds in the catalog (DuckLake's
    /// `options()`, scope `SCHEMA`), by option name.
    pub fn parquet_options(&self) -> Result<BTreeMap<String, String>, LakeError> {
        let context = "cannot read the lake's options";
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT option_name, value FROM {}.options() \
                 WHERE scope = 'SCHEMA' AND scope_entry = ? AND option_name LIKE 'parquet%'",
                sql::ident(LAKE)
            ))
            .map_err(sql_err(context))?;
        let rows = stmt
            .query_map([&self.settings.schema], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql_err(context))?;
        rows.collect::<Result<_, _>>().map_err(sql_err(context))
    }

    /// Stores the configured Parquet options for the connector's schema, each only when the
    /// catalog holds another value (an unchanged restart writes nothing to the catalog).
    fn set_parquet_options(&self) -> Result<(), LakeError> {
        let wanted = self.settings.tuning.parquet.options();
        if wanted.is_empty() {
            return Ok(());
        }
        let current = self.parquet_options()?;
        for (name, value) in wanted {
            if current.get(name) == Some(&value) {
                continue;
            }
            self.conn
                .execute_batch(&format!(
                    "CALL {}.set_option({}, {}, schema => {})",
                    sql::ident(LAKE),
                    sql::literal(name),
                    sql::literal(&value),
                    sql::literal(&self.settings.schema)
                ))
                .map_err(|source| LakeError::Init {
                    context: format!("cannot set the DuckLake option {name} = {value}"),
                    source: DbError::from(source),
                })?;
        }
        Ok(())
    }

    /// Keeps the offsets table's rows in the catalog (DuckLake data inlining, scoped to that
    /// table): every flush appends a few rows to it, and as Parquet files they made one file
    /// per commit that every later flush's offset check had to open. Measured with one-row
    /// flushes, that grew the lake CPU of a commit and the RSS with every commit. Set once
    /// per lake; a failure (another worker setting it at the same moment) only costs speed.
    fn inline_offsets(&self) {
        let scope_entry = format!("{}.{OFFSETS_TABLE}", self.settings.schema);
        let set: Result<bool, duckdb::Error> = self.conn.query_row(
            &format!(
                "SELECT count(*) > 0 FROM {}.options() WHERE option_name = 'data_inlining_row_limit' AND scope = 'TABLE' AND scope_entry = ?",
                sql::ident(LAKE)
            ),
            [&scope_entry],
            |r| r.get(0),
        );
        if matches!(set, Ok(true)) {
            return;
        }
        let call = format!(
            "CALL {}.set_option('data_inlining_row_limit', {OFFSETS_INLINING_ROWS}, table_name => {}, schema => {})",
            sql::ident(LAKE),
            sql::literal(OFFSETS_TABLE),
            sql::literal(&self.settings.schema)
        );
        if let Err(e) = self.conn.execute_batch(&call) {
            tracing::warn!(error = %e, "could not keep the offsets table inlined; its rows go to Parquet files");
        }
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

    /// Writes `batch` as one DuckLake transaction (one snapshot), provided the lake still
    /// holds every partition as `expects` says (claim epoch and the offset the batch
    /// continues from). On error nothing of it is visible.
    ///
    /// `retry`: an earlier attempt failed, perhaps after its `COMMIT` reached the catalog.
    /// The lake is read first; if it already holds the batch, it is not written again.
    pub fn flush(
        &mut self,
        batch: &Batch,
        expects: &BTreeMap<TopicPartition, Expect>,
        retry: bool,
    ) -> Result<FlushOutcome, LakeError> {
        let started = std::time::Instant::now();
        if retry && self.holds(batch, expects)? {
            tracing::warn!(
                connector = %self.settings.connector,
                "the previous attempt's commit outcome was unknown and the lake holds it: not writing it again"
            );
            return Ok(self.outcome(
                batch
                    .tables
                    .iter()
                    .map(|(t, d)| (t.clone(), TableCounts::of(d)))
                    .collect(),
                started,
                started.elapsed(),
            ));
        }
        let mut append = std::time::Duration::ZERO;
        let tables = self.in_transaction("flush", |lake| {
            let mut tables = BTreeMap::new();
            for (table, data) in &batch.tables {
                tables.insert(table.clone(), lake.write_table(table, data)?);
            }
            append = started.elapsed();
            lake.write_offsets(batch, expects)?;
            let (message, extra) = lineage(&lake.settings.connector, batch, &tables);
            lake.set_commit_message(&message, &extra)?;
            Ok(tables)
        })?;
        if fault_after_commit() {
            self.tables.clear();
            return Err(LakeError::InjectedAfterCommit);
        }
        Ok(self.outcome(tables, started, append))
    }

    fn outcome(
        &mut self,
        tables: BTreeMap<String, TableCounts>,
        started: std::time::Instant,
        append: std::time::Duration,
    ) -> FlushOutcome {
        let mut shapes = BTreeMap::new();
        for table in tables.keys() {
            if let Ok(Some(columns)) = self.table_columns(table) {
                shapes.insert(table.clone(), columns);
            }
        }
        FlushOutcome {
            snapshot_id: self.current_snapshot(),
            rows: tables.values().map(|c| c.inserted).sum(),
            tables,
            shapes,
            append,
            commit: started.elapsed().saturating_sub(append),
        }
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

    /// Runs arbitrary SQL (the `sql` subcommand) on this connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The test hook behind [`LakeError::InjectedAfterCommit`]: with
/// `DUCKLAKE_SINK_FAULT_AFTER_COMMIT=N`, true for every Nth committed flush of the process.
fn fault_after_commit() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static EVERY: OnceLock<Option<u64>> = OnceLock::new();
    static COMMITS: AtomicU64 = AtomicU64::new(0);
    let every = *EVERY.get_or_init(|| {
        std::env::var("DUCKLAKE_SINK_FAULT_AFTER_COMMIT")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
    });
    every.is_some_and(|n| (COMMITS.fetch_add(1, Ordering::SeqCst) + 1) % n == 0)
}

/// DuckDB's threads and memory limit for this connection's database (it is its own, in
/// memory, so the settings reach nothing else).
fn configure(conn: &Connection, tuning: &LakeTuning) -> Result<(), LakeError> {
    let mut settings = format!("SET threads = {};", tuning.threads);
    if let Some(limit) = &tuning.memory_limit {
        settings.push_str(&format!(" SET memory_limit = {};", sql::literal(limit)));
    }
    conn.execute_batch(&settings)
        .map_err(sql_err(format!("cannot configure DuckDB ({settings})")))
}

fn load_extension(conn: &Connection, name: &str) -> Result<(), LakeError> {
    conn.execute_batch(&format!("LOAD {name}"))
        .map_err(|source| LakeError::ExtensionMissing {
            name: name.to_owned(),
            source: DbError::from(source),
        })
}

fn create_parent_dir(catalog_file: &str) {
    let path = Path::new(catalog_file.strip_prefix("duckdb:").unwrap_or(catalog_file));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::params;

    fn sql_error(text: &str) -> LakeError {
        // Any duckdb::Error carrying `text` in its message; classification reads the text.
        LakeError::Sql {
            context: "test".into(),
            source: DbError::from(duckdb::Error::InvalidParameterName(text.into())),
        }
    }

    #[test]
    fn transient_catalog_failures_are_retryable_and_data_errors_are_not() {
        for text in [
            "TransactionContext Error: Failed to commit DuckLake transaction: conflict",
            "IO Error: Unable to connect to Postgres at host=127.0.0.1: Connection refused",
            "server closed the connection unexpectedly",
            "FATAL: terminating connection due to administrator command",
            "Could not set lock on file",
        ] {
            assert!(sql_error(text).is_retryable(), "{text}");
        }
        for text in [
            "Catalog Error: Table with name x does not exist!",
            "IO Error: Parquet files do not support negative intervals",
            "Conversion Error: Could not convert string 'a' to INT64",
        ] {
            assert!(!sql_error(text).is_retryable(), "{text}");
        }
        // The catalog-initialisation race is transient only while initialising.
        let race =
            "ERROR: duplicate key value violates unique constraint \"pg_type_typname_nsp_index\"";
        assert!(LakeError::Init {
            context: "init".into(),
            source: DbError::from(duckdb::Error::InvalidParameterName(race.into())),
        }
        .is_retryable());
        assert!(!sql_error(race).is_retryable());
        assert!(!sql_error("Catalog Error: Column with name a already exists!").is_retryable());
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
