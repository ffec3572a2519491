//! Test support: a real tansu broker on a free loopback port, a lake folder per test, the
//! worker binary as a child process, and a DuckDB connection to read what it wrote.
//! Everything started here is stopped when its guard is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod debezium;
pub mod registry;
pub mod s3;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use duckdb::Connection;

pub const SINK: &str = env!("CARGO_BIN_EXE_ducklake-sink");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tansu_bin() -> PathBuf {
    let path = std::env::var_os("TANSU_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/ducklake-sink/bin/tansu")
        });
    assert!(
        path.exists(),
        "tansu not found at {}: run scripts/setup.sh first",
        path.display()
    );
    path
}

/// A tansu broker with in-memory storage, killed on drop.
pub struct Broker {
    child: Child,
    pub bootstrap: String,
}

impl Broker {
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let child = Command::new(tansu_bin())
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    "memory://tansu/",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start tansu");
            let mut broker = Broker {
                child,
                bootstrap: format!("127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(&broker.bootstrap).is_ok() {
                    return broker;
                }
                if broker.child.try_wait().unwrap().is_some() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = broker.child.kill();
        }
        panic!("tansu did not start");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder with a connector file and its lake (catalog + data).
pub struct LakeDir {
    pub dir: tempfile::TempDir,
    pub connector: PathBuf,
    pub name: String,
    pub catalog: String,
}

impl LakeDir {
    /// Writes a connector file for `topic`; `extra` adds or replaces config keys.
    pub fn new(name: &str, topic: &str, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config: BTreeMap<String, String> = [
            ("connector.class", "DuckLakeSink"),
            ("topics", topic),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("table.name.format", "${topic}"),
            ("auto.create", "true"),
            ("auto.evolve", "true"),
            ("flush.max.records", "2000"),
            ("flush.interval.ms", "500"),
            ("consumer.override.session.timeout.ms", "6000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        config.insert(
            "ducklake.catalog".into(),
            dir.path()
                .join("metadata/lake.ducklake")
                .display()
                .to_string(),
        );
        config.insert(
            "ducklake.data.path".into(),
            format!("{}/", dir.path().join("data").display()),
        );
        for (k, v) in extra {
            config.insert((*k).to_owned(), (*v).to_owned());
        }
        let catalog = config["ducklake.catalog"].clone();
        let connector = dir.path().join("connector.json");
        let doc = serde_json::json!({"name": name, "config": config});
        std::fs::write(&connector, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        LakeDir {
            dir,
            connector,
            name: name.to_owned(),
            catalog,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the lake. With a DuckDB-file catalog the worker must not be running (one
    /// process at a time); a PostgreSQL catalog can be read while workers write.
    pub fn open(&self) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("SET autoinstall_known_extensions = false; LOAD ducklake; LOAD icu")
            .unwrap();
        if self.catalog.starts_with("postgres:") {
            conn.execute_batch("LOAD postgres_scanner").unwrap();
        } else if self.catalog.starts_with("sqlite:") {
            conn.execute_batch("LOAD sqlite_scanner").unwrap();
        }
        conn.execute_batch(&format!(
            "ATTACH 'ducklake:{}' AS lake (DATA_PATH '{}/'); USE lake",
            self.catalog,
            self.path().join("data").display()
        ))
        .unwrap();
        conn
    }

    /// Lake offsets of this connector: partition → next offset, for one topic.
    pub fn offsets(&self, conn: &Connection, topic: &str) -> BTreeMap<i32, i64> {
        let mut stmt = conn
            // One row per flush: a partition's state is its highest next offset.
            .prepare("SELECT \"partition\", max(next_offset) FROM __ducklake_sink_offsets WHERE connector = ? AND topic = ? GROUP BY 1 HAVING max(next_offset) IS NOT NULL")
            .unwrap();
        stmt.query_map([&self.name, topic], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The worker as a child process; its stderr goes to a log file in the lake folder.
pub struct Worker {
    pub child: Child,
    pub log: PathBuf,
}

impl Worker {
    pub fn start(lake: &LakeDir, broker: &Broker, extra_args: &[&str]) -> Self {
        Self::start_with_env(lake, broker, extra_args, &[])
    }

    /// As [`start`](Self::start), with environment variables (test hooks).
    pub fn start_with_env(
        lake: &LakeDir,
        broker: &Broker,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let log = lake.path().join(format!("worker-{}.log", next_id()));
        let mut cmd = Command::new(SINK);
        cmd.arg("run")
            .arg("--bootstrap-servers")
            .arg(&broker.bootstrap)
            .args(["--http-addr", "127.0.0.1:0"]);
        cmd.args(extra_args).arg(&lake.connector);
        cmd.envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Worker {
            child: cmd.spawn().unwrap(),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// Waits for the worker to exit; panics with its log after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "worker did not exit within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "worker exited ({status}) before logging `{needle}`; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "worker did not log `{needle}` within {timeout:?}; log:\n{}",
            self.log_text()
        );
    }

    /// The address of the worker's HTTP listener (started with `--http-addr 127.0.0.1:0`).
    pub fn http_addr(&mut self) -> String {
        self.wait_for_log("http listener", Duration::from_secs(60));
        self.log_text()
            .lines()
            .find(|l| l.contains("http listener"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces raw values (`None`: a tombstone) to partition 0 of `topic`, in order.
pub fn produce_raw(bootstrap: &str, topic: &str, values: &[Option<&str>]) {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    use rdkafka::ClientConfig;
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for v in values {
        let mut r: BaseRecord<'_, str, str> = BaseRecord::to(topic).partition(0);
        if let Some(v) = v {
            r = r.payload(v);
        }
        producer.send(r).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Produces keyed records (`None` value: a tombstone) to one partition of `topic`, in order.
pub fn produce_keyed(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(Option<String>, Option<String>)],
) {
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    use rdkafka::ClientConfig;
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (k, v) in records {
        let mut r: BaseRecord<'_, str, str> = BaseRecord::to(topic).partition(partition);
        if let Some(k) = k {
            r = r.key(k.as_str());
        }
        if let Some(v) = v {
            r = r.payload(v.as_str());
        }
        producer.send(r).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// `GET path` on `addr`: status and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http(addr, "GET", path);
    (status, body)
}

/// `METHOD path` (no body) on `addr`, one request per connection: status, the header block
/// (lowercased names) and the body.
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String, String) {
    http_with_body(addr, method, path, "")
}

/// [`http`] with a JSON request body.
pub fn http_with_body(addr: &str, method: &str, path: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(330)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let head = head
        .lines()
        .skip(1)
        .map(|l| match l.split_once(':') {
            Some((k, v)) => format!("{}:{}", k.to_ascii_lowercase(), v),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    (status, head, body.to_owned())
}

/// The value of one sample of a Prometheus text page: `series` is `name{labels}` (or `name`),
/// its labels matched in any order (the exposition format does not fix their order).
pub fn sample(page: &str, series: &str) -> Option<f64> {
    let want = parse_series(series)?;
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (s, value) = l.rsplit_once(' ')?;
            (parse_series(s)? == want).then_some(value)
        })
        .and_then(|v| v.parse().ok())
}

/// `name{k="v",...}` as the name and its labels sorted by name (values unescaped).
pub fn parse_series(s: &str) -> Option<(String, Vec<(String, String)>)> {
    let Some((name, rest)) = s.split_once('{') else {
        return Some((s.to_owned(), Vec::new()));
    };
    let mut labels = Vec::new();
    let mut chars = rest.chars();
    loop {
        let mut key = String::new();
        for c in chars.by_ref() {
            match c {
                '=' => break,
                '}' if key.is_empty() => {
                    labels.sort();
                    return Some((name.to_owned(), labels));
                }
                ',' => {}
                c => key.push(c),
            }
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key, value));
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Exact row count of a table, read while workers may be running (PostgreSQL catalog).
pub fn lake_count(lake: &LakeDir, table: &str) -> i64 {
    let conn = lake.open();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or(0)
}

/// Waits until `table` holds `n` rows (PostgreSQL catalog, workers running).
pub fn wait_for_rows(lake: &LakeDir, table: &str, n: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = -1;
    while Instant::now() < deadline {
        last = lake_count(lake, table);
        if last >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("{table} has {last} rows after {timeout:?}, expected {n}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/setup.sh",
        )
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join(name).exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("no PostgreSQL bin directory").join(name)
}

/// A private PostgreSQL cluster on a free loopback port (initdb + pg_ctl, as the `postgres`
/// user when running as root), with a database `lake`; stopped on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    /// Extra server settings (`name=value`), passed as `-c` on every start.
    settings: Vec<String>,
}

impl Postgres {
    fn as_pg(program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A cluster that Debezium can read: `wal_level=logical` (replication slots and
    /// senders keep PostgreSQL's defaults, 10 each).
    pub fn start_logical() -> Self {
        Self::start_with(&["wal_level=logical"])
    }

    /// A cluster started with extra server settings (`name=value`).
    pub fn start_with(settings: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            assert!(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success());
        }
        let data = dir.path().join("data");
        let out = Self::as_pg(&pg_bin("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            dir,
            port: free_port(),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
        };
        pg.start_server();
        let out = Command::new(pg_bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE lake",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    /// Starts the server again (after [`stop_server`](Self::stop_server)) on the same port.
    pub fn start_server(&self) {
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        for setting in &self.settings {
            opts.push_str(" -c ");
            opts.push_str(setting);
        }
        let out = Self::as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("pg.log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop_server(&self) {
        let _ = Self::as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output();
    }

    /// Runs SQL (one or more statements, in one `psql -c`, so in one transaction unless it
    /// says otherwise) against database `db`; returns the rows, unaligned, `|`-separated.
    /// Panics with psql's message when a statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(pg_bin("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a SQL script (psql meta-commands allowed) through one psql session fed on stdin,
    /// stopping at the first error.
    pub fn psql_script(&self, db: &str, script: &str) {
        use std::io::Write;
        let mut child = Command::new(pg_bin("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-f",
                "-",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A failing statement stops psql early: the broken pipe is then not the error to
        // report, psql's message is.
        let _ = child.stdin.take().unwrap().write_all(script.as_bytes());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "psql script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The `ducklake.catalog` value for this cluster.
    pub fn catalog(&self) -> String {
        format!(
            "postgres:dbname=lake host=127.0.0.1 port={} user=postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Self::as_pg(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Tests of one binary that time outages and pauses on a 2-core machine take this first, so
/// they run one at a time (a test that panicked while holding it does not block the rest).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Produces `count` schemaless orders (ids from 1, 500 customers) at `rate`/s on a background
/// thread.
pub fn produce_orders_in_background(
    broker: &Broker,
    topic: &str,
    count: u64,
    rate: f64,
    seed: u64,
) -> std::thread::JoinHandle<ducklake_sink::gen::ProduceReport> {
    let opts = ducklake_sink::gen::OrdersOptions {
        bootstrap_servers: broker.bootstrap.clone(),
        topic: topic.into(),
        count,
        rate: Some(rate),
        seed,
        partitions: None,
        start_id: 1,
        customers: 500,
        with_schema: false,
        schema_registry: None,
    };
    std::thread::spawn(move || {
        runtime()
            .block_on(ducklake_sink::gen::produce_orders(&opts))
            .unwrap()
    })
}
