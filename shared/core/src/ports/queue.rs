use async_trait::async_trait;

use crate::{ErrorClass, FailureReason};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue closed")]
    Closed,
}

impl QueueError {
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

/// How a delivery ends. Adapters map these onto their broker: ack, requeue through a
/// delayed retry queue, or dead-letter with the reason in a header.
#[async_trait]
pub trait DeliveryHandle: Send + Sync {
    /// The job's result is durable: forget the message.
    async fn ack(&self) -> Result<(), QueueError>;
    /// A transient failure: redeliver later, or dead-letter once attempts run out.
    async fn retry(&self, reason: &FailureReason) -> Result<(), QueueError>;
    /// A permanent failure: park the message with its reason, never redeliver.
    async fn dead_letter(&self, reason: &FailureReason) -> Result<(), QueueError>;
    /// Whether `retry` would dead-letter this delivery: its queue's retry policy has no
    /// attempt left. Stages ask here rather than counting attempts against a limit of
    /// their own, which could disagree with the queue's.
    fn is_last_attempt(&self) -> bool;
}

/// A job taken from a queue, with the handle that settles it.
pub struct Delivery<M> {
    pub job: M,
    /// 1 for the first delivery, counting retries after that.
    pub attempt: u32,
    pub handle: Box<dyn DeliveryHandle>,
}

/// A stream of jobs. Adapters decode and validate messages themselves and dead-letter
/// malformed ones, so a worker only ever sees valid jobs.
#[async_trait]
pub trait JobConsumer<M: Send>: Send {
    /// The next job; `None` once the queue is closed and drained.
    async fn next(&mut self) -> Option<Result<Delivery<M>, QueueError>>;
}

/// Publishes jobs; returns only when the queue has them (publisher confirms).
#[async_trait]
pub trait JobPublisher<M: Send + Sync>: Send + Sync {
    async fn publish(&self, jobs: &[M]) -> Result<(), QueueError>;
}
