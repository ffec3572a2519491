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
            Self::Config(_) | Self::Record { .. } | Self::Task(_) => false,
        }
    }
}
