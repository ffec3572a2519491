//! `JsonConverter`: schemaless JSON (types inferred from values) and the
//! `{"schema": …, "payload": …}` envelope written with `schemas.enable=true`, where the Connect
//! schema decides the types (including Connect and Debezium logical types, see
//! [`super::logical`]).

use std::sync::Arc;

use base64::Engine;
use serde_json::value::RawValue;
use serde_json::Value;

use super::debezium::SOURCE_FIELDS;
use super::logical::{variable_scale_decimal, Base, Logical};
use super::{Cell, ColumnType, Data, Datum, DecodeError, Name, Row};

/// Connect schemas parsed so far, by their JSON text: Debezium repeats the same schema in
/// every message, so each distinct schema is parsed once.
const SCHEMA_CACHE: usize = 256;

/// Decodes JSON keys or values, remembering the Connect schemas it has seen.
#[derive(Debug, Default)]
pub struct JsonDecoder {
    schemas_enable: bool,
    /// Values may be Debezium envelopes (the envelope mode is not `none`): see
    /// [`reading_envelopes`](Self::reading_envelopes).
    envelopes: bool,
    names: NameCache,
    schemas: crate::FastMap<Box<str>, Arc<ConnectSchema>>,
    /// The last message's schema text and its parsed form: see [`same_schema`].
    last: Option<(Box<str>, Arc<ConnectSchema>)>,
}

impl JsonDecoder {
    pub fn new(schemas_enable: bool) -> Self {
        Self {
            schemas_enable,
            envelopes: false,
            names: NameCache::default(),
            schemas: crate::FastMap::default(),
            last: None,
        }
    }

    /// Values may be Debezium change events. An object with `before` or `after` and `source`
    /// fields is one (or is rejected as a malformed one: see `debezium::classify`), never a
    /// row. So, schemaless, when its `source` comes after a `before` or `after` among its
    /// first two fields (as Debezium writes them), only the fields of that block the sink
    /// reads are kept; the rest are skipped while parsing, not decoded into cells and
    /// dropped. With schemas, an envelope schema's `before`, `after` and `source` are read as
    /// objects, `source` trimmed the same way ([`ConnectSchema::payload_data`]).
    pub fn reading_envelopes(mut self) -> Self {
        self.envelopes = true;
        self
    }

    pub fn decode(&mut self, bytes: &[u8]) -> Result<Data, DecodeError> {
        if self.schemas_enable {
            self.decode_envelope(bytes)
        } else {
            decode_schemaless(bytes, &mut self.names, self.envelopes)
        }
    }

    fn decode_envelope(&mut self, bytes: &[u8]) -> Result<Data, DecodeError> {
        if let Some((schema, payload)) = self
            .last
            .as_ref()
            .and_then(|(text, schema)| Some((schema, same_schema(bytes, text)?)))
        {
            match schema.payload_data(payload, self.envelopes) {
                // Not JSON after all: the full parse says where.
                Err(DecodeError::NotJson(_)) => {}
                read => return read,
            }
        }
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            schema: Option<&'a RawValue>,
            /// `Some(None)`: `"payload": null`; `None`: no payload at all.
            #[serde(borrow, default, deserialize_with = "present")]
            payload: Option<Option<&'a RawValue>>,
        }
        fn present<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Option<&'de RawValue>>, D::Error> {
            <Option<&'de RawValue> as serde::Deserialize>::deserialize(d).map(Some)
        }
        let not_envelope = || {
            DecodeError::Shape(
                "schemas.enable=true expects an object {\"schema\": …, \"payload\": …}; set the converter's schemas.enable=false for plain JSON".into(),
            )
        };
        let is_object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        // As in `decode_schemaless`: one UTF-8 check rather than one per string.
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(bytes),
        };
        let env: Envelope<'_> = match parsed {
            Ok(env) if is_object => env,
            Ok(_) => return Err(not_envelope()),
            Err(e) if e.is_data() => return Err(not_envelope()),
            Err(e) => return Err(DecodeError::NotJson(e.to_string())),
        };
        let (Some(schema), Some(payload)) = (env.schema, env.payload) else {
            return Err(not_envelope());
        };
        let schema_text = schema.get();
        let Some(payload) = payload else {
            return Ok(Data::Null);
        };
        let schema = match self.schema(schema) {
            Ok(schema) => schema,
            // A payload that is not JSON is reported first, as when it was parsed before the
            // schema (the envelope's parse lets lone surrogates and huge numbers through).
            Err(e) => {
                return Err(match serde_json::from_str::<Value>(payload.get()) {
                    Err(j) => DecodeError::NotJson(j.to_string()),
                    Ok(_) => e,
                })
            }
        };
        if self
            .last
            .as_ref()
            .is_none_or(|(text, _)| **text != *schema_text)
        {
            self.last = Some((schema_text.into(), schema.clone()));
        }
        schema.payload_data(payload.get(), self.envelopes)
    }

    fn schema(&mut self, raw: &RawValue) -> Result<Arc<ConnectSchema>, DecodeError> {
        if let Some(s) = self.schemas.get(raw.get()) {
            return Ok(s.clone());
        }
        let value: Value =
            serde_json::from_str(raw.get()).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let schema = Arc::new(
            ConnectSchema::parse(&value).map_err(|m| DecodeError::Shape(format!("schema: {m}")))?,
        );
        if self.schemas.len() >= SCHEMA_CACHE {
            self.schemas.clear();
        }
        self.schemas.insert(raw.get().into(), schema.clone());
        Ok(schema)
    }
}

/// The payload text of `bytes` if they are `{"schema":<text>,"payload":<payload>}` (trailing
/// whitespace allowed), as Kafka Connect's `JsonConverter` writes every message: a topic's
/// messages repeat one schema byte for byte, so comparing its text with the last message's
/// replaces scanning it as JSON, which was half of a Debezium event's decode. Other spacing
/// or key order, or another schema, is `None`; so is a payload that then turns out not to be
/// one JSON value (extra keys, a missing brace): the full parse reads or reports those
/// exactly as before.
fn same_schema<'b>(bytes: &'b [u8], text: &str) -> Option<&'b str> {
    let payload = bytes
        .strip_prefix(b"{\"schema\":")?
        .strip_prefix(text.as_bytes())?
        .strip_prefix(b",\"payload\":")?;
    // JSON's whitespace only (`trim_ascii_end` would take a form feed too).
    let end = payload
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    let payload = payload[..end].strip_suffix(b"}")?;
    std::str::from_utf8(payload).ok()
}

/// A Connect schema (the `schema` half of a `schemas.enable=true` message), resolved to the
/// column type its values go into.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectSchema {
    pub base: Base,
    pub logical: Logical,
    pub name: Option<String>,
    pub optional: bool,
    pub default: Option<Value>,
    /// Struct fields.
    pub fields: Vec<(Name, ConnectSchema)>,
    /// Array items, or map values.
    pub items: Option<Box<ConnectSchema>>,
    /// Map keys.
    pub keys: Option<Box<ConnectSchema>>,
    pub column: ColumnType,
}

impl ConnectSchema {
    pub fn parse(v: &Value) -> Result<Self, String> {
        let type_name = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or("schema without `type`")?;
        let base = Base::parse(type_name)
            .ok_or_else(|| format!("unsupported schema type `{type_name}`"))?;
        let name = v.get("name").and_then(Value::as_str).map(str::to_owned);
        let params = v.get("parameters");
        let logical = match &name {
            Some(n) => Logical::from_name(n, |k| params?.get(k)?.as_str()),
            None => Logical::Plain,
        };
        let optional = v.get("optional").and_then(Value::as_bool).unwrap_or(false);
        let default = v.get("default").filter(|d| !d.is_null()).cloned();
        let mut fields = Vec::new();
        let mut items = None;
        let mut keys = None;
        match base {
            Base::Struct => {
                for f in v
                    .get("fields")
                    .and_then(Value::as_array)
                    .ok_or("struct schema without `fields`")?
                {
                    let fname = f
                        .get("field")
                        .and_then(Value::as_str)
                        .ok_or("a field without a `field` name")?;
                    let schema = Self::parse(f).map_err(|m| format!("field `{fname}`: {m}"))?;
                    fields.push((Name::from(fname), schema));
                }
            }
            Base::Array => {
                items = Some(Box::new(Self::parse(
                    v.get("items").ok_or("array schema without `items`")?,
                )?));
            }
            Base::Map => {
                keys = Some(Box::new(Self::parse(
                    v.get("keys").ok_or("map schema without `keys`")?,
                )?));
                items = Some(Box::new(Self::parse(
                    v.get("values").ok_or("map schema without `values`")?,
                )?));
            }
            _ => {}
        }
        let column = match logical.column_type() {
            Some(ty) => ty,
            None => match base {
                Base::Struct if fields.is_empty() => ColumnType::Json,
                Base::Struct => ColumnType::Struct(
                    fields
                        .iter()
                        .map(|(n, s)| (n.clone(), s.column.clone()))
                        .collect(),
                ),
                Base::Array => ColumnType::List(Box::new(
                    items
                        .as_ref()
                        .map_or(ColumnType::Json, |i| i.column.clone()),
                )),
                Base::Map => ColumnType::Map(
                    Box::new(
                        keys.as_ref()
                            .map_or(ColumnType::Varchar, |k| k.column.clone()),
                    ),
                    Box::new(
                        items
                            .as_ref()
                            .map_or(ColumnType::Json, |i| i.column.clone()),
                    ),
                ),
                other => other.column_type(),
            },
        };
        Ok(Self {
            base,
            logical,
            name,
            optional,
            default,
            fields,
            items,
            keys,
            column,
        })
    }

    /// One value under this schema.
    pub fn value(&self, v: &Value) -> Result<Datum, String> {
        if v.is_null() {
            return match &self.default {
                Some(d) => self.value(d),
                None if self.optional => Ok(Datum::Null),
                None => Err("null in a required (optional=false) field".into()),
            };
        }
        let int = |v: &Value| {
            v.as_i64()
                .ok_or_else(|| format!("expected an integer, got {}", kind(v)))
        };
        let text = |v: &Value| -> Result<String, String> {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a string, got {}", kind(v)))
        };
        let bytes = |v: &Value| -> Result<Vec<u8>, String> {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected base64 bytes, got {}", kind(v)))?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("bytes are not base64: {e}"))
        };
        match self.logical {
            Logical::VariableScaleDecimal => {
                let scale = v.get("scale").map(int).transpose()?.unwrap_or(0);
                let value = bytes(v.get("value").unwrap_or(&Value::Null))?;
                return variable_scale_decimal(scale, &value);
            }
            Logical::Geometry => {
                return match v.get("wkb") {
                    Some(w) if !w.is_null() => Ok(Datum::Bytes(bytes(w)?)),
                    _ => Ok(Datum::Null),
                };
            }
            Logical::Plain => {}
            logical => {
                return match (self.base, v) {
                    // decimal.format=NUMERIC writes decimals as JSON numbers.
                    (_, Value::Number(n)) if matches!(logical, Logical::Decimal { .. }) => {
                        logical.from_text(&n.to_string())
                    }
                    (_, Value::String(s)) if logical == Logical::Json => Ok(Datum::Text(s.clone())),
                    (_, other) if logical == Logical::Json => Ok(Datum::Text(other.to_string())),
                    (Base::Bytes, other) => logical.from_bytes(&bytes(other)?),
                    (Base::String, other) => logical.from_text(&text(other)?),
                    (_, other) => logical.from_int(int(other)?),
                };
            }
        }
        Ok(match self.base {
            Base::Boolean => Datum::Bool(
                v.as_bool()
                    .ok_or_else(|| format!("expected a boolean, got {}", kind(v)))?,
            ),
            Base::Int8 | Base::Int16 | Base::Int32 | Base::Int64 => {
                let i = int(v)?;
                let fits = match self.base {
                    Base::Int8 => i8::try_from(i).is_ok(),
                    Base::Int16 => i16::try_from(i).is_ok(),
                    Base::Int32 => i32::try_from(i).is_ok(),
                    _ => true,
                };
                if !fits {
                    return Err(format!("{i} is out of range for {}", self.column));
                }
                Datum::Int(i)
            }
            Base::Float32 | Base::Float64 => Datum::Float({
                let f = match v {
                    // JSON has no NaN or infinities; Connect's converter writes them as strings.
                    Value::String(s) => match s.as_str() {
                        "NaN" => f64::NAN,
                        "Infinity" => f64::INFINITY,
                        "-Infinity" => f64::NEG_INFINITY,
                        _ => return Err(format!("expected a number, got the string `{s}`")),
                    },
                    _ => v
                        .as_f64()
                        .ok_or_else(|| format!("expected a number, got {}", kind(v)))?,
                };
                // A FLOAT32 (REAL) column holds the nearest f32: `3.14` is 3.140000104904175
                // there, as in Avro's `float`.
                if self.base == Base::Float32 {
                    f64::from(f as f32)
                } else {
                    f
                }
            }),
            Base::String => Datum::Text(text(v)?),
            Base::Bytes => Datum::Bytes(bytes(v)?),
            Base::Array => {
                let items = self.items.as_deref().ok_or("array schema without items")?;
                let arr = v
                    .as_array()
                    .ok_or_else(|| format!("expected an array, got {}", kind(v)))?;
                Datum::List(
                    arr.iter()
                        .map(|x| items.value_or_null(x))
                        .collect::<Result<_, _>>()?,
                )
            }
            Base::Map => {
                let keys = self.keys.as_deref().ok_or("map schema without keys")?;
                let values = self.items.as_deref().ok_or("map schema without values")?;
                let entries = match v {
                    // String keys: a JSON object.
                    Value::Object(obj) => obj
                        .iter()
                        .map(|(k, x)| {
                            Ok((
                                keys.value(&Value::String(k.clone()))?,
                                values.value_or_null(x)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                    // Other keys: an array of [key, value] pairs.
                    Value::Array(pairs) => pairs
                        .iter()
                        .map(|pair| match pair.as_array().map(Vec::as_slice) {
                            Some([k, x]) => Ok((keys.value(k)?, values.value_or_null(x)?)),
                            _ => Err("map entries must be [key, value] pairs".to_owned()),
                        })
                        .collect::<Result<Vec<_>, String>>()?,
                    other => return Err(format!("expected a map, got {}", kind(other))),
                };
                Datum::Map(entries)
            }
            Base::Struct => {
                if self.fields.is_empty() {
                    return Ok(Datum::Text(v.to_string()));
                }
                let obj = v
                    .as_object()
                    .ok_or_else(|| format!("expected an object, got {}", kind(v)))?;
                Datum::Struct(
                    self.fields
                        .iter()
                        .map(|(name, s)| {
                            s.value(obj.get(name.as_str()).unwrap_or(&Value::Null))
                                .map_err(|m| format!("field `{name}`: {m}"))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
        })
    }

    /// Like [`value`](Self::value), but a null element of a list or map is just null
    /// (Connect marks element schemas optional inconsistently across producers).
    fn value_or_null(&self, v: &Value) -> Result<Datum, String> {
        if v.is_null() {
            Ok(Datum::Null)
        } else {
            self.value(v)
        }
    }
}

/// A payload under its schema, read straight from its JSON text: a struct's fields are
/// matched to the schema's as they are parsed, with no `Value` tree (an object map and an
/// owned key per field) in between. Leaves still go through [`ConnectSchema::value`], so a
/// value means what it meant before, and errors are reported as before: JSON syntax first,
/// then the first field in schema order that does not fit.
impl ConnectSchema {
    /// With `envelopes`, a Debezium envelope's `before`, `after` and `source` are read as
    /// objects (cells, the form `debezium::classify` takes them in) instead of struct values,
    /// and the `source` fields the sink does not read are skipped; see
    /// [`JsonDecoder::reading_envelopes`] for why that is safe.
    pub fn payload_data(&self, text: &str, envelopes: bool) -> Result<Data, DecodeError> {
        use serde::de::DeserializeSeed;
        let not_json = |e: serde_json::Error| DecodeError::NotJson(e.to_string());
        let mut de = serde_json::Deserializer::from_str(text);
        if !self.is_struct_row() {
            let payload: Value = serde::Deserialize::deserialize(&mut de).map_err(not_json)?;
            de.end().map_err(not_json)?;
            if payload.is_null() {
                return Ok(Data::Null);
            }
            let value = self
                .value(&payload)
                .map_err(|m| DecodeError::Shape(m.to_string()))?;
            return Ok(Data::Scalar(Cell {
                name: Name::default(),
                ty: Some(self.column.clone()),
                value,
            }));
        }
        let fields = if envelopes && self.is_envelope() {
            Fields::Envelope
        } else {
            Fields::All
        };
        let read = StructSeed(self, fields)
            .deserialize(&mut de)
            .map_err(not_json)?;
        de.end().map_err(not_json)?;
        let values = match read {
            StructRead::Null => return Ok(Data::Null),
            StructRead::Not(kind) => {
                return Err(DecodeError::Shape(format!(
                    "payload must be an object for a struct schema, got {kind}"
                )))
            }
            StructRead::Fields(values) => values,
        };
        let mut cells = Vec::with_capacity(self.fields.len());
        for ((name, schema), value) in self.fields.iter().zip(values) {
            let value = value.map_err(|message| DecodeError::Field {
                field: name.to_string(),
                message,
            })?;
            cells.push(Cell {
                name: name.clone(),
                ty: Some(schema.column.clone()),
                value,
            });
        }
        Ok(Data::Row(Row { cells }))
    }

    /// A payload of this schema is a row: a struct with a STRUCT column type.
    fn is_struct_row(&self) -> bool {
        self.base == Base::Struct && matches!(self.column, ColumnType::Struct(_))
    }

    /// Values of this schema are read field by field ([`StructSeed`]), as [`value`](Self::value)
    /// reads an object.
    fn reads_fields(&self) -> bool {
        self.base == Base::Struct && self.logical == Logical::Plain && !self.fields.is_empty()
    }

    /// A Debezium envelope's: struct fields `source` and `before` or `after`.
    fn is_envelope(&self) -> bool {
        let has = |name: &str| {
            self.fields
                .iter()
                .any(|(n, s)| n.as_str() == name && s.reads_fields())
        };
        has("source") && (has("before") || has("after"))
    }
}

/// Which fields of a struct [`StructSeed`] reads, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fields {
    /// Every field, as a value of its schema.
    All,
    /// A change event's: `before`, `after` and `source` as objects ([`ObjectSeed`]).
    Envelope,
    /// A `source` block's: only [`SOURCE_FIELDS`]; the others are skipped unread.
    Source,
}

impl Fields {
    fn keeps(self, name: &str) -> bool {
        self != Self::Source || SOURCE_FIELDS.contains(&name)
    }
}

/// A struct value as read from JSON: its fields' values in schema order (each converted, or
/// the message of why not), or what else was there.
enum StructRead {
    Null,
    Not(&'static str),
    Fields(Vec<Result<Datum, String>>),
}

impl StructRead {
    /// The value of a field of `schema` read as this: a struct value, or with `object` a row
    /// of the cells `which` keeps; the first field that does not fit is the error.
    fn datum(self, schema: &ConnectSchema, which: Fields, object: bool) -> Result<Datum, String> {
        let values = match self {
            Self::Null => return schema.value(&Value::Null),
            Self::Not(kind) => return Err(format!("expected an object, got {kind}")),
            Self::Fields(values) => values,
        };
        let (mut cells, mut struct_values) = if object {
            (Vec::with_capacity(values.len()), Vec::new())
        } else {
            (Vec::new(), Vec::with_capacity(values.len()))
        };
        for ((name, field), value) in schema.fields.iter().zip(values) {
            if !which.keeps(name) {
                continue;
            }
            let value = value.map_err(|m| format!("field `{name}`: {m}"))?;
            if object {
                cells.push(Cell {
                    name: name.clone(),
                    ty: Some(field.column.clone()),
                    value,
                });
            } else {
                struct_values.push(value);
            }
        }
        Ok(if object {
            Datum::Object(Row { cells })
        } else {
            Datum::Struct(struct_values)
        })
    }
}

struct StructSeed<'s>(&'s ConnectSchema, Fields);

impl<'de> serde::de::DeserializeSeed<'de> for StructSeed<'_> {
    type Value = StructRead;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<StructRead, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StructSeed<'_> {
    type Value = StructRead;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<StructRead, E> {
        Ok(StructRead::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<StructRead, E> {
        Ok(StructRead::Not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<StructRead, E> {
        Ok(StructRead::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<StructRead, E> {
        Ok(StructRead::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<StructRead, E> {
        Ok(StructRead::Not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<StructRead, E> {
        Ok(StructRead::Not("a string"))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<StructRead, A::Error> {
        Checked.visit_seq(seq)?;
        Ok(StructRead::Not("an array"))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StructRead, A::Error> {
        let (fields, which) = (&self.0.fields, self.1);
        let mut read: Vec<Option<Result<Datum, String>>> = Vec::new();
        read.resize_with(fields.len(), || None);
        let mut next = 0;
        while let Some(i) = map.next_key_seed(FieldSeed { fields, next })? {
            let Some(i) = i.filter(|i| which.keeps(&fields[*i].0)) else {
                map.next_value_seed(Checked)?;
                continue;
            };
            let (name, schema) = &fields[i];
            // Only a struct of fields is an object (as `debezium::nested_row` takes a struct
            // apart): anything else reads as a value, to be refused there.
            let value = match (which, name.as_str()) {
                (Fields::Envelope, "before" | "after") if schema.reads_fields() => {
                    map.next_value_seed(ObjectSeed(schema, Fields::All))?
                }
                (Fields::Envelope, "source") if schema.reads_fields() => {
                    map.next_value_seed(ObjectSeed(schema, Fields::Source))?
                }
                _ => map.next_value_seed(ValueSeed(schema))?,
            };
            // A repeated key: the last value wins, as in a parsed object.
            read[i] = Some(value);
            next = i + 1;
        }
        Ok(StructRead::Fields(
            fields
                .iter()
                .zip(read)
                .map(|((name, schema), r)| match r {
                    Some(r) => r,
                    None if which.keeps(name) => schema.value(&Value::Null),
                    // Unread, so never a cell.
                    None => Ok(Datum::Null),
                })
                .collect(),
        ))
    }
}

/// A key of a struct's object: the index of the schema field it names (the one after the last
/// field is tried first), `None` for a key the schema does not have.
struct FieldSeed<'s> {
    fields: &'s [(Name, ConnectSchema)],
    next: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldSeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        if self
            .fields
            .get(self.next)
            .is_some_and(|(n, _)| n.as_str() == key)
        {
            return Ok(Some(self.next));
        }
        Ok(self.fields.iter().position(|(n, _)| n.as_str() == key))
    }
}

/// A value read past, checked as strictly as a parse into cells or a `Value` checks it
/// (escapes decoded, numbers in range, the nesting limit) but kept nowhere. serde's
/// `IgnoredAny` accepts lone surrogates and numbers out of range that those parses refuse, so
/// a skipped field would have let through records that are refused as not JSON otherwise.
struct Checked;

impl<'de> serde::de::DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Checked)?.is_some() {
            map.next_value_seed(Checked)?;
        }
        Ok(())
    }
}

/// A struct read as an object: a row of cells (those `Fields` keeps), not a struct value.
struct ObjectSeed<'s>(&'s ConnectSchema, Fields);

impl<'de> serde::de::DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = Result<Datum, String>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<Result<Datum, String>, D::Error> {
        let (schema, which) = (self.0, self.1);
        Ok(StructSeed(schema, which)
            .deserialize(d)?
            .datum(schema, which, true))
    }
}

/// One value under its schema: a struct field by field, anything else parsed as a JSON value
/// and converted by [`ConnectSchema::value`].
struct ValueSeed<'s>(&'s ConnectSchema);

impl<'de> serde::de::DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Result<Datum, String>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<Result<Datum, String>, D::Error> {
        let schema = self.0;
        if schema.reads_fields() {
            return Ok(StructSeed(schema, Fields::All).deserialize(d)?.datum(
                schema,
                Fields::All,
                false,
            ));
        }
        let v: Value = serde::Deserialize::deserialize(d)?;
        Ok(match v {
            // The common case, without copying the text again.
            Value::String(s) if schema.base == Base::String && schema.logical == Logical::Plain => {
                Ok(Datum::Text(s))
            }
            v => schema.value(&v),
        })
    }
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

/// Straight from the bytes to cells, without an intermediate `Value` tree: the hot path of
/// plain JSON topics. Nested objects become [`Datum::Object`] (a Debezium envelope is
/// unwrapped from them; otherwise they are stored as JSON), arrays JSON text.
fn decode_schemaless(
    bytes: &[u8],
    names: &mut NameCache,
    envelopes: bool,
) -> Result<Data, DecodeError> {
    use serde::de::DeserializeSeed;
    // One UTF-8 check of the whole record is cheaper than serde_json's check of each string
    // from a byte slice; invalid UTF-8 takes the byte path, which reports where it is.
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            Top(names, envelopes)
                .deserialize(&mut de)
                .and_then(|v| de.end().map(|()| v))
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            Top(names, envelopes)
                .deserialize(&mut de)
                .and_then(|v| de.end().map(|()| v))
        }
    };
    match parsed {
        Ok(Schemaless::Row(row)) => Ok(Data::Row(row)),
        Ok(Schemaless::Null) => Ok(Data::Null),
        Ok(Schemaless::Scalar(CellValue(ty, value))) => Ok(Data::Scalar(Cell {
            name: Name::default(),
            ty,
            value,
        })),
        Err(e) => Err(DecodeError::NotJson(e.to_string())),
    }
}

/// Field names of schemaless records, shared between records so a name costs no allocation:
/// records of a topic mostly repeat their fields, so the name each object position had in
/// the record before is tried first, then a table of the names seen.
#[derive(Debug, Default)]
pub struct NameCache {
    /// Per object slot (see [`child_slot`]), the names of its fields in the last record.
    slots: Vec<Vec<Name>>,
    seen: crate::FastSet<Name>,
}

/// Bounds on what the cache keeps: object slots, names, and the length of a kept name (a
/// longer one is made for its record alone).
const MAX_SLOTS: usize = 4096;
const MAX_NAMES: usize = 4096;
const MAX_NAME_BYTES: usize = 256;

impl NameCache {
    fn name(&mut self, slot: Option<usize>, position: usize, key: &str) -> Name {
        let last = slot
            .and_then(|s| self.slots.get(s))
            .and_then(|names| names.get(position));
        if let Some(last) = last.filter(|n| n.as_str() == key) {
            return last.clone();
        }
        if key.len() > MAX_NAME_BYTES {
            return Name::from(key);
        }
        let name = match self.seen.get(key) {
            Some(n) => n.clone(),
            None => {
                if self.seen.len() >= MAX_NAMES {
                    self.seen.clear();
                }
                let n = Name::from(key);
                self.seen.insert(n.clone());
                n
            }
        };
        if let Some(s) = slot {
            if self.slots.len() <= s {
                self.slots.resize_with(s + 1, Vec::new);
            }
            let names = &mut self.slots[s];
            if let Some(n) = names.get_mut(position) {
                *n = name.clone();
            } else if names.len() == position {
                names.push(name.clone());
            }
        }
        name
    }
}

/// The slot of an object nested in field `position` of the object in `parent`: the top-level
/// object is slot 0, and each nested object by its path of field positions (so a Debezium
/// envelope's `before`, `after` and `source` keep theirs); too deep or too wide, none.
fn child_slot(parent: Option<usize>, position: usize) -> Option<usize> {
    let slot = parent?.checked_mul(64)?.checked_add(position + 1)?;
    (position < 64 && slot < MAX_SLOTS).then_some(slot)
}

/// A schemaless JSON value decoded in one pass: an object becomes a row.
enum Schemaless {
    Row(Row),
    Null,
    Scalar(CellValue),
}

/// Reads a whole record with the decoder's names (and whether it may be an envelope).
struct Top<'c>(&'c mut NameCache, bool);

impl<'de> serde::de::DeserializeSeed<'de> for Top<'_> {
    type Value = Schemaless;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Schemaless, D::Error> {
        d.deserialize_any(TopVisitor(self.0, self.1))
    }
}

struct TopVisitor<'c>(&'c mut NameCache, bool);

impl<'c> TopVisitor<'c> {
    fn cell(self) -> CellVisitor<'c> {
        CellVisitor {
            names: self.0,
            slot: None,
            source_block: false,
        }
    }
}

impl<'de> serde::de::Visitor<'de> for TopVisitor<'_> {
    type Value = Schemaless;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Schemaless, A::Error> {
        Ok(Schemaless::Row(object_row(map, self.0, Some(0), self.1)?))
    }
    fn visit_unit<E>(self) -> Result<Schemaless, E> {
        Ok(Schemaless::Null)
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Schemaless, E> {
        self.cell().visit_bool(b).map(Schemaless::Scalar)
    }
    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Schemaless, E> {
        self.cell().visit_i64(i).map(Schemaless::Scalar)
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Schemaless, E> {
        self.cell().visit_u64(u).map(Schemaless::Scalar)
    }
    fn visit_f64<E: serde::de::Error>(self, f: f64) -> Result<Schemaless, E> {
        self.cell().visit_f64(f).map(Schemaless::Scalar)
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Schemaless, E> {
        self.cell().visit_str(s).map(Schemaless::Scalar)
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Schemaless, E> {
        self.cell().visit_string(s).map(Schemaless::Scalar)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Schemaless, A::Error> {
        self.cell().visit_seq(seq).map(Schemaless::Scalar)
    }
}

/// An object's fields as cells. With `envelope`, the object may be a Debezium change event:
/// a `source` field after a `before` or `after` in the first two fields (where Debezium
/// writes them) keeps only [`SOURCE_FIELDS`].
fn object_row<'de, A: serde::de::MapAccess<'de>>(
    mut map: A,
    names: &mut NameCache,
    slot: Option<usize>,
    envelope: bool,
) -> Result<Row, A::Error> {
    let mut cells = Vec::with_capacity(map.size_hint().unwrap_or(8));
    let mut row_images = false;
    loop {
        let position = cells.len();
        let Some(name) = map.next_key_seed(KeySeed {
            names: &mut *names,
            slot,
            position,
        })?
        else {
            break;
        };
        let source_block = row_images && name.as_str() == "source";
        row_images |= envelope && position < 2 && matches!(name.as_str(), "before" | "after");
        let CellValue(ty, value) = map.next_value_seed(CellVisitor {
            names: &mut *names,
            slot: child_slot(slot, position),
            source_block,
        })?;
        cells.push(Cell { name, ty, value });
    }
    Ok(Row { cells })
}

/// The fields of a Debezium `source` block that are in [`SOURCE_FIELDS`]; the others are
/// skipped unread.
fn source_fields<'de, A: serde::de::MapAccess<'de>>(
    mut map: A,
    names: &mut NameCache,
    slot: Option<usize>,
) -> Result<Row, A::Error> {
    let mut cells = Vec::with_capacity(SOURCE_FIELDS.len());
    while let Some(name) = map.next_key_seed(KeptKeySeed {
        names: &mut *names,
        slot,
        position: cells.len(),
    })? {
        match name {
            Some(name) => {
                let CellValue(ty, value) = map.next_value_seed(CellVisitor {
                    names: &mut *names,
                    slot: None,
                    source_block: false,
                })?;
                cells.push(Cell { name, ty, value });
            }
            None => {
                map.next_value_seed(Checked)?;
            }
        }
    }
    Ok(Row { cells })
}

/// A `source` block's key: its shared name if it is one of [`SOURCE_FIELDS`], else `None`.
struct KeptKeySeed<'c> {
    names: &'c mut NameCache,
    slot: Option<usize>,
    position: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeptKeySeed<'_> {
    type Value = Option<Name>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Name>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeptKeySeed<'_> {
    type Value = Option<Name>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Option<Name>, E> {
        Ok(SOURCE_FIELDS
            .contains(&key)
            .then(|| self.names.name(self.slot, self.position, key)))
    }
}

/// An object key, as a shared [`Name`] (read without copying it when it has no escapes).
struct KeySeed<'c> {
    names: &'c mut NameCache,
    slot: Option<usize>,
    position: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Name;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Name, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = Name;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Name, E> {
        Ok(self.names.name(self.slot, self.position, key))
    }
}

/// One field's value with the type inferred from it (`None`: null, type unknown).
struct CellValue(Option<ColumnType>, Datum);

/// Reads one field's value; a nested object takes its names from `slot`.
struct CellVisitor<'c> {
    names: &'c mut NameCache,
    slot: Option<usize>,
    /// The value is a Debezium envelope's `source`: an object keeps only [`SOURCE_FIELDS`].
    source_block: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for CellVisitor<'_> {
    type Value = CellValue;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<CellValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CellVisitor<'_> {
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
            // Past BIGINT (MySQL BIGINT UNSIGNED): exact, as DECIMAL(20,0).
            Err(_) => CellValue(
                Some(ColumnType::Decimal {
                    precision: 20,
                    scale: 0,
                }),
                Datum::Decimal(i128::from(u), 0),
            ),
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
    // Arrays are kept as JSON text: without a schema their element type is a guess.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<CellValue, A::Error> {
        let v: Value =
            serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(CellValue(
            Some(ColumnType::Json),
            Datum::Text(v.to_string()),
        ))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<CellValue, A::Error> {
        let row = if self.source_block {
            source_fields(map, self.names, self.slot)?
        } else {
            object_row(map, self.names, self.slot, false)?
        };
        Ok(CellValue(Some(ColumnType::Json), Datum::Object(row)))
    }
}

/// A schemaless object (nested cells) as JSON text, for a JSON column.
pub fn object_json(row: &Row) -> String {
    let mut out = String::with_capacity(64);
    write_object(row, &mut out);
    out
}

fn write_object(row: &Row, out: &mut String) {
    out.push('{');
    for (i, cell) in row.cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(cell.name.to_string()).to_string());
        out.push(':');
        match &cell.value {
            Datum::Object(inner) => write_object(inner, out),
            // Arrays were kept as JSON text already.
            Datum::Text(t) if cell.ty == Some(ColumnType::Json) => out.push_str(t),
            other => out.push_str(
                &other
                    .to_json(cell.ty.as_ref().unwrap_or(&ColumnType::Varchar))
                    .to_string(),
            ),
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bytes: &str, schemas_enable: bool) -> Row {
        match JsonDecoder::new(schemas_enable)
            .decode(bytes.as_bytes())
            .unwrap()
        {
            Data::Row(r) => r,
            other => panic!("not a row: {other:?}"),
        }
    }

    #[test]
    fn an_envelopes_source_block_keeps_the_fields_the_sink_reads() {
        let names = |row: &Row, field: &str| -> Vec<String> {
            match &row.cells.iter().find(|c| c.name == field).unwrap().value {
                Datum::Object(inner) => inner.cells.iter().map(|c| c.name.to_string()).collect(),
                other => panic!("{other:?}"),
            }
        };
        let source = r#"{"version":"3.0","connector":"mysql","db":"inv","ts_ms":5,"snapshot":"false","table":"users","server_id":1,"gtid":null,"file":"bin.3","pos":154,"row":0,"thread":7,"query":null,"nested":{"a":[1,{"b":"\"x"}]}}"#;
        let event = format!(r#"{{"before":null,"after":{{"id":1}},"source":{source},"op":"c"}}"#);
        let mut d = JsonDecoder::new(false).reading_envelopes();
        for _ in 0..2 {
            let Data::Row(row) = d.decode(event.as_bytes()).unwrap() else {
                panic!()
            };
            assert_eq!(
                names(&row, "source"),
                ["db", "ts_ms", "table", "gtid", "file", "pos"]
            );
            assert_eq!(names(&row, "after"), ["id"]);
            assert_eq!(row.cells.last().unwrap().value, Datum::Text("c".into()));
        }
        // Not after `before`/`after`, or without envelopes: a `source` field is data.
        let plain = format!(r#"{{"source":{source},"after":1}}"#);
        let Data::Row(plain_row) = d.decode(plain.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(names(&plain_row, "source").len(), 14);
        assert_eq!(names(&row(&event, false), "source").len(), 14);
        // A skipped field is still checked as JSON.
        let bad =
            r#"{"before":null,"after":{"id":1},"source":{"version":"\ud800","db":"d"},"op":"c"}"#;
        assert!(matches!(
            d.decode(bad.as_bytes()),
            Err(DecodeError::NotJson(_))
        ));
        // A source that is not an object reads as it is.
        let odd = r#"{"after":{"id":1},"source":"x"}"#;
        let Data::Row(row) = d.decode(odd.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(row.cells[1].value, Datum::Text("x".into()));
    }

    #[test]
    fn schemaless_field_names_are_shared_between_records_and_always_right() {
        let mut d = JsonDecoder::new(false);
        let mut decode = |json: &str| match d.decode(json.as_bytes()).unwrap() {
            Data::Row(r) => r,
            other => panic!("not a row: {other:?}"),
        };
        let names = |r: &Row| {
            r.cells
                .iter()
                .map(|c| c.name.to_string())
                .collect::<Vec<_>>()
        };
        let a = decode(r#"{"id":1,"name":"x","after":{"k":1,"v":2}}"#);
        let b = decode(r#"{"id":2,"name":"y","after":{"k":3,"v":4}}"#);
        assert!(a.cells[0].name.same(&b.cells[0].name));
        let (Datum::Object(ia), Datum::Object(ib)) = (&a.cells[2].value, &b.cells[2].value) else {
            panic!()
        };
        assert!(ia.cells[1].name.same(&ib.cells[1].name));
        // Another order, a new field, an escaped key, and a nested object in a new place.
        let c = decode(r#"{"name":"z","n\u0061me2":1,"id":3,"after":{"v":5},"x":{"k":0}}"#);
        assert_eq!(names(&c), ["name", "name2", "id", "after", "x"]);
        assert!(c.cells[0].name.same(&a.cells[1].name));
        let Datum::Object(ic) = &c.cells[3].value else {
            panic!()
        };
        assert_eq!(names(ic), ["v"]);
        let Datum::Object(xc) = &c.cells[4].value else {
            panic!()
        };
        assert_eq!(names(xc), ["k"]);
        assert_eq!(names(&decode(r#"{"id":4,"name":"w"}"#)), ["id", "name"]);
        // A long name is not kept, but still right.
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let r = decode(&format!(r#"{{"{long}":1}}"#));
        assert_eq!(names(&r), [long]);
    }

    #[test]
    fn schemaless_infers_types_from_values() {
        let r = row(
            r#"{"id":7,"price":9.5,"ok":true,"name":"x","tags":["a"],"gone":null,"big":18446744073709551615}"#,
            false,
        );
        let types: Vec<_> = r
            .cells
            .iter()
            .map(|c| (c.name.as_str(), c.ty.clone()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("id", Some(ColumnType::BigInt)),
                ("price", Some(ColumnType::Double)),
                ("ok", Some(ColumnType::Boolean)),
                ("name", Some(ColumnType::Varchar)),
                ("tags", Some(ColumnType::Json)),
                ("gone", None),
                (
                    "big",
                    Some(ColumnType::Decimal {
                        precision: 20,
                        scale: 0
                    })
                ),
            ]
        );
        assert_eq!(r.cells[4].value, Datum::Text("[\"a\"]".into()));
        assert_eq!(
            r.cells[6].value,
            Datum::Decimal(18_446_744_073_709_551_615, 0)
        );
    }

    #[test]
    fn schemaless_nested_objects_round_trip_as_json() {
        let r = row(
            r#"{"a":{"b":1,"c":[1,{"d":null}],"e":{"f":"x\"y"},"g":2.5}}"#,
            false,
        );
        let Datum::Object(inner) = &r.cells[0].value else {
            panic!("{r:?}")
        };
        assert_eq!(
            object_json(inner),
            r#"{"b":1,"c":[1,{"d":null}],"e":{"f":"x\"y"},"g":2.5}"#
        );
    }

    #[test]
    fn schemaless_garbage_is_not_json() {
        assert!(matches!(
            JsonDecoder::new(false).decode(b"{not json"),
            Err(DecodeError::NotJson(_))
        ));
        assert!(matches!(
            JsonDecoder::new(false).decode(b"[1]"),
            Ok(Data::Scalar(_))
        ));
    }

    #[test]
    fn envelope_uses_connect_schema_types_and_logical_types() {
        let msg = r#"{"schema":{"type":"struct","fields":[
            {"field":"id","type":"int32","optional":false},
            {"field":"amount","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2","connect.decimal.precision":"10"}},
            {"field":"day","type":"int32","name":"io.debezium.time.Date","optional":true},
            {"field":"at","type":"int64","name":"io.debezium.time.MicroTimestamp","optional":true},
            {"field":"note","type":"string","optional":true},
            {"field":"tags","type":"array","items":{"type":"int32"},"optional":true},
            {"field":"addr","type":"struct","optional":true,"fields":[{"field":"zip","type":"string","optional":true}]},
            {"field":"attrs","type":"map","keys":{"type":"string"},"values":{"type":"int64","optional":true},"optional":true},
            {"field":"n","type":"struct","name":"io.debezium.data.VariableScaleDecimal","optional":true,"fields":[{"field":"scale","type":"int32"},{"field":"value","type":"bytes"}]}]},
          "payload":{"id":3,"amount":"MDk=","day":19000,"at":1700000000000001,"note":null,
            "tags":[1,null,3],"addr":{"zip":"1000"},"attrs":{"a":1},"n":{"scale":1,"value":"/w=="}}}"#;
        let r = row(msg, true);
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
        assert_eq!(
            r.cells[5].ty,
            Some(ColumnType::List(Box::new(ColumnType::Integer)))
        );
        assert_eq!(
            r.cells[5].value,
            Datum::List(vec![Datum::Int(1), Datum::Null, Datum::Int(3)])
        );
        assert_eq!(
            r.cells[6].ty,
            Some(ColumnType::Struct(
                vec![("zip".into(), ColumnType::Varchar)].into()
            ))
        );
        assert_eq!(
            r.cells[6].value,
            Datum::Struct(vec![Datum::Text("1000".into())])
        );
        assert_eq!(
            r.cells[7].value,
            Datum::Map(vec![(Datum::Text("a".into()), Datum::Int(1))])
        );
        assert_eq!(r.cells[8].ty, Some(ColumnType::Varchar));
        assert_eq!(r.cells[8].value, Datum::Text("-0.1".into()));
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let mut d = JsonDecoder::new(true);
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int8","optional":false}]},"payload":{"id":300}}"#;
        let e = d.decode(msg.as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), "field `id`: 300 is out of range for TINYINT");
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"id","type":"int64","optional":false}]},"payload":{}}"#;
        let e = d.decode(msg.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `id`: null in a required (optional=false) field"
        );
        let e = d.decode(br#"{"id":1}"#).unwrap_err();
        assert!(e.to_string().contains("schemas.enable=false"), "{e}");
        let e = d.decode(br#"[1,2]"#).unwrap_err();
        assert!(e.to_string().contains("schemas.enable=false"), "{e}");
        let e = d.decode(b"{oops").unwrap_err();
        assert!(matches!(e, DecodeError::NotJson(_)), "{e}");
        // A payload that is not JSON is reported before a schema that cannot be read.
        let e = d
            .decode(br#"{"schema":{"type":"bogus"},"payload":{"a":"\ud800"}}"#)
            .unwrap_err();
        assert!(matches!(e, DecodeError::NotJson(_)), "{e}");
        let e = d
            .decode(br#"{"schema":{"type":"bogus"},"payload":{"a":1}}"#)
            .unwrap_err();
        assert!(e.to_string().starts_with("schema:"), "{e}");
    }

    /// A message repeating the last one's schema text is read by comparing it (no JSON scan
    /// of the schema): every message decodes, or fails with the same error, as it does on a
    /// decoder that has seen nothing before it.
    #[test]
    fn a_repeated_schema_decodes_as_a_first_message_does() {
        let schema = r#"{"type":"struct","fields":[{"field":"id","type":"int8","optional":false},{"field":"s","type":"string","optional":true}]}"#;
        let other =
            r#"{"type":"struct","fields":[{"field":"id","type":"int64","optional":false}]}"#;
        let with = |schema: &str, rest: &str| format!(r#"{{"schema":{schema},"payload":{rest}"#);
        let messages = [
            with(schema, r#"{"id":1,"s":"a"}}"#),
            // The same schema: each of these takes the comparison.
            with(schema, r#"{"id":2,"s":"b\"}"}}"#),
            with(schema, "null}"),
            with(schema, "{\"id\":3}}  \n"),
            // A form feed is not JSON whitespace.
            with(schema, "{\"id\":3}}\u{c}"),
            with(schema, r#" {"id":4,"s":null} }"#),
            with(schema, r#"{"id":300}}"#),
            with(schema, r#"{"id":5}"#),
            with(schema, "null"),
            with(schema, r#"{"id":6},"payload":{"id":7}}"#),
            with(schema, r#"{"id":8},"extra":1}"#),
            with(schema, r#"{"id":9}}}"#),
            with(schema, r#"{"id":10,"s":"\ud800"}}"#),
            with(schema, "{\"id\":11,\"s\":\"\u{e9}\"}}"),
            format!(r#"{{"schema":{schema},"payload":{{"id":12}},"schema":{other}}}"#),
            format!(r#"{{"schema":{schema}}}"#),
            format!(r#"{{"schema": {schema},"payload":{{"id":13}}}}"#),
            // Another schema, then the first again.
            with(other, r#"{"id":14}}"#),
            with(schema, r#"{"id":15}}"#),
        ];
        let mut bytes: Vec<Vec<u8>> = messages.iter().map(|m| m.clone().into_bytes()).collect();
        // Invalid UTF-8 inside the payload.
        let mut bad = with(schema, r#"{"id":16,"s":"xx"}}"#).into_bytes();
        let at = bad.len() - 4;
        bad[at] = 0xff;
        bytes.push(bad);
        let mut seen = JsonDecoder::new(true);
        let mut oks = 0;
        for message in &bytes {
            let fresh = JsonDecoder::new(true).decode(message);
            let repeated = seen.decode(message);
            oks += usize::from(fresh.is_ok());
            assert_eq!(
                format!("{repeated:?}"),
                format!("{fresh:?}"),
                "{}",
                String::from_utf8_lossy(message)
            );
        }
        // Both kinds were there: messages that decode and messages that fail.
        assert!(oks > 5 && oks < bytes.len() - 3, "{oks} of {}", bytes.len());
    }

    /// The payload as a parsed `serde_json::Value`, converted field by field: how payloads
    /// were read before the field-by-field reader, kept here as its reference.
    fn via_value(schema: &ConnectSchema, text: &str) -> Result<Data, DecodeError> {
        let payload: Value =
            serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        if payload.is_null() {
            return Ok(Data::Null);
        }
        if !schema.is_struct_row() {
            let value = schema
                .value(&payload)
                .map_err(|m| DecodeError::Shape(m.to_string()))?;
            return Ok(Data::Scalar(Cell {
                name: Name::default(),
                ty: Some(schema.column.clone()),
                value,
            }));
        }
        let Value::Object(mut obj) = payload else {
            return Err(DecodeError::Shape(format!(
                "payload must be an object for a struct schema, got {}",
                kind(&payload)
            )));
        };
        let mut cells = Vec::new();
        for (name, s) in &schema.fields {
            let raw = obj.remove(name.as_str()).unwrap_or(Value::Null);
            let value = s.value(&raw).map_err(|message| DecodeError::Field {
                field: name.to_string(),
                message,
            })?;
            cells.push(Cell {
                name: name.clone(),
                ty: Some(s.column.clone()),
                value,
            });
        }
        Ok(Data::Row(Row { cells }))
    }

    #[test]
    fn payloads_read_field_by_field_as_a_parsed_value_reads() {
        let schema: Value = serde_json::from_str(
            r#"{"type":"struct","fields":[
            {"field":"id","type":"int8","optional":false},
            {"field":"s","type":"string","optional":true},
            {"field":"d","type":"int32","optional":false,"default":7},
            {"field":"amount","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},
            {"field":"tags","type":"array","items":{"type":"int32"},"optional":true},
            {"field":"inner","type":"struct","optional":true,"fields":[
                {"field":"zip","type":"string","optional":false},
                {"field":"deep","type":"struct","optional":true,"fields":[{"field":"x","type":"int16","optional":false}]}]},
            {"field":"req","type":"struct","optional":false,"fields":[{"field":"y","type":"boolean","optional":true}]},
            {"field":"n","type":"struct","name":"io.debezium.data.VariableScaleDecimal","optional":true,"fields":[{"field":"scale","type":"int32"},{"field":"value","type":"bytes"}]},
            {"field":"empty","type":"struct","optional":true,"fields":[]}]}"#,
        )
        .unwrap();
        let schema = ConnectSchema::parse(&schema).unwrap();
        let payloads = [
            r#"{"id":1,"s":"a","d":2,"amount":"MDk=","tags":[1,null],"inner":{"zip":"z","deep":{"x":3}},"req":{"y":true},"n":{"scale":1,"value":"/w=="},"empty":{"q":[1]}}"#,
            r#"{"req":{}}"#,
            r#"{"id":1,"req":{"y":null},"d":null}"#,
            r#"{"req":{"y":1},"id":1}"#,
            r#"{"id":300,"s":5,"req":{}}"#,
            r#"{"s":5,"id":300,"req":{}}"#,
            r#"{"id":1,"s":5,"req":{}}"#,
            r#"{"id":1,"req":{},"inner":{"deep":{"x":1}}}"#,
            r#"{"id":1,"req":{},"inner":{"zip":"z","deep":{"x":99999}}}"#,
            r#"{"id":1,"req":{},"inner":[1,2]}"#,
            r#"{"id":1,"req":{},"inner":"text"}"#,
            r#"{"id":1,"req":null}"#,
            r#"{"id":1}"#,
            r#"{"id":1,"id":2,"req":{},"unknown":{"a":[1,{"b":2}]}}"#,
            r#"{"id":2,"s":"x","s":"y","req":{"y":false,"y":true}}"#,
            r#"{"id":1,"req":{},"tags":[1,"x"]}"#,
            r#"{"id":1,"req":{},"amount":"not base64!"}"#,
            r#"{"id":1,"req":{},"n":{"scale":"x"}}"#,
            r#"{"s":"\u00e9\n","id":1,"req":{}}"#,
            r#"{"id":1,"req":{},"inner":{"zip":"z"}"#,
            r#"{"id":1,"req":{}} x"#,
            r#"{"id":1,"req":{},}"#,
            // A key the schema does not have is still checked as JSON.
            r#"{"id":1,"req":{},"x":"\ud800"}"#,
            r#"{"id":1,"req":{},"x":[1e999]}"#,
            r#"{"id":1,"req":{},"x":{"y":"\udc00"}}"#,
            r#"{"id":1,"req":{"y":true,"z":-1e400}}"#,
            "null",
            " null ",
            "[1]",
            "3",
            "\"x\"",
            "true",
            "",
        ];
        let mut oks = 0;
        for text in payloads {
            let read = schema.payload_data(text, false);
            oks += usize::from(read.is_ok());
            assert_eq!(
                format!("{read:?}"),
                format!("{:?}", via_value(&schema, text)),
                "{text}"
            );
        }
        assert!(oks > 5 && oks < payloads.len() - 5, "{oks}");
        // Nesting past serde_json's limit in an unknown key.
        let deep = format!(
            r#"{{"id":1,"req":{{}},"x":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            format!("{:?}", schema.payload_data(&deep, false)),
            format!("{:?}", via_value(&schema, &deep))
        );
        assert!(matches!(
            schema.payload_data(&deep, false),
            Err(DecodeError::NotJson(_))
        ));
        // A schema that is not a struct reads its payload as one value.
        let int: Value = serde_json::from_str(r#"{"type":"int16","optional":true}"#).unwrap();
        let int = ConnectSchema::parse(&int).unwrap();
        for text in ["5", "null", "70000", "\"5\"", "{}", "5 5"] {
            assert_eq!(
                format!("{:?}", int.payload_data(text, false)),
                format!("{:?}", via_value(&int, text)),
                "{text}"
            );
        }
    }

    /// With schemas and envelopes on, an envelope's `before`/`after` are read as objects
    /// holding the cells of the struct values a plain reader makes, and its `source` keeps
    /// only the fields the sink reads.
    #[test]
    fn a_schemad_envelope_reads_its_row_images_as_objects() {
        let row_schema = r#"{"type":"struct","optional":true,"name":"s.Value","fields":[
            {"field":"id","type":"int32","optional":false},
            {"field":"at","type":"int64","name":"io.debezium.time.MicroTimestamp","optional":true},
            {"field":"addr","type":"struct","optional":true,"fields":[{"field":"zip","type":"string","optional":true}]}]}"#;
        let schema = format!(
            r#"{{"type":"struct","name":"s.Envelope","fields":[
            {{"field":"before",{r}}},{{"field":"after",{r}}},
            {{"field":"source","type":"struct","optional":false,"fields":[
                {{"field":"version","type":"string","optional":false}},
                {{"field":"db","type":"string","optional":false}},
                {{"field":"snapshot","type":"string","optional":true,"name":"io.debezium.data.Enum"}},
                {{"field":"pos","type":"int64","optional":false}},
                {{"field":"row","type":"int32","optional":false}},
                {{"field":"table","type":"string","optional":true}}]}},
            {{"field":"op","type":"string","optional":false}}]}}"#,
            r = row_schema.trim_start_matches('{').trim_end_matches('}')
        );
        let event = |before: &str, after: &str| {
            format!(
                r#"{{"schema":{schema},"payload":{{"before":{before},"after":{after},"source":{{"version":"3.0","db":"inv","snapshot":"false","pos":154,"row":0,"table":"users"}},"op":"u"}}}}"#
            )
        };
        let image = r#"{"id":1,"at":5,"addr":{"zip":"9"}}"#;
        let message = event(image, r#"{"id":2,"addr":null}"#);
        let Data::Row(plain) = JsonDecoder::new(true).decode(message.as_bytes()).unwrap() else {
            panic!()
        };
        let mut envelopes = JsonDecoder::new(true).reading_envelopes();
        for _ in 0..2 {
            let Data::Row(row) = envelopes.decode(message.as_bytes()).unwrap() else {
                panic!()
            };
            for image in ["before", "after"] {
                let (Some(ColumnType::Struct(fields)), Datum::Struct(values)) = (
                    &plain.get(image).unwrap().ty,
                    &plain.get(image).unwrap().value,
                ) else {
                    panic!("{plain:?}")
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
                assert_eq!(
                    row.get(image).unwrap().value,
                    Datum::Object(Row { cells: expected }),
                    "{image}"
                );
            }
            let Datum::Object(source) = &row.get("source").unwrap().value else {
                panic!("{row:?}")
            };
            let names: Vec<&str> = source.cells.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["db", "pos", "table"]);
            assert_eq!(row.get("op"), plain.get("op"));
        }
        // A null image is null; a bad value in an image still names its field.
        let Data::Row(row) = envelopes.decode(event("null", image).as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(row.get("before").unwrap().value, Datum::Null);
        let e = envelopes
            .decode(event(r#"{"id":"x"}"#, image).as_bytes())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            JsonDecoder::new(true)
                .decode(event(r#"{"id":"x"}"#, image).as_bytes())
                .unwrap_err()
                .to_string()
        );
        // An `after` that is not a struct of fields reads as a plain reader has it (to be
        // refused as a change event later), never as an object.
        for after in [
            r#""type":"string","optional":true"#,
            r#""type":"struct","optional":true,"fields":[]"#,
        ] {
            let odd = schema.replacen(
                &format!(
                    r#"{{"field":"after",{}}}"#,
                    row_schema.trim_start_matches('{').trim_end_matches('}')
                ),
                &format!(r#"{{"field":"after",{after}}}"#),
                1,
            );
            assert_ne!(odd, schema);
            let message = format!(
                r#"{{"schema":{odd},"payload":{{"before":null,"after":{{"id":1}},"source":{{"version":"3","db":"inv","pos":1,"row":0}},"op":"c"}}}}"#
            );
            let plain = JsonDecoder::new(true).decode(message.as_bytes());
            let read = JsonDecoder::new(true)
                .reading_envelopes()
                .decode(message.as_bytes())
                .map(|data| match data {
                    Data::Row(row) => row.get("after").cloned(),
                    _ => None,
                });
            let plain = plain.map(|data| match data {
                Data::Row(row) => row.get("after").cloned(),
                _ => None,
            });
            assert_eq!(format!("{read:?}"), format!("{plain:?}"), "{after}");
        }
    }

    #[test]
    fn envelope_defaults_fill_nulls() {
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"n","type":"int32","optional":false,"default":5}]},"payload":{"n":null}}"#;
        assert_eq!(row(msg, true).cells[0].value, Datum::Int(5));
    }

    #[test]
    fn negative_decimals_sign_extend() {
        let msg = r#"{"schema":{"type":"struct","fields":[{"field":"d","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"1"}}]},"payload":{"d":"/w=="}}"#;
        assert_eq!(row(msg, true).cells[0].value, Datum::Decimal(-1, 1));
    }

    #[test]
    fn primitive_keys_are_scalars() {
        let mut d = JsonDecoder::new(true);
        let msg = r#"{"schema":{"type":"int64","optional":false},"payload":42}"#;
        assert_eq!(
            d.decode(msg.as_bytes()).unwrap(),
            Data::Scalar(Cell {
                name: Name::default(),
                ty: Some(ColumnType::BigInt),
                value: Datum::Int(42)
            })
        );
        assert_eq!(
            d.decode(br#"{"schema":{"type":"int64"},"payload":null}"#)
                .unwrap(),
            Data::Null
        );
    }
}
