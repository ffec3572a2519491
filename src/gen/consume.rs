//! The benchmark's baseline: read records as fast as rdkafka delivers them and do nothing
//! with them, so the sink's end-to-end rate has a same-machine, same-run ceiling to compare to.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

use super::GenError;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeReport {
    pub records: u64,
    pub bytes: u64,
    /// From the first record to the last.
    pub active: Duration,
    /// From start (including the group join) to the last record.
    pub wall: Duration,
}

/// Reads `count` records of `topic` from the beginning with a fresh consumer group.
pub fn consume_raw(
    bootstrap_servers: &str,
    topic: &str,
    count: u64,
    timeout: Duration,
) -> Result<ConsumeReport, GenError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set(
            "group.id",
            format!("ducklake-gen-consume-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        // As the sink sets it: librdkafka's default (1 s) idles a consumer whose local queue
        // filled up, which small records (39-byte Avro orders) hit at once; the baseline
        // then ran at a third of the sink's own rate.
        .set("fetch.queue.backoff.ms", "20")
        .create()?;
    consumer.subscribe(&[topic])?;
    let started = Instant::now();
    let mut first = None;
    let mut report = ConsumeReport {
        records: 0,
        bytes: 0,
        active: Duration::ZERO,
        wall: Duration::ZERO,
    };
    while report.records < count && started.elapsed() < timeout {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                report.records += 1;
                report.bytes += m.payload().map_or(0, <[u8]>::len) as u64
                    + m.key().map_or(0, |k| k.len() as u64);
            }
            Some(Err(e)) => tracing::debug!(error = %e, "consume error"),
            None => {}
        }
    }
    report.active = first.map_or(Duration::ZERO, |f| f.elapsed());
    report.wall = started.elapsed();
    Ok(report)
}
