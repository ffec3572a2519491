//! ducklake-sink: a Kafka Connect–style sink that streams Kafka/Redpanda topics into DuckLake
//! tables exactly once. The binaries are thin; everything runs from here:
//! [`pipeline::run`] for the worker, [`inspect`] for `status`/`sql`, [`gen`] for the traffic
//! generator.

pub mod batch;
pub mod config;
pub mod decode;
pub mod dlq;
pub mod error;
pub mod gen;
pub mod http;
pub mod inspect;
pub mod lake;
pub mod metrics;
pub mod offsets;
pub mod pipeline;
pub mod routing;
pub mod shape;
pub mod source;

pub use config::ConnectorConfig;
pub use error::Error;
pub use pipeline::{run, RunOptions, RunSummary};

/// `--bootstrap-servers` default: `$KAFKA_BOOTSTRAP_SERVERS`, then `localhost:9092`.
pub fn default_bootstrap_servers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "localhost:9092".to_owned())
}
