//! The traffic generator behind `ducklake-gen`: produces sample records into Kafka so the
//! sink, its tests and its benchmark have real traffic. It knows nothing of the sink.

mod consume;
mod orders;

pub use consume::{consume_raw, ConsumeReport};
pub use orders::{order_json, produce_orders, OrdersOptions};

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("cannot create topic `{topic}`: {message}")]
    CreateTopic { topic: String, message: String },
    #[error("{failed} of {total} records were not delivered (first error: {first})")]
    Delivery {
        failed: u64,
        total: u64,
        first: String,
    },
}

/// What was delivered, per partition: (first offset, last offset, records).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProduceReport {
    pub topic: String,
    pub sent: u64,
    pub partitions: BTreeMap<i32, (i64, i64, u64)>,
    pub elapsed: Duration,
}

impl ProduceReport {
    /// The log end offset of each partition written to (last delivered offset + 1).
    pub fn end_offsets(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .map(|(p, (_, last, _))| (*p, last + 1))
            .collect()
    }

    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let parts: Vec<String> = self
            .partitions
            .iter()
            .map(|(p, (first, last, n))| format!("p{p}={n} (offsets {first}..{last})"))
            .collect();
        format!(
            "sent {} records to `{}` in {:.2}s ({:.0} records/s): {}",
            self.sent,
            self.topic,
            secs,
            self.sent as f64 / secs,
            parts.join(", ")
        )
    }
}

/// Creates `topic` with `partitions` partitions; an existing topic is left as it is.
pub async fn create_topic(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
) -> Result<(), GenError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(GenError::CreateTopic {
                    topic: t,
                    message: code.to_string(),
                })
            }
        }
    }
    Ok(())
}
