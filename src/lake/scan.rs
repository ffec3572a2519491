//! A flush's Arrow record batch as a table DuckDB scans, so an append is one
//! `INSERT INTO t SELECT … FROM ducklake_sink_batch(id)`: the rows go from the Arrow columns
//! straight into DuckLake's Parquet writer. The appender copies them into a buffer of its own
//! first and inserts from that on `flush()`, which costs CPU and memory for every row.
//!
//! The batch waits in a process-wide map under an id for the length of the statement
//! ([`Registered`] removes it again, also on error); the table function's bind takes a cheap
//! clone (Arrow arrays are shared), and scans it one DuckDB vector at a time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use duckdb::arrow::record_batch::RecordBatch;
use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::vtab::{
    record_batch_to_duckdb_data_chunk, to_duckdb_logical_type_for_field, BindInfo, InitInfo,
    TableFunctionInfo, VTab,
};
use duckdb::Connection;

/// Name the table function is registered under on the lake connection.
pub(super) const FUNCTION: &str = "ducklake_sink_batch";

fn pending() -> &'static Mutex<HashMap<u64, RecordBatch>> {
    static PENDING: OnceLock<Mutex<HashMap<u64, RecordBatch>>> = OnceLock::new();
    PENDING.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A batch registered for scanning; dropping it unregisters it.
pub(super) struct Registered(u64);

impl Registered {
    pub(super) fn new(batch: RecordBatch) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        pending()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, batch);
        Self(id)
    }

    pub(super) fn id(&self) -> u64 {
        self.0
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        pending()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.0);
    }
}

pub(super) fn register(conn: &Connection) -> duckdb::Result<()> {
    conn.register_table_function::<BatchScan>(FUNCTION)
}

struct BatchScan;

struct Bound {
    batch: RecordBatch,
}

struct Cursor {
    next_row: AtomicUsize,
}

impl VTab for BatchScan {
    type BindData = Bound;
    type InitData = Cursor;

    fn bind(bind: &BindInfo) -> Result<Self::BindData, Box<dyn std::error::Error>> {
        let id = bind.get_parameter(0).to_uint64();
        let batch = pending()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("{FUNCTION}: no batch {id} is registered"))?;
        for field in batch.schema().fields() {
            bind.add_result_column(field.name(), to_duckdb_logical_type_for_field(field)?);
        }
        Ok(Bound { batch })
    }

    fn init(_: &InitInfo) -> Result<Self::InitData, Box<dyn std::error::Error>> {
        Ok(Cursor {
            next_row: AtomicUsize::new(0),
        })
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let batch = &func.get_bind_data().batch;
        let cursor = func.get_init_data();
        // A chunk holds one DuckDB vector of rows (every column has that capacity).
        let vector_size = output.flat_vector(0).capacity();
        let start = cursor.next_row.fetch_add(vector_size, Ordering::Relaxed);
        if start >= batch.num_rows() {
            output.set_len(0);
            return Ok(());
        }
        let len = vector_size.min(batch.num_rows() - start);
        record_batch_to_duckdb_data_chunk(&batch.slice(start, len), output)
    }

    fn parameters() -> Option<Vec<LogicalTypeHandle>> {
        Some(vec![LogicalTypeHandle::from(LogicalTypeId::UBigint)])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{Int64Array, StringArray};
    use duckdb::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// Rows over several DuckDB vectors arrive complete and in the target's types (text cast
    /// to TIMESTAMPTZ and UUID as the appender cast it), and the batch is released after.
    #[test]
    fn inserts_every_row_in_the_tables_types_and_releases_the_batch() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (id BIGINT, ts TIMESTAMPTZ, u UUID)")
            .unwrap();
        let n = 5000_i64;
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ts", DataType::Utf8, true),
            Field::new("u", DataType::Utf8, true),
        ]);
        let at: Vec<Option<String>> = (0..n)
            .map(|i| (i % 7 != 0).then(|| format!("2026-12-02 10:00:{:02}+00", i % 60)))
            .collect();
        let u: Vec<String> = (0..n)
            .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from(at)),
                Arc::new(StringArray::from_iter_values(u)),
            ],
        )
        .unwrap();
        let registered = Registered::new(batch);
        let id = registered.id();
        conn.execute(
            &format!("INSERT INTO t SELECT * FROM {FUNCTION}({id}::UBIGINT)"),
            [],
        )
        .unwrap();
        drop(registered);
        let (rows, ids, nulls, seconds, last): (i64, i64, i64, i64, String) = conn
            .query_row(
                "SELECT count(*), sum(id), count(*) FILTER (ts IS NULL),
                        max(extract('second' FROM ts))::BIGINT, max(u)::VARCHAR FROM t",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(rows, n);
        assert_eq!(ids, n * (n - 1) / 2);
        assert_eq!(nulls, (0..n).filter(|i| i % 7 == 0).count() as i64);
        assert_eq!(seconds, 59);
        assert_eq!(last, format!("00000000-0000-0000-0000-{:012}", n - 1));
        let gone = conn
            .execute(
                &format!("INSERT INTO t SELECT * FROM {FUNCTION}({id}::UBIGINT)"),
                [],
            )
            .unwrap_err()
            .to_string();
        assert!(gone.contains("no batch"), "{gone}");
    }
}
