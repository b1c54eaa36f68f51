//! The two ports of a service with an API: the API (`http.listen`) and the metrics with
//! the probes (`telemetry.listen`), bound before the service runs so that callers
//! (tests, scripts) learn the addresses of port-0 settings.

use std::io;

use tokio::net::TcpListener;

use crate::{HttpSettings, TelemetrySettings};

pub struct Listeners {
    pub api: TcpListener,
    pub metrics: TcpListener,
}

impl Listeners {
    pub async fn bind(http: &HttpSettings, telemetry: &TelemetrySettings) -> io::Result<Self> {
        let metrics = telemetry.listen.as_deref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "telemetry.listen is not set")
        })?;
        Ok(Self {
            api: bind("http.listen", &http.listen).await?,
            metrics: bind("telemetry.listen", metrics).await?,
        })
    }

    /// Both on free ports of 127.0.0.1 (tests).
    pub async fn localhost() -> io::Result<Self> {
        Ok(Self {
            api: bind("the API", "127.0.0.1:0").await?,
            metrics: bind("the metrics", "127.0.0.1:0").await?,
        })
    }

    /// Prints `listening on ADDR` and `metrics on ADDR` on stdout: scripts and tests
    /// that start a binary on port 0 read the addresses there. A parent that reads only
    /// the first line may close the pipe: a failed write must not stop the service (as
    /// `println!` would: it panics on EPIPE), so write errors are ignored.
    pub fn announce(&self) -> io::Result<()> {
        use std::io::Write;

        let (api, metrics) = (self.api.local_addr()?, self.metrics.local_addr()?);
        let mut out = io::stdout();
        let _ = writeln!(out, "listening on {api}");
        let _ = writeln!(out, "metrics on {metrics}");
        let _ = out.flush();
        Ok(())
    }
}

async fn bind(key: &str, addr: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("binding {key} {addr}: {e}")))
}
