//! The offset rules, in one place: where a claimed partition starts, which delivered records
//! are new, and what the lake's next offset is after a flush.
//!
//! Contract: a partition is read from the lake's `next_offset` (resumed one record early when
//! the lake knows that record's Kafka timestamp, to notice a recreated topic); a record below
//! the offset the partition expects next was committed already and is skipped; the lake's
//! next offset only moves when a flush holding the records before it has committed.

use std::collections::BTreeMap;

use rdkafka::Offset;

use crate::batch::TopicPartition;
use crate::config::StartPolicy;

/// A partition as a worker holds it after claiming it: where to resume and the epoch that
/// proves ownership in every later commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Next offset to read; `None` when nothing of the partition was ever committed.
    pub next_offset: Option<i64>,
    pub epoch: i64,
    /// Kafka timestamp of the record at `next_offset - 1`, when known.
    pub last_timestamp_ms: Option<i64>,
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
    /// The records' timestamps, for the freshness histogram (not stored in the lake).
    pub timestamps: crate::batch::TimestampRuns,
}

impl OffsetRange {
    /// The offset the next record of this partition has: what the lake stores.
    pub fn next_offset(&self) -> i64 {
        self.last + 1
    }
}

/// What a flush must find in the lake to move a partition's offset (compare-and-set): the
/// claim epoch, and the next offset the batch continues from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub epoch: i64,
    /// `None`: the lake holds no offset for the partition yet.
    pub follows: Option<i64>,
}

/// What to do with a delivered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New: decode and buffer it.
    Take,
    /// Below what the partition expects: committed already (or not ours any more).
    Skip,
    /// The record before the lake's offset is not the one the lake committed there: the
    /// topic was deleted and recreated.
    Changed { stored: i64, found: Option<i64> },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PartitionState {
    epoch: i64,
    /// Next offset stored in the lake.
    lake_next: Option<i64>,
    /// The offset the next new record has at least.
    expected: Option<i64>,
    /// Resumed one record early: the Kafka timestamp the record at `lake_next - 1` carries.
    verify: Option<i64>,
    /// The next offset after the last batch handed to the lake (committed or in flight).
    chain: Option<i64>,
    /// Where the claim started reading, for reading a partition again from the start.
    start: Option<Offset>,
    /// After a seek back: records above this offset were fetched before the seek (leftovers
    /// in flight) and are skipped until the first re-read one arrives.
    resync_above: Option<i64>,
}

/// The partitions this worker holds, with their claim epochs and positions.
#[derive(Debug, Default)]
pub struct Assignment {
    partitions: crate::FastMap<TopicPartition, PartitionState>,
}

impl Assignment {
    /// Takes a claimed partition; returns where to start reading it, or why it cannot start.
    pub fn claim(
        &mut self,
        tp: &TopicPartition,
        claim: &Claim,
        policy: StartPolicy,
    ) -> Result<Offset, String> {
        let mut state = PartitionState {
            epoch: claim.epoch,
            lake_next: claim.next_offset,
            chain: claim.next_offset,
            ..PartitionState::default()
        };
        let start = match (claim.next_offset, claim.last_timestamp_ms) {
            (Some(next), Some(ts)) if next > 0 => {
                // Resume one record early and check it is the one committed.
                state.verify = Some(ts);
                state.expected = Some(next - 1);
                Offset::Offset(next - 1)
            }
            (Some(next), _) => {
                state.expected = Some(next);
                Offset::Offset(next)
            }
            (None, _) => match policy {
                StartPolicy::Earliest => Offset::Beginning,
                StartPolicy::Latest => Offset::End,
                StartPolicy::Fail => {
                    return Err(format!(
                        "`{}` partition {} has no offset in the lake and auto.offset.reset=none",
                        tp.topic, tp.partition
                    ))
                }
            },
        };
        state.start = Some(start);
        self.partitions.insert(tp.clone(), state);
        Ok(start)
    }

    /// Judges a delivered record at `offset` with Kafka timestamp `timestamp_ms`.
    pub fn check(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        timestamp_ms: Option<i64>,
    ) -> Verdict {
        let Some(state) = self.partitions.get_mut(tp) else {
            return Verdict::Skip;
        };
        if let Some(above) = state.resync_above {
            if offset > above {
                return Verdict::Skip;
            }
            state.resync_above = None;
        }
        if state.expected.is_some_and(|e| offset < e) {
            return Verdict::Skip;
        }
        if let Some(stored) = state.verify.take() {
            let next = state.lake_next.unwrap_or(0);
            state.expected = Some(next);
            if offset == next - 1 {
                if timestamp_ms != Some(stored) {
                    return Verdict::Changed {
                        stored,
                        found: timestamp_ms,
                    };
                }
                // The committed record itself: already in the lake.
                return Verdict::Skip;
            }
            // The record before the lake offset is gone (compaction): nothing to compare.
            if offset < next {
                return Verdict::Skip;
            }
        }
        Verdict::Take
    }

    /// A record at `offset` was taken: the next one has a higher offset.
    pub fn taken(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(state) = self.partitions.get_mut(tp) {
            state.expected = Some(offset + 1);
        }
    }

    /// A batch reaching `next` is handed to the lake: what its compare-and-set expects.
    pub fn hand_off(&mut self, tp: &TopicPartition, next: i64) -> Expect {
        match self.partitions.get_mut(tp) {
            Some(state) => Expect {
                epoch: state.epoch,
                follows: state.chain.replace(next),
            },
            None => Expect {
                epoch: -1,
                follows: None,
            },
        }
    }

    /// The batch handed off last was dropped uncommitted: the next one follows the lake.
    pub fn dropped(&mut self, tp: &TopicPartition) {
        if let Some(state) = self.partitions.get_mut(tp) {
            state.chain = state.lake_next;
        }
    }

    /// A flush committed: the lake's next offsets.
    pub fn committed(&mut self, offsets: &BTreeMap<TopicPartition, i64>) {
        for (tp, next) in offsets {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.lake_next = Some(*next);
            }
        }
    }

    /// The records of `tp` taken since the lake's offset were dropped uncommitted, and the
    /// partition stays with this worker: it must be read again from the lake's offset.
    /// Returns where to seek the consumer; until the first re-read record arrives, records
    /// fetched before the seek are skipped.
    pub fn reread(&mut self, tp: &TopicPartition) -> Option<Offset> {
        let state = self.partitions.get_mut(tp)?;
        state.chain = state.lake_next;
        state.verify = None;
        state.resync_above = state.expected.map(|e| e - 1);
        state.expected = state.lake_next;
        Some(match state.lake_next {
            Some(next) => Offset::Offset(next),
            None => state.start.unwrap_or(Offset::Beginning),
        })
    }

    /// Where reading `tp` goes on after a pause: the next offset the pipeline takes (the
    /// lake's next offset once everything read is committed; the record before it while
    /// that one is still to be verified). `None` when nothing is known yet: reading goes on
    /// from where the consumer stood.
    pub fn resume_at(&self, tp: &TopicPartition) -> Option<Offset> {
        self.partitions
            .get(tp)
            .and_then(|s| s.expected.or(s.lake_next))
            .map(Offset::Offset)
    }

    pub fn revoke(&mut self, tp: &TopicPartition) {
        self.partitions.remove(tp);
    }

    pub fn contains(&self, tp: &TopicPartition) -> bool {
        self.partitions.contains_key(tp)
    }

    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    pub fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions.keys()
    }

    /// The claim epoch that proves ownership in a flush (`-1`: not held, the flush is
    /// refused).
    pub fn epoch(&self, tp: &TopicPartition) -> i64 {
        self.partitions.get(tp).map_or(-1, |s| s.epoch)
    }

    /// The lake's next offset.
    pub fn lake_next(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions.get(tp).and_then(|s| s.lake_next)
    }

    /// How far the partition has been read (the next offset wanted).
    pub fn read_to(&self, tp: &TopicPartition) -> i64 {
        self.partitions
            .get(tp)
            .and_then(|s| s.expected.or(s.lake_next))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        }
    }

    fn claim(next: Option<i64>, ts: Option<i64>) -> Claim {
        Claim {
            next_offset: next,
            epoch: 7,
            last_timestamp_ms: ts,
        }
    }

    #[test]
    fn a_claimed_partition_resumes_one_early_and_checks_that_record() {
        let mut a = Assignment::default();
        let start = a.claim(&tp(), &claim(Some(10), Some(500)), StartPolicy::Earliest);
        assert_eq!(start, Ok(Offset::Offset(9)));
        assert_eq!(a.epoch(&tp()), 7);
        assert_eq!(a.check(&tp(), 8, None), Verdict::Skip);
        assert_eq!(a.check(&tp(), 9, Some(500)), Verdict::Skip);
        assert_eq!(
            a.check(&tp(), 9, Some(500)),
            Verdict::Skip,
            "still below 10"
        );
        assert_eq!(a.check(&tp(), 10, Some(600)), Verdict::Take);
        a.taken(&tp(), 10);
        assert_eq!(a.check(&tp(), 10, Some(600)), Verdict::Skip);
        assert_eq!(a.read_to(&tp()), 11);
    }

    #[test]
    fn reading_resumes_at_the_next_record_to_take_or_to_verify() {
        let mut a = Assignment::default();
        a.claim(&tp(), &claim(Some(10), Some(500)), StartPolicy::Earliest)
            .unwrap();
        assert_eq!(a.resume_at(&tp()), Some(Offset::Offset(9)), "verify first");
        assert_eq!(a.check(&tp(), 9, Some(500)), Verdict::Skip);
        assert_eq!(a.resume_at(&tp()), Some(Offset::Offset(10)));
        assert_eq!(a.check(&tp(), 10, Some(600)), Verdict::Take);
        a.taken(&tp(), 10);
        assert_eq!(a.resume_at(&tp()), Some(Offset::Offset(11)));
        let mut fresh = Assignment::default();
        fresh
            .claim(&tp(), &claim(None, None), StartPolicy::Earliest)
            .unwrap();
        assert_eq!(fresh.resume_at(&tp()), None);
    }

    #[test]
    fn a_different_record_before_the_lake_offset_means_a_recreated_topic() {
        let mut a = Assignment::default();
        a.claim(&tp(), &claim(Some(10), Some(500)), StartPolicy::Earliest)
            .unwrap();
        assert_eq!(
            a.check(&tp(), 9, Some(501)),
            Verdict::Changed {
                stored: 500,
                found: Some(501)
            }
        );
        // Compacted away: the first record delivered is past it; nothing to compare.
        let mut a = Assignment::default();
        a.claim(&tp(), &claim(Some(10), Some(500)), StartPolicy::Earliest)
            .unwrap();
        assert_eq!(a.check(&tp(), 12, Some(9)), Verdict::Take);
    }

    #[test]
    fn partitions_the_lake_never_saw_follow_auto_offset_reset() {
        let mut a = Assignment::default();
        assert_eq!(
            a.claim(&tp(), &claim(None, None), StartPolicy::Earliest),
            Ok(Offset::Beginning)
        );
        assert_eq!(a.check(&tp(), 0, None), Verdict::Take);
        assert_eq!(
            a.claim(&tp(), &claim(None, None), StartPolicy::Latest),
            Ok(Offset::End)
        );
        assert!(a
            .claim(&tp(), &claim(None, None), StartPolicy::Fail)
            .unwrap_err()
            .contains("auto.offset.reset=none"));
        assert_eq!(
            a.claim(&tp(), &claim(Some(3), None), StartPolicy::Fail),
            Ok(Offset::Offset(3))
        );
    }

    #[test]
    fn each_batch_expects_the_offset_the_previous_one_reached() {
        let mut a = Assignment::default();
        a.claim(&tp(), &claim(None, None), StartPolicy::Earliest)
            .unwrap();
        let e = a.hand_off(&tp(), 10);
        assert_eq!(
            e,
            Expect {
                epoch: 7,
                follows: None
            }
        );
        // The next batch is handed off before the first commits: it follows the first.
        assert_eq!(a.hand_off(&tp(), 25).follows, Some(10));
        let mut done = BTreeMap::new();
        done.insert(tp(), 10);
        a.committed(&done);
        // The second was dropped: the one after it continues from what the lake has.
        a.dropped(&tp());
        assert_eq!(a.hand_off(&tp(), 30).follows, Some(10));
        assert_eq!(
            a.hand_off(
                &TopicPartition {
                    topic: "other".into(),
                    partition: 0
                },
                5
            ),
            Expect {
                epoch: -1,
                follows: None
            }
        );
    }

    /// A flush refused on revocation (another worker claimed one of its partitions) drops
    /// the records of every partition in it; those that stay assigned are read again.
    #[test]
    fn revoke_while_fenced_rereads_the_partitions_that_stay() {
        let p = |n| TopicPartition {
            topic: "t".into(),
            partition: n,
        };
        let mut a = Assignment::default();
        for n in 0..2 {
            a.claim(&p(n), &claim(Some(100), None), StartPolicy::Earliest)
                .unwrap();
            for o in 100..110 {
                assert_eq!(a.check(&p(n), o, None), Verdict::Take);
                a.taken(&p(n), o);
            }
            a.hand_off(&p(n), 110);
        }
        // The flush of both is fenced; partition 0 is revoked, partition 1 stays.
        a.revoke(&p(0));
        assert_eq!(a.reread(&p(0)), None);
        assert_eq!(a.reread(&p(1)), Some(Offset::Offset(100)));
        assert_eq!(
            a.check(&p(1), 110, None),
            Verdict::Skip,
            "fetched before the seek"
        );
        assert_eq!(a.check(&p(1), 100, None), Verdict::Take, "read again");
        a.taken(&p(1), 100);
        assert_eq!(a.hand_off(&p(1), 101).follows, Some(100));
    }

    #[test]
    fn dropped_records_are_read_again_and_revoked_partitions_are_refused() {
        let mut a = Assignment::default();
        a.claim(&tp(), &claim(Some(0), None), StartPolicy::Earliest)
            .unwrap();
        for o in 0..5 {
            assert_eq!(a.check(&tp(), o, None), Verdict::Take);
            a.taken(&tp(), o);
        }
        let mut done = BTreeMap::new();
        done.insert(tp(), 3);
        a.committed(&done);
        assert_eq!(a.lake_next(&tp()), Some(3));
        assert_eq!(a.reread(&tp()), Some(Offset::Offset(3)));
        // Fetched before the seek: skipped, until the re-read ones come.
        assert_eq!(a.check(&tp(), 5, None), Verdict::Skip);
        assert_eq!(a.check(&tp(), 6, None), Verdict::Skip);
        assert_eq!(a.check(&tp(), 3, None), Verdict::Take);
        a.taken(&tp(), 3);
        assert_eq!(a.check(&tp(), 4, None), Verdict::Take);
        a.revoke(&tp());
        assert_eq!(a.check(&tp(), 5, None), Verdict::Skip);
        assert_eq!(a.epoch(&tp()), -1);
    }
}
