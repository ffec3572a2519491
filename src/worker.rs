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
//!   target state): a connector restarted while paused comes back paused;
//! - stop (KIP-875) flushes, commits and leaves the group, and the connector stays STOPPED
//!   (no lake handle, no consumer) until resumed or paused; only a STOPPED connector's offsets
//!   may be altered or reset, as in Connect.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::batch::TopicPartition;
use crate::config::ConnectorConfig;
use crate::error::Error;
use crate::lake::{Lake, LakeError, LakeSettings};
use crate::metrics::{Metrics, State};
use crate::pipeline::{run_connector, LakeSlot, RunOptions, RunSummary};

/// What the REST side may do with one running connector.
#[derive(Debug)]
pub struct Connector {
    pub config: ConnectorConfig,
    paused: watch::Sender<bool>,
    stopped: watch::Sender<bool>,
    restarts: mpsc::UnboundedSender<oneshot::Sender<()>>,
    lake: LakeSlot,
    metrics: Arc<Metrics>,
}

/// Why a restart was not done.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error("the worker is stopping")]
    Stopping,
}

/// Why offsets could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    /// Offsets are changed only while the connector is STOPPED (Connect's rule).
    #[error("Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{0}/stop' endpoint")]
    NotStopped(String),
    #[error("{0}")]
    Lake(#[from] LakeError),
}

impl Connector {
    /// Wants fetching paused (idempotent). The connector reports PAUSED once everything it
    /// read before is committed. A STOPPED connector starts again, paused.
    pub fn pause(&self) {
        self.paused
            .send_if_modified(|p| !std::mem::replace(p, true));
        self.stopped
            .send_if_modified(|s| std::mem::replace(s, false));
    }

    /// Wants fetching resumed (idempotent); a STOPPED connector starts again.
    pub fn resume(&self) {
        self.paused
            .send_if_modified(|p| std::mem::replace(p, false));
        self.stopped
            .send_if_modified(|s| std::mem::replace(s, false));
    }

    /// Wants the connector stopped (idempotent): it flushes, commits, leaves its group and
    /// stays STOPPED until resumed or paused.
    pub fn stop(&self) {
        self.stopped
            .send_if_modified(|s| !std::mem::replace(s, true));
    }

    /// Whether the connector is STOPPED: asked to stop, and its run has ended.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
            && self
                .metrics
                .snapshot()
                .get(&self.config.name)
                .is_some_and(|s| s.state == State::Stopped)
    }

    /// The committed offsets: through the running connector's lake thread, or from a lake
    /// handle opened for the question when it does not run.
    pub async fn offsets(&self) -> Result<Vec<(TopicPartition, i64)>, OffsetsError> {
        let running = self.lake.lock().ok().and_then(|slot| slot.clone());
        if let Some(lake) = running {
            return Ok(lake.offsets().await?);
        }
        let settings = LakeSettings::from(&self.config);
        let read = tokio::task::spawn_blocking(move || Lake::open(settings)?.committed_offsets())
            .await
            .map_err(|_| LakeError::Gone)?;
        Ok(read?)
    }

    /// Sets (`Some`) or forgets (`None`: read from `auto.offset.reset` again) the offsets of
    /// `partitions`; with `partitions` `None`, forgets every partition's. Only while STOPPED.
    /// Bumps the partitions' epochs, so a zombie holding them cannot commit.
    pub async fn alter_offsets(
        &self,
        partitions: Option<Vec<(TopicPartition, Option<i64>)>>,
    ) -> Result<(), OffsetsError> {
        if !self.is_stopped() {
            return Err(OffsetsError::NotStopped(self.config.name.clone()));
        }
        let settings = LakeSettings::from(&self.config);
        tokio::task::spawn_blocking(move || {
            let mut lake = Lake::open(settings)?;
            let partitions = match partitions {
                Some(p) => p,
                None => lake
                    .known_partitions()?
                    .into_iter()
                    .map(|tp| (tp, None))
                    .collect(),
            };
            if partitions.is_empty() {
                return Ok(());
            }
            lake.reset_offsets(&partitions)
        })
        .await
        .map_err(|_| LakeError::Gone)??;
        Ok(())
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
        let (stopped, stopped_rx) = watch::channel(false);
        let (restarts, restarts_rx) = mpsc::unbounded_channel();
        let lake = LakeSlot::default();
        connectors.insert(
            config.name.clone(),
            Arc::new(Connector {
                config: config.clone(),
                paused,
                stopped,
                restarts,
                lake: lake.clone(),
                metrics: metrics.clone(),
            }),
        );
        supervisors.push(Supervisor {
            config,
            options: options.clone(),
            shutdown: stop_rx.clone(),
            paused: paused_rx,
            stopped: stopped_rx,
            restarts: restarts_rx,
            metrics: metrics.clone(),
            lake,
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
    stopped: watch::Receiver<bool>,
    restarts: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    metrics: Arc<Metrics>,
    lake: LakeSlot,
    exit_on_failure: bool,
}

/// What ended the wait of a FAILED connector.
enum Wake {
    Restart(oneshot::Sender<()>),
    Stop,
    Shutdown,
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
            if *self.stopped.borrow_and_update() {
                if !self.wait_while_stopped().await {
                    return Ok(total);
                }
                tracing::info!(connector = %self.config.name, "starting the stopped connector again");
            }
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
            self.lake.clone(),
        );
        tokio::pin!(run);
        let mut acks = Vec::new();
        let mut shutting = *self.shutdown.borrow();
        let mut stopping = false;
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                _ = self.shutdown.changed(), if !shutting => {
                    // A closed channel means the worker is going away: stop too.
                    shutting = true;
                    let _ = stop.send(true);
                }
                changed = self.stopped.changed(), if !shutting && !stopping => {
                    if changed.is_ok() && *self.stopped.borrow_and_update() {
                        tracing::info!(connector = %self.config.name, "stop requested: flushing, committing and leaving the group");
                        stopping = true;
                        let _ = stop.send(true);
                    }
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
            Ok(summary) if acks.is_empty() && !stopping => return Ended::Done(Ok(summary)),
            Ok(summary) => summary,
            Err(e) if self.exit_on_failure => return Ended::Done(Err(e)),
            Err(e) if acks.is_empty() && !stopping => {
                tracing::error!(connector = %self.config.name, error = %e, "connector FAILED; the worker and its other connectors keep running. Remove the cause, then POST /connectors/{}/restart", self.config.name);
                match self.wait_for_restart().await {
                    Wake::Restart(ack) => {
                        acks.push(ack);
                        RunSummary::default()
                    }
                    Wake::Stop => RunSummary::default(),
                    Wake::Shutdown => return Ended::Done(Err(e)),
                }
            }
            Err(e) if stopping => {
                tracing::warn!(connector = %self.config.name, error = %e, "connector failed while stopping; it is STOPPED, and starts from the lake offsets when resumed");
                RunSummary::default()
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

    /// A FAILED connector waits here for a restart, a stop, or shutdown.
    async fn wait_for_restart(&mut self) -> Wake {
        loop {
            tokio::select! {
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return Wake::Shutdown;
                    }
                }
                changed = self.stopped.changed() => {
                    if changed.is_ok() && *self.stopped.borrow() {
                        return Wake::Stop;
                    }
                }
                ack = self.restarts.recv() => match ack {
                    Some(ack) => return Wake::Restart(ack),
                    // Nobody can ask any more: wait for shutdown alone.
                    None => {
                        let _ = self.shutdown.wait_for(|stop| *stop).await;
                        return Wake::Shutdown;
                    }
                },
            }
        }
    }

    /// A STOPPED connector waits here until it is resumed or paused (`true`) or the worker
    /// shuts down (`false`). A restart request leaves it STOPPED, as Connect's target state
    /// does.
    async fn wait_while_stopped(&mut self) -> bool {
        self.metrics.update(&self.config.name, |m| {
            m.state = State::Stopped;
            m.error = None;
        });
        tracing::info!(connector = %self.config.name, "connector STOPPED: PUT /connectors/{}/resume starts it again", self.config.name);
        loop {
            tokio::select! {
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return false;
                    }
                }
                changed = self.stopped.changed() => {
                    if changed.is_err() {
                        let _ = self.shutdown.wait_for(|stop| *stop).await;
                        return false;
                    }
                    if !*self.stopped.borrow_and_update() {
                        return true;
                    }
                }
                Some(ack) = self.restarts.recv() => {
                    let _ = ack.send(());
                }
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
