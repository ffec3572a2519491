//! Connector files: Kafka Connect JSON (`{"name": ..., "config": {...}}`) turned into one typed
//! [`ConnectorConfig`] at load time.
//!
//! Contract: every key of the file is either understood or rejected (with a did-you-mean);
//! values may be JSON strings or JSON scalars, as Connect accepts both; every error names the
//! file and the key. Nothing here opens a connection.

mod keys;
pub mod s3;
mod tuning;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use keys::{is_secret, KNOWN_KEYS};
pub use s3::{ObjectStore, UrlStyle};
pub use tuning::{LakeTuning, ParquetOptions};

use crate::decode::{DecodeSettings, EnvelopeMode};

/// A configuration problem, always tied to the file (and key) it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read connector file: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not valid JSON: {source}")]
    Json {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("{file}: {message}")]
    Shape { file: PathBuf, message: String },
    #[error("{file}: key `{key}`: {message}")]
    Key {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// How record keys or values are turned into rows (Kafka Connect converter class names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converter {
    /// `org.apache.kafka.connect.storage.StringConverter`
    String,
    /// `org.apache.kafka.connect.json.JsonConverter`; `schemas_enable` expects the
    /// `{"schema":…, "payload":…}` envelope.
    Json { schemas_enable: bool },
    /// `org.apache.kafka.connect.converters.ByteArrayConverter`
    ByteArray,
    /// `io.confluent.connect.avro.AvroConverter`: Confluent wire format, schemas from a
    /// registry ([`RegistryConfig`]).
    Avro,
}

/// A converter's schema registry: `*.schema.registry.url` (comma-separated, tried in turn)
/// and `*.basic.auth.*` (`USER_INFO`).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    pub urls: Vec<String>,
    /// `user:password` from `basic.auth.user.info`. A secret: never printed.
    pub user_info: Option<String>,
}

impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("urls", &self.urls)
            .field("user_info", &self.user_info.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Converter {
    /// The Kafka Connect class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Self::String => "org.apache.kafka.connect.storage.StringConverter",
            Self::Json { .. } => "org.apache.kafka.connect.json.JsonConverter",
            Self::ByteArray => "org.apache.kafka.connect.converters.ByteArrayConverter",
            Self::Avro => "io.confluent.connect.avro.AvroConverter",
        }
    }
}

/// Which topics the connector reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    List(Vec<String>),
    /// A librdkafka subscription pattern (the regex is anchored with `^` as Kafka does).
    Regex(String),
}

/// One connector, typed. Defaults follow Kafka Connect where it has one.
#[derive(Clone, PartialEq)]
pub struct ConnectorConfig {
    /// File the connector was loaded from (for messages).
    pub file: PathBuf,
    pub name: String,
    pub topics: Topics,
    pub key_converter: Converter,
    pub value_converter: Converter,
    /// Schema registries of Avro key and value converters.
    pub key_registry: Option<RegistryConfig>,
    pub value_registry: Option<RegistryConfig>,
    /// DuckLake catalog string after `ducklake:` (DuckDB file path, `sqlite:…`, `postgres:…`).
    pub catalog: String,
    pub data_path: String,
    /// The S3-compatible store of an `s3://` data path, with its credentials (`None`: a local
    /// folder).
    pub object_store: Option<ObjectStore>,
    pub schema: String,
    pub table_name_format: String,
    pub auto_create: bool,
    pub auto_evolve: bool,
    /// How records change tables: append or upsert, keys, deletes, truncates, envelopes.
    pub apply: ApplySettings,
    pub flush_max_records: usize,
    pub flush_max_bytes: usize,
    pub flush_interval_ms: u64,
    /// `ducklake.data.inlining.row.limit`: rows per flush kept in the catalog instead of a
    /// Parquet file. 0 (the default here) always writes Parquet.
    pub data_inlining_row_limit: u64,
    /// `consumer.override.*`, passed to librdkafka as they are (except
    /// `auto.offset.reset`, which the sink applies itself: see [`ConnectorConfig::start_policy`]).
    pub consumer_overrides: BTreeMap<String, String>,
    /// Where partitions the lake has no offset for start.
    pub start_policy: StartPolicy,
    /// `errors.retry.timeout`: how long transient lake failures are retried (Connect's
    /// `-1`, retry forever, becomes a very long time).
    pub retry_timeout_ms: u64,
    /// `errors.retry.delay.max.ms`: the longest wait between two attempts.
    pub retry_delay_max_ms: u64,
    /// `ducklake.maintenance.interval.ms`: how often table upkeep runs; 0 turns it off.
    pub maintenance_interval_ms: u64,
    /// `ducklake.snapshot.retention.ms`: snapshots older than this are expired by maintenance
    /// and their files deleted; `None` (`-1`, the default) keeps the whole history.
    pub snapshot_retention_ms: Option<u64>,
    /// DuckDB's threads and memory for the lake connection, and the Parquet options
    /// (`ducklake.threads`, `ducklake.memory.limit`, `ducklake.parquet.*`).
    pub tuning: LakeTuning,
    /// `ducklake.maintenance.changes`: maintenance also runs once this many rows were deleted
    /// or replaced since the last run (keyed tables); 0: on the interval only.
    pub maintenance_changes: u64,
    /// `ducklake.maintenance.max.files`: how much one maintenance run may rewrite or merge
    /// (data files rewritten, and merges per table), so a run never holds the next flush for
    /// long; what is left is carried over to the next run.
    pub maintenance_max_files: u64,
    /// `ducklake.rewrite.delete.threshold`: maintenance rewrites the data files whose deleted
    /// fraction passes this (reads skip deleted rows through delete files until then).
    pub rewrite_delete_threshold: f64,
    /// What happens to records that cannot be decoded or written (`errors.*`).
    pub errors: ErrorHandling,
    /// The file's config map as the REST API shows it: every value as given, secrets
    /// replaced by [`HIDDEN`] (see [`shown_config`]).
    pub shown: BTreeMap<String, String>,
}

/// Kafka Connect's error handling keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorHandling {
    /// `errors.tolerance=all`: bad records are skipped (and dead-lettered) instead of
    /// stopping the connector.
    pub tolerate: bool,
    /// `errors.deadletterqueue.topic.name`.
    pub dlq_topic: Option<String>,
    /// `errors.deadletterqueue.topic.replication.factor` (`-1`: the broker's default).
    pub dlq_replication_factor: i32,
    /// `errors.deadletterqueue.context.headers.enable`: add Connect's `__connect.errors.*`
    /// headers.
    pub dlq_context_headers: bool,
    /// `errors.log.enable`, `errors.log.include.messages`.
    pub log: bool,
    pub log_messages: bool,
}

/// `insert.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// Every record adds a row (`insert`, the JDBC sink's name, is accepted too).
    Append,
    /// Insert or replace by primary key (`update` is accepted as its JDBC-sink near-synonym).
    Upsert,
}

/// `pk.mode`: where the primary key of upserts and deletes comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkMode {
    RecordKey,
    RecordValue,
}

/// How records change tables (the JDBC sink's keys, plus `truncate.enabled` and
/// `cdc.envelope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplySettings {
    pub insert_mode: InsertMode,
    /// Meaningful with upserts; `RecordKey` otherwise.
    pub pk_mode: PkMode,
    /// `pk.fields`: key fields to use (empty: all fields of the key, or of the value).
    pub pk_fields: Vec<String>,
    pub delete_enabled: bool,
    pub truncate_enabled: bool,
    pub envelope: EnvelopeMode,
}

/// Start position of a partition that has no offset in the lake (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPolicy {
    Earliest,
    Latest,
    /// `none`/`error`: refuse to start such a partition.
    Fail,
}

impl ConnectorConfig {
    /// Consumer group of the connector, named as Kafka Connect names it.
    pub fn group_id(&self) -> String {
        format!("connect-{}", self.name)
    }

    /// `auto.create` and `auto.evolve`.
    pub fn evolution(&self) -> crate::shape::Evolution {
        crate::shape::Evolution {
            auto_create: self.auto_create,
            auto_evolve: self.auto_evolve,
        }
    }

    /// What the decoder needs to turn records into changes.
    pub fn decode_settings(&self) -> DecodeSettings {
        DecodeSettings {
            key_converter: self.key_converter,
            value_converter: self.value_converter,
            envelope: self.apply.envelope,
            insert_mode: self.apply.insert_mode,
            pk_mode: self.apply.pk_mode,
            pk_fields: self.apply.pk_fields.clone(),
            delete_enabled: self.apply.delete_enabled,
            truncate_enabled: self.apply.truncate_enabled,
        }
    }

    /// Reads and validates one connector file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates the text of a connector file; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file = path.to_path_buf();
        let doc: Value = serde_json::from_str(text).map_err(|source| ConfigError::Json {
            file: file.clone(),
            source,
        })?;
        let Value::Object(doc) = doc else {
            return Err(shape(
                &file,
                "expected a JSON object {\"name\": ..., \"config\": {...}}",
            ));
        };
        let Some(Value::Object(config)) = doc.get("config") else {
            return Err(shape(
                &file,
                "missing object `config` (Kafka Connect form: {\"name\": ..., \"config\": {...}})",
            ));
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "name" | "config" | "tasks" | "type") {
                return Err(key_err(
                    &file,
                    key,
                    "unknown top-level key (expected `name` and `config`)",
                ));
            }
        }
        let mut raw = Raw {
            file: file.clone(),
            map: BTreeMap::new(),
        };
        for (k, v) in config {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => continue,
                _ => {
                    return Err(key_err(
                        &file,
                        k,
                        "expected a string or a scalar, got an object or array",
                    ))
                }
            };
            raw.map.insert(k.clone(), s);
        }
        let mut shown = shown_config(&raw.map);
        // `name` may sit at the top level (Connect REST form) or inside config (properties form).
        let top_name = doc.get("name").and_then(Value::as_str).map(str::to_owned);
        let inner_name = raw.take("name");
        let name = match (top_name, inner_name) {
            (Some(a), Some(b)) if a != b => {
                return Err(key_err(
                    &file,
                    "name",
                    &format!("top-level name `{a}` differs from config.name `{b}`"),
                ))
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => return Err(shape(&file, "missing required key `name`")),
        };
        if name.is_empty() || name.chars().any(|c| c.is_control()) {
            return Err(key_err(
                &file,
                "name",
                "must be a non-empty printable string",
            ));
        }

        let class = raw.required("connector.class")?;
        if !(class == "DuckLakeSink"
            || class.ends_with(".DuckLakeSink")
            || class.ends_with("DuckLakeSinkConnector"))
        {
            return Err(key_err(
                &file,
                "connector.class",
                &format!("`{class}` is not this sink; use `DuckLakeSink`"),
            ));
        }
        let _tasks_max = raw.take_parsed::<u32>("tasks.max", "a positive integer")?;

        let topics = match (raw.take("topics"), raw.take("topics.regex")) {
            (Some(_), Some(_)) => {
                return Err(key_err(
                    &file,
                    "topics.regex",
                    "conflicts with `topics`: set exactly one of them",
                ))
            }
            (Some(list), None) => {
                let list: Vec<String> = list
                    .split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect();
                if list.is_empty() {
                    return Err(key_err(&file, "topics", "must name at least one topic"));
                }
                Topics::List(list)
            }
            (None, Some(re)) => {
                if re.trim().is_empty() {
                    return Err(key_err(&file, "topics.regex", "must not be empty"));
                }
                Topics::Regex(re)
            }
            (None, None) => {
                return Err(shape(
                    &file,
                    "missing required key `topics` (or `topics.regex`)",
                ))
            }
        };

        let (key_converter, key_registry) = raw.converter("key.converter", Converter::String)?;
        let (value_converter, value_registry) = raw.converter(
            "value.converter",
            Converter::Json {
                schemas_enable: true,
            },
        )?;

        let catalog = raw.required("ducklake.catalog")?;
        let catalog = catalog
            .strip_prefix("ducklake:")
            .unwrap_or(&catalog)
            .to_owned();
        if catalog.starts_with("mysql:") {
            return Err(key_err(&file, "ducklake.catalog", "MySQL/MariaDB catalogs are broken in DuckLake 1.5.5 (the second write to a table fails); use a DuckDB file, sqlite: or postgres:"));
        }
        let data_path = raw
            .take("ducklake.data.path")
            .unwrap_or_else(|| "data/".to_owned());
        let object_store = s3::resolve(&file, &data_path, &raw.s3_keys(), &|name| {
            std::env::var(name).ok()
        })?;
        let schema = raw
            .take("ducklake.schema")
            .unwrap_or_else(|| "main".to_owned());
        if schema.is_empty() {
            return Err(key_err(&file, "ducklake.schema", "must not be empty"));
        }
        let table_name_format = raw
            .take("table.name.format")
            .unwrap_or_else(|| "${topic}".to_owned());
        if table_name_format.is_empty() {
            return Err(key_err(&file, "table.name.format", "must not be empty"));
        }
        if let Some(bad) = crate::routing::unknown_placeholders(&table_name_format).first() {
            return Err(key_err(
                &file,
                "table.name.format",
                &format!(
                    "unknown placeholder `${{{bad}}}` (known: {})",
                    crate::routing::PLACEHOLDERS
                        .iter()
                        .map(|p| format!("${{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let auto_create = raw.take_bool("auto.create", false)?;
        let auto_evolve = raw.take_bool("auto.evolve", false)?;
        let flush_max_records = raw.take_positive_opt("flush.max.records")?;
        let flush_max_bytes = raw.take_positive("flush.max.bytes", 64 * 1024 * 1024)? as usize;
        let flush_interval_ms = raw.take_positive("flush.interval.ms", 10_000)?;
        let data_inlining_row_limit = raw
            .take_parsed::<u64>("ducklake.data.inlining.row.limit", "a non-negative integer")?
            .unwrap_or(0);

        let apply = raw.apply()?;
        // A keyed flush finds its rows with one scan of the table's key column, whatever the
        // number of changes: larger flushes amortise it (measured by examples/apply_bench.rs:
        // 43 k random-key changes/s with 20 k per flush on a 10 M-row table, 179 k with 100 k).
        let flush_max_records = flush_max_records.unwrap_or(match apply.insert_mode {
            InsertMode::Upsert => UPSERT_FLUSH_MAX_RECORDS,
            InsertMode::Append => APPEND_FLUSH_MAX_RECORDS,
        }) as usize;

        let retry_timeout_ms = match raw.take_parsed::<i64>(
            "errors.retry.timeout",
            "a number of milliseconds (-1: forever)",
        )? {
            None => 300_000,
            Some(-1) => u64::MAX / 4,
            Some(n) if n >= 0 => n as u64,
            Some(n) => {
                return Err(key_err(
                    &file,
                    "errors.retry.timeout",
                    &format!("expected -1 or a non-negative number of milliseconds, got `{n}`"),
                ))
            }
        };
        let retry_delay_max_ms = raw.take_positive("errors.retry.delay.max.ms", 60_000)?;
        let maintenance_interval_ms = raw
            .take_parsed::<u64>(
                "ducklake.maintenance.interval.ms",
                "a non-negative number of milliseconds (0: off)",
            )?
            .unwrap_or(600_000);
        let snapshot_retention_ms = match raw.take_parsed::<i64>(
            "ducklake.snapshot.retention.ms",
            "a number of milliseconds (-1: keep all)",
        )? {
            None | Some(-1) => None,
            Some(n) if n > 0 => Some(n as u64),
            Some(n) => {
                return Err(key_err(
                    &file,
                    "ducklake.snapshot.retention.ms",
                    &format!(
                        "expected -1 (keep all) or a positive number of milliseconds, got `{n}`"
                    ),
                ))
            }
        };
        let tuning = raw.tuning()?;
        let maintenance_changes = raw
            .take_parsed::<u64>(
                "ducklake.maintenance.changes",
                "a non-negative number of rows (0: off)",
            )?
            .unwrap_or(1_000_000);
        let rewrite_delete_threshold =
            raw.take_fraction("ducklake.rewrite.delete.threshold", 0.1)?;
        let maintenance_max_files = raw.take_positive("ducklake.maintenance.max.files", 4)?;
        let errors = raw.errors()?;

        let mut consumer_overrides = BTreeMap::new();
        let override_keys: Vec<String> = raw
            .map
            .keys()
            .filter(|k| k.starts_with("consumer.override."))
            .cloned()
            .collect();
        for key in override_keys {
            let value = raw.map.remove(&key).unwrap_or_default();
            let rd_key = key["consumer.override.".len()..].to_owned();
            if rd_key.is_empty() {
                return Err(key_err(&file, &key, "names no librdkafka property"));
            }
            if matches!(
                rd_key.as_str(),
                "enable.auto.commit" | "group.id" | "enable.auto.offset.store"
            ) {
                return Err(key_err(
                    &file,
                    &key,
                    "is managed by the sink (offsets live in the lake) and cannot be overridden",
                ));
            }
            consumer_overrides.insert(rd_key, value);
        }

        let start_policy = match consumer_overrides
            .remove("auto.offset.reset")
            .as_deref()
            .map(str::trim)
        {
            None | Some("earliest" | "smallest" | "beginning") => StartPolicy::Earliest,
            Some("latest" | "largest" | "end") => StartPolicy::Latest,
            Some("none" | "error") => StartPolicy::Fail,
            Some(other) => {
                return Err(key_err(
                    &file,
                    "consumer.override.auto.offset.reset",
                    &format!("expected earliest, latest or none, got `{other}`"),
                ))
            }
        };

        // Converter sub-keys that belong to a converter not in use are harmless in Connect;
        // accept them so existing files carry over.
        raw.map.retain(|k, _| !keys::is_converter_subkey(k));

        transforms(&mut raw)?;

        if let Some(key) = raw.map.keys().next() {
            let hint = keys::did_you_mean(key)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(key_err(&file, key, &format!("unknown key{hint}")));
        }

        shown.insert("name".to_owned(), name.clone());
        Ok(Self {
            file,
            name,
            topics,
            key_converter,
            value_converter,
            key_registry,
            value_registry,
            catalog,
            data_path,
            object_store,
            schema,
            table_name_format,
            auto_create,
            auto_evolve,
            apply,
            flush_max_records,
            flush_max_bytes,
            flush_interval_ms,
            data_inlining_row_limit,
            consumer_overrides,
            start_policy,
            retry_timeout_ms,
            retry_delay_max_ms,
            maintenance_interval_ms,
            snapshot_retention_ms,
            tuning,
            maintenance_changes,
            maintenance_max_files,
            rewrite_delete_threshold,
            errors,
            shown,
        })
    }
}

/// Debug output redacts anything that could carry a secret (catalog connection strings carry
/// passwords; consumer overrides carry SASL credentials).
impl fmt::Debug for ConnectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overrides: BTreeMap<&str, &str> = self
            .consumer_overrides
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if keys::is_secret(k) {
                        "[redacted]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("ConnectorConfig")
            .field("file", &self.file)
            .field("name", &self.name)
            .field("topics", &self.topics)
            .field("key_converter", &self.key_converter)
            .field("value_converter", &self.value_converter)
            .field("key_registry", &self.key_registry)
            .field("value_registry", &self.value_registry)
            .field("catalog", &redact_catalog(&self.catalog))
            .field("data_path", &self.data_path)
            .field("object_store", &self.object_store)
            .field("schema", &self.schema)
            .field("table_name_format", &self.table_name_format)
            .field("auto_create", &self.auto_create)
            .field("auto_evolve", &self.auto_evolve)
            .field("apply", &self.apply)
            .field("flush_max_records", &self.flush_max_records)
            .field("flush_max_bytes", &self.flush_max_bytes)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("data_inlining_row_limit", &self.data_inlining_row_limit)
            .field("consumer_overrides", &overrides)
            .field("start_policy", &self.start_policy)
            .field("retry_timeout_ms", &self.retry_timeout_ms)
            .field("retry_delay_max_ms", &self.retry_delay_max_ms)
            .field("maintenance_interval_ms", &self.maintenance_interval_ms)
            .field("maintenance_changes", &self.maintenance_changes)
            .field("maintenance_max_files", &self.maintenance_max_files)
            .field("rewrite_delete_threshold", &self.rewrite_delete_threshold)
            .field("snapshot_retention_ms", &self.snapshot_retention_ms)
            .field("tuning", &self.tuning)
            .field("errors", &self.errors)
            .finish()
    }
}

/// Hides `password=…` in libpq-style catalog strings.
pub fn redact_catalog(catalog: &str) -> String {
    catalog
        .split(' ')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Secret values known to this process (object-store credentials), scrubbed from any text
/// [`scrub_secrets`] sees, wherever in it they appear.
static SECRETS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Values shorter than this are not scrubbed by value: they would blank out ordinary words.
const MIN_SCRUBBED_LEN: usize = 4;

/// `flush.max.records` unless set: appends, and keyed (upsert) connectors, whose flushes each
/// scan the key column of the tables they change.
const APPEND_FLUSH_MAX_RECORDS: u64 = 10_000;
const UPSERT_FLUSH_MAX_RECORDS: u64 = 100_000;

/// Remembers a secret value so that [`scrub_secrets`] removes it from any text.
pub fn register_secret(value: &str) {
    if value.len() < MIN_SCRUBBED_LEN {
        return;
    }
    if let Ok(mut secrets) = SECRETS.write() {
        if !secrets.iter().any(|s| s == value) {
            secrets.push(value.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
}

/// `text` with every registered secret value ([`register_secret`]) replaced.
fn scrub_registered(text: &str, replacement: &str) -> String {
    let mut text = text.to_owned();
    if let Ok(secrets) = SECRETS.read() {
        for secret in secrets.iter() {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), replacement);
            }
        }
    }
    text
}

/// How the REST API shows a secret (as Kafka Connect shows passwords).
pub const HIDDEN: &str = "[hidden]";

/// A connector's config map as the REST API shows it. Hidden: the value of every key whose
/// name says it holds a secret (`password`, `secret`, `user.info`, `jaas`, `token`, `*.key`, `*.key.id`),
/// and inside any other value a `password=…` / `secret=…` (catalog connection strings) or the
/// password of a `scheme://user:password@host` URL.
pub fn shown_config(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let shown = if keys::is_secret(k) {
                HIDDEN.to_owned()
            } else {
                hide_url_password(&scrub_with(&scrub_registered(v, HIDDEN), HIDDEN))
            };
            (k.clone(), shown)
        })
        .collect()
}

/// `scheme://user:password@host…` → `scheme://user:[hidden]@host…`, for every URL in `text`.
fn hide_url_password(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == ',' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info.split_once(':').map_or(user_info, |(u, _)| u);
                if user_info.contains(':') {
                    out.push_str(&format!("{user}:{HIDDEN}@{host}"));
                } else {
                    out.push_str(authority);
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with every registered secret value ([`register_secret`]) and the value after every
/// `password=` / `secret=` (any case) replaced: for error messages of libraries that repeat
/// connection strings, requests or statements.
pub fn scrub_secrets(text: &str) -> String {
    scrub_with(&scrub_registered(text, "[redacted]"), "[redacted]")
}

fn scrub_with(text: &str, replacement: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = ["password=", "secret="]
        .iter()
        .filter_map(|k| lower[at..].find(k).map(|i| (at + i, k.len())))
        .min()
    {
        let (start, len) = found;
        let value = start + len;
        let end = text[value..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '`' | ';'))
            .map_or(text.len(), |i| value + i);
        out.push_str(&text[at..value]);
        out.push_str(replacement);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn shape(file: &Path, message: &str) -> ConfigError {
    ConfigError::Shape {
        file: file.to_path_buf(),
        message: message.to_owned(),
    }
}

fn key_err(file: &Path, key: &str, message: &str) -> ConfigError {
    ConfigError::Key {
        file: file.to_path_buf(),
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

/// Single message transforms: Connect runs them between the converter and the connector, and
/// this sink runs none. A file that lists some is refused, naming each and what the sink does
/// instead, rather than read as if they had run: an `ExtractNewRecordState` with its default
/// options drops deletes, which the sink applies. `transforms.*` keys of aliases not listed
/// are ignored, as Connect ignores them.
fn transforms(raw: &mut Raw) -> Result<(), ConfigError> {
    let listed = raw.take("transforms").unwrap_or_default();
    let aliases: Vec<&str> = listed
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(alias) = aliases.first() {
        let key = format!("transforms.{alias}.type");
        let class = raw
            .map
            .get(&key)
            .map(|c| c.trim().to_owned())
            .unwrap_or_default();
        let instead = match class.rsplit('.').next().unwrap_or_default() {
            "ExtractNewRecordState" | "UnwrapFromEnvelope" => {
                "the sink applies Debezium change events itself (`cdc.envelope`, default auto; deletes and tombstones follow `delete.enabled`), and reads the flattened form too: remove the transform"
            }
            "RegexRouter" | "TimestampRouter" | "ByLogicalTableRouter" => {
                "name tables with `table.name.format` (`${topic}`, `${source.db}`, `${source.schema}`, `${source.table}`) instead"
            }
            _ => "remove it, or run it in the source connector",
        };
        let class = if class.is_empty() { "no type" } else { &class };
        return Err(key_err(
            &raw.file,
            "transforms",
            &format!(
                "single message transforms are not run by this sink; `{alias}` ({class}): {instead}"
            ),
        ));
    }
    raw.map.retain(|k, _| !k.starts_with("transforms."));
    Ok(())
}

/// The config map while keys are being pulled out of it; what remains at the end is unknown.
struct Raw {
    file: PathBuf,
    map: BTreeMap<String, String>,
}

impl Raw {
    fn take(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    fn required(&mut self, key: &str) -> Result<String, ConfigError> {
        match self.take(key) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(key_err(&self.file, key, "must not be empty")),
            None => Err(shape(&self.file, &format!("missing required key `{key}`"))),
        }
    }

    fn take_parsed<T: std::str::FromStr>(
        &mut self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| key_err(&self.file, key, &format!("expected {what}, got `{v}`"))),
        }
    }

    fn take_positive(&mut self, key: &str, default: u64) -> Result<u64, ConfigError> {
        Ok(self.take_positive_opt(key)?.unwrap_or(default))
    }

    fn take_positive_opt(&mut self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.take_parsed::<u64>(key, "a positive integer")? {
            Some(0) => Err(key_err(
                &self.file,
                key,
                "expected a positive integer, got `0`",
            )),
            n => Ok(n),
        }
    }

    /// A fraction between 0 and 1.
    fn take_fraction(&mut self, key: &str, default: f64) -> Result<f64, ConfigError> {
        match self.take_parsed::<f64>(key, "a fraction between 0 and 1")? {
            None => Ok(default),
            Some(f) if (0.0..=1.0).contains(&f) => Ok(f),
            Some(f) => Err(key_err(
                &self.file,
                key,
                &format!("expected a fraction between 0 and 1, got `{f}`"),
            )),
        }
    }

    fn take_bool(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(key_err(
                    &self.file,
                    key,
                    &format!("expected true or false, got `{v}`"),
                )),
            },
        }
    }

    /// The `ducklake.s3.*` keys as written; [`s3::resolve`] checks them.
    fn s3_keys(&mut self) -> s3::S3Keys {
        s3::S3Keys {
            endpoint: self.take("ducklake.s3.endpoint"),
            region: self.take("ducklake.s3.region"),
            url_style: self.take("ducklake.s3.url.style"),
            use_ssl: self.take("ducklake.s3.use.ssl"),
            key_id: self.take("ducklake.s3.access.key.id"),
            secret: self.take("ducklake.s3.secret.access.key"),
            session_token: self.take("ducklake.s3.session.token"),
        }
    }

    /// `errors.tolerance` and the dead-letter queue keys, as Kafka Connect names them.
    fn errors(&mut self) -> Result<ErrorHandling, ConfigError> {
        let tolerate = match self.take("errors.tolerance").as_deref().map(str::trim) {
            None | Some("none") => false,
            Some("all") => true,
            Some(other) => {
                return Err(key_err(
                    &self.file,
                    "errors.tolerance",
                    &format!("expected none or all, got `{other}`"),
                ))
            }
        };
        let dlq_topic = self
            .take("errors.deadletterqueue.topic.name")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let dlq_replication_factor = self
            .take_parsed::<i32>(
                "errors.deadletterqueue.topic.replication.factor",
                "a replication factor (-1: the broker's default)",
            )?
            .unwrap_or(-1);
        let dlq_context_headers =
            self.take_bool("errors.deadletterqueue.context.headers.enable", false)?;
        let log = self.take_bool("errors.log.enable", false)?;
        let log_messages = self.take_bool("errors.log.include.messages", false)?;
        if dlq_topic.is_some() && !tolerate {
            return Err(key_err(
                &self.file,
                "errors.deadletterqueue.topic.name",
                "a dead letter queue needs errors.tolerance=all (with none, a bad record stops the connector)",
            ));
        }
        Ok(ErrorHandling {
            tolerate,
            dlq_topic,
            dlq_replication_factor,
            dlq_context_headers,
            log,
            log_messages,
        })
    }

    /// `insert.mode`, `pk.mode`, `pk.fields`, `delete.enabled`, `truncate.enabled`,
    /// `cdc.envelope`, checked together (deletes need a key; upserts need a key source).
    fn apply(&mut self) -> Result<ApplySettings, ConfigError> {
        let insert_mode = match self.take("insert.mode").as_deref().map(str::trim) {
            None | Some("append" | "insert") => InsertMode::Append,
            Some("upsert" | "update") => InsertMode::Upsert,
            Some(other) => {
                return Err(key_err(
                    &self.file,
                    "insert.mode",
                    &format!("expected append or upsert, got `{other}`"),
                ))
            }
        };
        let pk_mode = match self.take("pk.mode").as_deref().map(str::trim) {
            None | Some("none") => None,
            Some("record_key") => Some(PkMode::RecordKey),
            Some("record_value") => Some(PkMode::RecordValue),
            Some("kafka") => {
                return Err(key_err(
                    &self.file,
                    "pk.mode",
                    "pk.mode=kafka is not supported: records are exactly once by their Kafka coordinates already; use record_key or record_value for upserts",
                ))
            }
            Some(other) => {
                return Err(key_err(
                    &self.file,
                    "pk.mode",
                    &format!("expected none, record_key or record_value, got `{other}`"),
                ))
            }
        };
        let pk_fields: Vec<String> = self
            .take("pk.fields")
            .map(|list| {
                list.split(',')
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let delete_enabled = self.take_bool("delete.enabled", false)?;
        let truncate_enabled = self.take_bool("truncate.enabled", false)?;
        let envelope = match self.take("cdc.envelope").as_deref().map(str::trim) {
            None | Some("auto") => EnvelopeMode::Auto,
            Some("debezium") => EnvelopeMode::Debezium,
            Some("none") => EnvelopeMode::None,
            Some(other) => {
                return Err(key_err(
                    &self.file,
                    "cdc.envelope",
                    &format!("expected auto, debezium or none, got `{other}`"),
                ))
            }
        };
        if insert_mode == InsertMode::Upsert && pk_mode.is_none() {
            return Err(key_err(
                &self.file,
                "pk.mode",
                "insert.mode=upsert needs a primary key: set pk.mode=record_key (Debezium topics) or record_value with pk.fields",
            ));
        }
        if delete_enabled && insert_mode != InsertMode::Upsert {
            return Err(key_err(
                &self.file,
                "delete.enabled",
                "deletes need a primary key to delete by: set insert.mode=upsert and pk.mode",
            ));
        }
        if insert_mode == InsertMode::Append && !pk_fields.is_empty() {
            return Err(key_err(
                &self.file,
                "pk.fields",
                "has no effect with insert.mode=append (set insert.mode=upsert)",
            ));
        }
        Ok(ApplySettings {
            insert_mode,
            pk_mode: pk_mode.unwrap_or(PkMode::RecordKey),
            pk_fields,
            delete_enabled,
            truncate_enabled,
            envelope,
        })
    }

    /// A key or value converter, and its schema registry when it is Avro.
    fn converter(
        &mut self,
        key: &str,
        default: Converter,
    ) -> Result<(Converter, Option<RegistryConfig>), ConfigError> {
        let schemas_key = format!("{key}.schemas.enable");
        let schemas_enable = self.take_bool(&schemas_key, true)?;
        let Some(class) = self.take(key) else {
            return Ok((
                match default {
                    Converter::Json { .. } => Converter::Json { schemas_enable },
                    other => other,
                },
                None,
            ));
        };
        Ok(match class.trim() {
            "org.apache.kafka.connect.storage.StringConverter" => (Converter::String, None),
            "org.apache.kafka.connect.json.JsonConverter" => {
                (Converter::Json { schemas_enable }, None)
            }
            "org.apache.kafka.connect.converters.ByteArrayConverter" => {
                (Converter::ByteArray, None)
            }
            "io.confluent.connect.avro.AvroConverter" => {
                (Converter::Avro, Some(self.registry(key)?))
            }
            other => {
                return Err(key_err(
                    &self.file,
                    key,
                    &format!("unknown converter `{other}` (expected org.apache.kafka.connect.json.JsonConverter, io.confluent.connect.avro.AvroConverter, org.apache.kafka.connect.storage.StringConverter or org.apache.kafka.connect.converters.ByteArrayConverter)"),
                ))
            }
        })
    }

    /// `<converter>.schema.registry.url` and basic auth, as Confluent's AvroConverter reads
    /// them.
    fn registry(&mut self, converter: &str) -> Result<RegistryConfig, ConfigError> {
        let url_key = format!("{converter}.schema.registry.url");
        let urls: Vec<String> = self
            .take(&url_key)
            .unwrap_or_default()
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(key_err(
                &self.file,
                &url_key,
                "AvroConverter needs the schema registry's URL",
            ));
        }
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(key_err(
                &self.file,
                &url_key,
                &format!("`{bad}` is not an http:// or https:// URL"),
            ));
        }
        let source_key = format!("{converter}.basic.auth.credentials.source");
        let info_key = format!("{converter}.basic.auth.user.info");
        // The older spelling Confluent's converters still accept.
        let legacy_key = format!("{converter}.schema.registry.basic.auth.user.info");
        if let Some(legacy) = self.take(&legacy_key) {
            self.map.entry(info_key.clone()).or_insert(legacy);
        }
        let user_info = match self.take(&source_key).as_deref().map(str::trim) {
            None if self.map.contains_key(&info_key) => self.take(&info_key),
            None => None,
            Some("USER_INFO") => Some(self.take(&info_key).ok_or_else(|| {
                key_err(
                    &self.file,
                    &info_key,
                    "basic.auth.credentials.source=USER_INFO needs user:password here",
                )
            })?),
            Some(other) => {
                return Err(key_err(
                    &self.file,
                    &source_key,
                    &format!("only USER_INFO is supported, got `{other}`"),
                ))
            }
        };
        Ok(RegistryConfig { urls, user_info })
    }
}

#[cfg(test)]
mod tests;
