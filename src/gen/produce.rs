//! The producer side every generator shares: an idempotent `ThreadedProducer` whose delivery
//! reports are tallied per partition, pacing to a rate, and waiting out a full local queue.
//! What one generator reports as delivered is what the broker acknowledged, never what was
//! merely handed to librdkafka.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, ToBytes};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use super::{GenError, ProduceReport};

#[derive(Default)]
struct Tally {
    report: ProduceReport,
    failed: u64,
    first_error: Option<String>,
}

struct Deliveries(Arc<Mutex<Tally>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let Ok(mut t) = self.0.lock() else { return };
        match result {
            Ok(m) => {
                t.report.sent += 1;
                let e =
                    t.report
                        .partitions
                        .entry(m.partition())
                        .or_insert((m.offset(), m.offset(), 0));
                e.0 = e.0.min(m.offset());
                e.1 = e.1.max(m.offset());
                e.2 += 1;
            }
            Err((e, _)) => {
                t.failed += 1;
                t.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// An idempotent producer (ordered per partition, no duplicates on retry) that counts what
/// the broker acknowledged.
pub(super) struct TalliedProducer {
    producer: ThreadedProducer<Deliveries>,
    tally: Arc<Mutex<Tally>>,
    started: Instant,
}

impl TalliedProducer {
    /// `extra` adds or overrides librdkafka settings (e.g. the partitioner).
    pub(super) fn new(bootstrap_servers: &str, extra: &[(&str, &str)]) -> Result<Self, GenError> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "500000");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        let producer = config.create_with_context(Deliveries(tally.clone()))?;
        Ok(TalliedProducer {
            producer,
            tally,
            started: Instant::now(),
        })
    }

    /// Sleeps until the `n`-th unit of work is due at `rate` per second (`None`: never sleeps).
    pub(super) fn pace(&self, n: u64, rate: Option<f64>) {
        if let Some(rate) = rate.filter(|r| *r > 0.0) {
            let due = self.started + Duration::from_secs_f64(n as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }

    /// Hands one record to librdkafka, waiting while its local queue is full.
    pub(super) fn send<K, P>(&self, mut record: BaseRecord<'_, K, P>) -> Result<(), GenError>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Waits until every record is acknowledged; fails unless exactly `expected` were.
    pub(super) fn finish(self, topic: &str, expected: u64) -> Result<ProduceReport, GenError> {
        self.producer.flush(Duration::from_secs(120))?;
        let mut t = self
            .tally
            .lock()
            .map_err(|_| GenError::Kafka(KafkaError::Canceled))?;
        t.report.topic = topic.to_owned();
        t.report.elapsed = self.started.elapsed();
        if t.failed > 0 || t.report.sent != expected {
            return Err(GenError::Delivery {
                failed: expected.saturating_sub(t.report.sent),
                total: expected,
                first: t
                    .first_error
                    .clone()
                    .unwrap_or_else(|| "not acknowledged".into()),
            });
        }
        Ok(t.report.clone())
    }
}
