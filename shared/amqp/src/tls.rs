//! `amqps://`: lapin's rustls stack (aws-lc-rs, the system's roots through the platform
//! verifier) plus the CAs of `amqp.ca_file`, for brokers with a private CA.

use std::path::Path;

use lapin::tcp::OwnedTLSConfig;

use crate::{AmqpConfig, AmqpError};

/// The PEM text of a CA file, refused unless it holds at least one certificate.
pub(crate) fn read_ca_file(path: &Path) -> Result<String, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("no PEM certificate in it".into());
    }
    Ok(pem)
}

pub(crate) fn tls_config(config: &AmqpConfig) -> Result<OwnedTLSConfig, AmqpError> {
    let mut tls = OwnedTLSConfig::default();
    if let Some(path) = &config.ca_file {
        let pem = read_ca_file(path).map_err(|message| AmqpError::Connect {
            url: crate::redact_url(&config.url),
            message: format!("amqp.ca_file {}: {message}", path.display()),
        })?;
        tls.cert_chain = Some(pem);
    }
    Ok(tls)
}
