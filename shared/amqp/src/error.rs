use imgfeat_core::ports::QueueError;

/// What can go wrong talking to RabbitMQ. Everything maps to a transient
/// [`QueueError`] at the port boundary: the broker may come back.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// Connecting failed. The message is lapin's, scrubbed of the URL's password
    /// (kept as text rather than as the source error, which would print it whole).
    #[error("broker connection to {url} failed: {message}")]
    Connect { url: String, message: String },
    #[error(
        "declaring the queue topology failed (do all services use the same amqp settings?): {0}"
    )]
    Topology(#[source] lapin::Error),
    #[error("broker operation {op} failed: {source}")]
    Broker {
        op: &'static str,
        #[source]
        source: lapin::Error,
    },
    #[error("the broker refused (nacked) a published message on {0}")]
    Nacked(String),
    #[error("the broker could not route a message to {0} (queue missing?)")]
    Unroutable(String),
    #[error("the delivery's channel is closed; the broker will redeliver the message")]
    ChannelGone,
    #[error("timed out after {0:?} waiting for the broker")]
    Timeout(std::time::Duration),
    #[error("shut down")]
    Closed,
}

impl AmqpError {
    pub(crate) fn connect(url: &str) -> impl FnOnce(lapin::Error) -> AmqpError {
        move |e| AmqpError::Connect {
            url: crate::redact_url(url),
            message: crate::scrub(&e.to_string(), url),
        }
    }

    pub(crate) fn broker(op: &'static str) -> impl FnOnce(lapin::Error) -> AmqpError {
        move |source| AmqpError::Broker { op, source }
    }
}

impl From<AmqpError> for QueueError {
    fn from(e: AmqpError) -> Self {
        match e {
            AmqpError::Closed => QueueError::Closed,
            other => QueueError::Unavailable(other.to_string()),
        }
    }
}
