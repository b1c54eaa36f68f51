//! Consuming one or more work queues in strict priority order.
//!
//! Each queue has its own channel, prefetch and lapin consumer; `next()` polls them in
//! the order given, so whenever the first (live) queue has a delivery buffered it wins
//! over everything the later (backfill) queues hold. The per-channel prefetch bounds
//! how much backfill can sit locally ahead of a new upload.

use std::future::poll_fn;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_lite::Stream;
use imgfeat_core::message::decode;
use imgfeat_core::ports::{Delivery, JobConsumer, QueueError};
use imgfeat_core::{FailureKind, FailureReason};
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::confirm::ConfirmChannel;
use crate::handle::AmqpDeliveryHandle;
use crate::{AmqpConnection, AmqpError, WorkQueue, headers};

struct Subscription {
    queue: WorkQueue,
    channel: Channel,
    consumer: Consumer,
}

/// Makes a consumer's `next()` return `None`: the first step of a graceful shutdown.
#[derive(Clone)]
pub struct ConsumerStop(pub(crate) Arc<watch::Sender<bool>>);

impl ConsumerStop {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// A [`JobConsumer`] over RabbitMQ. Messages that do not decode as `M` (bad JSON,
/// unknown schema version) are dead-lettered here with the reason, never handed out.
pub struct AmqpConsumer<M> {
    conn: AmqpConnection,
    queues: Vec<WorkQueue>,
    subscriptions: Vec<Subscription>,
    settle: Arc<ConfirmChannel>,
    stop: Arc<watch::Sender<bool>>,
    _jobs: PhantomData<fn() -> M>,
}

impl<M> AmqpConsumer<M> {
    /// Consumes `queues`, highest priority first (e.g. `[Detect, DetectBackfill]`).
    /// Nothing happens on the broker until the first `next()`.
    pub fn new(conn: &AmqpConnection, queues: &[WorkQueue]) -> Self {
        Self {
            conn: conn.clone(),
            queues: queues.to_vec(),
            subscriptions: Vec::new(),
            settle: Arc::new(ConfirmChannel::new(conn)),
            stop: Arc::new(watch::Sender::new(false)),
            _jobs: PhantomData,
        }
    }

    pub fn stopper(&self) -> ConsumerStop {
        ConsumerStop(self.stop.clone())
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    async fn subscribe(&mut self) -> Result<(), AmqpError> {
        let prefetch = self.conn.config().prefetch;
        let mut subscriptions = Vec::with_capacity(self.queues.len());
        for &queue in &self.queues {
            let channel = self.conn.channel().await?;
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await
                .map_err(AmqpError::broker("basic.qos"))?;
            let consumer = channel
                .basic_consume(
                    self.conn.topology().queue(queue).into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(AmqpError::broker("basic.consume"))?;
            subscriptions.push(Subscription {
                queue,
                channel,
                consumer,
            });
        }
        self.subscriptions = subscriptions;
        Ok(())
    }

    /// Stops deliveries and closes the channels. Call after settling the deliveries in
    /// hand: what the broker had sent but nobody took goes back to the queue.
    pub async fn close(mut self) {
        self.stopper().stop();
        for s in self.subscriptions.drain(..) {
            let _ = s
                .channel
                .basic_cancel(s.consumer.tag(), BasicCancelOptions::default())
                .await;
            let _ = s.channel.close(200, "consumer closed".into()).await;
        }
    }
}

enum Polled {
    Delivery(usize, Box<lapin::message::Delivery>),
    Broken(usize, Option<lapin::Error>),
    Stopped,
}

/// Polls every subscription once, highest priority first.
fn poll_subscriptions(subscriptions: &mut [Subscription], cx: &mut Context<'_>) -> Poll<Polled> {
    for (i, s) in subscriptions.iter_mut().enumerate() {
        match std::pin::Pin::new(&mut s.consumer).poll_next(cx) {
            Poll::Ready(Some(Ok(d))) => return Poll::Ready(Polled::Delivery(i, Box::new(d))),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Polled::Broken(i, Some(e))),
            Poll::Ready(None) => return Poll::Ready(Polled::Broken(i, None)),
            Poll::Pending => {}
        }
    }
    Poll::Pending
}

impl<M: DeserializeOwned + Send> AmqpConsumer<M> {
    async fn poll_prioritised(&mut self) -> Polled {
        let mut stop = self.stop.subscribe();
        let subscriptions = &mut self.subscriptions;
        let deliveries = poll_fn(|cx| poll_subscriptions(subscriptions, cx));
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => Polled::Stopped,
            polled = deliveries => polled,
        }
    }

    /// Drops every subscription after one broke, so that the next `next()` resubscribes.
    fn broken(&mut self, i: usize, e: Option<lapin::Error>) {
        let queue = self.subscriptions[i].queue;
        match e {
            Some(e) => tracing::warn!(%queue, error = %e, "consumer broke; resubscribing"),
            None => tracing::warn!(%queue, "consumer cancelled; resubscribing"),
        }
        // Drop every subscription: one broken channel usually means a broken
        // connection, and resubscribing all keeps the priority order intact.
        self.subscriptions.clear();
    }

    /// A job the client already holds (prefetched), without waiting for the broker:
    /// `None` when nothing is buffered. For filling a batch with what has arrived.
    /// Unlike a zero timeout around [`next`](JobConsumer::next), it never abandons a
    /// delivery half-way: a malformed message met on the way is dead-lettered (or
    /// requeued) to the end before the next one is looked at.
    pub async fn next_buffered(&mut self) -> Option<Delivery<M>> {
        loop {
            if self.stopped() || self.subscriptions.is_empty() {
                return None;
            }
            let subscriptions = &mut self.subscriptions;
            let polled = poll_fn(|cx| match poll_subscriptions(subscriptions, cx) {
                Poll::Ready(p) => Poll::Ready(Some(p)),
                Poll::Pending => Poll::Ready(None),
            })
            .await?;
            match polled {
                Polled::Delivery(i, d) => {
                    if let Some(delivery) = self.accept(i, d).await {
                        return Some(delivery);
                    }
                }
                Polled::Broken(i, e) => {
                    self.broken(i, e);
                    return None;
                }
                Polled::Stopped => return None,
            }
        }
    }

    /// Hands out a decoded delivery, or dead-letters an undecodable one and returns None.
    async fn accept(&self, i: usize, d: Box<lapin::message::Delivery>) -> Option<Delivery<M>> {
        let sub = &self.subscriptions[i];
        if !d.acker.usable() {
            // Buffered before its channel died: it can no longer be settled and the
            // broker already has it back, so handing it out would only waste work.
            tracing::debug!(queue = %sub.queue, "skipping a delivery of a dead channel");
            return None;
        }
        let attempt = headers::attempts(&d.properties);
        let decoded = decode::<M>(&d.data);
        let d = *d;
        let handle = AmqpDeliveryHandle {
            conn: self.conn.clone(),
            settle: self.settle.clone(),
            queue: sub.queue,
            attempt,
            body: d.data,
            properties: d.properties,
            acker: d.acker,
            _channel: sub.channel.clone(),
        };
        match decoded {
            Ok(job) => Some(Delivery {
                job,
                attempt,
                handle: Box::new(handle),
            }),
            Err(e) => {
                let reason = FailureReason::new(FailureKind::MalformedMessage, e.to_string());
                if let Err(err) = handle.dead_letter_inner(&reason).await {
                    tracing::warn!(error = %err, "could not dead-letter a malformed message; it will come back");
                }
                None
            }
        }
    }
}

#[async_trait]
impl<M: DeserializeOwned + Send> JobConsumer<M> for AmqpConsumer<M> {
    /// The next job, live queues first. Rides out broker restarts: a broken channel is
    /// re-opened with back-off (deliveries handed out before the break can no longer be
    /// acked; the broker redelivers them). `None` only once stopped or closed.
    async fn next(&mut self) -> Option<Result<Delivery<M>, QueueError>> {
        let mut backoff = self.conn.config().reconnect_backoff();
        loop {
            if self.stopped() {
                return None;
            }
            if self.subscriptions.is_empty() {
                let mut stop = self.stop.subscribe();
                // A stop must not wait for a broker that is not coming back.
                let connected = tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => return None,
                    c = self.conn.channel_retrying() => c,
                };
                if let Err(e) = connected {
                    tracing::info!(error = %e, "consumer stops");
                    return None;
                }
                if let Err(e) = self.subscribe().await {
                    self.subscriptions.clear();
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "could not start consuming");
                    let mut stop = self.stop.subscribe();
                    let _ = tokio::time::timeout(wait, stop.wait_for(|s| *s)).await;
                    continue;
                }
                backoff.reset();
            }
            match self.poll_prioritised().await {
                Polled::Stopped => return None,
                Polled::Delivery(i, d) => {
                    if let Some(delivery) = self.accept(i, d).await {
                        return Some(Ok(delivery));
                    }
                }
                Polled::Broken(i, e) => self.broken(i, e),
            }
        }
    }
}
