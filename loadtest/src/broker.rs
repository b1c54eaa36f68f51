//! The load driver's own connection to the broker: the fleet's queue prefix, and a time
//! limit so a broker that is down fails the run instead of hanging it.

use std::time::Duration;

use anyhow::Context;
use imgfeat_amqp::{AmqpConfig, AmqpConnection};

pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<AmqpConnection> {
    let config = AmqpConfig {
        url: url.to_string(),
        prefix: prefix.to_string(),
        ..AmqpConfig::default()
    };
    tokio::time::timeout(Duration::from_secs(20), AmqpConnection::connect(config))
        .await
        .context("connecting to the broker")?
        .map_err(Into::into)
}
