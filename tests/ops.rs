//! Operating the sink the way users do, checked with the real tools: `promtool` on the
//! Prometheus config and the alert rules (and their unit tests), Debian's `docker-compose` on
//! the compose files, the Dockerfile's COPY sources, a real Prometheus scraping a running
//! worker through its HTTP API, and every metric the Grafana dashboard and the alerts query
//! present in a real scrape. `scripts/setup.sh` installs `prometheus` and `docker-compose`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use ducklake_sink::gen::{create_topic, produce_orders, OrdersOptions, ProduceReport};
use support::{http_get, parse_series, produce_keyed, runtime, sample, Broker, LakeDir, Worker};

const MINUTE: Duration = Duration::from_secs(60);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn docker_dir() -> PathBuf {
    repo().join("docker")
}

/// A program from PATH; panics naming the setup script when it is missing.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("`{name}` not found on PATH: run scripts/setup.sh first"))
}

/// Runs `cmd` and panics with its output unless it succeeds; returns its stdout.
fn run_ok(cmd: &mut Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(
        status.success(),
        "{cmd:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

fn orders(broker: &Broker, topic: &str, count: u64, partitions: i32) -> ProduceReport {
    runtime()
        .block_on(produce_orders(&OrdersOptions {
            bootstrap_servers: broker.bootstrap.clone(),
            topic: topic.into(),
            count,
            rate: None,
            seed: 11,
            partitions: Some(partitions),
            start_id: 1,
            customers: 100,
            with_schema: false,
            schema_registry: None,
        }))
        .unwrap()
}

/// Names of `ducklake_sink_*` metrics in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    const PREFIX: &str = "ducklake_sink_";
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        let tail = &rest[at..];
        let len = PREFIX.len()
            + tail[PREFIX.len()..]
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len() - PREFIX.len());
        // `__ducklake_sink_offsets` and the like are tables, not metrics.
        let preceded_by_word = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded_by_word {
            names.insert(tail[..len].trim_end_matches('_').to_owned());
        }
        rest = &tail[len..];
    }
    names
}

/// Whether a Prometheus text page has samples of `name` (a histogram's name counts when its
/// `_bucket` series are there).
fn scraped(page: &str, name: &str) -> bool {
    let has = |n: &str| {
        page.lines().any(|l| {
            l.strip_prefix(n)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
    };
    has(name) || has(&format!("{name}_bucket"))
}

/// The expressions of the Grafana dashboard: panel targets and template variable queries.
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition" | "query", serde_json::Value::String(s)) => {
                        out.push(s.clone());
                    }
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

#[test]
fn promtool_accepts_the_prometheus_config_the_alert_rules_and_their_unit_tests() {
    let promtool = tool("promtool");
    // prometheus.yml names alerts.yml relative to itself, as it is mounted in the containers.
    let out = run_ok(Command::new(&promtool).current_dir(docker_dir()).args([
        "check",
        "config",
        "prometheus.yml",
    ]));
    assert!(out.contains("1 rule files found"), "{out}");
    let out = run_ok(Command::new(&promtool).current_dir(repo()).args([
        "check",
        "rules",
        "docker/alerts.yml",
    ]));
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_ok(Command::new(&promtool).current_dir(repo()).args([
        "test",
        "rules",
        "docker/alerts.test.yml",
    ]));
    assert!(out.contains("SUCCESS"), "{out}");

    // Every alert has a unit test.
    let rules = std::fs::read_to_string(docker_dir().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(docker_dir().join("alerts.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 5, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "alert {alert} has no test in docker/alerts.test.yml"
        );
    }
}

#[test]
fn compose_files_are_valid_and_mount_and_build_what_the_repository_has() {
    let compose = tool("docker-compose");
    let root = repo().canonicalize().unwrap();
    let mut builds = BTreeSet::new();
    for file in ["docker/compose.redpanda.yml", "docker/compose.cdc.yml"] {
        run_ok(
            Command::new(&compose)
                .current_dir(repo())
                .args(["-f", file, "config", "-q"]),
        );
        // The resolved form names bind-mount sources and build contexts as absolute paths.
        let resolved = run_ok(
            Command::new(&compose)
                .current_dir(repo())
                .args(["-f", file, "config"]),
        );
        let mut context = None;
        for line in resolved.lines().map(str::trim) {
            if let Some(c) = line.strip_prefix("context: ") {
                context = Some(PathBuf::from(c));
            } else if let Some(d) = line.strip_prefix("dockerfile: ") {
                builds.insert((
                    context.take().expect("dockerfile without context"),
                    d.to_owned(),
                ));
            } else if let Some(item) = line.strip_prefix("- ") {
                let source = item.split(':').next().unwrap();
                if Path::new(source).starts_with(&root) {
                    assert!(Path::new(source).exists(), "{file} mounts missing {source}");
                } else if let Some(name) = item.strip_prefix("/config/") {
                    // Connector files are mounted from connector-config/ at /config.
                    assert!(
                        root.join("connector-config").join(name).is_file(),
                        "{file} runs /config/{name}, not in connector-config/"
                    );
                }
            }
        }
    }
    assert!(!builds.is_empty(), "no build in the compose files");

    // Each Dockerfile the compose files build copies only paths that exist in its context.
    for (context, dockerfile) in builds {
        let text = std::fs::read_to_string(context.join(&dockerfile)).unwrap();
        let mut copies = 0;
        for instruction in text
            .replace("\\\n", " ")
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
        {
            let mut words = instruction.split_whitespace();
            let Some(verb) = words.next() else { continue };
            if !(verb.eq_ignore_ascii_case("COPY") || verb.eq_ignore_ascii_case("ADD")) {
                continue;
            }
            let args: Vec<&str> = words.collect();
            // --from=STAGE copies from another image, not from the context.
            if args.iter().any(|a| a.starts_with("--from=")) {
                continue;
            }
            let args: Vec<String> = if args.first().is_some_and(|a| a.starts_with('[')) {
                serde_json::from_str(&args.join(" ")).unwrap()
            } else {
                args.iter()
                    .filter(|a| !a.starts_with("--"))
                    .map(|a| (*a).to_owned())
                    .collect()
            };
            let (_dest, sources) = args.split_last().expect("COPY without arguments");
            assert!(!sources.is_empty(), "{dockerfile}: `{instruction}`");
            for source in sources {
                assert!(
                    !source.contains("://"),
                    "{dockerfile}: remote ADD source {source}"
                );
                let path = context.join(source.trim_start_matches('/'));
                let exists = if source.contains(['*', '?', '[']) {
                    path.parent().is_some_and(Path::exists)
                } else {
                    path.exists()
                };
                assert!(
                    exists,
                    "{dockerfile}: `{instruction}` copies {source}, missing in {}",
                    context.display()
                );
                copies += 1;
            }
        }
        assert!(copies > 0, "{dockerfile} copies nothing from its context");
    }
}

/// A Prometheus server on a free loopback port with its own storage, killed on drop.
struct Prometheus {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with docker/prometheus.yml and docker/alerts.yml, the scrape target
    /// replaced by `target` and the intervals shortened to one second.
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(docker_dir().join("prometheus.yml")).unwrap();
        assert!(config.contains("\"sink:8083\""), "{config}");
        let config = config
            .replace("\"sink:8083\"", &format!("\"{target}\""))
            .replace("scrape_interval: 5s", "scrape_interval: 1s")
            .replace("evaluation_interval: 5s", "evaluation_interval: 1s");
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        std::fs::copy(
            docker_dir().join("alerts.yml"),
            dir.path().join("alerts.yml"),
        )
        .unwrap();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new(tool("prometheus"))
                .current_dir(dir.path())
                .arg("--config.file=prometheus.yml")
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/-/ready").0 == 200 {
                    return Prometheus { child, addr, dir };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Lost the port to someone else (or too slow): try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "prometheus did not start; log:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through the HTTP API: each result's labels and value.
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let (status, body) = get(
            &self.addr,
            &format!("/api/v1/query?query={}", encode(promql)),
        );
        assert_eq!(status, 200, "{promql}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["status"], "success", "{promql}: {body}");
        doc["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The value of a query with exactly one result.
    fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [(_, v)] => Some(*v),
            _ => None,
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` with HTTP/1.0, so the server closes the connection after one response
/// (Prometheus keeps HTTP/1.1 connections open).
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return (0, String::new());
    }
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_the_worker_and_sees_it_drain() {
    let broker = Broker::start();
    // Maintenance every 2 s, so the data-file gauge the dashboard plots has a value.
    let lake = LakeDir::new(
        "ops-prom",
        "orders",
        &[
            ("flush.max.records", "5000"),
            ("ducklake.maintenance.interval.ms", "2000"),
        ],
    );
    let started = Instant::now();
    let report = orders(&broker, "orders", 20_000, 4);
    assert_eq!(report.sent, 20_000);

    let mut worker = Worker::start(&lake, &broker, &[]);
    let target = worker.http_addr();
    let prometheus = Prometheus::start(&target);

    let conn = r#"connector="ops-prom""#;
    let checks = [
        (r#"up{job="ducklake-sink"}"#.to_owned(), 1.0),
        (format!("count(ducklake_sink_consumer_lag{{{conn}}})"), 4.0),
        (format!("sum(ducklake_sink_consumer_lag{{{conn}}})"), 0.0),
        (
            format!("sum(ducklake_sink_rows_written_total{{{conn}}})"),
            20_000.0,
        ),
        (format!("ducklake_sink_connector_running{{{conn}}}"), 1.0),
    ];
    let deadline = Instant::now() + 2 * MINUTE;
    let mut seen: Vec<Option<f64>> = Vec::new();
    while Instant::now() < deadline {
        seen = checks.iter().map(|(q, _)| prometheus.value(q)).collect();
        if checks
            .iter()
            .zip(&seen)
            .all(|((_, want), got)| *got == Some(*want))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for ((query, want), got) in checks.iter().zip(&seen) {
        assert_eq!(
            *got,
            Some(*want),
            "{query}: Prometheus says {got:?}, want {want}\nworker log:\n{}\nprometheus log:\n{}",
            worker.log_text(),
            prometheus.log()
        );
    }
    // Prometheus's count agrees with the worker's own page.
    let page = http_get(&target, "/metrics").1;
    assert!(
        page.contains(
            "ducklake_sink_rows_written_total{connector=\"ops-prom\",table=\"orders\"} 20000"
        ),
        "{page}"
    );

    // Every committed record's age at its commit is in the freshness histogram, and none is
    // older than the test: its p99 (read the way the dashboard does) and mean are plausible.
    let wall = started.elapsed().as_secs_f64();
    let record_freshness =
        |suffix: &str| format!("sum(ducklake_sink_record_freshness_seconds{suffix}{{{conn}}})");
    let deadline = Instant::now() + Duration::from_secs(20);
    while prometheus.value(&record_freshness("_count")) != Some(20_000.0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        prometheus.value(&record_freshness("_count")),
        Some(20_000.0)
    );
    let mean = prometheus.value(&record_freshness("_sum")).unwrap() / 20_000.0;
    assert!(
        mean > 0.0 && mean <= wall,
        "mean record age {mean} s, test ran {wall} s"
    );
    let p99 = prometheus
        .value(&format!(
            "histogram_quantile(0.99, sum by (le) (ducklake_sink_record_freshness_seconds_bucket{{{conn}}}))"
        ))
        .unwrap();
    // The quantile is interpolated inside its bucket: bounded by the first bound past `wall`.
    let page = http_get(&target, "/metrics").1;
    let bounds: Vec<f64> = page
        .lines()
        .filter(|l| l.starts_with("ducklake_sink_record_freshness_seconds_bucket{"))
        .filter_map(|l| {
            let (series, _) = l.rsplit_once(' ')?;
            let (_, labels) = parse_series(series)?;
            labels.into_iter().find(|(k, _)| k == "le")?.1.parse().ok()
        })
        .collect();
    let cap = bounds
        .iter()
        .copied()
        .filter(|b| *b >= wall)
        .fold(f64::INFINITY, f64::min);
    assert!(
        p99 > 0.0 && p99 <= cap,
        "p99 {p99} s, test ran {wall} s, bounds {bounds:?}"
    );
    eprintln!("record age at commit: p99 {p99:.2} s, mean {mean:.2} s; test ran {wall:.1} s");
    if cap.is_finite() {
        assert_eq!(
            sample(
                &page,
                &format!(
                    r#"ducklake_sink_record_freshness_seconds_bucket{{connector="ops-prom",topic="orders",le="{cap}"}}"#
                )
            ),
            Some(20_000.0),
            "{page}"
        );
    }

    // The alert rules loaded and evaluate cleanly against real series; a drained, running
    // worker fires none of them.
    let (status, body) = get(&prometheus.addr, "/api/v1/rules");
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rules: Vec<&serde_json::Value> = doc["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    let expected = std::fs::read_to_string(docker_dir().join("alerts.yml"))
        .unwrap()
        .matches("- alert: ")
        .count();
    assert_eq!(rules.len(), expected, "{body}");
    let deadline = Instant::now() + MINUTE;
    while rules_evaluated(&prometheus) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        rules_evaluated(&prometheus),
        expected,
        "{}",
        get(&prometheus.addr, "/api/v1/rules").1
    );
    assert_eq!(
        prometheus.query(r#"ALERTS{alertstate="firing"}"#),
        vec![],
        "alerts fire on a healthy worker"
    );

    // Every dashboard query is valid PromQL that this Prometheus evaluates, with Grafana's
    // variables filled in as it would.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docker_dir().join("grafana/dashboards/ducklake-sink.json"))
            .unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    for q in queries.iter().filter(|q| !q.starts_with("label_values(")) {
        let promql = q
            .replace("$__rate_interval", "1m")
            .replace("$connector", "ops-prom");
        assert!(!promql.contains('$'), "unfilled variable in {q}");
        // Rates need two scrapes of a series; give them a few.
        let deadline = Instant::now() + Duration::from_secs(20);
        while prometheus.query(&promql).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(
            !prometheus.query(&promql).is_empty(),
            "{promql}: no data from a worker that ran"
        );
    }

    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
}

/// Rules that Prometheus has evaluated with health `ok`.
fn rules_evaluated(prometheus: &Prometheus) -> usize {
    let body = get(&prometheus.addr, "/api/v1/rules").1;
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    doc["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r["health"] == "ok")
        .count()
}

#[test]
fn every_metric_the_dashboard_and_alerts_query_is_in_a_real_scrape() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docker_dir().join("grafana/dashboards/ducklake-sink.json"))
            .unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    let mut wanted = BTreeSet::new();
    for q in &queries {
        wanted.extend(metric_names(q));
    }
    let dashboard_count = wanted.len();
    assert!(dashboard_count >= 10, "dashboard queries {wanted:?}");
    let alerts: String = std::fs::read_to_string(docker_dir().join("alerts.yml"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let alert_names = metric_names(&alerts);
    assert!(alert_names.len() >= 4, "alerts query {alert_names:?}");
    wanted.extend(alert_names);

    // Maintenance every second, so the data-file gauge it sets is there too.
    let broker = Broker::start();
    let lake = LakeDir::new(
        "ops-names",
        "orders",
        &[
            ("flush.max.records", "500"),
            ("ducklake.maintenance.interval.ms", "1000"),
        ],
    );
    orders(&broker, "orders", 2_000, 2);
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    let deadline = Instant::now() + MINUTE;
    let mut missing: Vec<&String> = wanted.iter().collect();
    let mut page = String::new();
    while !missing.is_empty() && Instant::now() < deadline {
        page = http_get(&addr, "/metrics").1;
        missing = wanted.iter().filter(|n| !scraped(&page, n)).collect();
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        missing.is_empty(),
        "queried by the dashboard or alerts but not in a scrape: {missing:?}\nscrape:\n{page}"
    );
}

/// The README's metrics table: name → (type, labels).
fn readme_metrics() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let table = readme
        .split("| metric | type | labels | meaning |")
        .nth(1)
        .expect("no metrics table in README.md");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let labels = cells[3].split(',').map(|s| s.trim().to_owned()).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                (cells[2].to_owned(), labels),
            )
        })
        .collect()
}

/// The families of a Prometheus text page: name → (type, the label names of each series,
/// without a histogram's `le`).
fn scraped_families(page: &str) -> BTreeMap<String, (String, BTreeSet<BTreeSet<String>>)> {
    let mut families: BTreeMap<String, (String, BTreeSet<BTreeSet<String>>)> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), (kind.to_owned(), BTreeSet::new())))
        .collect();
    for line in page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _) = line.rsplit_once(' ').unwrap();
        let (name, labels) = parse_series(series).unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| families.get(*base).is_some_and(|f| f.0 == "histogram"))
            .unwrap_or(&name)
            .to_owned();
        let names = labels
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "le")
            .collect();
        families
            .get_mut(&family)
            .unwrap_or_else(|| panic!("{name} has no # TYPE line:\n{page}"))
            .1
            .insert(names);
    }
    families
}

#[test]
fn the_readme_metrics_table_and_a_real_scrape_agree() {
    let documented = readme_metrics();
    assert!(documented.len() >= 20, "{documented:?}");

    // A CDC topic whose records take every path a metric counts: upserts, an update, a
    // delete and its tombstone, a truncate, a record that does not decode (set aside with
    // errors.tolerance=all); maintenance sets the data-file gauge.
    let broker = Broker::start();
    runtime()
        .block_on(create_topic(&broker.bootstrap, "users", 1))
        .unwrap();
    let key = |id: i64| Some(format!(r#"{{"id":{id}}}"#));
    let change = |op: &str, before: Option<i64>, after: Option<i64>| {
        let row = |id: Option<i64>| {
            id.map_or("null".to_owned(), |id| {
                format!(r#"{{"id":{id},"name":"n{id}"}}"#)
            })
        };
        Some(format!(
            r#"{{"before":{},"after":{},"op":"{op}","source":{{"db":"shop","table":"users"}},"ts_ms":1700000000000}}"#,
            row(before),
            row(after)
        ))
    };
    // In rounds, each committed before the next, so the delete is not folded into one flush
    // with the insert of its key, nor the truncate with anything.
    let rounds = vec![
        vec![
            (key(1), change("c", None, Some(1))),
            (key(2), change("c", None, Some(2))),
            (key(1), change("u", Some(1), Some(1))),
        ],
        vec![
            (key(2), change("d", Some(2), None)),
            (key(2), None),
            (
                None,
                Some(r#"{"before":null,"after":null,"op":"m","source":{"db":"shop","table":"users"},"message":{"prefix":"p","content":"eA=="}}"#.to_owned()),
            ),
            (key(4), Some("not json".to_owned())),
            (key(5), change("c", None, Some(5))),
        ],
        vec![(
            None,
            Some(r#"{"before":null,"after":null,"op":"t","source":{"db":"shop","table":"users"}}"#.to_owned()),
        )],
    ];
    let lake = LakeDir::new(
        "ops-readme",
        "users",
        &[
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("key.converter.schemas.enable", "false"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("delete.enabled", "true"),
            ("truncate.enabled", "true"),
            ("errors.tolerance", "all"),
            ("table.name.format", "${source.table}"),
            ("flush.max.records", "2"),
            ("ducklake.maintenance.interval.ms", "1000"),
        ],
    );
    let mut worker = Worker::start(&lake, &broker, &[]);
    let addr = worker.http_addr();
    let committed = |page: &str| -> f64 {
        ["written", "deleted", "skipped", "dead_lettered"]
            .iter()
            .filter_map(|o| {
                sample(
                    page,
                    &format!(
                        r#"ducklake_sink_records_committed_total{{connector="ops-readme",outcome="{o}"}}"#
                    ),
                )
            })
            .sum()
    };
    let mut total = 0.0;
    for round in &rounds {
        produce_keyed(&broker.bootstrap, "users", 0, round);
        total += round.len() as f64;
        let deadline = Instant::now() + MINUTE;
        while committed(&http_get(&addr, "/metrics").1) < total && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let deadline = Instant::now() + MINUTE;
    let mut page = String::new();
    let mut scraped = BTreeMap::new();
    while Instant::now() < deadline {
        page = http_get(&addr, "/metrics").1;
        scraped = scraped_families(&page);
        let all_there = documented
            .keys()
            .all(|n| scraped.get(n).is_some_and(|f| !f.1.is_empty()));
        if committed(&page) == total && all_there {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // The records took the paths the test meant them to.
    for (series, want) in [
        (
            r#"ducklake_sink_rows_deleted_total{connector="ops-readme",table="users"}"#,
            1.0,
        ),
        (
            r#"ducklake_sink_truncates_total{connector="ops-readme",table="users"}"#,
            1.0,
        ),
        (
            r#"ducklake_sink_records_skipped_total{connector="ops-readme",reason="logical decoding message"}"#,
            1.0,
        ),
        (
            r#"ducklake_sink_records_committed_total{connector="ops-readme",outcome="dead_lettered"}"#,
            1.0,
        ),
    ] {
        assert_eq!(
            sample(&page, series),
            Some(want),
            "{series}\n{page}\n{}",
            worker.log_text()
        );
    }
    let scraped_names: BTreeSet<&String> = scraped
        .keys()
        .filter(|n| n.starts_with("ducklake_sink_"))
        .collect();
    let documented_names: BTreeSet<&String> = documented.keys().collect();
    assert_eq!(
        scraped_names, documented_names,
        "metric names: scrape vs README table\n{page}"
    );
    for (name, (kind, labels)) in &documented {
        let (scraped_kind, series_labels) = &scraped[name];
        assert_eq!(scraped_kind, kind, "type of {name}");
        assert_eq!(
            series_labels,
            &BTreeSet::from([labels.clone()]),
            "labels of {name}: every series has exactly the README's labels"
        );
    }
    worker.signal("TERM");
    assert!(worker.wait(MINUTE).success(), "{}", worker.log_text());
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        metric_names(
            "sum by (connector) (rate(ducklake_sink_flush_duration_seconds_bucket{connector=~\"$c\"}[5m])) \
             / ducklake_sink_up __ducklake_sink_offsets"
        ),
        ["ducklake_sink_flush_duration_seconds_bucket", "ducklake_sink_up"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let page =
        "# TYPE ducklake_sink_x histogram\nducklake_sink_x_bucket{le=\"1\"} 0\nducklake_sink_y 1\n";
    assert!(scraped(page, "ducklake_sink_x"));
    assert!(scraped(page, "ducklake_sink_x_bucket"));
    assert!(scraped(page, "ducklake_sink_y"));
    assert!(!scraped(page, "ducklake_sink_z"));
    assert_eq!(encode("up{a=\"b\"}"), "up%7Ba%3D%22b%22%7D");
}
