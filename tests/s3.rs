//! DuckLake data files on S3-compatible object storage (`ducklake.data.path=s3://…`), against
//! a real S3 API server (moto) and a real broker: orders land with their values, time travel
//! reads older snapshots through `ducklake-sink sql`, maintenance removes the objects of
//! expired snapshots from the bucket, a 10 s store outage mid-stream is retried without loss,
//! and credentials the store refuses stop the connector with an error naming endpoint and
//! bucket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use duckdb::Connection;
use ducklake_sink::gen::{order_json, produce_orders, OrdersOptions};
use rand::SeedableRng;
use support::s3::{open_lake, parquet_objects, s3_keys, Moto, Proxy};
use support::{count, http_get, runtime, sample, Broker, LakeDir, Worker, SINK};

const MINUTE: Duration = Duration::from_secs(60);

fn produce(broker: &Broker, topic: &str, start_id: u64, n: u64, seed: u64, rate: Option<f64>) {
    runtime()
        .block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: topic.into(),
            count: n,
            rate,
            seed,
            partitions: Some(2),
            start_id,
            customers: 50,
            with_schema: false,
            schema_registry: None,
        }))
        .unwrap();
}

/// The orders the generator wrote for ids `start_id..start_id+n` with `seed`, as
/// `(order_id, customer_id, product, quantity, price in cents, status)`.
fn expected_orders(start_id: u64, n: u64, seed: u64) -> Vec<(i64, i64, String, i64, i64, String)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (start_id..start_id + n)
        .map(|id| {
            let (_, value) = order_json(&mut rng, id, 50, false);
            let v: serde_json::Value = serde_json::from_str(&value).unwrap();
            (
                v["order_id"].as_i64().unwrap(),
                v["customer_id"].as_i64().unwrap(),
                v["product"].as_str().unwrap().to_owned(),
                v["quantity"].as_i64().unwrap(),
                (v["price"].as_f64().unwrap() * 100.0).round() as i64,
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn lake_orders(conn: &Connection) -> Vec<(i64, i64, String, i64, i64, String)> {
    let mut stmt = conn
        .prepare("SELECT order_id, customer_id, product, quantity, CAST(round(price * 100) AS BIGINT), status FROM orders ORDER BY order_id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn keys<'a>(
    pairs: &'a [(String, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

/// The names of every data and delete file the catalog holds (the live snapshots' files).
fn catalog_files(conn: &Connection) -> BTreeSet<String> {
    let mut stmt = conn
        .prepare(
            "SELECT path FROM __ducklake_metadata_lake.ducklake_data_file
             UNION ALL SELECT path FROM __ducklake_metadata_lake.ducklake_delete_file",
        )
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| file_name(&p.unwrap()))
        .collect()
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap().to_owned()
}

fn object_names(objects: &[String]) -> BTreeSet<String> {
    objects.iter().map(|k| file_name(k)).collect()
}

/// Replaces config keys of the connector file in place.
fn set_keys(lake: &LakeDir, pairs: &[(&str, &str)]) {
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lake.connector).unwrap()).unwrap();
    for (k, v) in pairs {
        doc["config"][*k] = serde_json::Value::String((*v).to_owned());
    }
    std::fs::write(&lake.connector, doc.to_string()).unwrap();
}

#[test]
fn orders_land_on_s3_time_travel_works_and_maintenance_removes_old_objects() {
    let broker = Broker::start();
    let moto = Moto::start();
    moto.create_bucket("lake");
    let store = s3_keys(&moto.endpoint(), "lake", "orders");
    let lake = LakeDir::new(
        "s3-orders",
        "orders",
        &keys(
            &store,
            &[
                ("flush.max.records", "250"),
                ("ducklake.maintenance.interval.ms", "0"),
            ],
        ),
    );
    // The catalog stays local; only the data is on the store.
    let data_path = "s3://lake/orders/";

    produce(&broker, "orders", 1, 3_000, 11, None);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE * 2).success(), "{}", worker.log_text());

    let conn = open_lake(&lake, &moto.endpoint(), data_path);
    assert_eq!(lake_orders(&conn), expected_orders(1, 3_000, 11));
    let first_snapshot = count(&conn, "SELECT max(snapshot_id) FROM lake.snapshots()");
    // Every file the catalog knows is an object in the bucket, under the data path, and
    // nothing else is there.
    let objects = parquet_objects(&moto, "lake", "orders/");
    assert!(
        objects.iter().all(|k| k.starts_with("orders/main/")),
        "{objects:?}"
    );
    assert_eq!(object_names(&objects), catalog_files(&conn));
    assert!(
        objects
            .iter()
            .filter(|k| k.starts_with("orders/main/orders/"))
            .count()
            >= 3,
        "expected a file per flush: {objects:?}"
    );
    assert!(
        moto.list("lake", "")
            .iter()
            .all(|k| k.starts_with("orders/")),
        "objects outside the data path"
    );
    drop(conn);

    // More orders, then time travel back to the first run's last snapshot.
    produce(&broker, "orders", 3_001, 1_000, 12, None);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE * 2).success(), "{}", worker.log_text());
    let sql = lake.path().join("travel.sql");
    std::fs::write(
        &sql,
        format!(
            "SELECT 'then=' || count(*) || '/' || max(order_id) AS r FROM orders AT (VERSION => {first_snapshot});
             SELECT 'now=' || count(*) || '/' || max(order_id) AS r FROM orders;"
        ),
    )
    .unwrap();
    let out = Command::new(SINK)
        .arg("sql")
        .arg(&lake.connector)
        .arg(&sql)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("then=3000/3000"), "{text}");
    assert!(text.contains("now=4000/4000"), "{text}");

    // Maintenance with a 1 ms retention: merges the small files, expires the old snapshots and
    // deletes their objects from the bucket.
    let before = parquet_objects(&moto, "lake", "orders/");
    set_keys(
        &lake,
        &[
            ("ducklake.maintenance.interval.ms", "1000"),
            ("ducklake.snapshot.retention.ms", "1"),
        ],
    );
    let mut worker = Worker::start(&lake, &broker, &[]);
    let deadline = Instant::now() + MINUTE;
    // Wait for a run that merged files, then for two more, so that the partitions' claim
    // (a commit to the offsets table) is expired and cleaned up too.
    loop {
        let log = worker.log_text();
        let runs: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("maintenance done"))
            .collect();
        if let Some(merged) = runs.iter().position(|l| {
            let field = |name: &str| -> u64 {
                l.split(&format!("{name}="))
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            field("files_after") < field("files_before")
        }) {
            if runs.len() >= merged + 3 && log.contains("partitions claimed") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no maintenance merged files:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());

    let after = parquet_objects(&moto, "lake", "orders/");
    eprintln!(
        "objects before maintenance: {}, after: {}",
        before.len(),
        after.len()
    );
    let conn = open_lake(&lake, &moto.endpoint(), data_path);
    assert!(
        after.len() < before.len(),
        "maintenance left {} of {} objects",
        after.len(),
        before.len()
    );
    // The bucket holds exactly the files of the snapshots kept: the old small files are gone.
    assert_eq!(object_names(&after), catalog_files(&conn));
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_files_scheduled_for_deletion"
        ),
        0
    );
    let removed = object_names(&before)
        .difference(&object_names(&after))
        .count();
    assert!(removed > 0);
    let mut expected = expected_orders(1, 3_000, 11);
    expected.extend(expected_orders(3_001, 1_000, 12));
    assert_eq!(lake_orders(&conn), expected);
    // The old snapshots are gone: time travel to them fails now, as it should.
    assert!(conn
        .execute_batch(&format!(
            "SELECT * FROM orders AT (VERSION => {first_snapshot})"
        ))
        .is_err());
}

#[test]
fn a_ten_second_store_outage_mid_stream_is_retried_without_loss() {
    let broker = Broker::start();
    let moto = Moto::start();
    moto.create_bucket("lake");
    // The sink reaches the store through a proxy that can cut it off; the store keeps its
    // state meanwhile.
    let proxy = Proxy::start(&moto.endpoint());
    let store = s3_keys(&proxy.endpoint(), "lake", "outage");
    let lake = LakeDir::new(
        "s3-outage",
        "orders",
        &keys(
            &store,
            &[
                ("flush.max.records", "300"),
                ("flush.interval.ms", "300"),
                ("errors.retry.timeout", "120000"),
                ("errors.retry.delay.max.ms", "2000"),
                ("ducklake.maintenance.interval.ms", "0"),
            ],
        ),
    );
    let n = 6_000;
    // Produced over ~20 s, so the outage falls in the middle of the stream.
    let producer = {
        let bootstrap = broker.bootstrap.clone();
        std::thread::spawn(move || {
            runtime()
                .block_on(produce_orders(&OrdersOptions {
                    bootstrap_servers: bootstrap,
                    topic: "orders".into(),
                    count: n,
                    rate: Some(300.0),
                    seed: 21,
                    partitions: Some(2),
                    start_id: 1,
                    customers: 50,
                    with_schema: false,
                    schema_registry: None,
                }))
                .unwrap()
        })
    };
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    worker.wait_for_log("flushed", MINUTE);
    let metrics = |name: &str| {
        sample(
            &http_get(&addr, "/metrics").1,
            &format!("{name}{{connector=\"s3-outage\"}}"),
        )
        .unwrap_or(0.0)
    };
    let committed = || {
        sample(
            &http_get(&addr, "/metrics").1,
            "ducklake_sink_records_committed_total{connector=\"s3-outage\",outcome=\"written\"}",
        )
        .unwrap_or(0.0) as u64
    };

    // 10 s without the store. Nothing commits meanwhile: a flush's data files are uploaded
    // before its catalog commit. (A flush already past its uploads when the cut came may still
    // commit, so the count is taken after 2 s.)
    proxy.cut();
    std::thread::sleep(Duration::from_secs(2));
    let cut_at = committed();
    std::thread::sleep(Duration::from_secs(8));
    let during = committed();
    proxy.restore();
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker stopped during the outage:\n{}",
        worker.log_text()
    );
    assert_eq!(during, cut_at, "records committed while the store was away");
    assert!(during < n, "everything was committed before the outage");
    producer.join().unwrap();

    let deadline = Instant::now() + MINUTE * 2;
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            panic!("the worker stopped ({status}):\n{}", worker.log_text());
        }
        if committed() >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} committed after the outage:\n{}",
            committed(),
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let retries = metrics("ducklake_sink_lake_retries_total");
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let log = worker.log_text();

    // The outage was seen as the store's, retried, and survived.
    assert!(retries >= 1.0, "no lake retries counted:\n{log}");
    let store_failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("transient lake failure; retrying"))
        .collect();
    assert!(
        store_failures
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{}", proxy.port))
                || l.contains("s3://lake/outage/")),
        "no retry names the store:\n{log}"
    );
    assert!(
        log.contains("lake operation succeeded after retrying"),
        "{log}"
    );

    // Exactly once: every order, once, with its values.
    let conn = open_lake(&lake, &proxy.endpoint(), "s3://lake/outage/");
    assert_eq!(count(&conn, "SELECT count(*) FROM orders"), n as i64);
    assert_eq!(lake_orders(&conn), expected_orders(1, n, 21));
    let offsets: i64 = lake.offsets(&conn, "orders").values().sum();
    assert_eq!(offsets, n as i64);
}

#[test]
fn credentials_the_store_refuses_stop_the_connector_naming_endpoint_and_bucket() {
    let broker = Broker::start();
    // Checks credentials from its second request on: the bucket is made, and then the sink's
    // key is unknown to it.
    let moto = Moto::start_with_auth(1);
    moto.create_bucket("locked");
    let store = s3_keys(&moto.endpoint(), "locked", "data");
    let lake = LakeDir::new(
        "s3-denied",
        "orders",
        &keys(&store, &[("errors.retry.timeout", "60000")]),
    );
    produce(&broker, "orders", 1, 100, 3, None);
    let started = Instant::now();
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    let status = worker.wait(MINUTE * 2);
    let log = worker.log_text();
    assert!(!status.success(), "{log}");
    // Not retried for errors.retry.timeout (60 s): a 403 is no outage.
    assert!(
        started.elapsed() < Duration::from_secs(45),
        "took {:?}:\n{log}",
        started.elapsed()
    );
    assert!(!log.contains("transient lake failure"), "{log}");
    let expected = format!(
        "object store http://{}, bucket `locked`: access denied (HTTP 403)",
        moto.endpoint()
    );
    assert!(log.contains(&expected), "{log}");
    assert!(!log.contains(support::s3::SECRET), "{log}");
}
