//! Exactly once under the faults that really happen: crash loops, worker death and joins with
//! a shared PostgreSQL catalog, zombies, catalog outages, recreated topics. Real tansu broker,
//! real DuckLake, real PostgreSQL. These tests run one at a time (they time session
//! timeouts and outages on a 2-core machine).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ducklake_sink::gen::{create_topic, produce_orders, OrdersOptions, ProduceReport};
use rand::{Rng, SeedableRng};
use support::{count, runtime, wait_for_rows, Broker, LakeDir, Postgres, Worker};

const MINUTE: Duration = Duration::from_secs(60);
const N: u64 = 200_000;

/// Produces `count` orders at `rate`/s on a background thread.
fn producer(broker: &Broker, topic: &str, count: u64, rate: f64) -> JoinHandle<ProduceReport> {
    support::produce_orders_in_background(broker, topic, count, rate, 11)
}

/// A broker with a 4-partition `orders` topic, and a connector on a fresh PostgreSQL
/// catalog (the cluster lives as long as the first element).
fn postgres_stack(name: &str, extra: &[(&str, &str)]) -> (Postgres, Broker, LakeDir) {
    let pg = Postgres::start();
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "orders", 4))
        .unwrap();
    let catalog = pg.catalog();
    let mut config = vec![("ducklake.catalog", catalog.as_str())];
    config.extend_from_slice(extra);
    let lake = LakeDir::new(name, "orders", &config);
    (pg, broker, lake)
}

/// Every order exactly once, and the lake offsets at the log end.
fn assert_exactly_once(lake: &LakeDir, report: &ProduceReport) {
    let conn = lake.open();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM orders"),
        report.sent as i64,
        "row count"
    );
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT order_id) FROM orders"),
        report.sent as i64,
        "distinct ids"
    );
    assert_eq!(count(&conn, "SELECT min(order_id) FROM orders"), 1);
    assert_eq!(
        count(&conn, "SELECT max(order_id) FROM orders"),
        report.sent as i64
    );
    assert_eq!(
        lake.offsets(&conn, "orders"),
        report.end_offsets(),
        "lake offsets vs log end"
    );
}

#[test]
fn crash_loop_of_kill_9_keeps_every_record_exactly_once() {
    let _serial = support::serial();
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "orders", 4))
        .unwrap();
    let lake = LakeDir::new(
        "crash-loop",
        "orders",
        &[("flush.max.records", "5000"), ("flush.interval.ms", "300")],
    );
    let seed: u64 = rand::thread_rng().gen();
    eprintln!("crash loop seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let produced = producer(&broker, "orders", N, 2_500.0);

    let mut kills = 0;
    while kills < 10 {
        let mut worker = Worker::start(&lake, &broker, &[]);
        worker.wait_for_log("partitions claimed", MINUTE);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..2_500)));
        worker.signal("KILL");
        worker.wait(MINUTE);
        kills += 1;
    }
    let report = produced.join().unwrap();
    let mut last = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(last.wait(MINUTE * 3).success(), "{}", last.log_text());
    assert_exactly_once(&lake, &report);
}

/// The connection is lost after `COMMIT` was sent (the test hook reports failure after every
/// successful commit): the retry reads the lake, finds the batch there and does not
/// write it again. Without that, each such fault would append its batch twice.
#[test]
fn commits_whose_outcome_is_unknown_are_resolved_by_reading_the_lake() {
    let _serial = support::serial();
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "orders", 4))
        .unwrap();
    let report = producer(&broker, "orders", 150_000, 1_000_000.0)
        .join()
        .unwrap();
    let lake = LakeDir::new(
        "unknown-outcome",
        "orders",
        // 150 flushes, each one's commit outcome made unknown: flush.max.records is a hard
        // cap, and each fault costs a retry with backoff.
        &[("flush.max.records", "1000"), ("flush.interval.ms", "200")],
    );
    let mut worker = Worker::start_with_env(
        &lake,
        &broker,
        &["--until-caught-up"],
        &[("DUCKLAKE_SINK_FAULT_AFTER_COMMIT", "1")],
    );
    assert!(worker.wait(MINUTE * 4).success(), "{}", worker.log_text());
    let log = worker.log_text();
    let resolved = log
        .matches("the lake holds it: not writing it again")
        .count();
    eprintln!("{resolved} commits with an unknown outcome, each found in the lake");
    assert!(resolved >= 100, "only {resolved} faults:\n{log}");
    assert_exactly_once(&lake, &report);
}

#[test]
fn two_workers_share_a_postgres_catalog_through_death_and_join() {
    let _serial = support::serial();
    let (_pg, broker, lake) = postgres_stack("shared", &[("flush.interval.ms", "500")]);
    let produced = producer(&broker, "orders", N, 4_000.0);

    let mut first = Worker::start(&lake, &broker, &[]);
    let mut second = Worker::start(&lake, &broker, &[]);
    first.wait_for_log("flushed", MINUTE);
    second.wait_for_log("flushed", MINUTE);
    std::thread::sleep(Duration::from_secs(5));
    first.signal("KILL");
    first.wait(MINUTE);
    std::thread::sleep(Duration::from_secs(10));
    let mut third = Worker::start(&lake, &broker, &[]);
    third.wait_for_log("flushed", MINUTE * 2);

    let report = produced.join().unwrap();
    wait_for_rows(&lake, "orders", report.sent as i64, MINUTE * 3);
    second.signal("TERM");
    third.signal("TERM");
    assert!(second.wait(MINUTE).success(), "{}", second.log_text());
    assert!(third.wait(MINUTE).success(), "{}", third.log_text());
    for (name, w) in [("first", &first), ("second", &second), ("third", &third)] {
        let log = w.log_text();
        eprintln!(
            "{name}: {} claims, {} flushes, {} lake retries (conflicts and races)",
            log.matches("partitions claimed").count(),
            log.matches("flushed").count(),
            log.matches("transient lake failure; retrying").count()
        );
        for line in log
            .lines()
            .filter(|l| l.contains("transient lake failure"))
            .take(2)
        {
            eprintln!("{name}:   {}", line.chars().take(300).collect::<String>());
        }
    }
    assert_exactly_once(&lake, &report);
}

#[test]
fn a_zombie_that_resumes_after_its_partitions_moved_cannot_commit() {
    let _serial = support::serial();
    // Long flush interval and no size trigger: the zombie surely holds records when frozen.
    let (_pg, broker, lake) = postgres_stack(
        "zombie",
        &[
            ("flush.interval.ms", "4000"),
            ("flush.max.records", "10000000"),
        ],
    );
    let produced = producer(&broker, "orders", N, 5_000.0);

    let mut zombie = Worker::start(&lake, &broker, &[]);
    zombie.wait_for_log("flushed", MINUTE);
    let mut healthy = Worker::start(&lake, &broker, &[]);
    healthy.wait_for_log("flushed", MINUTE);
    std::thread::sleep(Duration::from_millis(1500));
    zombie.signal("STOP");
    // Past the 6 s session timeout: the group gives the zombie's partitions to `healthy`,
    // which claims them (new epoch) and commits.
    let frozen = Instant::now();
    std::thread::sleep(Duration::from_secs(14));
    zombie.signal("CONT");
    eprintln!("zombie frozen for {:?}", frozen.elapsed());

    let report = produced.join().unwrap();
    wait_for_rows(&lake, "orders", report.sent as i64, MINUTE * 3);
    std::thread::sleep(Duration::from_secs(2));
    zombie.signal("TERM");
    healthy.signal("TERM");
    zombie.wait(MINUTE);
    assert!(healthy.wait(MINUTE).success(), "{}", healthy.log_text());
    let zombie_log = zombie.log_text();
    for line in zombie_log
        .lines()
        .filter(|l| l.contains("fenced") || l.contains("revoked"))
    {
        eprintln!("zombie: {line}");
    }
    assert_exactly_once(&lake, &report);
    assert!(
        zombie_log.contains("fenced"),
        "the zombie's commit was not refused:\n{zombie_log}"
    );
}

#[test]
fn a_catalog_outage_is_ridden_out_by_retrying() {
    let _serial = support::serial();
    let (pg, broker, lake) = postgres_stack("outage", &[("flush.interval.ms", "500")]);
    let produced = producer(&broker, "orders", N, 5_000.0);

    let mut worker = Worker::start(&lake, &broker, &[]);
    worker.wait_for_log("flushed", MINUTE);
    std::thread::sleep(Duration::from_secs(2));
    pg.stop_server();
    std::thread::sleep(Duration::from_secs(10));
    pg.start_server();

    let report = produced.join().unwrap();
    wait_for_rows(&lake, "orders", report.sent as i64, MINUTE * 3);
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let log = worker.log_text();
    assert!(
        log.contains("transient lake failure; retrying"),
        "no retry happened:\n{log}"
    );
    assert_exactly_once(&lake, &report);
}

#[test]
fn a_recreated_topic_stops_the_worker_with_the_promised_error() {
    let _serial = support::serial();
    let broker = Broker::start();
    let rt = runtime();
    let produce = |count: u64, start_id: u64| {
        rt.block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: "orders".into(),
            count,
            rate: None,
            seed: start_id,
            partitions: Some(2),
            start_id,
            customers: 10,
            with_schema: false,
            schema_registry: None,
        }))
        .unwrap()
    };
    produce(1_000, 1);
    let lake = LakeDir::new("recreated", "orders", &[]);
    let mut first = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(first.wait(MINUTE).success(), "{}", first.log_text());

    delete_topic(&broker, "orders");
    // Shorter than before: the lake's offsets are past the new log end.
    produce(100, 5_001);
    let mut shorter = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(
        shorter.wait(MINUTE).code(),
        Some(1),
        "{}",
        shorter.log_text()
    );
    let log = shorter.log_text();
    assert!(log.contains("deleted and recreated"), "{log}");
    assert!(log.contains("ducklake-sink reset"), "{log}");
    // It names where the lake stands, and moved nothing.
    assert!(log.contains("the lake's next offset"), "{log}");
    let before: std::collections::BTreeMap<i32, i64> = lake.offsets(&lake.open(), "orders");
    assert_eq!(before.values().sum::<i64>(), 1_000, "offsets unchanged");

    // Longer than before: the record before the lake's offset is not the committed one.
    produce(3_000, 10_001);
    let mut longer = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(longer.wait(MINUTE).code(), Some(1), "{}", longer.log_text());
    let log = longer.log_text();
    assert!(
        log.contains("is not the record the lake committed there"),
        "{log}"
    );
    assert_eq!(
        count(&lake.open(), "SELECT count(*) FROM orders"),
        1_000,
        "nothing of the new topic was written"
    );

    // The documented way out: forget the offsets, then the new topic is read from the start.
    let out = std::process::Command::new(support::SINK)
        .args(["reset", "--topic", "orders"])
        .arg(&lake.connector)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut after = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(after.wait(MINUTE).success(), "{}", after.log_text());
    assert_eq!(
        count(&lake.open(), "SELECT count(*) FROM orders"),
        1_000 + 3_100
    );
}

fn delete_topic(broker: &Broker, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    let results = runtime()
        .block_on(admin.delete_topics(&[topic], &AdminOptions::new()))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}
