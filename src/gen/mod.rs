//! The traffic generator behind `ducklake-gen`: produces sample records into Kafka so the
//! sink, its tests and its benchmark have real traffic. It knows nothing of the sink.

pub(crate) mod avro;
mod cdc;
mod consume;
mod orders;
mod produce;

pub use cdc::{
    cdc_expect_columns, cdc_sample, produce_cdc, CdcFormat, CdcOptions, CdcReport, CdcSample,
    OpCounts,
};
pub use consume::{consume_raw, ConsumeReport};
pub use orders::{order_json, orders_avro, produce_orders, OrdersOptions};

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
    #[error("{0}")]
    InvalidOption(String),
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
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

/// The shortest big-endian two's-complement bytes of `v`, Connect's `Decimal` encoding of an
/// unscaled value: a leading byte may only be dropped while the next one still carries the
/// right sign bit.
pub(crate) fn minimal_twos_complement(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < bytes.len() - 1 {
        let (b, next_negative) = (bytes[start], bytes[start + 1] & 0x80 != 0);
        if (b == 0x00 && !next_negative) || (b == 0xff && next_negative) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::minimal_twos_complement;

    #[test]
    fn decimal_bytes_keep_their_sign() {
        assert_eq!(minimal_twos_complement(0), vec![0x00]);
        assert_eq!(minimal_twos_complement(127), vec![0x7f]);
        assert_eq!(minimal_twos_complement(200), vec![0x00, 0xc8]);
        assert_eq!(minimal_twos_complement(50_000), vec![0x00, 0xc3, 0x50]);
        assert_eq!(minimal_twos_complement(-1), vec![0xff]);
        assert_eq!(minimal_twos_complement(-129), vec![0xff, 0x7f]);
        // BIGINT UNSIGNED past i64: 2^64 - 1 needs a ninth, sign-carrying byte.
        assert_eq!(
            minimal_twos_complement(i128::from(u64::MAX)),
            vec![0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            minimal_twos_complement(1 << 63),
            vec![0x00, 0x80, 0, 0, 0, 0, 0, 0, 0]
        );
    }
}
