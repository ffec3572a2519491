//! Real Debezium for tests: Debezium 3.6.3's PostgreSQL connector in the embedded engine
//! (`scripts/debezium_bridge.py`, the venv made by `scripts/setup.sh`), reading a private
//! PostgreSQL cluster started with [`Postgres::start_logical`] and producing every change event
//! to a test [`Broker`] exactly as Debezium serialized it (tombstones included).
//!
//! [`Debezium`] returns once the connector streams (the initial snapshot has been read), and
//! the bridge process is killed when the guard drops. [`read_topic`] reads what it produced.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Broker, Postgres};

/// The bridge script in this checkout.
pub fn bridge_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debezium_bridge.py")
}

/// The venv python the scripts use: `$DBZ_PYTHON`, else `$DUCKLAKE_SINK_CACHE/venv`, else
/// `$HOME/.cache/ducklake-sink/venv` (as `scripts/env.sh` sets it).
pub fn dbz_python() -> PathBuf {
    let path = std::env::var_os("DBZ_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("DUCKLAKE_SINK_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                        .join(".cache/ducklake-sink")
                });
            cache.join("venv/bin/python")
        });
    assert!(
        path.exists(),
        "the Debezium bridge's python is not at {}: run scripts/setup.sh first",
        path.display()
    );
    path
}

/// How Debezium serializes keys and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Kafka Connect's `JsonConverter`, `schemas.enable=true`: `{"schema":…,"payload":…}`.
    Json,
    /// `JsonConverter` with `schemas.enable=false`: the payload alone.
    JsonNoSchema,
    /// Confluent's `AvroConverter` against a schema registry at this URL.
    Avro { registry: String },
}

impl Format {
    fn arg(&self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::JsonNoSchema => "json-noschema",
            Format::Avro { .. } => "avro",
        }
    }
}

/// What to run Debezium on; start it with [`DebeziumBuilder::start`].
pub struct DebeziumBuilder<'a> {
    pg: &'a Postgres,
    db: String,
    broker: &'a Broker,
    topic_prefix: String,
    tables: Vec<String>,
    format: Format,
    snapshot_mode: String,
    partitions: u32,
    slot: String,
    offset_file: Option<PathBuf>,
    props: Vec<(String, String)>,
    ready_timeout: Duration,
}

impl DebeziumBuilder<'_> {
    /// `table.include.list` entries, `schema.table`.
    pub fn tables(mut self, tables: &[&str]) -> Self {
        self.tables = tables.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// `snapshot.mode` (default `initial`).
    pub fn snapshot_mode(mut self, mode: &str) -> Self {
        self.snapshot_mode = mode.to_owned();
        self
    }

    /// Partitions of the topics the bridge creates (default 1; 0: the broker's
    /// auto-creation, 4 partitions on tansu).
    pub fn partitions(mut self, n: u32) -> Self {
        self.partitions = n;
        self
    }

    /// Replication slot (default `dbz_<topic prefix>`).
    pub fn slot(mut self, slot: &str) -> Self {
        self.slot = slot.to_owned();
        self
    }

    /// Debezium's offsets file; pass the one of an earlier run to resume where it stopped.
    /// By default each start gets a new file in its own folder.
    pub fn offset_file(mut self, path: &Path) -> Self {
        self.offset_file = Some(path.to_owned());
        self
    }

    /// Any other engine, connector or converter property, e.g.
    /// `("skipped.operations", "none")` to get truncate events.
    pub fn prop(mut self, key: &str, value: &str) -> Self {
        self.props.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Spawns the bridge and waits for its `ready` line (the connector streams); panics with
    /// the bridge's log if it exits or times out first.
    pub fn start(self) -> Debezium {
        let dir = tempfile::tempdir().unwrap();
        let offset_file = self
            .offset_file
            .clone()
            .unwrap_or_else(|| dir.path().join("offsets.dat"));
        let log = dir.path().join("bridge.log");
        let mut cmd = Command::new(dbz_python());
        cmd.arg(bridge_script())
            .args(["--pg-host", "127.0.0.1", "--pg-user", "postgres"])
            .args(["--pg-port", &self.pg.port.to_string()])
            .args(["--pg-dbname", &self.db])
            .args(["--slot", &self.slot])
            .args(["--topic-prefix", &self.topic_prefix])
            .arg("--offset-file")
            .arg(&offset_file)
            .args(["--bootstrap-servers", &self.broker.bootstrap])
            .args(["--format", self.format.arg()])
            .args(["--snapshot-mode", &self.snapshot_mode])
            .args(["--partitions", &self.partitions.to_string()])
            .args(["--ready-timeout", &self.ready_timeout.as_secs().to_string()]);
        if !self.tables.is_empty() {
            cmd.args(["--tables", &self.tables.join(",")]);
        }
        if let Format::Avro { registry } = &self.format {
            cmd.args(["--schema-registry", registry]);
        }
        for (k, v) in &self.props {
            cmd.arg("--prop").arg(format!("{k}={v}"));
        }
        // The working directory is the bridge's folder: nothing lands in the checkout.
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn the Debezium bridge");
        let stdout = child.stdout.take().unwrap();
        let mut debezium = Debezium {
            child,
            dir,
            log,
            offset_file,
            topic_prefix: self.topic_prefix.clone(),
            startup: Duration::ZERO,
        };
        let lines = stdout_lines(stdout);
        // A margin over the bridge's own timeout, which reports more precisely.
        let deadline = started + self.ready_timeout + Duration::from_secs(30);
        loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with("ready") => break,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() > deadline {
                        let _ = debezium.child.kill();
                        panic!(
                            "the Debezium bridge was not ready within {:?}; log:\n{}",
                            self.ready_timeout,
                            debezium.log_text()
                        );
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = debezium.child.wait().unwrap();
                    panic!(
                        "the Debezium bridge exited ({status}) before it was ready; log:\n{}",
                        debezium.log_text()
                    );
                }
            }
        }
        debezium.startup = started.elapsed();
        debezium
    }
}

/// `dbz_<prefix>` in the only characters PostgreSQL allows in a slot name (lowercase
/// letters, digits, `_`).
fn slot_name(topic_prefix: &str) -> String {
    let clean: String = topic_prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("dbz_{clean}")
}

/// Reads stdout lines on a thread, so waiting for `ready` can time out; the thread ends with
/// the process.
fn stdout_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running Debezium bridge; SIGKILLed on drop if still running (use [`Debezium::stop`] for
/// a clean stop that records the source offsets).
pub struct Debezium {
    child: Child,
    dir: tempfile::TempDir,
    pub log: PathBuf,
    pub offset_file: PathBuf,
    pub topic_prefix: String,
    /// From spawning the process to its `ready` line (JVM start, connector start, snapshot).
    pub startup: Duration,
}

impl Debezium {
    /// Debezium on database `db` of `pg`, producing to `broker` under `topic_prefix`:
    /// JSON with schemas, snapshot `initial`, 1-partition topics, slot `dbz_<prefix>`.
    pub fn builder<'a>(
        pg: &'a Postgres,
        db: &str,
        broker: &'a Broker,
        topic_prefix: &str,
    ) -> DebeziumBuilder<'a> {
        DebeziumBuilder {
            pg,
            db: db.to_owned(),
            broker,
            topic_prefix: topic_prefix.to_owned(),
            tables: Vec::new(),
            format: Format::Json,
            snapshot_mode: "initial".into(),
            partitions: 1,
            slot: slot_name(topic_prefix),
            offset_file: None,
            props: Vec::new(),
            ready_timeout: Duration::from_secs(120),
        }
    }

    /// The topic Debezium writes `schema.table` to.
    pub fn topic(&self, table: &str) -> String {
        format!("{}.{table}", self.topic_prefix)
    }

    pub fn log_text(&self) -> String {
        let mut s = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut s));
        s
    }

    /// SIGTERM, then waits: the engine stops, commits its offsets, the producer flushes.
    /// Panics with the log if it takes longer than `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.child.try_wait().unwrap() {
            return status;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the Debezium bridge did not stop within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the bridge is still running (it exits on any failure).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Debezium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One record as it sits in the topic.
#[derive(Clone, Debug)]
pub struct Event {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Event {
    pub fn key_json(&self) -> Option<serde_json::Value> {
        self.key
            .as_deref()
            .map(|k| serde_json::from_slice(k).unwrap())
    }

    pub fn value_json(&self) -> Option<serde_json::Value> {
        self.value
            .as_deref()
            .map(|v| serde_json::from_slice(v).unwrap())
    }

    /// The value's envelope: `payload` when the JSON carries a schema, else the value.
    pub fn envelope(&self) -> Option<serde_json::Value> {
        self.value_json().map(unwrap_payload)
    }

    /// The key's fields, schema wrapper removed.
    pub fn key_payload(&self) -> Option<serde_json::Value> {
        self.key_json().map(unwrap_payload)
    }

    /// `op` of the envelope (`r`, `c`, `u`, `d`, `t`); `None` for a tombstone.
    pub fn op(&self) -> Option<String> {
        self.envelope()
            .and_then(|e| e.get("op").and_then(|o| o.as_str().map(str::to_owned)))
    }

    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn unwrap_payload(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(mut m)
            if m.contains_key("schema") && m.contains_key("payload") =>
        {
            m.remove("payload").unwrap()
        }
        other => other,
    }
}

/// Partition count of `topic` as the broker reports it.
pub fn partition_count(bootstrap: &str, topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    md.topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0)
}

/// Reads `topic` from the beginning of every partition until `n` records have arrived (then
/// `settle` more, to catch extra records), sorted by partition and offset. Panics after
/// `timeout` with what it read. Partitions are assigned, not subscribed: no consumer group
/// (tansu answers a first JoinGroup slowly).
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    n: usize,
    settle: Duration,
    timeout: Duration,
) -> Vec<Event> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("read-{topic}"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let partitions = loop {
        let p = partition_count(bootstrap, topic);
        if p > 0 {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} does not exist after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut events = Vec::new();
    let mut settle_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if settle_until.is_some_and(|t| now > t) {
            break;
        }
        if now > deadline {
            panic!(
                "read {} of {n} records from {topic} within {timeout:?}: {:#?}",
                events.len(),
                summary(&events)
            );
        }
        if let Some(msg) = consumer.poll(Duration::from_millis(100)) {
            let m = msg.unwrap();
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            events.push(Event {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
            });
            if events.len() >= n && settle_until.is_none() {
                settle_until = Some(Instant::now() + settle);
            }
        }
    }
    events.sort_by_key(|e| (e.partition, e.offset));
    events
}

/// `(op or "tombstone", key payload)` per event, for assertion messages.
pub fn summary(events: &[Event]) -> Vec<(String, Option<serde_json::Value>)> {
    events
        .iter()
        .map(|e| {
            (
                e.op().unwrap_or_else(|| "tombstone".into()),
                e.key_payload(),
            )
        })
        .collect()
}
