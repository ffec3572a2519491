//! What is waiting to be flushed: per-table row buffers and, per topic-partition, the offset
//! range they cover. Pure data and pure decisions: no I/O and no clocks (time is passed in).
//!
//! Contract: a [`Batch`] covers a contiguous run of each partition's records from the first
//! offset it saw to the last; every record offset passed to [`Batch::put`] or
//! [`Batch::skip_record`] ends up in the next flush's offsets, rows or not.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::decode::{Change, ColumnType, Datum, Name, Row};
pub use crate::offsets::OffsetRange;
use crate::shape::{fit, Evolution, TableColumns};
use crate::FastMap;

/// Identifies one partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

fn case_twins(a: &str, b: &str) -> String {
    format!("fields `{a}` and `{b}` differ only in case; DuckDB column names are case-insensitive, so they cannot be two columns")
}

/// What a buffered row of a keyed table does at flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOp {
    /// Replace the row with this key (delete it, then insert this row).
    Upsert,
    /// Delete the row with this key; only the key columns are set.
    Delete,
}

/// Rows for one table, columnar by name.
///
/// Append tables keep every row. Keyed tables (upserts) keep one row per primary key — the
/// last change in partition order — so a flush applies each key once.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TableBatch {
    pub columns: Vec<(String, ColumnType)>,
    /// Per column, the name of the field it was last matched to: decoders share one name
    /// between records, so the next record's field finds its column by pointer.
    names: Vec<Name>,
    index: FastMap<String, usize>,
    /// Lower-cased column name → column.
    folded: FastMap<String, usize>,
    /// Per column, the last record (stamp) that set it: finds two fields of one record
    /// going into one column.
    seen: Vec<u64>,
    stamp: u64,
    /// Field position in the last record → the column it went into (a guess checked by
    /// name, so a record with another field order only costs the hash lookups).
    positions: Vec<usize>,
    /// Scratch for `row_values`' plan, kept between records (one allocation fewer each).
    plan: Vec<(Option<usize>, bool)>,
    /// Each row holds one value per column known when it was added; shorter rows end in nulls.
    pub rows: Vec<Vec<Datum>>,
    /// Keyed tables: the primary key columns, and what each row does.
    pub key: Option<Vec<String>>,
    pub ops: Vec<RowOp>,
    /// Keyed tables: encoded key → its row.
    slots: FastMap<Vec<u8>, usize>,
    /// A truncate came before the buffered rows: every row of the table goes first.
    pub truncate: bool,
}

impl TableBatch {
    /// Value of column `col` in `row`, null past the row's end.
    pub fn value(&self, row: usize, col: usize) -> &Datum {
        self.rows[row].get(col).unwrap_or(&Datum::Null)
    }

    /// Rows that insert (everything but deletes).
    pub fn inserts(&self) -> usize {
        if self.key.is_none() {
            self.rows.len()
        } else {
            self.ops.iter().filter(|op| **op == RowOp::Upsert).count()
        }
    }

    /// Keys to delete without a replacement.
    pub fn deletes(&self) -> usize {
        self.ops.iter().filter(|op| **op == RowOp::Delete).count()
    }

    /// Checks `row` against the columns seen so far and against the lake table, and returns
    /// its values in column order, adding columns for new fields. On error nothing changed.
    ///
    /// The lake check runs only when a batch column is new or widens, so the steady state
    /// (every record of the usual shape) costs nothing extra.
    fn row_values(&mut self, row: Row, target: &Target<'_>) -> Result<Vec<Datum>, String> {
        // Check every cell before changing anything, so a rejected record leaves no trace.
        self.stamp += 1;
        let mut plan = std::mem::take(&mut self.plan);
        plan.clear();
        // Lower-cased names of the new columns this record brings (rarely any).
        let mut new_names: Vec<(String, &str)> = Vec::new();
        for (n, cell) in row.cells.iter().enumerate() {
            // Records of one table usually repeat the field order of the one before: try
            // the column this position went to last time before hashing the name.
            let guess = self.positions.get(n).copied();
            let slot = match guess {
                Some(i) if self.names.get(i).is_some_and(|name| name.same(&cell.name)) => Some(i),
                Some(i)
                    if self
                        .columns
                        .get(i)
                        .is_some_and(|(name, _)| *name == *cell.name) =>
                {
                    Some(i)
                }
                _ => self.column_of(&cell.name),
            };
            if let Some(i) = slot {
                if self.seen[i] == self.stamp {
                    // A second field of this record for the same column: an exact duplicate
                    // (a JSON object repeating a key, the last value wins), or two names
                    // that differ only in case, which DuckDB cannot keep apart.
                    let twin = row.cells[..n]
                        .iter()
                        .find(|c| self.column_of(&c.name) == Some(i) && *c.name != *cell.name);
                    if let Some(twin) = twin {
                        return Err(case_twins(&twin.name, &cell.name));
                    }
                }
                self.seen[i] = self.stamp;
            }
            let Some(ty) = &cell.ty else {
                plan.push((slot, false));
                continue;
            };
            match slot {
                Some(i) => {
                    let current = &self.columns[i].1;
                    let differs = !current.same(ty);
                    if differs {
                        let Some(unified) = current.unify(ty) else {
                            return Err(format!(
                                "field `{}` is {ty} here but {current} in earlier records of this batch",
                                cell.name
                            ));
                        };
                        if unified != *current {
                            target.check(&cell.name, &unified)?;
                        }
                    }
                    plan.push((Some(i), differs));
                }
                None => {
                    let folded = cell.name.to_lowercase();
                    if let Some((_, twin)) = new_names
                        .iter()
                        .find(|(f, exact)| *f == folded && *exact != cell.name.as_str())
                    {
                        return Err(case_twins(twin, &cell.name));
                    }
                    new_names.push((folded, cell.name.as_str()));
                    target.check(&cell.name, ty)?;
                    plan.push((None, false));
                }
            }
        }
        let mut values = Vec::with_capacity(self.columns.len());
        values.resize_with(self.columns.len(), || Datum::Null);
        for (n, (cell, &(slot, differs))) in row.cells.into_iter().zip(&plan).enumerate() {
            let i = match (slot, cell.ty) {
                (Some(i), ty) => {
                    // The type was compared in the check above.
                    if let Some(ty) = ty.filter(|_| differs) {
                        let current = &self.columns[i].1;
                        self.columns[i].1 = current.unify(&ty).unwrap_or_else(|| current.clone());
                    }
                    i
                }
                // A name seen earlier in this same record (a JSON object with a duplicate
                // key): the last value wins, as in JSON parsers generally.
                (None, Some(ty)) if self.index.contains_key(cell.name.as_str()) => {
                    let i = self.index[cell.name.as_str()];
                    let current = &self.columns[i].1;
                    self.columns[i].1 = current.unify(&ty).unwrap_or(ty);
                    i
                }
                (None, Some(ty)) => {
                    let i = self.columns.len();
                    self.index.insert(cell.name.to_string(), i);
                    self.folded.insert(cell.name.to_lowercase(), i);
                    self.columns.push((cell.name.to_string(), ty));
                    self.names.push(cell.name.clone());
                    self.seen.push(self.stamp);
                    values.push(Datum::Null);
                    i
                }
                // An untyped null for a column nobody has seen yet: nothing to store.
                (None, None) => continue,
            };
            if !self.names[i].same(&cell.name) {
                self.names[i] = cell.name;
            }
            if let Some(p) = self.positions.get_mut(n) {
                *p = i;
            } else if self.positions.len() == n {
                self.positions.push(i);
            }
            values[i] = cell.value;
        }
        self.plan = plan;
        Ok(values)
    }

    /// The column a field name goes into: DuckDB identifiers are case-insensitive, so
    /// `Name` and `name` are one column.
    fn column_of(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        let i = *self.folded.get(&name.to_lowercase())?;
        // Remember this spelling: the next record finds it without folding.
        self.index.insert(name.to_owned(), i);
        Some(i)
    }

    fn append(&mut self, row: Row, target: &Target<'_>) -> Result<(), String> {
        if target.columns.is_none()
            && self.columns.is_empty()
            && row.cells.iter().all(|c| c.ty.is_none())
        {
            return Err(format!(
                "a record without fields (or with only nulls) cannot create table `{}`: it says nothing of its columns",
                target.table
            ));
        }
        let values = self.row_values(row, target)?;
        self.rows.push(values);
        Ok(())
    }

    /// The encoded key of `key`, after checking it names the table's key columns.
    fn slot_key(&mut self, key: &Row) -> Result<Vec<u8>, String> {
        let names: Vec<&str> = key.cells.iter().map(|c| c.name.as_str()).collect();
        match &self.key {
            Some(k) if k.iter().map(String::as_str).ne(names.iter().copied()) => {
                return Err(format!(
                    "the primary key changed from ({}) to ({}) within one table",
                    k.join(", "),
                    names.join(", ")
                ))
            }
            _ => {}
        }
        let mut encoded = Vec::new();
        for cell in &key.cells {
            cell.value
                .encode_key(&mut encoded)
                .map_err(|e| format!("key field `{}`: {e}", cell.name))?;
        }
        if self.key.is_none() {
            self.key = Some(names.iter().map(|n| (*n).to_owned()).collect());
        }
        Ok(encoded)
    }

    /// Keeps `values` as the one change of `key` in this batch.
    fn place(&mut self, encoded: Vec<u8>, values: Vec<Datum>, op: RowOp) {
        match self.slots.get(&encoded) {
            Some(&i) => {
                self.rows[i] = values;
                self.ops[i] = op;
            }
            None => {
                self.slots.insert(encoded, self.rows.len());
                self.rows.push(values);
                self.ops.push(op);
            }
        }
    }

    /// Replaces the row of `key`; with `old_key` (the change moved the row), deletes that
    /// key too. The new row is checked first, and the old key's cells are a subset of its
    /// columns, so a rejected change leaves the buffer as it was.
    fn upsert(
        &mut self,
        key: &Row,
        row: Row,
        old_key: Option<Row>,
        target: &Target<'_>,
    ) -> Result<(), String> {
        let encoded = self.slot_key(key)?;
        let old = old_key
            .map(|old| self.slot_key(&old).map(|enc| (enc, old)))
            .transpose()?;
        let values = self.row_values(row, target)?;
        if let Some((old_encoded, old)) = old {
            let old_values = self.row_values(old, target)?;
            self.place(old_encoded, old_values, RowOp::Delete);
        }
        self.place(encoded, values, RowOp::Upsert);
        Ok(())
    }

    fn delete(&mut self, key: Row, target: &Target<'_>) -> Result<(), String> {
        let encoded = self.slot_key(&key)?;
        let values = self.row_values(key, target)?;
        self.place(encoded, values, RowOp::Delete);
        Ok(())
    }

    /// Everything buffered so far is moot: the table is emptied first.
    fn truncate(&mut self) {
        self.rows.clear();
        self.ops.clear();
        self.slots.clear();
        self.truncate = true;
    }
}

/// The lake table a record goes to, as far as the worker knows it: new columns and wider
/// types are checked against it record by record.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub table: &'a str,
    /// `None`: the table does not exist (yet).
    pub columns: Option<&'a TableColumns>,
    pub evolution: Evolution,
}

impl Target<'_> {
    fn check(&self, column: &str, ty: &ColumnType) -> Result<(), String> {
        fit(self.table, self.columns, column, ty, self.evolution)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Kafka timestamps of one partition's records in a batch, as runs of equal values: what the
/// freshness histogram needs (every committed record's age at commit) in bounded memory and
/// with O(1) work per record. Timestamps are rounded down to multiples of 2^`shift` ms; when
/// there would be more than [`TimestampRuns::MAX_RUNS`] runs, the rounding doubles until at
/// most half of that remain, so a record's age is overstated by less than 2^`shift` ms (within
/// a flush of a few seconds at any rate, a few ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimestampRuns {
    /// (timestamp >> shift, records), in arrival order; equal neighbours are merged.
    runs: Vec<(i64, u64)>,
    shift: u32,
}

impl TimestampRuns {
    pub const MAX_RUNS: usize = 256;

    pub fn add(&mut self, timestamp_ms: i64) {
        if let Some(last) = self.runs.last_mut() {
            if last.0 == timestamp_ms >> self.shift {
                last.1 += 1;
                return;
            }
        }
        if self.runs.len() >= Self::MAX_RUNS {
            self.coarsen();
            if let Some(last) = self.runs.last_mut() {
                if last.0 == timestamp_ms >> self.shift {
                    last.1 += 1;
                    return;
                }
            }
        }
        self.runs.push((timestamp_ms >> self.shift, 1));
    }

    /// Merges equal timestamps wherever they are (order does not matter to the histogram),
    /// then rounds to twice the unit until at most half the runs remain.
    fn coarsen(&mut self) {
        self.runs.sort_unstable_by_key(|r| r.0);
        let mut shift = 0;
        loop {
            let mut merged: Vec<(i64, u64)> = Vec::with_capacity(self.runs.len());
            for (key, n) in self.runs.drain(..) {
                match merged.last_mut() {
                    Some(last) if last.0 == key >> shift => last.1 += n,
                    _ => merged.push((key >> shift, n)),
                }
            }
            self.runs = merged;
            self.shift += shift;
            if self.runs.len() <= Self::MAX_RUNS / 2 || self.shift >= 63 {
                return;
            }
            shift = 1;
        }
    }

    /// (timestamp in ms, rounded down; records with it).
    pub fn runs(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        self.runs.iter().map(|&(key, n)| (key << self.shift, n))
    }

    /// Records counted.
    pub fn records(&self) -> u64 {
        self.runs.iter().map(|r| r.1).sum()
    }
}

/// Where a record sits and what it weighs, for the batch's offset bookkeeping.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub tp: &'a TopicPartition,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub bytes: usize,
    pub now: Instant,
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

/// What became of a batch's records: each is exactly one of these, so they add up to the
/// records consumed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    /// Appends and upserts (an upsert superseded by a later change of its key in the same
    /// flush still counts here: its record was applied).
    pub written: u64,
    /// Deletes (delete events, tombstones that delete).
    pub deleted: u64,
    /// Records that write nothing: tombstones after their delete, disabled deletes or
    /// truncates, control records; truncates themselves count here too.
    pub skipped: u64,
    /// Bad records set aside (`errors.tolerance=all`).
    pub dead_lettered: u64,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub tables: BTreeMap<String, TableBatch>,
    pub offsets: BTreeMap<TopicPartition, OffsetRange>,
    pub accounting: Accounting,
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
                    timestamps: TimestampRuns::default(),
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
            range.timestamps.add(ts);
        }
    }

    /// Adds a record's change to `table`'s buffer. On error the batch is unchanged.
    pub fn put(
        &mut self,
        target: &Target<'_>,
        change: Change,
        at: &Position<'_>,
    ) -> Result<(), String> {
        let table = target.table;
        if let Change::Skip(_) = change {
            self.skip_record(at.tp, at.offset, at.timestamp_ms, at.now);
            return Ok(());
        }
        let written = matches!(change, Change::Append(_) | Change::Upsert { .. });
        let deleted = matches!(change, Change::Delete { .. });
        if !self.tables.contains_key(table) {
            self.tables.insert(table.to_owned(), TableBatch::default());
        }
        let buffer = self.tables.get_mut(table).ok_or("table buffer vanished")?;
        match change {
            Change::Append(row) => buffer.append(row, target)?,
            Change::Upsert { key, row, old_key } => buffer.upsert(&key, row, old_key, target)?,
            Change::Delete { key } => buffer.delete(key, target)?,
            Change::Truncate => buffer.truncate(),
            Change::Skip(_) => {}
        }
        let a = &mut self.accounting;
        if written {
            a.written += 1;
        } else if deleted {
            a.deleted += 1;
        } else {
            a.skipped += 1;
        }
        self.note(at.tp, at.offset, at.timestamp_ms, at.bytes, at.now);
        Ok(())
    }

    /// Counts a bad record set aside (dead-lettered): its offset is committed, nothing written.
    pub fn dead_letter(&mut self, at: &Position<'_>) {
        self.accounting.dead_lettered += 1;
        self.note(at.tp, at.offset, at.timestamp_ms, 0, at.now);
    }

    /// Counts a record that produces no row (a tombstone), so its offset is still committed.
    pub fn skip_record(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        timestamp_ms: Option<i64>,
        now: Instant,
    ) {
        self.accounting.skipped += 1;
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
    use crate::decode::{Cell, Skip};

    fn row(cells: &[(&str, Option<ColumnType>, Datum)]) -> Row {
        Row {
            cells: cells
                .iter()
                .map(|(n, t, v)| Cell {
                    name: (*n).into(),
                    ty: t.clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    fn id(n: i64) -> Row {
        row(&[("id", Some(ColumnType::BigInt), Datum::Int(n))])
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: p,
        }
    }

    /// Puts `change` at `offset` of partition `p` (timestamp `ts`, `bytes` long).
    fn put(
        b: &mut Batch,
        change: Change,
        p: i32,
        offset: i64,
        ts: Option<i64>,
        bytes: usize,
    ) -> Result<(), String> {
        let tp = tp(p);
        b.put(
            &ANY,
            change,
            &Position {
                tp: &tp,
                offset,
                timestamp_ms: ts,
                bytes,
                now: Instant::now(),
            },
        )
    }

    fn append(cells: &[(&str, Option<ColumnType>, Datum)]) -> Change {
        Change::Append(row(cells))
    }

    fn upsert(n: i64, name: &str) -> Change {
        Change::Upsert {
            key: id(n),
            row: row(&[
                ("id", Some(ColumnType::BigInt), Datum::Int(n)),
                ("name", Some(ColumnType::Varchar), Datum::Text(name.into())),
            ]),
            old_key: None,
        }
    }

    /// A table that does not exist yet, with auto.create and auto.evolve.
    const ANY: Target<'static> = Target {
        table: "t",
        columns: None,
        evolution: Evolution {
            auto_create: true,
            auto_evolve: true,
        },
    };

    const LIMITS: FlushLimits = FlushLimits {
        max_records: 3,
        max_bytes: 1000,
        interval: Duration::from_secs(5),
    };

    #[test]
    fn new_fields_add_columns_and_earlier_rows_read_null() {
        let mut b = Batch::default();
        put(
            &mut b,
            append(&[("a", Some(ColumnType::BigInt), Datum::Int(1))]),
            0,
            10,
            Some(5),
            10,
        )
        .unwrap();
        put(
            &mut b,
            append(&[
                ("a", Some(ColumnType::Double), Datum::Float(2.5)),
                ("b", Some(ColumnType::Varchar), Datum::Text("x".into())),
            ]),
            0,
            11,
            Some(3),
            10,
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
                timestamps: {
                    let mut runs = TimestampRuns::default();
                    runs.add(5);
                    runs.add(3);
                    runs
                },
            }
        );
        assert_eq!(b.offsets[&tp(0)].next_offset(), 12);
    }

    #[test]
    fn timestamp_runs_merge_equal_neighbours_and_stay_bounded() {
        let mut runs = TimestampRuns::default();
        for ts in [7, 7, 7, 9, 9, 7] {
            runs.add(ts);
        }
        assert_eq!(
            runs.runs().collect::<Vec<_>>(),
            vec![(7, 3), (9, 2), (7, 1)]
        );

        // 100,000 records over 10 s, one timestamp in ten out of order by up to 50 ms.
        let mut runs = TimestampRuns::default();
        let start = 1_700_000_000_000_i64;
        let mut exact: Vec<i64> = Vec::new();
        for i in 0..100_000_i64 {
            let ts = start + i / 10 - if i % 10 == 3 { i % 50 } else { 0 };
            exact.push(ts);
            runs.add(ts);
        }
        let got: Vec<(i64, u64)> = runs.runs().collect();
        assert!(got.len() <= TimestampRuns::MAX_RUNS, "{} runs", got.len());
        assert_eq!(runs.records(), 100_000);
        // Rounded down by less than the unit: the oldest and newest are within it.
        let unit = 1_i64 << runs.shift;
        assert!(unit <= 128, "unit {unit} ms for a 10 s batch");
        let (oldest, newest) = (exact.iter().min().unwrap(), exact.iter().max().unwrap());
        let (lo, hi) = (
            got.iter().map(|r| r.0).min().unwrap(),
            got.iter().map(|r| r.0).max().unwrap(),
        );
        assert!(lo <= *oldest && oldest - lo < unit, "{lo} vs {oldest}");
        assert!(hi <= *newest && newest - hi < unit, "{hi} vs {newest}");
        // Each record is counted at its own timestamp rounded down.
        let mut want: BTreeMap<i64, u64> = BTreeMap::new();
        for ts in exact {
            *want.entry(ts - ts.rem_euclid(unit)).or_default() += 1;
        }
        let mut have: BTreeMap<i64, u64> = BTreeMap::new();
        for (ts, n) in got {
            *have.entry(ts).or_default() += n;
        }
        assert_eq!(have, want);
    }

    #[test]
    fn fields_in_another_order_still_find_their_columns() {
        let mut b = Batch::default();
        let int = |n| (Some(ColumnType::BigInt), Datum::Int(n));
        let text = |s: &str| (Some(ColumnType::Varchar), Datum::Text(s.into()));
        let records = [
            vec![("a", int(1)), ("b", text("x"))],
            vec![("a", int(2)), ("b", text("y"))],
            vec![("b", text("z")), ("a", int(3))],
            vec![("B", text("w")), ("c", int(9)), ("a", int(4))],
            vec![("c", int(8))],
        ];
        for (offset, cells) in records.iter().enumerate() {
            let cells: Vec<_> = cells
                .iter()
                .map(|(n, (t, v))| (*n, t.clone(), v.clone()))
                .collect();
            put(&mut b, append(&cells), 0, offset as i64, None, 1).unwrap();
        }
        let t = &b.tables["t"];
        let names: Vec<_> = t.columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let column = |c: usize| (0..5).map(|r| t.value(r, c).clone()).collect::<Vec<_>>();
        assert_eq!(
            column(0),
            [1, 2, 3, 4]
                .map(Datum::Int)
                .into_iter()
                .chain([Datum::Null])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            column(1),
            ["x", "y", "z", "w"]
                .map(|s| Datum::Text(s.into()))
                .into_iter()
                .chain([Datum::Null])
                .collect::<Vec<_>>()
        );
        assert_eq!(
            column(2),
            [
                Datum::Null,
                Datum::Null,
                Datum::Null,
                Datum::Int(9),
                Datum::Int(8)
            ]
        );
    }

    #[test]
    fn a_conflicting_record_leaves_the_batch_unchanged() {
        let mut b = Batch::default();
        put(
            &mut b,
            append(&[("a", Some(ColumnType::BigInt), Datum::Int(1))]),
            0,
            0,
            None,
            1,
        )
        .unwrap();
        let before = b.tables["t"].clone();
        let err = put(
            &mut b,
            append(&[
                ("z", Some(ColumnType::Boolean), Datum::Bool(true)),
                ("a", Some(ColumnType::Varchar), Datum::Text("no".into())),
            ]),
            0,
            1,
            None,
            1,
        )
        .unwrap_err();
        assert!(
            err.contains("field `a` is VARCHAR here but BIGINT"),
            "{err}"
        );
        assert_eq!(b.tables["t"].columns, before.columns);
        assert_eq!(b.tables["t"].rows, before.rows);
        assert_eq!(b.offsets[&tp(0)].last, 0);
    }

    #[test]
    fn a_duplicate_key_in_one_record_makes_one_column() {
        let mut b = Batch::default();
        put(
            &mut b,
            append(&[
                ("a", Some(ColumnType::BigInt), Datum::Int(1)),
                ("a", Some(ColumnType::BigInt), Datum::Int(2)),
            ]),
            0,
            0,
            None,
            1,
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
        put(
            &mut b,
            append(&[("b", Some(ColumnType::BigInt), Datum::Int(1))]),
            0,
            0,
            None,
            1,
        )
        .unwrap();
        put(&mut b, append(&[("a", None, Datum::Null)]), 0, 1, None, 1).unwrap();
        assert_eq!(b.tables["t"].columns.len(), 1);
        assert_eq!(b.tables["t"].rows.len(), 2);
        // A table that does not exist cannot be created from records that say nothing.
        let mut b = Batch::default();
        let e = put(&mut b, append(&[("a", None, Datum::Null)]), 0, 0, None, 1).unwrap_err();
        assert!(e.contains("cannot create table `t`"), "{e}");
        let e = put(&mut b, append(&[]), 0, 0, None, 1).unwrap_err();
        assert!(e.contains("cannot create table `t`"), "{e}");
    }

    #[test]
    fn names_differing_only_in_case_are_one_column_or_a_clear_error() {
        let mut b = Batch::default();
        put(
            &mut b,
            append(&[("Name", Some(ColumnType::Varchar), Datum::Text("a".into()))]),
            0,
            0,
            None,
            1,
        )
        .unwrap();
        put(
            &mut b,
            append(&[("name", Some(ColumnType::Varchar), Datum::Text("b".into()))]),
            0,
            1,
            None,
            1,
        )
        .unwrap();
        assert_eq!(
            b.tables["t"].columns,
            vec![("Name".into(), ColumnType::Varchar)]
        );
        let before = b.tables["t"].clone();
        for cells in [
            vec![
                ("name", Some(ColumnType::Varchar), Datum::Text("x".into())),
                ("NAME", Some(ColumnType::Varchar), Datum::Text("y".into())),
            ],
            vec![
                ("new", Some(ColumnType::BigInt), Datum::Int(1)),
                ("NEW", Some(ColumnType::BigInt), Datum::Int(2)),
            ],
        ] {
            let e = put(&mut b, append(&cells), 0, 2, None, 1).unwrap_err();
            assert!(e.contains("differ only in case"), "{e}");
        }
        assert_eq!(b.tables["t"].columns, before.columns);
        assert_eq!(b.tables["t"].rows, before.rows);
        assert_eq!(b.records(), 2);
    }

    #[test]
    fn the_last_change_per_key_wins_in_partition_order() {
        let mut b = Batch::default();
        put(&mut b, upsert(1, "a"), 0, 0, None, 1).unwrap();
        put(&mut b, upsert(2, "b"), 0, 1, None, 1).unwrap();
        put(&mut b, upsert(1, "a2"), 0, 2, None, 1).unwrap();
        put(&mut b, Change::Delete { key: id(2) }, 0, 3, None, 1).unwrap();
        put(&mut b, Change::Skip(Skip::Tombstone), 0, 4, None, 0).unwrap();
        put(&mut b, Change::Delete { key: id(3) }, 0, 5, None, 1).unwrap();
        put(&mut b, upsert(3, "c"), 0, 6, None, 1).unwrap();
        let t = &b.tables["t"];
        assert_eq!(t.key, Some(vec!["id".to_owned()]));
        let state: Vec<(RowOp, Vec<Datum>)> =
            t.ops.iter().copied().zip(t.rows.iter().cloned()).collect();
        assert_eq!(
            state,
            vec![
                (RowOp::Upsert, vec![Datum::Int(1), Datum::Text("a2".into())]),
                (RowOp::Delete, vec![Datum::Int(2), Datum::Null]),
                (RowOp::Upsert, vec![Datum::Int(3), Datum::Text("c".into())]),
            ]
        );
        assert_eq!((t.inserts(), t.deletes()), (2, 1));
        assert_eq!(b.records(), 7);
        assert_eq!(
            b.accounting,
            Accounting {
                written: 4,
                deleted: 2,
                skipped: 1,
                dead_lettered: 0
            }
        );
        assert_eq!(b.offsets[&tp(0)].next_offset(), 7);
    }

    #[test]
    fn a_key_change_deletes_the_old_key_and_truncate_drops_what_came_before() {
        let mut b = Batch::default();
        put(&mut b, upsert(1, "a"), 0, 0, None, 1).unwrap();
        let Change::Upsert { key, row, .. } = upsert(9, "a") else {
            unreachable!()
        };
        put(
            &mut b,
            Change::Upsert {
                key,
                row,
                old_key: Some(id(1)),
            },
            0,
            1,
            None,
            1,
        )
        .unwrap();
        let t = &b.tables["t"];
        assert_eq!(t.ops, vec![RowOp::Delete, RowOp::Upsert]);
        assert_eq!(t.rows[1][0], Datum::Int(9));
        put(&mut b, Change::Truncate, 0, 2, None, 1).unwrap();
        put(&mut b, upsert(5, "e"), 0, 3, None, 1).unwrap();
        let t = &b.tables["t"];
        assert!(t.truncate);
        assert_eq!(t.ops, vec![RowOp::Upsert]);
        assert_eq!(t.rows[0][0], Datum::Int(5));
    }

    #[test]
    fn a_key_of_other_fields_or_with_nulls_is_refused_without_a_trace() {
        let mut b = Batch::default();
        put(&mut b, upsert(1, "a"), 0, 0, None, 1).unwrap();
        let before = b.tables["t"].clone();
        let other_key = Change::Delete {
            key: row(&[("name", Some(ColumnType::Varchar), Datum::Text("a".into()))]),
        };
        let e = put(&mut b, other_key, 0, 1, None, 1).unwrap_err();
        assert!(e.contains("primary key changed from (id) to (name)"), "{e}");
        let e = put(
            &mut b,
            Change::Delete {
                key: row(&[("id", None, Datum::Null)]),
            },
            0,
            1,
            None,
            1,
        )
        .unwrap_err();
        assert!(e.contains("null in a key field"), "{e}");
        assert_eq!(b.tables["t"], before);
        assert_eq!(b.records(), 1);
    }

    #[test]
    fn a_record_that_does_not_fit_the_lake_table_is_refused_by_itself() {
        let columns: TableColumns = vec![
            ("a".into(), Some(ColumnType::Integer)),
            ("b".into(), Some(ColumnType::Varchar)),
        ];
        let strict = Target {
            table: "t",
            columns: Some(&columns),
            evolution: Evolution {
                auto_create: false,
                auto_evolve: false,
            },
        };
        let tp = tp(0);
        let at = |offset| Position {
            tp: &tp,
            offset,
            timestamp_ms: None,
            bytes: 1,
            now: Instant::now(),
        };
        let mut b = Batch::default();
        b.put(
            &strict,
            append(&[("a", Some(ColumnType::SmallInt), Datum::Int(1))]),
            &at(0),
        )
        .unwrap();
        // Wider than the column, within the batch: refused at this record, not at flush.
        let e = b
            .put(
                &strict,
                append(&[("a", Some(ColumnType::BigInt), Datum::Int(1))]),
                &at(1),
            )
            .unwrap_err();
        assert!(
            e.contains("column `a`: records carry BIGINT but the column is INTEGER"),
            "{e}"
        );
        let e = b
            .put(
                &strict,
                append(&[("c", Some(ColumnType::BigInt), Datum::Int(1))]),
                &at(1),
            )
            .unwrap_err();
        assert!(e.contains("has no column `c`"), "{e}");
        let e = b
            .put(
                &strict,
                append(&[("a", Some(ColumnType::Varchar), Datum::Text("x".into()))]),
                &at(1),
            )
            .unwrap_err();
        assert!(
            e.contains("is VARCHAR here but SMALLINT in earlier records"),
            "{e}"
        );
        assert_eq!(b.records(), 1);
        assert_eq!(
            b.tables["t"].columns,
            vec![("a".into(), ColumnType::SmallInt)]
        );
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
        let tp1 = tp(1);
        b.put(
            &ANY,
            append(&[("x", Some(ColumnType::BigInt), Datum::Int(1))]),
            &Position {
                tp: &tp1,
                offset: 0,
                timestamp_ms: None,
                bytes: 2000,
                now: t0,
            },
        )
        .unwrap();
        assert_eq!(b.flush_reason(t0, &LIMITS), Some(FlushReason::Bytes));
        b.skip_record(&tp(1), 1, None, t0);
        assert_eq!(b.flush_reason(t0, &LIMITS), Some(FlushReason::Records));
    }
}
