//! Table upkeep between flushes.

use super::{sql, sql_err, FileCounts, Lake, LakeError, LAKE};

impl Lake {
    /// Table upkeep: moves inlined rows to Parquet, rewrites the data files whose deleted
    /// fraction passes `rewrite_delete_threshold` (keyed applies leave delete files behind,
    /// which every read and every later delete has to apply), merges the small files that
    /// frequent flushes leave behind and, with a `retention`, expires older snapshots and
    /// deletes the files only they used. Each step is its own DuckLake commit.
    pub fn maintain(
        &mut self,
        retention: Option<std::time::Duration>,
    ) -> Result<FileCounts, LakeError> {
        let before = self.data_files()?;
        let lake = sql::literal(LAKE);
        let mut steps = vec![
            format!("CALL ducklake_flush_inlined_data({lake})"),
            format!(
                "CALL ducklake_rewrite_data_files({lake}, delete_threshold => {})",
                self.settings.rewrite_delete_threshold
            ),
            format!("CALL ducklake_merge_adjacent_files({lake})"),
        ];
        if let Some(keep) = retention {
            let older_than = format!("now() - INTERVAL {} MILLISECONDS", keep.as_millis());
            steps.push(format!(
                "CALL ducklake_expire_snapshots({lake}, older_than => {older_than})"
            ));
            steps.push(format!(
                "CALL ducklake_cleanup_old_files({lake}, older_than => {older_than})"
            ));
        }
        for step in steps {
            // rewrite_data_files still scans the table while its result rows stream out,
            // which DuckLake refuses outside a transaction that is still open.
            if step.contains("rewrite_data_files") {
                self.in_transaction("maintenance", |lake| lake.run_step(&step))?;
            } else {
                self.run_step(&step)?;
            }
        }
        Ok(FileCounts {
            before,
            after: self.data_files()?,
        })
    }

    /// Runs one maintenance call, reading its result rows to the end.
    fn run_step(&self, step: &str) -> Result<(), LakeError> {
        let mut stmt = self
            .conn
            .prepare(step)
            .map_err(sql_err(format!("maintenance: {step}")))?;
        let mut rows = stmt
            .query([])
            .map_err(sql_err(format!("maintenance: {step}")))?;
        while rows
            .next()
            .map_err(sql_err(format!("maintenance: {step}")))?
            .is_some()
        {}
        Ok(())
    }

    /// Parquet data files of the lake's live tables.
    fn data_files(&self) -> Result<u64, LakeError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT coalesce(sum(file_count), 0)::BIGINT FROM {}.table_info()",
                    sql::ident(LAKE)
                ),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(sql_err("cannot count data files"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Lake, LakeSettings};
    use crate::shape::Evolution;

    fn lake(dir: &std::path::Path, threshold: f64) -> Lake {
        Lake::open(LakeSettings {
            connector: "c".into(),
            catalog: dir.join("meta.ducklake").display().to_string(),
            data_path: dir.join("data").display().to_string(),
            object_store: None,
            schema: "main".into(),
            evolution: Evolution {
                auto_create: true,
                auto_evolve: true,
            },
            data_inlining_row_limit: 0,
            tuning: Default::default(),
            rewrite_delete_threshold: threshold,
        })
        .unwrap()
    }

    fn query(lake: &Lake, sql: &str) -> i64 {
        lake.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn live_delete_files(lake: &Lake) -> i64 {
        query(
            lake,
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_delete_file WHERE end_snapshot IS NULL",
        )
    }

    /// Deletes `deleted` of 1,000 rows (one data file), runs maintenance with `threshold` and
    /// returns the delete files left and whether the table still holds exactly the rows kept.
    fn run(threshold: f64, deleted: i64) -> (i64, bool) {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = lake(dir.path(), threshold);
        lake.connection()
            .execute_batch(&format!(
                "CREATE TABLE t (id BIGINT, v VARCHAR);
                 INSERT INTO t SELECT range, 'v' || range FROM range(1000);
                 DELETE FROM t WHERE id < {deleted};"
            ))
            .unwrap();
        assert_eq!(live_delete_files(&lake), 1);
        lake.maintain(None).unwrap();
        let same = query(
            &lake,
            &format!(
                "SELECT count(*) FROM (SELECT id, v FROM t EXCEPT SELECT range, 'v' || range FROM range({deleted}, 1000))"
            ),
        ) == 0
            && query(&lake, "SELECT count(*) FROM t") == 1000 - deleted;
        (live_delete_files(&lake), same)
    }

    #[test]
    fn files_past_the_delete_threshold_are_rewritten_without_changing_the_table() {
        // 30% deleted, threshold 10%: rewritten, no delete file left.
        assert_eq!(run(0.1, 300), (0, true));
        // 5% deleted, threshold 10%: left as it is.
        assert_eq!(run(0.1, 50), (1, true));
    }
}
