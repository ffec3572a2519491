//! Lineage: the commit message and `extra_info` every snapshot of the sink carries.

use std::collections::BTreeMap;

use duckdb::params;
use serde_json::json;

use super::{sql, sql_err, Lake, LakeError, TableCounts, LAKE};
use crate::batch::Batch;

impl Lake {
    pub(super) fn set_commit_message(&self, message: &str, extra: &str) -> Result<(), LakeError> {
        self.conn
            .execute(
                &format!(
                    "CALL {}.set_commit_message('ducklake-sink', ?, extra_info => ?)",
                    sql::ident(LAKE)
                ),
                params![message, extra],
            )
            .map_err(sql_err("cannot set the commit message"))?;
        Ok(())
    }
}

/// The commit message and `extra_info` JSON of a flush: connector, per-partition offset
/// ranges and record counts, rows per table, and the newest Kafka timestamp per topic.
pub fn lineage(
    connector: &str,
    batch: &Batch,
    tables: &BTreeMap<String, TableCounts>,
) -> (String, String) {
    let rows: u64 = tables.values().map(|c| c.inserted).sum();
    let deleted: u64 = tables.values().map(|c| c.deleted).sum();
    let mut ranges = Vec::new();
    let mut parts = Vec::new();
    let mut max_ts: BTreeMap<&str, i64> = BTreeMap::new();
    for (tp, r) in &batch.offsets {
        parts.push(format!(
            "{}[{}]@{}..{}",
            tp.topic, tp.partition, r.first, r.last
        ));
        ranges.push(json!({
            "topic": tp.topic, "partition": tp.partition,
            "first_offset": r.first, "last_offset": r.last, "records": r.records,
        }));
        if let Some(ts) = r.max_timestamp_ms {
            let e = max_ts.entry(tp.topic.as_str()).or_insert(ts);
            *e = (*e).max(ts);
        }
    }
    let changes: BTreeMap<&str, serde_json::Value> = tables
        .iter()
        .map(|(t, c)| {
            (
                t.as_str(),
                json!({"inserted": c.inserted, "deleted": c.deleted, "truncated": c.truncated}),
            )
        })
        .collect();
    let table_rows: BTreeMap<&str, u64> = tables
        .iter()
        .map(|(t, c)| (t.as_str(), c.inserted))
        .collect();
    let deletes = if deleted > 0 {
        format!(", {deleted} deleted")
    } else {
        String::new()
    };
    let truncated: Vec<&str> = tables
        .iter()
        .filter(|(_, c)| c.truncated)
        .map(|(t, _)| t.as_str())
        .collect();
    let truncates = if truncated.is_empty() {
        String::new()
    } else {
        format!(", truncated {}", truncated.join(" "))
    };
    let records = batch.records();
    let message = format!(
        "{connector}: {records} record{}, {rows} row{}{deletes}{truncates}: {}",
        if records == 1 { "" } else { "s" },
        if rows == 1 { "" } else { "s" },
        parts.join(" ")
    );
    let extra = json!({
        "kind": "flush",
        "connector": connector,
        "records": batch.records(),
        "accounting": {
            "written": batch.accounting.written,
            "deleted": batch.accounting.deleted,
            "skipped": batch.accounting.skipped,
            "dead_lettered": batch.accounting.dead_lettered,
        },
        "rows": rows,
        "deleted": deleted,
        "offsets": ranges,
        "tables": table_rows,
        "changes": changes,
        "max_timestamp_ms": max_ts,
    });
    (message, extra.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use super::lineage;
    use crate::batch::{Batch, TopicPartition};
    use crate::lake::TableCounts;

    #[test]
    fn a_truncate_is_named_in_the_commit_message() {
        let mut batch = Batch::default();
        let tp = TopicPartition {
            topic: "db.public.users".into(),
            partition: 0,
        };
        batch.skip_record(&tp, 41, None, Instant::now());
        let tables = BTreeMap::from([(
            "users".to_owned(),
            TableCounts {
                inserted: 0,
                deleted: 0,
                truncated: true,
            },
        )]);
        let (message, extra) = lineage("cdc", &batch, &tables);
        assert_eq!(
            message,
            "cdc: 1 record, 0 rows, truncated users: db.public.users[0]@41..41"
        );
        assert!(extra.contains(r#""truncated":true"#), "{extra}");
    }
}
