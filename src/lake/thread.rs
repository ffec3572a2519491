//! The lake's own thread. DuckDB calls block and the connection is not `Sync`, so one
//! dedicated thread owns the [`Lake`] and serves requests from a channel; async callers await
//! a oneshot reply and never block the runtime.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{FlushOutcome, Lake, LakeError, LakeSettings};
use crate::batch::{Batch, TopicPartition};

enum Request {
    ReadOffsets(oneshot::Sender<Result<BTreeMap<TopicPartition, i64>, LakeError>>),
    Flush(Box<Batch>, oneshot::Sender<Result<FlushOutcome, LakeError>>),
}

/// Cheap to clone; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct LakeHandle {
    tx: mpsc::Sender<Request>,
}

impl LakeHandle {
    /// Opens the lake on a new thread; returns once it is attached (or failed to attach).
    pub fn open(settings: LakeSettings) -> Result<(Self, JoinHandle<()>), LakeError> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lake".into())
            .spawn(move || {
                let mut lake = match Lake::open(settings) {
                    Ok(lake) => {
                        let _ = ready_tx.send(Ok(()));
                        lake
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(request) = rx.recv() {
                    match request {
                        Request::ReadOffsets(reply) => {
                            let _ = reply.send(lake.read_offsets());
                        }
                        Request::Flush(batch, reply) => {
                            let _ = reply.send(lake.flush(&batch));
                        }
                    }
                }
            })
            .map_err(|_| LakeError::Gone)?;
        ready_rx.recv().map_err(|_| LakeError::Gone)??;
        Ok((Self { tx }, thread))
    }

    pub async fn read_offsets(&self) -> Result<BTreeMap<TopicPartition, i64>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::ReadOffsets(reply))
            .map_err(|_| LakeError::Gone)?;
        rx.await.map_err(|_| LakeError::Gone)?
    }

    /// Same as [`read_offsets`](Self::read_offsets) for callers outside the runtime
    /// (rebalance callbacks run on the consumer thread).
    pub fn read_offsets_blocking(&self) -> Result<BTreeMap<TopicPartition, i64>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::ReadOffsets(reply))
            .map_err(|_| LakeError::Gone)?;
        rx.blocking_recv().map_err(|_| LakeError::Gone)?
    }

    /// Starts writing `batch`; the returned receiver yields the outcome.
    pub fn flush(
        &self,
        batch: Batch,
    ) -> Result<oneshot::Receiver<Result<FlushOutcome, LakeError>>, LakeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Flush(Box::new(batch), reply))
            .map_err(|_| LakeError::Gone)?;
        Ok(rx)
    }
}
