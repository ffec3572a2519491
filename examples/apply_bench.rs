//! Lake-only benchmark of the keyed apply (issue 11): no Kafka, no sink loop; one DuckDB
//! connection with a DuckLake catalog, as the sink opens it. Pre-loads a `users`-shaped table,
//! then applies batches of changes (updates, deletes, inserts; one change per key, as a flush
//! holds) the way the sink's keyed apply does: stage the changes in a temporary table, delete
//! the staged keys from the lake table, insert the upserted rows, commit. Each layout strategy
//! gets its own fresh lake; prints changes/s, commit latency, delete files written and the time
//! of a full scan before the changes, after them and after compaction.
//!
//! `cargo run --release --example apply_bench -- [--rows N] [--batch N] [--batches N]
//!  [--chunk N] [--strategies plain,range,sorted,bucket16,bucket16-range] [--keys random,recent]
//!  [--dir PATH] [--upkeep full|N] [--upkeep-changes N]`
//!
//! `--upkeep`: run the sink's own maintenance (`Lake::maintain`) between flushes as the worker
//! does — once `--upkeep-changes` changes (default 1 M, as `ducklake.maintenance.changes`)
//! were applied, and again after each flush while a bounded run left work — with at most N
//! files per run (`ducklake.maintenance.max.files`), or `full` for no bound; prints the
//! longest run, which is the longest a flush waits behind upkeep.
//!
//! Strategies:
//! - `plain`: today's apply, `DELETE … USING stage WHERE t.id = s.id`.
//! - `range`: the same join plus `t.id BETWEEN min AND max` of the staged keys as literals, so
//!   DuckLake skips the files whose key statistics lie outside.
//! - `sorted`: `SET SORTED BY (id)` (files sorted by key on insert and compaction) + `range`.
//! - `bucketN`: `SET PARTITIONED BY (bucket(N, id))` with today's delete;
//!   `bucketN-range` the same with the range predicate.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::time::{Duration, Instant};

use duckdb::{params, Connection};
use rand::{Rng, SeedableRng};

struct Args {
    rows: i64,
    batch: usize,
    batches: usize,
    chunk: i64,
    strategies: Vec<String>,
    keys: Vec<String>,
    dir: std::path::PathBuf,
    compact: bool,
    upkeep: Option<u64>,
    upkeep_changes: usize,
}

fn args() -> Args {
    let mut a = Args {
        rows: 10_000_000,
        batch: 20_000,
        batches: 5,
        chunk: 500_000,
        strategies: vec![
            "plain".into(),
            "range".into(),
            "sorted".into(),
            "bucket16".into(),
        ],
        keys: vec!["random".into(), "recent".into()],
        dir: std::env::temp_dir().join("apply_bench"),
        compact: true,
        upkeep: None,
        upkeep_changes: 1_000_000,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        let list = || value.split(',').map(str::to_owned).collect::<Vec<_>>();
        match argv[i].as_str() {
            "--rows" => a.rows = value.parse().expect("--rows N"),
            "--batch" => a.batch = value.parse().expect("--batch N"),
            "--batches" => a.batches = value.parse().expect("--batches N"),
            "--chunk" => a.chunk = value.parse().expect("--chunk N"),
            "--strategies" => a.strategies = list(),
            "--keys" => a.keys = list(),
            "--dir" => a.dir = value.into(),
            "--upkeep" => {
                a.upkeep = Some(if value == "full" {
                    u64::MAX
                } else {
                    value.parse().expect("--upkeep full|N")
                })
            }
            "--upkeep-changes" => a.upkeep_changes = value.parse().expect("--upkeep-changes N"),
            "--no-compact" => {
                a.compact = false;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Plain,
    Sorted,
    Bucket(u32),
}

#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// `DELETE … USING stage WHERE t.id = s.id`
    Join,
    /// `DELETE … WHERE id IN (SELECT id FROM stage)`
    InSelect,
    /// `DELETE … WHERE id IN (literal, …)`
    InList,
}

struct Strategy {
    name: String,
    layout: Layout,
    range: bool,
    form: Form,
}

fn strategy(name: &str) -> Strategy {
    let (name_base, form) = if let Some(b) = name.strip_suffix("-in") {
        (b, Form::InSelect)
    } else if let Some(b) = name.strip_suffix("-list") {
        (b, Form::InList)
    } else {
        (name, Form::Join)
    };
    let (base, range) = match name_base.strip_suffix("-range") {
        Some(b) => (b, true),
        None => (name_base, false),
    };
    let (layout, range) = match base {
        "plain" => (Layout::Plain, range),
        "range" => (Layout::Plain, true),
        "sorted" => (Layout::Sorted, true),
        b if b.starts_with("bucket") => (
            Layout::Bucket(b["bucket".len()..].parse().expect("bucketN")),
            range,
        ),
        other => panic!("unknown strategy {other}"),
    };
    Strategy {
        name: name.to_owned(),
        layout,
        range,
        form,
    }
}

const ROW: &str = "'user-' || id AS name, 'u' || id || '@example.com' AS email, \
                   (id % 97)::INTEGER AS score, TIMESTAMP '2026-01-01' + to_seconds(id) AS updated_at";

fn open(dir: &std::path::Path) -> Connection {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("SET autoinstall_known_extensions = false; LOAD ducklake;")
        .unwrap();
    conn.execute_batch(&format!(
        "ATTACH 'ducklake:{}' AS lake (DATA_PATH '{}', DATA_INLINING_ROW_LIMIT 0); USE lake;",
        dir.join("meta.ducklake").display(),
        dir.join("data").display()
    ))
    .unwrap();
    conn
}

/// The sink's own lake (for `--upkeep`, whose maintenance runs on it), or a bare connection.
enum Db {
    Bare(Connection),
    Sink(Box<ducklake_sink::lake::Lake>),
}

impl Db {
    fn conn(&self) -> &Connection {
        match self {
            Db::Bare(c) => c,
            Db::Sink(l) => l.connection(),
        }
    }
}

fn open_sink(dir: &std::path::Path, max_files: u64) -> Db {
    let _ = std::fs::remove_dir_all(dir);
    let lake = ducklake_sink::lake::Lake::open(ducklake_sink::lake::LakeSettings {
        connector: "apply_bench".into(),
        catalog: dir.join("meta.ducklake").display().to_string(),
        data_path: dir.join("data").display().to_string(),
        object_store: None,
        schema: "main".into(),
        evolution: ducklake_sink::shape::Evolution {
            auto_create: true,
            auto_evolve: true,
        },
        data_inlining_row_limit: 0,
        tuning: Default::default(),
        rewrite_delete_threshold: 0.1,
        maintenance_max_files: max_files,
    })
    .unwrap();
    Db::Sink(Box::new(lake))
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn live_files(conn: &Connection) -> (i64, i64) {
    (
        count(
            conn,
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_data_file WHERE end_snapshot IS NULL",
        ),
        count(
            conn,
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_delete_file WHERE end_snapshot IS NULL",
        ),
    )
}

fn delete_files_written(conn: &Connection) -> i64 {
    count(
        conn,
        "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_delete_file",
    )
}

/// Best of three full scans reading every column.
fn full_scan(conn: &Connection) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            let _: i64 = conn
                .query_row(
                    "SELECT count(*) + sum(score) + sum(length(name)) + sum(length(email)) \
                     + count(updated_at) FROM users",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// One batch of distinct keys with their op: 70% updates and 10% deletes of existing keys,
/// 20% inserts of new keys. `recent`: existing keys drawn from the newest 2% of the ids.
fn changes(
    rng: &mut rand::rngs::StdRng,
    next_id: &mut i64,
    deleted: &mut std::collections::HashSet<i64>,
    n: usize,
    recent: bool,
) -> Vec<(i64, bool)> {
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let window = if recent {
        (*next_id / 50).max(n as i64 * 2)
    } else {
        *next_id
    };
    while out.len() < n {
        let roll: f64 = rng.gen();
        if roll < 0.2 {
            let id = *next_id;
            *next_id += 1;
            seen.insert(id);
            out.push((id, true));
            continue;
        }
        let id = *next_id - 1 - rng.gen_range(0..window);
        if deleted.contains(&id) || !seen.insert(id) {
            continue;
        }
        let upsert = roll < 0.9;
        if !upsert {
            deleted.insert(id);
        }
        out.push((id, upsert));
    }
    out
}

fn apply(conn: &Connection, s: &Strategy, batch: &[(i64, bool)]) -> Duration {
    let t = Instant::now();
    conn.execute_batch(
        "BEGIN TRANSACTION; CREATE OR REPLACE TEMP TABLE keys (id BIGINT, up BOOLEAN);",
    )
    .unwrap();
    {
        let mut app = conn
            .appender_to_catalog_and_db("keys", "temp", "main")
            .unwrap();
        for (id, up) in batch {
            app.append_row(params![id, up]).unwrap();
        }
        app.flush().unwrap();
    }
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE stage AS SELECT id, {ROW}, up FROM temp.main.keys"
    ))
    .unwrap();
    let range = if s.range {
        let (lo, hi) = batch
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), (id, _)| {
                (lo.min(*id), hi.max(*id))
            });
        format!(" AND t.id BETWEEN {lo} AND {hi}")
    } else {
        String::new()
    };
    let delete = match s.form {
        Form::Join => {
            format!("DELETE FROM users AS t USING temp.main.stage AS s WHERE t.id = s.id{range}")
        }
        Form::InSelect => {
            format!("DELETE FROM users AS t WHERE t.id IN (SELECT id FROM temp.main.stage){range}")
        }
        Form::InList => {
            let ids: Vec<String> = batch.iter().map(|(id, _)| id.to_string()).collect();
            format!(
                "DELETE FROM users AS t WHERE t.id IN ({}){range}",
                ids.join(",")
            )
        }
    };
    let staged = t.elapsed();
    if std::env::var_os("APPLY_BENCH_EXPLAIN").is_some() {
        let mut stmt = conn.prepare(&format!("EXPLAIN ANALYZE {delete}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        eprintln!("{}", plan.join("\n"));
        conn.execute_batch("ROLLBACK").unwrap();
        return t.elapsed();
    }
    conn.execute_batch(&delete).unwrap();
    let deleted = t.elapsed();
    conn.execute_batch(
        "INSERT INTO users SELECT id, name, email, score, updated_at FROM temp.main.stage WHERE up",
    )
    .unwrap();
    let inserted = t.elapsed();
    conn.execute_batch("COMMIT").unwrap();
    if std::env::var_os("APPLY_BENCH_STEPS").is_some() {
        eprintln!(
            "  stage {:?} delete {:?} insert {:?} commit {:?}",
            staged,
            deleted - staged,
            inserted - deleted,
            t.elapsed() - inserted
        );
    }
    t.elapsed()
}

fn main() {
    let a = args();
    println!(
        "rows {} | batch {} x {} | preload chunk {}",
        a.rows, a.batch, a.batches, a.chunk
    );
    println!(
        "| strategy | keys | changes/s | commit p50 ms | commit max ms | delete files written | live files (data/delete) | scan before ms | scan after ms | scan compacted ms | upkeep runs | upkeep max ms | upkeep total ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in &a.strategies {
        let s = strategy(name);
        let mut db = match a.upkeep {
            Some(n) => open_sink(&a.dir.join(&s.name), n),
            None => Db::Bare(open(&a.dir.join(&s.name))),
        };
        let conn = db.conn();
        conn.execute_batch(
            "CREATE TABLE users (id BIGINT, name VARCHAR, email VARCHAR, score INTEGER, updated_at TIMESTAMP)",
        )
        .unwrap();
        match s.layout {
            Layout::Plain => {}
            Layout::Sorted => conn
                .execute_batch("ALTER TABLE users SET SORTED BY (id)")
                .unwrap(),
            Layout::Bucket(n) => conn
                .execute_batch(&format!(
                    "ALTER TABLE users SET PARTITIONED BY (bucket({n}, id))"
                ))
                .unwrap(),
        }
        let load = Instant::now();
        let mut start = 0;
        while start < a.rows {
            let end = (start + a.chunk).min(a.rows);
            conn.execute_batch(&format!(
                "INSERT INTO users SELECT id, {ROW} FROM (SELECT range AS id FROM range({start}, {end}))"
            ))
            .unwrap();
            start = end;
        }
        eprintln!(
            "{}: preload {:?} files {:?}",
            s.name,
            load.elapsed(),
            live_files(conn)
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut next_id = a.rows;
        let mut deleted = std::collections::HashSet::new();
        for keys in &a.keys {
            let conn = db.conn();
            let before = full_scan(conn);
            let written_before = delete_files_written(conn);
            let mut lat = Vec::new();
            let mut upkeep = Vec::new();
            let mut since_upkeep = 0;
            let mut left = false;
            for _ in 0..a.batches {
                let batch = changes(
                    &mut rng,
                    &mut next_id,
                    &mut deleted,
                    a.batch,
                    keys == "recent",
                );
                lat.push(apply(db.conn(), &s, &batch));
                since_upkeep += batch.len();
                if let Db::Sink(lake) = &mut db {
                    lake.note_written("users");
                    if left || since_upkeep >= a.upkeep_changes {
                        let t = Instant::now();
                        let run = lake.maintain(None).unwrap();
                        upkeep.push(t.elapsed());
                        eprintln!(
                            "  upkeep {:?}: rewrote {} files, more {}",
                            t.elapsed(),
                            run.rewritten,
                            run.more
                        );
                        left = run.more;
                        if since_upkeep >= a.upkeep_changes {
                            since_upkeep = 0;
                        }
                    }
                }
            }
            let conn = db.conn();
            let upkeep_total: Duration = upkeep.iter().sum();
            let total: Duration = lat.iter().sum::<Duration>() + upkeep_total;
            lat.sort();
            let after = full_scan(conn);
            let (data, dels) = live_files(conn);
            let written = delete_files_written(conn) - written_before;
            let compacted = if a.compact {
                let t = Instant::now();
                conn.execute_batch(
                    "CALL ducklake_rewrite_data_files('lake', delete_threshold => 0.0);
                     CALL ducklake_merge_adjacent_files('lake');",
                )
                .unwrap();
                eprintln!(
                    "{} {}: compaction {:?} files {:?}",
                    s.name,
                    keys,
                    t.elapsed(),
                    live_files(conn)
                );
                format!("{:.0}", full_scan(conn).as_secs_f64() * 1e3)
            } else {
                "-".into()
            };
            let expected = count(conn, "SELECT count(*) - count(DISTINCT id) FROM users");
            assert_eq!(expected, 0, "duplicate keys after applying");
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {}/{} | {:.0} | {:.0} | {} | {} | {:.0} | {:.0} |",
                s.name,
                keys,
                (a.batch * a.batches) as f64 / total.as_secs_f64(),
                lat[lat.len() / 2].as_secs_f64() * 1e3,
                lat[lat.len() - 1].as_secs_f64() * 1e3,
                written,
                data,
                dels,
                before.as_secs_f64() * 1e3,
                after.as_secs_f64() * 1e3,
                compacted,
                upkeep.len(),
                upkeep.iter().max().unwrap_or(&Duration::ZERO).as_secs_f64() * 1e3,
                upkeep_total.as_secs_f64() * 1e3,
            );
        }
        drop(db);
        let _ = std::fs::remove_dir_all(a.dir.join(&s.name));
    }
}
