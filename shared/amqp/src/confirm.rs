//! A publisher-confirms channel that re-opens itself: the one path by which this crate
//! puts messages on the broker (jobs, retries, dead letters, requeues).

use std::time::{Duration, Instant};

use lapin::Channel;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use tokio::sync::Mutex;

use crate::{AmqpConnection, AmqpError, headers};

/// One message to publish: to a queue (through the default exchange) or to a fanout
/// exchange.
pub(crate) struct Outgoing {
    /// Empty: the default exchange, which routes by queue name.
    pub exchange: String,
    /// The queue, through the default exchange; ignored by a fanout.
    pub queue: String,
    pub body: Vec<u8>,
    pub headers: FieldTable,
}

impl Outgoing {
    pub fn to_queue(queue: String, body: Vec<u8>, headers: FieldTable) -> Self {
        Self {
            exchange: String::new(),
            queue,
            body,
            headers,
        }
    }

    pub fn to_fanout(exchange: String, body: Vec<u8>) -> Self {
        Self {
            exchange,
            queue: String::new(),
            body,
            headers: FieldTable::default(),
        }
    }

    /// Where it goes, for errors.
    fn target(&self) -> &str {
        if self.exchange.is_empty() {
            &self.queue
        } else {
            &self.exchange
        }
    }
}

pub(crate) struct ConfirmChannel {
    conn: AmqpConnection,
    channel: Mutex<Option<Channel>>,
}

impl ConfirmChannel {
    pub fn new(conn: &AmqpConnection) -> Self {
        Self {
            conn: conn.clone(),
            channel: Mutex::new(None),
        }
    }

    /// Publishes all messages and returns once the broker confirmed every one of them,
    /// reconnecting and republishing the whole batch on failure until `timeout`. A
    /// republish after a lost confirm may duplicate messages: consumers are idempotent.
    pub async fn publish(&self, messages: &[Outgoing], timeout: Duration) -> Result<(), AmqpError> {
        let deadline = Instant::now() + timeout;
        let mut backoff = self.conn.config().reconnect_backoff();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let err = match tokio::time::timeout(remaining, self.publish_once(messages)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e @ (AmqpError::Closed | AmqpError::Unroutable(_)))) => return Err(e),
                Ok(Err(e)) => e,
                Err(_) => AmqpError::Timeout(timeout),
            };
            *self.channel.lock().await = None;
            let wait = backoff.next_delay();
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "publish failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn publish_once(&self, messages: &[Outgoing]) -> Result<(), AmqpError> {
        // Held across the batch: confirms are per channel, and one batch at a time keeps
        // "this batch is confirmed" simple to reason about.
        let mut guard = self.channel.lock().await;
        let channel = match guard.as_ref().filter(|c| c.status().connected()) {
            Some(c) => c.clone(),
            None => {
                let c = self.conn.channel().await?;
                c.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(AmqpError::broker("confirm.select"))?;
                *guard = Some(c.clone());
                c
            }
        };
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let confirm = channel
                .basic_publish(
                    m.exchange.as_str().into(),
                    m.queue.as_str().into(),
                    // A job must land in its queue: unroutable, it comes back instead of
                    // vanishing. An event may have no follower bound yet, which is no
                    // loss: a follower binds before it scans the store.
                    BasicPublishOptions {
                        mandatory: m.exchange.is_empty(),
                        ..BasicPublishOptions::default()
                    },
                    &m.body,
                    headers::properties(m.headers.clone()),
                )
                .await
                .map_err(AmqpError::broker("basic.publish"))?;
            pending.push(confirm);
        }
        for (m, confirm) in messages.iter().zip(pending) {
            let confirmation = confirm
                .await
                .map_err(AmqpError::broker("publisher confirm"))?;
            if confirmation.is_nack() {
                return Err(AmqpError::Nacked(m.target().to_owned()));
            }
            if confirmation.take_message().is_some() {
                return Err(AmqpError::Unroutable(m.target().to_owned()));
            }
        }
        Ok(())
    }
}
