//! `JsonConverter`: schemaless JSON objects (types inferred from values) and the
//! `{"schema": …, "payload": …}` envelope written with `schemas.enable=true`, where the Connect
//! schema decides the types (including Connect and Debezium logical types).

use base64::Engine;
use serde_json::Value;

use super::{Cell, ColumnType, Datum, DecodeError, Decoded, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonMode {
    Schemaless,
    Envelope,
}

pub fn decode_json(bytes: &[u8], mode: JsonMode) -> Result<Decoded, DecodeError> {
    match mode {
        JsonMode::Schemaless => decode_schemaless(bytes),
        JsonMode::Envelope => decode_envelope(bytes),
    }
}

/// Straight from the bytes to cells, without an intermediate `Value` tree: the hot path of
/// plain JSON topics.
fn decode_schemaless(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    match serde_json::from_slice::<Schemaless>(bytes) {
        Ok(Schemaless::Row(row)) => Ok(Decoded::Row(row)),
        Ok(Schemaless::Null) => Ok(Decoded::Tombstone),
        Ok(Schemaless::Other(what)) => Err(DecodeError::Shape(format!(
            "expected a JSON object, got {what}"
        ))),
        Err(e) => Err(DecodeError::NotJson(e.to_string())),
    }
}

fn decode_envelope(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let Value::Object(mut env) = value else {
        return Err(DecodeError::Shape(
            "schemas.enable=true expects an object {\"schema\": …, \"payload\": …}".into(),
        ));
    };
    let (Some(schema), Some(payload)) = (env.remove("schema"), env.remove("payload")) else {
        return Err(DecodeError::Shape(
            "schemas.enable=true expects an object {\"schema\": …, \"payload\": …}; set value.converter.schemas.enable=false for plain JSON".into(),
        ));
    };
    if payload.is_null() {
        return Ok(Decoded::Tombstone);
    }
    envelope_row(&schema, payload).map(Decoded::Row)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A schemaless JSON value decoded in one pass: an object becomes a row.
enum Schemaless {
    Row(Row),
    Null,
    Other(&'static str),
}

impl<'de> serde::Deserialize<'de> for Schemaless {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> serde::de::Visitor<'de> for TopVisitor {
    type Value = Schemaless;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Schemaless, A::Error> {
        let mut cells = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(name) = map.next_key::<String>()? {
            let CellValue(ty, value) = map.next_value()?;
            cells.push(Cell { name, ty, value });
        }
        Ok(Schemaless::Row(Row { cells }))
    }
    fn visit_unit<E>(self) -> Result<Schemaless, E> {
        Ok(Schemaless::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Schemaless, E> {
        Ok(Schemaless::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Schemaless, E> {
        Ok(Schemaless::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Schemaless, E> {
        Ok(Schemaless::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Schemaless, E> {
        Ok(Schemaless::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Schemaless, E> {
        Ok(Schemaless::Other("a string"))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Schemaless, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Schemaless::Other("an array"))
    }
}

/// One field's value with the type inferred from it (`None`: null, type unknown).
struct CellValue(Option<ColumnType>, Datum);

impl<'de> serde::Deserialize<'de> for CellValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

struct CellVisitor;

impl<'de> serde::de::Visitor<'de> for CellVisitor {
    type Value = CellValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<CellValue, E> {
        Ok(CellValue(None, Datum::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<CellValue, E> {
        Ok(CellValue(Some(ColumnType::Boolean), Datum::Bool(b)))
    }
    fn visit_i64<E>(self, i: i64) -> Result<CellValue, E> {
        Ok(CellValue(Some(ColumnType::BigInt), Datum::Int(i)))
    }
    fn visit_u64<E>(self, u: u64) -> Result<CellValue, E> {
        Ok(match i64::try_from(u) {
            Ok(i) => CellValue(Some(ColumnType::BigInt), Datum::Int(i)),
            Err(_) => CellValue(Some(ColumnType::Double), Datum::Float(u as f64)),
        })
    }
    fn visit_f64<E>(self, f: f64) -> Result<CellValue, E> {
        Ok(CellValue(Some(ColumnType::Double), Datum::Float(f)))
    }
    fn visit_str<E>(self, s: &str) -> Result<CellValue, E> {
        Ok(CellValue(
            Some(ColumnType::Varchar),
            Datum::Text(s.to_owned()),
        ))
    }
    fn visit_string<E>(self, s: String) -> Result<CellValue, E> {
        Ok(CellValue(Some(ColumnType::Varchar), Datum::Text(s)))
    }
    // Nested objects and arrays are kept as JSON text.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<CellValue, A::Error> {
        let v: Value =
            serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(CellValue(
            Some(ColumnType::Json),
            Datum::Text(v.to_string()),
        ))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<CellValue, A::Error> {
        let v: Value =
            serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(CellValue(
            Some(ColumnType::Json),
            Datum::Text(v.to_string()),
        ))
    }
}

fn envelope_row(schema: &Value, payload: Value) -> Result<Row, DecodeError> {
    let shape = |m: &str| DecodeError::Shape(format!("schema: {m}"));
    if schema.get("type").and_then(Value::as_str) != Some("struct") {
        return Err(shape("the top-level schema must be of type struct"));
    }
    let fields = schema
        .get("fields")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("struct schema without `fields`"))?;
    let Value::Object(mut payload) = payload else {
        return Err(DecodeError::Shape(
            "payload must be an object for a struct schema".into(),
        ));
    };
    let mut cells = Vec::with_capacity(fields.len());
    for field in fields {
        let name = field
            .get("field")
            .and_then(Value::as_str)
            .ok_or_else(|| shape("a field without a `field` name"))?;
        let ty = column_type(field).map_err(|message| DecodeError::Field {
            field: name.to_owned(),
            message,
        })?;
        let optional = field
            .get("optional")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let raw = payload.remove(name).unwrap_or(Value::Null);
        let value = if raw.is_null() {
            let default = field.get("default").cloned().unwrap_or(Value::Null);
            if default.is_null() && !optional {
                return Err(DecodeError::Field {
                    field: name.to_owned(),
                    message: "null in a required (optional=false) field".into(),
                });
            }
            convert(field, ty, default)
        } else {
            convert(field, ty, raw)
        }
        .map_err(|message| DecodeError::Field {
            field: name.to_owned(),
            message,
        })?;
        cells.push(Cell {
            name: name.to_owned(),
            ty: Some(ty),
            value,
        });
    }
    Ok(Row { cells })
}

/// The type table for Connect schemas (see the README's type mapping).
fn column_type(field: &Value) -> Result<ColumnType, String> {
    let ty = field
        .get("type")
        .and_then(Value::as_str)
        .ok_or("schema without `type`")?;
    let logical = field.get("name").and_then(Value::as_str).unwrap_or("");
    Ok(match logical {
        "org.apache.kafka.connect.data.Decimal" | "io.debezium.data.VariableScaleDecimal" => {
            let params = field.get("parameters");
            let param = |k: &str| -> Option<u8> {
                params?.get(k).and_then(|v| {
                    v.as_str()
                        .and_then(|s| s.parse().ok())
                        .or(v.as_u64().and_then(|n| u8::try_from(n).ok()))
                })
            };
            let scale = param("scale").unwrap_or(0);
            let precision = param("connect.decimal.precision").unwrap_or(38);
            if precision > 38 || scale > precision {
                ColumnType::Varchar
            } else {
                ColumnType::Decimal { precision, scale }
            }
        }
        "org.apache.kafka.connect.data.Date" | "io.debezium.time.Date" => ColumnType::Date,
        "org.apache.kafka.connect.data.Time"
        | "io.debezium.time.Time"
        | "io.debezium.time.MicroTime"
        | "io.debezium.time.NanoTime" => ColumnType::Time,
        "org.apache.kafka.connect.data.Timestamp"
        | "io.debezium.time.Timestamp"
        | "io.debezium.time.MicroTimestamp"
        | "io.debezium.time.NanoTimestamp" => ColumnType::Timestamp,
        "io.debezium.time.ZonedTimestamp" => ColumnType::TimestampTz,
        "io.debezium.data.Json" => ColumnType::Json,
        "io.debezium.data.Uuid" => ColumnType::Uuid,
        _ => match ty {
            "int8" => ColumnType::TinyInt,
            "int16" => ColumnType::SmallInt,
            "int32" => ColumnType::Integer,
            "int64" => ColumnType::BigInt,
            "float" | "float32" => ColumnType::Float,
            "double" | "float64" => ColumnType::Double,
            "boolean" => ColumnType::Boolean,
            "string" => ColumnType::Varchar,
            "bytes" => ColumnType::Blob,
            "struct" | "array" | "map" => ColumnType::Json,
            other => return Err(format!("unsupported schema type `{other}`")),
        },
    })
}

fn convert(field: &Value, ty: ColumnType, v: Value) -> Result<Datum, String> {
    if v.is_null() {
        return Ok(Datum::Null);
    }
    let logical = field.get("name").and_then(Value::as_str).unwrap_or("");
    let int = |v: &Value| {
        v.as_i64()
            .ok_or_else(|| format!("expected an integer, got {}", kind(v)))
    };
    Ok(match ty {
        ColumnType::Boolean => Datum::Bool(
            v.as_bool()
                .ok_or_else(|| format!("expected a boolean, got {}", kind(&v)))?,
        ),
        ColumnType::TinyInt | ColumnType::SmallInt | ColumnType::Integer | ColumnType::BigInt => {
            let i = int(&v)?;
            let fits = match ty {
                ColumnType::TinyInt => i8::try_from(i).is_ok(),
                ColumnType::SmallInt => i16::try_from(i).is_ok(),
                ColumnType::Integer => i32::try_from(i).is_ok(),
                _ => true,
            };
            if !fits {
                return Err(format!("{i} is out of range for {ty}"));
            }
            Datum::Int(i)
        }
        ColumnType::Float | ColumnType::Double => Datum::Float(
            v.as_f64()
                .ok_or_else(|| format!("expected a number, got {}", kind(&v)))?,
        ),
        ColumnType::Decimal { scale, .. } => match &v {
            // Connect encodes decimals as base64 of the big-endian two's-complement unscaled value.
            Value::String(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("decimal is not base64: {e}"))?;
                if bytes.is_empty() || bytes.len() > 16 {
                    return Err(format!(
                        "decimal of {} bytes does not fit 128 bits",
                        bytes.len()
                    ));
                }
                let mut buf = if bytes[0] & 0x80 != 0 {
                    [0xffu8; 16]
                } else {
                    [0u8; 16]
                };
                buf[16 - bytes.len()..].copy_from_slice(&bytes);
                Datum::Decimal(i128::from_be_bytes(buf), scale)
            }
            // decimal.format=NUMERIC writes plain numbers.
            Value::Number(n) => Datum::Text(n.to_string()),
            other => {
                return Err(format!(
                    "expected a base64 or numeric decimal, got {}",
                    kind(other)
                ))
            }
        },
        ColumnType::Varchar if logical.ends_with("Decimal") => Datum::Text(v.to_string()),
        ColumnType::Varchar | ColumnType::Json | ColumnType::Uuid | ColumnType::TimestampTz => {
            match v {
                Value::String(s) => Datum::Text(s),
                other if ty == ColumnType::Json => Datum::Text(other.to_string()),
                other => return Err(format!("expected a string, got {}", kind(&other))),
            }
        }
        ColumnType::Blob => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected base64 bytes, got {}", kind(&v)))?;
            Datum::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| format!("bytes are not base64: {e}"))?,
            )
        }
        ColumnType::Date => {
            let days = int(&v)?;
            Datum::Date(i32::try_from(days).map_err(|_| format!("date {days} out of range"))?)
        }
        ColumnType::Time => {
            let n = int(&v)?;
            Datum::Time(match logical {
                "io.debezium.time.MicroTime" => n,
                "io.debezium.time.NanoTime" => n / 1000,
                _ => n.saturating_mul(1000),
            })
        }
        ColumnType::Timestamp => {
            let n = int(&v)?;
            Datum::Timestamp(match logical {
                "io.debezium.time.MicroTimestamp" => n,
                "io.debezium.time.NanoTimestamp" => n / 1000,
                _ => n.saturating_mul(1000),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bytes: &str, mode: JsonMode) -> Row {
        match decode_json(bytes.as_bytes(), mode).unwrap() {
            Decoded::Row(r) => r,
            Decoded::Tombstone => panic!("tombstone"),
        }
    }

    #[test]
    fn schemaless_infers_types_from_values() {
        let r = row(
            r#"{"id":7,"price":9.5,"ok":true,"name":"x","tags":["a"],"gone":null}"#,
            JsonMode::Schemaless,
        );
        let types: Vec<_> = r.cells.iter().map(|c| (c.name.as_str(), c.ty)).collect();
        assert_eq!(
            types,
            vec![
                ("id", Some(ColumnType::BigInt)),
                ("price", Some(ColumnType::Double)),
                ("ok", Some(ColumnType::Boolean)),
                ("name", Some(ColumnType::Varchar)),
                ("tags", Some(ColumnType::Json)),
                ("gone", None),
            ]
        );
        assert_eq!(r.cells[4].value, Datum::Text("[\"a\"]".into()));
    }

    #[test]
    fn schemaless_rejects_non_objects_and_garbage() {
        assert!(matches!(
            decode_json(b"[1]", JsonMode::Schemaless),
            Err(DecodeError::Shape(_))
        ));
        assert!(matches!(
            decode_json(b"{not json", JsonMode::Schemaless),
            Err(DecodeError::NotJson(_))
        ));
    }

    #[test]
    fn envelope_uses_connect_schema_types_and_logical_types() {
        let msg = r#"{"schema":{"type":"struct","fields":[
            {"field":"id","type":"int32","optional":false},
            {"field":"amount","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"10"}},
            {"field":"day","type":"int32","name":"io.debezium.time.Date","optional":true},
            {"field":"at","type":"int64","name":"io.debezium.time.MicroTimestamp","optional":true},
            {"field":"note","type":"string","optional":true}]},
          "payload":{"id":3,"amount":"MDk=","day":19000,"at":1700000000000001,"note":null}}"#;
        let r = row(msg, JsonMode::Envelope);
        assert_eq!(r.cells[0].ty, Some(ColumnType::Integer));
        assert_eq!(
            r.cells[1].ty,
            Some(ColumnType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        // 0x3039 = 12345 → 123.45
        assert_eq!(r.cells[1].value, Datum::Decimal(12345, 2));
        assert_eq!(r.cells[2].value, Datum::Date(19000));
        assert_eq!(r.cells[3].value, Datum::Timestamp(1_700_000_000_000_001));
        assert_eq!(r.cells[4].value, Datum::Null);
        assert_eq!(r.cells[4].ty, Some(ColumnType::Varchar));
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int8","optional":false}]},"payload":{"id":300}}"#;
        let e = decode_json(msg.as_bytes(), JsonMode::Envelope).unwrap_err();
        assert_eq!(e.to_string(), "field `id`: 300 is out of range for TINYINT");
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int64","optional":false}]},"payload":{}}"#;
        let e = decode_json(msg.as_bytes(), JsonMode::Envelope).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `id`: null in a required (optional=false) field"
        );
        let e = decode_json(br#"{"id":1}"#, JsonMode::Envelope).unwrap_err();
        assert!(e.to_string().contains("schemas.enable=false"), "{e}");
    }

    #[test]
    fn negative_decimals_sign_extend() {
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"d","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"1"}}]},"payload":{"d":"/w=="}}"#;
        assert_eq!(
            row(msg, JsonMode::Envelope).cells[0].value,
            Datum::Decimal(-1, 1)
        );
    }
}
