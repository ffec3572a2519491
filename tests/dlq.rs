//! `errors.tolerance=all` with a dead-letter queue, as Kafka Connect has it: bad records go to
//! the DLQ topic with their original key, value and headers plus Connect's `__connect.errors.*`
//! context headers; every good record lands exactly once; the worker keeps RUNNING; the
//! accounting adds up. And under `kill -9`, no good record is lost or doubled and no bad one
//! is missing from the DLQ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use ducklake_sink::gen::create_topic;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use support::{count, http_get, runtime, sample, Broker, LakeDir, Worker};

const MINUTE: Duration = Duration::from_secs(60);

/// What was produced: per offset of partition 0, the record and whether it is bad (and why).
struct Planted {
    good: BTreeSet<i64>,
    /// offset → expected stage
    bad: BTreeMap<i64, &'static str>,
}

/// `n` records to partition 0 of `topic`, about 1 % bad: not JSON (a value converter
/// failure), or an `id` that is text where every other record has a number (does not fit
/// the table). Each carries a header of its own.
fn plant(broker: &Broker, topic: &str, n: i64, seed: u64) -> Planted {
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut planted = Planted {
        good: BTreeSet::new(),
        bad: BTreeMap::new(),
    };
    for offset in 0..n {
        let (value, bad) = match rng.gen_range(0..200) {
            // The first record sets the table's shape; keep it good.
            0 if offset > 0 => (format!("{{not json {offset}"), Some("VALUE_CONVERTER")),
            1 if offset > 0 => (
                format!(r#"{{"id":"text-{offset}","v":"x"}}"#),
                Some("TASK_PUT"),
            ),
            _ => (format!(r#"{{"id":{offset},"v":"v{offset}"}}"#), None),
        };
        let key = format!("k{offset}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "origin",
            value: Some(key.as_str()),
        });
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value)
                    .headers(headers),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        match bad {
            Some(stage) => {
                planted.bad.insert(offset, stage);
            }
            None => {
                planted.good.insert(offset);
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    planted
}

struct DeadLetter {
    key: Option<String>,
    value: Option<String>,
    headers: BTreeMap<String, String>,
}

/// Every record of the DLQ topic (partition 0), waiting until at least `at_least` are there.
fn dead_letters(broker: &Broker, topic: &str, at_least: usize) -> Vec<DeadLetter> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + MINUTE;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), text(h.value).unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(DeadLetter {
                    key: text(m.key()),
                    value: text(m.payload()),
                    headers,
                });
                quiet_since = Instant::now();
            }
            Some(Err(e)) => panic!("reading the DLQ: {e}"),
            None if out.len() >= at_least && quiet_since.elapsed() > Duration::from_secs(2) => {
                break
            }
            None => {}
        }
    }
    out
}

fn dlq_lake(name: &str, topic: &str, dlq: &str) -> LakeDir {
    LakeDir::new(
        name,
        topic,
        &[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dlq),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("errors.log.enable", "true"),
            ("flush.max.records", "500"),
        ],
    )
}

fn assert_good_exactly_once(lake: &LakeDir, planted: &Planted, table: &str) {
    let conn = lake.open();
    assert_eq!(
        count(&conn, &format!("SELECT count(*) FROM {table}")),
        planted.good.len() as i64,
        "rows"
    );
    let ids: BTreeSet<i64> = conn
        .prepare(&format!("SELECT id FROM {table}"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, planted.good, "every good record exactly once");
}

#[test]
fn bad_records_go_to_the_dlq_with_connects_headers_and_the_worker_keeps_running() {
    let broker = Broker::start();
    let rt = runtime();
    for t in ["events", "dlq-events"] {
        rt.block_on(create_topic(&broker.bootstrap, t, 1)).unwrap();
    }
    let planted = plant(&broker, "events", 5_000, 3);
    assert!(planted.bad.len() >= 25, "{} bad records", planted.bad.len());
    let lake = dlq_lake("dlq", "events", "dlq-events");
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    let connector = r#"connector="dlq""#;
    let deadline = Instant::now() + MINUTE * 2;
    let mut page = String::new();
    let total = planted.good.len() + planted.bad.len();
    while Instant::now() < deadline {
        page = http_get(&addr, "/metrics").1;
        let committed: f64 = ["written", "deleted", "skipped", "dead_lettered"]
            .iter()
            .filter_map(|o| {
                sample(
                    &page,
                    &format!(
                        r#"ducklake_sink_records_committed_total{{{connector},outcome="{o}"}}"#
                    ),
                )
            })
            .sum();
        if committed as usize == total {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let series = |s: &str| sample(&page, s).unwrap_or_else(|| panic!("no {s} in:\n{page}"));
    // The accounting: consumed = written + deleted + skipped + dead-lettered, exactly.
    assert_eq!(
        series(&format!(
            r#"ducklake_sink_records_committed_total{{{connector},outcome="written"}}"#
        )),
        planted.good.len() as f64
    );
    assert_eq!(
        series(&format!(
            r#"ducklake_sink_records_committed_total{{{connector},outcome="dead_lettered"}}"#
        )),
        planted.bad.len() as f64
    );
    assert_eq!(
        series(&format!(
            r#"ducklake_sink_records_consumed_total{{{connector},topic="events"}}"#
        )),
        total as f64
    );
    let by_stage = |stage: &str| planted.bad.values().filter(|s| **s == stage).count() as f64;
    for stage in ["VALUE_CONVERTER", "TASK_PUT"] {
        assert_eq!(
            series(&format!(
                r#"ducklake_sink_records_dead_lettered_total{{{connector},stage="{stage}"}}"#
            )),
            by_stage(stage),
            "{stage}"
        );
    }
    // Still running: bad records did not stop it.
    assert_eq!(
        series(&format!(
            r#"ducklake_sink_connector_running{{{connector}}}"#
        )),
        1.0
    );
    let (status, body) = http_get(&addr, "/connectors/dlq/status");
    assert_eq!(status, 200);
    assert!(body.contains("RUNNING"), "{body}");
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    assert!(worker.log_text().contains("bad record set aside"));

    assert_good_exactly_once(&lake, &planted, "events");
    let conn = lake.open();
    assert_eq!(lake.offsets(&conn, "events").get(&0), Some(&5_000));

    let letters = dead_letters(&broker, "dlq-events", planted.bad.len());
    assert_eq!(
        letters.len(),
        planted.bad.len(),
        "one DLQ record per bad record"
    );
    for letter in &letters {
        let h = &letter.headers;
        let offset: i64 = h["__connect.errors.offset"].parse().unwrap();
        let stage = planted.bad[&offset];
        assert_eq!(h["__connect.errors.topic"], "events");
        assert_eq!(h["__connect.errors.partition"], "0");
        assert_eq!(h["__connect.errors.connector.name"], "dlq");
        assert_eq!(h["__connect.errors.stage"], stage);
        assert_eq!(
            h["__connect.errors.exception.class.name"],
            "org.apache.kafka.connect.errors.DataException"
        );
        assert!(!h["__connect.errors.exception.message"].is_empty());
        assert!(h["__connect.errors.exception.stacktrace"].contains("DataException"));
        if stage == "VALUE_CONVERTER" {
            assert_eq!(
                h["__connect.errors.class.name"],
                "org.apache.kafka.connect.json.JsonConverter"
            );
            assert!(h["__connect.errors.exception.message"].contains("not valid JSON"));
        }
        // The original record: key, value and its own headers.
        assert_eq!(letter.key.as_deref(), Some(format!("k{offset}").as_str()));
        assert_eq!(h["origin"], format!("k{offset}"));
        assert!(letter
            .value
            .as_deref()
            .unwrap()
            .contains(&offset.to_string()));
    }
}

#[test]
fn with_errors_tolerance_none_the_first_bad_record_stops_the_connector() {
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "strict", 1))
        .unwrap();
    let planted = plant(&broker, "strict", 2_000, 3);
    let first_bad = *planted.bad.keys().next().unwrap();
    let lake = LakeDir::new("strict", "strict", &[("flush.max.records", "500")]);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(worker.wait(MINUTE).code(), Some(1));
    let log = worker.log_text();
    assert!(
        log.contains(&format!("partition 0 offset {first_bad}:")),
        "{log}"
    );
    let conn = lake.open();
    assert_eq!(lake.offsets(&conn, "strict").get(&0), Some(&first_bad));
    assert_eq!(count(&conn, "SELECT count(*) FROM strict"), first_bad);
}

#[test]
fn kill_9_while_dead_lettering_loses_no_good_record_and_no_bad_one() {
    let broker = Broker::start();
    let rt = runtime();
    for t in ["crashy", "dlq-crashy"] {
        rt.block_on(create_topic(&broker.bootstrap, t, 1)).unwrap();
    }
    let planted = plant(&broker, "crashy", 20_000, 9);
    let lake = LakeDir::new(
        "dlq-crash",
        "crashy",
        &[
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "dlq-crashy"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("flush.max.records", "300"),
            ("flush.interval.ms", "200"),
        ],
    );
    let seed: u64 = rand::random();
    eprintln!("dlq crash loop seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..5 {
        let mut worker = Worker::start(&lake, &broker, &[]);
        worker.wait_for_log("partitions claimed", MINUTE);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..1_500)));
        worker.signal("KILL");
        worker.wait(MINUTE);
    }
    let mut last = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(last.wait(MINUTE * 2).success(), "{}", last.log_text());
    assert_good_exactly_once(&lake, &planted, "crashy");
    // At least once in the DLQ: every bad offset there (a crash may have sent one twice).
    let letters = dead_letters(&broker, "dlq-crashy", planted.bad.len());
    let offsets: BTreeSet<i64> = letters
        .iter()
        .map(|l| l.headers["__connect.errors.offset"].parse().unwrap())
        .collect();
    let expected: BTreeSet<i64> = planted.bad.keys().copied().collect();
    assert_eq!(offsets, expected, "every bad record in the DLQ");
    eprintln!(
        "{} bad records, {} DLQ records",
        planted.bad.len(),
        letters.len()
    );
}
