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

mod config;
mod confirm;
mod connection;
mod consumer;
pub mod depth;
pub mod dlq;
mod error;
mod follower;
mod handle;
pub mod headers;
mod publisher;
mod redact;
mod teardown;
mod tls;
mod topology;

pub use config::{AmqpConfig, ConfigError, unique_prefix};
pub use connection::{AmqpConnection, BrokerState};
pub use consumer::{AmqpConsumer, ConsumerStop};
pub use error::AmqpError;
pub use follower::{EventFollower, Followed};
pub use imgfeat_core::backoff::Backoff;
pub use publisher::AmqpPublisher;
pub use redact::{redact_url, scrub};
pub use teardown::delete_queues_blocking;
pub use topology::{EventExchange, Topology, UNLIMITED_DELIVERIES, WorkQueue};

/// Re-exported for tests and tools that need to talk to the broker directly.
pub use lapin;
