//! The run loop of one connector: poll → put → flush → commit, rebalances and shutdown.
//!
//! Guarantees kept here:
//! - a record is in the lake at most once: on assignment the consumer starts at the lake's
//!   `next_offset`, and any record below the partition's expected next offset is skipped;
//! - a record is in the lake at least once: offsets only advance in the flush transaction
//!   that also holds the record's row, and a failed flush stops the connector before any
//!   later batch can be written (so no offset range is ever skipped);
//! - Kafka's committed offsets are written only after the lake commit, as an advisory copy;
//! - a pause (REST) first takes every record polled before it, flushes and commits them, and
//!   only then reports PAUSED; resuming reads on from the next record to take.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::CommitMode;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use tokio::sync::{mpsc, oneshot, watch};

use crate::batch::{Accounting, Batch, FlushLimits, FlushReason, Position, Target, TopicPartition};
use crate::config::ConnectorConfig;
use crate::decode::avro::AvroSchema;
use crate::decode::registry::{Registry, RegistryError};
use crate::decode::{Change, DecodeError, Record, RecordDecoder, Side};
use crate::dlq::{DeadLetters, Failure, Stage};
use crate::error::Error;
use crate::lake::backoff;
use crate::lake::{FlushOutcome, LakeError, LakeHandle, LakeSettings, RetryPolicy};
use crate::metrics::{Metrics, State};
use crate::offsets::{Assignment, Verdict};
use crate::routing::Routes;
use crate::shape::{Evolution, TableColumns};
use crate::source::{position, AssignReply, Source, SourceEvent};
use crate::FastMap;

/// Why a record was not buffered.
enum Rejected {
    /// The record itself is bad: set aside or fatal, by `errors.tolerance`.
    Bad(Failure),
    /// Something other than the record failed (the lake): always fatal.
    Fatal(Error),
    /// Applying the record needs something to be awaited first (a schema from the registry,
    /// a table's shape from the lake); nothing has changed yet.
    Wait,
}

/// Chunks of messages the poll thread may run ahead of the pipeline.
const EVENT_QUEUE: usize = 64;

/// How a connector is run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub bootstrap_servers: String,
    /// Address of the HTTP listener (`/metrics`, `/health`, status); `None`: no listener.
    pub http_addr: Option<String>,
    /// Stop (flush, commit, exit) once every assigned partition is caught up with its high
    /// watermark: for batch jobs, demos and benchmarks.
    pub until_caught_up: bool,
    /// The first connector failure stops every connector and ends the run with it (also
    /// implied by `until_caught_up` and by having no HTTP listener). Otherwise a failed
    /// connector stays FAILED until restarted over REST, and the others keep running.
    pub exit_on_failure: bool,
}

/// What a run did, reported when it ends.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub records: u64,
    pub rows: u64,
    /// Keys deleted.
    pub deleted: u64,
    /// Records below the lake offset, delivered again (already committed).
    pub redelivered: u64,
    pub flushes: u64,
    pub last_snapshot: Option<i64>,
    /// Payload bytes of the records consumed.
    pub bytes: u64,
    /// From the first record consumed to the last flush committed.
    pub active: std::time::Duration,
}

struct Inflight {
    reply: oneshot::Receiver<Result<FlushOutcome, LakeError>>,
    offsets: BTreeMap<TopicPartition, i64>,
    records: usize,
    accounting: Accounting,
    newest_timestamp_ms: Option<i64>,
    /// Per topic, its records' timestamps, for the freshness histogram.
    timestamps: Vec<(String, crate::batch::TimestampRuns)>,
    reason: &'static str,
    started: Instant,
}

async fn finished(inflight: &mut Option<Inflight>) -> Result<FlushOutcome, LakeError> {
    match inflight {
        Some(f) => (&mut f.reply).await.unwrap_or(Err(LakeError::Gone)),
        None => std::future::pending().await,
    }
}

enum Step {
    Flushed(Result<FlushOutcome, LakeError>),
    Shutdown,
    /// The wanted pause state changed (or its sender went away).
    PauseWanted(bool),
    Event(Option<SourceEvent>),
    Tick,
}

struct Pipeline {
    config: ConnectorConfig,
    limits: FlushLimits,
    until_caught_up: bool,
    lake: LakeHandle,
    source: Source,
    batch: Batch,
    inflight: Option<Inflight>,
    /// The partitions held, their claim epochs and positions: the offset rules.
    assignment: Assignment,
    watermarks: HashMap<TopicPartition, i64>,
    stopping: bool,
    /// Where fetching stands against the wanted pause state.
    pause: Pause,
    /// When table maintenance runs next (`None`: off).
    next_maintenance: Option<Instant>,
    /// Rows upserted or deleted in keyed tables since maintenance last ran: past
    /// `ducklake.maintenance.changes` it runs early (delete files pile up with them).
    changes_since_maintenance: u64,
    metrics: Arc<Metrics>,
    /// Records consumed per topic since the last publication to `metrics`.
    consumed: FastMap<String, u64>,
    decoder: RecordDecoder,
    /// Target table of each record, from `table.name.format`.
    routes: Routes,
    /// Lake tables as last seen (`None`: not created yet), for per-record checks.
    shapes: FastMap<String, Option<TableColumns>>,
    evolution: Evolution,
    dead_letters: DeadLetters,
    /// Schema registries of Avro keys and values.
    key_registry: Option<Registry>,
    value_registry: Option<Registry>,
    /// Records dead-lettered since the last publication to `metrics`, by stage.
    dead_lettered: FastMap<&'static str, u64>,
    /// Records that wrote nothing since the last publication to `metrics`, by why.
    skipped: FastMap<&'static str, u64>,
    last_tp: Option<TopicPartition>,
    /// Since when no broker connection has been up (librdkafka keeps reconnecting).
    broker_down_since: Option<Instant>,
    retry_timeout: Duration,
    first_record_at: Option<Instant>,
    summary: RunSummary,
}

/// Fetching against the wanted pause state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    Running,
    /// Asked the poll thread to pause; records polled before it still come.
    Pausing,
    /// Paused, and everything read before is committed.
    Paused,
}

/// Where a running connector lends its lake handle to the REST API (reading offsets goes
/// through the connector's own lake thread, between flushes); empty while it does not run.
pub type LakeSlot = Arc<std::sync::Mutex<Option<LakeHandle>>>;

/// Empties the slot when the run ends, however it ends: the lake thread stops only once the
/// last handle is gone.
struct Lent(LakeSlot);

impl Drop for Lent {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.0.lock() {
            slot.take();
        }
    }
}

/// Runs one connector until `shutdown` turns true (or, with `until_caught_up`, until it has
/// drained its partitions), then flushes, commits and leaves the group. `paused` is the
/// wanted pause state (REST pause/resume), followed while running; `lake_slot` holds the
/// run's lake handle while it runs.
pub async fn run_connector(
    config: ConnectorConfig,
    options: RunOptions,
    shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    lake_slot: LakeSlot,
) -> Result<RunSummary, Error> {
    let name = config.name.clone();
    metrics.update(&name, |m| {
        m.state = State::Unassigned;
        m.error = None;
    });
    let result = run_connector_inner(
        config,
        options,
        shutdown,
        paused,
        metrics.clone(),
        lake_slot,
    )
    .await;
    metrics.update(&name, |m| match &result {
        Ok(_) => m.state = State::Stopped,
        Err(e) => {
            m.state = State::Failed;
            m.error = Some(e.to_string());
        }
    });
    result
}

async fn run_connector_inner(
    config: ConnectorConfig,
    options: RunOptions,
    mut shutdown: watch::Receiver<bool>,
    mut paused: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    lake_slot: LakeSlot,
) -> Result<RunSummary, Error> {
    let (lake, lake_thread) = tokio::task::spawn_blocking({
        let settings = LakeSettings::from(&config);
        let retry = RetryPolicy {
            timeout: Duration::from_millis(config.retry_timeout_ms),
            max_delay: Duration::from_millis(config.retry_delay_max_ms),
        };
        let metrics = metrics.clone();
        move || LakeHandle::open(settings, retry, metrics)
    })
    .await
    .map_err(|_| LakeError::Gone)??;
    if let Ok(mut slot) = lake_slot.lock() {
        *slot = Some(lake.clone());
    }
    let lent = Lent(lake_slot);
    let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let source = Source::start(
        &config,
        &options.bootstrap_servers,
        events_tx,
        *paused.borrow_and_update(),
    )?;
    tracing::info!(connector = %config.name, group = %config.group_id(), topics = ?config.topics, "connector started");
    let retry_timeout = Duration::from_millis(config.retry_timeout_ms);
    let next_maintenance = (config.maintenance_interval_ms > 0)
        .then(|| Instant::now() + Duration::from_millis(config.maintenance_interval_ms));
    let decoder = RecordDecoder::new(config.decode_settings());
    let routes = Routes::new(&config.table_name_format);
    let evolution = config.evolution();
    let dead_letters = DeadLetters::new(&config, &options.bootstrap_servers)?;
    let registry = |r: &Option<crate::config::RegistryConfig>| {
        r.as_ref()
            .map(|c| Registry::new(c).map_err(|e| Error::Task(format!("schema registry: {e}"))))
            .transpose()
    };
    let key_registry = registry(&config.key_registry)?;
    let value_registry = registry(&config.value_registry)?;
    let mut p = Pipeline {
        limits: FlushLimits {
            max_records: config.flush_max_records,
            max_bytes: config.flush_max_bytes,
            interval: Duration::from_millis(config.flush_interval_ms),
        },
        config,
        until_caught_up: options.until_caught_up,
        lake,
        source,
        batch: Batch::default(),
        inflight: None,
        assignment: Assignment::default(),
        watermarks: HashMap::new(),
        stopping: false,
        pause: Pause::Running,
        next_maintenance,
        changes_since_maintenance: 0,
        metrics: metrics.clone(),
        consumed: FastMap::default(),
        decoder,
        routes,
        skipped: FastMap::default(),
        dead_letters,
        key_registry,
        value_registry,
        dead_lettered: FastMap::default(),
        shapes: FastMap::default(),
        evolution,
        last_tp: None,
        broker_down_since: None,
        retry_timeout,
        first_record_at: None,
        summary: RunSummary::default(),
    };
    let result = p.run(&mut events, &mut shutdown, &mut paused).await;
    // Let a poll thread blocked on a full queue see the pipeline is gone, then leave the group.
    drop(events);
    let Pipeline {
        source,
        lake,
        summary,
        ..
    } = p;
    drop(lent);
    drop(lake);
    let _ = tokio::task::spawn_blocking(move || {
        source.close();
        let _ = lake_thread.join();
    })
    .await;
    result.map(|()| summary)
}

impl Pipeline {
    async fn run(
        &mut self,
        events: &mut mpsc::Receiver<SourceEvent>,
        shutdown: &mut watch::Receiver<bool>,
        paused: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        if *shutdown.borrow() {
            self.begin_stop("shutdown requested");
        }
        let mut want_paused = *paused.borrow();
        let mut pause_control = true;
        self.follow_pause(want_paused);
        loop {
            let now = Instant::now();
            let reason = self.batch.flush_reason(now, &self.limits);
            let full = matches!(reason, Some(FlushReason::Records | FlushReason::Bytes));
            let wake = wake_ups(self.inflight.is_some(), full);
            let deadline = self
                .batch
                .deadline(&self.limits)
                .map(tokio::time::Instant::from_std);
            let stopping = self.stopping;
            let step = tokio::select! {
                biased;
                r = finished(&mut self.inflight) => Step::Flushed(r),
                _ = shutdown.changed(), if !stopping => Step::Shutdown,
                changed = paused.changed(), if pause_control && !stopping => match changed {
                    Ok(()) => Step::PauseWanted(*paused.borrow_and_update()),
                    Err(_) => {
                        pause_control = false;
                        Step::PauseWanted(want_paused)
                    }
                },
                ev = events.recv(), if wake.events => Step::Event(ev),
                _ = sleep_until(deadline), if wake.timer => Step::Tick,
            };
            match step {
                Step::Flushed(r) => self.finish_flush(r)?,
                Step::Shutdown => self.begin_stop("shutdown requested"),
                Step::PauseWanted(wanted) => {
                    want_paused = wanted;
                    self.follow_pause(wanted);
                }
                Step::Tick => {}
                Step::Event(None) | Step::Event(Some(SourceEvent::Stopped)) => break,
                Step::Event(Some(SourceEvent::Paused)) => {
                    self.on_paused().await?;
                    self.follow_pause(want_paused);
                }
                Step::Event(Some(event)) => self.handle(event).await?,
            }
            if self.inflight.is_none() {
                if let Some(reason) = self.batch.flush_reason(Instant::now(), &self.limits) {
                    self.start_flush(reason.as_str()).await?;
                }
            }
            self.maybe_maintain()?;
            if self.until_caught_up && !self.stopping {
                if self.inflight.is_none() && !self.batch.is_empty() && self.drained() {
                    // Everything there is has been read: no reason to wait for the interval.
                    self.start_flush("caught up").await?;
                }
                if self.caught_up() {
                    self.begin_stop("caught up with the high watermarks");
                }
            }
        }
        self.flush_all("shutdown").await?;
        self.publish_counts();
        let committed: BTreeMap<_, _> = self
            .assignment
            .partitions()
            .filter_map(|tp| self.assignment.lake_next(tp).map(|o| (tp.clone(), o)))
            .collect();
        if let Err(e) = self.source.commit(&committed, CommitMode::Sync) {
            tracing::warn!(error = %e, "final kafka offset commit failed (the lake holds the offsets)");
        }
        tracing::info!(connector = %self.config.name, records = self.summary.records, rows = self.summary.rows, flushes = self.summary.flushes, snapshot = ?self.summary.last_snapshot, "connector stopped");
        Ok(())
    }

    /// Queues table maintenance when it is due: on the interval, early once keyed tables
    /// took `ducklake.maintenance.changes` upserts and deletes, and again as long as the last
    /// run stopped at its bound (`ducklake.maintenance.max.files`) with work left. One run at
    /// a time, so a flush never waits behind more than one bounded run. The lake thread runs
    /// it between flushes; the loop wakes at least once a second (statistics), so an idle
    /// connector keeps its schedule.
    fn maybe_maintain(&mut self) -> Result<(), Error> {
        if self.stopping || self.lake.maintenance_queued() {
            return Ok(());
        }
        let now = Instant::now();
        let timer = self.next_maintenance.is_some_and(|due| now >= due);
        let threshold = self.config.maintenance_changes;
        let changes = threshold > 0 && self.changes_since_maintenance >= threshold;
        let carried = self.lake.maintenance_left();
        if !(timer || changes || carried) {
            return Ok(());
        }
        let retention = self.config.snapshot_retention_ms.map(Duration::from_millis);
        self.lake.maintain(retention)?;
        if timer || changes {
            self.changes_since_maintenance = 0;
            if self.next_maintenance.is_some() {
                self.next_maintenance =
                    Some(now + Duration::from_millis(self.config.maintenance_interval_ms));
            }
        }
        Ok(())
    }

    /// Moves the per-topic record counts gathered since the last call into the metrics.
    fn publish_counts(&mut self) {
        let redelivered = self.summary.redelivered;
        let consumed = std::mem::take(&mut self.consumed);
        let skipped = std::mem::take(&mut self.skipped);
        let dead_lettered = std::mem::take(&mut self.dead_lettered);
        self.metrics.update(&self.config.name, |m| {
            for (stage, n) in dead_lettered {
                *m.dead_lettered.entry(stage).or_default() += n;
            }
            for (topic, n) in consumed {
                *m.consumed.entry(topic).or_default() += n;
            }
            for (why, n) in skipped {
                *m.skipped.entry(why).or_default() += n;
            }
            m.redelivered = redelivered;
        });
    }

    /// Moves fetching towards the wanted pause state. A pause completes in
    /// [`on_paused`](Self::on_paused), once the records polled before it are in.
    fn follow_pause(&mut self, wanted: bool) {
        match (wanted, self.pause) {
            (true, Pause::Running) => {
                tracing::info!(connector = %self.config.name, "pausing: taking what was fetched, then committing it");
                self.pause = Pause::Pausing;
                self.source.pause();
            }
            (false, Pause::Paused) => {
                let from: Vec<_> = self
                    .assignment
                    .partitions()
                    .filter_map(|tp| self.assignment.resume_at(tp).map(|o| (tp.clone(), o)))
                    .collect();
                tracing::info!(connector = %self.config.name, from = ?from, "resuming from the lake offsets");
                self.source.resume(from);
                self.pause = Pause::Running;
                let state = if self.assignment.is_empty() {
                    State::Unassigned
                } else {
                    State::Running
                };
                self.metrics.update(&self.config.name, |m| m.state = state);
            }
            // Pausing: the pause completes first (then this is called again).
            _ => {}
        }
    }

    /// Every record polled before the pause is in the batch: commit them all, then report.
    async fn on_paused(&mut self) -> Result<(), Error> {
        self.flush_all("pause").await?;
        self.pause = Pause::Paused;
        self.metrics
            .update(&self.config.name, |m| m.state = State::Paused);
        tracing::info!(connector = %self.config.name, snapshot = ?self.summary.last_snapshot, "paused; everything read before is committed");
        Ok(())
    }

    fn begin_stop(&mut self, why: &str) {
        tracing::info!(connector = %self.config.name, "stopping: {why}");
        self.stopping = true;
        self.source.stop();
    }

    /// Every assigned partition has been read up to its high watermark.
    fn drained(&self) -> bool {
        !self.assignment.is_empty()
            && self.assignment.partitions().all(|tp| {
                let read = self.assignment.read_to(tp);
                self.watermarks.get(tp).is_some_and(|hw| read >= *hw)
            })
    }

    /// Every assigned partition is committed to the lake up to its high watermark.
    fn caught_up(&self) -> bool {
        !self.assignment.is_empty()
            && self.batch.is_empty()
            && self.inflight.is_none()
            && self.assignment.partitions().all(|tp| {
                let committed = self.assignment.lake_next(tp).unwrap_or(0);
                self.watermarks.get(tp).is_some_and(|hw| committed >= *hw)
            })
    }

    async fn handle(&mut self, event: SourceEvent) -> Result<(), Error> {
        match event {
            SourceEvent::Messages(messages) => self.on_messages(messages).await,
            SourceEvent::Assigned { partitions, reply } => {
                self.on_assigned(partitions, reply).await
            }
            SourceEvent::Revoked { partitions, reply } => {
                let result = self.on_revoked(&partitions).await;
                let _ = reply.send(());
                result
            }
            SourceEvent::Stats {
                watermarks,
                broker_up,
            } => self.on_stats(watermarks, broker_up),
            SourceEvent::Error(e) => self.on_error(e),
            SourceEvent::Stopped | SourceEvent::Paused => Ok(()),
        }
    }

    async fn on_messages(&mut self, messages: Vec<OwnedMessage>) -> Result<(), Error> {
        // One clock read per chunk (a chunk is decoded in a few ms), renewed after anything
        // that may wait: two per record were ≈ 1 % of the process's CPU.
        let mut now = Instant::now();
        for m in messages {
            // The usual record is buffered without awaiting anything; only one that needs a
            // schema, a table's shape or the dead letter queue goes the async way (boxed:
            // inline, its future made every record's step large and copied).
            let put = match self.put_now(&m, now) {
                Some(put) => put,
                None => Box::pin(self.put(&m, now)).await,
            };
            if let Err(e) = put {
                // Commit what came before the bad record, then stop.
                self.flush_all("error").await?;
                return Err(e);
            }
            // Size triggers are hard limits: a batch that fills up while the previous flush is
            // still committing waits for it, rather than taking the rest of the chunk (up to
            // 1024 records past `flush.max.records`). The interval trigger never waits.
            match self.batch.flush_reason(now, &self.limits) {
                Some(reason @ (FlushReason::Records | FlushReason::Bytes)) => {
                    self.wait_inflight().await?;
                    self.start_flush(reason.as_str()).await?;
                    now = Instant::now();
                }
                Some(reason) if self.inflight.is_none() => {
                    self.start_flush(reason.as_str()).await?;
                    now = Instant::now();
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Claims the assigned partitions in the lake and answers with their start offsets.
    async fn on_assigned(
        &mut self,
        partitions: Vec<TopicPartition>,
        reply: AssignReply,
    ) -> Result<(), Error> {
        self.wait_inflight().await?;
        let claims = match self.lake.claim(partitions.clone()).await {
            Ok(claims) => claims,
            Err(e) => {
                let _ = reply.send(Err(e.to_string()));
                return Err(e.into());
            }
        };
        let mut starts = BTreeMap::new();
        for tp in partitions {
            let Some(claim) = claims.get(&tp) else {
                continue;
            };
            match self.assignment.claim(&tp, claim, self.config.start_policy) {
                Ok(start) => {
                    starts.insert(tp, start);
                }
                Err(detail) => {
                    let _ = reply.send(Err(detail.clone()));
                    return Err(Error::OffsetOutOfRange {
                        connector: self.config.name.clone(),
                        detail,
                    });
                }
            }
        }
        let state = if self.pause == Pause::Paused {
            State::Paused
        } else {
            State::Running
        };
        self.metrics.update(&self.config.name, |m| {
            m.state = state;
            for (tp, c) in &claims {
                let ps = m
                    .partitions
                    .entry((tp.topic.clone(), tp.partition))
                    .or_default();
                ps.epoch = Some(c.epoch);
                ps.committed = c.next_offset;
            }
        });
        tracing::info!(starts = ?starts, epochs = ?claims.values().map(|c| c.epoch).collect::<Vec<_>>(), "partitions claimed; consuming from the lake offsets");
        let _ = reply.send(Ok(starts));
        Ok(())
    }

    /// Flushes and commits before the partitions go. Eager rebalancing revokes everything;
    /// flushing everything is right for cooperative partial revocations too (one extra
    /// snapshot at most). If another worker has claimed the partitions meanwhile, the batch is
    /// dropped: the new owner reads those records again from the lake offsets.
    async fn on_revoked(&mut self, partitions: &[TopicPartition]) -> Result<(), Error> {
        // Every partition with records not yet in the lake: if the flush is refused, all of
        // them are dropped, not only the revoked ones.
        let mut pending: Vec<TopicPartition> = self.batch.offsets.keys().cloned().collect();
        if let Some(f) = &self.inflight {
            pending.extend(f.offsets.keys().cloned());
        }
        match self.flush_all("revocation").await {
            Ok(()) => {}
            Err(Error::Lake(e @ LakeError::Fenced { .. })) => {
                self.metrics.update(&self.config.name, |m| m.fenced += 1);
                tracing::warn!(error = %e, "revoked partitions were already claimed elsewhere; batch dropped");
                self.inflight = None;
                self.batch = Batch::default();
                pending.sort();
                pending.dedup();
                for tp in pending.iter().filter(|tp| !partitions.contains(tp)) {
                    // Stays with this worker (incremental rebalancing): read it again.
                    if let Some(offset) = self.assignment.reread(tp) {
                        tracing::info!(topic = %tp.topic, partition = tp.partition, ?offset, "reading the dropped records again");
                        self.source.seek(tp, offset)?;
                    }
                }
            }
            Err(e) => return Err(e),
        }
        let committed: BTreeMap<_, _> = partitions
            .iter()
            .filter_map(|tp| self.assignment.lake_next(tp).map(|o| (tp.clone(), o)))
            .collect();
        if let Err(e) = self.source.commit(&committed, CommitMode::Sync) {
            tracing::warn!(error = %e, "kafka offset commit on revocation failed (the lake holds the offsets)");
        }
        self.metrics.update(&self.config.name, |m| {
            for tp in partitions {
                m.partitions.remove(&(tp.topic.clone(), tp.partition));
            }
        });
        for tp in partitions {
            self.assignment.revoke(tp);
        }
        Ok(())
    }

    fn on_stats(
        &mut self,
        watermarks: Vec<(TopicPartition, i64)>,
        broker_up: bool,
    ) -> Result<(), Error> {
        self.publish_counts();
        self.metrics.update(&self.config.name, |m| {
            for (tp, hw) in &watermarks {
                if let Some(ps) = m.partitions.get_mut(&(tp.topic.clone(), tp.partition)) {
                    ps.high_watermark = Some(*hw);
                }
            }
        });
        if broker_up {
            self.broker_down_since = None;
        } else {
            let since = *self.broker_down_since.get_or_insert_with(Instant::now);
            if since.elapsed() > self.retry_timeout {
                return Err(Error::BrokerUnreachable {
                    connector: self.config.name.clone(),
                    seconds: since.elapsed().as_secs(),
                });
            }
        }
        for (tp, hw) in watermarks {
            if let Some(lake) = self.assignment.lake_next(&tp) {
                if lake > hw {
                    return Err(Error::OffsetOutOfRange {
                        connector: self.config.name.clone(),
                        detail: format!(
                            "the lake's next offset {lake} for `{}` partition {} is beyond the log end {hw}",
                            tp.topic, tp.partition
                        ),
                    });
                }
            }
            self.watermarks.insert(tp, hw);
        }
        Ok(())
    }

    /// Which partitions' lake offsets the log no longer has: each with the lake's next offset
    /// and the log start (asked of the broker; this only runs when the worker stops).
    fn out_of_range_detail(&self) -> String {
        let mut gone = Vec::new();
        let mut all = Vec::new();
        for tp in self.assignment.partitions() {
            let lake = self.assignment.lake_next(tp);
            let start = self.source.log_start(tp).ok();
            let line = format!(
                "`{}` partition {}: the lake's next offset is {}, the log starts at {}",
                tp.topic,
                tp.partition,
                lake.map_or("none".to_owned(), |o| o.to_string()),
                start.map_or("?".to_owned(), |o| o.to_string())
            );
            match (lake, start) {
                (Some(l), Some(s)) if l < s => gone.push(line),
                _ => all.push(line),
            }
        }
        if gone.is_empty() {
            format!(
                "the broker no longer has an offset the lake points at ({})",
                all.join("; ")
            )
        } else {
            format!(
                "records the lake has not received were removed from the log ({})",
                gone.join("; ")
            )
        }
    }

    fn on_error(&mut self, e: KafkaError) -> Result<(), Error> {
        if let KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset) = e {
            return Err(Error::OffsetOutOfRange {
                connector: self.config.name.clone(),
                detail: self.out_of_range_detail(),
            });
        }
        tracing::warn!(connector = %self.config.name, error = %e, "consumer error");
        Ok(())
    }

    /// [`put`](Self::put) without awaiting: `None` when the record needs the async path (a
    /// schema to fetch, a table to describe, a bad record to set aside), and then nothing has
    /// changed that `put` does not redo the same way.
    fn put_now(&mut self, m: &OwnedMessage, now: Instant) -> Option<Result<(), Error>> {
        let tp = self.partition_of(m);
        let result = self.put_at_now(&tp, m, now);
        self.last_tp = Some(tp);
        result
    }

    fn put_at_now(
        &mut self,
        tp: &TopicPartition,
        m: &OwnedMessage,
        now: Instant,
    ) -> Option<Result<(), Error>> {
        match self.judge(tp, m) {
            Ok(true) => {}
            Ok(false) => return Some(Ok(())),
            Err(e) => return Some(Err(e)),
        }
        let at = position_of(tp, m, now);
        match self.try_apply(tp, m, &at) {
            Ok(()) => {}
            Err(Rejected::Fatal(e)) => return Some(Err(e)),
            Err(Rejected::Bad(_) | Rejected::Wait) => return None,
        }
        self.taken(tp, &at);
        Some(Ok(()))
    }

    async fn put(&mut self, m: &OwnedMessage, now: Instant) -> Result<(), Error> {
        let tp = self.partition_of(m);
        let result = self.put_at(&tp, m, now).await;
        self.last_tp = Some(tp);
        result
    }

    /// The partition of `m`: messages come in runs per partition, so the last partition key
    /// is reused instead of allocating one per record.
    fn partition_of(&mut self, m: &OwnedMessage) -> TopicPartition {
        match self.last_tp.take() {
            Some(tp) if tp.partition == m.partition() && tp.topic == m.topic() => tp,
            _ => position(m).0,
        }
    }

    /// Whether the record is to be taken (`false`: already in the lake, or not this
    /// worker's), or an error if the topic changed under the lake's offsets. Judging a record
    /// that was taken again judges it the same way.
    fn judge(&mut self, tp: &TopicPartition, m: &OwnedMessage) -> Result<bool, Error> {
        let offset = m.offset();
        match self.assignment.check(tp, offset, m.timestamp().to_millis()) {
            Verdict::Take => Ok(true),
            Verdict::Skip => {
                self.summary.redelivered += 1;
                Ok(false)
            }
            Verdict::Changed { stored, found } => Err(Error::TopicChanged {
                connector: self.config.name.clone(),
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset,
                stored,
                found,
            }),
        }
    }

    /// A record was buffered (or set aside): counts it and moves the partition past it.
    fn taken(&mut self, tp: &TopicPartition, at: &Position<'_>) {
        self.assignment.taken(tp, at.offset);
        self.summary.records += 1;
        self.summary.bytes += at.bytes as u64;
        match self.consumed.get_mut(&tp.topic) {
            Some(n) => *n += 1,
            None => {
                self.consumed.insert(tp.topic.clone(), 1);
            }
        }
        self.first_record_at.get_or_insert(at.now);
    }

    async fn put_at(
        &mut self,
        tp: &TopicPartition,
        m: &OwnedMessage,
        now: Instant,
    ) -> Result<(), Error> {
        if !self.judge(tp, m)? {
            return Ok(());
        }
        let at = position_of(tp, m, now);
        match self.apply(tp, m, &at).await {
            Ok(()) => {}
            Err(Rejected::Fatal(e)) => return Err(e),
            Err(Rejected::Bad(failure)) if self.dead_letters.tolerates() => {
                // Boxed, as the other rare awaits below: their futures are large (≈ 2 KB in
                // all).
                Box::pin(self.dead_letters.send(m, &failure)).await?;
                *self
                    .dead_lettered
                    .entry(failure.stage.as_str())
                    .or_default() += 1;
                self.batch.dead_letter(&at);
            }
            Err(Rejected::Bad(failure)) => {
                return Err(Error::Record {
                    connector: self.config.name.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset: at.offset,
                    message: failure.message,
                })
            }
            Err(Rejected::Wait) => {
                return Err(Error::Task(format!(
                    "record at topic `{}` partition {} offset {}: still waiting after its schema and table were fetched",
                    tp.topic, tp.partition, at.offset
                )))
            }
        }
        self.taken(tp, &at);
        Ok(())
    }

    /// Fetches an Avro schema from the registry, retrying while it is unavailable (backoff
    /// with jitter, for `errors.retry.timeout`). An id the registry does not have makes the
    /// record bad; anything else stops the connector. Nothing is committed meanwhile.
    async fn fetch_schema(
        &mut self,
        side: Side,
        id: u32,
        tp: &TopicPartition,
        offset: i64,
    ) -> Result<Arc<AvroSchema>, Rejected> {
        let (registry, stage, class) = match side {
            Side::Key => (
                &self.key_registry,
                Stage::KeyConverter,
                self.config.key_converter,
            ),
            Side::Value => (
                &self.value_registry,
                Stage::ValueConverter,
                self.config.value_converter,
            ),
        };
        let Some(registry) = registry else {
            return Err(Rejected::Fatal(Error::Task(
                "an Avro converter without a schema registry".into(),
            )));
        };
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let result = registry.fetch(id).await;
            let error = match result {
                Ok(schema) => {
                    tracing::info!(connector = %self.config.name, schema_id = id, side = ?side, "schema fetched from the registry");
                    return Ok(schema);
                }
                Err(e @ RegistryError::NotFound { .. }) => {
                    return Err(Rejected::Bad(Failure {
                        stage,
                        class: class.class_name().to_owned(),
                        message: e.to_string(),
                    }))
                }
                Err(e) => e,
            };
            if !error.is_retryable() || started.elapsed() >= self.retry_timeout {
                return Err(Rejected::Fatal(Error::Registry {
                    connector: self.config.name.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset,
                    source: error,
                }));
            }
            attempt += 1;
            let delay = backoff(
                attempt,
                Duration::from_millis(self.config.retry_delay_max_ms),
            )
            .min(self.retry_timeout.saturating_sub(started.elapsed()));
            tracing::warn!(connector = %self.config.name, schema_id = id, attempt, delay_ms = delay.as_millis() as u64, error = %error, "schema registry unavailable; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// Decodes a record and buffers its change; a record that cannot be decoded or does not
    /// fit its table is `Bad` (dead-lettered or fatal, by `errors.tolerance`).
    async fn apply(
        &mut self,
        tp: &TopicPartition,
        m: &OwnedMessage,
        at: &Position<'_>,
    ) -> Result<(), Rejected> {
        while let Some((side, id)) = self.decoder.missing_schema(m.key(), m.payload()) {
            let schema = Box::pin(self.fetch_schema(side, id, tp, m.offset())).await?;
            self.decoder.add_schema(side, id, schema);
        }
        let record = self.decode(tp, m)?;
        let table = self.routes.table(&tp.topic, record.source.as_ref());
        if !self.shapes.contains_key(table) {
            // First record for this table: learn its shape once (records are then checked
            // against it one by one; flushes keep it current).
            let columns = Box::pin(self.lake.describe(table))
                .await
                .map_err(|e| Rejected::Fatal(e.into()))?;
            self.shapes.insert(table.to_owned(), columns);
        }
        self.buffer(tp, record, at)
    }

    /// [`apply`](Self::apply) when nothing needs awaiting, else `Wait` with nothing changed.
    fn try_apply(
        &mut self,
        tp: &TopicPartition,
        m: &OwnedMessage,
        at: &Position<'_>,
    ) -> Result<(), Rejected> {
        if self.decoder.missing_schema(m.key(), m.payload()).is_some() {
            return Err(Rejected::Wait);
        }
        let record = self.decode(tp, m)?;
        self.buffer(tp, record, at)
    }

    fn decode(&mut self, tp: &TopicPartition, m: &OwnedMessage) -> Result<Record, Rejected> {
        self.decoder
            .decode(&tp.topic, m.key(), m.payload())
            .map_err(|e| {
                let (stage, converter) = match e {
                    DecodeError::Key(_) => (Stage::KeyConverter, self.config.key_converter),
                    _ => (Stage::ValueConverter, self.config.value_converter),
                };
                Rejected::Bad(Failure {
                    stage,
                    class: converter.class_name().to_owned(),
                    message: e.to_string(),
                })
            })
    }

    /// Buffers a decoded record into its table's batch; `Wait` if the table's shape is not
    /// known yet.
    fn buffer(
        &mut self,
        tp: &TopicPartition,
        record: Record,
        at: &Position<'_>,
    ) -> Result<(), Rejected> {
        let table = self.routes.table(&tp.topic, record.source.as_ref());
        let Some(shape) = self.shapes.get(table) else {
            return Err(Rejected::Wait);
        };
        let target = Target {
            table,
            columns: shape.as_ref(),
            evolution: self.evolution,
        };
        let skip = match &record.change {
            Change::Skip(why) => Some(why.as_str()),
            _ => None,
        };
        self.batch
            .put(&target, record.change, at)
            .map_err(|message| {
                Rejected::Bad(Failure {
                    stage: Stage::TaskPut,
                    class: "DuckLakeSink".to_owned(),
                    message,
                })
            })?;
        if let Some(why) = skip {
            *self.skipped.entry(why).or_default() += 1;
        }
        Ok(())
    }

    async fn start_flush(&mut self, reason: &'static str) -> Result<(), Error> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // Every record this flush skips as dead-lettered is in the DLQ before the offsets
        // move past it.
        self.dead_letters.settle().await?;
        let mut batch = std::mem::take(&mut self.batch);
        let timestamps = batch
            .offsets
            .iter_mut()
            .map(|(tp, r)| (tp.topic.clone(), std::mem::take(&mut r.timestamps)))
            .collect();
        let offsets = batch
            .offsets
            .iter()
            .map(|(tp, r)| (tp.clone(), r.next_offset()))
            .collect();
        let records = batch.records();
        let accounting = batch.accounting;
        let newest_timestamp_ms = batch
            .offsets
            .values()
            .filter_map(|r| r.max_timestamp_ms)
            .max();
        let expects = batch
            .offsets
            .iter()
            .map(|(tp, r)| (tp.clone(), self.assignment.hand_off(tp, r.next_offset())))
            .collect();
        let reply = self.lake.flush(batch, expects)?;
        self.inflight = Some(Inflight {
            reply,
            offsets,
            records,
            accounting,
            newest_timestamp_ms,
            timestamps,
            reason,
            started: Instant::now(),
        });
        Ok(())
    }

    fn finish_flush(&mut self, result: Result<FlushOutcome, LakeError>) -> Result<(), Error> {
        let Some(done) = self.inflight.take() else {
            return Ok(());
        };
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                if matches!(e, LakeError::Fenced { .. }) {
                    self.metrics.update(&self.config.name, |m| m.fenced += 1);
                }
                return Err(e.into());
            }
        };
        // Consumed counts first: a scrape never sees more records committed than consumed.
        self.publish_counts();
        self.metrics.update(&self.config.name, |m| {
            for (table, c) in &outcome.tables {
                *m.rows.entry(table.clone()).or_default() += c.inserted;
                if c.deleted > 0 {
                    *m.deleted.entry(table.clone()).or_default() += c.deleted;
                }
                if c.truncated {
                    *m.truncates.entry(table.clone()).or_default() += 1;
                }
            }
            *m.flushes.entry(done.reason).or_default() += 1;
            m.outcomes.written += done.accounting.written;
            m.outcomes.deleted += done.accounting.deleted;
            m.outcomes.skipped += done.accounting.skipped;
            m.outcomes.dead_lettered += done.accounting.dead_lettered;
            m.flush_seconds
                .observe(done.started.elapsed().as_secs_f64());
            m.flush_records.observe(done.records as f64);
            m.last_snapshot = outcome.snapshot_id.or(m.last_snapshot);
            if let Some(ts) = done.newest_timestamp_ms {
                m.newest_committed_ms = Some(m.newest_committed_ms.map_or(ts, |old| old.max(ts)));
            }
            let committed_at = crate::metrics::now_ms();
            for (topic, runs) in &done.timestamps {
                m.observe_freshness(topic, committed_at, runs);
            }
            for (tp, next) in &done.offsets {
                m.partitions
                    .entry((tp.topic.clone(), tp.partition))
                    .or_default()
                    .committed = Some(*next);
            }
        });
        tracing::info!(
            connector = %self.config.name,
            reason = done.reason,
            records = done.records,
            rows = outcome.rows,
            deleted = outcome.tables.values().map(|c| c.deleted).sum::<u64>(),
            snapshot = ?outcome.snapshot_id,
            ms = done.started.elapsed().as_millis() as u64,
            append_ms = outcome.append.as_millis() as u64,
            commit_ms = outcome.commit.as_millis() as u64,
            "flushed"
        );
        self.summary.rows += outcome.rows;
        self.summary.deleted += outcome.tables.values().map(|c| c.deleted).sum::<u64>();
        if self.config.apply.insert_mode == crate::config::InsertMode::Upsert {
            self.changes_since_maintenance += outcome
                .tables
                .values()
                .map(|c| c.inserted + c.deleted)
                .sum::<u64>();
        }
        self.summary.flushes += 1;
        self.summary.last_snapshot = outcome.snapshot_id.or(self.summary.last_snapshot);
        self.assignment.committed(&done.offsets);
        for (table, columns) in outcome.shapes {
            self.shapes.insert(table, Some(columns));
        }
        if let Some(first) = self.first_record_at {
            self.summary.active = first.elapsed();
        }
        if let Err(e) = self.source.commit(&done.offsets, CommitMode::Async) {
            tracing::warn!(error = %e, "kafka offset commit failed (the lake holds the offsets)");
        }
        Ok(())
    }

    async fn wait_inflight(&mut self) -> Result<(), Error> {
        if self.inflight.is_some() {
            let r = finished(&mut self.inflight).await;
            self.finish_flush(r)?;
        }
        Ok(())
    }

    /// Writes everything buffered and waits until it is committed.
    async fn flush_all(&mut self, reason: &'static str) -> Result<(), Error> {
        self.wait_inflight().await?;
        self.start_flush(reason).await?;
        self.wait_inflight().await
    }
}

/// Which wake-ups the run loop listens for besides a finished flush and shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WakeUps {
    /// Take more records: not while the buffer is full and the lake still busy
    /// (backpressure reaches the consumer through the bounded event queue).
    events: bool,
    /// The flush-interval timer: only while the lake is idle. During a flush it has nothing
    /// to start, and a deadline already past would fire at once, again and again.
    timer: bool,
}

fn wake_ups(flush_in_flight: bool, buffer_full: bool) -> WakeUps {
    WakeUps {
        events: !(buffer_full && flush_in_flight),
        timer: !flush_in_flight,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Where `m` sits and what it weighs, for the batch.
fn position_of<'a>(tp: &'a TopicPartition, m: &OwnedMessage, now: Instant) -> Position<'a> {
    Position {
        tp,
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        bytes: m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len),
        now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_neither_spins_on_a_past_deadline_nor_overfills_while_the_lake_is_busy() {
        assert_eq!(
            wake_ups(false, false),
            WakeUps {
                events: true,
                timer: true
            }
        );
        assert_eq!(
            wake_ups(false, true),
            WakeUps {
                events: true,
                timer: true
            }
        );
        assert_eq!(
            wake_ups(true, false),
            WakeUps {
                events: true,
                timer: false
            }
        );
        assert_eq!(
            wake_ups(true, true),
            WakeUps {
                events: false,
                timer: false
            }
        );
    }
}
