//! Every metric the worker exports, defined once, on the `prometheus` crate.
//!
//! Each connector's [`ConnectorStats`] is what the pipeline and the lake thread update (through
//! [`Metrics::update`], at low frequency: per chunk of records, per flush, per statistics tick,
//! never per record) and what the status endpoint reads. The exported families live in a
//! [`Registry`] owned by [`Metrics`] (no global registry: tests run several workers in one
//! process), registered once at construction:
//! - counters, the run gauges and the flush histograms are `prometheus` vectors; every update
//!   moves what it changed in the stats into them (a counter by the amount its stat grew);
//! - freshness, consumer lag and the record freshness histogram are computed from the stats
//!   at scrape time by a [`Collector`], so a revoked partition's lag series goes with it.
//!
//! Labels are bounded: connector, topic, partition, table, flush reason, skip reason, failing
//! stage, outcome.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::batch::TimestampRuns;

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

/// Bucket bounds of the flush duration histogram (seconds).
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds of the flush size histogram (records).
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
/// Bucket bounds of the record freshness histogram (seconds): fine from 0.5 s to 10 s, where
/// a p99 target of a few seconds is read, then coarse up to an hour.
pub const FRESHNESS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0,
    60.0, 300.0, 900.0, 3600.0,
];

/// Observations of one histogram of one connector, moved into the exported histogram by the
/// next [`Metrics::update`] (the count and sum stay, for readers of a snapshot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub count: u64,
    pub sum: f64,
    pending: Vec<f64>,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.pending.push(v);
    }
}

/// A histogram whose observations carry a weight: each committed record's age, counted
/// per run of equal timestamps instead of one call per record.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedHistogram {
    /// Per bucket of [`FRESHNESS`] plus the overflow, not cumulative.
    counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Default for WeightedHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; FRESHNESS.len() + 1],
            count: 0,
            sum: 0.0,
        }
    }
}

impl WeightedHistogram {
    pub fn observe(&mut self, v: f64, weight: u64) {
        let i = FRESHNESS.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get_mut(i) {
            *c += weight;
        }
        self.count += weight;
        self.sum += v * weight as f64;
    }

    /// Cumulative count per bound of [`FRESHNESS`].
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        FRESHNESS
            .iter()
            .zip(&self.counts)
            .map(|(b, n)| {
                total += n;
                (*b, total)
            })
            .collect()
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
    /// Per topic, each committed record's age at commit (commit time − Kafka timestamp).
    pub record_freshness: BTreeMap<String, WeightedHistogram>,
    pub lake_retries: u64,
    pub commit_conflicts: u64,
    pub fenced: u64,
    pub maintenance_runs: u64,
    /// Duration of each maintenance run (the longest a flush can wait behind upkeep).
    pub maintenance_seconds: Histogram,
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
            flush_seconds: Histogram::default(),
            flush_records: Histogram::default(),
            record_freshness: BTreeMap::new(),
            lake_retries: 0,
            commit_conflicts: 0,
            fenced: 0,
            maintenance_runs: 0,
            maintenance_seconds: Histogram::default(),
            data_files: None,
            last_snapshot: None,
            newest_committed_ms: None,
            partitions: BTreeMap::new(),
        }
    }
}

impl ConnectorStats {
    /// Counts the records of `topic` committed at `committed_at_ms` (Unix ms) with their
    /// Kafka timestamps. A timestamp ahead of the commit (a producer's clock running fast)
    /// counts as age 0.
    pub fn observe_freshness(&mut self, topic: &str, committed_at_ms: i64, runs: &TimestampRuns) {
        if runs.records() == 0 {
            return;
        }
        if !self.record_freshness.contains_key(topic) {
            self.record_freshness
                .insert(topic.to_owned(), WeightedHistogram::default());
        }
        if let Some(h) = self.record_freshness.get_mut(topic) {
            for (ts, n) in runs.runs() {
                h.observe(committed_at_ms.saturating_sub(ts).max(0) as f64 / 1000.0, n);
            }
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The counter families, in the order of [`COUNTERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Counter {
    Consumed,
    Redelivered,
    Skipped,
    DeadLettered,
    Committed,
    RowsWritten,
    RowsDeleted,
    Truncates,
    Flushes,
    LakeRetries,
    CommitConflicts,
    Fenced,
    MaintenanceRuns,
}

/// Name, help and the label after `connector` (if any) of each counter, in [`Counter`] order.
const COUNTERS: &[(&str, &str, Option<&str>)] = &[
    (
        "ducklake_sink_records_consumed_total",
        "Records read from Kafka and decoded, per topic.",
        Some("topic"),
    ),
    (
        "ducklake_sink_records_redelivered_total",
        "Records below the lake's offset (already committed), delivered again and skipped.",
        None,
    ),
    (
        "ducklake_sink_records_skipped_total",
        "Records committed without writing anything, per reason: tombstone, delete disabled, truncate disabled, heartbeat, transaction metadata, schema change, logical decoding message.",
        Some("reason"),
    ),
    (
        "ducklake_sink_records_dead_lettered_total",
        "Bad records set aside by errors.tolerance=all (to the dead-letter queue when one is configured), per failing stage: KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT.",
        Some("stage"),
    ),
    (
        "ducklake_sink_records_committed_total",
        "Records of committed flushes by outcome: written (appended or upserted), deleted, skipped, dead_lettered. They add up to the records the flushes covered.",
        Some("outcome"),
    ),
    (
        "ducklake_sink_rows_written_total",
        "Rows committed to the lake (appended or upserted), per table.",
        Some("table"),
    ),
    (
        "ducklake_sink_rows_deleted_total",
        "Keys deleted from the lake by delete events and tombstones, per table.",
        Some("table"),
    ),
    (
        "ducklake_sink_truncates_total",
        "Truncate events applied, per table.",
        Some("table"),
    ),
    (
        "ducklake_sink_flushes_total",
        "Committed flushes (one DuckLake snapshot each), per trigger.",
        Some("reason"),
    ),
    (
        "ducklake_sink_lake_retries_total",
        "Lake operations retried after a transient failure (catalog unreachable, commit conflict).",
        None,
    ),
    (
        "ducklake_sink_commit_conflicts_total",
        "Lake commits that conflicted with another writer and were retried.",
        None,
    ),
    (
        "ducklake_sink_fenced_total",
        "Flushes refused because another worker had claimed the partitions.",
        None,
    ),
    (
        "ducklake_sink_maintenance_runs_total",
        "Completed maintenance runs (inlined data flushed, adjacent files merged, snapshots expired).",
        None,
    ),
];

/// Every counter value of one connector's stats, keyed by family and second label value
/// (empty for counters labelled by connector alone). Counters the alert rules use are always
/// there, so their series exist at 0 from the start.
fn counter_values(s: &ConnectorStats) -> BTreeMap<(Counter, String), u64> {
    let mut v = BTreeMap::new();
    let mut put = |c: Counter, label: &str, n: u64| {
        v.insert((c, label.to_owned()), n);
    };
    for (topic, n) in &s.consumed {
        put(Counter::Consumed, topic, *n);
    }
    put(Counter::Redelivered, "", s.redelivered);
    for (why, n) in &s.skipped {
        put(Counter::Skipped, why, *n);
    }
    for (stage, n) in &s.dead_lettered {
        put(Counter::DeadLettered, stage, *n);
    }
    let o = &s.outcomes;
    for (outcome, n) in [
        ("written", o.written),
        ("deleted", o.deleted),
        ("skipped", o.skipped),
        ("dead_lettered", o.dead_lettered),
    ] {
        put(Counter::Committed, outcome, n);
    }
    for (table, n) in &s.rows {
        put(Counter::RowsWritten, table, *n);
    }
    for (table, n) in &s.deleted {
        put(Counter::RowsDeleted, table, *n);
    }
    for (table, n) in &s.truncates {
        put(Counter::Truncates, table, *n);
    }
    for (reason, n) in &s.flushes {
        put(Counter::Flushes, reason, *n);
    }
    put(Counter::LakeRetries, "", s.lake_retries);
    put(Counter::CommitConflicts, "", s.commit_conflicts);
    put(Counter::Fenced, "", s.fenced);
    put(Counter::MaintenanceRuns, "", s.maintenance_runs);
    v
}

/// The families kept up to date by [`Metrics::update`].
#[derive(Debug)]
struct Exported {
    counters: Vec<IntCounterVec>,
    running: IntGaugeVec,
    paused: IntGaugeVec,
    stopped: IntGaugeVec,
    data_files: IntGaugeVec,
    last_snapshot: IntGaugeVec,
    flush_seconds: HistogramVec,
    flush_records: HistogramVec,
    maintenance_seconds: HistogramVec,
}

impl Exported {
    fn new(registry: &Registry) -> prometheus::Result<Self> {
        fn register<C: Collector + Clone + 'static>(
            registry: &Registry,
            c: C,
        ) -> prometheus::Result<C> {
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let gauge = |name: &str, help: &str| {
            register(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["connector"])?,
            )
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    &["connector"],
                )?,
            )
        };
        let counters = COUNTERS
            .iter()
            .map(|(name, help, label)| {
                let labels: Vec<&str> = std::iter::once("connector").chain(*label).collect();
                register(
                    registry,
                    IntCounterVec::new(Opts::new(*name, *help), &labels)?,
                )
            })
            .collect::<prometheus::Result<Vec<_>>>()?;
        Ok(Self {
            counters,
            running: gauge(
                "ducklake_sink_connector_running",
                "1 while the connector runs, 0 once stopped or failed.",
            )?,
            paused: gauge(
                "ducklake_sink_connector_paused",
                "1 while the connector is paused (PUT /connectors/<name>/pause), else 0.",
            )?,
            stopped: gauge(
                "ducklake_sink_connector_stopped",
                "1 while the connector is stopped (PUT /connectors/<name>/stop), else 0.",
            )?,
            data_files: gauge(
                "ducklake_sink_data_files",
                "Parquet data files of the lake's tables after the last maintenance run.",
            )?,
            last_snapshot: gauge(
                "ducklake_sink_last_snapshot_id",
                "DuckLake snapshot id of the last committed flush.",
            )?,
            flush_seconds: histogram(
                "ducklake_sink_flush_duration_seconds",
                "Time from handing a batch to the lake to its commit.",
                SECONDS,
            )?,
            flush_records: histogram(
                "ducklake_sink_flush_size_records",
                "Records per committed flush.",
                RECORDS,
            )?,
            maintenance_seconds: histogram(
                "ducklake_sink_maintenance_duration_seconds",
                "Time of one bounded maintenance run (flushes wait behind it).",
                SECONDS,
            )?,
        })
    }

    /// Moves what an update changed in `s` into the exported families: counters grow by what
    /// their stat grew (a stat lower than before was reset, e.g. by a restarted connector:
    /// its new value is all growth), gauges take the stat's value, histograms the pending
    /// observations.
    fn publish(
        &self,
        connector: &str,
        before: &BTreeMap<(Counter, String), u64>,
        s: &mut ConnectorStats,
    ) {
        for (key, now) in &counter_values(s) {
            let (c, label) = key;
            let Some((family, (_, _, labelled))) = self
                .counters
                .get(*c as usize)
                .zip(COUNTERS.get(*c as usize))
            else {
                continue;
            };
            let was = before.get(key).copied().unwrap_or(0);
            let grew = if *now >= was { now - was } else { *now };
            let values: &[&str] = if labelled.is_some() {
                &[connector, label]
            } else {
                &[connector]
            };
            if let Ok(counter) = family.get_metric_with_label_values(values) {
                counter.inc_by(grew);
            }
        }
        if let Ok(g) = self.running.get_metric_with_label_values(&[connector]) {
            g.set(i64::from(s.state == State::Running));
        }
        if let Ok(g) = self.paused.get_metric_with_label_values(&[connector]) {
            g.set(i64::from(s.state == State::Paused));
        }
        if let Ok(g) = self.stopped.get_metric_with_label_values(&[connector]) {
            g.set(i64::from(s.state == State::Stopped));
        }
        for (family, value) in [
            (&self.data_files, s.data_files.map(|n| n as i64)),
            (&self.last_snapshot, s.last_snapshot),
        ] {
            match value {
                Some(v) => {
                    if let Ok(g) = family.get_metric_with_label_values(&[connector]) {
                        g.set(v);
                    }
                }
                None => {
                    let _ = family.remove_label_values(&[connector]);
                }
            }
        }
        for (family, h) in [
            (&self.flush_seconds, &mut s.flush_seconds),
            (&self.flush_records, &mut s.flush_records),
            (&self.maintenance_seconds, &mut s.maintenance_seconds),
        ] {
            let exported = family.get_metric_with_label_values(&[connector]).ok();
            for v in h.pending.drain(..) {
                if let Some(e) = &exported {
                    e.observe(v);
                }
            }
        }
    }
}

/// The families computed from the stats at scrape time: freshness (now − newest committed
/// record timestamp), consumer lag of the partitions held now, and the record freshness
/// histogram.
struct ScrapeTime {
    connectors: Arc<Mutex<BTreeMap<String, ConnectorStats>>>,
    freshness: Opts,
    lag: Opts,
    /// Descriptions of the families, for registration: built once from the same options.
    descs: Vec<Desc>,
}

const FRESHNESS_LABELS: &[&str] = &["connector"];
const LAG_LABELS: &[&str] = &["connector", "topic", "partition"];
const RECORD_FRESHNESS: (&str, &str) = (
    "ducklake_sink_record_freshness_seconds",
    "Age of each committed record at its commit (commit time minus the record's Kafka timestamp), per topic.",
);

impl ScrapeTime {
    fn new(connectors: Arc<Mutex<BTreeMap<String, ConnectorStats>>>) -> prometheus::Result<Self> {
        let freshness = Opts::new(
            "ducklake_sink_freshness_seconds",
            "Now minus the newest Kafka timestamp of any committed record.",
        );
        let lag = Opts::new(
            "ducklake_sink_consumer_lag",
            "High watermark minus the lake's next offset, per assigned partition.",
        );
        let mut descs: Vec<Desc> = GaugeVec::new(freshness.clone(), FRESHNESS_LABELS)?
            .desc()
            .into_iter()
            .chain(IntGaugeVec::new(lag.clone(), LAG_LABELS)?.desc())
            .cloned()
            .collect();
        descs.push(Desc::new(
            RECORD_FRESHNESS.0.to_owned(),
            RECORD_FRESHNESS.1.to_owned(),
            vec!["connector".to_owned(), "topic".to_owned()],
            Default::default(),
        )?);
        Ok(Self {
            connectors,
            freshness,
            lag,
            descs,
        })
    }

    fn families(&self) -> prometheus::Result<Vec<MetricFamily>> {
        let now = now_ms();
        let freshness = GaugeVec::new(self.freshness.clone(), FRESHNESS_LABELS)?;
        let lag = IntGaugeVec::new(self.lag.clone(), LAG_LABELS)?;
        let mut histogram = MetricFamily::default();
        histogram.set_name(RECORD_FRESHNESS.0.to_owned());
        histogram.set_help(RECORD_FRESHNESS.1.to_owned());
        histogram.set_field_type(MetricType::HISTOGRAM);
        let all = self
            .connectors
            .lock()
            .map_err(|_| prometheus::Error::Msg("metrics lock poisoned".to_owned()))?;
        for (c, s) in all.iter() {
            if let Some(ts) = s.newest_committed_ms {
                freshness
                    .get_metric_with_label_values(&[c])?
                    .set((now - ts) as f64 / 1000.0);
            }
            for ((topic, partition), ps) in &s.partitions {
                if let Some(hw) = ps.high_watermark {
                    let behind = hw - ps.committed.unwrap_or(0);
                    lag.get_metric_with_label_values(&[c, topic, &partition.to_string()])?
                        .set(behind.max(0));
                }
            }
            for (topic, h) in &s.record_freshness {
                histogram.mut_metric().push(weighted(c, topic, h));
            }
        }
        drop(all);
        let mut families = freshness.collect();
        families.extend(lag.collect());
        families.push(histogram);
        Ok(families)
    }
}

/// One series of the record freshness histogram.
fn weighted(connector: &str, topic: &str, h: &WeightedHistogram) -> proto::Metric {
    let label = |name: &str, value: &str| {
        let mut l = proto::LabelPair::default();
        l.set_name(name.to_owned());
        l.set_value(value.to_owned());
        l
    };
    let buckets = h
        .cumulative()
        .into_iter()
        .map(|(bound, n)| {
            let mut b = proto::Bucket::default();
            b.set_upper_bound(bound);
            b.set_cumulative_count(n);
            b
        })
        .collect();
    let mut p = proto::Histogram::default();
    p.set_bucket(buckets);
    p.set_sample_count(h.count);
    p.set_sample_sum(h.sum);
    let mut m = proto::Metric::default();
    m.set_label(vec![label("connector", connector), label("topic", topic)]);
    m.set_histogram(p);
    m
}

impl Collector for ScrapeTime {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.families().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "scrape-time metrics not computed");
            Vec::new()
        })
    }
}

/// The worker's metrics, shared by its connectors, the lake threads and the HTTP listener.
#[derive(Debug)]
pub struct Metrics {
    connectors: Arc<Mutex<BTreeMap<String, ConnectorStats>>>,
    registry: Registry,
    exported: Exported,
}

impl Default for Metrics {
    /// A registry of its own with every family registered.
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        // Names, labels and buckets are constants: they are valid or no test passes.
        Self::new().expect("metric definitions are valid and registered once")
    }
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let connectors = Arc::new(Mutex::new(BTreeMap::new()));
        let registry = Registry::new();
        let exported = Exported::new(&registry)?;
        registry.register(Box::new(ScrapeTime::new(connectors.clone())?))?;
        Ok(Self {
            connectors,
            registry,
            exported,
        })
    }

    /// Runs `f` on one connector's stats (created on first use) and exports what it changed.
    pub fn update(&self, connector: &str, f: impl FnOnce(&mut ConnectorStats)) {
        if let Ok(mut all) = self.connectors.lock() {
            if !all.contains_key(connector) {
                all.insert(connector.to_owned(), ConnectorStats::default());
            }
            if let Some(stats) = all.get_mut(connector) {
                let before = counter_values(stats);
                f(stats);
                self.exported.publish(connector, &before, stats);
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
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics not encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample of `name` whose labels are exactly `labels` (any order).
    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        text.lines().find_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut got: Vec<String> = rest
                .strip_suffix('}')?
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            got.sort();
            (n == name && got == want).then(|| v.parse().ok())?
        })
    }

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
        for (le, n) in [("0.1", 0.0), ("0.25", 1.0), ("+Inf", 1.0)] {
            assert_eq!(
                value(
                    &text,
                    "ducklake_sink_flush_duration_seconds_bucket",
                    &[("connector", "orders"), ("le", le)]
                ),
                Some(n),
                "{text}"
            );
        }
        assert_eq!(
            value(
                &text,
                "ducklake_sink_flush_duration_seconds_count",
                &[("connector", "orders")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "ducklake_sink_consumer_lag",
                &[("connector", "orders"), ("topic", "t"), ("partition", "1")]
            ),
            Some(60.0),
            "{text}"
        );
        assert!(text.contains("# TYPE ducklake_sink_flush_duration_seconds histogram\n"));
        assert!(text.contains("# TYPE ducklake_sink_records_consumed_total counter\n"));
        assert!(text.contains("# TYPE ducklake_sink_consumer_lag gauge\n"));
    }

    #[test]
    fn alerting_counters_exist_at_zero_from_the_first_update() {
        let m = Metrics::default();
        m.update("c", |s| s.state = State::Unassigned);
        let text = m.render();
        for name in [
            "ducklake_sink_lake_retries_total",
            "ducklake_sink_commit_conflicts_total",
            "ducklake_sink_fenced_total",
            "ducklake_sink_records_redelivered_total",
            "ducklake_sink_maintenance_runs_total",
            "ducklake_sink_connector_running",
            "ducklake_sink_connector_paused",
            "ducklake_sink_connector_stopped",
        ] {
            assert_eq!(
                value(&text, name, &[("connector", "c")]),
                Some(0.0),
                "{name}:\n{text}"
            );
        }
        // Gauges without a value yet have no series.
        assert!(!text.contains("ducklake_sink_data_files{"), "{text}");
        assert!(!text.contains("ducklake_sink_freshness_seconds{"), "{text}");
    }

    #[test]
    fn counters_follow_the_stats_and_survive_a_reset() {
        let m = Metrics::default();
        let retries = |m: &Metrics| {
            value(
                &m.render(),
                "ducklake_sink_lake_retries_total",
                &[("connector", "c")],
            )
        };
        m.update("c", |s| s.lake_retries += 2);
        m.update("c", |s| s.lake_retries += 3);
        assert_eq!(retries(&m), Some(5.0));
        // A restarted connector starts its stats over: the exported counter keeps growing.
        m.update("c", |s| *s = ConnectorStats::default());
        m.update("c", |s| s.lake_retries += 1);
        assert_eq!(retries(&m), Some(6.0));
        m.update("c", |s| {
            s.rows.insert("t".into(), 7);
            s.data_files = Some(4);
            s.flush_records.observe(7.0);
        });
        let text = m.render();
        assert_eq!(
            value(
                &text,
                "ducklake_sink_rows_written_total",
                &[("connector", "c"), ("table", "t")]
            ),
            Some(7.0)
        );
        assert_eq!(
            value(&text, "ducklake_sink_data_files", &[("connector", "c")]),
            Some(4.0)
        );
        assert_eq!(
            value(
                &text,
                "ducklake_sink_flush_size_records_sum",
                &[("connector", "c")]
            ),
            Some(7.0)
        );
        // An observation is exported once, not again on the next update.
        m.update("c", |_| {});
        assert_eq!(
            value(
                &m.render(),
                "ducklake_sink_flush_size_records_count",
                &[("connector", "c")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_revoked_partition_takes_its_lag_series_with_it() {
        let m = Metrics::default();
        let held = PartitionStats {
            committed: Some(5),
            high_watermark: Some(9),
            epoch: Some(1),
        };
        m.update("c", |s| {
            s.partitions.insert(("t".into(), 0), held.clone());
            s.partitions.insert(("t".into(), 1), held.clone());
        });
        let lag = |text: &str, p: &str| {
            value(
                text,
                "ducklake_sink_consumer_lag",
                &[("connector", "c"), ("topic", "t"), ("partition", p)],
            )
        };
        let text = m.render();
        assert_eq!((lag(&text, "0"), lag(&text, "1")), (Some(4.0), Some(4.0)));
        m.update("c", |s| {
            s.partitions.remove(&("t".into(), 1));
        });
        let text = m.render();
        assert_eq!(
            (lag(&text, "0"), lag(&text, "1")),
            (Some(4.0), None),
            "{text}"
        );
    }

    #[test]
    fn freshness_is_computed_at_scrape_time() {
        let m = Metrics::default();
        m.update("c", |s| s.newest_committed_ms = Some(now_ms() - 3_000));
        let first = value(
            &m.render(),
            "ducklake_sink_freshness_seconds",
            &[("connector", "c")],
        )
        .unwrap_or_default();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let second = value(
            &m.render(),
            "ducklake_sink_freshness_seconds",
            &[("connector", "c")],
        )
        .unwrap_or_default();
        assert!((3.0..4.0).contains(&first), "{first}");
        assert!(second >= first + 0.04, "{first} then {second}");
    }

    #[test]
    fn record_freshness_counts_every_record_at_its_age() {
        let m = Metrics::default();
        let committed = 1_700_000_010_000_i64;
        let mut runs = TimestampRuns::default();
        // 3 records 0.3 s old, 2 records 4 s old, 1 from a clock 2 s ahead.
        for ts in [
            committed - 300,
            committed - 300,
            committed - 300,
            committed - 4_000,
            committed - 4_000,
            committed + 2_000,
        ] {
            runs.add(ts);
        }
        m.update("c", |s| s.observe_freshness("orders", committed, &runs));
        let text = m.render();
        let series = |suffix: &str, le: Option<&str>| {
            let mut labels = vec![("connector", "c"), ("topic", "orders")];
            labels.extend(le.map(|le| ("le", le)));
            value(
                &text,
                &format!("ducklake_sink_record_freshness_seconds{suffix}"),
                &labels,
            )
        };
        assert!(text.contains("# TYPE ducklake_sink_record_freshness_seconds histogram\n"));
        assert_eq!(series("_count", None), Some(6.0), "{text}");
        assert_eq!(series("_sum", None), Some(3.0 * 0.3 + 2.0 * 4.0));
        assert_eq!(series("_bucket", Some("0.05")), Some(1.0));
        assert_eq!(series("_bucket", Some("0.25")), Some(1.0));
        assert_eq!(series("_bucket", Some("0.5")), Some(4.0));
        assert_eq!(series("_bucket", Some("3")), Some(4.0));
        assert_eq!(series("_bucket", Some("4")), Some(6.0));
        assert_eq!(series("_bucket", Some("+Inf")), Some(6.0));
        // Nothing committed for a topic: no series.
        assert_eq!(
            value(
                &text,
                "ducklake_sink_record_freshness_seconds_count",
                &[("connector", "c"), ("topic", "other")]
            ),
            None
        );
    }

    #[test]
    fn two_workers_in_one_process_have_their_own_registries() {
        let (a, b) = (Metrics::default(), Metrics::default());
        a.update("c", |s| s.fenced = 2);
        b.update("c", |s| s.fenced = 1);
        assert_eq!(
            value(
                &a.render(),
                "ducklake_sink_fenced_total",
                &[("connector", "c")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &b.render(),
                "ducklake_sink_fenced_total",
                &[("connector", "c")]
            ),
            Some(1.0)
        );
    }
}
