//! The product's defining job, proven with the real thing: a seeded random workload on
//! PostgreSQL (inserts, updates, deletes, primary-key changes, an `ALTER TABLE … ADD COLUMN`
//! and a `TRUNCATE` midway) on a table with a column of every PostgreSQL type in the README's
//! type table, streamed by real Debezium 3.6.3 into tansu and applied by the sink while it is
//! `kill -9`ed at random moments; the lake table then equals the PostgreSQL table row for row
//! and value for value — and again after replaying the whole topic from offset 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::debezium::{Debezium, Format};
use support::registry::Registry;
use support::{Broker, LakeDir, Postgres, Worker, SINK};

const MINUTE: Duration = Duration::from_secs(60);
const TABLE: &str = "everything";
/// Changes after the snapshot, and rows before it.
const CHANGES: usize = 100_000;
const INITIAL_ROWS: i64 = 10_000;
/// The last row written: once it is in the lake, everything before it is.
const SENTINEL: i64 = 2_000_000_000;

const DDL: &str = "
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS ltree;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE public.everything (
  id integer PRIMARY KEY,
  c_smallint smallint, c_integer integer, c_bigint bigint, c_real real, c_double double precision,
  c_numeric numeric(10,2), c_numeric_wide numeric(50,10), c_numeric_any numeric, c_money money,
  c_boolean boolean, c_text text, c_varchar varchar(20), c_char char(5), c_bytea bytea,
  c_date date, c_time time, c_time3 time(3), c_timetz timetz, c_timestamp timestamp,
  c_timestamp3 timestamp(3), c_timestamptz timestamptz, c_interval interval, c_uuid uuid,
  c_json json, c_jsonb jsonb, c_xml xml, c_enum mood,
  c_int_array integer[], c_text_array text[], c_numeric_array numeric(6,2)[],
  c_inet inet, c_cidr cidr, c_macaddr macaddr, c_bit1 bit(1), c_bit8 bit(8), c_point point,
  c_hstore hstore, c_ltree ltree, c_tsvector tsvector, c_int4range int4range, c_oid oid
);";

/// A random SQL literal for each column (after `id`), NULL now and then.
fn values(rng: &mut StdRng, with_added: bool) -> Vec<(&'static str, String)> {
    fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
        from[rng.gen_range(0..from.len())]
    }
    let words = [
        "alpha", "beta", "gamma", "delta", "épsilon", "zeta ✓", "eta's", "",
    ];
    let mut v: Vec<(&'static str, String)> = vec![
        ("c_smallint", rng.gen::<i16>().to_string()),
        ("c_integer", rng.gen::<i32>().to_string()),
        ("c_bigint", rng.gen::<i64>().to_string()),
        (
            "c_real",
            format!("{:.2}", rng.gen_range(-10_000.0f32..10_000.0)),
        ),
        (
            "c_double",
            match rng.gen_range(0..40) {
                0 => "'NaN'".into(),
                1 => "'Infinity'".into(),
                2 => "'-Infinity'".into(),
                _ => format!("{}", rng.gen_range(-1.0e6f64..1.0e6)),
            },
        ),
        (
            "c_numeric",
            format!(
                "{}.{:02}",
                rng.gen_range(-99_999_999i64..99_999_999),
                rng.gen_range(0..100)
            ),
        ),
        (
            "c_numeric_wide",
            format!(
                "{}{}.{:010}",
                rng.gen_range(-9_999_999_999i64..9_999_999_999),
                rng.gen_range(10_000_000_000_000_000u64..99_999_999_999_999_999),
                rng.gen_range(0u64..10_000_000_000)
            ),
        ),
        (
            "c_numeric_any",
            format!(
                "{}.{}",
                rng.gen_range(-1_000_000i64..1_000_000),
                "0123456789"[..rng.gen_range(1..10)].to_owned()
            ),
        ),
        (
            "c_money",
            format!(
                "{}.{:02}",
                rng.gen_range(-1_000_000i64..1_000_000),
                rng.gen_range(0..100)
            ),
        ),
        ("c_boolean", rng.gen::<bool>().to_string()),
        (
            "c_text",
            format!("'{}'", pick(rng, &words).replace('\'', "''")),
        ),
        (
            "c_varchar",
            format!("'{}'", pick(rng, &words).replace('\'', "''")),
        ),
        (
            "c_char",
            format!("'{}'", pick(rng, &["ab", "abcde", "x", ""])),
        ),
        ("c_bytea", format!("'\\x{:08x}'", rng.gen::<u32>())),
        (
            "c_date",
            format!("DATE '1970-01-01' + {}", rng.gen_range(-40_000..40_000)),
        ),
        (
            "c_time",
            format!(
                "TIME '00:00:00' + interval '{} microseconds'",
                rng.gen_range(0i64..86_400_000_000)
            ),
        ),
        (
            "c_time3",
            format!(
                "TIME '00:00:00' + interval '{} milliseconds'",
                rng.gen_range(0i64..86_400_000)
            ),
        ),
        (
            "c_timetz",
            format!(
                "'{:02}:{:02}:{:02}.{:06}{}'",
                rng.gen_range(0..24),
                rng.gen_range(0..60),
                rng.gen_range(0..60),
                rng.gen_range(0..1_000_000),
                pick(rng, &["+00", "+05:30", "-08", "+14"])
            ),
        ),
        (
            "c_timestamp",
            format!(
                "TIMESTAMP '1970-01-01' + interval '{} microseconds'",
                rng.gen_range(-2_000_000_000_000_000i64..4_000_000_000_000_000)
            ),
        ),
        (
            "c_timestamp3",
            format!(
                "TIMESTAMP '1970-01-01' + interval '{} milliseconds'",
                rng.gen_range(-2_000_000_000_000i64..4_000_000_000_000)
            ),
        ),
        (
            "c_timestamptz",
            format!(
                "TIMESTAMPTZ '1970-01-01 00:00:00+00' + interval '{} microseconds'",
                rng.gen_range(-2_000_000_000_000_000i64..4_000_000_000_000_000)
            ),
        ),
        (
            "c_interval",
            format!(
                "interval '{} days {} microseconds'",
                rng.gen_range(-400..400),
                rng.gen_range(-86_400_000_000i64..86_400_000_000)
            ),
        ),
        ("c_uuid", format!("'{:032x}'", rng.gen::<u128>())),
        (
            "c_json",
            format!(
                "'{{\"n\": {}, \"s\": \"{}\", \"l\": [1, null]}}'",
                rng.gen_range(0..1000),
                pick(rng, &["a", "b"])
            ),
        ),
        (
            "c_jsonb",
            format!(
                "'{{\"k\": {}, \"arr\": [{}, \"x\"]}}'",
                rng.gen_range(0..1000),
                rng.gen_range(0..9)
            ),
        ),
        (
            "c_xml",
            format!("'<r n=\"{}\">a &amp; b</r>'", rng.gen_range(0..1000)),
        ),
        (
            "c_enum",
            format!("'{}'", pick(rng, &["sad", "ok", "happy"])),
        ),
        (
            "c_int_array",
            format!("'{{{},NULL,{}}}'", rng.gen::<i32>(), rng.gen::<i32>()),
        ),
        (
            "c_text_array",
            format!(
                "ARRAY['{}', NULL, 'q\"uote']::text[]",
                pick(rng, &["a", "b c", ""])
            ),
        ),
        (
            "c_numeric_array",
            format!(
                "'{{{}.{:02},-1.5}}'",
                rng.gen_range(-9999..9999),
                rng.gen_range(0..100)
            ),
        ),
        (
            "c_inet",
            format!("'10.{}.{}.1/24'", rng.gen::<u8>(), rng.gen::<u8>()),
        ),
        ("c_cidr", format!("'10.{}.0.0/16'", rng.gen::<u8>())),
        (
            "c_macaddr",
            format!(
                "'08:00:2b:{:02x}:{:02x}:03'",
                rng.gen::<u8>(),
                rng.gen::<u8>()
            ),
        ),
        ("c_bit1", pick(rng, &["B'1'", "B'0'"]).into()),
        ("c_bit8", format!("B'{:08b}'", rng.gen::<u8>())),
        (
            "c_point",
            format!(
                "point({:.3}, {:.3})",
                rng.gen_range(-180.0..180.0),
                rng.gen_range(-90.0..90.0)
            ),
        ),
        (
            "c_hstore",
            format!("'a=>{}, b=>NULL'", rng.gen_range(0..100)),
        ),
        (
            "c_ltree",
            format!("'top.{}'", pick(rng, &["science", "arts", "sports"])),
        ),
        (
            "c_tsvector",
            format!("'fat cat {}'::tsvector", pick(rng, &["sat", "ran"])),
        ),
        (
            "c_int4range",
            format!(
                "int4range({}, {})",
                rng.gen_range(-100..0),
                rng.gen_range(0..100)
            ),
        ),
        ("c_oid", rng.gen::<u32>().to_string()),
    ];
    if with_added {
        v.push(("c_added", format!("'added {}'", rng.gen_range(0..100))));
    }
    for (_, lit) in &mut v {
        if rng.gen_range(0..10) == 0 {
            *lit = "NULL".into();
        }
    }
    v
}

fn insert(rng: &mut StdRng, id: i64, with_added: bool) -> String {
    let v = values(rng, with_added);
    let cols: Vec<&str> = v.iter().map(|(c, _)| *c).collect();
    let lits: Vec<&str> = v.iter().map(|(_, l)| l.as_str()).collect();
    format!(
        "INSERT INTO public.{TABLE} (id, {}) VALUES ({id}, {});",
        cols.join(", "),
        lits.join(", ")
    )
}

fn update(rng: &mut StdRng, id: i64, with_added: bool) -> String {
    let v = values(rng, with_added);
    // Change a few columns, as applications do.
    let mut picked: Vec<usize> = (0..rng.gen_range(1..5))
        .map(|_| rng.gen_range(0..v.len()))
        .collect();
    picked.sort_unstable();
    picked.dedup();
    let set: Vec<String> = picked
        .into_iter()
        .map(|i| format!("{} = {}", v[i].0, v[i].1))
        .collect();
    format!(
        "UPDATE public.{TABLE} SET {} WHERE id = {id};",
        set.join(", ")
    )
}

/// Runs a long SQL script through one psql session (statements in transactions of ~50).
fn run_script(pg: &Postgres, statements: &[String]) {
    let mut script = String::from("\\set ON_ERROR_STOP 1\n");
    for chunk in statements.chunks(50) {
        script.push_str("BEGIN;\n");
        for s in chunk {
            script.push_str(s);
            script.push('\n');
        }
        script.push_str("COMMIT;\n");
    }
    pg.psql_script("lake", &script);
}

/// The whole workload: the statements and how many of each kind.
struct Workload {
    /// Run before Debezium starts (the snapshot).
    initial: Vec<String>,
    /// The changes, in order; `ALTER TABLE` and `TRUNCATE` are among them.
    changes: Vec<String>,
    counts: BTreeMap<&'static str, usize>,
}

fn workload(seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let initial: Vec<String> = (1..=INITIAL_ROWS)
        .map(|id| insert(&mut rng, id, false))
        .collect();
    let mut live: Vec<i64> = (1..=INITIAL_ROWS).collect();
    let mut next_id = INITIAL_ROWS + 1;
    let mut added = false;
    let mut changes = Vec::with_capacity(CHANGES + 3);
    let mut counts = BTreeMap::new();
    for i in 0..CHANGES {
        if i == CHANGES / 2 {
            // No DEFAULT: PostgreSQL would fill existing rows without a change event, which
            // no log-based CDC can see (the README says so).
            changes.push(format!(
                "ALTER TABLE public.{TABLE} ADD COLUMN c_added text;"
            ));
            added = true;
        }
        if i == CHANGES * 3 / 4 {
            changes.push(format!("TRUNCATE public.{TABLE};"));
            live.clear();
        }
        let roll = rng.gen_range(0..100);
        let kind = if live.is_empty() || roll < 35 {
            "insert"
        } else if roll < 75 {
            "update"
        } else if roll < 92 {
            "delete"
        } else {
            "key change"
        };
        *counts.entry(kind).or_default() += 1;
        let stmt = match kind {
            "insert" => {
                live.push(next_id);
                next_id += 1;
                insert(&mut rng, next_id - 1, added)
            }
            "update" => {
                let id = live[rng.gen_range(0..live.len())];
                update(&mut rng, id, added)
            }
            "delete" => {
                let id = live.swap_remove(rng.gen_range(0..live.len()));
                format!("DELETE FROM public.{TABLE} WHERE id = {id};")
            }
            _ => {
                let at = rng.gen_range(0..live.len());
                let (old, new) = (live[at], next_id);
                live[at] = new;
                next_id += 1;
                format!("UPDATE public.{TABLE} SET id = {new} WHERE id = {old};")
            }
        };
        changes.push(stmt);
    }
    changes.push(format!(
        "INSERT INTO public.{TABLE} (id) VALUES ({SENTINEL});"
    ));
    Workload {
        initial,
        changes,
        counts,
    }
}

/// Per column: the PostgreSQL expression rendering it, and the DuckDB comparison of the lake's
/// value `l.<col>` with that rendering `p.<col>`.
const COMPARISONS: &[(&str, &str, &str)] = &[
    ("c_smallint", "c_smallint::text", "l.c_smallint = p.c_smallint::SMALLINT"),
    ("c_integer", "c_integer::text", "l.c_integer = p.c_integer::INTEGER"),
    ("c_bigint", "c_bigint::text", "l.c_bigint = p.c_bigint::BIGINT"),
    ("c_real", "c_real::text", "l.c_real = p.c_real::FLOAT"),
    ("c_double", "c_double::text", "l.c_double = p.c_double::DOUBLE"),
    ("c_numeric", "c_numeric::text", "l.c_numeric = p.c_numeric::DECIMAL(10,2)"),
    ("c_numeric_wide", "c_numeric_wide::text", "l.c_numeric_wide = p.c_numeric_wide"),
    // Exact text; Debezium drops trailing fractional zeros (`5.0` arrives as scale 0).
    ("c_numeric_any", "c_numeric_any::text", "l.c_numeric_any::DECIMAL(38,12) = p.c_numeric_any::DECIMAL(38,12)"),
    ("c_money", "c_money::numeric::text", "l.c_money = p.c_money::DECIMAL(38,2)"),
    ("c_boolean", "c_boolean::text", "l.c_boolean = p.c_boolean::BOOLEAN"),
    ("c_text", "c_text", "l.c_text = p.c_text"),
    ("c_varchar", "c_varchar::text", "l.c_varchar = p.c_varchar"),
    // char(n) compares without its padding in PostgreSQL too.
    ("c_char", "c_char::text", "rtrim(l.c_char) = p.c_char"),
    ("c_bytea", "encode(c_bytea, 'hex')", "lower(hex(l.c_bytea)) = p.c_bytea"),
    ("c_date", "c_date::text", "l.c_date = p.c_date::DATE"),
    ("c_time", "c_time::text", "l.c_time = p.c_time::TIME"),
    ("c_time3", "c_time3::text", "l.c_time3 = p.c_time3::TIME"),
    ("c_timetz", "(c_timetz AT TIME ZONE 'UTC')::text", "l.c_timetz::VARCHAR = p.c_timetz::TIMETZ::VARCHAR"),
    ("c_timestamp", "c_timestamp::text", "l.c_timestamp = p.c_timestamp::TIMESTAMP"),
    ("c_timestamp3", "c_timestamp3::text", "l.c_timestamp3 = p.c_timestamp3::TIMESTAMP"),
    ("c_timestamptz", "(extract(epoch FROM c_timestamptz) * 1000000)::bigint::text", "epoch_us(l.c_timestamptz) = p.c_timestamptz::BIGINT"),
    // Microseconds. Debezium computes them from the interval's seconds as a double, so a
    // negative one can come out 1 µs short: that is the value it sends, and what the lake holds.
    ("c_interval", "(extract(epoch FROM c_interval) * 1000000)::bigint::text", "abs(l.c_interval - p.c_interval::BIGINT) <= 1"),
    ("c_uuid", "c_uuid::text", "l.c_uuid = p.c_uuid::UUID"),
    ("c_json", "c_json::text", "l.c_json::VARCHAR = p.c_json"),
    ("c_jsonb", "c_jsonb::text", "l.c_jsonb::VARCHAR = p.c_jsonb"),
    ("c_xml", "c_xml::text", "l.c_xml = p.c_xml"),
    ("c_enum", "c_enum::text", "l.c_enum = p.c_enum"),
    ("c_int_array", "array_to_json(c_int_array)::text", "to_json(l.c_int_array)::VARCHAR = p.c_int_array"),
    ("c_text_array", "array_to_json(c_text_array)::text", "to_json(l.c_text_array)::VARCHAR = p.c_text_array"),
    ("c_numeric_array", "array_to_json(c_numeric_array)::text", "l.c_numeric_array = p.c_numeric_array::JSON::DECIMAL(6,2)[]"),
    ("c_inet", "c_inet::text", "l.c_inet = p.c_inet"),
    ("c_cidr", "c_cidr::text", "l.c_cidr = p.c_cidr"),
    ("c_macaddr", "c_macaddr::text", "l.c_macaddr = p.c_macaddr"),
    ("c_bit1", "(c_bit1 = B'1')::text", "l.c_bit1 = p.c_bit1::BOOLEAN"),
    // Debezium's Bits: the bit string's value as little-endian bytes.
    ("c_bit8", "c_bit8::int::text", "(CASE WHEN octet_length(l.c_bit8) = 0 THEN 0 ELSE ('0x' || hex(l.c_bit8))::INTEGER END) = p.c_bit8::INTEGER"),
    // WKB of a point: byte order, type, x, y (little-endian doubles; float8send writes them
    // big-endian, so the bytes are reversed), checked as hex.
    ("c_point", "'0101000000' || (SELECT string_agg(substr(encode(float8send(c_point[0]), 'hex'), 15 - 2 * i, 2), '' ORDER BY i) FROM generate_series(0, 7) i) || (SELECT string_agg(substr(encode(float8send(c_point[1]), 'hex'), 15 - 2 * i, 2), '' ORDER BY i) FROM generate_series(0, 7) i)", "lower(hex(l.c_point)) = p.c_point"),
    ("c_hstore", "hstore_to_json(c_hstore)::text", "list_transform(list_sort(json_keys(l.c_hstore)), k -> k || '=' || coalesce(l.c_hstore->>k, '~')) = list_transform(list_sort(json_keys(p.c_hstore::JSON)), k -> k || '=' || coalesce(p.c_hstore::JSON->>k, '~'))"),
    ("c_ltree", "c_ltree::text", "l.c_ltree = p.c_ltree"),
    ("c_tsvector", "c_tsvector::text", "l.c_tsvector = p.c_tsvector"),
    ("c_int4range", "c_int4range::text", "l.c_int4range = p.c_int4range"),
    ("c_oid", "c_oid::text", "l.c_oid = p.c_oid::BIGINT"),
    ("c_added", "c_added", "l.c_added = p.c_added"),
];

/// Compares the lake table with the PostgreSQL table through DuckDB's postgres extension;
/// returns the mismatching rows per column (empty: equal).
fn differences(lake: &LakeDir, pg: &Postgres) -> BTreeMap<String, String> {
    let conn = lake.open();
    conn.execute_batch(&format!(
        "LOAD postgres_scanner; ATTACH 'dbname=lake host=127.0.0.1 port={} user=postgres' AS pg (TYPE postgres, READ_ONLY)",
        pg.port
    ))
    .unwrap();
    let pg_cols: Vec<String> = COMPARISONS
        .iter()
        .map(|(c, e, _)| format!("{e} AS {c}"))
        .collect();
    let pg_query = format!("SELECT id, {} FROM public.{TABLE}", pg_cols.join(", "));
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE p AS SELECT * FROM postgres_query('pg', {})",
        sql_literal(&pg_query)
    ))
    .unwrap();
    let mut out = BTreeMap::new();
    let rows = |q: &str| support::count(&conn, q);
    let missing = rows(&format!(
        "SELECT count(*) FROM {TABLE} l FULL OUTER JOIN temp.p p USING (id) WHERE l.id IS NULL OR p.id IS NULL"
    ));
    if missing > 0 {
        out.insert("rows only on one side".to_owned(), missing.to_string());
    }
    for (col, _, cmp) in COMPARISONS {
        let n = rows(&format!(
            "SELECT count(*) FROM {TABLE} l JOIN temp.p p USING (id)
             WHERE NOT ((l.{col} IS NULL AND p.{col} IS NULL) OR coalesce({cmp}, false))"
        ));
        if n > 0 {
            let samples: Vec<String> = conn
                .prepare(&format!(
                    "SELECT l.{col}::VARCHAR, p.{col}::VARCHAR FROM {TABLE} l JOIN temp.p p USING (id)
                     WHERE NOT ((l.{col} IS NULL AND p.{col} IS NULL) OR coalesce({cmp}, false)) LIMIT 3"
                ))
                .unwrap()
                .query_map([], |r| {
                    Ok(format!(
                        "lake {:?} / postgres {:?}",
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?
                    ))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            out.insert((*col).to_owned(), format!("{n} rows, e.g. {samples:?}"));
        }
    }
    let total = rows(&format!("SELECT count(*) FROM {TABLE}"));
    assert!(total > 1000, "only {total} rows in the lake");
    out
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs the worker until the sentinel row is in the lake (Debezium may still be producing
/// when a drain ends).
fn drain_to_sentinel(lake: &LakeDir, broker: &Broker) {
    let deadline = Instant::now() + MINUTE * 5;
    loop {
        let mut worker = Worker::start(lake, broker, &["--until-caught-up"]);
        let status = worker.wait(MINUTE * 5);
        assert!(status.success(), "worker failed: {}", worker.log_text());
        let found = support::count(
            &lake.open(),
            &format!("SELECT count(*) FROM {TABLE} WHERE id = {SENTINEL}"),
        );
        if found == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel never reached the lake"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn a_real_debezium_stream_of_every_type_leaves_the_lake_equal_to_postgres() {
    every_type_through(Converter::Json);
}

/// The same workload serialized by Confluent's `AvroConverter` (inside Debezium's embedded
/// engine) through the project's HTTP schema registry: the `ALTER TABLE` midway registers a
/// second value schema version, which the sink fetches by id.
#[test]
fn a_real_debezium_avro_stream_of_every_type_leaves_the_lake_equal_to_postgres() {
    every_type_through(Converter::Avro);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Converter {
    Json,
    Avro,
}

fn every_type_through(converter: Converter) {
    let seed: u64 = rand::random();
    eprintln!("debezium workload seed {seed}");
    let work = workload(seed);
    eprintln!("changes: {:?}", work.counts);
    assert!(work.counts["update"] * 5 >= CHANGES, "≥ 20 % updates");
    assert!(work.counts["delete"] * 10 >= CHANGES, "≥ 10 % deletes");

    let pg = Postgres::start_logical();
    pg.psql("lake", DDL);
    run_script(&pg, &work.initial);
    let broker = Broker::start();
    let registry = Registry::start();
    let format = match converter {
        Converter::Json => Format::Json,
        Converter::Avro => Format::Avro {
            registry: registry.url.clone(),
        },
    };
    let dbz = Debezium::builder(&pg, "lake", &broker, "pg")
        .tables(&[&format!("public.{TABLE}")])
        .prop("skipped.operations", "none")
        .format(format)
        .start();
    let topic = dbz.topic(&format!("public.{TABLE}"));
    const AVRO: &str = "io.confluent.connect.avro.AvroConverter";
    const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";
    let converters: Vec<(&str, &str)> = match converter {
        Converter::Json => vec![
            ("key.converter", JSON),
            ("key.converter.schemas.enable", "true"),
            ("value.converter.schemas.enable", "true"),
        ],
        Converter::Avro => vec![
            ("key.converter", AVRO),
            ("value.converter", AVRO),
            ("key.converter.schema.registry.url", &registry.url),
            ("value.converter.schema.registry.url", &registry.url),
        ],
    };
    let lake = LakeDir::new(
        &format!("dbz-everything-{converter:?}"),
        &topic,
        &[
            converters.as_slice(),
            &[
                ("insert.mode", "upsert"),
                ("pk.mode", "record_key"),
                ("delete.enabled", "true"),
                ("truncate.enabled", "true"),
                ("table.name.format", "${source.table}"),
                ("flush.max.records", "5000"),
                ("flush.interval.ms", "500"),
            ],
        ]
        .concat(),
    );

    // The sink applies the stream while the workload runs, and is killed at random moments.
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let done = done.clone();
        let connector = lake.connector.clone();
        let log_dir = lake.path().to_owned();
        let bootstrap = broker.bootstrap.clone();
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
            let mut kills = 0;
            while !done.load(Ordering::SeqCst) {
                let log = log_dir.join(format!("killed-{kills}.log"));
                let mut child = Command::new(SINK)
                    .args([
                        "run",
                        "--bootstrap-servers",
                        &bootstrap,
                        "--http-addr",
                        "off",
                    ])
                    .arg(&connector)
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(rng.gen_range(3_000..8_000)));
                let _ = child.kill();
                let _ = child.wait();
                kills += 1;
            }
            kills
        })
    };
    run_script(&pg, &work.changes);
    done.store(true, Ordering::SeqCst);
    let kills = killer.join().unwrap();
    eprintln!("sink killed {kills} times while the workload ran");
    assert!(kills >= 2, "the sink was killed only {kills} times");

    drain_to_sentinel(&lake, &broker);
    let diff = differences(&lake, &pg);
    assert!(diff.is_empty(), "lake differs from PostgreSQL: {diff:?}");

    // Replaying the whole topic leaves the table as it is.
    let out = Command::new(SINK)
        .args(["reset"])
        .arg(&lake.connector)
        .args(["--topic", &topic])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drain_to_sentinel(&lake, &broker);
    let diff = differences(&lake, &pg);
    assert!(diff.is_empty(), "after a replay from offset 0: {diff:?}");
    drop(dbz);
}
