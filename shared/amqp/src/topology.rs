//! Queue names and their idempotent declaration.
//!
//! Every work queue `<p>.<q>` (quorum) has:
//! - retry queues `<p>.<q>.retry.<ms>ms`, one per distinct configured delay: quorum
//!   queues with a per-queue `x-message-ttl` whose dead-letter target is the work queue
//!   itself, so an expired message walks back into `<p>.<q>`. One queue per delay
//!   (rather than per-message TTL in one queue) because RabbitMQ expires messages only
//!   at the head of a queue: a 1 s retry behind a 10 min one would wait 10 min.
//!   Per work queue (rather than per stage) so that a live job retries into the live
//!   queue and a backfill job into the backfill queue. Nothing consumes them, so no
//!   delivery is ever counted there and they need no delivery limit.
//! - a dead-letter queue `<p>.<q>.dlq` (quorum, no TTL, an unlimited delivery limit: it
//!   has no dead-letter target of its own, so a limit would drop letters).
//!
//! The work queue's own dead-letter target is its DLQ too: with `x-delivery-limit`, a
//! message that keeps coming back unsettled (it crashes its worker) is parked by the
//! broker, with `x-first-death-reason: delivery_limit` instead of our reason header.
//! Retries themselves never count against that limit: they are republished copies.
//!
//! Delivery limits are always declared, because their absence means different things:
//! unlimited on RabbitMQ 3.x, but 20 on 4.x (its documented default since 4.0). "No
//! limit" is declared as [`UNLIMITED_DELIVERIES`] (`i32::MAX`), not as -1: RabbitMQ 4
//! documents -1 as "disabled", but 3.10 accepts -1 and then drops a message at its first
//! return (checked on 3.10.8), and lapin does not expose the broker's version to choose.
//! 4.x takes the smaller of an argument and a `delivery-limit` policy when both are
//! positive, so an operator's policy still wins.
//!
//! Events (a code stored, a duplicate found) go to durable fanout exchanges
//! `<p>.<exchange>` (names in the settings), declared here too. Each follower declares
//! its own queue bound to the exchange ([`Topology::declare_follower`]), so that every
//! follower sees every event and one that is down finds what it missed in its queue.
//!
//! Queues declared by an older release without `x-delivery-limit` are kept (RabbitMQ
//! refuses to change a queue's arguments): the redeclaration falls back to the old
//! arguments and logs how to apply the limit through a policy.

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ExchangeKind};

use imgfeat_core::RetryPolicy;

use crate::{AmqpConfig, AmqpError};

/// The queues that carry jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkQueue {
    /// Live uploads for the detector: always served before the backfill.
    Detect,
    /// Backfill ranges for the detector.
    DetectBackfill,
    /// Crops for the extractor.
    Extract,
    /// Upload events from the platform, forwarded by ingest to `Detect`.
    Uploads,
}

impl WorkQueue {
    pub const ALL: [WorkQueue; 4] = [
        WorkQueue::Detect,
        WorkQueue::DetectBackfill,
        WorkQueue::Extract,
        WorkQueue::Uploads,
    ];

    /// The name after the prefix; also what `imgfeat dlq` takes on its command line.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkQueue::Detect => "detect",
            WorkQueue::DetectBackfill => "detect.backfill",
            WorkQueue::Extract => "extract",
            WorkQueue::Uploads => "uploads",
        }
    }

    pub fn parse(s: &str) -> Option<WorkQueue> {
        WorkQueue::ALL.into_iter().find(|q| q.as_str() == s)
    }
}

impl std::fmt::Display for WorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fanout exchanges that carry events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventExchange {
    /// `CodeStored`, from the extractor.
    CodeStored,
    /// `DuplicateFound`, from the search shards.
    DuplicateFound,
}

impl EventExchange {
    pub const ALL: [EventExchange; 2] = [EventExchange::CodeStored, EventExchange::DuplicateFound];
}

/// Queue and exchange names under one prefix, and the retry schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    retry: RetryPolicy,
    delivery_limit: u32,
    code_stored: String,
    duplicate_found: String,
}

impl Topology {
    pub fn new(config: &AmqpConfig) -> Self {
        Self {
            prefix: config.prefix.clone(),
            retry: config.retry_policy(),
            delivery_limit: config.delivery_limit,
            code_stored: config.code_stored_exchange.clone(),
            duplicate_found: config.duplicate_found_exchange.clone(),
        }
    }

    /// `<prefix>.<name from the settings>`.
    pub fn exchange(&self, e: EventExchange) -> String {
        let name = match e {
            EventExchange::CodeStored => &self.code_stored,
            EventExchange::DuplicateFound => &self.duplicate_found,
        };
        format!("{}.{name}", self.prefix)
    }

    /// The queue of one follower of `e`: `<prefix>.<exchange>.<follower>`.
    pub fn follower_queue(&self, e: EventExchange, follower: &str) -> String {
        format!("{}.{follower}", self.exchange(e))
    }

    /// Where a follower's queue parks the events it cannot read.
    pub fn follower_dlq(&self, e: EventExchange, follower: &str) -> String {
        format!("{}.dlq", self.follower_queue(e, follower))
    }

    /// Declares a follower's durable queue (quorum, with a dead-letter queue for
    /// unreadable events) and binds it to `e`. Idempotent: a follower calls it at every
    /// (re)connect, and BEFORE it reads the store, so that no event of a code written
    /// after that read is lost.
    pub async fn declare_follower(
        &self,
        channel: &Channel,
        e: EventExchange,
        follower: &str,
    ) -> Result<String, AmqpError> {
        let queue = self.follower_queue(e, follower);
        let dlq = self.follower_dlq(e, follower);
        let mut dead = quorum();
        dead.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(UNLIMITED_DELIVERIES),
        );
        declare(channel, &dlq, dead).await?;
        let mut args = quorum();
        dead_letter_to(&mut args, &dlq);
        // A follower sends an event back while its store is away, as often as it
        // takes: no broker limit may drop it meanwhile.
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(UNLIMITED_DELIVERIES),
        );
        declare(channel, &queue, args).await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                self.exchange(e).as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(AmqpError::Topology)?;
        Ok(queue)
    }

    /// Deletes a follower's queue and its dead-letter queue: for a follower that is gone
    /// for good (a one-off reader such as a load test), whose durable queue would
    /// otherwise keep collecting every event.
    pub async fn delete_follower(
        &self,
        channel: &Channel,
        e: EventExchange,
        follower: &str,
    ) -> Result<(), AmqpError> {
        for name in [
            self.follower_queue(e, follower),
            self.follower_dlq(e, follower),
        ] {
            channel
                .queue_delete(ShortString::from(name), QueueDeleteOptions::default())
                .await
                .map_err(AmqpError::broker("queue.delete"))?;
        }
        Ok(())
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn queue(&self, q: WorkQueue) -> String {
        format!("{}.{}", self.prefix, q.as_str())
    }

    pub fn dlq(&self, q: WorkQueue) -> String {
        format!("{}.{}.dlq", self.prefix, q.as_str())
    }

    pub fn retry_queue(&self, q: WorkQueue, delay: Duration) -> String {
        format!(
            "{}.{}.retry.{}ms",
            self.prefix,
            q.as_str(),
            delay.as_millis()
        )
    }

    /// The policy whose delays these retry queues implement.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The delay before re-running a job whose attempt number `failed_attempt` (1-based)
    /// failed: the configured delays in turn, the last one repeating.
    pub fn retry_delay(&self, failed_attempt: u32) -> Duration {
        self.retry.delay(failed_attempt)
    }

    fn distinct_delays(&self) -> Vec<Duration> {
        let mut d: Vec<Duration> = self
            .retry
            .delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
        d.sort();
        d.dedup();
        d
    }

    /// Every queue name of the topology, e.g. for cleaning up after a test.
    pub fn all_queues(&self) -> Vec<String> {
        let mut names = Vec::new();
        for q in WorkQueue::ALL {
            names.push(self.queue(q));
            names.push(self.dlq(q));
            for d in self.distinct_delays() {
                names.push(self.retry_queue(q, d));
            }
        }
        names
    }

    /// The work queues' delivery limit as declared: the configured one, 0 meaning none.
    fn work_delivery_limit(&self) -> i32 {
        match self.delivery_limit {
            0 => UNLIMITED_DELIVERIES,
            n => i32::try_from(n).unwrap_or(UNLIMITED_DELIVERIES),
        }
    }

    /// Declares every queue. Idempotent: each service calls it at every (re)connect.
    /// Uses channels of its own: a refused declaration closes its channel.
    pub async fn declare(&self, conn: &Connection) -> Result<(), AmqpError> {
        let mut channel = open_channel(conn).await?;
        for q in WorkQueue::ALL {
            let dlq = self.dlq(q);
            declare_limited(conn, &mut channel, &dlq, quorum(), UNLIMITED_DELIVERIES).await?;

            let mut work = quorum();
            dead_letter_to(&mut work, &dlq);
            let limit = self.work_delivery_limit();
            declare_limited(conn, &mut channel, &self.queue(q), work, limit).await?;

            for delay in self.distinct_delays() {
                let mut retry = quorum();
                dead_letter_to(&mut retry, &self.queue(q));
                retry.insert(
                    "x-message-ttl".into(),
                    AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
                );
                declare(&channel, &self.retry_queue(q, delay), retry).await?;
            }
        }
        for e in EventExchange::ALL {
            channel
                .exchange_declare(
                    self.exchange(e).as_str().into(),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(AmqpError::Topology)?;
        }
        if let Err(e) = channel.close(200, "topology declared".into()).await {
            tracing::debug!(error = %e, "closing the declaring channel");
        }
        Ok(())
    }

    /// Deletes every queue and exchange of the topology (tests and teardown only: loses
    /// messages). Followers' queues are theirs to delete.
    pub async fn delete(&self, channel: &Channel) -> Result<(), AmqpError> {
        for name in self.all_queues() {
            channel
                .queue_delete(ShortString::from(name), QueueDeleteOptions::default())
                .await
                .map_err(AmqpError::broker("queue.delete"))?;
        }
        for e in EventExchange::ALL {
            channel
                .exchange_delete(
                    self.exchange(e).as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await
                .map_err(AmqpError::broker("exchange.delete"))?;
        }
        Ok(())
    }
}

/// The delivery limit that stands for "none": valid on RabbitMQ 3.x and 4.x alike, and
/// out of reach of any real redelivery loop.
pub const UNLIMITED_DELIVERIES: i32 = i32::MAX;

async fn open_channel(conn: &Connection) -> Result<Channel, AmqpError> {
    conn.create_channel()
        .await
        .map_err(AmqpError::broker("channel.open"))
}

/// Declares `name` with `args` plus `x-delivery-limit`. A queue that an older release
/// declared without the limit is kept as it is: its redeclaration with the old
/// arguments is the check that this, and not another mismatch, was the refusal.
async fn declare_limited(
    conn: &Connection,
    channel: &mut Channel,
    name: &str,
    args: FieldTable,
    limit: i32,
) -> Result<(), AmqpError> {
    let mut limited = args.clone();
    limited.insert("x-delivery-limit".into(), AMQPValue::LongInt(limit));
    let refused = match declare(channel, name, limited).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    *channel = open_channel(conn).await?;
    if declare(channel, name, args).await.is_err() {
        *channel = open_channel(conn).await?;
        return Err(refused);
    }
    tracing::warn!(
        queue = name,
        delivery_limit = limit,
        "queue declared by an older release without x-delivery-limit; keeping it. On RabbitMQ 4 \
         it drops (or dead-letters) a message after 20 returns: apply the limit with a policy \
         (rabbitmqctl set_policy --apply-to quorum_queues <name> '<queue regex>' \
         '{{\"delivery-limit\": <n>}}') or recreate the queue once it is empty"
    );
    Ok(())
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string("quorum"));
    args
}

/// Broker-side dead-lettering that is itself at-least-once: quorum queues only promise
/// that with `x-dead-letter-strategy: at-least-once`, which requires `reject-publish`.
fn dead_letter_to(args: &mut FieldTable, target: &str) {
    args.insert("x-dead-letter-exchange".into(), long_string(""));
    args.insert("x-dead-letter-routing-key".into(), long_string(target));
    args.insert(
        "x-dead-letter-strategy".into(),
        long_string("at-least-once"),
    );
    args.insert("x-overflow".into(), long_string("reject-publish"));
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

async fn declare(channel: &Channel, name: &str, args: FieldTable) -> Result<(), AmqpError> {
    channel
        .queue_declare(name.into(), QueueDeclareOptions::durable(), args)
        .await
        .map(|_| ())
        .map_err(AmqpError::Topology)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let t = Topology::new(&AmqpConfig {
            prefix: "p".into(),
            retry_delays_ms: vec![1000, 5000, 5000],
            ..AmqpConfig::default()
        });
        assert_eq!(t.queue(WorkQueue::DetectBackfill), "p.detect.backfill");
        assert_eq!(t.dlq(WorkQueue::Extract), "p.extract.dlq");
        assert_eq!(
            t.retry_queue(WorkQueue::Detect, Duration::from_secs(5)),
            "p.detect.retry.5000ms"
        );
        // 4 work queues x (work + dlq + 2 distinct delays)
        assert_eq!(t.all_queues().len(), 16);
        assert_eq!(t.exchange(EventExchange::CodeStored), "p.code_stored");
        assert_eq!(
            t.follower_queue(EventExchange::CodeStored, "search.v.0-of-2"),
            "p.code_stored.search.v.0-of-2"
        );
        assert_eq!(
            t.exchange(EventExchange::DuplicateFound),
            "p.duplicate_found"
        );
        for q in WorkQueue::ALL {
            assert_eq!(WorkQueue::parse(q.as_str()), Some(q));
        }
    }

    #[test]
    fn retry_delays_step_through_and_repeat_the_last() {
        let t = Topology::new(&AmqpConfig {
            retry_delays_ms: vec![1000, 5000],
            ..AmqpConfig::default()
        });
        let d: Vec<_> = (1..=4).map(|a| t.retry_delay(a).as_millis()).collect();
        assert_eq!(d, vec![1000, 5000, 5000, 5000]);
    }
}
