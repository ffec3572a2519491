//! An S3-compatible object store for the tests: moto's server (`moto[server]` in the venv
//! that `scripts/setup.sh` makes) on a free loopback port, buckets created and listed through
//! boto3 — S3's own API, as any client sees it — and a TCP proxy between the sink and the
//! store that can take the store off the network for a while (connections refused, open ones
//! cut) while the store itself keeps its state.
#![allow(dead_code)]

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use duckdb::Connection;

use super::debezium::dbz_python;
use super::{free_port, LakeDir};

/// Credentials the tests give the sink. moto (without `INITIAL_NO_AUTH_ACTION_COUNT`) accepts
/// any; the sink must still sign its requests with them.
pub const KEY_ID: &str = "AKIAMOTOTESTKEY";
pub const SECRET: &str = "motoTestSecretAccessKey";

/// moto's S3 server, killed on drop (its state is in memory and goes with it).
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// A server that checks credentials after its first `free_actions` requests
    /// (moto's `INITIAL_NO_AUTH_ACTION_COUNT`): only keys made through its IAM API work then.
    pub fn start_with_auth(free_actions: u32) -> Self {
        Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", &free_actions.to_string())])
    }

    fn start_with_env(env: &[(&str, &str)]) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(dbz_python())
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto_server (run scripts/setup.sh)");
            let mut moto = Moto { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return moto;
                }
                if moto.child.try_wait().unwrap().is_some() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = moto.child.kill();
            let _ = moto.child.wait();
        }
        panic!("moto_server did not start");
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` through S3's API (boto3).
    pub fn create_bucket(&self, bucket: &str) {
        self.boto3(&format!("s3.create_bucket(Bucket={bucket:?})"));
    }

    /// Every object key in `bucket` under `prefix`, sorted (boto3's paginated ListObjectsV2).
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.boto3(&format!(
            "for page in s3.get_paginator('list_objects_v2').paginate(Bucket={bucket:?}, Prefix={prefix:?}):\n    for o in page.get('Contents', []):\n        print(o['Key'])"
        ));
        let mut keys: Vec<String> = out.lines().map(str::to_owned).collect();
        keys.sort();
        keys
    }

    fn boto3(&self, code: &str) -> String {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='http://{}', aws_access_key_id={KEY_ID:?}, aws_secret_access_key={SECRET:?}, region_name='us-east-1')\n{code}\n",
            self.endpoint()
        );
        let out = Command::new(dbz_python())
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3 `{code}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The connector keys of a lake whose data lives at `s3://bucket/prefix/` behind `endpoint`
/// (`host:port`, plain HTTP, path-style addressing), with the tests' credentials.
pub fn s3_keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    [
        ("ducklake.data.path", format!("s3://{bucket}/{prefix}/")),
        ("ducklake.s3.endpoint", endpoint.to_owned()),
        ("ducklake.s3.url.style", "path".to_owned()),
        ("ducklake.s3.use.ssl", "false".to_owned()),
        ("ducklake.s3.region", "us-east-1".to_owned()),
        ("ducklake.s3.access.key.id", KEY_ID.to_owned()),
        ("ducklake.s3.secret.access.key", SECRET.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Opens a lake whose data is on the store (the worker must not be running: DuckDB-file
/// catalog), through DuckDB's own S3 client with its own secret.
pub fn open_lake(lake: &LakeDir, endpoint: &str, data_path: &str) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "SET autoinstall_known_extensions = false; LOAD ducklake; LOAD icu; LOAD httpfs;
         CREATE SECRET test_store (TYPE s3, KEY_ID '{KEY_ID}', SECRET '{SECRET}', REGION 'us-east-1',
             ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false);
         ATTACH 'ducklake:{}' AS lake (DATA_PATH '{data_path}'); USE lake",
        lake.catalog
    ))
    .unwrap();
    conn
}

/// A TCP proxy on a free loopback port in front of `target`. [`Proxy::cut`] takes the target
/// off the network: open connections are shut down and new ones refused (the port is closed)
/// until [`Proxy::restore`].
pub struct Proxy {
    pub port: u16,
    state: Arc<ProxyState>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct ProxyState {
    target: String,
    up: AtomicBool,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    pub fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ProxyState {
            target: target.to_owned(),
            up: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let thread = std::thread::spawn({
            let state = state.clone();
            move || serve(listener, port, &state)
        });
        Proxy {
            port,
            state,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Refuses new connections and cuts the open ones, until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        for stream in self.state.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts while up; while cut, the listening socket is closed so that connecting is refused
/// by the kernel, as with a store that is down, and bound again on the same port after.
fn serve(listener: TcpListener, port: u16, state: &ProxyState) {
    let mut listener = Some(listener);
    while !state.stop.load(Ordering::SeqCst) {
        if !state.up.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        l.set_nonblocking(true).unwrap();
        match l.accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(&state.target) else {
                    continue;
                };
                let mut open = state.open.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                drop(open);
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The object keys under `prefix` of `bucket` that are Parquet data files.
pub fn parquet_objects(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    moto.list(bucket, prefix)
        .into_iter()
        .filter(|k| Path::new(k).extension().is_some_and(|e| e == "parquet"))
        .collect()
}
