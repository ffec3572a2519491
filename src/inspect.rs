//! Looking into a connector's lake from the command line: `status` (offsets, tables,
//! snapshots with their lineage) and `sql` (run a SQL file, print every result).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use duckdb::types::{TimeUnit, Value};
use duckdb::Connection;

use crate::batch::TopicPartition;
use crate::config::ConnectorConfig;
use crate::lake::{DbError, Lake, LakeError, LakeSettings, LAKE, OFFSETS_TABLE};
use crate::sql;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {source}\n  in: {statement}")]
    Statement {
        file: String,
        line: usize,
        statement: String,
        source: DbError,
    },
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{query}: {source}")]
    Query { query: String, source: DbError },
}

/// Forgets (or, with `to_offset`, sets) the lake offsets of one topic, or of one partition of
/// it; prints what it did. Fences any worker still running for those partitions.
pub fn reset(
    config: &ConnectorConfig,
    topic: &str,
    partition: Option<i32>,
    to_offset: Option<i64>,
    out: &mut impl Write,
) -> Result<(), InspectError> {
    let mut lake = Lake::open(LakeSettings::from(config))?;
    let targets: Vec<(TopicPartition, Option<i64>)> = match partition {
        Some(p) => vec![(
            TopicPartition {
                topic: topic.to_owned(),
                partition: p,
            },
            to_offset,
        )],
        None => lake
            .stored_partitions(topic)?
            .into_iter()
            .map(|(tp, _)| (tp, to_offset))
            .collect(),
    };
    if targets.is_empty() {
        writeln!(
            out,
            "no stored offsets for topic `{topic}` of connector `{}`: nothing to reset",
            config.name
        )?;
        return Ok(());
    }
    let before = lake.stored_partitions(topic)?;
    lake.reset_offsets(&targets)?;
    for (tp, next) in &targets {
        let old = before.iter().find(|(b, _)| b == tp).and_then(|(_, o)| *o);
        match next {
            Some(n) => writeln!(out, "{}[{}]: next offset {old:?} -> {n}", tp.topic, tp.partition)?,
            None => writeln!(
                out,
                "{}[{}]: next offset {old:?} forgotten (the next run starts from auto.offset.reset)",
                tp.topic, tp.partition
            )?,
        }
    }
    Ok(())
}

/// Prints offsets, tables and recent snapshots of the connector's lake.
pub fn status(config: &ConnectorConfig, out: &mut impl Write) -> Result<(), InspectError> {
    let lake = Lake::open(LakeSettings::from(config))?;
    let conn = lake.connection();
    writeln!(
        out,
        "connector {} (group {}): catalog {}, data {}, schema {}",
        config.name,
        config.group_id(),
        crate::config::redact_catalog(&config.catalog),
        config.data_path,
        config.schema
    )?;
    writeln!(out, "\noffsets in the lake (next offset to read):")?;
    print_query(
        conn,
        &format!(
            "SELECT topic, \"partition\", next_offset, epoch, updated_at FROM {} WHERE connector = {} \
             QUALIFY row_number() OVER (PARTITION BY topic, \"partition\" ORDER BY next_offset DESC NULLS LAST, epoch DESC) = 1 \
             ORDER BY topic, \"partition\"",
            sql::qualified(LAKE, &config.schema, OFFSETS_TABLE),
            sql::literal(&config.name)
        ),
        out,
    )?;
    writeln!(out, "\ntables:")?;
    let tables: Vec<String> = {
        let q = format!(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = {} AND table_schema = {} AND table_name <> {} ORDER BY 1",
            sql::literal(LAKE),
            sql::literal(&config.schema),
            sql::literal(OFFSETS_TABLE)
        );
        let mut stmt = conn.prepare(&q).map_err(|source| InspectError::Query {
            query: q.clone(),
            source: DbError::from(source),
        })?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|source| InspectError::Query {
                query: q.clone(),
                source: DbError::from(source),
            })?;
        names
    };
    if tables.is_empty() {
        writeln!(out, "  (none yet)")?;
    } else {
        let parts: Vec<String> = tables
            .iter()
            .map(|t| {
                format!(
                    "SELECT {} AS \"table\", count(*) AS \"rows\" FROM {}",
                    sql::literal(t),
                    sql::qualified(LAKE, &config.schema, t)
                )
            })
            .collect();
        print_query(conn, &parts.join(" UNION ALL "), out)?;
    }
    writeln!(out, "\nnewest commits of this connector (lineage; full detail in lake.snapshots().commit_extra_info):")?;
    print_query(
        conn,
        &format!(
            "SELECT snapshot_id, snapshot_time, commit_message FROM {}.snapshots()
             WHERE author = 'ducklake-sink'
               AND CASE WHEN json_valid(commit_extra_info) THEN json_extract_string(commit_extra_info, '$.connector') END = {}
               AND commit_extra_info LIKE '%\"kind\":\"flush\"%'
             ORDER BY snapshot_id DESC LIMIT 10",
            sql::ident(LAKE),
            sql::literal(&config.name)
        ),
        out,
    )?;
    print_query(
        conn,
        &format!(
            "SELECT count(*) AS snapshots, count(*) FILTER (WHERE author = 'ducklake-sink' AND commit_extra_info LIKE '%\"kind\":\"flush\"%') AS sink_flushes FROM {}.snapshots()",
            sql::ident(LAKE)
        ),
        out,
    )?;
    Ok(())
}

/// Runs every statement of a SQL file against the connector's lake (attached as `lake`, with
/// `USE lake.<schema>` in effect) and prints each result.
pub fn run_sql_file(
    config: &ConnectorConfig,
    file: &Path,
    out: &mut impl Write,
) -> Result<(), InspectError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| InspectError::Read {
        file: name.clone(),
        source,
    })?;
    let lake = Lake::open(LakeSettings::from(config))?;
    let conn = lake.connection();
    // Each statement runs in its own explicit transaction, so that binding (at prepare) and
    // execution share one DuckLake transaction — some DuckLake table functions refuse to run
    // otherwise. Transactions the file opens itself are left to the file.
    let mut in_file_transaction = false;
    for (line, statement) in split_statements(&text) {
        writeln!(out, "\n-- {name}:{line}\n{statement};")?;
        let fail = |source| InspectError::Statement {
            file: name.clone(),
            line,
            statement: statement.clone(),
            source: DbError::from(source),
        };
        let keyword = statement
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(';')
            .to_ascii_uppercase();
        match keyword.as_str() {
            "BEGIN" | "START" => {
                conn.execute_batch(&statement).map_err(fail)?;
                in_file_transaction = true;
                writeln!(out, "ok")?;
                continue;
            }
            "COMMIT" | "END" | "ROLLBACK" | "ABORT" => {
                conn.execute_batch(&statement).map_err(fail)?;
                in_file_transaction = false;
                writeln!(out, "ok")?;
                continue;
            }
            _ => {}
        }
        if !in_file_transaction {
            conn.execute_batch("BEGIN TRANSACTION").map_err(fail)?;
        }
        let result = run_statement(conn, &statement);
        let result = match result {
            Ok(table) if !in_file_transaction => conn.execute_batch("COMMIT").map(|()| table),
            Ok(table) => Ok(table),
            Err(e) => {
                if !in_file_transaction {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        };
        write_table(&result.map_err(fail)?, out)?;
    }
    Ok(())
}

fn run_statement(conn: &Connection, statement: &str) -> Result<TextTable, duckdb::Error> {
    let mut stmt = conn.prepare(statement)?;
    let mut rows = stmt.query([])?;
    collect_rows(&mut rows)
}

/// Prints the result of one query as a text table.
pub fn print_query(
    conn: &Connection,
    query: &str,
    out: &mut impl Write,
) -> Result<(), InspectError> {
    let fail = |source| InspectError::Query {
        query: query.to_owned(),
        source: DbError::from(source),
    };
    let mut stmt = conn.prepare(query).map_err(fail)?;
    let mut rows = stmt.query([]).map_err(fail)?;
    let table = collect_rows(&mut rows).map_err(fail)?;
    write_table(&table, out)?;
    Ok(())
}

struct TextTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn collect_rows(rows: &mut duckdb::Rows<'_>) -> Result<TextTable, duckdb::Error> {
    let header = match rows.as_ref() {
        Some(stmt) => (0..stmt.column_count())
            .map(|i| {
                stmt.column_name(i)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            })
            .collect(),
        None => Vec::new(),
    };
    let mut out = TextTable {
        header,
        rows: Vec::new(),
    };
    // TIMESTAMPTZ comes back as a timestamp like any other: shown with its offset (UTC), as
    // the DuckDB shell does, so it is not read as local time.
    let zoned: Vec<bool> = match rows.as_ref() {
        Some(stmt) => (0..stmt.column_count())
            .map(|i| {
                matches!(
                    stmt.column_type(i),
                    duckdb::arrow::datatypes::DataType::Timestamp(_, Some(_))
                )
            })
            .collect(),
        None => Vec::new(),
    };
    while let Some(row) = rows.next()? {
        let n = out.header.len();
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            let value = row.get::<_, Value>(i)?;
            let mut text = render(&value);
            if zoned.get(i).copied().unwrap_or(false) && matches!(value, Value::Timestamp(..)) {
                text.push_str("+00");
            }
            cells.push(text);
        }
        out.rows.push(cells);
    }
    Ok(out)
}

fn write_table(t: &TextTable, out: &mut impl Write) -> std::io::Result<()> {
    if t.header.is_empty() {
        return writeln!(out, "ok");
    }
    const MAX: usize = 80;
    let clip = |s: &str| -> String {
        let one_line = s.replace('\n', " ");
        if one_line.chars().count() > MAX {
            format!("{}…", one_line.chars().take(MAX - 1).collect::<String>())
        } else {
            one_line
        }
    };
    let header: Vec<String> = t.header.iter().map(|h| clip(h)).collect();
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| clip(c)).collect())
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(
                s,
                "{}{:<w$}",
                if i == 0 { "" } else { " | " },
                c,
                w = widths[i]
            );
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    writeln!(
        out,
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )
}

fn micros(unit: TimeUnit, v: i64) -> i64 {
    match unit {
        TimeUnit::Second => v.saturating_mul(1_000_000),
        TimeUnit::Millisecond => v.saturating_mul(1_000),
        TimeUnit::Microsecond => v,
        TimeUnit::Nanosecond => v / 1_000,
    }
}

/// A DuckDB value as text, the way the DuckDB shell shows it.
pub fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Boolean(b) => b.to_string(),
        Value::TinyInt(i) => i.to_string(),
        Value::SmallInt(i) => i.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::HugeInt(i) => i.to_string(),
        Value::UTinyInt(i) => i.to_string(),
        Value::USmallInt(i) => i.to_string(),
        Value::UInt(i) => i.to_string(),
        Value::UBigInt(i) => i.to_string(),
        Value::UHugeInt(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => b.iter().map(|x| format!("\\x{x:02X}")).collect(),
        Value::Timestamp(unit, t) => chrono::DateTime::from_timestamp_micros(micros(*unit, *t))
            .map(|d| d.naive_utc().to_string())
            .unwrap_or_else(|| t.to_string()),
        Value::Date32(days) => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|d| d.checked_add_signed(chrono::TimeDelta::days(i64::from(*days))))
            .map(|d| d.to_string())
            .unwrap_or_else(|| days.to_string()),
        Value::Time64(unit, t) => {
            let us = micros(*unit, *t);
            chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                ((us % 1_000_000) * 1000) as u32,
            )
            .map(|t| t.to_string())
            .unwrap_or_else(|| us.to_string())
        }
        Value::List(items) | Value::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Value::Enum(s) => s.clone(),
        Value::Struct(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("'{k}': {}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}={}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Union(inner) => render(inner),
        Value::Interval {
            months,
            days,
            nanos,
        } => format!("{months} months {days} days {}us", nanos / 1000),
        other => format!("{other:?}"),
    }
}

/// Splits SQL text into statements at `;`, respecting quotes and comments. Returns each
/// statement with the line it starts on; empty statements are dropped.
pub fn split_statements(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start_line = None;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                start_line.get_or_insert(line);
                current.push(c);
                while let Some(d) = chars.next() {
                    current.push(d);
                    if d == '\n' {
                        line += 1;
                    }
                    if d == c {
                        if chars.peek() == Some(&c) {
                            current.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        line += 1;
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if d == '\n' {
                        line += 1;
                    }
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                current.push(' ');
            }
            ';' => {
                let stmt = current.trim().to_owned();
                if !stmt.is_empty() {
                    out.push((start_line.unwrap_or(line), stmt));
                }
                current.clear();
                start_line = None;
            }
            _ => {
                if c == '\n' {
                    line += 1;
                } else if !c.is_whitespace() {
                    start_line.get_or_insert(line);
                }
                current.push(c);
            }
        }
    }
    let stmt = current.trim().to_owned();
    if !stmt.is_empty() {
        out.push((start_line.unwrap_or(line), stmt));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let text = "-- intro; not a statement\nSELECT 'a;b';\n\n/* block; */ SELECT \"x;y\" FROM t;\nSELECT 'it''s; fine'";
        let got = split_statements(text);
        assert_eq!(
            got,
            vec![
                (2, "SELECT 'a;b'".to_owned()),
                (4, "SELECT \"x;y\" FROM t".to_owned()),
                (5, "SELECT 'it''s; fine'".to_owned()),
            ]
        );
    }

    #[test]
    fn renders_a_query_as_a_table() {
        let conn = Connection::open_in_memory().unwrap();
        let mut out = Vec::new();
        print_query(
            &conn,
            "SELECT 1 AS n, 'x' AS s, DATE '2024-02-29' AS d, NULL AS z",
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("n | s | d          | z"), "{text}");
        let mut zoned = Vec::new();
        print_query(
            &conn,
            "SELECT TIMESTAMPTZ '2026-12-02 10:00:00.5+02' AS at, TIMESTAMP '2026-12-02 10:00:00' AS naive",
            &mut zoned,
        )
        .unwrap();
        let zoned = String::from_utf8(zoned).unwrap();
        assert!(
            zoned.contains("2026-12-02 08:00:00.500+00 | 2026-12-02 10:00:00\n"),
            "{zoned}"
        );
        assert!(text.contains("1 | x | 2024-02-29 | NULL"), "{text}");
        assert!(text.ends_with("(1 row)\n"), "{text}");
    }
}
