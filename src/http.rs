//! The worker's HTTP listener (Kafka Connect's REST port by default), on axum: Kafka
//! Connect's REST shapes for the connectors this worker runs, their pause/resume/restart
//! controls, `/health`, and `/metrics` in Prometheus text format.
//!
//! Connectors come from the files given to `ducklake-sink run`: the routes that would create,
//! reconfigure or delete one answer 405 saying so. Errors are shaped as Connect's
//! (`{"error_code": 404, "message": …}`), including unknown paths (404) and wrong verbs (405,
//! with the `Allow` header). No business logic here: the controls are the [`Worker`]'s.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::batch::TopicPartition;
use crate::metrics::{ConnectorStats, State as ConnectorState};
use crate::worker::{Connector, OffsetsError, Worker, RESTART_WAIT};

/// The one plugin this worker runs, as `GET /connector-plugins` lists it.
const PLUGIN_CLASS: &str = "DuckLakeSink";

/// Binds `addr`; the returned address is the one actually bound (port 0 picks one).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves requests until the task is dropped.
pub async fn serve(listener: TcpListener, worker: Arc<Worker>) {
    // Trimmed before routing: a route layer would run after the router had matched.
    let app = tower::ServiceExt::map_request(router(worker), trim_trailing_slash);
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "http listener stopped");
    }
}

/// `/connectors/` is `/connectors`, as in Kafka Connect (whose REST resources match either),
/// and as Debezium's tutorial calls it (`curl … localhost:8083/connectors/`).
fn trim_trailing_slash(mut request: axum::extract::Request) -> axum::extract::Request {
    let uri = request.uri();
    let path = uri.path();
    // One slash, as Connect tolerates: `/connectors//` stays an unknown path.
    if let Some(trimmed) = path
        .strip_suffix('/')
        .filter(|t| !t.is_empty() && !t.ends_with('/'))
    {
        let path_and_query = match uri.query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

/// Every route, with Connect-shaped errors for the rest.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/connectors", get(list).post(configured_from_files))
        .route(
            "/connectors/{name}",
            get(info).delete(configured_from_files),
        )
        .route("/connectors/{name}/status", get(status))
        .route(
            "/connectors/{name}/config",
            get(config).put(configured_from_files),
        )
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(task_restart),
        )
        .route("/connectors/{name}/topics", get(topics))
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/stop", put(stop))
        .route(
            "/connectors/{name}/offsets",
            get(offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connectors/{name}/restart", post(restart))
        .route("/connector-plugins", get(plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(worker)
}

type Shared = State<Arc<Worker>>;

/// An error answer in Kafka Connect's shape.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.0.as_u16(), "message": self.1});
        (self.0, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn connector<'a>(worker: &'a Worker, name: &str) -> ApiResult<&'a Arc<Connector>> {
    worker
        .connectors
        .get(name)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("Connector {name} not found")))
}

/// Task ids: this sink runs one task per connector, task 0.
fn task_id(name: &str, task: &str) -> ApiResult<()> {
    match task.parse::<u32>() {
        Ok(0) => Ok(()),
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("Task {name}-{task} not found (connectors here run one task, 0)"),
        )),
    }
}

fn stats(worker: &Worker, name: &str) -> ConnectorStats {
    worker.metrics.snapshot().remove(name).unwrap_or_default()
}

async fn root(State(worker): Shared) -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": option_env!("DUCKLAKE_SINK_GIT_SHA").unwrap_or(""),
        "kafka_cluster_id": worker.kafka_cluster_id.get(),
    }))
}

fn info_of(c: &Connector) -> Value {
    let name = &c.config.name;
    json!({
        "name": name,
        "config": c.config.shown,
        "tasks": [{"connector": name, "task": 0}],
        "type": "sink",
    })
}

/// The task's status object; `trace` while FAILED.
fn task_state(worker: &Worker, s: &ConnectorStats) -> Value {
    let mut task = json!({"id": 0, "state": s.state.as_str(), "worker_id": worker.worker_id});
    if let (ConnectorState::Failed, Some(e)) = (s.state, &s.error) {
        task["trace"] = json!(e);
    }
    task
}

fn status_of(worker: &Worker, name: &str, s: &ConnectorStats) -> Value {
    // A stopped connector has no tasks (Connect drops their configs on stop).
    let tasks = if s.state == ConnectorState::Stopped {
        json!([])
    } else {
        json!([task_state(worker, s)])
    };
    let mut connector = json!({"state": s.state.as_str(), "worker_id": worker.worker_id});
    if let (ConnectorState::Failed, Some(e)) = (s.state, &s.error) {
        connector["trace"] = json!(e);
    }
    let partitions: Vec<_> = s
        .partitions
        .iter()
        .map(|((t, p), ps)| {
            json!({"topic": t, "partition": p, "lake_next_offset": ps.committed, "high_watermark": ps.high_watermark, "epoch": ps.epoch})
        })
        .collect();
    json!({
        "name": name,
        "connector": connector,
        "tasks": tasks,
        "type": "sink",
        "last_snapshot_id": s.last_snapshot,
        "partitions": partitions,
    })
}

/// `GET /connectors`: names; `?expand=status` and/or `?expand=info`: Connect's map of name →
/// {"status": …, "info": …}.
async fn list(
    State(worker): Shared,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut expand = (false, false);
    for (k, v) in &params {
        if k != "expand" {
            continue;
        }
        match v.as_str() {
            "status" => expand.0 = true,
            "info" => expand.1 = true,
            other => {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("unknown expand value `{other}` (expected `status` or `info`)"),
                ))
            }
        }
    }
    if expand == (false, false) {
        return Ok(Json(json!(worker.connectors.keys().collect::<Vec<_>>())));
    }
    let all = worker.metrics.snapshot();
    let mut out = serde_json::Map::new();
    for (name, c) in &worker.connectors {
        let mut entry = serde_json::Map::new();
        if expand.0 {
            let s = all.get(name).cloned().unwrap_or_default();
            entry.insert("status".into(), status_of(&worker, name, &s));
        }
        if expand.1 {
            entry.insert("info".into(), info_of(c));
        }
        out.insert(name.clone(), Value::Object(entry));
    }
    Ok(Json(Value::Object(out)))
}

async fn info(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(info_of(connector(&worker, &name)?)))
}

async fn status(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    connector(&worker, &name)?;
    Ok(Json(status_of(&worker, &name, &stats(&worker, &name))))
}

async fn config(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!(connector(&worker, &name)?.config.shown)))
}

async fn tasks(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&worker, &name)?;
    Ok(Json(json!([{
        "id": {"connector": name, "task": 0},
        "config": c.config.shown,
    }])))
}

async fn task_status(
    State(worker): Shared,
    Path((name, task)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    connector(&worker, &name)?;
    task_id(&name, &task)?;
    Ok(Json(task_state(&worker, &stats(&worker, &name))))
}

async fn topics(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&worker, &name)?;
    // Connect lists the topics the connector has used; here, those of its partitions, or
    // the configured list before any assignment.
    let s = stats(&worker, &name);
    let mut used: Vec<&String> = s.partitions.keys().map(|(t, _)| t).collect();
    used.dedup();
    let topics: Vec<String> = if used.is_empty() {
        match &c.config.topics {
            crate::config::Topics::List(list) => list.clone(),
            crate::config::Topics::Regex(_) => Vec::new(),
        }
    } else {
        used.into_iter().cloned().collect()
    };
    Ok(Json(json!({ name: {"topics": topics} })))
}

async fn pause(State(worker): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    connector(&worker, &name)?.pause();
    tracing::info!(connector = %name, "pause requested over REST");
    Ok(StatusCode::ACCEPTED)
}

async fn resume(State(worker): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    connector(&worker, &name)?.resume();
    tracing::info!(connector = %name, "resume requested over REST");
    Ok(StatusCode::ACCEPTED)
}

/// KIP-875: flush, commit, leave the group and stay STOPPED until resumed.
async fn stop(State(worker): Shared, Path(name): Path<String>) -> ApiResult<StatusCode> {
    connector(&worker, &name)?.stop();
    tracing::info!(connector = %name, "stop requested over REST");
    Ok(StatusCode::ACCEPTED)
}

impl From<OffsetsError> for ApiError {
    fn from(e: OffsetsError) -> Self {
        let code = match e {
            OffsetsError::NotStopped(_) => StatusCode::BAD_REQUEST,
            OffsetsError::Lake(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(code, e.to_string())
    }
}

/// KIP-875 for a sink: the next offset to read of every partition the connector has
/// committed, read from the lake (the lake, not the consumer group, holds a sink's offsets
/// here).
async fn offsets(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&worker, &name)?;
    let offsets: Vec<Value> = c
        .offsets()
        .await?
        .into_iter()
        .map(|(tp, next)| {
            json!({
                "partition": {"kafka_topic": tp.topic, "kafka_partition": tp.partition},
                "offset": {"kafka_offset": next},
            })
        })
        .collect();
    Ok(Json(json!({ "offsets": offsets })))
}

fn bad_request(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

/// The body of `PATCH …/offsets` for a sink connector: `{"offsets": [{"partition":
/// {"kafka_topic": T, "kafka_partition": P}, "offset": {"kafka_offset": N} | null}]}`.
fn offsets_request(body: &[u8]) -> ApiResult<Vec<(TopicPartition, Option<i64>)>> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the request body is not JSON: {e}")))?;
    let entries = body
        .get("offsets")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("the request body must be {\"offsets\": [...]}".into()))?;
    if entries.is_empty() {
        return Err(bad_request("the offsets to alter must not be empty".into()));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let partition = entry.get("partition").and_then(Value::as_object).ok_or_else(|| {
                bad_request(format!("offsets[{i}]: `partition` must be an object with `kafka_topic` and `kafka_partition`"))
            })?;
            let topic = partition
                .get("kafka_topic")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| bad_request(format!("offsets[{i}]: `kafka_topic` must be a topic name")))?;
            let number = partition
                .get("kafka_partition")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| bad_request(format!("offsets[{i}]: `kafka_partition` must be a non-negative integer")))?;
            let offset = match entry.get("offset") {
                None | Some(Value::Null) => None,
                Some(Value::Object(o)) => Some(
                    o.get("kafka_offset")
                        .and_then(Value::as_i64)
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| bad_request(format!("offsets[{i}]: `kafka_offset` must be a non-negative integer")))?,
                ),
                Some(_) => {
                    return Err(bad_request(format!(
                        "offsets[{i}]: `offset` must be {{\"kafka_offset\": N}} or null"
                    )))
                }
            };
            Ok((
                TopicPartition {
                    topic: topic.to_owned(),
                    partition: number,
                },
                offset,
            ))
        })
        .collect()
}

/// KIP-875: sets (or, with a null offset, forgets) partitions' offsets; only while STOPPED.
async fn alter_offsets(
    State(worker): Shared,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let c = connector(&worker, &name)?;
    let partitions = offsets_request(&body)?;
    tracing::info!(connector = %name, ?partitions, "offsets altered over REST");
    c.alter_offsets(Some(partitions)).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been altered successfully"}),
    ))
}

/// KIP-875: forgets every partition's offset (the next run reads from `auto.offset.reset`);
/// only while STOPPED.
async fn reset_offsets(State(worker): Shared, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let c = connector(&worker, &name)?;
    tracing::info!(connector = %name, "offsets reset over REST");
    c.alter_offsets(None).await?;
    Ok(Json(
        json!({"message": "The offsets for this connector have been reset successfully"}),
    ))
}

/// Restarts and answers once the new run has begun (a running connector first flushes,
/// commits and stops).
async fn do_restart(c: &Connector) -> ApiResult<()> {
    match tokio::time::timeout(RESTART_WAIT, c.restart()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ApiError(StatusCode::CONFLICT, e.to_string())),
        Err(_) => Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the connector did not stop within {} s for the restart",
                RESTART_WAIT.as_secs()
            ),
        )),
    }
}

fn flag(params: &[(String, String)], key: &str) -> ApiResult<bool> {
    match params.iter().rev().find(|(k, _)| k == key) {
        None => Ok(false),
        Some((_, v)) => v.parse().map_err(|_| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("query parameter `{key}` must be true or false, got `{v}`"),
            )
        }),
    }
}

/// KIP-745: without parameters 204; with `includeTasks` and/or `onlyFailed` 202 and the
/// status, RESTARTING where a restart was done. `onlyFailed` leaves a healthy connector alone.
async fn restart(
    State(worker): Shared,
    Path(name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let c = connector(&worker, &name)?;
    let include_tasks = flag(&params, "includeTasks")?;
    let only_failed = flag(&params, "onlyFailed")?;
    if !include_tasks && !only_failed {
        tracing::info!(connector = %name, "restart requested over REST");
        do_restart(c).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let before = stats(&worker, &name);
    let mut body = status_of(&worker, &name, &before);
    if !only_failed || before.state == ConnectorState::Failed {
        tracing::info!(connector = %name, include_tasks, only_failed, "restart requested over REST");
        do_restart(c).await?;
        body["connector"]["state"] = json!("RESTARTING");
        body["tasks"][0]["state"] = json!("RESTARTING");
    }
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn task_restart(
    State(worker): Shared,
    Path((name, task)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let c = connector(&worker, &name)?;
    task_id(&name, &task)?;
    tracing::info!(connector = %name, "task restart requested over REST");
    do_restart(c).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn plugins() -> Json<Value> {
    Json(json!([{
        "class": PLUGIN_CLASS,
        "type": "sink",
        "version": env!("CARGO_PKG_VERSION"),
    }]))
}

/// Whether `plugin` names this sink, as `connector.class` may (full class name or alias).
fn is_this_plugin(plugin: &str) -> bool {
    plugin == PLUGIN_CLASS
        || plugin.ends_with(".DuckLakeSink")
        || plugin.ends_with("DuckLakeSinkConnector")
}

fn plugin_of(plugin: &str) -> ApiResult<()> {
    if is_this_plugin(plugin) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("Unknown plugin {plugin}: this worker runs {PLUGIN_CLASS} only"),
        ))
    }
}

/// One key's definition in Connect's `ConfigKeyInfo` shape. Every key is a string here: the
/// connector file is parsed as text and checked key by key.
fn key_definition(name: &str, order: usize) -> Value {
    let required = matches!(name, "connector.class" | "ducklake.catalog");
    json!({
        "name": name, "type": "STRING", "required": required, "default_value": null,
        "importance": if required { "HIGH" } else { "MEDIUM" }, "documentation": "see the README's configuration table",
        "group": "Common", "width": "NONE", "display_name": name, "dependents": [], "order": order,
    })
}

/// `GET /connector-plugins/{plugin}/config`: the keys the sink understands.
async fn plugin_config(Path(plugin): Path<String>) -> ApiResult<Json<Value>> {
    plugin_of(&plugin)?;
    let keys: Vec<Value> = crate::config::KNOWN_KEYS
        .iter()
        .enumerate()
        .map(|(i, k)| key_definition(k, i + 1))
        .collect();
    Ok(Json(Value::Array(keys)))
}

/// `PUT /connector-plugins/{plugin}/config/validate`: the connector file's checks on a config
/// map, in Connect's `ConfigInfos` shape. The parser stops at the first problem, so
/// `error_count` is 0 or 1; the error is set on the key it names (on `name` for a problem of
/// the whole config). Nothing is started.
async fn validate(Path(plugin): Path<String>, body: Bytes) -> ApiResult<Json<Value>> {
    plugin_of(&plugin)?;
    let config: serde_json::Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
        bad_request(format!(
            "the request body must be a JSON object of config keys: {e}"
        ))
    })?;
    if let Some(class) = config.get("connector.class").and_then(Value::as_str) {
        if !is_this_plugin(class) {
            return Err(bad_request(format!(
                "connector.class `{class}` does not match the plugin in the path, {plugin}"
            )));
        }
    }
    let name = config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("validate")
        .to_owned();
    let doc = json!({"name": name, "config": config});
    let parsed =
        crate::config::ConnectorConfig::parse(std::path::Path::new("request"), &doc.to_string());
    let (error_key, message) = match parsed {
        Ok(_) => (None, None),
        Err(crate::config::ConfigError::Key { key, message, .. }) => (Some(key), Some(message)),
        Err(e) => (Some("name".to_owned()), Some(e.to_string())),
    };
    let shown = crate::config::shown_config(
        &config
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect(),
    );
    let mut names: Vec<String> = crate::config::KNOWN_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    for k in config.keys().chain(error_key.iter()) {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    let configs: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let errors: Vec<&String> = if error_key.as_ref() == Some(k) {
                message.iter().collect()
            } else {
                Vec::new()
            };
            json!({
                "definition": key_definition(k, i + 1),
                "value": {"name": k, "value": shown.get(k), "recommended_values": [], "errors": errors, "visible": true},
            })
        })
        .collect();
    Ok(Json(json!({
        "name": PLUGIN_CLASS,
        "error_count": usize::from(message.is_some()),
        "groups": ["Common"],
        "configs": configs,
    })))
}

/// 200 while no connector is FAILED; 503 naming the failed ones.
async fn health(State(worker): Shared) -> Response {
    let failed: Vec<String> = worker
        .metrics
        .snapshot()
        .into_iter()
        .filter(|(_, s)| s.state == ConnectorState::Failed)
        .map(|(n, _)| n)
        .collect();
    if failed.is_empty() {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failed", "failed": failed})),
        )
            .into_response()
    }
}

async fn metrics(State(worker): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        worker.metrics.render(),
    )
        .into_response()
}

/// Creating, reconfiguring and deleting connectors: not over REST here.
async fn configured_from_files(method: Method, uri: Uri) -> Response {
    let error = ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} {} is not supported: connectors are configured from the files given to `ducklake-sink run`; edit the file and restart the worker",
            uri.path()
        ),
    );
    ([(header::ALLOW, "GET,HEAD")], error).into_response()
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!("HTTP 404 Not Found: no resource at {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "HTTP 405 Method Not Allowed: {method} is not supported on {}",
            uri.path()
        ),
    )
}
