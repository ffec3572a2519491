//! End to end on a real tansu broker and a real DuckLake: JSON orders → lake, exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use ducklake_sink::gen::{create_topic, order_json, produce_orders, OrdersOptions, ProduceReport};
use rand::SeedableRng;
use support::registry::Registry;
use support::{count, http_get, runtime, sample, Broker, LakeDir, Worker, SINK};

const MINUTE: Duration = Duration::from_secs(60);

fn orders(
    broker: &Broker,
    topic: &str,
    count: u64,
    partitions: i32,
    start_id: u64,
    with_schema: bool,
    rate: Option<f64>,
) -> ProduceReport {
    runtime()
        .block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: topic.into(),
            count,
            rate,
            seed: 7,
            partitions: Some(partitions),
            start_id,
            customers: 100,
            with_schema,
            schema_registry: None,
        }))
        .unwrap()
}

/// Every offset range named in the sink's commit messages, per partition, in snapshot order.
fn committed_ranges(conn: &duckdb::Connection) -> (BTreeMap<i64, Vec<(i64, i64)>>, i64) {
    let mut stmt = conn
        .prepare("SELECT snapshot_id, commit_message, commit_extra_info FROM lake.snapshots()
         WHERE author = 'ducklake-sink' AND json_extract_string(commit_extra_info, '$.kind') = 'flush' ORDER BY snapshot_id")
        .unwrap();
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut ranges: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    let mut records = 0;
    for (_, message, extra) in &rows {
        let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
        for r in extra["offsets"].as_array().unwrap() {
            let (p, first, last) = (
                r["partition"].as_i64().unwrap(),
                r["first_offset"].as_i64().unwrap(),
                r["last_offset"].as_i64().unwrap(),
            );
            assert!(
                message.contains(&format!("[{p}]@{first}..{last}")),
                "message `{message}` does not name {p}:{first}..{last}"
            );
            ranges.entry(p).or_default().push((first, last));
            records += r["records"].as_i64().unwrap();
        }
    }
    (ranges, records)
}

#[test]
fn drains_every_order_exactly_once_with_offsets_and_lineage_in_the_lake() {
    let broker = Broker::start();
    let lake = LakeDir::new("orders-drain", "orders", &[("flush.max.records", "3000")]);
    let report = orders(&broker, "orders", 20_000, 4, 1, false, None);

    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    let status = worker.wait(MINUTE * 2);
    assert!(status.success(), "worker failed: {}", worker.log_text());

    let conn = lake.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM orders"), 20_000);
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT order_id) FROM orders"),
        20_000
    );
    assert_eq!(count(&conn, "SELECT min(order_id) FROM orders"), 1);
    assert_eq!(count(&conn, "SELECT max(order_id) FROM orders"), 20_000);

    // The lake's offsets are the log end offsets of what was produced.
    assert_eq!(lake.offsets(&conn, "orders"), report.end_offsets());

    // Each flush is one snapshot naming its offset ranges; together they tile each partition
    // from 0 to its end offset with no gap and no overlap.
    let (ranges, records) = committed_ranges(&conn);
    assert_eq!(records, 20_000);
    for (p, end) in report.end_offsets() {
        let mut next = 0;
        for (first, last) in &ranges[&i64::from(p)] {
            assert_eq!(*first, next, "partition {p}: gap or overlap at {first}");
            next = last + 1;
        }
        assert_eq!(next, end, "partition {p}");
    }
    let flushes = worker.log_text().matches("flushed").count() as i64;
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM lake.snapshots() WHERE author = 'ducklake-sink' AND json_extract_string(commit_extra_info, '$.kind') = 'flush'"
        ),
        flushes
    );

    // Kafka's committed offsets (the advisory copy) match the lake's too.
    let committed = kafka_committed(&broker, "connect-orders-drain", "orders", 4);
    assert_eq!(committed, report.end_offsets());
}

fn kafka_committed(
    broker: &Broker,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// A slow, steady stream (a record every 50 ms, less than the poll thread's wait for the next
/// message) reaches the lake on the flush interval. The poll thread used to hand messages on
/// only after a wait that found nothing, or with 1,024 of them: at this rate, after 51 s.
#[test]
fn a_slow_steady_stream_is_flushed_on_the_interval() {
    let broker = Broker::start();
    // Fetches return as soon as a record is there (tansu answers a fetch at its max wait
    // otherwise, and the records came in bursts with gaps long enough to hide the delay).
    let lake = LakeDir::new(
        "orders-trickle",
        "orders",
        &[
            ("flush.interval.ms", "300"),
            ("consumer.override.fetch.wait.max.ms", "10"),
        ],
    );
    runtime()
        .block_on(create_topic(&broker.bootstrap, "orders", 1))
        .unwrap();
    let mut worker = Worker::start(&lake, &broker, &[]);
    worker.wait_for_log("partitions claimed", MINUTE);
    // 300 records at 20/s take 15 s; the first flush is due within a second of the first.
    let producer = support::produce_orders_in_background(&broker, "orders", 300, 20.0, 7);
    worker.wait_for_log(" flushed", Duration::from_secs(5));
    let report = producer.join().unwrap();
    // Every record is committed by the interval flushes, while the worker runs.
    let flushed = |log: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains(" flushed"))
            .filter_map(|l| l.split(" records=").nth(1))
            .filter_map(|r| {
                r.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while flushed(&worker.log_text()) < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(flushed(&worker.log_text()), 300, "{}", worker.log_text());
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let conn = lake.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM orders"), 300);
    assert_eq!(lake.offsets(&conn, "orders"), report.end_offsets());
}

#[test]
fn sigterm_mid_stream_then_restart_ends_with_exactly_n_rows() {
    let broker = Broker::start();
    let lake = LakeDir::new(
        "orders-sigterm",
        "orders",
        &[("flush.max.records", "500"), ("flush.interval.ms", "200")],
    );
    runtime()
        .block_on(create_topic(&broker.bootstrap, "orders", 4))
        .unwrap();
    let total = 30_000;
    let bootstrap = broker.bootstrap.clone();
    // Records keep arriving while the worker runs and is stopped.
    let producer = std::thread::spawn(move || {
        runtime()
            .block_on(produce_orders(&OrdersOptions {
                bootstrap_servers: bootstrap,
                topic: "orders".into(),
                count: total,
                rate: Some(6_000.0),
                seed: 1,
                partitions: None,
                start_id: 1,
                customers: 50,
                with_schema: false,
                schema_registry: None,
            }))
            .unwrap()
    });
    let mut first = Worker::start(&lake, &broker, &[]);
    first.wait_for_log("flushed", MINUTE);
    std::thread::sleep(Duration::from_millis(700));
    first.signal("TERM");
    let status = first.wait(MINUTE);
    assert!(
        status.success(),
        "SIGTERM must flush and exit 0: {}",
        first.log_text()
    );
    assert!(first.log_text().contains("stopping: shutdown requested"));

    let partial = count(&lake.open(), "SELECT count(*) FROM orders");
    assert!(partial > 0, "the first run committed nothing");

    let report = producer.join().unwrap();
    let mut second = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(second.wait(MINUTE * 2).success(), "{}", second.log_text());

    let conn = lake.open();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM orders"),
        total as i64,
        "first run had {partial}"
    );
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT order_id) FROM orders"),
        total as i64
    );
    assert_eq!(lake.offsets(&conn, "orders"), report.end_offsets());
}

#[test]
fn schema_envelopes_get_connect_types() {
    typed_orders(None);
}

/// The same orders as Avro values through a real HTTP schema registry: the same column types
/// and values.
#[test]
fn avro_orders_get_the_same_types() {
    let registry = Registry::start();
    typed_orders(Some(&registry.url));
}

fn typed_orders(registry: Option<&str>) {
    let broker = Broker::start();
    let mut config = vec![("value.converter.schemas.enable", "true")];
    if let Some(url) = registry {
        config.push(("value.converter", "io.confluent.connect.avro.AvroConverter"));
        config.push(("value.converter.schema.registry.url", url));
    }
    let lake = LakeDir::new("orders-typed", "typed", &config);
    let n = 1_000;
    runtime()
        .block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: "typed".into(),
            count: n,
            rate: None,
            seed: 7,
            partitions: Some(2),
            start_id: 1,
            customers: 100,
            with_schema: true,
            schema_registry: registry.map(str::to_owned),
        }))
        .unwrap();
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());

    let conn = lake.open();
    let types: BTreeMap<String, String> = {
        let mut stmt = conn
            .prepare("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'lake' AND table_name = 'typed'")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(types["order_id"], "BIGINT");
    assert_eq!(types["quantity"], "INTEGER");
    assert_eq!(types["price"], "DECIMAL(10,2)");
    assert_eq!(types["timestamp"], "TIMESTAMP");

    // Regenerate the same orders (same seed) to know the exact total of prices in cents.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut expected_cents: i64 = 0;
    for id in 1..=n {
        let (_, value) = order_json(&mut rng, id, 100, false);
        let v: serde_json::Value = serde_json::from_str(&value).unwrap();
        expected_cents += (v["price"].as_f64().unwrap() * 100.0).round() as i64;
    }
    assert_eq!(
        count(&conn, "SELECT CAST(sum(price) * 100 AS BIGINT) FROM typed"),
        expected_cents
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM typed WHERE \"timestamp\" > TIMESTAMP '2020-01-01'"
        ),
        n as i64
    );
}

#[test]
fn sql_walkthroughs_run_on_the_lake_the_sink_built() {
    let broker = Broker::start();
    let lake = LakeDir::new("orders-sql", "orders", &[("flush.max.records", "700")]);
    orders(&broker, "orders", 3_000, 2, 1, false, None);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());

    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "01_setup.sql",
        "02_crud.sql",
        "03_time_travel.sql",
        "04_advanced.sql",
    ] {
        for round in 0..2 {
            let out = Command::new(SINK)
                .arg("sql")
                .arg(&lake.connector)
                .arg(format!("{root}/sql/{file}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{file} (round {round}) failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The walk-throughs leave the sink's own tables alone.
    assert_eq!(count(&lake.open(), "SELECT count(*) FROM orders"), 3_000);
    let status = Command::new(SINK)
        .arg("status")
        .arg(&lake.connector)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("orders ") && l.ends_with("| 3000")),
        "{text}"
    );
}

#[test]
fn a_sqlite_catalog_works_too() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let catalog = format!("sqlite:{}", dir.path().join("catalog.sqlite").display());
    let lake = LakeDir::new(
        "orders-sqlite",
        "orders",
        &[
            ("ducklake.catalog", &catalog),
            ("flush.max.records", "1500"),
        ],
    );
    let report = orders(&broker, "orders", 5_000, 2, 1, false, None);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let conn = lake.open();
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT order_id) FROM orders"),
        5_000
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM orders"), 5_000);
    assert_eq!(lake.offsets(&conn, "orders"), report.end_offsets());
}

/// GET `path` from the worker's HTTP listener: (status code, body).
#[test]
fn metrics_health_and_status_tell_the_operator_what_happens() {
    let broker = Broker::start();
    let lake = LakeDir::new("orders-http", "orders", &[("flush.max.records", "1000")]);
    let report = orders(&broker, "orders", 5_000, 2, 1, false, None);
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();

    // Wait until every record is committed, as the metrics tell it.
    let deadline = std::time::Instant::now() + MINUTE;
    let mut page = String::new();
    while std::time::Instant::now() < deadline {
        page = http_get(&addr, "/metrics").1;
        if sample(
            &page,
            r#"ducklake_sink_rows_written_total{connector="orders-http",table="orders"}"#,
        ) == Some(5_000.0)
            && sample(
                &page,
                r#"ducklake_sink_consumer_lag{connector="orders-http",topic="orders",partition="0"}"#,
            ) == Some(0.0)
            && sample(
                &page,
                r#"ducklake_sink_consumer_lag{connector="orders-http",topic="orders",partition="1"}"#,
            ) == Some(0.0)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let series = |s: &str| sample(&page, s).unwrap_or_else(|| panic!("no {s} in:\n{page}"));
    assert_eq!(
        series(r#"ducklake_sink_rows_written_total{connector="orders-http",table="orders"}"#),
        5_000.0
    );
    assert_eq!(
        series(r#"ducklake_sink_connector_running{connector="orders-http"}"#),
        1.0
    );
    assert_eq!(
        series(
            r#"ducklake_sink_consumer_lag{connector="orders-http",topic="orders",partition="0"}"#
        ),
        0.0
    );
    let flushes = series(r#"ducklake_sink_flush_duration_seconds_count{connector="orders-http"}"#);
    assert!(
        flushes >= 5.0,
        "{flushes} flushes for 5,000 records at 1,000 per flush"
    );
    assert!(series(r#"ducklake_sink_freshness_seconds{connector="orders-http"}"#) < 600.0);
    assert!(page.contains("# TYPE ducklake_sink_flush_size_records histogram"));

    let (status, body) = http_get(&addr, "/health");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = http_get(&addr, "/connectors/orders-http/status");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["connector"]["state"], "RUNNING");
    assert_eq!(json["tasks"][0]["state"], "RUNNING");
    let next: std::collections::BTreeMap<i32, i64> = json["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap() as i32,
                p["lake_next_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(next, report.end_offsets());
    assert_eq!(http_get(&addr, "/connectors/nope/status").0, 404);

    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
}

#[test]
fn maintenance_merges_the_small_files_of_frequent_flushes_and_keeps_every_row() {
    let broker = Broker::start();
    // Tiny flushes: one Parquet file each, the small-file problem of every streaming sink.
    let lake = LakeDir::new(
        "orders-maintained",
        "orders",
        &[
            ("flush.max.records", "200"),
            ("ducklake.maintenance.interval.ms", "1000"),
        ],
    );
    orders(&broker, "orders", 6_000, 2, 1, false, None);
    let mut worker = Worker::start(&lake, &broker, &[]);
    // Runs before the first flush find nothing to do; wait for one that merged something.
    let runs = |log: &str| -> Vec<(u64, u64)> {
        log.lines()
            .filter(|l| l.contains("maintenance done"))
            .filter_map(|l| {
                let field = |name: &str| -> Option<u64> {
                    l.split(&format!("{name}="))
                        .nth(1)?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()
                };
                Some((field("files_before")?, field("files_after")?))
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + MINUTE;
    while std::time::Instant::now() < deadline
        && !runs(&worker.log_text()).iter().any(|(b, a)| a < b)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let runs = runs(&worker.log_text());
    eprintln!("maintenance runs (data files before -> after): {runs:?}");
    assert!(
        runs.iter().any(|(before, after)| after < before),
        "no maintenance run reduced the file count:\n{}",
        worker.log_text()
    );
    let conn = lake.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM orders"), 6_000);
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT order_id) FROM orders"),
        6_000
    );
}

/// `flush.max.records` is a hard cap: a batch that fills up while the previous flush is still
/// committing waits for it instead of taking the rest of the consumer's chunk.
#[test]
fn no_flush_holds_more_than_flush_max_records() {
    let broker = Broker::start();
    let lake = LakeDir::new("orders-cap", "orders", &[("flush.max.records", "100")]);
    orders(&broker, "orders", 5_000, 1, 1, false, None);

    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(
        worker.wait(MINUTE * 2).success(),
        "worker failed: {}",
        worker.log_text()
    );
    let conn = lake.open();
    assert_eq!(
        count(&conn, "SELECT count(DISTINCT order_id) FROM orders"),
        5_000
    );
    let mut stmt = conn
        .prepare("SELECT commit_extra_info FROM lake.snapshots()
         WHERE author = 'ducklake-sink' AND json_extract_string(commit_extra_info, '$.kind') = 'flush'")
        .unwrap();
    let sizes: Vec<i64> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|extra| {
            let extra: serde_json::Value = serde_json::from_str(&extra.unwrap()).unwrap();
            extra["offsets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["records"].as_i64().unwrap())
                .sum()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<i64>(), 5_000);
    assert!(
        sizes.iter().all(|n| *n <= 100),
        "flush sizes over the cap: {:?}",
        sizes.iter().filter(|n| **n > 100).collect::<Vec<_>>()
    );
}

/// The `ducklake.parquet.*` keys reach DuckLake (its options of the connector's schema) and the
/// Parquet files it writes; a lake without them keeps DuckLake's defaults.
#[test]
fn parquet_keys_reach_the_files_the_lake_writes() {
    let broker = Broker::start();
    orders(&broker, "orders", 10_000, 1, 1, false, None);
    let tuned = LakeDir::new(
        "orders-zstd",
        "orders",
        &[
            ("flush.max.records", "5000"),
            ("ducklake.parquet.compression", "zstd"),
            ("ducklake.parquet.row.group.size", "2048"),
            ("ducklake.threads", "2"),
            ("ducklake.memory.limit", "512MB"),
        ],
    );
    let plain = LakeDir::new("orders-plain", "orders", &[("flush.max.records", "5000")]);
    for lake in [&tuned, &plain] {
        let mut worker = Worker::start(lake, &broker, &["--until-caught-up"]);
        assert!(
            worker.wait(MINUTE * 2).success(),
            "worker failed: {}",
            worker.log_text()
        );
    }

    // (codecs of the column chunks, largest row group, row groups, files) of a lake's table.
    let files = |lake: &LakeDir| -> (Vec<String>, i64, i64, i64) {
        let conn = lake.open();
        assert_eq!(count(&conn, "SELECT count(*) FROM orders"), 10_000);
        let paths: Vec<String> = conn
            .prepare("SELECT data_file FROM ducklake_list_files('lake', 'orders')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let list = paths
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let codecs: Vec<String> = conn
            .prepare(&format!(
                "SELECT DISTINCT compression FROM parquet_metadata([{list}]) ORDER BY 1"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let (largest, groups): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT max(row_group_num_rows), count(DISTINCT (file_name, row_group_id))
                     FROM parquet_metadata([{list}])"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        (codecs, largest, groups, paths.len() as i64)
    };
    let (codecs, largest, groups, n) = files(&tuned);
    assert_eq!(codecs, ["ZSTD"]);
    assert!(largest <= 2048, "a row group of {largest} rows");
    assert!(groups >= 10_000 / 2048, "{groups} row groups in {n} files");
    let (codecs, largest, _, _) = files(&plain);
    assert_eq!(codecs, ["SNAPPY"]);
    assert!(largest > 2048, "largest row group {largest} rows");

    // DuckLake holds the tuned options for the connector's schema only.
    let conn = tuned.open();
    let options: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT option_name, value, scope || ':' || coalesce(scope_entry, '') FROM lake.options()
             WHERE option_name LIKE 'parquet%' ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        options,
        [
            (
                "parquet_compression".into(),
                "zstd".into(),
                "SCHEMA:main".into()
            ),
            (
                "parquet_row_group_size".into(),
                "2048".into(),
                "SCHEMA:main".into()
            ),
        ]
    );
}
