//! Micro-benchmark of the pipeline's CPU path without Kafka or the lake: decode orders, buffer
//! them in a batch and build the Arrow record batch the appender takes. Prints ns per record
//! for each stage. A fixed workload, so `valgrind --tool=callgrind` instruction counts of it
//! compare before and after a change on a noisy machine.
//!
//! `cargo run --release --example decode_bench [N] [json|avro|cdc|cdc-avro]` (defaults 300000
//! json; json is schemaless, as `scripts/bench.sh`'s append mode; avro is its append-avro
//! mode's values; cdc is schemaless Debezium creates; cdc-avro is `ducklake-gen cdc --format
//! avro`'s snapshot of N/10 rows and its changes, 20 % updates and 10 % deletes;
//! cdc-json-schema is the same with `--format json-schema`)
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;
use std::time::Instant;

use ducklake_sink::batch::{Batch, Position, Target, TopicPartition};
use ducklake_sink::config::{Converter, InsertMode, PkMode};
use ducklake_sink::decode::avro::AvroSchema;
use ducklake_sink::decode::{DecodeSettings, EnvelopeMode, RecordDecoder, Side};
use ducklake_sink::gen::{cdc_sample, order_json, orders_avro, CdcFormat};
use ducklake_sink::shape::Evolution;
use rand::SeedableRng;

/// A message's key and value (`None`: absent, a tombstone's value).
type Message = (Option<Vec<u8>>, Option<Vec<u8>>);

/// What one mode decodes: the converters, each message's key and value, and the Avro schemas
/// (key schema id 1, value schema id 1 or 2).
struct Workload {
    key_converter: Converter,
    value_converter: Converter,
    messages: Vec<Message>,
    key_schema: Option<AvroSchema>,
    value_schema: Option<(u32, AvroSchema)>,
}

fn workload(format: &str, n: usize) -> Workload {
    let json = Converter::Json {
        schemas_enable: false,
    };
    let plain = |value_converter, values: Vec<Vec<u8>>, value_schema| Workload {
        key_converter: Converter::String,
        value_converter,
        messages: values.into_iter().map(|v| (None, Some(v))).collect(),
        key_schema: None,
        value_schema,
    };
    match format {
        "json" => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1);
            let values = (0..n)
                .map(|i| order_json(&mut rng, i as u64, 1000, false).1.into_bytes())
                .collect();
            plain(json, values, None)
        }
        "avro" => {
            let (schema, values) = orders_avro(n as u64, 1).unwrap();
            let schema = AvroSchema::parse(&schema, &[]).unwrap();
            plain(Converter::Avro, values, Some((1, schema)))
        }
        // Debezium MySQL change events as `ducklake-gen cdc` writes them (schemaless):
        // creates with a 17-field source block.
        "cdc" => Workload {
            key_converter: json,
            value_converter: json,
            messages: (0..n)
                .map(|i| {
                    let key = format!(r#"{{"id":{i}}}"#).into_bytes();
                    (Some(key), Some(cdc_event(i as u64).into_bytes()))
                })
                .collect(),
            key_schema: None,
            value_schema: None,
        },
        // `ducklake-gen cdc --format avro`: a snapshot of n/10 rows, then changes.
        "cdc-avro" => {
            let sample =
                cdc_sample(CdcFormat::Avro, (n / 10) as u32, (n - n / 10) as u64, 1).unwrap();
            let parse = |text: Option<String>| AvroSchema::parse(&text.unwrap(), &[]).unwrap();
            Workload {
                key_converter: Converter::Avro,
                value_converter: Converter::Avro,
                messages: sample
                    .messages
                    .into_iter()
                    .map(|(k, v)| (Some(k), v))
                    .collect(),
                key_schema: Some(parse(sample.key_schema)),
                value_schema: Some((2, parse(sample.value_schema))),
            }
        }
        // The same changes through `JsonConverter` with schemas (Debezium's tutorial setup).
        "cdc-json-schema" => {
            let sample = cdc_sample(
                CdcFormat::JsonSchema,
                (n / 10) as u32,
                (n - n / 10) as u64,
                1,
            )
            .unwrap();
            let json = Converter::Json {
                schemas_enable: true,
            };
            Workload {
                key_converter: json,
                value_converter: json,
                messages: sample
                    .messages
                    .into_iter()
                    .map(|(k, v)| (Some(k), v))
                    .collect(),
                key_schema: None,
                value_schema: None,
            }
        }
        other => panic!("unknown format {other}: json, avro, cdc, cdc-avro or cdc-json-schema"),
    }
}

/// The sink's allocator, so the figures are the sink's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let format = std::env::args().nth(2).unwrap_or_else(|| "json".into());
    let work = workload(&format, n);
    let cdc = format.starts_with("cdc");
    let tp = TopicPartition {
        topic: "orders".into(),
        partition: 0,
    };

    let mut decoder = RecordDecoder::new(DecodeSettings {
        key_converter: work.key_converter,
        value_converter: work.value_converter,
        envelope: EnvelopeMode::Auto,
        insert_mode: if cdc {
            InsertMode::Upsert
        } else {
            InsertMode::Append
        },
        pk_mode: PkMode::RecordKey,
        pk_fields: Vec::new(),
        delete_enabled: cdc,
        truncate_enabled: false,
    });
    if let Some(schema) = work.key_schema {
        decoder.add_schema(Side::Key, 1, Arc::new(schema));
    }
    if let Some((id, schema)) = work.value_schema {
        decoder.add_schema(Side::Value, id, Arc::new(schema));
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
    let n = work.messages.len();
    for (i, (key, value)) in work.messages.iter().enumerate() {
        let t = Instant::now();
        let change = decoder
            .decode("orders", key.as_deref(), value.as_deref())
            .unwrap()
            .change;
        let t2 = Instant::now();
        decode += (t2 - t).as_secs_f64();
        let at = Position {
            tp: &tp,
            offset: i as i64,
            timestamp_ms: Some(0),
            bytes: value.as_ref().map_or(0, Vec::len),
            now,
        };
        batch.put(&target, change, &at).unwrap();
        put += t2.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let table = &batch.tables["orders"];
    let columns = ducklake_sink::lake::arrow::record_batch(table, None).unwrap();
    let arrow = t.elapsed().as_secs_f64();
    // Change events keep one row per key; every order is a row.
    assert!(columns.num_rows() == n || (cdc && columns.num_rows() <= n));
    let per = |s: f64| s * 1e9 / n as f64;
    println!(
        "format={format} records={n} rows={} decode_ns={:.0} put_ns={:.0} arrow_ns={:.0} total_ns={:.0}",
        columns.num_rows(),
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
