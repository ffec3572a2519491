//! Bad input gets a clear error and loses nothing: malformed records, bad connector files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use ducklake_sink::gen::create_topic;
use support::{count, produce_raw, runtime, Broker, LakeDir, Worker, SINK};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_malformed_record_stops_the_worker_at_its_offset_and_keeps_what_came_before() {
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "events", 1))
        .unwrap();
    produce_raw(
        &broker.bootstrap,
        "events",
        &[
            Some(r#"{"id":1}"#),
            Some(r#"{"id":2}"#),
            None,
            Some("{not json"),
            Some(r#"{"id":5}"#),
        ],
    );
    let lake = LakeDir::new("bad-record", "events", &[("flush.interval.ms", "60000")]);
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("record at topic `events` partition 0 offset 3: value is not valid JSON"),
        "{log}"
    );

    // The two rows and the tombstone before the bad record are committed; the offset stops at it.
    let conn = lake.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 2);
    assert_eq!(lake.offsets(&conn, "events").get(&0), Some(&3));
    drop(conn);

    // Restarting does not skip it: the worker stops at the same record again.
    let mut again = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(again.wait(MINUTE).code(), Some(1));
    assert!(again.log_text().contains("partition 0 offset 3"));
    assert_eq!(count(&lake.open(), "SELECT count(*) FROM events"), 2);
}

#[test]
fn schemaless_json_adds_a_column_for_a_new_field() {
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "people", 1))
        .unwrap();
    produce_raw(
        &broker.bootstrap,
        "people",
        &[Some(r#"{"id":1,"name":"ann"}"#)],
    );
    let lake = LakeDir::new("evolve", "people", &[]);
    let mut first = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(first.wait(MINUTE).success(), "{}", first.log_text());

    produce_raw(
        &broker.bootstrap,
        "people",
        &[Some(r#"{"id":2,"name":"bob","age":41,"score":1.5}"#)],
    );
    let mut second = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(second.wait(MINUTE).success(), "{}", second.log_text());

    let conn = lake.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM people"), 2);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM people WHERE age IS NULL AND id = 1"
        ),
        1
    );
    assert_eq!(count(&conn, "SELECT age FROM people WHERE id = 2"), 41);
}

#[test]
fn an_incompatible_type_change_stops_with_table_column_and_types() {
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "things", 1))
        .unwrap();
    produce_raw(
        &broker.bootstrap,
        "things",
        &[Some(r#"{"id":1,"size":10}"#)],
    );
    let lake = LakeDir::new("typechange", "things", &[]);
    let mut first = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(first.wait(MINUTE).success(), "{}", first.log_text());

    produce_raw(
        &broker.bootstrap,
        "things",
        &[Some(r#"{"id":2,"size":"large"}"#)],
    );
    let mut second = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(second.wait(MINUTE).code(), Some(1));
    let log = second.log_text();
    assert!(
        log.contains(
            "table `things`, column `size`: records carry VARCHAR but the column is BIGINT"
        ),
        "{log}"
    );
    let conn = lake.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM things"), 1);
    assert_eq!(lake.offsets(&conn, "things").get(&0), Some(&1));
}

fn validate(body: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, body).unwrap();
    let out = Command::new(SINK)
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "FILE");
    (out.status.success(), text)
}

#[test]
fn validate_names_the_file_and_key_and_exits_1() {
    let base = r#""connector.class":"DuckLakeSink","topics":"t","ducklake.catalog":"x""#;
    let cases = [
        (
            format!(r#"{{"name":"a","config":{{{base},"flush.max.recods":"5"}}}}"#),
            "FILE: key `flush.max.recods`: unknown key; did you mean `flush.max.records`?",
        ),
        (
            format!(r#"{{"name":"a","config":{{{base},"flush.interval.ms":"later"}}}}"#),
            "FILE: key `flush.interval.ms`: expected a positive integer, got `later`",
        ),
        (
            r#"{"name":"a","config":{"connector.class":"DuckLakeSink","topics":"t"}}"#.to_owned(),
            "FILE: missing required key `ducklake.catalog`",
        ),
        (
            format!(r#"{{"name":"a","config":{{{base},"topics.regex":"t.*"}}}}"#),
            "FILE: key `topics.regex`: conflicts with `topics`",
        ),
        ("{\"name\":".to_owned(), "FILE: not valid JSON"),
    ];
    for (body, expected) in cases {
        let (ok, text) = validate(&body);
        assert!(!ok, "accepted: {body}");
        assert!(
            text.contains(expected),
            "for {body}\nexpected: {expected}\ngot: {text}"
        );
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(SINK)
        .arg("validate")
        .arg(format!("{root}/connector-config/orders.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_broker_fails_loudly_after_the_retry_timeout() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let lake = LakeDir::new("no-broker", "events", &[("errors.retry.timeout", "3000")]);
    let started = std::time::Instant::now();
    let out = Command::new(SINK)
        .args([
            "run",
            "--http-addr",
            "off",
            "--bootstrap-servers",
            &format!("127.0.0.1:{port}"),
        ])
        .arg(&lake.connector)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no Kafka broker reachable for"), "{stderr}");
    assert!(started.elapsed() < MINUTE, "took {:?}", started.elapsed());
}

#[test]
fn an_unreachable_catalog_fails_loudly_after_the_retry_timeout() {
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "events", 1))
        .unwrap();
    produce_raw(&broker.bootstrap, "events", &[Some(r#"{"id":1}"#)]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let catalog = format!("postgres:dbname=lake host=127.0.0.1 port={port} user=postgres");
    let lake = LakeDir::new(
        "no-catalog",
        "events",
        &[
            ("ducklake.catalog", &catalog),
            ("errors.retry.timeout", "5000"),
        ],
    );
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert_eq!(worker.wait(MINUTE).code(), Some(1));
    let log = worker.log_text();
    assert!(log.contains("transient lake failure; retrying"), "{log}");
    assert!(log.contains("cannot attach DuckLake catalog"), "{log}");
    assert!(log.contains(&format!("port={port}")), "{log}");
}

/// Every row of the README's type table, end to end through the appender.
#[test]
fn every_mapped_connect_type_lands_in_its_column() {
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "typed", 1))
        .unwrap();
    let schema = r#"{"type":"struct","fields":[
        {"field":"i8","type":"int8"},{"field":"i16","type":"int16"},{"field":"i32","type":"int32"},{"field":"i64","type":"int64"},
        {"field":"f32","type":"float"},{"field":"f64","type":"double"},{"field":"ok","type":"boolean"},{"field":"s","type":"string"},
        {"field":"raw","type":"bytes"},
        {"field":"amount","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"3","connect.decimal.precision":"12"}},
        {"field":"day","type":"int32","name":"io.debezium.time.Date"},
        {"field":"at","type":"int64","name":"io.debezium.time.MicroTime"},
        {"field":"ts","type":"int64","name":"org.apache.kafka.connect.data.Timestamp"},
        {"field":"zts","type":"string","name":"io.debezium.time.ZonedTimestamp"},
        {"field":"doc","type":"string","name":"io.debezium.data.Json"},
        {"field":"id","type":"string","name":"io.debezium.data.Uuid"},
        {"field":"tags","type":"array","items":{"type":"string"}},
        {"field":"ints","type":"array","items":{"type":"int32","optional":true}},
        {"field":"addr","type":"struct","fields":[{"field":"city","type":"string"},{"field":"zip","type":"int32","optional":true}]},
        {"field":"attrs","type":"map","keys":{"type":"string"},"values":{"type":"int64"}},
        {"field":"zt","type":"string","name":"io.debezium.time.ZonedTime"},
        {"field":"dur","type":"int64","name":"io.debezium.time.MicroDuration"},
        {"field":"nts","type":"int64","name":"io.debezium.time.NanoTimestamp"},
        {"field":"vsd","type":"struct","name":"io.debezium.data.VariableScaleDecimal","fields":[{"field":"scale","type":"int32"},{"field":"value","type":"bytes"}]},
        {"field":"geo","type":"struct","name":"io.debezium.data.geometry.Point","fields":[{"field":"x","type":"double"},{"field":"y","type":"double"},{"field":"wkb","type":"bytes","optional":true},{"field":"srid","type":"int32","optional":true}]},
        {"field":"missing","type":"string","optional":true}]}"#;
    let payload = r#"{"i8":-8,"i16":1600,"i32":-320000,"i64":6400000000,"f32":1.5,"f64":-2.25,"ok":true,"s":"héllo",
        "raw":"AAEC","amount":"AeJA","day":19000,"at":3723000004,"ts":1700000000123,"zts":"2024-03-01T10:00:00Z",
        "doc":"{\"a\":[1,2]}","id":"123e4567-e89b-12d3-a456-426614174000","tags":["x","y"],
        "ints":[1,null,3],"addr":{"city":"Oslo","zip":150},"attrs":{"a":1},"zt":"10:15:30.5Z","dur":3723000000,
        "nts":1700000000123456789,"vsd":{"scale":3,"value":"MDk="},"geo":{"x":1.0,"y":2.0,"wkb":"AQE=","srid":null},"missing":null}"#;
    let message = format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
    produce_raw(&broker.bootstrap, "typed", &[Some(message.as_str())]);
    let lake = LakeDir::new(
        "types",
        "typed",
        &[("value.converter.schemas.enable", "true")],
    );
    let mut worker = Worker::start(&lake, &broker, &["--until-caught-up"]);
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());

    let conn = lake.open();
    let got: Vec<(String, String, String)> = {
        let mut stmt = conn
            .prepare(
                "UNPIVOT (SELECT * REPLACE (CAST(zts AT TIME ZONE 'UTC' AS VARCHAR) AS zts) FROM typed)
                 ON COLUMNS(*)::VARCHAR INTO NAME col VALUE v",
            )
            .unwrap();
        let values: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut stmt = conn
            .prepare("SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'lake' AND table_name = 'typed'")
            .unwrap();
        let types: std::collections::BTreeMap<String, String> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        values
            .into_iter()
            .map(|(c, v)| (c.clone(), types[&c].clone(), v))
            .collect()
    };
    let expect = [
        ("i8", "TINYINT", "-8"),
        ("i16", "SMALLINT", "1600"),
        ("i32", "INTEGER", "-320000"),
        ("i64", "BIGINT", "6400000000"),
        ("f32", "FLOAT", "1.5"),
        ("f64", "DOUBLE", "-2.25"),
        ("ok", "BOOLEAN", "true"),
        ("s", "VARCHAR", "héllo"),
        ("raw", "BLOB", "\\x00\\x01\\x02"),
        ("amount", "DECIMAL(12,3)", "123.456"),
        ("day", "DATE", "2022-01-08"),
        ("at", "TIME", "01:02:03.000004"),
        ("ts", "TIMESTAMP", "2023-11-14 22:13:20.123"),
        ("zts", "TIMESTAMP WITH TIME ZONE", "2024-03-01 10:00:00"),
        ("doc", "JSON", "{\"a\":[1,2]}"),
        ("id", "UUID", "123e4567-e89b-12d3-a456-426614174000"),
        ("tags", "VARCHAR[]", "[x, y]"),
        ("ints", "INTEGER[]", "[1, NULL, 3]"),
        (
            "addr",
            "STRUCT(city VARCHAR, zip INTEGER)",
            "{'city': Oslo, 'zip': 150}",
        ),
        ("attrs", "MAP(VARCHAR, BIGINT)", "{a=1}"),
        ("zt", "TIME WITH TIME ZONE", "10:15:30.5+00"),
        ("dur", "BIGINT", "3723000000"),
        ("nts", "TIMESTAMP", "2023-11-14 22:13:20.123456"),
        ("vsd", "VARCHAR", "12.345"),
        ("geo", "BLOB", "\\x01\\x01"),
    ];
    for (col, ty, value) in expect {
        let row = got
            .iter()
            .find(|(c, _, _)| c == col)
            .unwrap_or_else(|| panic!("no column {col}: {got:?}"));
        assert_eq!(
            (row.1.as_str(), row.2.as_str()),
            (ty, value),
            "column {col}"
        );
    }
    // A null in an optional field: the column exists with its type, the value is NULL.
    assert_eq!(
        count(&conn, "SELECT count(*) FROM typed WHERE missing IS NULL"),
        1
    );
}
