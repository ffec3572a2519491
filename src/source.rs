//! The Kafka side: one rdkafka consumer polled on its own thread, turned into a stream of
//! [`SourceEvent`]s for the pipeline. Offsets are never committed automatically.
//!
//! Rebalances are decided by the pipeline: on assignment the callback asks the pipeline for
//! the lake's offsets and assigns the partitions at exactly those positions (so nothing
//! before them is ever delivered); on revocation it waits until the pipeline has flushed and
//! committed what it holds. The callback only signals and waits; all I/O happens in the loop.
//!
//! Pausing (REST `PUT /connectors/<name>/pause`) is done by the poll thread itself, between two
//! polls: it pauses fetching of every assigned partition (the consumer keeps polling, so it
//! stays in the group and no rebalance happens) and then sends [`SourceEvent::Paused`], so every
//! message polled before the pause reaches the pipeline ahead of that event. librdkafka drops
//! what it had prefetched for a paused partition. Partitions assigned while paused are taken
//! paused. Resuming seeks each partition to where the pipeline will read next (the lake's next
//! offset once the pause flush has committed) and fetches again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message};
use tokio::sync::mpsc;

use crate::batch::TopicPartition;
use crate::config::{ConnectorConfig, Topics};

/// Messages handed to the pipeline at once (fewer when the consumer has nothing more).
const CHUNK: usize = 1024;
/// How long a rebalance callback waits for the pipeline before giving up.
const REBALANCE_WAIT: Duration = Duration::from_secs(300);

/// Reply to an assignment: the start position of every assigned partition, or why there is
/// none.
pub type AssignReply = std_mpsc::SyncSender<Result<BTreeMap<TopicPartition, Offset>, String>>;

pub enum SourceEvent {
    Messages(Vec<OwnedMessage>),
    /// Partitions are being assigned; reply with their start offsets.
    Assigned {
        partitions: Vec<TopicPartition>,
        reply: AssignReply,
    },
    /// Partitions are being revoked; reply once their records are in the lake (or dropped).
    Revoked {
        partitions: Vec<TopicPartition>,
        reply: std_mpsc::SyncSender<()>,
    },
    /// From librdkafka statistics: high watermarks seen in fetch responses, and whether any
    /// broker connection is up.
    Stats {
        watermarks: Vec<(TopicPartition, i64)>,
        broker_up: bool,
    },
    /// Fetching is paused: every message polled before the pause came ahead of this event.
    Paused,
    /// A consumer error that librdkafka reports but recovers from by itself.
    Error(KafkaError),
    /// The poll loop has stopped; no event follows.
    Stopped,
}

pub struct SinkContext {
    events: mpsc::Sender<SourceEvent>,
    closing: Arc<AtomicBool>,
    /// Fetching is paused: partitions assigned meanwhile are taken paused too.
    paused: Arc<AtomicBool>,
}

/// What the pipeline asks of the poll thread, done between two polls.
enum Control {
    Pause,
    /// Resume fetching, each listed partition from the given offset.
    Resume(Vec<(TopicPartition, Offset)>),
}

impl ClientContext for SinkContext {
    fn stats(&self, stats: Statistics) {
        let broker_up = stats
            .brokers
            .values()
            .any(|b| b.source != "internal" && b.state == "UP");
        let watermarks: Vec<_> = stats
            .topics
            .into_iter()
            .flat_map(|(topic, t)| {
                t.partitions.into_values().filter_map(move |p| {
                    (p.partition >= 0 && p.hi_offset >= 0 && p.fetch_state == "active").then(|| {
                        (
                            TopicPartition {
                                topic: topic.clone(),
                                partition: p.partition,
                            },
                            p.hi_offset,
                        )
                    })
                })
            })
            .collect();
        let _ = self.events.try_send(SourceEvent::Stats {
            watermarks,
            broker_up,
        });
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            _ => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition {
            topic: e.topic().to_owned(),
            partition: e.partition(),
        })
        .collect()
}

impl ConsumerContext for SinkContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let closing = self.closing.load(Ordering::SeqCst);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions = partitions_of(tpl);
                tracing::info!(partitions = ?partitions, "partitions assigned");
                let mut consume = true;
                if !closing {
                    let (reply, answer) = std_mpsc::sync_channel(1);
                    let asked = self
                        .events
                        .blocking_send(SourceEvent::Assigned {
                            partitions: partitions.clone(),
                            reply,
                        })
                        .is_ok();
                    match asked.then(|| answer.recv_timeout(REBALANCE_WAIT)) {
                        Some(Ok(Ok(offsets))) => {
                            for tp in &partitions {
                                if let Some(&start) = offsets.get(tp) {
                                    let _ =
                                        tpl.set_partition_offset(&tp.topic, tp.partition, start);
                                }
                            }
                        }
                        other => {
                            // Without the lake's offsets nothing may be consumed: take the
                            // partitions paused; the pipeline is stopping.
                            // A claim the lake refused is the connector's error and is
                            // reported there; only a missing answer is this thread's to log.
                            match other {
                                Some(Ok(Err(e))) => tracing::warn!(
                                    ?partitions,
                                    error = %e,
                                    "assignment left paused: the lake refused the claim"
                                ),
                                other => tracing::error!(
                                    ?partitions,
                                    reply = ?other.map(|r| r.map(|_| ())),
                                    "no lake offsets for the assignment; not consuming"
                                ),
                            }
                            consume = false;
                        }
                    }
                }
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "assign failed");
                }
                if !consume || self.paused.load(Ordering::SeqCst) {
                    let _ = consumer.pause(tpl);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions = partitions_of(tpl);
                tracing::info!(partitions = ?partitions, lost = consumer.assignment_lost(), "partitions revoked");
                if !closing {
                    let (reply, answer) = std_mpsc::sync_channel(1);
                    if self
                        .events
                        .blocking_send(SourceEvent::Revoked { partitions, reply })
                        .is_ok()
                    {
                        let _ = answer.recv_timeout(REBALANCE_WAIT);
                    }
                }
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::error!(error = %e, "unassign failed");
                }
            }
            other => {
                tracing::error!(error = ?other, "rebalance error");
                let _ = consumer.unassign();
            }
        }
    }
}

/// The consumer and its poll thread.
pub struct Source {
    consumer: Arc<BaseConsumer<SinkContext>>,
    stop: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    control: std_mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

/// The sink's default bound of librdkafka's pre-fetch queue (`consumer.override.*` replaces it).
pub const QUEUED_MAX_KBYTES: &str = "16384";
pub const QUEUED_MIN_MESSAGES: &str = "20000";

/// librdkafka settings for a connector: the sink's fixed ones, then `consumer.override.*`.
pub fn client_config(config: &ConnectorConfig, bootstrap_servers: &str) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap_servers)
        .set("group.id", config.group_id())
        .set("client.id", format!("ducklake-sink-{}", config.name))
        .set("statistics.interval.ms", "1000")
        // librdkafka pauses fetching a partition for fetch.queue.backoff.ms (default 1 s)
        // whenever its local queue is over the thresholds, which the sink's batching hits on
        // every flush: measured, that left the consumer idle ~40% of the time.
        .set("fetch.queue.backoff.ms", "20")
        // librdkafka pre-fetches up to queued.min.messages (100,000) per partition or
        // queued.max.messages.kbytes (64 MiB); heaptrack of a 1 M-order drain showed its
        // queue (ops and fetch buffers) holding ≈ 55 MiB at the peak when the pipeline
        // lags. These bounds still cover ≈ 0.5 s of the sink's rate (README: "Memory").
        .set("queued.max.messages.kbytes", QUEUED_MAX_KBYTES)
        .set("queued.min.messages", QUEUED_MIN_MESSAGES)
        // librdkafka's default puts `range` first, which deals each topic's partitions out on
        // their own: every single-partition topic (Debezium's usual one per table) went to
        // the same worker. Round robin spreads all of them over the workers, one writer per
        // table. `consumer.override.partition.assignment.strategy` still decides.
        .set("partition.assignment.strategy", "roundrobin")
        .set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in &config.consumer_overrides {
        cc.set(k, v);
    }
    // Offsets live in the lake; these are not negotiable. The consumer is assigned explicit
    // start offsets, so `auto.offset.reset` only ever acts when the log no longer has an
    // offset the lake points at (retention, a recreated topic): that must stop the worker,
    // not silently jump (librdkafka's default, `largest`, would skip the gap for good).
    cc.set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error");
    cc
}

impl Source {
    /// Creates the consumer, subscribes, and starts polling on a new thread. With `paused`,
    /// partitions are assigned paused (call [`pause`](Self::pause) too, for the event).
    pub fn start(
        config: &ConnectorConfig,
        bootstrap_servers: &str,
        events: mpsc::Sender<SourceEvent>,
        paused: bool,
    ) -> KafkaResult<Self> {
        let closing = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(paused));
        let context = SinkContext {
            events: events.clone(),
            closing: closing.clone(),
            paused: paused.clone(),
        };
        let consumer: BaseConsumer<SinkContext> = client_config(config, bootstrap_servers)
            .create_with_context(context)
            .map_err(without_secret)?;
        match &config.topics {
            Topics::List(list) => {
                let refs: Vec<&str> = list.iter().map(String::as_str).collect();
                consumer.subscribe(&refs)?;
            }
            Topics::Regex(re) => {
                let pattern = if re.starts_with('^') {
                    re.clone()
                } else {
                    format!("^{re}")
                };
                consumer.subscribe(&[pattern.as_str()])?;
            }
        }
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let (control, requests) = std_mpsc::channel();
        let thread = {
            let consumer = consumer.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-poll".into())
                .spawn(move || {
                    let poller = Poller {
                        consumer: &consumer,
                        stop: &stop,
                        events: &events,
                        requests,
                        paused,
                    };
                    poller.run()
                })
                .map_err(|e| {
                    KafkaError::Subscription(format!("cannot start the poll thread: {e}"))
                })?
        };
        Ok(Self {
            consumer,
            stop,
            closing,
            control,
            thread: Some(thread),
        })
    }

    /// Pauses fetching of every assigned partition; [`SourceEvent::Paused`] follows once
    /// done, after every message polled before.
    pub fn pause(&self) {
        let _ = self.control.send(Control::Pause);
    }

    /// Fetches again, each listed partition from the given offset (the others from where
    /// they stopped).
    pub fn resume(&self, from: Vec<(TopicPartition, Offset)>) {
        let _ = self.control.send(Control::Resume(from));
    }

    /// Asks the poll thread to stop; it sends [`SourceEvent::Stopped`] when it has.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Moves the fetch position of an assigned partition (to read dropped records again).
    pub fn seek(&self, tp: &TopicPartition, offset: Offset) -> KafkaResult<()> {
        self.consumer
            .seek(&tp.topic, tp.partition, offset, Duration::from_secs(10))
    }

    /// The log start offset of a partition, as the broker reports it (blocking, bounded).
    pub fn log_start(&self, tp: &TopicPartition) -> KafkaResult<i64> {
        self.consumer
            .fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(5))
            .map(|(low, _)| low)
    }

    /// Commits next offsets to Kafka (advisory copy; the lake holds the truth).
    pub fn commit(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        let mut tpl = TopicPartitionList::new();
        for (tp, next) in offsets {
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*next))?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer.commit(&tpl, mode)
    }

    /// Leaves the group. Blocking: call it off the async runtime.
    pub fn close(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.closing.store(true, Ordering::SeqCst);
        // Dropping the last reference closes the consumer (rd_kafka_consumer_close).
        drop(self.consumer);
    }
}

/// The poll thread: polls, hands messages on in chunks, and serves [`Control`] requests
/// between two polls.
struct Poller<'a> {
    consumer: &'a BaseConsumer<SinkContext>,
    stop: &'a AtomicBool,
    events: &'a mpsc::Sender<SourceEvent>,
    requests: std_mpsc::Receiver<Control>,
    paused: Arc<AtomicBool>,
}

impl Poller<'_> {
    fn send(&self, event: SourceEvent) -> bool {
        self.events.blocking_send(event).is_ok()
    }

    /// Hands the chunk on; false once the pipeline is gone.
    fn send_chunk(&self, chunk: &mut Vec<OwnedMessage>) -> bool {
        chunk.is_empty()
            || self.send(SourceEvent::Messages(std::mem::replace(
                chunk,
                Vec::with_capacity(CHUNK),
            )))
    }

    fn run(self) {
        let mut chunk = Vec::with_capacity(CHUNK);
        while !self.stop.load(Ordering::SeqCst) {
            while let Ok(request) = self.requests.try_recv() {
                if !self.serve(request, &mut chunk) {
                    return;
                }
            }
            // While a chunk is filling, take what is already fetched without waiting: a
            // drained queue hands the partial chunk on at once (a wait here held it back up
            // to 100 ms), and a poll without a timeout skips librdkafka's clock reads.
            let wait = if chunk.is_empty() {
                Duration::from_millis(100)
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(wait) {
                Some(Ok(m)) => {
                    chunk.push(m.detach());
                    if chunk.len() >= CHUNK && !self.send_chunk(&mut chunk) {
                        return;
                    }
                    continue;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    let sent = self.send_chunk(&mut chunk) && self.send(SourceEvent::Error(e));
                    if !sent {
                        return;
                    }
                }
                None => {}
            }
            if !self.send_chunk(&mut chunk) {
                return;
            }
        }
        if !self.send_chunk(&mut chunk) {
            return;
        }
        let _ = self.send(SourceEvent::Stopped);
    }

    fn serve(&self, request: Control, chunk: &mut Vec<OwnedMessage>) -> bool {
        match request {
            Control::Pause => {
                self.paused.store(true, Ordering::SeqCst);
                match self.consumer.assignment() {
                    Ok(tpl) => {
                        if let Err(e) = self.consumer.pause(&tpl) {
                            tracing::error!(error = %e, "pausing the assigned partitions failed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "no assignment to pause"),
                }
                self.send_chunk(chunk) && self.send(SourceEvent::Paused)
            }
            Control::Resume(from) => {
                self.paused.store(false, Ordering::SeqCst);
                match self.consumer.assignment() {
                    Ok(tpl) => {
                        if let Err(e) = self.consumer.resume(&tpl) {
                            tracing::error!(error = %e, "resuming the assigned partitions failed");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "no assignment to resume"),
                }
                // Right after resuming, before the next poll: whatever was fetched from the
                // old position is discarded by librdkafka (the seek's version barrier).
                for (tp, offset) in from {
                    if let Err(e) =
                        self.consumer
                            .seek(&tp.topic, tp.partition, offset, Duration::from_secs(10))
                    {
                        tracing::warn!(topic = %tp.topic, partition = tp.partition, ?offset, error = %e, "seek on resume failed; fetching goes on from the position before the pause");
                    }
                }
                true
            }
        }
    }
}

/// librdkafka's config errors repeat the value they refuse: never let that be a secret's
/// (the error reaches logs and the REST status).
pub fn without_secret(e: KafkaError) -> KafkaError {
    match e {
        KafkaError::ClientConfig(code, desc, key, value) if crate::config::is_secret(&key) => {
            let desc = if value.is_empty() {
                desc
            } else {
                desc.replace(&value, "[redacted]")
            };
            KafkaError::ClientConfig(code, desc, key, "[redacted]".to_owned())
        }
        e => e,
    }
}

/// The Kafka cluster id, as the broker reports it (blocking, a few seconds at most); `None`
/// when the broker does not say or cannot be reached.
pub fn cluster_id(bootstrap_servers: &str) -> Option<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set_log_level(RDKafkaLogLevel::Error)
        .create()
        .ok()?;
    consumer
        .client()
        .fetch_cluster_id(Duration::from_secs(5))
        .filter(|id| !id.is_empty())
}

/// Where a message sits, for error messages and offsets.
pub fn position(m: &OwnedMessage) -> (TopicPartition, i64) {
    (
        TopicPartition {
            topic: m.topic().to_owned(),
            partition: m.partition(),
        },
        m.offset(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn config(extra: &str) -> ConnectorConfig {
        let text = format!(
            r#"{{"name":"o","config":{{"connector.class":"DuckLakeSink","topics":"o","ducklake.catalog":"m/o.ducklake"{extra}}}}}"#
        );
        ConnectorConfig::parse(Path::new("o.json"), &text).unwrap()
    }

    #[test]
    fn the_prefetch_queue_is_bounded_unless_overridden() {
        let cc = client_config(&config(""), "b:9092");
        assert_eq!(
            cc.get("queued.max.messages.kbytes"),
            Some(QUEUED_MAX_KBYTES)
        );
        assert_eq!(cc.get("queued.min.messages"), Some(QUEUED_MIN_MESSAGES));
        let cc = client_config(
            &config(
                r#","consumer.override.queued.max.messages.kbytes":"65536","consumer.override.queued.min.messages":"100000""#,
            ),
            "b:9092",
        );
        assert_eq!(cc.get("queued.max.messages.kbytes"), Some("65536"));
        assert_eq!(cc.get("queued.min.messages"), Some("100000"));
    }
}
