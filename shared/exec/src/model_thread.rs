//! A model on its own OS threads. ONNX Runtime sessions run with `&mut self` and use
//! their own intra-op threads; dedicated threads (rather than a mutex around a shared
//! session) keep inference off the async runtime and off the decode pool.
//!
//! One worker runs one wide session (its intra-op threads split each batch). Several
//! workers each hold their own copy of the model and take whole batches from one queue:
//! with single-threaded sessions that is one inference thread per core, each on its own
//! batch, with no operator waiting at a barrier for a preempted thread.

use tokio::sync::{mpsc, oneshot};

use std::sync::{Arc, Mutex};

use crate::model_load::{Busy, ModelLoad};

type Job<M> = Box<dyn FnOnce(&mut M) + Send>;

pub struct ModelThread<M> {
    tx: mpsc::Sender<Job<M>>,
    load: ModelLoad,
}

impl<M> Clone for ModelThread<M> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            load: self.load.clone(),
        }
    }
}

impl<M> ModelThread<M> {
    /// Calls in progress on this model, shared by every clone of this handle.
    pub fn load(&self) -> ModelLoad {
        self.load.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelThreadError {
    #[error("the {0} model thread has stopped")]
    Stopped(String),
    #[error("cannot start the {name} model: {message}")]
    Start { name: String, message: String },
}

impl<M: 'static> ModelThread<M> {
    /// Starts `workers` threads (at least one), each building its own model with `build`
    /// and then serving calls from one shared queue. Returns once every model is loaded,
    /// with what the first `build` reported about it (version, input size...), or with
    /// the first load error.
    pub fn spawn<B, E, I>(
        name: &str,
        workers: usize,
        build: B,
    ) -> Result<(Self, I), ModelThreadError>
    where
        B: Fn() -> Result<(M, I), E> + Send + Sync + 'static,
        E: std::fmt::Display,
        I: Send + 'static,
    {
        let workers = workers.max(1);
        // One queued batch beside each one running: enough to keep the models busy,
        // small enough that slow models push back on the batcher.
        let (tx, rx) = mpsc::channel::<Job<M>>(workers);
        let rx = Arc::new(Mutex::new(rx));
        let build = Arc::new(build);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<I, String>>();
        for w in 0..workers {
            let (rx, build, ready_tx) = (rx.clone(), build.clone(), ready_tx.clone());
            std::thread::Builder::new()
                .name(format!("imgfeat-model-{name}-{w}"))
                .spawn(move || {
                    let mut model = match build() {
                        Ok((m, info)) => {
                            let _ = ready_tx.send(Ok(info));
                            m
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    drop(ready_tx);
                    while let Some(job) = next_job(&rx) {
                        job(&mut model);
                    }
                })
                .map_err(|e| ModelThreadError::Start {
                    name: name.to_string(),
                    message: e.to_string(),
                })?;
        }
        drop(ready_tx);
        let mut first = None;
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(info)) => {
                    first.get_or_insert(info);
                }
                Ok(Err(message)) => {
                    return Err(ModelThreadError::Start {
                        name: name.to_string(),
                        message,
                    });
                }
                Err(_) => break,
            }
        }
        match first {
            Some(info) => Ok((
                Self {
                    tx,
                    load: ModelLoad::with_workers(workers),
                },
                info,
            )),
            None => Err(ModelThreadError::Start {
                name: name.to_string(),
                message: "the thread exited while loading".into(),
            }),
        }
    }

    /// Runs `f` with the model on its thread.
    pub async fn call<R, F>(&self, f: F) -> Result<R, ModelThreadError>
    where
        F: FnOnce(&mut M) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.call_counted(self.load.begin(), f).await
    }

    /// As [`Self::call`], counted in the model's load from when `busy` was taken: a
    /// batcher that hands its batch to a task marks the model busy before the task gets
    /// to run, so the next batch does not close early on a model that looks idle.
    pub async fn call_counted<R, F>(&self, busy: Busy, f: F) -> Result<R, ModelThreadError>
    where
        F: FnOnce(&mut M) -> R + Send + 'static,
        R: Send + 'static,
    {
        let _busy = busy;
        let (tx, rx) = oneshot::channel();
        let job: Job<M> = Box::new(move |m| {
            let _ = tx.send(f(m));
        });
        self.tx
            .send(job)
            .await
            .map_err(|_| ModelThreadError::Stopped(std::any::type_name::<M>().into()))?;
        rx.await
            .map_err(|_| ModelThreadError::Stopped(std::any::type_name::<M>().into()))
    }
}

/// The next job for one worker; `None` once every handle is gone. The lock is held
/// while waiting: only the workers take it, and one of them waiting is enough.
fn next_job<M>(rx: &Mutex<mpsc::Receiver<Job<M>>>) -> Option<Job<M>> {
    let mut rx = rx.lock().unwrap_or_else(|p| p.into_inner());
    rx.blocking_recv()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_calls_in_order_on_one_thread() {
        let (t, info) =
            ModelThread::spawn("counter", 1, || Ok::<_, String>((0u32, "ready"))).unwrap();
        assert_eq!(info, "ready");
        for i in 1..=3 {
            assert_eq!(
                t.call(|m| {
                    *m += 1;
                    *m
                })
                .await
                .unwrap(),
                i
            );
        }
    }

    #[test]
    fn a_failed_load_is_reported() {
        let err = ModelThread::<u32>::spawn("broken", 2, || Err::<(u32, ()), _>("no such file"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("no such file"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_run_batches_at_the_same_time() {
        // Each call waits at a barrier for a second call: only two workers running
        // at once get past it.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (t, ()) = ModelThread::spawn("pair", 2, || Ok::<_, String>(((), ()))).unwrap();
        assert!(t.load().is_idle());
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let (t, barrier) = (t.clone(), barrier.clone());
                tokio::spawn(async move {
                    t.call(move |_| {
                        barrier.wait();
                    })
                    .await
                })
            })
            .collect();
        for c in calls {
            tokio::time::timeout(std::time::Duration::from_secs(10), c)
                .await
                .expect("two workers ran the two calls together")
                .unwrap()
                .unwrap();
        }
    }
}
