//! `ducklake-gen cdc`: Debezium MySQL change events of an `inventory.users` table, byte for
//! byte as Debezium's MySQL connector writes them through Kafka Connect's `JsonConverter`
//! (the replacement for the original demo's `modify_db.py`, minus the MySQL server).
//!
//! What it guarantees:
//! - a snapshot (`op=r`) of `keys` rows, then exactly `count` change events (`c`, `u`, `d`; a
//!   primary-key change counts as its two events), each `d` followed by a tombstone;
//! - records are keyed by the primary key and partitioned like Kafka Connect's producer does
//!   (murmur2 of the key bytes), so every event of one key is in one partition, in order;
//!   the idempotent producer keeps that order through retries;
//! - the same seed gives the same keys, operations and values (timestamps follow the clock);
//! - the `--expect` file is the table state the events imply, rendered for DuckDB.
//!
//! The table, the workload and the encodings are separate (`table`, `workload`, and `json` /
//! `avro` behind [`ChangeEncoder`]). With `--evolve` the table gains a nullable column midway
//! (`ALTER TABLE … ADD COLUMN nickname`): events after it carry the new row schema (a second
//! version of the `-value` subject in Avro).

mod avro;
mod json;
mod table;
mod workload;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::produce::TalliedProducer;
use super::{GenError, ProduceReport};
use json::JsonEncoder;
use workload::{wall_clock, Change, Message, Mix, Op, Workload};

/// The captured database and table, as they appear in `source.db` / `source.table`.
pub(crate) const DATABASE: &str = "inventory";
pub(crate) const TABLE: &str = "users";
const DEFAULT_SERVER: &str = "dbserver1";

/// How keys and values are serialized, named as in the connector config it mimics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdcFormat {
    /// `JsonConverter`, `schemas.enable=false`: plain payloads.
    Json,
    /// `JsonConverter`, `schemas.enable=true`: `{"schema", "payload"}` envelopes.
    JsonSchema,
    /// Confluent `AvroConverter` with a schema registry.
    Avro,
}

impl FromStr for CdcFormat {
    type Err = GenError;

    fn from_str(s: &str) -> Result<Self, GenError> {
        match s {
            "json" => Ok(CdcFormat::Json),
            "json-schema" => Ok(CdcFormat::JsonSchema),
            "avro" => Ok(CdcFormat::Avro),
            other => Err(GenError::InvalidOption(format!(
                "unknown format `{other}`: use json, json-schema or avro"
            ))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CdcOptions {
    pub bootstrap_servers: String,
    /// Default `dbserver1.inventory.users`. A topic named `<prefix>.inventory.users` makes
    /// `<prefix>` the logical server name (`source.name`, schema names); any other name is
    /// treated as a topic routed from `dbserver1.inventory.users`.
    pub topic: String,
    /// The topic is created with this many partitions (an existing topic is kept).
    pub partitions: i32,
    pub format: CdcFormat,
    /// Schema registry URL, for `--format avro`.
    pub schema_registry: Option<String>,
    /// Change events after the snapshot: `c`, `u` and `d`, a primary-key change counting as
    /// two (its `d` and its `c`). Snapshot reads and tombstones are not counted.
    pub count: u64,
    /// Rows in the initial snapshot (ids from 1001).
    pub keys: u32,
    pub seed: u64,
    /// Change events (snapshot reads included, tombstones not) per second; `None`: as fast
    /// as the broker takes them.
    pub rate: Option<f64>,
    /// Write the final table state here (JSON Lines, sorted by id).
    pub expect: Option<PathBuf>,
    /// Add the `nickname` column after half of the changes.
    pub evolve: bool,
    /// Percent of the change events that are updates and deletes (`d` of primary-key
    /// changes included), the rest inserts; `None`: ≈ 41 % updates, 27 % deletes.
    pub mix: Option<(f64, f64)>,
}

/// Events produced, by operation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OpCounts {
    pub read: u64,
    pub create: u64,
    pub update: u64,
    pub delete: u64,
    pub tombstone: u64,
}

impl OpCounts {
    fn add(&mut self, op: Op) {
        match op {
            Op::Read => self.read += 1,
            Op::Create => self.create += 1,
            Op::Update => self.update += 1,
            Op::Delete => self.delete += 1,
        }
    }

    /// Change events, snapshot reads included, tombstones not.
    pub fn events(&self) -> u64 {
        self.read + self.create + self.update + self.delete
    }
}

#[derive(Debug, Clone)]
pub struct CdcReport {
    pub produce: ProduceReport,
    pub ops: OpCounts,
    /// Rows in the final state (= lines of the `--expect` file).
    pub rows: usize,
}

impl CdcReport {
    pub fn summary(&self) -> String {
        let o = &self.ops;
        format!(
            "{} events (r={} c={} u={} d={}) + {} tombstones; {}; final rows {}",
            o.events(),
            o.read,
            o.create,
            o.update,
            o.delete,
            o.tombstone,
            self.produce.summary(),
            self.rows
        )
    }
}

/// The columns of the `--expect` file and the DuckDB type of each, in table order: what a
/// sink maps the Debezium types to, and what `read_json(FILE, columns={…})` needs.
/// `evolve`: the table of an `--evolve` run, with the column added midway.
pub fn cdc_expect_columns(evolve: bool) -> Vec<(&'static str, &'static str)> {
    let mut columns = table::COLUMNS.to_vec();
    if evolve {
        columns.push(table::EVOLVED_COLUMN);
    }
    columns
}

/// Serializes keys and values of one format. Building one may need I/O (a schema registry
/// for Avro), encoding never does.
pub(crate) trait ChangeEncoder: Send {
    fn key(&self, id: i32) -> Vec<u8>;
    fn value(&self, change: &Change) -> Vec<u8>;
}

/// The logical server name and the schema names derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    pub server: String,
}

impl Names {
    pub(crate) fn for_topic(topic: &str) -> Self {
        let suffix = format!(".{DATABASE}.{TABLE}");
        let server = topic
            .strip_suffix(&suffix)
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_SERVER);
        Names {
            server: server.to_owned(),
        }
    }

    fn base(&self) -> String {
        format!("{}.{DATABASE}.{TABLE}", self.server)
    }

    pub(crate) fn key(&self) -> String {
        format!("{}.Key", self.base())
    }

    pub(crate) fn value(&self) -> String {
        format!("{}.Value", self.base())
    }

    pub(crate) fn envelope(&self) -> String {
        format!("{}.Envelope", self.base())
    }
}

pub(crate) async fn encoder_for(opts: &CdcOptions) -> Result<Box<dyn ChangeEncoder>, GenError> {
    let names = Names::for_topic(&opts.topic);
    match opts.format {
        CdcFormat::Json => Ok(Box::new(JsonEncoder::new(names, false))),
        CdcFormat::JsonSchema => Ok(Box::new(JsonEncoder::new(names, true))),
        CdcFormat::Avro => {
            let url = opts.schema_registry.as_deref().ok_or_else(|| {
                GenError::InvalidOption("--format avro needs --schema-registry URL".into())
            })?;
            let encoder = avro::AvroEncoder::register(names, &opts.topic, url, opts.evolve).await?;
            Ok(Box::new(encoder))
        }
    }
}

/// Change events encoded without a broker or registry, for the decode benchmark: the key and
/// value schemas' Avro text (ids 1 and 2) when `format` is Avro, and each message's key and
/// value (`None`: a tombstone). A fixed clock, so a seed fixes every byte.
pub struct CdcSample {
    pub key_schema: Option<String>,
    pub value_schema: Option<String>,
    pub messages: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// `keys` snapshot reads, then `count` changes with 20 % updates and 10 % deletes (the
/// benchmark's mix), encoded as `format`.
pub fn cdc_sample(
    format: CdcFormat,
    keys: u32,
    count: u64,
    seed: u64,
) -> Result<CdcSample, GenError> {
    let names = Names::for_topic(DEFAULT_SERVER);
    let (encoder, key_schema, value_schema): (Box<dyn ChangeEncoder>, _, _) = match format {
        CdcFormat::Json => (Box::new(JsonEncoder::new(names, false)), None, None),
        CdcFormat::JsonSchema => (Box::new(JsonEncoder::new(names, true)), None, None),
        CdcFormat::Avro => {
            let schemas = avro::AvroEncoder::subjects(&names, false);
            let text = |i: usize| {
                schemas
                    .get(i)
                    .map(|(_, connect)| super::avro::avro_schema(connect).to_string())
            };
            let (key, value) = (text(0), text(1));
            (
                Box::new(avro::AvroEncoder::with_ids(names, &[1, 2])?),
                key,
                value,
            )
        }
    };
    let mut now = 1_764_700_000_000_000i64;
    let clock = Box::new(move || {
        now += 1_000;
        now
    });
    let mut workload = Workload::new(keys, count, seed, clock);
    if let Some(mix) = Mix::percent(20.0, 10.0) {
        workload = workload.with_mix(mix);
    }
    let messages = workload
        .map(|m| {
            let value = match &m {
                Message::Change { change, .. } => Some(encoder.value(change)),
                Message::Tombstone { .. } => None,
            };
            (encoder.key(m.key()), value)
        })
        .collect();
    Ok(CdcSample {
        key_schema,
        value_schema,
        messages,
    })
}

/// The value of a `__debezium.newkey` / `__debezium.oldkey` header: the key struct as Kafka
/// Connect's default `SimpleHeaderConverter` renders it, whatever the key converter.
fn key_header_value(id: i32) -> Vec<u8> {
    format!(r#"{{"id":{id}}}"#).into_bytes()
}

/// The `--updates`/`--deletes` mix, if one was asked for.
fn mix(opts: &CdcOptions) -> Result<Option<Mix>, GenError> {
    let Some((updates, deletes)) = opts.mix else {
        return Ok(None);
    };
    Mix::percent(updates, deletes).map(Some).ok_or_else(|| {
        GenError::InvalidOption(format!(
            "--updates {updates} --deletes {deletes}: each must be 0 or more, and updates + 4/3 × deletes at most 100 (a third of the deletes are primary-key changes, whose create must fit in the inserts)"
        ))
    })
}

fn check(opts: &CdcOptions) -> Result<(), GenError> {
    if opts.partitions < 1 {
        return Err(GenError::InvalidOption(format!(
            "--partitions must be at least 1, got {}",
            opts.partitions
        )));
    }
    if opts.format != CdcFormat::Avro && opts.schema_registry.is_some() {
        return Err(GenError::InvalidOption(
            "--schema-registry is only used with --format avro".into(),
        ));
    }
    mix(opts)?;
    if let Some(rate) = opts.rate {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(GenError::InvalidOption(format!(
                "--rate must be a positive number, got {rate}"
            )));
        }
    }
    Ok(())
}

/// Creates the topic, produces the snapshot and the changes, waits until every record is
/// acknowledged, then writes the `--expect` file.
pub async fn produce_cdc(opts: &CdcOptions) -> Result<CdcReport, GenError> {
    check(opts)?;
    let encoder = encoder_for(opts).await?;
    super::create_topic(&opts.bootstrap_servers, &opts.topic, opts.partitions).await?;
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || produce_blocking(&opts, encoder.as_ref()))
        .await
        .map_err(|_| GenError::Kafka(KafkaError::Canceled))?
}

fn produce_blocking(opts: &CdcOptions, encoder: &dyn ChangeEncoder) -> Result<CdcReport, GenError> {
    // Kafka Connect's producer hashes the serialized key with murmur2; so does this one.
    let producer = TalliedProducer::new(
        &opts.bootstrap_servers,
        &[("partitioner", "murmur2_random")],
    )?;
    let mut workload = Workload::new(opts.keys, opts.count, opts.seed, wall_clock())
        .evolving_at(opts.evolve.then_some(opts.count / 2));
    if let Some(mix) = mix(opts)? {
        workload = workload.with_mix(mix);
    }
    let mut ops = OpCounts::default();
    let mut records = 0u64;
    for message in workload.by_ref() {
        let key = encoder.key(message.key());
        let value = match &message {
            Message::Change { change, .. } => {
                producer.pace(ops.events(), opts.rate);
                ops.add(change.op);
                Some(encoder.value(change))
            }
            Message::Tombstone { .. } => {
                ops.tombstone += 1;
                None
            }
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(&opts.topic).key(&key[..]);
        if let Some(v) = &value {
            record = record.payload(&v[..]);
        }
        if let Some(h) = message.header() {
            let header_value = key_header_value(h.id);
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: h.name,
                value: Some(&header_value[..]),
            }));
        }
        producer.send(record)?;
        records += 1;
    }
    let produce = producer.finish(&opts.topic, records)?;
    let rows = workload.rows();
    if let Some(path) = &opts.expect {
        write_expect(path, &rows, opts.evolve)?;
    }
    Ok(CdcReport {
        produce,
        ops,
        rows: rows.len(),
    })
}

/// One JSON object per row, in the given (id) order.
pub(crate) fn write_expect(
    path: &Path,
    rows: &[(&table::UserRow, table::Reader)],
    evolved: bool,
) -> Result<(), GenError> {
    let write_err = |source| GenError::Write {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::create(path).map_err(write_err)?;
    let mut out = std::io::BufWriter::new(file);
    for (row, reader) in rows {
        writeln!(out, "{}", row.expect_json(*reader, evolved)).map_err(write_err)?;
    }
    out.flush().map_err(write_err)
}
