//! `AvroConverter`: Confluent wire format — magic byte 0, the schema id (4 bytes, big-endian),
//! then the Avro binary body — with writer schemas from a schema registry, added here by id
//! once each ([`AvroDecoder::add`]); decoding itself never does I/O.
//!
//! Each writer schema is walked once, when it is added, into a tree of [`Node`]s: what each
//! position holds in the binary form (int, string, union, record, …) and the column type it
//! maps to — Connect's `connect.name` / `connect.parameters` / `connect.type` (which
//! Confluent's converter writes, Debezium's logical types included) and Avro's own
//! `logicalType`, through the same type table as the JSON converter ([`Logical`]). A record is
//! then decoded by walking that tree over its bytes, writing cells directly: no intermediate
//! value tree, and a string is copied once, into its cell. `apache-avro` still parses the
//! schema, so the schemas it refuses are refused here too.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use serde_json::Value as Json;

use super::debezium::SOURCE_FIELDS;
use super::logical::{big_endian_decimal_text, variable_scale_decimal, Base, Logical};
use super::{Cell, ColumnType, Data, Datum, DecodeError, Name, Row};

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

/// One writer schema, walked into the plan its records are read by.
#[derive(Debug)]
pub struct AvroSchema {
    node: Node,
    /// For a Debezium envelope (a record with `source` and `before` or `after`), the plan a
    /// decoder reading envelopes uses instead of `node`; see [`envelope_plan`].
    envelope: Option<Node>,
}

impl AvroSchema {
    /// Parses a registry schema (its JSON text) and the schemas it references, referenced
    /// ones first.
    pub fn parse(text: &str, references: &[String]) -> Result<Self, String> {
        // apache-avro checks the schema (names, defaults, logical type attributes).
        if references.is_empty() {
            Schema::parse_str(text).map_err(|e| e.to_string())?;
        } else {
            Schema::parse_str_with_list(text, references).map_err(|e| e.to_string())?;
        }
        let mut names = Names::default();
        for r in references {
            let json: Json = serde_json::from_str(r).map_err(|e| e.to_string())?;
            names.node(&json, "")?;
        }
        let json: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let node = names.node(&json, "")?;
        let envelope = envelope_plan(&node);
        Ok(Self { node, envelope })
    }
}

/// The plan of a Debezium envelope read for its change: `before`, `after` and `source` are
/// read as objects (cells, the form `debezium::classify` takes them in) instead of struct
/// values, and the `source` fields the sink does not read are skipped unread. `None` when the
/// schema is not an envelope's.
///
/// Safe because such a record is never stored as a row: with envelopes on, a value with
/// `source` and `before`/`after` is either a change event or refused as a malformed one.
fn envelope_plan(node: &Node) -> Option<Node> {
    let Kind::Record(fields) = &node.kind else {
        return None;
    };
    let has = |name: &str| fields.iter().any(|(n, _)| n.as_str() == name);
    if node.logical != Logical::Plain || !has("source") || !(has("before") || has("after")) {
        return None;
    }
    // A plain record, or an optional one, read as an object keeping the fields `keep` allows.
    fn object(node: &Node, keep: &dyn Fn(&str) -> bool) -> Node {
        let kind = match &node.kind {
            // As `debezium::nested_row` takes a struct apart: a record of no fields (a JSON
            // column) stays as it is, to be refused there.
            Kind::Record(fields)
                if node.logical == Logical::Plain
                    && matches!(node.column, ColumnType::Struct(_)) =>
            {
                Kind::Object(
                    fields
                        .iter()
                        .map(|(name, field)| {
                            let field = if keep(name) {
                                field.clone()
                            } else {
                                Node {
                                    kind: Kind::Skip(Box::new(field.clone())),
                                    ..field.clone()
                                }
                            };
                            (name.clone(), field)
                        })
                        .collect(),
                )
            }
            Kind::Optional { inner, null_branch } => Kind::Optional {
                inner: Box::new(object(inner, keep)),
                null_branch: *null_branch,
            },
            other => other.clone(),
        };
        Node {
            kind,
            ..node.clone()
        }
    }
    let fields = fields
        .iter()
        .map(|(name, field)| {
            let field = match name.as_str() {
                "before" | "after" => object(field, &|_| true),
                "source" => object(field, &|name| SOURCE_FIELDS.contains(&name)),
                _ => field.clone(),
            };
            (name.clone(), field)
        })
        .collect();
    Some(Node {
        kind: Kind::Record(fields),
        ..node.clone()
    })
}

/// Avro keys or values, by schema id.
#[derive(Debug, Default)]
pub struct AvroDecoder {
    schemas: crate::FastMap<u32, Arc<AvroSchema>>,
    /// Values may be Debezium envelopes: read them by their [`envelope_plan`].
    envelopes: bool,
}

impl AvroDecoder {
    /// A decoder of values that may be Debezium envelopes (the envelope mode is not `none`).
    pub fn reading_envelopes(self) -> Self {
        Self {
            envelopes: true,
            ..self
        }
    }

    pub fn knows(&self, id: u32) -> bool {
        self.schemas.contains_key(&id)
    }

    pub fn add(&mut self, id: u32, schema: Arc<AvroSchema>) {
        self.schemas.insert(id, schema);
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Data, DecodeError> {
        let id = schema_id(bytes)?;
        let schema = self.schemas.get(&id).ok_or_else(|| {
            DecodeError::Shape(format!("schema id {id} is not known to the decoder"))
        })?;
        let node = match &schema.envelope {
            Some(envelope) if self.envelopes => envelope,
            _ => &schema.node,
        };
        let mut input = Input { rest: &bytes[5..] };
        let data = read_data(node, &mut input).map_err(|fail| {
            DecodeError::Shape(match fail {
                Fail::Invalid(m) => format!("schema id {id}: not valid Avro: {m}"),
                Fail::Value(m) => format!("schema id {id}: {m}"),
            })
        })?;
        if !input.rest.is_empty() {
            return Err(DecodeError::Shape(format!(
                "schema id {id}: {} bytes left after the Avro record",
                input.rest.len()
            )));
        }
        Ok(data)
    }
}

/// A schema position: what its bytes are, and the column type it maps to.
#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    logical: Logical,
    column: ColumnType,
}

#[derive(Debug, Clone)]
enum Kind {
    Null,
    /// A primitive or fixed, read as `read`, then made a cell value by `value`.
    Primitive {
        read: Prim,
        value: Conv,
    },
    /// An enum's symbols, by index.
    Enum(Arc<[String]>),
    /// `min_bytes`: the least one item takes, to refuse item counts the record cannot hold.
    Array {
        items: Box<Node>,
        min_bytes: usize,
    },
    Map {
        values: Box<Node>,
        min_bytes: usize,
    },
    Record(Vec<(Name, Node)>),
    /// A record read as an object: cells, not a struct value (an envelope's row images).
    Object(Vec<(Name, Node)>),
    /// A field read past unkept (an envelope's `source` fields the sink does not read).
    Skip(Box<Node>),
    /// `["null", T]` or `[T, "null"]`: `null_branch` is the index of `"null"`.
    Optional {
        inner: Box<Node>,
        null_branch: i64,
    },
    /// Any other union: stored as JSON text.
    Union(Vec<Node>),
}

/// How a primitive is laid out in Avro's binary encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prim {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
}

/// How a primitive's value becomes a cell value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    /// Through the type table ([`Logical::from_int`], `from_text`, `from_bytes`).
    Logical(Logical),
    /// Avro's `uuid` on a string, 16 bytes or a fixed(16): checked, written in the canonical
    /// lower-case hyphenated form.
    Uuid,
    /// Avro's `big-decimal`: bytes holding the unscaled value (length-prefixed) and the scale.
    BigDecimal,
    /// Avro's `duration` (fixed 12): not supported, refused naming the field.
    Duration,
}

impl Node {
    /// The fewest bytes a value of this node takes in the binary form.
    fn min_bytes(&self) -> usize {
        match &self.kind {
            Kind::Null => 0,
            Kind::Primitive { read, .. } => match read {
                Prim::Float => 4,
                Prim::Double => 8,
                Prim::Fixed(n) => *n,
                _ => 1,
            },
            // Saturating: a schema may declare fixed sizes that add up past usize.
            Kind::Record(fields) | Kind::Object(fields) => fields
                .iter()
                .fold(0, |sum, (_, f)| sum.saturating_add(f.min_bytes())),
            Kind::Skip(inner) => inner.min_bytes(),
            Kind::Enum(_)
            | Kind::Array { .. }
            | Kind::Map { .. }
            | Kind::Optional { .. }
            | Kind::Union(_) => 1,
        }
    }
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
                    let null_branch = i64::from(matches!(nodes[1].kind, Kind::Null));
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
                            fields.push((Name::from(fname), node));
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
                        let symbols = obj
                            .get("symbols")
                            .and_then(Json::as_array)
                            .ok_or("an enum without symbols")?
                            .iter()
                            .map(|s| s.as_str().map(str::to_owned))
                            .collect::<Option<Arc<[String]>>>()
                            .ok_or("an enum symbol that is not a string")?;
                        let node = Node {
                            kind: Kind::Enum(symbols),
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
                            kind: Kind::Array {
                                min_bytes: items.min_bytes(),
                                items: Box::new(items),
                            },
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
                            kind: Kind::Map {
                                // The key's length, at least.
                                min_bytes: values.min_bytes().saturating_add(1),
                                values: Box::new(values),
                            },
                            logical: Logical::Plain,
                        })
                    }
                    "fixed" => {
                        let size = obj
                            .get("size")
                            .and_then(Json::as_u64)
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or("a fixed without a size")?;
                        let node = self.primitive(Base::Bytes, Prim::Fixed(size), Some(obj));
                        self.define(obj, namespace, &node);
                        Ok(node)
                    }
                    other => self.named_or_primitive(other, namespace, Some(obj)),
                }
            }
            other => Err(format!("`{other}` is not a schema")),
        }
    }

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

    /// A primitive type (with the attributes of its object form), or a reference to a named
    /// type defined before.
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
            "boolean" => (Base::Boolean, Prim::Boolean),
            "int" => (Base::Int32, Prim::Int),
            "long" => (Base::Int64, Prim::Long),
            "float" => (Base::Float32, Prim::Float),
            "double" => (Base::Float64, Prim::Double),
            "bytes" => (Base::Bytes, Prim::Bytes),
            "string" => (Base::String, Prim::String),
            named => {
                return self
                    .defined
                    .get(&full_name(named, namespace))
                    .or_else(|| self.defined.get(named))
                    .cloned()
                    .ok_or_else(|| format!("unknown type `{named}`"))
            }
        };
        Ok(self.primitive(base.0, base.1, attrs))
    }

    /// A primitive or fixed read as `read`, typed by its attributes.
    fn primitive(
        &self,
        base: Base,
        read: Prim,
        attrs: Option<&serde_json::Map<String, Json>>,
    ) -> Node {
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
        // Avro's logical types on the base types they are defined for (elsewhere they are
        // ignored, as the Avro spec says) decide the value; `connect.name` decides the column.
        let avro = attrs
            .and_then(|a| a.get("logicalType"))
            .and_then(Json::as_str);
        let value = match (avro, read) {
            (Some("uuid"), Prim::String | Prim::Bytes | Prim::Fixed(16)) => Conv::Uuid,
            (Some("big-decimal"), Prim::Bytes) => Conv::BigDecimal,
            (Some("duration"), Prim::Fixed(12)) => Conv::Duration,
            (Some("date" | "time-millis"), Prim::Int)
            | (
                Some(
                    "time-micros"
                    | "timestamp-millis"
                    | "timestamp-micros"
                    | "timestamp-nanos"
                    | "local-timestamp-millis"
                    | "local-timestamp-micros"
                    | "local-timestamp-nanos",
                ),
                Prim::Long,
            ) => Conv::Logical(attrs.map_or(Logical::Plain, avro_logical)),
            _ => Conv::Logical(logical),
        };
        let column = match value {
            // Exact text, as Debezium's variable-scale decimals.
            Conv::BigDecimal => ColumnType::Varchar,
            _ => logical.column_type().unwrap_or_else(|| base.column_type()),
        };
        Node {
            kind: Kind::Primitive { read, value },
            column,
            logical,
        }
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

/// Why a record could not be read: its bytes are not Avro of the schema, or a value is not
/// one its type can hold (a date out of range, a decimal of 0 bytes). Fields are named from
/// the outermost in.
#[derive(Debug)]
enum Fail {
    Invalid(String),
    Value(String),
}

impl Fail {
    fn field(self, name: &str) -> Self {
        match self {
            Self::Invalid(m) => Self::Invalid(format!("field `{name}`: {m}")),
            Self::Value(m) => Self::Value(format!("field `{name}`: {m}")),
        }
    }
}

const CUT_SHORT: &str = "the record ends early (truncated)";

/// The unread rest of a record's body.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        if n > self.rest.len() {
            return Err(Fail::Invalid(CUT_SHORT.into()));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// A zig-zag varint of at most 10 bytes.
    fn long(&mut self) -> Result<i64, Fail> {
        let mut z = 0u64;
        for (i, &b) in self.rest.iter().enumerate().take(10) {
            z |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.rest = &self.rest[i + 1..];
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(Fail::Invalid(if self.rest.len() >= 10 {
            "a variable-length integer longer than 10 bytes".into()
        } else {
            CUT_SHORT.into()
        }))
    }

    fn int(&mut self) -> Result<i32, Fail> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| Fail::Invalid(format!("int {n} out of range")))
    }

    /// A length that the rest of the record can hold.
    fn len(&mut self) -> Result<usize, Fail> {
        let n = self.long()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.rest.len() => Ok(n),
            Ok(_) => Err(Fail::Invalid(format!(
                "a length of {n} bytes, past the end of the record ({CUT_SHORT})"
            ))),
            Err(_) => Err(Fail::Invalid(format!("a negative length {n}"))),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], Fail> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, Fail> {
        std::str::from_utf8(self.bytes()?)
            .map_err(|e| Fail::Invalid(format!("a string that is not UTF-8: {e}")))
    }

    /// The item count of the next block of an array or map (0: the end); items take at
    /// least `min_bytes` each.
    fn block(&mut self, min_bytes: usize) -> Result<usize, Fail> {
        let count = self.long()?;
        if count < 0 {
            // A negative count is followed by the block's size in bytes.
            self.long()?;
        }
        let count = count.unsigned_abs();
        let fits = match min_bytes {
            0 => count <= MAX_EMPTY_ITEMS,
            n => count.saturating_mul(n as u64) <= self.rest.len() as u64,
        };
        if !fits {
            return Err(Fail::Invalid(format!(
                "a block of {count} items, more than the record holds"
            )));
        }
        Ok(count as usize)
    }

    /// A union branch index.
    fn branch(&mut self, branches: usize) -> Result<usize, Fail> {
        let i = self.long()?;
        usize::try_from(i)
            .ok()
            .filter(|i| *i < branches)
            .ok_or_else(|| Fail::Invalid(format!("union branch {i} out of range")))
    }
}

/// Items of a zero-byte type (`null`, an empty record) one array block may declare: such items
/// are free to declare, so a corrupt count is capped here instead of by the record's length.
const MAX_EMPTY_ITEMS: u64 = 1 << 16;

/// A whole key or value.
fn read_data(node: &Node, input: &mut Input<'_>) -> Result<Data, Fail> {
    match &node.kind {
        Kind::Null => Ok(Data::Null),
        Kind::Optional { inner, null_branch } => {
            if input.branch(2)? as i64 == *null_branch {
                Ok(Data::Null)
            } else {
                read_data(inner, input)
            }
        }
        Kind::Record(fields) if node.logical == Logical::Plain => read_row(fields, input)
            .map(|cells| Data::Row(Row { cells }))
            .map_err(|(name, fail)| fail.field(name)),
        _ => Ok(Data::Scalar(Cell {
            name: Name::default(),
            ty: Some(node.column.clone()),
            value: read_datum(node, input)?,
        })),
    }
}

/// A record's fields as cells, in schema order; a failure names its field.
fn read_row<'n>(
    fields: &'n [(Name, Node)],
    input: &mut Input<'_>,
) -> Result<Vec<Cell>, (&'n str, Fail)> {
    let mut cells = Vec::with_capacity(fields.len());
    for (name, node) in fields {
        if let Kind::Skip(inner) = &node.kind {
            skip(inner, input).map_err(|f| (name.as_str(), f))?;
            continue;
        }
        let value = read_datum(node, input).map_err(|f| (name.as_str(), f))?;
        cells.push(Cell {
            name: name.clone(),
            ty: Some(node.column.clone()),
            value,
        });
    }
    Ok(cells)
}

/// One value under its schema node.
fn read_datum(node: &Node, input: &mut Input<'_>) -> Result<Datum, Fail> {
    Ok(match &node.kind {
        Kind::Null => Datum::Null,
        Kind::Primitive { read, value } => primitive(*read, *value, input)?,
        Kind::Object(fields) => {
            let cells = read_row(fields, input).map_err(|(name, fail)| fail.field(name))?;
            Datum::Object(Row { cells })
        }
        Kind::Skip(inner) => {
            skip(inner, input)?;
            Datum::Null
        }
        Kind::Optional { inner, null_branch } => {
            if input.branch(2)? as i64 == *null_branch {
                Datum::Null
            } else {
                read_datum(inner, input)?
            }
        }
        Kind::Union(branches) => {
            let branch = &branches[input.branch(branches.len())?];
            match read_datum(branch, input)? {
                Datum::Null => Datum::Null,
                d => Datum::Text(d.to_json(&branch.column).to_string()),
            }
        }
        Kind::Enum(symbols) => {
            let i = input.int()?;
            let symbol = usize::try_from(i)
                .ok()
                .and_then(|i| symbols.get(i))
                .ok_or_else(|| Fail::Invalid(format!("enum symbol {i} out of range")))?;
            Datum::Text(symbol.clone())
        }
        Kind::Array { items, min_bytes } => {
            let mut values = Vec::new();
            loop {
                let n = input.block(*min_bytes)?;
                if n == 0 {
                    break;
                }
                values.reserve(n);
                for _ in 0..n {
                    values.push(read_datum(items, input)?);
                }
            }
            Datum::List(values)
        }
        Kind::Map { values, min_bytes } => {
            let mut entries: Vec<(String, Datum)> = Vec::new();
            loop {
                let n = input.block(*min_bytes)?;
                if n == 0 {
                    break;
                }
                entries.reserve(n);
                for _ in 0..n {
                    let key = input.str()?.to_owned();
                    entries.push((key, read_datum(values, input)?));
                }
            }
            // By key; a key written twice keeps its last value (a map has each key once).
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut unique: Vec<(Datum, Datum)> = Vec::with_capacity(entries.len());
            let mut last: Option<String> = None;
            for (key, value) in entries {
                if last.as_ref() == Some(&key) {
                    if let Some(entry) = unique.last_mut() {
                        entry.1 = value;
                    }
                    continue;
                }
                last = Some(key.clone());
                unique.push((Datum::Text(key), value));
            }
            Datum::Map(unique)
        }
        Kind::Record(fields) => {
            let cells = read_row(fields, input).map_err(|(name, fail)| fail.field(name))?;
            let value = |name: &str| cells.iter().find(|c| c.name == name).map(|c| &c.value);
            match node.logical {
                Logical::VariableScaleDecimal => {
                    let scale = match value("scale") {
                        Some(Datum::Int(s)) => *s,
                        _ => 0,
                    };
                    let bytes = match value("value") {
                        Some(Datum::Bytes(b)) => b.as_slice(),
                        _ => &[],
                    };
                    variable_scale_decimal(scale, bytes).map_err(Fail::Value)?
                }
                Logical::Geometry => match value("wkb") {
                    Some(Datum::Bytes(b)) => Datum::Bytes(b.clone()),
                    _ => Datum::Null,
                },
                _ => Datum::Struct(cells.into_iter().map(|c| c.value).collect()),
            }
        }
    })
}

/// Reads past one value: strings, bytes and integers without making a cell value of them,
/// anything else read as usual and dropped. The bytes are checked as when reading (lengths,
/// UTF-8, varints, union branches); only a string or integer its logical type could not hold
/// (a date out of range) goes unnoticed, which is harmless for a value nobody reads.
fn skip(node: &Node, input: &mut Input<'_>) -> Result<(), Fail> {
    match &node.kind {
        Kind::Null => {}
        Kind::Primitive {
            read: Prim::String,
            value: Conv::Logical(_),
        } => {
            input.str()?;
        }
        Kind::Primitive {
            read: Prim::Bytes,
            value: Conv::Logical(_),
        } => {
            input.bytes()?;
        }
        Kind::Primitive {
            read: Prim::Int,
            value: Conv::Logical(_),
        } => {
            input.int()?;
        }
        Kind::Primitive {
            read: Prim::Long,
            value: Conv::Logical(_),
        } => {
            input.long()?;
        }
        Kind::Optional { inner, null_branch } => {
            if input.branch(2)? as i64 != *null_branch {
                skip(inner, input)?;
            }
        }
        Kind::Record(fields) | Kind::Object(fields) => {
            for (name, field) in fields {
                skip(field, input).map_err(|f| f.field(name))?;
            }
        }
        _ => {
            read_datum(node, input)?;
        }
    }
    Ok(())
}

fn primitive(read: Prim, value: Conv, input: &mut Input<'_>) -> Result<Datum, Fail> {
    let logical = match value {
        Conv::Logical(l) => l,
        _ => Logical::Plain,
    };
    Ok(match read {
        Prim::Boolean => match input.take(1)?[0] {
            0 => Datum::Bool(false),
            1 => Datum::Bool(true),
            b => return Err(Fail::Invalid(format!("a boolean byte of {b}"))),
        },
        Prim::Int => logical
            .from_int(i64::from(input.int()?))
            .map_err(Fail::Value)?,
        Prim::Long => logical.from_int(input.long()?).map_err(Fail::Value)?,
        Prim::Float => {
            let b = input.take(4)?;
            Datum::Float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        Prim::Double => {
            let mut b = [0u8; 8];
            b.copy_from_slice(input.take(8)?);
            Datum::Float(f64::from_le_bytes(b))
        }
        Prim::String => {
            let s = input.str()?;
            match value {
                Conv::Uuid => uuid::Uuid::parse_str(s)
                    .map(|u| Datum::Text(u.to_string()))
                    .map_err(|e| Fail::Invalid(format!("`{s}` is not a UUID: {e}")))?,
                _ if logical == Logical::Plain => Datum::Text(s.to_owned()),
                _ => logical.from_text(s).map_err(Fail::Value)?,
            }
        }
        Prim::Bytes | Prim::Fixed(_) => {
            let b = match read {
                Prim::Fixed(n) => input.take(n)?,
                _ => input.bytes()?,
            };
            match value {
                Conv::Uuid => uuid::Uuid::from_slice(b)
                    .map(|u| Datum::Text(u.to_string()))
                    .map_err(|e| Fail::Invalid(format!("{} bytes are not a UUID: {e}", b.len())))?,
                Conv::BigDecimal => big_decimal(b).map_err(Fail::Invalid)?,
                Conv::Duration => {
                    return Err(Fail::Value(
                        "Avro `duration` values are not supported".into(),
                    ))
                }
                Conv::Logical(l) => l.from_bytes(b).map_err(Fail::Value)?,
            }
        }
    })
}

/// Avro's `big-decimal`: the unscaled value's bytes (big-endian two's complement, length
/// first) and then the scale, as exact decimal text.
fn big_decimal(bytes: &[u8]) -> Result<Datum, String> {
    let mut input = Input { rest: bytes };
    let unscaled = input.bytes().map_err(|_| "a big-decimal cut short")?;
    let scale = input
        .long()
        .map_err(|_| "a big-decimal without its scale")?;
    let digits = big_endian_decimal_text(unscaled);
    match u8::try_from(scale) {
        Ok(scale) => Ok(Datum::Text(Datum::decimal_digits_text(&digits, scale))),
        Err(_) if (-1000..0).contains(&scale) && digits != "0" => Ok(Datum::Text(format!(
            "{digits}{}",
            "0".repeat(scale.unsigned_abs() as usize)
        ))),
        Err(_) if (-1000..0).contains(&scale) => Ok(Datum::Text(digits)),
        Err(_) => Err(format!("a big-decimal scale of {scale}")),
    }
}

#[cfg(test)]
mod tests;
