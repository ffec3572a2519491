//! Secrets in a connector file — the catalog's password, a SASL password, the schema registry's
//! credentials — never appear in what the worker shows: its logs (text and JSON), the HTTP
//! endpoints, `status` and `validate`, and the errors of a registry or a catalog that went away.
//! The same for object-store credentials (`tests/support/s3.rs` starts moto for them).
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

/// Object-store credentials — a key id, a secret access key and a session token in the
/// connector file, or the AWS variables in the environment — never appear either: not in the
/// logs of a run, the HTTP endpoints, `status`, `validate` or `sql`, nor in the errors of a
/// store outage or of a store that refuses them.
#[test]
fn planted_s3_credentials_never_appear_in_logs_status_http_or_errors() {
    use support::s3::{Moto, Proxy};
    const S3_PLANTED: [&str; 5] = [
        "AKIAPLANTEDKEY4X",
        "s3SecretPlanted5x",
        "s3TokenPlanted6x",
        "AKIAENVPLANTED7X",
        "envSecretPlanted8x",
    ];
    let assert_clean = |what: &str, text: &str| {
        for secret in S3_PLANTED {
            assert!(
                !text.contains(secret),
                "{what} shows the secret {secret}:\n{text}"
            );
        }
    };
    let broker = Broker::start();
    let moto = Moto::start();
    moto.create_bucket("vault");
    let proxy = Proxy::start(&moto.endpoint());
    let orders = |topic: &str| {
        runtime()
            .block_on(produce_orders(&OrdersOptions {
                bootstrap_servers: broker.bootstrap.clone(),
                topic: topic.into(),
                count: 300,
                rate: None,
                seed: 4,
                partitions: Some(1),
                start_id: 1,
                customers: 10,
                with_schema: false,
                schema_registry: None,
            }))
            .unwrap()
    };
    orders("vault");
    let endpoint = proxy.endpoint();
    let lake = LakeDir::new(
        "s3-vault",
        "vault",
        &[
            ("ducklake.data.path", "s3://vault/data/"),
            ("ducklake.s3.endpoint", &endpoint),
            ("ducklake.s3.use.ssl", "false"),
            ("ducklake.s3.access.key.id", S3_PLANTED[0]),
            ("ducklake.s3.secret.access.key", S3_PLANTED[1]),
            ("ducklake.s3.session.token", S3_PLANTED[2]),
            ("errors.retry.timeout", "4000"),
        ],
    );

    // A run with JSON logs; the HTTP endpoints read while it runs.
    let mut worker = Worker::start(&lake, &broker, &["--log-format", "json"]);
    worker.wait_for_log("flushed", MINUTE);
    let addr = assert_json_lines(&worker.log_text())
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("http listener"))
        })
        .and_then(|l| l["addr"].as_str())
        .unwrap()
        .to_owned();
    for path in [
        "/metrics",
        "/health",
        "/connectors/s3-vault/status",
        "/connectors/s3-vault/config",
        "/connectors",
    ] {
        let (_, body) = http_get(&addr, path);
        assert_clean(path, &body);
    }
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
    assert_clean("the JSON log", &worker.log_text());
    let status = output(&["status"], &lake.connector);
    assert!(status.contains("s3://vault/data/"), "{status}");
    assert_clean("status", &status);
    assert_clean("validate", &output(&["validate"], &lake.connector));
    let sql = lake.path().join("count.sql");
    std::fs::write(&sql, "SELECT 'rows=' || count(*) AS r FROM vault;").unwrap();
    let out = Command::new(SINK)
        .arg("sql")
        .arg(&lake.connector)
        .arg(&sql)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rows=300"), "{text}");
    assert_clean("sql", &text);

    // The store cut off while a fresh worker has records to write: retried for
    // errors.retry.timeout, then the connector stops naming the store, not the credentials.
    orders("vault");
    proxy.cut();
    let mut worker = Worker::start(&lake, &broker, &["--exit-on-failure"]);
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert!(!status.success(), "{log}");
    assert!(log.contains("transient lake failure; retrying"), "{log}");
    assert_clean("the text log of a store outage", &log);
    proxy.restore();

    // Credentials from the AWS variables, which a store that checks them refuses: a fatal
    // error naming the endpoint and the bucket, in JSON, without the credentials.
    let checking = Moto::start_with_auth(1);
    checking.create_bucket("vault");
    let env_lake = LakeDir::new(
        "s3-vault-env",
        "vault",
        &[("ducklake.data.path", "s3://vault/env/")],
    );
    let url = format!("http://{}", checking.endpoint());
    let env = [
        ("AWS_ACCESS_KEY_ID", S3_PLANTED[3]),
        ("AWS_SECRET_ACCESS_KEY", S3_PLANTED[4]),
        ("AWS_ENDPOINT_URL", url.as_str()),
    ];
    let mut worker = Worker::start_with_env(
        &env_lake,
        &broker,
        &["--log-format", "json", "--exit-on-failure"],
        &env,
    );
    let status = worker.wait(MINUTE);
    let log = worker.log_text();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "object store {url}, bucket `vault`: access denied (HTTP 403)"
        )),
        "{log}"
    );
    assert_json_lines(&log);
    assert_clean("the JSON log of refused credentials", &log);
}
