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
    assert_eq!(source.position.as_deref(), Some("mysql-bin.000003:154"));
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
    assert_eq!(source.position.as_deref(), Some("lsn 24023128"));
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
