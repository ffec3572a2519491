//! The type table, in one place: Kafka Connect base types and the logical types of Connect,
//! Debezium (and, through `connect.name`, Avro) → DuckDB column types, and how their values
//! become [`Datum`]s. The JSON converter uses it now; the Avro converter maps its own
//! logical types onto the same [`Logical`] kinds. The README's type table mirrors this file.

use super::{ColumnType, Datum};

/// Connect's base schema types (`"type"` of a Connect JSON schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl Base {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "int8" => Self::Int8,
            "int16" => Self::Int16,
            "int32" => Self::Int32,
            "int64" => Self::Int64,
            "float" | "float32" => Self::Float32,
            "double" | "float64" => Self::Float64,
            "boolean" => Self::Boolean,
            "string" => Self::String,
            "bytes" => Self::Bytes,
            "array" => Self::Array,
            "map" => Self::Map,
            "struct" => Self::Struct,
            _ => return None,
        })
    }

    /// The column type of the base type itself (nested types are built by the caller).
    pub fn column_type(self) -> ColumnType {
        match self {
            Self::Int8 => ColumnType::TinyInt,
            Self::Int16 => ColumnType::SmallInt,
            Self::Int32 => ColumnType::Integer,
            Self::Int64 => ColumnType::BigInt,
            Self::Float32 => ColumnType::Float,
            Self::Float64 => ColumnType::Double,
            Self::Boolean => ColumnType::Boolean,
            Self::String => ColumnType::Varchar,
            Self::Bytes => ColumnType::Blob,
            // Placeholders: the schema's items/fields make the real type.
            Self::Array | Self::Map | Self::Struct => ColumnType::Json,
        }
    }
}

/// A logical type: a schema `name` that changes what the base value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logical {
    /// No logical type, or one that needs nothing beyond its base type (`Enum`, `Xml`, …).
    Plain,
    /// Connect `Decimal` (bytes: big-endian two's complement) / Avro `decimal`.
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// Debezium `VariableScaleDecimal`: struct of `scale` and `value` bytes.
    VariableScaleDecimal,
    /// Days since the epoch.
    Date,
    TimeMillis,
    TimeMicros,
    TimeNanos,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
    /// ISO-8601 text with an offset (Debezium `ZonedTimestamp`).
    ZonedTimestamp,
    /// ISO-8601 time with an offset (Debezium `ZonedTime`).
    ZonedTime,
    /// Debezium `MicroDuration`: microseconds (a month counted as 30.4375 days).
    MicroDuration,
    Json,
    Uuid,
    /// Debezium geometry structs (`wkb`, `srid`, …): the WKB bytes.
    Geometry,
}

/// Debezium's own logical names that map to their base type unchanged. Listed so the type
/// table is complete and an unknown name can be told from a known plain one.
const PLAIN_NAMES: &[&str] = &[
    "io.debezium.data.Enum",
    "io.debezium.data.EnumSet",
    "io.debezium.data.Xml",
    "io.debezium.data.Ltree",
    "io.debezium.data.Bits",
    "io.debezium.time.Year",
    "io.debezium.time.Interval",
];

impl Logical {
    /// The logical type a schema `name` (with its `parameters`) stands for.
    pub fn from_name<'p>(name: &str, param: impl Fn(&str) -> Option<&'p str>) -> Self {
        match name {
            "org.apache.kafka.connect.data.Decimal" => {
                let num = |k: &str| param(k).and_then(|v| v.trim().parse::<u8>().ok());
                let scale = num("scale").unwrap_or(0);
                let precision = num("connect.decimal.precision").unwrap_or(38).max(scale);
                Self::Decimal { precision, scale }
            }
            "io.debezium.data.VariableScaleDecimal" => Self::VariableScaleDecimal,
            "org.apache.kafka.connect.data.Date" | "io.debezium.time.Date" => Self::Date,
            "org.apache.kafka.connect.data.Time" | "io.debezium.time.Time" => Self::TimeMillis,
            "io.debezium.time.MicroTime" => Self::TimeMicros,
            "io.debezium.time.NanoTime" => Self::TimeNanos,
            "org.apache.kafka.connect.data.Timestamp" | "io.debezium.time.Timestamp" => {
                Self::TimestampMillis
            }
            "io.debezium.time.MicroTimestamp" => Self::TimestampMicros,
            "io.debezium.time.NanoTimestamp" => Self::TimestampNanos,
            "io.debezium.time.ZonedTimestamp" => Self::ZonedTimestamp,
            "io.debezium.time.ZonedTime" => Self::ZonedTime,
            "io.debezium.time.MicroDuration" => Self::MicroDuration,
            "io.debezium.data.Json" => Self::Json,
            "io.debezium.data.Uuid" => Self::Uuid,
            "io.debezium.data.geometry.Geometry"
            | "io.debezium.data.geometry.Geography"
            | "io.debezium.data.geometry.Point" => Self::Geometry,
            _ => Self::Plain,
        }
    }

    /// Whether `name` is one this table knows (for documentation and tests).
    pub fn is_known(name: &str) -> bool {
        PLAIN_NAMES.contains(&name) || Self::from_name(name, |_| None) != Self::Plain
    }

    /// The column a value of this logical type over `base` goes into; `None` keeps the base
    /// type's own column.
    pub fn column_type(self) -> Option<ColumnType> {
        Some(match self {
            Self::Plain => return None,
            Self::Decimal { precision, scale } if precision <= 38 => {
                ColumnType::Decimal { precision, scale }
            }
            // Past DuckDB's 38 digits, and with a scale that changes per value: exact text.
            Self::Decimal { .. } | Self::VariableScaleDecimal => ColumnType::Varchar,
            Self::Date => ColumnType::Date,
            Self::TimeMillis | Self::TimeMicros | Self::TimeNanos => ColumnType::Time,
            Self::TimestampMillis | Self::TimestampMicros | Self::TimestampNanos => {
                ColumnType::Timestamp
            }
            Self::ZonedTimestamp => ColumnType::TimestampTz,
            Self::ZonedTime => ColumnType::TimeTz,
            // Not INTERVAL: Parquet's INTERVAL holds neither negative durations nor
            // microseconds, so DuckLake would refuse or truncate them. Exact microseconds.
            Self::MicroDuration => ColumnType::BigInt,
            Self::Json => ColumnType::Json,
            Self::Uuid => ColumnType::Uuid,
            Self::Geometry => ColumnType::Blob,
        })
    }

    /// An integer value of this logical type.
    pub fn from_int(self, n: i64) -> Result<Datum, String> {
        Ok(match self {
            Self::Date => {
                Datum::Date(i32::try_from(n).map_err(|_| format!("date {n} out of range"))?)
            }
            Self::TimeMillis => Datum::Time(n.saturating_mul(1000)),
            Self::TimeMicros => Datum::Time(n),
            Self::TimeNanos => Datum::Time(n.div_euclid(1000)),
            Self::TimestampMillis => Datum::Timestamp(n.saturating_mul(1000)),
            Self::TimestampMicros => Datum::Timestamp(n),
            Self::TimestampNanos => Datum::Timestamp(n.div_euclid(1000)),
            Self::Decimal { scale, precision } => {
                let v = i128::from(n)
                    .checked_mul(10i128.pow(u32::from(scale)))
                    .ok_or_else(|| format!("{n} does not fit DECIMAL({precision},{scale})"))?;
                decimal_datum(v, precision, scale)
            }
            _ => Datum::Int(n),
        })
    }

    /// A text value of this logical type.
    pub fn from_text(self, s: &str) -> Result<Datum, String> {
        Ok(match self {
            // DuckDB's TIMETZ parser wants `+00`, Debezium writes `Z`.
            Self::ZonedTime => Datum::Text(match s.strip_suffix('Z') {
                Some(t) => format!("{t}+00"),
                None => s.to_owned(),
            }),
            // decimal.format=NUMERIC or string-encoded decimals.
            Self::Decimal { precision, scale } => {
                let v = Datum::parse_decimal(s, scale).ok_or_else(|| {
                    format!("`{s}` is not a decimal with at most {scale} fractional digits")
                })?;
                decimal_datum(v, precision, scale)
            }
            _ => Datum::Text(s.to_owned()),
        })
    }

    /// A bytes value of this logical type (Connect sends bytes as base64 in JSON).
    pub fn from_bytes(self, bytes: &[u8]) -> Result<Datum, String> {
        Ok(match self {
            Self::Decimal { precision, scale } => {
                if bytes.is_empty() {
                    return Err("decimal of 0 bytes".into());
                }
                if precision > 38 || bytes.len() > 16 {
                    Datum::Text(Datum::decimal_digits_text(
                        &big_endian_decimal_text(bytes),
                        scale,
                    ))
                } else {
                    decimal_datum(twos_complement(bytes), precision, scale)
                }
            }
            _ => Datum::Bytes(bytes.to_vec()),
        })
    }
}

/// A decimal value at its column's precision, or text past 38 digits (the column is VARCHAR).
fn decimal_datum(unscaled: i128, precision: u8, scale: u8) -> Datum {
    if precision > 38 {
        Datum::Text(Datum::decimal_text(unscaled, scale))
    } else {
        Datum::Decimal(unscaled, scale)
    }
}

/// Big-endian two's complement of at most 16 bytes → i128.
pub fn twos_complement(bytes: &[u8]) -> i128 {
    let mut buf = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        [0xffu8; 16]
    } else {
        [0u8; 16]
    };
    let n = bytes.len().min(16);
    buf[16 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    i128::from_be_bytes(buf)
}

/// Big-endian two's complement of any length → signed decimal digits (no scale applied).
pub fn big_endian_decimal_text(bytes: &[u8]) -> String {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // Magnitude: for negatives, invert and add one.
    let mut mag: Vec<u8> = if negative {
        let mut m: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        bytes.to_vec()
    };
    let mut digits = Vec::new();
    while mag.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in mag.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    if negative {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// Debezium `VariableScaleDecimal` → exact decimal text.
pub fn variable_scale_decimal(scale: i64, bytes: &[u8]) -> Result<Datum, String> {
    let scale = u8::try_from(scale).map_err(|_| format!("decimal scale {scale} out of range"))?;
    if bytes.is_empty() {
        return Err("decimal of 0 bytes".into());
    }
    Ok(Datum::Text(Datum::decimal_digits_text(
        &big_endian_decimal_text(bytes),
        scale,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_params(_: &str) -> Option<&'static str> {
        None
    }

    #[test]
    fn every_debezium_temporal_type_lands_in_duckdb_units() {
        let l = |n: &str| Logical::from_name(n, no_params);
        assert_eq!(l("io.debezium.time.Date").from_int(-1), Ok(Datum::Date(-1)));
        assert_eq!(
            l("io.debezium.time.Time").from_int(1_500),
            Ok(Datum::Time(1_500_000))
        );
        assert_eq!(
            l("io.debezium.time.MicroTime").from_int(1_500),
            Ok(Datum::Time(1_500))
        );
        assert_eq!(
            l("io.debezium.time.NanoTime").from_int(1_500_999),
            Ok(Datum::Time(1_500))
        );
        assert_eq!(
            l("io.debezium.time.Timestamp").from_int(-1),
            Ok(Datum::Timestamp(-1000))
        );
        // Before the epoch, nanoseconds round down, not toward zero.
        assert_eq!(
            l("io.debezium.time.NanoTimestamp").from_int(-1),
            Ok(Datum::Timestamp(-1))
        );
        assert_eq!(
            l("io.debezium.time.MicroDuration").from_int(3_600_000_000),
            Ok(Datum::Int(3_600_000_000))
        );
        assert_eq!(
            l("io.debezium.time.ZonedTime").from_text("10:15:30.5Z"),
            Ok(Datum::Text("10:15:30.5+00".into()))
        );
        assert_eq!(
            l("io.debezium.time.ZonedTimestamp").column_type(),
            Some(ColumnType::TimestampTz)
        );
        assert_eq!(l("io.debezium.time.Year").column_type(), None);
        assert!(Logical::is_known("io.debezium.time.Year"));
        assert!(!Logical::is_known("com.example.Thing"));
    }

    #[test]
    fn decimals_from_bytes_numbers_and_past_38_digits() {
        let d = Logical::from_name("org.apache.kafka.connect.data.Decimal", |k| match k {
            "scale" => Some("2"),
            "connect.decimal.precision" => Some("10"),
            _ => None,
        });
        assert_eq!(
            d.column_type(),
            Some(ColumnType::Decimal {
                precision: 10,
                scale: 2
            })
        );
        assert_eq!(d.from_bytes(&[0x30, 0x39]), Ok(Datum::Decimal(12345, 2)));
        assert_eq!(d.from_bytes(&[0xff]), Ok(Datum::Decimal(-1, 2)));
        assert_eq!(d.from_text("-12.5"), Ok(Datum::Decimal(-1250, 2)));
        assert!(d.from_text("1.234").is_err());
        let wide = Logical::from_name("org.apache.kafka.connect.data.Decimal", |k| match k {
            "scale" => Some("1"),
            "connect.decimal.precision" => Some("50"),
            _ => None,
        });
        assert_eq!(wide.column_type(), Some(ColumnType::Varchar));
        // -2^127 - 1 needs 17 bytes.
        let mut bytes = vec![0xff];
        bytes.extend([0x7f]);
        bytes.extend([0xff; 15]);
        assert_eq!(
            wide.from_bytes(&bytes),
            Ok(Datum::Text(
                "-17014118346046923173168730371588410572.9".into()
            ))
        );
        assert_eq!(big_endian_decimal_text(&[0x01, 0x00]), "256");
        assert_eq!(big_endian_decimal_text(&[0x80]), "-128");
        assert_eq!(big_endian_decimal_text(&[0x00]), "0");
    }

    #[test]
    fn variable_scale_decimals_are_exact_text() {
        assert_eq!(
            variable_scale_decimal(3, &[0x30, 0x39]),
            Ok(Datum::Text("12.345".into()))
        );
        assert_eq!(
            variable_scale_decimal(0, &[0xff]),
            Ok(Datum::Text("-1".into()))
        );
        assert_eq!(
            variable_scale_decimal(4, &[0x01]),
            Ok(Datum::Text("0.0001".into()))
        );
        assert!(variable_scale_decimal(-1, &[1]).is_err());
    }
}
