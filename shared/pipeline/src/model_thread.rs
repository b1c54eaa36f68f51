//! A model on its own OS thread. ONNX Runtime sessions run with `&mut self` and use
//! their own intra-op threads; one dedicated thread per session (rather than a mutex
//! around a shared one) keeps inference off the async runtime and off the decode pool.

use tokio::sync::{mpsc, oneshot};

use crate::model_load::ModelLoad;

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
    /// Starts a thread that builds the model with `build` and then serves calls.
    /// Returns once the model is loaded, with what `build` reported about it (version,
    /// input size...), or with the load error.
    pub fn spawn<B, E, I>(name: &str, build: B) -> Result<(Self, I), ModelThreadError>
    where
        B: FnOnce() -> Result<(M, I), E> + Send + 'static,
        E: std::fmt::Display,
        I: Send + 'static,
    {
        // One queued batch beside the one running: enough to keep the model busy, small
        // enough that a slow model pushes back on the batcher.
        let (tx, mut rx) = mpsc::channel::<Job<M>>(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<I, String>>();
        let thread_name = format!("imgfeat-model-{name}");
        std::thread::Builder::new()
            .name(thread_name)
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
                while let Some(job) = rx.blocking_recv() {
                    job(&mut model);
                }
            })
            .map_err(|e| ModelThreadError::Start {
                name: name.to_string(),
                message: e.to_string(),
            })?;
        match ready_rx.recv() {
            Ok(Ok(info)) => Ok((
                Self {
                    tx,
                    load: ModelLoad::default(),
                },
                info,
            )),
            Ok(Err(message)) => Err(ModelThreadError::Start {
                name: name.to_string(),
                message,
            }),
            Err(_) => Err(ModelThreadError::Start {
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
        let _busy = self.load.begin();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_calls_in_order_on_one_thread() {
        let (t, info) = ModelThread::spawn("counter", || Ok::<_, String>((0u32, "ready"))).unwrap();
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
        let err = ModelThread::<u32>::spawn("broken", || Err::<(u32, ()), _>("no such file"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("no such file"));
    }
}
