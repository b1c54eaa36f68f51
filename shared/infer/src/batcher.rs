//! The batcher of one model: callers from any request submit items, and the pipeline's
//! batch engine (`imgfeat_pipeline::batch_runs`, the workers' own) closes batches and
//! keeps every model worker busy: the next batch forms and runs while others are still
//! in the model. Just before a batch runs, the items whose deadline passed (or whose
//! caller left) are dropped; each caller is answered. It owns its metrics: batch size,
//! wait, queue length, drops.

use std::future::Future;
use std::time::Duration;

use imgfeat_exec::model_load::{Busy, ModelLoad};
use imgfeat_pipeline::BatchPolicy;
use imgfeat_pipeline::batch_runs::run_batches;
use prometheus::{Histogram, IntCounter, IntGauge};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::metrics::BatchMetrics;

/// Why an item got no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    #[error("the deadline passed before the {0} model ran")]
    Expired(&'static str),
    #[error("the {stage} model failed: {message}")]
    Failed {
        stage: &'static str,
        message: String,
    },
    #[error("the {0} batcher has stopped")]
    Stopped(&'static str),
}

/// An item's output, with how long it waited for its batch and how long the batch ran.
#[derive(Debug)]
pub struct Done<O> {
    pub output: O,
    pub waited: Duration,
    pub ran: Duration,
}

struct Pending<I, O> {
    input: I,
    deadline: Option<Instant>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Done<O>, Dropped>>,
}

pub struct Batcher<I, O> {
    tx: mpsc::Sender<Pending<I, O>>,
    stage: &'static str,
    queued: IntGauge,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            stage: self.stage,
            queued: self.queued.clone(),
        }
    }
}

/// The metric children of one batcher.
struct Meters {
    size: Histogram,
    wait: Histogram,
    queued: IntGauge,
    expired: IntCounter,
    left: IntCounter,
    inferred: IntCounter,
}

impl Meters {
    fn new(m: &BatchMetrics, model: &str, stage: &str) -> Self {
        Self {
            size: m.size.with_label_values(&[model, stage]),
            wait: m.wait.with_label_values(&[model, stage]),
            queued: m.queued.with_label_values(&[model, stage]),
            expired: m.dropped.with_label_values(&[model, stage, "deadline"]),
            left: m.dropped.with_label_values(&[model, stage, "caller_left"]),
            inferred: m.inferred.with_label_values(&[model, stage]),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batching task. `run` sends one batch through the model, counted in
    /// `load` by the `Busy` it is given (`ModelThread::call_counted`), and returns one
    /// output per input, in order. `capacity` bounds the queue; admission keeps it from
    /// filling.
    pub fn spawn<F, Fut>(
        model: &str,
        stage: &'static str,
        policy: BatchPolicy,
        load: ModelLoad,
        capacity: usize,
        metrics: &BatchMetrics,
        run: F,
    ) -> Self
    where
        F: Fn(Vec<I>, Busy) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>, String>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Pending<I, O>>(capacity.max(1));
        let meters = Meters::new(metrics, model, stage);
        let queued = meters.queued.clone();
        tokio::spawn(async move {
            let started = |size: usize, waited: Duration| {
                meters.queued.sub(size as i64);
                meters.size.observe(size as f64);
                meters.wait.observe(waited.as_secs_f64());
            };
            let start = |items: Vec<Pending<I, O>>, busy: Busy| {
                let live = drop_the_late(items, Instant::now(), stage, &meters);
                let started = Instant::now();
                let (inputs, waiting): (Vec<I>, Vec<_>) = live
                    .into_iter()
                    .map(|p| (p.input, (p.enqueued, p.reply)))
                    .unzip();
                let expected = inputs.len();
                let running = (expected > 0).then(|| {
                    meters.inferred.inc_by(expected as u64);
                    run(inputs, busy)
                });
                async move {
                    if let Some(running) = running {
                        let outputs = running.await;
                        answer(
                            outputs,
                            expected,
                            waiting,
                            started,
                            started.elapsed(),
                            stage,
                        );
                    }
                }
            };
            run_batches(&mut rx, &policy, &load, started, start).await;
        });
        Self { tx, stage, queued }
    }

    /// Queues `input` for the next batch and waits for its output.
    pub async fn submit(&self, input: I, deadline: Option<Instant>) -> Result<Done<O>, Dropped> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending {
            input,
            deadline,
            enqueued: Instant::now(),
            reply,
        };
        self.queued.inc();
        if self.tx.send(pending).await.is_err() {
            self.queued.dec();
            return Err(Dropped::Stopped(self.stage));
        }
        rx.await.unwrap_or(Err(Dropped::Stopped(self.stage)))
    }
}

/// The items still worth running: the rest are answered (deadline) or forgotten
/// (nobody waits for them) here, before the model sees them.
fn drop_the_late<I, O>(
    items: Vec<Pending<I, O>>,
    now: Instant,
    stage: &'static str,
    meters: &Meters,
) -> Vec<Pending<I, O>> {
    let mut live = Vec::with_capacity(items.len());
    for p in items {
        if p.reply.is_closed() {
            meters.left.inc();
        } else if p.deadline.is_some_and(|d| d <= now) {
            meters.expired.inc();
            let _ = p.reply.send(Err(Dropped::Expired(stage)));
        } else {
            live.push(p);
        }
    }
    live
}

type Waiting<O> = (Instant, oneshot::Sender<Result<Done<O>, Dropped>>);

fn answer<O>(
    outputs: Result<Vec<O>, String>,
    expected: usize,
    waiting: Vec<Waiting<O>>,
    started: Instant,
    ran: Duration,
    stage: &'static str,
) {
    let outputs = outputs.and_then(|o| {
        if o.len() == expected {
            Ok(o)
        } else {
            Err(format!("{} outputs for {expected} inputs", o.len()))
        }
    });
    match outputs {
        Ok(outputs) => {
            for ((enqueued, reply), output) in waiting.into_iter().zip(outputs) {
                let _ = reply.send(Ok(Done {
                    output,
                    waited: started.duration_since(enqueued),
                    ran,
                }));
            }
        }
        Err(message) => {
            tracing::error!(stage, %message, "a batch failed");
            for (_, reply) in waiting {
                let _ = reply.send(Err(Dropped::Failed {
                    stage,
                    message: message.clone(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::EngineMetrics;

    fn metrics() -> BatchMetrics {
        EngineMetrics::register(&prometheus::Registry::new(), "test")
            .unwrap()
            .batch
    }

    #[tokio::test]
    async fn an_expired_item_is_dropped_before_the_model_runs() {
        let m = metrics();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let policy = BatchPolicy {
            max_batch: 4,
            max_wait_ms: 10,
        };
        let b = {
            let seen = seen.clone();
            Batcher::spawn(
                "m",
                "detect",
                policy,
                ModelLoad::default(),
                8,
                &m,
                move |xs: Vec<u32>, _busy| {
                    seen.lock().unwrap().extend(xs.iter().copied());
                    let out: Vec<u32> = xs.iter().map(|x| x * 2).collect();
                    async move { Ok::<_, String>(out) }
                },
            )
        };
        let now = Instant::now();
        let late = b.submit(1, Some(now)).await;
        assert_eq!(late.err(), Some(Dropped::Expired("detect")));
        let ok = b
            .submit(2, Some(now + Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(ok.output, 4);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![2],
            "the late item never reached the model"
        );
        let dropped = m
            .dropped
            .with_label_values(&["m", "detect", "deadline"])
            .get();
        assert_eq!(dropped, 1);
        assert_eq!(m.inferred.with_label_values(&["m", "detect"]).get(), 1);
    }

    #[tokio::test]
    async fn a_short_answer_fails_every_item_of_the_batch() {
        let m = metrics();
        let b = Batcher::spawn(
            "m",
            "extract",
            BatchPolicy::default(),
            ModelLoad::default(),
            8,
            &m,
            |_xs: Vec<u32>, _busy| async { Ok(Vec::<u32>::new()) },
        );
        let err = b.submit(1, None).await.unwrap_err();
        assert!(
            matches!(
                err,
                Dropped::Failed {
                    stage: "extract",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
