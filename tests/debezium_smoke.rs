//! The real-Debezium test infrastructure works: PostgreSQL changes, read by Debezium 3.6.3
//! (embedded engine, `scripts/debezium_bridge.py`), arrive in a tansu topic as the exact
//! sequence Debezium emits — snapshot reads, inserts, updates, deletes with their tombstones,
//! a primary-key change, a truncate — and a stopped bridge resumes from its offsets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::debezium::{partition_count, read_topic, summary, Debezium, Format};
use support::{Broker, Postgres};

const SETTLE: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(60);

fn op_and_key(events: &[support::debezium::Event]) -> Vec<(String, Option<serde_json::Value>)> {
    summary(events)
}

#[test]
fn postgres_changes_arrive_as_debeziums_exact_event_sequence() {
    let pg = Postgres::start_logical();
    pg.psql(
        "lake",
        "CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, qty int);
         INSERT INTO public.items VALUES (1, 'one', 10), (2, 'two', 20);",
    );
    let broker = Broker::start();
    let mut dbz = Debezium::builder(&pg, "lake", &broker, "smoke")
        .tables(&["public.items"])
        .prop("skipped.operations", "none")
        .start();
    eprintln!("bridge ready after {:?}", dbz.startup);

    // One transaction per change, as an application would make them.
    for sql in [
        "INSERT INTO public.items VALUES (3, 'three', 30)",
        "UPDATE public.items SET qty = 21 WHERE id = 2",
        "DELETE FROM public.items WHERE id = 1",
        "UPDATE public.items SET id = 30 WHERE id = 3",
        "TRUNCATE public.items",
    ] {
        pg.psql("lake", sql);
    }

    let topic = dbz.topic("public.items");
    let events = read_topic(&broker.bootstrap, &topic, 10, SETTLE, TIMEOUT);
    let key = |id: i64| Some(json!({ "id": id }));
    let tomb = || "tombstone".to_owned();
    assert_eq!(
        op_and_key(&events),
        vec![
            ("r".into(), key(1)),
            ("r".into(), key(2)),
            ("c".into(), key(3)),
            ("u".into(), key(2)),
            ("d".into(), key(1)),
            (tomb(), key(1)),
            // A key change: delete + tombstone of the old key, then a create of the new one.
            ("d".into(), key(3)),
            (tomb(), key(3)),
            ("c".into(), key(30)),
            // A truncate has no key.
            ("t".into(), None),
        ],
        "bridge log:\n{}",
        dbz.log_text()
    );
    // The bridge created the topic with one partition, so the order above is total.
    assert_eq!(partition_count(&broker.bootstrap, &topic), 1);
    assert!(events.iter().all(|e| e.partition == 0));

    // Values are JsonConverter output with schemas: check the envelope's details.
    let env: Vec<_> = events.iter().map(|e| e.envelope()).collect();
    let e = |i: usize| env[i].clone().unwrap();
    assert_eq!(e(0)["after"], json!({"id": 1, "name": "one", "qty": 10}));
    assert_eq!(e(0)["source"]["snapshot"], json!("first"));
    assert_eq!(e(1)["source"]["snapshot"], json!("last"));
    assert_eq!(e(2)["after"], json!({"id": 3, "name": "three", "qty": 30}));
    assert_eq!(e(2)["before"], json!(null));
    // REPLICA IDENTITY DEFAULT: an update carries no before image...
    assert_eq!(e(3)["before"], json!(null));
    assert_eq!(e(3)["after"], json!({"id": 2, "name": "two", "qty": 21}));
    // ...and a delete's before holds the key; the other columns are NULL, or "" for a
    // NOT NULL text column (Debezium fills a required field it was not sent).
    assert_eq!(e(4)["after"], json!(null));
    assert_eq!(e(4)["before"], json!({"id": 1, "name": "", "qty": null}));
    assert_eq!(e(6)["before"], json!({"id": 3, "name": "", "qty": null}));
    // The two halves of a key change come from one WAL record.
    assert_eq!(e(6)["source"]["lsn"], e(8)["source"]["lsn"]);
    assert_eq!(e(2)["source"]["snapshot"], json!("false"));
    assert_eq!(e(8)["after"], json!({"id": 30, "name": "three", "qty": 30}));
    assert_eq!(e(9)["before"], json!(null));
    assert_eq!(e(9)["after"], json!(null));
    for i in [2, 3, 4, 6, 8, 9] {
        assert_eq!(e(i)["source"]["table"], json!("items"));
        assert_eq!(e(i)["source"]["schema"], json!("public"));
        assert_eq!(e(i)["source"]["db"], json!("lake"));
        assert!(e(i)["source"]["lsn"].as_i64().unwrap() > 0);
    }
    let schema = events[2].value_json().unwrap()["schema"].clone();
    assert_eq!(schema["name"], json!("smoke.public.items.Envelope"));
    // Kafka Connect headers as a worker writes them (SimpleHeaderConverter): the key change
    // links old and new keys.
    assert_eq!(
        events[6].header("__debezium.newkey"),
        Some(&b"{\"id\":30}"[..])
    );
    assert_eq!(
        events[8].header("__debezium.oldkey"),
        Some(&b"{\"id\":3}"[..])
    );
    assert_eq!(
        events[0].header("__debezium.context.connectorLogicalName"),
        Some(&b"smoke"[..])
    );

    // A clean stop records the offsets; a restart on them streams only what is new.
    assert!(
        dbz.stop(Duration::from_secs(60)).success(),
        "{}",
        dbz.log_text()
    );
    pg.psql("lake", "INSERT INTO public.items VALUES (5, 'five', 50)");
    let offsets = dbz.offset_file.clone();
    let dbz2 = Debezium::builder(&pg, "lake", &broker, "smoke")
        .tables(&["public.items"])
        .prop("skipped.operations", "none")
        .offset_file(&offsets)
        .start();
    let events = read_topic(&broker.bootstrap, &topic, 11, SETTLE, TIMEOUT);
    assert_eq!(events.len(), 11, "{:?}", summary(&events));
    assert_eq!(
        op_and_key(&events[10..]),
        vec![("c".into(), key(5))],
        "bridge log:\n{}",
        dbz2.log_text()
    );
}

#[test]
fn json_without_schemas_carries_the_bare_envelope() {
    let pg = Postgres::start_logical();
    pg.psql(
        "lake",
        "CREATE TABLE public.noschema (id bigint PRIMARY KEY, v text)",
    );
    let broker = Broker::start();
    let _dbz = Debezium::builder(&pg, "lake", &broker, "bare")
        .tables(&["public.noschema"])
        .format(Format::JsonNoSchema)
        .start();
    pg.psql("lake", "INSERT INTO public.noschema VALUES (7, 'x')");
    pg.psql("lake", "DELETE FROM public.noschema");
    let events = read_topic(
        &broker.bootstrap,
        "bare.public.noschema",
        3,
        SETTLE,
        TIMEOUT,
    );
    assert_eq!(events[0].key_json(), Some(json!({"id": 7})));
    let v = events[0].value_json().unwrap();
    assert!(v.get("schema").is_none(), "{v}");
    assert_eq!(v["op"], json!("c"));
    assert_eq!(v["after"], json!({"id": 7, "v": "x"}));
    assert_eq!(events[1].op().as_deref(), Some("d"));
    assert!(events[2].is_tombstone());
    assert_eq!(events.len(), 3);
}
