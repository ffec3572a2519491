//! The sink's type vocabulary: the DuckDB column types it creates or writes, and the cell
//! values it carries from decoder to lake. Which Connect / Debezium / Avro type becomes which
//! column type is decided once, in [`super::logical`].

use std::fmt;

use super::{DecodeError, Name, Row};

/// A DuckDB column type the sink creates or writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Varchar,
    Blob,
    Date,
    Time,
    /// `TIME WITH TIME ZONE`.
    TimeTz,
    Timestamp,
    TimestampTz,
    Json,
    Uuid,
    List(Box<ColumnType>),
    /// Field names are shared ([`Name`]): a record's type is cloned per record.
    Struct(std::sync::Arc<[(Name, ColumnType)]>),
    Map(Box<ColumnType>, Box<ColumnType>),
}

impl ColumnType {
    /// `self == other`, with the usual case (two types without parameters) decided inline
    /// from the variants alone: the derived comparison is a call per cell of every record.
    #[inline]
    pub fn same(&self, other: &Self) -> bool {
        match self {
            Self::Decimal { .. } | Self::List(_) | Self::Struct(_) | Self::Map(..) => self == other,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// The SQL spelling used in DDL (struct field names quoted).
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
            Self::TimeTz => "TIME WITH TIME ZONE".into(),
            Self::Timestamp => "TIMESTAMP".into(),
            Self::TimestampTz => "TIMESTAMP WITH TIME ZONE".into(),
            Self::Json => "JSON".into(),
            Self::Uuid => "UUID".into(),
            Self::List(item) => format!("{}[]", item.sql()),
            Self::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(name, ty)| format!("{} {}", crate::sql::ident(name), ty.sql()))
                    .collect();
                format!("STRUCT({})", inner.join(", "))
            }
            Self::Map(k, v) => format!("MAP({}, {})", k.sql(), v.sql()),
        }
    }

    /// Parses DuckDB's own spelling of a column type (as `information_schema` reports it),
    /// nested types included. Types the sink never creates come back as `None`: values are
    /// then cast by DuckDB on append.
    pub fn from_duckdb(name: &str) -> Option<Self> {
        let mut p = TypeParser {
            s: name.trim().as_bytes(),
            i: 0,
        };
        let ty = p.parse()?;
        p.skip_ws();
        (p.i == p.s.len()).then_some(ty)
    }

    /// Digits an integer type needs, for fitting integers into decimals.
    fn int_digits(&self) -> Option<u8> {
        match self {
            Self::TinyInt => Some(3),
            Self::SmallInt => Some(5),
            Self::Integer => Some(10),
            Self::BigInt => Some(19),
            _ => None,
        }
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

    fn is_numeric(&self) -> bool {
        self.int_width().is_some() || matches!(self, Self::Float | Self::Double)
    }

    fn is_nested(&self) -> bool {
        matches!(self, Self::List(_) | Self::Struct(_) | Self::Map(..))
    }

    /// Whether values of type `self` can be written into a column of type `column` without
    /// losing information.
    pub fn fits_into(&self, column: &ColumnType) -> bool {
        if self == column {
            return true;
        }
        if matches!(column, Self::Varchar) && !self.is_nested() {
            return true;
        }
        match (self, column) {
            (Self::List(a), Self::List(b)) => a.fits_into(b),
            (Self::Map(ak, av), Self::Map(bk, bv)) => ak.fits_into(bk) && av.fits_into(bv),
            (Self::Struct(a), Self::Struct(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((an, at), (bn, bt))| an.eq_ignore_ascii_case(bn) && at.fits_into(bt))
            }
            (Self::Float, Self::Double) | (Self::Varchar, Self::Json) => true,
            (
                a,
                Self::Decimal {
                    precision: p,
                    scale: s,
                },
            ) if a.int_digits().is_some() => {
                a.int_digits().is_some_and(|d| d <= p.saturating_sub(*s))
            }
            (
                Self::Decimal {
                    precision: p1,
                    scale: s1,
                },
                Self::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s1 <= s2 && p1.saturating_sub(*s1) <= p2.saturating_sub(*s2),
            (a, b) => match (a.int_width(), b.int_width()) {
                (Some(x), Some(y)) => x <= y,
                (Some(_), None) => matches!(b, Self::Double),
                _ => false,
            },
        }
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
        if self == other {
            return Some(self.clone());
        }
        if !matches!(self, Self::Varchar) && other.fits_into(self) {
            return Some(self.clone());
        }
        if !matches!(other, Self::Varchar) && self.fits_into(other) {
            return Some(other.clone());
        }
        if self.is_numeric() && other.is_numeric() {
            return Some(Self::Double);
        }
        None
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql())
    }
}

/// Recursive-descent reader of DuckDB type names: `INTEGER[]`, `DECIMAL(10,2)`,
/// `STRUCT("a b" INTEGER, c VARCHAR[])`, `MAP(VARCHAR, INTEGER)`.
struct TypeParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl TypeParser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A bare word (letters, digits, `_`, and the spaces of multi-word names such as
    /// `TIMESTAMP WITH TIME ZONE`, up to a delimiter).
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b' ' {
                self.i += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[start..self.i])
            .trim()
            .to_ascii_uppercase()
    }

    /// A struct field name: `"quoted ""name"""` or a bare identifier.
    fn field_name(&mut self) -> Option<String> {
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'"') {
            self.i += 1;
            let mut out = Vec::new();
            loop {
                match self.s.get(self.i)? {
                    b'"' if self.s.get(self.i + 1) == Some(&b'"') => {
                        out.push(b'"');
                        self.i += 2;
                    }
                    b'"' => {
                        self.i += 1;
                        break;
                    }
                    &c => {
                        out.push(c);
                        self.i += 1;
                    }
                }
            }
            return String::from_utf8(out).ok();
        }
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start)
            .then(|| String::from_utf8(self.s[start..self.i].to_vec()).ok())
            .flatten()
    }

    fn number(&mut self) -> Option<u8> {
        self.skip_ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    fn parse(&mut self) -> Option<ColumnType> {
        let word = self.word();
        let mut ty = match word.as_str() {
            "BOOLEAN" => ColumnType::Boolean,
            "TINYINT" => ColumnType::TinyInt,
            "SMALLINT" => ColumnType::SmallInt,
            "INTEGER" => ColumnType::Integer,
            "BIGINT" => ColumnType::BigInt,
            "FLOAT" => ColumnType::Float,
            "DOUBLE" => ColumnType::Double,
            "VARCHAR" => ColumnType::Varchar,
            "BLOB" => ColumnType::Blob,
            "DATE" => ColumnType::Date,
            "TIME" => ColumnType::Time,
            "TIME WITH TIME ZONE" => ColumnType::TimeTz,
            "TIMESTAMP" => ColumnType::Timestamp,
            "TIMESTAMP WITH TIME ZONE" => ColumnType::TimestampTz,
            "JSON" => ColumnType::Json,
            "UUID" => ColumnType::Uuid,
            "DECIMAL" => {
                if !self.eat(b'(') {
                    return None;
                }
                let precision = self.number()?;
                if !self.eat(b',') {
                    return None;
                }
                let scale = self.number()?;
                if !self.eat(b')') {
                    return None;
                }
                ColumnType::Decimal { precision, scale }
            }
            "STRUCT" => {
                if !self.eat(b'(') {
                    return None;
                }
                let mut fields = Vec::new();
                loop {
                    let name = self.field_name()?;
                    let ty = self.parse()?;
                    fields.push((Name::from(name), ty));
                    if self.eat(b')') {
                        break;
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
                ColumnType::Struct(fields.into())
            }
            "MAP" => {
                if !self.eat(b'(') {
                    return None;
                }
                let k = self.parse()?;
                if !self.eat(b',') {
                    return None;
                }
                let v = self.parse()?;
                if !self.eat(b')') {
                    return None;
                }
                ColumnType::Map(Box::new(k), Box::new(v))
            }
            _ => return None,
        };
        loop {
            self.skip_ws();
            if self.s.get(self.i) == Some(&b'[') && self.s.get(self.i + 1) == Some(&b']') {
                self.i += 2;
                ty = ColumnType::List(Box::new(ty));
            } else {
                return Some(ty);
            }
        }
    }
}

/// A cell value. Temporal values are stored in the unit DuckDB uses (days, microseconds);
/// values DuckDB parses better than we would (zoned timestamps, UUIDs, JSON) stay text.
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
    List(Vec<Datum>),
    /// Field values in the order of the struct type's fields.
    Struct(Vec<Datum>),
    Map(Vec<(Datum, Datum)>),
    /// A nested object of schemaless JSON, cells with inferred types: a Debezium envelope's
    /// `before`/`after`/`source`, or (anywhere else) stored as JSON text.
    Object(Row),
}

impl Datum {
    /// Decimal text of an unscaled value, e.g. (12345, 2) → "123.45".
    pub fn decimal_text(unscaled: i128, scale: u8) -> String {
        Self::decimal_digits_text(&unscaled.to_string(), scale)
    }

    /// Places a decimal point `scale` digits from the right of signed digit text.
    pub fn decimal_digits_text(digits: &str, scale: u8) -> String {
        let (sign, digits) = match digits.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("", digits),
        };
        let scale = usize::from(scale);
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{sign}{int}.{frac}")
    }

    /// Parses decimal text (`-12.5`, `3e2`, `7`) into an unscaled value at `scale`; `None`
    /// when it has more fractional digits than `scale` or does not fit 38 digits.
    pub fn parse_decimal(text: &str, scale: u8) -> Option<i128> {
        let text = text.trim();
        let (mantissa, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (neg, digits) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty()
            || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut value: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        // value × 10^(exp − frac digits) must become value' × 10^(−scale).
        let shift = i32::from(scale) + exp - frac.len() as i32;
        if shift >= 0 {
            value = value.checked_mul(10i128.checked_pow(shift as u32)?)?;
        } else {
            let div = 10i128.checked_pow((-shift) as u32)?;
            if value % div != 0 {
                return None;
            }
            value /= div;
        }
        if value.unsigned_abs() >= 10u128.pow(38) {
            return None;
        }
        Some(if neg { -value } else { value })
    }

    /// The value as JSON text, for nested values stored in a JSON column (schemaless input).
    pub fn to_json(&self, ty: &ColumnType) -> serde_json::Value {
        use serde_json::Value;
        match (self, ty) {
            (Self::Null, _) => Value::Null,
            (Self::Bool(b), _) => Value::Bool(*b),
            (Self::Int(i), _) => Value::from(*i),
            (Self::Float(f), _) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            (Self::Decimal(v, s), _) => Value::String(Self::decimal_text(*v, *s)),
            (Self::Text(t), ColumnType::Json) => {
                serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone()))
            }
            (Self::Text(t), _) => Value::String(t.clone()),
            (Self::Bytes(b), _) => {
                use base64::Engine;
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (Self::Date(d), _) => Value::from(*d),
            (Self::Time(t) | Self::Timestamp(t), _) => Value::from(*t),
            (Self::List(items), ColumnType::List(item)) => {
                Value::Array(items.iter().map(|d| d.to_json(item)).collect())
            }
            (Self::List(items), _) => Value::Array(
                items
                    .iter()
                    .map(|d| d.to_json(&ColumnType::Varchar))
                    .collect(),
            ),
            (Self::Struct(values), ColumnType::Struct(fields)) => Value::Object(
                fields
                    .iter()
                    .zip(values)
                    .map(|((name, ty), v)| (name.to_string(), v.to_json(ty)))
                    .collect(),
            ),
            (Self::Struct(values), _) => Value::Array(
                values
                    .iter()
                    .map(|d| d.to_json(&ColumnType::Varchar))
                    .collect(),
            ),
            (Self::Map(entries), ColumnType::Map(k, v)) => Value::Object(
                entries
                    .iter()
                    .map(|(key, val)| {
                        let key = match key.to_json(k) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, val.to_json(v))
                    })
                    .collect(),
            ),
            (Self::Object(row), _) => {
                serde_json::from_str(&super::json::object_json(row)).unwrap_or(Value::Null)
            }
            (Self::Map(entries), _) => Value::Array(
                entries
                    .iter()
                    .map(|(k, v)| {
                        Value::Array(vec![
                            k.to_json(&ColumnType::Varchar),
                            v.to_json(&ColumnType::Varchar),
                        ])
                    })
                    .collect(),
            ),
        }
    }

    /// Appends a canonical, type-tagged encoding of the value: equal keys encode equally, so
    /// the encoding identifies a row's key within a batch.
    pub fn encode_key(&self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        match self {
            Self::Null => return Err(DecodeError::Shape("null in a key field".into())),
            Self::Bool(b) => out.extend([1, u8::from(*b)]),
            Self::Int(i) => {
                out.push(2);
                out.extend(i.to_be_bytes());
            }
            Self::Float(f) => {
                out.push(3);
                out.extend(f.to_bits().to_be_bytes());
            }
            Self::Decimal(v, s) => {
                // Normalise trailing zeros so 1.50 and 1.5 are one key.
                let (mut v, mut s) = (*v, *s);
                while s > 0 && v % 10 == 0 {
                    v /= 10;
                    s -= 1;
                }
                out.push(4);
                out.extend(v.to_be_bytes());
                out.push(s);
            }
            Self::Text(t) => {
                out.push(5);
                out.extend((t.len() as u64).to_be_bytes());
                out.extend(t.as_bytes());
            }
            Self::Bytes(b) => {
                out.push(6);
                out.extend((b.len() as u64).to_be_bytes());
                out.extend(b);
            }
            Self::Date(d) => {
                out.push(7);
                out.extend(d.to_be_bytes());
            }
            Self::Time(t) | Self::Timestamp(t) => {
                out.push(8);
                out.extend(t.to_be_bytes());
            }
            Self::List(_) | Self::Struct(_) | Self::Map(_) | Self::Object(_) => {
                return Err(DecodeError::Shape(
                    "a nested value (struct, list or map) cannot be a primary key field".into(),
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_agrees_with_equality_for_every_pair_of_types() {
        use ColumnType::*;
        let dec = |precision, scale| Decimal { precision, scale };
        let types = vec![
            Boolean,
            TinyInt,
            SmallInt,
            Integer,
            BigInt,
            Float,
            Double,
            dec(10, 2),
            dec(10, 3),
            dec(12, 2),
            Varchar,
            Blob,
            Date,
            Time,
            TimeTz,
            Timestamp,
            TimestampTz,
            Json,
            Uuid,
            List(Box::new(Integer)),
            List(Box::new(BigInt)),
            Struct(vec![("a".into(), Integer)].into()),
            Struct(vec![("b".into(), Integer)].into()),
            Map(Box::new(Varchar), Box::new(Integer)),
            Map(Box::new(Varchar), Box::new(Double)),
        ];
        for a in &types {
            for b in &types {
                assert_eq!(a.same(b), a == b, "{a} vs {b}");
            }
        }
    }

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
    fn integers_fit_decimals_with_enough_integer_digits() {
        let d20 = ColumnType::Decimal {
            precision: 20,
            scale: 0,
        };
        let d10_2 = ColumnType::Decimal {
            precision: 10,
            scale: 2,
        };
        assert!(ColumnType::BigInt.fits_into(&d20));
        assert!(!ColumnType::BigInt.fits_into(&d10_2));
        assert!(ColumnType::SmallInt.fits_into(&d10_2));
        assert_eq!(ColumnType::BigInt.unify(&d20), Some(d20.clone()));
        assert!(d10_2.fits_into(&ColumnType::Decimal {
            precision: 12,
            scale: 3
        }));
        assert!(!d10_2.fits_into(&ColumnType::Decimal {
            precision: 10,
            scale: 1
        }));
    }

    #[test]
    fn nested_types_fit_field_by_field() {
        let s = |t: ColumnType| ColumnType::Struct(vec![("a".into(), t)].into());
        assert!(s(ColumnType::Integer).fits_into(&s(ColumnType::BigInt)));
        assert!(!s(ColumnType::BigInt).fits_into(&s(ColumnType::Integer)));
        assert!(!s(ColumnType::Integer).fits_into(&ColumnType::Varchar));
        let l = |t: ColumnType| ColumnType::List(Box::new(t));
        assert!(l(ColumnType::Integer).fits_into(&l(ColumnType::BigInt)));
        assert!(!l(ColumnType::Integer).fits_into(&s(ColumnType::Integer)));
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
            ColumnType::TimeTz,
            ColumnType::Json,
            ColumnType::List(Box::new(ColumnType::List(Box::new(ColumnType::Integer)))),
            ColumnType::Struct(
                vec![
                    ("x y".into(), ColumnType::Integer),
                    (
                        "select".into(),
                        ColumnType::List(Box::new(ColumnType::Varchar)),
                    ),
                    ("q\"uote".into(), ColumnType::Uuid),
                    (
                        "m".into(),
                        ColumnType::Map(
                            Box::new(ColumnType::Varchar),
                            Box::new(ColumnType::Decimal {
                                precision: 10,
                                scale: 2,
                            }),
                        ),
                    ),
                ]
                .into(),
            ),
        ] {
            assert_eq!(ColumnType::from_duckdb(&ty.sql()), Some(ty));
        }
        // As DuckDB itself prints them.
        assert_eq!(
            ColumnType::from_duckdb(r#"STRUCT("x y" INTEGER, b VARCHAR[])"#),
            Some(ColumnType::Struct(
                vec![
                    ("x y".into(), ColumnType::Integer),
                    ("b".into(), ColumnType::List(Box::new(ColumnType::Varchar)))
                ]
                .into()
            ))
        );
        assert_eq!(ColumnType::from_duckdb("HUGEINT"), None);
        assert_eq!(ColumnType::from_duckdb("INTEGER[3]"), None);
        assert_eq!(ColumnType::from_duckdb("DECIMAL(10"), None);
    }

    #[test]
    fn decimal_text_places_the_point() {
        assert_eq!(Datum::decimal_text(12345, 2), "123.45");
        assert_eq!(Datum::decimal_text(-5, 3), "-0.005");
        assert_eq!(Datum::decimal_text(7, 0), "7");
    }

    #[test]
    fn decimal_text_parses_at_a_scale_or_refuses() {
        assert_eq!(Datum::parse_decimal("123.45", 2), Some(12345));
        assert_eq!(Datum::parse_decimal("-0.5", 3), Some(-500));
        assert_eq!(Datum::parse_decimal("12", 2), Some(1200));
        assert_eq!(Datum::parse_decimal("1.5e2", 0), Some(150));
        assert_eq!(Datum::parse_decimal("1.255", 2), None);
        assert_eq!(Datum::parse_decimal("abc", 2), None);
        assert_eq!(Datum::parse_decimal("", 2), None);
        assert_eq!(Datum::parse_decimal(&"9".repeat(39), 0), None);
        assert_eq!(
            Datum::parse_decimal("18446744073709551615", 0),
            Some(18_446_744_073_709_551_615)
        );
    }

    #[test]
    fn key_encoding_tells_values_and_types_apart() {
        let enc = |d: &Datum| {
            let mut v = Vec::new();
            d.encode_key(&mut v).unwrap();
            v
        };
        assert_eq!(enc(&Datum::Decimal(150, 2)), enc(&Datum::Decimal(15, 1)));
        assert_ne!(enc(&Datum::Int(1)), enc(&Datum::Text("1".into())));
        assert_ne!(
            enc(&Datum::Text("ab".into())),
            enc(&Datum::Text("a".into()))
        );
        assert!(Datum::Null.encode_key(&mut Vec::new()).is_err());
    }
}
