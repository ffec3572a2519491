//! The top-level error of a connector run, and the one place that decides what is worth
//! retrying.

use rdkafka::error::KafkaError;

use crate::config::ConfigError;
use crate::lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("lake: {0}")]
    Lake(#[from] LakeError),
    /// A record that cannot be decoded or applied. Nothing at or past `offset` of its
    /// partition is committed.
    #[error("connector `{connector}`: record at topic `{topic}` partition {partition} offset {offset}: {message} (errors.tolerance=none: stopped; the lake and Kafka offsets stay before this record)")]
    Record {
        connector: String,
        topic: String,
        partition: i32,
        offset: i64,
        message: String,
    },
    #[error("connector task failed: {0}")]
    Task(String),
    /// The schema registry could not serve a schema (for `errors.retry.timeout` when it was
    /// unreachable). Nothing at or past the record was committed.
    #[error("connector `{connector}`: record at topic `{topic}` partition {partition} offset {offset}: {source}; nothing at or past this record was committed")]
    Registry {
        connector: String,
        topic: String,
        partition: i32,
        offset: i64,
        source: crate::decode::registry::RegistryError,
    },
    /// Connectors that were FAILED (and not restarted) when the worker was stopped.
    #[error("stopped with FAILED connectors: {0}")]
    FailedAtShutdown(String),
    #[error("cannot listen on {addr} for /metrics and status: {source} (is another worker or Kafka Connect using it? choose one with --http-addr, or --http-addr off)")]
    Http {
        addr: String,
        source: std::io::Error,
    },
    #[error("connector `{connector}`: no Kafka broker reachable for {seconds} s (errors.retry.timeout); check --bootstrap-servers / $KAFKA_BOOTSTRAP_SERVERS and the broker. Nothing was committed past the last flush")]
    BrokerUnreachable { connector: String, seconds: u64 },
    /// The lake's offset does not fit the log: beyond its end, or before its start.
    #[error("connector `{connector}`: {detail}. The topic was deleted and recreated, or retention removed records that never reached the lake. Nothing was skipped or written. To go on, reset the stored offsets: `ducklake-sink reset CONNECTOR.json --topic TOPIC` (start again from auto.offset.reset) or `--partition P --to-offset N`")]
    OffsetOutOfRange { connector: String, detail: String },
    /// The record the lake's offset points after is not the one that was committed.
    #[error("connector `{connector}`: `{topic}` partition {partition} offset {offset} is not the record the lake committed there (Kafka timestamp {found:?}, lake has {stored}): the topic was deleted and recreated. Nothing was written. To go on, reset the stored offsets: `ducklake-sink reset CONNECTOR.json --topic {topic}`")]
    TopicChanged {
        connector: String,
        topic: String,
        partition: i32,
        offset: i64,
        stored: i64,
        found: Option<i64>,
    },
}

impl Error {
    /// Whether the operation that failed may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Lake(e) => e.is_retryable(),
            Self::Kafka(e) => !matches!(
                e,
                KafkaError::ClientCreation(_) | KafkaError::Subscription(_)
            ),
            Self::Config(_)
            | Self::Record { .. }
            | Self::Task(_)
            | Self::Registry { .. }
            | Self::Http { .. }
            | Self::FailedAtShutdown(_)
            | Self::BrokerUnreachable { .. }
            | Self::OffsetOutOfRange { .. }
            | Self::TopicChanged { .. } => false,
        }
    }
}
