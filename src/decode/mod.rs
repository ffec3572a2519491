//! Bytes → rows. The converters named as Kafka Connect names them turn a record's value into
//! a [`Row`]: named, typed cells. Nothing here knows about rdkafka or DuckDB.

mod json;
mod types;

pub use json::{decode_json, JsonMode};
pub use types::{ColumnType, Datum};

use crate::config::Converter;

/// One decoded record value: cells in field order. A cell whose type is `None` is a null
/// whose type nothing told us (schemaless JSON `null`); it adds no column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub name: String,
    pub ty: Option<ColumnType>,
    pub value: Datum,
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
}

/// What a decoded value turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Row(Row),
    /// A null value (tombstone) or a JSON envelope whose payload is null.
    Tombstone,
}

/// Decodes a record value with the connector's value converter.
pub fn decode_value(converter: Converter, payload: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let Some(bytes) = payload else {
        return Ok(Decoded::Tombstone);
    };
    match converter {
        Converter::Json { schemas_enable } => {
            let mode = if schemas_enable {
                JsonMode::Envelope
            } else {
                JsonMode::Schemaless
            };
            decode_json(bytes, mode)
        }
        Converter::String => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| DecodeError::Shape(format!("value is not UTF-8: {e}")))?;
            Ok(Decoded::Row(Row {
                cells: vec![Cell {
                    name: "value".to_owned(),
                    ty: Some(ColumnType::Varchar),
                    value: Datum::Text(text.to_owned()),
                }],
            }))
        }
        Converter::ByteArray => Ok(Decoded::Row(Row {
            cells: vec![Cell {
                name: "value".to_owned(),
                ty: Some(ColumnType::Blob),
                value: Datum::Bytes(bytes.to_vec()),
            }],
        })),
    }
}
