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
        "cdc" => {
            // Debezium MySQL change events as `ducklake-gen cdc` writes them (schemaless):
            // creates with a 17-field source block.
            let payloads: Vec<Vec<u8>> = (0..n).map(|i| cdc_event(i as u64).into_bytes()).collect();
            (
                Converter::Json {
                    schemas_enable: false,
                },
                payloads,
                None,
            )
        }
        other => panic!("unknown format {other}: json, avro or cdc"),
    };
    let cdc = format == "cdc";
    let tp = TopicPartition {
        topic: "orders".into(),
        partition: 0,
    };

    let mut decoder = RecordDecoder::new(DecodeSettings {
        key_converter: if cdc {
            Converter::Json {
                schemas_enable: false,
            }
        } else {
            Converter::String
        },
        value_converter,
        envelope: EnvelopeMode::Auto,
        insert_mode: if cdc {
            InsertMode::Upsert
        } else {
            InsertMode::Append
        },
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
        let key = cdc.then(|| format!(r#"{{"id":{i}}}"#));
        let change = decoder
            .decode(
                "orders",
                key.as_deref().map(str::as_bytes),
                Some(p.as_slice()),
            )
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

fn cdc_event(id: u64) -> String {
    format!(
        r#"{{"before":null,"after":{{"id":{id},"first_name":"Anne","last_name":"O'Brien","email":"anne.{id}@example.com","balance":"83873.96","birth_date":"1965-05-09","created_at":"2020-09-28 23:48:32.490000","updated_at":"2023-01-28T22:22:54.466214Z","active":true,"score":-525.3357757841081,"status":"active","tags":null,"profile":"{{\"vip\":false}}","visits":"5968","login_time":"02:10:00.510705"}},"source":{{"version":"3.0.0.Final","connector":"mysql","name":"bench","ts_ms":1764700000000,"snapshot":"false","db":"inventory","sequence":null,"ts_us":1764700000000000,"ts_ns":1764700000000000000,"table":"users","server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":{pos},"row":0,"thread":7,"query":null}},"transaction":null,"op":"c","ts_ms":1764700000001,"ts_us":1764700000001000,"ts_ns":1764700000001000000}}"#,
        pos = 154 + id * 400
    )
}
