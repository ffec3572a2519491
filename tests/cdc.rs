//! Change data capture end to end on a real broker and a real DuckLake: Debezium change
//! events applied as upserts, deletes and truncates; replays change nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use ducklake_sink::gen::{cdc_expect_columns, create_topic, produce_cdc, CdcFormat, CdcOptions};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::registry::Registry;
use support::{produce_keyed, runtime, Broker, LakeDir, Postgres, Worker, SINK};

const MINUTE: Duration = Duration::from_secs(60);

/// A Kafka record: key and value (`None`: a tombstone).
type KafkaRecord = (Option<String>, Option<String>);

/// A `users` row as the test's source database holds it: (id, name, balance in cents).
type User = (i64, Option<&'static str>, Option<i64>);

fn decimal_base64(unscaled: i64) -> String {
    let bytes = unscaled.to_be_bytes();
    // Minimal two's complement: drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 7
        && ((bytes[start] == 0 && bytes[start + 1] & 0x80 == 0)
            || (bytes[start] == 0xff && bytes[start + 1] & 0x80 != 0))
    {
        start += 1;
    }
    base64::engine::general_purpose::STANDARD.encode(&bytes[start..])
}

fn row_schema(field: &str) -> Value {
    json!({"type":"struct","optional":true,"name":"pg.public.users.Value","field":field,"fields":[
        {"field":"id","type":"int32","optional":false},
        {"field":"name","type":"string","optional":true},
        {"field":"balance","type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal",
         "version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}}]})
}

fn row(u: Option<User>) -> Value {
    match u {
        None => Value::Null,
        Some((id, name, balance)) => {
            json!({"id": id, "name": name, "balance": balance.map(decimal_base64)})
        }
    }
}

/// A Debezium PostgreSQL change event with schemas (`JsonConverter`, `schemas.enable=true`).
fn event(op: &str, before: Option<User>, after: Option<User>) -> KafkaRecord {
    let id = after.or(before).map(|u| u.0);
    let schema = json!({"type":"struct","optional":false,"name":"pg.public.users.Envelope","fields":[
        row_schema("before"), row_schema("after"),
        {"type":"struct","optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source","fields":[
            {"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"db"},
            {"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"},
            {"type":"int64","optional":true,"field":"lsn"},{"type":"int64","optional":false,"field":"ts_ms"}]},
        {"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}]});
    let value = json!({"schema": schema, "payload": {
        "before": row(before), "after": row(after), "op": op, "ts_ms": 1_700_000_000_000i64,
        "source": {"connector":"postgresql","db":"shop","schema":"public","table":"users","lsn":1234,"ts_ms":1_700_000_000_000i64}}});
    (id.map(key), Some(value.to_string()))
}

fn key(id: i64) -> String {
    json!({"schema":{"type":"struct","optional":false,"name":"pg.public.users.Key","fields":[{"field":"id","type":"int32","optional":false}]},
           "payload":{"id":id}})
    .to_string()
}

fn tombstone(id: i64) -> KafkaRecord {
    (Some(key(id)), None)
}

fn cdc_lake(name: &str, topic: &str, extra: &[(&str, &str)]) -> LakeDir {
    let mut config = vec![
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("key.converter.schemas.enable", "true"),
        ("value.converter.schemas.enable", "true"),
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("delete.enabled", "true"),
        ("truncate.enabled", "true"),
        ("table.name.format", "${source.table}"),
        ("flush.max.records", "3"),
    ];
    config.extend_from_slice(extra);
    LakeDir::new(name, topic, &config)
}

fn users(lake: &LakeDir) -> Vec<(i64, Option<String>, Option<String>)> {
    let conn = lake.open();
    let mut stmt = conn
        .prepare("SELECT id, name, balance::VARCHAR FROM users ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn drain(lake: &LakeDir, broker: &Broker) {
    let mut worker = Worker::start(lake, broker, &["--until-caught-up"]);
    let status = worker.wait(MINUTE * 2);
    assert!(status.success(), "worker failed: {}", worker.log_text());
}

fn reset(lake: &LakeDir, args: &[&str]) {
    let out = Command::new(SINK)
        .arg("reset")
        .arg(&lake.connector)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn debezium_changes_leave_the_table_equal_to_the_source_and_replays_change_nothing() {
    let broker = Broker::start();
    let topic = "pg.public.users";
    runtime()
        .block_on(create_topic(&broker.bootstrap, topic, 1))
        .unwrap();
    let ann = (1, Some("ann"), Some(1000));
    let bob = (2, Some("bob"), Some(-550));
    let cy = (3, Some("cy"), Some(1));
    let dee = (4, Some("dee"), Some(100));
    let eve = (5, Some("eve"), None);
    // PostgreSQL's default REPLICA IDENTITY: a delete's `before` holds only the key.
    let key_only = |id| (id, None, None);
    let mut events = vec![
        event("r", None, Some(ann)),
        event("r", None, Some(bob)),
        event("r", None, Some(cy)),
        event("c", None, Some(dee)),
        event("u", None, Some((1, Some("ann2"), Some(1100)))),
        event("d", Some(key_only(2)), None),
        tombstone(2),
        // A primary-key change, as Debezium writes it: delete + tombstone, then create.
        event("d", Some(key_only(3)), None),
        tombstone(3),
        event("c", None, Some((30, Some("cy"), Some(1)))),
        event("u", None, Some((4, Some("dee2"), Some(100)))),
        // Created and deleted within one flush.
        event("c", None, Some(eve)),
        event("d", Some(key_only(5)), None),
        tombstone(5),
        event("c", None, Some(bob)),
    ];
    produce_keyed(&broker.bootstrap, topic, 0, &events);

    let lake = cdc_lake("cdc-users", topic, &[]);
    drain(&lake, &broker);
    let expected = vec![
        (1, s("ann2"), s("11.00")),
        (2, s("bob"), s("-5.50")),
        (4, s("dee2"), s("1.00")),
        (30, s("cy"), s("0.01")),
    ];
    assert_eq!(users(&lake), expected);
    let conn = lake.open();
    let types: Vec<(String, String)> = conn
        .prepare("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'lake' AND table_name = 'users' ORDER BY ordinal_position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        types,
        vec![
            ("id".to_owned(), "INTEGER".to_owned()),
            ("name".to_owned(), "VARCHAR".to_owned()),
            ("balance".to_owned(), "DECIMAL(10,2)".to_owned())
        ]
    );
    drop(conn);

    // Replaying the whole topic, or its second half, leaves the table as it is.
    reset(&lake, &["--topic", topic]);
    drain(&lake, &broker);
    assert_eq!(users(&lake), expected);
    reset(
        &lake,
        &["--topic", topic, "--partition", "0", "--to-offset", "7"],
    );
    drain(&lake, &broker);
    assert_eq!(users(&lake), expected);

    // A truncate empties the table; what follows it stays.
    let truncate = json!({"schema":{"type":"struct","optional":false,"fields":[
            {"type":"struct","optional":true,"field":"before","fields":[{"field":"id","type":"int32"}]},
            {"type":"struct","optional":true,"field":"after","fields":[{"field":"id","type":"int32"}]},
            {"type":"struct","optional":false,"field":"source","fields":[{"type":"string","optional":false,"field":"table"}]},
            {"type":"string","optional":false,"field":"op"}]},
        "payload":{"before":null,"after":null,"source":{"table":"users"},"op":"t"}});
    events = vec![
        (None, Some(truncate.to_string())),
        event("c", None, Some((7, Some("gus"), Some(700)))),
    ];
    produce_keyed(&broker.bootstrap, topic, 0, &events);
    drain(&lake, &broker);
    assert_eq!(users(&lake), vec![(7, s("gus"), s("7.00"))]);
}

#[test]
fn with_deletes_disabled_deletes_are_skipped_and_counted_not_applied() {
    let broker = Broker::start();
    let topic = "pg.public.users";
    runtime()
        .block_on(create_topic(&broker.bootstrap, topic, 1))
        .unwrap();
    let events = vec![
        event("c", None, Some((1, Some("ann"), Some(1)))),
        event("c", None, Some((2, Some("bob"), Some(2)))),
        event("d", Some((2, None, None)), None),
        tombstone(2),
    ];
    produce_keyed(&broker.bootstrap, topic, 0, &events);
    let lake = cdc_lake("cdc-keep", topic, &[("delete.enabled", "false")]);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    assert_eq!(
        users(&lake).iter().map(|u| u.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let conn = lake.open();
    assert_eq!(lake.offsets(&conn, topic).get(&0), Some(&4));
}

#[test]
fn schemaless_events_of_several_tables_route_by_source() {
    let broker = Broker::start();
    let rt = runtime();
    for t in ["mysql1.inventory.customers", "mysql1.inventory.orders"] {
        rt.block_on(create_topic(&broker.bootstrap, t, 1)).unwrap();
    }
    let ev = |table: &str, op: &str, before: Value, after: Value| {
        let id = if after.is_null() {
            &before["id"]
        } else {
            &after["id"]
        };
        (
            Some(json!({"id": id}).to_string()),
            Some(
                json!({"before": before, "after": after, "op": op, "ts_ms": 1,
                       "source": {"connector":"mysql","db":"inventory","table":table,"file":"mysql-bin.000003","pos":154,"gtid":null}})
                .to_string(),
            ),
        )
    };
    produce_keyed(
        &broker.bootstrap,
        "mysql1.inventory.customers",
        0,
        &[
            ev(
                "customers",
                "c",
                Value::Null,
                json!({"id":1,"email":"a@x","tags":["a","b"]}),
            ),
            ev(
                "customers",
                "u",
                json!({"id":1,"email":"a@x","tags":["a","b"]}),
                json!({"id":1,"email":"b@x","tags":[]}),
            ),
            ev(
                "customers",
                "c",
                Value::Null,
                json!({"id":2,"email":"c@x","tags":null}),
            ),
            ev(
                "customers",
                "d",
                json!({"id":2,"email":"c@x","tags":null}),
                Value::Null,
            ),
            (Some(r#"{"id":2}"#.to_owned()), None),
        ],
    );
    produce_keyed(
        &broker.bootstrap,
        "mysql1.inventory.orders",
        0,
        &[ev("orders", "c", Value::Null, json!({"id":10,"qty":3}))],
    );
    let lake = LakeDir::new(
        "cdc-routes",
        "unused",
        &[
            ("topics.regex", "mysql1\\.inventory\\..*"),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("key.converter.schemas.enable", "false"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("delete.enabled", "true"),
            ("table.name.format", "${source.db}_${source.table}"),
        ],
    );
    // `topics` and `topics.regex` conflict: drop the empty `topics`.
    let text = std::fs::read_to_string(&lake.connector).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["config"].as_object_mut().unwrap().remove("topics");
    std::fs::write(&lake.connector, doc.to_string()).unwrap();
    drain(&lake, &broker);
    let conn = lake.open();
    let customers: Vec<(i64, String, String)> = conn
        .prepare("SELECT id, email, tags::VARCHAR FROM inventory_customers ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(customers, vec![(1, "b@x".to_owned(), "[]".to_owned())]);
    assert_eq!(
        support::count(&conn, "SELECT count(*) FROM inventory_orders WHERE qty = 3"),
        1
    );
}

/// `ducklake-gen cdc` changes (`--count` of them over `keys` keys) into a fresh topic of
/// `partitions` partitions; returns the `--expect` file.
fn generate(
    bootstrap: &str,
    dir: &std::path::Path,
    format: CdcFormat,
    count: u64,
    keys: u32,
    rate: Option<f64>,
) -> std::path::PathBuf {
    generate_with(bootstrap, dir, format, count, keys, rate, None, false)
}

/// [`generate`], for Avro through `registry`; `evolve`: the table gains a column midway.
#[allow(clippy::too_many_arguments)]
fn generate_with(
    bootstrap: &str,
    dir: &std::path::Path,
    format: CdcFormat,
    count: u64,
    keys: u32,
    rate: Option<f64>,
    registry: Option<&str>,
    evolve: bool,
) -> std::path::PathBuf {
    let expect = dir.join(format!("expect-{format:?}.jsonl"));
    let opts = CdcOptions {
        bootstrap_servers: bootstrap.to_owned(),
        topic: "dbserver1.inventory.users".into(),
        partitions: 4,
        format,
        schema_registry: registry.map(str::to_owned),
        count,
        keys,
        seed: 5,
        rate,
        expect: Some(expect.clone()),
        evolve,
        mix: None,
    };
    runtime().block_on(produce_cdc(&opts)).unwrap();
    expect
}

/// The lake's `users` table equals the generator's expected state, row for row and value
/// for value (EXCEPT ALL both ways over every column).
fn assert_equals_expected(lake: &LakeDir, expect: &std::path::Path) {
    assert_equals_expected_columns(lake, expect, false);
}

/// [`assert_equals_expected`]; `evolved`: the table has the column `--evolve` adds.
fn assert_equals_expected_columns(lake: &LakeDir, expect: &std::path::Path, evolved: bool) {
    let conn = lake.open();
    let columns = cdc_expect_columns(evolved);
    // The expect file holds a JSON column's text as a JSON string: read it as text, then
    // make it JSON.
    let spec: Vec<String> = columns
        .iter()
        .map(|(n, t)| format!("'{n}': '{}'", if *t == "JSON" { "VARCHAR" } else { t }))
        .collect();
    let casts: Vec<String> = columns
        .iter()
        .map(|(n, t)| format!("{n}::{t} AS {n}"))
        .collect();
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE expected AS SELECT {} FROM read_json('{}', format = 'newline_delimited', columns = {{{}}})",
        casts.join(", "),
        expect.display(),
        spec.join(", ")
    ))
    .unwrap();
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let cols = names.join(", ");
    let expected_rows = support::count(&conn, "SELECT count(*) FROM temp.expected");
    assert!(
        expected_rows > 1000,
        "expected state has only {expected_rows} rows"
    );
    for (a, b) in [("users", "temp.expected"), ("temp.expected", "users")] {
        let q = format!(
            "SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})"
        );
        let diff = support::count(&conn, &q);
        if diff != 0 {
            let sample: Vec<String> = conn
                .prepare(&format!(
                    "SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b} ORDER BY id LIMIT 3"
                ))
                .unwrap()
                .query_map([], |r| {
                    Ok(format!("{:?}", r.get::<_, duckdb::types::Value>(0)?))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            panic!("{diff} rows of {a} are not in {b}; ids {sample:?}");
        }
    }
    let types: Vec<(String, String)> = conn
        .prepare("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'lake' AND table_name = 'users'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (name, ty) in columns {
        assert!(
            types.iter().any(|(n, t)| n == name && t == ty),
            "column {name} should be {ty}: {types:?}"
        );
    }
}

/// A lake reading the generator's Avro through `registry`.
fn avro_lake(name: &str, registry: &str, extra: &[(&str, &str)]) -> LakeDir {
    const AVRO: &str = "io.confluent.connect.avro.AvroConverter";
    let mut config = vec![
        ("key.converter", AVRO),
        ("value.converter", AVRO),
        ("key.converter.schema.registry.url", registry),
        ("value.converter.schema.registry.url", registry),
    ];
    config.extend_from_slice(extra);
    generator_lake(name, true, &config)
}

fn generator_lake(name: &str, schemas: bool, extra: &[(&str, &str)]) -> LakeDir {
    let schemas = if schemas { "true" } else { "false" };
    let mut config = vec![
        (
            "key.converter",
            "org.apache.kafka.connect.json.JsonConverter",
        ),
        ("key.converter.schemas.enable", schemas),
        ("value.converter.schemas.enable", schemas),
        ("insert.mode", "upsert"),
        ("pk.mode", "record_key"),
        ("delete.enabled", "true"),
        ("table.name.format", "${source.table}"),
        ("flush.max.records", "20000"),
    ];
    config.extend_from_slice(extra);
    LakeDir::new(name, "dbserver1.inventory.users", &config)
}

/// Without schemas the sink can only store what the JSON carries (Debezium's wire forms:
/// dates as days, timestamps as epoch numbers, decimals as base64 two's complement); the
/// table holds exactly the expected state in those forms.
fn assert_schemaless_equals_expected(lake: &LakeDir, expect: &std::path::Path) {
    assert_schemaless_table_equals_expected(lake, "users", expect);
}

/// [`assert_schemaless_equals_expected`] for the lake table `table`.
fn assert_schemaless_table_equals_expected(lake: &LakeDir, table: &str, expect: &std::path::Path) {
    let conn = lake.open();
    let spec: Vec<String> = cdc_expect_columns(false)
        .iter()
        .map(|(n, t)| {
            let t = if matches!(*t, "JSON" | "TIMESTAMP WITH TIME ZONE") {
                "VARCHAR"
            } else {
                t
            };
            format!("'{n}': '{t}'")
        })
        .collect();
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE expected AS SELECT * FROM read_json('{}', format = 'newline_delimited', columns = {{{}}});
         CREATE OR REPLACE TEMP MACRO unbase64(s) AS CASE WHEN s IS NULL THEN NULL ELSE
             ('0x' || hex(from_base64(s)))::UBIGINT::HUGEINT
             - CASE WHEN substr(hex(from_base64(s)), 1, 1) >= '8'
                    THEN (1::HUGEINT << (8 * octet_length(from_base64(s)))) ELSE 0 END END;",
        expect.display(),
        spec.join(", ")
    ))
    .unwrap();
    let mismatches = support::count(
        &conn,
        &format!("SELECT count(*) FROM \"{table}\" l FULL OUTER JOIN temp.expected e USING (id)
         WHERE l.id IS NULL OR e.id IS NULL
            OR l.first_name IS DISTINCT FROM e.first_name OR l.last_name IS DISTINCT FROM e.last_name
            OR l.email IS DISTINCT FROM e.email OR l.active IS DISTINCT FROM e.active
            OR l.score IS DISTINCT FROM e.score OR l.status IS DISTINCT FROM e.status
            OR l.tags IS DISTINCT FROM e.tags OR l.profile IS DISTINCT FROM e.profile
            OR l.updated_at IS DISTINCT FROM e.updated_at
            OR l.birth_date IS DISTINCT FROM (e.birth_date - DATE '1970-01-01')
            OR l.created_at IS DISTINCT FROM epoch_ms(e.created_at)
            OR l.login_time IS DISTINCT FROM datediff('microsecond', TIME '00:00:00', e.login_time)
            OR unbase64(l.balance) IS DISTINCT FROM (e.balance * 100)::HUGEINT
            OR unbase64(l.visits) IS DISTINCT FROM e.visits::HUGEINT"),
    );
    let rows = support::count(&conn, "SELECT count(*) FROM temp.expected");
    assert!(rows > 1000, "expected state has only {rows} rows");
    assert_eq!(
        mismatches, 0,
        "{table}: rows that differ from the expected state"
    );
}

#[test]
fn generated_changes_with_and_without_schemas_equal_the_expected_state() {
    for (format, schemas) in [(CdcFormat::JsonSchema, true), (CdcFormat::Json, false)] {
        let broker = Broker::start();
        let lake = generator_lake(&format!("gen-{schemas}"), schemas, &[]);
        let expect = generate(
            &broker.bootstrap,
            lake.path(),
            format,
            100_000,
            10_000,
            None,
        );
        drain(&lake, &broker);
        if schemas {
            assert_equals_expected(&lake, &expect);
        } else {
            assert_schemaless_equals_expected(&lake, &expect);
        }
    }
}

/// Maintenance driven by the number of keyed changes (its timer off), rewriting every file
/// with deletes and merging files between small flushes, leaves the table equal to the
/// generator's state: the upkeep of issue 11 changes layout, never rows.
#[test]
fn maintenance_after_keyed_changes_rewrites_deleted_files_and_keeps_the_state() {
    let broker = Broker::start();
    let lake = generator_lake(
        "gen-maintained",
        true,
        &[
            ("flush.max.records", "2000"),
            ("ducklake.maintenance.interval.ms", "0"),
            ("ducklake.maintenance.changes", "5000"),
            ("ducklake.rewrite.delete.threshold", "0.0"),
        ],
    );
    let expect = generate(
        &broker.bootstrap,
        lake.path(),
        CdcFormat::JsonSchema,
        30_000,
        3_000,
        None,
    );
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    let status = worker.wait(MINUTE * 2);
    let log = worker.log_text();
    assert!(status.success(), "worker failed: {log}");
    let runs = log
        .lines()
        .filter(|l| l.contains("maintenance done"))
        .count();
    assert!(
        runs >= 2,
        "{runs} maintenance runs, expected one per 5000 changes:\n{log}"
    );
    assert_equals_expected(&lake, &expect);
}

/// Avro through a real HTTP registry, with a second value schema version (an added column)
/// midway: the lake equals the generator's state, the new column included.
#[test]
fn generated_avro_changes_with_a_schema_change_midway_equal_the_expected_state() {
    let broker = Broker::start();
    let registry = Registry::start();
    let lake = avro_lake("gen-avro", &registry.url, &[]);
    let expect = generate_with(
        &broker.bootstrap,
        lake.path(),
        CdcFormat::Avro,
        100_000,
        10_000,
        None,
        Some(&registry.url),
        true,
    );
    drain(&lake, &broker);
    assert_equals_expected_columns(&lake, &expect, true);
    // Three schemas (key, value v1, value v2), each fetched once.
    let fetched = registry.requests()["by_route"]["GET /schemas/ids/{sid}"].as_i64();
    assert_eq!(fetched, Some(3), "{}", registry.requests());
}

/// The registry stops while the worker still needs a schema (the second value version,
/// which appears midway): the worker waits and retries, commits nothing it cannot decode,
/// and once the registry is back finishes exactly once.
#[test]
fn a_registry_down_for_10_seconds_stalls_the_worker_which_then_resumes_exactly_once() {
    let broker = Broker::start();
    let mut registry = Registry::start();
    let lake = avro_lake(
        "gen-avro-outage",
        &registry.url,
        &[("flush.max.records", "1000"), ("flush.interval.ms", "300")],
    );
    let dir = lake.path().to_owned();
    let bootstrap = broker.bootstrap.clone();
    let url = registry.url.clone();
    // 20,000 changes at 2,000/s: the evolved schema is first used after about 5 s.
    let producing = std::thread::spawn(move || {
        generate_with(
            &bootstrap,
            &dir,
            CdcFormat::Avro,
            20_000,
            2_000,
            Some(2_000.0),
            Some(&url),
            true,
        )
    });
    let mut worker = Worker::start(&lake, &broker, &[]);
    let fetched = |worker: &Worker, n: usize| {
        let deadline = std::time::Instant::now() + MINUTE;
        while worker
            .log_text()
            .matches("schema fetched from the registry")
            .count()
            < n
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{}",
                worker.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Key and first value schema fetched: take the registry away before the evolution.
    fetched(&worker, 2);
    registry.stop();
    let stopped = std::time::Instant::now();
    worker.wait_for_log("schema registry unavailable; retrying", MINUTE);
    std::thread::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed()));
    registry.restart();
    fetched(&worker, 3);
    let expect = producing.join().unwrap();
    worker.signal("TERM");
    let status = worker.wait(MINUTE);
    assert!(status.success(), "{}", worker.log_text());
    assert!(!worker.log_text().contains("panicked"));
    // Whatever the stopped worker had not reached yet.
    drain(&lake, &broker);
    assert_equals_expected_columns(&lake, &expect, true);
}

#[test]
fn kill_9_while_applying_changes_keeps_the_table_equal_to_the_source() {
    let broker = Broker::start();
    let lake = generator_lake(
        "gen-crash",
        true,
        &[("flush.max.records", "2000"), ("flush.interval.ms", "300")],
    );
    let dir = lake.path().to_owned();
    let bootstrap = broker.bootstrap.clone();
    let producing = std::thread::spawn(move || {
        generate(
            &bootstrap,
            &dir,
            CdcFormat::JsonSchema,
            30_000,
            3_000,
            Some(3_000.0),
        )
    });
    let seed: u64 = rand::random();
    eprintln!("cdc crash loop seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..6 {
        let mut worker = Worker::start(&lake, &broker, &[]);
        worker.wait_for_log("partitions claimed", MINUTE);
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..2_000)));
        worker.signal("KILL");
        worker.wait(MINUTE);
    }
    let expect = producing.join().unwrap();
    drain(&lake, &broker);
    assert_equals_expected(&lake, &expect);
}

#[test]
fn bad_change_events_stop_at_their_offset_and_nothing_past_them_is_committed() {
    let broker = Broker::start();
    let good = |id: i64| event("c", None, Some((id, Some("ok"), Some(100))));
    // Each case: the bad record goes at offset 2, after two good ones, before a third.
    let wrong_type = {
        let (k, _) = good(9);
        let v = event("c", None, Some((9, Some("x"), Some(1))))
            .1
            .unwrap()
            .replace(r#""name":"x""#, r#""name":42"#);
        (k, Some(v))
    };
    let cases: Vec<(&str, KafkaRecord, &str)> = vec![
        ("not-json", (Some(key(9)), Some("{not json".into())), "value is not valid JSON"),
        (
            "no-op",
            (
                Some(key(9)),
                Some(
                    json!({"schema": {"type":"struct","fields":[
                        {"type":"struct","optional":true,"field":"after","fields":[{"field":"id","type":"int32"}]},
                        {"type":"struct","optional":true,"field":"source","fields":[{"field":"table","type":"string"}]}]},
                        "payload": {"after": {"id": 9}, "source": {"table": "users"}}})
                    .to_string(),
                ),
            ),
            "without `op`",
        ),
        ("no-key", (None, good(9).1), "the record has no key"),
        ("wrong-type", wrong_type, "field `name`: expected a string, got a number"),
    ];
    for (name, bad, needle) in cases {
        let topic = format!("pg.public.users-{name}");
        runtime()
            .block_on(create_topic(&broker.bootstrap, &topic, 1))
            .unwrap();
        produce_keyed(
            &broker.bootstrap,
            &topic,
            0,
            &[good(1), good(2), bad, good(3)],
        );
        let lake = cdc_lake(&format!("bad-{name}"), &topic, &[]);
        let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
        let status = worker.wait(MINUTE);
        let log = worker.log_text();
        assert_eq!(status.code(), Some(1), "{name}: {log}");
        assert!(
            log.contains(&format!("record at topic `{topic}` partition 0 offset 2: ")),
            "{name}: {log}"
        );
        assert!(log.contains(needle), "{name}: {log}");
        assert!(!log.contains("panicked"), "{name}: {log}");
        assert_eq!(
            users(&lake).iter().map(|u| u.0).collect::<Vec<_>>(),
            vec![1, 2],
            "{name}"
        );
        let conn = lake.open();
        assert_eq!(lake.offsets(&conn, &topic).get(&0), Some(&2), "{name}");
    }
}

#[test]
fn a_value_the_existing_column_cannot_hold_stops_at_its_offset() {
    let broker = Broker::start();
    let topic = "pg.public.users";
    runtime()
        .block_on(create_topic(&broker.bootstrap, topic, 1))
        .unwrap();
    let good = |id: i64| event("c", None, Some((id, Some("ok"), Some(100))));
    // The same column, now announced as a boolean: BOOLEAN cannot go into DECIMAL(10,2).
    let (k, v) = good(3);
    let mut changed: Value = serde_json::from_str(&v.unwrap()).unwrap();
    for field in changed["schema"]["fields"][1]["fields"]
        .as_array_mut()
        .unwrap()
    {
        if field["field"] == "balance" {
            *field = json!({"field": "balance", "type": "boolean", "optional": true});
        }
    }
    changed["payload"]["after"]["balance"] = json!(true);
    let changed = changed.to_string();
    assert!(changed.contains(r#""balance":true"#), "{changed}");
    produce_keyed(&broker.bootstrap, topic, 0, &[good(1), good(2)]);
    let lake = cdc_lake("misfit", topic, &[]);
    drain(&lake, &broker);
    produce_keyed(&broker.bootstrap, topic, 0, &[(k, Some(changed)), good(4)]);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(worker.wait(MINUTE).code(), Some(1));
    let log = worker.log_text();
    assert!(
        log.contains("record at topic `pg.public.users` partition 0 offset 2: table `users`, column `balance`: records carry BOOLEAN but the column is DECIMAL(10,2)"),
        "{log}"
    );
    assert_eq!(lake.offsets(&lake.open(), topic).get(&0), Some(&2));
}

/// Confluent wire format: magic byte 0, the schema id, the Avro body of `value`.
fn avro_wire(schema: &str, id: u32, value: apache_avro::types::Value) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).unwrap();
    let body = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    let mut out = vec![0];
    out.extend(id.to_be_bytes());
    out.extend(body);
    out
}

fn produce_bytes(bootstrap: &str, topic: &str, records: &[(Vec<u8>, Vec<u8>)]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (k, v) in records {
        producer
            .send(BaseRecord::to(topic).partition(0).key(k).payload(v))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Avro records that cannot be read — an id the registry does not have, a magic byte that is
/// not 0, a truncated body, garbage — stop the connector naming topic, partition, offset and
/// what is wrong; nothing past them is committed. With `errors.tolerance=all` they go to the
/// dead-letter queue and the good records around them land.
#[test]
fn bad_avro_records_stop_at_their_offset_or_go_to_the_dead_letter_queue() {
    use apache_avro::types::Value as Avro;
    const KEY: &str = r#"{"type":"record","name":"Key","namespace":"shop","fields":[{"name":"id","type":"long"}]}"#;
    const VALUE: &str = r#"{"type":"record","name":"Item","namespace":"shop","fields":[{"name":"id","type":"long"},{"name":"name","type":["null","string"],"default":null}]}"#;
    let broker = Broker::start();
    let registry = Registry::start();
    let key_id = registry.register("items-key", KEY);
    let value_id = registry.register("items-value", VALUE);
    let key = |id: i64| {
        avro_wire(
            KEY,
            key_id,
            Avro::Record(vec![("id".into(), Avro::Long(id))]),
        )
    };
    let good = |id: i64| {
        let value = Avro::Record(vec![
            ("id".into(), Avro::Long(id)),
            (
                "name".into(),
                Avro::Union(1, Box::new(Avro::String(format!("item {id}")))),
            ),
        ]);
        (key(id), avro_wire(VALUE, value_id, value))
    };
    let mut truncated = good(9).1;
    truncated.truncate(truncated.len() - 3);
    let mut garbage = vec![0];
    garbage.extend(value_id.to_be_bytes());
    garbage.extend([0xff; 12]);
    let mut wrong_magic = good(9).1;
    wrong_magic[0] = 1;
    let mut unknown = good(9).1;
    unknown[1..5].copy_from_slice(&4242u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "unknown-id",
            unknown,
            "schema id 4242 is not in the schema registry".into(),
        ),
        ("magic", wrong_magic, "magic byte is 1, not 0".into()),
        ("truncated", truncated, "ends early (truncated)".into()),
        ("garbage", garbage, format!("schema id {value_id}")),
    ];
    let avro = "io.confluent.connect.avro.AvroConverter";
    for (tolerance, dlq) in [("none", None), ("all", Some("items-dlq"))] {
        for (name, bad, needle) in &cases {
            let topic = format!("items-{name}-{tolerance}");
            runtime()
                .block_on(create_topic(&broker.bootstrap, &topic, 1))
                .unwrap();
            produce_bytes(
                &broker.bootstrap,
                &topic,
                &[good(1), good(2), (key(9), bad.clone()), good(3)],
            );
            let mut config = vec![
                ("key.converter", avro),
                ("value.converter", avro),
                ("key.converter.schema.registry.url", registry.url.as_str()),
                ("value.converter.schema.registry.url", registry.url.as_str()),
                ("table.name.format", "items"),
                ("errors.tolerance", tolerance),
            ];
            if let Some(dlq) = dlq {
                config.push(("errors.deadletterqueue.topic.name", dlq));
                config.push(("errors.log.enable", "true"));
            }
            let lake = LakeDir::new(&format!("bad-avro-{name}-{tolerance}"), &topic, &config);
            let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
            let status = worker.wait(MINUTE);
            let log = worker.log_text();
            assert!(!log.contains("panicked"), "{name}: {log}");
            assert!(log.contains(needle.as_str()), "{name}: {log}");
            let conn = lake.open();
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM items ORDER BY id")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            if tolerance == "none" {
                assert_eq!(status.code(), Some(1), "{name}: {log}");
                assert!(
                    log.contains(&format!("record at topic `{topic}` partition 0 offset 2: ")),
                    "{name}: {log}"
                );
                assert_eq!(ids, vec![1, 2], "{name}");
                assert_eq!(lake.offsets(&conn, &topic).get(&0), Some(&2), "{name}");
            } else {
                assert!(status.success(), "{name}: {log}");
                assert_eq!(ids, vec![1, 2, 3], "{name}");
                assert_eq!(lake.offsets(&conn, &topic).get(&0), Some(&4), "{name}");
            }
        }
    }
}

/// Several workers of one connector on a PostgreSQL catalog, several single-partition CDC
/// topics (one table each, as Debezium creates them): the group spreads the topics over the
/// workers, each table has one writer, the workers commit side by side (small flushes and
/// bounded upkeep keep the catalog busy), and every table ends equal to its generator's
/// state with every partition's lake offset at its log end: nothing lost, nothing twice.
#[test]
fn several_workers_on_a_postgres_catalog_split_cdc_tables_and_each_ends_equal() {
    const TOPICS: usize = 6;
    const WORKERS: usize = 3;
    let pg = Postgres::start();
    let broker = Broker::start();
    let work = tempfile::tempdir().unwrap();
    let mut expects = Vec::new();
    for i in 0..TOPICS {
        let expect = work.path().join(format!("expect-{i}.jsonl"));
        let opts = CdcOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: format!("cdcw{i}"),
            partitions: 1,
            format: CdcFormat::Json,
            schema_registry: None,
            count: 15_000,
            keys: 2_000,
            seed: 100 + i as u64,
            rate: None,
            expect: Some(expect.clone()),
            evolve: false,
            mix: None,
        };
        let report = runtime().block_on(produce_cdc(&opts)).unwrap();
        expects.push((format!("cdcw{i}"), expect, report.produce.end_offsets()));
    }
    let topics: Vec<&str> = expects.iter().map(|(t, _, _)| t.as_str()).collect();
    let topics = topics.join(",");
    let catalog = pg.catalog();
    let lake = LakeDir::new(
        "workers",
        &topics,
        &[
            ("ducklake.catalog", &catalog),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("key.converter.schemas.enable", "false"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("delete.enabled", "true"),
            ("flush.max.records", "1500"),
            ("ducklake.maintenance.changes", "6000"),
            ("ducklake.maintenance.max.files", "1"),
            ("ducklake.rewrite.delete.threshold", "0.05"),
        ],
    );
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| Worker::start(&lake, &broker, &[]))
        .collect();
    // Until every partition's lake offset is at its log end (a PostgreSQL catalog can be
    // read while the workers write); then they all stop together, with no rebalance tail.
    for worker in &mut workers {
        worker.wait_for_log("partitions claimed", MINUTE);
    }
    let deadline = std::time::Instant::now() + MINUTE * 4;
    loop {
        let conn = lake.open();
        if expects
            .iter()
            .all(|(topic, _, end)| &lake.offsets(&conn, topic) == end)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the workers did not catch up:\n{}",
            workers
                .iter()
                .map(Worker::log_text)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for worker in &workers {
        worker.signal("TERM");
    }
    for (w, worker) in workers.iter_mut().enumerate() {
        let status = worker.wait(MINUTE);
        let log = worker.log_text();
        assert!(status.success(), "worker {w} failed:\n{log}");
        eprintln!(
            "worker {w}: {} flushes, {} maintenance runs, {} lake retries",
            log.matches(" flushed").count(),
            log.matches("maintenance done").count(),
            log.matches("transient lake failure; retrying").count()
        );
        for line in log
            .lines()
            .filter(|l| l.contains("retrying") || l.contains("maintenance failed"))
            .take(4)
        {
            eprintln!(
                "worker {w}:   {}",
                line.chars().take(400).collect::<String>()
            );
        }
    }
    let busy: std::collections::BTreeSet<_> = workers
        .iter()
        .enumerate()
        .filter(|(_, w)| w.log_text().matches(" flushed").count() > 0)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(busy.len(), WORKERS, "not every worker got tables to write");
    let conn = lake.open();
    for (topic, expect, end) in &expects {
        assert_schemaless_table_equals_expected(&lake, topic, expect);
        assert_eq!(
            &lake.offsets(&conn, topic),
            end,
            "{topic}: lake offsets vs log end"
        );
    }
}
