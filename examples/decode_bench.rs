//! Micro-benchmark of the pipeline's CPU path without Kafka or the lake: decode JSON orders
//! and buffer them. Prints ns per record for each stage.
//! `cargo run --release --example decode_bench [N]`
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::time::Instant;

use ducklake_sink::batch::{Batch, Position, Target, TopicPartition};
use ducklake_sink::config::{Converter, InsertMode, PkMode};
use ducklake_sink::decode::{DecodeSettings, EnvelopeMode, RecordDecoder};
use ducklake_sink::gen::order_json;
use ducklake_sink::shape::Evolution;
use rand::SeedableRng;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let payloads: Vec<String> = (0..n)
        .map(|i| order_json(&mut rng, i as u64, 1000, false).1)
        .collect();
    let tp = TopicPartition {
        topic: "orders".into(),
        partition: 0,
    };

    let mut decoder = RecordDecoder::new(DecodeSettings {
        key_converter: Converter::String,
        value_converter: Converter::Json {
            schemas_enable: false,
        },
        envelope: EnvelopeMode::Auto,
        insert_mode: InsertMode::Append,
        pk_mode: PkMode::RecordKey,
        pk_fields: Vec::new(),
        delete_enabled: false,
        truncate_enabled: false,
    });
    let t = Instant::now();
    let mut changes = Vec::with_capacity(n);
    for p in &payloads {
        changes.push(
            decoder
                .decode("orders", None, Some(p.as_bytes()))
                .unwrap()
                .change,
        );
    }
    let decode = t.elapsed();

    let t = Instant::now();
    let mut batch = Batch::default();
    let now = Instant::now();
    for (i, change) in changes.into_iter().enumerate() {
        let at = Position {
            tp: &tp,
            offset: i as i64,
            timestamp_ms: Some(0),
            bytes: 150,
            now,
        };
        let target = Target {
            table: "orders",
            columns: None,
            evolution: Evolution {
                auto_create: true,
                auto_evolve: true,
            },
        };
        batch.put(&target, change, &at).unwrap();
    }
    let put = t.elapsed();
    let per = |d: std::time::Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "records={n} decode_ns={:.0} put_ns={:.0}",
        per(decode),
        per(put)
    );
}
