//! The table the CDC generator changes, as if it lived in MySQL 8:
//!
//! ```sql
//! CREATE TABLE inventory.users (
//!   id          INT NOT NULL PRIMARY KEY,
//!   first_name  VARCHAR(255) NOT NULL,
//!   last_name   VARCHAR(255) NOT NULL,
//!   email       VARCHAR(255) NULL,
//!   balance     DECIMAL(10,2) NOT NULL,
//!   birth_date  DATE NULL,
//!   created_at  DATETIME(3) NOT NULL,
//!   updated_at  TIMESTAMP(6) NOT NULL,
//!   active      BIT(1) NOT NULL,
//!   score       DOUBLE NULL,
//!   status      ENUM('new','active','suspended') NOT NULL,
//!   tags        SET('admin','beta','newsletter','vip') NULL,
//!   profile     JSON NULL,
//!   visits      BIGINT UNSIGNED NOT NULL,
//!   login_time  TIME(6) NULL
//! );
//! -- with --evolve, midway through the changes:
//! ALTER TABLE inventory.users ADD COLUMN nickname VARCHAR(64) NULL;
//! ```
//!
//! `active` is `BIT(1)` because that is MySQL's only boolean that Debezium maps to a Connect
//! `boolean`: `BOOLEAN` is an alias of `TINYINT(1)`, which Debezium emits as `int16` unless a
//! custom converter is configured. No column has a `DEFAULT`, so no field schema carries one.
//!
//! Rows hold values in the units Debezium writes them in (days, epoch ms/µs, unscaled
//! decimals), so an event is a plain rendering of a row and the expected state is another.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Timelike};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Map, Value};

const FIRST_NAMES: &[&str] = &[
    "Sally", "George", "Edward", "Anne", "Zoë", "José", "Mårten", "Chloé", "Li", "Aditi",
];
const LAST_NAMES: &[&str] = &[
    "Thomas",
    "Bailey",
    "Walker",
    "Kretchmar",
    "Müller",
    "O'Brien",
    "García",
    "Nakamura",
    "Smith-Jones",
    "van der Berg",
];
pub(crate) const STATUSES: &[&str] = &["new", "active", "suspended"];
pub(crate) const TAGS: &[&str] = &["admin", "beta", "newsletter", "vip"];
const THEMES: &[&str] = &["light", "dark", "high-contrast"];
const LOCALES: &[&str] = &["en-US", "de-DE", "fr-FR", "ja-JP"];
const CITIES: &[&str] = &["Berlin", "Lyon", "Osaka", "Austin"];

/// Largest unscaled `DECIMAL(10,2)`: 99,999,999.99.
const BALANCE_MAX: i64 = 9_999_999_999;
const DAYS_1900_01_01: i32 = -25_567;
const DAYS_2010_12_31: i32 = 14_974;
const MS_2015_01_01: i64 = 1_420_070_400_000;
const MS_2026_01_01: i64 = 1_767_225_600_000;
const US_2020_01_01: i64 = 1_577_836_800_000_000;
const US_2026_01_01: i64 = 1_767_225_600_000_000;
const US_PER_DAY: i64 = 86_400_000_000;

/// Each column and the DuckDB type a sink maps its Debezium type to.
pub(crate) const COLUMNS: &[(&str, &str)] = &[
    ("id", "INTEGER"),
    ("first_name", "VARCHAR"),
    ("last_name", "VARCHAR"),
    ("email", "VARCHAR"),
    ("balance", "DECIMAL(10,2)"),
    ("birth_date", "DATE"),
    ("created_at", "TIMESTAMP"),
    ("updated_at", "TIMESTAMP WITH TIME ZONE"),
    ("active", "BOOLEAN"),
    ("score", "DOUBLE"),
    ("status", "VARCHAR"),
    ("tags", "VARCHAR"),
    ("profile", "JSON"),
    ("visits", "DECIMAL(20,0)"),
    ("login_time", "TIME"),
];

/// The column `--evolve` adds midway (nullable, appended last as MySQL does).
pub(crate) const EVOLVED_COLUMN: (&str, &str) = ("nickname", "VARCHAR");
const NICKNAMES: &[&str] = &["ace", "bee", "Zoë-z", "", "mx. o'neil", "🦆"];

/// Which reader produced a row image. MySQL renders a `JSON` value differently on the two
/// paths Debezium reads it from: the snapshot's JDBC query returns MySQL's text form
/// (`{"a": 1, "b": [1, 2]}`), the binlog's binary JSON is formatted compactly (`{"a":1,"b":[1,2]}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reader {
    Snapshot,
    Binlog,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserRow {
    pub id: i32,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// Unscaled, scale 2.
    pub balance_cents: i64,
    /// Days since 1970-01-01 (negative before).
    pub birth_date: Option<i32>,
    /// `DATETIME(3)` as Debezium's `Timestamp`: the wall-clock value read as UTC, epoch ms.
    pub created_at_ms: i64,
    /// `TIMESTAMP(6)`: an instant, epoch µs.
    pub updated_at_us: i64,
    pub active: bool,
    pub score: Option<f64>,
    pub status: &'static str,
    /// Members in definition order, comma-separated, never empty.
    pub tags: Option<String>,
    /// An object whose keys are already in MySQL's storage order (length, then bytes).
    pub profile: Option<Value>,
    pub visits: u64,
    /// µs since midnight.
    pub login_time_us: Option<i64>,
    /// The column `--evolve` adds: `None` until a change after the `ALTER TABLE` sets it.
    pub nickname: Option<String>,
}

impl UserRow {
    pub(crate) fn random(rng: &mut StdRng, id: i32) -> Self {
        let first_name = pick(rng, FIRST_NAMES).to_owned();
        let last_name = pick(rng, LAST_NAMES).to_owned();
        let email = rng
            .gen_bool(0.85)
            .then(|| email_for(rng, &first_name, &last_name));
        UserRow {
            id,
            first_name,
            last_name,
            email,
            balance_cents: random_balance(rng),
            birth_date: random_birth_date(rng),
            created_at_ms: rng.gen_range(MS_2015_01_01..MS_2026_01_01),
            updated_at_us: rng.gen_range(US_2020_01_01..US_2026_01_01),
            active: rng.gen_bool(0.7),
            score: random_score(rng),
            status: pick(rng, STATUSES),
            tags: random_tags(rng),
            profile: random_profile(rng),
            visits: random_visits(rng),
            login_time_us: rng.gen_bool(0.85).then(|| rng.gen_range(0..US_PER_DAY)),
            nickname: None,
        }
    }

    /// Sets the evolved column (after the `ALTER TABLE`): a nickname, or NULL now and then.
    pub(crate) fn set_nickname(&mut self, rng: &mut StdRng) {
        self.nickname = rng.gen_bool(0.8).then(|| pick(rng, NICKNAMES).to_owned());
    }

    /// An `UPDATE` of one to three columns; `updated_at` always moves forward, so the row
    /// always changes (MySQL writes no row event for an update that changes nothing).
    pub(crate) fn mutate(&mut self, rng: &mut StdRng) {
        for _ in 0..rng.gen_range(1..=3) {
            match rng.gen_range(0..13) {
                0 => self.first_name = pick(rng, FIRST_NAMES).to_owned(),
                1 => self.last_name = pick(rng, LAST_NAMES).to_owned(),
                2 => {
                    self.email = rng
                        .gen_bool(0.8)
                        .then(|| email_for(rng, &self.first_name, &self.last_name))
                }
                3 | 4 => self.balance_cents = random_balance(rng),
                5 => self.birth_date = random_birth_date(rng),
                6 => self.active = !self.active,
                7 => self.score = random_score(rng),
                8 => self.status = pick(rng, STATUSES),
                9 => self.tags = random_tags(rng),
                10 => self.profile = random_profile(rng),
                11 => self.visits = random_visits(rng),
                _ => self.login_time_us = rng.gen_bool(0.85).then(|| rng.gen_range(0..US_PER_DAY)),
            }
        }
        self.updated_at_us += rng.gen_range(1..US_PER_DAY);
    }

    /// The `profile` text as Debezium writes it from `reader`.
    pub(crate) fn profile_text(&self, reader: Reader) -> Option<String> {
        self.profile.as_ref().map(|p| match reader {
            Reader::Binlog => p.to_string(),
            Reader::Snapshot => {
                let mut s = String::new();
                mysql_text(p, &mut s);
                s
            }
        })
    }

    /// The row as one line of the `--expect` file: the value forms DuckDB's `read_json`
    /// loads into the types of [`COLUMNS`]. `reader` is the one of the event that last wrote
    /// the row (it decides the `profile` text). `evolved`: the table has the `--evolve` column.
    pub(crate) fn expect_json(&self, reader: Reader, evolved: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("first_name".into(), json!(self.first_name));
        m.insert("last_name".into(), json!(self.last_name));
        m.insert("email".into(), json!(self.email));
        m.insert(
            "balance".into(),
            json!(decimal_string(self.balance_cents.into(), 2)),
        );
        m.insert("birth_date".into(), json!(self.birth_date.map(date_string)));
        m.insert(
            "created_at".into(),
            json!(timestamp_string(self.created_at_ms * 1000)),
        );
        m.insert(
            "updated_at".into(),
            json!(zoned_timestamp_string(self.updated_at_us)),
        );
        m.insert("active".into(), json!(self.active));
        m.insert("score".into(), json!(self.score));
        m.insert("status".into(), json!(self.status));
        m.insert("tags".into(), json!(self.tags));
        m.insert("profile".into(), json!(self.profile_text(reader)));
        m.insert(
            "visits".into(),
            json!(decimal_string(self.visits.into(), 0)),
        );
        m.insert(
            "login_time".into(),
            json!(self.login_time_us.map(time_string)),
        );
        if evolved {
            m.insert(EVOLVED_COLUMN.0.into(), json!(self.nickname));
        }
        Value::Object(m)
    }
}

fn pick<T: Copy>(rng: &mut StdRng, from: &[T]) -> T {
    from[rng.gen_range(0..from.len())]
}

fn email_for(rng: &mut StdRng, first: &str, last: &str) -> String {
    let slug = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    format!(
        "{}.{}{}@example.com",
        slug(first),
        slug(last),
        rng.gen_range(1..1000)
    )
}

/// Mostly everyday amounts, a third of them negative, and now and then the edges of
/// `DECIMAL(10,2)`.
fn random_balance(rng: &mut StdRng) -> i64 {
    match rng.gen_range(0..40) {
        0 => 0,
        1 => -1,
        2 => BALANCE_MAX,
        3 => -BALANCE_MAX,
        4..=16 => -rng.gen_range(1..1_000_000),
        _ => rng.gen_range(0..10_000_000),
    }
}

/// Often before 1970 (negative days), sometimes the day before the epoch.
fn random_birth_date(rng: &mut StdRng) -> Option<i32> {
    match rng.gen_range(0..20) {
        0 | 1 => None,
        2 => Some(-1),
        _ => Some(rng.gen_range(DAYS_1900_01_01..=DAYS_2010_12_31)),
    }
}

fn random_score(rng: &mut StdRng) -> Option<f64> {
    match rng.gen_range(0..40) {
        0..=3 => None,
        4 => Some(0.0),
        5 => Some(1.5e300),
        6 => Some(-2.5e-7),
        _ => Some(rng.gen_range(-1000.0..1000.0)),
    }
}

fn random_tags(rng: &mut StdRng) -> Option<String> {
    if rng.gen_bool(0.2) {
        return None;
    }
    // A non-empty subset, in definition order (how MySQL stores and returns a SET).
    let bits = rng.gen_range(1..(1u32 << TAGS.len()));
    let members: Vec<&str> = TAGS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, t)| *t)
        .collect();
    Some(members.join(","))
}

/// Values above `i64::MAX` on purpose: `BIGINT UNSIGNED` is why Debezium's `precise` mode
/// exists.
fn random_visits(rng: &mut StdRng) -> u64 {
    match rng.gen_range(0..50) {
        0 => u64::MAX,
        1 => 1 << 63,
        2..=5 => rng.gen_range((1u64 << 63)..u64::MAX),
        6..=8 => 0,
        _ => rng.gen_range(0..100_000),
    }
}

fn random_profile(rng: &mut StdRng) -> Option<Value> {
    if rng.gen_bool(0.2) {
        return None;
    }
    let mut entries: Vec<(&str, Value)> = vec![("theme", json!(pick(rng, THEMES)))];
    if rng.gen_bool(0.6) {
        entries.push(("vip", json!(rng.gen_bool(0.3))));
    }
    if rng.gen_bool(0.6) {
        entries.push(("locale", json!(pick(rng, LOCALES))));
    }
    if rng.gen_bool(0.3) {
        entries.push(("referrer", Value::Null));
    }
    if rng.gen_bool(0.5) {
        let n = rng.gen_range(0..4);
        let months: Vec<u32> = (0..n).map(|_| rng.gen_range(0..500)).collect();
        entries.push(("visits_by_month", json!(months)));
    }
    if rng.gen_bool(0.4) {
        let address = mysql_object(vec![
            ("city", json!(pick(rng, CITIES))),
            ("zip", json!(format!("{:05}", rng.gen_range(0..100_000)))),
        ]);
        entries.push(("address", address));
    }
    Some(mysql_object(entries))
}

/// A JSON object with its keys in the order MySQL stores them (shorter keys first, then by
/// bytes), which is the order both of MySQL's renderings print them in.
fn mysql_object(mut entries: Vec<(&str, Value)>) -> Value {
    entries.sort_by(|a, b| (a.0.len(), a.0).cmp(&(b.0.len(), b.0)));
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// MySQL's own text rendering of a JSON value: `", "` between members, `": "` after keys.
fn mysql_text(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                mysql_text(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                mysql_text(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// `-12.50`, `18446744073709551615`: the unscaled value with `scale` digits after the point.
pub(crate) fn decimal_string(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

pub(crate) fn date_string(days: i32) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(days.into())))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) of epoch µs.
pub(crate) fn timestamp_string(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`: how Debezium writes a MySQL `TIMESTAMP(6)` as a
/// `ZonedTimestamp` (UTC, as many fraction digits as the column's precision).
pub(crate) fn zoned_timestamp_string(us: i64) -> String {
    // By hand: chrono's `format` parses its pattern on every call, and this runs twice per
    // event.
    DateTime::from_timestamp_micros(us)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.timestamp_subsec_micros()
            )
        })
        .unwrap_or_default()
}

/// `HH:MM:SS.ffffff` of µs since midnight.
pub(crate) fn time_string(us: i64) -> String {
    let secs = u32::try_from(us.div_euclid(1_000_000)).unwrap_or(0);
    let nanos = u32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap_or(0);
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
        .map(|t| t.format("%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_forms_for_the_expect_file() {
        assert_eq!(decimal_string(-1250, 2), "-12.50");
        assert_eq!(decimal_string(-1, 2), "-0.01");
        assert_eq!(decimal_string(5, 2), "0.05");
        assert_eq!(decimal_string(0, 2), "0.00");
        assert_eq!(decimal_string(9_999_999_999, 2), "99999999.99");
        assert_eq!(decimal_string(u64::MAX.into(), 0), "18446744073709551615");
        assert_eq!(date_string(0), "1970-01-01");
        assert_eq!(date_string(-1), "1969-12-31");
        assert_eq!(date_string(-25_567), "1900-01-01");
        assert_eq!(
            timestamp_string(1_529_476_623_000_000),
            "2018-06-20 06:37:03.000000"
        );
        assert_eq!(
            zoned_timestamp_string(1_673_440_200_123_000),
            "2023-01-11T12:30:00.123000Z"
        );
        assert_eq!(time_string(0), "00:00:00.000000");
        assert_eq!(time_string(US_PER_DAY - 1), "23:59:59.999999");
    }

    #[test]
    fn json_renders_like_mysql_on_each_path() {
        let v = mysql_object(vec![
            ("locale", json!("en-US")),
            ("vip", json!(true)),
            ("visits_by_month", json!([1, 2])),
            (
                "address",
                mysql_object(vec![("zip", json!("01234")), ("city", json!("Lyon"))]),
            ),
        ]);
        let row = UserRow {
            profile: Some(v),
            ..UserRow::random(&mut rand::SeedableRng::seed_from_u64(1), 1)
        };
        assert_eq!(
            row.profile_text(Reader::Binlog).as_deref(),
            Some(
                r#"{"vip":true,"locale":"en-US","address":{"zip":"01234","city":"Lyon"},"visits_by_month":[1,2]}"#
            )
        );
        assert_eq!(
            row.profile_text(Reader::Snapshot).as_deref(),
            Some(
                r#"{"vip": true, "locale": "en-US", "address": {"zip": "01234", "city": "Lyon"}, "visits_by_month": [1, 2]}"#
            )
        );
    }
}
