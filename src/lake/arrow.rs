//! Buffered rows → one Arrow record batch per table, so the appender takes whole columns.
//! Each column gets the Arrow type of its column type (nested ones included), so DuckDB only
//! casts what it parses better than we would: text to UUID, JSON, TIMESTAMPTZ and TIMETZ.

use std::sync::Arc;

use duckdb::arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanArray, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    ListArray, MapArray, StringBuilder, StructArray, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use duckdb::arrow::buffer::{NullBuffer, OffsetBuffer};
use duckdb::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use duckdb::arrow::record_batch::RecordBatch;

use crate::batch::TableBatch;
use crate::decode::{ColumnType, Datum, Name};

/// A value the column's type cannot hold (the batch's type checks should make this
/// impossible; reported rather than dropped).
#[derive(Debug, thiserror::Error)]
#[error("column `{column}`: {message}")]
pub struct Mismatch {
    column: String,
    message: String,
}

/// The rows of `data` as Arrow columns; `flag` adds a boolean column after them.
pub fn record_batch(
    data: &TableBatch,
    flag: Option<(&str, &[bool])>,
) -> Result<RecordBatch, Mismatch> {
    let n = data.rows.len();
    let mut fields = Vec::with_capacity(data.columns.len() + 1);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(data.columns.len() + 1);
    for (col, (name, ty)) in data.columns.iter().enumerate() {
        let values: Vec<&Datum> = (0..n).map(|row| data.value(row, col)).collect();
        let array = array(ty, &values).map_err(|message| Mismatch {
            column: name.clone(),
            message,
        })?;
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    if let Some((name, flags)) = flag {
        fields.push(Field::new(name, DataType::Boolean, false));
        arrays.push(Arc::new(BooleanArray::from(flags.to_vec())));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| Mismatch {
        column: String::new(),
        message: e.to_string(),
    })
}

/// The Arrow type a column type is built as.
fn arrow_type(ty: &ColumnType) -> DataType {
    match ty {
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::TinyInt => DataType::Int8,
        ColumnType::SmallInt => DataType::Int16,
        ColumnType::Integer => DataType::Int32,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
        ColumnType::Varchar
        | ColumnType::Json
        | ColumnType::Uuid
        | ColumnType::TimestampTz
        | ColumnType::TimeTz => DataType::Utf8,
        ColumnType::Blob => DataType::Binary,
        ColumnType::Date => DataType::Date32,
        ColumnType::Time => DataType::Time64(TimeUnit::Microsecond),
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::List(item) => {
            DataType::List(Arc::new(Field::new("item", arrow_type(item), true)))
        }
        ColumnType::Struct(fields) => DataType::Struct(struct_fields(fields)),
        ColumnType::Map(k, v) => DataType::Map(map_entries_field(k, v), false),
    }
}

fn struct_fields(fields: &[(Name, ColumnType)]) -> Fields {
    fields
        .iter()
        .map(|(name, ty)| Field::new(name.as_str(), arrow_type(ty), true))
        .collect()
}

fn map_entries_field(k: &ColumnType, v: &ColumnType) -> Arc<Field> {
    Arc::new(Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", arrow_type(k), false),
            Field::new("value", arrow_type(v), true),
        ])),
        false,
    ))
}

fn wrong(ty: &ColumnType, value: &Datum) -> String {
    format!("{ty} cannot hold {value:?}")
}

/// Rescales a decimal to `scale`, refusing to drop digits or exceed `precision`.
fn rescale(v: i128, from: u8, precision: u8, scale: u8) -> Option<i128> {
    let v = if from <= scale {
        v.checked_mul(10i128.checked_pow(u32::from(scale - from))?)?
    } else {
        let div = 10i128.checked_pow(u32::from(from - scale))?;
        if v % div != 0 {
            return None;
        }
        v / div
    };
    (v.unsigned_abs() < 10u128.pow(u32::from(precision))).then_some(v)
}

macro_rules! primitive {
    ($builder:ty, $ty:expr, $values:expr, |$v:ident| $convert:expr) => {{
        let mut b = <$builder>::with_capacity($values.len());
        for value in $values {
            match value {
                Datum::Null => b.append_null(),
                $v => b.append_value($convert.ok_or_else(|| wrong($ty, $v))?),
            }
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}

/// One column of values of type `ty`.
fn array(ty: &ColumnType, values: &[&Datum]) -> Result<ArrayRef, String> {
    let int = |v: &Datum| match v {
        Datum::Int(i) => Some(*i),
        _ => None,
    };
    Ok(match ty {
        ColumnType::Boolean => primitive!(BooleanBuilder, ty, values, |v| match v {
            Datum::Bool(b) => Some(*b),
            _ => None,
        }),
        ColumnType::TinyInt => primitive!(Int8Builder, ty, values, |v| int(v)
            .and_then(|i| i8::try_from(i).ok())),
        ColumnType::SmallInt => primitive!(Int16Builder, ty, values, |v| int(v)
            .and_then(|i| i16::try_from(i).ok())),
        ColumnType::Integer => primitive!(Int32Builder, ty, values, |v| int(v)
            .and_then(|i| i32::try_from(i).ok())),
        ColumnType::BigInt => primitive!(Int64Builder, ty, values, |v| int(v)),
        ColumnType::Float => primitive!(Float32Builder, ty, values, |v| match v {
            Datum::Float(f) => Some(*f as f32),
            Datum::Int(i) => Some(*i as f32),
            _ => None,
        }),
        ColumnType::Double => primitive!(Float64Builder, ty, values, |v| match v {
            Datum::Float(f) => Some(*f),
            Datum::Int(i) => Some(*i as f64),
            _ => None,
        }),
        ColumnType::Decimal { precision, scale } => {
            let (p, s) = (*precision, *scale);
            let mut b = Decimal128Builder::with_capacity(values.len())
                .with_precision_and_scale(p, s as i8)
                .map_err(|e| e.to_string())?;
            for value in values {
                let v = match value {
                    Datum::Null => {
                        b.append_null();
                        continue;
                    }
                    Datum::Decimal(v, from) => rescale(*v, *from, p, s),
                    Datum::Int(i) => rescale(i128::from(*i), 0, p, s),
                    Datum::Text(t) => Datum::parse_decimal(t, s).and_then(|v| rescale(v, s, p, s)),
                    _ => None,
                };
                b.append_value(v.ok_or_else(|| wrong(ty, value))?);
            }
            Arc::new(b.finish())
        }
        ColumnType::Varchar
        | ColumnType::Json
        | ColumnType::Uuid
        | ColumnType::TimestampTz
        | ColumnType::TimeTz => {
            let mut b = StringBuilder::with_capacity(values.len(), values.len() * 16);
            for value in values {
                match value {
                    Datum::Null => b.append_null(),
                    Datum::Text(t) => b.append_value(t),
                    Datum::Decimal(v, s) => b.append_value(Datum::decimal_text(*v, *s)),
                    Datum::Int(i) => b.append_value(i.to_string()),
                    Datum::Float(f) => b.append_value(f.to_string()),
                    Datum::Bool(x) => b.append_value(x.to_string()),
                    other => return Err(wrong(ty, other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Blob => {
            let mut b = BinaryBuilder::with_capacity(values.len(), values.len() * 16);
            for value in values {
                match value {
                    Datum::Null => b.append_null(),
                    Datum::Bytes(x) => b.append_value(x),
                    other => return Err(wrong(ty, other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Date => primitive!(Date32Builder, ty, values, |v| match v {
            Datum::Date(d) => Some(*d),
            _ => None,
        }),
        ColumnType::Time => primitive!(Time64MicrosecondBuilder, ty, values, |v| match v {
            Datum::Time(t) => Some(*t),
            _ => None,
        }),
        ColumnType::Timestamp => primitive!(TimestampMicrosecondBuilder, ty, values, |v| match v {
            Datum::Timestamp(t) => Some(*t),
            _ => None,
        }),
        ColumnType::List(item) => {
            let mut offsets = Vec::with_capacity(values.len() + 1);
            offsets.push(0i32);
            let mut children: Vec<&Datum> = Vec::new();
            let mut valid = Vec::with_capacity(values.len());
            for value in values {
                match value {
                    Datum::Null => valid.push(false),
                    Datum::List(items) => {
                        children.extend(items.iter());
                        valid.push(true);
                    }
                    other => return Err(wrong(ty, other)),
                }
                offsets
                    .push(i32::try_from(children.len()).map_err(|_| "list too long".to_owned())?);
            }
            let child = array(item, &children)?;
            let field = Arc::new(Field::new("item", child.data_type().clone(), true));
            Arc::new(
                ListArray::try_new(
                    field,
                    OffsetBuffer::new(offsets.into()),
                    child,
                    nulls(&valid),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        ColumnType::Struct(fields) => {
            let mut valid = Vec::with_capacity(values.len());
            let mut columns: Vec<Vec<&Datum>> =
                vec![Vec::with_capacity(values.len()); fields.len()];
            for value in values {
                match value {
                    Datum::Null => {
                        valid.push(false);
                        for c in &mut columns {
                            c.push(&Datum::Null);
                        }
                    }
                    Datum::Struct(vals) => {
                        valid.push(true);
                        for (i, c) in columns.iter_mut().enumerate() {
                            c.push(vals.get(i).unwrap_or(&Datum::Null));
                        }
                    }
                    other => return Err(wrong(ty, other)),
                }
            }
            let arrays = fields
                .iter()
                .zip(&columns)
                .map(|((name, fty), vals)| {
                    array(fty, vals).map_err(|m| format!("field `{name}`: {m}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(
                StructArray::try_new_with_length(
                    struct_fields(fields),
                    arrays,
                    nulls(&valid),
                    values.len(),
                )
                .map_err(|e| e.to_string())?,
            )
        }
        ColumnType::Map(k, v) => {
            let mut offsets = Vec::with_capacity(values.len() + 1);
            offsets.push(0i32);
            let (mut keys, mut vals): (Vec<&Datum>, Vec<&Datum>) = (Vec::new(), Vec::new());
            let mut valid = Vec::with_capacity(values.len());
            for value in values {
                match value {
                    Datum::Null => valid.push(false),
                    Datum::Map(entries) => {
                        for (key, val) in entries {
                            if matches!(key, Datum::Null) {
                                return Err("a map key is null".into());
                            }
                            keys.push(key);
                            vals.push(val);
                        }
                        valid.push(true);
                    }
                    other => return Err(wrong(ty, other)),
                }
                offsets.push(i32::try_from(keys.len()).map_err(|_| "map too long".to_owned())?);
            }
            let entries_field = map_entries_field(k, v);
            let DataType::Struct(entry_fields) = entries_field.data_type().clone() else {
                return Err("map entries are not a struct".into());
            };
            let entries = StructArray::try_new_with_length(
                entry_fields,
                vec![array(k, &keys)?, array(v, &vals)?],
                None,
                keys.len(),
            )
            .map_err(|e| e.to_string())?;
            Arc::new(
                MapArray::try_new(
                    entries_field,
                    OffsetBuffer::new(offsets.into()),
                    entries,
                    nulls(&valid),
                    false,
                )
                .map_err(|e| e.to_string())?,
            )
        }
    })
}

fn nulls(valid: &[bool]) -> Option<NullBuffer> {
    valid
        .iter()
        .any(|v| !v)
        .then(|| NullBuffer::from(valid.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_rescale_without_losing_digits() {
        assert_eq!(rescale(15, 1, 10, 2), Some(150));
        assert_eq!(rescale(150, 2, 10, 1), Some(15));
        assert_eq!(rescale(155, 2, 10, 1), None);
        assert_eq!(rescale(1000, 0, 3, 0), None);
    }

    #[test]
    fn nested_columns_build_with_their_types() {
        let list = ColumnType::List(Box::new(ColumnType::Integer));
        let a = array(
            &list,
            &[
                &Datum::List(vec![Datum::Int(1), Datum::Null]),
                &Datum::Null,
                &Datum::List(vec![]),
            ],
        )
        .unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.data_type(), &arrow_type(&list));
        assert!(a.is_null(1));
        let st = ColumnType::Struct(
            vec![
                ("a".into(), ColumnType::Varchar),
                ("b".into(), list.clone()),
            ]
            .into(),
        );
        let a = array(
            &st,
            &[
                &Datum::Struct(vec![
                    Datum::Text("x".into()),
                    Datum::List(vec![Datum::Int(3)]),
                ]),
                &Datum::Null,
            ],
        )
        .unwrap();
        assert_eq!(a.data_type(), &arrow_type(&st));
        let map = ColumnType::Map(Box::new(ColumnType::Varchar), Box::new(ColumnType::BigInt));
        let a = array(
            &map,
            &[
                &Datum::Map(vec![(Datum::Text("k".into()), Datum::Int(1))]),
                &Datum::Null,
            ],
        )
        .unwrap();
        assert_eq!(a.data_type(), &arrow_type(&map));
        assert!(array(&ColumnType::Integer, &[&Datum::Int(1 << 40)]).is_err());
        assert!(array(&list, &[&Datum::Int(1)]).is_err());
    }
}
