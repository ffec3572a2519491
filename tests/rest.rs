//! The worker's Kafka Connect REST API, against a real tansu broker, real DuckLake and (for
//! reading the lake while the worker runs, and for outages) a real PostgreSQL catalog:
//! every route's status and shape, secrets never shown, pause/resume under load with every
//! record exactly once, a FAILED connector restarted in-process after its cause is removed,
//! and how the worker exits with a FAILED connector.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ducklake_sink::gen::{create_topic, produce_orders, OrdersOptions, ProduceReport};
use serde_json::{json, Value};
use support::{
    count, http, http_with_body, lake_count, produce_raw, runtime, sample, wait_for_rows, Broker,
    LakeDir, Postgres, Worker,
};

const MINUTE: Duration = Duration::from_secs(60);

/// Produces `count` orders at `rate`/s on a background thread.
fn producer(broker: &Broker, topic: &str, count: u64, rate: f64) -> JoinHandle<ProduceReport> {
    support::produce_orders_in_background(broker, topic, count, rate, 5)
}

fn topic(broker: &Broker, name: &str, partitions: i32) {
    runtime()
        .block_on(create_topic(&broker.bootstrap, name, partitions))
        .unwrap();
}

/// Sum of the partitions' log end offsets, as the broker reports them (tansu's is a batch
/// behind at most: enough to see that production goes on).
fn log_end(broker: &Broker, topic: &str, partitions: i32) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `GET` expecting 200 and JSON.
fn get_json(addr: &str, path: &str) -> Value {
    let (status, _, body) = http(addr, "GET", path);
    assert_eq!(status, 200, "GET {path}: {body}");
    json_of(&body)
}

fn state(addr: &str, name: &str) -> String {
    let s = get_json(addr, &format!("/connectors/{name}/status"));
    s["connector"]["state"].as_str().unwrap().to_owned()
}

/// Waits until the connector's state is `want`; returns its status.
fn wait_for_state(addr: &str, name: &str, want: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let s = get_json(addr, &format!("/connectors/{name}/status"));
        if s["connector"]["state"] == want {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not {want} within {timeout:?}: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Claim epoch of every partition, from the status.
fn epochs(status: &Value) -> Vec<(i64, i64)> {
    status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["epoch"].as_i64().unwrap(),
            )
        })
        .collect()
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
    assert_eq!(
        lake.offsets(&conn, "orders"),
        report.end_offsets(),
        "lake offsets vs log end"
    );
}

fn assert_connect_error(status: u16, body: &str, want: u16) -> Value {
    assert_eq!(status, want, "{body}");
    let e = json_of(body);
    assert_eq!(e["error_code"], want, "{body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    e
}

#[test]
fn every_route_answers_in_connect_shapes_and_never_shows_a_secret() {
    let broker = Broker::start();
    topic(&broker, "orders", 2);
    // A secret librdkafka accepts and ignores on a plaintext connection.
    let secrets = ["PLANTED-sasl-0451"];
    let lake = LakeDir::new(
        "rest-routes",
        "orders",
        &[("consumer.override.sasl.password", secrets[0])],
    );
    let report = runtime()
        .block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: "orders".into(),
            count: 500,
            rate: None,
            seed: 1,
            partitions: None,
            start_id: 1,
            customers: 50,
            with_schema: false,
            schema_registry: None,
        }))
        .unwrap();
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    let name = "rest-routes";
    let status = wait_for_state(&addr, name, "RUNNING", MINUTE);
    let mut bodies = Vec::new();
    let mut call = |method: &str, path: &str| {
        let (status, head, body) = http(&addr, method, path);
        bodies.push(format!("{method} {path}: {head}\n{body}"));
        (status, head, body)
    };

    let (s, _, body) = call("GET", "/");
    assert_eq!(s, 200);
    let root = json_of(&body);
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(root["commit"].is_string(), "{root}");
    assert!(root.get("kafka_cluster_id").is_some(), "{root}");

    let (s, _, body) = call("GET", "/connectors");
    assert_eq!((s, json_of(&body)), (200, json!([name])));
    // With a trailing slash too, as Debezium's tutorial calls it.
    let (s, _, body) = call("GET", "/connectors/");
    assert_eq!((s, json_of(&body)), (200, json!([name])));
    let (s, _, body) = call("GET", &format!("/connectors/{name}/status/"));
    assert_eq!((s, json_of(&body)["name"].clone()), (200, json!(name)));
    let (_, _, body) = call("GET", "/connectors/?expand=status");
    assert_eq!(
        json_of(&body)[name]["status"]["connector"]["state"],
        "RUNNING"
    );
    let (_, _, body) = call("GET", "/connectors?expand=status");
    let expanded = json_of(&body);
    assert_eq!(expanded[name]["status"]["name"], name);
    assert_eq!(expanded[name]["status"]["connector"]["state"], "RUNNING");
    assert!(expanded[name].get("info").is_none(), "{expanded}");
    let (_, _, body) = call("GET", "/connectors?expand=info");
    let expanded = json_of(&body);
    assert_eq!(expanded[name]["info"]["type"], "sink");
    assert!(expanded[name].get("status").is_none(), "{expanded}");
    let (_, _, body) = call("GET", "/connectors?expand=status&expand=info");
    let both = json_of(&body);
    assert!(both[name]["status"].is_object() && both[name]["info"].is_object());

    let (s, _, body) = call("GET", &format!("/connectors/{name}"));
    assert_eq!(s, 200);
    let info = json_of(&body);
    assert_eq!(info["name"], name);
    assert_eq!(info["type"], "sink");
    assert_eq!(info["tasks"], json!([{"connector": name, "task": 0}]));
    assert_eq!(info["config"]["topics"], "orders");
    assert_eq!(info["config"]["connector.class"], "DuckLakeSink");
    assert_eq!(
        info["config"]["consumer.override.sasl.password"],
        "[hidden]"
    );

    assert_eq!(status["name"], name);
    assert_eq!(status["type"], "sink");
    assert_eq!(status["connector"]["worker_id"], addr.as_str());
    assert_eq!(status["tasks"][0]["id"], 0);
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    assert!(status["partitions"].is_array() && status.get("last_snapshot_id").is_some());

    let (s, _, body) = call("GET", &format!("/connectors/{name}/config"));
    assert_eq!(s, 200);
    let config = json_of(&body);
    assert_eq!(config, info["config"]);
    assert_eq!(config["name"], name);

    let (s, _, body) = call("GET", &format!("/connectors/{name}/tasks"));
    assert_eq!(s, 200);
    let tasks = json_of(&body);
    assert_eq!(tasks[0]["id"], json!({"connector": name, "task": 0}));
    assert_eq!(tasks[0]["config"], config);
    let (s, _, body) = call("GET", &format!("/connectors/{name}/tasks/0/status"));
    assert_eq!(s, 200);
    let task = json_of(&body);
    assert_eq!(
        (task["id"].clone(), task["state"].clone()),
        (json!(0), json!("RUNNING"))
    );
    assert_eq!(task["worker_id"], addr.as_str());
    let (s, _, body) = call("GET", &format!("/connectors/{name}/tasks/1/status"));
    assert_connect_error(s, &body, 404);

    let (s, _, body) = call("GET", &format!("/connectors/{name}/topics"));
    assert_eq!(
        (s, json_of(&body)),
        (200, json!({name: {"topics": ["orders"]}}))
    );
    let (s, _, body) = call("GET", "/connector-plugins");
    assert_eq!(s, 200);
    let plugins = json_of(&body);
    assert_eq!(plugins[0]["class"], "DuckLakeSink");
    assert_eq!(plugins[0]["type"], "sink");

    let (s, _, body) = call("GET", "/health");
    assert_eq!((s, json_of(&body)), (200, json!({"status": "ok"})));
    let (s, head, body) = call("GET", "/metrics");
    assert_eq!(s, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(body.contains("ducklake_sink_connector_running{"), "{body}");

    // Unknown connectors, paths, tasks; wrong verbs; what is configured from files.
    for (method, path) in [
        ("GET", "/connectors/nope"),
        ("GET", "/connectors/nope/status"),
        ("GET", "/connectors/nope/config"),
        ("PUT", "/connectors/nope/pause"),
        ("POST", "/connectors/nope/restart"),
    ] {
        let (s, _, body) = call(method, path);
        let e = assert_connect_error(s, &body, 404);
        assert_eq!(e["message"], "Connector nope not found", "{method} {path}");
    }
    for path in ["/nothing/here", "/connectors/rest-routes/nothing"] {
        let (s, _, body) = call("GET", path);
        assert_connect_error(s, &body, 404);
    }
    for (method, path, allow) in [
        ("DELETE", "/health", "GET"),
        ("POST", "/metrics", "GET"),
        ("GET", "/connectors/rest-routes/pause", "PUT"),
        ("GET", "/connectors/rest-routes/restart", "POST"),
    ] {
        let (s, head, body) = call(method, path);
        assert_connect_error(s, &body, 405);
        let allowed = head
            .lines()
            .find_map(|l| l.strip_prefix("allow:"))
            .unwrap_or_else(|| panic!("no Allow header on {method} {path}: {head}"));
        assert!(allowed.contains(allow), "{method} {path}: allow {allowed}");
    }
    for (method, path) in [
        ("POST", "/connectors"),
        ("PUT", "/connectors/rest-routes/config"),
        ("DELETE", "/connectors/rest-routes"),
    ] {
        let (s, _, body) = call(method, path);
        let e = assert_connect_error(s, &body, 405);
        assert!(
            e["message"].as_str().unwrap().contains("ducklake-sink run"),
            "{method} {path}: {body}"
        );
    }

    // Validation before deploying (Connect's plugin routes): the connector file's checks.
    let (s, _, body) = call("GET", "/connector-plugins/DuckLakeSink/config");
    assert_eq!(s, 200, "{body}");
    let keys = json_of(&body);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "ducklake.catalog" && k["required"] == true),
        "{keys}"
    );
    let validate = |config: Value| {
        let (s, _, body) = http_with_body(
            &addr,
            "PUT",
            "/connector-plugins/DuckLakeSink/config/validate",
            &config.to_string(),
        );
        (s, body)
    };
    let good = json!({"connector.class": "DuckLakeSink", "topics": "orders",
        "ducklake.catalog": "x.ducklake", "consumer.override.sasl.password": secrets[0]});
    let (s, body) = validate(good.clone());
    assert_eq!(s, 200, "{body}");
    let infos = json_of(&body);
    assert_eq!(
        (infos["name"].as_str(), infos["error_count"].as_i64()),
        (Some("DuckLakeSink"), Some(0)),
        "{infos}"
    );
    let value_of = |infos: &Value, key: &str| {
        infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .unwrap_or_else(|| panic!("no {key} in {infos}"))["value"]
            .clone()
    };
    assert_eq!(value_of(&infos, "topics")["value"], "orders");
    assert!(
        !body.contains(secrets[0]),
        "validate shows a secret: {body}"
    );
    let mut bad = good.clone();
    bad["flush.max.records"] = json!("lots");
    let (s, body) = validate(bad);
    assert_eq!(s, 200, "{body}");
    let infos = json_of(&body);
    assert_eq!(infos["error_count"], 1, "{infos}");
    let errors = &value_of(&infos, "flush.max.records")["errors"];
    assert!(
        errors[0].as_str().unwrap().contains("lots")
            || errors[0].as_str().unwrap().contains("integer"),
        "{infos}"
    );
    assert_eq!(value_of(&infos, "topics")["errors"], json!([]));
    let mut typo = good.clone();
    typo["ducklake.catalg"] = json!("y");
    let infos = json_of(&validate(typo).1);
    let errors = &value_of(&infos, "ducklake.catalg")["errors"];
    assert!(
        errors[0].as_str().unwrap().contains("ducklake.catalog"),
        "did-you-mean: {infos}"
    );
    let mut other = good;
    other["connector.class"] = json!("io.confluent.connect.jdbc.JdbcSinkConnector");
    let (s, body) = validate(other);
    assert_connect_error(s, &body, 400);
    let (s, body) = validate(json!([1]));
    assert_connect_error(s, &body, 400);
    let (s, _, body) = call("GET", "/connector-plugins/JdbcSinkConnector/config");
    assert_connect_error(s, &body, 404);

    let everything = bodies.join("\n");
    for secret in secrets {
        assert!(
            !everything.contains(secret),
            "{secret} shown over REST:\n{everything}"
        );
    }
    assert_eq!(state(&addr, name), "RUNNING", "the calls changed nothing");
    // Everything produced is committed before the worker is stopped (SIGTERM commits what was
    // consumed, which need not be all of it yet).
    wait_for_offsets(&addr, name, report.sent as i64);
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let conn = lake.open();
    assert_eq!(
        count(&conn, "SELECT count(*) FROM orders"),
        report.sent as i64
    );
}

#[test]
fn pausing_for_10_s_under_load_writes_nothing_keeps_the_group_and_loses_nothing() {
    // Also: a restart while paused stays paused; a restart while running loses nothing.
    let _serial = support::serial();
    let pg = Postgres::start();
    let broker = Broker::start();
    topic(&broker, "orders", 4);
    let catalog = pg.catalog();
    let lake = LakeDir::new(
        "rest-pause",
        "orders",
        &[
            ("ducklake.catalog", catalog.as_str()),
            ("flush.interval.ms", "300"),
        ],
    );
    let name = "rest-pause";
    // About 50 s of production: before, during and after the pause and the restarts.
    let produced = producer(&broker, "orders", 100_000, 2_000.0);
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    worker.wait_for_log("flushed", MINUTE);
    std::thread::sleep(Duration::from_secs(3));

    let (s, _, body) = http(&addr, "PUT", &format!("/connectors/{name}/pause"));
    assert_eq!(s, 202, "{body}");
    let paused = wait_for_state(&addr, name, "PAUSED", MINUTE);
    assert_eq!(paused["tasks"][0]["state"], "PAUSED");
    let before = epochs(&paused);
    assert_eq!(before.len(), 4, "{paused}");
    // Pausing again changes nothing.
    assert_eq!(
        http(&addr, "PUT", &format!("/connectors/{name}/pause")).0,
        202
    );
    let rows = lake_count(&lake, "orders");
    let claims = worker.log_text().matches("partitions claimed").count();
    let high_before = log_end(&broker, "orders", 4);
    std::thread::sleep(Duration::from_secs(10));
    let still = get_json(&addr, &format!("/connectors/{name}/status"));
    assert_eq!(still["connector"]["state"], "PAUSED");
    // Paused is its own state in the metrics, so the "connector down" alert can leave it be.
    let (_, _, page) = http(&addr, "GET", "/metrics");
    for (gauge, want) in [("running", 0.0), ("paused", 1.0)] {
        let series = format!("ducklake_sink_connector_{gauge}{{connector=\"{name}\"}}");
        assert_eq!(
            support::sample(&page, &series),
            Some(want),
            "{series}\n{page}"
        );
    }
    assert_eq!(
        lake_count(&lake, "orders"),
        rows,
        "rows written while paused"
    );
    assert_eq!(
        epochs(&still),
        before,
        "claims changed while paused: a rebalance"
    );
    assert_eq!(
        worker.log_text().matches("partitions claimed").count(),
        claims,
        "partitions were assigned again while paused"
    );
    let high_after = log_end(&broker, "orders", 4);
    assert!(
        high_after > high_before + 5_000,
        "the producer went on during the pause ({high_before} → {high_after})"
    );
    let lagging = get_json(&addr, "/health");
    assert_eq!(lagging["status"], "ok", "paused is not failed");

    // A restart keeps the pause (Connect's target state): the connector comes back PAUSED,
    // having written nothing.
    let (s, _, body) = http(&addr, "POST", &format!("/connectors/{name}/restart"));
    assert_eq!((s, body.as_str()), (204, ""));
    let again = wait_for_state(&addr, name, "PAUSED", MINUTE);
    let deadline = Instant::now() + MINUTE;
    while worker.log_text().matches("partitions claimed").count() == claims {
        assert!(
            Instant::now() < deadline,
            "not claimed again after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lake_count(&lake, "orders"),
        rows,
        "rows written while paused"
    );
    assert_eq!(state(&addr, name), "PAUSED", "{again}");

    let (s, _, body) = http(&addr, "PUT", &format!("/connectors/{name}/resume"));
    assert_eq!(s, 202, "{body}");
    wait_for_state(&addr, name, "RUNNING", MINUTE);
    // And a restart of a running connector under load: flushed, committed, started again.
    std::thread::sleep(Duration::from_secs(2));
    let (s, _, _) = http(&addr, "POST", &format!("/connectors/{name}/restart"));
    assert_eq!(s, 204);
    wait_for_state(&addr, name, "RUNNING", MINUTE);
    let report = produced.join().unwrap();
    wait_for_rows(&lake, "orders", report.sent as i64, MINUTE * 2);
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    let log = worker.log_text();
    assert!(log.contains("resuming from the lake offsets"), "{log}");
    assert!(!log.contains("seek on resume failed"), "{log}");
    assert!(
        rows > 0 && rows < report.sent as i64,
        "{rows} rows at the pause"
    );
    assert_exactly_once(&lake, &report);
}

/// `GET …/offsets` as (partition → next offset), checking Connect's shape for a sink.
fn offsets_of(addr: &str, name: &str) -> std::collections::BTreeMap<i64, i64> {
    let body = get_json(addr, &format!("/connectors/{name}/offsets"));
    body["offsets"]
        .as_array()
        .unwrap_or_else(|| panic!("no offsets list: {body}"))
        .iter()
        .map(|o| {
            assert_eq!(o["partition"]["kafka_topic"], "orders", "{body}");
            (
                o["partition"]["kafka_partition"].as_i64().unwrap(),
                o["offset"]["kafka_offset"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Waits until the connector's committed offsets add up to `total`; returns them.
fn wait_for_offsets(addr: &str, name: &str, total: i64) -> std::collections::BTreeMap<i64, i64> {
    let deadline = Instant::now() + MINUTE;
    loop {
        let offsets = offsets_of(addr, name);
        if offsets.values().sum::<i64>() == total {
            return offsets;
        }
        assert!(
            Instant::now() < deadline,
            "offsets {offsets:?} do not reach {total}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn stop_then_alter_or_reset_offsets_replays_from_there_after_resume() {
    // KIP-875 on a DuckDB-file catalog: offsets are read through the running connector's own
    // lake thread (a second handle on the file would be refused), and from a handle of their
    // own once the connector is STOPPED and has let the file go.
    let broker = Broker::start();
    topic(&broker, "orders", 2);
    let lake = LakeDir::new("rest-offsets", "orders", &[("flush.interval.ms", "200")]);
    let name = "rest-offsets";
    let sent = runtime()
        .block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: "orders".into(),
            count: 2_000,
            rate: None,
            seed: 7,
            partitions: None,
            start_id: 1,
            customers: 50,
            with_schema: false,
            schema_registry: None,
        }))
        .unwrap()
        .sent as i64;
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    let first = wait_for_offsets(&addr, name, sent);
    assert_eq!(
        first.keys().copied().collect::<Vec<_>>(),
        [0, 1],
        "{first:?}"
    );
    let body = |p: &str| {
        format!(
            r#"{{"offsets":[{{"partition":{{"kafka_topic":"orders","kafka_partition":{p}}},"offset":{{"kafka_offset":0}}}}]}}"#
        )
    };
    let path = format!("/connectors/{name}/offsets");

    // Offsets are changed only while STOPPED.
    let (s, _, text) = http_with_body(&addr, "PATCH", &path, &body("0"));
    let e = assert_connect_error(s, &text, 400);
    assert!(e["message"].as_str().unwrap().contains("STOPPED"), "{e}");
    let (s, _, text) = http(&addr, "DELETE", &path);
    assert_connect_error(s, &text, 400);

    let (s, _, text) = http(&addr, "PUT", &format!("/connectors/{name}/stop"));
    assert_eq!(s, 202, "{text}");
    let stopped = wait_for_state(&addr, name, "STOPPED", MINUTE);
    assert_eq!(stopped["tasks"], json!([]), "{stopped}");
    let (_, _, page) = http(&addr, "GET", "/metrics");
    for (gauge, want) in [("running", 0.0), ("paused", 0.0), ("stopped", 1.0)] {
        let series = format!("ducklake_sink_connector_{gauge}{{connector=\"{name}\"}}");
        assert_eq!(sample(&page, &series), Some(want), "{series}\n{page}");
    }
    assert_eq!(
        get_json(&addr, "/health")["status"],
        "ok",
        "stopped is not failed"
    );
    // A restart leaves a stopped connector stopped (its target state).
    assert_eq!(
        http(&addr, "POST", &format!("/connectors/{name}/restart")).0,
        204
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(&addr, name), "STOPPED");
    assert_eq!(
        offsets_of(&addr, name),
        first,
        "read from the lake while stopped"
    );

    for bad in [
        "{".to_owned(),
        r#"{"offsets":[]}"#.to_owned(),
        r#"{"offsets":[{"offset":{"kafka_offset":1}}]}"#.to_owned(),
        body("-1"),
        body("0").replace(r#""kafka_offset":0"#, r#""kafka_offset":-5"#),
        body("0").replace(r#"{"kafka_offset":0}"#, "7"),
    ] {
        let (s, _, text) = http_with_body(&addr, "PATCH", &path, &bad);
        assert_connect_error(s, &text, 400);
    }
    assert_eq!(
        offsets_of(&addr, name),
        first,
        "a refused request changed offsets"
    );

    // Replay partition 0 from its start.
    let (s, _, text) = http_with_body(&addr, "PATCH", &path, &body("0"));
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        json_of(&text)["message"],
        "The offsets for this connector have been altered successfully"
    );
    let altered = offsets_of(&addr, name);
    assert_eq!((altered[&0], altered[&1]), (0, first[&1]), "{altered:?}");
    assert_eq!(
        http(&addr, "PUT", &format!("/connectors/{name}/resume")).0,
        202
    );
    wait_for_state(&addr, name, "RUNNING", MINUTE);
    assert_eq!(wait_for_offsets(&addr, name, sent), first);

    // Forget every offset: the next run reads from auto.offset.reset (earliest).
    assert_eq!(
        http(&addr, "PUT", &format!("/connectors/{name}/stop")).0,
        202
    );
    wait_for_state(&addr, name, "STOPPED", MINUTE);
    let (s, _, text) = http(&addr, "DELETE", &path);
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        json_of(&text)["message"],
        "The offsets for this connector have been reset successfully"
    );
    assert_eq!(get_json(&addr, &path), json!({"offsets": []}));
    assert_eq!(
        http(&addr, "PUT", &format!("/connectors/{name}/resume")).0,
        202
    );
    assert_eq!(wait_for_offsets(&addr, name, sent), first);

    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    // Everything once, partition 0 once more, everything once more: appends are replayed.
    assert_eq!(lake_count(&lake, "orders"), sent + first[&0] + sent);
}

#[test]
fn a_failed_connector_is_restarted_in_process_and_reads_on_from_the_lake_offsets() {
    let _serial = support::serial();
    let pg = Postgres::start();
    let broker = Broker::start();
    topic(&broker, "orders", 4);
    topic(&broker, "events", 1);
    let catalog = pg.catalog();
    let lake = LakeDir::new(
        "rest-failing",
        "orders",
        &[
            ("ducklake.catalog", catalog.as_str()),
            ("flush.interval.ms", "300"),
            ("errors.retry.timeout", "3000"),
        ],
    );
    // A second connector in the same worker, on its own DuckDB-file lake: it keeps running.
    let other = LakeDir::new("rest-steady", "events", &[("flush.interval.ms", "300")]);
    let produced = producer(&broker, "orders", 50_000, 2_000.0);
    let events = |from: usize, n: usize| {
        let values: Vec<String> = (from..from + n)
            .map(|i| format!(r#"{{"n":{i}}}"#))
            .collect();
        let refs: Vec<Option<&str>> = values.iter().map(|v| Some(v.as_str())).collect();
        produce_raw(&broker.bootstrap, "events", &refs);
    };
    events(0, 100);
    let mut worker = Worker::start(&lake, &broker, &[other.connector.to_str().unwrap()]);
    let addr = worker.http_addr();
    worker.wait_for_log("flushed", MINUTE);
    wait_for_state(&addr, "rest-steady", "RUNNING", MINUTE);
    std::thread::sleep(Duration::from_secs(2));

    pg.stop_server();
    let failed = wait_for_state(&addr, "rest-failing", "FAILED", MINUTE * 2);
    assert!(
        failed["tasks"][0]["trace"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{failed}"
    );
    let (s, _, body) = http(&addr, "GET", "/health");
    assert_eq!(s, 503, "{body}");
    assert_eq!(json_of(&body)["failed"], json!(["rest-failing"]));
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker exited"
    );
    // The other connector goes on meanwhile.
    events(100, 100);
    let written = |page: &str| {
        sample(
            page,
            r#"ducklake_sink_rows_written_total{connector="rest-steady",table="events"}"#,
        )
    };
    let wait_written = |n: f64| {
        let deadline = Instant::now() + MINUTE;
        while written(&http(&addr, "GET", "/metrics").2) != Some(n) {
            assert!(
                Instant::now() < deadline,
                "the other connector stalled before {n}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_written(200.0);
    assert_eq!(state(&addr, "rest-steady"), "RUNNING");
    // Still FAILED while the cause is there: it does not restart by itself.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&addr, "rest-failing"), "FAILED");
    // onlyFailed on the healthy one does nothing.
    let (s, _, body) = http(
        &addr,
        "POST",
        "/connectors/rest-steady/restart?onlyFailed=true",
    );
    assert_eq!(s, 202, "{body}");
    assert_eq!(json_of(&body)["connector"]["state"], "RUNNING");

    pg.start_server();
    let (s, _, body) = http(&addr, "POST", "/connectors/rest-failing/restart");
    assert_eq!((s, body.as_str()), (204, ""));
    let running = wait_for_state(&addr, "rest-failing", "RUNNING", MINUTE * 2);
    assert!(running["tasks"][0].get("trace").is_none(), "{running}");
    assert_eq!(http(&addr, "GET", "/health").0, 200);
    let report = produced.join().unwrap();
    wait_for_rows(&lake, "orders", report.sent as i64, MINUTE * 3);
    events(200, 100);
    wait_written(300.0);
    worker.signal("TERM");
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert!(status.success(), "{log}");
    assert!(log.contains("restarting the connector"), "{log}");
    assert_exactly_once(&lake, &report);
    let conn = other.open();
    assert_eq!(count(&conn, "SELECT count(*) FROM events"), 300);
    assert_eq!(count(&conn, "SELECT count(DISTINCT n) FROM events"), 300);
}

/// A connector that fails on a bad record (errors.tolerance=none), beside a healthy one.
fn failing_pair(broker: &Broker) -> (LakeDir, LakeDir) {
    let bad = LakeDir::new("rest-bad", "bad", &[]);
    let good = LakeDir::new("rest-good", "good", &[]);
    produce_raw(
        &broker.bootstrap,
        "bad",
        &[Some(r#"{"n":1}"#), Some("not json")],
    );
    produce_raw(
        &broker.bootstrap,
        "good",
        &[Some(r#"{"n":1}"#), Some(r#"{"n":2}"#)],
    );
    (bad, good)
}

#[test]
fn sigterm_with_a_failed_connector_exits_1_naming_it_after_the_others_commit() {
    let broker = Broker::start();
    let (bad, good) = failing_pair(&broker);
    let mut worker = Worker::start(&bad, &broker, &[good.connector.to_str().unwrap()]);
    let addr = worker.http_addr();
    let failed = wait_for_state(&addr, "rest-bad", "FAILED", MINUTE);
    let trace = failed["connector"]["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("offset 1"), "{failed}");
    assert_eq!(failed["tasks"][0]["trace"], failed["connector"]["trace"]);
    wait_for_state(&addr, "rest-good", "RUNNING", MINUTE);
    // A restart with the cause still there fails the same way again.
    let (s, _, body) = http(
        &addr,
        "POST",
        "/connectors/rest-bad/restart?includeTasks=true&onlyFailed=true",
    );
    assert_eq!(s, 202, "{body}");
    let restarting = json_of(&body);
    assert_eq!(restarting["connector"]["state"], "RESTARTING");
    assert_eq!(restarting["tasks"][0]["state"], "RESTARTING");
    wait_for_state(&addr, "rest-bad", "FAILED", MINUTE);
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker exited"
    );
    let deadline = Instant::now() + MINUTE;
    while sample(
        &http(&addr, "GET", "/metrics").2,
        r#"ducklake_sink_rows_written_total{connector="rest-good",table="good"}"#,
    ) != Some(2.0)
    {
        assert!(Instant::now() < deadline, "the healthy connector stalled");
        std::thread::sleep(Duration::from_millis(200));
    }

    worker.signal("TERM");
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("stopped with FAILED connectors") && log.contains("rest-bad"),
        "{log}"
    );
    assert!(
        log.contains("connector stopped"),
        "the healthy one stopped cleanly: {log}"
    );
    assert_eq!(count(&good.open(), "SELECT count(*) FROM good"), 2);
}

#[test]
fn exit_on_failure_stops_the_worker_with_exit_1_at_the_first_failure() {
    let broker = Broker::start();
    let (bad, good) = failing_pair(&broker);
    let mut worker = Worker::start(
        &bad,
        &broker,
        &["--exit-on-failure", good.connector.to_str().unwrap()],
    );
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("offset 1"), "{log}");
    let mut env_worker = Worker::start_with_env(
        &bad,
        &broker,
        &[],
        &[("DUCKLAKE_SINK_EXIT_ON_FAILURE", "true")],
    );
    assert_eq!(
        env_worker.wait(MINUTE).code(),
        Some(1),
        "{}",
        env_worker.log_text()
    );
}

#[test]
fn a_secret_librdkafka_refuses_is_not_repeated_in_the_failure() {
    let broker = Broker::start();
    // Refused by librdkafka builds without OpenSSL (as here), which name property and value.
    let secret = "PLANTED-ssl-1138";
    let lake = LakeDir::new(
        "rest-refused",
        "refused",
        &[("consumer.override.ssl.key.password", secret)],
    );
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    let deadline = Instant::now() + MINUTE;
    let status = loop {
        let s = get_json(&addr, "/connectors/rest-refused/status");
        if s["connector"]["state"] != "UNASSIGNED" || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let config = get_json(&addr, "/connectors/rest-refused/config");
    assert_eq!(config["consumer.override.ssl.key.password"], "[hidden]");
    worker.signal("TERM");
    worker.wait(MINUTE);
    let everything = format!("{status}\n{config}\n{}", worker.log_text());
    assert!(!everything.contains(secret), "{everything}");
    if status["connector"]["state"] == "FAILED" {
        let trace = status["connector"]["trace"].as_str().unwrap();
        assert!(trace.contains("ssl.key.password"), "{trace}");
    }
}
