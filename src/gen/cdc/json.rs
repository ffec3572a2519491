//! Kafka Connect `JsonConverter` output of Debezium MySQL change events: with
//! `schemas.enable=true` every key and value is a `{"schema": …, "payload": …}` envelope, with
//! `false` just the payload. Field order, schema names, versions, parameters and
//! optionality follow what Debezium 3.x's MySQL connector emits (the envelope schema is
//! version 2 and carries `ts_us`/`ts_ns`; the source block is
//! `io.debezium.connector.mysql.Source`).

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::table::{zoned_timestamp_string, Reader, UserRow};
use super::workload::Change;
use super::{ChangeEncoder, Names};
use crate::gen::minimal_twos_complement;

/// The connector version written into `source.version`.
pub(crate) const DEBEZIUM_VERSION: &str = "3.6.3.Final";
const SNAPSHOT_ALLOWED: &str =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

pub(crate) struct JsonEncoder {
    names: Names,
    /// Pre-rendered schemas, spliced into every record: the key's, the value's, and the
    /// value's after the `--evolve` `ALTER TABLE`.
    schemas: Option<(String, String, String)>,
}

impl JsonEncoder {
    pub(crate) fn new(names: Names, schemas_enable: bool) -> Self {
        let schemas = schemas_enable.then(|| {
            (
                key_schema(&names).to_string(),
                value_schema(&names, false).to_string(),
                value_schema(&names, true).to_string(),
            )
        });
        JsonEncoder { names, schemas }
    }
}

impl ChangeEncoder for JsonEncoder {
    fn key(&self, id: i32) -> Vec<u8> {
        let payload = json!({ "id": id });
        match &self.schemas {
            Some((key_schema, _, _)) => {
                format!(r#"{{"schema":{key_schema},"payload":{payload}}}"#).into_bytes()
            }
            None => payload.to_string().into_bytes(),
        }
    }

    fn value(&self, change: &Change) -> Vec<u8> {
        let payload = envelope_payload(&self.names, change);
        match &self.schemas {
            Some((_, plain, evolved)) => {
                let value_schema = if change.evolved { evolved } else { plain };
                format!(r#"{{"schema":{value_schema},"payload":{payload}}}"#).into_bytes()
            }
            None => payload.into_bytes(),
        }
    }
}

fn field(ty: &str, optional: bool, name: &str) -> Value {
    json!({ "type": ty, "optional": optional, "field": name })
}

/// A field with a logical type: `name`, `version`, optional `parameters`, in the order
/// `JsonConverter` writes them.
fn logical(
    ty: &str,
    optional: bool,
    logical_name: &str,
    params: Option<Value>,
    name: &str,
) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    m.insert("optional".into(), json!(optional));
    m.insert("name".into(), json!(logical_name));
    m.insert("version".into(), json!(1));
    if let Some(p) = params {
        m.insert("parameters".into(), p);
    }
    m.insert("field".into(), json!(name));
    Value::Object(m)
}

fn decimal(optional: bool, scale: u32, precision: u32, name: &str) -> Value {
    logical(
        "bytes",
        optional,
        "org.apache.kafka.connect.data.Decimal",
        Some(
            json!({ "scale": scale.to_string(), "connect.decimal.precision": precision.to_string() }),
        ),
        name,
    )
}

pub(crate) fn key_schema(names: &Names) -> Value {
    json!({
        "type": "struct",
        "fields": [field("int32", false, "id")],
        "optional": false,
        "name": names.key(),
    })
}

/// The row struct (`…Value`), as the `before`/`after` field called `field_name`; `evolved`:
/// with the column `--evolve` adds.
fn row_schema(names: &Names, field_name: &str, evolved: bool) -> Value {
    let mut fields = vec![
        field("int32", false, "id"),
        field("string", false, "first_name"),
        field("string", false, "last_name"),
        field("string", true, "email"),
        decimal(false, 2, 10, "balance"),
        logical("int32", true, "io.debezium.time.Date", None, "birth_date"),
        logical(
            "int64",
            false,
            "io.debezium.time.Timestamp",
            None,
            "created_at",
        ),
        logical(
            "string",
            false,
            "io.debezium.time.ZonedTimestamp",
            None,
            "updated_at",
        ),
        field("boolean", false, "active"),
        field("double", true, "score"),
        logical(
            "string",
            false,
            "io.debezium.data.Enum",
            Some(json!({ "allowed": super::table::STATUSES.join(",") })),
            "status",
        ),
        logical(
            "string",
            true,
            "io.debezium.data.EnumSet",
            Some(json!({ "allowed": super::table::TAGS.join(",") })),
            "tags",
        ),
        logical("string", true, "io.debezium.data.Json", None, "profile"),
        decimal(false, 0, 20, "visits"),
        logical(
            "int64",
            true,
            "io.debezium.time.MicroTime",
            None,
            "login_time",
        ),
    ];
    if evolved {
        fields.push(field("string", true, super::table::EVOLVED_COLUMN.0));
    }
    json!({
        "type": "struct",
        "fields": fields,
        "optional": true,
        "name": names.value(),
        "field": field_name,
    })
}

fn source_schema() -> Value {
    let snapshot = {
        let mut m = Map::new();
        m.insert("type".into(), json!("string"));
        m.insert("optional".into(), json!(true));
        m.insert("name".into(), json!("io.debezium.data.Enum"));
        m.insert("version".into(), json!(1));
        m.insert("parameters".into(), json!({ "allowed": SNAPSHOT_ALLOWED }));
        m.insert("default".into(), json!("false"));
        m.insert("field".into(), json!("snapshot"));
        Value::Object(m)
    };
    json!({
        "type": "struct",
        "fields": [
            field("string", false, "version"),
            field("string", false, "connector"),
            field("string", false, "name"),
            field("int64", false, "ts_ms"),
            snapshot,
            field("string", false, "db"),
            field("string", true, "sequence"),
            field("int64", true, "ts_us"),
            field("int64", true, "ts_ns"),
            field("string", true, "table"),
            field("int64", false, "server_id"),
            field("string", true, "gtid"),
            field("string", false, "file"),
            field("int64", false, "pos"),
            field("int32", false, "row"),
            field("int64", true, "thread"),
            field("string", true, "query"),
        ],
        "optional": false,
        "name": "io.debezium.connector.mysql.Source",
        "version": 1,
        "field": "source",
    })
}

pub(crate) fn value_schema(names: &Names, evolved: bool) -> Value {
    json!({
        "type": "struct",
        "fields": [
            row_schema(names, "before", evolved),
            row_schema(names, "after", evolved),
            source_schema(),
            {
                "type": "struct",
                "fields": [
                    field("string", false, "id"),
                    field("int64", false, "total_order"),
                    field("int64", false, "data_collection_order"),
                ],
                "optional": true,
                "name": "event.block",
                "version": 1,
                "field": "transaction",
            },
            field("string", false, "op"),
            field("int64", true, "ts_ms"),
            field("int64", true, "ts_us"),
            field("int64", true, "ts_ns"),
        ],
        "optional": false,
        "name": names.envelope(),
        "version": 2,
    })
}

fn decimal_bytes(unscaled: i128) -> String {
    base64::engine::general_purpose::STANDARD.encode(minimal_twos_complement(unscaled))
}

// The payloads are serialized straight from borrowed structs (field order = declaration
// order): building `serde_json::Value` maps per event cost several times more.

#[derive(Serialize)]
struct RowPayload<'a> {
    id: i32,
    first_name: &'a str,
    last_name: &'a str,
    email: Option<&'a str>,
    balance: String,
    birth_date: Option<i32>,
    created_at: i64,
    updated_at: String,
    active: bool,
    score: Option<f64>,
    status: &'a str,
    tags: Option<&'a str>,
    profile: Option<String>,
    visits: String,
    login_time: Option<i64>,
    /// Only after the `--evolve` `ALTER TABLE` (then `null` is written too).
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<Option<&'a str>>,
}

impl<'a> RowPayload<'a> {
    fn new(row: &'a UserRow, reader: Reader, evolved: bool) -> Self {
        RowPayload {
            id: row.id,
            first_name: &row.first_name,
            last_name: &row.last_name,
            email: row.email.as_deref(),
            balance: decimal_bytes(row.balance_cents.into()),
            birth_date: row.birth_date,
            created_at: row.created_at_ms,
            updated_at: zoned_timestamp_string(row.updated_at_us),
            active: row.active,
            score: row.score,
            status: row.status,
            tags: row.tags.as_deref(),
            profile: row.profile_text(reader),
            visits: decimal_bytes(row.visits.into()),
            login_time: row.login_time_us,
            nickname: evolved.then_some(row.nickname.as_deref()),
        }
    }
}

#[derive(Serialize)]
struct SourcePayload<'a> {
    version: &'static str,
    connector: &'static str,
    name: &'a str,
    ts_ms: i64,
    snapshot: &'static str,
    db: &'static str,
    sequence: Option<&'static str>,
    ts_us: i64,
    ts_ns: i64,
    table: &'static str,
    server_id: i64,
    gtid: Option<&'a str>,
    file: &'static str,
    pos: i64,
    row: i32,
    thread: Option<i64>,
    query: Option<&'static str>,
}

#[derive(Serialize)]
struct EnvelopePayload<'a> {
    before: Option<RowPayload<'a>>,
    after: Option<RowPayload<'a>>,
    source: SourcePayload<'a>,
    /// Only with `provide.transaction.metadata=true`, which is off by default.
    transaction: Option<()>,
    op: &'static str,
    ts_ms: i64,
    ts_us: i64,
    ts_ns: i64,
}

/// The envelope payload (`schemas.enable=false` value) of one change.
pub(crate) fn envelope_payload(names: &Names, c: &Change) -> String {
    let s = &c.source;
    let payload = EnvelopePayload {
        before: c
            .before
            .as_ref()
            .map(|r| RowPayload::new(r, c.reader, c.evolved)),
        after: c
            .after
            .as_ref()
            .map(|r| RowPayload::new(r, c.reader, c.evolved)),
        source: SourcePayload {
            version: DEBEZIUM_VERSION,
            connector: "mysql",
            name: &names.server,
            ts_ms: s.ts_us.div_euclid(1000),
            snapshot: s.snapshot,
            db: super::DATABASE,
            sequence: None,
            ts_us: s.ts_us,
            ts_ns: s.ts_us * 1000,
            table: super::TABLE,
            server_id: s.server_id,
            gtid: s.gtid.as_deref(),
            file: s.file,
            pos: s.pos,
            row: s.row,
            thread: s.thread,
            query: None,
        },
        transaction: None,
        op: c.op.code(),
        ts_ms: c.ts_us.div_euclid(1000),
        ts_us: c.ts_us,
        ts_ns: c.ts_us * 1000,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string(&payload).unwrap_or_default()
}
