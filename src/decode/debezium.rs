//! Debezium's record shapes, recognised in a decoded value: the change-event envelope
//! (`before`, `after`, `source`, `op`, `ts_ms`), the flattened form written by the
//! `ExtractNewRecordState` transform (`__deleted`, `__op`, …), and the records that are not
//! rows at all (heartbeats, transaction metadata, schema changes, logical messages).
//!
//! Nothing here decides what to do with a change; [`super::RecordDecoder`] does.

use super::{Cell, ColumnType, Datum, DecodeError, Row};

/// Whether values are Debezium envelopes (`cdc.envelope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeMode {
    /// Recognise envelopes and the flattened form by their fields; anything else is a row.
    Auto,
    /// Every value must be a Debezium change event (or a control record).
    Debezium,
    /// Values are rows as they are, even if they look like envelopes.
    None,
}

/// What a change event does (`op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `c`
    Create,
    /// `r`: a snapshot read.
    Read,
    /// `u`
    Update,
    /// `d`
    Delete,
    /// `t`
    Truncate,
}

/// Where a change came from, as Debezium's `source` block says: routing placeholders and the
/// source position (kept for ordering and diagnostics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceInfo {
    pub db: Option<String>,
    pub schema: Option<String>,
    pub table: Option<String>,
    /// When the change happened in the source database.
    pub ts_ms: Option<i64>,
    /// The log position's parts, moved out of the block as they are (formatting them for
    /// every change was ≈ 1 % of a change's decode, and is rarely wanted): MySQL's binlog
    /// `file`, `pos` and `gtid`, PostgreSQL's `lsn`. See [`position`](Self::position).
    pub file: Option<String>,
    pub pos: Option<i64>,
    pub lsn: Option<i64>,
    pub gtid: Option<String>,
}

impl SourceInfo {
    /// Log position: MySQL `file:pos` (and `gtid`), PostgreSQL `lsn`.
    pub fn position(&self) -> Option<String> {
        match (&self.file, self.pos, self.lsn, &self.gtid) {
            (_, _, Some(lsn), _) => Some(format!("lsn {lsn}")),
            (Some(file), Some(pos), _, Some(gtid)) => Some(format!("{file}:{pos} gtid {gtid}")),
            (Some(file), Some(pos), _, None) => Some(format!("{file}:{pos}")),
            _ => None,
        }
    }
}

/// A decoded value, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Change {
        op: Op,
        before: Option<Row>,
        after: Option<Row>,
        source: Option<SourceInfo>,
    },
    /// `ExtractNewRecordState` output: the row (control fields removed) and whether it
    /// marks a delete.
    Flattened {
        row: Row,
        deleted: bool,
        source: Option<SourceInfo>,
    },
    /// Not a row: what it is.
    Control(&'static str),
    Plain(Row),
}

fn cell<'r>(row: &'r Row, name: &str) -> Option<&'r Cell> {
    row.cells.iter().find(|c| c.name == name)
}

fn text(cell: Option<&Cell>) -> Option<&str> {
    match cell.map(|c| &c.value) {
        Some(Datum::Text(s)) => Some(s),
        _ => None,
    }
}

/// A struct cell (schema'd JSON) or nested object (schemaless) as a row; `None` for null.
fn nested_row(cell: Cell) -> Result<Option<Row>, String> {
    match (cell.value, cell.ty) {
        (Datum::Null, _) => Ok(None),
        (Datum::Object(row), _) => Ok(Some(row)),
        (Datum::Struct(values), Some(ColumnType::Struct(fields))) => Ok(Some(Row {
            cells: fields
                .iter()
                .zip(values)
                .map(|((name, ty), value)| Cell {
                    name: name.clone(),
                    ty: Some(ty.clone()),
                    value,
                })
                .collect(),
        })),
        _ => Err(format!("`{}` is not a struct", cell.name)),
    }
}

/// The fields of a Debezium `source` block the sink reads ([`source_info`]): decoders reading
/// envelopes skip the others.
pub const SOURCE_FIELDS: [&str; 8] = [
    "db", "schema", "table", "ts_ms", "file", "pos", "gtid", "lsn",
];

fn source_info(block: Option<Cell>) -> Option<SourceInfo> {
    let row = block.and_then(|c| nested_row(c).ok().flatten())?;
    // One pass, moving the values out (the first of a repeated name counts).
    fn set<T>(slot: &mut Option<T>, value: T) {
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    let mut info = SourceInfo::default();
    for cell in row.cells {
        match (cell.name.as_str(), cell.value) {
            ("db", Datum::Text(t)) => set(&mut info.db, t),
            ("schema", Datum::Text(t)) => set(&mut info.schema, t),
            ("table", Datum::Text(t)) => set(&mut info.table, t),
            ("file", Datum::Text(t)) => set(&mut info.file, t),
            ("gtid", Datum::Text(t)) => set(&mut info.gtid, t),
            ("ts_ms", Datum::Int(i)) => set(&mut info.ts_ms, i),
            ("pos", Datum::Int(i)) => set(&mut info.pos, i),
            ("lsn", Datum::Int(i)) => set(&mut info.lsn, i),
            _ => {}
        }
    }
    Some(info)
}

fn take(row: &mut Row, name: &str) -> Option<Cell> {
    let i = row.cells.iter().position(|c| c.name == name)?;
    Some(row.cells.remove(i))
}

/// The field names `classify` looks at, as bits: one pass over a record's cells finds them
/// all (a linear search per name was ≈ 1 % of the CPU of a plain JSON append).
mod mark {
    pub const OP: u16 = 1;
    pub const SOURCE: u16 = 1 << 1;
    pub const AFTER: u16 = 1 << 2;
    pub const BEFORE: u16 = 1 << 3;
    pub const STATUS: u16 = 1 << 4;
    pub const ID: u16 = 1 << 5;
    pub const EVENT_COUNT: u16 = 1 << 6;
    pub const DATA_COLLECTIONS: u16 = 1 << 7;
    pub const DDL: u16 = 1 << 8;
    pub const TABLE_CHANGES: u16 = 1 << 9;
    pub const DATABASE_NAME: u16 = 1 << 10;
    pub const DELETED: u16 = 1 << 11;
    pub const FLAT_OP: u16 = 1 << 12;
}

fn marks(row: &Row) -> u16 {
    row.cells.iter().fold(0, |m, c| {
        m | match c.name.as_str() {
            "op" => mark::OP,
            "source" => mark::SOURCE,
            "after" => mark::AFTER,
            "before" => mark::BEFORE,
            "status" => mark::STATUS,
            "id" => mark::ID,
            "event_count" => mark::EVENT_COUNT,
            "data_collections" => mark::DATA_COLLECTIONS,
            "ddl" => mark::DDL,
            "tableChanges" => mark::TABLE_CHANGES,
            "databaseName" => mark::DATABASE_NAME,
            "__deleted" => mark::DELETED,
            "__op" => mark::FLAT_OP,
            _ => 0,
        }
    })
}

/// Classifies a decoded value. `topic` tells heartbeats apart.
pub fn classify(mut row: Row, mode: EnvelopeMode, topic: &str) -> Result<Shape, DecodeError> {
    if mode == EnvelopeMode::None {
        return Ok(Shape::Plain(row));
    }
    if topic.starts_with("__debezium-heartbeat") {
        return Ok(Shape::Control("heartbeat"));
    }
    let marks = marks(&row);
    let has = |bits: u16| marks & bits != 0;
    let op = if has(mark::OP) {
        text(cell(&row, "op")).map(str::to_owned)
    } else {
        None
    };
    let envelope_fields = has(mark::SOURCE) && has(mark::AFTER | mark::BEFORE);
    if let Some(op) = op.filter(|_| envelope_fields || mode == EnvelopeMode::Debezium) {
        let op = match op.as_str() {
            "c" => Op::Create,
            "r" => Op::Read,
            "u" => Op::Update,
            "d" => Op::Delete,
            "t" => Op::Truncate,
            "m" => return Ok(Shape::Control("logical decoding message")),
            other => {
                return Err(DecodeError::Shape(format!(
                    "Debezium change event with unknown op `{other}`"
                )))
            }
        };
        let field = |row: &mut Row, name: &str| {
            take(row, name)
                .map(nested_row)
                .transpose()
                .map(Option::flatten)
                .map_err(|m| DecodeError::Shape(format!("Debezium change event: {m}")))
        };
        let before = field(&mut row, "before")?;
        let after = field(&mut row, "after")?;
        let source = source_info(take(&mut row, "source"));
        return Ok(Shape::Change {
            op,
            before,
            after,
            source,
        });
    }
    if envelope_fields {
        return Err(DecodeError::Shape(
            "Debezium change event without `op` (it has `source` and `before`/`after`)".into(),
        ));
    }
    if has(mark::STATUS) && has(mark::ID) && has(mark::EVENT_COUNT | mark::DATA_COLLECTIONS) {
        return Ok(Shape::Control("transaction metadata"));
    }
    if has(mark::DDL) && has(mark::TABLE_CHANGES | mark::DATABASE_NAME) {
        return Ok(Shape::Control("schema change"));
    }
    if has(mark::DELETED | mark::FLAT_OP) {
        let deleted = match take(&mut row, "__deleted").map(|c| c.value) {
            Some(Datum::Bool(b)) => b,
            Some(Datum::Text(t)) => t.eq_ignore_ascii_case("true"),
            _ => false,
        } || text(cell(&row, "__op")) == Some("d");
        let source = Some(SourceInfo {
            db: text(cell(&row, "__db")).map(str::to_owned),
            schema: text(cell(&row, "__schema")).map(str::to_owned),
            table: text(cell(&row, "__table")).map(str::to_owned),
            ts_ms: match cell(&row, "__source_ts_ms").map(|c| &c.value) {
                Some(Datum::Int(i)) => Some(*i),
                _ => None,
            },
            ..SourceInfo::default()
        });
        return Ok(Shape::Flattened {
            row,
            deleted,
            source,
        });
    }
    if mode == EnvelopeMode::Debezium {
        return Err(DecodeError::Shape(
            "not a Debezium change event (no `op`); cdc.envelope=debezium expects Debezium's envelope or the ExtractNewRecordState form".into(),
        ));
    }
    Ok(Shape::Plain(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json::JsonDecoder;
    use crate::decode::Data;

    fn shape(json: &str, schemas: bool, mode: EnvelopeMode) -> Result<Shape, DecodeError> {
        let Data::Row(row) = JsonDecoder::new(schemas).decode(json.as_bytes()).unwrap() else {
            panic!("not a row")
        };
        classify(row, mode, "dbserver1.inventory.customers")
    }

    #[test]
    fn source_positions_read_as_debezium_writes_them() {
        let with = |source: &str| {
            let json =
                format!(r#"{{"before":null,"after":{{"id":1}},"source":{source},"op":"c"}}"#);
            match shape(&json, false, EnvelopeMode::Auto).unwrap() {
                Shape::Change { source, .. } => source.unwrap().position(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            with(r#"{"file":"mysql-bin.000003","pos":154,"gtid":"a:1-5","db":"d"}"#).as_deref(),
            Some("mysql-bin.000003:154 gtid a:1-5")
        );
        assert_eq!(
            with(r#"{"file":"mysql-bin.000003","pos":154,"gtid":null}"#).as_deref(),
            Some("mysql-bin.000003:154")
        );
        assert_eq!(
            with(r#"{"lsn":7,"file":"x","pos":1}"#).as_deref(),
            Some("lsn 7")
        );
        assert_eq!(with(r#"{"file":"x"}"#), None);
    }

    #[test]
    fn schemaless_envelope_unwraps_rows_and_source() {
        let s = shape(
            r#"{"before":null,"after":{"id":1004,"first_name":"Anne","address":{"city":"x"}},
               "source":{"version":"2.7.0.Final","connector":"mysql","name":"dbserver1","ts_ms":1559033904000,"snapshot":"false","db":"inventory","table":"customers","server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":154,"row":0,"thread":7,"query":null},
               "op":"c","ts_ms":1559033904863}"#,
            false,
            EnvelopeMode::Auto,
        )
        .unwrap();
        let Shape::Change {
            op,
            before,
            after,
            source,
        } = s
        else {
            panic!("{s:?}")
        };
        assert_eq!(op, Op::Create);
        assert_eq!(before, None);
        let after = after.unwrap();
        assert_eq!(after.cells[0].name, "id");
        assert_eq!(after.cells[0].value, Datum::Int(1004));
        assert!(matches!(after.cells[2].value, Datum::Object(_)));
        let source = source.unwrap();
        assert_eq!(source.db.as_deref(), Some("inventory"));
        assert_eq!(source.table.as_deref(), Some("customers"));
        assert_eq!(source.ts_ms, Some(1_559_033_904_000));
        assert_eq!(source.position().as_deref(), Some("mysql-bin.000003:154"));
    }

    #[test]
    fn control_records_and_plain_rows() {
        assert_eq!(
            shape(
                r#"{"status":"BEGIN","id":"571:53195829","event_count":null,"data_collections":null,"ts_ms":1}"#,
                false,
                EnvelopeMode::Auto
            ),
            Ok(Shape::Control("transaction metadata"))
        );
        assert_eq!(
            shape(
                r#"{"source":{"server":"dbserver1"},"position":{},"databaseName":"inventory","ddl":"CREATE TABLE x (id INT)","tableChanges":[]}"#,
                false,
                EnvelopeMode::Auto
            ),
            Ok(Shape::Control("schema change"))
        );
        assert!(matches!(
            shape(r#"{"id":1,"op":"c"}"#, false, EnvelopeMode::Auto),
            Ok(Shape::Plain(_))
        ));
        assert!(matches!(
            shape(r#"{"id":1}"#, false, EnvelopeMode::Debezium),
            Err(DecodeError::Shape(_))
        ));
        assert!(matches!(
            shape(
                r#"{"before":null,"after":{"id":1},"source":{}}"#,
                false,
                EnvelopeMode::Auto
            ),
            Err(DecodeError::Shape(m)) if m.contains("without `op`")
        ));
        assert!(matches!(
            shape(
                r#"{"before":null,"after":{"id":1},"source":{},"op":"x"}"#,
                false,
                EnvelopeMode::Auto
            ),
            Err(DecodeError::Shape(m)) if m.contains("unknown op `x`")
        ));
        // cdc.envelope=none keeps even an envelope as a plain row.
        assert!(matches!(
            shape(
                r#"{"before":null,"after":{"id":1},"source":{},"op":"c"}"#,
                false,
                EnvelopeMode::None
            ),
            Ok(Shape::Plain(_))
        ));
    }

    #[test]
    fn flattened_form_marks_deletes() {
        let Ok(Shape::Flattened {
            row,
            deleted,
            source,
        }) = shape(
            r#"{"id":1,"name":"x","__op":"d","__table":"customers","__source_ts_ms":5,"__deleted":"true"}"#,
            false,
            EnvelopeMode::Auto,
        )
        else {
            panic!()
        };
        assert!(deleted);
        assert!(row.cells.iter().all(|c| c.name != "__deleted"));
        assert_eq!(source.unwrap().table.as_deref(), Some("customers"));
        let Ok(Shape::Flattened { deleted, .. }) =
            shape(r#"{"id":1,"__deleted":"false"}"#, false, EnvelopeMode::Auto)
        else {
            panic!()
        };
        assert!(!deleted);
    }
}
