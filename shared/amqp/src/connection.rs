//! One broker connection shared by a service's consumers and publishers, re-opened with
//! back-off when it drops: lapin does not recover by itself (we do not use its opt-in
//! semi-automatic recovery: re-declaring the topology and re-opening consumers here
//! keeps every step visible and testable).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::{Channel, Connection, ConnectionProperties, Event};
use tokio::sync::{Mutex, watch};

use imgfeat_core::ports::{Opened, ReadyCheck};

use crate::{AmqpConfig, AmqpError, Topology};

/// How long `close` may take before the connection is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `/readyz` reports about the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerState {
    /// Never connected yet, or reconnecting.
    Connecting,
    Connected,
    /// The last attempt failed or the connection broke; a reconnect is pending.
    Disconnected,
    /// [`AmqpConnection::close`] was called.
    Closed,
}

impl AmqpConfig {
    /// The service's broker connection, opening on first use, and its readiness check.
    pub fn open(&self) -> Opened<AmqpConnection> {
        let conn = AmqpConnection::new(self.clone());
        Opened {
            ready: conn.ready_check(),
            port: conn,
        }
    }
}

/// A cheaply cloneable handle on the shared connection.
#[derive(Clone)]
pub struct AmqpConnection {
    inner: Arc<Inner>,
}

struct Inner {
    config: AmqpConfig,
    topology: Topology,
    current: Mutex<Option<Connection>>,
    generation: AtomicU64,
    state: watch::Sender<BrokerState>,
}

impl AmqpConnection {
    /// A connection that opens on first use. Services start with this so that they can
    /// serve `/healthz` (and a failing `/readyz`) while the broker is still away.
    pub fn new(config: AmqpConfig) -> Self {
        let topology = Topology::new(&config);
        Self {
            inner: Arc::new(Inner {
                config,
                topology,
                current: Mutex::new(None),
                generation: AtomicU64::new(0),
                state: watch::Sender::new(BrokerState::Connecting),
            }),
        }
    }

    /// Connects and declares the topology now, failing if the broker is not there.
    pub async fn connect(config: AmqpConfig) -> Result<Self, AmqpError> {
        let conn = Self::new(config);
        conn.channel().await?;
        Ok(conn)
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.inner.config
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    /// Broker state for readiness probes; `changed()` wakes on every transition.
    pub fn state(&self) -> watch::Receiver<BrokerState> {
        self.inner.state.subscribe()
    }

    /// Ready while the connection is up. It reads the state watch and never opens
    /// anything, so a probe cannot pile up connection attempts.
    pub fn ready_check(&self) -> ReadyCheck {
        let state = self.state();
        ReadyCheck::from_status(move || match *state.borrow() {
            BrokerState::Connected => Ok(()),
            other => Err(format!("broker {}", format!("{other:?}").to_lowercase())),
        })
    }

    pub fn is_connected(&self) -> bool {
        *self.inner.state.borrow() == BrokerState::Connected
    }

    fn set_state(&self, s: BrokerState) {
        self.inner.state.send_if_modified(|cur| {
            // Once closed, stay closed: late failures of old tasks must not revive it.
            if *cur == s || *cur == BrokerState::Closed {
                false
            } else {
                *cur = s;
                true
            }
        });
    }

    fn is_closed(&self) -> bool {
        *self.inner.state.borrow() == BrokerState::Closed
    }

    /// A new channel, reconnecting (once) if the connection is gone. A fresh connection
    /// re-declares the topology, so queues exist even after the broker lost them.
    pub async fn channel(&self) -> Result<Channel, AmqpError> {
        if self.is_closed() {
            return Err(AmqpError::Closed);
        }
        let mut current = self.inner.current.lock().await;
        if let Some(conn) = current.as_ref()
            && conn.status().connected()
        {
            match conn.create_channel().await {
                Ok(ch) => {
                    // A live connection that hands out channels is connected, whatever a
                    // stale state says.
                    self.set_state(BrokerState::Connected);
                    return Ok(ch);
                }
                Err(e) if conn.status().connected() => {
                    return Err(AmqpError::broker("channel.open")(e));
                }
                Err(e) => tracing::warn!(error = %e, "broker connection lost; reconnecting"),
            }
        }
        *current = None;
        self.set_state(BrokerState::Connecting);
        match self.open().await {
            Ok((conn, channel)) => {
                *current = Some(conn);
                self.set_state(BrokerState::Connected);
                Ok(channel)
            }
            Err(e) => {
                self.set_state(BrokerState::Disconnected);
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<(Connection, Channel), AmqpError> {
        let url = &self.inner.config.url;
        let tls = crate::tls::tls_config(&self.inner.config)?;
        let runtime = lapin::runtime::default_runtime().map_err(AmqpError::connect(url))?;
        let conn =
            Connection::connect_with_config(url, ConnectionProperties::default(), tls, runtime)
                .await
                .map_err(AmqpError::connect(url))?;
        self.inner.topology.declare(&conn).await?;
        let channel = conn
            .create_channel()
            .await
            .map_err(AmqpError::broker("channel.open"))?;
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.watch_errors(&conn, generation);
        tracing::info!(
            prefix = self.inner.topology.prefix(),
            "connected to the broker"
        );
        Ok((conn, channel))
    }

    /// Flips the readiness state as soon as lapin reports the connection broken, instead
    /// of waiting for the next operation to notice.
    fn watch_errors(&self, conn: &Connection, generation: u64) {
        let mut events = Box::pin(conn.events_listener());
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                if let Event::Error(e) = event {
                    // Channel-level (soft) errors, such as a passive declare of a missing
                    // queue, close one channel, not the connection.
                    if e.is_amqp_soft_error() {
                        continue;
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.generation.load(Ordering::SeqCst) == generation {
                        tracing::warn!(error = %e, "broker connection broke");
                        AmqpConnection { inner }.set_state(BrokerState::Disconnected);
                    }
                    return;
                }
            }
        });
    }

    /// Like [`channel`](Self::channel), but keeps trying with the configured back-off
    /// until it succeeds or the connection is closed.
    pub async fn channel_retrying(&self) -> Result<Channel, AmqpError> {
        let mut backoff = self.inner.config.reconnect_backoff();
        loop {
            match self.channel().await {
                Ok(ch) => return Ok(ch),
                Err(AmqpError::Closed) => return Err(AmqpError::Closed),
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "broker unavailable");
                    let mut state = self.state();
                    // Wake early on close; otherwise after the back-off.
                    let _ =
                        tokio::time::timeout(wait, state.wait_for(|s| *s == BrokerState::Closed))
                            .await;
                }
            }
        }
    }

    /// Waits until connected (connecting if needed), up to `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), AmqpError> {
        tokio::time::timeout(timeout, self.channel_retrying())
            .await
            .map_err(|_| AmqpError::Timeout(timeout))?
            .map(|_| ())
    }

    /// Closes the connection; channel and publish calls fail with `Closed` from now on.
    pub async fn close(&self) {
        self.set_state(BrokerState::Closed);
        // Bounded: after a channel error the handshake (or a `channel()` still holding
        // the lock) can wait forever, and a process that cannot exit is worse than one
        // whose socket simply drops: the broker redelivers unacked messages either way.
        let closing = async {
            if let Some(conn) = self.inner.current.lock().await.take()
                && conn.status().connected()
                && let Err(e) = conn.close(200, "shutting down".into()).await
            {
                tracing::debug!(error = %e, "closing the broker connection");
            }
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
            tracing::warn!("the broker connection did not close in {CLOSE_TIMEOUT:?}; dropping it");
        }
    }
}
