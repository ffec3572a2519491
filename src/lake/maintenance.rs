//! Table upkeep between flushes.

use super::{sql, sql_err, FileCounts, Lake, LakeError, LAKE};

impl Lake {
    /// Table upkeep: moves inlined rows to Parquet, merges the small files that frequent
    /// flushes leave behind and, with a `retention`, expires older snapshots and deletes the
    /// files only they used. Each step is its own DuckLake commit.
    pub fn maintain(
        &mut self,
        retention: Option<std::time::Duration>,
    ) -> Result<FileCounts, LakeError> {
        let before = self.data_files()?;
        let lake = sql::literal(LAKE);
        let mut steps = vec![
            format!("CALL ducklake_flush_inlined_data({lake})"),
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
            let mut stmt = self
                .conn
                .prepare(&step)
                .map_err(sql_err(format!("maintenance: {step}")))?;
            let mut rows = stmt
                .query([])
                .map_err(sql_err(format!("maintenance: {step}")))?;
            while rows
                .next()
                .map_err(sql_err(format!("maintenance: {step}")))?
                .is_some()
            {}
        }
        Ok(FileCounts {
            before,
            after: self.data_files()?,
        })
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
