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
      "fields": [{"name": "version", "type": "string"}, {"name": "db", "type": "string"},
                 {"name": "table", "type": ["null", "string"], "default": null},
                 {"name": "snapshot", "type": ["null", {"type": "string", "connect.name": "io.debezium.data.Enum",
                   "connect.parameters": {"allowed": "true,last,false"}}], "default": null},
                 {"name": "pos", "type": "long"}, {"name": "row", "type": "int"},
                 {"name": "file", "type": "string"}]}},
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
                ("version".into(), Value::String("3.0.0.Final".into())),
                ("db".into(), Value::String("inventory".into())),
                ("table".into(), some(Value::String("users".into()))),
                ("snapshot".into(), some(Value::String("false".into()))),
                ("pos".into(), Value::Long(154)),
                ("row".into(), Value::Int(0)),
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

/// With envelopes on, `before`, `after` and `source` are read as objects (the form a change
/// is taken apart in), `source` keeping only the fields the sink reads; the row images hold
/// the same cells as the struct values a plain reader makes.
#[test]
fn an_envelope_reader_takes_row_images_as_objects_and_skips_unread_source_fields() {
    let null = || Value::Union(0, Box::new(Value::Null));
    let bytes = wire(
        ENVELOPE,
        7,
        envelope("u", some(row_value(1)), some(row_value(2))),
    );
    let Data::Row(plain) = decoder().decode(&bytes).unwrap() else {
        panic!()
    };
    let envelopes = decoder().reading_envelopes();
    let Data::Row(row) = envelopes.decode(&bytes).unwrap() else {
        panic!()
    };
    let names = |row: &Row| {
        row.cells
            .iter()
            .map(|c| c.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&row), names(&plain));
    for image in ["before", "after"] {
        let (Some(ColumnType::Struct(fields)), Datum::Struct(values)) = (
            &plain.get(image).unwrap().ty,
            &plain.get(image).unwrap().value,
        ) else {
            panic!("{plain:?}")
        };
        let Datum::Object(object) = &row.get(image).unwrap().value else {
            panic!("{row:?}")
        };
        let expected: Vec<Cell> = fields
            .iter()
            .zip(values)
            .map(|((name, ty), value)| Cell {
                name: name.clone(),
                ty: Some(ty.clone()),
                value: value.clone(),
            })
            .collect();
        assert_eq!(object.cells, expected, "{image}");
    }
    let Datum::Object(source) = &row.get("source").unwrap().value else {
        panic!("{row:?}")
    };
    assert_eq!(names(source), ["db", "table", "pos", "file"]);
    assert_eq!(source.get("pos").unwrap().value, Datum::Int(154));
    // Everything else is as a plain reader has it; a null image stays null.
    assert_eq!(row.get("op"), plain.get("op"));
    let bytes = wire(ENVELOPE, 7, envelope("c", null(), some(row_value(3))));
    let Data::Row(row) = envelopes.decode(&bytes).unwrap() else {
        panic!()
    };
    assert_eq!(row.get("before").unwrap().value, Datum::Null);

    // A skipped field is still checked: bad UTF-8 in `version` fails, naming it.
    let at = bytes.windows(11).position(|w| w == b"3.0.0.Final").unwrap();
    let mut bad = bytes.clone();
    bad[at] = 0xff;
    let e = envelopes.decode(&bad).unwrap_err().to_string();
    assert!(e.contains("field `source`: field `version`"), "{e}");
    // And a record cut anywhere is refused, inside a skipped field too.
    for len in 5..bytes.len() {
        assert!(envelopes.decode(&bytes[..len]).is_err(), "cut at {len}");
    }
}

/// A row image that is a record of no fields is read as a plain reader has it (to be refused
/// as a change later), not as an empty object.
#[test]
fn an_envelope_image_of_no_fields_is_not_an_object() {
    let schema = r#"{"type": "record", "name": "Envelope", "fields": [
        {"name": "before", "type": ["null", {"type": "record", "name": "Empty", "fields": []}], "default": null},
        {"name": "after", "type": ["null", "Empty"], "default": null},
        {"name": "source", "type": {"type": "record", "name": "S", "fields": [{"name": "db", "type": "string"}]}},
        {"name": "op", "type": "string"}]}"#;
    let bytes = wire(
        schema,
        3,
        Value::Record(vec![
            ("before".into(), Value::Union(0, Box::new(Value::Null))),
            ("after".into(), some(Value::Record(vec![]))),
            (
                "source".into(),
                Value::Record(vec![("db".into(), Value::String("d".into()))]),
            ),
            ("op".into(), Value::String("c".into())),
        ]),
    );
    let mut plain = AvroDecoder::default();
    plain.add(3, Arc::new(AvroSchema::parse(schema, &[]).unwrap()));
    let mut envelopes = AvroDecoder::default().reading_envelopes();
    envelopes.add(3, Arc::new(AvroSchema::parse(schema, &[]).unwrap()));
    let (Data::Row(plain), Data::Row(read)) = (
        plain.decode(&bytes).unwrap(),
        envelopes.decode(&bytes).unwrap(),
    ) else {
        panic!()
    };
    assert_eq!(read.get("after"), plain.get("after"));
    assert!(matches!(read.get("after").unwrap().value, Datum::Struct(_)));
    assert!(matches!(
        read.get("source").unwrap().value,
        Datum::Object(_)
    ));
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
        .map(|c| (c.name.into(), c.ty, c.value))
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

// ---- The schema-walking reader against apache-avro's reader (the decoder before it) ----

/// The decoder this reader replaced: apache-avro's `Value` tree, converted by the schema's
/// nodes. Kept here as the reference the new reader must match.
mod reference {
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::types::Value;
    use apache_avro::Schema;

    use super::super::{AvroSchema, Cell, Data, Datum, DecodeError, Kind, Logical, Node, Row};
    use crate::decode::logical::variable_scale_decimal;

    const CUT_SHORT: &str = "the Avro record ends early (truncated)";

    struct Watched<'a> {
        rest: &'a [u8],
        ran_out: bool,
    }

    impl std::io::Read for Watched<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.rest.len());
            if n < buf.len() {
                self.ran_out = true;
            }
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    pub fn decode(text: &str, body: &[u8]) -> Result<Data, String> {
        let schema = Schema::parse_str(text).unwrap();
        let node = AvroSchema::parse(text, &[]).unwrap().node;
        let reader = GenericDatumReader::builder(&schema).build().unwrap();
        let mut input = Watched {
            rest: body,
            ran_out: false,
        };
        let value = reader.read_value(&mut input).map_err(|e| e.to_string())?;
        if input.ran_out {
            return Err(CUT_SHORT.into());
        }
        if !input.rest.is_empty() {
            return Err("bytes left".into());
        }
        to_data(&node, value).map_err(|e| e.to_string())
    }

    fn to_data(node: &Node, value: Value) -> Result<Data, DecodeError> {
        match (&node.kind, value) {
            (Kind::Null, Value::Null) => Ok(Data::Null),
            (_, Value::Null) => Err(DecodeError::Shape(CUT_SHORT.into())),
            (Kind::Optional { null_branch, .. }, Value::Union(i, _))
                if i64::from(i) == *null_branch =>
            {
                Ok(Data::Null)
            }
            (Kind::Optional { inner, .. }, Value::Union(_, v)) => to_data(inner, *v),
            (Kind::Record(fields), Value::Record(values)) if node.logical == Logical::Plain => {
                record_row(fields, values).map(Data::Row)
            }
            (_, v) => Ok(Data::Scalar(Cell {
                name: Default::default(),
                ty: Some(node.column.clone()),
                value: datum(node, v).map_err(DecodeError::Shape)?,
            })),
        }
    }

    fn record_row(
        fields: &[(super::super::Name, Node)],
        values: Vec<(String, Value)>,
    ) -> Result<Row, DecodeError> {
        let mut cells = Vec::with_capacity(fields.len());
        for ((name, node), (_, v)) in fields.iter().zip(values) {
            let value = datum(node, v).map_err(|message| DecodeError::Field {
                field: name.to_string(),
                message,
            })?;
            cells.push(Cell {
                name: name.clone(),
                ty: Some(node.column.clone()),
                value,
            });
        }
        Ok(Row { cells })
    }

    fn datum(node: &Node, value: Value) -> Result<Datum, String> {
        let logical = node.logical;
        let plain = logical == Logical::Plain;
        Ok(match (&node.kind, value) {
            (Kind::Null, Value::Null) => Datum::Null,
            (_, Value::Null) => return Err(CUT_SHORT.into()),
            (Kind::Optional { null_branch, .. }, Value::Union(i, _))
                if i64::from(i) == *null_branch =>
            {
                Datum::Null
            }
            (Kind::Optional { inner, .. }, Value::Union(_, v)) => datum(inner, *v)?,
            (Kind::Union(branches), Value::Union(i, v)) => {
                let branch = branches
                    .get(i as usize)
                    .ok_or_else(|| format!("union branch {i} out of range"))?;
                match datum(branch, *v)? {
                    Datum::Null => Datum::Null,
                    d => Datum::Text(d.to_json(&branch.column).to_string()),
                }
            }
            (_, Value::Boolean(b)) => Datum::Bool(b),
            (_, Value::Int(i)) if plain => Datum::Int(i64::from(i)),
            (_, Value::Int(i)) => logical.from_int(i64::from(i))?,
            (_, Value::Long(i)) if plain => Datum::Int(i),
            (_, Value::Long(i)) => logical.from_int(i)?,
            (_, Value::Float(f)) => Datum::Float(f64::from(f)),
            (_, Value::Double(f)) => Datum::Float(f),
            (_, Value::Bytes(b) | Value::Fixed(_, b)) => logical.from_bytes(&b)?,
            (_, Value::String(s)) if plain => Datum::Text(s),
            (_, Value::String(s)) => logical.from_text(&s)?,
            (_, Value::Enum(_, s)) => Datum::Text(s),
            (_, Value::Uuid(u)) => Datum::Text(u.to_string()),
            (_, Value::Date(d)) => Datum::Date(d),
            (_, Value::TimeMillis(t)) => Datum::Time(i64::from(t) * 1000),
            (_, Value::TimeMicros(t)) => Datum::Time(t),
            (_, Value::TimestampMillis(t) | Value::LocalTimestampMillis(t)) => {
                Datum::Timestamp(t.saturating_mul(1000))
            }
            (_, Value::TimestampMicros(t) | Value::LocalTimestampMicros(t)) => Datum::Timestamp(t),
            (_, Value::TimestampNanos(t) | Value::LocalTimestampNanos(t)) => {
                Datum::Timestamp(t.div_euclid(1000))
            }
            (_, Value::Decimal(d)) => {
                let bytes: Vec<u8> = Vec::try_from(d).map_err(|e| e.to_string())?;
                match logical {
                    Logical::Decimal { .. } => logical.from_bytes(&bytes)?,
                    _ => Datum::Bytes(bytes),
                }
            }
            (Kind::Array { items, .. }, Value::Array(vs)) => Datum::List(
                vs.into_iter()
                    .map(|v| datum(items, v))
                    .collect::<Result<_, _>>()?,
            ),
            (Kind::Map { values, .. }, Value::Map(m)) => {
                let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Datum::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| Ok((Datum::Text(k), datum(values, v)?)))
                        .collect::<Result<_, String>>()?,
                )
            }
            (Kind::Record(fields), Value::Record(values)) => match logical {
                Logical::VariableScaleDecimal => {
                    let mut scale = 0;
                    let mut bytes = Vec::new();
                    for (name, v) in values {
                        match (name.as_str(), v) {
                            ("scale", Value::Int(s)) => scale = i64::from(s),
                            ("value", Value::Bytes(b)) => bytes = b,
                            _ => {}
                        }
                    }
                    variable_scale_decimal(scale, &bytes)?
                }
                Logical::Geometry => values
                    .into_iter()
                    .find(|(n, _)| n == "wkb")
                    .map(|(_, v)| match v {
                        Value::Bytes(b) => Datum::Bytes(b),
                        Value::Union(_, b) => match *b {
                            Value::Bytes(b) => Datum::Bytes(b),
                            _ => Datum::Null,
                        },
                        _ => Datum::Null,
                    })
                    .unwrap_or(Datum::Null),
                _ => {
                    let row = record_row(fields, values).map_err(|e| e.to_string())?;
                    Datum::Struct(row.cells.into_iter().map(|c| c.value).collect())
                }
            },
            (_, other) => {
                return Err(format!(
                    "an Avro value {:?} where the schema says {}",
                    std::mem::discriminant(&other),
                    node.column
                ))
            }
        })
    }
}

/// Every type and logical type the converter maps, Connect's and Debezium's included.
const EVERY_TYPE: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
  {"name": "b", "type": "boolean"},
  {"name": "i", "type": "int"},
  {"name": "i8", "type": {"type": "int", "connect.type": "int8"}},
  {"name": "i16", "type": {"type": "int", "connect.type": "int16"}},
  {"name": "l", "type": "long"},
  {"name": "f", "type": "float"},
  {"name": "d", "type": "double"},
  {"name": "s", "type": "string"},
  {"name": "by", "type": "bytes"},
  {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
  {"name": "fx_again", "type": "Four"},
  {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
  {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "dec_fixed", "type": {"type": "fixed", "name": "DecF", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 3}},
  {"name": "connect_dec", "type": {"type": "bytes", "scale": 2, "precision": 10, "connect.version": 1,
    "connect.parameters": {"scale": "2", "connect.decimal.precision": "10"},
    "connect.name": "org.apache.kafka.connect.data.Decimal", "logicalType": "decimal"}},
  {"name": "wide_dec", "type": {"type": "bytes", "connect.name": "org.apache.kafka.connect.data.Decimal",
    "connect.parameters": {"scale": "1", "connect.decimal.precision": "50"}}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "tmil", "type": {"type": "int", "logicalType": "time-millis"}},
  {"name": "tmic", "type": {"type": "long", "logicalType": "time-micros"}},
  {"name": "tsms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "tsus", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "tsns", "type": {"type": "long", "logicalType": "timestamp-nanos"}},
  {"name": "ltsms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
  {"name": "ltsus", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
  {"name": "ltsns", "type": {"type": "long", "logicalType": "local-timestamp-nanos"}},
  {"name": "connect_ts", "type": {"type": "long", "connect.name": "org.apache.kafka.connect.data.Timestamp", "logicalType": "timestamp-millis"}},
  {"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
  {"name": "uuid_fixed", "type": {"type": "fixed", "name": "U16", "size": 16, "logicalType": "uuid"}},
  {"name": "dbz_date", "type": {"type": "int", "connect.name": "io.debezium.time.Date"}},
  {"name": "dbz_time", "type": {"type": "int", "connect.name": "io.debezium.time.Time"}},
  {"name": "dbz_micro_time", "type": {"type": "long", "connect.name": "io.debezium.time.MicroTime"}},
  {"name": "dbz_nano_time", "type": {"type": "long", "connect.name": "io.debezium.time.NanoTime"}},
  {"name": "dbz_ts", "type": {"type": "long", "connect.name": "io.debezium.time.Timestamp"}},
  {"name": "dbz_micro_ts", "type": {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}},
  {"name": "dbz_nano_ts", "type": {"type": "long", "connect.name": "io.debezium.time.NanoTimestamp"}},
  {"name": "dbz_zoned", "type": {"type": "string", "connect.name": "io.debezium.time.ZonedTimestamp"}},
  {"name": "dbz_zoned_time", "type": {"type": "string", "connect.name": "io.debezium.time.ZonedTime"}},
  {"name": "dbz_duration", "type": {"type": "long", "connect.name": "io.debezium.time.MicroDuration"}},
  {"name": "dbz_json", "type": {"type": "string", "connect.name": "io.debezium.data.Json"}},
  {"name": "dbz_uuid", "type": {"type": "string", "connect.name": "io.debezium.data.Uuid"}},
  {"name": "dbz_enum", "type": {"type": "string", "connect.name": "io.debezium.data.Enum", "connect.parameters": {"allowed": "a,b"}}},
  {"name": "vsd", "type": ["null", {"type": "record", "name": "VariableScaleDecimal", "namespace": "io.debezium.data",
    "connect.name": "io.debezium.data.VariableScaleDecimal",
    "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}]}]},
  {"name": "point", "type": {"type": "record", "name": "Point", "namespace": "io.debezium.data.geometry",
    "connect.name": "io.debezium.data.geometry.Point",
    "fields": [{"name": "x", "type": "double"}, {"name": "y", "type": "double"},
               {"name": "wkb", "type": ["null", "bytes"]}, {"name": "srid", "type": ["null", "int"]}]}},
  {"name": "opt", "type": ["null", "string"]},
  {"name": "opt_last", "type": ["long", "null"]},
  {"name": "either", "type": ["int", "string", "null", "Color", {"type": "array", "items": "long"}]},
  {"name": "list", "type": {"type": "array", "items": ["null", "int"]}},
  {"name": "nested_list", "type": {"type": "array", "items": {"type": "array", "items": "string"}}},
  {"name": "map", "type": {"type": "map", "values": "double"}},
  {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
    {"name": "x", "type": "int"}, {"name": "tags", "type": ["null", {"type": "array", "items": "string"}]},
    {"name": "when", "type": {"type": "long", "connect.name": "io.debezium.time.MicroTimestamp"}}]}},
  {"name": "inner_again", "type": ["null", "Inner"]},
  {"name": "inner_map", "type": {"type": "map", "values": "Inner"}}
]}"#;

/// A random value of `schema`: edge values, empty and multi-block collections, every branch.
fn random_value(
    schema: &Schema,
    names: &apache_avro::schema::NamesRef<'_>,
    rng: &mut rand::rngs::StdRng,
) -> Value {
    use apache_avro::schema::UuidSchema;
    use rand::Rng;
    let long = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..6) {
        0 => i64::MIN,
        1 => i64::MAX,
        2 => 0,
        _ => rng.gen_range(-2_000_000_000_000_000..2_000_000_000_000_000),
    };
    let int = |rng: &mut rand::rngs::StdRng| match rng.gen_range(0..6) {
        0 => i32::MIN,
        1 => i32::MAX,
        2 => 0,
        _ => rng.gen_range(-100_000..100_000),
    };
    let bytes = |rng: &mut rand::rngs::StdRng, n: usize| (0..n).map(|_| rng.gen()).collect();
    let text = |rng: &mut rand::rngs::StdRng| {
        let pieces = ["a", "Z", "é", "漢", "\"", "\\", "\n", "0", " ", "😀"];
        (0..rng.gen_range(0..8))
            .map(|_| pieces[rng.gen_range(0..pieces.len())])
            .collect::<String>()
    };
    match schema {
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.gen()),
        Schema::Int => Value::Int(int(rng)),
        Schema::Long => Value::Long(long(rng)),
        Schema::Float => Value::Float(match rng.gen_range(0..8) {
            0 => f32::NAN,
            1 => f32::INFINITY,
            _ => rng.gen_range(-1e6..1e6),
        }),
        Schema::Double => Value::Double(match rng.gen_range(0..8) {
            0 => f64::NAN,
            1 => f64::NEG_INFINITY,
            _ => rng.gen_range(-1e12..1e12),
        }),
        Schema::Bytes => {
            // Rarely empty: an empty decimal is refused, and would hide the rest of the record.
            let n = if rng.gen_ratio(1, 20) {
                0
            } else {
                rng.gen_range(1..6)
            };
            Value::Bytes(bytes(rng, n))
        }
        Schema::String => Value::String(text(rng)),
        Schema::Fixed(f) => Value::Fixed(f.size, bytes(rng, f.size)),
        Schema::Enum(e) => {
            let i = rng.gen_range(0..e.symbols.len());
            Value::Enum(i as u32, e.symbols[i].clone())
        }
        Schema::Array(a) => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_value(&a.items, names, rng))
                .collect(),
        ),
        Schema::Map(m) => Value::Map(
            (0..rng.gen_range(0..4))
                .map(|_| (text(rng), random_value(&m.types, names, rng)))
                .collect(),
        ),
        Schema::Union(u) => {
            let i = rng.gen_range(0..u.variants().len());
            Value::Union(
                i as u32,
                Box::new(random_value(&u.variants()[i], names, rng)),
            )
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| {
                    // Mostly a scale a decimal can have, so the rest of the record is read.
                    let value = if r.name.name() == "VariableScaleDecimal"
                        && f.name == "scale"
                        && !rng.gen_ratio(1, 10)
                    {
                        Value::Int(rng.gen_range(0..40))
                    } else {
                        random_value(&f.schema, names, rng)
                    };
                    (f.name.clone(), value)
                })
                .collect(),
        ),
        Schema::Decimal(d) => {
            let n = match &d.inner {
                apache_avro::schema::InnerDecimalSchema::Fixed(f) => f.size,
                apache_avro::schema::InnerDecimalSchema::Bytes => rng.gen_range(1..9),
            };
            Value::Decimal(bytes(rng, n).into())
        }
        Schema::Uuid(UuidSchema::Fixed(_) | UuidSchema::String | UuidSchema::Bytes) => {
            Value::Uuid(uuid::Uuid::from_bytes(rng.gen()))
        }
        Schema::Date => Value::Date(int(rng)),
        Schema::TimeMillis => Value::TimeMillis(rng.gen_range(0..86_400_000)),
        Schema::TimeMicros => Value::TimeMicros(rng.gen_range(0..86_400_000_000)),
        Schema::TimestampMillis => Value::TimestampMillis(long(rng)),
        Schema::TimestampMicros => Value::TimestampMicros(long(rng)),
        Schema::TimestampNanos => Value::TimestampNanos(long(rng)),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(long(rng)),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(long(rng)),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(long(rng)),
        Schema::Ref { name } => random_value(names[name], names, rng),
        other => panic!("no generator for {other:?}"),
    }
}

/// Avro bodies (no wire header) of random records of `text`.
fn random_bodies(text: &str, count: usize, seed: u64) -> Vec<Vec<u8>> {
    use rand::SeedableRng;
    let schema = Schema::parse_str(text).unwrap();
    let resolved = apache_avro::schema::ResolvedSchema::try_from(&schema).unwrap();
    let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let value = random_value(&schema, resolved.get_names(), &mut rng);
            writer.write_value_to_vec(value).unwrap()
        })
        .collect()
}

fn with_header(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(id.to_be_bytes());
    out.extend(body);
    out
}

/// Both decoders on one body: the same data (compared through `Debug`, so NaN equals NaN), or
/// both an error.
fn same_as_reference(d: &AvroDecoder, text: &str, body: &[u8]) -> Result<(), String> {
    let new = d.decode(&with_header(1, body));
    let old = reference::decode(text, body);
    match (&new, &old) {
        (Ok(a), Ok(b)) if format!("{a:?}") == format!("{b:?}") => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!("new {new:?}\nold {old:?}")),
    }
}

#[test]
fn the_schema_walking_reader_decodes_every_type_as_apache_avro_did() {
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(AvroSchema::parse(EVERY_TYPE, &[]).unwrap()));
    let bodies = random_bodies(EVERY_TYPE, 2_000, 7);
    let mut rows = 0;
    for (n, body) in bodies.iter().enumerate() {
        same_as_reference(&d, EVERY_TYPE, body).unwrap_or_else(|e| panic!("record {n}: {e}"));
        rows += usize::from(matches!(d.decode(&with_header(1, body)), Ok(Data::Row(_))));
    }
    // Most records decode (a random empty decimal is refused by both).
    assert!(rows > 1_500, "{rows} of 2000 decoded");
}

#[test]
fn damaged_records_fail_or_decode_as_apache_avro_did() {
    use rand::{Rng, SeedableRng};
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(AvroSchema::parse(EVERY_TYPE, &[]).unwrap()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut failed = 0;
    for (n, body) in random_bodies(EVERY_TYPE, 300, 8).into_iter().enumerate() {
        for _ in 0..20 {
            let mut bad = body.clone();
            match rng.gen_range(0..3) {
                0 => bad.truncate(rng.gen_range(0..body.len())),
                1 => {
                    let i = rng.gen_range(0..bad.len());
                    bad[i] = rng.gen();
                }
                _ => bad.insert(rng.gen_range(0..bad.len()), rng.gen()),
            }
            failed += usize::from(d.decode(&with_header(1, &bad)).is_err());
            same_as_reference(&d, EVERY_TYPE, &bad)
                .unwrap_or_else(|e| panic!("record {n}, damaged {bad:?}: {e}"));
        }
    }
    assert!(
        failed > 1_000,
        "only {failed} of 6000 damaged records failed"
    );
}

#[test]
fn uuids_are_checked_and_written_canonically_and_durations_refused() {
    let text = r#"{"type":"record","name":"R","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#;
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(AvroSchema::parse(text, &[]).unwrap()));
    let body = |s: &str| {
        let mut b = vec![(s.len() * 2) as u8];
        b.extend(s.as_bytes());
        b
    };
    let upper = body("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
    let Data::Row(row) = d.decode(&with_header(1, &upper)).unwrap() else {
        panic!()
    };
    assert_eq!(
        row.cells[0].value,
        Datum::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
    );
    same_as_reference(&d, text, &upper).unwrap();
    let bad = body("not-a-uuid");
    let e = d.decode(&with_header(1, &bad)).unwrap_err().to_string();
    assert!(e.contains("field `u`") && e.contains("not a UUID"), "{e}");
    same_as_reference(&d, text, &bad).unwrap();

    let text = r#"{"type":"record","name":"R","fields":[{"name":"t","type":{"type":"fixed","name":"D","size":12,"logicalType":"duration"}}]}"#;
    d.add(1, Arc::new(AvroSchema::parse(text, &[]).unwrap()));
    let e = d.decode(&with_header(1, &[0; 12])).unwrap_err().to_string();
    assert!(e.contains("field `t`") && e.contains("duration"), "{e}");
    same_as_reference(&d, text, &[0; 12]).unwrap();
}

#[test]
fn big_decimals_are_exact_text() {
    let text = r#"{"type":"record","name":"R","fields":[{"name":"x","type":{"type":"bytes","logicalType":"big-decimal"}}]}"#;
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(AvroSchema::parse(text, &[]).unwrap()));
    // bytes of 4: [len 2][0x30 0x39 = 12345][scale 2]
    let Data::Row(row) = d.decode(&with_header(1, &[8, 4, 0x30, 0x39, 4])).unwrap() else {
        panic!()
    };
    assert_eq!(row.cells[0].ty, Some(ColumnType::Varchar));
    assert_eq!(row.cells[0].value, Datum::Text("123.45".into()));
}

#[test]
fn corrupt_counts_and_lengths_are_refused_without_allocating() {
    let text = r#"{"type":"record","name":"R","fields":[
        {"name":"a","type":{"type":"array","items":"long"}},
        {"name":"n","type":{"type":"array","items":"null"}}]}"#;
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(AvroSchema::parse(text, &[]).unwrap()));
    // An array of 2^62 longs in a 12-byte record.
    let mut huge = vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    huge.extend([0, 0]);
    let e = d.decode(&with_header(1, &huge)).unwrap_err().to_string();
    assert!(
        e.contains("not valid Avro") && e.contains("field `a`"),
        "{e}"
    );
    // Nulls take no bytes: a few are fine, a corrupt count of them is refused.
    let Data::Row(row) = d.decode(&with_header(1, &[0, 6, 0])).unwrap() else {
        panic!()
    };
    assert_eq!(
        row.cells[1].value,
        Datum::List(vec![Datum::Null, Datum::Null, Datum::Null])
    );
    let e = d
        .decode(&with_header(1, &[0, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("field `n`"), "{e}");
}

#[test]
fn huge_fixed_sizes_saturate_and_are_refused_by_the_record() {
    let big = usize::MAX / 2 + 1;
    let text = format!(
        r#"{{"type":"record","name":"R","fields":[
        {{"name":"a","type":{{"type":"array","items":{{"type":"record","name":"P","fields":[
            {{"name":"x","type":{{"type":"fixed","name":"X","size":{big}}}}},
            {{"name":"y","type":{{"type":"fixed","name":"Y","size":{big}}}}}]}}}}}},
        {{"name":"m","type":{{"type":"map","values":{{"type":"fixed","name":"Z","size":{big}}}}}}}]}}"#
    );
    let schema = AvroSchema::parse(&text, &[]).unwrap();
    // Summed sizes stay at the top (wrapped, they would let an item count through as if the
    // items took no bytes).
    let Kind::Record(fields) = &schema.node.kind else {
        panic!()
    };
    let mins: Vec<usize> = fields
        .iter()
        .map(|(_, f)| match &f.kind {
            Kind::Array { min_bytes, .. } | Kind::Map { min_bytes, .. } => *min_bytes,
            _ => 0,
        })
        .collect();
    assert_eq!(mins, [usize::MAX, big + 1]);
    let mut d = AvroDecoder::default();
    d.add(1, Arc::new(schema));
    assert!(d.decode(&with_header(1, &[2, 0])).is_err());
    assert!(d.decode(&with_header(1, &[0, 2, 2, b'k'])).is_err());
    assert!(d.decode(&with_header(1, &[0, 0])).is_ok());
}
