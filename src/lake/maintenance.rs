//! Table upkeep between flushes.

use super::{sql, sql_err, FileCounts, Lake, LakeError, LAKE, OFFSETS_TABLE};

/// What one maintenance run did, and whether it left work for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceRun {
    pub files: FileCounts,
    /// Data files past the delete threshold that this run rewrote (as selected; a tie in
    /// deleted fraction may add one).
    pub rewritten: u64,
    /// The run stopped at `maintenance_max_files`: files past the threshold, or merges, remain.
    pub more: bool,
}

/// A live data file whose deleted fraction passes the threshold.
struct Candidate {
    schema: String,
    table: String,
    deleted_fraction: f64,
}

impl Lake {
    /// Table upkeep of the tables this connection wrote (see `tables_to_maintain`),
    /// bounded so that it never holds the next flush for long: moves their inlined rows to
    /// Parquet, rewrites at most `maintenance_max_files` of their data files whose deleted
    /// fraction passes `rewrite_delete_threshold` (the most deleted first; keyed applies
    /// leave delete files behind, which every read and every later delete has to apply), runs
    /// at most `maintenance_max_files` merges of small files per table, folds superseded
    /// offsets rows away and, with a `retention`, expires older snapshots and deletes the
    /// files only they used. Each step is its own DuckLake commit; what a run leaves is
    /// reported in [`MaintenanceRun::more`] and done by the next.
    pub fn maintain(
        &mut self,
        retention: Option<std::time::Duration>,
    ) -> Result<MaintenanceRun, LakeError> {
        let before = self.data_files()?;
        let lake = sql::literal(LAKE);
        let schema = sql::literal(&self.settings.schema);
        let max_files = self.settings.maintenance_max_files.max(1);
        let mut tables = self.tables_to_maintain()?;
        for table in &tables {
            self.run_step(&format!(
                "CALL ducklake_flush_inlined_data({lake}, table_name => {}, schema_name => {schema})",
                sql::literal(table)
            ))?;
        }
        let (rewritten, rewrite_left) = self.rewrite_deleted(max_files, &tables)?;
        if self.compact_offsets()? {
            tables.push(OFFSETS_TABLE.to_owned());
        }
        // merge_adjacent_files caps its merges per table; a table that used them all may
        // have more to merge.
        let mut merge_left = false;
        for table in &tables {
            let merges = self.run_step(&format!(
                "SELECT table_name FROM ducklake_merge_adjacent_files({lake}, {}, schema => {schema}, max_compacted_files => {max_files})",
                sql::literal(table)
            ))?;
            merge_left |= merges.len() as u64 >= max_files;
        }
        if let Some(keep) = retention {
            let older_than = format!("now() - INTERVAL {} MILLISECONDS", keep.as_millis());
            self.run_step(&format!(
                "CALL ducklake_expire_snapshots({lake}, older_than => {older_than})"
            ))?;
            self.run_step(&format!(
                "CALL ducklake_cleanup_old_files({lake}, older_than => {older_than})"
            ))?;
        }
        let more = rewrite_left || merge_left;
        Ok(MaintenanceRun {
            files: FileCounts {
                before,
                after: self.data_files()?,
            },
            rewritten,
            more,
        })
    }

    /// The tables upkeep looks after: those this connection wrote since it was opened, so
    /// that workers sharing a catalog do not compact each other's tables (a merge or a
    /// rewrite conflicts with the owner's deletes); before it wrote any, every table of the
    /// connector's schema (a worker restarted on a lake it no longer writes to still
    /// compacts it).
    fn tables_to_maintain(&self) -> Result<Vec<String>, LakeError> {
        if !self.written.is_empty() {
            return Ok(self.written.iter().cloned().collect());
        }
        let context = "maintenance: cannot list the tables";
        let mut stmt = self
            .conn
            .prepare(
                "SELECT table_name FROM information_schema.tables
                 WHERE table_catalog = ? AND table_schema = ? AND table_name <> ?
                   AND table_type = 'BASE TABLE' ORDER BY 1",
            )
            .map_err(sql_err(context))?;
        let rows = stmt
            .query_map([LAKE, self.settings.schema.as_str(), OFFSETS_TABLE], |r| {
                r.get::<_, String>(0)
            })
            .map_err(sql_err(context))?;
        rows.collect::<Result<_, _>>().map_err(sql_err(context))
    }

    /// Counts `table` (of the connector's schema) as written by this connection, so upkeep
    /// looks after it; flushes call it for every table they write.
    pub fn note_written(&mut self, table: &str) {
        if !self.written.contains(table) {
            self.written.insert(table.to_owned());
        }
    }

    /// Rewrites the (at most) `max_files` most deleted data files past the threshold; returns
    /// how many were selected and whether others past the threshold were left.
    ///
    /// DuckLake 1.5.5's `ducklake_rewrite_data_files` takes a table and a threshold but no
    /// file budget, so the budget becomes a threshold: the deleted fraction of the last file
    /// selected, per table, which leaves the less deleted files for later runs.
    fn rewrite_deleted(
        &mut self,
        max_files: u64,
        tables: &[String],
    ) -> Result<(u64, bool), LakeError> {
        let schema = &self.settings.schema;
        let candidates: Vec<Candidate> = self
            .rewrite_candidates()?
            .into_iter()
            .filter(|c| c.schema == *schema && tables.contains(&c.table))
            .collect();
        let left = candidates.len() as u64 > max_files;
        let mut cut: Vec<(String, String, f64)> = Vec::new();
        for c in candidates.iter().take(max_files as usize) {
            match cut
                .iter_mut()
                .find(|(s, t, _)| *s == c.schema && *t == c.table)
            {
                Some(entry) => entry.2 = entry.2.min(c.deleted_fraction),
                None => cut.push((c.schema.clone(), c.table.clone(), c.deleted_fraction)),
            }
        }
        let selected = candidates.len().min(max_files as usize) as u64;
        for (schema, table, fraction) in cut {
            let threshold = if left {
                // Just under the last selected file's fraction, so float rounding cannot
                // leave that file out.
                (fraction * (1.0 - 1e-9)).max(self.settings.rewrite_delete_threshold)
            } else {
                self.settings.rewrite_delete_threshold
            };
            let step = format!(
                "CALL ducklake_rewrite_data_files({}, {}, schema => {}, delete_threshold => {threshold:?})",
                sql::literal(LAKE),
                sql::literal(&table),
                sql::literal(&schema),
            );
            // rewrite_data_files still scans the table while its result rows stream out,
            // which DuckLake refuses outside a transaction that is still open.
            self.in_transaction("maintenance", |lake| lake.run_step(&step).map(drop))?;
        }
        Ok((selected, left))
    }

    /// Live data files whose deleted fraction passes the threshold, most deleted first.
    fn rewrite_candidates(&self) -> Result<Vec<Candidate>, LakeError> {
        let meta = sql::ident(&format!("__ducklake_metadata_{LAKE}"));
        let query = format!(
            "SELECT s.schema_name, t.table_name, d.delete_count::DOUBLE / f.record_count AS fraction
             FROM {meta}.ducklake_data_file f
             JOIN {meta}.ducklake_delete_file d
               ON d.data_file_id = f.data_file_id AND d.end_snapshot IS NULL
             JOIN {meta}.ducklake_table t ON t.table_id = f.table_id AND t.end_snapshot IS NULL
             JOIN {meta}.ducklake_schema s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL
             WHERE f.end_snapshot IS NULL AND f.record_count > 0
               AND d.delete_count::DOUBLE / f.record_count >= ?
             ORDER BY fraction DESC, f.data_file_id"
        );
        let context = "maintenance: cannot list the files past the delete threshold";
        let mut stmt = self.conn.prepare(&query).map_err(sql_err(context))?;
        let rows = stmt
            .query_map([self.settings.rewrite_delete_threshold], |r| {
                Ok(Candidate {
                    schema: r.get(0)?,
                    table: r.get(1)?,
                    deleted_fraction: r.get(2)?,
                })
            })
            .map_err(sql_err(context))?;
        rows.collect::<Result<_, _>>().map_err(sql_err(context))
    }

    /// Runs one maintenance call, reading its result rows to the end; returns the first
    /// column of each row when it is text.
    fn run_step(&self, step: &str) -> Result<Vec<String>, LakeError> {
        let mut stmt = self
            .conn
            .prepare(step)
            .map_err(sql_err(format!("maintenance: {step}")))?;
        let mut rows = stmt
            .query([])
            .map_err(sql_err(format!("maintenance: {step}")))?;
        let mut firsts = Vec::new();
        while let Some(row) = rows
            .next()
            .map_err(sql_err(format!("maintenance: {step}")))?
        {
            if let Ok(first) = row.get::<_, String>(0) {
                firsts.push(first);
            }
        }
        Ok(firsts)
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
        bounded_lake(dir, threshold, 1000)
    }

    fn bounded_lake(dir: &std::path::Path, threshold: f64, max_files: u64) -> Lake {
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
            maintenance_max_files: max_files,
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
        lake.note_written("t");
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

    /// Rows deleted per live delete file, fewest first.
    fn live_delete_counts(lake: &Lake) -> Vec<i64> {
        let mut stmt = lake
            .connection()
            .prepare(
                "SELECT delete_count FROM __ducklake_metadata_lake.ducklake_delete_file
                 WHERE end_snapshot IS NULL ORDER BY 1",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// Six files of 1,000 rows, with 60 %, 20 %, 50 %, 5 %, 40 % and 30 % of their rows
    /// deleted; threshold 10 %, two files per run. Each run rewrites the two most deleted
    /// files left and says whether more remain; three runs rewrite the five files past the
    /// threshold, most deleted first, leave the 5 % one alone, and never change the table.
    #[test]
    fn bounded_runs_rewrite_the_most_deleted_files_first_and_converge() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = bounded_lake(dir.path(), 0.1, 2);
        let deleted = [600, 200, 500, 50, 400, 300];
        let mut setup = String::from("CREATE TABLE t (id BIGINT, v VARCHAR);");
        for (i, _) in deleted.iter().enumerate() {
            let start = i * 1000;
            setup.push_str(&format!(
                "INSERT INTO t SELECT range, 'v' || range FROM range({start}, {});",
                start + 1000
            ));
        }
        for (i, d) in deleted.iter().enumerate() {
            let start = i * 1000;
            setup.push_str(&format!(
                "DELETE FROM t WHERE id >= {start} AND id < {};",
                start + d
            ));
        }
        lake.connection().execute_batch(&setup).unwrap();
        lake.note_written("t");
        let expected = "SELECT id, 'v' || id FROM range(6000) r(id)              WHERE id % 1000 >= [600, 200, 500, 50, 400, 300][id // 1000 + 1]";
        let same = |lake: &Lake| {
            query(
                lake,
                &format!("SELECT count(*) FROM ((SELECT id, v FROM t EXCEPT ALL {expected}) UNION ALL ({expected} EXCEPT ALL SELECT id, v FROM t))"),
            ) == 0
        };
        assert_eq!(live_delete_counts(&lake), vec![50, 200, 300, 400, 500, 600]);

        let first = lake.maintain(None).unwrap();
        assert_eq!((first.rewritten, first.more), (2, true));
        assert!(same(&lake));
        // The 60 % and 50 % files went first.
        assert_eq!(live_delete_counts(&lake), vec![50, 200, 300, 400]);

        let second = lake.maintain(None).unwrap();
        assert_eq!((second.rewritten, second.more), (2, true));
        assert!(same(&lake));
        // Then the 40 % and 30 % ones.
        assert_eq!(live_delete_counts(&lake), vec![50, 200]);

        let third = lake.maintain(None).unwrap();
        assert_eq!((third.rewritten, third.more), (1, false));
        assert!(same(&lake));
        // The 5 % file stays under the threshold.
        assert_eq!(live_delete_counts(&lake), vec![50]);
        let fourth = lake.maintain(None).unwrap();
        assert_eq!((fourth.rewritten, fourth.more), (0, false));
        assert!(same(&lake));
    }
}
