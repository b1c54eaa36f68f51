//! Images behind an HTTP or HTTPS URL template: timeouts, bounded concurrency, a byte
//! limit enforced while streaming (a lying or missing Content-Length cannot exhaust
//! memory), and status codes sorted into permanent and transient failures.
//!
//! TLS follows the template's scheme: `https://` is verified by rustls against the
//! system's roots plus, for a private CA, the certificates in `ca_file`; redirects may
//! not leave HTTPS.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, SourceError};
use tokio::sync::Semaphore;

pub use crate::settings::HttpSourceConfig;

#[derive(Debug, thiserror::Error)]
pub enum HttpSourceError {
    #[error("url_template {0:?} has no {{id}}")]
    NoId(String),
    #[error("url_template {0:?} is neither http:// nor https://")]
    Scheme(String),
    #[error("ca_file is set but url_template {0:?} is not https://")]
    CaWithoutTls(String),
    #[error("ca_file {path}: {error}")]
    CaFile { path: PathBuf, error: String },
    #[error("building the HTTP client: {0}")]
    Client(String),
}

pub struct HttpSource {
    client: reqwest::Client,
    config: HttpSourceConfig,
    permits: Arc<Semaphore>,
    max_bytes: u64,
}

impl HttpSource {
    pub fn new(config: HttpSourceConfig, max_bytes: u64) -> Result<Self, HttpSourceError> {
        let template = &config.url_template;
        if !template.contains("{id}") {
            return Err(HttpSourceError::NoId(template.clone()));
        }
        let scheme = template
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .ok_or_else(|| HttpSourceError::Scheme(template.clone()))?;
        let tls = match scheme.as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(HttpSourceError::Scheme(template.clone())),
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.timeout_ms))
            // A redirect to http:// would send the request in clear text.
            .https_only(tls);
        if let Some(path) = &config.ca_file {
            if !tls {
                return Err(HttpSourceError::CaWithoutTls(template.clone()));
            }
            builder = builder.tls_certs_merge(read_ca_file(path)?);
        }
        let client = builder
            .build()
            .map_err(|e| HttpSourceError::Client(error_chain(&e)))?;
        Ok(Self {
            client,
            permits: Arc::new(Semaphore::new(config.max_concurrent_fetches.max(1))),
            config,
            max_bytes,
        })
    }
}

/// The certificates of a PEM bundle; a file without one is a mistake, not "no extra CA".
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, HttpSourceError> {
    let ca_error = |error: String| HttpSourceError::CaFile {
        path: path.to_path_buf(),
        error,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(error_chain(&e)))?;
    if certs.is_empty() {
        return Err(ca_error("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

/// An error with its causes: reqwest's own message ("error sending request") hides
/// the reason (refused connection, untrusted certificate) in its sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[async_trait]
impl ImageSource for HttpSource {
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SourceError::Unavailable("source closed".into()))?;
        let url = self.config.url_template.replace("{id}", &id.to_string());
        let unavailable =
            |e: reqwest::Error| SourceError::Unavailable(format!("{url}: {}", error_chain(&e)));
        let mut response = self.client.get(&url).send().await.map_err(unavailable)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(SourceError::NotFound(id, format!("{url}: HTTP {status}")));
        }
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(SourceError::NotFound(id, format!("{url}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(SourceError::Unavailable(format!("{url}: HTTP {status}")));
        }
        if let Some(len) = response.content_length()
            && len > self.max_bytes
        {
            return Err(SourceError::TooLarge {
                id,
                size: len,
                limit: self.max_bytes,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(SourceError::TooLarge {
                    id,
                    size: (body.len() + chunk.len()) as u64,
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgfeat_core::FailureKind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A tiny HTTP server answering each request from a table by path.
    async fn serve(routes: Vec<(&'static str, &'static str, Vec<u8>)>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 2048];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, body) = routes
                        .iter()
                        .find(|(p, _, _)| *p == path)
                        .map(|(_, s, b)| (*s, b.clone()))
                        .unwrap_or(("404 Not Found", Vec::new()));
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}/{{id}}.jpg")
    }

    #[tokio::test]
    async fn fetches_and_sorts_http_failures() {
        let template = serve(vec![
            ("/1.jpg", "200 OK", b"jpegbytes".to_vec()),
            ("/2.jpg", "200 OK", vec![0u8; 100]),
            ("/3.jpg", "503 Service Unavailable", Vec::new()),
            ("/4.jpg", "403 Forbidden", Vec::new()),
        ])
        .await;
        let cfg = HttpSourceConfig {
            url_template: template,
            ..HttpSourceConfig::default()
        };
        let src = HttpSource::new(cfg, 50).unwrap();
        assert_eq!(src.fetch(ImageId(1)).await.unwrap(), b"jpegbytes");
        let kind = |r: Result<Vec<u8>, SourceError>| r.unwrap_err().reason().kind;
        assert_eq!(kind(src.fetch(ImageId(2)).await), FailureKind::TooLarge);
        assert_eq!(kind(src.fetch(ImageId(3)).await), FailureKind::Unavailable);
        assert_eq!(kind(src.fetch(ImageId(4)).await), FailureKind::NotFound);
        assert_eq!(kind(src.fetch(ImageId(5)).await), FailureKind::NotFound);
        let refused = HttpSource::new(
            HttpSourceConfig {
                url_template: "http://127.0.0.1:1/{id}".into(),
                connect_timeout_ms: 500,
                ..HttpSourceConfig::default()
            },
            50,
        )
        .unwrap();
        assert_eq!(
            kind(refused.fetch(ImageId(1)).await),
            FailureKind::Unavailable
        );
        assert!(
            HttpSource::new(
                HttpSourceConfig {
                    url_template: "http://x/".into(),
                    ..HttpSourceConfig::default()
                },
                1
            )
            .is_err()
        );
    }
}
