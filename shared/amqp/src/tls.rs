//! `amqps://`: lapin's rustls stack (aws-lc-rs, the system's roots through the platform
//! verifier) plus the CAs of `amqp.ca_file`, for brokers with a private CA.

use lapin::tcp::OwnedTLSConfig;

use crate::{AmqpConfig, AmqpError};

/// lapin's TLS settings with the CAs of `amqp.ca_file` added, when it is set.
pub(crate) fn tls_config(config: &AmqpConfig) -> Result<OwnedTLSConfig, AmqpError> {
    let mut tls = OwnedTLSConfig::default();
    if let Some(path) = &config.ca_file {
        let pem = crate::config::read_ca_file(path).map_err(|message| AmqpError::Connect {
            url: crate::redact_url(&config.url),
            message: format!("amqp.ca_file {}: {message}", path.display()),
        })?;
        tls.cert_chain = Some(pem);
    }
    Ok(tls)
}
