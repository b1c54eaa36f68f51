//! Settling one delivery: ack, retry through the TTL queues, or dead-letter with reason.
//! Retry and dead-letter publish a copy (confirmed) before acking the original, so a
//! crash in between duplicates the job rather than losing it. When the copy cannot be
//! published, the original goes straight back to its queue (nack with requeue): left
//! unsettled it would hold a prefetch slot, invisible, until its channel closed.

use std::sync::Arc;

use async_trait::async_trait;
use imgfeat_core::ports::{DeliveryHandle, QueueError};
use imgfeat_core::{FailureReason, now_ms};
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::{BasicProperties, Channel};

use crate::confirm::{ConfirmChannel, Outgoing};
use crate::{AmqpConnection, AmqpError, WorkQueue, headers};

pub(crate) struct AmqpDeliveryHandle {
    pub conn: AmqpConnection,
    pub settle: Arc<ConfirmChannel>,
    pub queue: WorkQueue,
    pub attempt: u32,
    pub body: Vec<u8>,
    pub properties: BasicProperties,
    pub acker: lapin::Acker,
    /// Keeps the delivery's channel open until the delivery is settled.
    pub _channel: Channel,
}

impl AmqpDeliveryHandle {
    async fn ack_original(&self) -> Result<(), AmqpError> {
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AmqpError::ChannelGone),
            Err(e) => Err(AmqpError::broker("basic.ack")(e)),
        }
    }

    /// Puts the message back on its queue at once, after its retry or dead-letter copy
    /// could not be published. A quorum queue counts this return against its delivery
    /// limit, so a message that can never be settled is still parked by the broker in
    /// the end instead of looping forever.
    async fn requeue_original(&self) {
        let opts = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        match self.acker.nack(opts).await {
            Ok(true) => {}
            // The channel is gone: the broker has the message back already.
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(queue = %self.queue, error = %e, "nack of an unsettled delivery")
            }
        }
    }

    /// Publishes a retry or dead-letter copy, or hands the original back on failure.
    async fn publish_copy_or_requeue(
        &self,
        queue: String,
        attempts: u32,
        reason: &FailureReason,
        dead: bool,
    ) -> Result<(), AmqpError> {
        let published = self.publish_copy(queue, attempts, reason, dead).await;
        if let Err(e) = &published {
            tracing::warn!(queue = %self.queue, error = %e, dead, "could not publish the settling copy; requeueing the message");
            self.requeue_original().await;
        }
        published
    }

    async fn publish_copy(
        &self,
        queue: String,
        attempts: u32,
        reason: &FailureReason,
        dead: bool,
    ) -> Result<(), AmqpError> {
        let mut h = headers::copy(&self.properties);
        headers::set_u64(&mut h, headers::ATTEMPTS, u64::from(attempts));
        headers::set_string(&mut h, headers::REASON, &reason.message);
        headers::set_string(&mut h, headers::KIND, reason.kind.as_str());
        headers::set_string(
            &mut h,
            headers::QUEUE,
            &self.conn.topology().queue(self.queue),
        );
        if dead {
            headers::set_u64(&mut h, headers::DEAD_AT_MS, now_ms());
        }
        let message = Outgoing::to_queue(queue, self.body.clone(), h);
        self.settle
            .publish(
                std::slice::from_ref(&message),
                self.conn.config().publish_timeout(),
            )
            .await
    }

    pub(crate) async fn dead_letter_inner(&self, reason: &FailureReason) -> Result<(), AmqpError> {
        let dlq = self.conn.topology().dlq(self.queue);
        self.publish_copy_or_requeue(dlq, self.attempt, reason, true)
            .await?;
        tracing::warn!(queue = %self.queue, attempt = self.attempt, reason = %reason, "dead-lettered");
        self.ack_original().await
    }
}

#[async_trait]
impl DeliveryHandle for AmqpDeliveryHandle {
    async fn ack(&self) -> Result<(), QueueError> {
        self.ack_original().await.map_err(QueueError::from)
    }

    async fn retry(&self, reason: &FailureReason) -> Result<(), QueueError> {
        if self.is_last_attempt() {
            let gave_up = FailureReason::new(
                reason.kind,
                format!(
                    "gave up after {} attempts: {}",
                    self.attempt, reason.message
                ),
            );
            return self
                .dead_letter_inner(&gave_up)
                .await
                .map_err(QueueError::from);
        }
        let topology = self.conn.topology();
        let delay = topology.retry_delay(self.attempt);
        let retry_queue = topology.retry_queue(self.queue, delay);
        self.publish_copy_or_requeue(retry_queue, self.attempt + 1, reason, false)
            .await
            .map_err(QueueError::from)?;
        tracing::debug!(queue = %self.queue, attempt = self.attempt, delay_ms = delay.as_millis() as u64, reason = %reason, "retry scheduled");
        self.ack_original().await.map_err(QueueError::from)
    }

    async fn dead_letter(&self, reason: &FailureReason) -> Result<(), QueueError> {
        self.dead_letter_inner(reason)
            .await
            .map_err(QueueError::from)
    }

    fn is_last_attempt(&self) -> bool {
        self.conn.topology().retry_policy().is_last(self.attempt)
    }
}
