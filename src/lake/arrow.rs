//! Buffered rows → one Arrow record batch per table, so the appender takes whole columns
//! (DuckDB casts each column to the table's type: text to DECIMAL, UUID, JSON, TIMESTAMPTZ).

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use duckdb::arrow::datatypes::{Field, Schema};
use duckdb::arrow::record_batch::RecordBatch;

use crate::batch::TableBatch;
use crate::decode::{ColumnType, Datum};

/// A value the column's builder cannot hold (the batch's type inference should make this
/// impossible; reported rather than dropped).
#[derive(Debug, thiserror::Error)]
#[error("column `{column}` ({ty}): cannot hold {value:?}")]
pub struct Mismatch {
    column: String,
    ty: ColumnType,
    value: Datum,
}

pub fn record_batch(data: &TableBatch) -> Result<RecordBatch, Mismatch> {
    let n = data.rows.len();
    let mut fields = Vec::with_capacity(data.columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(data.columns.len());
    for (col, (name, ty)) in data.columns.iter().enumerate() {
        let values = (0..n).map(|row| data.value(row, col));
        let mismatch = |value: &Datum| Mismatch {
            column: name.clone(),
            ty: *ty,
            value: value.clone(),
        };
        let array: ArrayRef = match ty {
            ColumnType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Bool(x) => b.append_value(*x),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::TinyInt
            | ColumnType::SmallInt
            | ColumnType::Integer
            | ColumnType::BigInt => {
                let mut b = Int64Builder::with_capacity(n);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Int(x) => b.append_value(*x),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Float | ColumnType::Double => {
                let mut b = Float64Builder::with_capacity(n);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Float(x) => b.append_value(*x),
                        Datum::Int(x) => b.append_value(*x as f64),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Blob => {
                let mut b = BinaryBuilder::with_capacity(n, n * 16);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Bytes(x) => b.append_value(x),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Date => {
                let mut b = Date32Builder::with_capacity(n);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Date(x) => b.append_value(*x),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Time => {
                let mut b = Time64MicrosecondBuilder::with_capacity(n);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Time(x) => b.append_value(*x),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Timestamp => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Timestamp(x) => b.append_value(*x),
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Varchar
            | ColumnType::Json
            | ColumnType::Uuid
            | ColumnType::TimestampTz
            | ColumnType::Decimal { .. } => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for v in values {
                    match v {
                        Datum::Null => b.append_null(),
                        Datum::Text(x) => b.append_value(x),
                        Datum::Decimal(unscaled, scale) => {
                            b.append_value(Datum::decimal_text(*unscaled, *scale))
                        }
                        other => return Err(mismatch(other)),
                    }
                }
                Arc::new(b.finish())
            }
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| Mismatch {
        column: String::new(),
        ty: ColumnType::Varchar,
        value: Datum::Text(e.to_string()),
    })
}
