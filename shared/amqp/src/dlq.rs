//! Inspecting and re-driving dead-letter queues (`imgfeat dlq list|requeue`).

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;

use crate::confirm::{ConfirmChannel, Outgoing};
use crate::{AmqpConnection, AmqpError, WorkQueue, headers};

/// One parked message and why it was parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message body as published (versioned JSON, or whatever garbage arrived).
    pub body: Vec<u8>,
    /// Our reason header, or the broker's own (`delivery_limit`) when it parked it.
    pub reason: Option<String>,
    /// The `FailureKind` name, when we parked it.
    pub kind: Option<String>,
    pub attempts: u32,
    pub dead_at_ms: Option<u64>,
}

impl DeadLetter {
    fn from_delivery(d: &lapin::message::Delivery) -> Self {
        let p = &d.properties;
        Self {
            body: d.data.clone(),
            reason: headers::get_string(p, headers::REASON)
                .or_else(|| headers::get_string(p, "x-first-death-reason")),
            kind: headers::get_string(p, headers::KIND),
            attempts: headers::attempts(p),
            dead_at_ms: headers::get_u64(p, headers::DEAD_AT_MS),
        }
    }
}

async fn message_count(channel: &Channel, queue: &str) -> Result<u32, AmqpError> {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(AmqpError::broker("queue.declare passive"))?;
    Ok(q.message_count())
}

async fn get(
    channel: &Channel,
    queue: &str,
) -> Result<Option<lapin::message::Delivery>, AmqpError> {
    Ok(channel
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .map_err(AmqpError::broker("basic.get"))?
        .map(|m| m.delivery))
}

/// How many dead letters a listing takes off the queue before republishing them in one
/// confirmed batch.
const LIST_CHUNK: usize = 100;

/// The number of messages in `queue`'s DLQ and up to `limit` of them from its head.
///
/// Peeking never hands a message back unsettled: a returned (nacked or abandoned) message
/// counts towards a quorum queue's delivery limit, which RabbitMQ 4 sets to 20 by default,
/// and the DLQ has nowhere to dead-letter to, so repeated listings would drop letters.
/// Instead every message is taken, republished unchanged to the tail of the DLQ
/// (confirmed) and only then acked: a fresh copy starts with no delivery count. The whole
/// queue is cycled, so the order is the same afterwards; a letter parked while a listing
/// runs lands among the cycled ones. A failure half-way may duplicate letters, never
/// lose one.
pub async fn list(
    conn: &AmqpConnection,
    queue: WorkQueue,
    limit: usize,
) -> Result<(u32, Vec<DeadLetter>), AmqpError> {
    let dlq = conn.topology().dlq(queue);
    let channel = conn.channel().await?;
    let publisher = ConfirmChannel::new(conn);
    let total = message_count(&channel, &dlq).await?;
    let mut out = Vec::new();
    let mut cycled = 0usize;
    let result = loop {
        let mut chunk = Vec::new();
        while chunk.len() < LIST_CHUNK && cycled + chunk.len() < total as usize {
            match get(&channel, &dlq).await {
                Ok(Some(d)) => chunk.push(d),
                Ok(None) => break,
                Err(e) => return close_after(&channel, Err(e)).await,
            }
        }
        let Some(last) = chunk.last() else {
            break Ok(());
        };
        let copies: Vec<Outgoing> = chunk
            .iter()
            .map(|d| Outgoing::to_queue(dlq.clone(), d.data.clone(), headers::copy(&d.properties)))
            .collect();
        if let Err(e) = publisher
            .publish(&copies, conn.config().publish_timeout())
            .await
        {
            break Err(e);
        }
        let acked = last
            .acker
            .ack(BasicAckOptions { multiple: true })
            .await
            .map_err(AmqpError::broker("basic.ack"));
        if let Err(e) = acked {
            break Err(e);
        }
        cycled += chunk.len();
        out.extend(
            chunk
                .iter()
                .take(limit.saturating_sub(out.len()))
                .map(DeadLetter::from_delivery),
        );
    };
    close_after(&channel, result.map(|()| (total, out))).await
}

/// Closes a tool's channel and passes `result` on. Closing hands whatever is still
/// unacked (after an error) back to the queue.
async fn close_after<T>(channel: &Channel, result: Result<T, AmqpError>) -> Result<T, AmqpError> {
    if let Err(e) = channel.close(200, "dlq tool done".into()).await {
        tracing::debug!(error = %e, "closing the dlq channel");
    }
    result
}

/// Moves up to `limit` messages (all that were there when called, if `None`) from
/// `queue`'s DLQ back to `queue`, with their attempt count and reasons reset. Each is
/// acked off the DLQ only after the work queue confirmed its copy. Returns how many
/// moved. Messages that fail again while this runs are not picked up twice.
pub async fn requeue(
    conn: &AmqpConnection,
    queue: WorkQueue,
    limit: Option<u64>,
) -> Result<u64, AmqpError> {
    let dlq = conn.topology().dlq(queue);
    let target = conn.topology().queue(queue);
    let channel = conn.channel().await?;
    let publisher = ConfirmChannel::new(conn);
    let total = u64::from(message_count(&channel, &dlq).await?);
    let limit = limit.map_or(total, |l| l.min(total));
    let mut moved = 0;
    let result = loop {
        if moved >= limit {
            break Ok(());
        }
        let d = match get(&channel, &dlq).await {
            Ok(Some(d)) => d,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let copy = Outgoing::to_queue(
            target.clone(),
            d.data.clone(),
            headers::reset(&d.properties),
        );
        if let Err(e) = publisher
            .publish(std::slice::from_ref(&copy), conn.config().publish_timeout())
            .await
        {
            break Err(e);
        }
        if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
            break Err(AmqpError::broker("basic.ack")(e));
        }
        moved += 1;
    };
    close_after(&channel, result).await?;
    tracing::info!(%queue, moved, "requeued dead letters");
    Ok(moved)
}
