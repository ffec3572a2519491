//! Micro-benchmark of the pipeline's CPU path without Kafka or the lake: decode orders, buffer
//! them in a batch and build the Arrow record batch the appender takes. Prints ns per record
//! for each stage. A fixed workload, so `valgrind --tool=callgrind` instruction counts of it
//! compare before and after a change on a noisy machine.
//!
//! `cargo run --release --example decode_bench [N] [json|avro]` (defaults 300000 json; json is
//! schemaless, as `scripts/bench.sh`'s append mode, avro is its append-avro mode's values)
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;
use std::time::Instant;

use ducklake_sink::batch::{Batch, Position, Target, TopicPartition};
use ducklake_sink::config::{Converter, InsertMode, PkMode};
use ducklake_sink::decode::avro::AvroSchema;
use ducklake_sink::decode::{DecodeSettings, EnvelopeMode, RecordDecoder, Side};
use ducklake_sink::gen::{order_json, orders_avro};
use ducklake_sink::shape::Evolution;
use rand::SeedableRng;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let format = std::env::args().nth(2).unwrap_or_else(|| "json".into());
    let (value_converter, payloads, schema) = match format.as_str() {
        "json" => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let payloads: Vec<Vec<u8>> = (0..n)
                .map(|i| order_json(&mut rng, i as u64, 1000, false).1.into_bytes())
                .collect();
            (
                Converter::Json {
                    schemas_enable: false,
                },
                payloads,
                None,
            )
        }
        "avro" => {
            let (schema, payloads) = orders_avro(n as u64, 1).unwrap();
            (
                Converter::Avro,
                payloads,
                Some(AvroSchema::parse(&schema, &[]).unwrap()),
            )
        }
        other => panic!("unknown format {other}: json or avro"),
    };
    let tp = TopicPartition {
        topic: "orders".into(),
        partition: 0,
    };

    let mut decoder = RecordDecoder::new(DecodeSettings {
        key_converter: Converter::String,
        value_converter,
        envelope: EnvelopeMode::Auto,
        insert_mode: InsertMode::Append,
        pk_mode: PkMode::RecordKey,
        pk_fields: Vec::new(),
        delete_enabled: false,
        truncate_enabled: false,
    });
    if let Some(schema) = schema {
        decoder.add_schema(Side::Value, 1, Arc::new(schema));
    }
    let target = Target {
        table: "orders",
        columns: None,
        evolution: Evolution {
            auto_create: true,
            auto_evolve: true,
        },
    };
    let now = Instant::now();
    let (mut decode, mut put) = (0.0, 0.0);
    let mut batch = Batch::default();
    for (i, p) in payloads.iter().enumerate() {
        let t = Instant::now();
        let change = decoder
            .decode("orders", None, Some(p.as_slice()))
            .unwrap()
            .change;
        let t2 = Instant::now();
        decode += (t2 - t).as_secs_f64();
        let at = Position {
            tp: &tp,
            offset: i as i64,
            timestamp_ms: Some(0),
            bytes: p.len(),
            now,
        };
        batch.put(&target, change, &at).unwrap();
        put += t2.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let table = &batch.tables["orders"];
    let columns = ducklake_sink::lake::arrow::record_batch(table, None).unwrap();
    let arrow = t.elapsed().as_secs_f64();
    assert_eq!(columns.num_rows(), n);
    let per = |s: f64| s * 1e9 / n as f64;
    println!(
        "format={format} records={n} decode_ns={:.0} put_ns={:.0} arrow_ns={:.0} total_ns={:.0}",
        per(decode),
        per(put),
        per(arrow),
        per(decode + put + arrow)
    );
}
