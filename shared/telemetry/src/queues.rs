//! Queue depths from RabbitMQ into `imgfeat_queue_messages{queue}`.

use std::future::Future;
use std::time::Duration;

use imgfeat_amqp::depth::queue_depths;
use imgfeat_amqp::{AmqpConnection, Topology, WorkQueue};

use crate::Telemetry;

/// The queues worth watching: every work queue and its dead-letter queue
/// (`<prefix>.<queue>` and `<prefix>.<queue>.dlq`). Retry queues are left out: their
/// messages are waiting out a back-off, not a backlog.
pub fn fleet_queues(topology: &Topology) -> Vec<String> {
    WorkQueue::ALL
        .into_iter()
        .flat_map(|q| [topology.queue(q), topology.dlq(q)])
        .collect()
}

/// Asks the broker for the depth of `queues` every `every` until `shutdown`. A queue
/// that does not exist, or a broker that cannot be asked, has its gauge removed (a gap,
/// not a stale number). Uses its own short-lived channels on the shared connection and
/// never reconnects by itself, so a broker outage costs one failed attempt per tick.
pub async fn poll_queue_depths(
    conn: AmqpConnection,
    queues: Vec<String>,
    telemetry: Telemetry,
    every: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        if !conn.is_connected() {
            // The consumers own reconnecting; polling would only add connection attempts.
            clear(&telemetry, &queues);
            continue;
        }
        match queue_depths(&conn, &queues).await {
            Ok(depths) => {
                failing = false;
                for (name, depth) in depths {
                    match depth {
                        Some(n) => telemetry.set_queue_depth(&name, u64::from(n)),
                        None => telemetry.clear_queue_depth(&name),
                    }
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "reading queue depths");
                }
                failing = true;
                clear(&telemetry, &queues);
            }
        }
    }
}

fn clear(telemetry: &Telemetry, queues: &[String]) {
    for q in queues {
        telemetry.clear_queue_depth(q);
    }
}
