//! Every metric the worker exports, defined once, and their Prometheus text rendering.
//!
//! Updated at low frequency (per chunk of records, per flush, per statistics tick), never per
//! record, so a mutex is cheap enough. Labels are bounded: connector, topic, partition, table,
//! flush reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Connector lifecycle, with Kafka Connect's state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Unassigned,
    Running,
    /// Paused over REST: assigned and in the group, fetching nothing.
    Paused,
    Stopped,
    Failed,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unassigned => "UNASSIGNED",
            Self::Running => "RUNNING",
            Self::Paused => "PAUSED",
            Self::Stopped => "STOPPED",
            Self::Failed => "FAILED",
        }
    }
}

/// Samples of one metric family: (suffix and label block, value).
type Samples = Vec<(String, String)>;

/// Cumulative histogram with fixed buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const RECORDS: &[f64] = &[
    1.0,
    10.0,
    100.0,
    1_000.0,
    10_000.0,
    50_000.0,
    100_000.0,
    500_000.0,
    1_000_000.0,
];

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStats {
    /// Next offset stored in the lake.
    pub committed: Option<i64>,
    /// High watermark from the latest fetch response.
    pub high_watermark: Option<i64>,
    pub epoch: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ConnectorStats {
    pub state: State,
    pub error: Option<String>,
    pub consumed: BTreeMap<String, u64>,
    /// Records below the lake offset, delivered again and skipped (already committed).
    pub redelivered: u64,
    /// Records that wrote nothing (tombstones, disabled deletes, control records), by why.
    pub skipped: BTreeMap<&'static str, u64>,
    pub rows: BTreeMap<String, u64>,
    /// Keys deleted per table.
    pub deleted: BTreeMap<String, u64>,
    /// Truncates applied per table.
    pub truncates: BTreeMap<String, u64>,
    /// Bad records set aside (`errors.tolerance=all`), by the stage that failed.
    pub dead_lettered: BTreeMap<&'static str, u64>,
    /// What became of the records of committed flushes: they add up to the records those
    /// flushes covered.
    pub outcomes: crate::batch::Accounting,
    pub flushes: BTreeMap<&'static str, u64>,
    pub flush_seconds: Histogram,
    pub flush_records: Histogram,
    pub lake_retries: u64,
    pub commit_conflicts: u64,
    pub fenced: u64,
    pub maintenance_runs: u64,
    pub data_files: Option<u64>,
    pub last_snapshot: Option<i64>,
    /// Newest Kafka timestamp (ms) among committed records.
    pub newest_committed_ms: Option<i64>,
    pub partitions: BTreeMap<(String, i32), PartitionStats>,
}

impl Default for ConnectorStats {
    fn default() -> Self {
        Self {
            state: State::Unassigned,
            error: None,
            consumed: BTreeMap::new(),
            redelivered: 0,
            skipped: BTreeMap::new(),
            rows: BTreeMap::new(),
            deleted: BTreeMap::new(),
            truncates: BTreeMap::new(),
            dead_lettered: BTreeMap::new(),
            outcomes: crate::batch::Accounting::default(),
            flushes: BTreeMap::new(),
            flush_seconds: Histogram::new(SECONDS),
            flush_records: Histogram::new(RECORDS),
            lake_retries: 0,
            commit_conflicts: 0,
            fenced: 0,
            maintenance_runs: 0,
            data_files: None,
            last_snapshot: None,
            newest_committed_ms: None,
            partitions: BTreeMap::new(),
        }
    }
}

/// The worker's metrics, shared by its connectors, the lake threads and the HTTP listener.
#[derive(Debug, Default)]
pub struct Metrics {
    connectors: Mutex<BTreeMap<String, ConnectorStats>>,
}

impl Metrics {
    /// Runs `f` on one connector's stats (created on first use).
    pub fn update(&self, connector: &str, f: impl FnOnce(&mut ConnectorStats)) {
        if let Ok(mut all) = self.connectors.lock() {
            if !all.contains_key(connector) {
                all.insert(connector.to_owned(), ConnectorStats::default());
            }
            if let Some(stats) = all.get_mut(connector) {
                f(stats);
            }
        }
    }

    /// A copy of every connector's stats.
    pub fn snapshot(&self) -> BTreeMap<String, ConnectorStats> {
        self.connectors
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let all = self.snapshot();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Samples| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let each = |f: &dyn Fn(&str, &ConnectorStats) -> Samples| -> Samples {
            all.iter().flat_map(|(c, s)| f(c, s)).collect()
        };
        family(
            "ducklake_sink_connector_running",
            "gauge",
            "1 while the connector runs, 0 once stopped or failed.",
            each(&|c, s| {
                vec![(
                    labels(&[("connector", c)]),
                    u8::from(s.state == State::Running).to_string(),
                )]
            }),
        );
        family(
            "ducklake_sink_records_consumed_total",
            "counter",
            "Records read from Kafka and decoded, per topic.",
            each(&|c, s| {
                s.consumed
                    .iter()
                    .map(|(t, n)| (labels(&[("connector", c), ("topic", t)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_records_redelivered_total",
            "counter",
            "Records below the lake's offset (already committed), delivered again and skipped.",
            each(&|c, s| vec![(labels(&[("connector", c)]), s.redelivered.to_string())]),
        );
        family(
            "ducklake_sink_records_skipped_total",
            "counter",
            "Records committed without writing anything, per reason: tombstone, delete disabled, truncate disabled, heartbeat, transaction metadata, schema change, logical decoding message.",
            each(&|c, s| {
                s.skipped
                    .iter()
                    .map(|(r, n)| (labels(&[("connector", c), ("reason", r)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_records_dead_lettered_total",
            "counter",
            "Bad records set aside by errors.tolerance=all (to the dead-letter queue when one is configured), per failing stage: KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT.",
            each(&|c, s| {
                s.dead_lettered
                    .iter()
                    .map(|(r, n)| (labels(&[("connector", c), ("stage", r)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_records_committed_total",
            "counter",
            "Records of committed flushes by outcome: written (appended or upserted), deleted, skipped, dead_lettered. They add up to the records the flushes covered.",
            each(&|c, s| {
                let o = &s.outcomes;
                [
                    ("written", o.written),
                    ("deleted", o.deleted),
                    ("skipped", o.skipped),
                    ("dead_lettered", o.dead_lettered),
                ]
                .into_iter()
                .map(|(k, n)| (labels(&[("connector", c), ("outcome", k)]), n.to_string()))
                .collect()
            }),
        );
        family(
            "ducklake_sink_rows_written_total",
            "counter",
            "Rows committed to the lake (appended or upserted), per table.",
            each(&|c, s| {
                s.rows
                    .iter()
                    .map(|(t, n)| (labels(&[("connector", c), ("table", t)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_rows_deleted_total",
            "counter",
            "Keys deleted from the lake by delete events and tombstones, per table.",
            each(&|c, s| {
                s.deleted
                    .iter()
                    .map(|(t, n)| (labels(&[("connector", c), ("table", t)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_truncates_total",
            "counter",
            "Truncate events applied, per table.",
            each(&|c, s| {
                s.truncates
                    .iter()
                    .map(|(t, n)| (labels(&[("connector", c), ("table", t)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_flushes_total",
            "counter",
            "Committed flushes (one DuckLake snapshot each), per trigger.",
            each(&|c, s| {
                s.flushes
                    .iter()
                    .map(|(r, n)| (labels(&[("connector", c), ("reason", r)]), n.to_string()))
                    .collect()
            }),
        );
        family(
            "ducklake_sink_flush_duration_seconds",
            "histogram",
            "Time from handing a batch to the lake to its commit.",
            each(&|c, s| histogram(c, &s.flush_seconds)),
        );
        family(
            "ducklake_sink_flush_size_records",
            "histogram",
            "Records per committed flush.",
            each(&|c, s| histogram(c, &s.flush_records)),
        );
        family(
            "ducklake_sink_lake_retries_total",
            "counter",
            "Lake operations retried after a transient failure (catalog unreachable, commit conflict).",
            each(&|c, s| vec![(labels(&[("connector", c)]), s.lake_retries.to_string())]),
        );
        family(
            "ducklake_sink_commit_conflicts_total",
            "counter",
            "Lake commits that conflicted with another writer and were retried.",
            each(&|c, s| vec![(labels(&[("connector", c)]), s.commit_conflicts.to_string())]),
        );
        family(
            "ducklake_sink_fenced_total",
            "counter",
            "Flushes refused because another worker had claimed the partitions.",
            each(&|c, s| vec![(labels(&[("connector", c)]), s.fenced.to_string())]),
        );
        family(
            "ducklake_sink_maintenance_runs_total",
            "counter",
            "Completed maintenance runs (inlined data flushed, adjacent files merged, snapshots expired).",
            each(&|c, s| vec![(labels(&[("connector", c)]), s.maintenance_runs.to_string())]),
        );
        family(
            "ducklake_sink_data_files",
            "gauge",
            "Parquet data files of the lake's tables after the last maintenance run.",
            each(&|c, s| {
                s.data_files
                    .map(|n| vec![(labels(&[("connector", c)]), n.to_string())])
                    .unwrap_or_default()
            }),
        );
        family(
            "ducklake_sink_last_snapshot_id",
            "gauge",
            "DuckLake snapshot id of the last committed flush.",
            each(&|c, s| {
                s.last_snapshot
                    .map(|id| vec![(labels(&[("connector", c)]), id.to_string())])
                    .unwrap_or_default()
            }),
        );
        family(
            "ducklake_sink_freshness_seconds",
            "gauge",
            "Now minus the newest Kafka timestamp of any committed record.",
            each(&|c, s| {
                s.newest_committed_ms
                    .map(|ts| {
                        vec![(
                            labels(&[("connector", c)]),
                            format!("{:.3}", (now_ms - ts) as f64 / 1000.0),
                        )]
                    })
                    .unwrap_or_default()
            }),
        );
        family(
            "ducklake_sink_consumer_lag",
            "gauge",
            "High watermark minus the lake's next offset, per assigned partition.",
            each(&|c, s| {
                s.partitions
                    .iter()
                    .filter_map(|((t, p), ps)| {
                        let lag = ps.high_watermark? - ps.committed.unwrap_or(0);
                        Some((
                            labels(&[
                                ("connector", c),
                                ("topic", t),
                                ("partition", &p.to_string()),
                            ]),
                            lag.max(0).to_string(),
                        ))
                    })
                    .collect()
            }),
        );
        out
    }
}

/// Histogram samples; each key carries its suffix (`_bucket`, `_sum`, `_count`) in front of
/// the label block, so the family name can be prefixed as for any other sample.
fn histogram(connector: &str, h: &Histogram) -> Samples {
    let mut v: Samples = h
        .bounds
        .iter()
        .zip(&h.counts)
        .map(|(b, n)| {
            (
                labels(&[("connector", connector), ("le", &b.to_string())]),
                n.to_string(),
            )
        })
        .collect();
    v.push((
        labels(&[("connector", connector), ("le", "+Inf")]),
        h.count.to_string(),
    ));
    v.push((
        format!("_sum{}", labels(&[("connector", connector)])),
        h.sum.to_string(),
    ));
    v.push((
        format!("_count{}", labels(&[("connector", connector)])),
        h.count.to_string(),
    ));
    v.iter_mut()
        .take(h.bounds.len() + 1)
        .for_each(|(l, _)| *l = format!("_bucket{l}"));
    v
}

/// `{k="v",…}` with Prometheus escaping of `\`, `"` and newlines.
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_escaped_labels_and_histograms() {
        let m = Metrics::default();
        m.update("orders", |s| {
            s.state = State::Running;
            s.consumed.insert("a\"b".into(), 3);
            s.flush_seconds.observe(0.2);
            s.partitions.insert(
                ("t".into(), 1),
                PartitionStats {
                    committed: Some(40),
                    high_watermark: Some(100),
                    epoch: Some(2),
                },
            );
        });
        let text = m.render();
        assert!(
            text.contains("ducklake_sink_connector_running{connector=\"orders\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "ducklake_sink_records_consumed_total{connector=\"orders\",topic=\"a\\\"b\"} 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ducklake_sink_flush_duration_seconds_bucket{connector=\"orders\",le=\"0.1\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ducklake_sink_flush_duration_seconds_bucket{connector=\"orders\",le=\"0.25\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ducklake_sink_flush_duration_seconds_bucket{connector=\"orders\",le=\"+Inf\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ducklake_sink_flush_duration_seconds_count{connector=\"orders\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "ducklake_sink_consumer_lag{connector=\"orders\",topic=\"t\",partition=\"1\"} 60\n"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE ducklake_sink_flush_duration_seconds histogram\n"));
    }
}
