//! The one type table: Kafka Connect / Debezium schema types → DuckDB column types, and the
//! cell values the sink carries from decoder to lake.

use std::fmt;

/// A DuckDB column type the sink creates or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Float,
    Double,
    Decimal { precision: u8, scale: u8 },
    Varchar,
    Blob,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Json,
    Uuid,
}

impl ColumnType {
    /// The SQL spelling used in DDL.
    pub fn sql(&self) -> String {
        match self {
            Self::Boolean => "BOOLEAN".into(),
            Self::TinyInt => "TINYINT".into(),
            Self::SmallInt => "SMALLINT".into(),
            Self::Integer => "INTEGER".into(),
            Self::BigInt => "BIGINT".into(),
            Self::Float => "FLOAT".into(),
            Self::Double => "DOUBLE".into(),
            Self::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            Self::Varchar => "VARCHAR".into(),
            Self::Blob => "BLOB".into(),
            Self::Date => "DATE".into(),
            Self::Time => "TIME".into(),
            Self::Timestamp => "TIMESTAMP".into(),
            Self::TimestampTz => "TIMESTAMP WITH TIME ZONE".into(),
            Self::Json => "JSON".into(),
            Self::Uuid => "UUID".into(),
        }
    }

    /// Parses DuckDB's own spelling of a column type (as `information_schema` reports it).
    /// Types the sink never creates come back as `None`: such columns are written as text.
    pub fn from_duckdb(name: &str) -> Option<Self> {
        let upper = name.trim().to_ascii_uppercase();
        Some(match upper.as_str() {
            "BOOLEAN" => Self::Boolean,
            "TINYINT" => Self::TinyInt,
            "SMALLINT" => Self::SmallInt,
            "INTEGER" => Self::Integer,
            "BIGINT" => Self::BigInt,
            "FLOAT" => Self::Float,
            "DOUBLE" => Self::Double,
            "VARCHAR" => Self::Varchar,
            "BLOB" => Self::Blob,
            "DATE" => Self::Date,
            "TIME" => Self::Time,
            "TIMESTAMP" => Self::Timestamp,
            "TIMESTAMP WITH TIME ZONE" => Self::TimestampTz,
            "JSON" => Self::Json,
            "UUID" => Self::Uuid,
            other => {
                let inner = other.strip_prefix("DECIMAL(")?.strip_suffix(')')?;
                let (p, s) = inner.split_once(',')?;
                Self::Decimal {
                    precision: p.trim().parse().ok()?,
                    scale: s.trim().parse().ok()?,
                }
            }
        })
    }

    fn int_width(&self) -> Option<u8> {
        match self {
            Self::TinyInt => Some(1),
            Self::SmallInt => Some(2),
            Self::Integer => Some(4),
            Self::BigInt => Some(8),
            _ => None,
        }
    }

    /// Whether values of type `self` can be written into a column of type `column` without
    /// losing information.
    pub fn fits_into(&self, column: &ColumnType) -> bool {
        if self == column || matches!(column, Self::Varchar) {
            return true;
        }
        match (self.int_width(), column.int_width()) {
            (Some(a), Some(b)) => return a <= b,
            (Some(_), None) => return matches!(column, Self::Double),
            _ => {}
        }
        matches!(
            (self, column),
            (Self::Float, Self::Double) | (Self::Varchar, Self::Json) | (Self::Json, Self::Varchar)
        )
    }

    /// Whether DuckLake can change a column of type `self` to `wider` in place
    /// (integer widening, FLOAT → DOUBLE).
    pub fn promotes_to(&self, wider: &ColumnType) -> bool {
        match (self.int_width(), wider.int_width()) {
            (Some(a), Some(b)) => a < b,
            _ => matches!((self, wider), (Self::Float, Self::Double)),
        }
    }

    /// The narrowest type both `self` and `other` fit into, for inferring one column from
    /// several schemaless records; `None` when they do not mix (the record is rejected).
    pub fn unify(&self, other: &ColumnType) -> Option<ColumnType> {
        if other.fits_into(self) && !matches!(self, Self::Varchar) || self == other {
            return Some(*self);
        }
        if self.fits_into(other) && !matches!(other, Self::Varchar) {
            return Some(*other);
        }
        match (self, other) {
            (a, b)
                if (a.int_width().is_some() || *a == Self::Float || *a == Self::Double)
                    && (b.int_width().is_some() || *b == Self::Float || *b == Self::Double) =>
            {
                Some(Self::Double)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// A cell value. Temporal values are stored in the unit DuckDB uses (days, microseconds).
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Unscaled value and scale.
    Decimal(i128, u8),
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since the epoch, UTC.
    Timestamp(i64),
}

impl Datum {
    /// Decimal text of an unscaled value, e.g. (12345, 2) → "123.45".
    pub fn decimal_text(unscaled: i128, scale: u8) -> String {
        let digits = unscaled.unsigned_abs().to_string();
        let scale = usize::from(scale);
        let sign = if unscaled < 0 { "-" } else { "" };
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_widening_and_float_promotions() {
        assert!(ColumnType::Integer.fits_into(&ColumnType::BigInt));
        assert!(!ColumnType::BigInt.fits_into(&ColumnType::Integer));
        assert!(ColumnType::BigInt.fits_into(&ColumnType::Double));
        assert!(!ColumnType::Double.fits_into(&ColumnType::BigInt));
        assert!(ColumnType::Integer.promotes_to(&ColumnType::BigInt));
        assert!(ColumnType::Float.promotes_to(&ColumnType::Double));
        assert!(!ColumnType::BigInt.promotes_to(&ColumnType::Double));
        assert_eq!(
            ColumnType::BigInt.unify(&ColumnType::Double),
            Some(ColumnType::Double)
        );
        assert_eq!(
            ColumnType::Double.unify(&ColumnType::BigInt),
            Some(ColumnType::Double)
        );
        assert_eq!(ColumnType::BigInt.unify(&ColumnType::Varchar), None);
        assert_eq!(
            ColumnType::Boolean.unify(&ColumnType::Boolean),
            Some(ColumnType::Boolean)
        );
    }

    #[test]
    fn duckdb_type_names_round_trip() {
        for ty in [
            ColumnType::Boolean,
            ColumnType::BigInt,
            ColumnType::Decimal {
                precision: 10,
                scale: 2,
            },
            ColumnType::TimestampTz,
            ColumnType::Json,
        ] {
            assert_eq!(ColumnType::from_duckdb(&ty.sql()), Some(ty));
        }
        assert_eq!(ColumnType::from_duckdb("INTEGER[]"), None);
    }

    #[test]
    fn decimal_text_places_the_point() {
        assert_eq!(Datum::decimal_text(12345, 2), "123.45");
        assert_eq!(Datum::decimal_text(-5, 3), "-0.005");
        assert_eq!(Datum::decimal_text(7, 0), "7");
    }
}
