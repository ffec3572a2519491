//! The offsets table: claiming partitions (epoch bump), the compare-and-set that moves
//! offsets in every flush, and the operator's reset.

use std::collections::BTreeMap;

use duckdb::params;
use serde_json::json;

use super::{sql_err, Claim, Lake, LakeError, OFFSETS_TABLE};
use crate::batch::{Batch, TopicPartition};
use crate::offsets::Expect;

/// A partition's row in the offsets table: next offset and epoch.
type Stored = (Option<i64>, Option<i64>);

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
                    "SELECT next_offset, epoch, last_timestamp_ms FROM {offsets} WHERE connector = ? AND topic = ? AND \"partition\" = ?"
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
                        lake.conn
                            .execute(
                                &format!(
                                    "UPDATE {offsets} SET epoch = ?, updated_at = now() WHERE connector = ? AND topic = ? AND \"partition\" = ?"
                                ),
                                params![epoch, lake.settings.connector, tp.topic, tp.partition],
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
            "SELECT topic, \"partition\", next_offset FROM {} WHERE connector = ? AND next_offset IS NOT NULL ORDER BY 1, 2",
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
            "SELECT topic, \"partition\" FROM {} WHERE connector = ? ORDER BY 1, 2",
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
            "SELECT \"partition\", next_offset FROM {} WHERE connector = ? AND topic = ? ORDER BY 1",
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

    /// Moves each partition's offset forward, compare-and-set on the claim epoch: a row
    /// whose epoch changed belongs to another worker now, and the whole flush is refused.
    pub(super) fn write_offsets(
        &self,
        batch: &Batch,
        expects: &BTreeMap<TopicPartition, Expect>,
    ) -> Result<(), LakeError> {
        // Compare-and-set on the claim epoch *and* the offset the batch continues from, so
        // a batch can only ever follow the exact state it was read from.
        let mut update = self
            .conn
            .prepare(&format!(
                "UPDATE {} SET next_offset = ?, last_timestamp_ms = ?, updated_at = now()
                 WHERE connector = ? AND topic = ? AND \"partition\" = ? AND epoch = ?
                   AND next_offset IS NOT DISTINCT FROM ?",
                self.table_ref(OFFSETS_TABLE)
            ))
            .map_err(sql_err("cannot store offsets"))?;
        for (tp, range) in &batch.offsets {
            let expect = expects.get(tp).copied().unwrap_or(Expect {
                epoch: -1,
                follows: None,
            });
            let updated = update
                .execute(params![
                    range.next_offset(),
                    range.last_timestamp_ms,
                    self.settings.connector,
                    tp.topic,
                    tp.partition,
                    expect.epoch,
                    expect.follows
                ])
                .map_err(sql_err("cannot store offsets"))?;
            if updated != 1 {
                return Err(self.refusal(tp, expect));
            }
        }
        Ok(())
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

    /// The stored next offset and epoch of a partition (`None`: no row).
    fn stored(&self, tp: &TopicPartition) -> Result<Option<Stored>, LakeError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT next_offset, epoch FROM {} WHERE connector = ? AND topic = ? AND \"partition\" = ?",
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
        for (tp, range) in &batch.offsets {
            let epoch = expects.get(tp).map(|e| e.epoch);
            match self.stored(tp)? {
                Some((Some(next), stored_epoch))
                    if next == range.next_offset() && stored_epoch == epoch => {}
                _ => return Ok(false),
            }
        }
        Ok(!batch.offsets.is_empty())
    }
}
