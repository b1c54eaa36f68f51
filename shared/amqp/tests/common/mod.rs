#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use imgfeat_amqp::lapin::BasicProperties;
use imgfeat_amqp::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use imgfeat_amqp::lapin::types::FieldTable;
use imgfeat_amqp::{AmqpConfig, AmqpConnection, WorkQueue, delete_queues_blocking, unique_prefix};
use imgfeat_core::ImageId;
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::{Delivery, JobConsumer};

/// A broker fixture with its own queue prefix; its queues are deleted on drop, even when
/// the test panicked.
pub struct Fixture {
    pub config: AmqpConfig,
    pub conn: AmqpConnection,
}

/// The broker under test: the local one, or another named by `IMGFEAT_TEST_AMQP_URL`
/// (scripts/rabbitmq4.sh runs these tests against RabbitMQ 4 that way).
pub fn broker_url() -> String {
    std::env::var("IMGFEAT_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// `rabbitmqctl` for the broker under test; `IMGFEAT_TEST_RABBITMQCTL` replaces it with
/// a command line (split on spaces) that reaches another broker.
pub fn rabbitmqctl() -> std::process::Command {
    let line = std::env::var("IMGFEAT_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let mut words = line.split_whitespace();
    let mut cmd = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"));
    cmd.args(words);
    cmd
}

pub fn test_config(name: &str) -> AmqpConfig {
    AmqpConfig {
        url: broker_url(),
        prefix: unique_prefix(&format!("test-{name}")),
        prefetch: 20,
        retry_delays_ms: vec![100, 300],
        max_attempts: 3,
        reconnect_initial_ms: 100,
        reconnect_max_ms: 1_000,
        publish_timeout_ms: 20_000,
        ..AmqpConfig::default()
    }
}

impl Fixture {
    pub async fn new(name: &str) -> Fixture {
        Self::with(test_config(name)).await
    }

    pub async fn with(config: AmqpConfig) -> Fixture {
        let conn = AmqpConnection::connect(config.clone())
            .await
            .expect("broker at 127.0.0.1:5672 (start it with `rabbitmq-server -detached`)");
        Fixture { config, conn }
    }

    pub fn queue(&self, q: WorkQueue) -> String {
        self.conn.topology().queue(q)
    }

    /// Ready messages in a queue (unacked ones are not counted).
    pub async fn count(&self, name: &str) -> u32 {
        let ch = self.conn.channel().await.unwrap();
        let q = ch
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        q.message_count()
    }

    /// Publishes raw bytes, bypassing the typed publisher (for poison messages).
    pub async fn publish_raw(&self, q: WorkQueue, bodies: &[&[u8]]) {
        let ch = self.conn.channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for body in bodies {
            ch.basic_publish(
                "".into(),
                self.queue(q).as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
    }
}

/// The next delivery, failing the test instead of hanging.
pub async fn next_within<M: Send>(
    consumer: &mut impl JobConsumer<M>,
    timeout: Duration,
) -> Delivery<M> {
    tokio::time::timeout(timeout, consumer.next())
        .await
        .expect("timed out waiting for a delivery")
        .expect("consumer ended")
        .expect("consumer error")
}

impl Drop for Fixture {
    fn drop(&mut self) {
        delete_queues_blocking(self.config.clone());
    }
}

/// Detect jobs for `ids`, all enqueued at the same instant.
pub fn jobs(ids: impl IntoIterator<Item = u64>) -> Vec<DetectJob> {
    ids.into_iter()
        .map(|i| DetectJob::new(ImageId(i), 1))
        .collect()
}
