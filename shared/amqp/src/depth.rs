//! Queue depths for metrics and autoscaling dashboards: a passive `queue.declare` per
//! queue returns its ready-message count without creating or changing anything.

use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::{AmqpConnection, AmqpError};

/// The ready-message count of each named queue, in the order given; `None` for a queue
/// that does not exist. Messages delivered to a consumer but not yet acked are not
/// counted (RabbitMQ reports only ready messages here), which is what a backlog is.
///
/// A missing queue makes the broker close the channel (404), so the next queue is asked
/// on a fresh channel; any other failure (broker down, connection lost) is an error.
pub async fn queue_depths(
    conn: &AmqpConnection,
    names: &[String],
) -> Result<Vec<(String, Option<u32>)>, AmqpError> {
    let mut out = Vec::with_capacity(names.len());
    let mut channel: Option<Channel> = None;
    for name in names {
        let ch = match channel.take() {
            Some(ch) if ch.status().connected() => ch,
            _ => conn.channel().await?,
        };
        match passive_count(&ch, name).await {
            Ok(count) => {
                out.push((name.clone(), Some(count)));
                channel = Some(ch);
            }
            // A channel-level refusal of a passive declare is NOT_FOUND: the queue is
            // absent. The channel is gone with it; the next iteration opens another.
            Err(e) if e.is_amqp_soft_error() => out.push((name.clone(), None)),
            Err(e) => return Err(AmqpError::broker("queue.declare passive")(e)),
        }
    }
    if let Some(ch) = channel
        && let Err(e) = ch.close(200, "done".into()).await
    {
        tracing::debug!(error = %e, "closing the queue-depth channel");
    }
    Ok(out)
}

async fn passive_count(channel: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}
