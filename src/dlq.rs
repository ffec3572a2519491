//! The dead-letter queue (`errors.tolerance=all`), as Kafka Connect has it: a record that
//! cannot be decoded or does not fit its table is produced, with its original key, value and
//! headers, to `errors.deadletterqueue.topic.name` (with Connect's `__connect.errors.*` context
//! headers when `errors.deadletterqueue.context.headers.enable`), and the pipeline goes on.
//!
//! Contract: every dead-lettered record is acknowledged by the broker before the flush that
//! moves the offsets past it commits ([`DeadLetters::settle`]); a crash in between sends it
//! again on restart — a record is dead-lettered at least once, never lost.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::Message;

use crate::config::{ConnectorConfig, ErrorHandling};
use crate::error::Error;

/// Where in Connect's pipeline a record failed (`__connect.errors.stage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    KeyConverter,
    ValueConverter,
    /// The record decoded but cannot be written into its table.
    TaskPut,
}

impl Stage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::KeyConverter => "KEY_CONVERTER",
            Self::ValueConverter => "VALUE_CONVERTER",
            Self::TaskPut => "TASK_PUT",
        }
    }
}

/// One bad record's error, as the DLQ headers and the log describe it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub stage: Stage,
    /// `__connect.errors.class.name`: the converter or task class that failed.
    pub class: String,
    pub message: String,
}

/// Records set aside instead of stopping the connector.
pub struct DeadLetters {
    connector: String,
    settings: ErrorHandling,
    producer: Option<FutureProducer>,
    /// Produced, not yet acknowledged.
    pending: Vec<(DeliveryFuture, String)>,
}

impl DeadLetters {
    /// With a DLQ topic, creates its producer (the consumer's security settings carry
    /// over; idempotent, so a retried send is not doubled by the client).
    pub fn new(config: &ConnectorConfig, bootstrap_servers: &str) -> Result<Self, Error> {
        let producer = match &config.errors.dlq_topic {
            Some(_) => {
                let mut cc = ClientConfig::new();
                cc.set("bootstrap.servers", bootstrap_servers)
                    .set("client.id", format!("ducklake-sink-{}-dlq", config.name))
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "5");
                for (k, v) in &config.consumer_overrides {
                    if ["security.", "sasl.", "ssl."]
                        .iter()
                        .any(|p| k.starts_with(p))
                    {
                        cc.set(k, v);
                    }
                }
                Some(
                    cc.create::<FutureProducer>()
                        .map_err(crate::source::without_secret)?,
                )
            }
            None => None,
        };
        Ok(Self {
            connector: config.name.clone(),
            settings: config.errors.clone(),
            producer,
            pending: Vec::new(),
        })
    }

    /// Whether bad records are set aside (`errors.tolerance=all`) rather than fatal.
    pub fn tolerates(&self) -> bool {
        self.settings.tolerate
    }

    /// Logs (`errors.log.enable`) and, with a DLQ topic, produces the record. Does not wait
    /// for the acknowledgement; [`settle`](Self::settle) does.
    pub async fn send(&mut self, m: &OwnedMessage, failure: &Failure) -> Result<(), Error> {
        if self.settings.log {
            if self.settings.log_messages {
                tracing::error!(
                    connector = %self.connector, topic = m.topic(), partition = m.partition(), offset = m.offset(),
                    stage = failure.stage.as_str(), error = %failure.message,
                    key = %m.key().map(String::from_utf8_lossy).unwrap_or_default(),
                    value = %m.payload().map(String::from_utf8_lossy).unwrap_or_default(),
                    "bad record set aside (errors.tolerance=all)"
                );
            } else {
                tracing::error!(
                    connector = %self.connector, topic = m.topic(), partition = m.partition(), offset = m.offset(),
                    stage = failure.stage.as_str(), error = %failure.message,
                    "bad record set aside (errors.tolerance=all)"
                );
            }
        }
        let (Some(producer), Some(topic)) =
            (self.producer.clone(), self.settings.dlq_topic.clone())
        else {
            return Ok(());
        };
        let headers = self.headers(m, failure);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(headers);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(v) = m.payload() {
            record = record.payload(v);
        }
        let at = format!("{}[{}]@{}", m.topic(), m.partition(), m.offset());
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push((delivery, at));
                    return Ok(());
                }
                // The producer's queue is full: wait for what is in flight, then send again.
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    record = back;
                    self.settle().await?;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => return Err(dlq_error(&topic, &at, &e.to_string())),
            }
        }
    }

    /// Waits until every dead-lettered record is acknowledged; an error when one could not
    /// be delivered (the flush that would skip it must not commit).
    pub async fn settle(&mut self) -> Result<(), Error> {
        let topic = self.settings.dlq_topic.clone().unwrap_or_default();
        for (delivery, at) in self.pending.drain(..) {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(dlq_error(&topic, &at, &e.to_string())),
                Err(_) => return Err(dlq_error(&topic, &at, "the producer went away")),
            }
        }
        Ok(())
    }

    /// The original headers, then Connect's context headers.
    fn headers(&self, m: &OwnedMessage, failure: &Failure) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = m.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        if !self.settings.dlq_context_headers {
            return headers;
        }
        let partition = m.partition().to_string();
        let offset = m.offset().to_string();
        let trace = format!(
            "org.apache.kafka.connect.errors.DataException: {}\n\tat ducklake-sink {} ({})",
            failure.message,
            failure.stage.as_str(),
            failure.class
        );
        for (key, value) in [
            ("__connect.errors.topic", m.topic()),
            ("__connect.errors.partition", partition.as_str()),
            ("__connect.errors.offset", offset.as_str()),
            ("__connect.errors.connector.name", self.connector.as_str()),
            ("__connect.errors.task.id", "0"),
            ("__connect.errors.stage", failure.stage.as_str()),
            ("__connect.errors.class.name", failure.class.as_str()),
            (
                "__connect.errors.exception.class.name",
                "org.apache.kafka.connect.errors.DataException",
            ),
            (
                "__connect.errors.exception.message",
                failure.message.as_str(),
            ),
            ("__connect.errors.exception.stacktrace", trace.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        headers
    }
}

fn dlq_error(topic: &str, at: &str, message: &str) -> Error {
    Error::Task(format!(
        "cannot dead-letter the record at {at} to `{topic}`: {message}; nothing past it was committed"
    ))
}
