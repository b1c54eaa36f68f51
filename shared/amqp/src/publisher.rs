use std::marker::PhantomData;

use async_trait::async_trait;
use imgfeat_core::message::encode;
use imgfeat_core::ports::{JobPublisher, QueueError};
use lapin::types::FieldTable;
use serde::Serialize;

use crate::confirm::{ConfirmChannel, Outgoing};
use crate::{AmqpConnection, WorkQueue};

/// Publishes jobs to one work queue as persistent messages; `publish` returns once the
/// broker confirmed all of them, riding out reconnects up to `publish_timeout_ms`.
pub struct AmqpPublisher<M> {
    channel: ConfirmChannel,
    queue: String,
    conn: AmqpConnection,
    _jobs: PhantomData<fn(M)>,
}

impl<M> AmqpPublisher<M> {
    pub fn new(conn: &AmqpConnection, queue: WorkQueue) -> Self {
        Self {
            channel: ConfirmChannel::new(conn),
            queue: conn.topology().queue(queue),
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
            .map(|job| Outgoing {
                queue: self.queue.clone(),
                body: encode(job),
                headers: FieldTable::default(),
            })
            .collect();
        self.channel
            .publish(&messages, self.conn.config().publish_timeout())
            .await
            .map_err(QueueError::from)
    }
}
