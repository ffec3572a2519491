//! Secrets in a connector file — the catalog's password, a SASL password, the schema registry's
//! credentials — never appear in what the worker shows: its logs (text and JSON), the HTTP
//! endpoints, `status` and `validate`, and the errors of a registry or a catalog that went away.
//! `--log-format json` writes one JSON object per line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use ducklake_sink::gen::{produce_orders, OrdersOptions};
use serde_json::Value;
use support::registry::Registry;
use support::{http_get, runtime, Broker, LakeDir, Postgres, Worker, SINK};

const MINUTE: Duration = Duration::from_secs(60);
const PLANTED: [&str; 3] = ["pgPlanted1x", "saslPlanted2x", "registryPlanted3x"];

fn assert_clean(what: &str, text: &str) {
    for secret in PLANTED {
        assert!(
            !text.contains(secret),
            "{what} shows the secret {secret}:\n{text}"
        );
    }
}

fn output(args: &[&str], connector: &std::path::Path) -> String {
    let out = Command::new(SINK)
        .args(args)
        .arg(connector)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every line is one JSON object with a timestamp, a level and a message.
fn assert_json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            for key in ["timestamp", "level", "message"] {
                assert!(v.get(key).is_some(), "no `{key}` in {line}");
            }
            v
        })
        .collect()
}

#[test]
fn planted_secrets_never_appear_in_logs_status_http_or_errors() {
    let broker = Broker::start();
    let pg = Postgres::start();
    let mut registry = Registry::start();
    let orders = |topic: &str| {
        runtime()
            .block_on(produce_orders(&OrdersOptions {
                bootstrap_servers: broker.bootstrap.clone(),
                topic: topic.into(),
                count: 500,
                rate: None,
                seed: 3,
                partitions: Some(1),
                start_id: 1,
                customers: 10,
                with_schema: true,
                schema_registry: Some(registry.url.clone()),
            }))
            .unwrap()
    };
    orders("vault");
    let catalog = format!("{} password={}", pg.catalog(), PLANTED[0]);
    let user_info = format!("sink:{}", PLANTED[2]);
    let lake = LakeDir::new(
        "vault",
        "vault",
        &[
            ("ducklake.catalog", &catalog),
            ("consumer.override.sasl.password", PLANTED[1]),
            ("value.converter", "io.confluent.connect.avro.AvroConverter"),
            ("value.converter.schema.registry.url", &registry.url),
            ("value.converter.basic.auth.credentials.source", "USER_INFO"),
            ("value.converter.basic.auth.user.info", &user_info),
            ("errors.retry.timeout", "4000"),
        ],
    );

    // A run with JSON logs; the HTTP endpoints read while it runs.
    let mut worker = Worker::start(&lake, &broker, &["--log-format", "json"]);
    worker.wait_for_log("flushed", MINUTE);
    let lines = assert_json_lines(&worker.log_text());
    let addr = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("http listener"))
        })
        .and_then(|l| l["addr"].as_str())
        .unwrap()
        .to_owned();
    assert!(
        lines.iter().any(|l| l["connector"] == "vault"),
        "no line names the connector"
    );
    for path in [
        "/metrics",
        "/health",
        "/connectors/vault/status",
        "/connectors/vault/config",
        "/connectors",
    ] {
        let (_, body) = http_get(&addr, path);
        assert_clean(path, &body);
    }
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    assert_json_lines(&worker.log_text());
    assert_clean("the JSON log", &worker.log_text());
    assert_clean("status", &output(&["status"], &lake.connector));
    assert_clean("validate", &output(&["validate"], &lake.connector));

    // The registry gone while a fresh worker (which knows no schema yet) has records to read:
    // retried for errors.retry.timeout, then the connector stops naming the registry — not its
    // credentials.
    orders("vault");
    registry.stop();
    let mut worker = Worker::start(&lake, &broker, &["--exit-on-failure"]);
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("schema registry unavailable; retrying"),
        "{log}"
    );
    assert_clean("the text log of a registry outage", &log);

    // The catalog gone: the connector stops with an error about the catalog.
    registry.restart();
    pg.stop_server();
    let mut worker = Worker::start(
        &lake,
        &broker,
        &["--log-format", "json", "--exit-on-failure"],
    );
    let status = worker.wait(MINUTE * 2);
    assert!(!status.success());
    let log = worker.log_text();
    let lines = assert_json_lines(&log);
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"),
        "the failure is a JSON error line: {log}"
    );
    assert_clean("the JSON log of a catalog outage", &log);
}
