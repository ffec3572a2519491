//! Bytes → records. The converters named as Kafka Connect names them turn a record's key and
//! value into [`Data`]; [`RecordDecoder`] then says what the record does — append, upsert,
//! delete, truncate, or nothing — with its key, its row and its source position, unwrapping
//! Debezium envelopes on the way. Nothing here knows about rdkafka or DuckDB.

pub mod avro;
mod debezium;
mod json;
mod logical;
pub mod registry;
mod types;

pub use debezium::{EnvelopeMode, Op, SourceInfo};
pub use json::JsonDecoder;
pub use logical::{Base, Logical};
pub use types::{ColumnType, Datum};

use std::sync::Arc;

use crate::config::{Converter, InsertMode, PkMode};
use debezium::Shape;

/// Named, typed cells in field order. A cell whose type is `None` is a null whose type
/// nothing told us (schemaless JSON `null`); it adds no column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub name: Name,
    pub ty: Option<ColumnType>,
    pub value: Datum,
}

/// A field name, shared: a decoder hands out the same name for the same field of every record
/// (from the schema, or as the record before had it), so a name per cell costs a reference
/// count rather than an allocation, and the batch finds the column of a name it saw before by
/// pointer.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The very same name (one allocation), which is cheaper to ask than equality.
    pub fn same(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Row {
    pub fn get(&self, name: &str) -> Option<&Cell> {
        self.cells.iter().find(|c| c.name == name)
    }
}

/// Why a record could not be decoded. The caller adds topic/partition/offset.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("value is not valid JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    Shape(String),
    #[error("field `{field}`: {message}")]
    Field { field: String, message: String },
    #[error("key: {0}")]
    Key(Box<DecodeError>),
}

/// What one converter made of a key or value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// A null (tombstone), or a JSON envelope whose payload is null.
    Null,
    /// A struct / JSON object.
    Row(Row),
    /// Anything else: a string, a number, bytes (the cell has no name).
    Scalar(Cell),
}

/// One key or value converter with its state (schemas seen).
#[derive(Debug)]
pub enum ConverterDecoder {
    String,
    ByteArray,
    Json(JsonDecoder),
    Avro(avro::AvroDecoder),
}

impl ConverterDecoder {
    pub fn new(converter: Converter) -> Self {
        match converter {
            Converter::String => Self::String,
            Converter::ByteArray => Self::ByteArray,
            Converter::Json { schemas_enable } => Self::Json(JsonDecoder::new(schemas_enable)),
            Converter::Avro => Self::Avro(avro::AvroDecoder::default()),
        }
    }

    pub fn decode(&mut self, bytes: Option<&[u8]>) -> Result<Data, DecodeError> {
        let Some(bytes) = bytes else {
            return Ok(Data::Null);
        };
        let scalar = |ty, value| {
            Ok(Data::Scalar(Cell {
                name: Name::default(),
                ty: Some(ty),
                value,
            }))
        };
        match self {
            Self::Json(d) => d.decode(bytes),
            Self::Avro(d) => d.decode(bytes),
            Self::String => match std::str::from_utf8(bytes) {
                Ok(text) => scalar(ColumnType::Varchar, Datum::Text(text.to_owned())),
                Err(e) => Err(DecodeError::Shape(format!("not UTF-8: {e}"))),
            },
            Self::ByteArray => scalar(ColumnType::Blob, Datum::Bytes(bytes.to_vec())),
        }
    }
}

/// Key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Key,
    Value,
}

/// How records become changes: the connector's converters and apply settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeSettings {
    pub key_converter: Converter,
    pub value_converter: Converter,
    pub envelope: EnvelopeMode,
    pub insert_mode: InsertMode,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub delete_enabled: bool,
    pub truncate_enabled: bool,
}

/// Why a record writes nothing (it is still committed: its offset moves on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A null value that deletes nothing (after its delete, or deletes disabled).
    Tombstone,
    /// A delete with `delete.enabled=false`, or in append mode.
    Delete,
    /// A truncate with `truncate.enabled=false`.
    Truncate,
    /// Heartbeat, transaction metadata, schema change, logical decoding message.
    Control(&'static str),
}

impl Skip {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tombstone => "tombstone",
            Self::Delete => "delete disabled",
            Self::Truncate => "truncate disabled",
            Self::Control(what) => what,
        }
    }
}

/// What a record does to its table.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `insert.mode=append`: add the row.
    Append(Row),
    /// Insert or replace the row with this key; `old_key`: the change moved the row from
    /// another key, which is deleted.
    Upsert {
        key: Row,
        row: Row,
        old_key: Option<Row>,
    },
    Delete {
        key: Row,
    },
    /// Remove every row of the table.
    Truncate,
    Skip(Skip),
}

/// A decoded record: its change and, for Debezium events, where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub change: Change,
    pub source: Option<SourceInfo>,
}

/// Turns a record's key and value bytes into a [`Record`].
#[derive(Debug)]
pub struct RecordDecoder {
    settings: DecodeSettings,
    key: ConverterDecoder,
    value: ConverterDecoder,
}

impl RecordDecoder {
    pub fn new(settings: DecodeSettings) -> Self {
        Self {
            key: ConverterDecoder::new(settings.key_converter),
            value: match ConverterDecoder::new(settings.value_converter) {
                ConverterDecoder::Json(json) if settings.envelope != EnvelopeMode::None => {
                    ConverterDecoder::Json(json.reading_envelopes())
                }
                ConverterDecoder::Avro(avro) if settings.envelope != EnvelopeMode::None => {
                    ConverterDecoder::Avro(avro.reading_envelopes())
                }
                other => other,
            },
            settings,
        }
    }

    /// An Avro schema id the record needs that the decoder does not have yet (fetch it from
    /// the registry and [`add_schema`](Self::add_schema) it before decoding).
    pub fn missing_schema(&self, key: Option<&[u8]>, value: Option<&[u8]>) -> Option<(Side, u32)> {
        [
            (Side::Key, &self.key, key),
            (Side::Value, &self.value, value),
        ]
        .into_iter()
        .find_map(|(side, converter, bytes)| match (converter, bytes) {
            (ConverterDecoder::Avro(d), Some(b)) => avro::schema_id(b)
                .ok()
                .filter(|id| !d.knows(*id))
                .map(|id| (side, id)),
            _ => None,
        })
    }

    pub fn add_schema(&mut self, side: Side, id: u32, schema: std::sync::Arc<avro::AvroSchema>) {
        let converter = match side {
            Side::Key => &mut self.key,
            Side::Value => &mut self.value,
        };
        if let ConverterDecoder::Avro(d) = converter {
            d.add(id, schema);
        }
    }

    pub fn decode(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<Record, DecodeError> {
        let upsert = self.settings.insert_mode == InsertMode::Upsert;
        let row = match self.value.decode(value)? {
            Data::Null => {
                let change = if upsert
                    && self.settings.delete_enabled
                    && self.settings.pk_mode == PkMode::RecordKey
                {
                    Change::Delete {
                        key: self.record_key(key)?,
                    }
                } else {
                    Change::Skip(Skip::Tombstone)
                };
                return Ok(Record {
                    change,
                    source: None,
                });
            }
            Data::Row(row) => row,
            Data::Scalar(cell) => match self.value {
                ConverterDecoder::Json(_) | ConverterDecoder::Avro(_) => {
                    return Err(DecodeError::Shape(format!(
                        "expected a JSON object (a row), got {}",
                        scalar_kind(&cell)
                    )))
                }
                _ => Row {
                    cells: vec![Cell {
                        name: Name::from("value"),
                        ..cell
                    }],
                },
            },
        };
        match debezium::classify(row, self.settings.envelope, topic)? {
            Shape::Plain(row) => self.row_change(key, prepare(row), None, None),
            Shape::Control(what) => Ok(Record {
                change: Change::Skip(Skip::Control(what)),
                source: None,
            }),
            Shape::Flattened {
                row,
                deleted,
                source,
            } => {
                let row = prepare(row);
                if deleted {
                    self.delete(key, Some(row), source)
                } else {
                    self.row_change(key, row, None, source)
                }
            }
            Shape::Change {
                op,
                before,
                after,
                source,
            } => match op {
                Op::Create | Op::Read | Op::Update => {
                    let after = after.ok_or_else(|| {
                        DecodeError::Shape(format!(
                            "Debezium `{}` event without `after`",
                            op_letter(op)
                        ))
                    })?;
                    self.row_change(key, prepare(after), before.map(prepare), source)
                }
                Op::Delete => self.delete(key, before.map(prepare), source),
                Op::Truncate => Ok(Record {
                    change: if self.settings.truncate_enabled {
                        Change::Truncate
                    } else {
                        Change::Skip(Skip::Truncate)
                    },
                    source,
                }),
            },
        }
    }

    /// An insert or update: appended, or upserted by key (and, when the key changed, the
    /// old key deleted).
    fn row_change(
        &mut self,
        key: Option<&[u8]>,
        row: Row,
        before: Option<Row>,
        source: Option<SourceInfo>,
    ) -> Result<Record, DecodeError> {
        if self.settings.insert_mode == InsertMode::Append {
            return Ok(Record {
                change: Change::Append(row),
                source,
            });
        }
        let key = match self.settings.pk_mode {
            PkMode::RecordKey => self.record_key(key)?,
            PkMode::RecordValue => self.value_key(&row)?,
        };
        let old_key = before
            .and_then(|b| pick(&b, key.cells.iter().map(|c| c.name.as_str())))
            .filter(|old| !same_key(old, &key));
        let row = with_key_columns(row, &key);
        Ok(Record {
            change: Change::Upsert { key, row, old_key },
            source,
        })
    }

    fn delete(
        &mut self,
        key: Option<&[u8]>,
        before: Option<Row>,
        source: Option<SourceInfo>,
    ) -> Result<Record, DecodeError> {
        if self.settings.insert_mode == InsertMode::Append || !self.settings.delete_enabled {
            return Ok(Record {
                change: Change::Skip(Skip::Delete),
                source,
            });
        }
        // Only the key of `before` is trusted: under PostgreSQL's default REPLICA IDENTITY
        // the other fields are NULL or their schema default.
        let key = match self.settings.pk_mode {
            PkMode::RecordKey => self.record_key(key)?,
            PkMode::RecordValue => match &before {
                Some(b) => self.value_key(b)?,
                None => {
                    return Err(DecodeError::Shape(
                        "a delete without `before`: no key to delete by (pk.mode=record_value)"
                            .into(),
                    ))
                }
            },
        };
        Ok(Record {
            change: Change::Delete { key },
            source,
        })
    }

    /// The primary key from the record key (`pk.mode=record_key`), restricted to `pk.fields`.
    fn record_key(&mut self, key: Option<&[u8]>) -> Result<Row, DecodeError> {
        let fields = &self.settings.pk_fields;
        let row = match self.key.decode(key).map_err(|e| DecodeError::Key(Box::new(e)))? {
            Data::Null => {
                return Err(DecodeError::Shape(
                    "the record has no key, but pk.mode=record_key takes the primary key from it"
                        .into(),
                ))
            }
            Data::Scalar(cell) => match fields.as_slice() {
                [name] => Row {
                    cells: vec![Cell {
                        name: Name::from(name.as_str()),
                        ..cell
                    }],
                },
                _ => {
                    return Err(DecodeError::Shape(format!(
                        "the record key is {}, not a struct: set pk.fields to the one column name it goes into",
                        scalar_kind(&cell)
                    )))
                }
            },
            Data::Row(row) if fields.is_empty() => prepare(row),
            Data::Row(row) => pick(&prepare(row), fields.iter().map(String::as_str)).ok_or_else(
                || {
                    DecodeError::Shape(format!(
                        "the record key lacks a pk.fields field ({})",
                        fields.join(", ")
                    ))
                },
            )?,
        };
        check_key(&row)?;
        Ok(row)
    }

    /// The primary key from the value (`pk.mode=record_value`): `pk.fields`, or every field.
    fn value_key(&self, row: &Row) -> Result<Row, DecodeError> {
        let fields = &self.settings.pk_fields;
        let key = if fields.is_empty() {
            row.clone()
        } else {
            pick(row, fields.iter().map(String::as_str)).ok_or_else(|| {
                DecodeError::Shape(format!(
                    "the value lacks a pk.fields field ({})",
                    fields.join(", ")
                ))
            })?
        };
        check_key(&key)?;
        Ok(key)
    }
}

fn op_letter(op: Op) -> &'static str {
    match op {
        Op::Create => "c",
        Op::Read => "r",
        Op::Update => "u",
        Op::Delete => "d",
        Op::Truncate => "t",
    }
}

fn scalar_kind(cell: &Cell) -> &'static str {
    match cell.value {
        Datum::Null => "null",
        Datum::Bool(_) => "a boolean",
        Datum::Int(_) | Datum::Float(_) | Datum::Decimal(..) => "a number",
        Datum::Text(_) if cell.ty == Some(ColumnType::Json) => "an array",
        Datum::Text(_) => "a string",
        Datum::Bytes(_) => "bytes",
        _ => "a nested value",
    }
}

/// Schemaless nested objects are stored as JSON text (without a schema a struct type is a
/// guess that the next record breaks).
fn prepare(mut row: Row) -> Row {
    for cell in &mut row.cells {
        if let Datum::Object(inner) = &cell.value {
            cell.value = Datum::Text(json::object_json(inner));
            cell.ty = Some(ColumnType::Json);
        }
    }
    row
}

/// The cells of `row` named `names`, in that order; `None` when one is missing.
fn pick<'a>(row: &Row, names: impl Iterator<Item = &'a str>) -> Option<Row> {
    let cells = names
        .map(|n| row.get(n).cloned())
        .collect::<Option<Vec<_>>>()?;
    Some(Row { cells })
}

fn check_key(key: &Row) -> Result<(), DecodeError> {
    if key.cells.is_empty() {
        return Err(DecodeError::Shape("the primary key has no fields".into()));
    }
    for cell in &key.cells {
        cell.value
            .encode_key(&mut Vec::new())
            .map_err(|e| DecodeError::Field {
                field: cell.name.to_string(),
                message: format!("primary key field: {e}"),
            })?;
    }
    Ok(())
}

fn same_key(a: &Row, b: &Row) -> bool {
    let enc = |r: &Row| {
        let mut out = Vec::new();
        r.cells
            .iter()
            .try_for_each(|c| c.value.encode_key(&mut out))
            .map(|()| out)
    };
    matches!((enc(a), enc(b)), (Ok(x), Ok(y)) if x == y)
}

/// Key fields missing from the value become columns too (as the JDBC sink does).
fn with_key_columns(mut row: Row, key: &Row) -> Row {
    for k in &key.cells {
        if row.get(&k.name).is_none() {
            row.cells.push(k.clone());
        }
    }
    row
}

#[cfg(test)]
mod tests;
