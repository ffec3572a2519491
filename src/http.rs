//! The worker's HTTP listener (Kafka Connect's REST port by default): `/metrics` in
//! Prometheus text format, `/health`, `/connectors` and `/connectors/<name>/status` as
//! Connect-like JSON. A deliberately small HTTP/1.1 server: GET only, one request per
//! connection, no business logic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::{Metrics, State};

/// Binds `addr`; the returned address is the one actually bound (port 0 picks one).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves requests until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, worker_id: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let worker_id = worker_id.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                handle(stream, &metrics, &worker_id),
            )
            .await;
        });
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics, worker_id: &str) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let mut parts = request.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = if method != "GET" {
        (405, "text/plain", "only GET is served\n".to_owned())
    } else {
        route(path.split('?').next().unwrap_or(""), metrics, worker_id)
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn route(path: &str, metrics: &Metrics, worker_id: &str) -> (u16, &'static str, String) {
    let all = metrics.snapshot();
    match path.trim_end_matches('/') {
        "/metrics" => (200, "text/plain; version=0.0.4", metrics.render()),
        "/health" => {
            let failed: Vec<&String> = all
                .iter()
                .filter(|(_, s)| s.state == State::Failed)
                .map(|(n, _)| n)
                .collect();
            if failed.is_empty() {
                (200, "application/json", json!({"status": "ok"}).to_string())
            } else {
                (
                    503,
                    "application/json",
                    json!({"status": "failed", "failed": failed}).to_string(),
                )
            }
        }
        "/connectors" => (
            200,
            "application/json",
            json!(all.keys().collect::<Vec<_>>()).to_string(),
        ),
        other => {
            let name = other
                .strip_prefix("/connectors/")
                .and_then(|rest| rest.strip_suffix("/status"));
            match name.and_then(|n| all.get(n).map(|s| (n, s))) {
                Some((name, s)) => {
                    let partitions: Vec<_> = s
                        .partitions
                        .iter()
                        .map(|((t, p), ps)| json!({"topic": t, "partition": p, "lake_next_offset": ps.committed, "high_watermark": ps.high_watermark, "epoch": ps.epoch}))
                        .collect();
                    let mut task =
                        json!({"id": 0, "state": s.state.as_str(), "worker_id": worker_id});
                    if let Some(e) = &s.error {
                        task["trace"] = json!(e);
                    }
                    let body = json!({
                        "name": name,
                        "type": "sink",
                        "connector": {"state": s.state.as_str(), "worker_id": worker_id},
                        "tasks": [task],
                        "last_snapshot_id": s.last_snapshot,
                        "partitions": partitions,
                    });
                    (200, "application/json", body.to_string())
                }
                None => (
                    404,
                    "application/json",
                    json!({"error_code": 404, "message": format!("no connector at {other}")})
                        .to_string(),
                ),
            }
        }
    }
}
