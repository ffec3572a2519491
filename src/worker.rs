//! The worker: several connectors in one process, each under a supervisor, with Kafka
//! Connect's failure semantics and the REST controls (pause, resume, restart).
//!
//! Contract:
//! - a connector that fails goes FAILED and stays so (status, `/health`, metrics show it);
//!   the worker and its other connectors keep running, and a restart (REST) runs it again
//!   in-process: a new lake handle and consumer, partitions claimed again, reading on from
//!   the lake offsets;
//! - with `exit_on_failure` (asked for, or implied by `until_caught_up` or by having no HTTP
//!   listener to restart from), the first failure stops every connector (each flushes and
//!   commits) and the run ends with that error, as batch jobs need;
//! - on shutdown every running connector flushes, commits and leaves its group; the run ends
//!   with an error naming the connectors that were FAILED at that time, if any;
//! - pause and resume are a wanted state per connector that outlives restarts (Connect's
//!   target state): a connector restarted while paused comes back paused.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ConnectorConfig;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pipeline::{run_connector, RunOptions, RunSummary};

/// What the REST side may do with one running connector.
#[derive(Debug)]
pub struct Connector {
    pub config: ConnectorConfig,
    paused: watch::Sender<bool>,
    restarts: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

/// Why a restart was not done.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error("the worker is stopping")]
    Stopping,
}

impl Connector {
    /// Wants fetching paused (idempotent). The connector reports PAUSED once everything it
    /// read before is committed.
    pub fn pause(&self) {
        self.paused
            .send_if_modified(|p| !std::mem::replace(p, true));
    }

    /// Wants fetching resumed (idempotent).
    pub fn resume(&self) {
        self.paused
            .send_if_modified(|p| std::mem::replace(p, false));
    }

    /// Whether a pause is wanted.
    pub fn pause_wanted(&self) -> bool {
        *self.paused.borrow()
    }

    /// Stops the connector (a running one flushes and commits first) and starts it again;
    /// returns once the new run has begun.
    pub async fn restart(&self) -> Result<(), RestartError> {
        let (ack, done) = oneshot::channel();
        self.restarts
            .send(ack)
            .map_err(|_| RestartError::Stopping)?;
        done.await.map_err(|_| RestartError::Stopping)
    }
}

/// The worker as the HTTP listener sees it.
#[derive(Debug)]
pub struct Worker {
    pub connectors: BTreeMap<String, Arc<Connector>>,
    pub metrics: Arc<Metrics>,
    /// `host:port` of the HTTP listener (Connect's `worker_id`).
    pub worker_id: String,
    /// The Kafka cluster id, once the broker told it.
    pub kafka_cluster_id: OnceLock<String>,
}

/// Runs the connectors until `shutdown` turns true (or, with `until_caught_up`, until all
/// have drained their partitions). See the module docs for what a failure does.
pub async fn run(
    configs: Vec<ConnectorConfig>,
    options: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<RunSummary>, Error> {
    let exit_on_failure =
        options.exit_on_failure || options.until_caught_up || options.http_addr.is_none();
    let (stop_all, stop_rx) = watch::channel(*shutdown.borrow());
    let mut forward = shutdown.clone();
    let forward_tx = stop_all.clone();
    tokio::spawn(async move {
        while forward.changed().await.is_ok() {
            if *forward.borrow() {
                let _ = forward_tx.send(true);
                break;
            }
        }
    });
    let metrics = Arc::new(Metrics::default());
    let listener = match &options.http_addr {
        Some(addr) => Some(
            crate::http::bind(addr)
                .await
                .map_err(|source| Error::Http {
                    addr: addr.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let mut supervisors = Vec::new();
    let mut connectors = BTreeMap::new();
    for config in configs {
        let (paused, paused_rx) = watch::channel(false);
        let (restarts, restarts_rx) = mpsc::unbounded_channel();
        connectors.insert(
            config.name.clone(),
            Arc::new(Connector {
                config: config.clone(),
                paused,
                restarts,
            }),
        );
        supervisors.push(Supervisor {
            config,
            options: options.clone(),
            shutdown: stop_rx.clone(),
            paused: paused_rx,
            restarts: restarts_rx,
            metrics: metrics.clone(),
            exit_on_failure,
        });
    }
    let http = match listener {
        Some((listener, local)) => {
            let worker = Arc::new(Worker {
                connectors,
                metrics: metrics.clone(),
                worker_id: local.to_string(),
                kafka_cluster_id: OnceLock::new(),
            });
            tokio::task::spawn_blocking({
                let worker = worker.clone();
                let bootstrap = options.bootstrap_servers.clone();
                move || {
                    if let Some(id) = crate::source::cluster_id(&bootstrap) {
                        let _ = worker.kafka_cluster_id.set(id);
                    }
                }
            });
            tracing::info!(addr = %local, "http listener: Kafka Connect REST (/connectors, pause, resume, restart), /health, /metrics");
            Some(tokio::spawn(crate::http::serve(listener, worker)))
        }
        None => {
            drop(connectors);
            None
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, supervisor) in supervisors.into_iter().enumerate() {
        tasks.spawn(async move { (i, supervisor.run().await) });
    }
    let mut summaries = BTreeMap::new();
    let mut first_error = None;
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = match joined {
            Ok(done) => done,
            Err(join) => (usize::MAX, Err(Error::Task(join.to_string()))),
        };
        match result {
            Ok(summary) => {
                summaries.insert(i, summary);
            }
            Err(e) if exit_on_failure => {
                let _ = stop_all.send(true);
                first_error.get_or_insert(e);
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    if let Some(http) = http {
        http.abort();
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    if !failed.is_empty() {
        return Err(Error::FailedAtShutdown(failed.join("; ")));
    }
    Ok(summaries.into_values().collect())
}

/// Runs one connector again and again: after a failure (on restart), and on restart.
struct Supervisor {
    config: ConnectorConfig,
    options: RunOptions,
    shutdown: watch::Receiver<bool>,
    paused: watch::Receiver<bool>,
    restarts: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
    exit_on_failure: bool,
}

/// How one run of a connector ended.
enum Ended {
    /// Stopped (shutdown, caught up) or failed, and not to be run again.
    Done(Result<RunSummary, Error>),
    /// To be run again; these restart requests are answered once it starts.
    Restart(RunSummary, Vec<oneshot::Sender<()>>),
}

impl Supervisor {
    async fn run(mut self) -> Result<RunSummary, Error> {
        let mut total = RunSummary::default();
        loop {
            match self.run_once().await {
                Ended::Done(result) => return result.map(|s| add(total, s)),
                Ended::Restart(summary, acks) => {
                    total = add(total, summary);
                    tracing::info!(connector = %self.config.name, "restarting the connector");
                    for ack in acks {
                        let _ = ack.send(());
                    }
                }
            }
        }
    }

    async fn run_once(&mut self) -> Ended {
        let (stop, stop_rx) = watch::channel(*self.shutdown.borrow());
        let run = run_connector(
            self.config.clone(),
            self.options.clone(),
            stop_rx,
            self.paused.clone(),
            self.metrics.clone(),
        );
        tokio::pin!(run);
        let mut acks = Vec::new();
        let mut shutting = *self.shutdown.borrow();
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                _ = self.shutdown.changed(), if !shutting => {
                    // A closed channel means the worker is going away: stop too.
                    shutting = true;
                    let _ = stop.send(true);
                }
                Some(ack) = self.restarts.recv(), if !shutting => {
                    tracing::info!(connector = %self.config.name, "restart requested: flushing, committing and stopping first");
                    acks.push(ack);
                    let _ = stop.send(true);
                }
            }
        };
        if shutting {
            return Ended::Done(result);
        }
        let summary = match result {
            Ok(summary) if acks.is_empty() => return Ended::Done(Ok(summary)),
            Ok(summary) => summary,
            Err(e) if self.exit_on_failure => return Ended::Done(Err(e)),
            Err(e) if acks.is_empty() => {
                tracing::error!(connector = %self.config.name, error = %e, "connector FAILED; the worker and its other connectors keep running. Remove the cause, then POST /connectors/{}/restart", self.config.name);
                match self.wait_for_restart().await {
                    Some(ack) => {
                        acks.push(ack);
                        RunSummary::default()
                    }
                    None => return Ended::Done(Err(e)),
                }
            }
            Err(e) => {
                tracing::warn!(connector = %self.config.name, error = %e, "connector failed while stopping for a restart; restarting it anyway");
                RunSummary::default()
            }
        };
        // Requests that came meanwhile are served by this same restart.
        while let Ok(ack) = self.restarts.try_recv() {
            acks.push(ack);
        }
        Ended::Restart(summary, acks)
    }

    /// A FAILED connector waits here: a restart request, or `None` on shutdown.
    async fn wait_for_restart(&mut self) -> Option<oneshot::Sender<()>> {
        loop {
            tokio::select! {
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return None;
                    }
                }
                ack = self.restarts.recv() => match ack {
                    Some(ack) => return Some(ack),
                    // Nobody can ask any more: wait for shutdown alone.
                    None => {
                        let _ = self.shutdown.wait_for(|stop| *stop).await;
                        return None;
                    }
                },
            }
        }
    }
}

/// Adds up the summaries of a connector's runs.
fn add(a: RunSummary, b: RunSummary) -> RunSummary {
    RunSummary {
        records: a.records + b.records,
        rows: a.rows + b.rows,
        deleted: a.deleted + b.deleted,
        redelivered: a.redelivered + b.redelivered,
        flushes: a.flushes + b.flushes,
        last_snapshot: b.last_snapshot.or(a.last_snapshot),
        bytes: a.bytes + b.bytes,
        active: a.active + b.active,
    }
}

/// How long a REST restart waits for the old run to stop before answering.
pub const RESTART_WAIT: Duration = Duration::from_secs(300);
