//! The driver's HTTP calls (ingest's API and the services' probes), through reqwest.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;

/// One client for the whole run. Building one loads the system's root certificates
/// (rustls, even for plain HTTP): ~6 ms of CPU, which a client per request spent 12
/// times a second in a paced run, on the cores of the fleet being measured.
fn client() -> anyhow::Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .build()
        .context("building the HTTP client")?;
    Ok(CLIENT.get_or_init(|| built))
}

/// Sends `method path` with an optional JSON body and bearer token; returns (status, body).
pub async fn request(
    addr: &str,
    bearer: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    let verb = reqwest::Method::from_bytes(method.as_bytes())
        .with_context(|| format!("{method} is not an HTTP method"))?;
    let mut req = client()?
        .request(verb, format!("http://{addr}{path}"))
        .timeout(timeout);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
    }
    let res = req
        .send()
        .await
        .with_context(|| format!("{method} {addr}{path}"))?;
    let status = res.status().as_u16();
    let text = res
        .text()
        .await
        .with_context(|| format!("reading the answer to {method} {addr}{path}"))?;
    Ok((status, text))
}
