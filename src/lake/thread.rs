//! The lake's own thread. DuckDB calls block and the connection is not `Sync`, so one
//! dedicated thread owns the [`Lake`] and serves requests from a channel; async callers await
//! a oneshot reply and never block the runtime.
//!
//! Transient failures (catalog unreachable or restarting, commit conflicts with other
//! workers, a locked catalog file) are retried here with exponential backoff and jitter,
//! reconnecting from scratch each time, until `errors.retry.timeout` has passed; then the
//! error is returned. A retried flush writes the same batch again: nothing of a failed
//! attempt is visible, and offsets never move past data that was not committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::oneshot;

use super::{Claim, FlushOutcome, Lake, LakeError, LakeSettings};
use crate::batch::{Batch, TopicPartition};
use crate::metrics::Metrics;
use crate::offsets::Expect;
use crate::shape::TableColumns;

/// How long and how often to retry transient lake failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub timeout: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `n` (1-based): 100 ms doubling, capped, with ±50 % jitter so
    /// workers that conflicted do not collide again in lockstep.
    fn delay(&self, attempt: u32) -> Duration {
        backoff(attempt, self.max_delay)
    }
}

/// Delay before attempt `n` (1-based) of anything retried: 100 ms doubling, capped at
/// `max`, with ±50 % jitter so workers that failed together do not retry in lockstep.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1u32 << attempt.min(16));
    let capped = base.min(max);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    capped.mul_f64(jitter)
}

type Reply<T> = oneshot::Sender<Result<T, LakeError>>;

enum Request {
    Claim(Vec<TopicPartition>, Reply<BTreeMap<TopicPartition, Claim>>),
    Describe(String, Reply<Option<TableColumns>>),
    /// The connector's committed offsets, for the REST API.
    Offsets(Reply<Vec<(TopicPartition, i64)>>),
    /// Table upkeep between flushes; `None`: keep every snapshot.
    Maintain(Option<Duration>),
    Flush(
        Box<Batch>,
        BTreeMap<TopicPartition, Expect>,
        Reply<FlushOutcome>,
    ),
}

/// Cheap to clone; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct LakeHandle {
    tx: mpsc::Sender<Request>,
    upkeep: Arc<Upkeep>,
}

/// Where maintenance stands, shared by the lake thread and its callers.
#[derive(Default)]
struct Upkeep {
    /// A run is queued or running.
    queued: AtomicBool,
    /// The last run stopped at its bound and left work for the next one.
    left: AtomicBool,
}

impl std::fmt::Debug for LakeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LakeHandle")
    }
}

struct Worker {
    settings: LakeSettings,
    retry: RetryPolicy,
    lake: Option<Lake>,
    metrics: Arc<Metrics>,
    upkeep: Arc<Upkeep>,
}

impl Worker {
    /// Runs `op` until it succeeds, fails for good, or the retry timeout passes; `op` is told
    /// whether an earlier attempt failed.
    fn with_retry<T>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut Lake, bool) -> Result<T, LakeError>,
    ) -> Result<T, LakeError> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let result = match self.lake.as_mut() {
                Some(lake) => op(lake, attempt > 0),
                None => match Lake::open(self.settings.clone()) {
                    Ok(lake) => op(self.lake.insert(lake), attempt > 0),
                    Err(e) => Err(e),
                },
            }
            .map_err(|e| e.with_store(self.settings.object_store.as_ref()));
            match result {
                Ok(v) => {
                    if attempt > 0 {
                        tracing::info!(
                            what,
                            attempts = attempt + 1,
                            "lake operation succeeded after retrying"
                        );
                    }
                    return Ok(v);
                }
                Err(e) if e.is_retryable() && started.elapsed() < self.retry.timeout => {
                    attempt += 1;
                    let conflict = e.is_conflict();
                    self.metrics.update(&self.settings.connector, |m| {
                        m.lake_retries += 1;
                        m.commit_conflicts += u64::from(conflict);
                    });
                    let left = self.retry.timeout.saturating_sub(started.elapsed());
                    let delay = self.retry.delay(attempt).min(left);
                    tracing::warn!(what, attempt, delay_ms = delay.as_millis() as u64, error = %e, "transient lake failure; retrying");
                    // Start over with a fresh connection: the old one may be broken.
                    self.lake = None;
                    std::thread::sleep(delay);
                }
                Err(e) => {
                    if e.is_retryable() {
                        tracing::error!(
                            what,
                            attempts = attempt + 1,
                            "giving up after errors.retry.timeout"
                        );
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl Worker {
    /// One bounded maintenance run, one attempt; failures are logged, never returned: upkeep
    /// failing must not stop ingestion, and the next run tries again. Not retried here: the
    /// flushes queued behind it would wait out every retry, and its deletes (offsets upkeep)
    /// can keep losing to other workers' flushes for a while.
    fn maintain(&mut self, retention: Option<Duration>) {
        let started = Instant::now();
        let attempt = match self.lake.as_mut() {
            Some(lake) => lake.maintain(retention),
            None => Lake::open(self.settings.clone())
                .and_then(|lake| self.lake.insert(lake).maintain(retention)),
        }
        .map_err(|e| e.with_store(self.settings.object_store.as_ref()));
        if attempt.as_ref().is_err_and(LakeError::is_retryable) {
            // Start the next request on a fresh connection: this one may be broken.
            self.lake = None;
        }
        match attempt {
            Ok(run) => {
                self.upkeep.left.store(run.more, Ordering::SeqCst);
                let seconds = started.elapsed().as_secs_f64();
                self.metrics.update(&self.settings.connector, |m| {
                    m.maintenance_runs += 1;
                    m.maintenance_seconds.observe(seconds);
                    m.data_files = Some(run.files.after);
                });
                tracing::info!(
                    connector = %self.settings.connector,
                    files_before = run.files.before,
                    files_after = run.files.after,
                    rewritten = run.rewritten,
                    more = run.more,
                    ms = started.elapsed().as_millis() as u64,
                    "maintenance done"
                );
            }
            Err(e) => {
                let conflict = e.is_conflict();
                self.metrics.update(&self.settings.connector, |m| {
                    m.commit_conflicts += u64::from(conflict);
                });
                tracing::warn!(connector = %self.settings.connector, error = %e, "maintenance failed; the next run tries again")
            }
        }
        self.upkeep.queued.store(false, Ordering::SeqCst);
    }
}

impl LakeHandle {
    /// Opens the lake on a new thread; returns once it is attached, or with the error when it
    /// could not be attached within the retry policy.
    pub fn open(
        settings: LakeSettings,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, JoinHandle<()>), LakeError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let upkeep = Arc::new(Upkeep::default());
        let shared = upkeep.clone();
        let thread = std::thread::Builder::new()
            .name("lake".into())
            .spawn(move || {
                let mut worker = Worker {
                    settings,
                    retry,
                    lake: None,
                    metrics,
                    upkeep: shared,
                };
                let opened = worker.with_retry("attach", |_, _| Ok(()));
                let ok = opened.is_ok();
                let _ = ready_tx.send(opened);
                if !ok {
                    return;
                }
                while let Ok(request) = rx.recv() {
                    match request {
                        Request::Claim(partitions, reply) => {
                            let _ = reply.send(
                                worker.with_retry("claim", |lake, _| lake.claim(&partitions)),
                            );
                        }
                        Request::Describe(table, reply) => {
                            let _ = reply.send(
                                worker.with_retry("describe", |lake, _| lake.table_columns(&table)),
                            );
                        }
                        Request::Offsets(reply) => {
                            let _ = reply
                                .send(worker.with_retry("read offsets", |lake, _| {
                                    lake.committed_offsets()
                                }));
                        }
                        Request::Maintain(retention) => worker.maintain(retention),
                        Request::Flush(batch, expects, reply) => {
                            let _ = reply.send(worker.with_retry("flush", |lake, retry| {
                                lake.flush(&batch, &expects, retry)
                            }));
                        }
                    }
                }
            })
            .map_err(|_| LakeError::Gone)?;
        ready_rx.recv().map_err(|_| LakeError::Gone)??;
        Ok((Self { tx, upkeep }, thread))
    }

    /// Queues one bounded run of table maintenance (see [`Lake::maintain`]); runs between
    /// flushes, never concurrently with one.
    pub fn maintain(&self, retention: Option<Duration>) -> Result<(), LakeError> {
        self.upkeep.queued.store(true, Ordering::SeqCst);
        self.tx
            .send(Request::Maintain(retention))
            .map_err(|_| LakeError::Gone)
    }

    /// A maintenance run is queued or running.
    pub fn maintenance_queued(&self) -> bool {
        self.upkeep.queued.load(Ordering::SeqCst)
    }

    /// The last maintenance run stopped at `ducklake.maintenance.max.files` with work left.
    pub fn maintenance_left(&self) -> bool {
        self.upkeep.left.load(Ordering::SeqCst)
    }

    /// Claims partitions for this worker (see [`Lake::claim`]).
    pub async fn claim(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, Claim>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Claim(partitions, reply))
            .map_err(|_| LakeError::Gone)?;
        rx.await.map_err(|_| LakeError::Gone)?
    }

    /// The columns of `table` (`None`: it does not exist).
    pub async fn describe(&self, table: &str) -> Result<Option<TableColumns>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Describe(table.to_owned(), reply))
            .map_err(|_| LakeError::Gone)?;
        rx.await.map_err(|_| LakeError::Gone)?
    }

    /// The connector's committed offsets (see [`Lake::committed_offsets`]), read between
    /// flushes.
    pub async fn offsets(&self) -> Result<Vec<(TopicPartition, i64)>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Offsets(reply))
            .map_err(|_| LakeError::Gone)?;
        rx.await.map_err(|_| LakeError::Gone)?
    }

    /// Starts writing `batch` if the lake still is as `expects` says; the receiver yields the
    /// outcome.
    #[allow(clippy::type_complexity)]
    pub fn flush(
        &self,
        batch: Batch,
        expects: BTreeMap<TopicPartition, Expect>,
    ) -> Result<oneshot::Receiver<Result<FlushOutcome, LakeError>>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Flush(Box::new(batch), expects, reply))
            .map_err(|_| LakeError::Gone)?;
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            timeout: Duration::from_secs(60),
            max_delay: Duration::from_secs(2),
        };
        for attempt in 1..20 {
            let d = p.delay(attempt);
            let base = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(16))
                .min(p.max_delay);
            assert!(
                d >= base.mul_f64(0.5) && d <= base.mul_f64(1.5),
                "attempt {attempt}: {d:?}"
            );
        }
        assert!(p.delay(30) <= Duration::from_secs(3));
    }
}
