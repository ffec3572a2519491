//! Record decoding: the change each Debezium event shape turns into, under each apply mode.

use super::*;

fn settings(insert: InsertMode, pk: PkMode, schemas: bool) -> DecodeSettings {
    DecodeSettings {
        key_converter: Converter::Json {
            schemas_enable: schemas,
        },
        value_converter: Converter::Json {
            schemas_enable: schemas,
        },
        envelope: EnvelopeMode::Auto,
        insert_mode: insert,
        pk_mode: pk,
        pk_fields: Vec::new(),
        delete_enabled: true,
        truncate_enabled: true,
    }
}

fn upsert_by_key(schemas: bool) -> RecordDecoder {
    RecordDecoder::new(settings(InsertMode::Upsert, PkMode::RecordKey, schemas))
}

fn decode(d: &mut RecordDecoder, key: Option<&str>, value: Option<&str>) -> Change {
    d.decode(
        "dbserver1.inventory.customers",
        key.map(str::as_bytes),
        value.map(str::as_bytes),
    )
    .unwrap()
    .change
}

fn cells(row: &Row) -> Vec<(&str, &Datum)> {
    row.cells
        .iter()
        .map(|c| (c.name.as_str(), &c.value))
        .collect()
}

/// The MySQL connector's create event, as Debezium's documentation shows it (schemas on).
const MYSQL_KEY: &str = r#"{"schema":{"type":"struct","name":"mysql-server-1.inventory.customers.Key","optional":false,"fields":[{"field":"id","type":"int32","optional":false}]},"payload":{"id":1001}}"#;

fn mysql_value(op: &str, before: &str, after: &str) -> String {
    let row_schema = |name: &str| {
        format!(
            r#"{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}},{{"type":"string","optional":false,"field":"first_name"}},{{"type":"string","optional":false,"field":"last_name"}},{{"type":"string","optional":false,"field":"email"}}],"optional":true,"name":"mysql-server-1.inventory.customers.Value","field":"{name}"}}"#
        )
    };
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{before_schema},{after_schema},
        {{"type":"struct","fields":[{{"type":"string","optional":false,"field":"version"}},{{"type":"string","optional":false,"field":"connector"}},{{"type":"string","optional":false,"field":"name"}},{{"type":"int64","optional":false,"field":"ts_ms"}},{{"type":"boolean","optional":true,"default":false,"field":"snapshot"}},{{"type":"string","optional":false,"field":"db"}},{{"type":"string","optional":true,"field":"table"}},{{"type":"int64","optional":false,"field":"server_id"}},{{"type":"string","optional":true,"field":"gtid"}},{{"type":"string","optional":false,"field":"file"}},{{"type":"int64","optional":false,"field":"pos"}},{{"type":"int32","optional":false,"field":"row"}},{{"type":"int64","optional":true,"field":"thread"}},{{"type":"string","optional":true,"field":"query"}}],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"}},
        {{"type":"string","optional":false,"field":"op"}},{{"type":"int64","optional":true,"field":"ts_ms"}}],"optional":false,"name":"mysql-server-1.inventory.customers.Envelope"}},
        "payload":{{"op":"{op}","ts_ms":1465491411815,"before":{before},"after":{after},
        "source":{{"version":"2.7.0.Final","connector":"mysql","name":"mysql-server-1","ts_ms":0,"snapshot":false,"db":"inventory","table":"customers","server_id":0,"gtid":null,"file":"mysql-bin.000003","pos":154,"row":0,"thread":7,"query":null}}}}}}"#,
        before_schema = row_schema("before"),
        after_schema = row_schema("after"),
    )
}

const ANNE: &str =
    r#"{"id":1001,"first_name":"Anne","last_name":"Kretchmar","email":"annek@noanswer.org"}"#;
const ANNE_MARIE: &str =
    r#"{"id":1001,"first_name":"Anne Marie","last_name":"Kretchmar","email":"annek@noanswer.org"}"#;

#[test]
fn create_read_and_update_upsert_the_after_image_by_record_key() {
    let mut d = upsert_by_key(true);
    for op in ["c", "r"] {
        let change = decode(
            &mut d,
            Some(MYSQL_KEY),
            Some(&mysql_value(op, "null", ANNE)),
        );
        let Change::Upsert { key, row, old_key } = change else {
            panic!("{change:?}")
        };
        assert_eq!(cells(&key), vec![("id", &Datum::Int(1001))]);
        assert_eq!(key.cells[0].ty, Some(ColumnType::Integer));
        assert_eq!(row.cells.len(), 4);
        assert_eq!(row.cells[1].value, Datum::Text("Anne".into()));
        assert_eq!(old_key, None);
    }
    let change = decode(
        &mut d,
        Some(MYSQL_KEY),
        Some(&mysql_value("u", ANNE, ANNE_MARIE)),
    );
    let Change::Upsert { row, old_key, .. } = change else {
        panic!("{change:?}")
    };
    assert_eq!(row.cells[1].value, Datum::Text("Anne Marie".into()));
    assert_eq!(old_key, None, "same key before and after");
}

#[test]
fn source_position_comes_with_the_record() {
    let mut d = upsert_by_key(true);
    let record = d
        .decode(
            "t",
            Some(MYSQL_KEY.as_bytes()),
            Some(mysql_value("c", "null", ANNE).as_bytes()),
        )
        .unwrap();
    let source = record.source.unwrap();
    assert_eq!(source.db.as_deref(), Some("inventory"));
    assert_eq!(source.table.as_deref(), Some("customers"));
    assert_eq!(source.position().as_deref(), Some("mysql-bin.000003:154"));
}

#[test]
fn delete_then_tombstone_delete_by_key_only() {
    let mut d = upsert_by_key(true);
    // PostgreSQL under the default REPLICA IDENTITY: `before` holds the key; the rest is
    // never looked at.
    let change = decode(
        &mut d,
        Some(MYSQL_KEY),
        Some(&mysql_value("d", ANNE, "null")),
    );
    assert_eq!(
        change,
        Change::Delete {
            key: Row {
                cells: vec![Cell {
                    name: "id".into(),
                    ty: Some(ColumnType::Integer),
                    value: Datum::Int(1001)
                }]
            }
        }
    );
    let tomb = decode(&mut d, Some(MYSQL_KEY), None);
    assert_eq!(tomb, change, "a tombstone deletes the same key again");
}

#[test]
fn deletes_are_skipped_when_disabled_and_in_append_mode() {
    let mut s = settings(InsertMode::Upsert, PkMode::RecordKey, true);
    s.delete_enabled = false;
    let mut d = RecordDecoder::new(s);
    assert_eq!(
        decode(
            &mut d,
            Some(MYSQL_KEY),
            Some(&mysql_value("d", ANNE, "null"))
        ),
        Change::Skip(Skip::Delete)
    );
    assert_eq!(
        decode(&mut d, Some(MYSQL_KEY), None),
        Change::Skip(Skip::Tombstone)
    );
    let mut append = RecordDecoder::new(settings(InsertMode::Append, PkMode::RecordKey, true));
    assert_eq!(
        decode(
            &mut append,
            Some(MYSQL_KEY),
            Some(&mysql_value("d", ANNE, "null"))
        ),
        Change::Skip(Skip::Delete)
    );
    assert!(matches!(
        decode(
            &mut append,
            Some(MYSQL_KEY),
            Some(&mysql_value("c", "null", ANNE))
        ),
        Change::Append(row) if row.cells.len() == 4
    ));
}

#[test]
fn truncate_and_control_records() {
    let mut d = upsert_by_key(false);
    let t = r#"{"before":null,"after":null,"source":{"connector":"postgresql","db":"inventory","schema":"public","table":"customers","lsn":24023128},"op":"t","ts_ms":1559033904961}"#;
    let record = d.decode("x", None, Some(t.as_bytes())).unwrap();
    assert_eq!(record.change, Change::Truncate);
    let source = record.source.unwrap();
    assert_eq!(source.schema.as_deref(), Some("public"));
    assert_eq!(source.position().as_deref(), Some("lsn 24023128"));
    let mut s = settings(InsertMode::Upsert, PkMode::RecordKey, false);
    s.truncate_enabled = false;
    assert_eq!(
        RecordDecoder::new(s)
            .decode("x", None, Some(t.as_bytes()))
            .unwrap()
            .change,
        Change::Skip(Skip::Truncate)
    );
    let heartbeat = d
        .decode(
            "__debezium-heartbeat.dbserver1",
            Some(br#"{"serverName":"dbserver1"}"#),
            Some(br#"{"ts_ms":1}"#),
        )
        .unwrap();
    assert_eq!(heartbeat.change, Change::Skip(Skip::Control("heartbeat")));
}

#[test]
fn a_key_change_deletes_the_old_key() {
    let mut d = RecordDecoder::new(settings(InsertMode::Upsert, PkMode::RecordValue, false));
    let mut s = settings(InsertMode::Upsert, PkMode::RecordValue, false);
    s.pk_fields = vec!["id".into()];
    let mut d2 = RecordDecoder::new(s);
    let event = r#"{"before":{"id":1,"name":"a"},"after":{"id":2,"name":"a"},"source":{"db":"x"},"op":"u"}"#;
    let Change::Upsert { key, old_key, .. } = decode(&mut d2, None, Some(event)) else {
        panic!()
    };
    assert_eq!(cells(&key), vec![("id", &Datum::Int(2))]);
    assert_eq!(
        old_key.map(|k| k.cells[0].value.clone()),
        Some(Datum::Int(1))
    );
    // Without pk.fields every value field is the key (as in the JDBC sink).
    let Change::Upsert { key, .. } = decode(&mut d, None, Some(event)) else {
        panic!()
    };
    assert_eq!(key.cells.len(), 2);
}

#[test]
fn flattened_records_upsert_or_delete() {
    let mut d = upsert_by_key(false);
    let Change::Upsert { row, .. } = decode(
        &mut d,
        Some(r#"{"id":1}"#),
        Some(r#"{"id":1,"name":"x","__deleted":"false"}"#),
    ) else {
        panic!()
    };
    assert_eq!(
        cells(&row),
        vec![("id", &Datum::Int(1)), ("name", &Datum::Text("x".into()))]
    );
    assert!(matches!(
        decode(
            &mut d,
            Some(r#"{"id":1}"#),
            Some(r#"{"id":1,"name":null,"__deleted":"true"}"#)
        ),
        Change::Delete { .. }
    ));
}

#[test]
fn primitive_keys_need_one_pk_field_and_missing_keys_are_errors() {
    let mut s = settings(InsertMode::Upsert, PkMode::RecordKey, false);
    s.key_converter = Converter::String;
    let mut d = RecordDecoder::new(s.clone());
    let e = d.decode("t", Some(b"42"), Some(br#"{"v":1}"#)).unwrap_err();
    assert!(e.to_string().contains("set pk.fields"), "{e}");
    s.pk_fields = vec!["code".into()];
    let mut d = RecordDecoder::new(s);
    let Change::Upsert { key, row, .. } = decode(&mut d, Some("42"), Some(r#"{"v":1}"#)) else {
        panic!()
    };
    assert_eq!(cells(&key), vec![("code", &Datum::Text("42".into()))]);
    // The key becomes a column of the row.
    assert_eq!(row.cells.len(), 2);
    let e = d.decode("t", None, Some(br#"{"v":1}"#)).unwrap_err();
    assert!(e.to_string().contains("has no key"), "{e}");
    let mut d = upsert_by_key(false);
    let e = d
        .decode("t", Some(br#"{"id":null}"#), Some(br#"{"id":null}"#))
        .unwrap_err();
    assert!(e.to_string().contains("null in a key field"), "{e}");
    let e = d
        .decode("t", Some(b"{oops"), Some(br#"{"id":1}"#))
        .unwrap_err();
    assert!(e.to_string().starts_with("key: "), "{e}");
}

#[test]
fn bad_envelopes_are_errors_not_rows() {
    let mut d = upsert_by_key(false);
    for (value, needle) in [
        (
            r#"{"before":null,"after":null,"source":{},"op":"c"}"#,
            "without `after`",
        ),
        (
            r#"{"before":null,"after":{"id":1},"source":{}}"#,
            "without `op`",
        ),
        ("not json", "not valid JSON"),
        ("[1,2]", "expected a JSON object"),
        ("17", "expected a JSON object"),
    ] {
        let e = d
            .decode("t", Some(br#"{"id":1}"#), Some(value.as_bytes()))
            .unwrap_err();
        assert!(e.to_string().contains(needle), "{value}: {e}");
    }
}

#[test]
fn schemaless_nested_objects_become_json_columns() {
    let mut d = RecordDecoder::new(settings(InsertMode::Append, PkMode::RecordKey, false));
    let Change::Append(row) = decode(&mut d, None, Some(r#"{"a":{"b":[1,2]}}"#)) else {
        panic!()
    };
    assert_eq!(row.cells[0].ty, Some(ColumnType::Json));
    assert_eq!(row.cells[0].value, Datum::Text(r#"{"b":[1,2]}"#.into()));
}

#[test]
fn string_values_are_one_value_column() {
    let mut s = settings(InsertMode::Append, PkMode::RecordKey, false);
    s.value_converter = Converter::String;
    let Change::Append(row) = decode(&mut RecordDecoder::new(s), None, Some("hello")) else {
        panic!()
    };
    assert_eq!(cells(&row), vec![("value", &Datum::Text("hello".into()))]);
}

/// Every record real Debezium wrote in `tests/fixtures/debezium/postgres/<dir>/events.jsonl`.
fn fixture_events(dir: &str) -> Vec<(String, Option<String>, Option<String>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/debezium/postgres")
        .join(dir)
        .join("events.jsonl");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let s = |k: &str| e[k].as_str().map(str::to_owned);
            (s("topic").unwrap(), s("key"), s("value"))
        })
        .collect()
}

/// The changes real Debezium's PostgreSQL events decode to (upserts by record key; the table
/// without a primary key in append mode, as its key is null).
fn fixture_changes(dir: &str, schemas: bool) -> Vec<(String, Change)> {
    let mut keyed = upsert_by_key(schemas);
    let mut append = RecordDecoder::new(settings(InsertMode::Append, PkMode::RecordKey, schemas));
    let events: Vec<FixtureEvent> = fixture_events(dir)
        .into_iter()
        .map(|(topic, key, value)| {
            (
                topic,
                key.map(String::into_bytes),
                value.map(String::into_bytes),
            )
        })
        .collect();
    decode_all(&mut keyed, &mut append, events)
}

/// A fixture record: topic, key bytes, value bytes.
type FixtureEvent = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// Decodes fixture events: the table without a primary key with `append`, the others with
/// `keyed`.
fn decode_all(
    keyed: &mut RecordDecoder,
    append: &mut RecordDecoder,
    events: Vec<FixtureEvent>,
) -> Vec<(String, Change)> {
    events
        .into_iter()
        .map(|(topic, key, value)| {
            let d = if topic.ends_with("no_pk") {
                &mut *append
            } else {
                &mut *keyed
            };
            let record = d
                .decode(&topic, key.as_deref(), value.as_deref())
                .unwrap_or_else(|e| panic!("{topic} {key:?} {value:?}: {e}"));
            (topic, record.change)
        })
        .collect()
}

fn cell<'r>(row: &'r Row, name: &str) -> (&'r ColumnType, &'r Datum) {
    let c = row.get(name).unwrap_or_else(|| panic!("no {name}"));
    (c.ty.as_ref().unwrap(), &c.value)
}

#[test]
fn real_debezium_postgres_events_decode_to_their_changes() {
    let changes = fixture_changes("json", true);
    let ops: Vec<&str> = changes
        .iter()
        .map(|(_, c)| match c {
            Change::Append(_) => "append",
            Change::Upsert { .. } => "upsert",
            Change::Delete { .. } => "delete",
            Change::Truncate => "truncate",
            Change::Skip(_) => "skip",
        })
        .collect();
    assert_eq!(
        ops,
        [
            "upsert", "upsert", "upsert", "upsert", "upsert", "append", // snapshot
            "upsert", "upsert", // insert, update
            "delete", "delete", // delete + tombstone
            "delete", "delete", "upsert", // key change 3 → 33
            "upsert", "delete", "delete", // REPLICA IDENTITY FULL
            "append", "append", "skip", "skip", // no primary key: deletes are not applied
            "upsert", "upsert", // after ALTER TABLE ADD COLUMN
            "truncate",
        ]
    );
    let Change::Upsert { row, .. } = &changes[0].1 else {
        panic!()
    };
    let dec = |p, s| ColumnType::Decimal {
        precision: p,
        scale: s,
    };
    for (name, ty, value) in [
        (
            "c_bigint",
            ColumnType::BigInt,
            Datum::Int(9_007_199_254_740_993),
        ),
        ("c_numeric", dec(10, 2), Datum::Decimal(1_234_567_890, 2)),
        ("c_money", dec(38, 2), Datum::Decimal(123_456, 2)),
        (
            "c_numeric_any",
            ColumnType::Varchar,
            Datum::Text("3.141592653589793238462643383279".into()),
        ),
        ("c_date", ColumnType::Date, Datum::Date(19782)),
        ("c_time", ColumnType::Time, Datum::Time(49_530_123_456)),
        ("c_time3", ColumnType::Time, Datum::Time(49_530_123_000)),
        (
            "c_timetz",
            ColumnType::TimeTz,
            Datum::Text("08:15:30.123456+00".into()),
        ),
        (
            "c_timestamp",
            ColumnType::Timestamp,
            Datum::Timestamp(1_709_214_330_123_456),
        ),
        (
            "c_timestamp3",
            ColumnType::Timestamp,
            Datum::Timestamp(1_709_214_330_123_000),
        ),
        (
            "c_timestamptz",
            ColumnType::TimestampTz,
            Datum::Text("2024-02-29T13:45:30.123456Z".into()),
        ),
        (
            "c_interval",
            ColumnType::BigInt,
            Datum::Int(37_091_106_789_000),
        ),
        (
            "c_uuid",
            ColumnType::Uuid,
            Datum::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
        ),
        ("c_enum", ColumnType::Varchar, Datum::Text("happy".into())),
        ("c_bit1", ColumnType::Boolean, Datum::Bool(true)),
        ("c_bit8", ColumnType::Blob, Datum::Bytes(vec![0xaa])),
        ("c_oid", ColumnType::BigInt, Datum::Int(12345)),
        (
            "c_int_array",
            ColumnType::List(Box::new(ColumnType::Integer)),
            Datum::List(vec![
                Datum::Int(1),
                Datum::Int(2),
                Datum::Null,
                Datum::Int(4),
            ]),
        ),
        (
            "c_numeric_array",
            ColumnType::List(Box::new(dec(6, 2))),
            Datum::List(vec![Datum::Decimal(150, 2), Datum::Decimal(-225, 2)]),
        ),
    ] {
        assert_eq!(cell(row, name), (&ty, &value), "{name}");
    }
    assert_eq!(cell(row, "c_json").0, &ColumnType::Json);
    assert_eq!(cell(row, "c_hstore").0, &ColumnType::Json);
    // The point's WKB: little-endian point (1), x = 1.5, y = -2.25.
    let (ty, Datum::Bytes(wkb)) = cell(row, "c_point") else {
        panic!()
    };
    assert_eq!(ty, &ColumnType::Blob);
    assert_eq!(wkb.len(), 21);
    assert_eq!(f64::from_le_bytes(wkb[5..13].try_into().unwrap()), 1.5);
    assert_eq!(f64::from_le_bytes(wkb[13..21].try_into().unwrap()), -2.25);
    // Extremes: NaN, the wide decimal as text, the oldest timestamp.
    let Change::Upsert { row, .. } = &changes[2].1 else {
        panic!()
    };
    assert!(matches!(cell(row, "c_double").1, Datum::Float(f) if f.is_nan()));
    assert_eq!(cell(row, "c_numeric_wide").0, &ColumnType::Varchar);
    assert_eq!(
        cell(row, "c_timestamp").1,
        &Datum::Timestamp(-2_208_988_799_999_999)
    );
    assert_eq!(
        cell(row, "c_money").1,
        &Datum::Decimal(-9_223_372_036_854_775_808, 2)
    );
    // The key change deletes key 3 and upserts 33.
    let Change::Delete { key } = &changes[10].1 else {
        panic!()
    };
    assert_eq!(key.cells[0].value, Datum::Int(3));
    // The columns added by ALTER TABLE arrive with the next change.
    let Change::Upsert { row, .. } = &changes[20].1 else {
        panic!()
    };
    assert_eq!(
        cell(row, "c_added"),
        (&ColumnType::Varchar, &Datum::Text("added-default".into()))
    );
}

#[test]
fn real_debezium_events_without_schemas_decode_too() {
    let changes = fixture_changes("json-noschema", false);
    assert_eq!(changes.len(), 23);
    let Change::Upsert { row, .. } = &changes[0].1 else {
        panic!()
    };
    // Without a schema only JSON's own types are known.
    assert_eq!(
        cell(row, "c_date"),
        (&ColumnType::BigInt, &Datum::Int(19782))
    );
    assert_eq!(cell(row, "c_point").0, &ColumnType::Json);
    assert!(matches!(changes[22].1, Change::Truncate));
}

/// Real Debezium's Avro (Confluent `AvroConverter` 7.0.16, `tests/fixtures/debezium/postgres/avro`,
/// schemas by id in `schemas.json`) decodes to exactly the changes of the same scenario
/// written by `JsonConverter` with schemas: same column types, same values.
#[test]
fn real_debezium_avro_events_decode_like_their_json_twins() {
    use base64::Engine;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/debezium/postgres/avro");
    let schemas: std::collections::BTreeMap<u32, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("schemas.json")).unwrap()).unwrap();
    let avro_settings = |insert| {
        let mut s = settings(insert, PkMode::RecordKey, true);
        s.key_converter = Converter::Avro;
        s.value_converter = Converter::Avro;
        RecordDecoder::new(s)
    };
    let mut keyed = avro_settings(InsertMode::Upsert);
    let mut append = avro_settings(InsertMode::Append);
    for (id, text) in &schemas {
        let schema = std::sync::Arc::new(avro::AvroSchema::parse(text, &[]).unwrap());
        for d in [&mut keyed, &mut append] {
            d.add_schema(Side::Key, *id, schema.clone());
            d.add_schema(Side::Value, *id, schema.clone());
        }
    }
    let b64 =
        |s: Option<String>| s.map(|s| base64::engine::general_purpose::STANDARD.decode(s).unwrap());
    let events: Vec<_> = fixture_events("avro")
        .into_iter()
        .map(|(topic, key, value)| (topic, b64(key), b64(value)))
        .collect();
    for (_, key, value) in &events {
        assert_eq!(keyed.missing_schema(key.as_deref(), value.as_deref()), None);
    }
    let from_avro = decode_all(&mut keyed, &mut append, events);
    let from_json = fixture_changes("json", true);
    assert_eq!(from_avro.len(), from_json.len());
    for (i, ((topic, avro), (_, json))) in from_avro.iter().zip(&from_json).enumerate() {
        // Debug text, as NaN (a value of the extremes row) is not equal to itself.
        assert_eq!(
            format!("{avro:?}"),
            format!("{json:?}"),
            "event {i} of {topic}"
        );
    }
}
