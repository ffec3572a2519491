//! Avro decoding against schemas in the shapes Confluent's AvroConverter writes for Debezium.

use apache_avro::types::Value;

use super::*;

/// A Debezium-style envelope: `before` defines the row record, `after` refers to it by name.
const ENVELOPE: &str = r#"{
  "type": "record", "name": "Envelope", "namespace": "dbserver1.inventory.users",
  "fields": [
    {"name": "before", "default": null, "type": ["null", {
      "type": "record", "name": "Value", "connect.name": "dbserver1.inventory.users.Value",
      "fields": [
        {"name": "id", "type": "int"},
        {"name": "small", "type": {"type": "int", "connect.type": "int16"}},
        {"name": "name", "type": ["null", "string"], "default": null},
        {"name": "balance", "type": ["null", {"type": "bytes", "scale": 2, "precision": 10,
          "connect.version": 1, "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
          "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"}], "default": null},
        {"name": "born", "type": ["null", {"type": "int", "connect.version": 1, "connect.name": "io.debezium.time.Date"}], "default": null},
        {"name": "seen", "type": ["null", {"type": "long", "connect.version": 1, "connect.name": "io.debezium.time.MicroTimestamp"}], "default": null},
        {"name": "zoned", "type": ["null", {"type": "string", "connect.version": 1, "connect.name": "io.debezium.time.ZonedTimestamp"}], "default": null},
        {"name": "amount", "type": ["null", {"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
          "connect.name": "io.debezium.data.VariableScaleDecimal",
          "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}]}], "default": null},
        {"name": "tags", "type": ["null", {"type": "array", "items": ["null", "string"]}], "default": null},
        {"name": "attrs", "type": ["null", {"type": "map", "values": "long"}], "default": null},
        {"name": "mood", "type": ["null", {"type": "string", "connect.name": "io.debezium.data.Enum", "connect.parameters": {"allowed": "sad,ok"}}], "default": null}
      ]}]},
    {"name": "after", "type": ["null", "Value"], "default": null},
    {"name": "source", "type": {"type": "record", "name": "Source", "namespace": "io.debezium.connector.mysql",
      "fields": [{"name": "db", "type": "string"}, {"name": "table", "type": ["null", "string"], "default": null},
                 {"name": "pos", "type": "long"}, {"name": "file", "type": "string"}]}},
    {"name": "op", "type": "string"},
    {"name": "ts_ms", "type": ["null", "long"], "default": null}
  ]}"#;

fn some(v: Value) -> Value {
    Value::Union(1, Box::new(v))
}

fn row_value(id: i32) -> Value {
    Value::Record(vec![
        ("id".into(), Value::Int(id)),
        ("small".into(), Value::Int(-7)),
        ("name".into(), some(Value::String("Anne".into()))),
        (
            "balance".into(),
            some(Value::Decimal(vec![0x30u8, 0x39].into())),
        ),
        ("born".into(), some(Value::Int(-1))),
        ("seen".into(), some(Value::Long(1_700_000_000_000_001))),
        (
            "zoned".into(),
            some(Value::String("2024-01-01T00:00:00Z".into())),
        ),
        (
            "amount".into(),
            some(Value::Record(vec![
                ("scale".into(), Value::Int(3)),
                ("value".into(), Value::Bytes(vec![0xff])),
            ])),
        ),
        (
            "tags".into(),
            some(Value::Array(vec![
                some(Value::String("a".into())),
                Value::Union(0, Box::new(Value::Null)),
            ])),
        ),
        (
            "attrs".into(),
            some(Value::Map(
                [("k".to_owned(), Value::Long(5))].into_iter().collect(),
            )),
        ),
        ("mood".into(), some(Value::String("ok".into()))),
    ])
}

/// Confluent wire format of `value` under `schema`, with schema id `id`.
fn wire(schema: &str, id: u32, value: Value) -> Vec<u8> {
    let schema = Schema::parse_str(schema).unwrap();
    let body = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    let mut out = vec![0];
    out.extend(id.to_be_bytes());
    out.extend(body);
    out
}

fn decoder() -> AvroDecoder {
    let mut d = AvroDecoder::default();
    d.add(7, Arc::new(AvroSchema::parse(ENVELOPE, &[]).unwrap()));
    d
}

fn envelope(op: &str, before: Value, after: Value) -> Value {
    Value::Record(vec![
        ("before".into(), before),
        ("after".into(), after),
        (
            "source".into(),
            Value::Record(vec![
                ("db".into(), Value::String("inventory".into())),
                ("table".into(), some(Value::String("users".into()))),
                ("pos".into(), Value::Long(154)),
                ("file".into(), Value::String("mysql-bin.000003".into())),
            ]),
        ),
        ("op".into(), Value::String(op.into())),
        ("ts_ms".into(), some(Value::Long(1))),
    ])
}

#[test]
fn debezium_envelopes_decode_with_connect_and_debezium_types() {
    let null = Value::Union(0, Box::new(Value::Null));
    let bytes = wire(ENVELOPE, 7, envelope("c", null, some(row_value(1001))));
    let Data::Row(row) = decoder().decode(&bytes).unwrap() else {
        panic!()
    };
    let after = row.get("after").unwrap();
    let Some(ColumnType::Struct(fields)) = &after.ty else {
        panic!("{after:?}")
    };
    let Datum::Struct(values) = &after.value else {
        panic!("{after:?}")
    };
    let get = |name: &str| {
        let i = fields.iter().position(|(n, _)| n == name).unwrap();
        (fields[i].1.clone(), values[i].clone())
    };
    assert_eq!(get("id"), (ColumnType::Integer, Datum::Int(1001)));
    assert_eq!(get("small"), (ColumnType::SmallInt, Datum::Int(-7)));
    assert_eq!(
        get("name"),
        (ColumnType::Varchar, Datum::Text("Anne".into()))
    );
    assert_eq!(
        get("balance"),
        (
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            },
            Datum::Decimal(12345, 2)
        )
    );
    assert_eq!(get("born"), (ColumnType::Date, Datum::Date(-1)));
    assert_eq!(
        get("seen"),
        (
            ColumnType::Timestamp,
            Datum::Timestamp(1_700_000_000_000_001)
        )
    );
    assert_eq!(get("zoned").0, ColumnType::TimestampTz);
    assert_eq!(
        get("amount"),
        (ColumnType::Varchar, Datum::Text("-0.001".into()))
    );
    assert_eq!(
        get("tags"),
        (
            ColumnType::List(Box::new(ColumnType::Varchar)),
            Datum::List(vec![Datum::Text("a".into()), Datum::Null])
        )
    );
    assert_eq!(
        get("attrs"),
        (
            ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::BigInt)),
            Datum::Map(vec![(Datum::Text("k".into()), Datum::Int(5))])
        )
    );
    assert_eq!(get("mood"), (ColumnType::Varchar, Datum::Text("ok".into())));
    // `before` is null; `op` and `source` are there for the envelope reader.
    assert_eq!(row.get("before").unwrap().value, Datum::Null);
    assert_eq!(row.get("op").unwrap().value, Datum::Text("c".into()));
}

#[test]
fn wire_format_errors_say_what_is_wrong() {
    let d = decoder();
    let good = wire(
        ENVELOPE,
        7,
        envelope(
            "d",
            some(row_value(1)),
            Value::Union(0, Box::new(Value::Null)),
        ),
    );
    assert!(d.decode(&good).is_ok());
    let msg = |bytes: &[u8]| d.decode(bytes).unwrap_err().to_string();
    assert!(msg(&[1, 0, 0, 0, 7, 2]).contains("magic byte is 1"));
    assert!(msg(&[0, 0, 0]).contains("shorter than the 5-byte header"));
    assert!(msg(&[]).contains("shorter"));
    let mut unknown = good.clone();
    unknown[4] = 9;
    assert!(msg(&unknown).contains("schema id 9 is not known"));
    let truncated = &good[..good.len() / 2];
    assert!(
        msg(truncated).contains("schema id 7: not valid Avro"),
        "{}",
        msg(truncated)
    );
    // Cut anywhere — inside a string too, which apache-avro itself reads as a null — the
    // record is refused, never read as a shorter one.
    for len in 5..good.len() {
        let e = msg(&good[..len]);
        assert!(
            e.contains("not valid Avro") || e.contains("ends early"),
            "cut at {len}: {e}"
        );
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(msg(&trailing).contains("bytes left after"));
    // A huge length prefix is refused, not allocated.
    let mut huge = vec![0, 0, 0, 0, 7, 2];
    huge.extend([0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert!(d.decode(&huge).is_err());
}

#[test]
fn schema_ids_come_from_the_header() {
    assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9]).unwrap(), 258);
    assert!(schema_id(&[0, 0]).is_err());
}

#[test]
fn plain_avro_logical_types_map_too() {
    let schema = r#"{"type":"record","name":"R","fields":[
        {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":1}},
        {"name":"day","type":{"type":"int","logicalType":"date"}},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"u","type":{"type":"string","logicalType":"uuid"}},
        {"name":"either","type":["int","string"]}]}"#;
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(AvroSchema::parse(schema, &[]).unwrap()));
    let value = Value::Record(vec![
        ("d".into(), Value::Decimal(vec![0x01, 0x00].into())),
        ("day".into(), Value::Date(3)),
        ("at".into(), Value::TimestampMillis(5)),
        (
            "u".into(),
            Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".parse().unwrap()),
        ),
        (
            "either".into(),
            Value::Union(1, Box::new(Value::String("x".into()))),
        ),
    ]);
    let Data::Row(row) = d.decode(&wire(schema, 1, value)).unwrap() else {
        panic!()
    };
    let v: Vec<(String, Option<ColumnType>, Datum)> = row
        .cells
        .into_iter()
        .map(|c| (c.name, c.ty, c.value))
        .collect();
    assert_eq!(
        v,
        vec![
            (
                "d".into(),
                Some(ColumnType::Decimal {
                    precision: 5,
                    scale: 1
                }),
                Datum::Decimal(256, 1)
            ),
            ("day".into(), Some(ColumnType::Date), Datum::Date(3)),
            (
                "at".into(),
                Some(ColumnType::Timestamp),
                Datum::Timestamp(5000)
            ),
            (
                "u".into(),
                Some(ColumnType::Uuid),
                Datum::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
            ),
            (
                "either".into(),
                Some(ColumnType::Json),
                Datum::Text("\"x\"".into())
            ),
        ]
    );
}
