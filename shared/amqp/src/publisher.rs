use std::marker::PhantomData;

use async_trait::async_trait;
use imgfeat_core::message::encode;
use imgfeat_core::ports::{JobPublisher, QueueError};
use lapin::types::FieldTable;
use serde::Serialize;

use crate::confirm::{ConfirmChannel, Outgoing};
use crate::{AmqpConnection, EventExchange, WorkQueue};

/// Publishes jobs to one work queue, or events to one fanout exchange, as persistent
/// messages; `publish` returns once the broker confirmed all of them, riding out
/// reconnects up to `publish_timeout_ms`.
pub struct AmqpPublisher<M> {
    channel: ConfirmChannel,
    /// Empty for a work queue.
    exchange: String,
    queue: String,
    conn: AmqpConnection,
    _jobs: PhantomData<fn(M)>,
}

impl<M> AmqpPublisher<M> {
    pub fn new(conn: &AmqpConnection, queue: WorkQueue) -> Self {
        Self {
            channel: ConfirmChannel::new(conn),
            exchange: String::new(),
            queue: conn.topology().queue(queue),
            conn: conn.clone(),
            _jobs: PhantomData,
        }
    }

    /// Publishes events to the fanout exchange `e`, for every follower bound to it.
    pub fn fanout(conn: &AmqpConnection, e: EventExchange) -> Self {
        Self {
            channel: ConfirmChannel::new(conn),
            exchange: conn.topology().exchange(e),
            queue: String::new(),
            conn: conn.clone(),
            _jobs: PhantomData,
        }
    }

    /// The full name of the queue this publisher feeds.
    pub fn queue_name(&self) -> &str {
        &self.queue
    }
}

#[async_trait]
impl<M: Serialize + Send + Sync> JobPublisher<M> for AmqpPublisher<M> {
    async fn publish(&self, jobs: &[M]) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let messages: Vec<Outgoing> = jobs
            .iter()
            .map(|job| {
                if self.exchange.is_empty() {
                    Outgoing::to_queue(self.queue.clone(), encode(job), FieldTable::default())
                } else {
                    Outgoing::to_fanout(self.exchange.clone(), encode(job))
                }
            })
            .collect();
        self.channel
            .publish(&messages, self.conn.config().publish_timeout())
            .await
            .map_err(QueueError::from)
    }
}
