//! Opening a driver session the same way for the results store and the image source:
//! token-aware routing to the local data centre, per-request timeouts, the configured
//! consistency, and no driver-side retries (ours back off; see [`crate::retry`]).

use std::sync::Arc;
use std::time::Duration;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;

use crate::config::ConsistencyLevel;

/// What a session needs, borrowed from either configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions<'a> {
    pub nodes: &'a [String],
    pub local_dc: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub tls: Option<&'a crate::tls::CqlTls>,
    pub consistency: ConsistencyLevel,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

pub fn execution_profile(opts: &ConnectOptions<'_>) -> ExecutionProfile {
    let mut lbp = DefaultPolicy::builder().token_aware(true);
    lbp = match opts.local_dc {
        // LOCAL_* consistency needs requests to stay in the local data centre.
        Some(dc) => lbp
            .prefer_datacenter(dc.to_string())
            .permit_dc_failover(false),
        None => lbp.prefer_no_datacenter(),
    };
    ExecutionProfile::builder()
        .consistency(opts.consistency.to_driver())
        .request_timeout(Some(opts.request_timeout))
        .load_balancing_policy(lbp.build())
        .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
        .build()
}

/// Why a session did not open: the TLS settings are wrong (fix the config, retrying
/// cannot help) or the cluster was not reached (it may come back).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Connect(String),
}

pub async fn open(opts: &ConnectOptions<'_>) -> Result<Session, OpenError> {
    let mut builder = SessionBuilder::new()
        .known_nodes(opts.nodes)
        .connection_timeout(opts.connect_timeout)
        .schema_agreement_timeout(opts.connect_timeout)
        .default_execution_profile_handle(execution_profile(opts).into_handle())
        // Client-side, monotonic write timestamps: a process's later write always wins
        // over its earlier one, whichever coordinators the two went through.
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    if let Some(dc) = opts.local_dc {
        builder = builder.prefer_datacenter(dc.to_string());
    }
    if let (Some(user), Some(password)) = (opts.username, opts.password) {
        builder = builder.user(user, password);
    }
    if let Some(tls) = opts.tls {
        builder = builder.tls_context(Some(crate::tls::client_config(tls)?));
    }
    builder
        .build()
        .await
        .map_err(|e| OpenError::Connect(e.to_string()))
}
