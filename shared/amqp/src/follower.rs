//! Following a fanout exchange through a queue of one's own: declared and bound before
//! anything else (see [`Topology::declare_follower`]), re-bound and re-consumed after
//! every reconnect. Events that do not decode go to the follower's DLQ at once; the
//! rest are handed out to be acked once applied, or sent back when they cannot be yet.

use std::marker::PhantomData;
use std::sync::Arc;

use futures_lite::StreamExt;
use imgfeat_core::message::decode;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::{AmqpConnection, AmqpError, ConsumerStop, EventExchange};

struct Subscription {
    _channel: Channel,
    consumer: Consumer,
}

pub struct EventFollower<M> {
    conn: AmqpConnection,
    exchange: EventExchange,
    follower: String,
    subscription: Option<Subscription>,
    stop: Arc<watch::Sender<bool>>,
    _events: PhantomData<fn() -> M>,
}

/// One event, to be settled once: [`ack`](Self::ack) after it is applied,
/// [`requeue`](Self::requeue) when it could not be (it comes back).
pub struct Followed<M> {
    pub event: M,
    /// Whether the broker delivered it before (to this or an earlier run).
    pub redelivered: bool,
    acker: lapin::Acker,
}

impl<M> Followed<M> {
    pub async fn ack(self) -> Result<(), AmqpError> {
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AmqpError::ChannelGone),
            Err(e) => Err(AmqpError::broker("basic.ack")(e)),
        }
    }

    pub async fn requeue(self) -> Result<(), AmqpError> {
        let opts = BasicNackOptions {
            requeue: true,
            ..BasicNackOptions::default()
        };
        match self.acker.nack(opts).await {
            // A closed channel hands it back to the broker all the same.
            Ok(_) => Ok(()),
            Err(e) => Err(AmqpError::broker("basic.nack")(e)),
        }
    }
}

impl<M: DeserializeOwned> EventFollower<M> {
    /// The follower `follower` (unique per reader: two readers of one queue would
    /// split its events between them) of exchange `e`.
    pub fn new(conn: &AmqpConnection, e: EventExchange, follower: &str) -> Self {
        Self {
            conn: conn.clone(),
            exchange: e,
            follower: follower.to_owned(),
            subscription: None,
            stop: Arc::new(watch::Sender::new(false)),
            _events: PhantomData,
        }
    }

    pub fn queue_name(&self) -> String {
        self.conn
            .topology()
            .follower_queue(self.exchange, &self.follower)
    }

    /// Makes [`next`](Self::next) return `None` (and [`bind`](Self::bind) give up).
    pub fn stopper(&self) -> ConsumerStop {
        ConsumerStop(self.stop.clone())
    }

    /// Declares and binds the queue, waiting for the broker as long as it takes (or
    /// until stopped): from then on the broker keeps every event for this follower.
    pub async fn bind(&self) -> Result<(), AmqpError> {
        let mut stop = self.stop.subscribe();
        let mut backoff = self.conn.config().reconnect_backoff();
        loop {
            let attempt = async {
                let channel = self.conn.channel_retrying().await?;
                let topology = self.conn.topology();
                topology
                    .declare_follower(&channel, self.exchange, &self.follower)
                    .await?;
                let _ = channel.close(200, "follower bound".into()).await;
                Ok::<(), AmqpError>(())
            };
            let outcome = tokio::select! {
                biased;
                _ = stopped(&mut stop) => return Err(AmqpError::Closed),
                outcome = attempt => outcome,
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(AmqpError::Closed) => return Err(AmqpError::Closed),
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "could not bind the follower queue");
                    let _ = tokio::time::timeout(wait, stop.wait_for(|s| *s)).await;
                }
            }
        }
    }

    async fn subscribe(&mut self) -> Result<(), AmqpError> {
        let channel = self.conn.channel().await?;
        let queue = self
            .conn
            .topology()
            .declare_follower(&channel, self.exchange, &self.follower)
            .await?;
        channel
            .basic_qos(self.conn.config().prefetch, BasicQosOptions::default())
            .await
            .map_err(AmqpError::broker("basic.qos"))?;
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(AmqpError::broker("basic.consume"))?;
        self.subscription = Some(Subscription {
            _channel: channel,
            consumer,
        });
        Ok(())
    }

    /// The next event; rides out broker restarts (events handed out before a break
    /// come again: applying one twice must be harmless). `None` once stopped.
    pub async fn next(&mut self) -> Option<Followed<M>> {
        let mut backoff = self.conn.config().reconnect_backoff();
        let mut stop = self.stop.subscribe();
        loop {
            if *stop.borrow() {
                return None;
            }
            let Some(sub) = self.subscription.as_mut() else {
                let subscribed = tokio::select! {
                    biased;
                    _ = stopped(&mut stop) => return None,
                    c = self.conn.channel_retrying() => match c {
                        Ok(_) => self.subscribe().await,
                        Err(e) => Err(e),
                    },
                };
                match subscribed {
                    Ok(()) => backoff.reset(),
                    Err(AmqpError::Closed) => return None,
                    Err(e) => {
                        self.subscription = None;
                        let wait = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "could not follow the event queue");
                        let _ = tokio::time::timeout(wait, stop.wait_for(|s| *s)).await;
                    }
                }
                continue;
            };
            let polled = tokio::select! {
                biased;
                _ = stopped(&mut stop) => return None,
                d = sub.consumer.next() => d,
            };
            let delivery = match polled {
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "event consumer broke; resubscribing");
                    self.subscription = None;
                    continue;
                }
                None => {
                    tracing::warn!("event consumer cancelled; resubscribing");
                    self.subscription = None;
                    continue;
                }
            };
            match decode::<M>(&delivery.data) {
                Ok(event) => {
                    return Some(Followed {
                        event,
                        redelivered: delivery.redelivered,
                        acker: delivery.acker,
                    });
                }
                Err(e) => {
                    tracing::warn!(queue = %self.queue_name(), error = %e, "unreadable event; dead-lettered");
                    let opts = BasicNackOptions {
                        requeue: false,
                        ..BasicNackOptions::default()
                    };
                    if let Err(e) = delivery.acker.nack(opts).await {
                        tracing::warn!(error = %e, "could not dead-letter an unreadable event");
                    }
                }
            }
        }
    }
}

/// Resolves once `stop` is set. The watch guard is dropped inside, so the futures that
/// select on it stay `Send` (the follower runs on a spawned task).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
