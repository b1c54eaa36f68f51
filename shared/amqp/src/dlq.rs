//! Inspecting and re-driving dead-letter queues (`imgfeat dlq list|requeue`).

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
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

/// The number of messages in `queue`'s DLQ and up to `limit` of them from its head,
/// left in place: they are fetched unacked and handed back with a requeueing nack.
pub async fn list(
    conn: &AmqpConnection,
    queue: WorkQueue,
    limit: usize,
) -> Result<(u32, Vec<DeadLetter>), AmqpError> {
    let dlq = conn.topology().dlq(queue);
    let channel = conn.channel().await?;
    let total = message_count(&channel, &dlq).await?;
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < limit.min(total as usize) {
        let Some(d) = get(&channel, &dlq).await? else {
            break;
        };
        out.push(DeadLetter::from_delivery(&d));
        last = Some(d);
    }
    if let Some(d) = last {
        let opts = BasicNackOptions {
            multiple: true,
            requeue: true,
        };
        d.acker
            .nack(opts)
            .await
            .map_err(AmqpError::broker("basic.nack"))?;
        let _ = channel.close(200, "dlq list done".into()).await;
        settle_returns(conn, &dlq, total).await?;
    } else {
        let _ = channel.close(200, "dlq list done".into()).await;
    }
    Ok((total, out))
}

/// A quorum queue takes returned messages back asynchronously; wait (briefly) until
/// they count as ready again, so that a list or requeue right after this one sees them.
/// The broker has no event for this, hence the short poll.
async fn settle_returns(conn: &AmqpConnection, queue: &str, before: u32) -> Result<(), AmqpError> {
    let channel = conn.channel().await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while message_count(&channel, queue).await? < before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let _ = channel.close(200, "dlq settled".into()).await;
    Ok(())
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
    while moved < limit {
        let Some(d) = get(&channel, &dlq).await? else {
            break;
        };
        let copy = Outgoing {
            queue: target.clone(),
            body: d.data.clone(),
            headers: headers::reset(&d.properties),
        };
        publisher
            .publish(std::slice::from_ref(&copy), conn.config().publish_timeout())
            .await?;
        d.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(AmqpError::broker("basic.ack"))?;
        moved += 1;
    }
    let _ = channel.close(200, "dlq requeue done".into()).await;
    tracing::info!(%queue, moved, "requeued dead letters");
    Ok(moved)
}
