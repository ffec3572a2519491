//! The generator against Debezium's documented shapes, and its event stream replayed by a
//! small interpreter written here (independent of the sink's decoder and of the generator's
//! own renderings) against the `--expect` rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::{json, Value};

use super::workload::{Clock, Message, Mix, Op, Workload, NEW_KEY_HEADER, OLD_KEY_HEADER};
use super::*;
use std::sync::Arc;

fn stepping_clock() -> Clock {
    let mut t = 1_700_000_000_123_456_i64;
    Box::new(move || {
        t += 1_337;
        t
    })
}

fn workload(keys: u32, count: u64, seed: u64) -> Workload {
    Workload::new(keys, count, seed, stepping_clock())
}

/// A record as it would sit in Kafka.
struct Record {
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    header: Option<(String, Vec<u8>)>,
}

fn encode(format: CdcFormat, messages: Vec<Message>) -> Vec<Record> {
    let names = Names::for_topic("dbserver1.inventory.users");
    let encoder: Box<dyn ChangeEncoder> = match format {
        CdcFormat::Json => Box::new(JsonEncoder::new(names, false)),
        CdcFormat::JsonSchema => Box::new(JsonEncoder::new(names, true)),
        CdcFormat::Avro => Box::new(avro::AvroEncoder::with_ids(names, &[1, 2, 3]).unwrap()),
    };
    messages
        .into_iter()
        .map(|m| Record {
            key: encoder.key(m.key()),
            value: match &m {
                Message::Change { change, .. } => Some(encoder.value(change)),
                Message::Tombstone { .. } => None,
            },
            header: m
                .header()
                .map(|h| (h.name.to_owned(), key_header_value(h.id))),
        })
        .collect()
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn field_names(schema: &Value) -> Vec<&str> {
    schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect()
}

fn compact(literal: &str) -> String {
    serde_json::from_str::<Value>(literal).unwrap().to_string()
}

// The source block schema of a Debezium 3.x binlog connector (field order, types,
// optionality, the snapshot Enum with its default), as JsonConverter writes it.
const SOURCE_SCHEMA: &str = r#"{"type":"struct","fields":[
 {"type":"string","optional":false,"field":"version"},
 {"type":"string","optional":false,"field":"connector"},
 {"type":"string","optional":false,"field":"name"},
 {"type":"int64","optional":false,"field":"ts_ms"},
 {"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},
 {"type":"string","optional":false,"field":"db"},
 {"type":"string","optional":true,"field":"sequence"},
 {"type":"int64","optional":true,"field":"ts_us"},
 {"type":"int64","optional":true,"field":"ts_ns"},
 {"type":"string","optional":true,"field":"table"},
 {"type":"int64","optional":false,"field":"server_id"},
 {"type":"string","optional":true,"field":"gtid"},
 {"type":"string","optional":false,"field":"file"},
 {"type":"int64","optional":false,"field":"pos"},
 {"type":"int32","optional":false,"field":"row"},
 {"type":"int64","optional":true,"field":"thread"},
 {"type":"string","optional":true,"field":"query"}],
 "optional":false,"name":"io.debezium.connector.mysql.Source","version":1,"field":"source"}"#;

const TRANSACTION_SCHEMA: &str = r#"{"type":"struct","fields":[
 {"type":"string","optional":false,"field":"id"},
 {"type":"int64","optional":false,"field":"total_order"},
 {"type":"int64","optional":false,"field":"data_collection_order"}],
 "optional":true,"name":"event.block","version":1,"field":"transaction"}"#;

// The MySQL type mappings of Debezium's documentation, default settings except
// bigint.unsigned.handling.mode=precise.
const ROW_FIELDS: &str = r#"[
 {"type":"int32","optional":false,"field":"id"},
 {"type":"string","optional":false,"field":"first_name"},
 {"type":"string","optional":false,"field":"last_name"},
 {"type":"string","optional":true,"field":"email"},
 {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"},"field":"balance"},
 {"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1,"field":"birth_date"},
 {"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"created_at"},
 {"type":"string","optional":false,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"updated_at"},
 {"type":"boolean","optional":false,"field":"active"},
 {"type":"double","optional":true,"field":"score"},
 {"type":"string","optional":false,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"new,active,suspended"},"field":"status"},
 {"type":"string","optional":true,"name":"io.debezium.data.EnumSet","version":1,"parameters":{"allowed":"admin,beta,newsletter,vip"},"field":"tags"},
 {"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"profile"},
 {"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"0","connect.decimal.precision":"20"},"field":"visits"},
 {"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","version":1,"field":"login_time"}]"#;

#[test]
fn events_have_the_shape_debezium_mysql_writes() {
    let messages: Vec<Message> = workload(3, 60, 11).collect();
    let records = encode(CdcFormat::JsonSchema, messages.clone());
    let first_update = messages
        .iter()
        .position(|m| matches!(m, Message::Change { change, .. } if change.op == Op::Update))
        .unwrap();
    let record = &records[first_update];

    // Key: the primary key struct.
    let id = messages[first_update].key();
    assert_eq!(
        String::from_utf8(record.key.clone()).unwrap(),
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false,"name":"dbserver1.inventory.users.Key"}},"payload":{{"id":{id}}}}}"#
        )
    );

    // Value schema: the envelope, its row structs, source and transaction blocks.
    let value = parse(record.value.as_ref().unwrap());
    assert_eq!(keys_of(&value), ["schema", "payload"]);
    let schema = &value["schema"];
    assert_eq!(schema["type"], "struct");
    assert_eq!(schema["name"], "dbserver1.inventory.users.Envelope");
    assert_eq!(schema["version"], 2);
    assert_eq!(schema["optional"], false);
    assert_eq!(
        field_names(schema),
        [
            "before",
            "after",
            "source",
            "transaction",
            "op",
            "ts_ms",
            "ts_us",
            "ts_ns"
        ]
    );
    let fields = schema["fields"].as_array().unwrap();
    for row in &fields[0..2] {
        assert_eq!(row["type"], "struct");
        assert_eq!(row["name"], "dbserver1.inventory.users.Value");
        assert_eq!(row["optional"], true);
        assert!(row.get("version").is_none());
        assert_eq!(row["fields"].to_string(), compact(ROW_FIELDS));
    }
    assert_eq!(fields[2].to_string(), compact(SOURCE_SCHEMA));
    assert_eq!(fields[3].to_string(), compact(TRANSACTION_SCHEMA));
    assert_eq!(
        fields[4].to_string(),
        r#"{"type":"string","optional":false,"field":"op"}"#
    );
    for (f, name) in fields[5..].iter().zip(["ts_ms", "ts_us", "ts_ns"]) {
        assert_eq!(
            f.to_string(),
            format!(r#"{{"type":"int64","optional":true,"field":"{name}"}}"#)
        );
    }

    // Payload: an update with full before and after images and a binlog source block.
    let payload = &value["payload"];
    assert_eq!(
        keys_of(payload),
        [
            "before",
            "after",
            "source",
            "transaction",
            "op",
            "ts_ms",
            "ts_us",
            "ts_ns"
        ]
    );
    assert_eq!(payload["op"], "u");
    assert_eq!(payload["transaction"], Value::Null);
    let column_names: Vec<&str> = cdc_expect_columns(false).iter().map(|(n, _)| *n).collect();
    assert_eq!(keys_of(&payload["before"]), column_names);
    assert_eq!(keys_of(&payload["after"]), column_names);
    assert_eq!(payload["before"]["id"], id);
    assert_eq!(payload["after"]["id"], id);
    assert_ne!(payload["before"], payload["after"]);
    let source = &payload["source"];
    assert_eq!(
        keys_of(source),
        [
            "version",
            "connector",
            "name",
            "ts_ms",
            "snapshot",
            "db",
            "sequence",
            "ts_us",
            "ts_ns",
            "table",
            "server_id",
            "gtid",
            "file",
            "pos",
            "row",
            "thread",
            "query"
        ]
    );
    assert_eq!(source["connector"], "mysql");
    assert_eq!(source["name"], "dbserver1");
    assert_eq!(source["snapshot"], "false");
    assert_eq!(source["db"], "inventory");
    assert_eq!(source["table"], "users");
    assert_eq!(source["sequence"], Value::Null);
    assert_eq!(source["query"], Value::Null);
    assert!(source["version"].as_str().unwrap().ends_with(".Final"));
    assert!(source["server_id"].as_i64().unwrap() > 0);
    assert!(source["gtid"].as_str().unwrap().contains(':'));
    assert_eq!(source["file"], "mysql-bin.000003");
    assert!(source["pos"].as_i64().unwrap() > 157);
    assert_eq!(source["row"], 0);
    // Binlog timestamps have whole seconds; the envelope's is when Debezium saw the event.
    let source_ms = source["ts_ms"].as_i64().unwrap();
    assert_eq!(source_ms % 1000, 0);
    assert_eq!(source["ts_us"].as_i64().unwrap(), source_ms * 1000);
    assert_eq!(source["ts_ns"].as_i64().unwrap(), source_ms * 1_000_000);
    let ts_ms = payload["ts_ms"].as_i64().unwrap();
    assert!(ts_ms >= source_ms);
    assert_eq!(payload["ts_us"].as_i64().unwrap() / 1000, ts_ms);

    // schemas.enable=false: the same payload without envelopes.
    let plain = encode(CdcFormat::Json, messages.clone());
    assert_eq!(
        String::from_utf8(plain[first_update].key.clone()).unwrap(),
        format!(r#"{{"id":{id}}}"#)
    );
    let plain_value = parse(plain[first_update].value.as_ref().unwrap());
    assert_eq!(keys_of(&plain_value), keys_of(payload));
    assert_eq!(plain_value["after"], payload["after"]);
}

#[test]
fn snapshot_reads_come_first_marked_first_true_last() {
    let records = encode(CdcFormat::Json, workload(4, 10, 3).collect());
    let snapshot: Vec<Value> = records[..4]
        .iter()
        .map(|r| parse(r.value.as_ref().unwrap()))
        .collect();
    let markers: Vec<&str> = snapshot
        .iter()
        .map(|v| v["source"]["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(markers, ["first", "true", "true", "last"]);
    for (i, v) in snapshot.iter().enumerate() {
        assert_eq!(v["op"], "r");
        assert_eq!(v["before"], Value::Null);
        assert_eq!(v["after"]["id"], 1001 + i);
        assert_eq!(v["source"]["pos"], 157);
        assert_eq!(v["source"]["server_id"], 0);
        assert_eq!(v["source"]["gtid"], Value::Null);
        assert_eq!(v["source"]["thread"], Value::Null);
    }
    let after = parse(records[4].value.as_ref().unwrap());
    assert_eq!(after["source"]["snapshot"], "false");

    let one = encode(CdcFormat::Json, workload(1, 0, 3).collect());
    assert_eq!(one.len(), 1);
    assert_eq!(
        parse(one[0].value.as_ref().unwrap())["source"]["snapshot"],
        "last"
    );
}

#[test]
fn deletes_are_followed_by_tombstones_and_key_changes_are_delete_then_create() {
    let records = encode(CdcFormat::JsonSchema, workload(50, 3000, 5).collect());
    let mut key_changes = 0;
    for (i, r) in records.iter().enumerate() {
        let Some(value) = &r.value else {
            // A tombstone: same key (bytes) as the delete right before it.
            let prev = &records[i - 1];
            assert_eq!(
                prev.key, r.key,
                "tombstone at {i} does not follow its delete"
            );
            assert_eq!(parse(prev.value.as_ref().unwrap())["payload"]["op"], "d");
            assert_eq!(prev.header, r.header);
            continue;
        };
        let v = parse(value);
        if let Some((name, new_key)) = &r.header {
            if name != NEW_KEY_HEADER {
                continue;
            }
            key_changes += 1;
            // d(old) [newkey] → tombstone(old) [newkey] → c(new) [oldkey]; one binlog event.
            let old_key = parse(&r.key)["payload"].clone();
            assert_eq!(v["payload"]["op"], "d");
            assert!(records[i + 1].value.is_none());
            let create = &records[i + 2];
            let c = parse(create.value.as_ref().unwrap());
            assert_eq!(c["payload"]["op"], "c");
            assert_eq!(parse(&create.key)["payload"], parse(new_key));
            let (old_name, old_value) = create.header.as_ref().unwrap();
            assert_eq!(old_name, OLD_KEY_HEADER);
            assert_eq!(parse(old_value), old_key);
            assert_eq!(c["payload"]["source"], v["payload"]["source"]);
            assert_ne!(parse(&create.key), parse(&r.key));
        }
    }
    assert!(key_changes > 20, "only {key_changes} primary-key changes");
}

#[test]
fn a_seeded_run_of_100k_events_has_the_promised_op_mix() {
    let mut w = workload(1000, 100_000, 42);
    let mut ops: HashMap<&str, u64> = HashMap::new();
    let mut key_changes = 0u64;
    for m in w.by_ref() {
        match m {
            Message::Change { change, header } => {
                *ops.entry(change.op.code()).or_default() += 1;
                if header.is_some_and(|h| h.name == NEW_KEY_HEADER) {
                    key_changes += 1;
                }
            }
            Message::Tombstone { .. } => *ops.entry("tombstone").or_default() += 1,
        }
    }
    let (r, c, u, d) = (ops["r"], ops["c"], ops["u"], ops["d"]);
    assert_eq!(r, 1000);
    assert_eq!(c + u + d, 100_000, "--count is the number of c/u/d events");
    assert_eq!(ops["tombstone"], d);
    let pct = |n: u64| n as f64 * 100.0 / 100_000.0;
    assert!(pct(u) >= 20.0, "updates {:.1} %", pct(u));
    assert!(pct(d) >= 10.0, "deletes {:.1} %", pct(d));
    assert!(
        pct(d - key_changes) >= 10.0,
        "plain deletes {:.1} %",
        pct(d - key_changes)
    );
    assert!(pct(c) >= 10.0, "inserts {:.1} %", pct(c));
    assert!(key_changes >= 1000, "{key_changes} key changes");
    assert!(!w.rows().is_empty());

    // Same seed, same stream; another seed, another stream.
    let a: Vec<Message> = workload(100, 2000, 9).collect();
    let b: Vec<Message> = workload(100, 2000, 9).collect();
    let other: Vec<Message> = workload(100, 2000, 10).collect();
    assert_eq!(a, b);
    assert_ne!(a, other);
}

/// Shares of `c`, `u`, `d` among the change events, in percent, and the key changes' share.
fn op_shares(w: &mut Workload, count: u64) -> (f64, f64, f64, f64) {
    let mut ops: HashMap<&str, u64> = HashMap::new();
    let mut key_changes = 0u64;
    for m in w.by_ref() {
        if let Message::Change { change, header } = m {
            *ops.entry(change.op.code()).or_default() += 1;
            if header.is_some_and(|h| h.name == NEW_KEY_HEADER) {
                key_changes += 1;
            }
        }
    }
    let pct = |n: u64| n as f64 * 100.0 / count as f64;
    let get = |k: &str| ops.get(k).copied().unwrap_or(0);
    assert_eq!(get("c") + get("u") + get("d"), count);
    (
        pct(get("c")),
        pct(get("u")),
        pct(get("d")),
        pct(key_changes),
    )
}

#[test]
fn a_chosen_mix_gives_those_shares_of_updates_and_deletes() {
    for (updates, deletes) in [(20.0, 10.0), (40.0, 25.0), (0.0, 0.0), (50.0, 5.0)] {
        let mix = Mix::percent(updates, deletes).unwrap();
        let mut w = workload(1000, 200_000, 3).with_mix(mix);
        let (c, u, d, keyed) = op_shares(&mut w, 200_000);
        let near = |got: f64, want: f64| (got - want).abs() < 0.5;
        assert!(near(u, updates), "{updates}/{deletes}: updates {u:.2} %");
        assert!(near(d, deletes), "{updates}/{deletes}: deletes {d:.2} %");
        assert!(
            near(c, 100.0 - updates - deletes),
            "{updates}/{deletes}: inserts {c:.2} %"
        );
        assert!(
            near(keyed, deletes / 3.0),
            "{updates}/{deletes}: key changes {keyed:.2} %"
        );
    }
    // The default stays the mix the other tests and the README describe.
    let (c, u, d, _) = op_shares(&mut workload(1000, 200_000, 3), 200_000);
    assert!(
        (c - 31.8).abs() < 1.0 && (u - 40.9).abs() < 1.0 && (d - 27.3).abs() < 1.0,
        "{c} {u} {d}"
    );
    // No room for the key changes' creates, or negative shares.
    assert_eq!(Mix::percent(40.0, 50.0), None);
    assert_eq!(Mix::percent(-1.0, 10.0), None);
    assert_eq!(Mix::percent(20.0, f64::NAN), None);
}

// ---- an independent interpreter of Debezium MySQL JSON events ----

/// Decodes one column value by its Connect/Debezium logical type into the `--expect` form.
fn decode_column(logical: Option<&str>, params: &Value, v: &Value) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match logical {
        Some("org.apache.kafka.connect.data.Decimal") => {
            let scale: usize = params["scale"].as_str().unwrap().parse().unwrap();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            let mut n: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for b in bytes {
                n = (n << 8) | i128::from(b);
            }
            let digits = format!("{:0>w$}", n.unsigned_abs(), w = scale + 1);
            let (int, frac) = digits.split_at(digits.len() - scale);
            let sign = if n < 0 { "-" } else { "" };
            json!(if scale == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            })
        }
        Some("io.debezium.time.Date") => {
            let d = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                + chrono::Duration::days(v.as_i64().unwrap());
            json!(d.to_string())
        }
        Some("io.debezium.time.Timestamp") => {
            let t = DateTime::from_timestamp_millis(v.as_i64().unwrap()).unwrap();
            json!(t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
        Some("io.debezium.time.MicroTime") => {
            let us = v.as_i64().unwrap();
            let t = NaiveTime::from_hms_opt(0, 0, 0).unwrap() + chrono::Duration::microseconds(us);
            json!(t.format("%H:%M:%S%.6f").to_string())
        }
        // ZonedTimestamp, Enum, EnumSet and Json are strings already; the rest is plain JSON.
        _ => v.clone(),
    }
}

/// The logical type of each column when the events carry no schema (`schemas.enable=false`):
/// a consumer has to know them from elsewhere.
fn known_types() -> HashMap<String, (Option<String>, Value)> {
    let fields: Vec<Value> = serde_json::from_str(ROW_FIELDS).unwrap();
    fields
        .into_iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_owned(),
                (
                    f["name"].as_str().map(str::to_owned),
                    f["parameters"].clone(),
                ),
            )
        })
        .collect()
}

/// A before image is the row as last written, except that MySQL renders `JSON` differently
/// on the snapshot and binlog paths: compare that column as JSON, the rest as text.
fn assert_same_row(current: Option<&Value>, before: &Value, id: i64) {
    let current = current.unwrap_or_else(|| panic!("before image of missing row {id}"));
    let as_json = |v: &Value| -> Value {
        v.as_str()
            .map_or(Value::Null, |t| serde_json::from_str(t).unwrap())
    };
    for (name, v) in before.as_object().unwrap() {
        if name == "profile" {
            assert_eq!(as_json(&current[name]), as_json(v), "profile of {id}");
        } else {
            assert_eq!(&current[name], v, "{name} of {id}");
        }
    }
}

/// Replays records in order (one partition's view suffices: keys never interleave wrongly
/// within a key) and returns the surviving rows by id.
fn replay(records: &[Record], with_schema: bool) -> BTreeMap<i64, Value> {
    let fallback = known_types();
    let mut table: BTreeMap<i64, Value> = BTreeMap::new();
    let mut last_op: HashMap<i64, String> = HashMap::new();
    for r in records {
        let key = parse(&r.key);
        let key = if with_schema { &key["payload"] } else { &key };
        let id = key["id"].as_i64().unwrap();
        let Some(value) = &r.value else {
            assert_eq!(
                last_op.get(&id).map(String::as_str),
                Some("d"),
                "tombstone of {id}"
            );
            assert!(!table.contains_key(&id));
            continue;
        };
        let value = parse(value);
        let (payload, types) = if with_schema {
            let row_schema = &value["schema"]["fields"][1];
            let types: HashMap<String, (Option<String>, Value)> = row_schema["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap().to_owned(),
                        (
                            f["name"].as_str().map(str::to_owned),
                            f["parameters"].clone(),
                        ),
                    )
                })
                .collect();
            (value["payload"].clone(), types)
        } else {
            (value, fallback.clone())
        };
        let op = payload["op"].as_str().unwrap().to_owned();
        let decode_row = |row: &Value| -> Value {
            let mut out = serde_json::Map::new();
            for (name, v) in row.as_object().unwrap() {
                let (logical, params) = &types[name];
                out.insert(name.clone(), decode_column(logical.as_deref(), params, v));
            }
            Value::Object(out)
        };
        match op.as_str() {
            "r" | "c" => {
                assert!(payload["before"].is_null());
                let row = decode_row(&payload["after"]);
                assert_eq!(row["id"].as_i64(), Some(id), "key and row disagree");
                if op == "c" {
                    assert!(!table.contains_key(&id), "insert of live key {id}");
                }
                table.insert(id, row);
            }
            "u" => {
                let before = decode_row(&payload["before"]);
                assert_same_row(table.get(&id), &before, id);
                table.insert(id, decode_row(&payload["after"]));
            }
            "d" => {
                let before = decode_row(&payload["before"]);
                assert!(payload["after"].is_null());
                assert_same_row(table.remove(&id).as_ref(), &before, id);
            }
            other => panic!("unexpected op {other}"),
        }
        last_op.insert(id, op);
    }
    table
}

#[test]
fn replaying_the_events_gives_the_expected_rows() {
    for (format, with_schema) in [(CdcFormat::JsonSchema, true), (CdcFormat::Json, false)] {
        let mut w = workload(300, 8000, 77);
        let messages: Vec<Message> = w.by_ref().collect();
        let records = encode(format, messages);
        let replayed = replay(&records, with_schema);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expect.jsonl");
        write_expect(&path, &w.rows(), false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();

        assert_eq!(expected.len(), replayed.len(), "{format:?}: row count");
        for (exp, (id, got)) in expected.iter().zip(&replayed) {
            assert_eq!(
                exp["id"].as_i64(),
                Some(*id),
                "{format:?}: rows sorted by id"
            );
            assert_eq!(exp, got, "{format:?}: row {id}");
            // Each line has every column, in table order.
            let names: Vec<&str> = cdc_expect_columns(false).iter().map(|(n, _)| *n).collect();
            assert_eq!(keys_of(exp), names);
        }
    }
}

#[test]
fn the_expect_file_covers_the_type_edges() {
    let mut w = workload(2000, 20_000, 1);
    w.by_ref().for_each(drop);
    let rows: Vec<Value> = w
        .rows()
        .iter()
        .map(|(r, rd)| r.expect_json(*rd, false))
        .collect();
    let any = |f: &dyn Fn(&Value) -> bool| rows.iter().any(f);
    let s = |v: &Value, c: &str| v[c].as_str().unwrap_or("").to_owned();
    assert!(
        any(&|v| s(v, "balance").starts_with('-')),
        "negative decimals"
    );
    assert!(any(
        &|v| s(v, "birth_date").as_str() < "1970-01-01" && !v["birth_date"].is_null()
    ));
    assert!(any(&|v| v["birth_date"].is_null()));
    assert!(any(&|v| v["email"].is_null()));
    assert!(any(&|v| s(v, "visits").len() == 20), "visits past 2^63");
    assert!(any(&|v| s(v, "visits") == "18446744073709551615"));
    assert!(
        any(&|v| s(v, "profile").contains(": ")),
        "snapshot-read JSON text"
    );
    assert!(any(
        &|v| s(v, "profile").starts_with("{\"") && !s(v, "profile").contains(": ")
    ));
    assert!(any(&|v| v["login_time"].is_null()));
    assert!(rows
        .iter()
        .all(|v| s(v, "updated_at").ends_with('Z') && s(v, "updated_at").len() == 27));
    assert!(rows.iter().all(|v| s(v, "created_at").len() == 26));
}

#[test]
fn names_formats_and_avro() {
    assert_eq!(
        Names::for_topic("dbserver1.inventory.users").server,
        "dbserver1"
    );
    assert_eq!(
        Names::for_topic("mysql-1.inventory.users").key(),
        "mysql-1.inventory.users.Key"
    );
    // A routed topic keeps Debezium's own names.
    assert_eq!(
        Names::for_topic("users-cdc").envelope(),
        "dbserver1.inventory.users.Envelope"
    );
    assert_eq!("json".parse::<CdcFormat>().unwrap(), CdcFormat::Json);
    assert_eq!(
        "json-schema".parse::<CdcFormat>().unwrap(),
        CdcFormat::JsonSchema
    );
    assert_eq!("avro".parse::<CdcFormat>().unwrap(), CdcFormat::Avro);
    assert!("protobuf".parse::<CdcFormat>().is_err());
}

/// The Avro encoding, read by the sink's own Avro decoder, gives exactly the changes the
/// JSON-with-schemas encoding gives, before and after the `--evolve` column appears.
#[test]
fn avro_events_decode_to_the_same_changes_as_json() {
    use crate::config::{Converter, InsertMode, PkMode};
    use crate::decode::avro::AvroSchema;
    use crate::decode::{Change as Decoded, DecodeSettings, EnvelopeMode, RecordDecoder, Side};

    let decoder = |converter: Converter| {
        RecordDecoder::new(DecodeSettings {
            key_converter: converter,
            value_converter: converter,
            envelope: EnvelopeMode::Auto,
            insert_mode: InsertMode::Upsert,
            pk_mode: PkMode::RecordKey,
            pk_fields: Vec::new(),
            delete_enabled: true,
            truncate_enabled: true,
        })
    };
    let mut w = workload(200, 3000, 5).evolving_at(Some(1500));
    let messages: Vec<Message> = w.by_ref().collect();
    let json = encode(CdcFormat::JsonSchema, messages.clone());
    let avro = encode(CdcFormat::Avro, messages);

    let mut json_decoder = decoder(Converter::Json {
        schemas_enable: true,
    });
    let mut avro_decoder = decoder(Converter::Avro);
    let names = Names::for_topic("dbserver1.inventory.users");
    let subjects = avro::AvroEncoder::subjects(&names, true);
    for ((subject, connect), id) in subjects.iter().zip([1, 2, 3]) {
        let side = if *subject == "key" {
            Side::Key
        } else {
            Side::Value
        };
        let text = crate::gen::avro::avro_schema(connect).to_string();
        avro_decoder.add_schema(side, id, Arc::new(AvroSchema::parse(&text, &[]).unwrap()));
    }

    let topic = "dbserver1.inventory.users";
    let mut with_nickname = 0;
    for (i, (j, a)) in json.iter().zip(&avro).enumerate() {
        assert_eq!(
            avro_decoder.missing_schema(Some(&a.key), a.value.as_deref()),
            None
        );
        let from_json = json_decoder
            .decode(topic, Some(&j.key), j.value.as_deref())
            .unwrap();
        let from_avro = avro_decoder
            .decode(topic, Some(&a.key), a.value.as_deref())
            .unwrap();
        assert_eq!(from_json, from_avro, "record {i}");
        if let Decoded::Upsert { row, .. } = &from_avro.change {
            with_nickname += usize::from(row.cells.iter().any(|c| c.name == "nickname"));
        }
    }
    assert!(
        with_nickname > 500,
        "{with_nickname} rows after the evolution"
    );
}
