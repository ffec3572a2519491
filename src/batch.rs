//! What is waiting to be flushed: per-table row buffers and, per topic-partition, the offset
//! range they cover. Pure data and pure decisions: no I/O and no clocks (time is passed in).
//!
//! Contract: a [`Batch`] covers a contiguous run of each partition's records from the first
//! offset it saw to the last; every record offset passed to [`Batch::put`] or
//! [`Batch::skip_record`] ends up in the next flush's offsets, rows or not.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::decode::{ColumnType, Datum, Row};

/// Identifies one partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// The offsets one flush covers in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRange {
    pub first: i64,
    pub last: i64,
    pub records: u64,
    /// Newest Kafka record timestamp seen (ms since epoch).
    pub max_timestamp_ms: Option<i64>,
    /// Timestamp of the record at `last`: stored with the offsets so a restart can tell
    /// whether the log still holds the same records (topic deleted and recreated).
    pub last_timestamp_ms: Option<i64>,
}

impl OffsetRange {
    /// The offset the next record of this partition has: what the lake stores.
    pub fn next_offset(&self) -> i64 {
        self.last + 1
    }
}

/// Rows for one table, columnar by name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TableBatch {
    pub columns: Vec<(String, ColumnType)>,
    index: HashMap<String, usize>,
    /// Each row holds one value per column known when it was added; shorter rows end in nulls.
    pub rows: Vec<Vec<Datum>>,
}

impl TableBatch {
    /// Value of column `col` in `row`, null past the row's end.
    pub fn value(&self, row: usize, col: usize) -> &Datum {
        self.rows[row].get(col).unwrap_or(&Datum::Null)
    }

    fn put(&mut self, row: Row) -> Result<(), String> {
        // Check every cell before changing anything, so a rejected record leaves no trace.
        let mut plan = Vec::with_capacity(row.cells.len());
        for cell in &row.cells {
            let Some(ty) = cell.ty else {
                plan.push(self.index.get(&cell.name).copied());
                continue;
            };
            match self.index.get(&cell.name) {
                Some(&i) => {
                    let current = self.columns[i].1;
                    if current.unify(&ty).is_none() {
                        return Err(format!(
                            "field `{}` is {ty} here but {current} in earlier records of this batch",
                            cell.name
                        ));
                    }
                    plan.push(Some(i));
                }
                None => plan.push(None),
            }
        }
        let mut values = vec![Datum::Null; self.columns.len()];
        for (cell, slot) in row.cells.into_iter().zip(plan) {
            let i = match (slot, cell.ty) {
                (Some(i), ty) => {
                    if let Some(ty) = ty {
                        let current = self.columns[i].1;
                        self.columns[i].1 = current.unify(&ty).unwrap_or(current);
                    }
                    i
                }
                // A name seen earlier in this same record (a JSON object with a duplicate
                // key): the last value wins, as in JSON parsers generally.
                (None, Some(ty)) if self.index.contains_key(&cell.name) => {
                    let i = self.index[&cell.name];
                    let current = self.columns[i].1;
                    self.columns[i].1 = current.unify(&ty).unwrap_or(ty);
                    i
                }
                (None, Some(ty)) => {
                    let i = self.columns.len();
                    self.index.insert(cell.name.clone(), i);
                    self.columns.push((cell.name, ty));
                    values.push(Datum::Null);
                    i
                }
                // An untyped null for a column nobody has seen yet: nothing to store.
                (None, None) => continue,
            };
            values[i] = cell.value;
        }
        self.rows.push(values);
        Ok(())
    }
}

/// Limits that make a batch flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushLimits {
    pub max_records: usize,
    pub max_bytes: usize,
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    Records,
    Bytes,
    Interval,
}

impl FlushReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Records => "records",
            Self::Bytes => "bytes",
            Self::Interval => "interval",
        }
    }
}

#[derive(Debug, Default)]
pub struct Batch {
    pub tables: BTreeMap<String, TableBatch>,
    pub offsets: BTreeMap<TopicPartition, OffsetRange>,
    records: usize,
    bytes: usize,
    opened_at: Option<Instant>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn records(&self) -> usize {
        self.records
    }

    fn note(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        timestamp_ms: Option<i64>,
        bytes: usize,
        now: Instant,
    ) {
        self.records += 1;
        self.bytes += bytes;
        self.opened_at.get_or_insert(now);
        if !self.offsets.contains_key(tp) {
            self.offsets.insert(
                tp.clone(),
                OffsetRange {
                    first: offset,
                    last: offset,
                    records: 0,
                    max_timestamp_ms: None,
                    last_timestamp_ms: None,
                },
            );
        }
        let Some(range) = self.offsets.get_mut(tp) else {
            return;
        };
        if offset >= range.last {
            range.last = offset;
            range.last_timestamp_ms = timestamp_ms;
        }
        range.records += 1;
        if let Some(ts) = timestamp_ms {
            range.max_timestamp_ms = Some(range.max_timestamp_ms.map_or(ts, |m| m.max(ts)));
        }
    }

    /// Adds a decoded row for `table`. On error the batch is unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn put(
        &mut self,
        table: &str,
        row: Row,
        tp: &TopicPartition,
        offset: i64,
        timestamp_ms: Option<i64>,
        bytes: usize,
        now: Instant,
    ) -> Result<(), String> {
        if !self.tables.contains_key(table) {
            self.tables.insert(table.to_owned(), TableBatch::default());
        }
        let buffer = self.tables.get_mut(table).ok_or("table buffer vanished")?;
        buffer.put(row)?;
        self.note(tp, offset, timestamp_ms, bytes, now);
        Ok(())
    }

    /// Counts a record that produces no row (a tombstone), so its offset is still committed.
    pub fn skip_record(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        timestamp_ms: Option<i64>,
        now: Instant,
    ) {
        self.note(tp, offset, timestamp_ms, 0, now);
    }

    /// Why the batch should be flushed now, if it should.
    pub fn flush_reason(&self, now: Instant, limits: &FlushLimits) -> Option<FlushReason> {
        let opened = self.opened_at?;
        if self.records >= limits.max_records {
            Some(FlushReason::Records)
        } else if self.bytes >= limits.max_bytes {
            Some(FlushReason::Bytes)
        } else if now.saturating_duration_since(opened) >= limits.interval {
            Some(FlushReason::Interval)
        } else {
            None
        }
    }

    /// When the interval trigger fires for what is buffered now (`None` when empty).
    pub fn deadline(&self, limits: &FlushLimits) -> Option<Instant> {
        self.opened_at.map(|t| t + limits.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Cell;

    fn row(cells: &[(&str, Option<ColumnType>, Datum)]) -> Row {
        Row {
            cells: cells
                .iter()
                .map(|(n, t, v)| Cell {
                    name: (*n).to_owned(),
                    ty: *t,
                    value: v.clone(),
                })
                .collect(),
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: p,
        }
    }

    const LIMITS: FlushLimits = FlushLimits {
        max_records: 3,
        max_bytes: 1000,
        interval: Duration::from_secs(5),
    };

    #[test]
    fn new_fields_add_columns_and_earlier_rows_read_null() {
        let now = Instant::now();
        let mut b = Batch::default();
        b.put(
            "t",
            row(&[("a", Some(ColumnType::BigInt), Datum::Int(1))]),
            &tp(0),
            10,
            Some(5),
            10,
            now,
        )
        .unwrap();
        b.put(
            "t",
            row(&[
                ("a", Some(ColumnType::Double), Datum::Float(2.5)),
                ("b", Some(ColumnType::Varchar), Datum::Text("x".into())),
            ]),
            &tp(0),
            11,
            Some(3),
            10,
            now,
        )
        .unwrap();
        let t = &b.tables["t"];
        assert_eq!(
            t.columns,
            vec![
                ("a".into(), ColumnType::Double),
                ("b".into(), ColumnType::Varchar)
            ]
        );
        assert_eq!(t.value(0, 1), &Datum::Null);
        assert_eq!(t.value(1, 1), &Datum::Text("x".into()));
        assert_eq!(
            b.offsets[&tp(0)],
            OffsetRange {
                first: 10,
                last: 11,
                records: 2,
                max_timestamp_ms: Some(5),
                last_timestamp_ms: Some(3),
            }
        );
        assert_eq!(b.offsets[&tp(0)].next_offset(), 12);
    }

    #[test]
    fn a_conflicting_record_leaves_the_batch_unchanged() {
        let now = Instant::now();
        let mut b = Batch::default();
        b.put(
            "t",
            row(&[("a", Some(ColumnType::BigInt), Datum::Int(1))]),
            &tp(0),
            0,
            None,
            1,
            now,
        )
        .unwrap();
        let before = b.tables["t"].clone();
        let err = b
            .put(
                "t",
                row(&[
                    ("z", Some(ColumnType::Boolean), Datum::Bool(true)),
                    ("a", Some(ColumnType::Varchar), Datum::Text("no".into())),
                ]),
                &tp(0),
                1,
                None,
                1,
                now,
            )
            .unwrap_err();
        assert!(
            err.contains("field `a` is VARCHAR here but BIGINT"),
            "{err}"
        );
        assert_eq!(b.tables["t"], before);
        assert_eq!(b.offsets[&tp(0)].last, 0);
    }

    #[test]
    fn a_duplicate_key_in_one_record_makes_one_column() {
        let mut b = Batch::default();
        b.put(
            "t",
            row(&[
                ("a", Some(ColumnType::BigInt), Datum::Int(1)),
                ("a", Some(ColumnType::BigInt), Datum::Int(2)),
            ]),
            &tp(0),
            0,
            None,
            1,
            Instant::now(),
        )
        .unwrap();
        assert_eq!(
            b.tables["t"].columns,
            vec![("a".into(), ColumnType::BigInt)]
        );
        assert_eq!(b.tables["t"].rows, vec![vec![Datum::Int(2)]]);
    }

    #[test]
    fn untyped_nulls_add_no_column() {
        let mut b = Batch::default();
        b.put(
            "t",
            row(&[("a", None, Datum::Null)]),
            &tp(0),
            0,
            None,
            1,
            Instant::now(),
        )
        .unwrap();
        assert!(b.tables["t"].columns.is_empty());
        assert_eq!(b.tables["t"].rows.len(), 1);
    }

    #[test]
    fn flush_triggers_by_records_bytes_and_age() {
        let t0 = Instant::now();
        let mut b = Batch::default();
        assert_eq!(b.flush_reason(t0, &LIMITS), None);
        assert_eq!(b.deadline(&LIMITS), None);
        b.skip_record(&tp(0), 0, None, t0);
        assert_eq!(b.flush_reason(t0, &LIMITS), None);
        assert_eq!(
            b.flush_reason(t0 + Duration::from_secs(5), &LIMITS),
            Some(FlushReason::Interval)
        );
        assert_eq!(b.deadline(&LIMITS), Some(t0 + Duration::from_secs(5)));
        b.put("t", row(&[]), &tp(1), 0, None, 2000, t0).unwrap();
        assert_eq!(b.flush_reason(t0, &LIMITS), Some(FlushReason::Bytes));
        b.skip_record(&tp(1), 1, None, t0);
        assert_eq!(b.flush_reason(t0, &LIMITS), Some(FlushReason::Records));
    }
}
