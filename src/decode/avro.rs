//! `AvroConverter`: Confluent wire format — magic byte 0, the schema id (4 bytes, big-endian),
//! then the Avro binary body — with writer schemas from a schema registry, added here by id
//! once each ([`AvroDecoder::add`]); decoding itself never does I/O.
//!
//! The binary body is read with `apache-avro`. Column types come from the schema's JSON, walked
//! once per id: Connect's `connect.name` / `connect.parameters` / `connect.type` (which
//! Confluent's converter writes, Debezium's logical types included) and Avro's own
//! `logicalType`, through the same type table as the JSON converter ([`Logical`]).

use std::collections::HashMap;
use std::sync::{Arc, Once};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;
use serde_json::Value as Json;

use super::logical::{variable_scale_decimal, Base, Logical};
use super::{Cell, ColumnType, Data, Datum, DecodeError, Row};

/// A record larger than this cannot be declared by a corrupt length prefix either: Avro
/// allocations are capped so garbage fails fast instead of exhausting memory.
const MAX_ALLOCATION: usize = 64 * 1024 * 1024;

/// The schema id of a Confluent wire-format payload.
pub fn schema_id(bytes: &[u8]) -> Result<u32, DecodeError> {
    match bytes {
        [0, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [m, ..] if *m != 0 => Err(DecodeError::Shape(format!(
            "not Confluent Avro: magic byte is {m}, not 0"
        ))),
        _ => Err(DecodeError::Shape(format!(
            "not Confluent Avro: {} bytes, shorter than the 5-byte header",
            bytes.len()
        ))),
    }
}

/// A writer schema, the schemas it references, and the reader built over them once (name
/// resolution walks the whole schema: per record it would cost more than the decoding).
struct Schemata {
    schema: Schema,
    references: Vec<Schema>,
}

self_cell::self_cell!(
    struct ReadyReader {
        owner: Schemata,
        #[covariant]
        dependent: GenericDatumReader,
    }
);

/// One writer schema: what `apache-avro` reads with, and the column types it maps to.
pub struct AvroSchema {
    reader: ReadyReader,
    node: Node,
}

impl std::fmt::Debug for AvroSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroSchema")
            .field("schema", &self.reader.borrow_owner().schema)
            .field("node", &self.node)
            .finish()
    }
}

impl AvroSchema {
    /// Parses a registry schema (its JSON text) and the schemas it references, referenced
    /// ones first.
    pub fn parse(text: &str, references: &[String]) -> Result<Self, String> {
        let (schema, refs) = if references.is_empty() {
            (
                Schema::parse_str(text).map_err(|e| e.to_string())?,
                Vec::new(),
            )
        } else {
            Schema::parse_str_with_list(text, references).map_err(|e| e.to_string())?
        };
        let mut names = Names::default();
        for r in references {
            let json: Json = serde_json::from_str(r).map_err(|e| e.to_string())?;
            names.node(&json, "")?;
        }
        let json: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let node = names.node(&json, "")?;
        let reader = ReadyReader::try_new(
            Schemata {
                schema,
                references: refs,
            },
            |s| {
                GenericDatumReader::builder(&s.schema)
                    .writer_schemata(std::iter::once(&s.schema).chain(&s.references).collect())
                    .and_then(|b| b.build())
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { reader, node })
    }
}

/// Avro keys or values, by schema id.
#[derive(Debug, Default)]
pub struct AvroDecoder {
    schemas: HashMap<u32, Arc<AvroSchema>>,
}

impl AvroDecoder {
    pub fn knows(&self, id: u32) -> bool {
        self.schemas.contains_key(&id)
    }

    pub fn add(&mut self, id: u32, schema: Arc<AvroSchema>) {
        self.schemas.insert(id, schema);
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Data, DecodeError> {
        static LIMIT: Once = Once::new();
        LIMIT.call_once(|| {
            apache_avro::util::max_allocation_bytes(MAX_ALLOCATION);
        });
        let id = schema_id(bytes)?;
        let schema = self.schemas.get(&id).ok_or_else(|| {
            DecodeError::Shape(format!("schema id {id} is not known to the decoder"))
        })?;
        let invalid = |e: apache_avro::Error| {
            DecodeError::Shape(format!("schema id {id}: not valid Avro: {e}"))
        };
        let mut input = Watched {
            rest: &bytes[5..],
            ran_out: false,
        };
        let value = schema
            .reader
            .borrow_dependent()
            .read_value(&mut input)
            .map_err(invalid)?;
        if input.ran_out {
            return Err(DecodeError::Shape(format!("schema id {id}: {CUT_SHORT}")));
        }
        if !input.rest.is_empty() {
            return Err(DecodeError::Shape(format!(
                "schema id {id}: {} bytes left after the Avro record",
                input.rest.len()
            )));
        }
        to_data(&schema.node, value).map_err(|m| DecodeError::Shape(format!("schema id {id}: {m}")))
    }
}

/// The body of a record, noting whether the decoder asked for more than it holds: apache-avro
/// reads a string, bytes or union index cut off by the end of the input as a null instead of
/// failing, so a truncated record would otherwise pass as a shorter one.
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

/// A schema position, resolved to its column type.
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    logical: Logical,
    column: ColumnType,
}

#[derive(Debug, Clone)]
enum Kind {
    Null,
    Primitive,
    Enum,
    Array(Box<Node>),
    Map(Box<Node>),
    Record(Vec<(String, Node)>),
    /// `["null", T]`: an optional T.
    /// `["null", T]` or `[T, "null"]`: `null_branch` is the index of `"null"`.
    Optional {
        inner: Box<Node>,
        null_branch: u32,
    },
    /// Any other union: stored as JSON text.
    Union(Vec<Node>),
}

/// Named types defined so far (records, enums, fixed), by full name.
#[derive(Debug, Default)]
struct Names {
    defined: HashMap<String, Node>,
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

impl Names {
    fn node(&mut self, json: &Json, namespace: &str) -> Result<Node, String> {
        match json {
            Json::String(name) => self.named_or_primitive(name, namespace, None),
            Json::Array(branches) => {
                let nodes = branches
                    .iter()
                    .map(|b| self.node(b, namespace))
                    .collect::<Result<Vec<_>, _>>()?;
                let non_null: Vec<&Node> = nodes
                    .iter()
                    .filter(|n| !matches!(n.kind, Kind::Null))
                    .collect();
                if nodes.len() == 2 && non_null.len() == 1 {
                    let inner = non_null[0].clone();
                    let null_branch = u32::from(matches!(nodes[1].kind, Kind::Null));
                    Ok(Node {
                        column: inner.column.clone(),
                        logical: Logical::Plain,
                        kind: Kind::Optional {
                            inner: Box::new(inner),
                            null_branch,
                        },
                    })
                } else {
                    Ok(Node {
                        kind: Kind::Union(nodes),
                        logical: Logical::Plain,
                        column: ColumnType::Json,
                    })
                }
            }
            Json::Object(obj) => {
                let ty = obj.get("type").ok_or("a schema without `type`")?;
                let Some(type_name) = ty.as_str() else {
                    // {"type": {...}} or {"type": [...]}: the inner schema.
                    return self.node(ty, namespace);
                };
                match type_name {
                    "record" | "error" => {
                        let name = obj
                            .get("name")
                            .and_then(Json::as_str)
                            .ok_or("a record without a name")?;
                        let ns = obj
                            .get("namespace")
                            .and_then(Json::as_str)
                            .unwrap_or(namespace);
                        let full = full_name(name, ns);
                        let inner_ns = full.rsplit_once('.').map_or("", |(n, _)| n).to_owned();
                        let mut fields = Vec::new();
                        for f in obj
                            .get("fields")
                            .and_then(Json::as_array)
                            .ok_or("a record without fields")?
                        {
                            let fname = f
                                .get("name")
                                .and_then(Json::as_str)
                                .ok_or("a record field without a name")?;
                            let ftype = f.get("type").ok_or("a record field without a type")?;
                            let node = self
                                .node(ftype, &inner_ns)
                                .map_err(|m| format!("field `{fname}`: {m}"))?;
                            fields.push((fname.to_owned(), node));
                        }
                        let logical = connect_logical(obj);
                        let column = match logical.column_type() {
                            Some(c) => c,
                            None if fields.is_empty() => ColumnType::Json,
                            None => ColumnType::Struct(
                                fields
                                    .iter()
                                    .map(|(n, f)| (n.clone(), f.column.clone()))
                                    .collect(),
                            ),
                        };
                        let node = Node {
                            kind: Kind::Record(fields),
                            logical,
                            column,
                        };
                        self.defined.insert(full, node.clone());
                        Ok(node)
                    }
                    "enum" => {
                        let node = Node {
                            kind: Kind::Enum,
                            logical: Logical::Plain,
                            column: ColumnType::Varchar,
                        };
                        self.define(obj, namespace, &node);
                        Ok(node)
                    }
                    "array" => {
                        let items = self
                            .node(obj.get("items").ok_or("an array without items")?, namespace)?;
                        Ok(Node {
                            column: ColumnType::List(Box::new(items.column.clone())),
                            kind: Kind::Array(Box::new(items)),
                            logical: Logical::Plain,
                        })
                    }
                    "map" => {
                        let values =
                            self.node(obj.get("values").ok_or("a map without values")?, namespace)?;
                        Ok(Node {
                            column: ColumnType::Map(
                                Box::new(ColumnType::Varchar),
                                Box::new(values.column.clone()),
                            ),
                            kind: Kind::Map(Box::new(values)),
                            logical: Logical::Plain,
                        })
                    }
                    "fixed" => {
                        let node = self.named_or_primitive("bytes", namespace, Some(obj))?;
                        self.define(obj, namespace, &node);
                        Ok(node)
                    }
                    other => self.named_or_primitive(other, namespace, Some(obj)),
                }
            }
            other => Err(format!("`{other}` is not a schema")),
        }
    }

    /// A primitive type (with the attributes of its object form), or a reference to a named
    /// type defined before.
    /// Remembers a named enum or fixed under its full name, for later references.
    fn define(&mut self, obj: &serde_json::Map<String, Json>, namespace: &str, node: &Node) {
        if let Some(name) = obj.get("name").and_then(Json::as_str) {
            let ns = obj
                .get("namespace")
                .and_then(Json::as_str)
                .unwrap_or(namespace);
            self.defined.insert(full_name(name, ns), node.clone());
        }
    }

    fn named_or_primitive(
        &mut self,
        name: &str,
        namespace: &str,
        attrs: Option<&serde_json::Map<String, Json>>,
    ) -> Result<Node, String> {
        let base = match name {
            "null" => {
                return Ok(Node {
                    kind: Kind::Null,
                    logical: Logical::Plain,
                    column: ColumnType::Varchar,
                })
            }
            "boolean" => Base::Boolean,
            "int" => Base::Int32,
            "long" => Base::Int64,
            "float" => Base::Float32,
            "double" => Base::Float64,
            "bytes" => Base::Bytes,
            "string" => Base::String,
            named => {
                return self
                    .defined
                    .get(&full_name(named, namespace))
                    .or_else(|| self.defined.get(named))
                    .cloned()
                    .ok_or_else(|| format!("unknown type `{named}`"))
            }
        };
        let logical = attrs.map_or(Logical::Plain, |a| {
            let connect = connect_logical(a);
            if connect != Logical::Plain {
                connect
            } else {
                avro_logical(a)
            }
        });
        // Confluent writes Connect's int8/int16 as Avro ints marked with `connect.type`.
        let base = match attrs
            .and_then(|a| a.get("connect.type"))
            .and_then(Json::as_str)
        {
            Some("int8") => Base::Int8,
            Some("int16") => Base::Int16,
            _ => base,
        };
        Ok(Node {
            kind: Kind::Primitive,
            column: logical.column_type().unwrap_or_else(|| base.column_type()),
            logical,
        })
    }
}

/// The logical type named by `connect.name` (with `connect.parameters`).
fn connect_logical(attrs: &serde_json::Map<String, Json>) -> Logical {
    let Some(name) = attrs.get("connect.name").and_then(Json::as_str) else {
        return Logical::Plain;
    };
    let params = attrs.get("connect.parameters");
    Logical::from_name(name, |k| params?.get(k)?.as_str())
}

/// Avro's own `logicalType`.
fn avro_logical(attrs: &serde_json::Map<String, Json>) -> Logical {
    let num = |k: &str| {
        attrs
            .get(k)
            .and_then(Json::as_u64)
            .and_then(|n| u8::try_from(n).ok())
    };
    match attrs.get("logicalType").and_then(Json::as_str) {
        Some("decimal") => {
            let scale = num("scale").unwrap_or(0);
            Logical::Decimal {
                precision: num("precision").unwrap_or(38).max(scale),
                scale,
            }
        }
        Some("date") => Logical::Date,
        Some("time-millis") => Logical::TimeMillis,
        Some("time-micros") => Logical::TimeMicros,
        Some("timestamp-millis" | "local-timestamp-millis") => Logical::TimestampMillis,
        Some("timestamp-micros" | "local-timestamp-micros") => Logical::TimestampMicros,
        Some("timestamp-nanos" | "local-timestamp-nanos") => Logical::TimestampNanos,
        Some("uuid") => Logical::Uuid,
        _ => Logical::Plain,
    }
}

/// A `Null` is only accepted where the schema says null (see [`Watched`]).
const CUT_SHORT: &str = "the Avro record ends early (truncated)";

fn to_data(node: &Node, value: Value) -> Result<Data, DecodeError> {
    match (&node.kind, value) {
        (Kind::Null, Value::Null) => Ok(Data::Null),
        (_, Value::Null) => Err(DecodeError::Shape(CUT_SHORT.into())),
        (Kind::Optional { null_branch, .. }, Value::Union(i, _)) if i == *null_branch => {
            Ok(Data::Null)
        }
        (Kind::Optional { inner, .. }, Value::Union(_, v)) => to_data(inner, *v),
        (Kind::Record(fields), Value::Record(values)) if node.logical == Logical::Plain => {
            record_row(fields, values).map(Data::Row)
        }
        (_, v) => Ok(Data::Scalar(Cell {
            name: String::new(),
            ty: Some(node.column.clone()),
            value: datum(node, v).map_err(DecodeError::Shape)?,
        })),
    }
}

fn record_row(fields: &[(String, Node)], values: Vec<(String, Value)>) -> Result<Row, DecodeError> {
    // apache-avro returns a record's fields in schema order, each once: pair them up.
    if values.len() != fields.len() || values.iter().zip(fields).any(|((a, _), (b, _))| a != b) {
        return Err(DecodeError::Shape(
            "the Avro record's fields do not match its schema".into(),
        ));
    }
    let mut cells = Vec::with_capacity(fields.len());
    for ((name, node), (_, v)) in fields.iter().zip(values) {
        let value = datum(node, v).map_err(|message| DecodeError::Field {
            field: name.clone(),
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

/// One value under its schema node.
fn datum(node: &Node, value: Value) -> Result<Datum, String> {
    let logical = node.logical;
    let plain = logical == Logical::Plain;
    Ok(match (&node.kind, value) {
        (Kind::Null, Value::Null) => Datum::Null,
        (_, Value::Null) => return Err(CUT_SHORT.into()),
        (Kind::Optional { null_branch, .. }, Value::Union(i, _)) if i == *null_branch => {
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
        (_, Value::BigDecimal(d)) => Datum::Text(d.to_string()),
        (Kind::Array(items), Value::Array(vs)) => Datum::List(
            vs.into_iter()
                .map(|v| datum(items, v))
                .collect::<Result<_, _>>()?,
        ),
        (Kind::Map(values), Value::Map(m)) => {
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

#[cfg(test)]
mod tests;
