//! Connect schemas and values in Confluent's Avro form, for the generators: a Connect schema
//! (as `JsonConverter` writes it) turned into the Avro schema Confluent's `AvroData` makes of
//! it (structs → records named after the Connect name, optional → `["null", T]` with a `null`
//! default, `connect.name` / `connect.version` / `connect.parameters` kept, `Decimal` →
//! `bytes` with `logicalType: decimal`), values converted from the `schemas.enable=false`
//! payload, registered with `TopicNameStrategy` subjects and framed in the wire format (magic
//! byte 0, the 4-byte schema id, the Avro body).

use std::collections::HashSet;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::GenError;

/// One registered schema: its id and the parsed form the encoder writes with.
pub(crate) struct Registered {
    pub id: u32,
    pub schema: Schema,
}

impl Registered {
    pub(crate) fn frame(&self, value: Avro) -> Vec<u8> {
        let mut out = vec![0];
        out.extend(self.id.to_be_bytes());
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&self.schema).build();
        // The value is built from the schema it is written with, so writing cannot fail; an
        // empty body would make the sink reject the record loudly rather than hide a bug.
        match writer.and_then(|w| w.write_value_to_vec(value)) {
            Ok(body) => out.extend(body),
            Err(e) => tracing::error!(error = %e, "avro encoding failed"),
        }
        out
    }
}

/// Registers the Avro form of `connect` under `subject` at the registry `url`.
pub(crate) async fn register(
    url: &str,
    subject: &str,
    connect: &Value,
) -> Result<Registered, GenError> {
    use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
    use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
    let settings = SrSettings::new(url.trim_end_matches('/').to_owned());
    let text = avro_schema(connect).to_string();
    let registered = post_schema(
        &settings,
        subject.to_owned(),
        SuppliedSchema::new(None, SchemaType::Avro, text),
    )
    .await
    .map_err(|e| GenError::Registry(format!("registering {subject} at {url}: {e}")))?;
    with_id(connect, registered.id)
}

/// The Avro form of `connect`, as if registered with `id`.
pub(crate) fn with_id(connect: &Value, id: u32) -> Result<Registered, GenError> {
    let schema = Schema::parse(&avro_schema(connect))
        .map_err(|e| GenError::Registry(format!("the generated schema: {e}")))?;
    Ok(Registered { id, schema })
}

/// The Avro schema `AvroData.fromConnectSchema` makes of a Connect schema (the subset the
/// generator's schemas use).
pub(crate) fn avro_schema(connect: &Value) -> Value {
    avro_type(connect, &mut HashSet::new())
}

fn avro_type(connect: &Value, defined: &mut HashSet<String>) -> Value {
    let ty = connect["type"].as_str().unwrap_or("null");
    let name = connect["name"].as_str();
    let mut m = Map::new();
    match ty {
        "struct" => {
            let full = name.unwrap_or("ConnectDefault");
            if !defined.insert(full.to_owned()) {
                // Avro names a type once; later uses refer to it by its full name.
                return json!(full);
            }
            let (namespace, short) = match full.rsplit_once('.') {
                Some((ns, short)) => (Some(ns), short),
                None => (None, full),
            };
            m.insert("type".into(), json!("record"));
            m.insert("name".into(), json!(short));
            if let Some(ns) = namespace {
                m.insert("namespace".into(), json!(ns));
            }
            let fields: Vec<Value> = connect["fields"]
                .as_array()
                .map(|fs| fs.iter().map(|f| avro_field(f, defined)).collect())
                .unwrap_or_default();
            m.insert("fields".into(), Value::Array(fields));
        }
        other => {
            let primitive = match other {
                "int8" | "int16" | "int32" => "int",
                "int64" => "long",
                // JsonConverter's names for Connect FLOAT32 / FLOAT64 are Avro's already.
                "float32" => "float",
                "float64" => "double",
                p => p,
            };
            m.insert("type".into(), json!(primitive));
            if matches!(other, "int8" | "int16") {
                m.insert("connect.type".into(), json!(other));
            }
            if name == Some("org.apache.kafka.connect.data.Decimal") {
                let param = |k: &str| {
                    connect["parameters"][k]
                        .as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                };
                m.insert("scale".into(), json!(param("scale").unwrap_or(0)));
                m.insert(
                    "precision".into(),
                    json!(param("connect.decimal.precision").unwrap_or(64)),
                );
            }
        }
    }
    if let Some(v) = connect.get("version") {
        m.insert("connect.version".into(), v.clone());
    }
    if let Some(p) = connect.get("parameters") {
        m.insert("connect.parameters".into(), p.clone());
    }
    if let Some(d) = connect.get("default") {
        m.insert("connect.default".into(), d.clone());
    }
    if let Some(n) = name {
        m.insert("connect.name".into(), json!(n));
        if n == "org.apache.kafka.connect.data.Decimal" {
            m.insert("logicalType".into(), json!("decimal"));
        }
    }
    // A bare primitive is written as its name alone, as AvroData does.
    if m.len() == 1 {
        return m.remove("type").unwrap_or(Value::Null);
    }
    Value::Object(m)
}

fn avro_field(field: &Value, defined: &mut HashSet<String>) -> Value {
    let inner = avro_type(field, defined);
    let optional = field["optional"].as_bool().unwrap_or(false);
    let default = field.get("default");
    let mut m = Map::new();
    m.insert("name".into(), field["field"].clone());
    match (optional, default) {
        (true, None) | (true, Some(Value::Null)) => {
            m.insert("type".into(), json!(["null", inner]));
            m.insert("default".into(), Value::Null);
        }
        (true, Some(d)) => {
            m.insert("type".into(), json!([inner, "null"]));
            m.insert("default".into(), d.clone());
        }
        (false, d) => {
            m.insert("type".into(), inner);
            if let Some(d) = d {
                m.insert("default".into(), d.clone());
            }
        }
    }
    Value::Object(m)
}

/// The Avro value of a `schemas.enable=false` payload under its Connect schema.
pub(crate) fn to_avro(connect: &Value, payload: &Value) -> Avro {
    let ty = connect["type"].as_str().unwrap_or("null");
    match ty {
        "struct" => Avro::Record(
            connect["fields"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .map(|f| {
                            let name = f["field"].as_str().unwrap_or_default();
                            (name.to_owned(), field_value(f, &payload[name]))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "int8" | "int16" | "int32" => Avro::Int(payload.as_i64().unwrap_or(0) as i32),
        "int64" => Avro::Long(payload.as_i64().unwrap_or(0)),
        "float" | "float32" => Avro::Float(payload.as_f64().unwrap_or(0.0) as f32),
        "double" | "float64" => Avro::Double(payload.as_f64().unwrap_or(0.0)),
        "boolean" => Avro::Boolean(payload.as_bool().unwrap_or(false)),
        "bytes" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(payload.as_str().unwrap_or_default())
                .unwrap_or_default();
            if connect["name"] == "org.apache.kafka.connect.data.Decimal" {
                Avro::Decimal(bytes.into())
            } else {
                Avro::Bytes(bytes)
            }
        }
        _ => Avro::String(payload.as_str().unwrap_or_default().to_owned()),
    }
}

/// A field's value: optional fields are unions, `null` first unless a non-null default puts
/// the type first.
fn field_value(field: &Value, payload: &Value) -> Avro {
    if !field["optional"].as_bool().unwrap_or(false) {
        return to_avro(field, payload);
    }
    let null_first = matches!(field.get("default"), None | Some(Value::Null));
    match (payload.is_null(), null_first) {
        (true, true) => Avro::Union(0, Box::new(Avro::Null)),
        (true, false) => Avro::Union(1, Box::new(Avro::Null)),
        (false, true) => Avro::Union(1, Box::new(to_avro(field, payload))),
        (false, false) => Avro::Union(0, Box::new(to_avro(field, payload))),
    }
}
