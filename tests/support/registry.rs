//! A real HTTP schema registry for tests: `scripts/schema_registry.py`, the project's own
//! Confluent-compatible registry (no Confluent registry server can be installed here). It
//! keeps its schemas in a state file, so [`Registry::stop`] + [`Registry::restart`] is a
//! registry that went away and came back on the same address with the same ids.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    port: u16,
    state: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/schema_registry.py")
}

impl Registry {
    pub fn start() -> Self {
        let state = tempfile::tempdir().unwrap();
        let (child, port) = spawn(&state.path().join("state.json"), 0);
        Registry {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            port,
            state,
        }
    }

    /// Kills the registry: requests are refused until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the schemas and ids it had.
    pub fn restart(&mut self) {
        self.stop();
        let (child, _) = spawn(&self.state.path().join("state.json"), self.port);
        self.child = Some(child);
    }

    /// Makes every API request answer `status` for `seconds` (the registry's admin hook).
    pub fn fail_for(&self, status: u16, seconds: f64) {
        let body = format!(r#"{{"status":{status},"for_s":{seconds}}}"#);
        let (code, text) = request(self.port, "POST", "/__admin/fail", &body);
        assert_eq!(code, 200, "{text}");
    }

    /// Registers `schema` (Avro JSON text) under `subject`; returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let (code, text) = request(
            self.port,
            "POST",
            &format!("/subjects/{subject}/versions"),
            &body,
        );
        assert_eq!(code, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["id"].as_u64().unwrap() as u32
    }

    /// API requests served per route (failed ones included).
    pub fn requests(&self) -> serde_json::Value {
        let (code, text) = request(self.port, "GET", "/__admin/requests", "");
        assert_eq!(code, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the script on `port` (0: any) and waits for its `listening on` line.
fn spawn(state: &Path, port: u16) -> (Child, u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut child = Command::new("python3")
            .arg(script())
            .args(["--port", &port.to_string(), "--quiet", "--state"])
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/schema_registry.py");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        if let Some(p) = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
        {
            return (child, p);
        }
        let _ = child.kill();
        let _ = child.wait();
        // A restart on the same port can race the old socket's release.
        assert!(
            Instant::now() < deadline,
            "the schema registry did not start on port {port}: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A minimal HTTP/1.1 request; returns the status and the body.
fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
