//! The offsets table: claiming partitions (epoch bump), the compare-and-set that moves
//! offsets in every flush, and the operator's reset.
//!
//! Layout: a flush *appends* one row per partition it covers; a partition's state is its row
//! with the highest `next_offset` (the newest epoch among equals). DuckLake conflicts are
//! per table, and an `UPDATE` is a delete: with updated rows, the flushes of several workers
//! all deleted from this one table and aborted each other's commits even though they wrote
//! different tables and partitions. Appends into one table do not conflict, so workers on
//! disjoint tables now commit side by side. Fencing stays a conflict: a claim, a reset and
//! the upkeep of this table replace a partition's rows (a `DELETE`), and DuckLake refuses to
//! commit a `DELETE` and a concurrent `INSERT` into one table, whichever commits second; the
//! loser retries and reads the new state (a zombie then finds the new epoch: fenced).

use std::collections::BTreeMap;

use duckdb::types::Value;
use duckdb::{params, params_from_iter};
use serde_json::json;

use super::{sql_err, Claim, Lake, LakeError, OFFSETS_TABLE};
use crate::batch::{Batch, TopicPartition};
use crate::offsets::Expect;

/// A partition's current row in the offsets table: next offset and epoch.
type Stored = (Option<i64>, Option<i64>);

/// Orders a partition's rows newest first: the first is its state.
const NEWEST_FIRST: &str = "ORDER BY next_offset DESC NULLS LAST, epoch DESC";

/// Progress rows past this many superseded ones are folded away by upkeep.
const SUPERSEDED_ROWS: i64 = 100;

impl Lake {
    /// Takes ownership of `partitions` for this worker: in one transaction, bumps each
    /// partition's epoch (creating its row when missing) and returns where to resume. Any
    /// worker still holding an older epoch can no longer commit for these partitions.
    pub fn claim(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Claim>, LakeError> {
        self.in_transaction("cannot claim partitions", |lake| {
            let offsets = lake.table_ref(OFFSETS_TABLE);
            let context = "cannot claim partitions";
            let mut select = lake
                .conn
                .prepare(&format!(
                    "SELECT next_offset, epoch, last_timestamp_ms FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ? {NEWEST_FIRST} LIMIT 1"
                ))
                .map_err(sql_err(context))?;
            let mut claims = BTreeMap::new();
            for tp in partitions {
                let current = select
                    .query_map(params![lake.settings.connector, tp.topic, tp.partition], |r| {
                        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(sql_err(context))?;
                let claim = match current.first() {
                    Some(&(next_offset, epoch, last_timestamp_ms)) => {
                        let epoch = epoch.unwrap_or(0) + 1;
                        // One row for the partition again, under the new epoch; the delete
                        // is what conflicts with a flush of the old owner in flight.
                        lake.conn
                            .execute(
                                &format!(
                                    "DELETE FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"
                                ),
                                params![lake.settings.connector, tp.topic, tp.partition],
                            )
                            .map_err(sql_err(context))?;
                        lake.conn
                            .execute(
                                &format!(
                                    "INSERT INTO {offsets} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                                     VALUES (?, ?, ?, ?, NULL, ?, now(), ?)"
                                ),
                                params![lake.settings.connector, tp.topic, tp.partition, next_offset, epoch, last_timestamp_ms],
                            )
                            .map_err(sql_err(context))?;
                        Claim {
                            next_offset,
                            epoch,
                            last_timestamp_ms,
                        }
                    }
                    None => {
                        lake.conn
                            .execute(
                                &format!(
                                    "INSERT INTO {offsets} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                                     VALUES (?, ?, ?, NULL, NULL, 1, now(), NULL)"
                                ),
                                params![lake.settings.connector, tp.topic, tp.partition],
                            )
                            .map_err(sql_err(context))?;
                        Claim {
                            next_offset: None,
                            epoch: 1,
                            last_timestamp_ms: None,
                        }
                    }
                };
                claims.insert(tp.clone(), claim);
            }
            let (message, extra) = (
                format!("{}: claimed {} partitions", lake.settings.connector, claims.len()),
                json!({
                    "kind": "claim",
                    "connector": lake.settings.connector,
                    "claimed": claims.iter().map(|(tp, c)| json!({"topic": tp.topic, "partition": tp.partition, "epoch": c.epoch, "next_offset": c.next_offset})).collect::<Vec<_>>(),
                })
                .to_string(),
            );
            lake.set_commit_message(&message, &extra)?;
            Ok(claims)
        })
    }

    /// Sets, or with `next_offset = None` forgets, the stored offset of partitions (the
    /// `reset` command). Bumps the epoch, so a worker still running is fenced.
    pub fn reset_offsets(
        &mut self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> Result<(), LakeError> {
        self.in_transaction("cannot reset offsets", |lake| {
            let offsets = lake.table_ref(OFFSETS_TABLE);
            for (tp, next) in partitions {
                let old_epoch: Option<i64> = lake
                    .conn
                    .query_row(
                        &format!("SELECT max(epoch) FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"),
                        params![lake.settings.connector, tp.topic, tp.partition],
                        |r| r.get(0),
                    )
                    .map_err(sql_err("cannot reset offsets"))?;
                lake.conn
                    .execute(
                        &format!("DELETE FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"),
                        params![lake.settings.connector, tp.topic, tp.partition],
                    )
                    .map_err(sql_err("cannot reset offsets"))?;
                // A forgotten offset keeps its row with the epoch bumped, so that no worker
                // that claimed the partition before, whatever its epoch, can commit again.
                lake.conn
                    .execute(
                        &format!(
                            "INSERT INTO {offsets} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                             VALUES (?, ?, ?, ?, NULL, ?, now(), NULL)"
                        ),
                        params![lake.settings.connector, tp.topic, tp.partition, next, old_epoch.unwrap_or(0) + 1],
                    )
                    .map_err(sql_err("cannot reset offsets"))?;
            }
            let listed: Vec<String> = partitions
                .iter()
                .map(|(tp, n)| format!("{}[{}]={}", tp.topic, tp.partition, n.map_or("forgotten".to_owned(), |n| n.to_string())))
                .collect();
            lake.set_commit_message(
                &format!("{}: offsets reset by operator: {}", lake.settings.connector, listed.join(" ")),
                &json!({"kind": "reset", "connector": lake.settings.connector, "reset": listed}).to_string(),
            )
        })
    }

    /// Every partition of every topic this connector has committed offsets for (the next
    /// offset to read), as Kafka Connect's `GET /connectors/{name}/offsets` lists a sink's.
    /// Partitions claimed but never committed have no offset and are left out.
    pub fn committed_offsets(&self) -> Result<Vec<(TopicPartition, i64)>, LakeError> {
        let q = format!(
            "SELECT topic, \"partition\", max(next_offset) FROM {} WHERE connector = ? GROUP BY 1, 2 HAVING max(next_offset) IS NOT NULL ORDER BY 1, 2",
            self.table_ref(OFFSETS_TABLE)
        );
        let mut stmt = self
            .conn
            .prepare(&q)
            .map_err(sql_err("cannot read lake offsets"))?;
        let rows = stmt
            .query_map(params![self.settings.connector], |r| {
                Ok((
                    TopicPartition {
                        topic: r.get(0)?,
                        partition: r.get(1)?,
                    },
                    r.get::<_, i64>(2)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql_err("cannot read lake offsets"))?;
        Ok(rows)
    }

    /// Every partition this connector has a row for, committed or only claimed.
    pub fn known_partitions(&self) -> Result<Vec<TopicPartition>, LakeError> {
        let q = format!(
            "SELECT DISTINCT topic, \"partition\" FROM {} WHERE connector = ? ORDER BY 1, 2",
            self.table_ref(OFFSETS_TABLE)
        );
        let mut stmt = self
            .conn
            .prepare(&q)
            .map_err(sql_err("cannot read lake offsets"))?;
        let rows = stmt
            .query_map(params![self.settings.connector], |r| {
                Ok(TopicPartition {
                    topic: r.get(0)?,
                    partition: r.get(1)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql_err("cannot read lake offsets"))?;
        Ok(rows)
    }

    /// Partitions this connector has rows for, with their stored offsets.
    pub fn stored_partitions(
        &self,
        topic: &str,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>, LakeError> {
        let q = format!(
            "SELECT \"partition\", max(next_offset) FROM {} WHERE connector = ? AND topic = ? GROUP BY 1 ORDER BY 1",
            self.table_ref(OFFSETS_TABLE)
        );
        let mut stmt = self
            .conn
            .prepare(&q)
            .map_err(sql_err("cannot read lake offsets"))?;
        let rows = stmt
            .query_map(params![self.settings.connector, topic], |r| {
                Ok((
                    TopicPartition {
                        topic: topic.to_owned(),
                        partition: r.get(0)?,
                    },
                    r.get::<_, Option<i64>>(1)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql_err("cannot read lake offsets"))?;
        Ok(rows)
    }

    /// Moves each partition's offset forward: compare-and-set on the claim epoch *and* the
    /// offset the batch continues from, so a batch can only ever follow the exact state it
    /// was read from; then appends the partition's new row. A partition whose state is not
    /// the expected one refuses the whole flush.
    pub(super) fn write_offsets(
        &self,
        batch: &Batch,
        expects: &BTreeMap<TopicPartition, Expect>,
    ) -> Result<(), LakeError> {
        if batch.offsets.is_empty() {
            return Ok(());
        }
        // One read and one insert for all partitions: a statement on a lake table costs
        // milliseconds (12 of them for 4 partitions were half of a 100 k-row flush).
        let rows = self.progress_rows(batch)?;
        let mut values = Vec::with_capacity(batch.offsets.len() * 6);
        for (tp, range) in &batch.offsets {
            let expect = expects.get(tp).copied().unwrap_or(Expect {
                epoch: -1,
                follows: None,
            });
            let held = rows.get(tp).map_or(&[][..], Vec::as_slice);
            match newest(held) {
                Some((next, epoch)) if epoch == Some(expect.epoch) && next == expect.follows => {}
                _ => return Err(self.refusal(tp, expect)),
            }
            // Exactly one row holds that state, as one updated row did before rows were
            // appended: two claims of a partition the lake never saw can race (neither has a
            // row to delete, so they do not conflict) and leave two rows of epoch 1; a flush
            // must not follow either.
            let at = held
                .iter()
                .filter(|&&(next, epoch)| epoch == Some(expect.epoch) && next == expect.follows)
                .count();
            if at != 1 {
                return Err(LakeError::OffsetMoved {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    expected: expect.follows,
                    found: expect.follows,
                });
            }
            values.extend([
                Value::Text(self.settings.connector.clone()),
                Value::Text(tp.topic.clone()),
                Value::Int(tp.partition),
                Value::BigInt(range.next_offset()),
                Value::BigInt(expect.epoch),
                range.last_timestamp_ms.map_or(Value::Null, Value::BigInt),
            ]);
        }
        let placeholders = vec!["(?, ?, ?, ?, NULL, ?, now(), ?)"; batch.offsets.len()].join(", ");
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                     VALUES {placeholders}",
                    self.table_ref(OFFSETS_TABLE)
                ),
                params_from_iter(values),
            )
            .map_err(sql_err("cannot store offsets"))?;
        Ok(())
    }

    /// Every progress row (next offset, epoch) of this connector's partitions in `batch`.
    fn progress_rows(
        &self,
        batch: &Batch,
    ) -> Result<BTreeMap<TopicPartition, Vec<Stored>>, LakeError> {
        let mut topics: Vec<&str> = batch.offsets.keys().map(|tp| tp.topic.as_str()).collect();
        topics.dedup();
        let topics: Vec<String> = topics.into_iter().map(crate::sql::literal).collect();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT topic, \"partition\", next_offset, epoch FROM {} WHERE connector = ? AND topic IN ({})",
                self.table_ref(OFFSETS_TABLE),
                topics.join(", ")
            ))
            .map_err(sql_err("cannot read lake offsets"))?;
        let found = stmt
            .query_map(params![self.settings.connector], |r| {
                Ok((
                    TopicPartition {
                        topic: r.get(0)?,
                        partition: r.get(1)?,
                    },
                    (r.get::<_, Option<i64>>(2)?, r.get::<_, Option<i64>>(3)?),
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql_err("cannot read lake offsets"))?;
        let mut rows: BTreeMap<TopicPartition, Vec<Stored>> = BTreeMap::new();
        for (tp, stored) in found {
            if batch.offsets.contains_key(&tp) {
                rows.entry(tp).or_default().push(stored);
            }
        }
        Ok(rows)
    }

    /// Folds the connector's superseded progress rows away (one row per partition stays),
    /// once there are more than [`SUPERSEDED_ROWS`] of them. Its delete makes the flushes of
    /// other workers in flight retry once, so it runs only from upkeep, and rarely.
    pub(super) fn compact_offsets(&mut self) -> Result<bool, LakeError> {
        let offsets = self.table_ref(OFFSETS_TABLE);
        let context = "maintenance: cannot compact the offsets table";
        let superseded: i64 = self
            .conn
            .query_row(
                &format!(
                    "SELECT count(*) - count(DISTINCT (topic, \"partition\")) FROM {offsets} WHERE connector = ?"
                ),
                params![self.settings.connector],
                |r| r.get(0),
            )
            .map_err(sql_err(context))?;
        if superseded < SUPERSEDED_ROWS {
            return Ok(false);
        }
        self.in_transaction(context, |lake| {
            lake.conn
                .execute_batch(&format!(
                    "CREATE OR REPLACE TEMP TABLE __ducklake_sink_offsets_kept AS
                     SELECT * FROM {offsets} WHERE connector = {connector}
                     QUALIFY row_number() OVER (PARTITION BY topic, \"partition\" {NEWEST_FIRST}) = 1;
                     DELETE FROM {offsets} WHERE connector = {connector};
                     INSERT INTO {offsets} SELECT * FROM temp.main.__ducklake_sink_offsets_kept;
                     DROP TABLE temp.main.__ducklake_sink_offsets_kept;",
                    connector = crate::sql::literal(&lake.settings.connector),
                ))
                .map_err(sql_err(context))?;
            lake.set_commit_message(
                &format!("{}: offsets table compacted", lake.settings.connector),
                &json!({"kind": "maintenance", "connector": lake.settings.connector}).to_string(),
            )
        })?;
        Ok(true)
    }

    /// Why the compare-and-set matched no row.
    fn refusal(&self, tp: &TopicPartition, expect: Expect) -> LakeError {
        let fenced = LakeError::Fenced {
            topic: tp.topic.clone(),
            partition: tp.partition,
            epoch: expect.epoch,
        };
        match self.stored(tp) {
            Ok(Some((found, epoch))) if epoch == Some(expect.epoch) => LakeError::OffsetMoved {
                topic: tp.topic.clone(),
                partition: tp.partition,
                expected: expect.follows,
                found,
            },
            Ok(_) => fenced,
            Err(e) => e,
        }
    }

    /// The current next offset and epoch of a partition (`None`: no row).
    fn stored(&self, tp: &TopicPartition) -> Result<Option<Stored>, LakeError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT next_offset, epoch FROM {} WHERE connector = ? AND topic = ? AND \"partition\" = ? {NEWEST_FIRST} LIMIT 1",
                self.table_ref(OFFSETS_TABLE)
            ))
            .map_err(sql_err("cannot read lake offsets"))?;
        let rows = stmt
            .query_map(
                params![self.settings.connector, tp.topic, tp.partition],
                |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql_err("cannot read lake offsets"))?;
        Ok(rows.into_iter().next())
    }

    /// Whether the lake already holds `batch`: every partition at the batch's end under the
    /// expected epoch. Resolves a commit whose outcome is unknown (the connection dropped
    /// after `COMMIT` was sent) by reading, never by writing again.
    pub(super) fn holds(
        &self,
        batch: &Batch,
        expects: &BTreeMap<TopicPartition, Expect>,
    ) -> Result<bool, LakeError> {
        if batch.offsets.is_empty() {
            return Ok(false);
        }
        let rows = self.progress_rows(batch)?;
        for (tp, range) in &batch.offsets {
            let epoch = expects.get(tp).map(|e| e.epoch);
            match rows.get(tp).and_then(|held| newest(held)) {
                Some((Some(next), stored_epoch))
                    if next == range.next_offset() && stored_epoch == epoch => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// A partition's state among its rows, as [`NEWEST_FIRST`] orders them: the highest next
/// offset (null lowest), the highest epoch among equals.
fn newest(rows: &[Stored]) -> Option<Stored> {
    rows.iter().copied().max()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Lake, LakeSettings};
    use super::*;
    use crate::shape::Evolution;

    fn lake(dir: &std::path::Path) -> Lake {
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
            rewrite_delete_threshold: 0.1,
            maintenance_max_files: 4,
        })
        .unwrap()
    }

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Progress rows pile up one per flush; a partition's state is its newest row, a claim
    /// folds its rows into one under the next epoch, and upkeep folds every partition's rows
    /// once enough are superseded — neither changes any partition's state nor touches
    /// another connector's rows.
    #[test]
    fn the_newest_row_is_the_state_and_folding_rows_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = lake(dir.path());
        let parts = [tp("a", 0), tp("a", 1), tp("b", 0)];
        let claims = lake.claim(&parts).unwrap();
        assert!(claims
            .values()
            .all(|c| c.epoch == 1 && c.next_offset.is_none()));
        let offsets = lake.table_ref(OFFSETS_TABLE);
        // 600 flushes' rows per partition, in no particular order, and another connector's.
        lake.conn
            .execute_batch(&format!(
                "INSERT INTO {offsets} (connector, topic, \"partition\", next_offset, topic_id, epoch, updated_at, last_timestamp_ms)
                 SELECT 'c', p.topic, p.part, (n * 7919) % 600 + 1, NULL, 1, now(), n
                 FROM range(600) r(n), (VALUES ('a', 0), ('a', 1), ('b', 0)) p(topic, part);
                 INSERT INTO {offsets} VALUES ('other', 'a', 0, 5, NULL, 9, now(), NULL);"
            ))
            .unwrap();
        for p in &parts {
            assert_eq!(lake.stored(p).unwrap(), Some((Some(600), Some(1))));
        }
        let count = |lake: &Lake, connector: &str| -> i64 {
            lake.conn
                .query_row(
                    &format!("SELECT count(*) FROM {offsets} WHERE connector = ?"),
                    [connector],
                    |r| r.get(0),
                )
                .unwrap()
        };
        // A claim folds the claimed partition's rows into one, under the next epoch.
        let again = lake.claim(&parts[..1]).unwrap();
        assert_eq!(again[&parts[0]].next_offset, Some(600));
        assert_eq!(again[&parts[0]].epoch, 2);
        assert_eq!(count(&lake, "c"), 1 + 2 * 601);
        // Upkeep folds the rest.
        assert!(lake.compact_offsets().unwrap());
        assert_eq!(count(&lake, "c"), 3);
        assert_eq!(count(&lake, "other"), 1);
        assert_eq!(lake.stored(&parts[0]).unwrap(), Some((Some(600), Some(2))));
        for p in &parts[1..] {
            assert_eq!(lake.stored(p).unwrap(), Some((Some(600), Some(1))));
        }
        // Nothing superseded left: nothing to do.
        assert!(!lake.compact_offsets().unwrap());
    }

    fn batch(tp: &TopicPartition, first: i64, last: i64) -> Batch {
        let mut batch = Batch::default();
        batch.offsets.insert(
            tp.clone(),
            crate::offsets::OffsetRange {
                first,
                last,
                records: (last - first + 1) as u64,
                max_timestamp_ms: None,
                last_timestamp_ms: None,
                timestamps: Default::default(),
            },
        );
        batch
    }

    /// A flush moves a partition only from the exact state it expects, appending its row;
    /// two rows holding that state (two claims of a new partition that raced) refuse it.
    #[test]
    fn a_flush_follows_exactly_one_expected_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = lake(dir.path());
        let p = tp("a", 0);
        lake.claim(std::slice::from_ref(&p)).unwrap();
        let expects = |follows| BTreeMap::from([(p.clone(), Expect { epoch: 1, follows })]);
        lake.flush(&batch(&p, 0, 9), &expects(None), false).unwrap();
        assert_eq!(lake.stored(&p).unwrap(), Some((Some(10), Some(1))));
        // Continuing from anything else is refused and leaves the state as it was.
        let stale = lake.flush(&batch(&p, 0, 9), &expects(None), false);
        assert!(
            matches!(stale, Err(LakeError::OffsetMoved { .. })),
            "{stale:?}"
        );
        let fenced = lake.flush(
            &batch(&p, 10, 19),
            &BTreeMap::from([(
                p.clone(),
                Expect {
                    epoch: 0,
                    follows: Some(10),
                },
            )]),
            false,
        );
        assert!(
            matches!(fenced, Err(LakeError::Fenced { .. })),
            "{fenced:?}"
        );
        lake.flush(&batch(&p, 10, 19), &expects(Some(10)), false)
            .unwrap();
        assert_eq!(lake.stored(&p).unwrap(), Some((Some(20), Some(1))));

        // Two rows of epoch 1 and no offset, as two racing first claims leave them.
        let q = tp("b", 0);
        let offsets = lake.table_ref(OFFSETS_TABLE);
        lake.conn
            .execute_batch(&format!(
                "INSERT INTO {offsets} VALUES ('c', 'b', 0, NULL, NULL, 1, now(), NULL), ('c', 'b', 0, NULL, NULL, 1, now(), NULL)"
            ))
            .unwrap();
        let raced = lake.flush(
            &batch(&q, 0, 4),
            &BTreeMap::from([(
                q.clone(),
                Expect {
                    epoch: 1,
                    follows: None,
                },
            )]),
            false,
        );
        assert!(
            matches!(raced, Err(LakeError::OffsetMoved { .. })),
            "{raced:?}"
        );
        assert_eq!(lake.stored(&q).unwrap(), Some((None, Some(1))));
    }

    /// One flush moves the partitions of several topics with one read and one insert: each
    /// partition's state is its newest row however the rows lie, one stale partition refuses
    /// the whole flush, and afterwards the lake is seen to hold it.
    #[test]
    fn one_flush_moves_many_partitions_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut lake = lake(dir.path());
        let parts = [tp("a", 0), tp("a", 1), tp("b", 0), tp("b'q", 3)];
        lake.claim(&parts).unwrap();
        let expects = |follows: [Option<i64>; 4]| -> BTreeMap<TopicPartition, Expect> {
            parts
                .iter()
                .cloned()
                .zip(follows)
                .map(|(p, follows)| (p, Expect { epoch: 1, follows }))
                .collect()
        };
        let many = |first: i64, last: i64| {
            let mut all = Batch::default();
            for p in &parts {
                all.offsets.extend(batch(p, first, last).offsets);
            }
            all
        };
        lake.flush(&many(0, 9), &expects([None; 4]), false).unwrap();
        lake.flush(&many(10, 19), &expects([Some(10); 4]), false)
            .unwrap();
        for p in &parts {
            assert_eq!(lake.stored(p).unwrap(), Some((Some(20), Some(1))));
        }
        assert!(lake.holds(&many(10, 19), &expects([Some(10); 4])).unwrap());
        assert!(!lake.holds(&many(20, 29), &expects([Some(20); 4])).unwrap());
        // One partition expected from a stale state: nothing moves.
        let refused = lake.flush(
            &many(20, 29),
            &expects([Some(20), Some(20), Some(10), Some(20)]),
            false,
        );
        assert!(
            matches!(refused, Err(LakeError::OffsetMoved { ref topic, .. }) if topic == "b"),
            "{refused:?}"
        );
        for p in &parts {
            assert_eq!(lake.stored(p).unwrap(), Some((Some(20), Some(1))));
        }
        lake.flush(&many(20, 29), &expects([Some(20); 4]), false)
            .unwrap();
        for p in &parts {
            assert_eq!(lake.stored(p).unwrap(), Some((Some(30), Some(1))));
        }
    }
}
