//! `ducklake-gen cdc` against a real tansu broker: what lands in the topic is the stream the
//! generator promises (counts, keys, tombstones, one partition per key, key-change headers),
//! and the `--expect` file is the state that stream implies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use ducklake_sink::gen::{cdc_expect_columns, produce_cdc, CdcFormat, CdcOptions};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use support::{runtime, Broker};

const GEN: &str = env!("CARGO_BIN_EXE_ducklake-gen");

struct Read {
    partition: i32,
    key: i64,
    op: Option<String>,
    header: Option<(String, i64)>,
}

fn payload(bytes: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v.get("payload").cloned().unwrap_or(v)
}

/// Reads `total` records of every partition from the beginning, without a consumer group.
fn read_all(broker: &Broker, topic: &str, partitions: i32, total: u64) -> Vec<Read> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "cdc-gen-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        assert!(Instant::now() < deadline, "read {} of {total}", out.len());
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let key = payload(m.key().unwrap())["id"].as_i64().unwrap();
        let op = m
            .payload()
            .map(|v| payload(v)["op"].as_str().unwrap().to_owned());
        let header = m.headers().and_then(|h| {
            h.iter().next().map(|h| {
                let v: Value = serde_json::from_slice(h.value.unwrap()).unwrap();
                (h.key.to_owned(), v["id"].as_i64().unwrap())
            })
        });
        out.push(Read {
            partition: m.partition(),
            key,
            op,
            header,
        });
    }
    out
}

#[test]
fn cdc_events_land_keyed_partitioned_and_replay_to_the_expected_state() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let expect = dir.path().join("expect.jsonl");
    let topic = "dbserver1.inventory.users";
    let report = runtime()
        .block_on(produce_cdc(&CdcOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: topic.into(),
            partitions: 3,
            format: CdcFormat::JsonSchema,
            schema_registry: None,
            count: 3000,
            keys: 300,
            seed: 7,
            rate: None,
            expect: Some(expect.clone()),
            evolve: false,
            mix: None,
        }))
        .unwrap();
    let ops = report.ops;
    assert_eq!(ops.read, 300);
    assert_eq!(ops.create + ops.update + ops.delete, 3000);
    assert_eq!(ops.tombstone, ops.delete);
    assert_eq!(report.produce.sent, ops.events() + ops.tombstone);
    assert_eq!(
        report.produce.partitions.len(),
        3,
        "keys spread over every partition"
    );

    let records = read_all(&broker, topic, 3, report.produce.sent);
    assert_eq!(records.len() as u64, report.produce.sent);

    // Per partition: counts match the delivery report; every key lives in one partition.
    let mut per_partition: HashMap<i32, u64> = HashMap::new();
    let mut partition_of: HashMap<i64, i32> = HashMap::new();
    for r in &records {
        *per_partition.entry(r.partition).or_default() += 1;
        let p = *partition_of.entry(r.key).or_insert(r.partition);
        assert_eq!(
            p, r.partition,
            "key {} in partitions {p} and {}",
            r.key, r.partition
        );
    }
    for (p, (_, _, n)) in &report.produce.partitions {
        assert_eq!(per_partition[p], *n, "partition {p}");
    }

    // In each partition's order: a tombstone right after its key's delete; a key change is
    // d(old, newkey) → tombstone(old, newkey) and c(new, oldkey) in the new key's partition.
    let mut by_partition: HashMap<i32, Vec<&Read>> = HashMap::new();
    for r in &records {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut live = BTreeSet::new();
    // (old key, new key) → key-change deletes minus key-change creates seen.
    let mut moves: HashMap<(i64, i64), i64> = HashMap::new();
    let mut tombstones = 0;
    for list in by_partition.values() {
        for (i, r) in list.iter().enumerate() {
            match r.op.as_deref() {
                None => {
                    tombstones += 1;
                    let prev = list[i - 1];
                    assert_eq!((prev.key, prev.op.as_deref()), (r.key, Some("d")));
                    assert_eq!(prev.header, r.header);
                }
                Some("d") => {
                    if let Some((name, new)) = &r.header {
                        assert_eq!(name, "__debezium.newkey");
                        *moves.entry((r.key, *new)).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
    }
    // The create half of each key change names the old key; checked after all deletes are
    // known, since the two halves may sit in different partitions.
    let key_changes: i64 = moves.values().sum();
    for r in &records {
        if let (Some("c"), Some((name, old))) = (r.op.as_deref(), &r.header) {
            assert_eq!(name, "__debezium.oldkey");
            *moves.entry((*old, r.key)).or_default() -= 1;
        }
    }
    assert!(key_changes > 0, "no primary-key changes");
    assert!(
        moves.values().all(|n| *n == 0),
        "unpaired key changes: {moves:?}"
    );
    assert_eq!(tombstones, ops.tombstone);
    // Keys never interleave across partitions, so replaying partition by partition in any
    // partition order gives the final key set.
    for list in by_partition.values() {
        for r in list {
            match r.op.as_deref() {
                Some("r" | "c") => {
                    live.insert(r.key);
                }
                Some("d") => {
                    live.remove(&r.key);
                }
                _ => {}
            }
        }
    }

    let text = std::fs::read_to_string(&expect).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), report.rows);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "expect file sorted by id");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), live);
    let columns: Vec<&str> = cdc_expect_columns(false).iter().map(|(c, _)| *c).collect();
    for row in &rows {
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, columns);
    }
}

#[test]
fn avro_needs_a_reachable_registry_and_says_so() {
    // Without --schema-registry, and with one nobody listens on: refused before producing.
    for (args, needle) in [
        (vec![], "--format avro needs --schema-registry URL"),
        (
            vec!["--schema-registry", "http://127.0.0.1:9"],
            "registering dbserver1.inventory.users-key at http://127.0.0.1:9",
        ),
    ] {
        let out = Command::new(GEN)
            .args([
                "cdc",
                "--bootstrap-servers",
                "127.0.0.1:9",
                "--format",
                "avro",
            ])
            .args(args)
            .args(["--count", "1"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
}
