//! The in-process queue adapter: the embedded mode's stand-in for RabbitMQ. Bounded, so
//! a producer waits for the workers; retries come back after a back-off, dead letters
//! are kept in memory for the run summary.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use imgfeat_core::ports::{Delivery, DeliveryHandle, JobConsumer, JobPublisher, QueueError};
use imgfeat_core::{FailureReason, RetryPolicy};
use tokio::sync::mpsc;

struct Envelope<M> {
    job: M,
    attempt: u32,
    /// Each queued message keeps the queue open until it is settled, so that a retry can
    /// still come back after every publisher is gone.
    reply: mpsc::Sender<Envelope<M>>,
}

/// The in-process queue's name for the one [`RetryPolicy`] (kept for its callers).
pub type LocalRetry = RetryPolicy;

/// The embedded run's policy: as many attempts as the fleet's default, but short waits,
/// because an embedded run has no broker outage to ride out, and someone waits for it.
pub fn in_process_retry() -> RetryPolicy {
    RetryPolicy {
        delays_ms: vec![200, 400, 800, 1_600],
        ..RetryPolicy::default()
    }
}

/// Messages dead-lettered during a run, with their reasons.
#[derive(Default)]
pub struct DeadLetters<M> {
    items: Mutex<Vec<(M, FailureReason)>>,
}

impl<M: Clone> DeadLetters<M> {
    pub fn snapshot(&self) -> Vec<(M, FailureReason)> {
        self.items.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

pub struct LocalPublisher<M> {
    tx: mpsc::Sender<Envelope<M>>,
}

pub struct LocalConsumer<M> {
    rx: mpsc::Receiver<Envelope<M>>,
    retry: Arc<RetryPolicy>,
    dead: Arc<DeadLetters<M>>,
}

/// A bounded in-process queue. It ends (the consumer sees `None`) once every publisher
/// and every unsettled delivery is gone.
pub fn local_queue<M: Clone + Send + Sync + 'static>(
    capacity: usize,
    retry: RetryPolicy,
) -> (LocalPublisher<M>, LocalConsumer<M>, Arc<DeadLetters<M>>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dead = Arc::new(DeadLetters {
        items: Mutex::new(Vec::new()),
    });
    let consumer = LocalConsumer {
        rx,
        retry: Arc::new(retry),
        dead: dead.clone(),
    };
    (LocalPublisher { tx }, consumer, dead)
}

#[async_trait]
impl<M: Clone + Send + Sync + 'static> JobPublisher<M> for LocalPublisher<M> {
    async fn publish(&self, jobs: &[M]) -> Result<(), QueueError> {
        for job in jobs {
            self.tx
                .send(Envelope {
                    job: job.clone(),
                    attempt: 1,
                    reply: self.tx.clone(),
                })
                .await
                .map_err(|_| QueueError::Closed)?;
        }
        Ok(())
    }
}

#[async_trait]
impl<M: Clone + Send + Sync + 'static> JobConsumer<M> for LocalConsumer<M> {
    async fn next(&mut self) -> Option<Result<Delivery<M>, QueueError>> {
        let envelope = self.rx.recv().await?;
        let handle = LocalHandle {
            tx: envelope.reply,
            job: envelope.job.clone(),
            attempt: envelope.attempt,
            retry: self.retry.clone(),
            dead: self.dead.clone(),
        };
        Some(Ok(Delivery {
            job: envelope.job,
            attempt: envelope.attempt,
            handle: Box::new(handle),
        }))
    }
}

struct LocalHandle<M> {
    tx: mpsc::Sender<Envelope<M>>,
    job: M,
    attempt: u32,
    retry: Arc<RetryPolicy>,
    dead: Arc<DeadLetters<M>>,
}

impl<M> LocalHandle<M> {
    fn bury(&self, reason: &FailureReason)
    where
        M: Clone,
    {
        if let Ok(mut v) = self.dead.items.lock() {
            v.push((self.job.clone(), reason.clone()));
        }
    }
}

#[async_trait]
impl<M: Clone + Send + Sync + 'static> DeliveryHandle for LocalHandle<M> {
    async fn ack(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn retry(&self, reason: &FailureReason) -> Result<(), QueueError> {
        if self.is_last_attempt() {
            self.bury(reason);
            return Ok(());
        }
        let delay = self.retry.delay(self.attempt);
        let tx = self.tx.clone();
        let envelope = Envelope {
            job: self.job.clone(),
            attempt: self.attempt + 1,
            reply: self.tx.clone(),
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(envelope).await;
        });
        Ok(())
    }

    async fn dead_letter(&self, reason: &FailureReason) -> Result<(), QueueError> {
        self.bury(reason);
        Ok(())
    }

    fn is_last_attempt(&self) -> bool {
        self.retry.is_last(self.attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgfeat_core::FailureKind;

    #[tokio::test(start_paused = true)]
    async fn retries_come_back_then_dead_letter_and_the_queue_ends() {
        let retry = RetryPolicy {
            max_attempts: 2,
            delays_ms: vec![10],
        };
        let (publisher, mut consumer, dead) = local_queue::<u32>(4, retry);
        publisher.publish(&[7, 8]).await.unwrap();
        drop(publisher);
        let reason = FailureReason::new(FailureKind::Unavailable, "store down");

        let d = consumer.next().await.unwrap().unwrap();
        assert_eq!((d.job, d.attempt), (7, 1));
        d.handle.retry(&reason).await.unwrap();
        drop(d);
        let d = consumer.next().await.unwrap().unwrap();
        assert_eq!((d.job, d.attempt), (8, 1));
        d.handle.ack().await.unwrap();
        drop(d);
        let d = consumer.next().await.unwrap().unwrap();
        assert_eq!((d.job, d.attempt), (7, 2), "the retry came back");
        d.handle.retry(&reason).await.unwrap();
        drop(d);
        assert!(
            consumer.next().await.is_none(),
            "out of attempts: dead-lettered"
        );
        let dead = dead.snapshot();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].0, 7);
    }
}
