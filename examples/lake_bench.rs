//! Micro-benchmark of the lake side alone: flushes of generated orders into a fresh DuckLake
//! (a DuckDB-file catalog in a temporary folder), with no Kafka and no decoding in the measured
//! part. Prints the process CPU time (user + sys, every DuckDB thread included) and the wall
//! time of the flushes, so lake settings compare on a machine too busy for wall-clock figures.
//!
//! `cargo run --release --example lake_bench [ROWS] [FLUSHES] [key=value ...]` (defaults
//! 100000 rows per flush, 10 flushes); the `key=value` pairs are connector keys, e.g.
//! `ducklake.threads=2 ducklake.parquet.compression=zstd`. With `insert.mode=upsert
//! pk.mode=record_value pk.fields=order_id` every flush upserts the same keys, so each one
//! goes through the keyed apply (stage, delete, insert) against the previous flush's rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ducklake_sink::batch::{Batch, Position, Target, TopicPartition};
use ducklake_sink::decode::RecordDecoder;
use ducklake_sink::gen::order_json;
use ducklake_sink::lake::{Lake, LakeSettings};
use ducklake_sink::offsets::Expect;
use ducklake_sink::shape::Evolution;
use ducklake_sink::ConnectorConfig;
use rand::SeedableRng;

/// This process's CPU time so far, all threads (from /proc/self/stat, in clock ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut numbers = Vec::new();
    while let Some(n) = args.peek().and_then(|a| a.parse::<usize>().ok()) {
        numbers.push(n);
        args.next();
    }
    let rows = numbers.first().copied().unwrap_or(100_000);
    let flushes = numbers.get(1).copied().unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let mut config = serde_json::json!({
        "connector.class": "DuckLakeSink",
        "topics": "orders",
        "auto.create": "true",
        "ducklake.catalog": dir.path().join("lake.ducklake").display().to_string(),
        "ducklake.data.path": format!("{}/", dir.path().join("data").display()),
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    });
    for pair in args {
        let (k, v) = pair.split_once('=').expect("arguments are key=value");
        config[k] = serde_json::Value::String(v.to_owned());
    }
    let text = serde_json::json!({"name": "bench", "config": config}).to_string();
    let config = ConnectorConfig::parse(Path::new("lake_bench"), &text).unwrap();

    let mut decoder = RecordDecoder::new(config.decode_settings());
    let target = Target {
        table: "orders",
        columns: None,
        evolution: Evolution {
            auto_create: true,
            auto_evolve: true,
        },
    };
    let tp = TopicPartition {
        topic: "orders".into(),
        partition: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let payloads: Vec<Vec<u8>> = (0..rows)
        .map(|i| order_json(&mut rng, i as u64, 1000, false).1.into_bytes())
        .collect();

    let mut lake = Lake::open(LakeSettings::from(&config)).unwrap();
    let epoch = lake.claim(std::slice::from_ref(&tp)).unwrap()[&tp].epoch;
    let (mut cpu_total, mut wall_total) = (Duration::ZERO, Duration::ZERO);
    let (mut append, mut commit) = (Duration::ZERO, Duration::ZERO);
    for k in 0..flushes {
        let now = Instant::now();
        let mut batch = Batch::default();
        for (i, p) in payloads.iter().enumerate() {
            let change = decoder
                .decode("orders", None, Some(p.as_slice()))
                .unwrap()
                .change;
            let at = Position {
                tp: &tp,
                offset: (k * rows + i) as i64,
                timestamp_ms: Some(0),
                bytes: p.len(),
                now,
            };
            batch.put(&target, change, &at).unwrap();
        }
        let follows = (k > 0).then_some((k * rows) as i64);
        let expects = BTreeMap::from([(tp.clone(), Expect { epoch, follows })]);
        let (cpu0, wall0) = (cpu(), Instant::now());
        let outcome = lake.flush(&batch, &expects, false).unwrap();
        cpu_total += cpu() - cpu0;
        wall_total += wall0.elapsed();
        append += outcome.append;
        commit += outcome.commit;
        assert_eq!(outcome.rows, rows as u64);
    }
    println!(
        "rows={rows} flushes={flushes} lake_cpu_ms={} lake_wall_ms={} append_ms={} commit_ms={}",
        cpu_total.as_millis(),
        wall_total.as_millis(),
        append.as_millis(),
        commit.as_millis()
    );
}
