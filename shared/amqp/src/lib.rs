//! RabbitMQ (lapin) adapter of imgfeat's queue ports.
//!
//! - [`AmqpConnection`]: one shared connection, re-opened with back-off, declaring the
//!   [`Topology`] on every (re)connect, with a [`BrokerState`] watch for `/readyz`.
//! - [`AmqpPublisher`]: a `JobPublisher` with publisher confirms.
//! - [`AmqpConsumer`]: a `JobConsumer` over several queues in priority order, which
//!   dead-letters undecodable messages itself; its delivery handles retry through TTL
//!   queues and dead-letter with the reason in headers (see [`headers`]).
//! - [`dlq`]: list and requeue dead letters.
//! - Events: [`AmqpPublisher::fanout`] announces on a fanout exchange;
//!   [`EventFollower`] reads one follower's own queue bound to it.
//!
//! Without the default feature `broker` only the settings ([`AmqpConfig`]) and the
//! password redaction are built, so a build with no broker reads the same settings
//! without linking lapin and its TLS stack.

mod config;
#[cfg(feature = "broker")]
mod confirm;
#[cfg(feature = "broker")]
mod connection;
#[cfg(feature = "broker")]
mod consumer;
#[cfg(feature = "broker")]
pub mod depth;
#[cfg(feature = "broker")]
pub mod dlq;
#[cfg(feature = "broker")]
mod error;
#[cfg(feature = "broker")]
mod follower;
#[cfg(feature = "broker")]
mod handle;
#[cfg(feature = "broker")]
pub mod headers;
#[cfg(feature = "broker")]
mod publisher;
mod redact;
#[cfg(feature = "broker")]
mod teardown;
#[cfg(feature = "broker")]
mod tls;
#[cfg(feature = "broker")]
mod topology;

pub use config::{AmqpConfig, ConfigError, unique_prefix};
#[cfg(feature = "broker")]
pub use connection::{AmqpConnection, BrokerState};
#[cfg(feature = "broker")]
pub use consumer::{AmqpConsumer, ConsumerStop};
#[cfg(feature = "broker")]
pub use error::AmqpError;
#[cfg(feature = "broker")]
pub use follower::{EventFollower, Followed};
pub use imgfeat_core::backoff::Backoff;
#[cfg(feature = "broker")]
pub use publisher::AmqpPublisher;
pub use redact::{redact_url, scrub};
#[cfg(feature = "broker")]
pub use teardown::delete_queues_blocking;
#[cfg(feature = "broker")]
pub use topology::{EventExchange, Topology, UNLIMITED_DELIVERIES, WorkQueue};

/// Re-exported for tests and tools that need to talk to the broker directly.
#[cfg(feature = "broker")]
pub use lapin;
